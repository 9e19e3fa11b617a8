/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap-sim network: messages between simulated nodes.
 *
 * A message sent by an engine is copied (its payload is only valid until
 * the next engine call) and delivered after a random delay drawn from the
 * simulation's PRNG: usually between delay_min_ns and delay_max_ns, now and
 * then (slow_ppm) much later, which reorders messages. A message may be lost
 * (loss_ppm) or delivered twice (dup_ppm). A partition cuts links: it
 * splits the node ids into two groups, or cuts the leader off alone, or
 * cuts the single link between the leader and one other node (both still
 * reach the rest: the duel of two would-be leaders over a shared acceptor).
 * A message over a cut link at delivery time is dropped, as is one
 * addressed to a node that is down. Nothing here
 * decides by wall time or by address: the same seed gives the same network.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

void sim_net_init(struct sim *s)
{
	struct sim_net *nt = &s->net;
	memset(nt, 0, sizeof(*nt));
	nt->delay_min_ns = 20 * SIM_NS_PER_US;
	nt->delay_max_ns = sim_rng_range(&s->rng, 100, 1500) * SIM_NS_PER_US;
	nt->slow_ppm = (uint32_t)sim_rng_range(&s->rng, 0, 30000);
	nt->slow_max_ns = sim_rng_range(&s->rng, 2, 40) * SIM_NS_PER_MS;
	nt->loss_ppm = (uint32_t)sim_rng_range(&s->rng, 0, 60000);
	nt->dup_ppm = (uint32_t)sim_rng_range(&s->rng, 0, 30000);
}

int sim_net_connected(const struct sim *s, uint16_t a, uint16_t b)
{
	if (a == 0 || b == 0 || a > SIM_MAX_NODES || b > SIM_MAX_NODES)
		return 0;
	return !((s->net.cut[a] >> b) & 1u);
}

static uint64_t net_delay(struct sim *s)
{
	struct sim_net *nt = &s->net;
	if (sim_rng_ppm(&s->rng, nt->slow_ppm))
		return sim_rng_range(&s->rng, nt->delay_max_ns, nt->slow_max_ns);
	return sim_rng_range(&s->rng, nt->delay_min_ns, nt->delay_max_ns);
}

static void net_enqueue(struct sim *s, const struct zap_paxos_msg *m)
{
	struct sim_msg *sm = sim_xrealloc(NULL, sizeof(*sm));
	sm->m = *m;
	sm->payload = NULL;
	if (m->len) {
		sm->payload = sim_xrealloc(NULL, m->len);
		memcpy(sm->payload, m->payload, m->len);
	}
	sm->m.payload = sm->payload;
	sim_schedule(s, s->now_ns + net_delay(s), EV_DELIVER, m->to, 0, 0, sm);
}

void sim_net_send(struct sim *s, const struct zap_paxos_msg *m)
{
	struct sim_net *nt = &s->net;
	nt->sent++;
	sim_trace(s, TR_SEND, m->type, m->from, m->to, m->ballot, m->slot, m->commit);
	if (m->to == 0 || m->to > SIM_MAX_NODES || m->to == m->from) {
		nt->dropped++;
		return;
	}
	if (sim_rng_ppm(&s->rng, nt->loss_ppm)) {
		nt->dropped++;
		sim_trace(s, TR_DROP, m->type, m->from, m->to, m->ballot, m->slot, 1);
		return;
	}
	net_enqueue(s, m);
	if (sim_rng_ppm(&s->rng, nt->dup_ppm))
		net_enqueue(s, m);
}

void sim_net_free(struct sim_msg *sm)
{
	if (!sm)
		return;
	free(sm->payload);
	free(sm);
}

void sim_net_deliver(struct sim *s, struct sim_msg *sm)
{
	const struct zap_paxos_msg *m = &sm->m;
	struct sim_node *n = &s->node[m->to - 1];
	if (!n->live || !sim_net_connected(s, m->from, m->to)) {
		s->net.dropped++;
		sim_trace(s, TR_DROP, m->type, m->from, m->to, m->ballot, m->slot, n->live ? 2 : 3);
		sim_net_free(sm);
		return;
	}
	s->net.delivered++;
	sim_trace(s, TR_DELIVER, m->type, m->from, m->to, m->ballot, m->slot, m->commit);
	n->in_engine = 1;
	zap_paxos_receive(n->px, s->now_ns, m);
	n->in_engine = 0;
	sim_net_free(sm);
	sim_node_drain(s, n);
}

static void net_cut(struct sim_net *nt, unsigned a, unsigned b)
{
	nt->cut[a] |= (uint16_t)(1u << b);
	nt->cut[b] |= (uint16_t)(1u << a);
}

/* Cut links: two random groups, the leader alone, or one leader link. */
void sim_net_partition(struct sim *s, uint16_t leader)
{
	struct sim_net *nt = &s->net;
	unsigned n = SIM_MAX_NODES;
	uint64_t how = leader ? sim_rng_below(&s->rng, 3) : 0;
	memset(nt->cut, 0, sizeof(nt->cut));
	if (how == 0) {
		uint8_t side[SIM_MAX_NODES + 1];
		for (;;) {
			unsigned ones = 0;
			for (unsigned i = 1; i <= n; i++) {
				side[i] = (uint8_t)sim_rng_below(&s->rng, 2);
				ones += side[i];
			}
			if (ones > 0 && ones < n)
				break;
		}
		for (unsigned i = 1; i <= n; i++)
			for (unsigned j = i + 1; j <= n; j++)
				if (side[i] != side[j])
					net_cut(nt, i, j);
	} else if (how == 1) {
		for (unsigned i = 1; i <= n; i++)
			if (i != leader)
				net_cut(nt, leader, i);
	} else {
		uint16_t other = leader;
		while (other == leader)
			other = (uint16_t)sim_rng_range(&s->rng, 1, s->opt.nodes);
		net_cut(nt, leader, other);
	}
	nt->partitioned = 1;
	nt->partition_gen++;
	uint64_t mask = 0;
	for (unsigned i = 1; i <= n; i++)
		mask |= (uint64_t)nt->cut[i] << (8 * (i - 1));
	sim_trace(s, TR_PARTITION, (uint8_t)how, leader, 0, mask, nt->partition_gen, 0);
}

void sim_net_heal(struct sim *s)
{
	memset(s->net.cut, 0, sizeof(s->net.cut));
	s->net.partitioned = 0;
	s->net.partition_gen++;
	sim_trace(s, TR_HEAL, 0, 0, 0, s->net.partition_gen, 0, 0);
}
