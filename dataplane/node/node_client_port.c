/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap node client port: the native client protocol on a DPDK port.
 *
 * A node's `role: client` port (docs/config.md) carries Ethernet / IPv4 /
 * UDP frames to and from the node's `client` endpoint (MAC, IPv4 address,
 * UDP port). This file is the port's transport only: it answers ARP for the
 * client address, drops (and counts, per reason) every frame that is not a
 * well-formed UDP datagram to that address, and hands each datagram with its
 * sender's MAC, address and port to the client service (node_client.c),
 * which decodes and serves it exactly as one from the kernel socket. Replies
 * go back to the sender's MAC, address and port as one frame per datagram
 * (wire_udp.h builds the headers, checksums in software).
 *
 * Threading: the port is started on the main thread before the client thread
 * exists, and stopped after it was joined. In between, the client thread is
 * the only user of the port's single rx and tx queue and of its mbuf pool.
 * That thread is not an EAL lcore; it registers itself with
 * rte_thread_register() so that it gets an lcore id and the pool's per-lcore
 * cache (without one every mbuf alloc and free goes to the pool's shared
 * ring: correct, only slower). All counters are written by the client thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>

#include "eal.h"
#include "node_core.h"
#include "wire/wire_udp.h"

struct node_cport {
	struct zap_port port;
	struct zap_wire_udp_addr self; /**< the node's `client` endpoint */
	struct zap_wire_arp_addr arp;  /**< answered on this port */
	bool registered;	       /**< the client thread got an lcore id */
	uint64_t drops[ZAP_WIRE_DROP_COUNT];
};

static struct node_cport g_cport;

int zap_node_cport_open(struct zap_node *n)
{
	const struct zap_port_config *pc = NULL;
	for (unsigned i = 0; i < n->self->n_ports && pc == NULL; i++)
		if (n->self->ports[i].role == ZAP_PORT_ROLE_CLIENT)
			pc = &n->self->ports[i];
	if (pc == NULL)
		return 0;
	const char *name = zap_eal_port_name(pc);
	uint16_t port_id;
	if (rte_eth_dev_get_port_by_name(name, &port_id) != 0) {
		fprintf(stderr, "zapd: node %u: client port %s was not probed\n", n->id, name);
		return -ENODEV;
	}
	struct node_cport *cp = &g_cport;
	memset(cp, 0, sizeof(*cp));
	const struct zap_endpoint_config *ep = &n->self->client;
	memcpy(cp->self.mac, ep->mac, 6);
	cp->self.ipv4_be = ep->ipv4_be;
	cp->self.udp_port = ep->udp_port;
	memcpy(cp->arp.mac, ep->mac, 6);
	cp->arp.ipv4_be = ep->ipv4_be;
	char err[512];
	int rc = zap_port_init(&cp->port, pc, port_id, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "zapd: node %u: client port: %s\n", n->id, err);
		return rc;
	}
	/* Best effort: a NIC filters frames to other MACs; memif and tap take any. */
	struct rte_ether_addr mac;
	memcpy(mac.addr_bytes, ep->mac, 6);
	(void)rte_eth_dev_default_mac_addr_set(port_id, &mac);
	n->cport = cp;
	char ip[16];
	const uint8_t *b = (const uint8_t *)&ep->ipv4_be;
	snprintf(ip, sizeof(ip), "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
	fprintf(stderr,
		"zapd: node %u: client port %s serves %s:%u (mac "
		"%02x:%02x:%02x:%02x:%02x:%02x)\n",
		n->id, cp->port.name, ip, ep->udp_port, ep->mac[0], ep->mac[1], ep->mac[2],
		ep->mac[3], ep->mac[4], ep->mac[5]);
	return 0;
}

void zap_node_cport_thread_init(struct zap_node *n)
{
	if (rte_thread_register() == 0)
		n->cport->registered = true;
	else
		fprintf(stderr, "zapd: node %u: client thread without lcore id (%s): no mbuf cache\n",
			n->id, rte_strerror(rte_errno));
}

void zap_node_cport_thread_exit(struct zap_node *n)
{
	if (n->cport->registered) {
		rte_thread_unregister();
		n->cport->registered = false;
	}
}

/*
 * Send @p m as one frame of @p len bytes, or free it: a negative @p len (the
 * codec refused to build the frame) or a full tx queue. Returns whether it
 * went out; the caller counts.
 */
static bool cport_tx_frame(struct node_cport *cp, struct rte_mbuf *m, int len)
{
	if (len < 0) {
		rte_pktmbuf_free(m);
		return false;
	}
	m->data_len = (uint16_t)len;
	m->pkt_len = (uint32_t)len;
	if (zap_port_tx_burst(&cp->port, &m, 1) != 1) {
		rte_pktmbuf_free(m);
		return false;
	}
	return true;
}

static void answer_arp(struct zap_node *n, struct node_cport *cp, const struct rte_mbuf *m)
{
	struct rte_mbuf *r = rte_pktmbuf_alloc(cp->port.pool);
	if (r == NULL) {
		n->cnt.cp_arp_drops++;
		return;
	}
	/* len < 0: not a request, or not for the client address */
	int len = zap_wire_arp_reply(&cp->arp, 1, rte_pktmbuf_mtod(m, const void *),
				     rte_pktmbuf_data_len(m), rte_pktmbuf_mtod(r, void *),
				     rte_pktmbuf_tailroom(r));
	if (cport_tx_frame(cp, r, len))
		n->cnt.cp_arp_replies++;
	else
		n->cnt.cp_arp_drops++;
}

unsigned zap_node_cport_poll(struct zap_node *n, node_cport_rx_fn fn, void *ctx)
{
	struct node_cport *cp = n->cport;
	if (!cp->port.started)
		return 0;
	struct rte_mbuf *pkts[NODE_BURST];
	uint16_t got = zap_port_rx_burst(&cp->port, pkts, NODE_BURST);
	for (uint16_t i = 0; i < got; i++) {
		struct rte_mbuf *m = pkts[i];
		if (i + 1 < got)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], const void *));
		n->cnt.cp_rx_frames++;
		if (m->nb_segs != 1) {
			n->cnt.cp_rx_multiseg_drops++;
			rte_pktmbuf_free(m);
			continue;
		}
		const uint8_t *d = rte_pktmbuf_mtod(m, const uint8_t *);
		uint16_t len = rte_pktmbuf_data_len(m);
		if (zap_wire_udp_is_arp(d, len)) {
			answer_arp(n, cp, m);
			rte_pktmbuf_free(m);
			continue;
		}
		struct zap_wire_udp_addr from;
		const void *dgram;
		size_t dgram_len;
		int rc = zap_wire_udp_decode(&cp->self, d, len, &from, &dgram, &dgram_len);
		if (rc != 0) {
			int reason = zap_wire_errno_drop(rc);
			n->cnt.cp_rx_drops++;
			if (reason >= 0)
				cp->drops[reason]++;
			rte_pktmbuf_free(m);
			continue;
		}
		fn(ctx, dgram, dgram_len, &from);
		rte_pktmbuf_free(m);
	}
	return got;
}

void zap_node_cport_send(struct zap_node *n, const struct zap_wire_udp_addr *to,
			 const void *dgram, size_t len)
{
	struct node_cport *cp = n->cport;
	struct rte_mbuf *m = cp->port.started ? rte_pktmbuf_alloc(cp->port.pool) : NULL;
	if (m == NULL) {
		n->cnt.cp_tx_drops++;
		return;
	}
	if (ZAP_WIRE_UDP_HDR_BYTES + len > rte_pktmbuf_tailroom(m)) {
		/* larger than one mbuf: the client asked for datagrams this port cannot carry */
		rte_pktmbuf_free(m);
		n->cnt.cp_tx_drops++;
		return;
	}
	uint8_t *f = rte_pktmbuf_mtod(m, uint8_t *);
	memcpy(f + ZAP_WIRE_UDP_HDR_BYTES, dgram, len);
	int flen = zap_wire_udp_encode(&cp->self, to, f, len);
	if (cport_tx_frame(cp, m, flen))
		n->cnt.cp_tx_frames++;
	else
		n->cnt.cp_tx_drops++;
}

void zap_node_cport_link_check(struct zap_node *n, uint64_t now_ns)
{
	if (zap_port_link_check(&n->cport->port, now_ns) == 1)
		n->cnt.cp_relinks++;
}

void zap_node_cport_stop(struct zap_node *n)
{
	struct node_cport *cp = n->cport;
	if (cp != NULL && cp->port.started) {
		rte_eth_dev_stop(cp->port.port_id);
		cp->port.started = false;
	}
}

void zap_node_cport_close(struct zap_node *n)
{
	if (n->cport == NULL)
		return;
	zap_port_stop(&n->cport->port);
	n->cport = NULL;
}

void zap_node_cport_report(const struct zap_node *n, FILE *f)
{
	const struct node_cport *cp = n->cport;
	const struct node_counters *c = &n->cnt;
	if (cp == NULL)
		return;
	fprintf(f,
		"  client port %s: rx %" PRIu64 " (frame drops %" PRIu64 ", multiseg %" PRIu64
		", bad datagrams %" PRIu64 "), arp %" PRIu64 " (drops %" PRIu64 "), tx %" PRIu64
		" (drops %" PRIu64 "), relinks %" PRIu64,
		cp->port.name, c->cp_rx_frames, c->cp_rx_drops, c->cp_rx_multiseg_drops,
		c->cl_bad_datagrams, c->cp_arp_replies, c->cp_arp_drops, c->cp_tx_frames,
		c->cp_tx_drops, c->cp_relinks);
	for (unsigned r = 0; r < ZAP_WIRE_DROP_COUNT; r++)
		if (cp->drops[r] != 0)
			fprintf(f, " %s=%" PRIu64, zap_wire_drop_name(r), cp->drops[r]);
	fprintf(f, "\n");
}
