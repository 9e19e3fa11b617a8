/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: replication frames (dataplane/wire/wire.c). Two modes,
 * picked by the first input byte:
 *  - even: the rest is a received frame. Decoding either drops it with a
 *    known reason, counted once, or accepts it with a payload inside it.
 *  - odd: the rest describes a message (header fields, then payload). It is
 *    encoded, must decode to itself, and then one byte chosen by the input
 *    is changed: the result decodes to the same message or is a counted
 *    drop.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/wire.h"

#define FUZZ_FIELDS_BYTES 64

static const uint8_t fuzz_secret[32] = "zap wire fuzz secret, 32 bytes!";

static struct zap_wire_ctx *ctx_for(uint16_t self)
{
	struct zap_wire_node nodes[3];
	memset(nodes, 0, sizeof(nodes));
	for (unsigned i = 0; i < 3; i++) {
		nodes[i].id = (uint16_t)(i + 1);
		nodes[i].mac[0] = 2;
		nodes[i].mac[5] = (uint8_t)(i + 1);
		nodes[i].ipv4_be = 0x0100000au + ((uint32_t)i << 24); /* 10.0.0.(i+1) */
		nodes[i].udp_port = (uint16_t)(7001 + i);
	}
	struct zap_wire_params p = {.cluster_id = 42,
				    .secret = fuzz_secret,
				    .secret_len = sizeof(fuzz_secret),
				    .self = self,
				    .nodes = nodes,
				    .n_nodes = 3};
	struct zap_wire_ctx *w;
	if (zap_wire_ctx_create(&p, &w) != 0)
		abort();
	return w;
}

static uint64_t take64(const uint8_t *b)
{
	uint64_t v;
	memcpy(&v, b, sizeof(v));
	return v;
}

static int same(const struct zap_paxos_msg *a, const struct zap_paxos_msg *b)
{
	return a->type == b->type && a->flags == b->flags && a->from == b->from && a->to == b->to &&
	       a->epoch == b->epoch && a->ballot == b->ballot && a->slot == b->slot &&
	       a->commit == b->commit && a->vballot == b->vballot && a->value_len == b->value_len &&
	       a->offset == b->offset && a->id == b->id && a->len == b->len &&
	       (a->len == 0 || memcmp(a->payload, b->payload, a->len) == 0);
}

/* Decode; check the counters moved as the return says. Returns the decode result. */
static int decode_checked(struct zap_wire_ctx *w, const uint8_t *f, size_t len,
			  struct zap_paxos_msg *out)
{
	struct zap_wire_stats before, after;
	zap_wire_stats(w, &before);
	int rc = zap_wire_decode_paxos(w, f, len, 0, out);
	zap_wire_stats(w, &after);
	if (rc == 0) {
		const uint8_t *p = out->payload;
		if (after.frames_decoded != before.frames_decoded + 1 ||
		    (out->len > 0 && (p < f || p + out->len > f + len)))
			abort();
		return 0;
	}
	int r = zap_wire_errno_drop(rc);
	if (r < 0 || after.dropped[r] != before.dropped[r] + 1 ||
	    after.frames_dropped != before.frames_dropped + 1)
		abort();
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct zap_wire_ctx *tx, *rx;
	static uint8_t frame[ZAP_WIRE_OVERHEAD_BYTES + ZAP_WIRE_MTU1500_PAYLOAD_BYTES];
	if (tx == NULL) {
		tx = ctx_for(1);
		rx = ctx_for(2);
	}
	if (size < 1)
		return 0;
	struct zap_paxos_msg out;
	if ((data[0] & 1) == 0) {
		/* a copy exactly as long as the input, so ASan sees any overread */
		uint8_t *f = malloc(size - 1 ? size - 1 : 1);
		if (f == NULL)
			abort();
		memcpy(f, data + 1, size - 1);
		decode_checked(rx, f, size - 1, &out);
		free(f);
		return 0;
	}
	if (size < 1 + FUZZ_FIELDS_BYTES)
		return 0;
	const uint8_t *d = data + 1;
	struct zap_paxos_msg m = {
	    .type = (uint8_t)(ZAP_PAXOS_MSG_PREPARE + d[0] % (ZAP_PAXOS_MSG_TYPE_COUNT - 1)),
	    .flags = d[1],
	    .from = 1,
	    .to = 2,
	    .epoch = (uint32_t)take64(d + 2),
	    .ballot = take64(d + 8),
	    .slot = take64(d + 16),
	    .commit = take64(d + 24),
	    .vballot = take64(d + 32),
	    .value_len = take64(d + 40),
	    .offset = take64(d + 48),
	    .id = take64(d + 56),
	};
	size_t rest = size - 1 - FUZZ_FIELDS_BYTES;
	m.len = (uint32_t)(rest < zap_wire_max_payload(tx) ? rest : zap_wire_max_payload(tx));
	m.payload = m.len ? d + FUZZ_FIELDS_BYTES : NULL;
	int n = zap_wire_encode_paxos(tx, &m, frame, sizeof(frame));
	if (n != (int)zap_wire_frame_len(m.len))
		abort();
	if (decode_checked(rx, frame, (size_t)n, &out) != 0 || !same(&m, &out))
		abort();
	/* change one byte, chosen by the input, to a value chosen by the input */
	size_t at = (size_t)(m.ballot ^ m.slot) % (size_t)n;
	uint8_t x = (uint8_t)(d[1] | 1);
	frame[at] ^= x;
	if (decode_checked(rx, frame, (size_t)n, &out) == 0 && !same(&m, &out))
		abort();
	return 0;
}
