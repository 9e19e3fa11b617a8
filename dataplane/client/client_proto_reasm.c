/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap native client protocol: reassembly of messages that span several
 * datagrams (client_proto.h). Chunks keyed by (client id, request id, type)
 * land at index * chunk_bytes in a per-message buffer; a bitmap drops
 * duplicates, a message whose chunks disagree is dropped, and the oldest
 * partial message is evicted when every slot is busy. One buffer per
 * multi-datagram message, never more than max_message_bytes.
 *
 * Threading: a reassembler belongs to the thread that receives datagrams.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client_proto.h"

/* ---------------------------------------------------------------- reassembly */

struct reasm_slot {
	int in_use;
	int done; /* completed and handed out: freed on the next push */
	uint64_t client_id;
	uint64_t request_id;
	uint8_t type;
	uint16_t chunk_count;
	uint32_t chunk_bytes;
	uint32_t total_bytes;
	uint32_t received;
	uint64_t stamp;
	uint8_t *buf;
	uint8_t *bitmap;
};

struct zap_cp_reasm {
	struct zap_cp_limits lim;
	uint32_t n_slots;
	uint64_t clock;
	uint64_t evictions;
	struct reasm_slot slots[];
};

int zap_cp_reasm_create(const struct zap_cp_limits *lim, uint32_t slots, struct zap_cp_reasm **out)
{
	if (slots == 0 || slots > 65536)
		return -EINVAL;
	struct zap_cp_reasm *r = calloc(1, sizeof(*r) + (size_t)slots * sizeof(r->slots[0]));
	if (r == NULL)
		return -ENOMEM;
	zap_cp_limits_fill(lim, &r->lim);
	r->n_slots = slots;
	*out = r;
	return 0;
}

static void slot_free(struct reasm_slot *s)
{
	free(s->buf);
	free(s->bitmap);
	memset(s, 0, sizeof(*s));
}

void zap_cp_reasm_destroy(struct zap_cp_reasm *r)
{
	if (r == NULL)
		return;
	for (uint32_t i = 0; i < r->n_slots; i++)
		slot_free(&r->slots[i]);
	free(r);
}

uint64_t zap_cp_reasm_evictions(const struct zap_cp_reasm *r)
{
	return r->evictions;
}

void zap_cp_reasm_release(struct zap_cp_reasm *r)
{
	for (uint32_t i = 0; i < r->n_slots; i++)
		if (r->slots[i].done)
			slot_free(&r->slots[i]);
}

uint64_t zap_cp_reasm_held_bytes(const struct zap_cp_reasm *r)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < r->n_slots; i++)
		if (r->slots[i].buf != NULL)
			n += r->slots[i].total_bytes;
	return n;
}

static struct reasm_slot *slot_find(struct zap_cp_reasm *r, const struct zap_cp_hdr *h)
{
	for (uint32_t i = 0; i < r->n_slots; i++) {
		struct reasm_slot *s = &r->slots[i];
		if (s->in_use && s->client_id == h->client_id && s->request_id == h->request_id &&
		    s->type == h->type)
			return s;
	}
	return NULL;
}

static struct reasm_slot *slot_claim(struct zap_cp_reasm *r)
{
	struct reasm_slot *oldest = &r->slots[0];
	for (uint32_t i = 0; i < r->n_slots; i++) {
		struct reasm_slot *s = &r->slots[i];
		if (!s->in_use)
			return s;
		if (s->stamp < oldest->stamp)
			oldest = s;
	}
	r->evictions++;
	slot_free(oldest);
	return oldest;
}

int zap_cp_reasm_push(struct zap_cp_reasm *r, const struct zap_cp_hdr *h, const void *dgram,
		      size_t dgram_len, const void **body, size_t *len)
{
	zap_cp_reasm_release(r);
	const uint8_t *chunk = (const uint8_t *)dgram + ZAP_CP_HDR_BYTES;
	size_t n = dgram_len - ZAP_CP_HDR_BYTES;
	if (h->chunk_count == 1) {
		*body = chunk;
		*len = n;
		return 1;
	}
	if (h->total_bytes > r->lim.max_message_bytes)
		return -EMSGSIZE;
	struct reasm_slot *s = slot_find(r, h);
	if (s != NULL && (s->chunk_count != h->chunk_count || s->chunk_bytes != h->chunk_bytes ||
			  s->total_bytes != h->total_bytes)) {
		slot_free(s);
		return -EILSEQ;
	}
	if (s == NULL) {
		s = slot_claim(r);
		s->buf = malloc(h->total_bytes);
		s->bitmap = calloc(((size_t)h->chunk_count + 7) / 8, 1);
		if (s->buf == NULL || s->bitmap == NULL) {
			slot_free(s);
			return -ENOMEM;
		}
		s->in_use = 1;
		s->client_id = h->client_id;
		s->request_id = h->request_id;
		s->type = h->type;
		s->chunk_count = h->chunk_count;
		s->chunk_bytes = h->chunk_bytes;
		s->total_bytes = h->total_bytes;
	}
	s->stamp = ++r->clock;
	uint8_t bit = (uint8_t)(1u << (h->chunk_index & 7));
	if (s->bitmap[h->chunk_index / 8] & bit)
		return -EALREADY;
	s->bitmap[h->chunk_index / 8] |= bit;
	memcpy(s->buf + (size_t)h->chunk_index * s->chunk_bytes, chunk, n);
	if (++s->received < s->chunk_count)
		return 0;
	s->done = 1;
	*body = s->buf;
	*len = s->total_bytes;
	return 1;
}
