/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap store: the oid index, an open-addressing table (linear probing) from
 * oid + 1 to the head of the oid's revision chain, kept in the arena.
 *
 * Keys are never removed: an object packed away keeps its key with head 0.
 * The writer fills a slot's head before it publishes the key (release), so
 * a reader that finds a key also sees its head. When the load would pass
 * STORE_INDEX_MAX_LOAD_PCT the writer builds a larger copy, publishes its
 * offset in hdr->index_off and retires the old table; a reader that took
 * the old one goes on reading it until it leaves its section.
 *
 * Threading: store_index_find() is for readers and the writer; the rest is
 * the writer's.
 */
#include <errno.h>
#include <string.h>

#include "store_layout.h"

static uint64_t index_bytes(uint64_t slots)
{
	return sizeof(struct store_index) + slots * sizeof(struct store_index_slot);
}

static uint64_t index_new(struct zap_store *s, uint64_t slots)
{
	uint64_t off = store_alloc(s, index_bytes(slots));
	if (off == 0)
		return 0;
	struct store_index *ix = store_at(s, off);
	memset(ix, 0, index_bytes(slots));
	ix->slots = slots;
	return off;
}

int store_index_init(struct zap_store *s, uint64_t slots)
{
	uint64_t off = index_new(s, slots);
	if (off == 0)
		return -ENOSPC;
	STORE_REL(&s->hdr->index_off, off);
	return 0;
}

struct store_index_slot *store_index_find(const struct zap_store *s, struct store_index *ix,
					  uint64_t oid)
{
	struct store_index_slot *slot = store_index_slots(ix);
	uint64_t mask = ix->slots - 1;
	uint64_t key = oid + 1;
	(void)s;
	for (uint64_t i = store_oid_hash(oid) & mask;; i = (i + 1) & mask) {
		uint64_t k = LOAD_ACQ(&slot[i].key);
		if (k == key)
			return &slot[i];
		if (k == 0)
			return NULL;
	}
}

/* Insert a key known to be absent (writer); the head is set before the key. */
struct store_index_slot *store_index_insert(struct store_index *ix, uint64_t oid, uint64_t head)
{
	struct store_index_slot *slot = store_index_slots(ix);
	uint64_t mask = ix->slots - 1;
	uint64_t i = store_oid_hash(oid) & mask;
	while (slot[i].key != 0)
		i = (i + 1) & mask;
	STORE_RLX(&slot[i].head, head);
	STORE_REL(&slot[i].key, oid + 1);
	ix->used++;
	return &slot[i];
}

static int index_over(const struct store_index *ix, uint64_t extra)
{
	return (ix->used + extra) * 100 > ix->slots * STORE_INDEX_MAX_LOAD_PCT;
}

/* Grow the index so that `extra` more keys fit; publish the copy. */
int store_index_grow(struct zap_store *s, uint64_t extra)
{
	struct store_index *old = store_index_cur(s);
	if (!index_over(old, extra))
		return 0;
	uint64_t slots = old->slots;
	while ((old->used + extra) * 100 > slots * STORE_INDEX_MAX_LOAD_PCT)
		slots *= 2;
	uint64_t off = index_new(s, slots);
	if (off == 0)
		return -ENOSPC;
	struct store_index *ix = store_at(s, off);
	struct store_index_slot *os = store_index_slots(old);
	for (uint64_t i = 0; i < old->slots; i++)
		if (os[i].key != 0)
			store_index_insert(ix, os[i].key - 1, os[i].head);
	uint64_t old_off = s->hdr->index_off;
	STORE_REL(&s->hdr->index_off, off);
	return store_retire(s, old_off, index_bytes(old->slots));
}

void store_index_add(struct zap_store *s, uint64_t oid, uint64_t head)
{
	store_index_insert(store_index_cur(s), oid, head);
}
