/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap-bench's shared declarations (docs/benchmarks.md; the program's top
 * comment is in zap_bench.c). The load generator is three files:
 *
 *   zap_bench.c         main(), the targets, the clients and the run
 *   zap_bench_opts.c    the command line: the options, their defaults and
 *                       validation, the --addr list (zb_parse_args)
 *   zap_bench_report.c  the end of a run: the clients' counters summed, the
 *                       line on stdout, --json and --csv (zb_report)
 *   zap_bench_idle.c    --idle-conns: idle ZEO connections held beside the
 *                       measured clients (zb_idle_open, zb_idle_close)
 *
 * The options are one global, filled once by zb_parse_args() before any
 * client thread starts and read-only after that.
 */
#ifndef ZAP_BENCH_ZAP_BENCH_H
#define ZAP_BENCH_ZAP_BENCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>

#include "hist.h"

#define MAX_CLIENTS 256
#define MAX_ADDRS 16
#define MAX_HOT 1024
#define MAX_OBJS 1000
#define MAX_IDLE_CONNS 100000
#define MAX_VALUE_SIZE (64u << 20) /* a ZEO message is at most 64 MiB */

enum target { T_NATIVE, T_ZEO, T_SHM, T_ETCD, T_FSYNC, T_NATIVE_MEMIF };
#define N_TARGETS 6
enum op { OP_LOAD, OP_COMMIT, OP_COMMIT2PC, OP_MIX, OP_CONFLICT, OP_APPEND, OP_BLOB, OP_OVERWRITE };
#define N_OPS 8

/** --target and --op spellings, indexed by enum target and enum op. */
extern const char *const target_names[N_TARGETS];
extern const char *const op_names[N_OPS];

struct opts {
	enum target target;
	enum op op;
	char addr[512];
	uint64_t cluster_id;
	bool zipf;
	double zipf_theta;
	uint64_t objects;
	uint64_t oid_base;
	uint64_t populate;
	uint32_t objs;
	uint32_t value_size;
	uint32_t write_pct;
	uint32_t hot;
	uint32_t clients;
	double duration;
	double warmup;
	double rate;
	uint32_t timeout_ms;
	uint32_t idle_conns;
	uint32_t iterations; /**< > 0: each client runs this many measured operations */
	uint64_t blob_size;  /**< OP_BLOB: bytes per blob */
	const char *memif;
	const char *label;
	const char *json;
	const char *csv;
};
/** The options (zap_bench_opts.c): defaults, then the command line. */
extern struct opts o;

struct addr {
	char host[256];
	uint16_t port;
};
/** --addr split into HOST:PORT endpoints (server targets only). */
extern struct addr addrs[MAX_ADDRS];
extern unsigned n_addrs;

struct zap_client;
struct zeob;
struct etcdb;
struct zap_store_reader;
struct zap_cp_store;
struct zeob_store;

/* ---------------------------------------------------------------- a client */

struct worker {
	pthread_t th;
	unsigned id;
	uint64_t seed;
	struct zap_client *nc;
	struct zeob *zc;
	struct etcdb *ec;
	struct zap_store_reader *sr;
	int fd;
	uint64_t next_oid;
	uint64_t hot_serial[MAX_HOT];
	uint64_t *ow_serial; /* overwrite: the serial of each object of the client's share */
	uint64_t ow_n, ow_next;
	uint8_t *value;
	struct zap_cp_store *nst;
	struct zeob_store *zst;
	/* results */
	struct hist all, rd, wr;
	uint64_t ops, errors, conflicts, commits;
	uint64_t behind_ns;  /* open loop: how late sends started, summed */
	uint64_t completed;  /* operations that ended inside the measured window */
	uint64_t unsent;     /* open loop: measured arrivals not sent by the hard end */
	uint64_t mismatches; /* blob: read back with other bytes than written */
	uint64_t split_ns;   /* blob: the write part of the operation that just ran */
	uint64_t last_done;  /* --iterations: when the client's last operation ended */
	int first_error;
	int fatal;
};

/** The measured window as main() saw it: resource usage and clock at its ends. */
struct zb_window {
	struct rusage ru0, ru1;
	uint64_t m0, m1; /* CLOCK_MONOTONIC, ns */
};

/** --idle-conns: what was asked for and what the server let this run hold. */
struct zb_idle {
	uint32_t requested; /**< --idle-conns */
	uint32_t tried;	    /**< opens attempted (fewer after refusals in a row) */
	uint32_t held;	    /**< handshake and register done */
	uint32_t refused;   /**< opens that failed (closed, timed out, errors) */
	uint32_t lost;	    /**< held ones the server closed during the run */
	int first_error;    /**< the first failed open's result (0: none) */
	double open_s;	    /**< seconds the opens took */
};
extern struct zb_idle zb_idle;

/**
 * Open o.idle_conns idle ZEO connections to the --addr endpoints (after the
 * clients' own) and start the thread that drains them. Refusals are counted
 * in zb_idle, never fatal.
 * @return 0, or 1 when out of memory.
 */
int zb_idle_open(void);
/** Stop the drain thread and close the idle connections. */
void zb_idle_close(void);

/**
 * Parse the command line into @ref o and @ref addrs and validate it. Bad or
 * missing options print the usage on stderr and exit(2) here; --help prints
 * it on stdout and exits 0.
 * @return 0, or the exit status for main() (2: the shm target only loads).
 */
int zb_parse_args(int argc, char **argv);

/**
 * Sum the o.clients @p workers' results and report them: the line on stdout,
 * errors on stderr, --json and --csv. *@p fatal is set to the first client's
 * fatal error (0: none).
 * @return 0, or 1 when an output file cannot be opened.
 */
int zb_report(const struct worker *workers, const struct zb_window *win, int *fatal);

#endif
