/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap snapstream: the byte stream that store and state-machine snapshots
 * are written in and read from: little-endian fixed-width fields (the
 * codec of base/bytes.h), buffered output to a sink, the check of the
 * envelope every snapshot shares before it is read through a bounded
 * cursor (struct zap_rcur), and a streaming 64-bit checksum over 8-byte
 * words whose value does not depend on how the stream is cut into pieces
 * (each word step is a bijection of the state, so a change confined to one
 * word is always seen).
 *
 * Threading: a stream belongs to the thread that writes or reads it.
 */
#ifndef ZAP_SNAPSTREAM_H
#define ZAP_SNAPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "base/bytes.h"
#include "store.h"

#define ZAP_SNAP_OUT_BYTES (64u << 10)
#define ZAP_SNAP_CHECKSUM_BYTES 8u

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
/** Little-endian fields (zap_put_le64(), zap_put_le32()). */
void zap_snap_put_le64(struct zap_snap_out *o, uint64_t v);
void zap_snap_put_le32(struct zap_snap_out *o, uint32_t v);
/** Hand buffered bytes to the sink. */
void zap_snap_flush(struct zap_snap_out *o);

/**
 * Open a snapshot stream for reading: check its envelope, the part every
 * zap snapshot shares. The stream is at least @p hdr_bytes of header and
 * the trailer; the trailer is the checksum of every byte before it; the
 * header starts with @p magic (u64) and @p version (u32).
 *
 * @param in         on success, a read cursor over the stream without its
 *                   trailer, placed after the magic and the version
 * @param buf        the stream (may be NULL: then -EBADMSG)
 * @param len        its length in bytes
 * @param hdr_bytes  the length of the header, magic and version included
 * @return 0; -EBADMSG (too short, checksum, magic); -ENOTSUP (version).
 */
int zap_snap_open(struct zap_rcur *in, const void *buf, size_t len, size_t hdr_bytes,
		  uint64_t magic, uint32_t version);

#endif /* ZAP_SNAPSTREAM_H */
