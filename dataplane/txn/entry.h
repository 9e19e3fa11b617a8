/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap log entries: the commands the replicated log carries, and their
 * binary encoding.
 *
 * Encoding: version 1, explicit little-endian, no padding, no struct images
 * (docs/txn.md has the layout byte by byte). Every entry starts with a
 * 32-byte header (version, type, proposer node, reserved, client id, request
 * sequence, proposer clock) followed by a body that depends on the type.
 *
 * Decoding is strict: the whole entry is validated before the caller sees
 * any of it. The decoded view (struct zap_entry) points into the entry
 * buffer and into arrays owned by the decoder: nothing is copied, and the
 * view stays valid until the buffer is released or the decoder decodes the
 * next entry, whichever comes first.
 *
 * Threading: the encoder functions are pure. A decoder object belongs to one
 * thread at a time.
 */
#ifndef ZAP_ENTRY_H
#define ZAP_ENTRY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/txn_text.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The encoding version this code writes and the only one it reads. */
#define ZAP_ENTRY_VERSION 1
/** Size of the common header in bytes. */
#define ZAP_ENTRY_HEADER_BYTES 32
/** Fixed part of a PREPARE / ONESHOT body, before the texts. */
#define ZAP_ENTRY_TXN_FIXED_BYTES 28
/** Size of one store descriptor before its record bytes. */
#define ZAP_ENTRY_STORE_BYTES 28
/** Size of one readCurrent descriptor. */
#define ZAP_ENTRY_READ_BYTES 16
/** Largest block of oids one OID_RESERVE may ask for. */
#define ZAP_ENTRY_MAX_OID_RESERVE 65536u
/** Node id naming no node in LEASE_EXPIRE (expire by lease only). */
#define ZAP_ENTRY_NODE_NONE 0xFFFFu
/** The oid value no object may have. */
#define ZAP_ENTRY_BAD_OID UINT64_MAX
/** Fixed part of a PAYLOAD body (payload id, offset, total), before the bytes. */
#define ZAP_ENTRY_PAYLOAD_FIXED_BYTES 24
/** Bytes of the strong hash (BLAKE2b-256) a LARGE entry carries. */
#define ZAP_ENTRY_HASH_BYTES 32
/** Size of a LARGE body: payload id, total, hash. */
#define ZAP_ENTRY_LARGE_BYTES (16 + ZAP_ENTRY_HASH_BYTES)
/** Default largest payload (a whole large entry), for a zero max_large_bytes. */
#define ZAP_ENTRY_DEFAULT_MAX_LARGE_BYTES (2ull << 30)
/** Store flag: the store is a deletion (no record bytes). */
#define ZAP_ENTRY_STORE_DELETED 0x1u

/** Default limits, used for zero fields of struct zap_entry_limits. */
#define ZAP_ENTRY_DEFAULT_MAX_RECORD_BYTES (16ull << 20)
#define ZAP_ENTRY_DEFAULT_MAX_OBJECTS 65536u
#define ZAP_ENTRY_DEFAULT_MAX_TEXT_BYTES (1u << 20)

/** Entry types. The values are part of the encoding. */
enum zap_entry_type {
	ZAP_ENTRY_NOP = 0,	    /**< a new leader's no-op */
	ZAP_ENTRY_PREPARE = 1,	    /**< vote: check and lock */
	ZAP_ENTRY_COMMIT = 2,	    /**< tpc_finish of a prepared transaction */
	ZAP_ENTRY_ABORT = 3,	    /**< tpc_abort */
	ZAP_ENTRY_ONESHOT = 4,	    /**< prepare and commit in one entry */
	ZAP_ENTRY_OID_RESERVE = 5,  /**< reserve a block of new oids */
	ZAP_ENTRY_LEASE_EXPIRE = 6, /**< abort expired / orphaned transactions */
	ZAP_ENTRY_PACK = 7,	    /**< drop revisions older than the one current at a tid */
	ZAP_ENTRY_PAYLOAD = 8,	    /**< one chunk of a large entry's bytes */
	ZAP_ENTRY_LARGE = 9,	    /**< apply the entry whose bytes the PAYLOAD chunks carried */
	ZAP_ENTRY_TYPE_COUNT
};

/** One object stored by a transaction. */
struct zap_entry_store {
	uint64_t oid;
	uint64_t base_serial; /**< serial the client started from, 0 = new object */
	int deleted;	      /**< 1: delete the object (len 0, base_serial != 0) */
	const void *data;     /**< record bytes (points into the entry when decoded) */
	uint64_t len;	      /**< record length in bytes */
};

/** One readCurrent check: the object must still be at this serial. */
struct zap_entry_read {
	uint64_t oid;
	uint64_t serial;
};

/** Body of PREPARE and ONESHOT. */
struct zap_entry_txn {
	uint64_t txn_id; /**< chosen by the proposer, unique, never 0 */
	struct zap_txn_text text; /**< user, description, extension */
	const struct zap_entry_store *stores;
	uint32_t n_stores;
	const struct zap_entry_read *reads;
	uint32_t n_reads;
};

/**
 * Body of PAYLOAD: bytes [offset, offset + len) of payload @p id, whose
 * whole length is @p total. A payload is the encoding of one PREPARE or
 * ONESHOT entry too large for one consensus value; its chunks are chosen
 * in order, then a LARGE entry names it (docs/txn.md "Large entries").
 */
struct zap_entry_payload {
	uint64_t id;	  /**< unique per payload, never 0 */
	uint64_t offset;  /**< where these bytes go */
	uint64_t total;	  /**< length of the whole payload */
	const void *data; /**< the bytes (points into the entry when decoded) */
	uint64_t len;	  /**< 1..total - offset */
};

/** Body of LARGE: the payload to apply, its length and BLAKE2b-256 hash. */
struct zap_entry_large {
	uint64_t id;
	uint64_t total;
	uint8_t hash[ZAP_ENTRY_HASH_BYTES];
};

/** A whole entry: header and body. Encoder input and decoder output. */
struct zap_entry {
	uint8_t version;    /**< ZAP_ENTRY_VERSION (the encoder ignores it) */
	uint8_t type;	    /**< enum zap_entry_type */
	uint16_t node;	    /**< proposer node id */
	uint64_t client_id; /**< 0: no session (internal entries) */
	uint64_t seq;	    /**< client request sequence */
	uint64_t clock_ns;  /**< proposer wall clock, Unix ns */
	uint64_t commit_tid; /**< COMMIT: the tid asked for (restore), 0 none */
	union {
		struct zap_entry_txn txn; /**< PREPARE, ONESHOT */
		uint64_t txn_id;	  /**< COMMIT, ABORT */
		uint32_t oid_count;	  /**< OID_RESERVE, 1..ZAP_ENTRY_MAX_OID_RESERVE */
		uint16_t expire_node;	  /**< LEASE_EXPIRE: node that left, or NODE_NONE */
		uint64_t pack_tid;	  /**< PACK: pack tid, not 0 */
		struct zap_entry_payload payload; /**< PAYLOAD */
		struct zap_entry_large large;	  /**< LARGE */
	} u;
};

/** Limits the decoder enforces. Zero fields take the defaults above. */
struct zap_entry_limits {
	uint64_t max_record_bytes; /**< largest record */
	uint32_t max_objects;	   /**< largest n_stores + n_reads */
	uint32_t max_text_bytes;   /**< largest user, description or extension */
	uint64_t max_large_bytes;  /**< largest payload a PAYLOAD / LARGE may name */
};

struct zap_entry_decoder;

/**
 * Size of the encoding of @p e.
 * @return bytes; 0 when @p e cannot be encoded (unknown type, or a size
 *   that does not fit its length field).
 */
size_t zap_entry_size(const struct zap_entry *e);

/**
 * Encode @p e into @p buf. The encoder writes what it is given; it does not
 * apply the decoder's limits (an encoding may still be rejected on decode).
 *
 * @param cap  size of @p buf; zap_entry_size() bytes are enough.
 * @return bytes written; -EINVAL unknown type or a length that does not fit
 *   its field; -ENOSPC @p cap too small (nothing useful written).
 */
ssize_t zap_entry_encode(const struct zap_entry *e, void *buf, size_t cap);

/**
 * Make a decoder. Its arrays are sized from the limits once, here.
 * @return 0; -ENOMEM.
 */
int zap_entry_decoder_create(const struct zap_entry_limits *lim, struct zap_entry_decoder **out);

/** Free a decoder (NULL is fine). Views it produced become invalid. */
void zap_entry_decoder_destroy(struct zap_entry_decoder *d);

/** The limits in force (defaults filled in). */
void zap_entry_decoder_limits(const struct zap_entry_decoder *d, struct zap_entry_limits *lim);

/**
 * Decode and validate one entry. On error @p out is unspecified and must not
 * be used.
 *
 * @return 0;
 *   -EBADMSG truncated, a count that does not fit the length, or trailing bytes;
 *   -ENOTSUP unknown version or type;
 *   -EMSGSIZE a record or text larger than the limits;
 *   -E2BIG more objects (stores + reads) than max_objects;
 *   -EINVAL a bad field: reserved bits set, oid UINT64_MAX, an oid twice in
 *     the stores or twice in the reads, txn id 0, deletion with bytes or
 *     without a base serial, oid count 0 or too large, pack tid 0, a session
 *     on NOP / LEASE_EXPIRE / PAYLOAD, none on LARGE, a payload id 0, a
 *     PAYLOAD chunk empty or past its total, a total above max_large_bytes
 *     (-EMSGSIZE).
 */
int zap_entry_decode(struct zap_entry_decoder *d, const void *buf, size_t len,
		     struct zap_entry *out);

/** Name of an entry type ("PREPARE"), "?" for unknown values. */
const char *zap_entry_type_name(unsigned type);

#ifdef __cplusplus
}
#endif
#endif /* ZAP_ENTRY_H */
