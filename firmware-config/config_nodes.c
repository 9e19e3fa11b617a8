/*
 * config_nodes.c: the `nodes` list of the configuration, with each node's
 * addresses and DPDK ports.
 *
 * Rules checked here (docs/config.md lists them for operators):
 *  - cluster size 1, 3 or 5: a majority of 2k nodes tolerates no more failures
 *    than one of 2k-1, so an even size only adds a box that can fail;
 *  - node ids 1..65535 and names unique; MACs and IPv4:port pairs of the
 *    replication and client endpoints unique across nodes; ZEO and admin
 *    listeners unique;
 *  - every port has exactly one of pci / vdev; a PCI address or vdev name is
 *    used at most once per node; `peer` names another node, only on
 *    replication ports, at most one port per peer;
 *  - in a cluster of more than one node, each node reaches each peer through
 *    a replication port: a shared one (no `peer`) or one with `peer: <id>`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

#define NAME_MAX_CHARS 63
#define UNIX_PATH_MAX_CHARS 107
#define VDEV_NAME_MAX 64

struct nctx {
	const struct ynode *root;
	struct zcfg_err *e;
	char path[96];
};

/* Error at nodes[i].<sub>; @p sub may be "" for the node itself. */
#define NERR(x, i, sub, ...)                                                                       \
	zcfg_error((x)->e, ytree_line((x)->root, "nodes[%u]%s%s", (i), *(sub) ? "." : "", (sub)),  \
		   __VA_ARGS__)

static int nomem(struct nctx *x)
{
	zcfg_error(x->e, 0, "out of memory");
	return -ENOMEM;
}

static int valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NAME_MAX_CHARS)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
		    !(s[i] >= '0' && s[i] <= '9') && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return 0;
	return 1;
}

static int build_endpoint(struct nctx *x, unsigned i, const char *which,
			  const struct raw_endpoint *r, struct zap_endpoint_config *ep)
{
	char sub[32];
	uint32_t host;

	snprintf(sub, sizeof(sub), "%s.mac", which);
	if (zcfg_parse_mac(r->mac, ep->mac) < 0)
		return NERR(x, i, sub,
			    "nodes[%u].%s: '%s' is not a MAC address (aa:bb:cc:dd:ee:ff)", i, sub,
			    r->mac);
	if (ep->mac[0] & 1)
		return NERR(x, i, sub, "nodes[%u].%s: %s is a multicast address", i, sub, r->mac);
	if (!(ep->mac[0] | ep->mac[1] | ep->mac[2] | ep->mac[3] | ep->mac[4] | ep->mac[5]))
		return NERR(x, i, sub, "nodes[%u].%s: the zero MAC address is not usable", i, sub);
	snprintf(sub, sizeof(sub), "%s.ipv4", which);
	if (zcfg_parse_ipv4(r->ipv4, &ep->ipv4_be) < 0)
		return NERR(x, i, sub, "nodes[%u].%s: '%s' is not an IPv4 address (a.b.c.d)", i,
			    sub, r->ipv4);
	host = ntohl(ep->ipv4_be);
	if (host == 0 || host == UINT32_MAX || (host >> 28) == 0xe)
		return NERR(x, i, sub, "nodes[%u].%s: %s is not a unicast address", i, sub,
			    r->ipv4);
	snprintf(sub, sizeof(sub), "%s.udp_port", which);
	if (r->udp_port == 0)
		return NERR(x, i, sub, "nodes[%u].%s: must be 1..65535", i, sub);
	ep->udp_port = r->udp_port;
	return 0;
}

static int build_hostport(struct nctx *x, unsigned i, const char *which, const char *s,
			  struct zap_hostport *hp)
{
	int rc = zcfg_parse_hostport(s, &hp->host, &hp->port);

	if (rc == -ENOMEM)
		return nomem(x);
	if (rc == -ERANGE)
		return NERR(x, i, which, "nodes[%u].%s: port 0 in '%s' (must be 1..65535)", i,
			    which, s);
	if (rc < 0)
		return NERR(x, i, which,
			    "nodes[%u].%s: '%s' is not host:port (IPv4, [IPv6] or a DNS name, "
			    "then a port 1..65535)",
			    i, which, s);
	return 0;
}

static int build_port(struct nctx *x, unsigned i, unsigned j, const struct raw_port *r,
		      struct zap_port_config *p)
{
	char sub[32], buf[VDEV_NAME_MAX];
	int rc;

	snprintf(sub, sizeof(sub), "ports[%u]", j);
	p->role = (enum zap_port_role)r->role;
	if ((r->pci == NULL) == (r->vdev == NULL))
		return NERR(x, i, sub, "nodes[%u].%s: needs exactly one of pci or vdev", i, sub);
	if (r->pci != NULL) {
		p->kind = ZAP_PORT_KIND_PCI;
		snprintf(sub, sizeof(sub), "ports[%u].pci", j);
		rc = zcfg_parse_pci(r->pci, buf);
		if (rc < 0)
			return NERR(x, i, sub,
				    "nodes[%u].%s: '%s' is not a PCI address (0000:3b:00.0)", i,
				    sub, r->pci);
		p->pci = strdup(buf);
		if (p->pci == NULL)
			return nomem(x);
	} else {
		p->kind = ZAP_PORT_KIND_VDEV;
		snprintf(sub, sizeof(sub), "ports[%u].vdev", j);
		rc = zcfg_parse_vdev_name(r->vdev, buf, sizeof(buf));
		if (rc < 0)
			return NERR(x, i, sub,
				    "nodes[%u].%s: '%s' does not start with a device name "
				    "(net_memif0,...)",
				    i, sub, r->vdev);
		p->vdev = strdup(r->vdev);
		p->vdev_name = strdup(buf);
		if (p->vdev == NULL || p->vdev_name == NULL)
			return nomem(x);
	}
	if (r->peer != NULL) {
		snprintf(sub, sizeof(sub), "ports[%u].peer", j);
		if (p->role != ZAP_PORT_ROLE_REPLICATION)
			return NERR(x, i, sub, "nodes[%u].%s: only replication ports have a peer",
				    i, sub);
		if (*r->peer == 0)
			return NERR(x, i, sub, "nodes[%u].%s: 0 is not a node id", i, sub);
		p->peer_id = *r->peer;
	}
	return 0;
}

/* Same device twice on one node, or two ports for one peer. */
static int check_port_reuse(struct nctx *x, unsigned i, const struct zap_node_config *n)
{
	for (unsigned j = 0; j < n->n_ports; j++) {
		const struct zap_port_config *p = &n->ports[j];
		char sub[32];

		for (unsigned k = 0; k < j; k++) {
			const struct zap_port_config *q = &n->ports[k];
			const char *what = NULL;

			if (p->pci && q->pci && strcmp(p->pci, q->pci) == 0)
				what = "pci";
			if (p->vdev_name && q->vdev_name && strcmp(p->vdev_name, q->vdev_name) == 0)
				what = "vdev";
			if (what != NULL) {
				snprintf(sub, sizeof(sub), "ports[%u].%s", j, what);
				return NERR(
				    x, i, sub,
				    "nodes[%u].%s: port reused: %s '%s' is already ports[%u] "
				    "(line %u)",
				    i, sub, what, p->pci ? p->pci : p->vdev_name, k,
				    ytree_line(x->root, "nodes[%u].ports[%u]", i, k));
			}
			if (p->peer_id && p->peer_id == q->peer_id) {
				snprintf(sub, sizeof(sub), "ports[%u].peer", j);
				return NERR(x, i, sub,
					    "nodes[%u].%s: node %u already has a port (ports[%u])",
					    i, sub, p->peer_id, k);
			}
		}
	}
	return 0;
}

/* At most one client port: the node serves its `client` address on one DPDK port. */
static int check_client_port(struct nctx *x, unsigned i, const struct zap_node_config *n)
{
	int first = -1;

	for (unsigned j = 0; j < n->n_ports; j++) {
		char sub[32];

		if (n->ports[j].role != ZAP_PORT_ROLE_CLIENT)
			continue;
		if (first < 0) {
			first = (int)j;
			continue;
		}
		snprintf(sub, sizeof(sub), "ports[%u].role", j);
		return NERR(x, i, sub,
			    "nodes[%u].%s: a second client port (ports[%d], line %u, is one); a "
			    "node serves its client address on one DPDK port",
			    i, sub, first, ytree_line(x->root, "nodes[%u].ports[%d]", i, first));
	}
	return 0;
}

static int build_node(struct nctx *x, unsigned i, const struct raw_node *r,
		      struct zap_node_config *n)
{
	int rc;

	n->id = r->id;
	if (r->id == 0)
		return NERR(x, i, "id", "nodes[%u].id: 0 is reserved; use 1..65535", i);
	if (!valid_name(r->name))
		return NERR(x, i, "name",
			    "nodes[%u].name: '%s' must be 1..%d letters, digits, '-', '_' or '.'",
			    i, r->name, NAME_MAX_CHARS);
	n->name = strdup(r->name);
	if (n->name == NULL)
		return nomem(x);
	rc = build_endpoint(x, i, "replication", &r->replication, &n->replication);
	if (rc == 0)
		rc = build_endpoint(x, i, "client", &r->client, &n->client);
	if (rc == 0)
		rc = build_hostport(x, i, "zeo", r->zeo, &n->zeo);
	if (rc == 0)
		rc = build_hostport(x, i, "admin", r->admin, &n->admin);
	if (rc == 0 && r->client_udp != NULL)
		rc = build_hostport(x, i, "client_udp", r->client_udp, &n->client_udp);
	if (rc < 0)
		return rc;
	if (r->zeo_unix != NULL) {
		if (r->zeo_unix[0] == '\0' || strlen(r->zeo_unix) > UNIX_PATH_MAX_CHARS)
			return NERR(x, i, "zeo_unix", "nodes[%u].zeo_unix: must be 1..%d bytes", i,
				    UNIX_PATH_MAX_CHARS);
		n->zeo_unix = strdup(r->zeo_unix);
		if (n->zeo_unix == NULL)
			return nomem(x);
	}
	n->ports = calloc(r->ports_count ? r->ports_count : 1, sizeof(*n->ports));
	if (n->ports == NULL)
		return nomem(x);
	for (unsigned j = 0; j < r->ports_count; j++) {
		n->n_ports = j + 1;
		rc = build_port(x, i, j, &r->ports[j], &n->ports[j]);
		if (rc < 0)
			return rc;
	}
	rc = check_port_reuse(x, i, n);
	return rc < 0 ? rc : check_client_port(x, i, n);
}

static int same_hostport(const struct zap_hostport *a, const struct zap_hostport *b)
{
	return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static int same_endpoint(const struct zap_endpoint_config *a, const struct zap_endpoint_config *b)
{
	return a->ipv4_be == b->ipv4_be && a->udp_port == b->udp_port;
}

/* Node @p i against the nodes before it: ids, names, addresses. */
static int check_unique(struct nctx *x, const struct zap_config *c, unsigned i)
{
	const struct zap_node_config *n = &c->nodes[i];

	for (unsigned j = 0; j < i; j++) {
		const struct zap_node_config *m = &c->nodes[j];

		if (m->id == n->id)
			return NERR(x, i, "id", "duplicate node id %u (also nodes[%u], line %u)",
				    n->id, j, ytree_line(x->root, "nodes[%u].id", j));
		if (strcmp(m->name, n->name) == 0)
			return NERR(x, i, "name", "duplicate node name '%s' (also node %u)",
				    n->name, m->id);
		if (memcmp(m->replication.mac, n->replication.mac, 6) == 0)
			return NERR(x, i, "replication.mac",
				    "nodes[%u].replication.mac: also used by node %u", i, m->id);
		if (same_endpoint(&m->replication, &n->replication))
			return NERR(x, i, "replication.ipv4",
				    "nodes[%u].replication: address and port also used by node %u",
				    i, m->id);
		if (memcmp(m->client.mac, n->client.mac, 6) == 0)
			return NERR(x, i, "client.mac",
				    "nodes[%u].client.mac: also used by node %u", i, m->id);
		if (same_endpoint(&m->client, &n->client))
			return NERR(x, i, "client.ipv4",
				    "nodes[%u].client: address and port also used by node %u", i,
				    m->id);
		if (same_hostport(&m->zeo, &n->zeo))
			return NERR(x, i, "zeo", "nodes[%u].zeo: also used by node %u", i, m->id);
		if (same_hostport(&m->admin, &n->admin))
			return NERR(x, i, "admin", "nodes[%u].admin: also used by node %u", i,
				    m->id);
		if (n->client_udp.port != 0 && same_hostport(&m->client_udp, &n->client_udp))
			return NERR(x, i, "client_udp",
				    "nodes[%u].client_udp: also used by node %u", i, m->id);
	}
	return 0;
}

/* Every peer named by a port exists; every peer is reachable. */
static int check_peers(struct nctx *x, const struct zap_config *c, unsigned i)
{
	const struct zap_node_config *n = &c->nodes[i];
	int shared = 0;

	for (unsigned j = 0; j < n->n_ports; j++) {
		const struct zap_port_config *p = &n->ports[j];
		char sub[32];

		snprintf(sub, sizeof(sub), "ports[%u].peer", j);
		if (p->peer_id == n->id)
			return NERR(x, i, sub, "nodes[%u].%s: a port cannot lead to its own node",
				    i, sub);
		if (p->peer_id && zap_config_node(c, p->peer_id) == NULL)
			return NERR(x, i, sub, "nodes[%u].%s: no node has id %u", i, sub,
				    p->peer_id);
		shared |= p->role == ZAP_PORT_ROLE_REPLICATION && p->peer_id == 0;
	}
	if (shared || c->n_nodes == 1)
		return 0;
	for (unsigned k = 0; k < c->n_nodes; k++) {
		uint16_t peer = c->nodes[k].id;
		unsigned j;

		if (peer == n->id)
			continue;
		for (j = 0; j < n->n_ports; j++)
			if (n->ports[j].peer_id == peer)
				break;
		if (j == n->n_ports)
			return NERR(x, i, "ports",
				    "nodes[%u]: no replication port reaches node %u (add a port "
				    "with peer: %u, or a shared one without peer)",
				    i, peer, peer);
	}
	return 0;
}

int zcfg_build_nodes(const struct raw_config *raw, const struct ynode *root, struct zap_config *c,
		     struct zcfg_err *e)
{
	struct nctx x = {.root = root, .e = e};
	unsigned count = raw->nodes_count;
	int rc;

	if (count == 0 || count > ZAP_CONFIG_MAX_NODES || count % 2 == 0) {
		unsigned line = ytree_line(root, "nodes");

		if (count == 0)
			return zcfg_error(e, line,
					  "nodes: the cluster needs 1, 3 or 5 nodes, got none");
		if (count > ZAP_CONFIG_MAX_NODES)
			return zcfg_error(e, line, "nodes: %u nodes; at most %d are supported",
					  count, ZAP_CONFIG_MAX_NODES);
		return zcfg_error(e, line,
				  "nodes: even cluster size %u; use 1, 3 or 5 (an even cluster "
				  "tolerates no more failures than one node fewer)",
				  count);
	}
	c->nodes = calloc(count, sizeof(*c->nodes));
	if (c->nodes == NULL)
		return nomem(&x);
	for (unsigned i = 0; i < count; i++) {
		c->n_nodes = i + 1;
		rc = build_node(&x, i, &raw->nodes[i], &c->nodes[i]);
		if (rc == 0)
			rc = check_unique(&x, c, i);
		if (rc < 0)
			return rc;
	}
	for (unsigned i = 0; i < count; i++) {
		rc = check_peers(&x, c, i);
		if (rc < 0)
			return rc;
	}
	return 0;
}
