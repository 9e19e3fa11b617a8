/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap-bench: one blocking TCP connection with TCP_NODELAY, shared by the
 * ZEO and etcd load generators.
 */
#ifndef ZAP_BENCH_TCP_H
#define ZAP_BENCH_TCP_H

#include <stdint.h>

/** Connect to @p host:@p port. @return the socket; -ENOENT no such host; -errno. */
int bench_tcp_connect(const char *host, uint16_t port);

#endif /* ZAP_BENCH_TCP_H */
