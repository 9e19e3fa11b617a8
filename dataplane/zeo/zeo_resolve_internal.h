/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap native conflict resolution internals shared by zeo_resolve.c (class
 * dispatch, the merges, output) and zeo_resolve_cmp.c (key order, value
 * equality and int arithmetic on decoded record values).
 */
#ifndef ZAP_ZEO_RESOLVE_INTERNAL_H
#define ZAP_ZEO_RESOLVE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zodb_record.h"

/** Key types zap orders natively (one per bucket set). */
enum rs_key_kind {
	RS_KEY_BAD = -1,
	RS_KEY_INT = 0,
	RS_KEY_FLOAT,
	RS_KEY_STR,
	RS_KEY_BYTES,
};

/**
 * Result of comparing two values for equality the way both BTrees
 * implementations do (Python's `==`; C's `<` then `==`).
 */
enum rs_eq {
	RS_EQ = 0,     /**< equal */
	RS_NE = 1,     /**< not equal, and ordering them raises nothing */
	RS_RAISE = 2,  /**< comparing raises in both implementations (persistent refs) */
	RS_UNSURE = 3, /**< the implementations may disagree: leave it to the client */
};

/** The kind of a key; RS_KEY_BAD for bools, NaN and other types. */
enum rs_key_kind rs_key_kind(const struct zodb_val *v);
/** -1, 0, 1: Python order of two keys of the same kind. */
int rs_key_cmp(const struct zodb_val *a, const struct zodb_val *b);
/** Equality of two values (see enum rs_eq). */
enum rs_eq rs_val_eq(const struct zodb_val *a, const struct zodb_val *b);

/** Widest int (bytes of two's complement) Length arithmetic accepts. */
#define RS_INT_MAX_BYTES 4096u

/**
 * Python's c + n - o on ints, pickled (BININT* or LONG1/LONG4) into @p b.
 * @return 0; -EINVAL an operand is not an int (bools refused) or wider than
 *   RS_INT_MAX_BYTES; -ENOMEM.
 */
int rs_int_add3(struct zeo_buf *b, const struct zodb_val *c, const struct zodb_val *n,
		const struct zodb_val *o);

#endif /* ZAP_ZEO_RESOLVE_INTERNAL_H */
