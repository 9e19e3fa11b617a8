/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The single-node demo (`zapd --demo`, `make demo`).
 *
 * One node plays every part of the pipeline in one thread: each command is
 * encoded as a log entry, made durable as an accepted and chosen slot
 * (append + group commit), applied by the transaction state machine to the
 * shared-memory store, and its results printed. Reads go through a store
 * reader, as the gateways and other processes read. At the end the node is
 * "restarted": a fresh store and state machine are rebuilt from the log and
 * compared with the originals.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "demo.h"
#include "txn/entry.h"
#include "log/log.h"
#include "log/replay.h"
#include "store/store.h"
#include "base/tid.h"
#include "txn/txn.h"

#define DEMO_BALLOT 1u
#define DEMO_MAX_RESULTS 16
#define DEMO_READS 200000u

enum { ALICE = 1, BOB = 2, CAROL = 3 };
static const char *const client_name[] = {"-", "alice", "bob", "carol"};

struct demo {
	const struct zap_config *cfg;
	char dir[64];
	struct zap_log_params lp;
	struct zap_store_params sp;
	struct zap_txn_params tp;
	struct zap_store *store;
	struct zap_txn_sm *sm;
	struct zap_log *log;
	struct zap_store_reader *reader;
	uint64_t slot;
	uint64_t seq[4];
	uint8_t *buf; /* the last entry encoded */
	size_t cap, len;
	struct zap_txn_result res[DEMO_MAX_RESULTS];
	int n_res;
	uint64_t commit_ns_sum, commit_ns_max, proposals;
};

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *tidstr(uint64_t tid, char *buf)
{
	char when[ZAP_TID_FORMAT_LEN + 1];
	zap_tid_format(tid, when, sizeof(when));
	snprintf(buf, 64, "%016" PRIx64 " (%s)", tid, when);
	return buf;
}

static void on_result(const struct zap_txn_result *r, void *ctx)
{
	struct demo *d = ctx;
	if (d->n_res < DEMO_MAX_RESULTS) {
		d->res[d->n_res] = *r;
		d->res[d->n_res].oids = NULL;
		d->n_res++;
	}
}

static void print_result(const struct zap_txn_result *r)
{
	char t[64];
	const char *who = r->client_id < 4 ? client_name[r->client_id] : "?";
	if (r->entry_type == ZAP_ENTRY_OID_RESERVE || r->entry_type == ZAP_ENTRY_LEASE_EXPIRE)
		printf("        -> %s: ", who);
	else
		printf("        -> %s txn %" PRIu64 ": ", who, r->txn_id);
	switch (r->status) {
	case ZAP_TXN_OK:
		if (r->entry_type == ZAP_ENTRY_OID_RESERVE)
			printf("oids %" PRIu64 "..%" PRIu64, r->first_oid,
			       r->first_oid + r->oid_count - 1);
		else if (r->tid != 0)
			printf("committed, tid %s", tidstr(r->tid, t));
		else if (r->entry_type == ZAP_ENTRY_PREPARE)
			printf("vote ok, objects locked");
		else
			printf("ok");
		break;
	case ZAP_TXN_CONFLICT:
		printf("ConflictError(oid %" PRIu64 ", serials=(%016" PRIx64 ", %016" PRIx64 "))",
		       r->oid, r->serial, r->base_serial);
		break;
	case ZAP_TXN_READ_CONFLICT:
		printf("ReadConflictError(oid %" PRIu64 ", serials=(%016" PRIx64 ", %016" PRIx64
		       "))", r->oid, r->serial, r->base_serial);
		break;
	default:
		printf("%s", zap_txn_status_name(r->status));
	}
	printf("%s\n", r->duplicate ? "  [replayed from the session table]" : "");
}

/* Make one entry durable as a chosen slot, apply it, print its results. */
static int propose_bytes(struct demo *d, const void *buf, size_t len, const char *what)
{
	uint64_t t0 = mono_ns();
	uint64_t slot = ++d->slot;
	int rc = zap_log_append(d->log, ZAP_LOG_ACCEPT, slot, DEMO_BALLOT, buf, len, NULL);
	if (rc == 0)
		rc = zap_log_append(d->log, ZAP_LOG_CHOSEN, slot, DEMO_BALLOT, NULL, 0, NULL);
	if (rc == 0)
		rc = zap_log_sync(d->log);
	if (rc != 0) {
		printf("log: %s\n", strerror(-rc));
		return rc;
	}
	d->n_res = 0;
	rc = zap_txn_sm_apply(d->sm, slot, buf, len, on_result, d);
	uint64_t dt = mono_ns() - t0;
	d->commit_ns_sum += dt;
	d->commit_ns_max = dt > d->commit_ns_max ? dt : d->commit_ns_max;
	d->proposals++;
	printf("[slot %2" PRIu64 "] %-58s %6.1f us\n", slot, what, (double)dt / 1e3);
	if (rc != 0) {
		printf("        -> entry rejected: %s\n", strerror(-rc));
		return rc;
	}
	for (int i = 0; i < d->n_res; i++)
		print_result(&d->res[i]);
	return 0;
}

static int propose(struct demo *d, struct zap_entry *e, const char *what)
{
	e->node = d->cfg->nodes[0].id;
	e->clock_ns = e->clock_ns ? e->clock_ns : wall_ns();
	if (e->client_id != 0)
		e->seq = ++d->seq[e->client_id];
	size_t need = zap_entry_size(e);
	if (need == 0)
		return -EINVAL;
	if (need > d->cap) {
		free(d->buf);
		d->buf = malloc(need);
		d->cap = d->buf ? need : 0;
		if (d->buf == NULL)
			return -ENOMEM;
	}
	ssize_t n = zap_entry_encode(e, d->buf, d->cap);
	if (n < 0)
		return (int)n;
	d->len = (size_t)n;
	return propose_bytes(d, d->buf, (size_t)n, what);
}

/* A PREPARE or ONESHOT of text records. */
static int txn(struct demo *d, uint8_t type, uint64_t client, uint64_t txn_id,
	       const struct zap_entry_store *st, uint32_t n_st, const struct zap_entry_read *rd,
	       uint32_t n_rd, const char *desc, const char *what)
{
	struct zap_entry e = {.type = type, .client_id = client};
	e.u.txn = (struct zap_entry_txn){
		.txn_id = txn_id,
		.text = {
			.user = client_name[client],
			.user_len = (uint32_t)strlen(client_name[client]),
			.description = desc,
			.description_len = (uint32_t)strlen(desc),
		},
		.stores = st,
		.n_stores = n_st,
		.reads = rd,
		.n_reads = n_rd,
	};
	return propose(d, &e, what);
}

static int txn_end(struct demo *d, uint8_t type, uint64_t client, uint64_t txn_id,
		   const char *what)
{
	struct zap_entry e = {.type = type, .client_id = client};
	e.u.txn_id = txn_id;
	return propose(d, &e, what);
}

static struct zap_entry_store rec(uint64_t oid, uint64_t base, const char *text)
{
	return (struct zap_entry_store){oid, base, 0, text, strlen(text)};
}

static uint64_t serial_of(struct demo *d, uint64_t oid)
{
	return zap_store_serial(d->store, oid);
}

static void show_object(struct demo *d, uint64_t oid)
{
	struct zap_store_rev rev;
	char t[64];
	zap_store_read_begin(d->reader);
	int rc = zap_store_load(d->reader, oid, &rev);
	if (rc == 0 && rev.deleted)
		printf("  read  oid %" PRIu64 ": deleted at %s\n", oid, tidstr(rev.serial, t));
	else if (rc == 0)
		printf("  read  oid %" PRIu64 ": \"%.*s\"  serial %s\n", oid, (int)rev.len,
		       (const char *)rev.data, tidstr(rev.serial, t));
	else
		printf("  read  oid %" PRIu64 ": not found\n", oid);
	zap_store_read_end(d->reader);
}

static int print_change(const struct zap_store_txn_info *t, void *ctx)
{
	char buf[64];
	(void)ctx;
	printf("        tid %s by %.*s:", tidstr(t->tid, buf), (int)t->text.user_len,
	       (const char *)t->text.user);
	for (uint32_t i = 0; i < t->n_oids; i++)
		printf(" %" PRIu64, t->oids[i]);
	printf("\n");
	return 0;
}

static void show_history(struct demo *d, uint64_t oid, uint64_t since)
{
	struct zap_store_hist h[8];
	struct zap_store_rev rev;
	size_t n = 0;
	char t[64];
	uint64_t snap = zap_store_read_begin(d->reader);
	if (zap_store_history(d->reader, oid, h, 8, &n) == 0) {
		printf("  history of oid %" PRIu64 " (newest first):\n", oid);
		for (size_t i = 0; i < n; i++)
			printf("        %s  %3" PRIu64 " bytes  by %.*s: %.*s\n",
			       tidstr(h[i].serial, t), h[i].len, (int)h[i].txn.text.user_len,
			       (const char *)h[i].txn.text.user, (int)h[i].txn.text.description_len,
			       (const char *)h[i].txn.text.description);
	}
	if (n >= 2 && zap_store_load_before(d->reader, oid, h[0].serial, &rev) == 0)
		printf("  loadBefore(oid %" PRIu64 ", %016" PRIx64 ") = \"%.*s\" serial %016" PRIx64
		       " next_serial %016" PRIx64 "\n",
		       oid, h[0].serial, (int)rev.len, (const char *)rev.data, rev.serial,
		       rev.next_serial);
	printf("  changes since %016" PRIx64 " (snapshot %016" PRIx64 "):\n", since, snap);
	zap_store_changes_since(d->reader, since, print_change, NULL);
	zap_store_read_end(d->reader);
}

static void measure_reads(struct demo *d, uint64_t n_oids)
{
	struct zap_store_rev rev;
	uint64_t hits = 0, t0 = mono_ns();
	zap_store_read_begin(d->reader);
	for (uint32_t i = 0; i < DEMO_READS; i++)
		hits += zap_store_load_before(d->reader, i % n_oids, UINT64_MAX, &rev) == 0;
	zap_store_read_end(d->reader);
	uint64_t dt = mono_ns() - t0;
	printf("  %u loadBefore calls from the shared-memory store: %.1f ns each (%" PRIu64
	       " found)\n", DEMO_READS, (double)dt / DEMO_READS, hits);
}

static int open_node(struct demo *d, struct zap_replay_info *info)
{
	char err[512];
	int rc = zap_store_create(&d->sp, &d->store);
	if (rc == 0)
		rc = zap_txn_sm_create(&d->tp, d->store, &d->sm);
	if (rc == 0)
		rc = zap_replay_open(&d->lp, d->sm, NULL, NULL, &d->log, info, err, sizeof(err));
	if (rc == 0)
		rc = zap_store_reader_open(d->store, &d->reader);
	if (rc != 0)
		printf("open: %s\n", rc == -EILSEQ ? err : strerror(-rc));
	d->slot = info->applied_slot;
	return rc;
}

static void close_node(struct demo *d)
{
	zap_store_reader_close(d->reader);
	zap_log_close(d->log);
	zap_txn_sm_destroy(d->sm);
	zap_store_close(d->store);
	d->reader = NULL;
	d->log = NULL;
	d->sm = NULL;
	d->store = NULL;
}

static int scenario(struct demo *d)
{
	int rc;
	const uint64_t root = 0;
	printf("\n-- new objects: reserve oids, commit the root and two accounts in one shot\n");
	struct zap_entry e = {.type = ZAP_ENTRY_OID_RESERVE, .client_id = ALICE};
	e.u.oid_count = 4;
	if ((rc = propose(d, &e, "OID_RESERVE 4 (alice)")) != 0)
		return rc;
	uint64_t a1 = d->res[0].first_oid, a2 = a1 + 1, a3 = a1 + 2, a4 = a1 + 3;
	struct zap_entry_store s1[] = {rec(root, 0, "root: accounts [1, 2]"),
				       rec(a1, 0, "account 1: balance=100"),
				       rec(a2, 0, "account 2: balance=50")};
	if ((rc = txn(d, ZAP_ENTRY_ONESHOT, ALICE, 1001, s1, 3, NULL, 0, "open accounts",
		      "ONESHOT txn 1001 (alice): oids 0, 1, 2")) != 0)
		return rc;
	uint64_t first_tid = d->res[0].tid;
	show_object(d, root);
	show_object(d, a1);

	printf("\n-- two clients vote on the same object: the second waits for the lock\n");
	uint64_t base1 = serial_of(d, a1), base2 = serial_of(d, a2);
	struct zap_entry_store s2[] = {rec(a1, base1, "account 1: balance=70"),
				       rec(a2, base2, "account 2: balance=80")};
	txn(d, ZAP_ENTRY_PREPARE, ALICE, 1002, s2, 2, NULL, 0, "transfer 30",
	    "PREPARE txn 1002 (alice): oids 1, 2");
	struct zap_entry_store s3[] = {rec(a1, base1, "account 1: balance=90")};
	txn(d, ZAP_ENTRY_PREPARE, BOB, 2001, s3, 1, NULL, 0, "deposit -10",
	    "PREPARE txn 2001 (bob): oid 1, same base serial");
	txn_end(d, ZAP_ENTRY_COMMIT, ALICE, 1002, "COMMIT txn 1002 (alice): waiter re-checked");
	show_object(d, a1);

	printf("\n-- bob retries on the new serial, as ZODB's retry loop does\n");
	struct zap_entry_store s4[] = {rec(a1, serial_of(d, a1), "account 1: balance=60")};
	if ((rc = txn(d, ZAP_ENTRY_ONESHOT, BOB, 2002, s4, 1, NULL, 0, "withdraw 10",
		      "ONESHOT txn 2002 (bob): oid 1")) != 0)
		return rc;
	printf("   the same request arrives again (a retry after a lost reply), in a new slot:\n");
	uint8_t *again = malloc(d->len);
	if (again == NULL)
		return -ENOMEM;
	memcpy(again, d->buf, d->len);
	propose_bytes(d, again, d->len, "ONESHOT txn 2002 (bob), retried");
	free(again);

	printf("\n-- readCurrent: carol's vote depends on a value that changed\n");
	struct zap_entry_store s5[] = {rec(a3, 0, "audit: total=150")};
	struct zap_entry_read r5[] = {{a2, base2}};
	txn(d, ZAP_ENTRY_PREPARE, CAROL, 3001, s5, 1, r5, 1, "audit",
	    "PREPARE txn 3001 (carol): oid 3, readCurrent oid 2");

	printf("\n-- abort releases the lock; the waiting one-shot commits\n");
	struct zap_entry_store s6[] = {rec(a3, 0, "audit: draft")};
	txn(d, ZAP_ENTRY_PREPARE, CAROL, 3002, s6, 1, NULL, 0, "draft",
	    "PREPARE txn 3002 (carol): oid 3");
	struct zap_entry_store s7[] = {rec(a3, 0, "audit: total=140")};
	txn(d, ZAP_ENTRY_ONESHOT, ALICE, 1003, s7, 1, NULL, 0, "audit",
	    "ONESHOT txn 1003 (alice): oid 3");
	txn_end(d, ZAP_ENTRY_ABORT, CAROL, 3002, "ABORT txn 3002 (carol)");
	show_object(d, a3);

	printf("\n-- a prepared transaction that outlives its lease is aborted through the log\n");
	uint64_t now = wall_ns();
	struct zap_entry_store s8[] = {rec(a4, 0, "forgotten")};
	struct zap_entry pe = {.type = ZAP_ENTRY_PREPARE, .client_id = CAROL, .clock_ns = now};
	pe.u.txn = (struct zap_entry_txn){.txn_id = 3003, .stores = s8, .n_stores = 1};
	propose(d, &pe, "PREPARE txn 3003 (carol): oid 4, then carol goes away");
	struct zap_entry le = {.type = ZAP_ENTRY_LEASE_EXPIRE, .clock_ns = now + d->tp.lease_ns};
	le.u.expire_node = ZAP_ENTRY_NODE_NONE;
	propose(d, &le, "LEASE_EXPIRE (a lease later)");

	printf("\n-- delete an object\n");
	struct zap_entry_store s9[] = {{a3, serial_of(d, a3), 1, NULL, 0}};
	txn(d, ZAP_ENTRY_ONESHOT, ALICE, 1004, s9, 1, NULL, 0, "close audit",
	    "ONESHOT txn 1004 (alice): delete oid 3");
	show_object(d, a3);

	printf("\n-- reads: history, loadBefore, what changed\n");
	show_history(d, a1, first_tid);
	measure_reads(d, a4);
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void init_params(struct demo *d, const struct zap_config *cfg)
{
	d->cfg = cfg;
	zap_log_params_init(&d->lp, d->dir);
	d->lp.segment_bytes = cfg->log.segment_bytes;
	d->lp.durability = cfg->log.durability == ZAP_DURABILITY_FSYNC
				   ? ZAP_LOG_DURABILITY_FSYNC
				   : ZAP_LOG_DURABILITY_MEMORY;
	d->sp.size_bytes = cfg->store.size_bytes;
	d->sp.max_record_bytes = cfg->store.max_record_bytes;
	d->sp.hugetlbfs_dir =
		cfg->store.backing == ZAP_STORE_BACKING_HUGETLBFS ? cfg->store.hugetlbfs_dir : NULL;
	d->tp.lease_ns = (uint64_t)cfg->txn.lease_ms * 1000000ull;
	d->tp.max_sessions = cfg->txn.max_sessions;
	d->tp.max_record_bytes = cfg->store.max_record_bytes;
}

int zap_demo_run(const struct zap_config *cfg, const struct zap_demo_opts *o)
{
	struct demo d = {0};
	const struct zap_node_config *node =
		o->node_id ? zap_config_node(cfg, o->node_id) : &cfg->nodes[0];
	if (node == NULL) {
		printf("zap demo: node %u is not in %s\n", o->node_id, cfg->source);
		return -ENOENT;
	}
	snprintf(d.dir, sizeof(d.dir), "/tmp/zap-demo-%u.XXXXXX", node->id);
	if (mkdtemp(d.dir) == NULL) {
		printf("zap demo: mkdtemp: %s\n", strerror(errno));
		return -errno;
	}
	init_params(&d, cfg);
	printf("zap demo: node %u (%s) of %s; log %s (%s), store %" PRIu64 " MiB %s\n", node->id,
	       node->name, cfg->source, d.dir,
	       d.lp.durability == ZAP_LOG_DURABILITY_FSYNC ? "fsync" : "memory",
	       cfg->store.size_bytes >> 20, d.sp.hugetlbfs_dir ? "hugetlbfs" : "memfd");
	printf("each command: encode entry, append ACCEPT+CHOSEN, group commit, apply; "
	       "time per command at right\n");
	struct zap_replay_info info;
	int rc = open_node(&d, &info);
	if (rc == 0)
		rc = scenario(&d);
	uint64_t store_digest = 0, sm_digest = 0, last_tid = 0, slots = d.slot;
	struct zap_txn_stats ts;
	if (rc == 0) {
		zap_txn_sm_stats(d.sm, &ts);
		store_digest = zap_store_digest(d.store);
		sm_digest = zap_txn_sm_digest(d.sm);
		last_tid = zap_store_last_tid(d.store);
		printf("\n%" PRIu64 " commands: %" PRIu64 " commits, %" PRIu64 " conflicts, %" PRIu64
		       " read conflicts, %" PRIu64 " waits, %" PRIu64 " expired, %" PRIu64
		       " replays; durable+applied in %.1f us mean, %.1f us max\n",
		       d.proposals, ts.commits, ts.conflicts, ts.read_conflicts, ts.waits,
		       ts.expiries, ts.duplicates, (double)d.commit_ns_sum / (double)d.proposals / 1e3,
		       (double)d.commit_ns_max / 1e3);
	}
	if (d.sm != NULL)
		close_node(&d);
	if (rc == 0) {
		printf("\n-- restart: a fresh store and state machine rebuilt from the log\n");
		uint64_t t0 = mono_ns();
		rc = open_node(&d, &info);
		if (rc == 0) {
			int same = zap_store_digest(d.store) == store_digest &&
				   zap_txn_sm_digest(d.sm) == sm_digest &&
				   zap_store_last_tid(d.store) == last_tid && info.applied_slot == slots;
			printf("  replayed %" PRIu64 " log records, applied slots 1..%" PRIu64
			       " in %.1f ms; store and state machine %s\n",
			       info.records, info.applied_slot, (double)(mono_ns() - t0) / 1e6,
			       same ? "identical to before the restart" : "DIFFER");
			show_object(&d, 1);
			rc = same ? 0 : -EIO;
			close_node(&d);
		}
	}
	free(d.buf);
	if (!o->keep) {
		if (nftw(d.dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS) != 0)
			printf("zap demo: could not remove %s\n", d.dir);
	} else {
		printf("data kept in %s\n", d.dir);
	}
	printf("zap demo: %s\n", rc == 0 ? "done" : "FAILED");
	return rc;
}
