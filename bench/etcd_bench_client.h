/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * A keep-alive HTTP/1.1 client of etcd's v3 JSON gateway, for the etcd
 * baseline: POST /v3/kv/put and POST /v3/kv/range with base64 keys and
 * values, over one plain TCP connection per client. Responses are read to
 * their end (Content-Length or chunked) and judged by the status code.
 */
#ifndef ZAP_BENCH_ETCD_CLIENT_H
#define ZAP_BENCH_ETCD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct etcdb;

int etcdb_open(const char *host, uint16_t port, struct etcdb **out);
void etcdb_close(struct etcdb *e);
/** Put @p key = @p val. @return 0; -EPROTO a non-200 answer; -errno. */
int etcdb_put(struct etcdb *e, const void *key, size_t klen, const void *val, size_t vlen);
/**
 * Range (get) of one key: serializable (the member's local state, as a zap
 * node answers a load), or @p linearizable (etcd's read index, as zap's
 * SYNC load). @return 0; -EPROTO a non-200 answer; -errno.
 */
int etcdb_get(struct etcdb *e, const void *key, size_t klen, int linearizable);

#endif /* ZAP_BENCH_ETCD_CLIENT_H */
