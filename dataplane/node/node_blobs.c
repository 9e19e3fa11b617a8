/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap node blob area (docs/store.md, "Blob area"): the directory
 * <log_dir>/blobs holds the bytes of every blob the store references by
 * hash. The apply stage writes files as PREPAREs are applied (the state
 * machine's keep hook, zodb_record_keep()) and, after a PACK, sweeps the
 * files that neither a stored revision nor a transaction in flight
 * references any more. The ZEO gateway reads the files (sendBlob). A node
 * that installed a snapshot fetches the files it lacks from a peer (below).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node_core.h"

#include "zeo/zodb_record.h"

int zap_node_blobs_open(struct zap_node *n)
{
	char dir[4096];
	if (snprintf(dir, sizeof(dir), "%s/blobs", n->self->log_dir) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	int rc = zap_blobs_open(dir, &n->blobs);
	if (rc != 0)
		fprintf(stderr, "zapd: node %u: blob area %s: %s\n", n->id, dir, strerror(-rc));
	return rc;
}

const char *zap_node_blobs_dir(const struct zap_node *n)
{
	return n->blobs != NULL ? zap_blobs_dir(n->blobs) : NULL;
}

/* Collect the hash of every blob reference. */
static int keep_ref(void *ctx, uint64_t oid, uint64_t tid, const void *data, uint64_t len)
{
	(void)oid;
	(void)tid;
	struct zodb_blob b;
	if (zodb_record_blob(data, len, &b) == 1 && b.hash != NULL)
		return zap_hashset_add(ctx, b.hash);
	return 0;
}

static bool keep_in_set(void *ctx, const uint8_t hash[ZAP_BLOB_HASH_BYTES])
{
	return zap_hashset_has(ctx, hash);
}

void zap_node_blobs_sweep(struct zap_node *n)
{
	n->blob_sweep_due = false;
	if (n->blobs == NULL)
		return;
	struct zap_hashset keep = {0};
	int rc = zap_store_each_record(n->store, keep_ref, &keep);
	if (rc == 0)
		rc = zap_txn_sm_each_record(n->sm, keep_ref, &keep);
	if (rc != 0) {
		/* without the whole set nothing may go: the next PACK tries again */
		fprintf(stderr, "zapd: node %u: blob sweep skipped: %s\n", n->id, strerror(-rc));
		zap_hashset_free(&keep);
		return;
	}
	long removed = zap_blobs_sweep(n->blobs, keep_in_set, &keep);
	zap_hashset_free(&keep);
	if (removed < 0)
		fprintf(stderr, "zapd: node %u: blob sweep: %s\n", n->id, strerror((int)-removed));
}

void zap_node_blobs_report(const struct zap_node *n, FILE *f)
{
	if (n->blobs == NULL)
		return;
	struct zap_blobs_stats st;
	zap_blobs_stats(n->blobs, &st);
	fprintf(f,
		"  blobs: files %" PRIu64 " (%" PRIu64 " bytes), written %" PRIu64 " (%" PRIu64
		" bytes), shared %" PRIu64 ", swept %" PRIu64 " (%" PRIu64 " bytes), errors %" PRIu64
		"\n",
		st.files, st.bytes, st.written, st.written_bytes, st.shared, st.swept,
		st.swept_bytes, st.errors);
}

void zap_node_blobs_close(struct zap_node *n)
{
	zap_blobs_close(n->blobs);
	n->blobs = NULL;
}

/* ------------------------------------------------------------------ fetch */

/*
 * A node that installed a snapshot (or restarted after one) lacks the files
 * of the blobs its store references: the paxos stage fetches them from a
 * peer, one blob at a time, a window of chunks per BLOB_REQ, as node_snap.c
 * fetches an image. The chunks are written to a zap_blob_writer, named only
 * when length and hash match. Until a file is there the gateway's sendBlob
 * of it fails with a StorageError.
 */

/** Chunks sent per BLOB_REQ. */
#define BLOB_WINDOW 16u
/** Ask again from where the fetch stands after this long without its window. */
#define BLOB_RESEND_NS (50ull * 1000 * 1000)
/** Try the next peer after this long without progress. */
#define BLOB_GIVE_UP_NS (3ull * 1000 * 1000 * 1000)

struct blob_want {
	uint8_t hash[ZAP_BLOB_HASH_BYTES];
	uint64_t len;
};

struct node_blob_fetch {
	/* handed over by the apply stage or the main thread */
	pthread_mutex_t mu;
	struct blob_want *want;
	size_t n_want;
	/* paxos stage */
	struct blob_want *list; /**< being fetched */
	size_t n_list, pos;
	struct zap_blob_writer *w;
	uint16_t from;
	unsigned peer; /**< index into the config's nodes of the peer asked */
	uint64_t resend_ns, give_up_ns;
	/* paxos stage: messages to send, their payload buffers */
	struct zap_paxos_msg out[BLOB_WINDOW];
	unsigned out_n, out_pos;
	uint8_t *bufs; /**< BLOB_WINDOW datagrams */
	uint8_t req_hash[ZAP_BLOB_HASH_BYTES];
};

/* Collect the blob references whose file is missing. */
struct missing_ctx {
	struct zap_node *n;
	struct zap_hashset seen;
	struct blob_want *v;
	size_t len, cap;
};

static int missing_ref(void *ctx, uint64_t oid, uint64_t tid, const void *data, uint64_t len)
{
	(void)oid;
	(void)tid;
	struct missing_ctx *m = ctx;
	struct zodb_blob b;
	if (zodb_record_blob(data, len, &b) != 1 || b.hash == NULL ||
	    zap_blobs_has(m->n->blobs, b.hash, b.len) || zap_hashset_has(&m->seen, b.hash))
		return 0;
	if (zap_hashset_add(&m->seen, b.hash) != 0)
		return -ENOMEM;
	if (m->len == m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 16;
		struct blob_want *p = realloc(m->v, nc * sizeof(*p));
		if (p == NULL)
			return -ENOMEM;
		m->v = p;
		m->cap = nc;
	}
	memcpy(m->v[m->len].hash, b.hash, ZAP_BLOB_HASH_BYTES);
	m->v[m->len++].len = b.len;
	return 0;
}

void zap_node_blobs_find_missing(struct zap_node *n)
{
	struct node_blob_fetch *f = n->blob_fetch;
	if (n->blobs == NULL || f == NULL)
		return;
	struct missing_ctx m = {.n = n};
	int rc = zap_store_each_record(n->store, missing_ref, &m);
	if (rc == 0)
		rc = zap_txn_sm_each_record(n->sm, missing_ref, &m);
	zap_hashset_free(&m.seen);
	if (rc != 0) {
		fprintf(stderr, "zapd: node %u: listing missing blob files: %s\n", n->id,
			strerror(-rc));
		free(m.v);
		return;
	}
	if (m.len > 0)
		fprintf(stderr, "zapd: node %u: %zu blob files missing; fetching them from a peer\n",
			n->id, m.len);
	pthread_mutex_lock(&f->mu);
	free(f->want);
	f->want = m.v;
	f->n_want = m.len;
	pthread_mutex_unlock(&f->mu);
}

static void blob_out(struct node_blob_fetch *f, const struct zap_paxos_msg *m)
{
	if (f->out_n < BLOB_WINDOW)
		f->out[f->out_n++] = *m;
}

const struct zap_paxos_msg *zap_node_blobs_out_next(struct zap_node *n)
{
	struct node_blob_fetch *f = n->blob_fetch;
	if (f == NULL)
		return NULL;
	if (f->out_pos < f->out_n)
		return &f->out[f->out_pos++];
	f->out_n = f->out_pos = 0;
	return NULL;
}

/* The next peer to ask (another node of the config), starting from the leader. */
static uint16_t next_peer(struct zap_node *n, struct node_blob_fetch *f)
{
	const struct zap_config *c = n->cfg;
	if (f->from == 0 && n->leader != 0 && n->leader != n->id)
		return n->leader;
	for (unsigned k = 0; k < c->n_nodes; k++) {
		unsigned i = (f->peer + 1 + k) % c->n_nodes;
		if (c->nodes[i].id != n->id && c->nodes[i].id != f->from) {
			f->peer = i;
			return c->nodes[i].id;
		}
	}
	return f->from;
}

static void blob_request(struct zap_node *n, uint64_t now)
{
	struct node_blob_fetch *f = n->blob_fetch;
	const struct blob_want *b = &f->list[f->pos];
	memcpy(f->req_hash, b->hash, ZAP_BLOB_HASH_BYTES);
	struct zap_paxos_msg m = {.type = ZAP_WIRE_TYPE_BLOB_REQ,
				  .from = n->id,
				  .to = f->from,
				  .offset = zap_blob_writer_len(f->w),
				  .value_len = b->len,
				  .payload = f->req_hash,
				  .len = ZAP_BLOB_HASH_BYTES};
	blob_out(f, &m);
	f->resend_ns = now + BLOB_RESEND_NS;
}

/* Start the blob at f->pos (or finish the list). */
static void blob_start(struct zap_node *n, uint64_t now)
{
	struct node_blob_fetch *f = n->blob_fetch;
	while (f->pos < f->n_list) {
		const struct blob_want *b = &f->list[f->pos];
		if (zap_blobs_has(n->blobs, b->hash, b->len)) {
			f->pos++;
			continue;
		}
		int rc = zap_blobs_writer_open(n->blobs, b->hash, b->len, &f->w);
		if (rc != 0) {
			fprintf(stderr, "zapd: node %u: blob fetch: %s\n", n->id, strerror(-rc));
			f->pos++;
			continue;
		}
		f->give_up_ns = now + BLOB_GIVE_UP_NS;
		blob_request(n, now);
		return;
	}
	if (f->n_list > 0)
		fprintf(stderr, "zapd: node %u: blob fetch done (%zu blobs listed)\n", n->id,
			f->n_list);
	free(f->list);
	f->list = NULL;
	f->n_list = f->pos = 0;
}

void zap_node_blobs_tick(struct zap_node *n, uint64_t now)
{
	struct node_blob_fetch *f = n->blob_fetch;
	if (f == NULL)
		return;
	if (f->list == NULL) {
		if (pthread_mutex_trylock(&f->mu) != 0)
			return;
		f->list = f->want;
		f->n_list = f->n_want;
		f->want = NULL;
		f->n_want = 0;
		pthread_mutex_unlock(&f->mu);
		f->pos = 0;
		if (f->list == NULL)
			return;
		f->from = next_peer(n, f);
		blob_start(n, now);
		return;
	}
	if (f->w == NULL)
		return;
	if (now >= f->give_up_ns) {
		f->from = next_peer(n, f);
		f->give_up_ns = now + BLOB_GIVE_UP_NS;
		n->cnt.blob_fetch_retries++;
		blob_request(n, now);
	} else if (now >= f->resend_ns) {
		blob_request(n, now);
	}
}

/* Answer a BLOB_REQ with a window of chunks read from the file. */
static void blob_serve(struct zap_node *n, const struct zap_paxos_msg *m)
{
	struct node_blob_fetch *f = n->blob_fetch;
	uint64_t len = 0;
	int fd = m->len == ZAP_BLOB_HASH_BYTES && n->blobs != NULL
		     ? zap_blobs_open_file(zap_blobs_dir(n->blobs), m->payload, &len)
		     : -EINVAL;
	if (fd < 0 || m->offset >= len) {
		if (fd >= 0)
			close(fd);
		n->cnt.blob_req_drops++;
		return;
	}
	uint32_t dg = zap_wire_max_payload(n->paxos_wire);
	uint64_t chunk = dg - ZAP_BLOB_HASH_BYTES, off = m->offset;
	for (unsigned i = 0; i < BLOB_WINDOW && off < len && f->out_n < BLOB_WINDOW; i++) {
		uint8_t *buf = f->bufs + (size_t)f->out_n * dg;
		uint64_t k = len - off < chunk ? len - off : chunk;
		memcpy(buf, m->payload, ZAP_BLOB_HASH_BYTES);
		if (pread(fd, buf + ZAP_BLOB_HASH_BYTES, k, (off_t)off) != (ssize_t)k)
			break;
		struct zap_paxos_msg c = {.type = ZAP_WIRE_TYPE_BLOB_CHUNK,
					  .from = n->id,
					  .to = m->from,
					  .offset = off,
					  .value_len = len,
					  .payload = buf,
					  .len = (uint32_t)(ZAP_BLOB_HASH_BYTES + k)};
		off += k;
		c.flags = i + 1 == BLOB_WINDOW || off == len ? ZAP_PAXOS_FLAG_LAST : 0;
		blob_out(f, &c);
		n->cnt.blob_chunks_tx++;
	}
	close(fd);
}

/* A chunk of the blob being fetched (in order only). */
static void blob_chunk(struct zap_node *n, uint64_t now, const struct zap_paxos_msg *m)
{
	struct node_blob_fetch *f = n->blob_fetch;
	if (f->w == NULL || m->from != f->from || m->len <= ZAP_BLOB_HASH_BYTES ||
	    memcmp(m->payload, f->list[f->pos].hash, ZAP_BLOB_HASH_BYTES) != 0 ||
	    m->value_len != f->list[f->pos].len) {
		n->cnt.blob_chunk_drops++;
		return;
	}
	if (m->offset != zap_blob_writer_len(f->w)) {
		n->cnt.blob_chunk_drops++; /* a gap or a repeat: ask again from where it stands */
		if (m->flags & ZAP_PAXOS_FLAG_LAST)
			blob_request(n, now);
		return;
	}
	const uint8_t *p = m->payload;
	int rc = zap_blob_writer_append(f->w, p + ZAP_BLOB_HASH_BYTES, m->len - ZAP_BLOB_HASH_BYTES);
	if (rc != 0) {
		n->cnt.blob_chunk_drops++;
		return;
	}
	f->give_up_ns = now + BLOB_GIVE_UP_NS;
	if (zap_blob_writer_len(f->w) == m->value_len) {
		rc = zap_blob_writer_commit(f->w);
		f->w = NULL;
		if (rc != 0)
			fprintf(stderr, "zapd: node %u: fetched blob refused: %s\n", n->id,
				strerror(-rc));
		else
			n->cnt.blobs_fetched++;
		f->pos++;
		blob_start(n, now);
		return;
	}
	if (m->flags & ZAP_PAXOS_FLAG_LAST)
		blob_request(n, now);
}

void zap_node_blobs_rx(struct zap_node *n, uint64_t now, const struct zap_paxos_msg *m)
{
	if (n->blob_fetch == NULL)
		return;
	if (m->type == ZAP_WIRE_TYPE_BLOB_REQ)
		blob_serve(n, m);
	else
		blob_chunk(n, now, m);
}

int zap_node_blobs_fetch_init(struct zap_node *n)
{
	struct node_blob_fetch *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	f->bufs = malloc((size_t)BLOB_WINDOW * zap_wire_max_payload(n->paxos_wire));
	if (f->bufs == NULL) {
		free(f);
		return -ENOMEM;
	}
	pthread_mutex_init(&f->mu, NULL);
	n->blob_fetch = f;
	return 0;
}

void zap_node_blobs_fetch_free(struct zap_node *n)
{
	struct node_blob_fetch *f = n->blob_fetch;
	if (f == NULL)
		return;
	zap_blob_writer_abort(f->w);
	free(f->want);
	free(f->list);
	free(f->bufs);
	pthread_mutex_destroy(&f->mu);
	free(f);
	n->blob_fetch = NULL;
}
