/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap node client service, the answering half (node_client.c has the
 * thread, the decode, the pending table and the writes): encoding a response
 * into chunks and sending each back the way its request came (kernel socket
 * or DPDK client port), and the reads answered at once from the node's store
 * through the client thread's own reader (LOAD, LOAD_BEFORE, HISTORY,
 * CHANGES_SINCE), at the node's applied tid.
 *
 * Threading: the client thread only (node_client_internal.h).
 */
#include <sys/socket.h>

#include "node_client_internal.h"

#include "client/client_proto.h"
#include "node_client_local.h"

/* ------------------------------------------------------------------ replies */

void cl_send(struct cl *c, struct zap_cp_response *r, const struct cl_addr *a)
{
	size_t size = zap_cp_response_size(r);
	if (size == 0 || size > c->body_cap) {
		/* A reply this node cannot encode: say so without a tail. */
		struct zap_cp_response t = {.hdr = r->hdr, .status = ZAP_CP_TOO_LARGE};
		*r = t;
		size = zap_cp_response_size(r);
	}
	ssize_t len = zap_cp_response_encode(r, c->body, c->body_cap);
	if (len < 0)
		return;
	uint32_t count = zap_cp_chunk_count((size_t)len, CL_CHUNK_BYTES);
	for (uint32_t i = 0; i < count; i++) {
		ssize_t k = zap_cp_chunk_encode(&r->hdr, c->body, (size_t)len, CL_CHUNK_BYTES, i,
						c->dgram, CL_DGRAM_BYTES);
		if (k <= 0)
			continue;
		if (a->local)
			cl_local_reply(c->local, a, c->dgram, (size_t)k);
		else if (a->on_port)
			zap_node_cport_send(c->n, &a->peer, c->dgram, (size_t)k);
		else
			sendto(c->fd, c->dgram, (size_t)k, MSG_DONTWAIT,
			       (const struct sockaddr *)&a->sa, a->alen);
	}
	c->n->cnt.cl_replies++;
}

struct zap_cp_response cl_reply_to(const struct zap_cp_hdr *h, uint16_t status)
{
	struct zap_cp_response r = {.hdr = *h, .status = status};
	r.hdr.type = (uint8_t)(h->type + ZAP_CP_RESPONSE_OFFSET);
	r.hdr.flags = 0;
	return r;
}

void cl_status(struct cl *c, const struct zap_cp_hdr *h, uint16_t status, const struct cl_addr *a)
{
	struct zap_cp_response r = cl_reply_to(h, status);
	cl_send(c, &r, a);
}

/* ------------------------------------------------------------------ reads */

void cl_read_load(struct cl *c, const struct zap_cp_hdr *h, uint64_t oid, const struct cl_addr *a)
{
	struct zap_cp_response r = cl_reply_to(h, ZAP_CP_NOT_FOUND);
	struct zap_store_rev rev;
	zap_store_read_begin(c->rd);
	if (zap_store_load(c->rd, oid, &rev) == 0 && !rev.deleted) {
		r.status = ZAP_CP_OK;
		r.serial = rev.serial;
		r.data = rev.data;
		r.len = (uint32_t)rev.len;
	}
	cl_send(c, &r, a);
	zap_store_read_end(c->rd);
}

void cl_read_load_before(struct cl *c, const struct zap_cp_hdr *h, const struct zap_cp_request *q,
			 const struct cl_addr *a)
{
	struct zap_cp_response r = cl_reply_to(h, ZAP_CP_NOT_FOUND);
	struct zap_store_rev rev;
	zap_store_read_begin(c->rd);
	if (zap_store_load_before(c->rd, q->oid, q->tid, &rev) == 0 && !rev.deleted) {
		r.status = ZAP_CP_OK;
		r.serial = rev.serial;
		r.next_serial = rev.next_serial;
		r.data = rev.data;
		r.len = (uint32_t)rev.len;
	}
	cl_send(c, &r, a);
	zap_store_read_end(c->rd);
}

void cl_read_history(struct cl *c, const struct zap_cp_hdr *h, const struct zap_cp_request *q,
		     const struct cl_addr *a)
{
	struct zap_cp_response r = cl_reply_to(h, ZAP_CP_NOT_FOUND);
	uint32_t lim = q->count < CL_MAX_HIST ? q->count : CL_MAX_HIST;
	size_t got = 0;
	zap_store_read_begin(c->rd);
	if (zap_store_history(c->rd, q->oid, c->shist, lim + 1, &got) == 0) {
		r.status = ZAP_CP_OK;
		if (got > lim) {
			got = lim;
			r.rflags = ZAP_CP_RFLAG_TRUNCATED;
		}
		for (size_t i = 0; i < got; i++) {
			const struct zap_store_hist *s = &c->shist[i];
			c->hist[i] = (struct zap_cp_hist){
			    .serial = s->serial,
			    .size_bytes = s->len,
			    .deleted = s->deleted,
			    .user = s->txn.text.user,
			    .user_len = (uint16_t)(s->txn.text.user_len > UINT16_MAX
						       ? UINT16_MAX
						       : s->txn.text.user_len),
			    .description = s->txn.text.description,
			    .description_len = (uint16_t)(s->txn.text.description_len > UINT16_MAX
							      ? UINT16_MAX
							      : s->txn.text.description_len),
			};
		}
		r.count = (uint32_t)got;
		r.hist = c->hist;
	}
	cl_send(c, &r, a);
	zap_store_read_end(c->rd);
}

static int collect_change(const struct zap_store_txn_info *t, void *ctx)
{
	struct cl *c = ctx;
	for (uint32_t i = 0; i < t->n_oids; i++) {
		if (c->n_oids == c->max_oids) {
			c->truncated = true;
			return 1;
		}
		c->oids[c->n_oids++] = t->oids[i];
	}
	return 0;
}

void cl_read_changes(struct cl *c, const struct zap_cp_hdr *h, const struct zap_cp_request *q,
		     const struct cl_addr *a)
{
	struct zap_cp_response r = cl_reply_to(h, ZAP_CP_OK);
	c->n_oids = 0;
	c->truncated = false;
	c->max_oids = q->count < CL_MAX_OIDS ? q->count : CL_MAX_OIDS;
	r.tid = zap_store_read_begin(c->rd);
	int rc = zap_store_changes_since(c->rd, q->tid, collect_change, c);
	if (rc == -ERANGE) {
		r.rflags = ZAP_CP_RFLAG_TOO_OLD;
	} else {
		if (c->truncated)
			r.rflags = ZAP_CP_RFLAG_TRUNCATED;
		r.count = c->n_oids;
		r.oids = c->oids;
	}
	cl_send(c, &r, a);
	zap_store_read_end(c->rd);
}
