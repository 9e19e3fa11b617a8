/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap oid set: the duplicate finder of the decoders (log entries, native
 * client requests). An open-addressing table of 64-bit keys that is emptied
 * in O(1): a slot is live when its stamp equals the set's generation, so
 * reset only steps the generation (and clears the stamps once every 2^32
 * resets, when the generation wraps).
 *
 * Header-only and free of dependencies but base/mix.h, so libzapclient can
 * carry it without the rest of the core. Threading: a set belongs to the
 * thread of the decoder that owns it.
 */
#ifndef ZAP_BASE_OIDSET_H
#define ZAP_BASE_OIDSET_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mix.h"

struct zap_oidset {
	uint64_t *keys;
	uint32_t *stamps;
	uint64_t mask; /* slots - 1 */
	uint32_t gen;
};

/** Room for max_keys keys at most half full; 0, or -1 when out of memory. */
static inline int zap_oidset_init(struct zap_oidset *s, uint64_t max_keys)
{
	uint64_t slots = 16;
	while (slots < 2 * max_keys && slots < (1ull << 40))
		slots <<= 1;
	s->mask = slots - 1;
	s->gen = 1;
	s->keys = calloc(slots, sizeof(*s->keys));
	s->stamps = calloc(slots, sizeof(*s->stamps));
	if (s->keys == NULL || s->stamps == NULL) {
		free(s->keys);
		free(s->stamps);
		s->keys = NULL;
		s->stamps = NULL;
		return -1;
	}
	return 0;
}

static inline void zap_oidset_free(struct zap_oidset *s)
{
	free(s->keys);
	free(s->stamps);
	s->keys = NULL;
	s->stamps = NULL;
}

/** Empty the set. */
static inline void zap_oidset_reset(struct zap_oidset *s)
{
	if (++s->gen == 0) {
		memset(s->stamps, 0, (s->mask + 1) * sizeof(*s->stamps));
		s->gen = 1;
	}
}

/** Add key; 1 when it was already there, else 0. The caller keeps the set
 * at most half full (zap_oidset_init's max_keys). */
static inline int zap_oidset_add(struct zap_oidset *s, uint64_t key)
{
	uint64_t i = zap_mix64(key) & s->mask;
	while (s->stamps[i] == s->gen) {
		if (s->keys[i] == key)
			return 1;
		i = (i + 1) & s->mask;
	}
	s->stamps[i] = s->gen;
	s->keys[i] = key;
	return 0;
}

#endif /* ZAP_BASE_OIDSET_H */
