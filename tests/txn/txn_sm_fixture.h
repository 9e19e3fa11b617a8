// SPDX-License-Identifier: Apache-2.0
// A state machine over its own store, with its results collected.
#pragma once

#include "txn_test_util.h"

#include <cstring>
#include <vector>

extern "C" {
#include "store/store.h"
#include "txn/txn.h"
}

namespace zaptest
{

struct Res {
	zap_txn_result r;
	std::vector<uint64_t> oids;
};

struct Replica {
	zap_store *store = nullptr;
	zap_txn_sm *sm = nullptr;
	uint64_t index = 0;
	uint64_t put_seq = 0; // for helpers that commit as their own client
	std::vector<Res> out;

	explicit Replica(const zap_txn_params &p = Params(), uint64_t store_bytes = 64ull << 20)
	{
		zap_store_params sp;
		memset(&sp, 0, sizeof(sp));
		sp.size_bytes = store_bytes;
		sp.max_record_bytes = p.max_record_bytes ? p.max_record_bytes : (4u << 20);
		EXPECT_EQ(zap_store_create(&sp, &store), 0);
		EXPECT_EQ(zap_txn_sm_create(&p, store, &sm), 0);
	}
	~Replica()
	{
		zap_txn_sm_destroy(sm);
		zap_store_close(store);
	}
	Replica(const Replica &) = delete;
	Replica &operator=(const Replica &) = delete;

	static zap_txn_params Params()
	{
		zap_txn_params p;
		memset(&p, 0, sizeof(p));
		p.lease_ns = 10ull * 1000000000ull;
		p.max_sessions = 64;
		p.max_prepared = 64;
		p.max_record_bytes = 4u << 20;
		return p;
	}

	static void Emit(const zap_txn_result *r, void *ctx)
	{
		Replica *self = static_cast<Replica *>(ctx);
		Res res;
		res.r = *r;
		if (r->oids)
			res.oids.assign(r->oids, r->oids + r->n_oids);
		res.r.oids = nullptr;
		self->out.push_back(res);
	}

	// Apply at the next index; out holds this entry's results only.
	int Apply(const Bytes &b)
	{
		out.clear();
		return zap_txn_sm_apply(sm, ++index, b.data(), b.size(), Emit, this);
	}

	// Apply and expect exactly one result; return it.
	zap_txn_result One(const Bytes &b)
	{
		EXPECT_EQ(Apply(b), 0);
		EXPECT_EQ(out.size(), 1u);
		if (out.empty()) {
			zap_txn_result r;
			memset(&r, 0xff, sizeof(r));
			return r;
		}
		return out[0].r;
	}

	uint64_t Serial(uint64_t oid) const
	{
		return zap_store_serial(store, oid);
	}
	uint64_t Digest() const
	{
		return zap_txn_sm_digest(sm);
	}
	uint64_t StoreDigest() const
	{
		return zap_store_digest(store);
	}
	zap_txn_stats Stats() const
	{
		zap_txn_stats st;
		zap_txn_sm_stats(sm, &st);
		return st;
	}
};

} // namespace zaptest
