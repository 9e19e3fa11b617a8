/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: ZEO messages (dataplane/zeo/zeo_codec*.c). The input is
 * decoded as a pickle and as msgpack. Whatever decodes is written again in
 * the same encoding, which must decode to a value that writes the same bytes
 * (the writer's output is a fixed point), and in the other encoding, which
 * must decode too. The helpers run over every decoded tree.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zeo/zeo_codec.h"

static void walk(const struct zeo_val *v)
{
	int64_t i;
	uint64_t u;
	(void)zeo_val_truthy(v);
	(void)zeo_val_int(v, &i);
	(void)zeo_val_u64be(v, &u);
	(void)zeo_val_is_str(v, ".reply");
	(void)zeo_dict_get(v, "message");
	if (v->type == ZEO_TUPLE || v->type == ZEO_LIST || v->type == ZEO_DICT)
		for (uint32_t k = 0; k < v->seq.n; k++)
			walk(&v->seq.items[k]);
}

static void encode(struct zeo_buf *b, enum zeo_enc enc, const struct zeo_val *v)
{
	zeo_buf_reset(b);
	zeo_w_begin(b, enc);
	zeo_w_val(b, enc, v);
	zeo_w_end(b, enc);
	if (b->oom)
		abort();
}

static void check(enum zeo_enc enc, const uint8_t *data, size_t size)
{
	enum zeo_enc other = enc == ZEO_ENC_PICKLE ? ZEO_ENC_MSGPACK : ZEO_ENC_PICKLE;
	struct zeo_arena a;
	struct zeo_buf first, second;
	struct zeo_val *v, *w;
	const char *err;
	zeo_arena_init(&a);
	zeo_buf_init(&first);
	zeo_buf_init(&second);

	int rc = zeo_decode(enc, data, size, &a, &v, &err);
	if (rc != 0) {
		if (v != NULL || err == NULL || (rc != -EBADMSG && rc != -E2BIG && rc != -ENOMEM))
			abort();
		goto out;
	}
	walk(v);

	encode(&first, enc, v);
	if (zeo_decode(enc, first.p, first.len, &a, &w, &err) != 0)
		abort();
	encode(&second, enc, w);
	if (second.len != first.len || memcmp(second.p, first.p, first.len) != 0)
		abort();
	(void)zeo_val_equal(v, w); /* false only with a NaN inside */

	encode(&second, other, v);
	if (zeo_decode(other, second.p, second.len, &a, &w, &err) != 0)
		abort();
	walk(w);
out:
	zeo_buf_free(&first);
	zeo_buf_free(&second);
	zeo_arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(ZEO_ENC_PICKLE, data, size);
	check(ZEO_ENC_MSGPACK, data, size);
	return 0;
}
