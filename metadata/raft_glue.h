/*
 * raft_glue.h — the replicated log of the metadata service: libraft 0.15
 * (libuv backend) driving the LMDB state machine of fsm.h.
 *
 * Model. libraft runs on its own libuv loop on its own thread, and every
 * raft_* call happens there. The service's connection threads (srv.h) talk
 * to it through a mutex-protected job queue and a uv_async wake-up, and
 * sleep on a condition variable until the loop finishes their job:
 *
 *   submit:  copy the command into a log entry (envelope: command id, the
 *            leader's clock), raft_apply(), wait for commit and the local
 *            apply, return the apply result.
 *   barrier: the read path. raft_barrier() appends an entry and calls back
 *            once it is committed and everything before it is applied, so
 *            a read done after it sees every write acknowledged before the
 *            read arrived (linearizable). Reads that arrive while a barrier
 *            is in flight wait for the next one: one barrier per batch of
 *            concurrent reads. A leader lease would save the log write but
 *            rests on bounded clock drift and on libraft internals it does
 *            not expose (when a majority last answered); the barrier rests
 *            only on Raft's commit rule. Cost: one log write and a round
 *            trip per batch; 4 KiB GETs through the gateway measured ~25%
 *            fewer per second than with the single unreplicated service.
 *
 * Every write of the log is durable (libraft writes segments with
 * O_DIRECT and O_DSYNC) before it counts toward a commit. Entries submitted
 * while a write is in flight are written together by the next one (group
 * commit): N concurrent submits cost about one synchronous write per round,
 * not N. Measured on the leader (2 vCPUs shared by 3 replicas and the
 * client): 1.1 commits per log write with 1 submitter, 4.3 with 16, 13 with
 * 64, 24 with 256. The state machine commits to LMDB without fsync
 * (META_FSM_NOSYNC): the log is the durable copy, and entries are applied
 * again after a crash (fsm.h skips those already applied).
 *
 * Snapshots (every snapshot_threshold entries): libraft's asynchronous
 * snapshot interface (FSM version 3). The loop thread only notes the
 * request; a threadpool thread has LMDB write a compacted copy of the
 * database to an unlinked temporary file and maps it read-only; libraft
 * writes that mapping to its snapshot file and the mapping is released when
 * it is done. Anonymous memory stays O(1) in the database size; the copy
 * lives in the page cache, which the kernel can reclaim (1 M object records,
 * a 390 MB copy: RssAnon 30.6 -> 32.6 MiB while it was taken). libraft itself
 * still reads a whole snapshot into memory when it sends one to a lagging
 * replica, and that replica receives it in one message (both about the size
 * of the compacted database). Restoring writes the image next to data.mdb
 * and swaps it in, unless the local database has already applied at least
 * as far (a restart).
 *
 * Caveats
 * - libraft 0.15 quirks handled here: SIGPIPE must be ignored by the
 *   process (the transport writes to dead peers); entry payloads are
 *   padded to 8 bytes; apply never returns an error for a command's own
 *   failure (that goes in the result), only for LMDB failures, which stall
 *   application until they clear; raft_uv_init sets io.version 1, which is
 *   raised to 2 so the asynchronous snapshot is accepted.
 * - Replica-to-replica TCP (raft_transport.h) authenticates each
 *   connection's handshake with the cluster key, not every message.
 * - A replica whose data was wiped must be removed and added back
 *   (meta_log_remove / meta_log_add), not restarted as a bootstrap member:
 *   it has forgotten its votes.
 */
#ifndef CAIRN_META_RAFT_GLUE_H
#define CAIRN_META_RAFT_GLUE_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/buf.h"
#include "cairn/cfg.h"
#include "cairn/meta.h"
#include "cairn/wire.h"
#include "fsm.h"

typedef struct meta_log_s meta_log_t;

typedef struct {
    uint64_t id;             /* this replica's Raft id, >= 1 */
    const char *raft_addr;   /* its Raft transport address, IPv4:port */
    const char *dir;         /* the Raft directory (log segments, snapshots); created if missing */
    int join;                /* never bootstrap: wait to be added by the leader */
    const cairn_cfg_t *cfg;  /* the initial members ([meta.<id>]) and [meta] settings; borrowed for the log's life */
    const cairn_wire_key_t *key; /* authenticates replica-to-replica connections (raft_transport.h); borrowed */
} meta_log_opts_t;

/* Start replication on a new thread. Unless o->join, a pristine Raft
 * directory is bootstrapped with every [meta.<id>] of the config as a voter
 * (the same configuration on every replica, so the logs agree). 0 or a
 * negative error (logged). fsm is borrowed and outlives the log. */
int meta_log_create(meta_fsm_t *fsm, const meta_log_opts_t *o, meta_log_t **out);
/* Hand leadership to another voter if this replica leads (bounded by a
 * couple of seconds), stop Raft and join the thread. Pending and later calls
 * return CAIRN_EUNAVAIL; the object stays valid for threads still holding
 * it. Idempotent. */
void meta_log_stop(meta_log_t *l);
/* Stop (if needed) and free. No other thread may use l any more. NULL is fine. */
void meta_log_destroy(meta_log_t *l);

/* Append cmd (len bytes, a multiple of 8; fsm.h command builders pad),
 * wait until it is committed and applied here, and copy the apply result
 * (i32 status, payload: see meta_fsm_apply) into *result.
 * id, when not NULL, is the command id (fsm.h): a command whose id was
 * applied before is not applied again, and answers the first result.
 * Returns 0 (the command's own status is inside result), or
 *   CAIRN_ENOTLEADER  not the leader; or leadership was lost while the
 *                     entry was pending (it may still commit: retry with
 *                     the same id);
 *   CAIRN_ETIMEOUT    no answer within timeout (same: may commit later);
 *   CAIRN_EUNAVAIL    shutting down, or libraft refused the entry.
 * Thread-safe. */
int meta_log_submit(meta_log_t *l, const uint8_t *cmd, size_t len, cairn_buf_t *result);
int meta_log_submit_once(meta_log_t *l, const uint8_t id[16], const uint8_t *cmd, size_t len, cairn_buf_t *result);

/* Linearizable read point: returns 0 once every write committed before the
 * call is applied to the local state machine, on the leader only.
 * CAIRN_ENOTLEADER, CAIRN_ETIMEOUT, CAIRN_EUNAVAIL as for submit. */
int meta_log_barrier(meta_log_t *l);

/* The leader as this replica last saw it: Raft id (0: none known) and its
 * service address (empty if unknown). Never blocks on the loop. */
void meta_log_leader(meta_log_t *l, uint64_t *id, char addr[128]);

/* This replica's view (meta.h), read on the loop thread. 0,
 * CAIRN_EUNAVAIL or CAIRN_ETIMEOUT. */
int meta_log_status(meta_log_t *l, cairn_meta_status_t *st);

/* Membership, on the leader (CAIRN_ENOTLEADER elsewhere), one change at a
 * time (CAIRN_ECONFLICT while another is running).
 * add: record the replica's addresses in the state machine, add it to the
 * configuration and promote it to voter once it has caught up (libraft
 * sends it a snapshot and the log). The new replica must be running with
 * join set. CAIRN_EEXIST if it is already a voter.
 * remove: drop it from the configuration (a removed leader steps down).
 * CAIRN_ENOTFOUND if it is not a member, CAIRN_EINVAL if it is the last
 * voter.
 * transfer: hand leadership to id (0: any up-to-date voter).
 * Each waits up to timeout_ms (CAIRN_ETIMEOUT: the change may still
 * complete). */
int meta_log_add(meta_log_t *l, uint64_t id, const char *addr, const char *raft_addr, int timeout_ms);
int meta_log_remove(meta_log_t *l, uint64_t id, int timeout_ms);
int meta_log_transfer(meta_log_t *l, uint64_t id, int timeout_ms);

#endif
