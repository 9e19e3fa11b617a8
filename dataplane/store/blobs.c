/* SPDX-License-Identifier: Apache-2.0 */
/* zap blob area (blobs.h): content-addressed blob files of one node. */
#include "blobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

/** Prefix of a file being written (removed at open: a crash left it). */
#define BLOB_TMP_PREFIX "tmp."
/** Bytes read or written at a time. */
#define BLOB_IO_BYTES (1u << 20)

#define ADD(field, v) __atomic_fetch_add(&(field), (v), __ATOMIC_RELAXED)

struct zap_blobs {
	char *dir;
	struct zap_blobs_stats st;
	uint64_t tmp_seq; /* atomic */
};

static int mkdir_one(const char *path)
{
	if (mkdir(path, 0750) == 0 || errno == EEXIST)
		return 0;
	return -errno;
}

static int mkdir_parents(const char *dir)
{
	char buf[4096];
	size_t n = strlen(dir);
	if (n == 0 || n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, n + 1);
	for (size_t i = 1; i < n; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		int rc = mkdir_one(buf);
		buf[i] = '/';
		if (rc != 0)
			return rc;
	}
	return mkdir_one(buf);
}

static void hex(const uint8_t *h, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[h[i] >> 4];
		out[2 * i + 1] = d[h[i] & 15];
	}
	out[2 * n] = '\0';
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < 2 * n; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			return -EINVAL;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
	}
	return s[2 * n] == '\0' ? 0 : -EINVAL;
}

int zap_blobs_path(const char *dir, const uint8_t hash[ZAP_BLOB_HASH_BYTES], char *buf,
		   size_t cap)
{
	char h[2 * ZAP_BLOB_HASH_BYTES + 1];
	hex(hash, ZAP_BLOB_HASH_BYTES, h);
	int k = snprintf(buf, cap, "%s/%.2s/%s", dir, h, h);
	return k < 0 || (size_t)k >= cap ? -ENAMETOOLONG : 0;
}

void zap_blobs_hash(const void *data, uint64_t len, uint8_t hash[ZAP_BLOB_HASH_BYTES])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, ZAP_BLOB_HASH_BYTES);
	const uint8_t *p = data;
	while (len > 0) { /* crypto_generichash takes any length; pieces keep it cache-friendly */
		uint64_t k = len < BLOB_IO_BYTES ? len : BLOB_IO_BYTES;
		crypto_generichash_update(&st, p, k);
		p += k;
		len -= k;
	}
	crypto_generichash_final(&st, hash, ZAP_BLOB_HASH_BYTES);
}

/* Size of the file at @p path when one is there (a blob about to be replaced), else -1. */
static int64_t old_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1;
}

/* Count a file of @p len bytes named in place of one of @p old bytes (-1: none). */
static void count_named(struct zap_blobs *b, uint64_t len, int64_t old)
{
	if (old >= 0) {
		__atomic_fetch_sub(&b->st.bytes, (uint64_t)old, __ATOMIC_RELAXED);
	} else {
		ADD(b->st.files, 1);
	}
	ADD(b->st.bytes, len);
	ADD(b->st.written, 1);
	ADD(b->st.written_bytes, len);
}

/* Call @p fn for every file in the fan-out directories of @p b. */
static int walk(struct zap_blobs *b, int (*fn)(struct zap_blobs *, const char *sub,
					       const char *name, void *), void *ctx)
{
	DIR *top = opendir(b->dir);
	if (top == NULL)
		return -errno;
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(top)) != NULL) {
		if (strlen(de->d_name) != 2 || de->d_name[0] == '.')
			continue;
		char sub[4096];
		if (snprintf(sub, sizeof(sub), "%s/%s", b->dir, de->d_name) >= (int)sizeof(sub))
			continue;
		DIR *d = opendir(sub);
		if (d == NULL)
			continue;
		struct dirent *f;
		while (rc == 0 && (f = readdir(d)) != NULL)
			if (f->d_name[0] != '.')
				rc = fn(b, sub, f->d_name, ctx);
		closedir(d);
	}
	closedir(top);
	return rc;
}

static int count_or_clean(struct zap_blobs *b, const char *sub, const char *name, void *ctx)
{
	(void)ctx;
	char path[4096];
	uint8_t h[ZAP_BLOB_HASH_BYTES];
	if (snprintf(path, sizeof(path), "%s/%s", sub, name) >= (int)sizeof(path))
		return 0;
	if (strncmp(name, BLOB_TMP_PREFIX, strlen(BLOB_TMP_PREFIX)) == 0) {
		unlink(path); /* a put a crash interrupted */
		return 0;
	}
	struct stat st;
	if (strlen(name) == 2 * ZAP_BLOB_HASH_BYTES && unhex(name, h, sizeof(h)) == 0 &&
	    stat(path, &st) == 0 && S_ISREG(st.st_mode)) { /* blob files only, as sweep sees them */
		b->st.files++;
		b->st.bytes += (uint64_t)st.st_size;
	}
	return 0;
}

int zap_blobs_open(const char *dir, struct zap_blobs **out)
{
	*out = NULL;
	int rc = mkdir_parents(dir);
	if (rc != 0)
		return rc;
	struct zap_blobs *b = calloc(1, sizeof(*b));
	if (b == NULL || (b->dir = strdup(dir)) == NULL) {
		free(b);
		return -ENOMEM;
	}
	rc = walk(b, count_or_clean, NULL);
	if (rc != 0) {
		zap_blobs_close(b);
		return rc;
	}
	*out = b;
	return 0;
}

void zap_blobs_close(struct zap_blobs *b)
{
	if (b == NULL)
		return;
	free(b->dir);
	free(b);
}

const char *zap_blobs_dir(const struct zap_blobs *b)
{
	return b->dir;
}

bool zap_blobs_has(const struct zap_blobs *b, const uint8_t hash[ZAP_BLOB_HASH_BYTES],
		   uint64_t len)
{
	char path[4096];
	struct stat st;
	return zap_blobs_path(b->dir, hash, path, sizeof(path)) == 0 && stat(path, &st) == 0 &&
	       S_ISREG(st.st_mode) && (uint64_t)st.st_size == len;
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

static int write_all(int fd, const uint8_t *p, uint64_t len)
{
	while (len > 0) {
		size_t k = len < BLOB_IO_BYTES ? (size_t)len : BLOB_IO_BYTES;
		ssize_t w = write(fd, p, k);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (uint64_t)w;
	}
	return 0;
}

int zap_blobs_put(struct zap_blobs *b, const uint8_t hash[ZAP_BLOB_HASH_BYTES],
		  const void *data, uint64_t len)
{
	if (zap_blobs_has(b, hash, len)) {
		ADD(b->st.shared, 1);
		return 0;
	}
	char path[4096], tmp[4096 + 32], sub[4096];
	int rc = zap_blobs_path(b->dir, hash, path, sizeof(path));
	if (rc != 0)
		return rc;
	snprintf(sub, sizeof(sub), "%s", path);
	*strrchr(sub, '/') = '\0';
	snprintf(tmp, sizeof(tmp), "%s/" BLOB_TMP_PREFIX "%llu", sub,
		 (unsigned long long)ADD(b->tmp_seq, 1));
	if ((rc = mkdir_one(sub)) != 0)
		goto fail;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = write_all(fd, data, len);
	if (rc == 0 && fdatasync(fd) != 0)
		rc = -errno;
	close(fd);
	int64_t old = old_size(path);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc == 0)
		rc = sync_dir(sub);
	if (rc != 0) {
		unlink(tmp);
		goto fail;
	}
	count_named(b, len, old);
	return 0;
fail:
	ADD(b->st.errors, 1);
	return rc;
}

int zap_blobs_open_file(const char *dir, const uint8_t hash[ZAP_BLOB_HASH_BYTES],
			uint64_t *len)
{
	char path[4096];
	int rc = zap_blobs_path(dir, hash, path, sizeof(path));
	if (rc != 0)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	*len = (uint64_t)st.st_size;
	return fd;
}

int zap_blobs_verify(const char *dir, const uint8_t hash[ZAP_BLOB_HASH_BYTES])
{
	uint64_t len;
	int fd = zap_blobs_open_file(dir, hash, &len);
	if (fd < 0)
		return fd;
	uint8_t *buf = malloc(BLOB_IO_BYTES);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, ZAP_BLOB_HASH_BYTES);
	int rc = 0;
	for (;;) {
		ssize_t k = read(fd, buf, BLOB_IO_BYTES);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = -errno;
			break;
		}
		if (k == 0)
			break;
		crypto_generichash_update(&st, buf, (unsigned long long)k);
	}
	free(buf);
	close(fd);
	if (rc != 0)
		return rc;
	uint8_t h[ZAP_BLOB_HASH_BYTES];
	crypto_generichash_final(&st, h, sizeof(h));
	return memcmp(h, hash, sizeof(h)) == 0 ? 0 : -EBADMSG;
}

struct sweep_ctx {
	zap_blobs_keep_fn keep;
	void *ctx;
	long removed;
};

static int sweep_one(struct zap_blobs *b, const char *sub, const char *name, void *arg)
{
	struct sweep_ctx *s = arg;
	uint8_t h[ZAP_BLOB_HASH_BYTES];
	if (strlen(name) != 2 * ZAP_BLOB_HASH_BYTES || unhex(name, h, sizeof(h)) != 0)
		return 0; /* not a blob file: left alone */
	if (s->keep(s->ctx, h))
		return 0;
	char path[4096];
	if (snprintf(path, sizeof(path), "%s/%s", sub, name) >= (int)sizeof(path))
		return 0;
	struct stat st;
	uint64_t size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
	if (unlink(path) != 0) {
		ADD(b->st.errors, 1);
		return 0;
	}
	s->removed++;
	ADD(b->st.swept, 1);
	ADD(b->st.swept_bytes, size);
	__atomic_fetch_sub(&b->st.files, 1, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&b->st.bytes, size, __ATOMIC_RELAXED);
	return 0;
}

long zap_blobs_sweep(struct zap_blobs *b, zap_blobs_keep_fn keep, void *ctx)
{
	struct sweep_ctx s = {keep, ctx, 0};
	int rc = walk(b, sweep_one, &s);
	if (rc != 0) {
		ADD(b->st.errors, 1);
		return rc;
	}
	return s.removed;
}

void zap_blobs_stats(const struct zap_blobs *b, struct zap_blobs_stats *st)
{
	const uint64_t *src = (const uint64_t *)&b->st;
	uint64_t *dst = (uint64_t *)st;
	for (size_t i = 0; i < sizeof(*st) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ writer */

struct zap_blob_writer {
	struct zap_blobs *b;
	int fd;
	uint64_t len, have;
	uint8_t hash[ZAP_BLOB_HASH_BYTES];
	crypto_generichash_state hs;
	char tmp[4096 + 32], path[4096];
};

int zap_blobs_writer_open(struct zap_blobs *b, const uint8_t hash[ZAP_BLOB_HASH_BYTES],
			  uint64_t len, struct zap_blob_writer **out)
{
	*out = NULL;
	struct zap_blob_writer *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->b = b;
	w->len = len;
	memcpy(w->hash, hash, ZAP_BLOB_HASH_BYTES);
	int rc = zap_blobs_path(b->dir, hash, w->path, sizeof(w->path));
	if (rc != 0) {
		free(w);
		return rc;
	}
	char sub[4096];
	snprintf(sub, sizeof(sub), "%s", w->path);
	*strrchr(sub, '/') = '\0';
	snprintf(w->tmp, sizeof(w->tmp), "%s/" BLOB_TMP_PREFIX "%llu", sub,
		 (unsigned long long)ADD(b->tmp_seq, 1));
	if ((rc = mkdir_one(sub)) != 0 ||
	    (w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0) {
		rc = rc ? rc : -errno;
		ADD(b->st.errors, 1);
		free(w);
		return rc;
	}
	crypto_generichash_init(&w->hs, NULL, 0, ZAP_BLOB_HASH_BYTES);
	*out = w;
	return 0;
}

int zap_blob_writer_append(struct zap_blob_writer *w, const void *data, uint64_t n)
{
	if (n > w->len - w->have)
		return -EFBIG;
	int rc = write_all(w->fd, data, n);
	if (rc != 0)
		return rc;
	crypto_generichash_update(&w->hs, data, n);
	w->have += n;
	return 0;
}

uint64_t zap_blob_writer_len(const struct zap_blob_writer *w)
{
	return w->have;
}

void zap_blob_writer_abort(struct zap_blob_writer *w)
{
	if (w == NULL)
		return;
	close(w->fd);
	unlink(w->tmp);
	free(w);
}

int zap_blob_writer_commit(struct zap_blob_writer *w)
{
	uint8_t h[ZAP_BLOB_HASH_BYTES];
	crypto_generichash_final(&w->hs, h, sizeof(h));
	int rc = 0;
	int64_t old = old_size(w->path);
	if (w->have != w->len || memcmp(h, w->hash, sizeof(h)) != 0)
		rc = -EBADMSG;
	else if (fdatasync(w->fd) != 0 || rename(w->tmp, w->path) != 0)
		rc = -errno;
	if (rc != 0) {
		ADD(w->b->st.errors, 1);
		zap_blob_writer_abort(w);
		return rc;
	}
	char sub[4096];
	snprintf(sub, sizeof(sub), "%s", w->path);
	*strrchr(sub, '/') = '\0';
	rc = sync_dir(sub);
	count_named(w->b, w->len, old);
	close(w->fd);
	free(w);
	return rc;
}

/* ------------------------------------------------------------------ hash set */

int zap_hashset_add(struct zap_hashset *s, const uint8_t hash[ZAP_BLOB_HASH_BYTES])
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 64;
		void *p = realloc(s->h, nc * ZAP_BLOB_HASH_BYTES);
		if (p == NULL)
			return -ENOMEM;
		s->h = p;
		s->cap = nc;
	}
	memcpy(s->h[s->n++], hash, ZAP_BLOB_HASH_BYTES);
	s->sorted = false;
	return 0;
}

static int hash_cmp(const void *a, const void *b)
{
	return memcmp(a, b, ZAP_BLOB_HASH_BYTES);
}

bool zap_hashset_has(struct zap_hashset *s, const uint8_t hash[ZAP_BLOB_HASH_BYTES])
{
	if (s->n == 0)
		return false;
	if (!s->sorted) {
		qsort(s->h, s->n, ZAP_BLOB_HASH_BYTES, hash_cmp);
		s->sorted = true;
	}
	return bsearch(hash, s->h, s->n, ZAP_BLOB_HASH_BYTES, hash_cmp) != NULL;
}

void zap_hashset_free(struct zap_hashset *s)
{
	free(s->h);
	memset(s, 0, sizeof(*s));
}
