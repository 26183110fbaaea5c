/*
 * meta_map.h — the cluster map kept by the metadata tier, and the calls the
 * gateway and the admin tool make on it.
 *
 * The map lists the storage nodes: a stable id (never reused), the address
 * of the fragment service, a zone (failure domain), a weight and a state.
 * Every change bumps the epoch. Gateways poll the map and place every new
 * object by the newest map they have; records keep the node id of each
 * fragment, so reads never depend on the map's history.
 *
 * States:
 *   up        placement target, readable
 *   draining  readable, never chosen for new fragments; rebalance moves its
 *             fragments away
 *   out       neither chosen nor read (a dead disk): its fragments are
 *             rebuilt from the others by rebalance
 * A removed node leaves the map; its id is not reused.
 *
 * The map starts empty (epoch 0). The first gateway or admin tool to find it
 * empty seeds it from the [node.N] sections of its configuration
 * (CAIRN_OP_META_MAP_INIT, applied only while the map is empty), so a fresh
 * cluster needs no extra step; from then on the map, not the file, is the
 * truth.
 *
 * Also here: the record scan (every object of every bucket, for rebalance,
 * repair and garbage collection), the record relocation that rebalance and
 * repair commit with compare-and-set, and a small key-value store for the
 * state of those jobs (cursor and progress).
 */
#ifndef CAIRN_META_MAP_H
#define CAIRN_META_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/buf.h"
#include "cairn/cfg.h"
#include "cairn/meta.h"

enum {
    CAIRN_OP_META_MAP_GET = 140,     /* -> map */
    CAIRN_OP_META_MAP_INIT = 141,    /* map (epoch ignored) -> map (the stored one, seeded or not) */
    CAIRN_OP_META_NODE_ADD = 142,    /* u32 id (0: next free), str addr, str zone, u32 weight_milli
                                      * -> u32 id, u64 epoch */
    CAIRN_OP_META_NODE_SET = 143,    /* u32 id, u8 state (0xff: keep), u32 weight_milli (0: keep) -> u64 epoch */
    CAIRN_OP_META_NODE_REMOVE = 144, /* u32 id -> u64 epoch */
    CAIRN_OP_META_OBJ_RELOCATE = 145,/* str bucket, bytes key, oid[16], u8 n, n x (u8 index, u32 from, u32 to)
                                      * -> empty; see cairn_meta_obj_relocate */
    CAIRN_OP_META_OBJ_SCAN = 146,    /* u8 table, bytes after (cursor, empty: start), u32 max
                                      * -> u32 n, n x (str bucket, bytes key, bytes record), u8 more, bytes cursor */
    CAIRN_OP_META_KV_GET = 147,      /* str name -> bytes value (CAIRN_ENOTFOUND) */
    CAIRN_OP_META_KV_PUT = 148,      /* str name, bytes value (empty: delete) -> empty */
};

/* What OBJ_SCAN reads: live object records; part records of multipart
 * uploads in progress; superseded versions waiting for deletion (the
 * garbage list). Outside the object table, bucket is empty and key is the
 * table's own key (upload id and part number; object id). */
enum { CAIRN_SCAN_OBJECTS = 0, CAIRN_SCAN_PARTS = 1, CAIRN_SCAN_GC = 2 };

enum { CAIRN_NODE_UP = 0, CAIRN_NODE_DRAINING = 1, CAIRN_NODE_OUT = 2 };
#define CAIRN_NODE_STATE_KEEP 0xff

#define CAIRN_MAP_MAX_NODES 256
#define CAIRN_MAP_ADDR_MAX 128
#define CAIRN_MAP_ZONE_MAX 64
#define CAIRN_KV_NAME_MAX 64
#define CAIRN_KV_VALUE_MAX 4096

typedef struct {
    uint32_t id;
    char addr[CAIRN_MAP_ADDR_MAX];
    char zone[CAIRN_MAP_ZONE_MAX];
    uint32_t weight_milli; /* weight x 1000, >= 1 */
    uint8_t state;         /* CAIRN_NODE_* */
} cairn_map_node_t;

/* Encoding: u64 epoch, u8 k, u8 m, u32 next_id, u32 n,
 * n x (u32 id, str addr, str zone, u32 weight_milli, u8 state). */
typedef struct {
    uint64_t epoch;  /* 0: empty, never seeded */
    uint8_t k, m;    /* the code new objects use; no change leaves fewer than k+m nodes up */
    uint32_t next_id;/* ids below it were handed out once */
    size_t n;
    cairn_map_node_t nodes[CAIRN_MAP_MAX_NODES];
} cairn_map_t;

void cairn_map_encode(const cairn_map_t *m, cairn_buf_t *out);
/* CAIRN_EPROTO if malformed (too many nodes, over-long strings, bad state). */
int cairn_map_decode(const uint8_t *p, size_t len, cairn_map_t *m);
/* The map a configuration's [node.N] sections and k, m describe (epoch 0,
 * every node up): the seed of MAP_INIT. */
void cairn_map_from_cfg(const cairn_cfg_t *cfg, cairn_map_t *m);
/* The node with this id, or NULL. */
const cairn_map_node_t *cairn_map_node(const cairn_map_t *m, uint32_t id);
size_t cairn_map_count_up(const cairn_map_t *m);
const char *cairn_node_state_name(int state);
int cairn_node_state_parse(const char *s); /* -1 if unknown */

/* The nodes that should hold the fragments of oid by map m: up to n ids in
 * placement order (weighted rendezvous over the up nodes, zones respected).
 * Returns how many (fewer than n when fewer nodes are up). scratch as for
 * cairn_place_pick with CAIRN_MAP_MAX_NODES nodes (cairn_map_scratch_size). */
size_t cairn_map_scratch_size(void);
int cairn_map_pick(const cairn_map_t *m, const uint8_t oid[16], size_t n, void *scratch, uint32_t *ids);

/* The fewest fragment moves that bring an object whose fragment i sits on
 * cur[i] (i < n) onto the node set want[0..n-1]: fragments already on a
 * wanted node stay (one per node); each other fragment is assigned a wanted
 * node that holds none. to[i] = cur[i] when fragment i stays. Returns the
 * number of moves. */
int cairn_map_plan_moves(const uint32_t *cur, const uint32_t *want, int n, uint32_t *to);

/* ---- client calls (through cairn_meta_call, with its retries) ---- */

int cairn_meta_map_get(cairn_meta_client_t *c, uint64_t req_id, cairn_map_t *out);
/* Seed an empty map with seed's nodes, k and m; *out receives the stored map. */
int cairn_meta_map_init(cairn_meta_client_t *c, uint64_t req_id, const cairn_map_t *seed, cairn_map_t *out);
/* Errors: CAIRN_EEXIST (id or address in use), CAIRN_EINVAL (weight 0, empty
 * or over-long address or zone), CAIRN_EUNAVAIL (map never seeded). */
int cairn_meta_node_add(cairn_meta_client_t *c, uint64_t req_id, uint32_t id, const char *addr, const char *zone,
                        uint32_t weight_milli, uint32_t *new_id, uint64_t *epoch);
/* CAIRN_ENOTFOUND (no such node), CAIRN_EINVAL (bad state), CAIRN_ECONFLICT
 * (fewer than k+m nodes would stay up). */
int cairn_meta_node_set(cairn_meta_client_t *c, uint64_t req_id, uint32_t id, int state, uint32_t weight_milli,
                        uint64_t *epoch);
int cairn_meta_node_remove(cairn_meta_client_t *c, uint64_t req_id, uint32_t id, uint64_t *epoch);

/* One fragment move inside a record. */
typedef struct {
    uint8_t index;
    uint32_t from, to;
} cairn_relocation_t;

/* Compare-and-set on the record of (bucket, key): if it is still the version
 * (or holds the multipart part) with object id oid, and fragment index of
 * that oid is still on `from` for every move, every move is applied at once.
 * CAIRN_ECONFLICT otherwise (overwritten, moved by someone else),
 * CAIRN_ENOTFOUND (deleted), CAIRN_EBUCKET. */
int cairn_meta_obj_relocate(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const uint8_t *key,
                            size_t key_len, const uint8_t oid[16], const cairn_relocation_t *moves, size_t n);

typedef struct {
    const char *bucket; size_t bucket_len;   /* views into the scan's raw buffer */
    const uint8_t *key; size_t key_len;
    cairn_obj_rec_t rec;
} cairn_meta_scan_entry_t;

typedef struct {
    cairn_buf_t raw;                   /* owns the response */
    cairn_meta_scan_entry_t *entries;  /* heap */
    size_t n;
    int more;
    uint8_t cursor[512];               /* resume point for the next call */
    size_t cursor_len;
} cairn_meta_scan_t;

void cairn_meta_scan_init(cairn_meta_scan_t *s);
void cairn_meta_scan_dispose(cairn_meta_scan_t *s);
/* Up to max records of table (CAIRN_SCAN_*) after cursor (len 0: from the
 * first), in storage order (objects: bucket, then key). */
int cairn_meta_obj_scan(cairn_meta_client_t *c, uint64_t req_id, int table, const uint8_t *cursor, size_t cursor_len,
                        uint32_t max, cairn_meta_scan_t *out);
/* Parse a scan response body held in s->raw. */
int cairn_meta_scan_decode(cairn_meta_scan_t *s);

/* ---- job state in the KV store ----
 * cairn-admin keeps the progress of rebalance and repair under the names
 * "rebalance" and "repair", and what it last measured of the cluster under
 * "health"; every metadata replica exports them on /metrics, so progress is
 * visible from anywhere. */
enum { CAIRN_JOB_NONE, CAIRN_JOB_RUNNING, CAIRN_JOB_STOPPED, CAIRN_JOB_DONE };

typedef struct {
    int state;                       /* CAIRN_JOB_* */
    uint64_t epoch;                  /* the map it works for */
    int64_t started_ms, updated_ms;  /* wall clock */
    uint64_t planned_frags, planned_bytes, done_frags, done_bytes, failed, conflicts;
    uint8_t cursor[512];             /* where a stopped run resumes (rebalance) */
    size_t cursor_len;
} cairn_job_state_t;

/* Encoding: u8 state, u64 epoch, u64 started, u64 updated, u64 x 6 counters, bytes cursor. */
void cairn_job_state_encode(const cairn_job_state_t *s, cairn_buf_t *out);
int cairn_job_state_decode(const uint8_t *p, size_t len, cairn_job_state_t *s);
const char *cairn_job_state_name(int state);

/* Encoding: u64 measured_ms, u64 misplaced fragments, u64 degraded objects
 * (UINT64_MAX: not measured by the run that wrote it). */
typedef struct {
    int64_t measured_ms;
    uint64_t misplaced, degraded;
} cairn_cluster_health_t;
void cairn_cluster_health_encode(const cairn_cluster_health_t *h, cairn_buf_t *out);
int cairn_cluster_health_decode(const uint8_t *p, size_t len, cairn_cluster_health_t *h);

int cairn_meta_kv_get(cairn_meta_client_t *c, uint64_t req_id, const char *name, cairn_buf_t *value);
int cairn_meta_kv_put(cairn_meta_client_t *c, uint64_t req_id, const char *name, const void *value, size_t len);

#endif
