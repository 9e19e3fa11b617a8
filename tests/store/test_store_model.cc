/* SPDX-License-Identifier: Apache-2.0 */
/* The store against a simple reference model, under random operations. */
#include "store_fixture.h"

#include <map>
#include <random>

namespace {

struct ModelRev {
	uint64_t tid;
	bool deleted;
};

/* oid -> revisions, oldest first */
using Model = std::map<uint64_t, std::vector<ModelRev>>;

static void model_pack(Model &m, uint64_t pack_tid)
{
	for (auto it = m.begin(); it != m.end();) {
		auto &revs = it->second;
		int keep = -1;
		for (int i = 0; i < (int)revs.size(); i++)
			if (revs[i].tid <= pack_tid)
				keep = i;
		if (keep >= 0) {
			int first = revs[keep].deleted ? keep + 1 : keep;
			revs.erase(revs.begin(), revs.begin() + first);
		}
		if (revs.empty())
			it = m.erase(it);
		else
			++it;
	}
}

/* expected loadBefore: index of the revision, or -1 */
static int model_before(const Model &m, uint64_t oid, uint64_t before)
{
	auto it = m.find(oid);
	if (it == m.end())
		return -1;
	int found = -1;
	for (int i = 0; i < (int)it->second.size(); i++)
		if (it->second[i].tid < before)
			found = i;
	return found;
}

static void check_oid(zap_store_reader *r, const Model &m, uint64_t oid, uint64_t before)
{
	zap_store_rev rev;
	int rc = zap_store_load_before(r, oid, before, &rev);
	int i = model_before(m, oid, before);
	if (i < 0) {
		ASSERT_EQ(rc, -ENOENT) << "oid " << oid << " before " << before;
		return;
	}
	const auto &revs = m.at(oid);
	ASSERT_EQ(rc, 0) << "oid " << oid << " before " << before;
	ASSERT_EQ(rev.serial, revs[i].tid);
	ASSERT_EQ(rev.deleted, revs[i].deleted ? 1 : 0);
	uint64_t next = (size_t)i + 1 < revs.size() ? revs[i + 1].tid : 0;
	ASSERT_EQ(rev.next_serial, next);
	if (!rev.deleted) {
		ASSERT_EQ(rev.len, pattern_len(oid, rev.serial));
		ASSERT_TRUE(pattern_check((const uint8_t *)rev.data, rev.len, oid, rev.serial));
	}
}

static void run_model(uint64_t seed, int steps, uint64_t n_oids)
{
	std::mt19937_64 rng(seed);
	zap_store *s = make_store(128ull << 20, 64, 16);
	zap_store_reader *r;
	ASSERT_EQ(zap_store_reader_open(s, &r), 0);
	Model m;
	uint64_t tid = 0;
	for (int step = 0; step < steps; step++) {
		if (rng() % 40 == 0 && tid > 0) {
			uint64_t pack_tid = rng() % (tid + 1);
			ASSERT_EQ(zap_store_pack(s, pack_tid), 0);
			model_pack(m, pack_tid);
		} else {
			tid += 1 + rng() % 3;
			std::vector<PatternWrite> ws;
			std::vector<bool> used(n_oids);
			int n = 1 + (int)(rng() % 6);
			for (int k = 0; k < n; k++) {
				uint64_t oid = rng() % n_oids;
				if (used[oid])
					continue;
				used[oid] = true;
				bool del = m.count(oid) && rng() % 8 == 0;
				ws.push_back(pattern_write(oid, tid, del));
				m[oid].push_back({tid, del});
			}
			ASSERT_EQ(commit_writes(s, tid, ws), 0);
		}
		uint64_t snap = zap_store_read_begin(r);
		ASSERT_EQ(snap, tid);
		for (int q = 0; q < 8; q++) {
			uint64_t oid = rng() % n_oids;
			uint64_t before = 1 + rng() % (tid + 2);
			check_oid(r, m, oid, before);
			if (::testing::Test::HasFatalFailure())
				return;
		}
		zap_store_read_end(r);
	}
	/* everything, at the end */
	zap_store_read_begin(r);
	for (uint64_t oid = 0; oid < n_oids; oid++) {
		check_oid(r, m, oid, UINT64_MAX);
		zap_store_hist h[64];
		size_t n = 0;
		int rc = zap_store_history(r, oid, h, 64, &n);
		auto it = m.find(oid);
		if (it == m.end()) {
			EXPECT_EQ(rc, -ENOENT);
			continue;
		}
		ASSERT_EQ(rc, 0);
		ASSERT_EQ(n, std::min<size_t>(64, it->second.size()));
		for (size_t k = 0; k < n; k++)
			EXPECT_EQ(h[k].serial, it->second[it->second.size() - 1 - k].tid);
	}
	struct zap_store_stats st;
	zap_store_stats(s, &st);
	uint64_t revs = 0;
	for (auto &kv : m)
		revs += kv.second.size();
	EXPECT_EQ(st.objects, m.size());
	EXPECT_EQ(st.revisions, revs);
	EXPECT_EQ(st.bytes_limbo, 0u) << "no reader held anything: all unlinked memory freed";
	zap_store_read_end(r);
	zap_store_reader_close(r);
	zap_store_close(s);
}

TEST(StoreModel, RandomOperationsMatchReferenceModel)
{
	uint64_t seed = test_seed();
	for (uint64_t k = 0; k < 20 && !HasFatalFailure(); k++) {
		SCOPED_TRACE("seed " + std::to_string(seed + k));
		run_model(seed + k, 600, 1 + k * 7);
	}
}

TEST(StoreModel, ManyObjectsFewCommits)
{
	uint64_t seed = test_seed();
	run_model(seed, 3000, 2000);
}

} // namespace
