/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A reference extractor for tests of pack's garbage collection: a record
 * "REF:" followed by 8-byte little-endian oids references those oids; any
 * other record is unreadable (-EINVAL), as a non-pickle is to
 * zodb_record_refs().
 */
#ifndef ZAP_TEST_STORE_REFS_H
#define ZAP_TEST_STORE_REFS_H

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "base/bytes.h"
#include "store/store.h"
}

static inline int test_refs(const void *rec, size_t len, zap_store_oid_fn fn, void *arg)
{
	const unsigned char *p = static_cast<const unsigned char *>(rec);
	if (len < 4 || memcmp(p, "REF:", 4) != 0 || (len - 4) % 8 != 0)
		return -EINVAL;
	for (size_t off = 4; off < len; off += 8) {
		int rc = fn(arg, zap_get_le64(p + off));
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The record that references @p oids. */
static inline std::string refs_record(const std::vector<uint64_t> &oids)
{
	std::string r = "REF:";
	for (uint64_t oid : oids) {
		uint8_t b[8];
		zap_put_le64(b, oid);
		r.append(reinterpret_cast<const char *>(b), sizeof(b));
	}
	return r;
}

#endif
