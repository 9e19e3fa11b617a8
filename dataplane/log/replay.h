/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap replay: rebuild a node's replicated state from its durable log.
 *
 * The log holds the acceptor's records (ZAP_LOG_PROMISE, ZAP_LOG_ACCEPT,
 * ZAP_LOG_CHOSEN). Replay keeps the latest accepted value of every slot
 * until a CHOSEN record covers it, then applies the chosen slots to the
 * transaction state machine in slot order, as the apply stage does live.
 * What is accepted but not yet known chosen is left for consensus to settle
 * (counted in the info); a chosen slot whose value is not in this log stops
 * the apply there (the node then catches up from its peers).
 *
 * Threading: runs once at start, before the stages, on one thread.
 */
#ifndef ZAP_REPLAY_H
#define ZAP_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "txn/txn.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What replay found. */
struct zap_replay_info {
	uint64_t records;          /**< log records read */
	uint64_t promised_ballot;  /**< highest ballot promised (0: none) */
	uint64_t chosen_slot;      /**< highest slot known chosen */
	uint64_t applied_slot;     /**< last slot applied to the state machine */
	uint64_t accepted_pending; /**< accepted slots not known chosen */
	uint64_t missing_slot;     /**< first chosen slot whose value is absent, 0: none */
};

/**
 * Open the log in @p lp->dir and apply what it holds to @p sm (a fresh
 * state machine over an empty store). Results of the replayed entries go to
 * @p emit (may be NULL).
 *
 * @param log_out  the open log, positioned for appends.
 * @return 0; the errors of zap_log_open() (message in @p err); -ENOMEM.
 */
int zap_replay_open(const struct zap_log_params *lp, struct zap_txn_sm *sm, zap_txn_emit_fn emit,
		    void *ctx, struct zap_log **log_out, struct zap_replay_info *info, char *err,
		    size_t err_len);

#ifdef __cplusplus
}
#endif
#endif /* ZAP_REPLAY_H */
