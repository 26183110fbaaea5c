/*
 * mover.h — the engine behind rebalance and repair: write fragments onto
 * their target nodes (copied from their current node, or rebuilt from the
 * others), commit the new locations with compare-and-set, delete what the
 * move left behind; with a worker pool, a byte-rate limit, progress, and an
 * inventory of what the nodes hold.
 *
 * A job is one fragment set (an object, or one part of a multipart object)
 * with, per fragment index, where it is (nodes[i]) and where it must be
 * (to[i]). Indexes in `fix` are written to to[i]: from nodes[i] when that
 * copy reads back intact, else rebuilt with the erasure code from any k
 * other good fragments (`bad` marks the fragments known to be missing or
 * unreadable). Then, for the indexes whose node changes, the record is
 * updated with OBJ_RELOCATE; if the record changed meanwhile (overwritten,
 * deleted, moved by someone else), the new copies are removed again unless
 * the current record names them, and the client's write wins. Only after a
 * successful relocation are the old copies deleted.
 */
#ifndef CAIRN_ADMIN_MOVER_H
#define CAIRN_ADMIN_MOVER_H

#include <pthread.h>
#include <stdint.h>

#include "admin.h"
#include "cairn/frag.h"

typedef struct {
    char bucket[CAIRN_MAX_BUCKET_LEN + 1];
    uint8_t key[CAIRN_MAX_KEY_LEN];
    size_t key_len;
    int table;                       /* CAIRN_SCAN_*: only objects are relocated */
    uint8_t oid[16];
    uint64_t size;
    uint8_t k, m;
    uint32_t block_size;
    uint32_t nodes[CAIRN_MAX_FRAGS]; /* where fragment i is */
    uint32_t to[CAIRN_MAX_FRAGS];    /* where it must be */
    uint32_t fix;                    /* bit i: write fragment i to to[i] */
    uint32_t bad;                    /* bit i: the copy on nodes[i] is missing or unreadable */
    int surviving;                   /* good fragments (repair's priority) */
} mv_job_t;

/* Fill a job's identity and geometry from a walked fragment set (to = nodes, nothing to fix). */
void mv_job_from(mv_job_t *j, const admin_fragset_t *fs, int table);
/* Bytes of fragment file i... every fragment file of a set has the same size. */
uint64_t mv_frag_bytes(const mv_job_t *j);

typedef struct mover_s mover_t;

/* A mover for map `map` (borrowed, fixed for its life): `parallel` worker
 * threads, at most rate_mb MB/s of fragment data written (0: unlimited). */
mover_t *mover_create(admin_t *a, const cairn_map_t *map, int parallel, double rate_mb);
void mover_destroy(mover_t *mv);
/* Run jobs[0..n) on the workers; returns when all are done or a stop was
 * requested (mover_stop). Returns the number of jobs not done because of
 * the stop. */
size_t mover_run(mover_t *mv, mv_job_t *jobs, size_t n);
/* Ask the workers to stop after their current job (signal-safe). */
void mover_stop(void);
int mover_stopping(void);

/* Totals so far (atomics, read from any thread). */
typedef struct {
    uint64_t jobs_done, jobs_failed, jobs_conflict;
    uint64_t frags_written, bytes_written, frags_rebuilt;
} mover_stats_t;
void mover_stats(mover_t *mv, mover_stats_t *out);

/* ---- inventory: what each node holds ---- */

/* One fragment file on one node. */
typedef struct {
    uint8_t oid[16];
    uint8_t index;
    uint32_t node;
    uint64_t size;
} inv_ent_t;

typedef struct {
    inv_ent_t *v;       /* sorted by (oid, index, node) */
    size_t n, cap;
    uint32_t unreachable[CAIRN_MAP_MAX_NODES]; /* nodes that could not be listed */
    size_t nunreachable;
} inventory_t;

/* List every fragment of every up or draining node of map. Unreachable
 * nodes are recorded, not fatal. */
int inventory_load(admin_t *a, const cairn_map_t *map, inventory_t *inv);
void inventory_dispose(inventory_t *inv);
/* Build one by hand (e.g. the fragments records reference): add, then sort
 * once before looking anything up. */
void inventory_add(inventory_t *inv, const uint8_t oid[16], unsigned index, uint32_t node, uint64_t size);
void inventory_sort(inventory_t *inv);
/* Whether any node holds fragment (oid, index). */
int inventory_has_any(const inventory_t *inv, const uint8_t oid[16], unsigned index);
/* Whether node holds fragment (oid, index). */
int inventory_has(const inventory_t *inv, const uint8_t oid[16], unsigned index, uint32_t node);
int inventory_node_unreachable(const inventory_t *inv, uint32_t node);

/* ---- the job lock and progress display ---- */

/* Take the cluster-wide admin job lock (KV "admin.lock") for `what`;
 * refused (CAIRN_EEXIST, with a message) while another live job holds it.
 * The holder refreshes it with lock_beat; a lock not refreshed for 30 s, or
 * held by a process of this host that no longer exists, is taken over. */
int admin_lock(cairn_meta_client_t *mc, const char *what);
void admin_lock_beat(cairn_meta_client_t *mc);
void admin_unlock(cairn_meta_client_t *mc);

/* Progress on stderr (stdout stays for results, e.g. --json): on a terminal
 * a bar redrawn in place, else a plain line every 10 s; final = 1 for the
 * last one. done/total and bytes/bytes_total count the whole job (earlier
 * runs included); the rate and ETA come from run_bytes written since
 * run_started_ms (cairn_now_ms) by this run. */
/* Whether a progress line on stderr is due now: always on a terminal and
 * for the final one, else 10 s after *last_line (updated when due). *tty:
 * stderr is a terminal. */
int progress_due(int64_t *last_line, int final, int *tty);
void progress_show(const char *what, uint64_t done, uint64_t total, uint64_t bytes, uint64_t bytes_total,
                   uint64_t run_bytes, int64_t run_started_ms, int final);

#endif
