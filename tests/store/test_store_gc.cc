/* SPDX-License-Identifier: Apache-2.0 */
/* Pack with garbage collection (zap_store_pack_gc), one behaviour per test. */
#include "store_fixture.h"
#include "store_refs.h"

#include <map>
#include <random>
#include <set>

namespace {

/* One object of a commit: its references, or a deletion. */
struct Obj {
	uint64_t oid;
	std::vector<uint64_t> refs;
	bool deleted = false;
};

int commit_objs(zap_store *s, uint64_t tid, const std::vector<Obj> &objs)
{
	std::vector<std::string> recs;
	for (const Obj &o : objs)
		recs.push_back(o.deleted ? std::string() : refs_record(o.refs));
	std::vector<zap_store_write> w;
	for (size_t i = 0; i < objs.size(); i++)
		w.push_back({objs[i].oid, recs[i].data(), recs[i].size(), objs[i].deleted ? 1 : 0});
	return zap_store_commit(s, tid, nullptr, w.data(), (uint32_t)w.size());
}

int commit_raw(zap_store *s, uint64_t tid, uint64_t oid, const std::string &rec)
{
	zap_store_write w{oid, rec.data(), rec.size(), 0};
	return zap_store_commit(s, tid, nullptr, &w, 1);
}

zap_store_gc_result pack_gc(zap_store *s, uint64_t pack_tid, zap_store_gc gc = {test_refs, nullptr, nullptr})
{
	zap_store_gc_result r;
	memset(&r, 0xff, sizeof(r));
	EXPECT_EQ(zap_store_pack_gc(s, pack_tid, &gc, &r), 0);
	return r;
}

/* What a reader sees of oid: 0 loaded, or the error. */
int load(zap_store *s, uint64_t oid, uint64_t before = UINT64_MAX, uint64_t *serial = nullptr)
{
	zap_store_reader *r;
	EXPECT_EQ(zap_store_reader_open(s, &r), 0);
	zap_store_read_begin(r);
	zap_store_rev rev;
	int rc = before == UINT64_MAX ? zap_store_load(r, oid, &rev)
				      : zap_store_load_before(r, oid, before, &rev);
	if (rc == 0 && serial)
		*serial = rev.serial;
	zap_store_read_end(r);
	zap_store_reader_close(r);
	return rc;
}

std::set<uint64_t> present(zap_store *s, uint64_t max_oid)
{
	std::set<uint64_t> out;
	for (uint64_t oid = 0; oid <= max_oid; oid++)
		if (zap_store_serial(s, oid) != 0)
			out.insert(oid);
	return out;
}

TEST(StoreGc, ReachableObjectsStayAndUnreachableOnesGo)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_objs(s, 10, {{0, {1}}, {1, {}}, {2, {}}}), 0);
	zap_store_gc_result r = pack_gc(s, 10);
	EXPECT_EQ(r.collected, 1u);
	EXPECT_EQ(r.reachable, 2u);
	EXPECT_EQ(r.aborted, 0);
	EXPECT_EQ(r.no_root, 0);
	EXPECT_EQ(load(s, 0), 0);
	EXPECT_EQ(load(s, 1), 0);
	EXPECT_EQ(load(s, 2), -ENOENT);
	EXPECT_EQ(load(s, 2, 11), -ENOENT);
	EXPECT_EQ(zap_store_serial(s, 2), 0u);
	struct zap_store_stats st;
	zap_store_stats(s, &st);
	EXPECT_EQ(st.objects, 2u);
	EXPECT_EQ(st.revisions, 2u);
	EXPECT_EQ(st.pack_tid, 10u);
	zap_store_close(s);
}

TEST(StoreGc, ChainThroughSeveralObjectsIsKept)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_objs(s, 10, {{0, {1}}, {1, {2}}, {2, {3}}, {3, {}}, {4, {5}}, {5, {}}}), 0);
	zap_store_gc_result r = pack_gc(s, 10);
	EXPECT_EQ(r.collected, 2u);
	EXPECT_EQ(present(s, 6), (std::set<uint64_t>{0, 1, 2, 3}));
	zap_store_close(s);
}

TEST(StoreGc, CyclesAreFollowedOnceAndUnreachableCyclesGo)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_objs(s, 10,
			      {{0, {1, 0}}, {1, {2}}, {2, {1, 0}}, {3, {4}}, {4, {3}}, {5, {5}}}),
		  0);
	zap_store_gc_result r = pack_gc(s, 10);
	EXPECT_EQ(r.collected, 3u);
	EXPECT_EQ(r.reachable, 3u);
	EXPECT_EQ(present(s, 6), (std::set<uint64_t>{0, 1, 2}));
	zap_store_close(s);
}

TEST(StoreGc, ObjectUnlinkedBeforePackTimeGoesButNotOneUnlinkedAfter)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_objs(s, 10, {{0, {1, 2}}, {1, {}}, {2, {}}}), 0);
	ASSERT_EQ(commit_objs(s, 20, {{0, {2}}}), 0); // 1 unlinked at 20
	ASSERT_EQ(commit_objs(s, 30, {{0, {}}}), 0);  // 2 unlinked at 30
	zap_store_gc_result r = pack_gc(s, 25);
	EXPECT_EQ(r.collected, 1u);
	EXPECT_EQ(present(s, 3), (std::set<uint64_t>{0, 2}))
	    << "2 is referenced by the root's revision current at 25";
	uint64_t serial = 0;
	EXPECT_EQ(load(s, 0, 30, &serial), 0);
	EXPECT_EQ(serial, 20u);
	r = pack_gc(s, 30);
	EXPECT_EQ(r.collected, 1u);
	EXPECT_EQ(present(s, 3), (std::set<uint64_t>{0}));
	zap_store_close(s);
}

TEST(StoreGc, RevisionsNewerThanPackTidAreRoots)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_objs(s, 10, {{0, {}}, {1, {}}, {2, {}}, {4, {5}}, {5, {}}, {6, {}}}), 0);
	// 3 is new after the pack time and references 2; 4 gets a newer revision
	ASSERT_EQ(commit_objs(s, 30, {{3, {2}}, {4, {}}}), 0);
	zap_store_gc_result r = pack_gc(s, 20);
	EXPECT_EQ(present(s, 7), (std::set<uint64_t>{0, 2, 3, 4, 5}));
	EXPECT_EQ(r.collected, 2u); // 1 and 6
	uint64_t serial = 0;
	EXPECT_EQ(load(s, 4, 30, &serial), 0) << "4's revision current at the pack time stays";
	EXPECT_EQ(serial, 10u);
	zap_store_close(s);
}

struct Named {
	std::vector<uint64_t> oids;
	int fail = 0;
};

int named_roots(void *ctx, zap_store_oid_fn add, void *arg)
{
	Named *n = static_cast<Named *>(ctx);
	for (uint64_t oid : n->oids)
		add(arg, oid);
	return n->fail;
}

TEST(StoreGc, RootsNamedByTheCallerAreKeptWithWhatTheyReference)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_objs(s, 10, {{0, {}}, {2, {3}}, {3, {}}, {4, {}}}), 0);
	Named n{{2, 99}}; // 99: not in the store, ignored
	zap_store_gc_result r = pack_gc(s, 10, {test_refs, named_roots, &n});
	EXPECT_EQ(r.collected, 1u);
	EXPECT_EQ(present(s, 5), (std::set<uint64_t>{0, 2, 3}));
	zap_store_close(s);
}

TEST(StoreGc, FailingRootsCollectNothing)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_objs(s, 10, {{0, {}}, {1, {}}}), 0);
	Named n{{}, -EINVAL};
	zap_store_gc_result r = pack_gc(s, 10, {test_refs, named_roots, &n});
	EXPECT_EQ(r.aborted, 1);
	EXPECT_EQ(r.collected, 0u);
	EXPECT_EQ(present(s, 2), (std::set<uint64_t>{0, 1}));
	zap_store_close(s);
}

TEST(StoreGc, UnreadableReachableRecordCollectsNothingButOldRevisionsGo)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_objs(s, 10, {{0, {1}}, {2, {}}}), 0);
	ASSERT_EQ(commit_raw(s, 20, 1, "not a record the extractor reads"), 0);
	ASSERT_EQ(commit_objs(s, 30, {{0, {1}}}), 0);
	zap_store_gc_result r = pack_gc(s, 30);
	EXPECT_EQ(r.aborted, 1);
	EXPECT_EQ(r.collected, 0u);
	EXPECT_EQ(present(s, 3), (std::set<uint64_t>{0, 1, 2}));
	struct zap_store_stats st;
	zap_store_stats(s, &st);
	EXPECT_EQ(st.revisions, 3u) << "the root's revision of 10 was still dropped";
	zap_store_close(s);
}

TEST(StoreGc, UnreadableUnreachableRecordIsCollected)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_objs(s, 10, {{0, {}}}), 0);
	ASSERT_EQ(commit_raw(s, 20, 1, "junk"), 0);
	zap_store_gc_result r = pack_gc(s, 20);
	EXPECT_EQ(r.aborted, 0);
	EXPECT_EQ(r.collected, 1u);
	zap_store_close(s);
}

TEST(StoreGc, WithoutALiveRootNothingIsCollected)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_objs(s, 10, {{1, {}}, {2, {}}}), 0);
	zap_store_gc_result r = pack_gc(s, 10);
	EXPECT_EQ(r.no_root, 1);
	EXPECT_EQ(r.collected, 0u);
	EXPECT_EQ(present(s, 3), (std::set<uint64_t>{1, 2}));
	// a root created after the pack time does not count either
	ASSERT_EQ(commit_objs(s, 20, {{0, {}}}), 0);
	r = pack_gc(s, 15);
	EXPECT_EQ(r.no_root, 1);
	EXPECT_EQ(present(s, 3), (std::set<uint64_t>{0, 1, 2}));
	// nor a root deleted at the pack time
	ASSERT_EQ(commit_objs(s, 30, {{0, {}, true}}), 0);
	r = pack_gc(s, 30);
	EXPECT_EQ(r.no_root, 1);
	EXPECT_EQ(present(s, 3), (std::set<uint64_t>{1, 2}));
	zap_store_close(s);
}

TEST(StoreGc, DeletedAtPackTimeGoesAsWithoutCollection)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_objs(s, 10, {{0, {1}}, {1, {}}, {2, {}}}), 0);
	ASSERT_EQ(commit_objs(s, 20, {{1, {}, true}, {2, {}, true}}), 0);
	zap_store_gc_result r = pack_gc(s, 20);
	EXPECT_EQ(r.collected, 0u) << "deletions are dropped by the pack, not collected";
	EXPECT_EQ(present(s, 3), (std::set<uint64_t>{0}));
	zap_store_close(s);
}

TEST(StoreGc, NoExtractorIsThePlainPack)
{
	zap_store *a = make_store(), *b = make_store();
	for (zap_store *s : {a, b}) {
		ASSERT_EQ(commit_objs(s, 10, {{0, {}}, {1, {}}}), 0);
		ASSERT_EQ(commit_objs(s, 20, {{1, {}}}), 0);
	}
	ASSERT_EQ(zap_store_pack(a, 20), 0);
	zap_store_gc none{nullptr, nullptr, nullptr};
	zap_store_gc_result r;
	ASSERT_EQ(zap_store_pack_gc(b, 20, &none, &r), 0);
	ASSERT_EQ(zap_store_pack_gc(b, 20, nullptr, nullptr), 0);
	EXPECT_EQ(r.collected, 0u);
	EXPECT_EQ(present(b, 2), (std::set<uint64_t>{0, 1}));
	EXPECT_EQ(zap_store_digest(a), zap_store_digest(b));
	EXPECT_EQ(zap_store_pack_gc(b, 21, nullptr, nullptr), -EINVAL);
	zap_store_close(a);
	zap_store_close(b);
}

TEST(StoreGc, LongChainIsMarkedWithoutRecursion)
{
	const uint64_t n = 200000;
	zap_store *s = make_store(256ull << 20);
	std::vector<Obj> objs;
	for (uint64_t oid = 0; oid < n; oid++)
		objs.push_back({oid, {oid + 1 < n ? oid + 1 : 0}});
	objs.push_back({n, {}}); // unreachable
	ASSERT_EQ(commit_objs(s, 10, objs), 0);
	zap_store_gc_result r = pack_gc(s, 10);
	EXPECT_EQ(r.reachable, n);
	EXPECT_EQ(r.collected, 1u);
	EXPECT_EQ(zap_store_serial(s, n - 1), 10u);
	zap_store_close(s);
}

TEST(StoreGc, ReaderKeepsCollectedRecordUntilItsSectionEnds)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_objs(s, 10, {{0, {}}, {1, {7, 8, 9}}}), 0);
	zap_store_reader *r;
	ASSERT_EQ(zap_store_reader_open(s, &r), 0);
	zap_store_read_begin(r);
	zap_store_rev rev;
	ASSERT_EQ(zap_store_load(r, 1, &rev), 0);
	std::string want = refs_record({7, 8, 9});
	EXPECT_EQ(pack_gc(s, 10).collected, 1u);
	// more commits of the same size cannot reuse the block the reader holds
	for (uint64_t t = 11; t < 40; t++)
		ASSERT_EQ(commit_objs(s, t, {{100 + t, {7, 8, 9}}}), 0);
	EXPECT_EQ(std::string((const char *)rev.data, rev.len), want);
	struct zap_store_stats st;
	zap_store_stats(s, &st);
	EXPECT_GT(st.bytes_limbo, 0u);
	zap_store_read_end(r);
	EXPECT_GT(zap_store_reclaim(s), 0u);
	zap_store_reader_close(r);
	zap_store_close(s);
}

/* The model: per oid, revisions (tid, refs, deleted) oldest first. */
using Model = std::map<uint64_t, std::vector<std::pair<uint64_t, Obj>>>;

/* Objects a pack at T keeps, from the model (recursive: fine for tests). */
void model_mark(const Model &m, uint64_t oid, uint64_t T, std::set<uint64_t> &live)
{
	auto it = m.find(oid);
	if (it == m.end() || it->second.empty() || !live.insert(oid).second)
		return;
	for (auto rv = it->second.rbegin(); rv != it->second.rend(); ++rv) {
		if (!rv->second.deleted)
			for (uint64_t ref : rv->second.refs)
				model_mark(m, ref, T, live);
		if (rv->first <= T)
			break;
	}
}

void model_pack(Model &m, uint64_t T)
{
	std::set<uint64_t> live;
	auto root = m.find(0);
	bool root_live = false;
	if (root != m.end())
		for (auto rv = root->second.rbegin(); rv != root->second.rend(); ++rv)
			if (rv->first <= T) {
				root_live = !rv->second.deleted;
				break;
			}
	if (root_live) {
		model_mark(m, 0, T, live);
		for (auto &kv : m)
			if (!kv.second.empty() && kv.second.back().first > T)
				model_mark(m, kv.first, T, live);
	}
	for (auto &kv : m) {
		auto &revs = kv.second;
		if (revs.empty())
			continue;
		if (root_live && !live.count(kv.first)) {
			revs.clear();
			continue;
		}
		size_t cur = revs.size();
		while (cur > 0 && revs[cur - 1].first > T)
			cur--;
		if (cur == 0)
			continue;
		bool del = revs[cur - 1].second.deleted;
		revs.erase(revs.begin(), revs.begin() + (long)cur - (del ? 0 : 1));
	}
}

TEST(StoreGc, RandomHistoriesMatchTheModelAndTwoLayoutsAgree)
{
	std::mt19937_64 rng(test_seed());
	zap_store *a = make_store(64ull << 20, 256, 16);
	zap_store *b = make_store(64ull << 20, 256, 4096); // another index layout
	Model m;
	const uint64_t oids = 60;
	uint64_t collected = 0;
	for (uint64_t tid = 1; tid <= 600; tid++) {
		std::vector<Obj> objs;
		std::set<uint64_t> used;
		for (int k = 0; k < 1 + (int)(rng() % 3); k++) {
			uint64_t oid = tid == 1 ? 0 : rng() % oids;
			if (!used.insert(oid).second)
				continue;
			Obj o{oid, {}, oid != 0 && rng() % 13 == 0};
			for (int r = 0; r < (int)(rng() % 4); r++)
				o.refs.push_back(rng() % (oids + 5));
			if (o.deleted)
				o.refs.clear();
			objs.push_back(o);
		}
		ASSERT_EQ(commit_objs(a, tid, objs), 0);
		ASSERT_EQ(commit_objs(b, tid, objs), 0);
		for (const Obj &o : objs)
			m[o.oid].push_back({tid, o});
		if (tid % 50 == 0) {
			uint64_t T = tid - rng() % 30;
			zap_store_gc_result ra = pack_gc(a, T), rb = pack_gc(b, T);
			EXPECT_EQ(ra.collected, rb.collected);
			EXPECT_EQ(ra.reachable, rb.reachable);
			collected += ra.collected;
			model_pack(m, T);
			std::set<uint64_t> want;
			uint64_t revs = 0;
			for (auto &kv : m)
				if (!kv.second.empty()) {
					want.insert(kv.first);
					revs += kv.second.size();
				}
			ASSERT_EQ(present(a, oids + 5), want) << "pack at " << T;
			struct zap_store_stats st;
			zap_store_stats(a, &st);
			EXPECT_EQ(st.revisions, revs);
			EXPECT_EQ(st.objects, want.size());
			ASSERT_EQ(zap_store_digest(a), zap_store_digest(b));
		}
	}
	EXPECT_GT(collected, 0u);
	// a snapshot of a collected store loads to the same digest
	std::vector<uint8_t> snap;
	ASSERT_EQ(zap_store_snapshot_write(
		      a,
		      [](const void *p, size_t n, void *ctx) {
			      auto *v = static_cast<std::vector<uint8_t> *>(ctx);
			      v->insert(v->end(), (const uint8_t *)p, (const uint8_t *)p + n);
			      return 0;
		      },
		      &snap),
		  0);
	zap_store *c = make_store(64ull << 20, 256, 64);
	ASSERT_EQ(zap_store_snapshot_load(c, snap.data(), snap.size()), 0);
	EXPECT_EQ(zap_store_digest(c), zap_store_digest(a));
	EXPECT_EQ(present(c, oids + 5), present(a, oids + 5));
	zap_store_close(a);
	zap_store_close(b);
	zap_store_close(c);
}

} // namespace
