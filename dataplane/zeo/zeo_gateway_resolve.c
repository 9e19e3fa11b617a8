/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO gateway, native conflict resolution at vote (docs/zeo.md,
 * "Conflicts").
 *
 * Before a vote's PREPARE, and again after a PREPARE that met a newer
 * revision, every stored object whose base serial is no longer the current
 * one in the local store is offered to zeo_resolve(): the revision the
 * client's change was based on, the current revision and the client's record.
 * A merged record (BTrees buckets, sets, one-bucket trees, Length) replaces
 * the client's, based on the current serial, and its oid joins the list the
 * vote returns, so the client does not cache its own copy. A merge the
 * rules refuse is remembered (t->refused): the conflict check answers it
 * with a ConflictError naming the class, as the BTrees package would raise.
 * What zeo_resolve() does not know how to merge is left alone: the conflict
 * check answers it with a conflict dict (the client resolves with its own
 * classes).
 *
 * The merge runs on the I/O thread, against this node's store, inside
 * one reader section; the PREPARE that follows is checked by every replica
 * against the serial the merge was made over, so a commit that slipped in
 * between is caught there and the merge is simply made again.
 */
#include <stdlib.h>
#include <string.h>

#include "zeo_gateway_core.h"
#include "zeo_resolve.h"
#include "zodb_record.h"

static bool resolved_add(struct zg_txn *t, uint64_t oid)
{
	for (uint32_t i = 0; i < t->n_resolved; i++)
		if (t->resolved[i] == oid)
			return true;
	if (t->n_resolved == t->cap_resolved) {
		uint32_t cap = t->cap_resolved ? t->cap_resolved * 2 : 8;
		uint64_t *p = realloc(t->resolved, cap * sizeof(*p));
		if (p == NULL)
			return false;
		t->resolved = p;
		t->cap_resolved = cap;
	}
	t->resolved[t->n_resolved++] = oid;
	return true;
}

static bool has_blob(const void *data, uint64_t len)
{
	struct zodb_blob b;
	return zodb_record_blob(data, len, &b) != 0;
}

uint32_t zg_resolve_native(struct zg_conn *c, struct zg_txn *t)
{
	uint32_t merged = 0;
	t->refused = false;
	/* As every store read of the gateway: under wmu, so no invalidation
	 * crosses it. */
	pthread_mutex_lock(&c->wmu);
	zap_store_read_begin(zg_rd());
	for (uint32_t i = 0; i < t->n_items; i++) {
		struct zg_item *it = &t->items[i];
		if (i + 1 < t->n_items && t->items[i + 1].oid == it->oid)
			continue; /* a later store of the same oid wins */
		if (it->deleted || it->undo || it->restore || it->serial == 0 ||
		    has_blob(t->data + it->off, it->len))
			continue;
		struct zap_store_rev cur, old;
		if (zap_store_load(zg_rd(), it->oid, &cur) != 0 || cur.deleted ||
		    cur.serial == it->serial || has_blob(cur.data, cur.len))
			continue;
		if (zap_store_load_serial(zg_rd(), it->oid, it->serial, &old) != 0 || old.deleted)
			continue;
		void *out = NULL;
		size_t out_len = 0;
		char cls[sizeof(t->refused_class)];
		int rc = zeo_resolve(old.data, old.len, cur.data, cur.len, t->data + it->off,
				     it->len, &out, &out_len, cls, sizeof(cls));
		if (rc == ZEO_RESOLVE_REFUSED && !t->refused) {
			t->refused = true;
			t->refused_oid = it->oid;
			memcpy(t->refused_class, cls, sizeof(cls));
		}
		uint64_t off;
		if (rc == ZEO_RESOLVED && out_len <= UINT32_MAX && resolved_add(t, it->oid) &&
		    zg_txn_put(t, out, out_len, &off)) {
			it = &t->items[i];
			it->off = off;
			it->len = (uint32_t)out_len;
			it->serial = cur.serial;
			merged++;
			ZG_COUNT(c->g, resolved);
		}
		free(out);
	}
	zap_store_read_end(zg_rd());
	pthread_mutex_unlock(&c->wmu);
	return merged;
}
