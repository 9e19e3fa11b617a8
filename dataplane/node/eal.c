/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap EAL set-up (see eal.h for the argument layout).
 *
 * The builder appends into one caller buffer through a small cursor (struct
 * args) that remembers the first overflow, so every append site stays a
 * single line and the function reports -ENOSPC once at the end. Nothing is
 * allocated. zap_eal_init() is the only function here that touches DPDK.
 */
#include "eal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>

/* Largest /proc/meminfo we read; the real one is about 1.5 KiB. */
#define ZAP_EAL_MEMINFO_MAX_BYTES 16384
/* Room for one "--lcores" value built on the stack before it is appended. */
#define ZAP_EAL_LCORES_MAX_BYTES 4096

/* Cursor over the caller's argv and string buffer. */
struct args {
	char **argv;
	int argc, max_args;
	char *buf;
	size_t used, len;
	bool overflow;
};

/* Append one formatted argument. */
__attribute__((format(printf, 2, 3))) static void args_add(struct args *a, const char *fmt, ...)
{
	if (a->overflow)
		return;
	if (a->argc + 1 >= a->max_args) { /* keep a slot for the NULL terminator */
		a->overflow = true;
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(a->buf + a->used, a->len - a->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= a->len - a->used) {
		a->overflow = true;
		return;
	}
	a->argv[a->argc++] = a->buf + a->used;
	a->argv[a->argc] = NULL;
	a->used += (size_t)n + 1;
}

/* Append "lo" or "lo-hi" (with a leading ',' unless first) to s. */
static int cpu_range_fmt(char *s, size_t len, size_t *used, bool first, unsigned lo, unsigned hi)
{
	int n = lo == hi ? snprintf(s + *used, len - *used, "%s%u", first ? "" : ",", lo)
			 : snprintf(s + *used, len - *used, "%s%u-%u", first ? "" : ",", lo, hi);
	if (n < 0 || (size_t)n >= len - *used)
		return -ENOSPC;
	*used += (size_t)n;
	return 0;
}

/*
 * The CPU set adaptive lcores float over: CPUs below cpus_online that no busy
 * lcore owns, or all of them if busy lcores own every one. Written as
 * "(a-b,c)" into s.
 */
static int float_set_fmt(const struct zap_config *cfg, unsigned cpus_online, char *s, size_t len)
{
	static const unsigned none = ~0u;
	bool owned[ZAP_EAL_MAX_CPUS] = {false};
	unsigned free_cpus = cpus_online;
	for (unsigned i = 0; i < cfg->n_lcores; i++) {
		const struct zap_lcore_config *l = &cfg->lcores[i];
		if (l->polling == ZAP_POLLING_BUSY && l->lcore < cpus_online && !owned[l->lcore]) {
			owned[l->lcore] = true;
			free_cpus--;
		}
	}
	size_t used = 0;
	s[used++] = '(';
	bool first = true;
	unsigned lo = none;
	for (unsigned cpu = 0; cpu <= cpus_online; cpu++) {
		bool usable = cpu < cpus_online && (free_cpus == 0 || !owned[cpu]);
		if (usable && lo == none)
			lo = cpu;
		if (!usable && lo != none) {
			if (cpu_range_fmt(s, len, &used, first, lo, cpu - 1) != 0)
				return -ENOSPC;
			first = false;
			lo = none;
		}
	}
	if (used + 2 > len)
		return -ENOSPC;
	s[used++] = ')';
	s[used] = '\0';
	return 0;
}

/* The --lcores value: "L@C" for busy lcores, "L@(set)" for adaptive ones. */
static int lcores_fmt(const struct zap_config *cfg, unsigned cpus_online, char *s, size_t len)
{
	char set[ZAP_EAL_LCORES_MAX_BYTES / 2];
	if (cpus_online > ZAP_EAL_MAX_CPUS)
		cpus_online = ZAP_EAL_MAX_CPUS;
	if (cpus_online > 0 && float_set_fmt(cfg, cpus_online, set, sizeof(set)) != 0)
		return -ENOSPC;
	size_t used = 0;
	s[0] = '\0';
	for (unsigned i = 0; i < cfg->n_lcores; i++) {
		const struct zap_lcore_config *l = &cfg->lcores[i];
		bool floating = cpus_online > 0 && l->polling == ZAP_POLLING_ADAPTIVE;
		int n = floating ? snprintf(s + used, len - used, "%s%u@%s", i ? "," : "",
					    (unsigned)l->lcore, set)
				 : snprintf(s + used, len - used, "%s%u@%u", i ? "," : "",
					    (unsigned)l->lcore, (unsigned)l->lcore);
		if (n < 0 || (size_t)n >= len - used)
			return -ENOSPC;
		used += (size_t)n;
	}
	return 0;
}

int zap_eal_args(const struct zap_config *cfg, uint16_t node_id, const struct zap_eal_opts *opts,
		 char **argv, int max_args, char *buf, size_t buf_len)
{
	if (cfg == NULL || opts == NULL || argv == NULL || buf == NULL || max_args < 1)
		return -EINVAL;
	const struct zap_node_config *node = zap_config_node(cfg, node_id);
	if (node == NULL)
		return -ENOENT;
	struct args a = {.argv = argv, .max_args = max_args, .buf = buf, .len = buf_len};
	argv[0] = NULL;

	args_add(&a, "%s", opts->prog != NULL ? opts->prog : "zapd");
	args_add(&a, "--file-prefix");
	if (opts->file_prefix != NULL)
		args_add(&a, "%s", opts->file_prefix);
	else
		args_add(&a, "zap-%llx-n%u", (unsigned long long)cfg->cluster.id,
			 (unsigned)node->id);
	if (opts->hugepages_free <= 0) {
		args_add(&a, "--no-huge");
		args_add(&a, "-m");
		args_add(&a, "%u",
			 opts->no_huge_mem_mb ? opts->no_huge_mem_mb : ZAP_EAL_NO_HUGE_MEM_MB);
	}
	bool any_pci = false;
	for (unsigned i = 0; i < node->n_ports; i++) {
		if (node->ports[i].kind == ZAP_PORT_KIND_PCI) {
			any_pci = true;
			args_add(&a, "-a");
			args_add(&a, "%s", node->ports[i].pci);
		}
	}
	if (!any_pci)
		args_add(&a, "--no-pci");
	for (unsigned i = 0; i < node->n_ports; i++) {
		if (node->ports[i].kind == ZAP_PORT_KIND_VDEV) {
			args_add(&a, "--vdev");
			args_add(&a, "%s", node->ports[i].vdev);
		}
	}
	if (cfg->n_lcores > 0) {
		char lcores[ZAP_EAL_LCORES_MAX_BYTES];
		if (lcores_fmt(cfg, opts->cpus_online, lcores, sizeof(lcores)) != 0)
			return -ENOSPC;
		args_add(&a, "--lcores");
		args_add(&a, "%s", lcores);
	}
	if (opts->log_level != NULL) {
		args_add(&a, "--log-level");
		args_add(&a, "%s", opts->log_level);
	}
	return a.overflow ? -ENOSPC : a.argc;
}

long zap_eal_parse_hugepages_free(const char *meminfo)
{
	static const char key[] = "HugePages_Free:";
	for (const char *line = meminfo; line != NULL && *line != '\0';) {
		if (strncmp(line, key, sizeof(key) - 1) == 0)
			return strtol(line + sizeof(key) - 1, NULL, 10);
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	return -ENOENT;
}

long zap_eal_hugepages_free(void)
{
	char text[ZAP_EAL_MEMINFO_MAX_BYTES];
	FILE *f = fopen("/proc/meminfo", "r");
	if (f == NULL)
		return 0;
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	long v = zap_eal_parse_hugepages_free(text);
	return v > 0 ? v : 0;
}

const char *zap_eal_port_name(const struct zap_port_config *pc)
{
	return pc->kind == ZAP_PORT_KIND_PCI ? pc->pci : pc->vdev_name;
}

/* The DPDK port id named @p name, or -ENODEV. */
static int find_port(const char *name, uint16_t *port_id)
{
	uint16_t pid;
	RTE_ETH_FOREACH_DEV(pid)
	{
		char n[RTE_ETH_NAME_MAX_LEN];
		if (rte_eth_dev_get_name_by_port(pid, n) == 0 && strcmp(n, name) == 0) {
			*port_id = pid;
			return 0;
		}
	}
	return -ENODEV;
}

int zap_eal_init(const struct zap_config *cfg, uint16_t node_id, const struct zap_eal_opts *opts,
		 uint16_t *port_ids, char *err, size_t err_len)
{
	const struct zap_node_config *node = zap_config_node(cfg, node_id);
	if (node == NULL) {
		snprintf(err, err_len, "node %u: not in the configuration", (unsigned)node_id);
		return -ENOENT;
	}
	struct zap_eal_opts o = *opts;
	if (o.hugepages_free == 0)
		o.hugepages_free = zap_eal_hugepages_free();
	if (o.cpus_online == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		o.cpus_online = n > 0 ? (unsigned)n : 0;
	}
	char *argv[ZAP_EAL_MAX_ARGS];
	char buf[8192];
	int argc = zap_eal_args(cfg, node_id, &o, argv, ZAP_EAL_MAX_ARGS, buf, sizeof(buf));
	if (argc < 0) {
		snprintf(err, err_len, "EAL arguments: %s", strerror(-argc));
		return argc;
	}
	/* rte_eal_init() may permute argv: keep the original order for messages. */
	char *eal_argv[ZAP_EAL_MAX_ARGS];
	memcpy(eal_argv, argv, sizeof(argv[0]) * (size_t)(argc + 1));
	/*
	 * EAL names a bad argument only in its log: keep what it logs during
	 * init, echo it to stderr, and look our ports up in it.
	 */
	char *log_text = NULL;
	size_t log_len = 0;
	FILE *log = open_memstream(&log_text, &log_len);
	if (log != NULL)
		rte_openlog_stream(log);
	int init_rc = rte_eal_init(argc, eal_argv);
	int e = rte_errno ? rte_errno : EINVAL;
	if (log != NULL) {
		rte_openlog_stream(NULL);
		fclose(log);
		fputs(log_text, stderr);
	}
	if (init_rc < 0) {
		const char *culprit = NULL;
		for (unsigned i = 0; culprit == NULL && i < node->n_ports; i++) {
			const char *name = zap_eal_port_name(&node->ports[i]);
			char quoted[256];
			snprintf(quoted, sizeof(quoted), "'%s'", name);
			if (log_text != NULL && strstr(log_text, quoted) != NULL)
				culprit = name;
		}
		size_t used;
		if (culprit != NULL)
			used = (size_t)snprintf(err, err_len, "port %s: rejected by EAL (%s);",
						culprit, rte_strerror(e));
		else
			used = (size_t)snprintf(err, err_len, "rte_eal_init: %s;", rte_strerror(e));
		used += (size_t)snprintf(err + used, used < err_len ? err_len - used : 0,
					 " EAL arguments:");
		for (int i = 1; i < argc && used < err_len; i++)
			used += (size_t)snprintf(err + used, err_len - used, " %s", argv[i]);
		free(log_text);
		return -e;
	}
	free(log_text);
	for (unsigned i = 0; i < node->n_ports; i++) {
		const char *name = zap_eal_port_name(&node->ports[i]);
		if (find_port(name, &port_ids[i]) != 0) {
			snprintf(
			    err, err_len,
			    "port %s: not probed by EAL (%u of %u ports present; check its %s)",
			    name, (unsigned)rte_eth_dev_count_avail(), node->n_ports,
			    node->ports[i].kind == ZAP_PORT_KIND_PCI ? "PCI address and driver"
								     : "vdev arguments");
			return -ENODEV;
		}
	}
	return 0;
}

void zap_eal_cleanup(void)
{
	rte_eal_cleanup();
}
