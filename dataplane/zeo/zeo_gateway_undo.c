/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO gateway, undo: undoLog / undoInfo list the transactions since the
 * last pack, newest first (the store's transaction ring, then older ones
 * through their revisions); undoa(id, txn) marks a transaction to undo
 * inside the client's transaction.
 *
 * An undo is an ordinary write, checked like any other: at the first vote,
 * every oid the undone transaction T wrote must still be at serial T (else
 * UndoError), and is stored back at its revision before T over base serial
 * T, or deleted when T created it. The PREPARE's serial checks then make the
 * undo atomic with respect to every other commit; vote returns the undone
 * oids so the committer drops its cached copies (the ZEO 5 protocol,
 * docs/zeo.md). The undo id is the transaction's tid (8 bytes).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "zeo_gateway_core.h"
#include "zeo_resolve.h"

/** Most transactions one undoLog / undoInfo call lists. */
#define ZG_UNDO_LIST_MAX 1000u

struct undo_list {
	struct zg_conn *c;
	const struct zeo_val *spec; /**< undoInfo filter (dict), or NULL */
	uint64_t skip, max, matched;
	uint64_t packed; /**< the pack tid: the log ends at it, as FileStorage's */
	struct zap_store_txn_info *out; /**< copies: the walk passes a stack value */
	uint32_t n;
	uint64_t visited; /**< transactions the walk passed, matching or not */
	uint64_t oldest;  /**< tid of the last (oldest) one */
	bool stopped;	  /**< the walk ended: enough listed, or the pack reached */
};

static bool bytes_eq(const struct zeo_val *v, const void *p, uint32_t len)
{
	return (v->type == ZEO_BYTES || v->type == ZEO_STR) && v->s.len == len &&
	       (len == 0 || memcmp(v->s.p, p, len) == 0);
}

/* undoInfo: keep a transaction iff every spec item equals the same key of its dict. */
static bool spec_match(struct zg_conn *c, const struct zeo_val *spec,
		       const struct zap_store_txn_info *t)
{
	if (spec == NULL || spec->type != ZEO_DICT)
		return true;
	const struct zeo_val *ext = NULL;
	for (uint32_t i = 0; i + 1 < spec->seq.n; i += 2) {
		const struct zeo_val *k = &spec->seq.items[i], *v = &spec->seq.items[i + 1];
		if (zeo_val_is_str(k, "user_name")) {
			if (!bytes_eq(v, t->text.user, t->text.user_len))
				return false;
		} else if (zeo_val_is_str(k, "description")) {
			if (!bytes_eq(v, t->text.description, t->text.description_len))
				return false;
		} else if (k->type == ZEO_STR) {
			if (ext == NULL)
				zg_ext_items(c, t->text.extension, t->text.extension_len, &ext);
			const struct zeo_val *have = NULL;
			for (uint32_t e = 0; ext != NULL && e + 1 < ext->seq.n; e += 2)
				if (zeo_val_equal(&ext->seq.items[e], k))
					have = &ext->seq.items[e + 1];
			if (have == NULL || !zeo_val_equal(have, v))
				return false;
		} else {
			return false;
		}
	}
	return true;
}

static int list_one(const struct zap_store_txn_info *t, void *arg)
{
	struct undo_list *u = arg;
	u->visited++;
	u->oldest = t->tid;
	if (t->tid < u->packed) {
		u->stopped = true;
		return 1; /* this one and every older one were packed away */
	}
	if (t->n_oids == 0 || !spec_match(u->c, u->spec, t))
		return 0;
	if (u->matched++ < u->skip)
		return 0;
	u->out[u->n++] = *t;
	u->stopped = u->n == u->max;
	return u->stopped ? 1 : 0;
}

/*
 * The transactions older than the ring's (tid below @p before) that still
 * have a revision, newest first, into the list: the undo log reaches back
 * to the last pack, as FileStorage's does. Walks every revision of the store
 * (zap_store_txn_scan), so only a client that asks past the ring pays it.
 */
static void list_past_ring(struct undo_list *u, uint64_t before)
{
	struct zap_store_txn_ref *refs = NULL;
	size_t n = 0;
	uint64_t after = u->packed > 0 ? u->packed - 1 : 0;
	if (before <= after + 1 || zap_store_txn_scan(zg_rd(), after, before - 1, &refs, &n) != 0)
		return;
	for (size_t i = n; i-- > 0;) {
		struct zap_store_txn_info t;
		if (zap_store_txn_of(zg_rd(), refs[i].oid, refs[i].tid, &t) == 0 && list_one(&t, u))
			break;
	}
	free(refs);
}

/* A transaction the ring no longer holds, found through one of its revisions. */
static bool find_past_ring(uint64_t tid, struct zap_store_txn_info *out)
{
	struct zap_store_txn_ref *refs = NULL;
	size_t n = 0;
	bool found = zap_store_txn_scan(zg_rd(), tid - 1, tid, &refs, &n) == 0 && n > 0 &&
		     zap_store_txn_of(zg_rd(), refs[0].oid, tid, out) == 0;
	free(refs);
	return found;
}

static uint64_t pack_tid(struct zg_conn *c)
{
	struct zap_store_stats st;
	zap_store_stats(c->g->o.store, &st);
	return st.pack_tid;
}

void zg_undo_log(struct zg_conn *c, const uint8_t *msgid, size_t msgid_len, int64_t first,
		 int64_t last, const struct zeo_val *spec)
{
	if (first < 0)
		first = 0;
	int64_t want = last < 0 ? -last : last - first;
	if (want < 0)
		want = 0;
	if (want > ZG_UNDO_LIST_MAX)
		want = ZG_UNDO_LIST_MAX;
	struct undo_list u = {.c = c,
			      .spec = spec != NULL && spec->type == ZEO_DICT ? spec : NULL,
			      .skip = (uint64_t)first,
			      .max = (uint64_t)want};
	u.out = calloc((size_t)want + 1, sizeof(*u.out));
	u.packed = pack_tid(c);
	pthread_mutex_lock(&c->wmu);
	zap_store_read_begin(zg_rd());
	if (u.out == NULL) {
		zg_reply_error_text(c, msgid, msgid_len, "ZODB.POSException.StorageError",
				    "out of memory");
	} else {
		if (want > 0) {
			zap_store_txns_newest(zg_rd(), 0, UINT64_MAX, list_one, &u);
			struct zap_store_stats st;
			zap_store_stats(c->g->o.store, &st);
			/* the whole ring passed and more wanted: older ones may still
			   have revisions (the ring holds store.txn_ring_slots) */
			if (!u.stopped && u.visited > 0 && u.visited >= st.txns_kept)
				list_past_ring(&u, u.oldest);
		}
		zg_reply_begin(c, msgid, msgid_len, false);
		zeo_w_list_begin(&c->out, c->enc, u.n);
		for (uint32_t i = 0; i < u.n; i++) {
			const struct zap_store_txn_info *t = &u.out[i];
			const struct zeo_val *ext;
			/* ext decoding reuses one arena: decode right before writing. */
			uint32_t ne =
			    zg_ext_items(c, t->text.extension, t->text.extension_len, &ext);
			zeo_w_dict_begin(&c->out, c->enc, 5 + ne);
			zeo_w_cstr(&c->out, c->enc, "id");
			zeo_w_u64be(&c->out, c->enc, t->tid);
			zeo_w_cstr(&c->out, c->enc, "time");
			zeo_w_float(&c->out, c->enc, zg_tid_seconds(t->tid));
			zeo_w_cstr(&c->out, c->enc, "user_name");
			zeo_w_bytes(&c->out, c->enc, t->text.user, t->text.user_len);
			zeo_w_cstr(&c->out, c->enc, "description");
			zeo_w_bytes(&c->out, c->enc, t->text.description, t->text.description_len);
			zeo_w_cstr(&c->out, c->enc, "size");
			zeo_w_int(&c->out, c->enc, (int64_t)t->n_oids);
			zg_write_ext_items(c, ext);
			zeo_w_dict_end(&c->out, c->enc, 5 + ne);
		}
		zeo_w_list_end(&c->out, c->enc, u.n);
		zg_reply_end(c);
	}
	zap_store_read_end(zg_rd());
	pthread_mutex_unlock(&c->wmu);
	free(u.out);
}

bool zg_undo_add(struct zg_conn *c, const struct zeo_val *args)
{
	struct zg_txn *t = &c->txn;
	struct zg_txn_key k;
	uint64_t tid;
	/* An id that is not one of ours (not 8 bytes) fails the vote with an
	 * UndoError ("unknown transaction"), as an unknown tid does. */
	if (args->seq.n >= 2 && !zeo_val_u64be(&args->seq.items[0], &tid))
		tid = 0;
	if (args->seq.n < 2 || !zg_txn_key_of(&args->seq.items[1], &k) || !t->open ||
	    t->key.v != k.v || t->key.big != k.big || t->undos_done) {
		zg_conn_kill(c, "undoa: bad arguments or no open transaction");
		return false;
	}
	if (t->n_undos == t->cap_undos) {
		uint32_t cap = t->cap_undos ? t->cap_undos * 2 : 4;
		uint64_t *p = realloc(t->undos, cap * sizeof(*p));
		if (p == NULL) {
			zg_conn_kill(c, "out of memory");
			return false;
		}
		t->undos = p;
		t->cap_undos = cap;
	}
	t->undos[t->n_undos++] = tid;
	return true;
}

struct find_txn {
	uint64_t tid;
	const struct zap_store_txn_info *found;
	struct zap_store_txn_info copy;
};

static int find_one(const struct zap_store_txn_info *t, void *arg)
{
	struct find_txn *f = arg;
	if (t->tid == f->tid) {
		f->copy = *t;
		f->found = &f->copy;
	}
	return 1;
}

/*
 * A refusal, as a stock server sends FileStorage's: a record that cannot be
 * undone is MultipleUndoErrors with its (oid, reason) pairs in _errs (the
 * stock client raises it, an UndoError); a transaction that cannot be found
 * is a plain UndoError.
 */
static void undo_error(struct zg_conn *c, const struct zg_job *j, const char *reason,
		       const uint64_t *oid)
{
	zg_reply_begin(c, j->msgid, j->msgid_len, true);
	zeo_w_tuple_begin(&c->out, c->enc, 2);
	zeo_w_cstr(&c->out, c->enc,
		   oid != NULL ? "ZODB.POSException.MultipleUndoErrors"
			       : "ZODB.POSException.UndoError");
	zeo_w_dict_begin(&c->out, c->enc, oid != NULL ? 3 : 2);
	zeo_w_cstr(&c->out, c->enc, "_reason");
	zeo_w_cstr(&c->out, c->enc, reason);
	zeo_w_cstr(&c->out, c->enc, "_oid");
	if (oid != NULL)
		zeo_w_u64be(&c->out, c->enc, *oid);
	else
		zeo_w_none(&c->out, c->enc);
	if (oid != NULL) {
		zeo_w_cstr(&c->out, c->enc, "_errs");
		zeo_w_list_begin(&c->out, c->enc, 1);
		zeo_w_tuple_begin(&c->out, c->enc, 2);
		zeo_w_u64be(&c->out, c->enc, *oid);
		zeo_w_cstr(&c->out, c->enc, reason);
		zeo_w_tuple_end(&c->out, c->enc, 2);
		zeo_w_list_end(&c->out, c->enc, 1);
	}
	zeo_w_dict_end(&c->out, c->enc, oid != NULL ? 3 : 2);
	zeo_w_tuple_end(&c->out, c->enc, 2);
	zg_reply_end(c);
}

/* One undone transaction into items. @return NULL, or the reason it cannot be undone. */
static const char *undo_one(struct zg_conn *c, struct zg_txn *t, uint64_t tid, uint64_t *bad_oid)
{
	struct find_txn f = {.tid = tid};
	if (tid == 0 || tid < pack_tid(c))
		return "unknown transaction, or no longer kept";
	if (zap_store_changes_since(zg_rd(), tid - 1, find_one, &f) < 0 || f.found == NULL) {
		if (!find_past_ring(tid, &f.copy)) /* past the ring: through its revisions */
			return "unknown transaction, or no longer kept";
		f.found = &f.copy;
	}
	for (uint32_t i = 0; i < f.found->n_oids; i++) {
		uint64_t oid = f.found->oids[i];
		struct zap_store_rev cur, prev;
		*bad_oid = oid;
		if (zap_store_load(zg_rd(), oid, &cur) != 0)
			return "Some data were modified by a later transaction";
		/* What the object holds for this transaction: an earlier undo of
		 * the same transaction wrote it, else its committed revision. */
		const struct zg_item *mine = NULL;
		for (uint32_t k = t->n_items; k-- > 0 && mine == NULL;)
			if (t->items[k].undo && t->items[k].oid == oid)
				mine = &t->items[k];
		uint64_t base = mine != NULL ? mine->serial : cur.serial;
		bool again = mine != NULL;
		bool had = zap_store_load_before(zg_rd(), oid, tid, &prev) == 0 && !prev.deleted;
		if (had && prev.len > UINT32_MAX)
			return "record too large";
		void *merged = NULL;
		size_t merged_len = 0;
		if (mine != NULL || cur.serial != tid) {
			/* As FileStorage: a later change is no obstacle when the
			 * object holds the very data the undone transaction wrote
			 * (after an undo and a redo, or a second undo in one
			 * transaction). */
			struct zap_store_rev done;
			const uint8_t *d = mine != NULL ? t->data + mine->off : cur.data;
			uint64_t len = mine != NULL ? mine->len : cur.len;
			bool del = mine != NULL ? mine->deleted : cur.deleted != 0;
			if (zap_store_load_serial(zg_rd(), oid, tid, &done) != 0)
				return "Some data were modified by a later transaction";
			if (del != (done.deleted != 0) || len != done.len ||
			    (len != 0 && memcmp(d, done.data, len) != 0)) {
				/* As FileStorage: undo what the transaction changed
				 * while keeping the later changes, when the class is
				 * one zap merges (three-way: what it wrote, what is
				 * there now, what was there before it). */
				if (!had || del || done.deleted ||
				    zeo_resolve(done.data, done.len, d, len, prev.data, prev.len,
						&merged, &merged_len, NULL, 0) != ZEO_RESOLVED)
					return "Some data were modified by a later transaction";
				if (merged_len > UINT32_MAX) {
					free(merged);
					return "record too large";
				}
			}
		}
		bool added = merged != NULL
				 ? zg_txn_add_item(t, oid, base, merged, (uint32_t)merged_len,
						   false, true)
				 : zg_txn_add_item(t, oid, base, had ? prev.data : NULL,
						   had ? (uint32_t)prev.len : 0, !had, true);
		free(merged);
		if (!added)
			return "transaction larger than the gateway accepts";
		if (again)
			continue; /* already listed by the earlier undo */
		uint64_t *u = realloc(t->undone, (t->n_undone + 1) * sizeof(*u));
		if (u == NULL)
			return "out of memory";
		t->undone = u;
		t->undone[t->n_undone++] = oid;
	}
	return NULL;
}

bool zg_undo_prepare(struct zg_conn *c, const struct zg_job *j)
{
	struct zg_txn *t = &c->txn;
	if (t->n_undos == 0 || t->undos_done)
		return true;
	t->undos_done = true;
	pthread_mutex_lock(&c->wmu);
	zap_store_read_begin(zg_rd());
	const char *why = NULL;
	uint64_t oid = 0;
	for (uint32_t i = 0; i < t->n_undos && why == NULL; i++)
		why = undo_one(c, t, t->undos[i], &oid);
	zap_store_read_end(zg_rd());
	if (why != NULL) {
		undo_error(c, j, why, oid != 0 || t->n_undone > 0 ? &oid : NULL);
		zg_txn_clear(t);
	}
	pthread_mutex_unlock(&c->wmu);
	return why == NULL;
}
