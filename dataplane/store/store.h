/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap store: the shared-memory MVCC object store of one node.
 *
 * The store lives in one shared mapping (a memfd, or a file on hugetlbfs)
 * that other processes on the box can map read-only. Everything inside the
 * mapping is addressed by offsets from its start, never by pointers.
 *
 * Contents: an oid index (open addressing, lock-free readers) whose slots
 * point at a chain of revisions, newest first; a ring of recent
 * transactions (tid, oids, user, description, extension) for "what changed
 * since tid T" and for history; an allocator for both.
 *
 * Threading rule: exactly one writer (the apply stage) calls the functions
 * marked "writer". Any number of readers, threads of this process or other
 * processes, read without locks inside a read section
 * (zap_store_read_begin() .. zap_store_read_end()); pointers handed out
 * inside a section stay valid until its end. A reader sees a snapshot: the
 * last tid published when its section began, never a half-installed
 * transaction.
 *
 * Reclamation: pack and index growth unlink memory; it is freed only after
 * every reader that could hold it has left its section. Readers in this
 * process are tracked with rte_rcu_qsbr; readers in other processes
 * register in a reader table inside the mapping (as LMDB's readers do),
 * and entries of dead processes are cleared by the writer.
 *
 * Errors are negative errno values; each function lists the ones it returns.
 */
#ifndef ZAP_STORE_H
#define ZAP_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "base/txn_text.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Default largest record, in bytes. */
#define ZAP_STORE_DEFAULT_MAX_RECORD_BYTES (16u << 20)
/** Largest oid a store accepts; UINT64_MAX is reserved. */
#define ZAP_STORE_MAX_OID (UINT64_MAX - 1)

struct zap_store;
struct zap_store_reader;

/** Creation parameters. Zero fields take the documented default. */
struct zap_store_params {
	uint64_t size_bytes;          /**< whole mapping (default 1 GiB) */
	uint64_t max_record_bytes;    /**< largest record (default 16 MiB) */
	uint32_t index_initial_slots; /**< oid index slots, rounded to 2^n (default 4096) */
	uint32_t txn_ring_slots;      /**< recent transactions kept (default 65536) */
	uint32_t max_process_readers; /**< reader table slots (default 126) */
	uint32_t max_thread_readers;  /**< reader threads of this process (default 64) */
	const char *hugetlbfs_dir;    /**< back the store by a file here; NULL: memfd */
};

/** One revision as a reader sees it. Pointers valid until zap_store_read_end(). */
struct zap_store_rev {
	const void *data;     /**< record bytes (NULL when deleted) */
	uint64_t len;         /**< record length in bytes */
	uint64_t serial;      /**< tid that wrote this revision */
	uint64_t next_serial; /**< tid of the next newer revision visible, 0 if none */
	int deleted;          /**< 1: a deletion record */
};

/** Metadata of one transaction. Pointers valid until zap_store_read_end(). */
struct zap_store_txn_info {
	uint64_t tid;
	struct zap_txn_text text; /**< user, description, extension */
	uint32_t n_oids;
	const uint64_t *oids; /**< the oids the transaction wrote, in commit order */
};

/** One entry of an object's history. */
struct zap_store_hist {
	uint64_t serial;
	uint64_t len;
	int deleted;
	struct zap_store_txn_info txn; /**< tid 0 and no text when no longer kept */
};

/** One object written by a commit. */
struct zap_store_write {
	uint64_t oid;
	const void *data; /**< ignored when deleted */
	uint64_t len;     /**< 0 when deleted */
	int deleted;      /**< 1: write a deletion record */
};

/** Counters and sizes, for metrics and tests. */
struct zap_store_stats {
	uint64_t last_tid;
	uint64_t pack_tid;
	uint64_t objects;        /**< oids with at least one revision */
	uint64_t revisions;      /**< revisions reachable */
	uint64_t index_slots;
	uint64_t bytes_mapped;
	uint64_t bytes_in_use;   /**< allocated and not yet freed, incl. limbo */
	uint64_t bytes_limbo;    /**< unlinked, waiting for readers to pass */
	uint64_t reclaimed_blocks;
	uint64_t txns_kept;      /**< transactions in the ring */
	uint64_t stale_readers_cleared;
};

/* ---------------------------------------------------------------- life cycle */

/**
 * Create an empty store in a new shared mapping; the caller becomes its
 * writer.
 *
 * @return 0; -EINVAL bad parameters; -ENOMEM / -errno when the mapping
 *   cannot be made.
 */
int zap_store_create(const struct zap_store_params *p, struct zap_store **out);

/**
 * Attach to a store made by another process, read-only: data pages are
 * mapped PROT_READ, only this reader's table slot is writable.
 *
 * @param path  a path that opens the store's file: a hugetlbfs file, or
 *   /proc/PID/fd/N of the writer's memfd.
 * @return 0; -EPROTO not a zap store or another layout version;
 *   -errno from open/mmap.
 */
int zap_store_attach(const char *path, struct zap_store **out);

/** File descriptor of the mapping (to hand to another process). */
int zap_store_fd(const struct zap_store *s);

/** Unmap and free the handle. Readers of this handle must be closed first. */
void zap_store_close(struct zap_store *s);

/* ---------------------------------------------------------------- readers */

/**
 * Register a reader: a thread of the writer's process (rte_rcu_qsbr), or a
 * slot in the reader table when the store was attached. Registration is not
 * on the hot path; one reader per thread.
 *
 * @return 0; -ENOSPC no free reader slot.
 */
int zap_store_reader_open(struct zap_store *s, struct zap_store_reader **out);

/** Unregister. The reader must not be inside a read section. */
void zap_store_reader_close(struct zap_store_reader *r);

/**
 * Enter a read section and take a snapshot.
 * @return the snapshot tid: the last tid published (0 for an empty store).
 */
uint64_t zap_store_read_begin(struct zap_store_reader *r);

/** Leave the read section; pointers obtained in it may be reclaimed. */
void zap_store_read_end(struct zap_store_reader *r);

/** The snapshot tid of the current read section. */
uint64_t zap_store_reader_snapshot(const struct zap_store_reader *r);

/**
 * Current revision of @p oid at the reader's snapshot.
 * @return 0 (a deletion record has rev->deleted = 1); -ENOENT the oid has no
 *   revision at the snapshot (or it was packed away); -EINVAL bad oid.
 */
int zap_store_load(struct zap_store_reader *r, uint64_t oid, struct zap_store_rev *rev);

/**
 * ZODB loadBefore: the newest revision of @p oid with serial < @p before_tid
 * (and visible at the snapshot); rev->next_serial is the serial of the
 * revision that followed it, 0 if it is still current at the snapshot.
 * @return 0; -ENOENT no such revision; -EINVAL bad oid.
 */
int zap_store_load_before(struct zap_store_reader *r, uint64_t oid, uint64_t before_tid,
			  struct zap_store_rev *rev);

/**
 * Revision with serial exactly @p serial (ZODB loadSerial).
 * @return 0; -ENOENT none.
 */
int zap_store_load_serial(struct zap_store_reader *r, uint64_t oid, uint64_t serial,
			  struct zap_store_rev *rev);

/**
 * History of @p oid at the snapshot, newest first, at most @p max entries.
 * @param n  set to the number of entries written.
 * @return 0; -ENOENT unknown oid.
 */
int zap_store_history(struct zap_store_reader *r, uint64_t oid, struct zap_store_hist *out,
		      size_t max, size_t *n);

/** Called once per transaction by zap_store_changes_since(), in tid order. */
typedef int (*zap_store_change_fn)(const struct zap_store_txn_info *txn, void *ctx);

/**
 * The transactions with after_tid < tid <= snapshot, in commit order.
 * A non-zero return of @p fn stops the walk and is returned.
 * @return 0; -ERANGE the ring no longer holds every transaction after
 *   @p after_tid (the caller must treat every object as changed);
 *   or the non-zero value returned by fn.
 */
int zap_store_changes_since(struct zap_store_reader *r, uint64_t after_tid,
			    zap_store_change_fn fn, void *ctx);

/**
 * The transactions kept in the ring at the snapshot, newest first: the
 * newest @p skip are passed over, then @p fn is called for at most @p max
 * (undoLog). Stops at the oldest transaction still kept.
 * @return 0; or the non-zero value returned by @p fn.
 */
int zap_store_txns_newest(struct zap_store_reader *r, uint64_t skip, uint64_t max,
			  zap_store_change_fn fn, void *ctx);

/** A transaction found through one of its revisions (zap_store_txn_scan). */
struct zap_store_txn_ref {
	uint64_t tid;
	uint64_t oid; /**< one object it wrote that still has that revision */
};

/**
 * Every transaction that still has a revision at the snapshot with
 * @p after < tid <= @p upto, oldest first, one entry each (whether or not the
 * transaction ring still holds it): for iterating past the ring. Walks
 * every revision of every object. @p *out is malloc'd (free it; NULL when
 * @p *n is 0).
 * @return 0; -ENOMEM.
 */
int zap_store_txn_scan(struct zap_store_reader *r, uint64_t after, uint64_t upto,
		       struct zap_store_txn_ref **out, size_t *n);

/**
 * The transaction that wrote revision @p serial of @p oid (metadata and every
 * oid it wrote), at the snapshot.
 * @return 0; -ENOENT no such revision; -EINVAL bad oid.
 */
int zap_store_txn_of(struct zap_store_reader *r, uint64_t oid, uint64_t serial,
		     struct zap_store_txn_info *t);

/** Called for each revision by zap_store_each_record(); non-zero stops the walk. */
typedef int (*zap_store_record_fn)(void *ctx, uint64_t oid, uint64_t tid, const void *data,
				   uint64_t len);

/**
 * Writer: call @p fn for every revision the store holds that is not a
 * deletion (what a sweep of data kept beside the store must keep), in no
 * particular order.
 * @return 0; or the non-zero value @p fn returned.
 */
int zap_store_each_record(const struct zap_store *s, zap_store_record_fn fn, void *ctx);

/** Last published tid; usable without a reader. */
uint64_t zap_store_last_tid(const struct zap_store *s);

/* ---------------------------------------------------------------- writer */

/**
 * Writer: the serial of @p oid's newest revision (a deletion's tid for a
 * deleted object), 0 if the oid has none.
 */
uint64_t zap_store_serial(const struct zap_store *s, uint64_t oid);

/**
 * Writer: install one transaction atomically. Readers see all of it once
 * the tid is published, and nothing before.
 *
 * @param tid  must be greater than zap_store_last_tid().
 * @param meta the transaction's user, description and extension, copied
 *   into the store; NULL: all empty.
 * @param w    n writes; each oid at most once.
 * @return 0; -EINVAL tid not increasing, bad or repeated oid, n == 0;
 *   -EMSGSIZE a record larger than max_record_bytes; -ENOSPC the mapping
 *   is full. On error nothing has changed.
 */
int zap_store_commit(struct zap_store *s, uint64_t tid, const struct zap_txn_text *meta,
		     const struct zap_store_write *w, uint32_t n);

/**
 * Writer: pack. For every object keep the revision current at @p pack_tid
 * and the newer ones; unlink older revisions (and an object whose current
 * revision at pack_tid is a deletion). Unlinked memory is freed later by
 * zap_store_reclaim(), once readers have passed.
 * Same as zap_store_pack_gc() with no garbage collection.
 * @return 0; -EINVAL pack_tid beyond last tid.
 */
int zap_store_pack(struct zap_store *s, uint64_t pack_tid);

/** Called once per referenced oid; a non-zero return stops the caller. */
typedef int (*zap_store_oid_fn)(void *arg, uint64_t oid);

/**
 * A reference extractor: calls @p fn for every oid that record @p rec
 * references (repeats allowed). Returns 0; -EINVAL when it cannot read the
 * record (the pack then collects nothing); or the non-zero value of @p fn.
 * Must be a pure function of the record bytes (every replica runs it).
 */
typedef int (*zap_store_refs_fn)(const void *rec, size_t len, zap_store_oid_fn fn, void *arg);

/** Garbage collection of a pack: how references are found, extra roots. */
struct zap_store_gc {
	zap_store_refs_fn refs; /**< NULL: no collection (zap_store_pack()) */
	/**
	 * Optional: name more roots (objects that must survive, e.g. those of
	 * transactions in flight) by calling @p add(arg, oid); it may also run
	 * @p refs over records of its own with @p add as the callback. A
	 * non-zero return aborts the collection (nothing collected).
	 */
	int (*roots)(void *ctx, zap_store_oid_fn add, void *arg);
	void *roots_ctx;
};

/** What a collecting pack did. */
struct zap_store_gc_result {
	uint64_t reachable; /**< objects marked reachable */
	uint64_t collected; /**< unreachable objects removed whole */
	int aborted;	    /**< 1: a record could not be read (or roots() failed): nothing
				 collected, the pack dropped old revisions only */
	int no_root;	    /**< 1: oid 0 had no live revision at pack_tid: nothing collected */
};

/**
 * Writer: pack with garbage collection. First as zap_store_pack(); then
 * every object not reachable at @p pack_tid loses all its revisions and
 * leaves the index (a load answers -ENOENT).
 *
 * Reachable: oid 0 (the root), every object with a revision newer than
 * @p pack_tid, every object @p gc->roots names, and, transitively, every
 * object referenced by a reachable object's revision current at pack_tid or
 * by any of its newer revisions (references read with @p gc->refs).
 * References to oids the store does not hold are ignored.
 *
 * Conservative rules: when @p gc->refs fails on a record it must read, or
 * roots() fails, nothing is collected (res->aborted); when oid 0 has no
 * live revision at pack_tid nothing is collected either (res->no_root).
 * The mark uses a bitmap over the index slots and a worklist of at most one
 * entry per object, allocated before anything changes; readers keep
 * reading throughout (unlinked memory goes through reclamation).
 *
 * @param gc   NULL or gc->refs NULL: no collection.
 * @param res  may be NULL.
 * @return 0; -EINVAL pack_tid beyond last tid; -ENOMEM (nothing changed).
 */
int zap_store_pack_gc(struct zap_store *s, uint64_t pack_tid, const struct zap_store_gc *gc,
		      struct zap_store_gc_result *res);

/**
 * Writer: free unlinked memory that no reader can hold any more. Cheap when
 * there is nothing to do; called after commits and periodically.
 * @return number of blocks freed.
 */
uint64_t zap_store_reclaim(struct zap_store *s);

/** Counters; safe from the writer; from others, a racy but harmless view. */
void zap_store_stats(const struct zap_store *s, struct zap_store_stats *st);

/**
 * Writer: a digest of the logical contents (objects, revisions, data,
 * transaction metadata, last tid), independent of memory layout. Two
 * stores with equal digests hold the same database.
 */
uint64_t zap_store_digest(const struct zap_store *s);

/**
 * Bytes [0, used) of the mapping, for byte-level comparison in tests: two
 * stores built by the same commits, with no pack in between, are
 * byte-identical over this range.
 */
const void *zap_store_image(const struct zap_store *s, uint64_t *used);

/* ---------------------------------------------------------------- snapshots */

/*
 * A snapshot is the store's logical content as a versioned, explicit
 * little-endian byte stream (docs/store.md, "Snapshots"): every object's
 * revisions, the transactions they belong to and those kept in the ring, last
 * tid, pack tid, and a checksum. A lagging node whose log was compacted loads
 * one into an empty store and replays the log from there.
 */

/**
 * Where a snapshot goes: called with consecutive pieces of the stream. A
 * non-zero return stops the writer, which returns that value.
 */
typedef int (*zap_store_sink_fn)(const void *buf, size_t len, void *ctx);

/**
 * Writer: stream a snapshot of @p s to @p fn. The stream does not depend on
 * the memory layout: two stores with the same content give the same bytes.
 * @return 0; -ENOMEM; or the non-zero value returned by @p fn.
 */
int zap_store_snapshot_write(const struct zap_store *s, zap_store_sink_fn fn, void *ctx);

/**
 * Writer: load a snapshot into @p s, which must be empty (no commit yet)
 * and have the same txn_ring_slots as the source. Afterwards the digest,
 * the reads and changes_since equal the source's.
 * @return 0; -EBADMSG truncated or corrupt (checksum, bounds, ordering);
 *   -ENOTSUP another snapshot version; -EINVAL @p s not empty, or another
 *   ring size; -EMSGSIZE a record larger than this store's max_record_bytes;
 *   -ENOSPC the mapping is too small; -ENOMEM. On error the store is
 *   logically unchanged (still empty).
 */
int zap_store_snapshot_load(struct zap_store *s, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* ZAP_STORE_H */
