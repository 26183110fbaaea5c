/*
 * rpc.h — the metadata service's request handlers (one per opcode of
 * meta.h, served by srv.h).
 *
 * A mutation is turned into one command (fsm.h) and handed to the
 * replicated log (raft_glue.h), which returns once the command is committed
 * and applied here, with its result. A read first waits for a log barrier
 * (meta_log_barrier), then reads the state machine: reads are served by the
 * leader only and see every write acknowledged before them.
 *
 * A replica that is not the leader answers CAIRN_ENOTLEADER with the
 * leader's service address as the whole response body (empty if unknown).
 * Requests wrapped in CAIRN_OP_META_ONCE carry a command id that the log
 * uses to apply a retried mutation only once.
 */
#ifndef CAIRN_META_RPC_H
#define CAIRN_META_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/buf.h"
#include "cairn/srv.h"
#include "fsm.h"
#include "raft_glue.h"

/* What the handlers work on: the srv data pointer. */
typedef struct {
    meta_fsm_t *fsm;
    meta_log_t *log;
} meta_rpc_t;

/* The route table for cairn_srv_create() (static). */
extern const cairn_srv_route_t meta_rpc_routes[];
extern const size_t meta_rpc_nroutes;

/* For handlers in other files: a read handler calls this before reading the
 * state machine; nonzero is the handler's answer (the body holds the
 * leader's address when it is CAIRN_ENOTLEADER). */
int meta__rpc_barrier(meta_rpc_t *r, cairn_buf_t *resp);

/* Make sure a user exists with exactly these fields: read it, and submit a
 * USER_PUT only if it is missing or different. 0 or an error. */
int meta_rpc_ensure_user(meta_rpc_t *r, const char *access_key, const char *secret, const char *owner,
                         const char *display_name);

#endif
