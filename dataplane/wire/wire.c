/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zap wire: encode and decode replication frames (format in docs/wire.md).
 *
 * Encoding writes the zap header and payload into the caller's buffer, then
 * the MAC tag (keyed BLAKE2b-128 over zap header + payload), then the
 * Ethernet, IPv4 and UDP headers in front, with the UDP checksum (which
 * covers the tag) and the IPv4 header checksum. Those three layers and ARP
 * are shared with the plain UDP codec (wire_frame.h).
 *
 * Decoding checks from the outside in, cheapest first, and reads a field
 * only after the bytes under it are known to be inside the frame:
 * Ethernet and IPv4 headers present, IPv4 without options or fragments,
 * UDP, IP total length inside the frame, IP checksum, UDP length, UDP
 * checksum, addressed to this node's IP and port, zap header present,
 * magic, version, type, payload length, cluster id, sender known, receiver
 * is this node, epoch, and last (the most expensive) the MAC, compared in
 * constant time. The first failure names the drop reason; the output
 * message is written only when every check passed.
 *
 * The MAC key is derived once at create time: BLAKE2b-256 of the cluster id
 * keyed by the secret, personalised "zap-wire-mac-v1". A BLAKE2b state
 * initialised with that key (parameter block and key block loaded) is kept
 * in the context; each frame copies it and hashes header + payload, so no
 * per-frame key derivation or initialisation.
 *
 * Threading: one thread per context (see wire.h).
 */
#include "wire.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "wire_frame.h"

/* ---------------------------------------------------------------- layout */

/* zap header, from its start */
#define ZAP_OFF (UDP_OFF + ZAP_WIRE_UDP_BYTES)
#define H_MAGIC 0
#define H_VERSION 4
#define H_TYPE 5
#define H_FLAGS 6
#define H_RESERVED 7
#define H_CLUSTER 8
#define H_EPOCH 16
#define H_SENDER 20
#define H_RECEIVER 22
#define H_BALLOT 24
#define H_SLOT 32
#define H_COMMIT 40
#define H_VBALLOT 48
#define H_VALUE_LEN 56
#define H_OFFSET 64
#define H_ID 72
#define H_PAYLOAD_LEN 80
_Static_assert(H_PAYLOAD_LEN + 4 == ZAP_WIRE_HDR_BYTES, "zap header layout");
_Static_assert(ZAP_WIRE_OVERHEAD_BYTES == 142, "frame overhead");
_Static_assert(ZAP_WIRE_TYPE_PAXOS_LAST < ZAP_WIRE_TYPE_SNAP_REQ, "type ranges");
_Static_assert(ZAP_WIRE_TYPE_SETTINGS < ZAP_WIRE_TYPE_CLIENT_FIRST, "type ranges");

/* A replication type: an engine message or a snapshot transfer message. */
static bool replication_type(unsigned t)
{
	return (t >= ZAP_WIRE_TYPE_PAXOS_FIRST && t <= ZAP_WIRE_TYPE_PAXOS_LAST) ||
	       t == ZAP_WIRE_TYPE_SNAP_REQ || t == ZAP_WIRE_TYPE_SNAP_CHUNK ||
	       t == ZAP_WIRE_TYPE_BLOB_REQ || t == ZAP_WIRE_TYPE_BLOB_CHUNK ||
	       t == ZAP_WIRE_TYPE_SETTINGS;
}

#define WIRE_MIN_MTU_BYTES 576u
#define WIRE_KEY_BYTES crypto_generichash_BYTES /* 32 */
static const char wire_mac_personal[crypto_generichash_blake2b_PERSONALBYTES] = "zap-wire-mac-v1";

/* ---------------------------------------------------------------- context */

struct zap_wire_ctx {
	crypto_generichash_state mac_state; /* keyed, nothing hashed yet; first: 64-aligned */
	uint64_t cluster_id;
	uint16_t self;
	unsigned self_idx;
	uint32_t max_payload_bytes;
	uint32_t mtu_bytes;
	unsigned n_nodes;
	struct zap_wire_node nodes[ZAP_WIRE_MAX_NODES];
	struct zap_wire_stats stats;
};

static const char *const drop_names[ZAP_WIRE_DROP_COUNT] = {
    [ZAP_WIRE_DROP_TRUNCATED] = "truncated",
    [ZAP_WIRE_DROP_NOT_IPV4] = "not_ipv4",
    [ZAP_WIRE_DROP_IP_UNSUPPORTED] = "ip_unsupported",
    [ZAP_WIRE_DROP_NOT_UDP] = "not_udp",
    [ZAP_WIRE_DROP_IP_CKSUM] = "ip_checksum",
    [ZAP_WIRE_DROP_UDP_LEN] = "udp_length",
    [ZAP_WIRE_DROP_UDP_CKSUM] = "udp_checksum",
    [ZAP_WIRE_DROP_NOT_FOR_US] = "not_for_us",
    [ZAP_WIRE_DROP_BAD_MAGIC] = "bad_magic",
    [ZAP_WIRE_DROP_BAD_VERSION] = "bad_version",
    [ZAP_WIRE_DROP_BAD_TYPE] = "bad_type",
    [ZAP_WIRE_DROP_BAD_LENGTH] = "bad_length",
    [ZAP_WIRE_DROP_FOREIGN_CLUSTER] = "foreign_cluster",
    [ZAP_WIRE_DROP_UNKNOWN_SENDER] = "unknown_sender",
    [ZAP_WIRE_DROP_STALE_EPOCH] = "stale_epoch",
    [ZAP_WIRE_DROP_BAD_MAC] = "bad_mac",
};

static const int drop_errnos[ZAP_WIRE_DROP_COUNT] = {
    [ZAP_WIRE_DROP_TRUNCATED] = ENODATA,
    [ZAP_WIRE_DROP_NOT_IPV4] = EPFNOSUPPORT,
    [ZAP_WIRE_DROP_IP_UNSUPPORTED] = EOPNOTSUPP,
    [ZAP_WIRE_DROP_NOT_UDP] = EPROTONOSUPPORT,
    [ZAP_WIRE_DROP_IP_CKSUM] = EILSEQ,
    [ZAP_WIRE_DROP_UDP_LEN] = EMSGSIZE,
    [ZAP_WIRE_DROP_UDP_CKSUM] = EIO,
    [ZAP_WIRE_DROP_NOT_FOR_US] = EADDRNOTAVAIL,
    [ZAP_WIRE_DROP_BAD_MAGIC] = EPROTO,
    [ZAP_WIRE_DROP_BAD_VERSION] = ENOPROTOOPT,
    [ZAP_WIRE_DROP_BAD_TYPE] = ENOMSG,
    [ZAP_WIRE_DROP_BAD_LENGTH] = EBADMSG,
    [ZAP_WIRE_DROP_FOREIGN_CLUSTER] = ENONET,
    [ZAP_WIRE_DROP_UNKNOWN_SENDER] = ESRCH,
    [ZAP_WIRE_DROP_STALE_EPOCH] = ESTALE,
    [ZAP_WIRE_DROP_BAD_MAC] = EKEYREJECTED,
};

const char *zap_wire_drop_name(unsigned reason)
{
	return reason < ZAP_WIRE_DROP_COUNT ? drop_names[reason] : "unknown";
}

int zap_wire_drop_errno(unsigned reason)
{
	return reason < ZAP_WIRE_DROP_COUNT ? -drop_errnos[reason] : 0;
}

int zap_wire_errno_drop(int err)
{
	for (unsigned r = 0; r < ZAP_WIRE_DROP_COUNT; r++)
		if (err == -drop_errnos[r])
			return (int)r;
	return -1;
}

/* ---------------------------------------------------------------- node table */

static int node_find(const struct zap_wire_ctx *w, uint16_t id)
{
	for (unsigned i = 0; i < w->n_nodes; i++)
		if (w->nodes[i].id == id)
			return (int)i;
	return -1;
}

static bool node_valid(const struct zap_wire_node *n)
{
	return n->id != 0 && n->udp_port != 0;
}

int zap_wire_node_set(struct zap_wire_ctx *w, const struct zap_wire_node *n)
{
	if (w == NULL || n == NULL || !node_valid(n))
		return -EINVAL;
	int i = node_find(w, n->id);
	if (i >= 0) {
		w->nodes[i] = *n;
		return 0;
	}
	if (w->n_nodes == ZAP_WIRE_MAX_NODES)
		return -ENOSPC;
	w->nodes[w->n_nodes++] = *n;
	return 0;
}

int zap_wire_node_remove(struct zap_wire_ctx *w, uint16_t id)
{
	if (w == NULL || id == w->self)
		return -EINVAL;
	int i = node_find(w, id);
	if (i < 0)
		return -ENOENT;
	w->nodes[i] = w->nodes[--w->n_nodes];
	w->self_idx = (unsigned)node_find(w, w->self);
	return 0;
}

/* ---------------------------------------------------------------- context */

uint32_t zap_wire_payload_for_mtu(uint32_t mtu_bytes)
{
	return mtu_bytes > ZAP_WIRE_IP_OVERHEAD_BYTES ? mtu_bytes - ZAP_WIRE_IP_OVERHEAD_BYTES : 0;
}

size_t zap_wire_frame_len(uint32_t payload_len)
{
	return (size_t)ZAP_WIRE_OVERHEAD_BYTES + payload_len;
}

uint32_t zap_wire_max_payload(const struct zap_wire_ctx *w)
{
	return w->max_payload_bytes;
}

static int params_check(const struct zap_wire_params *p, uint32_t *mtu, uint32_t *max_payload)
{
	if (p->cluster_id == 0 || p->secret == NULL || p->secret_len < 16 ||
	    p->secret_len > crypto_generichash_KEYBYTES_MAX)
		return -EINVAL;
	if (p->nodes == NULL || p->n_nodes == 0 || p->n_nodes > ZAP_WIRE_MAX_NODES)
		return -EINVAL;
	bool self_seen = false;
	for (unsigned i = 0; i < p->n_nodes; i++) {
		if (!node_valid(&p->nodes[i]))
			return -EINVAL;
		for (unsigned j = 0; j < i; j++)
			if (p->nodes[j].id == p->nodes[i].id)
				return -EINVAL;
		self_seen |= p->nodes[i].id == p->self;
	}
	if (!self_seen)
		return -EINVAL;
	*mtu = p->mtu_bytes ? p->mtu_bytes : ZAP_WIRE_DEFAULT_MTU_BYTES;
	if (*mtu < WIRE_MIN_MTU_BYTES || *mtu > ZAP_WIRE_MAX_MTU_BYTES)
		return -EINVAL;
	uint32_t fit = zap_wire_payload_for_mtu(*mtu);
	*max_payload = p->max_payload_bytes ? p->max_payload_bytes : fit;
	return *max_payload <= fit ? 0 : -EINVAL;
}

int zap_wire_ctx_create(const struct zap_wire_params *p, struct zap_wire_ctx **out)
{
	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	uint32_t mtu, max_payload;
	if (p == NULL || params_check(p, &mtu, &max_payload) != 0)
		return -EINVAL;
	if (sodium_init() < 0)
		return -EIO;
	size_t align = 64, size = (sizeof(struct zap_wire_ctx) + align - 1) / align * align;
	struct zap_wire_ctx *w = aligned_alloc(align, size);
	if (w == NULL)
		return -ENOMEM;
	memset(w, 0, sizeof(*w));
	w->cluster_id = p->cluster_id;
	w->self = p->self;
	w->mtu_bytes = mtu;
	w->max_payload_bytes = max_payload;
	w->n_nodes = p->n_nodes;
	memcpy(w->nodes, p->nodes, p->n_nodes * sizeof(p->nodes[0]));
	w->self_idx = (unsigned)node_find(w, p->self);

	uint8_t cid[8], key[WIRE_KEY_BYTES];
	zap_put_be64(cid, p->cluster_id);
	int rc = crypto_generichash_blake2b_salt_personal(key, sizeof(key), cid, sizeof(cid),
							  p->secret, p->secret_len, NULL,
							  (const unsigned char *)wire_mac_personal);
	if (rc == 0)
		rc = crypto_generichash_init(&w->mac_state, key, sizeof(key), ZAP_WIRE_TAG_BYTES);
	sodium_memzero(key, sizeof(key));
	if (rc != 0) {
		zap_wire_ctx_destroy(w);
		return -EIO;
	}
	*out = w;
	return 0;
}

void zap_wire_ctx_destroy(struct zap_wire_ctx *w)
{
	if (w == NULL)
		return;
	sodium_memzero(w, sizeof(*w));
	free(w);
}

void zap_wire_stats(const struct zap_wire_ctx *w, struct zap_wire_stats *st)
{
	*st = w->stats;
}

/* Tag of @p len bytes at @p b (zap header + payload). */
static void wire_mac(const struct zap_wire_ctx *w, const uint8_t *b, size_t len,
		     uint8_t tag[ZAP_WIRE_TAG_BYTES])
{
	crypto_generichash_state st = w->mac_state;
	crypto_generichash_update(&st, b, len);
	crypto_generichash_final(&st, tag, ZAP_WIRE_TAG_BYTES);
}

/* ---------------------------------------------------------------- encode */

/* A node as the UDP layer addresses it. */
static struct zap_wire_udp_addr node_addr(const struct zap_wire_node *n)
{
	struct zap_wire_udp_addr a = {.ipv4_be = n->ipv4_be, .udp_port = n->udp_port};
	memcpy(a.mac, n->mac, 6);
	return a;
}

static void encode_zap(const struct zap_wire_ctx *w, const struct zap_paxos_msg *m, uint8_t *h)
{
	zap_put_be32(h + H_MAGIC, ZAP_WIRE_MAGIC);
	h[H_VERSION] = ZAP_WIRE_VERSION;
	h[H_TYPE] = m->type;
	h[H_FLAGS] = m->flags;
	h[H_RESERVED] = 0;
	zap_put_be64(h + H_CLUSTER, w->cluster_id);
	zap_put_be32(h + H_EPOCH, m->epoch);
	zap_put_be16(h + H_SENDER, m->from);
	zap_put_be16(h + H_RECEIVER, m->to);
	zap_put_be64(h + H_BALLOT, m->ballot);
	zap_put_be64(h + H_SLOT, m->slot);
	zap_put_be64(h + H_COMMIT, m->commit);
	zap_put_be64(h + H_VBALLOT, m->vballot);
	zap_put_be64(h + H_VALUE_LEN, m->value_len);
	zap_put_be64(h + H_OFFSET, m->offset);
	zap_put_be64(h + H_ID, m->id);
	zap_put_be32(h + H_PAYLOAD_LEN, m->len);
	if (m->len > 0)
		memcpy(h + ZAP_WIRE_HDR_BYTES, m->payload, m->len);
}

int zap_wire_encode_paxos(struct zap_wire_ctx *w, const struct zap_paxos_msg *m, void *frame,
			  size_t cap)
{
	if (w == NULL || m == NULL || frame == NULL || m->from != w->self)
		return -EINVAL;
	if (!replication_type(m->type) || (m->len > 0 && m->payload == NULL))
		return -EINVAL;
	if (m->len > w->max_payload_bytes)
		return -EMSGSIZE;
	int di = node_find(w, m->to);
	if (di < 0)
		return -EHOSTUNREACH;
	size_t n = zap_wire_frame_len(m->len);
	if (cap < n)
		return -ENOSPC;

	uint8_t *f = frame;
	uint8_t *h = f + ZAP_OFF;
	encode_zap(w, m, h);
	wire_mac(w, h, ZAP_WIRE_HDR_BYTES + m->len, h + ZAP_WIRE_HDR_BYTES + m->len);
	/* the UDP checksum covers the tag: the lower headers go last */
	struct zap_wire_udp_addr src = node_addr(&w->nodes[w->self_idx]);
	struct zap_wire_udp_addr dst = node_addr(&w->nodes[di]);
	zap_wire_frame_put_udp(f, &src, &dst, n - ZAP_OFF);
	w->stats.frames_encoded++;
	return (int)n;
}

/* ---------------------------------------------------------------- decode */

static int drop(struct zap_wire_ctx *w, enum zap_wire_drop reason)
{
	w->stats.dropped[reason]++;
	w->stats.frames_dropped++;
	return -drop_errnos[reason];
}

/* The zap header and tag (h, n bytes: header + payload + tag). Returns 0 or reason + 1. */
static int check_zap(const struct zap_wire_ctx *w, const uint8_t *h, size_t n, uint32_t min_epoch)
{
	if (n < ZAP_WIRE_HDR_BYTES + ZAP_WIRE_TAG_BYTES)
		return ZAP_WIRE_DROP_TRUNCATED + 1;
	if (zap_get_be32(h + H_MAGIC) != ZAP_WIRE_MAGIC)
		return ZAP_WIRE_DROP_BAD_MAGIC + 1;
	if (h[H_VERSION] != ZAP_WIRE_VERSION)
		return ZAP_WIRE_DROP_BAD_VERSION + 1;
	if (!replication_type(h[H_TYPE]))
		return ZAP_WIRE_DROP_BAD_TYPE + 1;
	uint32_t plen = zap_get_be32(h + H_PAYLOAD_LEN);
	if (plen > w->max_payload_bytes ||
	    n != (size_t)ZAP_WIRE_HDR_BYTES + plen + ZAP_WIRE_TAG_BYTES)
		return ZAP_WIRE_DROP_BAD_LENGTH + 1;
	if (zap_get_be64(h + H_CLUSTER) != w->cluster_id)
		return ZAP_WIRE_DROP_FOREIGN_CLUSTER + 1;
	if (node_find(w, zap_get_be16(h + H_SENDER)) < 0)
		return ZAP_WIRE_DROP_UNKNOWN_SENDER + 1;
	if (zap_get_be16(h + H_RECEIVER) != w->self)
		return ZAP_WIRE_DROP_NOT_FOR_US + 1;
	if (zap_get_be32(h + H_EPOCH) < min_epoch)
		return ZAP_WIRE_DROP_STALE_EPOCH + 1;
	uint8_t tag[ZAP_WIRE_TAG_BYTES];
	wire_mac(w, h, ZAP_WIRE_HDR_BYTES + plen, tag);
	if (sodium_memcmp(tag, h + ZAP_WIRE_HDR_BYTES + plen, ZAP_WIRE_TAG_BYTES) != 0)
		return ZAP_WIRE_DROP_BAD_MAC + 1;
	return 0;
}

int zap_wire_decode_paxos(struct zap_wire_ctx *w, const void *frame, size_t len, uint32_t min_epoch,
			  struct zap_paxos_msg *out)
{
	if (w == NULL || (frame == NULL && len > 0) || out == NULL)
		return -EINVAL;
	const uint8_t *h = NULL;
	size_t n = 0;
	const struct zap_wire_node *me = &w->nodes[w->self_idx];
	int r = ZAP_WIRE_DROP_TRUNCATED + 1;
	if (frame != NULL)
		r = zap_wire_frame_check_udp(frame, len, me->ipv4_be, me->udp_port, &h, &n);
	if (r == 0)
		r = check_zap(w, h, n, min_epoch);
	if (r != 0)
		return drop(w, (enum zap_wire_drop)(r - 1));

	memset(out, 0, sizeof(*out));
	out->type = h[H_TYPE];
	out->flags = h[H_FLAGS];
	out->from = zap_get_be16(h + H_SENDER);
	out->to = zap_get_be16(h + H_RECEIVER);
	out->epoch = zap_get_be32(h + H_EPOCH);
	out->ballot = zap_get_be64(h + H_BALLOT);
	out->slot = zap_get_be64(h + H_SLOT);
	out->commit = zap_get_be64(h + H_COMMIT);
	out->vballot = zap_get_be64(h + H_VBALLOT);
	out->value_len = zap_get_be64(h + H_VALUE_LEN);
	out->offset = zap_get_be64(h + H_OFFSET);
	out->id = zap_get_be64(h + H_ID);
	out->len = zap_get_be32(h + H_PAYLOAD_LEN);
	out->payload = out->len > 0 ? h + ZAP_WIRE_HDR_BYTES : NULL;
	w->stats.frames_decoded++;
	return 0;
}

/* ---------------------------------------------------------------- ARP */

int zap_wire_arp_reply(const struct zap_wire_arp_addr *addrs, unsigned n_addrs, const void *req,
		       size_t len, void *reply, size_t cap)
{
	if ((addrs == NULL && n_addrs > 0) || req == NULL || reply == NULL)
		return -EINVAL;
	int rc = zap_wire_frame_arp_check(req, len, ARP_OP_REQUEST);
	if (rc != 0)
		return rc;
	const uint8_t *a = (const uint8_t *)req + ZAP_WIRE_ETH_BYTES;
	uint32_t target = get_ip(a + ARP_TPA);
	const struct zap_wire_arp_addr *mine = NULL;
	for (unsigned i = 0; i < n_addrs && mine == NULL; i++)
		if (addrs[i].ipv4_be == target)
			mine = &addrs[i];
	if (mine == NULL)
		return -EADDRNOTAVAIL;
	if (cap < ZAP_WIRE_ARP_REPLY_BYTES)
		return -ENOSPC;

	struct zap_wire_arp_addr asker = {.ipv4_be = get_ip(a + ARP_SPA)};
	memcpy(asker.mac, a + ARP_SHA, 6);
	zap_wire_frame_arp_put(reply, asker.mac, ARP_OP_REPLY, mine, &asker);
	return (int)ZAP_WIRE_ARP_REPLY_BYTES;
}
