/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap-cluster-client: a tiny libzapclient command line for the cluster test
 * (tests/cluster/test_cluster.sh) and for poking a local cluster by hand.
 *
 *   zap-cluster-client HOST PORT CLUSTER_ID commit OID DATA BASE_SERIAL
 *       prints "tid T"; exit 3 on a conflict ("conflict oid O serial S")
 *   zap-cluster-client HOST PORT CLUSTER_ID load OID [sync]
 *       prints "serial S data D"; exit 4 when there is no such object
 *   zap-cluster-client HOST PORT CLUSTER_ID lasttid [sync]
 *   zap-cluster-client HOST PORT CLUSTER_ID sync
 *       print "tid T"
 *   zap-cluster-client HOST PORT CLUSTER_ID 2pc OID DATA BASE_SERIAL commit|abort
 *       prepare (vote), then commit or abort; prints "tid T" or "aborted"
 *   zap-cluster-client HOST PORT CLUSTER_ID newoids N
 *       prints "oids FIRST COUNT"
 *   zap-cluster-client HOST PORT CLUSTER_ID history OID
 *       prints "history N" then one serial per line, newest first
 *   zap-cluster-client HOST PORT CLUSTER_ID changes TID
 *       prints "changes N upto T" then one oid per line
 *   zap-cluster-client HOST PORT CLUSTER_ID stream N OID_BASE [PAUSE_AT GO_FILE]
 *       commit N new objects OID_BASE + i (data "s<i>", base serial 0) one
 *       by one; each commit is ONE call with long resends (200 ms x 100,
 *       same request id: exactly-once), printing "ack OID TID" when it is
 *       acknowledged. A call answered UNAVAILABLE / BUSY is tried again as
 *       a new call (printing "again OID ERR"). Exit 5 when a commit whose
 *       calls were all unambiguous is answered CONFLICT (applied twice),
 *       6 on a conflict after an earlier failed call (an unacknowledged
 *       commit), 1 on any other error or after 60 s in all; ends with
 *       "done N resends R" (R: resends of a request, client stats).
 *       With PAUSE_AT: after that many acks it prints "paused" and waits
 *       (at most 30 s) until GO_FILE exists, so a test can inject a fault at
 *       a known point of the stream, however the machine schedules it
 *   zap-cluster-client HOST PORT CLUSTER_ID verify OID_BASE [sync] < ACKS
 *       for each "ack OID TID" line on stdin (after one read barrier with
 *       sync): OID's current serial is TID, its data "s<OID - OID_BASE>",
 *       its history exactly one revision (TID); prints "verified K", exit 1
 *       with the first mismatch
 *   zap-cluster-client HOST PORT CLUSTER_ID bench N OID
 *       N commits, then N synced loads and N plain loads of OID; prints
 *       p50 / p99 / max latency of each in µs
 *
 * zap-cluster-client-memif is the same program over a DPDK memif client port
 * (bench/native_memif.h) to the node's client port at the socket in
 * $ZAP_MEMIF_SOCKET; HOST PORT are then the node's client IPv4 and UDP port.
 * It has one more command:
 *   zap-cluster-client-memif HOST PORT CLUSTER_ID inject N
 *       N malformed frames of each kind to the node (cluster_client_memif.c),
 *       prints "injected frame_drops F bad_datagrams B arp_drops A"
 *
 * Numbers are decimal or 0x-hex; tids and serials print as 0x-hex. Any other
 * error exits 1 with libzapclient's text. Every call is bounded by the
 * client's timeout and retries (200 ms x 5 attempts).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "base/bytes.h"
#include "client/zapclient.h"
#ifdef ZAP_CLUSTER_CLIENT_MEMIF
#include "cluster_client_memif.h"
#endif

/** One record of the `big` command. */
#define BIG_RECORD_BYTES (1u << 20)

static uint64_t num(const char *s)
{
	return strtoull(s, NULL, 0);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void print_lat(const char *what, uint64_t *v, unsigned n)
{
	qsort(v, n, sizeof(v[0]), cmp_u64);
	printf("%s: n %u p50 %.1f us p99 %.1f us max %.1f us\n", what, n, v[n / 2] / 1e3,
	       v[(n * 99) / 100] / 1e3, v[n - 1] / 1e3);
}

static int fail(int rc)
{
	fprintf(stderr, "zap-cluster-client: %s\n", zap_client_strerror(rc));
	return 1;
}

static int commit(struct zap_client *c, uint64_t oid, const char *data, uint64_t base,
		  uint64_t *tid)
{
	struct zap_cp_store st = {
	    .oid = oid, .base_serial = base, .data = data, .len = (uint32_t)strlen(data)};
	struct zap_client_txn t = {.stores = &st, .n_stores = 1};
	struct zap_client_conflict cf = {0};
	int rc = zap_client_commit_oneshot(c, &t, tid, &cf);
	if (rc == ZAP_CLIENT_E_CONFLICT)
		printf("conflict oid 0x%" PRIx64 " serial 0x%" PRIx64 "\n", cf.oid, cf.serial);
	return rc;
}

/* The stream command: see the head comment. */
/* Wait until @p path exists (bounded). @return 0, or -ETIMEDOUT. */
static int wait_for_file(const char *path)
{
	for (unsigned i = 0; i < 3000; i++) {
		if (access(path, F_OK) == 0)
			return 0;
		struct timespec ts = {0, 10 * 1000000};
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

static int stream(struct zap_client *c, unsigned n, uint64_t base, unsigned pause_at,
		  const char *go_file)
{
	uint64_t t_end = now_ns() + 60ull * 1000000000ull;
	char data[32];
	zap_client_set_timeout(c, 200, 100);
	for (unsigned i = 0; i < n; i++) {
		uint64_t oid = base + i, tid = 0;
		int ambiguous = 0;
		snprintf(data, sizeof(data), "s%u", i);
		for (;;) {
			int rc = commit(c, oid, data, 0, &tid);
			if (rc == 0) {
				printf("ack 0x%" PRIx64 " 0x%" PRIx64 "\n", oid, tid);
				fflush(stdout);
				if (go_file != NULL && i + 1 == pause_at) {
					printf("paused\n");
					fflush(stdout);
					if (wait_for_file(go_file) != 0) {
						fprintf(stderr,
							"zap-cluster-client: stream: no %s\n",
							go_file);
						return 1;
					}
					t_end = now_ns() + 60ull * 1000000000ull;
				}
				break;
			}
			if (rc == ZAP_CLIENT_E_CONFLICT) {
				printf("%s oid 0x%" PRIx64 "\n",
				       ambiguous ? "unacknowledged-commit" : "applied-twice", oid);
				fflush(stdout);
				return ambiguous ? 6 : 5;
			}
			if ((rc != -EHOSTUNREACH && rc != -EBUSY) || now_ns() > t_end) {
				fprintf(stderr,
					"zap-cluster-client: stream oid 0x%" PRIx64 ": %s\n", oid,
					zap_client_strerror(rc));
				return 1;
			}
			ambiguous = 1;
			printf("again 0x%" PRIx64 " %s\n", oid, zap_client_strerror(rc));
			fflush(stdout);
			struct timespec ts = {0, 100 * 1000000};
			nanosleep(&ts, NULL);
		}
		if (now_ns() > t_end) {
			fprintf(stderr, "zap-cluster-client: stream: out of time\n");
			return 1;
		}
	}
	struct zap_client_stats st;
	zap_client_get_stats(c, &st);
	printf("done %u resends %" PRIu64 "\n", n, st.retries);
	return 0;
}

/* The verify command: see the head comment. */
static int verify(struct zap_client *c, uint64_t base, int sync)
{
	char line[256];
	unsigned k = 0;
	uint64_t t;
	int rc;
	if (sync && (rc = zap_client_sync(c, &t)) != 0)
		return fail(rc);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		char kw[16];
		uint64_t oid, tid;
		if (sscanf(line, "%15s %" SCNx64 " %" SCNx64, kw, &oid, &tid) != 3 ||
		    strcmp(kw, "ack") != 0)
			continue;
		char want[32];
		snprintf(want, sizeof(want), "s%" PRIu64, oid - base);
		struct zap_client_record r;
		rc = zap_client_load(c, oid, 0, &r);
		if (rc != 0) {
			printf("oid 0x%" PRIx64 ": load: %s\n", oid, zap_client_strerror(rc));
			return 1;
		}
		if (r.serial != tid || r.len != strlen(want) || memcmp(r.data, want, r.len) != 0) {
			printf("oid 0x%" PRIx64 ": serial 0x%" PRIx64 " data %.*s, want 0x%" PRIx64
			       " %s\n",
			       oid, r.serial, (int)r.len, (const char *)r.data, tid, want);
			return 1;
		}
		const struct zap_cp_hist *h;
		uint32_t nh = 0;
		rc = zap_client_history(c, oid, 100, &h, &nh);
		if (rc != 0 || nh != 1 || h[0].serial != tid) {
			printf("oid 0x%" PRIx64 ": history rc %d n %u first 0x%" PRIx64
			       ", want one revision 0x%" PRIx64 "\n",
			       oid, rc, nh, nh ? h[0].serial : 0, tid);
			return 1;
		}
		k++;
	}
	printf("verified %u\n", k);
	return 0;
}

/* The 1 MiB record of object @p oid in `big`: a pattern of its oid. */
static void big_record(uint64_t oid, uint8_t *b)
{
	for (uint32_t i = 0; i < BIG_RECORD_BYTES; i++)
		b[i] = (uint8_t)((oid * 131u + i * 7u + (i >> 12)) & 0xff);
}

static int big_commit(struct zap_client *c, uint64_t oid0, uint32_t n, uint64_t *tid)
{
	struct zap_cp_store *st = calloc(n, sizeof(*st));
	uint8_t *recs = malloc((size_t)n * BIG_RECORD_BYTES);
	int rc = -ENOMEM;
	if (st != NULL && recs != NULL) {
		for (uint32_t i = 0; i < n; i++) {
			big_record(oid0 + i, recs + (size_t)i * BIG_RECORD_BYTES);
			st[i] = (struct zap_cp_store){.oid = oid0 + i,
						      .data = recs + (size_t)i * BIG_RECORD_BYTES,
						      .len = BIG_RECORD_BYTES};
		}
		struct zap_client_txn t = {.stores = st, .n_stores = n};
		zap_client_set_timeout(c, 30000, 3);
		rc = zap_client_commit_oneshot(c, &t, tid, NULL);
	}
	free(st);
	free(recs);
	return rc;
}

/* @return 0 when every object holds its record; 5 on a difference. */
static int big_check(struct zap_client *c, uint64_t oid0, uint32_t n, int sync)
{
	uint8_t *want = malloc(BIG_RECORD_BYTES);
	if (want == NULL)
		return fail(-ENOMEM);
	int ret = 0;
	for (uint32_t i = 0; i < n && ret == 0; i++) {
		struct zap_client_record r;
		int rc = zap_client_load(c, oid0 + i, sync && i == 0, &r);
		big_record(oid0 + i, want);
		if (rc != 0) {
			ret = fail(rc);
		} else if (r.len != BIG_RECORD_BYTES || memcmp(r.data, want, r.len) != 0) {
			fprintf(stderr, "object %" PRIu64 ": %u bytes, not its record\n", oid0 + i, r.len);
			ret = 5;
		}
	}
	free(want);
	return ret;
}

/*
 * `blob`: one object whose record carries MIB MiB of blob bytes inline (the
 * ZEO gateway's "ZAPBLOB1" form: magic, u32 big-endian pickle length, the
 * pickle, the bytes); the node keeps the bytes in its blob area and the
 * store a reference ("ZAPBLOB2": ..., u64 big-endian length, hash).
 */
static int blob_commit(struct zap_client *c, uint64_t oid, uint32_t mib, uint64_t *tid)
{
	static const char pickle[] = "blob!";
	uint64_t n = (uint64_t)mib << 20, hdr = 12 + sizeof(pickle) - 1;
	uint8_t *rec = malloc(hdr + n);
	if (rec == NULL)
		return -ENOMEM;
	memcpy(rec, "ZAPBLOB1", 8);
	zap_put_be32(rec + 8, sizeof(pickle) - 1);
	memcpy(rec + 12, pickle, sizeof(pickle) - 1);
	for (uint64_t i = 0; i < n; i++)
		rec[hdr + i] = (uint8_t)((oid * 29u + i * 13u + (i >> 16)) & 0xff);
	struct zap_cp_store st = {.oid = oid, .data = rec, .len = hdr + n};
	struct zap_client_txn t = {.stores = &st, .n_stores = 1};
	zap_client_set_timeout(c, 30000, 3);
	int rc = zap_client_commit_oneshot(c, &t, tid, NULL);
	free(rec);
	return rc;
}

/* `blobref`: print the blob reference an object's record holds ("len N hash HEX"). */
static int blob_ref(struct zap_client *c, uint64_t oid, int sync)
{
	struct zap_client_record r;
	int rc = zap_client_load(c, oid, sync, &r);
	if (rc != 0)
		return fail(rc);
	const uint8_t *d = r.data;
	if (r.len < 12 + 40 || memcmp(d, "ZAPBLOB2", 8) != 0 ||
	    12 + (uint64_t)zap_get_be32(d + 8) + 40 != r.len) {
		fprintf(stderr, "object %" PRIu64 ": %u bytes, not a blob reference\n", oid, r.len);
		return 5;
	}
	printf("len %" PRIu64 " hash ", zap_get_be64(d + r.len - 40));
	for (unsigned i = 0; i < 32; i++)
		printf("%02x", d[r.len - 32 + i]);
	printf("\n");
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: zap-cluster-client HOST PORT CLUSTER_ID COMMAND ARGS\n"
		   "commands:\n"
		   "  commit OID DATA SERIAL      commit one object, print the tid\n"
		   "  load OID [sync]             load the current revision\n"
		   "  lasttid [sync]              the last committed tid\n"
		   "  sync                        wait until the node has applied the leader's commits\n"
		   "  2pc OID DATA SERIAL commit|abort  prepare one object, then commit or abort\n"
		   "  newoids N                   allocate N oids\n"
		   "  history OID                 the revisions of one object\n"
		   "  changes TID                 the oids changed after TID\n"
		   "  stream N OID0 [PAUSE_AT FILE]  commit objects OID0.. one by one, print an ack line each;\n"
		   "                              after PAUSE_AT acks wait for FILE to exist\n"
		   "  verify OID0 [sync]          read ack lines of stream on stdin, check each object\n"
		   "  bench N OID                 N commits and loads of OID, latency percentiles\n"
		   "  big OID0 N                  commit N new objects of 1 MiB (OID0..) in one one-shot\n"
		   "                              transaction, larger than one consensus value\n"
		   "  bigcheck OID0 N [sync]      check those N objects, byte for byte\n"
		   "  blob OID MIB                commit one object with a blob of MIB MiB\n"
		   "  blobref OID [sync]          print its blob reference: len N hash HEX\n"
#ifdef ZAP_CLUSTER_CLIENT_MEMIF
		   "  inject N                    send N malformed frames on the memif link\n"
#endif
		   "options:\n"
		   "  -h, --help                  print this help and exit\n");
}

int main(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc < 5) {
		usage(stderr);
		return 2;
	}
	struct zap_client *c;
#ifdef ZAP_CLUSTER_CLIENT_MEMIF
	int rc = cc_memif_open(argv[1], (uint16_t)num(argv[2]), num(argv[3]), &c);
#else
	int rc = zap_client_open(argv[1], (uint16_t)num(argv[2]), num(argv[3]), &c);
#endif
	if (rc != 0)
		return fail(rc);
	const char *cmd = argv[4];
	uint64_t tid = 0;
	int ret = 0;
	if (strcmp(cmd, "commit") == 0 && argc == 8) {
		rc = commit(c, num(argv[5]), argv[6], num(argv[7]), &tid);
		if (rc == 0)
			printf("tid 0x%" PRIx64 "\n", tid);
		ret = rc == 0 ? 0 : rc == ZAP_CLIENT_E_CONFLICT ? 3 : fail(rc);
	} else if (strcmp(cmd, "big") == 0 && argc == 7) {
		rc = big_commit(c, num(argv[5]), (uint32_t)num(argv[6]), &tid);
		if (rc == 0)
			printf("tid 0x%" PRIx64 "\n", tid);
		ret = rc == 0 ? 0 : fail(rc);
	} else if (strcmp(cmd, "blob") == 0 && argc == 7) {
		rc = blob_commit(c, num(argv[5]), (uint32_t)num(argv[6]), &tid);
		if (rc == 0)
			printf("tid 0x%" PRIx64 "\n", tid);
		ret = rc == 0 ? 0 : fail(rc);
	} else if (strcmp(cmd, "blobref") == 0 && (argc == 6 || argc == 7)) {
		ret = blob_ref(c, num(argv[5]), argc == 7);
	} else if (strcmp(cmd, "bigcheck") == 0 && (argc == 7 || argc == 8)) {
		ret = big_check(c, num(argv[5]), (uint32_t)num(argv[6]), argc == 8);
		if (ret == 0)
			printf("ok\n");
	} else if (strcmp(cmd, "load") == 0 && (argc == 6 || argc == 7)) {
		struct zap_client_record r;
		rc = zap_client_load(c, num(argv[5]), argc == 7, &r);
		if (rc == 0)
			printf("serial 0x%" PRIx64 " data %.*s\n", r.serial, (int)r.len,
			       (const char *)r.data);
		ret = rc == 0 ? 0 : rc == -ENOENT ? 4 : fail(rc);
	} else if (strcmp(cmd, "lasttid") == 0 && (argc == 5 || argc == 6)) {
		rc = zap_client_last_tid(c, argc == 6, &tid);
		if (rc == 0)
			printf("tid 0x%" PRIx64 "\n", tid);
		ret = rc == 0 ? 0 : fail(rc);
	} else if (strcmp(cmd, "sync") == 0 && argc == 5) {
		rc = zap_client_sync(c, &tid);
		if (rc == 0)
			printf("tid 0x%" PRIx64 "\n", tid);
		ret = rc == 0 ? 0 : fail(rc);
	} else if (strcmp(cmd, "2pc") == 0 && argc == 9) {
		struct zap_cp_store st = {.oid = num(argv[5]),
					  .base_serial = num(argv[7]),
					  .data = argv[6],
					  .len = (uint32_t)strlen(argv[6])};
		uint64_t txn = (now_ns() << 1) | 1;
		struct zap_client_txn t = {.txn_id = txn, .stores = &st, .n_stores = 1};
		struct zap_client_conflict cf = {0};
		rc = zap_client_prepare(c, &t, &cf);
		if (rc == ZAP_CLIENT_E_CONFLICT)
			printf("conflict oid 0x%" PRIx64 " serial 0x%" PRIx64 "\n", cf.oid,
			       cf.serial);
		if (rc == 0 && strcmp(argv[8], "commit") == 0) {
			rc = zap_client_commit(c, txn, &tid);
			if (rc == 0)
				printf("tid 0x%" PRIx64 "\n", tid);
		} else if (rc == 0) {
			rc = zap_client_abort(c, txn);
			if (rc == 0)
				printf("aborted\n");
		}
		ret = rc == 0 ? 0 : rc == ZAP_CLIENT_E_CONFLICT ? 3 : fail(rc);
	} else if (strcmp(cmd, "newoids") == 0 && argc == 6) {
		uint64_t first = 0;
		uint32_t got = 0;
		rc = zap_client_new_oids(c, (uint32_t)num(argv[5]), &first, &got);
		if (rc == 0)
			printf("oids %" PRIu64 " %u\n", first, got);
		ret = rc == 0 ? 0 : fail(rc);
	} else if (strcmp(cmd, "history") == 0 && argc == 6) {
		const struct zap_cp_hist *h;
		uint32_t k = 0;
		rc = zap_client_history(c, num(argv[5]), 100, &h, &k);
		if (rc == 0) {
			printf("history %u\n", k);
			for (uint32_t i = 0; i < k; i++)
				printf("0x%" PRIx64 "\n", h[i].serial);
		}
		ret = rc == 0 ? 0 : rc == -ENOENT ? 4 : fail(rc);
	} else if (strcmp(cmd, "changes") == 0 && argc == 6) {
		struct zap_client_changes ch;
		rc = zap_client_changes_since(c, num(argv[5]), 1000, &ch);
		if (rc == 0) {
			printf("changes %u upto 0x%" PRIx64 "%s\n", ch.n_oids, ch.tid,
			       ch.too_old ? " too_old" : "");
			for (uint32_t i = 0; i < ch.n_oids; i++)
				printf("0x%" PRIx64 "\n", ch.oids[i]);
		}
		ret = rc == 0 ? 0 : fail(rc);
	} else if (strcmp(cmd, "stream") == 0 && (argc == 7 || argc == 9)) {
		ret = stream(c, (unsigned)num(argv[5]), num(argv[6]),
			     argc == 9 ? (unsigned)num(argv[7]) : 0, argc == 9 ? argv[8] : NULL);
	} else if (strcmp(cmd, "verify") == 0 && (argc == 6 || argc == 7)) {
		ret = verify(c, num(argv[5]), argc == 7);
	} else if (strcmp(cmd, "bench") == 0 && argc == 7) {
		unsigned n = (unsigned)num(argv[5]);
		uint64_t oid = num(argv[6]);
		uint64_t *lat = calloc(n ? n : 1, sizeof(uint64_t));
		struct zap_client_record r;
		uint64_t serial = 0;
		if (n == 0 || lat == NULL)
			return 2;
		if (zap_client_load(c, oid, 1, &r) == 0)
			serial = r.serial;
		for (unsigned i = 0; i < n && ret == 0; i++) {
			uint64_t t0 = now_ns();
			rc = commit(c, oid, "bench", serial, &serial);
			lat[i] = now_ns() - t0;
			if (rc != 0)
				ret = fail(rc);
		}
		if (ret == 0)
			print_lat("commit", lat, n);
		for (int sync = 1; sync >= 0 && ret == 0; sync--) {
			for (unsigned i = 0; i < n && ret == 0; i++) {
				uint64_t t0 = now_ns();
				rc = zap_client_load(c, oid, sync, &r);
				lat[i] = now_ns() - t0;
				if (rc != 0)
					ret = fail(rc);
			}
			if (ret == 0)
				print_lat(sync ? "load(sync)" : "load", lat, n);
		}
		free(lat);
#ifdef ZAP_CLUSTER_CLIENT_MEMIF
	} else if (strcmp(cmd, "inject") == 0 && argc == 6) {
		ret = cc_memif_inject((unsigned)num(argv[5]));
#endif
	} else {
		fprintf(stderr, "zap-cluster-client: bad command or arguments\n");
		ret = 2;
	}
	zap_client_close(c);
#ifdef ZAP_CLUSTER_CLIENT_MEMIF
	cc_memif_close();
#endif
	return ret;
}
