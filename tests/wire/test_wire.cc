// SPDX-License-Identifier: Apache-2.0
// Unit tests of the replication frame codec (dataplane/wire/wire.c): layout and
// MTU arithmetic, round trips, headers, checksums checked against DPDK's and
// an in-test computation. Drops, fuzzing and ARP: test_wire_drops.cc.
#include "wire_fixture.h"

// ---------------------------------------------------------------- layout and MTU

TEST(WireLayout, FrameIs142BytesPlusPayload)
{
	EXPECT_EQ(zap_wire_frame_len(0), 142u);
	EXPECT_EQ(zap_wire_frame_len(1372), 1514u); // a full 1500-byte MTU frame
}

TEST(WireLayout, DefaultPayloadFillsA1500ByteMtu)
{
	Ctx c(1);
	EXPECT_EQ(zap_wire_max_payload(c.w), 1372u);
	EXPECT_EQ(zap_wire_payload_for_mtu(1500), 1372u);
	EXPECT_EQ(ZAP_WIRE_MTU_FOR_PAXOS_DEFAULT_BYTES, 1528u);
}

TEST(WireLayout, CreateRefusesPaxosDefault1400On1500Mtu)
{
	zap_wire_params p{};
	p.cluster_id = kCluster;
	p.secret = kSecret;
	p.secret_len = sizeof(kSecret);
	p.self = 1;
	p.nodes = kNodes.data();
	p.n_nodes = (unsigned)kNodes.size();
	p.max_payload_bytes = ZAP_PAXOS_DEFAULT_DATAGRAM_BYTES;
	zap_wire_ctx *w = nullptr;
	EXPECT_EQ(zap_wire_ctx_create(&p, &w), -EINVAL);
	EXPECT_EQ(w, nullptr);
	p.mtu_bytes = ZAP_WIRE_MTU_FOR_PAXOS_DEFAULT_BYTES;
	ASSERT_EQ(zap_wire_ctx_create(&p, &w), 0);
	EXPECT_EQ(zap_wire_max_payload(w), 1400u);
	zap_wire_ctx_destroy(w);
}

TEST(WireLayout, CreateRejectsBadParams)
{
	zap_wire_params p{};
	p.cluster_id = kCluster;
	p.secret = kSecret;
	p.secret_len = sizeof(kSecret);
	p.self = 1;
	p.nodes = kNodes.data();
	p.n_nodes = (unsigned)kNodes.size();
	zap_wire_ctx *w = nullptr;
	auto bad = [&](zap_wire_params q) { EXPECT_EQ(zap_wire_ctx_create(&q, &w), -EINVAL); };
	zap_wire_params q = p;
	q.cluster_id = 0;
	bad(q);
	q = p;
	q.secret_len = 15;
	bad(q);
	q = p;
	q.secret_len = 65;
	bad(q);
	q = p;
	q.self = 9;
	bad(q);
	q = p;
	q.mtu_bytes = 100;
	bad(q);
	std::vector<zap_wire_node> dup = {node(1), node(1)};
	q = p;
	q.nodes = dup.data();
	q.n_nodes = 2;
	bad(q);
	EXPECT_EQ(zap_wire_ctx_create(nullptr, &w), -EINVAL);
	EXPECT_EQ(zap_wire_ctx_create(&p, &w), 0);
	zap_wire_ctx_destroy(w);
}

TEST(WireLayout, DropNamesAndErrnosAreDistinct)
{
	for (unsigned i = 0; i < ZAP_WIRE_DROP_COUNT; i++) {
		EXPECT_STRNE(zap_wire_drop_name(i), "unknown");
		EXPECT_LT(zap_wire_drop_errno(i), 0);
		EXPECT_EQ(zap_wire_errno_drop(zap_wire_drop_errno(i)), (int)i);
		for (unsigned j = 0; j < i; j++) {
			EXPECT_STRNE(zap_wire_drop_name(i), zap_wire_drop_name(j));
			EXPECT_NE(zap_wire_drop_errno(i), zap_wire_drop_errno(j));
		}
	}
	EXPECT_STREQ(zap_wire_drop_name(ZAP_WIRE_DROP_COUNT), "unknown");
	EXPECT_EQ(zap_wire_errno_drop(-EINVAL), -1);
}

// ---------------------------------------------------------------- round trips

TEST_F(Wire, EveryPaxosTypeRoundTrips)
{
	uint32_t max = zap_wire_max_payload(b.w);
	for (uint8_t t = ZAP_PAXOS_MSG_PREPARE; t < ZAP_PAXOS_MSG_TYPE_COUNT; t++) {
		for (uint32_t len : {0u, 1u, 700u, max}) {
			SCOPED_TRACE("type " + std::to_string(t) + " len " + std::to_string(len));
			Bytes p = pattern(len, t);
			zap_paxos_msg m = msg(t, 1, 2, p);
			Bytes f = encode(a, m);
			zap_paxos_msg out{};
			ASSERT_EQ(zap_wire_decode_paxos(b.w, f.data(), f.size(), 7, &out), 0);
			expect_same(m, out);
			if (len > 0) {
				// zero copy: the payload points into the frame
				EXPECT_EQ((const uint8_t *)out.payload, f.data() + kZap + 84);
			}
		}
	}
	EXPECT_EQ(a.stats().frames_encoded, 4u * (ZAP_PAXOS_MSG_TYPE_COUNT - 1));
	EXPECT_EQ(b.stats().frames_decoded, 4u * (ZAP_PAXOS_MSG_TYPE_COUNT - 1));
	EXPECT_EQ(b.stats().frames_dropped, 0u);
}

TEST_F(Wire, LargeValueTravelsAsMaxSizeChunks)
{
	uint32_t max = zap_wire_max_payload(a.w);
	Bytes value = pattern(3 * max + 123, 77);
	Bytes got;
	for (uint64_t off = 0; off < value.size(); off += max) {
		uint32_t n = (uint32_t)std::min<uint64_t>(max, value.size() - off);
		zap_paxos_msg m{};
		m.type = ZAP_PAXOS_MSG_ACCEPT;
		m.from = 1;
		m.to = 2;
		m.epoch = 1;
		m.ballot = zap_ballot_make(1, 1);
		m.slot = 5;
		m.value_len = value.size();
		m.offset = off;
		m.payload = value.data() + off;
		m.len = n;
		Bytes f = encode(a, m);
		EXPECT_LE(f.size() - 14, 1500u); // fits the MTU
		zap_paxos_msg out{};
		ASSERT_EQ(zap_wire_decode_paxos(b.w, f.data(), f.size(), 0, &out), 0);
		expect_same(m, out);
		const uint8_t *p = (const uint8_t *)out.payload;
		got.insert(got.end(), p, p + out.len);
	}
	EXPECT_EQ(got, value);
}

TEST(WireJumbo, PaxosDefaultDatagramRoundTripsOnJumboMtu)
{
	Ctx a(1, kCluster, kSecret, sizeof(kSecret), kNodes, 9000,
	      ZAP_PAXOS_DEFAULT_DATAGRAM_BYTES);
	Ctx b(2, kCluster, kSecret, sizeof(kSecret), kNodes, 9000,
	      ZAP_PAXOS_DEFAULT_DATAGRAM_BYTES);
	Bytes p = pattern(1400, 3);
	zap_paxos_msg m = msg(ZAP_PAXOS_MSG_CATCHUP, 1, 2, p);
	Bytes f = encode(a, m);
	EXPECT_EQ(f.size(), 1542u);
	zap_paxos_msg out{};
	ASSERT_EQ(zap_wire_decode_paxos(b.w, f.data(), f.size(), 0, &out), 0);
	expect_same(m, out);
}

TEST_F(Wire, EthernetPaddingIsIgnored)
{
	Bytes f = frame12(0);
	f.resize(f.size() + 18, 0);
	zap_paxos_msg out{};
	EXPECT_EQ(zap_wire_decode_paxos(b.w, f.data(), f.size(), 0, &out), 0);
}

// ---------------------------------------------------------------- headers and checksums

TEST_F(Wire, HeadersAreEthernetIpv4DfTtl64Udp)
{
	Bytes f = frame12(100);
	const uint8_t *e = f.data();
	EXPECT_EQ(0, memcmp(e, node(2).mac, 6));
	EXPECT_EQ(0, memcmp(e + 6, node(1).mac, 6));
	EXPECT_EQ(be16(e + 12), 0x0800);
	const uint8_t *ip = e + kIp;
	EXPECT_EQ(ip[0], 0x45);
	EXPECT_EQ(be16(ip + 2), f.size() - 14);
	EXPECT_EQ(be16(ip + 6), 0x4000); // DF, no fragment offset
	EXPECT_EQ(ip[8], 64);
	EXPECT_EQ(ip[9], 17);
	uint32_t src, dst;
	memcpy(&src, ip + 12, 4);
	memcpy(&dst, ip + 16, 4);
	EXPECT_EQ(src, node(1).ipv4_be);
	EXPECT_EQ(dst, node(2).ipv4_be);
	const uint8_t *udp = e + kUdp;
	EXPECT_EQ(be16(udp), 7001);
	EXPECT_EQ(be16(udp + 2), 7002);
	EXPECT_EQ(be16(udp + 4), f.size() - 34);
	const uint8_t *h = e + kZap;
	EXPECT_EQ(0, memcmp(h, "ZAP1", 4));
	EXPECT_EQ(h[4], ZAP_WIRE_VERSION);
	EXPECT_EQ(h[5], ZAP_PAXOS_MSG_ACCEPT);
	EXPECT_EQ(be16(h + 20), 1);
	EXPECT_EQ(be16(h + 22), 2);
	EXPECT_EQ(h[80] << 24 | h[81] << 16 | h[82] << 8 | h[83], 100);
}

TEST_F(Wire, ChecksumsMatchIndependentComputations)
{
	std::mt19937_64 rng(1);
	for (uint32_t len : {0u, 1u, 2u, 3u, 511u, 1371u, 1372u}) {
		SCOPED_TRACE("len " + std::to_string(len));
		Bytes p(len);
		for (auto &x : p)
			x = (uint8_t)rng();
		zap_paxos_msg m = msg(ZAP_PAXOS_MSG_FORWARD, 1, 2, p);
		Bytes f = encode(a, m);
		// the in-test RFC 1071 computation
		EXPECT_EQ(be16(f.data() + kIp + 10), ip_cksum(f.data()));
		EXPECT_EQ(be16(f.data() + kUdp + 6), udp_cksum(f.data()));
		// DPDK's: the checksum fields zeroed in a copy
		Bytes c = f;
		c[kIp + 10] = c[kIp + 11] = 0;
		c[kUdp + 6] = c[kUdp + 7] = 0;
		auto *iph = reinterpret_cast<const rte_ipv4_hdr *>(c.data() + kIp);
		uint16_t want_ip = rte_ipv4_cksum(iph);
		uint16_t want_udp = rte_ipv4_udptcp_cksum(iph, c.data() + kUdp);
		uint16_t got_ip, got_udp;
		memcpy(&got_ip, f.data() + kIp + 10, 2);
		memcpy(&got_udp, f.data() + kUdp + 6, 2);
		EXPECT_EQ(got_ip, want_ip);
		EXPECT_EQ(got_udp, want_udp);
	}
}

// ---------------------------------------------------------------- drops, one per reason
