/*
 * rpc.c — request handlers of the metadata service, and the single-replica
 * log. See rpc.h.
 *
 * Every handler decodes its whole body first and answers CAIRN_EPROTO when
 * the body is not exactly the documented fields, so a malformed request
 * never reaches the log. Field values (name lengths, key lengths, record
 * contents) are checked by the state machine, where the same checks hold on
 * every replica.
 */
#include "rpc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/meta.h"

/* ---- the single-replica log ---- */

struct meta_log_s {
    pthread_mutex_t mu;
    meta_fsm_t *fsm;
    uint64_t next; /* index of the next command; under mu */
};

int meta_log_create(meta_fsm_t *fsm, meta_log_t **out)
{
    meta_log_t *l = cairn_calloc(1, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
    l->fsm = fsm;
    l->next = meta_fsm_applied(fsm) + 1;
    *out = l;
    return 0;
}

void meta_log_destroy(meta_log_t *l)
{
    if (l == NULL)
        return;
    pthread_mutex_destroy(&l->mu);
    free(l);
}

int meta_log_submit(meta_log_t *l, const uint8_t *cmd, size_t len, cairn_buf_t *result)
{
    CAIRN_ASSERT(len % 8 == 0);
    pthread_mutex_lock(&l->mu);
    int rc = meta_fsm_apply(l->fsm, l->next, cmd, len, result);
    if (rc == 0)
        l->next++; /* a failed apply stored nothing: the index is reused */
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* ---- helpers ---- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Submit cmd; the result's payload goes to resp, its status is returned. */
static int submit(meta_rpc_t *r, cairn_srv_req_t *req, cairn_buf_t *cmd, cairn_buf_t *resp)
{
    cairn_buf_t res;
    cairn_buf_init(&res);
    int rc = meta_log_submit(r->log, cmd->base, cmd->len, &res);
    if (rc == 0) {
        const uint8_t *p;
        size_t n;
        rc = meta_fsm_result(&res, &p, &n);
        if (rc == 0)
            cairn_buf_append(resp, p, n);
    } else {
        cairn_log(CAIRN_LOG_ERROR, req->hdr.req_id, "apply failed: %s", cairn_strerror(rc));
    }
    cairn_buf_dispose(&res);
    cairn_buf_dispose(cmd);
    return rc;
}

static void dec_req(cairn_dec_t *d, const cairn_srv_req_t *req) { cairn_dec_init(d, req->body, req->hdr.body_len); }
static int dec_ok(const cairn_dec_t *d) { return d->err == 0 && cairn_dec_left(d) == 0; }

/* A decoded (pointer, length) field. */
typedef struct {
    const uint8_t *p;
    size_t n;
} field_t;

static field_t dec_field(cairn_dec_t *d)
{
    field_t f;
    cairn_dec_bytes(d, &f.p, &f.n);
    return f;
}

#define CS(f) (const char *)(f).p, (f).n

/* ---- handlers ---- */

static int on_user_get(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    meta_rpc_t *r = data;
    cairn_dec_t d;
    dec_req(&d, req);
    field_t ak = dec_field(&d);
    if (!dec_ok(&d))
        return CAIRN_EPROTO;
    return meta_fsm_user_get(r->fsm, CS(ak), resp);
}

static int on_user_put(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    dec_req(&d, req);
    field_t ak = dec_field(&d), sec = dec_field(&d), own = dec_field(&d), dn = dec_field(&d);
    if (!dec_ok(&d))
        return CAIRN_EPROTO;
    cairn_buf_t cmd;
    cairn_buf_init(&cmd);
    meta_cmd_user_put(&cmd, CS(ak), CS(sec), CS(own), CS(dn));
    return submit(data, req, &cmd, resp);
}

static int on_bucket_create(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    dec_req(&d, req);
    field_t b = dec_field(&d), own = dec_field(&d);
    if (!dec_ok(&d))
        return CAIRN_EPROTO;
    cairn_buf_t cmd;
    cairn_buf_init(&cmd);
    /* The time is fixed here, before the log: apply stays deterministic. */
    meta_cmd_bucket_create(&cmd, CS(b), CS(own), wall_ms());
    return submit(data, req, &cmd, resp);
}

static int on_bucket_delete(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    dec_req(&d, req);
    field_t b = dec_field(&d), own = dec_field(&d);
    if (!dec_ok(&d))
        return CAIRN_EPROTO;
    cairn_buf_t cmd;
    cairn_buf_init(&cmd);
    meta_cmd_bucket_delete(&cmd, CS(b), CS(own));
    return submit(data, req, &cmd, resp);
}

static int on_bucket_head(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    meta_rpc_t *r = data;
    cairn_dec_t d;
    dec_req(&d, req);
    field_t b = dec_field(&d);
    if (!dec_ok(&d))
        return CAIRN_EPROTO;
    return meta_fsm_bucket_head(r->fsm, CS(b), resp);
}

static int on_bucket_list(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    meta_rpc_t *r = data;
    cairn_dec_t d;
    dec_req(&d, req);
    field_t own = dec_field(&d);
    if (!dec_ok(&d))
        return CAIRN_EPROTO;
    return meta_fsm_bucket_list(r->fsm, CS(own), resp);
}

static int on_obj_put(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    dec_req(&d, req);
    field_t b = dec_field(&d), k = dec_field(&d), rec = dec_field(&d);
    if (!dec_ok(&d))
        return CAIRN_EPROTO;
    cairn_buf_t cmd;
    cairn_buf_init(&cmd);
    meta_cmd_obj_put(&cmd, CS(b), k.p, k.n, rec.p, rec.n);
    return submit(data, req, &cmd, resp);
}

static int on_obj_get(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    meta_rpc_t *r = data;
    cairn_dec_t d;
    dec_req(&d, req);
    field_t b = dec_field(&d), k = dec_field(&d);
    if (!dec_ok(&d))
        return CAIRN_EPROTO;
    return meta_fsm_obj_get(r->fsm, CS(b), k.p, k.n, resp);
}

static int on_obj_delete(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    dec_req(&d, req);
    field_t b = dec_field(&d), k = dec_field(&d);
    if (!dec_ok(&d))
        return CAIRN_EPROTO;
    cairn_buf_t cmd;
    cairn_buf_init(&cmd);
    meta_cmd_obj_delete(&cmd, CS(b), k.p, k.n);
    return submit(data, req, &cmd, resp);
}

static int on_obj_list(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    meta_rpc_t *r = data;
    cairn_meta_list_req_t q;
    char bucket[CAIRN_MAX_BUCKET_LEN + 1];
    int rc = cairn_meta_list_req_decode(req->body, req->hdr.body_len, &q, bucket);
    if (rc)
        return rc;
    return meta_fsm_obj_list(r->fsm, &q, resp);
}

static int on_gc_done(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    uint8_t oid[16];
    dec_req(&d, req);
    cairn_dec_raw(&d, oid, 16);
    if (!dec_ok(&d))
        return CAIRN_EPROTO;
    cairn_buf_t cmd;
    cairn_buf_init(&cmd);
    meta_cmd_gc_done(&cmd, oid);
    return submit(data, req, &cmd, resp);
}

static int on_gc_list(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    meta_rpc_t *r = data;
    cairn_dec_t d;
    uint8_t after[16];
    dec_req(&d, req);
    cairn_dec_raw(&d, after, 16);
    uint32_t max = cairn_dec_u32(&d);
    if (!dec_ok(&d))
        return CAIRN_EPROTO;
    return meta_fsm_gc_list(r->fsm, after, max, resp);
}

static int on_ping(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_buf_append(resp, "alive", 5);
    return 0;
}

const cairn_srv_route_t meta_rpc_routes[] = {
    {CAIRN_OP_PING, 0, on_ping},
    {CAIRN_OP_META_USER_GET, 0, on_user_get},
    {CAIRN_OP_META_USER_PUT, 0, on_user_put},
    {CAIRN_OP_META_BUCKET_CREATE, 0, on_bucket_create},
    {CAIRN_OP_META_BUCKET_DELETE, 0, on_bucket_delete},
    {CAIRN_OP_META_BUCKET_HEAD, 0, on_bucket_head},
    {CAIRN_OP_META_BUCKET_LIST, 0, on_bucket_list},
    {CAIRN_OP_META_OBJ_PUT, 0, on_obj_put},
    {CAIRN_OP_META_OBJ_GET, 0, on_obj_get},
    {CAIRN_OP_META_OBJ_DELETE, 0, on_obj_delete},
    {CAIRN_OP_META_OBJ_LIST, 0, on_obj_list},
    {CAIRN_OP_META_GC_DONE, 0, on_gc_done},
    {CAIRN_OP_META_GC_LIST, 0, on_gc_list},
};
const size_t meta_rpc_nroutes = sizeof meta_rpc_routes / sizeof meta_rpc_routes[0];

/* ---- start-up ---- */

int meta_rpc_ensure_user(meta_rpc_t *r, const char *access_key, const char *secret, const char *owner,
                         const char *display_name)
{
    cairn_buf_t cur, want;
    cairn_buf_init(&cur);
    cairn_buf_init(&want);
    cairn_buf_put_str(&want, secret);
    cairn_buf_put_str(&want, owner);
    cairn_buf_put_str(&want, display_name);
    int rc = meta_fsm_user_get(r->fsm, access_key, strlen(access_key), &cur);
    int same = rc == 0 && cur.len == want.len && memcmp(cur.base, want.base, want.len) == 0;
    cairn_buf_dispose(&cur);
    cairn_buf_dispose(&want);
    if (rc != 0 && rc != CAIRN_ENOSUCHUSER)
        return rc;
    if (same)
        return 0;

    cairn_buf_t cmd, res;
    cairn_buf_init(&cmd);
    cairn_buf_init(&res);
    meta_cmd_user_put(&cmd, access_key, strlen(access_key), secret, strlen(secret), owner, strlen(owner),
                      display_name, strlen(display_name));
    rc = meta_log_submit(r->log, cmd.base, cmd.len, &res);
    if (rc == 0) {
        const uint8_t *p;
        size_t n;
        rc = meta_fsm_result(&res, &p, &n);
    }
    cairn_buf_dispose(&cmd);
    cairn_buf_dispose(&res);
    if (rc == 0)
        cairn_log(CAIRN_LOG_INFO, 0, "user %s stored", access_key);
    return rc;
}
