/*
 * cfg.h — the cluster configuration file, shared by every service.
 *
 * One INI file describes the whole cluster; each service reads the sections
 * it needs and ignores none: every key in the file must be known, so a typo
 * fails at start-up ("cluster.conf:12: unknown key thread in [gateway]") instead
 * of silently running with a default.
 *
 *   [cluster]
 *   secret = 0123456789abcdef0123      ; required, >= 16 characters
 *   meta = 127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002  ; required: every replica
 *   k = 4
 *   m = 2
 *   block_size = 256k
 *   [node.1]                            ; repeated, ids positive and unique
 *   addr = 127.0.0.1:7101
 *   [meta]                              ; optional: Raft settings of the replicas
 *   snapshot_threshold = 65536
 *   [meta.1]                            ; one per metadata replica (Raft server id)
 *   addr = 127.0.0.1:7000               ; its service, as listed in [cluster] meta
 *   raft_addr = 127.0.0.1:7010          ; replica-to-replica Raft traffic
 *   [s3]
 *   access_key = CAIRN...               ; required
 *   secret_key = ...                    ; required
 *
 * Every option is declared once, in a table in cfg.c (section, key, type,
 * default, help); defaults, parsing, validation and cairn_cfg_help() all come
 * from it. Value types: string, int, size (bytes, with an optional k/m/g/t
 * suffix, powers of 1024), double, bool (true/false, yes/no, on/off, 1/0).
 *
 * Caveats
 * - Lines are at most 198 characters (the line buffer of the system
 *   libinih); a longer line is an error, not a silent truncation.
 * - Leading whitespace is ignored: there are no continuation lines.
 * - A key may appear once per section, a section once per file.
 * - Comments start with ';' or '#' at the start of a line; inline comments
 *   need " ;" (a ';' preceded by whitespace).
 * - A value is taken verbatim after trimming; quotes are not removed.
 * - The struct is plain data: copy it freely, no dispose.
 */
#ifndef CAIRN_CFG_H
#define CAIRN_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CAIRN_CFG_MAX_NODES 256
#define CAIRN_CFG_MAX_KM 32                       /* k + m at most */
#define CAIRN_CFG_MAX_BLOCK_SIZE (16u << 20)      /* block_size at most 16 MiB */
#define CAIRN_CFG_MAX_META 7                      /* metadata replicas at most */

typedef struct {
    uint32_t id;     /* from the section name [node.<id>], >= 1 */
    char addr[128];  /* host:port of the node's fragment service */
    char admin_addr[128]; /* host:port of its HTTP /health and /metrics (adminhttp.h); "": none */
    char zone[64];   /* failure domain label, "default" unless set */
    double weight;   /* placement weight, > 0 */
} cairn_cfg_node_t;

/* One metadata replica, [meta.<id>]. Only the replicas themselves need
 * these sections; clients use the [cluster] meta list. */
typedef struct {
    uint32_t id;         /* from [meta.<id>]: the Raft server id, >= 1 */
    char addr[128];      /* host:port of its service (the internal protocol) */
    char raft_addr[128]; /* IPv4:port of its Raft transport */
    char admin_addr[128]; /* host:port of its HTTP /health and /metrics (adminhttp.h); "": none */
} cairn_cfg_meta_t;

typedef struct {
    /* [cluster] */
    char secret[256];     /* HMAC key for internal RPC, >= 16 characters */
    int k, m;             /* erasure code: 1 <= k, 0 <= m, k + m <= 32 */
    uint32_t block_size;  /* bytes; a multiple of 64, at most 16 MiB */
    char meta_addr[1024]; /* the metadata replicas: "host:port[,host:port...]" (cairn_cfg_split_addrs) */
    int io_timeout_ms;    /* internal RPC timeout */
    int scrub_rate_mb;    /* storage-node scrubber read rate, MB/s (10^6 bytes); 0 = off */
    int scrub_interval_s; /* pause between two full scrub passes, seconds */
    /* [node.<id>], in file order */
    cairn_cfg_node_t nodes[CAIRN_CFG_MAX_NODES];
    size_t nnodes;        /* >= k + m */
    /* [gateway] */
    char gw_listen[128];  /* host:port the S3 endpoint listens on */
    char gw_admin_listen[128]; /* host:port of the HTTP /health and /metrics (adminhttp.h); "": none */
    int gw_threads;       /* event-loop threads; 0 = one per core */
    int gw_workers;       /* blocking worker threads for backend I/O */
    char region[64];      /* S3 region used in SigV4 scope */
    char gw_domain[256];  /* base domains for virtual-hosted-style requests, comma-separated; "": path style only */
    uint64_t max_object_size; /* bytes */
    uint64_t inline_max;  /* objects up to this size are stored in their metadata record */
    int gc_delay_ms;      /* delay before a superseded version's fragments are removed */
    int request_timeout_ms;
    int gw_max_connections;   /* open client connections; more get 503 SlowDown */
    int gw_max_requests;      /* S3 requests in flight; more get 503 SlowDown */
    uint64_t gw_max_header_size; /* bytes of request headers; more get 400 RequestHeaderSectionTooLarge */
    char gw_tls_cert[256];     /* PEM certificate chain of the S3 endpoint; "": plain HTTP (gw_tls.h) */
    char gw_tls_key[256];      /* PEM private key of gw_tls_cert; set exactly when gw_tls_cert is */
    /* [s3] the bootstrap user */
    char access_key[128];
    char secret_key[128];
    /* [log] */
    char log_level[16];   /* debug, info, warn or error */
    /* [meta] */
    int meta_election_ms;        /* Raft election timeout, > heartbeat */
    int meta_heartbeat_ms;
    int meta_lease_reads;        /* the leader serves reads under a lease (raft_glue.c) */
    int meta_snapshot_threshold; /* entries between snapshots */
    int meta_snapshot_trailing;  /* entries kept behind a snapshot */
    /* [meta.<id>], in file order */
    cairn_cfg_meta_t metas[CAIRN_CFG_MAX_META];
    size_t nmetas;
} cairn_cfg_t;

/*
 * Read and validate the file at path into *cfg (every field is set: values
 * from the file, defaults for the rest).
 *
 * Returns 0, or CAIRN_EINVAL with a one-line message in err (always
 * NUL-terminated when errsz > 0), e.g.
 *   "c.conf:7: unknown key thred in [gateway]"
 *   "c.conf:9: unknown section [gatway]"
 *   "c.conf:3: bad value for k in [cluster] ('four'): expected an integer"
 *   "c.conf: secret is required in [cluster]"
 *   "c.conf: 4+2 erasure coding needs at least 6 nodes, but 5 [node.<id>] sections are configured"
 * Values of secret keys are never echoed in messages.
 * A file that cannot be opened gives "c.conf: <strerror>" (also CAIRN_EINVAL).
 * On failure *cfg holds partial data and must not be used.
 */
int cairn_cfg_load(const char *path, cairn_cfg_t *cfg, char *err, size_t errsz);

/*
 * As cairn_cfg_load, from a NUL-terminated string; name is used in messages
 * in place of a file name.
 */
int cairn_cfg_load_string(const char *text, const char *name, cairn_cfg_t *cfg, char *err, size_t errsz);

/* The node with this id, or NULL. Borrowed from cfg; O(nnodes). */
const cairn_cfg_node_t *cairn_cfg_node(const cairn_cfg_t *cfg, uint32_t id);
/* The metadata replica [meta.<id>], or NULL. Borrowed from cfg. */
const cairn_cfg_meta_t *cairn_cfg_replica(const cairn_cfg_t *cfg, uint32_t id);

/*
 * Split a comma-separated address list ("h:p, h:p") into out[0..n): each
 * item trimmed, shorter than 128 bytes, a non-empty host, ':' and a port of
 * 1 to 5 digits. Returns n (>= 1), CAIRN_EINVAL for a malformed item or an
 * empty list, CAIRN_ETOOBIG for more than max items.
 */
int cairn_cfg_split_addrs(const char *list, char out[][128], int max);

/*
 * Print every option, one a line: "section.key  type  default  help". The
 * repeated node section appears as "node.<id>.addr" and so on.
 */
void cairn_cfg_help(FILE *out);

/*
 * Parse a size: decimal digits, then optionally k, m, g or t (either case,
 * powers of 1024) which may be followed by "b" or "ib": "4096", "256k", "4M",
 * "5g", "1GiB". Returns 0 or CAIRN_EINVAL (empty, junk, overflow).
 */
int cairn_cfg_parse_size(const char *s, uint64_t *out);

/*
 * Parse a boolean: true/false, yes/no, on/off, 1/0 (any case).
 * Returns 0 or CAIRN_EINVAL.
 */
int cairn_cfg_parse_bool(const char *s, int *out);

#endif
