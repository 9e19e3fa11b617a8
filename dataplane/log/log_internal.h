/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap log, private part: what log.c (append, sync, segments, open/close)
 * and log_recover.c (scanning segments at open, record checks, torn-tail
 * cut, replay) share. The on-disk layout and the invariants are stated at
 * the top of log.c. Internal to the log module: nothing here is in log.h.
 *
 * Threading rule: as for the whole log, one thread owns a zap_log; only
 * durable_lsn is read by other threads (release store, acquire load).
 */
#ifndef ZAP_LOG_INTERNAL_H
#define ZAP_LOG_INTERNAL_H

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

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

struct log_seg {
	uint64_t first_lsn; /* from the file name */
	uint64_t records;   /* records in the file */
	uint64_t max_slot;  /* largest slot among them (valid if records > 0) */
};

struct zap_log {
	struct zap_log_params p;
	char *dir;
	int dir_fd;
	int fd;		   /* last segment, open for writing */
	uint64_t file_off; /* bytes of the last segment in the file */
	uint8_t *buf;	   /* write buffer: bytes after file_off */
	uint64_t buf_used;
	uint64_t last_lsn;
	uint64_t durable_lsn; /* release-stored, acquire-loaded */
	int err;	      /* sticky -errno after a failed write/sync */
	struct log_seg *segs;
	uint64_t nsegs, segs_cap;
	uint64_t sync_appends; /* appends made durable by zap_log_sync() */
	struct zap_log_stats st;
};

/* What recovery needs from zap_log_open(): the callback and the message buffer. */
struct log_replay {
	zap_log_replay_fn fn;
	void *ctx;
	char *err;
	size_t err_len;
};

/* ---- little helpers ---------------------------------------------------- */

static inline uint64_t log_align(uint64_t n)
{
	return (n + ZAP_LOG_ALIGN_BYTES - 1) & ~(uint64_t)(ZAP_LOG_ALIGN_BYTES - 1);
}

static inline void log_seg_name(char name[ZAP_LOG_NAME_BYTES], uint64_t first_lsn)
{
	snprintf(name, ZAP_LOG_NAME_BYTES, "%020" PRIu64 ZAP_LOG_SUFFIX, first_lsn);
}

/* fdatasync in FSYNC mode (counted); a no-op in MEMORY mode. */
static inline int log_fdatasync(struct zap_log *l, int fd)
{
	if (l->p.durability != ZAP_LOG_DURABILITY_FSYNC)
		return 0;
	l->st.syncs++;
	return fdatasync(fd) < 0 ? -errno : 0;
}

/* ---- log.c -------------------------------------------------------------- */

/* Format a message into err (if err != NULL and err_len > 0). */
void log_msg(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Raw CRC32C update (no init, no final xor) over any buffer. */
uint32_t log_crc_update(uint32_t crc, const void *data, uint64_t len);

/* Record CRC: header bytes [0, 44), then payload and pad_bytes of zeros. */
uint32_t log_record_crc(const uint8_t *hdr, const void *payload, uint64_t len, uint64_t pad_bytes);

/* Append a segment (first record at first_lsn) to l->segs; 0 or -ENOMEM. */
int log_seg_push(struct zap_log *l, uint64_t first_lsn);

/* ---- log_recover.c ------------------------------------------------------ */

/* Fill l->segs from the segment files in l->dir_fd, sorted by first LSN. */
int log_list(struct zap_log *l);

/*
 * Replay every segment in l->segs through rp->fn, cut a torn tail of the
 * last one, and leave l->fd, l->file_off and l->last_lsn ready to append.
 * Returns 0, -EILSEQ (message in rp->err), another -errno, or the
 * callback's nonzero value.
 */
int log_recover(struct zap_log *l, const struct log_replay *rp);

#endif /* ZAP_LOG_INTERNAL_H */
