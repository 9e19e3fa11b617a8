/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * The single-node demo run by `zapd --demo` (and `make demo`): ZODB-style
 * transactions committed through the durable log, the transaction state
 * machine and the shared-memory store, read back, then recovered from the
 * log into a fresh store.
 */
#ifndef ZAP_DEMO_H
#define ZAP_DEMO_H

#include <stdint.h>

#include "config.h"

struct zap_demo_opts {
	uint16_t node_id; /**< node of the config whose log dir is used; 0 = first */
	int keep;         /**< keep the data directory afterwards */
};

/**
 * Run the demo, printing what it does to stdout.
 * @return 0; a negative errno when a step failed (the reason is printed).
 */
int zap_demo_run(const struct zap_config *cfg, const struct zap_demo_opts *o);

#endif /* ZAP_DEMO_H */
