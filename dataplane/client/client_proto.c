/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap native client protocol codec (client_proto.h, docs/client.md).
 *
 * Three layers, each validated before the next sees a byte:
 *   1. the datagram header (zap_cp_hdr_decode): magic, version, type, flags,
 *      ids, cluster, chunk arithmetic, and that the datagram length is
 *      exactly the chunk's;
 *   2. reassembly (zap_cp_reasm_push, in client_proto_reasm.c);
 *   3. the body (zap_cp_request_decode / zap_cp_response_decode): a cursor
 *      that never reads past its end, counts checked against the remaining
 *      length before any array is filled.
 *
 * Big-endian throughout (base/bytes.h). The decoder's arrays are allocated
 * once at create; decoding allocates nothing. The reassembler allocates one
 * buffer per multi-datagram message, never more than max_message_bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client_proto.h"
#include "base/bytes.h"
#include "base/oidset.h"

/* ---------------------------------------------------------------- types */

static int is_request(unsigned t)
{
	return t >= ZAP_CP_REQUEST_FIRST && t <= ZAP_CP_REQUEST_LAST;
}

static int is_response(unsigned t)
{
	return t >= ZAP_CP_REQUEST_FIRST + ZAP_CP_RESPONSE_OFFSET &&
	       t <= ZAP_CP_REQUEST_LAST + ZAP_CP_RESPONSE_OFFSET;
}

static const char *const type_names[] = {
    "LOAD",    "LOAD_BEFORE", "HISTORY", "LAST_TID",	  "NEW_OIDS", "COMMIT_ONESHOT",
    "PREPARE", "COMMIT",      "ABORT",	 "CHANGES_SINCE", "SYNC",     "PACK",
};

static const char *const reply_names[] = {
    "LOAD_REPLY",     "LOAD_BEFORE_REPLY",    "HISTORY_REPLY", "LAST_TID_REPLY",
    "NEW_OIDS_REPLY", "COMMIT_ONESHOT_REPLY", "PREPARE_REPLY", "COMMIT_REPLY",
    "ABORT_REPLY",    "CHANGES_SINCE_REPLY",  "SYNC_REPLY",    "PACK_REPLY",
};

const char *zap_cp_type_name(unsigned type)
{
	if (is_request(type))
		return type_names[type - ZAP_CP_REQUEST_FIRST];
	if (is_response(type))
		return reply_names[type - ZAP_CP_REQUEST_FIRST - ZAP_CP_RESPONSE_OFFSET];
	return "?";
}

static const char *const status_names[ZAP_CP_STATUS_COUNT] = {
    "OK",	    "NOT_FOUND",     "CONFLICT",    "READ_CONFLICT",  "UNAVAILABLE", "BAD_REQUEST",
    "TOO_LARGE",    "STALE_REQUEST", "UNKNOWN_TXN", "DUPLICATE_TXN",  "BUSY",	     "ABORTED",
    "NOT_PREPARED", "STORE_FULL",    "STORE_ERROR", "OIDS_EXHAUSTED",
};

const char *zap_cp_status_name(unsigned status)
{
	return status < ZAP_CP_STATUS_COUNT ? status_names[status] : "?";
}

void zap_cp_limits_fill(const struct zap_cp_limits *in, struct zap_cp_limits *out)
{
	struct zap_cp_limits l = {0};
	if (in != NULL)
		l = *in;
	if (l.max_record_bytes == 0)
		l.max_record_bytes = ZAP_CP_DEFAULT_MAX_RECORD_BYTES;
	if (l.max_message_bytes == 0)
		l.max_message_bytes = ZAP_CP_DEFAULT_MAX_MESSAGE_BYTES;
	if (l.max_message_bytes > UINT32_MAX)
		l.max_message_bytes = UINT32_MAX;
	if (l.max_objects == 0)
		l.max_objects = ZAP_CP_DEFAULT_MAX_OBJECTS;
	if (l.max_text_bytes == 0)
		l.max_text_bytes = ZAP_CP_DEFAULT_MAX_TEXT_BYTES;
	if (l.max_items == 0)
		l.max_items = ZAP_CP_DEFAULT_MAX_ITEMS;
	*out = l;
}

/* ---------------------------------------------------------------- encoding */

#define TXN_FIXED_BYTES 28u
#define STORE_FIXED_BYTES 24u
#define READ_BYTES 16u
#define HIST_FIXED_BYTES 24u

static void write_request(const struct zap_cp_request *q, struct zap_wcur *w)
{
	switch (q->hdr.type) {
	case ZAP_CP_LOAD:
		zap_w_be64(w, q->oid);
		break;
	case ZAP_CP_LOAD_BEFORE:
		zap_w_be64(w, q->oid);
		zap_w_be64(w, q->tid);
		break;
	case ZAP_CP_HISTORY:
		zap_w_be64(w, q->oid);
		zap_w_be32(w, q->count);
		break;
	case ZAP_CP_NEW_OIDS:
		zap_w_be32(w, q->count);
		break;
	case ZAP_CP_CHANGES_SINCE:
		zap_w_be64(w, q->tid);
		zap_w_be32(w, q->count);
		break;
	case ZAP_CP_COMMIT:
		zap_w_be64(w, q->txn_id);
		if (q->tid != 0) /* the tid a restore asks for */
			zap_w_be64(w, q->tid);
		break;
	case ZAP_CP_ABORT:
		zap_w_be64(w, q->txn_id);
		break;
	case ZAP_CP_PACK:
		zap_w_be64(w, q->tid);
		break;
	case ZAP_CP_COMMIT_ONESHOT:
	case ZAP_CP_PREPARE:
		zap_w_be64(w, q->txn_id);
		zap_w_be32(w, q->n_stores);
		zap_w_be32(w, q->n_reads);
		zap_w_be32(w, q->text.user_len);
		zap_w_be32(w, q->text.description_len);
		zap_w_be32(w, q->text.extension_len);
		zap_w_bytes(w, q->text.user, q->text.user_len);
		zap_w_bytes(w, q->text.description, q->text.description_len);
		zap_w_bytes(w, q->text.extension, q->text.extension_len);
		for (uint32_t i = 0; i < q->n_stores; i++) {
			const struct zap_cp_store *s = &q->stores[i];
			zap_w_be64(w, s->oid);
			zap_w_be64(w, s->base_serial);
			zap_w_be32(w, s->deleted ? ZAP_CP_STORE_DELETED : 0);
			zap_w_be32(w, s->len);
			zap_w_bytes(w, s->data, s->len);
		}
		for (uint32_t i = 0; i < q->n_reads; i++) {
			zap_w_be64(w, q->reads[i].oid);
			zap_w_be64(w, q->reads[i].serial);
		}
		break;
	default: /* LAST_TID, SYNC: no body */
		break;
	}
}

static int request_sizes_fit(const struct zap_cp_request *q)
{
	if ((q->n_stores != 0 && q->stores == NULL) || (q->n_reads != 0 && q->reads == NULL))
		return 0;
	return 1;
}

size_t zap_cp_request_size(const struct zap_cp_request *q)
{
	if (!is_request(q->hdr.type) || !request_sizes_fit(q))
		return 0;
	struct zap_wcur w = {NULL, 0, 0};
	write_request(q, &w);
	return w.off > UINT32_MAX ? 0 : w.off;
}

ssize_t zap_cp_request_encode(const struct zap_cp_request *q, void *buf, size_t cap)
{
	size_t n = zap_cp_request_size(q);
	if (n == 0 && (!is_request(q->hdr.type) || !request_sizes_fit(q)))
		return -EINVAL;
	if (n == 0 && q->hdr.type != ZAP_CP_LAST_TID && q->hdr.type != ZAP_CP_SYNC)
		return -EINVAL;
	if (n > cap)
		return -ENOSPC;
	struct zap_wcur w = {buf, cap, 0};
	write_request(q, &w);
	return (ssize_t)w.off;
}

static int response_has_data(const struct zap_cp_response *r, unsigned req)
{
	return r->status == ZAP_CP_OK && (req == ZAP_CP_LOAD || req == ZAP_CP_LOAD_BEFORE);
}

static void write_response(const struct zap_cp_response *r, struct zap_wcur *w)
{
	unsigned req = (unsigned)r->hdr.type - ZAP_CP_RESPONSE_OFFSET;
	zap_w_be16(w, r->status);
	zap_w_be16(w, r->rflags);
	zap_w_be32(w, r->count);
	zap_w_be64(w, r->tid);
	zap_w_be64(w, r->oid);
	zap_w_be64(w, r->serial);
	zap_w_be64(w, r->next_serial);
	zap_w_be64(w, r->base_serial);
	if (response_has_data(r, req))
		zap_w_bytes(w, r->data, r->len);
	if (r->status != ZAP_CP_OK)
		return;
	if (req == ZAP_CP_HISTORY) {
		for (uint32_t i = 0; i < r->count; i++) {
			const struct zap_cp_hist *h = &r->hist[i];
			zap_w_be64(w, h->serial);
			zap_w_be64(w, h->size_bytes);
			zap_w_be32(w, h->deleted ? ZAP_CP_HIST_DELETED : 0);
			zap_w_be16(w, h->user_len);
			zap_w_be16(w, h->description_len);
			zap_w_bytes(w, h->user, h->user_len);
			zap_w_bytes(w, h->description, h->description_len);
		}
	} else if (req == ZAP_CP_CHANGES_SINCE && !(r->rflags & ZAP_CP_RFLAG_TOO_OLD)) {
		for (uint32_t i = 0; i < r->count; i++)
			zap_w_be64(w, r->oids[i]);
	}
}

size_t zap_cp_response_size(const struct zap_cp_response *r)
{
	if (!is_response(r->hdr.type))
		return 0;
	unsigned req = (unsigned)r->hdr.type - ZAP_CP_RESPONSE_OFFSET;
	if (r->status == ZAP_CP_OK && r->count != 0 &&
	    ((req == ZAP_CP_HISTORY && r->hist == NULL) ||
	     (req == ZAP_CP_CHANGES_SINCE && !(r->rflags & ZAP_CP_RFLAG_TOO_OLD) &&
	      r->oids == NULL)))
		return 0;
	struct zap_wcur w = {NULL, 0, 0};
	write_response(r, &w);
	return w.off > UINT32_MAX ? 0 : w.off;
}

ssize_t zap_cp_response_encode(const struct zap_cp_response *r, void *buf, size_t cap)
{
	size_t n = zap_cp_response_size(r);
	if (n == 0)
		return -EINVAL;
	if (n > cap)
		return -ENOSPC;
	struct zap_wcur w = {buf, cap, 0};
	write_response(r, &w);
	return (ssize_t)w.off;
}

uint32_t zap_cp_chunk_count(size_t total_bytes, uint32_t chunk_bytes)
{
	if (chunk_bytes == 0 || chunk_bytes > ZAP_CP_MAX_CHUNK_BYTES || total_bytes > UINT32_MAX)
		return 0;
	if (total_bytes == 0)
		return 1;
	uint64_t n = ((uint64_t)total_bytes + chunk_bytes - 1) / chunk_bytes;
	return n > ZAP_CP_MAX_CHUNKS ? 0 : (uint32_t)n;
}

static size_t chunk_len(uint32_t total, uint32_t chunk_bytes, uint32_t index)
{
	uint64_t off = (uint64_t)index * chunk_bytes;
	uint64_t left = total - off;
	return left < chunk_bytes ? (size_t)left : chunk_bytes;
}

ssize_t zap_cp_chunk_encode(const struct zap_cp_hdr *hdr, const void *body, size_t total_bytes,
			    uint32_t chunk_bytes, uint32_t index, void *out, size_t cap)
{
	uint32_t count = zap_cp_chunk_count(total_bytes, chunk_bytes);
	if (count == 0 || index >= count || (!is_request(hdr->type) && !is_response(hdr->type)))
		return -EINVAL;
	size_t n = chunk_len((uint32_t)total_bytes, chunk_bytes, index);
	if (ZAP_CP_HDR_BYTES + n > cap)
		return -ENOSPC;
	uint8_t *p = out;
	zap_put_be32(p, ZAP_CP_MAGIC);
	p[4] = ZAP_CP_VERSION;
	p[5] = hdr->type;
	zap_put_be16(p + 6, hdr->flags);
	zap_put_be64(p + 8, hdr->client_id);
	zap_put_be64(p + 16, hdr->request_id);
	zap_put_be64(p + 24, hdr->cluster_id);
	zap_put_be16(p + 32, (uint16_t)index);
	zap_put_be16(p + 34, (uint16_t)count);
	zap_put_be32(p + 36, chunk_bytes);
	zap_put_be32(p + 40, (uint32_t)total_bytes);
	zap_put_be32(p + 44, 0);
	if (n != 0)
		memcpy(p + ZAP_CP_HDR_BYTES, (const uint8_t *)body + (size_t)index * chunk_bytes,
		       n);
	return (ssize_t)(ZAP_CP_HDR_BYTES + n);
}

/* ---------------------------------------------------------------- header */

int zap_cp_hdr_decode(const void *dgram, size_t len, uint64_t cluster_id,
		      uint64_t max_message_bytes, struct zap_cp_hdr *hdr)
{
	const uint8_t *p = dgram;
	if (max_message_bytes == 0)
		max_message_bytes = ZAP_CP_DEFAULT_MAX_MESSAGE_BYTES;
	if (len < ZAP_CP_HDR_BYTES)
		return -ENODATA;
	if (zap_get_be32(p) != ZAP_CP_MAGIC)
		return -EPROTO;
	if (p[4] != ZAP_CP_VERSION)
		return -EPROTONOSUPPORT;
	if (!is_request(p[5]) && !is_response(p[5]))
		return -ENOTSUP;
	hdr->type = p[5];
	hdr->flags = zap_get_be16(p + 6);
	hdr->client_id = zap_get_be64(p + 8);
	hdr->request_id = zap_get_be64(p + 16);
	hdr->cluster_id = zap_get_be64(p + 24);
	hdr->chunk_index = zap_get_be16(p + 32);
	hdr->chunk_count = zap_get_be16(p + 34);
	hdr->chunk_bytes = zap_get_be32(p + 36);
	hdr->total_bytes = zap_get_be32(p + 40);
	if ((hdr->flags & ~ZAP_CP_FLAGS_KNOWN) != 0 || zap_get_be32(p + 44) != 0 ||
	    hdr->client_id == 0 || hdr->request_id == 0)
		return -EINVAL;
	if (hdr->cluster_id != cluster_id)
		return -EXDEV;
	if (hdr->total_bytes > max_message_bytes)
		return -EMSGSIZE;
	uint32_t count = zap_cp_chunk_count(hdr->total_bytes, hdr->chunk_bytes);
	if (count == 0 || count != hdr->chunk_count || hdr->chunk_index >= count)
		return -ERANGE;
	if (len - ZAP_CP_HDR_BYTES !=
	    chunk_len(hdr->total_bytes, hdr->chunk_bytes, hdr->chunk_index))
		return -EBADMSG;
	return 0;
}

/* ---------------------------------------------------------------- decoder */

struct zap_cp_decoder {
	struct zap_cp_limits lim;
	struct zap_cp_store *stores;
	struct zap_cp_read *reads;
	struct zap_cp_hist *hist;
	uint64_t *oids;
	struct zap_oidset seen; /* duplicate-oid check */
};

int zap_cp_decoder_create(const struct zap_cp_limits *lim, struct zap_cp_decoder **out)
{
	struct zap_cp_decoder *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	zap_cp_limits_fill(lim, &d->lim);
	d->stores = calloc(d->lim.max_objects, sizeof(*d->stores));
	d->reads = calloc(d->lim.max_objects, sizeof(*d->reads));
	d->hist = calloc(d->lim.max_items, sizeof(*d->hist));
	d->oids = calloc(d->lim.max_items, sizeof(*d->oids));
	if (d->stores == NULL || d->reads == NULL || d->hist == NULL || d->oids == NULL ||
	    zap_oidset_init(&d->seen, d->lim.max_objects) != 0) {
		zap_cp_decoder_destroy(d);
		return -ENOMEM;
	}
	*out = d;
	return 0;
}

void zap_cp_decoder_destroy(struct zap_cp_decoder *d)
{
	if (d == NULL)
		return;
	free(d->stores);
	free(d->reads);
	free(d->hist);
	free(d->oids);
	zap_oidset_free(&d->seen);
	free(d);
}

void zap_cp_decoder_limits(const struct zap_cp_decoder *d, struct zap_cp_limits *lim)
{
	*lim = d->lim;
}

static int decode_text(struct zap_rcur *r, uint32_t len, const void **out)
{
	if (len > zap_r_left(r))
		return -EBADMSG;
	*out = len ? zap_r_take(r, len) : NULL;
	return 0;
}

static int decode_txn(struct zap_cp_decoder *d, struct zap_rcur *r, struct zap_cp_request *q)
{
	const uint8_t *p = zap_r_take(r, TXN_FIXED_BYTES);
	if (p == NULL)
		return -EBADMSG;
	q->txn_id = zap_get_be64(p);
	q->n_stores = zap_get_be32(p + 8);
	q->n_reads = zap_get_be32(p + 12);
	q->text.user_len = zap_get_be32(p + 16);
	q->text.description_len = zap_get_be32(p + 20);
	q->text.extension_len = zap_get_be32(p + 24);
	if (q->txn_id == 0)
		return -EINVAL;
	if ((uint64_t)q->n_stores + q->n_reads > d->lim.max_objects)
		return -E2BIG;
	/* every store takes at least its fixed part, every read its 16 bytes */
	if ((uint64_t)q->n_stores * STORE_FIXED_BYTES + (uint64_t)q->n_reads * READ_BYTES >
	    zap_r_left(r))
		return -EBADMSG;
	if (q->text.user_len > d->lim.max_text_bytes ||
	    q->text.description_len > d->lim.max_text_bytes ||
	    q->text.extension_len > d->lim.max_text_bytes)
		return -EMSGSIZE;
	int rc;
	if ((rc = decode_text(r, q->text.user_len, &q->text.user)) != 0 ||
	    (rc = decode_text(r, q->text.description_len, &q->text.description)) != 0 ||
	    (rc = decode_text(r, q->text.extension_len, &q->text.extension)) != 0)
		return rc;
	zap_oidset_reset(&d->seen);
	for (uint32_t i = 0; i < q->n_stores; i++) {
		struct zap_cp_store *s = &d->stores[i];
		p = zap_r_take(r, STORE_FIXED_BYTES);
		if (p == NULL)
			return -EBADMSG;
		s->oid = zap_get_be64(p);
		s->base_serial = zap_get_be64(p + 8);
		uint32_t flags = zap_get_be32(p + 16);
		s->len = zap_get_be32(p + 20);
		if (s->len > d->lim.max_record_bytes)
			return -EMSGSIZE;
		if ((rc = decode_text(r, s->len, &s->data)) != 0)
			return rc;
		if ((flags & ~ZAP_CP_STORE_DELETED) != 0 || s->oid == ZAP_CP_BAD_OID)
			return -EINVAL;
		s->deleted = (flags & ZAP_CP_STORE_DELETED) != 0;
		if (s->deleted && (s->len != 0 || s->base_serial == 0))
			return -EINVAL;
		if (zap_oidset_add(&d->seen, s->oid) != 0)
			return -EINVAL;
	}
	zap_oidset_reset(&d->seen);
	for (uint32_t i = 0; i < q->n_reads; i++) {
		p = zap_r_take(r, READ_BYTES);
		if (p == NULL)
			return -EBADMSG;
		d->reads[i].oid = zap_get_be64(p);
		d->reads[i].serial = zap_get_be64(p + 8);
		if (d->reads[i].oid == ZAP_CP_BAD_OID ||
		    zap_oidset_add(&d->seen, d->reads[i].oid) != 0)
			return -EINVAL;
	}
	q->stores = q->n_stores ? d->stores : NULL;
	q->reads = q->n_reads ? d->reads : NULL;
	return 0;
}

int zap_cp_request_decode(struct zap_cp_decoder *d, const struct zap_cp_hdr *hdr, const void *body,
			  size_t len, struct zap_cp_request *out)
{
	struct zap_rcur r = {body, len, 0, false};
	const uint8_t *p;
	int rc = 0;
	memset(out, 0, sizeof(*out));
	out->hdr = *hdr;
	if (!is_request(hdr->type))
		return -ENOTSUP;
	if ((hdr->flags & ZAP_CP_FLAG_SYNC) && hdr->type != ZAP_CP_LOAD &&
	    hdr->type != ZAP_CP_LAST_TID)
		return -EINVAL;
	switch (hdr->type) {
	case ZAP_CP_LOAD:
	case ZAP_CP_LOAD_BEFORE:
	case ZAP_CP_HISTORY: {
		size_t n = hdr->type == ZAP_CP_LOAD ? 8 : hdr->type == ZAP_CP_HISTORY ? 12 : 16;
		p = zap_r_take(&r, n);
		if (p == NULL)
			return -EBADMSG;
		out->oid = zap_get_be64(p);
		if (hdr->type == ZAP_CP_LOAD_BEFORE)
			out->tid = zap_get_be64(p + 8);
		if (hdr->type == ZAP_CP_HISTORY)
			out->count = zap_get_be32(p + 8);
		if (out->oid == ZAP_CP_BAD_OID)
			rc = -EINVAL;
		if (hdr->type == ZAP_CP_HISTORY &&
		    (out->count == 0 || out->count > d->lim.max_items))
			rc = -EINVAL;
		break;
	}
	case ZAP_CP_NEW_OIDS:
		out->count = zap_r_be32(&r);
		if (r.bad)
			return -EBADMSG;
		if (out->count == 0 || out->count > ZAP_CP_MAX_NEW_OIDS)
			rc = -EINVAL;
		break;
	case ZAP_CP_CHANGES_SINCE:
		p = zap_r_take(&r, 12);
		if (p == NULL)
			return -EBADMSG;
		out->tid = zap_get_be64(p);
		out->count = zap_get_be32(p + 8);
		if (out->count == 0 || out->count > d->lim.max_items)
			rc = -EINVAL;
		break;
	case ZAP_CP_COMMIT:
	case ZAP_CP_ABORT:
		out->txn_id = zap_r_be64(&r);
		if (r.bad)
			return -EBADMSG;
		if (out->txn_id == 0)
			rc = -EINVAL;
		if (out->hdr.type == ZAP_CP_COMMIT && zap_r_left(&r) >= 8) {
			out->tid = zap_r_be64(&r);
			if (out->tid == 0)
				rc = -EINVAL;
		}
		break;
	case ZAP_CP_PACK:
		out->tid = zap_r_be64(&r);
		if (r.bad)
			return -EBADMSG;
		if (out->tid == 0)
			rc = -EINVAL;
		break;
	case ZAP_CP_COMMIT_ONESHOT:
	case ZAP_CP_PREPARE:
		rc = decode_txn(d, &r, out);
		if (rc != 0)
			return rc;
		break;
	default: /* LAST_TID, SYNC */
		break;
	}
	if (zap_r_left(&r) != 0)
		return -EBADMSG;
	return rc;
}

static int decode_hist(struct zap_cp_decoder *d, struct zap_rcur *r, struct zap_cp_response *o)
{
	if ((uint64_t)o->count * HIST_FIXED_BYTES > zap_r_left(r))
		return -EBADMSG;
	for (uint32_t i = 0; i < o->count; i++) {
		struct zap_cp_hist *h = &d->hist[i];
		const uint8_t *p = zap_r_take(r, HIST_FIXED_BYTES);
		if (p == NULL)
			return -EBADMSG;
		h->serial = zap_get_be64(p);
		h->size_bytes = zap_get_be64(p + 8);
		uint32_t flags = zap_get_be32(p + 16);
		h->user_len = zap_get_be16(p + 20);
		h->description_len = zap_get_be16(p + 22);
		int rc;
		if ((rc = decode_text(r, h->user_len, &h->user)) != 0 ||
		    (rc = decode_text(r, h->description_len, &h->description)) != 0)
			return rc;
		if ((flags & ~ZAP_CP_HIST_DELETED) != 0)
			return -EINVAL;
		h->deleted = (flags & ZAP_CP_HIST_DELETED) != 0;
	}
	o->hist = o->count ? d->hist : NULL;
	return 0;
}

int zap_cp_response_decode(struct zap_cp_decoder *d, const struct zap_cp_hdr *hdr, const void *body,
			   size_t len, struct zap_cp_response *o)
{
	struct zap_rcur r = {body, len, 0, false};
	memset(o, 0, sizeof(*o));
	o->hdr = *hdr;
	if (!is_response(hdr->type))
		return -ENOTSUP;
	unsigned req = (unsigned)hdr->type - ZAP_CP_RESPONSE_OFFSET;
	const uint8_t *p = zap_r_take(&r, ZAP_CP_RESULT_BYTES);
	if (p == NULL)
		return -EBADMSG;
	o->status = zap_get_be16(p);
	o->rflags = zap_get_be16(p + 2);
	o->count = zap_get_be32(p + 4);
	o->tid = zap_get_be64(p + 8);
	o->oid = zap_get_be64(p + 16);
	o->serial = zap_get_be64(p + 24);
	o->next_serial = zap_get_be64(p + 32);
	o->base_serial = zap_get_be64(p + 40);
	if (o->status >= ZAP_CP_STATUS_COUNT)
		return -EDOM;
	if (hdr->flags != 0 || (o->rflags & ~ZAP_CP_RFLAGS_KNOWN) != 0)
		return -EINVAL;
	int lists = req == ZAP_CP_HISTORY || req == ZAP_CP_CHANGES_SINCE;
	if ((o->rflags & ZAP_CP_RFLAG_TOO_OLD) && req != ZAP_CP_CHANGES_SINCE)
		return -EINVAL;
	if ((o->rflags & ZAP_CP_RFLAG_TRUNCATED) && !lists)
		return -EINVAL;
	if (o->status != ZAP_CP_OK) {
		if (o->count != 0 || o->rflags != 0)
			return -EINVAL;
		return zap_r_left(&r) == 0 ? 0 : -EBADMSG;
	}
	int rc = 0;
	switch (req) {
	case ZAP_CP_LOAD:
	case ZAP_CP_LOAD_BEFORE:
		if (o->count != 0)
			return -EINVAL;
		if (zap_r_left(&r) > d->lim.max_record_bytes)
			return -EMSGSIZE;
		o->len = (uint32_t)zap_r_left(&r);
		o->data = o->len ? zap_r_take(&r, o->len) : NULL;
		break;
	case ZAP_CP_NEW_OIDS:
		if (o->count == 0 || o->count > ZAP_CP_MAX_NEW_OIDS || o->oid == ZAP_CP_BAD_OID ||
		    o->oid > ZAP_CP_BAD_OID - o->count)
			return -EINVAL;
		break;
	case ZAP_CP_HISTORY:
		if (o->count > d->lim.max_items)
			return -E2BIG;
		rc = decode_hist(d, &r, o);
		break;
	case ZAP_CP_CHANGES_SINCE:
		if (o->rflags & ZAP_CP_RFLAG_TOO_OLD) {
			if (o->count != 0)
				return -EINVAL;
			break;
		}
		if (o->count > d->lim.max_items)
			return -E2BIG;
		if ((uint64_t)o->count * 8 > zap_r_left(&r))
			return -EBADMSG;
		for (uint32_t i = 0; i < o->count; i++)
			d->oids[i] = zap_r_be64(&r);
		o->oids = o->count ? d->oids : NULL;
		break;
	default:
		if (o->count != 0)
			return -EINVAL;
		break;
	}
	if (rc != 0)
		return rc;
	return zap_r_left(&r) == 0 ? 0 : -EBADMSG;
}
