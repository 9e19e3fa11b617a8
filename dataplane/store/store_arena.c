/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap store: the arena, the memory of the mapping after the reader table
 * and the txn ring. Its allocator and its reclamation are the writer's;
 * the index (store_index.c), the writer (store_write.c) and the snapshot
 * loader (store_snapshot.c) take their blocks from here.
 *
 * Allocator: size classes (four per power of two, from 32 bytes), a free
 * list per class threaded through the first 8 bytes of each free block,
 * and a bump pointer for memory never used. All allocator state is in the
 * mapping header, so the same commits give the same layout.
 *
 * Reclamation: memory unlinked by pack, ring eviction or index growth goes
 * to a limbo queue stamped with hdr->gen and an rte_rcu_qsbr token; it is
 * freed when every thread reader has passed the token and every reader in
 * another process announced a later gen (or is dead).
 *
 * Threading: the writer (apply stage) only.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "store_layout.h"

/* ------------------------------------------------------------ allocator */

uint64_t store_class_bytes(unsigned c)
{
	if (c == 0)
		return STORE_MIN_BLOCK_BYTES;
	unsigned k = 5 + (c - 1) / 4;
	unsigned sub = (c - 1) % 4 + 1;
	return (1ull << k) + ((uint64_t)sub << (k - 2));
}

unsigned store_class_of(uint64_t bytes)
{
	if (bytes <= STORE_MIN_BLOCK_BYTES)
		return 0;
	unsigned k = 63 - (unsigned)__builtin_clzll(bytes - 1);
	uint64_t step = 1ull << (k - 2);
	uint64_t sub = (bytes - (1ull << k) + step - 1) / step;
	return (k - 5) * 4 + (unsigned)sub;
}

uint64_t store_alloc(struct zap_store *s, uint64_t bytes)
{
	struct store_hdr *h = s->hdr;
	unsigned c = store_class_of(bytes);
	if (c >= STORE_N_CLASSES)
		return 0;
	uint64_t cb = store_class_bytes(c);
	uint64_t off = h->free_head[c];
	if (off != 0) {
		h->free_head[c] = *(uint64_t *)store_at(s, off);
	} else {
		if (cb > h->size_bytes - h->bump)
			return 0;
		off = h->bump;
		h->bump += cb;
	}
	h->bytes_in_use += cb;
	return off;
}

void store_free(struct zap_store *s, uint64_t off, uint64_t bytes)
{
	struct store_hdr *h = s->hdr;
	unsigned c = store_class_of(bytes);
	*(uint64_t *)store_at(s, off) = h->free_head[c];
	h->free_head[c] = off;
	h->bytes_in_use -= store_class_bytes(c);
}

/* ------------------------------------------------------------ reclamation */

int store_retire(struct zap_store *s, uint64_t off, uint64_t bytes)
{
	if (s->limbo_tail == s->limbo_cap) {
		uint64_t live = s->limbo_tail - s->limbo_head;
		if (s->limbo_head > 0) {
			memmove(s->limbo, s->limbo + s->limbo_head, live * sizeof(*s->limbo));
		} else {
			uint64_t cap = s->limbo_cap ? s->limbo_cap * 2 : 1024;
			struct store_limbo *l = realloc(s->limbo, cap * sizeof(*l));
			if (l == NULL)
				return -ENOMEM;
			s->limbo = l;
			s->limbo_cap = cap;
		}
		s->limbo_head = 0;
		s->limbo_tail = live;
	}
	struct store_limbo *e = &s->limbo[s->limbo_tail++];
	e->off = off;
	e->bytes = bytes;
	e->gen = LOAD_RLX(&s->hdr->gen);
	e->token = 0;
	s->bytes_limbo += store_class_bytes(store_class_of(bytes));
	s->limbo_gen_pending = 1;
	return 0;
}

/* Close a batch of unlinks: new readers from now on cannot reach them. */
static void store_retire_seal(struct zap_store *s)
{
	if (!s->limbo_gen_pending)
		return;
	__atomic_fetch_add(&s->hdr->gen, 1, __ATOMIC_SEQ_CST);
	uint64_t token = rte_rcu_qsbr_start(s->qsbr);
	for (uint64_t i = s->limbo_tail; i > s->limbo_head && s->limbo[i - 1].token == 0; i--)
		s->limbo[i - 1].token = token;
	s->limbo_gen_pending = 0;
}

/* 1 unless the process is gone (a reader slot to clear). */
static int store_pid_alive(uint32_t pid)
{
	return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

/* Oldest gen a reader of another process may still be using; clears the dead. */
static uint64_t store_oldest_reader_gen(struct zap_store *s, uint64_t want)
{
	uint64_t oldest = UINT64_MAX;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (uint32_t i = 0; i < s->hdr->readers_n; i++) {
		struct store_reader_slot *slot = &s->slots[i];
		uint64_t g = LOAD_ACQ(&slot->gen);
		if (g == 0)
			continue;
		if (g <= want && !store_pid_alive(LOAD_RLX(&slot->pid))) {
			STORE_REL(&slot->gen, 0);
			STORE_REL(&slot->pid, 0);
			s->stale_readers_cleared++;
			continue;
		}
		if (g < oldest)
			oldest = g;
	}
	return oldest;
}

uint64_t zap_store_reclaim(struct zap_store *s)
{
	if (!s->writer || s->limbo_head == s->limbo_tail)
		return 0;
	store_retire_seal(s);
	uint64_t freed = 0;
	uint64_t oldest = store_oldest_reader_gen(s, s->limbo[s->limbo_head].gen);
	while (s->limbo_head < s->limbo_tail) {
		struct store_limbo *e = &s->limbo[s->limbo_head];
		if (e->gen >= oldest || rte_rcu_qsbr_check(s->qsbr, e->token, false) != 1)
			break;
		store_free(s, e->off, e->bytes);
		s->bytes_limbo -= store_class_bytes(store_class_of(e->bytes));
		s->limbo_head++;
		freed++;
	}
	if (s->limbo_head == s->limbo_tail)
		s->limbo_head = s->limbo_tail = 0;
	s->reclaimed_blocks += freed;
	return freed;
}

void store_writer_fini(struct zap_store *s)
{
	free(s->limbo);
	s->limbo = NULL;
}
