/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO codec (zeo_codec.h): a strict decoder and a writer for the two ZEO 5
 * message encodings, pickle protocol 3 ("Z") and msgpack ("M").
 *
 * The parts, from the bottom up:
 *  - the values and their arena (zeo_value.c): values never move once
 *    allocated, so item pointers stay valid until the arena is reset;
 *  - the pickle decoder (zeo_codec_pickle.c): a stack machine over the
 *    accepted opcodes. Lists and dicts are mutable while they sit on the
 *    stack (APPEND(S), SETITEM(S)); an open container keeps its items in the
 *    stack slots right after its own and becomes a compact arena array when
 *    it is consumed (by a parent, STOP, or a memo GET). Each value is copied
 *    into the arena once, so decoding is O(n). The memo maps a key to a box:
 *    the value itself, or the stack slot of a still open container. A GET
 *    closes that container first, so a container can never contain itself:
 *    the result is always a tree (shared subtrees allowed, read-only);
 *  - this file: the msgpack decoder (recursive descent, depth bounded) and
 *    zeo_decode(), which picks the decoder of an encoding;
 *  - the writer (zeo_codec_write.c).
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
#include "zeo_codec_pickle.h"
#include "zeo_value_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"

/* ====================================================== msgpack decoder */

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
	*v = zap_get_be(m->p, n);
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
