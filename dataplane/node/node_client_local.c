/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap node client service, the in-process channel: how the node's own ZEO
 * gateway speaks the native protocol to the client service without a
 * socket. Each gateway connection's libzapclient gets a transport
 * (zap_client_transport) whose send puts the request datagram on one
 * multi-producer rte_ring to the client thread and rings that thread's
 * doorbell; the client thread takes it as it takes a UDP datagram (the same
 * decode, pending table, exactly-once session, submit ring) and its answer
 * comes back into the channel's mailbox, where a blocking caller waits on a
 * condition variable, or, for a channel opened with a delivery function (the
 * gateway's event loops), is handed to that function on the client thread.
 * No kernel socket, no UDP.
 *
 * Channels are slots of a fixed table (zeo.max_connections and some), each
 * with a generation, so an answer for a channel closed meanwhile is dropped,
 * never delivered to its next owner. A mailbox holds at most
 * CL_LOCAL_MAILBOX datagrams: a client that stopped waiting cannot grow it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_ring.h>

#include "node_client_local.h"

/** Datagrams waiting in one mailbox at most (the oldest is dropped beyond). */
#define CL_LOCAL_MAILBOX 64u
/** Requests waiting for the client thread (a power of two). */
#define CL_LOCAL_RING_SLOTS 65536u

struct cl_local_dgram {
	struct cl_local_dgram *next;
	uint32_t chan, gen, len;
	uint8_t data[];
};

struct cl_local_chan {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct cl_local_dgram *head, *tail;
	unsigned queued;
	uint32_t gen;
	bool used;
	cl_local_deliver_fn deliver; /**< answers go here instead of the mailbox */
	void *dctx;
};

/** One client's end: the transport's ctx. */
struct cl_local_end {
	struct cl_local *l;
	uint32_t chan, gen;
};

int cl_local_init(struct cl_local *l, struct zap_node *n, uint32_t chans)
{
	memset(l, 0, sizeof(*l));
	l->n = n;
	l->chans = calloc(chans, sizeof(*l->chans));
	if (l->chans == NULL)
		return -ENOMEM;
	l->n_chans = chans;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (uint32_t i = 0; i < chans; i++) {
		pthread_mutex_init(&l->chans[i].mu, NULL);
		pthread_cond_init(&l->chans[i].cv, &ca);
	}
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&l->mu, NULL);
	char name[RTE_RING_NAMESIZE];
	snprintf(name, sizeof(name), "zap_local_%u", n->id);
	l->ring = rte_ring_create(name, CL_LOCAL_RING_SLOTS, SOCKET_ID_ANY, RING_F_SC_DEQ);
	if (l->ring == NULL) {
		cl_local_fini(l);
		return -ENOMEM;
	}
	return 0;
}

static void mailbox_drain(struct cl_local_chan *ch)
{
	while (ch->head != NULL) {
		struct cl_local_dgram *d = ch->head;
		ch->head = d->next;
		free(d);
	}
	ch->tail = NULL;
	ch->queued = 0;
}

void cl_local_fini(struct cl_local *l)
{
	if (l->ring != NULL) {
		void *p;
		while (rte_ring_dequeue(l->ring, &p) == 0)
			free(p);
		rte_ring_free(l->ring);
	}
	for (uint32_t i = 0; l->chans != NULL && i < l->n_chans; i++) {
		mailbox_drain(&l->chans[i]);
		pthread_mutex_destroy(&l->chans[i].mu);
		pthread_cond_destroy(&l->chans[i].cv);
	}
	free(l->chans);
	if (l->n_chans > 0)
		pthread_mutex_destroy(&l->mu);
	memset(l, 0, sizeof(*l));
}

/* ------------------------------------------------------------------ the client's end */

static int end_send(void *ctx, const void *dgram, size_t len)
{
	struct cl_local_end *e = ctx;
	if (len == 0 || len > CL_DGRAM_BYTES)
		return -EMSGSIZE;
	struct cl_local_dgram *d = malloc(sizeof(*d) + len);
	if (d == NULL)
		return -ENOMEM;
	d->next = NULL;
	d->chan = e->chan;
	d->gen = e->gen;
	d->len = (uint32_t)len;
	memcpy(d->data, dgram, len);
	if (rte_ring_enqueue(e->l->ring, d) != 0) {
		free(d);
		return -EAGAIN; /* the client thread is behind: the attempt is retried */
	}
	zap_bell_ring(&e->l->n->client_bell);
	return 0;
}

static long end_recv(void *ctx, void *buf, size_t cap, uint64_t deadline_ns)
{
	struct cl_local_end *e = ctx;
	struct cl_local_chan *ch = &e->l->chans[e->chan];
	struct timespec until = {.tv_sec = (time_t)(deadline_ns / 1000000000ull),
				 .tv_nsec = (long)(deadline_ns % 1000000000ull)};
	pthread_mutex_lock(&ch->mu);
	int rc = 0;
	while (ch->head == NULL && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&ch->cv, &ch->mu, &until);
	struct cl_local_dgram *d = ch->head;
	if (d != NULL) {
		ch->head = d->next;
		if (ch->head == NULL)
			ch->tail = NULL;
		ch->queued--;
	}
	pthread_mutex_unlock(&ch->mu);
	if (d == NULL)
		return 0;
	long n = d->len <= cap ? (long)d->len : -EMSGSIZE;
	if (n > 0)
		memcpy(buf, d->data, d->len);
	free(d);
	return n;
}

int cl_local_open(void *arg, cl_local_deliver_fn deliver, void *dctx,
		  struct zap_client_transport *t)
{
	struct cl_local *l = arg;
	struct cl_local_end *e = malloc(sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	int rc = -ENOSPC;
	pthread_mutex_lock(&l->mu);
	for (uint32_t k = 0; k < l->n_chans; k++) {
		uint32_t i = (l->next + k) % l->n_chans;
		struct cl_local_chan *ch = &l->chans[i];
		if (ch->used)
			continue;
		pthread_mutex_lock(&ch->mu);
		ch->used = true;
		ch->gen++;
		ch->deliver = deliver;
		ch->dctx = dctx;
		mailbox_drain(ch);
		*e = (struct cl_local_end){.l = l, .chan = i, .gen = ch->gen};
		pthread_mutex_unlock(&ch->mu);
		l->next = i + 1;
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&l->mu);
	if (rc != 0) {
		free(e);
		return rc;
	}
	*t = (struct zap_client_transport){.ctx = e, .send = end_send, .recv = end_recv};
	return 0;
}

void cl_local_close(void *arg, void *ctx)
{
	struct cl_local *l = arg;
	struct cl_local_end *e = ctx;
	if (e == NULL)
		return;
	struct cl_local_chan *ch = &l->chans[e->chan];
	pthread_mutex_lock(&l->mu);
	pthread_mutex_lock(&ch->mu);
	ch->used = false;
	ch->gen++; /* answers still on their way are dropped */
	ch->deliver = NULL;
	ch->dctx = NULL;
	mailbox_drain(ch);
	pthread_mutex_unlock(&ch->mu);
	pthread_mutex_unlock(&l->mu);
	free(e);
}

/* ------------------------------------------------------------------ the client thread's end */

unsigned cl_local_poll(struct cl_local *l, cl_local_fn fn, void *arg)
{
	void *p[NODE_BURST];
	unsigned got = rte_ring_dequeue_burst(l->ring, p, NODE_BURST, NULL);
	for (unsigned i = 0; i < got; i++) {
		struct cl_local_dgram *d = p[i];
		struct cl_addr a = {.local = true, .chan = d->chan, .gen = d->gen};
		fn(arg, d->data, d->len, &a);
		free(d);
	}
	return got;
}

void cl_local_reply(struct cl_local *l, const struct cl_addr *a, const void *dgram, size_t len)
{
	if (a->chan >= l->n_chans)
		return;
	struct cl_local_chan *ch = &l->chans[a->chan];
	pthread_mutex_lock(&ch->mu);
	if (ch->used && ch->gen == a->gen && ch->deliver != NULL) {
		/* under mu: cl_local_close() waits for a delivery in progress */
		ch->deliver(ch->dctx, dgram, len);
		pthread_mutex_unlock(&ch->mu);
		return;
	}
	pthread_mutex_unlock(&ch->mu);
	struct cl_local_dgram *d = malloc(sizeof(*d) + len);
	if (d == NULL)
		return; /* as a lost datagram: the client resends */
	d->next = NULL;
	d->chan = a->chan;
	d->gen = a->gen;
	d->len = (uint32_t)len;
	memcpy(d->data, dgram, len);
	pthread_mutex_lock(&ch->mu);
	if (!ch->used || ch->gen != a->gen) {
		pthread_mutex_unlock(&ch->mu);
		free(d);
		return;
	}
	if (ch->queued >= CL_LOCAL_MAILBOX) {
		struct cl_local_dgram *old = ch->head;
		ch->head = old->next;
		if (ch->head == NULL)
			ch->tail = NULL;
		ch->queued--;
		free(old);
	}
	if (ch->tail != NULL)
		ch->tail->next = d;
	else
		ch->head = d;
	ch->tail = d;
	ch->queued++;
	pthread_cond_signal(&ch->cv);
	pthread_mutex_unlock(&ch->mu);
}
