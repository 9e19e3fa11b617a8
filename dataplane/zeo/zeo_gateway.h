/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap ZEO gateway: the ZEO 5 server protocol (docs/zeo.md) on a node's `zeo`
 * TCP address (and `zeo_unix` path), so stock ZODB applications use a zap
 * cluster through ZEO.ClientStorage unchanged.
 *
 * Reads (loadBefore, loadSerial, history, getInvalidations, ...) come from
 * the node's shared-memory store through the serving thread's store reader,
 * without locks. Writes (new_oids, vote, tpc_finish, tpc_abort) and read
 * barriers (register, ping) go to the node's native client service through
 * libzapclient's non-blocking interface over an in-process transport the
 * node gives, and from there on the pipeline's submit ring: exactly-once retries, conflict checks and the
 * cluster-wide oid allocator are the native protocol's. Invalidations are
 * pushed from the store's transaction ring, per connection in tid order.
 *
 * Threads: one accept thread, one notifier thread (invalidations) and a few
 * I/O threads (epoll: every socket, framing, decoding, the reads, building
 * transactions, and the calls that wait for the cluster as state machines
 * whose answers come back through the thread's eventfd). No thread belongs
 * to a connection, no call blocks a thread.
 */
#ifndef ZAP_ZEO_GATEWAY_H
#define ZAP_ZEO_GATEWAY_H

#include <stdint.h>

#include "client/zapclient.h"
#include "store/store.h"
#include "zeo_codec.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Connections served at once when the options say 0 (YAML zeo.max_connections). */
#define ZAP_ZEO_DEFAULT_MAX_CONNS 4096u
/** Output one connection may leave unread when the options say 0 (zeo.max_output_bytes). */
#define ZAP_ZEO_DEFAULT_MAX_OUTPUT_BYTES (16ull << 20)
/** Largest ZEO message accepted when the options say 0 (zeo.max_message_bytes; bytes after the length prefix). */
#define ZAP_ZEO_MAX_FRAME_BYTES (64u << 20)

struct zap_zeo_gateway_opts {
	const char *tcp_host; /**< TCP listener address, NULL: none */
	uint16_t tcp_port;
	const char *unix_path;	  /**< unix socket path, NULL: none */
	enum zeo_enc enc;	  /**< announced encoding; 0: pickle (Z5) */
	const char *storage_name; /**< storage served; NULL: "1" */
	struct zap_store *store;  /**< the node's store (read side only) */
	/**
	 * How the gateway reaches the node's native client service: a
	 * transport per connection from native_open (in-process, no socket)
	 * whose answers the node hands to @p deliver (with @p dctx) on its own
	 * thread; given back with native_close after zap_client_close(), once
	 * no delivery runs.
	 */
	int (*native_open)(void *arg, void (*deliver)(void *dctx, const void *dgram, size_t len),
			   void *dctx, struct zap_client_transport *t);
	void (*native_close)(void *arg, void *ctx);
	void *native_arg;
	/**
	 * Block until the store's last tid may have moved past @p seen (the
	 * node's apply stage rings a doorbell), at most @p timeout_ns; the
	 * notifier waits here between commits. NULL: it polls.
	 */
	void (*store_wait)(void *arg, uint64_t seen, uint64_t timeout_ns);
	void *store_wait_arg;
	uint64_t cluster_id;
	uint16_t node_id; /**< for messages */
	uint32_t io_threads;	   /**< epoll I/O threads; 0: from the CPU count */
	uint32_t max_connections;  /**< 0: ZAP_ZEO_DEFAULT_MAX_CONNS */
	uint64_t max_output_bytes; /**< 0: ZAP_ZEO_DEFAULT_MAX_OUTPUT_BYTES */
	uint64_t max_txn_bytes;	   /**< records and blobs of one transaction (txn.max_bytes); 0: 2 GiB */
	/** The node's blob area (store/blobs.h): sendBlob streams the files of
	 *  blob references from it. NULL: only blobs kept inline are served. */
	const char *blob_dir;
	/** Largest message a client may send (zeo.max_message_bytes); 0: ZAP_ZEO_MAX_FRAME_BYTES. */
	uint64_t max_message_bytes;
};

struct zap_zeo_gateway;

/** The gateway's latency histograms (zap_zeo_stats.lat_*): what a ZEO commit's time is spent on. */
enum zap_zeo_lat {
	ZAP_ZEO_LAT_VOTE,    /**< vote: the call reaching the I/O thread to its reply */
	ZAP_ZEO_LAT_PREPARE, /**< the PREPARE round: request sent to its answer back */
	ZAP_ZEO_LAT_FINISH,  /**< tpc_finish: the call to its reply */
	ZAP_ZEO_LAT_COMMIT,  /**< the COMMIT round: request sent to its answer back */
	ZAP_ZEO_LAT_APPLIED, /**< after COMMIT's answer: until the local store has the tid */
	ZAP_ZEO_LAT_COUNT
};

/** Names of enum zap_zeo_lat, for reports. */
extern const char *const zap_zeo_lat_names[ZAP_ZEO_LAT_COUNT];

/** Gateway counters. */
struct zap_zeo_stats {
	uint64_t connections, connections_refused, handshakes_failed, messages, bad_messages;
	uint64_t loads, stores, commits, aborts, conflicts, read_conflicts, invalidations_sent;
	uint64_t conflicts_resolved; /**< conflicts merged natively at vote */
	/* per enum zap_zeo_lat: count, p50, p99 (ns) */
	uint64_t lat_n[ZAP_ZEO_LAT_COUNT], lat_p50_ns[ZAP_ZEO_LAT_COUNT],
	    lat_p99_ns[ZAP_ZEO_LAT_COUNT];
};

/**
 * Bind the listeners and start the gateway's threads.
 * @return 0; -EINVAL bad options; -errno when a socket cannot be bound.
 */
int zap_zeo_gateway_start(const struct zap_zeo_gateway_opts *o, struct zap_zeo_gateway **out);

/** Close the listeners and every connection, join the threads, free (NULL is fine). */
void zap_zeo_gateway_stop(struct zap_zeo_gateway *g);

/** Counters (racy, relaxed reads). */
void zap_zeo_gateway_stats(const struct zap_zeo_gateway *g, struct zap_zeo_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* ZAP_ZEO_GATEWAY_H */
