/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap ZODB records: the stored data of one object revision as a ZODB client
 * writes it. A record is two pickles written by one pickler (protocol 3):
 * the class header (a GLOBAL, or a tuple (class, args)), then the object's
 * state, whose memo keys continue the header's. Persistent references are
 * BINPERSID / PERSID applied to a persistent id: (oid, class), a bare oid,
 * or a list ['w', (oid,)], ['w', (oid, db)], ['m', (db, oid, class)],
 * ['n', (db, oid)], [oid] (oids are 8 bytes). A record the ZEO gateway
 * stored with a blob is ZG_BLOB_MAGIC, a u32 big-endian pickle length, the
 * pickle, the blob's bytes; its references are those of the pickle. The
 * node's state machine keeps such a record as a blob reference instead
 * (ZODB_REC_BLOB_REF_MAGIC, u32 big-endian pickle length, the pickle, u64
 * big-endian blob length, the blob's BLAKE2b-256 hash) and the bytes in its
 * blob area (store/blobs.h): zodb_record_keep().
 *
 * This decoder is separate from the strict ZEO message decoder
 * (zeo_codec.h), which refuses globals and persistent ids. It has two modes:
 *  - references (zodb_record_refs): every opcode of protocols 0-5 is read;
 *    objects built by REDUCE, NEWOBJ, INST, OBJ, sets and extensions become
 *    opaque values, so any record a stock client writes can be scanned;
 *  - values (zodb_record_decode): only data opcodes, GLOBAL and persistent
 *    ids; anything that would run code (REDUCE, BUILD, NEWOBJ, ...) is
 *    refused. The result is a bounded tree (memo references resolved,
 *    shared subtrees counted once per reference).
 *
 * Bounds: at most ZODB_REC_MAX_VALUES values (expanded), container nesting
 * at most ZODB_REC_MAX_DEPTH, MARK nesting at most ZODB_REC_MAX_MARKS; every
 * length is checked against the input. Memory is O(input) in both modes.
 *
 * Threading: no global state; a struct zodb_rec belongs to one thread.
 */
#ifndef ZAP_ZODB_RECORD_H
#define ZAP_ZODB_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zeo_codec.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Deepest container nesting of a decoded value tree. */
#define ZODB_REC_MAX_DEPTH 64u
/** Most values a record decodes into (a shared subtree counts per reference). */
#define ZODB_REC_MAX_VALUES (1u << 20)
/** Deepest MARK nesting while scanning for references. */
#define ZODB_REC_MAX_MARKS 4096u

/** Magic of a record stored with a blob (dataplane/zeo/zeo_gateway_core.h). */
#define ZODB_REC_BLOB_MAGIC "ZAPBLOB1"
#define ZODB_REC_BLOB_MAGIC_BYTES 8u
#define ZODB_REC_BLOB_HDR_BYTES 12u
/** Magic of a record whose blob is held in the blob area (by hash). */
#define ZODB_REC_BLOB_REF_MAGIC "ZAPBLOB2"
/** Bytes after the pickle of a blob reference: length, hash. */
#define ZODB_REC_BLOB_REF_TAIL (8u + 32u)

/** Value types of a decoded record. */
enum zodb_type {
	ZODB_NONE = 0,
	ZODB_BOOL,
	ZODB_INT,    /**< i; when big, s = little-endian two's complement (> 8 bytes or >= 2^63) */
	ZODB_FLOAT,  /**< f */
	ZODB_STR,    /**< s: UTF-8 */
	ZODB_BYTES,  /**< s */
	ZODB_TUPLE,  /**< seq */
	ZODB_LIST,   /**< seq */
	ZODB_DICT,   /**< seq: key, value, key, value, ... */
	ZODB_GLOBAL, /**< g: a class or function by module and name */
	ZODB_REF,    /**< pid: a persistent reference and its persistent id */
	ZODB_OPAQUE, /**< an object zap does not build (references mode only) */
};

/** One decoded value; strings point into the record. */
struct zodb_val {
	uint8_t type; /**< enum zodb_type */
	bool big;     /**< ZODB_INT held in s */
	bool open;    /**< list / dict that may still receive items */
	uint16_t depth;
	uint32_t size;	/**< values in the expanded tree (values mode) */
	uint64_t bytes; /**< str / bytes / name payload of the expanded tree (values mode) */
	union {
		bool b;
		int64_t i;
		double f;
		struct {
			const uint8_t *p;
			uint32_t len;
		} s;
		struct {
			struct zodb_val **items;
			uint32_t n, cap;
		} seq;
		struct {
			const uint8_t *mod, *name;
			uint32_t mod_len, name_len;
		} g;
		struct zodb_val *pid;
	};
};

/** A decoded record: both pickles and the memory holding them. */
struct zodb_rec {
	const struct zodb_val *cls;   /**< the class header */
	const struct zodb_val *state; /**< the state */
	const uint8_t *pickle;	      /**< the record's pickles (after a blob prefix) */
	size_t pickle_len;
	size_t cls_len; /**< bytes of the class header pickle */
	void *mem;	/**< private: allocation chunks */
};

/**
 * Call @p fn(arg, oid) for every object the record references (cross-database
 * refs 'm'/'n' are skipped). Stops and returns fn's value when nonzero.
 * Weak references to an object of the same database (['w', (oid,)], [oid])
 * are reported too: a collector that keeps them is conservative.
 * @return 0; -EINVAL when the record is not a pickle zap can read (the caller
 *   must then treat it as referencing everything it might, i.e. be
 *   conservative): truncated or malformed pickles, a persistent id of an
 *   unknown form or with an oid that is not 8 bytes, bounds exceeded, out of
 *   memory.
 */
int zodb_record_refs(const void *rec, size_t len, int (*fn)(void *arg, uint64_t oid), void *arg);

/**
 * The pickles of a record: strips a blob prefix.
 * @return 0; -EINVAL a blob prefix whose length exceeds the record.
 */
int zodb_record_pickle(const void *rec, size_t len, const uint8_t **pickle, size_t *pickle_len);

/** A record's blob, as zodb_record_blob() finds it. */
struct zodb_blob {
	const uint8_t *pickle; /**< the record's pickles */
	size_t pickle_len;
	uint64_t len;	       /**< the blob's bytes */
	const uint8_t *bytes;  /**< inline (ZODB_REC_BLOB_MAGIC): the bytes; else NULL */
	const uint8_t *hash;   /**< by reference (ZODB_REC_BLOB_REF_MAGIC): 32 bytes; else NULL */
};

/**
 * Whether a record carries a blob, inline or by reference, and where.
 * @return 1 it does (@p b filled); 0 it does not; -EINVAL a blob header
 *   whose lengths do not fit the record.
 */
int zodb_record_blob(const void *rec, size_t len, struct zodb_blob *b);

/**
 * What a node keeps of a record it takes in (zap_txn_params.keep): a record
 * with its blob inline has the bytes written to the blob area @p blobs
 * (struct zap_blobs *) and becomes a blob reference in @p out; any other
 * record is kept as it is (*out_len = 0 says so). A pure function of the
 * record but for the file it writes.
 * @return 0; -ENOBUFS @p cap too small (ZODB_REC_BLOB_REF_TAIL more than the
 *   record is always enough); -EIO the blob could not be written.
 */
int zodb_record_keep(void *blobs, const void *rec, size_t len, void *out, size_t cap,
		     size_t *out_len);

/**
 * Decode a record in values mode into @p r (zodb_rec_free() it in every case).
 * The tree points into @p rec, which must outlive it.
 * @return 0; -EINVAL not two pickles, or an opcode outside the data subset
 *   (REDUCE, BUILD, NEWOBJ, INST, OBJ, sets, extensions, text opcodes);
 *   -E2BIG a bound exceeded; -ENOMEM.
 */
int zodb_record_decode(struct zodb_rec *r, const void *rec, size_t len);

/** Free what zodb_record_decode() allocated (safe on a zeroed or freed record). */
void zodb_rec_free(struct zodb_rec *r);

/**
 * The class of a record header: a GLOBAL, or (GLOBAL, args) / ((module, name),
 * args) as ZODB writes for classes with __getnewargs__.
 * @param args  set to the args value (NULL for a bare GLOBAL).
 * @return 0 and module / name (not NUL-terminated); -EINVAL another shape.
 */
int zodb_record_class(const struct zodb_val *cls, const uint8_t **mod, uint32_t *mod_len,
		      const uint8_t **name, uint32_t *name_len, const struct zodb_val **args);

/** A persistent reference, parsed from its persistent id. */
struct zodb_ref {
	uint64_t oid;
	bool weak;		      /**< 'w' or [oid] */
	const struct zodb_val *db;    /**< database name (str) of a cross-database ref, else NULL */
	const struct zodb_val *klass; /**< class in (oid, class) / 'm', else NULL */
};

/**
 * Parse a persistent id.
 * @return 0; -EINVAL an unknown form, or an oid that is not 8 bytes
 *   (bytes, or str of ASCII characters).
 */
int zodb_ref_parse(const struct zodb_val *pid, struct zodb_ref *out);

/**
 * Write a value of a values-mode tree as protocol-3 pickle opcodes (no memo):
 * the zeo_w_* forms for data, GLOBAL for globals, the persistent id then
 * BINPERSID for references. ZODB_OPAQUE is not writable.
 * @return 0; -EINVAL an opaque value.
 */
int zodb_w_val(struct zeo_buf *b, const struct zodb_val *v);

/** Write an int given as little-endian two's complement bytes (LONG1 / LONG4). */
void zodb_w_long(struct zeo_buf *b, const uint8_t *le, size_t len);

/** Write a GLOBAL opcode. */
void zodb_w_global(struct zeo_buf *b, const uint8_t *mod, size_t mod_len, const uint8_t *name,
		   size_t name_len);

#ifdef __cplusplus
}
#endif
#endif /* ZAP_ZODB_RECORD_H */
