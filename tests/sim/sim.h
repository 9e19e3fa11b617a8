/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap-sim: the deterministic simulator of the consensus core.
 *
 * One simulation runs 3 or 5 nodes in one process. Each node is the real
 * Paxos engine (paxos.h), its own transaction state machine (txn.h) and its
 * own store (store.h); around them the simulator provides a disk (disk.c),
 * a network (net.c), a clock, ZODB-like clients (clients.c) and a fault
 * schedule (sim.c). Invariants (check.c) are checked as the run goes; the
 * first violation stops the run. Everything random comes from one PRNG
 * seeded by the run's seed, and events at equal times are ordered by their
 * insertion number: the same seed replays the same run, event by event.
 *
 * Threading: one simulation belongs to one thread; there are no globals.
 */
#ifndef ZAP_SIM_H
#define ZAP_SIM_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "txn/entry.h"
#include "paxos/paxos.h"
#include "store/store.h"
#include "txn/txn.h"

/* ---------------------------------------------------------------- PRNG */

/** xoshiro256** seeded by splitmix64: one per simulation. */
struct sim_rng {
	uint64_t s[4];
};

static inline uint64_t sim_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline void sim_rng_seed(struct sim_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = sim_splitmix64(&seed);
}

static inline uint64_t sim_rng_next(struct sim_rng *r)
{
	uint64_t *s = r->s;
	uint64_t x = s[1] * 5;
	uint64_t result = ((x << 7) | (x >> 57)) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = (s[3] << 45) | (s[3] >> 19);
	return result;
}

/** Uniform in [0, n); 0 when n is 0. */
static inline uint64_t sim_rng_below(struct sim_rng *r, uint64_t n)
{
	return n ? sim_rng_next(r) % n : 0;
}

/** Uniform in [lo, hi]. */
static inline uint64_t sim_rng_range(struct sim_rng *r, uint64_t lo, uint64_t hi)
{
	return lo + sim_rng_below(r, hi - lo + 1);
}

/** True with probability ppm / 1 000 000. */
static inline int sim_rng_ppm(struct sim_rng *r, uint32_t ppm)
{
	return sim_rng_below(r, 1000000) < ppm;
}

/* ---------------------------------------------------------------- sizes */

#define SIM_NS_PER_US 1000ull
#define SIM_NS_PER_MS 1000000ull
#define SIM_TICK_NS SIM_NS_PER_MS /**< coarse tick: timers, fault dice */
#define SIM_MAX_NODES ZAP_PAXOS_MAX_NODES
#define SIM_MAX_CLIENTS 8
#define SIM_HOT_OIDS 4u /**< clients fight over oids 1..4 */
#define SIM_MAX_TXN_STORES 3u
#define SIM_MAX_TXN_READS 2u
#define SIM_SLOT_INDEX_SPAN 65536ull /**< SM index = slot * span + command + 1 */
#define SIM_TRACE_RING 256u
#define SIM_DIGEST_EVERY_SLOTS                                                                     \
	8u /**< invariant 3 compares digests at these slots */ /**< events kept for a failure      \
								  report */
/** Unix ns the simulated wall clock starts at (2024-01-01 00:00 UTC). */
#define SIM_WALL_BASE_NS 1704067200000000000ull

/* ---------------------------------------------------------------- options */

/** Safety mechanisms --break can switch off. */
enum sim_break {
	SIM_BREAK_NONE = 0,
	SIM_BREAK_SKIP_PHASE1,
	SIM_BREAK_REPLY_BEFORE_DURABLE,
	SIM_BREAK_FORGET_PROMISE,
	SIM_BREAK_IGNORE_PROMISED_VALUES,
	SIM_BREAK_CONFLICT_CHECK_OFF,
	SIM_BREAK_COUNT
};

const char *sim_break_name(enum sim_break b);
/** @return the mode named @p name, or -1. */
int sim_break_parse(const char *name);

struct sim_options {
	unsigned nodes; /**< 3 or 5 */
	enum sim_break brk;
	uint64_t max_steps;	/**< events per run before it is cut (a failure) */
	uint64_t fault_time_ns; /**< length of the phase with load and faults */
	uint64_t quiet_time_ns; /**< bound on convergence after healing */
	unsigned clients;
	unsigned window_slots; /**< engine window; also the membership delay in slots */
	int trace;	       /**< print every event as it happens */
	int verbose_failure;   /**< print the last events when a run fails */
	int no_membership;     /**< no membership changes */
	int no_crash;	       /**< no crashes */
};

/* ---------------------------------------------------------------- trace */

enum sim_trace_kind {
	TR_SEND = 1,
	TR_DELIVER,
	TR_DROP,
	TR_PERSIST,
	TR_SYNC,
	TR_CHOSEN,
	TR_ROLE,
	TR_CRASH,
	TR_RESTART,
	TR_PARTITION,
	TR_HEAL,
	TR_SUBMIT,
	TR_RESULT,
	TR_CONFIG,
	TR_REMOVE,
	TR_ADD,
	TR_PHASE,
	TR_NOTE,
};

struct sim_trace_ev {
	uint64_t at_ns;
	uint8_t kind;
	uint8_t sub; /**< message / record / entry type */
	uint16_t node, peer;
	uint64_t a, b, c;
};

/* ---------------------------------------------------------------- events */

enum sim_event_kind {
	EV_DELIVER = 1, /**< ptr: struct sim_msg */
	EV_SYNC,	/**< node's disk sync done: node, gen, arg = records covered */
	EV_CRASH,	/**< node, gen */
	EV_RESTART,	/**< node, gen */
	EV_CLIENT,	/**< node = client index, gen = client generation */
	EV_HEAL,	/**< end of a partition: arg = partition generation */
};

struct sim_event {
	uint64_t at_ns;
	uint64_t order; /**< insertion number: ties in time keep insertion order */
	uint8_t kind;
	uint16_t node;
	uint32_t gen;
	uint64_t arg;
	void *ptr;
};

/* ---------------------------------------------------------------- network */

/** A message in flight, with its own copy of the payload. */
struct sim_msg {
	struct zap_paxos_msg m;
	uint8_t *payload;
};

struct sim_net {
	uint32_t loss_ppm, dup_ppm;	     /**< per message */
	uint64_t delay_min_ns, delay_max_ns; /**< usual delivery delay */
	uint32_t slow_ppm;		     /**< a message delayed up to slow_max_ns */
	uint64_t slow_max_ns;
	uint16_t cut[SIM_MAX_NODES + 1]; /**< bit j of cut[i]: link i-j is down (symmetric) */
	uint64_t partition_gen;
	int partitioned;
	uint64_t sent, delivered, dropped;
};

/* ---------------------------------------------------------------- disk */

struct sim_rec {
	uint8_t type;
	uint64_t slot;
	zap_ballot_t ballot;
	uint8_t *data;
	uint64_t len;
	uint64_t token;
};

/** A node's log: records [0, synced) are durable, the rest may be lost. */
struct sim_disk {
	struct sim_rec *recs;
	size_t n, cap;
	size_t synced;
	int sync_in_flight;
};

/* ---------------------------------------------------------------- nodes */

struct sim_node {
	uint16_t id;  /**< index + 1 */
	int exists;   /**< has a disk (a member, or removed but not wiped) */
	int live;     /**< running: engine, SM and store exist */
	uint32_t gen; /**< incarnation: events of older ones are ignored */
	struct zap_paxos *px;
	struct zap_store *store;
	struct zap_store_reader *rd;
	struct zap_txn_sm *sm;
	struct sim_disk disk;
	uint16_t boot_members[SIM_MAX_NODES];
	unsigned n_boot;
	uint64_t applied_slot;	  /**< last slot applied to the SM */
	uint64_t last_commit_tid; /**< tid of the last commit applied */
	size_t acks_checked;	  /**< acknowledged commits verified in this store */
	uint16_t leader;	  /**< from ROLE outputs */
	zap_ballot_t ballot;
	int64_t clock_skew_ns;	/**< its wall clock minus the true one */
	uint64_t restart_at_ns; /**< crashed member: restart scheduled (0: none) */
	int in_engine;		/**< guard: no engine call while draining outputs */
};

/* ---------------------------------------------------------------- clients */

enum sim_client_state { CL_IDLE = 0, CL_WAIT, CL_DONE };

/** What a transaction read and wrote: the checker's view of a client txn. */
struct sim_txn {
	uint64_t txn_id;
	uint16_t client;
	unsigned n_stores, n_reads;
	uint64_t oid[SIM_MAX_TXN_STORES];
	uint64_t base[SIM_MAX_TXN_STORES];
	uint32_t data_len[SIM_MAX_TXN_STORES];
	uint64_t read_oid[SIM_MAX_TXN_READS];
	uint64_t read_serial[SIM_MAX_TXN_READS];
};

struct sim_client {
	uint64_t id;   /**< client id (never 0) */
	uint64_t seq;  /**< of the outstanding or last command */
	uint16_t node; /**< node it talks to */
	int state;
	uint32_t gen; /**< bumps when a timer is superseded */
	uint8_t *cmd; /**< encoded outstanding command (resent as is) */
	uint32_t cmd_len;
	uint8_t cmd_type;
	uint64_t txn_id; /**< of the outstanding PREPARE / ONESHOT / COMMIT / ABORT */
	int prepared;	 /**< txn_id voted OK: next is COMMIT or ABORT */
	uint64_t sent_at_ns, timeout_ns;
	unsigned tries;
	uint64_t answered, commits, conflicts, retries;
};

/** A commit acknowledged to a client. */
struct sim_ack {
	uint64_t tid;
	uint64_t slot; /**< slot of the result the client saw (>= the commit's) */
	uint64_t txn_id;
};

/** First final result seen for a (client, seq): later ones must match. */
struct sim_final {
	uint64_t seq;
	uint16_t status;
	uint64_t tid, txn_id, first_oid;
};

/* ---------------------------------------------------------------- checker */

struct sim_chosen {
	uint8_t *data;
	uint64_t len;
	uint16_t first_node;
	uint64_t store_digest, sm_digest; /**< after applying the slot (first node) */
	int have_digest;
};

/* ---------------------------------------------------------------- simulation */

struct sim {
	struct sim_options opt;
	uint64_t seed;
	struct sim_rng rng;
	uint64_t now_ns;
	uint64_t steps;

	/* event queue: a binary heap ordered by (at_ns, order) */
	struct sim_event *heap;
	size_t heap_n, heap_cap;
	uint64_t next_order;

	struct sim_net net;
	struct sim_node node[SIM_MAX_NODES];
	uint16_t members[SIM_MAX_NODES]; /**< configuration chosen last (the frontier's) */
	unsigned n_members;
	uint64_t config_effective_slot; /**< slot from which `members` rules */
	uint32_t config_delay_slots;	/**< a membership change rules this many slots later */
	uint32_t paxos_break, txn_break;

	/* fault schedule */
	int quiet; /**< faults over, network healed */
	uint64_t quiet_since_ns;
	uint32_t crash_ppm_per_tick, partition_ppm_per_tick, member_ppm_per_tick;
	uint32_t crash_after_persist_ppm, leader_crash_ppm_per_tick;
	uint64_t sync_min_ns, sync_max_ns;
	uint64_t restart_min_ns, restart_max_ns;
	uint64_t heartbeat_ns, election_timeout_ns; /**< engine timers of this run */
	int member_op;				    /**< 0 none, 1 removing, 2 adding */
	uint16_t member_target;			    /**< node removed / added */
	uint16_t member_add_id; /**< node that will be added after the removal */
	uint64_t member_op_since_ns;
	uint16_t removed_waiting[SIM_MAX_NODES];

	/* clients */
	struct sim_client client[SIM_MAX_CLIENTS];
	unsigned n_clients;
	struct sim_txn *txns; /**< by txn_id - 1 */
	size_t n_txns, cap_txns;
	struct sim_final *finals[SIM_MAX_CLIENTS]; /**< by seq - 1 */
	size_t n_finals[SIM_MAX_CLIENTS], cap_finals[SIM_MAX_CLIENTS];
	int load_stopped;

	/* checker state */
	struct sim_chosen *chosen; /**< by slot - 1 */
	size_t n_chosen, cap_chosen;
	struct sim_ack *acks;
	size_t n_acks, cap_acks;
	uint64_t model_slot;			 /**< slots the serial model has taken in */
	uint64_t model_serial[SIM_HOT_OIDS + 1]; /**< current serial per hot oid */
	uint64_t model_last_tid;
	int model_driving; /**< the node applying now feeds the model */

	/* failure */
	int failed;
	char why[512];

	/* trace */
	struct sim_trace_ev trace[SIM_TRACE_RING];
	uint64_t n_trace;

	/* scratch */
	uint8_t *scratch;
	size_t scratch_cap;
};

/* sim.c */
int sim_run(const struct sim_options *o, uint64_t seed, char *why, size_t why_len,
	    uint64_t *steps_out);
void sim_schedule(struct sim *s, uint64_t at_ns, uint8_t kind, uint16_t node, uint32_t gen,
		  uint64_t arg, void *ptr);
void *sim_xrealloc(void *p, size_t n);
void sim_fail(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_trace(struct sim *s, uint8_t kind, uint8_t sub, uint16_t node, uint16_t peer, uint64_t a,
	       uint64_t b, uint64_t c);
void sim_trace_print_ev(const struct sim_trace_ev *e);

/* net.c */
void sim_net_init(struct sim *s);
void sim_net_send(struct sim *s, const struct zap_paxos_msg *m);
void sim_net_deliver(struct sim *s, struct sim_msg *sm);
void sim_net_free(struct sim_msg *sm);
void sim_net_partition(struct sim *s, uint16_t leader);
void sim_net_heal(struct sim *s);
int sim_net_connected(const struct sim *s, uint16_t a, uint16_t b);

/* disk.c */
void sim_disk_append(struct sim *s, struct sim_node *n, const struct zap_paxos_out *o);
void sim_disk_sync_done(struct sim *s, struct sim_node *n, uint64_t covered);
void sim_disk_crash(struct sim *s, struct sim_node *n);
void sim_disk_wipe(struct sim_disk *d);

/* node.c */
int sim_node_boot(struct sim *s, struct sim_node *n);
void sim_node_crash(struct sim *s, struct sim_node *n, const char *why);
void sim_node_drain(struct sim *s, struct sim_node *n);
void sim_node_tick(struct sim *s, struct sim_node *n);
void sim_node_destroy(struct sim_node *n);
int sim_node_is_member(const struct sim *s, uint16_t id);
uint64_t sim_node_wall_ns(const struct sim *s, const struct sim_node *n);
struct sim_node *sim_leader(struct sim *s);

/* clients.c */
void sim_clients_init(struct sim *s);
void sim_client_event(struct sim *s, unsigned ci, uint32_t gen);
void sim_clients_result(struct sim *s, struct sim_node *n, const struct zap_txn_result *r);
int sim_clients_idle(const struct sim *s);
void sim_clients_free(struct sim *s);
const struct sim_txn *sim_txn_get(const struct sim *s, uint64_t txn_id);
void sim_txn_record(uint64_t txn_id, uint64_t oid, uint32_t len, uint8_t *out);

/* check.c */
void sim_check_chosen(struct sim *s, struct sim_node *n, uint64_t slot, const void *data,
		      uint64_t len);
void sim_check_applied(struct sim *s, struct sim_node *n, uint64_t slot);
void sim_check_result(struct sim *s, struct sim_node *n, const struct zap_txn_result *r);
void sim_check_acks(struct sim *s);
void sim_check_ack_add(struct sim *s, uint64_t tid, uint64_t slot, uint64_t txn_id);
void sim_check_final_state(struct sim *s);
void sim_check_free(struct sim *s);

#endif /* ZAP_SIM_H */
