/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap transaction state machine: snapshots of its replicated state (not the
 * store, which has its own snapshot, store_snapshot.c). A node that lags
 * behind a compacted log loads the store snapshot and this one, both taken
 * at the same applied index, and applies the log from the next index.
 *
 * Stream (every integer little-endian, whatever the host):
 *
 *   header   magic u64, version u32, zero u32, applied_index u64,
 *            last_tid u64, next_oid u64, n_sessions u32, n_txns u32,
 *            n_waiting u32, n_locks u32
 *   sessions n_sessions times, least recently applied first:
 *            client_id, last_seq, then the cached result: index, client_id,
 *            seq, txn_id (u64), entry_type | duplicate << 8 | status << 16
 *            (u32), store_errno (u32), tid, oid, serial, base_serial,
 *            first_oid (u64), oid_count (u32)
 *   txns     n_txns times, creation order:
 *            txn_id, client_id, seq, prepare_clock_ns (u64),
 *            node | type << 16 | state << 24 (u32), pending u32,
 *            n_stores, n_reads, user_len, description_len, extension_len
 *            (u32), user, description, extension,
 *            stores: oid, base_serial (u64), flags u32 (bit 0 deleted,
 *            bit 1 the lock on this oid is this txn's), len u64, bytes[len];
 *            reads: oid, serial (u64), flags u32 (bit 1 locked by this txn)
 *   waiters  n_waiting txn ids, FIFO order
 *   payloads only when PAYLOAD chunks are being received: n_payloads u32,
 *            then per payload, arrival order: id, clock_ns, total,
 *            received (u64), node | broken << 16 (u32), bytes[received]
 *            (none when broken); a stream without the section has none
 *   trailer  checksum u64 over every byte before it
 *
 * This is everything zap_txn_sm_digest() covers. The loader checks the
 * whole stream (checksum, bounds, unique ids, one holder per lock, only
 * PREPARED transactions hold locks, the FIFO is exactly the WAITING
 * transactions) and allocates everything before it links anything, so an
 * error leaves the state machine fresh.
 *
 * Threading: the apply stage owns the state machine.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/snapstream.h"
#include "txn_internal.h"

#define TSN_MAGIC 0x314e535358544150ull /* "PATXSSN1" little-endian */
#define TSN_VERSION 1u
#define TSN_HDR_BYTES (8u + 2u * 4u + 3u * 8u + 4u * 4u)
#define TSN_SESSION_BYTES (2u * 8u + 4u * 8u + 2u * 4u + 5u * 8u + 4u)
#define TSN_TXN_FIXED_BYTES (4u * 8u + 7u * 4u)
#define TSN_STORE_FIXED_BYTES (2u * 8u + 4u + 8u)
#define TSN_READ_BYTES (2u * 8u + 4u)
#define TSN_DELETED 1u
#define TSN_LOCKED 2u

/* ---------------------------------------------------------------- write */

static void tsn_write_session(struct zap_snap_out *o, const struct zap_session *s)
{
	const struct zap_txn_result *r = &s->res;

	zap_snap_put_le64(o, s->client_id);
	zap_snap_put_le64(o, s->last_seq);
	zap_snap_put_le64(o, r->index);
	zap_snap_put_le64(o, r->client_id);
	zap_snap_put_le64(o, r->seq);
	zap_snap_put_le64(o, r->txn_id);
	zap_snap_put_le32(o, (uint32_t)r->entry_type | (uint32_t)r->duplicate << 8 |
				 (uint32_t)r->status << 16);
	zap_snap_put_le32(o, (uint32_t)r->store_errno);
	zap_snap_put_le64(o, r->tid);
	zap_snap_put_le64(o, r->oid);
	zap_snap_put_le64(o, r->serial);
	zap_snap_put_le64(o, r->base_serial);
	zap_snap_put_le64(o, r->first_oid);
	zap_snap_put_le32(o, r->oid_count);
}

static uint32_t tsn_lock_flag(const struct zap_txn_sm *sm, const struct zap_txn *t, uint64_t oid)
{
	return zap_txn_map_get(&sm->locks, oid) == t ? TSN_LOCKED : 0;
}

static void tsn_write_txn(struct zap_snap_out *o, const struct zap_txn_sm *sm, const struct zap_txn *t)
{
	zap_snap_put_le64(o, t->txn_id);
	zap_snap_put_le64(o, t->client_id);
	zap_snap_put_le64(o, t->seq);
	zap_snap_put_le64(o, t->prepare_clock_ns);
	zap_snap_put_le32(o,
			  (uint32_t)t->node | (uint32_t)t->type << 16 | (uint32_t)t->state << 24);
	zap_snap_put_le32(o, t->pending);
	zap_snap_put_le32(o, t->n_stores);
	zap_snap_put_le32(o, t->n_reads);
	zap_snap_put_le32(o, t->meta.user_len);
	zap_snap_put_le32(o, t->meta.description_len);
	zap_snap_put_le32(o, t->meta.extension_len);
	zap_snap_put(o, t->meta.user, t->meta.user_len);
	zap_snap_put(o, t->meta.description, t->meta.description_len);
	zap_snap_put(o, t->meta.extension, t->meta.extension_len);
	for (uint32_t i = 0; i < t->n_stores; i++) {
		const struct zap_entry_store *s = &t->stores[i];
		zap_snap_put_le64(o, s->oid);
		zap_snap_put_le64(o, s->base_serial);
		zap_snap_put_le32(o, (s->deleted ? TSN_DELETED : 0) | tsn_lock_flag(sm, t, s->oid));
		zap_snap_put_le64(o, s->len);
		zap_snap_put(o, s->data, s->len);
	}
	for (uint32_t i = 0; i < t->n_reads; i++) {
		zap_snap_put_le64(o, t->reads[i].oid);
		zap_snap_put_le64(o, t->reads[i].serial);
		zap_snap_put_le32(o, tsn_lock_flag(sm, t, t->reads[i].oid));
	}
}

int zap_txn_sm_snapshot_write(const struct zap_txn_sm *sm, zap_store_sink_fn fn, void *ctx)
{
	struct zap_snap_out *o = malloc(sizeof(*o));
	int rc;

	if (o == NULL)
		return -ENOMEM;
	zap_snap_out_init(o, fn, ctx);
	zap_snap_put_le64(o, TSN_MAGIC);
	zap_snap_put_le32(o, TSN_VERSION);
	zap_snap_put_le32(o, 0);
	zap_snap_put_le64(o, sm->applied_index);
	zap_snap_put_le64(o, sm->last_tid);
	zap_snap_put_le64(o, sm->next_oid);
	zap_snap_put_le32(o, sm->n_sessions);
	zap_snap_put_le32(o, sm->n_txns);
	zap_snap_put_le32(o, sm->n_waiting);
	zap_snap_put_le32(o, (uint32_t)sm->locks.count);
	for (const struct zap_session *s = sm->lru_head; s; s = s->next)
		tsn_write_session(o, s);
	for (const struct zap_txn *t = sm->all_head; t; t = t->next)
		tsn_write_txn(o, sm, t);
	for (const struct zap_txn *t = sm->wait_head; t; t = t->wnext)
		zap_snap_put_le64(o, t->txn_id);
	if (sm->n_payloads > 0) {
		zap_snap_put_le32(o, sm->n_payloads);
		for (const struct zap_payload *p = sm->payloads; p; p = p->next) {
			zap_snap_put_le64(o, p->id);
			zap_snap_put_le64(o, p->clock_ns);
			zap_snap_put_le64(o, p->total);
			zap_snap_put_le64(o, p->received);
			zap_snap_put_le32(o, (uint32_t)p->node | (uint32_t)p->broken << 16);
			if (!p->broken)
				zap_snap_put(o, p->buf, p->received);
		}
	}
	zap_snap_put_le64(o, zap_snap_ck_final(&o->ck));
	zap_snap_flush(o);
	rc = o->rc;
	free(o);
	return rc;
}

/* ---------------------------------------------------------------- input */

/* A parsed transaction; its records are read again from `stores` when built. */
struct tsn_txn {
	uint64_t txn_id, client_id, seq, clock_ns;
	uint16_t node;
	uint8_t type, state, pending;
	uint32_t n_stores, n_reads, user_len, description_len, extension_len;
	const uint8_t *text;   /* user, description, extension */
	const uint8_t *stores; /* stores then reads, as in the stream */
	uint64_t data_bytes;   /* record bytes of the stores */
	struct zap_txn *t;     /* its block, once allocated */
};

/* One lock as the stream states it: oid, holder (index into the txns). */
struct tsn_lock {
	uint64_t oid;
	uint64_t holder;
};

struct tsn_load {
	struct zap_txn_sm *sm;
	uint64_t applied_index, last_tid, next_oid;
	uint32_t n_sessions, n_txns, n_waiting, n_locks;
	const uint8_t *sessions;
	struct tsn_txn *txns;
	struct tsn_lock *locks;
	uint64_t n_lock_bits, objects;
	uint64_t *waiters; /* txn indexes, FIFO order */
	uint64_t *ids;	   /* scratch for uniqueness checks */
};

static int tsn_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int tsn_cmp_lock(const void *a, const void *b)
{
	const struct tsn_lock *x = a, *y = b;

	if (x->oid != y->oid)
		return x->oid < y->oid ? -1 : 1;
	return x->holder < y->holder ? -1 : x->holder > y->holder;
}

/* 1 when the n sorted values hold a repeat. */
static int tsn_has_repeat(uint64_t *v, uint64_t n)
{
	qsort(v, n, sizeof(*v), tsn_cmp_u64);
	for (uint64_t i = 1; i < n; i++)
		if (v[i] == v[i - 1])
			return 1;
	return 0;
}

static int tsn_parse_sessions(struct tsn_load *l, struct zap_rcur *in)
{
	l->sessions = in->p + in->off;
	for (uint32_t i = 0; i < l->n_sessions; i++) {
		const uint8_t *p = zap_r_take(in, TSN_SESSION_BYTES);
		if (p == NULL || zap_get_le64(p) == 0)
			return -EBADMSG;
		l->ids[i] = zap_get_le64(p);
	}
	return tsn_has_repeat(l->ids, l->n_sessions) ? -EBADMSG : 0;
}

/* The records of transaction @p x (index @p k): bounds, flags, lock bits. */
static int tsn_parse_records(struct tsn_load *l, struct zap_rcur *in, struct tsn_txn *x, uint64_t k)
{
	uint64_t n = (uint64_t)x->n_stores + x->n_reads;

	x->stores = in->p + in->off;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t oid = zap_r_le64(in);
		zap_r_le64(in); /* base serial / serial */
		uint32_t flags = zap_r_le32(in);
		if (i < x->n_stores) {
			uint64_t len = zap_r_le64(in);
			if (zap_r_take(in, len) == NULL || (flags & ~(TSN_DELETED | TSN_LOCKED)) ||
			    ((flags & TSN_DELETED) && len != 0))
				return -EBADMSG;
			x->data_bytes += len;
		} else if (flags & ~TSN_LOCKED) {
			return -EBADMSG;
		}
		if (in->bad)
			return -EBADMSG;
		if (flags & TSN_LOCKED) {
			if (x->state != ZAP_TXN_STATE_PREPARED || l->n_lock_bits >= l->objects)
				return -EBADMSG;
			l->locks[l->n_lock_bits].oid = oid;
			l->locks[l->n_lock_bits++].holder = k;
		}
	}
	return 0;
}

static int tsn_parse_txns(struct tsn_load *l, struct zap_rcur *in)
{
	for (uint32_t k = 0; k < l->n_txns; k++) {
		struct tsn_txn *x = &l->txns[k];
		uint32_t w;
		x->txn_id = zap_r_le64(in);
		x->client_id = zap_r_le64(in);
		x->seq = zap_r_le64(in);
		x->clock_ns = zap_r_le64(in);
		w = zap_r_le32(in);
		x->node = (uint16_t)w;
		x->type = (uint8_t)(w >> 16);
		x->state = (uint8_t)(w >> 24);
		w = zap_r_le32(in);
		x->pending = (uint8_t)w;
		x->n_stores = zap_r_le32(in);
		x->n_reads = zap_r_le32(in);
		x->user_len = zap_r_le32(in);
		x->description_len = zap_r_le32(in);
		x->extension_len = zap_r_le32(in);
		x->text =
		    zap_r_take(in, (uint64_t)x->user_len + x->description_len + x->extension_len);
		if (in->bad || w > 1 ||
		    (x->type != ZAP_ENTRY_PREPARE && x->type != ZAP_ENTRY_ONESHOT) ||
		    (x->state != ZAP_TXN_STATE_PREPARED && x->state != ZAP_TXN_STATE_WAITING) ||
		    (uint64_t)x->n_stores + x->n_reads > zap_r_left(in) / TSN_READ_BYTES)
			return -EBADMSG;
		l->objects += (uint64_t)x->n_stores + x->n_reads;
		struct tsn_lock *grown = realloc(l->locks, sizeof(*l->locks) * (l->objects + 1));
		if (grown == NULL)
			return -ENOMEM;
		l->locks = grown;
		if (tsn_parse_records(l, in, x, k) != 0)
			return -EBADMSG;
		l->ids[k] = x->txn_id;
	}
	if (tsn_has_repeat(l->ids, l->n_txns))
		return -EBADMSG;
	/* one holder per oid (a txn may name an oid twice: store and read) */
	qsort(l->locks, l->n_lock_bits, sizeof(*l->locks), tsn_cmp_lock);
	uint64_t distinct = 0;
	for (uint64_t i = 0; i < l->n_lock_bits; i++) {
		if (i > 0 && l->locks[i].oid == l->locks[i - 1].oid) {
			if (l->locks[i].holder != l->locks[i - 1].holder)
				return -EBADMSG;
			continue;
		}
		distinct++;
	}
	return distinct == l->n_locks ? 0 : -EBADMSG;
}

/* The FIFO: exactly the WAITING transactions, each once. */
static int tsn_parse_waiters(struct tsn_load *l, struct zap_rcur *in)
{
	uint32_t waiting = 0;

	for (uint32_t k = 0; k < l->n_txns; k++)
		waiting += l->txns[k].state == ZAP_TXN_STATE_WAITING;
	if (waiting != l->n_waiting)
		return -EBADMSG;
	for (uint32_t i = 0; i < l->n_waiting; i++) {
		uint64_t id = zap_r_le64(in);
		uint32_t k = 0;
		while (k < l->n_txns && l->txns[k].txn_id != id)
			k++;
		if (in->bad || k == l->n_txns || l->txns[k].state != ZAP_TXN_STATE_WAITING)
			return -EBADMSG;
		l->waiters[i] = k;
		l->ids[i] = k;
	}
	return tsn_has_repeat(l->ids, l->n_waiting) ? -EBADMSG : 0;
}

/*
 * The optional payloads section, parsed and built into @p out (arrival
 * order), linked by the caller once everything else loaded.
 */
static int tsn_parse_payloads(struct tsn_load *l, struct zap_rcur *in, struct zap_payload **out)
{
	struct zap_payload **tail = out;
	uint32_t n;

	*out = NULL;
	if (zap_r_left(in) == 0)
		return 0;
	n = zap_r_le32(in);
	if (in->bad || n == 0 || n > ZAP_TXN_MAX_PAYLOADS)
		return -EBADMSG;
	for (uint32_t i = 0; i < n; i++) {
		struct zap_payload x = {0};
		x.id = zap_r_le64(in);
		x.clock_ns = zap_r_le64(in);
		x.total = zap_r_le64(in);
		x.received = zap_r_le64(in);
		uint32_t w = zap_r_le32(in);
		x.node = (uint16_t)w;
		x.broken = (uint8_t)(w >> 16);
		if (in->bad || x.id == 0 || (w >> 17) != 0 || x.received > x.total ||
		    x.total > l->sm->p.max_large_bytes || (!x.broken && x.received > zap_r_left(in)))
			return -EBADMSG;
		for (const struct zap_payload *q = *out; q; q = q->next)
			if (q->id == x.id)
				return -EBADMSG;
		struct zap_payload *p = malloc(sizeof(*p));
		if (p == NULL)
			return -ENOMEM;
		*p = x;
		p->next = NULL;
		*tail = p;
		tail = &p->next;
		if (!x.broken) {
			const uint8_t *b = zap_r_take(in, x.received);
			if ((p->buf = malloc(x.total ? x.total : 1)) == NULL)
				return -ENOMEM;
			memcpy(p->buf, b, x.received);
		}
	}
	return 0;
}

/* One heap block with the same layout as a transaction made by PREPARE. */
static struct zap_txn *tsn_txn_block(const struct tsn_txn *x)
{
	uint64_t text = (uint64_t)x->user_len + x->description_len + x->extension_len;
	struct zap_txn *t;
	struct zap_rcur in = {.p = x->stores, .len = SIZE_MAX};
	uint8_t *p;

	t = zap_txn_block(x->n_stores, x->n_reads, text + x->data_bytes, &p);
	if (t == NULL)
		return NULL;
	t->txn_id = x->txn_id;
	t->client_id = x->client_id;
	t->seq = x->seq;
	t->prepare_clock_ns = x->clock_ns;
	t->node = x->node;
	t->type = x->type;
	t->state = x->state;
	t->pending = x->pending;
	memcpy(p, x->text, text);
	zap_txn_text_point(&t->meta, p, x->user_len, x->description_len, x->extension_len);
	p += text;
	for (uint32_t i = 0; i < x->n_stores; i++) {
		struct zap_entry_store *s = &t->stores[i];
		s->oid = zap_r_le64(&in);
		s->base_serial = zap_r_le64(&in);
		s->deleted = (zap_r_le32(&in) & TSN_DELETED) != 0;
		s->len = zap_r_le64(&in);
		s->data = p;
		memcpy(p, zap_r_take(&in, s->len), s->len);
		p += s->len;
		t->writes[i].oid = s->oid;
		t->writes[i].data = s->deleted ? NULL : s->data;
		t->writes[i].len = s->len;
		t->writes[i].deleted = s->deleted;
		t->oids[i] = s->oid;
	}
	for (uint32_t i = 0; i < x->n_reads; i++) {
		t->reads[i].oid = zap_r_le64(&in);
		t->reads[i].serial = zap_r_le64(&in);
		zap_r_le32(&in);
	}
	return t;
}

/* Allocate every block and the lock room; on failure nothing is linked. */
static int tsn_alloc(struct tsn_load *l)
{
	if (zap_txn_map_reserve(&l->sm->locks, l->objects) != 0)
		return -ENOMEM;
	for (uint32_t k = 0; k < l->n_txns; k++) {
		l->txns[k].t = tsn_txn_block(&l->txns[k]);
		if (l->txns[k].t == NULL) {
			for (uint32_t j = 0; j < k; j++)
				free(l->txns[j].t);
			return -ENOMEM;
		}
	}
	return 0;
}

static void tsn_link_session(struct zap_txn_sm *sm, const uint8_t *p)
{
	struct zap_session *s = sm->free_sessions;
	struct zap_txn_result *r = &s->res;
	uint32_t w;

	sm->free_sessions = s->next;
	memset(s, 0, sizeof(*s));
	s->client_id = zap_get_le64(p);
	s->last_seq = zap_get_le64(p + 8);
	r->index = zap_get_le64(p + 16);
	r->client_id = zap_get_le64(p + 24);
	r->seq = zap_get_le64(p + 32);
	r->txn_id = zap_get_le64(p + 40);
	w = (uint32_t)zap_get_le64(p + 48);
	r->entry_type = (uint8_t)w;
	r->duplicate = (uint8_t)(w >> 8);
	r->status = (uint16_t)(w >> 16);
	r->store_errno = (int32_t)(uint32_t)(zap_get_le64(p + 48) >> 32);
	r->tid = zap_get_le64(p + 56);
	r->oid = zap_get_le64(p + 64);
	r->serial = zap_get_le64(p + 72);
	r->base_serial = zap_get_le64(p + 80);
	r->first_oid = zap_get_le64(p + 88);
	r->oid_count = zap_get_le32(p + 96);
	zap_txn_map_put(&sm->sessions, s->client_id, s);
	s->prev = sm->lru_tail;
	if (sm->lru_tail)
		sm->lru_tail->next = s;
	else
		sm->lru_head = s;
	sm->lru_tail = s;
	sm->n_sessions++;
}

/* Link everything (nothing allocates from here on). */
static void tsn_link(struct tsn_load *l)
{
	struct zap_txn_sm *sm = l->sm;

	for (uint32_t i = 0; i < l->n_sessions; i++)
		tsn_link_session(sm, l->sessions + (uint64_t)i * TSN_SESSION_BYTES);
	for (uint32_t k = 0; k < l->n_txns; k++) {
		struct zap_txn *t = l->txns[k].t;
		zap_txn_map_put(&sm->txns, t->txn_id, t);
		t->prev = sm->all_tail;
		if (sm->all_tail)
			sm->all_tail->next = t;
		else
			sm->all_head = t;
		sm->all_tail = t;
		sm->n_txns++;
		sm->txn_objects += (uint64_t)t->n_stores + t->n_reads;
	}
	for (uint64_t i = 0; i < l->n_lock_bits; i++)
		zap_txn_map_put(&sm->locks, l->locks[i].oid, l->txns[l->locks[i].holder].t);
	for (uint32_t i = 0; i < l->n_waiting; i++) {
		struct zap_txn *t = l->txns[l->waiters[i]].t;
		t->wprev = sm->wait_tail;
		if (sm->wait_tail)
			sm->wait_tail->wnext = t;
		else
			sm->wait_head = t;
		sm->wait_tail = t;
		sm->n_waiting++;
	}
	sm->applied_index = l->applied_index;
	sm->last_tid = l->last_tid;
	sm->next_oid = l->next_oid;
}

/* The stream after its envelope (zap_snap_open()): header, sections. */
static int tsn_load(struct tsn_load *l, struct zap_rcur *in)
{
	struct zap_txn_sm *sm = l->sm;
	struct zap_payload *payloads = NULL;
	uint64_t most;
	int rc;

	zap_r_le32(in); /* zero */
	l->applied_index = zap_r_le64(in);
	l->last_tid = zap_r_le64(in);
	l->next_oid = zap_r_le64(in);
	l->n_sessions = zap_r_le32(in);
	l->n_txns = zap_r_le32(in);
	l->n_waiting = zap_r_le32(in);
	l->n_locks = zap_r_le32(in);
	if (in->bad || l->n_sessions > zap_r_left(in) / TSN_SESSION_BYTES ||
	    l->n_txns > zap_r_left(in) / TSN_TXN_FIXED_BYTES || l->n_waiting > l->n_txns)
		return -EBADMSG;
	if (sm->applied_index != 0 || sm->n_txns != 0 || sm->n_sessions != 0 ||
	    l->n_sessions > sm->p.max_sessions || l->n_txns > sm->p.max_prepared ||
	    l->last_tid < zap_store_last_tid(sm->store))
		return -EINVAL;
	most = l->n_sessions > l->n_txns ? l->n_sessions : l->n_txns;
	l->ids = malloc(sizeof(*l->ids) * (most + 1));
	l->txns = calloc(l->n_txns + 1, sizeof(*l->txns));
	l->waiters = malloc(sizeof(*l->waiters) * (l->n_waiting + 1));
	l->locks = malloc(sizeof(*l->locks));
	if (l->ids == NULL || l->txns == NULL || l->waiters == NULL || l->locks == NULL)
		return -ENOMEM;
	rc = tsn_parse_sessions(l, in);
	if (rc == 0)
		rc = tsn_parse_txns(l, in);
	if (rc == 0)
		rc = tsn_parse_waiters(l, in);
	if (rc == 0)
		rc = tsn_parse_payloads(l, in, &payloads);
	if (rc == 0 && zap_r_left(in) != 0)
		rc = -EBADMSG;
	if (rc == 0)
		rc = tsn_alloc(l);
	if (rc == 0)
		tsn_link(l);
	while (payloads) {
		struct zap_payload *p = payloads;
		payloads = p->next;
		if (rc == 0)
			zap_payload_link(sm, p);
		else
			zap_payload_free(p);
	}
	return rc;
}

int zap_txn_sm_snapshot_load(struct zap_txn_sm *sm, const void *buf, size_t len)
{
	struct tsn_load l;
	struct zap_rcur in;
	int rc;

	rc = zap_snap_open(&in, buf, len, TSN_HDR_BYTES, TSN_MAGIC, TSN_VERSION);
	if (rc != 0)
		return rc;
	memset(&l, 0, sizeof(l));
	l.sm = sm;
	rc = tsn_load(&l, &in);
	free(l.ids);
	free(l.txns);
	free(l.waiters);
	free(l.locks);
	return rc;
}
