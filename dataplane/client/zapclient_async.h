/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libzapclient, the non-blocking interface: for an event loop that owns its
 * transport's input (the node's ZEO gateway). One call in flight per client:
 * zap_client_start() encodes a request (a fresh request id) and sends it;
 * the loop hands every datagram that arrives for this client to
 * zap_client_feed() until it returns 1, and calls zap_client_resend() when
 * its own timer says the attempt is lost (the same request id: the node's
 * session answers a request it already applied with the recorded result).
 * The transport's recv is never called. Not exported by libzapclient.so.
 */
#ifndef ZAP_ZAPCLIENT_ASYNC_H
#define ZAP_ZAPCLIENT_ASYNC_H

#include <stddef.h>
#include <stdint.h>

#include "client_proto.h"
#include "zapclient.h"

/**
 * Send @p q (type and body fields set; ids are filled in). The bodies @p q
 * points to may go once this returns.
 * @return 0 (sent, or to be resent); -EMSGSIZE; -ENOMEM.
 */
int zap_client_start(struct zap_client *c, struct zap_cp_request *q);
/** Send the call in flight again. @return 0; -EINVAL none in flight; -EMSGSIZE; -ENOMEM. */
int zap_client_resend(struct zap_client *c);
/**
 * One datagram from the transport. @return 1 when it completed the reply
 * to the call in flight (@p resp valid until the next call on @p c); 0 when
 * it did not (another chunk, a stale or foreign reply, garbage: counted);
 * -ENOMEM.
 */
int zap_client_feed(struct zap_client *c, const void *dgram, size_t n, struct zap_cp_response *resp);
/** A reply status as the blocking calls return it (0, ZAP_CLIENT_E_*, -errno). */
int zap_client_status(uint16_t status);
/** The per-attempt timeout the client was opened with. */
uint32_t zap_client_timeout_ms(const struct zap_client *c);

#endif /* ZAP_ZAPCLIENT_ASYNC_H */
