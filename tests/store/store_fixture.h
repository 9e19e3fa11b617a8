/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the store tests. */
#ifndef ZAP_TEST_STORE_FIXTURE_H
#define ZAP_TEST_STORE_FIXTURE_H

#include <gtest/gtest.h>

#include <string>
#include <vector>

extern "C" {
#include "store/store.h"
#include "store_pattern.h"
}

/* One write whose bytes follow the (oid, tid) pattern. */
struct PatternWrite {
	uint64_t oid;
	std::vector<uint8_t> bytes;
	bool deleted;
};

static inline PatternWrite pattern_write(uint64_t oid, uint64_t tid, bool deleted = false)
{
	PatternWrite w{oid, std::vector<uint8_t>(deleted ? 0 : pattern_len(oid, tid)), deleted};
	if (!deleted)
		pattern_fill(w.bytes.data(), w.bytes.size(), oid, tid);
	return w;
}

static inline int commit_writes(zap_store *s, uint64_t tid, const std::vector<PatternWrite> &pw,
				const char *user = "u", const char *desc = "d")
{
	std::vector<zap_store_write> w;
	for (const auto &p : pw)
		w.push_back({p.oid, p.bytes.data(), p.bytes.size(), p.deleted ? 1 : 0});
	zap_txn_text m{user, (uint32_t)strlen(user), desc, (uint32_t)strlen(desc), "", 0};
	return zap_store_commit(s, tid, &m, w.data(), (uint32_t)w.size());
}

static inline zap_store *make_store(uint64_t size_bytes = 64ull << 20, uint32_t ring = 0,
				    uint32_t index_slots = 0)
{
	zap_store_params p{};
	p.size_bytes = size_bytes;
	p.max_record_bytes = size_bytes / 4;
	p.txn_ring_slots = ring;
	p.index_initial_slots = index_slots;
	zap_store *s = nullptr;
	int rc = zap_store_create(&p, &s);
	EXPECT_EQ(rc, 0);
	return s;
}

static inline uint64_t test_seed()
{
	const char *e = getenv("ZAP_TEST_SEED");
	uint64_t seed = e ? strtoull(e, nullptr, 0) : 20261125u;
	printf("seed %llu (set ZAP_TEST_SEED to replay)\n", (unsigned long long)seed);
	return seed;
}

#endif
