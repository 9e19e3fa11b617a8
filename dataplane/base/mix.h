/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap mix: the one 64-bit integer mixer of the core, used to spread keys
 * over open-addressing tables (store index, entry decoder, state-machine
 * maps) and to build digests. Deterministic on every platform.
 */
#ifndef ZAP_MIX_H
#define ZAP_MIX_H

#include <stdint.h>

/** A bijective 64-bit finaliser: nearby inputs land far apart. */
static inline uint64_t zap_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

#endif /* ZAP_MIX_H */
