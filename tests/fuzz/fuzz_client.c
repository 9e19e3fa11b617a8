/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: native client protocol datagrams. Whatever the bytes,
 * the header decoder, the reassembler and the body decoders either reject
 * them or accept a message that re-encodes to the same body bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct zap_cp_decoder *dec;
	static struct zap_cp_reasm *ra;
	static uint8_t out[1 << 20];
	if (dec == NULL) {
		struct zap_cp_limits lim = {.max_message_bytes = 1u << 20,
					    .max_record_bytes = 1u << 20};
		if (zap_cp_decoder_create(&lim, &dec) != 0 ||
		    zap_cp_reasm_create(&lim, 8, &ra) != 0)
			abort();
	}
	struct zap_cp_hdr h;
	/* accept the cluster the datagram claims, so the fuzzer reaches the body */
	uint64_t cluster = 0;
	for (size_t i = 24; i < 32 && i < size; i++)
		cluster = cluster << 8 | data[i];
	if (zap_cp_hdr_decode(data, size, cluster, 1u << 20, &h) != 0)
		return 0;
	const void *body;
	size_t len;
	if (zap_cp_reasm_push(ra, &h, data, size, &body, &len) != 1)
		return 0;
	if (h.type < ZAP_CP_REQUEST_FIRST + ZAP_CP_RESPONSE_OFFSET) {
		struct zap_cp_request q;
		if (zap_cp_request_decode(dec, &h, body, len, &q) == 0) {
			ssize_t n = zap_cp_request_encode(&q, out, sizeof(out));
			if (n != (ssize_t)len || (len != 0 && memcmp(out, body, len) != 0))
				abort();
		}
	} else {
		struct zap_cp_response r;
		if (zap_cp_response_decode(dec, &h, body, len, &r) == 0) {
			ssize_t n = zap_cp_response_encode(&r, out, sizeof(out));
			if (n != (ssize_t)len || memcmp(out, body, len) != 0)
				abort();
		}
	}
	return 0;
}
