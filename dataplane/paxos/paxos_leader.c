/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap paxos, proposer side: leadership changes, elections and phase 1
 * (PREPARE; the PROMISE handler is in paxos_msg.c), the leader's proposing
 * loop (phase 2 ACCEPTs, NOP fillers, batches, one CONFIG at a time), its
 * timers (heartbeats, retransmission), the client command queue and the
 * membership change it proposes. It calls down into paxos_value.c and
 * paxos_core.c only; paxos_accept.c and paxos_msg.c call into it.
 * Invariants: paxos.c; protocol: docs/paxos.md.
 *
 * A node campaigns, and becomes leader, only while px_can_lead() holds: it
 * is a member of the configuration governing its first unchosen slot. The
 * leader proposes at most window_slots (<= config_delay_slots) slots past
 * its chosen index, so every slot it proposes has a configuration it knows,
 * and it never proposes a slot whose configuration does not contain it.
 *
 * Threading: the engine's thread only.
 */
#include "paxos_core.h"
#include "base/bytes.h"
#include "log/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- roles */

void px_set_leader(struct zap_paxos *p, uint16_t node, zap_ballot_t b)
{
	if (b > p->max_seen)
		p->max_seen = b;
	if (node == p->leader && b == p->leader_ballot)
		return;
	bool changed = node != p->leader;
	p->leader = node;
	p->leader_ballot = b;
	if (changed) {
		struct px_out *o = px_out_push(p, ZAP_PAXOS_OUT_ROLE);
		if (o) {
			o->o.node = node;
			o->o.ballot = b;
		}
		if (node != 0 && node != p->c.self)
			px_flush_cmds(p);
	}
}

void px_p1_clear(struct zap_paxos *p)
{
	for (unsigned i = 0; i < p->n_track; i++)
		free(p->track[i].got);
	memset(p->track, 0, sizeof(p->track));
	p->n_track = 0;
	for (uint64_t i = 0; i < p->p1_cap; i++)
		free(p->p1[i].val);
	free(p->p1);
	p->p1 = NULL;
	p->p1_cap = 0;
	p->p1_max = 0;
}

static void drop_proposals(struct zap_paxos *p)
{
	for (uint64_t i = 0; i < p->log_cap; i++) {
		struct px_ent *e = &p->log[i];
		free(e->pval);
		e->pval = NULL;
		e->plen = 0;
		e->pballot = 0;
		e->n_acks = 0;
	}
}

void px_step_down(struct zap_paxos *p, zap_ballot_t seen)
{
	if (seen > p->max_seen)
		p->max_seen = seen;
	if (p->role == PX_FOLLOWER)
		return;
	bool was_leader = p->role == PX_LEADER;
	p->role = PX_FOLLOWER;
	px_p1_clear(p);
	drop_proposals(p);
	free(p->cfg_want);
	p->cfg_want = NULL;
	p->cfg_inflight_slot = 0;
	if (was_leader && p->leader == p->c.self)
		px_set_leader(p, 0, 0);
	px_reset_election(p);
}

void px_send_prepare(struct zap_paxos *p, uint16_t to)
{
	struct zap_paxos_msg m = px_msg_base(p, ZAP_PAXOS_MSG_PREPARE);
	m.to = to;
	m.ballot = p->my_ballot;
	m.slot = p->p1_base;
	px_send(p, &m);
}

void px_start_election(struct zap_paxos *p)
{
	uint64_t round = zap_ballot_round(p->max_seen);
	if (zap_ballot_round(p->promised) > round)
		round = zap_ballot_round(p->promised);
	px_p1_clear(p);
	drop_proposals(p);
	p->my_ballot = zap_ballot_make(round + 1, p->c.self);
	p->max_seen = p->my_ballot;
	p->st.elections_started++;
	px_reset_election(p);
	if (p->leader != 0)
		px_set_leader(p, 0, 0);
	p->p1_base = p->chosen_idx + 1;
	if (p->c.break_flags & ZAP_PAXOS_BREAK_SKIP_PHASE1) {
		p->promised = p->my_ballot;
		px_persist(p, ZAP_LOG_PROMISE, 0, p->promised, NULL, 0);
		px_become_leader(p);
		return;
	}
	p->role = PX_CANDIDATE;
	uint16_t nodes[PX_MAX_TRACKED];
	unsigned n = px_all_nodes(p, nodes);
	for (unsigned i = 0; i < n; i++) {
		p->track[p->n_track++].node = nodes[i];
		px_send_prepare(p, nodes[i]);
	}
	p->hb_next_ns = p->now_ns + p->c.heartbeat_ns;
}

void px_become_leader(struct zap_paxos *p)
{
	p->role = PX_LEADER;
	p->st.elections_won++;
	p->next_slot = p->chosen_idx + 1;
	p->commit_sent = p->chosen_idx; /* the first heartbeat carries it */
	if (p->c.break_flags & ZAP_PAXOS_BREAK_IGNORE_PROMISED_VALUES)
		p->p1_max = 0;
	for (unsigned i = 0; i < p->n_track; i++)
		free(p->track[i].got);
	memset(p->track, 0, sizeof(p->track));
	p->n_track = 0;
	px_set_leader(p, p->c.self, p->my_ballot);
	p->hb_next_ns = p->now_ns; /* announce at once */
	px_propose_more(p);
}

/* ---------------------------------------------------------------- leader */

static uint8_t *p1_value(struct zap_paxos *p, uint64_t slot, uint64_t *len)
{
	if (p->p1 && slot >= p->p1_base && slot - p->p1_base < p->p1_cap) {
		struct px_p1 *v = &p->p1[slot - p->p1_base];
		if (v->val && !(p->c.break_flags & ZAP_PAXOS_BREAK_IGNORE_PROMISED_VALUES)) {
			*len = v->len;
			return px_memdup(v->val, v->len);
		}
	}
	return NULL;
}

static uint8_t *make_batch(struct zap_paxos *p, uint64_t *len)
{
	uint64_t bytes = PX_BATCH_HEADER_BYTES;
	uint32_t n = 0;
	while (n < p->cmd_count && n < p->c.batch_count) {
		struct px_cmd *c = &p->cmds[(p->cmd_head + n) % p->c.max_pending_commands];
		uint64_t add = PX_CMD_HEADER_BYTES + (uint64_t)c->len;
		if (bytes + add > p->c.batch_bytes)
			break;
		bytes += add;
		n++;
	}
	if (n == 0)
		return NULL;
	uint8_t *v = malloc(bytes);
	if (v == NULL)
		return NULL;
	v[0] = ZAP_PAXOS_VALUE_BATCH;
	zap_put_le32(v + 1, n);
	uint64_t pos = PX_BATCH_HEADER_BYTES;
	for (uint32_t i = 0; i < n; i++) {
		struct px_cmd *c = &p->cmds[p->cmd_head];
		zap_put_le32(v + pos, c->len);
		memcpy(v + pos + PX_CMD_HEADER_BYTES, c->buf, c->len);
		pos += PX_CMD_HEADER_BYTES + c->len;
		free(c->buf);
		c->buf = NULL;
		p->cmd_head = (p->cmd_head + 1) % p->c.max_pending_commands;
		p->cmd_count--;
	}
	*len = bytes;
	return v;
}

static void send_accept(struct zap_paxos *p, struct px_ent *e, uint64_t slot, uint16_t to)
{
	struct zap_paxos_msg m = px_msg_base(p, ZAP_PAXOS_MSG_ACCEPT);
	m.ballot = p->my_ballot;
	m.slot = slot;
	if (to == 0) {
		px_send_all(p, &m, e->pval, e->plen, true);
		if (m.commit > p->commit_sent)
			p->commit_sent = m.commit;
	} else {
		m.to = to;
		px_send_value(p, m, e->pval, e->plen);
	}
	e->sent_ns = p->now_ns;
}

void px_propose_more(struct zap_paxos *p)
{
	while (p->role == PX_LEADER) {
		if (p->next_slot <= p->chosen_idx)
			p->next_slot = p->chosen_idx + 1;
		uint64_t s = p->next_slot;
		if (s - 1 - p->chosen_idx >= p->c.window_slots)
			break;
		if (!px_cfg_has(px_cfg_for(p, s), p->c.self))
			break;
		struct px_ent *e = px_ent_get(p, s, true);
		if (e == NULL)
			break;
		uint8_t *v = NULL;
		uint64_t len = 0;
		if (s <= p->p1_max) {
			if (e->chosen && e->val) {
				v = px_memdup(e->val, e->len);
				len = e->len;
			} else {
				v = p1_value(p, s, &len);
			}
			if (v == NULL) {
				v = px_memdup((uint8_t[]){ZAP_PAXOS_VALUE_NOP}, 1);
				len = 1;
			}
		} else if (p->cfg_want && p->cfg_inflight_slot == 0 && p->n_cfg == 1) {
			v = p->cfg_want;
			len = p->cfg_want_len;
			p->cfg_want = NULL;
			p->cfg_inflight_slot = s;
		} else if (p->cmd_count > 0) {
			v = make_batch(p, &len);
		}
		if (v == NULL)
			break;
		free(e->pval);
		e->pval = v;
		e->plen = len;
		e->pballot = p->my_ballot;
		e->n_acks = 0;
		p->next_slot++;
		p->st.slots_proposed++;
		send_accept(p, e, s, 0);
	}
}

/* ---------------------------------------------------------------- commands */

bool px_enqueue_cmd(struct zap_paxos *p, const void *cmd, uint32_t len)
{
	if (p->cmd_count >= p->c.max_pending_commands)
		return false;
	uint8_t *b = px_memdup(cmd, len);
	if (b == NULL)
		return false;
	struct px_cmd *c = &p->cmds[(p->cmd_head + p->cmd_count) % p->c.max_pending_commands];
	c->buf = b;
	c->len = len;
	p->cmd_count++;
	return true;
}

void px_flush_cmds(struct zap_paxos *p)
{
	if (p->leader == 0 || p->leader == p->c.self)
		return;
	while (p->cmd_count > 0) {
		struct px_cmd *c = &p->cmds[p->cmd_head];
		struct zap_paxos_msg m = px_msg_base(p, ZAP_PAXOS_MSG_FORWARD);
		m.to = p->leader;
		m.id = ++p->fwd_id;
		px_send_value(p, m, c->buf, c->len);
		free(c->buf);
		c->buf = NULL;
		p->cmd_head = (p->cmd_head + 1) % p->c.max_pending_commands;
		p->cmd_count--;
		p->st.commands_forwarded++;
	}
}

/* ---------------------------------------------------------------- membership */

int px_propose_config(struct zap_paxos *p, const uint16_t *members, unsigned n)
{
	if (p->role != PX_LEADER)
		return -EPERM;
	if (p->cfg_want || p->cfg_inflight_slot || p->n_cfg > 1)
		return -EBUSY;
	if (members == NULL || n == 0 || n > ZAP_PAXOS_MAX_NODES)
		return -EINVAL;
	uint8_t v[2 + 2 * ZAP_PAXOS_MAX_NODES];
	v[0] = ZAP_PAXOS_VALUE_CONFIG;
	v[1] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++)
		zap_put_le16(v + 2 + 2 * i, members[i]);
	if (px_validate_value(v, 2 + 2ull * n) != ZAP_PAXOS_VALUE_CONFIG)
		return -EINVAL;
	/* exactly one node added or removed, so old and new majorities intersect */
	const struct px_cfg *cur = &p->cfg[0];
	unsigned common = 0;
	for (unsigned i = 0; i < n; i++)
		common += px_cfg_has(cur, members[i]);
	bool add_one = common == cur->n && n == cur->n + 1;
	bool remove_one = common == n && n + 1 == cur->n;
	if (!add_one && !remove_one)
		return -EINVAL;
	p->cfg_want = px_memdup(v, 2 + 2ull * n);
	if (p->cfg_want == NULL)
		return -ENOMEM;
	p->cfg_want_len = 2 + 2ull * n;
	px_propose_more(p);
	return 0;
}

/* ---------------------------------------------------------------- timers */

/** HEARTBEAT to every peer, also to the nodes the last change removed. */
static void send_heartbeat(struct zap_paxos *p)
{
	struct zap_paxos_msg m = px_msg_base(p, ZAP_PAXOS_MSG_HEARTBEAT);
	m.ballot = p->my_ballot;
	m.slot = p->next_slot - 1;
	px_send_all(p, &m, NULL, 0, false);
	for (unsigned i = 0; i < p->former.n; i++) {
		m.to = p->former.m[i];
		if (m.to != p->c.self && !px_known_node(p, m.to))
			px_send(p, &m);
	}
	if (m.commit > p->commit_sent)
		p->commit_sent = m.commit;
}

/*
 * End of a step: if the chosen index advanced past what the last broadcast
 * ACCEPT or HEARTBEAT carried, tell the peers now with one HEARTBEAT each,
 * so followers learn chosen slots within one message delay instead of at
 * the next heartbeat. Under load the ACCEPTs of new slots carry it and
 * nothing extra goes out; at most one such HEARTBEAT per peer per step.
 */
void px_notify_commit(struct zap_paxos *p)
{
	if (p->role != PX_LEADER || p->chosen_idx <= p->commit_sent)
		return;
	send_heartbeat(p);
}

/** Leader timers: heartbeats and ACCEPT retransmission. */
void px_leader_tick(struct zap_paxos *p)
{
	if (p->now_ns >= p->hb_next_ns) {
		send_heartbeat(p);
		p->hb_next_ns = p->now_ns + p->c.heartbeat_ns;
		/* retransmit ACCEPTs not answered within a heartbeat */
		for (uint64_t s = p->chosen_idx + 1; s < p->next_slot; s++) {
			struct px_ent *e = px_ent_get(p, s, false);
			if (e == NULL || e->pval == NULL || e->chosen)
				continue;
			if (p->now_ns - e->sent_ns < p->c.heartbeat_ns)
				continue;
			uint16_t nodes[PX_MAX_TRACKED];
			unsigned n = px_all_nodes(p, nodes);
			for (unsigned i = 0; i < n; i++) {
				bool acked = false;
				for (unsigned k = 0; k < e->n_acks; k++)
					acked |= e->acks[k] == nodes[i];
				if (!acked && nodes[i] != p->c.self)
					send_accept(p, e, s, nodes[i]);
			}
		}
	}
}
