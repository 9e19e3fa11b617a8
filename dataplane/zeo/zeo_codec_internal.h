/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO codec internals shared by zeo_codec.c (arena, msgpack decoder,
 * helpers), zeo_codec_pickle.c (the pickle decoder) and zeo_codec_write.c
 * (the writer).
 */
#ifndef ZAP_ZEO_CODEC_INTERNAL_H
#define ZAP_ZEO_CODEC_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "zeo_codec.h"

#define ERR_TRUNCATED "truncated"
#define ERR_NOMEM "out of memory"
#define ERR_TOO_MANY "more than ZEO_MAX_VALUES values"
#define ERR_DEPTH "nesting deeper than 64"
#define ERR_STR_BIG "string or bytes longer than 4 GiB"

_Static_assert(ZEO_MAX_DEPTH == 64, "ERR_DEPTH names the bound");

enum pk_op {
	PK_MARK = 0x28,
	PK_EMPTY_TUPLE = 0x29,
	PK_STOP = 0x2e,
	PK_BINBYTES = 0x42,
	PK_SHORT_BINBYTES = 0x43,
	PK_BINFLOAT = 0x47,
	PK_BININT = 0x4a,
	PK_BININT1 = 0x4b,
	PK_BININT2 = 0x4d,
	PK_NONE = 0x4e,
	PK_BINSTRING = 0x54,
	PK_SHORT_BINSTRING = 0x55,
	PK_BINUNICODE = 0x58,
	PK_EMPTY_LIST = 0x5d,
	PK_APPEND = 0x61,
	PK_DICT = 0x64,
	PK_APPENDS = 0x65,
	PK_BINGET = 0x68,
	PK_LONG_BINGET = 0x6a,
	PK_LIST = 0x6c,
	PK_BINPUT = 0x71,
	PK_LONG_BINPUT = 0x72,
	PK_SETITEM = 0x73,
	PK_TUPLE = 0x74,
	PK_SETITEMS = 0x75,
	PK_EMPTY_DICT = 0x7d,
	PK_PROTO = 0x80,
	PK_TUPLE1 = 0x85,
	PK_TUPLE2 = 0x86,
	PK_TUPLE3 = 0x87,
	PK_NEWTRUE = 0x88,
	PK_NEWFALSE = 0x89,
	PK_LONG1 = 0x8a,
	PK_LONG4 = 0x8b,
	PK_SHORT_BINUNICODE = 0x8c,
	PK_BINUNICODE8 = 0x8d,
	PK_BINBYTES8 = 0x8e,
	PK_MEMOIZE = 0x94,
	PK_FRAME = 0x95,
};

static inline uint64_t rd_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static inline uint64_t rd_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static inline double f64_of_bits(uint64_t bits)
{
	double f;
	memcpy(&f, &bits, sizeof(f));
	return f;
}

/** n contiguous values in @p a that stay where they are; NULL (and 0) for n == 0. */
int zeo_arena_alloc(struct zeo_arena *a, uint32_t n, struct zeo_val **out);

/** The pickle decoder (zeo_decode with ZEO_ENC_PICKLE). */
int zeo_pickle_decode(const uint8_t *buf, size_t len, struct zeo_arena *a, struct zeo_val **out,
		      const char **err);

#endif /* ZAP_ZEO_CODEC_INTERNAL_H */
