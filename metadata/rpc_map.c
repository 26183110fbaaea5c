/*
 * rpc_map.c — handlers of the cluster-map opcodes. See rpc_map.h.
 *
 * A mutation's body is checked for shape before it becomes a command, so a
 * malformed request never reaches the log; the state machine decodes it
 * again on every replica.
 */
#include "rpc_map.h"

#include <stdlib.h>

#include "cairn/err.h"
#include "fsm_map.h"
#include "fsm_mpu.h"
#include "rpc_mpu.h"

static int mutate(void *data, cairn_srv_req_t *req, int type, cairn_buf_t *resp)
{
    cairn_buf_t cmd;
    cairn_buf_init(&cmd);
    meta_cmd_mpu(&cmd, type, req->body, req->hdr.body_len);
    return meta__rpc_submit(data, req, &cmd, resp);
}

static int body_ok(const cairn_dec_t *d) { return d->err == 0 && cairn_dec_left(d) == 0; }

int meta_rpc_on_map_get(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    meta_rpc_t *r = data;
    if (req->hdr.body_len != 0)
        return CAIRN_EPROTO;
    int rc = meta__rpc_barrier(r, resp);
    return rc ? rc : meta_fsm_map_get(r->fsm, resp);
}

int meta_rpc_on_map_init(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_map_t *m = cairn_malloc(sizeof *m); /* checked for shape only */
    int rc = cairn_map_decode(req->body, req->hdr.body_len, m);
    free(m);
    if (rc != 0)
        return CAIRN_EPROTO;
    cairn_buf_t cmd, body;
    cairn_buf_init(&cmd);
    cairn_buf_init(&body);
    cairn_buf_put_bytes(&body, req->body, req->hdr.body_len);
    meta_cmd_mpu(&cmd, META_CMD_MAP_INIT, body.base, body.len);
    cairn_buf_dispose(&body);
    return meta__rpc_submit(data, req, &cmd, resp);
}

int meta_rpc_on_node_add(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    const uint8_t *p;
    size_t n;
    cairn_dec_init(&d, req->body, req->hdr.body_len);
    (void)cairn_dec_u32(&d);
    cairn_dec_bytes(&d, &p, &n);
    cairn_dec_bytes(&d, &p, &n);
    (void)cairn_dec_u32(&d);
    return body_ok(&d) ? mutate(data, req, META_CMD_NODE_ADD, resp) : CAIRN_EPROTO;
}

int meta_rpc_on_node_set(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    cairn_dec_init(&d, req->body, req->hdr.body_len);
    (void)cairn_dec_u32(&d);
    (void)cairn_dec_u8(&d);
    (void)cairn_dec_u32(&d);
    return body_ok(&d) ? mutate(data, req, META_CMD_NODE_SET, resp) : CAIRN_EPROTO;
}

int meta_rpc_on_node_remove(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    return req->hdr.body_len == 4 ? mutate(data, req, META_CMD_NODE_REMOVE, resp) : CAIRN_EPROTO;
}

int meta_rpc_on_obj_relocate(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    const uint8_t *p;
    size_t n;
    uint8_t oid[16];
    cairn_dec_init(&d, req->body, req->hdr.body_len);
    cairn_dec_bytes(&d, &p, &n);
    cairn_dec_bytes(&d, &p, &n);
    cairn_dec_raw(&d, oid, 16);
    uint8_t cnt = cairn_dec_u8(&d);
    for (unsigned i = 0; i < cnt; i++) {
        (void)cairn_dec_u8(&d);
        (void)cairn_dec_u32(&d);
        (void)cairn_dec_u32(&d);
    }
    if (cnt == 0 || cnt > CAIRN_MAX_FRAGS || !body_ok(&d))
        return CAIRN_EPROTO;
    return mutate(data, req, META_CMD_OBJ_RELOCATE, resp);
}

int meta_rpc_on_obj_scan(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    meta_rpc_t *r = data;
    cairn_dec_t d;
    const uint8_t *after;
    size_t n;
    cairn_dec_init(&d, req->body, req->hdr.body_len);
    uint8_t table = cairn_dec_u8(&d);
    cairn_dec_bytes(&d, &after, &n);
    uint32_t max = cairn_dec_u32(&d);
    if (!body_ok(&d))
        return CAIRN_EPROTO;
    if (table > CAIRN_SCAN_GC)
        return CAIRN_EINVAL;
    int rc = meta__rpc_barrier(r, resp);
    return rc ? rc : meta_fsm_obj_scan(r->fsm, table, after, n, max, resp);
}

int meta_rpc_on_kv_get(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    meta_rpc_t *r = data;
    cairn_dec_t d;
    const uint8_t *name;
    size_t n;
    cairn_dec_init(&d, req->body, req->hdr.body_len);
    cairn_dec_bytes(&d, &name, &n);
    if (!body_ok(&d))
        return CAIRN_EPROTO;
    int rc = meta__rpc_barrier(r, resp);
    return rc ? rc : meta_fsm_kv_get(r->fsm, name, n, resp);
}

int meta_rpc_on_kv_put(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    const uint8_t *p;
    size_t n;
    cairn_dec_init(&d, req->body, req->hdr.body_len);
    cairn_dec_bytes(&d, &p, &n);
    cairn_dec_bytes(&d, &p, &n);
    return body_ok(&d) ? mutate(data, req, META_CMD_KV_PUT, resp) : CAIRN_EPROTO;
}
