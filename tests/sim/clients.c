/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap-sim clients: simulated ZODB clients that fight over a few hot oids.
 *
 * Each client has its own client id and an increasing request sequence,
 * talks to one node, and has at most one command outstanding. Commands:
 * ONESHOT (read the current serials of one or two hot oids from its node's
 * store, then store new records on those bases, sometimes with a
 * readCurrent check); PREPARE followed, once the vote passed, by COMMIT or
 * ABORT (each its own entry and its own submit); OID_RESERVE. Bases read
 * from a node that lags are stale, so conflicts are frequent.
 *
 * A client hears the results of its node only (the node's state machine
 * emits them as it applies chosen slots). WAITING is not an answer: the
 * final result follows. When no answer comes before the timeout, the client
 * sends the SAME bytes (same client id and seq) to another node: the state
 * machine's session table must execute it once.
 *
 * Every PREPARE / ONESHOT is registered in s->txns (oids, base serials,
 * reads) for the serializability check, and every OK commit a client sees
 * is registered as acknowledged (check.c verifies it is never lost).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define CLIENT_TIMEOUT_MIN_NS (30 * SIM_NS_PER_MS)
#define CLIENT_TIMEOUT_MAX_NS (80 * SIM_NS_PER_MS)
#define CLIENT_THINK_MAX_NS (5 * SIM_NS_PER_MS)
#define CLIENT_RECORD_MAX_BYTES 64u
#define CLIENT_OID_RESERVE_MAX 16u

/* Deterministic record bytes of a transaction's store, for verification. */
void sim_txn_record(uint64_t txn_id, uint64_t oid, uint32_t len, uint8_t *out)
{
	uint64_t x = txn_id * 0x100000001b3ull ^ oid;
	for (uint32_t i = 0; i < len; i++) {
		if ((i & 7) == 0)
			x = sim_splitmix64(&x);
		out[i] = (uint8_t)(x >> ((i & 7) * 8));
	}
}

const struct sim_txn *sim_txn_get(const struct sim *s, uint64_t txn_id)
{
	if (txn_id == 0 || txn_id > s->n_txns)
		return NULL;
	return &s->txns[txn_id - 1];
}

static struct sim_txn *txn_new(struct sim *s, unsigned ci)
{
	if (s->n_txns == s->cap_txns) {
		s->cap_txns = s->cap_txns ? s->cap_txns * 2 : 256;
		s->txns = sim_xrealloc(s->txns, s->cap_txns * sizeof(*s->txns));
	}
	struct sim_txn *t = &s->txns[s->n_txns++];
	memset(t, 0, sizeof(*t));
	t->txn_id = s->n_txns;
	t->client = (uint16_t)ci;
	return t;
}

void sim_clients_init(struct sim *s)
{
	s->n_clients = s->opt.clients;
	for (unsigned i = 0; i < s->n_clients; i++) {
		struct sim_client *c = &s->client[i];
		memset(c, 0, sizeof(*c));
		c->id = i + 1;
		c->node = s->members[sim_rng_below(&s->rng, s->n_members)];
		sim_schedule(s, sim_rng_range(&s->rng, 1, 20) * SIM_NS_PER_MS, EV_CLIENT,
			     (uint16_t)i, c->gen, 0, NULL);
	}
}

void sim_clients_free(struct sim *s)
{
	for (unsigned i = 0; i < s->n_clients; i++)
		free(s->client[i].cmd);
}

int sim_clients_idle(const struct sim *s)
{
	for (unsigned i = 0; i < s->n_clients; i++)
		if (s->client[i].state == CL_WAIT || s->client[i].prepared)
			return 0;
	return 1;
}

/* A member node that is up, preferring one other than @p avoid; 0 if none. */
static uint16_t pick_node(struct sim *s, uint16_t avoid)
{
	uint16_t up[SIM_MAX_NODES];
	unsigned k = 0;
	for (unsigned i = 0; i < s->n_members; i++) {
		uint16_t id = s->members[i];
		if (s->node[id - 1].live && id != avoid)
			up[k++] = id;
	}
	if (k == 0)
		return s->node[avoid - 1].live ? avoid : 0;
	return up[sim_rng_below(&s->rng, k)];
}

static void client_arm_timeout(struct sim *s, unsigned ci)
{
	struct sim_client *c = &s->client[ci];
	c->gen++;
	c->timeout_ns = sim_rng_range(&s->rng, CLIENT_TIMEOUT_MIN_NS, CLIENT_TIMEOUT_MAX_NS);
	sim_schedule(s, s->now_ns + c->timeout_ns, EV_CLIENT, (uint16_t)ci, c->gen, 0, NULL);
}

static void client_send(struct sim *s, unsigned ci)
{
	struct sim_client *c = &s->client[ci];
	struct sim_node *n = &s->node[c->node - 1];
	c->sent_at_ns = s->now_ns;
	sim_trace(s, TR_SUBMIT, c->cmd_type, c->node, (uint16_t)c->id, c->seq, c->txn_id, c->tries);
	if (n->live && !n->in_engine) {
		n->in_engine = 1;
		int rc = zap_paxos_submit(n->px, s->now_ns, c->cmd, c->cmd_len);
		n->in_engine = 0;
		if (rc < 0)
			sim_trace(s, TR_NOTE, 1, c->node, (uint16_t)c->id, (uint64_t)-rc, 0, 0);
		sim_node_drain(s, n);
	}
	client_arm_timeout(s, ci);
}

static void client_encode(struct sim *s, unsigned ci, const struct zap_entry *e)
{
	struct sim_client *c = &s->client[ci];
	size_t sz = zap_entry_size(e);
	if (sz == 0) {
		sim_fail(s, "client %u: zap_entry_size failed", (unsigned)c->id);
		return;
	}
	c->cmd = sim_xrealloc(c->cmd, sz);
	ssize_t w = zap_entry_encode(e, c->cmd, sz);
	if (w < 0) {
		sim_fail(s, "client %u: zap_entry_encode failed: %zd", (unsigned)c->id, w);
		return;
	}
	c->cmd_len = (uint32_t)w;
	c->cmd_type = e->type;
}

/* Build a PREPARE or ONESHOT from the serials the client's node shows now. */
static void client_build_txn(struct sim *s, unsigned ci, uint8_t type)
{
	struct sim_client *c = &s->client[ci];
	struct sim_node *n = &s->node[c->node - 1];
	struct sim_txn *t = txn_new(s, ci);
	struct zap_entry_store st[SIM_MAX_TXN_STORES];
	struct zap_entry_read rd[SIM_MAX_TXN_READS];
	uint8_t rec[SIM_MAX_TXN_STORES][CLIENT_RECORD_MAX_BYTES];

	unsigned used = 0; /* bit per hot oid */
	t->n_stores = (unsigned)sim_rng_range(&s->rng, 1, 2);
	for (unsigned i = 0; i < t->n_stores; i++) {
		uint64_t oid;
		do
			oid = sim_rng_range(&s->rng, 1, SIM_HOT_OIDS);
		while (used & (1u << oid));
		used |= 1u << oid;
		t->oid[i] = oid;
	}
	if (sim_rng_below(&s->rng, 4) == 0) {
		uint64_t oid;
		do
			oid = sim_rng_range(&s->rng, 1, SIM_HOT_OIDS);
		while (used & (1u << oid));
		t->n_reads = 1;
		t->read_oid[0] = oid;
	}
	zap_store_read_begin(n->rd);
	for (unsigned i = 0; i < t->n_stores + t->n_reads; i++) {
		uint64_t oid = i < t->n_stores ? t->oid[i] : t->read_oid[i - t->n_stores];
		struct zap_store_rev rev;
		uint64_t serial = zap_store_load(n->rd, oid, &rev) == 0 ? rev.serial : 0;
		if (i < t->n_stores)
			t->base[i] = serial;
		else
			t->read_serial[i - t->n_stores] = serial;
	}
	zap_store_read_end(n->rd);
	/* now and then a client works from a base older than its node shows */
	if (t->base[0] != 0 && sim_rng_below(&s->rng, 20) == 0)
		t->base[0] = 0;

	for (unsigned i = 0; i < t->n_stores; i++) {
		t->data_len[i] = (uint32_t)sim_rng_range(&s->rng, 1, CLIENT_RECORD_MAX_BYTES);
		sim_txn_record(t->txn_id, t->oid[i], t->data_len[i], rec[i]);
		st[i] = (struct zap_entry_store){.oid = t->oid[i],
						 .base_serial = t->base[i],
						 .data = rec[i],
						 .len = t->data_len[i]};
	}
	for (unsigned i = 0; i < t->n_reads; i++)
		rd[i] = (struct zap_entry_read){.oid = t->read_oid[i], .serial = t->read_serial[i]};
	struct zap_entry e = {.type = type,
			      .node = c->node,
			      .client_id = c->id,
			      .seq = c->seq,
			      .clock_ns = sim_node_wall_ns(s, n)};
	e.u.txn = (struct zap_entry_txn){.txn_id = t->txn_id,
					 .text = {.user = "sim", .user_len = 3},
					 .stores = st,
					 .n_stores = t->n_stores,
					 .reads = rd,
					 .n_reads = t->n_reads};
	c->txn_id = t->txn_id;
	client_encode(s, ci, &e);
}

static void client_start(struct sim *s, unsigned ci)
{
	struct sim_client *c = &s->client[ci];
	if (!c->prepared && s->load_stopped) {
		c->state = CL_DONE;
		return;
	}
	if (!s->node[c->node - 1].live || !sim_node_is_member(s, c->node)) {
		uint16_t id = pick_node(s, c->node);
		if (id == 0) { /* nobody up: try again later */
			c->gen++;
			sim_schedule(s, s->now_ns + SIM_NS_PER_MS, EV_CLIENT, (uint16_t)ci, c->gen,
				     0, NULL);
			return;
		}
		c->node = id;
	}
	struct sim_node *n = &s->node[c->node - 1];
	c->seq++;
	c->tries = 0;
	if (c->prepared) {
		uint8_t type = sim_rng_below(&s->rng, 4) ? ZAP_ENTRY_COMMIT : ZAP_ENTRY_ABORT;
		struct zap_entry e = {.type = type,
				      .node = c->node,
				      .client_id = c->id,
				      .seq = c->seq,
				      .clock_ns = sim_node_wall_ns(s, n)};
		e.u.txn_id = c->txn_id;
		client_encode(s, ci, &e);
	} else {
		uint64_t r = sim_rng_below(&s->rng, 100);
		if (r < 50) {
			client_build_txn(s, ci, ZAP_ENTRY_ONESHOT);
		} else if (r < 88) {
			client_build_txn(s, ci, ZAP_ENTRY_PREPARE);
		} else {
			struct zap_entry e = {.type = ZAP_ENTRY_OID_RESERVE,
					      .node = c->node,
					      .client_id = c->id,
					      .seq = c->seq,
					      .clock_ns = sim_node_wall_ns(s, n)};
			e.u.oid_count = (uint32_t)sim_rng_range(&s->rng, 1, CLIENT_OID_RESERVE_MAX);
			c->txn_id = 0;
			client_encode(s, ci, &e);
		}
	}
	if (s->failed)
		return;
	c->state = CL_WAIT;
	client_send(s, ci);
}

void sim_client_event(struct sim *s, unsigned ci, uint32_t gen)
{
	struct sim_client *c = &s->client[ci];
	if (gen != c->gen || c->state == CL_DONE)
		return;
	if (c->state == CL_IDLE) {
		client_start(s, ci);
		return;
	}
	/* timed out: the same bytes to another node */
	uint16_t id = pick_node(s, c->node);
	if (id)
		c->node = id;
	c->tries++;
	c->retries++;
	client_send(s, ci);
}

void sim_clients_result(struct sim *s, struct sim_node *n, const struct zap_txn_result *r)
{
	if (r->client_id == 0 || r->client_id > s->n_clients)
		return;
	unsigned ci = (unsigned)(r->client_id - 1);
	struct sim_client *c = &s->client[ci];
	if (c->state != CL_WAIT || c->node != n->id || r->seq != c->seq)
		return;
	if (r->status == ZAP_TXN_WAITING || r->status == ZAP_TXN_STALE_REQUEST)
		return;
	sim_trace(s, TR_RESULT, r->entry_type, n->id, (uint16_t)c->id, r->seq, r->status, r->tid);
	c->answered++;
	uint64_t slot = (r->index - 1) / SIM_SLOT_INDEX_SPAN;
	switch (c->cmd_type) {
	case ZAP_ENTRY_ONESHOT:
	case ZAP_ENTRY_COMMIT:
		if (r->status == ZAP_TXN_OK) {
			c->commits++;
			sim_check_ack_add(s, r->tid, slot, c->txn_id);
		} else {
			c->conflicts++;
		}
		c->prepared = 0;
		break;
	case ZAP_ENTRY_PREPARE:
		c->prepared = r->status == ZAP_TXN_OK;
		if (!c->prepared)
			c->conflicts++;
		break;
	default:
		c->prepared = 0;
		break;
	}
	c->state = CL_IDLE;
	c->gen++;
	sim_schedule(s,
		     s->now_ns + sim_rng_range(&s->rng, 100 * SIM_NS_PER_US, CLIENT_THINK_MAX_NS),
		     EV_CLIENT, (uint16_t)ci, c->gen, 0, NULL);
}
