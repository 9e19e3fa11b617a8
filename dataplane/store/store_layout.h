/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap store: layout of the shared mapping, and the calls between the
 * store's files. Internal to the store module. From the bottom up:
 * store_arena.c (allocator, reclamation), store_index.c (the oid index),
 * store.c (life cycle, readers), store_write.c (commit, sweep), store_gc.c
 * (pack, mark), store_snapshot.c (snapshot stream).
 *
 * Mapping, from offset 0:
 *
 *   [header page(s)] [reader table] [txn ring] [arena ...................]
 *
 * Every reference inside the mapping is an offset from its start; 0 is
 * "none" (offset 0 holds the header, so no block ever lives there).
 *
 * Fields marked "published" are read by readers without locks and are
 * written by the writer with release stores; readers load them with
 * acquire. Fields marked "writer" are touched only by the writer.
 */
#ifndef ZAP_STORE_LAYOUT_H
#define ZAP_STORE_LAYOUT_H

#include <pthread.h>
#include <stdint.h>

#include <rte_rcu_qsbr.h>

#include "base/mix.h"
#include "store.h"

#define STORE_MAGIC 0x3130534f5453415aull /* "ZASTOS01" little-endian */
#define STORE_VERSION 1u
#define STORE_PAGE_BYTES 4096u
#define STORE_MIN_BLOCK_BYTES 32u
#define STORE_N_CLASSES 160u /* size classes up to 2^44 bytes */
#define STORE_INDEX_MAX_LOAD_PCT 70u
#define STORE_GEN_FIRST 1u /* reader slot gen 0 means "not in a section" */

#define REV_DELETED 1u

/* Relaxed / acquire / release access to shared fields. */
#define LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LOAD_RLX(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define STORE_RLX(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

struct store_hdr {
	/* immutable after create */
	uint64_t magic;
	uint32_t version;
	uint32_t page_bytes;
	uint64_t size_bytes;
	uint64_t max_record_bytes;
	uint64_t readers_off;
	uint64_t readers_bytes;
	uint32_t readers_n;
	uint32_t ring_n;
	uint64_t ring_off;
	uint64_t arena_off;
	uint8_t pad0[64];

	/* published */
	uint64_t last_tid;  /* snapshot readers take */
	uint64_t index_off; /* current oid index block */
	uint64_t txn_count; /* transactions ever committed */
	uint64_t gen;       /* reclamation generation */
	uint64_t pack_tid;
	uint8_t pad1[64];

	/* writer */
	uint64_t bump;                    /* next never-used arena byte */
	uint64_t objects;                 /* oids with a revision chain */
	uint64_t revisions;               /* revisions reachable */
	uint64_t bytes_in_use;            /* allocated, incl. unlinked not yet freed */
	uint64_t free_head[STORE_N_CLASSES];
};

/* One reader of another process; one cache line each. */
struct store_reader_slot {
	uint32_t pid; /* owner, 0 = free */
	uint32_t pad;
	uint64_t gen; /* gen seen at read_begin; 0 = not reading */
	uint64_t pad2[6];
};

struct store_ring_slot {
	uint64_t tid;
	uint64_t txn_off;
};

struct store_index {
	uint64_t slots; /* power of two */
	uint64_t used;  /* keys set (tombstones included) */
	/* struct store_index_slot slot[slots] follows */
};

struct store_index_slot {
	uint64_t key;  /* oid + 1; 0 = empty */
	uint64_t head; /* newest revision, 0 = packed away */
};

struct store_rev {
	uint64_t next; /* older revision (published) */
	uint64_t tid;
	uint64_t txn_off;
	uint64_t len;
	uint32_t flags;
	uint32_t pad;
	/* record bytes follow */
};

struct store_txn {
	uint64_t tid;
	uint32_t refs; /* writer: ring slot + revisions pointing here */
	uint32_t n_oids;
	uint32_t user_len;
	uint32_t description_len;
	uint32_t extension_len;
	uint32_t pad;
	/* uint64_t oids[n_oids]; user; description; extension */
};

/* Memory unlinked by the writer, freed once readers have passed. */
struct store_limbo {
	uint64_t off;
	uint64_t bytes;
	uint64_t gen;   /* hdr->gen when unlinked */
	uint64_t token; /* rte_rcu_qsbr token taken after the unlink */
};

struct zap_store {
	uint8_t *base;
	uint64_t size_bytes;
	int fd;
	int writer;
	char *path; /* hugetlbfs file to unlink on close, or NULL */
	struct store_hdr *hdr;
	struct store_reader_slot *slots; /* writable view of the reader table */
	void *slots_map;                 /* separate mapping when attached */
	uint64_t slots_map_bytes;

	/* readers that are threads of this process */
	struct rte_rcu_qsbr *qsbr;
	uint32_t max_threads;
	uint8_t *thread_used;
	pthread_mutex_t reg_lock;

	/* writer: unlinked memory waiting for readers */
	struct store_limbo *limbo;
	uint64_t limbo_head, limbo_tail, limbo_cap;
	uint64_t limbo_gen_pending; /* something unlinked since the last gen bump */
	uint64_t bytes_limbo;
	uint64_t reclaimed_blocks;
	uint64_t stale_readers_cleared;
};

struct zap_store_reader {
	struct zap_store *s;
	int thread; /* 1: rte_rcu_qsbr thread id; 0: reader table slot */
	uint32_t id;
	uint64_t snapshot;
};

static inline void *store_at(const struct zap_store *s, uint64_t off)
{
	return s->base + off;
}

static inline struct store_index *store_index_cur(const struct zap_store *s)
{
	return (struct store_index *)store_at(s, LOAD_ACQ(&s->hdr->index_off));
}

static inline struct store_index_slot *store_index_slots(struct store_index *ix)
{
	return (struct store_index_slot *)(ix + 1);
}

static inline uint64_t store_oid_hash(uint64_t oid)
{
	return zap_mix64(oid);
}

static inline uint64_t store_txn_bytes(uint32_t n_oids, uint32_t ul, uint32_t dl, uint32_t el)
{
	return sizeof(struct store_txn) + 8ull * n_oids + ul + dl + el;
}

/* ------------------------------------------------------------ arena, store_arena.c */

/* Bytes of size class c, and the class that holds a block of bytes. */
uint64_t store_class_bytes(unsigned c);
unsigned store_class_of(uint64_t bytes);
/* Allocate a block of at least bytes; 0 when the mapping is full. */
uint64_t store_alloc(struct zap_store *s, uint64_t bytes);
/* Free a block no reader can reach (never published, or reclaimed). */
void store_free(struct zap_store *s, uint64_t off, uint64_t bytes);
/*
 * Retire an unlinked block: it is freed once every reader has passed.
 * @return 0; -ENOMEM (the limbo queue could not grow).
 */
int store_retire(struct zap_store *s, uint64_t off, uint64_t bytes);
/* Free the writer's memory outside the mapping (the limbo queue). */
void store_writer_fini(struct zap_store *s);

/* ------------------------------------------------------------ index, store_index.c */

/* Allocate an empty index of slots (a power of two) and publish it. @return 0; -ENOSPC. */
int store_index_init(struct zap_store *s, uint64_t slots);
/* Head revision of oid in index ix (0 when absent); the slot when found. */
struct store_index_slot *store_index_find(const struct zap_store *s, struct store_index *ix,
					  uint64_t oid);
/* Insert an oid known to be absent, with its chain head (room reserved). */
struct store_index_slot *store_index_insert(struct store_index *ix, uint64_t oid, uint64_t head);
/* Grow the index so that extra more keys fit. @return 0; -ENOSPC; -ENOMEM. */
int store_index_grow(struct zap_store *s, uint64_t extra);
/* store_index_insert() into the current index (the snapshot loader). */
void store_index_add(struct zap_store *s, uint64_t oid, uint64_t head);

/* ------------------------------------------------------------ writer, store_write.c */

/*
 * The sweep of a pack (store_gc.c marks): pack every chain at pack_tid;
 * with @p live (a bitmap over the current index's slots), an object whose
 * slot is not set loses all its revisions. @return the number of objects
 * removed that way.
 */
uint64_t store_pack_sweep(struct zap_store *s, uint64_t pack_tid, const uint64_t *live);

#endif /* ZAP_STORE_LAYOUT_H */
