/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO codec (zeo_codec.h): a strict decoder and a writer for the two ZEO 5
 * message encodings, pickle protocol 3 ("Z") and msgpack ("M").
 *
 * Sections, in this order:
 *  1. the arena: values never move once allocated. It is a chain of chunks;
 *     a chunk that is too small is not grown in place but followed by a
 *     bigger one, so item pointers handed out stay valid until reset.
 *  2. the pickle decoder (zeo_codec_pickle.c): a stack machine over the accepted opcodes. Lists
 *     and dicts are mutable while they sit on the stack (APPEND(S),
 *     SETITEM(S)); an open container keeps its items in the stack slots
 *     right after its own and becomes a compact arena array when it is
 *     consumed (by a parent, STOP, or a memo GET). Each value is copied into
 *     the arena once, so decoding is O(n). The memo maps a key to a box: the
 *     value itself, or the stack slot of a still open container. A GET
 *     closes that container first, so a container can never contain itself:
 *     the result is always a tree (shared subtrees allowed, read-only).
 *  3. the msgpack decoder: recursive descent, depth bounded.
 *  4. the writer (zeo_codec_write.c).
 *  5. the helpers on decoded values.
 *
 * Bounds: every length is checked against the remaining input before it is
 * used; container nesting is at most ZEO_MAX_DEPTH; a message decodes into at
 * most ZEO_MAX_VALUES values, counting a memoized subtree once per reference
 * (so walking the tree is bounded too), and memo references may not make the
 * str / bytes payload of the tree more than a few times the input (so writing
 * the tree again is bounded).
 *
 * Threading: no global state.
 */
#include "zeo_codec.h"
#include "zeo_codec_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ 1. arena */

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

/* ====================================================== 3. msgpack decoder */

struct mp {
	const uint8_t *p, *end;
	struct zeo_arena *a;
	const char *err;
	uint32_t nvals;
};

static int mp_fail(struct mp *m, int rc, const char *why)
{
	m->err = why;
	return rc;
}

/** Big-endian operand of @p n bytes (1, 2, 4, 8); false when truncated. */
static bool mp_uint(struct mp *m, unsigned n, uint64_t *v)
{
	if ((size_t)(m->end - m->p) < n)
		return false;
	*v = rd_be(m->p, n);
	m->p += n;
	return true;
}

static int mp_str(struct mp *m, struct zeo_val *out, enum zeo_type type, uint64_t len)
{
	if ((uint64_t)(m->end - m->p) < len)
		return mp_fail(m, -EBADMSG, ERR_TRUNCATED);
	if (len > UINT32_MAX)
		return mp_fail(m, -E2BIG, ERR_STR_BIG);
	out->type = type;
	out->s.p = m->p;
	out->s.len = (uint32_t)len;
	m->p += len;
	return 0;
}

static int mp_value(struct mp *m, struct zeo_val *out, unsigned depth);

/** Array (tuple) or map (dict) of @p n elements / pairs. */
static int mp_seq(struct mp *m, struct zeo_val *out, enum zeo_type type, uint64_t n, unsigned depth)
{
	if (depth >= ZEO_MAX_DEPTH)
		return mp_fail(m, -EBADMSG, ERR_DEPTH);
	uint64_t count = type == ZEO_DICT ? 2 * n : n;
	if (count > (uint64_t)(m->end - m->p)) /* every value takes a byte at least */
		return mp_fail(m, -EBADMSG, ERR_TRUNCATED);
	if (count > ZEO_MAX_VALUES - m->nvals)
		return mp_fail(m, -E2BIG, ERR_TOO_MANY);
	struct zeo_val *items;
	if (zeo_arena_alloc(m->a, (uint32_t)count, &items))
		return mp_fail(m, -ENOMEM, ERR_NOMEM);
	out->type = type;
	out->seq.items = items;
	out->seq.n = (uint32_t)count;
	for (uint32_t i = 0; i < count; i++) {
		int rc = mp_value(m, &items[i], depth + 1);
		if (rc)
			return rc;
	}
	return 0;
}

/** The type bytes 0xc0..0xdf. */
static int mp_typed(struct mp *m, struct zeo_val *out, uint8_t b, unsigned depth)
{
	static const unsigned size_of[4] = {1, 2, 4, 8};
	uint64_t v;
	switch (b) {
	case 0xc0:
		out->type = ZEO_NONE;
		return 0;
	case 0xc2:
	case 0xc3:
		out->type = ZEO_BOOL;
		out->b = b == 0xc3;
		return 0;
	case 0xc4: /* bin 8, 16, 32 */
	case 0xc5:
	case 0xc6:
		if (!mp_uint(m, size_of[b - 0xc4], &v))
			return mp_fail(m, -EBADMSG, ERR_TRUNCATED);
		return mp_str(m, out, ZEO_BYTES, v);
	case 0xca: /* float 32 */
	case 0xcb: {
		unsigned n = b == 0xca ? 4 : 8;
		if (!mp_uint(m, n, &v))
			return mp_fail(m, -EBADMSG, ERR_TRUNCATED);
		out->type = ZEO_FLOAT;
		if (n == 4) {
			float f;
			uint32_t bits = (uint32_t)v;
			memcpy(&f, &bits, sizeof(f));
			out->f = f;
		} else {
			out->f = f64_of_bits(v);
		}
		return 0;
	}
	case 0xcc: /* uint 8 .. 64 */
	case 0xcd:
	case 0xce:
	case 0xcf:
		if (!mp_uint(m, size_of[b - 0xcc], &v))
			return mp_fail(m, -EBADMSG, ERR_TRUNCATED);
		out->type = ZEO_INT;
		out->big = v > (uint64_t)INT64_MAX;
		out->u = v;
		return 0;
	case 0xd0: /* int 8 .. 64 */
	case 0xd1:
	case 0xd2:
	case 0xd3: {
		unsigned n = size_of[b - 0xd0];
		if (!mp_uint(m, n, &v))
			return mp_fail(m, -EBADMSG, ERR_TRUNCATED);
		if (n < 8 && (v >> (8 * n - 1)) & 1)
			v |= ~(uint64_t)0 << (8 * n);
		out->type = ZEO_INT;
		out->i = (int64_t)v;
		return 0;
	}
	case 0xd9: /* str 8, 16, 32 */
	case 0xda:
	case 0xdb:
		if (!mp_uint(m, size_of[b - 0xd9], &v))
			return mp_fail(m, -EBADMSG, ERR_TRUNCATED);
		return mp_str(m, out, ZEO_STR, v);
	case 0xdc: /* array 16, 32 */
	case 0xdd:
		if (!mp_uint(m, b == 0xdc ? 2 : 4, &v))
			return mp_fail(m, -EBADMSG, ERR_TRUNCATED);
		return mp_seq(m, out, ZEO_TUPLE, v, depth);
	case 0xde: /* map 16, 32 */
	case 0xdf:
		if (!mp_uint(m, b == 0xde ? 2 : 4, &v))
			return mp_fail(m, -EBADMSG, ERR_TRUNCATED);
		return mp_seq(m, out, ZEO_DICT, v, depth);
	case 0xc1:
		return mp_fail(m, -EBADMSG, "msgpack byte 0xc1 (never used) not allowed");
	default: /* 0xc7..0xc9 ext, 0xd4..0xd8 fixext */
		return mp_fail(m, -EBADMSG, "msgpack ext type not allowed");
	}
}

/** One value at container depth @p depth (0: the root). */
static int mp_value(struct mp *m, struct zeo_val *out, unsigned depth)
{
	if (m->p == m->end)
		return mp_fail(m, -EBADMSG, ERR_TRUNCATED);
	if (m->nvals >= ZEO_MAX_VALUES)
		return mp_fail(m, -E2BIG, ERR_TOO_MANY);
	m->nvals++;
	memset(out, 0, sizeof(*out));
	uint8_t b = *m->p++;
	if (b <= 0x7f || b >= 0xe0) { /* positive / negative fixint */
		out->type = ZEO_INT;
		out->i = b <= 0x7f ? b : (int8_t)b;
		return 0;
	}
	if (b <= 0x8f)
		return mp_seq(m, out, ZEO_DICT, b & 0x0f, depth);
	if (b <= 0x9f)
		return mp_seq(m, out, ZEO_TUPLE, b & 0x0f, depth);
	if (b <= 0xbf)
		return mp_str(m, out, ZEO_STR, b & 0x1f);
	return mp_typed(m, out, b, depth);
}

static int mp_decode(const uint8_t *buf, size_t len, struct zeo_arena *a, struct zeo_val **out,
		     const char **err)
{
	struct mp m = {.p = buf, .end = buf + len, .a = a};
	struct zeo_val *root;
	if (zeo_arena_alloc(a, 1, &root)) {
		*err = ERR_NOMEM;
		return -ENOMEM;
	}
	int rc = mp_value(&m, root, 0);
	if (rc == 0 && m.p != m.end)
		rc = mp_fail(&m, -EBADMSG, "trailing bytes after the msgpack object");
	*err = m.err;
	if (rc == 0)
		*out = root;
	return rc;
}

int zeo_decode(enum zeo_enc enc, const void *buf, size_t len, struct zeo_arena *a,
	       struct zeo_val **out, const char **err)
{
	const char *why = NULL;
	int rc;
	*out = NULL;
	if (enc == ZEO_ENC_PICKLE) {
		rc = zeo_pickle_decode(buf, len, a, out, &why);
	} else if (enc == ZEO_ENC_MSGPACK) {
		rc = mp_decode(buf, len, a, out, &why);
	} else {
		rc = -EBADMSG;
		why = "unknown encoding";
	}
	if (rc)
		*out = NULL;
	if (err)
		*err = rc ? why : NULL;
	return rc;
}

/* ============================================================== 5. helpers */

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
	*out = rd_be(v->s.p, 8);
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
