/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZODB records (zodb_record.h), the parts that look at a decoded tree:
 * the class of a record header and the writer that pickles a values-mode
 * tree again (protocol 3, no memo; zodb_record.c decodes).
 */
#include "zodb_record.h"
#include "zeo_pickle_ops.h"

#include <errno.h>
#include <string.h>

#include "base/bytes.h"

int zodb_record_class(const struct zodb_val *cls, const uint8_t **mod, uint32_t *mod_len,
		      const uint8_t **name, uint32_t *name_len, const struct zodb_val **args)
{
	*args = NULL;
	if (cls->type == ZODB_TUPLE && cls->seq.n == 2) {
		*args = cls->seq.items[1];
		cls = cls->seq.items[0];
		if (cls->type == ZODB_TUPLE && cls->seq.n == 2 &&
		    cls->seq.items[0]->type == ZODB_STR && cls->seq.items[1]->type == ZODB_STR) {
			*mod = cls->seq.items[0]->s.p;
			*mod_len = cls->seq.items[0]->s.len;
			*name = cls->seq.items[1]->s.p;
			*name_len = cls->seq.items[1]->s.len;
			return 0;
		}
	}
	if (cls->type != ZODB_GLOBAL)
		return -EINVAL;
	*mod = cls->g.mod;
	*mod_len = cls->g.mod_len;
	*name = cls->g.name;
	*name_len = cls->g.name_len;
	return 0;
}

/* ------------------------------------------------------------ the writer */

void zodb_w_long(struct zeo_buf *b, const uint8_t *le, size_t len)
{
	uint8_t hdr[5];
	if (len < 256) {
		hdr[0] = PK_LONG1;
		hdr[1] = (uint8_t)len;
		zeo_buf_put(b, hdr, 2);
	} else if (len <= INT32_MAX) {
		hdr[0] = PK_LONG4;
		zap_put_le32(hdr + 1, (uint32_t)len);
		zeo_buf_put(b, hdr, 5);
	} else {
		b->oom = true;
		return;
	}
	zeo_buf_put(b, le, len);
}

void zodb_w_global(struct zeo_buf *b, const uint8_t *mod, size_t mod_len, const uint8_t *name,
		   size_t name_len)
{
	uint8_t op = PK_GLOBAL, nl = '\n';
	zeo_buf_put(b, &op, 1);
	zeo_buf_put(b, mod, mod_len);
	zeo_buf_put(b, &nl, 1);
	zeo_buf_put(b, name, name_len);
	zeo_buf_put(b, &nl, 1);
}

int zodb_w_val(struct zeo_buf *b, const struct zodb_val *v)
{
	const enum zeo_enc enc = ZEO_ENC_PICKLE;
	uint8_t op;
	int rc = 0;
	switch (v->type) {
	case ZODB_NONE:
		zeo_w_none(b, enc);
		return 0;
	case ZODB_BOOL:
		zeo_w_bool(b, enc, v->b);
		return 0;
	case ZODB_INT:
		if (v->big)
			zodb_w_long(b, v->s.p, v->s.len);
		else
			zeo_w_int(b, enc, v->i);
		return 0;
	case ZODB_FLOAT:
		zeo_w_float(b, enc, v->f);
		return 0;
	case ZODB_STR:
		zeo_w_str(b, enc, v->s.p, v->s.len);
		return 0;
	case ZODB_BYTES:
		zeo_w_bytes(b, enc, v->s.p, v->s.len);
		return 0;
	case ZODB_TUPLE:
		zeo_w_tuple_begin(b, enc, v->seq.n);
		for (uint32_t i = 0; i < v->seq.n && rc == 0; i++)
			rc = zodb_w_val(b, v->seq.items[i]);
		zeo_w_tuple_end(b, enc, v->seq.n);
		return rc;
	case ZODB_LIST:
		zeo_w_list_begin(b, enc, v->seq.n);
		for (uint32_t i = 0; i < v->seq.n && rc == 0; i++)
			rc = zodb_w_val(b, v->seq.items[i]);
		zeo_w_list_end(b, enc, v->seq.n);
		return rc;
	case ZODB_DICT:
		zeo_w_dict_begin(b, enc, v->seq.n / 2);
		for (uint32_t i = 0; i < v->seq.n && rc == 0; i++)
			rc = zodb_w_val(b, v->seq.items[i]);
		zeo_w_dict_end(b, enc, v->seq.n / 2);
		return rc;
	case ZODB_GLOBAL:
		zodb_w_global(b, v->g.mod, v->g.mod_len, v->g.name, v->g.name_len);
		return 0;
	case ZODB_REF:
		rc = zodb_w_val(b, v->pid);
		op = PK_BINPERSID;
		zeo_buf_put(b, &op, 1);
		return rc;
	default:
		return -EINVAL;
	}
}
