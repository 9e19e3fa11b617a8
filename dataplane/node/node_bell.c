/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap node doorbells (bell.h): who rings whom.
 *
 * Every pipeline lcore has a bell; each stage's producer rings the bell of
 * the lcore that runs the consumer stage after it enqueued (client thread →
 * paxos, io → paxos, paxos → io / log / apply, log → paxos), and the apply
 * stage rings the client thread's eventfd bell with each result. An lcore
 * that runs both ends does not ring at all (node_ring): a running loop is
 * not asleep.
 *
 * Across processes: a memif link joins two nodes on one host, so the node
 * keeps its I/O lcore's bell in a file beside each memif link's socket,
 * "<socket>.bell-n<id>" (one file, hard-linked once per link), and its peer
 * maps it to ring after it transmitted on that link. The file outlives the
 * process on purpose: a restarted node maps the same page, so a peer's
 * mapping stays good. Every link check (100 ms) a node also checks that the
 * peer's path still names the file it mapped and maps it again if not (the
 * file was removed and made anew). A peer bell that is not there yet (peer
 * not started, not a memif link, another host) is retried every link check;
 * meanwhile the node only loses the wake-up, never a frame.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node_core.h"

/* The socket= value of a memif vdev argument into @p out; false if none. */
static bool memif_socket(const struct zap_port_config *pc, char *out, size_t cap)
{
	if (pc->kind != ZAP_PORT_KIND_VDEV || pc->vdev == NULL ||
	    strncmp(pc->vdev, "net_memif", strlen("net_memif")) != 0)
		return false;
	const char *s = strstr(pc->vdev, ",socket=");
	if (s == NULL)
		return false;
	s += strlen(",socket=");
	size_t len = strcspn(s, ",");
	if (len == 0 || len >= cap)
		return false;
	memcpy(out, s, len);
	out[len] = '\0';
	return true;
}

static bool bell_path(const struct zap_port_config *pc, uint16_t node, char *out, size_t cap)
{
	char sock[200];
	if (!memif_socket(pc, sock, sizeof(sock)))
		return false;
	int w = snprintf(out, cap, "%s.bell-n%u", sock, node);
	return w > 0 && (size_t)w < cap;
}

/* This node's I/O bell: one file, hard-linked beside every memif link's socket. */
static int own_io_bell(struct zap_node *n, struct zap_bell *b)
{
	const char *first = NULL;
	for (unsigned pi = 0; pi < n->n_ports; pi++) {
		char *path = n->own_bell_path[pi];
		if (!bell_path(n->ports[pi].cfg, n->id, path, sizeof(n->own_bell_path[pi])))
			continue;
		if (first == NULL) {
			int rc = zap_bell_open_file(b, path, true);
			if (rc != 0) {
				fprintf(stderr,
					"zapd: node %u: bell %s: %s; peers cannot wake it\n", n->id,
					path, strerror(-rc));
				path[0] = '\0';
				return zap_bell_init(b, false);
			}
			first = path;
			continue;
		}
		struct stat a, c;
		if (stat(first, &a) == 0 && stat(path, &c) == 0 && a.st_dev == c.st_dev &&
		    a.st_ino == c.st_ino)
			continue;
		unlink(path);
		if (link(first, path) != 0) {
			fprintf(stderr, "zapd: node %u: bell %s: %s; that peer cannot wake it\n",
				n->id, path, strerror(errno));
			path[0] = '\0';
		}
	}
	return first != NULL ? 0 : zap_bell_init(b, false);
}

int zap_node_bells_init(struct zap_node *n)
{
	int rc = 0;
	for (unsigned i = 0; i < n->n_lcores && rc == 0; i++) {
		struct node_lcore *lc = &n->lcores[i];
		rc = (lc->roles & ZAP_LCORE_ROLE_IO) ? own_io_bell(n, &lc->bell)
						     : zap_bell_init(&lc->bell, false);
		if (lc->roles & ZAP_LCORE_ROLE_IO)
			n->bell_io = &lc->bell;
		if (lc->roles & ZAP_LCORE_ROLE_PAXOS)
			n->bell_paxos = &lc->bell;
		if (lc->roles & ZAP_LCORE_ROLE_LOG)
			n->bell_log = &lc->bell;
		if (lc->roles & ZAP_LCORE_ROLE_APPLY)
			n->bell_apply = &lc->bell;
	}
	if (rc == 0)
		rc = zap_bell_init(&n->client_bell, true);
	if (rc == 0)
		rc = zap_bell_init(&n->zeo_bell, false);
	for (unsigned pi = 0; pi < n->n_ports; pi++)
		n->peer_bell[pi] = (struct zap_bell){.efd = -1};
	for (unsigned pi = 0; pi < n->n_ports && rc == 0; pi++)
		zap_node_bells_retry(n, pi, false);
	return rc;
}

void zap_node_bells_retry(struct zap_node *n, unsigned pi, bool relinked)
{
	struct zap_bell *b = &n->peer_bell[pi];
	const struct zap_port_config *pc = n->ports[pi].cfg;
	char path[256];
	if (pc->peer_id == 0 || !bell_path(pc, pc->peer_id, path, sizeof(path)))
		return;
	/* a stat per link check: the peer may have made a new file (removed, restarted) */
	if (b->w != NULL && !relinked && zap_bell_file_current(b, path))
		return;
	zap_bell_fini(b);
	zap_bell_open_file(b, path, false); /* -ENOENT: the peer is not up yet */
}

void zap_node_bells_fini(struct zap_node *n)
{
	for (unsigned pi = 0; pi < n->n_ports; pi++)
		zap_bell_fini(&n->peer_bell[pi]);
	for (unsigned i = 0; i < n->n_lcores; i++)
		zap_bell_fini(&n->lcores[i].bell);
	zap_bell_fini(&n->client_bell);
	zap_bell_fini(&n->zeo_bell);
	n->bell_io = n->bell_paxos = n->bell_log = n->bell_apply = NULL;
}

void zap_node_bells_report(const struct zap_node *n, FILE *f)
{
	uint64_t waits = 0, woken = 0;
	for (unsigned i = 0; i < n->n_lcores; i++) {
		waits += n->lcores[i].bell.waits;
		woken += n->lcores[i].bell.woken;
	}
	unsigned peers = 0;
	for (unsigned pi = 0; pi < n->n_ports; pi++)
		peers += n->peer_bell[pi].w != NULL;
	fprintf(f,
		"  bells: lcore sleeps %" PRIu64 " (woken early %" PRIu64
		"), client sleeps %" PRIu64 " (woken early %" PRIu64
		"), peer bells mapped %u of %u\n",
		waits, woken, n->client_bell.waits, n->client_bell.woken, peers, n->n_ports);
}
