/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ports (see port.h). Each port gets its own pool so one port's backlog
 * cannot starve another's receive ring. Start-up retries and relinks are
 * bounded and counted; nothing here logs per packet.
 */
#include "port.h"

#include "eal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>

#define NS_PER_MS 1000000ull
/* Sleep between two link polls while waiting for link. */
#define ZAP_PORT_LINK_POLL_MS 10

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

void zap_link_watch_init(struct zap_link_watch *w, uint32_t relink_after_ms, uint64_t now_ns)
{
	*w = (struct zap_link_watch){.relink_after_ns = (uint64_t)relink_after_ms * NS_PER_MS,
				     .down_since_ns = now_ns ? now_ns : 1};
}

bool zap_link_watch_step(struct zap_link_watch *w, uint64_t now_ns, bool link_up)
{
	if (now_ns == 0)
		now_ns = 1; /* 0 means "link up" in down_since_ns */
	if (link_up) {
		w->was_up = true;
		w->down_since_ns = 0;
		return false;
	}
	if (w->was_up) { /* the peer went away: restart at once */
		w->was_up = false;
		w->down_since_ns = now_ns;
		return true;
	}
	if (w->down_since_ns == 0)
		w->down_since_ns = now_ns;
	if (now_ns - w->down_since_ns >= w->relink_after_ns) {
		w->down_since_ns = now_ns;
		return true;
	}
	return false;
}

bool zap_port_is_memif_client(const char *vdev)
{
	if (vdev == NULL || strncmp(vdev, "net_memif", strlen("net_memif")) != 0)
		return false;
	return strstr(vdev, "role=server") == NULL; /* memif's default role is client */
}

/* rte_eth_dev_start(), retried for a memif client whose server is not up yet. */
static int port_start(struct zap_port *p)
{
	unsigned attempts = p->memif_client ? ZAP_PORT_START_ATTEMPTS : 1;
	int rc = -EIO;
	for (unsigned i = 0; i < attempts; i++) {
		rc = rte_eth_dev_start(p->port_id);
		if (rc == 0)
			return 0;
		p->stats.start_retries++;
		if (i + 1 < attempts)
			sleep_ms(ZAP_PORT_START_RETRY_MS);
	}
	return rc;
}

int zap_port_init(struct zap_port *p, const struct zap_port_config *pc, uint16_t port_id, char *err,
		  size_t err_len)
{
	*p = (struct zap_port){.cfg = pc, .port_id = port_id};
	if (rte_eth_dev_get_name_by_port(port_id, p->name) != 0)
		snprintf(p->name, sizeof(p->name), "port%u", (unsigned)port_id);
	p->memif_client = pc->kind == ZAP_PORT_KIND_VDEV && zap_port_is_memif_client(pc->vdev);
	zap_link_watch_init(&p->watch, ZAP_PORT_RELINK_AFTER_MS, now_ns());

	int socket = rte_eth_dev_socket_id(port_id);
	if (socket < 0)
		socket = (int)rte_socket_id();
	char pool_name[RTE_MEMPOOL_NAMESIZE];
	snprintf(pool_name, sizeof(pool_name), "zap_mp_%u", (unsigned)port_id);
	p->pool = rte_pktmbuf_pool_create(pool_name, ZAP_PORT_MBUFS, ZAP_PORT_MBUF_CACHE, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (p->pool == NULL) {
		snprintf(err, err_len, "port %s: mbuf pool: %s", p->name, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	const char *step = "rte_eth_dev_configure";
	struct rte_eth_conf conf = {0};
	int rc = rte_eth_dev_configure(port_id, 1, 1, &conf);
	uint16_t rx_descs = ZAP_PORT_RING_DESCS, tx_descs = ZAP_PORT_RING_DESCS;
	if (rc == 0) {
		step = "rte_eth_dev_adjust_nb_rx_tx_desc";
		rc = rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rx_descs, &tx_descs);
	}
	if (rc == 0) {
		step = "rte_eth_rx_queue_setup";
		rc = rte_eth_rx_queue_setup(port_id, 0, rx_descs, (unsigned)socket, NULL, p->pool);
	}
	if (rc == 0) {
		step = "rte_eth_tx_queue_setup";
		rc = rte_eth_tx_queue_setup(port_id, 0, tx_descs, (unsigned)socket, NULL);
	}
	if (rc == 0) {
		step = p->memif_client ? "rte_eth_dev_start (is the memif server up?)"
				       : "rte_eth_dev_start";
		rc = port_start(p);
	}
	if (rc != 0) {
		snprintf(err, err_len, "port %s: %s: %s", p->name, step, rte_strerror(-rc));
		rte_eth_dev_close(port_id);
		rte_mempool_free(p->pool);
		p->pool = NULL;
		return rc < 0 ? rc : -EIO;
	}
	p->started = true;
	return 0;
}

bool zap_port_link_up(const struct zap_port *p)
{
	struct rte_eth_link link;
	memset(&link, 0, sizeof(link));
	if (rte_eth_link_get_nowait(p->port_id, &link) != 0)
		return false;
	return link.link_status == RTE_ETH_LINK_UP;
}

int zap_port_link_check(struct zap_port *p, uint64_t t_ns)
{
	if (!p->memif_client || !p->started)
		return 0;
	bool up = zap_port_link_up(p);
	bool was_up = p->watch.was_up;
	if (!zap_link_watch_step(&p->watch, t_ns, up))
		return 0;
	if (was_up)
		p->stats.link_downs++;
	p->stats.relinks++;
	int rc = rte_eth_dev_stop(p->port_id);
	if (rc == 0)
		rc = rte_eth_dev_start(p->port_id);
	if (rc != 0) {
		p->stats.start_retries++;
		return rc < 0 ? rc : -EIO;
	}
	return 1;
}

bool zap_port_wait_link(struct zap_port *p, uint32_t timeout_ms)
{
	for (uint32_t waited_ms = 0;; waited_ms += ZAP_PORT_LINK_POLL_MS) {
		if (zap_port_link_up(p)) {
			zap_link_watch_step(&p->watch, now_ns(), true);
			return true;
		}
		if (waited_ms >= timeout_ms)
			return false;
		zap_port_link_check(p, now_ns());
		sleep_ms(ZAP_PORT_LINK_POLL_MS);
	}
}

void zap_port_stop(struct zap_port *p)
{
	if (p->started) {
		rte_eth_dev_stop(p->port_id);
		p->started = false;
	}
	if (p->pool != NULL) {
		rte_eth_dev_close(p->port_id);
		rte_mempool_free(p->pool);
		p->pool = NULL;
	}
}

/* Stop every started port, give memif's interrupt thread a moment, close them. */
static void stop_all(struct zap_port *ports, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (ports[i].started) {
			rte_eth_dev_stop(ports[i].port_id);
			ports[i].started = false;
		}
	}
	sleep_ms(ZAP_PORT_QUIESCE_MS);
	for (unsigned i = 0; i < n; i++)
		zap_port_stop(&ports[i]);
}

int zap_port_check_all(const struct zap_config *cfg, uint16_t node_id,
		       const struct zap_eal_opts *opts, FILE *out, char *err, size_t err_len)
{
	const struct zap_node_config *node = zap_config_node(cfg, node_id);
	if (node == NULL) {
		snprintf(err, err_len, "node %u: not in the configuration", (unsigned)node_id);
		return -ENOENT;
	}
	uint16_t ids[ZAP_CONFIG_MAX_PORTS];
	int rc = zap_eal_init(cfg, node_id, opts, ids, err, err_len);
	if (rc == -ENODEV)
		zap_eal_cleanup();
	if (rc != 0)
		return rc;
	static struct zap_port ports[ZAP_CONFIG_MAX_PORTS];
	uint64_t check_start_ns = now_ns();
	unsigned n = 0;
	for (; n < node->n_ports; n++) {
		rc = zap_port_init(&ports[n], &node->ports[n], ids[n], err, err_len);
		if (rc != 0)
			break;
	}
	bool memif_up = false; /* a memif peer checking at the same time wants to see it up */
	for (unsigned i = 0; rc == 0 && i < n; i++) {
		/* one deadline for all ports: a node's links come up in parallel */
		uint64_t spent_ms = (now_ns() - check_start_ns) / NS_PER_MS;
		uint32_t left_ms = spent_ms < ZAP_PORT_CHECK_LINK_MS
				       ? (uint32_t)(ZAP_PORT_CHECK_LINK_MS - spent_ms)
				       : 0;
		bool up = zap_port_wait_link(&ports[i], left_ms);
		memif_up |= up && ports[i].cfg->kind == ZAP_PORT_KIND_VDEV &&
			    strncmp(ports[i].cfg->vdev, "net_memif", strlen("net_memif")) == 0;
		struct rte_ether_addr mac;
		memset(&mac, 0, sizeof(mac));
		rte_eth_macaddr_get(ports[i].port_id, &mac);
		char mac_s[RTE_ETHER_ADDR_FMT_SIZE];
		rte_ether_format_addr(mac_s, sizeof(mac_s), &mac);
		fprintf(out, "port %u %s: kind %s, role %s, mac %s, link %s\n",
			(unsigned)ports[i].port_id, ports[i].name,
			ports[i].cfg->kind == ZAP_PORT_KIND_PCI ? "pci" : "vdev",
			ports[i].cfg->role == ZAP_PORT_ROLE_CLIENT ? "client" : "replication",
			mac_s, up ? "up" : "down");
	}
	fflush(out);
	if (rc == 0 && memif_up)
		sleep_ms(ZAP_PORT_CHECK_LINGER_MS);
	stop_all(ports, n);
	zap_eal_cleanup();
	return rc;
}
