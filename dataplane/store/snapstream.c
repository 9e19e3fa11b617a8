/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap snapstream: buffered little-endian output with a running checksum,
 * and the envelope check of a stream to read, shared by the store and
 * state-machine snapshots. See snapstream.h.
 */
#include <errno.h>
#include <string.h>

#include "snapstream.h"

static void ck_word(struct zap_snap_ck *c, uint64_t w)
{
	c->h = (c->h ^ w) * 0x9e3779b97f4a7c15ull;
	c->h ^= c->h >> 29;
}

void zap_snap_ck_init(struct zap_snap_ck *c)
{
	memset(c, 0, sizeof(*c));
	c->h = 0x6a09e667f3bcc908ull;
}

void zap_snap_ck_update(struct zap_snap_ck *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	c->total_bytes += len;
	for (; len > 0 && c->n_pend > 0; len--, p++) {
		c->pend |= (uint64_t)*p << (8 * c->n_pend);
		if (++c->n_pend == 8) {
			ck_word(c, c->pend);
			c->pend = 0;
			c->n_pend = 0;
		}
	}
	for (; len >= 8; len -= 8, p += 8)
		ck_word(c, zap_get_le64(p));
	for (; len > 0; len--, p++)
		c->pend |= (uint64_t)*p << (8 * c->n_pend++);
}

uint64_t zap_snap_ck_final(struct zap_snap_ck *c)
{
	ck_word(c, c->pend ^ ((uint64_t)c->n_pend << 56));
	ck_word(c, c->total_bytes);
	return c->h ^ (c->h >> 31);
}

void zap_snap_out_init(struct zap_snap_out *o, zap_store_sink_fn fn, void *ctx)
{
	o->fn = fn;
	o->ctx = ctx;
	o->rc = 0;
	o->n = 0;
	zap_snap_ck_init(&o->ck);
}

void zap_snap_flush(struct zap_snap_out *o)
{
	if (o->rc == 0 && o->n > 0)
		o->rc = o->fn(o->buf, o->n, o->ctx);
	o->n = 0;
}

void zap_snap_put(struct zap_snap_out *o, const void *p, size_t len)
{
	if (o->rc != 0 || len == 0)
		return;
	zap_snap_ck_update(&o->ck, p, len);
	if (len > ZAP_SNAP_OUT_BYTES - o->n) {
		zap_snap_flush(o);
		if (len >= ZAP_SNAP_OUT_BYTES / 2) {
			if (o->rc == 0)
				o->rc = o->fn(p, len, o->ctx);
			return;
		}
	}
	memcpy(o->buf + o->n, p, len);
	o->n += len;
}

void zap_snap_put_le64(struct zap_snap_out *o, uint64_t v)
{
	uint8_t b[8];
	zap_put_le64(b, v);
	zap_snap_put(o, b, 8);
}

void zap_snap_put_le32(struct zap_snap_out *o, uint32_t v)
{
	uint8_t b[4];
	zap_put_le32(b, v);
	zap_snap_put(o, b, 4);
}

int zap_snap_open(struct zap_rcur *in, const void *buf, size_t len, size_t hdr_bytes,
		  uint64_t magic, uint32_t version)
{
	const uint8_t *b = buf;
	struct zap_snap_ck ck;

	if (buf == NULL || len < hdr_bytes + ZAP_SNAP_CHECKSUM_BYTES)
		return -EBADMSG;
	zap_snap_ck_init(&ck);
	zap_snap_ck_update(&ck, b, len - ZAP_SNAP_CHECKSUM_BYTES);
	if (zap_snap_ck_final(&ck) != zap_get_le64(b + len - ZAP_SNAP_CHECKSUM_BYTES))
		return -EBADMSG;
	*in = (struct zap_rcur){.p = b, .len = len - ZAP_SNAP_CHECKSUM_BYTES};
	if (zap_r_le64(in) != magic)
		return -EBADMSG;
	if (zap_r_le32(in) != version)
		return -ENOTSUP;
	return 0;
}
