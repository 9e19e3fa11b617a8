/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap node core: the state one running node shares between its main
 * thread (start-up, shutdown: node.c), its pipeline lcores (node_stages.c,
 * node_snap.c, node_bell.c) and its client service thread (node_client*.c),
 * and the interfaces of those files to each other. The functions of the core
 * itself (the stop flag, the buffer pool, the latency histograms) are in
 * node_core.c, the bottom layer: it calls none of the files above it.
 *
 * Ownership: every field below the "stage state" marks belongs to exactly one
 * stage; a stage runs on one lcore, so nothing there needs a lock. Stages
 * talk only through the rte_rings listed here. The counters are written by
 * their owner and read racily (relaxed) by the final report.
 */
#ifndef ZAP_NODE_CORE_H
#define ZAP_NODE_CORE_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "bell.h"
#include "config.h"
#include "polling.h"
#include "zeo/zeo_gateway.h"
#include "port.h"
#include "log/log.h"
#include "paxos/paxos.h"
#include "store/blobs.h"
#include "store/store.h"
#include "txn/txn.h"
#include "wire/wire.h"

/** Packets / items moved per burst. */
#define NODE_BURST 32u
/** Flushes a frame the port did not take is offered again before it is dropped. */
#define NODE_TX_TRIES 256u
/** Slots of every ring between stages (a power of two). */
#define NODE_RING_SLOTS 4096u
/** Buffers for commands, log records and chosen values in flight. */
#define NODE_BUFS 511u
/** Bytes of a buffer beyond the engine's batch_bytes (value framing). */
#define NODE_BUF_SLACK 4096u
/** Log indexes per slot: index = slot * span + command + 1 (as zap-sim does). */
#define NODE_SLOT_INDEX_SPAN 65536ull
/** LEASE_EXPIRE proposals per lease (the leader proposes every lease / this). */
#define NODE_LEASE_TICKS 4u
/** Room for an encoded LEASE_EXPIRE entry. */
#define NODE_LEASE_ENTRY_BYTES 128u
/** Store reader threads of the process (the ZEO gateway's pool grows up to 192 workers). */
#define ZAP_NODE_THREAD_READERS 256u
/** Open files zapd asks for (the ZEO gateway's connections, up to zeo.max_connections). */
#define ZAP_NODE_NOFILE 65536u
/** The io stage runs the memif link watch this often. */
#define NODE_LINK_CHECK_NS (100ull * 1000 * 1000)

/** What a struct node_buf carries. */
enum node_buf_kind {
	NODE_BUF_COMMAND = 1, /**< client thread -> paxos: an encoded log entry */
	NODE_BUF_PERSIST,     /**< paxos -> log: one record to append */
	NODE_BUF_CHOSEN,      /**< paxos -> apply: one chosen slot value */
	NODE_BUF_CHECKPOINT,  /**< paxos -> log: an image to write (slot, ballot = promise);
				 token 1: a peer's image that replaces this node's state, the
				 node restarts from it once it is written */
};

/**
 * A variable-size item handed between stages by pointer. Taken from the
 * node's buffer pool when it fits (the normal case), else from rte_malloc
 * (a value larger than batch_bytes + slack: rare, and counted).
 */
struct node_buf {
	uint8_t kind;	  /**< enum node_buf_kind */
	uint8_t rec_type; /**< PERSIST: ZAP_LOG_* */
	uint8_t heap;	  /**< 1: rte_malloc'ed, not from the pool */
	uint8_t pad;
	uint32_t len;
	uint64_t slot;
	uint64_t ballot;
	uint64_t token; /**< PERSIST: completion token */
	uint8_t data[];
};

/** A decoded replication message and the frame its payload points into (io -> paxos). */
struct node_rx {
	struct rte_mbuf *m;
	struct zap_paxos_msg msg;
};

/** One result for the client thread (apply -> client). */
struct node_result {
	uint64_t client_id; /**< 0 with entry_type NOP: a read barrier of this node */
	uint64_t seq;	    /**< request id, or the barrier id */
	uint64_t txn_id;
	uint64_t tid;
	uint64_t oid;
	uint64_t serial;
	uint64_t base_serial;
	uint64_t first_oid;
	int32_t store_errno;
	uint32_t oid_count;
	uint16_t status; /**< enum zap_txn_status */
	uint8_t entry_type;
	uint8_t duplicate;
	uint32_t pad;
	uint64_t applied_ns; /**< wall clock when the apply stage answered */
};

/** Counters of the node's own code (modules keep theirs). */
struct node_counters {
	/* io */
	uint64_t rx_frames, rx_multiseg_drops, rx_decode_drops, rx_ring_full_drops;
	uint64_t arp_replies, arp_drops, tx_frames, tx_full_drops, relinks;
	/* paxos */
	uint64_t sends, send_no_route_drops, send_no_mbuf_drops, send_encode_drops,
	    send_ring_full_drops;
	uint64_t lease_proposals;
	uint64_t submits, submit_busy_drops, persist_stalls, chosen_stalls, snapshots_needed;
	uint64_t snap_fetches, snap_requests, snap_chunks_rx, snap_chunk_drops, snap_chunks_tx,
	    snapshots_sent, snap_req_drops, snap_refused;
	uint64_t blobs_fetched, blob_fetch_retries, blob_chunk_drops, blob_chunks_tx, blob_req_drops;
	uint64_t settings_drops;      /**< replication messages of a peer not (yet) seen agreeing */
	uint64_t settings_mismatches; /**< SETTINGS messages that differ from this node's */
	uint64_t big_bufs;
	/* log */
	uint64_t log_appends, log_syncs, log_errors;
	/* apply */
	uint64_t applied_slots, applied_commands, apply_errors, result_ring_full_drops;
	uint64_t checkpoints, checkpoint_errors, snapshots_installed, snapshot_install_errors;
	uint64_t checkpoint_ns;	     /**< apply stage: time spent taking checkpoint images */
	uint64_t checkpoints_deferred; /**< applied slots a due checkpoint waited for an upload */
	uint64_t snap_images_to_file;  /**< served images whose memory went once their file was written */
	uint64_t checkpoint_file_ns; /**< log stage: time spent writing checkpoint files */
	/* log (checkpoint files) */
	uint64_t checkpoint_files, checkpoint_file_errors, checkpoint_file_skips, segments_dropped;
	/* client thread */
	uint64_t cl_datagrams, cl_bad_datagrams, cl_requests, cl_bad_requests, cl_replies, cl_busy,
	    cl_expired, cl_unmatched_results, cl_resubmits, cl_large, cl_large_resends;
	/* client thread, DPDK client port (node_client_port.c) */
	uint64_t cp_rx_frames, cp_rx_multiseg_drops, cp_rx_drops, cp_arp_replies, cp_arp_drops,
	    cp_tx_frames, cp_tx_drops, cp_relinks;
};

struct node_snap;
struct node_cport;
struct zap_wire_udp_addr;

/*
 * Per-stage latency of this node's own client writes (docs/operations.md,
 * "Where the time goes"): log-linear histograms, NODE_LAT_SUB buckets per
 * power of two (at most 12.5 % apart), each written by one stage only and
 * read by the final report.
 */
#define NODE_LAT_SUB 8u
#define NODE_LAT_BUCKETS (64u * NODE_LAT_SUB)

enum node_lat_stage {
	NODE_LAT_TO_PAXOS = 0, /**< client thread submit -> paxos stage takes it (rings) */
	NODE_LAT_TO_CHOSEN,    /**< submit -> its slot reaches the apply stage (consensus, log) */
	NODE_LAT_APPLY,	       /**< apply stage: chosen value -> command applied to the store */
	NODE_LAT_FSYNC,	       /**< log stage: one group commit's fdatasync */
	NODE_LAT_REPLY,	       /**< apply stage answered -> the client service sent the reply */
	NODE_LAT_COUNT
};

struct node_lat {
	uint64_t n;
	uint64_t b[NODE_LAT_BUCKETS];
};

/** Count @p ns in @p h (node_core.c). */
void zap_node_lat_add(struct node_lat *h, uint64_t ns);
/** The @p q quantile (0..1) of @p h in ns (lower bound of its bucket); 0 when empty. */
uint64_t zap_node_lat_quantile(const struct node_lat *h, double q);

/** One pipeline lcore: which stages its loop runs. */
struct node_lcore {
	struct zap_node *n;
	unsigned lcore_id;
	uint32_t roles; /**< ZAP_LCORE_ROLE_* of the pipeline */
	enum zap_polling policy;
	struct zap_poll poll;
	struct zap_bell bell; /**< rung by the producers of this loop's rings (node_bell.c) */
};

struct zap_node {
	const struct zap_config *cfg;
	const struct zap_node_config *self;
	uint16_t id;

	/* ports: the replication ports, started */
	struct zap_port ports[ZAP_CONFIG_MAX_PORTS];
	unsigned n_ports;
	struct zap_wire_arp_addr arp[2];
	unsigned n_arp;

	/* rings and pools */
	struct rte_ring *rx_ring;			/**< io -> paxos: struct node_rx */
	struct rte_ring *tx_ring[ZAP_CONFIG_MAX_PORTS]; /**< paxos -> io: mbufs, per port */
	struct rte_ring *submit_ring;			/**< client -> paxos: node_buf * */
	struct rte_ring *persist_ring;			/**< paxos -> log: node_buf * */
	struct rte_ring *token_ring;			/**< log -> paxos: uint64_t */
	struct rte_ring *chosen_ring;			/**< paxos -> apply: node_buf * */
	struct rte_ring *result_ring;			/**< apply -> client: node_result */
	struct rte_mempool *buf_pool;
	uint32_t buf_data_bytes; /**< data capacity of a pooled buffer */

	/* state owned by stages */
	struct zap_wire_ctx *io_wire;	 /**< io stage */
	struct zap_wire_ctx *paxos_wire; /**< paxos stage */
	struct zap_paxos *px;		 /**< paxos stage */
	struct zap_log *log;		 /**< log stage (main thread at start and stop) */
	struct zap_store *store;	 /**< writer: apply stage; readers: client thread */
	struct zap_txn_sm *sm;		 /**< apply stage */
	struct zap_blobs *blobs;	 /**< blob area: written by the apply stage */
	bool blob_sweep_due;		 /**< apply stage: a PACK ran, sweep the blob area */
	struct node_blob_fetch *blob_fetch; /**< missing blob files being fetched (paxos stage) */
	struct node_settings *settings;	    /**< cluster-wide settings check (paxos stage) */

	/* io stage */
	uint64_t next_link_check_ns;
	/* frames the port did not take (its peer's ring was full), sent first
	 * at the next flush; dropped after NODE_TX_TRIES flushes without room */
	struct rte_mbuf *tx_pend[ZAP_CONFIG_MAX_PORTS][NODE_BURST];
	unsigned tx_pend_n[ZAP_CONFIG_MAX_PORTS];
	unsigned tx_pend_tries[ZAP_CONFIG_MAX_PORTS];
	/* paxos stage */
	struct zap_paxos_out out; /**< an output that could not be placed yet */
	bool out_held;
	struct node_rx rx_hold[NODE_BURST];
	unsigned rx_hold_n, rx_hold_pos;
	struct node_buf *cmd_hold[NODE_BURST];
	unsigned cmd_hold_n, cmd_hold_pos;
	uint16_t leader;
	uint64_t next_lease_ns; /**< when the leader next proposes LEASE_EXPIRE */
	/* log stage */
	struct zap_log_group log_group; /**< appended, not yet synced */
	uint64_t log_appended_token; /**< highest token appended */
	uint64_t log_synced_token;   /**< highest token durable */
	uint64_t log_reported_token; /**< highest token handed to the paxos stage */
	/* apply stage */
	uint64_t applied_slot;
	/* checkpoints and snapshot transfer (node_snap.c; paxos, log and apply stages) */
	struct node_snap *snap;

	/* lcores */
	struct node_lcore lcores[ZAP_CONFIG_LCORE_MAX + 1];
	unsigned n_lcores;

	/* doorbells (node_bell.c): the bell of the lcore running each stage */
	struct zap_bell *bell_io, *bell_paxos, *bell_log, *bell_apply;
	struct zap_bell client_bell;			 /**< the client thread's (eventfd) */
	struct zap_bell zeo_bell; /**< the ZEO gateway's notifier: the apply stage published */
	struct zap_bell peer_bell[ZAP_CONFIG_MAX_PORTS]; /**< memif peer's I/O bell, by port */
	char own_bell_path[ZAP_CONFIG_MAX_PORTS][256]; /**< "" or this node's bell file, by port */

	/* client service */
	struct node_cport *cport; /**< the DPDK client port, or NULL (node_client_port.c) */
	pthread_t client_thread;
	bool client_started;
	/* the ZEO gateway's counters when it stopped (for the final report) */
	bool zeo_ran;
	struct zap_zeo_stats zeo_stats;
	int client_fd;

	struct node_counters cnt;
	struct node_lat lat[NODE_LAT_COUNT];
	uint64_t start_wall_ns; /**< entries proposed before this (replayed) are not timed */
};

/** Set by SIGINT / SIGTERM or a stage that cannot go on; every loop checks it (node_core.c). */
extern volatile sig_atomic_t zap_node_stop;
/** Set with zap_node_stop: the process runs zapd again once stopped (zap_node_reexec). */
extern volatile sig_atomic_t zap_node_restart;

/* node_stages.c */
int zap_node_lcore_loop(void *arg);
void zap_node_log_stage(struct zap_node *n, uint64_t now_ns, bool *work);
/** Final log drain at shutdown (main thread, after the lcores stopped). */
int zap_node_log_drain(struct zap_node *n);
/*
 * node_snap.c, called by the stages (the comment of each says which). The
 * paxos stage's calls send nothing themselves: they queue their SNAP_REQ /
 * SNAP_CHUNK messages, and the paxos stage sends them after each call
 * (node_snap_out_next).
 */
/** paxos: the engine said SNAPSHOT_NEEDED for @p slot: fetch an image from @p from. */
void node_snap_fetch_start(struct zap_node *n, uint64_t now, uint16_t from, uint64_t slot);
/** paxos: a SNAP_REQ or SNAP_CHUNK frame. */
void node_snap_rx(struct zap_node *n, uint64_t now, const struct zap_paxos_msg *m);
/**
 * paxos: the next image taken or installed by the apply stage (failed installs
 * are dropped on the way). @return 1 after one the engine heard of (drain its
 * outputs, then call again), 0 when none waits.
 */
int node_snap_from_apply(struct zap_node *n, uint64_t now, bool *work);
/** paxos: resend or give up a fetch. */
void node_snap_tick(struct zap_node *n, uint64_t now);
/**
 * paxos: the next message the last call queued, or NULL when none is left
 * (the queue is then empty again). A SNAP_CHUNK's payload points into the
 * image being served: send it before the next node_snap_from_apply().
 */
const struct zap_paxos_msg *node_snap_out_next(struct zap_node *n);
/** log: write a checkpoint image and drop the segments it covers. */
int node_snap_log_checkpoint(struct zap_node *n, struct node_buf *b);
/** log: finish a checkpoint file the writer thread has written (promise, sync, segment drops). */
int node_snap_log_done(struct zap_node *n);
/** apply: install a fetched image into the empty store and state machine. */
void node_snap_install(struct zap_node *n, bool *work);
/**
 * apply: after a slot of @p value_bytes was applied, take a checkpoint when
 * log.checkpoint_slots slots, log.checkpoint_bytes bytes or
 * log.checkpoint_seconds seconds were applied since the last.
 */
void node_snap_checkpoint(struct zap_node *n, uint64_t value_bytes);

/** Checkpoint and snapshot-transfer state (log.checkpoint_*); main thread. */
int zap_node_snap_init(struct zap_node *n);
void zap_node_snap_free(struct zap_node *n);
/** Load the checkpoint file of the log dir, if any, into the empty node; main thread. */
int zap_node_snap_restore(struct zap_node *n);

/*
 * node_bell.c: doorbells. Init and fini on the main thread (after the lcores
 * are planned, before they start); retry from the io stage.
 */
/** The lcores' bells, the client thread's and the memif peers'. @return 0 or -errno. */
/* node_blobs.c: the node's blob area (<log_dir>/blobs) */
/** Main thread, before the state machine: open the blob area. */
int zap_node_blobs_open(struct zap_node *n);
/** The directory of the blob area (the ZEO gateway reads files there). */
const char *zap_node_blobs_dir(const struct zap_node *n);
/** Apply stage, after a PACK: remove blob files no record references. */
void zap_node_blobs_sweep(struct zap_node *n);
/** The blob area's line of the final report. */
void zap_node_blobs_report(const struct zap_node *n, FILE *f);
void zap_node_blobs_close(struct zap_node *n);
/** After the wire contexts: the fetch of missing blob files. */
int zap_node_blobs_fetch_init(struct zap_node *n);
void zap_node_blobs_fetch_free(struct zap_node *n);
/** Apply stage or main thread: list the referenced blob files not held, to fetch. */
void zap_node_blobs_find_missing(struct zap_node *n);
/** Paxos stage: drive the fetch (ask, ask again, next peer). */
void zap_node_blobs_tick(struct zap_node *n, uint64_t now);
/** Paxos stage: a BLOB_REQ (served from the blob area) or BLOB_CHUNK. */
void zap_node_blobs_rx(struct zap_node *n, uint64_t now, const struct zap_paxos_msg *m);
/** Paxos stage: the next message the last call queued, NULL when none. */
const struct zap_paxos_msg *zap_node_blobs_out_next(struct zap_node *n);

/* node_settings.c: the settings every node must share, checked with the peers */
int zap_node_settings_init(struct zap_node *n);
void zap_node_settings_free(struct zap_node *n);
/** Paxos stage: ask the peers not heard from yet. */
void zap_node_settings_tick(struct zap_node *n, uint64_t now);
/** Paxos stage: a SETTINGS message. */
void zap_node_settings_rx(struct zap_node *n, const struct zap_paxos_msg *m);
/** Paxos stage: whether replication messages of node @p from are taken. */
bool zap_node_settings_allow(struct zap_node *n, uint16_t from);
const struct zap_paxos_msg *zap_node_settings_out_next(struct zap_node *n);

int zap_node_bells_init(struct zap_node *n);
/** io stage, every link check: open peer bells not open yet; reopen after a relink. */
void zap_node_bells_retry(struct zap_node *n, unsigned port_index, bool relinked);
void zap_node_bells_fini(struct zap_node *n);
/** One report line: sleeps, sleeps a ring ended, rings sent to peers. */
void zap_node_bells_report(const struct zap_node *n, FILE *f);

/**
 * Ring @p to for work a stage on the lcore of @p from handed over; nothing
 * when both stages run on one lcore (a running loop is not asleep), so the
 * default one-lcore layout pays no fence per message.
 */
static inline void node_ring(struct zap_bell *to, const struct zap_bell *from)
{
	if (to != from)
		zap_bell_ring(to);
}

/* node_core.c: the buffer pool (any stage and the client thread). */
struct node_buf *zap_node_buf_get(struct zap_node *n, uint64_t len);
void zap_node_buf_put(struct zap_node *n, struct node_buf *b);

/* node_client.c */
int zap_node_client_start(struct zap_node *n);
void zap_node_client_stop(struct zap_node *n);

/*
 * node_client_port.c: the DPDK client port. Open, stop, close and report run
 * on the main thread (open from zap_node_client_start, before the client
 * thread starts); thread_init, poll, send, link_check and thread_exit on the
 * client thread only, which alone owns the port's queues.
 */
/** A datagram received on the client port, from @p from (valid during the call). */
typedef void (*node_cport_rx_fn)(void *ctx, const uint8_t *dgram, size_t len,
				 const struct zap_wire_udp_addr *from);
/** Start the node's `role: client` port, if it has one (n->cport set). @return 0 or -errno. */
int zap_node_cport_open(struct zap_node *n);
/** Register the client thread with EAL (an lcore id: mempool caches). */
void zap_node_cport_thread_init(struct zap_node *n);
void zap_node_cport_thread_exit(struct zap_node *n);
/** Receive a burst: answer ARP, drop (counted) bad frames, hand datagrams to @p fn. */
unsigned zap_node_cport_poll(struct zap_node *n, node_cport_rx_fn fn, void *ctx);
/** Send one datagram to @p to (counted on failure, never blocks). */
void zap_node_cport_send(struct zap_node *n, const struct zap_wire_udp_addr *to,
			 const void *dgram, size_t len);
/** The memif-client relink rule (port.h), every 100 ms. */
void zap_node_cport_link_check(struct zap_node *n, uint64_t now_ns);
/** Stop the port (after the client thread was joined); n->cport stays for the report. */
void zap_node_cport_stop(struct zap_node *n);
/** Close the port and free its pool (full cleanup); n->cport becomes NULL. */
void zap_node_cport_close(struct zap_node *n);
/** One report line of the port's counters (nothing without a port). */
void zap_node_cport_report(const struct zap_node *n, FILE *f);

#endif /* ZAP_NODE_CORE_H */
