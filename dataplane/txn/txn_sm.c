/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap transaction state machine: life cycle, accessors and the digest.
 *
 * The digest hashes the replicated state in a canonical order that never
 * depends on memory addresses or hash-map layout: the session LRU list, the
 * transactions in creation order (with their records and, per oid, whether
 * the lock is theirs), the waiter FIFO, then counts, then the payloads
 * being received. Two replicas that
 * applied the same entries have equal digests.
 *
 * Threading: the apply stage owns the state machine.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "txn_internal.h"

/* ---------------------------------------------------------------- life cycle */

int zap_txn_sm_create(const struct zap_txn_params *p, struct zap_store *store,
		      struct zap_txn_sm **out)
{
	struct zap_entry_limits lim;
	struct zap_txn_sm *sm;

	if (store == NULL || out == NULL)
		return -EINVAL;
	sm = calloc(1, sizeof(*sm));
	if (sm == NULL)
		return -ENOMEM;
	if (p)
		sm->p = *p;
	if (sm->p.lease_ns == 0)
		sm->p.lease_ns = ZAP_TXN_DEFAULT_LEASE_NS;
	if (sm->p.max_sessions == 0)
		sm->p.max_sessions = ZAP_TXN_DEFAULT_MAX_SESSIONS;
	if (sm->p.max_prepared == 0)
		sm->p.max_prepared = ZAP_TXN_DEFAULT_MAX_PREPARED;
	if (sm->p.max_record_bytes == 0)
		sm->p.max_record_bytes = ZAP_ENTRY_DEFAULT_MAX_RECORD_BYTES;
	if (sm->p.first_oid == 0)
		sm->p.first_oid = ZAP_TXN_DEFAULT_FIRST_OID;
	if (sm->p.max_txn_objects == 0)
		sm->p.max_txn_objects = ZAP_ENTRY_DEFAULT_MAX_OBJECTS;
	if (sm->p.max_text_bytes == 0)
		sm->p.max_text_bytes = ZAP_ENTRY_DEFAULT_MAX_TEXT_BYTES;
	if (sm->p.max_large_bytes == 0)
		sm->p.max_large_bytes = ZAP_ENTRY_DEFAULT_MAX_LARGE_BYTES;
	if (sm->p.first_oid > ZAP_STORE_MAX_OID) {
		free(sm);
		return -EINVAL;
	}
	sm->store = store;
	sm->last_tid = zap_store_last_tid(store);
	sm->next_oid = sm->p.first_oid;
	lim.max_record_bytes = sm->p.max_record_bytes;
	if (sm->p.keep != NULL && sm->p.max_large_bytes > lim.max_record_bytes)
		lim.max_record_bytes = sm->p.max_large_bytes; /* a blob leaves the record */
	lim.max_objects = sm->p.max_txn_objects;
	lim.max_text_bytes = sm->p.max_text_bytes;
	lim.max_large_bytes = sm->p.max_large_bytes;
	sm->session_pool = calloc(sm->p.max_sessions, sizeof(*sm->session_pool));
	if (sm->session_pool == NULL || zap_entry_decoder_create(&lim, &sm->dec) != 0 ||
	    zap_txn_map_init(&sm->txns, sm->p.max_prepared) != 0 ||
	    zap_txn_map_init(&sm->locks, 64) != 0 ||
	    zap_txn_map_init(&sm->sessions, sm->p.max_sessions) != 0) {
		zap_txn_sm_destroy(sm);
		return -ENOMEM;
	}
	for (uint32_t i = sm->p.max_sessions; i > 0; i--) {
		sm->session_pool[i - 1].next = sm->free_sessions;
		sm->free_sessions = &sm->session_pool[i - 1];
	}
	*out = sm;
	return 0;
}

void zap_txn_sm_destroy(struct zap_txn_sm *sm)
{
	struct zap_txn *t, *next;

	if (sm == NULL)
		return;
	for (t = sm->all_head; t; t = next) {
		next = t->next;
		free(t);
	}
	while (sm->payloads) {
		struct zap_payload *p = sm->payloads;
		sm->payloads = p->next;
		zap_payload_free(p);
	}
	zap_txn_map_fini(&sm->txns);
	zap_txn_map_fini(&sm->locks);
	zap_txn_map_fini(&sm->sessions);
	zap_entry_decoder_destroy(sm->dec);
	free(sm->session_pool);
	free(sm);
}

uint64_t zap_txn_sm_applied_index(const struct zap_txn_sm *sm)
{
	return sm->applied_index;
}

uint64_t zap_txn_sm_last_tid(const struct zap_txn_sm *sm)
{
	return sm->last_tid;
}

uint64_t zap_txn_sm_next_oid(const struct zap_txn_sm *sm)
{
	return sm->next_oid;
}

int zap_txn_sm_each_record(const struct zap_txn_sm *sm, zap_store_record_fn fn, void *ctx)
{
	for (const struct zap_txn *t = sm->all_head; t; t = t->next)
		for (uint32_t i = 0; i < t->n_stores; i++) {
			const struct zap_entry_store *st = &t->stores[i];
			int rc = st->deleted ? 0 : fn(ctx, st->oid, 0, st->data, st->len);
			if (rc != 0)
				return rc;
		}
	return 0;
}

void zap_txn_sm_stats(const struct zap_txn_sm *sm, struct zap_txn_stats *st)
{
	*st = sm->st;
	st->sessions = sm->n_sessions;
	st->prepared = sm->n_txns - sm->n_waiting;
	st->waiting = sm->n_waiting;
	st->locks = (uint32_t)sm->locks.count;
	st->payloads = sm->n_payloads;
	st->payload_bytes = 0;
	for (const struct zap_payload *p = sm->payloads; p; p = p->next)
		st->payload_bytes += p->received;
}

/* ---------------------------------------------------------------- digest */

static void zap_dg(uint64_t *h, uint64_t v)
{
	*h ^= v;
	*h *= 0x100000001b3ull;
	*h ^= *h >> 29;
}

static void zap_dg_bytes(uint64_t *h, const void *p, uint64_t len)
{
	const uint8_t *b = p;
	uint64_t w;

	zap_dg(h, len);
	for (; len >= 8; len -= 8, b += 8) {
		memcpy(&w, b, 8);
		zap_dg(h, w);
	}
	w = 0;
	memcpy(&w, b, len);
	zap_dg(h, w);
}

static void zap_dg_result(uint64_t *h, const struct zap_txn_result *r)
{
	zap_dg(h, r->index);
	zap_dg(h, r->client_id);
	zap_dg(h, r->seq);
	zap_dg(h, r->txn_id);
	zap_dg(h, ((uint64_t)r->entry_type << 32) | r->status);
	zap_dg(h, (uint64_t)(int64_t)r->store_errno);
	zap_dg(h, r->tid);
	zap_dg(h, r->oid);
	zap_dg(h, r->serial);
	zap_dg(h, r->base_serial);
	zap_dg(h, r->first_oid);
	zap_dg(h, r->oid_count);
}

static void zap_dg_txn(uint64_t *h, const struct zap_txn_sm *sm, const struct zap_txn *t)
{
	zap_dg(h, t->txn_id);
	zap_dg(h, t->client_id);
	zap_dg(h, t->seq);
	zap_dg(h, t->prepare_clock_ns);
	zap_dg(h, ((uint64_t)t->node << 24) | ((uint64_t)t->type << 16) |
		      ((uint64_t)t->state << 8) | t->pending);
	zap_dg_bytes(h, t->meta.user, t->meta.user_len);
	zap_dg_bytes(h, t->meta.description, t->meta.description_len);
	zap_dg_bytes(h, t->meta.extension, t->meta.extension_len);
	for (uint32_t i = 0; i < t->n_stores; i++) {
		const struct zap_entry_store *s = &t->stores[i];
		zap_dg(h, s->oid);
		zap_dg(h, s->base_serial);
		zap_dg(h, (uint64_t)s->deleted);
		zap_dg_bytes(h, s->data, s->len);
		/* the lock, as seen from the holder */
		zap_dg(h, zap_txn_map_get(&sm->locks, s->oid) == t);
	}
	for (uint32_t i = 0; i < t->n_reads; i++) {
		zap_dg(h, t->reads[i].oid);
		zap_dg(h, t->reads[i].serial);
		zap_dg(h, zap_txn_map_get(&sm->locks, t->reads[i].oid) == t);
	}
}

uint64_t zap_txn_sm_digest(const struct zap_txn_sm *sm)
{
	uint64_t h = 0xcbf29ce484222325ull;

	zap_dg(&h, sm->applied_index);
	zap_dg(&h, sm->last_tid);
	zap_dg(&h, sm->next_oid);
	zap_dg(&h, sm->n_sessions);
	for (const struct zap_session *s = sm->lru_head; s; s = s->next) {
		zap_dg(&h, s->client_id);
		zap_dg(&h, s->last_seq);
		zap_dg_result(&h, &s->res);
	}
	zap_dg(&h, sm->n_txns);
	for (const struct zap_txn *t = sm->all_head; t; t = t->next)
		zap_dg_txn(&h, sm, t);
	zap_dg(&h, sm->n_waiting);
	for (const struct zap_txn *t = sm->wait_head; t; t = t->wnext)
		zap_dg(&h, t->txn_id);
	zap_dg(&h, sm->locks.count);
	/* payloads being received: what each holds, not its bytes (LARGE checks those) */
	zap_dg(&h, sm->n_payloads);
	for (const struct zap_payload *p = sm->payloads; p; p = p->next) {
		zap_dg(&h, p->id);
		zap_dg(&h, p->clock_ns);
		zap_dg(&h, p->total);
		zap_dg(&h, p->received);
		zap_dg(&h, ((uint64_t)p->node << 8) | p->broken);
	}
	return h;
}
