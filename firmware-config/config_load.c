/*
 * config_load.c: the loader's entry points, on top of its other files.
 *
 * zap_config_load_string() runs the pipeline described in config_internal.h:
 * libyaml tree (lines, config_tree.c) -> schema walk (precise errors,
 * config_schema.c) -> libcyaml load (the structs) -> zcfg_build() (defaults,
 * conversions, cross-field rules: config_check.c, config_nodes.c). The first
 * error found is the one reported, always as "NAME:LINE: message" (or
 * "NAME: message" when the problem is the file itself).
 *
 * libcyaml should never reject what the schema walk accepted; if it does, its
 * own message is reported with the line from its backtrace, so the format
 * holds even then.
 *
 * No globals: every call carries its own state, so loads may run in parallel.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"

/* What libcyaml said, kept for the (unexpected) case that it rejects input. */
struct cyaml_capture {
	char msg[256];
	unsigned line;
};

static void cyaml_capture_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	struct cyaml_capture *cap = ctx;
	char buf[256];
	const char *p;

	if (level < CYAML_LOG_ERROR)
		return;
	vsnprintf(buf, sizeof(buf), fmt, args);
	buf[strcspn(buf, "\n")] = '\0';
	p = strstr(buf, "(line: ");
	if (p != NULL) {
		if (cap->line == 0)
			cap->line = (unsigned)strtoul(p + 7, NULL, 10);
		return;
	}
	if (cap->msg[0] == '\0' && strstr(buf, "Backtrace") == NULL)
		snprintf(cap->msg, sizeof(cap->msg), "%s",
			 strncmp(buf, "Load: ", 6) == 0 ? buf + 6 : buf);
}

static int load_raw(const char *yaml, size_t len, struct raw_config **raw, struct zcfg_err *e)
{
	struct cyaml_capture cap = {.msg = "", .line = 0};
	const cyaml_config_t cfg = {
	    .log_fn = cyaml_capture_log,
	    .log_ctx = &cap,
	    .mem_fn = cyaml_mem,
	    .log_level = CYAML_LOG_ERROR,
	    .flags = CYAML_CFG_NO_ALIAS,
	};
	cyaml_err_t err;

	err = cyaml_load_data((const uint8_t *)yaml, len, &cfg, &zcfg_schema, (cyaml_data_t **)raw,
			      NULL);
	if (err == CYAML_OK)
		return 0;
	*raw = NULL;
	if (err == CYAML_ERR_OOM) {
		zcfg_error(e, 0, "out of memory");
		return -ENOMEM;
	}
	return zcfg_error(e, cap.line ? cap.line : 1, "%s",
			  cap.msg[0] ? cap.msg : cyaml_strerror(err));
}

static void free_raw(struct raw_config *raw)
{
	const cyaml_config_t cfg = {
	    .mem_fn = cyaml_mem,
	    .log_level = CYAML_LOG_ERROR,
	    .log_fn = NULL,
	};

	if (raw != NULL)
		cyaml_free(&cfg, &zcfg_schema, raw, 0);
}

int zap_config_load_string(const char *name, const char *yaml, size_t len, struct zap_config **out,
			   char *err, size_t err_len)
{
	struct zcfg_err e = {.name = name ? name : "<config>", .buf = err, .len = err_len};
	struct raw_config *raw = NULL;
	struct ynode *root = NULL;
	struct zap_config *c = NULL;
	int rc;

	if (err != NULL && err_len > 0)
		err[0] = '\0';
	if (out == NULL || (yaml == NULL && len > 0))
		return zcfg_error(&e, 0, "invalid arguments");
	*out = NULL;
	if (len > ZAP_CONFIG_FILE_MAX_BYTES) {
		zcfg_error(&e, 0, "larger than %u bytes", ZAP_CONFIG_FILE_MAX_BYTES);
		return -EFBIG;
	}
	rc = ytree_parse(yaml ? yaml : "", len, &root, &e);
	if (rc == 0)
		rc = zcfg_schema_check(root, &e);
	if (rc == 0)
		rc = load_raw(yaml, len, &raw, &e);
	if (rc == 0) {
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			rc = -ENOMEM;
			zcfg_error(&e, 0, "out of memory");
		}
	}
	if (rc == 0)
		rc = zcfg_build(raw, root, c, &e);
	if (rc == 0) {
		c->source = strdup(e.name);
		if (c->source == NULL) {
			rc = -ENOMEM;
			zcfg_error(&e, 0, "out of memory");
		}
	}
	free_raw(raw);
	ytree_free(root);
	if (rc < 0) {
		zap_config_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* Read a whole file of at most ZAP_CONFIG_FILE_MAX_BYTES. */
static int read_file(const char *path, char **buf, size_t *len, struct zcfg_err *e)
{
	struct stat st;
	size_t used = 0;
	char *b;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		zcfg_error(e, 0, "cannot open: %s", strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		zcfg_error(e, 0, "is a directory");
		return -EISDIR;
	}
	b = malloc(ZAP_CONFIG_FILE_MAX_BYTES + 1);
	if (b == NULL) {
		close(fd);
		zcfg_error(e, 0, "out of memory");
		return -ENOMEM;
	}
	for (;;) {
		ssize_t n = read(fd, b + used, ZAP_CONFIG_FILE_MAX_BYTES + 1 - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			zcfg_error(e, 0, "cannot read: %s", strerror(-rc));
			break;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > ZAP_CONFIG_FILE_MAX_BYTES) {
			rc = -EFBIG;
			zcfg_error(e, 0, "larger than %u bytes", ZAP_CONFIG_FILE_MAX_BYTES);
			break;
		}
	}
	close(fd);
	if (rc < 0) {
		free(b);
		return rc;
	}
	*buf = b;
	*len = used;
	return 0;
}

int zap_config_load(const char *path, struct zap_config **out, char *err, size_t err_len)
{
	struct zcfg_err e = {.name = path ? path : "<null>", .buf = err, .len = err_len};
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (err != NULL && err_len > 0)
		err[0] = '\0';
	if (out != NULL)
		*out = NULL;
	if (path == NULL || out == NULL)
		return zcfg_error(&e, 0, "invalid arguments");
	rc = read_file(path, &buf, &len, &e);
	if (rc < 0)
		return rc;
	rc = zap_config_load_string(path, buf, len, out, err, err_len);
	free(buf);
	return rc;
}
