/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap log, recovery: run once by zap_log_open() on an existing directory.
 * Lists the segment files, maps each read-only, checks every record (header
 * CRC, lengths, record CRC, dense LSNs), hands the valid ones to the replay
 * callback, cuts a torn tail off the last segment and writes the corruption
 * messages. The rules are in docs/log.md, the format at the top of log.c.
 * log.c (append, sync, open/close) calls into this file; this file calls
 * only log_format.c (names, record checks, CRC, the segment list), never
 * back up. The state of an open log is in log_internal.h.
 *
 * Threading rule: runs on the thread calling zap_log_open(), before the log
 * is handed out, so nothing else can see the zap_log yet.
 */
#include "log_internal.h"
#include "base/bytes.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- resynchronisation ------------------------------------------------ */

/* First offset >= from (8-aligned) where a whole valid record starts, or size. */
static uint64_t zap_log_find_valid(const uint8_t *map, uint64_t size, uint64_t from)
{
	struct zap_log_rec r;

	for (uint64_t q = log_align(from); q + ZAP_LOG_HEADER_BYTES <= size;
	     q += ZAP_LOG_ALIGN_BYTES) {
		if (zap_get_le32(map + q) != ZAP_LOG_MAGIC)
			continue;
		if (log_check(map, size, q, &r) == ZAP_LOG_REC_OK)
			return q;
	}
	return size;
}

/* ---- segment list ----------------------------------------------------- */

static int zap_log_cmp_seg(const void *a, const void *b)
{
	const struct log_seg *x = a, *y = b;
	return x->first_lsn < y->first_lsn ? -1 : x->first_lsn > y->first_lsn;
}

int log_list(struct zap_log *l)
{
	int fd = dup(l->dir_fd);
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (d == NULL) {
		rc = -errno;
		close(fd);
		return rc;
	}
	rewinddir(d);
	while ((e = readdir(d)) != NULL) {
		uint64_t first_lsn;
		if (log_parse_name(e->d_name, &first_lsn)) {
			rc = log_seg_push(l, first_lsn);
			if (rc < 0)
				break;
		}
	}
	closedir(d);
	if (rc == 0 && l->nsegs > 1)
		qsort(l->segs, l->nsegs, sizeof(*l->segs), zap_log_cmp_seg);
	return rc;
}

/* ---- recovery ----------------------------------------------------------- */

/*
 * A bad record at @p pos of the last segment: torn tail (returns 0 and the
 * offset to cut at) or damage (returns -EILSEQ with the message).
 */
static int zap_log_judge_tail(const char *dir, const char *name, const uint8_t *map, uint64_t size,
			      uint64_t pos, enum zap_log_check c, const struct zap_log_rec *r,
			      const struct log_replay *rp)
{
	uint64_t from;
	uint64_t next;

	switch (c) {
	case ZAP_LOG_REC_INCOMPLETE:
		/* The header is intact: everything up to the end is its payload. */
		return 0;
	case ZAP_LOG_REC_BAD_CRC:
		from = pos + r->record_bytes;
		break;
	default:
		from = pos + ZAP_LOG_ALIGN_BYTES;
		break;
	}
	next = zap_log_find_valid(map, size, from);
	if (next >= size)
		return 0;
	if (c == ZAP_LOG_REC_BAD_CRC)
		log_msg(rp->err, rp->err_len,
			"%s/%s: offset %" PRIu64 ": bad CRC (record would be %" PRIu64
			" bytes), and a valid record follows at offset %" PRIu64,
			dir, name, pos, r->record_bytes, next);
	else
		log_msg(rp->err, rp->err_len,
			"%s/%s: offset %" PRIu64 ": bad record header (%s), and a valid "
			"record follows at offset %" PRIu64,
			dir, name, pos, r->why ? r->why : "short", next);
	return -EILSEQ;
}

static void zap_log_bad_msg(const char *dir, const char *name, uint64_t size, uint64_t pos,
			    enum zap_log_check c, const struct zap_log_rec *r,
			    const struct log_replay *rp)
{
	switch (c) {
	case ZAP_LOG_REC_BAD_CRC:
		log_msg(rp->err, rp->err_len,
			"%s/%s: offset %" PRIu64 ": bad CRC (record would be %" PRIu64 " bytes)",
			dir, name, pos, r->record_bytes);
		break;
	case ZAP_LOG_REC_INCOMPLETE:
		log_msg(rp->err, rp->err_len,
			"%s/%s: offset %" PRIu64 ": incomplete record (record would be %" PRIu64
			" bytes, only %" PRIu64
			" left in the file) in a segment that is not the last",
			dir, name, pos, r->record_bytes, size - pos);
		break;
	case ZAP_LOG_REC_SHORT:
		log_msg(rp->err, rp->err_len,
			"%s/%s: offset %" PRIu64 ": incomplete record header (%" PRIu64
			" bytes left) in a segment that is not the last",
			dir, name, pos, size - pos);
		break;
	default:
		log_msg(rp->err, rp->err_len, "%s/%s: offset %" PRIu64 ": bad record header (%s)",
			dir, name, pos, r->why);
		break;
	}
}

/*
 * Replay segment @p i. On return *end is the offset after its last valid
 * record (the last segment is cut there).
 */
static int zap_log_recover_seg(struct zap_log *l, uint64_t i, const struct log_replay *rp,
			       uint64_t *end)
{
	struct log_seg *s = &l->segs[i];
	bool last = i + 1 == l->nsegs;
	char name[ZAP_LOG_NAME_BYTES];
	struct stat sb;
	uint8_t *map = NULL;
	uint64_t size, pos = 0, lsn = s->first_lsn;
	int fd, rc = 0;

	log_seg_name(name, s->first_lsn);
	fd = openat(l->dir_fd, name, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		rc = -errno;
		log_msg(rp->err, rp->err_len, "%s/%s: %s", l->dir, name, strerror(-rc));
		goto out;
	}
	size = (uint64_t)sb.st_size;
	if (size > 0) {
		map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			map = NULL;
			rc = -errno;
			log_msg(rp->err, rp->err_len, "%s/%s: mmap: %s", l->dir, name,
				strerror(-rc));
			goto out;
		}
		(void)madvise(map, size, MADV_SEQUENTIAL);
	}
	while (pos < size) {
		struct zap_log_rec r;
		enum zap_log_check c = log_check(map, size, pos, &r);

		if (c == ZAP_LOG_REC_OK && r.lsn != lsn) {
			log_msg(rp->err, rp->err_len,
				"%s/%s: offset %" PRIu64 ": record has LSN %" PRIu64
				", expected %" PRIu64,
				l->dir, name, pos, r.lsn, lsn);
			rc = -EILSEQ;
			goto out;
		}
		if (c != ZAP_LOG_REC_OK) {
			if (!last) {
				zap_log_bad_msg(l->dir, name, size, pos, c, &r, rp);
				rc = -EILSEQ;
				goto out;
			}
			rc = zap_log_judge_tail(l->dir, name, map, size, pos, c, &r, rp);
			if (rc < 0)
				goto out;
			break;
		}
		if (rp->fn != NULL) {
			rc = rp->fn(r.type, r.slot, r.ballot, map + pos + ZAP_LOG_HEADER_BYTES,
				    r.payload_bytes, rp->ctx);
			if (rc != 0) {
				log_msg(rp->err, rp->err_len,
					"%s/%s: offset %" PRIu64 ": replay callback returned %d",
					l->dir, name, pos, rc);
				goto out;
			}
		}
		if (s->records == 0 || r.slot > s->max_slot)
			s->max_slot = r.slot;
		s->records++;
		l->st.replayed_records++;
		lsn++;
		pos += r.record_bytes;
	}
	if (last && pos < size) {
		if (ftruncate(fd, (off_t)pos) < 0) {
			rc = -errno;
			log_msg(rp->err, rp->err_len, "%s/%s: truncate torn tail: %s", l->dir, name,
				strerror(-rc));
			goto out;
		}
		l->st.truncated_tails = 1;
		l->st.truncated_tail_bytes = size - pos;
	}
	/* Records replayed from the page cache become durable now (FSYNC mode). */
	rc = log_fdatasync(l, fd);
	if (rc < 0) {
		log_msg(rp->err, rp->err_len, "%s/%s: fdatasync: %s", l->dir, name, strerror(-rc));
		goto out;
	}
	l->last_lsn = lsn - 1;
	*end = pos;
	if (last) {
		l->fd = fd;
		fd = -1;
	}
out:
	if (map != NULL)
		munmap(map, size);
	if (fd >= 0)
		close(fd);
	return rc;
}

int log_recover(struct zap_log *l, const struct log_replay *rp)
{
	uint64_t end = 0;

	for (uint64_t i = 0; i < l->nsegs; i++) {
		if (i > 0 && l->segs[i].first_lsn != l->last_lsn + 1) {
			char a[ZAP_LOG_NAME_BYTES], b[ZAP_LOG_NAME_BYTES];
			log_seg_name(a, l->segs[i - 1].first_lsn);
			log_seg_name(b, l->segs[i].first_lsn);
			log_msg(rp->err, rp->err_len,
				"%s/%s: offset 0: segment starts at LSN %" PRIu64
				" but %s ends at LSN %" PRIu64 " (missing segment or records)",
				l->dir, b, l->segs[i].first_lsn, a, l->last_lsn);
			return -EILSEQ;
		}
		if (i == 0)
			l->last_lsn = l->segs[0].first_lsn - 1;
		int rc = zap_log_recover_seg(l, i, rp, &end);
		if (rc != 0)
			return rc;
	}
	l->file_off = end;
	return 0;
}
