// SPDX-License-Identifier: Apache-2.0
// Unit tests of the ZEO message codec (dataplane/zeo/zeo_codec.c): every
// byte-exact example of a ZEO 5 exchange decoded and written again,
// server replies built with the writer calls, seeded random round trips in
// both encodings (ZEO_CODEC_SEED=N replays), refused opcodes, truncation at
// every prefix, the nesting / value / int bounds, memo handling and helpers.
#include <gtest/gtest.h>

#include <dirent.h>

#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "zeo/zeo_codec.h"

namespace
{

using Bytes = std::vector<uint8_t>;

const zeo_enc kPk = ZEO_ENC_PICKLE;
const zeo_enc kMp = ZEO_ENC_MSGPACK;

// Hex pairs, whitespace ignored; <"text"> inserts text as ASCII.
Bytes H(const std::string &hex)
{
	Bytes out;
	for (size_t i = 0; i < hex.size();) {
		char c = hex[i];
		if (c == ' ' || c == '\n' || c == '\t') {
			i++;
		} else if (c == '<') {
			size_t end = hex.find("\">", i);
			out.insert(out.end(), hex.begin() + (long)i + 2, hex.begin() + (long)end);
			i = end + 2;
		} else {
			out.push_back((uint8_t)std::stoul(hex.substr(i, 2), nullptr, 16));
			i += 2;
		}
	}
	return out;
}

// A complete frame: the 4-byte big-endian length must match; returns the payload.
Bytes Frame(const std::string &hex)
{
	Bytes f = H(hex);
	EXPECT_GE(f.size(), 4u);
	uint32_t n = (uint32_t)f[0] << 24 | (uint32_t)f[1] << 16 | (uint32_t)f[2] << 8 | f[3];
	EXPECT_EQ(n, f.size() - 4) << hex;
	return Bytes(f.begin() + 4, f.end());
}

std::string Hex(const uint8_t *p, size_t n)
{
	std::string s;
	char t[4];
	for (size_t i = 0; i < n; i++) {
		snprintf(t, sizeof(t), "%02x ", p[i]);
		s += t;
	}
	return s;
}

std::string Hex(const Bytes &b)
{
	return Hex(b.data(), b.size());
}

// One decode with its own arena.
struct Dec {
	Bytes in;
	zeo_arena a;
	zeo_val *v = nullptr;
	const char *err = nullptr;
	int rc = 0;
	Dec()
	{
		zeo_arena_init(&a);
	}
	Dec(zeo_enc enc, const Bytes &b)
	{
		zeo_arena_init(&a);
		run(enc, b);
	}
	~Dec()
	{
		zeo_arena_free(&a);
	}
	Dec(const Dec &) = delete;
	Dec &operator=(const Dec &) = delete;
	// Decodes a copy of @p b, kept as long as the values point into it.
	int run(zeo_enc enc, const Bytes &b)
	{
		zeo_arena_reset(&a);
		in = b;
		err = nullptr;
		rc = zeo_decode(enc, in.data(), in.size(), &a, &v, &err);
		return rc;
	}
	const zeo_val &operator[](uint32_t i) const
	{
		return v->seq.items[i];
	}
};

// A writer buffer.
struct Buf {
	zeo_buf b;
	Buf()
	{
		zeo_buf_init(&b);
	}
	~Buf()
	{
		zeo_buf_free(&b);
	}
	Buf(const Buf &) = delete;
	Buf &operator=(const Buf &) = delete;
	Bytes bytes() const
	{
		EXPECT_FALSE(b.oom);
		return Bytes(b.p, b.p + b.len);
	}
};

Bytes Reencode(zeo_enc enc, const zeo_val *v)
{
	Buf b;
	zeo_w_begin(&b.b, enc);
	zeo_w_val(&b.b, enc, v);
	zeo_w_end(&b.b, enc);
	return b.bytes();
}

std::string Str(const zeo_val &v)
{
	return std::string((const char *)v.s.p, v.s.len);
}

uint64_t U64(const zeo_val &v)
{
	uint64_t x = 0;
	EXPECT_TRUE(zeo_val_u64be(&v, &x));
	return x;
}

int64_t I64(const zeo_val &v)
{
	int64_t x = 0;
	EXPECT_TRUE(zeo_val_int(&v, &x));
	return x;
}

constexpr uint64_t kT1 = 0x03f84a5000000000ull;
constexpr uint64_t kT2 = 0x03f84a5080000000ull;
constexpr int64_t kTxn = 140244309122640;

// ---------------------------------------------------------------- section 9, pickle

const char *const kRegisterFrame =
    "00 00 00 1e 80 03 28 4b 01 89 58 08 00 00 00 72 65 67 69 73 74 65 72 58"
    "01 00 00 00 31 4b 00 86 74 2e";
const char *const kRegisterReplyFrame =
    "00 00 00 1e 80 03 28 4b 01 4b 00 58 06 00 00 00 2e 72 65 70 6c 79 43 08"
    "03 f8 4a 50 00 00 00 00 74 2e";
const char *const kGetInfoFrame =
    "00 00 00 16 80 03 28 4b 02 89 58 08 00 00 00 67 65 74 5f 69 6e 66 6f 29 74 2e";
const char *const kGetInfoReplyFrame =
    "00 00 00 ac 80 03 28 4b 02 4b 00 58 06 00 00 00 2e 72 65 70 6c 79 7d 28"
    "58 06 00 00 00 6c 65 6e 67 74 68 4b 01 58 04 00 00 00 73 69 7a 65 4d 00"
    "10 58 04 00 00 00 6e 61 6d 65 58 03 00 00 00 7a 61 70 58 0c 00 00 00 73"
    "75 70 70 6f 72 74 73 55 6e 64 6f 89 58 18 00 00 00 73 75 70 70 6f 72 74"
    "73 5f 72 65 63 6f 72 64 5f 69 74 65 72 6e 65 78 74 89 58 0a 00 00 00 69"
    "6e 74 65 72 66 61 63 65 73 58 0f 00 00 00 5a 4f 44 42 2e 69 6e 74 65 72"
    "66 61 63 65 73 58 11 00 00 00 49 53 74 6f 72 61 67 65 49 74 65 72 61 74"
    "69 6f 6e 86 85 75 74 2e";
const char *const kLastTransactionFrame =
    "00 00 00 1d 80 03 28 4b 03 89 58 0f 00 00 00 6c 61 73 74 54 72 61 6e 73"
    "61 63 74 69 6f 6e 29 74 2e";
const char *const kLastTransactionReplyFrame =
    "00 00 00 1e 80 03 28 4b 03 4b 00 58 06 00 00 00 2e 72 65 70 6c 79 43 08"
    "03 f8 4a 50 00 00 00 00 74 2e";
const char *const kLoadBeforeFrame =
    "00 00 00 3f 80 03 28 43 08 00 00 00 00 00 00 00 00 43 08 03 f8 4a 50 00"
    "00 00 01 86 89 58 0a 00 00 00 6c 6f 61 64 42 65 66 6f 72 65 43 08 00 00"
    "00 00 00 00 00 00 43 08 03 f8 4a 50 00 00 00 01 86 74 2e";
const char *const kD1 = "80 03 63 70 65 72 73 69 73 74 65 6e 74 2e 6d 61 70 70 69 6e 67 0a 50 65"
			"72 73 69 73 74 65 6e 74 4d 61 70 70 69 6e 67 0a 71 00 2e 80 03 7d 71 01"
			"58 04 00 00 00 64 61 74 61 71 02 7d 71 03 73 2e";
const char *const kLoadBeforeReplyFrame =
    "00 00 00 75 80 03 28 43 08 00 00 00 00 00 00 00 00 43 08 03 f8 4a 50 00"
    "00 00 01 86 4b 00 58 06 00 00 00 2e 72 65 70 6c 79 43 40 80 03 63 70 65"
    "72 73 69 73 74 65 6e 74 2e 6d 61 70 70 69 6e 67 0a 50 65 72 73 69 73 74"
    "65 6e 74 4d 61 70 70 69 6e 67 0a 71 00 2e 80 03 7d 71 01 58 04 00 00 00"
    "64 61 74 61 71 02 7d 71 03 73 2e 43 08 03 f8 4a 50 00 00 00 00 4e 87 74"
    "2e";
const char *const kTpcBeginFrame =
    "00 00 00 2c 80 03 28 4b 00 88 58 09 00 00 00 74 70 63 5f 62 65 67 69 6e"
    "28 8a 06 50 1e 3a 2c 8d 7f 43 00 43 00 7d 4e 58 01 00 00 00 20 74 74 2e";
const char *const kD2 = "80 03 63 70 65 72 73 69 73 74 65 6e 74 2e 6d 61 70 70 69 6e 67 0a 50 65"
			"72 73 69 73 74 65 6e 74 4d 61 70 70 69 6e 67 0a 71 00 2e 80 03 7d 71 01"
			"58 04 00 00 00 64 61 74 61 71 02 7d 71 03 58 01 00 00 00 78 71 04 4b 01"
			"73 73 2e";
const char *const kStoreaFrame =
    "00 00 00 7e 80 03 28 4b 00 88 58 06 00 00 00 73 74 6f 72 65 61 28 43 08"
    "00 00 00 00 00 00 00 00 43 08 03 f8 4a 50 00 00 00 00 43 4b 80 03 63 70"
    "65 72 73 69 73 74 65 6e 74 2e 6d 61 70 70 69 6e 67 0a 50 65 72 73 69 73"
    "74 65 6e 74 4d 61 70 70 69 6e 67 0a 71 00 2e 80 03 7d 71 01 58 04 00 00"
    "00 64 61 74 61 71 02 7d 71 03 58 01 00 00 00 78 71 04 4b 01 73 73 2e 8a"
    "06 50 1e 3a 2c 8d 7f 74 74 2e";
const char *const kVoteFrame =
    "00 00 00 1a 80 03 28 4b 04 89 58 04 00 00 00 76 6f 74 65 8a 06 50 1e 3a"
    "2c 8d 7f 85 74 2e";
const char *const kVoteReplyFrame =
    "00 00 00 15 80 03 28 4b 04 4b 00 58 06 00 00 00 2e 72 65 70 6c 79 5d 74 2e";
const char *const kTpcFinishFrame =
    "00 00 00 20 80 03 28 4b 05 89 58 0a 00 00 00 74 70 63 5f 66 69 6e 69 73"
    "68 8a 06 50 1e 3a 2c 8d 7f 85 74 2e";
const char *const kInfoFrame =
    "00 00 00 2e 80 03 28 4b 00 88 58 04 00 00 00 69 6e 66 6f 7d 28 58 06 00"
    "00 00 6c 65 6e 67 74 68 4b 01 58 04 00 00 00 73 69 7a 65 4d 92 10 75 85 74 2e";
const char *const kTpcFinishReplyFrame =
    "00 00 00 1e 80 03 28 4b 05 4b 00 58 06 00 00 00 2e 72 65 70 6c 79 43 08"
    "03 f8 4a 50 80 00 00 00 74 2e";
const char *const kInvalidateFrame =
    "00 00 00 39 80 03 28 4b 00 88 58 15 00 00 00 69 6e 76 61 6c 69 64 61 74"
    "65 54 72 61 6e 73 61 63 74 69 6f 6e 43 08 03 f8 4a 50 80 00 00 00 5d 43"
    "08 00 00 00 00 00 00 00 00 61 86 74 2e";
const char *const kHeartbeatFrame =
    "00 00 00 18 80 03 28 4a ff ff ff ff 4b 00 58 06 00 00 00 2e 72 65 70 6c"
    "79 4e 74 2e";

const char *const kNewOids = "80 03 28 4b 06 89 58 08 00 00 00 6e 65 77 5f 6f 69 64 73 29 74 2e";
const char *const kNoneReply = "80 03 28 4b 06 4b 00 58 06 00 00 00 2e 72 65 70 6c 79 4e 74 2e";
const char *const kUndoLog =
    "80 03 28 4b 08 89 58 07 00 00 00 75 6e 64 6f 4c 6f 67 4b 00 4a ec ff ff ff 86 74 2e";
const char *const kPack =
    "80 03 28 4b 09 89 58 04 00 00 00 70 61 63 6b 47 41 d9 8c 8b b0 20 00 00 4b 01 86 74 2e";
const char *const kMsgid2p31 =
    "80 03 28 8a 05 00 00 00 80 00 89 58 04 00 00 00 70 69 6e 67 29 74 2e";
const char *const kPosKeyReply =
    "80 03 28 4b 07 4b 02 58 06 00 00 00 2e 72 65 70 6c 79 58 1d 00 00 00"
    "5a 4f 44 42 2e 50 4f 53 45 78 63 65 70 74 69 6f 6e 2e 50 4f 53 4b 65"
    "79 45 72 72 6f 72 43 08 00 00 00 00 00 00 00 05 85 86 74 2e";
const std::string kConflictReply =
    "80 03 28 4b 04 4b 02 58 06 00 00 00 2e 72 65 70 6c 79 58 1f 00 00 00"
    "<\"ZODB.POSException.ConflictError\"> 7d 28 58 07 00 00 00 <\"message\">"
    "58 17 00 00 00 <\"database conflict error\"> 58 03 00 00 00 <\"oid\">"
    "43 08 00 00 00 00 00 00 00 00 58 0a 00 00 00 <\"class_name\"> 58 24 00 00 00"
    "<\"persistent.mapping.PersistentMapping\"> 58 07 00 00 00 <\"serials\">"
    "43 08 03 f8 4a 50 80 00 00 00 43 08 03 f8 4a 50 00 00 00 00 86 75 86 74 2e";
const std::string kConflictDicts =
    std::string("80 03 28 4b 04 4b 00 58 06 00 00 00 2e 72 65 70 6c 79 5d 7d 28"
		"58 03 00 00 00 <\"oid\"> 43 08 00 00 00 00 00 00 00 00 58 07 00 00 00"
		"<\"serials\"> 43 08 03 f8 4a 50 80 00 00 00 43 08 03 f8 4a 50 00 00 00 00 86"
		"58 04 00 00 00 <\"data\"> 43 4b ") +
    kD2 + " 75 61 74 2e";

// ---------------------------------------------------------------- section 9, msgpack

const char *const kMpRegisterFrame = "00 00 00 10 94 01 c2 a8 72 65 67 69 73 74 65 72 92 a1 31 c2";
const char *const kMpRegisterReplyFrame =
    "00 00 00 14 94 01 00 a6 2e 72 65 70 6c 79 c4 08 03 f8 4a 50 00 00 00 00";
const char *const kMpLoadBeforeFrame =
    "00 00 00 37 94 92 c4 08 00 00 00 00 00 00 00 00 c4 08 03 f8 4a 50 00 00"
    "00 01 c2 aa 6c 6f 61 64 42 65 66 6f 72 65 92 c4 08 00 00 00 00 00 00 00"
    "00 c4 08 03 f8 4a 50 00 00 00 01";
const char *const kMpTpcBeginFrame =
    "00 00 00 1f 94 00 c3 a9 74 70 63 5f 62 65 67 69 6e 96 cf 00 00 7f 8d 2c"
    "3a 1e 50 c4 00 c4 00 80 c0 a1 20";
const std::string kMpPosKeyReplyFrame =
    "00 00 00 34 94 07 02 a6 2e 72 65 70 6c 79 92 bd <\"ZODB.POSException.POSKeyError\">"
    "91 c4 08 00 00 00 00 00 00 00 05";
const char *const kMpHeartbeatFrame = "00 00 00 0b 94 ff 00 a6 2e 72 65 70 6c 79 c0";

// Every example payload of section 9 with its encoding.
struct Example {
	const char *name;
	zeo_enc enc;
	Bytes payload;
};

std::vector<Example> AllExamples()
{
	return {
	    {"[3] register", kPk, Frame(kRegisterFrame)},
	    {"[4] register reply", kPk, Frame(kRegisterReplyFrame)},
	    {"[5] get_info", kPk, Frame(kGetInfoFrame)},
	    {"[6] get_info reply", kPk, Frame(kGetInfoReplyFrame)},
	    {"[7] lastTransaction", kPk, Frame(kLastTransactionFrame)},
	    {"[8] lastTransaction reply", kPk, Frame(kLastTransactionReplyFrame)},
	    {"[9] loadBefore", kPk, Frame(kLoadBeforeFrame)},
	    {"[10] loadBefore reply", kPk, Frame(kLoadBeforeReplyFrame)},
	    {"[11] tpc_begin", kPk, Frame(kTpcBeginFrame)},
	    {"[12] storea", kPk, Frame(kStoreaFrame)},
	    {"[13] vote", kPk, Frame(kVoteFrame)},
	    {"[14] vote reply", kPk, Frame(kVoteReplyFrame)},
	    {"[15] tpc_finish", kPk, Frame(kTpcFinishFrame)},
	    {"[16] info", kPk, Frame(kInfoFrame)},
	    {"[17] tpc_finish reply", kPk, Frame(kTpcFinishReplyFrame)},
	    {"[18] invalidateTransaction", kPk, Frame(kInvalidateFrame)},
	    {"[19] heartbeat", kPk, Frame(kHeartbeatFrame)},
	    {"new_oids", kPk, H(kNewOids)},
	    {"None reply", kPk, H(kNoneReply)},
	    {"undoLog", kPk, H(kUndoLog)},
	    {"pack", kPk, H(kPack)},
	    {"msgid 2**31", kPk, H(kMsgid2p31)},
	    {"POSKeyError reply", kPk, H(kPosKeyReply)},
	    {"ConflictError reply", kPk, H(kConflictReply)},
	    {"conflict dicts", kPk, H(kConflictDicts)},
	    {"M register", kMp, Frame(kMpRegisterFrame)},
	    {"M register reply", kMp, Frame(kMpRegisterReplyFrame)},
	    {"M loadBefore", kMp, Frame(kMpLoadBeforeFrame)},
	    {"M tpc_begin", kMp, Frame(kMpTpcBeginFrame)},
	    {"M POSKeyError reply", kMp, Frame(kMpPosKeyReplyFrame)},
	    {"M heartbeat", kMp, Frame(kMpHeartbeatFrame)},
	};
}

// Checks the (msgid, flag, name, args) shape and returns args.
const zeo_val &Call(const Dec &d, int64_t msgid, bool flag, const char *name)
{
	EXPECT_EQ(d.rc, 0) << (d.err ? d.err : "");
	EXPECT_EQ(d.v->type, ZEO_TUPLE);
	EXPECT_EQ(d.v->seq.n, 4u);
	EXPECT_EQ(I64(d[0]), msgid);
	EXPECT_EQ(d[1].type, ZEO_BOOL);
	EXPECT_EQ(d[1].b, flag);
	EXPECT_TRUE(zeo_val_is_str(&d[2], name)) << Str(d[2]);
	return d[3];
}

TEST(ZeoExamples, EveryExampleDecodesAndWritesBackByteExact)
{
	for (const Example &e : AllExamples()) {
		Dec d(e.enc, e.payload);
		ASSERT_EQ(d.rc, 0) << e.name << ": " << d.err;
		ASSERT_EQ(d.v->type, ZEO_TUPLE) << e.name;
		ASSERT_EQ(d.v->seq.n, 4u) << e.name;
		EXPECT_EQ(Hex(Reencode(e.enc, d.v)), Hex(e.payload)) << e.name;
	}
}

TEST(ZeoExamples, RegisterCall)
{
	Dec d(kPk, Frame(kRegisterFrame));
	const zeo_val &args = Call(d, 1, false, "register");
	ASSERT_EQ(args.type, ZEO_TUPLE);
	ASSERT_EQ(args.seq.n, 2u);
	EXPECT_TRUE(zeo_val_is_str(&args.seq.items[0], "1"));
	EXPECT_EQ(args.seq.items[1].type, ZEO_INT);
	EXPECT_EQ(args.seq.items[1].i, 0);
}

TEST(ZeoExamples, EmptyArgCalls)
{
	for (const char *f : {kGetInfoFrame, kLastTransactionFrame}) {
		Dec d(kPk, Frame(f));
		ASSERT_EQ(d.rc, 0);
		EXPECT_EQ(d[3].type, ZEO_TUPLE);
		EXPECT_EQ(d[3].seq.n, 0u);
	}
	Dec d(kPk, H(kNewOids));
	EXPECT_EQ(Call(d, 6, false, "new_oids").seq.n, 0u);
}

TEST(ZeoExamples, LoadBeforeMsgidIsATupleEqualToItsArgs)
{
	Dec d(kPk, Frame(kLoadBeforeFrame));
	ASSERT_EQ(d.rc, 0) << d.err;
	ASSERT_EQ(d[0].type, ZEO_TUPLE);
	ASSERT_EQ(d[0].seq.n, 2u);
	EXPECT_EQ(U64(d[0].seq.items[0]), 0u);
	EXPECT_EQ(U64(d[0].seq.items[1]), kT1 + 1);
	EXPECT_FALSE(d[1].b);
	EXPECT_TRUE(zeo_val_is_str(&d[2], "loadBefore"));
	EXPECT_TRUE(zeo_val_equal(&d[0], &d[3]));

	Dec m(kMp, Frame(kMpLoadBeforeFrame));
	ASSERT_EQ(m.rc, 0) << m.err;
	EXPECT_TRUE(zeo_val_equal(&m[0], &d[0]));
	EXPECT_TRUE(zeo_val_equal(m.v, d.v));
}

TEST(ZeoExamples, TpcBeginAsync)
{
	Dec d(kPk, Frame(kTpcBeginFrame));
	const zeo_val &a = Call(d, 0, true, "tpc_begin");
	ASSERT_EQ(a.type, ZEO_TUPLE);
	ASSERT_EQ(a.seq.n, 6u);
	EXPECT_EQ(I64(a.seq.items[0]), kTxn);
	EXPECT_EQ(a.seq.items[1].type, ZEO_BYTES);
	EXPECT_EQ(a.seq.items[1].s.len, 0u);
	EXPECT_EQ(a.seq.items[2].type, ZEO_BYTES);
	EXPECT_EQ(a.seq.items[3].type, ZEO_DICT);
	EXPECT_EQ(a.seq.items[3].seq.n, 0u);
	EXPECT_EQ(a.seq.items[4].type, ZEO_NONE);
	EXPECT_TRUE(zeo_val_is_str(&a.seq.items[5], " "));

	Dec m(kMp, Frame(kMpTpcBeginFrame));
	ASSERT_EQ(m.rc, 0) << m.err;
	EXPECT_TRUE(zeo_val_equal(m.v, d.v));
}

TEST(ZeoExamples, StoreaCarriesTheRecordBytes)
{
	Dec d(kPk, Frame(kStoreaFrame));
	const zeo_val &a = Call(d, 0, true, "storea");
	ASSERT_EQ(a.seq.n, 4u);
	EXPECT_EQ(U64(a.seq.items[0]), 0u);
	EXPECT_EQ(U64(a.seq.items[1]), kT1);
	EXPECT_EQ(Hex(a.seq.items[2].s.p, a.seq.items[2].s.len), Hex(H(kD2)));
	EXPECT_EQ(a.seq.items[2].s.len, 75u);
	EXPECT_EQ(I64(a.seq.items[3]), kTxn);
}

TEST(ZeoExamples, VoteAndTpcFinishCarryTheTxn)
{
	Dec v(kPk, Frame(kVoteFrame));
	EXPECT_EQ(I64(Call(v, 4, false, "vote").seq.items[0]), kTxn);
	Dec f(kPk, Frame(kTpcFinishFrame));
	EXPECT_EQ(I64(Call(f, 5, false, "tpc_finish").seq.items[0]), kTxn);
}

TEST(ZeoExamples, HeartbeatIsMinusOne)
{
	Dec d(kPk, Frame(kHeartbeatFrame));
	ASSERT_EQ(d.rc, 0);
	EXPECT_EQ(I64(d[0]), -1);
	EXPECT_EQ(I64(d[1]), 0);
	EXPECT_TRUE(zeo_val_is_str(&d[2], ".reply"));
	EXPECT_EQ(d[3].type, ZEO_NONE);
	Dec m(kMp, Frame(kMpHeartbeatFrame));
	ASSERT_EQ(m.rc, 0);
	EXPECT_TRUE(zeo_val_equal(m.v, d.v));
}

TEST(ZeoExamples, Zeo50ProtocolOneHeartbeat)
{
	Dec d(kPk, H("28 4a ff ff ff ff 4b 00 55 06 2e 72 65 70 6c 79 4e 74 2e"));
	ASSERT_EQ(d.rc, 0) << d.err;
	ASSERT_EQ(d.v->seq.n, 4u);
	EXPECT_EQ(I64(d[0]), -1);
	EXPECT_EQ(I64(d[1]), 0);
	EXPECT_EQ(d[2].type, ZEO_BYTES); // SHORT_BINSTRING
	EXPECT_EQ(Str(d[2]), ".reply");
	EXPECT_EQ(d[3].type, ZEO_NONE);
}

TEST(ZeoExamples, UndoLogPackAndBigMsgid)
{
	Dec u(kPk, H(kUndoLog));
	const zeo_val &ua = Call(u, 8, false, "undoLog");
	EXPECT_EQ(I64(ua.seq.items[0]), 0);
	EXPECT_EQ(I64(ua.seq.items[1]), -20);

	Dec p(kPk, H(kPack));
	const zeo_val &pa = Call(p, 9, false, "pack");
	ASSERT_EQ(pa.seq.items[0].type, ZEO_FLOAT);
	uint64_t bits = 0x41d98c8bb0200000ull;
	double t;
	memcpy(&t, &bits, sizeof(t));
	EXPECT_EQ(pa.seq.items[0].f, t);
	EXPECT_EQ(I64(pa.seq.items[1]), 1);

	Dec m(kPk, H(kMsgid2p31));
	Call(m, 2147483648LL, false, "ping");
}

TEST(ZeoExamples, MsgpackRegisterCall)
{
	Dec d(kMp, Frame(kMpRegisterFrame));
	const zeo_val &a = Call(d, 1, false, "register");
	ASSERT_EQ(a.type, ZEO_TUPLE);
	EXPECT_TRUE(zeo_val_is_str(&a.seq.items[0], "1"));
	EXPECT_EQ(a.seq.items[1].type, ZEO_BOOL);
}

TEST(ZeoExamples, RecordPickleWithGlobalIsRefusedAsAMessage)
{
	Dec d(kPk, H(kD1));
	EXPECT_EQ(d.rc, -EBADMSG);
	EXPECT_STREQ(d.err, "pickle opcode 0x63 (GLOBAL) not allowed");
}

// A pickle the decoder must refuse with an error naming err.
struct RefusedCase {
	const char *hex;
	const char *err;
};

void ExpectRefused(const char *hex, const char *err)
{
	Dec d(kPk, H(hex));
	EXPECT_EQ(d.rc, -EBADMSG) << hex;
	ASSERT_NE(d.err, nullptr) << hex;
	EXPECT_NE(strstr(d.err, err), nullptr) << hex << ": " << d.err;
	EXPECT_EQ(d.v, nullptr);
}

// A transaction extension that is a dict subclass reducing to dict, as
// ZODB's checkTransactionExtensionFromIterator sends it: GLOBAL builtins.dict
// then REDUCE with a tuple of pairs. Read as the dict, nothing imported.
TEST(ZeoExamples, TpcBeginExtensionReducedToDictIsADict)
{
	Dec d(kPk, H("80 03 28 4b 01 89 58 09 00 00 00 74 70 63 5f 62 65 67 69 6e 28 4b 07 43 01 75"
		     " 43 01 64 63 62 75 69 6c 74 69 6e 73 0a 64 69 63 74 0a 58 03 00 00 00 66 6f 6f"
		     " 4b 01 86 85 85 52 4e 58 01 00 00 00 20 74 74 2e"));
	const zeo_val &a = Call(d, 1, false, "tpc_begin");
	ASSERT_EQ(a.type, ZEO_TUPLE);
	ASSERT_EQ(a.seq.n, 6u);
	const zeo_val &ext = a.seq.items[3];
	ASSERT_EQ(ext.type, ZEO_DICT);
	ASSERT_EQ(ext.seq.n, 2u);
	EXPECT_TRUE(zeo_val_is_str(&ext.seq.items[0], "foo"));
	EXPECT_EQ(I64(ext.seq.items[1]), 1);
	EXPECT_EQ(a.seq.items[4].type, ZEO_NONE);

	// the same dict memoized by a stock pickler (BINPUT after each value),
	// from a dict argument, and dict() with no argument
	Dec m(kPk, H("80 03 63 62 75 69 6c 74 69 6e 73 0a 64 69 63 74 0a 71 00 58 03 00 00 00 66 6f 6f"
		     " 71 01 4b 01 86 71 02 85 71 03 85 71 04 52 71 05 2e"));
	ASSERT_EQ(m.rc, 0) << m.err;
	EXPECT_TRUE(zeo_val_equal(m.v, &ext));
	Dec fd(kPk, H("80 03 63 62 75 69 6c 74 69 6e 73 0a 64 69 63 74 0a 7d 58 03 00 00 00 66 6f 6f"
		      " 4b 01 73 85 52 2e"));
	ASSERT_EQ(fd.rc, 0) << fd.err;
	EXPECT_TRUE(zeo_val_equal(fd.v, &ext));
	Dec e(kPk, H("80 03 63 5f 5f 62 75 69 6c 74 69 6e 5f 5f 0a 64 69 63 74 0a 29 52 2e"));
	ASSERT_EQ(e.rc, 0) << e.err;
	EXPECT_EQ(e.v->type, ZEO_DICT);
	EXPECT_EQ(e.v->seq.n, 0u);
}

TEST(ZeoRefuse, GlobalsOtherThanDictAndStrayDictGlobalsAreRefused)
{
	const RefusedCase cases[] = {
	    // os.system, builtins.eval: never
	    {"80 03 63 6f 73 0a 73 79 73 74 65 6d 0a 29 52 2e", "0x63 (GLOBAL)"},
	    {"80 03 63 62 75 69 6c 74 69 6e 73 0a 65 76 61 6c 0a 29 52 2e", "0x63 (GLOBAL)"},
	    // builtins.dict left on the stack, or put in a tuple, is not a value
	    {"80 03 63 62 75 69 6c 74 69 6e 73 0a 64 69 63 74 0a 2e", "0x63 (GLOBAL)"},
	    {"80 03 63 62 75 69 6c 74 69 6e 73 0a 64 69 63 74 0a 85 2e", "0x63 (GLOBAL)"},
	    // dict(1), dict((1,)), dict(a, b), REDUCE of a non-global, a global as the args
	    {"80 03 63 62 75 69 6c 74 69 6e 73 0a 64 69 63 74 0a 4b 01 85 52 2e", "0x52 (REDUCE)"},
	    {"80 03 63 62 75 69 6c 74 69 6e 73 0a 64 69 63 74 0a 4b 01 85 85 52 2e", "0x52 (REDUCE)"},
	    {"80 03 63 62 75 69 6c 74 69 6e 73 0a 64 69 63 74 0a 29 29 86 52 2e", "0x52 (REDUCE)"},
	    {"80 03 4e 29 52 2e", "0x52 (REDUCE)"},
	    {"80 03 63 62 75 69 6c 74 69 6e 73 0a 64 69 63 74 0a 71 00 68 00 52 2e", "0x52 (REDUCE)"},
	    // a GLOBAL line with no end
	    {"80 03 63 62 75 69 6c 74 69 6e 73 0a 64 69 63 74", "truncated"},
	};
	for (const auto &c : cases)
		ExpectRefused(c.hex, c.err);
}

// ---------------------------------------------------------------- the writer

// (msgid, 0, '.reply', ...) up to the reply value.
void ReplyHead(zeo_buf *b, zeo_enc enc, int64_t msgid, int64_t flag)
{
	zeo_w_begin(b, enc);
	zeo_w_tuple_begin(b, enc, 4);
	zeo_w_int(b, enc, msgid);
	zeo_w_int(b, enc, flag);
	zeo_w_cstr(b, enc, ".reply");
}

void ReplyEnd(zeo_buf *b, zeo_enc enc)
{
	zeo_w_tuple_end(b, enc, 4);
	zeo_w_end(b, enc);
}

Bytes TidReply(zeo_enc enc, int64_t msgid, uint64_t tid)
{
	Buf b;
	ReplyHead(&b.b, enc, msgid, 0);
	zeo_w_u64be(&b.b, enc, tid);
	ReplyEnd(&b.b, enc);
	return b.bytes();
}

TEST(ZeoWriter, TidRepliesAreByteExact)
{
	EXPECT_EQ(Hex(TidReply(kPk, 1, kT1)), Hex(Frame(kRegisterReplyFrame)));
	EXPECT_EQ(Hex(TidReply(kPk, 3, kT1)), Hex(Frame(kLastTransactionReplyFrame)));
	EXPECT_EQ(Hex(TidReply(kPk, 5, kT2)), Hex(Frame(kTpcFinishReplyFrame)));
	EXPECT_EQ(Hex(TidReply(kMp, 1, kT1)), Hex(Frame(kMpRegisterReplyFrame)));
}

TEST(ZeoWriter, EmptyListAndNoneRepliesAreByteExact)
{
	Buf b;
	ReplyHead(&b.b, kPk, 4, 0);
	zeo_w_list_begin(&b.b, kPk, 0);
	zeo_w_list_end(&b.b, kPk, 0);
	ReplyEnd(&b.b, kPk);
	EXPECT_EQ(Hex(b.bytes()), Hex(Frame(kVoteReplyFrame)));

	Buf n;
	ReplyHead(&n.b, kPk, 6, 0);
	zeo_w_none(&n.b, kPk);
	ReplyEnd(&n.b, kPk);
	EXPECT_EQ(Hex(n.bytes()), Hex(H(kNoneReply)));
}

Bytes PosKeyReply(zeo_enc enc)
{
	Buf b;
	ReplyHead(&b.b, enc, 7, 2);
	zeo_w_tuple_begin(&b.b, enc, 2);
	zeo_w_cstr(&b.b, enc, "ZODB.POSException.POSKeyError");
	zeo_w_tuple_begin(&b.b, enc, 1);
	zeo_w_u64be(&b.b, enc, 5);
	zeo_w_tuple_end(&b.b, enc, 1);
	zeo_w_tuple_end(&b.b, enc, 2);
	ReplyEnd(&b.b, enc);
	return b.bytes();
}

TEST(ZeoWriter, PosKeyErrorRepliesAreByteExact)
{
	EXPECT_EQ(Hex(PosKeyReply(kPk)), Hex(H(kPosKeyReply)));
	EXPECT_EQ(Hex(PosKeyReply(kMp)), Hex(Frame(kMpPosKeyReplyFrame)));
}

TEST(ZeoWriter, GetInfoReplyIsByteExact)
{
	Buf b;
	zeo_enc e = kPk;
	ReplyHead(&b.b, e, 2, 0);
	zeo_w_dict_begin(&b.b, e, 6);
	zeo_w_cstr(&b.b, e, "length");
	zeo_w_int(&b.b, e, 1);
	zeo_w_cstr(&b.b, e, "size");
	zeo_w_int(&b.b, e, 4096);
	zeo_w_cstr(&b.b, e, "name");
	zeo_w_cstr(&b.b, e, "zap");
	zeo_w_cstr(&b.b, e, "supportsUndo");
	zeo_w_bool(&b.b, e, false);
	zeo_w_cstr(&b.b, e, "supports_record_iternext");
	zeo_w_bool(&b.b, e, false);
	zeo_w_cstr(&b.b, e, "interfaces");
	zeo_w_tuple_begin(&b.b, e, 1);
	zeo_w_tuple_begin(&b.b, e, 2);
	zeo_w_cstr(&b.b, e, "ZODB.interfaces");
	zeo_w_cstr(&b.b, e, "IStorageIteration");
	zeo_w_tuple_end(&b.b, e, 2);
	zeo_w_tuple_end(&b.b, e, 1);
	zeo_w_dict_end(&b.b, e, 6);
	ReplyEnd(&b.b, e);
	EXPECT_EQ(Hex(b.bytes()), Hex(Frame(kGetInfoReplyFrame)));
}

TEST(ZeoWriter, InvalidateAndInfoCallsAreByteExact)
{
	Buf b;
	zeo_enc e = kPk;
	zeo_w_begin(&b.b, e);
	zeo_w_tuple_begin(&b.b, e, 4);
	zeo_w_int(&b.b, e, 0);
	zeo_w_bool(&b.b, e, true);
	zeo_w_cstr(&b.b, e, "invalidateTransaction");
	zeo_w_tuple_begin(&b.b, e, 2);
	zeo_w_u64be(&b.b, e, kT2);
	zeo_w_list_begin(&b.b, e, 1);
	zeo_w_u64be(&b.b, e, 0);
	zeo_w_list_end(&b.b, e, 1);
	zeo_w_tuple_end(&b.b, e, 2);
	zeo_w_tuple_end(&b.b, e, 4);
	zeo_w_end(&b.b, e);
	EXPECT_EQ(Hex(b.bytes()), Hex(Frame(kInvalidateFrame)));

	Buf i;
	zeo_w_begin(&i.b, e);
	zeo_w_tuple_begin(&i.b, e, 4);
	zeo_w_int(&i.b, e, 0);
	zeo_w_bool(&i.b, e, true);
	zeo_w_cstr(&i.b, e, "info");
	zeo_w_tuple_begin(&i.b, e, 1);
	zeo_w_dict_begin(&i.b, e, 2);
	zeo_w_cstr(&i.b, e, "length");
	zeo_w_int(&i.b, e, 1);
	zeo_w_cstr(&i.b, e, "size");
	zeo_w_int(&i.b, e, 4242);
	zeo_w_dict_end(&i.b, e, 2);
	zeo_w_tuple_end(&i.b, e, 1);
	zeo_w_tuple_end(&i.b, e, 4);
	zeo_w_end(&i.b, e);
	EXPECT_EQ(Hex(i.bytes()), Hex(Frame(kInfoFrame)));
}

TEST(ZeoWriter, ConflictErrorReplyIsByteExact)
{
	Buf b;
	zeo_enc e = kPk;
	ReplyHead(&b.b, e, 4, 2);
	zeo_w_tuple_begin(&b.b, e, 2);
	zeo_w_cstr(&b.b, e, "ZODB.POSException.ConflictError");
	zeo_w_dict_begin(&b.b, e, 4);
	zeo_w_cstr(&b.b, e, "message");
	zeo_w_cstr(&b.b, e, "database conflict error");
	zeo_w_cstr(&b.b, e, "oid");
	zeo_w_u64be(&b.b, e, 0);
	zeo_w_cstr(&b.b, e, "class_name");
	zeo_w_cstr(&b.b, e, "persistent.mapping.PersistentMapping");
	zeo_w_cstr(&b.b, e, "serials");
	zeo_w_tuple_begin(&b.b, e, 2);
	zeo_w_u64be(&b.b, e, kT2);
	zeo_w_u64be(&b.b, e, kT1);
	zeo_w_tuple_end(&b.b, e, 2);
	zeo_w_dict_end(&b.b, e, 4);
	zeo_w_tuple_end(&b.b, e, 2);
	ReplyEnd(&b.b, e);
	EXPECT_EQ(Hex(b.bytes()), Hex(H(kConflictReply)));
}

TEST(ZeoWriter, LongBytesUseBinbytes)
{
	std::string x(300, 'x');
	Buf b;
	ReplyHead(&b.b, kPk, 1, 0);
	zeo_w_bytes(&b.b, kPk, x.data(), x.size());
	ReplyEnd(&b.b, kPk);
	Bytes out = b.bytes();
	Bytes head = H("58 06 00 00 00 2e 72 65 70 6c 79 42 2c 01 00 00 78 78");
	EXPECT_NE(std::search(out.begin(), out.end(), head.begin(), head.end()), out.end());
	Dec d(kPk, out);
	ASSERT_EQ(d.rc, 0);
	EXPECT_EQ(Str(d[3]), x);
}

TEST(ZeoWriter, PickleIntForms)
{
	struct {
		int64_t v;
		const char *hex;
	} cases[] = {
	    {0, "4b 00"},
	    {255, "4b ff"},
	    {256, "4d 00 01"},
	    {65535, "4d ff ff"},
	    {65536, "4a 00 00 01 00"},
	    {-1, "4a ff ff ff ff"},
	    {-20, "4a ec ff ff ff"},
	    {INT32_MAX, "4a ff ff ff 7f"},
	    {INT32_MIN, "4a 00 00 00 80"},
	    {2147483648LL, "8a 05 00 00 00 80 00"},
	    {-2147483649LL, "8a 05 ff ff ff 7f ff"},
	    {kTxn, "8a 06 50 1e 3a 2c 8d 7f"},
	    {INT64_MAX, "8a 08 ff ff ff ff ff ff ff 7f"},
	    {INT64_MIN, "8a 08 00 00 00 00 00 00 00 80"},
	};
	for (const auto &c : cases) {
		Buf b;
		zeo_w_int(&b.b, kPk, c.v);
		EXPECT_EQ(Hex(b.bytes()), Hex(H(c.hex))) << c.v;
	}
	Buf u;
	zeo_w_uint(&u.b, kPk, 1ull << 63);
	EXPECT_EQ(Hex(u.bytes()), Hex(H("8a 09 00 00 00 00 00 00 00 80 00")));
}

TEST(ZeoWriter, MsgpackSmallestForms)
{
	struct {
		int64_t v;
		const char *hex;
	} cases[] = {
	    {0, "00"},
	    {127, "7f"},
	    {128, "cc 80"},
	    {255, "cc ff"},
	    {256, "cd 01 00"},
	    {65536, "ce 00 01 00 00"},
	    {4294967296LL, "cf 00 00 00 01 00 00 00 00"},
	    {-1, "ff"},
	    {-32, "e0"},
	    {-33, "d0 df"},
	    {-129, "d1 ff 7f"},
	    {-32769, "d2 ff ff 7f ff"},
	    {-2147483649LL, "d3 ff ff ff ff 7f ff ff ff"},
	};
	for (const auto &c : cases) {
		Buf b;
		zeo_w_int(&b.b, kMp, c.v);
		EXPECT_EQ(Hex(b.bytes()), Hex(H(c.hex))) << c.v;
	}
	Buf s;
	std::string s31(31, 'a'), s32(32, 'a');
	zeo_w_str(&s.b, kMp, s31.data(), s31.size());
	zeo_w_str(&s.b, kMp, s32.data(), s32.size());
	zeo_w_bytes(&s.b, kMp, "", 0);
	zeo_w_tuple_begin(&s.b, kMp, 15);
	zeo_w_tuple_begin(&s.b, kMp, 16);
	zeo_w_dict_begin(&s.b, kMp, 15);
	zeo_w_dict_begin(&s.b, kMp, 16);
	zeo_w_float(&s.b, kMp, 1.0);
	Bytes out = s.bytes();
	Bytes want = H("bf");
	want.insert(want.end(), s31.begin(), s31.end());
	Bytes d9 = H("d9 20");
	want.insert(want.end(), d9.begin(), d9.end());
	want.insert(want.end(), s32.begin(), s32.end());
	Bytes rest = H("c4 00 9f dc 00 10 8f de 00 10 cb 3f f0 00 00 00 00 00 00");
	want.insert(want.end(), rest.begin(), rest.end());
	EXPECT_EQ(Hex(out), Hex(want));
}

TEST(ZeoWriter, BufferResetKeepsMemoryAndClearsOom)
{
	Buf b;
	zeo_w_cstr(&b.b, kPk, "hello");
	uint8_t *p = b.b.p;
	b.b.oom = true;
	zeo_buf_reset(&b.b);
	EXPECT_EQ(b.b.len, 0u);
	EXPECT_FALSE(b.b.oom);
	zeo_w_none(&b.b, kPk);
	EXPECT_EQ(b.b.p, p);
	EXPECT_EQ(Hex(b.bytes()), "4e ");
}

// ---------------------------------------------------------------- ints

TEST(ZeoInts, Long1TwoPow31RoundTripsInBothEncodings)
{
	for (zeo_enc e : {kPk, kMp}) {
		Buf b;
		ReplyHead(&b.b, e, 2147483648LL, 0);
		zeo_w_none(&b.b, e);
		ReplyEnd(&b.b, e);
		Dec d(e, b.bytes());
		ASSERT_EQ(d.rc, 0) << d.err;
		EXPECT_FALSE(d[0].big);
		EXPECT_EQ(d[0].i, 2147483648LL);
		EXPECT_EQ(Hex(Reencode(e, d.v)), Hex(b.bytes()));
	}
}

TEST(ZeoInts, MsgidTwoPow63RoundTripsInBothEncodings)
{
	for (zeo_enc e : {kPk, kMp}) {
		for (uint64_t v : {1ull << 63, ~0ull}) {
			Buf b;
			zeo_w_begin(&b.b, e);
			zeo_w_tuple_begin(&b.b, e, 4);
			zeo_w_uint(&b.b, e, v);
			zeo_w_bool(&b.b, e, false);
			zeo_w_cstr(&b.b, e, "ping");
			zeo_w_tuple_begin(&b.b, e, 0);
			zeo_w_tuple_end(&b.b, e, 0);
			zeo_w_tuple_end(&b.b, e, 4);
			zeo_w_end(&b.b, e);
			Dec d(e, b.bytes());
			ASSERT_EQ(d.rc, 0) << d.err;
			EXPECT_TRUE(d[0].big);
			EXPECT_EQ(d[0].u, v);
			int64_t x;
			EXPECT_FALSE(zeo_val_int(&d[0], &x));
			EXPECT_TRUE(zeo_val_truthy(&d[0]));
			EXPECT_EQ(Hex(Reencode(e, d.v)), Hex(b.bytes()));
		}
	}
}

TEST(ZeoInts, PickleLongLimits)
{
	struct {
		const char *hex;
		int rc;
		bool big;
		uint64_t bits;
	} cases[] = {
	    {"8a 00", 0, false, 0},
	    {"8a 01 ff", 0, false, ~0ull},
	    {"8a 08 00 00 00 00 00 00 00 80", 0, false, 1ull << 63},		      // -2^63
	    {"8a 09 00 00 00 00 00 00 00 80 00", 0, true, 1ull << 63},		      // 2^63
	    {"8a 09 ff ff ff ff ff ff ff ff 00", 0, true, ~0ull},		      // 2^64-1
	    {"8a 0a 05 00 00 00 00 00 00 00 00 00", 0, false, 5},		      // not minimal
	    {"8a 0a fe ff ff ff ff ff ff ff ff ff", 0, false, (uint64_t)-2},	      // not minimal
	    {"8b 02 00 00 00 39 30", 0, false, 12345},				      // LONG4
	    {"8a 09 00 00 00 00 00 00 00 00 01", -E2BIG, false, 0},		      // 2^64
	    {"8a 09 ff ff ff ff ff ff ff 7f ff", -E2BIG, false, 0},		      // -2^63-1
	    {"8a 0a 00 00 00 00 00 00 00 00 00 80", -E2BIG, false, 0},		      // -2^79
	    {"8b 0c 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01", -E2BIG, false, 0}, // LONG4 2^88
	    {"8b ff ff ff ff", -EBADMSG, false, 0}, // negative LONG4 length
	};
	for (const auto &c : cases) {
		Bytes msg = H("80 03");
		Bytes body = H(c.hex);
		msg.insert(msg.end(), body.begin(), body.end());
		msg.push_back('.');
		Dec d(kPk, msg);
		EXPECT_EQ(d.rc, c.rc) << c.hex << " " << (d.err ? d.err : "");
		if (c.rc == 0 && d.rc == 0) {
			EXPECT_EQ(d.v->type, ZEO_INT);
			EXPECT_EQ(d.v->big, c.big) << c.hex;
			EXPECT_EQ(d.v->u, c.bits) << c.hex;
		}
	}
}

TEST(ZeoInts, MsgpackIntForms)
{
	struct {
		const char *hex;
		bool big;
		uint64_t bits;
	} cases[] = {
	    {"cc ff", false, 255},
	    {"cd ff ff", false, 65535},
	    {"ce ff ff ff ff", false, 0xffffffffull},
	    {"cf 7f ff ff ff ff ff ff ff", false, (uint64_t)INT64_MAX},
	    {"cf 80 00 00 00 00 00 00 00", true, 1ull << 63},
	    {"d0 80", false, (uint64_t)-128},
	    {"d1 80 00", false, (uint64_t)-32768},
	    {"d2 80 00 00 00", false, (uint64_t)(int64_t)INT32_MIN},
	    {"d3 80 00 00 00 00 00 00 00", false, 1ull << 63},
	    {"e0", false, (uint64_t)-32},
	};
	for (const auto &c : cases) {
		Dec d(kMp, H(c.hex));
		ASSERT_EQ(d.rc, 0) << c.hex;
		EXPECT_EQ(d.v->type, ZEO_INT);
		EXPECT_EQ(d.v->big, c.big) << c.hex;
		EXPECT_EQ(d.v->u, c.bits) << c.hex;
	}
	Dec f(kMp, H("ca 3f c0 00 00"));
	ASSERT_EQ(f.rc, 0);
	EXPECT_EQ(f.v->f, 1.5);
}

// ---------------------------------------------------------------- refusals

TEST(ZeoRefuse, PickleOpcodesOutsideTheSubsetAreNamed)
{
	const RefusedCase cases[] = {
	    {"80 03 63 62 75 69 6c 74 69 6e 73 0a 73 65 74 0a 29 52 2e", "0x63 (GLOBAL)"},
	    {"80 04 8c 08 62 75 69 6c 74 69 6e 73 8c 03 73 65 74 93 2e", "0x93 (STACK_GLOBAL)"},
	    {"80 03 4e 29 52 2e", "0x52 (REDUCE)"},
	    {"80 03 4e 7d 62 2e", "0x62 (BUILD)"},
	    {"80 03 4e 29 81 2e", "0x81 (NEWOBJ)"},
	    {"80 03 4e 29 7d 92 2e", "0x92 (NEWOBJ_EX)"},
	    {"28 69 6d 0a 43 0a 2e", "0x69 (INST)"},
	    {"28 4e 6f 2e", "0x6f (OBJ)"},
	    {"80 03 50 31 0a 2e", "0x50 (PERSID)"},
	    {"80 03 4b 01 51 2e", "0x51 (BINPERSID)"},
	    {"80 03 82 01 2e", "0x82 (EXT1)"},
	    {"80 03 83 01 00 2e", "0x83 (EXT2)"},
	    {"80 03 84 01 00 00 00 2e", "0x84 (EXT4)"},
	    {"80 04 8f 2e", "0x8f (EMPTY_SET)"},
	    {"80 04 28 91 2e", "0x91 (FROZENSET)"},
	    {"80 05 96 00 00 00 00 00 00 00 00 2e", "0x96 (BYTEARRAY8)"},
	    {"80 05 97 2e", "0x97 (NEXT_BUFFER)"},
	    {"49 31 0a 2e", "0x49 (INT)"},
	    {"4c 31 4c 0a 2e", "0x4c (LONG)"},
	    {"46 31 2e 30 0a 2e", "0x46 (FLOAT)"},
	    {"53 27 61 27 0a 2e", "0x53 (STRING)"},
	    {"56 61 0a 2e", "0x56 (UNICODE)"},
	    {"4e 70 30 0a 2e", "0x70 (PUT)"},
	    {"4e 67 30 0a 2e", "0x67 (GET)"},
	    {"4e 30 4e 2e", "0x30 (POP)"},
	    {"28 4e 31 4e 2e", "0x31 (POP_MARK)"},
	    {"4e 32 86 2e", "0x32 (DUP)"},
	    {"80 03 00 2e", "unknown pickle opcode"},
	    {"80 01 4e 2e", "unsupported pickle protocol"},
	    {"80 06 4e 2e", "unsupported pickle protocol"},
	    {"80 03 80 03 4e 2e", "PROTO not at the start"},
	};
	for (const auto &c : cases)
		ExpectRefused(c.hex, c.err);
}

TEST(ZeoRefuse, MsgpackExtTypesAndC1)
{
	for (const char *hex :
	     {"d4 01 00", "d5 01 00 00", "d6 ff 00 00 00 00", "d7 ff 00 00 00 00 00 00 00 00",
	      "d8 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00", "c7 01 05 00",
	      "c8 00 01 05 00", "c9 00 00 00 01 05 00", "91 d4 01 00"}) {
		Dec d(kMp, H(hex));
		EXPECT_EQ(d.rc, -EBADMSG) << hex;
		EXPECT_STREQ(d.err, "msgpack ext type not allowed") << hex;
	}
	Dec c1(kMp, H("c1"));
	EXPECT_EQ(c1.rc, -EBADMSG);
	EXPECT_NE(strstr(c1.err, "0xc1"), nullptr);
}

TEST(ZeoRefuse, StackMisuse)
{
	const RefusedCase cases[] = {
	    {"80 03 2e", "STOP with no value"},
	    {"80 03 4e 4e 2e", "several"},
	    {"80 03 28 4e 2e", "MARK open"},
	    {"80 03 74 2e", "MARK missing"},
	    {"80 03 86 2e", "underflow"},
	    {"80 03 4e 28 86 2e", "underflow"},
	    {"80 03 4e 4b 01 61 2e", "not an open list"},
	    {"80 03 5d 28 4b 01 75 2e", "not an open dict"},
	    {"80 03 7d 28 4b 01 75 2e", "odd"},
	    {"80 03 28 4b 01 64 2e", "odd"},
	    {"80 03 29 4b 01 61 2e", "not an open list"},
	    {"80 03 5d 28 4b 01 61 2e", "underflow"},
	    {"80 03 68 00 2e", "memo key not found"},
	    {"80 03 71 00 2e", "underflow"},
	    {"80 03 54 ff ff ff ff 2e", "negative length"},
	};
	for (const auto &c : cases) {
		Dec d(kPk, H(c.hex));
		EXPECT_EQ(d.rc, -EBADMSG) << c.hex;
		ASSERT_NE(d.err, nullptr) << c.hex;
		EXPECT_NE(strstr(d.err, c.err), nullptr) << c.hex << ": " << d.err;
	}
}

TEST(ZeoRefuse, TrailingBytes)
{
	Bytes p = H(kNoneReply);
	p.push_back(0x4e);
	Dec d(kPk, p);
	EXPECT_EQ(d.rc, -EBADMSG);
	EXPECT_STREQ(d.err, "trailing bytes after STOP");
	Bytes m = Frame(kMpHeartbeatFrame);
	m.push_back(0xc0);
	Dec e(kMp, m);
	EXPECT_EQ(e.rc, -EBADMSG);
	EXPECT_STREQ(e.err, "trailing bytes after the msgpack object");
}

TEST(ZeoRefuse, UnknownEncodingAndEmptyInput)
{
	Dec d((zeo_enc)'X', H("4e 2e"));
	EXPECT_EQ(d.rc, -EBADMSG);
	for (zeo_enc e : {kPk, kMp}) {
		Dec z(e, Bytes{});
		EXPECT_EQ(z.rc, -EBADMSG);
		EXPECT_STREQ(z.err, "truncated");
	}
}

TEST(ZeoRefuse, EveryPrefixOfEveryExampleIsAnError)
{
	for (const Example &e : AllExamples()) {
		for (size_t n = 0; n < e.payload.size(); n++) {
			// a copy of exactly n bytes, so ASan sees any read past the end
			uint8_t *p = (uint8_t *)malloc(n ? n : 1);
			memcpy(p, e.payload.data(), n);
			zeo_arena a;
			zeo_arena_init(&a);
			zeo_val *v = nullptr;
			const char *err = nullptr;
			int rc = zeo_decode(e.enc, p, n, &a, &v, &err);
			EXPECT_LT(rc, 0) << e.name << " prefix " << n;
			EXPECT_NE(err, nullptr) << e.name << " prefix " << n;
			EXPECT_EQ(v, nullptr);
			zeo_arena_free(&a);
			free(p);
		}
	}
}

// ---------------------------------------------------------------- bounds

Bytes Repeat(const char *prefix, uint8_t op, size_t n, const char *suffix)
{
	Bytes b = H(prefix);
	b.insert(b.end(), n, op);
	Bytes s = H(suffix);
	b.insert(b.end(), s.begin(), s.end());
	return b;
}

TEST(ZeoBounds, NestingUpToTheLimitIsAccepted)
{
	// N then TUPLE1 x 64: 64 nested tuples
	Bytes t = Repeat("80 03 4e", 0x85, ZEO_MAX_DEPTH, "2e");
	Dec d(kPk, t);
	ASSERT_EQ(d.rc, 0) << d.err;
	EXPECT_EQ(Hex(Reencode(kPk, d.v)), Hex(t));
	Bytes m = Repeat("", 0x91, ZEO_MAX_DEPTH, "c0");
	Dec e(kMp, m);
	ASSERT_EQ(e.rc, 0) << e.err;
	EXPECT_EQ(Hex(Reencode(kMp, e.v)), Hex(m));
}

TEST(ZeoBounds, NestingBeyondTheLimitIsRefused)
{
	Bytes tuples = Repeat("80 03 4e", 0x85, ZEO_MAX_DEPTH + 1, "2e");
	Bytes marks = Repeat("80 03", 0x28, ZEO_MAX_DEPTH + 1, "");
	// 65 open lists, each appended to the one below
	Bytes lists = Repeat("80 03", 0x5d, ZEO_MAX_DEPTH + 1, "");
	lists.insert(lists.end(), ZEO_MAX_DEPTH, 0x61);
	lists.push_back(0x2e);
	for (const Bytes &b : {tuples, marks, lists}) {
		Dec d(kPk, b);
		EXPECT_EQ(d.rc, -EBADMSG);
		EXPECT_STREQ(d.err, "nesting deeper than 64");
	}
	Dec m(kMp, Repeat("", 0x91, ZEO_MAX_DEPTH + 1, "c0"));
	EXPECT_EQ(m.rc, -EBADMSG);
	EXPECT_STREQ(m.err, "nesting deeper than 64");
	Dec n(kMp, Repeat("", 0x81, ZEO_MAX_DEPTH + 1, "c0"));
	EXPECT_EQ(n.rc, -EBADMSG);
}

TEST(ZeoBounds, TooManyValuesIsE2big)
{
	// a list of ZEO_MAX_VALUES Nones: with the list itself one value too many
	Bytes p = Repeat("80 03 5d 28", 0x4e, ZEO_MAX_VALUES, "65 2e");
	Dec d(kPk, p);
	EXPECT_EQ(d.rc, -E2BIG);
	Bytes ok = Repeat("80 03 5d 28", 0x4e, ZEO_MAX_VALUES - 1, "65 2e");
	Dec e(kPk, ok);
	ASSERT_EQ(e.rc, 0) << e.err;
	EXPECT_EQ(e.v->seq.n, ZEO_MAX_VALUES - 1);

	Bytes m = Repeat("dd 00 10 00 00", 0xc0, ZEO_MAX_VALUES, "");
	Dec f(kMp, m);
	EXPECT_EQ(f.rc, -E2BIG);
	// a count larger than the input is cut short before any allocation
	Dec g(kMp, H("dd ff ff ff ff c0"));
	EXPECT_EQ(g.rc, -EBADMSG);
	Dec h(kMp, H("df ff ff ff ff c0"));
	EXPECT_EQ(h.rc, -EBADMSG);
}

TEST(ZeoBounds, SharedMemoSubtreesCountEveryReference)
{
	// t = (None, None); then 25 times: t = (t, t), each level memoized
	Bytes p = H("80 03 4e 4e 86 71 00");
	for (int i = 0; i < 25; i++) {
		Bytes lvl = H("68 00 68 00 86 71 00");
		p.insert(p.end(), lvl.begin(), lvl.end());
	}
	p.push_back(0x2e);
	Dec d(kPk, p);
	EXPECT_EQ(d.rc, -E2BIG);
	EXPECT_STREQ(d.err, "more than ZEO_MAX_VALUES values");
}

TEST(ZeoBounds, MemoStringsCannotExpandTheMessageWithoutBound)
{
	// a 1000-byte str memoized, then fetched n times into one list
	auto build = [](int n) {
		Bytes p = H("80 03 5d 28 58 e8 03 00 00");
		p.insert(p.end(), 1000, 'x');
		p.push_back(0x71);
		p.push_back(0x00);
		for (int i = 0; i < n; i++) {
			p.push_back(0x68);
			p.push_back(0x00);
		}
		Bytes tail = H("65 2e");
		p.insert(p.end(), tail.begin(), tail.end());
		return p;
	};
	Dec few(kPk, build(3));
	ASSERT_EQ(few.rc, 0) << few.err;
	EXPECT_EQ(few.v->seq.n, 4u);
	Dec many(kPk, build(300));
	EXPECT_EQ(many.rc, -E2BIG);
	EXPECT_NE(strstr(many.err, "expand"), nullptr) << many.err;
}

TEST(ZeoBounds, LengthsBeyondTheInputAreTruncated)
{
	for (const char *hex :
	     {"80 03 58 ff ff ff ff 61 2e", "80 03 42 10 00 00 00 2e",
	      "80 04 8d ff ff ff ff ff ff ff ff 2e", "80 04 8e 00 00 00 00 01 00 00 00 2e",
	      "80 04 95 ff 00 00 00 00 00 00 00 4e 2e", "80 03 43 05 61 2e",
	      "80 03 8b ff ff ff 7f 00 2e"}) {
		Dec d(kPk, H(hex));
		EXPECT_EQ(d.rc, -EBADMSG) << hex;
		EXPECT_STREQ(d.err, "truncated") << hex;
	}
	for (const char *hex : {"db ff ff ff ff 61", "c6 00 01 00 00 00", "a5 61", "d9 05 61"}) {
		Dec d(kMp, H(hex));
		EXPECT_EQ(d.rc, -EBADMSG) << hex;
		EXPECT_STREQ(d.err, "truncated") << hex;
	}
}

// ---------------------------------------------------------------- other accepted opcodes

TEST(ZeoPickle, RobustnessOpcodes)
{
	// protocol 4 with FRAME and MEMOIZE, SHORT_BINUNICODE, BINUNICODE8, BINBYTES8
	Bytes p = H("80 04 95 2b 00 00 00 00 00 00 00 28 4b 01 94 89 94 8c 08 <\"register\"> 94"
		    "8d 01 00 00 00 00 00 00 00 <\"1\"> 8e 02 00 00 00 00 00 00 00 <\"ab\"> 86 94 "
		    "74 94 2e");
	Dec d(kPk, p);
	ASSERT_EQ(d.rc, 0) << d.err;
	const zeo_val &a = Call(d, 1, false, "register");
	EXPECT_TRUE(zeo_val_is_str(&a.seq.items[0], "1"));
	EXPECT_EQ(a.seq.items[1].type, ZEO_BYTES);
	EXPECT_EQ(Str(a.seq.items[1]), "ab");

	// BINSTRING, SHORT_BINSTRING are bytes; LIST and DICT from a MARK
	Dec s(kPk,
	      H("80 02 28 28 54 02 00 00 00 <\"ab\"> 55 01 <\"c\"> 6c 28 58 01 00 00 00 <\"k\"> "
		"4e 64 74 2e"));
	ASSERT_EQ(s.rc, 0) << s.err;
	ASSERT_EQ(s.v->seq.n, 2u);
	EXPECT_EQ(s[0].type, ZEO_LIST);
	EXPECT_EQ(s[0].seq.items[0].type, ZEO_BYTES);
	EXPECT_EQ(Str(s[0].seq.items[1]), "c");
	EXPECT_EQ(s[1].type, ZEO_DICT);
	EXPECT_NE(zeo_dict_get(&s[1], "k"), nullptr);
}

TEST(ZeoPickle, ListsAndDictsGrowAcrossSeveralBatches)
{
	// [1, 2, 3, 4, 5] as APPEND + APPENDS + APPENDS, inside a tuple with a
	// dict filled by SETITEM + SETITEMS
	Dec d(kPk, H("80 03 28 5d 4b 01 61 28 4b 02 4b 03 65 28 4b 04 4b 05 65"
		     "7d 4b 01 4b 02 73 28 4b 03 4b 04 4b 05 4b 06 75 4e 4e 74 2e"));
	ASSERT_EQ(d.rc, 0) << d.err;
	ASSERT_EQ(d.v->seq.n, 4u);
	ASSERT_EQ(d[0].type, ZEO_LIST);
	ASSERT_EQ(d[0].seq.n, 5u);
	for (uint32_t i = 0; i < 5; i++)
		EXPECT_EQ(d[0].seq.items[i].i, (int64_t)i + 1);
	ASSERT_EQ(d[1].type, ZEO_DICT);
	ASSERT_EQ(d[1].seq.n, 6u);
	for (uint32_t i = 0; i < 6; i++)
		EXPECT_EQ(d[1].seq.items[i].i, (int64_t)i + 1);
}

TEST(ZeoPickle, NestedOpenContainers)
{
	// [[1], {b'k': [2]}] with every container open while the next is built
	Dec d(kPk, H("80 03 5d 28 5d 4b 01 61 7d 43 01 6b 5d 4b 02 61 73 65 2e"));
	ASSERT_EQ(d.rc, 0) << d.err;
	ASSERT_EQ(d.v->type, ZEO_LIST);
	ASSERT_EQ(d.v->seq.n, 2u);
	EXPECT_EQ(d[0].seq.n, 1u);
	EXPECT_EQ(d[0].seq.items[0].i, 1);
	ASSERT_EQ(d[1].type, ZEO_DICT);
	EXPECT_EQ(d[1].seq.items[1].seq.items[0].i, 2);
}

TEST(ZeoPickle, MemoGetCopiesTheFinishedValue)
{
	// l = [1]; (l, l)
	Dec d(kPk, H("80 03 5d 71 00 4b 01 61 68 00 86 2e"));
	ASSERT_EQ(d.rc, 0) << d.err;
	ASSERT_EQ(d.v->seq.n, 2u);
	EXPECT_EQ(d[0].type, ZEO_LIST);
	EXPECT_EQ(d[0].seq.n, 1u);
	EXPECT_TRUE(zeo_val_equal(&d[0], &d[1]));

	// (l, 2, 3, l) with l still open under the MARK when it is fetched
	Dec e(kPk, H("80 03 28 5d 72 07 00 00 00 4b 01 61 4b 02 4b 03 6a 07 00 00 00 74 2e"));
	ASSERT_EQ(e.rc, 0) << e.err;
	ASSERT_EQ(e.v->seq.n, 4u);
	EXPECT_EQ(e[0].seq.n, 1u);
	EXPECT_EQ(e[3].seq.n, 1u);
	EXPECT_EQ(e[3].seq.items[0].i, 1);

	// memoized scalars and a memoized tuple
	Dec s(kPk, H("80 03 58 01 00 00 00 <\"a\"> 94 68 00 86 94 68 01 86 2e"));
	ASSERT_EQ(s.rc, 0) << s.err;
	EXPECT_EQ(s[0].type, ZEO_TUPLE);
	EXPECT_TRUE(zeo_val_equal(&s[0], &s[1]));
	EXPECT_TRUE(zeo_val_is_str(&s[0].seq.items[1], "a"));
}

TEST(ZeoPickle, ContainerThatWouldContainItselfIsRefused)
{
	// l = []; l.append(l)
	Dec d(kPk, H("80 03 5d 71 00 68 00 61 2e"));
	EXPECT_EQ(d.rc, -EBADMSG);
	EXPECT_NE(strstr(d.err, "not an open list"), nullptr);
	// d = {}; d[1] = d
	Dec e(kPk, H("80 03 7d 71 00 4b 01 68 00 73 2e"));
	EXPECT_EQ(e.rc, -EBADMSG);
}

TEST(ZeoArena, EarlierTreesStayValidWhenTheArenaGrows)
{
	zeo_arena a;
	zeo_arena_init(&a);
	Bytes first = Frame(kGetInfoReplyFrame);
	zeo_val *v1, *v2;
	const char *err;
	ASSERT_EQ(zeo_decode(kPk, first.data(), first.size(), &a, &v1, &err), 0);
	Bytes big = Repeat("80 03 5d 28", 0x4e, 10000, "65 2e");
	ASSERT_EQ(zeo_decode(kPk, big.data(), big.size(), &a, &v2, &err), 0);
	EXPECT_EQ(Hex(Reencode(kPk, v1)), Hex(first));
	EXPECT_EQ(v2->seq.n, 10000u);
	zeo_arena_reset(&a);
	ASSERT_EQ(zeo_decode(kPk, first.data(), first.size(), &a, &v1, &err), 0);
	EXPECT_EQ(Hex(Reencode(kPk, v1)), Hex(first));
	zeo_arena_free(&a);
	zeo_arena_free(&a); // freeing twice is harmless
}

// ---------------------------------------------------------------- helpers

TEST(ZeoHelpers, EqualityFollowsPython)
{
	Dec a(kPk, H("80 03 28 88 4b 01 47 3f f0 00 00 00 00 00 00 4b 00 74 2e"));
	ASSERT_EQ(a.rc, 0);
	EXPECT_TRUE(zeo_val_equal(&a[0], &a[1])); // True == 1
	EXPECT_TRUE(zeo_val_equal(&a[1], &a[2])); // 1 == 1.0
	EXPECT_FALSE(zeo_val_equal(&a[1], &a[3]));
	// {'a': 1, 'b': 2} == {'b': 2, 'a': 1}; the later duplicate wins
	Dec x(kMp, H("82 a1 61 01 a1 62 02"));
	Dec y(kMp, H("83 a1 62 02 a1 61 05 a1 61 01"));
	Dec z(kMp, H("82 a1 62 02 a1 61 05"));
	EXPECT_TRUE(zeo_val_equal(x.v, y.v));
	EXPECT_FALSE(zeo_val_equal(x.v, z.v));
	EXPECT_EQ(zeo_dict_get(y.v, "a")->i, 1);
	EXPECT_EQ(zeo_dict_get(y.v, "c"), nullptr);
	EXPECT_EQ(zeo_dict_get(&a[0], "a"), nullptr);
	// tuple != list, str != bytes
	Dec t(kPk, H("80 03 28 4b 01 85 5d 4b 01 61 58 01 00 00 00 61 43 01 61 74 2e"));
	ASSERT_EQ(t.rc, 0);
	EXPECT_FALSE(zeo_val_equal(&t[0], &t[1]));
	EXPECT_FALSE(zeo_val_equal(&t[2], &t[3]));
}

TEST(ZeoHelpers, TruthinessAndAccessors)
{
	Dec d(kPk,
	      H("80 03 28 4e 89 88 4b 00 4b 02 47 00 00 00 00 00 00 00 00 58 00 00 00 00 43 01 78"
		"29 5d 7d 43 08 00 00 00 00 00 00 01 02 74 2e"));
	ASSERT_EQ(d.rc, 0) << d.err;
	bool want[] = {false, false, true,  false, true,  false,
		       false, true,  false, false, false, true};
	ASSERT_EQ(d.v->seq.n, 12u);
	for (uint32_t i = 0; i < 12; i++)
		EXPECT_EQ(zeo_val_truthy(&d[i]), want[i]) << i;
	EXPECT_EQ(U64(d[11]), 0x102u);
	uint64_t u;
	EXPECT_FALSE(zeo_val_u64be(&d[10], &u));
	int64_t i;
	EXPECT_TRUE(zeo_val_int(&d[2], &i));
	EXPECT_EQ(i, 1);
	EXPECT_FALSE(zeo_val_int(&d[0], &i));
	EXPECT_TRUE(zeo_val_is_str(&d[6], ""));
	EXPECT_FALSE(zeo_val_is_str(&d[7], "x"));
}

// ---------------------------------------------------------------- fuzz seed corpus

TEST(ZeoCorpus, EverySeedDecodesAndWritesBack)
{
	const char *root = getenv("ZAP_SOURCE_ROOT");
	std::string dir = std::string(root ? root : "..") + "/tests/zeo/corpus";
	DIR *d = opendir(dir.c_str());
	ASSERT_NE(d, nullptr) << dir;
	int seen = 0;
	while (struct dirent *e = readdir(d)) {
		std::string name = e->d_name;
		if (name[0] != 'z' && name[0] != 'm')
			continue;
		FILE *f = fopen((dir + "/" + name).c_str(), "rb");
		ASSERT_NE(f, nullptr) << name;
		Bytes b;
		int c;
		while ((c = fgetc(f)) != EOF)
			b.push_back((uint8_t)c);
		fclose(f);
		zeo_enc enc = name[0] == 'z' ? kPk : kMp;
		Dec v(enc, b);
		EXPECT_EQ(v.rc, 0) << name << ": " << (v.err ? v.err : "");
		if (v.rc == 0) {
			EXPECT_FALSE(Reencode(enc, v.v).empty());
		}
		seen++;
	}
	closedir(d);
	EXPECT_GE(seen, 8);
}

// ---------------------------------------------------------------- random round trips

// A value as the test builds it.
struct Model {
	zeo_type type = ZEO_NONE;
	bool b = false;
	bool big = false;
	int64_t i = 0;
	uint64_t u = 0;
	double f = 0;
	std::string s;
	std::vector<Model> items;
};

int64_t RandomInt(std::mt19937_64 &rng)
{
	static const int64_t edges[] = {0,	    1,		 127,	    128,       255,
					256,	    65535,	 65536,	    -1,	       -32,
					-33,	    -128,	 -129,	    INT32_MAX, INT32_MIN,
					2147483648, -2147483649, INT64_MAX, INT64_MIN, kTxn};
	switch (rng() % 4) {
	case 0:
		return edges[rng() % (sizeof(edges) / sizeof(edges[0]))];
	case 1:
		return (int64_t)(rng() % 70000) - 1000;
	case 2:
		return (int64_t)rng() >> (rng() % 64);
	default:
		return (int64_t)rng();
	}
}

Model RandomModel(std::mt19937_64 &rng, int depth)
{
	Model m;
	int kinds = depth >= 6 ? 7 : 10;
	switch (rng() % kinds) {
	case 0:
		m.type = ZEO_NONE;
		break;
	case 1:
		m.type = ZEO_BOOL;
		m.b = rng() & 1;
		break;
	case 2:
		m.type = ZEO_INT;
		if (rng() % 8 == 0) {
			m.big = true;
			m.u = (1ull << 63) | rng();
		} else {
			m.i = RandomInt(rng);
		}
		break;
	case 3: {
		m.type = ZEO_FLOAT;
		static const double fs[] = {0.0, -0.0, 1.5, -2.25, 1e300, INFINITY, -INFINITY};
		m.f = rng() & 1 ? fs[rng() % 7] : (double)(int64_t)rng() / 3.0;
		break;
	}
	case 4:
	case 5: {
		m.type = rng() & 1 ? ZEO_STR : ZEO_BYTES;
		size_t n = rng() % 4 == 0 ? rng() % 70000 : rng() % 40;
		if (n > 1000 && rng() % 4)
			n %= 300;
		for (size_t k = 0; k < n; k++)
			m.s.push_back((char)('a' + rng() % 26));
		break;
	}
	case 6:
		m.type = ZEO_BYTES;
		m.s = std::string(8, '\0');
		for (char &c : m.s)
			c = (char)rng();
		break;
	default: {
		static const zeo_type ct[] = {ZEO_TUPLE, ZEO_LIST, ZEO_DICT};
		m.type = ct[rng() % 3];
		size_t n = rng() % 8 == 0 ? rng() % 40 : rng() % 5;
		for (size_t k = 0; k < n; k++) {
			if (m.type == ZEO_DICT) {
				Model key;
				key.type = rng() & 1 ? ZEO_STR : ZEO_BYTES;
				key.s = "k" + std::to_string(k);
				m.items.push_back(key);
			}
			m.items.push_back(RandomModel(rng, depth + 1));
		}
		break;
	}
	}
	return m;
}

void Write(zeo_buf *b, zeo_enc e, const Model &m)
{
	uint32_t n = (uint32_t)m.items.size();
	switch (m.type) {
	case ZEO_NONE:
		zeo_w_none(b, e);
		break;
	case ZEO_BOOL:
		zeo_w_bool(b, e, m.b);
		break;
	case ZEO_INT:
		if (m.big)
			zeo_w_uint(b, e, m.u);
		else
			zeo_w_int(b, e, m.i);
		break;
	case ZEO_FLOAT:
		zeo_w_float(b, e, m.f);
		break;
	case ZEO_STR:
		zeo_w_str(b, e, m.s.data(), m.s.size());
		break;
	case ZEO_BYTES:
		zeo_w_bytes(b, e, m.s.data(), m.s.size());
		break;
	case ZEO_TUPLE:
		zeo_w_tuple_begin(b, e, n);
		for (const Model &c : m.items)
			Write(b, e, c);
		zeo_w_tuple_end(b, e, n);
		break;
	case ZEO_LIST:
		zeo_w_list_begin(b, e, n);
		for (const Model &c : m.items)
			Write(b, e, c);
		zeo_w_list_end(b, e, n);
		break;
	case ZEO_DICT:
		zeo_w_dict_begin(b, e, n / 2);
		for (const Model &c : m.items)
			Write(b, e, c);
		zeo_w_dict_end(b, e, n / 2);
		break;
	}
}

// Exact match: same types (msgpack has no lists), same bits.
::testing::AssertionResult Same(const Model &m, const zeo_val &v, zeo_enc e)
{
	zeo_type want = m.type == ZEO_LIST && e == kMp ? ZEO_TUPLE : m.type;
	if (v.type != want)
		return ::testing::AssertionFailure() << "type " << (int)v.type << " want " << want;
	switch (m.type) {
	case ZEO_BOOL:
		if (v.b != m.b)
			return ::testing::AssertionFailure() << "bool";
		break;
	case ZEO_INT:
		if (v.big != m.big || (m.big ? v.u != m.u : v.i != m.i))
			return ::testing::AssertionFailure() << "int " << m.i << " got " << v.i;
		break;
	case ZEO_FLOAT:
		if (memcmp(&v.f, &m.f, sizeof(double)) != 0)
			return ::testing::AssertionFailure() << "float " << m.f << " got " << v.f;
		break;
	case ZEO_STR:
	case ZEO_BYTES:
		if (Str(v) != m.s)
			return ::testing::AssertionFailure() << "string of " << m.s.size();
		break;
	case ZEO_TUPLE:
	case ZEO_LIST:
	case ZEO_DICT:
		if (v.seq.n != m.items.size())
			return ::testing::AssertionFailure() << "size " << v.seq.n;
		for (uint32_t k = 0; k < v.seq.n; k++) {
			auto r = Same(m.items[k], v.seq.items[k], e);
			if (!r)
				return r << " at item " << k;
		}
		break;
	default:
		break;
	}
	return ::testing::AssertionSuccess();
}

TEST(ZeoRoundTrip, RandomTreesInBothEncodings)
{
	uint64_t seed = 20261125;
	if (const char *s = getenv("ZEO_CODEC_SEED"))
		seed = strtoull(s, nullptr, 0);
	printf("zeo codec round-trip seed %" PRIu64 " (replay: ZEO_CODEC_SEED=%" PRIu64 ")\n", seed,
	       seed);
	RecordProperty("seed", std::to_string(seed));
	std::mt19937_64 rng(seed);
	Dec d, again;
	for (int round = 0; round < 400; round++) {
		Model m = RandomModel(rng, 0);
		for (zeo_enc e : {kPk, kMp}) {
			Buf b;
			zeo_w_begin(&b.b, e);
			Write(&b.b, e, m);
			zeo_w_end(&b.b, e);
			Bytes msg = b.bytes();
			ASSERT_EQ(d.run(e, msg), 0)
			    << "seed " << seed << " round " << round << ": " << d.err;
			ASSERT_TRUE(Same(m, *d.v, e)) << "seed " << seed << " round " << round;
			ASSERT_EQ(Hex(Reencode(e, d.v)), Hex(msg))
			    << "seed " << seed << " round " << round;
			// the other encoding carries the same value
			zeo_enc o = e == kPk ? kMp : kPk;
			Bytes other = Reencode(o, d.v);
			ASSERT_EQ(again.run(o, other), 0) << "seed " << seed << " round " << round;
			ASSERT_TRUE(Same(m, *again.v, kMp))
			    << "seed " << seed << " round " << round;
			if (round % 16 == 0) {
				for (size_t n = 0; n < msg.size() && n < 4096; n++) {
					Bytes cut(msg.begin(), msg.begin() + (long)n);
					ASSERT_LT(again.run(e, cut), 0)
					    << "seed " << seed << " round " << round << " prefix "
					    << n;
				}
			}
		}
	}
}

TEST(ZeoRoundTrip, MutatedExamplesDecodeOrFailCleanly)
{
	uint64_t seed = 77;
	if (const char *s = getenv("ZEO_CODEC_SEED"))
		seed = strtoull(s, nullptr, 0);
	printf("zeo codec mutation seed %" PRIu64 " (replay: ZEO_CODEC_SEED=%" PRIu64 ")\n", seed,
	       seed);
	std::mt19937_64 rng(seed);
	std::vector<Example> ex = AllExamples();
	Dec d, again;
	int accepted = 0;
	for (int round = 0; round < 20000; round++) {
		const Example &e = ex[rng() % ex.size()];
		Bytes m = e.payload;
		for (int k = 0, n = 1 + (int)(rng() % 3); k < n; k++) {
			size_t at = rng() % m.size();
			switch (rng() % 3) {
			case 0:
				m[at] = (uint8_t)rng();
				break;
			case 1:
				m.insert(m.begin() + (long)at, (uint8_t)rng());
				break;
			default:
				if (m.size() > 1)
					m.erase(m.begin() + (long)at);
				break;
			}
		}
		zeo_enc enc = rng() & 1 ? e.enc : (e.enc == kPk ? kMp : kPk);
		if (d.run(enc, m) != 0) {
			ASSERT_TRUE(d.rc == -EBADMSG || d.rc == -E2BIG)
			    << "seed " << seed << " round " << round;
			ASSERT_NE(d.err, nullptr);
			continue;
		}
		accepted++;
		Bytes w = Reencode(enc, d.v);
		ASSERT_EQ(again.run(enc, w), 0) << "seed " << seed << " round " << round;
		ASSERT_EQ(Hex(Reencode(enc, again.v)), Hex(w))
		    << "seed " << seed << " round " << round;
	}
	EXPECT_GT(accepted, 100);
}

} // namespace
