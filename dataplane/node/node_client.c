/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap node client service: the native client protocol (client_proto.h,
 * docs/client.md) on a kernel UDP socket bound to the node's `client_udp`
 * and on the node's DPDK client port (a `role: client` port, at the node's
 * `client` address; node_client_port.c), served by one non-EAL thread
 * beside the lcores. Both transports feed the same decode, pending table and
 * read path: a request remembers where it came from (struct cl_addr) and
 * its answer goes back the same way.
 *
 * Reads (LOAD, LOAD_BEFORE, HISTORY, LAST_TID, CHANGES_SINCE) are answered at
 * once from the local store through this thread's own store reader, at the
 * node's applied tid (node_client_read.c, with the reply encoder).
 *
 * Writes (COMMIT_ONESHOT, PREPARE, COMMIT, ABORT, NEW_OIDS, PACK) become log
 * entries (ONESHOT, PREPARE, COMMIT, ABORT, OID_RESERVE, PACK) carrying the
 * client's id and the request id as seq, proposed by this node, and go to the
 * paxos stage through the submit ring. The request waits in the pending table,
 * keyed by (client id, request id), until the apply stage hands back its
 * result through the result ring; the response then goes to the address the
 * request (or its latest resend) came from. A resend of a pending request that
 * is older than CL_RESUBMIT_NS is submitted again: the state machine's session
 * table answers a request it already applied with the recorded result
 * (duplicate), so nothing is applied twice. A request whose result never comes
 * back is forgotten after CL_EXPIRE_NS; the client's resend starts over.
 *
 * Read barrier (SYNC, and LOAD / LAST_TID with the SYNC flag): the engine has
 * no query for the leader's commit index, so the barrier is a NOP entry this
 * node proposes through the log, with a unique barrier id in its clock field.
 * When the apply stage applies it, everything chosen before the barrier
 * began has been applied here too (the NOP takes a later slot), and the read
 * is answered. It costs one consensus round, like a commit.
 *
 * Threading: one thread (started by zap_node_client_start) owns the socket,
 * the reader, the decoders and the pending table; it is the only producer of
 * the submit ring and the only consumer of the result ring. Idle handling is
 * the adaptive zap_poll policy with the YAML's thresholds.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "node_core.h"

#include "client/client_proto.h"
#include "txn/entry.h"
#include "base/tid.h"
#include "wire/wire_udp.h"
#include "zeo/zeo_gateway.h"

#include "node_client_internal.h"
#include "node_client_local.h"

static struct cl g_cl;
/** The gateway's in-process channels to this service (node_client_local.c). */
static struct cl_local g_local;
/** The node's ZEO gateway (zeo_gateway.h), beside the client service it writes through. */
static struct zap_zeo_gateway *g_zeo;

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------ pending */

static struct cl_pending *pend_find(struct cl *c, uint64_t client_id, uint64_t request_id)
{
	for (unsigned i = 0; i < CL_PENDING; i++) {
		struct cl_pending *p = &c->pend[i];
		if (p->used && p->hdr.client_id == client_id && p->hdr.request_id == request_id)
			return p;
	}
	return NULL;
}

static struct cl_pending *pend_new(struct cl *c)
{
	for (unsigned i = 0; i < CL_PENDING; i++)
		if (!c->pend[i].used)
			return &c->pend[i];
	return NULL;
}

static bool large_queued(const struct cl *c, uint64_t client_id, uint64_t seq);

static void pend_expire(struct cl *c, uint64_t now)
{
	for (unsigned i = 0; i < CL_PENDING; i++) {
		struct cl_pending *p = &c->pend[i];
		if (p->used && now - p->t_ns > (p->large ? CL_EXPIRE_LARGE_NS : CL_EXPIRE_NS) &&
		    !(p->large && large_queued(c, p->hdr.client_id, p->hdr.request_id))) {
			p->used = false;
			c->n->cnt.cl_expired++;
		}
	}
}

/* ------------------------------------------------------------------ writes */

/* Encode @p e into a buffer and enqueue it for the paxos stage (no bell). @return a ZAP_CP_* status. */
static uint16_t enqueue_entry(struct cl *c, const struct zap_entry *e, size_t size)
{
	struct zap_node *n = c->n;
	struct node_buf *b = zap_node_buf_get(n, size);
	if (b == NULL)
		return ZAP_CP_BUSY;
	ssize_t len = zap_entry_encode(e, b->data, size);
	if (len < 0) {
		zap_node_buf_put(n, b);
		return ZAP_CP_BAD_REQUEST;
	}
	b->kind = NODE_BUF_COMMAND;
	b->len = (uint32_t)len;
	if (rte_ring_enqueue(n->submit_ring, b) != 0) {
		zap_node_buf_put(n, b);
		return ZAP_CP_BUSY;
	}
	return ZAP_CP_OK;
}

/*
 * Feed the oldest large write to the paxos stage: its PAYLOAD chunks in
 * order, at most CL_LARGE_WINDOW bytes past what this node's state machine
 * acknowledged (large_ack()), again from the acknowledged bytes when
 * nothing moved for CL_LARGE_RESEND_NS (a chunk lost on the way to the
 * leader), then, once every chunk is held, its LARGE entry. Stops where the
 * window, the buffer pool or the submit ring is full and goes on at the
 * next call. @return true when something was enqueued.
 */
static bool large_pump(struct cl *c)
{
	struct zap_node *n = c->n;
	uint64_t now = zap_poll_now_ns();
	bool fed = false;
	struct cl_large *L;
	while ((L = c->large_head) != NULL) {
		if (L->off > L->acked && now - L->progress_ns > CL_LARGE_RESEND_NS) {
			L->off = L->acked;
			L->progress_ns = now;
			n->cnt.cl_large_resends++;
		}
		while (L->off < L->len && L->off - L->acked < CL_LARGE_WINDOW) {
			size_t k = L->len - L->off < c->large_chunk ? L->len - L->off : c->large_chunk;
			struct zap_entry e = {
			    .type = ZAP_ENTRY_PAYLOAD,
			    .node = L->large.node,
			    .clock_ns = wall_ns(), /* the payload's lease runs from its last chunk */
			    .u.payload = {.id = L->large.u.large.id,
					  .offset = L->off,
					  .total = L->len,
					  .data = L->buf + L->off,
					  .len = k},
			};
			if (enqueue_entry(c, &e, zap_entry_size(&e)) != ZAP_CP_OK)
				goto out;
			L->off += k;
			fed = true;
		}
		/* the transaction's lease (a PREPARE's) starts at its LARGE entry */
		L->large.clock_ns = wall_ns();
		if (L->acked < L->len ||
		    enqueue_entry(c, &L->large, zap_entry_size(&L->large)) != ZAP_CP_OK)
			goto out;
		fed = true;
		/* the request's wait for a resubmission starts now */
		struct cl_pending *p = pend_find(c, L->large.client_id, L->large.seq);
		if (p != NULL) {
			p->t_ns = now;
			p->large_mib = (uint32_t)(L->len >> 20);
		}
		n->cnt.cl_large++;
		c->large_head = L->next;
		if (c->large_head == NULL)
			c->large_tail = NULL;
		c->n_large--;
		free(L->buf);
		free(L);
	}
out:
	if (fed)
		zap_bell_ring(n->bell_paxos);
	return fed;
}

/*
 * A PAYLOAD result of this node's: how many bytes of the payload the state
 * machine holds. A payload refused (no room, broken) is given up: its LARGE
 * is sent at once and answers the client with ABORTED.
 */
static void large_ack(struct cl *c, const struct node_result *r)
{
	for (struct cl_large *L = c->large_head; L != NULL; L = L->next) {
		if (L->large.u.large.id != r->txn_id)
			continue;
		if (r->status != ZAP_TXN_OK) {
			L->acked = L->off = L->len;
		} else if (r->tid > L->acked && r->tid <= L->len) {
			L->acked = r->tid;
			L->progress_ns = zap_poll_now_ns();
		}
		large_pump(c);
		return;
	}
}

static bool large_queued(const struct cl *c, uint64_t client_id, uint64_t seq)
{
	for (const struct cl_large *L = c->large_head; L != NULL; L = L->next)
		if (L->large.client_id == client_id && L->large.seq == seq)
			return true;
	return false;
}

/*
 * A write too large for one consensus value: encode it whole, hash it and
 * queue it for large_pump(). The state machine applies it when the LARGE
 * entry is chosen after every chunk (docs/txn.md "Large entries").
 */
static uint16_t submit_large(struct cl *c, const struct zap_entry *e, size_t size)
{
	if (size > c->max_large)
		return ZAP_CP_TOO_LARGE;
	if (c->n_large >= CL_MAX_LARGE)
		return ZAP_CP_BUSY;
	struct cl_large *L = calloc(1, sizeof(*L));
	if (L == NULL || (L->buf = malloc(size)) == NULL) {
		free(L);
		return ZAP_CP_BUSY;
	}
	if (zap_entry_encode(e, L->buf, size) != (ssize_t)size) {
		free(L->buf);
		free(L);
		return ZAP_CP_BAD_REQUEST;
	}
	L->len = size;
	L->progress_ns = zap_poll_now_ns();
	uint64_t id = ((uint64_t)c->n->id << 56) | (wall_ns() & ((1ull << 56) - 1));
	if (id <= c->last_payload)
		id = c->last_payload + 1;
	c->last_payload = id;
	L->large = (struct zap_entry){
	    .type = ZAP_ENTRY_LARGE,
	    .node = e->node,
	    .client_id = e->client_id,
	    .seq = e->seq,
	    .clock_ns = e->clock_ns,
	    .u.large = {.id = id, .total = size},
	};
	crypto_generichash(L->large.u.large.hash, ZAP_ENTRY_HASH_BYTES, L->buf, size, NULL, 0);
	if (c->large_tail != NULL)
		c->large_tail->next = L;
	else
		c->large_head = L;
	c->large_tail = L;
	c->n_large++;
	large_pump(c);
	return ZAP_CP_OK;
}

/* Hand @p e to the paxos stage, in chunks when it is too large for one value. @return a ZAP_CP_* status. */
static uint16_t submit_entry(struct cl *c, const struct zap_entry *e)
{
	struct zap_node *n = c->n;
	size_t size = zap_entry_size(e);
	if (size == 0)
		return ZAP_CP_BAD_REQUEST;
	if (size > c->value_room)
		return submit_large(c, e, size);
	uint16_t st = enqueue_entry(c, e, size);
	if (st == ZAP_CP_OK)
		zap_bell_ring(n->bell_paxos);
	return st;
}

static uint16_t submit_write(struct cl *c, const struct zap_cp_request *q)
{
	struct zap_entry e = {
	    .node = c->n->id,
	    .client_id = q->hdr.client_id,
	    .seq = q->hdr.request_id,
	    .clock_ns = wall_ns(),
	};
	switch (q->hdr.type) {
	case ZAP_CP_COMMIT_ONESHOT:
	case ZAP_CP_PREPARE:
		e.type = q->hdr.type == ZAP_CP_PREPARE ? ZAP_ENTRY_PREPARE : ZAP_ENTRY_ONESHOT;
		if (q->n_stores > c->max_objects || q->n_reads > c->max_objects)
			return ZAP_CP_TOO_LARGE;
		for (uint32_t i = 0; i < q->n_stores; i++)
			c->stores[i] = (struct zap_entry_store){
			    .oid = q->stores[i].oid,
			    .base_serial = q->stores[i].base_serial,
			    .deleted = q->stores[i].deleted,
			    .data = q->stores[i].data,
			    .len = q->stores[i].len,
			};
		for (uint32_t i = 0; i < q->n_reads; i++)
			c->reads[i] = (struct zap_entry_read){q->reads[i].oid, q->reads[i].serial};
		e.u.txn = (struct zap_entry_txn){
		    .txn_id = q->txn_id,
		    .text = q->text,
		    .stores = c->stores,
		    .n_stores = q->n_stores,
		    .reads = c->reads,
		    .n_reads = q->n_reads,
		};
		break;
	case ZAP_CP_COMMIT:
		e.type = ZAP_ENTRY_COMMIT;
		e.u.txn_id = q->txn_id;
		e.commit_tid = q->tid; /* the state machine keeps it if it is still later */
		break;
	case ZAP_CP_ABORT:
		e.type = ZAP_ENTRY_ABORT;
		e.u.txn_id = q->txn_id;
		break;
	case ZAP_CP_NEW_OIDS:
		e.type = ZAP_ENTRY_OID_RESERVE;
		e.u.oid_count = q->count;
		break;
	case ZAP_CP_PACK:
		e.type = ZAP_ENTRY_PACK;
		e.u.pack_tid = q->tid;
		break;
	default:
		return ZAP_CP_BAD_REQUEST;
	}
	return submit_entry(c, &e);
}

static uint16_t submit_barrier(struct cl *c, struct cl_pending *p)
{
	uint64_t id = wall_ns();
	if (id <= c->last_barrier)
		id = c->last_barrier + 1;
	c->last_barrier = id;
	p->barrier_id = id;
	struct zap_entry e = {.type = ZAP_ENTRY_NOP, .node = c->n->id, .clock_ns = id};
	return submit_entry(c, &e);
}

/* A request that waits for the log: a write, or a read behind a barrier. */
static void cl_wait(struct cl *c, const struct zap_cp_request *q, bool barrier,
		    const struct cl_addr *a)
{
	uint64_t now = zap_poll_now_ns();
	struct cl_pending *p = pend_find(c, q->hdr.client_id, q->hdr.request_id);
	if (p != NULL) {
		p->addr = *a;
		if (p->large ? large_queued(c, p->hdr.client_id, p->hdr.request_id) ||
				   now - p->t_ns < CL_RESUBMIT_LARGE_NS +
						       p->large_mib * CL_LARGE_NS_PER_MIB
			     : now - p->t_ns < CL_RESUBMIT_NS)
			return; /* in flight: the answer goes to the new address */
		c->n->cnt.cl_resubmits++;
	} else {
		p = pend_new(c);
		if (p == NULL) {
			c->n->cnt.cl_busy++;
			cl_status(c, &q->hdr, ZAP_CP_BUSY, a);
			return;
		}
		*p = (struct cl_pending){.used = true,
					 .barrier = barrier,
					 .type = q->hdr.type,
					 .hdr = q->hdr,
					 .oid = q->oid,
					 .addr = *a};
	}
	p->t_ns = now;
	uint64_t large_before = c->n->cnt.cl_large + c->n_large;
	uint16_t st = barrier ? submit_barrier(c, p) : submit_write(c, q);
	p->large = c->n->cnt.cl_large + c->n_large != large_before;
	if (st != ZAP_CP_OK) {
		if (st == ZAP_CP_BUSY)
			c->n->cnt.cl_busy++;
		p->used = false;
		cl_status(c, &q->hdr, st, a);
	}
}

static uint16_t txn_status(uint16_t s)
{
	switch (s) {
	case ZAP_TXN_OK:
		return ZAP_CP_OK;
	case ZAP_TXN_CONFLICT:
		return ZAP_CP_CONFLICT;
	case ZAP_TXN_READ_CONFLICT:
		return ZAP_CP_READ_CONFLICT;
	case ZAP_TXN_ABORTED:
	case ZAP_TXN_EXPIRED:
		return ZAP_CP_ABORTED;
	case ZAP_TXN_UNKNOWN_TXN:
		return ZAP_CP_UNKNOWN_TXN;
	case ZAP_TXN_DUPLICATE_TXN:
		return ZAP_CP_DUPLICATE_TXN;
	case ZAP_TXN_STALE_REQUEST:
		return ZAP_CP_STALE_REQUEST;
	case ZAP_TXN_BUSY:
		return ZAP_CP_BUSY;
	case ZAP_TXN_STORE_FULL:
		return ZAP_CP_STORE_FULL;
	case ZAP_TXN_NOT_PREPARED:
		return ZAP_CP_NOT_PREPARED;
	case ZAP_TXN_OIDS_EXHAUSTED:
		return ZAP_CP_OIDS_EXHAUSTED;
	default:
		return ZAP_CP_STORE_ERROR;
	}
}

static void cl_result(struct cl *c, const struct node_result *r)
{
	if (r->entry_type == ZAP_ENTRY_PAYLOAD) {
		large_ack(c, r);
		return;
	}
	if (r->client_id == 0 && r->entry_type == ZAP_ENTRY_NOP) {
		for (unsigned i = 0; i < CL_PENDING; i++) {
			struct cl_pending *p = &c->pend[i];
			if (!p->used || !p->barrier || p->barrier_id != r->seq)
				continue;
			p->used = false;
			if (p->type == ZAP_CP_LOAD) {
				cl_read_load(c, &p->hdr, p->oid, &p->addr);
			} else {
				struct zap_cp_response o = cl_reply_to(&p->hdr, ZAP_CP_OK);
				o.tid = zap_store_last_tid(c->n->store);
				cl_send(c, &o, &p->addr);
			}
			return;
		}
		c->n->cnt.cl_unmatched_results++;
		return;
	}
	struct cl_pending *p = pend_find(c, r->client_id, r->seq);
	if (p == NULL || p->barrier) {
		c->n->cnt.cl_unmatched_results++;
		return;
	}
	p->used = false;
	struct zap_cp_response o = cl_reply_to(&p->hdr, txn_status(r->status));
	/* The state machine answers a successful ABORT with ABORTED (docs/txn.md). */
	if (p->type == ZAP_CP_ABORT && r->status == ZAP_TXN_ABORTED)
		o.status = ZAP_CP_OK;
	if (o.status == ZAP_CP_OK) {
		if (p->type == ZAP_CP_NEW_OIDS) {
			o.oid = r->first_oid;
			o.count = r->oid_count;
		} else if (p->type == ZAP_CP_COMMIT || p->type == ZAP_CP_COMMIT_ONESHOT ||
			   p->type == ZAP_CP_PACK) {
			o.tid = r->tid;
		}
	} else if (o.status == ZAP_CP_CONFLICT || o.status == ZAP_CP_READ_CONFLICT) {
		o.oid = r->oid;
		o.serial = r->serial;
		o.base_serial = r->base_serial;
	}
	cl_send(c, &o, &p->addr);
	uint64_t now = wall_ns();
	if (r->applied_ns != 0 && now >= r->applied_ns)
		zap_node_lat_add(&c->n->lat[NODE_LAT_REPLY], now - r->applied_ns);
}

/* ------------------------------------------------------------------ requests */

static void cl_datagram(struct cl *c, const uint8_t *d, size_t len, const struct cl_addr *a)
{
	struct zap_node *n = c->n;
	struct zap_cp_hdr h;
	struct zap_cp_limits lim;
	zap_cp_decoder_limits(c->dec, &lim);
	n->cnt.cl_datagrams++;
	if (zap_cp_hdr_decode(d, len, n->cfg->cluster.id, CL_ANY_MESSAGE_BYTES, &h) != 0 ||
	    h.type < ZAP_CP_REQUEST_FIRST || h.type > ZAP_CP_REQUEST_LAST) {
		n->cnt.cl_bad_datagrams++;
		return;
	}
	if (h.total_bytes > lim.max_message_bytes) {
		/* Larger than one log entry may be: say so (once, on the first chunk). */
		n->cnt.cl_bad_requests++;
		if (h.chunk_index == 0)
			cl_status(c, &h, ZAP_CP_TOO_LARGE, a);
		return;
	}
	const void *body;
	size_t blen;
	int rc = zap_cp_reasm_push(c->ra, &h, d, len, &body, &blen);
	if (rc != 1) {
		if (rc < 0 && rc != -EALREADY)
			n->cnt.cl_bad_datagrams++;
		return;
	}
	struct zap_cp_request q;
	if (zap_cp_request_decode(c->dec, &h, body, blen, &q) != 0) {
		n->cnt.cl_bad_requests++;
		cl_status(c, &h, ZAP_CP_BAD_REQUEST, a);
		return;
	}
	q.hdr = h;
	n->cnt.cl_requests++;
	bool sync = (h.flags & ZAP_CP_FLAG_SYNC) != 0;
	switch (h.type) {
	case ZAP_CP_LOAD:
		if (sync)
			cl_wait(c, &q, true, a);
		else
			cl_read_load(c, &h, q.oid, a);
		break;
	case ZAP_CP_LOAD_BEFORE:
		cl_read_load_before(c, &h, &q, a);
		break;
	case ZAP_CP_HISTORY:
		cl_read_history(c, &h, &q, a);
		break;
	case ZAP_CP_CHANGES_SINCE:
		cl_read_changes(c, &h, &q, a);
		break;
	case ZAP_CP_LAST_TID:
		if (sync) {
			cl_wait(c, &q, true, a);
		} else {
			struct zap_cp_response r = cl_reply_to(&h, ZAP_CP_OK);
			r.tid = zap_store_last_tid(n->store);
			cl_send(c, &r, a);
		}
		break;
	case ZAP_CP_SYNC:
		cl_wait(c, &q, true, a);
		break;
	default:
		cl_wait(c, &q, false, a);
		break;
	}
	/* the request is served or encoded into its entry: its body may go now */
	zap_cp_reasm_release(c->ra);
}

/* A datagram from the DPDK client port: served as one from the kernel socket. */
static void cl_port_datagram(void *ctx, const uint8_t *d, size_t len,
			     const struct zap_wire_udp_addr *from)
{
	struct cl_addr a = {.on_port = true, .peer = *from};
	cl_datagram(ctx, d, len, &a);
}

static void cl_local_datagram(void *ctx, const uint8_t *d, size_t len, const struct cl_addr *a)
{
	cl_datagram(ctx, d, len, a);
}

static void *cl_main(void *arg)
{
	struct cl *c = arg;
	struct zap_node *n = c->n;
	pthread_setname_np(pthread_self(), "zap-client");
	if (n->cport != NULL)
		zap_node_cport_thread_init(n);
	struct zap_poll poll;
	zap_poll_init(&poll, ZAP_POLLING_ADAPTIVE, &n->cfg->polling, zap_poll_now_ns());
	/* asleep, the thread wakes for a datagram on the socket or a result (bell) */
	struct zap_waiter wt = {.bell = &n->client_bell, .extra_fd = c->fd};
	uint64_t next_expire = 0;
	while (!zap_node_stop) {
		bool work = false;
		for (unsigned k = 0; k < NODE_BURST; k++) {
			if (c->fd < 0)
				break;
			struct cl_addr a = {.alen = sizeof(a.sa)};
			ssize_t len = recvfrom(c->fd, c->rx_dgram, CL_DGRAM_BYTES, MSG_DONTWAIT,
					       (struct sockaddr *)&a.sa, &a.alen);
			if (len < 0)
				break;
			work = true;
			cl_datagram(c, c->rx_dgram, (size_t)len, &a);
		}
		if (n->cport != NULL && zap_node_cport_poll(n, cl_port_datagram, c) > 0)
			work = true;
		if (c->local != NULL && cl_local_poll(c->local, cl_local_datagram, c) > 0)
			work = true;
		if (c->large_head != NULL && large_pump(c))
			work = true;
		struct node_result res[NODE_BURST];
		unsigned got = rte_ring_dequeue_burst_elem(n->result_ring, res, sizeof(res[0]),
							   NODE_BURST, NULL);
		for (unsigned i = 0; i < got; i++)
			cl_result(c, &res[i]);
		work = work || got > 0;
		uint64_t now = zap_poll_now_ns();
		if (now >= next_expire) {
			pend_expire(c, now);
			next_expire = now + 100ull * 1000 * 1000;
			if (n->cport != NULL)
				zap_node_cport_link_check(n, now);
		}
		zap_waiter_step(&wt, zap_poll_next(&poll, now, work));
	}
	if (n->cport != NULL)
		zap_node_cport_thread_exit(n);
	return NULL;
}

static int cl_socket(const struct zap_hostport *hp)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_DGRAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	char port[8];
	snprintf(port, sizeof(port), "%u", hp->port);
	struct addrinfo *ai = NULL;
	if (getaddrinfo(hp->host, port, &hints, &ai) != 0 || ai == NULL)
		return -ENOENT;
	int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rc = fd < 0 ? -errno : 0;
	if (rc == 0) {
		/* A large request arrives as a burst of datagrams: 64 MiB of room
		 * where the node may set it past net.core.rmem_max (root), else
		 * what that allows. */
		int one = 1, buf = 4 << 20, big = 64 << 20;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) != 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			rc = -errno;
			close(fd);
		}
	}
	freeaddrinfo(ai);
	return rc != 0 ? rc : fd;
}

static void cl_free(struct cl *c)
{
	if (c->rd != NULL)
		zap_store_reader_close(c->rd);
	zap_cp_decoder_destroy(c->dec);
	zap_cp_reasm_destroy(c->ra);
	free(c->dgram);
	free(c->rx_dgram);
	free(c->body);
	free(c->stores);
	free(c->reads);
	free(c->shist);
	free(c->hist);
	free(c->oids);
	while (c->large_head != NULL) {
		struct cl_large *L = c->large_head;
		c->large_head = L->next;
		free(L->buf);
		free(L);
	}
	if (c->fd >= 0)
		close(c->fd);
	if (c->local != NULL)
		cl_local_fini(c->local);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/*
 * The ZEO gateway on the node's `zeo` address (and `zeo_unix` path): its
 * reads use the node's store, its writes this client service. Encoding Z5
 * unless zeo.encoding is msgpack (docs/zeo.md).
 */
/* The gateway's notifier waits here for the apply stage to publish past @p seen. */
static void zeo_store_wait(void *arg, uint64_t seen, uint64_t timeout_ns)
{
	struct zap_node *n = arg;
	uint32_t seq = zap_bell_arm(&n->zeo_bell);
	if (zap_store_last_tid(n->store) != seen) {
		zap_bell_disarm(&n->zeo_bell);
		return;
	}
	zap_bell_wait(&n->zeo_bell, seq, timeout_ns, -1);
}

static int zeo_start(struct zap_node *n)
{
	const struct zap_node_config *s = n->self;
	if ((s->zeo.host == NULL || s->zeo.port == 0) && s->zeo_unix == NULL)
		return 0;
	struct zap_zeo_gateway_opts o = {
	    .tcp_host = s->zeo.port != 0 ? s->zeo.host : NULL,
	    .tcp_port = s->zeo.port,
	    .unix_path = s->zeo_unix,
	    .enc = n->cfg->zeo.encoding == ZAP_ZEO_ENCODING_MSGPACK ? ZEO_ENC_MSGPACK
								     : ZEO_ENC_PICKLE,
	    .store = n->store,
	    .native_open = cl_local_open,
	    .native_close = cl_local_close,
	    .native_arg = &g_local,
	    .store_wait = zeo_store_wait,
	    .store_wait_arg = n,
	    .cluster_id = n->cfg->cluster.id,
	    .node_id = n->id,
	    .io_threads = n->cfg->zeo.io_threads,
	    .max_connections = n->cfg->zeo.max_connections,
	    .max_output_bytes = n->cfg->zeo.max_output_bytes,
	    .max_txn_bytes = n->cfg->txn.max_bytes,
	    .max_message_bytes = n->cfg->zeo.max_message_bytes,
	    .blob_dir = zap_node_blobs_dir(n),
	};
	int rc = zap_zeo_gateway_start(&o, &g_zeo);
	if (rc != 0)
		fprintf(stderr, "zapd: node %u: zeo gateway on %s:%u: %s\n", n->id,
			s->zeo.host != NULL ? s->zeo.host : "-", s->zeo.port, strerror(-rc));
	else
		fprintf(stderr, "zapd: node %u: zeo gateway on %s:%u%s%s (%s)\n", n->id,
			s->zeo.host != NULL ? s->zeo.host : "-", s->zeo.port,
			s->zeo_unix != NULL ? " and " : "", s->zeo_unix != NULL ? s->zeo_unix : "",
			o.enc == ZEO_ENC_MSGPACK ? "M5" : "Z5");
	return rc;
}

int zap_node_client_start(struct zap_node *n)
{
	const struct zap_hostport *hp = &n->self->client_udp;
	bool udp = hp->host != NULL && hp->port != 0;
	int rc = zap_node_cport_open(n);
	if (rc != 0)
		return rc;
	if (!udp && n->cport == NULL) {
		fprintf(stderr,
			"zapd: node %u: no client_udp and no client port in the config: no client "
			"service\n",
			n->id);
		return 0;
	}
	struct cl *c = &g_cl;
	memset(c, 0, sizeof(*c));
	c->n = n;
	c->fd = udp ? cl_socket(hp) : -1;
	if (udp && c->fd < 0) {
		rc = c->fd;
		fprintf(stderr, "zapd: client_udp %s:%u: %s\n", hp->host, hp->port, strerror(-rc));
		c->fd = -1;
		zap_node_cport_close(n);
		return rc;
	}
	n->client_fd = c->fd;
	struct zap_cp_limits lim = {
	    /* a record carrying a blob is as large as a transaction may be: the
	       state machine keeps the blob in the blob area, and max_record
	       bounds what stays in the store */
	    .max_record_bytes = n->cfg->store.max_record_bytes > n->cfg->txn.max_bytes
				    ? n->cfg->store.max_record_bytes
				    : n->cfg->txn.max_bytes,
	    .max_message_bytes = n->cfg->txn.max_bytes + NODE_BUF_SLACK,
	    .max_objects = n->cfg->txn.max_objects,
	    .max_text_bytes = n->cfg->txn.max_text_bytes,
	};
	c->max_large = n->cfg->txn.max_bytes;
	/* a chunk fills a pooled buffer, and leaves room in a consensus value */
	c->large_chunk = n->buf_data_bytes - NODE_BUF_SLACK - ZAP_ENTRY_HEADER_BYTES -
			 ZAP_ENTRY_PAYLOAD_FIXED_BYTES;
	/* what one consensus value holds of an entry (a tiny batch_bytes keeps half) */
	uint32_t bb = n->cfg->paxos.batch_bytes;
	c->value_room = bb > 2 * CL_VALUE_SLACK ? bb - CL_VALUE_SLACK : bb / 2;
	uint32_t hdr = ZAP_ENTRY_HEADER_BYTES + ZAP_ENTRY_PAYLOAD_FIXED_BYTES;
	uint32_t room = c->value_room > hdr ? c->value_room - hdr : 1;
	if (c->large_chunk > room)
		c->large_chunk = room;
	c->max_objects = n->cfg->txn.max_objects;
	c->body_cap = n->cfg->store.max_record_bytes + CL_MAX_HIST * 1024ull + CL_MAX_OIDS * 8ull +
		      ZAP_CP_RESULT_BYTES;
	rc = zap_cp_decoder_create(&lim, &c->dec);
	if (rc == 0)
		rc = zap_cp_reasm_create(&lim, CL_REASM_SLOTS, &c->ra);
	if (rc == 0)
		rc = zap_store_reader_open(n->store, &c->rd);
	c->dgram = malloc(CL_DGRAM_BYTES);
	c->rx_dgram = malloc(CL_DGRAM_BYTES);
	c->body = malloc(c->body_cap);
	c->stores = calloc(c->max_objects, sizeof(*c->stores));
	c->reads = calloc(c->max_objects, sizeof(*c->reads));
	c->shist = calloc(CL_MAX_HIST + 1, sizeof(*c->shist));
	c->hist = calloc(CL_MAX_HIST + 1, sizeof(*c->hist));
	c->oids = calloc(CL_MAX_OIDS, sizeof(*c->oids));
	if (rc == 0 &&
	    (!c->dgram || !c->rx_dgram || !c->body || !c->stores || !c->reads || !c->shist || !c->hist || !c->oids))
		rc = -ENOMEM;
	/* a channel per ZEO connection, and some for the connections closing */
	if (rc == 0 && (rc = cl_local_init(&g_local, n, n->cfg->zeo.max_connections + 64u)) == 0)
		c->local = &g_local;
	if (rc == 0)
		rc = -pthread_create(&n->client_thread, NULL, cl_main, c);
	if (rc != 0) {
		fprintf(stderr, "zapd: client service: %s\n", strerror(-rc));
		cl_free(c);
		zap_node_cport_close(n);
		n->client_fd = -1;
		return rc;
	}
	n->client_started = true;
	return zeo_start(n); /* the gateway writes through the in-process channels */
}

void zap_node_client_stop(struct zap_node *n)
{
	if (!n->client_started)
		return;
	if (g_zeo != NULL) {
		zap_zeo_gateway_stats(g_zeo, &n->zeo_stats);
		n->zeo_ran = true;
	}
	zap_zeo_gateway_stop(g_zeo);
	g_zeo = NULL;
	zap_node_stop = 1;
	pthread_join(n->client_thread, NULL);
	n->client_started = false;
	cl_free(&g_cl);
	n->client_fd = -1;
	zap_node_cport_stop(n);
}
