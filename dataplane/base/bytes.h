/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap byte codec: the one set of fixed-width integer readers and writers
 * that every codec of zap uses (log records, entries, Paxos messages, the
 * native client protocol, snapshot streams, ZEO frames and pickles, wire
 * frames).
 *
 * Fields are written and read one byte at a time, so an encoding never
 * depends on the host's byte order or alignment. zap's own formats are
 * little-endian (zap_put_le*, zap_get_le*); the network headers of wire
 * frames and ZEO's length prefixes are big-endian (zap_put_be*, zap_get_be*).
 *
 * Two cursors sit on top for codecs that write or read field after field:
 * - struct zap_wcur writes into [p, p + cap); a write that does not fit is
 *   counted in off and not made, so a caller sizes a buffer with a first pass
 *   over a NULL buffer of capacity 0 and checks off <= cap at the end;
 * - struct zap_rcur reads from [p, p + len); every read checks the bytes
 *   that remain first, and a short read sets bad and yields zeros.
 *
 * Header-only and free of dependencies: any module may include it.
 */
#ifndef ZAP_BASE_BYTES_H
#define ZAP_BASE_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------- little-endian */

static inline void zap_put_le16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}

static inline void zap_put_le32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
	b[2] = (uint8_t)(v >> 16);
	b[3] = (uint8_t)(v >> 24);
}

static inline void zap_put_le64(uint8_t *b, uint64_t v)
{
	zap_put_le32(b, (uint32_t)v);
	zap_put_le32(b + 4, (uint32_t)(v >> 32));
}

static inline uint16_t zap_get_le16(const uint8_t *b)
{
	return (uint16_t)(b[0] | (uint16_t)b[1] << 8);
}

static inline uint32_t zap_get_le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint64_t zap_get_le64(const uint8_t *b)
{
	return (uint64_t)zap_get_le32(b) | (uint64_t)zap_get_le32(b + 4) << 32;
}

/** An unsigned little-endian integer of n bytes (n <= 8). */
static inline uint64_t zap_get_le(const uint8_t *b, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

/* ---------------------------------------------------------- big-endian */

static inline void zap_put_be16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static inline void zap_put_be32(uint8_t *b, uint32_t v)
{
	zap_put_be16(b, (uint16_t)(v >> 16));
	zap_put_be16(b + 2, (uint16_t)v);
}

static inline void zap_put_be64(uint8_t *b, uint64_t v)
{
	zap_put_be32(b, (uint32_t)(v >> 32));
	zap_put_be32(b + 4, (uint32_t)v);
}

static inline uint16_t zap_get_be16(const uint8_t *b)
{
	return (uint16_t)((uint16_t)b[0] << 8 | b[1]);
}

static inline uint32_t zap_get_be32(const uint8_t *b)
{
	return (uint32_t)zap_get_be16(b) << 16 | zap_get_be16(b + 2);
}

static inline uint64_t zap_get_be64(const uint8_t *b)
{
	return (uint64_t)zap_get_be32(b) << 32 | zap_get_be32(b + 4);
}

/** An unsigned big-endian integer of n bytes (n <= 8). */
static inline uint64_t zap_get_be(const uint8_t *b, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | b[i];
	return v;
}

/* -------------------------------------------------------- write cursor */

/** A bounded write cursor: writes past the end are counted, not made. */
struct zap_wcur {
	uint8_t *p;
	size_t cap;
	size_t off;
};

static inline void zap_w_bytes(struct zap_wcur *w, const void *src, size_t n)
{
	if (n != 0 && w->off + n <= w->cap && w->off + n >= w->off)
		memcpy(w->p + w->off, src, n);
	w->off += n;
}

static inline void zap_w_u8(struct zap_wcur *w, uint8_t v)
{
	zap_w_bytes(w, &v, 1);
}

static inline void zap_w_le16(struct zap_wcur *w, uint16_t v)
{
	uint8_t b[2];
	zap_put_le16(b, v);
	zap_w_bytes(w, b, 2);
}

static inline void zap_w_le32(struct zap_wcur *w, uint32_t v)
{
	uint8_t b[4];
	zap_put_le32(b, v);
	zap_w_bytes(w, b, 4);
}

static inline void zap_w_le64(struct zap_wcur *w, uint64_t v)
{
	uint8_t b[8];
	zap_put_le64(b, v);
	zap_w_bytes(w, b, 8);
}

static inline void zap_w_be16(struct zap_wcur *w, uint16_t v)
{
	uint8_t b[2];
	zap_put_be16(b, v);
	zap_w_bytes(w, b, 2);
}

static inline void zap_w_be32(struct zap_wcur *w, uint32_t v)
{
	uint8_t b[4];
	zap_put_be32(b, v);
	zap_w_bytes(w, b, 4);
}

static inline void zap_w_be64(struct zap_wcur *w, uint64_t v)
{
	uint8_t b[8];
	zap_put_be64(b, v);
	zap_w_bytes(w, b, 8);
}

/* --------------------------------------------------------- read cursor */

/** A read cursor: every read checks the remaining length first. */
struct zap_rcur {
	const uint8_t *p;
	size_t len;
	size_t off;
	bool bad; /* a read ran past the end; it yielded zeros */
};

static inline size_t zap_r_left(const struct zap_rcur *r)
{
	return r->len - r->off;
}

/** The next n bytes, or NULL (and bad set) when fewer remain. */
static inline const uint8_t *zap_r_take(struct zap_rcur *r, size_t n)
{
	if (r->bad || n > r->len - r->off) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *b = r->p + r->off;
	r->off += n;
	return b;
}

static inline uint8_t zap_r_u8(struct zap_rcur *r)
{
	const uint8_t *b = zap_r_take(r, 1);
	return b ? b[0] : 0;
}

static inline uint16_t zap_r_le16(struct zap_rcur *r)
{
	const uint8_t *b = zap_r_take(r, 2);
	return b ? zap_get_le16(b) : 0;
}

static inline uint32_t zap_r_le32(struct zap_rcur *r)
{
	const uint8_t *b = zap_r_take(r, 4);
	return b ? zap_get_le32(b) : 0;
}

static inline uint64_t zap_r_le64(struct zap_rcur *r)
{
	const uint8_t *b = zap_r_take(r, 8);
	return b ? zap_get_le64(b) : 0;
}

static inline uint16_t zap_r_be16(struct zap_rcur *r)
{
	const uint8_t *b = zap_r_take(r, 2);
	return b ? zap_get_be16(b) : 0;
}

static inline uint32_t zap_r_be32(struct zap_rcur *r)
{
	const uint8_t *b = zap_r_take(r, 4);
	return b ? zap_get_be32(b) : 0;
}

static inline uint64_t zap_r_be64(struct zap_rcur *r)
{
	const uint8_t *b = zap_r_take(r, 8);
	return b ? zap_get_be64(b) : 0;
}

#endif /* ZAP_BASE_BYTES_H */
