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
#include <string.h>

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

/**
 * Point t at three texts laid out one after the other from p (user, then
 * description, then extension, of the given lengths); returns the byte after
 * them.
 */
static inline const uint8_t *zap_txn_text_point(struct zap_txn_text *t, const uint8_t *p,
						uint32_t user_len, uint32_t description_len,
						uint32_t extension_len)
{
	t->user = p;
	t->user_len = user_len;
	p += user_len;
	t->description = p;
	t->description_len = description_len;
	p += description_len;
	t->extension = p;
	t->extension_len = extension_len;
	return p + extension_len;
}

/**
 * Copy the texts of src one after the other to p (zap_txn_text_bytes(src)
 * bytes) and point dst at the copies; returns the byte after them.
 */
static inline uint8_t *zap_txn_text_copy(struct zap_txn_text *dst, const struct zap_txn_text *src,
					 uint8_t *p)
{
	if (src->user_len)
		memcpy(p, src->user, src->user_len);
	if (src->description_len)
		memcpy(p + src->user_len, src->description, src->description_len);
	if (src->extension_len)
		memcpy(p + src->user_len + src->description_len, src->extension,
		       src->extension_len);
	return (uint8_t *)zap_txn_text_point(dst, p, src->user_len, src->description_len,
					     src->extension_len);
}

#ifdef __cplusplus
}
#endif

#endif /* ZAP_TXN_TEXT_H */
