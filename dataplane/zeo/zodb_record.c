/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZODB record decoder (zodb_record.h): a pickle stack machine over both
 * pickles of a record, sharing one memo, in one of two modes.
 *
 * References mode reads every opcode a pickler of protocols 0-5 writes, but
 * builds nothing it does not need: REDUCE, NEWOBJ, INST, OBJ, sets and
 * extension codes become ZODB_OPAQUE values and BUILD drops the state. At
 * each BINPERSID / PERSID the persistent id on the stack is complete (its
 * tuple or list was built before the opcode), so references are reported as
 * they are met and the tree is never walked: cycles a pickle may build
 * (a list appended to itself) cost nothing.
 *
 * Values mode refuses every opcode that would run code, and keeps the tree
 * finite and small: a list or dict is open until it becomes an item of
 * another container or is fetched from the memo; after that it is closed and
 * APPEND(S) / SETITEM(S) into it is refused. So no container contains itself,
 * and each container's expanded size, depth and str / bytes payload are
 * final when it is added to a parent: walking or writing a tree is bounded
 * by ZODB_REC_MAX_VALUES values, ZODB_REC_MAX_DEPTH levels and a payload of
 * a few times the record.
 *
 * Memory: nodes and item arrays come from a chain of chunks freed at once;
 * every opcode allocates at most one node and amortised O(1) item slots, so
 * memory is O(input).
 *
 * This file holds the opcode dispatch, persistent references and the entry
 * points; zodb_record_vm.c the machine they run on (allocator, stack, marks,
 * memo, containers, scalars; zodb_record_internal.h).
 */
#include "zodb_record_internal.h"
#include "zeo_pickle_ops.h"
#include "zeo_value_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "store/blobs.h"

/** Payload a values-mode tree may hold: this many times the record, plus slack. */
#define ZR_EXPAND_FACTOR 4u
#define ZR_EXPAND_SLACK_BYTES 65536u

/* ------------------------------------------------------------ references */

static int zr_oid(const struct zodb_val *v, uint64_t *oid)
{
	if (!v || (v->type != ZODB_BYTES && v->type != ZODB_STR) || v->s.len != 8)
		return -EINVAL;
	if (v->type == ZODB_STR)
		for (unsigned i = 0; i < 8; i++)
			if (v->s.p[i] >= 0x80)
				return -EINVAL;
	*oid = zap_get_be64(v->s.p);
	return 0;
}

static bool zr_is_char(const struct zodb_val *v, char c)
{
	return (v->type == ZODB_STR || v->type == ZODB_BYTES) && v->s.len == 1 &&
	       v->s.p[0] == (uint8_t)c;
}

int zodb_ref_parse(const struct zodb_val *pid, struct zodb_ref *out)
{
	memset(out, 0, sizeof(*out));
	if (pid->type == ZODB_BYTES || pid->type == ZODB_STR)
		return zr_oid(pid, &out->oid);
	if (pid->type == ZODB_TUPLE) {
		if (pid->seq.n != 2)
			return -EINVAL;
		out->klass = pid->seq.items[1];
		return zr_oid(pid->seq.items[0], &out->oid);
	}
	if (pid->type != ZODB_LIST)
		return -EINVAL;
	if (pid->seq.n == 1) {
		out->weak = true;
		return zr_oid(pid->seq.items[0], &out->oid);
	}
	if (pid->seq.n != 2 || pid->seq.items[1]->type != ZODB_TUPLE)
		return -EINVAL;
	const struct zodb_val *kind = pid->seq.items[0], *t = pid->seq.items[1];
	struct zodb_val *const *it = t->seq.items;
	if (zr_is_char(kind, 'w') && (t->seq.n == 1 || t->seq.n == 2)) {
		out->weak = true;
		out->db = t->seq.n == 2 ? it[1] : NULL;
		return zr_oid(it[0], &out->oid);
	}
	if (zr_is_char(kind, 'm') && t->seq.n == 3) {
		out->db = it[0];
		out->klass = it[2];
		return zr_oid(it[1], &out->oid);
	}
	if (zr_is_char(kind, 'n') && t->seq.n == 2) {
		out->db = it[0];
		return zr_oid(it[1], &out->oid);
	}
	return -EINVAL;
}

/** BINPERSID / PERSID: the persistent id @p pid becomes a reference. */
static int zr_persid(struct zr *z, struct zodb_val *pid)
{
	struct zodb_ref ref;
	if (!pid || zodb_ref_parse(pid, &ref))
		return -EINVAL;
	if (z->fn && !ref.db) {
		z->fn_rc = z->fn(z->arg, ref.oid);
		if (z->fn_rc)
			return z->fn_rc;
	}
	struct zodb_val *r = zr_new(z, ZODB_REF);
	if (!r)
		return -ENOMEM;
	r->pid = pid;
	int rc = zr_account(z, r, pid);
	return rc ? rc : zr_push(z, r);
}

/* ------------------------------------------------------------ the machine */

/** References mode: an object zap does not build replaces @p pop values (and a MARK). */
static int zr_opaque(struct zr *z, uint32_t pop, bool to_mark)
{
	if (z->values)
		return -EINVAL;
	if (to_mark) {
		uint32_t from;
		if (zr_pop_mark(z, &from))
			return -EINVAL;
		z->nstk = from;
	}
	for (uint32_t i = 0; i < pop; i++)
		if (!zr_pop(z))
			return -EINVAL;
	return zr_push(z, zr_new(z, ZODB_OPAQUE));
}

/** Text opcodes of protocol 0 (references mode): the value is not needed. */
static int zr_text(struct zr *z, uint8_t op)
{
	uint32_t len;
	const uint8_t *q;
	if (z->values)
		return -EINVAL;
	switch (op) {
	case PK_GLOBAL:
	case PK_INST: {
		uint32_t mod_len, name_len;
		const uint8_t *mod = zr_line(z, &mod_len), *name = mod ? zr_line(z, &name_len) : NULL;
		if (!name)
			return -EINVAL;
		if (op == PK_INST)
			return zr_opaque(z, 0, true);
		return zr_global(z, mod, mod_len, name, name_len);
	}
	case PK_PERSID: {
		if (!(q = zr_line(z, &len)))
			return -EINVAL;
		struct zodb_val *pid = zr_new(z, ZODB_STR);
		if (!pid)
			return -ENOMEM;
		pid->s.p = q;
		pid->s.len = len;
		return zr_persid(z, pid);
	}
	default: /* INT, LONG, FLOAT, STRING, UNICODE */
		if (!zr_line(z, &len))
			return -EINVAL;
		return zr_push(z, zr_new(z, ZODB_OPAQUE));
	}
}

static int zr_scalar(struct zr *z, uint8_t op)
{
	const uint8_t *q;
	struct zodb_val *v;
	switch (op) {
	case PK_NONE:
		return zr_push(z, zr_new(z, ZODB_NONE));
	case PK_NEWTRUE:
	case PK_NEWFALSE:
		if ((v = zr_new(z, ZODB_BOOL)))
			v->b = op == PK_NEWTRUE;
		return zr_push(z, v);
	case PK_BININT1:
		return (q = zr_take(z, 1)) ? zr_push_int(z, q[0]) : -EINVAL;
	case PK_BININT2:
		return (q = zr_take(z, 2)) ? zr_push_int(z, (int64_t)zap_get_le16(q)) : -EINVAL;
	case PK_BININT:
		return (q = zr_take(z, 4)) ? zr_push_int(z, (int32_t)zap_get_le32(q)) : -EINVAL;
	case PK_LONG1:
		if (!(q = zr_take(z, 1)) || !zr_take(z, q[0]))
			return -EINVAL;
		return zr_long(z, q + 1, q[0]);
	case PK_LONG4: {
		if (!(q = zr_take(z, 4)))
			return -EINVAL;
		int32_t n = (int32_t)zap_get_le32(q);
		if (n < 0 || !zr_take(z, (uint64_t)n))
			return -EINVAL;
		return zr_long(z, q + 4, (uint64_t)n);
	}
	case PK_BINFLOAT:
		if (!(q = zr_take(z, 8)))
			return -EINVAL;
		if ((v = zr_new(z, ZODB_FLOAT)))
			v->f = f64_of_bits(zap_get_be64(q));
		return zr_push(z, v);
	case PK_SHORT_BINUNICODE:
		return zr_counted(z, ZODB_STR, 1);
	case PK_BINUNICODE:
		return zr_counted(z, ZODB_STR, 4);
	case PK_BINUNICODE8:
		return zr_counted(z, ZODB_STR, 8);
	case PK_SHORT_BINBYTES:
		return zr_counted(z, ZODB_BYTES, 1);
	case PK_BINBYTES:
		return zr_counted(z, ZODB_BYTES, 4);
	case PK_BINBYTES8:
		return zr_counted(z, ZODB_BYTES, 8);
	case PK_SHORT_BINSTRING: /* protocol 1 strings: str or bytes depending on the reader */
		return z->values ? -EINVAL : zr_counted(z, ZODB_BYTES, 1);
	case PK_BINSTRING:
		return z->values ? -EINVAL : zr_counted(z, ZODB_BYTES, 4);
	default:
		return -EINVAL;
	}
}

/** Opcodes that only exist to build objects (references mode). */
static int zr_object(struct zr *z, uint8_t op)
{
	const uint8_t *q;
	switch (op) {
	case PK_REDUCE:
	case PK_NEWOBJ:
		return zr_opaque(z, 2, false);
	case PK_NEWOBJ_EX:
		return zr_opaque(z, 3, false);
	case PK_OBJ:
	case PK_FROZENSET:
		return zr_opaque(z, 0, true);
	case PK_EMPTY_SET:
		return zr_opaque(z, 0, false);
	case PK_BUILD:
		if (z->values || !zr_pop(z) || !zr_top(z))
			return -EINVAL;
		return 0;
	case PK_ADDITEMS: {
		uint32_t from;
		if (z->values || zr_pop_mark(z, &from) || from == 0 || from - 1 < zr_fence(z))
			return -EINVAL;
		z->nstk = from;
		return 0;
	}
	case PK_EXT1:
	case PK_EXT2:
	case PK_EXT4:
		if (!zr_take(z, op == PK_EXT1 ? 1 : op == PK_EXT2 ? 2 : 4))
			return -EINVAL;
		return zr_opaque(z, 0, false);
	case PK_BYTEARRAY8:
		if (!(q = zr_take(z, 8)) || !zr_take(z, zap_get_le64(q)))
			return -EINVAL;
		return zr_opaque(z, 0, false);
	default:
		return -EINVAL;
	}
}

/** Stack, container and memo opcodes; zr_scalar() and friends for the rest. */
static int zr_step(struct zr *z, uint8_t op)
{
	uint32_t from, key;
	const uint8_t *q;
	struct zodb_val *a, *b;
	switch (op) {
	case PK_PROTO:
		if (z->p - 1 != z->start || !(q = zr_take(z, 1)))
			return -EINVAL;
		return q[0] >= PK_PROTO_MIN && q[0] <= PK_PROTO_MAX ? 0 : -EINVAL;
	case PK_FRAME:
		if (!(q = zr_take(z, 8)) || zap_get_le64(q) > (uint64_t)(z->end - z->p))
			return -EINVAL;
		return 0;
	case PK_MARK:
		if (z->nmark == ZODB_REC_MAX_MARKS ||
		    zr_grow((void **)&z->mark, &z->mark_cap, sizeof(*z->mark), z->nmark + 1u))
			return -E2BIG;
		z->mark[z->nmark++] = z->nstk;
		return 0;
	case PK_POP:
		if (zr_pop(z))
			return 0;
		return zr_pop_mark(z, &from);
	case PK_POP_MARK:
		if (zr_pop_mark(z, &from))
			return -EINVAL;
		z->nstk = from;
		return 0;
	case PK_DUP:
		if (z->values || !(a = zr_top(z)))
			return -EINVAL;
		return zr_push(z, a);
	case PK_EMPTY_TUPLE:
		return zr_build(z, z->nstk, ZODB_TUPLE);
	case PK_TUPLE1:
	case PK_TUPLE2:
	case PK_TUPLE3:
		if (z->nstk - zr_fence(z) < op - PK_TUPLE1 + 1u)
			return -EINVAL;
		return zr_build(z, z->nstk - (op - PK_TUPLE1 + 1u), ZODB_TUPLE);
	case PK_TUPLE:
	case PK_LIST:
	case PK_DICT:
		if (zr_pop_mark(z, &from))
			return -EINVAL;
		return zr_build(z, from,
				op == PK_TUPLE  ? ZODB_TUPLE
				: op == PK_LIST ? ZODB_LIST
						: ZODB_DICT);
	case PK_EMPTY_LIST:
		return zr_build(z, z->nstk, ZODB_LIST);
	case PK_EMPTY_DICT:
		return zr_build(z, z->nstk, ZODB_DICT);
	case PK_APPEND:
		if (z->nstk - zr_fence(z) < 2)
			return -EINVAL;
		return zr_add_items(z, z->nstk - 1, ZODB_LIST);
	case PK_SETITEM:
		if (z->nstk - zr_fence(z) < 3)
			return -EINVAL;
		return zr_add_items(z, z->nstk - 2, ZODB_DICT);
	case PK_APPENDS:
	case PK_SETITEMS:
		if (zr_pop_mark(z, &from))
			return -EINVAL;
		return zr_add_items(z, from, op == PK_APPENDS ? ZODB_LIST : ZODB_DICT);
	case PK_BINPUT:
	case PK_BINGET:
		if (!(q = zr_take(z, 1)))
			return -EINVAL;
		return op == PK_BINPUT ? zr_put(z, q[0]) : zr_get(z, q[0]);
	case PK_LONG_BINPUT:
	case PK_LONG_BINGET:
		if (!(q = zr_take(z, 4)))
			return -EINVAL;
		key = zap_get_le32(q);
		return op == PK_LONG_BINPUT ? zr_put(z, key) : zr_get(z, key);
	case PK_MEMOIZE:
		return zr_put(z, z->memo_len);
	case PK_PUT:
	case PK_GET:
		if (z->values || zr_text_key(z, &key))
			return -EINVAL;
		return op == PK_PUT ? zr_put(z, key) : zr_get(z, key);
	case PK_BINPERSID:
		return zr_persid(z, zr_pop(z));
	case PK_STACK_GLOBAL:
		b = zr_pop(z);
		a = zr_pop(z);
		if (!a || !b || a->type != ZODB_STR || b->type != ZODB_STR)
			return -EINVAL;
		return zr_global(z, a->s.p, a->s.len, b->s.p, b->s.len);
	case PK_GLOBAL:
		if (z->values) {
			uint32_t mod_len, name_len;
			const uint8_t *mod = zr_line(z, &mod_len);
			const uint8_t *name = mod ? zr_line(z, &name_len) : NULL;
			if (!name)
				return -EINVAL;
			return zr_global(z, mod, mod_len, name, name_len);
		}
		return zr_text(z, op);
	case PK_INST:
	case PK_PERSID:
	case PK_INT:
	case PK_LONG:
	case PK_FLOAT:
	case PK_STRING:
	case PK_UNICODE:
		return zr_text(z, op);
	case PK_REDUCE:
	case PK_NEWOBJ:
	case PK_NEWOBJ_EX:
	case PK_OBJ:
	case PK_FROZENSET:
	case PK_EMPTY_SET:
	case PK_BUILD:
	case PK_ADDITEMS:
	case PK_EXT1:
	case PK_EXT2:
	case PK_EXT4:
	case PK_BYTEARRAY8:
		return z->values ? -EINVAL : zr_object(z, op);
	default:
		return zr_scalar(z, op);
	}
}

/** One pickle from z->p up to its STOP; the stack and the marks start empty. */
static int zr_pickle(struct zr *z, struct zodb_val **out)
{
	z->start = z->p;
	z->nstk = 0;
	z->nmark = 0;
	for (;;) {
		if (z->p == z->end)
			return -EINVAL;
		uint8_t op = *z->p++;
		if (op == PK_STOP) {
			if (z->nmark || z->nstk != 1)
				return -EINVAL;
			*out = z->stk[0];
			(*out)->open = false;
			return 0;
		}
		int rc = zr_step(z, op);
		if (rc)
			return rc;
	}
}

int zodb_record_blob(const void *rec, size_t len, struct zodb_blob *b)
{
	const uint8_t *p = rec;
	bool inl = len >= ZODB_REC_BLOB_MAGIC_BYTES &&
		   memcmp(p, ZODB_REC_BLOB_MAGIC, ZODB_REC_BLOB_MAGIC_BYTES) == 0;
	bool ref = len >= ZODB_REC_BLOB_MAGIC_BYTES &&
		   memcmp(p, ZODB_REC_BLOB_REF_MAGIC, ZODB_REC_BLOB_MAGIC_BYTES) == 0;
	if (!inl && !ref)
		return 0;
	if (len < ZODB_REC_BLOB_HDR_BYTES)
		return -EINVAL;
	uint64_t n = zap_get_be32(p + ZODB_REC_BLOB_MAGIC_BYTES);
	uint64_t rest = len - ZODB_REC_BLOB_HDR_BYTES;
	if (n > rest || (ref && rest - n != ZODB_REC_BLOB_REF_TAIL))
		return -EINVAL;
	memset(b, 0, sizeof(*b));
	b->pickle = p + ZODB_REC_BLOB_HDR_BYTES;
	b->pickle_len = (size_t)n;
	if (inl) {
		b->bytes = b->pickle + n;
		b->len = rest - n;
	} else {
		b->len = zap_get_be64(b->pickle + n);
		b->hash = b->pickle + n + 8;
	}
	return 1;
}

int zodb_record_pickle(const void *rec, size_t len, const uint8_t **pickle, size_t *pickle_len)
{
	struct zodb_blob b;
	int rc = zodb_record_blob(rec, len, &b);
	if (rc < 0)
		return rc;
	*pickle = rc ? b.pickle : rec;
	*pickle_len = rc ? b.pickle_len : len;
	return 0;
}

int zodb_record_keep(void *blobs, const void *rec, size_t len, void *out, size_t cap,
		     size_t *out_len)
{
	struct zodb_blob b;
	*out_len = 0;
	if (zodb_record_blob(rec, len, &b) != 1 || b.bytes == NULL)
		return 0; /* no blob, a malformed header, or one already by reference */
	size_t need = ZODB_REC_BLOB_HDR_BYTES + b.pickle_len + ZODB_REC_BLOB_REF_TAIL;
	if (need > cap)
		return -ENOBUFS;
	uint8_t *o = out, hash[ZAP_BLOB_HASH_BYTES];
	zap_blobs_hash(b.bytes, b.len, hash);
	if (zap_blobs_put(blobs, hash, b.bytes, b.len) != 0)
		return -EIO;
	memcpy(o, ZODB_REC_BLOB_REF_MAGIC, ZODB_REC_BLOB_MAGIC_BYTES);
	zap_put_be32(o + ZODB_REC_BLOB_MAGIC_BYTES, (uint32_t)b.pickle_len);
	memcpy(o + ZODB_REC_BLOB_HDR_BYTES, b.pickle, b.pickle_len);
	zap_put_be64(o + ZODB_REC_BLOB_HDR_BYTES + b.pickle_len, b.len);
	memcpy(o + ZODB_REC_BLOB_HDR_BYTES + b.pickle_len + 8, hash, ZAP_BLOB_HASH_BYTES);
	*out_len = need;
	return 0;
}

/** Both pickles of a record into @p r; nothing may follow the second. */
static int zr_run(struct zr *z, struct zodb_rec *r, const void *rec, size_t len)
{
	const uint8_t *p;
	size_t n;
	struct zodb_val *cls, *state;
	int rc = zodb_record_pickle(rec, len, &p, &n);
	if (rc)
		return rc;
	z->p = p;
	z->end = p + n;
	z->max_bytes = (uint64_t)n * ZR_EXPAND_FACTOR + ZR_EXPAND_SLACK_BYTES;
	rc = zr_pickle(z, &cls);
	if (rc == 0) {
		r->cls_len = (size_t)(z->p - p);
		rc = zr_pickle(z, &state);
	}
	if (rc == 0 && z->p != z->end)
		rc = -EINVAL;
	if (rc == 0) {
		r->cls = cls;
		r->state = state;
		r->pickle = p;
		r->pickle_len = n;
	}
	return rc;
}

static void zr_done(struct zr *z)
{
	free(z->stk);
	free(z->mark);
	free(z->memo);
}

int zodb_record_refs(const void *rec, size_t len, int (*fn)(void *arg, uint64_t oid), void *arg)
{
	struct zr z = {.fn = fn, .arg = arg};
	struct zodb_rec r = {0};
	int rc = zr_run(&z, &r, rec, len);
	zr_done(&z);
	zr_mem_free(z.mem);
	if (z.fn_rc)
		return z.fn_rc;
	return rc ? -EINVAL : 0;
}

int zodb_record_decode(struct zodb_rec *r, const void *rec, size_t len)
{
	struct zr z = {.values = true};
	memset(r, 0, sizeof(*r));
	int rc = zr_run(&z, r, rec, len);
	zr_done(&z);
	r->mem = z.mem;
	if (rc) {
		r->cls = r->state = NULL;
		return rc == -ENOMEM || rc == -E2BIG ? rc : -EINVAL;
	}
	return 0;
}

void zodb_rec_free(struct zodb_rec *r)
{
	zr_mem_free(r->mem);
	memset(r, 0, sizeof(*r));
}
