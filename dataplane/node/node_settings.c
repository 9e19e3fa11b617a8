/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap node cluster-wide settings check (docs/operations.md, "Settings every
 * node must share"): the config keys that shape the replicated state (the
 * state machine's limits, the store's transaction ring, what one consensus
 * value may hold) must be equal on every node, or replicas would diverge.
 * Each node sends its values to every peer (wire type SETTINGS) until it has
 * the peer's, and takes no replication message from a peer whose values it
 * has not seen agree with its own: a node started with a different value
 * stays out of the cluster, and both sides log which key differs. A key
 * only one side knows (a zapd of another version, during a rolling upgrade)
 * is no conflict.
 *
 * Paxos stage only (the queued messages are sent by node_stages.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_core.h"

/** Ask a peer for its settings again after this long without them. */
#define SETTINGS_RESEND_NS (200ull * 1000 * 1000)
/** Largest settings text. */
#define SETTINGS_MAX_BYTES 1024u

enum { PEER_UNKNOWN = 0, PEER_MATCH, PEER_MISMATCH };

struct node_settings {
	char text[SETTINGS_MAX_BYTES]; /**< "key value\n" lines, in a fixed order */
	uint32_t len;
	/* per node of the config, by its index there */
	uint8_t peer[ZAP_CONFIG_MAX_NODES];
	uint64_t next_send_ns[ZAP_CONFIG_MAX_NODES];
	struct zap_paxos_msg out[2 * ZAP_CONFIG_MAX_NODES];
	unsigned out_n, out_pos;
};

static void add(struct node_settings *s, const char *key, uint64_t v)
{
	int k = snprintf(s->text + s->len, sizeof(s->text) - s->len, "%s %" PRIu64 "\n", key, v);
	if (k > 0 && (uint32_t)k < sizeof(s->text) - s->len)
		s->len += (uint32_t)k;
}

int zap_node_settings_init(struct zap_node *n)
{
	const struct zap_config *c = n->cfg;
	struct node_settings *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	/* what every replica must agree on: the state machine's parameters
	 * (zap_txn_params), the store's ring (snapshots carry it), the size of
	 * a consensus value (large entries are cut to fit it) */
	add(s, "store.max_record", c->store.max_record_bytes);
	add(s, "store.txn_ring_slots", c->store.txn_ring_slots);
	add(s, "txn.lease_ms", c->txn.lease_ms);
	add(s, "txn.max_sessions", c->txn.max_sessions);
	add(s, "txn.max_bytes", c->txn.max_bytes);
	add(s, "txn.max_objects", c->txn.max_objects);
	add(s, "txn.max_text_bytes", c->txn.max_text_bytes);
	add(s, "paxos.batch_bytes", c->paxos.batch_bytes);
	n->settings = s;
	return 0;
}

void zap_node_settings_free(struct zap_node *n)
{
	free(n->settings);
	n->settings = NULL;
}

/* Index of node @p id in the config, -1 when it is not one of its nodes. */
static int peer_index(const struct zap_node *n, uint16_t id)
{
	for (unsigned i = 0; i < n->cfg->n_nodes && i < ZAP_CONFIG_MAX_NODES; i++)
		if (n->cfg->nodes[i].id == id)
			return (int)i;
	return -1;
}

bool zap_node_settings_allow(struct zap_node *n, uint16_t from)
{
	const struct node_settings *s = n->settings;
	int i = peer_index(n, from);
	return s == NULL || (i >= 0 && s->peer[i] == PEER_MATCH);
}

static void send_to(struct zap_node *n, uint16_t to, bool want_reply)
{
	struct node_settings *s = n->settings;
	if (s->out_n == sizeof(s->out) / sizeof(s->out[0]))
		return;
	s->out[s->out_n++] = (struct zap_paxos_msg){.type = ZAP_WIRE_TYPE_SETTINGS,
						    .from = n->id,
						    .to = to,
						    .flags = want_reply ? ZAP_PAXOS_FLAG_LAST : 0,
						    .payload = s->text,
						    .len = s->len};
}

void zap_node_settings_tick(struct zap_node *n, uint64_t now)
{
	struct node_settings *s = n->settings;
	const struct zap_config *c = n->cfg;
	for (unsigned i = 0; i < c->n_nodes && i < ZAP_CONFIG_MAX_NODES; i++) {
		uint16_t id = c->nodes[i].id;
		if (id == n->id || s->peer[i] != PEER_UNKNOWN || now < s->next_send_ns[i])
			continue;
		s->next_send_ns[i] = now + SETTINGS_RESEND_NS;
		send_to(n, id, true);
	}
}

/*
 * Compare this node's settings @p a with a peer's @p b, key by key. A key
 * only one side has is no conflict (the other side's zapd is another
 * version: a rolling upgrade); a key both have with different values is.
 * @return true when they agree; else false with the first difference in @p why.
 */
static bool compare(const char *a, size_t alen, const char *b, size_t blen, char *why, size_t cap)
{
	for (size_t i = 0; i < alen;) {
		const char *nl = memchr(a + i, '\n', alen - i);
		size_t l = nl ? (size_t)(nl - (a + i)) : alen - i;
		const char *sp = memchr(a + i, ' ', l);
		if (sp != NULL) {
			size_t kl = (size_t)(sp - (a + i)), vl = l - kl - 1;
			for (size_t j = 0; j < blen;) {
				const char *nl2 = memchr(b + j, '\n', blen - j);
				size_t l2 = nl2 ? (size_t)(nl2 - (b + j)) : blen - j;
				if (l2 > kl && memcmp(b + j, a + i, kl) == 0 && b[j + kl] == ' ') {
					const char *other = b + j + kl + 1;
					size_t ol = l2 - kl - 1;
					if (ol != vl || memcmp(other, sp + 1, vl) != 0) {
						snprintf(why, cap, "%.*s: %.*s here, %.*s there", (int)kl,
							 a + i, (int)vl, sp + 1, (int)ol, other);
						return false;
					}
					break;
				}
				j += l2 + 1;
			}
		}
		i += l + 1;
	}
	return true;
}

void zap_node_settings_rx(struct zap_node *n, const struct zap_paxos_msg *m)
{
	struct node_settings *s = n->settings;
	uint16_t from = m->from;
	int i = peer_index(n, from);
	if (i < 0 || from == n->id) {
		n->cnt.settings_drops++;
		return;
	}
	char why[256];
	if (compare(s->text, s->len, m->payload, m->len, why, sizeof(why))) {
		if (s->peer[i] == PEER_MISMATCH)
			fprintf(stderr, "zapd: node %u: node %u now has the same settings\n", n->id,
				from);
		s->peer[i] = PEER_MATCH;
	} else {
		if (s->peer[i] != PEER_MISMATCH) {
			fprintf(stderr,
				"zapd: node %u: node %u's settings differ from this node's (%s): "
				"every node of a cluster must have the same value; the two nodes "
				"ignore each other until they do\n",
				n->id, from, why);
		}
		s->peer[i] = PEER_MISMATCH;
		n->cnt.settings_mismatches++;
	}
	/* a peer that asks (it lacks ours: it started, or restarted) gets them */
	if (m->flags & ZAP_PAXOS_FLAG_LAST)
		send_to(n, from, false);
}

const struct zap_paxos_msg *zap_node_settings_out_next(struct zap_node *n)
{
	struct node_settings *s = n->settings;
	if (s == NULL)
		return NULL;
	if (s->out_pos < s->out_n)
		return &s->out[s->out_pos++];
	s->out_n = s->out_pos = 0;
	return NULL;
}
