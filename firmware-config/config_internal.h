/*
 * Internals of the configuration loader, shared by the config_*.c files.
 *
 * The loader runs in four steps:
 *   1. config_tree.c   libyaml events -> a small node tree with line numbers
 *                      (syntax errors, aliases, duplicate documents);
 *   2. config_schema.c the libcyaml schema, and a walk of the tree against it
 *                      that reports unknown keys, wrong types, bad numbers and
 *                      enums and missing keys at their line;
 *   3. config_load.c   libcyaml loads the same text into the raw structs below;
 *   4. config_check.c  raw structs -> struct zap_config: defaults, conversions
 *                      (sizes, MAC, IPv4, host:port) and the cross-field rules,
 *                      each error located through the tree by key path
 *                      (config_nodes.c does the nodes and their ports).
 * Not part of the public API.
 */
#ifndef ZAP_CONFIG_INTERNAL_H
#define ZAP_CONFIG_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cyaml/cyaml.h>

#include "config.h"

/* ---- error reporting ---------------------------------------------------- */

/** Where error messages go; the first error wins. */
struct zcfg_err {
	const char *name; /**< file name used as message prefix */
	char *buf;	  /**< may be NULL */
	size_t len;
	int set; /**< an error was recorded */
};

/** Record "NAME:LINE: msg" (or "NAME: msg" if line is 0). Returns -EINVAL. */
int zcfg_error(struct zcfg_err *e, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the node tree (config_tree.c) -------------------------------------- */

enum ynode_kind { YNODE_SCALAR, YNODE_SEQ, YNODE_MAP };

/** One YAML node. Children of a mapping carry their key. */
struct ynode {
	enum ynode_kind kind;
	unsigned line;	   /**< 1-based line where the node starts */
	unsigned key_line; /**< line of the key if a mapping value, else = line */
	char *key;	   /**< mapping key, or NULL */
	char *val;	   /**< scalar value (NUL-terminated), or NULL */
	size_t val_len;
	int plain; /**< scalar was unquoted */
	struct ynode **kids;
	unsigned n_kids;
	unsigned cap_kids;
};

/** Limits that keep hostile input cheap. */
#define YTREE_MAX_DEPTH 32
#define YTREE_MAX_NODES 100000

/**
 * Parse @p len bytes of YAML into a tree. Returns 0 and *root (NULL for an
 * empty document), or -EINVAL/-ENOMEM with the error recorded in @p e.
 */
int ytree_parse(const char *yaml, size_t len, struct ynode **root, struct zcfg_err *e);
void ytree_free(struct ynode *n);

/** Child of mapping @p n with key @p key, or NULL. */
const struct ynode *ytree_get(const struct ynode *n, const char *key);

/**
 * Line for the key path @p fmt (printf-style), e.g. "nodes[2].replication.mac".
 * The line of the deepest node of the path that exists: the key's line for a
 * mapping value, the item's line for a sequence entry. 1 if nothing matches.
 */
unsigned ytree_line(const struct ynode *root, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- raw structs loaded by libcyaml (config_schema.c) ------------------- */

/* Optional scalars are pointers: NULL means "not given, use the default". */

struct raw_endpoint {
	char *mac;
	char *ipv4;
	uint16_t udp_port;
};

struct raw_port {
	int role;
	char *pci;
	char *vdev;
	uint16_t *peer;
};

struct raw_node {
	uint16_t id;
	char *name;
	struct raw_endpoint replication;
	struct raw_endpoint client;
	char *zeo;
	char *zeo_unix;
	char *admin;
	char *client_udp;
	char *log_dir;
	struct raw_port *ports;
	unsigned ports_count;
};

struct raw_lcore {
	uint16_t lcore;
	uint32_t roles;
	int *polling;
};

struct raw_cluster {
	uint64_t id;
	char *secret;
};

struct raw_polling {
	uint32_t *spin_us;
	uint32_t *yield_us;
	uint32_t *sleep_us;
};

struct raw_store {
	char *size;
	char *max_record;
	uint32_t *txn_ring_slots;
	int *backing;
	char *hugetlbfs_dir;
};

struct raw_log {
	char *dir;
	int *durability;
	char *segment_size;
	uint32_t *group_commit_us;
	uint32_t *group_commit_max;
	uint32_t *checkpoint_slots;
	char *checkpoint_bytes;
	uint32_t *checkpoint_seconds;
};

struct raw_paxos {
	uint32_t *window;
	uint32_t *batch_count;
	char *batch_bytes;
	uint32_t *heartbeat_ms;
	uint32_t *election_timeout_ms;
};

struct raw_txn {
	uint32_t *lease_ms;
	uint32_t *max_sessions;
	char *max_bytes;
	uint32_t *max_objects;
	char *max_text_bytes;
};

struct raw_zeo {
	uint32_t *io_threads;
	uint32_t *max_connections;
	char *max_output_bytes;
	int *encoding;
	char *max_message_bytes;
};

struct raw_config {
	struct raw_cluster *cluster;
	struct raw_node *nodes;
	unsigned nodes_count;
	struct raw_lcore *lcores;
	unsigned lcores_count;
	struct raw_polling *polling;
	struct raw_store *store;
	struct raw_log *log;
	struct raw_paxos *paxos;
	struct raw_txn *txn;
	struct raw_zeo *zeo;
};

/** The top-level libcyaml schema (a pointer to struct raw_config). */
extern const cyaml_schema_value_t zcfg_schema;

/**
 * Check the tree against zcfg_schema: unknown or duplicate keys, wrong node
 * kinds, numbers that do not parse or fit, bad enum values, missing required
 * keys, sequence lengths. Returns 0 or -EINVAL with the error in @p e.
 */
int zcfg_schema_check(const struct ynode *root, struct zcfg_err *e);

/* ---- scalar syntaxes (config_scalar.c) ---------------------------------- */

/* Each returns 0 or -EINVAL (bad syntax) / -ERANGE (does not fit). */

/** Bytes: digits with an optional K, M, G or T suffix (binary), "iB" allowed after it. */
int zcfg_parse_size(const char *s, uint64_t *bytes);
/** "aa:bb:cc:dd:ee:ff", hex, any case. */
int zcfg_parse_mac(const char *s, uint8_t mac[6]);
/** Dotted quad, decimal octets without leading zeros; result in network byte order. */
int zcfg_parse_ipv4(const char *s, uint32_t *ipv4_be);
/** "host:port": IPv4, "[IPv6]" or a DNS name; port 1..65535. *host is malloc'ed. */
int zcfg_parse_hostport(const char *s, char **host, uint16_t *port);
/** PCI address "DDDD:BB:DD.F" or "BB:DD.F"; out gets the full lower-case form. */
int zcfg_parse_pci(const char *s, char out[16]);
/** Hex string to bytes; even length, at most @p max bytes. */
int zcfg_parse_hex(const char *s, uint8_t *out, size_t max, size_t *len);
/** Name of the vdev (the text before the first ','), copied into @p name. */
int zcfg_parse_vdev_name(const char *s, char *name, size_t name_len);

/* ---- conversion and rules (config_check.c) ------------------------------ */

/**
 * Build @p c from the loaded raw structs, applying defaults and checking the
 * cross-field rules. Lines come from @p root. Returns 0, -EINVAL or -ENOMEM.
 */
int zcfg_build(const struct raw_config *raw, const struct ynode *root, struct zap_config *c,
	       struct zcfg_err *e);

/** The nodes part of zcfg_build() (config_nodes.c): c->nodes, c->n_nodes. */
int zcfg_build_nodes(const struct raw_config *raw, const struct ynode *root, struct zap_config *c,
		     struct zcfg_err *e);

#endif /* ZAP_CONFIG_INTERNAL_H */
