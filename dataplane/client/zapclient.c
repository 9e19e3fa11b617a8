/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libzapclient (zapclient.h): the native client protocol over one
 * connect()ed kernel UDP socket.
 *
 * One call = one exchange: encode the request body once, send its chunks,
 * wait with poll() until a complete response with our client id and request
 * id has been reassembled, or the per-attempt timeout passes; then resend the
 * same datagrams (same request id), at most `retries` times. Datagrams that
 * do not decode, or that answer an older request (a late reply to a previous
 * attempt of an earlier call), are counted and dropped. An ICMP error
 * reported on the connected socket (ECONNREFUSED, EHOSTUNREACH) ends the
 * attempt early and is the result if no attempt gets an answer.
 *
 * Memory: the transmit buffer grows to the largest request sent; the
 * receive side has one 64 KiB datagram buffer, a reassembler (one buffer per
 * multi-datagram reply, bounded by max_record_bytes plus slack) and a
 * decoder whose arrays are sized at open.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "zapclient.h"
#include "zapclient_async.h"

/** Reassembly slots: the current reply plus late chunks of older ones. */
#define ZAP_CLIENT_REASM_SLOTS 4u
/** Reply bytes beyond the record: result block and history texts. */
#define ZAP_CLIENT_REPLY_SLACK_BYTES (1u << 20)
/** Socket receive buffer asked for, so a burst of reply chunks is not lost. */
#define ZAP_CLIENT_RCVBUF_BYTES (4 << 20)
/** Largest history / changed-oid list accepted in a reply. */
#define ZAP_CLIENT_MAX_ITEMS 65536u

struct zap_client {
	int fd;				 /**< the kernel socket, or -1 with a transport */
	struct zap_client_transport tp;	 /**< used when tp.send is set */
	uint64_t cluster_id;
	uint64_t client_id;
	uint64_t next_request_id;
	struct zap_client_opts opts;
	struct zap_cp_limits lim;
	struct zap_cp_decoder *dec;
	struct zap_cp_reasm *reasm;
	uint8_t *tx_body;
	size_t tx_cap;
	uint8_t *tx_dgram;
	uint8_t *rx_dgram;
	struct zap_client_stats stats;
	/* the call in flight of the non-blocking interface (zapclient_async.h) */
	bool pending;
	struct zap_cp_hdr pending_hdr;
	size_t pending_len;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int random_id(uint64_t *out)
{
	uint64_t v = 0;
	while (v == 0) {
		ssize_t n = getrandom(&v, sizeof(v), 0);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n != (ssize_t)sizeof(v))
			v = 0;
	}
	*out = v;
	return 0;
}

static int connect_udp(const char *host, uint16_t port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_family = AF_UNSPEC};
	struct addrinfo *res = NULL;
	char port_s[8];
	snprintf(port_s, sizeof(port_s), "%u", (unsigned)port);
	if (getaddrinfo(host, port_s, &hints, &res) != 0 || res == NULL)
		return -ENOENT;
	int rc = -EHOSTUNREACH;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			int rcvbuf = ZAP_CLIENT_RCVBUF_BYTES;
			/* best effort: the kernel caps it at rmem_max */
			(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
			freeaddrinfo(res);
			return fd;
		}
		rc = -errno;
		close(fd);
	}
	freeaddrinfo(res);
	return rc;
}

int zap_client_open(const char *host, uint16_t port, uint64_t cluster_id, struct zap_client **out)
{
	return zap_client_open_opts(host, port, cluster_id, NULL, out);
}

/* Everything of a client but its transport. */
static int client_new(uint64_t cluster_id, const struct zap_client_opts *opts,
		      struct zap_client **out)
{
	struct zap_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->fd = -1;
	if (opts != NULL)
		c->opts = *opts;
	if (c->opts.timeout_ms == 0)
		c->opts.timeout_ms = ZAP_CLIENT_DEFAULT_TIMEOUT_MS;
	if (c->opts.retries == 0)
		c->opts.retries = ZAP_CLIENT_DEFAULT_RETRIES;
	if (c->opts.datagram_bytes == 0)
		c->opts.datagram_bytes = ZAP_CP_DEFAULT_DATAGRAM_BYTES;
	if (c->opts.max_record_bytes == 0)
		c->opts.max_record_bytes = ZAP_CLIENT_DEFAULT_MAX_RECORD_BYTES;
	int rc = -EINVAL;
	if (c->opts.datagram_bytes <= ZAP_CP_HDR_BYTES ||
	    c->opts.datagram_bytes > ZAP_CP_MAX_DATAGRAM_BYTES ||
	    c->opts.max_record_bytes > UINT32_MAX - ZAP_CLIENT_REPLY_SLACK_BYTES)
		goto fail;
	c->cluster_id = cluster_id;
	c->next_request_id = 1;
	c->lim.max_record_bytes = c->opts.max_record_bytes;
	c->lim.max_message_bytes = c->opts.max_record_bytes + ZAP_CLIENT_REPLY_SLACK_BYTES;
	c->lim.max_objects = 1; /* replies carry no stores or reads */
	c->lim.max_items = ZAP_CLIENT_MAX_ITEMS;
	if ((rc = random_id(&c->client_id)) != 0)
		goto fail;
	rc = -ENOMEM;
	c->tx_dgram = malloc(c->opts.datagram_bytes);
	c->rx_dgram = malloc(ZAP_CP_MAX_DATAGRAM_BYTES + 1);
	if (c->tx_dgram == NULL || c->rx_dgram == NULL)
		goto fail;
	if ((rc = zap_cp_decoder_create(&c->lim, &c->dec)) != 0 ||
	    (rc = zap_cp_reasm_create(&c->lim, ZAP_CLIENT_REASM_SLOTS, &c->reasm)) != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	zap_client_close(c);
	return rc;
}

int zap_client_open_opts(const char *host, uint16_t port, uint64_t cluster_id,
			 const struct zap_client_opts *opts, struct zap_client **out)
{
	if (host == NULL || out == NULL || port == 0)
		return -EINVAL;
	struct zap_client *c;
	int rc = client_new(cluster_id, opts, &c);
	if (rc != 0)
		return rc;
	c->fd = connect_udp(host, port);
	if (c->fd < 0) {
		rc = c->fd;
		zap_client_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

int zap_client_open_transport(const struct zap_client_transport *t, uint64_t cluster_id,
			      const struct zap_client_opts *opts, struct zap_client **out)
{
	if (t == NULL || t->send == NULL || t->recv == NULL || out == NULL)
		return -EINVAL;
	struct zap_client *c;
	int rc = client_new(cluster_id, opts, &c);
	if (rc != 0)
		return rc;
	c->tp = *t;
	*out = c;
	return 0;
}

void zap_client_close(struct zap_client *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	zap_cp_decoder_destroy(c->dec);
	zap_cp_reasm_destroy(c->reasm);
	free(c->tx_body);
	free(c->tx_dgram);
	free(c->rx_dgram);
	free(c);
}

void zap_client_set_timeout(struct zap_client *c, uint32_t timeout_ms, uint32_t retries)
{
	c->opts.timeout_ms = timeout_ms ? timeout_ms : ZAP_CLIENT_DEFAULT_TIMEOUT_MS;
	c->opts.retries = retries;
}

uint64_t zap_client_id(const struct zap_client *c)
{
	return c->client_id;
}

void zap_client_get_stats(const struct zap_client *c, struct zap_client_stats *st)
{
	*st = c->stats;
}

/* ---------------------------------------------------------------- exchange */

/** Send every chunk of the encoded request. @return 0 or a negative errno. */
static int send_request(struct zap_client *c, const struct zap_cp_hdr *h, size_t body_len)
{
	uint32_t chunk_bytes = c->opts.datagram_bytes - ZAP_CP_HDR_BYTES;
	uint32_t count = zap_cp_chunk_count(body_len, chunk_bytes);
	if (count == 0)
		return -EMSGSIZE;
	for (uint32_t i = 0; i < count; i++) {
		ssize_t n = zap_cp_chunk_encode(h, c->tx_body, body_len, chunk_bytes, i,
						c->tx_dgram, c->opts.datagram_bytes);
		if (n < 0)
			return (int)n;
		if (c->tp.send != NULL) {
			int rc = c->tp.send(c->tp.ctx, c->tx_dgram, (size_t)n);
			if (rc < 0)
				return rc;
		} else if (send(c->fd, c->tx_dgram, (size_t)n, 0) < 0) {
			if (errno == EINTR) {
				i--;
				continue;
			}
			return -errno;
		}
		c->stats.datagrams_sent++;
	}
	return 0;
}

/**
 * One datagram into rx_dgram: its length (> 0), 0 at the deadline, -EAGAIN
 * to try again, or a negative errno.
 */
static ssize_t receive_datagram(struct zap_client *c, uint64_t deadline_ms)
{
	if (c->tp.recv != NULL) {
		long n = c->tp.recv(c->tp.ctx, c->rx_dgram, ZAP_CP_MAX_DATAGRAM_BYTES + 1,
				       deadline_ms * 1000000u);
		return n == 0 && now_ms() < deadline_ms ? -EAGAIN : n;
	}
	uint64_t now = now_ms();
	if (now >= deadline_ms)
		return 0;
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	int pr = poll(&pfd, 1, (int)(deadline_ms - now));
	if (pr < 0)
		return errno == EINTR ? -EAGAIN : -errno;
	if (pr == 0)
		return 0;
	ssize_t n = recv(c->fd, c->rx_dgram, ZAP_CP_MAX_DATAGRAM_BYTES + 1, 0);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? -EAGAIN : -errno;
	return n;
}

/**
 * Receive until a complete reply to @p h arrives (1), the deadline passes
 * (0) or the socket or transport reports an error (negative errno).
 */
static int receive_reply(struct zap_client *c, const struct zap_cp_hdr *h, uint64_t deadline_ms,
			 struct zap_cp_response *resp)
{
	for (;;) {
		ssize_t n = receive_datagram(c, deadline_ms);
		if (n == -EAGAIN)
			continue;
		if (n <= 0)
			return (int)n;
		c->stats.datagrams_received++;
		struct zap_cp_hdr rh;
		if (zap_cp_hdr_decode(c->rx_dgram, (size_t)n, c->cluster_id,
				      c->lim.max_message_bytes, &rh) != 0) {
			c->stats.dropped++;
			continue;
		}
		if (rh.client_id != c->client_id || rh.request_id != h->request_id ||
		    rh.type != h->type + ZAP_CP_RESPONSE_OFFSET) {
			c->stats.stale++;
			continue;
		}
		const void *body;
		size_t len;
		int rc = zap_cp_reasm_push(c->reasm, &rh, c->rx_dgram, (size_t)n, &body, &len);
		if (rc == -ENOMEM)
			return rc;
		if (rc != 1)
			continue;
		if (zap_cp_response_decode(c->dec, &rh, body, len, resp) != 0) {
			c->stats.dropped++;
			continue;
		}
		return 1;
	}
}

static int status_errno(uint16_t status)
{
	switch (status) {
	case ZAP_CP_OK:
		return 0;
	case ZAP_CP_NOT_FOUND:
		return -ENOENT;
	case ZAP_CP_CONFLICT:
		return ZAP_CLIENT_E_CONFLICT;
	case ZAP_CP_READ_CONFLICT:
		return ZAP_CLIENT_E_READ_CONFLICT;
	case ZAP_CP_UNAVAILABLE:
		return -EHOSTUNREACH;
	case ZAP_CP_BAD_REQUEST:
		return -EINVAL;
	case ZAP_CP_TOO_LARGE:
		return -EMSGSIZE;
	case ZAP_CP_STALE_REQUEST:
		return -ESTALE;
	case ZAP_CP_UNKNOWN_TXN:
		return -ESRCH;
	case ZAP_CP_DUPLICATE_TXN:
		return -EEXIST;
	case ZAP_CP_BUSY:
		return -EBUSY;
	case ZAP_CP_ABORTED:
		return -ECANCELED;
	case ZAP_CP_NOT_PREPARED:
		return -EINPROGRESS;
	case ZAP_CP_STORE_FULL:
		return -ENOSPC;
	case ZAP_CP_STORE_ERROR:
		return -EIO;
	case ZAP_CP_OIDS_EXHAUSTED:
		return -EOVERFLOW;
	default:
		return ZAP_CLIENT_E_PROTOCOL;
	}
}

/**
 * One exchange: @p q (type and body fields set) gets a fresh request id,
 * is sent and resent until @p resp holds its reply.
 * @return the reply status as a result code (status_errno), or -ETIMEDOUT /
 *   a socket error / -EMSGSIZE / -ENOMEM.
 */
/* Give @p q this client's ids and a fresh request id; encode its body into tx_body. */
static int encode_request(struct zap_client *c, struct zap_cp_request *q, size_t *out_len)
{
	q->hdr.client_id = c->client_id;
	q->hdr.request_id = c->next_request_id++;
	q->hdr.cluster_id = c->cluster_id;
	size_t len = zap_cp_request_size(q);
	if (len == 0 && q->hdr.type != ZAP_CP_LAST_TID && q->hdr.type != ZAP_CP_SYNC)
		return -EMSGSIZE;
	if (len > c->tx_cap) {
		uint8_t *nb = realloc(c->tx_body, len);
		if (nb == NULL)
			return -ENOMEM;
		c->tx_body = nb;
		c->tx_cap = len;
	}
	if (len != 0 && zap_cp_request_encode(q, c->tx_body, c->tx_cap) != (ssize_t)len)
		return -EMSGSIZE;
	*out_len = len;
	return 0;
}

static int call(struct zap_client *c, struct zap_cp_request *q, struct zap_cp_response *resp)
{
	size_t len;
	int erc = encode_request(c, q, &len);
	if (erc != 0)
		return erc;
	c->stats.requests++;
	int last_err = -ETIMEDOUT;
	for (uint32_t attempt = 0; attempt <= c->opts.retries; attempt++) {
		if (attempt > 0)
			c->stats.retries++;
		uint64_t deadline = now_ms() + c->opts.timeout_ms;
		int rc = send_request(c, &q->hdr, len);
		if (rc == -EMSGSIZE || rc == -ENOMEM)
			return rc;
		if (rc == 0)
			rc = receive_reply(c, &q->hdr, deadline, resp);
		if (rc == 1)
			return status_errno(resp->status);
		if (rc == -ENOMEM)
			return rc;
		if (rc < 0) {
			last_err = rc;
			/* an ICMP error came back early: wait out the attempt anyway, so
			 * a node that is restarting has the timeout to come back */
			uint64_t now = now_ms();
			if (now < deadline)
				poll(NULL, 0, (int)(deadline - now));
		}
	}
	return last_err;
}

/* ---------------------------------------------------------------- non-blocking */

int zap_client_start(struct zap_client *c, struct zap_cp_request *q)
{
	size_t len;
	c->pending = false;
	int rc = encode_request(c, q, &len);
	if (rc != 0)
		return rc;
	c->stats.requests++;
	c->pending = true;
	c->pending_hdr = q->hdr;
	c->pending_len = len;
	rc = send_request(c, &q->hdr, len);
	return rc == -EMSGSIZE || rc == -ENOMEM ? rc : 0; /* a lost send is resent */
}

int zap_client_resend(struct zap_client *c)
{
	if (!c->pending)
		return -EINVAL;
	c->stats.retries++;
	int rc = send_request(c, &c->pending_hdr, c->pending_len);
	return rc == -EMSGSIZE || rc == -ENOMEM ? rc : 0;
}

int zap_client_feed(struct zap_client *c, const void *dgram, size_t n, struct zap_cp_response *resp)
{
	if (!c->pending || n > ZAP_CP_MAX_DATAGRAM_BYTES)
		return 0;
	c->stats.datagrams_received++;
	struct zap_cp_hdr rh;
	if (zap_cp_hdr_decode(dgram, n, c->cluster_id, c->lim.max_message_bytes, &rh) != 0) {
		c->stats.dropped++;
		return 0;
	}
	const struct zap_cp_hdr *h = &c->pending_hdr;
	if (rh.client_id != c->client_id || rh.request_id != h->request_id ||
	    rh.type != h->type + ZAP_CP_RESPONSE_OFFSET) {
		c->stats.stale++;
		return 0;
	}
	/* the reassembler keeps what it needs: a copy, as receive_datagram's buffer */
	memcpy(c->rx_dgram, dgram, n);
	const void *body;
	size_t len;
	int rc = zap_cp_reasm_push(c->reasm, &rh, c->rx_dgram, n, &body, &len);
	if (rc == -ENOMEM)
		return rc;
	if (rc != 1)
		return 0;
	if (zap_cp_response_decode(c->dec, &rh, body, len, resp) != 0) {
		c->stats.dropped++;
		return 0;
	}
	c->pending = false;
	return 1;
}

int zap_client_status(uint16_t status)
{
	return status_errno(status);
}

uint32_t zap_client_timeout_ms(const struct zap_client *c)
{
	return c->opts.timeout_ms;
}

static void fill_conflict(const struct zap_cp_response *r, int rc, struct zap_client_conflict *cf)
{
	if (cf == NULL || (rc != ZAP_CLIENT_E_CONFLICT && rc != ZAP_CLIENT_E_READ_CONFLICT))
		return;
	cf->oid = r->oid;
	cf->serial = r->serial;
	cf->base_serial = r->base_serial;
}

/* ---------------------------------------------------------------- calls */

static int load_common(struct zap_client *c, struct zap_cp_request *q,
		       struct zap_client_record *out)
{
	struct zap_cp_response r;
	int rc = call(c, q, &r);
	if (rc != 0)
		return rc;
	out->data = r.data;
	out->len = r.len;
	out->serial = r.serial;
	out->next_serial = r.next_serial;
	return 0;
}

int zap_client_load(struct zap_client *c, uint64_t oid, int sync, struct zap_client_record *out)
{
	struct zap_cp_request q = {.hdr.type = ZAP_CP_LOAD, .oid = oid};
	if (oid == ZAP_CP_BAD_OID || out == NULL)
		return -EINVAL;
	q.hdr.flags = sync ? ZAP_CP_FLAG_SYNC : 0;
	return load_common(c, &q, out);
}

int zap_client_load_before(struct zap_client *c, uint64_t oid, uint64_t tid,
			   struct zap_client_record *out)
{
	struct zap_cp_request q = {.hdr.type = ZAP_CP_LOAD_BEFORE, .oid = oid, .tid = tid};
	if (oid == ZAP_CP_BAD_OID || out == NULL)
		return -EINVAL;
	return load_common(c, &q, out);
}

int zap_client_history(struct zap_client *c, uint64_t oid, uint32_t max,
		       const struct zap_cp_hist **entries, uint32_t *n)
{
	struct zap_cp_request q = {.hdr.type = ZAP_CP_HISTORY, .oid = oid, .count = max};
	struct zap_cp_response r;
	if (oid == ZAP_CP_BAD_OID || max == 0 || max > ZAP_CLIENT_MAX_ITEMS || entries == NULL ||
	    n == NULL)
		return -EINVAL;
	int rc = call(c, &q, &r);
	if (rc != 0)
		return rc;
	*entries = r.hist;
	*n = r.count;
	return 0;
}

int zap_client_last_tid(struct zap_client *c, int sync, uint64_t *tid)
{
	struct zap_cp_request q = {.hdr.type = ZAP_CP_LAST_TID};
	struct zap_cp_response r;
	q.hdr.flags = sync ? ZAP_CP_FLAG_SYNC : 0;
	int rc = call(c, &q, &r);
	if (rc == 0 && tid != NULL)
		*tid = r.tid;
	return rc;
}

int zap_client_new_oids(struct zap_client *c, uint32_t count, uint64_t *first, uint32_t *n)
{
	struct zap_cp_request q = {.hdr.type = ZAP_CP_NEW_OIDS, .count = count};
	struct zap_cp_response r;
	if (count == 0 || count > ZAP_CP_MAX_NEW_OIDS || first == NULL || n == NULL)
		return -EINVAL;
	int rc = call(c, &q, &r);
	if (rc != 0)
		return rc;
	*first = r.oid;
	*n = r.count;
	return 0;
}

static void txn_request(const struct zap_client_txn *t, struct zap_cp_request *q)
{
	q->txn_id = t->txn_id;
	q->text = t->text;
	q->stores = t->stores;
	q->n_stores = t->n_stores;
	q->reads = t->reads;
	q->n_reads = t->n_reads;
}

int zap_client_commit_oneshot(struct zap_client *c, const struct zap_client_txn *t, uint64_t *tid,
			      struct zap_client_conflict *conflict)
{
	struct zap_cp_request q = {.hdr.type = ZAP_CP_COMMIT_ONESHOT};
	struct zap_cp_response r;
	if (t == NULL)
		return -EINVAL;
	txn_request(t, &q);
	if (q.txn_id == 0)
		q.txn_id = c->client_id ^ (c->next_request_id << 1 | 1);
	int rc = call(c, &q, &r);
	fill_conflict(&r, rc, conflict);
	if (rc == 0 && tid != NULL)
		*tid = r.tid;
	return rc;
}

int zap_client_prepare(struct zap_client *c, const struct zap_client_txn *t,
		       struct zap_client_conflict *conflict)
{
	struct zap_cp_request q = {.hdr.type = ZAP_CP_PREPARE};
	struct zap_cp_response r;
	if (t == NULL || t->txn_id == 0)
		return -EINVAL;
	txn_request(t, &q);
	int rc = call(c, &q, &r);
	fill_conflict(&r, rc, conflict);
	return rc;
}

int zap_client_commit(struct zap_client *c, uint64_t txn_id, uint64_t *tid)
{
	return zap_client_commit_at(c, txn_id, 0, tid);
}

int zap_client_commit_at(struct zap_client *c, uint64_t txn_id, uint64_t want_tid, uint64_t *tid)
{
	struct zap_cp_request q = {.hdr.type = ZAP_CP_COMMIT, .txn_id = txn_id, .tid = want_tid};
	struct zap_cp_response r;
	if (txn_id == 0)
		return -EINVAL;
	int rc = call(c, &q, &r);
	if (rc == 0 && tid != NULL)
		*tid = r.tid;
	return rc;
}

int zap_client_abort(struct zap_client *c, uint64_t txn_id)
{
	struct zap_cp_request q = {.hdr.type = ZAP_CP_ABORT, .txn_id = txn_id};
	struct zap_cp_response r;
	if (txn_id == 0)
		return -EINVAL;
	return call(c, &q, &r);
}

int zap_client_changes_since(struct zap_client *c, uint64_t tid, uint32_t max,
			     struct zap_client_changes *out)
{
	struct zap_cp_request q = {.hdr.type = ZAP_CP_CHANGES_SINCE, .tid = tid, .count = max};
	struct zap_cp_response r;
	if (max == 0 || max > ZAP_CLIENT_MAX_ITEMS || out == NULL)
		return -EINVAL;
	int rc = call(c, &q, &r);
	if (rc != 0)
		return rc;
	out->oids = r.oids;
	out->n_oids = r.count;
	out->tid = r.tid;
	out->too_old = (r.rflags & ZAP_CP_RFLAG_TOO_OLD) != 0;
	out->truncated = (r.rflags & ZAP_CP_RFLAG_TRUNCATED) != 0;
	return 0;
}

int zap_client_pack(struct zap_client *c, uint64_t pack_tid, uint64_t *packed_tid)
{
	struct zap_cp_request q = {.hdr.type = ZAP_CP_PACK, .tid = pack_tid};
	struct zap_cp_response r;
	if (pack_tid == 0)
		return -EINVAL;
	int rc = call(c, &q, &r);
	if (rc == 0 && packed_tid != NULL)
		*packed_tid = r.tid;
	return rc;
}

int zap_client_sync(struct zap_client *c, uint64_t *tid)
{
	struct zap_cp_request q = {.hdr.type = ZAP_CP_SYNC};
	struct zap_cp_response r;
	int rc = call(c, &q, &r);
	if (rc == 0 && tid != NULL)
		*tid = r.tid;
	return rc;
}

const char *zap_client_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case ZAP_CLIENT_E_CONFLICT:
		return "conflict: the object changed since it was read";
	case ZAP_CLIENT_E_READ_CONFLICT:
		return "read conflict: a readCurrent object changed";
	case ZAP_CLIENT_E_PROTOCOL:
		return "protocol error: the reply does not fit the request";
	case -ETIMEDOUT:
		return "timed out: no answer after the retries";
	case -ENOENT:
		return "not found";
	case -EHOSTUNREACH:
		return "cluster unavailable";
	case -ECONNREFUSED:
		return "connection refused: nothing listens at the address";
	case -EMSGSIZE:
		return "too large";
	case -EINVAL:
		return "invalid argument or bad request";
	case -ESTALE:
		return "stale request id";
	case -ESRCH:
		return "unknown transaction";
	case -EEXIST:
		return "transaction id already in use";
	case -EBUSY:
		return "busy: too many transactions in flight";
	case -ECANCELED:
		return "transaction aborted";
	case -EINPROGRESS:
		return "transaction vote still waiting";
	case -ENOSPC:
		return "store full";
	case -EIO:
		return "store error";
	case -EOVERFLOW:
		return "oids exhausted";
	case -ENOMEM:
		return "out of memory";
	default:
		return err < 0 && err > -4096 ? strerror(-err) : "unknown error";
	}
}
