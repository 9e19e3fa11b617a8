/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap replay: apply the chosen prefix of the durable log to the state
 * machine. See replay.h. Accepted values wait in a small table, sorted by
 * slot, until a CHOSEN record covers them; the table holds at most the
 * Paxos window plus what a crash left unresolved.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

struct pending {
	uint64_t slot;
	uint64_t ballot;
	void *entry;
	uint64_t len;
};

struct replay {
	struct zap_txn_sm *sm;
	zap_txn_emit_fn emit;
	void *ctx;
	struct zap_replay_info *info;
	struct pending *p; /* sorted by slot */
	size_t n, cap;
};

static size_t pending_find(const struct replay *r, uint64_t slot)
{
	size_t a = 0, b = r->n;
	while (a < b) {
		size_t mid = a + (b - a) / 2;
		if (r->p[mid].slot < slot)
			a = mid + 1;
		else
			b = mid;
	}
	return a;
}

static int pending_put(struct replay *r, uint64_t slot, uint64_t ballot, const void *entry,
		       uint64_t len)
{
	if (slot <= r->info->applied_slot)
		return 0; /* already chosen and applied: a later accept cannot change it */
	size_t i = pending_find(r, slot);
	if (i < r->n && r->p[i].slot == slot && r->p[i].ballot > ballot)
		return 0;
	void *copy = malloc(len ? len : 1);
	if (copy == NULL)
		return -ENOMEM;
	memcpy(copy, entry, len);
	if (i < r->n && r->p[i].slot == slot) {
		free(r->p[i].entry);
	} else {
		if (r->n == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 64;
			struct pending *np = realloc(r->p, cap * sizeof(*np));
			if (np == NULL) {
				free(copy);
				return -ENOMEM;
			}
			r->p = np;
			r->cap = cap;
		}
		memmove(&r->p[i + 1], &r->p[i], (r->n - i) * sizeof(*r->p));
		r->n++;
	}
	r->p[i] = (struct pending){slot, ballot, copy, len};
	return 0;
}

/* Apply pending slots that are chosen and follow the last applied one. */
static void apply_chosen(struct replay *r)
{
	struct zap_replay_info *info = r->info;
	size_t done = 0;
	while (done < r->n && r->p[done].slot <= info->chosen_slot) {
		struct pending *e = &r->p[done];
		if (info->missing_slot != 0 || e->slot != info->applied_slot + 1) {
			if (info->missing_slot == 0)
				info->missing_slot = info->applied_slot + 1;
			break;
		}
		/* a rejected entry is rejected identically everywhere: not an error here */
		(void)zap_txn_sm_apply(r->sm, e->slot, e->entry, e->len, r->emit, r->ctx);
		info->applied_slot = e->slot;
		free(e->entry);
		done++;
	}
	if (info->missing_slot == 0 && info->applied_slot < info->chosen_slot && done == r->n)
		info->missing_slot = info->applied_slot + 1;
	memmove(r->p, r->p + done, (r->n - done) * sizeof(*r->p));
	r->n -= done;
}

static int on_record(uint8_t type, uint64_t slot, uint64_t ballot, const void *payload,
		     uint64_t len, void *ctx)
{
	struct replay *r = ctx;
	struct zap_replay_info *info = r->info;
	info->records++;
	switch (type) {
	case ZAP_LOG_PROMISE:
		if (ballot > info->promised_ballot)
			info->promised_ballot = ballot;
		return 0;
	case ZAP_LOG_ACCEPT:
		return pending_put(r, slot, ballot, payload, len);
	case ZAP_LOG_CHOSEN:
		if (slot > info->chosen_slot) {
			info->chosen_slot = slot;
			apply_chosen(r);
		}
		return 0;
	default:
		return 0; /* records of later modules */
	}
}

int zap_replay_open(const struct zap_log_params *lp, struct zap_txn_sm *sm, zap_txn_emit_fn emit,
		    void *ctx, struct zap_log **log_out, struct zap_replay_info *info, char *err,
		    size_t err_len)
{
	memset(info, 0, sizeof(*info));
	info->applied_slot = zap_txn_sm_applied_index(sm);
	struct replay r = {sm, emit, ctx, info, NULL, 0, 0};
	int rc = zap_log_open(lp, on_record, &r, log_out, err, err_len);
	info->accepted_pending = r.n;
	for (size_t i = 0; i < r.n; i++)
		free(r.p[i].entry);
	free(r.p);
	return rc;
}
