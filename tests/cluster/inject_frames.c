/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap-inject-frames: bad replication frames onto a live segment, and an ARP
 * probe, for the injection test (tests/cluster/test_cluster_inject.sh) in the
 * netns cluster (firmware-config/netns-cluster.sh).
 *
 *   zap-inject-frames CONFIG NODE IFACE KINDS COUNT [GAP_US]
 *       send COUNT frames of each kind in KINDS (a comma-separated list, or
 *       "all"; kinds interleaved frame by frame) addressed to NODE (its
 *       replication MAC, IP and UDP port from CONFIG) out of IFACE through an
 *       AF_PACKET socket, GAP_US microseconds apart (default 1000). Kinds:
 *         garbage    Ethernet header to NODE, then random bytes (any length,
 *                    any ethertype but ARP)
 *         truncated  a well-formed frame cut short (20 bytes .. one byte less)
 *         badmac     a well-formed frame with one MAC tag byte changed (the
 *                    UDP checksum recomputed, so only the MAC check fails)
 *         foreign    a frame MACed with the cluster secret under another
 *                    cluster id (CONFIG's id + 1)
 *         unknown    a frame from node 999, not in the node table (MACed
 *                    with the cluster's own key)
 *       Before sending, every frame is decoded by a wire context of NODE
 *       (the node's own check, zap_wire_decode_paxos with min_epoch 0): a
 *       frame that would be accepted, or dropped for a reason other than its
 *       kind's, fails the run. Prints one line per kind,
 *       "KIND node N: sent C; reasons: R=C ...", with the codec's drop reasons.
 *   zap-inject-frames CONFIG NODE IFACE arp [TIMEOUT_MS]
 *       broadcast an ARP request for NODE's replication address from IFACE
 *       (its MAC and IPv4 address) and wait (default 1000 ms) for the reply;
 *       prints "arp A is-at M"; exit 1 on no reply or a MAC other than
 *       the configured one.
 *
 * Frames are a HEARTBEAT from another member at ballot 0: a frame that got
 * past the codec by mistake would change nothing in the engine. Exit 0 on
 * success, 1 on a failure (with a message), 2 on bad arguments.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "wire/wire.h"

#define FRAME_MAX 2048
#define FOREIGN_SENDER 999u
#define ARP_REQ_BYTES 42

static const struct zap_config *g_cfg;

static int fail(const char *what)
{
	fprintf(stderr, "zap-inject-frames: %s\n", what);
	return 1;
}

static void sleep_us(unsigned us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000L};
	nanosleep(&ts, NULL);
}

/* xorshift64: reproducible garbage. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A wire context as node @p self (with @p extra added to the table) under @p cluster_id. */
static int make_ctx(uint16_t self, uint64_t cluster_id, const struct zap_wire_node *extra,
		    struct zap_wire_ctx **out)
{
	struct zap_wire_node nodes[ZAP_WIRE_MAX_NODES];
	unsigned n = 0;
	for (unsigned i = 0; i < g_cfg->n_nodes && n + 1 < ZAP_WIRE_MAX_NODES; i++) {
		const struct zap_node_config *c = &g_cfg->nodes[i];
		nodes[n].id = c->id;
		memcpy(nodes[n].mac, c->replication.mac, 6);
		nodes[n].ipv4_be = c->replication.ipv4_be;
		nodes[n].udp_port = c->replication.udp_port;
		n++;
	}
	if (extra != NULL)
		nodes[n++] = *extra;
	struct zap_wire_params wp = {
	    .cluster_id = cluster_id,
	    .secret = g_cfg->cluster.secret,
	    .secret_len = g_cfg->cluster.secret_len,
	    .self = self,
	    .nodes = nodes,
	    .n_nodes = n,
	};
	return zap_wire_ctx_create(&wp, out);
}

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t acc)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		acc += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		acc += (uint32_t)p[len - 1] << 8;
	return acc;
}

/* Recompute the UDP checksum of a frame built by zap_wire_encode_paxos. */
static void fix_udp_cksum(uint8_t *f)
{
	const unsigned ip = ZAP_WIRE_ETH_BYTES, udp = ip + ZAP_WIRE_IPV4_BYTES;
	unsigned udp_len = (unsigned)f[udp + 4] << 8 | f[udp + 5];
	f[udp + 6] = f[udp + 7] = 0;
	uint32_t acc = sum16(f + ip + 12, 8, 0); /* source and destination addresses */
	acc += 17 + udp_len;
	acc = sum16(f + udp, udp_len, acc);
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	uint16_t c = (uint16_t)~acc;
	if (c == 0)
		c = 0xffff;
	f[udp + 6] = (uint8_t)(c >> 8);
	f[udp + 7] = (uint8_t)c;
}

/* A HEARTBEAT from @p from to @p to, encoded by @p w; its length or < 0. */
static int heartbeat(struct zap_wire_ctx *w, uint16_t from, uint16_t to, uint64_t seq, uint8_t *f)
{
	struct zap_paxos_msg m = {
	    .type = ZAP_PAXOS_MSG_HEARTBEAT, .from = from, .to = to, .slot = seq};
	return zap_wire_encode_paxos(w, &m, f, FRAME_MAX);
}

enum kind { K_GARBAGE, K_TRUNCATED, K_BADMAC, K_FOREIGN, K_UNKNOWN, K_COUNT };
static const char *const kind_names[K_COUNT] = {"garbage", "truncated", "badmac", "foreign",
						"unknown"};
/* The drop reason each kind must meet; -1: any reason. */
static const int kind_reason[K_COUNT] = {-1, ZAP_WIRE_DROP_TRUNCATED, ZAP_WIRE_DROP_BAD_MAC,
					 ZAP_WIRE_DROP_FOREIGN_CLUSTER,
					 ZAP_WIRE_DROP_UNKNOWN_SENDER};

struct gen {
	const struct zap_node_config *target;
	uint16_t member; /* another member, the claimed sender */
	struct zap_wire_ctx *own, *foreign, *stranger;
	uint64_t seed[K_COUNT];
};

/* Frame number @p i of @p kind into @p f; its length or < 0. */
static int make_frame(struct gen *g, enum kind kind, uint64_t i, uint8_t *f)
{
	uint16_t to = g->target->id;
	uint64_t *seed = &g->seed[kind];
	int len;
	switch (kind) {
	case K_GARBAGE: {
		len = 60 + (int)(rnd(seed) % (1514 - 60 + 1));
		for (int b = 0; b < len; b++)
			f[b] = (uint8_t)rnd(seed);
		memcpy(f, g->target->replication.mac, 6);
		f[6] = 0x02; /* a unicast source address */
		if (f[12] == 0x08 && f[13] == 0x06)
			f[13] = 0x07; /* never ARP */
		return len;
	}
	case K_TRUNCATED:
		len = heartbeat(g->own, g->member, to, i, f);
		if (len < 0)
			return len;
		return 20 + (int)(rnd(seed) % (uint64_t)(len - 20));
	case K_BADMAC:
		len = heartbeat(g->own, g->member, to, i, f);
		if (len < 0)
			return len;
		f[len - 1 - (int)(i % ZAP_WIRE_TAG_BYTES)] ^= 0x5a;
		fix_udp_cksum(f);
		return len;
	case K_FOREIGN:
		return heartbeat(g->foreign, g->member, to, i, f);
	case K_UNKNOWN:
		return heartbeat(g->stranger, FOREIGN_SENDER, to, i, f);
	default:
		return -EINVAL;
	}
}

static int packet_socket(const char *iface, uint16_t proto, struct sockaddr_ll *sll)
{
	int fd = socket(AF_PACKET, SOCK_RAW, htons(proto));
	if (fd < 0)
		return -errno;
	*sll = (struct sockaddr_ll){.sll_family = AF_PACKET,
				    .sll_protocol = htons(proto),
				    .sll_ifindex = (int)if_nametoindex(iface),
				    .sll_halen = 6};
	if (sll->sll_ifindex == 0 || bind(fd, (struct sockaddr *)sll, sizeof(*sll)) != 0) {
		int rc = -errno;
		close(fd);
		return rc ? rc : -ENODEV;
	}
	return fd;
}

/* COUNT frames of each kind in @p kinds (a bit per kind), interleaved. */
static int inject(const struct zap_node_config *target, const char *iface, unsigned kinds,
		  unsigned count, unsigned gap_us)
{
	struct gen g = {.target = target};
	for (unsigned k = 0; k < K_COUNT; k++)
		g.seed[k] = 0x9e3779b97f4a7c15ull ^ k;
	for (unsigned i = 0; i < g_cfg->n_nodes; i++)
		if (g_cfg->nodes[i].id != target->id) {
			g.member = g_cfg->nodes[i].id;
			break;
		}
	if (g.member == 0)
		return fail("the config has no other member to claim as sender");
	struct zap_wire_node stranger = {.id = FOREIGN_SENDER,
					 .mac = {0x02, 0, 0, 0, 0x03, 0xe7},
					 .ipv4_be = htonl(0x0a7a00fe),
					 .udp_port = target->replication.udp_port};
	struct zap_wire_ctx *check = NULL;
	int rc = make_ctx(target->id, g_cfg->cluster.id, NULL, &check);
	if (rc == 0)
		rc = make_ctx(g.member, g_cfg->cluster.id, NULL, &g.own);
	if (rc == 0)
		rc = make_ctx(g.member, g_cfg->cluster.id + 1, NULL, &g.foreign);
	if (rc == 0)
		rc = make_ctx(FOREIGN_SENDER, g_cfg->cluster.id, &stranger, &g.stranger);
	struct sockaddr_ll sll;
	int fd = rc == 0 ? packet_socket(iface, ETH_P_ALL, &sll) : rc;
	if (rc != 0 || fd < 0) {
		fprintf(stderr, "zap-inject-frames: %s: %s\n", rc != 0 ? "wire context" : iface,
			strerror(rc != 0 ? -rc : -fd));
		rc = 1;
		goto out;
	}
	uint64_t reasons[K_COUNT][ZAP_WIRE_DROP_COUNT];
	unsigned sent[K_COUNT] = {0};
	memset(reasons, 0, sizeof(reasons));
	static uint8_t f[FRAME_MAX];
	for (unsigned n = 0; n < count * K_COUNT; n++) {
		unsigned i = n / K_COUNT;
		enum kind kind = (enum kind)(n % K_COUNT);
		if (!(kinds & (1u << kind)))
			continue;
		int len = make_frame(&g, kind, i, f);
		if (len < 0) {
			fprintf(stderr, "zap-inject-frames: %s: encode: %s\n", kind_names[kind],
				strerror(-len));
			rc = 1;
			break;
		}
		struct zap_paxos_msg m;
		int d = zap_wire_decode_paxos(check, f, (size_t)len, 0, &m);
		int reason = zap_wire_errno_drop(d);
		if (d == 0 || reason < 0 ||
		    (kind_reason[kind] >= 0 && reason != kind_reason[kind])) {
			fprintf(stderr, "zap-inject-frames: %s frame %u: node %u's check %s (%s)\n",
				kind_names[kind], i, target->id,
				d == 0 ? "accepts it" : "drops it for another reason",
				d == 0 ? "-" : zap_wire_drop_name((unsigned)reason));
			rc = 1;
			break;
		}
		reasons[kind][reason]++;
		memcpy(sll.sll_addr, f, 6);
		if (sendto(fd, f, (size_t)len, 0, (struct sockaddr *)&sll, sizeof(sll)) != len) {
			fprintf(stderr, "zap-inject-frames: send on %s: %s\n", iface,
				strerror(errno));
			rc = 1;
			break;
		}
		sent[kind]++;
		if (gap_us > 0)
			sleep_us(gap_us);
	}
	for (unsigned k = 0; k < K_COUNT; k++) {
		if (!(kinds & (1u << k)))
			continue;
		printf("%s node %u: sent %u; reasons:", kind_names[k], (unsigned)target->id,
		       sent[k]);
		for (unsigned r = 0; r < ZAP_WIRE_DROP_COUNT; r++)
			if (reasons[k][r] > 0)
				printf(" %s=%" PRIu64, zap_wire_drop_name(r), reasons[k][r]);
		printf("\n");
	}
	close(fd);
out:
	zap_wire_ctx_destroy(check);
	zap_wire_ctx_destroy(g.own);
	zap_wire_ctx_destroy(g.foreign);
	zap_wire_ctx_destroy(g.stranger);
	return rc;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int arp_probe(const struct zap_node_config *target, const char *iface, unsigned timeout_ms)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", iface);
	struct sockaddr_ll sll;
	int fd = packet_socket(iface, ETH_P_ARP, &sll);
	if (fd < 0)
		return fail("ARP socket on the interface");
	uint8_t mac[6];
	uint32_t ip_be;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) {
		close(fd);
		return fail("the interface has no MAC");
	}
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	if (ioctl(fd, SIOCGIFADDR, &ifr) != 0) {
		close(fd);
		return fail("the interface has no IPv4 address");
	}
	ip_be = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr;

	uint8_t req[60] = {0};
	memset(req, 0xff, 6);
	memcpy(req + 6, mac, 6);
	req[12] = 0x08, req[13] = 0x06;			       /* ARP */
	req[14] = 0, req[15] = 1, req[16] = 0x08, req[17] = 0; /* Ethernet, IPv4 */
	req[18] = 6, req[19] = 4, req[20] = 0, req[21] = 1;    /* sizes, request */
	memcpy(req + 22, mac, 6);
	memcpy(req + 28, &ip_be, 4);
	memcpy(req + 38, &target->replication.ipv4_be, 4);
	memset(sll.sll_addr, 0xff, 6);
	if (sendto(fd, req, sizeof(req), 0, (struct sockaddr *)&sll, sizeof(sll)) !=
	    (ssize_t)sizeof(req)) {
		close(fd);
		return fail("send of the ARP request");
	}
	uint64_t deadline = now_ms() + timeout_ms;
	for (uint64_t t = now_ms(); t < deadline; t = now_ms()) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)(deadline - t)) <= 0)
			continue;
		uint8_t r[128];
		ssize_t n = recv(fd, r, sizeof(r), 0);
		if (n < ARP_REQ_BYTES || r[12] != 0x08 || r[13] != 0x06 || r[21] != 2 ||
		    memcmp(r + 28, &target->replication.ipv4_be, 4) != 0)
			continue;
		char a[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, r + 28, a, sizeof(a));
		printf("arp %s is-at %02x:%02x:%02x:%02x:%02x:%02x\n", a, r[22], r[23], r[24],
		       r[25], r[26], r[27]);
		close(fd);
		if (memcmp(r + 22, target->replication.mac, 6) != 0)
			return fail("the ARP reply is not the node's replication MAC");
		return 0;
	}
	close(fd);
	return fail("no ARP reply");
}

/* "badmac,foreign" or "all" -> a bit per kind; 0 if a name is unknown. */
static unsigned parse_kinds(const char *list)
{
	if (strcmp(list, "all") == 0)
		return (1u << K_COUNT) - 1;
	unsigned bits = 0;
	for (const char *p = list; *p != '\0';) {
		size_t n = strcspn(p, ",");
		unsigned k = 0;
		while (k < K_COUNT &&
		       (strlen(kind_names[k]) != n || strncmp(p, kind_names[k], n) != 0))
			k++;
		if (k == K_COUNT)
			return 0;
		bits |= 1u << k;
		p += n;
		if (*p == ',')
			p++;
	}
	return bits;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: zap-inject-frames CONFIG NODE IFACE KINDS COUNT [GAP_US]\n"
		   "       zap-inject-frames CONFIG NODE IFACE arp [TIMEOUT_MS]\n"
		   "  CONFIG      the cluster's YAML\n"
		   "  NODE        the id of the node the frames are sent to\n"
		   "  IFACE       the interface to send on (AF_PACKET)\n"
		   "  KINDS       all, or a comma-separated list of garbage truncated badmac foreign unknown\n"
		   "  COUNT       frames of each kind\n"
		   "  GAP_US      microseconds between frames (default 1000)\n"
		   "  arp         ask the node's address by ARP and wait TIMEOUT_MS (default 1000) for the reply\n"
		   "  -h, --help  print this help and exit\n");
}

int main(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc < 5) {
		usage(stderr);
		return 2;
	}
	struct zap_config *cfg;
	char err[512];
	if (zap_config_load(argv[1], &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	g_cfg = cfg;
	const struct zap_node_config *target = zap_config_node(cfg, (uint16_t)atoi(argv[2]));
	int rc = 2;
	if (target == NULL) {
		fprintf(stderr, "zap-inject-frames: no node %s in %s\n", argv[2], argv[1]);
	} else if (strcmp(argv[4], "arp") == 0) {
		rc = arp_probe(target, argv[3], argc > 5 ? (unsigned)atoi(argv[5]) : 1000);
	} else {
		unsigned kinds = parse_kinds(argv[4]);
		if (kinds == 0 || argc < 6)
			fprintf(stderr, "zap-inject-frames: bad KIND list '%s' or no COUNT\n",
				argv[4]);
		else
			rc = inject(target, argv[3], kinds, (unsigned)atoi(argv[5]),
				    argc > 6 ? (unsigned)atoi(argv[6]) : 1000);
	}
	zap_config_free(cfg);
	return rc;
}
