/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap wire, plain UDP (wire_udp.h): the lower three layers of the replication
 * codec (wire.c) without the zap header and MAC. Both codecs check and write
 * those layers, and ARP, with the same code (wire_frame.c); this file adds
 * the argument checks and the sender's address of the public API.
 */
#include "wire_udp.h"

#include <errno.h>
#include <string.h>

#include "wire_frame.h"

int zap_wire_udp_decode(const struct zap_wire_udp_addr *self, const void *frame, size_t len,
			struct zap_wire_udp_addr *from, const void **dgram, size_t *dgram_len)
{
	if (self == NULL || from == NULL || dgram == NULL || dgram_len == NULL ||
	    (frame == NULL && len > 0))
		return -EINVAL;
	const uint8_t *f = frame, *d;
	size_t n;
	int r = zap_wire_frame_check_udp(f, len, self->ipv4_be, self->udp_port, &d, &n);
	if (r != 0)
		return zap_wire_drop_errno((unsigned)(r - 1));
	memcpy(from->mac, f + ETH_SRC, 6);
	from->ipv4_be = get_ip(f + IP_OFF + IP_SRC);
	from->udp_port = zap_get_be16(f + UDP_OFF + UDP_SRC_PORT);
	*dgram = d;
	*dgram_len = n;
	return 0;
}

int zap_wire_udp_encode(const struct zap_wire_udp_addr *src, const struct zap_wire_udp_addr *dst,
			void *frame, size_t dgram_len)
{
	if (src == NULL || dst == NULL || frame == NULL)
		return -EINVAL;
	if (dgram_len > ZAP_WIRE_UDP_MAX_DATAGRAM_BYTES)
		return -EMSGSIZE;
	zap_wire_frame_put_udp(frame, src, dst, dgram_len);
	return (int)(ZAP_WIRE_UDP_HDR_BYTES + dgram_len);
}

int zap_wire_udp_is_arp(const void *frame, size_t len)
{
	return frame != NULL && len >= ZAP_WIRE_ETH_BYTES &&
	       zap_get_be16((const uint8_t *)frame + ETH_TYPE) == ETHERTYPE_ARP;
}

int zap_wire_udp_arp_request(const struct zap_wire_udp_addr *self, uint32_t target_ipv4_be,
			     void *frame, size_t cap)
{
	static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	if (self == NULL || frame == NULL)
		return -EINVAL;
	if (cap < ZAP_WIRE_ARP_REPLY_BYTES)
		return -ENOSPC;
	struct zap_wire_arp_addr sender = {.ipv4_be = self->ipv4_be};
	memcpy(sender.mac, self->mac, 6);
	struct zap_wire_arp_addr target = {.ipv4_be = target_ipv4_be}; /* THA unknown: zero */
	zap_wire_frame_arp_put(frame, broadcast, ARP_OP_REQUEST, &sender, &target);
	return (int)ZAP_WIRE_ARP_REPLY_BYTES;
}

int zap_wire_udp_arp_parse_reply(const struct zap_wire_udp_addr *self, const void *frame,
				 size_t len, struct zap_wire_udp_addr *sender)
{
	if (self == NULL || frame == NULL || sender == NULL)
		return -EINVAL;
	int rc = zap_wire_frame_arp_check(frame, len, ARP_OP_REPLY);
	if (rc != 0)
		return rc;
	const uint8_t *a = (const uint8_t *)frame + ZAP_WIRE_ETH_BYTES;
	if (get_ip(a + ARP_TPA) != self->ipv4_be)
		return -EADDRNOTAVAIL;
	memcpy(sender->mac, a + ARP_SHA, 6);
	sender->ipv4_be = get_ip(a + ARP_SPA);
	sender->udp_port = 0;
	return 0;
}
