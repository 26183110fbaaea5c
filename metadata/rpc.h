/*
 * rpc.h — the metadata service's request handlers (one per opcode of
 * meta.h, served by srv.h), and the log that mutations go through.
 *
 * Reads call the state machine directly. A mutation is turned into one
 * command (fsm.h) and handed to meta_log_submit(), which returns once the
 * command has been applied, with its result.
 *
 * The log here is the single-replica one: a mutex, a counter for the next
 * index, and meta_fsm_apply() with a synced LMDB commit, so nothing is
 * acknowledged before it is on disk. A replicated log (Raft) implements the
 * same three functions: submit then means "append, wait for commit and the
 * local apply, return its result", and returns CAIRN_ENOTLEADER on a
 * follower.
 */
#ifndef CAIRN_META_RPC_H
#define CAIRN_META_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/buf.h"
#include "cairn/srv.h"
#include "fsm.h"

typedef struct meta_log_s meta_log_t;

/* A log applying to fsm (borrowed; outlives the log). The next index is
 * meta_fsm_applied(fsm) + 1. */
int meta_log_create(meta_fsm_t *fsm, meta_log_t **out);
void meta_log_destroy(meta_log_t *l);
/* Append cmd (len bytes, a multiple of 8), wait until it is applied, and
 * copy the apply result (i32 status, payload: see meta_fsm_apply) into
 * *result. Thread-safe; commands are applied in submission order.
 * Returns 0 (the command's own status is inside result) or a system error
 * (nothing was applied). */
int meta_log_submit(meta_log_t *l, const uint8_t *cmd, size_t len, cairn_buf_t *result);

/* What the handlers work on: the srv data pointer. */
typedef struct {
    meta_fsm_t *fsm;
    meta_log_t *log;
} meta_rpc_t;

/* The route table for cairn_srv_create() (static). */
extern const cairn_srv_route_t meta_rpc_routes[];
extern const size_t meta_rpc_nroutes;

/* Make sure a user exists with exactly these fields: read it, and submit a
 * USER_PUT only if it is missing or different. 0 or an error. */
int meta_rpc_ensure_user(meta_rpc_t *r, const char *access_key, const char *secret, const char *owner,
                         const char *display_name);

#endif
