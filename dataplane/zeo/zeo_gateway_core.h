/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO gateway core: the connection, transaction and gateway structs
 * every part of the gateway shares, and the functions of the files, from
 * the bottom layer up. A file calls only into the files declared above it:
 *
 *   zeo_gateway_core.c      sending, closing, message and reply writers,
 *                           the invalidation flush, read barriers
 *   zeo_gateway_read.c      the calls answered from the store
 *   zeo_gateway_txn.c       building a transaction
 *   zeo_gateway_iter.c      iteration and restore
 *   zeo_gateway_undo.c      undo
 *   zeo_gateway_resolve.c   native conflict resolution at vote
 *   zeo_gateway_calls.c     the calls that wait for the cluster (state machines)
 *   zeo_gateway.c           listeners, I/O threads, framing, dispatch of calls
 *
 * Threads: a few I/O threads (epoll) own the sockets: they read, frame,
 * decode and dispatch every call, answer the reads from the store, build
 * transactions and run the calls that wait for the cluster (register's
 * barrier, new_oids, vote, tpc_finish, tpc_abort, ping, pack) as state
 * machines, one per connection at a time, in arrival order; the notifier
 * announces commits. No thread belongs to a connection, none blocks.
 *
 * Locks of a connection, always taken in this order:
 *   g->mu   the gateway's connection list (notifier, accept, connection exit)
 *   c->tmu  the transaction (its I/O thread only; kept for clarity)
 *   c->wmu  the socket's write side (c->out, the pending output, the epoll
 *           interest), inval_tid, finishing, the input pause: every reply and
 *           every invalidation is built and sent under it, so a load's reply
 *           and the invalidations can never cross (O3). Store reads happen
 *           under it too, through the calling thread's own reader (zg_rd()).
 */
#ifndef ZAP_ZEO_GATEWAY_CORE_H
#define ZAP_ZEO_GATEWAY_CORE_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "client/client_proto.h"
#include "store/store.h"
#include "client/zapclient.h"
#include "zeo_codec.h"
#include "zeo_gateway.h"

/** Encoded msgid bytes kept for a queued call (a loadBefore msgid is ~24 B). */
#define ZG_MSGID_MAX 64u
/** Calls queued on a connection (zeo_gateway_calls.c). */
#define ZG_JOBS 64u
/** How long a write may wait for the cluster before the connection is dropped. */
#define ZG_WRITE_DEADLINE_NS (30ull * 1000 * 1000 * 1000)
/** A vote's attempt waits this much longer per MiB of records (and its deadline 4× as much). */
#define ZG_LARGE_NS_PER_MIB (50ull * 1000 * 1000)
/**
 * A record that carries a blob: ZG_BLOB_MAGIC, u32 big-endian pickle length,
 * the pickle, the blob's bytes. Loads return the pickle only; sendBlob sends
 * the blob. ZODB records start with a pickle opcode, never with 'Z'.
 */
#define ZG_BLOB_MAGIC "ZAPBLOB1"
#define ZG_BLOB_MAGIC_BYTES 8u
#define ZG_BLOB_HDR_BYTES (ZG_BLOB_MAGIC_BYTES + 4u)
/** Chunk size of receiveBlobChunk (as the stock server sends). */
#define ZG_BLOB_CHUNK_BYTES 59000u
/**
 * Votes a stock client makes at most for one transaction while resolving
 * conflicts; the last one gets a ConflictError instead of conflict dicts.
 */
#define ZG_MAX_RESOLVE_ROUNDS 9u
/** Largest transaction (all its records) one connection may build. */
#define ZG_DEFAULT_MAX_TXN_BYTES (2ull << 30)

enum zg_job_kind {
	ZG_JOB_NEW_OIDS = 1,
	ZG_JOB_VOTE,
	ZG_JOB_FINISH,
	ZG_JOB_ABORT,
	ZG_JOB_PING,
	ZG_JOB_PACK,	 /**< pack: the pack tid (before the clamp) in txn */
	ZG_JOB_REGISTER, /**< register: read-only flag in arg */
};

/** One call that waits for the cluster. */
struct zg_job {
	uint8_t kind;
	uint16_t msgid_len;
	uint8_t msgid[ZG_MSGID_MAX];
	int64_t arg;  /**< new_oids: count */
	uint64_t txn; /**< the client's txn id */
	bool txn_big; /**< txn id >= 2^63 */
};

/** A latency histogram: 4 buckets per power of two of nanoseconds. */
#define ZG_LAT_BUCKETS 256u
struct zg_lat {
	atomic_uint_fast64_t b[ZG_LAT_BUCKETS];
};

/** A ZEO txn id (a Python int, opaque). */
struct zg_txn_key {
	uint64_t v;
	bool big;
};

/** One store-type call of the open transaction. */
struct zg_item {
	uint64_t oid;
	uint64_t serial;
	uint64_t off; /**< into zg_txn.data */
	uint32_t len;
	uint32_t seq; /**< arrival order */
	bool deleted; /**< deleteObject */
	bool undo;    /**< written by undoa: never a conflict dict */
	bool restore; /**< restorea: written over whatever is current (base set at vote) */
};

/** The transaction a connection is building (one at a time, as in ZEO). */
struct zg_txn {
	bool open;
	bool voted; /**< PREPARE succeeded: native_id holds locks */
	struct zg_txn_key key;
	uint64_t native_id; /**< txn id on the native protocol */
	uint64_t want_tid;  /**< tpc_begin's tid (restore), 0 none */
	uint8_t *data;	    /**< user, description, extension, records */
	uint64_t data_len, data_cap;
	uint64_t max_bytes; /**< data + the blob being uploaded, at most (txn.max_bytes) */
	bool too_large;	    /**< went past max_bytes: what came after is dropped, vote refuses */
	uint64_t user_off, desc_off, ext_off;
	uint32_t user_len, desc_len, ext_len;
	struct zg_item *items;
	uint32_t n_items, cap_items;
	struct zap_cp_read *reads;
	uint32_t n_reads, cap_reads;
	uint32_t seq;
	uint32_t conflict_rounds; /**< votes answered with conflict dicts */
	/* undoa: the transactions to undo, turned into items at the first vote */
	uint64_t *undos;
	uint32_t n_undos, cap_undos;
	bool undos_done;
	uint64_t *undone; /**< oids the undo wrote: vote returns them */
	uint32_t n_undone;
	uint64_t *resolved; /**< oids merged natively (zg_resolve_native): vote returns them */
	uint32_t n_resolved, cap_resolved;
	/* the first conflict the native merge refused at this vote (a ConflictError) */
	bool refused;
	uint64_t refused_oid;
	char refused_class[96];
	/* the blob upload in progress (storeBlobStart .. storeBlobEnd) */
	bool blob_open;
	uint8_t *blob;
	uint64_t blob_len, blob_cap;
};

/** Iterators of one connection (iterator_start / iterator_record_start). */
#define ZG_ITERATORS 16u

struct zg_iter {
	uint64_t id;	 /**< 0: free */
	bool records;	 /**< a record iterator of one transaction */
	uint64_t cursor; /**< transactions: last tid returned; records: the tid */
	uint64_t stop;	 /**< transactions: last tid to return */
	uint32_t next;	 /**< records: index of the next oid */
	/* transactions older than the ring: found once through their revisions */
	bool listed;
	struct zap_store_txn_ref *list; /**< zap_store_txn_scan(), oldest first */
	size_t n_list, pos;
	uint64_t hint_oid; /**< records: 1 + an oid the transaction wrote, 0 none */
};

/** Why a connection's input is paused (c->paused bits, under wmu). */
#define ZG_PAUSE_QUEUE 1u    /**< the job queue is full */
#define ZG_PAUSE_REGISTER 2u /**< register waits for its barrier */

struct zg_io;

struct zg_conn;
struct zg_blob_send;
typedef void (*zg_cont)(struct zg_conn *c, int rc);

/** What a native reply carried (the fields the calls use). */
struct zg_reply {
	uint64_t tid, oid, serial, base_serial;
	uint32_t count;
};

/** The call of a connection that waits for the cluster (zeo_gateway_calls.c). */
struct zg_call {
	bool on;
	struct zg_job j;
	uint8_t wait;	      /**< what it waits for (enum zg_wait) */
	zg_cont next;	      /**< runs when the wait ends */
	zg_cont after;	      /**< a barrier's caller */
	uint64_t deadline_ns; /**< the job's: ZG_WRITE_DEADLINE_NS after it started */
	uint64_t at_ns;	      /**< a reply: the next resend; a pause: its end */
	uint32_t timeout_ms, tries_left;
	uint64_t wait_tid; /**< the tid the store must reach */
	struct zg_reply r; /**< the last native reply */
	uint64_t tid;	   /**< tpc_finish: the commit's tid; pack: the pack tid */
	/* vote */
	struct zap_cp_store *st;
	struct zap_cp_read *rd;
	uint32_t n_st, n_rd;
	uint64_t native; /**< the PREPARE's native txn id */
	unsigned merge_round;
	uint64_t started_ns; /**< the job's start; the native request's in sent_ns */
	uint64_t sent_ns;
};

struct zg_conn {
	struct zap_zeo_gateway *g;
	struct zg_io *io; /**< the I/O thread that owns the socket */
	int fd;
	enum zeo_enc enc;
	uint64_t id;
	atomic_uint refs;		 /**< its I/O thread's, resume entries, inbox items */
	struct zg_conn *next;		 /**< g->conns */
	struct zg_conn *io_prev, *io_next; /**< the I/O thread's list */
	struct zg_conn *resume_next;	 /**< the I/O thread's resume list */
	uint64_t accepted_ns;

	/* I/O thread only */
	struct zg_iter iters[ZG_ITERATORS];
	uint64_t next_iter_id;
	bool handshaken;
	uint8_t *rbuf; /**< input: bytes [rpos, rlen) not yet framed */
	uint32_t rcap, rpos, rlen;
	struct zeo_arena arena;
	struct zeo_arena harena; /**< history: decoding stored extensions */
	struct zeo_buf scratch;

	/* under wmu */
	pthread_mutex_t wmu;
	struct zeo_buf out;   /**< the message being built */
	uint8_t *obuf;	      /**< output the socket did not take yet: [ohead, olen) */
	uint64_t ocap, ohead, olen;
	uint64_t out_allow;   /**< bytes allowed above max_output_bytes (a blob being sent) */
	struct zg_blob_send *blob_q; /**< sendBlobs streaming from files, oldest first */
	/** Called by zg_out_flush() with room in the output again (set while a blob streams). */
	void (*out_room)(struct zg_conn *c);
	uint64_t out_progress_ns; /**< when the socket last took output */
	unsigned paused;      /**< ZG_PAUSE_* bits: no input is framed while set */
	uint32_t armed;	      /**< the epoll interest set now */
	bool close_after_output; /**< ruok: close once the answer is out */
	bool corked;	      /**< messages are held for one send (zg_cork) */
	uint64_t inval_tid; /**< every transaction <= this is known to the client */
	bool registered;
	bool finishing; /**< a tpc_finish is in flight: the notifier stays away */
	bool read_only;

	/* under tmu */
	pthread_mutex_t tmu;
	struct zg_txn txn;

	/* the calls that wait for the cluster (I/O thread only) */
	struct zg_job q[ZG_JOBS];
	unsigned qhead, qlen;
	struct zg_call call;
	struct zap_client *zc; /**< opened at the first call: PREPARE and COMMIT share its session */
	void *zc_ctx;	       /**< its in-process transport (native_close) */

	atomic_bool dead;
};

struct zg_inbox_item;

/** One I/O thread: an epoll set, its connections, a wake-up eventfd. */
struct zg_io {
	struct zap_zeo_gateway *g;
	pthread_t thread;
	bool started;
	int ep, wake_fd;
	struct zg_conn *conns; /**< this thread's connections (io_next) */
	pthread_mutex_t mu;    /**< conns (insertions), resume list, inbox */
	struct zg_conn *resume;
	struct zg_inbox_item *inbox, *inbox_tail; /**< native answers (zeo_gateway_calls.c) */
	unsigned timer_conns;			  /**< connections with a call running */
	atomic_uint applied_waiters;		  /**< calls waiting for the store */
};

struct zap_zeo_gateway {
	struct zap_zeo_gateway_opts o;
	char *tcp_host, *unix_path, *storage_name;
	int tcp_fd, unix_fd;
	struct zg_io *io;
	unsigned n_io;
	atomic_uint next_io;
	pthread_t acceptor, notifier;
	bool acceptor_started, notifier_started;
	atomic_bool stop;
	pthread_mutex_t mu;
	struct zg_conn *conns;
	unsigned n_conns;
	atomic_uint_fast64_t next_conn_id;
	atomic_uint_fast64_t native_txn_seq;
	uint64_t native_txn_base;
	uint64_t start_unix_s;
	struct zg_lat lat[ZAP_ZEO_LAT_COUNT];
	struct {
		atomic_uint_fast64_t connections, connections_refused, handshakes_failed, messages,
		    bad_messages, loads, stores, commits, aborts, conflicts, read_conflicts,
		    invalidations_sent, resolved;
	} cnt;
};

/** CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t zg_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/** Sleep @p us microseconds (below one second). */
static inline void zg_sleep_us(unsigned us)
{
	struct timespec ts = {0, (long)us * 1000L};
	nanosleep(&ts, NULL);
}

/** A native call's error that another attempt may not meet (no answer, no quorum). */
static inline bool zg_transient(int rc)
{
	return rc == -ETIMEDOUT || rc == -EHOSTUNREACH || rc == -ECONNREFUSED || rc == -EAGAIN;
}

#define ZG_COUNT(g, f) atomic_fetch_add_explicit(&(g)->cnt.f, 1, memory_order_relaxed)

/** Argument @p i of a call, NULL when there are fewer. */
static inline const struct zeo_val *zg_arg(const struct zeo_val *args, uint32_t i)
{
	return i < args->seq.n ? &args->seq.items[i] : NULL;
}

/** A counter's value (relaxed). */
static inline uint64_t zg_cnt(const atomic_uint_fast64_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

/* ------------------------------------------------------------------ zeo_gateway_core.c */

/** Count @p ns in histogram @p which of @p g. */
void zg_lat_add(struct zap_zeo_gateway *g, enum zap_zeo_lat which, uint64_t ns);
/** The @p q quantile (0..1) of a histogram, in ns (its bucket's middle); 0 when empty. */
uint64_t zg_lat_quantile(const struct zg_lat *h, double q, uint64_t *count);

/** Close the connection from any thread (its I/O thread notices and cleans up). */
void zg_conn_kill(struct zg_conn *c, const char *why);
/**
 * Send @p len bytes (caller holds wmu), without blocking: what the socket
 * does not take now waits in the connection's pending output, sent as the
 * socket drains; beyond max_output_bytes (plus out_allow) the connection is
 * closed. @return false (connection killed) on failure.
 */
bool zg_send_all(struct zg_conn *c, const uint8_t *p, size_t len);
/** Send pending output (I/O thread, wmu held). */
void zg_out_flush(struct zg_conn *c);
/** Hold the messages sent from now on (wmu held) ... */
void zg_cork(struct zg_conn *c);
/** ... and send what was held in one go (wmu held). */
void zg_uncork(struct zg_conn *c);
/** Set the socket's epoll interest from c->paused and the pending output (wmu held). */
void zg_conn_arm(struct zg_conn *c);
/** Take a reference on a connection (zg_conn_unref() in zeo_gateway_calls.c drops it). */
void zg_conn_ref(struct zg_conn *c);
/** Clear @p bits of c->paused and have the I/O thread frame the input again (any thread). */
void zg_conn_resume(struct zg_conn *c, unsigned bits);
/** The calling thread's store reader (each gateway thread opens one; zg_thread_reader_open). */
struct zap_store_reader *zg_rd(void);
/** Open the calling thread's store reader. @return 0 or -errno. */
int zg_thread_reader_open(struct zap_zeo_gateway *g);
/** Close the calling thread's store reader. */
void zg_thread_reader_close(void);
/* messages (caller holds wmu) */
/** Start a message in c->out (length prefix reserved, encoding's start). */
void zg_frame_begin(struct zg_conn *c);
/** Finish and send the message in c->out; marks the connection dead on failure. */
void zg_frame_end(struct zg_conn *c);
/* replies (caller holds wmu) */
void zg_reply_begin(struct zg_conn *c, const uint8_t *msgid, size_t msgid_len, bool error);
/** Finish and send the message begun by zg_reply_begin(); marks the connection dead on failure. */
void zg_reply_end(struct zg_conn *c);
/** A None reply. */
void zg_reply_none(struct zg_conn *c, const uint8_t *msgid, size_t msgid_len);
/** A tid reply. */
void zg_reply_tid(struct zg_conn *c, const uint8_t *msgid, size_t msgid_len, uint64_t tid);
/** An error reply with a one-element tuple payload (message text). */
void zg_reply_error_text(struct zg_conn *c, const uint8_t *msgid, size_t msgid_len, const char *cls,
			 const char *text);
/** A ConflictError / ReadConflictError reply (dict payload; @p class_name may be NULL). */
void zg_reply_conflict(struct zg_conn *c, const uint8_t *msgid, size_t msgid_len, bool read,
		       uint64_t oid, bool has_oid, uint64_t committed, uint64_t base,
		       const char *class_name, const char *message);
/** A POSKeyError(oid) reply. */
void zg_reply_pos_key(struct zg_conn *c, const uint8_t *msgid, size_t msgid_len, uint64_t oid);
/** A ReadOnlyError reply. */
void zg_reply_read_only(struct zg_conn *c, const uint8_t *msgid, size_t msgid_len);
/** Send invalidations for transactions in (inval_tid, upto], skipping @p skip. Holds wmu. */
void zg_flush_invalidations(struct zg_conn *c, uint64_t upto, uint64_t skip);
/** zg_flush_invalidations() inside a read section the caller holds on c->rd. */
void zg_flush_in_section(struct zg_conn *c, uint64_t upto, uint64_t skip);

/* ------------------------------------------------------------------ zeo_gateway_read.c */

/**
 * A sync call answered from the store by the I/O thread (loadBefore,
 * loadSerial, getTid, history, sendBlob, getInvalidations, lastTransaction,
 * get_info, server_status). @return 1 answered; 0 not one of them; -1 bad
 * arguments (the caller closes the connection).
 */
int zg_read_call(struct zg_conn *c, const char *name, const uint8_t *msgid, size_t msgid_len,
		 const struct zeo_val *args);
/** The pickle of a stored record (a blob header stripped). */
void zg_record_pickle(const void *data, uint64_t len, const uint8_t **pickle,
		      uint64_t *pickle_len);
/** Drop the blobs being streamed (the connection is going away). */
void zg_blob_q_free(struct zg_conn *c);/** Extension items of a stored transaction (a pickled dict): how many, and the decoded dict. */
uint32_t zg_ext_items(struct zg_conn *c, const void *ext, uint32_t len,
		      const struct zeo_val **dict);
/** Write the extension items counted by zg_ext_items() into the dict being written. */
void zg_write_ext_items(struct zg_conn *c, const struct zeo_val *dict);
/** A tid as seconds since the epoch (ZODB's transaction time). */
double zg_tid_seconds(uint64_t tid);

/* ------------------------------------------------------------------ zeo_gateway_txn.c */

/** Parse a txn id argument. */
bool zg_txn_key_of(const struct zeo_val *v, struct zg_txn_key *k);
/** Whether @p a is the transaction id (@p v, @p big). */
static inline bool zg_txn_key_eq(const struct zg_txn_key *a, uint64_t v, bool big)
{
	return a->v == v && a->big == big;
}
/** Release the open transaction's memory (caller holds tmu). */
void zg_txn_clear(struct zg_txn *t);
/** Append @p len bytes to the transaction's data. @return false: over max_bytes (too_large
 * set) or no memory. */
bool zg_txn_put(struct zg_txn *t, const void *p, uint64_t len, uint64_t *off);
/** Append one item to the open transaction (tmu held). @return false on memory or size limits. */
bool zg_txn_add_item(struct zg_txn *t, uint64_t oid, uint64_t serial, const void *data,
		     uint32_t len, bool deleted, bool undo);
/*
 * The one-way calls that build the transaction (I/O thread, tmu held).
 * Each returns false when the connection must close (it has been killed).
 */
/** tpc_begin. */
bool zg_txn_begin(struct zg_conn *c, const struct zeo_val *args);
/** storea, deleteObject, checkCurrentSerialInTransaction (@p name tells which). */
bool zg_txn_store(struct zg_conn *c, const char *name, const struct zeo_val *args);
/** storeBlobStart, storeBlobChunk, storeBlobEnd (@p name tells which). */
bool zg_txn_blob(struct zg_conn *c, const char *name, const struct zeo_val *args);

/* ------------------------------------------------------------------ zeo_gateway_iter.c */

/** Close every iterator of a connection (frees what they hold). */
void zg_iters_free(struct zg_conn *c);
/** iterator_* calls (I/O thread). @return false when @p name is not one of them. */
bool zg_iter_call(struct zg_conn *c, const char *name, const uint8_t *msgid, size_t msgid_len,
		  const struct zeo_val *args);
/** restorea (I/O thread, tmu held). Returns false when the connection must close. */
bool zg_restore_add(struct zg_conn *c, const struct zeo_val *args);
/** iterator_gc (I/O thread, one-way). */
bool zg_iter_async(struct zg_conn *c, const struct zeo_val *args);
/** Vote (I/O thread, tmu held): base serials of restored records := current serials. */
void zg_restore_bases(struct zg_conn *c);

/* ------------------------------------------------------------------ zeo_gateway_undo.c */

/** undoLog / undoInfo (I/O thread). */
void zg_undo_log(struct zg_conn *c, const uint8_t *msgid, size_t msgid_len, int64_t first,
		 int64_t last, const struct zeo_val *spec);
/** undoa (I/O thread, tmu held). Returns false when the connection must close. */
bool zg_undo_add(struct zg_conn *c, const struct zeo_val *args);
/**
 * Vote (I/O thread, tmu held): turn the pending undos into items (once). On
 * failure a reply (UndoError) has been sent and the transaction cleared.
 * @return true to go on with the vote.
 */
bool zg_undo_prepare(struct zg_conn *c, const struct zg_job *j);

/* ------------------------------------------------------------------ zeo_gateway_resolve.c */

/**
 * Merge natively (zeo_resolve()) every stored object whose base serial is no
 * longer current in the local store and whose class zap merges; the merged
 * record replaces the client's and its oid joins t->resolved. @p t's items
 * must be sorted by oid, then arrival. Caller holds tmu.
 * @return how many records were replaced.
 */
uint32_t zg_resolve_native(struct zg_conn *c, struct zg_txn *t);

/* ------------------------------------------------------------------ zeo_gateway_calls.c */

/**
 * Queue a call that waits for the cluster (I/O thread); it starts at once
 * when none runs. When the queue fills, the connection's input pauses until
 * a call ends. Returns false when the queue is full.
 */
bool zg_queue(struct zg_conn *c, const struct zg_job *j);
/** Timers of the call running on @p c: resends, pauses, waits for the store (I/O thread). */
void zg_calls_tick(struct zg_conn *c, uint64_t now);
/** The native answers the node delivered to this I/O thread's connections. */
void zg_calls_inbox(struct zg_io *io);
/** The connection is gone (I/O thread): abort what it prepared, close its native client. */
void zg_calls_close(struct zg_conn *c);
/** Drop a reference on a connection; the last one frees it. */
void zg_conn_unref(struct zg_conn *c);

#endif /* ZAP_ZEO_GATEWAY_CORE_H */
