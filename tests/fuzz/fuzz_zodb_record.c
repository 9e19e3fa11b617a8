/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: ZODB records (dataplane/zeo/zodb_record.c) and native
 * conflict resolution (dataplane/zeo/zeo_resolve.c). The whole input is scanned
 * for references and decoded in values mode. It is then split into three
 * records (two u16 little-endian lengths, then old, committed and the rest as
 * the client's record) that are scanned and merged; a merged record must
 * decode again, name the same references' source (its scan succeeds) and
 * start with the client's class header.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zeo/zeo_resolve.h"
#include "zeo/zodb_record.h"

static int count(void *arg, uint64_t oid)
{
	(void)oid;
	++*(size_t *)arg;
	return 0;
}

static void scan(const uint8_t *p, size_t n)
{
	/* a blob header, inline or by reference: every length it gives fits the record */
	struct zodb_blob bl;
	int brc = zodb_record_blob(p, n, &bl);
	if (brc < -EINVAL || brc > 1)
		abort();
	if (brc == 1) {
		if (bl.pickle < p || bl.pickle + bl.pickle_len > p + n)
			abort();
		if ((bl.bytes == NULL) == (bl.hash == NULL))
			abort();
		if (bl.bytes != NULL && bl.bytes + bl.len != p + n)
			abort();
		if (bl.hash != NULL && bl.hash + 32 != p + n)
			abort();
	}
	size_t refs = 0;
	int rc = zodb_record_refs(p, n, count, &refs);
	if (rc != 0 && rc != -EINVAL)
		abort();
	struct zodb_rec r;
	rc = zodb_record_decode(&r, p, n);
	if (rc == 0) {
		/* whatever decodes in values mode scans in references mode */
		if (zodb_record_refs(p, n, NULL, NULL) != 0)
			abort();
		struct zeo_buf b;
		zeo_buf_init(&b);
		if (zodb_w_val(&b, r.state) != 0)
			abort();
		zeo_buf_free(&b);
	} else if (rc != -EINVAL && rc != -E2BIG && rc != -ENOMEM) {
		abort();
	}
	zodb_rec_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	scan(data, size);
	if (size < 4)
		return 0;
	size_t a = (size_t)data[0] | (size_t)data[1] << 8, b = (size_t)data[2] | (size_t)data[3] << 8;
	const uint8_t *p = data + 4;
	size_t left = size - 4;
	if (a > left)
		a = left;
	if (b > left - a)
		b = left - a;
	const uint8_t *old = p, *com = p + a, *neu = p + a + b;
	size_t neu_len = left - a - b;
	scan(old, a);
	scan(com, b);
	scan(neu, neu_len);

	void *out = NULL;
	size_t out_len = 0;
	char cls[64];
	int rc = zeo_resolve(old, a, com, b, neu, neu_len, &out, &out_len, cls, sizeof(cls));
	if (rc == ZEO_RESOLVED) {
		struct zodb_rec r, n;
		if (zodb_record_decode(&r, out, out_len) != 0 ||
		    zodb_record_decode(&n, neu, neu_len) != 0 || r.cls_len != n.cls_len ||
		    memcmp(out, neu, n.cls_len) != 0 || zodb_record_refs(out, out_len, NULL, NULL))
			abort();
		zodb_rec_free(&r);
		zodb_rec_free(&n);
		free(out);
	} else if (rc != ZEO_RESOLVE_UNSUPPORTED && rc != ZEO_RESOLVE_REFUSED) {
		abort();
	} else if (out != NULL || memchr(cls, '\0', sizeof(cls)) == NULL) {
		abort();
	}
	return 0;
}
