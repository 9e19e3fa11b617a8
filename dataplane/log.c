/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap log: append-only segment files holding the chosen Paxos log and the
 * acceptor's state. Format and recovery rules in docs/log.md; API in log.h.
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
 * and calls fdatasync once. Recovery maps each segment read-only and hands
 * the callback pointers into the mapping.
 *
 * Threading rule: one thread owns a zap_log and makes every call on it;
 * durable_lsn is published with a release store so any thread may read it.
 */
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <rte_hash_crc.h>

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
#define ZAP_LOG_CRC_INIT 0xffffffffu
#define ZAP_LOG_CRC_XOR 0xffffffffu
/** Write buffer; records larger than this go straight to the file. */
#define ZAP_LOG_BUF_BYTES (1u << 20)
/** "%020llu.zlog" plus NUL. */
#define ZAP_LOG_NAME_BYTES 32
#define ZAP_LOG_NAME_DIGITS 20
#define ZAP_LOG_SUFFIX ".zlog"

struct zap_log_seg {
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
	struct zap_log_seg *segs;
	uint64_t nsegs, segs_cap;
	uint64_t sync_appends; /* appends made durable by zap_log_sync() */
	struct zap_log_stats st;
};

static const uint8_t zap_log_zeros[ZAP_LOG_ALIGN_BYTES];

/* ---- little helpers ---------------------------------------------------- */

static uint64_t zap_log_align(uint64_t n)
{
	return (n + ZAP_LOG_ALIGN_BYTES - 1) & ~(uint64_t)(ZAP_LOG_ALIGN_BYTES - 1);
}

static void zap_log_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void zap_log_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

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

static void zap_log_msg(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void zap_log_msg(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

static void zap_log_seg_name(char name[ZAP_LOG_NAME_BYTES], uint64_t first_lsn)
{
	snprintf(name, ZAP_LOG_NAME_BYTES, "%020" PRIu64 ZAP_LOG_SUFFIX, first_lsn);
}

/* ---- CRC32C ------------------------------------------------------------- */

/*
 * Raw CRC32C update (no init, no final xor) over any buffer. rte_hash_crc()
 * reads 8 bytes at a time through aligned-type loads, so the head is fed
 * byte by byte until the pointer is 8-byte aligned; its length argument is
 * 32 bits, so long buffers go in chunks.
 */
static uint32_t zap_log_crc_update(uint32_t crc, const void *data, uint64_t len)
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
	return zap_log_crc_update(ZAP_LOG_CRC_INIT, data, len) ^ ZAP_LOG_CRC_XOR;
}

/* Record CRC: header bytes [0, 44), then payload and padding. */
static uint32_t zap_log_record_crc(const uint8_t *hdr, const void *payload, uint64_t len,
				   uint64_t pad_bytes)
{
	uint32_t crc = zap_log_crc_update(ZAP_LOG_CRC_INIT, hdr, ZAP_LOG_OFF_RECORD_CRC);
	crc = zap_log_crc_update(crc, payload, len);
	crc = zap_log_crc_update(crc, zap_log_zeros, pad_bytes);
	return crc ^ ZAP_LOG_CRC_XOR;
}

/* ---- record encoding and checking ------------------------------------- */

static void zap_log_encode(uint8_t hdr[ZAP_LOG_HEADER_BYTES], uint8_t type, uint64_t lsn,
			   uint64_t slot, uint64_t ballot, const void *payload, uint64_t len)
{
	uint64_t record_bytes = zap_log_align(ZAP_LOG_HEADER_BYTES + len);

	memset(hdr, 0, ZAP_LOG_HEADER_BYTES);
	zap_log_put32(hdr + ZAP_LOG_OFF_MAGIC, ZAP_LOG_MAGIC);
	zap_log_put32(hdr + ZAP_LOG_OFF_RECORD_BYTES, (uint32_t)record_bytes);
	zap_log_put64(hdr + ZAP_LOG_OFF_LSN, lsn);
	zap_log_put64(hdr + ZAP_LOG_OFF_SLOT, slot);
	zap_log_put64(hdr + ZAP_LOG_OFF_BALLOT, ballot);
	zap_log_put32(hdr + ZAP_LOG_OFF_PAYLOAD_BYTES, (uint32_t)len);
	hdr[ZAP_LOG_OFF_TYPE] = type;
	hdr[ZAP_LOG_OFF_VERSION] = ZAP_LOG_VERSION;
	zap_log_put32(hdr + ZAP_LOG_OFF_HEADER_CRC, zap_log_crc32c(hdr, ZAP_LOG_OFF_HEADER_CRC));
	zap_log_put32(
	    hdr + ZAP_LOG_OFF_RECORD_CRC,
	    zap_log_record_crc(hdr, payload, len, record_bytes - ZAP_LOG_HEADER_BYTES - len));
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
	    r->record_bytes != zap_log_align(ZAP_LOG_HEADER_BYTES + r->payload_bytes)) {
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
	    zap_log_record_crc(h, h + ZAP_LOG_HEADER_BYTES, r->record_bytes - ZAP_LOG_HEADER_BYTES,
			       0))
		return ZAP_LOG_REC_BAD_CRC;
	return ZAP_LOG_REC_OK;
}

/* First offset >= from (8-aligned) where a whole valid record starts, or size. */
static uint64_t zap_log_find_valid(const uint8_t *map, uint64_t size, uint64_t from)
{
	struct zap_log_rec r;

	for (uint64_t q = zap_log_align(from); q + ZAP_LOG_HEADER_BYTES <= size;
	     q += ZAP_LOG_ALIGN_BYTES) {
		if (zap_log_get32(map + q) != ZAP_LOG_MAGIC)
			continue;
		if (zap_log_check(map, size, q, &r) == ZAP_LOG_REC_OK)
			return q;
	}
	return size;
}

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

static int zap_log_fdatasync(struct zap_log *l, int fd)
{
	if (l->p.durability != ZAP_LOG_DURABILITY_FSYNC)
		return 0;
	l->st.syncs++;
	return fdatasync(fd) < 0 ? -errno : 0;
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

static int zap_log_seg_push(struct zap_log *l, uint64_t first_lsn)
{
	if (l->nsegs == l->segs_cap) {
		uint64_t cap = l->segs_cap ? 2 * l->segs_cap : 16;
		struct zap_log_seg *s = realloc(l->segs, cap * sizeof(*s));
		if (s == NULL)
			return -ENOMEM;
		l->segs = s;
		l->segs_cap = cap;
	}
	l->segs[l->nsegs++] = (struct zap_log_seg){.first_lsn = first_lsn};
	return 0;
}

static int zap_log_cmp_seg(const void *a, const void *b)
{
	const struct zap_log_seg *x = a, *y = b;
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

static int zap_log_list(struct zap_log *l)
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
			rc = zap_log_seg_push(l, first_lsn);
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

struct zap_log_replay {
	zap_log_replay_fn fn;
	void *ctx;
	char *err;
	size_t err_len;
};

/*
 * A bad record at @p pos of the last segment: torn tail (returns 0 and the
 * offset to cut at) or damage (returns -EILSEQ with the message).
 */
static int zap_log_judge_tail(const char *dir, const char *name, const uint8_t *map, uint64_t size,
			      uint64_t pos, enum zap_log_check c, const struct zap_log_rec *r,
			      const struct zap_log_replay *rp)
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
		zap_log_msg(rp->err, rp->err_len,
			    "%s/%s: offset %" PRIu64 ": bad CRC (record would be %" PRIu64
			    " bytes), and a valid record follows at offset %" PRIu64,
			    dir, name, pos, r->record_bytes, next);
	else
		zap_log_msg(rp->err, rp->err_len,
			    "%s/%s: offset %" PRIu64 ": bad record header (%s), and a valid "
			    "record follows at offset %" PRIu64,
			    dir, name, pos, r->why ? r->why : "short", next);
	return -EILSEQ;
}

static void zap_log_bad_msg(const char *dir, const char *name, uint64_t size, uint64_t pos,
			    enum zap_log_check c, const struct zap_log_rec *r,
			    const struct zap_log_replay *rp)
{
	switch (c) {
	case ZAP_LOG_REC_BAD_CRC:
		zap_log_msg(rp->err, rp->err_len,
			    "%s/%s: offset %" PRIu64 ": bad CRC (record would be %" PRIu64
			    " bytes)",
			    dir, name, pos, r->record_bytes);
		break;
	case ZAP_LOG_REC_INCOMPLETE:
		zap_log_msg(rp->err, rp->err_len,
			    "%s/%s: offset %" PRIu64 ": incomplete record (record would be %" PRIu64
			    " bytes, only %" PRIu64
			    " left in the file) in a segment that is not the last",
			    dir, name, pos, r->record_bytes, size - pos);
		break;
	case ZAP_LOG_REC_SHORT:
		zap_log_msg(rp->err, rp->err_len,
			    "%s/%s: offset %" PRIu64 ": incomplete record header (%" PRIu64
			    " bytes left) in a segment that is not the last",
			    dir, name, pos, size - pos);
		break;
	default:
		zap_log_msg(rp->err, rp->err_len,
			    "%s/%s: offset %" PRIu64 ": bad record header (%s)", dir, name, pos,
			    r->why);
		break;
	}
}

/*
 * Replay segment @p i. On return *end is the offset after its last valid
 * record (the last segment is cut there).
 */
static int zap_log_recover_seg(struct zap_log *l, uint64_t i, const struct zap_log_replay *rp,
			       uint64_t *end)
{
	struct zap_log_seg *s = &l->segs[i];
	bool last = i + 1 == l->nsegs;
	char name[ZAP_LOG_NAME_BYTES];
	struct stat sb;
	uint8_t *map = NULL;
	uint64_t size, pos = 0, lsn = s->first_lsn;
	int fd, rc = 0;

	zap_log_seg_name(name, s->first_lsn);
	fd = openat(l->dir_fd, name, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		rc = -errno;
		zap_log_msg(rp->err, rp->err_len, "%s/%s: %s", l->dir, name, strerror(-rc));
		goto out;
	}
	size = (uint64_t)sb.st_size;
	if (size > 0) {
		map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			map = NULL;
			rc = -errno;
			zap_log_msg(rp->err, rp->err_len, "%s/%s: mmap: %s", l->dir, name,
				    strerror(-rc));
			goto out;
		}
		(void)madvise(map, size, MADV_SEQUENTIAL);
	}
	while (pos < size) {
		struct zap_log_rec r;
		enum zap_log_check c = zap_log_check(map, size, pos, &r);

		if (c == ZAP_LOG_REC_OK && r.lsn != lsn) {
			zap_log_msg(rp->err, rp->err_len,
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
				zap_log_msg(rp->err, rp->err_len,
					    "%s/%s: offset %" PRIu64
					    ": replay callback returned %d",
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
			zap_log_msg(rp->err, rp->err_len, "%s/%s: truncate torn tail: %s", l->dir,
				    name, strerror(-rc));
			goto out;
		}
		l->st.truncated_tails = 1;
		l->st.truncated_tail_bytes = size - pos;
	}
	/* Records replayed from the page cache become durable now (FSYNC mode). */
	rc = zap_log_fdatasync(l, fd);
	if (rc < 0) {
		zap_log_msg(rp->err, rp->err_len, "%s/%s: fdatasync: %s", l->dir, name,
			    strerror(-rc));
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

static int zap_log_recover(struct zap_log *l, const struct zap_log_replay *rp)
{
	uint64_t end = 0;

	for (uint64_t i = 0; i < l->nsegs; i++) {
		if (i > 0 && l->segs[i].first_lsn != l->last_lsn + 1) {
			char a[ZAP_LOG_NAME_BYTES], b[ZAP_LOG_NAME_BYTES];
			zap_log_seg_name(a, l->segs[i - 1].first_lsn);
			zap_log_seg_name(b, l->segs[i].first_lsn);
			zap_log_msg(rp->err, rp->err_len,
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

	rc = zap_log_seg_push(l, first_lsn);
	if (rc < 0)
		return rc;
	zap_log_seg_name(name, first_lsn);
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
		zap_log_msg(err, err_len, "%s: create directory: %s", l->dir, strerror(-rc));
		return rc;
	}
	l->dir_fd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dir_fd < 0) {
		rc = -errno;
		zap_log_msg(err, err_len, "%s: %s", l->dir, strerror(-rc));
		return rc;
	}
	if (flock(l->dir_fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		zap_log_msg(err, err_len, "%s: log is open elsewhere (flock: %s)", l->dir,
			    strerror(errno));
		return rc;
	}
	rc = zap_log_list(l);
	if (rc < 0)
		zap_log_msg(err, err_len, "%s: list segments: %s", l->dir, strerror(-rc));
	return rc;
}

int zap_log_open(const struct zap_log_params *p, zap_log_replay_fn fn, void *ctx,
		 struct zap_log **out, char *err, size_t err_len)
{
	struct zap_log_replay rp = {.fn = fn, .ctx = ctx, .err = err, .err_len = err_len};
	struct zap_log *l;
	int rc;

	zap_log_msg(err, err_len, "%s", "");
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
		zap_log_msg(err, err_len, "invalid log parameters");
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
			zap_log_msg(err, err_len, "%s: create first segment: %s", l->dir,
				    strerror(-rc));
			goto fail;
		}
	} else {
		rc = zap_log_recover(l, &rp);
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
		rc = zap_log_fdatasync(l, l->fd);
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
	struct zap_log_seg *s;
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
	record_bytes = zap_log_align(ZAP_LOG_HEADER_BYTES + len);
	pad_bytes = record_bytes - ZAP_LOG_HEADER_BYTES - len;
	zap_log_encode(hdr, type, l->last_lsn + 1, slot, ballot, payload, len);

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
			rc = zap_log_pwrite_full(l->fd, zap_log_zeros, pad_bytes,
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
		rc = zap_log_fdatasync(l, l->fd);
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
		const struct zap_log_seg *s = &l->segs[n];
		char name[ZAP_LOG_NAME_BYTES];

		if (s->records > 0 && s->max_slot >= slot)
			break;
		zap_log_seg_name(name, s->first_lsn);
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
