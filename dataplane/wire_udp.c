/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap wire, plain UDP (wire_udp.h): the lower three layers of the replication
 * codec (wire.c) without the zap header and MAC, checked in the same order,
 * cheapest first, each field read only once the bytes under it are known to
 * be inside the frame.
 */
#include "wire_udp.h"

#include <errno.h>
#include <string.h>

#define ETH_DST 0
#define ETH_SRC 6
#define ETH_TYPE 12
#define ETHERTYPE_IPV4 0x0800u
#define ETHERTYPE_ARP 0x0806u

#define IP_OFF ZAP_WIRE_ETH_BYTES
#define IP_VER_IHL 0
#define IP_TOTAL_LEN 2
#define IP_FRAG 6
#define IP_TTL 8
#define IP_PROTO 9
#define IP_CKSUM 10
#define IP_SRC 12
#define IP_DST 16
#define IP_VER_IHL_PLAIN 0x45u
#define IP_FLAG_DF 0x4000u
#define IP_FRAG_MASK 0x3fffu
#define IP_TTL_HOPS 64u
#define IP_PROTO_UDP 17u

#define UDP_OFF (IP_OFF + ZAP_WIRE_IPV4_BYTES)
#define UDP_SRC_PORT 0
#define UDP_DST_PORT 2
#define UDP_LEN 4
#define UDP_CKSUM 6

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

static inline void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static inline uint16_t get16(const uint8_t *b)
{
	return (uint16_t)((b[0] << 8) | b[1]);
}

static inline uint32_t get_ip(const uint8_t *b)
{
	uint32_t v;
	memcpy(&v, b, 4);
	return v;
}

/* Ones' complement sum (RFC 1071) of big-endian 16-bit words, unfolded. */
static uint64_t sum16(const uint8_t *b, size_t len, uint64_t acc)
{
	size_t i = 0;
	for (; i + 1 < len; i += 2)
		acc += get16(b + i);
	if (i < len)
		acc += (uint64_t)b[i] << 8;
	return acc;
}

static uint16_t fold16(uint64_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xffffu) + (acc >> 16);
	return (uint16_t)acc;
}

/* Sum of the UDP pseudo header and the UDP segment at ip + 20. */
static uint64_t udp_sum(const uint8_t *ip, uint16_t udp_len)
{
	uint64_t acc = sum16(ip + IP_SRC, 8, 0);
	acc += IP_PROTO_UDP + (uint64_t)udp_len;
	return sum16(ip + ZAP_WIRE_IPV4_BYTES, udp_len, acc);
}

static int reason(enum zap_wire_drop r)
{
	return zap_wire_drop_errno(r);
}

int zap_wire_udp_decode(const struct zap_wire_udp_addr *self, const void *frame, size_t len,
			struct zap_wire_udp_addr *from, const void **dgram, size_t *dgram_len)
{
	if (self == NULL || from == NULL || dgram == NULL || dgram_len == NULL ||
	    (frame == NULL && len > 0))
		return -EINVAL;
	const uint8_t *f = frame;
	if (len < ZAP_WIRE_ETH_BYTES + ZAP_WIRE_IPV4_BYTES)
		return reason(ZAP_WIRE_DROP_TRUNCATED);
	const uint8_t *ip = f + IP_OFF;
	if (get16(f + ETH_TYPE) != ETHERTYPE_IPV4 || ip[IP_VER_IHL] >> 4 != 4)
		return reason(ZAP_WIRE_DROP_NOT_IPV4);
	if (ip[IP_VER_IHL] != IP_VER_IHL_PLAIN || (get16(ip + IP_FRAG) & IP_FRAG_MASK) != 0)
		return reason(ZAP_WIRE_DROP_IP_UNSUPPORTED);
	if (ip[IP_PROTO] != IP_PROTO_UDP)
		return reason(ZAP_WIRE_DROP_NOT_UDP);
	uint16_t ip_len = get16(ip + IP_TOTAL_LEN);
	if (ip_len < ZAP_WIRE_IPV4_BYTES + ZAP_WIRE_UDP_BYTES || ip_len > len - IP_OFF)
		return reason(ZAP_WIRE_DROP_TRUNCATED);
	if (fold16(sum16(ip, ZAP_WIRE_IPV4_BYTES, 0)) != 0xffffu)
		return reason(ZAP_WIRE_DROP_IP_CKSUM);
	const uint8_t *udp = ip + ZAP_WIRE_IPV4_BYTES;
	uint16_t udp_len = get16(udp + UDP_LEN);
	if (udp_len != ip_len - ZAP_WIRE_IPV4_BYTES)
		return reason(ZAP_WIRE_DROP_UDP_LEN);
	if (get16(udp + UDP_CKSUM) == 0 || fold16(udp_sum(ip, udp_len)) != 0xffffu)
		return reason(ZAP_WIRE_DROP_UDP_CKSUM);
	if (get_ip(ip + IP_DST) != self->ipv4_be || get16(udp + UDP_DST_PORT) != self->udp_port)
		return reason(ZAP_WIRE_DROP_NOT_FOR_US);
	memcpy(from->mac, f + ETH_SRC, 6);
	from->ipv4_be = get_ip(ip + IP_SRC);
	from->udp_port = get16(udp + UDP_SRC_PORT);
	*dgram = udp + ZAP_WIRE_UDP_BYTES;
	*dgram_len = (size_t)udp_len - ZAP_WIRE_UDP_BYTES;
	return 0;
}

int zap_wire_udp_encode(const struct zap_wire_udp_addr *src, const struct zap_wire_udp_addr *dst,
			void *frame, size_t dgram_len)
{
	if (src == NULL || dst == NULL || frame == NULL)
		return -EINVAL;
	if (dgram_len > ZAP_WIRE_UDP_MAX_DATAGRAM_BYTES)
		return -EMSGSIZE;
	uint8_t *f = frame;
	uint16_t ip_len = (uint16_t)(dgram_len + ZAP_WIRE_IPV4_BYTES + ZAP_WIRE_UDP_BYTES);
	memcpy(f + ETH_DST, dst->mac, 6);
	memcpy(f + ETH_SRC, src->mac, 6);
	put16(f + ETH_TYPE, ETHERTYPE_IPV4);
	uint8_t *ip = f + IP_OFF;
	memset(ip, 0, ZAP_WIRE_IPV4_BYTES);
	ip[IP_VER_IHL] = IP_VER_IHL_PLAIN;
	put16(ip + IP_TOTAL_LEN, ip_len);
	put16(ip + IP_FRAG, IP_FLAG_DF); /* DF set: the id stays 0 (RFC 6864) */
	ip[IP_TTL] = IP_TTL_HOPS;
	ip[IP_PROTO] = IP_PROTO_UDP;
	memcpy(ip + IP_SRC, &src->ipv4_be, 4);
	memcpy(ip + IP_DST, &dst->ipv4_be, 4);
	uint8_t *udp = f + UDP_OFF;
	put16(udp + UDP_SRC_PORT, src->udp_port);
	put16(udp + UDP_DST_PORT, dst->udp_port);
	put16(udp + UDP_LEN, (uint16_t)(ip_len - ZAP_WIRE_IPV4_BYTES));
	put16(udp + UDP_CKSUM, 0);
	uint16_t us = (uint16_t)~fold16(udp_sum(ip, (uint16_t)(ip_len - ZAP_WIRE_IPV4_BYTES)));
	put16(udp + UDP_CKSUM, us == 0 ? 0xffffu : us); /* 0 means "none" in UDP */
	put16(ip + IP_CKSUM, (uint16_t)~fold16(sum16(ip, ZAP_WIRE_IPV4_BYTES, 0)));
	return (int)(ZAP_WIRE_UDP_HDR_BYTES + dgram_len);
}

int zap_wire_udp_is_arp(const void *frame, size_t len)
{
	return frame != NULL && len >= ZAP_WIRE_ETH_BYTES &&
	       get16((const uint8_t *)frame + ETH_TYPE) == ETHERTYPE_ARP;
}

int zap_wire_udp_arp_request(const struct zap_wire_udp_addr *self, uint32_t target_ipv4_be,
			     void *frame, size_t cap)
{
	if (self == NULL || frame == NULL)
		return -EINVAL;
	if (cap < ZAP_WIRE_ARP_REPLY_BYTES)
		return -ENOSPC;
	uint8_t *o = frame;
	memset(o, 0, ZAP_WIRE_ARP_REPLY_BYTES);
	memset(o + ETH_DST, 0xff, 6);
	memcpy(o + ETH_SRC, self->mac, 6);
	put16(o + ETH_TYPE, ETHERTYPE_ARP);
	uint8_t *r = o + ZAP_WIRE_ETH_BYTES;
	put16(r + ARP_HTYPE, ARP_HTYPE_ETHERNET);
	put16(r + ARP_PTYPE, ETHERTYPE_IPV4);
	r[ARP_HLEN] = 6;
	r[ARP_PLEN] = 4;
	put16(r + ARP_OP, ARP_OP_REQUEST);
	memcpy(r + ARP_SHA, self->mac, 6);
	memcpy(r + ARP_SPA, &self->ipv4_be, 4);
	memcpy(r + ARP_TPA, &target_ipv4_be, 4);
	return (int)ZAP_WIRE_ARP_REPLY_BYTES;
}

int zap_wire_udp_arp_parse_reply(const struct zap_wire_udp_addr *self, const void *frame,
				 size_t len, struct zap_wire_udp_addr *sender)
{
	if (self == NULL || frame == NULL || sender == NULL)
		return -EINVAL;
	const uint8_t *f = frame;
	if (len < ZAP_WIRE_ETH_BYTES)
		return -EBADMSG;
	if (get16(f + ETH_TYPE) != ETHERTYPE_ARP)
		return -ENOMSG;
	if (len < ZAP_WIRE_ETH_BYTES + ARP_BYTES)
		return -EBADMSG;
	const uint8_t *a = f + ZAP_WIRE_ETH_BYTES;
	if (get16(a + ARP_HTYPE) != ARP_HTYPE_ETHERNET || get16(a + ARP_PTYPE) != ETHERTYPE_IPV4 ||
	    a[ARP_HLEN] != 6 || a[ARP_PLEN] != 4)
		return -EBADMSG;
	if (get16(a + ARP_OP) != ARP_OP_REPLY)
		return -ENOMSG;
	if (get_ip(a + ARP_TPA) != self->ipv4_be)
		return -EADDRNOTAVAIL;
	memcpy(sender->mac, a + ARP_SHA, 6);
	sender->ipv4_be = get_ip(a + ARP_SPA);
	sender->udp_port = 0;
	return 0;
}
