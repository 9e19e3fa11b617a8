/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap ZEO codec: the two message encodings of the ZEO 5 protocol
 * (docs/zeo.md): "Z" = Python pickle protocol 3 without globals, "M" =
 * msgpack. Both decode into the same small value tree and are written by the
 * same writer calls, so the gateway never looks at the encoding.
 *
 * The decoder is strict: it accepts only the data opcodes a stock client
 * sends (None, bools, ints, floats, str, bytes, tuples, lists, dicts, and the
 * memo / frame opcodes a pickler may add) and refuses everything else (globals,
 * REDUCE, BUILD, persistent ids, ext types) with a one-line reason. Nesting is
 * bounded (ZEO_MAX_DEPTH) and every length is checked against the input.
 *
 * Values live in a per-message arena; strings and bytes point into the input
 * buffer (zero copy), so both must outlive the value tree. Arena values never
 * move: decoding another message into the same arena leaves the earlier tree
 * valid until zeo_arena_reset(). A value memoized by the pickle and referenced
 * twice shares its items (trees are read-only).
 *
 * Threading: no global state; one arena / buffer per thread.
 */
#ifndef ZAP_ZEO_CODEC_H
#define ZAP_ZEO_CODEC_H

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

/** Message encodings. */
enum zeo_enc {
	ZEO_ENC_PICKLE = 'Z',  /**< pickle protocol 3 ("Z5") */
	ZEO_ENC_MSGPACK = 'M', /**< msgpack ("M5") */
};

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

/**
 * Decode one message payload (without the 4-byte length prefix).
 *
 * @param enc  ZEO_ENC_PICKLE: must start with PROTO (0x80, 2..5) or be a
 *   protocol-1 pickle without it (binary opcodes only, like a ZEO 5.0
 *   heartbeat), end with STOP, with nothing after STOP and exactly one value
 *   on the stack;
 *   ZEO_ENC_MSGPACK: exactly one object, nothing after it.
 * @param out  set to the root value (in @p a).
 * @param err  on failure set to a static one-line reason ("pickle opcode
 *   0x63 (GLOBAL) not allowed", "truncated", "nesting deeper than 64", ...).
 * @return 0; -EBADMSG not a valid message of the accepted subset;
 *   -E2BIG more than ZEO_MAX_VALUES values (a memoized pickle value counts
 *   once per reference), an int beyond 64 bits, or pickle memo references
 *   that make the tree's str / bytes payload more than 4 times the input
 *   plus 64 KiB; -ENOMEM.
 */
int zeo_decode(enum zeo_enc enc, const void *buf, size_t len, struct zeo_arena *a,
	       struct zeo_val **out, const char **err);

/** A growable output buffer; oom sticks once an allocation failed. */
struct zeo_buf {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

void zeo_buf_init(struct zeo_buf *b);
void zeo_buf_free(struct zeo_buf *b);
/** Empty the buffer, keep its memory, clear oom. */
void zeo_buf_reset(struct zeo_buf *b);
/** Append raw bytes. */
void zeo_buf_put(struct zeo_buf *b, const void *p, size_t len);

/*
 * The writer. A message is zeo_w_begin(), exactly one value (usually a
 * 4-tuple), zeo_w_end(). Containers take their item count up front (msgpack
 * needs it) and must be closed with the matching *_end() after exactly that
 * many values (a dict: n pairs = 2n values). Pickle output uses only the
 * opcodes ZEO_PROTOCOL allows a server to emit: PROTO 3, MARK, TUPLE,
 * EMPTY_TUPLE, TUPLE1-3, EMPTY_LIST, APPEND(S), EMPTY_DICT, SETITEM(S), NONE,
 * NEWTRUE, NEWFALSE, BININT1/2, BININT, LONG1, BINFLOAT, BINUNICODE,
 * SHORT_BINBYTES/BINBYTES, STOP, in the forms Python's pickler picks (tuples
 * of 1-3 items TUPLE1-3, one list item APPEND, one dict pair SETITEM; a long
 * list or dict is one APPENDS / SETITEMS batch). msgpack output uses the
 * smallest form of each int and length, float64, bin for bytes, str for text,
 * arrays for tuples and lists. A length that cannot be encoded (> 4 GiB)
 * sets oom.
 */
void zeo_w_begin(struct zeo_buf *b, enum zeo_enc enc);
void zeo_w_end(struct zeo_buf *b, enum zeo_enc enc);
void zeo_w_none(struct zeo_buf *b, enum zeo_enc enc);
void zeo_w_bool(struct zeo_buf *b, enum zeo_enc enc, bool v);
void zeo_w_int(struct zeo_buf *b, enum zeo_enc enc, int64_t v);
void zeo_w_uint(struct zeo_buf *b, enum zeo_enc enc, uint64_t v);
void zeo_w_float(struct zeo_buf *b, enum zeo_enc enc, double v);
void zeo_w_str(struct zeo_buf *b, enum zeo_enc enc, const void *p, size_t len);
/** zeo_w_str() of a NUL-terminated string. */
void zeo_w_cstr(struct zeo_buf *b, enum zeo_enc enc, const char *s);
void zeo_w_bytes(struct zeo_buf *b, enum zeo_enc enc, const void *p, size_t len);
/** 8 bytes big-endian: an oid or a tid as ZEO sends them. */
void zeo_w_u64be(struct zeo_buf *b, enum zeo_enc enc, uint64_t v);
void zeo_w_tuple_begin(struct zeo_buf *b, enum zeo_enc enc, uint32_t n);
void zeo_w_tuple_end(struct zeo_buf *b, enum zeo_enc enc, uint32_t n);
void zeo_w_list_begin(struct zeo_buf *b, enum zeo_enc enc, uint32_t n);
void zeo_w_list_end(struct zeo_buf *b, enum zeo_enc enc, uint32_t n);
/** @p n is the number of key/value pairs. */
void zeo_w_dict_begin(struct zeo_buf *b, enum zeo_enc enc, uint32_t n);
void zeo_w_dict_end(struct zeo_buf *b, enum zeo_enc enc, uint32_t n);
/** Write a decoded value again (e.g. echo a msgid), in either encoding. */
void zeo_w_val(struct zeo_buf *b, enum zeo_enc enc, const struct zeo_val *v);

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
#endif /* ZAP_ZEO_CODEC_H */
