// SPDX-License-Identifier: Apache-2.0
// State machine snapshots: a state machine caught mid-way (sessions,
// prepared transactions holding locks, waiting votes), snapshotted with its
// store and loaded into fresh ones, has the same digests and gives the same
// results for the same further entries. Also the conflict-check break flag.
#include <gtest/gtest.h>
#include <sodium.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "txn_test_util.h"
#include "../store/snapshot_util.h"

extern "C" {
#include "store/store.h"
#include "txn/txn.h"
}

using namespace zaptest;

namespace
{

constexpr uint64_t kSec = 1000000000ull;
constexpr uint64_t kClock0 = 1700000000ull * kSec;

zap_txn_params Params(uint32_t break_flags = 0)
{
	zap_txn_params p;
	memset(&p, 0, sizeof(p));
	p.lease_ns = 10 * kSec;
	p.max_sessions = 6; // small: evictions happen
	p.max_prepared = 64;
	p.max_record_bytes = 1u << 20;
	p.break_flags = break_flags;
	return p;
}

struct Node {
	zap_store *store = nullptr;
	zap_txn_sm *sm = nullptr;
	uint64_t index = 0;
	std::vector<std::string> out;

	explicit Node(const zap_txn_params &p = Params())
	{
		zap_store_params sp;
		memset(&sp, 0, sizeof(sp));
		sp.size_bytes = 64ull << 20;
		sp.max_record_bytes = 1u << 20;
		sp.txn_ring_slots = 16;
		EXPECT_EQ(zap_store_create(&sp, &store), 0);
		EXPECT_EQ(zap_txn_sm_create(&p, store, &sm), 0);
	}
	~Node()
	{
		zap_txn_sm_destroy(sm);
		zap_store_close(store);
	}

	static void Emit(const zap_txn_result *r, void *ctx)
	{
		char b[512];
		snprintf(b, sizeof(b),
			 "i%llu c%llu s%llu t%llu e%u d%u %s err%d tid%llu oid%llu ser%llu "
			 "base%llu first%llu n%u noids%u",
			 (unsigned long long)r->index, (unsigned long long)r->client_id,
			 (unsigned long long)r->seq, (unsigned long long)r->txn_id, r->entry_type,
			 r->duplicate, zap_txn_status_name(r->status), r->store_errno,
			 (unsigned long long)r->tid, (unsigned long long)r->oid,
			 (unsigned long long)r->serial, (unsigned long long)r->base_serial,
			 (unsigned long long)r->first_oid, r->oid_count, r->n_oids);
		std::string s = b;
		for (uint32_t i = 0; i < r->n_oids; i++)
			s += " " + std::to_string(r->oids[i]);
		static_cast<Node *>(ctx)->out.push_back(s);
	}

	std::vector<std::string> Apply(const Bytes &e)
	{
		out.clear();
		EXPECT_EQ(zap_txn_sm_apply(sm, ++index, e.data(), e.size(), Emit, this), 0);
		return out;
	}

	// Snapshot store and SM; load both into @p into (fresh).
	void CopyTo(Node &into) const
	{
		snaptest::Bytes ss, ts;
		ASSERT_EQ(zap_store_snapshot_write(store, snaptest::Sink, &ss), 0);
		ASSERT_EQ(zap_txn_sm_snapshot_write(sm, snaptest::Sink, &ts), 0);
		ASSERT_EQ(zap_store_snapshot_load(into.store, ss.data(), ss.size()), 0);
		// the SM was made over an empty store: make it again over the loaded one
		zap_txn_sm_destroy(into.sm);
		into.sm = nullptr;
		ASSERT_EQ(zap_txn_sm_create(&sm_params, into.store, &into.sm), 0);
		ASSERT_EQ(zap_txn_sm_snapshot_load(into.sm, ts.data(), ts.size()), 0);
		into.index = index;
	}
	zap_txn_params sm_params = Params();
};

// A random workload: several clients preparing, committing, aborting,
// oneshots, oid blocks, lease expiry, resent requests.
struct Workload {
	std::mt19937_64 rng;
	uint64_t clock = kClock0;
	uint64_t seq[8] = {0};
	std::vector<uint64_t> open[8]; // txn ids prepared per client
	Bytes last[8];
	uint64_t next_txn = 100;

	explicit Workload(uint64_t seed) : rng(seed)
	{
	}

	Bytes Next(const Node &view)
	{
		clock += (rng() % 4) * kSec / 2;
		uint64_t c = 1 + rng() % 7;
		unsigned op = rng() % 100;
		if (op < 5 && !last[c].empty())
			return last[c]; // resend: a duplicate
		if (op < 8)
			return LeaseExpire(clock, rng() % 3 == 0 ? 2 : ZAP_ENTRY_NODE_NONE);
		Hdr h{c, ++seq[c], clock, (uint16_t)(1 + rng() % 3)};
		Bytes e;
		if (op < 45) {
			Txn t;
			t.txn_id = next_txn++;
			t.user = "c" + std::to_string(c);
			unsigned n = 1 + rng() % 3;
			for (unsigned i = 0; i < n; i++) {
				uint64_t oid = rng() % 12;
				bool dup = false;
				for (auto &s : t.stores)
					dup |= s.oid == oid;
				if (dup)
					continue;
				uint64_t base = zap_store_serial(view.store, oid);
				if (rng() % 8 == 0)
					base = base ? base - 1 : 7; // stale
				t.stores.push_back(
				    {oid, base, std::string(rng() % 100, 'x'), false});
			}
			if (rng() % 3 == 0) {
				uint64_t oid = 20 + rng() % 4;
				t.reads.push_back({oid, zap_store_serial(view.store, oid)});
			}
			if (op < 35) {
				open[c].push_back(t.txn_id);
				e = Prepare(h, t);
			} else {
				e = Oneshot(h, t);
			}
		} else if (op < 75 && !open[c].empty()) {
			size_t k = rng() % open[c].size();
			uint64_t id = open[c][k];
			open[c].erase(open[c].begin() + (long)k);
			e = rng() % 4 == 0 ? Abort(h, id) : Commit(h, id);
		} else if (op < 85) {
			e = OidReserve(h, 1 + rng() % 10);
		} else {
			Txn t;
			t.txn_id = next_txn++;
			uint64_t oid = 20 + rng() % 4;
			t.stores.push_back({oid, zap_store_serial(view.store, oid), "r", false});
			e = Oneshot(h, t);
		}
		last[c] = e;
		return e;
	}
};

} // namespace

TEST(TxnSnapshot, MidWayStateLoadsAndContinuesIdentically)
{
	for (uint64_t seed = 1; seed <= 20; seed++) {
		printf("seed %llu\n", (unsigned long long)seed);
		SCOPED_TRACE("seed " + std::to_string(seed));
		Node a, b;
		Workload w(seed);
		int before = 20 + (int)(seed * 13 % 150);
		for (int i = 0; i < before; i++)
			a.Apply(w.Next(a));
		a.CopyTo(b);
		ASSERT_EQ(zap_txn_sm_digest(a.sm), zap_txn_sm_digest(b.sm));
		ASSERT_EQ(zap_store_digest(a.store), zap_store_digest(b.store));
		zap_txn_stats sa, sb;
		zap_txn_sm_stats(a.sm, &sa);
		zap_txn_sm_stats(b.sm, &sb);
		EXPECT_EQ(sa.sessions, sb.sessions);
		EXPECT_EQ(sa.prepared, sb.prepared);
		EXPECT_EQ(sa.waiting, sb.waiting);
		EXPECT_EQ(sa.locks, sb.locks);
		for (int i = 0; i < 200; i++) {
			Bytes e = w.Next(a);
			ASSERT_EQ(a.Apply(e), b.Apply(e)) << "step " << i;
			ASSERT_EQ(zap_txn_sm_digest(a.sm), zap_txn_sm_digest(b.sm)) << "step " << i;
			ASSERT_EQ(zap_store_digest(a.store), zap_store_digest(b.store))
			    << "step " << i;
		}
	}
}

TEST(TxnSnapshot, WaitersLocksAndSessionsSurviveTheSnapshot)
{
	Node a, b;
	Txn t1{10, "u", "d", "", {{1, 0, "one", false}, {2, 0, "two", false}}, {}};
	Txn t2{20, "u", "d", "", {{2, 0, "x", false}}, {}};
	Txn t3{30, "u", "d", "", {{1, 0, "y", false}}, {{2, 0}}};
	EXPECT_EQ(a.Apply(Prepare(Hdr{1, 1, kClock0, 1}, t1)).size(), 1u);
	auto r = a.Apply(Prepare(Hdr{2, 1, kClock0 + 1, 1}, t2));
	ASSERT_EQ(r.size(), 1u);
	EXPECT_NE(r[0].find("WAITING"), std::string::npos);
	r = a.Apply(Prepare(Hdr{3, 1, kClock0 + 2, 2}, t3));
	EXPECT_NE(r[0].find("WAITING"), std::string::npos);
	a.Apply(OidReserve(Hdr{4, 1, kClock0 + 3, 1}, 5));
	a.CopyTo(b);
	ASSERT_EQ(zap_txn_sm_digest(a.sm), zap_txn_sm_digest(b.sm));
	EXPECT_EQ(zap_txn_sm_next_oid(b.sm), zap_txn_sm_next_oid(a.sm));
	EXPECT_EQ(zap_txn_sm_applied_index(b.sm), 4u);
	// a resent request is answered from the loaded session table
	Bytes resend = OidReserve(Hdr{4, 1, kClock0 + 3, 1}, 5);
	EXPECT_EQ(a.Apply(resend), b.Apply(resend));
	// committing t1 releases both waiters: t2 and t3 now conflict on serials
	Bytes commit = Commit(Hdr{1, 2, kClock0 + 5 * kSec, 1}, 10);
	auto ra = a.Apply(commit);
	EXPECT_EQ(ra, b.Apply(commit));
	EXPECT_EQ(ra.size(), 3u);
	EXPECT_EQ(zap_txn_sm_digest(a.sm), zap_txn_sm_digest(b.sm));
	// abort, lease expiry
	Txn t4{40, "u", "d", "", {{5, 0, "five", false}}, {}};
	Bytes p4 = Prepare(Hdr{5, 1, kClock0 + 6 * kSec, 3}, t4);
	EXPECT_EQ(a.Apply(p4), b.Apply(p4));
	Bytes ex = LeaseExpire(kClock0 + 30 * kSec, ZAP_ENTRY_NODE_NONE);
	ra = a.Apply(ex);
	EXPECT_EQ(ra, b.Apply(ex));
	EXPECT_EQ(ra.size(), 1u);
	Bytes ab = Abort(Hdr{5, 2, kClock0 + 31 * kSec, 3}, 40);
	EXPECT_EQ(a.Apply(ab), b.Apply(ab));
	EXPECT_EQ(zap_txn_sm_digest(a.sm), zap_txn_sm_digest(b.sm));
	EXPECT_EQ(zap_store_digest(a.store), zap_store_digest(b.store));
}

TEST(TxnSnapshot, LoadRefusesAStateMachineThatIsNotFresh)
{
	Node a;
	a.Apply(OidReserve(Hdr{1, 1, kClock0, 1}, 3));
	snaptest::Bytes ts;
	ASSERT_EQ(zap_txn_sm_snapshot_write(a.sm, snaptest::Sink, &ts), 0);
	EXPECT_EQ(zap_txn_sm_snapshot_load(a.sm, ts.data(), ts.size()), -EINVAL);
}

TEST(TxnSnapshot, TruncatedOrCorruptIsRefusedAndLeavesItFresh)
{
	Node a;
	Workload w(99);
	for (int i = 0; i < 80; i++)
		a.Apply(w.Next(a));
	snaptest::Bytes ts;
	ASSERT_EQ(zap_txn_sm_snapshot_write(a.sm, snaptest::Sink, &ts), 0);
	zap_txn_params p = Params();
	zap_txn_sm *fresh = nullptr;
	ASSERT_EQ(zap_txn_sm_create(&p, a.store, &fresh), 0);
	uint64_t d0 = zap_txn_sm_digest(fresh);
	for (size_t n = 0; n < ts.size(); n++) {
		ASSERT_EQ(zap_txn_sm_snapshot_load(fresh, ts.data(), n), -EBADMSG) << "len " << n;
		snaptest::Bytes t(ts.begin(), ts.begin() + n);
		if (n >= 8) {
			snaptest::Reseal(t, snaptest::kTxnSeed);
			ASSERT_NE(zap_txn_sm_snapshot_load(fresh, t.data(), t.size()), 0)
			    << "len " << n;
		}
		ASSERT_EQ(zap_txn_sm_digest(fresh), d0) << "len " << n;
	}
	ASSERT_EQ(zap_txn_sm_snapshot_load(fresh, ts.data(), ts.size()), 0);
	EXPECT_EQ(zap_txn_sm_digest(fresh), zap_txn_sm_digest(a.sm));
	for (uint32_t seed = 1; seed <= 3000; seed++) {
		std::mt19937 rng(seed);
		snaptest::Bytes c = ts;
		int flips = 1 + rng() % 4;
		for (int i = 0; i < flips; i++)
			c[rng() % c.size()] ^= (uint8_t)(1u << (rng() % 8));
		zap_txn_sm *sm = nullptr;
		ASSERT_EQ(zap_txn_sm_create(&p, a.store, &sm), 0);
		uint64_t d_fresh = zap_txn_sm_digest(sm); // the store may have moved on
		ASSERT_EQ(zap_txn_sm_snapshot_load(sm, c.data(), c.size()), -EBADMSG)
		    << "seed " << seed;
		snaptest::Reseal(c, snaptest::kTxnSeed);
		int rc = zap_txn_sm_snapshot_load(sm, c.data(), c.size());
		if (rc != 0) {
			ASSERT_EQ(zap_txn_sm_digest(sm), d_fresh) << "seed " << seed;
		} else {
			zap_txn_sm_digest(sm);
			Bytes e = LeaseExpire(kClock0 + 1000 * kSec, ZAP_ENTRY_NODE_NONE);
			zap_txn_sm_apply(sm, zap_txn_sm_applied_index(sm) + 1, e.data(), e.size(),
					 nullptr, nullptr);
		}
		zap_txn_sm_destroy(sm);
	}
	printf("corruption seeds 1..3000\n");
	zap_txn_sm_destroy(fresh);
}

// Payloads being received (one whole, one half sent, one broken) survive the
// snapshot: both sides then apply the same chunks and LARGE entries alike.
TEST(TxnSnapshot, PayloadsBeingReceivedSurviveTheSnapshot)
{
	Node a, b;
	Txn t = T(5, {{10, 0, std::string(5000, 'p')}});
	Bytes whole = Prepare(Hdr{7, 1, kClock0, 1}, t);
	auto chunk = [&](uint64_t id, uint64_t off, uint64_t len, uint64_t total) {
		zap_entry e = Header(ZAP_ENTRY_PAYLOAD, Hdr{0, 0, kClock0, 1});
		e.u.payload = {id, off, total, whole.data() + off, len};
		return Encode(e);
	};
	auto large = [&](const Hdr &h, uint64_t id) {
		zap_entry e = Header(ZAP_ENTRY_LARGE, h);
		e.u.large.id = id;
		e.u.large.total = whole.size();
		crypto_generichash(e.u.large.hash, ZAP_ENTRY_HASH_BYTES, whole.data(), whole.size(),
				   nullptr, 0);
		return Encode(e);
	};
	a.Apply(chunk(1, 0, whole.size(), whole.size()));
	a.Apply(chunk(2, 0, 2000, whole.size()));
	a.Apply(chunk(3, 0, 100, whole.size()));
	a.Apply(chunk(3, 100, 100, whole.size() + 1)); // another total: broken
	a.CopyTo(b);
	ASSERT_EQ(zap_txn_sm_digest(a.sm), zap_txn_sm_digest(b.sm));
	zap_txn_stats st;
	zap_txn_sm_stats(b.sm, &st);
	EXPECT_EQ(st.payloads, 3u);
	EXPECT_EQ(st.payload_bytes, whole.size() + 2000 + 100);
	std::vector<Bytes> rest = {chunk(2, 2000, whole.size() - 2000, whole.size()),
				   large(Hdr{7, 1, kClock0, 1}, 3), large(Hdr{7, 1, kClock0, 1}, 1),
				   large(Hdr{8, 1, kClock0, 1}, 2)};
	for (const Bytes &e : rest) {
		ASSERT_EQ(a.Apply(e), b.Apply(e));
		ASSERT_EQ(zap_txn_sm_digest(a.sm), zap_txn_sm_digest(b.sm));
	}
	zap_txn_sm_stats(b.sm, &st);
	EXPECT_EQ(st.payloads, 0u);
	EXPECT_EQ(st.large_applied, 1u); // payload 1; 3 broken, 2 of another client
	EXPECT_EQ(st.large_refused, 2u);
	EXPECT_EQ(st.prepared, 1u);
}

// The break flag lets a stale base serial (and a stale readCurrent) commit.
TEST(TxnBreakFlag, ConflictCheckFlagLetsAStaleBaseSerialCommit)
{
	for (int broken = 0; broken <= 1; broken++) {
		SCOPED_TRACE(broken ? "broken" : "correct");
		Node n(Params(broken ? ZAP_TXN_BREAK_CONFLICT_CHECK : 0));
		Txn t1{1, "u", "d", "", {{7, 0, "first", false}, {8, 0, "r", false}}, {}};
		auto r = n.Apply(Oneshot(Hdr{1, 1, kClock0, 1}, t1));
		ASSERT_NE(r[0].find(" OK "), std::string::npos) << r[0];
		uint64_t s7 = zap_store_serial(n.store, 7);
		Txn t2{2, "u", "d", "", {{7, s7, "second", false}}, {}};
		r = n.Apply(Oneshot(Hdr{1, 2, kClock0 + kSec, 1}, t2));
		ASSERT_NE(r[0].find(" OK "), std::string::npos) << r[0];
		// base serial s7 is stale now; a readCurrent of 8 at serial 0 too
		Txn t3{3, "u", "d", "", {{7, s7, "stale", false}}, {}};
		r = n.Apply(Oneshot(Hdr{2, 1, kClock0 + 2 * kSec, 1}, t3));
		if (broken)
			EXPECT_NE(r[0].find(" OK "), std::string::npos) << r[0];
		else
			EXPECT_NE(r[0].find(" CONFLICT "), std::string::npos) << r[0];
		Txn t4{4, "u", "d", "", {{9, 0, "n", false}}, {{8, 0}}};
		r = n.Apply(Prepare(Hdr{3, 1, kClock0 + 3 * kSec, 1}, t4));
		if (broken)
			EXPECT_NE(r[0].find(" OK "), std::string::npos) << r[0];
		else
			EXPECT_NE(r[0].find(" READ_CONFLICT "), std::string::npos) << r[0];
		// locks still apply: a vote on 9 waits behind t4 when it was prepared
		Txn t5{5, "u", "d", "", {{9, 0, "w", false}}, {}};
		r = n.Apply(Prepare(Hdr{4, 1, kClock0 + 4 * kSec, 1}, t5));
		EXPECT_NE(r[0].find(broken ? " WAITING " : " OK "), std::string::npos) << r[0];
	}
}
