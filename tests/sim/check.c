/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap-sim invariants: what must hold at every step of every run.
 *
 *  1. One value per slot: every CHOSEN output of every node (restarts
 *     included) is compared byte for byte with the first one seen for the
 *     slot.
 *  2. Applied logs are prefixes of each other: a node applies CHOSEN in
 *     slot order with no gap (node.c), each slot equal to the one chosen,
 *     so any two applied logs agree on their common length.
 *  3. Equal applied slot, equal state: the store digest and the state
 *     machine digest after a slot are the same on every node that applies
 *     it (the first node's are kept per slot; every SIM_DIGEST_EVERY_SLOTS
 *     slots, since a digest walks the store, and on every member at the end).
 *  4. Acknowledged commits are never lost: every commit a client was told
 *     is OK (with its tid) must be readable, record for record, at its tid
 *     in the store of every node that has applied past the result's slot,
 *     including nodes rebuilt from their disk after a crash.
 *  5. Tids strictly increase along each node's applied log.
 *  6. Serializability: a model of the current serial of each hot oid is
 *     advanced by the first node to apply each slot; every commit's base
 *     serials and readCurrent serials must equal the model at its commit,
 *     and every conflict reported must be a real one.
 *  Plus exactly-once: every final result for one (client, seq), wherever
 *  and whenever it is emitted, is the same one.
 * (7, liveness after healing, is checked by sim.c at the end of a run.)
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static struct sim_chosen *chosen_at(struct sim *s, uint64_t slot)
{
	if (slot > s->n_chosen) {
		if (slot > s->cap_chosen) {
			size_t cap = s->cap_chosen ? s->cap_chosen : 256;
			while (cap < slot)
				cap *= 2;
			s->chosen = sim_xrealloc(s->chosen, cap * sizeof(*s->chosen));
			s->cap_chosen = cap;
		}
		memset(s->chosen + s->n_chosen, 0, (slot - s->n_chosen) * sizeof(*s->chosen));
		s->n_chosen = slot;
	}
	return &s->chosen[slot - 1];
}

void sim_check_chosen(struct sim *s, struct sim_node *n, uint64_t slot, const void *data,
		      uint64_t len)
{
	if (slot == 0) {
		sim_fail(s, "node %u: CHOSEN slot 0", n->id);
		return;
	}
	struct sim_chosen *c = chosen_at(s, slot);
	if (c->first_node == 0) {
		c->data = sim_xrealloc(NULL, len ? len : 1);
		if (len)
			memcpy(c->data, data, len);
		c->len = len;
		c->first_node = n->id;
		return;
	}
	if (c->len != len || (len && memcmp(c->data, data, len) != 0))
		sim_fail(s,
			 "invariant 1 (one value per slot): slot %" PRIu64 " chosen as %" PRIu64
			 " bytes (kind %d) by node %u and as %" PRIu64
			 " bytes (kind %d) by node %u",
			 slot, c->len, zap_paxos_value_kind(c->data, c->len), c->first_node, len,
			 zap_paxos_value_kind(data, len), n->id);
}

void sim_check_applied(struct sim *s, struct sim_node *n, uint64_t slot)
{
	if (slot % SIM_DIGEST_EVERY_SLOTS != 0)
		return; /* digests cost a walk of the store: every few slots, and at the end */
	struct sim_chosen *c = chosen_at(s, slot);
	uint64_t sd = zap_store_digest(n->store);
	uint64_t md = zap_txn_sm_digest(n->sm);
	if (!c->have_digest) {
		c->store_digest = sd;
		c->sm_digest = md;
		c->have_digest = 1;
		return;
	}
	if (c->store_digest != sd || c->sm_digest != md)
		sim_fail(s,
			 "invariant 3 (equal slot, equal state): after slot %" PRIu64
			 " node %u has store %016" PRIx64 " sm %016" PRIx64
			 ", node %u had store %016" PRIx64 " sm %016" PRIx64,
			 slot, n->id, sd, md, c->first_node, c->store_digest, c->sm_digest);
}

/* Exactly once: one final result per (client, seq). */
static void check_final(struct sim *s, struct sim_node *n, const struct zap_txn_result *r)
{
	if (r->client_id == 0 || r->client_id > s->n_clients || r->seq == 0)
		return;
	if (r->status == ZAP_TXN_WAITING || r->status == ZAP_TXN_STALE_REQUEST)
		return;
	unsigned ci = (unsigned)(r->client_id - 1);
	if (r->seq > s->n_finals[ci]) {
		if (r->seq > s->cap_finals[ci]) {
			size_t cap = s->cap_finals[ci] ? s->cap_finals[ci] : 64;
			while (cap < r->seq)
				cap *= 2;
			s->finals[ci] = sim_xrealloc(s->finals[ci], cap * sizeof(struct sim_final));
			s->cap_finals[ci] = cap;
		}
		memset(s->finals[ci] + s->n_finals[ci], 0,
		       (r->seq - s->n_finals[ci]) * sizeof(struct sim_final));
		s->n_finals[ci] = r->seq;
	}
	struct sim_final *f = &s->finals[ci][r->seq - 1];
	uint64_t tid = r->status == ZAP_TXN_OK ? r->tid : 0;
	if (f->seq == 0) {
		*f = (struct sim_final){.seq = r->seq,
					.status = r->status,
					.tid = tid,
					.txn_id = r->txn_id,
					.first_oid = r->first_oid};
		return;
	}
	if (f->status != r->status || f->tid != tid || f->txn_id != r->txn_id ||
	    f->first_oid != r->first_oid)
		sim_fail(s,
			 "exactly-once: client %" PRIu64 " seq %" PRIu64
			 " answered %s (tid %016" PRIx64 ") before and %s (tid %016" PRIx64
			 ", duplicate %u) by node %u",
			 r->client_id, r->seq, zap_txn_status_name(f->status), f->tid,
			 zap_txn_status_name(r->status), tid, r->duplicate, n->id);
}

static uint64_t model_serial(struct sim *s, uint64_t oid)
{
	return oid >= 1 && oid <= SIM_HOT_OIDS ? s->model_serial[oid] : UINT64_MAX;
}

/* Invariant 6 on one commit the model node applies. */
static void check_model_commit(struct sim *s, struct sim_node *n, const struct zap_txn_result *r)
{
	const struct sim_txn *t = sim_txn_get(s, r->txn_id);
	if (!t) {
		sim_fail(s, "node %u: commit of unknown txn %" PRIu64, n->id, r->txn_id);
		return;
	}
	if (r->tid <= s->model_last_tid) {
		sim_fail(s,
			 "invariant 5 (tids increase): commit tid %016" PRIx64 " after %016" PRIx64
			 " in the log",
			 r->tid, s->model_last_tid);
		return;
	}
	for (unsigned i = 0; i < t->n_stores; i++)
		if (t->base[i] != model_serial(s, t->oid[i])) {
			sim_fail(s,
				 "invariant 6 (serializable): txn %" PRIu64 " of client %u"
				 " committed tid %016" PRIx64 " on oid %" PRIu64 " base %016" PRIx64
				 " but the current serial is %016" PRIx64,
				 t->txn_id, t->client + 1, r->tid, t->oid[i], t->base[i],
				 model_serial(s, t->oid[i]));
			return;
		}
	for (unsigned i = 0; i < t->n_reads; i++)
		if (t->read_serial[i] != model_serial(s, t->read_oid[i])) {
			sim_fail(s,
				 "invariant 6 (serializable): txn %" PRIu64
				 " committed tid %016" PRIx64 " after reading oid %" PRIu64
				 " at %016" PRIx64 " but the current serial is %016" PRIx64,
				 t->txn_id, r->tid, t->read_oid[i], t->read_serial[i],
				 model_serial(s, t->read_oid[i]));
			return;
		}
	for (unsigned i = 0; i < t->n_stores; i++)
		s->model_serial[t->oid[i]] = r->tid;
	s->model_last_tid = r->tid;
}

/* A conflict must be real: the serial reported is the current one, and differs. */
static void check_model_conflict(struct sim *s, struct sim_node *n, const struct zap_txn_result *r)
{
	uint64_t cur = model_serial(s, r->oid);
	if (r->serial != cur || r->serial == r->base_serial)
		sim_fail(s,
			 "invariant 6 (conflicts are real): node %u answered %s for txn %" PRIu64
			 " on oid %" PRIu64 " serial %016" PRIx64 " base %016" PRIx64
			 " while the current serial is %016" PRIx64,
			 n->id, zap_txn_status_name(r->status), r->txn_id, r->oid, r->serial,
			 r->base_serial, cur);
}

void sim_check_result(struct sim *s, struct sim_node *n, const struct zap_txn_result *r)
{
	check_final(s, n, r);
	if (s->failed || r->duplicate)
		return;
	int commit = r->status == ZAP_TXN_OK &&
		     (r->entry_type == ZAP_ENTRY_ONESHOT || r->entry_type == ZAP_ENTRY_COMMIT);
	if (commit) {
		if (r->tid <= n->last_commit_tid) {
			sim_fail(s,
				 "invariant 5 (tids increase): node %u committed tid %016" PRIx64
				 " after %016" PRIx64,
				 n->id, r->tid, n->last_commit_tid);
			return;
		}
		n->last_commit_tid = r->tid;
	}
	if (!s->model_driving)
		return;
	if (commit)
		check_model_commit(s, n, r);
	else if (r->status == ZAP_TXN_CONFLICT || r->status == ZAP_TXN_READ_CONFLICT)
		check_model_conflict(s, n, r);
}

void sim_check_ack_add(struct sim *s, uint64_t tid, uint64_t slot, uint64_t txn_id)
{
	if (s->n_acks == s->cap_acks) {
		s->cap_acks = s->cap_acks ? s->cap_acks * 2 : 256;
		s->acks = sim_xrealloc(s->acks, s->cap_acks * sizeof(*s->acks));
	}
	s->acks[s->n_acks++] = (struct sim_ack){.tid = tid, .slot = slot, .txn_id = txn_id};
}

/* Invariant 4 for one acknowledged commit in one node's store. */
static void check_ack_in(struct sim *s, struct sim_node *n, const struct sim_ack *a)
{
	const struct sim_txn *t = sim_txn_get(s, a->txn_id);
	uint8_t want[256];
	if (!t)
		return;
	zap_store_read_begin(n->rd);
	for (unsigned i = 0; i < t->n_stores && !s->failed; i++) {
		struct zap_store_rev rev;
		int rc = zap_store_load_serial(n->rd, t->oid[i], a->tid, &rev);
		if (rc != 0) {
			sim_fail(s,
				 "invariant 4 (acknowledged commits stay): txn %" PRIu64
				 " acknowledged at tid %016" PRIx64 " (slot %" PRIu64
				 ") is missing on oid %" PRIu64 " in node %u at slot %" PRIu64,
				 t->txn_id, a->tid, a->slot, t->oid[i], n->id, n->applied_slot);
			break;
		}
		sim_txn_record(t->txn_id, t->oid[i], t->data_len[i], want);
		if (rev.len != t->data_len[i] || memcmp(rev.data, want, rev.len) != 0)
			sim_fail(s,
				 "invariant 4 (acknowledged commits stay): txn %" PRIu64
				 " oid %" PRIu64 " at tid %016" PRIx64
				 " holds other bytes in node %u",
				 t->txn_id, t->oid[i], a->tid, n->id);
	}
	zap_store_read_end(n->rd);
}

void sim_check_acks(struct sim *s)
{
	for (unsigned i = 0; i < SIM_MAX_NODES && !s->failed; i++) {
		struct sim_node *n = &s->node[i];
		if (!n->live)
			continue;
		while (n->acks_checked < s->n_acks && !s->failed) {
			const struct sim_ack *a = &s->acks[n->acks_checked];
			if (a->slot > n->applied_slot)
				break;
			check_ack_in(s, n, a);
			n->acks_checked++;
		}
	}
}

/* Invariant 3 once more when the run converged: every member on the last slot. */
void sim_check_final_state(struct sim *s)
{
	struct sim_node *first = NULL;
	uint64_t sd = 0, md = 0;
	for (unsigned i = 0; i < s->n_members && !s->failed; i++) {
		struct sim_node *n = &s->node[s->members[i] - 1];
		uint64_t d1 = zap_store_digest(n->store), d2 = zap_txn_sm_digest(n->sm);
		if (!first) {
			first = n;
			sd = d1;
			md = d2;
		} else if (d1 != sd || d2 != md) {
			sim_fail(
			    s,
			    "invariant 3 (equal slot, equal state): at the end, on slot %" PRIu64
			    ", node %u has store %016" PRIx64 " sm %016" PRIx64
			    ", node %u has store %016" PRIx64 " sm %016" PRIx64,
			    n->applied_slot, first->id, sd, md, n->id, d1, d2);
		}
	}
}

void sim_check_free(struct sim *s)
{
	for (size_t i = 0; i < s->n_chosen; i++)
		free(s->chosen[i].data);
	free(s->chosen);
	free(s->acks);
	free(s->txns);
	for (unsigned i = 0; i < SIM_MAX_CLIENTS; i++)
		free(s->finals[i]);
}
