/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZODB record decoder internals shared by zodb_record.c (the opcode
 * dispatch, references and the public entry points) and zodb_record_vm.c
 * (the machine the opcodes run on: allocation, stack, marks, memo,
 * containers and scalar values).
 *
 * Every helper takes the machine @p z and returns 0 or a negative errno
 * (-EINVAL malformed pickle, -E2BIG a ZODB_REC_MAX_* bound, -ENOMEM), or
 * NULL where it returns a pointer. The stack pops stop at the innermost MARK
 * (zr_fence()); in values mode every value added to a container, or fetched
 * from the memo, is closed (zodb_record.c explains why).
 */
#ifndef ZAP_ZODB_RECORD_INTERNAL_H
#define ZAP_ZODB_RECORD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zodb_record.h"

struct zr_chunk; /* zodb_record_vm.c: a chunk of the node allocator */
struct zr_memo;	 /* zodb_record_vm.c: an entry of the memo hash table */

/** The machine: input, mode, allocator, stack, marks, memo and the reference callback. */
struct zr {
	const uint8_t *start, *p, *end;
	bool values; /* values mode; else references mode */
	uint64_t max_bytes;
	struct zr_chunk *mem;
	struct zodb_val **stk;
	uint32_t nstk, stk_cap;
	uint32_t *mark;
	uint32_t nmark, mark_cap;
	struct zr_memo *memo;
	uint32_t memo_cap, memo_len;
	int (*fn)(void *arg, uint64_t oid);
	void *arg;
	int fn_rc; /* nonzero: fn stopped the scan */
};

/* ------------------------------------------------------------ memory */

/** Frees a chain of chunks (struct zr's mem, zodb_rec's mem). */
void zr_mem_free(struct zr_chunk *c);
/** Grows the malloc'd array @p p of @p elem-byte items to hold @p need items. */
int zr_grow(void **p, uint32_t *cap, size_t elem, uint64_t need);
/** A zeroed node of @p type and size 1 from the chunks; NULL out of memory. */
struct zodb_val *zr_new(struct zr *z, enum zodb_type type);

/* ------------------------------------------------------------ the stack */

/** Pushes @p v; -ENOMEM when @p v is NULL (a failed zr_new()). */
int zr_push(struct zr *z, struct zodb_val *v);
/** Stack index of the innermost MARK, 0 with none. */
uint32_t zr_fence(const struct zr *z);
/** Pops or peeks above the innermost MARK; NULL when nothing is there. */
struct zodb_val *zr_pop(struct zr *z);
struct zodb_val *zr_top(struct zr *z);
/** Pops the innermost MARK into @p from (its stack index). */
int zr_pop_mark(struct zr *z, uint32_t *from);
/** The next @p n input bytes; NULL past the end. */
const uint8_t *zr_take(struct zr *z, uint64_t n);
const uint8_t *zr_line(struct zr *z, uint32_t *len);

/* ------------------------------------------------------------ containers */

int zr_account(struct zr *z, struct zodb_val *c, struct zodb_val *item);
int zr_build(struct zr *z, uint32_t from, enum zodb_type type);
int zr_add_items(struct zr *z, uint32_t from, enum zodb_type type);

/* ------------------------------------------------------------ memo */

/** PUT: the top of the stack under @p key. */
int zr_put(struct zr *z, uint32_t key);
/** GET: pushes the value under @p key (and closes it in values mode). */
int zr_get(struct zr *z, uint32_t key);
int zr_text_key(struct zr *z, uint32_t *key);

/* ------------------------------------------------------------ scalars */

int zr_push_int(struct zr *z, int64_t i);
int zr_long(struct zr *z, const uint8_t *p, uint64_t n);
int zr_counted(struct zr *z, enum zodb_type type, unsigned size);
/** Pushes a ZODB_GLOBAL module.name (both point into the input). */
int zr_global(struct zr *z, const uint8_t *mod, uint32_t mod_len, const uint8_t *name,
	      uint32_t name_len);

#endif /* ZAP_ZODB_RECORD_INTERNAL_H */
