/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap paxos: the Multi-Paxos engine of one node (API in paxos.h, protocol
 * in docs/consensus.md). This file holds the engine core: creation, the
 * output queue, durability bookkeeping, restore/start, timers, elections,
 * the leader's proposing loop, chosen-slot delivery and membership.
 * paxos_msg.c validates and handles received messages; paxos_value.c is
 * the value codec.
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
 *  - cfg[0] governs slot chosen_idx + 1; later entries are changes chosen
 *    but not yet in effect (at most one at a time).
 *  - Messages to this node itself go through `inbox` and are handled after
 *    the current step, so no handler re-enters another.
 *
 * Threading: one thread owns the engine; nothing here is thread-safe.
 */
#include "paxos_internal.h"
#include "log.h"

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

/* ---------------------------------------------------------------- helpers */

static uint64_t rng_next(struct zap_paxos *p)
{
	/* xorshift64* */
	uint64_t x = p->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	p->rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static void *xmemdup(const void *src, uint64_t len)
{
	uint8_t *b = malloc(len ? len : 1);
	if (b && len)
		memcpy(b, src, len);
	return b;
}

bool px_cfg_has(const struct px_cfg *c, uint16_t node)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->m[i] == node)
			return true;
	return false;
}

const struct px_cfg *px_cfg_for(const struct zap_paxos *p, uint64_t slot)
{
	const struct px_cfg *c = &p->cfg[0];
	for (unsigned i = 1; i < p->n_cfg; i++)
		if (p->cfg[i].from_slot <= slot)
			c = &p->cfg[i];
	return c;
}

bool px_known_node(const struct zap_paxos *p, uint16_t node)
{
	if (node == 0)
		return false;
	if (node == p->c.self)
		return true;
	for (unsigned i = 0; i < p->n_cfg; i++)
		if (px_cfg_has(&p->cfg[i], node))
			return true;
	return false;
}

static unsigned add_node(uint16_t *out, unsigned n, uint16_t a)
{
	for (unsigned k = 0; k < n; k++)
		if (out[k] == a)
			return n;
	if (n < PX_MAX_TRACKED)
		out[n++] = a;
	return n;
}

/** Every node of every remembered configuration, self included, once. */
static unsigned all_nodes(const struct zap_paxos *p, uint16_t *out)
{
	unsigned n = 0;
	for (unsigned i = 0; i < p->n_cfg; i++)
		for (unsigned j = 0; j < p->cfg[i].n; j++)
			n = add_node(out, n, p->cfg[i].m[j]);
	return n;
}

bool px_former_node(const struct zap_paxos *p, uint16_t node)
{
	return node != 0 && px_cfg_has(&p->former, node);
}

/** Is self a member of the configuration now or of the pending one? */
static void update_removed(struct zap_paxos *p)
{
	bool in = false;
	for (unsigned i = 0; i < p->n_cfg; i++)
		in |= px_cfg_has(&p->cfg[i], p->c.self);
	p->removed = !in;
}

/*
 * May this node lead now? Only a member of the configuration governing its
 * first unchosen slot (cfg[0]); a removed node never (docs/consensus.md,
 * "Who may lead").
 */
bool px_can_lead(const struct zap_paxos *p)
{
	return !p->removed && px_cfg_has(px_cfg_for(p, p->chosen_idx + 1), p->c.self);
}

/* ---------------------------------------------------------------- log */

struct px_ent *px_ent_get(struct zap_paxos *p, uint64_t slot, bool create)
{
	if (slot < p->log_base || slot == 0)
		return NULL;
	uint64_t i = slot - p->log_base;
	if (i < p->log_cap)
		return &p->log[i];
	/* restore trusts the durable log; the network may not run far ahead */
	if (!create || (p->started && slot > p->chosen_idx + p->span_slots))
		return NULL;
	uint64_t cap = p->log_cap ? p->log_cap : 64;
	while (cap <= i)
		cap *= 2;
	struct px_ent *n = realloc(p->log, cap * sizeof(*n));
	if (n == NULL)
		return NULL;
	memset(n + p->log_cap, 0, (cap - p->log_cap) * sizeof(*n));
	p->log = n;
	p->log_cap = cap;
	return &p->log[i];
}

static void ent_free(struct px_ent *e)
{
	free(e->val);
	free(e->pval);
	memset(e, 0, sizeof(*e));
}

/** Drop entries for slots <= slot. */
static void log_drop_through(struct zap_paxos *p, uint64_t slot)
{
	if (slot < p->log_base)
		return;
	uint64_t k = slot - p->log_base + 1;
	if (k > p->log_cap)
		k = p->log_cap;
	p->log_base = slot + 1;
	if (k == 0)
		return;
	for (uint64_t i = 0; i < k; i++)
		ent_free(&p->log[i]);
	memmove(p->log, p->log + k, (p->log_cap - k) * sizeof(*p->log));
	memset(p->log + p->log_cap - k, 0, k * sizeof(*p->log));
}

/* ---------------------------------------------------------------- outputs */

static struct px_out *out_push(struct zap_paxos *p, uint8_t type)
{
	if (p->out_count == p->out_cap) {
		size_t cap = p->out_cap ? p->out_cap * 2 : 64;
		struct px_out *n = malloc(cap * sizeof(*n));
		if (n == NULL)
			return NULL;
		for (size_t i = 0; i < p->out_count; i++)
			n[i] = p->outs[(p->out_head + i) % p->out_cap];
		free(p->outs);
		p->outs = n;
		p->out_cap = cap;
		p->out_head = 0;
	}
	struct px_out *o = &p->outs[(p->out_head + p->out_count++) % p->out_cap];
	memset(o, 0, sizeof(*o));
	o->o.type = type;
	return o;
}

struct zap_paxos_out *px_out_new(struct zap_paxos *p, uint8_t type)
{
	struct px_out *o = out_push(p, type);
	return o ? &o->o : NULL;
}

void px_send(struct zap_paxos *p, const struct zap_paxos_msg *m)
{
	if (m->to == p->c.self) {
		if (p->in_count == p->in_cap) {
			size_t cap = p->in_cap ? p->in_cap * 2 : 64;
			struct px_inbox *n = malloc(cap * sizeof(*n));
			if (n == NULL)
				return;
			for (size_t i = 0; i < p->in_count; i++)
				n[i] = p->inbox[(p->in_head + i) % p->in_cap];
			free(p->inbox);
			p->inbox = n;
			p->in_cap = cap;
			p->in_head = 0;
		}
		struct px_inbox *b = &p->inbox[(p->in_head + p->in_count++) % p->in_cap];
		b->m = *m;
		b->buf = m->len ? xmemdup(m->payload, m->len) : NULL;
		b->m.payload = b->buf;
		if (m->len && b->buf == NULL)
			p->in_count--;
		return;
	}
	struct px_out *o = out_push(p, ZAP_PAXOS_OUT_SEND);
	if (o == NULL)
		return;
	o->o.msg = *m;
	o->o.node = m->to;
	if (m->len) {
		o->buf = xmemdup(m->payload, m->len);
		o->o.msg.payload = o->buf;
	} else {
		o->o.msg.payload = NULL;
	}
	p->st.messages_sent++;
}

void px_send_value(struct zap_paxos *p, struct zap_paxos_msg m, const uint8_t *val, uint64_t len)
{
	uint64_t chunk = p->c.datagram_bytes;
	m.value_len = len;
	if (len == 0) {
		m.offset = 0;
		m.payload = NULL;
		m.len = 0;
		px_send(p, &m);
		return;
	}
	uint8_t last = m.flags & ZAP_PAXOS_FLAG_LAST;
	for (uint64_t off = 0; off < len; off += chunk) {
		m.offset = off;
		m.len = (uint32_t)(len - off < chunk ? len - off : chunk);
		m.payload = val + off;
		m.flags = (uint8_t)((m.flags & ~ZAP_PAXOS_FLAG_LAST) |
				    (off + chunk >= len ? last : 0));
		px_send(p, &m);
	}
}

void px_send_all(struct zap_paxos *p, const struct zap_paxos_msg *m, const uint8_t *val,
		 uint64_t len, bool include_self)
{
	uint16_t nodes[PX_MAX_TRACKED];
	unsigned n = all_nodes(p, nodes);
	for (unsigned i = 0; i < n; i++) {
		if (nodes[i] == p->c.self && !include_self)
			continue;
		struct zap_paxos_msg c = *m;
		c.to = nodes[i];
		if (val != NULL || m->type == ZAP_PAXOS_MSG_ACCEPT)
			px_send_value(p, c, val, len);
		else
			px_send(p, &c);
	}
}

static struct zap_paxos_msg msg_base(struct zap_paxos *p, uint8_t type)
{
	struct zap_paxos_msg m;
	memset(&m, 0, sizeof(m));
	m.type = type;
	m.from = p->c.self;
	m.epoch = p->cfg[0].epoch;
	m.commit = p->chosen_idx;
	return m;
}

uint64_t px_persist(struct zap_paxos *p, uint8_t rec, uint64_t slot, zap_ballot_t b,
		    const void *data, uint64_t len)
{
	struct px_out *o = out_push(p, ZAP_PAXOS_OUT_PERSIST);
	uint64_t token = ++p->next_token;
	if (o == NULL)
		return token;
	o->o.rec_type = rec;
	o->o.slot = slot;
	o->o.ballot = b;
	o->o.token = token;
	if (len) {
		o->buf = xmemdup(data, len);
		o->o.data = o->buf;
		o->o.len = len;
	}
	return token;
}

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

/* ---------------------------------------------------------------- answers */

void px_send_accepted(struct zap_paxos *p, uint16_t to, zap_ballot_t b, uint64_t slot)
{
	struct zap_paxos_msg m = msg_base(p, ZAP_PAXOS_MSG_ACCEPTED);
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
	struct zap_paxos_msg m = msg_base(p, ZAP_PAXOS_MSG_PROMISE);
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

/* ---------------------------------------------------------------- roles */

void px_reset_election(struct zap_paxos *p)
{
	uint64_t t = p->c.election_timeout_ns;
	p->election_deadline_ns = p->now_ns + t + (t ? rng_next(p) % t : 0);
}

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
		struct px_out *o = out_push(p, ZAP_PAXOS_OUT_ROLE);
		if (o) {
			o->o.node = node;
			o->o.ballot = b;
		}
		if (node != 0 && node != p->c.self)
			px_flush_cmds(p);
	}
}

static void p1_clear(struct zap_paxos *p)
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
	p1_clear(p);
	drop_proposals(p);
	free(p->cfg_want);
	p->cfg_want = NULL;
	p->cfg_inflight_slot = 0;
	if (was_leader && p->leader == p->c.self)
		px_set_leader(p, 0, 0);
	px_reset_election(p);
}

static void send_prepare(struct zap_paxos *p, uint16_t to)
{
	struct zap_paxos_msg m = msg_base(p, ZAP_PAXOS_MSG_PREPARE);
	m.to = to;
	m.ballot = p->my_ballot;
	m.slot = p->p1_base;
	px_send(p, &m);
}

static void start_election(struct zap_paxos *p)
{
	uint64_t round = zap_ballot_round(p->max_seen);
	if (zap_ballot_round(p->promised) > round)
		round = zap_ballot_round(p->promised);
	p1_clear(p);
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
	unsigned n = all_nodes(p, nodes);
	for (unsigned i = 0; i < n; i++) {
		p->track[p->n_track++].node = nodes[i];
		send_prepare(p, nodes[i]);
	}
	p->hb_next_ns = p->now_ns + p->c.heartbeat_ns;
}

void px_become_leader(struct zap_paxos *p)
{
	p->role = PX_LEADER;
	p->st.elections_won++;
	p->next_slot = p->chosen_idx + 1;
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
			return xmemdup(v->val, v->len);
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
	px_put_u32(v + 1, n);
	uint64_t pos = PX_BATCH_HEADER_BYTES;
	for (uint32_t i = 0; i < n; i++) {
		struct px_cmd *c = &p->cmds[p->cmd_head];
		px_put_u32(v + pos, c->len);
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
	struct zap_paxos_msg m = msg_base(p, ZAP_PAXOS_MSG_ACCEPT);
	m.ballot = p->my_ballot;
	m.slot = slot;
	if (to == 0) {
		px_send_all(p, &m, e->pval, e->plen, true);
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
				v = xmemdup(e->val, e->len);
				len = e->len;
			} else {
				v = p1_value(p, s, &len);
			}
			if (v == NULL) {
				v = xmemdup((uint8_t[]){ZAP_PAXOS_VALUE_NOP}, 1);
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

/* ---------------------------------------------------------------- chosen */

static void apply_config(struct zap_paxos *p, uint64_t slot, const uint8_t *v, uint64_t len)
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
	update_removed(p);
}

/** Retire configurations no longer in force: cfg[0] governs chosen_idx + 1. */
static void cfg_shift(struct zap_paxos *p)
{
	while (p->n_cfg > 1 && p->cfg[1].from_slot <= p->chosen_idx + 1) {
		/* remember who was removed, so they still learn they were */
		p->former.n = 0;
		for (unsigned j = 0; j < p->cfg[0].n; j++)
			if (!px_cfg_has(&p->cfg[1], p->cfg[0].m[j]))
				p->former.m[p->former.n++] = p->cfg[0].m[j];
		memmove(&p->cfg[0], &p->cfg[1], (p->n_cfg - 1) * sizeof(p->cfg[0]));
		p->n_cfg--;
		update_removed(p);
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
			apply_config(p, p->chosen_idx, e->val, e->len);
		cfg_shift(p);
	}
	if (p->chosen_idx > p->st.chosen_slot)
		p->st.chosen_slot = p->chosen_idx;
	while (p->applied_idx < p->chosen_idx) {
		struct px_ent *e = px_ent_get(p, p->applied_idx + 1, false);
		if (e == NULL)
			break;
		struct px_out *o = out_push(p, ZAP_PAXOS_OUT_CHOSEN);
		if (o == NULL)
			break;
		p->applied_idx++;
		o->buf = xmemdup(e->val, e->len);
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

/* ---------------------------------------------------------------- commands */

bool px_enqueue_cmd(struct zap_paxos *p, const void *cmd, uint32_t len)
{
	if (p->cmd_count >= p->c.max_pending_commands)
		return false;
	uint8_t *b = xmemdup(cmd, len);
	if (b == NULL)
		return false;
	struct px_cmd *c = &p->cmds[(p->cmd_head + p->cmd_count) % p->c.max_pending_commands];
	c->buf = b;
	c->len = len;
	p->cmd_count++;
	return true;
}

/** Send every held command to the known leader (a lost FORWARD: client retries). */
void px_flush_cmds(struct zap_paxos *p)
{
	if (p->leader == 0 || p->leader == p->c.self)
		return;
	while (p->cmd_count > 0) {
		struct px_cmd *c = &p->cmds[p->cmd_head];
		struct zap_paxos_msg m = msg_base(p, ZAP_PAXOS_MSG_FORWARD);
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
	struct zap_paxos_msg m = msg_base(p, ZAP_PAXOS_MSG_CATCHUP_REQ);
	m.to = from;
	m.slot = p->chosen_idx + 1;
	px_send(p, &m);
	p->st.catchups_requested++;
}

/* ---------------------------------------------------------------- inbox */

static void drain(struct zap_paxos *p)
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
	p->draining = false;
}

static void enter(struct zap_paxos *p, uint64_t now_ns)
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
		ent_free(&p->log[i]);
	free(p->log);
	p1_clear(p);
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
			uint8_t *v = xmemdup(data, len);
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
	enter(p, now_ns);
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
				apply_config(p, s, e->val, e->len);
		}
		p->chosen_idx = applied_slot;
		cfg_shift(p);
		log_drop_through(p, applied_slot);
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
	update_removed(p);
	px_reset_election(p);
	drain(p);
	return 0;
}

int zap_paxos_tick(struct zap_paxos *p, uint64_t now_ns)
{
	if (p == NULL || !p->started)
		return -EINVAL;
	enter(p, now_ns);
	if (p->role == PX_LEADER) {
		if (p->now_ns >= p->hb_next_ns) {
			struct zap_paxos_msg m = msg_base(p, ZAP_PAXOS_MSG_HEARTBEAT);
			m.ballot = p->my_ballot;
			m.slot = p->next_slot - 1;
			px_send_all(p, &m, NULL, 0, false);
			for (unsigned i = 0; i < p->former.n; i++) {
				m.to = p->former.m[i];
				if (m.to != p->c.self && !px_known_node(p, m.to))
					px_send(p, &m);
			}
			p->hb_next_ns = p->now_ns + p->c.heartbeat_ns;
			/* retransmit ACCEPTs not answered within a heartbeat */
			for (uint64_t s = p->chosen_idx + 1; s < p->next_slot; s++) {
				struct px_ent *e = px_ent_get(p, s, false);
				if (e == NULL || e->pval == NULL || e->chosen)
					continue;
				if (p->now_ns - e->sent_ns < p->c.heartbeat_ns)
					continue;
				uint16_t nodes[PX_MAX_TRACKED];
				unsigned n = all_nodes(p, nodes);
				for (unsigned i = 0; i < n; i++) {
					bool acked = false;
					for (unsigned k = 0; k < e->n_acks; k++)
						acked |= e->acks[k] == nodes[i];
					if (!acked && nodes[i] != p->c.self)
						send_accept(p, e, s, nodes[i]);
				}
			}
		}
	} else if (p->role == PX_CANDIDATE) {
		if (p->now_ns >= p->election_deadline_ns) {
			if (px_can_lead(p))
				start_election(p);
			else
				px_step_down(p, 0);
		} else if (p->now_ns >= p->hb_next_ns) {
			for (unsigned i = 0; i < p->n_track; i++)
				if (!p->track[i].done)
					send_prepare(p, p->track[i].node);
			p->hb_next_ns = p->now_ns + p->c.heartbeat_ns;
		}
	} else if (p->now_ns >= p->election_deadline_ns) {
		if (px_can_lead(p))
			start_election(p);
		else
			px_reset_election(p);
	}
	drain(p);
	return 0;
}

int zap_paxos_receive(struct zap_paxos *p, uint64_t now_ns, const struct zap_paxos_msg *m)
{
	if (p == NULL)
		return -EINVAL;
	enter(p, now_ns);
	p->st.messages_received++;
	if (!p->started) {
		p->st.messages_dropped++;
		return -EINVAL;
	}
	int rc = px_handle(p, m);
	drain(p);
	return rc;
}

int zap_paxos_submit(struct zap_paxos *p, uint64_t now_ns, const void *cmd, uint32_t len)
{
	if (p == NULL || (cmd == NULL && len > 0))
		return -EINVAL;
	enter(p, now_ns);
	if (len == 0)
		return -EINVAL;
	if ((uint64_t)len + PX_BATCH_HEADER_BYTES + PX_CMD_HEADER_BYTES > p->c.batch_bytes)
		return -EMSGSIZE;
	if (p->leader != 0 && p->leader != p->c.self && p->role != PX_LEADER) {
		struct zap_paxos_msg m = msg_base(p, ZAP_PAXOS_MSG_FORWARD);
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
	drain(p);
	return 0;
}

int zap_paxos_persisted(struct zap_paxos *p, uint64_t now_ns, uint64_t token)
{
	if (p == NULL)
		return -EINVAL;
	enter(p, now_ns);
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
	drain(p);
	return 0;
}

int zap_paxos_propose_config(struct zap_paxos *p, uint64_t now_ns, const uint16_t *members,
			     unsigned n)
{
	if (p == NULL)
		return -EINVAL;
	enter(p, now_ns);
	if (p->role != PX_LEADER)
		return -EPERM;
	if (p->cfg_want || p->cfg_inflight_slot || p->n_cfg > 1)
		return -EBUSY;
	if (members == NULL || n == 0 || n > ZAP_PAXOS_MAX_NODES)
		return -EINVAL;
	uint8_t v[2 + 2 * ZAP_PAXOS_MAX_NODES];
	v[0] = ZAP_PAXOS_VALUE_CONFIG;
	v[1] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		v[2 + 2 * i] = (uint8_t)members[i];
		v[3 + 2 * i] = (uint8_t)(members[i] >> 8);
	}
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
	p->cfg_want = xmemdup(v, 2 + 2ull * n);
	if (p->cfg_want == NULL)
		return -ENOMEM;
	p->cfg_want_len = 2 + 2ull * n;
	px_propose_more(p);
	drain(p);
	return 0;
}

int zap_paxos_compact(struct zap_paxos *p, uint64_t slot)
{
	if (p == NULL)
		return -EINVAL;
	enter(p, p->now_ns);
	if (slot > p->applied_idx)
		return -EINVAL;
	if (slot <= p->snap_slot)
		return 0;
	log_drop_through(p, slot);
	p->snap_slot = slot;
	return 0;
}

int zap_paxos_snapshot_installed(struct zap_paxos *p, uint64_t now_ns, uint64_t slot)
{
	if (p == NULL)
		return -EINVAL;
	enter(p, now_ns);
	p->snapshot_wait_until_ns = 0;
	if (slot <= p->chosen_idx)
		return 0;
	/* the configuration the snapshot's sender reported (docs/consensus.md) */
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
			c.from_slot = px_get_u64(b + pos);
			c.epoch = px_get_u32(b + pos + 8);
			c.n = b[pos + 12];
			pos += 13;
			if (c.n == 0 || c.n > ZAP_PAXOS_MAX_NODES || p->snap_cfg_len - pos < 2u * c.n)
				break;
			for (unsigned j = 0; j < c.n; j++)
				c.m[j] = (uint16_t)(b[pos + 2 * j] | b[pos + 2 * j + 1] << 8);
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
	log_drop_through(p, slot);
	p->chosen_idx = slot;
	p->applied_idx = slot;
	p->snap_slot = slot;
	if (p->st.chosen_slot < slot)
		p->st.chosen_slot = slot;
	cfg_shift(p);
	update_removed(p);
	px_persist(p, ZAP_LOG_CHOSEN, slot, 0, NULL, 0);
	p->persisted_chosen = slot;
	p->catchup_next_ns = 0;
	px_advance(p);
	drain(p);
	return 0;
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
		px_put_u64(b + pos, p->cfg[i].from_slot);
		px_put_u32(b + pos + 8, p->cfg[i].epoch);
		b[pos + 12] = (uint8_t)p->cfg[i].n;
		pos += 13;
		for (unsigned j = 0; j < p->cfg[i].n; j++) {
			b[pos++] = (uint8_t)p->cfg[i].m[j];
			b[pos++] = (uint8_t)(p->cfg[i].m[j] >> 8);
		}
	}
	*out = b;
	return len;
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
