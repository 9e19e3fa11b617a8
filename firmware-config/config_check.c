/*
 * config_check.c: from the structs libcyaml loaded to struct zap_config.
 *
 * Applies the defaults, converts the textual values (sizes, addresses, the
 * secret) and checks every rule that involves more than one key: cluster
 * size, unique node ids and names, lcore roles, port reuse and coverage,
 * election timeout against heartbeat, store backing against its directory.
 * The schema walk has already guaranteed that the shape is right, so here
 * every required pointer is non-NULL. Errors are located through the tree by
 * key path (ytree_line) and the first one wins. The defaults and limits below
 * are the ones docs/config.md documents; change both together.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define TiB (UINT64_C(1) << 40)

/* Defaults. */
#define DEF_SPIN_US 50
#define DEF_YIELD_US 200
#define DEF_SLEEP_US 1000
#define DEF_STORE_BYTES (1 * GiB)
#define DEF_MAX_RECORD_BYTES (16 * MiB)
#define DEF_SEGMENT_BYTES (64 * MiB)
#define DEF_GROUP_COMMIT_US 100
#define DEF_GROUP_COMMIT_MAX 64
#define DEF_WINDOW 256
#define DEF_BATCH_COUNT 64
#define DEF_BATCH_BYTES (1024 * KiB)
#define DEF_HEARTBEAT_MS 50
#define DEF_ELECTION_TIMEOUT_MS 500
#define DEF_LEASE_MS 10000
#define DEF_MAX_SESSIONS 4096
#define DEF_TXN_MAX_BYTES (2 * GiB)
#define DEF_ZEO_IO_THREADS 0 /* from the CPU count */
#define DEF_ZEO_MAX_CONNECTIONS 4096
#define DEF_ZEO_MAX_OUTPUT_BYTES (16 * MiB)
#define DEF_TXN_RING_SLOTS 65536u
#define DEF_TXN_MAX_OBJECTS 65536u
#define DEF_TXN_MAX_TEXT_BYTES (1 * MiB)
#define DEF_ZEO_MAX_MESSAGE_BYTES (64 * MiB)
#define DEF_CHECKPOINT_SLOTS 1000000u
#define DEF_CHECKPOINT_BYTES (512 * MiB)
#define DEF_CHECKPOINT_SECONDS 900u

/* Limits. */
#define MAX_POLL_US 1000000u
#define MIN_STORE_BYTES (1 * MiB)
#define MAX_STORE_BYTES (16 * TiB)
#define HUGEPAGE_BYTES (2 * MiB)
#define MIN_SEGMENT_BYTES (1 * MiB)
#define MAX_SEGMENT_BYTES (64 * GiB)
#define MAX_GROUP_COMMIT_US 1000000u
#define MAX_GROUP_COMMIT 65536u
#define MAX_WINDOW 65536u
#define MAX_BATCH_COUNT 65536u
#define MAX_BATCH_BYTES (16 * MiB)
#define MAX_HEARTBEAT_MS 60000u
#define MAX_ELECTION_TIMEOUT_MS 600000u
#define MAX_LEASE_MS 3600000u
#define MAX_SESSIONS (1u << 24)
#define MIN_TXN_MAX_BYTES (64 * KiB)
#define MAX_TXN_MAX_BYTES (64 * GiB)
#define MAX_ZEO_IO_THREADS 64u
#define MAX_ZEO_CONNECTIONS 65536u
#define MIN_ZEO_OUTPUT_BYTES (64 * KiB)
#define MAX_ZEO_OUTPUT_BYTES (4 * GiB)
#define MAX_TXN_OBJECTS (1u << 20)
#define MIN_TXN_TEXT_BYTES (1 * KiB)
#define MAX_TXN_TEXT_BYTES (64 * MiB)
#define MIN_ZEO_MESSAGE_BYTES (1 * MiB)
#define MAX_ZEO_MESSAGE_BYTES (1 * GiB)
#define MIN_TXN_RING_SLOTS 2u
#define MAX_TXN_RING_SLOTS (1u << 24)
#define MIN_CHECKPOINT_BYTES (1 * MiB)
#define MAX_CHECKPOINT_BYTES (1 * TiB)
#define MAX_CHECKPOINT_SLOTS 4000000000u
#define MAX_CHECKPOINT_SECONDS (7u * 24 * 3600)

#define OPT_OR(p, def) ((p) != NULL ? *(p) : (def))

struct zcfg_ctx {
	const struct ynode *root;
	struct zcfg_err *e;
};

/* Error at the line of the key path @p path. */
#define ERR_AT(x, path, ...) zcfg_error((x)->e, ytree_line((x)->root, "%s", (path)), __VA_ARGS__)

static int check_range(struct zcfg_ctx *x, const char *path, uint64_t v, uint64_t lo, uint64_t hi)
{
	if (v < lo || v > hi)
		return ERR_AT(x, path, "%s: %" PRIu64 " is out of range (%" PRIu64 "..%" PRIu64 ")",
			      path, v, lo, hi);
	return 0;
}

/* Optional u32 with default and range. */
static int opt_u32(struct zcfg_ctx *x, const char *path, const uint32_t *p, uint32_t def,
		   uint32_t lo, uint32_t hi, uint32_t *out)
{
	*out = OPT_OR(p, def);
	return p != NULL ? check_range(x, path, *p, lo, hi) : 0;
}

/* Optional size string with default and range. */
static int opt_size(struct zcfg_ctx *x, const char *path, const char *s, uint64_t def, uint64_t lo,
		    uint64_t hi, uint64_t *out)
{
	int rc;

	*out = def;
	if (s == NULL)
		return 0;
	rc = zcfg_parse_size(s, out);
	if (rc == -ERANGE)
		return ERR_AT(x, path, "%s: '%s' is too large", path, s);
	if (rc < 0)
		return ERR_AT(x, path,
			      "%s: '%s' is not a size (bytes, or a number with K, M, G or T)", path,
			      s);
	if (*out < lo || *out > hi)
		return ERR_AT(x, path, "%s: %s is out of range (%" PRIu64 "..%" PRIu64 " bytes)",
			      path, s, lo, hi);
	return 0;
}

static char *xstrdup(struct zcfg_ctx *x, const char *s, int *rc)
{
	char *p = strdup(s);

	if (p == NULL && *rc == 0) {
		zcfg_error(x->e, 0, "out of memory");
		*rc = -ENOMEM;
	}
	return p;
}

/* ---- cluster, sections -------------------------------------------------- */

static int build_cluster(struct zcfg_ctx *x, const struct raw_cluster *r, struct zap_config *c)
{
	int rc;

	c->cluster.id = r->id;
	if (r->id == 0)
		return ERR_AT(x, "cluster.id", "cluster.id: must not be 0");
	rc = zcfg_parse_hex(r->secret, c->cluster.secret, ZAP_CONFIG_SECRET_MAX_BYTES,
			    &c->cluster.secret_len);
	if (rc == -ERANGE)
		return ERR_AT(x, "cluster.secret", "cluster.secret: longer than %d bytes",
			      ZAP_CONFIG_SECRET_MAX_BYTES);
	if (rc < 0)
		return ERR_AT(x, "cluster.secret",
			      "cluster.secret: must be an even number of hex digits");
	if (c->cluster.secret_len < ZAP_CONFIG_SECRET_MIN_BYTES)
		return ERR_AT(x, "cluster.secret",
			      "cluster.secret: too short (%zu bytes); at least %d bytes "
			      "(%d hex digits) are required",
			      c->cluster.secret_len, ZAP_CONFIG_SECRET_MIN_BYTES,
			      2 * ZAP_CONFIG_SECRET_MIN_BYTES);
	return 0;
}

static int build_polling(struct zcfg_ctx *x, const struct raw_polling *r, struct zap_config *c)
{
	static const struct raw_polling none;
	int rc;

	if (r == NULL)
		r = &none;
	rc = opt_u32(x, "polling.spin_us", r->spin_us, DEF_SPIN_US, 0, MAX_POLL_US,
		     &c->polling.spin_us);
	if (rc == 0)
		rc = opt_u32(x, "polling.yield_us", r->yield_us, DEF_YIELD_US, 0, MAX_POLL_US,
			     &c->polling.yield_us);
	if (rc == 0)
		rc = opt_u32(x, "polling.sleep_us", r->sleep_us, DEF_SLEEP_US, 1, MAX_POLL_US,
			     &c->polling.sleep_us);
	return rc;
}

static int build_store(struct zcfg_ctx *x, const struct raw_store *r, struct zap_config *c)
{
	static const struct raw_store none;
	struct zap_store_config *s = &c->store;
	int rc = 0;

	if (r == NULL)
		r = &none;
	rc = opt_size(x, "store.size", r->size, DEF_STORE_BYTES, MIN_STORE_BYTES, MAX_STORE_BYTES,
		      &s->size_bytes);
	if (rc == 0)
		rc = opt_size(x, "store.max_record", r->max_record, DEF_MAX_RECORD_BYTES, 1,
			      MAX_STORE_BYTES, &s->max_record_bytes);
	if (rc == 0)
		rc = opt_u32(x, "store.txn_ring_slots", r->txn_ring_slots, DEF_TXN_RING_SLOTS,
			     MIN_TXN_RING_SLOTS, MAX_TXN_RING_SLOTS, &s->txn_ring_slots);
	if (rc < 0)
		return rc;
	if (s->max_record_bytes > s->size_bytes / 2)
		return ERR_AT(x, r->max_record ? "store.max_record" : "store.size",
			      "store.max_record (%" PRIu64 " bytes) must be at most half of "
			      "store.size (%" PRIu64 " bytes)",
			      s->max_record_bytes, s->size_bytes);
	s->backing = (enum zap_store_backing)OPT_OR(r->backing, ZAP_STORE_BACKING_MEMFD);
	if (s->backing == ZAP_STORE_BACKING_HUGETLBFS) {
		if (r->hugetlbfs_dir == NULL)
			return ERR_AT(x, "store.backing",
				      "store: backing hugetlbfs needs hugetlbfs_dir");
		if (r->hugetlbfs_dir[0] != '/')
			return ERR_AT(x, "store.hugetlbfs_dir",
				      "store.hugetlbfs_dir: must be an absolute path");
		if (s->size_bytes % HUGEPAGE_BYTES != 0)
			return ERR_AT(x, "store.size",
				      "store.size: must be a multiple of 2 MiB with hugetlbfs");
		s->hugetlbfs_dir = xstrdup(x, r->hugetlbfs_dir, &rc);
	} else if (r->hugetlbfs_dir != NULL) {
		return ERR_AT(x, "store.hugetlbfs_dir",
			      "store.hugetlbfs_dir: only valid with backing: hugetlbfs");
	}
	return rc;
}

static int build_log(struct zcfg_ctx *x, const struct raw_log *r, struct zap_config *c)
{
	struct zap_log_config *l = &c->log;
	int rc = 0;

	if (r->dir[0] == '\0')
		return ERR_AT(x, "log.dir", "log.dir: must not be empty");
	l->durability = (enum zap_durability)OPT_OR(r->durability, ZAP_DURABILITY_FSYNC);
	rc = opt_size(x, "log.segment_size", r->segment_size, DEF_SEGMENT_BYTES, MIN_SEGMENT_BYTES,
		      MAX_SEGMENT_BYTES, &l->segment_bytes);
	if (rc == 0)
		rc = opt_u32(x, "log.group_commit_us", r->group_commit_us, DEF_GROUP_COMMIT_US, 0,
			     MAX_GROUP_COMMIT_US, &l->group_commit_us);
	if (rc == 0)
		rc = opt_u32(x, "log.group_commit_max", r->group_commit_max, DEF_GROUP_COMMIT_MAX,
			     1, MAX_GROUP_COMMIT, &l->group_commit_max);
	uint32_t slots = 0;
	if (rc == 0)
		rc = opt_u32(x, "log.checkpoint_slots", r->checkpoint_slots, DEF_CHECKPOINT_SLOTS, 0,
			     MAX_CHECKPOINT_SLOTS, &slots);
	l->checkpoint_slots = slots;
	if (rc == 0 && r->checkpoint_bytes != NULL && strcmp(r->checkpoint_bytes, "0") == 0)
		l->checkpoint_bytes = 0; /* that trigger off */
	else if (rc == 0)
		rc = opt_size(x, "log.checkpoint_bytes", r->checkpoint_bytes, DEF_CHECKPOINT_BYTES,
			      MIN_CHECKPOINT_BYTES, MAX_CHECKPOINT_BYTES, &l->checkpoint_bytes);
	if (rc == 0)
		rc = opt_u32(x, "log.checkpoint_seconds", r->checkpoint_seconds,
			     DEF_CHECKPOINT_SECONDS, 0, MAX_CHECKPOINT_SECONDS,
			     &l->checkpoint_seconds);
	if (rc == 0)
		l->dir = xstrdup(x, r->dir, &rc);
	return rc;
}

static int build_paxos(struct zcfg_ctx *x, const struct raw_paxos *r, struct zap_config *c)
{
	static const struct raw_paxos none;
	struct zap_paxos_settings *p = &c->paxos;
	uint64_t batch_bytes = DEF_BATCH_BYTES;
	int rc;

	if (r == NULL)
		r = &none;
	rc = opt_u32(x, "paxos.window", r->window, DEF_WINDOW, 1, MAX_WINDOW, &p->window);
	if (rc == 0)
		rc = opt_u32(x, "paxos.batch_count", r->batch_count, DEF_BATCH_COUNT, 1,
			     MAX_BATCH_COUNT, &p->batch_count);
	if (rc == 0)
		rc = opt_size(x, "paxos.batch_bytes", r->batch_bytes, DEF_BATCH_BYTES, 1,
			      MAX_BATCH_BYTES, &batch_bytes);
	p->batch_bytes = (uint32_t)batch_bytes;
	if (rc == 0)
		rc = opt_u32(x, "paxos.heartbeat_ms", r->heartbeat_ms, DEF_HEARTBEAT_MS, 1,
			     MAX_HEARTBEAT_MS, &p->heartbeat_ms);
	if (rc == 0)
		rc = opt_u32(x, "paxos.election_timeout_ms", r->election_timeout_ms,
			     DEF_ELECTION_TIMEOUT_MS, 1, MAX_ELECTION_TIMEOUT_MS,
			     &p->election_timeout_ms);
	if (rc == 0 && p->election_timeout_ms <= p->heartbeat_ms)
		return ERR_AT(
		    x, r->election_timeout_ms ? "paxos.election_timeout_ms" : "paxos.heartbeat_ms",
		    "paxos.election_timeout_ms (%u) must exceed paxos.heartbeat_ms (%u)",
		    p->election_timeout_ms, p->heartbeat_ms);
	return rc;
}

static int build_txn(struct zcfg_ctx *x, const struct raw_txn *r, struct zap_config *c)
{
	static const struct raw_txn none;
	int rc;

	if (r == NULL)
		r = &none;
	rc = opt_u32(x, "txn.lease_ms", r->lease_ms, DEF_LEASE_MS, 1, MAX_LEASE_MS,
		     &c->txn.lease_ms);
	if (rc == 0)
		rc = opt_u32(x, "txn.max_sessions", r->max_sessions, DEF_MAX_SESSIONS, 1,
			     MAX_SESSIONS, &c->txn.max_sessions);
	if (rc == 0)
		rc = opt_size(x, "txn.max_bytes", r->max_bytes, DEF_TXN_MAX_BYTES,
			      MIN_TXN_MAX_BYTES, MAX_TXN_MAX_BYTES, &c->txn.max_bytes);
	if (rc == 0)
		rc = opt_u32(x, "txn.max_objects", r->max_objects, DEF_TXN_MAX_OBJECTS, 1,
			     MAX_TXN_OBJECTS, &c->txn.max_objects);
	uint64_t text = 0;
	if (rc == 0)
		rc = opt_size(x, "txn.max_text_bytes", r->max_text_bytes, DEF_TXN_MAX_TEXT_BYTES,
			      MIN_TXN_TEXT_BYTES, MAX_TXN_TEXT_BYTES, &text);
	c->txn.max_text_bytes = (uint32_t)text;
	return rc;
}

static int build_zeo(struct zcfg_ctx *x, const struct raw_zeo *r, struct zap_config *c)
{
	static const struct raw_zeo none;
	struct zap_zeo_settings *z = &c->zeo;
	int rc;

	if (r == NULL)
		r = &none;
	rc = opt_u32(x, "zeo.io_threads", r->io_threads, DEF_ZEO_IO_THREADS, 0, MAX_ZEO_IO_THREADS,
		     &z->io_threads);
	if (rc == 0)
		rc = opt_u32(x, "zeo.max_connections", r->max_connections, DEF_ZEO_MAX_CONNECTIONS,
			     1, MAX_ZEO_CONNECTIONS, &z->max_connections);
	if (rc == 0)
		rc = opt_size(x, "zeo.max_output_bytes", r->max_output_bytes,
			      DEF_ZEO_MAX_OUTPUT_BYTES, MIN_ZEO_OUTPUT_BYTES, MAX_ZEO_OUTPUT_BYTES,
			      &z->max_output_bytes);
	z->encoding = (enum zap_zeo_encoding)OPT_OR(r->encoding, ZAP_ZEO_ENCODING_PICKLE);
	if (rc == 0)
		rc = opt_size(x, "zeo.max_message_bytes", r->max_message_bytes,
			      DEF_ZEO_MAX_MESSAGE_BYTES, MIN_ZEO_MESSAGE_BYTES, MAX_ZEO_MESSAGE_BYTES,
			      &z->max_message_bytes);
	return rc;
}

/* ---- lcores ------------------------------------------------------------- */

static int build_lcores(struct zcfg_ctx *x, const struct raw_config *raw, struct zap_config *c)
{
	uint32_t placed = 0;
	char path[64];

	c->lcores = calloc(raw->lcores_count ? raw->lcores_count : 1, sizeof(*c->lcores));
	if (c->lcores == NULL)
		return zcfg_error(x->e, 0, "out of memory"), -ENOMEM;
	c->n_lcores = raw->lcores_count;
	for (unsigned i = 0; i < raw->lcores_count; i++) {
		const struct raw_lcore *r = &raw->lcores[i];
		struct zap_lcore_config *l = &c->lcores[i];

		l->lcore = r->lcore;
		l->roles = r->roles;
		l->polling = (enum zap_polling)OPT_OR(r->polling, ZAP_POLLING_ADAPTIVE);
		snprintf(path, sizeof(path), "lcores[%u].lcore", i);
		if (r->lcore > ZAP_CONFIG_LCORE_MAX)
			return check_range(x, path, r->lcore, 0, ZAP_CONFIG_LCORE_MAX);
		for (unsigned j = 0; j < i; j++)
			if (c->lcores[j].lcore == l->lcore)
				return ERR_AT(x, path, "lcore %u listed twice (first at line %u)",
					      l->lcore, ytree_line(x->root, "lcores[%u].lcore", j));
		snprintf(path, sizeof(path), "lcores[%u].roles", i);
		if (l->roles == 0)
			return ERR_AT(x, path, "%s: an lcore needs at least one role", path);
		for (uint32_t bit = 1; bit <= ZAP_LCORE_ROLE_APPLY; bit <<= 1) {
			const struct zap_lcore_config *other;

			if (!(l->roles & bit) || !(placed & bit))
				continue;
			for (other = c->lcores; !(other->roles & bit); other++)
				;
			return ERR_AT(
			    x, path, "role '%s' given twice: already on lcore %u (line %u)",
			    zap_config_role_name(bit), other->lcore,
			    ytree_line(x->root, "lcores[%u].roles", (unsigned)(other - c->lcores)));
		}
		placed |= l->roles;
	}
	for (uint32_t bit = 1; bit <= ZAP_LCORE_ROLE_APPLY; bit <<= 1)
		if ((ZAP_LCORE_ROLES_REQUIRED & bit) && !(placed & bit))
			return ERR_AT(x, "lcores",
				      "lcores: role '%s' is on no lcore (io, paxos, log and apply "
				      "are required)",
				      zap_config_role_name(bit));
	return 0;
}

/* Each node's effective log directory: its own log_dir, else log.dir. */
static int build_node_log_dirs(struct zcfg_ctx *x, const struct raw_config *raw,
			       struct zap_config *c)
{
	int rc = 0;

	for (unsigned i = 0; i < c->n_nodes && rc == 0; i++) {
		const char *dir = raw->nodes[i].log_dir;

		if (dir != NULL && dir[0] == '\0')
			return zcfg_error(x->e, ytree_line(x->root, "nodes[%u].log_dir", i),
					  "nodes[%u].log_dir: must not be empty", i);
		c->nodes[i].log_dir = xstrdup(x, dir != NULL ? dir : c->log.dir, &rc);
	}
	return rc;
}

int zcfg_build(const struct raw_config *raw, const struct ynode *root, struct zap_config *c,
	       struct zcfg_err *e)
{
	struct zcfg_ctx x = {.root = root, .e = e};
	int rc;

	rc = build_cluster(&x, raw->cluster, c);
	if (rc == 0)
		rc = zcfg_build_nodes(raw, root, c, e);
	if (rc == 0)
		rc = build_lcores(&x, raw, c);
	if (rc == 0)
		rc = build_polling(&x, raw->polling, c);
	if (rc == 0)
		rc = build_store(&x, raw->store, c);
	if (rc == 0)
		rc = build_log(&x, raw->log, c);
	if (rc == 0)
		rc = build_node_log_dirs(&x, raw, c);
	if (rc == 0)
		rc = build_paxos(&x, raw->paxos, c);
	if (rc == 0)
		rc = build_txn(&x, raw->txn, c);
	if (rc == 0)
		rc = build_zeo(&x, raw->zeo, c);
	return rc;
}
