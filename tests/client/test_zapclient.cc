// SPDX-License-Identifier: Apache-2.0
// Tests of libzapclient (dataplane/client/zapclient.c) against a fake server: a
// thread on 127.0.0.1 (kernel UDP, an ephemeral port) that decodes requests
// with the codec and answers canned responses. Loopback only, short
// timeouts, bounded loops.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/zapclient.h"

namespace
{

using Bytes = std::vector<uint8_t>;
constexpr uint64_t kCluster = 0xc1u;

class FakeServer
{
      public:
	using Handler = std::function<void(const zap_cp_request &, zap_cp_response &)>;

	explicit FakeServer(Handler h) : handler(std::move(h))
	{
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		EXPECT_GE(fd, 0);
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		EXPECT_EQ(bind(fd, (sockaddr *)&a, sizeof(a)), 0);
		socklen_t al = sizeof(a);
		EXPECT_EQ(getsockname(fd, (sockaddr *)&a, &al), 0);
		port = ntohs(a.sin_port);
		int rcvbuf = 8 << 20;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
		EXPECT_EQ(zap_cp_decoder_create(nullptr, &dec), 0);
		EXPECT_EQ(zap_cp_reasm_create(nullptr, 8, &ra), 0);
		th = std::thread([this] { run(); });
	}
	~FakeServer()
	{
		stop = true;
		th.join();
		close(fd);
		zap_cp_decoder_destroy(dec);
		zap_cp_reasm_destroy(ra);
	}
	size_t distinct_ids()
	{
		std::lock_guard<std::mutex> g(mu);
		return ids.size();
	}

	uint16_t port = 0;
	std::atomic<int> drop_replies{0}; // replies to drop before answering
	std::atomic<bool> silent{false};
	std::atomic<int> requests{0}; // complete requests received, resends included
	std::atomic<uint16_t> last_flags{0};
	Bytes last_record; // first store of the last transaction
	Bytes reply_data;  // what LOAD replies point at

      private:
	void run()
	{
		std::vector<uint8_t> buf(70000);
		for (int iter = 0; !stop && iter < 100000; iter++) {
			pollfd p{fd, POLLIN, 0};
			if (poll(&p, 1, 10) <= 0)
				continue;
			sockaddr_storage from{};
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(fd, buf.data(), buf.size(), 0, (sockaddr *)&from, &fl);
			if (n <= 0)
				continue;
			zap_cp_hdr h;
			if (zap_cp_hdr_decode(buf.data(), (size_t)n, kCluster, 0, &h) != 0)
				continue;
			const void *body;
			size_t len;
			if (zap_cp_reasm_push(ra, &h, buf.data(), (size_t)n, &body, &len) != 1)
				continue;
			zap_cp_request q;
			if (zap_cp_request_decode(dec, &h, body, len, &q) != 0)
				continue;
			requests++;
			last_flags = h.flags;
			{
				std::lock_guard<std::mutex> g(mu);
				ids.insert(h.request_id);
				if (q.n_stores > 0) {
					const uint8_t *d = (const uint8_t *)q.stores[0].data;
					last_record.assign(d, d + q.stores[0].len);
				}
			}
			if (silent)
				continue;
			zap_cp_response r{};
			r.hdr = h;
			r.hdr.type = (uint8_t)(h.type + ZAP_CP_RESPONSE_OFFSET);
			r.hdr.flags = 0;
			handler(q, r);
			if (drop_replies > 0) {
				drop_replies--;
				continue;
			}
			Bytes out(zap_cp_response_size(&r));
			if (zap_cp_response_encode(&r, out.data(), out.size()) < 0)
				continue;
			uint32_t chunk = 1352, count = zap_cp_chunk_count(out.size(), chunk);
			Bytes d(ZAP_CP_HDR_BYTES + chunk);
			for (uint32_t i = 0; i < count; i++) {
				ssize_t k = zap_cp_chunk_encode(&r.hdr, out.data(), out.size(),
								chunk, i, d.data(), d.size());
				if (k > 0)
					sendto(fd, d.data(), (size_t)k, 0, (sockaddr *)&from, fl);
			}
		}
	}

	Handler handler;
	int fd = -1;
	std::thread th;
	std::atomic<bool> stop{false};
	std::mutex mu;
	std::set<uint64_t> ids;
	zap_cp_decoder *dec = nullptr;
	zap_cp_reasm *ra = nullptr;
};

zap_client *open_client(uint16_t port, uint32_t timeout_ms = 200, uint32_t retries = 3)
{
	zap_client *c = nullptr;
	EXPECT_EQ(zap_client_open("127.0.0.1", port, kCluster, &c), 0);
	if (c != nullptr)
		zap_client_set_timeout(c, timeout_ms, retries);
	return c;
}

TEST(ClientLib, LoadDecodesRecordAndPassesSyncFlag)
{
	FakeServer srv([](const zap_cp_request &q, zap_cp_response &r) {
		r.serial = q.oid * 10;
		r.data = "hello";
		r.len = 5;
	});
	zap_client *c = open_client(srv.port);
	ASSERT_NE(c, nullptr);
	EXPECT_NE(zap_client_id(c), 0u);
	zap_client_record rec{};
	ASSERT_EQ(zap_client_load(c, 7, 1, &rec), 0);
	EXPECT_EQ(rec.serial, 70u);
	EXPECT_EQ(std::string((const char *)rec.data, rec.len), "hello");
	EXPECT_EQ(srv.last_flags.load(), ZAP_CP_FLAG_SYNC);
	ASSERT_EQ(zap_client_load(c, 8, 0, &rec), 0);
	EXPECT_EQ(srv.last_flags.load(), 0);
	EXPECT_EQ(srv.distinct_ids(), 2u); // request ids grow per call
	zap_client_close(c);
}

TEST(ClientLib, ConflictsFillTheOutStruct)
{
	FakeServer srv([](const zap_cp_request &q, zap_cp_response &r) {
		r.status = q.hdr.type == ZAP_CP_PREPARE ? ZAP_CP_READ_CONFLICT : ZAP_CP_CONFLICT;
		r.oid = 17;
		r.serial = 300;
		r.base_serial = 200;
	});
	zap_client *c = open_client(srv.port);
	ASSERT_NE(c, nullptr);
	zap_cp_store st{17, 200, 0, "x", 1};
	zap_client_txn t{};
	t.stores = &st;
	t.n_stores = 1;
	zap_client_conflict cf{};
	uint64_t tid = 0;
	EXPECT_EQ(zap_client_commit_oneshot(c, &t, &tid, &cf), ZAP_CLIENT_E_CONFLICT);
	EXPECT_EQ(cf.oid, 17u);
	EXPECT_EQ(cf.serial, 300u);
	EXPECT_EQ(cf.base_serial, 200u);
	t.txn_id = 99;
	cf = {};
	EXPECT_EQ(zap_client_prepare(c, &t, &cf), ZAP_CLIENT_E_READ_CONFLICT);
	EXPECT_EQ(cf.oid, 17u);
	zap_client_close(c);
}

TEST(ClientLib, DroppedReplyIsResentWithTheSameRequestId)
{
	FakeServer srv([](const zap_cp_request &, zap_cp_response &r) { r.tid = 0x1234; });
	srv.drop_replies = 1;
	zap_client *c = open_client(srv.port, 100, 3);
	ASSERT_NE(c, nullptr);
	zap_cp_store st{1, 0, 0, "new", 3};
	zap_client_txn t{};
	t.stores = &st;
	t.n_stores = 1;
	uint64_t tid = 0;
	ASSERT_EQ(zap_client_commit_oneshot(c, &t, &tid, nullptr), 0);
	EXPECT_EQ(tid, 0x1234u);
	EXPECT_EQ(srv.requests.load(), 2);
	EXPECT_EQ(srv.distinct_ids(), 1u);
	struct zap_client_stats st_ {
	};
	zap_client_get_stats(c, &st_);
	EXPECT_EQ(st_.retries, 1u);
	EXPECT_EQ(st_.requests, 1u);
	zap_client_close(c);
}

TEST(ClientLib, SilentServerTimesOutWithinTheBound)
{
	FakeServer srv([](const zap_cp_request &, zap_cp_response &) {});
	srv.silent = true;
	zap_client *c = open_client(srv.port, 50, 2);
	ASSERT_NE(c, nullptr);
	auto t0 = std::chrono::steady_clock::now();
	uint64_t tid;
	EXPECT_EQ(zap_client_last_tid(c, 0, &tid), -ETIMEDOUT);
	auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
		      std::chrono::steady_clock::now() - t0)
		      .count();
	EXPECT_GE(ms, 140);
	EXPECT_LT(ms, 2000);
	for (int i = 0; i < 100 && srv.requests.load() < 3; i++)
		std::this_thread::sleep_for(std::chrono::milliseconds(5));
	EXPECT_EQ(srv.requests.load(), 3);
	EXPECT_EQ(srv.distinct_ids(), 1u);
	zap_client_close(c);
}

TEST(ClientLib, LateReplyToAnOlderRequestIsIgnored)
{
	// the first request's reply comes after that call gave up; the next call
	// must skip it and return its own reply
	FakeServer srv([](const zap_cp_request &q, zap_cp_response &r) {
		if (q.hdr.request_id == 1)
			std::this_thread::sleep_for(std::chrono::milliseconds(80));
		r.tid = q.hdr.request_id * 100;
	});
	zap_client *c = open_client(srv.port, 40, 0);
	ASSERT_NE(c, nullptr);
	uint64_t tid = 0;
	EXPECT_EQ(zap_client_last_tid(c, 0, &tid), -ETIMEDOUT);
	zap_client_set_timeout(c, 500, 1);
	ASSERT_EQ(zap_client_last_tid(c, 0, &tid), 0);
	EXPECT_EQ(tid, 200u);
	struct zap_client_stats s {
	};
	zap_client_get_stats(c, &s);
	EXPECT_EQ(s.stale, 1u);
	zap_client_close(c);
}

TEST(ClientLib, EachClientDrawsItsOwnId)
{
	zap_client *a = open_client(9), *b = open_client(9);
	ASSERT_NE(a, nullptr);
	ASSERT_NE(b, nullptr);
	EXPECT_NE(zap_client_id(a), zap_client_id(b));
	zap_client_close(a);
	zap_client_close(b);
}

TEST(ClientLib, NothingListeningIsConnectionRefused)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(bind(fd, (sockaddr *)&a, sizeof(a)), 0);
	socklen_t al = sizeof(a);
	ASSERT_EQ(getsockname(fd, (sockaddr *)&a, &al), 0);
	close(fd); // the port is now closed: the kernel answers ICMP port unreachable
	zap_client *c = open_client(ntohs(a.sin_port), 30, 1);
	ASSERT_NE(c, nullptr);
	EXPECT_EQ(zap_client_sync(c, nullptr), -ECONNREFUSED);
	zap_client_close(c);
}

TEST(ClientLib, LargeRecordsSpanDatagramsBothWays)
{
	FakeServer *sp = nullptr;
	FakeServer srv([&sp](const zap_cp_request &q, zap_cp_response &r) {
		if (q.hdr.type == ZAP_CP_LOAD) {
			r.serial = 5;
			r.data = sp->reply_data.data();
			r.len = (uint32_t)sp->reply_data.size();
		} else {
			r.tid = 77;
		}
	});
	sp = &srv;
	srv.reply_data.resize(200 * 1024);
	for (size_t i = 0; i < srv.reply_data.size(); i++)
		srv.reply_data[i] = (uint8_t)(i * 13 + 1);
	zap_client *c = open_client(srv.port, 500, 3);
	ASSERT_NE(c, nullptr);
	Bytes rec(100 * 1024);
	for (size_t i = 0; i < rec.size(); i++)
		rec[i] = (uint8_t)(i * 7 + 3);
	zap_cp_store st{5, 0, 0, rec.data(), (uint32_t)rec.size()};
	zap_client_txn t{};
	t.stores = &st;
	t.n_stores = 1;
	uint64_t tid = 0;
	ASSERT_EQ(zap_client_commit_oneshot(c, &t, &tid, nullptr), 0);
	EXPECT_EQ(tid, 77u);
	EXPECT_EQ(srv.last_record, rec);
	zap_client_record out{};
	ASSERT_EQ(zap_client_load(c, 5, 0, &out), 0);
	ASSERT_EQ(out.len, srv.reply_data.size());
	EXPECT_EQ(memcmp(out.data, srv.reply_data.data(), out.len), 0);
	struct zap_client_stats s {
	};
	zap_client_get_stats(c, &s);
	EXPECT_GT(s.datagrams_sent, 70u);
	EXPECT_GT(s.datagrams_received, 150u);
	zap_client_close(c);
}

TEST(ClientLib, EveryCallMapsItsReply)
{
	static const zap_cp_hist hist[2] = {{9, 100, 0, "u", 1, "d", 1},
					    {8, 0, 1, nullptr, 0, nullptr, 0}};
	static const uint64_t oids[3] = {4, 5, 6};
	FakeServer srv([](const zap_cp_request &q, zap_cp_response &r) {
		switch (q.hdr.type) {
		case ZAP_CP_LOAD:
			r.status = q.oid == 1 ? ZAP_CP_NOT_FOUND : ZAP_CP_UNAVAILABLE;
			break;
		case ZAP_CP_LOAD_BEFORE:
			r.serial = 3;
			r.next_serial = q.tid;
			break;
		case ZAP_CP_HISTORY:
			r.count = 2;
			r.hist = hist;
			break;
		case ZAP_CP_NEW_OIDS:
			r.oid = 1000;
			r.count = q.count;
			break;
		case ZAP_CP_CHANGES_SINCE:
			r.tid = 50;
			if (q.tid < 10) {
				r.rflags = ZAP_CP_RFLAG_TOO_OLD;
			} else {
				r.count = 3;
				r.oids = oids;
			}
			break;
		case ZAP_CP_COMMIT:
			r.tid = 60;
			break;
		case ZAP_CP_ABORT:
			r.status = ZAP_CP_UNKNOWN_TXN;
			break;
		case ZAP_CP_PACK:
			if (q.tid == 7)
				r.status = ZAP_CP_STORE_ERROR;
			else
				r.tid = q.tid - 1; // the effective pack tid
			break;
		default:
			r.tid = 42;
			break;
		}
	});
	zap_client *c = open_client(srv.port);
	ASSERT_NE(c, nullptr);
	zap_client_record rec{};
	EXPECT_EQ(zap_client_load(c, 1, 0, &rec), -ENOENT);
	EXPECT_EQ(zap_client_load(c, 2, 0, &rec), -EHOSTUNREACH);
	ASSERT_EQ(zap_client_load_before(c, 2, 33, &rec), 0);
	EXPECT_EQ(rec.serial, 3u);
	EXPECT_EQ(rec.next_serial, 33u);
	EXPECT_EQ(rec.len, 0u);
	const zap_cp_hist *h = nullptr;
	uint32_t n = 0;
	ASSERT_EQ(zap_client_history(c, 2, 10, &h, &n), 0);
	ASSERT_EQ(n, 2u);
	EXPECT_EQ(h[0].serial, 9u);
	EXPECT_EQ(h[1].deleted, 1);
	uint64_t first = 0, tid = 0;
	ASSERT_EQ(zap_client_new_oids(c, 16, &first, &n), 0);
	EXPECT_EQ(first, 1000u);
	EXPECT_EQ(n, 16u);
	zap_client_changes ch{};
	ASSERT_EQ(zap_client_changes_since(c, 5, 100, &ch), 0);
	EXPECT_EQ(ch.too_old, 1);
	ASSERT_EQ(zap_client_changes_since(c, 20, 100, &ch), 0);
	EXPECT_EQ(ch.too_old, 0);
	ASSERT_EQ(ch.n_oids, 3u);
	EXPECT_EQ(ch.oids[2], 6u);
	EXPECT_EQ(ch.tid, 50u);
	ASSERT_EQ(zap_client_last_tid(c, 1, &tid), 0);
	EXPECT_EQ(tid, 42u);
	ASSERT_EQ(zap_client_sync(c, &tid), 0);
	EXPECT_EQ(tid, 42u);
	zap_client_txn t{};
	t.txn_id = 5;
	ASSERT_EQ(zap_client_prepare(c, &t, nullptr), 0);
	ASSERT_EQ(zap_client_commit(c, 5, &tid), 0);
	EXPECT_EQ(tid, 60u);
	EXPECT_EQ(zap_client_abort(c, 5), -ESRCH);
	ASSERT_EQ(zap_client_pack(c, 0x0331620000000009ull, &tid), 0);
	EXPECT_EQ(tid, 0x0331620000000008ull);
	EXPECT_EQ(zap_client_pack(c, 8, nullptr), 0);
	EXPECT_EQ(zap_client_pack(c, 7, &tid), -EIO);
	// arguments checked before anything is sent
	EXPECT_EQ(zap_client_pack(c, 0, &tid), -EINVAL);
	EXPECT_EQ(zap_client_commit(c, 0, &tid), -EINVAL);
	t.txn_id = 0;
	EXPECT_EQ(zap_client_prepare(c, &t, nullptr), -EINVAL);
	EXPECT_EQ(zap_client_new_oids(c, 0, &first, &n), -EINVAL);
	zap_client_close(c);
}

TEST(ClientLib, OpenRejectsBadArguments)
{
	zap_client *c = nullptr;
	EXPECT_EQ(zap_client_open(nullptr, 1, kCluster, &c), -EINVAL);
	EXPECT_EQ(zap_client_open("127.0.0.1", 0, kCluster, &c), -EINVAL);
	EXPECT_EQ(zap_client_open("no-such-host.invalid", 1, kCluster, &c), -ENOENT);
	zap_client_opts o{};
	o.datagram_bytes = 10;
	EXPECT_EQ(zap_client_open_opts("127.0.0.1", 1, kCluster, &o, &c), -EINVAL);
}

TEST(ClientLib, StrerrorNamesEveryResult)
{
	for (int e : {0, ZAP_CLIENT_E_CONFLICT, ZAP_CLIENT_E_READ_CONFLICT, ZAP_CLIENT_E_PROTOCOL,
		      -ETIMEDOUT, -ENOENT, -EHOSTUNREACH, -ECONNREFUSED, -EMSGSIZE, -ESRCH})
		EXPECT_STRNE(zap_client_strerror(e), "unknown error") << e;
	EXPECT_STREQ(zap_client_strerror(-99999), "unknown error");
}

} // namespace
