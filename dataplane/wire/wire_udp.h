/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap wire, plain UDP: Ethernet / IPv4 / UDP frames around an opaque
 * datagram, for the native client protocol on a DPDK port (docs/client.md,
 * "On a DPDK client port"), where no kernel builds the headers.
 *
 *     Ethernet II (14) | IPv4, no options, DF, TTL 64 (20) | UDP (8) | datagram
 *
 * The same checks as the replication codec (wire.h) up to the UDP layer,
 * with the same drop reasons: a frame is dropped with one counted reason
 * (enum zap_wire_drop, TRUNCATED .. NOT_FOR_US) and never read outside
 * [frame, frame + len). The IPv4 header checksum and the UDP checksum are
 * computed in software on send and checked on receive (a zero UDP checksum
 * is refused, as on the replication network).
 *
 * Also the two ARP frames a client of such a port needs: a request for the
 * node's address, and the parse of the reply.
 *
 * Pure: no DPDK, no kernel, no allocation; reentrant.
 */
#ifndef ZAP_WIRE_UDP_H
#define ZAP_WIRE_UDP_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"
#include "wire_layout.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The frame sizes (ZAP_WIRE_UDP_HDR_BYTES, ZAP_WIRE_UDP_MAX_DATAGRAM_BYTES)
 * and struct zap_wire_udp_addr, one end of a UDP exchange, are in
 * wire_layout.h.
 */

/**
 * Check one received frame and find its datagram.
 *
 * @param self  the receiver: frames to another IPv4 address or UDP port are
 *              dropped as NOT_FOR_US (the Ethernet destination is not checked:
 *              a port in promiscuous mode or on a point-to-point link)
 * @param from  out: the sender's MAC, IPv4 address and UDP port
 * @param dgram out: the datagram, inside @p frame; @p dgram_len its length
 * @return 0; else the negative errno of the drop reason (zap_wire_drop_errno():
 *         -ENODATA, -EPFNOSUPPORT, -EOPNOTSUPP, -EPROTONOSUPPORT, -EILSEQ,
 *         -EMSGSIZE, -EIO, -EADDRNOTAVAIL); -EINVAL for NULL arguments.
 */
int zap_wire_udp_decode(const struct zap_wire_udp_addr *self, const void *frame, size_t len,
			struct zap_wire_udp_addr *from, const void **dgram, size_t *dgram_len);

/**
 * Write the Ethernet, IPv4 and UDP headers (checksums included) in front of a
 * datagram of @p dgram_len bytes already at frame + ZAP_WIRE_UDP_HDR_BYTES.
 *
 * @return the frame length (ZAP_WIRE_UDP_HDR_BYTES + dgram_len); -EMSGSIZE if
 *         @p dgram_len > ZAP_WIRE_UDP_MAX_DATAGRAM_BYTES; -EINVAL NULL arguments.
 */
int zap_wire_udp_encode(const struct zap_wire_udp_addr *src, const struct zap_wire_udp_addr *dst,
			void *frame, size_t dgram_len);

/**
 * An ARP request (broadcast) from @p self for @p target_ipv4_be.
 *
 * @return ZAP_WIRE_ARP_REPLY_BYTES (60) written; -ENOSPC @p cap too small;
 *         -EINVAL NULL arguments.
 */
int zap_wire_udp_arp_request(const struct zap_wire_udp_addr *self, uint32_t target_ipv4_be,
			     void *frame, size_t cap);

/**
 * Parse an ARP reply addressed to @p self's IPv4 address.
 *
 * @param sender  out: the answering host's MAC and IPv4 address (udp_port 0)
 * @return 0; -ENOMSG not an ARP reply; -EBADMSG truncated or not Ethernet/IPv4;
 *         -EADDRNOTAVAIL a reply to another address; -EINVAL NULL arguments.
 */
int zap_wire_udp_arp_parse_reply(const struct zap_wire_udp_addr *self, const void *frame,
				 size_t len, struct zap_wire_udp_addr *sender);

/** Whether @p frame (at least 14 bytes) is an ARP frame (ethertype 0x0806). */
int zap_wire_udp_is_arp(const void *frame, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* ZAP_WIRE_UDP_H */
