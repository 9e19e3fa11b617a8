// SPDX-License-Identifier: Apache-2.0
// zeo resolve tests: ZODB record references (dataplane/zeo/zodb_record.c) and
// native conflict resolution (dataplane/zeo/zeo_resolve.c). The fixture
// tests/zeo/zodb_records.txt holds real ZODB records and, for each merge
// case, the merged record or "-" for a refusal; states and merges computed
// by the BTrees package. Lines: "R <record> <oid>..." and
// "M <name> <old> <committed> <new> <merged or ->".
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" {
#include "zeo/zeo_resolve.h"
#include "zeo/zodb_record.h"
}

namespace
{

using Bytes = std::vector<uint8_t>;

Bytes unhex(const std::string &s)
{
	Bytes b;
	for (size_t i = 0; i + 1 < s.size(); i += 2)
		b.push_back((uint8_t)std::stoi(s.substr(i, 2), nullptr, 16));
	return b;
}

struct RefCase {
	Bytes rec;
	std::vector<uint64_t> oids;
};

struct MergeCase {
	std::string name;
	Bytes old, com, neu, merged;
	bool refused;
};

struct Fixture {
	std::vector<RefCase> refs;
	std::vector<MergeCase> merges;
};

const Fixture &fixture()
{
	static Fixture f;
	static bool loaded;
	if (loaded)
		return f;
	loaded = true;
	const char *root = getenv("ZAP_SOURCE_ROOT");
	std::ifstream in(std::string(root ? root : "..") + "/tests/zeo/zodb_records.txt");
	std::string line;
	while (std::getline(in, line)) {
		std::istringstream ss(line);
		std::string tag, a, b, c, d, e;
		ss >> tag;
		if (tag == "R") {
			RefCase r;
			ss >> a;
			r.rec = unhex(a);
			while (ss >> b)
				if (b != "-")
					r.oids.push_back(std::stoull(b, nullptr, 16));
			f.refs.push_back(r);
		} else if (tag == "M") {
			ss >> a >> b >> c >> d >> e;
			f.merges.push_back({a, unhex(b), unhex(c), unhex(d), unhex(e == "-" ? "" : e),
					    e == "-"});
		}
	}
	return f;
}

const MergeCase &merge_case(const std::string &name)
{
	for (const auto &m : fixture().merges)
		if (m.name == name)
			return m;
	ADD_FAILURE() << "no fixture " << name;
	static MergeCase none;
	return none;
}

int collect(void *arg, uint64_t oid)
{
	static_cast<std::vector<uint64_t> *>(arg)->push_back(oid);
	return 0;
}

// Structural equality of two decoded values, types included.
bool same_tree(const zodb_val *a, const zodb_val *b)
{
	if (a->type != b->type || a->big != b->big)
		return false;
	switch (a->type) {
	case ZODB_NONE:
		return true;
	case ZODB_BOOL:
		return a->b == b->b;
	case ZODB_INT:
		if (a->big)
			return a->s.len == b->s.len && !memcmp(a->s.p, b->s.p, a->s.len);
		return a->i == b->i;
	case ZODB_FLOAT:
		return !memcmp(&a->f, &b->f, sizeof(a->f));
	case ZODB_STR:
	case ZODB_BYTES:
		return a->s.len == b->s.len && !memcmp(a->s.p, b->s.p, a->s.len);
	case ZODB_GLOBAL:
		return a->g.mod_len == b->g.mod_len && a->g.name_len == b->g.name_len &&
		       !memcmp(a->g.mod, b->g.mod, a->g.mod_len) &&
		       !memcmp(a->g.name, b->g.name, a->g.name_len);
	case ZODB_REF:
		return same_tree(a->pid, b->pid);
	default:
		if (a->seq.n != b->seq.n)
			return false;
		for (uint32_t i = 0; i < a->seq.n; i++)
			if (!same_tree(a->seq.items[i], b->seq.items[i]))
				return false;
		return true;
	}
}

int resolve(const MergeCase &m, Bytes *out, std::string *cls = nullptr)
{
	void *p = nullptr;
	size_t n = 0;
	char name[128];
	int rc = zeo_resolve(m.old.data(), m.old.size(), m.com.data(), m.com.size(), m.neu.data(),
			     m.neu.size(), &p, &n, name, sizeof(name));
	if (cls)
		*cls = name;
	if (rc == ZEO_RESOLVED) {
		out->assign((uint8_t *)p, (uint8_t *)p + n);
		free(p);
	}
	return rc;
}

// The merged record: the client's class header, a state equal to the package's merge.
::testing::AssertionResult merged_as_expected(const MergeCase &m, const Bytes &out)
{
	zodb_rec got, want, neu;
	int rc_got = zodb_record_decode(&got, out.data(), out.size());
	int rc_want = zodb_record_decode(&want, m.merged.data(), m.merged.size());
	int rc_neu = zodb_record_decode(&neu, m.neu.data(), m.neu.size());
	bool ok = rc_got == 0 && rc_want == 0 && rc_neu == 0 &&
		  same_tree(got.state, want.state) && got.cls_len == neu.cls_len &&
		  !memcmp(out.data(), m.neu.data(), neu.cls_len);
	zodb_rec_free(&got);
	zodb_rec_free(&want);
	zodb_rec_free(&neu);
	if (ok)
		return ::testing::AssertionSuccess();
	return ::testing::AssertionFailure() << m.name << ": merged state differs";
}

// ---------------------------------------------------------------- references

TEST(ZodbRecordRefs, FixtureRecordsReportTheirReferences)
{
	ASSERT_GE(fixture().refs.size(), 8u);
	for (const auto &r : fixture().refs) {
		std::vector<uint64_t> got;
		EXPECT_EQ(zodb_record_refs(r.rec.data(), r.rec.size(), collect, &got), 0);
		EXPECT_EQ(got, r.oids);
	}
}

TEST(ZodbRecordRefs, BlobPrefixReportsTheEmbeddedPickleReferences)
{
	const RefCase &r = fixture().refs[0];
	Bytes rec(ZODB_REC_BLOB_MAGIC, ZODB_REC_BLOB_MAGIC + ZODB_REC_BLOB_MAGIC_BYTES);
	uint32_t n = (uint32_t)r.rec.size();
	for (int i = 3; i >= 0; i--)
		rec.push_back((uint8_t)(n >> (8 * i)));
	rec.insert(rec.end(), r.rec.begin(), r.rec.end());
	rec.insert(rec.end(), {'b', 'l', 'o', 'b', 'Q', '.'});
	std::vector<uint64_t> got;
	EXPECT_EQ(zodb_record_refs(rec.data(), rec.size(), collect, &got), 0);
	EXPECT_EQ(got, r.oids);
	rec[ZODB_REC_BLOB_MAGIC_BYTES] = 0x7f; // length beyond the record
	EXPECT_EQ(zodb_record_refs(rec.data(), rec.size(), collect, &got), -EINVAL);
}

TEST(ZodbRecordRefs, CallbackValueStopsTheScan)
{
	const RefCase &r = fixture().refs[0];
	int calls = 0;
	auto stop = [](void *arg, uint64_t) {
		++*static_cast<int *>(arg);
		return 7;
	};
	EXPECT_EQ(zodb_record_refs(r.rec.data(), r.rec.size(), stop, &calls), 7);
	EXPECT_EQ(calls, 1);
}

TEST(ZodbRecordRefs, GarbageIsEinval)
{
	const char *bad[] = {"", "garbage", "\x80\x03N.", "\x80\x03N.\x80\x03N.x",
			     "\x80\x03N.\x80\x03C\x03" "abcQ.", "\x80\x03N.\x80\x03K\x01Q.",
			     "\x80\x03N.\x80\x03]X\x01\x00\x00\x00zaQ."};
	for (const char *s : bad)
		EXPECT_EQ(zodb_record_refs(s, strlen(s), collect, nullptr), -EINVAL) << s;
}

TEST(ZodbRecordRefs, EveryTruncationFailsCleanly)
{
	for (const auto &r : fixture().refs)
		for (size_t n = 0; n < r.rec.size(); n++) {
			std::vector<uint64_t> got;
			int rc = zodb_record_refs(r.rec.data(), n, collect, &got);
			EXPECT_EQ(rc, -EINVAL) << n;
			zodb_rec d;
			EXPECT_NE(zodb_record_decode(&d, r.rec.data(), n), 0);
			zodb_rec_free(&d);
		}
}

TEST(ZodbRecordRefs, RandomMutationsNeverCrash)
{
	unsigned seed = getenv("ZEO_RESOLVE_SEED") ? (unsigned)atoi(getenv("ZEO_RESOLVE_SEED")) : 1;
	std::mt19937 rng(seed);
	SCOPED_TRACE("ZEO_RESOLVE_SEED=" + std::to_string(seed));
	for (int i = 0; i < 4000; i++) {
		const auto &r = fixture().refs[rng() % fixture().refs.size()];
		Bytes b = r.rec;
		for (int k = 0; k < 1 + (int)(rng() % 4); k++)
			b[rng() % b.size()] = (uint8_t)rng();
		std::vector<uint64_t> got;
		int rc = zodb_record_refs(b.data(), b.size(), collect, &got);
		EXPECT_TRUE(rc == 0 || rc == -EINVAL);
		zodb_rec d;
		(void)zodb_record_decode(&d, b.data(), b.size());
		zodb_rec_free(&d);
	}
}

TEST(ZodbRecordDecode, RefusesCodeRunningOpcodes)
{
	// the record with a datetime (REDUCE), sets and an object (NEWOBJ / BUILD)
	for (const auto &r : fixture().refs) {
		zodb_rec d;
		int rc = zodb_record_decode(&d, r.rec.data(), r.rec.size());
		zodb_rec_free(&d);
		if (r.oids.size() == 2 && (r.oids[0] == 12 || r.oids[0] == 14)) {
			EXPECT_EQ(rc, -EINVAL);
		}
	}
}

// ---------------------------------------------------------------- merges

struct Rule {
	const char *name;
	int rc;
};

class ZeoResolveRule : public ::testing::TestWithParam<Rule>
{
};

TEST_P(ZeoResolveRule, MatchesTheBTreesPackage)
{
	const MergeCase &m = merge_case(GetParam().name);
	Bytes out;
	std::string cls;
	int rc = resolve(m, &out, &cls);
	ASSERT_EQ(rc, GetParam().rc) << m.name << " " << cls;
	if (rc == ZEO_RESOLVED) {
		EXPECT_FALSE(m.refused);
		EXPECT_TRUE(merged_as_expected(m, out));
	} else if (rc == ZEO_RESOLVE_REFUSED) {
		EXPECT_TRUE(m.refused);
	}
}

INSTANTIATE_TEST_SUITE_P(
    Rules, ZeoResolveRule,
    ::testing::Values(Rule{"insert_both", ZEO_RESOLVED}, Rule{"change_one_side", ZEO_RESOLVED},
		      Rule{"both_change_same", ZEO_RESOLVE_REFUSED},
		      Rule{"delete_change", ZEO_RESOLVE_REFUSED},
		      Rule{"first_key_deleted", ZEO_RESOLVE_REFUSED},
		      Rule{"empty_committed", ZEO_RESOLVE_REFUSED},
		      Rule{"empty_result", ZEO_RESOLVE_REFUSED},
		      Rule{"both_insert_same", ZEO_RESOLVE_REFUSED},
		      Rule{"both_delete_same", ZEO_RESOLVE_REFUSED},
		      Rule{"next_changed", ZEO_RESOLVE_REFUSED}, Rule{"next_kept", ZEO_RESOLVED},
		      Rule{"ref_values_insert", ZEO_RESOLVED},
		      Rule{"ref_value_changed", ZEO_RESOLVE_REFUSED},
		      Rule{"bytes_keys", ZEO_RESOLVED}, Rule{"float_keys", ZEO_RESOLVED},
		      Rule{"str_keys_unicode", ZEO_RESOLVED}, Rule{"big_int_keys", ZEO_RESOLVED},
		      Rule{"int_keys_io", ZEO_RESOLVED}, Rule{"tuple_values", ZEO_RESOLVED},
		      Rule{"set_insert_both", ZEO_RESOLVED},
		      Rule{"set_delete_both_same", ZEO_RESOLVE_REFUSED},
		      Rule{"set_first_deleted", ZEO_RESOLVE_REFUSED},
		      Rule{"tree_embedded", ZEO_RESOLVED}, Rule{"tree_from_empty", ZEO_RESOLVED},
		      Rule{"treeset_embedded", ZEO_RESOLVED},
		      Rule{"tree_multilevel_unsupported", ZEO_RESOLVE_UNSUPPORTED},
		      Rule{"length", ZEO_RESOLVED}, Rule{"length_neg", ZEO_RESOLVED},
		      Rule{"length_big", ZEO_RESOLVED}, Rule{"length_big_neg", ZEO_RESOLVED},
		      Rule{"length_overflow", ZEO_RESOLVED},
		      Rule{"unsupported_class", ZEO_RESOLVE_UNSUPPORTED}),
    [](const ::testing::TestParamInfo<Rule> &i) { return std::string(i.param.name); });

TEST(ZeoResolve, RandomSweepsAgreeWithTheBTreesPackage)
{
	std::map<std::string, int> count;
	size_t n = 0;
	for (const auto &m : fixture().merges) {
		if (m.name.rfind("sweep_", 0) != 0)
			continue;
		n++;
		Bytes out;
		int rc = resolve(m, &out);
		if (m.refused) {
			EXPECT_EQ(rc, ZEO_RESOLVE_REFUSED) << m.name;
		} else {
			ASSERT_EQ(rc, ZEO_RESOLVED) << m.name;
			EXPECT_TRUE(merged_as_expected(m, out));
		}
		count[rc == ZEO_RESOLVED ? "resolved" : "refused"]++;
	}
	EXPECT_GE(n, 2000u);
	EXPECT_GT(count["resolved"], 300);
	EXPECT_GT(count["refused"], 300);
}

TEST(ZeoResolve, ClassNameIsReported)
{
	Bytes out;
	std::string cls;
	resolve(merge_case("unsupported_class"), &out, &cls);
	EXPECT_EQ(cls, "persistent.mapping.PersistentMapping");
	resolve(merge_case("insert_both"), &out, &cls);
	EXPECT_EQ(cls, "BTrees.OOBTree.OOBucket");
}

TEST(ZeoResolve, MixedKeyTypesAreUnsupported)
{
	// IIBucket-shaped records whose keys mix int and str
	const MergeCase &base = merge_case("insert_both");
	std::string hdr(base.neu.begin(), base.neu.begin() + 29); // \x80\x03cBTrees.OOBTree\nOOBucket\nq\x00.
	ASSERT_EQ(hdr.substr(2, 1), "c");
	auto rec = [&](const std::string &items) {
		std::string s = hdr + "\x80\x03(" + items + "t\x85.";
		return Bytes(s.begin(), s.end());
	};
	MergeCase m{"mixed", rec("K\x01K\x01"), rec(std::string("K\x01K\x01X\x01\x00\x00\x00" "aK\x02", 12)),
		    rec("K\x01K\x01K\x03K\x03"), {}, false};
	Bytes out;
	EXPECT_EQ(resolve(m, &out), ZEO_RESOLVE_UNSUPPORTED);
	MergeCase g{"garbage", rec("K\x01"), Bytes{1, 2, 3}, rec("K\x01K\x01"), {}, false};
	EXPECT_EQ(resolve(g, &out), ZEO_RESOLVE_UNSUPPORTED);
}

TEST(ZeoResolve, TruncatedRecordsNeverCrash)
{
	const MergeCase &m = merge_case("tree_embedded");
	for (size_t n = 0; n < m.neu.size(); n++) {
		MergeCase t = m;
		t.neu.resize(n);
		Bytes out;
		EXPECT_EQ(resolve(t, &out), ZEO_RESOLVE_UNSUPPORTED);
		t = m;
		t.com.resize(n < m.com.size() ? n : 0);
		EXPECT_NE(resolve(t, &out), ZEO_RESOLVED);
	}
}

} // namespace
