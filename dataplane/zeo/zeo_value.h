/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap ZEO values: the small value tree both ZEO 5 message encodings decode
 * into (zeo_codec.h), the arena the trees live in and the helpers the
 * gateway reads them with.
 *
 * Values live in a per-message arena; strings and bytes point into the input
 * buffer (zero copy), so both must outlive the value tree. Arena values never
 * move: decoding another message into the same arena leaves the earlier tree
 * valid until zeo_arena_reset(). A value memoized by a pickle and referenced
 * twice shares its items (trees are read-only).
 *
 * Threading: no global state; one arena per thread.
 */
#ifndef ZAP_ZEO_VALUE_H
#define ZAP_ZEO_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Deepest container nesting the decoder accepts. */
#define ZEO_MAX_DEPTH 64u
/** Most values one message may decode into. */
#define ZEO_MAX_VALUES (1u << 20)

/** Value types. */
enum zeo_type {
	ZEO_NONE = 0,
	ZEO_BOOL,
	ZEO_INT,   /**< i, or u when big (value >= 2^63) */
	ZEO_FLOAT, /**< f */
	ZEO_STR,   /**< s: UTF-8 text (not validated beyond length) */
	ZEO_BYTES, /**< s: bytes */
	ZEO_TUPLE, /**< seq */
	ZEO_LIST,  /**< seq */
	ZEO_DICT,  /**< seq: 2 * n values, key then value */
};

/** One decoded value. */
struct zeo_val {
	uint8_t type; /**< enum zeo_type */
	bool big;     /**< ZEO_INT: the value is u (>= 2^63), not i */
	union {
		bool b;
		int64_t i;
		uint64_t u;
		double f;
		struct {
			const uint8_t *p; /**< into the input buffer */
			uint32_t len;
		} s;
		struct {
			struct zeo_val *items; /**< in the arena */
			uint32_t n;	       /**< items; for a dict 2 * pairs */
		} seq;
	};
};

/** Per-message allocation for decoded values. */
struct zeo_arena {
	struct zeo_val *vals;
	uint32_t used, cap;
};

/** Init an empty arena (no allocation yet). */
void zeo_arena_init(struct zeo_arena *a);
/** Forget the values of the last message, keep the memory. */
void zeo_arena_reset(struct zeo_arena *a);
/** Free the arena's memory. */
void zeo_arena_free(struct zeo_arena *a);

/* ---------------------------------------------------------------- helpers */

/** 1 when @p v is a str equal to @p s. */
bool zeo_val_is_str(const struct zeo_val *v, const char *s);
/** 1 when @p v is an int (or bool) that fits int64; sets *out. */
bool zeo_val_int(const struct zeo_val *v, int64_t *out);
/** 1 when @p v is 8 bytes; sets *out to their big-endian value (oid / tid). */
bool zeo_val_u64be(const struct zeo_val *v, uint64_t *out);
/** Python truthiness of a scalar or container. */
bool zeo_val_truthy(const struct zeo_val *v);
/**
 * Structural equality as Python's ==: ints compare by value, bool == int,
 * int == float when the float is that integer, tuple != list, dicts compare
 * by keys and values in any order (a later duplicate key wins).
 */
bool zeo_val_equal(const struct zeo_val *a, const struct zeo_val *b);
/** Dict lookup by str key (the last pair wins); NULL when absent or @p d is not a dict. */
const struct zeo_val *zeo_dict_get(const struct zeo_val *d, const char *key);

#ifdef __cplusplus
}
#endif
#endif /* ZAP_ZEO_VALUE_H */
