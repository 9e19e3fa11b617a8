// SPDX-License-Identifier: Apache-2.0
// Crash test of the durable log: a child appends and syncs, the parent SIGKILLs it
// at a random moment, then checks that nothing the child reported durable is lost.
#include "log_test_util.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>

#include <poll.h>
#include <sys/wait.h>

using namespace zaplogtest;

namespace
{

const uint64_t kSegmentBytes = 256 << 10;

// Size of the record at sequence number n (its slot): mostly small, now and then large.
uint64_t size_of(uint64_t seed, uint64_t n)
{
	uint64_t s = seed ^ (n * 0x9e3779b97f4a7c15ull) ^ 0x5151;
	uint64_t r = splitmix64(s);
	if (r % 300 == 0) // larger than the write buffer: written through, can tear
		return (1 << 20) + splitmix64(s) % (2 << 20);
	if (r % 40 == 0)
		return splitmix64(s) % (192 << 10);
	return splitmix64(s) % 1200;
}

// Records must be consecutive sequence numbers; the first one kept may be > 1
// because the parent drops old segments between rounds.
struct Verify {
	uint64_t seed;
	uint64_t next = 1;  // sequence number expected next
	uint64_t first = 0; // first sequence number replayed (0: none)
	std::string why;
};

int verify_record(uint8_t type, uint64_t slot, uint64_t, const void *payload, uint64_t len,
		  void *ctx)
{
	auto *v = static_cast<Verify *>(ctx);
	if (v->first == 0)
		v->first = v->next = slot;
	if (type != ZAP_LOG_ACCEPT || slot != v->next) {
		v->why = "record " + std::to_string(v->next) + " has slot " + std::to_string(slot);
		return -EBADMSG;
	}
	if (len != size_of(v->seed, slot) ||
	    memcmp(payload, gen_payload(v->seed, slot, len).data(), len) != 0) {
		v->why = "record " + std::to_string(slot) + ": payload differs";
		return -EBADMSG;
	}
	v->next++;
	return 0;
}

// The child: recover, then append in groups and report each durable sequence number.
[[noreturn]] void child(const std::string &dir, uint64_t seed, uint64_t round, int report_fd)
{
	zap_log_params p;
	zap_log_params_init(&p, dir.c_str());
	p.segment_bytes = kSegmentBytes;
	p.durability = round % 3 == 2 ? ZAP_LOG_DURABILITY_MEMORY : ZAP_LOG_DURABILITY_FSYNC;
	Verify v{seed};
	zap_log *l = nullptr;
	char err[512];
	if (zap_log_open(&p, verify_record, &v, &l, err, sizeof(err)) != 0) {
		fprintf(stderr, "crash child: open: %s %s\n", err, v.why.c_str());
		_exit(2);
	}
	uint64_t rng = seed ^ (round * 0xabcdef12345ull);
	uint64_t budget = 50 + splitmix64(rng) % 250; // records this round, then wait to die
	uint64_t n = v.next;
	while (budget > 0) {
		uint64_t group = 1 + splitmix64(rng) % 12;
		for (; group > 0 && budget > 0; group--, budget--, n++) {
			uint64_t len = size_of(seed, n);
			std::string data = gen_payload(seed, n, len);
			if (zap_log_append(l, ZAP_LOG_ACCEPT, n, round, data.data(), len,
					   nullptr) != 0)
				_exit(3);
		}
		if (zap_log_sync(l) != 0)
			_exit(4);
		uint64_t durable = n - 1;
		if (write(report_fd, &durable, sizeof(durable)) != sizeof(durable))
			_exit(5);
	}
	for (;;)
		pause();
}

} // namespace

TEST_F(LogTest, CrashKilledWriterLosesNoDurableRecord)
{
	uint64_t seed = std::chrono::steady_clock::now().time_since_epoch().count();
	if (const char *e = getenv("ZAP_LOG_SEED"))
		seed = strtoull(e, nullptr, 0);
	printf("LogTest.Crash seed=%llu (rerun with ZAP_LOG_SEED=%llu)\n", (unsigned long long)seed,
	       (unsigned long long)seed);
	RecordProperty("seed", std::to_string(seed));

	const int max_rounds = 200;
	const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
	uint64_t rng = seed;
	uint64_t reported_max = 0; // highest sequence number any child reported durable
	uint64_t torn = 0, killed_early = 0;
	uint64_t recover_us = 0; // how long the last verifying open took
	uint64_t drop_slot = 0;	 // the parent dropped segments wholly below this slot
	int round = 0;
	for (; round < max_rounds && std::chrono::steady_clock::now() < deadline; round++) {
		int fds[2];
		ASSERT_EQ(pipe(fds), 0);
		fflush(stdout);
		fflush(stderr);
		pid_t pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0) {
			close(fds[0]);
			child(dir, seed, round, fds[1]);
		}
		close(fds[1]);
		// Kill within the child's recovery (as long as the last verify took) plus 40 ms.
		// One kill in five lands at a random moment of the child's start and recovery
		// (as long as the last verifying open took); the others at a random moment
		// after its first sync, while it appends and syncs.
		uint64_t v, round_max = 0;
		if (splitmix64(rng) % 5 == 0) {
			usleep(static_cast<useconds_t>(splitmix64(rng) % (recover_us + 1)));
		} else {
			struct pollfd pfd = {fds[0], POLLIN, 0};
			if (poll(&pfd, 1, 10000) == 1 && read(fds[0], &v, sizeof(v)) == sizeof(v))
				round_max = v;
			usleep(static_cast<useconds_t>(splitmix64(rng) % 30000));
		}
		ASSERT_EQ(kill(pid, SIGKILL), 0);
		int status = 0;
		ASSERT_EQ(waitpid(pid, &status, 0), pid);
		ASSERT_TRUE(WIFSIGNALED(status))
		    << "round " << round << ": child exited with " << WEXITSTATUS(status);
		while (read(fds[0], &v, sizeof(v)) == sizeof(v))
			round_max = std::max(round_max, v);
		close(fds[0]);
		if (round_max == 0)
			killed_early++;
		reported_max = std::max(reported_max, round_max);

		// Every record reported durable is there (but for segments the parent
		// dropped), byte-identical, in order; after it only a valid prefix of what
		// the child went on to write.
		zap_log_params p;
		zap_log_params_init(&p, dir.c_str());
		p.segment_bytes = kSegmentBytes;
		Verify ver{seed};
		zap_log *l = nullptr;
		auto t0 = std::chrono::steady_clock::now();
		ASSERT_EQ(zap_log_open(&p, verify_record, &ver, &l, err, sizeof(err)), 0)
		    << "round " << round << " seed " << seed << ": " << err << " " << ver.why;
		ASSERT_GE(ver.next - 1, reported_max) << "round " << round << " seed " << seed;
		// Dropping stops at the segment holding drop_slot: nothing at or above it is gone.
		ASSERT_LE(ver.first, std::max<uint64_t>(1, drop_slot)) << "round " << round;
		struct zap_log_stats st;
		zap_log_stats(l, &st);
		torn += st.truncated_tails;
		// Keep the log small across rounds: drop old whole segments (this is also
		// what checkpoints will do), so the kept records start later than 1.
		if (ver.next > 2000) {
			drop_slot = ver.next - 2000;
			ASSERT_GE(zap_log_drop_before(l, drop_slot), 0);
		}
		recover_us = std::chrono::duration_cast<std::chrono::microseconds>(
				 std::chrono::steady_clock::now() - t0)
				 .count();
		zap_log_close(l);
	}
	printf("LogTest.Crash: %d rounds, %llu records durable at the end, %llu torn tails cut, "
	       "%llu kills before the first sync\n",
	       round, (unsigned long long)reported_max, (unsigned long long)torn,
	       (unsigned long long)killed_early);
	EXPECT_GE(round, 50);
}
