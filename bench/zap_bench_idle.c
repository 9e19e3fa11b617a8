/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap-bench --idle-conns N (zap_bench.h): N more ZEO connections beside the
 * measured clients. Each does the Z5 handshake and `register`, then sends
 * nothing for the rest of the run; one thread reads and drops what the
 * server sends them (invalidations, as an idle ZODB client receives them),
 * so that a server never blocks on their sockets.
 *
 * A server may refuse some (zap's gateway closes connections beyond its
 * limit; a server out of file descriptors stops accepting): every open is
 * bounded by --timeout-ms, a refusal is counted, and opening stops after
 * IDLE_GIVE_UP refusals in a row (IDLE_GIVE_UP_TIMEOUTS opens in a row that
 * timed out). The report says how many were held.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "zap_bench.h"
#include "zeo_bench_client.h"

/* refusals in a row after which the rest are not tried; fewer when the
 * server does not answer at all (each of those costs --timeout-ms) */
#define IDLE_GIVE_UP 16
#define IDLE_GIVE_UP_TIMEOUTS 3
/* file descriptors kept for the measured clients, files and the runtime */
#define FD_SPARE 64

struct zb_idle zb_idle;

static struct zeob **conns;
static struct pollfd *pfds;
static pthread_t drain_th;
static bool drain_started;
static _Atomic int drain_stop;

static double mono_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Raise the soft limit on open files to what N more connections need. */
static void raise_nofile(uint64_t need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* Read and drop whatever the server sends; a closed connection is lost. */
static void *drain_main(void *arg)
{
	(void)arg;
	static char buf[65536];
	nfds_t n = zb_idle.held;
	while (!atomic_load(&drain_stop)) {
		int r = poll(pfds, n, 100);
		if (r <= 0)
			continue;
		for (nfds_t i = 0; i < n; i++) {
			if (pfds[i].fd < 0 || pfds[i].revents == 0)
				continue;
			ssize_t got;
			do {
				got = recv(pfds[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
			} while (got == (ssize_t)sizeof(buf));
			if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
					 errno != EINTR)) {
				pfds[i].fd = -1; /* poll() skips it from now on */
				zb_idle.lost++;
			}
		}
	}
	return NULL;
}

int zb_idle_open(void)
{
	zb_idle.requested = o.idle_conns;
	if (o.idle_conns == 0)
		return 0;
	raise_nofile((uint64_t)o.clients + o.idle_conns + FD_SPARE);
	conns = calloc(o.idle_conns, sizeof(*conns));
	pfds = calloc(o.idle_conns, sizeof(*pfds));
	if (!conns || !pfds)
		return 1;
	double t0 = mono_s();
	uint32_t in_a_row = 0, timeouts_in_a_row = 0;
	for (uint32_t i = 0; i < o.idle_conns; i++) {
		const struct addr *a = &addrs[(o.clients + i) % n_addrs];
		struct zeob *z;
		zb_idle.tried++;
		int rc = zeob_open_timeout(a->host, a->port, (int)o.timeout_ms, &z);
		if (rc == 0) {
			in_a_row = 0;
			timeouts_in_a_row = 0;
			conns[zb_idle.held] = z;
			pfds[zb_idle.held] = (struct pollfd){.fd = zeob_fd(z), .events = POLLIN};
			zb_idle.held++;
			continue;
		}
		zb_idle.refused++;
		if (!zb_idle.first_error)
			zb_idle.first_error = rc;
		timeouts_in_a_row = rc == -ETIMEDOUT ? timeouts_in_a_row + 1 : 0;
		/* out of local file descriptors: no later open can succeed */
		if (rc == -EMFILE || rc == -ENFILE || ++in_a_row >= IDLE_GIVE_UP ||
		    timeouts_in_a_row >= IDLE_GIVE_UP_TIMEOUTS)
			break;
	}
	zb_idle.open_s = mono_s() - t0;
	fprintf(stderr,
		"zap-bench: idle ZEO connections: %u of %u held after %u tries in %.2f s%s%s\n",
		zb_idle.held, zb_idle.requested, zb_idle.tried, zb_idle.open_s,
		zb_idle.first_error ? ", first refusal: " : "",
		zb_idle.first_error
		    ? (zb_idle.first_error > -4096 ? strerror(-zb_idle.first_error) : "protocol")
		    : "");
	if (zb_idle.held > 0 && pthread_create(&drain_th, NULL, drain_main, NULL) == 0)
		drain_started = true;
	return 0;
}

void zb_idle_close(void)
{
	if (drain_started) {
		atomic_store(&drain_stop, 1);
		pthread_join(drain_th, NULL);
		drain_started = false;
	}
	for (uint32_t i = 0; conns && i < zb_idle.held; i++)
		zeob_close(conns[i]);
	free(conns);
	free(pfds);
	conns = NULL;
	pfds = NULL;
}
