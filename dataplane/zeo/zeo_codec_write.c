/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO codec, the writer (zeo_codec.h; zeo_codec.c decodes): the growable
 * output buffer and the zeo_w_* calls that write one message in either ZEO 5
 * encoding, pickle protocol 3 ("Z") or msgpack ("M").
 *
 * Guarantees: pickle output uses only the opcodes a ZEO server may emit, in
 * the forms Python's pickler picks; msgpack output uses the smallest form of
 * each int and length. The same calls give the same bytes. Nothing is
 * written past a failure: an allocation that fails or a length that cannot
 * be encoded (> 4 GiB) sets the buffer's sticky oom flag and later calls do
 * nothing, so a caller checks oom once after the whole message.
 *
 * Threading: no global state; one buffer per thread.
 */
#include "zeo_codec.h"
#include "zeo_pickle_ops.h"

#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"

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

/** An opcode / type byte followed by @p n (1, 2, 4 or 8) bytes of @p v, little- or big-endian. */
static void put_op(struct zeo_buf *b, uint8_t op, uint64_t v, unsigned n, bool le)
{
	uint8_t t[9];
	t[0] = op;
	if (n == 1)
		t[1] = (uint8_t)v;
	else if (n == 2 && le)
		zap_put_le16(t + 1, (uint16_t)v);
	else if (n == 2)
		zap_put_be16(t + 1, (uint16_t)v);
	else if (n == 4 && le)
		zap_put_le32(t + 1, (uint32_t)v);
	else if (n == 4)
		zap_put_be32(t + 1, (uint32_t)v);
	else if (le)
		zap_put_le64(t + 1, v);
	else
		zap_put_be64(t + 1, v);
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
		zap_put_le64(t, (uint64_t)v); /* the low n bytes: the shortest form */
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
		zap_put_le64(t, v);
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
	zap_put_be64(t, v);
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
