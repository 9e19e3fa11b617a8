/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The memif transport of zap-cluster-client (cluster_client_memif.h).
 *
 * inject N sends N frames of each malformed kind to the node's client port,
 * 1 ms apart, and prints what the node's report must count for them:
 *   frame drops (wire_udp.h reasons): truncated, not IPv4 (ethertype IPv6),
 *   bad IPv4 checksum, bad UDP checksum, another UDP port (not for us);
 *   bad datagrams: well-formed UDP to the client port whose payload is not
 *   a client-protocol header (random bytes);
 *   ARP drops: ARP requests for an address the node does not have.
 */
#include "cluster_client_memif.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "native_memif.h"
#include "wire/wire_udp.h"

#define CC_FRAME_BYTES 256u
#define CC_PAYLOAD_BYTES 64u
#define CC_GAP_NS 1000000L

static struct nm *g_nm;

int cc_memif_open(const char *ip, uint16_t port, uint64_t cluster_id, struct zap_client **out)
{
	const char *sock = getenv("ZAP_MEMIF_SOCKET");
	if (sock == NULL) {
		fprintf(stderr, "zap-cluster-client-memif: set ZAP_MEMIF_SOCKET\n");
		return -EINVAL;
	}
	char err[512] = "";
	struct nm_opts o = {.socket = sock, .node_ip = ip, .node_port = port};
	int rc = nm_start(&o, &g_nm, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "zap-cluster-client-memif: %s\n", err);
		return rc;
	}
	struct zap_client_transport t = nm_transport(g_nm);
	return zap_client_open_transport(&t, cluster_id, NULL, out);
}

void cc_memif_close(void)
{
	nm_stop(g_nm);
	g_nm = NULL;
}

/* A well-formed frame to @p to with a random payload. @return its length. */
static int good_frame(const struct zap_wire_udp_addr *self, const struct zap_wire_udp_addr *to,
		      uint8_t *f, unsigned seed)
{
	srand(seed);
	for (unsigned i = 0; i < CC_PAYLOAD_BYTES; i++)
		f[ZAP_WIRE_UDP_HDR_BYTES + i] = (uint8_t)rand();
	return zap_wire_udp_encode(self, to, f, CC_PAYLOAD_BYTES);
}

int cc_memif_inject(unsigned n)
{
	struct zap_wire_udp_addr self, node;
	nm_addrs(g_nm, &self, &node);
	unsigned frame_drops = 0, bad_dgrams = 0, arp_drops = 0, failed = 0;
	struct timespec gap = {0, CC_GAP_NS};
	for (unsigned i = 0; i < n; i++) {
		for (unsigned kind = 0; kind < 7; kind++) {
			uint8_t f[CC_FRAME_BYTES];
			struct zap_wire_udp_addr to = node;
			if (kind == 4)
				to.udp_port = (uint16_t)(node.udp_port + 1);
			int len = good_frame(&self, &to, f, i * 7 + kind + 1);
			switch (kind) {
			case 0: /* truncated: the IPv4 header cut short */
				len = ZAP_WIRE_ETH_BYTES + 10;
				break;
			case 1: /* IPv6 ethertype */
				f[12] = 0x86;
				f[13] = 0xdd;
				break;
			case 2: /* IPv4 header checksum */
				f[ZAP_WIRE_ETH_BYTES + 10] ^= 0x5a;
				break;
			case 3: /* a payload byte changed after the UDP checksum */
				f[ZAP_WIRE_UDP_HDR_BYTES + 3] ^= 0x01;
				break;
			case 6: { /* ARP for a neighbour of the node */
				uint32_t other = node.ipv4_be ^ htonl(1);
				len = zap_wire_udp_arp_request(&self, other, f, sizeof(f));
				break;
			}
			default: /* 4: another port; 5: garbage datagram to the client port */
				break;
			}
			if (nm_send_raw(g_nm, f, (size_t)len) != 0) {
				failed++;
				continue;
			}
			if (kind == 5)
				bad_dgrams++;
			else if (kind == 6)
				arp_drops++;
			else
				frame_drops++;
			nanosleep(&gap, NULL);
		}
	}
	printf("injected frame_drops %u bad_datagrams %u arp_drops %u\n", frame_drops, bad_dgrams,
	       arp_drops);
	return failed == 0 ? 0 : 1;
}
