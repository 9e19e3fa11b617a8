/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap store: pack, with or without garbage collection. This file holds the
 * pack's entry points and the mark; the sweep is store_pack_sweep() in
 * store_write.c, and the mark reads the index (store_index.c) only.
 *
 * Reachable at pack tid T: the root (oid 0), every object with a revision
 * newer than T, every object the caller names (transactions in flight), and
 * transitively every object referenced by a reachable object's revision
 * current at T or by one of its newer revisions. The store does not know
 * what a record looks like: a reference extractor (zap_store_refs_fn) reads
 * them. A record the extractor cannot read aborts the collection, since
 * its references are unknown; the pack then drops old revisions only.
 *
 * Memory: a bitmap over the current index's slots (one bit per slot) and a
 * worklist of slot numbers with room for every key of the index (a slot
 * enters it once, when its bit is set). Both are allocated before the mark
 * starts, so the mark allocates nothing while it runs and never recurses;
 * for 1M objects in 2M slots that is 256 KiB of bits and 8 MiB of list.
 *
 * Determinism: the marked set depends only on the store's logical contents,
 * the extractor and the named roots, never on the walk order or the index
 * layout, so every replica collects the same objects.
 *
 * Threading: the writer. The mark only reads; readers go on reading during
 * the sweep, which unlinks with release stores and retires memory through
 * reclamation like any pack.
 */
#include <errno.h>
#include <stdlib.h>

#include "store_layout.h"

struct gc_mark {
	struct zap_store *s;
	struct store_index *ix;
	struct store_index_slot *slot;
	uint64_t *live;	 /* one bit per index slot */
	uint64_t *work;	 /* slots marked, not yet scanned */
	uint64_t n_work;
	uint64_t marked;
};

static void gc_mark_slot(struct gc_mark *m, uint64_t i)
{
	uint64_t bit = 1ull << (i % 64);
	if (m->live[i / 64] & bit)
		return;
	m->live[i / 64] |= bit;
	m->work[m->n_work++] = i;
	m->marked++;
}

/* zap_store_oid_fn: mark @p oid if the store holds it. */
static int gc_add(void *arg, uint64_t oid)
{
	struct gc_mark *m = arg;
	if (oid > ZAP_STORE_MAX_OID)
		return 0;
	struct store_index_slot *sl = store_index_find(m->s, m->ix, oid);
	if (sl != NULL && sl->head != 0)
		gc_mark_slot(m, (uint64_t)(sl - m->slot));
	return 0;
}

/* Follow the references of slot i's revisions newer than T and current at T. */
static int gc_scan(struct gc_mark *m, zap_store_refs_fn refs, uint64_t i, uint64_t pack_tid)
{
	for (uint64_t off = m->slot[i].head; off != 0;) {
		const struct store_rev *rv = store_at(m->s, off);
		if (!(rv->flags & REV_DELETED)) {
			int rc = refs(rv + 1, rv->len, gc_add, m);
			if (rc != 0)
				return rc;
		}
		if (rv->tid <= pack_tid)
			break;
		off = rv->next;
	}
	return 0;
}

/* 1 when oid 0's revision current at pack_tid exists and is not a deletion. */
static int gc_root_live(struct gc_mark *m, uint64_t pack_tid)
{
	struct store_index_slot *sl = store_index_find(m->s, m->ix, 0);
	for (uint64_t off = sl ? sl->head : 0; off != 0;) {
		const struct store_rev *rv = store_at(m->s, off);
		if (rv->tid <= pack_tid)
			return !(rv->flags & REV_DELETED);
		off = rv->next;
	}
	return 0;
}

/* Roots: oid 0, objects with revisions newer than T, the caller's. */
static int gc_roots(struct gc_mark *m, const struct zap_store_gc *gc, uint64_t pack_tid)
{
	gc_add(m, 0);
	for (uint64_t i = 0; i < m->ix->slots; i++) {
		uint64_t head = m->slot[i].head;
		if (m->slot[i].key != 0 && head != 0 &&
		    ((const struct store_rev *)store_at(m->s, head))->tid > pack_tid)
			gc_mark_slot(m, i);
	}
	return gc->roots ? gc->roots(gc->roots_ctx, gc_add, m) : 0;
}

/*
 * Mark. On success *live is the bitmap for store_pack_sweep(); it stays
 * NULL when nothing may be collected (no root, aborted).
 * @return 0; -ENOMEM (nothing changed).
 */
static int gc_mark(struct zap_store *s, uint64_t pack_tid, const struct zap_store_gc *gc,
		   struct zap_store_gc_result *r, uint64_t **live)
{
	struct gc_mark m = {.s = s, .ix = store_index_cur(s)};
	m.slot = store_index_slots(m.ix);
	if (!gc_root_live(&m, pack_tid)) {
		r->no_root = 1;
		return 0;
	}
	m.live = calloc((m.ix->slots + 63) / 64, sizeof(uint64_t));
	m.work = malloc((m.ix->used ? m.ix->used : 1) * sizeof(uint64_t));
	if (m.live == NULL || m.work == NULL) {
		free(m.live);
		free(m.work);
		return -ENOMEM;
	}
	int rc = gc_roots(&m, gc, pack_tid);
	while (rc == 0 && m.n_work > 0)
		rc = gc_scan(&m, gc->refs, m.work[--m.n_work], pack_tid);
	free(m.work);
	r->reachable = m.marked;
	if (rc != 0) {
		r->aborted = 1;
		free(m.live);
		return 0;
	}
	*live = m.live;
	return 0;
}

int zap_store_pack_gc(struct zap_store *s, uint64_t pack_tid, const struct zap_store_gc *gc,
		      struct zap_store_gc_result *res)
{
	struct zap_store_gc_result r = {0};
	uint64_t *live = NULL;

	if (!s->writer)
		return -EPERM;
	if (pack_tid > s->hdr->last_tid)
		return -EINVAL;
	if (gc != NULL && gc->refs != NULL) {
		int rc = gc_mark(s, pack_tid, gc, &r, &live);
		if (rc != 0)
			return rc;
	}
	r.collected = store_pack_sweep(s, pack_tid, live);
	free(live);
	if (res != NULL)
		*res = r;
	return 0;
}

int zap_store_pack(struct zap_store *s, uint64_t pack_tid)
{
	return zap_store_pack_gc(s, pack_tid, NULL, NULL);
}
