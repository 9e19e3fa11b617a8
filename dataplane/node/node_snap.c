/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap node checkpoints and snapshot transfer (docs/log.md, "Checkpoints and
 * snapshots"), called from the stages of node_stages.c: every
 * log.checkpoint_slots applied slots (or _bytes, _seconds) the apply stage writes the store and
 * the state machine into one image (node_snap_checkpoint); the paxos stage
 * keeps it to serve (SNAP_REQ / SNAP_CHUNK, node_snap_rx), lets the engine
 * drop older values and has the log stage write it to the checkpoint file
 * (node_snap_log_checkpoint); a node told SNAPSHOT_NEEDED fetches a peer's
 * image (node_snap_fetch_start, node_snap_tick) and the apply stage installs
 * it into its empty store and state machine (node_snap_install).
 *
 * Nothing here sends a frame: the paxos stage's calls queue their SNAP_REQ
 * and SNAP_CHUNK messages, and the stage takes them with node_snap_out_next()
 * and sends them after each call, so this file sits below node_stages.c.
 *
 * Threading: each function names the stage (lcore) that calls it; the state
 * in struct node_snap is split the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node_core.h"

#include "base/bytes.h"

static int snap_file_write(struct zap_node *n, const uint8_t *data, uint64_t len);

/* ------------------------------------------------------------------ snapshots */

/*
 * An image: header (magic "ZSNP", version, slot, store stream bytes, state
 * machine stream bytes; little-endian), the store snapshot stream, the state
 * machine snapshot stream. Each stream carries its own checksum.
 */
#define SNAP_MAGIC 0x504e535au
#define SNAP_VERSION 1u
#define SNAP_HDR_BYTES 32u
/** Slots of the rings between the paxos and apply stages (images in flight). */
#define SNAP_RING_SLOTS 64u
/** Chunks sent per SNAP_REQ. */
#define SNAP_WINDOW 32u
/** Messages one call into this file queues at most (one SNAP_REQ's window of chunks). */
#define SNAP_OUT_MSGS SNAP_WINDOW
/** A fetch asks again from where it stands after this long without its window. */
#define SNAP_RESEND_NS (50ull * 1000 * 1000)
/** A due checkpoint waits for open uploads at most this long. */
#define SNAP_DEFER_MAX_NS (30ull * 1000 * 1000 * 1000)
/** How often the paxos stage looks whether the served image is in the checkpoint file. */
#define SNAP_FILE_CHECK_NS (200ull * 1000 * 1000)
/** A fetch with no progress for this long is abandoned (the engine asks again). */
#define SNAP_GIVE_UP_NS (3ull * 1000 * 1000 * 1000)

/** A snapshot image handed between the apply and paxos stages. */
struct node_image {
	uint64_t slot;
	uint64_t len;  /**< bytes held */
	uint64_t cap;  /**< bytes allocated (a fetch: the image's full size) */
	uint16_t from; /**< node it was fetched from; 0: taken here */
	int8_t status; /**< apply -> paxos: SNAP_TAKEN, SNAP_INSTALLED, SNAP_FAILED */
	uint8_t *data; /**< the bytes; NULL once served from the checkpoint file (fd1) */
	int fd1;       /**< 1 + descriptor of the checkpoint file holding these bytes; 0: none */
};

/* SNAP_REPLACE: fetched by a node that is not empty; written as its checkpoint, then it restarts */
enum { SNAP_TAKEN = 0, SNAP_INSTALLED = 1, SNAP_REPLACE = 2, SNAP_FAILED = -1 };

struct node_snap {
	uint64_t every;		   /**< checkpoint period in applied slots; 0: none */
	uint64_t every_bytes;	   /**< ... in bytes of applied values; 0: none */
	uint64_t every_ns;	   /**< ... in time (while slots are applied); 0: none */
	uint64_t max_bytes;	   /**< largest image a fetch accepts */
	struct rte_ring *to_paxos; /**< apply -> paxos: node_image * (taken, installed, failed) */
	struct rte_ring *to_apply; /**< paxos -> apply: node_image * to install */
	/* apply stage */
	uint64_t next_ckpt; /**< applied slot that triggers the next checkpoint */
	uint64_t bytes_since; /**< bytes of values applied since the last checkpoint */
	uint64_t last_ns;     /**< when the last checkpoint was taken (or the node started) */
	uint64_t deferred_ns; /**< since when a due checkpoint waits for uploads; 0: none */
	/* paxos stage */
	struct node_image *serving; /**< newest image, served to peers (from the checkpoint file
				       once the log stage wrote it: its memory is freed) */
	uint64_t file_check_ns;	    /**< next look at the checkpoint file */
	uint8_t *chunk_buf;	    /**< SNAP_WINDOW datagrams read from the file for one answer */
	struct node_image *fetch;   /**< being received; NULL when none */
	uint64_t prev_ckpt_slot;    /**< slot of the last checkpoint taken here (compaction point) */
	uint16_t fetch_from;
	uint64_t fetch_want; /**< slot the image must cover */
	uint64_t fetch_resend_ns, fetch_give_up_ns, fetch_start_ns;
	bool installing; /**< a fetched image is with the apply stage */
	/* paxos stage: messages for it to send (node_snap_out_next) */
	struct zap_paxos_msg out[SNAP_OUT_MSGS];
	unsigned out_n, out_pos;
	/* log stage <-> the checkpoint writer thread (one file at a time, off
	   the log stage, so that appends and syncs go on while it is written) */
	pthread_t writer;
	bool writer_up, writer_quit;
	pthread_mutex_t wmu;
	pthread_cond_t wcv;
	struct node_buf *w_job;	 /**< being written */
	struct node_buf *w_next; /**< waiting; a newer checkpoint replaces it */
	struct node_buf *w_done; /**< written (w_rc), for the log stage to finish */
	int w_rc;
	uint64_t w_ns;
};

static void image_free(struct node_image *img)
{
	if (img != NULL) {
		free(img->data);
		if (img->fd1 > 0)
			close(img->fd1 - 1);
		free(img);
	}
}

static int snap_path(const struct zap_node *n, char *buf, size_t cap, const char *suffix);

/*
 * Paxos stage: once the log stage has written the served image to the
 * checkpoint file (same length, same header), serve it from there and free
 * its memory, so that a node holds no image in RAM between checkpoints.
 */
static void snap_serve_from_file(struct zap_node *n)
{
	struct node_image *img = n->snap->serving;
	char path[4096];
	if (img == NULL || img->data == NULL || img->len < SNAP_HDR_BYTES ||
	    snap_path(n, path, sizeof(path), "") != 0)
		return;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	uint8_t hdr[SNAP_HDR_BYTES];
	off_t size = lseek(fd, 0, SEEK_END);
	if (size < 0 || (uint64_t)size != img->len ||
	    pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    memcmp(hdr, img->data, sizeof(hdr)) != 0) {
		close(fd); /* not written yet, or an older one */
		return;
	}
	img->fd1 = fd + 1;
	n->cnt.snap_images_to_file++;
	free(img->data);
	img->data = NULL;
	img->cap = 0;
}

static int image_reserve(struct node_image *img, uint64_t want)
{
	if (want <= img->cap)
		return 0;
	uint64_t cap = img->cap ? img->cap : 64u << 10;
	while (cap < want)
		cap *= 2;
	uint8_t *d = realloc(img->data, cap);
	if (d == NULL)
		return -ENOMEM;
	img->data = d;
	img->cap = cap;
	return 0;
}

static int image_sink(const void *buf, size_t len, void *ctx)
{
	struct node_image *img = ctx;
	if (image_reserve(img, img->len + len) != 0)
		return -ENOMEM;
	memcpy(img->data + img->len, buf, len);
	img->len += len;
	return 0;
}

/* Apply stage: an image of the store and state machine at the applied slot. */
void node_snap_checkpoint(struct zap_node *n, uint64_t value_bytes)
{
	struct node_snap *s = n->snap;
	s->bytes_since += value_bytes;
	if (zap_node_stop)
		return;
	uint64_t now = zap_poll_now_ns();
	bool due = (s->every != 0 && n->applied_slot >= s->next_ckpt) ||
		   (s->every_bytes != 0 && s->bytes_since >= s->every_bytes) ||
		   (s->every_ns != 0 && now - s->last_ns >= s->every_ns);
	if (!due)
		return;
	if (rte_ring_count(s->to_paxos) >= SNAP_RING_SLOTS / 2)
		return; /* the paxos stage is behind: take it after a later slot */
	/* An upload in flight (an open payload of a large transaction) would go
	   into the image whole, and again at every checkpoint it spans: wait
	   until none is open, SNAP_DEFER_MAX_NS at most. */
	struct zap_txn_stats ts;
	zap_txn_sm_stats(n->sm, &ts);
	if (ts.payload_bytes > 0) {
		if (s->deferred_ns == 0)
			s->deferred_ns = now;
		if (now - s->deferred_ns < SNAP_DEFER_MAX_NS) {
			n->cnt.checkpoints_deferred++;
			return;
		}
	}
	s->deferred_ns = 0;
	s->next_ckpt = n->applied_slot + s->every;
	s->bytes_since = 0;
	s->last_ns = now;
	uint64_t t0 = zap_poll_now_ns();
	struct node_image *img = calloc(1, sizeof(*img));
	int rc = img != NULL ? image_reserve(img, SNAP_HDR_BYTES) : -ENOMEM;
	if (rc == 0) {
		img->len = SNAP_HDR_BYTES;
		img->slot = n->applied_slot;
		rc = zap_store_snapshot_write(n->store, image_sink, img);
	}
	uint64_t store_bytes = rc == 0 ? img->len - SNAP_HDR_BYTES : 0;
	if (rc == 0)
		rc = zap_txn_sm_snapshot_write(n->sm, image_sink, img);
	if (rc == 0) {
		zap_put_le32(img->data, SNAP_MAGIC);
		zap_put_le32(img->data + 4, SNAP_VERSION);
		zap_put_le64(img->data + 8, img->slot);
		zap_put_le64(img->data + 16, store_bytes);
		zap_put_le64(img->data + 24, img->len - SNAP_HDR_BYTES - store_bytes);
		img->status = SNAP_TAKEN;
		if (rte_ring_enqueue(s->to_paxos, img) != 0)
			rc = -ENOBUFS;
	}
	if (rc != 0) {
		if (n->cnt.checkpoint_errors++ == 0)
			fprintf(stderr,
				"zapd: node %u: checkpoint at slot %" PRIu64 " failed: %s\n", n->id,
				n->applied_slot, strerror(-rc));
		image_free(img);
		return;
	}
	n->cnt.checkpoints++;
	n->cnt.checkpoint_ns += zap_poll_now_ns() - t0;
}

/* Apply stage: load a fetched image into the (empty) store and state machine. */
static int snap_load(struct zap_node *n, struct node_image *img)
{
	const uint8_t *d = img->data;
	if (img->len < SNAP_HDR_BYTES || zap_get_le32(d) != SNAP_MAGIC)
		return -EBADMSG;
	if (zap_get_le32(d + 4) != SNAP_VERSION)
		return -ENOTSUP;
	uint64_t slot = zap_get_le64(d + 8), sb = zap_get_le64(d + 16), mb = zap_get_le64(d + 24);
	if (slot != img->slot || sb > img->len - SNAP_HDR_BYTES ||
	    mb != img->len - SNAP_HDR_BYTES - sb)
		return -EBADMSG;
	if (n->applied_slot != 0 || zap_store_last_tid(n->store) != 0 ||
	    zap_txn_sm_applied_index(n->sm) != 0)
		return -EEXIST; /* only an empty node installs a snapshot */
	int rc = zap_store_snapshot_load(n->store, d + SNAP_HDR_BYTES, sb);
	if (rc != 0)
		return rc; /* the store is still empty */
	rc = zap_txn_sm_snapshot_load(n->sm, d + SNAP_HDR_BYTES + sb, mb);
	if (rc != 0) {
		/* the store holds the snapshot, the state machine does not */
		fprintf(stderr,
			"zapd: node %u: state machine snapshot of slot %" PRIu64
			" does not load (%s) after its store did; stopping\n",
			n->id, slot, strerror(-rc));
		zap_node_stop = 1;
		return rc;
	}
	__atomic_store_n(&n->applied_slot, slot, __ATOMIC_RELEASE);
	n->snap->next_ckpt = slot + n->snap->every;
	return 0;
}

void node_snap_install(struct zap_node *n, bool *work)
{
	struct node_image *img;
	while (rte_ring_dequeue(n->snap->to_apply, (void **)&img) == 0) {
		*work = true;
		int rc = snap_load(n, img);
		if (rc == -EEXIST) {
			/* a node that is not empty cannot load an image over its
			   state while readers use it: the image becomes its checkpoint
			   file (its log keeps its promise) and it restarts from it */
			n->cnt.snap_refused++;
			img->status = SNAP_REPLACE;
			fprintf(stderr,
				"zapd: node %u: its peers have compacted the slots it lacks: it "
				"takes node %u's snapshot of slot %" PRIu64
				" as its checkpoint and restarts from it\n",
				n->id, img->from, img->slot);
		} else if (rc == 0) {
			n->cnt.snapshots_installed++;
			img->status = SNAP_INSTALLED;
			fprintf(stderr,
				"zapd: node %u: installed snapshot of slot %" PRIu64 " (%" PRIu64
				" bytes, last tid %016" PRIx64 ") from node %u\n",
				n->id, img->slot, img->len, zap_store_last_tid(n->store),
				img->from);
			zap_node_blobs_find_missing(n); /* the image carries no blob files */
		} else {
			n->cnt.snapshot_install_errors++;
			img->status = SNAP_FAILED;
			fprintf(stderr,
				"zapd: node %u: snapshot of slot %" PRIu64
				" from node %u not installed: %s\n",
				n->id, img->slot, img->from,
				rc == -EEXIST ? "this node's state is not empty" : strerror(-rc));
		}
		if (rte_ring_enqueue(n->snap->to_paxos, img) != 0) {
			/* cannot happen: checkpoints leave half the ring free */
			image_free(img);
			zap_node_stop = 1;
		}
	}
}

/*
 * Paxos stage: queue @p m for the paxos stage to send (node_snap_out_next).
 * The stage empties the queue after every call into this file, and no call
 * queues more than SNAP_OUT_MSGS; a message beyond that is dropped, counted
 * as a full send queue.
 */
static void snap_send(struct zap_node *n, const struct zap_paxos_msg *m)
{
	struct node_snap *s = n->snap;
	if (s->out_n == SNAP_OUT_MSGS) {
		n->cnt.send_ring_full_drops++;
		return;
	}
	s->out[s->out_n++] = *m;
}

const struct zap_paxos_msg *node_snap_out_next(struct zap_node *n)
{
	struct node_snap *s = n->snap;
	if (s->out_pos < s->out_n)
		return &s->out[s->out_pos++];
	s->out_n = 0;
	s->out_pos = 0;
	return NULL;
}

/* Paxos stage: ask node `to` for its image covering `slot`, from byte `offset`. */
static void snap_request(struct zap_node *n, uint64_t now, uint16_t to, uint64_t slot,
			 uint64_t offset)
{
	struct zap_paxos_msg m = {.type = ZAP_WIRE_TYPE_SNAP_REQ,
				  .from = n->id,
				  .to = to,
				  .slot = slot,
				  .offset = offset};
	snap_send(n, &m);
	n->cnt.snap_requests++;
	n->snap->fetch_resend_ns = now + SNAP_RESEND_NS;
}

void node_snap_fetch_start(struct zap_node *n, uint64_t now, uint16_t from, uint64_t slot)
{
	struct node_snap *s = n->snap;
	if (s->installing || from == 0 || from == n->id)
		return;
	if (__atomic_load_n(&n->applied_slot, __ATOMIC_ACQUIRE) >= slot)
		return; /* it has what the image would bring */
	if (s->fetch != NULL) {
		if (s->fetch_from == from && s->fetch_want >= slot)
			return; /* already under way */
		image_free(s->fetch);
	}
	s->fetch = calloc(1, sizeof(*s->fetch));
	if (s->fetch == NULL)
		return; /* the engine asks again */
	s->fetch->from = from;
	s->fetch_from = from;
	s->fetch_want = slot;
	s->fetch_start_ns = now;
	s->fetch_give_up_ns = now + SNAP_GIVE_UP_NS;
	n->cnt.snap_fetches++;
	fprintf(stderr,
		"zapd: node %u: fetching a snapshot covering slot %" PRIu64 " from node %u\n",
		n->id, slot, from);
	snap_request(n, now, from, slot, 0);
}

void node_snap_tick(struct zap_node *n, uint64_t now)
{
	struct node_snap *s = n->snap;
	if (s->serving != NULL && s->serving->data != NULL && now >= s->file_check_ns) {
		s->file_check_ns = now + SNAP_FILE_CHECK_NS;
		snap_serve_from_file(n);
	}
	if (s->fetch == NULL)
		return;
	if (now >= s->fetch_give_up_ns) {
		fprintf(stderr,
			"zapd: node %u: snapshot fetch from node %u stalled at byte %" PRIu64
			"; abandoned\n",
			n->id, s->fetch_from, s->fetch->len);
		image_free(s->fetch);
		s->fetch = NULL;
		return;
	}
	if (now >= s->fetch_resend_ns)
		snap_request(n, now, s->fetch_from, s->fetch_want, s->fetch->len);
}

/* Paxos stage: answer a SNAP_REQ with up to SNAP_WINDOW chunks of the image. */
static void snap_serve(struct zap_node *n, const struct zap_paxos_msg *m)
{
	const struct node_image *img = n->snap->serving;
	if (img == NULL || img->slot < m->slot || m->offset >= img->len) {
		n->cnt.snap_req_drops++;
		return;
	}
	uint64_t chunk = zap_wire_max_payload(n->paxos_wire);
	struct zap_paxos_msg c = {.type = ZAP_WIRE_TYPE_SNAP_CHUNK,
				  .from = n->id,
				  .to = m->from,
				  .slot = img->slot,
				  .value_len = img->len};
	uint64_t off = m->offset;
	for (unsigned i = 0; i < SNAP_WINDOW && off < img->len; i++) {
		uint64_t len = img->len - off < chunk ? img->len - off : chunk;
		c.offset = off;
		if (img->data != NULL) {
			c.payload = img->data + off;
		} else {
			uint8_t *b = n->snap->chunk_buf + (size_t)i * chunk;
			if (pread(img->fd1 - 1, b, len, (off_t)off) != (ssize_t)len)
				break; /* the peer asks again */
			c.payload = b;
		}
		c.len = (uint32_t)len;
		c.flags = i + 1 == SNAP_WINDOW || off + len == img->len ? ZAP_PAXOS_FLAG_LAST : 0;
		snap_send(n, &c);
		n->cnt.snap_chunks_tx++;
		off += len;
	}
	if (off == img->len) {
		n->cnt.snapshots_sent++;
		fprintf(stderr,
			"zapd: node %u: sent snapshot of slot %" PRIu64 " (%" PRIu64
			" bytes) to node %u from %s\n",
			n->id, img->slot, img->len, m->from,
			img->data != NULL ? "memory" : "its checkpoint file");
	}
}

/* Paxos stage: one chunk of the image being fetched (in order only). */
static void snap_chunk(struct zap_node *n, uint64_t now, const struct zap_paxos_msg *m)
{
	struct node_snap *s = n->snap;
	struct node_image *f = s->fetch;
	if (f == NULL || m->from != s->fetch_from || m->slot < s->fetch_want || m->len == 0 ||
	    m->value_len < SNAP_HDR_BYTES || m->value_len > s->max_bytes ||
	    m->offset > m->value_len || m->len > m->value_len - m->offset) {
		n->cnt.snap_chunk_drops++;
		return;
	}
	if (m->slot != f->slot || m->value_len != f->cap) {
		/* another image (the peer took a newer one): start it from its first byte */
		if (m->offset != 0) {
			n->cnt.snap_chunk_drops++;
			if (m->flags & ZAP_PAXOS_FLAG_LAST) {
				f->len = 0;
				snap_request(n, now, s->fetch_from, s->fetch_want, 0);
			}
			return;
		}
		uint8_t *d = realloc(f->data, m->value_len);
		if (d == NULL) {
			n->cnt.snap_chunk_drops++;
			return;
		}
		f->data = d;
		f->cap = m->value_len;
		f->slot = m->slot;
		f->len = 0;
	}
	if (m->offset != f->len) {
		n->cnt.snap_chunk_drops++; /* a gap or a repeat: ask again from where we stand */
		if (m->flags & ZAP_PAXOS_FLAG_LAST)
			snap_request(n, now, s->fetch_from, s->fetch_want, f->len);
		return;
	}
	memcpy(f->data + f->len, m->payload, m->len);
	f->len += m->len;
	n->cnt.snap_chunks_rx++;
	s->fetch_give_up_ns = now + SNAP_GIVE_UP_NS;
	if (f->len == f->cap) {
		fprintf(stderr,
			"zapd: node %u: fetched snapshot of slot %" PRIu64 " (%" PRIu64
			" bytes) from node %u in %" PRIu64 " ms\n",
			n->id, f->slot, f->len, f->from, (now - s->fetch_start_ns) / 1000000);
		s->fetch = NULL;
		if (rte_ring_enqueue(s->to_apply, f) != 0) {
			image_free(f);
			return;
		}
		s->installing = true;
		return;
	}
	if (m->flags & ZAP_PAXOS_FLAG_LAST)
		snap_request(n, now, s->fetch_from, s->fetch_want, f->len);
}

void node_snap_rx(struct zap_node *n, uint64_t now, const struct zap_paxos_msg *m)
{
	if (m->type == ZAP_WIRE_TYPE_SNAP_REQ)
		snap_serve(n, m);
	else
		snap_chunk(n, now, m);
}

/*
 * Paxos stage: a copy of the image to the log stage, which writes it to the
 * checkpoint file, appends the current promise again and drops the segments
 * the image covers (log_checkpoint). Skipped (counted) when no buffer or
 * ring slot is free: the next checkpoint writes a newer one.
 */
static void snap_persist(struct zap_node *n, const struct node_image *img, bool restart)
{
	struct node_buf *b = img->len <= UINT32_MAX ? zap_node_buf_get(n, img->len) : NULL;
	if (b == NULL) {
		n->cnt.checkpoint_file_skips++;
		return;
	}
	struct zap_paxos_stats ps;
	zap_paxos_stats(n->px, &ps);
	b->kind = NODE_BUF_CHECKPOINT;
	b->rec_type = ZAP_LOG_PROMISE;
	b->len = (uint32_t)img->len;
	b->slot = img->slot;
	b->ballot = ps.ballot;
	b->token = restart ? 1 : 0;
	memcpy(b->data, img->data, img->len);
	if (rte_ring_enqueue(n->persist_ring, b) != 0) {
		zap_node_buf_put(n, b);
		n->cnt.checkpoint_file_skips++;
	}
}

/*
 * The checkpoint writer thread: writes the file of each image the log stage
 * hands it (snap_file_write: aside, synced, renamed, directory synced) and
 * hands it back; the log stage finishes it (node_snap_log_done).
 */
static void *snap_writer_main(void *arg)
{
	struct zap_node *n = arg;
	struct node_snap *s = n->snap;
	pthread_mutex_lock(&s->wmu);
	for (;;) {
		while (!s->writer_quit && (s->w_job == NULL || s->w_done != NULL))
			pthread_cond_wait(&s->wcv, &s->wmu);
		if (s->writer_quit)
			break;
		struct node_buf *b = s->w_job;
		pthread_mutex_unlock(&s->wmu);
		uint64_t t0 = zap_poll_now_ns();
		int rc = snap_file_write(n, b->data, b->len);
		uint64_t ns = zap_poll_now_ns() - t0;
		pthread_mutex_lock(&s->wmu);
		s->w_job = NULL;
		s->w_done = b;
		s->w_rc = rc;
		s->w_ns = ns;
	}
	pthread_mutex_unlock(&s->wmu);
	return NULL;
}

int node_snap_log_checkpoint(struct zap_node *n, struct node_buf *b)
{
	struct node_snap *s = n->snap;
	struct node_buf *old = NULL;
	pthread_mutex_lock(&s->wmu);
	if (s->w_job == NULL && s->w_done == NULL && s->w_next == NULL) {
		s->w_job = b;
		pthread_cond_signal(&s->wcv);
	} else {
		old = s->w_next; /* a newer checkpoint makes the waiting one pointless */
		s->w_next = b;
	}
	pthread_mutex_unlock(&s->wmu);
	if (old != NULL) {
		n->cnt.checkpoint_file_skips++;
		zap_node_buf_put(n, old);
	}
	return 0;
}

/*
 * Log stage: finish a checkpoint file the writer has written: the promise
 * again in a record at slot + 1, one sync, and the segments whose records
 * all lie at or below the image's slot go. A file that could not be written
 * leaves the log whole (counted, one message); @return only log errors.
 */
int node_snap_log_done(struct zap_node *n)
{
	struct node_snap *s = n->snap;
	if (s == NULL || !s->writer_up)
		return 0;
	pthread_mutex_lock(&s->wmu);
	struct node_buf *b = s->w_done;
	int rc = s->w_rc;
	uint64_t ns = s->w_ns;
	if (b != NULL) {
		s->w_done = NULL;
		if (s->w_next != NULL && s->w_job == NULL) {
			s->w_job = s->w_next;
			s->w_next = NULL;
		}
		pthread_cond_signal(&s->wcv);
	}
	pthread_mutex_unlock(&s->wmu);
	if (b == NULL)
		return 0;
	n->cnt.checkpoint_file_ns += ns;
	if (rc != 0) {
		if (n->cnt.checkpoint_file_errors++ == 0)
			fprintf(stderr,
				"zapd: node %u: checkpoint file of slot %" PRIu64
				" not written: %s; the log keeps every segment\n",
				n->id, b->slot, strerror(-rc));
		zap_node_buf_put(n, b);
		return 0;
	}
	n->cnt.checkpoint_files++;
	rc = zap_log_append(n->log, ZAP_LOG_PROMISE, b->slot + 1, b->ballot, NULL, 0, NULL);
	if (rc == 0)
		rc = zap_log_sync(n->log);
	if (rc == 0) {
		n->cnt.log_syncs++;
		n->log_group.pending = 0;
		n->log_synced_token = n->log_appended_token;
		rc = zap_log_drop_before(n->log, b->slot + 1);
	}
	if (rc >= 0) {
		n->cnt.segments_dropped += (uint64_t)rc;
		rc = 0;
		if (b->token == 1) {
			fprintf(stderr,
				"zapd: node %u: wrote the snapshot of slot %" PRIu64
				" as its checkpoint; restarting\n",
				n->id, b->slot);
			zap_node_restart = 1;
			zap_node_stop = 1;
		}
	}
	zap_node_buf_put(n, b);
	return rc;
}

/*
 * Paxos stage: the next image from the apply stage. A checkpoint is served
 * and lets the engine drop values one period older; an installed image is
 * served and reported to the engine; a failed install is dropped. @return 1
 * after an image the engine heard of (its outputs are to be drained), 0 when
 * no image waits.
 */
int node_snap_from_apply(struct zap_node *n, uint64_t now, bool *work)
{
	struct node_snap *s = n->snap;
	struct node_image *img;
	while (rte_ring_dequeue(s->to_paxos, (void **)&img) == 0) {
		*work = true;
		if (img->status == SNAP_FAILED) {
			s->installing = false;
			image_free(img);
			continue;
		}
		if (img->status == SNAP_REPLACE) {
			s->installing = false;
			snap_persist(n, img, true);
			image_free(img);
			continue;
		}
		if (img->status == SNAP_INSTALLED) {
			s->installing = false;
			zap_paxos_snapshot_installed(n->px, now, img->slot);
		} else {
			/* the engine keeps the values since the previous checkpoint: a
			   peer that lags by less than one checkpoint interval catches up
			   from them, one further behind installs a snapshot */
			if (s->prev_ckpt_slot > 0)
				zap_paxos_compact(n->px, s->prev_ckpt_slot);
			s->prev_ckpt_slot = img->slot;
		}
		if (s->serving == NULL || img->slot > s->serving->slot) {
			snap_persist(n, img, false);
			image_free(s->serving);
			s->serving = img;
		} else {
			image_free(img);
		}
		return 1;
	}
	return 0;
}

/* The checkpoint file of this node's log directory. */
static int snap_path(const struct zap_node *n, char *buf, size_t cap, const char *suffix)
{
	int len = snprintf(buf, cap, "%s/checkpoint.zsnap%s", n->self->log_dir, suffix);
	return len < 0 || (size_t)len >= cap ? -ENAMETOOLONG : 0;
}

static int write_all(int fd, const uint8_t *p, uint64_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (uint64_t)w;
	}
	return 0;
}

static int snap_file_write(struct zap_node *n, const uint8_t *data, uint64_t len)
{
	char tmp[4096], path[4096];
	int rc = snap_path(n, tmp, sizeof(tmp), ".tmp");
	if (rc == 0)
		rc = snap_path(n, path, sizeof(path), "");
	if (rc != 0)
		return rc;
	bool sync = n->cfg->log.durability != ZAP_DURABILITY_MEMORY;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, data, len);
	if (rc == 0 && sync && fdatasync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0) {
		unlink(tmp);
		return rc;
	}
	if (sync) {
		int dfd = open(n->self->log_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return -errno;
		rc = fsync(dfd) != 0 ? -errno : 0;
		close(dfd);
	}
	return rc;
}

int zap_node_snap_restore(struct zap_node *n)
{
	char path[4096];
	int rc = snap_path(n, path, sizeof(path), "");
	if (rc != 0)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	struct node_image *img = calloc(1, sizeof(*img));
	off_t size = lseek(fd, 0, SEEK_END);
	rc = img == NULL ? -ENOMEM : size < 0 ? -errno : 0;
	if (rc == 0 && (uint64_t)size < SNAP_HDR_BYTES)
		rc = -EBADMSG;
	if (rc == 0)
		rc = image_reserve(img, (uint64_t)size);
	for (uint64_t off = 0; rc == 0 && off < (uint64_t)size;) {
		ssize_t r = pread(fd, img->data + off, (uint64_t)size - off, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			rc = r < 0 ? -errno : -EBADMSG;
		else
			off += (uint64_t)r;
	}
	close(fd);
	if (rc == 0) {
		img->len = (uint64_t)size;
		img->slot = zap_get_le64(img->data + 8);
		rc = snap_load(n, img);
	}
	if (rc != 0) {
		fprintf(stderr, "zapd: node %u: checkpoint %s: %s\n", n->id, path, strerror(-rc));
		image_free(img);
		return rc;
	}
	fprintf(stderr,
		"zapd: node %u: loaded checkpoint of slot %" PRIu64 " (%" PRIu64
		" bytes, last tid %016" PRIx64 ") from %s\n",
		n->id, img->slot, img->len, zap_store_last_tid(n->store), path);
	n->snap->serving = img;
	return 0;
}

int zap_node_snap_init(struct zap_node *n)
{
	struct node_snap *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	n->snap = s;
	s->chunk_buf = malloc((size_t)SNAP_WINDOW * zap_wire_max_payload(n->paxos_wire));
	if (s->chunk_buf == NULL)
		return -ENOMEM;
	const struct zap_log_config *lc = &n->cfg->log;
	s->every = lc->checkpoint_slots;
	s->every_bytes = lc->checkpoint_bytes;
	s->every_ns = (uint64_t)lc->checkpoint_seconds * 1000000000ull;
	s->next_ckpt = s->every;
	s->last_ns = zap_poll_now_ns();
	s->max_bytes = 2 * n->cfg->store.size_bytes + (64ull << 20);
	char name[RTE_RING_NAMESIZE];
	snprintf(name, sizeof(name), "zap%u_snap_px", n->id);
	s->to_paxos = rte_ring_create(name, SNAP_RING_SLOTS, (int)rte_socket_id(),
				      RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "zap%u_snap_ap", n->id);
	s->to_apply = rte_ring_create(name, SNAP_RING_SLOTS, (int)rte_socket_id(),
				      RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (s->to_paxos == NULL || s->to_apply == NULL) {
		fprintf(stderr, "zapd: snapshot rings: %s\n", rte_strerror(rte_errno));
		return -ENOMEM;
	}
	pthread_mutex_init(&s->wmu, NULL);
	pthread_cond_init(&s->wcv, NULL);
	int rc = pthread_create(&s->writer, NULL, snap_writer_main, n);
	if (rc != 0)
		return -rc;
	s->writer_up = true;
	return 0;
}

void zap_node_snap_free(struct zap_node *n)
{
	struct node_snap *s = n->snap;
	if (s == NULL)
		return;
	struct node_image *img;
	while (s->to_paxos != NULL && rte_ring_dequeue(s->to_paxos, (void **)&img) == 0)
		image_free(img);
	while (s->to_apply != NULL && rte_ring_dequeue(s->to_apply, (void **)&img) == 0)
		image_free(img);
	rte_ring_free(s->to_paxos);
	rte_ring_free(s->to_apply);
	if (s->writer_up) {
		pthread_mutex_lock(&s->wmu);
		s->writer_quit = true;
		pthread_cond_signal(&s->wcv);
		pthread_mutex_unlock(&s->wmu);
		pthread_join(s->writer, NULL); /* after the file being written, if any */
		struct node_buf *left[] = {s->w_job, s->w_next, s->w_done};
		for (unsigned i = 0; i < 3; i++)
			if (left[i] != NULL)
				zap_node_buf_put(n, left[i]);
		pthread_cond_destroy(&s->wcv);
		pthread_mutex_destroy(&s->wmu);
	}
	image_free(s->serving);
	image_free(s->fetch);
	free(s->chunk_buf);
	free(s);
	n->snap = NULL;
}
