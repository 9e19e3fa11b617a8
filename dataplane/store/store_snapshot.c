/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap store: snapshots of the logical content, for a node that must catch up
 * after the log it lags behind was compacted.
 *
 * Stream (every integer little-endian, whatever the host):
 *
 *   header   magic u64, version u32, ring_slots u32, last_tid u64,
 *            pack_tid u64, txn_count u64, n_txns u64, n_ring u64,
 *            n_objects u64, n_revisions u64
 *   txns     n_txns times, tid strictly increasing:
 *            tid u64, n_oids u32, user_len u32, description_len u32,
 *            extension_len u32, oids u64[n_oids], user, description, extension
 *   objects  n_objects times, oid strictly increasing:
 *            oid u64, n_revs u32, then n_revs revisions newest first:
 *            tid u64, flags u32 (bit 0 deleted), len u64, record bytes[len]
 *   trailer  checksum u64 over every byte before it
 *
 * The txn table holds every transaction a revision belongs to (a revision
 * names its transaction by its tid) and the n_ring transactions in the ring,
 * which are the newest n_ring of the table, in ring order; txn_count places
 * them in the same ring slots as in the source, so changes_since answers
 * -ERANGE for the same tids. Sorting by oid and by tid makes the stream
 * independent of the index layout.
 *
 * The loader checks the whole stream (checksum, bounds, orderings, that
 * every revision's transaction is in the table, that everything fits in
 * the mapping) before it changes anything; then it builds the blocks,
 * links each chain before its index key is published, and publishes
 * last_tid last. A corrupt stream leaves the store empty.
 *
 * Threading: the writer (apply stage) calls both functions; readers may run.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snapstream.h"
#include "store_layout.h"

#define SNAP_MAGIC 0x314e53545350415aull /* "ZAPSTSN1" little-endian */
#define SNAP_VERSION 1u
#define SNAP_HDR_BYTES (8u + 4u + 4u + 7u * 8u)
#define SNAP_TXN_FIXED_BYTES 24u
#define SNAP_OBJ_FIXED_BYTES 12u
#define SNAP_REV_FIXED_BYTES 20u
#define SNAP_REV_DELETED 1u

/* ------------------------------------------------------------ write */

/* An (order key, offset) pair: objects by oid, transaction blocks by tid. */
struct snap_pair {
	uint64_t key;
	uint64_t off;
};

static int snap_cmp_pair(const void *a, const void *b)
{
	const struct snap_pair *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

static void snap_write_txn(struct zap_snap_out *o, const struct zap_store *s, uint64_t off)
{
	const struct store_txn *x = store_at(s, off);
	const uint8_t *p = (const uint8_t *)(x + 1);

	zap_snap_put_le64(o, x->tid);
	zap_snap_put_le32(o, x->n_oids);
	zap_snap_put_le32(o, x->user_len);
	zap_snap_put_le32(o, x->description_len);
	zap_snap_put_le32(o, x->extension_len);
	for (uint32_t i = 0; i < x->n_oids; i++) {
		uint64_t oid;
		memcpy(&oid, p + 8ull * i, 8);
		zap_snap_put_le64(o, oid);
	}
	zap_snap_put(o, p + 8ull * x->n_oids,
		 (size_t)x->user_len + x->description_len + x->extension_len);
}

static void snap_write_object(struct zap_snap_out *o, const struct zap_store *s,
			      const struct snap_pair *ob)
{
	uint32_t n = 0;

	for (uint64_t off = ob->off; off != 0;
	     off = ((const struct store_rev *)store_at(s, off))->next)
		n++;
	zap_snap_put_le64(o, ob->key);
	zap_snap_put_le32(o, n);
	for (uint64_t off = ob->off; off != 0;) {
		const struct store_rev *rv = store_at(s, off);
		int deleted = (rv->flags & REV_DELETED) != 0;
		zap_snap_put_le64(o, rv->tid);
		zap_snap_put_le32(o, deleted ? SNAP_REV_DELETED : 0);
		zap_snap_put_le64(o, deleted ? 0 : rv->len);
		if (!deleted)
			zap_snap_put(o, rv + 1, rv->len);
		off = rv->next;
	}
}

/* What a snapshot is written from. */
struct snap_src {
	struct snap_pair *objs; /* oid, chain head; sorted by oid */
	struct snap_pair *txns; /* tid, block; sorted by tid, each once */
	uint64_t n_objs, n_txns, n_ring, n_revs;
};

/* Collect the objects and the transaction blocks (revisions' and ring's). */
static int snap_collect(const struct zap_store *s, struct snap_src *src)
{
	const struct store_hdr *h = s->hdr;
	struct store_index *ix = store_index_cur(s);
	struct store_index_slot *slot = store_index_slots(ix);
	const struct store_ring_slot *ring = store_at(s, h->ring_off);
	uint64_t count = h->txn_count, nr = count < h->ring_n ? count : h->ring_n;
	uint64_t no = 0, nt = 0, revs = 0;

	for (uint64_t i = 0; i < ix->slots; i++) {
		if (slot[i].key == 0 || slot[i].head == 0)
			continue;
		no++;
		for (uint64_t off = slot[i].head; off != 0;
		     off = ((const struct store_rev *)store_at(s, off))->next)
			revs++;
	}
	src->objs = malloc(sizeof(*src->objs) * (no + 1));
	src->txns = malloc(sizeof(*src->txns) * (revs + nr + 1));
	if (src->objs == NULL || src->txns == NULL)
		return -ENOMEM;
	no = 0;
	for (uint64_t i = 0; i < ix->slots; i++) {
		if (slot[i].key == 0 || slot[i].head == 0)
			continue;
		src->objs[no].key = slot[i].key - 1;
		src->objs[no++].off = slot[i].head;
		for (uint64_t off = slot[i].head; off != 0;) {
			const struct store_rev *rv = store_at(s, off);
			src->txns[nt].key = rv->tid; /* a revision's tid is its transaction's */
			src->txns[nt++].off = rv->txn_off;
			off = rv->next;
		}
	}
	for (uint64_t k = count - nr; k < count; k++) {
		src->txns[nt].key = ring[k % h->ring_n].tid;
		src->txns[nt++].off = ring[k % h->ring_n].txn_off;
	}
	qsort(src->objs, no, sizeof(*src->objs), snap_cmp_pair);
	qsort(src->txns, nt, sizeof(*src->txns), snap_cmp_pair);
	uint64_t u = 0;
	for (uint64_t i = 0; i < nt; i++)
		if (u == 0 || src->txns[u - 1].off != src->txns[i].off)
			src->txns[u++] = src->txns[i];
	src->n_objs = no;
	src->n_txns = u;
	src->n_ring = nr;
	src->n_revs = revs;
	return 0;
}

int zap_store_snapshot_write(const struct zap_store *s, zap_store_sink_fn fn, void *ctx)
{
	const struct store_hdr *h = s->hdr;
	struct snap_src src;
	struct zap_snap_out *o = malloc(sizeof(*o));
	int rc;

	memset(&src, 0, sizeof(src));
	rc = o ? snap_collect(s, &src) : -ENOMEM;
	if (rc == 0) {
		zap_snap_out_init(o, fn, ctx);
		zap_snap_put_le64(o, SNAP_MAGIC);
		zap_snap_put_le32(o, SNAP_VERSION);
		zap_snap_put_le32(o, h->ring_n);
		zap_snap_put_le64(o, h->last_tid);
		zap_snap_put_le64(o, h->pack_tid);
		zap_snap_put_le64(o, h->txn_count);
		zap_snap_put_le64(o, src.n_txns);
		zap_snap_put_le64(o, src.n_ring);
		zap_snap_put_le64(o, src.n_objs);
		zap_snap_put_le64(o, src.n_revs);
		for (uint64_t i = 0; i < src.n_txns; i++)
			snap_write_txn(o, s, src.txns[i].off);
		for (uint64_t i = 0; i < src.n_objs; i++)
			snap_write_object(o, s, &src.objs[i]);
		zap_snap_put_le64(o, zap_snap_ck_final(&o->ck));
		zap_snap_flush(o);
		rc = o->rc;
	}
	free(src.objs);
	free(src.txns);
	free(o);
	return rc;
}

/* ------------------------------------------------------------ input */

struct snap_hdr {
	uint32_t ring_slots;
	uint64_t last_tid, pack_tid, txn_count, n_txns, n_ring, n_objects, n_revisions;
};

/* A parsed transaction of the table. */
struct snap_txn {
	uint64_t tid;
	uint32_t n_oids, user_len, description_len, extension_len;
	const uint8_t *oids; /* little-endian u64s, then the texts */
	uint32_t refs;
	uint64_t off; /* its block, once built */
};

struct snap_load {
	struct zap_store *s;
	struct snap_hdr h;
	struct snap_txn *txns;
	const uint8_t *objects; /* start of the object section */
	size_t objects_bytes;
	uint64_t need_bytes; /* arena bytes the blocks take */
};

static uint64_t snap_class_bytes(uint64_t bytes)
{
	return store_class_bytes(store_class_of(bytes));
}

static struct snap_txn *snap_find_txn(struct snap_load *l, uint64_t tid)
{
	uint64_t a = 0, b = l->h.n_txns;

	while (a < b) {
		uint64_t mid = a + (b - a) / 2;
		if (l->txns[mid].tid < tid)
			a = mid + 1;
		else
			b = mid;
	}
	return a < l->h.n_txns && l->txns[a].tid == tid ? &l->txns[a] : NULL;
}

/* Header rules that do not depend on the sections. */
static int snap_check_header(struct snap_load *l, size_t body_bytes)
{
	const struct snap_hdr *h = &l->h;
	const struct store_hdr *sh = l->s->hdr;
	uint64_t ring_n = h->ring_slots;

	if (ring_n != sh->ring_n)
		return -EINVAL;
	if (h->pack_tid > h->last_tid ||
	    h->n_ring != (h->txn_count < ring_n ? h->txn_count : ring_n) || h->n_ring > h->n_txns ||
	    h->n_txns > body_bytes / SNAP_TXN_FIXED_BYTES || h->n_objects > h->n_revisions ||
	    h->n_revisions > body_bytes / SNAP_REV_FIXED_BYTES ||
	    (h->txn_count == 0 && (h->n_txns != 0 || h->n_objects != 0 || h->last_tid != 0)) ||
	    (h->txn_count != 0 && h->last_tid == 0))
		return -EBADMSG;
	return 0;
}

/* Parse the txn table into l->txns; adds the ring's references. */
static int snap_parse_txns(struct snap_load *l, struct zap_rcur *in)
{
	uint64_t n = l->h.n_txns;

	for (uint64_t i = 0; i < n; i++) {
		struct snap_txn *t = &l->txns[i];
		t->tid = zap_r_le64(in);
		t->n_oids = zap_r_le32(in);
		t->user_len = zap_r_le32(in);
		t->description_len = zap_r_le32(in);
		t->extension_len = zap_r_le32(in);
		t->oids = zap_r_take(in, 8ull * t->n_oids);
		zap_r_take(in, (uint64_t)t->user_len + t->description_len + t->extension_len);
		if (in->bad || t->tid == 0 || t->tid > l->h.last_tid || t->n_oids == 0 ||
		    (i > 0 && t->tid <= l->txns[i - 1].tid))
			return -EBADMSG;
		t->refs = i >= n - l->h.n_ring ? 1 : 0;
		l->need_bytes += snap_class_bytes(
		    store_txn_bytes(t->n_oids, t->user_len, t->description_len, t->extension_len));
	}
	if (n > 0 && l->txns[n - 1].tid != l->h.last_tid)
		return -EBADMSG;
	return 0;
}

/*
 * Parse the objects (without building): bounds, orderings, each revision's
 * transaction, record sizes; count references and bytes.
 */
static int snap_parse_objects(struct snap_load *l, struct zap_rcur *in)
{
	uint64_t revisions = 0, prev_oid = 0;

	l->objects = in->p + in->off;
	for (uint64_t i = 0; i < l->h.n_objects; i++) {
		uint64_t oid = zap_r_le64(in), prev_tid = UINT64_MAX;
		uint32_t n_revs = zap_r_le32(in);
		if (in->bad || oid > ZAP_STORE_MAX_OID || (i > 0 && oid <= prev_oid) || n_revs == 0)
			return -EBADMSG;
		prev_oid = oid;
		for (uint32_t k = 0; k < n_revs; k++) {
			uint64_t tid = zap_r_le64(in);
			uint32_t flags = zap_r_le32(in);
			uint64_t len = zap_r_le64(in);
			struct snap_txn *t;
			if (in->bad || tid >= prev_tid || (flags & ~SNAP_REV_DELETED) != 0 ||
			    ((flags & SNAP_REV_DELETED) && len != 0) || zap_r_take(in, len) == NULL)
				return -EBADMSG;
			t = snap_find_txn(l, tid);
			if (t == NULL || t->refs > t->n_oids)
				return -EBADMSG;
			if (len > l->s->hdr->max_record_bytes)
				return -EMSGSIZE;
			t->refs++;
			prev_tid = tid;
			l->need_bytes += snap_class_bytes(sizeof(struct store_rev) + len);
			revisions++;
		}
	}
	l->objects_bytes = (size_t)(in->p + in->off - l->objects);
	if (revisions != l->h.n_revisions)
		return -EBADMSG;
	for (uint64_t i = 0; i < l->h.n_txns; i++)
		if (l->txns[i].refs == 0)
			return -EBADMSG; /* in no ring slot and no revision: not part of a store */
	return 0;
}

/* Build the transaction blocks (space was checked). */
static int snap_build_txns(struct snap_load *l)
{
	for (uint64_t i = 0; i < l->h.n_txns; i++) {
		struct snap_txn *t = &l->txns[i];
		uint64_t bytes =
		    store_txn_bytes(t->n_oids, t->user_len, t->description_len, t->extension_len);
		uint64_t off = store_alloc(l->s, bytes);
		if (off == 0)
			return -ENOSPC;
		struct store_txn *x = store_at(l->s, off);
		uint8_t *p = (uint8_t *)(x + 1);
		memset(x, 0, sizeof(*x));
		x->tid = t->tid;
		x->refs = t->refs;
		x->n_oids = t->n_oids;
		x->user_len = t->user_len;
		x->description_len = t->description_len;
		x->extension_len = t->extension_len;
		for (uint32_t k = 0; k < t->n_oids; k++) {
			uint64_t oid = zap_get_le64(t->oids + 8ull * k);
			memcpy(p + 8ull * k, &oid, 8);
		}
		memcpy(p + 8ull * t->n_oids, t->oids + 8ull * t->n_oids,
		       bytes - sizeof(*x) - 8ull * t->n_oids);
		t->off = off;
	}
	return 0;
}

/* Build every chain from the parsed object section, then publish its key. */
static int snap_build_objects(struct snap_load *l)
{
	struct zap_rcur in = {.p = l->objects, .len = l->objects_bytes};
	struct zap_store *s = l->s;

	for (uint64_t i = 0; i < l->h.n_objects; i++) {
		uint64_t oid = zap_r_le64(&in), head = 0;
		uint32_t n_revs = zap_r_le32(&in);
		struct store_rev *prev = NULL;
		for (uint32_t k = 0; k < n_revs; k++) {
			uint64_t tid = zap_r_le64(&in);
			uint32_t flags = zap_r_le32(&in);
			uint64_t len = zap_r_le64(&in);
			const uint8_t *data = zap_r_take(&in, len);
			uint64_t off = store_alloc(s, sizeof(struct store_rev) + len);
			if (off == 0)
				return -ENOSPC;
			struct store_rev *rv = store_at(s, off);
			rv->next = 0;
			rv->tid = tid;
			rv->txn_off = snap_find_txn(l, tid)->off;
			rv->len = len;
			rv->flags = flags & SNAP_REV_DELETED ? REV_DELETED : 0;
			rv->pad = 0;
			if (len)
				memcpy(rv + 1, data, len);
			if (prev)
				prev->next = off;
			else
				head = off;
			prev = rv;
		}
		store_index_add(s, oid, head); /* publishes the complete chain */
	}
	return 0;
}

/* Fill the ring slots the source used, then publish counts and tids. */
static void snap_publish(struct snap_load *l)
{
	struct zap_store *s = l->s;
	struct store_hdr *h = s->hdr;
	struct store_ring_slot *ring = store_at(s, h->ring_off);
	uint64_t first = l->h.n_txns - l->h.n_ring, k0 = l->h.txn_count - l->h.n_ring;

	for (uint64_t i = 0; i < l->h.n_ring; i++) {
		struct store_ring_slot *slot = &ring[(k0 + i) % h->ring_n];
		STORE_RLX(&slot->tid, l->txns[first + i].tid);
		STORE_RLX(&slot->txn_off, l->txns[first + i].off);
	}
	h->objects = l->h.n_objects;
	h->revisions = l->h.n_revisions;
	STORE_REL(&h->txn_count, l->h.txn_count);
	STORE_REL(&h->pack_tid, l->h.pack_tid);
	STORE_REL(&h->last_tid, l->h.last_tid);
}

/* The stream after its envelope (zap_snap_open()): header, sections. */
static int snap_load(struct snap_load *l, struct zap_rcur *in)
{
	struct snap_hdr *h = &l->h;
	const struct store_hdr *sh = l->s->hdr;
	int rc;

	h->ring_slots = zap_r_le32(in);
	h->last_tid = zap_r_le64(in);
	h->pack_tid = zap_r_le64(in);
	h->txn_count = zap_r_le64(in);
	h->n_txns = zap_r_le64(in);
	h->n_ring = zap_r_le64(in);
	h->n_objects = zap_r_le64(in);
	h->n_revisions = zap_r_le64(in);
	if (in->bad)
		return -EBADMSG;
	rc = snap_check_header(l, zap_r_left(in));
	if (rc != 0)
		return rc;
	if (sh->txn_count != 0 || sh->last_tid != 0 || sh->objects != 0)
		return -EINVAL;
	l->txns = calloc(h->n_txns + 1, sizeof(*l->txns));
	if (l->txns == NULL)
		return -ENOMEM;
	rc = snap_parse_txns(l, in);
	if (rc == 0)
		rc = snap_parse_objects(l, in);
	if (rc == 0 && zap_r_left(in) != 0)
		rc = -EBADMSG;
	if (rc != 0)
		return rc;
	/* growing the index leaves the store logically empty if the rest fails */
	rc = store_index_grow(l->s, h->n_objects);
	if (rc != 0)
		return rc;
	if (l->need_bytes > sh->size_bytes - sh->bump)
		return -ENOSPC;
	rc = snap_build_txns(l);
	if (rc == 0)
		rc = snap_build_objects(l);
	if (rc == 0)
		snap_publish(l);
	return rc;
}

int zap_store_snapshot_load(struct zap_store *s, const void *buf, size_t len)
{
	struct snap_load l;
	struct zap_rcur in;
	int rc;

	if (!s->writer)
		return -EPERM;
	rc = zap_snap_open(&in, buf, len, SNAP_HDR_BYTES, SNAP_MAGIC, SNAP_VERSION);
	if (rc != 0)
		return rc;
	memset(&l, 0, sizeof(l));
	l.s = s;
	rc = snap_load(&l, &in);
	free(l.txns);
	return rc;
}
