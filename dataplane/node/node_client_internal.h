/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap node client service, shared between node_client.c (the thread,
 * decode, pending table, writes) and node_client_read.c (replies and reads).
 * Everything here belongs to the client thread: one struct cl, used by that
 * thread only.
 */
#ifndef ZAP_NODE_CLIENT_INTERNAL_H
#define ZAP_NODE_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "node_core.h"

#include "client/client_proto.h"
#include "txn/entry.h"
#include "wire/wire_udp.h"

#define CL_PENDING 1024u
#define CL_CHUNK_BYTES (ZAP_CP_DEFAULT_DATAGRAM_BYTES - ZAP_CP_HDR_BYTES)
#define CL_DGRAM_BYTES 65536u
#define CL_RESUBMIT_NS (50ull * 1000 * 1000)
#define CL_EXPIRE_NS (10ull * 1000 * 1000 * 1000)
/** A transaction sent in PAYLOAD chunks may take longer before its answer. */
#define CL_EXPIRE_LARGE_NS (120ull * 1000 * 1000 * 1000) /* after its LARGE left */
/** Large transactions being chunked into the pipeline at once (BUSY beyond). */
#define CL_MAX_LARGE 16u
/** Chunk bytes in flight past the acknowledged ones, per large write. */
#define CL_LARGE_WINDOW (512u << 10)
/** No acknowledgement for this long: send the chunks again from the acknowledged ones. */
#define CL_LARGE_RESEND_NS (100ull * 1000 * 1000)
/**
 * A large write not answered for this long after its LARGE entry left (and
 * no longer queued) is submitted again, plus CL_LARGE_NS_PER_MIB per MiB
 * (the hash check and the copy of a GiB take seconds on every node).
 */
#define CL_RESUBMIT_LARGE_NS (5ull * 1000 * 1000 * 1000)
#define CL_LARGE_NS_PER_MIB (20ull * 1000 * 1000)
/** Room a consensus value keeps for its batch and command headers. */
#define CL_VALUE_SLACK 1024u
#define CL_MAX_HIST 1024u
#define CL_MAX_OIDS 65536u
#define CL_REASM_SLOTS 64u
/** Header check bound: any size a header can state; the real limit is answered TOO_LARGE. */
#define CL_ANY_MESSAGE_BYTES ((uint64_t)ZAP_CP_MAX_CHUNKS * ZAP_CP_MAX_CHUNK_BYTES)

/**
 * Where a request came from and where its answer goes: a kernel UDP peer
 * (sa, alen), a peer on the DPDK client port (peer), or a channel of the
 * in-process transport (local: chan, gen; node_client_local.c).
 */
struct cl_addr {
	bool on_port;
	bool local;
	uint32_t chan, gen;
	socklen_t alen;
	struct zap_wire_udp_addr peer;
	struct sockaddr_storage sa;
};

struct cl_pending {
	bool used;
	bool barrier; /**< waiting for a read barrier, not for a write's result */
	bool large;   /**< a transaction sent in PAYLOAD chunks */
	uint32_t large_mib; /**< its size: its answer may take longer (CL_LARGE_NS_PER_MIB) */
	uint8_t type; /**< enum zap_cp_type of the request */
	struct zap_cp_hdr hdr;
	uint64_t oid;	     /**< LOAD after the barrier */
	uint64_t barrier_id; /**< barrier: the NOP's clock value */
	uint64_t t_ns;	     /**< last (re)submission */
	struct cl_addr addr; /**< where the answer goes (the latest resend's source) */
};

struct cl_local;

/**
 * A write too large for one consensus value, being fed to the paxos stage
 * as PAYLOAD chunks, then the LARGE entry that names them
 * (docs/txn.md "Large entries").
 */
struct cl_large {
	uint8_t *buf;	     /**< the encoded entry */
	size_t len, off;     /**< bytes, bytes already chunked */
	size_t acked;	     /**< bytes this node's state machine holds (PAYLOAD results) */
	uint64_t progress_ns; /**< when acked last moved (or the chunks were rewound) */
	struct zap_entry large; /**< the LARGE entry, sent after the last chunk */
	struct cl_large *next;
};

struct cl {
	struct zap_node *n;
	int fd;
	struct cl_local *local; /**< the ZEO gateway's in-process channels */
	struct zap_store_reader *rd;
	struct zap_cp_decoder *dec;
	struct zap_cp_reasm *ra;
	uint8_t *dgram;	   /**< a reply datagram being sent */
	uint8_t *rx_dgram; /**< a request datagram from the kernel socket */
	uint8_t *body;
	size_t body_cap;
	uint32_t max_objects;
	struct zap_entry_store *stores;
	struct zap_entry_read *reads;
	struct zap_store_hist *shist;
	struct zap_cp_hist *hist;
	uint64_t *oids;
	uint32_t n_oids, max_oids;
	bool truncated;
	uint64_t last_barrier;
	uint64_t last_payload;	/**< payload ids: node << 56 | a clock that only grows */
	uint64_t max_large;	/**< largest entry sent in chunks (txn.max_bytes) */
	uint32_t large_chunk;	/**< payload bytes per PAYLOAD entry */
	uint32_t value_room;	/**< an entry larger than this goes in chunks */
	uint32_t n_large;
	struct cl_large *large_head, *large_tail;
	struct cl_pending pend[CL_PENDING];
};

/* node_client_read.c */
/** Encode @p r, chunk it and send each datagram back to @p a (counted as a reply). */
void cl_send(struct cl *c, struct zap_cp_response *r, const struct cl_addr *a);
/** The response header answering @p h with @p status. */
struct zap_cp_response cl_reply_to(const struct zap_cp_hdr *h, uint16_t status);
/** A response with a status and no body. */
void cl_status(struct cl *c, const struct zap_cp_hdr *h, uint16_t status, const struct cl_addr *a);
/** The reads, answered from the store at the node's applied tid. */
void cl_read_load(struct cl *c, const struct zap_cp_hdr *h, uint64_t oid, const struct cl_addr *a);
void cl_read_load_before(struct cl *c, const struct zap_cp_hdr *h, const struct zap_cp_request *q,
			 const struct cl_addr *a);
void cl_read_history(struct cl *c, const struct zap_cp_hdr *h, const struct zap_cp_request *q,
		     const struct cl_addr *a);
void cl_read_changes(struct cl *c, const struct zap_cp_hdr *h, const struct zap_cp_request *q,
		     const struct cl_addr *a);

#endif /* ZAP_NODE_CLIENT_INTERNAL_H */
