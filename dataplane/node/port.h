/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ports: one DPDK ethdev per configured port, with its mbuf pool, one rx
 * and one tx queue, and the link handling memif needs.
 *
 * memif manages no connection (docs/operations.md, "Ports and memif links"):
 * a client started before its
 * server fails rte_eth_dev_start() (zap_port_start() retries it), a client
 * that connected while its server was starting may never get link, and a
 * client whose server restarted never reconnects. Both are handled on the
 * client side only by the link watch: stop + start the port after
 * ZAP_PORT_RELINK_AFTER_MS without link, or at once when an up link goes
 * down. zap_link_watch_step() is that rule as a pure function;
 * zap_port_link_check() applies it to a port.
 *
 * Threading: init, start, link checks and stop run on the control thread;
 * rx/tx bursts on the one io lcore that owns the port. Counters are written
 * by their owner only (rx/tx by the io lcore, the rest by control).
 */
#ifndef ZAP_PORT_H
#define ZAP_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/** mbufs in each port's pool (2^n - 1 is the mempool's best size). */
#define ZAP_PORT_MBUFS 4095
/** Per-lcore mbuf cache of each pool. */
#define ZAP_PORT_MBUF_CACHE 256
/** Descriptors asked for per rx / tx ring (the PMD may adjust). */
#define ZAP_PORT_RING_DESCS 1024
/** A memif client without link this long is stopped and started again. */
#define ZAP_PORT_RELINK_AFTER_MS 1000
/** Attempts of rte_eth_dev_start() for a memif client before giving up. */
#define ZAP_PORT_START_ATTEMPTS 20
/** Pause between two start attempts. */
#define ZAP_PORT_START_RETRY_MS 100

/** Counters of one port. */
struct zap_port_stats {
	uint64_t rx_packets;	/**< received by zap_port_rx_burst() */
	uint64_t tx_packets;	/**< accepted by the PMD */
	uint64_t tx_full;	/**< offered to zap_port_tx_burst() but not accepted */
	uint64_t start_retries; /**< failed rte_eth_dev_start() attempts */
	uint64_t relinks;	/**< stop + start by the link watch */
	uint64_t link_downs;	/**< up → down transitions seen */
};

/** The memif-client relink rule's state. */
struct zap_link_watch {
	uint64_t relink_after_ns; /**< restart after this long without link */
	uint64_t down_since_ns;	  /**< start of the current link-less stretch; 0 = link up */
	bool was_up;
};

/** One port. */
struct zap_port {
	const struct zap_port_config *cfg;
	uint16_t port_id;
	char name[RTE_ETH_NAME_MAX_LEN];
	bool memif_client; /**< gets the link watch */
	bool started;
	struct rte_mempool *pool;
	struct zap_link_watch watch;
	struct zap_port_stats stats;
};

/** Initialise @p w: the link counts as down since @p now_ns. */
void zap_link_watch_init(struct zap_link_watch *w, uint32_t relink_after_ms, uint64_t now_ns);

/**
 * One observation of the link: should the port be stopped and started now?
 *
 * True when an up link went down, or after relink_after_ns without link (then
 * again every relink_after_ns while it stays down). Pure.
 */
bool zap_link_watch_step(struct zap_link_watch *w, uint64_t now_ns, bool link_up);

/** Whether the vdev arguments @p vdev describe a memif client (memif's default role). */
bool zap_port_is_memif_client(const char *vdev);

/**
 * Create the pool, configure one rx and one tx queue and start port @p port_id.
 *
 * @param err  on failure, one line naming the port and the step that failed
 * @return 0; -ENOMEM if the pool cannot be made; the negative errno of the
 *         failing ethdev call otherwise. On failure nothing is left started.
 */
int zap_port_init(struct zap_port *p, const struct zap_port_config *pc, uint16_t port_id, char *err,
		  size_t err_len);

/**
 * Apply the link watch to a memif client (a no-op for other ports).
 *
 * @return 1 if the port was restarted, 0 if not, a negative errno if the restart failed.
 */
int zap_port_link_check(struct zap_port *p, uint64_t now_ns);

/** Whether the link is up now (no wait). */
bool zap_port_link_up(const struct zap_port *p);

/**
 * Wait up to @p timeout_ms for link, running the link watch meanwhile.
 *
 * @return true if the link came up.
 */
bool zap_port_wait_link(struct zap_port *p, uint32_t timeout_ms);

/** Stop and close the port and free its pool. Safe on a port that never started. */
void zap_port_stop(struct zap_port *p);

/** How long zap_port_check_all() waits for the links of all ports together. */
#define ZAP_PORT_CHECK_LINK_MS 2000
/** How long zap_port_check_all() keeps up links up, so a peer checking too sees them. */
#define ZAP_PORT_CHECK_LINGER_MS 300
/** Pause between stopping the ports and rte_eal_cleanup() (memif's interrupt thread). */
#define ZAP_PORT_QUIESCE_MS 50

/**
 * `zapd --check-ports`: start EAL for node @p node_id, initialise each of its
 * ports, print one line per port to @p out ("port N NAME: kind K, role R, mac M,
 * link up|down"), stop the ports and clean EAL up.
 *
 * @param err  on failure, one line naming the port or argument at fault
 * @return 0 if EAL started and every port initialised (a link that stays down
 *         is reported, not an error); the negative errno of the failing step.
 */
struct zap_eal_opts;
int zap_port_check_all(const struct zap_config *cfg, uint16_t node_id,
		       const struct zap_eal_opts *opts, FILE *out, char *err, size_t err_len);

/** Receive up to @p n packets from queue 0. */
static inline uint16_t zap_port_rx_burst(struct zap_port *p, struct rte_mbuf **pkts, uint16_t n)
{
	uint16_t got = rte_eth_rx_burst(p->port_id, 0, pkts, n);
	p->stats.rx_packets += got;
	return got;
}

/**
 * Send up to @p n packets on queue 0.
 *
 * @return how many the PMD took; the caller still owns (and frees or retries) the rest.
 */
static inline uint16_t zap_port_tx_burst(struct zap_port *p, struct rte_mbuf **pkts, uint16_t n)
{
	uint16_t sent = rte_eth_tx_burst(p->port_id, 0, pkts, n);
	p->stats.tx_packets += sent;
	p->stats.tx_full += (uint64_t)(n - sent);
	return sent;
}

#ifdef __cplusplus
}
#endif

#endif /* ZAP_PORT_H */
