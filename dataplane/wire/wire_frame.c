/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap wire frame (wire_frame.h): the Ethernet / IPv4 / UDP and ARP layers
 * shared by the replication codec (wire.c) and the plain UDP codec
 * (wire_udp.c). The checksums are the RFC 1071 ones' complement sums,
 * computed in software: the codecs run on ports without offloads.
 */
#include "wire_frame.h"

#include <errno.h>

/* ---------------------------------------------------------------- checksums */

/* Ones' complement sum (RFC 1071) of big-endian 16-bit words, unfolded. */
static uint64_t sum16(const uint8_t *b, size_t len, uint64_t acc)
{
	size_t i = 0;
	for (; i + 1 < len; i += 2)
		acc += zap_get_be16(b + i);
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
	uint64_t acc = sum16(ip + IP_SRC, 8, 0); /* source and destination addresses */
	acc += IP_PROTO_UDP + (uint64_t)udp_len;
	return sum16(ip + ZAP_WIRE_IPV4_BYTES, udp_len, acc);
}

/* ---------------------------------------------------------------- UDP frames */

int zap_wire_frame_check_udp(const uint8_t *f, size_t len, uint32_t ipv4_be, uint16_t udp_port,
			     const uint8_t **dgram, size_t *dgram_len)
{
	if (len < ZAP_WIRE_ETH_BYTES + ZAP_WIRE_IPV4_BYTES)
		return ZAP_WIRE_DROP_TRUNCATED + 1;
	const uint8_t *ip = f + IP_OFF;
	if (zap_get_be16(f + ETH_TYPE) != ETHERTYPE_IPV4 || ip[IP_VER_IHL] >> 4 != 4)
		return ZAP_WIRE_DROP_NOT_IPV4 + 1;
	if (ip[IP_VER_IHL] != IP_VER_IHL_PLAIN || (zap_get_be16(ip + IP_FRAG) & IP_FRAG_MASK) != 0)
		return ZAP_WIRE_DROP_IP_UNSUPPORTED + 1;
	if (ip[IP_PROTO] != IP_PROTO_UDP)
		return ZAP_WIRE_DROP_NOT_UDP + 1;
	uint16_t ip_len = zap_get_be16(ip + IP_TOTAL_LEN);
	if (ip_len < ZAP_WIRE_IPV4_BYTES + ZAP_WIRE_UDP_BYTES || ip_len > len - IP_OFF)
		return ZAP_WIRE_DROP_TRUNCATED + 1;
	if (fold16(sum16(ip, ZAP_WIRE_IPV4_BYTES, 0)) != 0xffffu)
		return ZAP_WIRE_DROP_IP_CKSUM + 1;
	const uint8_t *udp = ip + ZAP_WIRE_IPV4_BYTES;
	uint16_t udp_len = zap_get_be16(udp + UDP_LEN);
	if (udp_len != ip_len - ZAP_WIRE_IPV4_BYTES)
		return ZAP_WIRE_DROP_UDP_LEN + 1;
	/* a zero checksum ("none") is refused: every zap sender computes one */
	if (zap_get_be16(udp + UDP_CKSUM) == 0 || fold16(udp_sum(ip, udp_len)) != 0xffffu)
		return ZAP_WIRE_DROP_UDP_CKSUM + 1;
	if (get_ip(ip + IP_DST) != ipv4_be || zap_get_be16(udp + UDP_DST_PORT) != udp_port)
		return ZAP_WIRE_DROP_NOT_FOR_US + 1;
	*dgram = udp + ZAP_WIRE_UDP_BYTES;
	*dgram_len = (size_t)udp_len - ZAP_WIRE_UDP_BYTES;
	return 0;
}

void zap_wire_frame_put_udp(uint8_t *f, const struct zap_wire_udp_addr *src,
			    const struct zap_wire_udp_addr *dst, size_t dgram_len)
{
	uint16_t udp_len = (uint16_t)(ZAP_WIRE_UDP_BYTES + dgram_len);
	memcpy(f + ETH_DST, dst->mac, 6);
	memcpy(f + ETH_SRC, src->mac, 6);
	zap_put_be16(f + ETH_TYPE, ETHERTYPE_IPV4);

	uint8_t *ip = f + IP_OFF;
	ip[IP_VER_IHL] = IP_VER_IHL_PLAIN;
	ip[IP_TOS] = 0;
	zap_put_be16(ip + IP_TOTAL_LEN, (uint16_t)(ZAP_WIRE_IPV4_BYTES + udp_len));
	zap_put_be16(ip + IP_ID, 0); /* DF set: the id is unused (RFC 6864) */
	zap_put_be16(ip + IP_FRAG, IP_FLAG_DF);
	ip[IP_TTL] = IP_TTL_HOPS;
	ip[IP_PROTO] = IP_PROTO_UDP;
	zap_put_be16(ip + IP_CKSUM, 0);
	put_ip(ip + IP_SRC, src->ipv4_be);
	put_ip(ip + IP_DST, dst->ipv4_be);

	uint8_t *udp = f + UDP_OFF;
	zap_put_be16(udp + UDP_SRC_PORT, src->udp_port);
	zap_put_be16(udp + UDP_DST_PORT, dst->udp_port);
	zap_put_be16(udp + UDP_LEN, udp_len);
	zap_put_be16(udp + UDP_CKSUM, 0);

	uint16_t ck = (uint16_t)~fold16(udp_sum(ip, udp_len));
	zap_put_be16(udp + UDP_CKSUM, ck ? ck : 0xffffu); /* 0 means "none" in UDP */
	zap_put_be16(ip + IP_CKSUM, (uint16_t)~fold16(sum16(ip, ZAP_WIRE_IPV4_BYTES, 0)));
}

/* ---------------------------------------------------------------- ARP */

int zap_wire_frame_arp_check(const uint8_t *f, size_t len, unsigned op)
{
	if (len < ZAP_WIRE_ETH_BYTES)
		return -EBADMSG;
	if (zap_get_be16(f + ETH_TYPE) != ETHERTYPE_ARP)
		return -ENOMSG;
	if (len < ZAP_WIRE_ETH_BYTES + ARP_BYTES)
		return -EBADMSG;
	const uint8_t *a = f + ZAP_WIRE_ETH_BYTES;
	if (zap_get_be16(a + ARP_HTYPE) != ARP_HTYPE_ETHERNET ||
	    zap_get_be16(a + ARP_PTYPE) != ETHERTYPE_IPV4 || a[ARP_HLEN] != 6 || a[ARP_PLEN] != 4)
		return -EBADMSG;
	if (zap_get_be16(a + ARP_OP) != op)
		return -ENOMSG;
	return 0;
}

void zap_wire_frame_arp_put(uint8_t *o, const uint8_t eth_dst[6], unsigned op,
			    const struct zap_wire_arp_addr *sender,
			    const struct zap_wire_arp_addr *target)
{
	memset(o, 0, ZAP_WIRE_ARP_REPLY_BYTES);
	memcpy(o + ETH_DST, eth_dst, 6);
	memcpy(o + ETH_SRC, sender->mac, 6);
	zap_put_be16(o + ETH_TYPE, ETHERTYPE_ARP);
	uint8_t *r = o + ZAP_WIRE_ETH_BYTES;
	zap_put_be16(r + ARP_HTYPE, ARP_HTYPE_ETHERNET);
	zap_put_be16(r + ARP_PTYPE, ETHERTYPE_IPV4);
	r[ARP_HLEN] = 6;
	r[ARP_PLEN] = 4;
	zap_put_be16(r + ARP_OP, (uint16_t)op);
	memcpy(r + ARP_SHA, sender->mac, 6);
	put_ip(r + ARP_SPA, sender->ipv4_be);
	memcpy(r + ARP_THA, target->mac, 6);
	put_ip(r + ARP_TPA, target->ipv4_be);
}
