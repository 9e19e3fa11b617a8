/* SPDX-License-Identifier: Apache-2.0 */
#include "etcd_bench_client.h"
#include "bench_tcp.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define REQ_MAX (1u << 20)
#define IN_MAX (1u << 20)

struct etcdb {
	int fd;
	char host[64];
	char *req;
	char *body;
	char *in; /* received bytes not consumed yet: in[0 .. in_len) */
	size_t in_len;
};

static size_t b64(const uint8_t *p, size_t n, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = t[(v >> 18) & 63];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = 0;
	return o;
}

int etcdb_open(const char *host, uint16_t port, struct etcdb **out)
{
	int fd = bench_tcp_connect(host, port);
	if (fd < 0)
		return fd;
	struct etcdb *e = calloc(1, sizeof(*e));
	if (!e || !(e->req = malloc(REQ_MAX)) || !(e->body = malloc(REQ_MAX)) ||
	    !(e->in = malloc(IN_MAX + 1))) {
		close(fd);
		if (e) {
			free(e->req);
			free(e->body);
		}
		free(e);
		return -ENOMEM;
	}
	e->fd = fd;
	snprintf(e->host, sizeof(e->host), "%s:%u", host, port);
	*out = e;
	return 0;
}

void etcdb_close(struct etcdb *e)
{
	if (!e)
		return;
	close(e->fd);
	free(e->req);
	free(e->body);
	free(e->in);
	free(e);
}

static int fill(struct etcdb *e)
{
	if (e->in_len >= IN_MAX)
		return -EMSGSIZE;
	for (;;) {
		ssize_t r = recv(e->fd, e->in + e->in_len, IN_MAX - e->in_len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ECONNRESET;
		e->in_len += (size_t)r;
		e->in[e->in_len] = 0;
		return 0;
	}
}

static void consume(struct etcdb *e, size_t n)
{
	memmove(e->in, e->in + n, e->in_len - n);
	e->in_len -= n;
	e->in[e->in_len] = 0;
}

/* Read one response; return its status code or a negative errno. */
static int read_response(struct etcdb *e)
{
	char *end;
	while (!(end = strstr(e->in, "\r\n\r\n"))) {
		int rc = fill(e);
		if (rc < 0)
			return rc;
	}
	size_t hlen = (size_t)(end - e->in) + 4;
	int status = 0;
	if (sscanf(e->in, "HTTP/1.%*d %d", &status) != 1)
		return -EPROTO;
	long clen = -1;
	int chunked = 0;
	for (char *l = strstr(e->in, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n")) {
		char *h = l + 2;
		if (strncasecmp(h, "Content-Length:", 15) == 0)
			clen = strtol(h + 15, NULL, 10);
		else if (strncasecmp(h, "Transfer-Encoding:", 18) == 0 && strstr(h, "chunked") &&
			 strstr(h, "chunked") < strstr(h, "\r\n"))
			chunked = 1;
	}
	consume(e, hlen);
	if (!chunked) {
		if (clen < 0)
			return -EPROTO;
		while (e->in_len < (size_t)clen) {
			int rc = fill(e);
			if (rc < 0)
				return rc;
		}
		consume(e, (size_t)clen);
		return status;
	}
	for (;;) {
		char *le;
		while (!(le = strstr(e->in, "\r\n"))) {
			int rc = fill(e);
			if (rc < 0)
				return rc;
		}
		size_t sz = strtoul(e->in, NULL, 16);
		size_t need = (size_t)(le - e->in) + 2 + sz + 2;
		while (e->in_len < need) {
			int rc = fill(e);
			if (rc < 0)
				return rc;
		}
		consume(e, need);
		if (sz == 0)
			return status;
	}
}

static int post(struct etcdb *e, const char *path, size_t blen)
{
	int n = snprintf(e->req, REQ_MAX,
			 "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n",
			 path, e->host, blen);
	if (n < 0 || (size_t)n + blen > REQ_MAX)
		return -EMSGSIZE;
	memcpy(e->req + n, e->body, blen);
	size_t len = (size_t)n + blen, off = 0;
	while (off < len) {
		ssize_t w = send(e->fd, e->req + off, len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		off += (size_t)w;
	}
	int st = read_response(e);
	if (st < 0)
		return st;
	return st == 200 ? 0 : -EPROTO;
}

int etcdb_put(struct etcdb *e, const void *key, size_t klen, const void *val, size_t vlen)
{
	if ((klen + vlen) * 4 / 3 + 64 > REQ_MAX / 2)
		return -EMSGSIZE;
	size_t n = (size_t)sprintf(e->body, "{\"key\":\"");
	n += b64(key, klen, e->body + n);
	n += (size_t)sprintf(e->body + n, "\",\"value\":\"");
	n += b64(val, vlen, e->body + n);
	n += (size_t)sprintf(e->body + n, "\"}");
	return post(e, "/v3/kv/put", n);
}

int etcdb_get(struct etcdb *e, const void *key, size_t klen, int linearizable)
{
	if (klen * 4 / 3 + 64 > REQ_MAX / 2)
		return -EMSGSIZE;
	size_t n = (size_t)sprintf(e->body, "{\"key\":\"");
	n += b64(key, klen, e->body + n);
	n += (size_t)sprintf(e->body + n, "\",\"serializable\":%s}",
			     linearizable ? "false" : "true");
	return post(e, "/v3/kv/range", n);
}
