/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap paxos ballots: the number that orders proposals, (round << 16) | node,
 * so two nodes never make the same ballot and a higher round always wins.
 * Compared as integers; 0 is "none". Part of the public API through
 * paxos.h. Header-only and free of dependencies: every file of the engine
 * builds and reads ballots with these three functions.
 */
#ifndef ZAP_PAXOS_BALLOT_H
#define ZAP_PAXOS_BALLOT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A ballot: (round << 16) | node. Compared as integers; 0 is "none". */
typedef uint64_t zap_ballot_t;

static inline zap_ballot_t zap_ballot_make(uint64_t round, uint16_t node)
{
	return (round << 16) | node;
}
static inline uint64_t zap_ballot_round(zap_ballot_t b)
{
	return b >> 16;
}
static inline uint16_t zap_ballot_node(zap_ballot_t b)
{
	return (uint16_t)(b & 0xffffu);
}

#ifdef __cplusplus
}
#endif

#endif /* ZAP_PAXOS_BALLOT_H */
