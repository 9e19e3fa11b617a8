// SPDX-License-Identifier: Apache-2.0
// Unit tests of the native client protocol codec (dataplane/client/client_proto.c):
// round trips of every request and response type, multi-datagram reassembly
// (out of order, duplicates, disagreeing chunks, eviction), one crafted input
// per decoder error class, and a seeded mutation fuzz test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "client/client_proto.h"

namespace
{

using Bytes = std::vector<uint8_t>;

constexpr uint64_t kCluster = 0x5a41500000000042ull;

zap_cp_hdr hdr(uint8_t type, uint64_t req_id = 7, uint16_t flags = 0)
{
	zap_cp_hdr h{};
	h.type = type;
	h.flags = flags;
	h.client_id = 0x1122334455667788ull;
	h.request_id = req_id;
	h.cluster_id = kCluster;
	return h;
}

std::vector<Bytes> chunks(const zap_cp_hdr &h, const Bytes &body, uint32_t chunk_bytes)
{
	std::vector<Bytes> out;
	uint32_t n = zap_cp_chunk_count(body.size(), chunk_bytes);
	EXPECT_NE(n, 0u);
	for (uint32_t i = 0; i < n; i++) {
		Bytes d(ZAP_CP_HDR_BYTES + chunk_bytes);
		ssize_t k = zap_cp_chunk_encode(&h, body.data(), body.size(), chunk_bytes, i,
						d.data(), d.size());
		EXPECT_GT(k, 0);
		d.resize((size_t)k);
		out.push_back(d);
	}
	return out;
}

Bytes encode_req(const zap_cp_request &q)
{
	size_t n = zap_cp_request_size(&q);
	Bytes b(n);
	EXPECT_EQ(zap_cp_request_encode(&q, b.data(), b.size()), (ssize_t)n);
	return b;
}

Bytes encode_resp(const zap_cp_response &r)
{
	size_t n = zap_cp_response_size(&r);
	EXPECT_NE(n, 0u);
	Bytes b(n);
	EXPECT_EQ(zap_cp_response_encode(&r, b.data(), b.size()), (ssize_t)n);
	return b;
}

// Push datagrams through header decode and reassembly; returns the body.
Bytes reassemble(zap_cp_reasm *ra, const std::vector<Bytes> &dgrams, zap_cp_hdr *h_out)
{
	Bytes body;
	int done = 0;
	for (const Bytes &d : dgrams) {
		zap_cp_hdr h;
		EXPECT_EQ(zap_cp_hdr_decode(d.data(), d.size(), kCluster, 0, &h), 0);
		const void *b;
		size_t len;
		int rc = zap_cp_reasm_push(ra, &h, d.data(), d.size(), &b, &len);
		EXPECT_GE(rc, 0);
		if (rc == 1) {
			body.assign((const uint8_t *)b, (const uint8_t *)b + len);
			*h_out = h;
			done++;
		}
	}
	EXPECT_EQ(done, 1);
	return body;
}

class Codec : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		ASSERT_EQ(zap_cp_decoder_create(nullptr, &dec), 0);
		ASSERT_EQ(zap_cp_reasm_create(nullptr, 4, &ra), 0);
	}
	void TearDown() override
	{
		zap_cp_decoder_destroy(dec);
		zap_cp_reasm_destroy(ra);
	}
	zap_cp_request req_round_trip(const zap_cp_request &q, uint32_t chunk_bytes)
	{
		Bytes body = encode_req(q);
		zap_cp_hdr h;
		Bytes got = reassemble(ra, chunks(q.hdr, body, chunk_bytes), &h);
		EXPECT_EQ(got, body);
		keep = got;
		zap_cp_request out;
		EXPECT_EQ(zap_cp_request_decode(dec, &h, keep.data(), keep.size(), &out), 0);
		EXPECT_EQ(encode_req(out), body);
		return out;
	}
	zap_cp_response resp_round_trip(const zap_cp_response &r, uint32_t chunk_bytes)
	{
		Bytes body = encode_resp(r);
		zap_cp_hdr h;
		Bytes got = reassemble(ra, chunks(r.hdr, body, chunk_bytes), &h);
		EXPECT_EQ(got, body);
		keep = got;
		zap_cp_response out;
		EXPECT_EQ(zap_cp_response_decode(dec, &h, keep.data(), keep.size(), &out), 0);
		EXPECT_EQ(encode_resp(out), body);
		return out;
	}
	zap_cp_decoder *dec = nullptr;
	zap_cp_reasm *ra = nullptr;
	Bytes keep;
};

TEST(CodecNames, TypesAndStatuses)
{
	EXPECT_STREQ(zap_cp_type_name(ZAP_CP_LOAD), "LOAD");
	EXPECT_STREQ(zap_cp_type_name(ZAP_CP_SYNC + ZAP_CP_RESPONSE_OFFSET), "SYNC_REPLY");
	EXPECT_STREQ(zap_cp_type_name(0), "?");
	EXPECT_STREQ(zap_cp_status_name(ZAP_CP_CONFLICT), "CONFLICT");
	EXPECT_STREQ(zap_cp_status_name(ZAP_CP_STATUS_COUNT), "?");
}

TEST_F(Codec, RequestRoundTripSimpleTypes)
{
	zap_cp_request q{};
	q.hdr = hdr(ZAP_CP_LOAD, 1, ZAP_CP_FLAG_SYNC);
	q.oid = 42;
	zap_cp_request o = req_round_trip(q, 1352);
	EXPECT_EQ(o.oid, 42u);
	EXPECT_EQ(o.hdr.flags, ZAP_CP_FLAG_SYNC);
	EXPECT_EQ(o.hdr.request_id, 1u);

	q = {};
	q.hdr = hdr(ZAP_CP_LOAD_BEFORE, 2);
	q.oid = 3;
	q.tid = 0x03c0ffee00000001ull;
	o = req_round_trip(q, 1352);
	EXPECT_EQ(o.oid, 3u);
	EXPECT_EQ(o.tid, q.tid);

	q = {};
	q.hdr = hdr(ZAP_CP_HISTORY, 3);
	q.oid = 9;
	q.count = 10;
	o = req_round_trip(q, 1352);
	EXPECT_EQ(o.count, 10u);

	q = {};
	q.hdr = hdr(ZAP_CP_LAST_TID, 4, ZAP_CP_FLAG_SYNC);
	o = req_round_trip(q, 1352);
	EXPECT_EQ(o.hdr.type, ZAP_CP_LAST_TID);

	q = {};
	q.hdr = hdr(ZAP_CP_NEW_OIDS, 5);
	q.count = 100;
	EXPECT_EQ(req_round_trip(q, 1352).count, 100u);

	q = {};
	q.hdr = hdr(ZAP_CP_COMMIT, 6);
	q.txn_id = 77;
	o = req_round_trip(q, 1352);
	EXPECT_EQ(o.txn_id, 77u);
	EXPECT_EQ(o.tid, 0u); // no tid asked for
	q.tid = 0x03f84a5000000001ull; // a restore asks for its tid
	o = req_round_trip(q, 1352);
	EXPECT_EQ(o.txn_id, 77u);
	EXPECT_EQ(o.tid, 0x03f84a5000000001ull);
	EXPECT_EQ(zap_cp_request_size(&q), 16u); // body: txn id, tid

	q = {};
	q.hdr = hdr(ZAP_CP_ABORT, 7);
	q.txn_id = 78;
	EXPECT_EQ(req_round_trip(q, 1352).txn_id, 78u);

	q = {};
	q.hdr = hdr(ZAP_CP_CHANGES_SINCE, 8);
	q.tid = 1234;
	q.count = 1000;
	o = req_round_trip(q, 1352);
	EXPECT_EQ(o.tid, 1234u);
	EXPECT_EQ(o.count, 1000u);

	q = {};
	q.hdr = hdr(ZAP_CP_SYNC, 9);
	EXPECT_EQ(req_round_trip(q, 1352).hdr.type, ZAP_CP_SYNC);

	q = {};
	q.hdr = hdr(ZAP_CP_PACK, 10);
	q.tid = 0x03c0ffee00000003ull;
	o = req_round_trip(q, 1352);
	EXPECT_EQ(o.hdr.type, ZAP_CP_PACK);
	EXPECT_EQ(o.tid, q.tid);
}

TEST(CodecLayout, PackIsTypeSeventyFiveWithABigEndianTid)
{
	EXPECT_EQ((int)ZAP_CP_PACK, 75);
	EXPECT_STREQ(zap_cp_type_name(ZAP_CP_PACK), "PACK");
	EXPECT_STREQ(zap_cp_type_name(ZAP_CP_PACK + ZAP_CP_RESPONSE_OFFSET), "PACK_REPLY");
	EXPECT_STREQ(zap_cp_type_name(ZAP_CP_PACK + 1), "?");
	zap_cp_request q{};
	q.hdr = hdr(ZAP_CP_PACK, 1);
	q.tid = 0x0102030405060708ull;
	Bytes b = encode_req(q);
	EXPECT_EQ(b, (Bytes{1, 2, 3, 4, 5, 6, 7, 8}));
	// the response carries the effective pack tid in the result block
	zap_cp_response r{};
	r.hdr = hdr(ZAP_CP_PACK + ZAP_CP_RESPONSE_OFFSET, 1);
	r.tid = 0x1112131415161718ull;
	Bytes rb = encode_resp(r);
	ASSERT_EQ(rb.size(), (size_t)ZAP_CP_RESULT_BYTES);
	EXPECT_EQ(rb[8], 0x11);
	EXPECT_EQ(rb[15], 0x18);
}

TEST_F(Codec, RequestRoundTripTransactionsSpanningDatagrams)
{
	Bytes big(100 * 1024);
	for (size_t i = 0; i < big.size(); i++)
		big[i] = (uint8_t)(i * 31 + 7);
	const char small[] = "pickle";
	zap_cp_store stores[3] = {{10, 0, 0, big.data(), (uint32_t)big.size()},
				  {11, 5, 0, small, 6},
				  {12, 6, 1, nullptr, 0}};
	zap_cp_read reads[2] = {{20, 3}, {21, 4}};
	for (uint8_t type : {ZAP_CP_COMMIT_ONESHOT, ZAP_CP_PREPARE}) {
		zap_cp_request q{};
		q.hdr = hdr(type, 100 + type);
		q.txn_id = 555;
		q.text.user = "alice";
		q.text.user_len = 5;
		q.text.description = "buy";
		q.text.description_len = 3;
		q.text.extension = "x";
		q.text.extension_len = 1;
		q.stores = stores;
		q.n_stores = 3;
		q.reads = reads;
		q.n_reads = 2;
		zap_cp_request o = req_round_trip(q, 1352);
		ASSERT_EQ(o.n_stores, 3u);
		ASSERT_EQ(o.n_reads, 2u);
		EXPECT_EQ(o.txn_id, 555u);
		EXPECT_EQ(std::string((const char *)o.text.user, o.text.user_len), "alice");
		EXPECT_EQ(std::string((const char *)o.text.description, o.text.description_len),
			  "buy");
		EXPECT_EQ(o.stores[0].len, big.size());
		EXPECT_EQ(memcmp(o.stores[0].data, big.data(), big.size()), 0);
		EXPECT_EQ(o.stores[1].base_serial, 5u);
		EXPECT_EQ(o.stores[2].deleted, 1);
		EXPECT_EQ(o.reads[1].oid, 21u);
		EXPECT_EQ(o.reads[1].serial, 4u);
	}
}

TEST_F(Codec, ResponseRoundTripEveryType)
{
	Bytes data(5000, 0xab);
	for (unsigned t = ZAP_CP_REQUEST_FIRST; t <= ZAP_CP_REQUEST_LAST; t++) {
		zap_cp_response r{};
		r.hdr = hdr((uint8_t)(t + ZAP_CP_RESPONSE_OFFSET), t);
		r.status = ZAP_CP_OK;
		zap_cp_hist hist[2] = {{900, 10, 0, "bob", 3, "first", 5},
				       {800, 0, 1, nullptr, 0, nullptr, 0}};
		uint64_t oids[3] = {1, 2, 0xffffffffull << 8};
		switch (t) {
		case ZAP_CP_LOAD:
		case ZAP_CP_LOAD_BEFORE:
			r.serial = 900;
			r.next_serial = t == ZAP_CP_LOAD_BEFORE ? 950 : 0;
			r.data = data.data();
			r.len = (uint32_t)data.size();
			break;
		case ZAP_CP_HISTORY:
			r.count = 2;
			r.hist = hist;
			r.rflags = ZAP_CP_RFLAG_TRUNCATED;
			break;
		case ZAP_CP_NEW_OIDS:
			r.oid = 1000;
			r.count = 64;
			break;
		case ZAP_CP_CHANGES_SINCE:
			r.count = 3;
			r.oids = oids;
			r.tid = 4242;
			break;
		default:
			r.tid = 0x03c0ffee00000002ull;
			break;
		}
		zap_cp_response o = resp_round_trip(r, 1000);
		EXPECT_EQ(o.status, ZAP_CP_OK);
		EXPECT_EQ(o.tid, r.tid);
		EXPECT_EQ(o.count, r.count);
		if (t == ZAP_CP_LOAD || t == ZAP_CP_LOAD_BEFORE) {
			EXPECT_EQ(o.len, data.size());
			EXPECT_EQ(memcmp(o.data, data.data(), data.size()), 0);
			EXPECT_EQ(o.next_serial, r.next_serial);
		}
		if (t == ZAP_CP_HISTORY) {
			EXPECT_EQ(o.hist[0].serial, 900u);
			EXPECT_EQ(std::string((const char *)o.hist[0].user, 3), "bob");
			EXPECT_EQ(o.hist[1].deleted, 1);
		}
		if (t == ZAP_CP_CHANGES_SINCE) {
			EXPECT_EQ(o.oids[2], oids[2]);
		}
	}
}

TEST_F(Codec, ResponseRoundTripConflictsAndTooOld)
{
	for (uint16_t st : {ZAP_CP_CONFLICT, ZAP_CP_READ_CONFLICT}) {
		zap_cp_response r{};
		r.hdr = hdr(ZAP_CP_COMMIT_ONESHOT + ZAP_CP_RESPONSE_OFFSET, 3);
		r.status = st;
		r.oid = 17;
		r.serial = 300;
		r.base_serial = 200;
		zap_cp_response o = resp_round_trip(r, 1352);
		EXPECT_EQ(o.status, st);
		EXPECT_EQ(o.oid, 17u);
		EXPECT_EQ(o.serial, 300u);
		EXPECT_EQ(o.base_serial, 200u);
	}
	zap_cp_response r{};
	r.hdr = hdr(ZAP_CP_CHANGES_SINCE + ZAP_CP_RESPONSE_OFFSET, 4);
	r.rflags = ZAP_CP_RFLAG_TOO_OLD;
	r.tid = 99;
	EXPECT_EQ(resp_round_trip(r, 1352).rflags, ZAP_CP_RFLAG_TOO_OLD);
	for (uint16_t st = 1; st < ZAP_CP_STATUS_COUNT; st++) {
		zap_cp_response e{};
		e.hdr = hdr(ZAP_CP_LOAD + ZAP_CP_RESPONSE_OFFSET, 10 + st);
		e.status = st;
		EXPECT_EQ(resp_round_trip(e, 1352).status, st);
	}
}

TEST_F(Codec, ReassemblyOutOfOrderWithDuplicates)
{
	Bytes body(10000);
	for (size_t i = 0; i < body.size(); i++)
		body[i] = (uint8_t)(i ^ (i >> 8));
	zap_cp_response r{};
	r.hdr = hdr(ZAP_CP_LOAD + ZAP_CP_RESPONSE_OFFSET, 12);
	r.serial = 1;
	r.data = body.data();
	r.len = (uint32_t)body.size();
	Bytes enc = encode_resp(r);
	std::vector<Bytes> d = chunks(r.hdr, enc, 700);
	ASSERT_GT(d.size(), 10u);
	std::vector<Bytes> mixed;
	for (size_t i = d.size(); i-- > 0;) {
		mixed.push_back(d[i]);
		if (i % 3 == 0)
			mixed.push_back(d[i]); // duplicate
	}
	// the last datagram pushed completes the message; move one duplicate to the end
	int dups = 0, done = 0;
	Bytes got;
	for (size_t i = 0; i < mixed.size(); i++) {
		zap_cp_hdr h;
		ASSERT_EQ(zap_cp_hdr_decode(mixed[i].data(), mixed[i].size(), kCluster, 0, &h), 0);
		const void *b;
		size_t len;
		int rc = zap_cp_reasm_push(ra, &h, mixed[i].data(), mixed[i].size(), &b, &len);
		if (rc == -EALREADY)
			dups++;
		else if (rc == 1) {
			done++;
			got.assign((const uint8_t *)b, (const uint8_t *)b + len);
		} else
			ASSERT_EQ(rc, 0);
	}
	EXPECT_EQ(done, 1);
	EXPECT_GT(dups, 0);
	EXPECT_EQ(got, enc);
}

TEST_F(Codec, ReassemblyDropsDisagreeingChunks)
{
	Bytes body(3000, 1);
	zap_cp_hdr h = hdr(ZAP_CP_PREPARE, 13);
	std::vector<Bytes> a = chunks(h, body, 1000);
	Bytes body2(4000, 1);
	std::vector<Bytes> b = chunks(h, body2, 1000);
	zap_cp_hdr dh;
	const void *p;
	size_t len;
	ASSERT_EQ(zap_cp_hdr_decode(a[0].data(), a[0].size(), kCluster, 0, &dh), 0);
	EXPECT_EQ(zap_cp_reasm_push(ra, &dh, a[0].data(), a[0].size(), &p, &len), 0);
	ASSERT_EQ(zap_cp_hdr_decode(b[1].data(), b[1].size(), kCluster, 0, &dh), 0);
	EXPECT_EQ(zap_cp_reasm_push(ra, &dh, b[1].data(), b[1].size(), &p, &len), -EILSEQ);
}

TEST_F(Codec, ReassemblyReleaseFreesCompleteMessagesOnly)
{
	Bytes body(3000, 3);
	std::vector<Bytes> whole = chunks(hdr(ZAP_CP_PREPARE, 21), body, 1000);
	std::vector<Bytes> part = chunks(hdr(ZAP_CP_PREPARE, 22), body, 1000);
	zap_cp_hdr h;
	const void *p;
	size_t len;
	ASSERT_EQ(zap_cp_hdr_decode(part[0].data(), part[0].size(), kCluster, 0, &h), 0);
	EXPECT_EQ(zap_cp_reasm_push(ra, &h, part[0].data(), part[0].size(), &p, &len), 0);
	for (size_t i = 0; i < whole.size(); i++) {
		ASSERT_EQ(zap_cp_hdr_decode(whole[i].data(), whole[i].size(), kCluster, 0, &h), 0);
		EXPECT_EQ(zap_cp_reasm_push(ra, &h, whole[i].data(), whole[i].size(), &p, &len),
			  i + 1 == whole.size() ? 1 : 0);
	}
	EXPECT_EQ(zap_cp_reasm_held_bytes(ra), 6000u);
	zap_cp_reasm_release(ra);
	EXPECT_EQ(zap_cp_reasm_held_bytes(ra), 3000u); // the partial one stays
	for (size_t i = 1; i < part.size(); i++) {
		ASSERT_EQ(zap_cp_hdr_decode(part[i].data(), part[i].size(), kCluster, 0, &h), 0);
		EXPECT_EQ(zap_cp_reasm_push(ra, &h, part[i].data(), part[i].size(), &p, &len),
			  i + 1 == part.size() ? 1 : 0);
	}
	EXPECT_EQ(Bytes((const uint8_t *)p, (const uint8_t *)p + len), body);
}

TEST_F(Codec, ReassemblyEvictsOldestPartialMessage)
{
	Bytes body(3000, 2);
	for (uint64_t id = 1; id <= 5; id++) {
		std::vector<Bytes> d = chunks(hdr(ZAP_CP_PREPARE, id), body, 1000);
		zap_cp_hdr h;
		const void *p;
		size_t len;
		ASSERT_EQ(zap_cp_hdr_decode(d[0].data(), d[0].size(), kCluster, 0, &h), 0);
		EXPECT_EQ(zap_cp_reasm_push(ra, &h, d[0].data(), d[0].size(), &p, &len), 0);
	}
	EXPECT_EQ(zap_cp_reasm_evictions(ra), 1u);
}

// One crafted datagram per header error class.
TEST(CodecErrors, HeaderErrorClasses)
{
	zap_cp_hdr h = hdr(ZAP_CP_LOAD, 1);
	Bytes body(8, 0);
	Bytes good = chunks(h, body, 1352)[0];
	zap_cp_hdr o;
	ASSERT_EQ(zap_cp_hdr_decode(good.data(), good.size(), kCluster, 0, &o), 0);
	auto dec = [&](Bytes d, uint64_t cluster = kCluster, uint64_t max = 0) {
		return zap_cp_hdr_decode(d.data(), d.size(), cluster, max, &o);
	};
	EXPECT_EQ(dec(Bytes(good.begin(), good.begin() + 47)), -ENODATA);
	Bytes d = good;
	d[0] ^= 1;
	EXPECT_EQ(dec(d), -EPROTO);
	d = good;
	d[4] = 2;
	EXPECT_EQ(dec(d), -EPROTONOSUPPORT);
	d = good;
	d[5] = 1;
	EXPECT_EQ(dec(d), -ENOTSUP);
	d = good;
	d[7] = 0x80;
	EXPECT_EQ(dec(d), -EINVAL);
	d = good;
	d[47] = 1;
	EXPECT_EQ(dec(d), -EINVAL);
	d = good;
	memset(&d[16], 0, 8);
	EXPECT_EQ(dec(d), -EINVAL);
	EXPECT_EQ(dec(good, kCluster + 1), -EXDEV);
	EXPECT_EQ(dec(good, kCluster, 4), -EMSGSIZE);
	d = good;
	d[35] = 2; // count 2 for an 8-byte body
	EXPECT_EQ(dec(d), -ERANGE);
	d = good;
	memset(&d[36], 0, 4); // chunk size 0
	EXPECT_EQ(dec(d), -ERANGE);
	d = good;
	d.push_back(0);
	EXPECT_EQ(dec(d), -EBADMSG);
	d = good;
	d.pop_back();
	EXPECT_EQ(dec(d), -EBADMSG);
}

TEST_F(Codec, RequestErrorClasses)
{
	auto dec_req = [&](uint8_t type, const Bytes &b, uint16_t flags = 0) {
		zap_cp_hdr h = hdr(type, 1, flags);
		zap_cp_request q;
		return zap_cp_request_decode(dec, &h, b.data(), b.size(), &q);
	};
	Bytes load(8, 0);
	EXPECT_EQ(dec_req(ZAP_CP_LOAD, load), 0);
	EXPECT_EQ(dec_req(ZAP_CP_LOAD + ZAP_CP_RESPONSE_OFFSET, load), -ENOTSUP);
	EXPECT_EQ(dec_req(ZAP_CP_LOAD, Bytes(7, 0)), -EBADMSG);
	EXPECT_EQ(dec_req(ZAP_CP_LOAD, Bytes(9, 0)), -EBADMSG);
	EXPECT_EQ(dec_req(ZAP_CP_LOAD, Bytes(8, 0xff)), -EINVAL);
	EXPECT_EQ(dec_req(ZAP_CP_SYNC, Bytes(), ZAP_CP_FLAG_SYNC), -EINVAL);
	EXPECT_EQ(dec_req(ZAP_CP_NEW_OIDS, Bytes(4, 0)), -EINVAL);
	EXPECT_EQ(dec_req(ZAP_CP_COMMIT, Bytes(8, 0)), -EINVAL);
	EXPECT_EQ(dec_req(ZAP_CP_COMMIT, Bytes(16, 1)), 0);	     // txn id, asked tid
	EXPECT_EQ(dec_req(ZAP_CP_COMMIT, Bytes(12, 1)), -EBADMSG);   // half a tid
	EXPECT_EQ(dec_req(ZAP_CP_COMMIT, Bytes(24, 1)), -EBADMSG);   // trailing bytes
	EXPECT_EQ(dec_req(ZAP_CP_ABORT, Bytes(16, 1)), -EBADMSG);    // abort takes no tid
	Bytes no_tid(16, 1);
	std::fill(no_tid.begin() + 8, no_tid.end(), 0);
	EXPECT_EQ(dec_req(ZAP_CP_COMMIT, no_tid), -EINVAL); // tid 0 is not a tid
	EXPECT_EQ(dec_req(ZAP_CP_PACK, Bytes{0, 0, 0, 0, 0, 0, 0, 1}), 0);
	EXPECT_EQ(dec_req(ZAP_CP_PACK, Bytes(8, 0)), -EINVAL); // pack tid 0
	EXPECT_EQ(dec_req(ZAP_CP_PACK, Bytes(7, 1)), -EBADMSG);
	EXPECT_EQ(dec_req(ZAP_CP_PACK, Bytes(9, 1)), -EBADMSG);
	EXPECT_EQ(dec_req(ZAP_CP_PACK, Bytes(8, 1), ZAP_CP_FLAG_SYNC), -EINVAL);

	// transactions: encode valid ones, then break one field at a time
	const char rec[] = "abcd";
	zap_cp_store st[2] = {{1, 0, 0, rec, 4}, {2, 0, 0, rec, 4}};
	zap_cp_read rd[1] = {{3, 1}};
	zap_cp_request q{};
	q.hdr = hdr(ZAP_CP_PREPARE, 1);
	q.txn_id = 9;
	q.stores = st;
	q.n_stores = 2;
	q.reads = rd;
	q.n_reads = 1;
	EXPECT_EQ(dec_req(ZAP_CP_PREPARE, encode_req(q)), 0);
	st[1].oid = 1; // an oid twice
	EXPECT_EQ(dec_req(ZAP_CP_PREPARE, encode_req(q)), -EINVAL);
	st[1].oid = 2;
	rd[0].oid = 3;
	st[1].deleted = 1; // deletion with bytes
	EXPECT_EQ(dec_req(ZAP_CP_PREPARE, encode_req(q)), -EINVAL);
	st[1].deleted = 0;
	q.txn_id = 0;
	EXPECT_EQ(dec_req(ZAP_CP_PREPARE, encode_req(q)), -EINVAL);
	q.txn_id = 9;
	Bytes b = encode_req(q);
	b.pop_back();
	EXPECT_EQ(dec_req(ZAP_CP_PREPARE, b), -EBADMSG);
	b = encode_req(q);
	b[9] = 0xff; // n_stores huge
	EXPECT_EQ(dec_req(ZAP_CP_PREPARE, b), -E2BIG);
	b = encode_req(q);
	b[11] = 200; // n_stores more than the bytes can hold
	EXPECT_EQ(dec_req(ZAP_CP_PREPARE, b), -EBADMSG);

	// limits: a small decoder
	zap_cp_limits lim{};
	lim.max_record_bytes = 3;
	lim.max_text_bytes = 2;
	lim.max_objects = 2;
	zap_cp_decoder *small;
	ASSERT_EQ(zap_cp_decoder_create(&lim, &small), 0);
	zap_cp_request out;
	zap_cp_hdr h = hdr(ZAP_CP_PREPARE, 1);
	b = encode_req(q);
	EXPECT_EQ(zap_cp_request_decode(small, &h, b.data(), b.size(), &out), -E2BIG);
	q.n_reads = 0;
	b = encode_req(q);
	EXPECT_EQ(zap_cp_request_decode(small, &h, b.data(), b.size(), &out), -EMSGSIZE);
	q.n_stores = 0;
	q.text.user = "abc";
	q.text.user_len = 3;
	b = encode_req(q);
	EXPECT_EQ(zap_cp_request_decode(small, &h, b.data(), b.size(), &out), -EMSGSIZE);
	zap_cp_decoder_destroy(small);
}

TEST_F(Codec, ResponseErrorClasses)
{
	auto dec_resp = [&](uint8_t req, const Bytes &b) {
		zap_cp_hdr h = hdr((uint8_t)(req + ZAP_CP_RESPONSE_OFFSET), 1);
		zap_cp_response r;
		return zap_cp_response_decode(dec, &h, b.data(), b.size(), &r);
	};
	zap_cp_response r{};
	r.hdr = hdr(ZAP_CP_SYNC + ZAP_CP_RESPONSE_OFFSET, 1);
	Bytes good = encode_resp(r);
	EXPECT_EQ(dec_resp(ZAP_CP_SYNC, good), 0);
	{
		zap_cp_hdr h = hdr(ZAP_CP_SYNC, 1);
		zap_cp_response o;
		EXPECT_EQ(zap_cp_response_decode(dec, &h, good.data(), good.size(), &o), -ENOTSUP);
	}
	EXPECT_EQ(dec_resp(ZAP_CP_SYNC, Bytes(good.begin(), good.end() - 1)), -EBADMSG);
	Bytes b = good;
	b.push_back(0);
	EXPECT_EQ(dec_resp(ZAP_CP_SYNC, b), -EBADMSG);
	b = good;
	b[1] = ZAP_CP_STATUS_COUNT;
	EXPECT_EQ(dec_resp(ZAP_CP_SYNC, b), -EDOM);
	b = good;
	b[3] = 0x80;
	EXPECT_EQ(dec_resp(ZAP_CP_SYNC, b), -EINVAL);
	b = good;
	b[3] = ZAP_CP_RFLAG_TOO_OLD; // only CHANGES_SINCE takes it
	EXPECT_EQ(dec_resp(ZAP_CP_SYNC, b), -EINVAL);
	b = good;
	b[7] = 1; // a count on a type without one
	EXPECT_EQ(dec_resp(ZAP_CP_SYNC, b), -EINVAL);
	b = good;
	b[1] = ZAP_CP_NOT_FOUND;
	b.push_back(1); // a tail after an error status
	EXPECT_EQ(dec_resp(ZAP_CP_LOAD, b), -EBADMSG);
	b = good;
	b[4] = 0x7f; // a huge history
	EXPECT_EQ(dec_resp(ZAP_CP_HISTORY, b), -E2BIG);
	b = good;
	b[7] = 2; // two changed oids, no bytes for them
	EXPECT_EQ(dec_resp(ZAP_CP_CHANGES_SINCE, b), -EBADMSG);
	b = good;
	EXPECT_EQ(dec_resp(ZAP_CP_NEW_OIDS, b), -EINVAL); // count 0

	zap_cp_limits lim{};
	lim.max_record_bytes = 4;
	zap_cp_decoder *small;
	ASSERT_EQ(zap_cp_decoder_create(&lim, &small), 0);
	b = good;
	b.insert(b.end(), 5, 0);
	zap_cp_hdr h = hdr(ZAP_CP_LOAD + ZAP_CP_RESPONSE_OFFSET, 1);
	zap_cp_response o;
	EXPECT_EQ(zap_cp_response_decode(small, &h, b.data(), b.size(), &o), -EMSGSIZE);
	zap_cp_decoder_destroy(small);
}

TEST(CodecEncode, RejectsWhatCannotBeEncoded)
{
	zap_cp_request q{};
	q.hdr = hdr(3);
	Bytes b(100);
	EXPECT_EQ(zap_cp_request_encode(&q, b.data(), b.size()), -EINVAL);
	q.hdr = hdr(ZAP_CP_LOAD);
	EXPECT_EQ(zap_cp_request_encode(&q, b.data(), 4), -ENOSPC);
	EXPECT_EQ(zap_cp_chunk_count(0, 0), 0u);
	EXPECT_EQ(zap_cp_chunk_count(0, 10), 1u);
	EXPECT_EQ(zap_cp_chunk_count(21, 10), 3u);
	EXPECT_EQ(zap_cp_chunk_count(10ull * 70000, 10), 0u);
	EXPECT_EQ(zap_cp_chunk_encode(&q.hdr, b.data(), 8, 10, 1, b.data(), b.size()), -EINVAL);
}

// Mutate valid datagrams at random; every layer must reject cleanly or accept
// something that re-encodes to the same bytes. ZAP_CLIENT_SEED=N replays.
TEST(CodecFuzz, SeededMutationNeverCrashes)
{
	uint64_t seed = std::random_device{}();
	if (const char *s = getenv("ZAP_CLIENT_SEED"))
		seed = strtoull(s, nullptr, 0);
	printf("ZAP_CLIENT_SEED=%llu\n", (unsigned long long)seed);
	std::mt19937_64 rng(seed);
	zap_cp_decoder *dec;
	zap_cp_reasm *ra;
	ASSERT_EQ(zap_cp_decoder_create(nullptr, &dec), 0);
	ASSERT_EQ(zap_cp_reasm_create(nullptr, 8, &ra), 0);

	const char rec[] = "record-bytes";
	zap_cp_store st[2] = {{1, 0, 0, rec, 12}, {2, 7, 1, nullptr, 0}};
	zap_cp_read rd[1] = {{3, 1}};
	zap_cp_request q{};
	q.hdr = hdr(ZAP_CP_COMMIT_ONESHOT, 1);
	q.txn_id = 9;
	q.text.user = "u";
	q.text.user_len = 1;
	q.stores = st;
	q.n_stores = 2;
	q.reads = rd;
	q.n_reads = 1;
	Bytes txn = encode_req(q);
	zap_cp_hist hist[1] = {{5, 6, 0, "ab", 2, "c", 1}};
	zap_cp_response r{};
	r.hdr = hdr(ZAP_CP_HISTORY + ZAP_CP_RESPONSE_OFFSET, 2);
	r.count = 1;
	r.hist = hist;
	Bytes resp = encode_resp(r);
	std::vector<Bytes> seeds = chunks(q.hdr, txn, 1352);
	for (const Bytes &d : chunks(q.hdr, txn, 16))
		seeds.push_back(d);
	seeds.push_back(chunks(r.hdr, resp, 1352)[0]);
	zap_cp_request pk{};
	pk.hdr = hdr(ZAP_CP_PACK, 3);
	pk.tid = 0x03c0ffee00000004ull;
	seeds.push_back(chunks(pk.hdr, encode_req(pk), 1352)[0]);

	int accepted = 0;
	for (int iter = 0; iter < 200000; iter++) {
		Bytes d = seeds[rng() % seeds.size()];
		int n_mut = 1 + (int)(rng() % 4);
		for (int m = 0; m < n_mut; m++) {
			switch (rng() % 4) {
			case 0:
				d[rng() % d.size()] ^= (uint8_t)(1u << (rng() % 8));
				break;
			case 1:
				d[rng() % d.size()] = (uint8_t)rng();
				break;
			case 2:
				if (d.size() > 1)
					d.resize(rng() % d.size());
				break;
			default:
				d.push_back((uint8_t)rng());
				break;
			}
			if (d.empty())
				d.push_back(0);
		}
		zap_cp_hdr h;
		if (zap_cp_hdr_decode(d.data(), d.size(), kCluster, 1 << 20, &h) != 0)
			continue;
		const void *body;
		size_t len;
		if (zap_cp_reasm_push(ra, &h, d.data(), d.size(), &body, &len) != 1)
			continue;
		Bytes copy((const uint8_t *)body, (const uint8_t *)body + len);
		if (h.type < ZAP_CP_RESPONSE_OFFSET + ZAP_CP_REQUEST_FIRST) {
			zap_cp_request o;
			if (zap_cp_request_decode(dec, &h, copy.data(), copy.size(), &o) == 0) {
				accepted++;
				ASSERT_EQ(encode_req(o), copy)
				    << "seed " << seed << " iter " << iter;
			}
		} else {
			zap_cp_response o;
			if (zap_cp_response_decode(dec, &h, copy.data(), copy.size(), &o) == 0) {
				accepted++;
				ASSERT_EQ(encode_resp(o), copy)
				    << "seed " << seed << " iter " << iter;
			}
		}
	}
	printf("accepted %d mutated messages\n", accepted);
	zap_cp_decoder_destroy(dec);
	zap_cp_reasm_destroy(ra);
}

} // namespace
