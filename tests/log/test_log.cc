// SPDX-License-Identifier: Apache-2.0
// Unit tests of the durable log (dataplane/log/log.c): format, group commit, recovery.
#include "log_test_util.h"

#include <cerrno>
#include <chrono>
#include <cstdio>

#include <rte_hash_crc.h>

using namespace zaplogtest;

namespace
{

std::vector<Rec> make_records(uint64_t seed, uint64_t n, uint64_t max_len, uint64_t first_slot = 1)
{
	std::vector<Rec> v;
	uint64_t s = seed;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t len = splitmix64(s) % (max_len + 1);
		uint8_t type = static_cast<uint8_t>(ZAP_LOG_PROMISE + splitmix64(s) % 4);
		v.push_back(Rec{type, first_slot + i, splitmix64(s), gen_payload(seed, i, len)});
	}
	return v;
}

// Offset of record k inside a segment holding recs[first..] from its start.
uint64_t offset_of(const std::vector<Rec> &recs, size_t first, size_t k)
{
	uint64_t off = 0;
	for (size_t i = first; i < k; i++)
		off += record_bytes(recs[i].payload.size());
	return off;
}

struct zap_log_stats stats_of(zap_log *l)
{
	struct zap_log_stats st;
	zap_log_stats(l, &st);
	return st;
}

} // namespace

TEST(LogGroup, LoneAppendOnAnIdleDiskSyncsAtOnce)
{
	const uint64_t W = 200000; // a 200 us window
	zap_log_group g = {1, 10 * W, 5 * W};
	EXPECT_TRUE(zap_log_group_due(&g, 10 * W, 64, W)); // the last sync ended 5 windows ago
	g.last_end_ns = 10 * W - W / 2;			   // ... half a window ago: wait
	EXPECT_FALSE(zap_log_group_due(&g, 10 * W, 64, W));
	EXPECT_FALSE(zap_log_group_due(&g, 10 * W + W / 4, 64, W));
	EXPECT_TRUE(zap_log_group_due(&g, 10 * W + W / 2, 64, W)); // idle for a window now
}

TEST(LogGroup, BackToBackSyncsCollectForAWindowOrUntilFull)
{
	const uint64_t W = 200000;
	zap_log_group g = {3, 1000 * W, 1000 * W}; // opened as the last sync returned
	EXPECT_FALSE(zap_log_group_due(&g, 1000 * W + W - 1, 64, W));
	EXPECT_TRUE(zap_log_group_due(&g, 1000 * W + W, 64, W)); // the window passed
	g.pending = 64;
	EXPECT_TRUE(zap_log_group_due(&g, 1000 * W, 64, W)); // full
	g.pending = 0;
	EXPECT_FALSE(zap_log_group_due(&g, 2000 * W, 64, W)); // nothing to sync
	// Window 0: every group syncs at once.
	g.pending = 1;
	EXPECT_TRUE(zap_log_group_due(&g, 1000 * W, 64, 0));
	// A clock reading before the group opened (another thread's clock) waits.
	g = {1, 1000 * W, 1000 * W};
	EXPECT_FALSE(zap_log_group_due(&g, 999 * W, 64, W));
}

TEST(LogCrc, MatchesStandardCrc32cCheckValue)
{
	const char *check = "123456789";
	// DPDK's raw CRC, with init 0xFFFFFFFF and a final xor, is the standard CRC32C.
	EXPECT_EQ(~rte_hash_crc(check, 9, 0xffffffffu), 0xe3069283u);
	EXPECT_EQ(zap_log_crc32c(check, 9), 0xe3069283u);
	EXPECT_EQ(zap_log_crc32c("", 0), 0u);
	// Same value whatever the alignment of the buffer.
	std::string big = gen_payload(7, 7, 4099);
	uint32_t want = zap_log_crc32c(big.data(), big.size());
	for (int shift = 1; shift < 8; shift++) {
		std::string b(shift, 'x');
		b += big;
		EXPECT_EQ(zap_log_crc32c(b.data() + shift, big.size()), want) << shift;
	}
}

TEST_F(LogTest, AppendSyncReopenReplaysEverythingInOrder)
{
	auto recs = make_records(1, 1000, 5000);
	zap_log *l = nullptr;
	ASSERT_EQ(open_log(params(), nullptr, &l), 0) << err;
	append_all(l, recs);
	ASSERT_EQ(zap_log_sync(l), 0);
	zap_log_close(l);

	std::vector<Rec> got;
	ASSERT_EQ(open_log(params(), &got, &l), 0) << err;
	ASSERT_EQ(got.size(), recs.size());
	EXPECT_TRUE(got == recs);
	EXPECT_EQ(stats_of(l).replayed_records, recs.size());
	EXPECT_EQ(stats_of(l).truncated_tail_bytes, 0u);
	zap_log_close(l);
}

TEST_F(LogTest, MultiMiBRecordsSpanManySegments)
{
	const uint64_t seg = 512 << 10;
	std::vector<Rec> recs;
	uint64_t slot = 1;
	for (uint64_t len : {3u << 20, 100u, 5u << 20, 0u, 7u << 20, 1u << 20, 12345u})
		recs.push_back(Rec{ZAP_LOG_ACCEPT, slot, 9, gen_payload(2, slot, len)}), slot++;
	auto small = make_records(3, 3000, 2000, slot);
	recs.insert(recs.end(), small.begin(), small.end());

	zap_log *l = nullptr;
	ASSERT_EQ(open_log(params(seg), nullptr, &l), 0) << err;
	append_all(l, recs);
	ASSERT_EQ(zap_log_sync(l), 0);
	zap_log_close(l);
	EXPECT_GE(segment_files(dir).size(), 10u);

	// Reopen, replay, continue appending, reopen again.
	std::vector<Rec> got;
	ASSERT_EQ(open_log(params(seg), &got, &l), 0) << err;
	ASSERT_TRUE(got == recs);
	auto more = make_records(4, 500, 4000, recs.size() + 1);
	append_all(l, more);
	zap_log_close(l);
	recs.insert(recs.end(), more.begin(), more.end());
	got.clear();
	ASSERT_EQ(open_log(params(seg), &got, &l), 0) << err;
	EXPECT_TRUE(got == recs);
	EXPECT_EQ(zap_log_last_lsn(l), recs.size());
	zap_log_close(l);
}

TEST_F(LogTest, LsnsIncreaseAndDurableLsnFollowsSync)
{
	zap_log *l = nullptr;
	ASSERT_EQ(open_log(params(), nullptr, &l), 0) << err;
	EXPECT_EQ(zap_log_durable_lsn(l), 0u);
	EXPECT_EQ(zap_log_last_lsn(l), 0u);
	for (uint64_t i = 1; i <= 10; i++) {
		uint64_t lsn = 0;
		ASSERT_EQ(zap_log_append(l, ZAP_LOG_ACCEPT, i, 1, "x", 1, &lsn), 0);
		EXPECT_EQ(lsn, i);
		EXPECT_EQ(zap_log_pending(l), i);
		EXPECT_EQ(zap_log_durable_lsn(l), 0u);
	}
	ASSERT_EQ(zap_log_sync(l), 0);
	EXPECT_EQ(zap_log_durable_lsn(l), 10u);
	EXPECT_EQ(zap_log_pending(l), 0u);
	uint64_t lsn = 0;
	ASSERT_EQ(zap_log_append(l, ZAP_LOG_CHOSEN, 10, 1, nullptr, 0, &lsn), 0);
	EXPECT_EQ(lsn, 11u);
	zap_log_close(l); // syncs first

	ASSERT_EQ(open_log(params(), nullptr, &l), 0) << err;
	EXPECT_EQ(zap_log_last_lsn(l), 11u);
	EXPECT_EQ(zap_log_durable_lsn(l), 11u);
	EXPECT_EQ(zap_log_pending(l), 0u);
	ASSERT_EQ(zap_log_append(l, ZAP_LOG_PROMISE, 0, 2, nullptr, 0, &lsn), 0);
	EXPECT_EQ(lsn, 12u);
	zap_log_close(l);
}

TEST_F(LogTest, TornTailAtEveryOffsetIsTruncated)
{
	auto recs = make_records(5, 40, 300);
	recs.push_back(Rec{ZAP_LOG_ACCEPT, 41, 3, gen_payload(5, 41, 1500)});
	// MEMORY mode: recovery is the same, and 1500 opens need no disk flush.
	auto pm = params(0, ZAP_LOG_DURABILITY_MEMORY);
	zap_log *l = nullptr;
	ASSERT_EQ(open_log(pm, nullptr, &l), 0) << err;
	append_all(l, recs);
	zap_log_close(l);

	auto files = segment_files(dir);
	ASSERT_EQ(files.size(), 1u);
	std::string path = dir + "/" + files[0];
	std::string full = read_file(path);
	uint64_t start = offset_of(recs, 0, recs.size() - 1);
	ASSERT_EQ(full.size(), start + record_bytes(1500));
	std::vector<Rec> prefix(recs.begin(), recs.end() - 1);

	for (uint64_t cut = start; cut < full.size(); cut++) {
		write_file(path, full.substr(0, cut));
		std::vector<Rec> got;
		ASSERT_EQ(open_log(pm, &got, &l), 0) << "cut " << cut << ": " << err;
		ASSERT_TRUE(got == prefix) << "cut " << cut;
		struct zap_log_stats st = stats_of(l);
		EXPECT_EQ(st.truncated_tail_bytes, cut - start);
		EXPECT_EQ(st.truncated_tails, cut > start ? 1u : 0u);
		EXPECT_EQ(zap_log_last_lsn(l), prefix.size());
		zap_log_close(l);
		ASSERT_EQ(read_file(path).size(), start);
	}

	// After a cut the log goes on: the next record takes the dropped LSN.
	write_file(path, full.substr(0, full.size() - 1));
	ASSERT_EQ(open_log(pm, nullptr, &l), 0) << err;
	uint64_t lsn = 0;
	ASSERT_EQ(zap_log_append(l, 1, 99, 1, "again", 5, &lsn), 0);
	EXPECT_EQ(lsn, recs.size());
	zap_log_close(l);
	std::vector<Rec> got;
	ASSERT_EQ(open_log(pm, &got, &l), 0) << err;
	ASSERT_EQ(got.size(), recs.size());
	EXPECT_EQ(got.back().payload, "again");
	zap_log_close(l);
}

TEST_F(LogTest, ZeroFilledTailIsTruncated)
{
	auto recs = make_records(6, 20, 100);
	zap_log *l = nullptr;
	ASSERT_EQ(open_log(params(), nullptr, &l), 0) << err;
	append_all(l, recs);
	zap_log_close(l);
	std::string path = dir + "/" + segment_files(dir)[0];
	std::string full = read_file(path);
	write_file(path, full + std::string(8192, '\0'));
	std::vector<Rec> got;
	ASSERT_EQ(open_log(params(), &got, &l), 0) << err;
	EXPECT_TRUE(got == recs);
	EXPECT_EQ(stats_of(l).truncated_tail_bytes, 8192u);
	zap_log_close(l);
}

TEST_F(LogTest, FlippedByteInEarlyRecordRefusesToOpen)
{
	auto recs = make_records(7, 100, 500);
	zap_log *l = nullptr;
	ASSERT_EQ(open_log(params(), nullptr, &l), 0) << err;
	append_all(l, recs);
	zap_log_close(l);
	std::string name = segment_files(dir)[0];
	std::string path = dir + "/" + name;
	std::string full = read_file(path);
	uint64_t off10 = offset_of(recs, 0, 10);

	// In the payload: a bad CRC, valid records after it.
	std::string bad = full;
	bad[off10 + ZAP_LOG_HEADER_BYTES + recs[10].payload.size() / 2] ^= 0x20;
	write_file(path, bad);
	std::vector<Rec> got;
	EXPECT_EQ(open_log(params(), &got, &l), -EILSEQ);
	EXPECT_EQ(l, nullptr);
	std::string msg = err;
	EXPECT_NE(msg.find(path + ": offset " + std::to_string(off10) + ": bad CRC"),
		  std::string::npos)
	    << msg;
	EXPECT_NE(msg.find("record would be " +
			   std::to_string(record_bytes(recs[10].payload.size())) + " bytes"),
		  std::string::npos)
	    << msg;

	// In the header: the length is not trusted, the scan still finds what follows.
	bad = full;
	bad[off10 + 5] ^= 0x01;
	write_file(path, bad);
	EXPECT_EQ(open_log(params(), nullptr, &l), -EILSEQ);
	msg = err;
	EXPECT_NE(msg.find(path + ": offset " + std::to_string(off10) + ": bad record header"),
		  std::string::npos)
	    << msg;

	// The file is left as it was: refusing to open changes nothing.
	EXPECT_EQ(read_file(path), bad);
}

TEST_F(LogTest, DamageInNonLastSegmentRefusesToOpen)
{
	auto recs = make_records(8, 400, 1000);
	zap_log *l = nullptr;
	ASSERT_EQ(open_log(params(16 << 10), nullptr, &l), 0) << err;
	append_all(l, recs);
	zap_log_close(l);
	auto files = segment_files(dir);
	ASSERT_GE(files.size(), 3u);

	// The last record of the first segment: a "torn tail", but not in the last segment.
	std::string path = dir + "/" + files[0];
	std::string full = read_file(path);
	std::string bad = full;
	bad[bad.size() - 9] ^= 0xff;
	write_file(path, bad);
	EXPECT_EQ(open_log(params(16 << 10), nullptr, &l), -EILSEQ);
	EXPECT_NE(std::string(err).find(path + ": offset "), std::string::npos) << err;

	// Truncated inside its last record.
	write_file(path, full.substr(0, full.size() - 9));
	EXPECT_EQ(open_log(params(16 << 10), nullptr, &l), -EILSEQ);
	EXPECT_NE(std::string(err).find(path + ": offset "), std::string::npos) << err;
	EXPECT_NE(std::string(err).find("incomplete record"), std::string::npos) << err;

	// Truncated at a record boundary: the next segment does not follow on.
	uint64_t boundary = 0, k = 0;
	while (boundary + record_bytes(recs[k].payload.size()) < full.size())
		boundary += record_bytes(recs[k++].payload.size());
	write_file(path, full.substr(0, boundary));
	EXPECT_EQ(open_log(params(16 << 10), nullptr, &l), -EILSEQ);
	EXPECT_NE(std::string(err).find(files[1]), std::string::npos) << err;
	EXPECT_NE(std::string(err).find("missing"), std::string::npos) << err;
}

TEST_F(LogTest, MissingMiddleSegmentRefusesToOpen)
{
	auto recs = make_records(9, 300, 1000);
	zap_log *l = nullptr;
	ASSERT_EQ(open_log(params(16 << 10), nullptr, &l), 0) << err;
	append_all(l, recs);
	zap_log_close(l);
	auto files = segment_files(dir);
	ASSERT_GE(files.size(), 4u);
	ASSERT_EQ(unlink((dir + "/" + files[2]).c_str()), 0);
	EXPECT_EQ(open_log(params(16 << 10), nullptr, &l), -EILSEQ);
	std::string msg = err;
	EXPECT_NE(msg.find(dir + "/" + files[3] + ": offset 0"), std::string::npos) << msg;
	EXPECT_NE(msg.find("missing segment"), std::string::npos) << msg;
}

TEST_F(LogTest, DropBeforeRemovesOnlyWholeOldSegments)
{
	auto recs = make_records(10, 500, 1000); // slots 1..500
	zap_log *l = nullptr;
	ASSERT_EQ(open_log(params(16 << 10), nullptr, &l), 0) << err;
	append_all(l, recs);
	size_t nfiles = segment_files(dir).size();
	ASSERT_GE(nfiles, 5u);

	EXPECT_EQ(zap_log_drop_before(l, 1), 0); // nothing is below slot 1
	int dropped = zap_log_drop_before(l, 250);
	ASSERT_GT(dropped, 0);
	EXPECT_EQ(segment_files(dir).size(), nfiles - dropped);
	EXPECT_EQ(stats_of(l).segments, nfiles - dropped);
	EXPECT_EQ(stats_of(l).segments_dropped, (uint64_t)dropped);
	zap_log_close(l);

	std::vector<Rec> got;
	ASSERT_EQ(open_log(params(16 << 10), &got, &l), 0) << err;
	ASSERT_FALSE(got.empty());
	EXPECT_LE(got.front().slot, 250u); // the segment holding slot 250 stays whole
	EXPECT_GT(got.front().slot, 1u);
	std::vector<Rec> tail(recs.end() - got.size(), recs.end());
	EXPECT_TRUE(got == tail);
	EXPECT_EQ(zap_log_last_lsn(l), recs.size()); // LSNs survive the drop

	// Even "drop everything" keeps the segment being written.
	EXPECT_GT(zap_log_drop_before(l, UINT64_MAX), 0);
	EXPECT_EQ(segment_files(dir).size(), 1u);
	uint64_t lsn = 0;
	ASSERT_EQ(zap_log_append(l, 1, 501, 1, "z", 1, &lsn), 0);
	EXPECT_EQ(lsn, recs.size() + 1);
	zap_log_close(l);
	got.clear();
	ASSERT_EQ(open_log(params(16 << 10), &got, &l), 0) << err;
	EXPECT_EQ(got.back().slot, 501u);
	zap_log_close(l);
}

TEST_F(LogTest, FsyncModeCallsOneFdatasyncPerGroup)
{
	zap_log *l = nullptr;
	ASSERT_EQ(open_log(params(), nullptr, &l), 0) << err;
	uint64_t base = stats_of(l).syncs;
	for (int g = 0; g < 5; g++) {
		for (int i = 0; i < 20; i++)
			ASSERT_EQ(zap_log_append(l, 2, i, g, "abc", 3, nullptr), 0);
		ASSERT_EQ(zap_log_sync(l), 0);
		ASSERT_EQ(zap_log_sync(l), 0); // nothing pending: no system call
	}
	struct zap_log_stats st = stats_of(l);
	EXPECT_EQ(st.syncs - base, 5u);
	EXPECT_EQ(st.commits, 5u);
	EXPECT_DOUBLE_EQ(st.appends_per_sync, 20.0);
	EXPECT_EQ(st.appends, 100u);
	EXPECT_EQ(st.bytes, 100 * record_bytes(3));
	EXPECT_EQ(st.durable_lsn, 100u);
	zap_log_close(l);
}

TEST_F(LogTest, MemoryModeNeverCallsFdatasync)
{
	zap_log *l = nullptr;
	auto p = params(4096, ZAP_LOG_DURABILITY_MEMORY);
	ASSERT_EQ(open_log(p, nullptr, &l), 0) << err;
	auto recs = make_records(11, 200, 200);
	for (size_t i = 0; i < recs.size(); i += 10) {
		std::vector<Rec> group(recs.begin() + i, recs.begin() + i + 10);
		append_all(l, group);
		ASSERT_EQ(zap_log_sync(l), 0);
		EXPECT_EQ(zap_log_durable_lsn(l), i + 10);
	}
	struct zap_log_stats st = stats_of(l);
	EXPECT_EQ(st.syncs, 0u);
	EXPECT_EQ(st.dir_syncs, 0u);
	EXPECT_EQ(st.commits, 20u);
	EXPECT_GT(st.segments_created, 1u);
	zap_log_close(l);
	std::vector<Rec> got;
	ASSERT_EQ(open_log(p, &got, &l), 0) << err;
	EXPECT_TRUE(got == recs);
	zap_log_close(l);
}

TEST_F(LogTest, OversizeAppendIsRejected)
{
	auto p = params();
	p.max_record_bytes = 1000;
	zap_log *l = nullptr;
	ASSERT_EQ(open_log(p, nullptr, &l), 0) << err;
	std::string big(1001, 'b');
	EXPECT_EQ(zap_log_append(l, 2, 1, 1, big.data(), 1001, nullptr), -EMSGSIZE);
	EXPECT_EQ(zap_log_last_lsn(l), 0u);
	EXPECT_EQ(zap_log_append(l, 2, 1, 1, big.data(), 1000, nullptr), 0);
	EXPECT_EQ(zap_log_append(l, 2, 1, 1, nullptr, 5, nullptr), -EINVAL);
	EXPECT_EQ(zap_log_last_lsn(l), 1u);
	zap_log_close(l);

	p.max_record_bytes = ZAP_LOG_MAX_RECORD_BYTES_LIMIT + 1;
	EXPECT_EQ(open_log(p, nullptr, &l), -EINVAL);
	EXPECT_EQ(zap_log_open(nullptr, nullptr, nullptr, &l, err, sizeof(err)), -EINVAL);
}

TEST_F(LogTest, ReplayCallbackStopsRecovery)
{
	zap_log *l = nullptr;
	ASSERT_EQ(open_log(params(), nullptr, &l), 0) << err;
	append_all(l, make_records(12, 10, 10));
	zap_log_close(l);
	int seen = 0;
	auto fn = [](uint8_t, uint64_t, uint64_t, const void *, uint64_t, void *ctx) {
		return ++*static_cast<int *>(ctx) == 5 ? -ECANCELED : 0;
	};
	auto p = params();
	EXPECT_EQ(zap_log_open(&p, fn, &seen, &l, err, sizeof(err)), -ECANCELED);
	EXPECT_EQ(seen, 5);
	EXPECT_EQ(l, nullptr);
	// Stopping left nothing behind: the log opens again, whole.
	std::vector<Rec> got;
	ASSERT_EQ(open_log(params(), &got, &l), 0) << err;
	EXPECT_EQ(got.size(), 10u);
	zap_log_close(l);
}

TEST_F(LogTest, SecondOpenOfSameDirectoryIsBusy)
{
	zap_log *a = nullptr, *b = nullptr;
	ASSERT_EQ(open_log(params(), nullptr, &a), 0) << err;
	EXPECT_EQ(open_log(params(), nullptr, &b), -EBUSY);
	EXPECT_EQ(b, nullptr);
	zap_log_close(a);
	ASSERT_EQ(open_log(params(), nullptr, &b), 0) << err;
	zap_log_close(b);
}

TEST_F(LogTest, ForeignFilesAreIgnored)
{
	ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
	write_file(dir + "/README", "not a segment");
	write_file(dir + "/12.zlog", "bad name: ignored");
	zap_log *l = nullptr;
	ASSERT_EQ(open_log(params(), nullptr, &l), 0) << err;
	append_all(l, make_records(13, 3, 10));
	zap_log_close(l);
	std::vector<Rec> got;
	ASSERT_EQ(open_log(params(), &got, &l), 0) << err;
	EXPECT_EQ(got.size(), 3u);
	zap_log_close(l);
}

// Random damage: open must give a prefix of what was written, or refuse with a message.
TEST_F(LogTest, FuzzRandomDamageGivesPrefixOrClearError)
{
	uint64_t seed = std::chrono::steady_clock::now().time_since_epoch().count();
	if (const char *e = getenv("ZAP_LOG_SEED"))
		seed = strtoull(e, nullptr, 0);
	printf("LogTest.Fuzz seed=%llu (rerun with ZAP_LOG_SEED=%llu)\n", (unsigned long long)seed,
	       (unsigned long long)seed);
	RecordProperty("seed", std::to_string(seed));

	auto recs = make_records(seed, 120, 700);
	auto p =
	    params(8 << 10, ZAP_LOG_DURABILITY_MEMORY); // recovery is the same; no disk flushes
	zap_log *l = nullptr;
	ASSERT_EQ(open_log(p, nullptr, &l), 0) << err;
	append_all(l, recs);
	zap_log_close(l);
	auto files = segment_files(dir);
	std::vector<std::string> orig;
	for (auto &f : files)
		orig.push_back(read_file(dir + "/" + f));

	uint64_t rng = seed;
	int opened = 0, refused = 0;
	for (int iter = 0; iter < 400; iter++) {
		for (size_t i = 0; i < files.size(); i++)
			write_file(dir + "/" + files[i], orig[i]);
		int actions = 1 + splitmix64(rng) % 3;
		for (int a = 0; a < actions; a++) {
			// Half of the damage goes to the last segment, where a torn tail is legal.
			size_t fi =
			    splitmix64(rng) % 2 ? files.size() - 1 : splitmix64(rng) % files.size();
			std::string path = dir + "/" + files[fi];
			std::string data = read_file(path);
			if (data.empty())
				continue;
			if (splitmix64(rng) % 4 == 0)
				data.resize(splitmix64(rng) % data.size());
			else
				data[splitmix64(rng) % data.size()] ^=
				    static_cast<char>(1 + splitmix64(rng) % 255);
			write_file(path, data);
		}
		std::vector<Rec> got;
		int rc = open_log(p, &got, &l);
		if (rc == 0) {
			opened++;
			ASSERT_LE(got.size(), recs.size()) << "iter " << iter;
			ASSERT_TRUE(std::equal(got.begin(), got.end(), recs.begin()))
			    << "iter " << iter << " seed " << seed;
			zap_log_close(l);
		} else {
			refused++;
			ASSERT_EQ(rc, -EILSEQ) << "iter " << iter << ": " << err;
			ASSERT_NE(std::string(err).find(dir + "/"), std::string::npos) << err;
			ASSERT_NE(std::string(err).find("offset "), std::string::npos) << err;
		}
	}
	printf("LogTest.Fuzz: %d opened with a prefix, %d refused\n", opened, refused);
}
