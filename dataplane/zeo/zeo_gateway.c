/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO gateway (zeo_gateway.h), the top layer: listeners, connections,
 * framing, handshake, the notifier of the invalidation feed and the dispatch
 * of each call to the file that serves it (zeo_gateway_core.h lists the
 * layers below: replies and the invalidation flush in zeo_gateway_core.c,
 * reads in zeo_gateway_read.c, the transaction in zeo_gateway_txn.c and
 * zeo_gateway_worker.c, ...).
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
#define ZG_NOTIFY_BUSY_US 200
#define ZG_NOTIFY_IDLE_US 1000
#define ZG_NOTIFY_IDLE_ROUNDS 500
#define ZG_NEW_OIDS_DEFAULT 100

/** The msgid of the client's heartbeat, which is never answered. */
#define ZG_HEARTBEAT_MSGID (-1)

/* ------------------------------------------------------------------ the notifier */

static void *notifier_main(void *arg)
{
	struct zap_zeo_gateway *g = arg;
	unsigned idle = 0;
	uint64_t seen = 0;
	while (!atomic_load(&g->stop)) {
		uint64_t last = zap_store_last_tid(g->o.store);
		bool work = last != seen;
		pthread_mutex_lock(&g->mu);
		for (struct zg_conn *c = g->conns; c != NULL; c = c->next) {
			if (atomic_load(&c->dead))
				continue;
			pthread_mutex_lock(&c->wmu);
			if (c->registered && !c->finishing && c->inval_tid < last)
				zg_flush_invalidations(c, last, 0);
			pthread_mutex_unlock(&c->wmu);
		}
		pthread_mutex_unlock(&g->mu);
		seen = last;
		idle = work ? 0 : idle + 1;
		zg_sleep_us(idle > ZG_NOTIFY_IDLE_ROUNDS ? ZG_NOTIFY_IDLE_US : ZG_NOTIFY_BUSY_US);
	}
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
		/* pack(t, wait): t in seconds since the epoch; the worker clamps the
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

/* register: the first call of a connection, served by the reader itself. */
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
	uint64_t tid;
	int rc = zg_barrier(c, &tid);
	if (rc != 0) {
		/* No quorum reachable: the client tries its other addresses. */
		zg_conn_kill(c, "register: read barrier failed");
		return false;
	}
	pthread_mutex_lock(&c->wmu);
	c->read_only = ro != NULL && zeo_val_truthy(ro);
	c->inval_tid = zap_store_last_tid(c->g->o.store);
	c->registered = true;
	zg_reply_tid(c, j.msgid, j.msgid_len, c->inval_tid);
	pthread_mutex_unlock(&c->wmu);
	if (!zg_worker_start(c)) {
		zg_conn_kill(c, "cannot start the worker thread");
		return false;
	}
	return !atomic_load(&c->dead);
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

static bool recv_all(struct zg_conn *c, void *p, size_t len)
{
	uint8_t *b = p;
	while (len > 0) {
		ssize_t k = recv(c->fd, b, len, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		b += k;
		len -= (size_t)k;
	}
	return true;
}

/* Read one frame into c->rbuf. @return its length, or -1. */
static int64_t recv_frame(struct zg_conn *c)
{
	uint8_t prefix[4];
	if (!recv_all(c, prefix, sizeof(prefix)))
		return -1;
	uint32_t n = zap_get_be32(prefix);
	if (n > ZAP_ZEO_MAX_FRAME_BYTES) {
		bad(c, "frame longer than the gateway accepts");
		return -1;
	}
	if (n > c->rcap) {
		uint32_t cap = c->rcap ? c->rcap : 4096;
		while (cap < n)
			cap *= 2;
		uint8_t *p = realloc(c->rbuf, cap);
		if (p == NULL) {
			bad(c, "out of memory");
			return -1;
		}
		c->rbuf = p;
		c->rcap = cap;
	}
	if (n > 0 && !recv_all(c, c->rbuf, n))
		return -1;
	return n;
}

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
	if (zg_send_all(c, prefix, sizeof(prefix)))
		zg_send_all(c, (const uint8_t *)body, (size_t)k);
	pthread_mutex_unlock(&c->wmu);
}

static bool handshake(struct zg_conn *c)
{
	uint8_t hello[6] = {0, 0, 0, 2, (uint8_t)c->g->o.enc, '5'};
	pthread_mutex_lock(&c->wmu);
	bool ok = zg_send_all(c, hello, sizeof(hello));
	pthread_mutex_unlock(&c->wmu);
	if (!ok)
		return false;
	struct timeval tv = {ZG_HANDSHAKE_TIMEOUT_S, 0};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int64_t n = recv_frame(c);
	if (n == 4 && memcmp(c->rbuf, "ruok", 4) == 0) {
		send_ruok(c);
		return false;
	}
	if (n != 2 || (c->rbuf[0] != 'Z' && c->rbuf[0] != 'M') || c->rbuf[1] != '5') {
		ZG_COUNT(c->g, handshakes_failed);
		zg_conn_kill(c, n < 0 ? "no handshake answer" : "bad handshake answer");
		return false;
	}
	c->enc = c->rbuf[0] == 'Z' ? ZEO_ENC_PICKLE : ZEO_ENC_MSGPACK;
	tv.tv_sec = 0;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return true;
}

static void conn_free(struct zg_conn *c)
{
	if (c->zc != NULL)
		zap_client_close(c->zc);
	if (c->rd != NULL)
		zap_store_reader_close(c->rd);
	pthread_mutex_lock(&c->tmu);
	zg_txn_clear(&c->txn);
	pthread_mutex_unlock(&c->tmu);
	zg_iters_free(c);
	zeo_arena_free(&c->arena);
	zeo_arena_free(&c->harena);
	zeo_buf_free(&c->scratch);
	zeo_buf_free(&c->out);
	free(c->rbuf);
	close(c->fd);
	pthread_mutex_destroy(&c->wmu);
	pthread_mutex_destroy(&c->tmu);
	pthread_mutex_destroy(&c->qmu);
	pthread_cond_destroy(&c->qcv);
	free(c);
}

static void *reader_main(void *arg)
{
	struct zg_conn *c = arg;
	struct zap_zeo_gateway *g = c->g;
	if (handshake(c)) {
		for (;;) {
			int64_t n = recv_frame(c);
			if (n < 0 || atomic_load(&c->dead))
				break;
			struct zeo_val *m;
			const char *err = NULL;
			zeo_arena_reset(&c->arena);
			int rc = zeo_decode(c->enc, c->rbuf, (size_t)n, &c->arena, &m, &err);
			if (rc != 0) {
				char why[160];
				snprintf(why, sizeof(why), "undecodable message: %s",
					 err != NULL ? err : "?");
				bad(c, why);
				break;
			}
			if (!dispatch(c, m))
				break;
		}
	}
	atomic_store(&c->dead, true);
	shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_lock(&c->qmu);
	c->qclosed = true;
	pthread_cond_broadcast(&c->qcv);
	pthread_mutex_unlock(&c->qmu);
	if (c->worker_started)
		pthread_join(c->worker, NULL);
	pthread_mutex_lock(&g->mu);
	for (struct zg_conn **pp = &g->conns; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			g->n_conns--;
			break;
		}
	}
	pthread_mutex_unlock(&g->mu);
	conn_free(c);
	return NULL;
}

static void conn_start(struct zap_zeo_gateway *g, int fd)
{
	struct zg_conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return;
	}
	c->g = g;
	c->fd = fd;
	c->enc = g->o.enc;
	c->id = atomic_fetch_add(&g->next_conn_id, 1);
	pthread_mutex_init(&c->wmu, NULL);
	pthread_mutex_init(&c->tmu, NULL);
	pthread_mutex_init(&c->qmu, NULL);
	pthread_cond_init(&c->qcv, NULL);
	zeo_arena_init(&c->arena);
	zeo_arena_init(&c->harena);
	zeo_buf_init(&c->scratch);
	zeo_buf_init(&c->out);
	struct timeval tv = {ZG_SEND_TIMEOUT_S, 0};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	struct zap_client_opts zo = {.timeout_ms = 500, .retries = 3};
	pthread_mutex_lock(&g->mu);
	bool full = g->n_conns >= ZAP_ZEO_MAX_CONNS;
	pthread_mutex_unlock(&g->mu);
	if (full || zap_store_reader_open(g->o.store, &c->rd) != 0 ||
	    zap_client_open_opts(g->native_host, g->o.native_port, g->o.cluster_id, &zo, &c->zc) !=
		0) {
		ZG_COUNT(g, connections_refused);
		fprintf(stderr, "zapd: node %u: zeo connection refused: %s\n", g->o.node_id,
			full ? "connection limit reached"
			     : "no store reader or native client left");
		conn_free(c);
		return;
	}
	pthread_mutex_lock(&g->mu);
	c->next = g->conns;
	g->conns = c;
	g->n_conns++;
	pthread_mutex_unlock(&g->mu);
	ZG_COUNT(g, connections);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&c->reader, &at, reader_main, c) != 0) {
		pthread_mutex_lock(&g->mu);
		for (struct zg_conn **pp = &g->conns; *pp != NULL; pp = &(*pp)->next) {
			if (*pp == c) {
				*pp = c->next;
				g->n_conns--;
				break;
			}
		}
		pthread_mutex_unlock(&g->mu);
		conn_free(c);
	}
	pthread_attr_destroy(&at);
}

static void *acceptor_main(void *arg)
{
	struct zap_zeo_gateway *g = arg;
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
			int fd = accept(p[i].fd, NULL, NULL);
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

int zap_zeo_gateway_start(const struct zap_zeo_gateway_opts *o, struct zap_zeo_gateway **out)
{
	if (o == NULL || out == NULL || o->store == NULL || o->native_host == NULL ||
	    o->native_port == 0 || (o->tcp_host == NULL && o->unix_path == NULL))
		return -EINVAL;
	struct zap_zeo_gateway *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return -ENOMEM;
	g->o = *o;
	if (g->o.enc != ZEO_ENC_MSGPACK)
		g->o.enc = ZEO_ENC_PICKLE;
	g->tcp_host = dup_or_null(o->tcp_host);
	g->unix_path = dup_or_null(o->unix_path);
	g->native_host = strdup(o->native_host);
	g->storage_name = strdup(o->storage_name != NULL ? o->storage_name : "1");
	g->tcp_fd = g->unix_fd = -1;
	g->start_unix_s = (uint64_t)time(NULL);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* Native txn ids: a per-process random-ish base plus a counter, never 0. */
	g->native_txn_base = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^
			     ((uint64_t)getpid() << 48) ^ ((uint64_t)o->node_id << 56);
	pthread_mutex_init(&g->mu, NULL);
	int rc = 0;
	if (g->native_host == NULL || g->storage_name == NULL)
		rc = -ENOMEM;
	if (rc == 0 && g->tcp_host != NULL &&
	    (g->tcp_fd = listen_tcp(g->tcp_host, o->tcp_port)) < 0)
		rc = g->tcp_fd;
	if (rc == 0 && g->unix_path != NULL && (g->unix_fd = listen_unix(g->unix_path)) < 0)
		rc = g->unix_fd;
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
	/* Close every connection and wait (bounded) for their threads to leave. */
	for (int i = 0; i < 200; i++) {
		pthread_mutex_lock(&g->mu);
		unsigned n = g->n_conns;
		for (struct zg_conn *c = g->conns; c != NULL; c = c->next)
			zg_conn_kill(c, NULL);
		pthread_mutex_unlock(&g->mu);
		if (n == 0)
			break;
		zg_sleep_us(10000);
	}
	if (g->tcp_fd >= 0)
		close(g->tcp_fd);
	if (g->unix_fd >= 0) {
		close(g->unix_fd);
		unlink(g->unix_path);
	}
	pthread_mutex_lock(&g->mu);
	bool drained = g->n_conns == 0;
	pthread_mutex_unlock(&g->mu);
	free(g->tcp_host);
	free(g->unix_path);
	free(g->native_host);
	free(g->storage_name);
	if (drained) {
		pthread_mutex_destroy(&g->mu);
		free(g);
	}
	/* else: a connection thread still runs; the gateway stays allocated. */
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
}
