/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap-bench's command line (zap_bench.h): the options and their defaults,
 * getopt_long, the --addr list and the checks made before any connection.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zap_bench.h"

/* oids of loaded objects start here; new objects of commits live above 2^60 */
#define DEF_OID_BASE 0x100000ull

const char *const target_names[N_TARGETS] = {"native", "zeo",	"shm",
					     "etcd",   "fsync", "native-memif"};
const char *const op_names[N_OPS] = {"load",	 "commit", "commit2pc", "mix",
				     "conflict", "append", "blob", "overwrite"};

struct opts o = {
    .target = T_NATIVE,
    .op = OP_LOAD,
    .cluster_id = 0x7a01,
    .zipf_theta = 0.99,
    .objects = 1000,
    .oid_base = DEF_OID_BASE,
    .objs = 1,
    .value_size = 100,
    .write_pct = 10,
    .hot = 4,
    .clients = 1,
    .duration = 5,
    .warmup = 1,
    .timeout_ms = 1000,
    .blob_size = 100ull << 20,
    .label = "",
};

struct addr addrs[MAX_ADDRS];
unsigned n_addrs;

/* The usage: on stdout with exit 0 for --help, on stderr with exit 2 otherwise. */
static void usage_exit(FILE *f, int status)
{
	fprintf(f,
		"usage: zap-bench --target TARGET --addr ADDR [--op OP] [options]\n"
		"       zap-bench --zeo HOST:PORT [--op OP] [options]\n"
		"  --target T       native|native-memif|zeo|shm|etcd|fsync (default native)\n"
		"  --addr ADDR      HOST:PORT[,HOST:PORT...] (clients round robin); shm: a\n"
		"                   store path or local:N; fsync: a directory\n"
		"  --zeo HOST:PORT  --target zeo --addr HOST:PORT (any ZEO 5 server)\n"
		"  --op OP          load|commit|commit2pc|mix|conflict|append|blob|overwrite\n"
		"                   (default load); blob (zeo): commit a new object with a\n"
		"                   blob of --blob-size bytes (storeBlobStart/Chunk/End),\n"
		"                   then read it back (sendBlob) and compare every byte;\n"
		"                   overwrite: one object per commit, each client cycling\n"
		"                   through its share of --objects (the same oids in every\n"
		"                   run: a working set whose history grows)\n"
		"  --dist D         uniform|zipf: the oids loads pick (default uniform)\n"
		"  --zipf-theta T   skew of --dist zipf (default 0.99)\n"
		"  --objects N      oids loads pick from (default 1000)\n"
		"  --oid-base OID   first oid of the loaded objects (default 0x%llx)\n"
		"  --populate N     commit N objects from --oid-base first (default 0)\n"
		"  --objs K         objects per commit, 1..%u (default 1); fsync: writes of\n"
		"                   --value-size bytes before each fdatasync\n"
		"  --value-size B   bytes per object, 8..%u (default 100)\n"
		"  --blob-size B    blob: bytes per blob, streamed from a pattern, at least 1\n"
		"                   (default 104857600: 100 MiB)\n"
		"  --write-pct P    mix: percent of commits, 0..100 (default 10)\n"
		"  --hot H          conflict: hot oids, 1..%u (default 4)\n"
		"  --clients N      threads, one request in flight each, 1..%u (default 1)\n"
		"  --duration S     seconds measured (default 5); with --iterations the time\n"
		"                   bound: no operation starts after it\n"
		"  --iterations N   each client runs N measured operations, then stops (or at\n"
		"                   --duration); throughput over the time they took (default\n"
		"                   0: run for --duration)\n"
		"  --warmup S       seconds run before, not measured (default 1)\n"
		"  --rate OPS       open loop: Poisson arrivals, OPS per second in all\n"
		"                   (default 0: closed loop)\n"
		"  --cluster-id ID  native, native-memif: the cluster id (default 0x7a01)\n"
		"  --timeout-ms MS  native, native-memif: request timeout; zeo: the bound\n"
		"                   of each --idle-conns open (default 1000)\n"
		"  --idle-conns N   zeo: N more connections that register and stay idle\n"
		"                   for the run (refused ones are counted; default 0)\n"
		"  --label NAME     the run's name in the output\n"
		"  --json FILE      every figure and the options as JSON\n"
		"  --csv FILE       the histogram of all operations as CSV\n"
		"  --memif SOCKET   native-memif: socket of the node's client memif port\n"
		"  --help           this text\n",
		(unsigned long long)DEF_OID_BASE, MAX_OBJS, MAX_VALUE_SIZE, MAX_HOT, MAX_CLIENTS);
	exit(status);
}

static void usage(void)
{
	usage_exit(stderr, 2);
}

static int parse_addrs(void)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", o.addr);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *c = strrchr(t, ':');
		if (!c || n_addrs == MAX_ADDRS)
			return -1;
		*c = 0;
		snprintf(addrs[n_addrs].host, sizeof(addrs[n_addrs].host), "%s", t);
		addrs[n_addrs].port = (uint16_t)atoi(c + 1);
		n_addrs++;
	}
	return n_addrs ? 0 : -1;
}

static int lookup(const char *v, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(v, names[i]) == 0)
			return i;
	fprintf(stderr, "zap-bench: unknown value '%s'\n", v);
	usage();
	return -1;
}

static const struct option long_opts[] = {
    {"target", 1, 0, 't'},
    {"addr", 1, 0, 'a'},
    {"op", 1, 0, 'o'},
    {"dist", 1, 0, 'd'},
    {"zipf-theta", 1, 0, 'Z'},
    {"objects", 1, 0, 'n'},
    {"oid-base", 1, 0, 'B'},
    {"populate", 1, 0, 'P'},
    {"objs", 1, 0, 'k'},
    {"value-size", 1, 0, 'v'},
    {"write-pct", 1, 0, 'W'},
    {"hot", 1, 0, 'H'},
    {"clients", 1, 0, 'c'},
    {"duration", 1, 0, 'D'},
    {"warmup", 1, 0, 'w'},
    {"rate", 1, 0, 'r'},
    {"cluster-id", 1, 0, 'C'},
    {"timeout-ms", 1, 0, 'T'},
    {"label", 1, 0, 'l'},
    {"json", 1, 0, 'j'},
    {"csv", 1, 0, 'x'},
    {"memif", 1, 0, 'M'},
    {"zeo", 1, 0, 'z'},
    {"idle-conns", 1, 0, 'I'},
    {"iterations", 1, 0, 'N'},
    {"blob-size", 1, 0, 'b'},
    {"help", 0, 0, 'h'},
    {0, 0, 0, 0},
};

/* One option into o; an unknown option or value prints the usage and exits. */
static void set_opt(int ch, const char *arg)
{
	switch (ch) {
	case 't':
		o.target = (enum target)lookup(arg, target_names, N_TARGETS);
		break;
	case 'a':
		snprintf(o.addr, sizeof(o.addr), "%s", arg);
		break;
	case 'z':
		o.target = T_ZEO;
		snprintf(o.addr, sizeof(o.addr), "%s", arg);
		break;
	case 'o':
		o.op = (enum op)lookup(arg, op_names, N_OPS);
		break;
	case 'd':
		o.zipf = strcmp(arg, "zipf") == 0;
		if (!o.zipf && strcmp(arg, "uniform") != 0)
			usage();
		break;
	case 'Z':
		o.zipf_theta = atof(arg);
		break;
	case 'n':
		o.objects = strtoull(arg, NULL, 0);
		break;
	case 'B':
		o.oid_base = strtoull(arg, NULL, 0);
		break;
	case 'P':
		o.populate = strtoull(arg, NULL, 0);
		break;
	case 'k':
		o.objs = (uint32_t)atoi(arg);
		break;
	case 'v':
		o.value_size = (uint32_t)atoi(arg);
		break;
	case 'W':
		o.write_pct = (uint32_t)atoi(arg);
		break;
	case 'H':
		o.hot = (uint32_t)atoi(arg);
		break;
	case 'c':
		o.clients = (uint32_t)atoi(arg);
		break;
	case 'D':
		o.duration = atof(arg);
		break;
	case 'w':
		o.warmup = atof(arg);
		break;
	case 'r':
		o.rate = atof(arg);
		break;
	case 'C':
		o.cluster_id = strtoull(arg, NULL, 0);
		break;
	case 'T':
		o.timeout_ms = (uint32_t)atoi(arg);
		break;
	case 'l':
		o.label = arg;
		break;
	case 'j':
		o.json = arg;
		break;
	case 'x':
		o.csv = arg;
		break;
	case 'M':
		o.memif = arg;
		break;
	case 'I':
		o.idle_conns = (uint32_t)strtoul(arg, NULL, 0);
		if (o.idle_conns > MAX_IDLE_CONNS)
			usage();
		break;
	case 'N':
		o.iterations = (uint32_t)strtoul(arg, NULL, 0);
		break;
	case 'b':
		o.blob_size = strtoull(arg, NULL, 0);
		break;
	case 'h':
		usage_exit(stdout, 0);
		break;
	default:
		usage();
	}
}

int zb_parse_args(int argc, char **argv)
{
	int ch;
	while ((ch = getopt_long(argc, argv, "h", long_opts, NULL)) != -1)
		set_opt(ch, optarg);
	if (!o.addr[0] || o.clients == 0 || o.clients > MAX_CLIENTS || o.objs == 0 ||
	    o.objs > MAX_OBJS || o.hot == 0 || o.hot > MAX_HOT || o.objects == 0 ||
	    o.duration <= 0 || o.value_size < 8 || o.value_size > MAX_VALUE_SIZE ||
	    o.write_pct > 100 || o.blob_size == 0)
		usage();
	if (o.target == T_FSYNC)
		o.op = OP_APPEND;
	if (o.target == T_SHM && o.op != OP_LOAD) {
		fprintf(stderr, "zap-bench: the shm target only loads\n");
		return 2;
	}
	if (o.op == OP_BLOB && o.target != T_ZEO) {
		fprintf(stderr, "zap-bench: --op blob needs the zeo target\n");
		usage();
	}
	if (o.iterations && o.rate > 0) {
		fprintf(stderr, "zap-bench: --iterations is closed loop: no --rate\n");
		usage();
	}
	if (o.idle_conns && o.target != T_ZEO) {
		fprintf(stderr, "zap-bench: --idle-conns needs the zeo target\n");
		usage();
	}
	if ((o.target == T_NATIVE || o.target == T_NATIVE_MEMIF || o.target == T_ZEO ||
	     o.target == T_ETCD) &&
	    parse_addrs() < 0)
		usage();
	return 0;
}
