/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap transaction state machine, private part: the structures shared by
 * txn.c (the rules) and txn_sm.c (life cycle, digest, counters).
 * The invariants are stated at the top of txn.c. Threading: the apply stage.
 */
#ifndef ZAP_TXN_INTERNAL_H
#define ZAP_TXN_INTERNAL_H

#include "txn.h"
#include "txn_map.h"

enum zap_txn_state {
	ZAP_TXN_STATE_PREPARED = 1, /* voted, holds its locks */
	ZAP_TXN_STATE_WAITING = 2,  /* vote queued behind a lock, holds none */
};

/* A prepared or waiting transaction; one heap block, arrays after it. */
struct zap_txn {
	uint64_t txn_id;
	uint64_t client_id;
	uint64_t seq;		       /* seq of the PREPARE / ONESHOT request */
	uint64_t prepare_clock_ns;     /* clock of that entry: the lease starts here */
	uint16_t node;		       /* proposer of that entry */
	uint8_t type;		       /* ZAP_ENTRY_PREPARE or ZAP_ENTRY_ONESHOT */
	uint8_t state;		       /* enum zap_txn_state */
	uint8_t pending;	       /* its request's final result is still owed */
	struct zap_txn *prev, *next;   /* all transactions, creation order */
	struct zap_txn *wprev, *wnext; /* waiter FIFO */
	uint32_t n_stores, n_reads;
	struct zap_entry_store *stores; /* data points into this block */
	struct zap_entry_read *reads;
	struct zap_store_write *writes; /* the same records, as zap_store_commit() wants */
	uint64_t *oids;			/* stored oids, for invalidations */
	struct zap_txn_text meta;
};

/*
 * A large entry's bytes while its PAYLOAD chunks arrive (txn.c), until the
 * LARGE entry that names it, a LEASE_EXPIRE past its lease, or its node's
 * departure. Chunks must come in order; one out of order breaks it.
 */
struct zap_payload {
	uint64_t id;
	uint64_t clock_ns; /* clock of its latest chunk: the lease runs from here */
	uint64_t total, received;
	uint16_t node;	   /* proposer of its first chunk */
	uint8_t broken;	   /* a chunk out of order or of another total: refused */
	uint8_t *buf;	   /* total bytes; NULL once broken */
	struct zap_payload *next; /* arrival order */
};

/* Payloads being received at once, at most (more are dropped and counted). */
#define ZAP_TXN_MAX_PAYLOADS 64u

/* One client's exactly-once record. */
struct zap_session {
	uint64_t client_id;
	uint64_t last_seq;
	struct zap_txn_result res;	 /* result of last_seq (oids not kept) */
	struct zap_session *prev, *next; /* LRU: head least recently applied */
};

struct zap_txn_sm {
	struct zap_txn_params p;
	struct zap_store *store;
	struct zap_entry_decoder *dec;
	uint64_t applied_index;
	uint64_t last_tid;
	uint64_t next_oid;

	struct zap_txn_map txns;  /* txn id -> struct zap_txn */
	struct zap_txn_map locks; /* oid -> holding struct zap_txn */
	struct zap_txn *all_head, *all_tail;
	struct zap_txn *wait_head, *wait_tail;
	uint32_t n_txns, n_waiting;
	uint64_t txn_objects; /* sum of n_stores + n_reads over the table */

	struct zap_txn_map sessions; /* client id -> struct zap_session */
	struct zap_session *session_pool;
	struct zap_session *free_sessions; /* linked by next */
	struct zap_session *lru_head, *lru_tail;
	uint32_t n_sessions;

	struct zap_payload *payloads; /* arrival order */
	uint32_t n_payloads;

	struct zap_txn_stats st;
};

/*
 * One heap block for a transaction: the struct, then its stores, writes,
 * oids and reads arrays (pointers and counts set, contents not), then
 * @p tail_bytes for text and records, returned in @p tail. Shared by PREPARE
 * (txn.c) and snapshot load (txn_snapshot.c) so the layout lives in one
 * place. Only the struct header is zeroed. @return NULL: -ENOMEM.
 */
struct zap_txn *zap_txn_block(uint32_t n_stores, uint32_t n_reads, uint64_t tail_bytes,
			      uint8_t **tail);

/* Free a payload (NULL is fine). */
void zap_payload_free(struct zap_payload *p);

/*
 * Append a payload to the state machine's list: from PAYLOAD (txn.c) and
 * snapshot load (txn_snapshot.c).
 */
void zap_payload_link(struct zap_txn_sm *sm, struct zap_payload *p);

#endif /* ZAP_TXN_INTERNAL_H */
