/* SPDX-License-Identifier: Apache-2.0 */
#include "zeo_bench_client.h"
#include "bench_tcp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "zeo/zeo_codec.h"

#define ENC ZEO_ENC_PICKLE
#define MAX_MSG (64u << 20)

struct zeob {
	int fd;
	int64_t msgid;
	uint64_t txn;
	uint64_t last_tid;
	struct zeo_buf out;
	uint8_t *in;
	size_t in_cap;
	struct zeo_arena arena;
};

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;
	while (n > 0) {
		ssize_t r = recv(fd, b, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -ECONNRESET;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Frame and send what is in z->out (written after 4 reserved bytes). */
static int send_msg(struct zeob *z)
{
	if (z->out.oom)
		return -ENOMEM;
	uint32_t len = (uint32_t)(z->out.len - 4);
	z->out.p[0] = (uint8_t)(len >> 24);
	z->out.p[1] = (uint8_t)(len >> 16);
	z->out.p[2] = (uint8_t)(len >> 8);
	z->out.p[3] = (uint8_t)len;
	return write_all(z->fd, z->out.p, z->out.len);
}

static void begin_msg(struct zeob *z)
{
	static const uint8_t zero[4];
	zeo_buf_reset(&z->out);
	zeo_buf_put(&z->out, zero, 4);
	zeo_w_begin(&z->out, ENC);
}

/* Read one frame into z->in; *len its payload length. */
static int read_frame(struct zeob *z, size_t *len)
{
	uint8_t h[4];
	int rc = read_all(z->fd, h, 4);
	if (rc < 0)
		return rc;
	uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	if (n > MAX_MSG)
		return -EMSGSIZE;
	if (n > z->in_cap) {
		uint8_t *p = realloc(z->in, n);
		if (!p)
			return -ENOMEM;
		z->in = p;
		z->in_cap = n;
	}
	*len = n;
	return read_all(z->fd, z->in, n);
}

/*
 * Read messages until the reply to the call in flight; server calls in
 * between are dropped. *@p val the reply's value, *@p err 1 for an error reply.
 */
static int read_reply(struct zeob *z, const struct zeo_val **val, int *err)
{
	for (;;) {
		size_t len;
		int rc = read_frame(z, &len);
		if (rc < 0)
			return rc;
		zeo_arena_reset(&z->arena);
		struct zeo_val *m;
		const char *why;
		rc = zeo_decode(ENC, z->in, len, &z->arena, &m, &why);
		if (rc < 0) {
			fprintf(stderr, "zeo: undecodable message: %s\n", why);
			return -EPROTO;
		}
		if (m->type != ZEO_TUPLE || m->seq.n != 4)
			return -EPROTO;
		if (!zeo_val_is_str(&m->seq.items[2], ".reply"))
			continue; /* invalidateTransaction, info, ... */
		int64_t flag = 0;
		zeo_val_int(&m->seq.items[1], &flag);
		*err = flag == 2;
		*val = &m->seq.items[3];
		return 0;
	}
}

/* Start a call message: (msgid, async, name, args...) up to the args tuple. */
static void call_begin(struct zeob *z, const char *name, uint32_t nargs, int async)
{
	begin_msg(z);
	zeo_w_tuple_begin(&z->out, ENC, 4);
	if (async)
		zeo_w_int(&z->out, ENC, 0);
	else
		zeo_w_int(&z->out, ENC, ++z->msgid);
	zeo_w_bool(&z->out, ENC, async != 0);
	zeo_w_cstr(&z->out, ENC, name);
	zeo_w_tuple_begin(&z->out, ENC, nargs);
}

static int call_end(struct zeob *z, uint32_t nargs)
{
	zeo_w_tuple_end(&z->out, ENC, nargs);
	zeo_w_tuple_end(&z->out, ENC, 4);
	zeo_w_end(&z->out, ENC);
	return send_msg(z);
}

/*
 * A TCP connection whose connect() waits at most @p timeout_ms, and whose
 * reads and writes time out after as long (a server that accepts and then
 * never answers, or whose listen backlog is full, cannot hang the caller).
 */
static int connect_timeout(const char *host, uint16_t port, int timeout_ms)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(host, ps, &hints, &ai) != 0)
		return -ENOENT;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		int e = -errno;
		freeaddrinfo(ai);
		return e;
	}
	int rc = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : -errno;
	freeaddrinfo(ai);
	if (rc == -EINPROGRESS) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int n;
		do {
			n = poll(&p, 1, timeout_ms);
		} while (n < 0 && errno == EINTR);
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (n == 0)
			rc = -ETIMEDOUT;
		else if (n < 0)
			rc = -errno;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			rc = -errno;
		else
			rc = -soerr;
	}
	if (rc == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
		rc = -errno;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int zeob_open_timeout(const char *host, uint16_t port, int timeout_ms, struct zeob **out)
{
	int fd = timeout_ms > 0 ? connect_timeout(host, port, timeout_ms)
				: bench_tcp_connect(host, port);
	if (fd < 0)
		return fd;
	struct zeob *z = calloc(1, sizeof(*z));
	if (!z) {
		close(fd);
		return -ENOMEM;
	}
	z->fd = fd;
	zeo_buf_init(&z->out);
	zeo_arena_init(&z->arena);
	size_t len;
	int rc = read_frame(z, &len);
	if (rc == 0 && (len != 2 || z->in[0] != 'Z' || z->in[1] != '5'))
		rc = -EPROTONOSUPPORT; /* an M5 server: this client speaks Z5 only */
	if (rc == 0)
		rc = write_all(fd, "\0\0\0\2Z5", 6);
	if (rc == 0) {
		call_begin(z, "register", 2, 0);
		zeo_w_cstr(&z->out, ENC, "1");
		zeo_w_bool(&z->out, ENC, false);
		rc = call_end(z, 2);
	}
	const struct zeo_val *v;
	int err = 0;
	if (rc == 0)
		rc = read_reply(z, &v, &err);
	if (rc == 0 && (err || !zeo_val_u64be(v, &z->last_tid)))
		rc = ZEOB_E_SERVER;
	if (rc == -EAGAIN || rc == -EWOULDBLOCK)
		rc = -ETIMEDOUT; /* SO_RCVTIMEO / SO_SNDTIMEO ran out */
	if (rc < 0) {
		zeob_close(z);
		return rc;
	}
	*out = z;
	return 0;
}

int zeob_open(const char *host, uint16_t port, struct zeob **out)
{
	return zeob_open_timeout(host, port, 0, out);
}

void zeob_close(struct zeob *z)
{
	if (!z)
		return;
	close(z->fd);
	zeo_buf_free(&z->out);
	zeo_arena_free(&z->arena);
	free(z->in);
	free(z);
}

int zeob_fd(const struct zeob *z)
{
	return z->fd;
}

uint64_t zeob_last_tid(const struct zeob *z)
{
	return z->last_tid;
}

int zeob_load_before(struct zeob *z, uint64_t oid, uint64_t before, uint32_t *len, uint64_t *serial)
{
	/* the msgid of loadBefore is the tuple (oid, tid) */
	begin_msg(z);
	zeo_w_tuple_begin(&z->out, ENC, 4);
	zeo_w_tuple_begin(&z->out, ENC, 2);
	zeo_w_u64be(&z->out, ENC, oid);
	zeo_w_u64be(&z->out, ENC, before);
	zeo_w_tuple_end(&z->out, ENC, 2);
	zeo_w_bool(&z->out, ENC, false);
	zeo_w_cstr(&z->out, ENC, "loadBefore");
	zeo_w_tuple_begin(&z->out, ENC, 2);
	zeo_w_u64be(&z->out, ENC, oid);
	zeo_w_u64be(&z->out, ENC, before);
	int rc = call_end(z, 2);
	const struct zeo_val *v;
	int err = 0;
	if (rc == 0)
		rc = read_reply(z, &v, &err);
	if (rc < 0)
		return rc;
	if (err || v->type == ZEO_NONE)
		return ZEOB_E_NOTFOUND;
	if (v->type != ZEO_TUPLE || v->seq.n != 3 || v->seq.items[0].type != ZEO_BYTES ||
	    !zeo_val_u64be(&v->seq.items[1], serial))
		return -EPROTO;
	*len = v->seq.items[0].s.len;
	return 0;
}

int zeob_new_oids(struct zeob *z, uint64_t *oids, uint32_t max, uint32_t *n)
{
	call_begin(z, "new_oids", 0, 0);
	int rc = call_end(z, 0);
	const struct zeo_val *v;
	int err = 0;
	if (rc == 0)
		rc = read_reply(z, &v, &err);
	if (rc < 0)
		return rc;
	if (err || (v->type != ZEO_LIST && v->type != ZEO_TUPLE))
		return ZEOB_E_SERVER;
	*n = 0;
	for (uint32_t i = 0; i < v->seq.n && *n < max; i++)
		if (zeo_val_u64be(&v->seq.items[i], &oids[*n]))
			(*n)++;
	return 0;
}

/* A sync call with one int argument (the txn id). */
static int txn_call(struct zeob *z, const char *name, const struct zeo_val **v, int *err)
{
	call_begin(z, name, 1, 0);
	zeo_w_uint(&z->out, ENC, z->txn);
	int rc = call_end(z, 1);
	if (rc == 0)
		rc = read_reply(z, v, err);
	return rc;
}

/* The committed serial from a conflict dict or a ConflictError payload. */
static uint64_t committed_serial(const struct zeo_val *d)
{
	const struct zeo_val *s = zeo_dict_get(d, "serials");
	uint64_t v = 0;
	if (s && (s->type == ZEO_TUPLE || s->type == ZEO_LIST) && s->seq.n >= 1)
		zeo_val_u64be(&s->seq.items[0], &v);
	return v;
}

/* tpc_begin of a new transaction (one-way). */
static int begin_txn(struct zeob *z)
{
	z->txn++;
	call_begin(z, "tpc_begin", 6, 1);
	zeo_w_uint(&z->out, ENC, z->txn);
	zeo_w_bytes(&z->out, ENC, "", 0);
	zeo_w_bytes(&z->out, ENC, "zap-bench", 9);
	zeo_w_dict_begin(&z->out, ENC, 0);
	zeo_w_dict_end(&z->out, ENC, 0);
	zeo_w_none(&z->out, ENC);
	zeo_w_cstr(&z->out, ENC, " ");
	return call_end(z, 6);
}

/* storea(oid, serial, data, txn) and storeBlobEnd: the same arguments. */
static int store_call(struct zeob *z, const char *name, uint64_t oid, uint64_t serial,
		      const void *data, uint32_t len)
{
	call_begin(z, name, 4, 1);
	zeo_w_u64be(&z->out, ENC, oid);
	zeo_w_u64be(&z->out, ENC, serial);
	zeo_w_bytes(&z->out, ENC, data, len);
	zeo_w_uint(&z->out, ENC, z->txn);
	return call_end(z, 4);
}

/* vote, then tpc_finish (or tpc_abort after a failed vote). */
static int vote_finish(struct zeob *z, uint64_t *tid, uint64_t *conflict_serial)
{
	const struct zeo_val *v;
	int err = 0;
	int rc = txn_call(z, "vote", &v, &err);
	if (rc < 0)
		return rc;
	int result = 0;
	if (err) {
		/* (class_name, payload) */
		result = ZEOB_E_SERVER;
		if (v->type == ZEO_TUPLE && v->seq.n == 2 && v->seq.items[0].type == ZEO_STR &&
		    v->seq.items[0].s.len >= 13 &&
		    memmem(v->seq.items[0].s.p, v->seq.items[0].s.len, "ConflictError", 13)) {
			result = ZEOB_E_CONFLICT;
			if (conflict_serial)
				*conflict_serial = committed_serial(&v->seq.items[1]);
		}
	} else if ((v->type == ZEO_LIST || v->type == ZEO_TUPLE) && v->seq.n > 0) {
		result = ZEOB_E_CONFLICT;
		for (uint32_t i = 0; i < v->seq.n; i++)
			if (v->seq.items[i].type == ZEO_DICT && conflict_serial)
				*conflict_serial = committed_serial(&v->seq.items[i]);
	}
	if (result != 0) {
		rc = txn_call(z, "tpc_abort", &v, &err);
		return rc < 0 ? rc : result;
	}
	rc = txn_call(z, "tpc_finish", &v, &err);
	if (rc < 0)
		return rc;
	if (err || !zeo_val_u64be(v, tid))
		return ZEOB_E_SERVER;
	return 0;
}

int zeob_commit(struct zeob *z, const struct zeob_store *st, uint32_t n, uint64_t *tid,
		uint64_t *conflict_serial)
{
	int rc = begin_txn(z);
	for (uint32_t i = 0; rc == 0 && i < n; i++)
		rc = store_call(z, "storea", st[i].oid, st[i].serial, st[i].data, st[i].len);
	if (rc < 0)
		return rc;
	return vote_finish(z, tid, conflict_serial);
}

int zeob_commit_blob(struct zeob *z, uint64_t oid, const void *pickle, uint32_t plen, uint64_t size,
		     zeob_blob_fill_fn fill, void *arg, uint64_t *tid)
{
	uint8_t *chunk = malloc(ZEOB_BLOB_CHUNK);
	if (!chunk)
		return -ENOMEM;
	/* as ClientStorage.storeBlob: the plain store first, then the upload */
	int rc = begin_txn(z);
	if (rc == 0)
		rc = store_call(z, "storea", oid, 0, pickle, plen);
	if (rc == 0) {
		call_begin(z, "storeBlobStart", 0, 1);
		rc = call_end(z, 0);
	}
	for (uint64_t off = 0; rc == 0 && off < size;) {
		size_t n = size - off < ZEOB_BLOB_CHUNK ? (size_t)(size - off) : ZEOB_BLOB_CHUNK;
		fill(arg, off, chunk, n);
		call_begin(z, "storeBlobChunk", 1, 1);
		zeo_w_bytes(&z->out, ENC, chunk, n);
		rc = call_end(z, 1);
		off += n;
	}
	free(chunk);
	if (rc == 0)
		rc = store_call(z, "storeBlobEnd", oid, 0, pickle, plen);
	if (rc < 0)
		return rc;
	return vote_finish(z, tid, NULL);
}

/* The (oid, serial) of a receiveBlob* message's arguments is the one asked for. */
static bool blob_args_match(const struct zeo_val *a, uint32_t n, uint64_t oid, uint64_t serial)
{
	uint64_t o2, s2;
	return (a->type == ZEO_TUPLE || a->type == ZEO_LIST) && a->seq.n == n &&
	       zeo_val_u64be(&a->seq.items[0], &o2) && zeo_val_u64be(&a->seq.items[1], &s2) &&
	       o2 == oid && s2 == serial;
}

int zeob_send_blob(struct zeob *z, uint64_t oid, uint64_t serial, zeob_blob_check_fn check,
		   void *arg, uint64_t *size)
{
	call_begin(z, "sendBlob", 2, 0);
	zeo_w_u64be(&z->out, ENC, oid);
	zeo_w_u64be(&z->out, ENC, serial);
	int rc = call_end(z, 2);
	if (rc < 0)
		return rc;
	enum { WAIT_START, CHUNKS, STOPPED } st = WAIT_START;
	bool bad = false;
	uint64_t off = 0;
	for (;;) {
		size_t len;
		rc = read_frame(z, &len);
		if (rc < 0)
			return rc;
		zeo_arena_reset(&z->arena);
		struct zeo_val *m;
		const char *why;
		if (zeo_decode(ENC, z->in, len, &z->arena, &m, &why) < 0) {
			fprintf(stderr, "zeo: undecodable message: %s\n", why);
			return -EPROTO;
		}
		if (m->type != ZEO_TUPLE || m->seq.n != 4)
			return -EPROTO;
		const struct zeo_val *name = &m->seq.items[2], *a = &m->seq.items[3];
		if (zeo_val_is_str(name, ".reply")) {
			int64_t flag = 0;
			zeo_val_int(&m->seq.items[1], &flag);
			*size = off;
			if (flag == 2)
				return st == WAIT_START ? ZEOB_E_SERVER : ZEOB_E_MISMATCH;
			/* O7: the reply comes after receiveBlobStop */
			return bad || st != STOPPED ? ZEOB_E_MISMATCH : 0;
		}
		if (zeo_val_is_str(name, "receiveBlobStart")) {
			if (st != WAIT_START || !blob_args_match(a, 2, oid, serial))
				bad = true;
			st = CHUNKS;
		} else if (zeo_val_is_str(name, "receiveBlobChunk")) {
			if (st != CHUNKS || !blob_args_match(a, 3, oid, serial) ||
			    a->seq.items[2].type != ZEO_BYTES) {
				bad = true;
				continue;
			}
			const struct zeo_val *ch = &a->seq.items[2];
			if (check(arg, off, ch->s.p, ch->s.len) != 0)
				bad = true;
			off += ch->s.len;
		} else if (zeo_val_is_str(name, "receiveBlobStop")) {
			if (st != CHUNKS || !blob_args_match(a, 2, oid, serial))
				bad = true;
			st = STOPPED;
		}
		/* invalidateTransaction, info, ...: dropped */
	}
}
