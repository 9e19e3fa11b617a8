/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap store: life cycle of the shared mapping, readers, and the read path.
 * It stands on the arena (store_arena.c) and the oid index (store_index.c);
 * the writer (store_write.c), the pack (store_gc.c) and the snapshots
 * (store_snapshot.c) stand on it. The layout all share is store_layout.h.
 *
 * Read path invariants:
 *  - A reader takes its snapshot (hdr->last_tid, acquire) after announcing
 *    itself (rte_rcu_qsbr online, or its reader table slot), so any block
 *    it can reach is not freed before it leaves the section.
 *  - Revisions with tid > snapshot are skipped: the writer links a
 *    transaction's revisions before it publishes the tid, so a reader never
 *    sees half a transaction.
 *  - Chains are walked through `next` loaded with acquire; the writer
 *    initialises a block fully before it publishes the block's offset.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "store_layout.h"

#define DEFAULT_SIZE_BYTES (1ull << 30)
#define DEFAULT_INDEX_SLOTS 4096u
#define DEFAULT_RING_SLOTS 65536u
#define DEFAULT_PROCESS_READERS 126u
#define DEFAULT_THREAD_READERS 64u
#define HUGETLBFS_MAGIC_NUMBER 0x958458f6

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static uint64_t pow2_at_least(uint64_t v)
{
	uint64_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

/* ------------------------------------------------------------ life cycle */

static int store_qsbr_init(struct zap_store *s, uint32_t max_threads)
{
	size_t sz = rte_rcu_qsbr_get_memsize(max_threads);
	if (sz == 0)
		return -EINVAL;
	s->qsbr = aligned_alloc(RTE_CACHE_LINE_SIZE, round_up(sz, RTE_CACHE_LINE_SIZE));
	s->thread_used = calloc(max_threads, 1);
	if (s->qsbr == NULL || s->thread_used == NULL)
		return -ENOMEM;
	if (rte_rcu_qsbr_init(s->qsbr, max_threads) != 0)
		return -EINVAL;
	s->max_threads = max_threads;
	return 0;
}

static int store_open_backing(struct zap_store *s, const struct zap_store_params *p,
			      uint32_t *page_bytes)
{
	*page_bytes = STORE_PAGE_BYTES;
	if (p->hugetlbfs_dir == NULL) {
		s->fd = memfd_create("zap-store", MFD_CLOEXEC);
		return s->fd < 0 ? -errno : 0;
	}
	struct statfs fs;
	if (statfs(p->hugetlbfs_dir, &fs) != 0)
		return -errno;
	if ((unsigned long)fs.f_type != HUGETLBFS_MAGIC_NUMBER)
		return -ENOTSUP;
	*page_bytes = (uint32_t)fs.f_bsize;
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/zap-store-%d", p->hugetlbfs_dir, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	s->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (s->fd < 0)
		return -errno;
	s->path = strdup(path);
	return s->path ? 0 : -ENOMEM;
}

static void store_layout(struct store_hdr *h, const struct zap_store_params *p,
			 uint32_t page_bytes, uint64_t size_bytes)
{
	h->magic = STORE_MAGIC;
	h->version = STORE_VERSION;
	h->page_bytes = page_bytes;
	h->size_bytes = size_bytes;
	h->max_record_bytes = p->max_record_bytes;
	h->readers_n = p->max_process_readers;
	h->readers_off = round_up(sizeof(*h), page_bytes);
	h->readers_bytes = round_up((uint64_t)h->readers_n * sizeof(struct store_reader_slot),
				    page_bytes);
	h->ring_n = p->txn_ring_slots;
	h->ring_off = h->readers_off + h->readers_bytes;
	h->arena_off = round_up(h->ring_off + (uint64_t)h->ring_n * sizeof(struct store_ring_slot),
				RTE_CACHE_LINE_SIZE);
	h->bump = h->arena_off;
	h->gen = STORE_GEN_FIRST;
}

int zap_store_create(const struct zap_store_params *params, struct zap_store **out)
{
	struct zap_store_params p = *params;
	if (p.size_bytes == 0)
		p.size_bytes = DEFAULT_SIZE_BYTES;
	if (p.max_record_bytes == 0)
		p.max_record_bytes = ZAP_STORE_DEFAULT_MAX_RECORD_BYTES;
	if (p.index_initial_slots == 0)
		p.index_initial_slots = DEFAULT_INDEX_SLOTS;
	if (p.txn_ring_slots == 0)
		p.txn_ring_slots = DEFAULT_RING_SLOTS;
	if (p.max_process_readers == 0)
		p.max_process_readers = DEFAULT_PROCESS_READERS;
	if (p.max_thread_readers == 0)
		p.max_thread_readers = DEFAULT_THREAD_READERS;
	if (p.txn_ring_slots < 2 || p.max_record_bytes > p.size_bytes / 2 ||
	    p.size_bytes < (1u << 20))
		return -EINVAL;

	struct zap_store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->fd = -1;
	s->writer = 1;
	pthread_mutex_init(&s->reg_lock, NULL);
	uint32_t page_bytes;
	int rc = store_open_backing(s, &p, &page_bytes);
	if (rc != 0)
		goto fail;
	s->size_bytes = round_up(p.size_bytes, page_bytes);
	if (ftruncate(s->fd, (off_t)s->size_bytes) != 0) {
		rc = -errno;
		goto fail;
	}
	s->base = mmap(NULL, s->size_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		       s->fd, 0);
	if (s->base == MAP_FAILED) {
		s->base = NULL;
		rc = -errno;
		goto fail;
	}
	s->hdr = (struct store_hdr *)s->base;
	store_layout(s->hdr, &p, page_bytes, s->size_bytes);
	if (s->hdr->arena_off + (1u << 16) > s->size_bytes) {
		rc = -EINVAL;
		goto fail;
	}
	s->slots = (struct store_reader_slot *)store_at(s, s->hdr->readers_off);
	rc = store_qsbr_init(s, p.max_thread_readers);
	if (rc == 0)
		rc = store_index_init(s, pow2_at_least(p.index_initial_slots));
	if (rc != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	zap_store_close(s);
	return rc;
}

int zap_store_attach(const char *path, struct zap_store **out)
{
	struct zap_store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	pthread_mutex_init(&s->reg_lock, NULL);
	int rc;
	struct stat st;
	struct store_hdr h;
	s->fd = open(path, O_RDWR | O_CLOEXEC);
	if (s->fd < 0 || fstat(s->fd, &st) != 0) {
		rc = -errno;
		goto fail;
	}
	if (pread(s->fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.magic != STORE_MAGIC ||
	    h.version != STORE_VERSION || h.size_bytes != (uint64_t)st.st_size ||
	    h.readers_off == 0 || h.readers_off + h.readers_bytes > h.size_bytes) {
		rc = -EPROTO;
		goto fail;
	}
	s->size_bytes = h.size_bytes;
	s->base = mmap(NULL, s->size_bytes, PROT_READ, MAP_SHARED | MAP_NORESERVE, s->fd, 0);
	if (s->base == MAP_FAILED) {
		s->base = NULL;
		rc = -errno;
		goto fail;
	}
	s->hdr = (struct store_hdr *)s->base;
	s->slots_map = mmap(NULL, h.readers_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd,
			    (off_t)h.readers_off);
	if (s->slots_map == MAP_FAILED) {
		s->slots_map = NULL;
		rc = -errno;
		goto fail;
	}
	s->slots_map_bytes = h.readers_bytes;
	s->slots = s->slots_map;
	*out = s;
	return 0;
fail:
	zap_store_close(s);
	return rc;
}

int zap_store_fd(const struct zap_store *s)
{
	return s->fd;
}

void zap_store_close(struct zap_store *s)
{
	if (s == NULL)
		return;
	if (s->writer)
		store_writer_fini(s);
	if (s->slots_map)
		munmap(s->slots_map, s->slots_map_bytes);
	if (s->base)
		munmap(s->base, s->size_bytes);
	if (s->fd >= 0)
		close(s->fd);
	if (s->path) {
		unlink(s->path);
		free(s->path);
	}
	free(s->qsbr);
	free(s->thread_used);
	pthread_mutex_destroy(&s->reg_lock);
	free(s);
}

/* ------------------------------------------------------------ readers */

static int reader_slot_claim(struct zap_store *s, uint32_t *id)
{
	uint32_t pid = (uint32_t)getpid();
	for (uint32_t i = 0; i < s->hdr->readers_n; i++) {
		uint32_t expect = 0;
		if (__atomic_compare_exchange_n(&s->slots[i].pid, &expect, pid, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			STORE_REL(&s->slots[i].gen, 0);
			*id = i;
			return 0;
		}
	}
	return -ENOSPC;
}

int zap_store_reader_open(struct zap_store *s, struct zap_store_reader **out)
{
	struct zap_store_reader *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->s = s;
	int rc = -ENOSPC;
	if (s->qsbr != NULL) {
		r->thread = 1;
		pthread_mutex_lock(&s->reg_lock);
		for (uint32_t i = 0; i < s->max_threads; i++) {
			if (!s->thread_used[i]) {
				s->thread_used[i] = 1;
				r->id = i;
				rc = rte_rcu_qsbr_thread_register(s->qsbr, i) == 0 ? 0 : -EINVAL;
				break;
			}
		}
		pthread_mutex_unlock(&s->reg_lock);
	} else {
		rc = reader_slot_claim(s, &r->id);
	}
	if (rc != 0) {
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void zap_store_reader_close(struct zap_store_reader *r)
{
	if (r == NULL)
		return;
	struct zap_store *s = r->s;
	if (r->thread) {
		pthread_mutex_lock(&s->reg_lock);
		rte_rcu_qsbr_thread_unregister(s->qsbr, r->id);
		s->thread_used[r->id] = 0;
		pthread_mutex_unlock(&s->reg_lock);
	} else {
		STORE_REL(&s->slots[r->id].gen, 0);
		STORE_REL(&s->slots[r->id].pid, 0);
	}
	free(r);
}

uint64_t zap_store_read_begin(struct zap_store_reader *r)
{
	struct zap_store *s = r->s;
	if (r->thread) {
		/* online carries the full fence that orders it before our loads */
		rte_rcu_qsbr_thread_online(s->qsbr, r->id);
	} else {
		/*
		 * A gen read slightly stale only makes us look older than we
		 * are, which delays reclamation, never frees under us. The
		 * seq_cst store orders the announcement before every later
		 * load (the writer fences between unlinking and scanning).
		 */
		uint64_t g = LOAD_ACQ(&s->hdr->gen);
		__atomic_store_n(&s->slots[r->id].gen, g, __ATOMIC_SEQ_CST);
	}
	r->snapshot = LOAD_ACQ(&s->hdr->last_tid);
	return r->snapshot;
}

void zap_store_read_end(struct zap_store_reader *r)
{
	if (r->thread)
		rte_rcu_qsbr_thread_offline(r->s->qsbr, r->id);
	else
		STORE_REL(&r->s->slots[r->id].gen, 0);
}

uint64_t zap_store_reader_snapshot(const struct zap_store_reader *r)
{
	return r->snapshot;
}

uint64_t zap_store_last_tid(const struct zap_store *s)
{
	return LOAD_ACQ(&s->hdr->last_tid);
}

/* ------------------------------------------------------------ read path */

static uint64_t store_head(const struct zap_store *s, uint64_t oid)
{
	struct store_index_slot *slot = store_index_find(s, store_index_cur(s), oid);
	return slot ? LOAD_ACQ(&slot->head) : 0;
}

static void rev_fill(const struct zap_store *s, const struct store_rev *rv, uint64_t next_serial,
		     struct zap_store_rev *out)
{
	out->deleted = (rv->flags & REV_DELETED) != 0;
	out->data = out->deleted ? NULL : (const void *)(rv + 1);
	out->len = rv->len;
	out->serial = rv->tid;
	out->next_serial = next_serial;
	(void)s;
}

int zap_store_load_before(struct zap_store_reader *r, uint64_t oid, uint64_t before_tid,
			  struct zap_store_rev *out)
{
	if (oid > ZAP_STORE_MAX_OID)
		return -EINVAL;
	struct zap_store *s = r->s;
	uint64_t newer = 0;
	for (uint64_t off = store_head(s, oid); off != 0;) {
		const struct store_rev *rv = store_at(s, off);
		if (rv->tid <= r->snapshot) {
			if (rv->tid < before_tid) {
				rev_fill(s, rv, newer, out);
				return 0;
			}
			newer = rv->tid;
		}
		off = LOAD_ACQ(&rv->next);
	}
	return -ENOENT;
}

int zap_store_load(struct zap_store_reader *r, uint64_t oid, struct zap_store_rev *out)
{
	uint64_t before = r->snapshot == UINT64_MAX ? UINT64_MAX : r->snapshot + 1;
	return zap_store_load_before(r, oid, before, out);
}

int zap_store_load_serial(struct zap_store_reader *r, uint64_t oid, uint64_t serial,
			  struct zap_store_rev *out)
{
	if (oid > ZAP_STORE_MAX_OID)
		return -EINVAL;
	struct zap_store *s = r->s;
	uint64_t newer = 0;
	for (uint64_t off = store_head(s, oid); off != 0;) {
		const struct store_rev *rv = store_at(s, off);
		if (rv->tid <= r->snapshot) {
			if (rv->tid == serial) {
				rev_fill(s, rv, newer, out);
				return 0;
			}
			if (rv->tid < serial)
				break;
			newer = rv->tid;
		}
		off = LOAD_ACQ(&rv->next);
	}
	return -ENOENT;
}

static void txn_info_fill(const struct zap_store *s, uint64_t txn_off,
			  struct zap_store_txn_info *t)
{
	memset(t, 0, sizeof(*t));
	if (txn_off == 0)
		return;
	const struct store_txn *x = store_at(s, txn_off);
	const uint8_t *p = (const uint8_t *)(x + 1);
	t->tid = x->tid;
	t->n_oids = x->n_oids;
	t->oids = (const uint64_t *)p;
	p += 8ull * x->n_oids;
	zap_txn_text_point(&t->text, p, x->user_len, x->description_len, x->extension_len);
}

int zap_store_txn_of(struct zap_store_reader *r, uint64_t oid, uint64_t serial,
		     struct zap_store_txn_info *t)
{
	if (oid > ZAP_STORE_MAX_OID)
		return -EINVAL;
	struct zap_store *s = r->s;
	for (uint64_t off = store_head(s, oid); off != 0;) {
		const struct store_rev *rv = store_at(s, off);
		if (rv->tid == serial && rv->tid <= r->snapshot) {
			txn_info_fill(s, rv->txn_off, t);
			return t->tid == serial ? 0 : -ENOENT;
		}
		if (rv->tid < serial)
			break;
		off = LOAD_ACQ(&rv->next);
	}
	return -ENOENT;
}

static int txn_ref_cmp(const void *a, const void *b)
{
	const struct zap_store_txn_ref *x = a, *y = b;
	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	return x->oid < y->oid ? -1 : x->oid > y->oid;
}

int zap_store_txn_scan(struct zap_store_reader *r, uint64_t after, uint64_t upto,
		       struct zap_store_txn_ref **out, size_t *n)
{
	struct zap_store *s = r->s;
	struct store_index *ix = store_index_cur(s);
	struct store_index_slot *slot = store_index_slots(ix);
	struct zap_store_txn_ref *v = NULL;
	size_t len = 0, cap = 0;
	*out = NULL;
	*n = 0;
	for (uint64_t i = 0; i < ix->slots; i++) {
		uint64_t key = LOAD_ACQ(&slot[i].key);
		if (key == 0)
			continue;
		for (uint64_t off = LOAD_ACQ(&slot[i].head); off != 0;) {
			const struct store_rev *rv = store_at(s, off);
			if (rv->tid <= after)
				break; /* chains run newest first */
			if (rv->tid <= upto && rv->tid <= r->snapshot) {
				if (len == cap) {
					size_t nc = cap ? cap * 2 : 1024;
					struct zap_store_txn_ref *p = realloc(v, nc * sizeof(*p));
					if (p == NULL) {
						free(v);
						return -ENOMEM;
					}
					v = p;
					cap = nc;
				}
				v[len++] = (struct zap_store_txn_ref){.tid = rv->tid, .oid = key - 1};
			}
			off = LOAD_ACQ(&rv->next);
		}
	}
	if (len > 1)
		qsort(v, len, sizeof(*v), txn_ref_cmp);
	size_t m = 0;
	for (size_t i = 0; i < len; i++)
		if (m == 0 || v[m - 1].tid != v[i].tid)
			v[m++] = v[i]; /* one (the lowest) oid per transaction */
	*out = v;
	*n = m;
	return 0;
}

int zap_store_each_record(const struct zap_store *s, zap_store_record_fn fn, void *ctx)
{
	struct store_index *ix = store_index_cur(s);
	struct store_index_slot *slot = store_index_slots(ix);
	for (uint64_t i = 0; i < ix->slots; i++) {
		uint64_t key = LOAD_ACQ(&slot[i].key);
		if (key == 0)
			continue;
		for (uint64_t off = LOAD_ACQ(&slot[i].head); off != 0;) {
			const struct store_rev *rv = store_at(s, off);
			if (!(rv->flags & REV_DELETED)) {
				int rc = fn(ctx, key - 1, rv->tid, rv + 1, rv->len);
				if (rc != 0)
					return rc;
			}
			off = LOAD_ACQ(&rv->next);
		}
	}
	return 0;
}

int zap_store_history(struct zap_store_reader *r, uint64_t oid, struct zap_store_hist *out,
		      size_t max, size_t *n)
{
	*n = 0;
	if (oid > ZAP_STORE_MAX_OID)
		return -EINVAL;
	struct zap_store *s = r->s;
	int seen = 0;
	for (uint64_t off = store_head(s, oid); off != 0 && *n < max;) {
		const struct store_rev *rv = store_at(s, off);
		if (rv->tid <= r->snapshot) {
			struct zap_store_hist *h = &out[(*n)++];
			h->serial = rv->tid;
			h->len = rv->len;
			h->deleted = (rv->flags & REV_DELETED) != 0;
			txn_info_fill(s, rv->txn_off, &h->txn);
			seen = 1;
		}
		off = LOAD_ACQ(&rv->next);
	}
	return seen || max == 0 ? 0 : -ENOENT;
}

/* Ring slot k (k-th transaction ever), read racily; validated by callers. */
static void ring_read(const struct zap_store *s, uint64_t k, uint64_t *tid, uint64_t *off)
{
	struct store_ring_slot *ring = store_at(s, s->hdr->ring_off);
	struct store_ring_slot *slot = &ring[k % s->hdr->ring_n];
	*tid = LOAD_RLX(&slot->tid);
	*off = LOAD_RLX(&slot->txn_off);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
}

/* Slot k is intact if the writer has not started overwriting it. */
static int ring_intact(const struct zap_store *s, uint64_t k)
{
	return LOAD_ACQ(&s->hdr->txn_count) < k + s->hdr->ring_n;
}

/** Attempts of zap_store_changes_since() when the writer overtakes its reads. */
#define CHANGES_RETRIES 32

int zap_store_changes_since(struct zap_store_reader *r, uint64_t after_tid,
			    zap_store_change_fn fn, void *ctx)
{
	struct zap_store *s = r->s;
	if (after_tid >= r->snapshot)
		return 0;
	uint64_t ring_n = s->hdr->ring_n;
	/* The oldest eighth of the ring is not relied on: the writer may be
	 * about to overwrite it while this reader looks. */
	uint64_t margin = ring_n >= 16 ? ring_n / 8 : 0;
	uint64_t count, lo, a, tid, off;
	for (unsigned attempt = 0;; attempt++) {
		count = LOAD_ACQ(&s->hdr->txn_count);
		/* Slot of transaction count - ring_n may be being overwritten: not kept. */
		lo = count >= ring_n - margin ? count - ring_n + 1 + margin : 0;
		bool overtaken = false;
		if (lo > 0) {
			ring_read(s, lo, &tid, &off);
			overtaken = !ring_intact(s, lo);
			if (!overtaken && tid > after_tid)
				return -ERANGE; /* transactions after after_tid are gone */
		}
		/* first transaction with tid > after_tid: tids increase along the ring */
		a = lo;
		for (uint64_t b = count; !overtaken && a < b;) {
			uint64_t mid = a + (b - a) / 2;
			ring_read(s, mid, &tid, &off);
			if (tid <= after_tid)
				a = mid + 1;
			else
				b = mid;
		}
		if (!overtaken && ring_intact(s, lo))
			break;
		/* The writer went past lo while this looked: look again, with the
		 * newer count. */
		if (attempt + 1 >= CHANGES_RETRIES)
			return -ERANGE;
	}
	for (uint64_t k = a; k < count; k++) {
		ring_read(s, k, &tid, &off);
		if (!ring_intact(s, k))
			return -ERANGE; /* the writer lapped the whole ring meanwhile */
		if (tid > r->snapshot)
			break;
		struct zap_store_txn_info t;
		txn_info_fill(s, off, &t);
		int rc = fn(&t, ctx);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int zap_store_txns_newest(struct zap_store_reader *r, uint64_t skip, uint64_t max,
			  zap_store_change_fn fn, void *ctx)
{
	struct zap_store *s = r->s;
	uint64_t count = LOAD_ACQ(&s->hdr->txn_count);
	uint64_t ring_n = s->hdr->ring_n;
	uint64_t lo = count >= ring_n ? count - ring_n + 1 : 0;
	uint64_t seen = 0, given = 0;
	for (uint64_t k = count; k > lo && given < max; k--) {
		uint64_t tid, off;
		ring_read(s, k - 1, &tid, &off);
		if (!ring_intact(s, k - 1))
			return 0; /* overwritten meanwhile: older ones are gone too */
		if (tid > r->snapshot)
			continue;
		if (seen++ < skip)
			continue;
		struct zap_store_txn_info t;
		txn_info_fill(s, off, &t);
		int rc = fn(&t, ctx);
		if (rc != 0)
			return rc;
		given++;
	}
	return 0;
}

/* ------------------------------------------------------------ observation */

void zap_store_stats(const struct zap_store *s, struct zap_store_stats *st)
{
	const struct store_hdr *h = s->hdr;
	memset(st, 0, sizeof(*st));
	st->last_tid = LOAD_ACQ(&h->last_tid);
	st->pack_tid = LOAD_RLX(&h->pack_tid);
	st->objects = LOAD_RLX(&h->objects);
	st->revisions = LOAD_RLX(&h->revisions);
	st->index_slots = store_index_cur(s)->slots;
	st->bytes_mapped = s->size_bytes;
	st->bytes_in_use = LOAD_RLX(&h->bytes_in_use);
	st->bytes_limbo = s->bytes_limbo;
	st->reclaimed_blocks = s->reclaimed_blocks;
	uint64_t count = LOAD_ACQ(&h->txn_count);
	st->txns_kept = count < h->ring_n ? count : h->ring_n - 1;
	st->stale_readers_cleared = s->stale_readers_cleared;
}

static uint64_t mix64(uint64_t h, uint64_t v)
{
	return store_oid_hash(h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2)));
}

static uint64_t hash_bytes(uint64_t h, const void *data, uint64_t len)
{
	const uint8_t *p = data;
	uint64_t w;
	h = mix64(h, len);
	for (; len >= 8; len -= 8, p += 8) {
		memcpy(&w, p, 8);
		h = mix64(h, w);
	}
	w = 0;
	memcpy(&w, p, len);
	return mix64(h, w);
}

static uint64_t digest_txn(const struct zap_store *s, uint64_t h, uint64_t txn_off)
{
	struct zap_store_txn_info t;
	txn_info_fill(s, txn_off, &t);
	h = mix64(h, t.tid);
	h = hash_bytes(h, t.oids, 8ull * t.n_oids);
	h = hash_bytes(h, t.text.user, t.text.user_len);
	h = hash_bytes(h, t.text.description, t.text.description_len);
	return hash_bytes(h, t.text.extension, t.text.extension_len);
}

uint64_t zap_store_digest(const struct zap_store *s)
{
	const struct store_hdr *hd = s->hdr;
	uint64_t sum = 0;
	struct store_index *ix = store_index_cur(s);
	struct store_index_slot *slot = store_index_slots(ix);
	for (uint64_t i = 0; i < ix->slots; i++) {
		if (slot[i].key == 0 || slot[i].head == 0)
			continue;
		uint64_t h = mix64(0, slot[i].key - 1);
		for (uint64_t off = slot[i].head; off != 0;) {
			const struct store_rev *rv = store_at(s, off);
			h = mix64(h, rv->tid);
			h = mix64(h, rv->flags);
			h = hash_bytes(h, rv + 1, rv->flags & REV_DELETED ? 0 : rv->len);
			h = digest_txn(s, h, rv->txn_off);
			off = rv->next;
		}
		sum += h; /* order of the index does not matter */
	}
	uint64_t h = mix64(sum, hd->last_tid);
	h = mix64(h, hd->pack_tid);
	uint64_t count = hd->txn_count;
	uint64_t lo = count >= hd->ring_n ? count - hd->ring_n + 1 : 0;
	for (uint64_t k = lo; k < count; k++) {
		uint64_t tid, off;
		ring_read(s, k, &tid, &off);
		h = digest_txn(s, mix64(h, tid), off);
	}
	return h;
}

const void *zap_store_image(const struct zap_store *s, uint64_t *used)
{
	*used = s->hdr->bump;
	return s->base;
}
