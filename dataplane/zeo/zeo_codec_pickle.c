/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO codec, the pickle decoder (zeo_codec_pickle.h; zeo_codec.c explains
 * the design and the bounds): a stack machine over the opcodes a stock ZEO
 * client sends, building zeo_value.h trees. Lists and dicts are mutable
 * while they sit on the stack (APPEND(S), SETITEM(S)); an open container
 * keeps its items in the stack slots right after its own and becomes a
 * compact arena array when it is consumed (by a parent, STOP, or a memo
 * GET). The memo maps a key to a box: the value itself, or the stack
 * slot of a still open container; a GET closes that container first, so the
 * result is always a tree.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "zeo_codec_pickle.h"
#include "zeo_pickle_ops.h"
#include "zeo_value_internal.h"

#include "base/bytes.h"

/** Scratch arrays start in the decoder context and move to the heap. */
static int vec_grow(void **p, uint32_t *cap, size_t elem, void *inline_buf, uint64_t need)
{
	if (need <= *cap)
		return 0;
	uint64_t ncap = (uint64_t)*cap * 2;
	if (ncap < need)
		ncap = need;
	if (ncap > UINT32_MAX || ncap > SIZE_MAX / elem)
		return -ENOMEM;
	void *q;
	if (*p == inline_buf) {
		q = malloc((size_t)ncap * elem);
		if (q && *cap)
			memcpy(q, *p, (size_t)*cap * elem);
	} else {
		q = realloc(*p, (size_t)ncap * elem);
	}
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = (uint32_t)ncap;
	return 0;
}

#define ERR_GLOBAL "pickle opcode 0x63 (GLOBAL) not allowed"
#define ERR_REDUCE "pickle opcode 0x52 (REDUCE) not allowed"

#define PK_REFUSE(op, name) [op] = "pickle opcode " #op " (" name ") not allowed"
/** Known opcodes outside the accepted subset, each with its reason. */
static const char *const pk_refused[256] = {
    PK_REFUSE(0x30, "POP"),
    PK_REFUSE(0x31, "POP_MARK"),
    PK_REFUSE(0x32, "DUP"),
    PK_REFUSE(0x46, "FLOAT"),
    PK_REFUSE(0x49, "INT"),
    PK_REFUSE(0x4c, "LONG"),
    PK_REFUSE(0x50, "PERSID"),
    PK_REFUSE(0x51, "BINPERSID"),
    PK_REFUSE(0x53, "STRING"),
    PK_REFUSE(0x56, "UNICODE"),
    PK_REFUSE(0x62, "BUILD"),
    PK_REFUSE(0x67, "GET"),
    PK_REFUSE(0x69, "INST"),
    PK_REFUSE(0x6f, "OBJ"),
    PK_REFUSE(0x70, "PUT"),
    PK_REFUSE(0x81, "NEWOBJ"),
    PK_REFUSE(0x82, "EXT1"),
    PK_REFUSE(0x83, "EXT2"),
    PK_REFUSE(0x84, "EXT4"),
    PK_REFUSE(0x8f, "EMPTY_SET"),
    PK_REFUSE(0x90, "ADDITEMS"),
    PK_REFUSE(0x91, "FROZENSET"),
    PK_REFUSE(0x92, "NEWOBJ_EX"),
    PK_REFUSE(0x93, "STACK_GLOBAL"),
    PK_REFUSE(0x96, "BYTEARRAY8"),
    PK_REFUSE(0x97, "NEXT_BUFFER"),
    PK_REFUSE(0x98, "READONLY_BUFFER"),
};

/** How big a value's tree is, counting a shared (memoized) subtree once per reference. */
struct pk_size {
	uint64_t bytes;	 /**< str and bytes payload */
	uint32_t values; /**< values, this one included */
	uint16_t depth;	 /**< container nesting; 0 for a scalar */
};

/** A stack slot: a value on the stack, or an item of the open container before it. */
struct pk_slot {
	struct zeo_val v; /**< open container: type only, items in the next slots */
	struct pk_size size;
	uint32_t owned; /**< open container: items in the slots after this one */
	int32_t box;	/**< open container that was memoized: its box; else -1 */
	bool open;
	bool dict_ctor; /**< GLOBAL builtins.dict, waiting for its REDUCE */
};

/** What a memo key refers to: a finished value or an open container's slot. */
struct pk_box {
	struct zeo_val v;
	struct pk_size size;
	uint32_t slot; /**< while open */
	bool open;
	bool dict_ctor;
};

/** Memo hash table entry (open addressing, linear probing). */
struct pk_memo {
	uint32_t key;
	uint32_t box1; /**< box index + 1; 0: empty entry */
};

#define PK_INLINE_SLOTS 32u
#define PK_INLINE_BOXES 8u
#define PK_INLINE_MEMO 16u /* power of two */

/*
 * Memo references can make a tree hold more str / bytes payload than the
 * message carries; writing such a tree again would expand it without bound.
 * The payload a tree holds is capped at this many times the input, plus a
 * little slack (a stock pickler's shared oids and names stay far below).
 */
#define PK_EXPAND_FACTOR 4u
#define PK_EXPAND_SLACK_BYTES 65536u

struct pk {
	const uint8_t *start, *p, *end;
	struct zeo_arena *a;
	const char *err;
	uint32_t nvals;
	uint64_t nbytes, max_bytes;

	struct pk_slot *slot; /* physical slots */
	uint32_t nslot, slot_cap;
	uint32_t *lst; /* the stack proper: slot index of each value */
	uint32_t nlst, lst_cap;
	uint32_t mark[ZEO_MAX_DEPTH]; /* stack heights */
	uint32_t nmark;
	struct pk_box *box;
	uint32_t nbox, box_cap;
	struct pk_memo *memo;
	uint32_t memo_cap, memo_len;

	struct pk_slot slot_inline[PK_INLINE_SLOTS];
	uint32_t lst_inline[PK_INLINE_SLOTS];
	struct pk_box box_inline[PK_INLINE_BOXES];
	struct pk_memo memo_inline[PK_INLINE_MEMO];
};

static int pk_fail(struct pk *k, int rc, const char *why)
{
	k->err = why;
	return rc;
}

/** Account for @p values new values holding @p bytes of payload. */
static int pk_count(struct pk *k, uint32_t values, uint64_t bytes)
{
	if (values > ZEO_MAX_VALUES - k->nvals)
		return pk_fail(k, -E2BIG, ERR_TOO_MANY);
	if (bytes > k->max_bytes - k->nbytes)
		return pk_fail(k, -E2BIG, "pickle memo references expand the message too much");
	k->nvals += values;
	k->nbytes += bytes;
	return 0;
}

/** Read @p n bytes of operand; NULL when the input ends first. */
static const uint8_t *pk_take(struct pk *k, uint64_t n)
{
	if ((uint64_t)(k->end - k->p) < n)
		return NULL;
	const uint8_t *q = k->p;
	k->p += n;
	return q;
}

/** Lowest stack index the current MARK lets an opcode touch. */
static uint32_t pk_fence(const struct pk *k)
{
	return k->nmark ? k->mark[k->nmark - 1] : 0;
}

static int pk_need_above(struct pk *k, uint32_t n)
{
	if (k->nlst - pk_fence(k) < n)
		return pk_fail(k, -EBADMSG, "pickle stack underflow");
	return 0;
}

static int pk_pop_mark(struct pk *k, uint32_t *from)
{
	if (k->nmark == 0)
		return pk_fail(k, -EBADMSG, "pickle MARK missing");
	*from = k->mark[--k->nmark];
	return 0;
}

static int pk_slots_reserve(struct pk *k, uint64_t n)
{
	if (vec_grow((void **)&k->slot, &k->slot_cap, sizeof(*k->slot), k->slot_inline, n) ||
	    vec_grow((void **)&k->lst, &k->lst_cap, sizeof(*k->lst), k->lst_inline, n))
		return pk_fail(k, -ENOMEM, ERR_NOMEM);
	return 0;
}

/** Push a finished value (already counted). */
static int pk_push(struct pk *k, const struct zeo_val *v, const struct pk_size *size)
{
	int rc = pk_slots_reserve(k, (uint64_t)k->nslot + 1);
	if (rc)
		return rc;
	k->slot[k->nslot] = (struct pk_slot){.v = *v, .size = *size, .box = -1};
	k->lst[k->nlst++] = k->nslot++;
	return 0;
}

static int pk_push_scalar(struct pk *k, const struct zeo_val *v)
{
	struct pk_size size = {.values = 1};
	if (v->type == ZEO_STR || v->type == ZEO_BYTES)
		size.bytes = v->s.len;
	int rc = pk_count(k, 1, size.bytes);
	if (rc)
		return rc;
	return pk_push(k, v, &size);
}

/** Turn the open container in slot @p i into a finished value in the arena. */
static int pk_close(struct pk *k, uint32_t i)
{
	struct pk_slot *s = &k->slot[i];
	if (!s->open)
		return 0;
	struct zeo_val *items;
	if (zeo_arena_alloc(k->a, s->owned, &items))
		return pk_fail(k, -ENOMEM, ERR_NOMEM);
	for (uint32_t j = 0; j < s->owned; j++)
		items[j] = k->slot[i + 1 + j].v;
	s->v.seq.items = items;
	s->v.seq.n = s->owned;
	s->owned = 0;
	s->open = false;
	if (s->box >= 0) {
		struct pk_box *b = &k->box[s->box];
		b->v = s->v;
		b->size = s->size;
		b->open = false;
		s->box = -1;
	}
	return 0;
}

/**
 * Close every value from stack index @p from up and size the container that
 * will hold them (themselves plus one value, one level deeper).
 */
static int pk_parent_of(struct pk *k, uint32_t from, struct pk_size *sum)
{
	*sum = (struct pk_size){.values = 1};
	uint16_t depth = 0;
	for (uint32_t i = from; i < k->nlst; i++) {
		int rc = pk_close(k, k->lst[i]);
		if (rc)
			return rc;
		if (k->slot[k->lst[i]].dict_ctor)
			return pk_fail(k, -EBADMSG, ERR_GLOBAL);
		const struct pk_size *c = &k->slot[k->lst[i]].size;
		sum->bytes += c->bytes;
		sum->values += c->values;
		if (c->depth > depth)
			depth = c->depth;
	}
	if (depth >= ZEO_MAX_DEPTH)
		return pk_fail(k, -EBADMSG, ERR_DEPTH);
	sum->depth = (uint16_t)(depth + 1);
	return 0;
}

/** TUPLE and friends: the values from stack index @p from up become one tuple. */
static int pk_build_tuple(struct pk *k, uint32_t from)
{
	uint32_t n = k->nlst - from;
	struct pk_size size;
	struct zeo_val *items;
	int rc = pk_count(k, 1, 0);
	if (rc == 0)
		rc = pk_parent_of(k, from, &size);
	if (rc)
		return rc;
	if (zeo_arena_alloc(k->a, n, &items))
		return pk_fail(k, -ENOMEM, ERR_NOMEM);
	for (uint32_t i = 0; i < n; i++)
		items[i] = k->slot[k->lst[from + i]].v;
	if (n) {
		k->nslot = k->lst[from];
		k->nlst = from;
	}
	struct zeo_val t = {.type = ZEO_TUPLE, .seq = {items, n}};
	return pk_push(k, &t, &size);
}

/**
 * EMPTY_LIST, EMPTY_DICT, LIST, DICT: a new open container whose items are
 * the values from stack index @p from up (none for the EMPTY_ forms).
 */
static int pk_make_open(struct pk *k, uint32_t from, enum zeo_type type)
{
	uint32_t n = k->nlst - from;
	struct pk_size size;
	if (type == ZEO_DICT && n % 2)
		return pk_fail(k, -EBADMSG, "pickle DICT with an odd number of values");
	int rc = pk_count(k, 1, 0);
	if (rc == 0)
		rc = pk_parent_of(k, from, &size);
	uint32_t base = n ? k->lst[from] : k->nslot;
	if (rc == 0)
		rc = pk_slots_reserve(k, (uint64_t)base + n + 1);
	if (rc)
		return rc;
	/* pack the items (slot index only grows with stack index), then make room */
	for (uint32_t i = 0; i < n; i++)
		k->slot[base + i] = k->slot[k->lst[from + i]];
	memmove(&k->slot[base + 1], &k->slot[base], (size_t)n * sizeof(*k->slot));
	k->slot[base] = (struct pk_slot){
	    .v = {.type = type}, .size = size, .owned = n, .box = -1, .open = true};
	k->nlst = from;
	k->lst[k->nlst++] = base;
	k->nslot = base + 1 + n;
	return 0;
}

/**
 * APPEND(S), SETITEM(S): the values from stack index @p from up go into the
 * open container just below them.
 */
static int pk_add_items(struct pk *k, uint32_t from, enum zeo_type type)
{
	uint32_t n = k->nlst - from;
	struct pk_size add;
	if (from == 0 || from - 1 < pk_fence(k))
		return pk_fail(k, -EBADMSG, "pickle stack underflow");
	uint32_t t = k->lst[from - 1];
	if (k->slot[t].v.type != type || !k->slot[t].open)
		return pk_fail(k, -EBADMSG,
			       type == ZEO_LIST ? "pickle APPEND(S) target is not an open list"
						: "pickle SETITEM(S) target is not an open dict");
	if (type == ZEO_DICT && n % 2)
		return pk_fail(k, -EBADMSG, "pickle SETITEMS with an odd number of values");
	int rc = pk_parent_of(k, from, &add);
	if (rc)
		return rc;
	struct pk_slot *c = &k->slot[t];
	uint32_t dest = t + 1 + c->owned;
	for (uint32_t i = 0; i < n; i++)
		k->slot[dest + i] = k->slot[k->lst[from + i]];
	c->owned += n;
	c->size.bytes += add.bytes;
	c->size.values += add.values - 1;
	if (add.depth > c->size.depth)
		c->size.depth = add.depth;
	k->nlst = from;
	k->nslot = dest + n;
	return 0;
}

static struct pk_memo *pk_memo_find(struct pk_memo *tab, uint32_t cap, uint32_t key)
{
	uint32_t i = (key * 2654435761u) & (cap - 1);
	while (tab[i].box1 && tab[i].key != key)
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

static int pk_memo_set(struct pk *k, uint32_t key, uint32_t box)
{
	if ((uint64_t)(k->memo_len + 1) * 2 > k->memo_cap) {
		uint64_t cap = (uint64_t)k->memo_cap * 2;
		if (cap > UINT32_MAX)
			return pk_fail(k, -ENOMEM, ERR_NOMEM);
		struct pk_memo *tab = calloc((size_t)cap, sizeof(*tab));
		if (!tab)
			return pk_fail(k, -ENOMEM, ERR_NOMEM);
		for (uint32_t i = 0; i < k->memo_cap; i++)
			if (k->memo[i].box1)
				*pk_memo_find(tab, (uint32_t)cap, k->memo[i].key) = k->memo[i];
		if (k->memo != k->memo_inline)
			free(k->memo);
		k->memo = tab;
		k->memo_cap = (uint32_t)cap;
	}
	struct pk_memo *e = pk_memo_find(k->memo, k->memo_cap, key);
	if (!e->box1)
		k->memo_len++;
	e->key = key;
	e->box1 = box + 1;
	return 0;
}

/** BINPUT, LONG_BINPUT, MEMOIZE: remember the top of the stack under @p key. */
static int pk_put(struct pk *k, uint32_t key)
{
	int rc = pk_need_above(k, 1);
	if (rc)
		return rc;
	uint32_t i = k->lst[k->nlst - 1];
	if (k->slot[i].open && k->slot[i].box >= 0)
		return pk_memo_set(k, key, (uint32_t)k->slot[i].box);
	if (k->nbox >= (uint32_t)INT32_MAX)
		return pk_fail(k, -E2BIG, ERR_TOO_MANY);
	if (vec_grow((void **)&k->box, &k->box_cap, sizeof(*k->box), k->box_inline,
		     (uint64_t)k->nbox + 1))
		return pk_fail(k, -ENOMEM, ERR_NOMEM);
	const struct pk_slot *s = &k->slot[i];
	k->box[k->nbox] = (struct pk_box){
	    .v = s->v, .size = s->size, .slot = i, .open = s->open, .dict_ctor = s->dict_ctor};
	if (s->open)
		k->slot[i].box = (int32_t)k->nbox;
	return pk_memo_set(k, key, k->nbox++);
}

/** BINGET, LONG_BINGET: push (a copy of) the value memoized under @p key. */
static int pk_get(struct pk *k, uint32_t key)
{
	const struct pk_memo *e = pk_memo_find(k->memo, k->memo_cap, key);
	if (!e->box1)
		return pk_fail(k, -EBADMSG, "pickle memo key not found");
	uint32_t b = e->box1 - 1;
	if (k->box[b].open) {
		int rc = pk_close(k, k->box[b].slot);
		if (rc)
			return rc;
	}
	struct pk_box v = k->box[b];
	int rc = pk_count(k, v.size.values, v.size.bytes);
	if (rc == 0)
		rc = pk_push(k, &v.v, &v.size);
	if (rc == 0)
		k->slot[k->nslot - 1].dict_ctor = v.dict_ctor;
	return rc;
}

/*
 * GLOBAL: only builtins.dict (__builtin__.dict from Python 2), which a
 * transaction's extension pickles with when it is a dict subclass whose
 * __reduce__ says so; REDUCE then builds the dict. Nothing is imported or
 * called: the pair is read as the dict it stands for. Every other global is
 * refused.
 */
static const uint8_t *pk_line(struct pk *k, size_t *len)
{
	const uint8_t *q = k->p, *nl = memchr(q, '\n', (size_t)(k->end - q));
	if (nl == NULL)
		return NULL;
	*len = (size_t)(nl - q);
	k->p = nl + 1;
	return q;
}

static bool pk_is(const uint8_t *q, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(q, want, len) == 0;
}

static int pk_global(struct pk *k)
{
	size_t ml, nl;
	const uint8_t *m = pk_line(k, &ml), *n = m ? pk_line(k, &nl) : NULL;
	if (n == NULL)
		return pk_fail(k, -EBADMSG, ERR_TRUNCATED);
	if (!(pk_is(m, ml, "builtins") || pk_is(m, ml, "__builtin__")) || !pk_is(n, nl, "dict"))
		return pk_fail(k, -EBADMSG, ERR_GLOBAL);
	struct zeo_val v = {.type = ZEO_NONE};
	int rc = pk_push_scalar(k, &v);
	if (rc == 0)
		k->slot[k->nslot - 1].dict_ctor = true;
	return rc;
}

/* One (key, value) pair of dict(pairs): a 2-tuple or a 2-list. */
static bool pk_pair(const struct zeo_val *p)
{
	return (p->type == ZEO_TUPLE || p->type == ZEO_LIST) && p->seq.n == 2;
}

/** REDUCE of builtins.dict with (), (pairs,) or (dict,): the dict. */
static int pk_reduce(struct pk *k)
{
	int rc = pk_need_above(k, 2);
	if (rc)
		return rc;
	struct pk_slot *fn = &k->slot[k->lst[k->nlst - 2]];
	uint32_t ai = k->lst[k->nlst - 1];
	if (!fn->dict_ctor || k->slot[ai].dict_ctor)
		return pk_fail(k, -EBADMSG, ERR_REDUCE);
	if ((rc = pk_close(k, ai)))
		return rc;
	const struct zeo_val *args = &k->slot[ai].v;
	struct pk_size size = k->slot[ai].size;
	if (args->type != ZEO_TUPLE || args->seq.n > 1)
		return pk_fail(k, -EBADMSG, ERR_REDUCE);
	struct zeo_val d = {.type = ZEO_DICT};
	if (args->seq.n == 1) {
		const struct zeo_val *src = &args->seq.items[0];
		if (src->type == ZEO_DICT) {
			d.seq = src->seq;
		} else if (src->type == ZEO_TUPLE || src->type == ZEO_LIST) {
			uint32_t m = src->seq.n;
			for (uint32_t i = 0; i < m; i++)
				if (!pk_pair(&src->seq.items[i]))
					return pk_fail(k, -EBADMSG, ERR_REDUCE);
			if (m > UINT32_MAX / 2 || zeo_arena_alloc(k->a, 2 * m, &d.seq.items))
				return pk_fail(k, -ENOMEM, ERR_NOMEM);
			for (uint32_t i = 0; i < m; i++) {
				d.seq.items[2 * i] = src->seq.items[i].seq.items[0];
				d.seq.items[2 * i + 1] = src->seq.items[i].seq.items[1];
			}
			d.seq.n = 2 * m;
		} else {
			return pk_fail(k, -EBADMSG, ERR_REDUCE);
		}
	}
	if ((rc = pk_count(k, 1, 0)))
		return rc;
	k->nslot = k->lst[k->nlst - 2];
	k->nlst -= 2;
	return pk_push(k, &d, &size);
}

/** LONG1 / LONG4 operand: little-endian two's complement of any length. */
static int pk_long(struct pk *k, const uint8_t *p, uint64_t n)
{
	struct zeo_val v = {.type = ZEO_INT};
	if (n == 0)
		return pk_push_scalar(k, &v);
	bool neg = p[n - 1] & 0x80;
	uint8_t fill = neg ? 0xff : 0x00;
	unsigned low = n < 8 ? (unsigned)n : 8;
	uint64_t u = zap_get_le(p, low);
	for (uint64_t i = 8; i < n; i++)
		if (p[i] != fill)
			return pk_fail(k, -E2BIG, "pickle int beyond 64 bits");
	if (neg && n > 8 && !(p[7] & 0x80))
		return pk_fail(k, -E2BIG, "pickle int beyond 64 bits");
	if (neg && low < 8)
		u |= ~(uint64_t)0 << (8 * low);
	if (!neg && u > (uint64_t)INT64_MAX) {
		v.big = true;
		v.u = u;
	} else {
		v.i = (int64_t)u;
	}
	return pk_push_scalar(k, &v);
}

/** A str or bytes operand of @p len bytes, pointing into the input. */
static int pk_str(struct pk *k, enum zeo_type type, uint64_t len)
{
	const uint8_t *q = pk_take(k, len);
	if (!q)
		return pk_fail(k, -EBADMSG, ERR_TRUNCATED);
	if (len > UINT32_MAX)
		return pk_fail(k, -E2BIG, ERR_STR_BIG);
	struct zeo_val v = {.type = type, .s = {q, (uint32_t)len}};
	return pk_push_scalar(k, &v);
}

/** Opcodes with a fixed-size operand of @p n bytes; NULL when truncated. */
static const uint8_t *pk_arg(struct pk *k, unsigned n)
{
	const uint8_t *q = pk_take(k, n);
	if (!q)
		k->err = ERR_TRUNCATED;
	return q;
}

/** The scalar opcodes. */
static int pk_scalar(struct pk *k, uint8_t op)
{
	struct zeo_val v = {.type = ZEO_INT};
	const uint8_t *q;
	switch (op) {
	case PK_NONE:
		v.type = ZEO_NONE;
		return pk_push_scalar(k, &v);
	case PK_NEWTRUE:
	case PK_NEWFALSE:
		v.type = ZEO_BOOL;
		v.b = op == PK_NEWTRUE;
		return pk_push_scalar(k, &v);
	case PK_BININT1:
		if (!(q = pk_arg(k, 1)))
			return -EBADMSG;
		v.i = q[0];
		return pk_push_scalar(k, &v);
	case PK_BININT2:
		if (!(q = pk_arg(k, 2)))
			return -EBADMSG;
		v.i = (int64_t)zap_get_le16(q);
		return pk_push_scalar(k, &v);
	case PK_BININT:
		if (!(q = pk_arg(k, 4)))
			return -EBADMSG;
		v.i = (int32_t)zap_get_le32(q);
		return pk_push_scalar(k, &v);
	case PK_LONG1:
		if (!(q = pk_arg(k, 1)))
			return -EBADMSG;
		if (!(q = pk_take(k, q[0])))
			return pk_fail(k, -EBADMSG, ERR_TRUNCATED);
		return pk_long(k, q, (uint64_t)(k->p - q));
	case PK_LONG4: {
		if (!(q = pk_arg(k, 4)))
			return -EBADMSG;
		int32_t n = (int32_t)zap_get_le32(q);
		if (n < 0)
			return pk_fail(k, -EBADMSG, "pickle LONG4 with a negative length");
		if (!(q = pk_take(k, (uint64_t)n)))
			return pk_fail(k, -EBADMSG, ERR_TRUNCATED);
		return pk_long(k, q, (uint64_t)n);
	}
	case PK_BINFLOAT:
		if (!(q = pk_arg(k, 8)))
			return -EBADMSG;
		v.type = ZEO_FLOAT;
		v.f = f64_of_bits(zap_get_be64(q));
		return pk_push_scalar(k, &v);
	default:
		return pk_fail(k, -EBADMSG, "unknown pickle opcode");
	}
}

/** The str and bytes opcodes. */
static int pk_string(struct pk *k, uint8_t op)
{
	enum zeo_type type = ZEO_BYTES;
	unsigned size;
	switch (op) {
	case PK_SHORT_BINUNICODE:
		type = ZEO_STR;
		size = 1;
		break;
	case PK_BINUNICODE:
		type = ZEO_STR;
		size = 4;
		break;
	case PK_BINUNICODE8:
		type = ZEO_STR;
		size = 8;
		break;
	case PK_SHORT_BINBYTES:
	case PK_SHORT_BINSTRING:
		size = 1;
		break;
	case PK_BINBYTES:
	case PK_BINSTRING:
		size = 4;
		break;
	default: /* PK_BINBYTES8 */
		size = 8;
		break;
	}
	const uint8_t *q = pk_arg(k, size);
	if (!q)
		return -EBADMSG;
	uint64_t len = zap_get_le(q, size);
	if (op == PK_BINSTRING && (int32_t)(uint32_t)len < 0)
		return pk_fail(k, -EBADMSG, "pickle BINSTRING with a negative length");
	return pk_str(k, type, len);
}

/** STOP: exactly one value left and no MARK; it becomes the root. */
static int pk_stop(struct pk *k, struct zeo_val **out)
{
	if (k->nmark)
		return pk_fail(k, -EBADMSG, "pickle STOP with a MARK open");
	if (k->nlst != 1)
		return pk_fail(k, -EBADMSG, "pickle STOP with no value or several on the stack");
	if (k->slot[k->lst[0]].dict_ctor)
		return pk_fail(k, -EBADMSG, ERR_GLOBAL);
	int rc = pk_close(k, k->lst[0]);
	if (rc)
		return rc;
	if (k->p != k->end)
		return pk_fail(k, -EBADMSG, "trailing bytes after STOP");
	if (zeo_arena_alloc(k->a, 1, out))
		return pk_fail(k, -ENOMEM, ERR_NOMEM);
	**out = k->slot[k->lst[0]].v;
	return 0;
}

/** One opcode other than STOP. */
static int pk_step(struct pk *k, uint8_t op)
{
	uint32_t from;
	const uint8_t *q;
	int rc;
	switch (op) {
	case PK_PROTO:
		if (k->p - 1 != k->start)
			return pk_fail(k, -EBADMSG, "pickle PROTO not at the start");
		if (!(q = pk_arg(k, 1)))
			return -EBADMSG;
		if (q[0] < PK_PROTO_MIN || q[0] > PK_PROTO_MAX)
			return pk_fail(k, -EBADMSG, "unsupported pickle protocol");
		return 0;
	case PK_FRAME:
		if (!(q = pk_arg(k, 8)))
			return -EBADMSG;
		if (zap_get_le64(q) > (uint64_t)(k->end - k->p))
			return pk_fail(k, -EBADMSG, ERR_TRUNCATED);
		return 0;
	case PK_MARK:
		if (k->nmark == ZEO_MAX_DEPTH)
			return pk_fail(k, -EBADMSG, ERR_DEPTH);
		k->mark[k->nmark++] = k->nlst;
		return 0;
	case PK_EMPTY_TUPLE:
		return pk_build_tuple(k, k->nlst);
	case PK_TUPLE1:
	case PK_TUPLE2:
	case PK_TUPLE3:
		if ((rc = pk_need_above(k, op - PK_TUPLE1 + 1u)))
			return rc;
		return pk_build_tuple(k, k->nlst - (op - PK_TUPLE1 + 1u));
	case PK_TUPLE:
		if ((rc = pk_pop_mark(k, &from)))
			return rc;
		return pk_build_tuple(k, from);
	case PK_EMPTY_LIST:
		return pk_make_open(k, k->nlst, ZEO_LIST);
	case PK_EMPTY_DICT:
		return pk_make_open(k, k->nlst, ZEO_DICT);
	case PK_LIST:
		if ((rc = pk_pop_mark(k, &from)))
			return rc;
		return pk_make_open(k, from, ZEO_LIST);
	case PK_DICT:
		if ((rc = pk_pop_mark(k, &from)))
			return rc;
		return pk_make_open(k, from, ZEO_DICT);
	case PK_APPEND:
		if ((rc = pk_need_above(k, 2)))
			return rc;
		return pk_add_items(k, k->nlst - 1, ZEO_LIST);
	case PK_APPENDS:
		if ((rc = pk_pop_mark(k, &from)))
			return rc;
		return pk_add_items(k, from, ZEO_LIST);
	case PK_SETITEM:
		if ((rc = pk_need_above(k, 3)))
			return rc;
		return pk_add_items(k, k->nlst - 2, ZEO_DICT);
	case PK_SETITEMS:
		if ((rc = pk_pop_mark(k, &from)))
			return rc;
		return pk_add_items(k, from, ZEO_DICT);
	case PK_BINPUT:
	case PK_BINGET:
	case PK_LONG_BINPUT:
	case PK_LONG_BINGET: {
		unsigned size = op == PK_BINPUT || op == PK_BINGET ? 1 : 4;
		if (!(q = pk_arg(k, size)))
			return -EBADMSG;
		uint32_t key = (uint32_t)zap_get_le(q, size);
		return op == PK_BINPUT || op == PK_LONG_BINPUT ? pk_put(k, key) : pk_get(k, key);
	}
	case PK_MEMOIZE:
		return pk_put(k, k->memo_len);
	case PK_GLOBAL:
		return pk_global(k);
	case PK_REDUCE:
		return pk_reduce(k);
	case PK_SHORT_BINUNICODE:
	case PK_BINUNICODE:
	case PK_BINUNICODE8:
	case PK_SHORT_BINBYTES:
	case PK_BINBYTES:
	case PK_BINBYTES8:
	case PK_SHORT_BINSTRING:
	case PK_BINSTRING:
		return pk_string(k, op);
	default:
		if (pk_refused[op])
			return pk_fail(k, -EBADMSG, pk_refused[op]);
		return pk_scalar(k, op);
	}
}

int zeo_pickle_decode(const uint8_t *buf, size_t len, struct zeo_arena *a, struct zeo_val **out,
		      const char **err)
{
	struct pk ctx, *k = &ctx;
	memset(k, 0, offsetof(struct pk, slot_inline));
	memset(k->memo_inline, 0, sizeof(k->memo_inline));
	k->start = k->p = buf;
	k->end = buf + len;
	k->max_bytes = len > (UINT64_MAX - PK_EXPAND_SLACK_BYTES) / PK_EXPAND_FACTOR
			   ? UINT64_MAX
			   : (uint64_t)len * PK_EXPAND_FACTOR + PK_EXPAND_SLACK_BYTES;
	k->a = a;
	k->slot = k->slot_inline;
	k->slot_cap = PK_INLINE_SLOTS;
	k->lst = k->lst_inline;
	k->lst_cap = PK_INLINE_SLOTS;
	k->box = k->box_inline;
	k->box_cap = PK_INLINE_BOXES;
	k->memo = k->memo_inline;
	k->memo_cap = PK_INLINE_MEMO;

	int rc;
	for (;;) {
		if (k->p == k->end) {
			rc = pk_fail(k, -EBADMSG, ERR_TRUNCATED);
			break;
		}
		uint8_t op = *k->p++;
		rc = op == PK_STOP ? pk_stop(k, out) : pk_step(k, op);
		if (rc || op == PK_STOP)
			break;
	}
	*err = k->err;
	if (k->slot != k->slot_inline)
		free(k->slot);
	if (k->lst != k->lst_inline)
		free(k->lst);
	if (k->box != k->box_inline)
		free(k->box);
	if (k->memo != k->memo_inline)
		free(k->memo);
	return rc;
}
