/*
 * srv_metrics.c — request metrics around an internal-protocol route table
 * (see srv_metrics.h).
 *
 * Each wrapped route keeps its handles: a duration histogram, byte
 * counters, and one lazily registered request counter per result. The
 * wrapper's own table has the original opcodes and streaming flags and one
 * handler, on_request(), which finds the original route by opcode.
 */
#include "cairn/srv_metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/meta.h"
#include "cairn/meta_map.h"
#include "cairn/meta_mpu.h"
#include "cairn/wire.h"

/* Results as label values: 0, each CAIRN_E* of err.h, and everything else. */
static const char *const result_names[] = {
    "ok", "proto", "auth", "corrupt", "too_big", "not_found", "exists", "not_empty", "timeout",
    "unavailable", "invalid", "not_leader", "conflict", "no_such_user", "no_bucket", "owned", "error",
};
#define NRESULTS (sizeof result_names / sizeof result_names[0])

static size_t result_index(int status)
{
    if (status == 0)
        return 0;
    int e = -status - CAIRN_EBASE; /* CAIRN_EPROTO -> 1 ... CAIRN_EOWNED -> 15 */
    if (e >= 1 && (size_t)e < NRESULTS - 1)
        return (size_t)e;
    return NRESULTS - 1;
}

typedef struct {
    cairn_srv_route_t orig;
    char op[32];
    cairn_hist_t *duration;
    cairn_counter_t *rx, *tx;
    _Atomic(cairn_counter_t *) requests[NRESULTS];
} route_t;

struct cairn_srv_metrics_s {
    cairn_metrics_t *m;
    void *data;
    size_t n;
    route_t *routes;
    cairn_srv_route_t *table; /* what the server calls */
    cairn_gauge_t *in_flight;
    char name_requests[96];
};

const char *cairn_srv_op_name(uint16_t op)
{
    switch (op) {
    case CAIRN_OP_PING: return "ping";
    case CAIRN_OP_FRAG_PUT: return "frag_put";
    case CAIRN_OP_FRAG_GET: return "frag_get";
    case CAIRN_OP_FRAG_DELETE: return "frag_delete";
    case CAIRN_OP_FRAG_STAT: return "frag_stat";
    case CAIRN_OP_FRAG_LIST: return "frag_list";
    case CAIRN_OP_NODE_INFO: return "node_info";
    case CAIRN_OP_NODE_BAD_LIST: return "node_bad_list";
    case CAIRN_OP_NODE_SCRUB_STATUS: return "node_scrub_status";
    case CAIRN_OP_NODE_SCRUB_NOW: return "node_scrub_now";
    case CAIRN_OP_META_USER_GET: return "user_get";
    case CAIRN_OP_META_USER_PUT: return "user_put";
    case CAIRN_OP_META_BUCKET_CREATE: return "bucket_create";
    case CAIRN_OP_META_BUCKET_DELETE: return "bucket_delete";
    case CAIRN_OP_META_BUCKET_HEAD: return "bucket_head";
    case CAIRN_OP_META_BUCKET_LIST: return "bucket_list";
    case CAIRN_OP_META_OBJ_PUT: return "obj_put";
    case CAIRN_OP_META_OBJ_PUT_MANY: return "obj_put_many";
    case CAIRN_OP_META_OBJ_GET: return "obj_get";
    case CAIRN_OP_META_OBJ_DELETE: return "obj_delete";
    case CAIRN_OP_META_OBJ_LIST: return "obj_list";
    case CAIRN_OP_META_GC_DONE: return "gc_done";
    case CAIRN_OP_META_GC_LIST: return "gc_list";
    case CAIRN_OP_META_MAP_GET: return "map_get";
    case CAIRN_OP_META_MAP_INIT: return "map_init";
    case CAIRN_OP_META_NODE_ADD: return "node_add";
    case CAIRN_OP_META_NODE_SET: return "node_set";
    case CAIRN_OP_META_NODE_REMOVE: return "node_remove";
    case CAIRN_OP_META_OBJ_RELOCATE: return "obj_relocate";
    case CAIRN_OP_META_OBJ_SCAN: return "obj_scan";
    case CAIRN_OP_META_KV_GET: return "kv_get";
    case CAIRN_OP_META_KV_PUT: return "kv_put";
    case CAIRN_OP_META_MPU_CREATE: return "mpu_create";
    case CAIRN_OP_META_MPU_GET: return "mpu_get";
    case CAIRN_OP_META_MPU_PART_PUT: return "mpu_part_put";
    case CAIRN_OP_META_MPU_COMPLETE: return "mpu_complete";
    case CAIRN_OP_META_MPU_ABORT: return "mpu_abort";
    case CAIRN_OP_META_MPU_LIST_PARTS: return "mpu_list_parts";
    case CAIRN_OP_META_MPU_LIST: return "mpu_list";
    case CAIRN_OP_META_GC_DONE_MANY: return "gc_done_many";
    case CAIRN_OP_META_OBJ_PUT_IF: return "obj_put_if";
    case CAIRN_OP_META_STATUS: return "status";
    case CAIRN_OP_META_MEMBER_ADD: return "member_add";
    case CAIRN_OP_META_MEMBER_REMOVE: return "member_remove";
    case CAIRN_OP_META_TRANSFER: return "transfer";
    case CAIRN_OP_META_ONCE: return "once";
    }
    return NULL;
}

static route_t *find(cairn_srv_metrics_t *sm, uint16_t op)
{
    for (size_t i = 0; i < sm->n; i++)
        if (sm->routes[i].orig.opcode == op)
            return &sm->routes[i];
    return NULL;
}

static cairn_counter_t *requests(cairn_srv_metrics_t *sm, route_t *r, size_t result)
{
    cairn_counter_t *c = atomic_load_explicit(&r->requests[result], memory_order_acquire);
    if (c == NULL) { /* first of its kind: register (idempotent, so a race is harmless) */
        char labels[96];
        cairn_metrics_labels(labels, sizeof labels, "op", r->op, "result", result_names[result], NULL);
        c = cairn_metrics_counter(sm->m, sm->name_requests, "Requests answered, by opcode and result.", labels);
        atomic_store_explicit(&r->requests[result], c, memory_order_release);
    }
    return c;
}

static int on_request(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_srv_metrics_t *sm = data;
    route_t *r = find(sm, req->hdr.opcode);
    if (r == NULL) /* cannot happen: the server routes by the same table */
        return CAIRN_EPROTO;
    route_t *counted = r;
    if (req->hdr.opcode == CAIRN_OP_META_ONCE && req->body && req->hdr.body_len >= 2) {
        route_t *inner = find(sm, (uint16_t)(req->body[0] | req->body[1] << 8));
        if (inner)
            counted = inner;
    }
    cairn_gauge_add(sm->in_flight, 1);
    int64_t t0 = cairn_metrics_now_ns();
    size_t before = resp->len;
    int status = r->orig.fn(sm->data, req, resp);
    cairn_hist_observe(counted->duration, (double)(cairn_metrics_now_ns() - t0) / 1e9);
    cairn_gauge_add(sm->in_flight, -1);
    cairn_counter_add(counted->rx, req->hdr.body_len);
    cairn_counter_add(counted->tx, resp->len > before ? resp->len - before : 0);
    cairn_counter_add(requests(sm, counted, result_index(status)), 1);
    return status;
}

cairn_srv_metrics_t *cairn_srv_metrics_create(cairn_metrics_t *m, const char *prefix, const cairn_srv_route_t *routes,
                                              size_t nroutes, void *data)
{
    cairn_srv_metrics_t *sm = cairn_calloc(1, sizeof *sm);
    sm->m = m;
    sm->data = data;
    sm->n = nroutes;
    sm->routes = cairn_calloc(nroutes, sizeof *sm->routes);
    sm->table = cairn_calloc(nroutes, sizeof *sm->table);
    char name[96], labels[64];
    snprintf(sm->name_requests, sizeof sm->name_requests, "%s_requests_total", prefix);
    snprintf(name, sizeof name, "%s_requests_in_flight", prefix);
    sm->in_flight = cairn_metrics_gauge(m, name, "Requests being handled now.", NULL);
    for (size_t i = 0; i < nroutes; i++) {
        route_t *r = &sm->routes[i];
        r->orig = routes[i];
        const char *op = cairn_srv_op_name(routes[i].opcode);
        if (op)
            snprintf(r->op, sizeof r->op, "%s", op);
        else
            snprintf(r->op, sizeof r->op, "op_%u", (unsigned)routes[i].opcode);
        cairn_metrics_labels(labels, sizeof labels, "op", r->op, NULL);
        snprintf(name, sizeof name, "%s_request_duration_seconds", prefix);
        r->duration = cairn_metrics_histogram(m, name, "Time spent handling a request, seconds.", labels, NULL, 0);
        snprintf(name, sizeof name, "%s_received_bytes_total", prefix);
        r->rx = cairn_metrics_counter(m, name, "Request body bytes received.", labels);
        snprintf(name, sizeof name, "%s_sent_bytes_total", prefix);
        r->tx = cairn_metrics_counter(m, name, "Response body bytes sent.", labels);
        sm->table[i] = (cairn_srv_route_t){.opcode = routes[i].opcode, .streaming = routes[i].streaming,
                                           .fn = on_request};
    }
    return sm;
}

const cairn_srv_route_t *cairn_srv_metrics_routes(const cairn_srv_metrics_t *sm)
{
    return sm->table;
}

void cairn_srv_metrics_destroy(cairn_srv_metrics_t *sm)
{
    if (sm == NULL)
        return;
    free(sm->routes);
    free(sm->table);
    free(sm);
}
