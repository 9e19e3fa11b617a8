/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap paxos core: the state helpers every role of the engine stands on
 * (declared in paxos_core.h). Configuration lookups (who is a member of
 * which configuration, who may lead), the log array of slots, the output
 * queue and the self inbox, message sending (chunked values, broadcast),
 * persistence requests and the randomized election timer.
 *
 * Nothing here calls into the role files (paxos_leader.c, paxos_accept.c,
 * paxos_msg.c) or into paxos.c: messages to this node itself only go into
 * the inbox, which paxos.c drains after the current step. Design and
 * invariants are described at the top of paxos.c.
 *
 * Threading: the engine's thread only.
 */
#include "paxos_core.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

void *px_memdup(const void *src, uint64_t len)
{
	uint8_t *b = malloc(len ? len : 1);
	if (b && len)
		memcpy(b, src, len);
	return b;
}

/* ---------------------------------------------------------------- configurations */

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
unsigned px_all_nodes(const struct zap_paxos *p, uint16_t *out)
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
void px_update_removed(struct zap_paxos *p)
{
	bool in = false;
	for (unsigned i = 0; i < p->n_cfg; i++)
		in |= px_cfg_has(&p->cfg[i], p->c.self);
	p->removed = !in;
}

/*
 * May this node lead now? Only a member of the configuration governing its
 * first unchosen slot (cfg[0]); a removed node never (docs/paxos.md,
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

void px_ent_free(struct px_ent *e)
{
	free(e->val);
	free(e->pval);
	memset(e, 0, sizeof(*e));
}

/** Drop entries for slots <= slot. */
void px_log_drop_through(struct zap_paxos *p, uint64_t slot)
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
		px_ent_free(&p->log[i]);
	memmove(p->log, p->log + k, (p->log_cap - k) * sizeof(*p->log));
	memset(p->log + p->log_cap - k, 0, k * sizeof(*p->log));
}

/* ---------------------------------------------------------------- outputs */

struct px_out *px_out_push(struct zap_paxos *p, uint8_t type)
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
	struct px_out *o = px_out_push(p, type);
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
		b->buf = m->len ? px_memdup(m->payload, m->len) : NULL;
		b->m.payload = b->buf;
		if (m->len && b->buf == NULL)
			p->in_count--;
		return;
	}
	struct px_out *o = px_out_push(p, ZAP_PAXOS_OUT_SEND);
	if (o == NULL)
		return;
	o->o.msg = *m;
	o->o.node = m->to;
	if (m->len) {
		o->buf = px_memdup(m->payload, m->len);
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
		m.flags =
		    (uint8_t)((m.flags & ~ZAP_PAXOS_FLAG_LAST) | (off + chunk >= len ? last : 0));
		px_send(p, &m);
	}
}

void px_send_all(struct zap_paxos *p, const struct zap_paxos_msg *m, const uint8_t *val,
		 uint64_t len, bool include_self)
{
	uint16_t nodes[PX_MAX_TRACKED];
	unsigned n = px_all_nodes(p, nodes);
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

struct zap_paxos_msg px_msg_base(struct zap_paxos *p, uint8_t type)
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
	struct px_out *o = px_out_push(p, ZAP_PAXOS_OUT_PERSIST);
	uint64_t token = ++p->next_token;
	if (o == NULL)
		return token;
	o->o.rec_type = rec;
	o->o.slot = slot;
	o->o.ballot = b;
	o->o.token = token;
	if (len) {
		o->buf = px_memdup(data, len);
		o->o.data = o->buf;
		o->o.len = len;
	}
	return token;
}

/* ---------------------------------------------------------------- election timer */

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

void px_reset_election(struct zap_paxos *p)
{
	uint64_t t = p->c.election_timeout_ns;
	p->election_deadline_ns = p->now_ns + t + (t ? rng_next(p) % t : 0);
}
