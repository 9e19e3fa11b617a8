/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap node client service, the in-process channel (node_client_local.c):
 * the node's ZEO gateway's native clients without a socket. Internal to
 * node/.
 */
#ifndef ZAP_NODE_CLIENT_LOCAL_H
#define ZAP_NODE_CLIENT_LOCAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "node_client_internal.h"

#include "client/zapclient.h"

struct cl_local_chan;

struct cl_local {
	struct zap_node *n;
	struct rte_ring *ring; /**< requests: struct cl_local_dgram *, many producers */
	pthread_mutex_t mu;    /**< channel allocation */
	struct cl_local_chan *chans;
	uint32_t n_chans, next;
};

/** Make @p chans channels and the request ring. @return 0 or -ENOMEM. */
int cl_local_init(struct cl_local *l, struct zap_node *n, uint32_t chans);
/** Free everything (no client may be open). */
void cl_local_fini(struct cl_local *l);

/** Where a channel's answers go instead of its mailbox (called on the client thread). */
typedef void (*cl_local_deliver_fn)(void *dctx, const void *dgram, size_t len);

/**
 * A transport for zap_client_open_transport() (@p arg: the struct cl_local).
 * With @p deliver, every answer is handed to it (with @p dctx) and the
 * transport's recv finds nothing; cl_local_close() returns only once no
 * delivery runs.
 * @return 0; -ENOSPC every channel is taken; -ENOMEM.
 */
int cl_local_open(void *arg, cl_local_deliver_fn deliver, void *dctx,
		  struct zap_client_transport *t);
/** Give a channel back (@p ctx: the transport's ctx), after zap_client_close(). */
void cl_local_close(void *arg, void *ctx);

typedef void (*cl_local_fn)(void *arg, const uint8_t *d, size_t len, const struct cl_addr *a);
/** Client thread: hand every waiting request to @p fn. @return how many. */
unsigned cl_local_poll(struct cl_local *l, cl_local_fn fn, void *arg);
/** Client thread: one answer datagram into the channel @p a names (dropped if it closed). */
void cl_local_reply(struct cl_local *l, const struct cl_addr *a, const void *dgram, size_t len);

#endif /* ZAP_NODE_CLIENT_LOCAL_H */
