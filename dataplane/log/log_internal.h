/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap log, private part: the state of an open log, which log.c (append,
 * sync, segments, open/close) and log_recover.c (scanning segments at open,
 * torn-tail cut, replay) share, and what log.c calls in log_recover.c. The
 * on-disk format and the helpers below both are in log_format.h. The
 * invariants are stated at the top of log.c. Internal to the log module:
 * nothing here is in log.h.
 *
 * Threading rule: as for the whole log, one thread owns a zap_log; only
 * durable_lsn is read by other threads (release store, acquire load).
 */
#ifndef ZAP_LOG_INTERNAL_H
#define ZAP_LOG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "log_format.h"

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
