/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap native conflict resolution: comparisons and arithmetic on decoded
 * record values (zeo_resolve_internal.h).
 *
 * Keys: a bucket is merged natively only when all its keys (old, committed
 * and new) are of one kind among int, float, str, bytes; within a kind the
 * order is Python's (ints by value of any width, floats numerically without
 * NaN, str by code point = UTF-8 byte order, bytes lexicographically).
 *
 * Values: BTrees compares values with `==` in its Python merge and with `<`
 * then `==` in its C merge. rs_val_eq() answers only where both agree:
 * numbers, str, bytes, None and tuples / lists of those, and persistent
 * references (equal when the persistent ids are the same or name the same
 * oid non-weakly; any other comparison involving a reference raises in both,
 * which refuses the merge). Dicts, globals, mixed kinds and the like are
 * RS_UNSURE: the client decides.
 */
#include "zeo_resolve_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"

enum rs_key_kind rs_key_kind(const struct zodb_val *v)
{
	switch (v->type) {
	case ZODB_INT:
		return RS_KEY_INT;
	case ZODB_FLOAT:
		return isnan(v->f) ? RS_KEY_BAD : RS_KEY_FLOAT;
	case ZODB_STR:
		return RS_KEY_STR;
	case ZODB_BYTES:
		return RS_KEY_BYTES;
	default:
		return RS_KEY_BAD;
	}
}

/** Sign-extended byte @p i (little-endian) of an int value. */
static uint8_t int_byte(const struct zodb_val *v, size_t i)
{
	if (!v->big)
		return i < 8 ? (uint8_t)((uint64_t)v->i >> (8 * i)) : (v->i < 0 ? 0xff : 0x00);
	if (i < v->s.len)
		return v->s.p[i];
	return v->s.len && (v->s.p[v->s.len - 1] & 0x80) ? 0xff : 0x00;
}

static size_t int_width(const struct zodb_val *v)
{
	return v->big ? v->s.len : 8;
}

static bool int_neg(const struct zodb_val *v)
{
	return v->big ? v->s.len && (v->s.p[v->s.len - 1] & 0x80) : v->i < 0;
}

static int int_cmp(const struct zodb_val *a, const struct zodb_val *b)
{
	if (!a->big && !b->big)
		return (a->i > b->i) - (a->i < b->i);
	bool na = int_neg(a), nb = int_neg(b);
	if (na != nb)
		return na ? -1 : 1;
	size_t w = int_width(a) > int_width(b) ? int_width(a) : int_width(b);
	for (size_t i = w; i-- > 0;) {
		uint8_t x = int_byte(a, i), y = int_byte(b, i);
		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

static int bytes_cmp(const struct zodb_val *a, const struct zodb_val *b)
{
	uint32_t n = a->s.len < b->s.len ? a->s.len : b->s.len;
	int c = n ? memcmp(a->s.p, b->s.p, n) : 0;
	if (c)
		return c < 0 ? -1 : 1;
	return (a->s.len > b->s.len) - (a->s.len < b->s.len);
}

int rs_key_cmp(const struct zodb_val *a, const struct zodb_val *b)
{
	switch (a->type) {
	case ZODB_INT:
		return int_cmp(a, b);
	case ZODB_FLOAT:
		return (a->f > b->f) - (a->f < b->f);
	default:
		return bytes_cmp(a, b);
	}
}

static bool is_number(const struct zodb_val *v)
{
	return v->type == ZODB_INT || v->type == ZODB_BOOL || v->type == ZODB_FLOAT;
}

/** Numbers of any kind, exactly as Python compares them. */
static enum rs_eq number_eq(const struct zodb_val *a, const struct zodb_val *b)
{
	struct zodb_val x = *a, y = *b;
	if (x.type == ZODB_BOOL) {
		x.type = ZODB_INT;
		x.big = false;
		x.i = a->b;
	}
	if (y.type == ZODB_BOOL) {
		y.type = ZODB_INT;
		y.big = false;
		y.i = b->b;
	}
	if (x.type == ZODB_FLOAT && y.type == ZODB_FLOAT)
		return x.f == y.f ? RS_EQ : RS_NE;
	if (x.type == ZODB_INT && y.type == ZODB_INT)
		return int_cmp(&x, &y) == 0 ? RS_EQ : RS_NE;
	const struct zodb_val *i = x.type == ZODB_INT ? &x : &y;
	double f = x.type == ZODB_FLOAT ? x.f : y.f;
	if (i->big)
		return RS_UNSURE;
	/* an int64 equals a float only when the float is that integer */
	if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0) || f != floor(f))
		return RS_NE;
	return (int64_t)f == i->i ? RS_EQ : RS_NE;
}

static bool ref_same_pid(const struct zodb_val *a, const struct zodb_val *b);
static enum rs_eq val_eq(const struct zodb_val *a, const struct zodb_val *b, bool nested);

/** Persistent references (ZODB's conflict-resolution PersistentReference). */
static enum rs_eq ref_eq(const struct zodb_val *a, const struct zodb_val *b)
{
	struct zodb_ref x, y;
	if (ref_same_pid(a->pid, b->pid))
		return RS_EQ;
	if (zodb_ref_parse(a->pid, &x) || zodb_ref_parse(b->pid, &y))
		return RS_UNSURE;
	if (x.weak || y.weak || x.oid != y.oid)
		return RS_RAISE;
	if (!x.db && !y.db)
		return RS_EQ;
	if (!x.db || !y.db)
		return RS_RAISE;
	enum rs_eq e = rs_val_eq(x.db, y.db);
	return e == RS_EQ ? RS_EQ : e == RS_NE ? RS_RAISE : RS_UNSURE;
}

/** Structural identity of two persistent ids (same kinds, same contents). */
static bool ref_same_pid(const struct zodb_val *a, const struct zodb_val *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case ZODB_STR:
	case ZODB_BYTES:
		return a->s.len == b->s.len && memcmp(a->s.p, b->s.p, a->s.len) == 0;
	case ZODB_GLOBAL:
		return a->g.mod_len == b->g.mod_len && a->g.name_len == b->g.name_len &&
		       memcmp(a->g.mod, b->g.mod, a->g.mod_len) == 0 &&
		       memcmp(a->g.name, b->g.name, a->g.name_len) == 0;
	case ZODB_TUPLE:
	case ZODB_LIST:
		if (a->seq.n != b->seq.n)
			return false;
		for (uint32_t i = 0; i < a->seq.n; i++)
			if (!ref_same_pid(a->seq.items[i], b->seq.items[i]))
				return false;
		return true;
	default:
		return false;
	}
}

/** Tuples with tuples, lists with lists: the first unequal pair decides. */
static enum rs_eq seq_eq(const struct zodb_val *a, const struct zodb_val *b)
{
	uint32_t n = a->seq.n < b->seq.n ? a->seq.n : b->seq.n;
	for (uint32_t i = 0; i < n; i++) {
		enum rs_eq e = val_eq(a->seq.items[i], b->seq.items[i], true);
		if (e == RS_EQ)
			continue;
		/* Python's == skips the items when the lengths differ, C's < does not */
		if (e == RS_RAISE && a->seq.n != b->seq.n)
			return RS_UNSURE;
		return e;
	}
	return a->seq.n == b->seq.n ? RS_EQ : RS_NE;
}

/*
 * At the top level C's merge orders None before anything without comparing;
 * inside a tuple, None < x raises in C while Python's == says False.
 */
static enum rs_eq val_eq(const struct zodb_val *a, const struct zodb_val *b, bool nested)
{
	if (a->type == ZODB_REF && b->type == ZODB_REF)
		return ref_eq(a, b);
	if (a->type == ZODB_REF || b->type == ZODB_REF) {
		if (!nested && (a->type == ZODB_NONE || b->type == ZODB_NONE))
			return RS_UNSURE;
		return RS_RAISE;
	}
	if (a->type == ZODB_NONE || b->type == ZODB_NONE) {
		if (a->type == b->type)
			return RS_EQ;
		return nested ? RS_UNSURE : RS_NE;
	}
	if (is_number(a) && is_number(b))
		return number_eq(a, b);
	if (a->type != b->type)
		return RS_UNSURE;
	switch (a->type) {
	case ZODB_STR:
	case ZODB_BYTES:
		return bytes_cmp(a, b) == 0 ? RS_EQ : RS_NE;
	case ZODB_TUPLE:
	case ZODB_LIST:
		return seq_eq(a, b);
	default:
		return RS_UNSURE;
	}
}

enum rs_eq rs_val_eq(const struct zodb_val *a, const struct zodb_val *b)
{
	return val_eq(a, b, false);
}

/* ------------------------------------------------------------ Length */

static bool int_operand(const struct zodb_val *v)
{
	return v->type == ZODB_INT && (!v->big || v->s.len <= RS_INT_MAX_BYTES);
}

int rs_int_add3(struct zeo_buf *b, const struct zodb_val *c, const struct zodb_val *n,
		const struct zodb_val *o)
{
	if (!int_operand(c) || !int_operand(n) || !int_operand(o))
		return -EINVAL;
	if (!c->big && !n->big && !o->big) {
		int64_t r;
		if (!__builtin_add_overflow(c->i, n->i, &r) && !__builtin_sub_overflow(r, o->i, &r)) {
			zeo_w_int(b, ZEO_ENC_PICKLE, r);
			return 0;
		}
	}
	/* two's complement, wide enough that c + n - o cannot overflow */
	size_t w = int_width(c);
	if (int_width(n) > w)
		w = int_width(n);
	if (int_width(o) > w)
		w = int_width(o);
	w += 2;
	uint8_t *r = malloc(w);
	if (!r)
		return -ENOMEM;
	unsigned carry = 0, borrow = 0;
	for (size_t i = 0; i < w; i++) {
		unsigned s = (unsigned)int_byte(c, i) + int_byte(n, i) + carry;
		carry = s >> 8;
		int d = (int)(s & 0xff) - (int)int_byte(o, i) - (int)borrow;
		borrow = d < 0;
		r[i] = (uint8_t)(d & 0xff);
	}
	/* shortest form: drop high bytes that only repeat the sign */
	size_t len = w;
	while (len > 1 && ((r[len - 1] == 0x00 && !(r[len - 2] & 0x80)) ||
			   (r[len - 1] == 0xff && (r[len - 2] & 0x80))))
		len--;
	if (len <= 8) {
		uint64_t u = zap_get_le(r, (unsigned)len);
		if (len < 8 && (r[len - 1] & 0x80))
			u |= ~(uint64_t)0 << (8 * len);
		zeo_w_int(b, ZEO_ENC_PICKLE, (int64_t)u);
	} else {
		zodb_w_long(b, r, len);
	}
	free(r);
	return 0;
}
