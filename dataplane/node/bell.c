/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap doorbells (see bell.h). The handshake is the classic event count:
 *
 *   owner:    armed = 1; fence; poll inputs; nothing? wait(seq unchanged)
 *   producer: enqueue;   fence; armed? swap armed to 0, seq++, wake
 *
 * The swap lets one producer per sleep make the system call.
 */
#include "bell.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000ull

static long futex(uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

int zap_bell_init(struct zap_bell *b, bool eventfd_bell)
{
	*b = (struct zap_bell){.efd = -1};
	struct zap_bell_word *w = aligned_alloc(64, 64);
	if (w == NULL)
		return -ENOMEM;
	memset(w, 0, 64);
	w->magic = ZAP_BELL_MAGIC;
	w->owner = (uint32_t)getpid();
	if (eventfd_bell) {
		b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (b->efd < 0) {
			int rc = -errno;
			free(w);
			return rc;
		}
	}
	b->w = w;
	return 0;
}

int zap_bell_open_file(struct zap_bell *b, const char *path, bool create)
{
	*b = (struct zap_bell){.efd = -1};
	int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	if (fd < 0)
		return -errno;
	struct stat st;
	int rc = fstat(fd, &st) == 0 ? 0 : -errno;
	if (rc == 0 && !S_ISREG(st.st_mode))
		rc = -EPROTO;
	if (rc == 0 && (uint64_t)st.st_size < ZAP_BELL_FILE_BYTES) {
		if (!create)
			rc = -EPROTO;
		else if (ftruncate(fd, ZAP_BELL_FILE_BYTES) != 0)
			rc = -errno;
	}
	void *p = MAP_FAILED;
	if (rc == 0) {
		p = mmap(NULL, ZAP_BELL_FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			rc = -errno;
	}
	close(fd);
	if (rc != 0)
		return rc;
	struct zap_bell_word *w = p;
	if (create) {
		/* seq is left alone: a peer may be ringing this page already */
		__atomic_store_n(&w->armed, 0, __ATOMIC_SEQ_CST);
		w->owner = (uint32_t)getpid();
		__atomic_store_n(&w->magic, ZAP_BELL_MAGIC, __ATOMIC_RELEASE);
	} else if (__atomic_load_n(&w->magic, __ATOMIC_ACQUIRE) != ZAP_BELL_MAGIC) {
		munmap(p, ZAP_BELL_FILE_BYTES);
		return -EPROTO;
	}
	b->w = w;
	b->shared = true;
	b->mapped = true;
	b->dev = (uint64_t)st.st_dev;
	b->ino = (uint64_t)st.st_ino;
	return 0;
}

bool zap_bell_file_current(const struct zap_bell *b, const char *path)
{
	struct stat st;
	return b->w != NULL && b->mapped && stat(path, &st) == 0 && (uint64_t)st.st_dev == b->dev &&
	       (uint64_t)st.st_ino == b->ino;
}

void zap_bell_fini(struct zap_bell *b)
{
	if (b->w != NULL) {
		if (b->mapped)
			munmap(b->w, ZAP_BELL_FILE_BYTES);
		else
			free(b->w);
	}
	if (b->efd >= 0)
		close(b->efd);
	*b = (struct zap_bell){.efd = -1};
}

void zap_bell_ring(struct zap_bell *b)
{
	struct zap_bell_word *w = b != NULL ? b->w : NULL;
	if (w == NULL)
		return;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&w->armed, __ATOMIC_RELAXED) == 0 ||
	    __atomic_exchange_n(&w->armed, 0, __ATOMIC_SEQ_CST) == 0)
		return;
	__atomic_fetch_add(&w->seq, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&w->rings, 1, __ATOMIC_RELAXED);
	if (b->efd >= 0) {
		uint64_t one = 1;
		ssize_t wr = write(b->efd, &one, sizeof(one));
		(void)wr; /* EAGAIN: the counter is full, the owner wakes anyway */
	} else {
		futex(&w->seq, b->shared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, 1, NULL);
	}
}

uint32_t zap_bell_arm(struct zap_bell *b)
{
	uint32_t seq = __atomic_load_n(&b->w->seq, __ATOMIC_SEQ_CST);
	__atomic_store_n(&b->w->armed, 1, __ATOMIC_SEQ_CST);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return seq;
}

void zap_bell_disarm(struct zap_bell *b)
{
	__atomic_store_n(&b->w->armed, 0, __ATOMIC_RELAXED);
}

bool zap_bell_wait(struct zap_bell *b, uint32_t seq, uint64_t timeout_ns, int extra_fd)
{
	struct timespec ts = {.tv_sec = (time_t)(timeout_ns / NS_PER_S),
			      .tv_nsec = (long)(timeout_ns % NS_PER_S)};
	bool woken = false;
	b->waits++;
	if (b->efd >= 0) {
		struct pollfd p[2] = {{.fd = b->efd, .events = POLLIN},
				      {.fd = extra_fd, .events = POLLIN}};
		int r = ppoll(p, extra_fd >= 0 ? 2 : 1, &ts, NULL);
		if (r > 0) {
			woken = true;
			if (p[0].revents & POLLIN) {
				uint64_t v;
				ssize_t rd = read(b->efd, &v, sizeof(v));
				(void)rd; /* drained; EAGAIN if another read got it */
			}
		}
	} else if (__atomic_load_n(&b->w->seq, __ATOMIC_ACQUIRE) != seq) {
		woken = true;
	} else {
		long r = futex(&b->w->seq, b->shared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE, seq, &ts);
		woken = r == 0 || errno == EAGAIN;
	}
	__atomic_store_n(&b->w->armed, 0, __ATOMIC_RELAXED);
	if (woken)
		b->woken++;
	return woken;
}

void zap_waiter_step(struct zap_waiter *wt, struct zap_poll_action a)
{
	if (a.kind != ZAP_POLL_SLEEP || wt->bell == NULL || wt->bell->w == NULL) {
		if (wt->armed) {
			zap_bell_disarm(wt->bell);
			wt->armed = false;
		}
		zap_poll_execute(a);
		return;
	}
	if (!wt->armed) {
		wt->seq = zap_bell_arm(wt->bell);
		wt->armed = true;
		return;
	}
	zap_bell_wait(wt->bell, wt->seq, a.sleep_ns, wt->extra_fd);
	wt->armed = false;
}
