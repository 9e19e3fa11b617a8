/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap node: start-up and shutdown of `zapd --config FILE --node ID`.
 *
 * Start-up, on the main thread, in this order: EAL and the node's ports
 * (eal.c, port.c; the replication ports here, the DPDK client port by
 * the client service); two wire contexts over the config's replication
 * endpoints (one for the io stage, one for the paxos stage: a context
 * belongs to one thread); a fresh store and transaction state machine; the
 * Paxos engine, with datagram_bytes = the wire's largest payload; the log in
 * the checkpoint and snapshot-transfer state (log.checkpoint_*); the
 * log dir's checkpoint file, if any, loaded into the store and state machine;
 * the log in the node's log_dir, whose every record is fed to
 * zap_paxos_restore(); then zap_paxos_start(now, checkpoint slot or 0), so
 * the engine emits every chosen value after it again and the apply stage
 * rebuilds the store from them (as zap-sim does); rings and the buffer pool;
 * the client service thread; the pipeline lcores.
 * A pipeline lcore that is EAL's main lcore runs its loop on this thread.
 *
 * Shutdown (SIGINT / SIGTERM set zap_node_stop): the lcore loops return;
 * the client thread is joined; the log stage drains what paxos handed it and
 * syncs (the log is durable from here on); ports stop; a pause lets memif's
 * interrupt thread settle; then _exit() (or, with ZAPD_FULL_CLEANUP=1, the
 * ports are closed and rte_eal_cleanup() runs: see teardown()).
 *
 * Threading: everything here runs on the main thread, before the lcores
 * start or after they stopped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include "node_core.h"

#include "eal.h"
#include "node.h"
#include "zeo/zodb_record.h"

static void on_signal(int sig)
{
	(void)sig;
	zap_node_stop = 1;
}

/* ------------------------------------------------------------------ start-up */

/** Data bytes of a pooled buffer at most (NODE_BUFS of them are reserved). */
#define NODE_POOL_DATA_MAX_BYTES (64u * 1024)

static int mkdir_p(const char *path)
{
	char tmp[4096];
	if (strlen(path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	strcpy(tmp, path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int restore_record(uint8_t type, uint64_t slot, uint64_t ballot, const void *payload,
			  uint64_t len, void *ctx)
{
	struct zap_node *n = ctx;
	if (type != ZAP_LOG_PROMISE && type != ZAP_LOG_ACCEPT && type != ZAP_LOG_CHOSEN)
		return 0; /* records of later modules */
	return zap_paxos_restore(n->px, type, slot, ballot, payload, len);
}

static int make_wire(struct zap_node *n, struct zap_wire_ctx **out)
{
	const struct zap_config *c = n->cfg;
	struct zap_wire_node nodes[ZAP_CONFIG_MAX_NODES];
	for (unsigned i = 0; i < c->n_nodes; i++) {
		nodes[i].id = c->nodes[i].id;
		memcpy(nodes[i].mac, c->nodes[i].replication.mac, 6);
		nodes[i].ipv4_be = c->nodes[i].replication.ipv4_be;
		nodes[i].udp_port = c->nodes[i].replication.udp_port;
	}
	struct zap_wire_params wp = {
	    .cluster_id = c->cluster.id,
	    .secret = c->cluster.secret,
	    .secret_len = c->cluster.secret_len,
	    .self = n->id,
	    .nodes = nodes,
	    .n_nodes = c->n_nodes,
	};
	return zap_wire_ctx_create(&wp, out);
}

static int make_state(struct zap_node *n)
{
	const struct zap_config *c = n->cfg;
	struct zap_store_params sp = {
	    .size_bytes = c->store.size_bytes,
	    .max_record_bytes = c->store.max_record_bytes,
	    /* the ZEO gateway's threads (I/O, notifier, a worker pool that grows
	     * with the calls waiting for the cluster) each read the store */
	    .max_thread_readers = ZAP_NODE_THREAD_READERS,
	    .hugetlbfs_dir =
		c->store.backing == ZAP_STORE_BACKING_HUGETLBFS ? c->store.hugetlbfs_dir : NULL,
	    /* every node of a cluster must use the same (snapshots carry the ring) */
	    .txn_ring_slots = c->store.txn_ring_slots,
	};
	int rc = zap_store_create(&sp, &n->store);
	if (rc == 0)
		rc = zap_node_blobs_open(n);
	if (rc != 0)
		return rc;
	struct zap_txn_params tp = {
	    .lease_ns = (uint64_t)c->txn.lease_ms * 1000000ull,
	    .max_sessions = c->txn.max_sessions,
	    .max_record_bytes = c->store.max_record_bytes,
	    .max_large_bytes = c->txn.max_bytes,
	    .max_txn_objects = c->txn.max_objects,
	    .max_text_bytes = c->txn.max_text_bytes,
	    .refs = zodb_record_refs, /* PACK collects objects unreachable from oid 0 */
	    /* a blob goes to the blob area; the store keeps its hash */
	    .keep = zodb_record_keep,
	    .keep_ctx = n->blobs,
	};
	return zap_txn_sm_create(&tp, n->store, &n->sm);
}

static int make_engine(struct zap_node *n)
{
	const struct zap_config *c = n->cfg;
	struct zap_paxos_config pc = {
	    .self = n->id,
	    .n_members = c->n_nodes,
	    .window_slots = c->paxos.window,
	    .batch_count = c->paxos.batch_count,
	    .batch_bytes = c->paxos.batch_bytes,
	    .heartbeat_ns = (uint64_t)c->paxos.heartbeat_ms * 1000000ull,
	    .election_timeout_ns = (uint64_t)c->paxos.election_timeout_ms * 1000000ull,
	    .datagram_bytes = zap_wire_max_payload(n->paxos_wire),
	    .seed = zap_poll_now_ns() ^ ((uint64_t)getpid() << 20) ^ n->id,
	};
	for (unsigned i = 0; i < c->n_nodes && i < ZAP_PAXOS_MAX_NODES; i++)
		pc.members[i] = c->nodes[i].id;
	return zap_paxos_create(&pc, &n->px);
}

static int open_log(struct zap_node *n)
{
	const char *dir = n->self->log_dir;
	int rc = mkdir_p(dir);
	if (rc != 0) {
		fprintf(stderr, "zapd: log dir %s: %s\n", dir, strerror(-rc));
		return rc;
	}
	struct zap_log_params lp;
	zap_log_params_init(&lp, dir);
	lp.segment_bytes = n->cfg->log.segment_bytes;
	lp.durability = n->cfg->log.durability == ZAP_DURABILITY_MEMORY ? ZAP_LOG_DURABILITY_MEMORY
									: ZAP_LOG_DURABILITY_FSYNC;
	char err[512] = "";
	rc = zap_log_open(&lp, restore_record, n, &n->log, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "zapd: log %s: %s\n", dir, err[0] ? err : strerror(-rc));
	return rc;
}

static struct rte_ring *ring(const char *what, uint16_t id, unsigned esize, unsigned flags)
{
	char name[RTE_RING_NAMESIZE];
	snprintf(name, sizeof(name), "zap%u_%s", id, what);
	struct rte_ring *r =
	    esize == 0
		? rte_ring_create(name, NODE_RING_SLOTS, (int)rte_socket_id(), flags)
		: rte_ring_create_elem(name, esize, NODE_RING_SLOTS, (int)rte_socket_id(), flags);
	if (r == NULL)
		fprintf(stderr, "zapd: ring %s: %s\n", name, rte_strerror(rte_errno));
	return r;
}

static int make_rings(struct zap_node *n)
{
	const unsigned spsc = RING_F_SP_ENQ | RING_F_SC_DEQ;
	n->rx_ring = ring("rx", n->id, sizeof(struct node_rx), spsc);
	n->submit_ring = ring("submit", n->id, 0, spsc);
	n->persist_ring = ring("persist", n->id, 0, spsc);
	n->token_ring = ring("token", n->id, sizeof(uint64_t), spsc);
	n->chosen_ring = ring("chosen", n->id, 0, spsc);
	n->result_ring = ring("result", n->id, sizeof(struct node_result), spsc);
	if (!n->rx_ring || !n->submit_ring || !n->persist_ring || !n->token_ring ||
	    !n->chosen_ring || !n->result_ring)
		return -ENOMEM;
	for (unsigned i = 0; i < n->n_ports; i++) {
		char what[16];
		snprintf(what, sizeof(what), "tx%u", i);
		if ((n->tx_ring[i] = ring(what, n->id, 0, spsc)) == NULL)
			return -ENOMEM;
	}
	char name[RTE_MEMPOOL_NAMESIZE];
	snprintf(name, sizeof(name), "zap%u_bufs", n->id);
	/* Pooled buffers hold the common small values; a larger one (up to
	 * batch_bytes) comes from the EAL heap, counted in big_bufs. */
	uint32_t pooled = n->cfg->paxos.batch_bytes;
	if (pooled > NODE_POOL_DATA_MAX_BYTES)
		pooled = NODE_POOL_DATA_MAX_BYTES;
	n->buf_data_bytes = pooled + NODE_BUF_SLACK;
	n->buf_pool =
	    rte_mempool_create(name, NODE_BUFS, sizeof(struct node_buf) + n->buf_data_bytes, 0, 0,
			       NULL, NULL, NULL, NULL, (int)rte_socket_id(), 0);
	if (n->buf_pool == NULL) {
		fprintf(stderr, "zapd: pool %s: %s\n", name, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	return 0;
}

static int start_ports(struct zap_node *n, const uint16_t *port_ids)
{
	for (unsigned i = 0; i < n->self->n_ports; i++) {
		const struct zap_port_config *pc = &n->self->ports[i];
		if (pc->role != ZAP_PORT_ROLE_REPLICATION)
			continue;
		char err[512];
		struct zap_port *p = &n->ports[n->n_ports];
		int rc = zap_port_init(p, pc, port_ids[i], err, sizeof(err));
		if (rc != 0) {
			fprintf(stderr, "zapd: %s\n", err);
			return rc;
		}
		n->n_ports++;
	}
	if (n->n_ports == 0) {
		fprintf(stderr, "zapd: node %u has no replication port\n", n->id);
		return -ENODEV;
	}
	memcpy(n->arp[0].mac, n->self->replication.mac, 6);
	n->arp[0].ipv4_be = n->self->replication.ipv4_be;
	n->n_arp = 1;
	return 0;
}

/* The pipeline lcores, from the YAML's lcores section. */
static int plan_lcores(struct zap_node *n)
{
	const uint32_t pipe = ZAP_LCORE_ROLES_REQUIRED;
	for (unsigned i = 0; i < n->cfg->n_lcores; i++) {
		const struct zap_lcore_config *lc = &n->cfg->lcores[i];
		if ((lc->roles & pipe) == 0)
			continue;
		if (!rte_lcore_is_enabled(lc->lcore)) {
			fprintf(stderr, "zapd: lcore %u is not enabled in EAL\n", lc->lcore);
			return -EINVAL;
		}
		n->lcores[n->n_lcores++] = (struct node_lcore){.n = n,
							       .lcore_id = lc->lcore,
							       .roles = lc->roles & pipe,
							       .policy = lc->polling};
	}
	return n->n_lcores > 0 ? 0 : -EINVAL;
}

static void report(const struct zap_node *n)
{
	const struct node_counters *c = &n->cnt;
	struct zap_paxos_stats ps;
	zap_paxos_stats(n->px, &ps);
	fprintf(
	    stderr,
	    "zapd: node %u: stopped; applied slot %" PRIu64 ", chosen %" PRIu64
	    ", last tid %016" PRIx64 "\n"
	    "  io: rx %" PRIu64 " (decode drops %" PRIu64 ", ring full %" PRIu64 "), tx %" PRIu64
	    " (full %" PRIu64 "), arp %" PRIu64 ", relinks %" PRIu64 "\n"
	    "  paxos: sends %" PRIu64 " (drops: route %" PRIu64 " mbuf %" PRIu64 " ring %" PRIu64
	    "), submits %" PRIu64 " (busy %" PRIu64 "), elections %" PRIu64 "/%" PRIu64
	    ", forwarded commands dropped %" PRIu64 "\n"
	    "  log: appends %" PRIu64 ", syncs %" PRIu64 ", errors %" PRIu64 "\n"
	    "  apply: commands %" PRIu64 ", result drops %" PRIu64 "\n"
	    "  blob fetch: fetched %" PRIu64 ", retries %" PRIu64 ", chunk drops %" PRIu64
	    ", chunks sent %" PRIu64 ", request drops %" PRIu64 "\n"
	    "  settings: messages of peers not agreeing dropped %" PRIu64 ", mismatches %" PRIu64
	    "\n"
	    "  snapshots: checkpoints %" PRIu64 " (errors %" PRIu64 "), needed %" PRIu64
	    ", fetches %" PRIu64 ", installed %" PRIu64 " (errors %" PRIu64 "), sent %" PRIu64
	    " (chunks %" PRIu64 "), files %" PRIu64 " (errors %" PRIu64 ", skipped %" PRIu64
	    "), segments dropped %" PRIu64 ", taking %" PRIu64 " ms, writing %" PRIu64 " ms, deferred %" PRIu64
	    ", served from the file %" PRIu64 "\n"
	    "  client: requests %" PRIu64 " (bad %" PRIu64 "), replies %" PRIu64 ", busy %" PRIu64
	    ", expired %" PRIu64 ", resubmits %" PRIu64 ", large %" PRIu64 " (chunk resends %" PRIu64 ")\n",
	    n->id, n->applied_slot, ps.chosen_slot, zap_store_last_tid(n->store), c->rx_frames,
	    c->rx_decode_drops, c->rx_ring_full_drops, c->tx_frames, c->tx_full_drops,
	    c->arp_replies, c->relinks, c->sends, c->send_no_route_drops, c->send_no_mbuf_drops,
	    c->send_ring_full_drops, c->submits, c->submit_busy_drops, ps.elections_won,
	    ps.elections_started, ps.commands_dropped, c->log_appends, c->log_syncs, c->log_errors, c->applied_commands,
	    c->result_ring_full_drops, c->blobs_fetched, c->blob_fetch_retries,
	    c->blob_chunk_drops, c->blob_chunks_tx, c->blob_req_drops, c->settings_drops,
	    c->settings_mismatches, c->checkpoints, c->checkpoint_errors, c->snapshots_needed,
	    c->snap_fetches, c->snapshots_installed, c->snapshot_install_errors, c->snapshots_sent,
	    c->snap_chunks_tx, c->checkpoint_files, c->checkpoint_file_errors,
	    c->checkpoint_file_skips, c->segments_dropped, c->checkpoint_ns / 1000000,
	    c->checkpoint_file_ns / 1000000, c->checkpoints_deferred, c->snap_images_to_file, c->cl_requests, c->cl_bad_requests,
	    c->cl_replies, c->cl_busy, c->cl_expired, c->cl_resubmits, c->cl_large, c->cl_large_resends);
	zap_node_blobs_report(n, stderr);
	/* Where the time of this node's own writes went (docs/operations.md). */
	static const char *const lat_names[NODE_LAT_COUNT] = {
	    "submit->paxos", "submit->chosen", "chosen->applied", "fsync", "applied->replied"};
	fprintf(stderr, "  latency (us, p50/p99/count):");
	for (unsigned i = 0; i < NODE_LAT_COUNT; i++)
		fprintf(stderr, " %s %.1f/%.1f/%" PRIu64, lat_names[i],
			(double)zap_node_lat_quantile(&n->lat[i], 0.5) / 1e3,
			(double)zap_node_lat_quantile(&n->lat[i], 0.99) / 1e3, n->lat[i].n);
	fprintf(stderr, "\n");
	/* Replication frames dropped by the io stage, per reason (zap_wire_drop_name). */
	struct zap_wire_stats ws;
	zap_wire_stats(n->io_wire, &ws);
	fprintf(stderr, "  wire drops:");
	for (unsigned r = 0; r < ZAP_WIRE_DROP_COUNT; r++)
		if (ws.dropped[r] != 0)
			fprintf(stderr, " %s=%" PRIu64, zap_wire_drop_name(r), ws.dropped[r]);
	fprintf(stderr, " (total %" PRIu64 "; arp requests for other hosts %" PRIu64 ")\n",
		ws.frames_dropped, c->arp_drops);
	zap_node_cport_report(n, stderr);
	zap_node_bells_report(n, stderr);
	struct zap_txn_stats ts;
	zap_txn_sm_stats(n->sm, &ts);
	fprintf(stderr,
		"  txn: commits %" PRIu64 ", conflicts %" PRIu64 ", read conflicts %" PRIu64
		", waits %" PRIu64 ", aborts %" PRIu64 ", lease expiries %" PRIu64 ", packs %" PRIu64
		" (objects collected %" PRIu64 ", collections skipped %" PRIu64 ")\n"
		"  large: applied %" PRIu64 ", refused %" PRIu64 ", chunks %" PRIu64
		", payloads dropped %" PRIu64 ", open %u (%" PRIu64 " bytes)\n",
		ts.commits, ts.conflicts, ts.read_conflicts, ts.waits, ts.aborts, ts.expiries,
		ts.packs, ts.gc_collected, ts.gc_aborted, ts.large_applied, ts.large_refused,
		ts.payload_chunks, ts.payloads_dropped, ts.payloads, ts.payload_bytes);
	if (n->zeo_ran) {
		const struct zap_zeo_stats *z = &n->zeo_stats;
		fprintf(stderr,
			"  zeo: connections %" PRIu64 " (refused %" PRIu64 ", bad handshakes %" PRIu64
			"), messages %" PRIu64 " (bad %" PRIu64 "), loads %" PRIu64 ", stores %" PRIu64
			", commits %" PRIu64 ", aborts %" PRIu64 ", conflicts %" PRIu64
			", merged natively %" PRIu64 ", read conflicts %" PRIu64
			", invalidations sent %" PRIu64 "\n",
			z->connections, z->connections_refused, z->handshakes_failed, z->messages,
			z->bad_messages, z->loads, z->stores, z->commits, z->aborts, z->conflicts,
			z->conflicts_resolved, z->read_conflicts, z->invalidations_sent);
		/* What a ZEO commit's time went to (docs/zeo.md, "Where a commit's time goes"). */
		fprintf(stderr, "  zeo latency (us, p50/p99/count):");
		for (unsigned i = 0; i < ZAP_ZEO_LAT_COUNT; i++)
			fprintf(stderr, " %s %.1f/%.1f/%" PRIu64, zap_zeo_lat_names[i],
				(double)z->lat_p50_ns[i] / 1e3, (double)z->lat_p99_ns[i] / 1e3,
				z->lat_n[i]);
		fprintf(stderr, "\n");
	}
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/*
 * Stop everything; the log is durable before any port or EAL state goes. Then,
 * by default, leave with _exit(): closing memif ports and rte_eal_cleanup()
 * after them crash now and then in EAL's interrupt thread (docs/operations.md,
 * "Shutdown"; seen
 * here as memif's listener spinning on a closed socket, then SIGSEGV, under
 * ASan). ZAPD_FULL_CLEANUP=1 closes the ports and cleans EAL up instead.
 */
static void teardown(struct zap_node *n, bool eal_up, int rc)
{
	if (n->client_started)
		zap_node_client_stop(n);
	if (n->log != NULL) {
		int lrc = n->persist_ring != NULL ? zap_node_log_drain(n) : zap_log_sync(n->log);
		if (lrc != 0) {
			fprintf(stderr, "zapd: node %u: final log sync failed: %s\n", n->id,
				strerror(-lrc));
			rc = rc != 0 ? rc : lrc;
		}
		zap_log_close(n->log);
		n->log = NULL;
	}
	if (n->px != NULL && n->store != NULL)
		report(n);
	for (unsigned i = 0; i < n->n_ports; i++) {
		if (n->ports[i].started) {
			rte_eth_dev_stop(n->ports[i].port_id);
			n->ports[i].started = false;
		}
	}
	/* memif's interrupt thread needs a moment after the ports stop. */
	pause_ms(ZAP_PORT_QUIESCE_MS);
	const char *full = getenv("ZAPD_FULL_CLEANUP");
	if (eal_up && (full == NULL || strcmp(full, "1") != 0)) {
		fflush(NULL);
		zap_node_reexec_if_asked();
		_exit(rc == 0 ? 0 : 1);
	}
	for (unsigned i = 0; i < n->n_ports; i++)
		zap_port_stop(&n->ports[i]);
	zap_node_cport_close(n);
	zap_node_bells_fini(n);
	zap_node_snap_free(n);
	zap_node_blobs_fetch_free(n);
	zap_node_settings_free(n);
	if (n->px != NULL)
		zap_paxos_destroy(n->px);
	zap_txn_sm_destroy(n->sm);
	zap_node_blobs_close(n);
	if (n->store != NULL)
		zap_store_close(n->store);
	zap_wire_ctx_destroy(n->io_wire);
	zap_wire_ctx_destroy(n->paxos_wire);
	if (eal_up) {
		pause_ms(ZAP_PORT_QUIESCE_MS);
		zap_eal_cleanup();
	}
}

/*
 * Every ZEO connection is a socket: ask for ZAP_NODE_NOFILE open files (up to
 * the hard limit) so zeo.max_connections, not the shell's soft limit of
 * 1024, decides how many clients a node serves.
 */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= ZAP_NODE_NOFILE)
		return;
	rl.rlim_cur = rl.rlim_max < ZAP_NODE_NOFILE ? rl.rlim_max : ZAP_NODE_NOFILE;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		fprintf(stderr, "zapd: cannot raise the open file limit: %s\n", strerror(errno));
}

int zap_node_run(const struct zap_config *cfg, uint16_t node_id, const char *eal_log_level)
{
	static struct zap_node node; /* large (port and lcore tables): not on the stack */
	struct zap_node *n = &node;
	memset(n, 0, sizeof(*n));
	n->cfg = cfg;
	n->id = node_id != 0 ? node_id : cfg->nodes[0].id;
	n->self = zap_config_node(cfg, n->id);
	n->client_fd = -1;
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	n->start_wall_ns = (uint64_t)wall.tv_sec * 1000000000ull + (uint64_t)wall.tv_nsec;
	if (n->self == NULL) {
		fprintf(stderr, "zapd: no node %u in %s\n", n->id, cfg->source);
		return -ENOENT;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	struct zap_eal_opts eo = {.log_level = eal_log_level};
	uint16_t port_ids[ZAP_CONFIG_MAX_PORTS];
	char err[1024];
	int rc = zap_eal_init(cfg, n->id, &eo, port_ids, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "zapd: %s\n", err);
		if (rc == -ENODEV)
			zap_eal_cleanup();
		return rc;
	}
	const char *step = "ports";
	if ((rc = start_ports(n, port_ids)) != 0)
		goto fail;
	step = "wire contexts";
	if ((rc = make_wire(n, &n->io_wire)) != 0 || (rc = make_wire(n, &n->paxos_wire)) != 0)
		goto fail;
	step = "store and state machine";
	if ((rc = make_state(n)) != 0)
		goto fail;
	step = "paxos engine";
	if ((rc = make_engine(n)) != 0)
		goto fail;
	step = "snapshots";
	if ((rc = zap_node_snap_init(n)) != 0)
		goto fail;
	step = "checkpoint";
	if ((rc = mkdir_p(n->self->log_dir)) != 0 || (rc = zap_node_snap_restore(n)) != 0)
		goto fail;
	step = "blob fetch";
	if ((rc = zap_node_blobs_fetch_init(n)) != 0)
		goto fail;
	step = "settings";
	if ((rc = zap_node_settings_init(n)) != 0)
		goto fail;
	zap_node_blobs_find_missing(n); /* a snapshot installed before a crash */
	step = "log";
	if ((rc = open_log(n)) != 0)
		goto fail;
	step = "engine start";
	if ((rc = zap_paxos_start(n->px, zap_poll_now_ns(), n->applied_slot)) != 0)
		goto fail;
	step = "rings";
	if ((rc = make_rings(n)) != 0)
		goto fail;
	step = "lcores";
	if ((rc = plan_lcores(n)) != 0)
		goto fail;
	step = "doorbells";
	if ((rc = zap_node_bells_init(n)) != 0)
		goto fail;
	step = "client service";
	if ((rc = zap_node_client_start(n)) != 0)
		goto fail;

	struct zap_log_stats ls;
	zap_log_stats(n->log, &ls);
	fprintf(stderr,
		"zapd: node %u (%s) running: %u replication port(s), %u pipeline lcore(s), "
		"log %s (%" PRIu64 " records replayed), client service %s:%u\n",
		n->id, n->self->name, n->n_ports, n->n_lcores, n->self->log_dir,
		ls.replayed_records, n->self->client_udp.host ? n->self->client_udp.host : "-",
		n->self->client_udp.port);

	struct node_lcore *on_main = NULL;
	for (unsigned i = 0; i < n->n_lcores; i++) {
		struct node_lcore *lc = &n->lcores[i];
		if (lc->lcore_id == rte_get_main_lcore()) {
			on_main = lc;
			continue;
		}
		rc = rte_eal_remote_launch(zap_node_lcore_loop, lc, lc->lcore_id);
		if (rc != 0) {
			fprintf(stderr, "zapd: launch on lcore %u: %s\n", lc->lcore_id,
				strerror(-rc));
			zap_node_stop = 1;
			break;
		}
	}
	if (on_main != NULL && !zap_node_stop)
		zap_node_lcore_loop(on_main);
	while (!zap_node_stop) {
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
	rte_eal_mp_wait_lcore();
	teardown(n, true, 0);
	return 0;
fail:
	fprintf(stderr, "zapd: node %u: start-up failed at %s: %s\n", n->id, step, strerror(-rc));
	teardown(n, true, rc);
	return rc;
}

static char **restart_argv;

void zap_node_set_argv(char **argv)
{
	restart_argv = argv;
}

void zap_node_reexec_if_asked(void)
{
	if (!zap_node_restart || restart_argv == NULL)
		return;
	fprintf(stderr, "zapd: restarting\n");
	fflush(NULL);
	/* a clean start: no descriptor (sockets, EAL files and their locks) survives */
	close_range(3, ~0u, 0);
	execv("/proc/self/exe", restart_argv);
	fprintf(stderr, "zapd: restart failed: %s\n", strerror(errno));
}
