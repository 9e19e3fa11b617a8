/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap tids: conversion between Unix nanoseconds and ZODB TimeStamp tids.
 *
 * Design: calendar arithmetic on integers only. Days since the epoch are
 * turned into a proleptic Gregorian date by counting 400-year eras (146097
 * days each) in a calendar that starts on March 1, so that the leap day is
 * the last day of its year; the inverse does the same in reverse. The
 * sub-minute part uses 128-bit products so nothing overflows.
 *
 * Invariants: zap_tid_from_unix_ns() is monotonic in its argument, and
 * zap_tid_from_unix_ns(zap_tid_to_unix_ns(t)) == t for valid tids from 1970.
 *
 * Threading: pure functions, callable from anywhere.
 */
#include "tid.h"

#include <stdio.h>

#define ZAP_NS_PER_SEC 1000000000ull
#define ZAP_NS_PER_MIN (60ull * ZAP_NS_PER_SEC)
#define ZAP_NS_PER_DAY (1440ull * ZAP_NS_PER_MIN)
#define ZAP_DAYS_PER_ERA 146097
/** Days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar. */
#define ZAP_EPOCH_SHIFT_DAYS 719468
#define ZAP_TID_EPOCH_YEAR 1900

struct zap_civil {
	int64_t year;
	uint32_t month; /* 1..12 */
	uint32_t day;	/* 1..31 */
};

/* Days since 1970-01-01 (may be negative) of a date; day may overflow its month. */
static int64_t zap_days_from_civil(int64_t year, uint32_t month, uint32_t day)
{
	int64_t y = year - (month <= 2);
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;					  /* 0..399 */
	int64_t mp = month > 2 ? (int64_t)month - 3 : (int64_t)month + 9; /* March = 0 */
	int64_t doy = (153 * mp + 2) / 5 + (int64_t)day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * ZAP_DAYS_PER_ERA + doe - ZAP_EPOCH_SHIFT_DAYS;
}

/* Date of a day count since 1970-01-01 (non-negative here). */
static struct zap_civil zap_civil_from_days(int64_t days)
{
	struct zap_civil c;
	int64_t z = days + ZAP_EPOCH_SHIFT_DAYS;
	int64_t era = z / ZAP_DAYS_PER_ERA;
	int64_t doe = z - era * ZAP_DAYS_PER_ERA;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;

	c.day = (uint32_t)(doy - (153 * mp + 2) / 5 + 1);
	c.month = (uint32_t)(mp < 10 ? mp + 3 : mp - 9);
	c.year = yoe + era * 400 + (c.month <= 2);
	return c;
}

uint64_t zap_tid_from_unix_ns(uint64_t unix_ns)
{
	uint64_t days = unix_ns / ZAP_NS_PER_DAY;
	uint64_t ns_of_day = unix_ns % ZAP_NS_PER_DAY;
	uint64_t min_of_day = ns_of_day / ZAP_NS_PER_MIN;
	uint64_t ns_of_min = ns_of_day % ZAP_NS_PER_MIN;
	struct zap_civil c = zap_civil_from_days((int64_t)days);
	uint64_t minutes, frac;

	minutes = ((uint64_t)(c.year - ZAP_TID_EPOCH_YEAR) * 12 + c.month - 1) * 31 + c.day - 1;
	minutes = minutes * 1440 + min_of_day;
	frac = (uint64_t)(((unsigned __int128)ns_of_min << 32) / ZAP_NS_PER_MIN);
	return (minutes << 32) | frac;
}

uint64_t zap_tid_to_unix_ns(uint64_t tid)
{
	uint64_t v = tid >> 32;
	uint64_t frac = tid & 0xffffffffull;
	uint64_t minute = v % 60, hour, ns_of_min;
	uint32_t day, month;
	int64_t year, days;
	unsigned __int128 total;

	v /= 60;
	hour = v % 24;
	v /= 24;
	day = (uint32_t)(v % 31) + 1;
	v /= 31;
	month = (uint32_t)(v % 12) + 1;
	year = (int64_t)(v / 12) + ZAP_TID_EPOCH_YEAR;
	days = zap_days_from_civil(year, month, day);
	if (days < 0)
		return 0;
	/* round up so that converting back yields the same tid */
	ns_of_min = (uint64_t)((((unsigned __int128)frac * ZAP_NS_PER_MIN) + 0xffffffffu) >> 32);
	total = (unsigned __int128)days * ZAP_NS_PER_DAY + (hour * 60 + minute) * ZAP_NS_PER_MIN +
		ns_of_min;
	if (total > UINT64_MAX)
		return UINT64_MAX;
	return (uint64_t)total;
}

uint64_t zap_tid_later(uint64_t candidate, uint64_t last)
{
	return candidate > last ? candidate : last + 1;
}

void zap_tid_format(uint64_t tid, char *buf, size_t len)
{
	uint64_t v = tid >> 32;
	uint64_t frac = tid & 0xffffffffull;
	uint64_t us_of_min = (uint64_t)(((unsigned __int128)frac * 60000000u) >> 32);
	unsigned minute = (unsigned)(v % 60), hour, day, month;
	unsigned long long year;

	if (len == 0)
		return;
	v /= 60;
	hour = (unsigned)(v % 24);
	v /= 24;
	day = (unsigned)(v % 31) + 1;
	v /= 31;
	month = (unsigned)(v % 12) + 1;
	year = (unsigned long long)(v / 12) + ZAP_TID_EPOCH_YEAR;
	snprintf(buf, len, "%04llu-%02u-%02u %02u:%02u:%02u.%06u", year, month, day, hour, minute,
		 (unsigned)(us_of_min / 1000000u), (unsigned)(us_of_min % 1000000u));
}
