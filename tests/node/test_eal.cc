// zap DPDK layer, pure parts: the EAL argument vector built from each shipped
// config, the adaptive/busy polling policy and the memif-client relink rule.
// No EAL is started here.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include "config.h"
#include "node/eal.h"
#include "node/polling.h"
#include "node/port.h"

namespace
{

struct ConfigPtr {
	zap_config *c = nullptr;
	~ConfigPtr()
	{
		zap_config_free(c);
	}
};

void load(const char *name, ConfigPtr *out)
{
	const char *root = getenv("ZAP_SOURCE_ROOT");
	ASSERT_NE(root, nullptr) << "ZAP_SOURCE_ROOT unset";
	std::string path = std::string(root) + "/firmware-config/" + name;
	char err[512];
	ASSERT_EQ(zap_config_load(path.c_str(), &out->c, err, sizeof(err)), 0) << err;
}

std::vector<std::string> args(const zap_config *c, uint16_t node, const zap_eal_opts &o)
{
	char *argv[ZAP_EAL_MAX_ARGS];
	char buf[8192];
	int argc = zap_eal_args(c, node, &o, argv, ZAP_EAL_MAX_ARGS, buf, sizeof(buf));
	EXPECT_GT(argc, 0);
	std::vector<std::string> v;
	for (int i = 0; i < argc; i++)
		v.emplace_back(argv[i]);
	if (argc > 0) {
		EXPECT_EQ(argv[argc], nullptr);
	}
	return v;
}

using Args = std::vector<std::string>;

} // namespace

TEST(EalArgs, DevSingleUsesNoHugeNoPciAndItsVdevs)
{
	ConfigPtr c;
	load("dev-single.yaml", &c);
	zap_eal_opts o{};
	o.cpus_online = 2;
	EXPECT_EQ(args(c.c, 1, o),
		  (Args{"zapd", "--file-prefix", "zap-1-n1", "--no-huge", "-m", "256", "--no-pci",
			"--vdev", "net_null0", "--vdev", "net_ring0", "--lcores", "0@(0-1)"}));
}

TEST(EalArgs, Local3NodeEachNodeHasItsPrefixAndMemifVdevs)
{
	ConfigPtr c;
	load("local-3node.yaml", &c);
	zap_eal_opts o{};
	o.cpus_online = 2;
	const char *server_or_client[4][2] = {
	    {},
	    {"role=server,id=0,socket=/tmp/zap/memif-n1-n2.sock",
	     "role=server,id=0,socket=/tmp/zap/memif-n1-n3.sock"},
	    {"role=client,id=0,socket=/tmp/zap/memif-n1-n2.sock",
	     "role=server,id=0,socket=/tmp/zap/memif-n2-n3.sock"},
	    {"role=client,id=0,socket=/tmp/zap/memif-n1-n3.sock",
	     "role=client,id=0,socket=/tmp/zap/memif-n2-n3.sock"},
	};
	for (unsigned n = 1; n <= 3; n++) {
		SCOPED_TRACE(n);
		std::string sock = "/tmp/zap/memif-client-n" + std::to_string(n) + ".sock";
		EXPECT_EQ(args(c.c, (uint16_t)n, o),
			  (Args{"zapd", "--file-prefix", "zap-7a01-n" + std::to_string(n),
				"--no-huge", "-m", "256", "--no-pci", "--vdev",
				std::string("net_memif0,") + server_or_client[n][0], "--vdev",
				std::string("net_memif1,") + server_or_client[n][1], "--vdev",
				"net_memif2,role=server,id=0,socket=" + sock, "--lcores",
				"0@(0-1)"}));
	}
}

TEST(EalArgs, Rack3NodeAllowsItsPciPortsAndUsesHugepagesWhenFree)
{
	ConfigPtr c;
	load("rack-3node.yaml", &c);
	zap_eal_opts o{};
	o.cpus_online = 16;
	o.hugepages_free = 1024;
	// busy lcores 2..5 are pinned, each to its own CPU
	EXPECT_EQ(args(c.c, 2, o),
		  (Args{"zapd", "--file-prefix", "zap-5a500003-n2", "-a", "0000:3b:00.0", "-a",
			"0000:3b:00.1", "--lcores", "2@2,3@3,4@4,5@5"}));
}

TEST(EalArgs, Rack3NodeWithoutFreeHugepagesFallsBackToNoHuge)
{
	ConfigPtr c;
	load("rack-3node.yaml", &c);
	zap_eal_opts o{};
	o.cpus_online = 16;
	Args a = args(c.c, 1, o);
	ASSERT_GE(a.size(), 6u);
	EXPECT_EQ(a[3], "--no-huge");
	EXPECT_EQ(a[5], "256");
}

TEST(EalArgs, AdaptiveLcoresFloatOverCpusNoBusyLcoreOwns)
{
	ConfigPtr c;
	load("rack-3node.yaml", &c);
	// rack-3node's busy lcores 2..5 with apply moved to an adaptive lcore 1
	ASSERT_EQ(c.c->n_lcores, 4u);
	zap_lcore_config *apply = &c.c->lcores[3];
	ASSERT_EQ(apply->roles, (uint32_t)ZAP_LCORE_ROLE_APPLY);
	apply->lcore = 1;
	apply->polling = ZAP_POLLING_ADAPTIVE;
	zap_eal_opts o{};
	o.cpus_online = 16; // busy lcores 2..4 own CPUs 2-4
	EXPECT_EQ(args(c.c, 1, o).back(), "2@2,3@3,4@4,1@(0-1,5-15)");
	o.cpus_online = 4; // busy lcores 2 and 3 own CPUs 2-3; 0-1 stay free
	EXPECT_EQ(args(c.c, 1, o).back(), "2@2,3@3,4@4,1@(0-1)");
	o.cpus_online = 0; // unknown CPU count: no floating
	EXPECT_EQ(args(c.c, 1, o).back(), "2@2,3@3,4@4,1@1");
}

TEST(EalArgs, OptionsSetProgramMemoryLogLevelAndPrefix)
{
	ConfigPtr c;
	load("dev-single.yaml", &c);
	zap_eal_opts o{};
	o.prog = "zapd-test";
	o.no_huge_mem_mb = 64;
	o.log_level = "*:debug";
	o.file_prefix = "mine";
	o.cpus_online = 1;
	EXPECT_EQ(args(c.c, 1, o),
		  (Args{"zapd-test", "--file-prefix", "mine", "--no-huge", "-m", "64", "--no-pci",
			"--vdev", "net_null0", "--vdev", "net_ring0", "--lcores", "0@(0)",
			"--log-level", "*:debug"}));
}

TEST(EalArgs, UnknownNodeIsEnoent)
{
	ConfigPtr c;
	load("dev-single.yaml", &c);
	zap_eal_opts o{};
	char *argv[ZAP_EAL_MAX_ARGS];
	char buf[4096];
	EXPECT_EQ(zap_eal_args(c.c, 9, &o, argv, ZAP_EAL_MAX_ARGS, buf, sizeof(buf)), -ENOENT);
}

TEST(EalArgs, SmallBuffersAreEnospc)
{
	ConfigPtr c;
	load("local-3node.yaml", &c);
	zap_eal_opts o{};
	char *argv[ZAP_EAL_MAX_ARGS];
	char buf[4096];
	EXPECT_EQ(zap_eal_args(c.c, 1, &o, argv, 5, buf, sizeof(buf)), -ENOSPC);
	EXPECT_EQ(zap_eal_args(c.c, 1, &o, argv, ZAP_EAL_MAX_ARGS, buf, 64), -ENOSPC);
}

TEST(EalArgs, ParsesHugePagesFree)
{
	EXPECT_EQ(zap_eal_parse_hugepages_free("MemTotal: 1 kB\nHugePages_Total:  16\n"
					       "HugePages_Free:  12\nHugepagesize: 2048 kB\n"),
		  12);
	EXPECT_EQ(zap_eal_parse_hugepages_free("HugePages_Free:        0\n"), 0);
	EXPECT_EQ(zap_eal_parse_hugepages_free("MemTotal: 1 kB\n"), -ENOENT);
}

namespace
{
constexpr uint64_t US = 1000;

zap_poll make_poll(zap_polling policy, uint32_t spin_us, uint32_t yield_us, uint32_t sleep_us)
{
	zap_polling_config c{spin_us, yield_us, sleep_us};
	zap_poll p;
	zap_poll_init(&p, policy, &c, 1000 * US);
	return p;
}
} // namespace

TEST(Poll, AdaptiveSpinsThenYieldsThenSleepsWithCappedBackoff)
{
	zap_poll p = make_poll(ZAP_POLLING_ADAPTIVE, 20, 100, 1000);
	uint64_t t = 1000 * US;
	EXPECT_EQ(zap_poll_next(&p, t + 10 * US, false).kind, ZAP_POLL_SPIN);
	EXPECT_EQ(zap_poll_next(&p, t + 19 * US, false).kind, ZAP_POLL_SPIN);
	EXPECT_EQ(zap_poll_next(&p, t + 20 * US, false).kind, ZAP_POLL_YIELD);
	EXPECT_EQ(zap_poll_next(&p, t + 119 * US, false).kind, ZAP_POLL_YIELD);
	t += 120 * US;
	const uint64_t want_us[] = {50, 100, 200, 400, 800, 1000, 1000, 1000};
	for (uint64_t w : want_us) {
		zap_poll_action a = zap_poll_next(&p, t, false);
		EXPECT_EQ(a.kind, ZAP_POLL_SLEEP);
		EXPECT_EQ(a.sleep_ns, w * US);
		t += a.sleep_ns;
	}
	EXPECT_EQ(p.stats.sleeps, 8u);
	EXPECT_EQ(p.stats.yields, 2u);
}

TEST(Poll, WorkReturnsToSpinAndRestartsTheBackoff)
{
	zap_poll p = make_poll(ZAP_POLLING_ADAPTIVE, 20, 100, 1000);
	uint64_t t = 1000 * US + 500 * US;
	EXPECT_EQ(zap_poll_next(&p, t, false).kind, ZAP_POLL_SLEEP);
	EXPECT_EQ(zap_poll_next(&p, t + 50 * US, false).sleep_ns, 100 * US);
	t += 200 * US;
	EXPECT_EQ(zap_poll_next(&p, t, true).kind, ZAP_POLL_SPIN);
	EXPECT_EQ(zap_poll_next(&p, t + 5 * US, false).kind, ZAP_POLL_SPIN);
	EXPECT_EQ(zap_poll_next(&p, t + 30 * US, false).kind, ZAP_POLL_YIELD);
	zap_poll_action a = zap_poll_next(&p, t + 120 * US, false);
	EXPECT_EQ(a.kind, ZAP_POLL_SLEEP);
	EXPECT_EQ(a.sleep_ns, ZAP_POLL_SLEEP_FIRST_US * US);
}

TEST(Poll, BusyNeverYieldsNorSleeps)
{
	zap_poll p = make_poll(ZAP_POLLING_BUSY, 20, 100, 1000);
	uint64_t t = 1000 * US;
	for (int i = 0; i < 100000; i++) {
		t += 37 * US;
		ASSERT_EQ(zap_poll_next(&p, t, false).kind, ZAP_POLL_SPIN);
	}
	EXPECT_EQ(p.stats.yields + p.stats.sleeps, 0u);
}

TEST(Poll, ZeroSpinAndYieldSleepsAtOnceCappedBySleepUs)
{
	zap_poll p = make_poll(ZAP_POLLING_ADAPTIVE, 0, 0, 30);
	zap_poll_action a = zap_poll_next(&p, 1000 * US, false);
	EXPECT_EQ(a.kind, ZAP_POLL_SLEEP);
	EXPECT_EQ(a.sleep_ns, 30 * US);
}

TEST(Poll, ZeroSleepKeepsYielding)
{
	zap_poll p = make_poll(ZAP_POLLING_ADAPTIVE, 0, 10, 0);
	for (int i = 1; i < 100; i++)
		ASSERT_EQ(zap_poll_next(&p, 1000 * US + (uint64_t)i * 1000 * US, false).kind,
			  ZAP_POLL_YIELD);
}

TEST(Poll, ExecutorSleepsAboutTheAskedTime)
{
	uint64_t t0 = zap_poll_now_ns();
	zap_poll_execute({ZAP_POLL_SLEEP, 2000 * US});
	zap_poll_execute({ZAP_POLL_YIELD, 0});
	zap_poll_execute({ZAP_POLL_SPIN, 0});
	EXPECT_GE(zap_poll_now_ns() - t0, 2000 * US);
}

TEST(LinkWatch, ClientWithoutLinkRestartsAfterASecondAndEverySecondAfter)
{
	const uint64_t MS = 1000 * US;
	zap_link_watch w;
	zap_link_watch_init(&w, 1000, 5 * MS);
	EXPECT_FALSE(zap_link_watch_step(&w, 500 * MS, false));
	EXPECT_TRUE(zap_link_watch_step(&w, 1005 * MS, false));
	EXPECT_FALSE(zap_link_watch_step(&w, 1500 * MS, false));
	EXPECT_TRUE(zap_link_watch_step(&w, 2005 * MS, false));
	EXPECT_FALSE(zap_link_watch_step(&w, 2010 * MS, true));
}

TEST(LinkWatch, LinkLossRestartsAtOnce)
{
	const uint64_t MS = 1000 * US;
	zap_link_watch w;
	zap_link_watch_init(&w, 1000, 1 * MS);
	EXPECT_FALSE(zap_link_watch_step(&w, 2 * MS, true));
	EXPECT_FALSE(zap_link_watch_step(&w, 3 * MS, true));
	EXPECT_TRUE(zap_link_watch_step(&w, 4 * MS, false));
	EXPECT_FALSE(zap_link_watch_step(&w, 5 * MS, false));
	EXPECT_TRUE(zap_link_watch_step(&w, 1004 * MS, false));
}

TEST(LinkWatch, OnlyMemifClientsAreWatched)
{
	EXPECT_TRUE(zap_port_is_memif_client("net_memif0,role=client,socket=/x"));
	EXPECT_TRUE(zap_port_is_memif_client("net_memif3,id=1")); // memif's default role
	EXPECT_FALSE(zap_port_is_memif_client("net_memif0,role=server,id=0"));
	EXPECT_FALSE(zap_port_is_memif_client("net_null0"));
	EXPECT_FALSE(zap_port_is_memif_client(nullptr));
}
