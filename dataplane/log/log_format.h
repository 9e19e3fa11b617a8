/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap log, format: the bottom layer of the log module, shared by log.c
 * (append, sync, open/close) and log_recover.c (scan and replay at open).
 * It owns the on-disk layout (docs/log.md): segment file names, the 48-byte
 * record header and its fields, the record encoder and checker, CRC32C and
 * the zero padding; and the few helpers both files use on an open log (the
 * segment list, the counted fdatasync, error messages). It calls nothing
 * else of the module. Internal: nothing here is in log.h.
 *
 * Threading rule: as for the whole log, one thread owns a zap_log.
 */
#ifndef ZAP_LOG_FORMAT_H
#define ZAP_LOG_FORMAT_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

/* Header field offsets (see docs/log.md). */
#define ZAP_LOG_OFF_MAGIC 0
#define ZAP_LOG_OFF_RECORD_BYTES 4
#define ZAP_LOG_OFF_LSN 8
#define ZAP_LOG_OFF_SLOT 16
#define ZAP_LOG_OFF_BALLOT 24
#define ZAP_LOG_OFF_PAYLOAD_BYTES 32
#define ZAP_LOG_OFF_TYPE 36
#define ZAP_LOG_OFF_VERSION 37
#define ZAP_LOG_OFF_RESERVED 38
#define ZAP_LOG_OFF_HEADER_CRC 40
#define ZAP_LOG_OFF_RECORD_CRC 44

/** "ZLOG" as bytes on disk (little-endian u32). */
#define ZAP_LOG_MAGIC 0x474f4c5au
#define ZAP_LOG_VERSION 1u
/** "%020llu.zlog" plus NUL. */
#define ZAP_LOG_NAME_BYTES 32
#define ZAP_LOG_NAME_DIGITS 20
#define ZAP_LOG_SUFFIX ".zlog"

/* ---- segment names, alignment ---------------------------------------- */

static inline uint64_t log_align(uint64_t n)
{
	return (n + ZAP_LOG_ALIGN_BYTES - 1) & ~(uint64_t)(ZAP_LOG_ALIGN_BYTES - 1);
}

static inline void log_seg_name(char name[ZAP_LOG_NAME_BYTES], uint64_t first_lsn)
{
	snprintf(name, ZAP_LOG_NAME_BYTES, "%020" PRIu64 ZAP_LOG_SUFFIX, first_lsn);
}

/* Parse "%020llu.zlog" into the first LSN; false for any other name. */
bool log_parse_name(const char *name, uint64_t *first_lsn);

/* ---- records ------------------------------------------------------------ */

/* Zeros that pad a record to ZAP_LOG_ALIGN_BYTES. */
extern const uint8_t log_zeros[ZAP_LOG_ALIGN_BYTES];

/* Raw CRC32C update (no init, no final xor) over any buffer. */
uint32_t log_crc_update(uint32_t crc, const void *data, uint64_t len);

/* Record CRC: header bytes [0, 44), then payload and pad_bytes of zeros. */
uint32_t log_record_crc(const uint8_t *hdr, const void *payload, uint64_t len, uint64_t pad_bytes);

/* Fill the header of a record (both CRCs included) for payload[0, len). */
void log_encode(uint8_t hdr[ZAP_LOG_HEADER_BYTES], uint8_t type, uint64_t lsn, uint64_t slot,
		uint64_t ballot, const void *payload, uint64_t len);

enum zap_log_check {
	ZAP_LOG_REC_OK,
	ZAP_LOG_REC_SHORT,	/* fewer than 48 bytes left */
	ZAP_LOG_REC_BAD_HEADER, /* magic, header CRC, version or lengths */
	ZAP_LOG_REC_INCOMPLETE, /* good header, record runs past the end */
	ZAP_LOG_REC_BAD_CRC,	/* good header, whole record, bad record CRC */
};

struct zap_log_rec {
	uint64_t record_bytes;
	uint64_t lsn, slot, ballot, payload_bytes;
	uint8_t type;
	const char *why; /* for BAD_HEADER */
};

/* Check the record at map + pos (size bytes mapped); fills r as far as it got. */
enum zap_log_check log_check(const uint8_t *map, uint64_t size, uint64_t pos,
			     struct zap_log_rec *r);

/* ---- helpers on an open log --------------------------------------------- */

/* Format a message into err (if err != NULL and err_len > 0). */
void log_msg(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Append a segment (first record at first_lsn) to l->segs; 0 or -ENOMEM. */
int log_seg_push(struct zap_log *l, uint64_t first_lsn);

/* fdatasync in FSYNC mode (counted); a no-op in MEMORY mode. 0 or -errno. */
int log_fdatasync(struct zap_log *l, int fd);

#endif /* ZAP_LOG_FORMAT_H */
