/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap txn text: the three text fields of a transaction (user, description,
 * extension), each a pointer and a length in bytes.
 *
 * The struct does not own the bytes: they belong to whoever filled it (an
 * entry being decoded, a store mapping, a client request) and stay valid as
 * long as that owner says. It is embedded as `text` in the log entry
 * (struct zap_entry_txn), the store's transaction info (struct
 * zap_store_txn_info), the client's transaction (struct zap_client_txn) and
 * the native protocol's request (struct zap_cp_request), and given on its
 * own to zap_store_commit() and kept by the transaction state machine.
 * Encodings on disk and on the wire carry the lengths and bytes, never this
 * struct.
 */
#ifndef ZAP_TXN_TEXT_H
#define ZAP_TXN_TEXT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** User, description and extension of a transaction. The bytes are not owned. */
struct zap_txn_text {
	const void *user;
	uint32_t user_len;
	const void *description;
	uint32_t description_len;
	const void *extension;
	uint32_t extension_len;
};

/** Total length of the three texts in bytes (cannot overflow a uint64_t). */
static inline uint64_t zap_txn_text_bytes(const struct zap_txn_text *t)
{
	return (uint64_t)t->user_len + t->description_len + t->extension_len;
}

#ifdef __cplusplus
}
#endif

#endif /* ZAP_TXN_TEXT_H */
