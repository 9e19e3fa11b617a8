// SPDX-License-Identifier: Apache-2.0
// Unit tests of the replication frame codec (dataplane/wire.c): round trips,
// one crafted frame per drop reason, a seeded mutation fuzz test, checksums
// checked against DPDK's and an in-test computation, ARP replies.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <rte_ip.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "wire.h"

namespace
{

using Bytes = std::vector<uint8_t>;

constexpr uint64_t kCluster = 0x5a41500000000042ull;
const uint8_t kSecret[32] = {1,	 2,  3,	 4,  5,	 6,  7,	 8,  9,	 10, 11, 12, 13, 14, 15, 16,
			     17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

uint32_t ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	return htonl((uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | d);
}

zap_wire_node node(uint16_t id)
{
	zap_wire_node n{};
	n.id = id;
	uint8_t mac[6] = {0x02, 0, 0, 0, 0, (uint8_t)id};
	memcpy(n.mac, mac, 6);
	n.ipv4_be = ip4(10, 0, 0, (uint8_t)id);
	n.udp_port = (uint16_t)(7000 + id);
	return n;
}

const std::vector<zap_wire_node> kNodes = {node(1), node(2), node(3)};

struct Ctx {
	zap_wire_ctx *w = nullptr;
	explicit Ctx(uint16_t self, uint64_t cluster = kCluster, const uint8_t *secret = kSecret,
		     size_t secret_len = sizeof(kSecret), std::vector<zap_wire_node> nodes = kNodes,
		     uint32_t mtu = 0, uint32_t max_payload = 0)
	{
		zap_wire_params p{};
		p.cluster_id = cluster;
		p.secret = secret;
		p.secret_len = secret_len;
		p.self = self;
		p.nodes = nodes.data();
		p.n_nodes = (unsigned)nodes.size();
		p.mtu_bytes = mtu;
		p.max_payload_bytes = max_payload;
		int rc = zap_wire_ctx_create(&p, &w);
		if (rc != 0)
			ADD_FAILURE() << "zap_wire_ctx_create: " << rc;
	}
	~Ctx()
	{
		zap_wire_ctx_destroy(w);
	}
	Ctx(const Ctx &) = delete;
	Ctx &operator=(const Ctx &) = delete;
	struct zap_wire_stats stats() const
	{
		struct zap_wire_stats st;
		zap_wire_stats(w, &st);
		return st;
	}
};

zap_paxos_msg msg(uint8_t type, uint16_t from, uint16_t to, const Bytes &payload)
{
	zap_paxos_msg m{};
	m.type = type;
	m.flags = ZAP_PAXOS_FLAG_LAST;
	m.from = from;
	m.to = to;
	m.epoch = 7;
	m.ballot = zap_ballot_make(3, from);
	m.slot = 0x0102030405060708ull;
	m.commit = 0x1112131415161718ull;
	m.vballot = zap_ballot_make(2, to);
	m.value_len = payload.size() + 1000;
	m.offset = 0x2122232425262728ull;
	m.id = 0x3132333435363738ull;
	m.payload = payload.empty() ? nullptr : payload.data();
	m.len = (uint32_t)payload.size();
	return m;
}

// Encode into a buffer of exactly the frame's size (so ASan sees any overread).
Bytes encode(Ctx &c, const zap_paxos_msg &m)
{
	Bytes f(zap_wire_frame_len(m.len));
	int n = zap_wire_encode_paxos(c.w, &m, f.data(), f.size());
	EXPECT_EQ(n, (int)f.size());
	return f;
}

void expect_same(const zap_paxos_msg &a, const zap_paxos_msg &b)
{
	EXPECT_EQ(a.type, b.type);
	EXPECT_EQ(a.flags, b.flags);
	EXPECT_EQ(a.from, b.from);
	EXPECT_EQ(a.to, b.to);
	EXPECT_EQ(a.epoch, b.epoch);
	EXPECT_EQ(a.ballot, b.ballot);
	EXPECT_EQ(a.slot, b.slot);
	EXPECT_EQ(a.commit, b.commit);
	EXPECT_EQ(a.vballot, b.vballot);
	EXPECT_EQ(a.value_len, b.value_len);
	EXPECT_EQ(a.offset, b.offset);
	EXPECT_EQ(a.id, b.id);
	ASSERT_EQ(a.len, b.len);
	if (a.len > 0) {
		EXPECT_EQ(0, memcmp(a.payload, b.payload, a.len));
	}
}

bool same(const zap_paxos_msg &a, const zap_paxos_msg &b)
{
	return a.type == b.type && a.flags == b.flags && a.from == b.from && a.to == b.to &&
	       a.epoch == b.epoch && a.ballot == b.ballot && a.slot == b.slot &&
	       a.commit == b.commit && a.vballot == b.vballot && a.value_len == b.value_len &&
	       a.offset == b.offset && a.id == b.id && a.len == b.len &&
	       (a.len == 0 || memcmp(a.payload, b.payload, a.len) == 0);
}

Bytes pattern(size_t n, uint8_t seed)
{
	Bytes b(n);
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 31 + seed);
	return b;
}

// ---------------------------------------------------------------- independent checksums

constexpr size_t kIp = 14, kUdp = 34, kZap = 42;

uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

void set_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

// RFC 1071, written independently of wire.c: 32-bit accumulator, folded at the end.
uint16_t inet_sum(const uint8_t *p, size_t n, uint32_t acc = 0)
{
	for (size_t i = 0; i < n; i++)
		acc += (i % 2 == 0) ? (uint32_t)p[i] << 8 : p[i];
	while (acc > 0xffff)
		acc = (acc >> 16) + (acc & 0xffff);
	return (uint16_t)acc;
}

uint16_t ip_cksum(const uint8_t *frame)
{
	uint8_t h[20];
	memcpy(h, frame + kIp, 20);
	h[10] = h[11] = 0;
	return (uint16_t)~inet_sum(h, 20);
}

uint16_t udp_cksum(const uint8_t *frame)
{
	uint16_t ulen = be16(frame + kUdp + 4);
	Bytes seg(frame + kUdp, frame + kUdp + ulen);
	seg[6] = seg[7] = 0;
	uint8_t pseudo[12];
	memcpy(pseudo, frame + kIp + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = 17;
	set_be16(pseudo + 10, ulen);
	uint32_t acc = inet_sum(pseudo, 12);
	uint16_t s = (uint16_t)~inet_sum(seg.data(), seg.size(), acc);
	return s == 0 ? 0xffff : s;
}

// Recompute both checksums after a test edits a header.
void fix_checksums(Bytes &f)
{
	set_be16(f.data() + kIp + 10, ip_cksum(f.data()));
	set_be16(f.data() + kUdp + 6, udp_cksum(f.data()));
}

// ---------------------------------------------------------------- fixture

class Wire : public ::testing::Test
{
      protected:
	Ctx a{1}, b{2};

	void expect_drop(Ctx &rx, const Bytes &f, zap_wire_drop reason, uint32_t min_epoch = 0)
	{
		struct zap_wire_stats before = rx.stats();
		zap_paxos_msg out{};
		out.type = 0xee;
		int rc = zap_wire_decode_paxos(rx.w, f.data(), f.size(), min_epoch, &out);
		EXPECT_EQ(rc, zap_wire_drop_errno(reason))
		    << "want " << zap_wire_drop_name(reason) << ", got "
		    << zap_wire_drop_name((unsigned)zap_wire_errno_drop(rc));
		EXPECT_EQ(out.type, 0xee) << "output written on a drop";
		struct zap_wire_stats after = rx.stats();
		EXPECT_EQ(after.dropped[reason], before.dropped[reason] + 1);
		EXPECT_EQ(after.frames_dropped, before.frames_dropped + 1);
		EXPECT_EQ(after.frames_decoded, before.frames_decoded);
	}

	Bytes frame12(size_t payload = 100)
	{
		Bytes p = pattern(payload, 9);
		zap_paxos_msg m = msg(ZAP_PAXOS_MSG_ACCEPT, 1, 2, p);
		return encode(a, m);
	}
};

} // namespace

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
