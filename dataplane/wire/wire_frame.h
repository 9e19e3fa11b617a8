/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap wire frame: internal to the two frame codecs, the replication codec
 * (wire.c) and the plain UDP codec of the native client port (wire_udp.c).
 *
 * One place for what both put on the wire below their own payload: the
 * Ethernet II / IPv4 / UDP / ARP layout (fields big-endian, written and read
 * with base/bytes.h), IPv4 addresses kept in network byte order, the lower
 * three layers checked on receive and written on send (checksums in software,
 * RFC 1071), and the Ethernet/IPv4 ARP packet checked and written.
 *
 *     Ethernet II (14) | IPv4, no options, DF, TTL 64 (20) | UDP (8) | datagram
 *
 * Pure: no DPDK, no kernel, no allocation; reentrant. Not a public header:
 * only wire.c, wire_udp.c and wire_frame.c include it.
 */
#ifndef ZAP_WIRE_FRAME_H
#define ZAP_WIRE_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/bytes.h"
#include "wire_layout.h"

/* ---------------------------------------------------------------- layout */

/* Ethernet */
#define ETH_DST 0
#define ETH_SRC 6
#define ETH_TYPE 12
#define ETHERTYPE_IPV4 0x0800u
#define ETHERTYPE_ARP 0x0806u

/* IPv4, from the start of the IP header */
#define IP_OFF ZAP_WIRE_ETH_BYTES
#define IP_VER_IHL 0
#define IP_TOS 1
#define IP_TOTAL_LEN 2
#define IP_ID 4
#define IP_FRAG 6
#define IP_TTL 8
#define IP_PROTO 9
#define IP_CKSUM 10
#define IP_SRC 12
#define IP_DST 16
#define IP_VER_IHL_PLAIN 0x45u /* version 4, 5 words: no options */
#define IP_FLAG_DF 0x4000u
#define IP_FRAG_MASK 0x3fffu /* MF and the fragment offset */
#define IP_TTL_HOPS 64u
#define IP_PROTO_UDP 17u

/* UDP, from the start of the UDP header */
#define UDP_OFF (IP_OFF + ZAP_WIRE_IPV4_BYTES)
#define UDP_SRC_PORT 0
#define UDP_DST_PORT 2
#define UDP_LEN 4
#define UDP_CKSUM 6

/* ARP (Ethernet/IPv4), from the start of the ARP packet */
#define ARP_HTYPE 0
#define ARP_PTYPE 2
#define ARP_HLEN 4
#define ARP_PLEN 5
#define ARP_OP 6
#define ARP_SHA 8
#define ARP_SPA 14
#define ARP_THA 18
#define ARP_TPA 24
#define ARP_BYTES 28
#define ARP_HTYPE_ETHERNET 1u
#define ARP_OP_REQUEST 1u
#define ARP_OP_REPLY 2u

_Static_assert(UDP_OFF + ZAP_WIRE_UDP_BYTES == ZAP_WIRE_UDP_HDR_BYTES, "frame layout");
_Static_assert(ZAP_WIRE_ETH_BYTES + ARP_BYTES <= ZAP_WIRE_ARP_REPLY_BYTES, "ARP frame layout");

/* ---------------------------------------------------------------- addresses */

/* An IPv4 address kept in network byte order, as bytes on the wire. */
static inline void put_ip(uint8_t *b, uint32_t ipv4_be)
{
	memcpy(b, &ipv4_be, 4);
}

static inline uint32_t get_ip(const uint8_t *b)
{
	uint32_t v;
	memcpy(&v, b, 4);
	return v;
}

/* ---------------------------------------------------------------- UDP frames */

/*
 * Check the Ethernet, IPv4 and UDP layers of a received frame, from the
 * outside in, cheapest first, reading a field only once the bytes under it
 * are known to be inside [f, f + len): Ethernet and IPv4 headers present,
 * IPv4 without options or fragments, UDP, IP total length inside the frame,
 * IP checksum, UDP length, UDP checksum (zero, "none", is refused), and
 * addressed to @p ipv4_be (network byte order) and @p udp_port (host byte
 * order). The Ethernet destination is not checked.
 *
 * @param dgram      out, on success: the UDP payload, at f + ZAP_WIRE_UDP_HDR_BYTES
 * @param dgram_len  out, on success: its length
 * @return 0; else the first failed check's drop reason + 1 (enum zap_wire_drop,
 *         TRUNCATED .. NOT_FOR_US).
 */
int zap_wire_frame_check_udp(const uint8_t *f, size_t len, uint32_t ipv4_be, uint16_t udp_port,
			     const uint8_t **dgram, size_t *dgram_len);

/*
 * Write the Ethernet, IPv4 and UDP headers from @p src to @p dst in front of
 * the @p dgram_len bytes already at f + ZAP_WIRE_UDP_HDR_BYTES, then the UDP
 * checksum (over that datagram) and the IPv4 header checksum.
 * @p dgram_len is at most ZAP_WIRE_UDP_MAX_DATAGRAM_BYTES (the caller checks).
 */
void zap_wire_frame_put_udp(uint8_t *f, const struct zap_wire_udp_addr *src,
			    const struct zap_wire_udp_addr *dst, size_t dgram_len);

/* ---------------------------------------------------------------- ARP */

/*
 * Check that [f, f + len) is an Ethernet/IPv4 ARP packet with opcode @p op
 * (ARP_OP_REQUEST or ARP_OP_REPLY); the packet is then at f + ZAP_WIRE_ETH_BYTES.
 *
 * @return 0; -ENOMSG not ARP, or another opcode; -EBADMSG truncated, or a
 *         hardware or protocol other than Ethernet and IPv4.
 */
int zap_wire_frame_arp_check(const uint8_t *f, size_t len, unsigned op);

/*
 * Write an Ethernet/IPv4 ARP frame of ZAP_WIRE_ARP_REPLY_BYTES (the minimum
 * Ethernet frame, zero padded) at @p o: to @p eth_dst, opcode @p op, from
 * @p sender (Ethernet source, SHA, SPA) about @p target (THA, TPA).
 * @p o has room for ZAP_WIRE_ARP_REPLY_BYTES (the caller checks).
 */
void zap_wire_frame_arp_put(uint8_t *o, const uint8_t eth_dst[6], unsigned op,
			    const struct zap_wire_arp_addr *sender,
			    const struct zap_wire_arp_addr *target);

#endif /* ZAP_WIRE_FRAME_H */
