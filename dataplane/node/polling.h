/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap polling policy: what an lcore loop does after an iteration.
 *
 * memif has no receive interrupts (docs/operations.md, "Polling policies"), so
 * an idle loop can only
 * spin, yield or sleep. Two policies, one per lcore from the YAML:
 *   busy      always spin (dedicated cores);
 *   adaptive  spin for spin_us after the last work, then sched_yield() for
 *             yield_us, then sleep, starting at ZAP_POLL_SLEEP_FIRST_US and
 *             doubling each idle iteration up to sleep_us. Work resets to spin.
 *
 * zap_poll_next() is a pure state machine: it takes the time and whether the
 * last iteration did work, and returns the action; it reads no clock and
 * makes no system call. zap_poll_execute() performs an action.
 *
 * Threading: one struct zap_poll per lcore loop, used only by that lcore.
 */
#ifndef ZAP_POLLING_H
#define ZAP_POLLING_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/** First sleep of the backoff; a shorter nanosleep costs about as much here. */
#define ZAP_POLL_SLEEP_FIRST_US 50

/** What the loop does next. */
enum zap_poll_kind {
	ZAP_POLL_SPIN = 0, /**< poll again at once (a CPU pause hint at most) */
	ZAP_POLL_YIELD,	   /**< sched_yield() */
	ZAP_POLL_SLEEP,	   /**< nanosleep() for sleep_ns */
};

/** One decision of the policy. */
struct zap_poll_action {
	enum zap_poll_kind kind;
	uint64_t sleep_ns; /**< ZAP_POLL_SLEEP only; else 0 */
};

/** Counters of one lcore's idle handling. */
struct zap_poll_stats {
	uint64_t spins;
	uint64_t yields;
	uint64_t sleeps;
	uint64_t slept_ns; /**< total requested sleep */
};

/** Policy state of one lcore loop. */
struct zap_poll {
	enum zap_polling policy;
	uint64_t spin_ns;	/**< spin this long after the last work */
	uint64_t yield_ns;	/**< then yield this long */
	uint64_t sleep_max_ns;	/**< cap of the sleep backoff */
	uint64_t last_work_ns;	/**< time of the last iteration that did work */
	uint64_t next_sleep_ns; /**< next sleep of the backoff; 0 = not sleeping yet */
	struct zap_poll_stats stats;
};

/**
 * Initialise @p p for @p policy with the YAML thresholds @p c.
 *
 * @param now_ns  current time; the loop counts as having worked at this instant
 */
void zap_poll_init(struct zap_poll *p, enum zap_polling policy, const struct zap_polling_config *c,
		   uint64_t now_ns);

/**
 * Decide what to do after one loop iteration.
 *
 * @param now_ns    current time (monotonic, never decreasing across calls)
 * @param did_work  whether the iteration just run received or sent anything
 * @return the action; counted in p->stats.
 */
struct zap_poll_action zap_poll_next(struct zap_poll *p, uint64_t now_ns, bool did_work);

/** Perform @p a: nothing (a pause hint), sched_yield() or nanosleep(). */
void zap_poll_execute(struct zap_poll_action a);

/** CLOCK_MONOTONIC in nanoseconds. */
uint64_t zap_poll_now_ns(void);

#ifdef __cplusplus
}
#endif

#endif /* ZAP_POLLING_H */
