/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap transaction state machine: applies log entries (entry.h) to the store,
 * deterministically.
 *
 * Every replica applies the same entries in the same order and ends with the
 * same store and the same state machine (zap_txn_sm_digest()). The state
 * machine reads no clock, no random source and no environment: the only
 * time it knows is the proposer clock carried in each entry.
 *
 * What it keeps (the replicated state): the session table (per client, the
 * last request sequence and its result, for exactly-once replies), the
 * prepared and waiting transactions with copies of their records, the oid
 * locks, the FIFO of waiting votes, the next oid to hand out, the last tid
 * and the applied log index. docs/txn.md states every rule. PACK changes
 * only the store (zap_store_pack_gc()), so it adds nothing here; with a
 * reference extractor (zap_txn_params.refs) the objects of the prepared and
 * waiting transactions, and those their records reference, survive it.
 *
 * Threading: the apply stage owns a state machine and its store writer
 * side; nothing here is thread-safe, and nothing needs to be.
 */
#ifndef ZAP_TXN_H
#define ZAP_TXN_H

#include <stddef.h>
#include <stdint.h>

#include "entry.h"
#include "store/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Defaults for zero fields of struct zap_txn_params. */
#define ZAP_TXN_DEFAULT_LEASE_NS (60ull * 1000000000ull)
#define ZAP_TXN_DEFAULT_MAX_SESSIONS 4096u
#define ZAP_TXN_DEFAULT_MAX_PREPARED 1024u
#define ZAP_TXN_DEFAULT_FIRST_OID 1u
/**
 * A COMMIT's asked-for tid (restore) is kept only below this: ZODB's maxtid
 * (2^63 - 1), so that a restore can never leave the cluster without tids.
 */
#define ZAP_TXN_MAX_ASKED_TID 0x7fffffffffffffffull

/** Parameters; zero fields take the defaults. Must be equal on every replica. */
struct zap_txn_params {
	uint64_t lease_ns;	   /**< a prepared txn older than this may be expired */
	uint32_t max_sessions;	   /**< session table size (LRU eviction beyond) */
	uint32_t max_prepared;	   /**< prepared + waiting transactions (BUSY beyond) */
	uint64_t max_record_bytes; /**< largest record (default 16 MiB) */
	uint64_t first_oid;	   /**< first oid OID_RESERVE hands out (default 1; oid 0 is
					the ZODB root, created by its first commit) */
	uint32_t max_txn_objects;  /**< stores + reads per transaction (default 65536) */
	uint32_t max_text_bytes;   /**< user / description / extension (default 1 MiB) */
	uint64_t max_large_bytes;  /**< largest entry carried in PAYLOAD chunks (default 2 GiB) */
	uint32_t break_flags;	   /**< TEST ONLY: ZAP_TXN_BREAK_*; 0 in production */
	/**
	 * Reference extractor for PACK's garbage collection (zodb_record_refs()
	 * for ZODB pickles); NULL: PACK drops old revisions only. The same
	 * function on every replica.
	 */
	zap_store_refs_fn refs;
	/**
	 * Optional: what the state machine keeps of each record a PREPARE /
	 * ONESHOT brings (zodb_record_keep(): a blob goes to the node's blob
	 * area and the record keeps its hash). Called with @p cap = len +
	 * ZAP_TXN_KEEP_EXTRA; sets *out_len to the bytes written to @p out, or
	 * 0 to keep the record as it is. The bytes must be the same on every
	 * replica; what it writes elsewhere is the node's own. A negative
	 * return means the entry cannot be applied on this node:
	 * zap_txn_sm_apply() returns -EIO and changes nothing. With it set,
	 * records up to max_large_bytes are taken in and max_record_bytes
	 * bounds what is kept (a larger kept record fails the vote with
	 * ZAP_TXN_STORE_ERROR, -EMSGSIZE).
	 */
	int (*keep)(void *ctx, const void *rec, size_t len, void *out, size_t cap,
		    size_t *out_len);
	void *keep_ctx; /**< first argument of keep */
};

/** Room zap_txn_params.keep may use beyond the record it is given. */
#define ZAP_TXN_KEEP_EXTRA 64u

/**
 * Test only: the PREPARE / ONESHOT write-conflict and readCurrent serial
 * checks pass whatever the base serials (locks still apply). A simulator
 * switches it on to show that its serializability checker catches a state
 * machine that skips them. Never set in production.
 */
#define ZAP_TXN_BREAK_CONFLICT_CHECK (1u << 0)

/** Outcome of a request. */
enum zap_txn_status {
	ZAP_TXN_OK = 0,		/**< vote passed / committed / aborted / oids reserved / packed */
	ZAP_TXN_CONFLICT,	/**< a stored oid moved on: oid, serial (committed), base_serial */
	ZAP_TXN_READ_CONFLICT,	/**< a readCurrent oid moved on: oid, serial, base_serial */
	ZAP_TXN_WAITING,	/**< vote queued behind a lock; a final result follows */
	ZAP_TXN_ABORTED,	/**< aborted by the client (ABORT) */
	ZAP_TXN_EXPIRED,	/**< aborted by LEASE_EXPIRE (lease ran out or node left) */
	ZAP_TXN_UNKNOWN_TXN,	/**< COMMIT / ABORT of a txn that is not there (or not yours) */
	ZAP_TXN_DUPLICATE_TXN,	/**< PREPARE / ONESHOT of a txn id already prepared or waiting */
	ZAP_TXN_STALE_REQUEST,	/**< seq older than the session's last */
	ZAP_TXN_BUSY,		/**< the transaction table is full (max_prepared) */
	ZAP_TXN_STORE_FULL,	/**< zap_store_commit() said -ENOSPC; the txn is aborted */
	ZAP_TXN_STORE_ERROR,	/**< zap_store_commit() failed otherwise, or zap_store_pack() failed
				   (store_errno) */
	ZAP_TXN_NOT_PREPARED,	/**< COMMIT of a txn whose vote is still waiting */
	ZAP_TXN_OIDS_EXHAUSTED, /**< OID_RESERVE beyond the largest oid */
	ZAP_TXN_STATUS_COUNT
};

/** One result, handed to the emit callback. */
struct zap_txn_result {
	uint64_t index;	     /**< log index of the entry that produced it */
	uint64_t client_id;  /**< 0: an internal request (no session) */
	uint64_t seq;	     /**< the request this answers */
	uint64_t txn_id;     /**< PREPARE / ONESHOT / COMMIT / ABORT */
	uint8_t entry_type;  /**< type of the request this answers (enum zap_entry_type) */
	uint8_t duplicate;   /**< 1: replayed from the session table, not executed again */
	uint16_t status;     /**< enum zap_txn_status */
	int32_t store_errno; /**< STORE_FULL / STORE_ERROR: the store's negative errno */
	uint64_t tid;	     /**< OK: the commit's tid, or the PACK's effective pack tid */
	uint64_t oid;	     /**< CONFLICT / READ_CONFLICT: the object */
	uint64_t serial;     /**< CONFLICT / READ_CONFLICT: its current (committed) serial */
	uint64_t
	    base_serial; /**< CONFLICT: the client's base serial; READ_CONFLICT: the serial read */
	uint64_t first_oid;   /**< OID_RESERVE: first oid of the block */
	uint32_t oid_count;   /**< OID_RESERVE: size of the block */
	uint32_t n_oids;      /**< OK commit: number of oids written (0 in replays) */
	const uint64_t *oids; /**< OK commit: the oids written, valid during the callback */
};

/** Counters (not replicated state: not in the digest). */
struct zap_txn_stats {
	uint64_t applied; /**< entries applied, rejected ones included */
	uint64_t commits;
	uint64_t conflicts;
	uint64_t read_conflicts;
	uint64_t waits;	     /**< votes queued behind a lock */
	uint64_t aborts;     /**< ABORTs that found their transaction */
	uint64_t expiries;   /**< transactions aborted by LEASE_EXPIRE */
	uint64_t duplicates; /**< session-table replays */
	uint64_t stale;	     /**< STALE_REQUEST answers */
	uint64_t unknown_txn;
	uint64_t busy;
	uint64_t store_failures; /**< STORE_FULL + STORE_ERROR */
	uint64_t packs;		 /**< PACKs applied (zap_store_pack() succeeded) */
	uint64_t gc_collected;	 /**< objects PACKs removed as unreachable */
	uint64_t gc_aborted;	 /**< PACKs that collected nothing: a record was unreadable */
	uint64_t rejected;	 /**< entries that failed to decode */
	uint64_t oids_reserved;
	uint64_t sessions_evicted;
	uint64_t payload_chunks;   /**< PAYLOAD chunks taken */
	uint64_t payloads_dropped; /**< payloads dropped: no room, no first chunk, expired */
	uint64_t large_applied;	   /**< LARGE entries whose payload was whole and applied */
	uint64_t large_refused;	   /**< LARGE entries refused: payload missing, broken, bad hash */
	uint32_t sessions; /**< current sizes */
	uint32_t prepared;
	uint32_t waiting;
	uint32_t locks;
	uint32_t payloads;	/**< payloads being received */
	uint64_t payload_bytes; /**< their bytes so far */
};

struct zap_txn_sm;

/** Called for every result, in the order they happen. */
typedef void (*zap_txn_emit_fn)(const struct zap_txn_result *r, void *ctx);

/**
 * Create a state machine over @p store (the caller keeps the store and must
 * destroy the state machine first). Starts with the store's last tid, no
 * sessions, no transactions, applied index 0.
 * @return 0; -EINVAL bad parameters; -ENOMEM.
 */
int zap_txn_sm_create(const struct zap_txn_params *p, struct zap_store *store,
		      struct zap_txn_sm **out);

/** Free a state machine (NULL is fine). Prepared transactions are dropped. */
void zap_txn_sm_destroy(struct zap_txn_sm *sm);

/**
 * Apply one log entry. Results are passed to @p emit (may be NULL) before
 * this returns; the entry buffer is not used after it returns.
 *
 * @param index  log index, greater than zap_txn_sm_applied_index() (the
 *   first index is 1; gaps are allowed).
 * @return 0 applied (whatever the requests' outcomes);
 *   -EALREADY index not greater than the applied index: nothing happens;
 *   a decode error of zap_entry_decode() (-EBADMSG, -ENOTSUP, -EMSGSIZE,
 *   -E2BIG, -EINVAL): the entry is rejected, acts as a NOP (the applied
 *   index advances, nothing else changes, nothing is emitted);
 *   -ENOMEM the host is out of memory, or -EIO zap_txn_params.keep failed
 *   (the blob area's disk): nothing changed, the index did not advance;
 *   the caller must stop the replica (these are the only outcomes that
 *   are not the same on every replica).
 */
int zap_txn_sm_apply(struct zap_txn_sm *sm, uint64_t index, const void *entry, size_t len,
		     zap_txn_emit_fn emit, void *ctx);

/**
 * Hash of all replicated state except the store: sessions, prepared and
 * waiting transactions with their records, locks, the waiter FIFO, next oid,
 * last tid, applied index. Equal on replicas that applied the same entries.
 */
uint64_t zap_txn_sm_digest(const struct zap_txn_sm *sm);

/**
 * Call @p fn for every record the prepared and waiting transactions hold
 * (tid 0; deletions skipped): with zap_store_each_record(), all the data
 * a sweep of the blob area must keep.
 * @return 0; or the non-zero value @p fn returned.
 */
int zap_txn_sm_each_record(const struct zap_txn_sm *sm, zap_store_record_fn fn, void *ctx);

/** Index of the last entry applied (0 before the first). */
uint64_t zap_txn_sm_applied_index(const struct zap_txn_sm *sm);

/** Last tid assigned (starts at the store's last tid). */
uint64_t zap_txn_sm_last_tid(const struct zap_txn_sm *sm);

/** Next oid OID_RESERVE will hand out. */
uint64_t zap_txn_sm_next_oid(const struct zap_txn_sm *sm);

/** Counters and current sizes. */
void zap_txn_sm_stats(const struct zap_txn_sm *sm, struct zap_txn_stats *st);

/** Name of a status ("CONFLICT"), "?" for unknown values. */
const char *zap_txn_status_name(unsigned status);

/* ---------------------------------------------------------------- snapshots */

/**
 * Stream a snapshot of the state machine's replicated state (everything
 * zap_txn_sm_digest() covers; not the store, see zap_store_snapshot_write())
 * to @p fn. Take it together with a store snapshot at the same applied index.
 * @return 0; -ENOMEM; or the non-zero value returned by @p fn.
 */
int zap_txn_sm_snapshot_write(const struct zap_txn_sm *sm, zap_store_sink_fn fn, void *ctx);

/**
 * Load a snapshot into a fresh state machine (nothing applied yet) whose
 * store already holds the matching store snapshot; made with the same
 * parameters as the source. Afterwards zap_txn_sm_digest() equals the
 * source's, and applying the entries after its applied index gives the
 * same results.
 * @return 0; -EBADMSG truncated or corrupt; -ENOTSUP another snapshot
 *   version; -EINVAL @p sm not fresh, more sessions or transactions than
 *   its parameters allow, or a last tid older than the store's; -ENOMEM.
 *   On error @p sm is unchanged (still fresh).
 */
int zap_txn_sm_snapshot_load(struct zap_txn_sm *sm, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* ZAP_TXN_H */
