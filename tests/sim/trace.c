/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap-sim trace: the events of a run, for a human replaying a seed.
 *
 * Events are kept as small binary records in a ring of SIM_TRACE_RING (the
 * last ones are printed when a run fails); with --trace each one is also
 * printed as it happens. Formatting happens only when printing, so keeping
 * the trace costs a few stores per event.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"

static const char *const break_names[SIM_BREAK_COUNT] = {
    [SIM_BREAK_NONE] = "none",
    [SIM_BREAK_SKIP_PHASE1] = "skip-phase1",
    [SIM_BREAK_REPLY_BEFORE_DURABLE] = "reply-before-durable",
    [SIM_BREAK_FORGET_PROMISE] = "forget-promise",
    [SIM_BREAK_IGNORE_PROMISED_VALUES] = "ignore-promised-values",
    [SIM_BREAK_CONFLICT_CHECK_OFF] = "conflict-check-off",
};

const char *sim_break_name(enum sim_break b)
{
	return (unsigned)b < SIM_BREAK_COUNT ? break_names[b] : "?";
}

int sim_break_parse(const char *name)
{
	for (int i = 0; i < SIM_BREAK_COUNT; i++)
		if (strcmp(name, break_names[i]) == 0)
			return i;
	return -1;
}

void sim_trace(struct sim *s, uint8_t kind, uint8_t sub, uint16_t node, uint16_t peer, uint64_t a,
	       uint64_t b, uint64_t c)
{
	struct sim_trace_ev *e = &s->trace[s->n_trace++ % SIM_TRACE_RING];
	*e = (struct sim_trace_ev){.at_ns = s->now_ns,
				   .kind = kind,
				   .sub = sub,
				   .node = node,
				   .peer = peer,
				   .a = a,
				   .b = b,
				   .c = c};
	if (s->opt.trace && kind != TR_NOTE)
		sim_trace_print_ev(e);
}

static const char *msg_name(unsigned t)
{
	static const char *const names[] = {"?",	   "PREPARE", "PROMISE",	"ACCEPT",
					    "ACCEPTED",	   "NACK",    "HEARTBEAT",	"FORWARD",
					    "CATCHUP_REQ", "CATCHUP", "SNAPSHOT_NEEDED"};
	return t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

static const char *rec_name(unsigned t)
{
	return t == 1 ? "PROMISE" : t == 2 ? "ACCEPT" : t == 3 ? "CHOSEN" : "?";
}

#define BAL(b) zap_ballot_round(b), zap_ballot_node(b)

void sim_trace_print_ev(const struct sim_trace_ev *e)
{
	printf("%10.3f ms  ", (double)e->at_ns / SIM_NS_PER_MS);
	switch (e->kind) {
	case TR_SEND:
		printf("n%u -> n%u send %s ballot (%" PRIu64 ",%u) slot %" PRIu64 " commit %" PRIu64
		       "\n",
		       e->node, e->peer, msg_name(e->sub), BAL(e->a), e->b, e->c);
		break;
	case TR_DELIVER:
		printf("n%u -> n%u deliver %s ballot (%" PRIu64 ",%u) slot %" PRIu64 "\n", e->node,
		       e->peer, msg_name(e->sub), BAL(e->a), e->b);
		break;
	case TR_DROP:
		printf("n%u -> n%u drop %s slot %" PRIu64 " (%s)\n", e->node, e->peer,
		       msg_name(e->sub), e->b,
		       e->c == 1   ? "lost"
		       : e->c == 2 ? "partition"
				   : "node down");
		break;
	case TR_PERSIST:
		printf("n%u persist %s slot %" PRIu64 " ballot (%" PRIu64 ",%u) token %" PRIu64
		       "\n",
		       e->node, rec_name(e->sub), e->a, BAL(e->b), e->c);
		break;
	case TR_SYNC:
		printf("n%u sync done: %" PRIu64 " records durable, token %" PRIu64 "\n", e->node,
		       e->a, e->b);
		break;
	case TR_CHOSEN:
		printf("n%u chosen slot %" PRIu64 " (%" PRIu64 " bytes)\n", e->node, e->a, e->b);
		break;
	case TR_ROLE:
		printf("n%u role: leader n%u ballot (%" PRIu64 ",%u)\n", e->node, e->peer,
		       BAL(e->a));
		break;
	case TR_CRASH:
		printf("n%u CRASH (%s): %" PRIu64 " records, %" PRIu64 " synced\n", e->node,
		       e->c == 'l'   ? "leader"
		       : e->c == 'a' ? "after persist"
		       : e->c == 'r' ? "random"
		       : e->c == 'R' ? "removed"
				     : "?",
		       e->a, e->b);
		break;
	case TR_RESTART:
		printf("n%u BOOT from %" PRIu64 " records (incarnation %" PRIu64 ")\n", e->node,
		       e->a, e->b);
		break;
	case TR_PARTITION:
		printf("PARTITION %s (leader n%u), cut links per node %#" PRIx64 "\n",
		       e->sub == 0   ? "two groups"
		       : e->sub == 1 ? "leader alone"
				     : "one leader link",
		       e->node, e->a);
		break;
	case TR_HEAL:
		printf("HEAL network\n");
		break;
	case TR_SUBMIT:
		printf("client %u -> n%u submit %s seq %" PRIu64 " txn %" PRIu64 " try %" PRIu64
		       "\n",
		       e->peer, e->node, zap_entry_type_name(e->sub), e->a, e->b, e->c);
		break;
	case TR_RESULT:
		printf("client %u <- n%u result %s seq %" PRIu64 " %s tid %016" PRIx64 "\n",
		       e->peer, e->node, zap_entry_type_name(e->sub), e->a,
		       zap_txn_status_name((unsigned)e->b), e->c);
		break;
	case TR_CONFIG:
		if (e->sub == 0)
			printf("n%u propose config of %" PRIu64 " members: rc %" PRId64 "\n",
			       e->node, e->a, (int64_t)e->b);
		else
			printf("config of %" PRIu64 " members chosen at slot %" PRIu64
			       " (seen by n%u)\n",
			       e->b, e->a, e->node);
		break;
	case TR_REMOVE:
		printf("MEMBERSHIP remove n%u (then add n%u)\n", e->node, e->peer);
		break;
	case TR_ADD:
		printf("MEMBERSHIP add n%u, empty\n", e->node);
		break;
	case TR_PHASE:
		printf("QUIET: faults stop, network heals, crashed members restart\n");
		break;
	case TR_NOTE:
		if (e->sub == 1)
			printf("n%u refused client %u's command: -%" PRIu64 "\n", e->node, e->peer,
			       e->a);
		else
			printf("(check failed)\n");
		break;
	default:
		printf("event %u\n", e->kind);
		break;
	}
}
