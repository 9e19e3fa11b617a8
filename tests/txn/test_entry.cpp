// SPDX-License-Identifier: Apache-2.0
// Tests of the log-entry encoding: layout, round trips, strict decoding.
#include "txn_test_util.h"

#include <cerrno>
#include <cstring>
#include <memory>
#include <random>

using namespace zaptest;

namespace
{

struct DecoderDeleter {
	void operator()(zap_entry_decoder *d) const
	{
		zap_entry_decoder_destroy(d);
	}
};
using DecoderPtr = std::unique_ptr<zap_entry_decoder, DecoderDeleter>;

DecoderPtr MakeDecoder(uint64_t max_record = 0, uint32_t max_objects = 0, uint32_t max_text = 0)
{
	zap_entry_limits lim = {max_record, max_objects, max_text};
	zap_entry_decoder *d = nullptr;
	EXPECT_EQ(zap_entry_decoder_create(&lim, &d), 0);
	return DecoderPtr(d);
}

Txn SampleTxn()
{
	Txn t;
	t.txn_id = 0x1122334455667788ull;
	t.user = "alice";
	t.desc = "edit page";
	t.ext = std::string("\x80\x03}q\x00.", 6);
	t.stores = {{0, 0, "root"}, {7, 0x0331620000000001ull, "seven"}, {9, 42, "", true}};
	t.reads = {{3, 0x33}, {7, 0x0331620000000001ull}};
	return t;
}

int Decode(zap_entry_decoder *d, const Bytes &b, zap_entry *e)
{
	return zap_entry_decode(d, b.data(), b.size(), e);
}

std::vector<Bytes> OneOfEachType()
{
	Hdr h{5, 9, 1700000000000000000ull, 2};
	return {Nop(123),	   Prepare(h, SampleTxn()),	  Commit(h, 77),
		Abort(h, 78),	   Oneshot(h, SampleTxn()),	  OidReserve(h, 100),
		LeaseExpire(5, 3), Pack(h, 0x0331620000000001ull)};
}

TEST(Entry, HeaderIsLittleEndianAtFixedOffsets)
{
	Bytes b =
	    Commit(Hdr{0x0102030405060708ull, 0x1112131415161718ull, 0x2122232425262728ull, 0x3132},
		   0x4142434445464748ull);
	ASSERT_EQ(b.size(), (size_t)ZAP_ENTRY_HEADER_BYTES + 8);
	const uint8_t want[] = {1,    2,    0x32, 0x31, 0,    0,    0,	  0,	0x08, 0x07,
				0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x18, 0x17, 0x16, 0x15,
				0x14, 0x13, 0x12, 0x11, 0x28, 0x27, 0x26, 0x25, 0x24, 0x23,
				0x22, 0x21, 0x48, 0x47, 0x46, 0x45, 0x44, 0x43, 0x42, 0x41};
	EXPECT_EQ(0, memcmp(b.data(), want, sizeof(want)));
}

TEST(Entry, PrepareBodyLayoutIsDocumented)
{
	Txn t;
	t.txn_id = 2;
	t.user = "u";
	t.desc = "";
	t.ext = "";
	t.stores = {{5, 6, "ab"}};
	t.reads = {{8, 9}};
	Bytes b = Prepare(Hdr{}, t);
	ASSERT_EQ(b.size(), 32u + 28 + 1 + 28 + 2 + 16);
	const uint8_t *p = b.data() + 32;
	EXPECT_EQ(p[0], 2);    // txn id
	EXPECT_EQ(p[8], 1);    // user length
	EXPECT_EQ(p[20], 1);   // n_stores
	EXPECT_EQ(p[24], 1);   // n_reads
	EXPECT_EQ(p[28], 'u'); // user
	EXPECT_EQ(p[29], 5);   // oid
	EXPECT_EQ(p[37], 6);   // base serial
	EXPECT_EQ(p[45], 0);   // flags
	EXPECT_EQ(p[49], 2);   // record length
	EXPECT_EQ(p[57], 'a'); // record
	EXPECT_EQ(p[59], 8);   // read oid
	EXPECT_EQ(p[67], 9);   // read serial
}

TEST(Entry, EveryTypeRoundTrips)
{
	auto d = MakeDecoder();
	for (const Bytes &b : OneOfEachType()) {
		zap_entry e;
		ASSERT_EQ(Decode(d.get(), b, &e), 0) << zap_entry_type_name(b[1]);
		EXPECT_EQ(Encode(e), b) << zap_entry_type_name(b[1]);
	}
}

TEST(Entry, DecodedPrepareHasAllFieldsAndPointsIntoBuffer)
{
	auto d = MakeDecoder();
	Bytes b = Prepare(Hdr{5, 9, 1234, 2}, SampleTxn());
	zap_entry e;
	ASSERT_EQ(Decode(d.get(), b, &e), 0);
	EXPECT_EQ(e.version, ZAP_ENTRY_VERSION);
	EXPECT_EQ(e.type, ZAP_ENTRY_PREPARE);
	EXPECT_EQ(e.node, 2);
	EXPECT_EQ(e.client_id, 5u);
	EXPECT_EQ(e.seq, 9u);
	EXPECT_EQ(e.clock_ns, 1234u);
	const zap_entry_txn &t = e.u.txn;
	EXPECT_EQ(t.txn_id, 0x1122334455667788ull);
	EXPECT_EQ(std::string((const char *)t.text.user, t.text.user_len), "alice");
	EXPECT_EQ(std::string((const char *)t.text.description, t.text.description_len),
		  "edit page");
	EXPECT_EQ(t.text.extension_len, 6u);
	ASSERT_EQ(t.n_stores, 3u);
	EXPECT_EQ(t.stores[1].oid, 7u);
	EXPECT_EQ(t.stores[1].base_serial, 0x0331620000000001ull);
	EXPECT_EQ(std::string((const char *)t.stores[1].data, t.stores[1].len), "seven");
	EXPECT_EQ(t.stores[2].deleted, 1);
	EXPECT_GE((const uint8_t *)t.stores[1].data, b.data());
	EXPECT_LT((const uint8_t *)t.stores[1].data, b.data() + b.size());
	ASSERT_EQ(t.n_reads, 2u);
	EXPECT_EQ(t.reads[0].oid, 3u);
	EXPECT_EQ(t.reads[0].serial, 0x33u);
}

TEST(Entry, RecordLargerThanAPacketRoundTrips)
{
	auto d = MakeDecoder();
	Txn t;
	t.stores = {{1, 0, std::string(3 << 20, 'x')}, {2, 0, std::string(70000, 'y')}};
	Bytes b = Oneshot(Hdr{1, 1, 1, 1}, t);
	zap_entry e;
	ASSERT_EQ(Decode(d.get(), b, &e), 0);
	EXPECT_EQ(e.u.txn.stores[0].len, 3u << 20);
	EXPECT_EQ(Encode(e), b);
}

TEST(Entry, TruncatedAtEveryByteIsBadMessage)
{
	auto d = MakeDecoder();
	for (const Bytes &b : OneOfEachType()) {
		for (size_t n = 0; n < b.size(); n++) {
			zap_entry e;
			ASSERT_EQ(zap_entry_decode(d.get(), b.data(), n, &e), -EBADMSG)
			    << zap_entry_type_name(b[1]) << " at " << n;
		}
	}
}

TEST(Entry, TrailingByteIsBadMessage)
{
	auto d = MakeDecoder();
	for (Bytes b : OneOfEachType()) {
		b.push_back(0);
		zap_entry e;
		EXPECT_EQ(Decode(d.get(), b, &e), -EBADMSG) << zap_entry_type_name(b[1]);
	}
}

TEST(Entry, UnknownVersionIsNotSupported)
{
	auto d = MakeDecoder();
	Bytes b = Commit(Hdr{1, 1, 1, 1}, 5);
	b[0] = 2;
	zap_entry e;
	EXPECT_EQ(Decode(d.get(), b, &e), -ENOTSUP);
	b[0] = 0;
	EXPECT_EQ(Decode(d.get(), b, &e), -ENOTSUP);
}

TEST(Entry, UnknownTypeIsNotSupported)
{
	auto d = MakeDecoder();
	Bytes b = Commit(Hdr{1, 1, 1, 1}, 5);
	zap_entry e;
	for (int t : {(int)ZAP_ENTRY_TYPE_COUNT, 10, 100, 255}) {
		b[1] = (uint8_t)t;
		EXPECT_EQ(Decode(d.get(), b, &e), -ENOTSUP) << t;
	}
	zap_entry bad;
	memset(&bad, 0, sizeof(bad));
	bad.type = ZAP_ENTRY_TYPE_COUNT;
	EXPECT_EQ(zap_entry_size(&bad), 0u);
	uint8_t buf[64];
	EXPECT_EQ(zap_entry_encode(&bad, buf, sizeof(buf)), -EINVAL);
}

TEST(Entry, OversizedRecordIsMsgSize)
{
	auto d = MakeDecoder(1000);
	Txn t;
	t.stores = {{1, 0, std::string(1000, 'a')}};
	zap_entry e;
	EXPECT_EQ(Decode(d.get(), Prepare(Hdr{1, 1, 1, 1}, t), &e), 0);
	t.stores = {{1, 0, std::string(1001, 'a')}};
	EXPECT_EQ(Decode(d.get(), Prepare(Hdr{1, 1, 1, 1}, t), &e), -EMSGSIZE);
}

TEST(Entry, OversizedTextIsMsgSize)
{
	auto d = MakeDecoder(0, 0, 16);
	Txn t;
	t.stores = {{1, 0, "a"}};
	t.ext = std::string(17, 'e');
	zap_entry e;
	EXPECT_EQ(Decode(d.get(), Prepare(Hdr{1, 1, 1, 1}, t), &e), -EMSGSIZE);
}

TEST(Entry, TooManyObjectsIsTooBig)
{
	auto d = MakeDecoder(0, 4);
	Txn t;
	t.stores = {{1, 0, "a"}, {2, 0, "b"}, {3, 0, "c"}};
	t.reads = {{4, 1}};
	zap_entry e;
	EXPECT_EQ(Decode(d.get(), Prepare(Hdr{1, 1, 1, 1}, t), &e), 0);
	t.reads.push_back({5, 1});
	EXPECT_EQ(Decode(d.get(), Prepare(Hdr{1, 1, 1, 1}, t), &e), -E2BIG);
}

TEST(Entry, CountsThatDoNotFitTheLengthAreBadMessage)
{
	auto d = MakeDecoder();
	Txn t;
	t.stores = {{1, 0, "a"}};
	Bytes b = Prepare(Hdr{1, 1, 1, 1}, t);
	zap_entry e;
	b[32 + 20] = 2; // n_stores = 2
	EXPECT_EQ(Decode(d.get(), b, &e), -EBADMSG);
	b[32 + 20] = 1;
	b[32 + 24] = 1; // n_reads = 1
	EXPECT_EQ(Decode(d.get(), b, &e), -EBADMSG);
	b[32 + 24] = 0;
	b[32 + 8] = 200; // user length beyond the entry
	EXPECT_EQ(Decode(d.get(), b, &e), -EBADMSG);
}

TEST(Entry, RecordLengthBeyondEntryIsBadMessage)
{
	auto d = MakeDecoder();
	Txn t;
	t.user = t.desc = "";
	t.stores = {{1, 0, "abcd"}};
	Bytes b = Prepare(Hdr{1, 1, 1, 1}, t);
	zap_entry e;
	b[32 + 28 + 20] = 5; // record length 5, 4 bytes present
	EXPECT_EQ(Decode(d.get(), b, &e), -EBADMSG);
	b[32 + 28 + 20] = 3; // one trailing byte
	EXPECT_EQ(Decode(d.get(), b, &e), -EBADMSG);
}

TEST(Entry, BadOidIsInvalid)
{
	auto d = MakeDecoder();
	zap_entry e;
	Txn t;
	t.stores = {{UINT64_MAX, 0, "a"}};
	EXPECT_EQ(Decode(d.get(), Prepare(Hdr{1, 1, 1, 1}, t), &e), -EINVAL);
	t.stores = {{1, 0, "a"}};
	t.reads = {{UINT64_MAX, 1}};
	EXPECT_EQ(Decode(d.get(), Prepare(Hdr{1, 1, 1, 1}, t), &e), -EINVAL);
}

TEST(Entry, DuplicateStoredOidIsInvalid)
{
	auto d = MakeDecoder();
	zap_entry e;
	Txn t;
	t.stores = {{4, 0, "a"}, {5, 0, "b"}, {4, 0, "c"}};
	EXPECT_EQ(Decode(d.get(), Oneshot(Hdr{1, 1, 1, 1}, t), &e), -EINVAL);
}

TEST(Entry, DuplicateReadOidIsInvalid)
{
	auto d = MakeDecoder();
	zap_entry e;
	Txn t;
	t.stores = {{4, 0, "a"}};
	t.reads = {{6, 1}, {6, 1}};
	EXPECT_EQ(Decode(d.get(), Prepare(Hdr{1, 1, 1, 1}, t), &e), -EINVAL);
}

TEST(Entry, OidBothStoredAndReadIsAllowed)
{
	auto d = MakeDecoder();
	zap_entry e;
	Txn t;
	t.stores = {{4, 3, "a"}};
	t.reads = {{4, 3}};
	EXPECT_EQ(Decode(d.get(), Prepare(Hdr{1, 1, 1, 1}, t), &e), 0);
}

TEST(Entry, ManyDistinctOidsAreNotDuplicates)
{
	auto d = MakeDecoder();
	zap_entry e;
	Txn t;
	for (uint64_t i = 0; i < 5000; i++)
		t.stores.push_back({i * 4096, 0, ""});
	for (uint64_t i = 0; i < 5000; i++)
		t.reads.push_back({i * 4096 + 1, 1});
	for (int rep = 0; rep < 3; rep++)
		EXPECT_EQ(Decode(d.get(), Prepare(Hdr{1, 1, 1, 1}, t), &e), 0);
}

TEST(Entry, BadFieldsAreInvalid)
{
	auto d = MakeDecoder();
	zap_entry e;
	Txn t;
	t.stores = {{4, 0, "a"}};
	Bytes b = Prepare(Hdr{1, 1, 1, 1}, t);
	Bytes r = b;
	r[4] = 1; // reserved header bits
	EXPECT_EQ(Decode(d.get(), r, &e), -EINVAL);
	r = b;
	memset(&r[32], 0, 8); // txn id 0
	EXPECT_EQ(Decode(d.get(), r, &e), -EINVAL);
	r = b;
	r[32 + 28 + 8 + 16] = 2; // unknown store flag (after "user" + "desc")
	EXPECT_EQ(Decode(d.get(), r, &e), -EINVAL);
	t.stores = {{4, 0, "", true}}; // deletion without base serial
	EXPECT_EQ(Decode(d.get(), Prepare(Hdr{1, 1, 1, 1}, t), &e), -EINVAL);
	t.stores = {{4, 5, "x", true}}; // deletion with bytes
	EXPECT_EQ(Decode(d.get(), Prepare(Hdr{1, 1, 1, 1}, t), &e), -EINVAL);
	EXPECT_EQ(Decode(d.get(), Commit(Hdr{1, 1, 1, 1}, 0), &e), -EINVAL);
	EXPECT_EQ(Decode(d.get(), OidReserve(Hdr{1, 1, 1, 1}, 0), &e), -EINVAL);
	EXPECT_EQ(Decode(d.get(), OidReserve(Hdr{1, 1, 1, 1}, ZAP_ENTRY_MAX_OID_RESERVE + 1), &e),
		  -EINVAL);
	EXPECT_EQ(Decode(d.get(), OidReserve(Hdr{1, 1, 1, 1}, ZAP_ENTRY_MAX_OID_RESERVE), &e), 0);
	Bytes n = Nop();
	n[8] = 1; // a session on an internal entry
	EXPECT_EQ(Decode(d.get(), n, &e), -EINVAL);
	Bytes l = LeaseExpire(1, 2);
	l[8] = 1;
	EXPECT_EQ(Decode(d.get(), l, &e), -EINVAL);
}

TEST(Entry, PackBodyLayoutIsDocumented)
{
	Bytes b = Pack(Hdr{5, 9, 1234, 2}, 0x0102030405060708ull);
	ASSERT_EQ(b.size(), (size_t)ZAP_ENTRY_HEADER_BYTES + 8);
	EXPECT_EQ(b[1], 7); // type PACK
	const uint8_t want[] = {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
	EXPECT_EQ(0, memcmp(b.data() + 32, want, sizeof(want)));
	auto d = MakeDecoder();
	zap_entry e;
	ASSERT_EQ(Decode(d.get(), b, &e), 0);
	EXPECT_EQ(e.type, ZAP_ENTRY_PACK);
	EXPECT_EQ(e.client_id, 5u);
	EXPECT_EQ(e.seq, 9u);
	EXPECT_EQ(e.u.pack_tid, 0x0102030405060708ull);
	EXPECT_STREQ(zap_entry_type_name(ZAP_ENTRY_PACK), "PACK");
	// without a session (a node's own request)
	EXPECT_EQ(Decode(d.get(), Pack(Hdr{0, 0, 1, 1}, 1), &e), 0);
}

TEST(Entry, MalformedPackIsRejected)
{
	auto d = MakeDecoder();
	zap_entry e;
	Bytes good = Pack(Hdr{1, 1, 1, 1}, 0x0331620000000001ull);
	EXPECT_EQ(Decode(d.get(), Pack(Hdr{1, 1, 1, 1}, 0), &e), -EINVAL); // pack tid 0
	Bytes r = good;
	r[5] = 1; // reserved header bits
	EXPECT_EQ(Decode(d.get(), r, &e), -EINVAL);
	r = good;
	r.pop_back(); // 7-byte body
	EXPECT_EQ(Decode(d.get(), r, &e), -EBADMSG);
	r = good;
	r.push_back(0); // 9-byte body
	EXPECT_EQ(Decode(d.get(), r, &e), -EBADMSG);
	r.assign(good.begin(), good.begin() + ZAP_ENTRY_HEADER_BYTES); // no body
	EXPECT_EQ(Decode(d.get(), r, &e), -EBADMSG);
	r = good;
	r[0] = 2; // another version
	EXPECT_EQ(Decode(d.get(), r, &e), -ENOTSUP);
}

TEST(Entry, CommitAskingForATidCarriesItAfterTheTxnId)
{
	auto d = MakeDecoder();
	zap_entry e;
	Bytes plain = Commit(Hdr{1, 2, 3, 1}, 7);
	ASSERT_EQ(plain.size(), (size_t)ZAP_ENTRY_HEADER_BYTES + 8);
	ASSERT_EQ(Decode(d.get(), plain, &e), 0);
	EXPECT_EQ(e.u.txn_id, 7u);
	EXPECT_EQ(e.commit_tid, 0u);
	Bytes b = CommitAt(Hdr{1, 2, 3, 1}, 7, 0x0102030405060708ull);
	ASSERT_EQ(b.size(), (size_t)ZAP_ENTRY_HEADER_BYTES + 16);
	const uint8_t want[] = {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
	EXPECT_EQ(0, memcmp(b.data() + 40, want, sizeof(want)));
	ASSERT_EQ(Decode(d.get(), b, &e), 0);
	EXPECT_EQ(e.type, ZAP_ENTRY_COMMIT);
	EXPECT_EQ(e.u.txn_id, 7u);
	EXPECT_EQ(e.commit_tid, 0x0102030405060708ull);
	// a 16-byte body whose tid is 0 is invalid; other lengths are malformed
	Bytes r = b;
	memset(r.data() + 40, 0, 8);
	EXPECT_EQ(Decode(d.get(), r, &e), -EINVAL);
	r = b;
	r.pop_back();
	EXPECT_EQ(Decode(d.get(), r, &e), -EBADMSG);
	r = b;
	r.push_back(0);
	EXPECT_EQ(Decode(d.get(), r, &e), -EBADMSG);
	// an ABORT never carries a tid
	r = Abort(Hdr{1, 2, 3, 1}, 7);
	r.insert(r.end(), 8, 1);
	EXPECT_EQ(Decode(d.get(), r, &e), -EBADMSG);
}

TEST(Entry, EncodeIntoSmallBufferIsNoSpace)
{
	Bytes b = Prepare(Hdr{1, 1, 1, 1}, SampleTxn());
	auto d = MakeDecoder();
	zap_entry e;
	ASSERT_EQ(Decode(d.get(), b, &e), 0);
	Bytes out(b.size() - 1);
	EXPECT_EQ(zap_entry_encode(&e, out.data(), out.size()), -ENOSPC);
}

TEST(Entry, MutatedEntriesDecodeAndReencodeOrAreRejected)
{
	uint64_t seed = std::random_device{}();
	if (const char *s = getenv("ZAP_TEST_SEED"))
		seed = strtoull(s, nullptr, 0);
	printf("seed %llu (set ZAP_TEST_SEED to replay)\n", (unsigned long long)seed);
	std::mt19937_64 rng(seed);
	auto d = MakeDecoder(4096, 64, 64);
	std::vector<Bytes> base = OneOfEachType();
	Txn small;
	small.stores = {{1, 0, "abc"}, {2, 5, "", true}};
	small.reads = {{3, 4}};
	base.push_back(Prepare(Hdr{1, 2, 3, 4}, small));
	const int valid_codes[] = {0, -EBADMSG, -ENOTSUP, -EMSGSIZE, -E2BIG, -EINVAL};
	int accepted = 0, rejected = 0;
	for (int i = 0; i < 20000; i++) {
		Bytes b = base[rng() % base.size()];
		int muts = 1 + (int)(rng() % 4);
		for (int m = 0; m < muts; m++) {
			switch (rng() % 4) {
			case 0: // flip a byte
				if (!b.empty())
					b[rng() % b.size()] ^= (uint8_t)(1 + rng() % 255);
				break;
			case 1: // truncate
				b.resize(rng() % (b.size() + 1));
				break;
			case 2: // insert a byte
				b.insert(b.begin() + (long)(rng() % (b.size() + 1)),
					 (uint8_t)rng());
				break;
			default: // small counts and lengths are the interesting values
				if (b.size() > 40)
					b[32 + rng() % 8] = (uint8_t)(rng() % 4);
				break;
			}
		}
		// exact-size heap copy so ASan sees any read past the end
		std::unique_ptr<uint8_t[]> copy(new uint8_t[b.size() + 1]);
		memcpy(copy.get(), b.data(), b.size());
		zap_entry e;
		int rc = zap_entry_decode(d.get(), copy.get(), b.size(), &e);
		bool known = false;
		for (int c : valid_codes)
			known |= rc == c;
		ASSERT_TRUE(known) << "rc " << rc << " seed " << seed << " iter " << i;
		if (rc == 0) {
			accepted++;
			ASSERT_EQ(Encode(e), b) << "seed " << seed << " iter " << i;
		} else {
			rejected++;
		}
	}
	printf("accepted %d rejected %d\n", accepted, rejected);
	EXPECT_GT(accepted, 0);
	EXPECT_GT(rejected, 0);
}

} // namespace

static Bytes EncodeEntry(const zap_entry &e)
{
	Bytes b(zap_entry_size(&e));
	EXPECT_GT(b.size(), 0u);
	EXPECT_EQ(zap_entry_encode(&e, b.data(), b.size()), (ssize_t)b.size());
	return b;
}

TEST(Entry, PayloadRoundTripsAndIsChecked)
{
	auto d = MakeDecoder();
	const char bytes[] = "chunk";
	zap_entry e{};
	e.type = ZAP_ENTRY_PAYLOAD;
	e.node = 2;
	e.clock_ns = 7;
	e.u.payload = {9, 100, 200, bytes, 5};
	Bytes b = EncodeEntry(e);
	ASSERT_EQ(b.size(), (size_t)ZAP_ENTRY_HEADER_BYTES + ZAP_ENTRY_PAYLOAD_FIXED_BYTES + 5);
	zap_entry o;
	ASSERT_EQ(Decode(d.get(), b, &o), 0);
	EXPECT_EQ(o.type, ZAP_ENTRY_PAYLOAD);
	EXPECT_EQ(o.u.payload.id, 9u);
	EXPECT_EQ(o.u.payload.offset, 100u);
	EXPECT_EQ(o.u.payload.total, 200u);
	EXPECT_EQ(o.u.payload.len, 5u);
	EXPECT_EQ(0, memcmp(o.u.payload.data, "chunk", 5));
	EXPECT_EQ(Encode(o), b);
	EXPECT_STREQ(zap_entry_type_name(ZAP_ENTRY_PAYLOAD), "PAYLOAD");

	zap_entry x = e;
	x.u.payload.offset = 196; // past its total
	EXPECT_EQ(Decode(d.get(), EncodeEntry(x), &o), -EINVAL);
	x = e;
	x.u.payload.id = 0;
	EXPECT_EQ(Decode(d.get(), EncodeEntry(x), &o), -EINVAL);
	x = e;
	x.client_id = 3; // chunks have no session
	EXPECT_EQ(Decode(d.get(), EncodeEntry(x), &o), -EINVAL);
	x = e;
	x.u.payload.len = 0; // empty chunk: no bytes after the fixed part
	EXPECT_EQ(Decode(d.get(), EncodeEntry(x), &o), -EBADMSG);
	x = e;
	x.u.payload.total = ZAP_ENTRY_DEFAULT_MAX_LARGE_BYTES + 1;
	EXPECT_EQ(Decode(d.get(), EncodeEntry(x), &o), -EMSGSIZE);
}

TEST(Entry, LargeRoundTripsAndIsChecked)
{
	auto d = MakeDecoder();
	zap_entry e{};
	e.type = ZAP_ENTRY_LARGE;
	e.node = 1;
	e.client_id = 5;
	e.seq = 6;
	e.u.large.id = 11;
	e.u.large.total = 4096;
	for (unsigned i = 0; i < ZAP_ENTRY_HASH_BYTES; i++)
		e.u.large.hash[i] = (uint8_t)i;
	Bytes b = EncodeEntry(e);
	ASSERT_EQ(b.size(), (size_t)ZAP_ENTRY_HEADER_BYTES + ZAP_ENTRY_LARGE_BYTES);
	zap_entry o;
	ASSERT_EQ(Decode(d.get(), b, &o), 0);
	EXPECT_EQ(o.u.large.id, 11u);
	EXPECT_EQ(o.u.large.total, 4096u);
	EXPECT_EQ(0, memcmp(o.u.large.hash, e.u.large.hash, ZAP_ENTRY_HASH_BYTES));
	EXPECT_EQ(Encode(o), b);
	zap_entry x = e;
	x.client_id = 0; // LARGE answers a request
	EXPECT_EQ(Decode(d.get(), EncodeEntry(x), &o), -EINVAL);
	x = e;
	x.u.large.total = 8; // shorter than any entry
	EXPECT_EQ(Decode(d.get(), EncodeEntry(x), &o), -EINVAL);
	Bytes t = b;
	t.pop_back();
	EXPECT_EQ(Decode(d.get(), t, &o), -EBADMSG);
}
