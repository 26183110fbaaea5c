/*
 * rpc_map.h — request handlers of the cluster-map opcodes
 * (cairn/meta_map.h), listed in the route table of rpc.c through
 * META_RPC_MAP_ROUTES. Mutations become META_CMD_* commands of fsm_map.h
 * through meta__rpc_submit; reads pass the barrier first.
 */
#ifndef CAIRN_META_RPC_MAP_H
#define CAIRN_META_RPC_MAP_H

#include "cairn/buf.h"
#include "cairn/meta_map.h"
#include "cairn/srv.h"
#include "rpc.h"

int meta_rpc_on_map_get(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);
int meta_rpc_on_map_init(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);
int meta_rpc_on_node_add(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);
int meta_rpc_on_node_set(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);
int meta_rpc_on_node_remove(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);
int meta_rpc_on_obj_relocate(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);
int meta_rpc_on_obj_scan(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);
int meta_rpc_on_kv_get(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);
int meta_rpc_on_kv_put(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);

#define META_RPC_MAP_ROUTES                                        \
    {CAIRN_OP_META_MAP_GET, 0, meta_rpc_on_map_get},               \
    {CAIRN_OP_META_MAP_INIT, 0, meta_rpc_on_map_init},             \
    {CAIRN_OP_META_NODE_ADD, 0, meta_rpc_on_node_add},             \
    {CAIRN_OP_META_NODE_SET, 0, meta_rpc_on_node_set},             \
    {CAIRN_OP_META_NODE_REMOVE, 0, meta_rpc_on_node_remove},       \
    {CAIRN_OP_META_OBJ_RELOCATE, 0, meta_rpc_on_obj_relocate},     \
    {CAIRN_OP_META_OBJ_SCAN, 0, meta_rpc_on_obj_scan},             \
    {CAIRN_OP_META_KV_GET, 0, meta_rpc_on_kv_get},                 \
    {CAIRN_OP_META_KV_PUT, 0, meta_rpc_on_kv_put}

#endif
