/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap wire layout: what the replication codec (wire.h) and the plain UDP
 * codec (wire_udp.h) share below their own payloads, so that the frame
 * layer under both (wire_frame.h) needs neither: the Ethernet / IPv4 / UDP
 * header sizes, the reasons a received frame is dropped, and the addresses
 * a frame is sent from and to.
 *
 *     Ethernet II (14) | IPv4, no options, DF, TTL 64 (20) | UDP (8) | datagram
 *
 * Definitions only: no functions, no dependencies. wire.h and wire_udp.h
 * include it; a program includes one of those.
 */
#ifndef ZAP_WIRE_LAYOUT_H
#define ZAP_WIRE_LAYOUT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- sizes */

#define ZAP_WIRE_ETH_BYTES 14u
#define ZAP_WIRE_IPV4_BYTES 20u
#define ZAP_WIRE_UDP_BYTES 8u
/** Frame bytes before the datagram: Ethernet + IPv4 + UDP = 42. */
#define ZAP_WIRE_UDP_HDR_BYTES (ZAP_WIRE_ETH_BYTES + ZAP_WIRE_IPV4_BYTES + ZAP_WIRE_UDP_BYTES)
/** Largest datagram in one frame (the IPv4 total length is 16 bits): 65507. */
#define ZAP_WIRE_UDP_MAX_DATAGRAM_BYTES (65535u - ZAP_WIRE_IPV4_BYTES - ZAP_WIRE_UDP_BYTES)

/** Bytes of an ARP reply built by zap_wire_arp_reply() (padded to the Ethernet minimum). */
#define ZAP_WIRE_ARP_REPLY_BYTES 60u

/* ---------------------------------------------------------------- drops */

/** Why a received frame was dropped: one counter each. */
enum zap_wire_drop {
	ZAP_WIRE_DROP_TRUNCATED = 0,   /**< -ENODATA: shorter than the headers it claims */
	ZAP_WIRE_DROP_NOT_IPV4,	       /**< -EPFNOSUPPORT: ethertype or IP version not IPv4 */
	ZAP_WIRE_DROP_IP_UNSUPPORTED,  /**< -EOPNOTSUPP: IP options or a fragment */
	ZAP_WIRE_DROP_NOT_UDP,	       /**< -EPROTONOSUPPORT: IP protocol not UDP */
	ZAP_WIRE_DROP_IP_CKSUM,	       /**< -EILSEQ: IPv4 header checksum wrong */
	ZAP_WIRE_DROP_UDP_LEN,	       /**< -EMSGSIZE: UDP length != IP payload length */
	ZAP_WIRE_DROP_UDP_CKSUM,       /**< -EIO: UDP checksum wrong or absent (zero) */
	ZAP_WIRE_DROP_NOT_FOR_US,      /**< -EADDRNOTAVAIL: IP/port/receiver is not this node */
	ZAP_WIRE_DROP_BAD_MAGIC,       /**< -EPROTO: not a zap frame */
	ZAP_WIRE_DROP_BAD_VERSION,     /**< -ENOPROTOOPT: unknown zap version */
	ZAP_WIRE_DROP_BAD_TYPE,	       /**< -ENOMSG: not a replication message type */
	ZAP_WIRE_DROP_BAD_LENGTH,      /**< -EBADMSG: payload length vs frame, or too large */
	ZAP_WIRE_DROP_FOREIGN_CLUSTER, /**< -ENONET: another cluster's id */
	ZAP_WIRE_DROP_UNKNOWN_SENDER,  /**< -ESRCH: sender not in the node table */
	ZAP_WIRE_DROP_STALE_EPOCH,     /**< -ESTALE: epoch below the caller's minimum */
	ZAP_WIRE_DROP_BAD_MAC,	       /**< -EKEYREJECTED: tag does not verify */
	ZAP_WIRE_DROP_COUNT
};

/* ---------------------------------------------------------------- addresses */

/** One address this node answers ARP for. */
struct zap_wire_arp_addr {
	uint8_t mac[6];
	uint32_t ipv4_be; /**< network byte order */
};

/** One end of a UDP exchange on an Ethernet segment. */
struct zap_wire_udp_addr {
	uint8_t mac[6];
	uint32_t ipv4_be;  /**< network byte order */
	uint16_t udp_port; /**< host byte order */
};

#ifdef __cplusplus
}
#endif
#endif /* ZAP_WIRE_LAYOUT_H */
