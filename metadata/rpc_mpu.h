/*
 * rpc_mpu.h — request handlers of the multipart opcodes (cairn/meta_mpu.h),
 * listed in the route table of rpc.c through META_RPC_MPU_ROUTES.
 *
 * Mutations become META_CMD_MPU_* commands (fsm_mpu.h) and go through the
 * same submit path as every other mutation of rpc.c (meta__rpc_submit);
 * reads pass the same barrier as rpc.c's (meta__rpc_barrier, rpc.h), then
 * call the state machine.
 */
#ifndef CAIRN_META_RPC_MPU_H
#define CAIRN_META_RPC_MPU_H

#include "cairn/buf.h"
#include "cairn/meta_mpu.h"
#include "cairn/srv.h"
#include "rpc.h"

/* rpc.c: submit a command as its own handlers do; the result's payload goes
 * to resp and its status is returned. Consumes cmd. */
int meta__rpc_submit(meta_rpc_t *r, cairn_srv_req_t *req, cairn_buf_t *cmd, cairn_buf_t *resp);

int meta_rpc_on_mpu_create(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);
int meta_rpc_on_mpu_get(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);
int meta_rpc_on_mpu_part_put(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);
int meta_rpc_on_mpu_complete(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);
int meta_rpc_on_mpu_abort(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);
int meta_rpc_on_mpu_list_parts(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);
int meta_rpc_on_mpu_list(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);
int meta_rpc_on_gc_done_many(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);
int meta_rpc_on_obj_put_if(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);

#define META_RPC_MPU_ROUTES                                          \
    {CAIRN_OP_META_MPU_CREATE, 0, meta_rpc_on_mpu_create},           \
    {CAIRN_OP_META_MPU_GET, 0, meta_rpc_on_mpu_get},                 \
    {CAIRN_OP_META_MPU_PART_PUT, 0, meta_rpc_on_mpu_part_put},       \
    {CAIRN_OP_META_MPU_COMPLETE, 0, meta_rpc_on_mpu_complete},       \
    {CAIRN_OP_META_MPU_ABORT, 0, meta_rpc_on_mpu_abort},             \
    {CAIRN_OP_META_MPU_LIST_PARTS, 0, meta_rpc_on_mpu_list_parts},   \
    {CAIRN_OP_META_MPU_LIST, 0, meta_rpc_on_mpu_list},               \
    {CAIRN_OP_META_GC_DONE_MANY, 0, meta_rpc_on_gc_done_many},       \
    {CAIRN_OP_META_OBJ_PUT_IF, 0, meta_rpc_on_obj_put_if}

#endif
