/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap doorbells: wake a sleeping poll loop when its input gets work.
 *
 * An adaptive loop that went to sleep (polling.h) used to notice new work
 * only when its nanosleep ended: up to sleep_us late at every hand-off.
 * A bell lets the producer wake it. The consumer arms its bell (says it is
 * about to sleep), polls its inputs once more, and only then blocks; a
 * producer rings after it enqueued. Either the consumer's last poll sees the
 * work, or the producer sees the armed bell and wakes it (both sides order
 * their store before their load with a full fence). A ring that finds no
 * sleeper costs a fence and a load, no system call, so a busy loop's
 * producers pay almost nothing.
 *
 * The word a bell waits on is a futex: private memory for loops of one
 * process, or a shared file mapping (zap_bell_open_file) so that a node's
 * memif peers, which always run on the same host, can wake its I/O loop;
 * memif in DPDK 22.11 has no receive interrupts (docs/operations.md, "Polling
 * policies"). A bell made
 * with an eventfd instead (zap_bell_init(b, true)) lets its owner also wait
 * for a socket in the same ppoll (the client service thread).
 *
 * The sleep keeps its timeout (the policy's sleep), so timers, ports with no
 * bell and a lost ring only cost what they cost before.
 *
 * Threading: one owner arms and waits; any thread, or any process mapping
 * the same file, rings.
 */
#ifndef ZAP_BELL_H
#define ZAP_BELL_H

#include <stdbool.h>
#include <stdint.h>

#include "polling.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Marks an initialised shared bell page ("zapB"). */
#define ZAP_BELL_MAGIC 0x7a617042u
/** Size of a bell file. */
#define ZAP_BELL_FILE_BYTES 4096u

/** The shared part of a bell: in private memory or a mapped file. */
struct zap_bell_word {
	uint32_t seq;	   /**< futex word: bumped by every ring that found a sleeper */
	uint32_t armed;	   /**< the owner is about to sleep or sleeps */
	uint32_t magic;	   /**< ZAP_BELL_MAGIC once set up */
	uint32_t owner;	   /**< pid of the owner (diagnostics) */
	uint64_t rings;	   /**< rings that woke (or were about to wake) the owner */
	uint64_t reserved; /**< zero */
};

/** A process's handle on a bell. */
struct zap_bell {
	struct zap_bell_word *w; /**< NULL: no bell (ring and wait are no-ops) */
	int efd;		 /**< eventfd the owner waits on, or -1 (futex) */
	bool shared;		 /**< w is a file mapping (futex ops not private) */
	bool mapped;		 /**< w was mmap()ed (else allocated) */
	uint64_t dev, ino;	 /**< the file mapped (file bells) */
	uint64_t waits;		 /**< owner: sleeps on the bell */
	uint64_t woken;		 /**< owner: sleeps a ring ended before their timeout */
};

/** A bell in private memory; with @p eventfd, one the owner can ppoll. @return 0 or -errno. */
int zap_bell_init(struct zap_bell *b, bool eventfd);

/**
 * A bell in the file @p path (ZAP_BELL_FILE_BYTES, mode 0600).
 *
 * @param create  make the file if missing and become its owner (the word is
 *                reset); else open an existing owner's bell to ring it.
 * @return 0, -ENOENT when the file is not there (yet), -EPROTO when it is no
 *         bell, or -errno.
 */
int zap_bell_open_file(struct zap_bell *b, const char *path, bool create);

/**
 * Whether @p path still names the file @p b mapped. False when it is gone or
 * was replaced (its owner made a new one): a ringer then maps it again.
 */
bool zap_bell_file_current(const struct zap_bell *b, const char *path);

/** Release @p b (the file stays: peers may hold it mapped). */
void zap_bell_fini(struct zap_bell *b);

/** Wake the owner of @p b (NULL: none) if it sleeps or is about to; no system call otherwise. */
void zap_bell_ring(struct zap_bell *b);

/** Owner: announce a sleep. @return the sequence to give zap_bell_wait(). */
uint32_t zap_bell_arm(struct zap_bell *b);

/** Owner: the last poll found work after all. */
void zap_bell_disarm(struct zap_bell *b);

/**
 * Owner: sleep until a ring after zap_bell_arm() returned @p seq, @p extra_fd
 * becomes readable (eventfd bells only; -1 for none) or @p timeout_ns passed.
 * Disarms. @return true when woken before the timeout.
 */
bool zap_bell_wait(struct zap_bell *b, uint32_t seq, uint64_t timeout_ns, int extra_fd);

/** A poll loop's use of its bell (one per loop). */
struct zap_waiter {
	struct zap_bell *bell; /**< NULL: sleep as the policy says (nanosleep) */
	int extra_fd;	       /**< also wake on this fd (eventfd bells), or -1 */
	bool armed;
	uint32_t seq;
};

/**
 * Perform the policy's action @p a, sleeping on the bell. The first SLEEP
 * only arms the bell and returns at once, so the loop polls its inputs one
 * more time before it blocks; the next SLEEP (no work found) blocks.
 */
void zap_waiter_step(struct zap_waiter *wt, struct zap_poll_action a);

#ifdef __cplusplus
}
#endif

#endif /* ZAP_BELL_H */
