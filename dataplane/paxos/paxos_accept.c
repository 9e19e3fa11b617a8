/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap paxos, acceptor and learner side: answers held until durable
 * (PROMISE, ACCEPTED), chosen-slot delivery in slot order, configurations
 * taking effect config_delay_slots after their slot, catch-up requests and
 * snapshot installation. The PREPARE / ACCEPT / CATCHUP handlers are in
 * paxos_msg.c, above this file; this file calls down into paxos_leader.c
 * (stepping down, proposing more), paxos_value.c and paxos_core.c.
 * Invariants at the top of paxos.c; protocol in docs/paxos.md.
 *
 * An answer that depends on a promise or an accepted value goes out only
 * once the PERSIST carrying it is durable (px_pend_add). cfg[0] always
 * governs chosen_idx + 1: px_advance applies each CONFIG as its slot is
 * chosen and px_cfg_shift retires configurations no longer in force.
 *
 * Threading: the engine's thread only.
 */
#include "paxos_core.h"
#include "base/bytes.h"
#include "log/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- durability */

void px_pend_add(struct zap_paxos *p, uint64_t token, uint8_t kind, uint16_t to, zap_ballot_t b,
		 uint64_t slot)
{
	if (p->c.break_flags & ZAP_PAXOS_BREAK_REPLY_BEFORE_DURABLE) {
		if (kind == PX_PEND_PROMISE)
			px_send_promise(p, to, b, slot);
		else
			px_send_accepted(p, to, b, slot);
		return;
	}
	if (token <= p->durable_token) {
		if (kind == PX_PEND_PROMISE)
			px_send_promise(p, to, b, slot);
		else
			px_send_accepted(p, to, b, slot);
		return;
	}
	if (p->pend_count == p->pend_cap) {
		size_t cap = p->pend_cap ? p->pend_cap * 2 : 64;
		struct px_pend *n = realloc(p->pend, cap * sizeof(*n));
		if (n == NULL)
			return;
		p->pend = n;
		p->pend_cap = cap;
	}
	p->pend[p->pend_count++] = (struct px_pend){token, kind, to, b, slot};
}

int px_pend_run(struct zap_paxos *p, uint64_t token)
{
	if (token > p->next_token)
		token = p->next_token;
	if (token > p->durable_token)
		p->durable_token = token;
	size_t k = 0;
	while (k < p->pend_count && p->pend[k].token <= token)
		k++;
	/* run them in order; handlers may append new entries behind */
	struct px_pend *run = NULL;
	if (k > 0) {
		run = malloc(k * sizeof(*run));
		if (run == NULL)
			return -ENOMEM;
		memcpy(run, p->pend, k * sizeof(*run));
		memmove(p->pend, p->pend + k, (p->pend_count - k) * sizeof(*run));
		p->pend_count -= k;
	}
	for (size_t i = 0; i < k; i++) {
		if (run[i].kind == PX_PEND_PROMISE)
			px_send_promise(p, run[i].to, run[i].ballot, run[i].slot);
		else
			px_send_accepted(p, run[i].to, run[i].ballot, run[i].slot);
	}
	free(run);
	return 0;
}

/* ---------------------------------------------------------------- answers */

void px_send_accepted(struct zap_paxos *p, uint16_t to, zap_ballot_t b, uint64_t slot)
{
	struct zap_paxos_msg m = px_msg_base(p, ZAP_PAXOS_MSG_ACCEPTED);
	m.to = to;
	m.ballot = b;
	m.slot = slot;
	px_send(p, &m);
}

/*
 * PROMISE for ballot b: every value held at slots >= from_slot, each as its
 * own (chunked) sequence; id = (index << 32) | count, so the candidate can
 * tell when it has them all. Chosen values carry FLAG_CHOSEN.
 */
void px_send_promise(struct zap_paxos *p, uint16_t to, zap_ballot_t b, uint64_t from_slot)
{
	if (p->promised != b)
		return; /* promised something higher since: that answer is gone */
	uint64_t first = from_slot > p->log_base ? from_slot : p->log_base;
	uint64_t total = 0, last_slot = 0;
	for (uint64_t s = first; s < p->log_base + p->log_cap; s++) {
		struct px_ent *e = &p->log[s - p->log_base];
		if (e->val) {
			total++;
			last_slot = s;
		}
	}
	struct zap_paxos_msg m = px_msg_base(p, ZAP_PAXOS_MSG_PROMISE);
	m.to = to;
	m.ballot = b;
	if (total == 0) {
		m.flags = ZAP_PAXOS_FLAG_LAST;
		m.slot = from_slot;
		px_send(p, &m);
		return;
	}
	uint64_t idx = 0;
	for (uint64_t s = first; s <= last_slot; s++) {
		struct px_ent *e = &p->log[s - p->log_base];
		if (e->val == NULL)
			continue;
		struct zap_paxos_msg c = m;
		c.slot = s;
		c.vballot = e->vballot;
		c.id = idx << 32 | total;
		c.flags = (uint8_t)((e->chosen ? ZAP_PAXOS_FLAG_CHOSEN : 0) |
				    (s == last_slot ? ZAP_PAXOS_FLAG_LAST : 0));
		px_send_value(p, c, e->val, e->len);
		idx++;
	}
}

/* ---------------------------------------------------------------- chosen */

void px_apply_config(struct zap_paxos *p, uint64_t slot, const uint8_t *v, uint64_t len)
{
	struct px_cfg c;
	int n = zap_paxos_config_members(v, len, c.m, ZAP_PAXOS_MAX_NODES);
	if (n <= 0 || p->n_cfg >= PX_MAX_CONFIGS)
		return;
	c.n = (unsigned)n;
	c.from_slot = slot + p->c.config_delay_slots;
	c.epoch = p->cfg[p->n_cfg - 1].epoch + 1;
	p->cfg[p->n_cfg++] = c;
	p->st.config_changes++;
	if (p->cfg_inflight_slot == slot)
		p->cfg_inflight_slot = 0;
	px_update_removed(p);
}

void px_cfg_shift(struct zap_paxos *p)
{
	while (p->n_cfg > 1 && p->cfg[1].from_slot <= p->chosen_idx + 1) {
		/* remember who was removed, so they still learn they were */
		p->former.n = 0;
		for (unsigned j = 0; j < p->cfg[0].n; j++)
			if (!px_cfg_has(&p->cfg[1], p->cfg[0].m[j]))
				p->former.m[p->former.n++] = p->cfg[0].m[j];
		memmove(&p->cfg[0], &p->cfg[1], (p->n_cfg - 1) * sizeof(p->cfg[0]));
		p->n_cfg--;
		px_update_removed(p);
	}
}

void px_advance(struct zap_paxos *p)
{
	uint64_t before = p->chosen_idx;
	for (;;) {
		struct px_ent *e = px_ent_get(p, p->chosen_idx + 1, false);
		if (e == NULL || !e->chosen || e->val == NULL)
			break;
		p->chosen_idx++;
		if (e->val[0] == ZAP_PAXOS_VALUE_CONFIG)
			px_apply_config(p, p->chosen_idx, e->val, e->len);
		px_cfg_shift(p);
	}
	if (p->chosen_idx > p->st.chosen_slot)
		p->st.chosen_slot = p->chosen_idx;
	while (p->applied_idx < p->chosen_idx) {
		struct px_ent *e = px_ent_get(p, p->applied_idx + 1, false);
		if (e == NULL)
			break;
		struct px_out *o = px_out_push(p, ZAP_PAXOS_OUT_CHOSEN);
		if (o == NULL)
			break;
		p->applied_idx++;
		o->buf = px_memdup(e->val, e->len);
		o->o.data = o->buf;
		o->o.len = e->len;
		o->o.slot = p->applied_idx;
		o->o.ballot = e->vballot;
		p->st.slots_chosen++;
	}
	if (p->chosen_idx > before && p->chosen_idx > p->persisted_chosen && p->started) {
		px_persist(p, ZAP_LOG_CHOSEN, p->chosen_idx, 0, NULL, 0);
		p->persisted_chosen = p->chosen_idx;
	}
	if (p->removed && p->role != PX_FOLLOWER)
		px_step_down(p, 0);
	if (p->role != PX_FOLLOWER && !px_can_lead(p))
		px_step_down(p, 0);
	if (p->role == PX_LEADER)
		px_propose_more(p);
}

/* ---------------------------------------------------------------- catch-up */

void px_maybe_catchup(struct zap_paxos *p, uint16_t from, uint64_t commit, bool force)
{
	if (commit <= p->chosen_idx || from == p->c.self || from == 0)
		return;
	if (!force && p->now_ns < p->catchup_next_ns)
		return;
	if (p->now_ns < p->snapshot_wait_until_ns)
		return;
	p->catchup_next_ns = p->now_ns + p->c.heartbeat_ns;
	struct zap_paxos_msg m = px_msg_base(p, ZAP_PAXOS_MSG_CATCHUP_REQ);
	m.to = from;
	m.slot = p->chosen_idx + 1;
	px_send(p, &m);
	p->st.catchups_requested++;
}

/* ---------------------------------------------------------------- snapshots */

bool px_snapshot_install(struct zap_paxos *p, uint64_t slot)
{
	p->snapshot_wait_until_ns = 0;
	if (slot <= p->chosen_idx)
		return false;
	/* the configuration the snapshot's sender reported (docs/paxos.md) */
	if (p->snap_cfg && p->snap_cfg_len >= 1) {
		const uint8_t *b = p->snap_cfg;
		unsigned n = b[0];
		uint64_t pos = 1;
		struct px_cfg cf[PX_MAX_CONFIGS];
		unsigned k = 0;
		for (unsigned i = 0; i < n && k < PX_MAX_CONFIGS; i++) {
			if (p->snap_cfg_len - pos < 13)
				break;
			struct px_cfg c = {0};
			c.from_slot = zap_get_le64(b + pos);
			c.epoch = zap_get_le32(b + pos + 8);
			c.n = b[pos + 12];
			pos += 13;
			if (c.n == 0 || c.n > ZAP_PAXOS_MAX_NODES ||
			    p->snap_cfg_len - pos < 2u * c.n)
				break;
			for (unsigned j = 0; j < c.n; j++)
				c.m[j] = zap_get_le16(b + pos + 2 * j);
			pos += 2u * c.n;
			cf[k++] = c;
		}
		if (k > 0) {
			memcpy(p->cfg, cf, k * sizeof(cf[0]));
			p->n_cfg = k;
		}
		free(p->snap_cfg);
		p->snap_cfg = NULL;
	}
	px_log_drop_through(p, slot);
	p->chosen_idx = slot;
	p->applied_idx = slot;
	p->snap_slot = slot;
	if (p->st.chosen_slot < slot)
		p->st.chosen_slot = slot;
	px_cfg_shift(p);
	px_update_removed(p);
	px_persist(p, ZAP_LOG_CHOSEN, slot, 0, NULL, 0);
	p->persisted_chosen = slot;
	p->catchup_next_ns = 0;
	px_advance(p);
	return true;
}

uint64_t px_encode_cfgs(const struct zap_paxos *p, uint8_t **out)
{
	uint64_t len = 1;
	for (unsigned i = 0; i < p->n_cfg; i++)
		len += 13 + 2ull * p->cfg[i].n;
	uint8_t *b = malloc(len);
	if (b == NULL)
		return 0;
	b[0] = (uint8_t)p->n_cfg;
	uint64_t pos = 1;
	for (unsigned i = 0; i < p->n_cfg; i++) {
		zap_put_le64(b + pos, p->cfg[i].from_slot);
		zap_put_le32(b + pos + 8, p->cfg[i].epoch);
		b[pos + 12] = (uint8_t)p->cfg[i].n;
		pos += 13;
		for (unsigned j = 0; j < p->cfg[i].n; j++) {
			zap_put_le16(b + pos, p->cfg[i].m[j]);
			pos += 2;
		}
	}
	*out = b;
	return len;
}
