/*
 * fsm_map.h — the cluster map, record relocation and job state in the
 * metadata state machine (fsm_map.c): the commands and reads behind the
 * opcodes of cairn/meta_map.h.
 *
 * LMDB layout (in the fsm's sys database):
 *   "map"        -> the map (cairn_map_encode); absent until seeded
 *   "kv:" name   -> a job's state value (rebalance cursor, progress)
 * Record relocation rewrites the node ids inside an object record in place
 * (objects database, through the same code as OBJ_PUT with an unchanged
 * object id, so nothing goes to the garbage list).
 *
 * As for multipart uploads, every command is the opcode's request body
 * verbatim behind its type byte (meta_cmd_mpu), and results are the opcode's
 * response bodies. Apply stays deterministic: ids come from the map's own
 * next_id, never from a clock.
 */
#ifndef CAIRN_META_FSM_MAP_H
#define CAIRN_META_FSM_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/buf.h"
#include "cairn/meta_map.h"
#include "fsm.h"

enum {
    META_CMD_MAP_INIT = 48,     /* bytes: the CAIRN_OP_META_MAP_INIT body */
    META_CMD_NODE_ADD = 49,     /* CAIRN_OP_META_NODE_ADD body */
    META_CMD_NODE_SET = 50,     /* CAIRN_OP_META_NODE_SET body */
    META_CMD_NODE_REMOVE = 51,  /* CAIRN_OP_META_NODE_REMOVE body */
    META_CMD_OBJ_RELOCATE = 52, /* CAIRN_OP_META_OBJ_RELOCATE body */
    META_CMD_KV_PUT = 53,       /* CAIRN_OP_META_KV_PUT body */
};
#define META_CMD_MAP_FIRST META_CMD_MAP_INIT
#define META_CMD_MAP_LAST META_CMD_KV_PUT

/* Reads: append the opcode's response body to out; 0, a cairn error
 * (CAIRN_ENOTFOUND, CAIRN_EINVAL; out unchanged) or a system error. */
int meta_fsm_map_get(meta_fsm_t *f, cairn_buf_t *out);
int meta_fsm_kv_get(meta_fsm_t *f, const uint8_t *name, size_t len, cairn_buf_t *out);
/* OBJ_SCAN response (meta_map.h): records of table (CAIRN_SCAN_*) after
 * the cursor `after` (an LMDB key of that database; empty: the first), at
 * most max (clamped to META_FSM_MAX_LIST). Implemented in fsm.c, which owns
 * the key layout. CAIRN_EINVAL for an unknown table. */
int meta_fsm_obj_scan(meta_fsm_t *f, int table, const uint8_t *after, size_t after_len, uint32_t max,
                      cairn_buf_t *out);

#endif
