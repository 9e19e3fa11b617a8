/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Readers running while the writer installs, packs and reclaims: threads of
 * this process (rte_rcu_qsbr) and a second process attached to the mapping
 * (reader table). Every record read must be whole and match its serial.
 */
#include "store_fixture.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <random>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

namespace {

const uint64_t kOids = 400;

/* Writer: commits random groups, packs now and then, grows the index. */
static void writer_run(zap_store *s, uint64_t seed, int commits, std::atomic<bool> *stop)
{
	std::mt19937_64 rng(seed);
	for (int t = 1; t <= commits; t++) {
		std::vector<PatternWrite> ws;
		std::vector<bool> used(kOids);
		for (int k = 0; k < 4; k++) {
			uint64_t oid = rng() % kOids;
			if (!used[oid]) {
				used[oid] = true;
				ws.push_back(pattern_write(oid, (uint64_t)t));
			}
		}
		ASSERT_EQ(commit_writes(s, (uint64_t)t, ws), 0);
		if (t % 25 == 0) {
			ASSERT_EQ(zap_store_pack(s, (uint64_t)t - 10), 0);
		}
		zap_store_reclaim(s);
	}
	stop->store(true);
}

static void reader_run(zap_store *s, std::atomic<bool> *stop, std::atomic<uint64_t> *checked,
		       std::atomic<int> *bad)
{
	zap_store_reader *r;
	ASSERT_EQ(zap_store_reader_open(s, &r), 0);
	uint64_t last = 0, n = 0;
	while (!stop->load()) {
		uint64_t snap = zap_store_read_begin(r);
		if (snap < last)
			bad->fetch_add(1);
		last = snap;
		for (uint64_t oid = 0; oid < kOids; oid++) {
			zap_store_rev rev;
			if (zap_store_load(r, oid, &rev) != 0)
				continue;
			if (rev.serial > snap || rev.len != pattern_len(oid, rev.serial) ||
			    !pattern_check((const uint8_t *)rev.data, rev.len, oid, rev.serial))
				bad->fetch_add(1);
			n++;
		}
		zap_store_read_end(r);
	}
	checked->fetch_add(n);
	zap_store_reader_close(r);
}

TEST(StoreConcurrency, ThreadReadersSeeWholeRecordsWhileWriterPacksAndReclaims)
{
	zap_store *s = make_store(256ull << 20, 128, 16);
	std::atomic<bool> stop{false};
	std::atomic<uint64_t> checked{0};
	std::atomic<int> bad{0};
	std::thread r1(reader_run, s, &stop, &checked, &bad);
	std::thread r2(reader_run, s, &stop, &checked, &bad);
	std::thread w(writer_run, s, test_seed(), 20000, &stop);
	w.join();
	r1.join();
	r2.join();
	EXPECT_EQ(bad.load(), 0);
	EXPECT_GT(checked.load(), 0u);
	zap_store_reclaim(s);
	struct zap_store_stats st;
	zap_store_stats(s, &st);
	EXPECT_GT(st.reclaimed_blocks, 0u);
	EXPECT_EQ(st.bytes_limbo, 0u);
	zap_store_close(s);
}

/*
 * A reader that keeps up with the writer (never more than 16 transactions
 * behind, with a ring of 128) always gets the transactions after the last
 * one it saw, however the writer's commits interleave with its reads: the
 * store must not answer "too old" because a commit landed while it looked.
 */
TEST(StoreConcurrency, ChangesSinceOfARecentTidIsNeverOutOfRange)
{
	zap_store *s = make_store(64ull << 20, 128);
	const uint64_t n = 20000;
	std::atomic<uint64_t> seen{0}; /* last tid the reader got */
	std::atomic<int> out_of_range{0}, gaps{0};
	std::thread reader([&] {
		zap_store_reader *r = nullptr;
		ASSERT_EQ(zap_store_reader_open(s, &r), 0);
		uint64_t last = 0;
		while (last < n) {
			zap_store_read_begin(r);
			std::vector<uint64_t> tids;
			int rc = zap_store_changes_since(
			    r, last,
			    [](const zap_store_txn_info *t, void *ctx) {
				    static_cast<std::vector<uint64_t> *>(ctx)->push_back(t->tid);
				    return 0;
			    },
			    &tids);
			zap_store_read_end(r);
			if (rc == -ERANGE) {
				out_of_range++;
				break;
			}
			for (uint64_t t : tids)
				if (t != ++last)
					gaps++;
			seen.store(last);
		}
		zap_store_reader_close(r);
	});
	for (uint64_t t = 1; t <= n; t++) {
		while (t > seen.load() + 16 && out_of_range.load() == 0)
			std::this_thread::yield();
		ASSERT_EQ(commit_writes(s, t, {pattern_write(t % 64, t)}), 0);
	}
	reader.join();
	EXPECT_EQ(out_of_range.load(), 0);
	EXPECT_EQ(gaps.load(), 0);
	zap_store_close(s);
}

TEST(StoreConcurrency, ReclamationWaitsForThreadInReadSection)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_writes(s, 10, {pattern_write(1, 10)}), 0);
	ASSERT_EQ(commit_writes(s, 20, {pattern_write(1, 20)}), 0);
	zap_store_reader *r;
	ASSERT_EQ(zap_store_reader_open(s, &r), 0);
	zap_store_read_begin(r);
	zap_store_rev old;
	ASSERT_EQ(zap_store_load_before(r, 1, 20, &old), 0);
	ASSERT_EQ(zap_store_pack(s, 20), 0);
	EXPECT_EQ(zap_store_reclaim(s), 0u) << "the reader may still hold the old revision";
	EXPECT_TRUE(pattern_check((const uint8_t *)old.data, old.len, 1, 10));
	zap_store_read_end(r);
	EXPECT_GT(zap_store_reclaim(s), 0u);
	zap_store_reader_close(r);
	zap_store_close(s);
}

/* ------------------------------------------------------------ a second process */

static std::string peer_path()
{
	const char *b = getenv("ZAP_BUILD_ROOT");
	return std::string(b ? b : ".") + "/tests/store/store_peer";
}

static std::string store_path(zap_store *s)
{
	return "/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(zap_store_fd(s));
}

struct Peer {
	pid_t pid = -1;
	FILE *out = nullptr;
};

static Peer peer_start(const std::vector<std::string> &args)
{
	int fds[2];
	EXPECT_EQ(pipe(fds), 0);
	Peer p;
	p.pid = fork();
	if (p.pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		std::vector<char *> argv;
		std::string exe = peer_path();
		argv.push_back((char *)exe.c_str());
		for (auto &a : args)
			argv.push_back((char *)a.c_str());
		argv.push_back(nullptr);
		execv(exe.c_str(), argv.data());
		_exit(127);
	}
	close(fds[1]);
	p.out = fdopen(fds[0], "r");
	return p;
}

static std::string peer_line(Peer &p)
{
	char buf[256];
	if (fgets(buf, sizeof(buf), p.out) == nullptr)
		return "";
	std::string l(buf);
	if (!l.empty() && l.back() == '\n')
		l.pop_back();
	return l;
}

static int peer_wait(Peer &p)
{
	int status = 0;
	waitpid(p.pid, &status, 0);
	fclose(p.out);
	return status;
}

TEST(StoreProcess, SecondProcessMapsStoreAndReads)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_writes(s, 10, {pattern_write(1, 10), pattern_write(2, 10)}), 0);
	ASSERT_EQ(commit_writes(s, 20, {pattern_write(2, 20)}), 0);
	Peer p = peer_start({store_path(s), "read", "1", "2", "3"});
	EXPECT_EQ(peer_line(p), "1 10 " + std::to_string(pattern_len(1, 10)) + " ok");
	EXPECT_EQ(peer_line(p), "2 20 " + std::to_string(pattern_len(2, 20)) + " ok");
	EXPECT_EQ(peer_line(p), "3 0 0 missing");
	int st = peer_wait(p);
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	zap_store_close(s);
}

TEST(StoreProcess, SecondProcessReadsWhileWriterPacksAndReclaims)
{
	zap_store *s = make_store(256ull << 20, 128, 16);
	ASSERT_EQ(commit_writes(s, 1, {pattern_write(0, 1)}), 0);
	Peer p = peer_start({store_path(s), "loop", "3000", std::to_string(kOids)});
	std::mt19937_64 rng(test_seed());
	for (uint64_t t = 2; t < 6000; t++) {
		std::vector<PatternWrite> ws{pattern_write(rng() % kOids, t)};
		ASSERT_EQ(commit_writes(s, t, ws), 0);
		if (t % 20 == 0) {
			ASSERT_EQ(zap_store_pack(s, t - 5), 0);
		}
	}
	std::string l = peer_line(p);
	EXPECT_EQ(l.rfind("checked ", 0), 0u) << l;
	int st = peer_wait(p);
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	zap_store_close(s);
}

TEST(StoreProcess, ReaderOfDeadProcessIsClearedAndStopsBlockingReclamation)
{
	zap_store *s = make_store();
	ASSERT_EQ(commit_writes(s, 10, {pattern_write(1, 10)}), 0);
	ASSERT_EQ(commit_writes(s, 20, {pattern_write(1, 20)}), 0);
	Peer p = peer_start({store_path(s), "hold"});
	ASSERT_EQ(peer_line(p), "ready");
	ASSERT_EQ(zap_store_pack(s, 20), 0);
	EXPECT_EQ(zap_store_reclaim(s), 0u) << "a live reader in a section holds the memory";
	kill(p.pid, SIGKILL);
	peer_wait(p);
	EXPECT_GT(zap_store_reclaim(s), 0u);
	struct zap_store_stats st;
	zap_store_stats(s, &st);
	EXPECT_EQ(st.stale_readers_cleared, 1u);
	EXPECT_EQ(st.bytes_limbo, 0u);
	zap_store_close(s);
}

} // namespace
