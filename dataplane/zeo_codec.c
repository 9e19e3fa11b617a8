/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO codec (zeo_codec.h): a strict decoder and a writer for the two ZEO 5
 * message encodings, pickle protocol 3 ("Z") and msgpack ("M").
 *
 * Sections, in this order:
 *  1. the arena: values never move once allocated. It is a chain of chunks;
 *     a chunk that is too small is not grown in place but followed by a
 *     bigger one, so item pointers handed out stay valid until reset.
 *  2. the pickle decoder: a stack machine over the accepted opcodes. Lists
 *     and dicts are mutable while they sit on the stack (APPEND(S),
 *     SETITEM(S)); an open container keeps its items in the stack slots
 *     right after its own and becomes a compact arena array when it is
 *     consumed (by a parent, STOP, or a memo GET). Each value is copied into
 *     the arena once, so decoding is O(n). The memo maps a key to a box: the
 *     value itself, or the stack slot of a still open container. A GET
 *     closes that container first, so a container can never contain itself:
 *     the result is always a tree (shared subtrees allowed, read-only).
 *  3. the msgpack decoder: recursive descent, depth bounded.
 *  4. the writer.
 *  5. the helpers on decoded values.
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

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ 1. arena */

/** One chunk of values; zeo_arena.vals points at the newest chunk's vals. */
struct zeo_chunk {
	struct zeo_chunk *prev;
	struct zeo_val vals[];
};

/** Smallest chunk, in values. */
#define ZEO_CHUNK_MIN_VALS 64u

static struct zeo_chunk *chunk_of(struct zeo_val *vals)
{
	return (struct zeo_chunk *)(void *)((char *)vals - offsetof(struct zeo_chunk, vals));
}

static void chunks_free_older(struct zeo_chunk *c)
{
	struct zeo_chunk *p = c->prev;
	c->prev = NULL;
	while (p) {
		struct zeo_chunk *next = p->prev;
		free(p);
		p = next;
	}
}

void zeo_arena_init(struct zeo_arena *a)
{
	a->vals = NULL;
	a->used = 0;
	a->cap = 0;
}

void zeo_arena_reset(struct zeo_arena *a)
{
	if (a->vals)
		chunks_free_older(chunk_of(a->vals));
	a->used = 0;
}

void zeo_arena_free(struct zeo_arena *a)
{
	if (a->vals) {
		struct zeo_chunk *c = chunk_of(a->vals);
		chunks_free_older(c);
		free(c);
	}
	zeo_arena_init(a);
}

/** n contiguous values that stay where they are; NULL (and 0) for n == 0. */
static int arena_alloc(struct zeo_arena *a, uint32_t n, struct zeo_val **out)
{
	*out = NULL;
	if (n == 0)
		return 0;
	if (a->cap - a->used < n) {
		uint64_t cap = (uint64_t)a->cap * 2;
		if (cap < n)
			cap = n;
		if (cap < ZEO_CHUNK_MIN_VALS)
			cap = ZEO_CHUNK_MIN_VALS;
		if (cap > UINT32_MAX ||
		    cap > (SIZE_MAX - sizeof(struct zeo_chunk)) / sizeof(struct zeo_val))
			return -ENOMEM;
		struct zeo_chunk *c = malloc(sizeof(*c) + (size_t)cap * sizeof(struct zeo_val));
		if (!c)
			return -ENOMEM;
		c->prev = a->vals ? chunk_of(a->vals) : NULL;
		a->vals = c->vals;
		a->cap = (uint32_t)cap;
		a->used = 0;
	}
	*out = a->vals + a->used;
	a->used += n;
	return 0;
}

/* ------------------------------------------------ little/big-endian reads */

static uint64_t rd_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint64_t rd_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static double f64_of_bits(uint64_t bits)
{
	double f;
	memcpy(&f, &bits, sizeof(f));
	return f;
}

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

static const char ERR_TRUNCATED[] = "truncated";
static const char ERR_NOMEM[] = "out of memory";
static const char ERR_TOO_MANY[] = "more than ZEO_MAX_VALUES values";
static const char ERR_DEPTH[] = "nesting deeper than 64";
static const char ERR_STR_BIG[] = "string or bytes longer than 4 GiB";

_Static_assert(ZEO_MAX_DEPTH == 64, "ERR_DEPTH names the bound");

/* ======================================================= 2. pickle decoder */

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

/** Highest pickle protocol accepted in PROTO. */
#define PK_PROTO_MAX 5
/** Lowest: protocols 0 and 1 have no PROTO opcode. */
#define PK_PROTO_MIN 2

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
    PK_REFUSE(0x52, "REDUCE"),
    PK_REFUSE(0x53, "STRING"),
    PK_REFUSE(0x56, "UNICODE"),
    PK_REFUSE(0x62, "BUILD"),
    PK_REFUSE(0x63, "GLOBAL"),
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
};

/** What a memo key refers to: a finished value or an open container's slot. */
struct pk_box {
	struct zeo_val v;
	struct pk_size size;
	uint32_t slot; /**< while open */
	bool open;
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
	if (arena_alloc(k->a, s->owned, &items))
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
	if (arena_alloc(k->a, n, &items))
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
	k->box[k->nbox] = (struct pk_box){.v = s->v, .size = s->size, .slot = i, .open = s->open};
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
	if (rc)
		return rc;
	return pk_push(k, &v.v, &v.size);
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
	uint64_t u = rd_le(p, low);
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
		v.i = (int64_t)rd_le(q, 2);
		return pk_push_scalar(k, &v);
	case PK_BININT:
		if (!(q = pk_arg(k, 4)))
			return -EBADMSG;
		v.i = (int32_t)(uint32_t)rd_le(q, 4);
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
		int32_t n = (int32_t)(uint32_t)rd_le(q, 4);
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
		v.f = f64_of_bits(rd_be(q, 8));
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
	uint64_t len = rd_le(q, size);
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
	int rc = pk_close(k, k->lst[0]);
	if (rc)
		return rc;
	if (k->p != k->end)
		return pk_fail(k, -EBADMSG, "trailing bytes after STOP");
	if (arena_alloc(k->a, 1, out))
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
		if (rd_le(q, 8) > (uint64_t)(k->end - k->p))
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
		uint32_t key = (uint32_t)rd_le(q, size);
		return op == PK_BINPUT || op == PK_LONG_BINPUT ? pk_put(k, key) : pk_get(k, key);
	}
	case PK_MEMOIZE:
		return pk_put(k, k->memo_len);
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

static int pk_decode(const uint8_t *buf, size_t len, struct zeo_arena *a, struct zeo_val **out,
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

/* ====================================================== 3. msgpack decoder */

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
	*v = rd_be(m->p, n);
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
	if (arena_alloc(m->a, (uint32_t)count, &items))
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
	if (arena_alloc(a, 1, &root)) {
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
		rc = pk_decode(buf, len, a, out, &why);
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

/* =============================================================== 4. writer */

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

/** An opcode / type byte followed by @p n bytes of @p v, little- or big-endian. */
static void put_op(struct zeo_buf *b, uint8_t op, uint64_t v, unsigned n, bool le)
{
	uint8_t t[9];
	t[0] = op;
	for (unsigned i = 0; i < n; i++)
		t[1 + i] = (uint8_t)(v >> (8 * (le ? i : n - 1 - i)));
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
		for (unsigned i = 0; i < n; i++)
			t[i] = (uint8_t)((uint64_t)v >> (8 * i));
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
		for (unsigned i = 0; i < 8; i++)
			t[i] = (uint8_t)(v >> (8 * i));
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
	for (unsigned i = 0; i < 8; i++)
		t[i] = (uint8_t)(v >> (56 - 8 * i));
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

/* ============================================================== 5. helpers */

bool zeo_val_is_str(const struct zeo_val *v, const char *s)
{
	size_t n = strlen(s);
	return v->type == ZEO_STR && v->s.len == n && (n == 0 || memcmp(v->s.p, s, n) == 0);
}

bool zeo_val_int(const struct zeo_val *v, int64_t *out)
{
	if (v->type == ZEO_BOOL) {
		*out = v->b;
		return true;
	}
	if (v->type != ZEO_INT || v->big)
		return false;
	*out = v->i;
	return true;
}

bool zeo_val_u64be(const struct zeo_val *v, uint64_t *out)
{
	if (v->type != ZEO_BYTES || v->s.len != 8)
		return false;
	*out = rd_be(v->s.p, 8);
	return true;
}

bool zeo_val_truthy(const struct zeo_val *v)
{
	switch (v->type) {
	case ZEO_BOOL:
		return v->b;
	case ZEO_INT:
		return v->big || v->i != 0;
	case ZEO_FLOAT:
		return v->f != 0.0; /* NaN is true, as in Python */
	case ZEO_STR:
	case ZEO_BYTES:
		return v->s.len != 0;
	case ZEO_TUPLE:
	case ZEO_LIST:
	case ZEO_DICT:
		return v->seq.n != 0;
	default:
		return false;
	}
}

/** Bounds of the doubles that convert to int64 / uint64 exactly when integral. */
#define TWO_POW_63 9223372036854775808.0
#define TWO_POW_64 18446744073709551616.0

/** Python's int == float: true only when the float is exactly that integer. */
static bool int_eq_float(const struct zeo_val *i, double f)
{
	if (i->big) {
		if (!(f >= TWO_POW_63 && f < TWO_POW_64))
			return false;
		return (uint64_t)f == i->u && (double)(uint64_t)f == f;
	}
	if (!(f >= -TWO_POW_63 && f < TWO_POW_63))
		return false;
	int64_t t = (int64_t)f;
	return (double)t == f && t == i->i;
}

static bool num_equal(const struct zeo_val *a, const struct zeo_val *b)
{
	struct zeo_val x = *a, y = *b;
	if (x.type == ZEO_BOOL)
		x = (struct zeo_val){.type = ZEO_INT, .i = a->b};
	if (y.type == ZEO_BOOL)
		y = (struct zeo_val){.type = ZEO_INT, .i = b->b};
	if (x.type == ZEO_FLOAT && y.type == ZEO_FLOAT)
		return x.f == y.f;
	if (x.type == ZEO_FLOAT)
		return int_eq_float(&y, x.f);
	if (y.type == ZEO_FLOAT)
		return int_eq_float(&x, y.f);
	return x.big == y.big && (x.big ? x.u == y.u : x.i == y.i);
}

static bool is_num(const struct zeo_val *v)
{
	return v->type == ZEO_BOOL || v->type == ZEO_INT || v->type == ZEO_FLOAT;
}

/** Index of the last pair of dict @p d whose key equals @p key; -1 if none. */
static int64_t dict_find(const struct zeo_val *d, const struct zeo_val *key, uint32_t below)
{
	for (uint32_t i = below; i > 0; i--)
		if (zeo_val_equal(&d->seq.items[2 * (i - 1)], key))
			return (int64_t)(i - 1);
	return -1;
}

/** Python dict equality: same keys, equal values, order ignored, last duplicate wins. */
static bool dict_equal(const struct zeo_val *a, const struct zeo_val *b)
{
	uint32_t na = a->seq.n / 2, nb = b->seq.n / 2;
	bool same_order = na == nb;
	for (uint32_t i = 0; same_order && i < 2 * na; i++)
		same_order = zeo_val_equal(&a->seq.items[i], &b->seq.items[i]);
	if (same_order)
		return true;
	uint32_t distinct_a = 0, distinct_b = 0;
	for (uint32_t i = 0; i < na; i++) {
		const struct zeo_val *key = &a->seq.items[2 * i];
		if (dict_find(a, key, na) != (int64_t)i)
			continue; /* a later duplicate decides */
		distinct_a++;
		int64_t j = dict_find(b, key, nb);
		if (j < 0 || !zeo_val_equal(&a->seq.items[2 * i + 1], &b->seq.items[2 * j + 1]))
			return false;
	}
	for (uint32_t i = 0; i < nb; i++)
		if (dict_find(b, &b->seq.items[2 * i], nb) == (int64_t)i)
			distinct_b++;
	return distinct_a == distinct_b;
}

bool zeo_val_equal(const struct zeo_val *a, const struct zeo_val *b)
{
	if (is_num(a) && is_num(b))
		return num_equal(a, b);
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case ZEO_NONE:
		return true;
	case ZEO_STR:
	case ZEO_BYTES:
		return a->s.len == b->s.len &&
		       (a->s.len == 0 || memcmp(a->s.p, b->s.p, a->s.len) == 0);
	case ZEO_TUPLE:
	case ZEO_LIST:
		if (a->seq.n != b->seq.n)
			return false;
		for (uint32_t i = 0; i < a->seq.n; i++)
			if (!zeo_val_equal(&a->seq.items[i], &b->seq.items[i]))
				return false;
		return true;
	case ZEO_DICT:
		return dict_equal(a, b);
	default:
		return false;
	}
}

const struct zeo_val *zeo_dict_get(const struct zeo_val *d, const char *key)
{
	if (d->type != ZEO_DICT)
		return NULL;
	for (uint32_t i = d->seq.n / 2; i > 0; i--)
		if (zeo_val_is_str(&d->seq.items[2 * (i - 1)], key))
			return &d->seq.items[2 * (i - 1) + 1];
	return NULL;
}
