/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap paxos: the Multi-Paxos engine of one node, as pure C with no I/O.
 *
 * The engine is a state machine driven by step functions, one per input:
 * a message received, a timer tick, a client command submitted, a disk
 * write completed. Each step may queue outputs (messages to send, log
 * records to make durable, slots chosen, role changes), which the driver
 * drains with zap_paxos_poll() before the next step. The DPDK stages, the
 * deterministic simulator (tests/sim) and the unit tests are such drivers.
 * The engine reads no clock (time comes in every step, in ns of the
 * driver's monotonic clock) and no randomness but its own PRNG, seeded by
 * the driver: the same inputs give the same outputs.
 *
 * Protocol (docs/paxos.md): stable leader; ballots (round, node);
 * phase 1 once per leadership over every slot the new leader does not know
 * chosen; phase 2 pipelined with at most window_slots slots in flight and
 * many client commands batched per slot; acceptors answer only after their
 * promise / accepted value is durable (PERSIST output, then
 * zap_paxos_persisted()); chosen slots are learned by everyone from the
 * commit index piggybacked on ACCEPT and HEARTBEAT; followers forward
 * client commands to the leader; leader failure is detected by missed
 * heartbeats, with randomized election timeouts; a node behind asks peers
 * for chosen values, or is told to install a snapshot when they were
 * compacted; values larger than one datagram travel in chunks; membership
 * changes are values that take effect config_delay_slots after their slot.
 *
 * Threading: one thread owns a zap_paxos (the paxos lcore, or the
 * simulator); nothing here is thread-safe.
 */
#ifndef ZAP_PAXOS_H
#define ZAP_PAXOS_H

#include <stddef.h>
#include <stdint.h>

#include "paxos_ballot.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest configuration (5 nodes, plus room to add before removing). */
#define ZAP_PAXOS_MAX_NODES 8
/** Default largest payload of one message (a datagram minus headers). */
#define ZAP_PAXOS_DEFAULT_DATAGRAM_BYTES 1400u

/* ---------------------------------------------------------------- faults */

/**
 * Safety mechanisms the simulator can switch off (zap-sim --break) to show
 * that its checker catches their absence. Never set outside tests.
 */
#define ZAP_PAXOS_BREAK_SKIP_PHASE1 (1u << 0)       /**< new leader proposes at once */
#define ZAP_PAXOS_BREAK_REPLY_BEFORE_DURABLE (1u << 1) /**< acceptor answers before its write is durable */
#define ZAP_PAXOS_BREAK_FORGET_PROMISE (1u << 2)    /**< restore ignores PROMISE records */
#define ZAP_PAXOS_BREAK_IGNORE_PROMISED_VALUES (1u << 3) /**< phase 1 ignores values accepted before */

/* ---------------------------------------------------------------- config */

struct zap_paxos_config {
	uint16_t self;                        /**< this node's id (nonzero) */
	uint16_t members[ZAP_PAXOS_MAX_NODES]; /**< the initial configuration */
	unsigned n_members;
	uint32_t window_slots;        /**< slots in flight (default 64) */
	uint32_t batch_count;         /**< commands per slot, at most (default 64) */
	uint32_t batch_bytes;         /**< value bytes per slot, at most (default 64 KiB) */
	uint64_t heartbeat_ns;        /**< leader heartbeat period (default 50 ms) */
	uint64_t election_timeout_ns; /**< base; randomized in [T, 2T) (default 500 ms) */
	uint32_t config_delay_slots;  /**< a membership change takes effect this many slots
					   after its own (default and minimum: window_slots) */
	uint32_t datagram_bytes;      /**< largest message payload (default 1400) */
	uint32_t max_pending_commands; /**< submitted but not yet proposed (default 4096) */
	uint64_t seed;                /**< PRNG seed for randomized timeouts */
	uint32_t break_flags;         /**< ZAP_PAXOS_BREAK_*; 0 in production */
};

/* ---------------------------------------------------------------- messages */

/** Message types. */
enum zap_paxos_msg_type {
	ZAP_PAXOS_MSG_PREPARE = 1,   /**< 1a: ballot; slot = first slot not known chosen */
	ZAP_PAXOS_MSG_PROMISE,       /**< 1b: ballot; carries accepted values (chunked), flag LAST */
	ZAP_PAXOS_MSG_ACCEPT,        /**< 2a: ballot, slot, value chunk, commit */
	ZAP_PAXOS_MSG_ACCEPTED,      /**< 2b: ballot, slot */
	ZAP_PAXOS_MSG_NACK,          /**< ballot = the higher ballot the sender promised */
	ZAP_PAXOS_MSG_HEARTBEAT,     /**< ballot, commit */
	ZAP_PAXOS_MSG_FORWARD,       /**< a client command for the leader (chunked) */
	ZAP_PAXOS_MSG_CATCHUP_REQ,   /**< slot = first chosen slot wanted */
	ZAP_PAXOS_MSG_CATCHUP,       /**< a chosen value: slot, value chunk */
	ZAP_PAXOS_MSG_SNAPSHOT_NEEDED, /**< asked-for slots are compacted; slot = sender's snapshot */
	ZAP_PAXOS_MSG_TYPE_COUNT
};

/** Message flags. */
#define ZAP_PAXOS_FLAG_LAST 1u /**< last message of a PROMISE (and of a CATCHUP reply) */
/** PROMISE: the carried value is known chosen (vballot may then be 0). */
#define ZAP_PAXOS_FLAG_CHOSEN 2u
/** FORWARD: already forwarded once by a non-leader; never forwarded again. */
#define ZAP_PAXOS_FLAG_REFORWARDED 4u

/**
 * One message. `payload` is at most datagram_bytes; a longer value is sent
 * as several messages with increasing `offset` and the same `value_len`.
 * The wire encoding (with MAC) belongs to the dataplane; the engine works
 * on this struct.
 */
struct zap_paxos_msg {
	uint8_t type;          /**< enum zap_paxos_msg_type */
	uint8_t flags;         /**< ZAP_PAXOS_FLAG_* */
	uint16_t from;
	uint16_t to;
	uint32_t epoch;        /**< sender's configuration epoch */
	zap_ballot_t ballot;
	uint64_t slot;
	uint64_t commit;       /**< sender's highest slot known chosen */
	zap_ballot_t vballot;  /**< PROMISE: ballot the carried value was accepted in */
	uint64_t value_len;    /**< total length of the carried value */
	uint64_t offset;       /**< of this chunk in the value */
	uint64_t id;           /**< FORWARD: sender-local command id (reassembly) */
	const void *payload;
	uint32_t len;
};

/* ---------------------------------------------------------------- outputs */

enum zap_paxos_out_type {
	ZAP_PAXOS_OUT_SEND = 1, /**< send out.msg to out.msg.to */
	ZAP_PAXOS_OUT_PERSIST,  /**< append a log record (rec_type, slot, ballot, data, len);
				     after it is durable call zap_paxos_persisted(token) */
	ZAP_PAXOS_OUT_CHOSEN,   /**< slot chosen with value (data, len): in slot order, no gap */
	ZAP_PAXOS_OUT_SNAPSHOT_NEEDED, /**< install a snapshot from out.node covering >= slot,
					    then call zap_paxos_snapshot_installed() */
	ZAP_PAXOS_OUT_ROLE,     /**< leadership changed: out.node = leader (0 unknown), ballot */
};

struct zap_paxos_out {
	uint8_t type;           /**< enum zap_paxos_out_type */
	uint8_t rec_type;       /**< PERSIST: ZAP_LOG_PROMISE / ZAP_LOG_ACCEPT / ZAP_LOG_CHOSEN */
	uint16_t node;
	uint64_t slot;
	zap_ballot_t ballot;
	const void *data;       /**< valid until the next call into the engine */
	uint64_t len;
	uint64_t token;         /**< PERSIST: completion token, increasing */
	struct zap_paxos_msg msg; /**< SEND */
};

/* ---------------------------------------------------------------- values */

/** Kinds of slot values (first byte of a value). */
enum zap_paxos_value_kind {
	ZAP_PAXOS_VALUE_NOP = 1,    /**< a new leader's filler */
	ZAP_PAXOS_VALUE_BATCH = 2,  /**< client commands, each a log entry (entry.h) */
	ZAP_PAXOS_VALUE_CONFIG = 3, /**< a new membership */
};

/** Kind of a chosen value; -EBADMSG when malformed. */
int zap_paxos_value_kind(const void *value, uint64_t len);

/**
 * Iterate the commands of a BATCH value: start with *pos = 0; each call
 * yields the next command. @return 1 and (cmd, cmd_len) set; 0 at the end;
 * -EBADMSG malformed.
 */
int zap_paxos_batch_next(const void *value, uint64_t len, uint64_t *pos, const void **cmd,
			 uint32_t *cmd_len);

/** Members of a CONFIG value. @return count, or -EBADMSG. */
int zap_paxos_config_members(const void *value, uint64_t len, uint16_t *members, unsigned max);

/* ---------------------------------------------------------------- engine */

struct zap_paxos;

/** Counters, for metrics and tests. */
struct zap_paxos_stats {
	uint64_t elections_started, elections_won, slots_proposed, slots_chosen,
		commands_submitted, commands_forwarded, messages_sent, messages_received,
		messages_dropped; /**< malformed, stale epoch, unknown sender */
	uint64_t catchups_requested, snapshots_needed, config_changes;
	uint64_t commands_dropped; /**< forwarded commands a full queue could not hold */
	uint64_t chosen_slot;  /**< highest slot known chosen */
	uint64_t applied_slot; /**< highest slot emitted as CHOSEN */
	zap_ballot_t ballot;   /**< current (promised) ballot */
	uint16_t leader;       /**< 0: unknown */
	uint32_t epoch;
};

/**
 * Make an engine. It starts as a follower with nothing accepted; replay the
 * log with zap_paxos_restore(), then zap_paxos_start().
 * @return 0; -EINVAL bad config (self not a member, sizes); -ENOMEM.
 */
int zap_paxos_create(const struct zap_paxos_config *c, struct zap_paxos **out);

void zap_paxos_destroy(struct zap_paxos *p);

/**
 * Feed one durable log record back at restart (ZAP_LOG_PROMISE,
 * ZAP_LOG_ACCEPT, ZAP_LOG_CHOSEN), in log order, before zap_paxos_start().
 * Chosen values are emitted again as CHOSEN outputs (from @p applied_slot + 1
 * when the driver passes what its state machine already holds, see start).
 * @return 0; -EINVAL a record the engine cannot use.
 */
int zap_paxos_restore(struct zap_paxos *p, uint8_t rec_type, uint64_t slot, zap_ballot_t ballot,
		      const void *data, uint64_t len);

/**
 * Begin: arm the election timer. @p applied_slot is the last slot already
 * applied by the driver's state machine (0 for none, or a snapshot's slot).
 */
int zap_paxos_start(struct zap_paxos *p, uint64_t now_ns, uint64_t applied_slot);

/** Time passes: heartbeats, election timeouts, retransmissions. */
int zap_paxos_tick(struct zap_paxos *p, uint64_t now_ns);

/**
 * A message arrived. Malformed or foreign messages are counted and dropped.
 * @return 0; -EINVAL dropped (counted).
 */
int zap_paxos_receive(struct zap_paxos *p, uint64_t now_ns, const struct zap_paxos_msg *m);

/**
 * A client command (an encoded log entry) arrived at this node. The leader
 * batches it into a slot; a follower forwards it to the leader (or holds it
 * until one is known).
 * @return 0; -EAGAIN too many commands pending (back-pressure);
 *   -EMSGSIZE larger than batch_bytes.
 */
int zap_paxos_submit(struct zap_paxos *p, uint64_t now_ns, const void *cmd, uint32_t len);

/** Every PERSIST output with token <= @p token is durable. */
int zap_paxos_persisted(struct zap_paxos *p, uint64_t now_ns, uint64_t token);

/**
 * Leader only: propose a new membership (one change at a time).
 * @return 0; -EPERM not the leader; -EBUSY a change is in flight; -EINVAL.
 */
int zap_paxos_propose_config(struct zap_paxos *p, uint64_t now_ns, const uint16_t *members,
			     unsigned n);

/** The driver took a snapshot covering slots <= @p slot: older values may go. */
int zap_paxos_compact(struct zap_paxos *p, uint64_t slot);

/** The driver installed a snapshot covering slots <= @p slot (after SNAPSHOT_NEEDED). */
int zap_paxos_snapshot_installed(struct zap_paxos *p, uint64_t now_ns, uint64_t slot);

/**
 * Take the next output. @return 1 with *out filled; 0 when none is left.
 * Pointers in *out stay valid until the next call into the engine.
 */
int zap_paxos_poll(struct zap_paxos *p, struct zap_paxos_out *out);

/** Earliest time at which zap_paxos_tick() has something to do. */
uint64_t zap_paxos_next_deadline(const struct zap_paxos *p);

void zap_paxos_stats(const struct zap_paxos *p, struct zap_paxos_stats *st);

/** Current members; @return their number. */
unsigned zap_paxos_members(const struct zap_paxos *p, uint16_t *members);

#ifdef __cplusplus
}
#endif
#endif /* ZAP_PAXOS_H */
