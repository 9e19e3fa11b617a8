/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap-bench-apply: throughput of the apply stage alone (no log, no network):
 * ONESHOT entries, pre-encoded, applied by the transaction state machine to
 * the store, one after another as the apply lcore does. Every entry creates
 * new objects, so every one commits (the figure says how many did).
 *
 *   zap-bench-apply [ENTRIES] [OBJECTS_PER_TXN] [RECORD_BYTES]
 *                   (defaults 200000, 1, 100; --help: the usage)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "txn/entry.h"
#include "store/store.h"
#include "txn/txn.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct counts {
	uint64_t ok, other;
	uint64_t by_status[ZAP_TXN_STATUS_COUNT];
};

static void on_result(const struct zap_txn_result *r, void *ctx)
{
	struct counts *c = ctx;
	if (r->status < ZAP_TXN_STATUS_COUNT)
		c->by_status[r->status]++;
	if (r->status == ZAP_TXN_OK)
		c->ok++;
	else
		c->other++;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: zap-bench-apply [ENTRIES] [OBJECTS_PER_TXN] [RECORD_BYTES]\n"
		   "  ENTRIES          ONESHOT entries applied, at least 1 (default 200000)\n"
		   "  OBJECTS_PER_TXN  new objects per entry, 1..1000 (default 1)\n"
		   "  RECORD_BYTES     bytes per object record, 0..1048576 (default 100)\n"
		   "  -h, --help       this text\n");
}

/* argv[i] as a number into *out, or *out unchanged when there is no argv[i]. */
static int arg_u64(int argc, char **argv, int i, uint64_t *out)
{
	if (i >= argc)
		return 0;
	char *end;
	errno = 0;
	uint64_t v = strtoull(argv[i], &end, 0);
	if (errno != 0 || end == argv[i] || *end != '\0' || argv[i][0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	uint64_t n = 200000u, per64 = 1u, bytes64 = 100u;
	if (argc > 4 || arg_u64(argc, argv, 1, &n) != 0 || arg_u64(argc, argv, 2, &per64) != 0 ||
	    arg_u64(argc, argv, 3, &bytes64) != 0 || n == 0 || per64 == 0 || per64 > 1000 ||
	    bytes64 > (1u << 20)) {
		fprintf(stderr, "zap-bench-apply: bad arguments\n");
		usage(stderr);
		return 2;
	}
	uint32_t per = (uint32_t)per64;
	uint32_t bytes = (uint32_t)bytes64;
	struct zap_store_params sp = {0};
	sp.size_bytes = n * per * ((uint64_t)bytes * 5 / 4 + 256) + (256u << 20);
	struct zap_store *store;
	struct zap_txn_sm *sm;
	struct zap_txn_params tp = {0};
	if (zap_store_create(&sp, &store) != 0 || zap_txn_sm_create(&tp, store, &sm) != 0) {
		fprintf(stderr, "zap-bench-apply: cannot create store or state machine\n");
		return 1;
	}
	/* Encode every entry first: the figure is the apply stage alone. */
	uint8_t *rec = calloc(1, bytes ? bytes : 1);
	struct zap_entry_store *st = calloc(per, sizeof(*st));
	uint8_t **ent = calloc(n, sizeof(*ent));
	size_t *len = calloc(n, sizeof(*len));
	for (uint64_t i = 0; i < n; i++) {
		struct zap_entry e = {.type = ZAP_ENTRY_ONESHOT, .node = 1, .client_id = 1 + i % 64,
				      .seq = 1 + i / 64, .clock_ns = 1700000000000000000ull + i};
		e.u.txn.txn_id = i + 1;
		for (uint32_t k = 0; k < per; k++)
			st[k] = (struct zap_entry_store){i * per + k, 0, 0, rec, bytes};
		e.u.txn.stores = st;
		e.u.txn.n_stores = per;
		len[i] = zap_entry_size(&e);
		ent[i] = malloc(len[i]);
		if (ent[i] == NULL || zap_entry_encode(&e, ent[i], len[i]) < 0) {
			fprintf(stderr, "zap-bench-apply: encode failed\n");
			return 1;
		}
	}
	struct counts c = {0};
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < n; i++)
		zap_txn_sm_apply(sm, i + 1, ent[i], len[i], on_result, &c);
	uint64_t dt = now_ns() - t0;
	printf("zap-bench-apply: %llu ONESHOT entries x %u object(s) x %u B: %.0f entries/s "
	       "(%.2f us each); %llu committed, %llu not\n",
	       (unsigned long long)n, per, bytes, (double)n / ((double)dt / 1e9),
	       (double)dt / 1e3 / (double)n, (unsigned long long)c.ok,
	       (unsigned long long)c.other);
	for (unsigned k = 0; k < ZAP_TXN_STATUS_COUNT; k++)
		if (k != ZAP_TXN_OK && c.by_status[k] != 0)
			printf("  %llu %s\n", (unsigned long long)c.by_status[k], zap_txn_status_name(k));
	for (uint64_t i = 0; i < n; i++)
		free(ent[i]);
	free(ent);
	free(len);
	free(st);
	free(rec);
	zap_txn_sm_destroy(sm);
	zap_store_close(store);
	return 0;
}
