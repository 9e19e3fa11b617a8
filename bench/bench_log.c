/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap-bench-log: figures for the durable log (dataplane/log/log.c). Not a test.
 *
 *   zap-bench-log [DIR]     (default /tmp; a fresh subdirectory is used and removed;
 *                            --help: the usage)
 *
 * 1. The disk floor: one small append + zap_log_sync (one fdatasync), N times,
 *    on the file system of dir: p50/p99 in µs.
 * 2. Group commit: K client threads (K = 1, 4, 16, 64) each append a 100-byte
 *    record and wait until it is durable, for a fixed time. One log thread takes
 *    everything queued, appends it, calls zap_log_sync once and wakes the
 *    waiters (pthread mutex/condvar hand-off; zapd will use rte_ring). Printed:
 *    appends per fdatasync, commits/s, commit latency p50/p99 — in FSYNC mode,
 *    then in MEMORY mode.
 * The whole run stays under ~30 s.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"

#define BENCH_FLOOR_ROUNDS 200
#define BENCH_RECORD_BYTES 100
#define BENCH_RUN_FSYNC_US 2500000ull
#define BENCH_RUN_MEMORY_US 800000ull
#define BENCH_MAX_CLIENTS 64
#define BENCH_SAMPLES_PER_CLIENT (1u << 20)

static uint64_t bench_now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000ull + (uint64_t)t.tv_nsec / 1000;
}

static uint64_t bench_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Percentile of a sorted array, in the array's unit. */
static uint64_t bench_pct(const uint64_t *v, uint64_t n, double pct)
{
	if (n == 0)
		return 0;
	uint64_t i = (uint64_t)(pct / 100.0 * (double)(n - 1) + 0.5);
	return v[i];
}

static int bench_rm(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static struct zap_log *bench_open(const char *dir, enum zap_log_durability d)
{
	struct zap_log_params p;
	struct zap_log *l = NULL;
	char err[512];
	int rc;

	zap_log_params_init(&p, dir);
	p.durability = d;
	rc = zap_log_open(&p, NULL, NULL, &l, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "zap-bench-log: open %s: %s (%d)\n", dir, err, rc);
		exit(1);
	}
	return l;
}

/* ---- 1. the disk floor -------------------------------------------------- */

static void bench_floor(const char *dir)
{
	uint64_t lat_ns[BENCH_FLOOR_ROUNDS];
	char rec[BENCH_RECORD_BYTES];
	struct zap_log *l = bench_open(dir, ZAP_LOG_DURABILITY_FSYNC);

	memset(rec, 'f', sizeof(rec));
	for (int i = 0; i < BENCH_FLOOR_ROUNDS; i++) {
		uint64_t t0 = bench_now_ns();
		if (zap_log_append(l, ZAP_LOG_ACCEPT, (uint64_t)i, 1, rec, sizeof(rec), NULL) !=
			0 ||
		    zap_log_sync(l) != 0) {
			fprintf(stderr, "zap-bench-log: append/sync failed\n");
			exit(1);
		}
		lat_ns[i] = bench_now_ns() - t0;
	}
	zap_log_close(l);
	qsort(lat_ns, BENCH_FLOOR_ROUNDS, sizeof(lat_ns[0]), bench_cmp_u64);
	printf(
	    "disk floor: %d x (append %d B + sync), fsync mode: p50 %.1f us  p99 %.1f us  "
	    "max %.1f us\n",
	    BENCH_FLOOR_ROUNDS, BENCH_RECORD_BYTES, bench_pct(lat_ns, BENCH_FLOOR_ROUNDS, 50) / 1e3,
	    bench_pct(lat_ns, BENCH_FLOOR_ROUNDS, 99) / 1e3, lat_ns[BENCH_FLOOR_ROUNDS - 1] / 1e3);
}

/* ---- 2. group commit ---------------------------------------------------- */

struct bench_gc {
	pthread_mutex_t mu;
	pthread_cond_t work_cv; /* the log thread waits for requests */
	pthread_cond_t done_cv; /* clients wait for their ticket to be durable */
	uint64_t submitted;	/* tickets handed out (in queue order) */
	uint64_t taken;		/* tickets the log thread has taken */
	uint64_t durable;	/* tickets made durable */
	const void *queue[BENCH_MAX_CLIENTS];
	unsigned queued;
	bool stop;
	struct zap_log *log;
	int err;
};

struct bench_client {
	struct bench_gc *gc;
	uint64_t end_us;
	uint64_t *lat_ns;
	uint64_t n;
	char rec[BENCH_RECORD_BYTES];
};

static void *bench_log_thread(void *arg)
{
	struct bench_gc *gc = arg;
	const void *batch[BENCH_MAX_CLIENTS];

	pthread_mutex_lock(&gc->mu);
	for (;;) {
		while (gc->queued == 0 && !gc->stop)
			pthread_cond_wait(&gc->work_cv, &gc->mu);
		if (gc->queued == 0 && gc->stop)
			break;
		unsigned n = gc->queued;
		memcpy(batch, gc->queue, n * sizeof(batch[0]));
		gc->queued = 0;
		uint64_t upto = gc->submitted;
		pthread_mutex_unlock(&gc->mu);

		int rc = 0;
		for (unsigned i = 0; i < n && rc == 0; i++)
			rc = zap_log_append(gc->log, ZAP_LOG_ACCEPT, upto, 1, batch[i],
					    BENCH_RECORD_BYTES, NULL);
		if (rc == 0)
			rc = zap_log_sync(gc->log);

		pthread_mutex_lock(&gc->mu);
		if (rc != 0)
			gc->err = rc;
		gc->durable = upto;
		pthread_cond_broadcast(&gc->done_cv);
	}
	pthread_mutex_unlock(&gc->mu);
	return NULL;
}

static void *bench_client_thread(void *arg)
{
	struct bench_client *c = arg;
	struct bench_gc *gc = c->gc;

	while (bench_now_us() < c->end_us && c->n < BENCH_SAMPLES_PER_CLIENT) {
		uint64_t t0 = bench_now_ns();
		pthread_mutex_lock(&gc->mu);
		uint64_t ticket = ++gc->submitted;
		gc->queue[gc->queued++] = c->rec;
		pthread_cond_signal(&gc->work_cv);
		while (gc->durable < ticket)
			pthread_cond_wait(&gc->done_cv, &gc->mu);
		pthread_mutex_unlock(&gc->mu);
		c->lat_ns[c->n++] = bench_now_ns() - t0;
	}
	return NULL;
}

static void bench_group_commit(const char *dir, enum zap_log_durability d, unsigned k,
			       uint64_t run_us)
{
	struct bench_gc gc = {.mu = PTHREAD_MUTEX_INITIALIZER,
			      .work_cv = PTHREAD_COND_INITIALIZER,
			      .done_cv = PTHREAD_COND_INITIALIZER};
	struct bench_client *cl = calloc(k, sizeof(*cl));
	pthread_t log_tid, tid[BENCH_MAX_CLIENTS];
	struct zap_log_stats st0, st1;
	uint64_t total = 0, t0, elapsed_us;

	gc.log = bench_open(dir, d);
	zap_log_stats(gc.log, &st0);
	t0 = bench_now_us();
	pthread_create(&log_tid, NULL, bench_log_thread, &gc);
	for (unsigned i = 0; i < k; i++) {
		cl[i].gc = &gc;
		cl[i].end_us = t0 + run_us;
		cl[i].lat_ns = malloc(BENCH_SAMPLES_PER_CLIENT * sizeof(uint64_t));
		memset(cl[i].rec, 'a' + (int)(i % 26), sizeof(cl[i].rec));
		pthread_create(&tid[i], NULL, bench_client_thread, &cl[i]);
	}
	for (unsigned i = 0; i < k; i++)
		pthread_join(tid[i], NULL);
	elapsed_us = bench_now_us() - t0;
	pthread_mutex_lock(&gc.mu);
	gc.stop = true;
	pthread_cond_signal(&gc.work_cv);
	pthread_mutex_unlock(&gc.mu);
	pthread_join(log_tid, NULL);
	zap_log_stats(gc.log, &st1);
	zap_log_close(gc.log);

	for (unsigned i = 0; i < k; i++)
		total += cl[i].n;
	uint64_t *all = malloc((total ? total : 1) * sizeof(uint64_t)), n = 0;
	for (unsigned i = 0; i < k; i++) {
		memcpy(all + n, cl[i].lat_ns, cl[i].n * sizeof(uint64_t));
		n += cl[i].n;
		free(cl[i].lat_ns);
	}
	qsort(all, n, sizeof(all[0]), bench_cmp_u64);
	uint64_t appends = st1.appends - st0.appends;
	uint64_t syncs = st1.syncs - st0.syncs;
	uint64_t commits = st1.commits - st0.commits;
	printf("%-6s K=%-3u  %8" PRIu64 " commits  %9.0f commits/s  %6.1f appends/%s  "
	       "p50 %8.1f us  p99 %8.1f us%s\n",
	       d == ZAP_LOG_DURABILITY_FSYNC ? "fsync" : "memory", k, n,
	       (double)n * 1e6 / (double)elapsed_us,
	       d == ZAP_LOG_DURABILITY_FSYNC ? (syncs ? (double)appends / (double)syncs : 0)
					     : (commits ? (double)appends / (double)commits : 0),
	       d == ZAP_LOG_DURABILITY_FSYNC ? "fdatasync" : "sync     ",
	       bench_pct(all, n, 50) / 1e3, bench_pct(all, n, 99) / 1e3,
	       gc.err ? "  (log error!)" : "");
	free(all);
	free(cl);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: zap-bench-log [DIR]\n"
		   "  DIR         directory on the disk to measure; a fresh subdirectory is\n"
		   "              made in it and removed at the end (default /tmp)\n"
		   "  -h, --help  this text\n");
}

int main(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc > 2 || (argc > 1 && (argv[1][0] == '-' || argv[1][0] == '\0'))) {
		fprintf(stderr, "zap-bench-log: bad arguments: one DIR at most, not an option\n");
		usage(stderr);
		return 2;
	}
	const char *base = argc > 1 ? argv[1] : "/tmp";
	static const unsigned ks[] = {1, 4, 16, 64};
	char root[4096], dir[4200];

	snprintf(root, sizeof(root), "%s/zap-bench-log-XXXXXX", base);
	if (mkdtemp(root) == NULL) {
		fprintf(stderr, "zap-bench-log: mkdtemp %s: %s\n", root, strerror(errno));
		return 1;
	}
	printf("zap-bench-log: log in %s\n", root);

	snprintf(dir, sizeof(dir), "%s/floor", root);
	bench_floor(dir);

	printf("group commit: K clients, each appends %d B and waits until durable; one log "
	       "thread syncs per batch\n",
	       BENCH_RECORD_BYTES);
	for (unsigned i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
		snprintf(dir, sizeof(dir), "%s/gc-fsync-%u", root, ks[i]);
		bench_group_commit(dir, ZAP_LOG_DURABILITY_FSYNC, ks[i], BENCH_RUN_FSYNC_US);
	}
	for (unsigned i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
		snprintf(dir, sizeof(dir), "%s/gc-memory-%u", root, ks[i]);
		bench_group_commit(dir, ZAP_LOG_DURABILITY_MEMORY, ks[i], BENCH_RUN_MEMORY_US);
	}
	nftw(root, bench_rm, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
