/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap node core: what every part of a running node shares, below the stages,
 * the client service and start-up: the stop flag, the buffer pool that
 * carries variable-size items between stages, and the latency histograms.
 *
 * Threading: zap_node_buf_get/put are called from any stage and from the
 * client thread (the pool is multi-producer/consumer); a latency histogram
 * is written by one stage only and read by the final report; zap_node_stop
 * is set by a signal handler or by a stage that cannot go on, and read by
 * every loop.
 */
#include <stdint.h>

#include <rte_malloc.h>
#include <rte_mempool.h>

#include "node_core.h"

volatile sig_atomic_t zap_node_stop;
volatile sig_atomic_t zap_node_restart;

/* ------------------------------------------------------------------ buffers */

struct node_buf *zap_node_buf_get(struct zap_node *n, uint64_t len)
{
	void *p = NULL;
	if (len <= n->buf_data_bytes) {
		if (rte_mempool_get(n->buf_pool, &p) != 0)
			return NULL;
		((struct node_buf *)p)->heap = 0;
		return p;
	}
	if (len > UINT32_MAX)
		return NULL;
	p = rte_malloc("zap_big_buf", sizeof(struct node_buf) + len, 0);
	if (p == NULL)
		return NULL;
	__atomic_fetch_add(&n->cnt.big_bufs, 1, __ATOMIC_RELAXED);
	((struct node_buf *)p)->heap = 1;
	return p;
}

void zap_node_buf_put(struct zap_node *n, struct node_buf *b)
{
	if (b->heap)
		rte_free(b);
	else
		rte_mempool_put(n->buf_pool, b);
}

/* ------------------------------------------------------------------ latency */

void zap_node_lat_add(struct node_lat *h, uint64_t ns)
{
	unsigned idx;
	if (ns < NODE_LAT_SUB) {
		idx = (unsigned)ns;
	} else {
		unsigned e = 63u - (unsigned)__builtin_clzll(ns); /* >= 3 */
		idx = (e - 2) * NODE_LAT_SUB + (unsigned)((ns >> (e - 3)) & (NODE_LAT_SUB - 1));
	}
	h->b[idx]++;
	h->n++;
}

static uint64_t lat_bucket_low(unsigned idx)
{
	if (idx < NODE_LAT_SUB)
		return idx;
	unsigned e = idx / NODE_LAT_SUB + 2, sub = idx % NODE_LAT_SUB;
	return (uint64_t)(NODE_LAT_SUB + sub) << (e - 3);
}

uint64_t zap_node_lat_quantile(const struct node_lat *h, double q)
{
	if (h->n == 0)
		return 0;
	uint64_t want = (uint64_t)(q * (double)(h->n - 1)) + 1, seen = 0;
	for (unsigned i = 0; i < NODE_LAT_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want)
			return lat_bucket_low(i);
	}
	return lat_bucket_low(NODE_LAT_BUCKETS - 1);
}
