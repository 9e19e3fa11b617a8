/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap paxos messages: validation, chunk reassembly and one handler per
 * message type (protocol in docs/paxos.md; invariants in paxos.c). The
 * handlers call down into paxos_accept.c, paxos_leader.c, paxos_value.c
 * and paxos_core.c; only paxos.c calls into this file.
 *
 * Every received message passes px_validate_msg() before any field is
 * used: type, addressee, known sender, flags, payload length against
 * datagram_bytes, chunk bounds (offset a multiple of datagram_bytes, length
 * exactly what is left or one datagram), ballots owned by their sender.
 * A value is used only whole and only after px_validate_value(). Anything
 * else is dropped and counted (messages_dropped), never trusted.
 *
 * Reassembly keeps at most window_slots + 16 partial values; the least
 * recently touched one is evicted (its sender retransmits). Phase 1 counts
 * a promised value only when it is whole, so an eviction delays an
 * election but cannot make a promise look complete.
 *
 * Threading: called by paxos.c on the engine's thread only.
 */
#include "paxos_core.h"
#include "log/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PX_KNOWN_FLAGS (ZAP_PAXOS_FLAG_LAST | ZAP_PAXOS_FLAG_CHOSEN | ZAP_PAXOS_FLAG_REFORWARDED)

/* ---------------------------------------------------------------- validation */

static bool chunk_ok(const struct zap_paxos *p, const struct zap_paxos_msg *m, uint64_t max_len)
{
	uint64_t dg = p->c.datagram_bytes;
	if (m->value_len == 0 || m->value_len > max_len)
		return false;
	if (m->offset >= m->value_len || m->offset % dg != 0)
		return false;
	uint64_t left = m->value_len - m->offset;
	return m->len == (left < dg ? left : dg);
}

/*
 * A sender in none of the configurations this node remembers (docs/paxos.md,
 * "Senders outside the configuration"). Two cases are still heard:
 *  - a node the last change removed may ask for the slots that tell it so
 *    (CATCHUP_REQ);
 *  - a sender with a newer configuration epoch than this node's: this node
 *    lags (a member added since, say, while this node replays history), so
 *    it hears what helps it catch up: HEARTBEAT (leader and commit index),
 *    NACK, CATCHUP and SNAPSHOT_NEEDED. None of them makes it accept or
 *    promise anything.
 * Everything else from such a sender, in particular anything with an epoch
 * not newer than this node's, is dropped and counted.
 */
static bool unknown_sender_ok(const struct zap_paxos *p, const struct zap_paxos_msg *m)
{
	if (m->from == 0)
		return false;
	if (m->type == ZAP_PAXOS_MSG_CATCHUP_REQ && px_former_node(p, m->from))
		return true;
	if (m->epoch <= p->cfg[0].epoch)
		return false;
	return m->type == ZAP_PAXOS_MSG_HEARTBEAT || m->type == ZAP_PAXOS_MSG_NACK ||
	       m->type == ZAP_PAXOS_MSG_CATCHUP || m->type == ZAP_PAXOS_MSG_SNAPSHOT_NEEDED;
}

static bool validate_msg(const struct zap_paxos *p, const struct zap_paxos_msg *m)
{
	if (m == NULL || m->type < ZAP_PAXOS_MSG_PREPARE || m->type >= ZAP_PAXOS_MSG_TYPE_COUNT)
		return false;
	if (m->to != p->c.self)
		return false;
	if (!px_known_node(p, m->from) && !unknown_sender_ok(p, m))
		return false;
	if (m->len > p->c.datagram_bytes || (m->len > 0 && m->payload == NULL))
		return false;
	if (m->flags & ~PX_KNOWN_FLAGS)
		return false;
	uint64_t cmd_max = p->max_value_bytes - PX_BATCH_HEADER_BYTES - PX_CMD_HEADER_BYTES;
	switch (m->type) {
	case ZAP_PAXOS_MSG_PREPARE:
		return m->ballot != 0 && zap_ballot_node(m->ballot) == m->from && m->slot >= 1 &&
		       m->len == 0;
	case ZAP_PAXOS_MSG_PROMISE: {
		if (m->ballot == 0 || zap_ballot_node(m->ballot) != p->c.self)
			return false;
		if (m->value_len == 0)
			return m->len == 0 && m->offset == 0 && m->id == 0;
		uint64_t total = m->id & 0xffffffffu, idx = m->id >> 32;
		return m->slot >= 1 && total >= 1 && idx < total && total <= p->span_slots &&
		       m->vballot <= m->ballot && chunk_ok(p, m, p->max_value_bytes);
	}
	case ZAP_PAXOS_MSG_ACCEPT:
		return m->ballot != 0 && zap_ballot_node(m->ballot) == m->from && m->slot >= 1 &&
		       chunk_ok(p, m, p->max_value_bytes);
	case ZAP_PAXOS_MSG_ACCEPTED:
		return m->ballot != 0 && zap_ballot_node(m->ballot) == p->c.self && m->slot >= 1 &&
		       m->len == 0;
	case ZAP_PAXOS_MSG_NACK:
		return m->len == 0;
	case ZAP_PAXOS_MSG_HEARTBEAT:
		return m->ballot != 0 && zap_ballot_node(m->ballot) == m->from && m->len == 0;
	case ZAP_PAXOS_MSG_FORWARD:
		return chunk_ok(p, m, cmd_max);
	case ZAP_PAXOS_MSG_CATCHUP_REQ:
		return m->slot >= 1 && m->len == 0;
	case ZAP_PAXOS_MSG_CATCHUP:
		return m->slot >= 1 && chunk_ok(p, m, p->max_value_bytes);
	case ZAP_PAXOS_MSG_SNAPSHOT_NEEDED:
		return m->slot >= 1 && m->offset == 0 && m->value_len == m->len;
	default:
		return false;
	}
}

/* ---------------------------------------------------------------- reassembly */

static void ra_free(struct px_reasm *r)
{
	free(r->buf);
	free(r->got);
	memset(r, 0, sizeof(*r));
}

void px_ra_clear(struct zap_paxos *p)
{
	for (unsigned i = 0; i < p->n_ra; i++)
		ra_free(&p->ra[i]);
}

/*
 * Add a chunk. @return the whole value (in *val) when complete, with *slot_out
 * the reassembly entry to free after use (NULL when the message was whole).
 * 0 when more chunks are needed, -ENOMEM when dropped.
 */
static int ra_add(struct zap_paxos *p, const struct zap_paxos_msg *m, uint64_t k1, uint64_t k2,
		  uint64_t k3, const uint8_t **val, struct px_reasm **slot_out)
{
	*slot_out = NULL;
	if (m->offset == 0 && m->len == m->value_len) {
		*val = m->payload;
		return 1;
	}
	struct px_reasm *r = NULL, *lru = NULL;
	for (unsigned i = 0; i < p->n_ra; i++) {
		struct px_reasm *x = &p->ra[i];
		if (x->used && x->type == m->type && x->from == m->from && x->k1 == k1 &&
		    x->k2 == k2 && x->k3 == k3 && x->len == m->value_len) {
			r = x;
			break;
		}
		if (lru == NULL || !x->used || (lru->used && x->touch < lru->touch))
			lru = x;
	}
	if (r == NULL) {
		r = lru;
		ra_free(r);
		uint64_t dg = p->c.datagram_bytes;
		r->n_chunks = (m->value_len + dg - 1) / dg;
		r->buf = malloc(m->value_len);
		r->got = calloc(r->n_chunks, 1);
		if (r->buf == NULL || r->got == NULL) {
			ra_free(r);
			return -ENOMEM;
		}
		r->used = true;
		r->type = m->type;
		r->from = m->from;
		r->k1 = k1;
		r->k2 = k2;
		r->k3 = k3;
		r->len = m->value_len;
	}
	r->touch = ++p->ra_clock;
	uint64_t idx = m->offset / p->c.datagram_bytes;
	if (!r->got[idx]) {
		memcpy(r->buf + m->offset, m->payload, m->len);
		r->got[idx] = 1;
		r->n_got++;
	}
	if (r->n_got < r->n_chunks)
		return 0;
	*val = r->buf;
	*slot_out = r;
	return 1;
}

/* ---------------------------------------------------------------- helpers */

static void send_nack(struct zap_paxos *p, uint16_t to)
{
	struct zap_paxos_msg m;
	memset(&m, 0, sizeof(m));
	m.type = ZAP_PAXOS_MSG_NACK;
	m.from = p->c.self;
	m.to = to;
	m.epoch = p->cfg[0].epoch;
	m.ballot = p->promised;
	m.commit = p->chosen_idx;
	px_send(p, &m);
}

/*
 * The leader of ballot b says every slot <= commit is chosen. A slot whose
 * value this node accepted in that same ballot holds the leader's proposal,
 * which is the chosen value; anything else must be fetched (catch-up).
 */
static void learn_commit(struct zap_paxos *p, zap_ballot_t b, uint64_t commit, uint16_t from)
{
	for (uint64_t s = p->chosen_idx + 1; s <= commit; s++) {
		struct px_ent *e = px_ent_get(p, s, false);
		if (e == NULL || e->val == NULL || (!e->chosen && e->vballot != b))
			break;
		e->chosen = true;
	}
	px_advance(p);
	px_maybe_catchup(p, from, commit, false);
}

static bool quorum_of(const struct zap_paxos *p, const struct px_cfg *c, const uint16_t *nodes,
		      unsigned n)
{
	unsigned votes = 0;
	for (unsigned i = 0; i < n; i++)
		votes += px_cfg_has(c, nodes[i]);
	return votes * 2 > c->n;
	(void)p;
}

/* ---------------------------------------------------------------- phase 1 */

static void on_prepare(struct zap_paxos *p, const struct zap_paxos_msg *m)
{
	/*
	 * A candidate ahead of this node may need its promise (this node may
	 * even be a member it does not yet know it is): catch up from it.
	 */
	px_maybe_catchup(p, m->from, m->commit, false);
	if (p->removed)
		return;
	if (m->ballot < p->promised) {
		send_nack(p, m->from);
		return;
	}
	/* a candidate behind this node's chosen log must catch up first */
	if (m->from != p->c.self && m->slot - 1 < p->chosen_idx) {
		send_nack(p, m->from);
		return;
	}
	/*
	 * Only a member of the configuration governing the candidate's first
	 * unchosen slot may lead it. This node knows that configuration exactly
	 * when the slot is within config_delay_slots of its own chosen index
	 * (it is fixed by slots <= slot - delay); beyond, the candidate is ahead
	 * and knows more than this node.
	 */
	if (m->slot <= p->chosen_idx + p->c.config_delay_slots &&
	    !px_cfg_has(px_cfg_for(p, m->slot), m->from)) {
		send_nack(p, m->from);
		return;
	}
	if (m->ballot > p->promised) {
		p->promised = m->ballot;
		if (p->role != PX_FOLLOWER && p->my_ballot < m->ballot)
			px_step_down(p, m->ballot);
		if (m->from != p->c.self)
			px_reset_election(p);
		uint64_t t = px_persist(p, ZAP_LOG_PROMISE, 0, m->ballot, NULL, 0);
		px_pend_add(p, t, PX_PEND_PROMISE, m->from, m->ballot, m->slot);
		return;
	}
	/* same ballot again (retransmission): answer once all writes so far are durable */
	px_pend_add(p, p->next_token, PX_PEND_PROMISE, m->from, m->ballot, m->slot);
}

static struct px_promise_track *track_of(struct zap_paxos *p, uint16_t node)
{
	for (unsigned i = 0; i < p->n_track; i++)
		if (p->track[i].node == node)
			return &p->track[i];
	return NULL;
}

static void p1_merge(struct zap_paxos *p, uint64_t slot, zap_ballot_t vb, bool chosen,
		     const uint8_t *val, uint64_t len)
{
	if (slot < p->p1_base || slot - p->p1_base >= p->span_slots)
		return;
	uint64_t i = slot - p->p1_base;
	if (i >= p->p1_cap) {
		uint64_t cap = p->p1_cap ? p->p1_cap : 64;
		while (cap <= i)
			cap *= 2;
		struct px_p1 *n = realloc(p->p1, cap * sizeof(*n));
		if (n == NULL)
			return;
		memset(n + p->p1_cap, 0, (cap - p->p1_cap) * sizeof(*n));
		p->p1 = n;
		p->p1_cap = cap;
	}
	struct px_p1 *x = &p->p1[i];
	if (x->chosen || (!chosen && x->val && vb <= x->vballot))
		return;
	uint8_t *v = malloc(len);
	if (v == NULL)
		return;
	memcpy(v, val, len);
	free(x->val);
	x->val = v;
	x->len = len;
	x->vballot = vb;
	x->chosen = chosen;
	if (slot > p->p1_max)
		p->p1_max = slot;
}

static void check_phase1(struct zap_paxos *p)
{
	uint16_t done[PX_MAX_TRACKED];
	unsigned n = 0;
	for (unsigned i = 0; i < p->n_track; i++)
		if (p->track[i].done)
			done[n++] = p->track[i].node;
	for (unsigned i = 0; i < p->n_cfg; i++)
		if (!quorum_of(p, &p->cfg[i], done, n))
			return;
	if (!px_can_lead(p)) {
		px_step_down(p, 0);
		return;
	}
	px_become_leader(p);
}

static int on_promise(struct zap_paxos *p, const struct zap_paxos_msg *m)
{
	if (p->role != PX_CANDIDATE || m->ballot != p->my_ballot)
		return 0;
	struct px_promise_track *t = track_of(p, m->from);
	if (t == NULL || t->done)
		return 0;
	if (m->value_len == 0) {
		t->done = true;
		check_phase1(p);
		return 0;
	}
	const uint8_t *val;
	struct px_reasm *r;
	int rc = ra_add(p, m, m->slot, m->ballot, m->vballot, &val, &r);
	if (rc <= 0)
		return 0;
	rc = 0;
	uint64_t total = m->id & 0xffffffffu, idx = m->id >> 32;
	if (px_validate_value(val, m->value_len) < 0) {
		rc = -EINVAL;
	} else if (t->total == 0 || t->total == total) {
		if (t->got == NULL) {
			t->got = calloc(total, 1);
			t->total = total;
		}
		if (t->got && !t->got[idx]) {
			t->got[idx] = 1;
			t->n_got++;
			p1_merge(p, m->slot, m->vballot, m->flags & ZAP_PAXOS_FLAG_CHOSEN, val,
				 m->value_len);
			if (t->n_got == t->total) {
				t->done = true;
				check_phase1(p);
			}
		}
	}
	if (r)
		ra_free(r);
	return rc;
}

/* ---------------------------------------------------------------- phase 2 */

static int on_accept(struct zap_paxos *p, const struct zap_paxos_msg *m)
{
	if (p->removed) {
		px_maybe_catchup(p, m->from, m->commit, false);
		return 0;
	}
	if (m->ballot < p->promised) {
		send_nack(p, m->from);
		return 0;
	}
	if (p->role != PX_FOLLOWER && m->ballot > p->my_ballot)
		px_step_down(p, m->ballot);
	if (m->from != p->c.self) {
		px_set_leader(p, m->from, m->ballot);
		px_reset_election(p);
	}
	const uint8_t *val;
	struct px_reasm *r;
	int rc = ra_add(p, m, m->slot, m->ballot, 0, &val, &r);
	if (rc <= 0)
		return 0;
	rc = 0;
	if (px_validate_value(val, m->value_len) < 0) {
		rc = -EINVAL;
		goto out;
	}
	if (m->ballot > p->promised)
		p->promised = m->ballot; /* the ACCEPT record carries it */
	struct px_ent *e = px_ent_get(p, m->slot, true);
	if (e == NULL) {
		/* compacted slots are chosen: acknowledging them cannot change a value */
		if (m->slot < p->log_base)
			px_send_accepted(p, m->from, m->ballot, m->slot);
		goto commit;
	}
	if (e->chosen) {
		px_send_accepted(p, m->from, m->ballot, m->slot);
		goto commit;
	}
	uint8_t *v = malloc(m->value_len);
	if (v == NULL)
		goto out;
	memcpy(v, val, m->value_len);
	free(e->val);
	e->val = v;
	e->len = m->value_len;
	e->vballot = m->ballot;
	uint64_t t = px_persist(p, ZAP_LOG_ACCEPT, m->slot, m->ballot, v, m->value_len);
	px_pend_add(p, t, PX_PEND_ACCEPTED, m->from, m->ballot, m->slot);
commit:
	if (m->from != p->c.self)
		learn_commit(p, m->ballot, m->commit, m->from);
out:
	if (r)
		ra_free(r);
	return rc;
}

static void on_accepted(struct zap_paxos *p, const struct zap_paxos_msg *m)
{
	if (p->role != PX_LEADER || m->ballot != p->my_ballot)
		return;
	struct px_ent *e = px_ent_get(p, m->slot, false);
	if (e == NULL || e->pballot != p->my_ballot || e->pval == NULL)
		return;
	bool have = false;
	for (unsigned i = 0; i < e->n_acks; i++)
		have |= e->acks[i] == m->from;
	if (!have && e->n_acks < ZAP_PAXOS_MAX_NODES)
		e->acks[e->n_acks++] = m->from;
	if (e->chosen || !quorum_of(p, px_cfg_for(p, m->slot), e->acks, e->n_acks))
		return;
	if (e->val == NULL || e->len != e->plen || memcmp(e->val, e->pval, e->plen) != 0) {
		uint8_t *v = malloc(e->plen);
		if (v == NULL)
			return;
		memcpy(v, e->pval, e->plen);
		free(e->val);
		e->val = v;
		e->len = e->plen;
		/* chosen without this node's own accept: keep it as a learned value */
		px_persist(p, ZAP_LOG_ACCEPT, m->slot, 0, v, e->plen);
	}
	e->chosen = true;
	px_advance(p);
}

static void on_nack(struct zap_paxos *p, const struct zap_paxos_msg *m)
{
	if (m->ballot > p->max_seen)
		p->max_seen = m->ballot;
	if (p->role != PX_FOLLOWER && m->ballot > p->my_ballot)
		px_step_down(p, m->ballot);
	px_maybe_catchup(p, m->from, m->commit, false);
}

static void on_heartbeat(struct zap_paxos *p, const struct zap_paxos_msg *m)
{
	if (m->ballot < p->promised) {
		send_nack(p, m->from);
		return;
	}
	if (p->role != PX_FOLLOWER) {
		if (m->ballot <= p->my_ballot)
			return;
		px_step_down(p, m->ballot);
	}
	px_set_leader(p, m->from, m->ballot);
	px_reset_election(p);
	if (p->cmd_count > 0)
		px_flush_cmds(p);
	learn_commit(p, m->ballot, m->commit, m->from);
}

/* ---------------------------------------------------------------- commands */

static int on_forward(struct zap_paxos *p, const struct zap_paxos_msg *m)
{
	const uint8_t *val;
	struct px_reasm *r;
	int rc = ra_add(p, m, m->id, 0, 0, &val, &r);
	if (rc <= 0)
		return 0;
	if (p->role != PX_LEADER && p->leader != 0 && p->leader != p->c.self &&
	    p->leader != m->from && !(m->flags & ZAP_PAXOS_FLAG_REFORWARDED)) {
		struct zap_paxos_msg f = *m;
		f.from = p->c.self;
		f.to = p->leader;
		f.flags = ZAP_PAXOS_FLAG_REFORWARDED;
		f.epoch = p->cfg[0].epoch;
		px_send_value(p, f, val, m->value_len);
		p->st.commands_forwarded++;
	} else if (!px_enqueue_cmd(p, val, (uint32_t)m->value_len)) {
		p->st.commands_dropped++; /* the client retries */
	} else {
		px_propose_more(p);
	}
	if (r)
		ra_free(r);
	return 0;
}

/* ---------------------------------------------------------------- catch-up */

static void on_catchup_req(struct zap_paxos *p, const struct zap_paxos_msg *m)
{
	struct zap_paxos_msg o;
	memset(&o, 0, sizeof(o));
	o.from = p->c.self;
	o.to = m->from;
	o.epoch = p->cfg[0].epoch;
	o.commit = p->chosen_idx;
	if (m->slot <= p->snap_slot) {
		uint8_t *b = NULL;
		uint64_t len = px_encode_cfgs(p, &b);
		o.type = ZAP_PAXOS_MSG_SNAPSHOT_NEEDED;
		o.slot = p->snap_slot;
		if (b && len <= p->c.datagram_bytes) {
			o.payload = b;
			o.len = (uint32_t)len;
			o.value_len = len;
		}
		px_send(p, &o);
		free(b);
		return;
	}
	uint64_t end = m->slot, bytes = 0;
	while (end <= p->chosen_idx && end - m->slot < PX_CATCHUP_SLOTS && bytes < PX_CATCHUP_BYTES) {
		struct px_ent *e = px_ent_get(p, end, false);
		if (e == NULL || e->val == NULL)
			break;
		bytes += e->len;
		end++;
	}
	o.type = ZAP_PAXOS_MSG_CATCHUP;
	for (uint64_t s = m->slot; s < end; s++) {
		struct px_ent *e = px_ent_get(p, s, false);
		o.slot = s;
		o.flags = s + 1 == end ? ZAP_PAXOS_FLAG_LAST : 0;
		px_send_value(p, o, e->val, e->len);
	}
}

static int on_catchup(struct zap_paxos *p, const struct zap_paxos_msg *m)
{
	const uint8_t *val;
	struct px_reasm *r;
	int rc = ra_add(p, m, m->slot, 0, 0, &val, &r);
	if (rc <= 0)
		return 0;
	rc = 0;
	if (px_validate_value(val, m->value_len) < 0) {
		rc = -EINVAL;
		goto out;
	}
	struct px_ent *e = m->slot > p->chosen_idx ? px_ent_get(p, m->slot, true) : NULL;
	if (e != NULL && !e->chosen) {
		uint8_t *v = malloc(m->value_len);
		if (v == NULL)
			goto out;
		memcpy(v, val, m->value_len);
		free(e->val);
		e->val = v;
		e->len = m->value_len;
		e->chosen = true;
		/* ballot 0 marks a value learned chosen (restore treats it so) */
		px_persist(p, ZAP_LOG_ACCEPT, m->slot, 0, v, m->value_len);
		px_advance(p);
	}
	if (m->flags & ZAP_PAXOS_FLAG_LAST)
		px_maybe_catchup(p, m->from, m->commit, true);
out:
	if (r)
		ra_free(r);
	return rc;
}

static void on_snapshot_needed(struct zap_paxos *p, const struct zap_paxos_msg *m)
{
	if (m->slot <= p->chosen_idx || p->now_ns < p->snapshot_wait_until_ns)
		return;
	free(p->snap_cfg);
	p->snap_cfg = NULL;
	p->snap_cfg_len = 0;
	if (m->len > 0) {
		p->snap_cfg = malloc(m->len);
		if (p->snap_cfg) {
			memcpy(p->snap_cfg, m->payload, m->len);
			p->snap_cfg_len = m->len;
		}
	}
	p->snapshot_wait_until_ns = p->now_ns + 2 * p->c.election_timeout_ns;
	p->st.snapshots_needed++;
	struct zap_paxos_out *o = px_out_new(p, ZAP_PAXOS_OUT_SNAPSHOT_NEEDED);
	if (o) {
		o->node = m->from;
		o->slot = m->slot;
	}
}

/* ---------------------------------------------------------------- dispatch */

int px_handle(struct zap_paxos *p, const struct zap_paxos_msg *m)
{
	if (!validate_msg(p, m)) {
		p->st.messages_dropped++;
		return -EINVAL;
	}
	int rc = 0;
	switch (m->type) {
	case ZAP_PAXOS_MSG_PREPARE:
		on_prepare(p, m);
		break;
	case ZAP_PAXOS_MSG_PROMISE:
		rc = on_promise(p, m);
		break;
	case ZAP_PAXOS_MSG_ACCEPT:
		rc = on_accept(p, m);
		break;
	case ZAP_PAXOS_MSG_ACCEPTED:
		on_accepted(p, m);
		break;
	case ZAP_PAXOS_MSG_NACK:
		on_nack(p, m);
		break;
	case ZAP_PAXOS_MSG_HEARTBEAT:
		on_heartbeat(p, m);
		break;
	case ZAP_PAXOS_MSG_FORWARD:
		rc = on_forward(p, m);
		break;
	case ZAP_PAXOS_MSG_CATCHUP_REQ:
		on_catchup_req(p, m);
		break;
	case ZAP_PAXOS_MSG_CATCHUP:
		rc = on_catchup(p, m);
		break;
	case ZAP_PAXOS_MSG_SNAPSHOT_NEEDED:
		on_snapshot_needed(p, m);
		break;
	}
	if (rc < 0)
		p->st.messages_dropped++;
	return rc;
}
