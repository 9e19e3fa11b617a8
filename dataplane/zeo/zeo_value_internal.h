/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO values, internals shared by the decoders that build value trees
 * (zeo_codec.c for msgpack, zeo_codec_pickle.c for pickles) and the ZODB
 * record code: the decoders' one-line error reasons, arena allocation and
 * the float of a BINFLOAT / msgpack float64 operand.
 */
#ifndef ZAP_ZEO_VALUE_INTERNAL_H
#define ZAP_ZEO_VALUE_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "zeo_value.h"

#define ERR_TRUNCATED "truncated"
#define ERR_NOMEM "out of memory"
#define ERR_TOO_MANY "more than ZEO_MAX_VALUES values"
#define ERR_DEPTH "nesting deeper than 64"
#define ERR_STR_BIG "string or bytes longer than 4 GiB"

_Static_assert(ZEO_MAX_DEPTH == 64, "ERR_DEPTH names the bound");

/** The double whose IEEE 754 bits are @p bits. */
static inline double f64_of_bits(uint64_t bits)
{
	double f;
	memcpy(&f, &bits, sizeof(f));
	return f;
}

/** n contiguous values in @p a that stay where they are; NULL (and 0) for n == 0. */
int zeo_arena_alloc(struct zeo_arena *a, uint32_t n, struct zeo_val **out);

#endif /* ZAP_ZEO_VALUE_INTERNAL_H */
