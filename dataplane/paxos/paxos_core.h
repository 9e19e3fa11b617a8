/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap paxos core: the engine's state (struct zap_paxos and its parts) and
 * the internal functions its files share, listed by the file that defines
 * them. Not a public header. The files form layers, and calls only go down:
 *
 *   paxos.c         the public API: create, restore/start, step entry
 *                   points, the self inbox drained after each step, poll
 *   paxos_msg.c     message validation, reassembly, one handler per type
 *   paxos_accept.c  acceptor and learner: answers, chosen slots,
 *                   membership, catch-up, snapshots
 *   paxos_leader.c  proposer: elections, phase 1, proposing, commands
 *   paxos_core.c    configurations, the log array, outputs, sending,
 *                   persistence requests, the election timer
 *   paxos_value.c   the value codec (pure)
 *
 * Design and invariants are described at the top of paxos.c.
 */
#ifndef ZAP_PAXOS_CORE_H
#define ZAP_PAXOS_CORE_H

#include "paxos.h"

#include <stdbool.h>

/** Roles of a node. */
enum px_role { PX_FOLLOWER = 0, PX_CANDIDATE, PX_LEADER };

/** Slots are 1-based; a BATCH value's header is kind (1) + count (4) bytes. */
#define PX_BATCH_HEADER_BYTES 5u
/** Per command framing inside a BATCH: a u32 length. */
#define PX_CMD_HEADER_BYTES 4u
/** Configurations remembered at once: the current one and the changes pending. */
#define PX_MAX_CONFIGS 4u
/** Catch-up: chosen values sent per CATCHUP_REQ, at most (slots, bytes). */
#define PX_CATCHUP_SLOTS 64u
#define PX_CATCHUP_BYTES (1u << 20)
/** Nodes tracked during phase 1 (every member of current and next config). */
#define PX_MAX_TRACKED (2u * ZAP_PAXOS_MAX_NODES)

/** One slot of the log, as acceptor, learner and (for the leader) proposer. */
struct px_ent {
	uint8_t *val;          /**< accepted (or learned chosen) value; owned */
	uint64_t len;
	zap_ballot_t vballot;  /**< ballot val was accepted in; 0: learned chosen */
	bool chosen;
	/* proposer side (leader only), valid when pballot == the leader's ballot */
	zap_ballot_t pballot;
	uint8_t *pval;
	uint64_t plen;
	uint16_t acks[ZAP_PAXOS_MAX_NODES]; /**< nodes that answered ACCEPTED(pballot) */
	uint8_t n_acks;
	uint64_t sent_ns;      /**< last (re)transmission of the ACCEPT */
};

/** A configuration and the first slot it governs. */
struct px_cfg {
	uint64_t from_slot;
	uint32_t epoch;
	unsigned n;
	uint16_t m[ZAP_PAXOS_MAX_NODES];
};

/** An output waiting for zap_paxos_poll(), with the buffer it owns. */
struct px_out {
	struct zap_paxos_out o;
	uint8_t *buf;
};

/** A message to this node itself, processed after the current step. */
struct px_inbox {
	struct zap_paxos_msg m;
	uint8_t *buf;
};

/** What to do once a PERSIST output is durable. */
enum px_pend_kind { PX_PEND_PROMISE = 1, PX_PEND_ACCEPTED };

struct px_pend {
	uint64_t token;
	uint8_t kind;
	uint16_t to;
	zap_ballot_t ballot;
	uint64_t slot;
};

/** A value being reassembled from chunks. */
struct px_reasm {
	bool used;
	uint8_t type;
	uint16_t from;
	uint64_t k1, k2, k3; /**< slot / ballot / vballot or id, by type */
	uint64_t len;
	uint8_t *buf;
	uint8_t *got;        /**< one byte per chunk */
	uint64_t n_chunks, n_got;
	uint64_t touch;
};

/** A phase 1 answer being collected from one node. */
struct px_promise_track {
	uint16_t node;
	bool done;
	uint64_t total;      /**< values the node announced */
	uint8_t *got;        /**< one byte per value index */
	uint64_t n_got;
};

/** The best value phase 1 reported for one slot. */
struct px_p1 {
	zap_ballot_t vballot;
	bool chosen;
	uint8_t *val;
	uint64_t len;
};

/** A client command not yet proposed (leader) or forwarded (follower). */
struct px_cmd {
	uint8_t *buf;
	uint32_t len;
};

struct zap_paxos {
	struct zap_paxos_config c;
	uint64_t max_value_bytes; /**< = batch_bytes */
	uint64_t span_slots;      /**< largest distance ahead of chosen we store */
	uint64_t rng;

	/* acceptor */
	zap_ballot_t promised;      /**< highest ballot promised (or accepted) */
	zap_ballot_t max_seen;      /**< highest ballot seen anywhere (round choice) */

	/* log: entries for slots [log_base, log_base + log_cap) */
	struct px_ent *log;
	uint64_t log_base, log_cap;
	uint64_t chosen_idx;  /**< every slot <= this is chosen and known */
	uint64_t applied_idx; /**< every slot <= this was emitted as CHOSEN */
	uint64_t persisted_chosen; /**< last ZAP_LOG_CHOSEN watermark emitted */
	uint64_t snap_slot;   /**< slots <= this are compacted away */
	uint64_t restored_chosen; /**< CHOSEN watermark found by restore */

	/* role */
	uint8_t role;
	bool started;
	bool removed;         /**< not in the configuration: no campaign, no votes */
	uint16_t leader;      /**< 0: unknown */
	zap_ballot_t leader_ballot;
	zap_ballot_t my_ballot;
	uint64_t election_deadline_ns;
	uint64_t hb_next_ns;
	uint64_t catchup_next_ns;
	uint64_t snapshot_wait_until_ns;
	uint64_t now_ns;

	/* candidate */
	struct px_promise_track track[PX_MAX_TRACKED];
	unsigned n_track;
	struct px_p1 *p1;
	uint64_t p1_base, p1_cap, p1_max;

	/* leader */
	uint64_t next_slot;
	uint64_t commit_sent;	    /**< commit index the last broadcast carried */
	uint64_t cfg_inflight_slot; /**< slot of a proposed CONFIG not yet chosen, 0 none */
	uint8_t *cfg_want;          /**< CONFIG value to propose next, owned */
	uint64_t cfg_want_len;

	/* configurations, oldest first; cfg[0] governs slot chosen_idx + 1 */
	struct px_cfg cfg[PX_MAX_CONFIGS];
	unsigned n_cfg;
	struct px_cfg former;       /**< members the last change removed (still told commit) */
	uint8_t *snap_cfg;          /**< config list sent with SNAPSHOT_NEEDED */
	uint64_t snap_cfg_len;

	/* commands */
	struct px_cmd *cmds;        /**< ring of max_pending_commands */
	uint32_t cmd_head, cmd_count;
	uint64_t fwd_id;

	/* outputs and self messages */
	struct px_out *outs;
	size_t out_head, out_count, out_cap;
	uint8_t *polled_buf;        /**< buffer of the last polled output */
	struct px_inbox *inbox;
	size_t in_head, in_count, in_cap;
	bool draining;

	/* durability */
	uint64_t next_token;
	uint64_t durable_token;     /**< highest token reported by zap_paxos_persisted() */
	struct px_pend *pend;
	size_t pend_count, pend_cap;

	/* reassembly */
	struct px_reasm *ra;
	unsigned n_ra;
	uint64_t ra_clock;

	struct zap_paxos_stats st;
};

/* paxos_core.c: the bottom layer, calls no other file of the engine. */

void *px_memdup(const void *src, uint64_t len);
bool px_cfg_has(const struct px_cfg *c, uint16_t node);
const struct px_cfg *px_cfg_for(const struct zap_paxos *p, uint64_t slot);
bool px_known_node(const struct zap_paxos *p, uint16_t node);
bool px_former_node(const struct zap_paxos *p, uint16_t node);
unsigned px_all_nodes(const struct zap_paxos *p, uint16_t *out);
void px_update_removed(struct zap_paxos *p);
bool px_can_lead(const struct zap_paxos *p);
struct px_ent *px_ent_get(struct zap_paxos *p, uint64_t slot, bool create);
void px_ent_free(struct px_ent *e);
void px_log_drop_through(struct zap_paxos *p, uint64_t slot);
struct px_out *px_out_push(struct zap_paxos *p, uint8_t type);
struct zap_paxos_out *px_out_new(struct zap_paxos *p, uint8_t type);
void px_send(struct zap_paxos *p, const struct zap_paxos_msg *m);
void px_send_value(struct zap_paxos *p, struct zap_paxos_msg m, const uint8_t *val, uint64_t len);
void px_send_all(struct zap_paxos *p, const struct zap_paxos_msg *m, const uint8_t *val,
		 uint64_t len, bool include_self);
struct zap_paxos_msg px_msg_base(struct zap_paxos *p, uint8_t type);
uint64_t px_persist(struct zap_paxos *p, uint8_t rec, uint64_t slot, zap_ballot_t b,
		    const void *data, uint64_t len);
void px_reset_election(struct zap_paxos *p);

/* paxos_value.c: pure, calls no other file of the engine. */

int px_validate_value(const uint8_t *v, uint64_t len);

/* paxos_leader.c: calls paxos_core.c and paxos_value.c. */

void px_set_leader(struct zap_paxos *p, uint16_t node, zap_ballot_t b);
void px_p1_clear(struct zap_paxos *p);
void px_step_down(struct zap_paxos *p, zap_ballot_t seen);
void px_send_prepare(struct zap_paxos *p, uint16_t to);
void px_start_election(struct zap_paxos *p);
void px_become_leader(struct zap_paxos *p);
void px_propose_more(struct zap_paxos *p);
bool px_enqueue_cmd(struct zap_paxos *p, const void *cmd, uint32_t len);
void px_flush_cmds(struct zap_paxos *p);
void px_leader_tick(struct zap_paxos *p);
void px_notify_commit(struct zap_paxos *p);
/** zap_paxos_propose_config() without its entry and drain; same returns. */
int px_propose_config(struct zap_paxos *p, const uint16_t *members, unsigned n);

/* paxos_accept.c: calls paxos_leader.c, paxos_core.c and paxos_value.c. */

void px_pend_add(struct zap_paxos *p, uint64_t token, uint8_t kind, uint16_t to, zap_ballot_t b,
		 uint64_t slot);
/** Answer what waited for writes up to token; 0 or -ENOMEM (nothing sent). */
int px_pend_run(struct zap_paxos *p, uint64_t token);
void px_send_accepted(struct zap_paxos *p, uint16_t to, zap_ballot_t b, uint64_t slot);
void px_send_promise(struct zap_paxos *p, uint16_t to, zap_ballot_t b, uint64_t from_slot);
void px_apply_config(struct zap_paxos *p, uint64_t slot, const uint8_t *v, uint64_t len);
void px_cfg_shift(struct zap_paxos *p);
void px_advance(struct zap_paxos *p);
void px_maybe_catchup(struct zap_paxos *p, uint16_t from, uint64_t commit, bool force);
uint64_t px_encode_cfgs(const struct zap_paxos *p, uint8_t **out);
/** Install a snapshot up to slot; false when slot is not past chosen_idx. */
bool px_snapshot_install(struct zap_paxos *p, uint64_t slot);

/* paxos_msg.c: calls paxos_accept.c, paxos_leader.c, paxos_core.c, paxos_value.c. */

int px_handle(struct zap_paxos *p, const struct zap_paxos_msg *m);
void px_ra_clear(struct zap_paxos *p);

#endif /* ZAP_PAXOS_CORE_H */
