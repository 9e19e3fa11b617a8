/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap-bench-store: micro-benchmark of the store's read path.
 *
 * For stores of 1 k, 1 M and 10 M objects (100-byte records, committed
 * 1000 objects per transaction), measures:
 *   - commit rate while loading the store (objects/s);
 *   - loadBefore of uniformly random oids at the current tid and at an
 *     older tid (half the objects have two revisions), ns/op, with one read
 *     section per 1000 lookups (how a gateway batches) and with one read
 *     section per lookup;
 *   - the pause of a pack with garbage collection at the last tid (what a
 *     PACK costs the apply stage): the older revision of every other object
 *     goes, and the mark walks every object (object k references 2k+1 and
 *     2k+2, a tree from oid 0).
 *
 *   zap-bench-store [MAX_OBJECTS]    (default 10000000; --help: the usage)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

#define RECORD_BYTES 100u
#define TXN_OBJECTS 1000u
#define LOOKUPS (4u << 20)
#define SECTION_LOOKUPS 1000u

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Commit oids [first, first+n) at tid, TXN_OBJECTS per transaction. */
static int load_objects(struct zap_store *s, uint64_t first, uint64_t n, uint64_t step,
			uint64_t *tid)
{
	static uint8_t rec[TXN_OBJECTS][RECORD_BYTES]; /* each record starts with its oid */
	struct zap_store_write w[TXN_OBJECTS];
	uint64_t oid = first;
	while (oid < first + n) {
		uint32_t k = 0;
		for (; k < TXN_OBJECTS && oid < first + n; k++, oid += step) {
			memcpy(rec[k], &oid, sizeof(oid));
			w[k] = (struct zap_store_write){oid, rec[k], RECORD_BYTES, 0};
		}
		int rc = zap_store_commit(s, ++*tid, NULL, w, k);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static uint64_t tree_objects; /* the tree's size, for tree_refs */

/* References of the benchmark's records: oid k (its first 8 bytes) -> 2k+1, 2k+2. */
static int tree_refs(const void *rec, size_t len, zap_store_oid_fn fn, void *arg)
{
	uint64_t k;
	if (len < sizeof(k))
		return -EINVAL;
	memcpy(&k, rec, sizeof(k));
	for (uint64_t c = 2 * k + 1; c <= 2 * k + 2; c++)
		if (c < tree_objects) {
			int rc = fn(arg, c);
			if (rc != 0)
				return rc;
		}
	return 0;
}

static double bench_lookups(struct zap_store_reader *r, const uint64_t *oids, uint64_t before,
			    uint32_t per_section, uint64_t *found)
{
	uint64_t t0 = now_ns(), hits = 0;
	for (uint32_t i = 0; i < LOOKUPS; i += per_section) {
		zap_store_read_begin(r);
		for (uint32_t j = i; j < i + per_section; j++) {
			struct zap_store_rev rev;
			if (zap_store_load_before(r, oids[j], before, &rev) == 0)
				hits += ((const uint8_t *)rev.data)[0] != 0xff;
		}
		zap_store_read_end(r);
	}
	*found = hits;
	return (double)(now_ns() - t0) / LOOKUPS;
}

static int run(uint64_t n)
{
	struct zap_store_params p = {0};
	p.size_bytes = n * 420 + (256u << 20);
	struct zap_store *s;
	int rc = zap_store_create(&p, &s);
	if (rc != 0) {
		fprintf(stderr, "create: %s\n", strerror(-rc));
		return 1;
	}
	uint64_t tid = 0;
	uint64_t t0 = now_ns();
	rc = load_objects(s, 0, n, 1, &tid);
	uint64_t t1 = now_ns();
	uint64_t mid_tid = tid + 1;
	if (rc == 0) /* a second revision for every other object */
		rc = load_objects(s, 0, n, 2, &tid);
	if (rc != 0) {
		fprintf(stderr, "commit: %s\n", strerror(-rc));
		return 1;
	}
	uint64_t *oids = malloc(sizeof(uint64_t) * LOOKUPS);
	uint64_t seed = 88172645463325252ull;
	for (uint32_t i = 0; i < LOOKUPS; i++)
		oids[i] = xorshift(&seed) % n;
	struct zap_store_reader *r;
	zap_store_reader_open(s, &r);
	uint64_t hits;
	double cur = bench_lookups(r, oids, tid + 1, SECTION_LOOKUPS, &hits);
	double old = bench_lookups(r, oids, mid_tid, SECTION_LOOKUPS, &hits);
	double each = bench_lookups(r, oids, tid + 1, 1, &hits);
	struct zap_store_stats st;
	zap_store_stats(s, &st);
	printf("%10llu objects  commit %6.2f Mobj/s  loadBefore current %6.1f ns  older %6.1f ns"
	       "  section-per-read %6.1f ns  (store %llu MiB, index %llu slots)\n",
	       (unsigned long long)n, (double)n / ((double)(t1 - t0) / 1e3), cur, old, each,
	       (unsigned long long)(st.bytes_in_use >> 20), (unsigned long long)st.index_slots);
	zap_store_reader_close(r);
	tree_objects = n;
	struct zap_store_gc gc = {tree_refs, NULL, NULL};
	struct zap_store_gc_result res;
	uint64_t p0 = now_ns();
	rc = zap_store_pack_gc(s, tid, &gc, &res);
	uint64_t p1 = now_ns();
	uint64_t freed = zap_store_reclaim(s);
	printf("%10llu objects  pack + GC at the last tid: %.1f ms on the writer (reachable %llu, "
	       "collected %llu%s), reclaim %.1f ms (%llu blocks)\n",
	       (unsigned long long)n, (double)(p1 - p0) / 1e6, (unsigned long long)res.reachable,
	       (unsigned long long)res.collected, res.aborted ? ", aborted" : "",
	       (double)(now_ns() - p1) / 1e6, (unsigned long long)freed);
	if (rc != 0) {
		fprintf(stderr, "pack: %s\n", strerror(-rc));
		return 1;
	}
	free(oids);
	zap_store_close(s);
	return hits == 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: zap-bench-store [MAX_OBJECTS]\n"
		   "  MAX_OBJECTS  largest store measured: stores of 1000, 1000000 and 10000000\n"
		   "               objects up to this size (default 10000000)\n"
		   "  -h, --help   this text\n");
}

int main(int argc, char **argv)
{
	static const uint64_t sizes[] = {1000ull, 1000000ull, 10000000ull};
	uint64_t max = 10000000ull;
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc > 2) {
		fprintf(stderr, "zap-bench-store: unexpected argument '%s'\n", argv[2]);
		usage(stderr);
		return 2;
	}
	if (argc > 1) {
		char *end;
		errno = 0;
		max = strtoull(argv[1], &end, 0);
		if (errno != 0 || end == argv[1] || *end != '\0' || argv[1][0] == '-') {
			fprintf(stderr, "zap-bench-store: bad MAX_OBJECTS '%s'\n", argv[1]);
			usage(stderr);
			return 2;
		}
	}
	printf("zap-bench-store: %u lookups per figure, %u-byte records, uniform random oids\n",
	       LOOKUPS, RECORD_BYTES);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && sizes[i] <= max; i++)
		if (run(sizes[i]) != 0)
			return 1;
	return 0;
}
