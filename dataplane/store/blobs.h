/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap blob area: a node's directory of blob files, named by the BLAKE2b-256
 * hash of their bytes (docs/store.md, "Blob area").
 *
 * The RAM store keeps, for a record with a blob, only the blob's length and
 * hash; the bytes live here, one file per distinct content, as
 * `<dir>/<first two hex digits>/<64 hex digits>`. Content addressing makes
 * every operation idempotent: the log replayed after a restart writes the
 * same names again, two revisions with equal bytes share one file, and the
 * name checks the bytes (zap_blobs_verify()).
 *
 * A file is written whole under a temporary name, fdatasync'ed, renamed into
 * place and its directory fsync'ed: once zap_blobs_put() returns 0 the blob
 * survives a crash, and a name never shows a partial file. Files that no
 * record references any more are removed by zap_blobs_sweep() (after a pack).
 *
 * Threading: one thread (the node's apply stage) calls put and sweep, one
 * other may run a zap_blob_writer (counters are updated atomically); any
 * thread or process may read files through zap_blobs_open_file() with the
 * directory's path. A reader that opened a file keeps reading it after a
 * sweep unlinks it (POSIX unlink semantics).
 */
#ifndef ZAP_STORE_BLOBS_H
#define ZAP_STORE_BLOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Bytes of a blob's hash (BLAKE2b-256). */
#define ZAP_BLOB_HASH_BYTES 32u
/** Longest path of a blob file below a directory of @p dir_len characters. */
#define ZAP_BLOB_PATH_EXTRA (1u + 2u + 1u + 2u * ZAP_BLOB_HASH_BYTES + 1u)

struct zap_blobs;

/** Counters of a blob area. */
struct zap_blobs_stats {
	uint64_t files;	       /**< blob files held */
	uint64_t bytes;	       /**< their bytes */
	uint64_t written;      /**< files written by put */
	uint64_t written_bytes;
	uint64_t shared;       /**< puts whose content was already held */
	uint64_t swept;	       /**< files removed by sweeps */
	uint64_t swept_bytes;
	uint64_t errors;       /**< puts and sweeps that failed (I/O) */
};

/**
 * Open (creating it and its parents) the blob area in @p dir, remove
 * temporary files a crash left, and count what it holds.
 * @return 0; a negative errno (the directory cannot be made or read).
 */
int zap_blobs_open(const char *dir, struct zap_blobs **out);
void zap_blobs_close(struct zap_blobs *b);
const char *zap_blobs_dir(const struct zap_blobs *b);

/** BLAKE2b-256 of @p len bytes. */
void zap_blobs_hash(const void *data, uint64_t len, uint8_t hash[ZAP_BLOB_HASH_BYTES]);

/**
 * Hold @p len bytes whose hash is @p hash (the caller computed it with
 * zap_blobs_hash()): written and made durable unless a file of that name and
 * length is already there.
 * @return 0; a negative errno (the disk failed or is full; nothing is named).
 */
int zap_blobs_put(struct zap_blobs *b, const uint8_t hash[ZAP_BLOB_HASH_BYTES],
		  const void *data, uint64_t len);

/** Whether the blob of @p hash is held with @p len bytes. */
bool zap_blobs_has(const struct zap_blobs *b, const uint8_t hash[ZAP_BLOB_HASH_BYTES],
		   uint64_t len);

/**
 * The path of the blob of @p hash under @p dir.
 * @return 0; -ENAMETOOLONG when @p cap is too small.
 */
int zap_blobs_path(const char *dir, const uint8_t hash[ZAP_BLOB_HASH_BYTES], char *buf,
		   size_t cap);

/**
 * Open the blob of @p hash under @p dir for reading; @p len is its size.
 * @return a file descriptor; -ENOENT not held; another negative errno.
 */
int zap_blobs_open_file(const char *dir, const uint8_t hash[ZAP_BLOB_HASH_BYTES],
			uint64_t *len);

/**
 * Check that the file of @p hash holds bytes whose hash is @p hash, reading
 * it in pieces. @return 0; -EBADMSG it does not; -ENOENT; another errno.
 */
int zap_blobs_verify(const char *dir, const uint8_t hash[ZAP_BLOB_HASH_BYTES]);

/**
 * A blob received in pieces (from a peer): written under a temporary name,
 * hashed as it goes, named only by zap_blobs_writer_commit() when its length
 * and hash match. A writer may run in another thread than put and sweep.
 */
struct zap_blob_writer;
/** @return 0; a negative errno. */
int zap_blobs_writer_open(struct zap_blobs *b, const uint8_t hash[ZAP_BLOB_HASH_BYTES],
			  uint64_t len, struct zap_blob_writer **out);
/** Append @p n bytes. @return 0; -EFBIG beyond the announced length; an I/O errno. */
int zap_blob_writer_append(struct zap_blob_writer *w, const void *data, uint64_t n);
/** Bytes appended so far. */
uint64_t zap_blob_writer_len(const struct zap_blob_writer *w);
/**
 * Check length and hash, make the file durable and name it; frees @p w.
 * @return 0; -EBADMSG the bytes do not match (nothing named); an I/O errno.
 */
int zap_blob_writer_commit(struct zap_blob_writer *w);
/** Drop the temporary file; frees @p w (NULL: nothing). */
void zap_blob_writer_abort(struct zap_blob_writer *w);

/** Tells whether a blob must stay (a sweep's question). */
typedef bool (*zap_blobs_keep_fn)(void *ctx, const uint8_t hash[ZAP_BLOB_HASH_BYTES]);

/**
 * Remove every blob file @p keep does not want.
 * @return the number of files removed; a negative errno (the directory
 *   could not be read: nothing or part removed).
 */
long zap_blobs_sweep(struct zap_blobs *b, zap_blobs_keep_fn keep, void *ctx);

void zap_blobs_stats(const struct zap_blobs *b, struct zap_blobs_stats *st);

/**
 * A set of hashes (what a sweep keeps): add any number, then zap_hashset_has().
 * Sorted on first lookup; memory 32 bytes a hash.
 */
struct zap_hashset {
	uint8_t (*h)[ZAP_BLOB_HASH_BYTES];
	size_t n, cap;
	bool sorted;
};
/** @return 0; -ENOMEM. */
int zap_hashset_add(struct zap_hashset *s, const uint8_t hash[ZAP_BLOB_HASH_BYTES]);
bool zap_hashset_has(struct zap_hashset *s, const uint8_t hash[ZAP_BLOB_HASH_BYTES]);
void zap_hashset_free(struct zap_hashset *s);

#ifdef __cplusplus
}
#endif

#endif
