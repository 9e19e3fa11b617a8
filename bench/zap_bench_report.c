/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap-bench's report (zap_bench.h): the clients' counters and histograms
 * summed, one line on stdout, --json FILE (every figure and the options) and
 * --csv FILE (the histogram of all operations). bench/report.py and
 * bench/run.sh parse these: keep the line and the JSON keys as they are.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "zap_bench.h"
#include "zeo_bench_client.h"

/* What a result code means, for the error line. */
static const char *why(int rc)
{
	if (rc == ZEOB_E_MISMATCH)
		return "blob read back with other bytes";
	if (rc == ZEOB_E_SERVER)
		return "error reply";
	return rc > -4096 ? strerror(-rc) : "protocol";
}

/* The workers' results summed. */
struct totals {
	struct hist all, rd, wr;
	uint64_t ops, errors, conflicts, commits, behind, completed, unsent, mismatches;
	int first_error, fatal;
};

/* Figures derived from the totals and the window. */
struct figures {
	double wall, tput, user, sys, cpu_pct, cpu_us_op, crate;
	/* MB/s (10^6 bytes) of one operation: its bytes over its mean time; the
	 * write and read parts of a blob operation apart */
	double mb_s, write_mb_s, read_mb_s;
};

/*
 * Bytes one operation moves: objs x value_size for commits and appends, the
 * blob's size for OP_BLOB (written, then read back), 0 for loads.
 */
static uint64_t zb_bytes_per_op(void)
{
	switch (o.op) {
	case OP_COMMIT:
	case OP_COMMIT2PC:
	case OP_APPEND:
		return (uint64_t)o.objs * o.value_size;
	case OP_OVERWRITE:
		return o.value_size;
	case OP_BLOB:
		return o.blob_size;
	default:
		return 0;
	}
}

/* Bytes over a histogram's mean time, in MB/s; 0 when it is empty. */
static double mb_s(uint64_t bytes, const struct hist *h)
{
	double m = hist_mean(h);
	return h->count && m > 0 ? (double)bytes / m * 1e9 / 1e6 : 0;
}

static void lat_json(FILE *f, const char *name, const struct hist *h)
{
	fprintf(f,
		"\"%s\": {\"count\": %" PRIu64 ", \"min\": %" PRIu64
		", \"mean\": %.0f, \"p50\": %" PRIu64 ", \"p90\": %" PRIu64 ", \"p99\": %" PRIu64
		", \"p999\": %" PRIu64 ", \"max\": %" PRIu64 "}",
		name, h->count, h->count ? h->min : 0, hist_mean(h), hist_quantile(h, 0.5),
		hist_quantile(h, 0.9), hist_quantile(h, 0.99), hist_quantile(h, 0.999), h->max);
}

static double tv_s(struct timeval t)
{
	return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

static void sum_workers(const struct worker *workers, struct totals *t)
{
	memset(t, 0, sizeof(*t));
	hist_init(&t->all);
	hist_init(&t->rd);
	hist_init(&t->wr);
	for (unsigned i = 0; i < o.clients; i++) {
		const struct worker *w = &workers[i];
		hist_merge(&t->all, &w->all);
		hist_merge(&t->rd, &w->rd);
		hist_merge(&t->wr, &w->wr);
		t->ops += w->ops;
		t->errors += w->errors;
		t->conflicts += w->conflicts;
		t->commits += w->commits;
		t->behind += w->behind_ns;
		t->completed += w->completed;
		t->unsent += w->unsent;
		t->mismatches += w->mismatches;
		if (!t->first_error)
			t->first_error = w->first_error;
		if (!t->fatal)
			t->fatal = w->fatal;
	}
}

static void compute(const struct totals *t, const struct zb_window *win, struct figures *f)
{
	f->wall = (double)(win->m1 - win->m0) / 1e9;
	/* --iterations: over the time the operations took, not --duration */
	f->tput = o.iterations ? (f->wall > 0 ? (double)t->completed / f->wall : 0)
			       : (double)t->completed / o.duration;
	f->user = tv_s(win->ru1.ru_utime) - tv_s(win->ru0.ru_utime);
	f->sys = tv_s(win->ru1.ru_stime) - tv_s(win->ru0.ru_stime);
	f->cpu_pct = f->wall > 0 ? 100.0 * (f->user + f->sys) / f->wall : 0;
	f->cpu_us_op = t->completed ? (f->user + f->sys) * 1e6 / (double)t->completed : 0;
	f->crate = t->commits ? (double)t->conflicts / (double)t->commits : 0;
	uint64_t b = zb_bytes_per_op();
	f->mb_s = mb_s(b, &t->all);
	f->write_mb_s = o.op == OP_LOAD ? 0 : mb_s(b, &t->wr);
	f->read_mb_s = o.op == OP_BLOB ? mb_s(b, &t->rd) : 0;
}

static void print_line(const struct totals *t, const struct figures *g)
{
	const struct hist *all = &t->all;
	printf("%s %s %s c=%u%s: %.0f ops/s p50 %.1f us p90 %.1f p99 %.1f p99.9 %.1f max %.1f us"
	       " errors %" PRIu64 " unsent %" PRIu64 " conflicts %.1f%% loadgen cpu %.0f%%\n",
	       o.label[0] ? o.label : "-", target_names[o.target], op_names[o.op], o.clients,
	       o.rate > 0 ? " open" : "", g->tput, hist_quantile(all, 0.5) / 1e3,
	       hist_quantile(all, 0.9) / 1e3, hist_quantile(all, 0.99) / 1e3,
	       hist_quantile(all, 0.999) / 1e3, (double)all->max / 1e3, t->errors, t->unsent,
	       g->crate * 100, g->cpu_pct);
	if (o.iterations && zb_bytes_per_op() && o.op != OP_MIX) {
		printf("%s %s: %" PRIu64 " ops of %.1f MB: %.3f s/op (min %.3f max %.3f) %.1f MB/s",
		       o.label[0] ? o.label : "-", op_names[o.op], all->count,
		       (double)zb_bytes_per_op() / 1e6, hist_mean(all) / 1e9,
		       (double)(all->count ? all->min : 0) / 1e9, (double)all->max / 1e9, g->mb_s);
		if (o.op == OP_BLOB)
			printf(
			    "; write %.3f s/op %.1f MB/s, read back %.3f s/op %.1f MB/s, %" PRIu64
			    " mismatches",
			    hist_mean(&t->wr) / 1e9, g->write_mb_s, hist_mean(&t->rd) / 1e9,
			    g->read_mb_s, t->mismatches);
		printf("\n");
	}
	if (zb_idle.requested)
		printf("%s idle ZEO connections: %u of %u held (%u tried, %u refused, %u closed by"
		       " the server during the run)\n",
		       o.label[0] ? o.label : "-", zb_idle.held, zb_idle.requested, zb_idle.tried,
		       zb_idle.refused, zb_idle.lost);
	if (t->errors)
		fprintf(stderr, "zap-bench: %" PRIu64 " errors, first %d (%s)\n", t->errors,
			t->first_error, why(t->first_error));
	if (t->mismatches)
		fprintf(stderr,
			"zap-bench: %" PRIu64 " blobs read back with other bytes than written\n",
			t->mismatches);
}

static int write_json(const struct totals *t, const struct figures *g)
{
	FILE *f = fopen(o.json, "w");
	if (!f) {
		perror(o.json);
		return 1;
	}
	fprintf(f,
		"{\"label\": \"%s\", \"target\": \"%s\", \"op\": \"%s\", \"dist\": \"%s\","
		" \"mode\": \"%s\", \"clients\": %u, \"rate_target\": %.1f,"
		" \"config\": {\"addr\": \"%s\", \"objects\": %" PRIu64 ", \"objs_per_txn\": %u,"
		" \"value_size\": %u, \"write_pct\": %u, \"hot\": %u, \"zipf_theta\": %.3f,"
		" \"duration_s\": %.3f, \"warmup_s\": %.3f, \"populate\": %" PRIu64 ","
		" \"iterations\": %u, \"blob_size\": %" PRIu64 "},"
		" \"ops\": %" PRIu64 ", \"completed_in_window\": %" PRIu64 ", \"unsent\": %" PRIu64
		", \"errors\": %" PRIu64 ", \"first_error\": %d,"
		" \"commits\": %" PRIu64 ", \"conflicts\": %" PRIu64 ", \"conflict_rate\": %.5f,"
		" \"throughput_ops_s\": %.1f, \"mean_send_delay_ns\": %.0f,",
		o.label, target_names[o.target], op_names[o.op], o.zipf ? "zipf" : "uniform",
		o.rate > 0 ? "open" : "closed", o.clients, o.rate, o.addr, o.objects, o.objs,
		o.value_size, o.write_pct, o.hot, o.zipf_theta, o.duration, o.warmup, o.populate,
		o.iterations, o.op == OP_BLOB ? o.blob_size : 0, t->ops, t->completed, t->unsent,
		t->errors, t->first_error, t->commits, t->conflicts, g->crate, g->tput,
		t->ops ? (double)t->behind / (double)t->ops : 0.0);
	lat_json(f, "latency_ns", &t->all);
	fprintf(f, ", ");
	lat_json(f, "read_latency_ns", &t->rd);
	fprintf(f, ", ");
	lat_json(f, "write_latency_ns", &t->wr);
	fprintf(f,
		", \"idle_conns\": {\"requested\": %u, \"tried\": %u, \"held\": %u,"
		" \"refused\": %u, \"lost\": %u, \"held_at_end\": %u, \"first_error\": %d,"
		" \"open_s\": %.3f}",
		zb_idle.requested, zb_idle.tried, zb_idle.held, zb_idle.refused, zb_idle.lost,
		zb_idle.held - zb_idle.lost, zb_idle.first_error, zb_idle.open_s);
	fprintf(f,
		", \"bytes_per_op\": %" PRIu64 ", \"mb_s\": %.2f, \"write_mb_s\": %.2f,"
		" \"read_mb_s\": %.2f, \"mismatches\": %" PRIu64,
		zb_bytes_per_op(), g->mb_s, g->write_mb_s, g->read_mb_s, t->mismatches);
	fprintf(f,
		", \"loadgen_cpu\": {\"user_s\": %.3f, \"sys_s\": %.3f, \"wall_s\": %.3f,"
		" \"cpu_pct\": %.1f, \"cpu_us_per_op\": %.2f}}\n",
		g->user, g->sys, g->wall, g->cpu_pct, g->cpu_us_op);
	fclose(f);
	return 0;
}

static int write_csv(const struct hist *all)
{
	FILE *f = fopen(o.csv, "w");
	if (!f) {
		perror(o.csv);
		return 1;
	}
	hist_write_csv(all, f);
	fclose(f);
	return 0;
}

int zb_report(const struct worker *workers, const struct zb_window *win, int *fatal)
{
	static struct totals t;
	struct figures g;
	sum_workers(workers, &t);
	compute(&t, win, &g);
	*fatal = t.fatal;
	print_line(&t, &g);
	if (o.json && write_json(&t, &g) != 0)
		return 1;
	if (o.csv && write_csv(&t.all) != 0)
		return 1;
	return 0;
}
