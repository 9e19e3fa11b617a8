// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the snapshot tests of tests/store and tests/txn: a sink
// into a vector, and the snapshot checksum (docs/store.md, "Snapshots") so
// that a test can corrupt the body of a snapshot and still reach the
// loader's structural checks.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

extern "C" {
#include "base/bytes.h"
#include "store/store.h"
}

namespace snaptest
{

using Bytes = std::vector<uint8_t>;

inline int Sink(const void *buf, size_t len, void *ctx)
{
	Bytes *b = static_cast<Bytes *>(ctx);
	const uint8_t *p = static_cast<const uint8_t *>(buf);
	b->insert(b->end(), p, p + len);
	return 0;
}

// The trailer checksum; seed differs between the store and the SM stream.
inline uint64_t Checksum(const uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t h = seed, w;
	size_t i = 0;
	auto word = [&h](uint64_t v) {
		h = (h ^ v) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	};
	for (; i + 8 <= len; i += 8)
		word(zap_get_le64(p + i));
	w = 0;
	unsigned n = 0;
	for (; i < len; i++, n++)
		w |= (uint64_t)p[i] << (8 * n);
	word(w ^ ((uint64_t)n << 56));
	word(len);
	return h ^ (h >> 31);
}

constexpr uint64_t kStoreSeed = 0x6a09e667f3bcc908ull;
constexpr uint64_t kTxnSeed = 0xbb67ae8584caa73bull;

// Rewrite the trailer so that the checksum matches the (corrupted) body.
inline void Reseal(Bytes &b, uint64_t seed)
{
	if (b.size() < 8)
		return;
	zap_put_le64(b.data() + b.size() - 8, Checksum(b.data(), b.size() - 8, seed));
}

} // namespace snaptest
