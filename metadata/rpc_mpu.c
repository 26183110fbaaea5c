/*
 * rpc_mpu.c — handlers of the multipart opcodes. See rpc_mpu.h.
 *
 * As in rpc.c, a mutation's body is decoded completely before it becomes a
 * command, so a malformed request never reaches the log; the command is the
 * request body itself behind its type byte (fsm_mpu.h), and the state
 * machine decodes it again on every replica.
 */
#include "rpc_mpu.h"

#include <string.h>

#include "cairn/err.h"
#include "cairn/meta.h"
#include "cairn/meta_mpu.h"
#include "fsm_mpu.h"

static int body_ok(const cairn_dec_t *d) { return d->err == 0 && cairn_dec_left(d) == 0; }

static void skip_bucket_id(cairn_dec_t *d)
{
    const uint8_t *p;
    size_t n;
    uint8_t id[16];
    cairn_dec_bytes(d, &p, &n);
    cairn_dec_raw(d, id, 16);
}

static int mutate(void *data, cairn_srv_req_t *req, int type, cairn_buf_t *resp)
{
    cairn_buf_t cmd;
    cairn_buf_init(&cmd);
    meta_cmd_mpu(&cmd, type, req->body, req->hdr.body_len);
    return meta__rpc_submit(data, req, &cmd, resp);
}

int meta_rpc_on_mpu_create(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    const uint8_t *p;
    size_t n;
    cairn_mpu_rec_t u;
    cairn_dec_init(&d, req->body, req->hdr.body_len);
    skip_bucket_id(&d);
    cairn_dec_bytes(&d, &p, &n);
    if (!body_ok(&d) || cairn_mpu_rec_decode(p, n, &u) != 0)
        return CAIRN_EPROTO;
    return mutate(data, req, META_CMD_MPU_CREATE, resp);
}

int meta_rpc_on_mpu_part_put(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    const uint8_t *p;
    size_t n;
    cairn_obj_rec_t r;
    cairn_dec_init(&d, req->body, req->hdr.body_len);
    skip_bucket_id(&d);
    (void)cairn_dec_u32(&d);
    cairn_dec_bytes(&d, &p, &n);
    if (!body_ok(&d) || cairn_obj_rec_decode(p, n, &r) != 0)
        return CAIRN_EPROTO;
    return mutate(data, req, META_CMD_MPU_PART_PUT, resp);
}

int meta_rpc_on_mpu_complete(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    const uint8_t *p;
    size_t n;
    uint8_t oid[16];
    cairn_dec_init(&d, req->body, req->hdr.body_len);
    skip_bucket_id(&d);
    cairn_dec_bytes(&d, &p, &n); /* key */
    cairn_dec_raw(&d, oid, 16);
    (void)cairn_dec_u64(&d);     /* mtime */
    (void)cairn_dec_u64(&d);     /* min part size */
    (void)cairn_dec_u8(&d);      /* cond */
    cairn_dec_bytes(&d, &p, &n); /* cond etag */
    uint32_t cnt = cairn_dec_u32(&d);
    if (d.err || cnt > CAIRN_MPU_MAX_PARTS)
        return CAIRN_EPROTO;
    for (uint32_t i = 0; i < cnt && !d.err; i++) {
        (void)cairn_dec_u32(&d);
        cairn_dec_bytes(&d, &p, &n);
    }
    if (!body_ok(&d))
        return CAIRN_EPROTO;
    return mutate(data, req, META_CMD_MPU_COMPLETE, resp);
}

int meta_rpc_on_mpu_abort(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    cairn_dec_init(&d, req->body, req->hdr.body_len);
    skip_bucket_id(&d);
    if (!body_ok(&d))
        return CAIRN_EPROTO;
    return mutate(data, req, META_CMD_MPU_ABORT, resp);
}

int meta_rpc_on_gc_done_many(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    cairn_dec_init(&d, req->body, req->hdr.body_len);
    uint32_t n = cairn_dec_u32(&d);
    if (d.err || cairn_dec_left(&d) != (size_t)n * 16)
        return CAIRN_EPROTO;
    return mutate(data, req, META_CMD_GC_DONE_MANY, resp);
}

int meta_rpc_on_obj_put_if(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    const uint8_t *p;
    size_t n;
    cairn_obj_rec_t r;
    cairn_dec_init(&d, req->body, req->hdr.body_len);
    cairn_dec_bytes(&d, &p, &n); /* bucket */
    cairn_dec_bytes(&d, &p, &n); /* key */
    cairn_dec_bytes(&d, &p, &n); /* record */
    int rec_ok = !d.err && cairn_obj_rec_decode(p, n, &r) == 0;
    (void)cairn_dec_u8(&d);
    cairn_dec_bytes(&d, &p, &n); /* etag */
    if (!body_ok(&d) || !rec_ok)
        return CAIRN_EPROTO;
    return mutate(data, req, META_CMD_OBJ_PUT_IF, resp);
}

/* Reads go after a barrier (rpc.c), like every read of the service: they
 * see every write acknowledged before them. */
int meta_rpc_on_mpu_get(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    meta_rpc_t *r = data;
    int rc = meta__rpc_barrier(r, resp);
    if (rc != 0)
        return rc;
    return meta_fsm_mpu_get(r->fsm, req->body, req->hdr.body_len, resp);
}

int meta_rpc_on_mpu_list_parts(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    meta_rpc_t *r = data;
    int rc = meta__rpc_barrier(r, resp);
    if (rc != 0)
        return rc;
    return meta_fsm_mpu_list_parts(r->fsm, req->body, req->hdr.body_len, resp);
}

int meta_rpc_on_mpu_list(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    meta_rpc_t *r = data;
    cairn_mpu_list_req_t q;
    char bucket[CAIRN_MAX_BUCKET_LEN + 1];
    int rc = cairn_mpu_list_req_decode(req->body, req->hdr.body_len, &q, bucket);
    if (rc == 0)
        rc = meta__rpc_barrier(r, resp);
    if (rc)
        return rc;
    return meta_fsm_mpu_list(r->fsm, &q, resp);
}
