// SPDX-License-Identifier: Apache-2.0
// PACK with garbage collection in the state machine: one behaviour per test.
#include "txn_sm_fixture.h"

#include <cerrno>
#include <random>
#include <string>

#include "store_refs.h"

using namespace zaptest;

namespace
{

constexpr uint64_t kSec = 1000000000ull;
constexpr uint64_t kT0 = 1795597512ull * kSec; // 2026-11-25 09:05:12

zap_txn_params GcParams()
{
	zap_txn_params p = Replica::Params();
	p.refs = test_refs;
	return p;
}

// Commit oid -> the record referencing refs, as client 99; the tid.
uint64_t PutRaw(Replica &r, uint64_t oid, const std::string &rec)
{
	uint64_t seq = ++r.put_seq;
	zap_txn_result res = r.One(Oneshot(Hdr{99, seq, kT0 + seq * kSec, 1},
					   T(1000000 + seq, {{oid, r.Serial(oid), rec}})));
	EXPECT_EQ(res.status, ZAP_TXN_OK);
	return res.tid;
}

uint64_t Put(Replica &r, uint64_t oid, std::vector<uint64_t> refs)
{
	return PutRaw(r, oid, refs_record(refs));
}

zap_txn_result PackAll(Replica &r, uint64_t seq = 1)
{
	return r.One(Pack(Hdr{4, seq, kT0, 1}, UINT64_MAX));
}

TEST(TxnGc, PackCollectsObjectsUnreachableFromTheRoot)
{
	Replica r(GcParams());
	Put(r, 1, {});
	Put(r, 2, {});
	uint64_t t = Put(r, 0, {1});
	zap_txn_result res = PackAll(r);
	EXPECT_EQ(res.status, ZAP_TXN_OK);
	EXPECT_EQ(res.tid, t);
	EXPECT_EQ(r.Stats().packs, 1u);
	EXPECT_EQ(r.Stats().gc_collected, 1u);
	EXPECT_EQ(r.Stats().gc_aborted, 0u);
	EXPECT_NE(r.Serial(0), 0u);
	EXPECT_NE(r.Serial(1), 0u);
	EXPECT_EQ(r.Serial(2), 0u);
}

TEST(TxnGc, WithoutExtractorPackCollectsNothing)
{
	Replica r;
	Put(r, 1, {});
	Put(r, 0, {});
	ASSERT_EQ(PackAll(r).status, ZAP_TXN_OK);
	EXPECT_NE(r.Serial(1), 0u);
	EXPECT_EQ(r.Stats().gc_collected, 0u);
}

TEST(TxnGc, PreparedTransactionKeepsItsObjectsAndWhatItsRecordsReference)
{
	Replica r(GcParams());
	for (uint64_t oid = 3; oid <= 6; oid++)
		Put(r, oid, {});
	Put(r, 0, {});
	// stores 3 with a record referencing 5 and a new object 7; reads 4
	zap_txn_result v = r.One(Prepare(Hdr{1, 1, kT0 + 50 * kSec, 1},
					 T(70, {{3, r.Serial(3), refs_record({5, 7})}, {7, 0, refs_record({})}},
					   {{4, r.Serial(4)}})));
	ASSERT_EQ(v.status, ZAP_TXN_OK);
	ASSERT_EQ(PackAll(r).status, ZAP_TXN_OK);
	EXPECT_EQ(r.Stats().gc_collected, 1u);
	EXPECT_NE(r.Serial(3), 0u);
	EXPECT_NE(r.Serial(4), 0u);
	EXPECT_NE(r.Serial(5), 0u);
	EXPECT_EQ(r.Serial(6), 0u);
	zap_txn_result c = r.One(Commit(Hdr{1, 2, kT0 + 51 * kSec, 1}, 70));
	ASSERT_EQ(c.status, ZAP_TXN_OK);
	EXPECT_EQ(r.Serial(3), c.tid);
}

TEST(TxnGc, WaitingTransactionKeepsItsObjects)
{
	Replica r(GcParams());
	Put(r, 3, {});
	Put(r, 8, {});
	Put(r, 0, {});
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0 + 50 * kSec, 1}, T(70, {}, {{3, r.Serial(3)}}))).status,
		  ZAP_TXN_OK);
	zap_txn_result w = r.One(Prepare(Hdr{2, 1, kT0 + 50 * kSec, 1},
					 T(80, {{8, r.Serial(8), refs_record({})}}, {{3, r.Serial(3)}})));
	ASSERT_EQ(w.status, ZAP_TXN_WAITING);
	ASSERT_EQ(PackAll(r).status, ZAP_TXN_OK);
	EXPECT_EQ(r.Stats().gc_collected, 0u);
	EXPECT_NE(r.Serial(8), 0u);
	ASSERT_EQ(r.Apply(Abort(Hdr{1, 2, kT0 + 51 * kSec, 1}, 70)), 0);
	ASSERT_EQ(r.One(Commit(Hdr{2, 2, kT0 + 52 * kSec, 1}, 80)).status, ZAP_TXN_OK);
	// nothing in flight any more: 3 and 8 are unreachable now
	ASSERT_EQ(PackAll(r, 2).status, ZAP_TXN_OK);
	EXPECT_EQ(r.Stats().gc_collected, 2u);
	EXPECT_EQ(r.Serial(8), 0u);
}

TEST(TxnGc, UnreadableRecordCollectsNothingAndIsCounted)
{
	Replica r(GcParams());
	PutRaw(r, 1, "not a record the extractor reads");
	Put(r, 2, {});
	Put(r, 0, {1});
	ASSERT_EQ(PackAll(r).status, ZAP_TXN_OK);
	EXPECT_EQ(r.Stats().gc_aborted, 1u);
	EXPECT_EQ(r.Stats().gc_collected, 0u);
	EXPECT_NE(r.Serial(2), 0u);
}

TEST(TxnGc, UnreadablePreparedRecordCollectsNothing)
{
	Replica r(GcParams());
	Put(r, 2, {});
	Put(r, 0, {});
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0 + 50 * kSec, 1}, T(70, {{9, 0, "junk"}}))).status,
		  ZAP_TXN_OK);
	ASSERT_EQ(PackAll(r).status, ZAP_TXN_OK);
	EXPECT_EQ(r.Stats().gc_aborted, 1u);
	EXPECT_NE(r.Serial(2), 0u);
}

int AppendSink(const void *buf, size_t len, void *ctx)
{
	Bytes *b = static_cast<Bytes *>(ctx);
	b->insert(b->end(), (const uint8_t *)buf, (const uint8_t *)buf + len);
	return 0;
}

TEST(TxnGc, TwoReplicasAndOneFromSnapshotsAgreeOnARandomLogWithPacks)
{
	const char *e = getenv("ZAP_TEST_SEED");
	uint64_t seed = e ? strtoull(e, nullptr, 0) : 20261125u;
	printf("seed %llu (set ZAP_TEST_SEED to replay)\n", (unsigned long long)seed);
	std::mt19937_64 rng(seed);
	Replica a(GcParams()), b(GcParams());
	std::unique_ptr<Replica> c;
	std::vector<Bytes> log;
	uint64_t seq[4] = {0, 0, 0, 0}, pack_seq = 0, clock = kT0;
	auto apply = [&](const Bytes &en) {
		log.push_back(en);
		int rc = a.Apply(en);
		ASSERT_EQ(rc, b.Apply(en));
		ASSERT_EQ(a.out.size(), b.out.size());
		for (size_t k = 0; k < a.out.size(); k++) {
			EXPECT_EQ(a.out[k].r.status, b.out[k].r.status);
			EXPECT_EQ(a.out[k].r.tid, b.out[k].r.tid);
		}
		if (c) {
			ASSERT_EQ(c->Apply(en), rc);
			ASSERT_EQ(c->out.size(), a.out.size());
		}
	};
	for (int i = 0; i < 3000; i++) {
		clock += kSec;
		uint64_t cl = 1 + rng() % 3;
		uint64_t kind = rng() % 10;
		if (kind == 0) {
			apply(Pack(Hdr{4, ++pack_seq, clock, 1}, 1 + a.Serial(rng() % 40) - rng() % 2));
			continue;
		}
		std::vector<Store> st;
		for (uint64_t k = 0, n = 1 + rng() % 3; k < n; k++) {
			uint64_t oid = i == 0 ? 0 : rng() % 40;
			bool dup = false;
			for (const Store &s : st)
				dup |= s.oid == oid;
			if (dup)
				continue;
			std::vector<uint64_t> refs;
			for (uint64_t j = 0, m = rng() % 4; j < m; j++)
				refs.push_back(rng() % 45);
			st.push_back({oid, a.Serial(oid), refs_record(refs)});
		}
		uint64_t txn = 100000 + i;
		if (kind < 7) {
			apply(Oneshot(Hdr{cl, ++seq[cl], clock, 1}, T(txn, st)));
		} else {
			apply(Prepare(Hdr{cl, ++seq[cl], clock, 1}, T(txn, st)));
			apply(Pack(Hdr{4, ++pack_seq, clock, 1}, UINT64_MAX));
			apply(kind == 9 ? Abort(Hdr{cl, ++seq[cl], clock, 1}, txn)
					: Commit(Hdr{cl, ++seq[cl], clock, 1}, txn));
		}
		ASSERT_EQ(a.StoreDigest(), b.StoreDigest()) << "entry " << i;
		ASSERT_EQ(a.Digest(), b.Digest()) << "entry " << i;
		if (i == 1500) {
			Bytes ss, ms;
			ASSERT_EQ(zap_store_snapshot_write(a.store, AppendSink, &ss), 0);
			ASSERT_EQ(zap_txn_sm_snapshot_write(a.sm, AppendSink, &ms), 0);
			c = std::make_unique<Replica>(GcParams());
			ASSERT_EQ(zap_store_snapshot_load(c->store, ss.data(), ss.size()), 0);
			ASSERT_EQ(zap_txn_sm_snapshot_load(c->sm, ms.data(), ms.size()), 0);
			c->index = a.index;
		}
	}
	ASSERT_TRUE(c);
	EXPECT_EQ(c->StoreDigest(), a.StoreDigest());
	EXPECT_EQ(c->Digest(), a.Digest());
	EXPECT_GT(a.Stats().gc_collected, 0u);
	EXPECT_EQ(a.Stats().gc_collected, b.Stats().gc_collected);
	EXPECT_EQ(a.Stats().gc_aborted, 0u);
}

} // namespace
