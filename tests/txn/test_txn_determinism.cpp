// SPDX-License-Identifier: Apache-2.0
// Determinism: the same seeded random log applied to two independent state
// machines (each with its own store) gives identical results, digests and
// store images. The workload has conflicting clients, waits, aborts, lease
// expiries, replays, stale requests, clocks that jump back and bad entries.
#include "txn_sm_fixture.h"

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <map>
#include <random>
#include <sstream>

using namespace zaptest;

namespace
{

constexpr uint64_t kSec = 1000000000ull;

std::string Describe(const Res &x)
{
	const zap_txn_result &r = x.r;
	std::ostringstream o;
	o << r.index << ' ' << r.client_id << ' ' << r.seq << ' ' << r.txn_id << ' '
	  << (int)r.entry_type << ' ' << (int)r.duplicate << ' ' << r.status << ' ' << r.store_errno
	  << ' ' << r.tid << ' ' << r.oid << ' ' << r.serial << ' ' << r.base_serial << ' '
	  << r.first_oid << ' ' << r.oid_count << ' ' << r.n_oids << ':';
	for (uint64_t oid : x.oids)
		o << ' ' << oid;
	return o.str();
}

uint64_t SeedFromEnv()
{
	uint64_t seed = std::random_device{}();
	if (const char *s = getenv("ZAP_TEST_SEED"))
		seed = strtoull(s, nullptr, 0);
	printf("seed %llu (set ZAP_TEST_SEED to replay)\n", (unsigned long long)seed);
	return seed;
}

// Generates a random but plausible log, watching replica @p view for serials.
class Workload
{
      public:
	Workload(uint64_t seed, const Replica &view) : rng_(seed), view_(view)
	{
	}

	Bytes Next()
	{
		uint64_t dice = rng_() % 100;
		clock_ += rng_() % (kSec / 2);
		if (rng_() % 50 == 0)
			clock_ -=
			    std::min<uint64_t>(clock_, rng_() % (30 * kSec)); // clock jumps back
		uint64_t c = 1 + rng_() % kClients;
		Bytes b;
		if (dice < 30)
			b = TxnEntry(ZAP_ENTRY_PREPARE, c);
		else if (dice < 45)
			b = TxnEntry(ZAP_ENTRY_ONESHOT, c);
		else if (dice < 65)
			b = Finish(ZAP_ENTRY_COMMIT, c);
		else if (dice < 73)
			b = Finish(ZAP_ENTRY_ABORT, c);
		else if (dice < 77)
			b = OidReserve(Hdr{c, ++seq_[c], clock_, Node()},
				       1 + (uint32_t)(rng_() % 100));
		else if (dice < 81)
			b = LeaseExpire(clock_, rng_() % 3 ? ZAP_ENTRY_NODE_NONE : Node());
		else if (dice < 83)
			b = Nop(clock_);
		else if (dice < 88 && last_.count(c))
			b = last_[c]; // a client's retry: duplicate
		else if (dice < 93 && !history_.empty())
			b = history_[rng_() % history_.size()]; // old entry: stale or duplicate
		else
			b = Garbage(c);
		if (b.size() > 16 && b[8] != 0)
			last_[b[8]] = b; // clients are < 256
		if (history_.size() < 4096)
			history_.push_back(b);
		else
			history_[rng_() % history_.size()] = b;
		return b;
	}

	// Learn which votes passed, from the results of the watched replica.
	void Observe(const std::vector<Res> &out)
	{
		for (const Res &x : out) {
			const zap_txn_result &r = x.r;
			if (r.duplicate || r.entry_type != ZAP_ENTRY_PREPARE)
				continue;
			std::vector<uint64_t> &v = prepared_[r.client_id];
			auto it = std::find(v.begin(), v.end(), r.txn_id);
			if (r.status == ZAP_TXN_OK && it == v.end())
				v.push_back(r.txn_id);
			else if (r.status != ZAP_TXN_OK && r.status != ZAP_TXN_WAITING &&
				 it != v.end())
				v.erase(it);
		}
	}

      private:
	static constexpr uint64_t kClients = 12;
	static constexpr uint64_t kOids = 24;

	uint16_t Node()
	{
		return (uint16_t)(1 + rng_() % 3);
	}

	Bytes TxnEntry(uint8_t type, uint64_t c)
	{
		Txn t;
		t.txn_id = ++txn_;
		t.user = "u" + std::to_string(c);
		t.desc = "t" + std::to_string(t.txn_id);
		std::vector<uint64_t> oids;
		size_t n = 1 + rng_() % 4, nr = rng_() % 3;
		while (oids.size() < n + nr) {
			uint64_t oid = rng_() % kOids;
			if (std::find(oids.begin(), oids.end(), oid) == oids.end())
				oids.push_back(oid);
		}
		for (size_t i = 0; i < n; i++) {
			uint64_t cur = view_.Serial(oids[i]);
			uint64_t base = rng_() % 5 ? cur : (rng_() % 2 ? 0 : cur - 1);
			bool del = cur != 0 && rng_() % 20 == 0;
			std::string data =
			    del ? "" : std::string(rng_() % 300, (char)('a' + rng_() % 26));
			t.stores.push_back({oids[i], del ? cur : base, data, del});
		}
		for (size_t i = n; i < n + nr; i++) {
			uint64_t cur = view_.Serial(oids[i]);
			t.reads.push_back({oids[i], rng_() % 6 ? cur : cur + 1});
		}
		return zaptest::TxnEntry(type, Hdr{c, ++seq_[c], clock_, Node()}, t);
	}

	Bytes Finish(uint8_t type, uint64_t c)
	{
		uint64_t id;
		std::vector<uint64_t> &v = prepared_[c];
		if (!v.empty() && rng_() % 10) {
			size_t i = rng_() % v.size();
			id = v[i];
			v.erase(v.begin() + (long)i);
		} else {
			id = 1 + rng_() % (txn_ + 1); // unknown, or someone else's
		}
		if (type == ZAP_ENTRY_COMMIT)
			return Commit(Hdr{c, ++seq_[c], clock_, Node()}, id);
		return Abort(Hdr{c, ++seq_[c], clock_, Node()}, id);
	}

	Bytes Garbage(uint64_t c)
	{
		Bytes b = TxnEntry(ZAP_ENTRY_PREPARE, c);
		switch (rng_() % 3) {
		case 0:
			b.resize(rng_() % b.size());
			break;
		case 1:
			b[rng_() % b.size()] ^= (uint8_t)(1 + rng_() % 255);
			break;
		default:
			b.push_back((uint8_t)rng_());
			break;
		}
		return b;
	}

	std::mt19937_64 rng_;
	const Replica &view_;
	uint64_t clock_ = 1795597512ull * kSec;
	uint64_t txn_ = 0;
	std::map<uint64_t, uint64_t> seq_;
	std::map<uint64_t, std::vector<uint64_t>> prepared_;
	std::map<uint64_t, Bytes> last_;
	std::vector<Bytes> history_;
};

// Apply entry @p i to both replicas: the same return, the same answers and,
// when @p digests, the same state and store digests.
void ApplyBoth(Replica &a, Replica &b, Workload &w, const Bytes &e, uint64_t seed, int i,
	       bool digests)
{
	int ra = a.Apply(e), rb = b.Apply(e);
	w.Observe(a.out);
	ASSERT_EQ(ra, rb) << "seed " << seed << " entry " << i;
	ASSERT_EQ(a.out.size(), b.out.size()) << "seed " << seed << " entry " << i;
	for (size_t k = 0; k < a.out.size(); k++)
		ASSERT_EQ(Describe(a.out[k]), Describe(b.out[k])) << "seed " << seed << " entry " << i;
	if (digests) {
		ASSERT_EQ(a.Digest(), b.Digest()) << "seed " << seed << " entry " << i;
		ASSERT_EQ(a.StoreDigest(), b.StoreDigest()) << "seed " << seed << " entry " << i;
	}
}

zap_txn_params DeterminismParams()
{
	zap_txn_params p = Replica::Params();
	p.lease_ns = 20 * kSec;
	p.max_sessions = 8; // fewer than the clients: eviction is exercised
	p.max_prepared = 32;
	return p;
}

TEST(TxnDeterminism, TwoReplicasAgreeOnRandomLog)
{
	uint64_t seed = SeedFromEnv();
	Replica a(DeterminismParams()), b(DeterminismParams());
	Workload w(seed, a);
	const int kEntries = 20000;
	for (int i = 0; i < kEntries; i++) {
		Bytes e = w.Next();
		ASSERT_NO_FATAL_FAILURE(ApplyBoth(a, b, w, e, seed, i, i % 500 == 0));
	}
	EXPECT_EQ(a.Digest(), b.Digest());
	EXPECT_EQ(a.StoreDigest(), b.StoreDigest());
	uint64_t ua = 0, ub = 0;
	const void *ia = zap_store_image(a.store, &ua);
	const void *ib = zap_store_image(b.store, &ub);
	ASSERT_EQ(ua, ub);
	EXPECT_EQ(memcmp(ia, ib, ua), 0);

	zap_txn_stats st = a.Stats();
	printf("commits %llu conflicts %llu read_conflicts %llu waits %llu aborts %llu "
	       "expiries %llu duplicates %llu stale %llu rejected %llu busy %llu evicted %llu\n",
	       (unsigned long long)st.commits, (unsigned long long)st.conflicts,
	       (unsigned long long)st.read_conflicts, (unsigned long long)st.waits,
	       (unsigned long long)st.aborts, (unsigned long long)st.expiries,
	       (unsigned long long)st.duplicates, (unsigned long long)st.stale,
	       (unsigned long long)st.rejected, (unsigned long long)st.busy,
	       (unsigned long long)st.sessions_evicted);
	// the workload must really exercise the rules
	EXPECT_GT(st.commits, 500u);
	EXPECT_GT(st.conflicts, 50u);
	EXPECT_GT(st.read_conflicts, 10u);
	EXPECT_GT(st.waits, 50u);
	EXPECT_GT(st.aborts, 10u);
	EXPECT_GT(st.expiries, 10u);
	EXPECT_GT(st.duplicates, 10u);
	EXPECT_GT(st.stale, 10u);
	EXPECT_GT(st.rejected, 10u);
}

TEST(TxnDeterminism, TwoReplicasAgreeWithPacksInTheLog)
{
	// The random log with a PACK every few entries, at a tid that is older
	// than, equal to or beyond the last one, with and without a session
	// (and resent): results, digests and the stores' contents stay equal.
	uint64_t seed = SeedFromEnv();
	std::mt19937_64 rng(seed ^ 0x9ac4ull);
	Replica a(DeterminismParams()), b(DeterminismParams());
	Workload w(seed, a);
	const uint64_t kPacker = 200;
	uint64_t pack_seq = 0, packs = 0;
	Bytes last_pack;
	for (int i = 0; i < 6000; i++) {
		Bytes e = w.Next();
		if (i % 40 == 39) {
			uint64_t last = zap_txn_sm_last_tid(a.sm);
			uint64_t tid = rng() % 4 == 0 ? UINT64_MAX
				       : last > 1     ? 1 + rng() % last
						      : 1;
			bool session = rng() % 2;
			if (session && !last_pack.empty() && rng() % 4 == 0)
				e = last_pack; // a resend: answered from the session
			else
				e = Pack(Hdr{session ? kPacker : 0, session ? ++pack_seq : 0,
					     1795597512ull * kSec, (uint16_t)(1 + rng() % 3)},
					 tid);
			if (session)
				last_pack = e;
			packs++;
		}
		ASSERT_NO_FATAL_FAILURE(ApplyBoth(a, b, w, e, seed, i, i % 40 == 39));
	}
	EXPECT_EQ(a.Digest(), b.Digest());
	EXPECT_EQ(a.StoreDigest(), b.StoreDigest());
	EXPECT_GT(a.Stats().packs, packs / 2);
	struct zap_store_stats sa, sb;
	zap_store_stats(a.store, &sa);
	zap_store_stats(b.store, &sb);
	EXPECT_EQ(sa.pack_tid, sb.pack_tid);
	EXPECT_GT(sa.pack_tid, 0u);
	EXPECT_EQ(sa.revisions, sb.revisions);
	EXPECT_EQ(sa.objects, sb.objects);
}

TEST(TxnDeterminism, ReplayedLogRebuildsSameState)
{
	// A replica that applies the log later (in one go) ends where the first did.
	uint64_t seed = SeedFromEnv();
	Replica a(DeterminismParams());
	Workload w(seed, a);
	std::vector<Bytes> log;
	for (int i = 0; i < 3000; i++) {
		log.push_back(w.Next());
		a.Apply(log.back());
		w.Observe(a.out);
	}
	Replica b(DeterminismParams());
	for (const Bytes &e : log)
		b.Apply(e);
	EXPECT_EQ(a.Digest(), b.Digest());
	EXPECT_EQ(a.StoreDigest(), b.StoreDigest());
}

TEST(TxnDeterminism, TidsStrictlyIncreaseOverRandomLog)
{
	uint64_t seed = SeedFromEnv();
	Replica a(DeterminismParams());
	Workload w(seed, a);
	uint64_t last = 0;
	for (int i = 0; i < 5000; i++) {
		a.Apply(w.Next());
		w.Observe(a.out);
		for (const Res &x : a.out) {
			if (x.r.status == ZAP_TXN_OK && x.r.tid && !x.r.duplicate) {
				ASSERT_GT(x.r.tid, last) << "seed " << seed;
				last = x.r.tid;
			}
		}
	}
}

} // namespace
