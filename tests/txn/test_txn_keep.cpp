// SPDX-License-Identifier: Apache-2.0
// The state machine's keep hook (zap_txn_params.keep = zodb_record_keep): a
// record that carries its blob inline ("ZAPBLOB1") is kept as a reference
// ("ZAPBLOB2" + length + hash) with the bytes in the node's blob area; the
// record walks a blob sweep uses (zap_txn_sm_each_record,
// zap_store_each_record).
#include "txn_sm_fixture.h"

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include <unistd.h>

extern "C" {
#include "store/blobs.h"
#include "zeo/zodb_record.h"
}

using namespace zaptest;

namespace
{

constexpr uint64_t kSec = 1000000000ull;
constexpr uint64_t kT0 = 1795597512ull * kSec;
using BlobStats = struct zap_blobs_stats;

// A blob area in a fresh directory under /tmp, removed afterwards.
struct BlobDir {
	std::string path;
	zap_blobs *b = nullptr;
	BlobDir()
	{
		char tmpl[] = "/tmp/zap_txn_keep_XXXXXX";
		char *p = mkdtemp(tmpl);
		EXPECT_NE(p, nullptr);
		path = p ? p : "";
		EXPECT_EQ(zap_blobs_open((path + "/blobs").c_str(), &b), 0);
	}
	~BlobDir()
	{
		zap_blobs_close(b);
		std::error_code ec;
		if (!path.empty())
			std::filesystem::remove_all(path, ec);
	}
	BlobDir(const BlobDir &) = delete;
	BlobDir &operator=(const BlobDir &) = delete;
	const char *Dir() const
	{
		return zap_blobs_dir(b);
	}
	BlobStats Stats() const
	{
		BlobStats st;
		zap_blobs_stats(b, &st);
		return st;
	}
};

zap_txn_params KeepParams(BlobDir &d)
{
	zap_txn_params p = Replica::Params();
	p.keep = zodb_record_keep;
	p.keep_ctx = d.b;
	return p;
}

void Be32(std::string &s, uint32_t v)
{
	for (int i = 3; i >= 0; i--)
		s += (char)(uint8_t)(v >> (8 * i));
}

// A small record standing for a pickle (binary, with a NUL); its content
// does not matter to the hook.
std::string Pickle(const std::string &tag)
{
	std::string p = "\x80\x03"
			"cpersistent.mapping\nPersistentMapping\nq";
	p += '\0';
	p += ".\x80\x03}q\x01X";
	Be32(p, (uint32_t)tag.size());
	return p + tag + "N.";
}

std::string BlobBytes(size_t n, uint32_t seed)
{
	std::string s(n, '\0');
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		s[i] = (char)(x >> 16);
	}
	return s;
}

// "ZAPBLOB1" + u32 BE pickle length + pickle + blob bytes.
std::string InlineBlob(const std::string &pickle, const std::string &blob)
{
	std::string r = ZODB_REC_BLOB_MAGIC;
	Be32(r, (uint32_t)pickle.size());
	return r + pickle + blob;
}

std::vector<uint8_t> HashOf(const std::string &blob)
{
	std::vector<uint8_t> h(ZAP_BLOB_HASH_BYTES);
	zap_blobs_hash(blob.data(), blob.size(), h.data());
	return h;
}

// The current record of @p oid: its bytes, or "<deleted>" / "<none>".
std::string Load(Replica &r, uint64_t oid)
{
	zap_store_reader *rd = nullptr;
	EXPECT_EQ(zap_store_reader_open(r.store, &rd), 0);
	if (rd == nullptr)
		return "<no reader>";
	zap_store_read_begin(rd);
	zap_store_rev rev;
	std::string out;
	int rc = zap_store_load(rd, oid, &rev);
	if (rc == -ENOENT)
		out = "<none>";
	else if (rc != 0)
		out = "<error>";
	else if (rev.deleted)
		out = "<deleted>";
	else if (rev.len > 0)
		out.assign(static_cast<const char *>(rev.data), rev.len);
	zap_store_read_end(rd);
	zap_store_reader_close(rd);
	return out;
}

// Prepare then commit @p stores as client @p client; the commit's tid.
uint64_t PrepareCommit(Replica &r, uint64_t client, uint64_t txn_id,
		       const std::vector<Store> &stores, uint64_t &seq)
{
	zap_txn_result v =
	    r.One(Prepare(Hdr{client, ++seq, kT0 + seq * kSec, 1}, T(txn_id, stores)));
	EXPECT_EQ(v.status, ZAP_TXN_OK) << zap_txn_status_name(v.status);
	zap_txn_result c = r.One(Commit(Hdr{client, ++seq, kT0 + seq * kSec, 1}, txn_id));
	EXPECT_EQ(c.status, ZAP_TXN_OK) << zap_txn_status_name(c.status);
	return c.tid;
}

// Check that @p rec is the reference form of a blob @p blob with @p pickle,
// held and sound in @p d.
void ExpectReference(const std::string &rec, const std::string &pickle, const std::string &blob,
		     BlobDir &d)
{
	ASSERT_GE(rec.size(), ZODB_REC_BLOB_MAGIC_BYTES);
	EXPECT_EQ(rec.substr(0, 8), ZODB_REC_BLOB_REF_MAGIC);
	EXPECT_EQ(rec.size(), ZODB_REC_BLOB_HDR_BYTES + pickle.size() + ZODB_REC_BLOB_REF_TAIL);
	zodb_blob zb;
	ASSERT_EQ(zodb_record_blob(rec.data(), rec.size(), &zb), 1);
	ASSERT_NE(zb.hash, nullptr);
	EXPECT_EQ(zb.bytes, nullptr);
	EXPECT_EQ(zb.len, blob.size());
	EXPECT_EQ(std::string((const char *)zb.pickle, zb.pickle_len), pickle);
	std::vector<uint8_t> h = HashOf(blob);
	EXPECT_EQ(std::vector<uint8_t>(zb.hash, zb.hash + ZAP_BLOB_HASH_BYTES), h);
	const uint8_t *pk = nullptr;
	size_t pk_len = 0;
	ASSERT_EQ(zodb_record_pickle(rec.data(), rec.size(), &pk, &pk_len), 0);
	EXPECT_EQ(std::string((const char *)pk, pk_len), pickle);
	EXPECT_TRUE(zap_blobs_has(d.b, h.data(), blob.size()));
	EXPECT_EQ(zap_blobs_verify(d.Dir(), h.data()), 0);
	uint64_t len = 0;
	int fd = zap_blobs_open_file(d.Dir(), h.data(), &len);
	ASSERT_GE(fd, 0);
	std::string back(len, '\0');
	size_t got = 0;
	while (got < len) {
		ssize_t k = read(fd, &back[got], len - got);
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(fd);
	EXPECT_EQ(back, blob);
}

TEST(TxnKeep, InlineBlobIsStoredAsAReferenceAndTheBytesInTheArea)
{
	BlobDir d;
	Replica r(KeepParams(d));
	std::string pickle = Pickle("blob"), blob = BlobBytes(100000, 1);
	std::string rec = InlineBlob(pickle, blob);
	uint64_t seq = 0;
	uint64_t tid = PrepareCommit(r, 7, 5, {{10, 0, rec}}, seq);
	EXPECT_EQ(r.Serial(10), tid);
	ExpectReference(Load(r, 10), pickle, blob, d);
	BlobStats st = d.Stats();
	EXPECT_EQ(st.files, 1u);
	EXPECT_EQ(st.written, 1u);
	EXPECT_EQ(st.bytes, blob.size());
}

TEST(TxnKeep, OneshotKeepsTheBlobToo)
{
	BlobDir d;
	Replica r(KeepParams(d));
	std::string pickle = Pickle("one"), blob = BlobBytes(3000, 2);
	zap_txn_result res =
	    r.One(Oneshot(Hdr{7, 1, kT0, 1}, T(5, {{10, 0, InlineBlob(pickle, blob)}})));
	ASSERT_EQ(res.status, ZAP_TXN_OK);
	ExpectReference(Load(r, 10), pickle, blob, d);
}

TEST(TxnKeep, RecordsWithoutAnInlineBlobAreStoredUnchanged)
{
	BlobDir d;
	Replica r(KeepParams(d));
	std::string plain = Pickle("plain");
	// already a reference: kept as it is
	std::string ref = std::string(ZODB_REC_BLOB_REF_MAGIC);
	Be32(ref, (uint32_t)plain.size());
	ref += plain + std::string("\0\0\0\0\0\0\0\x05", 8) + std::string(32, '\x11');
	// a blob header whose pickle length exceeds the record: not a blob
	std::string bad =
	    std::string(ZODB_REC_BLOB_MAGIC) + std::string("\x00\x00\x10\x00", 4) + "short";
	// the magic alone, shorter than a header
	std::string magic_only = ZODB_REC_BLOB_MAGIC;
	std::string empty_blob_ok; // a zero-length record
	uint64_t seq = 0;
	PrepareCommit(r, 7, 5,
		      {{10, 0, plain},
		       {11, 0, ref},
		       {12, 0, bad},
		       {13, 0, magic_only},
		       {14, 0, empty_blob_ok}},
		      seq);
	EXPECT_EQ(Load(r, 10), plain);
	EXPECT_EQ(Load(r, 11), ref);
	EXPECT_EQ(Load(r, 12), bad);
	EXPECT_EQ(Load(r, 13), magic_only);
	EXPECT_EQ(Load(r, 14), empty_blob_ok);
	BlobStats st = d.Stats();
	EXPECT_EQ(st.files, 0u);
	EXPECT_EQ(st.written, 0u);
	EXPECT_EQ(st.errors, 0u);
}

TEST(TxnKeep, DeletionsPassTheHook)
{
	BlobDir d;
	Replica r(KeepParams(d));
	std::string pickle = Pickle("del"), blob = BlobBytes(5000, 3);
	uint64_t seq = 0;
	PrepareCommit(r, 7, 5, {{10, 0, InlineBlob(pickle, blob)}, {11, 0, Pickle("x")}}, seq);
	Store del10{10, r.Serial(10), ""};
	del10.deleted = true;
	Store del11{11, r.Serial(11), ""};
	del11.deleted = true;
	uint64_t tid = PrepareCommit(r, 7, 6, {del10, del11}, seq);
	EXPECT_EQ(r.Serial(10), tid);
	EXPECT_EQ(Load(r, 10), "<deleted>");
	EXPECT_EQ(Load(r, 11), "<deleted>");
	EXPECT_EQ(d.Stats().files, 1u); // the blob stays until a sweep
}

// The same entries, in the same order, on one replica.
void ApplyHistory(Replica &r)
{
	uint64_t seq = 0;
	PrepareCommit(r, 7, 5,
		      {{10, 0, InlineBlob(Pickle("a"), BlobBytes(20000, 10))},
		       {11, 0, Pickle("plain")},
		       {12, 0, InlineBlob(Pickle("b"), BlobBytes(0, 11))}},
		      seq);
	// a second revision with the same blob bytes (shared file), one with new bytes
	PrepareCommit(r, 7, 6,
		      {{10, r.Serial(10), InlineBlob(Pickle("a2"), BlobBytes(20000, 10))},
		       {12, r.Serial(12), InlineBlob(Pickle("b2"), BlobBytes(777, 12))}},
		      seq);
	Store del{11, r.Serial(11), ""};
	del.deleted = true;
	PrepareCommit(r, 7, 7, {del}, seq);
	// left prepared
	zap_txn_result v =
	    r.One(Prepare(Hdr{8, 1, kT0 + 100 * kSec, 1},
			  T(9, {{13, 0, InlineBlob(Pickle("p"), BlobBytes(4321, 13))}})));
	EXPECT_EQ(v.status, ZAP_TXN_OK);
}

TEST(TxnKeep, ReplicasWithTheirOwnBlobAreasReachTheSameState)
{
	BlobDir d1, d2;
	Replica r1(KeepParams(d1)), r2(KeepParams(d2));
	ApplyHistory(r1);
	ApplyHistory(r2);
	EXPECT_EQ(r1.StoreDigest(), r2.StoreDigest());
	EXPECT_EQ(r1.Digest(), r2.Digest());
	EXPECT_EQ(Load(r1, 10), Load(r2, 10));
	EXPECT_EQ(Load(r1, 12), Load(r2, 12));
	BlobStats s1 = d1.Stats(), s2 = d2.Stats();
	EXPECT_EQ(s1.files, 4u); // 20000, 0, 777, 4321 bytes
	EXPECT_EQ(s1.shared, 1u);
	EXPECT_EQ(s1.files, s2.files);
	EXPECT_EQ(s1.bytes, s2.bytes);
	EXPECT_NE(std::string(d1.Dir()), std::string(d2.Dir()));

	// and differ from a replica that keeps records whole
	Replica whole;
	ApplyHistory(whole);
	EXPECT_NE(whole.StoreDigest(), r1.StoreDigest());
	EXPECT_NE(whole.Digest(), r1.Digest());
}

// A keep hook that fails while fail is set, then behaves as zodb_record_keep.
struct Flaky {
	zap_blobs *b = nullptr;
	bool fail = true;
	int calls = 0;
};

int FlakyKeep(void *ctx, const void *rec, size_t len, void *out, size_t cap, size_t *out_len)
{
	Flaky *f = static_cast<Flaky *>(ctx);
	f->calls++;
	if (f->fail)
		return -EIO;
	return zodb_record_keep(f->b, rec, len, out, cap, out_len);
}

TEST(TxnKeep, AFailingHookLeavesTheEntryUnappliedUntilItWorks)
{
	BlobDir d, d_ok;
	Flaky f;
	f.b = d.b;
	zap_txn_params p = KeepParams(d);
	p.keep = FlakyKeep;
	p.keep_ctx = &f;
	Replica r(p), ok(KeepParams(d_ok));
	f.fail = false;
	r.One(OidReserve(Hdr{3, 1, kT0, 1}, 4));
	ok.One(OidReserve(Hdr{3, 1, kT0, 1}, 4));
	f.fail = true;

	std::string pickle = Pickle("io"), blob = BlobBytes(6000, 4);
	Bytes prep = Prepare(Hdr{7, 1, kT0, 1}, T(5, {{10, 0, InlineBlob(pickle, blob)}}));
	uint64_t before_index = zap_txn_sm_applied_index(r.sm);
	uint64_t before_digest = r.Digest(), before_store = r.StoreDigest();
	EXPECT_EQ(r.Apply(prep), -EIO);
	EXPECT_TRUE(r.out.empty());
	EXPECT_EQ(zap_txn_sm_applied_index(r.sm), before_index);
	EXPECT_EQ(r.Digest(), before_digest);
	EXPECT_EQ(r.StoreDigest(), before_store);
	EXPECT_EQ(r.Stats().prepared, 0u);
	EXPECT_EQ(r.Stats().sessions, 1u);
	EXPECT_GE(f.calls, 1);
	// a second try at the same index fails the same way
	r.index--;
	EXPECT_EQ(r.Apply(prep), -EIO);
	EXPECT_EQ(zap_txn_sm_applied_index(r.sm), before_index);

	// the disk is back: the same entry at the same index applies
	f.fail = false;
	r.index--;
	zap_txn_result v = r.One(prep);
	EXPECT_EQ(v.status, ZAP_TXN_OK);
	EXPECT_EQ(v.duplicate, 0);
	EXPECT_EQ(zap_txn_sm_applied_index(r.sm), before_index + 1);
	zap_txn_result c = r.One(Commit(Hdr{7, 2, kT0, 1}, 5));
	ASSERT_EQ(c.status, ZAP_TXN_OK);
	ExpectReference(Load(r, 10), pickle, blob, d);

	// the same as a replica whose hook never failed
	ok.One(prep);
	ok.One(Commit(Hdr{7, 2, kT0, 1}, 5));
	EXPECT_EQ(r.StoreDigest(), ok.StoreDigest());
	EXPECT_EQ(r.Digest(), ok.Digest());
}

TEST(TxnKeep, AFailingHookOnAOneshotChangesNothing)
{
	BlobDir d;
	Flaky f;
	f.b = d.b;
	zap_txn_params p = KeepParams(d);
	p.keep = FlakyKeep;
	p.keep_ctx = &f;
	Replica r(p);
	Bytes one = Oneshot(Hdr{7, 1, kT0, 1}, T(5, {{10, 0, InlineBlob(Pickle("o"), "bytes")}}));
	EXPECT_EQ(r.Apply(one), -EIO);
	EXPECT_EQ(zap_txn_sm_applied_index(r.sm), 0u);
	EXPECT_EQ(zap_store_last_tid(r.store), 0u);
	EXPECT_EQ(r.Stats().sessions, 0u);
	f.fail = false;
	EXPECT_EQ(r.One(one).status, ZAP_TXN_OK);
	EXPECT_NE(r.Serial(10), 0u);
}

Bytes Chunk(uint64_t id, const Bytes &whole, uint64_t off, uint64_t len)
{
	zap_entry e = Header(ZAP_ENTRY_PAYLOAD, Hdr{0, 0, kT0, 1});
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
	zap_blobs_hash(whole.data(), whole.size(), e.u.large.hash); // BLAKE2b-256 too
	return Encode(e);
}

TEST(TxnKeep, AFailingHookOnALargeEntryKeepsItsPayload)
{
	static_assert(ZAP_ENTRY_HASH_BYTES == ZAP_BLOB_HASH_BYTES, "same hash");
	BlobDir d;
	Flaky f;
	f.b = d.b;
	zap_txn_params p = KeepParams(d);
	p.keep = FlakyKeep;
	p.keep_ctx = &f;
	Replica r(p);
	f.fail = false;
	std::string pickle = Pickle("lg"), blob = BlobBytes(50000, 5);
	Bytes whole = Prepare(Hdr{7, 1, kT0, 1}, T(5, {{10, 0, InlineBlob(pickle, blob)}}));
	for (uint64_t off = 0; off < whole.size(); off += 16384)
		ASSERT_EQ(r.One(Chunk(3, whole, off, std::min<uint64_t>(16384, whole.size() - off)))
			      .status,
			  ZAP_TXN_OK);
	EXPECT_EQ(r.Stats().payloads, 1u);
	f.fail = true;
	Bytes large = Large(Hdr{7, 1, kT0, 1}, 3, whole);
	uint64_t idx = zap_txn_sm_applied_index(r.sm);
	EXPECT_EQ(r.Apply(large), -EIO);
	EXPECT_EQ(zap_txn_sm_applied_index(r.sm), idx);
	EXPECT_EQ(r.Stats().payloads, 1u); // put back for the next try
	EXPECT_EQ(r.Stats().payload_bytes, whole.size());
	f.fail = false;
	r.index--;
	EXPECT_EQ(r.One(large).status, ZAP_TXN_OK);
	EXPECT_EQ(r.Stats().payloads, 0u);
	EXPECT_EQ(r.Stats().large_applied, 1u);
	ASSERT_EQ(r.One(Commit(Hdr{7, 2, kT0, 1}, 5)).status, ZAP_TXN_OK);
	ExpectReference(Load(r, 10), pickle, blob, d);
}

TEST(TxnKeep, AFailingHookOnALargeEntryLeavesOtherPayloadsAsTheyWere)
{
	BlobDir d, d_ok;
	Flaky f;
	f.b = d.b;
	f.fail = false;
	zap_txn_params p = KeepParams(d);
	p.keep = FlakyKeep;
	p.keep_ctx = &f;
	Replica r(p), ok(KeepParams(d_ok));
	std::string pa = Pickle("A"), ba = BlobBytes(30000, 14);
	Bytes a = Prepare(Hdr{7, 1, kT0, 1}, T(5, {{10, 0, InlineBlob(pa, ba)}}));
	Bytes b = Prepare(Hdr{8, 1, kT0, 1},
			  T(6, {{11, 0, InlineBlob(Pickle("B"), BlobBytes(30000, 15))}}));
	// payload 3 (whole) arrived first, payload 4 (half) after it
	std::vector<Bytes> chunks;
	for (uint64_t off = 0; off < a.size(); off += 10000)
		chunks.push_back(Chunk(3, a, off, std::min<uint64_t>(10000, a.size() - off)));
	chunks.push_back(Chunk(4, b, 0, 10000));
	for (const Bytes &c : chunks) {
		EXPECT_EQ(r.One(c).status, ZAP_TXN_OK);
		EXPECT_EQ(ok.One(c).status, ZAP_TXN_OK);
	}
	ASSERT_EQ(r.Digest(), ok.Digest());
	uint64_t before = r.Digest();
	f.fail = true;
	Bytes large = Large(Hdr{7, 1, kT0, 1}, 3, a);
	EXPECT_EQ(r.Apply(large), -EIO);
	EXPECT_EQ(r.Stats().payloads, 2u);
	// "changes nothing": the state (payloads in arrival order) is as before
	EXPECT_EQ(r.Digest(), before);
	f.fail = false;
	r.index--;
	EXPECT_EQ(r.One(large).status, ZAP_TXN_OK);
	EXPECT_EQ(ok.One(large).status, ZAP_TXN_OK);
	EXPECT_EQ(r.Digest(), ok.Digest());
	EXPECT_EQ(r.Stats().payloads, 1u);
}

zap_txn_params SmallParams(BlobDir &d)
{
	zap_txn_params p = KeepParams(d);
	p.max_record_bytes = 4096;
	p.max_large_bytes = 64u << 20;
	return p;
}

TEST(TxnKeep, ABlobLargerThanTheRecordLimitCommitsBecauseWhatIsKeptIsSmall)
{
	BlobDir d;
	Replica r(SmallParams(d));
	std::string pickle = Pickle("big"), blob = BlobBytes(1u << 20, 6);
	std::string rec = InlineBlob(pickle, blob);
	ASSERT_GT(rec.size(), 4096u);
	uint64_t seq = 0;
	PrepareCommit(r, 7, 5, {{10, 0, rec}}, seq);
	std::string kept = Load(r, 10);
	EXPECT_LE(kept.size(), 4096u);
	ExpectReference(kept, pickle, blob, d);
	EXPECT_EQ(r.Stats().rejected, 0u);
	EXPECT_EQ(r.Stats().store_failures, 0u);
}

TEST(TxnKeep, APlainRecordLargerThanTheRecordLimitFailsTheVote)
{
	BlobDir d;
	Replica r(SmallParams(d));
	std::string big = Pickle("plain") + std::string((1u << 20) - 100, 'z');
	zap_txn_result v = r.One(Prepare(Hdr{7, 1, kT0, 1}, T(5, {{10, 0, big}})));
	EXPECT_EQ(v.status, ZAP_TXN_STORE_ERROR) << zap_txn_status_name(v.status);
	EXPECT_EQ(v.store_errno, -EMSGSIZE);
	EXPECT_EQ(v.client_id, 7u);
	EXPECT_EQ(v.txn_id, 5u);
	EXPECT_EQ(r.Stats().prepared, 0u);
	EXPECT_EQ(r.Stats().locks, 0u);
	EXPECT_EQ(r.Stats().store_failures, 1u);
	EXPECT_EQ(r.Stats().rejected, 0u);
	EXPECT_EQ(zap_txn_sm_applied_index(r.sm), r.index);
	// the oid is free: a small record for it prepares and commits
	uint64_t seq = 1;
	PrepareCommit(r, 7, 6, {{10, 0, Pickle("small")}}, seq);
	EXPECT_EQ(Load(r, 10), Pickle("small"));

	// records up to the limit are fine, one byte more is not
	std::string at = std::string(4096, 'y'), over = std::string(4097, 'y');
	EXPECT_EQ(r.One(Oneshot(Hdr{7, 10, kT0, 1}, T(20, {{20, 0, at}}))).status, ZAP_TXN_OK);
	zap_txn_result o = r.One(Oneshot(Hdr{7, 11, kT0, 1}, T(21, {{21, 0, over}})));
	EXPECT_EQ(o.status, ZAP_TXN_STORE_ERROR);
	EXPECT_EQ(o.store_errno, -EMSGSIZE);
	EXPECT_EQ(r.Serial(21), 0u);
}

TEST(TxnKeep, ABlobRecordWhosePickleIsTooLargeFailsTheVote)
{
	BlobDir d;
	Replica r(SmallParams(d));
	std::string pickle = Pickle("fat") + std::string(5000, 'p');
	zap_txn_result v =
	    r.One(Prepare(Hdr{7, 1, kT0, 1}, T(5, {{10, 0, InlineBlob(pickle, "blob")}})));
	EXPECT_EQ(v.status, ZAP_TXN_STORE_ERROR);
	EXPECT_EQ(v.store_errno, -EMSGSIZE);
	EXPECT_EQ(r.Stats().prepared, 0u);
}

TEST(TxnKeep, WithoutTheHookTheDecoderRefusesTheLargeRecord)
{
	zap_txn_params p = Replica::Params();
	p.max_record_bytes = 4096;
	p.max_large_bytes = 64u << 20;
	Replica r(p);
	std::string rec = InlineBlob(Pickle("big"), BlobBytes(1u << 20, 6));
	EXPECT_EQ(r.Apply(Prepare(Hdr{7, 1, kT0, 1}, T(5, {{10, 0, rec}}))), -EMSGSIZE);
	EXPECT_TRUE(r.out.empty());
	EXPECT_EQ(r.Stats().rejected, 1u);
	EXPECT_EQ(zap_txn_sm_applied_index(r.sm), r.index); // a NOP
	EXPECT_EQ(r.Stats().prepared, 0u);
}

// (oid, tid, bytes) of every record a walk reports.
using Seen = std::multiset<std::tuple<uint64_t, uint64_t, std::string>>;

int Collect(void *ctx, uint64_t oid, uint64_t tid, const void *data, uint64_t len)
{
	static_cast<Seen *>(ctx)->insert({oid, tid, std::string((const char *)data, len)});
	return 0;
}

int StopAtSecond(void *ctx, uint64_t, uint64_t, const void *, uint64_t)
{
	int *n = static_cast<int *>(ctx);
	return ++*n == 2 ? 42 : 0;
}

std::string Kept(const std::string &pickle, const std::string &blob)
{
	std::string rec = InlineBlob(pickle, blob);
	std::string out(rec.size() + ZAP_TXN_KEEP_EXTRA, '\0');
	size_t n = 0;
	// what the hook would make (writes the blob to a throwaway area)
	BlobDir tmp;
	EXPECT_EQ(zodb_record_keep(tmp.b, rec.data(), rec.size(), &out[0], out.size(), &n), 0);
	out.resize(n);
	return out;
}

TEST(TxnKeep, EachRecordOfTheStateMachineReportsPreparedAndWaitingRecords)
{
	BlobDir d;
	Replica r(KeepParams(d));
	Seen seen;
	EXPECT_EQ(zap_txn_sm_each_record(r.sm, Collect, &seen), 0);
	EXPECT_TRUE(seen.empty());

	uint64_t seq = 0;
	PrepareCommit(r, 3, 1, {{12, 0, Pickle("old")}}, seq);
	std::string pickle = Pickle("pre"), blob = BlobBytes(9000, 7);
	Store del{12, r.Serial(12), ""};
	del.deleted = true;
	zap_txn_result v = r.One(
	    Prepare(Hdr{7, 1, kT0, 1},
		    T(5, {{10, 0, InlineBlob(pickle, blob)}, {11, 0, Pickle("plain")}, del})));
	ASSERT_EQ(v.status, ZAP_TXN_OK);
	// another transaction on oid 11 waits behind txn 5's lock
	zap_txn_result w = r.One(Prepare(Hdr{8, 1, kT0, 1}, T(6, {{11, 0, Pickle("wait")}})));
	ASSERT_EQ(w.status, ZAP_TXN_WAITING);

	EXPECT_EQ(zap_txn_sm_each_record(r.sm, Collect, &seen), 0);
	Seen want = {
	    {10, 0, Kept(pickle, blob)}, {11, 0, Pickle("plain")}, {11, 0, Pickle("wait")}};
	EXPECT_EQ(seen, want);
	// the prepared record is the reference, and its blob is already held
	for (const auto &s : seen)
		if (std::get<0>(s) == 10)
			ExpectReference(std::get<2>(s), pickle, blob, d);
	int n = 0;
	EXPECT_EQ(zap_txn_sm_each_record(r.sm, StopAtSecond, &n), 42);
	EXPECT_EQ(n, 2);

	// once committed the store reports it; the waiter's vote is then decided
	// (a conflict: oid 11 moved on), so the state machine holds nothing
	ASSERT_EQ(r.Apply(Commit(Hdr{7, 2, kT0, 1}, 5)), 0);
	ASSERT_EQ(r.out.size(), 2u);
	zap_txn_result c = r.out[0].r;
	ASSERT_EQ(c.status, ZAP_TXN_OK);
	EXPECT_EQ(c.txn_id, 5u);
	EXPECT_EQ(r.out[1].r.txn_id, 6u);
	EXPECT_EQ(r.out[1].r.status, ZAP_TXN_CONFLICT);
	seen.clear();
	EXPECT_EQ(zap_txn_sm_each_record(r.sm, Collect, &seen), 0);
	EXPECT_TRUE(seen.empty());
	Seen in_store;
	EXPECT_EQ(zap_store_each_record(r.store, Collect, &in_store), 0);
	EXPECT_EQ(in_store.count({10, c.tid, Kept(pickle, blob)}), 1u);
	EXPECT_EQ(in_store.count({11, c.tid, Pickle("plain")}), 1u);
}

TEST(TxnKeep, EachRecordOfTheStoreVisitsEveryLiveRevision)
{
	BlobDir d;
	Replica r(KeepParams(d));
	Seen empty;
	EXPECT_EQ(zap_store_each_record(r.store, Collect, &empty), 0);
	EXPECT_TRUE(empty.empty());

	Seen want;
	uint64_t seq = 0, txn = 100;
	for (int i = 0; i < 5; i++) {
		std::string pickle = Pickle("r" + std::to_string(i)),
			    blob = BlobBytes(1000 + i, 20 + i);
		std::string other = Pickle("o" + std::to_string(i));
		uint64_t tid = PrepareCommit(
		    r, 7, ++txn,
		    {{30, r.Serial(30), InlineBlob(pickle, blob)}, {31, r.Serial(31), other}}, seq);
		want.insert({30, tid, Kept(pickle, blob)});
		want.insert({31, tid, other});
	}
	uint64_t tid = PrepareCommit(r, 7, ++txn, {{32, 0, Pickle("lone")}}, seq);
	want.insert({32, tid, Pickle("lone")});
	Store del{31, r.Serial(31), ""};
	del.deleted = true;
	PrepareCommit(r, 7, ++txn, {del}, seq); // the deletion itself is not reported

	Seen seen;
	EXPECT_EQ(zap_store_each_record(r.store, Collect, &seen), 0);
	EXPECT_EQ(seen, want);
	EXPECT_EQ(seen.size(), 11u);
	int n = 0;
	EXPECT_EQ(zap_store_each_record(r.store, StopAtSecond, &n), 42);
	EXPECT_EQ(n, 2);

	// every blob a live revision names is held: a sweep keeping them removes nothing
	zap_hashset keep{};
	for (const auto &s : seen) {
		zodb_blob zb;
		const std::string &rec = std::get<2>(s);
		if (zodb_record_blob(rec.data(), rec.size(), &zb) == 1 && zb.hash) {
			ASSERT_EQ(zap_hashset_add(&keep, zb.hash), 0);
		}
	}
	EXPECT_EQ(keep.n, 5u);
	auto in_set = [](void *ctx, const uint8_t *h) {
		return zap_hashset_has(static_cast<zap_hashset *>(ctx), h);
	};
	EXPECT_EQ(zap_blobs_sweep(d.b, in_set, &keep), 0);
	EXPECT_EQ(d.Stats().files, 5u);
	zap_hashset_free(&keep);
}

} // namespace
