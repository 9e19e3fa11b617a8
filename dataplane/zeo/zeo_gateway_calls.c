/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO gateway, the calls that wait for the cluster, in each connection's
 * arrival order (transactions are built by zeo_gateway_txn.c): register (a
 * read barrier), new_oids (OID_RESERVE), vote (PREPARE), tpc_finish
 * (COMMIT), tpc_abort (ABORT), ping (a read barrier), pack (PACK), and the
 * ABORT of a prepared transaction whose connection is gone.
 *
 * They run on the connection's I/O thread as state machines, never
 * blocking it: a call starts a native request through libzapclient's
 * non-blocking interface (zapclient_async.h) over the node's in-process
 * transport and waits, as a state of the connection, for one of: the reply
 * (the node hands it to deliver() on its client thread, which queues it on
 * the I/O thread's inbox and wakes the thread through its eventfd), a time
 * (a pause before a retry; a lost attempt is resent after
 * ZG_NATIVE_TIMEOUT_MS), or the local store reaching a tid (the notifier
 * wakes the I/O threads that have such waiters). Each wait has a
 * continuation; the job's deadline (ZG_WRITE_DEADLINE_NS) bounds them all.
 * One job runs per connection at a time; the next starts when it ends. Many
 * connections' votes and finishes are in flight at once and go into the
 * pipeline together. A connection's native client (its session: PREPARE and
 * COMMIT must come from the same one) is opened by its first call.
 *
 * Vote: later stores of an oid replace earlier ones; readCurrent checks of
 * oids the transaction also stores are dropped (the store's own serial check
 * covers them). A write conflict on a class zap merges (BTrees buckets, sets,
 * one-bucket trees, Length) is merged natively first (zeo_gateway_resolve.c)
 * and the oid returned in vote's list. Any other write conflict comes back as
 * a conflict dict (ZEO's client-side resolution): the transaction stays
 * open, the client loads both serials, merges with its own classes, stores
 * the merged state over the committed serial and votes again; each vote is a
 * fresh PREPARE with a fresh native txn id. A read conflict is a
 * ReadConflictError. A vote that meets an oid locked by another prepared
 * transaction waits in the state machine's FIFO, so its reply is simply
 * later.
 *
 * tpc_finish never answers with an error after a good vote: it retries until
 * the cluster answers, and if it cannot (no quorum for the whole deadline)
 * the connection is closed, as the stock client expects of a server that died.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/zapclient_async.h"
#include "zeo_gateway_core.h"

/** One attempt of a native call; a lost one is resent with the same request id. */
#define ZG_NATIVE_TIMEOUT_MS 1000u
#define ZG_NEW_OIDS_MAX 100
/** PREPAREs of one vote that met a newer revision and merged natively over it. */
#define ZG_NATIVE_MERGE_ROUNDS 8u
/** The pause before a call is tried again after "no quorum" or "not prepared yet". */
#define ZG_RETRY_PAUSE_MS 20u
/** A best-effort ABORT before a vote is tried again: short, the lease frees what it misses. */
#define ZG_ABORT_TIMEOUT_MS 200u
#define ZG_ABORT_TRIES 2u

enum zg_wait {
	ZG_WAIT_NONE = 0,
	ZG_WAIT_REPLY,	 /**< the native call in flight answers */
	ZG_WAIT_TIME,	 /**< at_ns passes */
	ZG_WAIT_APPLIED, /**< the local store publishes tid */
};

/** An item of an I/O thread's inbox: one answer datagram for a connection. */
struct zg_inbox_item {
	struct zg_inbox_item *next;
	struct zg_conn *c; /**< holds a reference */
	uint32_t len;
	uint8_t data[];
};

/* ------------------------------------------------------------------ replies */

static void reply_locked_text(struct zg_conn *c, const struct zg_job *j, const char *cls,
			      const char *text)
{
	pthread_mutex_lock(&c->wmu);
	zg_reply_error_text(c, j->msgid, j->msgid_len, cls, text);
	pthread_mutex_unlock(&c->wmu);
}

static void reply_none(struct zg_conn *c, const struct zg_job *j)
{
	pthread_mutex_lock(&c->wmu);
	zg_reply_none(c, j->msgid, j->msgid_len);
	pthread_mutex_unlock(&c->wmu);
}

/* ------------------------------------------------------------------ the engine */

static void start_next(struct zg_conn *c);

static bool more_time(const struct zg_conn *c)
{
	return zg_now_ns() < c->call.deadline_ns && !atomic_load(&c->dead);
}

/* The job ends: the next queued one starts. */
static void call_done(struct zg_conn *c)
{
	struct zg_call *k = &c->call;
	free(k->st);
	free(k->rd);
	k->st = NULL;
	k->rd = NULL;
	if (k->wait == ZG_WAIT_APPLIED)
		atomic_fetch_sub(&c->io->applied_waiters, 1);
	k->wait = ZG_WAIT_NONE;
	k->on = false;
	c->io->timer_conns--;
	if (c->qlen > 0 && !atomic_load(&c->dead))
		start_next(c);
}

/* Send @p q and go on with @p next when it is answered (or given up). */
static void wait_reply_tries(struct zg_conn *c, struct zap_cp_request *q, zg_cont next,
			     uint32_t timeout_ms, uint32_t tries)
{
	struct zg_call *k = &c->call;
	int rc = zap_client_start(c->zc, q);
	if (rc != 0) {
		next(c, rc);
		return;
	}
	k->wait = ZG_WAIT_REPLY;
	k->next = next;
	k->sent_ns = zg_now_ns();
	k->timeout_ms = timeout_ms;
	k->tries_left = tries;
	k->at_ns = zg_now_ns() + (uint64_t)timeout_ms * 1000000ull;
}

/* As wait_reply_tries(), resent until the job's deadline. */
static void wait_reply(struct zg_conn *c, struct zap_cp_request *q, zg_cont next)
{
	wait_reply_tries(c, q, next, ZG_NATIVE_TIMEOUT_MS, UINT32_MAX);
}

static void wait_time(struct zg_conn *c, unsigned ms, zg_cont next)
{
	struct zg_call *k = &c->call;
	k->wait = ZG_WAIT_TIME;
	k->next = next;
	k->at_ns = zg_now_ns() + (uint64_t)ms * 1000000ull;
}

static void wait_applied(struct zg_conn *c, uint64_t tid, zg_cont next)
{
	if (zap_store_last_tid(c->g->o.store) >= tid) {
		next(c, 0);
		return;
	}
	struct zg_call *k = &c->call;
	k->wait = ZG_WAIT_APPLIED;
	k->next = next;
	k->wait_tid = tid;
	atomic_fetch_add(&c->io->applied_waiters, 1);
}

/* End the wait and run its continuation with @p rc. */
static void resume(struct zg_conn *c, int rc)
{
	struct zg_call *k = &c->call;
	if (k->wait == ZG_WAIT_APPLIED)
		atomic_fetch_sub(&c->io->applied_waiters, 1);
	k->wait = ZG_WAIT_NONE;
	zg_cont next = k->next;
	k->next = NULL;
	next(c, rc);
}

void zg_calls_tick(struct zg_conn *c, uint64_t now)
{
	struct zg_call *k = &c->call;
	if (!k->on || atomic_load(&c->dead))
		return;
	switch (k->wait) {
	case ZG_WAIT_REPLY:
		if (now < k->at_ns)
			return;
		if (k->tries_left > 1 && now < k->deadline_ns) {
			if (k->tries_left != UINT32_MAX)
				k->tries_left--;
			k->at_ns = now + (uint64_t)k->timeout_ms * 1000000ull;
			if (zap_client_resend(c->zc) != 0)
				resume(c, -ENOMEM);
			return;
		}
		resume(c, -ETIMEDOUT);
		return;
	case ZG_WAIT_TIME:
		if (now >= k->at_ns)
			resume(c, 0);
		return;
	case ZG_WAIT_APPLIED:
		if (zap_store_last_tid(c->g->o.store) >= k->wait_tid)
			resume(c, 0);
		else if (now >= k->deadline_ns || atomic_load(&c->g->stop))
			resume(c, -ETIMEDOUT);
		return;
	default:
		return;
	}
}

/* An answer datagram for @p c (I/O thread, from the inbox). */
static void calls_reply(struct zg_conn *c, const uint8_t *d, size_t len)
{
	struct zg_call *k = &c->call;
	if (!k->on || k->wait != ZG_WAIT_REPLY || atomic_load(&c->dead) || c->zc == NULL)
		return;
	struct zap_cp_response r;
	int rc = zap_client_feed(c->zc, d, len, &r);
	if (rc == 0)
		return;
	if (rc == 1) {
		k->r = (struct zg_reply){.tid = r.tid,
					 .oid = r.oid,
					 .serial = r.serial,
					 .base_serial = r.base_serial,
					 .count = r.count};
		rc = zap_client_status(r.status);
	}
	resume(c, rc);
}

/* The node's client thread: an answer for @p dctx (a connection) into its I/O thread's inbox. */
static void deliver(void *dctx, const void *d, size_t len)
{
	struct zg_conn *c = dctx;
	struct zg_io *io = c->io;
	struct zg_inbox_item *it = malloc(sizeof(*it) + len);
	if (it == NULL)
		return; /* as a lost datagram: resent */
	it->next = NULL;
	it->c = c;
	it->len = (uint32_t)len;
	memcpy(it->data, d, len);
	zg_conn_ref(c);
	pthread_mutex_lock(&io->mu);
	if (io->inbox_tail != NULL)
		io->inbox_tail->next = it;
	else
		io->inbox = it;
	io->inbox_tail = it;
	pthread_mutex_unlock(&io->mu);
	uint64_t one = 1;
	if (write(io->wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is saturated: the thread wakes anyway */
	}
}

void zg_calls_inbox(struct zg_io *io)
{
	pthread_mutex_lock(&io->mu);
	struct zg_inbox_item *it = io->inbox;
	io->inbox = io->inbox_tail = NULL;
	pthread_mutex_unlock(&io->mu);
	while (it != NULL) {
		struct zg_inbox_item *next = it->next;
		calls_reply(it->c, it->data, it->len);
		zg_conn_unref(it->c);
		free(it);
		it = next;
	}
}

/* The connection's native client over the node's transport. */
static bool native_open(struct zg_conn *c)
{
	const struct zap_zeo_gateway_opts *o = &c->g->o;
	/* in-process: no MTU, the largest datagram (a 1 GiB transaction is 16 k of them) */
	struct zap_client_opts zo = {.timeout_ms = ZG_NATIVE_TIMEOUT_MS,
				     .datagram_bytes = ZAP_CP_MAX_DATAGRAM_BYTES};
	struct zap_client_transport t;
	c->zc = NULL;
	if (o->native_open(o->native_arg, deliver, c, &t) != 0)
		return false;
	if (zap_client_open_transport(&t, o->cluster_id, &zo, &c->zc) != 0) {
		c->zc = NULL;
		o->native_close(o->native_arg, t.ctx);
		return false;
	}
	c->zc_ctx = t.ctx;
	return true;
}

static void native_close(struct zg_conn *c)
{
	const struct zap_zeo_gateway_opts *o = &c->g->o;
	if (c->zc != NULL)
		zap_client_close(c->zc);
	if (c->zc_ctx != NULL)
		o->native_close(o->native_arg, c->zc_ctx);
	c->zc = NULL;
	c->zc_ctx = NULL;
}

/* A native request with only a type and a txn id / tid / count. */
static struct zap_cp_request request(uint8_t type, uint64_t txn_id, uint64_t tid, uint32_t count)
{
	struct zap_cp_request q = {.txn_id = txn_id, .tid = tid, .count = count};
	q.hdr.type = type;
	return q;
}

/* ------------------------------------------------------------------ barrier */

/*
 * A read barrier (SYNC, then the local store at its tid), retried after
 * "no quorum" until the deadline; then k->after with 0 or an error.
 */
static void barrier_synced(struct zg_conn *c, int rc);

static void barrier_send(struct zg_conn *c, int rc)
{
	(void)rc;
	struct zap_cp_request q = request(ZAP_CP_SYNC, 0, 0, 0);
	wait_reply(c, &q, barrier_synced);
}

static void barrier_applied(struct zg_conn *c, int rc)
{
	c->call.after(c, rc);
}

static void barrier_synced(struct zg_conn *c, int rc)
{
	if (zg_transient(rc) && more_time(c)) {
		wait_time(c, ZG_RETRY_PAUSE_MS, barrier_send);
		return;
	}
	if (rc != 0) {
		c->call.after(c, rc);
		return;
	}
	wait_applied(c, c->call.r.tid, barrier_applied);
}

static void barrier(struct zg_conn *c, zg_cont after)
{
	c->call.after = after;
	barrier_send(c, 0);
}

/* ------------------------------------------------------------------ register, ping */

static void register_done(struct zg_conn *c, int rc)
{
	const struct zg_job *j = &c->call.j;
	if (rc != 0) {
		/* No quorum reachable: the client tries its other addresses. */
		zg_conn_kill(c, "register: read barrier failed");
	} else {
		pthread_mutex_lock(&c->wmu);
		c->read_only = j->arg != 0;
		c->inval_tid = zap_store_last_tid(c->g->o.store);
		c->registered = true;
		zg_reply_tid(c, j->msgid, j->msgid_len, c->inval_tid);
		pthread_mutex_unlock(&c->wmu);
		zg_conn_resume(c, ZG_PAUSE_REGISTER);
	}
	call_done(c);
}

static void ping_done(struct zg_conn *c, int rc)
{
	const struct zg_job *j = &c->call.j;
	if (rc != 0) {
		zg_conn_kill(c, "ping: cluster unavailable");
	} else {
		pthread_mutex_lock(&c->wmu);
		if (!c->finishing)
			zg_flush_invalidations(c, zap_store_last_tid(c->g->o.store), 0);
		zg_reply_none(c, j->msgid, j->msgid_len);
		pthread_mutex_unlock(&c->wmu);
	}
	call_done(c);
}

/* ------------------------------------------------------------------ new_oids */

static void new_oids_send(struct zg_conn *c, int rc);

static void new_oids_done(struct zg_conn *c, int rc)
{
	const struct zg_job *j = &c->call.j;
	if (zg_transient(rc) && more_time(c)) {
		wait_time(c, ZG_RETRY_PAUSE_MS, new_oids_send);
		return;
	}
	uint32_t got = c->call.r.count;
	if (rc != 0 || got == 0) {
		if (rc == -EOVERFLOW)
			reply_locked_text(c, j, "ZODB.POSException.StorageError", "oids exhausted");
		else
			zg_conn_kill(c, "new_oids: cluster unavailable");
		call_done(c);
		return;
	}
	uint64_t first = c->call.r.oid;
	pthread_mutex_lock(&c->wmu);
	zg_reply_begin(c, j->msgid, j->msgid_len, false);
	zeo_w_list_begin(&c->out, c->enc, got);
	for (uint32_t i = 0; i < got; i++)
		zeo_w_u64be(&c->out, c->enc, first + i);
	zeo_w_list_end(&c->out, c->enc, got);
	zg_reply_end(c);
	pthread_mutex_unlock(&c->wmu);
	call_done(c);
}

static void new_oids_send(struct zg_conn *c, int rc)
{
	(void)rc;
	int64_t n = c->call.j.arg;
	uint32_t want = n <= 0 ? 1 : n > ZG_NEW_OIDS_MAX ? ZG_NEW_OIDS_MAX : (uint32_t)n;
	struct zap_cp_request q = request(ZAP_CP_NEW_OIDS, 0, 0, want);
	wait_reply(c, &q, new_oids_done);
}

static void job_new_oids(struct zg_conn *c)
{
	if (c->read_only) {
		pthread_mutex_lock(&c->wmu);
		zg_reply_read_only(c, c->call.j.msgid, c->call.j.msgid_len);
		pthread_mutex_unlock(&c->wmu);
		call_done(c);
		return;
	}
	new_oids_send(c, 0);
}


/* ------------------------------------------------------------------ vote's parts */

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


/* ------------------------------------------------------------------ vote */

static void vote_send(struct zg_conn *c);

/* The vote's outcome (after every retry and merge). */
static void vote_final(struct zg_conn *c, int rc)
{
	struct zg_call *k = &c->call;
	const struct zg_job *j = &k->j;
	struct zg_txn *t = &c->txn;
	pthread_mutex_lock(&c->tmu);
	if (rc == 0) {
		zg_lat_add(c->g, ZAP_ZEO_LAT_VOTE, zg_now_ns() - k->started_ns);
		t->voted = k->n_st > 0 || k->n_rd > 0;
		t->native_id = t->voted ? k->native : 0;
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
		for (uint32_t i = 0; i < k->n_st; i++)
			if (k->st[i].oid == k->r.oid)
				s = &k->st[i];
		uint64_t serial = k->r.serial;
		pthread_mutex_lock(&c->wmu);
		if (s != NULL) {
			vote_conflict_reply(c, j, t, &s, &serial, 1);
		} else {
			ZG_COUNT(c->g, conflicts);
			zg_reply_conflict(c, j->msgid, j->msgid_len, false, k->r.oid, true,
					  k->r.serial, k->r.base_serial, NULL,
					  "database conflict error");
			zg_txn_clear(t);
		}
		pthread_mutex_unlock(&c->wmu);
	} else if (rc == ZAP_CLIENT_E_READ_CONFLICT) {
		ZG_COUNT(c->g, read_conflicts);
		pthread_mutex_lock(&c->wmu);
		zg_reply_conflict(c, j->msgid, j->msgid_len, true, k->r.oid, true, k->r.serial,
				  k->r.base_serial, NULL, "database read conflict error");
		pthread_mutex_unlock(&c->wmu);
		zg_txn_clear(t);
	} else if (rc == -EBUSY) {
		pthread_mutex_lock(&c->wmu);
		zg_reply_conflict(c, j->msgid, j->msgid_len, false, 0, false, 0, 0, NULL,
				  "zap: too many transactions in flight, retry");
		pthread_mutex_unlock(&c->wmu);
		zg_txn_clear(t);
	} else if (zg_transient(rc)) {
		/* The vote may or may not have been applied: abort it (best effort,
		 * the lease covers a lost one), drop the client. */
		struct zap_cp_request q = request(ZAP_CP_ABORT, k->native, 0, 0);
		zap_client_start(c->zc, &q);
		zg_txn_clear(t);
		zg_conn_kill(c, "vote: cluster unavailable");
	} else {
		char text[160];
		snprintf(text, sizeof(text), "zap: vote failed: %s", zap_client_strerror(rc));
		zg_txn_clear(t);
		reply_locked_text(c, j, "ZODB.POSException.StorageError", text);
	}
	pthread_mutex_unlock(&c->tmu);
	call_done(c);
}

static void vote_retry(struct zg_conn *c, int rc)
{
	(void)rc;
	c->call.native = next_native(c);
	vote_send(c);
}

static void vote_aborted(struct zg_conn *c, int rc)
{
	(void)rc;
	wait_time(c, ZG_RETRY_PAUSE_MS, vote_retry);
}

/* The store now holds the commit the PREPARE met: merge over it and PREPARE again. */
static void vote_merge(struct zg_conn *c, int rc)
{
	struct zg_call *k = &c->call;
	pthread_mutex_lock(&c->tmu);
	bool again = rc == 0 && zg_resolve_native(c, &c->txn) > 0;
	if (again)
		vote_arrays(&c->txn, k->st, &k->n_st, k->rd, &k->n_rd);
	pthread_mutex_unlock(&c->tmu);
	if (!again) {
		vote_final(c, ZAP_CLIENT_E_CONFLICT);
		return;
	}
	k->merge_round++;
	k->native = next_native(c);
	vote_send(c);
}

static void vote_prepared(struct zg_conn *c, int rc)
{
	struct zg_call *k = &c->call;
	if (rc == 0 || rc == ZAP_CLIENT_E_CONFLICT || rc == ZAP_CLIENT_E_READ_CONFLICT)
		zg_lat_add(c->g, ZAP_ZEO_LAT_PREPARE, zg_now_ns() - k->sent_ns);
	/* A PREPARE whose fate is unknown (no answer, no quorum) is aborted and
	 * tried again under a fresh native id, so an attempt that did get
	 * through never holds locks the next one would wait for. */
	if (zg_transient(rc) && more_time(c)) {
		struct zap_cp_request q = request(ZAP_CP_ABORT, k->native, 0, 0);
		wait_reply_tries(c, &q, vote_aborted, ZG_ABORT_TIMEOUT_MS, ZG_ABORT_TRIES);
		return;
	}
	/* A commit this node had not applied before the PREPARE (or one the
	 * PREPARE waited for) changed a stored object: merge again over it
	 * and PREPARE again; a failed PREPARE holds no locks. */
	if (rc == ZAP_CLIENT_E_CONFLICT && k->merge_round + 1 < ZG_NATIVE_MERGE_ROUNDS) {
		wait_applied(c, k->r.serial, vote_merge);
		return;
	}
	vote_final(c, rc);
}

static void vote_send(struct zg_conn *c)
{
	struct zg_call *k = &c->call;
	struct zg_txn *t = &c->txn;
	struct zap_cp_request q = request(ZAP_CP_PREPARE, k->native, 0, 0);
	q.text = (struct zap_txn_text){
	    .user = t->data + t->user_off,
	    .user_len = t->user_len,
	    .description = t->data + t->desc_off,
	    .description_len = t->desc_len,
	    .extension = t->data + t->ext_off,
	    .extension_len = t->ext_len,
	};
	q.stores = k->st;
	q.n_stores = k->n_st;
	q.reads = k->rd;
	q.n_reads = k->n_rd;
	/* A large transaction takes longer to replicate: each attempt waits
	 * ZG_LARGE_NS_PER_MIB more per MiB before it is resent (whole), and
	 * the deadline moves as far. */
	uint64_t mib = t->data_len >> 20;
	uint64_t extra_ns = mib * ZG_LARGE_NS_PER_MIB;
	k->deadline_ns = k->started_ns + ZG_WRITE_DEADLINE_NS + 4 * extra_ns;
	wait_reply_tries(c, &q, vote_prepared,
			 ZG_NATIVE_TIMEOUT_MS + (uint32_t)(extra_ns / 1000000ull), UINT32_MAX);
}

static void job_vote(struct zg_conn *c)
{
	struct zg_call *k = &c->call;
	const struct zg_job *j = &k->j;
	pthread_mutex_lock(&c->tmu);
	struct zg_txn *t = &c->txn;
	if (!t->open || !zg_txn_key_eq(&t->key, j->txn, j->txn_big)) {
		pthread_mutex_unlock(&c->tmu);
		reply_locked_text(c, j, "ZODB.POSException.StorageTransactionError",
				  "vote: the transaction is not open (tpc_begin missing)");
		call_done(c);
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
		call_done(c);
		return;
	}
	if (t->too_large) {
		char text[200];
		snprintf(text, sizeof(text),
			 "zap: vote failed: too large: the transaction's records and blobs exceed "
			 "txn.max_bytes (%llu bytes)",
			 (unsigned long long)(t->max_bytes ? t->max_bytes : ZG_DEFAULT_MAX_TXN_BYTES));
		zg_txn_clear(t);
		pthread_mutex_unlock(&c->tmu);
		reply_locked_text(c, j, "ZODB.POSException.StorageError", text);
		call_done(c);
		return;
	}
	zg_restore_bases(c);
	if (!zg_undo_prepare(c, j) || !deletes_checked(c, j)) {
		pthread_mutex_unlock(&c->tmu);
		call_done(c);
		return;
	}
	k->st = calloc(t->n_items + 1, sizeof(*k->st));
	k->rd = calloc(t->n_reads + 1, sizeof(*k->rd));
	if (k->st == NULL || k->rd == NULL) {
		zg_txn_clear(t);
		pthread_mutex_unlock(&c->tmu);
		reply_locked_text(c, j, "ZODB.POSException.StorageError", "out of memory");
		call_done(c);
		return;
	}
	vote_arrays(t, k->st, &k->n_st, k->rd, &k->n_rd);
	if (zg_resolve_native(c, t) > 0)
		vote_arrays(t, k->st, &k->n_st, k->rd, &k->n_rd); /* merged records moved */
	if (vote_local_conflicts(c, j, t, k->st, k->n_st)) {
		pthread_mutex_unlock(&c->tmu);
		call_done(c);
		return;
	}
	pthread_mutex_unlock(&c->tmu);
	k->native = next_native(c);
	k->merge_round = 0;
	if (k->n_st == 0 && k->n_rd == 0) {
		vote_final(c, 0); /* nothing to prepare */
		return;
	}
	vote_send(c);
}

/* ------------------------------------------------------------------ tpc_finish */

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

static void finish_empty(struct zg_conn *c, int rc)
{
	const struct zg_job *j = &c->call.j;
	if (rc != 0) {
		zg_conn_kill(c, "tpc_finish: cluster unavailable");
	} else {
		pthread_mutex_lock(&c->wmu);
		uint64_t last = zap_store_last_tid(c->g->o.store);
		zg_flush_invalidations(c, last, 0);
		c->finishing = false;
		zg_reply_begin(c, j->msgid, j->msgid_len, false);
		zeo_w_u64be(&c->out, c->enc, c->inval_tid);
		zg_reply_end(c);
		pthread_mutex_unlock(&c->wmu);
	}
	call_done(c);
}

static void finish_applied(struct zg_conn *c, int rc)
{
	if (rc != 0) {
		zg_conn_kill(c, "tpc_finish: the commit was not applied here in time");
	} else {
		uint64_t now = zg_now_ns();
		zg_lat_add(c->g, ZAP_ZEO_LAT_APPLIED, now - c->call.sent_ns);
		zg_lat_add(c->g, ZAP_ZEO_LAT_FINISH, now - c->call.started_ns);
		ZG_COUNT(c->g, commits);
		finish_reply(c, &c->call.j, c->call.tid);
	}
	call_done(c);
}

static void finish_send(struct zg_conn *c, int rc);

static void finish_committed(struct zg_conn *c, int rc)
{
	struct zg_call *k = &c->call;
	if ((zg_transient(rc) || rc == -EINPROGRESS) && more_time(c)) {
		wait_time(c, ZG_RETRY_PAUSE_MS, finish_send);
		return;
	}
	/* A transaction of readCurrent checks only gets a tid but writes nothing. */
	pthread_mutex_lock(&c->tmu);
	bool wrote = c->txn.n_items > 0;
	zg_txn_clear(&c->txn);
	pthread_mutex_unlock(&c->tmu);
	if (rc != 0) {
		char why[128];
		snprintf(why, sizeof(why), "tpc_finish: %s", zap_client_strerror(rc));
		zg_conn_kill(c, why);
		call_done(c);
		return;
	}
	k->tid = k->r.tid;
	uint64_t now = zg_now_ns();
	zg_lat_add(c->g, ZAP_ZEO_LAT_COMMIT, now - k->sent_ns);
	k->sent_ns = now; /* from here: the wait for the local store */
	if (wrote)
		wait_applied(c, k->tid, finish_applied);
	else
		finish_applied(c, 0);
}

static void finish_send(struct zg_conn *c, int rc)
{
	(void)rc;
	struct zap_cp_request q =
	    request(ZAP_CP_COMMIT, c->txn.native_id, c->txn.want_tid, 0);
	wait_reply(c, &q, finish_committed);
}

static void job_finish(struct zg_conn *c)
{
	const struct zg_job *j = &c->call.j;
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
		call_done(c);
		return;
	}
	if (!t->voted) {
		/* An empty transaction: nothing to commit; answer with the current tid. */
		zg_txn_clear(t);
		pthread_mutex_unlock(&c->tmu);
		barrier(c, finish_empty);
		return;
	}
	pthread_mutex_unlock(&c->tmu);
	finish_send(c, 0);
}

/* ------------------------------------------------------------------ tpc_abort, pack */

static void abort_done(struct zg_conn *c, int rc)
{
	(void)rc; /* the lease frees what a lost ABORT leaves */
	pthread_mutex_lock(&c->tmu);
	zg_txn_clear(&c->txn);
	pthread_mutex_unlock(&c->tmu);
	ZG_COUNT(c->g, aborts);
	reply_none(c, &c->call.j);
	call_done(c);
}

static void job_abort(struct zg_conn *c)
{
	const struct zg_job *j = &c->call.j;
	pthread_mutex_lock(&c->tmu);
	struct zg_txn *t = &c->txn;
	bool mine = t->open && zg_txn_key_eq(&t->key, j->txn, j->txn_big);
	uint64_t native = mine && t->voted ? t->native_id : 0;
	pthread_mutex_unlock(&c->tmu);
	if (!mine) {
		reply_none(c, j);
		call_done(c);
		return;
	}
	if (native == 0) {
		abort_done(c, 0);
		return;
	}
	struct zap_cp_request q = request(ZAP_CP_ABORT, native, 0, 0);
	wait_reply(c, &q, abort_done);
}

/*
 * pack: the tid is clamped to the last one announced to this client, then
 * packed through the native service; None once the pack was applied here.
 * Read-only connections may pack. A tid of 0 (a time before 1970, or an
 * empty database) packs nothing.
 */
static void pack_send(struct zg_conn *c, int rc);

static void pack_done(struct zg_conn *c, int rc)
{
	const struct zg_job *j = &c->call.j;
	if (zg_transient(rc) && more_time(c)) {
		wait_time(c, ZG_RETRY_PAUSE_MS, pack_send);
		return;
	}
	if (zg_transient(rc)) {
		zg_conn_kill(c, "pack: cluster unavailable");
	} else if (rc != 0) {
		char text[160];
		snprintf(text, sizeof(text), "zap: pack failed: %s", zap_client_strerror(rc));
		reply_locked_text(c, j, "ZODB.POSException.StorageError", text);
	} else {
		reply_none(c, j);
	}
	call_done(c);
}

static void pack_send(struct zg_conn *c, int rc)
{
	(void)rc;
	struct zap_cp_request q = request(ZAP_CP_PACK, 0, c->call.tid, 0);
	wait_reply(c, &q, pack_done);
}

static void job_pack(struct zg_conn *c)
{
	const struct zg_job *j = &c->call.j;
	pthread_mutex_lock(&c->wmu);
	uint64_t tid = j->txn < c->inval_tid ? j->txn : c->inval_tid;
	pthread_mutex_unlock(&c->wmu);
	if (tid == 0) {
		reply_none(c, j);
		call_done(c);
		return;
	}
	c->call.tid = tid;
	pack_send(c, 0);
}

/* ------------------------------------------------------------------ the queue */

static void start_next(struct zg_conn *c)
{
	struct zg_call *k = &c->call;
	if (c->qlen == 0)
		return;
	bool was_full = c->qlen >= ZG_JOBS - 1;
	*k = (struct zg_call){.on = true, .j = c->q[c->qhead]};
	c->qhead = (c->qhead + 1) % ZG_JOBS;
	c->qlen--;
	k->started_ns = zg_now_ns();
	k->deadline_ns = k->started_ns + ZG_WRITE_DEADLINE_NS;
	c->io->timer_conns++;
	if (was_full)
		zg_conn_resume(c, ZG_PAUSE_QUEUE);
	if (atomic_load(&c->dead)) {
		call_done(c);
		return;
	}
	if (c->zc == NULL && !native_open(c)) {
		zg_conn_kill(c, "no native client left");
		call_done(c);
		return;
	}
	switch (k->j.kind) {
	case ZG_JOB_REGISTER:
		barrier(c, register_done);
		break;
	case ZG_JOB_NEW_OIDS:
		job_new_oids(c);
		break;
	case ZG_JOB_VOTE:
		job_vote(c);
		break;
	case ZG_JOB_FINISH:
		job_finish(c);
		break;
	case ZG_JOB_ABORT:
		job_abort(c);
		break;
	case ZG_JOB_PING:
		barrier(c, ping_done);
		break;
	case ZG_JOB_PACK:
		job_pack(c);
		break;
	default:
		call_done(c);
		break;
	}
}

bool zg_queue(struct zg_conn *c, const struct zg_job *j)
{
	if (c->qlen >= ZG_JOBS - 1)
		return false; /* the input pauses before this can happen */
	c->q[(c->qhead + c->qlen) % ZG_JOBS] = *j;
	c->qlen++;
	pthread_mutex_lock(&c->wmu);
	/* Input waits while the queue is full, and behind register. */
	if (c->qlen >= ZG_JOBS - 1)
		c->paused |= ZG_PAUSE_QUEUE;
	if (j->kind == ZG_JOB_REGISTER)
		c->paused |= ZG_PAUSE_REGISTER;
	zg_conn_arm(c);
	pthread_mutex_unlock(&c->wmu);
	if (!c->call.on)
		start_next(c);
	return true;
}

void zg_calls_close(struct zg_conn *c)
{
	struct zg_call *k = &c->call;
	/* A prepared transaction (or a PREPARE in flight) must not keep its
	 * locks: one ABORT, not waited for (the lease frees what it misses). */
	uint64_t native = c->txn.open && c->txn.voted ? c->txn.native_id : 0;
	if (native == 0 && k->on && k->j.kind == ZG_JOB_VOTE && k->native != 0)
		native = k->native;
	if (native != 0 && c->zc != NULL) {
		struct zap_cp_request q = request(ZAP_CP_ABORT, native, 0, 0);
		zap_client_start(c->zc, &q);
	}
	if (k->on) {
		k->next = NULL;
		c->qlen = 0;
		call_done(c);
	}
	native_close(c); /* no delivery runs once this returns */
	pthread_mutex_lock(&c->tmu);
	zg_txn_clear(&c->txn);
	pthread_mutex_unlock(&c->tmu);
}

/* ------------------------------------------------------------------ references */

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
	native_close(c);
	zg_txn_clear(&c->txn);
	zg_iters_free(c);
	zg_blob_q_free(c);
	zeo_arena_free(&c->arena);
	zeo_arena_free(&c->harena);
	zeo_buf_free(&c->scratch);
	zeo_buf_free(&c->out);
	free(c->rbuf);
	free(c->obuf);
	close(c->fd);
	pthread_mutex_destroy(&c->wmu);
	pthread_mutex_destroy(&c->tmu);
	free(c);
}

void zg_conn_unref(struct zg_conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) == 1)
		conn_free(c);
}

