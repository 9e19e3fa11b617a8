/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap txn map: a small open-addressing hash map from u64 keys to non-NULL
 * pointers, private to the transaction state machine (locks, sessions,
 * transactions by id).
 *
 * Linear probing with backward-shift deletion (no tombstones); a slot is
 * empty when its value is NULL, so every u64 is a valid key (oid 0 too).
 * The hash is a fixed mixer with no seed: layout and behaviour are the same
 * on every replica. Nobody iterates the map to make a decision, so its
 * layout never shows in results.
 *
 * Threading: owned by the apply stage.
 */
#ifndef ZAP_TXN_MAP_H
#define ZAP_TXN_MAP_H

#include <stdint.h>

struct zap_txn_map {
	uint64_t *keys;
	void **vals;
	uint64_t mask;	/* slots - 1, slots a power of two */
	uint64_t count; /* live entries */
};

/** Make a map with room for @p max_entries at load <= 1/2. @return 0; -ENOMEM. */
int zap_txn_map_init(struct zap_txn_map *m, uint64_t max_entries);

/** Free the arrays. */
void zap_txn_map_fini(struct zap_txn_map *m);

/** Grow (rehash) so that @p max_entries fit at load <= 1/2. @return 0; -ENOMEM. */
int zap_txn_map_reserve(struct zap_txn_map *m, uint64_t max_entries);

/** The value of @p key, NULL if absent. */
void *zap_txn_map_get(const struct zap_txn_map *m, uint64_t key);

/** Insert or replace. The caller has reserved room. @p val must not be NULL. */
void zap_txn_map_put(struct zap_txn_map *m, uint64_t key, void *val);

/** Remove @p key if present. */
void zap_txn_map_del(struct zap_txn_map *m, uint64_t key);

#endif /* ZAP_TXN_MAP_H */
