// SPDX-License-Identifier: Apache-2.0
// Tests of libzapclient's non-blocking interface (dataplane/client/zapclient_async.h),
// the one the ZEO gateway's event loops use: over a transport that keeps what
// is sent, replies built with the codec and fed back by hand. No thread, no
// socket.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

extern "C" {
#include "client/zapclient_async.h"
}

namespace
{

using Bytes = std::vector<uint8_t>;
constexpr uint64_t kCluster = 0xa5u;

struct Wire {
	std::vector<Bytes> sent;
	int fail = 0; // negative: the next send fails with it
};

int wire_send(void *ctx, const void *d, size_t len)
{
	auto *w = static_cast<Wire *>(ctx);
	if (w->fail != 0) {
		int rc = w->fail;
		w->fail = 0;
		return rc;
	}
	const auto *p = static_cast<const uint8_t *>(d);
	w->sent.emplace_back(p, p + len);
	return 0;
}

long wire_recv(void *, void *, size_t, uint64_t)
{
	return 0; // the non-blocking interface never reads the transport
}

zap_client *open_on(Wire &w)
{
	zap_client_transport t{&w, wire_send, wire_recv};
	zap_client *c = nullptr;
	EXPECT_EQ(zap_client_open_transport(&t, kCluster, nullptr, &c), 0);
	return c;
}

// The request a datagram carries (one chunk).
zap_cp_hdr header_of(const Bytes &d)
{
	zap_cp_hdr h{};
	EXPECT_EQ(zap_cp_hdr_decode(d.data(), d.size(), kCluster, 0, &h), 0);
	return h;
}

// The datagrams of a reply to @p h, chunked by @p chunk bytes.
std::vector<Bytes> reply_to(const zap_cp_hdr &h, zap_cp_response r, uint32_t chunk = 1352)
{
	r.hdr = h;
	r.hdr.type = (uint8_t)(h.type + ZAP_CP_RESPONSE_OFFSET);
	r.hdr.flags = 0;
	Bytes body(zap_cp_response_size(&r));
	EXPECT_GT(zap_cp_response_encode(&r, body.data(), body.size()), 0);
	std::vector<Bytes> out;
	uint32_t n = zap_cp_chunk_count(body.size(), chunk);
	for (uint32_t i = 0; i < n; i++) {
		Bytes d(ZAP_CP_HDR_BYTES + chunk);
		ssize_t k = zap_cp_chunk_encode(&r.hdr, body.data(), body.size(), chunk, i,
						d.data(), d.size());
		EXPECT_GT(k, 0);
		d.resize((size_t)k);
		out.push_back(d);
	}
	return out;
}

TEST(ClientAsync, PrepareConflictComesBackThroughFeed)
{
	Wire w;
	zap_client *c = open_on(w);
	ASSERT_NE(c, nullptr);
	zap_cp_store st{0x10, 0x20, 0, "data", 4};
	zap_cp_request q{};
	q.hdr.type = ZAP_CP_PREPARE;
	q.txn_id = 77;
	q.stores = &st;
	q.n_stores = 1;
	ASSERT_EQ(zap_client_start(c, &q), 0);
	ASSERT_EQ(w.sent.size(), 1u);
	zap_cp_hdr h = header_of(w.sent[0]);
	EXPECT_EQ(h.type, ZAP_CP_PREPARE);
	EXPECT_EQ(h.client_id, zap_client_id(c));

	zap_cp_response r{};
	r.status = ZAP_CP_CONFLICT;
	r.oid = 0x10;
	r.serial = 0x30;
	r.base_serial = 0x20;
	auto d = reply_to(h, r);
	ASSERT_EQ(d.size(), 1u);
	zap_cp_response got{};
	ASSERT_EQ(zap_client_feed(c, d[0].data(), d[0].size(), &got), 1);
	EXPECT_EQ(zap_client_status(got.status), ZAP_CLIENT_E_CONFLICT);
	EXPECT_EQ(got.oid, 0x10u);
	EXPECT_EQ(got.serial, 0x30u);
	EXPECT_EQ(got.base_serial, 0x20u);
	// Nothing is in flight any more: the same reply again is ignored.
	EXPECT_EQ(zap_client_feed(c, d[0].data(), d[0].size(), &got), 0);
	zap_client_close(c);
}

TEST(ClientAsync, ResendKeepsTheRequestIdAndStaleRepliesAreIgnored)
{
	Wire w;
	zap_client *c = open_on(w);
	ASSERT_NE(c, nullptr);
	zap_cp_request q{};
	q.hdr.type = ZAP_CP_SYNC;
	ASSERT_EQ(zap_client_start(c, &q), 0);
	zap_cp_hdr first = header_of(w.sent[0]);
	zap_cp_response r{};
	r.status = ZAP_CP_OK;
	r.tid = 5;
	auto old = reply_to(first, r);

	// A second call: the first one's reply is stale for it.
	q = zap_cp_request{};
	q.hdr.type = ZAP_CP_COMMIT;
	q.txn_id = 9;
	ASSERT_EQ(zap_client_start(c, &q), 0);
	ASSERT_EQ(zap_client_resend(c), 0);
	ASSERT_EQ(w.sent.size(), 3u);
	zap_cp_hdr a = header_of(w.sent[1]), b = header_of(w.sent[2]);
	EXPECT_EQ(a.request_id, b.request_id);
	EXPECT_NE(a.request_id, first.request_id);
	EXPECT_EQ(w.sent[1], w.sent[2]);

	zap_cp_response got{};
	EXPECT_EQ(zap_client_feed(c, old[0].data(), old[0].size(), &got), 0);
	const uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	EXPECT_EQ(zap_client_feed(c, junk, sizeof(junk), &got), 0);
	r.tid = 0x99;
	auto d = reply_to(a, r);
	ASSERT_EQ(zap_client_feed(c, d[0].data(), d[0].size(), &got), 1);
	EXPECT_EQ(got.tid, 0x99u);
	zap_client_stats s{};
	zap_client_get_stats(c, &s);
	EXPECT_EQ(s.retries, 1u);
	EXPECT_GE(s.stale, 1u);
	EXPECT_GE(s.dropped, 1u);
	zap_client_close(c);
}

TEST(ClientAsync, ReplyInSeveralDatagramsCompletesOnTheLast)
{
	Wire w;
	zap_client *c = open_on(w);
	ASSERT_NE(c, nullptr);
	zap_cp_request q{};
	q.hdr.type = ZAP_CP_LOAD;
	q.oid = 3;
	ASSERT_EQ(zap_client_start(c, &q), 0);
	zap_cp_hdr h = header_of(w.sent[0]);
	Bytes rec(5000);
	for (size_t i = 0; i < rec.size(); i++)
		rec[i] = (uint8_t)(i * 7);
	zap_cp_response r{};
	r.status = ZAP_CP_OK;
	r.serial = 11;
	r.data = rec.data();
	r.len = (uint32_t)rec.size();
	auto d = reply_to(h, r, 1000);
	ASSERT_GT(d.size(), 3u);
	zap_cp_response got{};
	// Out of order: the last chunk first.
	EXPECT_EQ(zap_client_feed(c, d.back().data(), d.back().size(), &got), 0);
	for (size_t i = 0; i + 2 < d.size(); i++)
		EXPECT_EQ(zap_client_feed(c, d[i].data(), d[i].size(), &got), 0);
	const Bytes &last = d[d.size() - 2];
	ASSERT_EQ(zap_client_feed(c, last.data(), last.size(), &got), 1);
	ASSERT_EQ(got.len, rec.size());
	EXPECT_EQ(std::memcmp(got.data, rec.data(), rec.size()), 0);
	EXPECT_EQ(got.serial, 11u);
	zap_client_close(c);
}

TEST(ClientAsync, NothingInFlightAndFailedSends)
{
	Wire w;
	zap_client *c = open_on(w);
	ASSERT_NE(c, nullptr);
	EXPECT_EQ(zap_client_resend(c), -EINVAL);
	zap_cp_response got{};
	const uint8_t junk[4] = {0};
	EXPECT_EQ(zap_client_feed(c, junk, sizeof(junk), &got), 0);
	// A send the transport refuses is a lost attempt: the caller resends.
	w.fail = -EAGAIN;
	zap_cp_request q{};
	q.hdr.type = ZAP_CP_SYNC;
	ASSERT_EQ(zap_client_start(c, &q), 0);
	EXPECT_TRUE(w.sent.empty());
	ASSERT_EQ(zap_client_resend(c), 0);
	ASSERT_EQ(w.sent.size(), 1u);
	EXPECT_EQ(zap_client_status(ZAP_CP_UNAVAILABLE), -EHOSTUNREACH);
	EXPECT_EQ(zap_client_status(ZAP_CP_NOT_PREPARED), -EINPROGRESS);
	EXPECT_EQ(zap_client_timeout_ms(c), (uint32_t)ZAP_CLIENT_DEFAULT_TIMEOUT_MS);
	zap_client_close(c);
}

} // namespace
