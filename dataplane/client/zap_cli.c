/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap: the command-line client of a zap cluster (docs/client.md, "The `zap`
 * tool").
 *
 *   zap [--config FILE] --node ID [--timeout MS] CMD ARGS...
 *   zap --help | --version
 *
 * The tool reads the cluster config (cluster id, the node's `client_udp`
 * address), opens one libzapclient connection to that node, runs ONE
 * command and prints its result on stdout.
 *
 * Shape: parse and validate every argument first (any problem is a usage
 * error, exit 2, before the config is read or a datagram is sent), then
 * load the config and find the node, then run the command. Internally every
 * step returns 0 or a negative errno / ZAP_CLIENT_E_*; failures are turned
 * into exactly one line on stderr, "zap: ...", in one place per step.
 *
 * Exit statuses: 0 success; 1 the command failed (config, node, network,
 * not found, conflict, ...); 2 bad arguments.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "zapclient.h"

#define ZAP_CLI_EXIT_OK 0
#define ZAP_CLI_EXIT_FAIL 1
#define ZAP_CLI_EXIT_USAGE 2

/** Config used when --config is not given (cwd first, then the source tree). */
#define ZAP_CLI_DEFAULT_CONFIG "firmware-config/local-3node.yaml"
/** Attempts per request: the first send and two resends. */
#define ZAP_CLI_TRIES 3u
/** Default bound on the wait for one command's answer, all tries together. */
#define ZAP_CLI_DEFAULT_TIMEOUT_MS 1500u
/** --timeout range: at least 1 ms per try, at most an hour in total. */
#define ZAP_CLI_MIN_TIMEOUT_MS ZAP_CLI_TRIES
#define ZAP_CLI_MAX_TIMEOUT_MS 3600000u
/** Defaults and bounds of the list commands. */
#define ZAP_CLI_DEFAULT_HISTORY 20u
#define ZAP_CLI_DEFAULT_CHANGES 4096u
#define ZAP_CLI_MAX_ITEMS 65536u
/** Most positional arguments a command takes. */
#define ZAP_CLI_MAX_POS 2u
/** Room for "host:port" or "[v6]:port". */
#define ZAP_CLI_ADDR_BYTES 300u

#ifndef ZAP_CLI_SOURCE_ROOT
#define ZAP_CLI_SOURCE_ROOT ""
#endif
/** What --version prints after "zap "; the build passes the project's version. */
#ifndef ZAP_VERSION
#define ZAP_VERSION "0.1.0"
#endif

/** Command options; each command lists the ones it takes. */
enum zap_cli_opt {
	ZAP_CLI_OPT_SYNC = 1u << 0, /**< --sync */
	ZAP_CLI_OPT_BASE = 1u << 1, /**< --base SERIAL */
	ZAP_CLI_OPT_MAX = 1u << 2,  /**< --max N */
	ZAP_CLI_OPT_HEX = 1u << 3,  /**< --hex: VALUE is hex */
};

/** A parsed command line. */
struct zap_cli_args {
	const char *config_path; /**< NULL: the default */
	uint16_t node_id;
	uint32_t timeout_ms;
	const struct zap_cli_cmd *cmd;
	const char *pos[ZAP_CLI_MAX_POS];
	unsigned n_pos;
	unsigned opts_given; /**< enum zap_cli_opt bits */
	uint64_t base;
	uint32_t max;
};

/** An open session with one node. */
struct zap_cli {
	const struct zap_cli_args *a;
	struct zap_client *client;
	char addr[ZAP_CLI_ADDR_BYTES]; /**< the node's client_udp, for messages */
};

struct zap_cli_cmd {
	const char *name;
	const char *synopsis;
	unsigned min_pos, max_pos;
	unsigned opts; /**< enum zap_cli_opt bits accepted */
	int (*run)(struct zap_cli *z);
};

/* ---------------------------------------------------------------- messages */

static void usage_full(FILE *f);

/** One usage error line; returns the usage exit status. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("zap: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (zap --help for usage)\n", stderr);
	return ZAP_CLI_EXIT_USAGE;
}

/** One failure line "zap: node N: ..."; returns the failure exit status. */
static int node_fail(const struct zap_cli *z, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int node_fail(const struct zap_cli *z, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "zap: node %u: ", (unsigned)z->a->node_id);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return ZAP_CLI_EXIT_FAIL;
}

/** Report a libzapclient result that has no command-specific wording. */
static int client_fail(const struct zap_cli *z, int rc)
{
	switch (rc) {
	case -ETIMEDOUT:
		return node_fail(z, "timed out after %u tries (no answer from %s)", ZAP_CLI_TRIES,
				 z->addr);
	case -ECONNREFUSED:
		return node_fail(z, "connection refused after %u tries (nothing listens at %s)",
				 ZAP_CLI_TRIES, z->addr);
	case -EHOSTUNREACH:
		return node_fail(z, "unavailable (no quorum, or %s unreachable)", z->addr);
	default:
		return node_fail(z, "%s", zap_client_strerror(rc));
	}
}

/* ---------------------------------------------------------------- parsing */

static int digit_value(char ch, unsigned base)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (base == 16 && ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (base == 16 && ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/**
 * Parse an unsigned 64-bit number: decimal, or 0x-hex. No sign, no spaces.
 * @return 0; -EINVAL not a number; -ERANGE above 2^64 - 1.
 */
static int parse_u64(const char *s, uint64_t *out)
{
	unsigned base = 10;
	uint64_t v = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (*s == '\0')
		return -EINVAL;
	for (; *s != '\0'; s++) {
		int d = digit_value(*s, base);
		if (d < 0)
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)d) / base)
			return -ERANGE;
		v = v * base + (uint64_t)d;
	}
	*out = v;
	return 0;
}

/** Parse a number in [lo, hi]; on failure print the usage line. @return 0 or exit 2. */
static int parse_bounded(const char *what, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	int rc = parse_u64(s, out);
	if (rc == 0 && (*out < lo || *out > hi))
		rc = -ERANGE;
	if (rc == 0)
		return 0;
	return usage_error("bad %s \"%.64s\": want %s %llu..%llu (decimal or 0x-hex)", what, s,
			   rc == -ERANGE ? "a number in" : "a number", (unsigned long long)lo,
			   (unsigned long long)hi);
}

static int parse_oid(const char *s, uint64_t *oid)
{
	return parse_bounded("oid", s, 0, ZAP_CP_BAD_OID - 1, oid);
}

static int parse_tid(const char *what, const char *s, uint64_t *tid)
{
	return parse_bounded(what, s, 0, UINT64_MAX, tid);
}

/**
 * Match option @p name at argv[*i], as "--name VALUE" or "--name=VALUE".
 * @return 1 matched (*@p value set, *@p i advanced past a separate value);
 *   0 not this option; -EINVAL matched but the value is missing.
 */
static int match_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
	size_t n = strlen(name);
	const char *arg = argv[*i];
	if (strncmp(arg, name, n) != 0)
		return 0;
	if (arg[n] == '=') {
		*value = arg + n + 1;
		return 1;
	}
	if (arg[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -EINVAL;
	*value = argv[++*i];
	return 1;
}

/* ---------------------------------------------------------------- output */

static int is_text(const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return 0;
	return 1;
}

/** "text BYTES" when every byte is printable ASCII, else "hex HEXDIGITS". */
static void print_record_bytes(const void *data, uint32_t len)
{
	const uint8_t *p = data;
	if (is_text(p, len)) {
		fputs("text ", stdout);
		if (len > 0) /* an empty record may come with no buffer at all */
			fwrite(p, 1, len, stdout);
	} else {
		fputs("hex ", stdout);
		for (uint32_t i = 0; i < len; i++)
			printf("%02x", p[i]);
	}
	putchar('\n');
}

/** A quoted string with \", \\ and \xNN escapes, for history's user and description. */
static void print_quoted(const void *data, uint32_t len)
{
	const uint8_t *p = data;
	putchar('"');
	for (uint32_t i = 0; i < len; i++) {
		if (p[i] == '"' || p[i] == '\\')
			printf("\\%c", p[i]);
		else if (p[i] < 0x20 || p[i] > 0x7e)
			printf("\\x%02x", p[i]);
		else
			putchar(p[i]);
	}
	putchar('"');
}

static void print_id(const char *key, uint64_t v)
{
	if (key != NULL)
		printf("%s ", key);
	printf("0x%016llx\n", (unsigned long long)v);
}

/* ---------------------------------------------------------------- commands */

static int cmd_last_tid(struct zap_cli *z)
{
	uint64_t tid = 0;
	int rc = zap_client_last_tid(z->client, (z->a->opts_given & ZAP_CLI_OPT_SYNC) != 0, &tid);
	if (rc != 0)
		return client_fail(z, rc);
	print_id(NULL, tid);
	return ZAP_CLI_EXIT_OK;
}

static int cmd_sync(struct zap_cli *z)
{
	uint64_t tid = 0;
	int rc = zap_client_sync(z->client, &tid);
	if (rc != 0)
		return client_fail(z, rc);
	print_id(NULL, tid);
	return ZAP_CLI_EXIT_OK;
}

static int cmd_get(struct zap_cli *z)
{
	uint64_t oid = 0;
	struct zap_client_record rec;
	(void)parse_oid(z->a->pos[0], &oid); /* validated at parse time */
	int rc = zap_client_load(z->client, oid, (z->a->opts_given & ZAP_CLI_OPT_SYNC) != 0, &rec);
	if (rc == -ENOENT)
		return node_fail(z, "oid 0x%016llx not found", (unsigned long long)oid);
	if (rc != 0)
		return client_fail(z, rc);
	print_id("oid", oid);
	print_id("serial", rec.serial);
	printf("size %u\n", rec.len);
	print_record_bytes(rec.data, rec.len);
	return ZAP_CLI_EXIT_OK;
}

static int cmd_load_before(struct zap_cli *z)
{
	uint64_t oid = 0, tid = 0;
	struct zap_client_record rec;
	(void)parse_oid(z->a->pos[0], &oid);
	(void)parse_tid("tid", z->a->pos[1], &tid);
	int rc = zap_client_load_before(z->client, oid, tid, &rec);
	if (rc == -ENOENT)
		return node_fail(z, "oid 0x%016llx has no revision before 0x%016llx",
				 (unsigned long long)oid, (unsigned long long)tid);
	if (rc != 0)
		return client_fail(z, rc);
	print_id("oid", oid);
	print_id("serial", rec.serial);
	print_id("next", rec.next_serial);
	printf("size %u\n", rec.len);
	print_record_bytes(rec.data, rec.len);
	return ZAP_CLI_EXIT_OK;
}

static int cmd_history(struct zap_cli *z)
{
	uint64_t oid = 0;
	const struct zap_cp_hist *h = NULL;
	uint32_t n = 0;
	uint32_t max = (z->a->opts_given & ZAP_CLI_OPT_MAX) ? z->a->max : ZAP_CLI_DEFAULT_HISTORY;
	(void)parse_oid(z->a->pos[0], &oid);
	int rc = zap_client_history(z->client, oid, max, &h, &n);
	if (rc == -ENOENT)
		return node_fail(z, "oid 0x%016llx not found", (unsigned long long)oid);
	if (rc != 0)
		return client_fail(z, rc);
	for (uint32_t i = 0; i < n; i++) {
		printf("0x%016llx size %llu%s user ", (unsigned long long)h[i].serial,
		       (unsigned long long)h[i].size_bytes, h[i].deleted ? " deleted" : "");
		print_quoted(h[i].user, h[i].user_len);
		fputs(" description ", stdout);
		print_quoted(h[i].description, h[i].description_len);
		putchar('\n');
	}
	return ZAP_CLI_EXIT_OK;
}

static int cmd_changes_since(struct zap_cli *z)
{
	uint64_t tid = 0;
	struct zap_client_changes ch;
	uint32_t max = (z->a->opts_given & ZAP_CLI_OPT_MAX) ? z->a->max : ZAP_CLI_DEFAULT_CHANGES;
	(void)parse_tid("tid", z->a->pos[0], &tid);
	int rc = zap_client_changes_since(z->client, tid, max, &ch);
	if (rc != 0)
		return client_fail(z, rc);
	printf("tid 0x%016llx oids %u%s%s\n", (unsigned long long)ch.tid, ch.n_oids,
	       ch.too_old ? " too-old" : "", ch.truncated ? " truncated" : "");
	for (uint32_t i = 0; i < ch.n_oids; i++)
		print_id(NULL, ch.oids[i]);
	return ZAP_CLI_EXIT_OK;
}

static int cmd_new_oids(struct zap_cli *z)
{
	uint64_t count = 1, first = 0;
	uint32_t n = 0;
	if (z->a->n_pos > 0)
		(void)parse_u64(z->a->pos[0], &count);
	int rc = zap_client_new_oids(z->client, (uint32_t)count, &first, &n);
	if (rc != 0)
		return client_fail(z, rc);
	for (uint32_t i = 0; i < n && first + i < ZAP_CP_BAD_OID; i++)
		print_id(NULL, first + i);
	return ZAP_CLI_EXIT_OK;
}

static int cmd_pack(struct zap_cli *z)
{
	uint64_t tid = 0, packed = 0;
	(void)parse_tid("tid", z->a->pos[0], &tid);
	int rc = zap_client_pack(z->client, tid, &packed);
	if (rc != 0)
		return client_fail(z, rc);
	print_id(NULL, packed);
	return ZAP_CLI_EXIT_OK;
}

/** Decode an even-length hex string into a new buffer. @return 0; -EINVAL; -ENOMEM. */
static int hex_decode(const char *s, uint8_t **out, uint32_t *len)
{
	size_t n = strlen(s);
	if (n % 2 != 0 || n / 2 > ZAP_CLIENT_DEFAULT_MAX_RECORD_BYTES)
		return -EINVAL;
	uint8_t *b = malloc(n / 2 + 1);
	if (b == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = digit_value(s[2 * i], 16), lo = digit_value(s[2 * i + 1], 16);
		if (hi < 0 || lo < 0) {
			free(b);
			return -EINVAL;
		}
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	*out = b;
	*len = (uint32_t)(n / 2);
	return 0;
}

static int cmd_put(struct zap_cli *z)
{
	static const char user[] = "zap", desc[] = "zap put";
	uint64_t oid = 0, base = z->a->base, tid = 0;
	uint8_t *hex = NULL;
	struct zap_cp_store st = {0};
	(void)parse_oid(z->a->pos[0], &oid);
	if (z->a->opts_given & ZAP_CLI_OPT_HEX) {
		if (hex_decode(z->a->pos[1], &hex, &st.len) != 0)
			return node_fail(z, "out of memory"); /* the syntax was checked */
		st.data = hex;
	} else {
		st.data = z->a->pos[1];
		st.len = (uint32_t)strlen(z->a->pos[1]);
	}
	if (!(z->a->opts_given & ZAP_CLI_OPT_BASE)) {
		struct zap_client_record rec;
		int rc = zap_client_load(z->client, oid, 1, &rec);
		if (rc != 0 && rc != -ENOENT) {
			free(hex);
			return client_fail(z, rc);
		}
		base = rc == 0 ? rec.serial : 0;
	}
	st.oid = oid;
	st.base_serial = base;
	struct zap_client_txn t = {
	    .text =
		{
		    .user = user,
		    .user_len = sizeof(user) - 1,
		    .description = desc,
		    .description_len = sizeof(desc) - 1,
		},
	    .stores = &st,
	    .n_stores = 1,
	};
	struct zap_client_conflict cf = {0};
	int rc = zap_client_commit_oneshot(z->client, &t, &tid, &cf);
	free(hex);
	if (rc == ZAP_CLIENT_E_CONFLICT)
		return node_fail(
		    z, "conflict on oid 0x%016llx: committed serial 0x%016llx, yours 0x%016llx",
		    (unsigned long long)cf.oid, (unsigned long long)cf.serial,
		    (unsigned long long)cf.base_serial);
	if (rc != 0)
		return client_fail(z, rc);
	print_id(NULL, tid);
	return ZAP_CLI_EXIT_OK;
}

static const struct zap_cli_cmd zap_cli_cmds[] = {
    {"last-tid", "last-tid [--sync]", 0, 0, ZAP_CLI_OPT_SYNC, cmd_last_tid},
    {"get", "get OID [--sync]", 1, 1, ZAP_CLI_OPT_SYNC, cmd_get},
    {"put", "put OID VALUE [--base SERIAL] [--hex]", 2, 2, ZAP_CLI_OPT_BASE | ZAP_CLI_OPT_HEX,
     cmd_put},
    {"load-before", "load-before OID TID", 2, 2, 0, cmd_load_before},
    {"history", "history OID [--max N]", 1, 1, ZAP_CLI_OPT_MAX, cmd_history},
    {"changes-since", "changes-since TID [--max N]", 1, 1, ZAP_CLI_OPT_MAX, cmd_changes_since},
    {"new-oids", "new-oids [N]", 0, 1, 0, cmd_new_oids},
    {"sync", "sync", 0, 0, 0, cmd_sync},
    {"pack", "pack TID", 1, 1, 0, cmd_pack},
};
#define ZAP_CLI_N_CMDS (sizeof(zap_cli_cmds) / sizeof(zap_cli_cmds[0]))

static void usage_full(FILE *f)
{
	fputs("usage: zap [--config FILE] --node ID [--timeout MS] CMD ...\n"
	      "       zap --help | --version\n"
	      "  --config FILE  cluster config (default " ZAP_CLI_DEFAULT_CONFIG
	      ", from the current\n"
	      "                 directory, else from the source tree zap was built from)\n"
	      "  --node ID      the node to ask (its client_udp address)\n"
	      "  --timeout MS   give up after MS milliseconds, over 3 tries (default 1500)\n"
	      "  --help, -h     print this text and exit\n"
	      "  --version      print \"zap VERSION\" and exit\n"
	      "commands:\n",
	      f);
	for (size_t i = 0; i < ZAP_CLI_N_CMDS; i++)
		fprintf(f, "  %s\n", zap_cli_cmds[i].synopsis);
	fputs("OIDs, TIDs and serials: decimal or 0x-hex; printed as 0x%016x.\n"
	      "exit status: 0 success, 1 failure, 2 bad arguments.\n",
	      f);
}

/* ---------------------------------------------------------------- argument parsing */

/** Parse one command option at argv[*i]. @return 0; 1 not an option; or exit 2 (printed). */
static int parse_cmd_opt(int argc, char **argv, int *i, struct zap_cli_args *a)
{
	const char *v = NULL;
	const struct zap_cli_cmd *c = a->cmd;
	unsigned bit;
	uint64_t n = 0;
	int m = 0;
	if (strcmp(argv[*i], "--sync") == 0)
		bit = ZAP_CLI_OPT_SYNC;
	else if (strcmp(argv[*i], "--hex") == 0)
		bit = ZAP_CLI_OPT_HEX;
	else if ((m = match_opt(argc, argv, i, "--base", &v)) != 0)
		bit = ZAP_CLI_OPT_BASE;
	else if ((m = match_opt(argc, argv, i, "--max", &v)) != 0)
		bit = ZAP_CLI_OPT_MAX;
	else if (argv[*i][0] == '-' && argv[*i][1] != '\0')
		return usage_error("%s: unknown option \"%.64s\"", c->name, argv[*i]);
	else
		return 1;
	if (!(c->opts & bit))
		return usage_error("%s takes no option \"%.64s\"", c->name, argv[*i]);
	if (a->opts_given & bit)
		return usage_error("%s: option given twice", c->name);
	a->opts_given |= bit;
	if (bit == ZAP_CLI_OPT_BASE || bit == ZAP_CLI_OPT_MAX) {
		if (m < 0)
			return usage_error("%s: option %s needs a value", c->name, argv[*i]);
		if (bit == ZAP_CLI_OPT_BASE)
			return parse_tid("base serial", v, &a->base);
		if (parse_bounded("--max", v, 1, ZAP_CLI_MAX_ITEMS, &n) != 0)
			return ZAP_CLI_EXIT_USAGE;
		a->max = (uint32_t)n;
	}
	return 0;
}

/** Check the positional arguments of the command. @return 0 or exit 2 (printed). */
static int check_positionals(const struct zap_cli_args *a)
{
	const struct zap_cli_cmd *c = a->cmd;
	uint64_t v = 0;
	uint8_t *b = NULL;
	uint32_t len = 0;
	if (a->n_pos < c->min_pos)
		return usage_error("%s: missing argument: %s", c->name, c->synopsis);
	if (c->run == cmd_get || c->run == cmd_history || c->run == cmd_put ||
	    c->run == cmd_load_before)
		if (parse_oid(a->pos[0], &v) != 0)
			return ZAP_CLI_EXIT_USAGE;
	if (c->run == cmd_load_before && parse_tid("tid", a->pos[1], &v) != 0)
		return ZAP_CLI_EXIT_USAGE;
	if (c->run == cmd_changes_since && parse_tid("tid", a->pos[0], &v) != 0)
		return ZAP_CLI_EXIT_USAGE;
	if (c->run == cmd_pack && parse_bounded("tid", a->pos[0], 1, UINT64_MAX, &v) != 0)
		return ZAP_CLI_EXIT_USAGE;
	if (c->run == cmd_new_oids && a->n_pos > 0 &&
	    parse_bounded("count", a->pos[0], 1, ZAP_CP_MAX_NEW_OIDS, &v) != 0)
		return ZAP_CLI_EXIT_USAGE;
	if (c->run == cmd_put && (a->opts_given & ZAP_CLI_OPT_HEX)) {
		int rc = hex_decode(a->pos[1], &b, &len);
		free(b);
		if (rc == -EINVAL)
			return usage_error("put --hex: VALUE must be an even number of hex digits");
	}
	if (c->run == cmd_put && strlen(a->pos[1]) > ZAP_CLIENT_DEFAULT_MAX_RECORD_BYTES)
		return usage_error("put: VALUE is larger than %u bytes",
				   ZAP_CLIENT_DEFAULT_MAX_RECORD_BYTES);
	return 0;
}

/** Parse the command line. @return 0; -1 --help or --version printed; or exit 2 (printed). */
static int parse_args(int argc, char **argv, struct zap_cli_args *a)
{
	const char *v = NULL;
	uint64_t n = 0;
	int have_node = 0, i = 1, m;
	a->timeout_ms = ZAP_CLI_DEFAULT_TIMEOUT_MS;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage_full(stdout);
			return -1;
		} else if (strcmp(argv[i], "--version") == 0) {
			fputs("zap " ZAP_VERSION "\n", stdout);
			return -1;
		} else if ((m = match_opt(argc, argv, &i, "--config", &v)) != 0) {
			if (m < 0 || *v == '\0')
				return usage_error("--config needs a file");
			a->config_path = v;
		} else if ((m = match_opt(argc, argv, &i, "--node", &v)) != 0) {
			if (m < 0)
				return usage_error("--node needs an id");
			if (parse_bounded("node id", v, 1, UINT16_MAX, &n) != 0)
				return ZAP_CLI_EXIT_USAGE;
			a->node_id = (uint16_t)n;
			have_node = 1;
		} else if ((m = match_opt(argc, argv, &i, "--timeout", &v)) != 0) {
			if (m < 0)
				return usage_error("--timeout needs milliseconds");
			if (parse_bounded("timeout (ms)", v, ZAP_CLI_MIN_TIMEOUT_MS,
					  ZAP_CLI_MAX_TIMEOUT_MS, &n) != 0)
				return ZAP_CLI_EXIT_USAGE;
			a->timeout_ms = (uint32_t)n;
		} else {
			return usage_error("unknown option \"%.64s\"", argv[i]);
		}
	}
	if (i >= argc)
		return usage_error("no command given");
	for (size_t k = 0; k < ZAP_CLI_N_CMDS; k++)
		if (strcmp(argv[i], zap_cli_cmds[k].name) == 0)
			a->cmd = &zap_cli_cmds[k];
	if (a->cmd == NULL)
		return usage_error("unknown command \"%.64s\"", argv[i]);
	if (!have_node)
		return usage_error("--node ID is required");
	int only_pos = 0;
	for (i++; i < argc; i++) {
		if (!only_pos && strcmp(argv[i], "--") == 0) {
			only_pos = 1;
			continue;
		}
		int rc = only_pos ? 1 : parse_cmd_opt(argc, argv, &i, a);
		if (rc == 0)
			continue;
		if (rc != 1)
			return rc;
		if (a->n_pos >= a->cmd->max_pos)
			return usage_error("%s: too many arguments: %s", a->cmd->name,
					   a->cmd->synopsis);
		a->pos[a->n_pos++] = argv[i];
	}
	return check_positionals(a);
}

/* ---------------------------------------------------------------- config and session */

/** Pick the config file: --config, else the default from cwd, else from the source tree. */
static const char *config_file(const struct zap_cli_args *a, char *buf, size_t cap)
{
	if (a->config_path != NULL)
		return a->config_path;
	if (access(ZAP_CLI_DEFAULT_CONFIG, F_OK) == 0 || ZAP_CLI_SOURCE_ROOT[0] == '\0')
		return ZAP_CLI_DEFAULT_CONFIG;
	int n = snprintf(buf, cap, "%s/%s", ZAP_CLI_SOURCE_ROOT, ZAP_CLI_DEFAULT_CONFIG);
	if (n < 0 || (size_t)n >= cap)
		return ZAP_CLI_DEFAULT_CONFIG;
	return buf;
}

/** Load the config and open a client of the node. @return exit status (printed). */
static int open_session(const struct zap_cli_args *a, struct zap_cli *z)
{
	char path_buf[4096], err[512] = "";
	const char *path = config_file(a, path_buf, sizeof(path_buf));
	struct zap_config *cfg = NULL;
	int rc = zap_config_load(path, &cfg, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "zap: %s\n", err[0] != '\0' ? err : strerror(-rc));
		return ZAP_CLI_EXIT_FAIL;
	}
	const struct zap_node_config *node = zap_config_node(cfg, a->node_id);
	if (node == NULL) {
		fprintf(stderr, "zap: node %u is not in %s\n", (unsigned)a->node_id, path);
		zap_config_free(cfg);
		return ZAP_CLI_EXIT_FAIL;
	}
	if (node->client_udp.host == NULL || node->client_udp.port == 0) {
		fprintf(stderr, "zap: node %u has no client_udp in %s\n", (unsigned)a->node_id,
			path);
		zap_config_free(cfg);
		return ZAP_CLI_EXIT_FAIL;
	}
	const char *host = node->client_udp.host;
	int v6 = strchr(host, ':') != NULL;
	snprintf(z->addr, sizeof(z->addr), "%s%.256s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "",
		 (unsigned)node->client_udp.port);
	struct zap_client_opts opts = {
	    .timeout_ms = a->timeout_ms / ZAP_CLI_TRIES,
	    .retries = ZAP_CLI_TRIES - 1,
	};
	rc = zap_client_open_opts(host, node->client_udp.port, cfg->cluster.id, &opts, &z->client);
	zap_config_free(cfg);
	if (rc == -ENOENT)
		return node_fail(z, "cannot resolve client_udp host %s", z->addr);
	if (rc != 0)
		return node_fail(z, "cannot open a client of %s: %s", z->addr,
				 zap_client_strerror(rc));
	zap_client_set_timeout(z->client, opts.timeout_ms, opts.retries);
	return ZAP_CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
	struct zap_cli_args a = {0};
	struct zap_cli z = {.a = &a};
	int rc = parse_args(argc, argv, &a);
	if (rc < 0 && fflush(stdout) == 0 && !ferror(stdout))
		return ZAP_CLI_EXIT_OK;
	if (rc < 0) {
		fprintf(stderr, "zap: writing the output: %s\n", strerror(errno));
		return ZAP_CLI_EXIT_FAIL;
	}
	if (rc != 0)
		return rc;
	rc = open_session(&a, &z);
	if (rc != ZAP_CLI_EXIT_OK)
		return rc;
	rc = a.cmd->run(&z);
	zap_client_close(z.client);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (rc == ZAP_CLI_EXIT_OK)
			fprintf(stderr, "zap: writing the output: %s\n", strerror(errno));
		return ZAP_CLI_EXIT_FAIL;
	}
	return rc;
}
