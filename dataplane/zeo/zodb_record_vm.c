/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZODB record decoder (zodb_record.h), the machine the opcodes of
 * zodb_record.c run on: the node allocator, the stack and its marks, the
 * memo, containers and scalar values (zodb_record_internal.h).
 *
 * Invariants:
 * - Nodes and item arrays come from a chain of chunks (struct zr's mem)
 *   freed at once by zr_mem_free(); they are never freed one by one, so a
 *   value may sit on the stack, in the memo and in containers at once. The
 *   stack, the marks and the memo table are malloc'd and freed by the caller.
 * - Pops never reach below the innermost MARK (zr_fence()).
 * - Values mode: a value added to a container (zr_account()) or fetched from
 *   the memo (zr_get()) is closed, and zr_add_items() refuses to add to a
 *   closed list or dict; zr_account() keeps each container's size, depth and
 *   str / bytes payload within ZODB_REC_MAX_VALUES, ZODB_REC_MAX_DEPTH and
 *   struct zr's max_bytes.
 * - Str, bytes, big ints and globals point into the input, not copies.
 */
#include "zodb_record_internal.h"

#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"

/** Smallest allocation chunk. */
#define ZR_CHUNK_MIN_BYTES 16384u
/** Smallest item array of a list or dict. */
#define ZR_ITEMS_MIN 4u

struct zr_chunk {
	struct zr_chunk *next;
	size_t used, cap;
	alignas(max_align_t) unsigned char data[];
};

struct zr_memo {
	uint32_t key;
	struct zodb_val *v; /* NULL: empty entry */
};

/* ------------------------------------------------------------ memory */

static void *zr_alloc(struct zr *z, size_t n)
{
	n = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
	struct zr_chunk *c = z->mem;
	if (!c || c->cap - c->used < n) {
		size_t cap = c ? c->cap * 2 : ZR_CHUNK_MIN_BYTES;
		if (cap < n)
			cap = n;
		if (cap > SIZE_MAX - sizeof(*c))
			return NULL;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->next = z->mem;
		c->used = 0;
		c->cap = cap;
		z->mem = c;
	}
	void *p = c->data + c->used;
	c->used += n;
	return p;
}

void zr_mem_free(struct zr_chunk *c)
{
	while (c) {
		struct zr_chunk *next = c->next;
		free(c);
		c = next;
	}
}

int zr_grow(void **p, uint32_t *cap, size_t elem, uint64_t need)
{
	if (need <= *cap)
		return 0;
	uint64_t ncap = *cap ? (uint64_t)*cap * 2 : 16;
	if (ncap < need)
		ncap = need;
	if (ncap > UINT32_MAX || ncap > SIZE_MAX / elem)
		return -ENOMEM;
	void *q = realloc(*p, (size_t)ncap * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = (uint32_t)ncap;
	return 0;
}

struct zodb_val *zr_new(struct zr *z, enum zodb_type type)
{
	struct zodb_val *v = zr_alloc(z, sizeof(*v));
	if (v) {
		memset(v, 0, sizeof(*v));
		v->type = type;
		v->size = 1;
	}
	return v;
}

/* ------------------------------------------------------------ the stack */

int zr_push(struct zr *z, struct zodb_val *v)
{
	if (!v)
		return -ENOMEM;
	if (zr_grow((void **)&z->stk, &z->stk_cap, sizeof(*z->stk), (uint64_t)z->nstk + 1))
		return -ENOMEM;
	z->stk[z->nstk++] = v;
	return 0;
}

uint32_t zr_fence(const struct zr *z)
{
	return z->nmark ? z->mark[z->nmark - 1] : 0;
}

struct zodb_val *zr_pop(struct zr *z)
{
	if (z->nstk <= zr_fence(z))
		return NULL;
	return z->stk[--z->nstk];
}

struct zodb_val *zr_top(struct zr *z)
{
	if (z->nstk <= zr_fence(z))
		return NULL;
	return z->stk[z->nstk - 1];
}

int zr_pop_mark(struct zr *z, uint32_t *from)
{
	if (z->nmark == 0)
		return -EINVAL;
	*from = z->mark[--z->nmark];
	return 0;
}

const uint8_t *zr_take(struct zr *z, uint64_t n)
{
	if ((uint64_t)(z->end - z->p) < n)
		return NULL;
	const uint8_t *q = z->p;
	z->p += n;
	return q;
}

/** A text operand up to (not including) its newline. */
const uint8_t *zr_line(struct zr *z, uint32_t *len)
{
	const uint8_t *nl = memchr(z->p, '\n', (size_t)(z->end - z->p));
	if (!nl || nl - z->p > (ptrdiff_t)UINT32_MAX)
		return NULL;
	const uint8_t *q = z->p;
	*len = (uint32_t)(nl - q);
	z->p = nl + 1;
	return q;
}

/* ------------------------------------------------------------ containers */

/** Values mode: @p item becomes part of @p c; its size is final. */
int zr_account(struct zr *z, struct zodb_val *c, struct zodb_val *item)
{
	if (!z->values)
		return 0;
	item->open = false;
	if (item->size > ZODB_REC_MAX_VALUES - c->size)
		return -E2BIG;
	if (item->depth + 1u > ZODB_REC_MAX_DEPTH)
		return -E2BIG;
	if (item->bytes > z->max_bytes - c->bytes)
		return -E2BIG;
	c->bytes += item->bytes;
	c->size += item->size;
	if (item->depth + 1u > c->depth)
		c->depth = (uint16_t)(item->depth + 1u);
	return 0;
}

static int zr_append(struct zr *z, struct zodb_val *c, struct zodb_val *item)
{
	int rc = zr_account(z, c, item);
	if (rc)
		return rc;
	if (c->seq.n == c->seq.cap) {
		uint64_t cap = c->seq.cap ? (uint64_t)c->seq.cap * 2 : ZR_ITEMS_MIN;
		if (cap > UINT32_MAX)
			return -E2BIG;
		struct zodb_val **items = zr_alloc(z, (size_t)cap * sizeof(*items));
		if (!items)
			return -ENOMEM;
		if (c->seq.n)
			memcpy(items, c->seq.items, (size_t)c->seq.n * sizeof(*items));
		c->seq.items = items;
		c->seq.cap = (uint32_t)cap;
	}
	c->seq.items[c->seq.n++] = item;
	return 0;
}

/** TUPLE, LIST, DICT and friends: the values from stack index @p from up. */
int zr_build(struct zr *z, uint32_t from, enum zodb_type type)
{
	uint32_t n = z->nstk - from;
	if (type == ZODB_DICT && n % 2)
		return -EINVAL;
	struct zodb_val *c = zr_new(z, type);
	if (!c)
		return -ENOMEM;
	c->open = type != ZODB_TUPLE;
	for (uint32_t i = 0; i < n; i++) {
		int rc = zr_append(z, c, z->stk[from + i]);
		if (rc)
			return rc;
	}
	z->nstk = from;
	return zr_push(z, c);
}

/** APPEND(S), SETITEM(S): the values from @p from up go into the value below them. */
int zr_add_items(struct zr *z, uint32_t from, enum zodb_type type)
{
	uint32_t n = z->nstk - from;
	if (from == 0 || from - 1 < zr_fence(z))
		return -EINVAL;
	if (type == ZODB_DICT && n % 2)
		return -EINVAL;
	struct zodb_val *c = z->stk[from - 1];
	if (c->type == ZODB_OPAQUE && !z->values) {
		z->nstk = from; /* a list or dict subclass: its items do not matter here */
		return 0;
	}
	if (c->type != type || (z->values && !c->open))
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		int rc = zr_append(z, c, z->stk[from + i]);
		if (rc)
			return rc;
	}
	z->nstk = from;
	return 0;
}

/* ------------------------------------------------------------ memo */

static struct zr_memo *zr_memo_find(struct zr_memo *tab, uint32_t cap, uint32_t key)
{
	uint32_t i = (key * 2654435761u) & (cap - 1);
	while (tab[i].v && tab[i].key != key)
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

int zr_put(struct zr *z, uint32_t key)
{
	struct zodb_val *v = zr_top(z);
	if (!v)
		return -EINVAL;
	if ((uint64_t)(z->memo_len + 1) * 2 > z->memo_cap) {
		uint64_t cap = z->memo_cap ? (uint64_t)z->memo_cap * 2 : 64;
		if (cap > UINT32_MAX)
			return -ENOMEM;
		struct zr_memo *tab = calloc((size_t)cap, sizeof(*tab));
		if (!tab)
			return -ENOMEM;
		for (uint32_t i = 0; i < z->memo_cap; i++)
			if (z->memo[i].v)
				*zr_memo_find(tab, (uint32_t)cap, z->memo[i].key) = z->memo[i];
		free(z->memo);
		z->memo = tab;
		z->memo_cap = (uint32_t)cap;
	}
	struct zr_memo *e = zr_memo_find(z->memo, z->memo_cap, key);
	if (!e->v)
		z->memo_len++;
	e->key = key;
	e->v = v;
	return 0;
}

int zr_get(struct zr *z, uint32_t key)
{
	if (!z->memo_cap)
		return -EINVAL;
	struct zr_memo *e = zr_memo_find(z->memo, z->memo_cap, key);
	if (!e->v)
		return -EINVAL;
	if (z->values)
		e->v->open = false;
	return zr_push(z, e->v);
}

/** PUT / GET: a decimal key on a line. */
int zr_text_key(struct zr *z, uint32_t *key)
{
	uint32_t len;
	const uint8_t *q = zr_line(z, &len);
	if (!q || len == 0 || len > 10)
		return -EINVAL;
	uint64_t k = 0;
	for (uint32_t i = 0; i < len; i++) {
		if (q[i] < '0' || q[i] > '9')
			return -EINVAL;
		k = k * 10 + (uint64_t)(q[i] - '0');
	}
	if (k > UINT32_MAX)
		return -EINVAL;
	*key = (uint32_t)k;
	return 0;
}

/* ------------------------------------------------------------ scalars */

static int zr_push_str(struct zr *z, enum zodb_type type, const uint8_t *p, uint64_t len)
{
	if (len > UINT32_MAX)
		return -E2BIG;
	struct zodb_val *v = zr_new(z, type);
	if (!v)
		return -ENOMEM;
	v->s.p = p;
	v->s.len = (uint32_t)len;
	v->bytes = len;
	return zr_push(z, v);
}

int zr_push_int(struct zr *z, int64_t i)
{
	struct zodb_val *v = zr_new(z, ZODB_INT);
	if (!v)
		return -ENOMEM;
	v->i = i;
	return zr_push(z, v);
}

/** LONG1 / LONG4 operand: little-endian two's complement of any length. */
int zr_long(struct zr *z, const uint8_t *p, uint64_t n)
{
	if (n == 0)
		return zr_push_int(z, 0);
	bool neg = p[n - 1] & 0x80;
	uint8_t fill = neg ? 0xff : 0x00;
	bool fits = true;
	for (uint64_t i = 8; i < n; i++)
		if (p[i] != fill)
			fits = false;
	uint64_t u = zap_get_le(p, n < 8 ? (unsigned)n : 8);
	if (n < 8 && neg)
		u |= ~(uint64_t)0 << (8 * n);
	if (n >= 8 && (bool)(u >> 63) != neg)
		fits = false;
	if (fits)
		return zr_push_int(z, (int64_t)u);
	int rc = zr_push_str(z, ZODB_INT, p, n);
	if (rc == 0)
		z->stk[z->nstk - 1]->big = true;
	return rc;
}

/** Opcodes with a length operand of @p size bytes followed by that many bytes. */
int zr_counted(struct zr *z, enum zodb_type type, unsigned size)
{
	const uint8_t *q = zr_take(z, size);
	if (!q)
		return -EINVAL;
	uint64_t len = zap_get_le(q, size);
	if (size == 4 && type == ZODB_BYTES && (int32_t)(uint32_t)len < 0)
		return -EINVAL;
	const uint8_t *s = zr_take(z, len);
	if (!s)
		return -EINVAL;
	return zr_push_str(z, type, s, len);
}

int zr_global(struct zr *z, const uint8_t *mod, uint32_t mod_len, const uint8_t *name,
	      uint32_t name_len)
{
	struct zodb_val *g = zr_new(z, ZODB_GLOBAL);
	if (!g)
		return -ENOMEM;
	g->g.mod = mod;
	g->g.mod_len = mod_len;
	g->g.name = name;
	g->g.name_len = name_len;
	g->bytes = (uint64_t)mod_len + name_len;
	return zr_push(z, g);
}
