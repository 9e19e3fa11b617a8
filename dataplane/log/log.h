/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap log: the durable, append-only log of one node.
 *
 * The chosen Paxos log and the acceptor's promised/accepted state live in
 * one sequence of records, kept in segment files inside one directory. This
 * log is zap's database, as FileStorage's file is ZODB's. The module is the
 * file layer only: it knows nothing of Paxos, owns no thread and no lcore.
 * It treats a record's type, slot, ballot and payload as opaque.
 *
 * Every record gets an LSN (log sequence number): 1 for the first record
 * ever appended to the directory, then +1 per record, across segments and
 * restarts. zap_log_append() only buffers and writes; zap_log_sync() makes
 * everything appended so far durable with one fdatasync (group commit) and
 * advances the durable LSN. The caller decides when to sync.
 *
 * On-disk format, recovery rules and messages: docs/log.md.
 *
 * Threading rule: one thread owns a zap_log and makes every call on it,
 * except zap_log_durable_lsn(), which any thread may call.
 *
 * Errors are negative errno values; each function lists the ones it returns.
 * After an I/O error during append, sync or segment roll the log is failed:
 * every later append/sync returns the same error, and the owner closes and
 * reopens it (recovery then decides what reached the disk).
 */
#ifndef ZAP_LOG_H
#define ZAP_LOG_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @name Record types. The log stores the type byte and never interprets it. */
/** @{ */
#define ZAP_LOG_PROMISE 1u    /**< acceptor promised a ballot (ballot field) */
#define ZAP_LOG_ACCEPT 2u     /**< acceptor accepted (slot, ballot, entry bytes) */
#define ZAP_LOG_CHOSEN 3u     /**< every slot up to and including `slot` is chosen */
#define ZAP_LOG_CHECKPOINT 4u /**< reserved: a store checkpoint covers slots < `slot` */
#define ZAP_LOG_TYPE_USER 64u /**< first type free for later modules (64..255) */
/** @} */

/** Default segment size that triggers a new segment file, in bytes. */
#define ZAP_LOG_DEFAULT_SEGMENT_BYTES (64ull << 20)
/** Default largest payload of one record, in bytes. */
#define ZAP_LOG_DEFAULT_MAX_RECORD_BYTES (64ull << 20)
/** Hard limit for max_record_bytes (the record length field is 32 bits). */
#define ZAP_LOG_MAX_RECORD_BYTES_LIMIT (1ull << 30)
/** Bytes of the record header that precedes each payload. */
#define ZAP_LOG_HEADER_BYTES 48u
/** Records start at multiples of this, so a scan can resynchronise. */
#define ZAP_LOG_ALIGN_BYTES 8u

/** How zap_log_sync() makes records durable. */
enum zap_log_durability {
	/** write, then fdatasync: a record survives power loss once synced. */
	ZAP_LOG_DURABILITY_FSYNC,
	/**
	 * write to the page cache, no fdatasync: a record survives a crash of
	 * this process, not of the machine. Durability then comes from a
	 * majority of nodes holding it in RAM (benchmarks, `memory` in YAML).
	 */
	ZAP_LOG_DURABILITY_MEMORY,
};

/** Open parameters. Zero fields take the documented default. */
struct zap_log_params {
	const char *dir;		    /**< segment directory; created if missing */
	uint64_t segment_bytes;		    /**< start a new segment past this (default 64 MiB) */
	uint64_t max_record_bytes;	    /**< largest payload (default 64 MiB, at most 1 GiB) */
	enum zap_log_durability durability; /**< default FSYNC */
};

/** Counters of one open log (since open, except the gauges). */
struct zap_log_stats {
	uint64_t appends;	       /**< records appended */
	uint64_t payload_bytes;	       /**< payload bytes appended */
	uint64_t bytes;		       /**< bytes appended: headers, payloads, padding */
	uint64_t syncs;		       /**< fdatasync calls on segment files (all causes) */
	uint64_t commits;	       /**< zap_log_sync() calls that made appends durable */
	double appends_per_sync;       /**< appends made durable per commit (group size) */
	uint64_t dir_syncs;	       /**< fsync calls on the directory */
	uint64_t segments_created;     /**< segment files created */
	uint64_t segments_dropped;     /**< segment files removed by zap_log_drop_before() */
	uint64_t segments;	       /**< gauge: segment files now */
	uint64_t replayed_records;     /**< valid records replayed at open */
	uint64_t truncated_tails;      /**< 1 if open cut a torn tail, else 0 */
	uint64_t truncated_tail_bytes; /**< bytes cut from the last segment at open */
	uint64_t last_lsn;	       /**< gauge: LSN of the newest record (0: none) */
	uint64_t durable_lsn;	       /**< gauge: every record up to this LSN is durable */
};

/**
 * Called once per valid record at open, in LSN order.
 *
 * @param payload  Points into a read-only mapping of the segment, 8-byte
 *                 aligned; valid only during the call.
 * @return 0 to continue; any other value stops recovery and zap_log_open()
 *         returns it unchanged (use a negative errno).
 */
typedef int (*zap_log_replay_fn)(uint8_t type, uint64_t slot, uint64_t ballot, const void *payload,
				 uint64_t len, void *ctx);

struct zap_log;

/**
 * Fill @p p with the defaults for directory @p dir.
 */
void zap_log_params_init(struct zap_log_params *p, const char *dir);

/**
 * Open (or create) the log in p->dir and replay it.
 *
 * Every valid record is passed to @p fn in order (fn may be NULL). A torn
 * tail (a bad or incomplete record at the end of the last segment, with no
 * valid record after it) is cut off and counted; any other damage refuses
 * to open. The directory is locked (flock) while the log is open. If
 * recovery fails after some records were replayed, the caller discards what
 * it built from them.
 *
 * @param err      Receives a message naming the file and byte offset on
 *                 failure (may be NULL); always NUL-terminated if err_len > 0.
 * @return 0 and *out set, or:
 *   -EINVAL bad parameters; -EILSEQ damaged log (see err); -EBUSY the
 *   directory is open elsewhere; -ENOMEM; another -errno from the file
 *   system; or the nonzero value returned by @p fn.
 */
int zap_log_open(const struct zap_log_params *p, zap_log_replay_fn fn, void *ctx,
		 struct zap_log **out, char *err, size_t err_len);

/**
 * Append one record. Buffers it, or writes it to the page cache; never
 * syncs, except that starting a new segment in FSYNC mode first syncs the
 * full one. The payload is copied before return.
 *
 * @param lsn  Receives the record's LSN (may be NULL).
 * @return 0, or -EMSGSIZE len > max_record_bytes; -EINVAL payload NULL with
 *   len > 0; -errno of a failed write (the log is then failed).
 */
int zap_log_append(struct zap_log *l, uint8_t type, uint64_t slot, uint64_t ballot,
		   const void *payload, uint64_t len, uint64_t *lsn);

/**
 * Make every record appended so far durable: write what is buffered, then
 * one fdatasync (FSYNC mode; skipped in MEMORY mode). Advances the durable
 * LSN. Nothing pending: returns 0 at once, no system call.
 *
 * @return 0, or -errno of the failed write/fdatasync (the log is then failed).
 */
int zap_log_sync(struct zap_log *l);

/** LSN up to which every record is durable (0: none). Any thread may call. */
uint64_t zap_log_durable_lsn(const struct zap_log *l);

/** LSN of the newest record, durable or not (0: none). */
uint64_t zap_log_last_lsn(const struct zap_log *l);

/** Number of appended records not yet durable. */
uint64_t zap_log_pending(const struct zap_log *l);

/**
 * Remove the oldest segment files whose records all have slot < @p slot.
 *
 * Only a prefix of the segments goes (the first segment with a record at
 * slot >= @p slot, and everything after it, stays), and never the segment
 * being written. The slot of every record counts, whatever its type: a
 * caller that still needs state from an old record (the promised ballot)
 * appends it again before dropping.
 *
 * @return the number of segment files removed, or -errno of unlink or the
 *   directory fsync.
 */
int zap_log_drop_before(struct zap_log *l, uint64_t slot);

/** Copy the counters into @p st. */
void zap_log_stats(const struct zap_log *l, struct zap_log_stats *st);

/**
 * Sync what is pending, then release everything. Errors of that last sync
 * are not reported: call zap_log_sync() first to see them. NULL is a no-op.
 */
void zap_log_close(struct zap_log *l);

/**
 * CRC32C as the log computes it (Castagnoli polynomial, reflected, init
 * 0xFFFFFFFF, final xor 0xFFFFFFFF: "123456789" gives 0xE3069283).
 */
uint32_t zap_log_crc32c(const void *data, uint64_t len);

/** A log stage's open group of appends not yet synced. */
struct zap_log_group {
	uint64_t pending;     /**< appends since the last sync */
	uint64_t opened_ns;   /**< time of the group's first append */
	uint64_t last_end_ns; /**< when the last sync returned (0: none yet) */
};

/**
 * Whether the log stage syncs @p g now (group commit policy). A group closes
 * when it holds @p max appends, when @p window_ns has passed since its first
 * append, or at once when the last sync ended at least @p window_ns ago: a
 * lone commit on an idle disk does not wait for company that is not coming,
 * while under load (syncs back to back) appends still collect for a window.
 * Pure; an empty group is never due.
 */
bool zap_log_group_due(const struct zap_log_group *g, uint64_t now_ns, uint64_t max,
		       uint64_t window_ns);

#ifdef __cplusplus
}
#endif

#endif /* ZAP_LOG_H */
