/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap wire: the replication frame format, as a pure codec over byte buffers.
 *
 * One replication message travels as one Ethernet frame:
 *
 *     Ethernet II (14) | IPv4, no options, DF, TTL 64 (20) | UDP (8) |
 *     zap header (84) | payload (0..max_payload_bytes) | MAC tag (16)
 *
 * The zap header carries every field of struct zap_paxos_msg, big-endian;
 * the tag is keyed BLAKE2b-128 over the zap header and payload, keyed by a
 * key derived once from the cluster secret and cluster id (docs/wire.md has
 * the byte offsets, the MAC choice and the MTU arithmetic). Both the IPv4
 * header checksum and the UDP checksum are computed here in software,
 * because kernel peers drop frames whose checksum was left to offload.
 *
 * Decoding never trusts a byte before it is bounds-checked: a bad frame is
 * dropped with one counted reason (enum zap_wire_drop) and a distinct
 * negative errno, never a crash, never a read outside [frame, frame + len).
 * A decoded message's payload points into the frame (zero copy).
 *
 * Nothing here calls DPDK or the kernel: the io lcore, the tests and the
 * fuzzers drive the same code. No allocation per frame: a context is made
 * once (zap_wire_ctx_create) and holds the keyed MAC state, the node table
 * and the counters.
 *
 * Threading: a context belongs to one thread (its counters are plain
 * integers). Give each lcore that encodes or decodes its own context.
 */
#ifndef ZAP_WIRE_H
#define ZAP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "paxos/paxos.h"
#include "wire_layout.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- layout */

#define ZAP_WIRE_MAGIC 0x5a415031u /**< "ZAP1" */
#define ZAP_WIRE_VERSION 1u

/* ZAP_WIRE_ETH_BYTES, ZAP_WIRE_IPV4_BYTES, ZAP_WIRE_UDP_BYTES: wire_layout.h */
#define ZAP_WIRE_HDR_BYTES 84u /**< the zap header */
#define ZAP_WIRE_TAG_BYTES 16u /**< the MAC tag */
/** Frame bytes that are not payload: 142. */
#define ZAP_WIRE_OVERHEAD_BYTES                                                                    \
	(ZAP_WIRE_ETH_BYTES + ZAP_WIRE_IPV4_BYTES + ZAP_WIRE_UDP_BYTES + ZAP_WIRE_HDR_BYTES +      \
	 ZAP_WIRE_TAG_BYTES)
/** IP packet bytes (what the MTU limits) that are not payload: 128. */
#define ZAP_WIRE_IP_OVERHEAD_BYTES (ZAP_WIRE_OVERHEAD_BYTES - ZAP_WIRE_ETH_BYTES)

/** Default IP MTU. */
#define ZAP_WIRE_DEFAULT_MTU_BYTES 1500u
/** Largest payload in a 1500-byte MTU: 1500 - 128 = 1372 (not 1400, see docs/wire.md). */
#define ZAP_WIRE_MTU1500_PAYLOAD_BYTES (ZAP_WIRE_DEFAULT_MTU_BYTES - ZAP_WIRE_IP_OVERHEAD_BYTES)
/** Smallest IP MTU that carries the engine's default 1400-byte datagram: 1528. */
#define ZAP_WIRE_MTU_FOR_PAXOS_DEFAULT_BYTES                                                       \
	(ZAP_PAXOS_DEFAULT_DATAGRAM_BYTES + ZAP_WIRE_IP_OVERHEAD_BYTES)
/** Largest IP MTU accepted (jumbo frames). */
#define ZAP_WIRE_MAX_MTU_BYTES 9216u
/** Nodes a context can know (members, pending members, nodes just removed). */
#define ZAP_WIRE_MAX_NODES 16u

/** Wire types 1..63: replication (the zap_paxos_msg_type values, unchanged). */
#define ZAP_WIRE_TYPE_PAXOS_FIRST ZAP_PAXOS_MSG_PREPARE
#define ZAP_WIRE_TYPE_PAXOS_LAST (ZAP_PAXOS_MSG_TYPE_COUNT - 1)
/**
 * Wire types 32 and 33: snapshot transfer between the nodes' drivers (zapd's
 * paxos stage), not engine messages. They use the same header fields:
 * SNAP_REQ asks for the sender's snapshot covering at least `slot`, from
 * byte `offset`; SNAP_CHUNK carries bytes [offset, offset + len) of the
 * snapshot of slot `slot`, `value_len` bytes long (flag LAST on the final
 * chunk of one answer). docs/log.md, "Checkpoints and snapshots", has the protocol.
 */
#define ZAP_WIRE_TYPE_SNAP_REQ 32u
#define ZAP_WIRE_TYPE_SNAP_CHUNK 33u
/**
 * Wire types 34 and 35: blob files between the nodes' drivers (a node that
 * installed a snapshot fetches the blob files its store references). Same
 * header fields: BLOB_REQ asks for the blob whose 32-byte hash is its
 * payload, from byte `offset`; BLOB_CHUNK's payload is the hash followed by
 * bytes [offset, offset + len - 32) of the blob, `value_len` bytes long
 * (flag LAST on the final chunk of one answer). docs/store.md, "Blob area".
 */
#define ZAP_WIRE_TYPE_BLOB_REQ 34u
#define ZAP_WIRE_TYPE_BLOB_CHUNK 35u
/**
 * Wire type 36: the sender's cluster-wide settings ("key value" lines in
 * the payload), which every node must share (docs/operations.md). Flag
 * LAST asks the receiver to answer with its own.
 */
#define ZAP_WIRE_TYPE_SETTINGS 36u
/** Wire types 64..127: reserved for the native client protocol. */
#define ZAP_WIRE_TYPE_CLIENT_FIRST 64u
#define ZAP_WIRE_TYPE_CLIENT_LAST 127u

/* ---------------------------------------------------------------- drops */

/* The reasons, enum zap_wire_drop, are in wire_layout.h (shared with wire_udp.h). */

/** Counters of one context. */
struct zap_wire_stats {
	uint64_t frames_encoded;
	uint64_t frames_decoded; /**< accepted */
	uint64_t frames_dropped; /**< sum of dropped[] */
	uint64_t dropped[ZAP_WIRE_DROP_COUNT];
};

/** Metric name of a drop reason ("bad_mac", ...); "unknown" out of range. */
const char *zap_wire_drop_name(unsigned reason);

/** The negative errno zap_wire_decode_paxos() returns for @p reason; 0 out of range. */
int zap_wire_drop_errno(unsigned reason);

/** The drop reason of a negative errno from zap_wire_decode_paxos(); -1 if none. */
int zap_wire_errno_drop(int err);

/* ---------------------------------------------------------------- context */

/** Where a node is reached on the replication network. */
struct zap_wire_node {
	uint16_t id;	   /**< node id, nonzero */
	uint8_t mac[6];	   /**< next-hop Ethernet address (the node, or the router) */
	uint32_t ipv4_be;  /**< IPv4 address, network byte order */
	uint16_t udp_port; /**< UDP port, host byte order, nonzero */
};

struct zap_wire_params {
	uint64_t cluster_id;		   /**< nonzero; on every frame */
	const uint8_t *secret;		   /**< the cluster secret (copied into a derived key) */
	size_t secret_len;		   /**< 16..64 bytes */
	uint16_t self;			   /**< this node's id; must be in @p nodes */
	const struct zap_wire_node *nodes; /**< the known nodes, this one included */
	unsigned n_nodes;		   /**< 1..ZAP_WIRE_MAX_NODES, ids unique */
	uint32_t mtu_bytes; /**< IP MTU of the link; 0 = ZAP_WIRE_DEFAULT_MTU_BYTES */
	/** Largest payload per frame; 0 = the largest that fits mtu_bytes. */
	uint32_t max_payload_bytes;
};

struct zap_wire_ctx;

/**
 * Make a context: derive the MAC key from the secret and cluster id, copy
 * the node table.
 * @return 0 and *out set; -EINVAL bad parameters (cluster id 0, secret
 *   length, node ids 0 or repeated, self missing, MTU out of 576..9216, or a
 *   max_payload_bytes whose frame would exceed the MTU); -ENOMEM; -EIO
 *   libsodium failed to initialise.
 */
int zap_wire_ctx_create(const struct zap_wire_params *p, struct zap_wire_ctx **out);

/** Free a context (the key is wiped). NULL is a no-op. */
void zap_wire_ctx_destroy(struct zap_wire_ctx *w);

/**
 * Add a node to the table, or update its address (membership changes).
 * @return 0; -EINVAL id 0 or port 0; -ENOSPC table full.
 */
int zap_wire_node_set(struct zap_wire_ctx *w, const struct zap_wire_node *n);

/**
 * Forget a node: its frames become unknown-sender drops.
 * @return 0; -ENOENT not in the table; -EINVAL it is this node.
 */
int zap_wire_node_remove(struct zap_wire_ctx *w, uint16_t id);

/** The context's largest payload per frame (set this as the engine's datagram_bytes). */
uint32_t zap_wire_max_payload(const struct zap_wire_ctx *w);

/** Largest payload that fits an IP MTU of @p mtu_bytes (0 if none does). */
uint32_t zap_wire_payload_for_mtu(uint32_t mtu_bytes);

/** Frame bytes for a payload of @p payload_len bytes (142 + payload_len). */
size_t zap_wire_frame_len(uint32_t payload_len);

/* ---------------------------------------------------------------- codec */

/**
 * Encode one message (its own epoch, m->epoch, goes on the wire) as a
 * frame from this node to node m->to.
 * @param frame  output buffer; @p cap its size
 * @return bytes written (zap_wire_frame_len(m->len)); -EINVAL m->from is not
 *   this node, type not a replication type, or payload NULL with len > 0;
 *   -EMSGSIZE m->len > zap_wire_max_payload(); -EHOSTUNREACH receiver not in
 *   the node table; -ENOSPC @p cap too small.
 */
int zap_wire_encode_paxos(struct zap_wire_ctx *w, const struct zap_paxos_msg *m, void *frame,
			  size_t cap);

/**
 * Decode and authenticate one received frame. Trailing bytes after the IP
 * packet (Ethernet padding) are ignored.
 * @param min_epoch  frames whose epoch is below it are dropped as stale
 *   (0 accepts every epoch)
 * @param out  filled only on success; out->payload points into @p frame
 * @return 0; else the frame was dropped and counted, and the return is the
 *   negative errno of its reason (enum zap_wire_drop lists them); -EINVAL
 *   (not counted) for NULL arguments.
 */
int zap_wire_decode_paxos(struct zap_wire_ctx *w, const void *frame, size_t len, uint32_t min_epoch,
			  struct zap_paxos_msg *out);

/** Copy the counters. */
void zap_wire_stats(const struct zap_wire_ctx *w, struct zap_wire_stats *st);

/* ---------------------------------------------------------------- ARP */

/* struct zap_wire_arp_addr, one address this node answers ARP for: wire_layout.h */

/**
 * Answer an ARP request (Ethernet/IPv4) for one of this node's addresses,
 * so kernel hosts on the segment can reach it. The reply goes to the
 * requester's hardware address, padded to the 60-byte Ethernet minimum.
 * @param addrs  this node's addresses (replication, client, ...)
 * @return ZAP_WIRE_ARP_REPLY_BYTES written to @p reply; -ENOMSG not an ARP
 *   request (ethertype, opcode); -EBADMSG truncated or not Ethernet/IPv4 ARP;
 *   -EADDRNOTAVAIL the target address is not one of @p addrs; -ENOSPC @p cap
 *   too small; -EINVAL NULL arguments.
 */
int zap_wire_arp_reply(const struct zap_wire_arp_addr *addrs, unsigned n_addrs, const void *req,
		       size_t len, void *reply, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* ZAP_WIRE_H */
