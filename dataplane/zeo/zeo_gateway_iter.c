/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO gateway, iteration and restore: what ZODB's copyTransactionsFrom
 * and zodbconvert-style tools use to move a database into or out of zap.
 *
 * Iteration (IStorageIteration) walks the transactions in tid order:
 * iterator_start(start, stop) -> id; iterator_next(id) -> (tid, " ", user,
 * description, extension) or None; iterator_record_start(id, tid) -> id;
 * iterator_record_next(id) -> (oid, tid, data or None, None). Recent
 * transactions come from the store's transaction ring; from before the ring,
 * every transaction that still has a revision (all of them until a pack) is
 * listed once per iterator by walking the revisions (zap_store_txn_scan())
 * and read through one of its revisions.
 *
 * Restore (IStorageRestoreable): tpc_begin with a tid, then restorea(oid,
 * serial, data, prev_txn, txn). The tid is asked of the cluster at
 * tpc_finish and kept when it is later than every tid assigned (copying into
 * an empty zap), else the transaction gets a new tid; each record is written
 * over whatever is current at the vote. A restorea with data None deletes
 * the object.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "zeo_gateway_core.h"

static struct zg_iter *iter_get(struct zg_conn *c, int64_t id, bool records)
{
	for (unsigned i = 0; i < ZG_ITERATORS; i++)
		if (c->iters[i].id != 0 && (int64_t)c->iters[i].id == id &&
		    c->iters[i].records == records)
			return &c->iters[i];
	return NULL;
}

static struct zg_iter *iter_new(struct zg_conn *c)
{
	for (unsigned i = 0; i < ZG_ITERATORS; i++) {
		if (c->iters[i].id == 0) {
			free(c->iters[i].list);
			memset(&c->iters[i], 0, sizeof(c->iters[i]));
			c->iters[i].id = ++c->next_iter_id;
			return &c->iters[i];
		}
	}
	return NULL;
}

struct first_txn {
	uint64_t stop;
	bool found;
	struct zap_store_txn_info t;
};

static int first_one(const struct zap_store_txn_info *t, void *arg)
{
	struct first_txn *f = arg;
	if (t->tid <= f->stop) {
		f->t = *t;
		f->found = true;
	}
	return 1;
}

static void reply_int(struct zg_conn *c, const uint8_t *mid, size_t ml, uint64_t v)
{
	zg_reply_begin(c, mid, ml, false);
	zeo_w_int(&c->out, c->enc, (int64_t)v);
	zg_reply_end(c);
}

static bool opt_tid(const struct zeo_val *v, uint64_t *out, uint64_t dflt)
{
	if (v == NULL || v->type == ZEO_NONE) {
		*out = dflt;
		return true;
	}
	return zeo_val_u64be(v, out);
}

static void iter_close(struct zg_iter *it)
{
	free(it->list);
	memset(it, 0, sizeof(*it));
}

void zg_iters_free(struct zg_conn *c)
{
	for (unsigned i = 0; i < ZG_ITERATORS; i++)
		iter_close(&c->iters[i]);
}

/*
 * iterator_next: the first transaction after the cursor, within stop. From
 * the transaction ring; when the cursor is older than the ring, from a list
 * of every transaction that still has a revision (zap_store_txn_scan(),
 * made once per iterator), each read through one of its revisions.
 */
static void iter_next(struct zg_conn *c, const uint8_t *mid, size_t ml, struct zg_iter *it)
{
	struct first_txn f = {.stop = it->stop};
	zap_store_read_begin(zg_rd());
	int rc = it->listed ? 0 : zap_store_changes_since(zg_rd(), it->cursor, first_one, &f);
	if (rc > 0)
		rc = 0; /* first_one stopped the walk */
	if (rc == -ERANGE) {
		rc = zap_store_txn_scan(zg_rd(), it->cursor, it->stop, &it->list, &it->n_list);
		it->listed = rc == 0;
	}
	while (it->listed && !f.found && it->pos < it->n_list) {
		const struct zap_store_txn_ref *x = &it->list[it->pos++];
		f.found = zap_store_txn_of(zg_rd(), x->oid, x->tid, &f.t) == 0;
	}
	if (rc != 0) {
		zg_reply_error_text(c, mid, ml, "ZODB.POSException.StorageError",
				    "zap: no memory to list the transactions");
		iter_close(it);
	} else if (!f.found) {
		zg_reply_none(c, mid, ml);
		iter_close(it);
	} else {
		it->cursor = f.t.tid;
		const struct zeo_val *ext;
		uint32_t ne = zg_ext_items(c, f.t.text.extension, f.t.text.extension_len, &ext);
		(void)ne;
		zg_reply_begin(c, mid, ml, false);
		zeo_w_tuple_begin(&c->out, c->enc, 5);
		zeo_w_u64be(&c->out, c->enc, f.t.tid);
		zeo_w_cstr(&c->out, c->enc, " ");
		zeo_w_bytes(&c->out, c->enc, f.t.text.user, f.t.text.user_len);
		zeo_w_bytes(&c->out, c->enc, f.t.text.description, f.t.text.description_len);
		if (ext != NULL) {
			zeo_w_val(&c->out, c->enc, ext);
		} else {
			zeo_w_dict_begin(&c->out, c->enc, 0);
			zeo_w_dict_end(&c->out, c->enc, 0);
		}
		zeo_w_tuple_end(&c->out, c->enc, 5);
		zg_reply_end(c);
	}
	zap_store_read_end(zg_rd());
}

/* iterator_record_next: the next record of the transaction, or None. */
static void record_next(struct zg_conn *c, const uint8_t *mid, size_t ml, struct zg_iter *it)
{
	struct first_txn f = {.stop = it->cursor};
	zap_store_read_begin(zg_rd());
	if (it->cursor > 0)
		zap_store_changes_since(zg_rd(), it->cursor - 1, first_one, &f);
	if ((!f.found || f.t.tid != it->cursor) && it->hint_oid != 0)
		f.found = zap_store_txn_of(zg_rd(), it->hint_oid - 1, it->cursor, &f.t) == 0;
	if (!f.found || f.t.tid != it->cursor || it->next >= f.t.n_oids) {
		zg_reply_none(c, mid, ml);
		iter_close(it);
	} else {
		uint64_t oid = f.t.oids[it->next++];
		struct zap_store_rev rev;
		bool have =
		    zap_store_load_serial(zg_rd(), oid, it->cursor, &rev) == 0 && !rev.deleted;
		zg_reply_begin(c, mid, ml, false);
		zeo_w_tuple_begin(&c->out, c->enc, 4);
		zeo_w_u64be(&c->out, c->enc, oid);
		zeo_w_u64be(&c->out, c->enc, it->cursor);
		if (have) {
			const uint8_t *p;
			uint64_t pl;
			zg_record_pickle(rev.data, rev.len, &p, &pl);
			zeo_w_bytes(&c->out, c->enc, p, pl);
		} else {
			zeo_w_none(&c->out, c->enc);
		}
		zeo_w_none(&c->out, c->enc);
		zeo_w_tuple_end(&c->out, c->enc, 4);
		zg_reply_end(c);
	}
	zap_store_read_end(zg_rd());
}

/* The oid + 1 through which a listed iterator reaches transaction @p tid; 0 none. */
static uint64_t list_oid(const struct zg_iter *it, uint64_t tid)
{
	for (size_t lo = 0, hi = it->listed ? it->n_list : 0; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;
		if (it->list[mid].tid == tid)
			return it->list[mid].oid + 1;
		if (it->list[mid].tid < tid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* iterator_gc(ids): closes the iterators named, a one-way message or a call. */
static void iter_gc(struct zg_conn *c, const struct zeo_val *ids)
{
	if (ids == NULL || (ids->type != ZEO_LIST && ids->type != ZEO_TUPLE))
		return;
	for (uint32_t i = 0; i < ids->seq.n; i++) {
		int64_t id;
		if (!zeo_val_int(&ids->seq.items[i], &id))
			continue;
		for (unsigned k = 0; k < ZG_ITERATORS; k++)
			if (c->iters[k].id != 0 && (int64_t)c->iters[k].id == id)
				iter_close(&c->iters[k]);
	}
}

bool zg_iter_call(struct zg_conn *c, const char *name, const uint8_t *mid, size_t ml,
		  const struct zeo_val *args)
{
	const struct zeo_val *a0 = args->seq.n > 0 ? &args->seq.items[0] : NULL;
	const struct zeo_val *a1 = args->seq.n > 1 ? &args->seq.items[1] : NULL;
	int64_t id = 0;
	if (strcmp(name, "iterator_gc") == 0) {
		pthread_mutex_lock(&c->wmu);
		iter_gc(c, a0);
		zg_reply_none(c, mid, ml);
		pthread_mutex_unlock(&c->wmu);
		return true;
	}
	if (strcmp(name, "iterator_start") == 0) {
		uint64_t start, stop;
		pthread_mutex_lock(&c->wmu);
		if (!opt_tid(a0, &start, 0) || !opt_tid(a1, &stop, UINT64_MAX)) {
			zg_reply_error_text(c, mid, ml, "builtins.TypeError",
					    "iterator_start: start and stop are tids or None");
		} else {
			struct zg_iter *it = iter_new(c);
			if (it == NULL) {
				zg_reply_error_text(c, mid, ml, "ZODB.POSException.StorageError",
						    "zap: too many open iterators");
			} else {
				/* As FileStorage's: the transactions that exist now,
				 * none committed while it is being read. */
				uint64_t last = zap_store_last_tid(c->g->o.store);
				it->cursor = start > 0 ? start - 1 : 0;
				it->stop = stop < last ? stop : last;
				reply_int(c, mid, ml, it->id);
			}
		}
		pthread_mutex_unlock(&c->wmu);
		return true;
	}
	if (strcmp(name, "iterator_next") == 0 || strcmp(name, "iterator_record_next") == 0) {
		bool rec = name[9] == 'r';
		pthread_mutex_lock(&c->wmu);
		struct zg_iter *it =
		    a0 != NULL && zeo_val_int(a0, &id) ? iter_get(c, id, rec) : NULL;
		if (it == NULL)
			zg_reply_error_text(c, mid, ml, "builtins.KeyError", "no such iterator");
		else if (rec)
			record_next(c, mid, ml, it);
		else
			iter_next(c, mid, ml, it);
		pthread_mutex_unlock(&c->wmu);
		return true;
	}
	if (strcmp(name, "iterator_record_start") == 0) {
		uint64_t tid;
		pthread_mutex_lock(&c->wmu);
		struct zg_iter *it = NULL, *parent = NULL;
		if (a0 == NULL || !zeo_val_int(a0, &id) || a1 == NULL || !zeo_val_u64be(a1, &tid) ||
		    (parent = iter_get(c, id, false)) == NULL) {
			zg_reply_error_text(c, mid, ml, "builtins.KeyError", "no such iterator");
		} else if ((it = iter_new(c)) == NULL) {
			zg_reply_error_text(c, mid, ml, "ZODB.POSException.StorageError",
					    "zap: too many open iterators");
		} else {
			it->records = true;
			it->cursor = tid;
			it->hint_oid = list_oid(parent, tid);
			reply_int(c, mid, ml, it->id);
		}
		pthread_mutex_unlock(&c->wmu);
		return true;
	}
	return false;
}

bool zg_restore_add(struct zg_conn *c, const struct zeo_val *args)
{
	struct zg_txn *t = &c->txn;
	struct zg_txn_key k;
	uint64_t oid, serial;
	const struct zeo_val *data = args->seq.n > 2 ? &args->seq.items[2] : NULL;
	if (args->seq.n < 5 || !zeo_val_u64be(&args->seq.items[0], &oid) ||
	    !zeo_val_u64be(&args->seq.items[1], &serial) ||
	    (data->type != ZEO_BYTES && data->type != ZEO_NONE) ||
	    !zg_txn_key_of(&args->seq.items[4], &k) || !t->open || t->key.v != k.v ||
	    t->key.big != k.big || oid == UINT64_MAX) {
		zg_conn_kill(c, "restorea: bad arguments or no open transaction");
		return false;
	}
	bool del = data->type == ZEO_NONE;
	if (!zg_txn_add_item(t, oid, 0, del ? NULL : data->s.p, del ? 0 : data->s.len, del,
			     false)) {
		zg_conn_kill(c, "transaction larger than the gateway accepts");
		return false;
	}
	t->items[t->n_items - 1].restore = true;
	ZG_COUNT(c->g, stores);
	return true;
}

void zg_restore_bases(struct zg_conn *c)
{
	struct zg_txn *t = &c->txn;
	bool any = false;
	for (uint32_t i = 0; i < t->n_items; i++)
		any |= t->items[i].restore;
	if (!any)
		return;
	pthread_mutex_lock(&c->wmu);
	zap_store_read_begin(zg_rd());
	uint32_t n = 0;
	for (uint32_t i = 0; i < t->n_items; i++) {
		struct zg_item *it = &t->items[i];
		if (it->restore) {
			struct zap_store_rev cur;
			bool exists = zap_store_load(zg_rd(), it->oid, &cur) == 0;
			it->serial = exists ? cur.serial : 0;
			/* Deleting what does not exist (or is deleted already): nothing to do. */
			if (it->deleted && (!exists || cur.deleted))
				continue;
		}
		t->items[n++] = *it;
	}
	t->n_items = n;
	zap_store_read_end(zg_rd());
	pthread_mutex_unlock(&c->wmu);
}

/* One-way iteration call: iterator_gc. */
bool zg_iter_async(struct zg_conn *c, const struct zeo_val *args)
{
	pthread_mutex_lock(&c->wmu);
	iter_gc(c, args->seq.n > 0 ? &args->seq.items[0] : NULL);
	pthread_mutex_unlock(&c->wmu);
	return true;
}
