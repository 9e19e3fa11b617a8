/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit test of bench/hist.c: bucket boundaries are contiguous and monotonic
 * over 1 ns .. 10 s, every value lands in a bucket that holds it, the
 * reported value is within 1 % of the recorded one, quantiles of known
 * distributions, merge, clamping.
 */
#include "hist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int failures;

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);      \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_buckets(void)
{
	uint32_t top = hist_index(HIST_MAX_NS);
	CHECK(top < HIST_BUCKETS);
	CHECK(hist_bucket_lo(0) == 0);
	for (uint32_t i = 1; i <= top; i++)
		CHECK(hist_bucket_lo(i) == hist_bucket_hi(i - 1) + 1);
	for (uint32_t i = 0; i <= top; i++) {
		CHECK(hist_index(hist_bucket_lo(i)) == i);
		CHECK(hist_index(hist_bucket_hi(i)) == i);
		uint64_t lo = hist_bucket_lo(i), hi = hist_bucket_hi(i);
		uint64_t mid = lo + (hi - lo) / 2u;
		if (lo > 0) {
			CHECK((double)(hi - mid) <= 0.01 * (double)hi);
			CHECK((double)(mid - lo) <= 0.01 * (double)lo);
		}
	}
	CHECK(hist_index(HIST_MAX_NS * 10) == top);
}

static void test_error_bound(void)
{
	uint64_t s = 88172645463325252ull;
	for (int k = 0; k < 1000000; k++) {
		/* log-uniform over 1 ns .. 10 s */
		double e = (double)(rnd(&s) % 1000000) / 1000000.0 * 10.0;
		uint64_t v = (uint64_t)pow(10.0, e);
		if (v == 0)
			v = 1;
		struct hist h;
		if (k % 1000 == 0) {
			hist_init(&h);
			hist_record(&h, v);
			hist_record(&h, 1);
			hist_record(&h, HIST_MAX_NS);
			uint64_t q = hist_quantile(&h, 0.5);
			CHECK(fabs((double)q - (double)v) <= 0.01 * (double)v);
		}
		uint32_t i = hist_index(v);
		CHECK(hist_bucket_lo(i) <= v && v <= hist_bucket_hi(i));
	}
}

static void test_quantiles(void)
{
	static struct hist h, a, b;
	hist_init(&h);
	hist_init(&a);
	hist_init(&b);
	CHECK(hist_quantile(&h, 0.5) == 0);
	for (uint64_t v = 1; v <= 100000; v++) {
		hist_record(&h, v * 1000);
		hist_record(v % 2 ? &a : &b, v * 1000);
	}
	const double qs[] = {0.5, 0.9, 0.99, 0.999};
	for (unsigned i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		double want = qs[i] * 100000.0 * 1000.0;
		CHECK(fabs((double)hist_quantile(&h, qs[i]) - want) <= 0.01 * want);
	}
	CHECK(hist_quantile(&h, 1.0) == 100000000ull);
	CHECK(hist_quantile(&h, 0.0) == 1000);
	CHECK(h.count == 100000 && h.min == 1000 && h.max == 100000000ull);
	CHECK(fabs(hist_mean(&h) - 50000500.0) < 1.0);
	hist_merge(&a, &b);
	CHECK(a.count == h.count && a.sum == h.sum && a.min == h.min && a.max == h.max);
	for (uint32_t i = 0; i < HIST_BUCKETS; i++)
		CHECK(a.b[i] == h.b[i]);
	hist_record(&a, HIST_MAX_NS * 3);
	CHECK(a.clamped == 1 && a.max == HIST_MAX_NS * 3);
	CHECK(hist_quantile(&a, 1.0) == HIST_MAX_NS * 3);
}

int main(void)
{
	test_buckets();
	test_error_bound();
	test_quantiles();
	if (failures) {
		fprintf(stderr, "test_hist: %d failures\n", failures);
		return 1;
	}
	printf("test_hist: ok (%u buckets)\n", HIST_BUCKETS);
	return 0;
}
