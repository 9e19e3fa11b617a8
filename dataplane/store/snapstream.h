/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap snapstream: the byte stream that store and state-machine snapshots
 * are written in and read from. Little-endian fixed-width fields, buffered
 * output to a sink, bounds-checked input, and a streaming 64-bit checksum
 * over 8-byte words whose value does not depend on how the stream is cut
 * into pieces (each word step is a bijection of the state, so a change
 * confined to one word is always seen).
 *
 * Threading: a stream belongs to the thread that writes or reads it.
 */
#ifndef ZAP_SNAPSTREAM_H
#define ZAP_SNAPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define ZAP_SNAP_OUT_BYTES (64u << 10)
#define ZAP_SNAP_CHECKSUM_BYTES 8u

static inline uint64_t zap_snap_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static inline uint32_t zap_snap_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/** Streaming checksum state. */
struct zap_snap_ck {
	uint64_t h;
	uint64_t pend; /* bytes of an incomplete word, little-endian */
	unsigned n_pend;
	uint64_t total_bytes;
};

void zap_snap_ck_init(struct zap_snap_ck *c);
void zap_snap_ck_update(struct zap_snap_ck *c, const void *buf, size_t len);
uint64_t zap_snap_ck_final(struct zap_snap_ck *c);

/** Buffered output to a sink; the first sink error sticks in rc. */
struct zap_snap_out {
	zap_store_sink_fn fn;
	void *ctx;
	int rc;
	size_t n;
	struct zap_snap_ck ck;
	uint8_t buf[ZAP_SNAP_OUT_BYTES];
};

/** Start an output (checksum initialised). */
void zap_snap_out_init(struct zap_snap_out *o, zap_store_sink_fn fn, void *ctx);
void zap_snap_put(struct zap_snap_out *o, const void *p, size_t len);
void zap_snap_put_u64(struct zap_snap_out *o, uint64_t v);
void zap_snap_put_u32(struct zap_snap_out *o, uint32_t v);
/** Hand buffered bytes to the sink. */
void zap_snap_flush(struct zap_snap_out *o);

/** Bounds-checked input; once a read runs past the end, `bad` sticks. */
struct zap_snap_in {
	const uint8_t *p;
	size_t left;
	int bad;
};

/** The next @p len bytes, or NULL (and bad set) when fewer are left. */
const uint8_t *zap_snap_take(struct zap_snap_in *in, uint64_t len);
uint64_t zap_snap_get_u64(struct zap_snap_in *in);
uint32_t zap_snap_get_u32(struct zap_snap_in *in);

#endif /* ZAP_SNAPSTREAM_H */
