/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap log, recovery: run once by zap_log_open() on an existing directory.
 * Lists the segment files, maps each read-only, checks every record (header
 * CRC, lengths, record CRC, dense LSNs), hands the valid ones to the replay
 * callback, cuts a torn tail off the last segment and writes the corruption
 * messages. The rules are in docs/log.md, the format at the top of log.c;
 * append, sync and the rest are in log.c, the shared parts in log_internal.h.
 *
 * Threading rule: runs on the thread calling zap_log_open(), before the log
 * is handed out, so nothing else can see the zap_log yet.
 */
#include "log_internal.h"

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

/* ---- record checking ---------------------------------------------------- */

static uint32_t zap_log_get32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t zap_log_get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

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

static enum zap_log_check zap_log_check(const uint8_t *map, uint64_t size, uint64_t pos,
					struct zap_log_rec *r)
{
	const uint8_t *h = map + pos;
	uint64_t left = size - pos;

	r->why = NULL;
	r->record_bytes = 0;
	if (left < ZAP_LOG_HEADER_BYTES)
		return ZAP_LOG_REC_SHORT;
	if (zap_log_get32(h + ZAP_LOG_OFF_MAGIC) != ZAP_LOG_MAGIC) {
		r->why = "bad magic";
		return ZAP_LOG_REC_BAD_HEADER;
	}
	if (zap_log_get32(h + ZAP_LOG_OFF_HEADER_CRC) !=
	    zap_log_crc32c(h, ZAP_LOG_OFF_HEADER_CRC)) {
		r->why = "bad header CRC";
		return ZAP_LOG_REC_BAD_HEADER;
	}
	if (h[ZAP_LOG_OFF_VERSION] != ZAP_LOG_VERSION ||
	    (h[ZAP_LOG_OFF_RESERVED] | h[ZAP_LOG_OFF_RESERVED + 1]) != 0) {
		r->why = "unknown version";
		return ZAP_LOG_REC_BAD_HEADER;
	}
	r->record_bytes = zap_log_get32(h + ZAP_LOG_OFF_RECORD_BYTES);
	r->payload_bytes = zap_log_get32(h + ZAP_LOG_OFF_PAYLOAD_BYTES);
	if (r->payload_bytes > ZAP_LOG_MAX_RECORD_BYTES_LIMIT ||
	    r->record_bytes != log_align(ZAP_LOG_HEADER_BYTES + r->payload_bytes)) {
		r->why = "inconsistent lengths";
		return ZAP_LOG_REC_BAD_HEADER;
	}
	r->lsn = zap_log_get64(h + ZAP_LOG_OFF_LSN);
	r->slot = zap_log_get64(h + ZAP_LOG_OFF_SLOT);
	r->ballot = zap_log_get64(h + ZAP_LOG_OFF_BALLOT);
	r->type = h[ZAP_LOG_OFF_TYPE];
	if (r->record_bytes > left)
		return ZAP_LOG_REC_INCOMPLETE;
	if (zap_log_get32(h + ZAP_LOG_OFF_RECORD_CRC) !=
	    log_record_crc(h, h + ZAP_LOG_HEADER_BYTES, r->record_bytes - ZAP_LOG_HEADER_BYTES, 0))
		return ZAP_LOG_REC_BAD_CRC;
	return ZAP_LOG_REC_OK;
}

/* First offset >= from (8-aligned) where a whole valid record starts, or size. */
static uint64_t zap_log_find_valid(const uint8_t *map, uint64_t size, uint64_t from)
{
	struct zap_log_rec r;

	for (uint64_t q = log_align(from); q + ZAP_LOG_HEADER_BYTES <= size;
	     q += ZAP_LOG_ALIGN_BYTES) {
		if (zap_log_get32(map + q) != ZAP_LOG_MAGIC)
			continue;
		if (zap_log_check(map, size, q, &r) == ZAP_LOG_REC_OK)
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

/* Parse "%020llu.zlog"; false for any other name. */
static bool zap_log_parse_name(const char *name, uint64_t *first_lsn)
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
		if (zap_log_parse_name(e->d_name, &first_lsn)) {
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
		enum zap_log_check c = zap_log_check(map, size, pos, &r);

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
