// SPDX-License-Identifier: Apache-2.0
// Tests of the `zap` command-line tool (dataplane/client/zap_cli.c). Each test
// spawns the built binary ($ZAP_CLI) with a temp copy of local-3node.yaml
// whose node 1 has client_udp pointing at a fake server: a thread on
// 127.0.0.1 (ephemeral port) that decodes requests with the codec and
// answers canned responses. Loopback only; every child is killed after
// kChildLimitMs.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/zapclient.h"

extern char **environ;

namespace
{

using Bytes = std::vector<uint8_t>;
constexpr uint64_t kCluster = 0x7a01; // cluster.id of local-3node.yaml
constexpr int kChildLimitMs = 10000;

class FakeServer
{
      public:
	using Handler = std::function<void(const zap_cp_request &, zap_cp_response &)>;

	explicit FakeServer(Handler h, bool silent_ = false)
	    : handler(std::move(h)), silent(silent_)
	{
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		EXPECT_GE(fd, 0);
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		EXPECT_EQ(bind(fd, (sockaddr *)&a, sizeof(a)), 0);
		socklen_t al = sizeof(a);
		EXPECT_EQ(getsockname(fd, (sockaddr *)&a, &al), 0);
		port = ntohs(a.sin_port);
		EXPECT_EQ(zap_cp_decoder_create(nullptr, &dec), 0);
		EXPECT_EQ(zap_cp_reasm_create(nullptr, 8, &ra), 0);
		th = std::thread([this] { run(); });
	}
	~FakeServer()
	{
		stop = true;
		th.join();
		close(fd);
		zap_cp_decoder_destroy(dec);
		zap_cp_reasm_destroy(ra);
	}

	uint16_t port = 0;
	std::atomic<int> requests{0};
	std::atomic<uint16_t> last_flags{0};
	std::atomic<uint64_t> last_base{0}; // base serial of the last store
	std::string record()		    // first store of the last transaction
	{
		std::lock_guard<std::mutex> g(mu);
		return last_record;
	}

      private:
	void run()
	{
		std::vector<uint8_t> buf(70000);
		while (!stop) {
			pollfd p{fd, POLLIN, 0};
			if (poll(&p, 1, 10) <= 0)
				continue;
			sockaddr_storage from{};
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(fd, buf.data(), buf.size(), 0, (sockaddr *)&from, &fl);
			if (n <= 0)
				continue;
			zap_cp_hdr h;
			if (zap_cp_hdr_decode(buf.data(), (size_t)n, kCluster, 0, &h) != 0)
				continue;
			const void *body;
			size_t len;
			if (zap_cp_reasm_push(ra, &h, buf.data(), (size_t)n, &body, &len) != 1)
				continue;
			zap_cp_request q;
			if (zap_cp_request_decode(dec, &h, body, len, &q) != 0)
				continue;
			requests++;
			last_flags = h.flags;
			if (q.n_stores > 0) {
				std::lock_guard<std::mutex> g(mu);
				last_base = q.stores[0].base_serial;
				last_record.assign((const char *)q.stores[0].data, q.stores[0].len);
			}
			if (silent)
				continue;
			zap_cp_response r{};
			r.hdr = h;
			r.hdr.type = (uint8_t)(h.type + ZAP_CP_RESPONSE_OFFSET);
			r.hdr.flags = 0;
			handler(q, r);
			Bytes out(zap_cp_response_size(&r));
			if (zap_cp_response_encode(&r, out.data(), out.size()) < 0)
				continue;
			uint32_t chunk = 1352, count = zap_cp_chunk_count(out.size(), chunk);
			Bytes d(ZAP_CP_HDR_BYTES + chunk);
			for (uint32_t i = 0; i < count; i++) {
				ssize_t k = zap_cp_chunk_encode(&r.hdr, out.data(), out.size(),
								chunk, i, d.data(), d.size());
				if (k > 0)
					sendto(fd, d.data(), (size_t)k, 0, (sockaddr *)&from, fl);
			}
		}
	}

	Handler handler;
	bool silent;
	int fd = -1;
	std::thread th;
	std::atomic<bool> stop{false};
	std::mutex mu;
	std::string last_record;
	zap_cp_decoder *dec = nullptr;
	zap_cp_reasm *ra = nullptr;
};

struct Result {
	int status = -1; // exit status, or 128 + signal
	std::string out, err;
	long elapsed_ms = 0;
};

std::string read_file(const std::string &path)
{
	std::ifstream f(path);
	std::stringstream ss;
	ss << f.rdbuf();
	return ss.str();
}

class ZapCli : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		const char *cli = std::getenv("ZAP_CLI");
		const char *root = std::getenv("ZAP_SOURCE_ROOT");
		ASSERT_NE(cli, nullptr) << "ZAP_CLI unset";
		ASSERT_NE(root, nullptr) << "ZAP_SOURCE_ROOT unset";
		zap = cli;
		base_yaml = read_file(std::string(root) + "/firmware-config/local-3node.yaml");
		ASSERT_NE(base_yaml.find(kNode1Udp), std::string::npos);
		char tmpl[] = "/tmp/zapcli-test-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		dir = tmpl;
	}
	void TearDown() override
	{
		for (const auto &f : files)
			unlink(f.c_str());
		if (!dir.empty())
			rmdir(dir.c_str());
	}

	// A config whose node 1 serves client_udp on @p port (0: no client_udp).
	std::string config(uint16_t port)
	{
		std::string y = base_yaml;
		size_t at = y.find(kNode1Udp);
		if (port == 0) {
			size_t bol = y.rfind('\n', at) + 1, eol = y.find('\n', at) + 1;
			y.erase(bol, eol - bol);
		} else {
			y.replace(at, strlen(kNode1Udp),
				  "\"127.0.0.1:" + std::to_string(port) + "\"");
		}
		std::string path = dir + "/cfg" + std::to_string(files.size()) + ".yaml";
		std::ofstream(path) << y;
		files.push_back(path);
		return path;
	}

	Result run(const std::vector<std::string> &args)
	{
		Result r;
		int out[2], err[2];
		if (pipe(out) != 0 || pipe(err) != 0)
			return r;
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, out[1], 1);
		posix_spawn_file_actions_adddup2(&fa, err[1], 2);
		posix_spawn_file_actions_addclose(&fa, out[0]);
		posix_spawn_file_actions_addclose(&fa, err[0]);
		std::vector<char *> argv{const_cast<char *>(zap.c_str())};
		for (const auto &a : args)
			argv.push_back(const_cast<char *>(a.c_str()));
		argv.push_back(nullptr);
		auto t0 = std::chrono::steady_clock::now();
		pid_t pid;
		int rc = posix_spawn(&pid, zap.c_str(), &fa, nullptr, argv.data(), environ);
		posix_spawn_file_actions_destroy(&fa);
		close(out[1]);
		close(err[1]);
		if (rc != 0) {
			close(out[0]);
			close(err[0]);
			return r;
		}
		pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
		std::string *dst[2] = {&r.out, &r.err};
		int open_fds = 2;
		while (open_fds > 0) {
			long left = kChildLimitMs - ms_since(t0);
			if (left <= 0 || poll(p, 2, (int)left) <= 0) {
				kill(pid, SIGKILL);
				break;
			}
			for (int i = 0; i < 2; i++) {
				if (p[i].fd < 0 || p[i].revents == 0)
					continue;
				char buf[4096];
				ssize_t n = read(p[i].fd, buf, sizeof(buf));
				if (n > 0) {
					dst[i]->append(buf, (size_t)n);
				} else {
					close(p[i].fd);
					p[i].fd = -1;
					open_fds--;
				}
			}
		}
		for (auto &q : p)
			if (q.fd >= 0)
				close(q.fd);
		int st = 0;
		waitpid(pid, &st, 0);
		r.elapsed_ms = ms_since(t0);
		r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		return r;
	}

	static long ms_since(std::chrono::steady_clock::time_point t0)
	{
		return (long)std::chrono::duration_cast<std::chrono::milliseconds>(
			   std::chrono::steady_clock::now() - t0)
		    .count();
	}

	static constexpr const char *kNode1Udp = "\"127.0.0.1:7201\"";
	std::string zap, base_yaml, dir;
	std::vector<std::string> files;
};

// A failure is exactly one line on stderr and nothing on stdout.
void expect_one_line_error(const Result &r, int status, const std::string &line)
{
	EXPECT_EQ(r.status, status) << r.err;
	EXPECT_EQ(r.err, line + "\n");
	EXPECT_EQ(r.out, "");
}

void expect_usage_error(const Result &r, const std::string &fragment)
{
	EXPECT_EQ(r.status, 2) << r.err;
	EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
	EXPECT_EQ(r.err.rfind("zap: ", 0), 0u) << r.err;
	EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
	EXPECT_EQ(r.out, "");
}

TEST_F(ZapCli, GetPrintsTextRecordAndSerial)
{
	FakeServer srv([](const zap_cp_request &q, zap_cp_response &r) {
		r.serial = 0x03ee4a5b2c1d0000ull + q.oid;
		r.data = "hello world";
		r.len = 11;
	});
	Result r = run({"--config", config(srv.port), "--node", "1", "get", "0x07"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, "oid 0x0000000000000007\n"
			 "serial 0x03ee4a5b2c1d0007\n"
			 "size 11\n"
			 "text hello world\n");
	EXPECT_EQ(r.err, "");
	EXPECT_EQ(srv.last_flags.load(), 0);
}

TEST_F(ZapCli, GetPrintsBinaryRecordAsHexAndSyncSetsTheFlag)
{
	FakeServer srv([](const zap_cp_request &, zap_cp_response &r) {
		r.serial = 5;
		r.data = "\x00\x80\xffZ";
		r.len = 4;
	});
	Result r = run({"--config", config(srv.port), "--node", "1", "get", "42", "--sync"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, "oid 0x000000000000002a\n"
			 "serial 0x0000000000000005\n"
			 "size 4\n"
			 "hex 0080ff5a\n");
	EXPECT_EQ(srv.last_flags.load(), ZAP_CP_FLAG_SYNC);
}

TEST_F(ZapCli, GetOfMissingObjectFails)
{
	FakeServer srv(
	    [](const zap_cp_request &, zap_cp_response &r) { r.status = ZAP_CP_NOT_FOUND; });
	Result r = run({"--config", config(srv.port), "--node", "1", "get", "9"});
	expect_one_line_error(r, 1, "zap: node 1: oid 0x0000000000000009 not found");
}

TEST_F(ZapCli, PutWithStaleBaseFailsWithConflict)
{
	FakeServer srv([](const zap_cp_request &q, zap_cp_response &r) {
		if (q.hdr.type != ZAP_CP_COMMIT_ONESHOT)
			return;
		r.status = ZAP_CP_CONFLICT;
		r.oid = q.stores[0].oid;
		r.serial = 0x0400000000000000ull;
		r.base_serial = q.stores[0].base_serial;
	});
	Result r = run({"--config", config(srv.port), "--node", "1", "put", "7", "v2", "--base",
			"0x0300000000000000"});
	expect_one_line_error(r, 1,
			      "zap: node 1: conflict on oid 0x0000000000000007: committed serial "
			      "0x0400000000000000, yours 0x0300000000000000");
	EXPECT_EQ(srv.requests.load(), 1); // no read first: the base was given
}

TEST_F(ZapCli, PutWithoutBaseCommitsOverTheCurrentSerial)
{
	FakeServer srv([](const zap_cp_request &q, zap_cp_response &r) {
		if (q.hdr.type == ZAP_CP_LOAD) {
			r.serial = 0x10;
			r.data = "old";
			r.len = 3;
		} else if (q.stores[0].base_serial == 0x10) {
			r.tid = 0x20;
		} else {
			r.status = ZAP_CP_CONFLICT;
		}
	});
	Result r = run({"--config", config(srv.port), "--node", "1", "put", "7", "new value"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, "0x0000000000000020\n");
	EXPECT_EQ(srv.requests.load(), 2);
	EXPECT_EQ(srv.record(), "new value");
}

TEST_F(ZapCli, PutBaseZeroAndHexValue)
{
	FakeServer srv([](const zap_cp_request &, zap_cp_response &r) { r.tid = 0x21; });
	Result r = run({"--config", config(srv.port), "--node", "1", "put", "8", "00ff", "--hex",
			"--base", "0"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, "0x0000000000000021\n");
	EXPECT_EQ(srv.last_base.load(), 0u);
	EXPECT_EQ(srv.record(), std::string("\x00\xff", 2));
}

TEST_F(ZapCli, TimesOutWithinTheBoundWhenNoOneAnswers)
{
	FakeServer srv([](const zap_cp_request &, zap_cp_response &) {}, true);
	Result r =
	    run({"--config", config(srv.port), "--node", "1", "--timeout", "300", "last-tid"});
	expect_one_line_error(r, 1,
			      "zap: node 1: timed out after 3 tries (no answer from 127.0.0.1:" +
				  std::to_string(srv.port) + ")");
	EXPECT_EQ(srv.requests.load(), 3);
	EXPECT_GE(r.elapsed_ms, 250);
	EXPECT_LT(r.elapsed_ms, 3000);
}

TEST_F(ZapCli, UnknownNodeNamesTheConfig)
{
	std::string cfg = config(7201);
	Result r = run({"--config", cfg, "--node", "9", "last-tid"});
	expect_one_line_error(r, 1, "zap: node 9 is not in " + cfg);
}

TEST_F(ZapCli, NodeWithoutClientUdpIsAnError)
{
	std::string cfg = config(0);
	Result r = run({"--config", cfg, "--node", "1", "last-tid"});
	expect_one_line_error(r, 1, "zap: node 1 has no client_udp in " + cfg);
}

TEST_F(ZapCli, MissingConfigFileIsAnError)
{
	Result r = run({"--config", dir + "/nope.yaml", "--node", "1", "sync"});
	EXPECT_EQ(r.status, 1);
	EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
	EXPECT_NE(r.err.find("nope.yaml"), std::string::npos) << r.err;
}

TEST_F(ZapCli, BadArgumentsAreUsageErrors)
{
	std::string cfg = config(7201);
	auto z = [&](std::vector<std::string> rest) {
		std::vector<std::string> a{"--config", cfg, "--node", "1"};
		a.insert(a.end(), rest.begin(), rest.end());
		return run(a);
	};
	expect_usage_error(z({"get", "xyz"}), "bad oid \"xyz\"");
	expect_usage_error(z({"get", "0x"}), "bad oid");
	expect_usage_error(z({"get", "-1"}), "unknown option");
	expect_usage_error(z({"get", "18446744073709551616"}), "bad oid");
	expect_usage_error(z({"get", "0xffffffffffffffff"}), "bad oid");
	expect_usage_error(z({"get", " 7"}), "bad oid");
	expect_usage_error(z({"get"}), "missing argument");
	expect_usage_error(z({"get", "1", "2"}), "too many arguments");
	expect_usage_error(z({"get", "1", "--base", "3"}), "takes no option");
	expect_usage_error(z({"frobnicate"}), "unknown command \"frobnicate\"");
	expect_usage_error(z({"put", "1", "zz", "--hex"}), "hex digits");
	expect_usage_error(z({"put", "1", "v", "--base"}), "needs a value");
	expect_usage_error(z({"history", "1", "--max", "0"}), "bad --max");
	expect_usage_error(z({"new-oids", "65537"}), "bad count");
	expect_usage_error(z({"load-before", "1", "0x1g"}), "bad tid");
	expect_usage_error(z({}), "no command");
	expect_usage_error(run({"--config", cfg, "get", "1"}), "--node ID is required");
	expect_usage_error(run({"--node", "0", "get", "1"}), "bad node id");
	expect_usage_error(run({"--node", "65536", "get", "1"}), "bad node id");
	expect_usage_error(run({"--node", "1", "--timeout", "2", "get", "1"}), "bad timeout");
	expect_usage_error(run({"--node"}), "--node needs an id");
	expect_usage_error(run({"--bogus", "get", "1"}), "unknown option");
}

TEST_F(ZapCli, HelpGoesToStdoutAndSucceeds)
{
	Result r = run({"--help"});
	EXPECT_EQ(r.status, 0);
	EXPECT_NE(r.out.find("changes-since TID"), std::string::npos);
	EXPECT_EQ(r.err, "");
}

TEST_F(ZapCli, HelpHasALinePerOptionAndCommand)
{
	Result r = run({"--help"});
	EXPECT_EQ(r.status, 0);
	EXPECT_EQ(r.err, "");
	std::vector<std::string> lines;
	std::istringstream in(r.out);
	for (std::string l; std::getline(in, l);)
		lines.push_back(l);
	auto has_line = [&](const std::string &start) {
		return std::any_of(lines.begin(), lines.end(),
				   [&](const std::string &l) { return l.rfind(start, 0) == 0; });
	};
	for (const char *opt : {"  --config FILE ", "  --node ID ", "  --timeout MS ",
				"  --help, -h ", "  --version "})
		EXPECT_TRUE(has_line(opt)) << "no line for option \"" << opt << "\" in:\n" << r.out;
	for (const char *cmd : {"  last-tid [--sync]", "  get OID [--sync]",
				"  put OID VALUE [--base SERIAL] [--hex]", "  load-before OID TID",
				"  history OID [--max N]", "  changes-since TID [--max N]",
				"  new-oids [N]", "  sync", "  pack TID"})
		EXPECT_TRUE(has_line(cmd)) << "no line for command \"" << cmd << "\" in:\n"
					   << r.out;
}

TEST_F(ZapCli, ShortHelpIsTheSameText)
{
	Result l = run({"--help"});
	Result s = run({"-h"});
	EXPECT_EQ(s.status, 0);
	EXPECT_EQ(s.err, "");
	EXPECT_EQ(s.out, l.out);
}

TEST_F(ZapCli, VersionPrintsZapAndTheProjectVersion)
{
	const char *want = getenv("ZAP_VERSION_EXPECTED");
	ASSERT_NE(want, nullptr) << "tests/client/meson.build sets ZAP_VERSION_EXPECTED";
	Result r = run({"--version"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, std::string("zap ") + want + "\n");
	EXPECT_EQ(r.err, "");
}

TEST_F(ZapCli, VersionNeedsNeitherConfigNorNode)
{
	// answered while parsing: the config is never read, no node is asked
	Result r = run({"--config", dir + "/no-such.yaml", "--version", "get", "1"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out.rfind("zap ", 0), 0u) << r.out;
	EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
	EXPECT_EQ(r.err, "");
}

TEST_F(ZapCli, VersionAfterTheCommandIsAUsageError)
{
	// global options come before the command; after it, --version is no option of it
	expect_usage_error(run({"--node", "1", "get", "1", "--version"}), "--version");
}

TEST_F(ZapCli, LastTidAndSyncPrintOneTid)
{
	FakeServer srv([](const zap_cp_request &q, zap_cp_response &r) {
		r.tid = q.hdr.type == ZAP_CP_SYNC ? 0xabcull : 0x03ee000000000001ull;
	});
	std::string cfg = config(srv.port);
	Result r = run({"--config", cfg, "--node", "1", "last-tid", "--sync"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, "0x03ee000000000001\n");
	EXPECT_EQ(srv.last_flags.load(), ZAP_CP_FLAG_SYNC);
	r = run({"--config=" + cfg, "--node=1", "sync"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, "0x0000000000000abc\n");
}

TEST_F(ZapCli, HistoryPrintsOneLinePerRevisionNewestFirst)
{
	static const zap_cp_hist hist[2] = {
	    {0x30, 5, 0, "bob", 3, "fix \"x\"\n", 8},
	    {0x20, 0, 1, "", 0, "", 0},
	};
	FakeServer srv([](const zap_cp_request &q, zap_cp_response &r) {
		r.count = q.count < 2 ? q.count : 2;
		r.hist = hist;
	});
	Result r = run({"--config", config(srv.port), "--node", "1", "history", "7", "--max", "5"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out,
		  "0x0000000000000030 size 5 user \"bob\" description \"fix \\\"x\\\"\\x0a\"\n"
		  "0x0000000000000020 size 0 deleted user \"\" description \"\"\n");
}

TEST_F(ZapCli, ChangesSincePrintsTidFlagsAndOids)
{
	static const uint64_t oids[3] = {7, 9, 0x100};
	FakeServer srv([](const zap_cp_request &q, zap_cp_response &r) {
		r.tid = 0x50;
		if (q.tid == 0) {
			r.rflags = ZAP_CP_RFLAG_TOO_OLD;
			return;
		}
		r.count = 3;
		r.oids = oids;
	});
	std::string cfg = config(srv.port);
	Result r = run({"--config", cfg, "--node", "1", "changes-since", "0x40"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, "tid 0x0000000000000050 oids 3\n"
			 "0x0000000000000007\n0x0000000000000009\n0x0000000000000100\n");
	r = run({"--config", cfg, "--node", "1", "changes-since", "0"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, "tid 0x0000000000000050 oids 0 too-old\n");
}

TEST_F(ZapCli, LoadBeforePrintsSerialAndNext)
{
	FakeServer srv([](const zap_cp_request &q, zap_cp_response &r) {
		if (q.tid <= 0x10) {
			r.status = ZAP_CP_NOT_FOUND;
			return;
		}
		r.serial = 0x10;
		r.next_serial = 0x20;
		r.data = "v1";
		r.len = 2;
	});
	std::string cfg = config(srv.port);
	Result r = run({"--config", cfg, "--node", "1", "load-before", "7", "0x20"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, "oid 0x0000000000000007\nserial 0x0000000000000010\n"
			 "next 0x0000000000000020\nsize 2\ntext v1\n");
	r = run({"--config", cfg, "--node", "1", "load-before", "7", "16"});
	expect_one_line_error(r, 1,
			      "zap: node 1: oid 0x0000000000000007 has no revision before "
			      "0x0000000000000010");
}

TEST_F(ZapCli, NewOidsPrintsTheBlock)
{
	FakeServer srv([](const zap_cp_request &q, zap_cp_response &r) {
		r.oid = 0x40;
		r.count = q.count;
	});
	std::string cfg = config(srv.port);
	Result r = run({"--config", cfg, "--node", "1", "new-oids", "3"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, "0x0000000000000040\n0x0000000000000041\n0x0000000000000042\n");
	r = run({"--config", cfg, "--node", "1", "new-oids"});
	EXPECT_EQ(r.out, "0x0000000000000040\n");
}

TEST_F(ZapCli, PackSendsTheTidAndPrintsTheEffectiveOne)
{
	std::atomic<uint64_t> got{0};
	std::atomic<int> type{0};
	FakeServer srv([&](const zap_cp_request &q, zap_cp_response &r) {
		type = q.hdr.type;
		got = q.tid;
		if (q.tid == 5)
			r.status = ZAP_CP_STORE_ERROR;
		else
			r.tid = 0x03ee000000000007ull; // capped at the last tid
	});
	std::string cfg = config(srv.port);
	Result r = run({"--config", cfg, "--node", "1", "pack", "0x03ee0000000000ff"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, "0x03ee000000000007\n");
	EXPECT_EQ(type.load(), ZAP_CP_PACK);
	EXPECT_EQ(got.load(), 0x03ee0000000000ffull);
	r = run({"--config", cfg, "--node", "1", "pack", "5"});
	EXPECT_EQ(r.status, 1);
	EXPECT_EQ(r.out, "");
	EXPECT_EQ(r.err, "zap: node 1: store error\n");
}

TEST_F(ZapCli, PackArgumentsAreChecked)
{
	std::string cfg = config(7201);
	auto z = [&](std::vector<std::string> rest) {
		std::vector<std::string> a{"--config", cfg, "--node", "1"};
		a.insert(a.end(), rest.begin(), rest.end());
		return run(a);
	};
	expect_usage_error(z({"pack"}), "missing argument");
	expect_usage_error(z({"pack", "0"}), "bad tid \"0\"");
	expect_usage_error(z({"pack", "xyz"}), "bad tid");
	expect_usage_error(z({"pack", "1", "2"}), "too many arguments");
	expect_usage_error(z({"pack", "1", "--max", "3"}), "takes no option");
	Result r = run({"--help"});
	EXPECT_NE(r.out.find("pack TID"), std::string::npos);
}

TEST_F(ZapCli, UnavailableNodeIsOneLine)
{
	FakeServer srv(
	    [](const zap_cp_request &, zap_cp_response &r) { r.status = ZAP_CP_UNAVAILABLE; });
	Result r = run({"--config", config(srv.port), "--node", "1", "sync"});
	EXPECT_EQ(r.status, 1);
	EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
	EXPECT_EQ(r.err.rfind("zap: node 1: unavailable", 0), 0u) << r.err;
}

// Random argument lists from a vocabulary of good and bad tokens: the tool
// never crashes and always exits 0, 1 or 2 with at most one stderr line.
TEST_F(ZapCli, RandomArgumentsNeverCrash)
{
	FakeServer srv([](const zap_cp_request &, zap_cp_response &r) {
		r.tid = 1;
		r.serial = 1;
	});
	std::string cfg = config(srv.port);
	const char *env_seed = std::getenv("ZAP_CLI_SEED");
	// A fixed default seed, so a CI failure replays; ZAP_CLI_SEED explores others.
	uint32_t seed = env_seed ? (uint32_t)strtoul(env_seed, nullptr, 0) : 20261125u;
	printf("ZAP_CLI_SEED=%u\n", seed);
	std::mt19937 rng(seed);
	const std::vector<std::string> vocab = {"get",
						"put",
						"history",
						"changes-since",
						"load-before",
						"new-oids",
						"sync",
						"last-tid",
						"pack",
						"--sync",
						"--base",
						"--max",
						"--hex",
						"--",
						"-",
						"",
						"0",
						"1",
						"0x",
						"0xffffffffffffffff",
						"99999999999999999999",
						"ab",
						"--base=",
						"--max=3",
						"--node",
						"--timeout",
						"--config",
						"7",
						"65536",
						"\xff\xfe",
						"--max=-1",
						"0x0000000000000007"};
	for (int i = 0; i < 40; i++) {
		std::vector<std::string> a{"--config", cfg, "--node", "1", "--timeout", "300"};
		int n = (int)(rng() % 5);
		for (int k = 0; k < n; k++)
			a.push_back(vocab[rng() % vocab.size()]);
		Result r = run(a);
		std::string line;
		for (const auto &s : a)
			line += "'" + s + "' ";
		EXPECT_TRUE(r.status == 0 || r.status == 1 || r.status == 2)
		    << line << "-> " << r.status << " " << r.err;
		EXPECT_LE(std::count(r.err.begin(), r.err.end(), '\n'), 1) << line << r.err;
	}
}

} // namespace
