/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap native client protocol: the request / response codec libzapclient and
 * zapd's client port speak, as a pure codec over byte buffers.
 *
 * Every message (one request or one response) is a body of 0..max bytes,
 * carried in 1..65535 UDP datagrams ("chunks"). Each datagram starts with a
 * 48-byte header (magic, version, type, flags, client id, request id,
 * cluster id, chunk index / count / size, total body length); chunk i holds
 * body bytes [i * chunk_bytes, min((i + 1) * chunk_bytes, total)). All
 * integers are big-endian (network order, as ZODB writes oids and tids).
 * docs/client.md has the layout byte by byte.
 *
 * Bodies: a request body depends on its type (enum zap_cp_type); a response
 * body is a fixed 48-byte result block (status, flags, count, tid, oid,
 * serial, next_serial, base_serial) followed by a tail that depends on the
 * type (record bytes, history entries, changed oids).
 *
 * Decoding is strict: the datagram header, the reassembly and the body are
 * validated before a caller sees any of it; each failure class has its own
 * negative errno; nothing is read outside the buffer handed in. Decoded views
 * point into the body buffer and into arrays owned by the decoder (sized once
 * from the limits).
 *
 * Threading: encoders are pure; a decoder or a reassembler belongs to one
 * thread at a time.
 */
#ifndef ZAP_CLIENT_PROTO_H
#define ZAP_CLIENT_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/txn_text.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZAP_CP_MAGIC 0x5a415043u /**< "ZAPC" */
#define ZAP_CP_VERSION 1u
/** Datagram header bytes. */
#define ZAP_CP_HDR_BYTES 48u
/** Response result block bytes (start of every response body). */
#define ZAP_CP_RESULT_BYTES 48u
/** Largest UDP payload over IPv4. */
#define ZAP_CP_MAX_DATAGRAM_BYTES 65507u
/** Largest chunk size (body bytes in one datagram). */
#define ZAP_CP_MAX_CHUNK_BYTES (ZAP_CP_MAX_DATAGRAM_BYTES - ZAP_CP_HDR_BYTES)
/** Largest number of chunks of one message. */
#define ZAP_CP_MAX_CHUNKS 65535u
/** Default datagram size (fits a 1500-byte MTU with IPv4 and UDP headers). */
#define ZAP_CP_DEFAULT_DATAGRAM_BYTES 1400u
/** Largest oid; UINT64_MAX is reserved. */
#define ZAP_CP_BAD_OID UINT64_MAX
/** Largest block NEW_OIDS may ask for. */
#define ZAP_CP_MAX_NEW_OIDS 65536u

/** Default limits, used for zero fields of struct zap_cp_limits. */
#define ZAP_CP_DEFAULT_MAX_RECORD_BYTES (16u << 20)
#define ZAP_CP_DEFAULT_MAX_MESSAGE_BYTES (32u << 20)
#define ZAP_CP_DEFAULT_MAX_OBJECTS 65536u
#define ZAP_CP_DEFAULT_MAX_TEXT_BYTES (1u << 20)
#define ZAP_CP_DEFAULT_MAX_ITEMS 65536u

/** Header flags. */
#define ZAP_CP_FLAG_SYNC 0x1u /**< LOAD / LAST_TID: take a read barrier first */
#define ZAP_CP_FLAGS_KNOWN ZAP_CP_FLAG_SYNC

/** Response result flags. */
#define ZAP_CP_RFLAG_TOO_OLD 0x1u   /**< CHANGES_SINCE: tid no longer kept, invalidate all */
#define ZAP_CP_RFLAG_TRUNCATED 0x2u /**< HISTORY / CHANGES_SINCE: more than count exist */
#define ZAP_CP_RFLAGS_KNOWN (ZAP_CP_RFLAG_TOO_OLD | ZAP_CP_RFLAG_TRUNCATED)

/** Store flag in a PREPARE / COMMIT_ONESHOT store descriptor. */
#define ZAP_CP_STORE_DELETED 0x1u
/** History entry flag. */
#define ZAP_CP_HIST_DELETED 0x1u

/**
 * Message types. Requests are 64..75; the response to request type t has
 * type t + ZAP_CP_RESPONSE_OFFSET. All fall in the range the replication
 * wire reserves for the client protocol (64..127).
 */
enum zap_cp_type {
	ZAP_CP_LOAD = 64,	    /**< oid; flag SYNC */
	ZAP_CP_LOAD_BEFORE = 65,    /**< oid, tid */
	ZAP_CP_HISTORY = 66,	    /**< oid, max entries */
	ZAP_CP_LAST_TID = 67,	    /**< flag SYNC */
	ZAP_CP_NEW_OIDS = 68,	    /**< count */
	ZAP_CP_COMMIT_ONESHOT = 69, /**< a whole transaction, prepared and committed */
	ZAP_CP_PREPARE = 70,	    /**< vote: a whole transaction, checked and locked */
	ZAP_CP_COMMIT = 71,	    /**< tpc_finish: txn id */
	ZAP_CP_ABORT = 72,	    /**< tpc_abort: txn id */
	ZAP_CP_CHANGES_SINCE = 73,  /**< tid, max oids */
	ZAP_CP_SYNC = 74,	    /**< read barrier */
	ZAP_CP_PACK = 75,	    /**< tid: drop revisions older than the one current at tid */
	ZAP_CP_REQUEST_LAST = ZAP_CP_PACK,
};
#define ZAP_CP_REQUEST_FIRST ZAP_CP_LOAD
#define ZAP_CP_RESPONSE_OFFSET 32u

/** Result statuses. The values are part of the encoding. */
enum zap_cp_status {
	ZAP_CP_OK = 0,
	ZAP_CP_NOT_FOUND = 1,	    /**< no such object / revision */
	ZAP_CP_CONFLICT = 2,	    /**< oid, serial (committed), base_serial */
	ZAP_CP_READ_CONFLICT = 3,   /**< oid, serial (committed), base_serial (read) */
	ZAP_CP_UNAVAILABLE = 4,	    /**< no quorum / node not serving */
	ZAP_CP_BAD_REQUEST = 5,	    /**< the request did not decode */
	ZAP_CP_TOO_LARGE = 6,	    /**< a record or message above the server's limits */
	ZAP_CP_STALE_REQUEST = 7,   /**< request id older than the session's last */
	ZAP_CP_UNKNOWN_TXN = 8,	    /**< COMMIT / ABORT of a txn that is not there */
	ZAP_CP_DUPLICATE_TXN = 9,   /**< PREPARE of a txn id already in use */
	ZAP_CP_BUSY = 10,	    /**< transaction table full: retry later */
	ZAP_CP_ABORTED = 11,	    /**< the transaction was aborted (client or lease) */
	ZAP_CP_NOT_PREPARED = 12,   /**< COMMIT of a txn whose vote is still waiting */
	ZAP_CP_STORE_FULL = 13,	    /**< the store is out of space */
	ZAP_CP_STORE_ERROR = 14,    /**< the store failed otherwise */
	ZAP_CP_OIDS_EXHAUSTED = 15, /**< no oids left */
	ZAP_CP_STATUS_COUNT
};

/** Limits the decoder and reassembler enforce. Zero fields take the defaults. */
struct zap_cp_limits {
	uint64_t max_record_bytes;  /**< largest record */
	uint64_t max_message_bytes; /**< largest message body (reassembled) */
	uint32_t max_objects;	    /**< largest n_stores + n_reads */
	uint32_t max_text_bytes;    /**< largest user, description or extension */
	uint32_t max_items;	    /**< largest history / changed-oid list */
};

/** The per-datagram header (the chunk fields filled by the decoder). */
struct zap_cp_hdr {
	uint8_t type;	     /**< enum zap_cp_type, or + ZAP_CP_RESPONSE_OFFSET */
	uint16_t flags;	     /**< ZAP_CP_FLAG_* */
	uint64_t client_id;  /**< random per client, never 0 */
	uint64_t request_id; /**< per client, increasing, never 0; a resend keeps it */
	uint64_t cluster_id;
	uint16_t chunk_index;
	uint16_t chunk_count;
	uint32_t chunk_bytes; /**< split size: chunk i starts at i * chunk_bytes */
	uint32_t total_bytes; /**< body length of the whole message */
};

/** One object stored by a transaction. */
struct zap_cp_store {
	uint64_t oid;
	uint64_t base_serial; /**< serial the client read, 0 = new object */
	int deleted;	      /**< 1: delete (len 0, base_serial != 0) */
	const void *data;
	uint32_t len;
};

/** One readCurrent check. */
struct zap_cp_read {
	uint64_t oid;
	uint64_t serial;
};

/** A request: encoder input, decoder output. Fields unused by the type are 0. */
struct zap_cp_request {
	struct zap_cp_hdr hdr;
	uint64_t oid;	 /**< LOAD, LOAD_BEFORE, HISTORY */
	uint64_t tid;	 /**< LOAD_BEFORE (before), CHANGES_SINCE (after), PACK (never 0);
			      COMMIT: the tid asked for (restore), 0 none */
	uint32_t count;	 /**< HISTORY max, NEW_OIDS count, CHANGES_SINCE max oids */
	uint64_t txn_id; /**< PREPARE, COMMIT_ONESHOT, COMMIT, ABORT; never 0 */
	struct zap_txn_text text; /**< PREPARE, COMMIT_ONESHOT */
	const struct zap_cp_store *stores;
	uint32_t n_stores;
	const struct zap_cp_read *reads;
	uint32_t n_reads;
};

/** One history entry. */
struct zap_cp_hist {
	uint64_t serial;
	uint64_t size_bytes;
	int deleted;
	const void *user;
	uint16_t user_len;
	const void *description;
	uint16_t description_len;
};

/** A response: encoder input, decoder output. */
struct zap_cp_response {
	struct zap_cp_hdr hdr;
	uint16_t status;      /**< enum zap_cp_status */
	uint16_t rflags;      /**< ZAP_CP_RFLAG_* */
	uint32_t count;	      /**< NEW_OIDS block size; HISTORY / CHANGES_SINCE list length */
	uint64_t tid;	      /**< LAST_TID, SYNC, COMMIT, COMMIT_ONESHOT, CHANGES_SINCE (upto),
				   PACK (the effective pack tid) */
	uint64_t oid;	      /**< conflicts: the object; NEW_OIDS: first oid */
	uint64_t serial;      /**< LOAD*: serial; conflicts: committed serial */
	uint64_t next_serial; /**< LOAD_BEFORE: next serial (0 = current) */
	uint64_t base_serial; /**< conflicts: the client's base / read serial */
	const void *data;     /**< LOAD, LOAD_BEFORE: record bytes */
	uint32_t len;
	const struct zap_cp_hist *hist; /**< HISTORY: count entries */
	const uint64_t *oids;		/**< CHANGES_SINCE: count oids */
};

struct zap_cp_decoder;
struct zap_cp_reasm;

/* ---------------------------------------------------------------- encoding */

/** Body size of @p req; 0 when it cannot be encoded (unknown type, a size too big). */
size_t zap_cp_request_size(const struct zap_cp_request *req);
/** Body size of @p resp; 0 when it cannot be encoded. */
size_t zap_cp_response_size(const struct zap_cp_response *resp);

/**
 * Encode the body of @p req (the header travels per datagram, see
 * zap_cp_chunk_encode()).
 * @return bytes written; -EINVAL unknown type or a field that does not fit;
 *   -ENOSPC @p cap too small.
 */
ssize_t zap_cp_request_encode(const struct zap_cp_request *req, void *buf, size_t cap);
/** Encode the body of @p resp. Returns as zap_cp_request_encode(). */
ssize_t zap_cp_response_encode(const struct zap_cp_response *resp, void *buf, size_t cap);

/**
 * Number of datagrams a body of @p total_bytes takes with @p chunk_bytes
 * per datagram; 0 if it needs more than ZAP_CP_MAX_CHUNKS or chunk_bytes is
 * out of 1..ZAP_CP_MAX_CHUNK_BYTES.
 */
uint32_t zap_cp_chunk_count(size_t total_bytes, uint32_t chunk_bytes);

/**
 * Write datagram @p index of a message: header from @p hdr (type, flags,
 * ids; the chunk fields are computed) and that slice of @p body.
 * @return datagram bytes; -EINVAL bad chunk size / index / type; -ENOSPC.
 */
ssize_t zap_cp_chunk_encode(const struct zap_cp_hdr *hdr, const void *body, size_t total_bytes,
			    uint32_t chunk_bytes, uint32_t index, void *out, size_t cap);

/* ---------------------------------------------------------------- decoding */

/**
 * Validate one datagram's header.
 * @param cluster_id  expected cluster id.
 * @param max_message_bytes  largest total body accepted (0: the default).
 * @return 0, @p hdr filled, the chunk at @p dgram + ZAP_CP_HDR_BYTES;
 *   -ENODATA shorter than the header;
 *   -EPROTO bad magic;
 *   -EPROTONOSUPPORT another version;
 *   -ENOTSUP unknown type;
 *   -EINVAL unknown flag or reserved bits set, client or request id 0;
 *   -EXDEV another cluster;
 *   -ERANGE chunk fields inconsistent (count, index, size);
 *   -EMSGSIZE total body larger than @p max_message_bytes;
 *   -EBADMSG datagram length does not match the chunk's.
 */
int zap_cp_hdr_decode(const void *dgram, size_t len, uint64_t cluster_id,
		      uint64_t max_message_bytes, struct zap_cp_hdr *hdr);

/** Make a decoder; its arrays are sized from @p lim (NULL: defaults). @return 0; -ENOMEM. */
int zap_cp_decoder_create(const struct zap_cp_limits *lim, struct zap_cp_decoder **out);
/** Free a decoder (NULL is fine). */
void zap_cp_decoder_destroy(struct zap_cp_decoder *d);
/** The limits in force, defaults filled in. */
void zap_cp_decoder_limits(const struct zap_cp_decoder *d, struct zap_cp_limits *lim);

/** Copy @p in (may be NULL) to @p out with every zero field set to its default. */
void zap_cp_limits_fill(const struct zap_cp_limits *in, struct zap_cp_limits *out);

/**
 * Decode a reassembled request body of type @p hdr->type. Views point into
 * @p body and the decoder's arrays until its next decode.
 * @return 0; -ENOTSUP not a request type; -EBADMSG truncated, a count that
 *   does not fit or trailing bytes; -EMSGSIZE a record or text above the
 *   limits; -E2BIG more objects than max_objects; -EINVAL a bad field (oid
 *   UINT64_MAX, txn id 0, an oid twice, deletion with bytes or without base,
 *   NEW_OIDS count 0 or too large, HISTORY / CHANGES_SINCE max 0, PACK tid
 *   0, a flag the type does not take).
 */
int zap_cp_request_decode(struct zap_cp_decoder *d, const struct zap_cp_hdr *hdr, const void *body,
			  size_t len, struct zap_cp_request *out);

/**
 * Decode a reassembled response body.
 * @return 0; -ENOTSUP not a response type; -EBADMSG truncated / trailing
 *   bytes / a tail on a type or status without one; -EDOM unknown status;
 *   -EINVAL unknown result flags or a field out of range; -E2BIG more
 *   items than max_items; -EMSGSIZE a record above max_record_bytes.
 */
int zap_cp_response_decode(struct zap_cp_decoder *d, const struct zap_cp_hdr *hdr, const void *body,
			   size_t len, struct zap_cp_response *out);

/* ---------------------------------------------------------------- reassembly */

/**
 * Make a reassembler holding up to @p slots partial messages at once (the
 * oldest is dropped when a new one needs a slot). Buffers are allocated per
 * message, bounded by @p lim->max_message_bytes.
 * @return 0; -EINVAL slots 0; -ENOMEM.
 */
int zap_cp_reasm_create(const struct zap_cp_limits *lim, uint32_t slots, struct zap_cp_reasm **out);
/** Free a reassembler (NULL is fine). */
void zap_cp_reasm_destroy(struct zap_cp_reasm *r);

/**
 * Feed one datagram whose header @p hdr decoded (zap_cp_hdr_decode()).
 * Chunks may come in any order and more than once. Messages are keyed by
 * (client id, request id, type).
 * @return 1 complete: *@p body / *@p len is the whole body, valid until the
 *   next push or destroy; 0 more chunks needed; -EALREADY a duplicate chunk
 *   (harmless, ignored); -EILSEQ a chunk whose count, size or total disagrees
 *   with earlier chunks of the same message (the message is dropped);
 *   -ENOMEM.
 */
int zap_cp_reasm_push(struct zap_cp_reasm *r, const struct zap_cp_hdr *hdr, const void *dgram,
		      size_t dgram_len, const void **body, size_t *len);

/**
 * Free the buffers of the messages already complete now rather than at the
 * next push (a large request's body is then gone at once, not held until
 * another datagram comes). The body the last push returned is invalid after.
 */
void zap_cp_reasm_release(struct zap_cp_reasm *r);

/** Bytes held in message buffers (partial and complete ones). */
uint64_t zap_cp_reasm_held_bytes(const struct zap_cp_reasm *r);

/** Messages dropped to make room (evicted partial messages). */
uint64_t zap_cp_reasm_evictions(const struct zap_cp_reasm *r);

/* ---------------------------------------------------------------- names */

/** Name of a type ("LOAD", "LOAD_REPLY"), "?" for unknown values. */
const char *zap_cp_type_name(unsigned type);
/** Name of a status ("CONFLICT"), "?" for unknown values. */
const char *zap_cp_status_name(unsigned status);

#ifdef __cplusplus
}
#endif
#endif /* ZAP_CLIENT_PROTO_H */
