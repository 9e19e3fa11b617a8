/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap txn map: open addressing, linear probing, backward-shift deletion.
 * See txn_map.h for the design and the threading rule.
 */
#include "txn_map.h"

#include "base/mix.h"

#include <errno.h>
#include <stdlib.h>

static uint64_t zap_txn_map_slots_for(uint64_t max_entries)
{
	uint64_t slots = 16;
	while (slots < 2 * max_entries)
		slots <<= 1;
	return slots;
}

int zap_txn_map_init(struct zap_txn_map *m, uint64_t max_entries)
{
	uint64_t slots = zap_txn_map_slots_for(max_entries);

	m->keys = calloc(slots, sizeof(*m->keys));
	m->vals = calloc(slots, sizeof(*m->vals));
	m->mask = slots - 1;
	m->count = 0;
	if (m->keys == NULL || m->vals == NULL) {
		zap_txn_map_fini(m);
		return -ENOMEM;
	}
	return 0;
}

void zap_txn_map_fini(struct zap_txn_map *m)
{
	free(m->keys);
	free(m->vals);
	m->keys = NULL;
	m->vals = NULL;
	m->mask = 0;
	m->count = 0;
}

int zap_txn_map_reserve(struct zap_txn_map *m, uint64_t max_entries)
{
	struct zap_txn_map n;
	uint64_t slots = zap_txn_map_slots_for(max_entries);

	if (slots <= m->mask + 1)
		return 0;
	if (zap_txn_map_init(&n, max_entries) != 0)
		return -ENOMEM;
	for (uint64_t i = 0; i <= m->mask; i++)
		if (m->vals[i] != NULL)
			zap_txn_map_put(&n, m->keys[i], m->vals[i]);
	zap_txn_map_fini(m);
	*m = n;
	return 0;
}

void *zap_txn_map_get(const struct zap_txn_map *m, uint64_t key)
{
	uint64_t i = zap_mix64(key) & m->mask;

	while (m->vals[i] != NULL) {
		if (m->keys[i] == key)
			return m->vals[i];
		i = (i + 1) & m->mask;
	}
	return NULL;
}

void zap_txn_map_put(struct zap_txn_map *m, uint64_t key, void *val)
{
	uint64_t i = zap_mix64(key) & m->mask;

	while (m->vals[i] != NULL) {
		if (m->keys[i] == key) {
			m->vals[i] = val;
			return;
		}
		i = (i + 1) & m->mask;
	}
	m->keys[i] = key;
	m->vals[i] = val;
	m->count++;
}

void zap_txn_map_del(struct zap_txn_map *m, uint64_t key)
{
	uint64_t i = zap_mix64(key) & m->mask, j, home;

	while (m->vals[i] != NULL && m->keys[i] != key)
		i = (i + 1) & m->mask;
	if (m->vals[i] == NULL)
		return;
	m->count--;
	/* shift later members of the probe run back into the hole */
	j = i;
	for (;;) {
		m->vals[i] = NULL;
		for (;;) {
			j = (j + 1) & m->mask;
			if (m->vals[j] == NULL)
				return;
			home = zap_mix64(m->keys[j]) & m->mask;
			/* j may move to i only if its home is not in (i, j] */
			if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
				break;
		}
		m->keys[i] = m->keys[j];
		m->vals[i] = m->vals[j];
		i = j;
	}
}
