/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap node stages: io -> paxos -> log -> apply, each a function that does one
 * bounded round of work, joined by rte_rings (node_core.h lists them).
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
 * snapshots"): when log.checkpoint_* says (slots, bytes, seconds) the apply stage
 * writes the store and the state machine into one image in memory and hands
 * it to the paxos stage, which keeps it to serve, lets the engine drop the
 * values of the slots one period older, and has the log stage write it to
 * the checkpoint file and drop the segments it covers. A node told
 * SNAPSHOT_NEEDED fetches a peer's image in chunks (wire types SNAP_REQ /
 * SNAP_CHUNK, handled by the paxos stage outside the engine: node_snap.c
 * queues the messages, the paxos stage sends them), the apply stage loads it
 * into its empty store and state machine, and the engine hears
 * zap_paxos_snapshot_installed().
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

#include "node_core.h"

#include "base/bytes.h"
#include "txn/entry.h"

/* ------------------------------------------------------------------ io */

#define NODE_ETHERTYPE_ARP 0x0806u
/** An Ethernet header's bytes, and where its EtherType lies. */
#define NODE_ETH_HDR_BYTES 14u
#define NODE_ETH_TYPE_OFF 12u

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

/*
 * Send what the paxos stage queued, on every port, and ring the peers.
 * Frames a port does not take (its peer's ring is full: the peer is behind
 * or descheduled) are kept, in order, and offered first at the next
 * flushes; only after NODE_TX_TRIES flushes without room are they dropped
 * (counted), so a peer that is gone does not hold the port.
 */
static void io_flush_tx(struct zap_node *n, bool *work)
{
	for (unsigned pi = 0; pi < n->n_ports; pi++) {
		struct rte_mbuf **pend = n->tx_pend[pi];
		unsigned np = n->tx_pend_n[pi];
		if (np > 0) {
			uint16_t sent = zap_port_tx_burst(&n->ports[pi], pend, (uint16_t)np);
			n->cnt.tx_frames += sent;
			if (sent > 0)
				zap_bell_ring(&n->peer_bell[pi]);
			memmove(pend, pend + sent, (np - sent) * sizeof(pend[0]));
			np -= sent;
			*work = true;
			if (np > 0 && ++n->tx_pend_tries[pi] < NODE_TX_TRIES) {
				n->tx_pend_n[pi] = np;
				continue; /* in order: nothing new before these */
			}
			for (unsigned i = 0; i < np; i++) {
				n->cnt.tx_full_drops++;
				rte_pktmbuf_free(pend[i]);
			}
			n->tx_pend_n[pi] = 0;
			n->tx_pend_tries[pi] = 0;
		}
		struct rte_mbuf *tx[NODE_BURST];
		unsigned nt = rte_ring_dequeue_burst(n->tx_ring[pi], (void **)tx, NODE_BURST, NULL);
		if (nt == 0)
			continue;
		uint16_t sent = zap_port_tx_burst(&n->ports[pi], tx, (uint16_t)nt);
		n->cnt.tx_frames += sent;
		if (sent > 0)
			zap_bell_ring(&n->peer_bell[pi]);
		memcpy(pend, tx + sent, (nt - sent) * sizeof(pend[0]));
		n->tx_pend_n[pi] = nt - sent;
		n->tx_pend_tries[pi] = 0;
		*work = true;
	}
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
			if (len >= NODE_ETH_HDR_BYTES &&
			    zap_get_be16(d + NODE_ETH_TYPE_OFF) == NODE_ETHERTYPE_ARP) {
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
			if (put > 0)
				node_ring(n->bell_paxos, n->bell_io);
		}
		if (got > 0)
			*work = true;
	}
	io_flush_tx(n, work);
	if (now >= n->next_link_check_ns) {
		n->next_link_check_ns = now + NODE_LINK_CHECK_NS;
		for (unsigned pi = 0; pi < n->n_ports; pi++) {
			bool relinked = zap_port_link_check(&n->ports[pi], now) == 1;
			n->cnt.relinks += relinked;
			zap_node_bells_retry(n, pi, relinked);
		}
	}
}

/* ------------------------------------------------------------------ paxos */

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
	node_ring(n->bell_io, n->bell_paxos);
	n->cnt.sends++;
}

/* Send what node_snap.c queued during the last call into it. */
static void paxos_send_snap(struct zap_node *n)
{
	const struct zap_paxos_msg *m;
	while ((m = node_snap_out_next(n)) != NULL)
		paxos_send(n, m);
	while ((m = zap_node_blobs_out_next(n)) != NULL)
		paxos_send(n, m);
	while ((m = zap_node_settings_out_next(n)) != NULL)
		paxos_send(n, m);
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
	node_ring(ring == n->persist_ring ? n->bell_log : n->bell_apply, n->bell_paxos);
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
		node_snap_fetch_start(n, zap_poll_now_ns(), o->node, o->slot);
		paxos_send_snap(n);
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
	if (len < ENTRY_OFF_CLOCK + 8 || zap_get_le16(e + ENTRY_OFF_NODE) != n->id)
		return 0;
	uint8_t t = e[ENTRY_OFF_TYPE];
	if (t != ZAP_ENTRY_ONESHOT && t != ZAP_ENTRY_PREPARE && t != ZAP_ENTRY_COMMIT)
		return 0;
	uint64_t v = zap_get_le64(e + ENTRY_OFF_CLOCK);
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
	node_snap_tick(n, now);
	zap_node_blobs_tick(n, now);
	zap_node_settings_tick(n, now);
	paxos_send_snap(n);
	while (node_snap_from_apply(n, now, work) == 1)
		if (paxos_drain(n) != 0)
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
		if (r->msg.type == ZAP_WIRE_TYPE_SETTINGS) {
			zap_node_settings_rx(n, &r->msg);
			paxos_send_snap(n);
		} else if (!zap_node_settings_allow(n, r->msg.from)) {
			n->cnt.settings_drops++; /* not seen agreeing on the settings yet */
		} else if (r->msg.type == ZAP_WIRE_TYPE_SNAP_REQ ||
		    r->msg.type == ZAP_WIRE_TYPE_SNAP_CHUNK) {
			node_snap_rx(n, now, &r->msg);
			paxos_send_snap(n);
		} else if (r->msg.type == ZAP_WIRE_TYPE_BLOB_REQ ||
			   r->msg.type == ZAP_WIRE_TYPE_BLOB_CHUNK) {
			zap_node_blobs_rx(n, now, &r->msg);
			paxos_send_snap(n);
		} else {
			zap_paxos_receive(n->px, now, &r->msg);
		}
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
	    rte_ring_enqueue_elem(n->token_ring, &n->log_synced_token, sizeof(uint64_t)) == 0) {
		n->log_reported_token = n->log_synced_token;
		node_ring(n->bell_paxos, n->bell_log);
	}
}

void zap_node_log_stage(struct zap_node *n, uint64_t now, bool *work)
{
	if (n->cnt.log_errors > 0)
		return;
	int drc = node_snap_log_done(n); /* a checkpoint file written beside the stage */
	if (drc != 0) {
		log_fail(n, "checkpoint", drc);
		return;
	}
	struct node_buf *bufs[NODE_BURST];
	unsigned got = rte_ring_dequeue_burst(n->persist_ring, (void **)bufs, NODE_BURST, NULL);
	for (unsigned i = 0; i < got; i++) {
		struct node_buf *b = bufs[i];
		int rc = b->kind == NODE_BUF_CHECKPOINT
			     ? node_snap_log_checkpoint(n, b)
			     : zap_log_append(n->log, b->rec_type, b->slot, b->ballot, b->data,
					      b->len, NULL);
		if (rc != 0) {
			log_fail(n, b->kind == NODE_BUF_CHECKPOINT ? "checkpoint" : "append", rc);
			for (; i < got; i++)
				zap_node_buf_put(n, bufs[i]);
			return;
		}
		if (b->kind == NODE_BUF_CHECKPOINT)
			continue; /* the checkpoint writer has it now */
		if (n->log_group.pending++ == 0)
			n->log_group.opened_ns = now;
		n->log_appended_token = b->token;
		n->cnt.log_appends++;
		zap_node_buf_put(n, b);
	}
	if (got > 0)
		*work = true;
	if (n->log_group.pending > 0) {
		const struct zap_log_config *lc = &n->cfg->log;
		*work = true; /* keep the loop awake while a group is open */
		if (zap_log_group_due(&n->log_group, now, lc->group_commit_max,
				      (uint64_t)lc->group_commit_us * 1000)) {
			uint64_t t0 = zap_poll_now_ns();
			int rc = zap_log_sync(n->log);
			if (rc != 0) {
				log_fail(n, "sync", rc);
				return;
			}
			n->log_group.last_end_ns = zap_poll_now_ns();
			lat_since(&n->lat[NODE_LAT_FSYNC], t0, n->log_group.last_end_ns);
			n->cnt.log_syncs++;
			n->log_group.pending = 0;
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

static void result_push(struct zap_node *n, struct node_result *r)
{
	if (rte_ring_enqueue_elem(n->result_ring, r, sizeof(*r)) != 0)
		n->cnt.result_ring_full_drops++; /* the client resends; the session answers */
	else
		zap_bell_ring(&n->client_bell);
}

static void apply_emit(const struct zap_txn_result *r, void *ctx)
{
	struct zap_node *n = ctx;
	/* PAYLOAD chunks answer their proposer's client service (its node id
	 * is the payload id's top byte), which paces and resends them */
	bool own_payload = r->entry_type == ZAP_ENTRY_PAYLOAD && (r->txn_id >> 56) == n->id;
	if (r->entry_type == ZAP_ENTRY_PACK && r->status == ZAP_TXN_OK)
		n->blob_sweep_due = true; /* swept once the entry is applied */
	if ((r->client_id == 0 && !own_payload) || r->status == ZAP_TXN_WAITING)
		return;
	struct node_result o = {
	    .applied_ns = wall_now_ns(),
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
			if (rc == -ENOMEM || rc == -EIO) {
				n->cnt.apply_errors++;
				fprintf(stderr,
					"zapd: node %u: %s applying slot %" PRIu64 "; stopping\n",
					n->id,
					rc == -EIO ? "cannot write a blob to the blob area "
						     "(disk full or failing)"
						   : "out of memory",
					slot);
				zap_node_stop = 1;
				return;
			}
			if (rc == -EALREADY)
				n->cnt.apply_errors++;
			if (n->blob_sweep_due)
				zap_node_blobs_sweep(n);
			const uint8_t *e = cmd;
			if (cmd_len >= ENTRY_OFF_CLOCK + 8 && e[ENTRY_OFF_TYPE] == ZAP_ENTRY_NOP &&
			    zap_get_le16(e + ENTRY_OFF_NODE) == n->id) {
				struct node_result b = {.seq = zap_get_le64(e + ENTRY_OFF_CLOCK),
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

static void apply_stage(struct zap_node *n, bool *work)
{
	node_snap_install(n, work);
	struct node_buf *bufs[NODE_BURST];
	unsigned got = rte_ring_dequeue_burst(n->chosen_ring, (void **)bufs, NODE_BURST, NULL);
	for (unsigned i = 0; i < got; i++) {
		/* slots a snapshot installed already cover */
		if (bufs[i]->slot > n->applied_slot) {
			apply_value(n, bufs[i]->slot, bufs[i]->data, bufs[i]->len);
			node_snap_checkpoint(n, bufs[i]->len);
		}
		zap_node_buf_put(n, bufs[i]);
	}
	if (got > 0) {
		zap_store_reclaim(n->store);
		zap_bell_ring(&n->zeo_bell); /* new commits for the ZEO clients */
		*work = true;
	}
}

/* ------------------------------------------------------------------ loop */

int zap_node_lcore_loop(void *arg)
{
	struct node_lcore *lc = arg;
	struct zap_node *n = lc->n;
	zap_poll_init(&lc->poll, lc->policy, &n->cfg->polling, zap_poll_now_ns());
	struct zap_waiter wt = {.bell = &lc->bell, .extra_fd = -1};
	while (!zap_node_stop) {
		uint64_t now = zap_poll_now_ns();
		bool work = false;
		if (lc->roles & ZAP_LCORE_ROLE_IO)
			io_stage(n, now, &work);
		if (lc->roles & ZAP_LCORE_ROLE_PAXOS)
			paxos_stage(n, now, &work);
		/* the messages go out before this loop's log sync, not after it */
		if ((lc->roles & (ZAP_LCORE_ROLE_IO | ZAP_LCORE_ROLE_LOG)) ==
		    (ZAP_LCORE_ROLE_IO | ZAP_LCORE_ROLE_LOG))
			io_flush_tx(n, &work);
		if (lc->roles & ZAP_LCORE_ROLE_LOG)
			zap_node_log_stage(n, now, &work);
		if (lc->roles & ZAP_LCORE_ROLE_APPLY)
			apply_stage(n, &work);
		zap_waiter_step(&wt, zap_poll_next(&lc->poll, now, work));
	}
	return 0;
}
