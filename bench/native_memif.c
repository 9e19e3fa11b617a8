/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap-bench's memif transport (native_memif.h).
 *
 * EAL: --no-huge -m 128 --no-pci --file-prefix zap-bench-<pid> (--in-memory
 * clashes with --no-huge: docs/operations.md, "Hugepages or not"), the memif
 * client vdev, and the main lcore floating over every online CPU, so the
 * bench does not sit on CPU 0 beside the nodes' pinned loops. The port is a
 * zap_port (dataplane/node/port.c): its start is retried while the node's
 * memif server is not up, and the link watch restarts it when the link drops.
 *
 * Waiting for a reply: spin spin_us after the last frame, then
 * sched_yield() between polls (memif has no rx interrupts), until the
 * deadline libzapclient gives.
 */
#include "native_memif.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>

#include "config.h"
#include "node/port.h"
#include "wire/wire_udp.h"

#define NM_BURST 32u
#define NM_DEFAULT_LINK_TIMEOUT_MS 5000u
#define NM_DEFAULT_SPIN_US 20u
#define NM_ARP_RETRY_MS 50u
#define NM_TX_ATTEMPTS 1000u
#define NM_EAL_MEM_MB "128"

struct nm {
	struct zap_port port;
	struct zap_port_config pc;
	char vdev[600];
	char prefix[64];
	struct zap_wire_udp_addr self, node;
	uint64_t spin_ns;
	struct rte_mbuf *held[NM_BURST]; /**< received, not yet handed out */
	uint16_t held_n, held_pos;
	uint64_t rx_drops, tx_full;
};

static __thread bool nm_registered;

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void nm_register(void)
{
	if (!nm_registered && rte_lcore_id() == LCORE_ID_ANY)
		(void)rte_thread_register(); /* without an lcore id the pool is used uncached */
	nm_registered = true;
}

static int eal_start(struct nm *m, char *err, size_t err_len)
{
	char lcores[64];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpus > 1)
		snprintf(lcores, sizeof(lcores), "0@(0-%ld)", cpus - 1);
	else
		snprintf(lcores, sizeof(lcores), "0@0");
	snprintf(m->prefix, sizeof(m->prefix), "zap-bench-%d", (int)getpid());
	char *argv[] = {"zap-bench",   "--no-huge", "-m",	   NM_EAL_MEM_MB, "--no-pci",
			"--file-prefix", m->prefix, "--vdev",	   m->vdev,	  "--lcores",
			lcores,	       "--log-level", "*:warning", "--no-telemetry", NULL};
	int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;
	if (rte_eal_init(argc, argv) < 0) {
		snprintf(err, err_len, "rte_eal_init: %s", rte_strerror(rte_errno));
		return -rte_errno;
	}
	return 0;
}

static int send_frame(struct nm *m, struct rte_mbuf *b)
{
	for (unsigned i = 0; i < NM_TX_ATTEMPTS; i++) {
		if (zap_port_tx_burst(&m->port, &b, 1) == 1)
			return 0;
		m->tx_full++;
		sched_yield();
	}
	rte_pktmbuf_free(b);
	return -ENOBUFS;
}

/* Learn the node's MAC: ARP requests every NM_ARP_RETRY_MS until the deadline. */
static int arp_node(struct nm *m, uint64_t deadline_ns)
{
	uint64_t next_req = 0;
	while (mono_ns() < deadline_ns) {
		if (mono_ns() >= next_req) {
			struct rte_mbuf *b = rte_pktmbuf_alloc(m->port.pool);
			if (b == NULL)
				return -ENOMEM;
			int len = zap_wire_udp_arp_request(&m->self, m->node.ipv4_be,
							   rte_pktmbuf_mtod(b, void *),
							   rte_pktmbuf_tailroom(b));
			b->data_len = (uint16_t)len;
			b->pkt_len = (uint32_t)len;
			if (send_frame(m, b) != 0)
				return -ENOBUFS;
			next_req = mono_ns() + NM_ARP_RETRY_MS * 1000000ull;
		}
		struct rte_mbuf *pkts[NM_BURST];
		uint16_t got = zap_port_rx_burst(&m->port, pkts, NM_BURST);
		bool found = false;
		for (uint16_t i = 0; i < got; i++) {
			struct zap_wire_udp_addr who;
			if (!found &&
			    zap_wire_udp_arp_parse_reply(&m->self, rte_pktmbuf_mtod(pkts[i], void *),
							 rte_pktmbuf_data_len(pkts[i]), &who) == 0 &&
			    who.ipv4_be == m->node.ipv4_be) {
				memcpy(m->node.mac, who.mac, 6);
				found = true;
			}
			rte_pktmbuf_free(pkts[i]);
		}
		if (found)
			return 0;
		zap_port_link_check(&m->port, mono_ns());
		usleep(1000);
	}
	return -EHOSTUNREACH;
}

int nm_start(const struct nm_opts *o, struct nm **out, char *err, size_t err_len)
{
	struct nm *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	struct in_addr ip;
	if (o->socket == NULL || o->node_ip == NULL || inet_pton(AF_INET, o->node_ip, &ip) != 1 ||
	    o->node_port == 0) {
		snprintf(err, err_len, "native-memif needs --memif SOCKET and --addr IPV4:PORT");
		free(m);
		return -EINVAL;
	}
	m->node.ipv4_be = ip.s_addr;
	m->node.udp_port = o->node_port;
	if (o->src_ip != NULL) {
		if (inet_pton(AF_INET, o->src_ip, &ip) != 1) {
			snprintf(err, err_len, "bad source address %s", o->src_ip);
			free(m);
			return -EINVAL;
		}
		m->self.ipv4_be = ip.s_addr;
	} else {
		uint8_t *b = (uint8_t *)&m->self.ipv4_be;
		m->self.ipv4_be = m->node.ipv4_be;
		b[3] = 254;
	}
	m->self.udp_port = (uint16_t)(40000 + getpid() % 20000);
	m->spin_ns = (uint64_t)(o->spin_us ? o->spin_us : NM_DEFAULT_SPIN_US) * 1000u;
	snprintf(m->vdev, sizeof(m->vdev), "net_memif0,role=client,id=%u,socket=%s", o->memif_id,
		 o->socket);
	int rc = eal_start(m, err, err_len);
	if (rc != 0) {
		free(m);
		return rc;
	}
	uint16_t port_id;
	if (rte_eth_dev_get_port_by_name("net_memif0", &port_id) != 0) {
		snprintf(err, err_len, "memif port %s was not probed", m->vdev);
		free(m);
		return -ENODEV;
	}
	m->pc = (struct zap_port_config){
	    .role = ZAP_PORT_ROLE_CLIENT, .kind = ZAP_PORT_KIND_VDEV, .vdev = m->vdev};
	rc = zap_port_init(&m->port, &m->pc, port_id, err, err_len);
	if (rc != 0) {
		free(m);
		return rc;
	}
	struct rte_ether_addr mac;
	rte_eth_macaddr_get(port_id, &mac);
	memcpy(m->self.mac, mac.addr_bytes, 6);
	uint32_t wait_ms = o->link_timeout_ms ? o->link_timeout_ms : NM_DEFAULT_LINK_TIMEOUT_MS;
	uint64_t deadline = mono_ns() + (uint64_t)wait_ms * 1000000ull;
	if (!zap_port_wait_link(&m->port, wait_ms)) {
		snprintf(err, err_len, "memif %s: no link after %u ms (is the node's client port up?)",
			 o->socket, wait_ms);
		nm_stop(m);
		return -ENOLINK;
	}
	rc = arp_node(m, deadline);
	if (rc != 0) {
		snprintf(err, err_len, "memif %s: no ARP answer for %s: %s", o->socket, o->node_ip,
			 strerror(-rc));
		nm_stop(m);
		return rc;
	}
	*out = m;
	return 0;
}

static int nm_send(void *ctx, const void *dgram, size_t len)
{
	struct nm *m = ctx;
	nm_register();
	struct rte_mbuf *b = rte_pktmbuf_alloc(m->port.pool);
	if (b == NULL)
		return -ENOBUFS;
	if (ZAP_WIRE_UDP_HDR_BYTES + len > rte_pktmbuf_tailroom(b)) {
		rte_pktmbuf_free(b);
		return -EMSGSIZE;
	}
	uint8_t *f = rte_pktmbuf_mtod(b, uint8_t *);
	memcpy(f + ZAP_WIRE_UDP_HDR_BYTES, dgram, len);
	int flen = zap_wire_udp_encode(&m->self, &m->node, f, len);
	b->data_len = (uint16_t)flen;
	b->pkt_len = (uint32_t)flen;
	return send_frame(m, b);
}

/* The next held frame that is a datagram for this end: copied to buf. */
static long take_held(struct nm *m, void *buf, size_t cap)
{
	while (m->held_pos < m->held_n) {
		struct rte_mbuf *b = m->held[m->held_pos++];
		struct zap_wire_udp_addr from;
		const void *d;
		size_t len;
		long rc = -EAGAIN;
		if (b->nb_segs == 1 &&
		    zap_wire_udp_decode(&m->self, rte_pktmbuf_mtod(b, void *),
					rte_pktmbuf_data_len(b), &from, &d, &len) == 0 &&
		    len <= cap && len > 0) {
			memcpy(buf, d, len);
			rc = (long)len;
		} else {
			m->rx_drops++;
		}
		rte_pktmbuf_free(b);
		if (rc > 0)
			return rc;
	}
	return 0;
}

static long nm_recv(void *ctx, void *buf, size_t cap, uint64_t deadline_ns)
{
	struct nm *m = ctx;
	nm_register();
	uint64_t spin_until = mono_ns() + m->spin_ns;
	for (;;) {
		long n = take_held(m, buf, cap);
		if (n > 0)
			return n;
		m->held_pos = 0;
		m->held_n = zap_port_rx_burst(&m->port, m->held, NM_BURST);
		if (m->held_n > 0)
			continue;
		uint64_t now = mono_ns();
		if (now >= deadline_ns) {
			zap_port_link_check(&m->port, now);
			return 0;
		}
		if (now >= spin_until)
			sched_yield();
	}
}

int nm_send_raw(struct nm *m, const void *frame, size_t len)
{
	nm_register();
	struct rte_mbuf *b = rte_pktmbuf_alloc(m->port.pool);
	if (b == NULL)
		return -ENOBUFS;
	if (len > rte_pktmbuf_tailroom(b)) {
		rte_pktmbuf_free(b);
		return -EMSGSIZE;
	}
	memcpy(rte_pktmbuf_mtod(b, void *), frame, len);
	b->data_len = (uint16_t)len;
	b->pkt_len = (uint32_t)len;
	return send_frame(m, b);
}

void nm_addrs(const struct nm *m, struct zap_wire_udp_addr *self, struct zap_wire_udp_addr *node)
{
	*self = m->self;
	*node = m->node;
}

struct zap_client_transport nm_transport(struct nm *m)
{
	return (struct zap_client_transport){.ctx = m, .send = nm_send, .recv = nm_recv};
}

void nm_stats(const struct nm *m, uint64_t *rx_drops, uint64_t *tx_full)
{
	*rx_drops = m->rx_drops;
	*tx_full = m->tx_full;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void nm_stop(struct nm *m)
{
	if (m == NULL)
		return;
	for (uint16_t i = m->held_pos; i < m->held_n; i++)
		rte_pktmbuf_free(m->held[i]);
	if (m->port.started) {
		rte_eth_dev_stop(m->port.port_id);
		m->port.started = false;
	}
	/* the runtime dir of this process's own prefix (~3 MB left each: docs/operations.md) */
	nftw(rte_eal_get_runtime_dir(), rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(m);
}
