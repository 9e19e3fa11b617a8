/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap transaction state machine.
 *
 * What: applies decoded log entries to the store. PREPARE checks and locks,
 * COMMIT assigns the tid and installs the records, ABORT and LEASE_EXPIRE
 * release, ONESHOT does PREPARE and COMMIT in one entry, OID_RESERVE hands
 * out oid blocks, PACK drops old revisions and, with a reference extractor,
 * unreachable objects from the store. PAYLOAD chunks assemble an entry too
 * large for one consensus value; LARGE checks its length and hash and
 * applies it as if it had come whole. docs/txn.md states every rule and why
 * it is deterministic.
 *
 * Invariants:
 * - tids strictly increase: tid = zap_tid_later(tid of the entry clock,
 *   last tid), and last tid starts at the store's last tid.
 * - An oid is locked by at most one PREPARED transaction; a WAITING
 *   transaction holds no lock. Every lock belongs to a PREPARED transaction.
 * - A transaction (prepared or waiting) is one heap block with its own copy
 *   of every record; nothing points into an entry buffer after apply.
 * - The lock map always has room for every object of every transaction in
 *   the table, reserved when a transaction is created, so nothing allocates
 *   after the first change an entry makes: an allocation failure leaves the
 *   state unchanged.
 * - Decisions never depend on hash-map layout: everything that is walked
 *   (all transactions, the waiter FIFO, the session LRU) is a list in
 *   apply order.
 *
 * Threading: the apply stage owns the state machine and is the store's
 * writer; nothing here takes a lock.
 */
#include "txn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/tid.h"
#include "txn_internal.h"

/* What one apply is working on. */
struct zap_apply {
	struct zap_txn_sm *sm;
	const struct zap_entry *e;
	uint64_t index;
	zap_txn_emit_fn emit;
	void *ctx;
};

enum zap_check {
	ZAP_CHECK_PASS,
	ZAP_CHECK_BLOCKED,
	ZAP_CHECK_CONFLICT,
};

const char *zap_txn_status_name(unsigned status)
{
	static const char *const names[ZAP_TXN_STATUS_COUNT] = {
	    "OK",	  "CONFLICT",	 "READ_CONFLICT", "WAITING",	    "ABORTED",
	    "EXPIRED",	  "UNKNOWN_TXN", "DUPLICATE_TXN", "STALE_REQUEST",  "BUSY",
	    "STORE_FULL", "STORE_ERROR", "NOT_PREPARED",  "OIDS_EXHAUSTED",
	};
	return status < ZAP_TXN_STATUS_COUNT ? names[status] : "?";
}

/* ---------------------------------------------------------------- sessions */

static void zap_lru_unlink(struct zap_txn_sm *sm, struct zap_session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		sm->lru_head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		sm->lru_tail = s->prev;
	s->prev = s->next = NULL;
}

static void zap_lru_push(struct zap_txn_sm *sm, struct zap_session *s)
{
	s->prev = sm->lru_tail;
	s->next = NULL;
	if (sm->lru_tail)
		sm->lru_tail->next = s;
	else
		sm->lru_head = s;
	sm->lru_tail = s;
}

static struct zap_session *zap_session_find(const struct zap_txn_sm *sm, uint64_t client_id)
{
	return client_id ? zap_txn_map_get(&sm->sessions, client_id) : NULL;
}

/* The session of @p client_id, made (evicting the least recently applied) if absent. */
static struct zap_session *zap_session_get(struct zap_txn_sm *sm, uint64_t client_id)
{
	struct zap_session *s = zap_session_find(sm, client_id);

	if (s)
		return s;
	if (sm->free_sessions == NULL) {
		s = sm->lru_head;
		zap_lru_unlink(sm, s);
		zap_txn_map_del(&sm->sessions, s->client_id);
		sm->n_sessions--;
		sm->st.sessions_evicted++;
	} else {
		s = sm->free_sessions;
		sm->free_sessions = s->next;
	}
	memset(s, 0, sizeof(*s));
	s->client_id = client_id;
	zap_txn_map_put(&sm->sessions, client_id, s);
	zap_lru_push(sm, s);
	sm->n_sessions++;
	return s;
}

static void zap_emit(struct zap_apply *a, const struct zap_txn_result *r)
{
	if (a->emit)
		a->emit(r, a->ctx);
}

/* Answer the request of the entry being applied: record it, then emit. */
static void zap_reply(struct zap_apply *a, struct zap_txn_result *r)
{
	if (a->e->client_id != 0) {
		struct zap_session *s = zap_session_get(a->sm, a->e->client_id);
		zap_lru_unlink(a->sm, s);
		zap_lru_push(a->sm, s);
		s->last_seq = a->e->seq;
		s->res = *r;
		s->res.oids = NULL;
		s->res.n_oids = 0;
	}
	zap_emit(a, r);
}

/*
 * Answer a transaction's own request from a later entry (a waiter that
 * resolved, an expiry). The session's cached result is updated only when
 * it is still the pending answer of that request.
 */
static void zap_resolve(struct zap_apply *a, const struct zap_txn *t, struct zap_txn_result *r)
{
	struct zap_session *s = zap_session_find(a->sm, t->client_id);

	if (t->pending && s && s->last_seq == t->seq) {
		s->res = *r;
		s->res.oids = NULL;
		s->res.n_oids = 0;
	}
	zap_emit(a, r);
}

/* A result header for the entry being applied. */
static struct zap_txn_result zap_result_for_entry(const struct zap_apply *a, uint64_t txn_id,
						  enum zap_txn_status status)
{
	struct zap_txn_result r;

	memset(&r, 0, sizeof(r));
	r.index = a->index;
	r.client_id = a->e->client_id;
	r.seq = a->e->seq;
	r.txn_id = txn_id;
	r.entry_type = a->e->type;
	r.status = (uint16_t)status;
	return r;
}

/* A result header for a transaction's own request. */
static struct zap_txn_result zap_result_for_txn(const struct zap_apply *a, const struct zap_txn *t,
						enum zap_txn_status status)
{
	struct zap_txn_result r;

	memset(&r, 0, sizeof(r));
	r.index = a->index;
	r.client_id = t->client_id;
	r.seq = t->seq;
	r.txn_id = t->txn_id;
	r.entry_type = t->type;
	r.status = (uint16_t)status;
	return r;
}

/* ---------------------------------------------------------------- checks and locks */

/* Is any oid locked by a transaction other than @p self? Stores first, then reads. */
static int zap_blocked(const struct zap_txn_sm *sm, const struct zap_txn *self,
		       const struct zap_entry_store *st, uint32_t ns,
		       const struct zap_entry_read *rd, uint32_t nr)
{
	const struct zap_txn *h;

	for (uint32_t i = 0; i < ns; i++)
		if ((h = zap_txn_map_get(&sm->locks, st[i].oid)) && h != self)
			return 1;
	for (uint32_t i = 0; i < nr; i++)
		if ((h = zap_txn_map_get(&sm->locks, rd[i].oid)) && h != self)
			return 1;
	return 0;
}

/*
 * The vote check: locks first (any held by another transaction: BLOCKED),
 * then the stores' base serials in entry order, then the readCurrent serials
 * in entry order. The first mismatch fills @p r.
 */
static enum zap_check zap_check(const struct zap_txn_sm *sm, const struct zap_txn *self,
				const struct zap_entry_store *st, uint32_t ns,
				const struct zap_entry_read *rd, uint32_t nr,
				struct zap_txn_result *r)
{
	if (zap_blocked(sm, self, st, ns, rd, nr))
		return ZAP_CHECK_BLOCKED;
	if (sm->p.break_flags & ZAP_TXN_BREAK_CONFLICT_CHECK)
		return ZAP_CHECK_PASS; /* test only: see ZAP_TXN_BREAK_CONFLICT_CHECK */
	for (uint32_t i = 0; i < ns; i++) {
		uint64_t cur = zap_store_serial(sm->store, st[i].oid);
		if (cur != st[i].base_serial) {
			r->status = ZAP_TXN_CONFLICT;
			r->oid = st[i].oid;
			r->serial = cur;
			r->base_serial = st[i].base_serial;
			return ZAP_CHECK_CONFLICT;
		}
	}
	for (uint32_t i = 0; i < nr; i++) {
		uint64_t cur = zap_store_serial(sm->store, rd[i].oid);
		if (cur != rd[i].serial) {
			r->status = ZAP_TXN_READ_CONFLICT;
			r->oid = rd[i].oid;
			r->serial = cur;
			r->base_serial = rd[i].serial;
			return ZAP_CHECK_CONFLICT;
		}
	}
	return ZAP_CHECK_PASS;
}

static void zap_stat_conflict(struct zap_txn_sm *sm, const struct zap_txn_result *r)
{
	if (r->status == ZAP_TXN_CONFLICT)
		sm->st.conflicts++;
	else
		sm->st.read_conflicts++;
}

/* Lock every oid of @p t (room was reserved when t was made). */
static void zap_lock_all(struct zap_txn_sm *sm, struct zap_txn *t)
{
	for (uint32_t i = 0; i < t->n_stores; i++)
		zap_txn_map_put(&sm->locks, t->stores[i].oid, t);
	for (uint32_t i = 0; i < t->n_reads; i++)
		zap_txn_map_put(&sm->locks, t->reads[i].oid, t);
	t->state = ZAP_TXN_STATE_PREPARED;
}

static void zap_unlock_all(struct zap_txn_sm *sm, struct zap_txn *t)
{
	if (t->state != ZAP_TXN_STATE_PREPARED)
		return;
	for (uint32_t i = 0; i < t->n_stores; i++)
		if (zap_txn_map_get(&sm->locks, t->stores[i].oid) == t)
			zap_txn_map_del(&sm->locks, t->stores[i].oid);
	for (uint32_t i = 0; i < t->n_reads; i++)
		if (zap_txn_map_get(&sm->locks, t->reads[i].oid) == t)
			zap_txn_map_del(&sm->locks, t->reads[i].oid);
}

/* ---------------------------------------------------------------- transactions */

static uint64_t zap_align8(uint64_t n)
{
	return (n + 7) & ~7ull;
}

struct zap_txn *zap_txn_block(uint32_t n_stores, uint32_t n_reads, uint64_t tail_bytes,
			      uint8_t **tail)
{
	uint64_t ns = n_stores, nr = n_reads;
	struct zap_txn *t;
	uint8_t *p;

	t = malloc(zap_align8(sizeof(*t)) + ns * (sizeof(*t->stores) + sizeof(*t->writes) + 8) +
		   nr * sizeof(*t->reads) + tail_bytes);
	if (t == NULL)
		return NULL;
	memset(t, 0, sizeof(*t));
	t->n_stores = n_stores;
	t->n_reads = n_reads;
	p = (uint8_t *)t + zap_align8(sizeof(*t));
	t->stores = (struct zap_entry_store *)p;
	p += ns * sizeof(*t->stores);
	t->writes = (struct zap_store_write *)p;
	p += ns * sizeof(*t->writes);
	t->oids = (uint64_t *)p;
	p += ns * 8;
	t->reads = (struct zap_entry_read *)p;
	p += nr * sizeof(*t->reads);
	*tail = p;
	return t;
}

/*
 * Copy a PREPARE / ONESHOT into a new transaction block (each record as
 * zap_txn_params.keep says, when set) and reserve lock room for it. Changes
 * nothing in @p sm. @return 0; -ENOMEM; -EIO keep failed; -EMSGSIZE a kept
 * record is larger than max_record_bytes (*out is set: the caller answers
 * and frees it).
 */
static int zap_txn_new(struct zap_txn_sm *sm, const struct zap_entry *e, struct zap_txn **out)
{
	const struct zap_entry_txn *et = &e->u.txn;
	uint64_t nr = et->n_reads, bytes;
	struct zap_txn *t;
	uint8_t *p;
	int rc = 0;

	*out = NULL;
	bytes = zap_txn_text_bytes(&et->text);
	for (uint32_t i = 0; i < et->n_stores; i++)
		bytes += et->stores[i].len + (sm->p.keep != NULL ? ZAP_TXN_KEEP_EXTRA : 0);
	if (zap_txn_map_reserve(&sm->locks, sm->txn_objects + et->n_stores + nr) != 0)
		return -ENOMEM;
	t = zap_txn_block(et->n_stores, et->n_reads, bytes, &p);
	if (t == NULL)
		return -ENOMEM;
	t->txn_id = et->txn_id;
	t->client_id = e->client_id;
	t->seq = e->seq;
	t->prepare_clock_ns = e->clock_ns;
	t->node = e->node;
	t->type = e->type;
	if (nr)
		memcpy(t->reads, et->reads, nr * sizeof(*t->reads));
	p = zap_txn_text_copy(&t->meta, &et->text, p);
	for (uint32_t i = 0; i < et->n_stores; i++) {
		const struct zap_entry_store *s = &et->stores[i];
		size_t kept = 0;
		t->stores[i] = *s;
		t->stores[i].data = p;
		if (s->len && !s->deleted && sm->p.keep != NULL) {
			if (sm->p.keep(sm->p.keep_ctx, s->data, s->len, p,
				       s->len + ZAP_TXN_KEEP_EXTRA, &kept) != 0) {
				free(t);
				return -EIO;
			}
			t->stores[i].len = kept ? kept : s->len;
		}
		if (s->len && kept == 0)
			memcpy(p, s->data, s->len);
		if (t->stores[i].len > sm->p.max_record_bytes)
			rc = -EMSGSIZE;
		p += t->stores[i].len;
		t->writes[i].oid = s->oid;
		t->writes[i].data = s->deleted ? NULL : t->stores[i].data;
		t->writes[i].len = t->stores[i].len;
		t->writes[i].deleted = s->deleted;
		t->oids[i] = s->oid;
	}
	*out = t;
	return rc;
}

/* Enter @p t into the table (the caller checked room and uniqueness). */
static void zap_txn_link(struct zap_txn_sm *sm, struct zap_txn *t)
{
	zap_txn_map_put(&sm->txns, t->txn_id, t);
	t->prev = sm->all_tail;
	t->next = NULL;
	if (sm->all_tail)
		sm->all_tail->next = t;
	else
		sm->all_head = t;
	sm->all_tail = t;
	sm->n_txns++;
	sm->txn_objects += (uint64_t)t->n_stores + t->n_reads;
}

static void zap_wait_push(struct zap_txn_sm *sm, struct zap_txn *t)
{
	t->state = ZAP_TXN_STATE_WAITING;
	t->wprev = sm->wait_tail;
	t->wnext = NULL;
	if (sm->wait_tail)
		sm->wait_tail->wnext = t;
	else
		sm->wait_head = t;
	sm->wait_tail = t;
	sm->n_waiting++;
}

static void zap_wait_unlink(struct zap_txn_sm *sm, struct zap_txn *t)
{
	if (t->wprev)
		t->wprev->wnext = t->wnext;
	else
		sm->wait_head = t->wnext;
	if (t->wnext)
		t->wnext->wprev = t->wprev;
	else
		sm->wait_tail = t->wprev;
	t->wprev = t->wnext = NULL;
	sm->n_waiting--;
}

/* Take @p t out of everything (locks, FIFO, lists, map). The caller frees it. */
static void zap_txn_unlink(struct zap_txn_sm *sm, struct zap_txn *t)
{
	if (t->state == ZAP_TXN_STATE_WAITING)
		zap_wait_unlink(sm, t);
	else
		zap_unlock_all(sm, t);
	zap_txn_map_del(&sm->txns, t->txn_id);
	if (t->prev)
		t->prev->next = t->next;
	else
		sm->all_head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		sm->all_tail = t->prev;
	sm->n_txns--;
	sm->txn_objects -= (uint64_t)t->n_stores + t->n_reads;
}

/*
 * Commit a PREPARED transaction: assign the tid (the one a COMMIT asks for
 * when it is later than the last tid and below ZAP_TXN_MAX_ASKED_TID, else
 * from the clock of the entry being applied), install its records in one zap_store_commit(), release its
 * locks, answer, free it. A store failure aborts it instead. Waiters are not
 * re-checked here; the caller does that.
 */
static void zap_txn_finish(struct zap_apply *a, struct zap_txn *t, int current)
{
	struct zap_txn_sm *sm = a->sm;
	uint64_t tid = zap_tid_later(zap_tid_from_unix_ns(a->e->clock_ns), sm->last_tid);
	struct zap_txn_result r;

	if (current && a->e->type == ZAP_ENTRY_COMMIT && a->e->commit_tid > sm->last_tid &&
	    a->e->commit_tid < ZAP_TXN_MAX_ASKED_TID)
		tid = a->e->commit_tid;
	int rc = 0;

	if (t->n_stores)
		rc = zap_store_commit(sm->store, tid, &t->meta, t->writes, t->n_stores);
	r = current ? zap_result_for_entry(a, t->txn_id, ZAP_TXN_OK)
		    : zap_result_for_txn(a, t, ZAP_TXN_OK);
	if (rc == 0) {
		sm->last_tid = tid;
		sm->st.commits++;
		r.tid = tid;
		r.oids = t->oids;
		r.n_oids = t->n_stores;
	} else {
		r.status = rc == -ENOSPC ? ZAP_TXN_STORE_FULL : ZAP_TXN_STORE_ERROR;
		r.store_errno = rc;
		sm->st.store_failures++;
	}
	zap_txn_unlink(sm, t);
	if (current)
		zap_reply(a, &r);
	else
		zap_resolve(a, t, &r);
	free(t);
}

/*
 * After locks were released: walk the waiter FIFO once, in order. A waiter
 * still blocked stays; one that fails its serial check is answered with the
 * conflict and dropped; one that passes takes its locks (a PREPARE answers
 * OK, a ONESHOT commits at once with this entry's clock). One pass is
 * enough: a waiter earlier in the FIFO was blocked by a lock that no later
 * waiter can release in the same pass (a ONESHOT only releases locks it took
 * itself in this pass).
 */
static void zap_recheck_waiters(struct zap_apply *a)
{
	struct zap_txn_sm *sm = a->sm;
	struct zap_txn *t = sm->wait_head, *next;

	for (; t; t = next) {
		struct zap_txn_result r = zap_result_for_txn(a, t, ZAP_TXN_OK);
		enum zap_check c;

		next = t->wnext;
		c = zap_check(sm, t, t->stores, t->n_stores, t->reads, t->n_reads, &r);
		if (c == ZAP_CHECK_BLOCKED)
			continue;
		if (c == ZAP_CHECK_CONFLICT) {
			zap_stat_conflict(sm, &r);
			zap_txn_unlink(sm, t);
			zap_resolve(a, t, &r);
			free(t);
			continue;
		}
		zap_wait_unlink(sm, t);
		zap_lock_all(sm, t);
		if (t->type == ZAP_ENTRY_ONESHOT) {
			zap_txn_finish(a, t, 0);
		} else {
			zap_resolve(a, t, &r);
			t->pending = 0;
		}
	}
}

/* ---------------------------------------------------------------- entry types */

static int zap_exec_prepare(struct zap_apply *a)
{
	struct zap_txn_sm *sm = a->sm;
	const struct zap_entry_txn *et = &a->e->u.txn;
	struct zap_txn_result r = zap_result_for_entry(a, et->txn_id, ZAP_TXN_OK);
	enum zap_check c;
	struct zap_txn *t;

	if (zap_txn_map_get(&sm->txns, et->txn_id)) {
		r.status = ZAP_TXN_DUPLICATE_TXN;
		zap_reply(a, &r);
		return 0;
	}
	if (sm->n_txns >= sm->p.max_prepared) {
		r.status = ZAP_TXN_BUSY;
		sm->st.busy++;
		zap_reply(a, &r);
		return 0;
	}
	c = zap_check(sm, NULL, et->stores, et->n_stores, et->reads, et->n_reads, &r);
	if (c == ZAP_CHECK_CONFLICT) {
		zap_stat_conflict(sm, &r);
		zap_reply(a, &r);
		return 0;
	}
	int rc = zap_txn_new(sm, a->e, &t);
	if (rc == -EMSGSIZE) {
		free(t); /* a record still too large once kept: the vote fails */
		r.status = ZAP_TXN_STORE_ERROR;
		r.store_errno = rc;
		sm->st.store_failures++;
		zap_reply(a, &r);
		return 0;
	}
	if (rc != 0)
		return rc; /* nothing has changed yet */
	zap_txn_link(sm, t);
	if (c == ZAP_CHECK_BLOCKED) {
		t->pending = 1;
		zap_wait_push(sm, t);
		sm->st.waits++;
		r.status = ZAP_TXN_WAITING;
		zap_reply(a, &r);
		return 0;
	}
	zap_lock_all(sm, t);
	if (a->e->type == ZAP_ENTRY_ONESHOT) {
		/* its locks existed only inside this call: no waiter can be blocked on
		   them, so the waiters need no re-check */
		zap_txn_finish(a, t, 1);
	} else {
		zap_reply(a, &r);
	}
	return 0;
}

/* The transaction a COMMIT / ABORT names, if it exists and is the sender's. */
static struct zap_txn *zap_owned_txn(struct zap_apply *a)
{
	struct zap_txn *t = zap_txn_map_get(&a->sm->txns, a->e->u.txn_id);

	if (t == NULL || t->client_id != a->e->client_id)
		return NULL;
	return t;
}

static int zap_exec_commit(struct zap_apply *a)
{
	struct zap_txn *t = zap_owned_txn(a);
	struct zap_txn_result r = zap_result_for_entry(a, a->e->u.txn_id, ZAP_TXN_OK);

	if (t == NULL || t->state != ZAP_TXN_STATE_PREPARED) {
		r.status = t == NULL ? ZAP_TXN_UNKNOWN_TXN : ZAP_TXN_NOT_PREPARED;
		if (t == NULL)
			a->sm->st.unknown_txn++;
		zap_reply(a, &r);
		return 0;
	}
	zap_txn_finish(a, t, 1);
	zap_recheck_waiters(a);
	return 0;
}

static int zap_exec_abort(struct zap_apply *a)
{
	struct zap_txn_sm *sm = a->sm;
	struct zap_txn *t = zap_owned_txn(a);
	struct zap_txn_result r = zap_result_for_entry(a, a->e->u.txn_id, ZAP_TXN_ABORTED);
	int was_prepared;

	if (t == NULL) {
		r.status = ZAP_TXN_UNKNOWN_TXN;
		sm->st.unknown_txn++;
		zap_reply(a, &r);
		return 0;
	}
	was_prepared = t->state == ZAP_TXN_STATE_PREPARED;
	zap_txn_unlink(sm, t);
	sm->st.aborts++;
	if (t->pending) {
		struct zap_txn_result w = zap_result_for_txn(a, t, ZAP_TXN_ABORTED);
		zap_resolve(a, t, &w);
	}
	free(t);
	zap_reply(a, &r);
	if (was_prepared)
		zap_recheck_waiters(a);
	return 0;
}

static int zap_exec_oid_reserve(struct zap_apply *a)
{
	struct zap_txn_sm *sm = a->sm;
	struct zap_txn_result r = zap_result_for_entry(a, 0, ZAP_TXN_OK);
	uint64_t count = a->e->u.oid_count;

	if (sm->next_oid > ZAP_STORE_MAX_OID || ZAP_STORE_MAX_OID - sm->next_oid + 1 < count) {
		r.status = ZAP_TXN_OIDS_EXHAUSTED;
	} else {
		r.first_oid = sm->next_oid;
		r.oid_count = (uint32_t)count;
		sm->next_oid += count;
		sm->st.oids_reserved += count;
	}
	zap_reply(a, &r);
	return 0;
}

/*
 * zap_store_gc.roots for PACK: every transaction in the table (prepared or
 * waiting, creation order) keeps the objects it stores and reads, and those
 * its records reference: a commit in flight never finds them collected.
 */
static int zap_pack_roots(void *ctx, zap_store_oid_fn add, void *arg)
{
	const struct zap_txn_sm *sm = ctx;

	for (const struct zap_txn *t = sm->all_head; t; t = t->next) {
		for (uint32_t i = 0; i < t->n_stores; i++) {
			const struct zap_entry_store *st = &t->stores[i];
			int rc = add(arg, st->oid);
			if (rc == 0 && !st->deleted)
				rc = sm->p.refs(st->data, st->len, add, arg);
			if (rc != 0)
				return rc;
		}
		for (uint32_t i = 0; i < t->n_reads; i++)
			add(arg, t->reads[i].oid);
	}
	return 0;
}

/*
 * PACK: the effective pack tid is the entry's, capped at the store's last
 * tid (never later than the state machine's last tid; a commit without
 * stores advances only the latter, and packing at either keeps the same
 * revisions). Every replica computes it from replicated state alone, and
 * garbage collection reads only the store and the transaction table.
 */
static int zap_exec_pack(struct zap_apply *a)
{
	struct zap_txn_sm *sm = a->sm;
	struct zap_txn_result r = zap_result_for_entry(a, 0, ZAP_TXN_OK);
	uint64_t last = zap_store_last_tid(sm->store);
	uint64_t tid = a->e->u.pack_tid < last ? a->e->u.pack_tid : last;
	struct zap_store_gc gc = {sm->p.refs, zap_pack_roots, sm};
	struct zap_store_gc_result res;
	int rc = zap_store_pack_gc(sm->store, tid, &gc, &res);

	if (rc == -ENOMEM)
		return rc; /* nothing changed; the replica stops */
	if (rc == 0) {
		r.tid = tid;
		sm->st.packs++;
		sm->st.gc_collected += res.collected;
		sm->st.gc_aborted += (uint64_t)res.aborted;
	} else {
		r.status = ZAP_TXN_STORE_ERROR;
		r.store_errno = rc;
		sm->st.store_failures++;
	}
	zap_reply(a, &r);
	return 0;
}

static int zap_lease_over(const struct zap_txn_sm *sm, const struct zap_txn *t, uint64_t clock_ns)
{
	return clock_ns >= t->prepare_clock_ns && clock_ns - t->prepare_clock_ns >= sm->p.lease_ns;
}

/* ---------------------------------------------------------------- payloads */

static int zap_session_filter(struct zap_apply *a);

void zap_payload_free(struct zap_payload *p)
{
	if (p == NULL)
		return;
	free(p->buf);
	free(p);
}

/* Insert @p p at position @p pos of the payload list (its end when shorter). */
static void zap_payload_insert(struct zap_txn_sm *sm, struct zap_payload *p, uint32_t pos)
{
	struct zap_payload **pp = &sm->payloads;

	for (uint32_t i = 0; *pp && i < pos; i++)
		pp = &(*pp)->next;
	p->next = *pp;
	*pp = p;
	sm->n_payloads++;
}

void zap_payload_link(struct zap_txn_sm *sm, struct zap_payload *p)
{
	zap_payload_insert(sm, p, UINT32_MAX);
}

/* Unlink and return payload @p id (at list position *pos), NULL when there is none. */
static struct zap_payload *zap_payload_take(struct zap_txn_sm *sm, uint64_t id, uint32_t *pos)
{
	uint32_t i = 0;
	for (struct zap_payload **pp = &sm->payloads; *pp; pp = &(*pp)->next, i++) {
		struct zap_payload *p = *pp;
		if (p->id != id)
			continue;
		*pp = p->next;
		p->next = NULL;
		sm->n_payloads--;
		*pos = i;
		return p;
	}
	return NULL;
}

static void zap_payload_break(struct zap_payload *p)
{
	p->broken = 1;
	free(p->buf);
	p->buf = NULL;
}

/*
 * PAYLOAD: append a chunk. The first chunk (offset 0) opens the payload;
 * a chunk for a payload that is not open, or when ZAP_TXN_MAX_PAYLOADS are
 * open, is dropped and counted. A chunk must start where the bytes so far
 * end: one already taken (a resend) or one past a gap (a chunk lost on the
 * way to the leader) is ignored, and the proposer, told how many bytes the
 * payload holds, sends again from there. A chunk of another total breaks
 * the payload, so its LARGE is refused. The result (no session: the
 * proposer's client service reads it) carries the payload id as txn_id and
 * the bytes held as tid; status ABORTED when there is no room for it or it
 * is broken.
 */
static int zap_exec_payload(struct zap_apply *a)
{
	struct zap_txn_sm *sm = a->sm;
	const struct zap_entry_payload *c = &a->e->u.payload;
	struct zap_payload *p = sm->payloads;
	struct zap_txn_result r = zap_result_for_entry(a, c->id, ZAP_TXN_OK);

	while (p && p->id != c->id)
		p = p->next;
	if (p == NULL) {
		if (c->offset != 0 || sm->n_payloads >= ZAP_TXN_MAX_PAYLOADS) {
			/* no first chunk yet: held 0 bytes, send again from 0; no room: refused */
			sm->st.payloads_dropped++;
			if (c->offset == 0)
				r.status = ZAP_TXN_ABORTED;
			zap_emit(a, &r);
			return 0;
		}
		p = calloc(1, sizeof(*p));
		if (p == NULL || (p->buf = malloc(c->total)) == NULL) {
			free(p);
			return -ENOMEM;
		}
		p->id = c->id;
		p->clock_ns = a->e->clock_ns;
		p->node = a->e->node;
		p->total = c->total;
		zap_payload_link(sm, p);
	}
	if (!p->broken && c->total != p->total)
		zap_payload_break(p);
	if (!p->broken && c->offset == p->received) {
		memcpy(p->buf + p->received, c->data, c->len);
		p->received += c->len;
		if (a->e->clock_ns > p->clock_ns)
			p->clock_ns = a->e->clock_ns;
		sm->st.payload_chunks++;
	}
	r.tid = p->received;
	if (p->broken)
		r.status = ZAP_TXN_ABORTED;
	zap_emit(a, &r);
	return 0;
}

/*
 * LARGE: take its payload and, when it is whole, has the hash the entry
 * names and decodes as a PREPARE / ONESHOT of the same session, request and
 * node, put that entry in @p e, with the LARGE's clock (the lease of the
 * transaction, and a ONESHOT's tid, start when it is applied, not when
 * its upload began). @return 0: apply @p e; 1: answered here (a
 * session replay, or refused with ABORTED and no session record, so the
 * client may send the transaction again). @p held gets the payload, which
 * the caller frees once @p e has been applied.
 */
static int zap_large_unwrap(struct zap_apply *a, struct zap_entry *e, struct zap_payload **held,
			    uint32_t *pos)
{
	struct zap_txn_sm *sm = a->sm;
	const struct zap_entry outer = *e;
	struct zap_payload *p = zap_payload_take(sm, outer.u.large.id, pos);
	uint8_t h[ZAP_ENTRY_HASH_BYTES];
	int ok;

	*held = p;
	if (zap_session_filter(a))
		return 1;
	ok = p != NULL && !p->broken && p->received == p->total && p->total == outer.u.large.total;
	if (ok) {
		crypto_generichash(h, sizeof(h), p->buf, p->total, NULL, 0);
		ok = sodium_memcmp(h, outer.u.large.hash, sizeof(h)) == 0;
	}
	if (ok)
		ok = zap_entry_decode(sm->dec, p->buf, p->total, e) == 0 &&
		     (e->type == ZAP_ENTRY_PREPARE || e->type == ZAP_ENTRY_ONESHOT) &&
		     e->client_id == outer.client_id && e->seq == outer.seq && e->node == outer.node;
	if (ok)
		e->clock_ns = outer.clock_ns; /* its lease and tid start at the LARGE */
	if (!ok) {
		*e = outer;
		struct zap_txn_result r = zap_result_for_entry(a, 0, ZAP_TXN_ABORTED);
		sm->st.large_refused++;
		zap_emit(a, &r);
		return 1;
	}
	return 0; /* counted in large_applied once the inner entry is applied */
}

/* LEASE_EXPIRE's part for payloads: drop those whose last chunk is older than the lease, or of a node that left. */
static void zap_payload_expire(struct zap_apply *a)
{
	struct zap_txn_sm *sm = a->sm;
	uint16_t node = a->e->u.expire_node;
	uint64_t now = a->e->clock_ns;

	for (struct zap_payload **pp = &sm->payloads; *pp;) {
		struct zap_payload *p = *pp;
		int over = now >= p->clock_ns && now - p->clock_ns >= sm->p.lease_ns;
		if (!over && (node == ZAP_ENTRY_NODE_NONE || p->node != node)) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		sm->n_payloads--;
		sm->st.payloads_dropped++;
		zap_payload_free(p);
	}
}

static int zap_exec_lease_expire(struct zap_apply *a)
{
	struct zap_txn_sm *sm = a->sm;
	uint16_t node = a->e->u.expire_node;
	struct zap_txn *t = sm->all_head, *next;
	int released = 0;

	zap_payload_expire(a);
	for (; t; t = next) {
		next = t->next;
		if (!zap_lease_over(sm, t, a->e->clock_ns) &&
		    (node == ZAP_ENTRY_NODE_NONE || t->node != node))
			continue;
		struct zap_txn_result r = zap_result_for_txn(a, t, ZAP_TXN_EXPIRED);
		released |= t->state == ZAP_TXN_STATE_PREPARED;
		zap_txn_unlink(sm, t);
		sm->st.expiries++;
		zap_resolve(a, t, &r);
		free(t);
	}
	if (released)
		zap_recheck_waiters(a);
	return 0;
}

/* ---------------------------------------------------------------- apply */

/* Session rule: replay the cached result, refuse an old seq. 1: answered. */
static int zap_session_filter(struct zap_apply *a)
{
	struct zap_txn_sm *sm = a->sm;
	struct zap_session *s = zap_session_find(sm, a->e->client_id);
	struct zap_txn_result r;

	if (s == NULL || a->e->seq > s->last_seq)
		return 0;
	if (a->e->seq == s->last_seq) {
		r = s->res;
		r.duplicate = 1;
		sm->st.duplicates++;
		zap_lru_unlink(sm, s);
		zap_lru_push(sm, s);
		zap_emit(a, &r);
		return 1;
	}
	r = zap_result_for_entry(a, 0, ZAP_TXN_STALE_REQUEST);
	if (a->e->type == ZAP_ENTRY_PREPARE || a->e->type == ZAP_ENTRY_ONESHOT)
		r.txn_id = a->e->u.txn.txn_id;
	else if (a->e->type == ZAP_ENTRY_COMMIT || a->e->type == ZAP_ENTRY_ABORT)
		r.txn_id = a->e->u.txn_id;
	sm->st.stale++;
	zap_emit(a, &r);
	return 1;
}

int zap_txn_sm_apply(struct zap_txn_sm *sm, uint64_t index, const void *entry, size_t len,
		     zap_txn_emit_fn emit, void *ctx)
{
	struct zap_entry e;
	struct zap_apply a = {sm, &e, index, emit, ctx};
	struct zap_payload *held = NULL;
	uint32_t held_pos = 0;
	int rc;

	if (index <= sm->applied_index)
		return -EALREADY;
	rc = zap_entry_decode(sm->dec, entry, len, &e);
	if (rc != 0) {
		sm->applied_index = index; /* the slot is consumed: a rejected entry is a NOP */
		sm->st.applied++;
		sm->st.rejected++;
		return rc;
	}
	if (e.type == ZAP_ENTRY_LARGE && zap_large_unwrap(&a, &e, &held, &held_pos)) {
		rc = 0;
	} else if (e.client_id != 0 && zap_session_filter(&a)) {
		rc = 0;
	} else {
		switch (e.type) {
		case ZAP_ENTRY_PREPARE:
		case ZAP_ENTRY_ONESHOT:
			rc = zap_exec_prepare(&a);
			break;
		case ZAP_ENTRY_COMMIT:
			rc = zap_exec_commit(&a);
			break;
		case ZAP_ENTRY_ABORT:
			rc = zap_exec_abort(&a);
			break;
		case ZAP_ENTRY_OID_RESERVE:
			rc = zap_exec_oid_reserve(&a);
			break;
		case ZAP_ENTRY_LEASE_EXPIRE:
			rc = zap_exec_lease_expire(&a);
			break;
		case ZAP_ENTRY_PACK:
			rc = zap_exec_pack(&a);
			break;
		case ZAP_ENTRY_PAYLOAD:
			rc = zap_exec_payload(&a);
			break;
		default: /* NOP */
			rc = 0;
			break;
		}
	}
	if (rc == -ENOMEM || rc == -EIO) {
		/* nothing applied: the payload goes back where it was, so the entry can be
		   applied again */
		if (held != NULL)
			zap_payload_insert(sm, held, held_pos);
		return rc;
	}
	if (held != NULL && e.type != ZAP_ENTRY_LARGE)
		sm->st.large_applied++; /* unwrapped (a refused LARGE keeps its type) */
	zap_payload_free(held);
	sm->applied_index = index;
	sm->st.applied++;
	return 0;
}
