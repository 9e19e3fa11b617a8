// SPDX-License-Identifier: Apache-2.0
// Tests of zap tids (ZODB TimeStamp layout). Vectors computed by hand from
// the packing formula in tid.h.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

extern "C" {
#include "base/tid.h"
}

namespace
{

constexpr uint64_t kNsPerSec = 1000000000ull;

TEST(Tid, Year2000HasHighWordFromMinutePacking)
{
	// (2000-1900)*12*31*24*60 = 53568000 = 0x03316200 minutes, no seconds
	EXPECT_EQ(zap_tid_from_unix_ns(946684800ull * kNsPerSec), 0x0331620000000000ull);
}

TEST(Tid, UnixEpochPacksTo1970)
{
	// 70*12*31*24*60 = 37497600 = 0x023C2B00
	EXPECT_EQ(zap_tid_from_unix_ns(0), 0x023C2B0000000000ull);
}

TEST(Tid, KnownVectorsWithSeconds)
{
	// 2026-11-25 09:05:12.123456
	EXPECT_EQ(zap_tid_from_unix_ns(1795597512123456000ull), 0x040d3fe133ba0bffull);
	// 2024-02-29 23:59:59.999999999 (leap day)
	EXPECT_EQ(zap_tid_from_unix_ns(1709251199999999999ull), 0x03f6df7fffffffffull);
	// 2100-03-01 12:30:30.5 (2100 is not a leap year)
	EXPECT_EQ(zap_tid_from_unix_ns(4107587430500000000ull), 0x066423ae82222222ull);
}

TEST(Tid, LowWordIsSecondsTimesTwoPow32Over60)
{
	uint64_t t = zap_tid_from_unix_ns(946684800ull * kNsPerSec + 30 * kNsPerSec);
	EXPECT_EQ(t & 0xffffffffull, 0x80000000ull);
}

TEST(Tid, ToUnixNsInvertsKnownVectors)
{
	EXPECT_EQ(zap_tid_to_unix_ns(0x0331620000000000ull), 946684800ull * kNsPerSec);
	EXPECT_EQ(zap_tid_to_unix_ns(0x023C2B0000000000ull), 0u);
}

TEST(Tid, BeforeEpochConvertsToZero)
{
	EXPECT_EQ(zap_tid_to_unix_ns(0), 0u);
	// 1969-12-31 23:59
	EXPECT_EQ(zap_tid_to_unix_ns(((69ull * 12 * 31 * 1440) + 11 * 31 * 1440 + 30 * 1440 + 1439)
				     << 32),
		  0u);
}

TEST(Tid, RoundTripWithinOneMicrosecond)
{
	std::mt19937_64 rng(12345);
	for (int i = 0; i < 200000; i++) {
		uint64_t ns = rng() % (4102444800ull * kNsPerSec); // until 2100
		uint64_t tid = zap_tid_from_unix_ns(ns);
		uint64_t back = zap_tid_to_unix_ns(tid);
		ASSERT_LE(back, ns) << ns;
		ASSERT_LT(ns - back, 1000u) << ns;
		ASSERT_EQ(zap_tid_from_unix_ns(back), tid) << ns;
	}
}

TEST(Tid, MonotonicInClock)
{
	std::mt19937_64 rng(777);
	uint64_t ns = 1600000000ull * kNsPerSec, prev = zap_tid_from_unix_ns(ns);
	for (int i = 0; i < 200000; i++) {
		ns += rng() % (3 * kNsPerSec);
		uint64_t t = zap_tid_from_unix_ns(ns);
		ASSERT_GE(t, prev);
		prev = t;
	}
}

TEST(Tid, EveryDayBoundaryIsMidnight)
{
	// walk day by day over 1970..2200 and check the packed date fields
	for (uint64_t day = 0; day < 84000; day++) {
		uint64_t t = zap_tid_from_unix_ns(day * 86400ull * kNsPerSec);
		ASSERT_EQ(t & 0xffffffffull, 0u);
		ASSERT_EQ((t >> 32) % 1440, 0u) << day;
		ASSERT_EQ(zap_tid_to_unix_ns(t), day * 86400ull * kNsPerSec);
	}
}

TEST(Tid, LaterTakesCandidateWhenLater)
{
	EXPECT_EQ(zap_tid_later(100, 99), 100u);
	EXPECT_EQ(zap_tid_later(100, 100), 101u);
	EXPECT_EQ(zap_tid_later(5, 100), 101u);
}

TEST(Tid, FormatPrintsUtcMicroseconds)
{
	char buf[ZAP_TID_FORMAT_LEN + 1];
	zap_tid_format(0x040d3fe133ba0bffull, buf, sizeof(buf));
	EXPECT_STREQ(buf, "2026-11-25 09:05:12.123455");
	zap_tid_format(zap_tid_from_unix_ns(1795597512123457000ull), buf, sizeof(buf));
	EXPECT_STREQ(buf, "2026-11-25 09:05:12.123456");
	zap_tid_format(0x0331620000000000ull, buf, sizeof(buf));
	EXPECT_STREQ(buf, "2000-01-01 00:00:00.000000");
	EXPECT_EQ(strlen(buf), (size_t)ZAP_TID_FORMAT_LEN);
}

TEST(Tid, FormatTruncatesToBuffer)
{
	char buf[5];
	zap_tid_format(0x0331620000000000ull, buf, sizeof(buf));
	EXPECT_STREQ(buf, "2000");
}

} // namespace
