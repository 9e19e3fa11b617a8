/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO gateway, the worker pool: the calls that wait for the cluster, in
 * each connection's arrival order (transactions are built by
 * zeo_gateway_txn.c): register (a read barrier), new_oids (OID_RESERVE),
 * vote (PREPARE), tpc_finish (COMMIT), tpc_abort (ABORT), ping (a read
 * barrier), pack (PACK), and the ABORT of a prepared transaction whose
 * connection is gone.
 *
 * The I/O thread queues a connection's calls (zg_queue); a connection with
 * calls waits on the pool's ready list; one worker at a time runs its calls
 * in order. The pool makes a thread when a connection waits and none is
 * idle (a vote may wait in the state machine for another connection's locks,
 * so the pool must never let waiting calls starve the finish that releases
 * them), up to ZG_POOL_MAX; a thread idle for ZG_POOL_IDLE_S ends, down to
 * ZG_POOL_MIN. A connection's native client (its session: PREPARE and COMMIT
 * must come from the same one) is opened by its first call.
 *
 * Vote: later stores of an oid replace earlier ones; readCurrent checks of
 * oids the transaction also stores are dropped (the store's own serial check
 * covers them). A write conflict on a class zap merges (BTrees buckets, sets,
 * one-bucket trees, Length) is merged natively first (zeo_gateway_resolve.c)
 * and the oid returned in vote's list. Any other write conflict comes back as
 * a conflict dict (ZEO's client-side resolution): the transaction stays
 * open, the client loads both serials, merges with its own classes, stores
 * the merged state over the committed serial and votes again; each vote is a
 * fresh PREPARE with a fresh native txn id. A read conflict is a ReadConflictError. A vote that meets an
 * oid locked by another prepared transaction waits in the state machine's
 * FIFO, so its reply is simply later.
 *
 * tpc_finish never answers with an error after a good vote: it retries until
 * the cluster answers, and if it cannot (no quorum for the whole deadline)
 * the connection is closed, as the stock client expects of a server that died.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zeo_gateway_core.h"

/** Attempts of one native call (libzapclient resends with the same request id). */
#define ZG_NATIVE_TIMEOUT_MS 1000u
#define ZG_NATIVE_RETRIES 29u
#define ZG_NEW_OIDS_MAX 100
/** PREPAREs of one vote that met a newer revision and merged natively over it. */
#define ZG_NATIVE_MERGE_ROUNDS 8u
/** A best-effort ABORT: short, since the lease frees what it misses. */
#define ZG_ABORT_TIMEOUT_MS 200u
#define ZG_ABORT_RETRIES 2u
/** Worker threads kept while idle, and made at most. */
#define ZG_POOL_MIN 2u
#define ZG_POOL_MAX 192u
/** A worker idle this long ends (above ZG_POOL_MIN). */
#define ZG_POOL_IDLE_S 10
/** Stack of a worker thread. */
#define ZG_POOL_STACK_BYTES (512u << 10)

static void pause_ms(unsigned ms)
{
	struct timespec ts = {0, (long)ms * 1000000L};
	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ jobs */

static void reply_locked_text(struct zg_conn *c, const struct zg_job *j, const char *cls,
			      const char *text)
{
	pthread_mutex_lock(&c->wmu);
	zg_reply_error_text(c, j->msgid, j->msgid_len, cls, text);
	pthread_mutex_unlock(&c->wmu);
}

static void job_new_oids(struct zg_conn *c, const struct zg_job *j)
{
	if (c->read_only) {
		pthread_mutex_lock(&c->wmu);
		zg_reply_read_only(c, j->msgid, j->msgid_len);
		pthread_mutex_unlock(&c->wmu);
		return;
	}
	uint32_t want = j->arg <= 0		   ? 1
			: j->arg > ZG_NEW_OIDS_MAX ? ZG_NEW_OIDS_MAX
						   : (uint32_t)j->arg;
	uint64_t first = 0, deadline = zg_now_ns() + ZG_WRITE_DEADLINE_NS;
	uint32_t got = 0;
	int rc;
	while (zg_transient(rc = zap_client_new_oids(c->zc, want, &first, &got)) &&
	       zg_now_ns() < deadline && !atomic_load(&c->dead))
		pause_ms(20);
	if (rc != 0 || got == 0) {
		if (rc == -EOVERFLOW)
			reply_locked_text(c, j, "ZODB.POSException.StorageError", "oids exhausted");
		else
			zg_conn_kill(c, "new_oids: cluster unavailable");
		return;
	}
	pthread_mutex_lock(&c->wmu);
	zg_reply_begin(c, j->msgid, j->msgid_len, false);
	zeo_w_list_begin(&c->out, c->enc, got);
	for (uint32_t i = 0; i < got; i++)
		zeo_w_u64be(&c->out, c->enc, first + i);
	zeo_w_list_end(&c->out, c->enc, got);
	zg_reply_end(c);
	pthread_mutex_unlock(&c->wmu);
}

/*
 * deleteObject over serial z64 (the object "must not exist") cannot be a
 * native delete: answer as the store stands. @return true to go on.
 */
static bool deletes_checked(struct zg_conn *c, const struct zg_job *j)
{
	struct zg_txn *t = &c->txn;
	for (uint32_t i = 0; i < t->n_items; i++) {
		const struct zg_item *it = &t->items[i];
		if (!it->deleted || it->serial != 0 || it->restore)
			continue;
		uint64_t oid = it->oid, serial = 0;
		pthread_mutex_lock(&c->wmu);
		struct zap_store_rev cur;
		zap_store_read_begin(zg_rd());
		if (zap_store_load(zg_rd(), oid, &cur) == 0 && !cur.deleted)
			serial = cur.serial;
		zap_store_read_end(zg_rd());
		if (serial != 0)
			zg_reply_conflict(c, j->msgid, j->msgid_len, false, oid, true, serial, 0, NULL,
					  "database conflict error");
		else
			zg_reply_pos_key(c, j->msgid, j->msgid_len, oid);
		pthread_mutex_unlock(&c->wmu);
		zg_txn_clear(t);
		return false;
	}
	return true;
}

/* Best-effort ABORT with short timeouts (the lease covers a lost one). */
static void abort_quick(struct zg_conn *c, uint64_t native)
{
	zap_client_set_timeout(c->zc, ZG_ABORT_TIMEOUT_MS, ZG_ABORT_RETRIES);
	zap_client_abort(c->zc, native);
	zap_client_set_timeout(c->zc, ZG_NATIVE_TIMEOUT_MS, ZG_NATIVE_RETRIES);
}

static int cmp_item(const void *a, const void *b)
{
	const struct zg_item *x = a, *y = b;
	if (x->oid != y->oid)
		return x->oid < y->oid ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_read(const void *a, const void *b)
{
	const struct zap_cp_read *x = a, *y = b;
	return x->oid < y->oid ? -1 : x->oid > y->oid;
}

struct seq_store {
	uint32_t seq;
	struct zap_cp_store st;
};

static int cmp_seq_store(const void *a, const void *b)
{
	const struct seq_store *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * The stores into st[] in the order the client sent them (a transaction's
 * records keep their order, as FileStorage writes them; restore and
 * iteration carry it), sq[i] the arrival of st[i]'s store.
 */
static void arrival_order(struct zap_cp_store *st, const uint32_t *sq, uint32_t n)
{
	struct seq_store *x = n > 1 ? malloc(n * sizeof(*x)) : NULL;
	if (x == NULL)
		return; /* one store, or no memory: oid order is still a valid order */
	for (uint32_t i = 0; i < n; i++)
		x[i] = (struct seq_store){sq[i], st[i]};
	qsort(x, n, sizeof(*x), cmp_seq_store);
	for (uint32_t i = 0; i < n; i++)
		st[i] = x[i].st;
	free(x);
}

/* The last store per oid into st[], in arrival order; reads minus stored oids into rd[]. */
static void vote_arrays(struct zg_txn *t, struct zap_cp_store *st, uint32_t *n_st,
			struct zap_cp_read *rd, uint32_t *n_rd)
{
	if (t->n_items > 1) /* qsort must not see a NULL array, even empty */
		qsort(t->items, t->n_items, sizeof(*t->items), cmp_item);
	uint32_t n = 0;
	uint32_t *sq = calloc(t->n_items + 1, sizeof(*sq));
	for (uint32_t i = 0; i < t->n_items; i++) {
		const struct zg_item *it = &t->items[i];
		if (i + 1 < t->n_items && t->items[i + 1].oid == it->oid)
			continue; /* a later store of the same oid wins */
		if (sq != NULL)
			sq[n] = it->seq;
		st[n++] = (struct zap_cp_store){.oid = it->oid,
						.base_serial = it->serial,
						.deleted = it->deleted,
						.data = it->deleted ? NULL : t->data + it->off,
						.len = it->len};
	}
	*n_st = n;
	/* Items are now sorted: keep only reads of oids not stored, once each. */
	if (t->n_reads > 1)
		qsort(t->reads, t->n_reads, sizeof(*t->reads), cmp_read);
	uint32_t m = 0;
	for (uint32_t i = 0; i < t->n_reads; i++) {
		const struct zap_cp_read *r = &t->reads[i];
		if (m > 0 && rd[m - 1].oid == r->oid)
			continue;
		struct zg_item key = {.oid = r->oid};
		bool stored = false;
		for (uint32_t lo = 0, hi = n; lo < hi;) {
			uint32_t mid = (lo + hi) / 2;
			if (st[mid].oid == key.oid) {
				stored = true;
				break;
			}
			if (st[mid].oid < key.oid)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (!stored)
			rd[m++] = *r;
	}
	*n_rd = m;
	if (sq != NULL)
		arrival_order(st, sq, n);
	free(sq);
}

/* Whether a conflicting store may go back as a conflict dict (client-side resolution). */
static bool dictable(const struct zg_txn *t, const struct zap_cp_store *s)
{
	if (s->deleted || (s->len >= ZG_BLOB_HDR_BYTES &&
			   memcmp(s->data, ZG_BLOB_MAGIC, ZG_BLOB_MAGIC_BYTES) == 0))
		return false;
	for (uint32_t i = 0; i < t->n_items; i++)
		if (t->items[i].oid == s->oid && (t->items[i].undo || t->items[i].restore))
			return false;
	return true;
}

/*
 * Answer a vote that met conflicts on @p n stores (@p committed: each one's
 * serial now). Conflict dicts when the client can resolve them all, and this
 * is not its last round (ZG_MAX_RESOLVE_ROUNDS): the transaction stays open.
 * Else a ConflictError, and the transaction is dropped. Caller holds tmu and
 * wmu.
 */
static void vote_conflict_reply(struct zg_conn *c, const struct zg_job *j, struct zg_txn *t,
				const struct zap_cp_store *const *s, const uint64_t *committed,
				uint32_t n)
{
	ZG_COUNT(c->g, conflicts);
	uint32_t hard = n;
	for (uint32_t i = 0; i < n && hard == n; i++)
		if (!dictable(t, s[i]) || (t->refused && s[i]->oid == t->refused_oid))
			hard = i;
	if (hard == n && t->conflict_rounds + 1 >= ZG_MAX_RESOLVE_ROUNDS)
		hard = 0;
	if (hard < n) {
		bool native = t->refused && s[hard]->oid == t->refused_oid;
		zg_reply_conflict(c, j->msgid, j->msgid_len, false, s[hard]->oid, true,
				  committed[hard], s[hard]->base_serial,
				  native ? t->refused_class : NULL, "database conflict error");
		zg_txn_clear(t);
		return;
	}
	t->conflict_rounds++;
	zg_reply_begin(c, j->msgid, j->msgid_len, false);
	zeo_w_list_begin(&c->out, c->enc, n);
	for (uint32_t i = 0; i < n; i++) {
		zeo_w_dict_begin(&c->out, c->enc, 3);
		zeo_w_cstr(&c->out, c->enc, "oid");
		zeo_w_u64be(&c->out, c->enc, s[i]->oid);
		zeo_w_cstr(&c->out, c->enc, "serials");
		zeo_w_tuple_begin(&c->out, c->enc, 2);
		zeo_w_u64be(&c->out, c->enc, committed[i]);
		zeo_w_u64be(&c->out, c->enc, s[i]->base_serial);
		zeo_w_tuple_end(&c->out, c->enc, 2);
		zeo_w_cstr(&c->out, c->enc, "data");
		zeo_w_bytes(&c->out, c->enc, s[i]->data, s[i]->len);
		zeo_w_dict_end(&c->out, c->enc, 3);
	}
	zeo_w_list_end(&c->out, c->enc, n);
	zg_reply_end(c);
}

/*
 * Before the PREPARE: every store whose base serial is older than the
 * object's serial in the local store conflicts. All of them go back in one
 * reply, as a stock server answers, so the client resolves them in one round;
 * the PREPARE would report only the first (and catches what this node has
 * not applied yet). @return true when the vote was answered.
 */
static bool vote_local_conflicts(struct zg_conn *c, const struct zg_job *j, struct zg_txn *t,
				 const struct zap_cp_store *st, uint32_t n_st)
{
	const struct zap_cp_store **bad = NULL;
	uint64_t *now = NULL;
	uint32_t nb = 0;
	pthread_mutex_lock(&c->wmu);
	zap_store_read_begin(zg_rd());
	for (uint32_t i = 0; i < n_st; i++) {
		struct zap_store_rev cur;
		uint64_t serial = zap_store_load(zg_rd(), st[i].oid, &cur) == 0 ? cur.serial : 0;
		/* Only a newer revision here is a conflict. An older one means
		 * this node has not applied the commit the client's serial comes
		 * from (it read it through another node): the PREPARE decides. */
		if (serial <= st[i].base_serial)
			continue;
		if (bad == NULL) {
			bad = calloc(n_st, sizeof(*bad));
			now = calloc(n_st, sizeof(*now));
			if (bad == NULL || now == NULL)
				break; /* the PREPARE will tell */
		}
		bad[nb] = &st[i];
		now[nb++] = serial;
	}
	zap_store_read_end(zg_rd());
	if (nb > 0 && bad != NULL && now != NULL)
		vote_conflict_reply(c, j, t, bad, now, nb);
	pthread_mutex_unlock(&c->wmu);
	free(bad);
	free(now);
	return nb > 0;
}

/** A fresh native txn id for a PREPARE (never 0). */
static uint64_t next_native(struct zg_conn *c)
{
	uint64_t native = c->g->native_txn_base + atomic_fetch_add(&c->g->native_txn_seq, 1);
	return native != 0 ? native : 1;
}

static void job_vote(struct zg_conn *c, const struct zg_job *j)
{
	pthread_mutex_lock(&c->tmu);
	struct zg_txn *t = &c->txn;
	if (!t->open || !zg_txn_key_eq(&t->key, j->txn, j->txn_big)) {
		pthread_mutex_unlock(&c->tmu);
		reply_locked_text(c, j, "ZODB.POSException.StorageTransactionError",
				  "vote: the transaction is not open (tpc_begin missing)");
		return;
	}
	if (t->voted) {
		pthread_mutex_unlock(&c->tmu);
		pthread_mutex_lock(&c->wmu);
		zg_reply_begin(c, j->msgid, j->msgid_len, false);
		zeo_w_list_begin(&c->out, c->enc, 0);
		zeo_w_list_end(&c->out, c->enc, 0);
		zg_reply_end(c);
		pthread_mutex_unlock(&c->wmu);
		return;
	}
	zg_restore_bases(c);
	if (!zg_undo_prepare(c, j) || !deletes_checked(c, j)) {
		pthread_mutex_unlock(&c->tmu);
		return;
	}
	struct zap_cp_store *st = calloc(t->n_items + 1, sizeof(*st));
	struct zap_cp_read *rd = calloc(t->n_reads + 1, sizeof(*rd));
	if (st == NULL || rd == NULL) {
		free(st);
		free(rd);
		zg_txn_clear(t);
		pthread_mutex_unlock(&c->tmu);
		reply_locked_text(c, j, "ZODB.POSException.StorageError", "out of memory");
		return;
	}
	uint32_t n_st, n_rd;
	vote_arrays(t, st, &n_st, rd, &n_rd);
	if (zg_resolve_native(c, t) > 0)
		vote_arrays(t, st, &n_st, rd, &n_rd); /* merged records moved the data */
	if (vote_local_conflicts(c, j, t, st, n_st)) {
		pthread_mutex_unlock(&c->tmu);
		free(st);
		free(rd);
		return;
	}
	uint64_t native = next_native(c);
	struct zap_client_txn tx = {
	    .txn_id = native,
	    .text =
		{
		    .user = t->data + t->user_off,
		    .user_len = t->user_len,
		    .description = t->data + t->desc_off,
		    .description_len = t->desc_len,
		    .extension = t->data + t->ext_off,
		    .extension_len = t->ext_len,
		},
	    .stores = st,
	    .n_stores = n_st,
	    .reads = rd,
	    .n_reads = n_rd,
	};
	struct zap_client_conflict cf = {0};
	int rc = 0;
	for (unsigned merge_round = 0; n_st > 0 || n_rd > 0; merge_round++) {
		uint64_t deadline = zg_now_ns() + ZG_WRITE_DEADLINE_NS;
		/* A PREPARE whose fate is unknown (no answer, no quorum) is aborted
		 * and tried again under a fresh native id, so an attempt that did get
		 * through never holds locks the next one would wait for. */
		while (zg_transient(rc = zap_client_prepare(c->zc, &tx, &cf)) && zg_now_ns() < deadline &&
		       !atomic_load(&c->dead)) {
			abort_quick(c, native);
			pause_ms(20);
			native = next_native(c);
			tx.txn_id = native;
		}
		/* A commit this node had not applied before the PREPARE (or one the
		 * PREPARE waited for) changed a stored object: merge again over it
		 * and PREPARE again; a failed PREPARE holds no locks. */
		if (rc != ZAP_CLIENT_E_CONFLICT || merge_round + 1 >= ZG_NATIVE_MERGE_ROUNDS ||
		    zg_wait_applied(c->g, cf.serial) != 0 || zg_resolve_native(c, t) == 0)
			break;
		vote_arrays(t, st, &n_st, rd, &n_rd);
		tx.stores = st;
		tx.n_stores = n_st;
		native = next_native(c);
		tx.txn_id = native;
	}
	if (rc == 0) {
		t->voted = n_st > 0 || n_rd > 0;
		t->native_id = native;
		if (!t->voted)
			t->native_id = 0;
		/* The oids an undo wrote or a merge changed: the client must not
		 * cache its own view of them. */
		uint32_t n = t->n_undone + t->n_resolved;
		pthread_mutex_lock(&c->wmu);
		zg_reply_begin(c, j->msgid, j->msgid_len, false);
		zeo_w_list_begin(&c->out, c->enc, n);
		for (uint32_t i = 0; i < t->n_undone; i++)
			zeo_w_u64be(&c->out, c->enc, t->undone[i]);
		for (uint32_t i = 0; i < t->n_resolved; i++)
			zeo_w_u64be(&c->out, c->enc, t->resolved[i]);
		zeo_w_list_end(&c->out, c->enc, n);
		zg_reply_end(c);
		pthread_mutex_unlock(&c->wmu);
	} else if (rc == ZAP_CLIENT_E_CONFLICT) {
		const struct zap_cp_store *s = NULL;
		for (uint32_t i = 0; i < n_st; i++)
			if (st[i].oid == cf.oid)
				s = &st[i];
		pthread_mutex_lock(&c->wmu);
		if (s != NULL) {
			vote_conflict_reply(c, j, t, &s, &cf.serial, 1);
		} else {
			ZG_COUNT(c->g, conflicts);
			zg_reply_conflict(c, j->msgid, j->msgid_len, false, cf.oid, true, cf.serial,
					  cf.base_serial, NULL, "database conflict error");
			zg_txn_clear(t);
		}
		pthread_mutex_unlock(&c->wmu);
	} else if (rc == ZAP_CLIENT_E_READ_CONFLICT) {
		ZG_COUNT(c->g, read_conflicts);
		pthread_mutex_lock(&c->wmu);
		zg_reply_conflict(c, j->msgid, j->msgid_len, true, cf.oid, true, cf.serial,
				  cf.base_serial, NULL, "database read conflict error");
		pthread_mutex_unlock(&c->wmu);
		zg_txn_clear(t);
	} else if (rc == -EBUSY) {
		pthread_mutex_lock(&c->wmu);
		zg_reply_conflict(c, j->msgid, j->msgid_len, false, 0, false, 0, 0, NULL,
				  "zap: too many transactions in flight, retry");
		pthread_mutex_unlock(&c->wmu);
		zg_txn_clear(t);
	} else if (zg_transient(rc)) {
		/* The vote may or may not have been applied: abort it, drop the client. */
		abort_quick(c, native);
		zg_txn_clear(t);
		zg_conn_kill(c, "vote: cluster unavailable");
	} else {
		char text[160];
		snprintf(text, sizeof(text), "zap: vote failed: %s", zap_client_strerror(rc));
		zg_txn_clear(t);
		reply_locked_text(c, j, "ZODB.POSException.StorageError", text);
	}
	pthread_mutex_unlock(&c->tmu);
	free(st);
	free(rd);
}

static void finish_reply(struct zg_conn *c, const struct zg_job *j, uint64_t tid)
{
	pthread_mutex_lock(&c->wmu);
	zg_cork(c); /* the invalidations and the reply in one send */
	/* Everything before the own tid first (O2), never the own one (§4). */
	zg_flush_invalidations(c, tid, tid);
	if (c->inval_tid < tid)
		c->inval_tid = tid;
	zg_reply_begin(c, j->msgid, j->msgid_len, false);
	zeo_w_u64be(&c->out, c->enc, tid);
	zg_reply_end(c);
	zg_uncork(c);
	c->finishing = false;
	pthread_mutex_unlock(&c->wmu);
}

static void job_finish(struct zg_conn *c, const struct zg_job *j)
{
	pthread_mutex_lock(&c->tmu);
	struct zg_txn *t = &c->txn;
	if (!t->open || !zg_txn_key_eq(&t->key, j->txn, j->txn_big) || (!t->voted && t->n_items > 0)) {
		pthread_mutex_unlock(&c->tmu);
		pthread_mutex_lock(&c->wmu);
		c->finishing = false;
		zg_reply_error_text(c, j->msgid, j->msgid_len,
				    "ZODB.POSException.StorageTransactionError",
				    "tpc_finish: no voted transaction with this id");
		pthread_mutex_unlock(&c->wmu);
		return;
	}
	if (!t->voted) {
		/* An empty transaction: nothing to commit; answer with the current tid. */
		zg_txn_clear(t);
		pthread_mutex_unlock(&c->tmu);
		uint64_t tid;
		if (zg_barrier(c, &tid) != 0) {
			zg_conn_kill(c, "tpc_finish: cluster unavailable");
			return;
		}
		pthread_mutex_lock(&c->wmu);
		uint64_t last = zap_store_last_tid(c->g->o.store);
		zg_flush_invalidations(c, last, 0);
		c->finishing = false;
		zg_reply_begin(c, j->msgid, j->msgid_len, false);
		zeo_w_u64be(&c->out, c->enc, c->inval_tid);
		zg_reply_end(c);
		pthread_mutex_unlock(&c->wmu);
		return;
	}
	uint64_t tid = 0, deadline = zg_now_ns() + ZG_WRITE_DEADLINE_NS;
	int rc;
	while (
	    (zg_transient(rc = zap_client_commit_at(c->zc, t->native_id, t->want_tid, &tid)) ||
	     rc == -EINPROGRESS) &&
	    zg_now_ns() < deadline && !atomic_load(&c->dead))
		pause_ms(20);
	/* A transaction of readCurrent checks only gets a tid but writes nothing. */
	bool wrote = t->n_items > 0;
	zg_txn_clear(t);
	pthread_mutex_unlock(&c->tmu);
	if (rc != 0 || (wrote && zg_wait_applied(c->g, tid) != 0)) {
		char why[128];
		snprintf(why, sizeof(why), "tpc_finish: %s", zap_client_strerror(rc));
		zg_conn_kill(c, why);
		return;
	}
	ZG_COUNT(c->g, commits);
	finish_reply(c, j, tid);
}

static void job_abort(struct zg_conn *c, const struct zg_job *j)
{
	pthread_mutex_lock(&c->tmu);
	struct zg_txn *t = &c->txn;
	if (t->open && zg_txn_key_eq(&t->key, j->txn, j->txn_big)) {
		if (t->voted)
			zap_client_abort(c->zc, t->native_id);
		zg_txn_clear(t);
		ZG_COUNT(c->g, aborts);
	}
	pthread_mutex_unlock(&c->tmu);
	pthread_mutex_lock(&c->wmu);
	zg_reply_begin(c, j->msgid, j->msgid_len, false);
	zeo_w_none(&c->out, c->enc);
	zg_reply_end(c);
	pthread_mutex_unlock(&c->wmu);
}

static void job_ping(struct zg_conn *c, const struct zg_job *j)
{
	uint64_t tid;
	if (zg_barrier(c, &tid) != 0) {
		zg_conn_kill(c, "ping: cluster unavailable");
		return;
	}
	pthread_mutex_lock(&c->wmu);
	if (!c->finishing)
		zg_flush_invalidations(c, zap_store_last_tid(c->g->o.store), 0);
	zg_reply_begin(c, j->msgid, j->msgid_len, false);
	zeo_w_none(&c->out, c->enc);
	zg_reply_end(c);
	pthread_mutex_unlock(&c->wmu);
}

/*
 * pack: the tid is clamped to the last one announced to this client, then
 * packed through the native service; None once the pack was applied here.
 * Read-only connections may pack. A tid of 0 (a time before 1970, or an
 * empty database) packs nothing.
 */
static void job_pack(struct zg_conn *c, const struct zg_job *j)
{
	pthread_mutex_lock(&c->wmu);
	uint64_t tid = j->txn < c->inval_tid ? j->txn : c->inval_tid;
	pthread_mutex_unlock(&c->wmu);
	if (tid != 0) {
		uint64_t deadline = zg_now_ns() + ZG_WRITE_DEADLINE_NS;
		int rc;
		while (zg_transient(rc = zap_client_pack(c->zc, tid, NULL)) && zg_now_ns() < deadline &&
		       !atomic_load(&c->dead))
			pause_ms(20);
		if (zg_transient(rc)) {
			zg_conn_kill(c, "pack: cluster unavailable");
			return;
		}
		if (rc != 0) {
			char text[160];
			snprintf(text, sizeof(text), "zap: pack failed: %s",
				 zap_client_strerror(rc));
			reply_locked_text(c, j, "ZODB.POSException.StorageError", text);
			return;
		}
	}
	pthread_mutex_lock(&c->wmu);
	zg_reply_begin(c, j->msgid, j->msgid_len, false);
	zeo_w_none(&c->out, c->enc);
	zg_reply_end(c);
	pthread_mutex_unlock(&c->wmu);
}

/* register: a read barrier, then the tid every later read starts from (O4). */
static void job_register(struct zg_conn *c, const struct zg_job *j)
{
	uint64_t tid;
	if (zg_barrier(c, &tid) != 0) {
		/* No quorum reachable: the client tries its other addresses. */
		zg_conn_kill(c, "register: read barrier failed");
		return;
	}
	pthread_mutex_lock(&c->wmu);
	c->read_only = j->arg != 0;
	c->inval_tid = zap_store_last_tid(c->g->o.store);
	c->registered = true;
	zg_reply_tid(c, j->msgid, j->msgid_len, c->inval_tid);
	pthread_mutex_unlock(&c->wmu);
}

/* The connection is gone: a prepared transaction must not keep its locks. */
static void job_close(struct zg_conn *c)
{
	pthread_mutex_lock(&c->tmu);
	if (c->txn.open && c->txn.voted && c->zc != NULL)
		abort_quick(c, c->txn.native_id);
	zg_txn_clear(&c->txn);
	pthread_mutex_unlock(&c->tmu);
}

/* The connection's native client: in-process when the node gives a transport. */
static bool native_open(struct zg_conn *c)
{
	const struct zap_zeo_gateway_opts *o = &c->g->o;
	struct zap_client_opts zo = {.timeout_ms = ZG_NATIVE_TIMEOUT_MS, .retries = ZG_NATIVE_RETRIES};
	c->zc = NULL;
	if (o->native_open == NULL)
		return zap_client_open_opts(c->g->native_host, o->native_port, o->cluster_id, &zo,
					    &c->zc) == 0;
	struct zap_client_transport t;
	if (o->native_open(o->native_arg, &t) != 0)
		return false;
	if (zap_client_open_transport(&t, o->cluster_id, &zo, &c->zc) != 0) {
		c->zc = NULL;
		o->native_close(o->native_arg, t.ctx);
		return false;
	}
	c->zc_ctx = t.ctx;
	return true;
}

static void run_job(struct zg_conn *c, const struct zg_job *j)
{
	if (j->kind == ZG_JOB_CLOSE) {
		job_close(c);
		return;
	}
	if (atomic_load(&c->dead))
		return;
	if (c->zc == NULL && !native_open(c)) {
		zg_conn_kill(c, "no native client left");
		return;
	}
	switch (j->kind) {
	case ZG_JOB_REGISTER:
		job_register(c, j);
		break;
	case ZG_JOB_NEW_OIDS:
		job_new_oids(c, j);
		break;
	case ZG_JOB_VOTE:
		job_vote(c, j);
		break;
	case ZG_JOB_FINISH:
		job_finish(c, j);
		break;
	case ZG_JOB_ABORT:
		job_abort(c, j);
		break;
	case ZG_JOB_PING:
		job_ping(c, j);
		break;
	case ZG_JOB_PACK:
		job_pack(c, j);
		break;
	default:
		break;
	}
}

/* ------------------------------------------------------------------ the queue and the pool */

static void conn_free(struct zg_conn *c)
{
	struct zap_zeo_gateway *g = c->g;
	pthread_mutex_lock(&g->mu);
	for (struct zg_conn **pp = &g->conns; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			g->n_conns--;
			break;
		}
	}
	pthread_mutex_unlock(&g->mu);
	if (c->zc != NULL)
		zap_client_close(c->zc);
	if (c->zc_ctx != NULL)
		g->o.native_close(g->o.native_arg, c->zc_ctx);
	zg_txn_clear(&c->txn);
	zg_iters_free(c);
	zeo_arena_free(&c->arena);
	zeo_arena_free(&c->harena);
	zeo_buf_free(&c->scratch);
	zeo_buf_free(&c->out);
	free(c->rbuf);
	free(c->obuf);
	close(c->fd);
	pthread_mutex_destroy(&c->wmu);
	pthread_mutex_destroy(&c->tmu);
	pthread_mutex_destroy(&c->qmu);
	free(c);
}

void zg_conn_unref(struct zg_conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) == 1)
		conn_free(c);
}

bool zg_queue(struct zg_conn *c, const struct zg_job *j)
{
	bool close = j->kind == ZG_JOB_CLOSE;
	pthread_mutex_lock(&c->wmu);
	pthread_mutex_lock(&c->qmu);
	bool ok = c->qlen < (close ? ZG_JOBS : ZG_JOBS - 1);
	if (ok) {
		c->q[(c->qhead + c->qlen) % ZG_JOBS] = *j;
		c->qlen++;
		/* Input waits while the queue is full, and behind register. */
		if (c->qlen >= ZG_JOBS - 1)
			c->paused |= ZG_PAUSE_QUEUE;
		if (j->kind == ZG_JOB_REGISTER)
			c->paused |= ZG_PAUSE_REGISTER;
		if (!c->scheduled) {
			c->scheduled = true;
			zg_conn_ref(c);
			zg_pool_schedule(c);
		}
	}
	pthread_mutex_unlock(&c->qmu);
	zg_conn_arm(c);
	pthread_mutex_unlock(&c->wmu);
	return ok;
}

/* The next call of @p c, or false (the connection leaves the ready state). */
static bool take_job(struct zg_conn *c, struct zg_job *j, bool *was_full)
{
	pthread_mutex_lock(&c->qmu);
	bool ok = c->qlen > 0;
	if (ok) {
		*was_full = c->qlen >= ZG_JOBS - 1;
		*j = c->q[c->qhead];
		c->qhead = (c->qhead + 1) % ZG_JOBS;
		c->qlen--;
	} else {
		c->scheduled = false;
	}
	pthread_mutex_unlock(&c->qmu);
	return ok;
}

static void *worker_main(void *arg);

static bool spawn_worker(struct zap_zeo_gateway *g)
{
	pthread_attr_t at;
	pthread_t t;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, ZG_POOL_STACK_BYTES);
	bool ok = pthread_create(&t, &at, worker_main, g) == 0;
	pthread_attr_destroy(&at);
	return ok;
}

void zg_pool_schedule(struct zg_conn *c)
{
	struct zap_zeo_gateway *g = c->g;
	struct zg_pool *p = &g->pool;
	pthread_mutex_lock(&p->mu);
	c->ready_next = NULL;
	if (p->tail != NULL)
		p->tail->ready_next = c;
	else
		p->head = c;
	p->tail = c;
	p->waiting++;
	bool spawn = p->waiting > p->idle && p->threads < ZG_POOL_MAX && !p->stop;
	if (spawn)
		p->threads++;
	else
		pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (spawn && !spawn_worker(g)) {
		pthread_mutex_lock(&p->mu);
		p->threads--;
		unsigned left = p->threads;
		pthread_mutex_unlock(&p->mu);
		fprintf(stderr, "zapd: node %u: zeo: cannot start a worker thread (%u running)\n",
			g->o.node_id, left);
	}
}

static void *worker_main(void *arg)
{
	struct zap_zeo_gateway *g = arg;
	struct zg_pool *p = &g->pool;
	pthread_setname_np(pthread_self(), "zeo-worker");
	if (zg_thread_reader_open(g) != 0)
		fprintf(stderr, "zapd: node %u: zeo worker: no store reader left\n", g->o.node_id);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		if (p->head == NULL) {
			if (p->stop)
				break;
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += ZG_POOL_IDLE_S;
			p->idle++;
			int rc = pthread_cond_timedwait(&p->cv, &p->mu, &until);
			p->idle--;
			if (rc == ETIMEDOUT && p->head == NULL && p->threads > ZG_POOL_MIN)
				break;
			continue;
		}
		struct zg_conn *c = p->head;
		p->head = c->ready_next;
		if (p->head == NULL)
			p->tail = NULL;
		p->waiting--;
		pthread_mutex_unlock(&p->mu);
		if (zg_rd() == NULL && zg_thread_reader_open(g) != 0) {
			zg_conn_kill(c, "no store reader left");
		}
		struct zg_job j;
		bool was_full = false;
		while (take_job(c, &j, &was_full)) {
			if (zg_rd() == NULL && j.kind != ZG_JOB_CLOSE)
				continue;
			run_job(c, &j);
			if (was_full)
				zg_conn_resume(c, ZG_PAUSE_QUEUE);
			if (j.kind == ZG_JOB_REGISTER)
				zg_conn_resume(c, ZG_PAUSE_REGISTER);
		}
		zg_conn_unref(c);
		pthread_mutex_lock(&p->mu);
	}
	p->threads--;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	zg_thread_reader_close();
	return NULL;
}

void zg_pool_stop(struct zap_zeo_gateway *g)
{
	struct zg_pool *p = &g->pool;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	/* Bounded: a worker in a native call returns within its timeouts. */
	for (int i = 0; i < 600 && p->threads > 0; i++) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->cv, &p->mu, &until);
	}
	pthread_mutex_unlock(&p->mu);
}
