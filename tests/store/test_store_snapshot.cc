// SPDX-License-Identifier: Apache-2.0
// Store snapshots: a random store, snapshotted and loaded into an empty
// store, has the same digest and answers every read the same way; a
// truncated or corrupted snapshot is refused and leaves the store empty.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "snapshot_util.h"

extern "C" {
#include "store/store.h"
}

using snaptest::Bytes;

namespace
{

struct Store {
	zap_store *s = nullptr;
	zap_store_reader *r = nullptr;

	explicit Store(uint32_t ring_slots, uint64_t size_bytes = 64ull << 20)
	{
		zap_store_params p;
		memset(&p, 0, sizeof(p));
		p.size_bytes = size_bytes;
		p.max_record_bytes = size_bytes / 4 < (1u << 20) ? size_bytes / 4 : (1u << 20);
		p.txn_ring_slots = ring_slots;
		p.index_initial_slots = 16;
		EXPECT_EQ(zap_store_create(&p, &s), 0);
		EXPECT_EQ(zap_store_reader_open(s, &r), 0);
	}
	~Store()
	{
		zap_store_reader_close(r);
		zap_store_close(s);
	}
	Bytes Snapshot() const
	{
		Bytes b;
		EXPECT_EQ(zap_store_snapshot_write(s, snaptest::Sink, &b), 0);
		return b;
	}
};

struct Built {
	std::vector<uint64_t> tids;
	uint64_t max_oid = 0;
};

// Random commits (new objects, updates, deletions) and packs.
Built BuildRandom(Store &st, uint32_t seed, int n_txns, bool big = true)
{
	std::mt19937_64 rng(seed);
	Built b;
	uint64_t tid = 1000;
	b.max_oid = 40;
	for (int i = 0; i < n_txns; i++) {
		tid += 1 + rng() % 5;
		uint32_t n = 1 + rng() % 4;
		std::map<uint64_t, std::string> w;
		std::vector<zap_store_write> ws;
		std::vector<std::string> keep;
		for (uint32_t k = 0; k < n; k++) {
			uint64_t oid = rng() % b.max_oid;
			size_t len = big && rng() % 8 == 0 ? 40000 + rng() % 60000 : rng() % 200;
			w[oid] = std::string(len, (char)('a' + rng() % 26));
		}
		keep.reserve(w.size());
		for (auto &kv : w) {
			keep.push_back(kv.second);
			zap_store_write x;
			memset(&x, 0, sizeof(x));
			x.oid = kv.first;
			x.deleted = zap_store_serial(st.s, kv.first) != 0 && rng() % 6 == 0;
			x.data = x.deleted ? nullptr : keep.back().data();
			x.len = x.deleted ? 0 : keep.back().size();
			ws.push_back(x);
		}
		std::string user = "u" + std::to_string(i), desc = std::string(rng() % 30, 'd');
		zap_txn_text m = {
		    user.data(), (uint32_t)user.size(), desc.data(), (uint32_t)desc.size(), "x", 1};
		EXPECT_EQ(zap_store_commit(st.s, tid, &m, ws.data(), (uint32_t)ws.size()), 0);
		b.tids.push_back(tid);
		if (rng() % 25 == 0) {
			EXPECT_EQ(zap_store_pack(st.s, b.tids[rng() % b.tids.size()]), 0);
		}
	}
	return b;
}

std::string RevString(int rc, const zap_store_rev &v)
{
	if (rc != 0)
		return "rc" + std::to_string(rc);
	std::string s = std::to_string(v.serial) + "/" + std::to_string(v.next_serial) + "/" +
			std::to_string(v.deleted) + "/" + std::to_string(v.len) + "/";
	if (v.data)
		s += std::to_string(
		    std::hash<std::string>()(std::string((const char *)v.data, v.len)));
	return s;
}

std::string TxnString(const zap_store_txn_info &t)
{
	std::string s = std::to_string(t.tid) + ":";
	for (uint32_t i = 0; i < t.n_oids; i++)
		s += std::to_string(t.oids[i]) + ",";
	s.append((const char *)t.text.user, t.text.user_len);
	s += "|";
	s.append((const char *)t.text.description, t.text.description_len);
	s += "|";
	s.append((const char *)t.text.extension, t.text.extension_len);
	return s;
}

int CollectChange(const zap_store_txn_info *t, void *ctx)
{
	static_cast<std::vector<std::string> *>(ctx)->push_back(TxnString(*t));
	return 0;
}

// Everything a reader can ask, as text.
std::vector<std::string> Reads(Store &st, const Built &b)
{
	std::vector<std::string> out;
	std::vector<uint64_t> probes = {0, 1, UINT64_MAX};
	for (size_t i = 0; i < b.tids.size(); i += 1 + b.tids.size() / 60) {
		probes.push_back(b.tids[i]);
		probes.push_back(b.tids[i] + 1);
	}
	if (!b.tids.empty())
		probes.push_back(b.tids.back());
	zap_store_read_begin(st.r);
	for (uint64_t oid = 0; oid <= b.max_oid; oid++) {
		zap_store_rev v;
		memset(&v, 0, sizeof(v));
		int rc = zap_store_load(st.r, oid, &v);
		out.push_back("load " + RevString(rc, v));
		for (uint64_t t : probes) {
			memset(&v, 0, sizeof(v));
			rc = zap_store_load_before(st.r, oid, t, &v);
			out.push_back("before " + RevString(rc, v));
		}
		std::vector<zap_store_hist> h(64);
		size_t n = 0;
		rc = zap_store_history(st.r, oid, h.data(), h.size(), &n);
		out.push_back("hist rc" + std::to_string(rc));
		for (size_t i = 0; i < n; i++)
			out.push_back(std::to_string(h[i].serial) + "/" + std::to_string(h[i].len) +
				      "/" + std::to_string(h[i].deleted) + "/" +
				      TxnString(h[i].txn));
	}
	for (uint64_t t : probes) {
		std::vector<std::string> ch;
		int rc = zap_store_changes_since(st.r, t, CollectChange, &ch);
		out.push_back("changes rc" + std::to_string(rc));
		out.insert(out.end(), ch.begin(), ch.end());
	}
	zap_store_read_end(st.r);
	return out;
}

// Build, snapshot, load, compare; then continue both the same way.
void RoundTrip(uint32_t seed, uint32_t ring_slots, int n_txns)
{
	SCOPED_TRACE("seed " + std::to_string(seed) + " ring " + std::to_string(ring_slots));
	Store a(ring_slots), b(ring_slots);
	Built built = BuildRandom(a, seed, n_txns);
	Bytes snap = a.Snapshot();
	ASSERT_EQ(zap_store_snapshot_load(b.s, snap.data(), snap.size()), 0);
	EXPECT_EQ(zap_store_digest(a.s), zap_store_digest(b.s));
	EXPECT_EQ(zap_store_last_tid(a.s), zap_store_last_tid(b.s));
	EXPECT_EQ(Reads(a, built), Reads(b, built));
	EXPECT_EQ(b.Snapshot(), snap); // the stream does not depend on the layout
	struct zap_store_stats sa, sb;
	zap_store_stats(a.s, &sa);
	zap_store_stats(b.s, &sb);
	EXPECT_EQ(sa.objects, sb.objects);
	EXPECT_EQ(sa.revisions, sb.revisions);
	EXPECT_EQ(sa.txns_kept, sb.txns_kept);
	EXPECT_EQ(sa.pack_tid, sb.pack_tid);

	// the same further commits and packs: still equal (ring eviction included)
	uint64_t tid = zap_store_last_tid(a.s);
	std::mt19937_64 rng(seed ^ 0x5555);
	for (int i = 0; i < 48; i++) { // wraps the 16-slot ring three times
		tid += 3;
		zap_store_write w = {rng() % 50, "again", 5, 0};
		zap_txn_text m = {"v", 1, "", 0, "", 0};
		ASSERT_EQ(zap_store_commit(a.s, tid, &m, &w, 1), 0);
		ASSERT_EQ(zap_store_commit(b.s, tid, &m, &w, 1), 0);
		built.tids.push_back(tid);
		if (i % 7 == 0) {
			ASSERT_EQ(zap_store_pack(a.s, tid - 5), 0);
			ASSERT_EQ(zap_store_pack(b.s, tid - 5), 0);
		}
		ASSERT_EQ(zap_store_digest(a.s), zap_store_digest(b.s));
	}
	built.max_oid = 50;
	EXPECT_EQ(Reads(a, built), Reads(b, built));
	zap_store_reclaim(a.s);
	zap_store_reclaim(b.s);
}

} // namespace

TEST(StoreSnapshot, EmptyStoreRoundTrips)
{
	Store a(16), b(16);
	Bytes snap = a.Snapshot();
	ASSERT_EQ(zap_store_snapshot_load(b.s, snap.data(), snap.size()), 0);
	EXPECT_EQ(zap_store_digest(a.s), zap_store_digest(b.s));
	EXPECT_EQ(zap_store_last_tid(b.s), 0u);
}

TEST(StoreSnapshot, RandomStoreLoadsWithEqualDigestAndReads)
{
	for (uint32_t seed = 1; seed <= 8; seed++) {
		printf("seed %u\n", seed);
		RoundTrip(seed, seed % 2 ? 16 : 4096, 40 + (int)(seed * 11));
	}
}

TEST(StoreSnapshot, RingThatWrappedKeepsChangesSinceRange)
{
	Store a(8), b(8);
	Built built = BuildRandom(a, 77, 100);
	Bytes snap = a.Snapshot();
	ASSERT_EQ(zap_store_snapshot_load(b.s, snap.data(), snap.size()), 0);
	zap_store_read_begin(b.r);
	std::vector<std::string> ch;
	EXPECT_EQ(zap_store_changes_since(b.r, built.tids[0], CollectChange, &ch), -ERANGE);
	ch.clear();
	EXPECT_EQ(
	    zap_store_changes_since(b.r, built.tids[built.tids.size() - 3], CollectChange, &ch), 0);
	EXPECT_EQ(ch.size(), 2u);
	zap_store_read_end(b.r);
}

TEST(StoreSnapshot, LoadRefusesNonEmptyStoreAndOtherRingSize)
{
	Store a(16), b(16), c(32);
	BuildRandom(a, 5, 10);
	Bytes snap = a.Snapshot();
	EXPECT_EQ(zap_store_snapshot_load(c.s, snap.data(), snap.size()), -EINVAL);
	EXPECT_EQ(zap_store_snapshot_load(a.s, snap.data(), snap.size()), -EINVAL);
	EXPECT_EQ(zap_store_snapshot_load(b.s, snap.data(), snap.size()), 0);
	EXPECT_EQ(zap_store_snapshot_load(b.s, snap.data(), snap.size()), -EINVAL);
}

TEST(StoreSnapshot, TooSmallStoreIsRefusedAndStaysEmpty)
{
	Store a(16), b(16, 1ull << 20);
	BuildRandom(a, 9, 120);
	Store empty(16);
	Bytes snap = a.Snapshot();
	EXPECT_EQ(zap_store_snapshot_load(b.s, snap.data(), snap.size()), -ENOSPC);
	EXPECT_EQ(zap_store_digest(b.s), zap_store_digest(empty.s));
	EXPECT_EQ(zap_store_last_tid(b.s), 0u);
}

TEST(StoreSnapshot, SinkErrorStopsTheWriter)
{
	Store a(16);
	BuildRandom(a, 3, 10);
	auto fail = [](const void *, size_t, void *) -> int { return -EPIPE; };
	EXPECT_EQ(zap_store_snapshot_write(a.s, fail, nullptr), -EPIPE);
}

TEST(StoreSnapshot, TruncatedAtEveryByteIsRefused)
{
	Store a(8), empty(8);
	BuildRandom(a, 21, 30, false);
	Bytes snap = a.Snapshot();
	uint64_t d0 = zap_store_digest(empty.s);
	Store b(8);
	for (size_t n = 0; n < snap.size(); n++) {
		ASSERT_EQ(zap_store_snapshot_load(b.s, snap.data(), n), -EBADMSG) << "len " << n;
		// resealed: the structure checks must catch it too
		Bytes t(snap.begin(), snap.begin() + n);
		if (n >= 8) {
			snaptest::Reseal(t, snaptest::kStoreSeed);
			int rc = zap_store_snapshot_load(b.s, t.data(), t.size());
			ASSERT_NE(rc, 0) << "len " << n;
		}
	}
	EXPECT_EQ(zap_store_digest(b.s), d0);
	ASSERT_EQ(zap_store_snapshot_load(b.s, snap.data(), snap.size()), 0);
	EXPECT_EQ(zap_store_digest(b.s), zap_store_digest(a.s));
}

TEST(StoreSnapshot, RandomCorruptionIsRefusedOrHarmless)
{
	Store a(8);
	BuildRandom(a, 33, 40, false);
	Bytes snap = a.Snapshot();
	Store empty(8);
	uint64_t d0 = zap_store_digest(empty.s);
	for (uint32_t seed = 1; seed <= 3000; seed++) {
		std::mt19937 rng(seed);
		Bytes c = snap;
		int flips = 1 + rng() % 4;
		for (int i = 0; i < flips; i++)
			c[rng() % c.size()] ^= (uint8_t)(1u << (rng() % 8));
		Store b(8);
		// the checksum catches it
		ASSERT_EQ(zap_store_snapshot_load(b.s, c.data(), c.size()), -EBADMSG)
		    << "seed " << seed;
		// resealed: the loader's checks catch it, or the content is still a store
		snaptest::Reseal(c, snaptest::kStoreSeed);
		int rc = zap_store_snapshot_load(b.s, c.data(), c.size());
		if (rc != 0) {
			ASSERT_EQ(zap_store_digest(b.s), d0) << "seed " << seed;
		} else {
			Built probe;
			probe.max_oid = 45;
			Reads(b, probe);
			zap_store_digest(b.s);
		}
	}
	printf("corruption seeds 1..3000\n");
}
