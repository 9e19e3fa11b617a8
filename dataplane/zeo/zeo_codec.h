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
 * The value tree, its arena and the helpers on values are zeo_value.h
 * (included here): strings and bytes point into the input buffer, so the
 * input must outlive the tree.
 *
 * Threading: no global state; one arena / buffer per thread.
 */
#ifndef ZAP_ZEO_CODEC_H
#define ZAP_ZEO_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zeo_value.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Message encodings. */
enum zeo_enc {
	ZEO_ENC_PICKLE = 'Z',  /**< pickle protocol 3 ("Z5") */
	ZEO_ENC_MSGPACK = 'M', /**< msgpack ("M5") */
};

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
 * opcodes the ZEO 5 protocol allows a server to emit: PROTO 3, MARK, TUPLE,
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

#ifdef __cplusplus
}
#endif
#endif /* ZAP_ZEO_CODEC_H */
