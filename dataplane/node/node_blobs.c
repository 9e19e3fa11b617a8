/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap node blob area (docs/store.md, "Blob area"): the directory
 * <log_dir>/blobs holds the bytes of every blob the store references by
 * hash. The apply stage writes files as PREPAREs are applied (the state
 * machine's keep hook, zodb_record_keep()) and, after a PACK, sweeps the
 * files that neither a stored revision nor a transaction in flight
 * references any more. The ZEO gateway reads the files (sendBlob).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

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
