// zap doorbells (dataplane/node/bell.c): a ring with no sleeper makes no system
// call, an armed sleeper is woken (thread, eventfd + socket, another process
// through a file), the arm / re-poll / wait handshake never loses a wake-up,
// and bad bell files are refused.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "node/bell.h"

namespace
{

const uint64_t LONG_NS = 20ull * 1000 * 1000 * 1000; // a wait that must not time out

std::string temp_path(const char *tag)
{
	char buf[128];
	snprintf(buf, sizeof(buf), "/tmp/zap-bell-test-%d-%s", (int)getpid(), tag);
	unlink(buf);
	return buf;
}

// Spin until @p b's owner is armed (it is about to wait), or give up after 20 s.
bool wait_armed(const zap_bell_word *w)
{
	for (int i = 0; i < 20000000; i++) {
		if (__atomic_load_n(&w->armed, __ATOMIC_ACQUIRE) != 0)
			return true;
		usleep(1);
	}
	return false;
}

TEST(Bell, RingWithoutSleeperMakesNoWakeUp)
{
	zap_bell b;
	ASSERT_EQ(zap_bell_init(&b, false), 0);
	uint32_t seq0 = b.w->seq;
	for (int i = 0; i < 1000; i++)
		zap_bell_ring(&b);
	EXPECT_EQ(b.w->rings, 0u);
	EXPECT_EQ(b.w->seq, seq0);
	zap_bell_ring(nullptr); // no bell: nothing
	zap_bell_fini(&b);
}

TEST(Bell, ArmedBellIsRungOnceAndTheWaitReturnsAtOnce)
{
	zap_bell b;
	ASSERT_EQ(zap_bell_init(&b, false), 0);
	uint32_t seq = zap_bell_arm(&b);
	zap_bell_ring(&b);
	zap_bell_ring(&b); // the first ring disarmed it: no second wake-up
	EXPECT_EQ(b.w->rings, 1u);
	EXPECT_TRUE(zap_bell_wait(&b, seq, LONG_NS, -1));
	EXPECT_EQ(b.waits, 1u);
	EXPECT_EQ(b.woken, 1u);
	EXPECT_EQ(b.w->armed, 0u);
	zap_bell_fini(&b);
}

TEST(Bell, UnrungWaitTimesOut)
{
	zap_bell b;
	ASSERT_EQ(zap_bell_init(&b, false), 0);
	uint32_t seq = zap_bell_arm(&b);
	EXPECT_FALSE(zap_bell_wait(&b, seq, 1000 * 1000, -1));
	EXPECT_EQ(b.woken, 0u);
	zap_bell_fini(&b);
}

TEST(Bell, SleeperInAnotherThreadIsWoken)
{
	for (bool efd : {false, true}) {
		zap_bell b;
		ASSERT_EQ(zap_bell_init(&b, efd), 0);
		std::atomic<bool> woken{false};
		std::thread t([&] {
			uint32_t seq = zap_bell_arm(&b);
			woken = zap_bell_wait(&b, seq, LONG_NS, -1);
		});
		ASSERT_TRUE(wait_armed(b.w));
		zap_bell_ring(&b);
		t.join();
		EXPECT_TRUE(woken) << "eventfd " << efd;
		EXPECT_EQ(b.w->rings, 1u);
		zap_bell_fini(&b);
	}
}

TEST(Bell, EventfdBellAlsoWakesForItsSocket)
{
	zap_bell b;
	ASSERT_EQ(zap_bell_init(&b, true), 0);
	int sv[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	uint32_t seq = zap_bell_arm(&b);
	ASSERT_EQ(write(sv[1], "x", 1), 1);
	EXPECT_TRUE(zap_bell_wait(&b, seq, LONG_NS, sv[0]));
	EXPECT_EQ(b.w->rings, 0u); // the socket woke it, not a ring
	// An unrung eventfd bell with a quiet socket times out.
	char c;
	ASSERT_EQ(read(sv[0], &c, 1), 1);
	seq = zap_bell_arm(&b);
	EXPECT_FALSE(zap_bell_wait(&b, seq, 1000 * 1000, sv[0]));
	close(sv[0]);
	close(sv[1]);
	zap_bell_fini(&b);
}

// A consumer that sleeps on its bell between items and a producer that rings
// after each: every item is consumed and no sleep runs into its timeout.
TEST(Bell, HandshakeNeverLosesAWakeUp)
{
	for (bool efd : {false, true}) {
		zap_bell b;
		ASSERT_EQ(zap_bell_init(&b, efd), 0);
		const uint64_t items = 20000;
		std::atomic<uint64_t> produced{0};
		uint64_t consumed = 0, timeouts = 0;
		std::thread consumer([&] {
			zap_waiter wt = {&b, -1, false, 0};
			while (consumed < items) {
				if (produced.load() > consumed) {
					consumed = produced.load();
					zap_waiter_step(&wt, {ZAP_POLL_SPIN, 0});
					continue;
				}
				// idle: the first SLEEP arms, the loop polls again, the next blocks
				uint64_t before = b.waits, woke = b.woken;
				zap_waiter_step(&wt, {ZAP_POLL_SLEEP, LONG_NS});
				if (b.waits > before && b.woken == woke)
					timeouts++;
			}
		});
		for (uint64_t i = 0; i < items; i++) {
			produced.fetch_add(1);
			zap_bell_ring(&b);
			if (i % 64 == 0)
				usleep(1); // let the consumer fall asleep now and then
		}
		consumer.join();
		EXPECT_EQ(consumed, items) << "eventfd " << efd;
		EXPECT_EQ(timeouts, 0u) << "eventfd " << efd;
		EXPECT_GT(b.waits, 0u) << "eventfd " << efd; // it did sleep on the bell
		zap_bell_fini(&b);
	}
}

TEST(Bell, WaiterArmsFirstAndDisarmsWhenWorkComes)
{
	zap_bell b;
	ASSERT_EQ(zap_bell_init(&b, false), 0);
	zap_waiter wt = {&b, -1, false, 0};
	zap_waiter_step(&wt, {ZAP_POLL_SLEEP, LONG_NS}); // arms only
	EXPECT_TRUE(wt.armed);
	EXPECT_EQ(b.w->armed, 1u);
	EXPECT_EQ(b.waits, 0u);
	zap_waiter_step(&wt, {ZAP_POLL_SPIN, 0}); // the re-poll found work
	EXPECT_FALSE(wt.armed);
	EXPECT_EQ(b.w->armed, 0u);
	zap_bell_ring(&b);
	EXPECT_EQ(b.w->rings, 0u);
	// No bell: the policy's own sleep.
	zap_waiter none = {nullptr, -1, false, 0};
	zap_waiter_step(&none, {ZAP_POLL_SLEEP, 1000});
	EXPECT_FALSE(none.armed);
	zap_bell_fini(&b);
}

// The owner of a file bell sleeps in a child process; the parent maps the same
// file and wakes it.
TEST(Bell, FileBellWakesAnotherProcess)
{
	std::string path = temp_path("proc");
	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		zap_bell own;
		if (zap_bell_open_file(&own, path.c_str(), true) != 0)
			_exit(2);
		uint32_t seq = zap_bell_arm(&own);
		bool woken = zap_bell_wait(&own, seq, LONG_NS, -1);
		_exit(woken ? 0 : 1);
	}
	zap_bell peer = {};
	int rc = -ENOENT;
	for (int i = 0; i < 20000 && rc != 0; i++) {
		rc = zap_bell_open_file(&peer, path.c_str(), false);
		if (rc != 0)
			usleep(1000);
	}
	ASSERT_EQ(rc, 0);
	ASSERT_TRUE(wait_armed(peer.w));
	zap_bell_ring(&peer);
	int status = 0;
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(WEXITSTATUS(status), 0);
	EXPECT_EQ(peer.w->rings, 1u);
	zap_bell_fini(&peer);
	unlink(path.c_str());
}

TEST(Bell, ReopenedOwnerKeepsThePageAPeerMapped)
{
	std::string path = temp_path("reopen");
	zap_bell own, peer, again;
	ASSERT_EQ(zap_bell_open_file(&own, path.c_str(), true), 0);
	ASSERT_EQ(zap_bell_open_file(&peer, path.c_str(), false), 0);
	zap_bell_fini(&own); // the owner restarts
	ASSERT_EQ(zap_bell_open_file(&again, path.c_str(), true), 0);
	uint32_t seq = zap_bell_arm(&again);
	zap_bell_ring(&peer); // through the old mapping
	EXPECT_TRUE(zap_bell_wait(&again, seq, LONG_NS, -1));
	zap_bell_fini(&again);
	zap_bell_fini(&peer);
	unlink(path.c_str());
}

// A ringer notices when the owner's file was removed and made anew (its
// mapping then wakes nobody) and maps the new one.
TEST(Bell, RingerNoticesAReplacedFile)
{
	std::string path = temp_path("replaced");
	zap_bell own, peer;
	ASSERT_EQ(zap_bell_open_file(&own, path.c_str(), true), 0);
	ASSERT_EQ(zap_bell_open_file(&peer, path.c_str(), false), 0);
	EXPECT_TRUE(zap_bell_file_current(&peer, path.c_str()));
	zap_bell_fini(&own);
	unlink(path.c_str());
	EXPECT_FALSE(zap_bell_file_current(&peer, path.c_str())); // gone
	ASSERT_EQ(zap_bell_open_file(&own, path.c_str(), true), 0);
	EXPECT_FALSE(zap_bell_file_current(&peer, path.c_str())); // a new file
	// the old mapping does not reach the new owner
	uint32_t seq = zap_bell_arm(&own);
	zap_bell_ring(&peer);
	EXPECT_FALSE(zap_bell_wait(&own, seq, 1000 * 1000, -1));
	// mapped again, it does
	zap_bell_fini(&peer);
	ASSERT_EQ(zap_bell_open_file(&peer, path.c_str(), false), 0);
	EXPECT_TRUE(zap_bell_file_current(&peer, path.c_str()));
	seq = zap_bell_arm(&own);
	zap_bell_ring(&peer);
	EXPECT_TRUE(zap_bell_wait(&own, seq, LONG_NS, -1));
	zap_bell_fini(&own);
	zap_bell_fini(&peer);
	unlink(path.c_str());
	zap_bell none;
	ASSERT_EQ(zap_bell_init(&none, false), 0);
	EXPECT_FALSE(zap_bell_file_current(&none, path.c_str())); // not a file bell
	zap_bell_fini(&none);
}

TEST(Bell, BadFilesAreRefused)
{
	zap_bell b;
	std::string missing = temp_path("missing");
	EXPECT_EQ(zap_bell_open_file(&b, missing.c_str(), false), -ENOENT);
	EXPECT_EQ(b.w, nullptr);

	std::string zeros = temp_path("zeros");
	int fd = open(zeros.c_str(), O_RDWR | O_CREAT, 0600);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(ftruncate(fd, ZAP_BELL_FILE_BYTES), 0);
	EXPECT_EQ(zap_bell_open_file(&b, zeros.c_str(), false), -EPROTO); // no magic
	ASSERT_EQ(ftruncate(fd, 16), 0);
	EXPECT_EQ(zap_bell_open_file(&b, zeros.c_str(), false), -EPROTO); // too short
	close(fd);
	unlink(zeros.c_str());

	EXPECT_EQ(zap_bell_open_file(&b, "/tmp", false), -EISDIR);
	EXPECT_EQ(b.w, nullptr);
}

} // namespace
