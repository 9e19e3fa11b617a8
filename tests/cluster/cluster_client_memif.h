/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap-cluster-client-memif: the memif transport of zap-cluster-client
 * (cluster_client.c): open a client over a memif port to a node's client
 * port ($ZAP_MEMIF_SOCKET), and inject malformed frames into that port.
 */
#ifndef ZAP_CLUSTER_CLIENT_MEMIF_H
#define ZAP_CLUSTER_CLIENT_MEMIF_H

#include <stdint.h>

#include "client/zapclient.h"

/** Start the memif transport to @p ip : @p port and open a client over it. @return 0 or -errno. */
int cc_memif_open(const char *ip, uint16_t port, uint64_t cluster_id, struct zap_client **out);
/** @p n malformed frames of each kind; prints what the node must count. @return 0, 1 on error. */
int cc_memif_inject(unsigned n);
/** Stop the transport. */
void cc_memif_close(void);

#endif
