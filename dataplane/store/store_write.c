/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap store: the writer. Only the apply stage calls these functions.
 * Blocks come from the arena (store_arena.c), keys go into the index
 * (store_index.c); the pack's entry points and its mark are store_gc.c,
 * which calls the sweep here.
 *
 * Publication order of a commit: allocate everything (or fail with nothing
 * changed); fill the blocks; grow the index if needed; link each revision
 * as its oid's new head (release); append the transaction to the ring;
 * publish last_tid (release). Readers use last_tid as their snapshot and
 * skip newer revisions, so a commit appears all at once.
 *
 * Unlinked memory (packed revisions, transactions evicted from the ring)
 * is retired to the arena's reclamation, never freed while a reader may
 * still reach it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_layout.h"

uint64_t zap_store_serial(const struct zap_store *s, uint64_t oid)
{
	if (oid > ZAP_STORE_MAX_OID)
		return 0;
	struct store_index_slot *slot = store_index_find(s, store_index_cur(s), oid);
	if (slot == NULL || slot->head == 0)
		return 0;
	return ((const struct store_rev *)store_at(s, slot->head))->tid;
}

/* ------------------------------------------------------------ commit */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int writes_valid(const struct zap_store *s, const struct zap_store_write *w, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (w[i].oid > ZAP_STORE_MAX_OID)
			return -EINVAL;
		if (!w[i].deleted && w[i].len > s->hdr->max_record_bytes)
			return -EMSGSIZE;
		if (!w[i].deleted && w[i].len > 0 && w[i].data == NULL)
			return -EINVAL;
	}
	uint64_t *oids = malloc(sizeof(uint64_t) * n);
	if (oids == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		oids[i] = w[i].oid;
	qsort(oids, n, sizeof(*oids), cmp_u64);
	int rc = 0;
	for (uint32_t i = 1; i < n && rc == 0; i++)
		if (oids[i] == oids[i - 1])
			rc = -EINVAL;
	free(oids);
	return rc;
}

static uint64_t rev_bytes(const struct zap_store_write *w)
{
	return sizeof(struct store_rev) + (w->deleted ? 0 : w->len);
}

static const struct zap_txn_text empty_meta;

static uint64_t txn_block(struct zap_store *s, uint64_t tid, const struct zap_txn_text *m,
			  const struct zap_store_write *w, uint32_t n)
{
	uint64_t bytes = store_txn_bytes(n, m->user_len, m->description_len, m->extension_len);
	uint64_t off = store_alloc(s, bytes);
	if (off == 0)
		return 0;
	struct store_txn *x = store_at(s, off);
	memset(x, 0, sizeof(*x));
	x->tid = tid;
	x->refs = 1 + n;
	x->n_oids = n;
	x->user_len = m->user_len;
	x->description_len = m->description_len;
	x->extension_len = m->extension_len;
	uint8_t *p = (uint8_t *)(x + 1);
	for (uint32_t i = 0; i < n; i++, p += 8)
		memcpy(p, &w[i].oid, 8);
	if (m->user_len)
		memcpy(p, m->user, m->user_len);
	p += m->user_len;
	if (m->description_len)
		memcpy(p, m->description, m->description_len);
	p += m->description_len;
	if (m->extension_len)
		memcpy(p, m->extension, m->extension_len);
	return off;
}

static void txn_unref(struct zap_store *s, uint64_t txn_off)
{
	struct store_txn *x = store_at(s, txn_off);
	if (--x->refs == 0)
		store_retire(s, txn_off,
			     store_txn_bytes(x->n_oids, x->user_len, x->description_len,
					     x->extension_len));
}

static void ring_append(struct zap_store *s, uint64_t tid, uint64_t txn_off)
{
	struct store_hdr *h = s->hdr;
	uint64_t k = h->txn_count;
	struct store_ring_slot *slot = (struct store_ring_slot *)store_at(s, h->ring_off);
	slot += k % h->ring_n;
	if (k >= h->ring_n)
		txn_unref(s, slot->txn_off);
	STORE_RLX(&slot->tid, tid);
	STORE_RLX(&slot->txn_off, txn_off);
	STORE_REL(&h->txn_count, k + 1);
}

int zap_store_commit(struct zap_store *s, uint64_t tid, const struct zap_txn_text *meta,
		     const struct zap_store_write *w, uint32_t n)
{
	if (!s->writer)
		return -EPERM;
	if (n == 0 || tid <= s->hdr->last_tid || tid == UINT64_MAX)
		return -EINVAL;
	int rc = writes_valid(s, w, n);
	if (rc != 0)
		return rc;
	if (meta == NULL)
		meta = &empty_meta;
	uint64_t *revs = malloc(sizeof(uint64_t) * n);
	if (revs == NULL)
		return -ENOMEM;
	uint64_t txn_off = txn_block(s, tid, meta, w, n);
	uint32_t got = 0;
	if (txn_off != 0)
		for (; got < n; got++)
			if ((revs[got] = store_alloc(s, rev_bytes(&w[got]))) == 0)
				break;
	if (got < n || store_index_grow(s, n) != 0) {
		while (got > 0) {
			got--;
			store_free(s, revs[got], rev_bytes(&w[got]));
		}
		if (txn_off != 0)
			store_free(s, txn_off,
				   store_txn_bytes(n, meta->user_len, meta->description_len,
						   meta->extension_len));
		free(revs);
		return -ENOSPC;
	}

	struct store_index *ix = store_index_cur(s);
	for (uint32_t i = 0; i < n; i++) {
		struct store_rev *rv = store_at(s, revs[i]);
		struct store_index_slot *slot = store_index_find(s, ix, w[i].oid);
		rv->tid = tid;
		rv->txn_off = txn_off;
		rv->flags = w[i].deleted ? REV_DELETED : 0;
		rv->pad = 0;
		rv->len = w[i].deleted ? 0 : w[i].len;
		if (rv->len)
			memcpy(rv + 1, w[i].data, rv->len);
		rv->next = slot ? slot->head : 0;
		if (slot == NULL)
			store_index_insert(ix, w[i].oid, revs[i]);
		else
			STORE_REL(&slot->head, revs[i]);
		if (rv->next == 0)
			s->hdr->objects++;
		s->hdr->revisions++;
	}
	free(revs);
	ring_append(s, tid, txn_off);
	STORE_REL(&s->hdr->last_tid, tid);
	zap_store_reclaim(s);
	return 0;
}

/* ------------------------------------------------------------ pack */

static void rev_retire(struct zap_store *s, uint64_t off)
{
	struct store_rev *rv = store_at(s, off);
	txn_unref(s, rv->txn_off);
	store_retire(s, off, sizeof(*rv) + rv->len);
	s->hdr->revisions--;
}

/* Pack one chain; returns the new head. */
static uint64_t pack_chain(struct zap_store *s, uint64_t head, uint64_t pack_tid)
{
	uint64_t prev = 0, keep = head;
	while (keep != 0 && ((struct store_rev *)store_at(s, keep))->tid > pack_tid) {
		prev = keep;
		keep = ((struct store_rev *)store_at(s, keep))->next;
	}
	if (keep == 0)
		return head;
	struct store_rev *kr = store_at(s, keep);
	uint64_t older = kr->next;
	uint64_t drop_from = older;
	if (kr->flags & REV_DELETED) {
		/* deleted at pack time: nothing at or after pack_tid needs it */
		drop_from = keep;
		if (prev != 0)
			STORE_REL(&((struct store_rev *)store_at(s, prev))->next, 0);
	} else if (older != 0) {
		STORE_REL(&kr->next, 0);
	}
	for (uint64_t off = drop_from; off != 0;) {
		uint64_t next = ((struct store_rev *)store_at(s, off))->next;
		rev_retire(s, off);
		off = next;
	}
	return drop_from == head ? 0 : head;
}

/* Unlink and retire every revision of an unreachable object. */
static void drop_object(struct zap_store *s, struct store_index_slot *slot)
{
	uint64_t off = slot->head;
	STORE_REL(&slot->head, 0);
	while (off != 0) {
		uint64_t next = ((struct store_rev *)store_at(s, off))->next;
		rev_retire(s, off);
		off = next;
	}
	s->hdr->objects--;
}

static int slot_live(const uint64_t *live, uint64_t i)
{
	return (live[i / 64] >> (i % 64)) & 1;
}

uint64_t store_pack_sweep(struct zap_store *s, uint64_t pack_tid, const uint64_t *live)
{
	struct store_index *ix = store_index_cur(s);
	struct store_index_slot *slot = store_index_slots(ix);
	uint64_t collected = 0;
	for (uint64_t i = 0; i < ix->slots; i++) {
		if (slot[i].key == 0 || slot[i].head == 0)
			continue;
		const struct store_rev *hr = store_at(s, slot[i].head);
		/* not marked: no revision newer than pack_tid (those are roots);
		   one deleted at pack_tid is dropped below as without a mark */
		if (live != NULL && !slot_live(live, i) && !(hr->flags & REV_DELETED)) {
			drop_object(s, &slot[i]);
			collected++;
			continue;
		}
		uint64_t head = pack_chain(s, slot[i].head, pack_tid);
		if (head == 0) {
			STORE_REL(&slot[i].head, 0);
			s->hdr->objects--;
		}
	}
	if (pack_tid > s->hdr->pack_tid)
		STORE_REL(&s->hdr->pack_tid, pack_tid);
	zap_store_reclaim(s);
	return collected;
}
