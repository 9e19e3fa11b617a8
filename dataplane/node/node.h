/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap node: `zapd --config FILE --node ID`, one box of a running cluster.
 *
 * zap_node_run() brings the node up (EAL and ports from the YAML, the wire
 * contexts, the durable log replayed into the Paxos engine, a fresh store and
 * transaction state machine), runs the pipeline stages io -> paxos -> log ->
 * apply on the lcores the YAML names (docs/operations.md, "The pipeline"),
 * serves the native client protocol on a kernel UDP socket from one non-EAL
 * thread, and on SIGINT / SIGTERM shuts down with the log durable.
 *
 * Threading: call zap_node_run() once, from the main thread; it returns when
 * the node has stopped.
 */
#ifndef ZAP_NODE_H
#define ZAP_NODE_H

#include <stdint.h>

#include "config.h"

/** zapd's version: the build passes the meson project version (-DZAP_VERSION="..."). */
#ifndef ZAP_VERSION
#define ZAP_VERSION "0.1.0"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Run node @p node_id of @p cfg until SIGINT / SIGTERM.
 *
 * @param eal_log_level  EAL --log-level value, or NULL for none
 * @return 0 after a clean stop; a negative errno if start-up failed (a
 *         message naming the step went to stderr).
 */
int zap_node_run(const struct zap_config *cfg, uint16_t node_id, const char *eal_log_level);

/**
 * The command line zapd was started with: a node that must restart (it took
 * a peer's snapshot as its checkpoint, docs/log.md) runs it again in the same
 * process (same pid) once stopped. NULL: it exits instead.
 */
void zap_node_set_argv(char **argv);

/** After zap_node_run() returned: run zapd again if the node asked to restart. */
void zap_node_reexec_if_asked(void);

#ifdef __cplusplus
}
#endif
#endif /* ZAP_NODE_H */
