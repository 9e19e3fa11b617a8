/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zapd: the zap node daemon.
 *
 *   zapd --check-config FILE        validate a configuration and exit
 *   zapd --config FILE [--node ID] --check-ports
 *                                   start EAL for the node, bring its ports up,
 *                                   print one line per port, shut down
 *   zapd --config FILE --demo       single-node demo: commits and reads through
 *                                   the log, the transaction state machine and
 *                                   the store, then recovers from the log
 *   zapd --config FILE [--node ID]  run the node (node.c) until SIGINT / SIGTERM
 *   zapd --help | --version         usage or version on stdout, exit 0
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "demo.h"
#include "eal.h"
#include "node.h"
#include "port.h"

#define ZAPD_EXIT_USAGE 2

static void usage(FILE *f)
{
	fprintf(f,
		"usage: zapd --check-config FILE\n"
		"       zapd --config FILE [--node ID] --demo [--keep]\n"
		"       zapd --config FILE [--node ID] --check-ports\n"
		"       zapd --config FILE [--node ID]       run the node until SIGINT/SIGTERM\n"
		"       zapd --help | --version\n"
		"  --check-config FILE  validate FILE; print FILE:LINE: error and exit 1 if bad\n"
		"  --config FILE        configuration to run with\n"
		"  --node ID            node of the configuration to be (default: the first)\n"
		"  --demo               run the single-node demo and exit\n"
		"  --keep               keep the demo's data directory\n"
		"  --check-ports        start EAL, initialise the node's ports, print them, exit\n"
		"                       (EAL log level: $ZAPD_EAL_LOG_LEVEL, default notice)\n"
		"  --help               print this help and exit\n"
		"  --version            print the version (zapd " ZAP_VERSION ") and exit\n");
}

static int load_config(const char *path, struct zap_config **cfg)
{
	char err[512];
	int rc = zap_config_load(path, cfg, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	return 0;
}

static int parse_node(const char *s, uint16_t *id)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v == 0 || v > UINT16_MAX)
		return -EINVAL;
	*id = (uint16_t)v;
	return 0;
}

/* --check-ports: EAL and the node's ports up and down once (dataplane/node/port.c). */
static int run_check_ports(const struct zap_config *cfg, uint16_t node_id)
{
	if (node_id == 0)
		node_id = cfg->nodes[0].id;
	const char *level = getenv("ZAPD_EAL_LOG_LEVEL");
	struct zap_eal_opts opts = {.log_level = level != NULL ? level : "notice"};
	char err[1024];
	if (zap_port_check_all(cfg, node_id, &opts, stdout, err, sizeof(err)) != 0) {
		fprintf(stderr, "zapd: %s\n", err);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"check-config", required_argument, NULL, 'c'},
	    {"config", required_argument, NULL, 'f'},
	    {"node", required_argument, NULL, 'n'},
	    {"demo", no_argument, NULL, 'd'},
	    {"keep", no_argument, NULL, 'k'},
	    {"check-ports", no_argument, NULL, 'P'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *check = NULL, *config = NULL;
	struct zap_demo_opts demo = {0};
	int run_demo = 0, check_ports = 0, c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			check = optarg;
			break;
		case 'f':
			config = optarg;
			break;
		case 'n':
			if (parse_node(optarg, &demo.node_id) != 0) {
				fprintf(stderr, "zapd: --node: not a node id: '%s'\n", optarg);
				return ZAPD_EXIT_USAGE;
			}
			break;
		case 'd':
			run_demo = 1;
			break;
		case 'k':
			demo.keep = 1;
			break;
		case 'P':
			check_ports = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			fputs("zapd " ZAP_VERSION "\n", stdout);
			return 0;
		default:
			usage(stderr);
			return ZAPD_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "zapd: unexpected argument '%s'\n", argv[optind]);
		return ZAPD_EXIT_USAGE;
	}
	struct zap_config *cfg = NULL;
	if (check != NULL) {
		if (config != NULL || run_demo || check_ports) {
			fprintf(stderr, "zapd: --check-config takes no other option\n");
			return ZAPD_EXIT_USAGE;
		}
		if (load_config(check, &cfg) != 0)
			return 1;
		printf("%s: ok (%u node%s)\n", check, cfg->n_nodes, cfg->n_nodes == 1 ? "" : "s");
		zap_config_free(cfg);
		return 0;
	}
	if (config == NULL) {
		usage(stderr);
		return ZAPD_EXIT_USAGE;
	}
	if (load_config(config, &cfg) != 0)
		return 1;
	int rc;
	if (check_ports) {
		rc = run_check_ports(cfg, demo.node_id);
	} else if (run_demo) {
		rc = zap_demo_run(cfg, &demo) == 0 ? 0 : 1;
	} else {
		const char *level = getenv("ZAPD_EAL_LOG_LEVEL");
		zap_node_set_argv(argv);
		rc = zap_node_run(cfg, demo.node_id, level != NULL ? level : "notice") == 0 ? 0 : 1;
		zap_config_free(cfg);
		zap_node_reexec_if_asked(); /* after a full clean-up (ZAPD_FULL_CLEANUP=1) */
		return rc;
	}
	zap_config_free(cfg);
	return rc;
}
