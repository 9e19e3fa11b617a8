/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap-bench's DPDK transport for the native client protocol (target
 * native-memif, docs/benchmarks.md): the bench process starts its own EAL
 * (--no-huge, a file prefix of its own), opens a memif client port to a
 * node's client port, learns the node's MAC by ARP and carries the
 * libzapclient datagrams in Ethernet / IPv4 / UDP frames (wire_udp.h), so
 * no kernel socket is on the client's side of a request.
 *
 * Threading: nm_start() and nm_stop() on the main thread; the transport's
 * send and recv on one thread at a time (the port has one queue pair). A
 * thread that uses the transport registers itself with EAL on first use
 * (an lcore id, so the mbuf pool's per-lcore cache works).
 */
#ifndef ZAP_BENCH_NATIVE_MEMIF_H
#define ZAP_BENCH_NATIVE_MEMIF_H

#include <stddef.h>
#include <stdint.h>

#include "client/zapclient.h"

/** Options of nm_start(). */
struct nm_opts {
	const char *socket;	 /**< the node's client-port memif socket (same string as its vdev) */
	uint32_t memif_id;	 /**< memif id of the node's port (id=), usually 0 */
	const char *node_ip;	 /**< the node's `client.ipv4` */
	uint16_t node_port;	 /**< the node's `client.udp_port` */
	const char *src_ip;	 /**< this end's IPv4 address; NULL: the node's with last byte 254 */
	uint32_t link_timeout_ms; /**< wait this long for link and the ARP answer; 0: 5000 */
	uint32_t spin_us;	 /**< busy-poll this long before yielding while waiting; 0: 20 */
};

struct nm;

/**
 * Start EAL, open and start the memif client port, wait for link, ARP the node.
 * @param err one line saying what failed
 * @return 0; a negative errno.
 */
int nm_start(const struct nm_opts *o, struct nm **out, char *err, size_t err_len);

/** The libzapclient transport over @p m (for zap_client_open_transport()). */
struct zap_client_transport nm_transport(struct nm *m);

/** Counters: frames received that were not a datagram for this end, tx retries. */
void nm_stats(const struct nm *m, uint64_t *rx_drops, uint64_t *tx_full);

/** Send one frame as it is (tests: malformed frames). @return 0; -ENOBUFS; -EMSGSIZE. */
int nm_send_raw(struct nm *m, const void *frame, size_t len);

struct zap_wire_udp_addr;
/** This end's and the node's MAC, IPv4 address and UDP port. */
void nm_addrs(const struct nm *m, struct zap_wire_udp_addr *self, struct zap_wire_udp_addr *node);

/**
 * Stop the port; EAL is left to process exit (docs/operations.md, "Shutdown");
 * removes its runtime dir.
 */
void nm_stop(struct nm *m);

#endif /* ZAP_BENCH_NATIVE_MEMIF_H */
