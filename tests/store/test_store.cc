/* SPDX-License-Identifier: Apache-2.0 */
/* Store behaviour, one behaviour per test. */
#include "store_fixture.h"

#include <cstring>
#include <memory>

namespace {

struct Reader {
	zap_store_reader *r = nullptr;
	explicit Reader(zap_store *s)
	{
		EXPECT_EQ(zap_store_reader_open(s, &r), 0);
		zap_store_read_begin(r);
	}
	~Reader()
	{
		zap_store_read_end(r);
		zap_store_reader_close(r);
	}
};

TEST(Store, EmptyStoreHasNothing)
{
	zap_store *s = make_store();
	EXPECT_EQ(zap_store_last_tid(s), 0u);
	{
		Reader rd(s);
		zap_store_rev rev;
		EXPECT_EQ(zap_store_load(rd.r, 0, &rev), -ENOENT);
	}
	zap_store_close(s);
}

TEST(Store, LoadReturnsCommittedRecord)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_writes(s, 10, {pattern_write(7, 10)}), 0);
	EXPECT_EQ(zap_store_last_tid(s), 10u);
	EXPECT_EQ(zap_store_serial(s, 7), 10u);
	auto rd_holder = std::make_unique<Reader>(s);
	Reader &rd = *rd_holder;
	zap_store_rev rev;
	ASSERT_EQ(zap_store_load(rd.r, 7, &rev), 0);
	EXPECT_EQ(rev.serial, 10u);
	EXPECT_EQ(rev.next_serial, 0u);
	EXPECT_EQ(rev.len, pattern_len(7, 10));
	EXPECT_TRUE(pattern_check((const uint8_t *)rev.data, rev.len, 7, 10));
	rd_holder.reset();
	zap_store_close(s);
}

TEST(Store, LoadBeforeReturnsPreviousRevisionAndNextSerial)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_writes(s, 10, {pattern_write(1, 10)}), 0);
	ASSERT_EQ(commit_writes(s, 20, {pattern_write(1, 20)}), 0);
	ASSERT_EQ(commit_writes(s, 30, {pattern_write(1, 30)}), 0);
	auto rd_holder = std::make_unique<Reader>(s);
	Reader &rd = *rd_holder;
	zap_store_rev rev;
	ASSERT_EQ(zap_store_load_before(rd.r, 1, 30, &rev), 0);
	EXPECT_EQ(rev.serial, 20u);
	EXPECT_EQ(rev.next_serial, 30u);
	ASSERT_EQ(zap_store_load_before(rd.r, 1, 21, &rev), 0);
	EXPECT_EQ(rev.serial, 20u);
	ASSERT_EQ(zap_store_load_before(rd.r, 1, 20, &rev), 0);
	EXPECT_EQ(rev.serial, 10u);
	EXPECT_EQ(rev.next_serial, 20u);
	EXPECT_TRUE(pattern_check((const uint8_t *)rev.data, rev.len, 1, 10));
	EXPECT_EQ(zap_store_load_before(rd.r, 1, 10, &rev), -ENOENT);
	ASSERT_EQ(zap_store_load_before(rd.r, 1, UINT64_MAX, &rev), 0);
	EXPECT_EQ(rev.serial, 30u);
	EXPECT_EQ(rev.next_serial, 0u);
	ASSERT_EQ(zap_store_load_serial(rd.r, 1, 20, &rev), 0);
	EXPECT_EQ(rev.next_serial, 30u);
	EXPECT_EQ(zap_store_load_serial(rd.r, 1, 25, &rev), -ENOENT);
	rd_holder.reset();
	zap_store_close(s);
}

TEST(Store, ReaderSnapshotHidesLaterCommits)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_writes(s, 10, {pattern_write(1, 10)}), 0);
	auto rd_holder = std::make_unique<Reader>(s);
	Reader &rd = *rd_holder;
	EXPECT_EQ(zap_store_reader_snapshot(rd.r), 10u);
	ASSERT_EQ(commit_writes(s, 20, {pattern_write(1, 20), pattern_write(2, 20)}), 0);
	zap_store_rev rev;
	ASSERT_EQ(zap_store_load(rd.r, 1, &rev), 0);
	EXPECT_EQ(rev.serial, 10u);
	EXPECT_EQ(rev.next_serial, 0u) << "a newer revision beyond the snapshot is not visible";
	EXPECT_EQ(zap_store_load(rd.r, 2, &rev), -ENOENT);
	zap_store_read_end(rd.r);
	EXPECT_EQ(zap_store_read_begin(rd.r), 20u);
	ASSERT_EQ(zap_store_load(rd.r, 2, &rev), 0);
	EXPECT_EQ(rev.serial, 20u);
	rd_holder.reset();
	zap_store_close(s);
}

TEST(Store, DeletionRecordIsVisibleAsDeleted)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_writes(s, 10, {pattern_write(3, 10)}), 0);
	ASSERT_EQ(commit_writes(s, 20, {pattern_write(3, 20, true)}), 0);
	EXPECT_EQ(zap_store_serial(s, 3), 20u);
	auto rd_holder = std::make_unique<Reader>(s);
	Reader &rd = *rd_holder;
	zap_store_rev rev;
	ASSERT_EQ(zap_store_load(rd.r, 3, &rev), 0);
	EXPECT_EQ(rev.deleted, 1);
	EXPECT_EQ(rev.data, nullptr);
	EXPECT_EQ(rev.serial, 20u);
	ASSERT_EQ(zap_store_load_before(rd.r, 3, 20, &rev), 0);
	EXPECT_EQ(rev.deleted, 0);
	EXPECT_EQ(rev.serial, 10u);
	rd_holder.reset();
	zap_store_close(s);
}

TEST(Store, HistoryIsNewestFirstWithTransactionMetadata)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_writes(s, 10, {pattern_write(5, 10)}, "alice", "first"), 0);
	ASSERT_EQ(commit_writes(s, 20, {pattern_write(5, 20)}, "bob", "second"), 0);
	auto rd_holder = std::make_unique<Reader>(s);
	Reader &rd = *rd_holder;
	zap_store_hist h[4];
	size_t n = 0;
	ASSERT_EQ(zap_store_history(rd.r, 5, h, 4, &n), 0);
	ASSERT_EQ(n, 2u);
	EXPECT_EQ(h[0].serial, 20u);
	EXPECT_EQ(std::string((const char *)h[0].txn.text.user, h[0].txn.text.user_len), "bob");
	EXPECT_EQ(
	    std::string((const char *)h[1].txn.text.description, h[1].txn.text.description_len),
	    "first");
	EXPECT_EQ(h[1].len, pattern_len(5, 10));
	ASSERT_EQ(zap_store_history(rd.r, 5, h, 1, &n), 0);
	EXPECT_EQ(n, 1u);
	EXPECT_EQ(zap_store_history(rd.r, 6, h, 4, &n), -ENOENT);
	rd_holder.reset();
	zap_store_close(s);
}

TEST(Store, CommitRejectsBadInputAndChangesNothing)
{
	zap_store *s = make_store(8ull << 20);
	ASSERT_EQ(commit_writes(s, 10, {pattern_write(1, 10)}), 0);
	uint64_t d = zap_store_digest(s);
	EXPECT_EQ(commit_writes(s, 10, {pattern_write(2, 10)}), -EINVAL) << "tid not increasing";
	EXPECT_EQ(commit_writes(s, 5, {pattern_write(2, 5)}), -EINVAL);
	EXPECT_EQ(commit_writes(s, 11, {pattern_write(2, 11), pattern_write(2, 11)}), -EINVAL)
		<< "oid twice";
	EXPECT_EQ(commit_writes(s, 11, {}), -EINVAL);
	PatternWrite bad{UINT64_MAX, {}, false};
	EXPECT_EQ(commit_writes(s, 11, {bad}), -EINVAL);
	PatternWrite big{9, std::vector<uint8_t>((8u << 20) / 4 + 1), false};
	EXPECT_EQ(commit_writes(s, 11, {big}), -EMSGSIZE);
	EXPECT_EQ(zap_store_digest(s), d);
	EXPECT_EQ(zap_store_last_tid(s), 10u);
	zap_store_close(s);
}

TEST(Store, FullStoreFailsWithNoSpaceAndStaysConsistent)
{
	zap_store *s = make_store(4ull << 20);
	std::vector<uint8_t> rec(512u << 10, 0xab);
	uint64_t tid = 1;
	int rc = 0;
	for (; tid < 100 && rc == 0; tid++) {
		PatternWrite w{tid, rec, false};
		rc = commit_writes(s, tid, {w});
	}
	ASSERT_EQ(rc, -ENOSPC);
	uint64_t last = zap_store_last_tid(s);
	EXPECT_EQ(last, tid - 2);
	uint64_t d = zap_store_digest(s);
	PatternWrite w{999, rec, false};
	EXPECT_EQ(commit_writes(s, last + 1, {w}), -ENOSPC);
	EXPECT_EQ(zap_store_digest(s), d);
	/* small commits still fit in what is left */
	EXPECT_EQ(commit_writes(s, last + 1, {pattern_write(1, last + 1)}), 0);
	zap_store_close(s);
}

TEST(Store, RecordsOfManyMegabytesRoundTrip)
{
	zap_store *s = make_store(256ull << 20);
	std::vector<uint8_t> big(16u << 20);
	for (size_t i = 0; i < big.size(); i++)
		big[i] = (uint8_t)(i * 2654435761u >> 13);
	PatternWrite w{42, big, false};
	ASSERT_EQ(commit_writes(s, 7, {w}), 0);
	auto rd_holder = std::make_unique<Reader>(s);
	Reader &rd = *rd_holder;
	zap_store_rev rev;
	ASSERT_EQ(zap_store_load(rd.r, 42, &rev), 0);
	ASSERT_EQ(rev.len, big.size());
	EXPECT_EQ(memcmp(rev.data, big.data(), big.size()), 0);
	rd_holder.reset();
	zap_store_close(s);
}

TEST(Store, IndexGrowsAndKeepsEveryObject)
{
	zap_store *s = make_store(256ull << 20, 0, 16);
	const uint64_t n = 50000;
	for (uint64_t oid = 0; oid < n; oid += 100) {
		std::vector<PatternWrite> ws;
		for (uint64_t k = oid; k < oid + 100; k++)
			ws.push_back(pattern_write(k, oid + 1));
		ASSERT_EQ(commit_writes(s, oid + 1, ws), 0);
	}
	struct zap_store_stats st;
	zap_store_stats(s, &st);
	EXPECT_EQ(st.objects, n);
	EXPECT_GE(st.index_slots, n);
	auto rd_holder = std::make_unique<Reader>(s);
	Reader &rd = *rd_holder;
	for (uint64_t oid = 0; oid < n; oid++) {
		zap_store_rev rev;
		ASSERT_EQ(zap_store_load(rd.r, oid, &rev), 0) << oid;
		ASSERT_TRUE(pattern_check((const uint8_t *)rev.data, rev.len, oid, rev.serial));
	}
	rd_holder.reset();
	zap_store_close(s);
}

struct Changes {
	std::vector<uint64_t> tids;
	std::vector<std::vector<uint64_t>> oids;
};

static int collect(const zap_store_txn_info *t, void *ctx)
{
	auto *c = (Changes *)ctx;
	c->tids.push_back(t->tid);
	c->oids.emplace_back(t->oids, t->oids + t->n_oids);
	return 0;
}

TEST(Store, ChangesSinceListsLaterTransactionsInOrder)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_writes(s, 10, {pattern_write(1, 10)}), 0);
	ASSERT_EQ(commit_writes(s, 20, {pattern_write(2, 20), pattern_write(3, 20)}), 0);
	ASSERT_EQ(commit_writes(s, 30, {pattern_write(1, 30)}), 0);
	auto rd_holder = std::make_unique<Reader>(s);
	Reader &rd = *rd_holder;
	Changes c;
	ASSERT_EQ(zap_store_changes_since(rd.r, 10, collect, &c), 0);
	ASSERT_EQ(c.tids, (std::vector<uint64_t>{20, 30}));
	EXPECT_EQ(c.oids[0], (std::vector<uint64_t>{2, 3}));
	Changes all;
	ASSERT_EQ(zap_store_changes_since(rd.r, 0, collect, &all), 0);
	EXPECT_EQ(all.tids.size(), 3u);
	Changes none;
	ASSERT_EQ(zap_store_changes_since(rd.r, 30, collect, &none), 0);
	EXPECT_TRUE(none.tids.empty());
	rd_holder.reset();
	zap_store_close(s);
}

TEST(Store, ChangesSinceTooOldIsOutOfRange)
{
	zap_store *s = make_store(64ull << 20, 8);
	for (uint64_t t = 1; t <= 20; t++)
		ASSERT_EQ(commit_writes(s, t * 10, {pattern_write(t, t * 10)}), 0);
	auto rd_holder = std::make_unique<Reader>(s);
	Reader &rd = *rd_holder;
	Changes c;
	EXPECT_EQ(zap_store_changes_since(rd.r, 10, collect, &c), -ERANGE);
	Changes recent;
	ASSERT_EQ(zap_store_changes_since(rd.r, 150, collect, &recent), 0);
	EXPECT_EQ(recent.tids, (std::vector<uint64_t>{160, 170, 180, 190, 200}));
	rd_holder.reset();
	zap_store_close(s);
}

TEST(Store, TxnScanListsEveryTransactionPastTheRing)
{
	zap_store *s = make_store(64ull << 20, 8);
	for (uint64_t t = 1; t <= 20; t++) { /* oids 1..4 in turn, oid 9 every 5th */
		std::vector<PatternWrite> w;
		if (t % 5 == 0)
			w.push_back(pattern_write(9, t * 10));
		w.push_back(pattern_write(t % 4 + 1, t * 10));
		ASSERT_EQ(commit_writes(s, t * 10, w), 0);
	}
	auto rd_holder = std::make_unique<Reader>(s);
	Reader &rd = *rd_holder;
	zap_store_txn_ref *v = nullptr;
	size_t n = 0;
	ASSERT_EQ(zap_store_txn_scan(rd.r, 15, 175, &v, &n), 0);
	ASSERT_EQ(n, 16u) << "tids 20..170, each once, the ring (8) notwithstanding";
	for (size_t i = 0; i < n; i++) {
		EXPECT_EQ(v[i].tid, 20 + 10 * i);
		zap_store_txn_info t;
		ASSERT_EQ(zap_store_txn_of(rd.r, v[i].oid, v[i].tid, &t), 0);
		EXPECT_EQ(t.tid, v[i].tid);
		uint64_t k = v[i].tid / 10;
		EXPECT_EQ(t.n_oids, k % 5 == 0 ? 2u : 1u);
		EXPECT_EQ(t.oids[t.n_oids - 1], k % 4 + 1);
	}
	free(v);
	ASSERT_EQ(zap_store_txn_scan(rd.r, 200, UINT64_MAX, &v, &n), 0);
	EXPECT_EQ(n, 0u);
	free(v);
	zap_store_txn_info t;
	EXPECT_EQ(zap_store_txn_of(rd.r, 1, 15, &t), -ENOENT) << "no such revision";
	EXPECT_EQ(zap_store_txn_of(rd.r, 7, 10, &t), -ENOENT) << "no such object";
	rd_holder.reset();
	ASSERT_EQ(zap_store_pack(s, 200), 0);
	{
		Reader after(s);
		ASSERT_EQ(zap_store_txn_scan(after.r, 0, UINT64_MAX, &v, &n), 0);
		EXPECT_EQ(n, 4u) << "after a pack only the transactions of current revisions";
		free(v);
	}
	zap_store_close(s);
}

TEST(Store, PackDropsOldRevisionsAndKeepsCurrentOnes)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_writes(s, 10, {pattern_write(1, 10), pattern_write(2, 10)}), 0);
	ASSERT_EQ(commit_writes(s, 20, {pattern_write(1, 20)}), 0);
	ASSERT_EQ(commit_writes(s, 30, {pattern_write(1, 30), pattern_write(2, 30, true)}), 0);
	ASSERT_EQ(commit_writes(s, 40, {pattern_write(1, 40)}), 0);
	ASSERT_EQ(zap_store_pack(s, 35), 0);
	struct zap_store_stats st;
	zap_store_stats(s, &st);
	EXPECT_EQ(st.objects, 1u) << "oid 2 was deleted before the pack time";
	EXPECT_EQ(st.revisions, 2u);
	EXPECT_GT(st.reclaimed_blocks, 0u);
	auto rd_holder = std::make_unique<Reader>(s);
	Reader &rd = *rd_holder;
	zap_store_rev rev;
	ASSERT_EQ(zap_store_load_before(rd.r, 1, 40, &rev), 0);
	EXPECT_EQ(rev.serial, 30u);
	EXPECT_EQ(zap_store_load_before(rd.r, 1, 30, &rev), -ENOENT);
	EXPECT_EQ(zap_store_load(rd.r, 2, &rev), -ENOENT);
	EXPECT_EQ(zap_store_pack(s, 41), -EINVAL);
	rd_holder.reset();
	zap_store_close(s);
}

TEST(Store, SameCommitsGiveByteIdenticalStores)
{
	zap_store *a = make_store(32ull << 20, 64, 16);
	zap_store *b = make_store(32ull << 20, 64, 16);
	for (uint64_t t = 1; t < 400; t++) {
		std::vector<PatternWrite> ws;
		for (uint64_t k = 0; k < 1 + t % 5; k++)
			ws.push_back(pattern_write((t * 7 + k * 13) % 97, t, (t + k) % 11 == 0));
		ASSERT_EQ(commit_writes(a, t, ws), 0);
		ASSERT_EQ(commit_writes(b, t, ws), 0);
	}
	uint64_t ua, ub;
	const void *ia = zap_store_image(a, &ua);
	const void *ib = zap_store_image(b, &ub);
	ASSERT_EQ(ua, ub);
	EXPECT_EQ(memcmp(ia, ib, ua), 0);
	EXPECT_EQ(zap_store_digest(a), zap_store_digest(b));
	zap_store_close(a);
	zap_store_close(b);
}

TEST(Store, DigestDiffersWhenContentDiffers)
{
	zap_store *a = make_store();
	zap_store *b = make_store();
	ASSERT_EQ(commit_writes(a, 10, {pattern_write(1, 10)}), 0);
	ASSERT_EQ(commit_writes(b, 10, {pattern_write(1, 11)}), 0);
	EXPECT_NE(zap_store_digest(a), zap_store_digest(b));
	zap_store_close(a);
	zap_store_close(b);
}

} // namespace
