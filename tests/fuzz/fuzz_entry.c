/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: log entries. Whatever the bytes, the decoder either
 * rejects them or yields an entry that re-encodes to the same bytes, and
 * the state machine applies them (or rejects them) without crashing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "txn/entry.h"
#include "store/store.h"
#include "txn/txn.h"

static void ignore(const struct zap_txn_result *r, void *ctx)
{
	(void)r;
	(void)ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct zap_entry_decoder *dec;
	static struct zap_store *store;
	static struct zap_txn_sm *sm;
	static uint64_t index;
	static uint8_t out[1 << 20];
	if (dec == NULL) {
		struct zap_store_params sp = {.size_bytes = 64u << 20, .max_record_bytes = 1u << 20};
		struct zap_txn_params tp = {.max_record_bytes = 1u << 20, .max_large_bytes = 1u << 20};
		if (zap_entry_decoder_create(NULL, &dec) != 0 || zap_store_create(&sp, &store) != 0 ||
		    zap_txn_sm_create(&tp, store, &sm) != 0)
			abort();
	}
	struct zap_entry e;
	if (zap_entry_decode(dec, data, size, &e) == 0) {
		ssize_t n = zap_entry_encode(&e, out, sizeof(out));
		if (size <= sizeof(out) && (n != (ssize_t)size || memcmp(out, data, size) != 0))
			abort();
	}
	zap_txn_sm_apply(sm, ++index, data, size, ignore, NULL);
	return 0;
}
