/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap log: append-only segment files holding the chosen Paxos log and the
 * acceptor's state. Format and recovery rules in docs/log.md; API in log.h.
 * This file holds append, sync, segment roll, open/close and compaction,
 * on top of the module; recovery (scanning segments at open, torn tails,
 * replay) is in log_recover.c, below it; the format (segment names, the
 * record header codec, CRC32C) and the helpers both use are in
 * log_format.c, at the bottom; the state of an open log in log_internal.h.
 *
 * Layout on disk. A directory of segment files named by the LSN of their
 * first record, "%020llu.zlog"; the first is 00000000000000000001.zlog. A
 * file holds whole records back to back, each one a 48-byte header, the
 * payload and zero padding to a multiple of 8 bytes. The header carries its
 * own CRC32C (so a damaged length is never trusted) and a CRC32C of the
 * whole record.
 *
 * Invariants.
 *  - LSNs are dense: record k of a segment named F has LSN F + k, and each
 *    segment starts where the previous one ended. A gap is damage.
 *  - Only the last segment is ever written; it is the only one where a
 *    torn tail can be cut at open. In FSYNC mode a segment is fdatasync'ed
 *    before the next one is created, so older segments are always whole.
 *  - durable_lsn <= last_lsn; every record up to durable_lsn has reached the
 *    file (and the disk, in FSYNC mode).
 *  - The bytes of the current segment are file_off bytes written to the
 *    file, then buf_used bytes in the write buffer, in that order.
 *
 * I/O. append() copies small records into a write buffer and writes large
 * ones straight to the file (after the buffer); sync() writes the buffer
 * and calls fdatasync once. Recovery (log_recover.c) maps each segment
 * read-only and hands the callback pointers into the mapping.
 *
 * Threading rule: one thread owns a zap_log and makes every call on it;
 * durable_lsn is published with a release store so any thread may read it.
 */
#include "log_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/** Write buffer; records larger than this go straight to the file. */
#define ZAP_LOG_BUF_BYTES (1u << 20)

/* ---- file helpers ------------------------------------------------------- */

static int zap_log_pwrite_full(int fd, const void *data, uint64_t len, uint64_t off)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int zap_log_fsync_dir(struct zap_log *l)
{
	if (l->p.durability != ZAP_LOG_DURABILITY_FSYNC)
		return 0;
	l->st.dir_syncs++;
	return fsync(l->dir_fd) < 0 ? -errno : 0;
}

/* mkdir -p; fsyncs the parent of each directory it creates. */
static int zap_log_mkdir_p(const char *dir)
{
	char *path = strdup(dir);
	int rc = 0;

	if (path == NULL)
		return -ENOMEM;
	for (char *s = path + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(path, 0755) == 0) {
			char *slash = strrchr(path, '/');
			char *parent = slash == NULL   ? strdup(".")
				       : slash == path ? strdup("/")
						       : strndup(path, (size_t)(slash - path));
			int pfd = parent ? open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
			if (pfd >= 0) {
				(void)fsync(pfd);
				close(pfd);
			}
			free(parent);
		} else if (errno != EEXIST) {
			rc = -errno;
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(path);
	return rc;
}

/* ---- open / close ------------------------------------------------------- */

void zap_log_params_init(struct zap_log_params *p, const char *dir)
{
	memset(p, 0, sizeof(*p));
	p->dir = dir;
	p->segment_bytes = ZAP_LOG_DEFAULT_SEGMENT_BYTES;
	p->max_record_bytes = ZAP_LOG_DEFAULT_MAX_RECORD_BYTES;
	p->durability = ZAP_LOG_DURABILITY_FSYNC;
}

static void zap_log_free(struct zap_log *l)
{
	if (l->fd >= 0)
		close(l->fd);
	if (l->dir_fd >= 0)
		close(l->dir_fd); /* releases the flock */
	free(l->segs);
	free(l->buf);
	free(l->dir);
	free(l);
}

/* Create the segment whose first record will have LSN @p first_lsn. */
static int zap_log_create_seg(struct zap_log *l, uint64_t first_lsn)
{
	char name[ZAP_LOG_NAME_BYTES];
	int fd, rc;

	rc = log_seg_push(l, first_lsn);
	if (rc < 0)
		return rc;
	log_seg_name(name, first_lsn);
	fd = openat(l->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		l->nsegs--;
		return -errno;
	}
	l->fd = fd;
	l->file_off = 0;
	l->st.segments_created++;
	return zap_log_fsync_dir(l);
}

static int zap_log_check_params(const struct zap_log_params *in, struct zap_log_params *p)
{
	if (in == NULL || in->dir == NULL || in->dir[0] == '\0')
		return -EINVAL;
	*p = *in;
	if (p->segment_bytes == 0)
		p->segment_bytes = ZAP_LOG_DEFAULT_SEGMENT_BYTES;
	if (p->max_record_bytes == 0)
		p->max_record_bytes = ZAP_LOG_DEFAULT_MAX_RECORD_BYTES;
	if (p->max_record_bytes > ZAP_LOG_MAX_RECORD_BYTES_LIMIT)
		return -EINVAL;
	if (p->durability != ZAP_LOG_DURABILITY_FSYNC && p->durability != ZAP_LOG_DURABILITY_MEMORY)
		return -EINVAL;
	return 0;
}

static int zap_log_open_dir(struct zap_log *l, char *err, size_t err_len)
{
	int rc = zap_log_mkdir_p(l->dir);

	if (rc < 0) {
		log_msg(err, err_len, "%s: create directory: %s", l->dir, strerror(-rc));
		return rc;
	}
	l->dir_fd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dir_fd < 0) {
		rc = -errno;
		log_msg(err, err_len, "%s: %s", l->dir, strerror(-rc));
		return rc;
	}
	if (flock(l->dir_fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		log_msg(err, err_len, "%s: log is open elsewhere (flock: %s)", l->dir,
			strerror(errno));
		return rc;
	}
	rc = log_list(l);
	if (rc < 0)
		log_msg(err, err_len, "%s: list segments: %s", l->dir, strerror(-rc));
	return rc;
}

int zap_log_open(const struct zap_log_params *p, zap_log_replay_fn fn, void *ctx,
		 struct zap_log **out, char *err, size_t err_len)
{
	struct log_replay rp = {.fn = fn, .ctx = ctx, .err = err, .err_len = err_len};
	struct zap_log *l;
	int rc;

	log_msg(err, err_len, "%s", "");
	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	l->fd = -1;
	l->dir_fd = -1;
	rc = zap_log_check_params(p, &l->p);
	if (rc < 0) {
		log_msg(err, err_len, "invalid log parameters");
		goto fail;
	}
	l->dir = strdup(p->dir);
	l->buf = malloc(ZAP_LOG_BUF_BYTES);
	if (l->dir == NULL || l->buf == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	l->p.dir = l->dir;
	rc = zap_log_open_dir(l, err, err_len);
	if (rc < 0)
		goto fail;
	if (l->nsegs == 0) {
		rc = zap_log_create_seg(l, 1);
		if (rc < 0) {
			log_msg(err, err_len, "%s: create first segment: %s", l->dir,
				strerror(-rc));
			goto fail;
		}
	} else {
		rc = log_recover(l, &rp);
		if (rc != 0)
			goto fail;
	}
	l->durable_lsn = l->last_lsn;
	*out = l;
	return 0;
fail:
	zap_log_free(l);
	return rc;
}

void zap_log_close(struct zap_log *l)
{
	if (l == NULL)
		return;
	(void)zap_log_sync(l);
	zap_log_free(l);
}

/* ---- append / sync ------------------------------------------------------ */

static int zap_log_fail(struct zap_log *l, int rc)
{
	if (l->err == 0)
		l->err = rc;
	return rc;
}

static int zap_log_flush(struct zap_log *l)
{
	int rc;

	if (l->buf_used == 0)
		return 0;
	rc = zap_log_pwrite_full(l->fd, l->buf, l->buf_used, l->file_off);
	if (rc < 0)
		return rc;
	l->file_off += l->buf_used;
	l->buf_used = 0;
	return 0;
}

static void zap_log_publish_durable(struct zap_log *l)
{
	__atomic_store_n(&l->durable_lsn, l->last_lsn, __ATOMIC_RELEASE);
}

/* The current segment is full: make it whole on disk, start the next. */
static int zap_log_roll(struct zap_log *l)
{
	int rc = zap_log_flush(l);

	if (rc == 0)
		rc = log_fdatasync(l, l->fd);
	if (rc < 0)
		return rc;
	zap_log_publish_durable(l);
	close(l->fd);
	l->fd = -1;
	return zap_log_create_seg(l, l->last_lsn + 1);
}

int zap_log_append(struct zap_log *l, uint8_t type, uint64_t slot, uint64_t ballot,
		   const void *payload, uint64_t len, uint64_t *lsn)
{
	struct log_seg *s;
	uint8_t hdr[ZAP_LOG_HEADER_BYTES];
	uint64_t record_bytes, pad_bytes;
	int rc;

	if (l->err != 0)
		return l->err;
	if (len > l->p.max_record_bytes)
		return -EMSGSIZE;
	if (payload == NULL && len > 0)
		return -EINVAL;
	s = &l->segs[l->nsegs - 1];
	if (s->records > 0 && l->file_off + l->buf_used >= l->p.segment_bytes) {
		rc = zap_log_roll(l);
		if (rc < 0)
			return zap_log_fail(l, rc);
		s = &l->segs[l->nsegs - 1];
	}
	record_bytes = log_align(ZAP_LOG_HEADER_BYTES + len);
	pad_bytes = record_bytes - ZAP_LOG_HEADER_BYTES - len;
	log_encode(hdr, type, l->last_lsn + 1, slot, ballot, payload, len);

	if (record_bytes > ZAP_LOG_BUF_BYTES - l->buf_used) {
		rc = zap_log_flush(l);
		if (rc < 0)
			return zap_log_fail(l, rc);
	}
	if (record_bytes <= ZAP_LOG_BUF_BYTES - l->buf_used) {
		uint8_t *p = l->buf + l->buf_used;
		memcpy(p, hdr, ZAP_LOG_HEADER_BYTES);
		if (len > 0)
			memcpy(p + ZAP_LOG_HEADER_BYTES, payload, len);
		memset(p + ZAP_LOG_HEADER_BYTES + len, 0, pad_bytes);
		l->buf_used += record_bytes;
	} else {
		/* Larger than the buffer (which is now empty): write it through. */
		uint64_t off = l->file_off;
		rc = zap_log_pwrite_full(l->fd, hdr, ZAP_LOG_HEADER_BYTES, off);
		if (rc == 0)
			rc = zap_log_pwrite_full(l->fd, payload, len, off + ZAP_LOG_HEADER_BYTES);
		if (rc == 0 && pad_bytes > 0)
			rc = zap_log_pwrite_full(l->fd, log_zeros, pad_bytes,
						 off + ZAP_LOG_HEADER_BYTES + len);
		if (rc < 0)
			return zap_log_fail(l, rc);
		l->file_off += record_bytes;
	}
	if (s->records == 0 || slot > s->max_slot)
		s->max_slot = slot;
	s->records++;
	l->last_lsn++;
	l->st.appends++;
	l->st.payload_bytes += len;
	l->st.bytes += record_bytes;
	if (lsn != NULL)
		*lsn = l->last_lsn;
	return 0;
}

int zap_log_sync(struct zap_log *l)
{
	uint64_t pending;
	int rc;

	if (l->err != 0)
		return l->err;
	pending = zap_log_pending(l);
	if (pending == 0)
		return 0;
	rc = zap_log_flush(l);
	if (rc == 0)
		rc = log_fdatasync(l, l->fd);
	if (rc < 0)
		return zap_log_fail(l, rc);
	zap_log_publish_durable(l);
	l->st.commits++;
	l->sync_appends += pending;
	return 0;
}

uint64_t zap_log_durable_lsn(const struct zap_log *l)
{
	return __atomic_load_n(&l->durable_lsn, __ATOMIC_ACQUIRE);
}

uint64_t zap_log_last_lsn(const struct zap_log *l)
{
	return l->last_lsn;
}

uint64_t zap_log_pending(const struct zap_log *l)
{
	return l->last_lsn - l->durable_lsn;
}

/* ---- compaction, stats -------------------------------------------------- */

int zap_log_drop_before(struct zap_log *l, uint64_t slot)
{
	uint64_t n = 0;
	int rc = 0;

	while (n + 1 < l->nsegs) {
		const struct log_seg *s = &l->segs[n];
		char name[ZAP_LOG_NAME_BYTES];

		if (s->records > 0 && s->max_slot >= slot)
			break;
		log_seg_name(name, s->first_lsn);
		if (unlinkat(l->dir_fd, name, 0) < 0) {
			rc = -errno;
			break;
		}
		n++;
	}
	if (n > 0) {
		memmove(l->segs, l->segs + n, (l->nsegs - n) * sizeof(*l->segs));
		l->nsegs -= n;
		l->st.segments_dropped += n;
		int drc = zap_log_fsync_dir(l);
		if (rc == 0)
			rc = drc;
	}
	return rc < 0 ? rc : (int)n;
}

void zap_log_stats(const struct zap_log *l, struct zap_log_stats *st)
{
	*st = l->st;
	st->segments = l->nsegs;
	st->last_lsn = l->last_lsn;
	st->durable_lsn = zap_log_durable_lsn(l);
	st->appends_per_sync = l->st.commits ? (double)l->sync_appends / (double)l->st.commits : 0;
}

bool zap_log_group_due(const struct zap_log_group *g, uint64_t now_ns, uint64_t max,
		       uint64_t window_ns)
{
	if (g->pending == 0)
		return false;
	if (g->pending >= max)
		return true;
	uint64_t open_ns = now_ns > g->opened_ns ? now_ns - g->opened_ns : 0;
	uint64_t idle_ns = now_ns > g->last_end_ns ? now_ns - g->last_end_ns : 0;
	return open_ns >= window_ns || idle_ns >= window_ns;
}
