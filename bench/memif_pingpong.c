/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap-bench-memif: the physical floor of zap's transport. Two DPDK processes,
 * one net_memif link, one frame in flight: the client sends a small frame,
 * the server echoes it, the client times the round trip.
 *
 *   zap-bench-memif server|client|pair [--policy busy|adaptive]
 *       [--spin-us N --yield-us N --sleep-us N] [--count N] [--size BYTES]
 *       [--socket PATH]
 *
 * `pair` forks a server and a client and prints the client's line:
 *   memif round trip (POLICY): n N p50 X us p99 Y us max Z us
 *
 * Each process starts EAL itself without hugepages, with its own file prefix
 * and a floating main lcore (docs/operations.md, "EAL arguments generated
 * from the YAML"), and polls through dataplane/node/polling.h's zap_poll_*
 * (busy: always spin; adaptive: spin, yield, sleep).
 * memif pitfalls handled: the server unlinks a stale socket file; the client
 * retries rte_eth_dev_start() until the server is there and restarts its port
 * after 1 s without link. Every wait is bounded (30 s per phase). At exit the
 * port is stopped and closed, the socket file and the EAL runtime folder
 * (/run/dpdk/zap-bench-memif-ROLE-PID) are removed, and the process leaves with
 * _exit() rather than rte_eal_cleanup() (memif close + cleanup crash,
 * docs/operations.md, "Shutdown").
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "node/polling.h"

#define NS_PER_MS 1000000ull
#define BENCH_NS_PER_S 1000000000ull

#define PHASE_TIMEOUT_NS (30 * BENCH_NS_PER_S) /* every phase gives up after this */
#define FRAME_TIMEOUT_NS (1 * BENCH_NS_PER_S)	 /* a frame without reply is sent again */
#define RELINK_AFTER_NS (1 * BENCH_NS_PER_S)	 /* client without link: stop + start */
#define START_RETRY_MS 100		 /* between two rte_eth_dev_start() tries */
#define STOP_LINGER_NS (2 * BENCH_NS_PER_S)	 /* server: wait for the client to leave */
#define QUIESCE_MS 50			 /* after closing the port */
#define PAIR_TIMEOUT_NS (75 * BENCH_NS_PER_S)	 /* pair: kill children after this */

#define WARMUP 1000u
#define DEF_COUNT 20000u
#define MAX_COUNT 10000000u
#define DEF_SIZE 64u
#define MAX_SIZE 2048u /* one memif buffer, one mbuf */
#define BURST 32

#define BENCH_ETHERTYPE 0x88B5 /* IEEE local experimental */
#define BENCH_MAGIC 0x7a61706du
#define KIND_DATA 0u
#define KIND_STOP 1u

#define PORT_NAME "net_memif0"
#define PREFIX_BASE "zap-bench-memif"

struct bench_frame {
	struct rte_ether_hdr eth;
	uint32_t magic;
	uint32_t kind;
	uint64_t seq;
};

#define MIN_SIZE ((unsigned)sizeof(struct bench_frame))

enum role { ROLE_SERVER, ROLE_CLIENT, ROLE_PAIR };

struct opts {
	enum role role;
	enum zap_polling policy;
	struct zap_polling_config poll; /* adaptive thresholds */
	uint32_t count;
	uint32_t size;
	char socket[256];
	bool socket_given;
};

/* The process's EAL/port state, for cleanup on every exit path. */
static struct {
	bool eal_up;
	bool port_configured;
	bool port_started;
	uint16_t port_id;
	bool is_server;
	const char *socket;
	char runtime_dir[512];
} g;

static volatile sig_atomic_t g_signal;

static void on_signal(int sig)
{
	g_signal = sig;
}

static uint64_t now_ns(void)
{
	return zap_poll_now_ns();
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	if (dir[0] != '\0' && access(dir, F_OK) == 0)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Where EAL puts the runtime folder of @p prefix (eal_create_runtime_dir()). */
static void runtime_dir_of(const char *prefix, char *out, size_t len)
{
	const char *base = "/var/run";
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (getuid() != 0)
		base = xdg != NULL ? xdg : "/tmp";
	snprintf(out, len, "%s/dpdk/%s", base, prefix);
}

/* Stop the port, remove the socket file and the EAL runtime folder, leave. */
static void __attribute__((noreturn)) finish(int status)
{
	fflush(stdout);
	fflush(stderr);
	if (g.port_started) {
		rte_eth_dev_stop(g.port_id);
		sleep_ms(QUIESCE_MS);
	}
	if (g.is_server && g.socket != NULL)
		unlink(g.socket);
	rm_tree(g.runtime_dir);
	_exit(status);
}

static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "zap-bench-memif %s: ", g.is_server ? "server" : "client");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	finish(1);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: zap-bench-memif server|client|pair [--policy busy|adaptive]\n"
		"         [--spin-us N --yield-us N --sleep-us N] [--count N] [--size BYTES]\n"
		"         [--socket PATH]\n"
		"  --policy    polling of both ends (default adaptive)\n"
		"  --spin-us   adaptive: spin this long after work (default 50, as the YAML)\n"
		"  --yield-us  adaptive: then yield for this long (default 200, as the YAML)\n"
		"  --sleep-us  adaptive: then sleep, backing off up to this (default 1000)\n"
		"  --count     measured round trips after %u warm-up ones (default %u)\n"
		"  --size      frame bytes, %u..%u (default %u)\n"
		"  --socket    memif socket file (default /tmp/" PREFIX_BASE ".sock;\n"
		"              pair: /tmp/" PREFIX_BASE "-PID.sock)\n"
		"  -h, --help  this text\n",
		WARMUP, DEF_COUNT, MIN_SIZE, MAX_SIZE, DEF_SIZE);
}

static bool parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi)
		return false;
	*out = (uint32_t)v;
	return true;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){
	    .policy = ZAP_POLLING_ADAPTIVE,
	    .poll = {.spin_us = 50, .yield_us = 200, .sleep_us = 1000},
	    .count = DEF_COUNT,
	    .size = DEF_SIZE,
	};
	if (argc < 2) {
		usage(stderr);
		return -1;
	}
	if (strcmp(argv[1], "server") == 0)
		o->role = ROLE_SERVER;
	else if (strcmp(argv[1], "client") == 0)
		o->role = ROLE_CLIENT;
	else if (strcmp(argv[1], "pair") == 0)
		o->role = ROLE_PAIR;
	else if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		exit(0);
	} else {
		fprintf(stderr, "zap-bench-memif: unknown role '%s'\n", argv[1]);
		usage(stderr);
		return -1;
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool ok = v != NULL;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--policy") == 0) {
			if (ok && strcmp(v, "busy") == 0)
				o->policy = ZAP_POLLING_BUSY;
			else if (ok && strcmp(v, "adaptive") == 0)
				o->policy = ZAP_POLLING_ADAPTIVE;
			else
				ok = false;
		} else if (strcmp(a, "--spin-us") == 0) {
			ok = ok && parse_u32(v, 0, 10000000, &o->poll.spin_us);
		} else if (strcmp(a, "--yield-us") == 0) {
			ok = ok && parse_u32(v, 0, 10000000, &o->poll.yield_us);
		} else if (strcmp(a, "--sleep-us") == 0) {
			ok = ok && parse_u32(v, 0, 10000000, &o->poll.sleep_us);
		} else if (strcmp(a, "--count") == 0) {
			ok = ok && parse_u32(v, 1, MAX_COUNT, &o->count);
		} else if (strcmp(a, "--size") == 0) {
			ok = ok && parse_u32(v, MIN_SIZE, MAX_SIZE, &o->size);
		} else if (strcmp(a, "--socket") == 0) {
			ok = ok && v[0] != '\0' && strlen(v) < sizeof(o->socket) &&
			     strchr(v, ',') == NULL;
			if (ok) {
				snprintf(o->socket, sizeof(o->socket), "%s", v);
				o->socket_given = true;
			}
		} else {
			fprintf(stderr, "zap-bench-memif: unknown option '%s'\n", a);
			usage(stderr);
			return -1;
		}
		if (!ok) {
			fprintf(stderr, "zap-bench-memif: bad or missing value for %s\n", a);
			usage(stderr);
			return -1;
		}
		i++;
	}
	if (!o->socket_given)
		snprintf(o->socket, sizeof(o->socket), "/tmp/" PREFIX_BASE ".sock");
	return 0;
}

static const char *policy_name(enum zap_polling p)
{
	return p == ZAP_POLLING_BUSY ? "busy" : "adaptive";
}

/* Start EAL with the memif vdev of @p o's role; sets g.port_id. */
static void start_eal(const struct opts *o, const char *argv0)
{
	bool server = o->role == ROLE_SERVER;
	char prefix[64], vdev[400], lcores[64];
	snprintf(prefix, sizeof(prefix), PREFIX_BASE "-%s-%d", server ? "server" : "client",
		 (int)getpid());
	snprintf(vdev, sizeof(vdev), PORT_NAME ",role=%s,id=0,socket=%s,socket-abstract=no",
		 server ? "server" : "client", o->socket);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpus > 1)
		snprintf(lcores, sizeof(lcores), "0@(0-%ld)", cpus - 1);
	else
		snprintf(lcores, sizeof(lcores), "0@0");
	runtime_dir_of(prefix, g.runtime_dir, sizeof(g.runtime_dir));
	g.is_server = server;
	g.socket = o->socket;

	char *eargv[] = {(char *)argv0, "--no-huge",	 "-m",	    "256",  "--no-pci",
			 "--file-prefix",  prefix,	 "--lcores", lcores, "--vdev",
			 vdev,		   "--no-telemetry", "--log-level", "*:error", NULL};
	int eargc = (int)(sizeof(eargv) / sizeof(eargv[0])) - 1;
	if (server)
		unlink(o->socket); /* a crashed run's file: "Address already in use" */
	if (rte_eal_init(eargc, eargv) < 0) {
		int e = rte_errno;
		rm_tree(g.runtime_dir);
		fprintf(stderr, "zap-bench-memif: rte_eal_init failed: %s\n", rte_strerror(e));
		_exit(1);
	}
	g.eal_up = true;
	if (rte_eth_dev_get_port_by_name(PORT_NAME, &g.port_id) != 0 ||
	    rte_eth_dev_count_avail() == 0)
		fail("port %s did not appear (vdev %s)", PORT_NAME, vdev);
}

static struct rte_mempool *configure_port(void)
{
	struct rte_mempool *mp = rte_pktmbuf_pool_create("bench_pool", 4095, 64, 0,
							 RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
	if (mp == NULL)
		fail("mbuf pool: %s", rte_strerror(rte_errno));
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	int rc = rte_eth_dev_configure(g.port_id, 1, 1, &conf);
	if (rc != 0)
		fail("configure %s: %s", PORT_NAME, rte_strerror(-rc));
	g.port_configured = true;
	rc = rte_eth_rx_queue_setup(g.port_id, 0, 1024, rte_eth_dev_socket_id(g.port_id), NULL, mp);
	if (rc != 0)
		fail("rx queue of %s: %s", PORT_NAME, rte_strerror(-rc));
	rc = rte_eth_tx_queue_setup(g.port_id, 0, 1024, rte_eth_dev_socket_id(g.port_id), NULL);
	if (rc != 0)
		fail("tx queue of %s: %s", PORT_NAME, rte_strerror(-rc));
	return mp;
}

/* rte_eth_dev_start(), retried until @p deadline (a client before its server fails it). */
static void start_port(uint64_t deadline)
{
	unsigned tries = 0;
	for (;;) {
		int rc = rte_eth_dev_start(g.port_id);
		if (rc == 0) {
			g.port_started = true;
			return;
		}
		tries++;
		if (g_signal)
			fail("interrupted while starting %s", PORT_NAME);
		if (now_ns() >= deadline)
			fail("could not start %s after %u tries in 30 s (%s); is the server "
			     "running on socket %s?",
			     PORT_NAME, tries, rte_strerror(-rc), g.socket);
		sleep_ms(START_RETRY_MS);
	}
}

static bool link_up(void)
{
	struct rte_eth_link l;
	memset(&l, 0, sizeof(l));
	if (rte_eth_link_get_nowait(g.port_id, &l) != 0)
		return false;
	return l.link_status == RTE_ETH_LINK_UP;
}

/* Wait up to 30 s for link; the client stops and starts its port after 1 s without. */
static void wait_link(bool client)
{
	uint64_t t0 = now_ns(), deadline = t0 + PHASE_TIMEOUT_NS, since = t0;
	while (!link_up()) {
		uint64_t t = now_ns();
		if (g_signal)
			fail("interrupted while waiting for link");
		if (t >= deadline)
			fail("no link on %s after 30 s (socket %s; is the %s running?)", PORT_NAME,
			     g.socket, client ? "server" : "client");
		if (client && t - since >= RELINK_AFTER_NS) {
			rte_eth_dev_stop(g.port_id);
			g.port_started = false;
			start_port(deadline);
			since = now_ns();
		}
		sleep_ms(1);
	}
}

static bool frame_parse(const struct rte_mbuf *m, uint32_t *kind, uint64_t *seq)
{
	if (rte_pktmbuf_data_len(m) < sizeof(struct bench_frame))
		return false;
	const struct bench_frame *f = rte_pktmbuf_mtod(m, const struct bench_frame *);
	if (f->eth.ether_type != rte_cpu_to_be_16(BENCH_ETHERTYPE) || f->magic != BENCH_MAGIC)
		return false;
	*kind = f->kind;
	*seq = f->seq;
	return true;
}

static struct rte_mbuf *frame_make(struct rte_mempool *mp, uint32_t size, uint32_t kind,
				   uint64_t seq)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
	if (m == NULL)
		return NULL;
	char *p = rte_pktmbuf_append(m, (uint16_t)size);
	if (p == NULL) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	memset(p, 0, size);
	struct bench_frame *f = (struct bench_frame *)p;
	static const struct rte_ether_addr dst = {{0x02, 0, 0, 0, 0, 0x02}};
	static const struct rte_ether_addr src = {{0x02, 0, 0, 0, 0, 0x01}};
	rte_ether_addr_copy(&dst, &f->eth.dst_addr);
	rte_ether_addr_copy(&src, &f->eth.src_addr);
	f->eth.ether_type = rte_cpu_to_be_16(BENCH_ETHERTYPE);
	f->magic = BENCH_MAGIC;
	f->kind = kind;
	f->seq = seq;
	return m;
}

static void __attribute__((noreturn)) run_server(const struct opts *o)
{
	configure_port();
	start_port(now_ns() + PHASE_TIMEOUT_NS);
	wait_link(false);

	struct zap_poll poll;
	zap_poll_init(&poll, o->policy, &o->poll, now_ns());
	struct rte_mbuf *pkts[BURST];
	uint64_t echoed = 0, last_rx = now_ns(), stop_at = 0;
	unsigned idle = 0;
	for (;;) {
		uint16_t n = rte_eth_rx_burst(g.port_id, 0, pkts, BURST);
		if (n > 0) {
			for (uint16_t i = 0; i < n; i++) {
				uint32_t kind;
				uint64_t seq;
				if (frame_parse(pkts[i], &kind, &seq) && kind == KIND_STOP &&
				    stop_at == 0)
					stop_at = now_ns();
			}
			uint16_t sent = 0;
			for (unsigned tries = 0; sent < n && tries < 1000; tries++)
				sent += rte_eth_tx_burst(g.port_id, 0, pkts + sent, n - sent);
			if (sent < n)
				rte_pktmbuf_free_bulk(pkts + sent, n - sent);
			echoed += sent;
			if (stop_at != 0)
				break; /* no more rx: the client disconnects next */
			idle = 0;
			zap_poll_next(&poll, now_ns(), true); /* work: back to spinning */
			continue;
		}
		uint64_t t = now_ns();
		if (g_signal)
			fail("interrupted after %" PRIu64 " echoes", echoed);
		if (idle == 0)
			last_rx = t;
		idle++;
		if ((idle & 255) == 0 && !link_up()) {
			if (echoed > 0)
				break; /* the client is gone */
			fail("link lost before any frame");
		}
		if (t - last_rx >= PHASE_TIMEOUT_NS)
			fail("no frame for 30 s after %" PRIu64 " echoes; giving up", echoed);
		zap_poll_execute(zap_poll_next(&poll, t, false));
	}
	/*
	 * Told to stop: the client disconnects once it has the echo. memif tears
	 * the link down in the interrupt thread, so rx must be idle by then.
	 */
	uint64_t linger = now_ns() + STOP_LINGER_NS;
	while (stop_at != 0 && link_up() && now_ns() < linger && !g_signal)
		sleep_ms(1);
	/* memif marks the link down first, then frees its rings: let it finish. */
	sleep_ms(QUIESCE_MS);
	finish(0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted @p v. */
static uint64_t pct(const uint64_t *v, uint32_t n, unsigned p)
{
	uint64_t rank = ((uint64_t)n * p + 99) / 100;
	return v[rank == 0 ? 0 : rank - 1];
}

/*
 * One round trip of frame @p seq; returns its time in TSC cycles, or fails.
 * A frame without reply within FRAME_TIMEOUT_NS is sent again (*lost counts it).
 */
static uint64_t round_trip(struct rte_mempool *mp, struct zap_poll *poll, uint32_t size,
			   uint32_t kind, uint64_t seq, uint64_t deadline, uint64_t *lost)
{
	struct rte_mbuf *pkts[BURST];
	for (;;) {
		struct rte_mbuf *m = frame_make(mp, size, kind, seq);
		if (m == NULL)
			fail("mbuf allocation failed at frame %" PRIu64, seq);
		uint64_t t0 = rte_rdtsc();
		while (rte_eth_tx_burst(g.port_id, 0, &m, 1) == 0) {
			uint64_t t = now_ns();
			if (t >= deadline || g_signal) {
				rte_pktmbuf_free(m);
				fail("could not send frame %" PRIu64 " within 30 s", seq);
			}
			zap_poll_execute(zap_poll_next(poll, t, false));
			t0 = rte_rdtsc();
		}
		uint64_t frame_deadline = now_ns() + FRAME_TIMEOUT_NS;
		unsigned idle = 0;
		for (;;) {
			uint16_t n = rte_eth_rx_burst(g.port_id, 0, pkts, BURST);
			if (n > 0) {
				uint64_t t1 = rte_rdtsc();
				bool got = false;
				for (uint16_t i = 0; i < n; i++) {
					uint32_t k;
					uint64_t s;
					if (frame_parse(pkts[i], &k, &s) && s == seq && k == kind)
						got = true;
				}
				rte_pktmbuf_free_bulk(pkts, n);
				zap_poll_next(poll, now_ns(), true);
				if (got)
					return t1 - t0;
				continue;
			}
			uint64_t t = now_ns();
			if (g_signal)
				fail("interrupted at frame %" PRIu64, seq);
			if (t >= deadline)
				fail("round trips did not finish within 30 s (at frame %" PRIu64 ")",
				     seq);
			if ((++idle & 255) == 0 && !link_up())
				fail("link lost at frame %" PRIu64 " (server gone?)", seq);
			if (t >= frame_deadline)
				break; /* lost: send it again */
			zap_poll_execute(zap_poll_next(poll, t, false));
		}
		(*lost)++;
	}
}

static void __attribute__((noreturn)) run_client(const struct opts *o)
{
	struct rte_mempool *mp = configure_port();
	uint64_t deadline = now_ns() + PHASE_TIMEOUT_NS;
	start_port(deadline);
	wait_link(true);

	uint64_t *rtt = malloc((size_t)o->count * sizeof(*rtt));
	if (rtt == NULL)
		fail("out of memory for %" PRIu32 " samples", o->count);
	struct zap_poll poll;
	zap_poll_init(&poll, o->policy, &o->poll, now_ns());
	uint64_t lost = 0, seq = 0;

	deadline = now_ns() + PHASE_TIMEOUT_NS;
	for (uint32_t i = 0; i < WARMUP; i++)
		round_trip(mp, &poll, o->size, KIND_DATA, seq++, deadline, &lost);
	uint64_t warm_lost = lost;
	lost = 0;
	deadline = now_ns() + PHASE_TIMEOUT_NS;
	for (uint32_t i = 0; i < o->count; i++)
		rtt[i] = round_trip(mp, &poll, o->size, KIND_DATA, seq++, deadline, &lost);

	/* Tell the server to stop; once it echoed, it polls no more and waits for our disconnect. */
	round_trip(mp, &poll, o->size, KIND_STOP, seq, now_ns() + PHASE_TIMEOUT_NS, &lost);

	double ns_per_cycle = 1e9 / (double)rte_get_tsc_hz();
	qsort(rtt, o->count, sizeof(*rtt), cmp_u64);
	double us = ns_per_cycle / 1000.0;
	printf("memif round trip (%s): n %" PRIu32 " p50 %.2f us p99 %.2f us max %.2f us\n",
	       policy_name(o->policy), o->count, (double)pct(rtt, o->count, 50) * us,
	       (double)pct(rtt, o->count, 99) * us, (double)rtt[o->count - 1] * us);
	if (lost > 0 || warm_lost > 0)
		fprintf(stderr,
			"zap-bench-memif client: %" PRIu64 " frames resent after 1 s without "
			"reply (%" PRIu64 " in warm-up)\n",
			lost + warm_lost, warm_lost);
	free(rtt);
	finish(0);
}

static pid_t spawn(const struct opts *o, enum role r, const char *argv0)
{
	pid_t pid = fork();
	if (pid < 0) {
		perror("zap-bench-memif: fork");
		return -1;
	}
	if (pid == 0) {
		struct opts c = *o;
		c.role = r;
		start_eal(&c, argv0);
		if (r == ROLE_SERVER)
			run_server(&c);
		run_client(&c);
	}
	return pid;
}

/* pair: fork a server and a client, wait (bounded) for both, clean up after them. */
static int run_pair(struct opts *o, const char *argv0)
{
	if (!o->socket_given)
		snprintf(o->socket, sizeof(o->socket), "/tmp/" PREFIX_BASE "-%d.sock",
			 (int)getpid());
	fflush(stdout);
	fflush(stderr);
	pid_t srv = spawn(o, ROLE_SERVER, argv0);
	if (srv < 0)
		return 1;
	/* Start the client once the server listens (the client would retry anyway, noisily). */
	uint64_t listen_by = now_ns() + PHASE_TIMEOUT_NS;
	while (access(o->socket, F_OK) != 0 && now_ns() < listen_by && !g_signal &&
	       waitpid(srv, NULL, WNOHANG) == 0)
		sleep_ms(5);
	pid_t cli = spawn(o, ROLE_CLIENT, argv0);
	if (cli < 0) {
		kill(srv, SIGTERM);
		waitpid(srv, NULL, 0);
		return 1;
	}
	pid_t pids[2] = {srv, cli};
	int status[2] = {-1, -1};
	uint64_t deadline = now_ns() + PAIR_TIMEOUT_NS;
	int left = 2;
	while (left > 0) {
		for (int i = 0; i < 2; i++) {
			if (status[i] != -1)
				continue;
			int st;
			pid_t r = waitpid(pids[i], &st, WNOHANG);
			if (r == pids[i] || (r < 0 && errno == ECHILD)) {
				status[i] = r == pids[i] ? st : 0x7f00;
				left--;
			}
		}
		if (left == 0)
			break;
		if (now_ns() >= deadline) {
			fprintf(stderr, "zap-bench-memif pair: children still running after %llu s; "
					"killing them\n",
				PAIR_TIMEOUT_NS / BENCH_NS_PER_S);
			for (int i = 0; i < 2; i++)
				if (status[i] == -1) {
					kill(pids[i], SIGKILL);
					waitpid(pids[i], &status[i], 0);
				}
			break;
		}
		sleep_ms(10);
	}
	/* Whatever a killed or crashed child left behind. */
	char dir[512], prefix[64];
	for (int i = 0; i < 2; i++) {
		snprintf(prefix, sizeof(prefix), PREFIX_BASE "-%s-%d", i == 0 ? "server" : "client",
			 (int)pids[i]);
		runtime_dir_of(prefix, dir, sizeof(dir));
		rm_tree(dir);
	}
	unlink(o->socket);
	int rc = 0;
	for (int i = 0; i < 2; i++) {
		if (!WIFEXITED(status[i]) || WEXITSTATUS(status[i]) != 0) {
			fprintf(stderr, "zap-bench-memif pair: %s %s\n", i == 0 ? "server" : "client",
				WIFSIGNALED(status[i]) ? strsignal(WTERMSIG(status[i]))
						       : "failed");
			rc = 1;
		}
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o;
	if (parse_opts(argc, argv, &o) != 0)
		return 2;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (o.role == ROLE_PAIR)
		return run_pair(&o, argv[0]);
	start_eal(&o, argv[0]);
	if (o.role == ROLE_SERVER)
		run_server(&o);
	run_client(&o);
}
