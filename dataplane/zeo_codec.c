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
 *  4. the writer.
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

/* =============================================================== 4. writer */

/** Smallest buffer allocation, in bytes. */
#define ZEO_BUF_MIN_BYTES 256u

void zeo_buf_init(struct zeo_buf *b)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->oom = false;
}

void zeo_buf_free(struct zeo_buf *b)
{
	free(b->p);
	zeo_buf_init(b);
}

void zeo_buf_reset(struct zeo_buf *b)
{
	b->len = 0;
	b->oom = false;
}

void zeo_buf_put(struct zeo_buf *b, const void *p, size_t len)
{
	if (b->oom || len == 0)
		return;
	if (b->cap - b->len < len) {
		if (len > SIZE_MAX / 2 - b->len) {
			b->oom = true;
			return;
		}
		size_t cap = b->cap * 2;
		if (cap < b->len + len)
			cap = b->len + len;
		if (cap < ZEO_BUF_MIN_BYTES)
			cap = ZEO_BUF_MIN_BYTES;
		uint8_t *q = realloc(b->p, cap);
		if (!q) {
			b->oom = true;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
}

static void put1(struct zeo_buf *b, uint8_t c)
{
	zeo_buf_put(b, &c, 1);
}

/** An opcode / type byte followed by @p n bytes of @p v, little- or big-endian. */
static void put_op(struct zeo_buf *b, uint8_t op, uint64_t v, unsigned n, bool le)
{
	uint8_t t[9];
	t[0] = op;
	for (unsigned i = 0; i < n; i++)
		t[1 + i] = (uint8_t)(v >> (8 * (le ? i : n - 1 - i)));
	zeo_buf_put(b, t, 1 + n);
}

/** msgpack: a header whose size field is 0, 1, 2 or 4 bytes wide. */
static void mp_put_len(struct zeo_buf *b, size_t len, uint8_t fix, size_t fix_max, uint8_t op8,
		       uint8_t op16, uint8_t op32)
{
	if (len <= fix_max && fix)
		put1(b, (uint8_t)(fix | len));
	else if (len <= UINT8_MAX && op8)
		put_op(b, op8, len, 1, false);
	else if (len <= UINT16_MAX)
		put_op(b, op16, len, 2, false);
	else if (len <= UINT32_MAX)
		put_op(b, op32, len, 4, false);
	else
		b->oom = true; /* not representable */
}

void zeo_w_begin(struct zeo_buf *b, enum zeo_enc enc)
{
	if (enc == ZEO_ENC_PICKLE)
		put_op(b, PK_PROTO, 3, 1, true);
}

void zeo_w_end(struct zeo_buf *b, enum zeo_enc enc)
{
	if (enc == ZEO_ENC_PICKLE)
		put1(b, PK_STOP);
}

void zeo_w_none(struct zeo_buf *b, enum zeo_enc enc)
{
	put1(b, enc == ZEO_ENC_PICKLE ? PK_NONE : 0xc0);
}

void zeo_w_bool(struct zeo_buf *b, enum zeo_enc enc, bool v)
{
	if (enc == ZEO_ENC_PICKLE)
		put1(b, v ? PK_NEWTRUE : PK_NEWFALSE);
	else
		put1(b, v ? 0xc3 : 0xc2);
}

/** Bytes of the shortest two's complement form of @p v. */
static unsigned long1_len(int64_t v)
{
	unsigned n = 1;
	while (n < 8) {
		int64_t lim = (int64_t)1 << (8 * n - 1);
		if (v >= -lim && v < lim)
			break;
		n++;
	}
	return n;
}

static void pk_w_int(struct zeo_buf *b, int64_t v)
{
	if (v >= 0 && v <= UINT8_MAX)
		put_op(b, PK_BININT1, (uint64_t)v, 1, true);
	else if (v >= 0 && v <= UINT16_MAX)
		put_op(b, PK_BININT2, (uint64_t)v, 2, true);
	else if (v >= INT32_MIN && v <= INT32_MAX)
		put_op(b, PK_BININT, (uint64_t)v, 4, true);
	else {
		unsigned n = long1_len(v);
		put_op(b, PK_LONG1, n, 1, true);
		uint8_t t[8];
		for (unsigned i = 0; i < n; i++)
			t[i] = (uint8_t)((uint64_t)v >> (8 * i));
		zeo_buf_put(b, t, n);
	}
}

static void mp_w_int(struct zeo_buf *b, int64_t v)
{
	if (v >= 0) {
		if (v <= 0x7f)
			put1(b, (uint8_t)v);
		else if (v <= UINT8_MAX)
			put_op(b, 0xcc, (uint64_t)v, 1, false);
		else if (v <= UINT16_MAX)
			put_op(b, 0xcd, (uint64_t)v, 2, false);
		else if (v <= UINT32_MAX)
			put_op(b, 0xce, (uint64_t)v, 4, false);
		else
			put_op(b, 0xcf, (uint64_t)v, 8, false);
	} else if (v >= -32) {
		put1(b, (uint8_t)v);
	} else if (v >= INT8_MIN) {
		put_op(b, 0xd0, (uint64_t)v, 1, false);
	} else if (v >= INT16_MIN) {
		put_op(b, 0xd1, (uint64_t)v, 2, false);
	} else if (v >= INT32_MIN) {
		put_op(b, 0xd2, (uint64_t)v, 4, false);
	} else {
		put_op(b, 0xd3, (uint64_t)v, 8, false);
	}
}

void zeo_w_int(struct zeo_buf *b, enum zeo_enc enc, int64_t v)
{
	if (enc == ZEO_ENC_PICKLE)
		pk_w_int(b, v);
	else
		mp_w_int(b, v);
}

void zeo_w_uint(struct zeo_buf *b, enum zeo_enc enc, uint64_t v)
{
	if (v <= (uint64_t)INT64_MAX) {
		zeo_w_int(b, enc, (int64_t)v);
	} else if (enc == ZEO_ENC_PICKLE) {
		/* 8 bytes of value and a zero sign byte */
		put_op(b, PK_LONG1, 9, 1, true);
		uint8_t t[9];
		for (unsigned i = 0; i < 8; i++)
			t[i] = (uint8_t)(v >> (8 * i));
		t[8] = 0;
		zeo_buf_put(b, t, sizeof(t));
	} else {
		put_op(b, 0xcf, v, 8, false);
	}
}

void zeo_w_float(struct zeo_buf *b, enum zeo_enc enc, double v)
{
	uint64_t bits;
	memcpy(&bits, &v, sizeof(bits));
	put_op(b, enc == ZEO_ENC_PICKLE ? PK_BINFLOAT : 0xcb, bits, 8, false);
}

void zeo_w_str(struct zeo_buf *b, enum zeo_enc enc, const void *p, size_t len)
{
	if (enc == ZEO_ENC_PICKLE) {
		if (len > UINT32_MAX) {
			b->oom = true;
			return;
		}
		put_op(b, PK_BINUNICODE, len, 4, true);
	} else {
		mp_put_len(b, len, 0xa0, 31, 0xd9, 0xda, 0xdb);
	}
	zeo_buf_put(b, p, len);
}

void zeo_w_cstr(struct zeo_buf *b, enum zeo_enc enc, const char *s)
{
	zeo_w_str(b, enc, s, strlen(s));
}

void zeo_w_bytes(struct zeo_buf *b, enum zeo_enc enc, const void *p, size_t len)
{
	if (enc == ZEO_ENC_PICKLE) {
		if (len <= UINT8_MAX)
			put_op(b, PK_SHORT_BINBYTES, len, 1, true);
		else if (len <= UINT32_MAX)
			put_op(b, PK_BINBYTES, len, 4, true);
		else {
			b->oom = true;
			return;
		}
	} else {
		mp_put_len(b, len, 0, 0, 0xc4, 0xc5, 0xc6);
	}
	zeo_buf_put(b, p, len);
}

void zeo_w_u64be(struct zeo_buf *b, enum zeo_enc enc, uint64_t v)
{
	uint8_t t[8];
	for (unsigned i = 0; i < 8; i++)
		t[i] = (uint8_t)(v >> (56 - 8 * i));
	zeo_w_bytes(b, enc, t, sizeof(t));
}

/* Pickle tuples: () EMPTY_TUPLE, 1..3 items TUPLE1..3, else MARK .. TUPLE. */
void zeo_w_tuple_begin(struct zeo_buf *b, enum zeo_enc enc, uint32_t n)
{
	if (enc == ZEO_ENC_PICKLE) {
		if (n > 3)
			put1(b, PK_MARK);
	} else {
		mp_put_len(b, n, 0x90, 15, 0, 0xdc, 0xdd);
	}
}

void zeo_w_tuple_end(struct zeo_buf *b, enum zeo_enc enc, uint32_t n)
{
	if (enc != ZEO_ENC_PICKLE)
		return;
	if (n == 0)
		put1(b, PK_EMPTY_TUPLE);
	else if (n <= 3)
		put1(b, (uint8_t)(PK_TUPLE1 + n - 1));
	else
		put1(b, PK_TUPLE);
}

/* Pickle lists: EMPTY_LIST, then 1 item: item APPEND; more: MARK items APPENDS. */
void zeo_w_list_begin(struct zeo_buf *b, enum zeo_enc enc, uint32_t n)
{
	if (enc == ZEO_ENC_PICKLE) {
		put1(b, PK_EMPTY_LIST);
		if (n > 1)
			put1(b, PK_MARK);
	} else {
		mp_put_len(b, n, 0x90, 15, 0, 0xdc, 0xdd);
	}
}

void zeo_w_list_end(struct zeo_buf *b, enum zeo_enc enc, uint32_t n)
{
	if (enc == ZEO_ENC_PICKLE && n > 0)
		put1(b, n == 1 ? PK_APPEND : PK_APPENDS);
}

/* Pickle dicts: EMPTY_DICT, then 1 pair: k v SETITEM; more: MARK pairs SETITEMS. */
void zeo_w_dict_begin(struct zeo_buf *b, enum zeo_enc enc, uint32_t n)
{
	if (enc == ZEO_ENC_PICKLE) {
		put1(b, PK_EMPTY_DICT);
		if (n > 1)
			put1(b, PK_MARK);
	} else {
		mp_put_len(b, n, 0x80, 15, 0, 0xde, 0xdf);
	}
}

void zeo_w_dict_end(struct zeo_buf *b, enum zeo_enc enc, uint32_t n)
{
	if (enc == ZEO_ENC_PICKLE && n > 0)
		put1(b, n == 1 ? PK_SETITEM : PK_SETITEMS);
}

void zeo_w_val(struct zeo_buf *b, enum zeo_enc enc, const struct zeo_val *v)
{
	uint32_t n;
	switch (v->type) {
	case ZEO_NONE:
		zeo_w_none(b, enc);
		break;
	case ZEO_BOOL:
		zeo_w_bool(b, enc, v->b);
		break;
	case ZEO_INT:
		if (v->big)
			zeo_w_uint(b, enc, v->u);
		else
			zeo_w_int(b, enc, v->i);
		break;
	case ZEO_FLOAT:
		zeo_w_float(b, enc, v->f);
		break;
	case ZEO_STR:
		zeo_w_str(b, enc, v->s.p, v->s.len);
		break;
	case ZEO_BYTES:
		zeo_w_bytes(b, enc, v->s.p, v->s.len);
		break;
	case ZEO_TUPLE:
		n = v->seq.n;
		zeo_w_tuple_begin(b, enc, n);
		for (uint32_t i = 0; i < n; i++)
			zeo_w_val(b, enc, &v->seq.items[i]);
		zeo_w_tuple_end(b, enc, n);
		break;
	case ZEO_LIST:
		n = v->seq.n;
		zeo_w_list_begin(b, enc, n);
		for (uint32_t i = 0; i < n; i++)
			zeo_w_val(b, enc, &v->seq.items[i]);
		zeo_w_list_end(b, enc, n);
		break;
	case ZEO_DICT:
		n = v->seq.n / 2;
		zeo_w_dict_begin(b, enc, n);
		for (uint32_t i = 0; i < 2 * n; i++)
			zeo_w_val(b, enc, &v->seq.items[i]);
		zeo_w_dict_end(b, enc, n);
		break;
	default:
		zeo_w_none(b, enc);
		break;
	}
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
