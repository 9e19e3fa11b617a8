// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the txn tests: build encoded log entries.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

extern "C" {
#include "txn/entry.h"
}

namespace zaptest
{

using Bytes = std::vector<uint8_t>;

struct Store {
	uint64_t oid;
	uint64_t base;
	std::string data;
	bool deleted = false;
};

struct Txn {
	uint64_t txn_id = 1;
	std::string user = "user", desc = "desc", ext = "";
	std::vector<Store> stores;
	std::vector<zap_entry_read> reads;
};

/** A transaction of @p stores and @p reads under txn id @p id. */
inline Txn T(uint64_t id, std::vector<Store> stores, std::vector<zap_entry_read> reads = {})
{
	Txn t;
	t.txn_id = id;
	t.stores = std::move(stores);
	t.reads = std::move(reads);
	return t;
}

struct Hdr {
	uint64_t client = 0;
	uint64_t seq = 0;
	uint64_t clock_ns = 0;
	uint16_t node = 1;
};

inline Bytes Encode(const zap_entry &e)
{
	size_t n = zap_entry_size(&e);
	EXPECT_GT(n, 0u);
	Bytes b(n);
	ssize_t w = zap_entry_encode(&e, b.data(), b.size());
	EXPECT_EQ(w, (ssize_t)n);
	return b;
}

inline zap_entry Header(uint8_t type, const Hdr &h)
{
	zap_entry e;
	memset(&e, 0, sizeof(e));
	e.type = type;
	e.node = h.node;
	e.client_id = h.client;
	e.seq = h.seq;
	e.clock_ns = h.clock_ns;
	return e;
}

inline Bytes TxnEntry(uint8_t type, const Hdr &h, const Txn &t)
{
	zap_entry e = Header(type, h);
	std::vector<zap_entry_store> st;
	for (const Store &s : t.stores)
		st.push_back({s.oid, s.base, s.deleted ? 1 : 0, s.data.data(), s.data.size()});
	e.u.txn.txn_id = t.txn_id;
	e.u.txn.text.user = t.user.data();
	e.u.txn.text.user_len = (uint32_t)t.user.size();
	e.u.txn.text.description = t.desc.data();
	e.u.txn.text.description_len = (uint32_t)t.desc.size();
	e.u.txn.text.extension = t.ext.data();
	e.u.txn.text.extension_len = (uint32_t)t.ext.size();
	e.u.txn.stores = st.data();
	e.u.txn.n_stores = (uint32_t)st.size();
	e.u.txn.reads = t.reads.data();
	e.u.txn.n_reads = (uint32_t)t.reads.size();
	return Encode(e);
}

inline Bytes Prepare(const Hdr &h, const Txn &t)
{
	return TxnEntry(ZAP_ENTRY_PREPARE, h, t);
}

inline Bytes Oneshot(const Hdr &h, const Txn &t)
{
	return TxnEntry(ZAP_ENTRY_ONESHOT, h, t);
}

inline Bytes Commit(const Hdr &h, uint64_t txn_id)
{
	zap_entry e = Header(ZAP_ENTRY_COMMIT, h);
	e.u.txn_id = txn_id;
	return Encode(e);
}

/** A COMMIT that asks for a tid (restore). */
inline Bytes CommitAt(const Hdr &h, uint64_t txn_id, uint64_t tid)
{
	zap_entry e = Header(ZAP_ENTRY_COMMIT, h);
	e.u.txn_id = txn_id;
	e.commit_tid = tid;
	return Encode(e);
}

inline Bytes Abort(const Hdr &h, uint64_t txn_id)
{
	zap_entry e = Header(ZAP_ENTRY_ABORT, h);
	e.u.txn_id = txn_id;
	return Encode(e);
}

inline Bytes OidReserve(const Hdr &h, uint32_t count)
{
	zap_entry e = Header(ZAP_ENTRY_OID_RESERVE, h);
	e.u.oid_count = count;
	return Encode(e);
}

inline Bytes LeaseExpire(uint64_t clock_ns, uint16_t node)
{
	zap_entry e = Header(ZAP_ENTRY_LEASE_EXPIRE, Hdr{0, 0, clock_ns, 1});
	e.u.expire_node = node;
	return Encode(e);
}

inline Bytes Pack(const Hdr &h, uint64_t pack_tid)
{
	zap_entry e = Header(ZAP_ENTRY_PACK, h);
	e.u.pack_tid = pack_tid;
	return Encode(e);
}

inline Bytes Nop(uint64_t clock_ns = 0)
{
	return Encode(Header(ZAP_ENTRY_NOP, Hdr{0, 0, clock_ns, 1}));
}

} // namespace zaptest
