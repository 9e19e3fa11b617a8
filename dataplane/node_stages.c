/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap node stages: io -> paxos -> log -> apply, each a function that does one
 * bounded round of work, joined by rte_rings (node_internal.h lists them).
 *
 *   io     rx bursts from the replication ports; ARP requests answered at
 *          once; every other frame decoded and authenticated
 *          (zap_wire_decode_paxos) and handed to paxos with its mbuf; tx
 *          bursts of what paxos queued per port; the memif link watch.
 *   paxos  the engine: persisted tokens, received messages, client commands,
 *          ticks at zap_paxos_next_deadline(); its outputs: SEND encoded into
 *          an mbuf for the port towards the peer, PERSIST to the log stage,
 *          CHOSEN to the apply stage, ROLE noted (one stderr line).
 *   log    appends, then one sync per group (log.group_commit_us window, or
 *          group_commit_max appends), then the highest durable token back to
 *          paxos.
 *   apply  each chosen BATCH's commands applied in order at index
 *          slot * 65536 + i + 1; results with a session, and this node's
 *          read barriers (NOP entries it proposed), go to the client thread.
 *
 * Checkpoints and snapshot transfer (docs/log.md, "Checkpoints and
 * snapshots"): every ZAPD_CHECKPOINT_SLOTS applied slots the apply stage
 * writes the store and the state machine into one image in memory and hands
 * it to the paxos stage, which keeps it to serve, lets the engine drop the
 * values of the slots one period older, and has the log stage write it to
 * the checkpoint file and drop the segments it covers. A node told
 * SNAPSHOT_NEEDED fetches a peer's image in chunks (wire types SNAP_REQ /
 * SNAP_CHUNK, handled by the paxos stage outside the engine), the apply
 * stage loads it into its empty store and state machine, and the engine
 * hears zap_paxos_snapshot_installed().
 *
 * An engine output's pointers are valid only until the next call into the
 * engine, so an output that cannot be placed (buffer pool or ring full) is
 * copied into n->out and the paxos stage calls nothing in the engine until it
 * is placed: back-pressure instead of loss for PERSIST and CHOSEN. A SEND that
 * cannot go is dropped and counted (the protocol retransmits).
 *
 * Threading: zap_node_lcore_loop() runs on each pipeline lcore and calls the
 * stages the YAML gives that lcore, one after another; each stage runs on
 * exactly one lcore. Nothing here allocates (but the rare oversized buffer),
 * logs or makes a system call per packet; drops are counters.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_lcore.h>

#include "entry.h"
#include "node_internal.h"
#include "snapstream.h"

/* ------------------------------------------------------------------ io */

#define NODE_ETHERTYPE_ARP 0x0806u

static void io_answer_arp(struct zap_node *n, struct zap_port *p, struct rte_mbuf *m)
{
	struct rte_mbuf *r = rte_pktmbuf_alloc(p->pool);
	if (r == NULL) {
		n->cnt.arp_drops++;
		return;
	}
	int len = zap_wire_arp_reply(n->arp, n->n_arp, rte_pktmbuf_mtod(m, const void *),
				     rte_pktmbuf_data_len(m), rte_pktmbuf_mtod(r, void *),
				     rte_pktmbuf_tailroom(r));
	if (len < 0) {
		rte_pktmbuf_free(r);
		n->cnt.arp_drops++;
		return;
	}
	r->data_len = (uint16_t)len;
	r->pkt_len = (uint32_t)len;
	if (zap_port_tx_burst(p, &r, 1) != 1) {
		rte_pktmbuf_free(r);
		n->cnt.arp_drops++;
		return;
	}
	n->cnt.arp_replies++;
}

static void io_stage(struct zap_node *n, uint64_t now, bool *work)
{
	for (unsigned pi = 0; pi < n->n_ports; pi++) {
		struct zap_port *p = &n->ports[pi];
		struct rte_mbuf *pkts[NODE_BURST];
		struct node_rx rx[NODE_BURST];
		unsigned k = 0;
		uint16_t got = zap_port_rx_burst(p, pkts, NODE_BURST);
		for (uint16_t i = 0; i < got; i++) {
			struct rte_mbuf *m = pkts[i];
			n->cnt.rx_frames++;
			if (m->nb_segs != 1) {
				n->cnt.rx_multiseg_drops++;
				rte_pktmbuf_free(m);
				continue;
			}
			const uint8_t *d = rte_pktmbuf_mtod(m, const uint8_t *);
			uint16_t len = rte_pktmbuf_data_len(m);
			if (len >= 14 && (((unsigned)d[12] << 8) | d[13]) == NODE_ETHERTYPE_ARP) {
				io_answer_arp(n, p, m);
				rte_pktmbuf_free(m);
				continue;
			}
			if (zap_wire_decode_paxos(n->io_wire, d, len, 0, &rx[k].msg) != 0) {
				n->cnt.rx_decode_drops++;
				rte_pktmbuf_free(m);
				continue;
			}
			rx[k++].m = m;
		}
		if (k > 0) {
			unsigned put =
			    rte_ring_enqueue_burst_elem(n->rx_ring, rx, sizeof(rx[0]), k, NULL);
			for (unsigned i = put; i < k; i++) {
				n->cnt.rx_ring_full_drops++;
				rte_pktmbuf_free(rx[i].m);
			}
		}
		struct rte_mbuf *tx[NODE_BURST];
		unsigned nt = rte_ring_dequeue_burst(n->tx_ring[pi], (void **)tx, NODE_BURST, NULL);
		if (nt > 0) {
			uint16_t sent = zap_port_tx_burst(p, tx, (uint16_t)nt);
			n->cnt.tx_frames += sent;
			for (unsigned i = sent; i < nt; i++) {
				n->cnt.tx_full_drops++;
				rte_pktmbuf_free(tx[i]);
			}
		}
		if (got > 0 || nt > 0)
			*work = true;
	}
	if (now >= n->next_link_check_ns) {
		n->next_link_check_ns = now + NODE_LINK_CHECK_NS;
		for (unsigned pi = 0; pi < n->n_ports; pi++)
			if (zap_port_link_check(&n->ports[pi], now) == 1)
				n->cnt.relinks++;
	}
}

/* ------------------------------------------------------------------ paxos */

static void snap_fetch_start(struct zap_node *n, uint64_t now, uint16_t from, uint64_t slot);
static void snap_rx(struct zap_node *n, uint64_t now, const struct zap_paxos_msg *m);
static int snap_from_apply(struct zap_node *n, uint64_t now, bool *work);
static void snap_tick(struct zap_node *n, uint64_t now);

static int port_for(const struct zap_node *n, uint16_t to)
{
	int any = -1;
	for (unsigned i = 0; i < n->n_ports; i++) {
		if (n->ports[i].cfg->peer_id == to)
			return (int)i;
		if (n->ports[i].cfg->peer_id == 0 && any < 0)
			any = (int)i;
	}
	return any;
}

static void paxos_send(struct zap_node *n, const struct zap_paxos_msg *msg)
{
	int pi = port_for(n, msg->to);
	if (pi < 0) {
		n->cnt.send_no_route_drops++;
		return;
	}
	struct rte_mbuf *m = rte_pktmbuf_alloc(n->ports[pi].pool);
	if (m == NULL) {
		n->cnt.send_no_mbuf_drops++;
		return;
	}
	int len = zap_wire_encode_paxos(n->paxos_wire, msg, rte_pktmbuf_mtod(m, void *),
					rte_pktmbuf_tailroom(m));
	if (len < 0) {
		n->cnt.send_encode_drops++;
		rte_pktmbuf_free(m);
		return;
	}
	m->data_len = (uint16_t)len;
	m->pkt_len = (uint32_t)len;
	if (rte_ring_enqueue(n->tx_ring[pi], m) != 0) {
		n->cnt.send_ring_full_drops++;
		rte_pktmbuf_free(m);
		return;
	}
	n->cnt.sends++;
}

/* Hand a PERSIST or CHOSEN output to its ring; -EAGAIN when it must wait. */
static int paxos_hand_off(struct zap_node *n, const struct zap_paxos_out *o, uint8_t kind,
			  struct rte_ring *ring)
{
	struct node_buf *b = zap_node_buf_get(n, o->len);
	if (b == NULL)
		return -EAGAIN;
	b->kind = kind;
	b->rec_type = o->rec_type;
	b->len = (uint32_t)o->len;
	b->slot = o->slot;
	b->ballot = o->ballot;
	b->token = o->token;
	if (o->len > 0)
		memcpy(b->data, o->data, o->len);
	if (rte_ring_enqueue(ring, b) != 0) {
		zap_node_buf_put(n, b);
		return -EAGAIN;
	}
	return 0;
}

static int paxos_place(struct zap_node *n, const struct zap_paxos_out *o)
{
	switch (o->type) {
	case ZAP_PAXOS_OUT_SEND:
		paxos_send(n, &o->msg);
		return 0;
	case ZAP_PAXOS_OUT_PERSIST:
		if (paxos_hand_off(n, o, NODE_BUF_PERSIST, n->persist_ring) != 0) {
			n->cnt.persist_stalls++;
			return -EAGAIN;
		}
		return 0;
	case ZAP_PAXOS_OUT_CHOSEN:
		if (paxos_hand_off(n, o, NODE_BUF_CHOSEN, n->chosen_ring) != 0) {
			n->cnt.chosen_stalls++;
			return -EAGAIN;
		}
		return 0;
	case ZAP_PAXOS_OUT_SNAPSHOT_NEEDED:
		n->cnt.snapshots_needed++;
		snap_fetch_start(n, zap_poll_now_ns(), o->node, o->slot);
		return 0;
	case ZAP_PAXOS_OUT_ROLE:
		if (o->node != n->leader)
			fprintf(stderr, "zapd: node %u: leader is node %u (ballot %" PRIu64 ")\n",
				n->id, o->node, o->ballot);
		n->leader = o->node;
		return 0;
	default:
		return 0;
	}
}

/* Take every output of the engine; -EAGAIN if one is held for later. */
static int paxos_drain(struct zap_node *n)
{
	for (;;) {
		if (!n->out_held) {
			if (zap_paxos_poll(n->px, &n->out) != 1)
				return 0;
			n->out_held = true;
		}
		if (paxos_place(n, &n->out) != 0)
			return -EAGAIN;
		n->out_held = false;
	}
}

/*
 * The leader proposes a LEASE_EXPIRE entry every quarter lease: the state
 * machine then aborts every prepared transaction older than the lease (by the
 * proposers' clocks), so a transaction whose client or node died frees its
 * locks within about 1.25 leases. Deterministic: every replica applies the
 * same entry with the same clock.
 */
static void lease_tick(struct zap_node *n, uint64_t now)
{
	uint64_t lease_ns = (uint64_t)n->cfg->txn.lease_ms * 1000000ull;
	if (lease_ns == 0 || n->leader != n->id || now < n->next_lease_ns)
		return;
	n->next_lease_ns = now + lease_ns / NODE_LEASE_TICKS;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct zap_entry e = {.type = ZAP_ENTRY_LEASE_EXPIRE,
			      .node = n->id,
			      .clock_ns =
				  (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec};
	e.u.expire_node = ZAP_ENTRY_NODE_NONE;
	uint8_t buf[NODE_LEASE_ENTRY_BYTES];
	size_t size = zap_entry_size(&e);
	if (size == 0 || size > sizeof(buf) || zap_entry_encode(&e, buf, sizeof(buf)) < 0)
		return;
	if (zap_paxos_submit(n->px, now, buf, (uint32_t)size) == 0)
		n->cnt.lease_proposals++;
}

/* Offsets in an entry's header (docs/txn.md): type, proposer node, clock. */
#define ENTRY_OFF_TYPE 1
#define ENTRY_OFF_NODE 2
#define ENTRY_OFF_CLOCK 24

static uint64_t wall_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * The proposer's clock of an encoded entry when it is one of this node's
 * client writes (ONESHOT, PREPARE, COMMIT), else 0: the latency breakdown
 * follows those from the client thread's submit (entry clock, wall time).
 */
static uint64_t own_write_clock(const struct zap_node *n, const void *cmd, uint32_t len)
{
	const uint8_t *e = cmd;
	if (len < ENTRY_OFF_CLOCK + 8 ||
	    (e[ENTRY_OFF_NODE] | (unsigned)e[ENTRY_OFF_NODE + 1] << 8) != n->id)
		return 0;
	uint8_t t = e[ENTRY_OFF_TYPE];
	if (t != ZAP_ENTRY_ONESHOT && t != ZAP_ENTRY_PREPARE && t != ZAP_ENTRY_COMMIT)
		return 0;
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | e[ENTRY_OFF_CLOCK + i];
	return v >= n->start_wall_ns ? v : 0; /* not one replayed from the log */
}

static void lat_since(struct node_lat *h, uint64_t from_ns, uint64_t to_ns)
{
	if (from_ns != 0 && to_ns >= from_ns)
		zap_node_lat_add(h, to_ns - from_ns);
}

static void paxos_stage(struct zap_node *n, uint64_t now, bool *work)
{
	if (paxos_drain(n) != 0)
		return;
	snap_tick(n, now);
	if (snap_from_apply(n, now, work) != 0)
		return;
	uint64_t tokens[NODE_BURST];
	unsigned nt =
	    rte_ring_dequeue_burst_elem(n->token_ring, tokens, sizeof(tokens[0]), NODE_BURST, NULL);
	if (nt > 0) {
		uint64_t max = 0;
		for (unsigned i = 0; i < nt; i++)
			max = tokens[i] > max ? tokens[i] : max;
		zap_paxos_persisted(n->px, now, max);
		*work = true;
		if (paxos_drain(n) != 0)
			return;
	}
	if (n->rx_hold_pos == n->rx_hold_n) {
		n->rx_hold_pos = 0;
		n->rx_hold_n = rte_ring_dequeue_burst_elem(n->rx_ring, n->rx_hold,
							   sizeof(n->rx_hold[0]), NODE_BURST, NULL);
	}
	while (n->rx_hold_pos < n->rx_hold_n) {
		struct node_rx *r = &n->rx_hold[n->rx_hold_pos++];
		if (r->msg.type == ZAP_WIRE_TYPE_SNAP_REQ ||
		    r->msg.type == ZAP_WIRE_TYPE_SNAP_CHUNK)
			snap_rx(n, now, &r->msg);
		else
			zap_paxos_receive(n->px, now, &r->msg);
		rte_pktmbuf_free(r->m);
		*work = true;
		if (paxos_drain(n) != 0)
			return;
	}
	if (n->cmd_hold_pos == n->cmd_hold_n) {
		n->cmd_hold_pos = 0;
		n->cmd_hold_n =
		    rte_ring_dequeue_burst(n->submit_ring, (void **)n->cmd_hold, NODE_BURST, NULL);
	}
	while (n->cmd_hold_pos < n->cmd_hold_n) {
		struct node_buf *b = n->cmd_hold[n->cmd_hold_pos++];
		uint64_t clock = own_write_clock(n, b->data, b->len);
		if (clock != 0)
			lat_since(&n->lat[NODE_LAT_TO_PAXOS], clock, wall_now_ns());
		if (zap_paxos_submit(n->px, now, b->data, b->len) == 0)
			n->cnt.submits++;
		else
			n->cnt.submit_busy_drops++; /* the client resends */
		zap_node_buf_put(n, b);
		*work = true;
		if (paxos_drain(n) != 0)
			return;
	}
	lease_tick(n, now);
	if (now >= zap_paxos_next_deadline(n->px)) {
		zap_paxos_tick(n->px, now);
		paxos_drain(n);
	}
}

/* ------------------------------------------------------------------ log */

static void log_fail(struct zap_node *n, const char *what, int rc)
{
	if (n->cnt.log_errors++ == 0)
		fprintf(stderr, "zapd: node %u: log %s failed: %s; stopping\n", n->id, what,
			strerror(-rc));
	zap_node_stop = 1;
}

static void log_report(struct zap_node *n)
{
	if (n->log_synced_token > n->log_reported_token &&
	    rte_ring_enqueue_elem(n->token_ring, &n->log_synced_token, sizeof(uint64_t)) == 0)
		n->log_reported_token = n->log_synced_token;
}

static int log_checkpoint(struct zap_node *n, const struct node_buf *b);
static int snap_file_write(struct zap_node *n, const uint8_t *data, uint64_t len);

void zap_node_log_stage(struct zap_node *n, uint64_t now, bool *work)
{
	if (n->cnt.log_errors > 0)
		return;
	struct node_buf *bufs[NODE_BURST];
	unsigned got = rte_ring_dequeue_burst(n->persist_ring, (void **)bufs, NODE_BURST, NULL);
	for (unsigned i = 0; i < got; i++) {
		struct node_buf *b = bufs[i];
		int rc = b->kind == NODE_BUF_CHECKPOINT
			     ? log_checkpoint(n, b)
			     : zap_log_append(n->log, b->rec_type, b->slot, b->ballot, b->data,
					      b->len, NULL);
		if (rc != 0) {
			log_fail(n, b->kind == NODE_BUF_CHECKPOINT ? "checkpoint" : "append", rc);
			for (; i < got; i++)
				zap_node_buf_put(n, bufs[i]);
			return;
		}
		if (b->kind == NODE_BUF_CHECKPOINT) {
			zap_node_buf_put(n, b);
			continue;
		}
		if (n->log_pending++ == 0)
			n->log_window_ns = now;
		n->log_appended_token = b->token;
		n->cnt.log_appends++;
		zap_node_buf_put(n, b);
	}
	if (got > 0)
		*work = true;
	if (n->log_pending > 0) {
		const struct zap_log_config *lc = &n->cfg->log;
		*work = true; /* keep the loop awake while a group is open */
		if (n->log_pending >= lc->group_commit_max ||
		    now - n->log_window_ns >= (uint64_t)lc->group_commit_us * 1000) {
			uint64_t t0 = zap_poll_now_ns();
			int rc = zap_log_sync(n->log);
			if (rc != 0) {
				log_fail(n, "sync", rc);
				return;
			}
			lat_since(&n->lat[NODE_LAT_FSYNC], t0, zap_poll_now_ns());
			n->cnt.log_syncs++;
			n->log_pending = 0;
			n->log_synced_token = n->log_appended_token;
		}
	}
	log_report(n);
}

int zap_node_log_drain(struct zap_node *n)
{
	bool work = true;
	for (unsigned round = 0; round < 1000 && work && n->cnt.log_errors == 0; round++) {
		work = false;
		zap_node_log_stage(n, UINT64_MAX / 2, &work);
		work = work || rte_ring_count(n->persist_ring) > 0;
	}
	return n->cnt.log_errors ? -EIO : zap_log_sync(n->log);
}

/* ------------------------------------------------------------------ apply */

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void result_push(struct zap_node *n, struct node_result *r)
{
	if (rte_ring_enqueue_elem(n->result_ring, r, sizeof(*r)) != 0)
		n->cnt.result_ring_full_drops++; /* the client resends; the session answers */
}

static void apply_emit(const struct zap_txn_result *r, void *ctx)
{
	struct zap_node *n = ctx;
	if (r->client_id == 0 || r->status == ZAP_TXN_WAITING)
		return;
	struct node_result o = {
	    .client_id = r->client_id,
	    .seq = r->seq,
	    .txn_id = r->txn_id,
	    .tid = r->tid,
	    .oid = r->oid,
	    .serial = r->serial,
	    .base_serial = r->base_serial,
	    .first_oid = r->first_oid,
	    .store_errno = r->store_errno,
	    .oid_count = r->oid_count,
	    .status = r->status,
	    .entry_type = r->entry_type,
	    .duplicate = r->duplicate,
	};
	result_push(n, &o);
}

static void apply_value(struct zap_node *n, uint64_t slot, const void *data, uint64_t len)
{
	if (zap_paxos_value_kind(data, len) == ZAP_PAXOS_VALUE_BATCH) {
		uint64_t pos = 0, i = 0, chosen_ns = wall_now_ns();
		const void *cmd;
		uint32_t cmd_len;
		while (i + 1 < NODE_SLOT_INDEX_SPAN &&
		       zap_paxos_batch_next(data, len, &pos, &cmd, &cmd_len) == 1) {
			uint64_t index = slot * NODE_SLOT_INDEX_SPAN + i + 1;
			int rc = zap_txn_sm_apply(n->sm, index, cmd, cmd_len, apply_emit, n);
			uint64_t clock = own_write_clock(n, cmd, cmd_len);
			if (clock != 0) {
				lat_since(&n->lat[NODE_LAT_TO_CHOSEN], clock, chosen_ns);
				lat_since(&n->lat[NODE_LAT_APPLY], chosen_ns, wall_now_ns());
			}
			if (rc == -ENOMEM) {
				n->cnt.apply_errors++;
				fprintf(stderr,
					"zapd: node %u: out of memory applying slot %" PRIu64
					"; stopping\n",
					n->id, slot);
				zap_node_stop = 1;
				return;
			}
			if (rc == -EALREADY)
				n->cnt.apply_errors++;
			const uint8_t *e = cmd;
			if (cmd_len >= ENTRY_OFF_CLOCK + 8 && e[ENTRY_OFF_TYPE] == ZAP_ENTRY_NOP &&
			    (e[ENTRY_OFF_NODE] | (unsigned)e[ENTRY_OFF_NODE + 1] << 8) == n->id) {
				struct node_result b = {.seq = le64(e + ENTRY_OFF_CLOCK),
							.entry_type = ZAP_ENTRY_NOP};
				result_push(n, &b);
			}
			n->cnt.applied_commands++;
			i++;
		}
	}
	/* NOP and CONFIG values change nothing here: membership is not driven yet. */
	__atomic_store_n(&n->applied_slot, slot, __ATOMIC_RELEASE);
	n->cnt.applied_slots++;
}

static void snap_install(struct zap_node *n, bool *work);
static void snap_checkpoint(struct zap_node *n);

static void apply_stage(struct zap_node *n, bool *work)
{
	snap_install(n, work);
	struct node_buf *bufs[NODE_BURST];
	unsigned got = rte_ring_dequeue_burst(n->chosen_ring, (void **)bufs, NODE_BURST, NULL);
	for (unsigned i = 0; i < got; i++) {
		/* slots a snapshot installed already cover */
		if (bufs[i]->slot > n->applied_slot) {
			apply_value(n, bufs[i]->slot, bufs[i]->data, bufs[i]->len);
			snap_checkpoint(n);
		}
		zap_node_buf_put(n, bufs[i]);
	}
	if (got > 0) {
		zap_store_reclaim(n->store);
		*work = true;
	}
}

/* ------------------------------------------------------------------ snapshots */

/*
 * An image: header (magic "ZSNP", version, slot, store stream bytes, state
 * machine stream bytes; little-endian), the store snapshot stream, the state
 * machine snapshot stream. Each stream carries its own checksum.
 */
#define SNAP_MAGIC 0x504e535au
#define SNAP_VERSION 1u
#define SNAP_HDR_BYTES 32u
/** Slots of the rings between the paxos and apply stages (images in flight). */
#define SNAP_RING_SLOTS 64u
/** Chunks sent per SNAP_REQ. */
#define SNAP_WINDOW 32u
/** A fetch asks again from where it stands after this long without its window. */
#define SNAP_RESEND_NS (50ull * 1000 * 1000)
/** A fetch with no progress for this long is abandoned (the engine asks again). */
#define SNAP_GIVE_UP_NS (3ull * 1000 * 1000 * 1000)

/** A snapshot image handed between the apply and paxos stages. */
struct node_image {
	uint64_t slot;
	uint64_t len;  /**< bytes held */
	uint64_t cap;  /**< bytes allocated (a fetch: the image's full size) */
	uint16_t from; /**< node it was fetched from; 0: taken here */
	int8_t status; /**< apply -> paxos: SNAP_TAKEN, SNAP_INSTALLED, SNAP_FAILED */
	uint8_t *data;
};

enum { SNAP_TAKEN = 0, SNAP_INSTALLED = 1, SNAP_FAILED = -1 };

struct node_snap {
	uint64_t every;		   /**< checkpoint period in applied slots; 0: none */
	uint64_t max_bytes;	   /**< largest image a fetch accepts */
	struct rte_ring *to_paxos; /**< apply -> paxos: node_image * (taken, installed, failed) */
	struct rte_ring *to_apply; /**< paxos -> apply: node_image * to install */
	/* apply stage */
	uint64_t next_ckpt; /**< applied slot that triggers the next checkpoint */
	/* paxos stage */
	struct node_image *serving; /**< newest image, served to peers */
	struct node_image *fetch;   /**< being received; NULL when none */
	uint16_t fetch_from;
	uint64_t fetch_want; /**< slot the image must cover */
	uint64_t fetch_resend_ns, fetch_give_up_ns, fetch_start_ns;
	bool installing; /**< a fetched image is with the apply stage */
};

static void put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void image_free(struct node_image *img)
{
	if (img != NULL) {
		free(img->data);
		free(img);
	}
}

static int image_reserve(struct node_image *img, uint64_t want)
{
	if (want <= img->cap)
		return 0;
	uint64_t cap = img->cap ? img->cap : 64u << 10;
	while (cap < want)
		cap *= 2;
	uint8_t *d = realloc(img->data, cap);
	if (d == NULL)
		return -ENOMEM;
	img->data = d;
	img->cap = cap;
	return 0;
}

static int image_sink(const void *buf, size_t len, void *ctx)
{
	struct node_image *img = ctx;
	if (image_reserve(img, img->len + len) != 0)
		return -ENOMEM;
	memcpy(img->data + img->len, buf, len);
	img->len += len;
	return 0;
}

/* Apply stage: an image of the store and state machine at the applied slot. */
static void snap_checkpoint(struct zap_node *n)
{
	struct node_snap *s = n->snap;
	if (s->every == 0 || n->applied_slot < s->next_ckpt || zap_node_stop)
		return;
	if (rte_ring_count(s->to_paxos) >= SNAP_RING_SLOTS / 2)
		return; /* the paxos stage is behind: take it after a later slot */
	s->next_ckpt = n->applied_slot + s->every;
	struct node_image *img = calloc(1, sizeof(*img));
	int rc = img != NULL ? image_reserve(img, SNAP_HDR_BYTES) : -ENOMEM;
	if (rc == 0) {
		img->len = SNAP_HDR_BYTES;
		img->slot = n->applied_slot;
		rc = zap_store_snapshot_write(n->store, image_sink, img);
	}
	uint64_t store_bytes = rc == 0 ? img->len - SNAP_HDR_BYTES : 0;
	if (rc == 0)
		rc = zap_txn_sm_snapshot_write(n->sm, image_sink, img);
	if (rc == 0) {
		put_le(img->data, SNAP_MAGIC, 4);
		put_le(img->data + 4, SNAP_VERSION, 4);
		put_le(img->data + 8, img->slot, 8);
		put_le(img->data + 16, store_bytes, 8);
		put_le(img->data + 24, img->len - SNAP_HDR_BYTES - store_bytes, 8);
		img->status = SNAP_TAKEN;
		if (rte_ring_enqueue(s->to_paxos, img) != 0)
			rc = -ENOBUFS;
	}
	if (rc != 0) {
		if (n->cnt.checkpoint_errors++ == 0)
			fprintf(stderr,
				"zapd: node %u: checkpoint at slot %" PRIu64 " failed: %s\n", n->id,
				n->applied_slot, strerror(-rc));
		image_free(img);
		return;
	}
	n->cnt.checkpoints++;
}

/* Apply stage: load a fetched image into the (empty) store and state machine. */
static int snap_load(struct zap_node *n, struct node_image *img)
{
	const uint8_t *d = img->data;
	if (img->len < SNAP_HDR_BYTES || zap_snap_le32(d) != SNAP_MAGIC)
		return -EBADMSG;
	if (zap_snap_le32(d + 4) != SNAP_VERSION)
		return -ENOTSUP;
	uint64_t slot = zap_snap_le64(d + 8), sb = zap_snap_le64(d + 16),
		 mb = zap_snap_le64(d + 24);
	if (slot != img->slot || sb > img->len - SNAP_HDR_BYTES ||
	    mb != img->len - SNAP_HDR_BYTES - sb)
		return -EBADMSG;
	if (n->applied_slot != 0 || zap_store_last_tid(n->store) != 0 ||
	    zap_txn_sm_applied_index(n->sm) != 0)
		return -EEXIST; /* only an empty node installs a snapshot */
	int rc = zap_store_snapshot_load(n->store, d + SNAP_HDR_BYTES, sb);
	if (rc != 0)
		return rc; /* the store is still empty */
	rc = zap_txn_sm_snapshot_load(n->sm, d + SNAP_HDR_BYTES + sb, mb);
	if (rc != 0) {
		/* the store holds the snapshot, the state machine does not */
		fprintf(stderr,
			"zapd: node %u: state machine snapshot of slot %" PRIu64
			" does not load (%s) after its store did; stopping\n",
			n->id, slot, strerror(-rc));
		zap_node_stop = 1;
		return rc;
	}
	__atomic_store_n(&n->applied_slot, slot, __ATOMIC_RELEASE);
	n->snap->next_ckpt = slot + n->snap->every;
	return 0;
}

static void snap_install(struct zap_node *n, bool *work)
{
	struct node_image *img;
	while (rte_ring_dequeue(n->snap->to_apply, (void **)&img) == 0) {
		*work = true;
		int rc = snap_load(n, img);
		if (rc == 0) {
			n->cnt.snapshots_installed++;
			img->status = SNAP_INSTALLED;
			fprintf(stderr,
				"zapd: node %u: installed snapshot of slot %" PRIu64 " (%" PRIu64
				" bytes, last tid %016" PRIx64 ") from node %u\n",
				n->id, img->slot, img->len, zap_store_last_tid(n->store),
				img->from);
		} else {
			n->cnt.snapshot_install_errors++;
			img->status = SNAP_FAILED;
			fprintf(stderr,
				"zapd: node %u: snapshot of slot %" PRIu64
				" from node %u not installed: %s\n",
				n->id, img->slot, img->from,
				rc == -EEXIST ? "this node's state is not empty" : strerror(-rc));
		}
		if (rte_ring_enqueue(n->snap->to_paxos, img) != 0) {
			/* cannot happen: checkpoints leave half the ring free */
			image_free(img);
			zap_node_stop = 1;
		}
	}
}

/* Paxos stage: ask node `to` for its image covering `slot`, from byte `offset`. */
static void snap_request(struct zap_node *n, uint64_t now, uint16_t to, uint64_t slot,
			 uint64_t offset)
{
	struct zap_paxos_msg m = {.type = ZAP_WIRE_TYPE_SNAP_REQ,
				  .from = n->id,
				  .to = to,
				  .slot = slot,
				  .offset = offset};
	paxos_send(n, &m);
	n->cnt.snap_requests++;
	n->snap->fetch_resend_ns = now + SNAP_RESEND_NS;
}

static void snap_fetch_start(struct zap_node *n, uint64_t now, uint16_t from, uint64_t slot)
{
	struct node_snap *s = n->snap;
	if (s->installing || from == 0 || from == n->id)
		return;
	if (__atomic_load_n(&n->applied_slot, __ATOMIC_ACQUIRE) != 0) {
		/* only an empty node installs one (snap_load): fetching is pointless */
		if (n->cnt.snap_refused++ == 0)
			fprintf(stderr,
				"zapd: node %u: node %u has compacted the slots this node lacks "
				"(snapshot of slot %" PRIu64
				" needed), but a snapshot installs only "
				"into an empty node: restart it with an empty log directory\n",
				n->id, from, slot);
		return;
	}
	if (s->fetch != NULL) {
		if (s->fetch_from == from && s->fetch_want >= slot)
			return; /* already under way */
		image_free(s->fetch);
	}
	s->fetch = calloc(1, sizeof(*s->fetch));
	if (s->fetch == NULL)
		return; /* the engine asks again */
	s->fetch->from = from;
	s->fetch_from = from;
	s->fetch_want = slot;
	s->fetch_start_ns = now;
	s->fetch_give_up_ns = now + SNAP_GIVE_UP_NS;
	n->cnt.snap_fetches++;
	fprintf(stderr,
		"zapd: node %u: fetching a snapshot covering slot %" PRIu64 " from node %u\n",
		n->id, slot, from);
	snap_request(n, now, from, slot, 0);
}

static void snap_tick(struct zap_node *n, uint64_t now)
{
	struct node_snap *s = n->snap;
	if (s->fetch == NULL)
		return;
	if (now >= s->fetch_give_up_ns) {
		fprintf(stderr,
			"zapd: node %u: snapshot fetch from node %u stalled at byte %" PRIu64
			"; abandoned\n",
			n->id, s->fetch_from, s->fetch->len);
		image_free(s->fetch);
		s->fetch = NULL;
		return;
	}
	if (now >= s->fetch_resend_ns)
		snap_request(n, now, s->fetch_from, s->fetch_want, s->fetch->len);
}

/* Paxos stage: answer a SNAP_REQ with up to SNAP_WINDOW chunks of the image. */
static void snap_serve(struct zap_node *n, const struct zap_paxos_msg *m)
{
	const struct node_image *img = n->snap->serving;
	if (img == NULL || img->slot < m->slot || m->offset >= img->len) {
		n->cnt.snap_req_drops++;
		return;
	}
	uint64_t chunk = zap_wire_max_payload(n->paxos_wire);
	struct zap_paxos_msg c = {.type = ZAP_WIRE_TYPE_SNAP_CHUNK,
				  .from = n->id,
				  .to = m->from,
				  .slot = img->slot,
				  .value_len = img->len};
	uint64_t off = m->offset;
	for (unsigned i = 0; i < SNAP_WINDOW && off < img->len; i++) {
		uint64_t len = img->len - off < chunk ? img->len - off : chunk;
		c.offset = off;
		c.payload = img->data + off;
		c.len = (uint32_t)len;
		c.flags = i + 1 == SNAP_WINDOW || off + len == img->len ? ZAP_PAXOS_FLAG_LAST : 0;
		paxos_send(n, &c);
		n->cnt.snap_chunks_tx++;
		off += len;
	}
	if (off == img->len) {
		n->cnt.snapshots_sent++;
		fprintf(stderr,
			"zapd: node %u: sent snapshot of slot %" PRIu64 " (%" PRIu64
			" bytes) to node %u\n",
			n->id, img->slot, img->len, m->from);
	}
}

/* Paxos stage: one chunk of the image being fetched (in order only). */
static void snap_chunk(struct zap_node *n, uint64_t now, const struct zap_paxos_msg *m)
{
	struct node_snap *s = n->snap;
	struct node_image *f = s->fetch;
	if (f == NULL || m->from != s->fetch_from || m->slot < s->fetch_want || m->len == 0 ||
	    m->value_len < SNAP_HDR_BYTES || m->value_len > s->max_bytes ||
	    m->offset > m->value_len || m->len > m->value_len - m->offset) {
		n->cnt.snap_chunk_drops++;
		return;
	}
	if (m->slot != f->slot || m->value_len != f->cap) {
		/* another image (the peer took a newer one): start it from its first byte */
		if (m->offset != 0) {
			n->cnt.snap_chunk_drops++;
			if (m->flags & ZAP_PAXOS_FLAG_LAST) {
				f->len = 0;
				snap_request(n, now, s->fetch_from, s->fetch_want, 0);
			}
			return;
		}
		uint8_t *d = realloc(f->data, m->value_len);
		if (d == NULL) {
			n->cnt.snap_chunk_drops++;
			return;
		}
		f->data = d;
		f->cap = m->value_len;
		f->slot = m->slot;
		f->len = 0;
	}
	if (m->offset != f->len) {
		n->cnt.snap_chunk_drops++; /* a gap or a repeat: ask again from where we stand */
		if (m->flags & ZAP_PAXOS_FLAG_LAST)
			snap_request(n, now, s->fetch_from, s->fetch_want, f->len);
		return;
	}
	memcpy(f->data + f->len, m->payload, m->len);
	f->len += m->len;
	n->cnt.snap_chunks_rx++;
	s->fetch_give_up_ns = now + SNAP_GIVE_UP_NS;
	if (f->len == f->cap) {
		fprintf(stderr,
			"zapd: node %u: fetched snapshot of slot %" PRIu64 " (%" PRIu64
			" bytes) from node %u in %" PRIu64 " ms\n",
			n->id, f->slot, f->len, f->from, (now - s->fetch_start_ns) / 1000000);
		s->fetch = NULL;
		if (rte_ring_enqueue(s->to_apply, f) != 0) {
			image_free(f);
			return;
		}
		s->installing = true;
		return;
	}
	if (m->flags & ZAP_PAXOS_FLAG_LAST)
		snap_request(n, now, s->fetch_from, s->fetch_want, f->len);
}

static void snap_rx(struct zap_node *n, uint64_t now, const struct zap_paxos_msg *m)
{
	if (m->type == ZAP_WIRE_TYPE_SNAP_REQ)
		snap_serve(n, m);
	else
		snap_chunk(n, now, m);
}

/*
 * Paxos stage: a copy of the image to the log stage, which writes it to the
 * checkpoint file, appends the current promise again and drops the segments
 * the image covers (log_checkpoint). Skipped (counted) when no buffer or
 * ring slot is free: the next checkpoint writes a newer one.
 */
static void snap_persist(struct zap_node *n, const struct node_image *img)
{
	struct node_buf *b = img->len <= UINT32_MAX ? zap_node_buf_get(n, img->len) : NULL;
	if (b == NULL) {
		n->cnt.checkpoint_file_skips++;
		return;
	}
	struct zap_paxos_stats ps;
	zap_paxos_stats(n->px, &ps);
	b->kind = NODE_BUF_CHECKPOINT;
	b->rec_type = ZAP_LOG_PROMISE;
	b->len = (uint32_t)img->len;
	b->slot = img->slot;
	b->ballot = ps.ballot;
	b->token = 0;
	memcpy(b->data, img->data, img->len);
	if (rte_ring_enqueue(n->persist_ring, b) != 0) {
		zap_node_buf_put(n, b);
		n->cnt.checkpoint_file_skips++;
	}
}

/*
 * Log stage: the checkpoint file (written aside, synced, renamed over the
 * old one, directory synced; no syncs in memory mode), then the promise
 * again in a record at slot + 1, one sync, and the segments whose records
 * all lie at or below the image's slot go. A file that cannot be written
 * leaves the log whole (counted, one message); @return only log errors.
 */
static int log_checkpoint(struct zap_node *n, const struct node_buf *b)
{
	int rc = snap_file_write(n, b->data, b->len);
	if (rc != 0) {
		if (n->cnt.checkpoint_file_errors++ == 0)
			fprintf(stderr,
				"zapd: node %u: checkpoint file of slot %" PRIu64
				" not written: %s; the log keeps every segment\n",
				n->id, b->slot, strerror(-rc));
		return 0;
	}
	n->cnt.checkpoint_files++;
	rc = zap_log_append(n->log, ZAP_LOG_PROMISE, b->slot + 1, b->ballot, NULL, 0, NULL);
	if (rc == 0)
		rc = zap_log_sync(n->log);
	if (rc != 0)
		return rc;
	n->cnt.log_syncs++;
	n->log_pending = 0;
	n->log_synced_token = n->log_appended_token;
	rc = zap_log_drop_before(n->log, b->slot + 1);
	if (rc < 0)
		return rc;
	n->cnt.segments_dropped += (uint64_t)rc;
	return 0;
}

/*
 * Paxos stage: images from the apply stage. A checkpoint is served and lets
 * the engine drop values one period older; an installed image is served and
 * reported to the engine. @return -EAGAIN when an engine output is held.
 */
static int snap_from_apply(struct zap_node *n, uint64_t now, bool *work)
{
	struct node_snap *s = n->snap;
	struct node_image *img;
	while (rte_ring_dequeue(s->to_paxos, (void **)&img) == 0) {
		*work = true;
		if (img->status == SNAP_FAILED) {
			s->installing = false;
			image_free(img);
			continue;
		}
		if (img->status == SNAP_INSTALLED) {
			s->installing = false;
			zap_paxos_snapshot_installed(n->px, now, img->slot);
		} else if (img->slot > s->every) {
			zap_paxos_compact(n->px, img->slot - s->every);
		}
		if (s->serving == NULL || img->slot > s->serving->slot) {
			snap_persist(n, img);
			image_free(s->serving);
			s->serving = img;
		} else {
			image_free(img);
		}
		if (paxos_drain(n) != 0)
			return -EAGAIN;
	}
	return 0;
}

/* The checkpoint file of this node's log directory. */
static int snap_path(const struct zap_node *n, char *buf, size_t cap, const char *suffix)
{
	int len = snprintf(buf, cap, "%s/checkpoint.zsnap%s", n->self->log_dir, suffix);
	return len < 0 || (size_t)len >= cap ? -ENAMETOOLONG : 0;
}

static int write_all(int fd, const uint8_t *p, uint64_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
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

static int snap_file_write(struct zap_node *n, const uint8_t *data, uint64_t len)
{
	char tmp[4096], path[4096];
	int rc = snap_path(n, tmp, sizeof(tmp), ".tmp");
	if (rc == 0)
		rc = snap_path(n, path, sizeof(path), "");
	if (rc != 0)
		return rc;
	bool sync = n->cfg->log.durability != ZAP_DURABILITY_MEMORY;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, data, len);
	if (rc == 0 && sync && fdatasync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0) {
		unlink(tmp);
		return rc;
	}
	if (sync) {
		int dfd = open(n->self->log_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return -errno;
		rc = fsync(dfd) != 0 ? -errno : 0;
		close(dfd);
	}
	return rc;
}

int zap_node_snap_restore(struct zap_node *n)
{
	char path[4096];
	int rc = snap_path(n, path, sizeof(path), "");
	if (rc != 0)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	struct node_image *img = calloc(1, sizeof(*img));
	off_t size = lseek(fd, 0, SEEK_END);
	rc = img == NULL ? -ENOMEM : size < 0 ? -errno : 0;
	if (rc == 0 && (uint64_t)size < SNAP_HDR_BYTES)
		rc = -EBADMSG;
	if (rc == 0)
		rc = image_reserve(img, (uint64_t)size);
	for (uint64_t off = 0; rc == 0 && off < (uint64_t)size;) {
		ssize_t r = pread(fd, img->data + off, (uint64_t)size - off, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			rc = r < 0 ? -errno : -EBADMSG;
		else
			off += (uint64_t)r;
	}
	close(fd);
	if (rc == 0) {
		img->len = (uint64_t)size;
		img->slot = zap_snap_le64(img->data + 8);
		rc = snap_load(n, img);
	}
	if (rc != 0) {
		fprintf(stderr, "zapd: node %u: checkpoint %s: %s\n", n->id, path, strerror(-rc));
		image_free(img);
		return rc;
	}
	fprintf(stderr,
		"zapd: node %u: loaded checkpoint of slot %" PRIu64 " (%" PRIu64
		" bytes, last tid %016" PRIx64 ") from %s\n",
		n->id, img->slot, img->len, zap_store_last_tid(n->store), path);
	n->snap->serving = img;
	return 0;
}

int zap_node_snap_init(struct zap_node *n)
{
	struct node_snap *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	n->snap = s;
	const char *env = getenv("ZAPD_CHECKPOINT_SLOTS");
	if (env != NULL && env[0] != '\0') {
		char *end = NULL;
		errno = 0;
		unsigned long long v = strtoull(env, &end, 10);
		if (errno != 0 || *end != '\0' || env[0] == '-' || v > (1ull << 40)) {
			fprintf(stderr, "zapd: ZAPD_CHECKPOINT_SLOTS=%s: not a slot count\n", env);
			return -EINVAL;
		}
		s->every = v;
	}
	s->next_ckpt = s->every;
	s->max_bytes = 2 * n->cfg->store.size_bytes + (64ull << 20);
	char name[RTE_RING_NAMESIZE];
	snprintf(name, sizeof(name), "zap%u_snap_px", n->id);
	s->to_paxos = rte_ring_create(name, SNAP_RING_SLOTS, (int)rte_socket_id(),
				      RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "zap%u_snap_ap", n->id);
	s->to_apply = rte_ring_create(name, SNAP_RING_SLOTS, (int)rte_socket_id(),
				      RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (s->to_paxos == NULL || s->to_apply == NULL) {
		fprintf(stderr, "zapd: snapshot rings: %s\n", rte_strerror(rte_errno));
		return -ENOMEM;
	}
	return 0;
}

void zap_node_snap_free(struct zap_node *n)
{
	struct node_snap *s = n->snap;
	if (s == NULL)
		return;
	struct node_image *img;
	while (s->to_paxos != NULL && rte_ring_dequeue(s->to_paxos, (void **)&img) == 0)
		image_free(img);
	while (s->to_apply != NULL && rte_ring_dequeue(s->to_apply, (void **)&img) == 0)
		image_free(img);
	rte_ring_free(s->to_paxos);
	rte_ring_free(s->to_apply);
	image_free(s->serving);
	image_free(s->fetch);
	free(s);
	n->snap = NULL;
}

/* ------------------------------------------------------------------ loop */

int zap_node_lcore_loop(void *arg)
{
	struct node_lcore *lc = arg;
	struct zap_node *n = lc->n;
	zap_poll_init(&lc->poll, lc->policy, &n->cfg->polling, zap_poll_now_ns());
	while (!zap_node_stop) {
		uint64_t now = zap_poll_now_ns();
		bool work = false;
		if (lc->roles & ZAP_LCORE_ROLE_IO)
			io_stage(n, now, &work);
		if (lc->roles & ZAP_LCORE_ROLE_PAXOS)
			paxos_stage(n, now, &work);
		if (lc->roles & ZAP_LCORE_ROLE_LOG)
			zap_node_log_stage(n, now, &work);
		if (lc->roles & ZAP_LCORE_ROLE_APPLY)
			apply_stage(n, &work);
		zap_poll_execute(zap_poll_next(&lc->poll, now, work));
	}
	return 0;
}
