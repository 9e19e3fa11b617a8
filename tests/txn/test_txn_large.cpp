// SPDX-License-Identifier: Apache-2.0
// Large entries: PAYLOAD chunks assembled by the state machine, then a LARGE
// entry that names them by length and hash (docs/txn.md "Large entries").
#include "txn_sm_fixture.h"

#include <cerrno>
#include <string>

#include <sodium.h>

using namespace zaptest;

namespace
{

constexpr uint64_t kSec = 1000000000ull;
constexpr uint64_t kT0 = 1795597512ull * kSec;

Bytes Chunk(uint64_t id, const Bytes &whole, uint64_t off, uint64_t len, uint64_t clock = kT0,
	    uint16_t node = 1)
{
	zap_entry e = Header(ZAP_ENTRY_PAYLOAD, Hdr{0, 0, clock, node});
	e.u.payload.id = id;
	e.u.payload.offset = off;
	e.u.payload.total = whole.size();
	e.u.payload.data = whole.data() + off;
	e.u.payload.len = len;
	return Encode(e);
}

Bytes Large(const Hdr &h, uint64_t id, const Bytes &whole)
{
	zap_entry e = Header(ZAP_ENTRY_LARGE, h);
	e.u.large.id = id;
	e.u.large.total = whole.size();
	crypto_generichash(e.u.large.hash, ZAP_ENTRY_HASH_BYTES, whole.data(), whole.size(), nullptr,
			   0);
	return Encode(e);
}

// A PREPARE of client 7, request 1, with one record per string.
Bytes BigPrepare(std::vector<std::string> records, uint64_t txn_id = 5)
{
	std::vector<Store> st;
	for (size_t i = 0; i < records.size(); i++)
		st.push_back({(uint64_t)(10 + i), 0, records[i]});
	return Prepare(Hdr{7, 1, kT0, 1}, T(txn_id, st));
}

// Send @p whole in chunks of @p step; every chunk's result says the bytes held.
void SendChunks(Replica &r, uint64_t id, const Bytes &whole, uint64_t step)
{
	for (uint64_t off = 0; off < whole.size(); off += step) {
		uint64_t len = std::min<uint64_t>(step, whole.size() - off);
		zap_txn_result res = r.One(Chunk(id, whole, off, len));
		EXPECT_EQ(res.status, ZAP_TXN_OK);
		EXPECT_EQ(res.entry_type, ZAP_ENTRY_PAYLOAD);
		EXPECT_EQ(res.txn_id, id);
		EXPECT_EQ(res.tid, off + len);
		EXPECT_EQ(res.client_id, 0u);
	}
}

TEST(TxnLarge, ChunksThenLargeApplyThePrepareAsIfWhole)
{
	Replica r;
	Bytes whole = BigPrepare({std::string(3000, 'a'), std::string(5000, 'b')});
	SendChunks(r, 42, whole, 1000);
	EXPECT_EQ(r.Stats().payloads, 1u);
	EXPECT_EQ(r.Stats().payload_bytes, whole.size());
	zap_txn_result v = r.One(Large(Hdr{7, 1, kT0, 1}, 42, whole));
	EXPECT_EQ(v.status, ZAP_TXN_OK);
	EXPECT_EQ(v.entry_type, ZAP_ENTRY_PREPARE);
	EXPECT_EQ(v.client_id, 7u);
	EXPECT_EQ(v.seq, 1u);
	EXPECT_EQ(v.txn_id, 5u);
	EXPECT_EQ(r.Stats().payloads, 0u);
	EXPECT_EQ(r.Stats().large_applied, 1u);
	zap_txn_result c = r.One(Commit(Hdr{7, 2, kT0, 1}, 5));
	ASSERT_EQ(c.status, ZAP_TXN_OK);
	EXPECT_EQ(r.Serial(10), c.tid);
	EXPECT_EQ(r.Serial(11), c.tid);
}

TEST(TxnLarge, SameEntriesGiveTheSameStateAsTheWholePrepare)
{
	Replica whole_r, chunked;
	Bytes whole = BigPrepare({std::string(10000, 'x')});
	// the same PREPARE applied whole, at the index the LARGE will have
	for (int i = 0; i < 3; i++)
		whole_r.Apply(Nop());
	EXPECT_EQ(whole_r.One(whole).status, ZAP_TXN_OK);
	SendChunks(chunked, 9, whole, 4000); // 3 chunks
	EXPECT_EQ(chunked.One(Large(Hdr{7, 1, kT0, 1}, 9, whole)).status, ZAP_TXN_OK);
	EXPECT_EQ(chunked.Digest(), whole_r.Digest());
}

TEST(TxnLarge, ResentAndEarlyChunksAreIgnoredAndTheBytesHeldSaySo)
{
	Replica r;
	Bytes whole = BigPrepare({std::string(3000, 'q')});
	EXPECT_EQ(r.One(Chunk(3, whole, 0, 1000)).tid, 1000u);
	EXPECT_EQ(r.One(Chunk(3, whole, 2000, 1000)).tid, 1000u); // past a gap: ignored
	EXPECT_EQ(r.One(Chunk(3, whole, 0, 1000)).tid, 1000u);	   // a resend: ignored
	EXPECT_EQ(r.One(Chunk(3, whole, 1000, 1000)).tid, 2000u);
	EXPECT_EQ(r.One(Chunk(3, whole, 2000, whole.size() - 2000)).tid, whole.size());
	EXPECT_EQ(r.One(Large(Hdr{7, 1, kT0, 1}, 3, whole)).status, ZAP_TXN_OK);
}

TEST(TxnLarge, ChunkWithoutItsFirstIsDroppedAndHoldsNothing)
{
	Replica r;
	Bytes whole = BigPrepare({std::string(3000, 'q')});
	zap_txn_result res = r.One(Chunk(3, whole, 1000, 1000));
	EXPECT_EQ(res.status, ZAP_TXN_OK);
	EXPECT_EQ(res.tid, 0u);
	EXPECT_EQ(r.Stats().payloads, 0u);
	EXPECT_EQ(r.Stats().payloads_dropped, 1u);
}

TEST(TxnLarge, MissingIncompleteOrCorruptPayloadIsRefusedWithoutASessionRecord)
{
	Replica r;
	Bytes whole = BigPrepare({std::string(3000, 'q')});
	// no payload at all
	zap_txn_result v = r.One(Large(Hdr{7, 1, kT0, 1}, 77, whole));
	EXPECT_EQ(v.status, ZAP_TXN_ABORTED);
	EXPECT_EQ(v.client_id, 7u);
	EXPECT_EQ(v.seq, 1u);
	// incomplete: the payload is consumed and refused
	r.One(Chunk(80, whole, 0, 1000));
	EXPECT_EQ(r.One(Large(Hdr{7, 1, kT0, 1}, 80, whole)).status, ZAP_TXN_ABORTED);
	SendChunks(r, 78, whole, 1000);
	Bytes corrupt = whole;
	corrupt[100] ^= 1;
	SendChunks(r, 79, corrupt, 1000);
	EXPECT_EQ(r.One(Large(Hdr{7, 1, kT0, 1}, 79, whole)).status, ZAP_TXN_ABORTED); // bad hash
	EXPECT_EQ(r.Stats().large_refused, 3u);
	EXPECT_EQ(r.Stats().payloads, 1u); // 78 still there
	// the request was not recorded: the same seq may come again, whole
	EXPECT_EQ(r.One(Large(Hdr{7, 1, kT0, 1}, 78, whole)).status, ZAP_TXN_OK);
	EXPECT_EQ(r.Stats().payloads, 0u);
	EXPECT_EQ(r.Stats().prepared, 1u);
}

TEST(TxnLarge, PayloadOfAnotherRequestIsRefused)
{
	Replica r;
	Bytes whole = BigPrepare({std::string(3000, 'q')});
	SendChunks(r, 5, whole, 1500);
	// the LARGE names a payload whose entry is request 1 of client 7, as request 2
	EXPECT_EQ(r.One(Large(Hdr{7, 2, kT0, 1}, 5, whole)).status, ZAP_TXN_ABORTED);
	EXPECT_EQ(r.Stats().prepared, 0u);
}

TEST(TxnLarge, ChunkOfAnotherTotalBreaksThePayload)
{
	Replica r;
	Bytes whole = BigPrepare({std::string(3000, 'q')});
	r.One(Chunk(4, whole, 0, 1000));
	Bytes other = whole;
	other.push_back(0);
	zap_txn_result res = r.One(Chunk(4, other, 1000, 1000));
	EXPECT_EQ(res.status, ZAP_TXN_ABORTED);
	EXPECT_EQ(r.One(Large(Hdr{7, 1, kT0, 1}, 4, whole)).status, ZAP_TXN_ABORTED);
}

TEST(TxnLarge, LeaseExpiryAndNodeDepartureDropPayloads)
{
	Replica r;
	Bytes whole = BigPrepare({std::string(3000, 'q')});
	r.One(Chunk(1, whole, 0, 1000, kT0, 1));
	r.One(Chunk(2, whole, 0, 1000, kT0 + 8 * kSec, 2));
	r.One(Chunk(3, whole, 0, 1000, kT0 + 8 * kSec, 3));
	EXPECT_EQ(r.Stats().payloads, 3u);
	r.Apply(LeaseExpire(kT0 + 10 * kSec, ZAP_ENTRY_NODE_NONE)); // lease is 10 s: payload 1
	EXPECT_EQ(r.Stats().payloads, 2u);
	r.Apply(LeaseExpire(kT0 + 11 * kSec, 3)); // node 3 left
	EXPECT_EQ(r.Stats().payloads, 1u);
	EXPECT_EQ(r.Stats().payloads_dropped, 2u);
}

TEST(TxnLarge, AnUploadLongerThanTheLeaseGoesOnAndItsLeaseStartsAtTheLarge)
{
	Replica r; // lease 10 s
	Bytes whole = BigPrepare({std::string(3000, 'q')});
	r.One(Chunk(8, whole, 0, 1000, kT0));
	r.One(Chunk(8, whole, 1000, 1000, kT0 + 8 * kSec));
	r.Apply(LeaseExpire(kT0 + 12 * kSec, ZAP_ENTRY_NODE_NONE)); // 4 s after the last chunk
	EXPECT_EQ(r.Stats().payloads, 1u);
	EXPECT_EQ(r.One(Chunk(8, whole, 2000, whole.size() - 2000, kT0 + 16 * kSec)).tid,
		  whole.size());
	EXPECT_EQ(r.One(Large(Hdr{7, 1, kT0 + 17 * kSec, 1}, 8, whole)).status, ZAP_TXN_OK);
	// the PREPARE inside was sent at kT0; its lease runs from the LARGE's clock
	r.Apply(LeaseExpire(kT0 + 25 * kSec, ZAP_ENTRY_NODE_NONE));
	EXPECT_EQ(r.Stats().prepared, 1u);
	r.Apply(LeaseExpire(kT0 + 27 * kSec, ZAP_ENTRY_NODE_NONE));
	EXPECT_EQ(r.Stats().prepared, 0u);
	EXPECT_EQ(r.Stats().expiries, 1u);
}

TEST(TxnLarge, TooManyPayloadsAtOnceAreRefused)
{
	Replica r;
	Bytes whole = BigPrepare({std::string(100, 'q')});
	for (uint64_t id = 1; id <= 64; id++)
		EXPECT_EQ(r.One(Chunk(id, whole, 0, 10)).status, ZAP_TXN_OK);
	EXPECT_EQ(r.One(Chunk(65, whole, 0, 10)).status, ZAP_TXN_ABORTED);
	EXPECT_EQ(r.Stats().payloads, 64u);
}

TEST(TxnLarge, DuplicateLargeIsAnsweredFromTheSession)
{
	Replica r;
	Bytes whole = BigPrepare({std::string(3000, 'q')});
	SendChunks(r, 6, whole, 1000);
	EXPECT_EQ(r.One(Large(Hdr{7, 1, kT0, 1}, 6, whole)).status, ZAP_TXN_OK);
	// resent whole (a new payload): the session answers, the payload is freed
	SendChunks(r, 16, whole, 1000);
	zap_txn_result d = r.One(Large(Hdr{7, 1, kT0, 1}, 16, whole));
	EXPECT_EQ(d.status, ZAP_TXN_OK);
	EXPECT_EQ(d.duplicate, 1);
	EXPECT_EQ(r.Stats().payloads, 0u);
	EXPECT_EQ(r.Stats().prepared, 1u);
}

} // namespace
