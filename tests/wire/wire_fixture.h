/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers and the fixture shared by the wire tests. */
#ifndef ZAP_TEST_WIRE_FIXTURE_H
#define ZAP_TEST_WIRE_FIXTURE_H

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

#include "wire/wire.h"

namespace wire_test
{

using Bytes = std::vector<uint8_t>;

constexpr uint64_t kCluster = 0x5a41500000000042ull;
const uint8_t kSecret[32] = {1,	 2,  3,	 4,  5,	 6,  7,	 8,  9,	 10, 11, 12, 13, 14, 15, 16,
			     17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

inline uint32_t ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	return htonl((uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | d);
}

inline zap_wire_node node(uint16_t id)
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

inline zap_paxos_msg msg(uint8_t type, uint16_t from, uint16_t to, const Bytes &payload)
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
inline Bytes encode(Ctx &c, const zap_paxos_msg &m)
{
	Bytes f(zap_wire_frame_len(m.len));
	int n = zap_wire_encode_paxos(c.w, &m, f.data(), f.size());
	EXPECT_EQ(n, (int)f.size());
	return f;
}

inline void expect_same(const zap_paxos_msg &a, const zap_paxos_msg &b)
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

inline bool same(const zap_paxos_msg &a, const zap_paxos_msg &b)
{
	return a.type == b.type && a.flags == b.flags && a.from == b.from && a.to == b.to &&
	       a.epoch == b.epoch && a.ballot == b.ballot && a.slot == b.slot &&
	       a.commit == b.commit && a.vballot == b.vballot && a.value_len == b.value_len &&
	       a.offset == b.offset && a.id == b.id && a.len == b.len &&
	       (a.len == 0 || memcmp(a.payload, b.payload, a.len) == 0);
}

inline Bytes pattern(size_t n, uint8_t seed)
{
	Bytes b(n);
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 31 + seed);
	return b;
}

// ---------------------------------------------------------------- independent checksums

constexpr size_t kIp = 14, kUdp = 34, kZap = 42;

inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

inline void set_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

// RFC 1071, written independently of wire.c: 32-bit accumulator, folded at the end.
inline uint16_t inet_sum(const uint8_t *p, size_t n, uint32_t acc = 0)
{
	for (size_t i = 0; i < n; i++)
		acc += (i % 2 == 0) ? (uint32_t)p[i] << 8 : p[i];
	while (acc > 0xffff)
		acc = (acc >> 16) + (acc & 0xffff);
	return (uint16_t)acc;
}

inline uint16_t ip_cksum(const uint8_t *frame)
{
	uint8_t h[20];
	memcpy(h, frame + kIp, 20);
	h[10] = h[11] = 0;
	return (uint16_t)~inet_sum(h, 20);
}

inline uint16_t udp_cksum(const uint8_t *frame)
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
inline void fix_checksums(Bytes &f)
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

} // namespace wire_test

using namespace wire_test;

#endif /* ZAP_TEST_WIRE_FIXTURE_H */
