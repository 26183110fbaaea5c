/*
 * admin.h — what the command files of cairn-admin share: the loaded
 * configuration and the cluster key, and the signature of a command.
 *
 * Each command group lives in its own file (meta_cmd.c: the metadata
 * replicas) and is listed in the table of main.c.
 */
#ifndef CAIRN_ADMIN_H
#define CAIRN_ADMIN_H

#include "cairn/cfg.h"
#include "cairn/meta.h"
#include "cairn/meta_map.h"
#include "cairn/node_client.h"
#include "cairn/wire.h"

typedef struct {
    cairn_cfg_t cfg;          /* the cluster configuration (--config) */
    cairn_wire_key_t *key;    /* derived from cfg.secret; NULL (and cfg empty) when the command
                               * line asks for --help and no configuration could be loaded:
                               * a group prints its usage before touching either */
    int json;                 /* --json: machine-readable output where a command offers it */
} admin_t;

/* A command group's entry point: argv[0] is the group name ("meta").
 * Returns the exit status: 0 ok, 1 failed, 2 usage. */
typedef int (*admin_cmd_fn)(admin_t *a, int argc, char **argv);

int admin_meta(admin_t *a, int argc, char **argv);
int admin_rebalance(admin_t *a, int argc, char **argv); /* rebalance_cmd.c */
int admin_repair(admin_t *a, int argc, char **argv);
int admin_gc(admin_t *a, int argc, char **argv);
int admin_node(admin_t *a, int argc, char **argv);   /* node_cmd.c */
int admin_status(admin_t *a, int argc, char **argv); /* status_cmd.c */

/* ---- walk.c: the cluster map and every fragment set ---- */

/* A metadata client for the configured replicas (dispose when done). */
void admin_meta_client(admin_t *a, cairn_meta_client_t *mc);
/* The cluster map; seeded from the configuration's [node.N] sections when
 * the metadata tier holds none yet. Prints the error and returns it. */
int admin_map_load(admin_t *a, cairn_meta_client_t *mc, cairn_map_t *map);

/* One set of fragments: a whole object, or one part of a multipart object
 * (inline objects have none and are skipped). Views, valid during the call. */
typedef struct {
    const char *bucket; size_t bucket_len;
    const uint8_t *key; size_t key_len;
    const uint8_t *oid;      /* the object's or the part's */
    uint64_t size;           /* bytes of data in this set */
    uint8_t k, m;
    uint32_t block_size;
    const uint32_t *nodes;   /* k+m node ids: fragment i is on nodes[i] */
} admin_fragset_t;

/* Called for each fragment set; nonzero stops the walk (returned). */
typedef int (*admin_walk_fn)(void *arg, const admin_fragset_t *fs);
/* Every record of table (CAIRN_SCAN_*: live objects, parts of uploads in
 * progress, the garbage list) after the scan cursor (len 0: all), in
 * storage order, in pages. After each page, if page_done is not NULL, it is called with the
 * cursor of the page's last record (to save progress); nonzero stops. */
typedef int (*admin_page_fn)(void *arg, const uint8_t *cursor, size_t len);
int admin_walk(cairn_meta_client_t *mc, int table, const uint8_t *cursor, size_t cursor_len, admin_walk_fn fn,
               admin_page_fn page_done, void *arg);

/* ---- meta_cmd.c: the metadata replicas (meta status, status) ---- */

#define ADMIN_MAX_REPLICAS (CAIRN_META_MAX_MEMBERS + CAIRN_CFG_MAX_META)

/* One metadata replica as it answered (or did not) when asked directly. */
typedef struct {
    char addr[128];          /* "" when no replica reported it */
    uint64_t id;             /* 0 until known */
    int answered;
    int member;              /* in the leader's configuration (1 when no leader answered) */
    const char *kind;        /* "voter", "standby", "spare" or "not a member"; static */
    cairn_meta_status_t st;  /* when answered */
} admin_replica_t;

/* Ask every replica known (the [cluster] meta list, then the members the
 * others report), each once and without redirects, into rows (room for
 * ADMIN_MAX_REPLICAS). Returns how many rows; *leader is the index of the
 * leader with the highest term, or -1. */
size_t admin_meta_replicas(admin_t *a, admin_replica_t *rows, int *leader);
/* Print rows as the table of `meta status`, or with a->json as a JSON
 * array (no newline after it). */
void admin_meta_replicas_print(admin_t *a, const admin_replica_t *rows, size_t n);

/* ---- node_cmd.c: helpers for the commands about storage nodes ---- */

/* PING then NODE_INFO at addr, each within timeout_ms. 0, or the first
 * error (transport or the node's status); info is filled only on 0. */
int admin_node_probe(admin_t *a, const char *addr, int timeout_ms, cairn_node_info_t *info);
/* admin_node_probe of every node of m at once (a thread each): rc[i] and
 * info[i] for m->nodes[i]. */
void admin_node_probe_all(admin_t *a, const cairn_map_t *m, int timeout_ms, int *rc, cairn_node_info_t *info);
/* s as a JSON string, quotes included, to stdout. */
void admin_json_str(const char *s);
/* "1", "1.5", "0.125": a weight in thousandths, without trailing zeros. */
void admin_fmt_weight(uint32_t weight_milli, char *out, size_t n);
/* "512 B", "1.5 KiB", "3.2 GiB". */
void admin_fmt_bytes(uint64_t bytes, char *out, size_t n);

#endif
