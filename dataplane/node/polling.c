/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap polling policy (see polling.h). The idle time is measured from the last
 * iteration that did work; the phase follows from it alone, except the sleep
 * length, which doubles per sleep so a long idle stretch costs few wake-ups.
 */
#include "polling.h"

#include <sched.h>
#include <time.h>

#define NS_PER_US 1000ull
#define NS_PER_S 1000000000ull

void zap_poll_init(struct zap_poll *p, enum zap_polling policy, const struct zap_polling_config *c,
		   uint64_t now_ns)
{
	*p = (struct zap_poll){
	    .policy = policy,
	    .spin_ns = (uint64_t)c->spin_us * NS_PER_US,
	    .yield_ns = (uint64_t)c->yield_us * NS_PER_US,
	    .sleep_max_ns = (uint64_t)c->sleep_us * NS_PER_US,
	    .last_work_ns = now_ns,
	};
}

struct zap_poll_action zap_poll_next(struct zap_poll *p, uint64_t now_ns, bool did_work)
{
	struct zap_poll_action a = {.kind = ZAP_POLL_SPIN};
	if (did_work || p->policy == ZAP_POLLING_BUSY) {
		p->last_work_ns = now_ns;
		p->next_sleep_ns = 0;
		p->stats.spins++;
		return a;
	}
	uint64_t idle_ns = now_ns > p->last_work_ns ? now_ns - p->last_work_ns : 0;
	if (idle_ns < p->spin_ns) {
		p->stats.spins++;
		return a;
	}
	/* With sleep_us 0 the policy never sleeps: it keeps yielding. */
	if (idle_ns < p->spin_ns + p->yield_ns || p->sleep_max_ns == 0) {
		a.kind = ZAP_POLL_YIELD;
		p->stats.yields++;
		return a;
	}
	if (p->next_sleep_ns == 0)
		p->next_sleep_ns = ZAP_POLL_SLEEP_FIRST_US * NS_PER_US;
	if (p->next_sleep_ns > p->sleep_max_ns)
		p->next_sleep_ns = p->sleep_max_ns;
	a.kind = ZAP_POLL_SLEEP;
	a.sleep_ns = p->next_sleep_ns;
	p->next_sleep_ns *= 2;
	p->stats.sleeps++;
	p->stats.slept_ns += a.sleep_ns;
	return a;
}

void zap_poll_execute(struct zap_poll_action a)
{
	switch (a.kind) {
	case ZAP_POLL_SPIN:
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
		break;
	case ZAP_POLL_YIELD:
		sched_yield();
		break;
	case ZAP_POLL_SLEEP: {
		struct timespec ts = {.tv_sec = (time_t)(a.sleep_ns / NS_PER_S),
				      .tv_nsec = (long)(a.sleep_ns % NS_PER_S)};
		nanosleep(&ts, NULL);
		break;
	}
	}
}

uint64_t zap_poll_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}
