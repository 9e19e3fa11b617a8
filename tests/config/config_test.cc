// Tests of the YAML configuration loader (firmware-config/).
//
// Each example config must load; a minimal config gets every default; and
// every class of error is reported as "NAME:LINE: message" with the exact
// line of the offending key or value. Most error tests start from the
// 17-line minimal config below and change or insert one line.

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include <arpa/inet.h>

#include "config.h"

namespace
{

std::string SourcePath(const std::string &rel)
{
	const char *root = std::getenv("ZAP_SOURCE_ROOT");
	return std::string(root ? root : ".") + "/" + rel;
}

// The minimal valid configuration, one string per line (line 1 first).
std::vector<std::string> Base()
{
	return {
	    "cluster:",									     // 1
	    "  id: 1",									     // 2
	    "  secret: \"00112233445566778899aabbccddeeff\"",				     // 3
	    "nodes:",									     // 4
	    "  - id: 1",								     // 5
	    "    name: a",								     // 6
	    "    replication: {mac: \"02:00:00:00:00:01\", ipv4: 10.0.0.1, udp_port: 7000}", // 7
	    "    client: {mac: \"02:00:00:00:01:01\", ipv4: 10.0.1.1, udp_port: 7100}",	     // 8
	    "    zeo: \"127.0.0.1:8100\"",						     // 9
	    "    admin: \"127.0.0.1:9100\"",						     // 10
	    "    ports:",								     // 11
	    "      - {role: replication, vdev: net_null0}",				     // 12
	    "lcores:",									     // 13
	    "  - lcore: 0",								     // 14
	    "    roles: [io, paxos, log, apply]",					     // 15
	    "log:",									     // 16
	    "  dir: /tmp/zap/t",							     // 17
	};
}

// A node entry (8 lines + ports) for multi-node configs.
std::vector<std::string> Node(int id)
{
	std::string n = std::to_string(id);
	return {
	    "  - id: " + n,
	    "    name: n" + n,
	    "    replication: {mac: \"02:00:00:00:00:0" + n + "\", ipv4: 10.0.0." + n +
		", udp_port: 7000}",
	    "    client: {mac: \"02:00:00:00:01:0" + n + "\", ipv4: 10.0.1." + n +
		", udp_port: 7100}",
	    "    zeo: \"127.0.0.1:810" + n + "\"",
	    "    admin: \"127.0.0.1:910" + n + "\"",
	    "    ports:",
	    "      - {role: replication, pci: \"0000:3b:00.0\"}",
	};
}

// Base() with the nodes replaced by @p count Node() entries.
std::vector<std::string> WithNodes(int count)
{
	std::vector<std::string> b = Base(), out(b.begin(), b.begin() + 4);
	for (int i = 1; i <= count; i++) {
		std::vector<std::string> n = Node(i);
		out.insert(out.end(), n.begin(), n.end());
	}
	out.insert(out.end(), b.begin() + 12, b.end());
	return out;
}

std::string Join(const std::vector<std::string> &lines)
{
	std::string s;
	for (const auto &l : lines)
		s += l + "\n";
	return s;
}

// Replace line @p n (1-based).
std::vector<std::string> Set(std::vector<std::string> v, size_t n, const std::string &text)
{
	v.at(n - 1) = text;
	return v;
}

// Insert @p text so that it becomes line @p n.
std::vector<std::string> Ins(std::vector<std::string> v, size_t n, const std::string &text)
{
	v.insert(v.begin() + (n - 1), text);
	return v;
}

// Delete line @p n.
std::vector<std::string> Del(std::vector<std::string> v, size_t n)
{
	v.erase(v.begin() + (n - 1));
	return v;
}

struct Loaded {
	int rc;
	std::string err;
	zap_config *c;
	~Loaded()
	{
		zap_config_free(c);
	}
};

Loaded *Load(const std::string &yaml)
{
	char err[512];
	auto *l = new Loaded{0, "", nullptr};
	l->rc = zap_config_load_string("t.yaml", yaml.data(), yaml.size(), &l->c, err, sizeof(err));
	l->err = err;
	return l;
}

// Loading @p lines must fail at line @p line with @p fragment in the message.
void ExpectError(const std::vector<std::string> &lines, unsigned line, const std::string &fragment)
{
	std::unique_ptr<Loaded> l(Load(Join(lines)));
	std::string prefix = "t.yaml:" + std::to_string(line) + ": ";
	EXPECT_LT(l->rc, 0);
	EXPECT_EQ(l->c, nullptr);
	EXPECT_EQ(l->err.rfind(prefix, 0), 0u) << "message: " << l->err;
	EXPECT_NE(l->err.find(fragment), std::string::npos) << "message: " << l->err;
}

std::unique_ptr<Loaded> LoadOk(const std::vector<std::string> &lines)
{
	std::unique_ptr<Loaded> l(Load(Join(lines)));
	EXPECT_EQ(l->rc, 0) << l->err;
	EXPECT_NE(l->c, nullptr);
	return l;
}

zap_config *LoadExample(const char *name)
{
	char err[512] = "";
	zap_config *c = nullptr;
	int rc = zap_config_load(SourcePath(std::string("firmware-config/") + name).c_str(), &c,
				 err, sizeof(err));
	EXPECT_EQ(rc, 0) << err;
	return c;
}

} // namespace

// ---- examples ---------------------------------------------------------------

TEST(ConfigExamples, DevSingleLoads)
{
	zap_config *c = LoadExample("dev-single.yaml");
	ASSERT_NE(c, nullptr);
	EXPECT_EQ(c->n_nodes, 1u);
	EXPECT_EQ(c->log.durability, ZAP_DURABILITY_FSYNC);
	EXPECT_EQ(c->store.size_bytes, 256ull << 20);
	EXPECT_EQ(c->nodes[0].ports[1].kind, ZAP_PORT_KIND_VDEV);
	EXPECT_STREQ(c->nodes[0].ports[1].vdev_name, "net_ring0");
	EXPECT_EQ(c->lcores[0].polling, ZAP_POLLING_ADAPTIVE);
	EXPECT_EQ(c->lcores[0].roles, (uint32_t)ZAP_LCORE_ROLES_REQUIRED);
	zap_config_free(c);
}

TEST(ConfigExamples, Local3NodeLoads)
{
	zap_config *c = LoadExample("local-3node.yaml");
	ASSERT_NE(c, nullptr);
	EXPECT_EQ(c->n_nodes, 3u);
	const zap_node_config *n2 = zap_config_node(c, 2);
	ASSERT_NE(n2, nullptr);
	EXPECT_STREQ(n2->name, "n2");
	EXPECT_EQ(n2->zeo.port, 8102);
	EXPECT_STREQ(n2->zeo.host, "127.0.0.1");
	EXPECT_STREQ(n2->log_dir, "/tmp/zap/n2");
	EXPECT_EQ(n2->n_ports, 3u);
	EXPECT_EQ(n2->ports[0].peer_id, 1);
	EXPECT_STREQ(n2->ports[0].vdev_name, "net_memif0");
	EXPECT_EQ(c->cluster.id, 0x7a01u);
	EXPECT_EQ(c->paxos.batch_bytes, 1024u * 1024);
	EXPECT_EQ(c->store.size_bytes, 4ull << 30);
	EXPECT_EQ(c->store.max_record_bytes, 1ull << 30);
	EXPECT_EQ(c->txn.max_bytes, 2ull << 30);
	EXPECT_EQ(c->zeo.io_threads, 0u);
	EXPECT_EQ(c->zeo.max_connections, 4096u);
	EXPECT_EQ(c->zeo.max_output_bytes, 16ull << 20);
	zap_config_free(c);
}

TEST(ConfigExamples, Rack3NodeLoads)
{
	zap_config *c = LoadExample("rack-3node.yaml");
	ASSERT_NE(c, nullptr);
	EXPECT_EQ(c->n_nodes, 3u);
	EXPECT_EQ(c->store.backing, ZAP_STORE_BACKING_HUGETLBFS);
	EXPECT_STREQ(c->store.hugetlbfs_dir, "/dev/hugepages/zap");
	EXPECT_EQ(c->store.size_bytes, 64ull << 30);
	EXPECT_EQ(c->log.durability, ZAP_DURABILITY_FSYNC);
	EXPECT_EQ(c->cluster.secret_len, 32u);
	EXPECT_STREQ(c->nodes[2].ports[0].pci, "0000:3b:00.0");
	const zap_lcore_config *l = zap_config_lcore_for_role(c, ZAP_LCORE_ROLE_PAXOS);
	ASSERT_NE(l, nullptr);
	EXPECT_EQ(l->lcore, 3);
	EXPECT_EQ(l->polling, ZAP_POLLING_BUSY);
	zap_config_free(c);
}

TEST(ConfigExamples, Rack5NodeLoads)
{
	zap_config *c = LoadExample("rack-5node.yaml");
	ASSERT_NE(c, nullptr);
	EXPECT_EQ(c->n_nodes, 5u);
	EXPECT_NE(zap_config_node(c, 5), nullptr);
	EXPECT_EQ(zap_config_node(c, 6), nullptr);
	EXPECT_EQ(c->nodes[4].replication.ipv4_be, htonl(0x0a0a0005));
	EXPECT_EQ(c->nodes[4].replication.mac[5], 0x05);
	EXPECT_EQ(c->paxos.election_timeout_ms, 200u);
	zap_config_free(c);
}

// ---- defaults ---------------------------------------------------------------

TEST(ConfigDefaults, MinimalConfigGetsEveryDefault)
{
	auto l = LoadOk(Base());
	const zap_config *c = l->c;
	ASSERT_NE(c, nullptr);
	EXPECT_EQ(c->polling.spin_us, 50u);
	EXPECT_EQ(c->polling.yield_us, 200u);
	EXPECT_EQ(c->polling.sleep_us, 1000u);
	EXPECT_EQ(c->store.size_bytes, 1ull << 30);
	EXPECT_EQ(c->store.max_record_bytes, 16ull << 20);
	EXPECT_EQ(c->store.backing, ZAP_STORE_BACKING_MEMFD);
	EXPECT_EQ(c->store.hugetlbfs_dir, nullptr);
	EXPECT_STREQ(c->log.dir, "/tmp/zap/t");
	EXPECT_STREQ(c->nodes[0].log_dir, "/tmp/zap/t");
	EXPECT_EQ(c->log.durability, ZAP_DURABILITY_FSYNC);
	EXPECT_EQ(c->log.segment_bytes, 64ull << 20);
	EXPECT_EQ(c->log.group_commit_us, 100u);
	EXPECT_EQ(c->log.group_commit_max, 64u);
	EXPECT_EQ(c->paxos.window, 256u);
	EXPECT_EQ(c->paxos.batch_count, 64u);
	EXPECT_EQ(c->paxos.batch_bytes, 1048576u);
	EXPECT_EQ(c->paxos.heartbeat_ms, 50u);
	EXPECT_EQ(c->paxos.election_timeout_ms, 500u);
	EXPECT_EQ(c->txn.lease_ms, 10000u);
	EXPECT_EQ(c->txn.max_sessions, 4096u);
	EXPECT_EQ(c->txn.max_bytes, 2ull << 30);
	EXPECT_EQ(c->zeo.io_threads, 0u);
	EXPECT_EQ(c->zeo.max_connections, 4096u);
	EXPECT_EQ(c->zeo.max_output_bytes, 16ull << 20);
	EXPECT_EQ(c->zeo.encoding, ZAP_ZEO_ENCODING_PICKLE);
	EXPECT_EQ(c->zeo.max_message_bytes, 64ull << 20);
	EXPECT_EQ(c->txn.max_objects, 65536u);
	EXPECT_EQ(c->txn.max_text_bytes, 1u << 20);
	EXPECT_EQ(c->store.txn_ring_slots, 65536u);
	EXPECT_EQ(c->log.checkpoint_slots, 1000000u);
	EXPECT_EQ(c->log.checkpoint_bytes, 512ull << 20);
	EXPECT_EQ(c->log.checkpoint_seconds, 900u);
	EXPECT_EQ(c->lcores[0].polling, ZAP_POLLING_ADAPTIVE);
	EXPECT_EQ(c->nodes[0].zeo_unix, nullptr);
	EXPECT_EQ(c->nodes[0].ports[0].peer_id, 0);
	EXPECT_STREQ(c->source, "t.yaml");
}

TEST(ConfigDefaults, SizesAcceptSuffixesAndPlainBytes)
{
	auto v = Base();
	v.push_back("store: {size: 2G, max_record: 1048576}");
	v.push_back("paxos: {batch_bytes: 4KiB}");
	auto l = LoadOk(v);
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->store.size_bytes, 2ull << 30);
	EXPECT_EQ(l->c->store.max_record_bytes, 1ull << 20);
	EXPECT_EQ(l->c->paxos.batch_bytes, 4096u);
}

TEST(ConfigZeo, EachKeyIsParsed)
{
	auto v = Base();
	v.push_back("zeo:");
	v.push_back("  io_threads: 4");
	v.push_back("  max_connections: 200");
	v.push_back("  max_output_bytes: 2MiB");
	auto l = LoadOk(v);
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->zeo.io_threads, 4u);
	EXPECT_EQ(l->c->zeo.max_connections, 200u);
	EXPECT_EQ(l->c->zeo.max_output_bytes, 2ull << 20);
	// the node's own zeo listener is untouched by the section
	EXPECT_STREQ(l->c->nodes[0].zeo.host, "127.0.0.1");
	EXPECT_EQ(l->c->nodes[0].zeo.port, 8100);
}

TEST(ConfigZeo, OneKeyLeavesTheOthersAtTheirDefaults)
{
	auto v = Base();
	v.push_back("zeo: {max_connections: 8}");
	auto l = LoadOk(v);
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->zeo.io_threads, 0u);
	EXPECT_EQ(l->c->zeo.max_connections, 8u);
	EXPECT_EQ(l->c->zeo.max_output_bytes, 16ull << 20);
}

TEST(ConfigZeo, RangeEndsAreAccepted)
{
	auto v = Base();
	v.push_back("zeo: {io_threads: 0, max_connections: 1, max_output_bytes: 64K}");
	auto l = LoadOk(v);
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->zeo.io_threads, 0u);
	EXPECT_EQ(l->c->zeo.max_connections, 1u);
	EXPECT_EQ(l->c->zeo.max_output_bytes, 65536u);

	v = Base();
	v.push_back("zeo: {io_threads: 64, max_connections: 65536, max_output_bytes: 4294967296}");
	l = LoadOk(v);
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->zeo.io_threads, 64u);
	EXPECT_EQ(l->c->zeo.max_connections, 65536u);
	EXPECT_EQ(l->c->zeo.max_output_bytes, 4ull << 30);
}

// `zeo: KEY: VALUE` appended to Base(): the value is on line 19.
static std::vector<std::string> WithZeo(const std::string &key_value)
{
	auto v = Base();
	v.push_back("zeo:");
	v.push_back("  " + key_value);
	return v;
}

TEST(ConfigZeo, OutOfRangeValuesAreRefused)
{
	ExpectError(WithZeo("io_threads: 65"), 19, "zeo.io_threads: 65 is out of range (0..64)");
	ExpectError(WithZeo("max_connections: 0"), 19,
		    "zeo.max_connections: 0 is out of range (1..65536)");
	ExpectError(WithZeo("max_connections: 65537"), 19,
		    "zeo.max_connections: 65537 is out of range (1..65536)");
	ExpectError(WithZeo("max_connections: 4294967296"), 19,
		    "zeo.max_connections: 4294967296 is out of range");
	ExpectError(WithZeo("max_output_bytes: 63K"), 19,
		    "zeo.max_output_bytes: 63K is out of range (65536..4294967296 bytes)");
	ExpectError(WithZeo("max_output_bytes: 4294967297"), 19,
		    "zeo.max_output_bytes: 4294967297 is out of range (65536..4294967296 bytes)");
	ExpectError(WithZeo("max_output_bytes: 5G"), 19,
		    "zeo.max_output_bytes: 5G is out of range");
	ExpectError(WithZeo("max_output_bytes: 99999999999T"), 19,
		    "zeo.max_output_bytes: '99999999999T' is too large");
}

TEST(ConfigZeo, GarbageValuesAreRefused)
{
	ExpectError(WithZeo("io_threads: auto"), 19,
		    "zeo.io_threads: 'auto' is not an unsigned integer");
	ExpectError(WithZeo("io_threads: -1"), 19,
		    "zeo.io_threads: '-1' is not an unsigned integer");
	ExpectError(WithZeo("max_connections: 1k"), 19,
		    "zeo.max_connections: '1k' is not an unsigned integer");
	ExpectError(WithZeo("max_output_bytes: lots"), 19,
		    "zeo.max_output_bytes: 'lots' is not a size");
	ExpectError(WithZeo("max_output_bytes: 16 MiB"), 19,
		    "zeo.max_output_bytes: '16 MiB' is not a size");
	ExpectError(WithZeo("max_output_bytes: ~"), 19, "zeo.max_output_bytes: no value");
	ExpectError(WithZeo("max_connections: [1]"), 19,
		    "zeo.max_connections: expected a scalar, got a sequence");
}

TEST(ConfigZeo, UnknownKeyIsRefused)
{
	ExpectError(WithZeo("max_conections: 10"), 19,
		    "unknown key 'max_conections' in zeo (expected one of: io_threads, "
		    "max_connections, max_output_bytes, encoding, max_message_bytes)");
	auto v = WithZeo("io_threads: 2");
	v.push_back("  threads: 2");
	ExpectError(v, 20, "unknown key 'threads' in zeo");
}

TEST(ConfigZeo, SectionIsAMappingAndTheNodeKeyAScalar)
{
	auto v = Base();
	v.push_back("zeo: \"127.0.0.1:8100\"");
	ExpectError(v, 18, "zeo: expected a mapping, got a scalar");
	ExpectError(Set(Base(), 9, "    zeo: {max_connections: 10}"), 9,
		    "nodes[0].zeo: expected a scalar, got a mapping");
}

// `txn: KEY: VALUE` appended to Base(): the value is on line 19.
static std::vector<std::string> WithTxn(const std::string &key_value)
{
	auto v = Base();
	v.push_back("txn:");
	v.push_back("  " + key_value);
	return v;
}

TEST(ConfigTxn, MaxBytesIsParsed)
{
	auto l = LoadOk(WithTxn("max_bytes: 64M"));
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->txn.max_bytes, 64ull << 20);
	// the other txn keys keep their defaults
	EXPECT_EQ(l->c->txn.lease_ms, 10000u);
	EXPECT_EQ(l->c->txn.max_sessions, 4096u);

	auto v = Base();
	v.push_back("txn: {lease_ms: 500, max_sessions: 8, max_bytes: 3221225472}");
	l = LoadOk(v);
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->txn.lease_ms, 500u);
	EXPECT_EQ(l->c->txn.max_sessions, 8u);
	EXPECT_EQ(l->c->txn.max_bytes, 3ull << 30);
}

TEST(ConfigTxn, MaxBytesRangeEndsAreAccepted)
{
	auto l = LoadOk(WithTxn("max_bytes: 64K"));
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->txn.max_bytes, 65536u);
	l = LoadOk(WithTxn("max_bytes: 64GiB"));
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->txn.max_bytes, 64ull << 30);
}

TEST(ConfigTxn, MaxBytesOutOfRangeIsRefused)
{
	ExpectError(WithTxn("max_bytes: 1K"), 19,
		    "txn.max_bytes: 1K is out of range (65536..68719476736 bytes)");
	ExpectError(WithTxn("max_bytes: 65535"), 19,
		    "txn.max_bytes: 65535 is out of range (65536..68719476736 bytes)");
	ExpectError(WithTxn("max_bytes: 128G"), 19,
		    "txn.max_bytes: 128G is out of range (65536..68719476736 bytes)");
	ExpectError(WithTxn("max_bytes: 68719476737"), 19,
		    "txn.max_bytes: 68719476737 is out of range");
	ExpectError(WithTxn("max_bytes: 99999999999T"), 19,
		    "txn.max_bytes: '99999999999T' is too large");
}

TEST(ConfigTxn, MaxBytesGarbageIsRefused)
{
	ExpectError(WithTxn("max_bytes: big"), 19, "txn.max_bytes: 'big' is not a size");
	ExpectError(WithTxn("max_bytes: 1 GiB"), 19, "txn.max_bytes: '1 GiB' is not a size");
	ExpectError(WithTxn("max_bytes: ~"), 19, "txn.max_bytes: no value");
	ExpectError(WithTxn("max_bytes: [1G]"), 19,
		    "txn.max_bytes: expected a scalar, got a sequence");
	ExpectError(WithTxn("max_byte: 1G"), 19,
		    "unknown key 'max_byte' in txn (expected one of: lease_ms, max_sessions, "
		    "max_bytes, max_objects, max_text_bytes)");
}

// Base() with more keys in its log section (after line 17).
static std::vector<std::string> WithLog(const std::string &key_value)
{
	auto v = Base();
	v.push_back("  " + key_value);
	return v;
}

TEST(ConfigCheckpoints, EachTriggerIsParsed)
{
	auto v = Base();
	v.push_back("  checkpoint_slots: 5000");
	v.push_back("  checkpoint_bytes: 64M");
	v.push_back("  checkpoint_seconds: 30");
	auto l = LoadOk(v);
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->log.checkpoint_slots, 5000u);
	EXPECT_EQ(l->c->log.checkpoint_bytes, 64ull << 20);
	EXPECT_EQ(l->c->log.checkpoint_seconds, 30u);
	// one key leaves the others at their defaults
	l = LoadOk(WithLog("checkpoint_slots: 50"));
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->log.checkpoint_slots, 50u);
	EXPECT_EQ(l->c->log.checkpoint_bytes, 512ull << 20);
	EXPECT_EQ(l->c->log.checkpoint_seconds, 900u);
}

TEST(ConfigCheckpoints, ZeroTurnsATriggerOff)
{
	auto v = Base();
	v.push_back("  checkpoint_slots: 0");
	v.push_back("  checkpoint_bytes: 0");
	v.push_back("  checkpoint_seconds: 0");
	auto l = LoadOk(v);
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->log.checkpoint_slots, 0u);
	EXPECT_EQ(l->c->log.checkpoint_bytes, 0u);
	EXPECT_EQ(l->c->log.checkpoint_seconds, 0u);
}

TEST(ConfigCheckpoints, OutOfRangeAndGarbageAreRefused)
{
	ExpectError(WithLog("checkpoint_bytes: 512K"), 18,
		    "log.checkpoint_bytes: 512K is out of range (1048576..");
	ExpectError(WithLog("checkpoint_bytes: 2T"), 18, "log.checkpoint_bytes: 2T is out of range");
	ExpectError(WithLog("checkpoint_bytes: lots"), 18,
		    "log.checkpoint_bytes: 'lots' is not a size");
	ExpectError(WithLog("checkpoint_seconds: 604801"), 18,
		    "log.checkpoint_seconds: 604801 is out of range (0..604800)");
	ExpectError(WithLog("checkpoint_slots: -1"), 18, "log.checkpoint_slots");
	ExpectError(WithLog("checkpoint_slot: 5"), 18, "unknown key 'checkpoint_slot' in log");
}

TEST(ConfigStore, TxnRingSlotsIsParsedAndBounded)
{
	auto v = Base();
	v.push_back("store: {txn_ring_slots: 4}");
	auto l = LoadOk(v);
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->store.txn_ring_slots, 4u);
	v = Base();
	v.push_back("store: {txn_ring_slots: 1}");
	ExpectError(v, 18, "store.txn_ring_slots: 1 is out of range (2..16777216)");
	v = Base();
	v.push_back("store: {txn_ring_slots: 16777217}");
	ExpectError(v, 18, "store.txn_ring_slots: 16777217 is out of range (2..16777216)");
}

TEST(ConfigTxn, ObjectAndTextLimitsAreParsedAndBounded)
{
	auto l = LoadOk(WithTxn("max_objects: 100"));
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->txn.max_objects, 100u);
	l = LoadOk(WithTxn("max_text_bytes: 4K"));
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->txn.max_text_bytes, 4096u);
	ExpectError(WithTxn("max_objects: 0"), 19, "txn.max_objects: 0 is out of range (1..1048576)");
	ExpectError(WithTxn("max_objects: 1048577"), 19, "txn.max_objects: 1048577 is out of range");
	ExpectError(WithTxn("max_text_bytes: 1023"), 19,
		    "txn.max_text_bytes: 1023 is out of range (1024..67108864 bytes)");
	ExpectError(WithTxn("max_text_bytes: 65M"), 19, "txn.max_text_bytes: 65M is out of range");
}

TEST(ConfigZeo, MaxMessageBytesIsParsedAndBounded)
{
	auto l = LoadOk(WithZeo("max_message_bytes: 8M"));
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->zeo.max_message_bytes, 8ull << 20);
	ExpectError(WithZeo("max_message_bytes: 512K"), 19,
		    "zeo.max_message_bytes: 512K is out of range (1048576..1073741824 bytes)");
	ExpectError(WithZeo("max_message_bytes: 2G"), 19, "zeo.max_message_bytes: 2G is out of range");
}

TEST(ConfigZeo, EncodingIsPickleOrMsgpack)
{
	auto l = LoadOk(WithZeo("encoding: msgpack"));
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->zeo.encoding, ZAP_ZEO_ENCODING_MSGPACK);
	l = LoadOk(WithZeo("encoding: pickle"));
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->zeo.encoding, ZAP_ZEO_ENCODING_PICKLE);
	ExpectError(WithZeo("encoding: json"), 19, "zeo.encoding");
}

TEST(ConfigDefaults, HexClusterIdAndIpv6Listener)
{
	auto v = Set(Base(), 2, "  id: 0xdeadbeef");
	v = Set(v, 9, "    zeo: \"[::1]:8100\"");
	auto l = LoadOk(v);
	ASSERT_NE(l->c, nullptr);
	EXPECT_EQ(l->c->cluster.id, 0xdeadbeefu);
	EXPECT_STREQ(l->c->nodes[0].zeo.host, "::1");
}

// ---- file-level errors --------------------------------------------------------

TEST(ConfigFile, MissingFileIsAFileLevelError)
{
	char err[512];
	zap_config *c = reinterpret_cast<zap_config *>(1);
	int rc = zap_config_load("/nonexistent/zap.yaml", &c, err, sizeof(err));
	EXPECT_EQ(rc, -ENOENT);
	EXPECT_EQ(c, nullptr);
	EXPECT_EQ(std::string(err).rfind("/nonexistent/zap.yaml: cannot open", 0), 0u) << err;
}

TEST(ConfigFile, DirectoryIsAFileLevelError)
{
	char err[512];
	zap_config *c = nullptr;
	EXPECT_EQ(zap_config_load("/tmp", &c, err, sizeof(err)), -EISDIR);
	EXPECT_EQ(std::string(err).rfind("/tmp: ", 0), 0u) << err;
}

TEST(ConfigFile, EmptyDocumentIsRejected)
{
	ExpectError({"# nothing here"}, 1, "empty configuration");
}

TEST(ConfigFile, NullArgumentsAreRejected)
{
	zap_config *c = nullptr;
	EXPECT_EQ(zap_config_load_string("x", nullptr, 3, &c, nullptr, 0), -EINVAL);
	EXPECT_EQ(zap_config_load(nullptr, &c, nullptr, 0), -EINVAL);
	zap_config_free(nullptr);
	EXPECT_EQ(zap_config_node(nullptr, 1), nullptr);
}

// ---- YAML and schema errors ----------------------------------------------------

TEST(ConfigErrors, YamlSyntaxError)
{
	ExpectError(Set(Base(), 9, "    zeo: [unclosed"), 10, "YAML syntax error");
}

TEST(ConfigErrors, BadIndentationIsASyntaxError)
{
	ExpectError(Set(Base(), 6, "     name: a"), 6, "YAML syntax error");
}

TEST(ConfigErrors, UnknownKey)
{
	ExpectError(Ins(Base(), 7, "    nmae: b"), 7, "unknown key 'nmae' in nodes[0]");
}

TEST(ConfigErrors, UnknownTopLevelKey)
{
	auto v = Base();
	v.push_back("stroe:");
	v.push_back("  size: 1G");
	ExpectError(v, 18, "unknown key 'stroe' at top level");
}

TEST(ConfigErrors, DuplicateKey)
{
	ExpectError(Ins(Base(), 3, "  id: 2"), 3, "duplicate key 'id' (first at line 2)");
}

TEST(ConfigErrors, MissingRequiredKey)
{
	ExpectError(Del(Base(), 6), 5, "nodes[0]: missing required key 'name'");
}

TEST(ConfigErrors, MissingRequiredSection)
{
	auto v = Base();
	v.resize(15);
	ExpectError(v, 1, "missing required key 'log'");
}

TEST(ConfigErrors, WrongTypeMappingForScalar)
{
	ExpectError(Set(Base(), 6, "    name: {first: a}"), 6, "nodes[0].name: expected a scalar");
}

TEST(ConfigErrors, WrongTypeScalarForMapping)
{
	auto v = Base();
	v.push_back("store: 1G");
	ExpectError(v, 18, "store: expected a mapping");
}

TEST(ConfigErrors, BadNumber)
{
	ExpectError(Set(Base(), 5, "  - id: one"), 5, "'one' is not an unsigned integer");
}

TEST(ConfigErrors, NumberWithLeadingZeroIsRejected)
{
	ExpectError(Set(Base(), 5, "  - id: 010"), 5, "'010' is not an unsigned integer");
}

TEST(ConfigErrors, NumberOutOfRange)
{
	ExpectError(Set(Base(), 5, "  - id: 70000"), 5, "70000 is out of range (0..65535)");
}

TEST(ConfigErrors, NegativeNumber)
{
	auto v = Base();
	v.push_back("txn:");
	v.push_back("  lease_ms: -5");
	ExpectError(v, 19, "txn.lease_ms: '-5' is not an unsigned integer");
}

TEST(ConfigErrors, ValueOutOfRuleRange)
{
	auto v = Base();
	v.push_back("paxos:");
	v.push_back("  window: 0");
	ExpectError(v, 19, "paxos.window: 0 is out of range (1..65536)");
}

TEST(ConfigErrors, BadEnumValue)
{
	auto v = Base();
	v.push_back("store:");
	v.push_back("  backing: tmpfs");
	ExpectError(v, 19, "store.backing: 'tmpfs' is not one of: memfd, hugetlbfs");
}

TEST(ConfigErrors, BadSize)
{
	auto v = Base();
	v.push_back("store:");
	v.push_back("  size: 12Q");
	ExpectError(v, 19, "store.size: '12Q' is not a size");
}

TEST(ConfigErrors, MaxRecordAboveHalfTheStore)
{
	auto v = Base();
	v.push_back("store:");
	v.push_back("  size: 16M");
	v.push_back("  max_record: 9M");
	ExpectError(v, 20, "must be at most half of store.size");
}

TEST(ConfigErrors, AliasIsRejected)
{
	auto v = Set(Base(), 9, "    zeo: &z \"127.0.0.1:8100\"");
	v = Set(v, 10, "    admin: *z");
	ExpectError(v, 10, "aliases");
}

TEST(ConfigErrors, NullStringValue)
{
	ExpectError(Ins(Base(), 11, "    zeo_unix: ~"), 11, "nodes[0].zeo_unix: no value");
}

TEST(ConfigErrors, LoneCarriageReturn)
{
	auto v = Set(Base(), 6, "    name: a\r    name: b");
	ExpectError(v, 6, "carriage return without line feed");
}

TEST(ConfigDefaults, CrLfLineEndingsLoad)
{
	std::string text;
	for (const auto &l : Base())
		text += l + "\r\n";
	std::unique_ptr<Loaded> l(Load(text));
	EXPECT_EQ(l->rc, 0) << l->err;
}

TEST(ConfigErrors, SecondDocumentIsRejected)
{
	auto v = Base();
	v.push_back("---");
	v.push_back("cluster: {}");
	ExpectError(v, 18, "only one YAML document");
}

// ---- cluster ------------------------------------------------------------------

TEST(ConfigErrors, ShortSecret)
{
	ExpectError(Set(Base(), 3, "  secret: \"0011223344556677\""), 3,
		    "cluster.secret: too short");
}

TEST(ConfigErrors, SecretNotHex)
{
	ExpectError(Set(Base(), 3, "  secret: \"correct horse battery staple!!\""), 3,
		    "hex digits");
}

TEST(ConfigErrors, ZeroClusterId)
{
	ExpectError(Set(Base(), 2, "  id: 0"), 2, "cluster.id: must not be 0");
}

// ---- nodes ----------------------------------------------------------------------

TEST(ConfigErrors, EvenClusterSize)
{
	auto v = WithNodes(2);
	ExpectError(v, 4, "even cluster size 2");
}

TEST(ConfigErrors, EmptyCluster)
{
	auto v = Base();
	v.erase(v.begin() + 4, v.begin() + 12);
	v[3] = "nodes: []";
	ExpectError(v, 4, "got none");
}

TEST(ConfigErrors, TooManyNodes)
{
	ExpectError(WithNodes(7), 4, "7 nodes; at most 5");
}

TEST(ConfigNodes, ThreeAndFiveNodesLoad)
{
	LoadOk(WithNodes(3));
	LoadOk(WithNodes(5));
}

TEST(ConfigErrors, DuplicateNodeId)
{
	auto v = WithNodes(3);
	v = Set(v, 21, "  - id: 2"); // third node (starts at line 21)
	ExpectError(v, 21, "duplicate node id 2 (also nodes[1], line 13)");
}

TEST(ConfigErrors, DuplicateNodeName)
{
	ExpectError(Set(WithNodes(3), 22, "    name: n1"), 22, "duplicate node name 'n1'");
}

TEST(ConfigErrors, BadMac)
{
	ExpectError(
	    Set(Base(), 7,
		"    replication: {mac: \"02:00:00:00:00\", ipv4: 10.0.0.1, udp_port: 7000}"),
	    7, "nodes[0].replication.mac: '02:00:00:00:00' is not a MAC address");
}

TEST(ConfigErrors, MulticastMac)
{
	ExpectError(Set(Base(), 8,
			"    client: {mac: \"01:00:5e:00:00:01\", ipv4: 10.0.1.1, udp_port: 7100}"),
		    8, "multicast");
}

TEST(ConfigErrors, BadIpv4)
{
	auto v = Set(Base(), 7, "    replication:");
	v = Ins(v, 8, "      mac: \"02:00:00:00:00:01\"");
	v = Ins(v, 9, "      ipv4: 10.0.0.256");
	v = Ins(v, 10, "      udp_port: 7000");
	ExpectError(v, 9, "nodes[0].replication.ipv4: '10.0.0.256' is not an IPv4 address");
}

TEST(ConfigErrors, BadHostPort)
{
	ExpectError(Set(Base(), 9, "    zeo: \"127.0.0.1\""), 9,
		    "nodes[0].zeo: '127.0.0.1' is not host:port");
}

TEST(ConfigErrors, HostPortWithPortZero)
{
	ExpectError(Set(Base(), 10, "    admin: \"localhost:0\""), 10, "port 0");
}

TEST(ConfigErrors, DuplicateZeoListener)
{
	ExpectError(Set(WithNodes(3), 17, "    zeo: \"127.0.0.1:8101\""), 17,
		    "nodes[1].zeo: also used by node 1");
}

TEST(ConfigErrors, DuplicateClientUdpAddress)
{
	auto v = Ins(WithNodes(3), 10, "    client_udp: \"127.0.0.1:7201\"");
	v = Ins(v, 19, "    client_udp: \"127.0.0.1:7201\"");
	ExpectError(v, 19, "nodes[1].client_udp: also used by node 1");
}

TEST(ConfigNodes, ClientUdpIsOptional)
{
	zap_config *c = LoadExample("local-3node.yaml");
	ASSERT_NE(c, nullptr);
	EXPECT_STREQ(c->nodes[1].client_udp.host, "127.0.0.1");
	EXPECT_EQ(c->nodes[1].client_udp.port, 7202);
	zap_config_free(c);
	c = LoadExample("rack-3node.yaml");
	ASSERT_NE(c, nullptr);
	EXPECT_EQ(c->nodes[0].client_udp.host, nullptr);
	EXPECT_EQ(c->nodes[0].client_udp.port, 0);
	zap_config_free(c);
}

// ---- ports ------------------------------------------------------------------------

TEST(ConfigErrors, PortReusedPci)
{
	auto v = Ins(Base(), 13, "      - {role: client, pci: \"0000:3b:00.0\"}");
	v = Ins(v, 14, "      - {role: client, pci: \"3b:00.0\"}");
	ExpectError(v, 14, "port reused: pci '0000:3b:00.0' is already ports[1] (line 13)");
}

TEST(ConfigErrors, SecondClientPort)
{
	auto v = Ins(Base(), 13, "      - {role: client, vdev: \"net_memif0,role=server,id=0\"}");
	v = Ins(v, 14, "      - {role: client, vdev: \"net_memif1,role=server,id=1\"}");
	ExpectError(v, 14,
		    "nodes[0].ports[2].role: a second client port (ports[1], line 13, is one)");
}

TEST(ConfigNodes, ClientPortIsServedAtTheClientEndpoint)
{
	auto v = Ins(Base(), 13,
		     "      - {role: client, vdev: \"net_memif0,role=server,id=0,socket=/t/c.sock\"}");
	auto l = LoadOk(v);
	ASSERT_NE(l->c, nullptr);
	const zap_node_config *n = &l->c->nodes[0];
	ASSERT_EQ(n->n_ports, 2u);
	EXPECT_EQ(n->ports[1].role, ZAP_PORT_ROLE_CLIENT);
	EXPECT_STREQ(n->ports[1].vdev_name, "net_memif0");
	EXPECT_EQ(n->client.udp_port, 7100);
}

TEST(ConfigErrors, ClientPortHasNoPeer)
{
	ExpectError(Ins(Base(), 13, "      - {role: client, vdev: net_memif0, peer: 2}"), 13,
		    "only replication ports have a peer");
}

TEST(ConfigErrors, PortReusedVdev)
{
	ExpectError(Ins(Base(), 13, "      - {role: client, vdev: \"net_null0,size=64\"}"), 13,
		    "port reused: vdev 'net_null0'");
}

TEST(ConfigErrors, PortNeedsExactlyOneDevice)
{
	ExpectError(
	    Set(Base(), 12, "      - {role: replication, vdev: net_null0, pci: \"00:01.0\"}"), 12,
	    "needs exactly one of pci or vdev");
}

TEST(ConfigErrors, BadPciAddress)
{
	ExpectError(Set(Base(), 12, "      - {role: replication, pci: \"3b:00\"}"), 12,
		    "is not a PCI address");
}

TEST(ConfigErrors, PeerMustExist)
{
	ExpectError(Set(Base(), 12, "      - {role: replication, vdev: net_null0, peer: 9}"), 12,
		    "no node has id 9");
}

TEST(ConfigErrors, EveryPeerMustBeReachable)
{
	auto v = WithNodes(3);
	// node 1 (lines 5..12): only a link to node 2
	v = Set(v, 12, "      - {role: replication, vdev: net_memif0, peer: 2}");
	ExpectError(v, 11, "nodes[0]: no replication port reaches node 3");
}

// ---- lcores -------------------------------------------------------------------------

TEST(ConfigErrors, RoleGivenTwiceOnOneLcore)
{
	ExpectError(Set(Base(), 15, "    roles: [io, paxos, io, log, apply]"), 15,
		    "'io' given twice");
}

TEST(ConfigErrors, RoleOnTwoLcores)
{
	auto v = Ins(Base(), 16, "  - lcore: 1");
	v = Ins(v, 17, "    roles: [paxos]");
	ExpectError(v, 17, "role 'paxos' given twice: already on lcore 0 (line 15)");
}

TEST(ConfigErrors, LcoreListedTwice)
{
	auto v = Ins(Base(), 16, "  - lcore: 0");
	v = Ins(v, 17, "    roles: [io]");
	v = Ins(v, 18, "    polling: busy");
	ExpectError(v, 16, "lcore 0 listed twice (first at line 14)");
}

// The ZEO gateway and the control plane run on no lcore: a config that gives
// an lcore either role is refused, naming the roles that exist.
TEST(ConfigErrors, GatewayAndControlAreNotLcoreRoles)
{
	ExpectError(Set(Base(), 15, "    roles: [io, paxos, log, apply, gateway]"), 15,
		    "lcores[0].roles: 'gateway' is not one of: io, paxos, log, apply");
	ExpectError(Set(Base(), 15, "    roles: [io, paxos, log, apply, control]"), 15,
		    "lcores[0].roles: 'control' is not one of: io, paxos, log, apply");
	auto v = Ins(Base(), 16, "  - lcore: 1");
	v = Ins(v, 17, "    roles: [gateway, control]");
	ExpectError(v, 17, "lcores[1].roles: 'gateway' is not one of: io, paxos, log, apply");
}

TEST(ConfigErrors, RequiredRoleMissing)
{
	ExpectError(Set(Base(), 15, "    roles: [io, paxos, apply]"), 13,
		    "role 'log' is on no lcore");
}

TEST(ConfigErrors, UnknownRole)
{
	ExpectError(Set(Base(), 15, "    roles: [io, paxos, log, apply, dance]"), 15,
		    "'dance' is not one of");
}

// ---- timing and store rules ------------------------------------------------------------

TEST(ConfigErrors, ElectionTimeoutMustExceedHeartbeat)
{
	auto v = Base();
	v.push_back("paxos:");
	v.push_back("  heartbeat_ms: 100");
	v.push_back("  election_timeout_ms: 100");
	ExpectError(v, 20, "paxos.election_timeout_ms (100) must exceed paxos.heartbeat_ms (100)");
}

TEST(ConfigErrors, HeartbeatAboveDefaultElectionTimeout)
{
	auto v = Base();
	v.push_back("paxos:");
	v.push_back("  heartbeat_ms: 1000");
	ExpectError(v, 19, "must exceed paxos.heartbeat_ms (1000)");
}

TEST(ConfigErrors, HugetlbfsWithoutDir)
{
	auto v = Base();
	v.push_back("store:");
	v.push_back("  backing: hugetlbfs");
	ExpectError(v, 19, "backing hugetlbfs needs hugetlbfs_dir");
}

TEST(ConfigErrors, HugetlbfsDirWithMemfd)
{
	auto v = Base();
	v.push_back("store:");
	v.push_back("  hugetlbfs_dir: /dev/hugepages");
	ExpectError(v, 19, "only valid with backing: hugetlbfs");
}
