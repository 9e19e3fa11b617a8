/*
 * config_schema.c: the libcyaml schema of the configuration, and a walk of
 * the libyaml tree against that same schema.
 *
 * libcyaml owns the shape of the file (which keys exist, their types, which
 * are required, enum spellings, sequences) and loads it into the raw_* structs
 * of config_internal.h. libcyaml 1.3.1 reports the line of the wrong key only
 * for some errors, so before it runs, zcfg_schema_check() walks the tree from
 * config_tree.c through the schema tables (the public cyaml_schema_value_t
 * fields: type, flags, data_size, string/mapping/sequence/enumeration) and
 * reports the first problem at its line. The walk is stricter than libcyaml
 * where libcyaml is lax (numbers: decimal without leading zeros or 0x hex;
 * no NUL bytes in strings), so anything it accepts libcyaml loads the same way.
 *
 * Optional scalars are loaded as pointers so "absent" and "0" differ; sizes
 * with suffixes (1G, 512M) are strings converted in config_check.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config_internal.h"

/* Longest string value accepted anywhere (paths, vdev arguments). */
#define ZCFG_STRING_MAX 4095

/* ---- enum spellings ----------------------------------------------------- */

static const cyaml_strval_t port_role_strings[] = {
    {"replication", ZAP_PORT_ROLE_REPLICATION},
    {"client", ZAP_PORT_ROLE_CLIENT},
};

static const cyaml_strval_t polling_strings[] = {
    {"busy", ZAP_POLLING_BUSY},
    {"adaptive", ZAP_POLLING_ADAPTIVE},
};

static const cyaml_strval_t backing_strings[] = {
    {"memfd", ZAP_STORE_BACKING_MEMFD},
    {"hugetlbfs", ZAP_STORE_BACKING_HUGETLBFS},
};

static const cyaml_strval_t encoding_strings[] = {
    {"pickle", ZAP_ZEO_ENCODING_PICKLE},
    {"msgpack", ZAP_ZEO_ENCODING_MSGPACK},
};

static const cyaml_strval_t durability_strings[] = {
    {"fsync", ZAP_DURABILITY_FSYNC},
    {"memory", ZAP_DURABILITY_MEMORY},
};

static const cyaml_strval_t role_strings[] = {
    {"io", ZAP_LCORE_ROLE_IO},
    {"paxos", ZAP_LCORE_ROLE_PAXOS},
    {"log", ZAP_LCORE_ROLE_LOG},
    {"apply", ZAP_LCORE_ROLE_APPLY},
};

#define NSTR(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))
#define REQ CYAML_FLAG_DEFAULT
#define OPT CYAML_FLAG_OPTIONAL
#define ENUMF (CYAML_FLAG_STRICT)

const char *zap_config_role_name(uint32_t role)
{
	for (uint32_t i = 0; i < NSTR(role_strings); i++)
		if ((uint32_t)role_strings[i].val == role)
			return role_strings[i].str;
	return "?";
}

/* ---- nodes -------------------------------------------------------------- */

static const cyaml_schema_field_t endpoint_fields[] = {
    CYAML_FIELD_STRING_PTR("mac", REQ, struct raw_endpoint, mac, 0, ZCFG_STRING_MAX),
    CYAML_FIELD_STRING_PTR("ipv4", REQ, struct raw_endpoint, ipv4, 0, ZCFG_STRING_MAX),
    CYAML_FIELD_UINT("udp_port", REQ, struct raw_endpoint, udp_port), CYAML_FIELD_END};

static const cyaml_schema_field_t port_fields[] = {
    CYAML_FIELD_ENUM("role", REQ | ENUMF, struct raw_port, role, port_role_strings,
		     NSTR(port_role_strings)),
    CYAML_FIELD_STRING_PTR("pci", OPT, struct raw_port, pci, 0, ZCFG_STRING_MAX),
    CYAML_FIELD_STRING_PTR("vdev", OPT, struct raw_port, vdev, 0, ZCFG_STRING_MAX),
    CYAML_FIELD_UINT_PTR("peer", OPT, struct raw_port, peer), CYAML_FIELD_END};

static const cyaml_schema_value_t port_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_port, port_fields),
};

static const cyaml_schema_field_t node_fields[] = {
    CYAML_FIELD_UINT("id", REQ, struct raw_node, id),
    CYAML_FIELD_STRING_PTR("name", REQ, struct raw_node, name, 0, ZCFG_STRING_MAX),
    CYAML_FIELD_MAPPING("replication", REQ, struct raw_node, replication, endpoint_fields),
    CYAML_FIELD_MAPPING("client", REQ, struct raw_node, client, endpoint_fields),
    CYAML_FIELD_STRING_PTR("zeo", REQ, struct raw_node, zeo, 0, ZCFG_STRING_MAX),
    CYAML_FIELD_STRING_PTR("zeo_unix", OPT, struct raw_node, zeo_unix, 0, ZCFG_STRING_MAX),
    CYAML_FIELD_STRING_PTR("admin", REQ, struct raw_node, admin, 0, ZCFG_STRING_MAX),
    CYAML_FIELD_STRING_PTR("client_udp", OPT, struct raw_node, client_udp, 0, ZCFG_STRING_MAX),
    CYAML_FIELD_STRING_PTR("log_dir", OPT, struct raw_node, log_dir, 0, ZCFG_STRING_MAX),
    CYAML_FIELD_SEQUENCE("ports", CYAML_FLAG_POINTER | REQ, struct raw_node, ports, &port_schema, 0,
			 ZAP_CONFIG_MAX_PORTS),
    CYAML_FIELD_END};

static const cyaml_schema_value_t node_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_node, node_fields),
};

/* ---- lcores ------------------------------------------------------------- */

static const cyaml_schema_field_t lcore_fields[] = {
    CYAML_FIELD_UINT("lcore", REQ, struct raw_lcore, lcore),
    CYAML_FIELD_FLAGS("roles", REQ | ENUMF, struct raw_lcore, roles, role_strings,
		      NSTR(role_strings)),
    CYAML_FIELD_ENUM_PTR("polling", OPT | ENUMF, struct raw_lcore, polling, polling_strings,
			 NSTR(polling_strings)),
    CYAML_FIELD_END};

static const cyaml_schema_value_t lcore_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_lcore, lcore_fields),
};

/* ---- sections ----------------------------------------------------------- */

static const cyaml_schema_field_t cluster_fields[] = {
    CYAML_FIELD_UINT("id", REQ, struct raw_cluster, id),
    CYAML_FIELD_STRING_PTR("secret", REQ, struct raw_cluster, secret, 0, ZCFG_STRING_MAX),
    CYAML_FIELD_END};

static const cyaml_schema_field_t polling_fields[] = {
    CYAML_FIELD_UINT_PTR("spin_us", OPT, struct raw_polling, spin_us),
    CYAML_FIELD_UINT_PTR("yield_us", OPT, struct raw_polling, yield_us),
    CYAML_FIELD_UINT_PTR("sleep_us", OPT, struct raw_polling, sleep_us), CYAML_FIELD_END};

static const cyaml_schema_field_t store_fields[] = {
    CYAML_FIELD_STRING_PTR("size", OPT, struct raw_store, size, 0, ZCFG_STRING_MAX),
    CYAML_FIELD_STRING_PTR("max_record", OPT, struct raw_store, max_record, 0, ZCFG_STRING_MAX),
    CYAML_FIELD_UINT_PTR("txn_ring_slots", OPT, struct raw_store, txn_ring_slots),
    CYAML_FIELD_ENUM_PTR("backing", OPT | ENUMF, struct raw_store, backing, backing_strings,
			 NSTR(backing_strings)),
    CYAML_FIELD_STRING_PTR("hugetlbfs_dir", OPT, struct raw_store, hugetlbfs_dir, 0,
			   ZCFG_STRING_MAX),
    CYAML_FIELD_END};

static const cyaml_schema_field_t log_fields[] = {
    CYAML_FIELD_STRING_PTR("dir", REQ, struct raw_log, dir, 0, ZCFG_STRING_MAX),
    CYAML_FIELD_ENUM_PTR("durability", OPT | ENUMF, struct raw_log, durability, durability_strings,
			 NSTR(durability_strings)),
    CYAML_FIELD_STRING_PTR("segment_size", OPT, struct raw_log, segment_size, 0, ZCFG_STRING_MAX),
    CYAML_FIELD_UINT_PTR("group_commit_us", OPT, struct raw_log, group_commit_us),
    CYAML_FIELD_UINT_PTR("group_commit_max", OPT, struct raw_log, group_commit_max),
    CYAML_FIELD_UINT_PTR("checkpoint_slots", OPT, struct raw_log, checkpoint_slots),
    CYAML_FIELD_STRING_PTR("checkpoint_bytes", OPT, struct raw_log, checkpoint_bytes, 0,
			   ZCFG_STRING_MAX),
    CYAML_FIELD_UINT_PTR("checkpoint_seconds", OPT, struct raw_log, checkpoint_seconds),
    CYAML_FIELD_END};

static const cyaml_schema_field_t paxos_fields[] = {
    CYAML_FIELD_UINT_PTR("window", OPT, struct raw_paxos, window),
    CYAML_FIELD_UINT_PTR("batch_count", OPT, struct raw_paxos, batch_count),
    CYAML_FIELD_STRING_PTR("batch_bytes", OPT, struct raw_paxos, batch_bytes, 0, ZCFG_STRING_MAX),
    CYAML_FIELD_UINT_PTR("heartbeat_ms", OPT, struct raw_paxos, heartbeat_ms),
    CYAML_FIELD_UINT_PTR("election_timeout_ms", OPT, struct raw_paxos, election_timeout_ms),
    CYAML_FIELD_END};

static const cyaml_schema_field_t txn_fields[] = {
    CYAML_FIELD_UINT_PTR("lease_ms", OPT, struct raw_txn, lease_ms),
    CYAML_FIELD_UINT_PTR("max_sessions", OPT, struct raw_txn, max_sessions),
    CYAML_FIELD_STRING_PTR("max_bytes", OPT, struct raw_txn, max_bytes, 0, ZCFG_STRING_MAX),
    CYAML_FIELD_UINT_PTR("max_objects", OPT, struct raw_txn, max_objects),
    CYAML_FIELD_STRING_PTR("max_text_bytes", OPT, struct raw_txn, max_text_bytes, 0,
			   ZCFG_STRING_MAX),
    CYAML_FIELD_END};

static const cyaml_schema_field_t zeo_fields[] = {
    CYAML_FIELD_UINT_PTR("io_threads", OPT, struct raw_zeo, io_threads),
    CYAML_FIELD_UINT_PTR("max_connections", OPT, struct raw_zeo, max_connections),
    CYAML_FIELD_STRING_PTR("max_output_bytes", OPT, struct raw_zeo, max_output_bytes, 0,
			   ZCFG_STRING_MAX),
    CYAML_FIELD_ENUM_PTR("encoding", OPT | ENUMF, struct raw_zeo, encoding, encoding_strings,
			 NSTR(encoding_strings)),
    CYAML_FIELD_STRING_PTR("max_message_bytes", OPT, struct raw_zeo, max_message_bytes, 0,
			   ZCFG_STRING_MAX),
    CYAML_FIELD_END};

static const cyaml_schema_field_t top_fields[] = {
    CYAML_FIELD_MAPPING_PTR("cluster", REQ, struct raw_config, cluster, cluster_fields),
    CYAML_FIELD_SEQUENCE("nodes", CYAML_FLAG_POINTER | REQ, struct raw_config, nodes, &node_schema,
			 0, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("lcores", CYAML_FLAG_POINTER | REQ, struct raw_config, lcores,
			 &lcore_schema, 0, ZAP_CONFIG_LCORE_MAX + 1),
    CYAML_FIELD_MAPPING_PTR("polling", OPT, struct raw_config, polling, polling_fields),
    CYAML_FIELD_MAPPING_PTR("store", OPT, struct raw_config, store, store_fields),
    CYAML_FIELD_MAPPING_PTR("log", REQ, struct raw_config, log, log_fields),
    CYAML_FIELD_MAPPING_PTR("paxos", OPT, struct raw_config, paxos, paxos_fields),
    CYAML_FIELD_MAPPING_PTR("txn", OPT, struct raw_config, txn, txn_fields),
    CYAML_FIELD_MAPPING_PTR("zeo", OPT, struct raw_config, zeo, zeo_fields),
    CYAML_FIELD_END};

const cyaml_schema_value_t zcfg_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_config, top_fields),
};

/* ---- the walk ----------------------------------------------------------- */

static const char *ynode_kind_name(enum ynode_kind k)
{
	return k == YNODE_MAP ? "a mapping" : k == YNODE_SEQ ? "a sequence" : "a scalar";
}

/* Line to report for node @p n: its key's line if it has one. */
static unsigned yline(const struct ynode *n)
{
	return n->key != NULL ? n->key_line : n->line;
}

/*
 * Unsigned integer as zap accepts it: decimal without leading zeros, or 0x
 * followed by hex digits; at most 64 bits. Returns 0 or -EINVAL / -ERANGE.
 */
static int zcfg_parse_u64(const char *s, uint64_t *out)
{
	int hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	unsigned base = hex ? 16 : 10;
	uint64_t v = 0;
	const char *p = hex ? s + 2 : s;

	if (*p == '\0' || (!hex && p[0] == '0' && p[1] != '\0'))
		return -EINVAL;
	for (; *p != '\0'; p++) {
		unsigned d;

		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (hex && *p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else if (hex && *p >= 'A' && *p <= 'F')
			d = (unsigned)(*p - 'A' + 10);
		else
			return -EINVAL;
		if (v > (UINT64_MAX - d) / base)
			return -ERANGE;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

static int check_int(const struct ynode *n, const cyaml_schema_value_t *v, const char *what,
		     struct zcfg_err *e)
{
	int neg = v->type == CYAML_INT && n->val[0] == '-';
	unsigned bits = v->data_size * 8;
	uint64_t max, val;
	int rc;

	if (v->data_size == 0 || v->data_size > 8)
		return zcfg_error(e, yline(n), "%s: internal schema error", what);
	rc = zcfg_parse_u64(n->val + neg, &val);
	if (rc == -EINVAL || n->val_len != strlen(n->val))
		return zcfg_error(e, yline(n), "%s: '%s' is not %s integer", what, n->val,
				  v->type == CYAML_UINT ? "an unsigned" : "an");
	max = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
	if (v->type == CYAML_INT)
		max >>= 1;
	if (rc == -ERANGE || val > max + (uint64_t)neg)
		return zcfg_error(e, yline(n), "%s: %s is out of range (%s0..%" PRIu64 ")", what,
				  n->val, v->type == CYAML_INT ? "-" : "", max);
	return 0;
}

static int enum_lookup(const cyaml_schema_value_t *v, const char *s)
{
	for (uint32_t i = 0; i < v->enumeration.count; i++)
		if (strcmp(v->enumeration.strings[i].str, s) == 0)
			return (int)i;
	return -1;
}

static int enum_error(const struct ynode *n, const cyaml_schema_value_t *v, const char *what,
		      struct zcfg_err *e)
{
	char list[256] = "";

	for (uint32_t i = 0; i < v->enumeration.count; i++) {
		size_t l = strlen(list);

		snprintf(list + l, sizeof(list) - l, "%s%s", i ? ", " : "",
			 v->enumeration.strings[i].str);
	}
	return zcfg_error(e, yline(n), "%s: '%s' is not one of: %s", what, n->val, list);
}

static int check_flags(const struct ynode *n, const cyaml_schema_value_t *v, const char *what,
		       struct zcfg_err *e)
{
	uint64_t seen = 0;

	if (n->kind != YNODE_SEQ)
		return zcfg_error(e, yline(n), "%s: expected a sequence, got %s", what,
				  ynode_kind_name(n->kind));
	for (unsigned i = 0; i < n->n_kids; i++) {
		const struct ynode *k = n->kids[i];
		int idx;

		if (k->kind != YNODE_SCALAR)
			return zcfg_error(e, k->line, "%s[%u]: expected a scalar, got %s", what, i,
					  ynode_kind_name(k->kind));
		idx = enum_lookup(v, k->val);
		if (idx < 0)
			return enum_error(k, v, what, e);
		if (seen & (UINT64_C(1) << idx))
			return zcfg_error(e, k->line, "%s: '%s' given twice", what, k->val);
		seen |= UINT64_C(1) << idx;
	}
	return 0;
}

static int check_value(const struct ynode *n, const cyaml_schema_value_t *v, const char *what,
		       struct zcfg_err *e);

/* A plain scalar that YAML reads as null: empty, "~" or "null". */
static int ynode_is_null(const struct ynode *n)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

	if (!n->plain)
		return 0;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(n->val, nulls[i]) == 0)
			return 1;
	return 0;
}

static int check_mapping(const struct ynode *n, const cyaml_schema_value_t *v, const char *what,
			 struct zcfg_err *e)
{
	const cyaml_schema_field_t *fields = v->mapping.fields, *f;
	char sub[256];
	int rc;

	for (unsigned i = 0; i < n->n_kids; i++) {
		const struct ynode *k = n->kids[i];

		for (unsigned j = 0; j < i; j++)
			if (strcmp(n->kids[j]->key, k->key) == 0)
				return zcfg_error(e, k->key_line,
						  "%s%sduplicate key '%s' (first at line %u)", what,
						  *what ? ": " : "", k->key, n->kids[j]->key_line);
		for (f = fields; f->key != NULL; f++)
			if (strcmp(f->key, k->key) == 0)
				break;
		if (f->key == NULL) {
			char list[512] = "";

			for (f = fields; f->key != NULL; f++) {
				size_t l = strlen(list);

				snprintf(list + l, sizeof(list) - l, "%s%s",
					 f == fields ? "" : ", ", f->key);
			}
			return zcfg_error(e, k->key_line,
					  "unknown key '%s' %s%s (expected one of: %s)", k->key,
					  *what ? "in " : "at top level", what, list);
		}
		snprintf(sub, sizeof(sub), "%s%s%s", what, *what ? "." : "", f->key);
		rc = check_value(k, &f->value, sub, e);
		if (rc < 0)
			return rc;
	}
	for (f = fields; f->key != NULL; f++)
		if (!(f->value.flags & CYAML_FLAG_OPTIONAL) && ytree_get(n, f->key) == NULL)
			return zcfg_error(e, yline(n), "%s%smissing required key '%s'", what,
					  *what ? ": " : "", f->key);
	return 0;
}

static int check_sequence(const struct ynode *n, const cyaml_schema_value_t *v, const char *what,
			  struct zcfg_err *e)
{
	char sub[256];
	int rc;

	if (n->n_kids < v->sequence.min)
		return zcfg_error(e, yline(n), "%s: needs at least %u entries", what,
				  v->sequence.min);
	if (v->sequence.max != CYAML_UNLIMITED && n->n_kids > v->sequence.max)
		return zcfg_error(e, yline(n), "%s: at most %u entries", what, v->sequence.max);
	for (unsigned i = 0; i < n->n_kids; i++) {
		snprintf(sub, sizeof(sub), "%s[%u]", what, i);
		rc = check_value(n->kids[i], v->sequence.entry, sub, e);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int check_value(const struct ynode *n, const cyaml_schema_value_t *v, const char *what,
		       struct zcfg_err *e)
{
	enum ynode_kind want = YNODE_SCALAR;

	if (v->type == CYAML_MAPPING)
		want = YNODE_MAP;
	else if (v->type == CYAML_SEQUENCE || v->type == CYAML_FLAGS)
		want = YNODE_SEQ;
	if (n->kind != want)
		return zcfg_error(e, yline(n), "%s: expected %s, got %s", *what ? what : "document",
				  ynode_kind_name(want), ynode_kind_name(n->kind));
	switch (v->type) {
	case CYAML_INT:
	case CYAML_UINT:
		return check_int(n, v, what, e);
	case CYAML_ENUM:
		if (enum_lookup(v, n->val) < 0)
			return enum_error(n, v, what, e);
		return 0;
	case CYAML_FLAGS:
		return check_flags(n, v, what, e);
	case CYAML_STRING:
		if (ynode_is_null(n))
			return zcfg_error(e, yline(n),
					  "%s: no value (a YAML null; leave the key out to get "
					  "the default)",
					  what);
		if (n->val_len != strlen(n->val))
			return zcfg_error(e, yline(n), "%s: contains a NUL byte", what);
		if (n->val_len < v->string.min || n->val_len > v->string.max)
			return zcfg_error(e, yline(n), "%s: length %zu outside %u..%u", what,
					  n->val_len, v->string.min, v->string.max);
		return 0;
	case CYAML_MAPPING:
		return check_mapping(n, v, what, e);
	case CYAML_SEQUENCE:
		return check_sequence(n, v, what, e);
	default:
		return zcfg_error(e, yline(n), "%s: internal schema error", what);
	}
}

int zcfg_schema_check(const struct ynode *root, struct zcfg_err *e)
{
	if (root == NULL)
		return zcfg_error(e, 1,
				  "empty configuration (expected a mapping with keys "
				  "cluster, nodes, lcores, log, ...)");
	return check_value(root, &zcfg_schema, "", e);
}
