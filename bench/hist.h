/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * A log-linear latency histogram in the manner of HdrHistogram: values from
 * 1 ns to 10 s (larger values are clamped to the top bucket and counted),
 * 256 linear sub-buckets per power of two, so a bucket is at most 1/128 of
 * its lower bound wide and a reported value (the bucket's midpoint) is within
 * 0.4 % of every value recorded in it. Exact count, sum, minimum and maximum
 * are kept beside the buckets.
 *
 * Not thread-safe: one histogram per thread, merged at the end.
 */
#ifndef ZAP_BENCH_HIST_H
#define ZAP_BENCH_HIST_H

#include <stdint.h>
#include <stdio.h>

/** Largest value kept exactly in its bucket: 10 s in ns. */
#define HIST_MAX_NS 10000000000ull
/** log2 of the sub-buckets per power of two. */
#define HIST_SUB_BITS 8u
#define HIST_SUB (1u << HIST_SUB_BITS)
/** Buckets: values below HIST_SUB one each, then HIST_SUB / 2 per power of two up to 2^34. */
#define HIST_BUCKETS (HIST_SUB + (34u - HIST_SUB_BITS) * (HIST_SUB / 2u))

struct hist {
	uint64_t count;
	uint64_t sum;
	uint64_t min;
	uint64_t max;
	uint64_t clamped; /**< values above HIST_MAX_NS */
	uint64_t b[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t v);
/** Add @p src into @p dst. */
void hist_merge(struct hist *dst, const struct hist *src);
/** Bucket index of a value (exposed for the test). */
uint32_t hist_index(uint64_t v);
/** Lowest and highest value of bucket @p i. */
uint64_t hist_bucket_lo(uint32_t i);
uint64_t hist_bucket_hi(uint32_t i);
/**
 * The value at quantile @p q (0..1): the midpoint of the bucket holding the
 * ceil(q * count)-th smallest value, clipped to [min, max]; q = 0 is min, q = 1 is max.
 * 0 for an empty histogram.
 */
uint64_t hist_quantile(const struct hist *h, double q);
double hist_mean(const struct hist *h);
/** CSV: value_ns,count,cumulative fraction, one line per non-empty bucket. */
void hist_write_csv(const struct hist *h, FILE *f);

#endif /* ZAP_BENCH_HIST_H */
