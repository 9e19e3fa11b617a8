/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO values (zeo_value.h): the arena decoded values live in and the
 * helpers that read them.
 *
 * The arena: values never move once allocated. It is a chain of chunks; a
 * chunk that is too small is not grown in place but followed by a bigger
 * one, so item pointers handed out stay valid until reset.
 *
 * Threading: no global state.
 */
#include "zeo_value.h"
#include "zeo_value_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"

/* ================================================================ arena */

/** One chunk of values; zeo_arena.vals points at the newest chunk's vals. */
struct zeo_chunk {
	struct zeo_chunk *prev;
	struct zeo_val vals[];
};

/** Smallest chunk, in values. */
#define ZEO_CHUNK_MIN_VALS 64u

static struct zeo_chunk *chunk_of(struct zeo_val *vals)
{
	return (struct zeo_chunk *)(void *)((char *)vals - offsetof(struct zeo_chunk, vals));
}

static void chunks_free_older(struct zeo_chunk *c)
{
	struct zeo_chunk *p = c->prev;
	c->prev = NULL;
	while (p) {
		struct zeo_chunk *next = p->prev;
		free(p);
		p = next;
	}
}

void zeo_arena_init(struct zeo_arena *a)
{
	a->vals = NULL;
	a->used = 0;
	a->cap = 0;
}

void zeo_arena_reset(struct zeo_arena *a)
{
	if (a->vals)
		chunks_free_older(chunk_of(a->vals));
	a->used = 0;
}

void zeo_arena_free(struct zeo_arena *a)
{
	if (a->vals) {
		struct zeo_chunk *c = chunk_of(a->vals);
		chunks_free_older(c);
		free(c);
	}
	zeo_arena_init(a);
}

int zeo_arena_alloc(struct zeo_arena *a, uint32_t n, struct zeo_val **out)
{
	*out = NULL;
	if (n == 0)
		return 0;
	if (a->cap - a->used < n) {
		uint64_t cap = (uint64_t)a->cap * 2;
		if (cap < n)
			cap = n;
		if (cap < ZEO_CHUNK_MIN_VALS)
			cap = ZEO_CHUNK_MIN_VALS;
		if (cap > UINT32_MAX ||
		    cap > (SIZE_MAX - sizeof(struct zeo_chunk)) / sizeof(struct zeo_val))
			return -ENOMEM;
		struct zeo_chunk *c = malloc(sizeof(*c) + (size_t)cap * sizeof(struct zeo_val));
		if (!c)
			return -ENOMEM;
		c->prev = a->vals ? chunk_of(a->vals) : NULL;
		a->vals = c->vals;
		a->cap = (uint32_t)cap;
		a->used = 0;
	}
	*out = a->vals + a->used;
	a->used += n;
	return 0;
}

/* ============================================================== helpers */

bool zeo_val_is_str(const struct zeo_val *v, const char *s)
{
	size_t n = strlen(s);
	return v->type == ZEO_STR && v->s.len == n && (n == 0 || memcmp(v->s.p, s, n) == 0);
}

bool zeo_val_int(const struct zeo_val *v, int64_t *out)
{
	if (v->type == ZEO_BOOL) {
		*out = v->b;
		return true;
	}
	if (v->type != ZEO_INT || v->big)
		return false;
	*out = v->i;
	return true;
}

bool zeo_val_u64be(const struct zeo_val *v, uint64_t *out)
{
	if (v->type != ZEO_BYTES || v->s.len != 8)
		return false;
	*out = zap_get_be64(v->s.p);
	return true;
}

bool zeo_val_truthy(const struct zeo_val *v)
{
	switch (v->type) {
	case ZEO_BOOL:
		return v->b;
	case ZEO_INT:
		return v->big || v->i != 0;
	case ZEO_FLOAT:
		return v->f != 0.0; /* NaN is true, as in Python */
	case ZEO_STR:
	case ZEO_BYTES:
		return v->s.len != 0;
	case ZEO_TUPLE:
	case ZEO_LIST:
	case ZEO_DICT:
		return v->seq.n != 0;
	default:
		return false;
	}
}

/** Bounds of the doubles that convert to int64 / uint64 exactly when integral. */
#define TWO_POW_63 9223372036854775808.0
#define TWO_POW_64 18446744073709551616.0

/** Python's int == float: true only when the float is exactly that integer. */
static bool int_eq_float(const struct zeo_val *i, double f)
{
	if (i->big) {
		if (!(f >= TWO_POW_63 && f < TWO_POW_64))
			return false;
		return (uint64_t)f == i->u && (double)(uint64_t)f == f;
	}
	if (!(f >= -TWO_POW_63 && f < TWO_POW_63))
		return false;
	int64_t t = (int64_t)f;
	return (double)t == f && t == i->i;
}

static bool num_equal(const struct zeo_val *a, const struct zeo_val *b)
{
	struct zeo_val x = *a, y = *b;
	if (x.type == ZEO_BOOL)
		x = (struct zeo_val){.type = ZEO_INT, .i = a->b};
	if (y.type == ZEO_BOOL)
		y = (struct zeo_val){.type = ZEO_INT, .i = b->b};
	if (x.type == ZEO_FLOAT && y.type == ZEO_FLOAT)
		return x.f == y.f;
	if (x.type == ZEO_FLOAT)
		return int_eq_float(&y, x.f);
	if (y.type == ZEO_FLOAT)
		return int_eq_float(&x, y.f);
	return x.big == y.big && (x.big ? x.u == y.u : x.i == y.i);
}

static bool is_num(const struct zeo_val *v)
{
	return v->type == ZEO_BOOL || v->type == ZEO_INT || v->type == ZEO_FLOAT;
}

/** Index of the last pair of dict @p d whose key equals @p key; -1 if none. */
static int64_t dict_find(const struct zeo_val *d, const struct zeo_val *key, uint32_t below)
{
	for (uint32_t i = below; i > 0; i--)
		if (zeo_val_equal(&d->seq.items[2 * (i - 1)], key))
			return (int64_t)(i - 1);
	return -1;
}

/** Python dict equality: same keys, equal values, order ignored, last duplicate wins. */
static bool dict_equal(const struct zeo_val *a, const struct zeo_val *b)
{
	uint32_t na = a->seq.n / 2, nb = b->seq.n / 2;
	bool same_order = na == nb;
	for (uint32_t i = 0; same_order && i < 2 * na; i++)
		same_order = zeo_val_equal(&a->seq.items[i], &b->seq.items[i]);
	if (same_order)
		return true;
	uint32_t distinct_a = 0, distinct_b = 0;
	for (uint32_t i = 0; i < na; i++) {
		const struct zeo_val *key = &a->seq.items[2 * i];
		if (dict_find(a, key, na) != (int64_t)i)
			continue; /* a later duplicate decides */
		distinct_a++;
		int64_t j = dict_find(b, key, nb);
		if (j < 0 || !zeo_val_equal(&a->seq.items[2 * i + 1], &b->seq.items[2 * j + 1]))
			return false;
	}
	for (uint32_t i = 0; i < nb; i++)
		if (dict_find(b, &b->seq.items[2 * i], nb) == (int64_t)i)
			distinct_b++;
	return distinct_a == distinct_b;
}

bool zeo_val_equal(const struct zeo_val *a, const struct zeo_val *b)
{
	if (is_num(a) && is_num(b))
		return num_equal(a, b);
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case ZEO_NONE:
		return true;
	case ZEO_STR:
	case ZEO_BYTES:
		return a->s.len == b->s.len &&
		       (a->s.len == 0 || memcmp(a->s.p, b->s.p, a->s.len) == 0);
	case ZEO_TUPLE:
	case ZEO_LIST:
		if (a->seq.n != b->seq.n)
			return false;
		for (uint32_t i = 0; i < a->seq.n; i++)
			if (!zeo_val_equal(&a->seq.items[i], &b->seq.items[i]))
				return false;
		return true;
	case ZEO_DICT:
		return dict_equal(a, b);
	default:
		return false;
	}
}

const struct zeo_val *zeo_dict_get(const struct zeo_val *d, const char *key)
{
	if (d->type != ZEO_DICT)
		return NULL;
	for (uint32_t i = d->seq.n / 2; i > 0; i--)
		if (zeo_val_is_str(&d->seq.items[2 * (i - 1)], key))
			return &d->seq.items[2 * (i - 1) + 1];
	return NULL;
}
