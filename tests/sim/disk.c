/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap-sim disk: the durable log of one simulated node.
 *
 * PERSIST outputs are appended in order. Records [0, synced) are durable;
 * the rest are written but not yet synced. When records are waiting and no
 * sync is running, a sync starts: it covers every record appended so far
 * and completes after a random delay (sync_min_ns..sync_max_ns), when the
 * engine is told with zap_paxos_persisted(token of the last one covered).
 * A crash keeps the synced records and, like a real disk that may have
 * written part of its cache, a random prefix of the unsynced ones (often
 * none). A sync that completes for an older incarnation is ignored.
 * Crash dice: right after a promise is synced (and so answered) the node
 * may be crashed within 2 ms, before the next ballot overtakes it.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void disk_start_sync(struct sim *s, struct sim_node *n)
{
	struct sim_disk *d = &n->disk;
	if (d->sync_in_flight || d->synced == d->n)
		return;
	d->sync_in_flight = 1;
	uint64_t delay = sim_rng_range(&s->rng, s->sync_min_ns, s->sync_max_ns);
	sim_schedule(s, s->now_ns + delay, EV_SYNC, n->id, n->gen, d->n, NULL);
}

void sim_disk_append(struct sim *s, struct sim_node *n, const struct zap_paxos_out *o)
{
	struct sim_disk *d = &n->disk;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 64;
		d->recs = sim_xrealloc(d->recs, d->cap * sizeof(*d->recs));
	}
	struct sim_rec *r = &d->recs[d->n++];
	r->type = o->rec_type;
	r->slot = o->slot;
	r->ballot = o->ballot;
	r->len = o->len;
	r->token = o->token;
	r->data = NULL;
	if (o->len) {
		r->data = sim_xrealloc(NULL, o->len);
		memcpy(r->data, o->data, o->len);
	}
	sim_trace(s, TR_PERSIST, o->rec_type, n->id, 0, o->slot, o->ballot, o->token);
	disk_start_sync(s, n);
}

void sim_disk_sync_done(struct sim *s, struct sim_node *n, uint64_t covered)
{
	struct sim_disk *d = &n->disk;
	d->sync_in_flight = 0;
	if (covered > d->n)
		covered = d->n;
	if (covered > d->synced) {
		int promise = 0;
		for (size_t i = d->synced; i < covered; i++)
			promise |= d->recs[i].type == 1;
		d->synced = covered;
		uint64_t token = d->recs[covered - 1].token;
		sim_trace(s, TR_SYNC, 0, n->id, 0, covered, token, 0);
		n->in_engine = 1;
		zap_paxos_persisted(n->px, s->now_ns, token);
		n->in_engine = 0;
		sim_node_drain(s, n);
		/* a crash just after a promise was answered: what forgetting it needs */
		if (promise && !s->quiet && sim_rng_ppm(&s->rng, s->crash_after_persist_ppm * 4))
			sim_schedule(s, s->now_ns + sim_rng_range(&s->rng, 0, 2 * SIM_NS_PER_MS),
				     EV_CRASH, n->id, n->gen, 0, NULL);
	}
	disk_start_sync(s, n);
}

static void disk_truncate(struct sim_disk *d, size_t keep)
{
	for (size_t i = keep; i < d->n; i++)
		free(d->recs[i].data);
	d->n = keep;
	if (d->synced > keep)
		d->synced = keep;
}

void sim_disk_crash(struct sim *s, struct sim_node *n)
{
	struct sim_disk *d = &n->disk;
	size_t keep = d->synced;
	if (d->n > d->synced && sim_rng_below(&s->rng, 4) == 0)
		keep += sim_rng_below(&s->rng, d->n - d->synced + 1);
	disk_truncate(d, keep);
	d->synced = keep;
	d->sync_in_flight = 0;
}

void sim_disk_wipe(struct sim_disk *d)
{
	disk_truncate(d, 0);
	free(d->recs);
	memset(d, 0, sizeof(*d));
}
