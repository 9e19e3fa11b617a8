/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap-bench: the latency load generator (docs/benchmarks.md).
 *
 *   zap-bench --target native|native-memif|zeo|shm|etcd|fsync --addr ADDR --op OP [options]
 *
 * Targets:
 *   native  a zap node's client service over kernel UDP (libzapclient);
 *           ADDR is HOST:PORT[,HOST:PORT...] (clients spread round robin)
 *   native-memif  the same protocol over DPDK: a memif client port to the
 *           node's DPDK client port (--memif SOCKET, the socket of the node's
 *           `role: client` vdev); ADDR is the node's client IPV4:PORT; one
 *           client (bench/native_memif.h)
 *   zeo     any ZEO 5 server over TCP (bench/zeo_bench_client.c); ADDR HOST:PORT
 *   shm     a zap store read in this process through the shared-memory read
 *           API; ADDR is a path zap_store_attach() opens (/proc/PID/fd/N of a
 *           running zapd's memfd), or "local:N" for a store built here with N
 *           objects
 *   etcd    etcd's v3 JSON gateway over HTTP/1.1 keep-alive; ADDR HOST:PORT
 *   fsync   the disk floor: append VALUE bytes to a file in ADDR (a directory)
 *           and fdatasync, one file per client
 *
 * Operations (--op): load (loadBefore of a random oid, --dist uniform|zipf),
 * commit (one-shot commit of --objs new objects of --value-size bytes; ZEO:
 * tpc_begin, storea, vote, tpc_finish), commit2pc (native PREPARE + COMMIT),
 * mix (--write-pct % commits, the rest loads), conflict (commits over --hot
 * hot oids from a per-client serial cache, as a ZODB client would: a
 * conflict refreshes the cache and counts), append (fsync target: --objs
 * writes of --value-size bytes, then one fdatasync), blob (zeo: a new object
 * with a --blob-size blob committed through storeBlobStart / storeBlobChunk /
 * storeBlobEnd, then read back with sendBlob and compared byte for byte; the
 * bytes come from a pattern, one chunk at a time, never the whole blob).
 *
 * --iterations N: each client runs N measured operations and stops (or when
 * --duration runs out); for large transactions and blobs, reported with the
 * MB/s of one operation.
 *
 * --idle-conns N (zeo): N more connections that register and then stay idle
 * for the run beside the measured clients (zap_bench_idle.c).
 *
 * Load: --clients N threads, one request in flight each. Closed loop by
 * default; --rate R makes it open loop: each client draws Poisson arrivals at
 * R / N per second and latency is measured from each request's intended send
 * time, so a stall shows as the queueing delay it causes.
 *
 * Output: one line on stdout; --json FILE (every figure and the options),
 * --csv FILE (the histogram of all operations).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "etcd_bench_client.h"
#include "hist.h"
#include "store/store.h"
#include "client/zapclient.h"
#include "native_memif.h"
#include "zap_bench.h"
#include "zeo_bench_client.h"

#define NS_PER_S 1000000000ull
#define ZEO_MAXTID 0x7fffffffffffffffull

static struct zap_store *shm_store;
static struct nm *memif_nm; /* native-memif: the DPDK port all (one) clients use */
static uint64_t run_tag;    /* random bits that keep this run's new oids apart */

/* Zipf sampler (Gray et al., as YCSB): precomputed constants over n items. */
static struct {
	double alpha, zetan, eta, theta;
	uint64_t n;
} zf;

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * NS_PER_S + (uint64_t)t.tv_nsec;
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static double rnd01(uint64_t *s)
{
	return (double)(rnd(s) >> 11) / 9007199254740992.0;
}

static void zipf_init(uint64_t n, double theta)
{
	double zeta2 = 0;
	zf.zetan = 0;
	for (uint64_t i = 1; i <= n; i++)
		zf.zetan += 1.0 / pow((double)i, theta);
	for (uint64_t i = 1; i <= 2 && i <= n; i++)
		zeta2 += 1.0 / pow((double)i, theta);
	zf.n = n;
	zf.theta = theta;
	zf.alpha = 1.0 / (1.0 - theta);
	zf.eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / zf.zetan);
}

/* 0..n-1, item 0 the most popular; ranks are scattered over the oid space */
static uint64_t zipf_next(uint64_t *s)
{
	double u = rnd01(s);
	double uz = u * zf.zetan;
	uint64_t r;
	if (uz < 1.0)
		r = 0;
	else if (uz < 1.0 + pow(0.5, zf.theta))
		r = 1;
	else
		r = (uint64_t)((double)zf.n * pow(zf.eta * u - zf.eta + 1.0, zf.alpha));
	if (r >= zf.n)
		r = zf.n - 1;
	return (r * 0x9E3779B97F4A7C15ull) % zf.n;
}

static uint64_t pick_oid(uint64_t *s)
{
	uint64_t i = o.zipf ? zipf_next(s) : rnd(s) % o.objects;
	return o.oid_base + i;
}

/* ---------------------------------------------------------------- a client */

static struct worker *workers;
static _Atomic int go;
static uint64_t t_start, t_measure, t_end, t_hard_end;

static int worker_connect(struct worker *w)
{
	const struct addr *a = &addrs[w->id % (n_addrs ? n_addrs : 1)];
	switch (o.target) {
	case T_NATIVE: {
		int rc = zap_client_open(a->host, a->port, o.cluster_id, &w->nc);
		if (rc == 0)
			zap_client_set_timeout(w->nc, o.timeout_ms, 4);
		return rc;
	}
	case T_NATIVE_MEMIF: {
		struct zap_client_transport t = nm_transport(memif_nm);
		int rc = zap_client_open_transport(&t, o.cluster_id, NULL, &w->nc);
		if (rc == 0)
			zap_client_set_timeout(w->nc, o.timeout_ms, 4);
		return rc;
	}
	case T_ZEO:
		return zeob_open(a->host, a->port, &w->zc);
	case T_ETCD:
		return etcdb_open(a->host, a->port, &w->ec);
	case T_SHM:
		return zap_store_reader_open(shm_store, &w->sr);
	case T_FSYNC: {
		char p[600];
		snprintf(p, sizeof(p), "%s/zap-bench-fsync-%u-%d", o.addr, w->id, (int)getpid());
		w->fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
		if (w->fd < 0)
			return -errno;
		unlink(p);
		return 0;
	}
	}
	return -EINVAL;
}

static void worker_disconnect(struct worker *w)
{
	zap_client_close(w->nc);
	zeob_close(w->zc);
	etcdb_close(w->ec);
	if (w->sr)
		zap_store_reader_close(w->sr);
	if (o.target == T_FSYNC && w->fd >= 0)
		close(w->fd);
}

static void key_of(uint64_t oid, char *k, size_t *klen)
{
	*klen = (size_t)snprintf(k, 32, "k%016" PRIx64, oid);
}

static int do_load(struct worker *w, uint64_t oid)
{
	switch (o.target) {
	case T_NATIVE:
	case T_NATIVE_MEMIF: {
		struct zap_client_record rec;
		return zap_client_load_before(w->nc, oid, ZEO_MAXTID, &rec);
	}
	case T_ZEO: {
		uint32_t len;
		uint64_t serial;
		return zeob_load_before(w->zc, oid, ZEO_MAXTID, &len, &serial);
	}
	case T_SHM: {
		struct zap_store_rev rev;
		zap_store_read_begin(w->sr);
		int rc = zap_store_load_before(w->sr, oid, UINT64_MAX, &rev);
		volatile uint8_t sink = rc == 0 && rev.len ? ((const uint8_t *)rev.data)[0] : 0;
		(void)sink;
		zap_store_read_end(w->sr);
		return rc;
	}
	case T_ETCD: {
		char k[32];
		size_t kl;
		key_of(oid, k, &kl);
		return etcdb_get(w->ec, k, kl, 0);
	}
	default:
		return -ENOTSUP;
	}
}

/*
 * Commit n objects: @p oids with base @p serials (NULL: new objects).
 * *@p conflict_serial is set on a conflict. two_phase: PREPARE + COMMIT.
 */
static int do_commit(struct worker *w, const uint64_t *oids, const uint64_t *serials, uint32_t n,
		     bool two_phase, uint64_t *tid, uint64_t *conflict_serial)
{
	for (uint32_t i = 0; i < n; i++)
		memcpy(w->value, &oids[i], sizeof(oids[i])); /* records differ */
	switch (o.target) {
	case T_NATIVE:
	case T_NATIVE_MEMIF: {
		for (uint32_t i = 0; i < n; i++) {
			w->nst[i] = (struct zap_cp_store){.oid = oids[i],
							  .base_serial = serials ? serials[i] : 0,
							  .data = w->value,
							  .len = o.value_size};
		}
		struct zap_client_txn t = {.stores = w->nst, .n_stores = n};
		struct zap_client_conflict cf = {0};
		int rc;
		if (two_phase) {
			do {
				t.txn_id = rnd(&w->seed);
			} while (t.txn_id == 0);
			rc = zap_client_prepare(w->nc, &t, &cf);
			if (rc == 0)
				rc = zap_client_commit(w->nc, t.txn_id, tid);
		} else {
			rc = zap_client_commit_oneshot(w->nc, &t, tid, &cf);
		}
		if (rc == ZAP_CLIENT_E_CONFLICT && conflict_serial)
			*conflict_serial = cf.serial;
		return rc == ZAP_CLIENT_E_CONFLICT ? 1 : rc;
	}
	case T_ZEO: {
		for (uint32_t i = 0; i < n; i++)
			w->zst[i] = (struct zeob_store){.oid = oids[i],
							.serial = serials ? serials[i] : 0,
							.data = w->value,
							.len = o.value_size};
		int rc = zeob_commit(w->zc, w->zst, n, tid, conflict_serial);
		return rc == ZEOB_E_CONFLICT ? 1 : rc;
	}
	case T_ETCD: {
		/* one put per object; etcd has no multi-object commit in this harness */
		for (uint32_t i = 0; i < n; i++) {
			char k[32];
			size_t kl;
			key_of(oids[i], k, &kl);
			int rc = etcdb_put(w->ec, k, kl, w->value, o.value_size);
			if (rc < 0)
				return rc;
		}
		*tid = 0;
		return 0;
	}
	case T_FSYNC: {
		/* n writes (sequential, appended), then one fdatasync */
		for (uint32_t i = 0; i < n; i++) {
			ssize_t k = write(w->fd, w->value, o.value_size);
			if (k != (ssize_t)o.value_size)
				return k < 0 ? -errno : -EIO;
		}
		return fdatasync(w->fd) == 0 ? 0 : -errno;
	}
	default:
		return -ENOTSUP;
	}
}

/*
 * A blob's bytes: 64-bit words of a mix of the blob's seed and the word's
 * index, little-endian, so that every offset of every blob has its own value
 * (a chunk out of place or from another blob differs) and any range can be
 * made without the rest.
 */
struct blob_pat {
	uint64_t seed;
	uint8_t *scratch; /* check: the expected bytes of one chunk */
	size_t cap;
};

static uint64_t pat_word(uint64_t seed, uint64_t i)
{
	uint64_t x = (i + seed) * 0x9E3779B97F4A7C15ull;
	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	return x ^ (x >> 32);
}

static void blob_fill(void *arg, uint64_t off, uint8_t *buf, size_t len)
{
	const struct blob_pat *bp = arg;
	while (len > 0 && (off & 7)) {
		*buf++ = (uint8_t)(pat_word(bp->seed, off >> 3) >> ((off & 7) * 8));
		off++;
		len--;
	}
	for (; len >= 8; buf += 8, off += 8, len -= 8) {
		uint64_t v = pat_word(bp->seed, off >> 3);
		for (unsigned k = 0; k < 8; k++)
			buf[k] = (uint8_t)(v >> (k * 8));
	}
	for (; len > 0; buf++, off++, len--)
		*buf = (uint8_t)(pat_word(bp->seed, off >> 3) >> ((off & 7) * 8));
}

static int blob_check(void *arg, uint64_t off, const uint8_t *p, size_t len)
{
	struct blob_pat *bp = arg;
	if (len > bp->cap) {
		uint8_t *n = realloc(bp->scratch, len);
		if (!n)
			return -1;
		bp->scratch = n;
		bp->cap = len;
	}
	blob_fill(bp, off, bp->scratch, len);
	return memcmp(bp->scratch, p, len) != 0;
}

/* ZODB's record of a ZODB.blob.Blob: its class, then its state (None). */
static const uint8_t blob_pickle[] = "\x80\x03cZODB.blob\nBlob\nq\x00.\x80\x03N.";

/*
 * --op blob: commit a new object with a blob of o.blob_size bytes, then
 * sendBlob it and compare. w->split_ns: the commit's share of the time.
 * @return 0, ZEOB_E_MISMATCH (other bytes read back), < 0 an error.
 */
static int blob_op(struct worker *w)
{
	uint64_t oid = w->next_oid++, tid = 0, got = 0, t0 = now_ns();
	struct blob_pat bp = {.seed = oid ^ run_tag};
	int rc = zeob_commit_blob(w->zc, oid, blob_pickle, sizeof(blob_pickle) - 1, o.blob_size,
				  blob_fill, &bp, &tid);
	w->split_ns = now_ns() - t0;
	if (rc == ZEOB_E_CONFLICT)
		rc = ZEOB_E_SERVER; /* a new object cannot conflict */
	if (rc < 0)
		return rc;
	rc = zeob_send_blob(w->zc, oid, tid, blob_check, &bp, &got);
	free(bp.scratch);
	if (rc == 0 && got != o.blob_size)
		rc = ZEOB_E_MISMATCH;
	return rc;
}

/* One operation. @return 0 ok, 1 conflict, < 0 error; *is_write set. */
static int one_op(struct worker *w, bool *is_write)
{
	uint64_t oids[MAX_OBJS], tid = 0, cs = 0;
	enum op op = o.op;
	if (op == OP_MIX)
		op = rnd(&w->seed) % 100 < o.write_pct ? OP_COMMIT : OP_LOAD;
	*is_write = op != OP_LOAD;
	w->split_ns = 0;
	switch (op) {
	case OP_BLOB:
		return blob_op(w);
	case OP_LOAD:
		return do_load(w, pick_oid(&w->seed));
	case OP_COMMIT:
	case OP_COMMIT2PC:
	case OP_APPEND:
		for (uint32_t i = 0; i < o.objs; i++)
			oids[i] = w->next_oid++;
		return do_commit(w, oids, NULL, o.objs, op == OP_COMMIT2PC, &tid, NULL);
	case OP_OVERWRITE: {
		/* the client's share of --objects, over and over: a working set
		   that history, not live data, grows (the soak's load) */
		uint64_t k = w->ow_next++ % w->ow_n;
		uint64_t oid = (1ull << 59) | ((uint64_t)w->id << 32) | k;
		int rc = do_commit(w, &oid, &w->ow_serial[k], 1, false, &tid, &cs);
		if (rc == 0)
			w->ow_serial[k] = tid;
		else if (rc == 1)
			w->ow_serial[k] = cs; /* written by an earlier run: its serial, next time */
		return rc;
	}
	case OP_CONFLICT: {
		uint32_t h = (uint32_t)(rnd(&w->seed) % o.hot);
		uint64_t oid = (1ull << 61) + h;
		int rc = do_commit(w, &oid, &w->hot_serial[h], 1, false, &tid, &cs);
		if (rc == 0)
			w->hot_serial[h] = tid;
		else if (rc == 1)
			w->hot_serial[h] = cs;
		return rc;
	}
	default:
		return -EINVAL;
	}
}

static void sleep_until(uint64_t t)
{
	uint64_t n = now_ns();
	if (t <= n)
		return;
	if (t - n > 60000) {
		struct timespec ts = {.tv_sec = (time_t)((t - 30000) / NS_PER_S),
				      .tv_nsec = (long)((t - 30000) % NS_PER_S)};
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
	while (now_ns() < t)
		;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	while (!atomic_load(&go))
		usleep(100);
	double per_client = o.rate / o.clients;
	uint64_t intended = t_start;
	if (o.iterations)
		sleep_until(t_start); /* every operation it runs is one of the N */
	if (per_client > 0)
		intended += (uint64_t)(rnd01(&w->seed) * NS_PER_S / per_client);
	for (;;) {
		uint64_t start;
		if (per_client > 0) {
			sleep_until(intended);
			start = intended;
		} else {
			start = now_ns();
		}
		if (start >= t_end)
			break;
		if (o.iterations && w->ops + w->errors >= o.iterations)
			break;
		if (now_ns() >= t_hard_end) {
			/* saturated: the backlog left is counted, not sent */
			for (; intended < t_end;
			     intended +=
			     (uint64_t)(-log(1.0 - rnd01(&w->seed)) * NS_PER_S / per_client) + 1)
				if (intended >= t_measure)
					w->unsent++;
			break;
		}
		uint64_t sent = now_ns();
		bool is_write;
		int rc = one_op(w, &is_write);
		uint64_t done = now_ns();
		w->last_done = done;
		if (rc >= 0 &&
		    (o.iterations ? start >= t_measure : done >= t_measure && done < t_end))
			w->completed++;
		/* every operation that arrived in the window, however late it ended */
		if (start >= t_measure) {
			uint64_t lat = done - start;
			if (rc >= 0) {
				hist_record(&w->all, lat);
				if (o.op == OP_BLOB) {
					/* the commit, then the read back */
					hist_record(&w->wr, w->split_ns);
					hist_record(&w->rd, lat - w->split_ns);
				} else {
					hist_record(is_write ? &w->wr : &w->rd, lat);
				}
				w->ops++;
				if (is_write && o.op != OP_APPEND)
					w->commits++;
				if (rc == 1)
					w->conflicts++;
				w->behind_ns += sent - start;
			} else {
				w->errors++;
				if (rc == ZEOB_E_MISMATCH)
					w->mismatches++;
				if (!w->first_error)
					w->first_error = rc;
			}
		}
		if (rc < 0 && rc != -ENOENT && rc != ZEOB_E_NOTFOUND && rc != ZEOB_E_MISMATCH &&
		    (rc == -ECONNRESET || rc == -EPIPE || rc == -EPROTO)) {
			w->fatal = rc;
			break;
		}
		if (per_client > 0)
			intended +=
			    (uint64_t)(-log(1.0 - rnd01(&w->seed)) * NS_PER_S / per_client) + 1;
	}
	return NULL;
}

/* ---------------------------------------------------------------- populate */

struct pop_arg {
	struct worker *w;
	uint64_t from, to;
	uint64_t conflicts;
	int rc;
};

/*
 * A batch that conflicts holds objects already there (a server populated by
 * an earlier run: the ZEO_REF server of bench/run.sh keeps its FileStorage).
 * Batches are committed whole, so both ends present means the batch is;
 * otherwise each object is looked up and the missing ones are committed.
 * @return 0, or < 0 an error.
 */
static int populate_rest(struct pop_arg *p, const uint64_t *oids, uint32_t n)
{
	uint64_t miss[MAX_OBJS], tid;
	uint32_t m = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (i == 1 && n > 2 && m == 0) {
			int rc = do_load(p->w, oids[n - 1]);
			if (rc == 0)
				return 0; /* first and last present: the batch is */
		}
		int rc = do_load(p->w, oids[i]);
		if (rc == -ENOENT || rc == ZEOB_E_NOTFOUND)
			miss[m++] = oids[i];
		else if (rc < 0)
			return rc;
	}
	if (m == 0)
		return 0;
	int rc = do_commit(p->w, miss, NULL, m, false, &tid, NULL);
	return rc == 1 ? -EEXIST : rc;
}

static void *populate_main(void *arg)
{
	struct pop_arg *p = arg;
	uint32_t per_txn = o.target == T_ETCD ? 1 : (uint32_t)(100000 / (o.value_size + 64));
	if (per_txn > MAX_OBJS)
		per_txn = MAX_OBJS;
	if (per_txn == 0)
		per_txn = 1;
	uint64_t oids[MAX_OBJS];
	for (uint64_t i = p->from; i < p->to;) {
		uint32_t n = 0;
		while (n < per_txn && i < p->to)
			oids[n++] = o.oid_base + i++;
		uint64_t tid;
		int rc = do_commit(p->w, oids, NULL, n, false, &tid, NULL);
		if (rc == 1) {
			p->conflicts++; /* already there from an earlier run */
			if (o.target != T_ETCD)
				rc = populate_rest(p, oids, n);
		}
		if (rc < 0) {
			p->rc = rc;
			return NULL;
		}
	}
	return NULL;
}

static int populate(void)
{
	unsigned n = o.clients < 4 ? o.clients : 4;
	struct pop_arg pa[4];
	uint64_t t0 = now_ns();
	for (unsigned i = 0; i < n; i++) {
		pa[i] = (struct pop_arg){
		    .w = &workers[i], .from = o.populate * i / n, .to = o.populate * (i + 1) / n};
		pthread_create(&workers[i].th, NULL, populate_main, &pa[i]);
	}
	uint64_t conflicts = 0;
	int rc = 0;
	for (unsigned i = 0; i < n; i++) {
		pthread_join(workers[i].th, NULL);
		conflicts += pa[i].conflicts;
		if (pa[i].rc)
			rc = pa[i].rc;
	}
	fprintf(stderr, "zap-bench: populated %" PRIu64 " objects of %u B in %.2f s%s\n",
		o.populate, o.value_size, (double)(now_ns() - t0) / 1e9,
		conflicts ? " (some batches were already there)" : "");
	return rc;
}

/* A store built in this process (shm target "local:N"). */
static int local_store(uint64_t n)
{
	struct zap_store_params p = {.size_bytes = (n * (o.value_size + 256) + (64u << 20)),
				     .index_initial_slots =
					 (uint32_t)(n * 2 > 4096 ? n * 2 : 4096)};
	int rc = zap_store_create(&p, &shm_store);
	if (rc < 0)
		return rc;
	struct zap_store_write *wr = calloc(1000, sizeof(*wr));
	uint8_t *val = calloc(1, o.value_size + 1);
	if (!wr || !val)
		return -ENOMEM;
	uint64_t tid = 1;
	for (uint64_t i = 0; i < n;) {
		uint32_t k = 0;
		while (k < 1000 && i < n)
			wr[k++] = (struct zap_store_write){
			    .oid = o.oid_base + i++, .data = val, .len = o.value_size};
		rc = zap_store_commit(shm_store, ++tid, NULL, wr, k);
		if (rc < 0)
			break;
	}
	free(wr);
	free(val);
	return rc;
}

/*
 * native-memif: one DPDK memif client port to the node's client port, ADDR
 * the node's client endpoint. Its one queue pair serves one client.
 */
static int memif_open(void)
{
	if (o.memif == NULL || n_addrs != 1 || o.clients != 1) {
		fprintf(stderr, "zap-bench: native-memif needs --memif SOCKET, one --addr "
				"(the node's client IPV4:PORT) and --clients 1\n");
		return -EINVAL;
	}
	char err[512] = "";
	struct nm_opts no = {
	    .socket = o.memif, .node_ip = addrs[0].host, .node_port = addrs[0].port};
	int rc = nm_start(&no, &memif_nm, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "zap-bench: native-memif: %s\n", err);
	return rc;
}

/* The target's shared state, the Zipf constants and this run's tag. */
static int setup_target(void)
{
	if (o.target == T_NATIVE_MEMIF && memif_open() != 0)
		return 1;
	if (o.target == T_SHM) {
		int rc;
		if (strncmp(o.addr, "local:", 6) == 0) {
			o.objects = strtoull(o.addr + 6, NULL, 0);
			rc = local_store(o.objects);
		} else {
			rc = zap_store_attach(o.addr, &shm_store);
		}
		if (rc < 0) {
			fprintf(stderr, "zap-bench: store %s: %s\n", o.addr, strerror(-rc));
			return 1;
		}
	}
	if (o.zipf)
		zipf_init(o.objects, o.zipf_theta);
	getrandom(&run_tag, sizeof(run_tag), 0);
	return 0;
}

/* Allocate the clients and connect each. */
static int start_workers(void)
{
	workers = calloc(o.clients, sizeof(*workers));
	if (!workers)
		return 1;
	for (unsigned i = 0; i < o.clients; i++) {
		struct worker *w = &workers[i];
		w->id = i;
		w->fd = -1;
		w->seed = run_tag ^ (0x9E3779B97F4A7C15ull * (i + 1));
		if (w->seed == 0)
			w->seed = 1;
		w->next_oid = (1ull << 60) | ((run_tag & 0xfffffull) << 36) | ((uint64_t)i << 28);
		w->value = calloc(1, o.value_size);
		w->nst = calloc(MAX_OBJS, sizeof(*w->nst));
		w->ow_n = o.objects / o.clients + (i < o.objects % o.clients);
		if (w->ow_n == 0)
			w->ow_n = 1;
		w->ow_serial = o.op == OP_OVERWRITE ? calloc(w->ow_n, sizeof(uint64_t)) : NULL;
		if (o.op == OP_OVERWRITE && w->ow_serial == NULL)
			return 1;
		w->zst = calloc(MAX_OBJS, sizeof(*w->zst));
		hist_init(&w->all);
		hist_init(&w->rd);
		hist_init(&w->wr);
		if (!w->value || !w->nst || !w->zst)
			return 1;
		memset(w->value, 'x', o.value_size);
		int rc = worker_connect(w);
		if (rc < 0) {
			fprintf(stderr, "zap-bench: client %u: connect %s: %d (%s)\n", i, o.addr,
				rc, rc > -4096 ? strerror(-rc) : "protocol");
			return 1;
		}
	}
	return 0;
}

/* --populate: load the objects the run reads, through the clients' connections. */
static int populate_if_asked(void)
{
	if (!o.populate)
		return 0;
	if (o.target == T_SHM || o.target == T_FSYNC) {
		fprintf(stderr, "zap-bench: --populate needs a server target\n");
		return 2;
	}
	int rc = populate();
	if (rc < 0) {
		fprintf(stderr, "zap-bench: populate: %d (%s)\n", rc,
			rc > -4096 ? strerror(-rc) : "protocol");
		return 1;
	}
	return 0;
}

/* Start the clients, time the measured window and wait for them to finish. */
static void run(struct zb_window *win)
{
	for (unsigned i = 0; i < o.clients; i++)
		pthread_create(&workers[i].th, NULL, worker_main, &workers[i]);
	t_start = now_ns() + 10000000ull;
	t_measure = t_start + (uint64_t)(o.warmup * 1e9);
	t_end = t_measure + (uint64_t)(o.duration * 1e9);
	/* open loop: arrivals of the window still queued this long after it are dropped */
	t_hard_end = t_end + (uint64_t)((o.duration > 1 ? o.duration : 1) * 1e9);
	atomic_store(&go, 1);
	sleep_until(t_measure);
	getrusage(RUSAGE_SELF, &win->ru0);
	win->m0 = now_ns();
	if (o.iterations) {
		/* the window ends when the last client's last operation does */
		for (unsigned i = 0; i < o.clients; i++)
			pthread_join(workers[i].th, NULL);
		getrusage(RUSAGE_SELF, &win->ru1);
		win->m1 = win->m0;
		for (unsigned i = 0; i < o.clients; i++)
			if (workers[i].last_done > win->m1)
				win->m1 = workers[i].last_done;
		return;
	}
	sleep_until(t_end);
	getrusage(RUSAGE_SELF, &win->ru1);
	win->m1 = now_ns();
	for (unsigned i = 0; i < o.clients; i++)
		pthread_join(workers[i].th, NULL);
}

/* Release the store and the memif port; report the port's losses. */
static void close_target(void)
{
	if (shm_store)
		zap_store_close(shm_store);
	if (memif_nm != NULL) {
		uint64_t drops, full;
		nm_stats(memif_nm, &drops, &full);
		if (drops || full)
			fprintf(stderr,
				"zap-bench: memif: %" PRIu64 " frames dropped, %" PRIu64
				" tx retries\n",
				drops, full);
		nm_stop(memif_nm);
	}
}

int main(int argc, char **argv)
{
	int rc = zb_parse_args(argc, argv);
	if (rc != 0)
		return rc;
	if (setup_target() != 0 || start_workers() != 0)
		return 1;
	rc = populate_if_asked();
	if (rc != 0)
		return rc;
	if (zb_idle_open() != 0)
		return 1;
	struct zb_window win;
	run(&win);
	for (unsigned i = 0; i < o.clients; i++)
		worker_disconnect(&workers[i]);
	zb_idle_close();
	int fatal;
	if (zb_report(workers, &win, &fatal) != 0)
		return 1;
	close_target();
	return fatal ? 1 : 0;
}
