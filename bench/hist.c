/* SPDX-License-Identifier: Apache-2.0 */
#include "hist.h"

#include <inttypes.h>
#include <string.h>

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

uint32_t hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (uint32_t)v;
	if (v > HIST_MAX_NS)
		v = HIST_MAX_NS;
	uint32_t msb = 63u - (uint32_t)__builtin_clzll(v);
	uint32_t shift = msb - (HIST_SUB_BITS - 1u);
	uint32_t m = (uint32_t)(v >> shift); /* HIST_SUB / 2 .. HIST_SUB - 1 */
	return HIST_SUB + (shift - 1u) * (HIST_SUB / 2u) + (m - HIST_SUB / 2u);
}

uint64_t hist_bucket_lo(uint32_t i)
{
	if (i < HIST_SUB)
		return i;
	uint32_t k = i - HIST_SUB;
	uint32_t shift = k / (HIST_SUB / 2u) + 1u;
	uint64_t m = HIST_SUB / 2u + k % (HIST_SUB / 2u);
	return m << shift;
}

uint64_t hist_bucket_hi(uint32_t i)
{
	if (i < HIST_SUB)
		return i;
	uint32_t shift = (i - HIST_SUB) / (HIST_SUB / 2u) + 1u;
	return hist_bucket_lo(i) + (1ull << shift) - 1u;
}

void hist_record(struct hist *h, uint64_t v)
{
	if (v > HIST_MAX_NS)
		h->clamped++;
	h->b[hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	for (uint32_t i = 0; i < HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum += src->sum;
	dst->clamped += src->clamped;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

static uint64_t clip(const struct hist *h, uint64_t v)
{
	if (v < h->min)
		return h->min;
	if (v > h->max)
		return h->max;
	return v;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	if (h->count == 0)
		return 0;
	if (q >= 1.0)
		return h->max;
	if (q <= 0)
		return h->min;
	uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999999);
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t lo = hist_bucket_lo(i), hi = hist_bucket_hi(i);
			return clip(h, lo + (hi - lo) / 2u);
		}
	}
	return h->max;
}

double hist_mean(const struct hist *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0.0;
}

void hist_write_csv(const struct hist *h, FILE *f)
{
	uint64_t seen = 0;
	fprintf(f, "value_ns,count,cumulative\n");
	for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
		if (h->b[i] == 0)
			continue;
		seen += h->b[i];
		uint64_t lo = hist_bucket_lo(i), hi = hist_bucket_hi(i);
		fprintf(f, "%" PRIu64 ",%" PRIu64 ",%.9f\n", clip(h, lo + (hi - lo) / 2u), h->b[i],
			(double)seen / (double)h->count);
	}
}
