/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap-sim nodes: one engine + state machine + store per simulated box.
 *
 * Boot (first start, restart after a crash, or a fresh node added by a
 * membership change) makes a new store and state machine, makes an engine,
 * feeds it the durable records of the node's disk with zap_paxos_restore()
 * and starts it with applied slot 0, so the engine emits every chosen value
 * it knows again and the store is rebuilt from the log, as zapd does.
 *
 * Draining takes every output of the engine after each call into it:
 * SEND goes to the network, PERSIST to the disk, CHOSEN is checked and
 * applied to the state machine, ROLE is noted. Results the state machine
 * emits go to the checker and to the clients attached to this node. Nothing
 * calls into an engine while its outputs are drained: clients act from
 * their own timer events.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* Small stores: a run commits a few hundred transactions at most. */
#define NODE_STORE_BYTES (8ull << 20)
#define NODE_STORE_RING_SLOTS 256u
#define NODE_STORE_INDEX_SLOTS 64u
#define NODE_MAX_RECORD_BYTES 4096u

uint64_t sim_node_wall_ns(const struct sim *s, const struct sim_node *n)
{
	return (uint64_t)((int64_t)(SIM_WALL_BASE_NS + s->now_ns) + n->clock_skew_ns);
}

int sim_node_is_member(const struct sim *s, uint16_t id)
{
	for (unsigned i = 0; i < s->n_members; i++)
		if (s->members[i] == id)
			return 1;
	return 0;
}

struct sim_node *sim_leader(struct sim *s)
{
	struct sim_node *best = NULL;
	for (unsigned i = 0; i < SIM_MAX_NODES; i++) {
		struct sim_node *n = &s->node[i];
		if (!n->live || n->leader != n->id)
			continue;
		if (!best || n->ballot > best->ballot)
			best = n;
	}
	return best;
}

void sim_node_destroy(struct sim_node *n)
{
	if (n->px)
		zap_paxos_destroy(n->px);
	zap_txn_sm_destroy(n->sm);
	if (n->rd)
		zap_store_reader_close(n->rd);
	if (n->store)
		zap_store_close(n->store);
	n->px = NULL;
	n->sm = NULL;
	n->rd = NULL;
	n->store = NULL;
	n->live = 0;
}

static int node_make_state(struct sim *s, struct sim_node *n)
{
	struct zap_store_params sp = {
	    .size_bytes = NODE_STORE_BYTES,
	    .max_record_bytes = NODE_MAX_RECORD_BYTES,
	    .index_initial_slots = NODE_STORE_INDEX_SLOTS,
	    .txn_ring_slots = NODE_STORE_RING_SLOTS,
	    .max_process_readers = 2,
	    .max_thread_readers = 2,
	};
	int rc = zap_store_create(&sp, &n->store);
	if (rc == 0)
		rc = zap_store_reader_open(n->store, &n->rd);
	struct zap_txn_params tp = {
	    .max_record_bytes = NODE_MAX_RECORD_BYTES,
	    .max_sessions = 64,
	    .max_prepared = 64,
	    .max_txn_objects = 16,
	    .max_text_bytes = 64,
	    .break_flags = s->txn_break,
	};
	if (rc == 0)
		rc = zap_txn_sm_create(&tp, n->store, &n->sm);
	return rc;
}

int sim_node_boot(struct sim *s, struct sim_node *n)
{
	n->gen++;
	n->applied_slot = 0;
	n->last_commit_tid = 0;
	n->acks_checked = 0;
	n->leader = 0;
	n->ballot = 0;
	n->restart_at_ns = 0;
	int rc = node_make_state(s, n);
	if (rc) {
		sim_fail(s, "node %u: store/SM creation failed: %d", n->id, rc);
		sim_node_destroy(n);
		return rc;
	}
	struct zap_paxos_config c = {
	    .self = n->id,
	    .n_members = n->n_boot,
	    .window_slots = s->opt.window_slots,
	    .batch_count = 16,
	    .batch_bytes = 16384,
	    .heartbeat_ns = s->heartbeat_ns,
	    .election_timeout_ns = s->election_timeout_ns,
	    .config_delay_slots = s->config_delay_slots,
	    .datagram_bytes = ZAP_PAXOS_DEFAULT_DATAGRAM_BYTES,
	    .max_pending_commands = 256,
	    .seed = s->seed * 131 + n->id * 7919u + n->gen,
	    .break_flags = s->paxos_break,
	};
	memcpy(c.members, n->boot_members, sizeof(c.members));
	rc = zap_paxos_create(&c, &n->px);
	if (rc) {
		sim_fail(s, "node %u: zap_paxos_create failed: %d", n->id, rc);
		sim_node_destroy(n);
		return rc;
	}
	n->live = 1;
	n->exists = 1;
	for (size_t i = 0; i < n->disk.n; i++) {
		const struct sim_rec *r = &n->disk.recs[i];
		rc = zap_paxos_restore(n->px, r->type, r->slot, r->ballot, r->data, r->len);
		if (rc) {
			sim_fail(s,
				 "node %u: restore of record %zu (type %u slot %" PRIu64
				 ") failed: %d",
				 n->id, i, r->type, r->slot, rc);
			return rc;
		}
	}
	sim_trace(s, TR_RESTART, 0, n->id, 0, n->disk.n, n->gen, 0);
	n->in_engine = 1;
	rc = zap_paxos_start(n->px, s->now_ns, 0);
	n->in_engine = 0;
	if (rc) {
		sim_fail(s, "node %u: zap_paxos_start failed: %d", n->id, rc);
		return rc;
	}
	sim_node_drain(s, n);
	return 0;
}

void sim_node_crash(struct sim *s, struct sim_node *n, const char *why)
{
	if (!n->live)
		return;
	sim_trace(s, TR_CRASH, 0, n->id, 0, n->disk.n, n->disk.synced, why[0]);
	sim_node_destroy(n);
	sim_disk_crash(s, n);
}

/* ------------------------------------------------------------- applying */

struct apply_ctx {
	struct sim *s;
	struct sim_node *n;
};

static void node_emit(const struct zap_txn_result *r, void *ctx)
{
	struct apply_ctx *a = ctx;
	sim_check_result(a->s, a->n, r);
	sim_clients_result(a->s, a->n, r);
}

static void node_apply(struct sim *s, struct sim_node *n, uint64_t slot, const void *data,
		       uint64_t len)
{
	int kind = zap_paxos_value_kind(data, len);
	s->model_driving = slot > s->model_slot;
	if (kind == ZAP_PAXOS_VALUE_BATCH) {
		uint64_t pos = 0;
		const void *cmd;
		uint32_t cmd_len;
		uint64_t i = 0;
		int rc;
		struct apply_ctx a = {s, n};
		while ((rc = zap_paxos_batch_next(data, len, &pos, &cmd, &cmd_len)) == 1) {
			if (i + 1 >= SIM_SLOT_INDEX_SPAN) {
				sim_fail(s, "slot %" PRIu64 ": more than %llu commands", slot,
					 SIM_SLOT_INDEX_SPAN - 2);
				return;
			}
			uint64_t index = slot * SIM_SLOT_INDEX_SPAN + i + 1;
			int arc = zap_txn_sm_apply(n->sm, index, cmd, cmd_len, node_emit, &a);
			if (arc == -ENOMEM || arc == -EALREADY) {
				sim_fail(s, "node %u slot %" PRIu64 ": apply returned %d", n->id,
					 slot, arc);
				return;
			}
			if (s->failed)
				return;
			i++;
		}
		if (rc < 0) {
			sim_fail(s, "node %u slot %" PRIu64 ": malformed BATCH value (%d)", n->id,
				 slot, rc);
			return;
		}
	} else if (kind == ZAP_PAXOS_VALUE_CONFIG) {
		uint16_t m[SIM_MAX_NODES];
		int k = zap_paxos_config_members(data, len, m, SIM_MAX_NODES);
		if (k <= 0) {
			sim_fail(s, "node %u slot %" PRIu64 ": malformed CONFIG value", n->id,
				 slot);
			return;
		}
		if (s->model_driving) {
			memcpy(s->members, m, (size_t)k * sizeof(m[0]));
			s->n_members = (unsigned)k;
			s->config_effective_slot = slot + s->config_delay_slots;
			sim_trace(s, TR_CONFIG, 1, n->id, 0, slot, (uint64_t)k, 0);
		}
	} else if (kind != ZAP_PAXOS_VALUE_NOP) {
		sim_fail(s, "node %u slot %" PRIu64 ": value of unknown kind %d", n->id, slot,
			 kind);
		return;
	}
	n->applied_slot = slot;
	if (s->model_driving)
		s->model_slot = slot;
	s->model_driving = 0;
	sim_check_applied(s, n, slot);
}

static void node_chosen(struct sim *s, struct sim_node *n, const struct zap_paxos_out *o)
{
	sim_trace(s, TR_CHOSEN, 0, n->id, 0, o->slot, o->len, n->applied_slot);
	if (o->slot != n->applied_slot + 1) {
		sim_fail(s,
			 "node %u: CHOSEN slot %" PRIu64 " after applied slot %" PRIu64
			 " (gap or repeat)",
			 n->id, o->slot, n->applied_slot);
		return;
	}
	sim_check_chosen(s, n, o->slot, o->data, o->len);
	if (s->failed)
		return;
	node_apply(s, n, o->slot, o->data, o->len);
}

void sim_node_drain(struct sim *s, struct sim_node *n)
{
	struct zap_paxos_out o;
	while (!s->failed && n->live && zap_paxos_poll(n->px, &o) == 1) {
		switch (o.type) {
		case ZAP_PAXOS_OUT_SEND:
			sim_net_send(s, &o.msg);
			break;
		case ZAP_PAXOS_OUT_PERSIST:
			sim_disk_append(s, n, &o);
			if ((o.rec_type == 1 || o.rec_type == 2) &&
			    sim_rng_ppm(&s->rng, s->crash_after_persist_ppm) && !s->quiet)
				sim_schedule(s, s->now_ns + sim_rng_range(&s->rng, 0, 300000),
					     EV_CRASH, n->id, n->gen, 0, NULL);
			break;
		case ZAP_PAXOS_OUT_CHOSEN:
			node_chosen(s, n, &o);
			break;
		case ZAP_PAXOS_OUT_SNAPSHOT_NEEDED:
			sim_fail(s,
				 "node %u: SNAPSHOT_NEEDED from node %u at slot %" PRIu64
				 " though nothing was compacted",
				 n->id, o.node, o.slot);
			break;
		case ZAP_PAXOS_OUT_ROLE:
			n->leader = o.node;
			n->ballot = o.ballot;
			sim_trace(s, TR_ROLE, 0, n->id, o.node, o.ballot, 0, 0);
			break;
		default:
			sim_fail(s, "node %u: unknown output type %u", n->id, o.type);
			break;
		}
	}
}

void sim_node_tick(struct sim *s, struct sim_node *n)
{
	if (!n->live || zap_paxos_next_deadline(n->px) > s->now_ns)
		return;
	n->in_engine = 1;
	zap_paxos_tick(n->px, s->now_ns);
	n->in_engine = 0;
	sim_node_drain(s, n);
}
