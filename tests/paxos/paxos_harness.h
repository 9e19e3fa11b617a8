// SPDX-License-Identifier: Apache-2.0
// A tiny deterministic driver for the paxos unit tests: engines, an in-order
// network with optional drop filter, durable records per node, chosen logs.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

extern "C" {
#include "log/log.h"
#include "paxos/paxos.h"
}

struct PxRecord {
	uint8_t type;
	uint64_t slot;
	zap_ballot_t ballot;
	std::string data;
	uint64_t token;
};

struct PxNode {
	zap_paxos *p = nullptr;
	zap_paxos_config cfg{};
	std::map<uint64_t, std::string> chosen; // slot -> value
	std::vector<PxRecord> records;          // every PERSIST, in order
	uint64_t durable = 0;                   // highest token reported persisted
	bool auto_persist = true;
	uint16_t leader = 0;
	std::vector<zap_paxos_out> snapshot_needed;
	uint64_t applied = 0;
};

struct PxMsg {
	zap_paxos_msg m;
	std::string payload;
};

class PxCluster
{
      public:
	uint64_t now = 1000;
	std::map<uint16_t, PxNode> nodes;
	std::deque<PxMsg> net;
	std::set<uint16_t> down;
	std::function<bool(const PxMsg &)> drop; // true: lose the message
	std::vector<PxMsg> sent_log;              // every message sent, for inspection
	bool auto_snapshot = false;               // install snapshots when asked

	static zap_paxos_config base_config(uint16_t self, std::vector<uint16_t> members)
	{
		zap_paxos_config c{};
		c.self = self;
		for (size_t i = 0; i < members.size(); i++)
			c.members[i] = members[i];
		c.n_members = (unsigned)members.size();
		c.window_slots = 8;
		c.batch_count = 16;
		c.batch_bytes = 64 * 1024;
		c.heartbeat_ns = 10'000'000;
		c.election_timeout_ns = 100'000'000;
		c.config_delay_slots = 8;
		c.datagram_bytes = 1400;
		c.max_pending_commands = 1024;
		c.seed = 42 + self;
		return c;
	}

	void add(const zap_paxos_config &c, uint64_t applied = 0,
		 const std::vector<PxRecord> *restore = nullptr)
	{
		PxNode &n = nodes[c.self];
		n.cfg = c;
		ASSERT_EQ(zap_paxos_create(&c, &n.p), 0);
		if (restore) {
			for (auto &r : *restore)
				ASSERT_EQ(zap_paxos_restore(n.p, r.type, r.slot, r.ballot,
							    r.data.data(), r.data.size()),
					  0);
			n.records = *restore;
		}
		n.applied = applied;
		ASSERT_EQ(zap_paxos_start(n.p, now, applied), 0);
		drain(c.self);
	}

	void start(std::vector<uint16_t> members, std::function<void(zap_paxos_config &)> tweak = {})
	{
		for (uint16_t id : members) {
			zap_paxos_config c = base_config(id, members);
			if (tweak)
				tweak(c);
			add(c);
		}
	}

	~PxCluster()
	{
		for (auto &kv : nodes)
			zap_paxos_destroy(kv.second.p);
	}

	// Crash: everything not durable is lost; the node is rebuilt from records.
	void restart(uint16_t id)
	{
		PxNode &n = nodes[id];
		std::vector<PxRecord> keep;
		for (auto &r : n.records) {
			if (r.token <= n.durable)
				keep.push_back(r);
		}
		zap_paxos_config c = n.cfg;
		uint64_t applied = n.chosen.empty() ? 0 : n.chosen.rbegin()->first;
		zap_paxos_destroy(n.p);
		std::map<uint64_t, std::string> chosen = n.chosen;
		nodes.erase(id);
		PxNode &m = nodes[id];
		m.chosen = chosen;
		add(c, applied, &keep);
	}

	void drain(uint16_t id)
	{
		PxNode &n = nodes[id];
		for (;;) {
			zap_paxos_out o;
			uint64_t max_token = 0;
			bool any = false;
			while (zap_paxos_poll(n.p, &o) == 1) {
				any = true;
				switch (o.type) {
				case ZAP_PAXOS_OUT_SEND: {
					PxMsg pm{o.msg, std::string((const char *)o.msg.payload,
								    o.msg.len)};
					sent_log.push_back(pm);
					if (down.count(id) || down.count(o.msg.to))
						break;
					if (drop && drop(pm))
						break;
					net.push_back(pm);
					break;
				}
				case ZAP_PAXOS_OUT_PERSIST:
					n.records.push_back(PxRecord{
						o.rec_type, o.slot, o.ballot,
						std::string((const char *)o.data, o.len), o.token});
					max_token = o.token;
					break;
				case ZAP_PAXOS_OUT_CHOSEN: {
					EXPECT_EQ(o.slot, n.applied + 1) << "node " << id;
					n.applied = o.slot;
					std::string v((const char *)o.data, o.len);
					auto it = n.chosen.find(o.slot);
					if (it != n.chosen.end()) {
						EXPECT_EQ(it->second, v) << "slot " << o.slot;
					}
					n.chosen[o.slot] = v;
					break;
				}
				case ZAP_PAXOS_OUT_ROLE:
					n.leader = o.node;
					break;
				case ZAP_PAXOS_OUT_SNAPSHOT_NEEDED:
					n.snapshot_needed.push_back(o);
					break;
				}
			}
			if (!any)
				break;
			if (n.auto_persist && max_token) {
				n.durable = max_token;
				zap_paxos_persisted(n.p, now, max_token);
			}
		}
	}

	void persist_all(uint16_t id)
	{
		PxNode &n = nodes[id];
		if (n.records.empty())
			return;
		n.durable = n.records.back().token;
		zap_paxos_persisted(n.p, now, n.durable);
		drain(id);
	}

	// Deliver queued messages until the network is quiet.
	void pump(size_t max_msgs = 2'000'000)
	{
		size_t k = 0;
		while (!net.empty() && k++ < max_msgs) {
			PxMsg pm = net.front();
			net.pop_front();
			if (down.count(pm.m.to) || !nodes.count(pm.m.to))
				continue;
			pm.m.payload = pm.payload.data();
			zap_paxos_receive(nodes[pm.m.to].p, now, &pm.m);
			drain(pm.m.to);
		}
	}

	// Act as the driver on SNAPSHOT_NEEDED: copy the sender's chosen slots.
	void install_snapshots()
	{
		for (auto &kv : nodes) {
			PxNode &n = kv.second;
			while (!n.snapshot_needed.empty()) {
				zap_paxos_out o = n.snapshot_needed.back();
				n.snapshot_needed.clear();
				PxNode &src = nodes[o.node];
				uint64_t upto = src.applied;
				if (upto < o.slot)
					continue;
				for (auto &c : src.chosen) {
					if (c.first <= upto)
						n.chosen[c.first] = c.second;
				}
				if (upto > n.applied)
					n.applied = upto;
				zap_paxos_snapshot_installed(n.p, now, upto);
				drain(kv.first);
			}
		}
	}

	void tick(uint64_t step_ns = 5'000'000)
	{
		if (auto_snapshot)
			install_snapshots();
		now += step_ns;
		for (auto &kv : nodes) {
			if (down.count(kv.first))
				continue;
			zap_paxos_tick(kv.second.p, now);
			drain(kv.first);
		}
		pump();
	}

	bool run_until(std::function<bool()> pred, uint64_t max_ns = 10'000'000'000ull)
	{
		uint64_t end = now + max_ns;
		while (now < end) {
			pump();
			if (pred())
				return true;
			tick();
		}
		return pred();
	}

	uint16_t leader()
	{
		for (auto &kv : nodes) {
			if (down.count(kv.first))
				continue;
			struct zap_paxos_stats st;
			zap_paxos_stats(kv.second.p, &st);
			if (st.leader == kv.first)
				return kv.first;
		}
		return 0;
	}

	struct zap_paxos_stats stats(uint16_t id)
	{
		struct zap_paxos_stats st;
		zap_paxos_stats(nodes[id].p, &st);
		return st;
	}

	int submit(uint16_t id, const std::string &cmd)
	{
		int rc = zap_paxos_submit(nodes[id].p, now, cmd.data(), (uint32_t)cmd.size());
		drain(id);
		return rc;
	}

	// Commands chosen at a node, in order (NOP and CONFIG skipped).
	std::vector<std::string> commands(uint16_t id)
	{
		std::vector<std::string> out;
		for (auto &kv : nodes[id].chosen) {
			const std::string &v = kv.second;
			if (zap_paxos_value_kind(v.data(), v.size()) != ZAP_PAXOS_VALUE_BATCH)
				continue;
			uint64_t pos = 0;
			const void *c;
			uint32_t l;
			while (zap_paxos_batch_next(v.data(), v.size(), &pos, &c, &l) == 1)
				out.emplace_back((const char *)c, l);
		}
		return out;
	}

	bool all_have(const std::vector<uint16_t> &ids, size_t n_cmds)
	{
		for (uint16_t id : ids)
			if (commands(id).size() < n_cmds)
				return false;
		return true;
	}
};
