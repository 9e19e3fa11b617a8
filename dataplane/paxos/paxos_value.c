/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap paxos values: the encoding of what a slot holds (docs/paxos.md).
 *
 *   NOP    = u8 kind(1)
 *   BATCH  = u8 kind(2), u32 count (>= 1), count x (u32 len, len bytes)
 *   CONFIG = u8 kind(3), u8 count (1..ZAP_PAXOS_MAX_NODES), count x u16 member
 *
 * Integers are little-endian. Validation is strict: a value is well formed
 * only if it is consumed exactly, so any value from the network that the
 * engine keeps has passed px_validate_value(). Pure functions, any thread.
 */
#include "paxos_core.h"
#include "base/bytes.h"

#include <errno.h>

static int batch_check(const uint8_t *v, uint64_t len)
{
	if (len < PX_BATCH_HEADER_BYTES)
		return -EBADMSG;
	uint32_t count = zap_get_le32(v + 1);
	if (count == 0)
		return -EBADMSG;
	uint64_t pos = PX_BATCH_HEADER_BYTES;
	for (uint32_t i = 0; i < count; i++) {
		if (len - pos < PX_CMD_HEADER_BYTES)
			return -EBADMSG;
		uint32_t l = zap_get_le32(v + pos);
		pos += PX_CMD_HEADER_BYTES;
		if (len - pos < l)
			return -EBADMSG;
		pos += l;
	}
	return pos == len ? 0 : -EBADMSG;
}

static int config_check(const uint8_t *v, uint64_t len)
{
	if (len < 2)
		return -EBADMSG;
	unsigned n = v[1];
	if (n == 0 || n > ZAP_PAXOS_MAX_NODES || len != 2 + 2ull * n)
		return -EBADMSG;
	for (unsigned i = 0; i < n; i++) {
		uint16_t a = zap_get_le16(v + 2 + 2 * i);
		if (a == 0)
			return -EBADMSG;
		for (unsigned j = 0; j < i; j++)
			if (a == zap_get_le16(v + 2 + 2 * j))
				return -EBADMSG;
	}
	return 0;
}

int px_validate_value(const uint8_t *v, uint64_t len)
{
	if (v == NULL || len == 0)
		return -EBADMSG;
	switch (v[0]) {
	case ZAP_PAXOS_VALUE_NOP:
		return len == 1 ? ZAP_PAXOS_VALUE_NOP : -EBADMSG;
	case ZAP_PAXOS_VALUE_BATCH:
		return batch_check(v, len) == 0 ? ZAP_PAXOS_VALUE_BATCH : -EBADMSG;
	case ZAP_PAXOS_VALUE_CONFIG:
		return config_check(v, len) == 0 ? ZAP_PAXOS_VALUE_CONFIG : -EBADMSG;
	default:
		return -EBADMSG;
	}
}

int zap_paxos_value_kind(const void *value, uint64_t len)
{
	return px_validate_value(value, len);
}

int zap_paxos_batch_next(const void *value, uint64_t len, uint64_t *pos, const void **cmd,
			 uint32_t *cmd_len)
{
	const uint8_t *v = value;
	if (pos == NULL || cmd == NULL || cmd_len == NULL)
		return -EBADMSG;
	if (*pos == 0) {
		if (px_validate_value(v, len) != ZAP_PAXOS_VALUE_BATCH)
			return -EBADMSG;
		*pos = PX_BATCH_HEADER_BYTES;
	}
	if (*pos == len)
		return 0;
	if (*pos > len || len - *pos < PX_CMD_HEADER_BYTES)
		return -EBADMSG;
	uint32_t l = zap_get_le32(v + *pos);
	if (len - *pos - PX_CMD_HEADER_BYTES < l)
		return -EBADMSG;
	*cmd = v + *pos + PX_CMD_HEADER_BYTES;
	*cmd_len = l;
	*pos += PX_CMD_HEADER_BYTES + (uint64_t)l;
	return 1;
}

int zap_paxos_config_members(const void *value, uint64_t len, uint16_t *members, unsigned max)
{
	const uint8_t *v = value;
	if (px_validate_value(v, len) != ZAP_PAXOS_VALUE_CONFIG)
		return -EBADMSG;
	unsigned n = v[1];
	for (unsigned i = 0; i < n && i < max && members != NULL; i++)
		members[i] = zap_get_le16(v + 2 + 2 * i);
	return (int)n;
}
