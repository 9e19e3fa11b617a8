/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO gateway core, the bottom layer of the gateway (zeo_gateway_core.h
 * lists the layers): the output of a connection, sending (zg_send_all),
 * closing a connection (zg_conn_kill), the message and reply writers
 * (zg_frame_*, zg_reply_*) and the invalidation flush that announces the
 * store's transactions to one client (invalidateTransaction).
 *
 * Every message is built in c->out and sent under the connection's wmu, by
 * whichever thread writes it (its I/O thread or the notifier): the writers
 * here take no lock themselves, their callers hold wmu (zeo_gateway.c
 * explains the ordering this gives). Sending never blocks: what the socket
 * does not take waits in the connection's pending output, which its I/O
 * thread sends when epoll says the socket has room; a client that lets more
 * than max_output_bytes wait is closed (a client that stopped reading must
 * not hold a node's memory or threads). zg_flush_invalidations() opens a read
 * section on the calling thread's store reader (zg_rd(), under wmu);
 * zg_flush_in_section() is for a caller that already holds one.
 * zg_conn_kill() may be called from any thread with or without wmu: it marks
 * the connection dead and shuts the socket down; the I/O thread sees the
 * hang-up and cleans up.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/bytes.h"
#include "zeo_gateway_core.h"

/* ------------------------------------------------------------------ latency */

const char *const zap_zeo_lat_names[ZAP_ZEO_LAT_COUNT] = {"vote", "prepare", "finish", "commit",
							 "applied"};

static unsigned lat_bucket(uint64_t ns)
{
	if (ns < 4)
		return (unsigned)ns;
	unsigned e = 63u - (unsigned)__builtin_clzll(ns); /* ns in [2^e, 2^(e+1)) */
	unsigned b = e * 4u + (unsigned)((ns >> (e - 2)) & 3u);
	return b < ZG_LAT_BUCKETS ? b : ZG_LAT_BUCKETS - 1;
}

/* The middle of bucket @p b. */
static uint64_t lat_mid(unsigned b)
{
	if (b < 4)
		return b;
	unsigned e = b / 4u, k = b % 4u;
	uint64_t lo = (1ull << e) + ((uint64_t)k << (e - 2));
	return lo + (1ull << (e - 2)) / 2;
}

void zg_lat_add(struct zap_zeo_gateway *g, enum zap_zeo_lat which, uint64_t ns)
{
	atomic_fetch_add_explicit(&g->lat[which].b[lat_bucket(ns)], 1, memory_order_relaxed);
}

uint64_t zg_lat_quantile(const struct zg_lat *h, double q, uint64_t *count)
{
	uint64_t n = 0;
	for (unsigned b = 0; b < ZG_LAT_BUCKETS; b++)
		n += atomic_load_explicit(&h->b[b], memory_order_relaxed);
	if (count != NULL)
		*count = n;
	if (n == 0)
		return 0;
	uint64_t want = (uint64_t)(q * (double)n), seen = 0;
	for (unsigned b = 0; b < ZG_LAT_BUCKETS; b++) {
		seen += atomic_load_explicit(&h->b[b], memory_order_relaxed);
		if (seen > want)
			return lat_mid(b);
	}
	return lat_mid(ZG_LAT_BUCKETS - 1);
}

/* ------------------------------------------------------------------ threads */

static __thread struct zap_store_reader *tls_rd;

struct zap_store_reader *zg_rd(void)
{
	return tls_rd;
}

int zg_thread_reader_open(struct zap_zeo_gateway *g)
{
	return tls_rd != NULL ? 0 : zap_store_reader_open(g->o.store, &tls_rd);
}

void zg_thread_reader_close(void)
{
	if (tls_rd != NULL)
		zap_store_reader_close(tls_rd);
	tls_rd = NULL;
}

/* ------------------------------------------------------------------ references */

void zg_conn_ref(struct zg_conn *c)
{
	atomic_fetch_add(&c->refs, 1);
}

/* ------------------------------------------------------------------ sending */

void zg_conn_kill(struct zg_conn *c, const char *why)
{
	bool was = atomic_exchange(&c->dead, true);
	if (!was && why != NULL)
		fprintf(stderr, "zapd: node %u: zeo connection %" PRIu64 " closed: %s\n",
			c->g->o.node_id, c->id, why);
	shutdown(c->fd, SHUT_RDWR);
}

void zg_conn_arm(struct zg_conn *c)
{
	uint32_t ev = EPOLLRDHUP | (c->paused == 0 ? EPOLLIN : 0u) | (c->olen > c->ohead ? EPOLLOUT : 0u);
	if (ev == c->armed || atomic_load(&c->dead))
		return;
	struct epoll_event e = {.events = ev, .data.ptr = c};
	if (epoll_ctl(c->io->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->armed = ev;
}

void zg_conn_resume(struct zg_conn *c, unsigned bits)
{
	pthread_mutex_lock(&c->wmu);
	bool was = c->paused != 0;
	c->paused &= ~bits;
	bool go = was && c->paused == 0 && !atomic_load(&c->dead);
	pthread_mutex_unlock(&c->wmu);
	if (!go)
		return;
	/* The I/O thread frames what it already read (epoll would not tell). */
	struct zg_io *io = c->io;
	zg_conn_ref(c);
	pthread_mutex_lock(&io->mu);
	c->resume_next = io->resume;
	io->resume = c;
	pthread_mutex_unlock(&io->mu);
	uint64_t one = 1;
	if (write(io->wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is saturated: the thread wakes anyway */
	}
}

/* Keep @p len bytes as pending output. @return false when over the limit or out of memory. */
static bool out_keep(struct zg_conn *c, const uint8_t *p, size_t len)
{
	uint64_t waiting = c->olen - c->ohead;
	/* One message of any size is always taken; output already waiting
	 * beyond the limit closes the connection (so it holds at most the limit
	 * plus one message). */
	if (waiting > 0 && waiting + len > c->g->o.max_output_bytes + c->out_allow) {
		char why[128];
		snprintf(why, sizeof(why),
			 "the client does not read its socket (%" PRIu64 " bytes of output waiting)",
			 waiting + len);
		zg_conn_kill(c, why);
		return false;
	}
	if (waiting == 0)
		c->out_progress_ns = zg_now_ns(); /* the 30 s without progress start now */
	if (c->ohead > 0 && c->olen + len > c->ocap) {
		memmove(c->obuf, c->obuf + c->ohead, waiting);
		c->olen = waiting;
		c->ohead = 0;
	}
	if (c->olen + len > c->ocap) {
		uint64_t cap = c->ocap ? c->ocap : 4096;
		while (cap < c->olen + len)
			cap *= 2;
		uint8_t *b = realloc(c->obuf, cap);
		if (b == NULL) {
			zg_conn_kill(c, "out of memory for output");
			return false;
		}
		c->obuf = b;
		c->ocap = cap;
	}
	memcpy(c->obuf + c->olen, p, len);
	c->olen += len;
	return true;
}

/* Send from @p p without blocking. @return bytes taken, or -1 (connection killed). */
static ssize_t send_some(struct zg_conn *c, const uint8_t *p, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t k = send(c->fd, p + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k > 0) {
			done += (size_t)k;
			c->out_progress_ns = zg_now_ns();
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		zg_conn_kill(c, "send failed");
		return -1;
	}
	return (ssize_t)done;
}

bool zg_send_all(struct zg_conn *c, const uint8_t *p, size_t len)
{
	if (atomic_load(&c->dead))
		return false;
	if (c->olen == c->ohead && !c->corked) {
		ssize_t k = send_some(c, p, len);
		if (k < 0)
			return false;
		p += k;
		len -= (size_t)k;
		if (len == 0)
			return true;
	}
	if (!out_keep(c, p, len))
		return false;
	zg_conn_arm(c);
	return true;
}

void zg_cork(struct zg_conn *c)
{
	c->corked = true;
}

void zg_uncork(struct zg_conn *c)
{
	c->corked = false;
	if (c->olen > c->ohead && !atomic_load(&c->dead) && !(c->armed & EPOLLOUT))
		zg_out_flush(c); /* one send for all the messages held */
}

void zg_out_flush(struct zg_conn *c)
{
	if (c->olen > c->ohead) {
		ssize_t k = send_some(c, c->obuf + c->ohead, c->olen - c->ohead);
		if (k < 0)
			return;
		c->ohead += (uint64_t)k;
	}
	if (c->olen == c->ohead) {
		c->olen = c->ohead = 0;
		c->out_allow = 0;
		if (c->ocap > (1u << 20)) { /* a large reply went out: give the memory back */
			free(c->obuf);
			c->obuf = NULL;
			c->ocap = 0;
		}
		if (c->close_after_output) {
			zg_conn_kill(c, NULL);
			return;
		}
	}
	if (c->out_room != NULL)
		c->out_room(c); /* room again: more of a blob being streamed */
	zg_conn_arm(c);
}

void zg_frame_begin(struct zg_conn *c)
{
	zeo_buf_reset(&c->out);
	static const uint8_t zero[4];
	zeo_buf_put(&c->out, zero, sizeof(zero));
	zeo_w_begin(&c->out, c->enc);
}

void zg_frame_end(struct zg_conn *c)
{
	zeo_w_end(&c->out, c->enc);
	if (c->out.oom || c->out.len - 4 > UINT32_MAX) {
		zg_conn_kill(c, "reply too large or out of memory");
		return;
	}
	zap_put_be32(c->out.p, (uint32_t)(c->out.len - 4));
	zg_send_all(c, c->out.p, c->out.len);
}

void zg_reply_begin(struct zg_conn *c, const uint8_t *msgid, size_t msgid_len, bool error)
{
	zg_frame_begin(c);
	zeo_w_tuple_begin(&c->out, c->enc, 4);
	zeo_buf_put(&c->out, msgid, msgid_len);
	zeo_w_int(&c->out, c->enc, error ? 2 : 0);
	zeo_w_cstr(&c->out, c->enc, ".reply");
}

void zg_reply_end(struct zg_conn *c)
{
	zeo_w_tuple_end(&c->out, c->enc, 4);
	zg_frame_end(c);
}

void zg_reply_error_text(struct zg_conn *c, const uint8_t *msgid, size_t msgid_len, const char *cls,
			 const char *text)
{
	zg_reply_begin(c, msgid, msgid_len, true);
	zeo_w_tuple_begin(&c->out, c->enc, 2);
	zeo_w_cstr(&c->out, c->enc, cls);
	zeo_w_tuple_begin(&c->out, c->enc, 1);
	zeo_w_cstr(&c->out, c->enc, text);
	zeo_w_tuple_end(&c->out, c->enc, 1);
	zeo_w_tuple_end(&c->out, c->enc, 2);
	zg_reply_end(c);
}

void zg_reply_read_only(struct zg_conn *c, const uint8_t *msgid, size_t msgid_len)
{
	zg_reply_begin(c, msgid, msgid_len, true);
	zeo_w_tuple_begin(&c->out, c->enc, 2);
	zeo_w_cstr(&c->out, c->enc, "ZODB.POSException.ReadOnlyError");
	zeo_w_tuple_begin(&c->out, c->enc, 0);
	zeo_w_tuple_end(&c->out, c->enc, 0);
	zeo_w_tuple_end(&c->out, c->enc, 2);
	zg_reply_end(c);
}

void zg_reply_conflict(struct zg_conn *c, const uint8_t *msgid, size_t msgid_len, bool read,
		       uint64_t oid, bool has_oid, uint64_t committed, uint64_t base,
		       const char *class_name, const char *message)
{
	zg_reply_begin(c, msgid, msgid_len, true);
	zeo_w_tuple_begin(&c->out, c->enc, 2);
	zeo_w_cstr(&c->out, c->enc,
		   read ? "ZODB.POSException.ReadConflictError"
			: "ZODB.POSException.ConflictError");
	zeo_w_dict_begin(&c->out, c->enc, 4);
	zeo_w_cstr(&c->out, c->enc, "message");
	zeo_w_cstr(&c->out, c->enc, message);
	zeo_w_cstr(&c->out, c->enc, "oid");
	if (has_oid)
		zeo_w_u64be(&c->out, c->enc, oid);
	else
		zeo_w_none(&c->out, c->enc);
	zeo_w_cstr(&c->out, c->enc, "class_name");
	if (class_name != NULL)
		zeo_w_cstr(&c->out, c->enc, class_name);
	else
		zeo_w_none(&c->out, c->enc);
	zeo_w_cstr(&c->out, c->enc, "serials");
	if (has_oid) {
		zeo_w_tuple_begin(&c->out, c->enc, 2);
		zeo_w_u64be(&c->out, c->enc, committed);
		zeo_w_u64be(&c->out, c->enc, base);
		zeo_w_tuple_end(&c->out, c->enc, 2);
	} else {
		zeo_w_none(&c->out, c->enc);
	}
	zeo_w_dict_end(&c->out, c->enc, 4);
	zeo_w_tuple_end(&c->out, c->enc, 2);
	zg_reply_end(c);
}

void zg_reply_pos_key(struct zg_conn *c, const uint8_t *msgid, size_t msgid_len, uint64_t oid)
{
	zg_reply_begin(c, msgid, msgid_len, true);
	zeo_w_tuple_begin(&c->out, c->enc, 2);
	zeo_w_cstr(&c->out, c->enc, "ZODB.POSException.POSKeyError");
	zeo_w_tuple_begin(&c->out, c->enc, 1);
	zeo_w_u64be(&c->out, c->enc, oid);
	zeo_w_tuple_end(&c->out, c->enc, 1);
	zeo_w_tuple_end(&c->out, c->enc, 2);
	zg_reply_end(c);
}

void zg_reply_none(struct zg_conn *c, const uint8_t *msgid, size_t msgid_len)
{
	zg_reply_begin(c, msgid, msgid_len, false);
	zeo_w_none(&c->out, c->enc);
	zg_reply_end(c);
}

void zg_reply_tid(struct zg_conn *c, const uint8_t *msgid, size_t msgid_len, uint64_t tid)
{
	zg_reply_begin(c, msgid, msgid_len, false);
	zeo_w_u64be(&c->out, c->enc, tid);
	zg_reply_end(c);
}

/* ------------------------------------------------------------------ invalidations */

struct flush_ctx {
	struct zg_conn *c;
	uint64_t upto, skip;
};

static int flush_one(const struct zap_store_txn_info *t, void *arg)
{
	struct flush_ctx *fx = arg;
	struct zg_conn *c = fx->c;
	if (t->tid > fx->upto)
		return 1;
	if (t->tid != fx->skip) {
		zg_frame_begin(c);
		zeo_w_tuple_begin(&c->out, c->enc, 4);
		zeo_w_int(&c->out, c->enc, 0);
		zeo_w_bool(&c->out, c->enc, true);
		zeo_w_cstr(&c->out, c->enc, "invalidateTransaction");
		zeo_w_tuple_begin(&c->out, c->enc, 2);
		zeo_w_u64be(&c->out, c->enc, t->tid);
		zeo_w_list_begin(&c->out, c->enc, t->n_oids);
		for (uint32_t i = 0; i < t->n_oids; i++)
			zeo_w_u64be(&c->out, c->enc, t->oids[i]);
		zeo_w_list_end(&c->out, c->enc, t->n_oids);
		zeo_w_tuple_end(&c->out, c->enc, 2);
		zeo_w_tuple_end(&c->out, c->enc, 4);
		zg_frame_end(c);
		ZG_COUNT(c->g, invalidations_sent);
		if (atomic_load(&c->dead))
			return -EPIPE;
	}
	c->inval_tid = t->tid;
	return 0;
}

/* As zg_flush_invalidations(), inside a read section the caller holds. */
void zg_flush_in_section(struct zg_conn *c, uint64_t upto, uint64_t skip)
{
	if (!c->registered || upto <= c->inval_tid || atomic_load(&c->dead))
		return;
	struct flush_ctx fx = {c, upto, skip};
	bool corked = c->corked;
	zg_cork(c); /* the invalidations leave in one send */
	int rc = zap_store_changes_since(zg_rd(), c->inval_tid, flush_one, &fx);
	if (!corked)
		zg_uncork(c);
	if (rc == -ERANGE)
		/* The ring lost transactions this client never heard of: it must
		 * reconnect and verify its cache (getInvalidations answers None). */
		zg_conn_kill(c, "invalidation feed fell behind the transaction ring");
}

void zg_flush_invalidations(struct zg_conn *c, uint64_t upto, uint64_t skip)
{
	zap_store_read_begin(zg_rd());
	zg_flush_in_section(c, upto, skip);
	zap_store_read_end(zg_rd());
}
