/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap log, format: segment names, the record header codec (encode, check),
 * CRC32C, and the helpers log.c and log_recover.c share on an open log.
 * See log_format.h; the layout is described at the top of log.c and in
 * docs/log.md. Integers on disk are little-endian (base/bytes.h).
 *
 * Threading rule: the thread that owns the zap_log; the codec functions
 * are pure and may run on any thread.
 */
#include "log_internal.h"
#include "base/bytes.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_hash_crc.h>

#define ZAP_LOG_CRC_INIT 0xffffffffu
#define ZAP_LOG_CRC_XOR 0xffffffffu

const uint8_t log_zeros[ZAP_LOG_ALIGN_BYTES] = {0};

/* ---- segment names ------------------------------------------------------ */

bool log_parse_name(const char *name, uint64_t *first_lsn)
{
	uint64_t v = 0;

	if (strlen(name) != ZAP_LOG_NAME_DIGITS + strlen(ZAP_LOG_SUFFIX) ||
	    strcmp(name + ZAP_LOG_NAME_DIGITS, ZAP_LOG_SUFFIX) != 0)
		return false;
	for (int i = 0; i < ZAP_LOG_NAME_DIGITS; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		uint64_t d = (uint64_t)(name[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*first_lsn = v;
	return v > 0;
}

/* ---- CRC32C ------------------------------------------------------------- */

/*
 * Raw CRC32C update (no init, no final xor) over any buffer. rte_hash_crc()
 * reads 8 bytes at a time through aligned-type loads, so the head is fed
 * byte by byte until the pointer is 8-byte aligned; its length argument is
 * 32 bits, so long buffers go in chunks.
 */
uint32_t log_crc_update(uint32_t crc, const void *data, uint64_t len)
{
	const uint8_t *p = data;
	const uint64_t chunk_bytes = 1u << 30;

	while (len > 0 && ((uintptr_t)p & (ZAP_LOG_ALIGN_BYTES - 1)) != 0) {
		crc = rte_hash_crc_1byte(*p++, crc);
		len--;
	}
	while (len > 0) {
		uint64_t n = len < chunk_bytes ? len : chunk_bytes;
		crc = rte_hash_crc(p, (uint32_t)n, crc);
		p += n;
		len -= n;
	}
	return crc;
}

uint32_t zap_log_crc32c(const void *data, uint64_t len)
{
	return log_crc_update(ZAP_LOG_CRC_INIT, data, len) ^ ZAP_LOG_CRC_XOR;
}

uint32_t log_record_crc(const uint8_t *hdr, const void *payload, uint64_t len, uint64_t pad_bytes)
{
	uint32_t crc = log_crc_update(ZAP_LOG_CRC_INIT, hdr, ZAP_LOG_OFF_RECORD_CRC);
	crc = log_crc_update(crc, payload, len);
	crc = log_crc_update(crc, log_zeros, pad_bytes);
	return crc ^ ZAP_LOG_CRC_XOR;
}

/* ---- record encoding ---------------------------------------------------- */

void log_encode(uint8_t hdr[ZAP_LOG_HEADER_BYTES], uint8_t type, uint64_t lsn, uint64_t slot,
		uint64_t ballot, const void *payload, uint64_t len)
{
	uint64_t record_bytes = log_align(ZAP_LOG_HEADER_BYTES + len);

	memset(hdr, 0, ZAP_LOG_HEADER_BYTES);
	zap_put_le32(hdr + ZAP_LOG_OFF_MAGIC, ZAP_LOG_MAGIC);
	zap_put_le32(hdr + ZAP_LOG_OFF_RECORD_BYTES, (uint32_t)record_bytes);
	zap_put_le64(hdr + ZAP_LOG_OFF_LSN, lsn);
	zap_put_le64(hdr + ZAP_LOG_OFF_SLOT, slot);
	zap_put_le64(hdr + ZAP_LOG_OFF_BALLOT, ballot);
	zap_put_le32(hdr + ZAP_LOG_OFF_PAYLOAD_BYTES, (uint32_t)len);
	hdr[ZAP_LOG_OFF_TYPE] = type;
	hdr[ZAP_LOG_OFF_VERSION] = ZAP_LOG_VERSION;
	zap_put_le32(hdr + ZAP_LOG_OFF_HEADER_CRC, zap_log_crc32c(hdr, ZAP_LOG_OFF_HEADER_CRC));
	zap_put_le32(hdr + ZAP_LOG_OFF_RECORD_CRC,
		     log_record_crc(hdr, payload, len, record_bytes - ZAP_LOG_HEADER_BYTES - len));
}

/* ---- record checking ---------------------------------------------------- */

enum zap_log_check log_check(const uint8_t *map, uint64_t size, uint64_t pos, struct zap_log_rec *r)
{
	const uint8_t *h = map + pos;
	uint64_t left = size - pos;

	r->why = NULL;
	r->record_bytes = 0;
	if (left < ZAP_LOG_HEADER_BYTES)
		return ZAP_LOG_REC_SHORT;
	if (zap_get_le32(h + ZAP_LOG_OFF_MAGIC) != ZAP_LOG_MAGIC) {
		r->why = "bad magic";
		return ZAP_LOG_REC_BAD_HEADER;
	}
	if (zap_get_le32(h + ZAP_LOG_OFF_HEADER_CRC) != zap_log_crc32c(h, ZAP_LOG_OFF_HEADER_CRC)) {
		r->why = "bad header CRC";
		return ZAP_LOG_REC_BAD_HEADER;
	}
	if (h[ZAP_LOG_OFF_VERSION] != ZAP_LOG_VERSION ||
	    (h[ZAP_LOG_OFF_RESERVED] | h[ZAP_LOG_OFF_RESERVED + 1]) != 0) {
		r->why = "unknown version";
		return ZAP_LOG_REC_BAD_HEADER;
	}
	r->record_bytes = zap_get_le32(h + ZAP_LOG_OFF_RECORD_BYTES);
	r->payload_bytes = zap_get_le32(h + ZAP_LOG_OFF_PAYLOAD_BYTES);
	if (r->payload_bytes > ZAP_LOG_MAX_RECORD_BYTES_LIMIT ||
	    r->record_bytes != log_align(ZAP_LOG_HEADER_BYTES + r->payload_bytes)) {
		r->why = "inconsistent lengths";
		return ZAP_LOG_REC_BAD_HEADER;
	}
	r->lsn = zap_get_le64(h + ZAP_LOG_OFF_LSN);
	r->slot = zap_get_le64(h + ZAP_LOG_OFF_SLOT);
	r->ballot = zap_get_le64(h + ZAP_LOG_OFF_BALLOT);
	r->type = h[ZAP_LOG_OFF_TYPE];
	if (r->record_bytes > left)
		return ZAP_LOG_REC_INCOMPLETE;
	if (zap_get_le32(h + ZAP_LOG_OFF_RECORD_CRC) !=
	    log_record_crc(h, h + ZAP_LOG_HEADER_BYTES, r->record_bytes - ZAP_LOG_HEADER_BYTES, 0))
		return ZAP_LOG_REC_BAD_CRC;
	return ZAP_LOG_REC_OK;
}

/* ---- helpers on an open log --------------------------------------------- */

void log_msg(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

int log_seg_push(struct zap_log *l, uint64_t first_lsn)
{
	if (l->nsegs == l->segs_cap) {
		uint64_t cap = l->segs_cap ? 2 * l->segs_cap : 16;
		struct log_seg *s = realloc(l->segs, cap * sizeof(*s));
		if (s == NULL)
			return -ENOMEM;
		l->segs = s;
		l->segs_cap = cap;
	}
	l->segs[l->nsegs++] = (struct log_seg){.first_lsn = first_lsn};
	return 0;
}

int log_fdatasync(struct zap_log *l, int fd)
{
	if (l->p.durability != ZAP_LOG_DURABILITY_FSYNC)
		return 0;
	l->st.syncs++;
	return fdatasync(fd) < 0 ? -errno : 0;
}
