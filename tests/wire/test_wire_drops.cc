/* SPDX-License-Identifier: Apache-2.0 */
/* Wire codec: one crafted frame per drop reason, the node table, a seeded
 * mutation fuzz test, and ARP replies. */
#include "wire_fixture.h"

TEST_F(Wire, DropTruncated)
{
	Bytes f = frame12();
	expect_drop(b, Bytes(f.begin(), f.begin() + 20), ZAP_WIRE_DROP_TRUNCATED);
	expect_drop(b, Bytes(f.begin(), f.end() - 1),
		    ZAP_WIRE_DROP_TRUNCATED); // IP length beyond frame
	expect_drop(b, Bytes(), ZAP_WIRE_DROP_TRUNCATED);
	zap_paxos_msg out{};
	EXPECT_EQ(zap_wire_decode_paxos(b.w, nullptr, 0, 0, &out), -ENODATA);
	// a UDP datagram too short to hold a zap header
	Bytes s(f.begin(), f.begin() + kZap + 50);
	set_be16(s.data() + kIp + 2, (uint16_t)(s.size() - 14));
	set_be16(s.data() + kUdp + 4, (uint16_t)(s.size() - 34));
	fix_checksums(s);
	expect_drop(b, s, ZAP_WIRE_DROP_TRUNCATED);
}

TEST_F(Wire, DropNotIpv4)
{
	Bytes f = frame12();
	set_be16(f.data() + 12, 0x86dd);
	expect_drop(b, f, ZAP_WIRE_DROP_NOT_IPV4);
	f = frame12();
	f[kIp] = 0x65; // version 6
	expect_drop(b, f, ZAP_WIRE_DROP_NOT_IPV4);
}

TEST_F(Wire, DropIpOptionsOrFragment)
{
	Bytes f = frame12();
	f[kIp] = 0x46;
	expect_drop(b, f, ZAP_WIRE_DROP_IP_UNSUPPORTED);
	f = frame12();
	set_be16(f.data() + kIp + 6, 0x2000); // MF
	fix_checksums(f);
	expect_drop(b, f, ZAP_WIRE_DROP_IP_UNSUPPORTED);
}

TEST_F(Wire, DropNotUdp)
{
	Bytes f = frame12();
	f[kIp + 9] = 6;
	set_be16(f.data() + kIp + 10, ip_cksum(f.data()));
	expect_drop(b, f, ZAP_WIRE_DROP_NOT_UDP);
}

TEST_F(Wire, DropIpChecksum)
{
	Bytes f = frame12();
	f[kIp + 8] = 63; // TTL
	expect_drop(b, f, ZAP_WIRE_DROP_IP_CKSUM);
}

TEST_F(Wire, DropUdpLength)
{
	Bytes f = frame12();
	set_be16(f.data() + kUdp + 4, (uint16_t)(be16(f.data() + kUdp + 4) - 1));
	expect_drop(b, f, ZAP_WIRE_DROP_UDP_LEN);
}

TEST_F(Wire, DropUdpChecksum)
{
	Bytes f = frame12();
	f[f.size() - 20] ^= 1; // a payload byte
	expect_drop(b, f, ZAP_WIRE_DROP_UDP_CKSUM);
	f = frame12();
	f[kUdp + 6] = f[kUdp + 7] = 0; // "no checksum" is refused
	expect_drop(b, f, ZAP_WIRE_DROP_UDP_CKSUM);
}

TEST_F(Wire, DropNotForUs)
{
	Ctx c(3);
	expect_drop(c, frame12(), ZAP_WIRE_DROP_NOT_FOR_US); // IP address of node 2
	// right IP and port, but the zap receiver is node 3
	Bytes f = frame12();
	set_be16(f.data() + kZap + 22, 3);
	fix_checksums(f);
	expect_drop(b, f, ZAP_WIRE_DROP_NOT_FOR_US);
	f = frame12();
	set_be16(f.data() + kUdp + 2, 9999);
	fix_checksums(f);
	expect_drop(b, f, ZAP_WIRE_DROP_NOT_FOR_US);
}

TEST_F(Wire, DropBadMagic)
{
	Bytes f = frame12();
	f[kZap + 3] = '2';
	fix_checksums(f);
	expect_drop(b, f, ZAP_WIRE_DROP_BAD_MAGIC);
}

TEST_F(Wire, DropBadVersion)
{
	Bytes f = frame12();
	f[kZap + 4] = 2;
	fix_checksums(f);
	expect_drop(b, f, ZAP_WIRE_DROP_BAD_VERSION);
}

TEST_F(Wire, DropBadType)
{
	for (uint8_t t : {0, (int)ZAP_PAXOS_MSG_TYPE_COUNT, (int)ZAP_WIRE_TYPE_CLIENT_FIRST, 255}) {
		Bytes f = frame12();
		f[kZap + 5] = t;
		fix_checksums(f);
		expect_drop(b, f, ZAP_WIRE_DROP_BAD_TYPE);
	}
}

TEST_F(Wire, DropBadLength)
{
	Bytes f = frame12();
	f[kZap + 83]++; // payload length one more than the frame holds
	fix_checksums(f);
	expect_drop(b, f, ZAP_WIRE_DROP_BAD_LENGTH);
	f = frame12();
	f[kZap + 80] = 0x80; // 2 GiB
	fix_checksums(f);
	expect_drop(b, f, ZAP_WIRE_DROP_BAD_LENGTH);
	// a jumbo sender's 1400-byte payload, above this node's 1372
	Ctx j(1, kCluster, kSecret, sizeof(kSecret), kNodes, 9000, 1400);
	Bytes p = pattern(1400, 1);
	expect_drop(b, encode(j, msg(ZAP_PAXOS_MSG_ACCEPT, 1, 2, p)), ZAP_WIRE_DROP_BAD_LENGTH);
}

TEST_F(Wire, DropForeignCluster)
{
	Ctx other(1, kCluster + 1);
	Bytes p = pattern(10, 1);
	expect_drop(b, encode(other, msg(ZAP_PAXOS_MSG_HEARTBEAT, 1, 2, p)),
		    ZAP_WIRE_DROP_FOREIGN_CLUSTER);
}

TEST_F(Wire, DropUnknownSender)
{
	std::vector<zap_wire_node> nodes = kNodes;
	nodes.push_back(node(9));
	Ctx stranger(9, kCluster, kSecret, sizeof(kSecret), nodes);
	Bytes p = pattern(10, 1);
	expect_drop(b, encode(stranger, msg(ZAP_PAXOS_MSG_PREPARE, 9, 2, p)),
		    ZAP_WIRE_DROP_UNKNOWN_SENDER);
}

TEST_F(Wire, DropStaleEpoch)
{
	Bytes f = frame12(); // epoch 7
	expect_drop(b, f, ZAP_WIRE_DROP_STALE_EPOCH, 8);
	zap_paxos_msg out{};
	EXPECT_EQ(zap_wire_decode_paxos(b.w, f.data(), f.size(), 7, &out), 0);
}

TEST_F(Wire, DropBadMacFromAnotherSecret)
{
	uint8_t other[32];
	memcpy(other, kSecret, sizeof(other));
	other[31] ^= 0x80;
	Ctx x(1, kCluster, other, sizeof(other));
	Bytes p = pattern(300, 4);
	expect_drop(b, encode(x, msg(ZAP_PAXOS_MSG_ACCEPT, 1, 2, p)), ZAP_WIRE_DROP_BAD_MAC);
}

TEST_F(Wire, DropBadMacWhenHeaderOrPayloadOrTagChanges)
{
	for (size_t at : {kZap + 7, kZap + 24, kZap + 84, kZap + 84 + 99, kZap + 84 + 100 + 15}) {
		SCOPED_TRACE("byte " + std::to_string(at));
		Bytes f = frame12(100);
		f[at] ^= 0x10;
		fix_checksums(f);
		expect_drop(b, f, ZAP_WIRE_DROP_BAD_MAC);
	}
}

TEST_F(Wire, OneContextCountsEveryDropReason)
{
	// one crafted frame per reason through the same context
	Ctx c(2);
	Bytes good = frame12();
	auto edit = [&](auto fn, bool fix = true) {
		Bytes f = good;
		fn(f);
		if (fix)
			fix_checksums(f);
		zap_paxos_msg out{};
		return zap_wire_decode_paxos(c.w, f.data(), f.size(), 0, &out);
	};
	edit([](Bytes &f) { f.resize(10); }, false);
	edit([](Bytes &f) { f[12] = 0x86; }, false);
	edit([](Bytes &f) { f[kIp] = 0x47; }, false);
	edit([](Bytes &f) { f[kIp + 9] = 1; });
	edit([](Bytes &f) { f[kIp + 1] = 4; }, false);
	edit([](Bytes &f) { f[kUdp + 5]++; }, false);
	edit([](Bytes &f) { f[kUdp + 6]++; }, false);
	edit([](Bytes &f) { f[kIp + 19]++; });
	edit([](Bytes &f) { f[kZap]++; });
	edit([](Bytes &f) { f[kZap + 4]++; });
	edit([](Bytes &f) { f[kZap + 5] = 99; });
	edit([](Bytes &f) { f[kZap + 83]--; });
	edit([](Bytes &f) { f[kZap + 8]++; });
	edit([](Bytes &f) { f[kZap + 21] = 5; });
	zap_paxos_msg out{};
	zap_wire_decode_paxos(c.w, good.data(), good.size(), 8, &out); // stale
	edit([](Bytes &f) { f[kZap + 30]++; });
	struct zap_wire_stats st = c.stats();
	for (unsigned r = 0; r < ZAP_WIRE_DROP_COUNT; r++)
		EXPECT_GE(st.dropped[r], 1u) << zap_wire_drop_name(r);
	EXPECT_EQ(st.frames_decoded, 0u);
}

// ---------------------------------------------------------------- node table, encode errors

TEST_F(Wire, RemovedNodeBecomesUnknownSender)
{
	Bytes f = frame12();
	ASSERT_EQ(zap_wire_node_remove(b.w, 1), 0);
	expect_drop(b, f, ZAP_WIRE_DROP_UNKNOWN_SENDER);
	EXPECT_EQ(zap_wire_node_remove(b.w, 1), -ENOENT);
	EXPECT_EQ(zap_wire_node_remove(b.w, 2), -EINVAL);
	zap_wire_node n1 = node(1);
	ASSERT_EQ(zap_wire_node_set(b.w, &n1), 0);
	zap_paxos_msg out{};
	EXPECT_EQ(zap_wire_decode_paxos(b.w, f.data(), f.size(), 0, &out), 0);
}

TEST_F(Wire, NodeSetUpdatesAddressAndFillsTable)
{
	zap_wire_node n2 = node(2);
	n2.udp_port = 9002;
	ASSERT_EQ(zap_wire_node_set(a.w, &n2), 0);
	Bytes f = frame12();
	EXPECT_EQ(be16(f.data() + kUdp + 2), 9002);
	zap_wire_node bad = node(4);
	bad.udp_port = 0;
	EXPECT_EQ(zap_wire_node_set(a.w, &bad), -EINVAL);
	for (uint16_t id = 4; id <= ZAP_WIRE_MAX_NODES; id++) {
		zap_wire_node n = node(id);
		EXPECT_EQ(zap_wire_node_set(a.w, &n), 0);
	}
	zap_wire_node extra = node(100);
	EXPECT_EQ(zap_wire_node_set(a.w, &extra), -ENOSPC);
}

TEST_F(Wire, EncodeRejectsBadMessages)
{
	Bytes p = pattern(zap_wire_max_payload(a.w) + 1, 0);
	Bytes f(2000);
	zap_paxos_msg m = msg(ZAP_PAXOS_MSG_ACCEPT, 1, 2, p);
	EXPECT_EQ(zap_wire_encode_paxos(a.w, &m, f.data(), f.size()), -EMSGSIZE);
	m.len = 10;
	m.from = 2;
	EXPECT_EQ(zap_wire_encode_paxos(a.w, &m, f.data(), f.size()), -EINVAL);
	m.from = 1;
	m.type = ZAP_PAXOS_MSG_TYPE_COUNT;
	EXPECT_EQ(zap_wire_encode_paxos(a.w, &m, f.data(), f.size()), -EINVAL);
	m.type = ZAP_PAXOS_MSG_ACCEPT;
	m.payload = nullptr;
	EXPECT_EQ(zap_wire_encode_paxos(a.w, &m, f.data(), f.size()), -EINVAL);
	m.payload = p.data();
	m.to = 9;
	EXPECT_EQ(zap_wire_encode_paxos(a.w, &m, f.data(), f.size()), -EHOSTUNREACH);
	m.to = 2;
	EXPECT_EQ(zap_wire_encode_paxos(a.w, &m, f.data(), zap_wire_frame_len(10) - 1), -ENOSPC);
	EXPECT_EQ(zap_wire_encode_paxos(a.w, &m, f.data(), zap_wire_frame_len(10)),
		  (int)zap_wire_frame_len(10));
	EXPECT_EQ(a.stats().frames_encoded, 1u);
}

// ---------------------------------------------------------------- mutation fuzz

TEST_F(Wire, RandomMutationsDecodeToOriginalOrAreCountedDrops)
{
	uint64_t seed = std::random_device{}();
	if (const char *s = getenv("ZAP_WIRE_SEED"))
		seed = strtoull(s, nullptr, 0);
	printf("wire mutation fuzz seed %llu (replay: ZAP_WIRE_SEED=%llu)\n",
	       (unsigned long long)seed, (unsigned long long)seed);
	RecordProperty("seed", std::to_string(seed));
	std::mt19937_64 rng(seed);
	uint32_t max = zap_wire_max_payload(b.w);
	const int kRounds = 20000;
	uint64_t decoded = 0, dropped = 0, same_count = 0;
	for (int round = 0; round < kRounds; round++) {
		uint8_t type = (uint8_t)(1 + rng() % (ZAP_PAXOS_MSG_TYPE_COUNT - 1));
		uint32_t len = rng() % 4 == 0 ? max : (uint32_t)(rng() % (max + 1));
		Bytes p(len);
		for (auto &x : p)
			x = (uint8_t)rng();
		zap_paxos_msg m = msg(type, 1, 2, p);
		m.ballot = rng();
		m.slot = rng();
		m.epoch = 2 + (uint32_t)(rng() % 4);
		Bytes f = encode(a, m);

		int kind = (int)(rng() % 6);
		int n_edits = 1 + (int)(rng() % 4);
		for (int e = 0; e < n_edits && !f.empty(); e++) {
			size_t at = rng() % f.size();
			switch (kind) {
			case 0:
				f[at] ^= (uint8_t)(1u << (rng() % 8));
				break;
			case 1:
				f[at] = (uint8_t)rng();
				break;
			case 2:
				f.resize(at);
				break;
			case 3:
				f.push_back((uint8_t)rng());
				break;
			default: // edit past the checksums, to reach the zap layer
				if (f.size() > kZap)
					f[kZap + rng() % (f.size() - kZap)] ^=
					    (uint8_t)(1 + rng() % 255);
				break;
			}
		}
		if (kind >= 4 && f.size() >= kZap + 84 + 16 && f.size() == zap_wire_frame_len(len))
			fix_checksums(f);

		Bytes exact(f); // exactly sized: ASan flags any read past the end
		struct zap_wire_stats before = b.stats();
		zap_paxos_msg out{};
		int rc = zap_wire_decode_paxos(b.w, exact.data(), exact.size(), 2, &out);
		struct zap_wire_stats after = b.stats();
		if (rc == 0) {
			decoded++;
			ASSERT_TRUE(same(m, out)) << "seed " << seed << " round " << round;
			ASSERT_EQ(after.frames_decoded, before.frames_decoded + 1);
			same_count++;
		} else {
			dropped++;
			int r = zap_wire_errno_drop(rc);
			ASSERT_GE(r, 0) << "rc " << rc << " seed " << seed << " round " << round;
			ASSERT_EQ(after.dropped[r], before.dropped[r] + 1) << "seed " << seed;
			ASSERT_EQ(after.frames_dropped, before.frames_dropped + 1);
		}
	}
	printf("wire mutation fuzz: %llu decoded (all equal to the original), %llu dropped\n",
	       (unsigned long long)decoded, (unsigned long long)dropped);
	struct zap_wire_stats st = b.stats();
	for (unsigned r = 0; r < ZAP_WIRE_DROP_COUNT; r++)
		printf("  %-16s %llu\n", zap_wire_drop_name(r), (unsigned long long)st.dropped[r]);
	EXPECT_EQ(decoded + dropped, (uint64_t)kRounds);
	EXPECT_EQ(same_count, decoded);
	EXPECT_GT(st.dropped[ZAP_WIRE_DROP_BAD_MAC], 0u);
}

// ---------------------------------------------------------------- ARP

namespace
{

Bytes arp_request(const uint8_t sha[6], uint32_t spa, uint32_t tpa, uint16_t op = 1)
{
	Bytes f(42);
	memset(f.data(), 0xff, 6);
	memcpy(f.data() + 6, sha, 6);
	set_be16(f.data() + 12, 0x0806);
	uint8_t *a = f.data() + 14;
	set_be16(a, 1);
	set_be16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	set_be16(a + 6, op);
	memcpy(a + 8, sha, 6);
	memcpy(a + 14, &spa, 4);
	memset(a + 18, 0, 6);
	memcpy(a + 24, &tpa, 4);
	return f;
}

const uint8_t kHostMac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};

} // namespace

TEST(WireArp, ReplyAnswersForOwnAddress)
{
	zap_wire_arp_addr addrs[2] = {};
	uint8_t rep_mac[6] = {0x02, 0, 0, 0, 0, 1}, cli_mac[6] = {0x02, 0, 0, 0, 1, 1};
	memcpy(addrs[0].mac, rep_mac, 6);
	addrs[0].ipv4_be = ip4(10, 0, 0, 1);
	memcpy(addrs[1].mac, cli_mac, 6);
	addrs[1].ipv4_be = ip4(192, 168, 5, 1);
	uint32_t host_ip = ip4(192, 168, 5, 77);
	Bytes req = arp_request(kHostMac, host_ip, addrs[1].ipv4_be);
	uint8_t rep[64];
	memset(rep, 0xaa, sizeof(rep));
	ASSERT_EQ(zap_wire_arp_reply(addrs, 2, req.data(), req.size(), rep, sizeof(rep)), 60);
	EXPECT_EQ(0, memcmp(rep, kHostMac, 6));	   // to the requester
	EXPECT_EQ(0, memcmp(rep + 6, cli_mac, 6)); // from the owning interface
	EXPECT_EQ(be16(rep + 12), 0x0806);
	const uint8_t *a = rep + 14;
	EXPECT_EQ(be16(a), 1);
	EXPECT_EQ(be16(a + 2), 0x0800);
	EXPECT_EQ(a[4], 6);
	EXPECT_EQ(a[5], 4);
	EXPECT_EQ(be16(a + 6), 2); // reply
	EXPECT_EQ(0, memcmp(a + 8, cli_mac, 6));
	EXPECT_EQ(0, memcmp(a + 14, &addrs[1].ipv4_be, 4));
	EXPECT_EQ(0, memcmp(a + 18, kHostMac, 6));
	EXPECT_EQ(0, memcmp(a + 24, &host_ip, 4));
	for (int i = 42; i < 60; i++)
		EXPECT_EQ(rep[i], 0) << "padding byte " << i;
	EXPECT_EQ(rep[60], 0xaa); // nothing written past the reply
}

TEST(WireArp, RefusesWhatItMustNotAnswer)
{
	zap_wire_arp_addr me{};
	me.ipv4_be = ip4(10, 0, 0, 1);
	uint8_t rep[60];
	Bytes other = arp_request(kHostMac, ip4(10, 0, 0, 9), ip4(10, 0, 0, 2));
	EXPECT_EQ(zap_wire_arp_reply(&me, 1, other.data(), other.size(), rep, sizeof(rep)),
		  -EADDRNOTAVAIL);
	Bytes reply = arp_request(kHostMac, ip4(10, 0, 0, 9), me.ipv4_be, 2);
	EXPECT_EQ(zap_wire_arp_reply(&me, 1, reply.data(), reply.size(), rep, sizeof(rep)),
		  -ENOMSG);
	Bytes req = arp_request(kHostMac, ip4(10, 0, 0, 9), me.ipv4_be);
	EXPECT_EQ(zap_wire_arp_reply(&me, 1, req.data(), 41, rep, sizeof(rep)), -EBADMSG);
	EXPECT_EQ(zap_wire_arp_reply(&me, 1, req.data(), 10, rep, sizeof(rep)), -EBADMSG);
	EXPECT_EQ(zap_wire_arp_reply(&me, 1, req.data(), req.size(), rep, 59), -ENOSPC);
	Bytes ipv4 = req;
	set_be16(ipv4.data() + 12, 0x0800);
	EXPECT_EQ(zap_wire_arp_reply(&me, 1, ipv4.data(), ipv4.size(), rep, sizeof(rep)), -ENOMSG);
	Bytes bad_hlen = req;
	bad_hlen[14 + 4] = 8;
	EXPECT_EQ(zap_wire_arp_reply(&me, 1, bad_hlen.data(), bad_hlen.size(), rep, sizeof(rep)),
		  -EBADMSG);
	EXPECT_EQ(zap_wire_arp_reply(&me, 1, req.data(), req.size(), rep, sizeof(rep)), 60);
}
