/*
 * zap configuration: the YAML file an operator writes, loaded and validated.
 *
 * zapd reads one YAML file at start (and `zapd --check-config` only that).
 * zap_config_load() parses it, checks every key against the schema, applies
 * defaults and checks the cross-field rules (cluster size, unique ids,
 * lcore roles, ports, ...). The result is a plain struct that the rest of
 * zap reads; it is immutable once loaded and owned by the caller, who
 * releases it with zap_config_free(). Nothing here knows DPDK.
 *
 * Every failure is reported as "FILE:LINE: what is wrong" (or "FILE: what is
 * wrong" for a file-level problem) so an operator can go straight to the
 * offending line. The schema is described in docs/config.md.
 *
 * Threading: loading is reentrant (no globals); a loaded config may be read
 * from any thread.
 */
#ifndef ZAP_CONFIG_H
#define ZAP_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Largest cluster the appliance supports (sizes 1, 3 and 5 are valid). */
#define ZAP_CONFIG_MAX_NODES 5
/** Shortest cluster secret accepted, in bytes (after hex decoding). */
#define ZAP_CONFIG_SECRET_MIN_BYTES 16
/** Longest cluster secret accepted, in bytes (after hex decoding). */
#define ZAP_CONFIG_SECRET_MAX_BYTES 64
/** Largest accepted configuration file, in bytes. */
#define ZAP_CONFIG_FILE_MAX_BYTES (1u << 20)
/** Most DPDK ports one node may list. */
#define ZAP_CONFIG_MAX_PORTS 32
/** Highest lcore id accepted (DPDK's default RTE_MAX_LCORE is 128). */
#define ZAP_CONFIG_LCORE_MAX 127

/** Where the store's shared mapping comes from. */
enum zap_store_backing {
	ZAP_STORE_BACKING_MEMFD = 0, /**< memfd_create(), ordinary pages */
	ZAP_STORE_BACKING_HUGETLBFS, /**< a file on a hugetlbfs mount */
};

/** When an acceptor may answer: after fsync, or once in RAM. */
enum zap_durability {
	ZAP_DURABILITY_FSYNC = 0, /**< accepted state is fsync'ed before replying */
	ZAP_DURABILITY_MEMORY,	  /**< a majority in RAM is enough (benchmarks) */
};

/** Polling policy of one lcore loop. */
enum zap_polling {
	ZAP_POLLING_BUSY = 0, /**< spin forever (production) */
	ZAP_POLLING_ADAPTIVE, /**< spin, then yield, then sleep with backoff */
};

/** What traffic a DPDK port carries. */
enum zap_port_role {
	ZAP_PORT_ROLE_REPLICATION = 0, /**< Paxos traffic between nodes */
	ZAP_PORT_ROLE_CLIENT,	       /**< native client protocol */
};

/** How a DPDK port is created. */
enum zap_port_kind {
	ZAP_PORT_KIND_PCI = 0, /**< a NIC probed by its PMD, by PCI address */
	ZAP_PORT_KIND_VDEV,    /**< a DPDK virtual device (--vdev argument) */
};

/**
 * Roles an lcore can run (the pipeline stages); an lcore's `roles` is an OR
 * of these bits. The ZEO gateway and the client service run on threads of
 * their own, not on lcores.
 */
enum zap_lcore_role {
	ZAP_LCORE_ROLE_IO = 1u << 0,	/**< NIC rx/tx */
	ZAP_LCORE_ROLE_PAXOS = 1u << 1, /**< consensus engine */
	ZAP_LCORE_ROLE_LOG = 1u << 2,	/**< durable log append, group commit */
	ZAP_LCORE_ROLE_APPLY = 1u << 3, /**< transaction state machine, store writer */
};

/** Roles that must each be placed on exactly one lcore: every role. */
#define ZAP_LCORE_ROLES_REQUIRED                                                                   \
	(ZAP_LCORE_ROLE_IO | ZAP_LCORE_ROLE_PAXOS | ZAP_LCORE_ROLE_LOG | ZAP_LCORE_ROLE_APPLY)

/** A TCP listen/connect address, "host:port". */
struct zap_hostport {
	char *host;    /**< IPv4 literal, IPv6 literal (without brackets) or DNS name */
	uint16_t port; /**< 1..65535 */
};

/** Addresses a node uses on one of its DPDK networks. */
struct zap_endpoint_config {
	uint8_t mac[6];	   /**< Ethernet address */
	uint32_t ipv4_be;  /**< IPv4 address, network byte order */
	uint16_t udp_port; /**< UDP port, host byte order, 1..65535 */
};

/** One DPDK port of a node. */
struct zap_port_config {
	enum zap_port_role role;
	enum zap_port_kind kind;
	char *pci;	  /**< kind PCI: "DDDD:BB:DD.F" with domain; else NULL */
	char *vdev;	  /**< kind VDEV: the full --vdev argument; else NULL */
	char *vdev_name;  /**< kind VDEV: the device name (before the first ','); else NULL */
	uint16_t peer_id; /**< point-to-point link to that node; 0 = reaches every peer */
};

/** One box of the cluster. */
struct zap_node_config {
	uint16_t id;				/**< unique, 1..65535 */
	char *name;				/**< unique, for humans and logs */
	struct zap_endpoint_config replication; /**< Paxos traffic */
	struct zap_endpoint_config client;	/**< native client protocol */
	struct zap_hostport zeo;		/**< ZEO TCP listener */
	char *zeo_unix;				/**< ZEO unix socket path, or NULL */
	struct zap_hostport admin;	/**< reserved: the planned admin API (not served yet) */
	struct zap_hostport client_udp; /**< kernel UDP address of the native client service beside
					   the lcores; host NULL and port 0 when not given */
	char *log_dir; /**< this node's log directory: its own `log_dir`, else log.dir */
	struct zap_port_config *ports; /**< this node's DPDK ports */
	unsigned n_ports;
};

/** One lcore and the stages its loop runs. */
struct zap_lcore_config {
	uint16_t lcore; /**< DPDK lcore id, 0..ZAP_CONFIG_LCORE_MAX */
	uint32_t roles; /**< OR of enum zap_lcore_role */
	enum zap_polling polling;
};

struct zap_cluster_config {
	uint64_t id;				     /**< nonzero, on every frame */
	uint8_t secret[ZAP_CONFIG_SECRET_MAX_BYTES]; /**< MAC key */
	size_t secret_len;			     /**< 16..64 bytes */
};

/** Adaptive polling: spin, then yield, then sleep with doubling backoff. */
struct zap_polling_config {
	uint32_t spin_us;  /**< busy-poll this long after the last work */
	uint32_t yield_us; /**< then sched_yield() this long before sleeping */
	uint32_t sleep_us; /**< longest sleep of the backoff */
};

struct zap_store_config {
	uint64_t size_bytes;
	uint64_t max_record_bytes;
	uint32_t txn_ring_slots; /**< transactions the store's ring keeps (undoLog, iterator);
				    the same on every node */
	enum zap_store_backing backing;
	char *hugetlbfs_dir; /**< non-NULL iff backing is HUGETLBFS */
};

struct zap_log_config {
	char *dir;
	enum zap_durability durability;
	uint64_t segment_bytes;
	uint32_t group_commit_us;  /**< group commit window; 0 = sync each batch at once */
	uint32_t group_commit_max; /**< at most this many appends per sync */
	/* a checkpoint is taken when any of these is reached (0: that trigger off) */
	uint64_t checkpoint_slots;   /**< applied slots since the last checkpoint */
	uint64_t checkpoint_bytes;   /**< bytes of applied values since the last (bounds the
					engine's memory for chosen values and the log tail) */
	uint32_t checkpoint_seconds; /**< seconds since the last, when anything was applied */
};

struct zap_paxos_settings {
	uint32_t window;      /**< slots in flight */
	uint32_t batch_count; /**< client commands per slot, at most */
	uint32_t batch_bytes; /**< payload bytes per slot, at most */
	uint32_t heartbeat_ms;
	uint32_t election_timeout_ms; /**< > heartbeat_ms */
};

struct zap_txn_config {
	uint32_t lease_ms;     /**< how long a prepared transaction may hold its locks */
	uint32_t max_sessions; /**< exactly-once session table size */
	uint64_t max_bytes;    /**< largest transaction: records, texts and descriptors, bytes */
	uint32_t max_objects;  /**< stores + readCurrent checks of one transaction */
	uint32_t max_text_bytes; /**< largest user, description or extension */
};

/** Encoding the ZEO gateway announces and speaks. */
enum zap_zeo_encoding {
	ZAP_ZEO_ENCODING_PICKLE = 0, /**< "Z5": the stock server's default */
	ZAP_ZEO_ENCODING_MSGPACK,    /**< "M5" */
};

/** The ZEO gateway of every node (the `zeo:` section). */
struct zap_zeo_settings {
	uint32_t io_threads;	   /**< epoll I/O threads; 0 = from the CPU count */
	uint32_t max_connections;  /**< connections one node accepts at once */
	uint64_t max_output_bytes; /**< buffered output of one connection before it is closed */
	enum zap_zeo_encoding encoding;
	uint64_t max_message_bytes; /**< largest ZEO message a client may send */
};

/** A loaded, validated configuration. Read-only after load. */
struct zap_config {
	char *source; /**< the file name (or name given to load_string) */
	struct zap_cluster_config cluster;
	struct zap_node_config *nodes; /**< in file order */
	unsigned n_nodes;	       /**< 1, 3 or 5 */
	struct zap_lcore_config *lcores;
	unsigned n_lcores;
	struct zap_polling_config polling;
	struct zap_store_config store;
	struct zap_log_config log;
	struct zap_paxos_settings paxos;
	struct zap_txn_config txn;
	struct zap_zeo_settings zeo;
};

/**
 * Load and validate a configuration file.
 *
 * @param path     file to read (at most ZAP_CONFIG_FILE_MAX_BYTES)
 * @param out      on success, a new config the caller frees with zap_config_free();
 *                 set to NULL on failure
 * @param err      buffer for the error message, "FILE:LINE: what is wrong", or
 *                 "FILE: what is wrong" for a file-level problem; may be NULL
 * @param err_len  size of @p err
 * @return 0 on success; -ENOENT, -EACCES, ... (the open/read errno) if the file
 *         cannot be read; -EFBIG if it is too large; -EINVAL if it is not a valid
 *         configuration; -ENOMEM if memory ran out.
 */
int zap_config_load(const char *path, struct zap_config **out, char *err, size_t err_len);

/**
 * Load and validate a configuration held in memory.
 *
 * @param name  used in place of the file name in error messages and as c->source
 * @param yaml  the document (need not be NUL-terminated)
 * @param len   its length in bytes
 * @return as zap_config_load(), without the file errors.
 */
int zap_config_load_string(const char *name, const char *yaml, size_t len, struct zap_config **out,
			   char *err, size_t err_len);

/** Release a config from zap_config_load*(). NULL is a no-op. */
void zap_config_free(struct zap_config *c);

/** The node with id @p id, or NULL if the config has none. */
const struct zap_node_config *zap_config_node(const struct zap_config *c, uint16_t id);

/** The lcore that runs @p role (one enum zap_lcore_role bit), or NULL if none does. */
const struct zap_lcore_config *zap_config_lcore_for_role(const struct zap_config *c, uint32_t role);

/** Name of one enum zap_lcore_role bit ("io", "paxos", ...), or "?" . */
const char *zap_config_role_name(uint32_t role);

#ifdef __cplusplus
}
#endif

#endif /* ZAP_CONFIG_H */
