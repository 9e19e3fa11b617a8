/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO gateway, building a transaction: the one-way calls tpc_begin,
 * storea, checkCurrentSerialInTransaction, deleteObject and the blob
 * upload (storeBlobStart/Chunk/End) on the I/O thread, into the
 * connection's zg_txn (vote and tpc_finish are calls,
 * zeo_gateway_calls.c). A call outside the transaction
 * protocol (no or another transaction open) closes the connection: a
 * one-way call cannot be answered with an error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "zeo_gateway_core.h"

bool zg_txn_key_of(const struct zeo_val *v, struct zg_txn_key *k)
{
	if (v->type != ZEO_INT)
		return false;
	k->big = v->big;
	k->v = v->big ? v->u : (uint64_t)v->i;
	return true;
}

void zg_txn_clear(struct zg_txn *t)
{
	free(t->undos);
	free(t->undone);
	free(t->resolved);
	free(t->blob);
	free(t->data);
	free(t->items);
	free(t->reads);
	memset(t, 0, sizeof(*t));
}

/* ------------------------------------------------------------------ building */

/* Would @p len more bytes take the transaction past its limit? Then mark it. */
static bool over_limit(struct zg_txn *t, uint64_t len)
{
	uint64_t most = t->max_bytes ? t->max_bytes : ZG_DEFAULT_MAX_TXN_BYTES;
	if (!t->too_large && t->data_len + t->blob_len + len <= most)
		return false;
	t->too_large = true;
	return true;
}

bool zg_txn_put(struct zg_txn *t, const void *p, uint64_t len, uint64_t *off)
{
	if (over_limit(t, len))
		return false;
	if (t->data_len + len > t->data_cap) {
		uint64_t cap = t->data_cap ? t->data_cap : 4096;
		while (cap < t->data_len + len)
			cap *= 2;
		uint8_t *q = realloc(t->data, cap);
		if (q == NULL)
			return false;
		t->data = q;
		t->data_cap = cap;
	}
	if (len > 0)
		memcpy(t->data + t->data_len, p, len);
	*off = t->data_len;
	t->data_len += len;
	return true;
}

bool zg_txn_add_item(struct zg_txn *t, uint64_t oid, uint64_t serial, const void *data,
		     uint32_t len, bool deleted, bool undo)
{
	if (t->n_items == t->cap_items) {
		uint32_t cap = t->cap_items ? t->cap_items * 2 : 16;
		struct zg_item *p = realloc(t->items, cap * sizeof(*p));
		if (p == NULL)
			return false;
		t->items = p;
		t->cap_items = cap;
	}
	struct zg_item it = {.oid = oid,
			     .serial = serial,
			     .len = deleted ? 0 : len,
			     .seq = t->seq,
			     .deleted = deleted,
			     .undo = undo};
	if (!deleted && !zg_txn_put(t, data, len, &it.off))
		return false;
	t->items[t->n_items++] = it;
	t->seq++;
	return true;
}

static bool text_arg(const struct zeo_val *v, struct zg_txn *t, uint64_t *off, uint32_t *len)
{
	if (v == NULL || v->type == ZEO_NONE) {
		*len = 0;
		*off = 0;
		return true;
	}
	if (v->type != ZEO_BYTES && v->type != ZEO_STR)
		return false;
	*len = v->s.len;
	return zg_txn_put(t, v->s.p, v->s.len, off);
}

bool zg_txn_begin(struct zg_conn *c, const struct zeo_val *args)
{
	struct zg_txn_key k;
	const struct zeo_val *ext = zg_arg(args, 3), *tid = zg_arg(args, 4);
	if (zg_arg(args, 0) == NULL || !zg_txn_key_of(zg_arg(args, 0), &k)) {
		zg_conn_kill(c, "tpc_begin: txn id is not an int");
		return false;
	}
	if (c->read_only) {
		zg_conn_kill(c, "tpc_begin on a read-only connection");
		return false;
	}
	/* A tid (restore, copyTransactionsFrom) is asked of the cluster at
	 * tpc_finish; it is kept when it is later than every tid assigned. */
	if (tid != NULL && tid->type != ZEO_NONE && tid->type != ZEO_BYTES) {
		zg_conn_kill(c, "tpc_begin: tid is neither bytes nor None");
		return false;
	}
	struct zg_txn *t = &c->txn;
	if (t->open)
		return zg_txn_key_eq(&t->key, k.v, k.big)
			   ? true
			   : (zg_conn_kill(c, "tpc_begin: another transaction is open"), false);
	zg_txn_clear(t);
	t->open = true;
	t->key = k;
	t->max_bytes = c->g->o.max_txn_bytes;
	if (tid != NULL && tid->type == ZEO_BYTES)
		zeo_val_u64be(tid, &t->want_tid);
	bool ok = text_arg(zg_arg(args, 1), t, &t->user_off, &t->user_len) &&
		  text_arg(zg_arg(args, 2), t, &t->desc_off, &t->desc_len);
	if (ok && ext != NULL && ext->type == ZEO_DICT && ext->seq.n > 0) {
		/* The extension dict is kept as ZODB keeps it: a pickle. */
		struct zeo_buf b;
		zeo_buf_init(&b);
		zeo_w_begin(&b, ZEO_ENC_PICKLE);
		zeo_w_val(&b, ZEO_ENC_PICKLE, ext);
		zeo_w_end(&b, ZEO_ENC_PICKLE);
		ok = !b.oom && b.len <= UINT32_MAX && zg_txn_put(t, b.p, b.len, &t->ext_off);
		t->ext_len = (uint32_t)b.len;
		zeo_buf_free(&b);
	}
	if (!ok) {
		zg_conn_kill(c, "tpc_begin: bad arguments");
		return false;
	}
	return true;
}

/*
 * The serial a store is based on. As FileStorage, the gateway takes None
 * (ClientStorage sends it for a new object) and a str as "no revision": a
 * new object commits, an existing one is a ConflictError at vote. Any other
 * type is malformed.
 */
static bool base_serial_arg(const struct zeo_val *v, uint64_t *serial)
{
	if (v->type == ZEO_NONE || v->type == ZEO_STR) {
		*serial = 0;
		return true;
	}
	return zeo_val_u64be(v, serial);
}

bool zg_txn_store(struct zg_conn *c, const char *name, const struct zeo_val *args)
{
	bool is_store = name[0] == 's', is_delete = name[0] == 'd';
	uint32_t txn_at = is_store ? 3 : 2;
	uint64_t oid, serial;
	struct zg_txn_key k;
	struct zg_txn *t = &c->txn;
	const struct zeo_val *data = is_store ? zg_arg(args, 2) : NULL;
	if (!zeo_val_u64be(zg_arg(args, 0) ? zg_arg(args, 0) : &(struct zeo_val){0}, &oid) ||
	    zg_arg(args, 1) == NULL ||
	    !(is_store ? base_serial_arg(zg_arg(args, 1), &serial)
		       : zeo_val_u64be(zg_arg(args, 1), &serial)) ||
	    zg_arg(args, txn_at) == NULL || !zg_txn_key_of(zg_arg(args, txn_at), &k) ||
	    (is_store && (data == NULL || data->type != ZEO_BYTES))) {
		zg_conn_kill(c, "store-type call: bad arguments");
		return false;
	}
	if (!t->open || !zg_txn_key_eq(&t->key, k.v, k.big)) {
		zg_conn_kill(c, "store-type call for a transaction that is not open");
		return false;
	}
	if (oid == UINT64_MAX) {
		zg_conn_kill(c, "oid out of range");
		return false;
	}
	if (is_store || is_delete) {
		if (!zg_txn_add_item(t, oid, serial, is_store ? data->s.p : NULL,
				     is_store ? data->s.len : 0, is_delete, false)) {
			if (t->too_large)
				return true; /* the vote says so */
			zg_conn_kill(c, "out of memory");
			return false;
		}
		ZG_COUNT(c->g, stores);
		return true;
	}
	if (t->n_reads == t->cap_reads) {
		uint32_t cap = t->cap_reads ? t->cap_reads * 2 : 16;
		struct zap_cp_read *p = realloc(t->reads, cap * sizeof(*p));
		if (p == NULL) {
			zg_conn_kill(c, "out of memory");
			return false;
		}
		t->reads = p;
		t->cap_reads = cap;
	}
	t->reads[t->n_reads++] = (struct zap_cp_read){.oid = oid, .serial = serial};
	return true;
}

static bool blob_append(struct zg_txn *t, const void *p, uint64_t len)
{
	if (len == 0)
		return true;
	if (over_limit(t, len))
		return false;
	if (t->blob_len + len > t->blob_cap) {
		uint64_t cap = t->blob_cap ? t->blob_cap : 65536;
		while (cap < t->blob_len + len)
			cap *= 2;
		uint8_t *q = realloc(t->blob, cap);
		if (q == NULL)
			return false;
		t->blob = q;
		t->blob_cap = cap;
	}
	memcpy(t->blob + t->blob_len, p, len);
	t->blob_len += len;
	return true;
}

/*
 * Blob uploads: storeBlobStart, storeBlobChunk*, storeBlobEnd(oid, serial,
 * data, txn). The blob becomes part of the record (ZG_BLOB_MAGIC), so it is
 * replicated, logged and kept exactly like any record.
 */
bool zg_txn_blob(struct zg_conn *c, const char *name, const struct zeo_val *args)
{
	struct zg_txn *t = &c->txn;
	if (strcmp(name, "storeBlobStart") == 0) {
		t->blob_open = true;
		t->blob_len = 0;
		return true;
	}
	if (strcmp(name, "storeBlobChunk") == 0) {
		const struct zeo_val *ch = zg_arg(args, 0);
		if (!t->blob_open || ch == NULL || ch->type != ZEO_BYTES) {
			zg_conn_kill(c, "storeBlobChunk: no upload open or a chunk that is not bytes");
			return false;
		}
		if (!blob_append(t, ch->s.p, ch->s.len) && !t->too_large) {
			zg_conn_kill(c, "out of memory");
			return false;
		}
		return true; /* past the limit: dropped, the vote says so */
	}
	/* storeBlobEnd */
	uint64_t oid, serial;
	struct zg_txn_key k;
	const struct zeo_val *data = zg_arg(args, 2);
	if (!t->blob_open || zg_arg(args, 0) == NULL || !zeo_val_u64be(zg_arg(args, 0), &oid) ||
	    zg_arg(args, 1) == NULL || !zeo_val_u64be(zg_arg(args, 1), &serial) || data == NULL ||
	    data->type != ZEO_BYTES || zg_arg(args, 3) == NULL ||
	    !zg_txn_key_of(zg_arg(args, 3), &k) || !t->open || !zg_txn_key_eq(&t->key, k.v, k.big) ||
	    oid == UINT64_MAX) {
		zg_conn_kill(c, "storeBlobEnd: bad arguments or no open transaction");
		return false;
	}
	if (t->n_items == t->cap_items) {
		uint32_t cap = t->cap_items ? t->cap_items * 2 : 16;
		struct zg_item *p = realloc(t->items, cap * sizeof(*p));
		if (p == NULL) {
			zg_conn_kill(c, "out of memory");
			return false;
		}
		t->items = p;
		t->cap_items = cap;
	}
	uint8_t hdr[ZG_BLOB_HDR_BYTES];
	memcpy(hdr, ZG_BLOB_MAGIC, ZG_BLOB_MAGIC_BYTES);
	uint32_t pl = data->s.len;
	zap_put_be32(hdr + ZG_BLOB_MAGIC_BYTES, pl);
	uint64_t total = ZG_BLOB_HDR_BYTES + (uint64_t)pl + t->blob_len, off, o2, o3;
	struct zg_item *it = &t->items[t->n_items];
	/* the blob is counted once: its upload buffer is copied, then emptied */
	uint64_t blob_len = t->blob_len;
	t->blob_len = 0;
	if (total > UINT32_MAX)
		t->too_large = true;
	if (t->too_large || !zg_txn_put(t, hdr, sizeof(hdr), &off) ||
	    !zg_txn_put(t, data->s.p, pl, &o2) || !zg_txn_put(t, t->blob, blob_len, &o3)) {
		t->blob_open = false;
		if (t->too_large)
			return true; /* the vote says so */
		zg_conn_kill(c, "out of memory");
		return false;
	}
	*it = (struct zg_item){
	    .oid = oid, .serial = serial, .off = off, .len = (uint32_t)total, .seq = t->seq++};
	t->n_items++;
	t->blob_open = false;
	t->blob_len = 0;
	ZG_COUNT(c->g, stores);
	return true;
}
