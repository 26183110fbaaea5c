/*
 * rpc.c — request handlers of the metadata service. See rpc.h.
 *
 * Every handler decodes its whole body first and answers CAIRN_EPROTO when
 * the body is not exactly the documented fields, so a malformed request
 * never reaches the log. Field values (name lengths, key lengths, record
 * contents) are checked by the state machine, where the same checks hold on
 * every replica.
 */
#include "rpc.h"
#include "rpc_map.h"
#include "rpc_mpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/meta.h"

/* ---- helpers ---- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A request that arrived inside CAIRN_OP_META_ONCE: the inner request as
 * the handlers see it (first member), and its command id. on_once() marks
 * it by giving the inner header the ONCE opcode, which no handler reads. */
typedef struct {
    cairn_srv_req_t req;
    uint8_t id[16];
} once_req_t;

static const uint8_t *cmd_id(const cairn_srv_req_t *req)
{
    return req->hdr.opcode == CAIRN_OP_META_ONCE ? ((const once_req_t *)req)->id : NULL;
}

/* A replica that cannot serve tells the client where the leader is: the
 * whole response body is its address (empty when unknown). */
static int redirect(meta_rpc_t *r, int rc, cairn_buf_t *resp)
{
    if (rc == CAIRN_ENOTLEADER) {
        uint64_t id;
        char addr[128];
        meta_log_leader(r->log, &id, addr);
        cairn_buf_reset(resp);
        cairn_buf_append(resp, addr, strlen(addr));
    }
    return rc;
}

/* Linearizable reads: a read handler calls this before it reads the state
 * machine. 0, or the error to return (body set). */
static int read_barrier(meta_rpc_t *r, cairn_buf_t *resp) { return redirect(r, meta_log_barrier(r->log), resp); }

int meta__rpc_barrier(meta_rpc_t *r, cairn_buf_t *resp) { return read_barrier(r, resp); }

/* Submit cmd; the result's payload goes to resp, its status is returned. */
static int submit(meta_rpc_t *r, cairn_srv_req_t *req, cairn_buf_t *cmd, cairn_buf_t *resp)
{
    cairn_buf_t res;
    cairn_buf_init(&res);
    const uint8_t *id = cmd_id(req);
    int rc = id ? meta_log_submit_once(r->log, id, cmd->base, cmd->len, &res)
                : meta_log_submit(r->log, cmd->base, cmd->len, &res);
    if (rc == 0) {
        const uint8_t *p;
        size_t n;
        rc = meta_fsm_result(&res, &p, &n);
        if (rc == 0)
            cairn_buf_append(resp, p, n);
    } else if (rc == CAIRN_ENOTLEADER) {
        redirect(r, rc, resp);
    } else {
        cairn_log(CAIRN_LOG_WARN, req->hdr.req_id, "commit failed: %s", cairn_strerror(rc));
    }
    cairn_buf_dispose(&res);
    cairn_buf_dispose(cmd);
    return rc;
}

int meta__rpc_submit(meta_rpc_t *r, cairn_srv_req_t *req, cairn_buf_t *cmd, cairn_buf_t *resp)
{
    return submit(r, req, cmd, resp);
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
    int rc = read_barrier(r, resp);
    if (rc != 0)
        return rc;
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
    int rc = read_barrier(r, resp);
    if (rc != 0)
        return rc;
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
    int rc = read_barrier(r, resp);
    if (rc != 0)
        return rc;
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

static int on_obj_put_many(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    dec_req(&d, req);
    field_t b = dec_field(&d);
    uint32_t n = cairn_dec_u32(&d);
    if (d.err)
        return CAIRN_EPROTO;
    if (n == 0 || n > CAIRN_META_PUT_MANY_MAX)
        return CAIRN_EINVAL;
    cairn_buf_t cmd;
    cairn_buf_init(&cmd);
    meta_cmd_obj_put_many(&cmd, CS(b), n, d.p, cairn_dec_left(&d)); /* the state machine decodes the items */
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
    int rc = read_barrier(r, resp);
    if (rc != 0)
        return rc;
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
    if (rc == 0)
        rc = read_barrier(r, resp);
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
    int rc = read_barrier(r, resp);
    if (rc != 0)
        return rc;
    return meta_fsm_gc_list(r->fsm, after, max, resp);
}

static int on_ping(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_buf_append(resp, "alive", 5);
    return 0;
}

/* ---- replication: the command-id wrapper, status, membership ---- */

static int on_once(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    once_req_t o;
    dec_req(&d, req);
    uint16_t op = cairn_dec_u16(&d);
    cairn_dec_raw(&d, o.id, sizeof o.id);
    if (d.err)
        return CAIRN_EPROTO;
    const cairn_srv_route_t *rt = NULL;
    for (size_t i = 0; i < meta_rpc_nroutes && rt == NULL; i++)
        if (meta_rpc_routes[i].opcode == op && op != CAIRN_OP_META_ONCE && !meta_rpc_routes[i].streaming)
            rt = &meta_rpc_routes[i];
    if (rt == NULL)
        return CAIRN_EPROTO;
    o.req = *req;
    o.req.hdr.opcode = CAIRN_OP_META_ONCE; /* marks o for cmd_id() */
    o.req.body = d.p;
    o.req.hdr.body_len = cairn_dec_left(&d);
    return rt->fn(data, &o.req, resp);
}

static int on_status(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    meta_rpc_t *r = data;
    if (req->hdr.body_len != 0)
        return CAIRN_EPROTO;
    cairn_meta_status_t *st = cairn_malloc(sizeof *st);
    int rc = meta_log_status(r->log, st);
    if (rc == 0)
        cairn_meta_status_encode(st, resp);
    free(st);
    return rc;
}

/* Membership changes wait for a snapshot to reach the new replica and for
 * it to catch up before promotion: allow them much longer than a commit. */
#define CHANGE_TIMEOUT_MS 60000

static int on_member_add(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    meta_rpc_t *r = data;
    cairn_dec_t d;
    dec_req(&d, req);
    uint64_t id = cairn_dec_u64(&d);
    field_t a = dec_field(&d), ra = dec_field(&d);
    if (!dec_ok(&d) || a.n == 0 || a.n >= 128 || ra.n == 0 || ra.n >= 128)
        return CAIRN_EPROTO;
    char addr[128], raft_addr[128];
    memcpy(addr, a.p, a.n);
    addr[a.n] = '\0';
    memcpy(raft_addr, ra.p, ra.n);
    raft_addr[ra.n] = '\0';
    if (strlen(addr) != a.n || strlen(raft_addr) != ra.n)
        return CAIRN_EINVAL;
    int rc = meta_log_add(r->log, id, addr, raft_addr, CHANGE_TIMEOUT_MS);
    cairn_log(rc ? CAIRN_LOG_WARN : CAIRN_LOG_INFO, req->hdr.req_id, "add replica %llu (%s, raft %s): %s",
              (unsigned long long)id, addr, raft_addr, cairn_strerror(rc));
    return redirect(r, rc, resp);
}

static int on_member_remove(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    meta_rpc_t *r = data;
    cairn_dec_t d;
    dec_req(&d, req);
    uint64_t id = cairn_dec_u64(&d);
    if (!dec_ok(&d))
        return CAIRN_EPROTO;
    int rc = meta_log_remove(r->log, id, CHANGE_TIMEOUT_MS);
    cairn_log(rc ? CAIRN_LOG_WARN : CAIRN_LOG_INFO, req->hdr.req_id, "remove replica %llu: %s",
              (unsigned long long)id, cairn_strerror(rc));
    return redirect(r, rc, resp);
}

static int on_transfer(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    meta_rpc_t *r = data;
    cairn_dec_t d;
    dec_req(&d, req);
    uint64_t id = cairn_dec_u64(&d);
    if (!dec_ok(&d))
        return CAIRN_EPROTO;
    return redirect(r, meta_log_transfer(r->log, id, CHANGE_TIMEOUT_MS), resp);
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
    {CAIRN_OP_META_OBJ_PUT_MANY, 0, on_obj_put_many},
    {CAIRN_OP_META_OBJ_GET, 0, on_obj_get},
    {CAIRN_OP_META_OBJ_DELETE, 0, on_obj_delete},
    {CAIRN_OP_META_OBJ_LIST, 0, on_obj_list},
    {CAIRN_OP_META_GC_DONE, 0, on_gc_done},
    {CAIRN_OP_META_GC_LIST, 0, on_gc_list},
    {CAIRN_OP_META_ONCE, 0, on_once},
    {CAIRN_OP_META_STATUS, 0, on_status},
    {CAIRN_OP_META_MEMBER_ADD, 0, on_member_add},
    {CAIRN_OP_META_MEMBER_REMOVE, 0, on_member_remove},
    {CAIRN_OP_META_TRANSFER, 0, on_transfer},
    META_RPC_MPU_ROUTES, /* multipart uploads: rpc_mpu.c */
    META_RPC_MAP_ROUTES, /* cluster map, scans, job state: rpc_map.c */
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
