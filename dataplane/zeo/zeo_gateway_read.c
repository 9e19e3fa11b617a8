/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap ZEO gateway, reads: the calls an I/O thread answers from the
 * node's store through the connection's store reader, under the
 * connection's write lock (zeo_gateway.c explains the ordering): loadBefore,
 * loadSerial, getTid, history, sendBlob, getInvalidations, lastTransaction,
 * get_info, server_status; records with blobs (inline, or by reference to the blob area) are split
 * here, and sendBlob streams blob files.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/tid.h"
#include "zeo_gateway_core.h"
#include "zodb_record.h"
#include "store/blobs.h"

/** Most history entries one call returns. */
#define ZG_MAX_HISTORY 1000u
/** Most oids getInvalidations lists; beyond, None (the client drops its cache). */
#define ZG_MAX_INVAL_OIDS 1000000u

static bool arg_u64be(const struct zeo_val *args, uint32_t i, uint64_t *out)
{
	const struct zeo_val *v = zg_arg(args, i);
	return v != NULL && zeo_val_u64be(v, out);
}

void zg_record_pickle(const void *data, uint64_t len, const uint8_t **pickle,
		      uint64_t *pickle_len)
{
	struct zodb_blob b;
	if (zodb_record_blob(data, len, &b) == 1) {
		*pickle = b.pickle;
		*pickle_len = b.pickle_len;
	} else {
		*pickle = data;
		*pickle_len = len;
	}
}

static void write_record(struct zg_conn *c, const struct zap_store_rev *rev)
{
	const uint8_t *p;
	uint64_t pl;
	zg_record_pickle(rev->data, rev->len, &p, &pl);
	zeo_w_bytes(&c->out, c->enc, p, pl);
}

static void blob_message(struct zg_conn *c, const char *name, uint64_t oid, uint64_t serial,
			 const uint8_t *chunk, uint64_t len)
{
	zg_frame_begin(c);
	zeo_w_tuple_begin(&c->out, c->enc, 4);
	zeo_w_int(&c->out, c->enc, 0);
	zeo_w_bool(&c->out, c->enc, true);
	zeo_w_cstr(&c->out, c->enc, name);
	uint32_t n = chunk != NULL ? 3 : 2;
	zeo_w_tuple_begin(&c->out, c->enc, n);
	zeo_w_u64be(&c->out, c->enc, oid);
	zeo_w_u64be(&c->out, c->enc, serial);
	if (chunk != NULL)
		zeo_w_bytes(&c->out, c->enc, chunk, len);
	zeo_w_tuple_end(&c->out, c->enc, n);
	zeo_w_tuple_end(&c->out, c->enc, 4);
	zg_frame_end(c);
}

/** A sendBlob streaming from a file of the blob area. */
struct zg_blob_send {
	struct zg_blob_send *next;
	int fd;
	uint64_t oid, serial, off, len;
	size_t ml;
	uint8_t mid[]; /* the call's message id, for the reply after receiveBlobStop */
};

/* Output a connection may hold waiting before the pump stops reading files. */
static uint64_t pump_limit(const struct zg_conn *c)
{
	uint64_t lim = c->g->o.max_output_bytes / 2;
	return lim < (1u << 20) ? lim : (1u << 20);
}

/*
 * Send more of the blobs being streamed (zg_conn.blob_q) while the output
 * waiting is small; each ends with receiveBlobStop and the call's reply.
 * zg_out_flush() calls it again (zg_conn.out_room) once output drains.
 * Under the connection's wmu.
 */
static void zg_blob_pump(struct zg_conn *c)
{
	uint8_t buf[ZG_BLOB_CHUNK_BYTES];
	/* Chunks go to the output buffer only, never straight to the socket:
	   each call adds at most pump_limit() and the I/O thread sends it when
	   epoll says the socket can take it, so one large blob to a fast
	   reader does not keep the thread from its other connections. */
	bool was_corked = c->corked;
	c->corked = true;
	while (c->blob_q != NULL && !atomic_load(&c->dead) && c->olen - c->ohead < pump_limit(c)) {
		struct zg_blob_send *s = c->blob_q;
		if (s->off < s->len) {
			uint64_t k = s->len - s->off < sizeof(buf) ? s->len - s->off : sizeof(buf);
			ssize_t r = pread(s->fd, buf, k, (off_t)s->off);
			if (r != (ssize_t)k) {
				/* the stream is broken mid-way: only closing tells the client */
				zg_conn_kill(c, "a blob file could not be read");
				return;
			}
			blob_message(c, "receiveBlobChunk", s->oid, s->serial, buf, k);
			s->off += k;
			continue;
		}
		blob_message(c, "receiveBlobStop", s->oid, s->serial, NULL, 0);
		zg_reply_none(c, s->mid, s->ml);
		c->blob_q = s->next;
		close(s->fd);
		free(s);
	}
	c->corked = was_corked;
	c->out_room = c->blob_q != NULL ? zg_blob_pump : NULL;
	zg_conn_arm(c);
}

void zg_blob_q_free(struct zg_conn *c)
{
	while (c->blob_q != NULL) {
		struct zg_blob_send *s = c->blob_q;
		c->blob_q = s->next;
		close(s->fd);
		free(s);
	}
}

/* sendBlob of a blob kept in the blob area: queued, then streamed by the pump. */
static void send_blob_file(struct zg_conn *c, const uint8_t *mid, size_t ml, uint64_t oid,
			   uint64_t serial, const struct zodb_blob *b)
{
	uint64_t len = 0;
	int fd = c->g->o.blob_dir != NULL ? zap_blobs_open_file(c->g->o.blob_dir, b->hash, &len)
					   : -ENOENT;
	if (fd >= 0 && len != b->len) {
		close(fd);
		fd = -EBADMSG;
	}
	struct zg_blob_send *s = fd >= 0 ? malloc(sizeof(*s) + ml) : NULL;
	if (s == NULL) {
		char text[160];
		snprintf(text, sizeof(text),
			 "zap: the blob of oid 0x%016" PRIx64 " serial 0x%016" PRIx64
			 " is not readable on this node (%s)",
			 oid, serial, fd >= 0 ? "out of memory" : strerror(-fd));
		if (fd >= 0)
			close(fd);
		zg_reply_error_text(c, mid, ml, "ZODB.POSException.StorageError", text);
		return;
	}
	*s = (struct zg_blob_send){.fd = fd, .oid = oid, .serial = serial, .len = len, .ml = ml};
	memcpy(s->mid, mid, ml);
	struct zg_blob_send **pp = &c->blob_q;
	while (*pp != NULL)
		pp = &(*pp)->next;
	*pp = s;
	blob_message(c, "receiveBlobStart", oid, serial, NULL, 0);
	zg_blob_pump(c);
}

/* sendBlob: receiveBlobStart, receiveBlobChunk*, receiveBlobStop, then the reply (O7). */
static void do_send_blob(struct zg_conn *c, const uint8_t *mid, size_t ml, uint64_t oid,
			 uint64_t serial)
{
	pthread_mutex_lock(&c->wmu);
	struct zap_store_rev rev;
	struct zodb_blob b;
	int has = 0;
	zap_store_read_begin(zg_rd());
	if (zap_store_load_serial(zg_rd(), oid, serial, &rev) == 0 && !rev.deleted)
		has = zodb_record_blob(rev.data, rev.len, &b);
	if (has != 1) {
		zg_reply_pos_key(c, mid, ml, oid);
	} else if (b.hash != NULL) {
		send_blob_file(c, mid, ml, oid, serial, &b);
	} else {
		/* kept inline (a store written without a blob area): it goes out
		 * at once, and the output limit makes room for it until read */
		c->out_allow += b.len + (b.len / ZG_BLOB_CHUNK_BYTES + 3) * 128u;
		blob_message(c, "receiveBlobStart", oid, serial, NULL, 0);
		for (uint64_t off = 0; off < b.len; off += ZG_BLOB_CHUNK_BYTES) {
			uint64_t k =
			    b.len - off < ZG_BLOB_CHUNK_BYTES ? b.len - off : ZG_BLOB_CHUNK_BYTES;
			blob_message(c, "receiveBlobChunk", oid, serial, b.bytes + off, k);
		}
		blob_message(c, "receiveBlobStop", oid, serial, NULL, 0);
		zg_reply_none(c, mid, ml);
	}
	zap_store_read_end(zg_rd());
	pthread_mutex_unlock(&c->wmu);
}

/*
 * loadBefore. The client first hears of every transaction the answer could
 * reflect: the invalidations up to the reader's snapshot go out before the
 * reply (O3), and the answer is computed at that snapshot. While the
 * connection's own tpc_finish is in flight nothing may be announced (O1, O2):
 * then the answer is computed as of the last announced tid, and a successor
 * the client has not heard of yet is not reported (the invalidation that
 * follows sets the end).
 */
static void do_load_before(struct zg_conn *c, const uint8_t *mid, size_t ml, uint64_t oid,
			   uint64_t before)
{
	ZG_COUNT(c->g, loads);
	pthread_mutex_lock(&c->wmu);
	zap_store_read_begin(zg_rd());
	if (!c->finishing)
		zg_flush_in_section(c, zap_store_reader_snapshot(zg_rd()), 0);
	uint64_t horizon = c->inval_tid; /* the newest tid the client knows of */
	if (before > horizon + 1)
		before = horizon + 1;
	struct zap_store_rev rev;
	int rc = zap_store_load_before(zg_rd(), oid, before, &rev);
	if (rc == 0 && !rev.deleted) {
		zg_reply_begin(c, mid, ml, false);
		zeo_w_tuple_begin(&c->out, c->enc, 3);
		write_record(c, &rev);
		zeo_w_u64be(&c->out, c->enc, rev.serial);
		if (rev.next_serial != 0 && rev.next_serial <= horizon)
			zeo_w_u64be(&c->out, c->enc, rev.next_serial);
		else
			zeo_w_none(&c->out, c->enc);
		zeo_w_tuple_end(&c->out, c->enc, 3);
		zg_reply_end(c);
	} else {
		/* None when the object exists (as of the horizon) with no revision
		 * before `before`; POSKeyError when it does not or is deleted. */
		struct zap_store_rev cur;
		bool exists = zap_store_load_before(zg_rd(), oid, horizon + 1, &cur) == 0 &&
			      !cur.deleted && !(rc == 0 && rev.deleted);
		if (exists)
			zg_reply_none(c, mid, ml);
		else
			zg_reply_pos_key(c, mid, ml, oid);
	}
	zap_store_read_end(zg_rd());
	pthread_mutex_unlock(&c->wmu);
}

static void do_load_serial(struct zg_conn *c, const uint8_t *mid, size_t ml, uint64_t oid,
			   uint64_t serial)
{
	ZG_COUNT(c->g, loads);
	pthread_mutex_lock(&c->wmu);
	struct zap_store_rev rev;
	zap_store_read_begin(zg_rd());
	if (zap_store_load_serial(zg_rd(), oid, serial, &rev) == 0 && !rev.deleted) {
		zg_reply_begin(c, mid, ml, false);
		write_record(c, &rev);
		zg_reply_end(c);
	} else {
		zg_reply_pos_key(c, mid, ml, oid);
	}
	zap_store_read_end(zg_rd());
	pthread_mutex_unlock(&c->wmu);
}

static void do_get_tid(struct zg_conn *c, const uint8_t *mid, size_t ml, uint64_t oid)
{
	pthread_mutex_lock(&c->wmu);
	struct zap_store_rev rev;
	zap_store_read_begin(zg_rd());
	if (zap_store_load_before(zg_rd(), oid, c->inval_tid + 1, &rev) == 0 && !rev.deleted)
		zg_reply_tid(c, mid, ml, rev.serial);
	else
		zg_reply_pos_key(c, mid, ml, oid);
	zap_store_read_end(zg_rd());
	pthread_mutex_unlock(&c->wmu);
}

double zg_tid_seconds(uint64_t tid)
{
	return (double)zap_tid_to_unix_ns(tid) / 1e9;
}

/* Keys the gateway writes itself into history / undo dicts (extension items never override them).
 */
static bool reserved_key(const struct zeo_val *k)
{
	return k->type != ZEO_STR || zeo_val_is_str(k, "tid") || zeo_val_is_str(k, "time") ||
	       zeo_val_is_str(k, "size") || zeo_val_is_str(k, "user_name") ||
	       zeo_val_is_str(k, "description") || zeo_val_is_str(k, "id");
}

uint32_t zg_ext_items(struct zg_conn *c, const void *ext, uint32_t len, const struct zeo_val **dict)
{
	*dict = NULL;
	if (len == 0)
		return 0;
	struct zeo_val *v;
	const char *err;
	zeo_arena_reset(&c->harena);
	if (zeo_decode(ZEO_ENC_PICKLE, ext, len, &c->harena, &v, &err) != 0 || v->type != ZEO_DICT)
		return 0;
	uint32_t n = 0;
	for (uint32_t i = 0; i + 1 < v->seq.n; i += 2)
		n += !reserved_key(&v->seq.items[i]);
	*dict = v;
	return n;
}

void zg_write_ext_items(struct zg_conn *c, const struct zeo_val *dict)
{
	for (uint32_t k = 0; dict != NULL && k + 1 < dict->seq.n; k += 2) {
		if (reserved_key(&dict->seq.items[k]))
			continue;
		zeo_w_val(&c->out, c->enc, &dict->seq.items[k]);
		zeo_w_val(&c->out, c->enc, &dict->seq.items[k + 1]);
	}
}

static void do_history(struct zg_conn *c, const uint8_t *mid, size_t ml, uint64_t oid, int64_t size)
{
	size_t max = size <= 0 ? 1 : (size_t)size;
	if (max > ZG_MAX_HISTORY)
		max = ZG_MAX_HISTORY;
	struct zap_store_hist *h = calloc(max, sizeof(*h));
	pthread_mutex_lock(&c->wmu);
	size_t n = 0;
	zap_store_read_begin(zg_rd());
	if (h == NULL) {
		zg_reply_error_text(c, mid, ml, "ZODB.POSException.StorageError", "out of memory");
	} else if (zap_store_history(zg_rd(), oid, h, max, &n) != 0 || n == 0) {
		zg_reply_pos_key(c, mid, ml, oid);
	} else {
		zg_reply_begin(c, mid, ml, false);
		zeo_w_list_begin(&c->out, c->enc, (uint32_t)n);
		for (size_t i = 0; i < n; i++) {
			const struct zap_store_txn_info *t = &h[i].txn;
			const struct zeo_val *ext;
			uint32_t ne =
			    zg_ext_items(c, t->text.extension, t->text.extension_len, &ext);
			zeo_w_dict_begin(&c->out, c->enc, 5 + ne);
			zeo_w_cstr(&c->out, c->enc, "tid");
			zeo_w_u64be(&c->out, c->enc, h[i].serial);
			zeo_w_cstr(&c->out, c->enc, "time");
			zeo_w_float(&c->out, c->enc, zg_tid_seconds(h[i].serial));
			zeo_w_cstr(&c->out, c->enc, "user_name");
			zeo_w_bytes(&c->out, c->enc, t->text.user, t->text.user_len);
			zeo_w_cstr(&c->out, c->enc, "description");
			zeo_w_bytes(&c->out, c->enc, t->text.description, t->text.description_len);
			zeo_w_cstr(&c->out, c->enc, "size");
			zeo_w_int(&c->out, c->enc, (int64_t)h[i].len);
			zg_write_ext_items(c, ext);
			zeo_w_dict_end(&c->out, c->enc, 5 + ne);
		}
		zeo_w_list_end(&c->out, c->enc, (uint32_t)n);
		zg_reply_end(c);
	}
	zap_store_read_end(zg_rd());
	pthread_mutex_unlock(&c->wmu);
	free(h);
}

struct inval_ctx {
	uint64_t upto;
	uint64_t *oids;
	uint32_t n, cap;
	bool overflow;
};

static int collect_one(const struct zap_store_txn_info *t, void *arg)
{
	struct inval_ctx *x = arg;
	if (t->tid > x->upto)
		return 1;
	for (uint32_t i = 0; i < t->n_oids; i++) {
		if (x->n == x->cap) {
			uint32_t nc = x->cap ? x->cap * 2 : 256;
			if (nc > ZG_MAX_INVAL_OIDS) {
				x->overflow = true;
				return 1;
			}
			uint64_t *p = realloc(x->oids, nc * sizeof(*p));
			if (p == NULL) {
				x->overflow = true;
				return 1;
			}
			x->oids = p;
			x->cap = nc;
		}
		x->oids[x->n++] = t->oids[i];
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void do_get_invalidations(struct zg_conn *c, const uint8_t *mid, size_t ml, uint64_t tid)
{
	pthread_mutex_lock(&c->wmu);
	uint64_t upto = c->inval_tid;
	struct inval_ctx x = {.upto = upto};
	int rc = 0;
	if (tid < upto) {
		zap_store_read_begin(zg_rd());
		rc = zap_store_changes_since(zg_rd(), tid, collect_one, &x);
		zap_store_read_end(zg_rd());
	}
	if (tid > upto || (rc != 0 && rc != 1) || x.overflow) {
		/* Unknown or no longer kept: the client drops its whole cache. */
		zg_reply_none(c, mid, ml);
	} else {
		if (x.n > 1) /* x.oids is NULL when nothing changed */
			qsort(x.oids, x.n, sizeof(*x.oids), cmp_u64);
		uint32_t u = 0;
		for (uint32_t i = 0; i < x.n; i++)
			if (u == 0 || x.oids[u - 1] != x.oids[i])
				x.oids[u++] = x.oids[i];
		zg_reply_begin(c, mid, ml, false);
		zeo_w_tuple_begin(&c->out, c->enc, 2);
		zeo_w_u64be(&c->out, c->enc, upto);
		zeo_w_list_begin(&c->out, c->enc, u);
		for (uint32_t i = 0; i < u; i++)
			zeo_w_u64be(&c->out, c->enc, x.oids[i]);
		zeo_w_list_end(&c->out, c->enc, u);
		zeo_w_tuple_end(&c->out, c->enc, 2);
		zg_reply_end(c);
	}
	pthread_mutex_unlock(&c->wmu);
	free(x.oids);
}

static void do_get_info(struct zg_conn *c, const uint8_t *mid, size_t ml)
{
	struct zap_store_stats st;
	zap_store_stats(c->g->o.store, &st);
	pthread_mutex_lock(&c->wmu);
	zg_reply_begin(c, mid, ml, false);
	zeo_w_dict_begin(&c->out, c->enc, 6);
	zeo_w_cstr(&c->out, c->enc, "length");
	zeo_w_int(&c->out, c->enc, (int64_t)st.objects);
	zeo_w_cstr(&c->out, c->enc, "size");
	zeo_w_int(&c->out, c->enc, (int64_t)st.bytes_in_use);
	zeo_w_cstr(&c->out, c->enc, "name");
	zeo_w_cstr(&c->out, c->enc, "zap");
	zeo_w_cstr(&c->out, c->enc, "supportsUndo");
	zeo_w_bool(&c->out, c->enc, true);
	zeo_w_cstr(&c->out, c->enc, "supports_record_iternext");
	zeo_w_bool(&c->out, c->enc, false);
	zeo_w_cstr(&c->out, c->enc, "interfaces");
	static const char *const ifaces[] = {"IExternalGC", "IBlobStorage", "IStorageUndoable",
					     "IStorageIteration", "IStorageRestoreable"};
	const unsigned n_ifaces = sizeof(ifaces) / sizeof(ifaces[0]);
	zeo_w_tuple_begin(&c->out, c->enc, n_ifaces);
	for (unsigned i = 0; i < n_ifaces; i++) {
		zeo_w_tuple_begin(&c->out, c->enc, 2);
		zeo_w_cstr(&c->out, c->enc, "ZODB.interfaces");
		zeo_w_cstr(&c->out, c->enc, ifaces[i]);
		zeo_w_tuple_end(&c->out, c->enc, 2);
	}
	zeo_w_tuple_end(&c->out, c->enc, n_ifaces);
	zeo_w_dict_end(&c->out, c->enc, 6);
	zg_reply_end(c);
	pthread_mutex_unlock(&c->wmu);
}

static void write_status(struct zg_conn *c)
{
	struct zap_zeo_gateway *g = c->g;
	char start[64], last[32];
	time_t t0 = (time_t)g->start_unix_s;
	struct tm tm;
	gmtime_r(&t0, &tm);
	strftime(start, sizeof(start), "%a %b %e %H:%M:%S %Y", &tm);
	snprintf(last, sizeof(last), "%016" PRIx64, zap_store_last_tid(g->o.store));
	zeo_w_dict_begin(&c->out, c->enc, 13);
	const char *names[] = {"connections", "loads",	     "stores",	  "commits",
			       "aborts",      "active_txns", "conflicts", "conflicts_resolved",
			       "waiting"};
	uint64_t vals[] = {g->n_conns,
			   zg_cnt(&g->cnt.loads),
			   zg_cnt(&g->cnt.stores),
			   zg_cnt(&g->cnt.commits),
			   zg_cnt(&g->cnt.aborts),
			   0,
			   zg_cnt(&g->cnt.conflicts) + zg_cnt(&g->cnt.read_conflicts),
			   zg_cnt(&g->cnt.resolved),
			   0};
	for (unsigned i = 0; i < 9; i++) {
		zeo_w_cstr(&c->out, c->enc, names[i]);
		zeo_w_int(&c->out, c->enc, (int64_t)vals[i]);
	}
	zeo_w_cstr(&c->out, c->enc, "lock_time");
	zeo_w_none(&c->out, c->enc);
	zeo_w_cstr(&c->out, c->enc, "start");
	zeo_w_cstr(&c->out, c->enc, start);
	zeo_w_cstr(&c->out, c->enc, "timeout-thread-is-alive");
	zeo_w_cstr(&c->out, c->enc, "stub");
	zeo_w_cstr(&c->out, c->enc, "last-transaction");
	zeo_w_cstr(&c->out, c->enc, last);
	zeo_w_dict_end(&c->out, c->enc, 13);
}

/*
 * The sync calls answered from the store by the I/O thread itself.
 * @return 1 answered; 0 not one of them; -1 bad arguments (the caller closes).
 */
int zg_read_call(struct zg_conn *c, const char *name, const uint8_t *mid, size_t ml,
		 const struct zeo_val *args)
{
	uint64_t oid, tid;
	int64_t n;
	if (strcmp(name, "loadBefore") == 0) {
		if (!arg_u64be(args, 0, &oid) || !arg_u64be(args, 1, &tid))
			return -1;
		do_load_before(c, mid, ml, oid, tid);
	} else if (strcmp(name, "loadSerial") == 0) {
		if (!arg_u64be(args, 0, &oid) || !arg_u64be(args, 1, &tid))
			return -1;
		do_load_serial(c, mid, ml, oid, tid);
	} else if (strcmp(name, "sendBlob") == 0) {
		if (!arg_u64be(args, 0, &oid) || !arg_u64be(args, 1, &tid))
			return -1;
		do_send_blob(c, mid, ml, oid, tid);
	} else if (strcmp(name, "getTid") == 0) {
		if (!arg_u64be(args, 0, &oid))
			return -1;
		do_get_tid(c, mid, ml, oid);
	} else if (strcmp(name, "history") == 0) {
		n = 1;
		if (!arg_u64be(args, 0, &oid) ||
		    (zg_arg(args, 1) != NULL && !zeo_val_int(zg_arg(args, 1), &n)))
			return -1;
		do_history(c, mid, ml, oid, n);
	} else if (strcmp(name, "lastTransaction") == 0) {
		pthread_mutex_lock(&c->wmu);
		zg_reply_tid(c, mid, ml, c->inval_tid);
		pthread_mutex_unlock(&c->wmu);
	} else if (strcmp(name, "getInvalidations") == 0) {
		if (!arg_u64be(args, 0, &tid))
			return -1;
		do_get_invalidations(c, mid, ml, tid);
	} else if (strcmp(name, "get_info") == 0) {
		do_get_info(c, mid, ml);
	} else if (strcmp(name, "server_status") == 0) {
		pthread_mutex_lock(&c->wmu);
		zg_reply_begin(c, mid, ml, false);
		write_status(c);
		zg_reply_end(c);
		pthread_mutex_unlock(&c->wmu);
	} else {
		return 0;
	}
	return 1;
}
