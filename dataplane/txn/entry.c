/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap log entries: encoder and strict decoder.
 *
 * Design: fields are written and read one byte at a time in little-endian
 * order through the codec of base/bytes.h (zap_put_le*, zap_get_le*), so
 * the encoding never depends on the host's layout or alignment. The
 * decoder checks, in a fixed order, every length against the bytes that
 * remain before it touches them, so no input can make it read outside
 * [buf, buf + len).
 *
 * Invariants: a successful decode followed by zap_entry_encode() yields the
 * same bytes; every rejected entry maps to exactly one documented errno.
 *
 * Duplicate oids are found with an open-addressing set owned by the decoder;
 * a slot is live when its stamp equals the current generation, so the set
 * never has to be cleared between entries.
 *
 * Threading: one decoder per thread (the apply stage owns the one of the
 * state machine).
 */
#include "entry.h"
#include "base/bytes.h"
#include "base/oidset.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct zap_entry_decoder {
	struct zap_entry_limits lim;
	struct zap_entry_store *stores; /* max_objects */
	struct zap_entry_read *reads;	/* max_objects */
	struct zap_oidset seen; /* duplicate finder */
};

/* ---------------------------------------------------------------- encoder */

const char *zap_entry_type_name(unsigned type)
{
	static const char *const names[ZAP_ENTRY_TYPE_COUNT] = {
	    "NOP",	  "PREPARE",	  "COMMIT", "ABORT",   "ONESHOT",
	    "OID_RESERVE", "LEASE_EXPIRE", "PACK",   "PAYLOAD", "LARGE",
	};
	return type < ZAP_ENTRY_TYPE_COUNT ? names[type] : "?";
}

/* Body size of a PREPARE / ONESHOT, 0 when it would not fit its fields. */
static uint64_t zap_entry_txn_size(const struct zap_entry_txn *t)
{
	uint64_t n = ZAP_ENTRY_TXN_FIXED_BYTES;

	n += zap_txn_text_bytes(&t->text);
	n += (uint64_t)t->n_stores * ZAP_ENTRY_STORE_BYTES;
	n += (uint64_t)t->n_reads * ZAP_ENTRY_READ_BYTES;
	for (uint32_t i = 0; i < t->n_stores; i++) {
		if (t->stores[i].len > (UINT64_MAX >> 2) - n)
			return 0;
		n += t->stores[i].len;
	}
	return n;
}

size_t zap_entry_size(const struct zap_entry *e)
{
	uint64_t body;

	switch (e->type) {
	case ZAP_ENTRY_NOP:
		body = 0;
		break;
	case ZAP_ENTRY_PREPARE:
	case ZAP_ENTRY_ONESHOT:
		body = zap_entry_txn_size(&e->u.txn);
		if (body == 0)
			return 0;
		break;
	case ZAP_ENTRY_COMMIT:
		body = e->commit_tid != 0 ? 16 : 8;
		break;
	case ZAP_ENTRY_ABORT:
	case ZAP_ENTRY_PACK:
		body = 8;
		break;
	case ZAP_ENTRY_OID_RESERVE:
		body = 4;
		break;
	case ZAP_ENTRY_LEASE_EXPIRE:
		body = 2;
		break;
	case ZAP_ENTRY_PAYLOAD:
		if (e->u.payload.len > UINT64_MAX / 2)
			return 0;
		body = ZAP_ENTRY_PAYLOAD_FIXED_BYTES + e->u.payload.len;
		break;
	case ZAP_ENTRY_LARGE:
		body = ZAP_ENTRY_LARGE_BYTES;
		break;
	default:
		return 0;
	}
	if (body > SIZE_MAX - ZAP_ENTRY_HEADER_BYTES)
		return 0;
	return (size_t)(ZAP_ENTRY_HEADER_BYTES + body);
}

static uint8_t *zap_put_bytes(uint8_t *p, const void *src, uint64_t len)
{
	if (len)
		memcpy(p, src, len);
	return p + len;
}

static void zap_encode_txn(const struct zap_entry_txn *t, uint8_t *p)
{
	zap_put_le64(p, t->txn_id);
	zap_put_le32(p + 8, t->text.user_len);
	zap_put_le32(p + 12, t->text.description_len);
	zap_put_le32(p + 16, t->text.extension_len);
	zap_put_le32(p + 20, t->n_stores);
	zap_put_le32(p + 24, t->n_reads);
	p += ZAP_ENTRY_TXN_FIXED_BYTES;
	p = zap_put_bytes(p, t->text.user, t->text.user_len);
	p = zap_put_bytes(p, t->text.description, t->text.description_len);
	p = zap_put_bytes(p, t->text.extension, t->text.extension_len);
	for (uint32_t i = 0; i < t->n_stores; i++) {
		const struct zap_entry_store *s = &t->stores[i];
		zap_put_le64(p, s->oid);
		zap_put_le64(p + 8, s->base_serial);
		zap_put_le32(p + 16, s->deleted ? ZAP_ENTRY_STORE_DELETED : 0);
		zap_put_le64(p + 20, s->len);
		p = zap_put_bytes(p + ZAP_ENTRY_STORE_BYTES, s->data, s->len);
	}
	for (uint32_t i = 0; i < t->n_reads; i++) {
		zap_put_le64(p, t->reads[i].oid);
		zap_put_le64(p + 8, t->reads[i].serial);
		p += ZAP_ENTRY_READ_BYTES;
	}
}

ssize_t zap_entry_encode(const struct zap_entry *e, void *buf, size_t cap)
{
	size_t n = zap_entry_size(e);
	uint8_t *p = buf;

	if (n == 0 || n > (size_t)SSIZE_MAX)
		return -EINVAL;
	if (cap < n)
		return -ENOSPC;
	p[0] = ZAP_ENTRY_VERSION;
	p[1] = e->type;
	zap_put_le16(p + 2, e->node);
	zap_put_le32(p + 4, 0);
	zap_put_le64(p + 8, e->client_id);
	zap_put_le64(p + 16, e->seq);
	zap_put_le64(p + 24, e->clock_ns);
	p += ZAP_ENTRY_HEADER_BYTES;
	switch (e->type) {
	case ZAP_ENTRY_PREPARE:
	case ZAP_ENTRY_ONESHOT:
		zap_encode_txn(&e->u.txn, p);
		break;
	case ZAP_ENTRY_COMMIT:
		zap_put_le64(p, e->u.txn_id);
		if (e->commit_tid != 0)
			zap_put_le64(p + 8, e->commit_tid);
		break;
	case ZAP_ENTRY_ABORT:
		zap_put_le64(p, e->u.txn_id);
		break;
	case ZAP_ENTRY_OID_RESERVE:
		zap_put_le32(p, e->u.oid_count);
		break;
	case ZAP_ENTRY_LEASE_EXPIRE:
		zap_put_le16(p, e->u.expire_node);
		break;
	case ZAP_ENTRY_PACK:
		zap_put_le64(p, e->u.pack_tid);
		break;
	case ZAP_ENTRY_PAYLOAD:
		zap_put_le64(p, e->u.payload.id);
		zap_put_le64(p + 8, e->u.payload.offset);
		zap_put_le64(p + 16, e->u.payload.total);
		zap_put_bytes(p + ZAP_ENTRY_PAYLOAD_FIXED_BYTES, e->u.payload.data, e->u.payload.len);
		break;
	case ZAP_ENTRY_LARGE:
		zap_put_le64(p, e->u.large.id);
		zap_put_le64(p + 8, e->u.large.total);
		memcpy(p + 16, e->u.large.hash, ZAP_ENTRY_HASH_BYTES);
		break;
	default:
		break;
	}
	return (ssize_t)n;
}

/* ---------------------------------------------------------------- decoder */

int zap_entry_decoder_create(const struct zap_entry_limits *lim, struct zap_entry_decoder **out)
{
	struct zap_entry_decoder *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -ENOMEM;
	if (lim)
		d->lim = *lim;
	if (d->lim.max_record_bytes == 0)
		d->lim.max_record_bytes = ZAP_ENTRY_DEFAULT_MAX_RECORD_BYTES;
	if (d->lim.max_objects == 0)
		d->lim.max_objects = ZAP_ENTRY_DEFAULT_MAX_OBJECTS;
	if (d->lim.max_large_bytes == 0)
		d->lim.max_large_bytes = ZAP_ENTRY_DEFAULT_MAX_LARGE_BYTES;
	if (d->lim.max_text_bytes == 0)
		d->lim.max_text_bytes = ZAP_ENTRY_DEFAULT_MAX_TEXT_BYTES;
	d->stores = calloc(d->lim.max_objects, sizeof(*d->stores));
	d->reads = calloc(d->lim.max_objects, sizeof(*d->reads));
	if (!d->stores || !d->reads || zap_oidset_init(&d->seen, d->lim.max_objects) != 0) {
		zap_entry_decoder_destroy(d);
		return -ENOMEM;
	}
	*out = d;
	return 0;
}

void zap_entry_decoder_destroy(struct zap_entry_decoder *d)
{
	if (d == NULL)
		return;
	free(d->stores);
	free(d->reads);
	zap_oidset_free(&d->seen);
	free(d);
}

void zap_entry_decoder_limits(const struct zap_entry_decoder *d, struct zap_entry_limits *lim)
{
	*lim = d->lim;
}

/* Stores region: [p, p + rem); @p tail bytes must remain after the stores. */
static int zap_decode_stores(struct zap_entry_decoder *d, const uint8_t **pp, uint64_t *remp,
			     uint32_t n, uint64_t tail)
{
	const uint8_t *p = *pp;
	uint64_t rem = *remp;

	zap_oidset_reset(&d->seen);
	for (uint32_t i = 0; i < n; i++) {
		struct zap_entry_store *s = &d->stores[i];
		uint64_t after = (uint64_t)(n - i - 1) * ZAP_ENTRY_STORE_BYTES + tail;
		uint32_t flags;

		/* the caller checked that every descriptor fits: rem >= 28 + after */
		s->oid = zap_get_le64(p);
		s->base_serial = zap_get_le64(p + 8);
		flags = zap_get_le32(p + 16);
		s->len = zap_get_le64(p + 20);
		if (s->oid == ZAP_ENTRY_BAD_OID || (flags & ~ZAP_ENTRY_STORE_DELETED))
			return -EINVAL;
		s->deleted = (flags & ZAP_ENTRY_STORE_DELETED) != 0;
		if (s->len > d->lim.max_record_bytes)
			return -EMSGSIZE;
		if (s->deleted && (s->len != 0 || s->base_serial == 0))
			return -EINVAL;
		if (s->len > rem - ZAP_ENTRY_STORE_BYTES - after)
			return -EBADMSG;
		if (zap_oidset_add(&d->seen, s->oid))
			return -EINVAL;
		s->data = p + ZAP_ENTRY_STORE_BYTES;
		p += ZAP_ENTRY_STORE_BYTES + s->len;
		rem -= ZAP_ENTRY_STORE_BYTES + s->len;
	}
	*pp = p;
	*remp = rem;
	return 0;
}

static int zap_decode_reads(struct zap_entry_decoder *d, const uint8_t *p, uint32_t n)
{
	zap_oidset_reset(&d->seen);
	for (uint32_t i = 0; i < n; i++, p += ZAP_ENTRY_READ_BYTES) {
		d->reads[i].oid = zap_get_le64(p);
		d->reads[i].serial = zap_get_le64(p + 8);
		if (d->reads[i].oid == ZAP_ENTRY_BAD_OID || zap_oidset_add(&d->seen, d->reads[i].oid))
			return -EINVAL;
	}
	return 0;
}

static int zap_decode_txn(struct zap_entry_decoder *d, const uint8_t *p, uint64_t rem,
			  struct zap_entry_txn *t)
{
	uint64_t texts, fixed;
	int rc;

	if (rem < ZAP_ENTRY_TXN_FIXED_BYTES)
		return -EBADMSG;
	t->txn_id = zap_get_le64(p);
	t->text.user_len = zap_get_le32(p + 8);
	t->text.description_len = zap_get_le32(p + 12);
	t->text.extension_len = zap_get_le32(p + 16);
	t->n_stores = zap_get_le32(p + 20);
	t->n_reads = zap_get_le32(p + 24);
	p += ZAP_ENTRY_TXN_FIXED_BYTES;
	rem -= ZAP_ENTRY_TXN_FIXED_BYTES;
	if (t->txn_id == 0)
		return -EINVAL;
	if (t->text.user_len > d->lim.max_text_bytes ||
	    t->text.description_len > d->lim.max_text_bytes ||
	    t->text.extension_len > d->lim.max_text_bytes)
		return -EMSGSIZE;
	if ((uint64_t)t->n_stores + t->n_reads > d->lim.max_objects)
		return -E2BIG;
	texts = zap_txn_text_bytes(&t->text);
	fixed = texts + (uint64_t)t->n_stores * ZAP_ENTRY_STORE_BYTES +
		(uint64_t)t->n_reads * ZAP_ENTRY_READ_BYTES;
	if (fixed > rem)
		return -EBADMSG;
	p = zap_txn_text_point(&t->text, p, t->text.user_len, t->text.description_len,
			       t->text.extension_len);
	rem -= texts;
	rc = zap_decode_stores(d, &p, &rem, t->n_stores,
			       (uint64_t)t->n_reads * ZAP_ENTRY_READ_BYTES);
	if (rc)
		return rc;
	if (rem != (uint64_t)t->n_reads * ZAP_ENTRY_READ_BYTES)
		return -EBADMSG; /* trailing bytes */
	rc = zap_decode_reads(d, p, t->n_reads);
	if (rc)
		return rc;
	t->stores = d->stores;
	t->reads = d->reads;
	return 0;
}

/* Fixed-size bodies: exactly @p want bytes. */
static int zap_body_exact(uint64_t rem, uint64_t want)
{
	return rem < want || rem > want ? -EBADMSG : 0;
}

int zap_entry_decode(struct zap_entry_decoder *d, const void *buf, size_t len,
		     struct zap_entry *out)
{
	const uint8_t *p = buf;
	uint64_t rem;
	int rc;

	if (buf == NULL || len < ZAP_ENTRY_HEADER_BYTES)
		return -EBADMSG;
	out->version = p[0];
	out->type = p[1];
	if (out->version != ZAP_ENTRY_VERSION || out->type >= ZAP_ENTRY_TYPE_COUNT)
		return -ENOTSUP;
	out->node = zap_get_le16(p + 2);
	if (zap_get_le32(p + 4) != 0)
		return -EINVAL;
	out->client_id = zap_get_le64(p + 8);
	out->seq = zap_get_le64(p + 16);
	out->clock_ns = zap_get_le64(p + 24);
	p += ZAP_ENTRY_HEADER_BYTES;
	rem = len - ZAP_ENTRY_HEADER_BYTES;
	memset(&out->u, 0, sizeof(out->u));
	out->commit_tid = 0;

	switch (out->type) {
	case ZAP_ENTRY_NOP:
		if ((rc = zap_body_exact(rem, 0)))
			return rc;
		return out->client_id != 0 ? -EINVAL : 0;
	case ZAP_ENTRY_PREPARE:
	case ZAP_ENTRY_ONESHOT:
		return zap_decode_txn(d, p, rem, &out->u.txn);
	case ZAP_ENTRY_COMMIT:
		/* txn id, then the tid asked for (restore) when there is one */
		if (rem == 16) {
			out->commit_tid = zap_get_le64(p + 8);
			if (out->commit_tid == 0)
				return -EINVAL;
		} else if ((rc = zap_body_exact(rem, 8))) {
			return rc;
		}
		out->u.txn_id = zap_get_le64(p);
		return out->u.txn_id == 0 ? -EINVAL : 0;
	case ZAP_ENTRY_ABORT:
		if ((rc = zap_body_exact(rem, 8)))
			return rc;
		out->u.txn_id = zap_get_le64(p);
		return out->u.txn_id == 0 ? -EINVAL : 0;
	case ZAP_ENTRY_OID_RESERVE:
		if ((rc = zap_body_exact(rem, 4)))
			return rc;
		out->u.oid_count = zap_get_le32(p);
		if (out->u.oid_count == 0 || out->u.oid_count > ZAP_ENTRY_MAX_OID_RESERVE)
			return -EINVAL;
		return 0;
	case ZAP_ENTRY_LEASE_EXPIRE:
		if ((rc = zap_body_exact(rem, 2)))
			return rc;
		out->u.expire_node = zap_get_le16(p);
		return out->client_id != 0 ? -EINVAL : 0;
	case ZAP_ENTRY_PACK:
		if ((rc = zap_body_exact(rem, 8)))
			return rc;
		out->u.pack_tid = zap_get_le64(p);
		return out->u.pack_tid == 0 ? -EINVAL : 0;
	case ZAP_ENTRY_PAYLOAD: {
		struct zap_entry_payload *pl = &out->u.payload;
		if (rem <= ZAP_ENTRY_PAYLOAD_FIXED_BYTES)
			return -EBADMSG;
		pl->id = zap_get_le64(p);
		pl->offset = zap_get_le64(p + 8);
		pl->total = zap_get_le64(p + 16);
		pl->data = p + ZAP_ENTRY_PAYLOAD_FIXED_BYTES;
		pl->len = rem - ZAP_ENTRY_PAYLOAD_FIXED_BYTES;
		if (out->client_id != 0 || pl->id == 0)
			return -EINVAL;
		if (pl->total > d->lim.max_large_bytes)
			return -EMSGSIZE;
		return pl->offset > pl->total || pl->len > pl->total - pl->offset ? -EINVAL : 0;
	}
	case ZAP_ENTRY_LARGE:
		if ((rc = zap_body_exact(rem, ZAP_ENTRY_LARGE_BYTES)))
			return rc;
		out->u.large.id = zap_get_le64(p);
		out->u.large.total = zap_get_le64(p + 8);
		memcpy(out->u.large.hash, p + 16, ZAP_ENTRY_HASH_BYTES);
		if (out->client_id == 0 || out->u.large.id == 0 ||
		    out->u.large.total < ZAP_ENTRY_HEADER_BYTES)
			return -EINVAL;
		return out->u.large.total > d->lim.max_large_bytes ? -EMSGSIZE : 0;
	default:
		return -ENOTSUP;
	}
}
