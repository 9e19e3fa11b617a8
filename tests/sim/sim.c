/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap-sim run loop: one seed, one simulated cluster, start to verdict.
 *
 * Time is simulated (ns). Events (message deliveries, disk syncs, crashes,
 * restarts, client timers, partition heals) wait in a binary heap ordered
 * by (time, insertion number), so equal times keep a fixed order. Between
 * events a coarse tick every SIM_TICK_NS ticks the engines whose deadline
 * has come, rolls the fault dice and checks acknowledged commits.
 *
 * A run has two phases. Load + faults (fault_time_ns): clients commit
 * while nodes crash and restart (some right after writing a promise or an
 * accept), the network partitions, loses, duplicates and reorders, and the
 * membership changes (a node removed, then added back empty or replaced by
 * a new id), one change at a time. Quiet: every crashed member restarts,
 * the network heals and stops losing, clients finish what they started and
 * start nothing new; within quiet_time_ns every member must have applied
 * the same last slot and every client must have its answers (invariant 7).
 *
 * --break NAME switches off one safety mechanism in the engine or the
 * state machine and makes the fault schedule harsher, so that the checker
 * must catch it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define SIM_MEMBER_RETRY_NS (300 * SIM_NS_PER_MS)

void *sim_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) {
		fprintf(stderr, "zap-sim: out of memory\n");
		abort();
	}
	return q;
}

void sim_fail(struct sim *s, const char *fmt, ...)
{
	if (s->failed)
		return;
	s->failed = 1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
	sim_trace(s, TR_NOTE, 0, 0, 0, 0, 0, 0);
}

/* ---------------------------------------------------------------- events */

static int ev_before(const struct sim_event *a, const struct sim_event *b)
{
	return a->at_ns < b->at_ns || (a->at_ns == b->at_ns && a->order < b->order);
}

void sim_schedule(struct sim *s, uint64_t at_ns, uint8_t kind, uint16_t node, uint32_t gen,
		  uint64_t arg, void *ptr)
{
	if (s->heap_n == s->heap_cap) {
		s->heap_cap = s->heap_cap ? s->heap_cap * 2 : 1024;
		s->heap = sim_xrealloc(s->heap, s->heap_cap * sizeof(*s->heap));
	}
	struct sim_event e = {.at_ns = at_ns,
			      .order = s->next_order++,
			      .kind = kind,
			      .node = node,
			      .gen = gen,
			      .arg = arg,
			      .ptr = ptr};
	size_t i = s->heap_n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!ev_before(&e, &s->heap[p]))
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = e;
}

static struct sim_event heap_pop(struct sim *s)
{
	struct sim_event top = s->heap[0];
	struct sim_event last = s->heap[--s->heap_n];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct sim_event *mv = &last;
		if (l < s->heap_n && ev_before(&s->heap[l], mv)) {
			m = l;
			mv = &s->heap[l];
		}
		if (r < s->heap_n && ev_before(&s->heap[r], mv))
			m = r;
		if (m == i)
			break;
		s->heap[i] = s->heap[m];
		i = m;
	}
	if (s->heap_n)
		s->heap[i] = last;
	return top;
}

/* ---------------------------------------------------------------- faults */

static void fault_profile(struct sim *s)
{
	struct sim_rng *r = &s->rng;
	int harsh = s->opt.brk != SIM_BREAK_NONE || sim_rng_below(r, 4) == 0;
	s->crash_ppm_per_tick = s->opt.no_crash ? 0 : (uint32_t)sim_rng_range(r, 0, 6000);
	s->leader_crash_ppm_per_tick = s->opt.no_crash ? 0 : (uint32_t)sim_rng_range(r, 0, 3000);
	s->crash_after_persist_ppm = s->opt.no_crash ? 0 : (uint32_t)sim_rng_range(r, 0, 3000);
	s->partition_ppm_per_tick = (uint32_t)sim_rng_range(r, 0, 5000);
	s->member_ppm_per_tick = s->opt.no_membership ? 0 : (uint32_t)sim_rng_range(r, 0, 8000);
	s->sync_min_ns = 10 * SIM_NS_PER_US;
	s->sync_max_ns = sim_rng_range(r, 100, 2000) * SIM_NS_PER_US;
	s->restart_min_ns = 2 * SIM_NS_PER_MS;
	s->heartbeat_ns = 10 * SIM_NS_PER_MS;
	s->election_timeout_ns = 50 * SIM_NS_PER_MS;
	s->restart_max_ns = sim_rng_range(r, 10, 100) * SIM_NS_PER_MS;
	if (harsh && !s->opt.no_crash) {
		/* crashes right after promises and accepts, leaders killed often,
		 * slow disks: what it takes to expose a missing safety mechanism */
		s->crash_after_persist_ppm = (uint32_t)sim_rng_range(r, 10000, 60000);
		s->leader_crash_ppm_per_tick = (uint32_t)sim_rng_range(r, 5000, 20000);
		s->sync_max_ns = sim_rng_range(r, 1000, 6000) * SIM_NS_PER_US;
		s->restart_max_ns = sim_rng_range(r, 5, 30) * SIM_NS_PER_MS;
		/* elections often: timeouts close to the heartbeat, duels likely */
		s->heartbeat_ns = sim_rng_range(r, 3, 8) * SIM_NS_PER_MS;
		s->election_timeout_ns = s->heartbeat_ns * sim_rng_range(r, 2, 4);
	}
	if (s->opt.brk == SIM_BREAK_FORGET_PROMISE) {
		/* the duel: two would-be leaders that cannot hear each other share an
		 * acceptor that crashes right after its promise and is back at once */
		s->partition_ppm_per_tick = (uint32_t)sim_rng_range(r, 10000, 40000);
		s->restart_min_ns = SIM_NS_PER_MS / 2;
		s->restart_max_ns = sim_rng_range(r, 1, 6) * SIM_NS_PER_MS;
	}
}

static void crash_and_schedule_restart(struct sim *s, struct sim_node *n, const char *why)
{
	if (!n->live)
		return;
	sim_node_crash(s, n, why);
	uint64_t at = s->now_ns + sim_rng_range(&s->rng, s->restart_min_ns, s->restart_max_ns);
	n->restart_at_ns = at;
	sim_schedule(s, at, EV_RESTART, n->id, n->gen, 0, NULL);
}

static struct sim_node *random_live_member(struct sim *s)
{
	struct sim_node *up[SIM_MAX_NODES];
	unsigned k = 0;
	for (unsigned i = 0; i < s->n_members; i++) {
		struct sim_node *n = &s->node[s->members[i] - 1];
		if (n->live)
			up[k++] = n;
	}
	return k ? up[sim_rng_below(&s->rng, k)] : NULL;
}

static void fault_dice(struct sim *s)
{
	struct sim_rng *r = &s->rng;
	if (sim_rng_ppm(r, s->crash_ppm_per_tick)) {
		struct sim_node *n = random_live_member(s);
		if (n)
			crash_and_schedule_restart(s, n, "random");
	}
	if (sim_rng_ppm(r, s->leader_crash_ppm_per_tick)) {
		struct sim_node *l = sim_leader(s);
		if (l)
			crash_and_schedule_restart(s, l, "leader");
	}
	if (!s->net.partitioned && sim_rng_ppm(r, s->partition_ppm_per_tick)) {
		struct sim_node *l = sim_leader(s);
		sim_net_partition(s, l ? l->id : 0);
		uint64_t at = s->now_ns + sim_rng_range(r, 5, 120) * SIM_NS_PER_MS;
		sim_schedule(s, at, EV_HEAL, 0, 0, s->net.partition_gen, NULL);
	}
}

/* ---------------------------------------------------------------- membership */

static int member_propose(struct sim *s, const uint16_t *m, unsigned k)
{
	struct sim_node *l = sim_leader(s);
	if (!l || l->in_engine)
		return -EPERM;
	l->in_engine = 1;
	int rc = zap_paxos_propose_config(l->px, s->now_ns, m, k);
	l->in_engine = 0;
	sim_trace(s, TR_CONFIG, 0, l->id, 0, k, (uint64_t)(int64_t)rc, m[k - 1]);
	sim_node_drain(s, l);
	return rc;
}

static int config_effective(const struct sim *s)
{
	return s->model_slot > s->config_effective_slot;
}

static void member_start_remove(struct sim *s)
{
	struct sim_node *l = sim_leader(s);
	if (!l || s->n_members < 3)
		return;
	uint16_t m[SIM_MAX_NODES], victim;
	do
		victim = s->members[sim_rng_below(&s->rng, s->n_members)];
	while (victim == l->id);
	unsigned k = 0;
	for (unsigned i = 0; i < s->n_members; i++)
		if (s->members[i] != victim)
			m[k++] = s->members[i];
	if (member_propose(s, m, k) != 0)
		return;
	s->member_op = 1;
	s->member_target = victim;
	s->member_op_since_ns = s->now_ns;
	s->member_add_id = victim;	 /* added back empty ... */
	if (sim_rng_below(&s->rng, 2)) { /* ... or replaced by a never-used id */
		for (uint16_t id = 1; id <= SIM_MAX_NODES; id++)
			if (!s->node[id - 1].exists && id != victim) {
				s->member_add_id = id;
				break;
			}
	}
	sim_trace(s, TR_REMOVE, 0, victim, s->member_add_id, k, 0, 0);
}

static void member_target_config(const struct sim *s, uint16_t add, uint16_t *m, unsigned *k)
{
	*k = 0;
	for (unsigned i = 0; i < s->n_members; i++)
		if (s->members[i] != add)
			m[(*k)++] = s->members[i];
	m[(*k)++] = add;
}

static void member_step(struct sim *s)
{
	if (s->member_op == 1) {
		if (sim_node_is_member(s, s->member_target) || !config_effective(s)) {
			if (s->now_ns - s->member_op_since_ns > SIM_MEMBER_RETRY_NS) {
				uint16_t m[SIM_MAX_NODES];
				unsigned k = 0;
				for (unsigned i = 0; i < s->n_members; i++)
					if (s->members[i] != s->member_target)
						m[k++] = s->members[i];
				if (sim_node_is_member(s, s->member_target))
					member_propose(s, m, k);
				s->member_op_since_ns = s->now_ns;
			}
			return;
		}
		/* the removal rules: the node goes away for good, disk and all */
		struct sim_node *v = &s->node[s->member_target - 1];
		sim_node_crash(s, v, "Removed");
		v->restart_at_ns = 0;
		v->gen++;
		sim_disk_wipe(&v->disk);
		v->exists = 0;
		uint16_t m[SIM_MAX_NODES];
		unsigned k;
		member_target_config(s, s->member_add_id, m, &k);
		if (member_propose(s, m, k) != 0)
			return; /* again at the next tick */
		struct sim_node *a = &s->node[s->member_add_id - 1];
		sim_disk_wipe(&a->disk);
		memcpy(a->boot_members, m, sizeof(m));
		a->n_boot = k;
		a->clock_skew_ns = (int64_t)sim_rng_range(&s->rng, 0, 4 * SIM_NS_PER_MS) -
				   (int64_t)(2 * SIM_NS_PER_MS);
		sim_trace(s, TR_ADD, 0, a->id, 0, k, 0, 0);
		s->member_op = 2;
		s->member_op_since_ns = s->now_ns;
		sim_node_boot(s, a);
		return;
	}
	if (s->member_op == 2) {
		if (sim_node_is_member(s, s->member_add_id)) {
			s->member_op = 0;
			return;
		}
		if (s->now_ns - s->member_op_since_ns > SIM_MEMBER_RETRY_NS) {
			uint16_t m[SIM_MAX_NODES];
			unsigned k;
			if (!sim_node_is_member(s, s->member_add_id)) {
				member_target_config(s, s->member_add_id, m, &k);
				member_propose(s, m, k);
			}
			s->member_op_since_ns = s->now_ns;
		}
		return;
	}
	if (!s->quiet && sim_rng_ppm(&s->rng, s->member_ppm_per_tick) && config_effective(s))
		member_start_remove(s);
}

/* ---------------------------------------------------------------- phases */

static void enter_quiet(struct sim *s)
{
	s->quiet = 1;
	s->load_stopped = 1;
	s->quiet_since_ns = s->now_ns;
	s->net.loss_ppm = 0;
	s->net.dup_ppm = 0;
	s->net.slow_ppm = 0;
	if (s->net.partitioned)
		sim_net_heal(s);
	sim_trace(s, TR_PHASE, 1, 0, 0, 0, 0, 0);
	for (unsigned i = 0; i < SIM_MAX_NODES && !s->failed; i++) {
		struct sim_node *n = &s->node[i];
		if (n->exists && !n->live && sim_node_is_member(s, n->id))
			sim_node_boot(s, n);
	}
	/* idle clients must not stay parked on a timer from the fault phase */
	for (unsigned i = 0; i < s->n_clients; i++)
		if (s->client[i].state == CL_IDLE)
			sim_schedule(s, s->now_ns, EV_CLIENT, (uint16_t)i, s->client[i].gen, 0,
				     NULL);
}

/* Invariant 7: every member up, on the same last slot, every client answered. */
static int converged(struct sim *s)
{
	if (!sim_clients_idle(s))
		return 0;
	for (unsigned i = 0; i < s->n_members; i++) {
		struct sim_node *n = &s->node[s->members[i] - 1];
		if (!n->live || n->applied_slot != s->n_chosen)
			return 0;
	}
	return 1;
}

static void liveness_report(struct sim *s)
{
	char buf[256];
	size_t off = 0;
	for (unsigned i = 0; i < s->n_members && off < sizeof(buf); i++) {
		struct sim_node *n = &s->node[s->members[i] - 1];
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, " n%u:%s@%" PRIu64, n->id,
					n->live ? "up" : "down", n->applied_slot);
	}
	unsigned waiting = 0;
	for (unsigned i = 0; i < s->n_clients; i++)
		waiting += s->client[i].state == CL_WAIT || s->client[i].prepared;
	sim_fail(s,
		 "invariant 7 (liveness): not converged %" PRIu64 " ms after healing:"
		 " chosen up to %zu,%s; %u clients waiting; membership op %d",
		 (uint64_t)((s->now_ns - s->quiet_since_ns) / SIM_NS_PER_MS), s->n_chosen, buf,
		 waiting, s->member_op);
}

static void tick(struct sim *s)
{
	for (unsigned i = 0; i < SIM_MAX_NODES && !s->failed; i++)
		sim_node_tick(s, &s->node[i]);
	if (!s->quiet && !s->failed)
		fault_dice(s);
	if (!s->failed && !s->quiet)
		member_step(s);
	if (!s->failed)
		sim_check_acks(s);
}

static void handle(struct sim *s, struct sim_event *e)
{
	struct sim_node *n =
	    e->node >= 1 && e->node <= SIM_MAX_NODES ? &s->node[e->node - 1] : NULL;
	switch (e->kind) {
	case EV_DELIVER:
		sim_net_deliver(s, e->ptr);
		break;
	case EV_SYNC:
		if (n->live && e->gen == n->gen)
			sim_disk_sync_done(s, n, e->arg);
		break;
	case EV_CRASH:
		if (n->live && e->gen == n->gen && !s->quiet)
			crash_and_schedule_restart(s, n, "after persist");
		break;
	case EV_RESTART:
		if (!n->live && n->exists && e->gen == n->gen && n->restart_at_ns)
			sim_node_boot(s, n);
		break;
	case EV_CLIENT:
		sim_client_event(s, e->node, e->gen);
		break;
	case EV_HEAL:
		if (s->net.partitioned && e->arg == s->net.partition_gen)
			sim_net_heal(s);
		break;
	}
}

/* ---------------------------------------------------------------- run */

static uint32_t paxos_break_bits(enum sim_break b)
{
	switch (b) {
	case SIM_BREAK_SKIP_PHASE1:
		return ZAP_PAXOS_BREAK_SKIP_PHASE1;
	case SIM_BREAK_REPLY_BEFORE_DURABLE:
		return ZAP_PAXOS_BREAK_REPLY_BEFORE_DURABLE;
	case SIM_BREAK_FORGET_PROMISE:
		return ZAP_PAXOS_BREAK_FORGET_PROMISE;
	case SIM_BREAK_IGNORE_PROMISED_VALUES:
		return ZAP_PAXOS_BREAK_IGNORE_PROMISED_VALUES;
	default:
		return 0;
	}
}

static void sim_setup(struct sim *s, const struct sim_options *o, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->opt = *o;
	s->seed = seed;
	sim_rng_seed(&s->rng, seed ^ ((uint64_t)o->nodes << 56));
	s->paxos_break = paxos_break_bits(o->brk);
	s->txn_break = o->brk == SIM_BREAK_CONFLICT_CHECK_OFF ? ZAP_TXN_BREAK_CONFLICT_CHECK : 0;
	s->config_delay_slots = o->window_slots;
	s->n_members = o->nodes;
	for (unsigned i = 0; i < o->nodes; i++)
		s->members[i] = (uint16_t)(i + 1);
	for (unsigned i = 0; i < SIM_MAX_NODES; i++)
		s->node[i].id = (uint16_t)(i + 1);
	fault_profile(s);
	sim_net_init(s);
}

static void sim_teardown(struct sim *s)
{
	for (unsigned i = 0; i < SIM_MAX_NODES; i++) {
		sim_node_destroy(&s->node[i]);
		sim_disk_wipe(&s->node[i].disk);
	}
	while (s->heap_n) {
		struct sim_event e = heap_pop(s);
		if (e.kind == EV_DELIVER)
			sim_net_free(e.ptr);
	}
	free(s->heap);
	sim_clients_free(s);
	sim_check_free(s);
	free(s->scratch);
}

static void sim_loop(struct sim *s)
{
	uint64_t next_tick = SIM_TICK_NS;
	uint64_t fault_end = s->opt.fault_time_ns;
	while (!s->failed) {
		if (++s->steps > s->opt.max_steps) {
			sim_fail(s, "step bound: %" PRIu64 " events without a verdict",
				 s->opt.max_steps);
			break;
		}
		if (s->heap_n == 0 || s->heap[0].at_ns >= next_tick) {
			s->now_ns = next_tick;
			next_tick += SIM_TICK_NS;
			if (!s->quiet && s->now_ns >= fault_end)
				enter_quiet(s);
			tick(s);
			if (s->failed || !s->quiet)
				continue;
			if (converged(s)) {
				sim_check_acks(s);
				sim_check_final_state(s);
				break;
			}
			if (s->now_ns - s->quiet_since_ns > s->opt.quiet_time_ns)
				liveness_report(s);
			continue;
		}
		struct sim_event e = heap_pop(s);
		s->now_ns = e.at_ns;
		handle(s, &e);
	}
}

int sim_run(const struct sim_options *o, uint64_t seed, char *why, size_t why_len,
	    uint64_t *steps_out)
{
	struct sim *s = sim_xrealloc(NULL, sizeof(*s));
	sim_setup(s, o, seed);
	if (o->trace)
		printf("seed %" PRIu64 ": %u nodes, break %s, loss %u ppm, dup %u ppm,"
		       " delay <= %" PRIu64 " us, crash %u/%u/%u ppm, partition %u ppm,"
		       " membership %u ppm\n",
		       seed, o->nodes, sim_break_name(o->brk), s->net.loss_ppm, s->net.dup_ppm,
		       (uint64_t)(s->net.delay_max_ns / SIM_NS_PER_US), s->crash_ppm_per_tick,
		       s->leader_crash_ppm_per_tick, s->crash_after_persist_ppm,
		       s->partition_ppm_per_tick, s->member_ppm_per_tick);
	for (unsigned i = 0; i < o->nodes && !s->failed; i++) {
		struct sim_node *n = &s->node[i];
		memcpy(n->boot_members, s->members, sizeof(s->members));
		n->n_boot = s->n_members;
		n->clock_skew_ns = (int64_t)sim_rng_range(&s->rng, 0, 4 * SIM_NS_PER_MS) -
				   (int64_t)(2 * SIM_NS_PER_MS);
		sim_node_boot(s, n);
	}
	if (!s->failed) {
		sim_clients_init(s);
		sim_loop(s);
	}
	int failed = s->failed;
	if (failed && (o->verbose_failure || o->trace)) {
		if (!o->trace) {
			uint64_t from =
			    s->n_trace > SIM_TRACE_RING ? s->n_trace - SIM_TRACE_RING : 0;
			printf("--- seed %" PRIu64 ": last %" PRIu64 " events ---\n", seed,
			       s->n_trace - from);
			for (uint64_t i = from; i < s->n_trace; i++)
				sim_trace_print_ev(&s->trace[i % SIM_TRACE_RING]);
		}
		printf("--- seed %" PRIu64 " failed at %.3f ms: %s\n", seed,
		       (double)s->now_ns / SIM_NS_PER_MS, s->why);
	}
	if (o->trace && !failed) {
		uint64_t commits = 0, retries = 0;
		for (unsigned i = 0; i < s->n_clients; i++) {
			commits += s->client[i].commits;
			retries += s->client[i].retries;
		}
		printf("seed %" PRIu64 " passed: %.3f ms simulated, %" PRIu64 " events, %zu slots,"
		       " %" PRIu64 " commits acknowledged, %" PRIu64 " retries, %" PRIu64
		       " messages (%" PRIu64 " dropped)\n",
		       seed, (double)s->now_ns / SIM_NS_PER_MS, s->steps, s->n_chosen, commits,
		       retries, s->net.sent, s->net.dropped);
	}
	if (why && why_len)
		snprintf(why, why_len, "%s", s->why);
	if (steps_out)
		*steps_out = s->steps;
	sim_teardown(s);
	free(s);
	return failed ? -1 : 0;
}
