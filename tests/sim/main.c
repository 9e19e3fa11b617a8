/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap-sim command line.
 *
 *   zap-sim --nodes 3 --seeds 1-10000      one line per failing seed, then
 *                                          "N passed, N failed"
 *   zap-sim --seed 42 --trace              every event of one run
 *   zap-sim --break skip-phase1 --seeds 1-300 --expect-failure
 *                                          passes when some seed fails
 *
 * Exit status: 0 all seeds passed (with --expect-failure: some seed failed),
 * 1 otherwise, 2 bad arguments. The seeds/s figure goes to stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

#define DEFAULT_FAULT_MS 600u
#define DEFAULT_QUIET_MS 3000u
#define DEFAULT_MAX_STEPS 3000000ull
#define DEFAULT_CLIENTS 4u
#define DEFAULT_WINDOW_SLOTS 64u

static void usage(FILE *f)
{
	fprintf(f,
		"usage: zap-sim [--nodes 3|5] [--seeds A-B | --seed S] [--trace]\n"
		"               [--break NAME] [--expect-failure] [--steps N] [--time MS]\n"
		"               [--quiet-time MS] [--clients N] [--no-membership] [--no-crash]\n"
		"               [--window N] [--last-events]\n"
		"  --seeds A-B       run seeds A..B (default 1-100)\n"
		"  --seed S          run one seed (same as --seeds S-S)\n"
		"  --trace           print every event of each run\n"
		"  --last-events     print the last events of each failing run\n"
		"  --break NAME      switch off a safety mechanism: skip-phase1,\n"
		"                    reply-before-durable, forget-promise,\n"
		"                    ignore-promised-values, conflict-check-off\n"
		"  --expect-failure  succeed when a safety invariant (1-6, exactly-once)\n"
		"                    fails for some seed (stops there)\n"
		"  --steps N         events per run before it counts as failed (default %llu)\n"
		"  --time MS         simulated ms of load and faults (default %u)\n"
		"  --quiet-time MS   bound on convergence after healing (default %u)\n"
		"  --clients N       simulated clients, 1..%d (default %u)\n"
		"  --window N        engine window_slots and membership delay (default %u)\n",
		DEFAULT_MAX_STEPS, DEFAULT_FAULT_MS, DEFAULT_QUIET_MS, SIM_MAX_CLIENTS,
		DEFAULT_CLIENTS, DEFAULT_WINDOW_SLOTS);
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_range(const char *s, uint64_t *lo, uint64_t *hi)
{
	char buf[64];
	if (!s || strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	char *dash = strchr(buf, '-');
	if (!dash)
		return parse_u64(buf, lo) == 0 ? (*hi = *lo, 0) : -EINVAL;
	*dash = 0;
	if (parse_u64(buf, lo) || parse_u64(dash + 1, hi) || *hi < *lo)
		return -EINVAL;
	return 0;
}

/* A break is caught by a safety invariant, not by liveness or a setup error. */
static int safety_violation(const char *why)
{
	return (strncmp(why, "invariant ", 10) == 0 && strncmp(why, "invariant 7", 11) != 0) ||
	       strncmp(why, "exactly-once", 12) == 0;
}

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "zap-sim: %s%s%s\n", what, arg ? ": " : "", arg ? arg : "");
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	struct sim_options o = {
	    .nodes = 3,
	    .max_steps = DEFAULT_MAX_STEPS,
	    .fault_time_ns = DEFAULT_FAULT_MS * SIM_NS_PER_MS,
	    .quiet_time_ns = DEFAULT_QUIET_MS * SIM_NS_PER_MS,
	    .clients = DEFAULT_CLIENTS,
	    .window_slots = DEFAULT_WINDOW_SLOTS,
	};
	uint64_t lo = 1, hi = 100, v;
	int expect_failure = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--trace") == 0) {
			o.trace = 1;
		} else if (strcmp(a, "--last-events") == 0) {
			o.verbose_failure = 1;
		} else if (strcmp(a, "--expect-failure") == 0) {
			expect_failure = 1;
		} else if (strcmp(a, "--no-membership") == 0) {
			o.no_membership = 1;
		} else if (strcmp(a, "--no-crash") == 0) {
			o.no_crash = 1;
		} else if (strcmp(a, "--nodes") == 0) {
			if (parse_u64(val, &v) || (v != 3 && v != 5))
				return bad("--nodes must be 3 or 5", val);
			o.nodes = (unsigned)v;
			i++;
		} else if (strcmp(a, "--seeds") == 0 || strcmp(a, "--seed") == 0) {
			if (parse_range(val, &lo, &hi))
				return bad("bad seed or seed range (want S or A-B, A <= B)", val);
			i++;
		} else if (strcmp(a, "--break") == 0) {
			int b = val ? sim_break_parse(val) : -1;
			if (b <= 0)
				return bad("unknown --break mode", val);
			o.brk = (enum sim_break)b;
			i++;
		} else if (strcmp(a, "--steps") == 0) {
			if (parse_u64(val, &v) || v == 0)
				return bad("--steps wants a positive number", val);
			o.max_steps = v;
			i++;
		} else if (strcmp(a, "--time") == 0) {
			if (parse_u64(val, &v) || v == 0 || v > 3600000)
				return bad("--time wants 1..3600000 ms", val);
			o.fault_time_ns = v * SIM_NS_PER_MS;
			i++;
		} else if (strcmp(a, "--quiet-time") == 0) {
			if (parse_u64(val, &v) || v == 0 || v > 3600000)
				return bad("--quiet-time wants 1..3600000 ms", val);
			o.quiet_time_ns = v * SIM_NS_PER_MS;
			i++;
		} else if (strcmp(a, "--clients") == 0) {
			if (parse_u64(val, &v) || v == 0 || v > SIM_MAX_CLIENTS)
				return bad("--clients wants 1..8", val);
			o.clients = (unsigned)v;
			i++;
		} else if (strcmp(a, "--window") == 0) {
			if (parse_u64(val, &v) || v == 0 || v > 4096)
				return bad("--window wants 1..4096 slots", val);
			o.window_slots = (unsigned)v;
			i++;
		} else {
			return bad("unknown argument", a);
		}
	}
	if (lo == hi && !o.trace && !expect_failure)
		o.verbose_failure = 1;

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t passed = 0, failed = 0, caught = 0, steps_total = 0;
	for (uint64_t seed = lo;; seed++) {
		char why[512];
		uint64_t steps = 0;
		int rc = sim_run(&o, seed, why, sizeof(why), &steps);
		steps_total += steps;
		if (rc == 0) {
			passed++;
		} else {
			failed++;
			printf("seed %" PRIu64 ": FAIL (--nodes %u%s%s --seed %" PRIu64 "): %s\n",
			       seed, o.nodes, o.brk ? " --break " : "",
			       o.brk ? sim_break_name(o.brk) : "", seed, why);
			fflush(stdout);
			if (expect_failure && safety_violation(why)) {
				caught = seed;
				break;
			}
		}
		if (seed == hi)
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%" PRIu64 " passed, %" PRIu64 " failed\n", passed, failed);
	fprintf(stderr, "zap-sim: %" PRIu64 " seeds in %.2f s: %.1f seeds/s, %.0f events/s\n",
		passed + failed, secs, secs > 0 ? (double)(passed + failed) / secs : 0.0,
		secs > 0 ? (double)steps_total / secs : 0.0);
	if (expect_failure) {
		if (caught)
			printf("break %s caught by seed %" PRIu64 "\n", sim_break_name(o.brk),
			       caught);
		else
			printf("break %s NOT caught by a safety invariant in seeds %" PRIu64
			       "-%" PRIu64 "\n",
			       sim_break_name(o.brk), lo, hi);
		return caught ? 0 : 1;
	}
	return failed ? 1 : 0;
}
