/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * libzapclient: a C client of a zap cluster over the native client protocol
 * (client_proto.h, docs/client.md), on an ordinary host's kernel UDP socket,
 * or on a transport the caller supplies (zap_client_open_transport()).
 *
 * A client talks to one node (any node serves any request). Each call sends
 * one request, possibly in several datagrams, and waits for its response.
 * When no complete response arrives within the timeout, it resends the SAME
 * request (same client id, same request id): the server's session table
 * applies a request once and answers a resend with the recorded result, so
 * a retried commit never commits twice.
 *
 * Identity: the client id is 64 random bits drawn at open (getrandom); the
 * request id starts at 1 and grows by one per call.
 *
 * Results: 0 or a negative value: an errno (-ETIMEDOUT, -ENOENT, ...) or one
 * of ZAP_CLIENT_E_* below; zap_client_strerror() names them all. Pointers a
 * call hands out (record bytes, history, changed oids) point into the
 * client's buffers and stay valid until the next call on the same client.
 *
 * Threading: a client belongs to one thread at a time; open one per thread.
 */
#ifndef ZAP_ZAPCLIENT_H
#define ZAP_ZAPCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "base/txn_text.h"
#include "client_proto.h"
#include "zap_api.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A stored object moved on since the base serial (ZODB ConflictError). */
#define ZAP_CLIENT_E_CONFLICT (-20001)
/** A readCurrent object moved on (ZODB ReadConflictError). */
#define ZAP_CLIENT_E_READ_CONFLICT (-20002)
/** The server's answer did not make sense for the request (counted, see stats). */
#define ZAP_CLIENT_E_PROTOCOL (-20003)

/** Defaults for zero fields of struct zap_client_opts. */
#define ZAP_CLIENT_DEFAULT_TIMEOUT_MS 200u
#define ZAP_CLIENT_DEFAULT_RETRIES 4u
#define ZAP_CLIENT_DEFAULT_MAX_RECORD_BYTES ZAP_CP_DEFAULT_MAX_RECORD_BYTES

/** Options; zero fields take the defaults (zap_client_set_timeout() can set 0 retries). */
struct zap_client_opts {
	uint32_t timeout_ms;	   /**< wait per attempt */
	uint32_t retries;	   /**< resends after the first attempt */
	uint32_t datagram_bytes;   /**< largest datagram sent (default 1400) */
	uint64_t max_record_bytes; /**< largest record accepted in a reply */
};

/** The object and serials of a conflict. */
struct zap_client_conflict {
	uint64_t oid;
	uint64_t serial;      /**< the committed serial now current */
	uint64_t base_serial; /**< the serial the client stored from (or read) */
};

/** One revision of an object, as load and load_before return it. */
struct zap_client_record {
	const void *data; /**< valid until the next call on the client */
	uint32_t len;
	uint64_t serial;
	uint64_t next_serial; /**< load_before: tid of the next revision, 0 = current */
};

/** A transaction for commit_oneshot and prepare. */
struct zap_client_txn {
	uint64_t txn_id; /**< prepare: required, not 0; oneshot: 0 = the client picks */
	struct zap_txn_text text; /**< user, description, extension */
	const struct zap_cp_store *stores;
	uint32_t n_stores;
	const struct zap_cp_read *reads; /**< readCurrent checks */
	uint32_t n_reads;
};

/** What changed since a tid. */
struct zap_client_changes {
	const uint64_t *oids; /**< valid until the next call on the client */
	uint32_t n_oids;
	uint64_t tid;  /**< the list covers commits up to this tid */
	int too_old;   /**< 1: the tid is no longer kept: invalidate everything */
	int truncated; /**< 1: more oids changed than asked for: invalidate all */
};

/** Counters. */
struct zap_client_stats {
	uint64_t requests;
	uint64_t retries; /**< resends of a request */
	uint64_t datagrams_sent;
	uint64_t datagrams_received;
	uint64_t dropped; /**< datagrams that failed to decode */
	uint64_t stale;	  /**< valid replies to an older request */
};

struct zap_client;

/**
 * Open a client of the node at @p host (a name or an IPv4 / IPv6 address)
 * and @p port, for cluster @p cluster_id, with default options.
 * @return 0; -EINVAL bad arguments; -ENOENT the host does not resolve;
 *   -ENOMEM; or the socket's negative errno.
 */
ZAP_API int zap_client_open(const char *host, uint16_t port, uint64_t cluster_id,
			    struct zap_client **out);

/** As zap_client_open(), with options (NULL: defaults). */
ZAP_API int zap_client_open_opts(const char *host, uint16_t port, uint64_t cluster_id,
				 const struct zap_client_opts *opts, struct zap_client **out);

/**
 * A datagram transport other than the kernel UDP socket: a DPDK port
 * (zap-bench's memif transport, bench/native_memif.c), a test double. The
 * client calls both functions on its own thread only; the transport frames
 * and addresses the datagrams itself (one datagram = one UDP payload).
 */
struct zap_client_transport {
	void *ctx; /**< passed back to both functions */
	/** Send one datagram. @return 0, or a negative errno that ends the attempt. */
	int (*send)(void *ctx, const void *dgram, size_t len);
	/**
	 * Receive one datagram into @p buf (@p cap bytes), waiting until
	 * @p deadline_ns (CLOCK_MONOTONIC) at most.
	 * @return its length (> 0); 0 if none came by the deadline; a negative errno.
	 */
	long (*recv)(void *ctx, void *buf, size_t cap, uint64_t deadline_ns);
};

/**
 * As zap_client_open_opts(), over the transport @p t (copied; its ctx stays
 * the caller's and must outlive the client).
 * @return 0; -EINVAL a NULL argument or function; -ENOMEM.
 */
ZAP_API int zap_client_open_transport(const struct zap_client_transport *t, uint64_t cluster_id,
				      const struct zap_client_opts *opts, struct zap_client **out);

/** Close a client (NULL is fine). */
ZAP_API void zap_client_close(struct zap_client *c);

/** Change the per-attempt timeout and the number of resends for later calls. */
ZAP_API void zap_client_set_timeout(struct zap_client *c, uint32_t timeout_ms, uint32_t retries);

/** This client's id (random, never 0). */
ZAP_API uint64_t zap_client_id(const struct zap_client *c);

/** Counters. */
ZAP_API void zap_client_get_stats(const struct zap_client *c, struct zap_client_stats *st);

/**
 * Load the current revision of @p oid.
 * @param sync  1: the node takes a read barrier first (linearizable read).
 * @return 0; -ENOENT no such object; or a common error (see below).
 *
 * Common errors of every call: -ETIMEDOUT no answer after the retries;
 * -ECONNREFUSED nothing listens at the address; -EHOSTUNREACH the node
 * answered UNAVAILABLE (no quorum) or the host is unreachable; -EMSGSIZE a
 * request or reply above the limits; -EINVAL a bad argument or the server
 * said BAD_REQUEST; -ESTALE the server says the request id is old;
 * ZAP_CLIENT_E_PROTOCOL a reply that does not fit the request.
 */
ZAP_API int zap_client_load(struct zap_client *c, uint64_t oid, int sync,
			    struct zap_client_record *out);

/** The revision of @p oid current before @p tid. @return 0; -ENOENT; common errors. */
ZAP_API int zap_client_load_before(struct zap_client *c, uint64_t oid, uint64_t tid,
				   struct zap_client_record *out);

/**
 * Up to @p max revisions of @p oid, newest first.
 * @return 0 (*@p entries valid until the next call); -ENOENT; common errors.
 */
ZAP_API int zap_client_history(struct zap_client *c, uint64_t oid, uint32_t max,
			       const struct zap_cp_hist **entries, uint32_t *n);

/** The node's last committed tid (@p sync: after a read barrier). @return 0; common errors. */
ZAP_API int zap_client_last_tid(struct zap_client *c, int sync, uint64_t *tid);

/**
 * Reserve @p count new oids (1..ZAP_CP_MAX_NEW_OIDS); the block is
 * [*@p first, *@p first + *@p n). @return 0; -EOVERFLOW oids exhausted;
 * common errors.
 */
ZAP_API int zap_client_new_oids(struct zap_client *c, uint32_t count, uint64_t *first, uint32_t *n);

/**
 * Commit @p t in one step (vote and finish in one log entry).
 * @param tid  out: the transaction's tid.
 * @param conflict  out (may be NULL): filled on a conflict.
 * @return 0; ZAP_CLIENT_E_CONFLICT; ZAP_CLIENT_E_READ_CONFLICT; -EBUSY too
 *   many transactions in flight; -ENOSPC / -EIO the store failed;
 *   -EEXIST the txn id is in use; common errors.
 */
ZAP_API int zap_client_commit_oneshot(struct zap_client *c, const struct zap_client_txn *t,
				      uint64_t *tid, struct zap_client_conflict *conflict);

/**
 * Vote: check @p t and lock its oids. Follow with zap_client_commit() or
 * zap_client_abort() with the same txn id.
 * @return as zap_client_commit_oneshot(); -EINVAL txn id 0.
 */
ZAP_API int zap_client_prepare(struct zap_client *c, const struct zap_client_txn *t,
			       struct zap_client_conflict *conflict);

/**
 * Finish a prepared transaction. @return 0 (*@p tid set); -ESRCH no such
 * prepared transaction; -EINPROGRESS its vote is still waiting;
 * -ECANCELED it was aborted (lease); common errors.
 */
ZAP_API int zap_client_commit(struct zap_client *c, uint64_t txn_id, uint64_t *tid);

/**
 * zap_client_commit() asking for tid @p want_tid (copying history: ZODB's
 * restore). The transaction gets exactly @p want_tid when it is later than
 * every tid the cluster has assigned and not later than the proposing node's
 * clock; otherwise a tid as zap_client_commit() gives (*@p tid tells which).
 * @p want_tid 0 is zap_client_commit().
 */
ZAP_API int zap_client_commit_at(struct zap_client *c, uint64_t txn_id, uint64_t want_tid,
				 uint64_t *tid);

/** Abort a prepared transaction. @return 0; -ESRCH; common errors. */
ZAP_API int zap_client_abort(struct zap_client *c, uint64_t txn_id);

/**
 * Oids changed by commits after @p tid, at most @p max of them.
 * @return 0, @p out filled (too_old / truncated: invalidate everything);
 *   common errors.
 */
ZAP_API int zap_client_changes_since(struct zap_client *c, uint64_t tid, uint32_t max,
				     struct zap_client_changes *out);

/**
 * Pack the database at @p pack_tid on every node: per object, the revision
 * current at the effective pack tid and the newer ones are kept, older ones
 * are dropped (an object whose current revision there is a deletion goes
 * too). The effective pack tid is @p pack_tid capped at the last committed
 * tid. Objects unreachable from the root are not collected.
 * @param packed_tid  out (may be NULL): the effective pack tid.
 * @return 0 once the pack was applied; -EINVAL @p pack_tid 0; -EIO the
 *   store failed; common errors.
 */
ZAP_API int zap_client_pack(struct zap_client *c, uint64_t pack_tid, uint64_t *packed_tid);

/** Read barrier: returns once the node has applied what was chosen. @return 0; common errors. */
ZAP_API int zap_client_sync(struct zap_client *c, uint64_t *tid);

/** Text for a result of this library (errno values and ZAP_CLIENT_E_*). */
ZAP_API const char *zap_client_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* ZAP_ZAPCLIENT_H */
