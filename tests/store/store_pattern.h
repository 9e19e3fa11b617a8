/* SPDX-License-Identifier: Apache-2.0 */
/* Record contents used by the store tests: derived from (oid, tid), so any
 * reader can check that what it read is whole and belongs to that revision. */
#ifndef ZAP_TEST_STORE_PATTERN_H
#define ZAP_TEST_STORE_PATTERN_H

#include <stddef.h>
#include <stdint.h>

static inline uint8_t pattern_byte(uint64_t oid, uint64_t tid, size_t i)
{
	return (uint8_t)(oid * 31u + tid * 17u + i * 7u + (i >> 8));
}

static inline void pattern_fill(uint8_t *p, size_t len, uint64_t oid, uint64_t tid)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pattern_byte(oid, tid, i);
}

static inline int pattern_check(const uint8_t *p, size_t len, uint64_t oid, uint64_t tid)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != pattern_byte(oid, tid, i))
			return 0;
	return 1;
}

/* Record length for (oid, tid): varied, sometimes empty. */
static inline size_t pattern_len(uint64_t oid, uint64_t tid)
{
	return (size_t)((oid * 13u + tid * 5u) % 300u);
}

#endif
