// SPDX-License-Identifier: Apache-2.0
// Tests of the transaction state machine: one behaviour per test.
#include "txn_sm_fixture.h"

#include <cerrno>
#include <string>

extern "C" {
#include "base/tid.h"
}

using namespace zaptest;

namespace
{

constexpr uint64_t kSec = 1000000000ull;
constexpr uint64_t kT0 = 1795597512ull * kSec; // 2026-11-25 09:05:12

// Commit oid -> data as client 99 and return the tid.
uint64_t Put(Replica &r, uint64_t oid, const std::string &data, uint64_t clock_ns = kT0)
{
	uint64_t seq = ++r.put_seq;
	uint64_t base = r.Serial(oid);
	zap_txn_result res =
	    r.One(Oneshot(Hdr{99, seq, clock_ns, 1}, T(1000000 + seq, {{oid, base, data}})));
	EXPECT_EQ(res.status, ZAP_TXN_OK);
	return res.tid;
}

TEST(Txn, OneshotCommitsAndReadsBack)
{
	Replica r;
	zap_txn_result res =
	    r.One(Oneshot(Hdr{1, 1, kT0, 1}, T(7, {{0, 0, "root"}, {5, 0, "five"}})));
	ASSERT_EQ(res.status, ZAP_TXN_OK);
	EXPECT_EQ(res.tid, zap_tid_from_unix_ns(kT0));
	EXPECT_EQ(res.client_id, 1u);
	EXPECT_EQ(res.seq, 1u);
	EXPECT_EQ(res.txn_id, 7u);
	EXPECT_EQ(res.entry_type, ZAP_ENTRY_ONESHOT);
	EXPECT_EQ(r.out[0].oids, (std::vector<uint64_t>{0, 5}));

	zap_store_reader *rd;
	ASSERT_EQ(zap_store_reader_open(r.store, &rd), 0);
	EXPECT_EQ(zap_store_read_begin(rd), res.tid);
	zap_store_rev rev;
	ASSERT_EQ(zap_store_load(rd, 5, &rev), 0);
	EXPECT_EQ(std::string((const char *)rev.data, rev.len), "five");
	EXPECT_EQ(rev.serial, res.tid);
	ASSERT_EQ(zap_store_load(rd, 0, &rev), 0);
	EXPECT_EQ(std::string((const char *)rev.data, rev.len), "root");
	zap_store_read_end(rd);
	zap_store_reader_close(rd);
}

TEST(Txn, PrepareThenCommitInstallsRecords)
{
	Replica r;
	zap_txn_result v = r.One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{3, 0, "x"}})));
	EXPECT_EQ(v.status, ZAP_TXN_OK);
	EXPECT_EQ(v.tid, 0u);
	EXPECT_EQ(r.Serial(3), 0u); // not visible before COMMIT
	EXPECT_EQ(r.Stats().prepared, 1u);
	EXPECT_EQ(r.Stats().locks, 1u);
	zap_txn_result c = r.One(Commit(Hdr{1, 2, kT0 + kSec, 1}, 7));
	ASSERT_EQ(c.status, ZAP_TXN_OK);
	EXPECT_EQ(c.entry_type, ZAP_ENTRY_COMMIT);
	EXPECT_EQ(r.Serial(3), c.tid);
	EXPECT_EQ(r.out[0].oids, (std::vector<uint64_t>{3}));
	EXPECT_EQ(r.Stats().prepared, 0u);
	EXPECT_EQ(r.Stats().locks, 0u);
}

TEST(Txn, CommitKeepsTheTidItAsksForWhenLaterThanTheLast)
{
	Replica r;
	// on an empty store any tid above 0 is kept, even one that reads as no
	// recent clock (ZODB's tests restore at tid 1)
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{3, 0, "x"}}))).status, ZAP_TXN_OK);
	zap_txn_result c = r.One(CommitAt(Hdr{1, 2, kT0, 1}, 7, 1));
	ASSERT_EQ(c.status, ZAP_TXN_OK);
	EXPECT_EQ(c.tid, 1u);
	EXPECT_EQ(r.Serial(3), 1u);
	// a tid not later than the last one is not kept: the clock decides
	ASSERT_EQ(r.One(Prepare(Hdr{1, 3, kT0, 1}, T(8, {{4, 0, "y"}}))).status, ZAP_TXN_OK);
	c = r.One(CommitAt(Hdr{1, 4, kT0 + kSec, 1}, 8, 1));
	ASSERT_EQ(c.status, ZAP_TXN_OK);
	EXPECT_EQ(c.tid, zap_tid_from_unix_ns(kT0 + kSec));
	// a tid far ahead of the clock is kept, and later commits follow it
	uint64_t ahead = zap_tid_from_unix_ns(kT0 + 1000 * kSec);
	ASSERT_EQ(r.One(Prepare(Hdr{1, 5, kT0, 1}, T(9, {{5, 0, "z"}}))).status, ZAP_TXN_OK);
	c = r.One(CommitAt(Hdr{1, 6, kT0 + 2 * kSec, 1}, 9, ahead));
	ASSERT_EQ(c.status, ZAP_TXN_OK);
	EXPECT_EQ(c.tid, ahead);
	uint64_t next = Put(r, 6, "after", kT0 + 3 * kSec);
	EXPECT_GT(next, ahead);
	// ZODB's maxtid and above are never kept: the clock decides
	ASSERT_EQ(r.One(Prepare(Hdr{1, 7, kT0, 1}, T(10, {{7, 0, "m"}}))).status, ZAP_TXN_OK);
	c = r.One(CommitAt(Hdr{1, 8, kT0 + 4 * kSec, 1}, 10, ZAP_TXN_MAX_ASKED_TID));
	ASSERT_EQ(c.status, ZAP_TXN_OK);
	EXPECT_EQ(c.tid, next + 1);
}

TEST(Txn, ConflictReportsOidCommittedAndBaseSerial)
{
	Replica r;
	uint64_t t1 = Put(r, 5, "a");
	uint64_t t2 = Put(r, 5, "b", kT0 + kSec);
	zap_txn_result res = r.One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{4, 0, "n"}, {5, t1, "c"}})));
	EXPECT_EQ(res.status, ZAP_TXN_CONFLICT);
	EXPECT_EQ(res.oid, 5u);
	EXPECT_EQ(res.serial, t2);	// committed
	EXPECT_EQ(res.base_serial, t1); // old
	EXPECT_EQ(r.Stats().locks, 0u); // nothing locked
	EXPECT_EQ(r.Stats().prepared, 0u);
	EXPECT_EQ(r.Stats().conflicts, 1u);
}

TEST(Txn, ConflictOnNewObjectThatExists)
{
	Replica r;
	uint64_t t1 = Put(r, 0, "root");
	zap_txn_result res = r.One(Oneshot(Hdr{1, 1, kT0, 1}, T(7, {{0, 0, "root2"}})));
	EXPECT_EQ(res.status, ZAP_TXN_CONFLICT);
	EXPECT_EQ(res.oid, 0u);
	EXPECT_EQ(res.serial, t1);
	EXPECT_EQ(res.base_serial, 0u);
}

TEST(Txn, ReadConflictReportsSerials)
{
	Replica r;
	uint64_t t1 = Put(r, 9, "a");
	uint64_t t2 = Put(r, 9, "b", kT0 + kSec);
	zap_txn_result res = r.One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{4, 0, "n"}}, {{9, t1}})));
	EXPECT_EQ(res.status, ZAP_TXN_READ_CONFLICT);
	EXPECT_EQ(res.oid, 9u);
	EXPECT_EQ(res.serial, t2);
	EXPECT_EQ(res.base_serial, t1);
	EXPECT_EQ(r.Stats().read_conflicts, 1u);
	EXPECT_EQ(r.Stats().locks, 0u);
}

TEST(Txn, ReadCurrentPassesAndLocks)
{
	Replica r;
	uint64_t t1 = Put(r, 9, "a");
	EXPECT_EQ(r.One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{4, 0, "n"}}, {{9, t1}}))).status,
		  ZAP_TXN_OK);
	EXPECT_EQ(r.Stats().locks, 2u);
	// a writer of 9 now waits
	EXPECT_EQ(r.One(Prepare(Hdr{2, 1, kT0, 1}, T(8, {{9, t1, "b"}}))).status, ZAP_TXN_WAITING);
}

TEST(Txn, PrepareMeetsLockWaitsThenConflicts)
{
	Replica r;
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{1, 0, "a"}}))).status, ZAP_TXN_OK);
	zap_txn_result w = r.One(Prepare(Hdr{2, 1, kT0, 1}, T(8, {{1, 0, "b"}})));
	EXPECT_EQ(w.status, ZAP_TXN_WAITING);
	EXPECT_EQ(r.Stats().waiting, 1u);
	ASSERT_EQ(r.Apply(Commit(Hdr{1, 2, kT0, 1}, 7)), 0);
	ASSERT_EQ(r.out.size(), 2u);
	EXPECT_EQ(r.out[0].r.status, ZAP_TXN_OK); // the commit first
	EXPECT_EQ(r.out[0].r.client_id, 1u);
	const zap_txn_result &c = r.out[1].r; // then the waiter
	EXPECT_EQ(c.client_id, 2u);
	EXPECT_EQ(c.seq, 1u);
	EXPECT_EQ(c.txn_id, 8u);
	EXPECT_EQ(c.entry_type, ZAP_ENTRY_PREPARE);
	EXPECT_EQ(c.status, ZAP_TXN_CONFLICT);
	EXPECT_EQ(c.oid, 1u);
	EXPECT_EQ(c.serial, r.out[0].r.tid);
	EXPECT_EQ(c.base_serial, 0u);
	EXPECT_EQ(r.Stats().waiting, 0u);
	EXPECT_EQ(r.Stats().prepared, 0u);
}

TEST(Txn, PrepareMeetsLockWaitsThenPasses)
{
	Replica r;
	uint64_t t1 = Put(r, 2, "two");
	// A writes 1 and reads 2 (locks both); B writes 2 from its current serial
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{1, 0, "a"}}, {{2, t1}}))).status,
		  ZAP_TXN_OK);
	ASSERT_EQ(r.One(Prepare(Hdr{2, 1, kT0, 1}, T(8, {{2, t1, "b"}}))).status, ZAP_TXN_WAITING);
	ASSERT_EQ(r.Apply(Commit(Hdr{1, 2, kT0, 1}, 7)), 0);
	ASSERT_EQ(r.out.size(), 2u);
	EXPECT_EQ(r.out[1].r.status, ZAP_TXN_OK);
	EXPECT_EQ(r.out[1].r.txn_id, 8u);
	EXPECT_EQ(r.Stats().prepared, 1u);
	EXPECT_EQ(r.Stats().locks, 1u);
	zap_txn_result c = r.One(Commit(Hdr{2, 2, kT0, 1}, 8));
	EXPECT_EQ(c.status, ZAP_TXN_OK);
	EXPECT_EQ(r.Serial(2), c.tid);
}

TEST(Txn, LocksAreCheckedBeforeSerials)
{
	Replica r;
	uint64_t t1 = Put(r, 1, "a");
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{1, t1, "b"}}))).status, ZAP_TXN_OK);
	// stale base on a locked oid: waits (as a ZEO vote waits for the lock), no conflict yet
	EXPECT_EQ(r.One(Prepare(Hdr{2, 1, kT0, 1}, T(8, {{1, 12345, "c"}}))).status,
		  ZAP_TXN_WAITING);
}

TEST(Txn, WaitersAreServedInFifoOrder)
{
	Replica r;
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{1, 0, "a"}}))).status, ZAP_TXN_OK);
	ASSERT_EQ(r.One(Prepare(Hdr{2, 1, kT0, 1}, T(8, {{1, 0, "b"}}))).status, ZAP_TXN_WAITING);
	ASSERT_EQ(r.One(Prepare(Hdr{3, 1, kT0, 1}, T(9, {{1, 0, "c"}}))).status, ZAP_TXN_WAITING);
	ASSERT_EQ(r.Apply(Abort(Hdr{1, 2, kT0, 1}, 7)), 0);
	ASSERT_EQ(r.out.size(), 2u);
	EXPECT_EQ(r.out[0].r.status, ZAP_TXN_ABORTED);
	EXPECT_EQ(r.out[1].r.txn_id, 8u); // the first waiter takes the lock
	EXPECT_EQ(r.out[1].r.status, ZAP_TXN_OK);
	EXPECT_EQ(r.Stats().waiting, 1u); // the second still waits, now on 8
}

TEST(Txn, AbortReleasesLocks)
{
	Replica r;
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{1, 0, "a"}, {2, 0, "b"}}))).status,
		  ZAP_TXN_OK);
	zap_txn_result a = r.One(Abort(Hdr{1, 2, kT0, 1}, 7));
	EXPECT_EQ(a.status, ZAP_TXN_ABORTED);
	EXPECT_EQ(a.entry_type, ZAP_ENTRY_ABORT);
	EXPECT_EQ(r.Stats().locks, 0u);
	EXPECT_EQ(r.Stats().aborts, 1u);
	EXPECT_EQ(r.Serial(1), 0u);
	EXPECT_EQ(r.One(Prepare(Hdr{2, 1, kT0, 1}, T(8, {{1, 0, "c"}}))).status, ZAP_TXN_OK);
}

TEST(Txn, AbortOfWaiterDropsItAndAnswersItsVote)
{
	Replica r;
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{1, 0, "a"}}))).status, ZAP_TXN_OK);
	ASSERT_EQ(r.One(Prepare(Hdr{2, 1, kT0, 1}, T(8, {{1, 0, "b"}}))).status, ZAP_TXN_WAITING);
	ASSERT_EQ(r.Apply(Abort(Hdr{2, 2, kT0, 1}, 8)), 0);
	ASSERT_EQ(r.out.size(), 2u);
	EXPECT_EQ(r.out[0].r.seq, 1u); // the vote's answer
	EXPECT_EQ(r.out[0].r.status, ZAP_TXN_ABORTED);
	EXPECT_EQ(r.out[1].r.seq, 2u); // the abort's
	EXPECT_EQ(r.out[1].r.status, ZAP_TXN_ABORTED);
	EXPECT_EQ(r.Stats().waiting, 0u);
	// the holder commits without releasing anyone
	ASSERT_EQ(r.Apply(Commit(Hdr{1, 2, kT0, 1}, 7)), 0);
	EXPECT_EQ(r.out.size(), 1u);
}

TEST(Txn, AbortOfUnknownTxnIsHarmless)
{
	Replica r;
	uint64_t before = r.StoreDigest();
	EXPECT_EQ(r.One(Abort(Hdr{1, 1, kT0, 1}, 42)).status, ZAP_TXN_UNKNOWN_TXN);
	EXPECT_EQ(r.StoreDigest(), before);
}

TEST(Txn, CommitOfUnknownTxnIsUnknown)
{
	Replica r;
	EXPECT_EQ(r.One(Commit(Hdr{1, 1, kT0, 1}, 42)).status, ZAP_TXN_UNKNOWN_TXN);
	EXPECT_EQ(r.Stats().unknown_txn, 1u);
}

TEST(Txn, CommitOfAnotherClientsTxnIsUnknown)
{
	Replica r;
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{1, 0, "a"}}))).status, ZAP_TXN_OK);
	EXPECT_EQ(r.One(Commit(Hdr{2, 1, kT0, 1}, 7)).status, ZAP_TXN_UNKNOWN_TXN);
	EXPECT_EQ(r.Stats().prepared, 1u);
}

TEST(Txn, CommitOfWaitingTxnIsNotPrepared)
{
	Replica r;
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{1, 0, "a"}}))).status, ZAP_TXN_OK);
	ASSERT_EQ(r.One(Prepare(Hdr{2, 1, kT0, 1}, T(8, {{1, 0, "b"}}))).status, ZAP_TXN_WAITING);
	EXPECT_EQ(r.One(Commit(Hdr{2, 2, kT0, 1}, 8)).status, ZAP_TXN_NOT_PREPARED);
	EXPECT_EQ(r.Stats().waiting, 1u);
}

TEST(Txn, DuplicateTxnIdIsRefused)
{
	Replica r;
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{1, 0, "a"}}))).status, ZAP_TXN_OK);
	EXPECT_EQ(r.One(Prepare(Hdr{2, 1, kT0, 1}, T(7, {{2, 0, "b"}}))).status,
		  ZAP_TXN_DUPLICATE_TXN);
	EXPECT_EQ(r.Stats().prepared, 1u);
}

TEST(Txn, FullTableIsBusy)
{
	zap_txn_params p = Replica::Params();
	p.max_prepared = 2;
	Replica r(p);
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0, 1}, T(1, {{1, 0, "a"}}))).status, ZAP_TXN_OK);
	ASSERT_EQ(r.One(Prepare(Hdr{2, 1, kT0, 1}, T(2, {{1, 0, "a"}}))).status, ZAP_TXN_WAITING);
	EXPECT_EQ(r.One(Prepare(Hdr{3, 1, kT0, 1}, T(3, {{3, 0, "c"}}))).status, ZAP_TXN_BUSY);
	EXPECT_EQ(r.Stats().busy, 1u);
}

TEST(Txn, OneshotWaitsThenCommitsWithReleasingEntryClock)
{
	Replica r;
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{1, 0, "a"}}))).status, ZAP_TXN_OK);
	ASSERT_EQ(
	    r.One(Oneshot(Hdr{2, 1, kT0 + 100 * kSec, 1}, T(8, {{2, 0, "b"}}, {{1, 0}}))).status,
	    ZAP_TXN_WAITING);
	ASSERT_EQ(r.Apply(Abort(Hdr{1, 2, kT0 + 5 * kSec, 1}, 7)), 0);
	ASSERT_EQ(r.out.size(), 2u);
	const zap_txn_result &o = r.out[1].r;
	EXPECT_EQ(o.status, ZAP_TXN_OK);
	EXPECT_EQ(o.entry_type, ZAP_ENTRY_ONESHOT);
	EXPECT_EQ(o.seq, 1u);
	EXPECT_EQ(o.tid, zap_tid_from_unix_ns(kT0 + 5 * kSec));
	EXPECT_EQ(r.out[1].oids, (std::vector<uint64_t>{2}));
	EXPECT_EQ(r.Serial(2), o.tid);
	EXPECT_EQ(r.Stats().locks, 0u);
}

TEST(Txn, LeaseExpiryAbortsPreparedTxn)
{
	Replica r; // lease 10 s
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0, 2}, T(7, {{1, 0, "a"}}))).status, ZAP_TXN_OK);
	ASSERT_EQ(r.Apply(LeaseExpire(kT0 + 10 * kSec - 1, ZAP_ENTRY_NODE_NONE)), 0);
	EXPECT_TRUE(r.out.empty());
	EXPECT_EQ(r.Stats().prepared, 1u);
	ASSERT_EQ(r.Apply(LeaseExpire(kT0 + 10 * kSec, ZAP_ENTRY_NODE_NONE)), 0);
	ASSERT_EQ(r.out.size(), 1u);
	EXPECT_EQ(r.out[0].r.status, ZAP_TXN_EXPIRED);
	EXPECT_EQ(r.out[0].r.client_id, 1u);
	EXPECT_EQ(r.out[0].r.txn_id, 7u);
	EXPECT_EQ(r.Stats().prepared, 0u);
	EXPECT_EQ(r.Stats().locks, 0u);
	EXPECT_EQ(r.Stats().expiries, 1u);
	EXPECT_EQ(r.One(Commit(Hdr{1, 2, kT0, 1}, 7)).status, ZAP_TXN_UNKNOWN_TXN);
}

TEST(Txn, NodeLeftExpiresItsTransactions)
{
	Replica r;
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0, 2}, T(7, {{1, 0, "a"}}))).status, ZAP_TXN_OK);
	ASSERT_EQ(r.One(Prepare(Hdr{2, 1, kT0, 3}, T(8, {{2, 0, "b"}}))).status, ZAP_TXN_OK);
	ASSERT_EQ(r.Apply(LeaseExpire(kT0, 2)), 0);
	ASSERT_EQ(r.out.size(), 1u);
	EXPECT_EQ(r.out[0].r.txn_id, 7u);
	EXPECT_EQ(r.out[0].r.status, ZAP_TXN_EXPIRED);
	EXPECT_EQ(r.Stats().prepared, 1u);
	EXPECT_EQ(r.One(Commit(Hdr{2, 2, kT0, 3}, 8)).status, ZAP_TXN_OK);
}

TEST(Txn, LeaseExpiryExpiresWaitersAndReleasesOthers)
{
	Replica r;
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{1, 0, "a"}}))).status, ZAP_TXN_OK);
	ASSERT_EQ(r.One(Prepare(Hdr{2, 1, kT0, 1}, T(8, {{1, 0, "b"}}))).status, ZAP_TXN_WAITING);
	ASSERT_EQ(r.One(Prepare(Hdr{3, 1, kT0 + 5 * kSec, 1}, T(9, {{1, 0, "c"}}))).status,
		  ZAP_TXN_WAITING);
	ASSERT_EQ(r.Apply(LeaseExpire(kT0 + 12 * kSec, ZAP_ENTRY_NODE_NONE)), 0);
	// 7 (holder) and 8 (waiter) expired; 9 is younger, takes the lock
	ASSERT_EQ(r.out.size(), 3u);
	EXPECT_EQ(r.out[0].r.txn_id, 7u);
	EXPECT_EQ(r.out[0].r.status, ZAP_TXN_EXPIRED);
	EXPECT_EQ(r.out[1].r.txn_id, 8u);
	EXPECT_EQ(r.out[1].r.status, ZAP_TXN_EXPIRED);
	EXPECT_EQ(r.out[2].r.txn_id, 9u);
	EXPECT_EQ(r.out[2].r.status, ZAP_TXN_OK);
	EXPECT_EQ(r.Stats().prepared, 1u);
	EXPECT_EQ(r.Stats().waiting, 0u);
}

TEST(Txn, OidBlocksAreUniqueAndIncreasing)
{
	Replica r;
	uint64_t next = 1;
	for (uint32_t i = 1; i <= 50; i++) {
		zap_txn_result res = r.One(OidReserve(Hdr{i % 3 + 1, i, kT0, 1}, i * 7));
		ASSERT_EQ(res.status, ZAP_TXN_OK);
		EXPECT_EQ(res.first_oid, next);
		EXPECT_EQ(res.oid_count, i * 7);
		next += i * 7;
	}
	EXPECT_EQ(zap_txn_sm_next_oid(r.sm), next);
}

TEST(Txn, FirstOidIsConfigurable)
{
	zap_txn_params p = Replica::Params();
	p.first_oid = 1000;
	Replica r(p);
	EXPECT_EQ(r.One(OidReserve(Hdr{1, 1, kT0, 1}, 10)).first_oid, 1000u);
}

TEST(Txn, SessionReplayReturnsSameResultWithoutReexecuting)
{
	Replica r;
	Bytes e = Oneshot(Hdr{1, 1, kT0, 1}, T(7, {{1, 0, "a"}}));
	zap_txn_result first = r.One(e);
	ASSERT_EQ(first.status, ZAP_TXN_OK);
	uint64_t store = r.StoreDigest();
	zap_txn_result again = r.One(e);
	EXPECT_EQ(again.duplicate, 1);
	EXPECT_EQ(again.status, ZAP_TXN_OK);
	EXPECT_EQ(again.tid, first.tid);
	EXPECT_EQ(again.seq, 1u);
	EXPECT_EQ(again.txn_id, 7u);
	EXPECT_EQ(r.StoreDigest(), store);
	EXPECT_EQ(r.Stats().commits, 1u);
	EXPECT_EQ(r.Stats().duplicates, 1u);
}

TEST(Txn, SessionReplayOfOidReserveReturnsSameBlock)
{
	Replica r;
	Bytes e = OidReserve(Hdr{1, 1, kT0, 1}, 10);
	zap_txn_result first = r.One(e);
	zap_txn_result again = r.One(e);
	EXPECT_EQ(again.duplicate, 1);
	EXPECT_EQ(again.first_oid, first.first_oid);
	EXPECT_EQ(zap_txn_sm_next_oid(r.sm), first.first_oid + 10);
}

TEST(Txn, StaleRequestIsRefused)
{
	Replica r;
	ASSERT_EQ(r.One(OidReserve(Hdr{1, 5, kT0, 1}, 10)).status, ZAP_TXN_OK);
	zap_txn_result s = r.One(Oneshot(Hdr{1, 4, kT0, 1}, T(7, {{1, 0, "a"}})));
	EXPECT_EQ(s.status, ZAP_TXN_STALE_REQUEST);
	EXPECT_EQ(s.seq, 4u);
	EXPECT_EQ(s.txn_id, 7u);
	EXPECT_EQ(r.Serial(1), 0u);
	EXPECT_EQ(r.Stats().stale, 1u);
}

TEST(Txn, WaitingResultIsReplayedThenUpdatedWhenResolved)
{
	Replica r;
	ASSERT_EQ(r.One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{1, 0, "a"}}))).status, ZAP_TXN_OK);
	Bytes w = Prepare(Hdr{2, 1, kT0, 1}, T(8, {{1, 0, "b"}}));
	ASSERT_EQ(r.One(w).status, ZAP_TXN_WAITING);
	zap_txn_result d = r.One(w);
	EXPECT_EQ(d.duplicate, 1);
	EXPECT_EQ(d.status, ZAP_TXN_WAITING);
	EXPECT_EQ(r.Stats().waiting, 1u);
	ASSERT_EQ(r.Apply(Abort(Hdr{1, 2, kT0, 1}, 7)), 0);
	d = r.One(w);
	EXPECT_EQ(d.duplicate, 1);
	EXPECT_EQ(d.status, ZAP_TXN_OK);
	EXPECT_EQ(d.txn_id, 8u);
}

TEST(Txn, SessionTableEvictsLeastRecentlyApplied)
{
	zap_txn_params p = Replica::Params();
	p.max_sessions = 2;
	Replica r(p);
	Bytes a = OidReserve(Hdr{1, 1, kT0, 1}, 1);
	ASSERT_EQ(r.One(a).status, ZAP_TXN_OK);
	ASSERT_EQ(r.One(OidReserve(Hdr{2, 1, kT0, 1}, 1)).status, ZAP_TXN_OK);
	ASSERT_EQ(r.One(a).duplicate, 1); // client 1 is now the most recent
	ASSERT_EQ(r.One(OidReserve(Hdr{3, 1, kT0, 1}, 1)).status, ZAP_TXN_OK); // evicts 2
	EXPECT_EQ(r.Stats().sessions, 2u);
	EXPECT_EQ(r.Stats().sessions_evicted, 1u);
	EXPECT_EQ(r.One(a).duplicate, 1);
	zap_txn_result again = r.One(OidReserve(Hdr{2, 1, kT0, 1}, 1));
	EXPECT_EQ(again.duplicate, 0); // client 2 was forgotten: executed again
}

TEST(Txn, InternalEntriesHaveNoSession)
{
	Replica r;
	ASSERT_EQ(r.One(OidReserve(Hdr{0, 0, kT0, 1}, 4)).first_oid, 1u);
	ASSERT_EQ(r.One(OidReserve(Hdr{0, 0, kT0, 1}, 4)).first_oid, 5u); // not a replay
	ASSERT_EQ(r.Apply(Nop()), 0);
	EXPECT_TRUE(r.out.empty());
	EXPECT_EQ(r.Stats().sessions, 0u);
}

TEST(Txn, TidsStrictlyIncreaseWhenClockGoesBackwards)
{
	Replica r;
	uint64_t clocks[] = {kT0, kT0 - 3600 * kSec, kT0, kT0 + 1, 0, kT0 + kSec, kT0 - 1};
	uint64_t last = 0;
	uint32_t seq = 0;
	for (uint64_t c : clocks) {
		seq++;
		zap_txn_result res = r.One(Oneshot(Hdr{1, seq, c, 1}, T(seq, {{seq, 0, "x"}})));
		ASSERT_EQ(res.status, ZAP_TXN_OK);
		EXPECT_GT(res.tid, last);
		last = res.tid;
	}
	EXPECT_EQ(zap_txn_sm_last_tid(r.sm), last);
	EXPECT_EQ(zap_store_last_tid(r.store), last);
}

TEST(Txn, DeletionCommits)
{
	Replica r;
	uint64_t t1 = Put(r, 4, "a");
	zap_txn_result res = r.One(Oneshot(Hdr{1, 1, kT0 + kSec, 1}, T(7, {{4, t1, "", true}})));
	ASSERT_EQ(res.status, ZAP_TXN_OK);
	EXPECT_EQ(r.Serial(4), res.tid);
}

TEST(Txn, TransactionWithoutStoresGetsATid)
{
	Replica r;
	uint64_t t1 = Put(r, 4, "a");
	uint64_t store = r.StoreDigest();
	zap_txn_result res = r.One(Oneshot(Hdr{1, 1, kT0, 1}, T(7, {}, {{4, t1}})));
	ASSERT_EQ(res.status, ZAP_TXN_OK);
	EXPECT_GT(res.tid, t1);
	EXPECT_EQ(res.n_oids, 0u);
	EXPECT_EQ(r.StoreDigest(), store);
}

TEST(Txn, StoreFullAbortsAndReleasesLocks)
{
	zap_txn_params p = Replica::Params();
	p.max_record_bytes = 1u << 20;
	Replica r(p, 4ull << 20);
	std::string big(1u << 20, 'z');
	uint32_t seq = 0;
	zap_txn_result res;
	do {
		++seq;
		res = r.One(Oneshot(Hdr{1, seq, kT0 + seq, 1}, T(seq, {{seq, 0, big}})));
	} while (res.status == ZAP_TXN_OK && seq < 64);
	ASSERT_EQ(res.status, ZAP_TXN_STORE_FULL);
	EXPECT_EQ(res.store_errno, -ENOSPC);
	EXPECT_EQ(r.Stats().locks, 0u);
	EXPECT_EQ(r.Stats().prepared, 0u);
	EXPECT_EQ(r.Stats().store_failures, 1u);
	// a small commit still works afterwards, with a later tid
	uint64_t last = zap_txn_sm_last_tid(r.sm);
	res = r.One(Oneshot(Hdr{1, seq + 1, kT0, 1}, T(1000, {{1000, 0, "s"}})));
	EXPECT_EQ(res.status, ZAP_TXN_OK);
	EXPECT_GT(res.tid, last);
}

TEST(Txn, AppliedIndexMustIncrease)
{
	Replica r;
	Bytes n = Nop();
	EXPECT_EQ(zap_txn_sm_apply(r.sm, 5, n.data(), n.size(), nullptr, nullptr), 0);
	EXPECT_EQ(zap_txn_sm_applied_index(r.sm), 5u);
	EXPECT_EQ(zap_txn_sm_apply(r.sm, 5, n.data(), n.size(), nullptr, nullptr), -EALREADY);
	EXPECT_EQ(zap_txn_sm_apply(r.sm, 3, n.data(), n.size(), nullptr, nullptr), -EALREADY);
	EXPECT_EQ(zap_txn_sm_apply(r.sm, 9, n.data(), n.size(), nullptr, nullptr), 0);
	EXPECT_EQ(zap_txn_sm_applied_index(r.sm), 9u);
}

// Build the same history on two replicas, feed @p bad to one and a NOP to the
// other at the same index: everything but nothing must differ.
void ExpectRejectedAsNop(const Bytes &bad, int want_rc)
{
	Replica a, b;
	for (Replica *r : {&a, &b}) {
		Put(*r, 1, "one");
		ASSERT_EQ(r->One(Prepare(Hdr{1, 1, kT0, 1}, T(7, {{2, 0, "a"}}))).status,
			  ZAP_TXN_OK);
		ASSERT_EQ(r->One(Prepare(Hdr{2, 1, kT0, 1}, T(8, {{2, 0, "b"}}))).status,
			  ZAP_TXN_WAITING);
	}
	uint64_t sm_before = a.Digest(), store_before = a.StoreDigest();
	zap_txn_stats st_before = a.Stats();
	ASSERT_EQ(a.Apply(bad), want_rc);
	EXPECT_TRUE(a.out.empty());
	ASSERT_EQ(b.Apply(Nop()), 0);
	EXPECT_EQ(a.Digest(), b.Digest());
	EXPECT_NE(a.Digest(), sm_before); // only the applied index moved
	EXPECT_EQ(a.StoreDigest(), store_before);
	EXPECT_EQ(zap_txn_sm_applied_index(a.sm), a.index);
	zap_txn_stats st = a.Stats();
	EXPECT_EQ(st.rejected, st_before.rejected + 1);
	EXPECT_EQ(st.prepared, st_before.prepared);
	EXPECT_EQ(st.waiting, st_before.waiting);
	EXPECT_EQ(st.locks, st_before.locks);
}

TEST(Txn, TruncatedEntryIsRejectedAndChangesNothing)
{
	Bytes e = Oneshot(Hdr{3, 1, kT0, 1}, T(9, {{5, 0, "abc"}, {6, 0, "de"}}, {{1, 0}}));
	for (size_t n = 0; n < e.size(); n++) {
		SCOPED_TRACE(n);
		ExpectRejectedAsNop(Bytes(e.begin(), e.begin() + (long)n), -EBADMSG);
	}
}

TEST(Txn, UnknownTypeIsRejectedAndChangesNothing)
{
	Bytes e = Commit(Hdr{1, 2, kT0, 1}, 7);
	e[1] = 42;
	ExpectRejectedAsNop(e, -ENOTSUP);
}

TEST(Txn, OversizedRecordIsRejectedAndChangesNothing)
{
	ExpectRejectedAsNop(
	    Oneshot(Hdr{3, 1, kT0, 1}, T(9, {{5, 0, std::string((4u << 20) + 1, 'o')}})),
	    -EMSGSIZE);
}

TEST(Txn, TrailingBytesAreRejectedAndChangeNothing)
{
	Bytes e = Commit(Hdr{1, 2, kT0, 1}, 7);
	e.push_back(0);
	ExpectRejectedAsNop(e, -EBADMSG);
}

TEST(Txn, DuplicateOidIsRejectedAndChangesNothing)
{
	ExpectRejectedAsNop(Oneshot(Hdr{3, 1, kT0, 1}, T(9, {{5, 0, "a"}, {5, 0, "b"}})), -EINVAL);
}

// Three revisions of oid 5 at t1 < t2 < t3.
struct ThreeRevisions {
	uint64_t t1, t2, t3;
};

ThreeRevisions PutThree(Replica &r)
{
	ThreeRevisions v;
	v.t1 = Put(r, 5, "one", kT0);
	v.t2 = Put(r, 5, "two", kT0 + kSec);
	v.t3 = Put(r, 5, "three", kT0 + 2 * kSec);
	return v;
}

// What a reader finds: load_serial of each tid, and loadBefore(t2).
struct Seen {
	int s1, s2, s3, before_t2;
	std::string current;
};

Seen Look(Replica &r, const ThreeRevisions &v)
{
	Seen s;
	zap_store_reader *rd;
	EXPECT_EQ(zap_store_reader_open(r.store, &rd), 0);
	zap_store_read_begin(rd);
	zap_store_rev rev;
	s.s1 = zap_store_load_serial(rd, 5, v.t1, &rev);
	s.s2 = zap_store_load_serial(rd, 5, v.t2, &rev);
	s.s3 = zap_store_load_serial(rd, 5, v.t3, &rev);
	s.before_t2 = zap_store_load_before(rd, 5, v.t2, &rev);
	EXPECT_EQ(zap_store_load(rd, 5, &rev), 0);
	s.current = std::string((const char *)rev.data, rev.len);
	zap_store_read_end(rd);
	zap_store_reader_close(rd);
	return s;
}

TEST(Txn, PackDropsRevisionsOlderThanTheOneCurrentAtPackTid)
{
	Replica r;
	ThreeRevisions v = PutThree(r);
	Seen before = Look(r, v);
	EXPECT_EQ(before.s1, 0);
	EXPECT_EQ(before.before_t2, 0);

	zap_txn_result res = r.One(Pack(Hdr{4, 1, kT0 + 3 * kSec, 1}, v.t2));
	EXPECT_EQ(res.status, ZAP_TXN_OK);
	EXPECT_EQ(res.entry_type, ZAP_ENTRY_PACK);
	EXPECT_EQ(res.client_id, 4u);
	EXPECT_EQ(res.seq, 1u);
	EXPECT_EQ(res.tid, v.t2); // the effective pack tid
	EXPECT_EQ(r.Stats().packs, 1u);

	Seen after = Look(r, v);
	EXPECT_EQ(after.s1, -ENOENT);	     // older than the one current at t2: gone
	EXPECT_EQ(after.before_t2, -ENOENT); // loadBefore(t2) was revision t1
	EXPECT_EQ(after.s2, 0);
	EXPECT_EQ(after.s3, 0);
	EXPECT_EQ(after.current, "three");
	struct zap_store_stats st;
	zap_store_stats(r.store, &st);
	EXPECT_EQ(st.pack_tid, v.t2);
	// the tid rule is unaffected: the next commit is later than t3
	EXPECT_GT(Put(r, 5, "four", kT0), v.t3);
}

TEST(Txn, PackBetweenRevisionsKeepsTheOneCurrentThen)
{
	Replica r;
	ThreeRevisions v = PutThree(r);
	zap_txn_result res = r.One(Pack(Hdr{4, 1, kT0, 1}, v.t2 - 1));
	ASSERT_EQ(res.status, ZAP_TXN_OK);
	EXPECT_EQ(res.tid, v.t2 - 1);
	Seen s = Look(r, v);
	EXPECT_EQ(s.s1, 0); // still current at t2 - 1
	EXPECT_EQ(s.s2, 0);
	EXPECT_EQ(s.s3, 0);
}

TEST(Txn, PackTidIsCappedAtTheLastTid)
{
	Replica r;
	ThreeRevisions v = PutThree(r);
	// a transaction without stores advances only the state machine's last tid
	zap_txn_result ro = r.One(Oneshot(Hdr{3, 1, kT0 + 9 * kSec, 1}, T(50, {}, {{5, v.t3}})));
	ASSERT_EQ(ro.status, ZAP_TXN_OK);
	ASSERT_GT(zap_txn_sm_last_tid(r.sm), v.t3);
	zap_txn_result res = r.One(Pack(Hdr{0, 0, kT0, 1}, UINT64_MAX)); // no session
	EXPECT_EQ(res.status, ZAP_TXN_OK);
	EXPECT_EQ(res.client_id, 0u);
	EXPECT_EQ(res.tid, v.t3);
	Seen s = Look(r, v);
	EXPECT_EQ(s.s1, -ENOENT);
	EXPECT_EQ(s.s2, -ENOENT);
	EXPECT_EQ(s.s3, 0);
	EXPECT_EQ(s.current, "three");
}

TEST(Txn, PackOfDeletedObjectDropsIt)
{
	Replica r;
	uint64_t t1 = Put(r, 6, "six", kT0);
	zap_txn_result d = r.One(Oneshot(Hdr{3, 1, kT0 + kSec, 1}, T(60, {{6, t1, "", true}})));
	ASSERT_EQ(d.status, ZAP_TXN_OK);
	ASSERT_EQ(r.One(Pack(Hdr{4, 1, kT0, 1}, d.tid)).status, ZAP_TXN_OK);
	zap_store_reader *rd;
	ASSERT_EQ(zap_store_reader_open(r.store, &rd), 0);
	zap_store_read_begin(rd);
	zap_store_rev rev;
	EXPECT_EQ(zap_store_load(rd, 6, &rev), -ENOENT);
	EXPECT_EQ(zap_store_load_serial(rd, 6, t1, &rev), -ENOENT);
	zap_store_read_end(rd);
	zap_store_reader_close(rd);
	EXPECT_EQ(r.Serial(6), 0u);
}

TEST(Txn, PackResentIsAnsweredFromTheSession)
{
	Replica r;
	ThreeRevisions v = PutThree(r);
	Bytes p = Pack(Hdr{4, 1, kT0, 1}, v.t2);
	ASSERT_EQ(r.One(p).status, ZAP_TXN_OK);
	zap_txn_result dup = r.One(p);
	EXPECT_EQ(dup.status, ZAP_TXN_OK);
	EXPECT_EQ(dup.duplicate, 1);
	EXPECT_EQ(dup.tid, v.t2);
	EXPECT_EQ(r.Stats().packs, 1u);
	EXPECT_EQ(r.One(Pack(Hdr{4, 0, kT0, 1}, v.t3)).status, ZAP_TXN_STALE_REQUEST);
	EXPECT_EQ(r.Stats().packs, 1u);
	EXPECT_EQ(Look(r, v).s2, 0);
}

TEST(Txn, PackOfEmptyStoreIsHarmless)
{
	Replica r;
	zap_txn_result res = r.One(Pack(Hdr{4, 1, kT0, 1}, 12345));
	EXPECT_EQ(res.status, ZAP_TXN_OK);
	EXPECT_EQ(res.tid, 0u);
}

TEST(Txn, PackAppliesIdenticallyOnTwoReplicas)
{
	Replica a, b;
	uint64_t seq = 0;
	// every entry goes to both replicas; base serials come from replica a
	auto both = [&](const Bytes &e) {
		ASSERT_EQ(a.Apply(e), b.Apply(e));
		ASSERT_EQ(a.out.size(), b.out.size());
		for (size_t k = 0; k < a.out.size(); k++) {
			EXPECT_EQ(a.out[k].r.status, b.out[k].r.status);
			EXPECT_EQ(a.out[k].r.tid, b.out[k].r.tid);
			EXPECT_EQ(a.out[k].r.entry_type, b.out[k].r.entry_type);
		}
	};
	uint64_t mid = 0;
	for (uint64_t i = 0; i < 40; i++) {
		uint64_t oid = i % 6;
		both(Oneshot(Hdr{7, ++seq, kT0 + i * kSec, 1},
			     T(100 + i, {{oid, a.Serial(oid), "x" + std::to_string(i)}})));
		if (i == 20)
			mid = a.out[0].r.tid;
	}
	// a prepared transaction holds a lock across the pack
	both(Prepare(Hdr{8, 1, kT0 + 50 * kSec, 1}, T(900, {{2, a.Serial(2), "p"}})));
	ASSERT_EQ(a.out[0].r.status, ZAP_TXN_OK);
	both(Pack(Hdr{9, 1, kT0 + 51 * kSec, 2}, mid));
	EXPECT_EQ(a.out[0].r.tid, mid);
	EXPECT_EQ(a.StoreDigest(), b.StoreDigest());
	EXPECT_EQ(a.Digest(), b.Digest());
	both(Commit(Hdr{8, 2, kT0 + 52 * kSec, 1}, 900));
	ASSERT_EQ(a.out[0].r.status, ZAP_TXN_OK);
	both(Pack(Hdr{9, 2, kT0 + 53 * kSec, 3}, UINT64_MAX));
	both(Oneshot(Hdr{7, ++seq, kT0, 1}, T(901, {{3, a.Serial(3), "after"}})));
	EXPECT_EQ(a.StoreDigest(), b.StoreDigest());
	EXPECT_EQ(a.Digest(), b.Digest());
	struct zap_store_stats sa, sb;
	zap_store_stats(a.store, &sa);
	zap_store_stats(b.store, &sb);
	EXPECT_EQ(sa.revisions, sb.revisions);
	EXPECT_EQ(sa.revisions, 7u); // one per object after the last pack, plus "after"
	EXPECT_EQ(sa.pack_tid, sb.pack_tid);
}

int AppendSink(const void *buf, size_t len, void *ctx)
{
	Bytes *b = static_cast<Bytes *>(ctx);
	b->insert(b->end(), (const uint8_t *)buf, (const uint8_t *)buf + len);
	return 0;
}

TEST(Txn, SnapshotsAfterPackCarryIt)
{
	// A replica made from snapshots taken after a pack has the same digests,
	// the same pack tid, and the packed revision is gone there too.
	Replica a;
	ThreeRevisions v = PutThree(a);
	ASSERT_EQ(a.One(Pack(Hdr{4, 1, kT0, 1}, v.t2)).status, ZAP_TXN_OK);
	Bytes store_snap, sm_snap;
	ASSERT_EQ(zap_store_snapshot_write(a.store, AppendSink, &store_snap), 0);
	ASSERT_EQ(zap_txn_sm_snapshot_write(a.sm, AppendSink, &sm_snap), 0);
	Replica b;
	ASSERT_EQ(zap_store_snapshot_load(b.store, store_snap.data(), store_snap.size()), 0);
	ASSERT_EQ(zap_txn_sm_snapshot_load(b.sm, sm_snap.data(), sm_snap.size()), 0);
	b.index = a.index;
	EXPECT_EQ(a.StoreDigest(), b.StoreDigest());
	EXPECT_EQ(a.Digest(), b.Digest());
	struct zap_store_stats sa, sb;
	zap_store_stats(a.store, &sa);
	zap_store_stats(b.store, &sb);
	EXPECT_EQ(sb.pack_tid, v.t2);
	EXPECT_EQ(sb.revisions, sa.revisions);
	Seen s = Look(b, v);
	EXPECT_EQ(s.s1, -ENOENT);
	EXPECT_EQ(s.s2, 0);
	EXPECT_EQ(s.s3, 0);
	// the resent PACK is answered from the loaded session table on both
	Bytes p = Pack(Hdr{4, 1, kT0, 1}, v.t2);
	zap_txn_result ra = a.One(p), rb = b.One(p);
	EXPECT_EQ(rb.duplicate, 1);
	EXPECT_EQ(rb.tid, ra.tid);
	EXPECT_EQ(a.Digest(), b.Digest());
}

TEST(Txn, PackWithTidZeroIsRejectedAndChangesNothing)
{
	ExpectRejectedAsNop(Pack(Hdr{4, 1, kT0, 1}, 0), -EINVAL);
}

TEST(Txn, TruncatedPackIsRejectedAndChangesNothing)
{
	Bytes e = Pack(Hdr{4, 1, kT0, 1}, 0x0331620000000001ull);
	e.pop_back();
	ExpectRejectedAsNop(e, -EBADMSG);
}

} // namespace
