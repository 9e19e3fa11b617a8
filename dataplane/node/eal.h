/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap EAL set-up: the DPDK EAL argument vector of one node, built from the
 * YAML configuration, and the EAL start that checks every configured port
 * appeared.
 *
 * zap_eal_args() is pure: everything it depends on outside the config (free
 * hugepages, CPUs online, log level) is an input, so the tests check the exact
 * arguments for every shipped config without starting EAL. zap_eal_init()
 * is the thin shell that reads /proc/meminfo, calls rte_eal_init() and then
 * looks every configured port up by name, because a vdev that fails to probe
 * does not fail rte_eal_init().
 *
 * Arguments, in order: PROG --file-prefix zap-<cluster id hex>-n<node>
 * [--no-huge -m MB] (--no-pci | -a PCI...) [--vdev ARGS]... --lcores LIST
 * [--log-level LEVEL]. Busy lcores are pinned to the CPU of their own number;
 * adaptive lcores float over the CPUs no busy lcore owns (all CPUs if busy
 * lcores own them all), so processes sharing a small box do not all land on
 * CPU 0.
 *
 * Threading: zap_eal_args() is reentrant. zap_eal_init() / zap_eal_cleanup()
 * run once per process, on the main thread.
 */
#ifndef ZAP_EAL_H
#define ZAP_EAL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Memory EAL takes with --no-huge, in MiB (64 and 256 both work; see
 * docs/operations.md, "Hugepages or not"). */
#define ZAP_EAL_NO_HUGE_MEM_MB 256
/** Longest argument vector zap_eal_args() builds (argv[0] included). */
#define ZAP_EAL_MAX_ARGS (8 + 2 * ZAP_CONFIG_MAX_PORTS + 4)
/** Highest CPU count the --lcores builder describes. */
#define ZAP_EAL_MAX_CPUS 1024

/** Inputs of zap_eal_args() that do not come from the YAML. */
struct zap_eal_opts {
	const char *prog;	 /**< argv[0]; NULL means "zapd" */
	long hugepages_free;	 /**< HugePages_Free from /proc/meminfo; <= 0 → --no-huge */
	uint32_t no_huge_mem_mb; /**< -m with --no-huge; 0 → ZAP_EAL_NO_HUGE_MEM_MB */
	unsigned cpus_online;	 /**< CPUs adaptive lcores may float over; 0 → no floating */
	const char *log_level;	 /**< --log-level value ("*:notice", "8"); NULL → none */
	const char *file_prefix; /**< overrides the derived prefix; NULL → derived */
};

/**
 * Build the EAL argument vector of node @p node_id.
 *
 * @param cfg       loaded configuration
 * @param node_id   the node to be
 * @param opts      inputs from outside the YAML (see struct zap_eal_opts)
 * @param argv      out: max_args slots; argv[argc] is set to NULL
 * @param max_args  number of slots in @p argv (ZAP_EAL_MAX_ARGS is always enough)
 * @param buf       storage for the argument strings; argv points into it
 * @param buf_len   size of @p buf (4 KiB plus the vdev strings is enough)
 * @return argc (>= 1) on success; -ENOENT if the config has no such node;
 *         -ENOSPC if @p argv or @p buf is too small; -EINVAL on a NULL argument.
 */
int zap_eal_args(const struct zap_config *cfg, uint16_t node_id, const struct zap_eal_opts *opts,
		 char **argv, int max_args, char *buf, size_t buf_len);

/**
 * The HugePages_Free figure of a /proc/meminfo text.
 *
 * @return the count (>= 0), or -ENOENT if the text has no such line.
 */
long zap_eal_parse_hugepages_free(const char *meminfo);

/** HugePages_Free of this machine (reads /proc/meminfo); 0 if unreadable. */
long zap_eal_hugepages_free(void);

/** The name EAL gives the port of @p pc: its vdev name, or its PCI address. */
const char *zap_eal_port_name(const struct zap_port_config *pc);

/**
 * Start EAL for node @p node_id and check that each of its ports was probed.
 *
 * Reads HugePages_Free and the online CPU count itself when @p opts leaves
 * them at 0 / 0 (pass hugepages_free = -1 to force --no-huge).
 *
 * @param port_ids  out: the DPDK port id of each configured port, in config
 *                  order (node->n_ports entries)
 * @param err       on failure, one line naming the argument or port at fault
 * @return 0 on success; -ENOENT if the node is not in the config; -ENODEV if
 *         a configured port did not appear (EAL stays up: call zap_eal_cleanup());
 *         the negative rte_errno of a failed rte_eal_init() otherwise.
 */
int zap_eal_init(const struct zap_config *cfg, uint16_t node_id, const struct zap_eal_opts *opts,
		 uint16_t *port_ids, char *err, size_t err_len);

/** rte_eal_cleanup(), after zap_eal_init() succeeded or returned -ENODEV. */
void zap_eal_cleanup(void);

#ifdef __cplusplus
}
#endif

#endif /* ZAP_EAL_H */
