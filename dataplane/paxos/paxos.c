/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap paxos: the Multi-Paxos engine of one node (API in paxos.h, protocol
 * in docs/paxos.md). This file is the engine's face, on top of the
 * others: creation and destruction, restore/start, the entry points that
 * step the engine (tick, receive, submit, persisted, snapshot installed,
 * propose config, compact), the self inbox drained after each step, and
 * the output poll. Below it, paxos_msg.c validates and handles received
 * messages; paxos_accept.c is the acceptor and learner side (answers,
 * durability, chosen-slot delivery, membership, catch-up, snapshots);
 * paxos_leader.c the proposer side (elections, phase 1, proposing, client
 * commands); paxos_core.c the state helpers they all share (configurations,
 * the log array, outputs, sending, persistence requests); paxos_value.c the
 * value codec. Calls only go down that list.
 *
 * Invariants.
 *  - promised only grows (except with ZAP_PAXOS_BREAK_FORGET_PROMISE after
 *    a restart); it is written (PERSIST PROMISE, or PERSIST ACCEPT whose
 *    ballot raises it) before any answer depending on it is sent: answers
 *    wait in `pend` until zap_paxos_persisted() covers their token.
 *  - Every slot <= chosen_idx is chosen and its value is held (or was
 *    compacted, slot <= snap_slot); applied_idx <= chosen_idx and CHOSEN
 *    outputs go out exactly once per slot, in slot order.
 *  - The leader has at most window_slots slots in flight:
 *    next_slot - 1 - chosen_idx <= window_slots <= config_delay_slots, so it
 *    never proposes a slot whose configuration it does not know.
 *  - Only a member of the configuration governing chosen_idx + 1 campaigns
 *    or leads (px_can_lead()).
 *  - cfg[0] governs slot chosen_idx + 1; later entries are changes chosen
 *    but not yet in effect (at most one at a time).
 *  - Messages to this node itself go through `inbox` and are handled after
 *    the current step, so no handler re-enters another.
 *
 * Threading: one thread owns the engine; nothing here is thread-safe.
 */
#include "paxos_core.h"
#include "log/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PX_DEFAULT_WINDOW_SLOTS 64u
#define PX_DEFAULT_BATCH_COUNT 64u
#define PX_DEFAULT_BATCH_BYTES (64u << 10)
#define PX_DEFAULT_HEARTBEAT_NS 50000000ull
#define PX_DEFAULT_ELECTION_NS 500000000ull
#define PX_DEFAULT_MAX_PENDING 4096u
/** Smallest datagram that can carry a useful chunk. */
#define PX_MIN_DATAGRAM_BYTES 64u

/* ---------------------------------------------------------------- inbox */

static void px_drain(struct zap_paxos *p)
{
	if (p->draining)
		return;
	p->draining = true;
	while (p->in_count > 0) {
		struct px_inbox b = p->inbox[p->in_head];
		p->in_head = (p->in_head + 1) % p->in_cap;
		p->in_count--;
		px_handle(p, &b.m);
		free(b.buf);
	}
	px_notify_commit(p); /* sends to peers only: the inbox stays empty */
	p->draining = false;
}

static void px_enter(struct zap_paxos *p, uint64_t now_ns)
{
	free(p->polled_buf);
	p->polled_buf = NULL;
	if (now_ns > p->now_ns)
		p->now_ns = now_ns;
}

/* ---------------------------------------------------------------- API */

int zap_paxos_create(const struct zap_paxos_config *cin, struct zap_paxos **out)
{
	if (cin == NULL || out == NULL)
		return -EINVAL;
	struct zap_paxos_config c = *cin;
	if (c.self == 0 || c.n_members == 0 || c.n_members > ZAP_PAXOS_MAX_NODES)
		return -EINVAL;
	bool self_in = false;
	for (unsigned i = 0; i < c.n_members; i++) {
		if (c.members[i] == 0)
			return -EINVAL;
		for (unsigned j = 0; j < i; j++)
			if (c.members[i] == c.members[j])
				return -EINVAL;
		self_in |= c.members[i] == c.self;
	}
	if (!self_in)
		return -EINVAL;
	if (c.window_slots == 0)
		c.window_slots = PX_DEFAULT_WINDOW_SLOTS;
	if (c.batch_count == 0)
		c.batch_count = PX_DEFAULT_BATCH_COUNT;
	if (c.batch_bytes == 0)
		c.batch_bytes = PX_DEFAULT_BATCH_BYTES;
	if (c.heartbeat_ns == 0)
		c.heartbeat_ns = PX_DEFAULT_HEARTBEAT_NS;
	if (c.election_timeout_ns == 0)
		c.election_timeout_ns = PX_DEFAULT_ELECTION_NS;
	if (c.config_delay_slots < c.window_slots)
		c.config_delay_slots = c.window_slots;
	if (c.datagram_bytes == 0)
		c.datagram_bytes = ZAP_PAXOS_DEFAULT_DATAGRAM_BYTES;
	if (c.max_pending_commands == 0)
		c.max_pending_commands = PX_DEFAULT_MAX_PENDING;
	if (c.datagram_bytes < PX_MIN_DATAGRAM_BYTES || c.batch_bytes < 16 ||
	    c.window_slots > (1u << 20) || c.config_delay_slots > (1u << 24))
		return -EINVAL;
	struct zap_paxos *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->c = c;
	p->max_value_bytes = c.batch_bytes;
	p->span_slots = 4ull * c.window_slots + 2ull * c.config_delay_slots + 64;
	p->rng = c.seed ^ (0x9E3779B97F4A7C15ull * (c.self + 1u));
	if (p->rng == 0)
		p->rng = 1;
	p->log_base = 1;
	p->cfg[0].from_slot = 1;
	p->cfg[0].epoch = 1;
	p->cfg[0].n = c.n_members;
	memcpy(p->cfg[0].m, c.members, sizeof(c.members));
	p->n_cfg = 1;
	p->role = PX_FOLLOWER;
	p->cmds = calloc(c.max_pending_commands, sizeof(*p->cmds));
	p->n_ra = c.window_slots + 16;
	p->ra = calloc(p->n_ra, sizeof(*p->ra));
	if (p->cmds == NULL || p->ra == NULL) {
		zap_paxos_destroy(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

void zap_paxos_destroy(struct zap_paxos *p)
{
	if (p == NULL)
		return;
	for (uint64_t i = 0; i < p->log_cap; i++)
		px_ent_free(&p->log[i]);
	free(p->log);
	px_p1_clear(p);
	free(p->cfg_want);
	free(p->snap_cfg);
	if (p->cmds)
		for (uint32_t i = 0; i < p->c.max_pending_commands; i++)
			free(p->cmds[i].buf);
	free(p->cmds);
	for (size_t i = 0; i < p->out_count; i++)
		free(p->outs[(p->out_head + i) % p->out_cap].buf);
	free(p->outs);
	free(p->polled_buf);
	for (size_t i = 0; i < p->in_count; i++)
		free(p->inbox[(p->in_head + i) % p->in_cap].buf);
	free(p->inbox);
	free(p->pend);
	if (p->ra)
		px_ra_clear(p);
	free(p->ra);
	free(p);
}

int zap_paxos_restore(struct zap_paxos *p, uint8_t rec_type, uint64_t slot, zap_ballot_t ballot,
		      const void *data, uint64_t len)
{
	if (p == NULL || p->started)
		return -EINVAL;
	bool forget = p->c.break_flags & ZAP_PAXOS_BREAK_FORGET_PROMISE;
	switch (rec_type) {
	case ZAP_LOG_PROMISE:
		if (!forget && ballot > p->promised)
			p->promised = ballot;
		break;
	case ZAP_LOG_ACCEPT: {
		if (slot == 0 || px_validate_value(data, len) < 0)
			return -EINVAL;
		struct px_ent *e = px_ent_get(p, slot, true);
		if (e == NULL)
			return slot < p->log_base ? 0 : -EINVAL;
		if (ballot == 0 || !e->chosen) {
			if (ballot != 0 && e->val && ballot < e->vballot)
				break;
			uint8_t *v = px_memdup(data, len);
			if (v == NULL)
				return -ENOMEM;
			free(e->val);
			e->val = v;
			e->len = len;
			if (ballot == 0)
				e->chosen = true;
			else
				e->vballot = ballot;
		}
		if (!forget && ballot > p->promised)
			p->promised = ballot;
		break;
	}
	case ZAP_LOG_CHOSEN:
		if (slot > p->restored_chosen)
			p->restored_chosen = slot;
		break;
	default:
		return -EINVAL;
	}
	if (ballot > p->max_seen)
		p->max_seen = ballot;
	return 0;
}

int zap_paxos_start(struct zap_paxos *p, uint64_t now_ns, uint64_t applied_slot)
{
	if (p == NULL || p->started)
		return -EINVAL;
	px_enter(p, now_ns);
	p->now_ns = now_ns;
	/*
	 * Slots the state machine already holds. With their values all in the
	 * log they stay (this node can still serve them to peers); with a hole
	 * (the driver restarted from a snapshot) they count as compacted.
	 */
	bool whole = p->log_base == 1;
	for (uint64_t s = 1; whole && s <= applied_slot; s++) {
		struct px_ent *e = px_ent_get(p, s, false);
		whole = e != NULL && e->val != NULL;
	}
	if (applied_slot > 0 && !whole) {
		for (uint64_t s = p->log_base; s <= applied_slot && s < p->log_base + p->log_cap;
		     s++) {
			struct px_ent *e = &p->log[s - p->log_base];
			if (e->val && e->val[0] == ZAP_PAXOS_VALUE_CONFIG)
				px_apply_config(p, s, e->val, e->len);
		}
		p->chosen_idx = applied_slot;
		px_cfg_shift(p);
		px_log_drop_through(p, applied_slot);
		p->snap_slot = applied_slot;
	}
	p->applied_idx = applied_slot;
	uint64_t known = applied_slot > p->restored_chosen ? applied_slot : p->restored_chosen;
	for (uint64_t s = p->chosen_idx + 1; s <= known; s++) {
		struct px_ent *e = px_ent_get(p, s, false);
		if (e == NULL || e->val == NULL)
			break; /* a hole: catch up the rest from peers */
		e->chosen = true;
	}
	p->persisted_chosen = p->restored_chosen;
	px_advance(p);
	p->started = true;
	p->max_seen = p->max_seen > p->promised ? p->max_seen : p->promised;
	px_update_removed(p);
	px_reset_election(p);
	px_drain(p);
	return 0;
}

int zap_paxos_tick(struct zap_paxos *p, uint64_t now_ns)
{
	if (p == NULL || !p->started)
		return -EINVAL;
	px_enter(p, now_ns);
	if (p->role == PX_LEADER) {
		px_leader_tick(p);
	} else if (p->role == PX_CANDIDATE) {
		if (p->now_ns >= p->election_deadline_ns) {
			if (px_can_lead(p))
				px_start_election(p);
			else
				px_step_down(p, 0);
		} else if (p->now_ns >= p->hb_next_ns) {
			for (unsigned i = 0; i < p->n_track; i++)
				if (!p->track[i].done)
					px_send_prepare(p, p->track[i].node);
			p->hb_next_ns = p->now_ns + p->c.heartbeat_ns;
		}
	} else if (p->now_ns >= p->election_deadline_ns) {
		if (px_can_lead(p))
			px_start_election(p);
		else
			px_reset_election(p);
	}
	px_drain(p);
	return 0;
}

int zap_paxos_receive(struct zap_paxos *p, uint64_t now_ns, const struct zap_paxos_msg *m)
{
	if (p == NULL)
		return -EINVAL;
	px_enter(p, now_ns);
	p->st.messages_received++;
	if (!p->started) {
		p->st.messages_dropped++;
		return -EINVAL;
	}
	int rc = px_handle(p, m);
	px_drain(p);
	return rc;
}

int zap_paxos_submit(struct zap_paxos *p, uint64_t now_ns, const void *cmd, uint32_t len)
{
	if (p == NULL || (cmd == NULL && len > 0))
		return -EINVAL;
	px_enter(p, now_ns);
	if (len == 0)
		return -EINVAL;
	if ((uint64_t)len + PX_BATCH_HEADER_BYTES + PX_CMD_HEADER_BYTES > p->c.batch_bytes)
		return -EMSGSIZE;
	if (p->leader != 0 && p->leader != p->c.self && p->role != PX_LEADER) {
		struct zap_paxos_msg m = px_msg_base(p, ZAP_PAXOS_MSG_FORWARD);
		m.to = p->leader;
		m.id = ++p->fwd_id;
		px_send_value(p, m, cmd, len);
		p->st.commands_submitted++;
		p->st.commands_forwarded++;
		return 0;
	}
	if (!px_enqueue_cmd(p, cmd, len))
		return -EAGAIN;
	p->st.commands_submitted++;
	px_propose_more(p);
	px_drain(p);
	return 0;
}

int zap_paxos_persisted(struct zap_paxos *p, uint64_t now_ns, uint64_t token)
{
	if (p == NULL)
		return -EINVAL;
	px_enter(p, now_ns);
	int rc = px_pend_run(p, token);
	if (rc < 0)
		return rc;
	px_drain(p);
	return 0;
}

int zap_paxos_propose_config(struct zap_paxos *p, uint64_t now_ns, const uint16_t *members,
			     unsigned n)
{
	if (p == NULL)
		return -EINVAL;
	px_enter(p, now_ns);
	int rc = px_propose_config(p, members, n);
	if (rc < 0)
		return rc;
	px_drain(p);
	return 0;
}

int zap_paxos_compact(struct zap_paxos *p, uint64_t slot)
{
	if (p == NULL)
		return -EINVAL;
	px_enter(p, p->now_ns);
	if (slot > p->applied_idx)
		return -EINVAL;
	if (slot <= p->snap_slot)
		return 0;
	px_log_drop_through(p, slot);
	p->snap_slot = slot;
	return 0;
}

int zap_paxos_snapshot_installed(struct zap_paxos *p, uint64_t now_ns, uint64_t slot)
{
	if (p == NULL)
		return -EINVAL;
	px_enter(p, now_ns);
	if (px_snapshot_install(p, slot))
		px_drain(p);
	return 0;
}

int zap_paxos_poll(struct zap_paxos *p, struct zap_paxos_out *out)
{
	if (p == NULL || out == NULL)
		return 0;
	free(p->polled_buf);
	p->polled_buf = NULL;
	if (p->out_count == 0)
		return 0;
	struct px_out *o = &p->outs[p->out_head];
	p->out_head = (p->out_head + 1) % p->out_cap;
	p->out_count--;
	*out = o->o;
	p->polled_buf = o->buf;
	return 1;
}

uint64_t zap_paxos_next_deadline(const struct zap_paxos *p)
{
	if (p == NULL)
		return UINT64_MAX;
	if (p->role == PX_LEADER)
		return p->hb_next_ns;
	if (p->role == PX_CANDIDATE)
		return p->hb_next_ns < p->election_deadline_ns ? p->hb_next_ns
							       : p->election_deadline_ns;
	return p->election_deadline_ns;
}

void zap_paxos_stats(const struct zap_paxos *p, struct zap_paxos_stats *st)
{
	if (p == NULL || st == NULL)
		return;
	*st = p->st;
	st->chosen_slot = p->chosen_idx;
	st->applied_slot = p->applied_idx;
	st->ballot = p->promised;
	st->leader = p->leader;
	st->epoch = p->cfg[0].epoch;
}

unsigned zap_paxos_members(const struct zap_paxos *p, uint16_t *members)
{
	if (p == NULL)
		return 0;
	if (members)
		memcpy(members, p->cfg[0].m, p->cfg[0].n * sizeof(uint16_t));
	return p->cfg[0].n;
}
