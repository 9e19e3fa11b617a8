/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * A small ZEO 5 client for the load generator: TCP, length-prefixed framing,
 * the Z5 handshake (pickle protocol 3), and the calls a ZODB client makes on
 * its hot paths: register, loadBefore, new_oids, tpc_begin, storea, vote,
 * tpc_finish, tpc_abort, and a blob's upload (storeBlobStart,
 * storeBlobChunk, storeBlobEnd) and download (sendBlob, answered by
 * receiveBlobStart, receiveBlobChunk..., receiveBlobStop before the reply).
 * Requests are written with dataplane/zeo_codec's writer; replies are read
 * with its strict decoder. One call in flight per connection; other
 * server-initiated messages (invalidateTransaction, info) that arrive in
 * between are read and dropped. A blob is streamed both ways: the client
 * never holds more of it than one chunk.
 *
 * Results: 0, a negative errno (-ECONNRESET, -EPROTO, ...), or one of
 * ZEOB_E_* below.
 */
#ifndef ZAP_BENCH_ZEO_CLIENT_H
#define ZAP_BENCH_ZEO_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/** vote answered with a conflict (a conflict dict or a ConflictError). */
#define ZEOB_E_CONFLICT (-30001)
/** The server answered with an error reply other than a conflict. */
#define ZEOB_E_SERVER (-30002)
/** loadBefore: POSKeyError or None. */
#define ZEOB_E_NOTFOUND (-30003)
/**
 * sendBlob: the bytes received are not the blob's (a chunk differs, the
 * receiveBlob* messages name another oid or serial, come out of order, or the
 * reply came before receiveBlobStop).
 */
#define ZEOB_E_MISMATCH (-30004)

/** Bytes per storeBlobChunk, as the stock client (ClientStorage) sends them. */
#define ZEOB_BLOB_CHUNK 59000u

struct zeob;

/** Connect to HOST:PORT, do the handshake and register storage "1". */
int zeob_open(const char *host, uint16_t port, struct zeob **out);
/**
 * zeob_open() bounded in time: the connect, and then every read and write of
 * the connection, give up after @p timeout_ms (0: wait forever, as
 * zeob_open()) with -ETIMEDOUT. A server that refuses by closing the
 * connection gives -ECONNRESET.
 */
int zeob_open_timeout(const char *host, uint16_t port, int timeout_ms, struct zeob **out);
void zeob_close(struct zeob *z);
/** The connection's socket (to wait on server messages of an idle connection). */
int zeob_fd(const struct zeob *z);
/** The tid register returned. */
uint64_t zeob_last_tid(const struct zeob *z);

/** loadBefore(oid, before): record length and serial. */
int zeob_load_before(struct zeob *z, uint64_t oid, uint64_t before, uint32_t *len,
		     uint64_t *serial);

/** new_oids(): up to @p max oids into @p oids; *@p n the number received. */
int zeob_new_oids(struct zeob *z, uint64_t *oids, uint32_t max, uint32_t *n);

/** One store of a transaction. */
struct zeob_store {
	uint64_t oid;
	uint64_t serial; /**< 0 for a new object */
	const void *data;
	uint32_t len;
};

/**
 * A whole transaction: tpc_begin, storea for each store, vote, then
 * tpc_finish (or tpc_abort after a failed vote).
 * @param tid  out: the transaction's tid.
 * @param conflict_serial  out on ZEOB_E_CONFLICT (may be NULL): the
 *   committed serial of the conflicting object (0 when not given).
 */
int zeob_commit(struct zeob *z, const struct zeob_store *st, uint32_t n, uint64_t *tid,
		uint64_t *conflict_serial);

/** Write the blob's bytes [off, off + len) into @p buf. */
typedef void (*zeob_blob_fill_fn)(void *arg, uint64_t off, uint8_t *buf, size_t len);
/** Check received blob bytes at [off, off + len); non-zero: they differ. */
typedef int (*zeob_blob_check_fn)(void *arg, uint64_t off, const uint8_t *p, size_t len);

/**
 * A transaction that stores one new object with a blob, as ClientStorage
 * does: tpc_begin, storea(oid, z64, pickle), storeBlobStart, storeBlobChunk
 * of ZEOB_BLOB_CHUNK bytes each (their bytes from @p fill, one chunk at a
 * time), storeBlobEnd(oid, z64, pickle, txn), vote, tpc_finish.
 * @param size  the blob's length in bytes.
 * @param tid  out: the transaction's tid (the blob's serial).
 */
int zeob_commit_blob(struct zeob *z, uint64_t oid, const void *pickle, uint32_t plen, uint64_t size,
		     zeob_blob_fill_fn fill, void *arg, uint64_t *tid);

/**
 * sendBlob(oid, serial): reads the receiveBlobStart, receiveBlobChunk...,
 * receiveBlobStop messages the server sends before its reply, passing each
 * chunk to @p check with its offset, then the reply.
 * @param size  out: the bytes received in chunks.
 * @return 0; ZEOB_E_MISMATCH (a chunk @p check refused, or messages that are
 *   not this blob's or out of order: the call was still read to its reply);
 *   ZEOB_E_SERVER an error reply (POSKeyError: no such blob); < 0 errno.
 */
int zeob_send_blob(struct zeob *z, uint64_t oid, uint64_t serial, zeob_blob_check_fn check,
		   void *arg, uint64_t *size);

#endif /* ZAP_BENCH_ZEO_CLIENT_H */
