/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO gateway (zeo_gateway.h), the top layer: listeners, the I/O threads
 * (epoll), framing, handshake, the notifier of the invalidation feed and the
 * dispatch of each call to the file that serves it (zeo_gateway_core.h lists
 * the layers below: replies and the invalidation flush in zeo_gateway_core.c,
 * reads in zeo_gateway_read.c, the transaction in zeo_gateway_txn.c and
 * zeo_gateway_calls.c, ...).
 *
 * Each connection belongs to one I/O thread, chosen in turn at accept. Its
 * socket is non-blocking; the thread reads what is there, frames it (a
 * 4-byte big-endian length, then the message) and dispatches each complete
 * message at once: reads are answered from the store, the transaction is
 * built, calls that wait for the cluster start as state machines
 * (zeo_gateway_calls.c) whose native answers arrive on the thread's inbox
 * through its eventfd. Input pauses (no more messages are framed, the socket
 * is not read) while register waits for its barrier or the connection's call
 * queue is full; the call that frees it puts the connection on the resume
 * list. Every 100 ms a thread looks
 * at its connections: a handshake that takes over ZG_HANDSHAKE_TIMEOUT_S, or
 * output that has not moved for ZG_SEND_TIMEOUT_S, closes the connection.
 *
 * Ordering (docs/zeo.md, "Ordering"): every message to a client is built and
 * sent under the connection's wmu. The invalidation feed of a connection is
 * the cursor inval_tid: every transaction <= inval_tid has been announced
 * (or is the client's own). Loads are answered at min(before, inval_tid + 1)
 * with the true end serial, so a reply never claims "current" for a revision
 * whose successor the client has not heard of yet (O3); register sets
 * inval_tid to the tid it returns, after a read barrier (O4, §6.1); the
 * tpc_finish path announces everything before the own tid, then replies
 * (O1, O2), while the notifier keeps away from a connection that is finishing.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/tid.h"
#include "zeo_gateway_core.h"

#define ZG_HANDSHAKE_TIMEOUT_S 10
#define ZG_SEND_TIMEOUT_S 30
/** How often an I/O thread looks for timed-out connections. */
#define ZG_SWEEP_MS 100
/** How often an I/O thread looks at the timers of the calls it runs. */
#define ZG_TICK_MS 1
/** Bytes an I/O thread reads from a socket at a time (more when a frame needs it). */
#define ZG_READ_CHUNK (64u << 10)
/** Input buffer kept by an idle connection; a larger one is given back. */
#define ZG_RBUF_KEEP (16u << 10)
#define ZG_NOTIFY_BUSY_US 200
#define ZG_NOTIFY_IDLE_US 1000
#define ZG_NOTIFY_IDLE_ROUNDS 500
/** Longest wait for the apply stage's doorbell (the notifier then looks anyway). */
#define ZG_NOTIFY_WAIT_NS (5ull * 1000 * 1000)
#define ZG_NEW_OIDS_DEFAULT 100

/** The msgid of the client's heartbeat, which is never answered. */
#define ZG_HEARTBEAT_MSGID (-1)

/* ------------------------------------------------------------------ the notifier */

static void *notifier_main(void *arg)
{
	struct zap_zeo_gateway *g = arg;
	unsigned idle = 0;
	uint64_t seen = 0;
	pthread_setname_np(pthread_self(), "zeo-notify");
	if (zg_thread_reader_open(g) != 0) {
		fprintf(stderr, "zapd: node %u: zeo notifier: no store reader\n", g->o.node_id);
		return NULL;
	}
	while (!atomic_load(&g->stop)) {
		uint64_t last = zap_store_last_tid(g->o.store);
		bool work = last != seen, skipped = false;
		if (work) {
			/* the I/O threads with calls waiting for the store */
			for (unsigned i = 0; i < g->n_io; i++) {
				uint64_t one = 1;
				if (atomic_load(&g->io[i].applied_waiters) > 0 &&
				    write(g->io[i].wake_fd, &one, sizeof(one)) < 0) {
					/* saturated: it wakes anyway */
				}
			}
		}
		pthread_mutex_lock(&g->mu);
		for (struct zg_conn *c = g->conns; c != NULL; c = c->next) {
			if (atomic_load(&c->dead))
				continue;
			pthread_mutex_lock(&c->wmu);
			if (c->registered && c->inval_tid < last) {
				if (c->finishing)
					skipped = true; /* its tpc_finish announces; look again soon */
				else
					zg_flush_invalidations(c, last, 0);
			}
			pthread_mutex_unlock(&c->wmu);
		}
		pthread_mutex_unlock(&g->mu);
		seen = last;
		idle = work ? 0 : idle + 1;
		if (g->o.store_wait != NULL && !skipped)
			g->o.store_wait(g->o.store_wait_arg, seen, ZG_NOTIFY_WAIT_NS);
		else
			zg_sleep_us(idle > ZG_NOTIFY_IDLE_ROUNDS ? ZG_NOTIFY_IDLE_US : ZG_NOTIFY_BUSY_US);
	}
	zg_thread_reader_close();
	return NULL;
}

/* ------------------------------------------------------------------ dispatch */

static bool encode_msgid(struct zg_conn *c, const struct zeo_val *msgid, struct zg_job *j)
{
	zeo_buf_reset(&c->scratch);
	zeo_w_val(&c->scratch, c->enc, msgid);
	if (c->scratch.oom || c->scratch.len > ZG_MSGID_MAX)
		return false;
	memcpy(j->msgid, c->scratch.p, c->scratch.len);
	j->msgid_len = (uint16_t)c->scratch.len;
	return true;
}

static bool bad(struct zg_conn *c, const char *why)
{
	ZG_COUNT(c->g, bad_messages);
	zg_conn_kill(c, why);
	return false;
}

/* A one-way call. Returns false when the connection must close. */
static bool dispatch_async(struct zg_conn *c, const char *name, const struct zeo_val *args)
{
	if (strcmp(name, "set_client_label") == 0)
		return true;
	if (strcmp(name, "iterator_gc") == 0)
		return zg_iter_async(c, args);
	bool ok;
	pthread_mutex_lock(&c->tmu);
	if (strcmp(name, "tpc_begin") == 0)
		ok = zg_txn_begin(c, args);
	else if (strcmp(name, "storea") == 0 || strcmp(name, "deleteObject") == 0 ||
		 strcmp(name, "checkCurrentSerialInTransaction") == 0)
		ok = zg_txn_store(c, name, args);
	else if (strcmp(name, "undoa") == 0)
		ok = zg_undo_add(c, args);
	else if (strcmp(name, "restorea") == 0)
		ok = zg_restore_add(c, args);
	else if (strcmp(name, "storeBlobStart") == 0 || strcmp(name, "storeBlobChunk") == 0 ||
		 strcmp(name, "storeBlobEnd") == 0)
		ok = zg_txn_blob(c, name, args);
	else {
		char why[128];
		snprintf(why, sizeof(why), "one-way call %.64s is not served", name);
		zg_conn_kill(c, why);
		ok = false;
	}
	pthread_mutex_unlock(&c->tmu);
	return ok;
}

/* A sync call. Returns false when the connection must close. */
static bool dispatch_sync(struct zg_conn *c, const struct zeo_val *msgid, const char *name,
			  const struct zeo_val *args)
{
	struct zg_job j = {0};
	if (!encode_msgid(c, msgid, &j))
		return bad(c, "msgid too large");
	const uint8_t *mid = j.msgid;
	size_t ml = j.msgid_len;
	int64_t n;

	int r = zg_read_call(c, name, mid, ml, args);
	if (r < 0) {
		char why[96];
		snprintf(why, sizeof(why), "%.64s: bad arguments", name);
		return bad(c, why);
	}
	if (r > 0) {
		/* answered */
	} else if (strcmp(name, "undoLog") == 0 || strcmp(name, "undoInfo") == 0) {
		int64_t first = 0, last = -20;
		const struct zeo_val *spec = name[4] == 'I' ? zg_arg(args, 2) : NULL;
		if ((zg_arg(args, 0) != NULL && !zeo_val_int(zg_arg(args, 0), &first)) ||
		    (zg_arg(args, 1) != NULL && !zeo_val_int(zg_arg(args, 1), &last)) ||
		    (spec != NULL && spec->type != ZEO_DICT && spec->type != ZEO_NONE))
			return bad(c, "undoLog / undoInfo: bad arguments");
		zg_undo_log(c, mid, ml, first, last, spec);
	} else if (strcmp(name, "pack") == 0) {
		/* pack(t, wait): t in seconds since the epoch; the call clamps the
		 * tid to the connection's last announced one and packs (docs/zeo.md). */
		const struct zeo_val *t = zg_arg(args, 0);
		double secs;
		if (t != NULL && t->type == ZEO_FLOAT)
			secs = t->f;
		else if (t != NULL && zeo_val_int(t, &n))
			secs = (double)n;
		else
			return bad(c, "pack: bad arguments");
		uint64_t ns = !(secs > 0) ? 0 : secs >= 18e9 ? UINT64_MAX : (uint64_t)(secs * 1e9);
		j.kind = ZG_JOB_PACK;
		j.txn = ns == 0 ? 0 : zap_tid_from_unix_ns(ns);
		return zg_queue(c, &j);
	} else if (strcmp(name, "new_oids") == 0) {
		n = ZG_NEW_OIDS_DEFAULT;
		if (zg_arg(args, 0) != NULL && !zeo_val_int(zg_arg(args, 0), &n))
			return bad(c, "new_oids: bad arguments");
		j.kind = ZG_JOB_NEW_OIDS;
		j.arg = n;
		return zg_queue(c, &j);
	} else if (strcmp(name, "ping") == 0) {
		j.kind = ZG_JOB_PING;
		return zg_queue(c, &j);
	} else if (strcmp(name, "vote") == 0 || strcmp(name, "tpc_finish") == 0 ||
		   strcmp(name, "tpc_abort") == 0) {
		struct zg_txn_key k;
		if (zg_arg(args, 0) == NULL || !zg_txn_key_of(zg_arg(args, 0), &k))
			return bad(c, "txn id is not an int");
		j.txn = k.v;
		j.txn_big = k.big;
		j.kind = name[4] == 'f'	  ? ZG_JOB_FINISH
			 : name[4] == 'a' ? ZG_JOB_ABORT
					  : ZG_JOB_VOTE;
		if (j.kind == ZG_JOB_FINISH) {
			pthread_mutex_lock(&c->wmu);
			c->finishing = true;
			pthread_mutex_unlock(&c->wmu);
		}
		return zg_queue(c, &j);
	} else if (strncmp(name, "iterator_", 9) == 0 && zg_iter_call(c, name, mid, ml, args)) {
		/* answered */
	} else if (strcmp(name, "register") == 0) {
		pthread_mutex_lock(&c->wmu);
		zg_reply_error_text(c, mid, ml, "builtins.ValueError", "already registered");
		pthread_mutex_unlock(&c->wmu);
	} else {
		char text[160];
		snprintf(text, sizeof(text), "zap does not serve %.100s", name);
		pthread_mutex_lock(&c->wmu);
		zg_reply_error_text(c, mid, ml, "ZODB.POSException.StorageError", text);
		pthread_mutex_unlock(&c->wmu);
	}
	return !atomic_load(&c->dead);
}

/* register: the first call of a connection; its barrier is a call (zeo_gateway_calls.c). */
static bool do_register(struct zg_conn *c, const struct zeo_val *msgid, const struct zeo_val *args)
{
	struct zg_job j = {0};
	if (!encode_msgid(c, msgid, &j))
		return bad(c, "msgid too large");
	const struct zeo_val *name = zg_arg(args, 0);
	const struct zeo_val *ro = zg_arg(args, 1);
	if (name == NULL || name->type != ZEO_STR)
		return bad(c, "register: bad arguments");
	if (!zeo_val_is_str(name, c->g->storage_name)) {
		char text[160];
		snprintf(text, sizeof(text), "unknown storage: %.*s",
			 (int)(name->s.len > 100 ? 100 : name->s.len), (const char *)name->s.p);
		pthread_mutex_lock(&c->wmu);
		zg_reply_error_text(c, j.msgid, j.msgid_len, "builtins.ValueError", text);
		pthread_mutex_unlock(&c->wmu);
		return !atomic_load(&c->dead);
	}
	j.kind = ZG_JOB_REGISTER;
	j.arg = ro != NULL && zeo_val_truthy(ro);
	return zg_queue(c, &j);
}

/* One decoded message. Returns false when the connection must close. */
static bool dispatch(struct zg_conn *c, const struct zeo_val *m)
{
	if (m->type != ZEO_TUPLE || m->seq.n != 4)
		return bad(c, "message is not a 4-tuple");
	const struct zeo_val *msgid = &m->seq.items[0];
	const struct zeo_val *flag = &m->seq.items[1];
	const struct zeo_val *name = &m->seq.items[2];
	const struct zeo_val *args = &m->seq.items[3];
	int64_t id;
	if (zeo_val_int(msgid, &id) && id == ZG_HEARTBEAT_MSGID)
		return true; /* heartbeat */
	if (name->type != ZEO_STR || name->s.len == 0 || name->s.len > 64)
		return bad(c, "bad method name");
	if (args->type != ZEO_TUPLE && args->type != ZEO_LIST)
		return bad(c, "arguments are not a tuple");
	char nm[65];
	memcpy(nm, name->s.p, name->s.len);
	nm[name->s.len] = 0;
	ZG_COUNT(c->g, messages);
	if (!c->registered) {
		if (strcmp(nm, "register") != 0 || zeo_val_truthy(flag))
			return bad(c, "first call is not register");
		return do_register(c, msgid, args);
	}
	if (zeo_val_truthy(flag))
		return dispatch_async(c, nm, args) ? true : bad(c, "refused one-way call");
	return dispatch_sync(c, msgid, nm, args);
}

/* ------------------------------------------------------------------ connections */

static void send_ruok(struct zg_conn *c)
{
	struct zap_zeo_gateway *g = c->g;
	char body[512];
	int k = snprintf(body, sizeof(body),
			 "{\"%s\": {\"connections\": %u, \"loads\": %" PRIu64
			 ", \"stores\": %" PRIu64 ", \"commits\": %" PRIu64 ", \"aborts\": %" PRIu64
			 ", \"conflicts\": %" PRIu64 ", \"last-transaction\": \"%016" PRIx64 "\"}}",
			 g->storage_name, g->n_conns, zg_cnt(&g->cnt.loads), zg_cnt(&g->cnt.stores),
			 zg_cnt(&g->cnt.commits), zg_cnt(&g->cnt.aborts), zg_cnt(&g->cnt.conflicts),
			 zap_store_last_tid(g->o.store));
	uint8_t prefix[4];
	zap_put_be32(prefix, (uint32_t)k);
	pthread_mutex_lock(&c->wmu);
	if (zg_send_all(c, prefix, sizeof(prefix)) && zg_send_all(c, (const uint8_t *)body, (size_t)k)) {
		c->close_after_output = true;
		if (c->olen == c->ohead)
			zg_conn_kill(c, NULL);
	}
	pthread_mutex_unlock(&c->wmu);
}

/* The client's answer to the server's hello. @return false when the connection must close. */
static bool handshake(struct zg_conn *c, const uint8_t *f, uint32_t n)
{
	if (n == 4 && memcmp(f, "ruok", 4) == 0) {
		send_ruok(c);
		return false;
	}
	if (n != 2 || (f[0] != 'Z' && f[0] != 'M') || f[1] != '5') {
		ZG_COUNT(c->g, handshakes_failed);
		zg_conn_kill(c, "bad handshake answer");
		return false;
	}
	c->enc = f[0] == 'Z' ? ZEO_ENC_PICKLE : ZEO_ENC_MSGPACK;
	c->handshaken = true;
	return true;
}

/* One frame. @return false when the connection must close. */
static bool frame(struct zg_conn *c, const uint8_t *f, uint32_t n)
{
	if (!c->handshaken)
		return handshake(c, f, n);
	struct zeo_val *m;
	const char *err = NULL;
	zeo_arena_reset(&c->arena);
	if (zeo_decode(c->enc, f, n, &c->arena, &m, &err) != 0) {
		char why[160];
		snprintf(why, sizeof(why), "undecodable message: %s", err != NULL ? err : "?");
		return bad(c, why);
	}
	return dispatch(c, m);
}

static bool paused(struct zg_conn *c)
{
	pthread_mutex_lock(&c->wmu);
	bool p = c->paused != 0;
	pthread_mutex_unlock(&c->wmu);
	return p;
}

/* Dispatch the complete frames in c->rbuf while the input is not paused. */
static void frames(struct zg_conn *c)
{
	while (!atomic_load(&c->dead) && c->rlen - c->rpos >= 4 && !paused(c)) {
		uint32_t n = zap_get_be32(c->rbuf + c->rpos);
		if (n > c->g->o.max_message_bytes) {
			bad(c, "frame longer than zeo.max_message_bytes");
			return;
		}
		if (c->rlen - c->rpos - 4 < n)
			break;
		const uint8_t *f = c->rbuf + c->rpos + 4;
		c->rpos += 4 + n;
		if (!frame(c, f, n))
			return;
	}
	/* Keep the partial frame at the start; give a large buffer back. */
	if (c->rpos == c->rlen) {
		c->rpos = c->rlen = 0;
		if (c->rcap > ZG_RBUF_KEEP) {
			free(c->rbuf);
			c->rbuf = NULL;
			c->rcap = 0;
		}
	} else if (c->rpos > 0) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
}

/* Read what the socket has (I/O thread). @return false on end of stream or error. */
static bool conn_read(struct zg_conn *c)
{
	for (;;) {
		/* Room for the frame in progress, or a chunk. */
		uint32_t want = ZG_READ_CHUNK;
		if (c->rlen - c->rpos >= 4) {
			uint64_t need = 4ull + zap_get_be32(c->rbuf + c->rpos) - (c->rlen - c->rpos);
			if (need > want && need <= 4ull + c->g->o.max_message_bytes)
				want = (uint32_t)need;
		}
		if (c->rcap - c->rlen < want) {
			uint64_t cap = c->rcap ? c->rcap : 4096;
			while (cap < (uint64_t)c->rlen + want)
				cap *= 2;
			if (cap > 8ull + c->g->o.max_message_bytes + ZG_READ_CHUNK) {
				bad(c, "frame longer than zeo.max_message_bytes");
				return false;
			}
			uint8_t *b = realloc(c->rbuf, cap);
			if (b == NULL) {
				bad(c, "out of memory");
				return false;
			}
			c->rbuf = b;
			c->rcap = (uint32_t)cap;
		}
		ssize_t k = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
		if (k > 0) {
			c->rlen += (uint32_t)k;
			frames(c);
			if (atomic_load(&c->dead))
				return false;
			if (paused(c))
				return true; /* epoll no longer asks for input */
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		return false;
	}
}

/* Take @p c off its I/O thread's list (io->mu held). */
static void io_unlink(struct zg_io *io, struct zg_conn *c)
{
	if (c->io_prev != NULL)
		c->io_prev->io_next = c->io_next;
	else if (io->conns == c)
		io->conns = c->io_next;
	if (c->io_next != NULL)
		c->io_next->io_prev = c->io_prev;
	c->io_prev = c->io_next = NULL;
}

/* The connection is gone (I/O thread): leave epoll, abort what it prepared, let it go. */
static void conn_close(struct zg_io *io, struct zg_conn *c)
{
	atomic_store(&c->dead, true);
	shutdown(c->fd, SHUT_RDWR);
	epoll_ctl(io->ep, EPOLL_CTL_DEL, c->fd, NULL);
	pthread_mutex_lock(&io->mu);
	io_unlink(io, c);
	pthread_mutex_unlock(&io->mu);
	zg_calls_close(c);
	zg_conn_unref(c);
}

static void conn_event(struct zg_io *io, struct zg_conn *c, uint32_t ev)
{
	bool ok = !atomic_load(&c->dead);
	if (ok && (ev & EPOLLOUT)) {
		pthread_mutex_lock(&c->wmu);
		zg_out_flush(c);
		pthread_mutex_unlock(&c->wmu);
		ok = !atomic_load(&c->dead);
	}
	if (ok && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		ok = conn_read(c) && !atomic_load(&c->dead);
	if (!ok)
		conn_close(io, c);
}

/* Connections a call unpaused: frame what they hold. */
static void io_resume(struct zg_io *io)
{
	pthread_mutex_lock(&io->mu);
	struct zg_conn *list = io->resume;
	io->resume = NULL;
	pthread_mutex_unlock(&io->mu);
	while (list != NULL) {
		struct zg_conn *c = list;
		list = c->resume_next;
		if (!atomic_load(&c->dead)) {
			frames(c);
			/* the socket may hold more than the frames: read on */
			if (!atomic_load(&c->dead) && !paused(c) && !conn_read(c))
				zg_conn_kill(c, NULL);
			pthread_mutex_lock(&c->wmu);
			zg_conn_arm(c);
			pthread_mutex_unlock(&c->wmu);
		}
		zg_conn_unref(c);
	}
}

/* Handshakes that take too long, output that does not move. */
static void io_sweep(struct zg_io *io)
{
	uint64_t now = zg_now_ns();
	pthread_mutex_lock(&io->mu);
	for (struct zg_conn *c = io->conns; c != NULL; c = c->io_next) {
		if (atomic_load(&c->dead))
			continue;
		if (!c->handshaken &&
		    now - c->accepted_ns > (uint64_t)ZG_HANDSHAKE_TIMEOUT_S * 1000000000ull) {
			ZG_COUNT(c->g, handshakes_failed);
			zg_conn_kill(c, "no handshake answer");
			continue;
		}
		pthread_mutex_lock(&c->wmu);
		bool stalled = c->olen > c->ohead &&
			       now - c->out_progress_ns > (uint64_t)ZG_SEND_TIMEOUT_S * 1000000000ull;
		pthread_mutex_unlock(&c->wmu);
		if (stalled)
			zg_conn_kill(c, "the client has not read its socket for 30 s");
	}
	pthread_mutex_unlock(&io->mu);
}

static void *io_main(void *arg)
{
	struct zg_io *io = arg;
	struct zap_zeo_gateway *g = io->g;
	char name[16];
	snprintf(name, sizeof(name), "zeo-io%u", (unsigned)(io - g->io));
	pthread_setname_np(pthread_self(), name);
	if (zg_thread_reader_open(g) != 0)
		fprintf(stderr, "zapd: node %u: zeo I/O thread: no store reader\n", g->o.node_id);
	struct epoll_event ev[64];
	uint64_t next_sweep = zg_now_ns();
	while (!atomic_load(&g->stop)) {
		/* a call running here has timers: look every millisecond */
		int n = epoll_wait(io->ep, ev, 64, io->timer_conns > 0 ? ZG_TICK_MS : ZG_SWEEP_MS);
		bool woken = false;
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == io) {
				uint64_t v;
				if (read(io->wake_fd, &v, sizeof(v)) < 0) {
					/* nothing to read: another event woke us */
				}
				woken = true;
				continue;
			}
			conn_event(io, ev[i].data.ptr, ev[i].events);
		}
		if (woken) {
			zg_calls_inbox(io);
			io_resume(io);
		}
		uint64_t now = zg_now_ns();
		if (io->timer_conns > 0) {
			pthread_mutex_lock(&io->mu);
			struct zg_conn *c = io->conns; /* only this thread unlinks */
			pthread_mutex_unlock(&io->mu);
			for (; c != NULL; c = c->io_next)
				zg_calls_tick(c, now);
		}
		if (now >= next_sweep) {
			io_sweep(io);
			next_sweep = now + ZG_SWEEP_MS * 1000000ull;
		}
	}
	/* Stopping: every connection closes (a prepared transaction is aborted). */
	zg_calls_inbox(io);
	io_resume(io);
	for (;;) {
		pthread_mutex_lock(&io->mu);
		struct zg_conn *c = io->conns;
		pthread_mutex_unlock(&io->mu);
		if (c == NULL)
			break;
		conn_close(io, c);
	}
	zg_calls_inbox(io); /* answers delivered before the channels closed */
	zg_thread_reader_close();
	return NULL;
}

static void conn_start(struct zap_zeo_gateway *g, int fd)
{
	pthread_mutex_lock(&g->mu);
	bool full = g->n_conns >= g->o.max_connections;
	pthread_mutex_unlock(&g->mu);
	if (full) {
		ZG_COUNT(g, connections_refused);
		fprintf(stderr, "zapd: node %u: zeo connection refused: %u connections open\n",
			g->o.node_id, g->o.max_connections);
		close(fd);
		return;
	}
	struct zg_conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return;
	}
	c->g = g;
	c->fd = fd;
	c->enc = g->o.enc;
	c->id = atomic_fetch_add(&g->next_conn_id, 1);
	c->io = &g->io[atomic_fetch_add(&g->next_io, 1) % g->n_io];
	c->accepted_ns = c->out_progress_ns = zg_now_ns();
	atomic_init(&c->refs, 1); /* the I/O thread's */
	pthread_mutex_init(&c->wmu, NULL);
	pthread_mutex_init(&c->tmu, NULL);
	zeo_arena_init(&c->arena);
	zeo_arena_init(&c->harena);
	zeo_buf_init(&c->scratch);
	zeo_buf_init(&c->out);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	pthread_mutex_lock(&g->mu);
	c->next = g->conns;
	g->conns = c;
	g->n_conns++;
	pthread_mutex_unlock(&g->mu);
	ZG_COUNT(g, connections);
	/* The server speaks first: its protocol. */
	uint8_t hello[6] = {0, 0, 0, 2, (uint8_t)g->o.enc, '5'};
	struct zg_io *io = c->io;
	pthread_mutex_lock(&c->wmu);
	bool ok = zg_send_all(c, hello, sizeof(hello));
	c->armed = EPOLLIN | EPOLLRDHUP | (c->olen > c->ohead ? (uint32_t)EPOLLOUT : 0u);
	struct epoll_event e = {.events = c->armed, .data.ptr = c};
	pthread_mutex_unlock(&c->wmu);
	pthread_mutex_lock(&io->mu);
	c->io_next = io->conns;
	if (io->conns != NULL)
		io->conns->io_prev = c;
	io->conns = c;
	pthread_mutex_unlock(&io->mu);
	if (!ok || epoll_ctl(io->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
		pthread_mutex_lock(&io->mu);
		io_unlink(io, c);
		pthread_mutex_unlock(&io->mu);
		atomic_store(&c->dead, true);
		zg_conn_unref(c);
	}
}

static void *acceptor_main(void *arg)
{
	struct zap_zeo_gateway *g = arg;
	pthread_setname_np(pthread_self(), "zeo-accept");
	while (!atomic_load(&g->stop)) {
		struct pollfd p[2];
		unsigned np = 0;
		if (g->tcp_fd >= 0)
			p[np++] = (struct pollfd){.fd = g->tcp_fd, .events = POLLIN};
		if (g->unix_fd >= 0)
			p[np++] = (struct pollfd){.fd = g->unix_fd, .events = POLLIN};
		if (poll(p, np, 200) <= 0)
			continue;
		for (unsigned i = 0; i < np; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			int fd = accept4(p[i].fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd >= 0)
				conn_start(g, fd);
		}
	}
	return NULL;
}

/* ------------------------------------------------------------------ life cycle */

static int listen_tcp(const char *host, uint16_t port)
{
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", port);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *ai;
	if (getaddrinfo(host, ps, &hints, &ai) != 0)
		return -ENOENT;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = fd < 0 ? -errno : 0;
	int one = 1;
	if (rc == 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (rc == 0 && (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0))
		rc = -errno;
	freeaddrinfo(ai);
	if (rc != 0) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	return fd;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	/* Make the socket's directory, as the log directory is made. */
	char dir[sizeof(a.sun_path)];
	strcpy(dir, path);
	for (char *p = dir + 1; *p != 0; p++) {
		if (*p == '/') {
			*p = 0;
			mkdir(dir, 0755);
			*p = '/';
		}
	}
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 64) != 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/** I/O threads when the configuration says 0: one per two cores, 1..4. */
static unsigned auto_io_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned k = n > 1 ? (unsigned)(n / 2) : 1u;
	return k > 4 ? 4 : k;
}

static int io_start(struct zap_zeo_gateway *g, struct zg_io *io)
{
	io->g = g;
	io->ep = epoll_create1(EPOLL_CLOEXEC);
	io->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&io->mu, NULL);
	if (io->ep < 0 || io->wake_fd < 0)
		return -errno;
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = io};
	if (epoll_ctl(io->ep, EPOLL_CTL_ADD, io->wake_fd, &e) != 0)
		return -errno;
	if (pthread_create(&io->thread, NULL, io_main, io) != 0)
		return -EAGAIN;
	io->started = true;
	return 0;
}

int zap_zeo_gateway_start(const struct zap_zeo_gateway_opts *o, struct zap_zeo_gateway **out)
{
	if (o == NULL || out == NULL || o->store == NULL ||
	    o->native_open == NULL || o->native_close == NULL ||
	    (o->tcp_host == NULL && o->unix_path == NULL))
		return -EINVAL;
	struct zap_zeo_gateway *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return -ENOMEM;
	g->o = *o;
	if (g->o.enc != ZEO_ENC_MSGPACK)
		g->o.enc = ZEO_ENC_PICKLE;
	if (g->o.max_connections == 0)
		g->o.max_connections = ZAP_ZEO_DEFAULT_MAX_CONNS;
	if (g->o.max_output_bytes == 0)
		g->o.max_output_bytes = ZAP_ZEO_DEFAULT_MAX_OUTPUT_BYTES;
	if (g->o.max_message_bytes == 0)
		g->o.max_message_bytes = ZAP_ZEO_MAX_FRAME_BYTES;
	if (g->o.max_txn_bytes == 0)
		g->o.max_txn_bytes = ZG_DEFAULT_MAX_TXN_BYTES;
	g->n_io = o->io_threads != 0 ? o->io_threads : auto_io_threads();
	g->tcp_host = dup_or_null(o->tcp_host);
	g->unix_path = dup_or_null(o->unix_path);
	g->storage_name = strdup(o->storage_name != NULL ? o->storage_name : "1");
	g->tcp_fd = g->unix_fd = -1;
	g->start_unix_s = (uint64_t)time(NULL);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* Native txn ids: a per-process random-ish base plus a counter, never 0. */
	g->native_txn_base = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^
			     ((uint64_t)getpid() << 48) ^ ((uint64_t)o->node_id << 56);
	pthread_mutex_init(&g->mu, NULL);
	g->io = calloc(g->n_io, sizeof(*g->io));
	int rc = 0;
	if (g->storage_name == NULL || g->io == NULL)
		rc = -ENOMEM;
	for (unsigned i = 0; g->io != NULL && i < g->n_io; i++)
		g->io[i].ep = g->io[i].wake_fd = -1;
	if (rc == 0 && g->tcp_host != NULL &&
	    (g->tcp_fd = listen_tcp(g->tcp_host, o->tcp_port)) < 0)
		rc = g->tcp_fd;
	if (rc == 0 && g->unix_path != NULL && (g->unix_fd = listen_unix(g->unix_path)) < 0)
		rc = g->unix_fd;
	for (unsigned i = 0; rc == 0 && i < g->n_io; i++)
		rc = io_start(g, &g->io[i]);
	if (rc == 0 && pthread_create(&g->acceptor, NULL, acceptor_main, g) != 0)
		rc = -EAGAIN;
	g->acceptor_started = rc == 0;
	if (rc == 0 && pthread_create(&g->notifier, NULL, notifier_main, g) != 0)
		rc = -EAGAIN;
	g->notifier_started = rc == 0;
	if (rc != 0) {
		zap_zeo_gateway_stop(g);
		return rc;
	}
	*out = g;
	return 0;
}

void zap_zeo_gateway_stop(struct zap_zeo_gateway *g)
{
	if (g == NULL)
		return;
	atomic_store(&g->stop, true);
	if (g->acceptor_started)
		pthread_join(g->acceptor, NULL);
	if (g->notifier_started)
		pthread_join(g->notifier, NULL);
	/* The I/O threads close their connections and abort what was prepared. */
	for (unsigned i = 0; g->io != NULL && i < g->n_io; i++)
		if (g->io[i].started)
			pthread_join(g->io[i].thread, NULL);
	if (g->tcp_fd >= 0)
		close(g->tcp_fd);
	if (g->unix_fd >= 0) {
		close(g->unix_fd);
		unlink(g->unix_path);
	}
	pthread_mutex_lock(&g->mu);
	bool drained = g->n_conns == 0;
	pthread_mutex_unlock(&g->mu);
	if (drained) {
		free(g->tcp_host);
		free(g->unix_path);
		free(g->storage_name);
		for (unsigned i = 0; g->io != NULL && i < g->n_io; i++) {
			if (g->io[i].ep >= 0)
				close(g->io[i].ep);
			if (g->io[i].wake_fd >= 0)
				close(g->io[i].wake_fd);
			pthread_mutex_destroy(&g->io[i].mu);
		}
		free(g->io);
		pthread_mutex_destroy(&g->mu);
		free(g);
	}
	/* else: a connection is still referenced (cannot happen once every I/O
	 * thread has ended); the gateway stays allocated rather than freed under it. */
}

void zap_zeo_gateway_stats(const struct zap_zeo_gateway *g, struct zap_zeo_stats *st)
{
	*st = (struct zap_zeo_stats){
	    .connections = zg_cnt(&g->cnt.connections),
	    .connections_refused = zg_cnt(&g->cnt.connections_refused),
	    .handshakes_failed = zg_cnt(&g->cnt.handshakes_failed),
	    .messages = zg_cnt(&g->cnt.messages),
	    .bad_messages = zg_cnt(&g->cnt.bad_messages),
	    .loads = zg_cnt(&g->cnt.loads),
	    .stores = zg_cnt(&g->cnt.stores),
	    .commits = zg_cnt(&g->cnt.commits),
	    .aborts = zg_cnt(&g->cnt.aborts),
	    .conflicts = zg_cnt(&g->cnt.conflicts),
	    .read_conflicts = zg_cnt(&g->cnt.read_conflicts),
	    .invalidations_sent = zg_cnt(&g->cnt.invalidations_sent),
	    .conflicts_resolved = zg_cnt(&g->cnt.resolved),
	};
	for (unsigned i = 0; i < ZAP_ZEO_LAT_COUNT; i++) {
		st->lat_p50_ns[i] = zg_lat_quantile(&g->lat[i], 0.5, &st->lat_n[i]);
		st->lat_p99_ns[i] = zg_lat_quantile(&g->lat[i], 0.99, NULL);
	}
}
