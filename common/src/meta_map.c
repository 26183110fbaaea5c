/*
 * meta_map.c — the cluster map's encoding, placement by the map, and the
 * client calls of meta_map.h.
 */
#include "cairn/meta_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/place.h"

/* ---- map ---- */

void cairn_map_encode(const cairn_map_t *m, cairn_buf_t *out)
{
    cairn_buf_put_u64(out, m->epoch);
    cairn_buf_put_u8(out, m->k);
    cairn_buf_put_u8(out, m->m);
    cairn_buf_put_u32(out, m->next_id);
    cairn_buf_put_u32(out, (uint32_t)m->n);
    for (size_t i = 0; i < m->n; i++) {
        const cairn_map_node_t *n = &m->nodes[i];
        cairn_buf_put_u32(out, n->id);
        cairn_buf_put_str(out, n->addr);
        cairn_buf_put_str(out, n->zone);
        cairn_buf_put_u32(out, n->weight_milli);
        cairn_buf_put_u8(out, n->state);
    }
}

static int dec_cstr(cairn_dec_t *d, char *out, size_t cap)
{
    const uint8_t *p;
    size_t n;
    cairn_dec_bytes(d, &p, &n);
    if (d->err || n >= cap || memchr(p, '\0', n))
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

int cairn_map_decode(const uint8_t *p, size_t len, cairn_map_t *m)
{
    cairn_dec_t d;
    cairn_dec_init(&d, p, len);
    memset(m, 0, offsetof(cairn_map_t, nodes));
    m->epoch = cairn_dec_u64(&d);
    m->k = cairn_dec_u8(&d);
    m->m = cairn_dec_u8(&d);
    m->next_id = cairn_dec_u32(&d);
    uint32_t n = cairn_dec_u32(&d);
    if (d.err || n > CAIRN_MAP_MAX_NODES)
        return CAIRN_EPROTO;
    for (uint32_t i = 0; i < n; i++) {
        cairn_map_node_t *x = &m->nodes[i];
        x->id = cairn_dec_u32(&d);
        if (dec_cstr(&d, x->addr, sizeof x->addr) || dec_cstr(&d, x->zone, sizeof x->zone))
            return CAIRN_EPROTO;
        x->weight_milli = cairn_dec_u32(&d);
        x->state = cairn_dec_u8(&d);
        if (d.err || x->state > CAIRN_NODE_OUT)
            return CAIRN_EPROTO;
    }
    if (cairn_dec_left(&d) != 0)
        return CAIRN_EPROTO;
    m->n = n;
    return 0;
}

void cairn_map_from_cfg(const cairn_cfg_t *cfg, cairn_map_t *m)
{
    memset(m, 0, offsetof(cairn_map_t, nodes));
    m->k = (uint8_t)cfg->k;
    m->m = (uint8_t)cfg->m;
    for (size_t i = 0; i < cfg->nnodes && i < CAIRN_MAP_MAX_NODES; i++) {
        cairn_map_node_t *x = &m->nodes[m->n++];
        x->id = cfg->nodes[i].id;
        snprintf(x->addr, sizeof x->addr, "%s", cfg->nodes[i].addr);
        snprintf(x->zone, sizeof x->zone, "%s", cfg->nodes[i].zone);
        double w = cfg->nodes[i].weight * 1000.0 + 0.5;
        x->weight_milli = w < 1 ? 1 : w > 4e9 ? 4000000000u : (uint32_t)w;
        x->state = CAIRN_NODE_UP;
    }
}

const cairn_map_node_t *cairn_map_node(const cairn_map_t *m, uint32_t id)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->nodes[i].id == id)
            return &m->nodes[i];
    return NULL;
}

size_t cairn_map_count_up(const cairn_map_t *m)
{
    size_t up = 0;
    for (size_t i = 0; i < m->n; i++)
        up += m->nodes[i].state == CAIRN_NODE_UP;
    return up;
}

static const char *const state_names[] = {"up", "draining", "out"};

const char *cairn_node_state_name(int state)
{
    return state >= 0 && state <= CAIRN_NODE_OUT ? state_names[state] : "unknown";
}

int cairn_node_state_parse(const char *s)
{
    for (int i = 0; i <= CAIRN_NODE_OUT; i++)
        if (strcmp(s, state_names[i]) == 0)
            return i;
    return -1;
}

/* ---- placement ---- */

size_t cairn_map_scratch_size(void)
{
    return cairn_place_scratch_size(CAIRN_MAP_MAX_NODES) + CAIRN_MAP_MAX_NODES * sizeof(cairn_place_node_t);
}

int cairn_map_pick(const cairn_map_t *m, const uint8_t oid[16], size_t n, void *scratch, uint32_t *ids)
{
    cairn_place_node_t *pn = scratch; /* aligned for a double: its first member is a u32, then a pointer */
    void *ps = pn + CAIRN_MAP_MAX_NODES;
    for (size_t i = 0; i < m->n; i++)
        pn[i] = (cairn_place_node_t){m->nodes[i].id, m->nodes[i].zone,
                                     m->nodes[i].state == CAIRN_NODE_UP ? m->nodes[i].weight_milli / 1000.0 : 0};
    uint32_t idx[CAIRN_MAX_FRAGS];
    if (n > CAIRN_MAX_FRAGS)
        n = CAIRN_MAX_FRAGS;
    int got = cairn_place_pick(oid, pn, m->n, n, ps, idx);
    for (int i = 0; i < got; i++)
        ids[i] = m->nodes[idx[i]].id;
    return got;
}

int cairn_map_plan_moves(const uint32_t *cur, const uint32_t *want, int n, uint32_t *to)
{
    int wanted_used[CAIRN_MAX_FRAGS] = {0}, stays[CAIRN_MAX_FRAGS] = {0}, moves = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (!wanted_used[j] && cur[i] == want[j]) {
                wanted_used[j] = stays[i] = 1;
                break;
            }
    int j = 0;
    for (int i = 0; i < n; i++) {
        to[i] = cur[i];
        if (stays[i])
            continue;
        while (j < n && wanted_used[j])
            j++;
        if (j == n)
            break; /* fewer wanted nodes than fragments: the rest stay */
        wanted_used[j] = 1;
        to[i] = want[j];
        moves++;
    }
    return moves;
}

/* ---- client calls ---- */

int cairn_meta_map_get(cairn_meta_client_t *c, uint64_t req_id, cairn_map_t *out)
{
    cairn_buf_t resp;
    cairn_buf_init(&resp);
    int rc = cairn_meta_call(c, CAIRN_OP_META_MAP_GET, req_id, NULL, 0, &resp);
    if (rc == 0)
        rc = cairn_map_decode(resp.base, resp.len, out);
    cairn_buf_dispose(&resp);
    return rc;
}

int cairn_meta_map_init(cairn_meta_client_t *c, uint64_t req_id, const cairn_map_t *seed, cairn_map_t *out)
{
    cairn_buf_t req, resp;
    cairn_buf_init(&req);
    cairn_buf_init(&resp);
    cairn_map_encode(seed, &req);
    int rc = cairn_meta_call(c, CAIRN_OP_META_MAP_INIT, req_id, req.base, req.len, &resp);
    if (rc == 0)
        rc = cairn_map_decode(resp.base, resp.len, out);
    cairn_buf_dispose(&req);
    cairn_buf_dispose(&resp);
    return rc;
}

/* A call whose answer is a few fixed fields: decoded by the caller from d. */
static int small_call(cairn_meta_client_t *c, uint16_t op, uint64_t req_id, cairn_buf_t *req, cairn_buf_t *resp)
{
    cairn_buf_init(resp);
    int rc = cairn_meta_call(c, op, req_id, req->base, req->len, resp);
    cairn_buf_dispose(req);
    return rc;
}

static int answer_epoch(int rc, cairn_buf_t *resp, uint32_t *id, uint64_t *epoch)
{
    if (rc == 0) {
        cairn_dec_t d;
        cairn_dec_init(&d, resp->base, resp->len);
        uint32_t v = id ? cairn_dec_u32(&d) : 0;
        uint64_t e = cairn_dec_u64(&d);
        if (d.err || cairn_dec_left(&d) != 0)
            rc = CAIRN_EPROTO;
        else {
            if (id)
                *id = v;
            if (epoch)
                *epoch = e;
        }
    }
    cairn_buf_dispose(resp);
    return rc;
}

int cairn_meta_node_add(cairn_meta_client_t *c, uint64_t req_id, uint32_t id, const char *addr, const char *zone,
                        uint32_t weight_milli, uint32_t *new_id, uint64_t *epoch)
{
    cairn_buf_t req, resp;
    cairn_buf_init(&req);
    cairn_buf_put_u32(&req, id);
    cairn_buf_put_str(&req, addr);
    cairn_buf_put_str(&req, zone);
    cairn_buf_put_u32(&req, weight_milli);
    int rc = small_call(c, CAIRN_OP_META_NODE_ADD, req_id, &req, &resp);
    return answer_epoch(rc, &resp, new_id, epoch);
}

int cairn_meta_node_set(cairn_meta_client_t *c, uint64_t req_id, uint32_t id, int state, uint32_t weight_milli,
                        uint64_t *epoch)
{
    cairn_buf_t req, resp;
    cairn_buf_init(&req);
    cairn_buf_put_u32(&req, id);
    cairn_buf_put_u8(&req, (uint8_t)state);
    cairn_buf_put_u32(&req, weight_milli);
    int rc = small_call(c, CAIRN_OP_META_NODE_SET, req_id, &req, &resp);
    return answer_epoch(rc, &resp, NULL, epoch);
}

int cairn_meta_node_remove(cairn_meta_client_t *c, uint64_t req_id, uint32_t id, uint64_t *epoch)
{
    cairn_buf_t req, resp;
    cairn_buf_init(&req);
    cairn_buf_put_u32(&req, id);
    int rc = small_call(c, CAIRN_OP_META_NODE_REMOVE, req_id, &req, &resp);
    return answer_epoch(rc, &resp, NULL, epoch);
}

int cairn_meta_obj_relocate(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const uint8_t *key,
                            size_t key_len, const uint8_t oid[16], const cairn_relocation_t *moves, size_t n)
{
    if (n == 0 || n > CAIRN_MAX_FRAGS)
        return CAIRN_EINVAL;
    cairn_buf_t req, resp;
    cairn_buf_init(&req);
    cairn_buf_put_str(&req, bucket);
    cairn_buf_put_bytes(&req, key, key_len);
    cairn_buf_append(&req, oid, 16);
    cairn_buf_put_u8(&req, (uint8_t)n);
    for (size_t i = 0; i < n; i++) {
        cairn_buf_put_u8(&req, moves[i].index);
        cairn_buf_put_u32(&req, moves[i].from);
        cairn_buf_put_u32(&req, moves[i].to);
    }
    int rc = small_call(c, CAIRN_OP_META_OBJ_RELOCATE, req_id, &req, &resp);
    cairn_buf_dispose(&resp);
    return rc;
}

void cairn_meta_scan_init(cairn_meta_scan_t *s)
{
    memset(s, 0, sizeof *s);
    cairn_buf_init(&s->raw);
}

void cairn_meta_scan_dispose(cairn_meta_scan_t *s)
{
    cairn_buf_dispose(&s->raw);
    free(s->entries);
    s->entries = NULL;
    s->n = 0;
}

int cairn_meta_scan_decode(cairn_meta_scan_t *s)
{
    cairn_dec_t d;
    cairn_dec_init(&d, s->raw.base, s->raw.len);
    free(s->entries);
    s->entries = NULL;
    s->n = 0;
    uint32_t cnt = cairn_dec_u32(&d);
    if (d.err || cnt > cairn_dec_left(&d) / 12) /* three lengths at least */
        return CAIRN_EPROTO;
    cairn_meta_scan_entry_t *v = cairn_calloc(cnt ? cnt : 1, sizeof *v);
    int rc = 0;
    for (uint32_t i = 0; i < cnt && rc == 0; i++) {
        const uint8_t *p;
        size_t len;
        cairn_dec_bytes(&d, &p, &v[i].bucket_len);
        v[i].bucket = (const char *)p;
        cairn_dec_bytes(&d, &v[i].key, &v[i].key_len);
        cairn_dec_bytes(&d, &p, &len);
        rc = d.err ? CAIRN_EPROTO : cairn_obj_rec_decode(p, len, &v[i].rec);
    }
    uint8_t more = cairn_dec_u8(&d);
    const uint8_t *cur;
    size_t cur_len;
    cairn_dec_bytes(&d, &cur, &cur_len);
    if (rc != 0 || d.err || cairn_dec_left(&d) != 0 || more > 1 || cur_len > sizeof s->cursor) {
        free(v);
        return CAIRN_EPROTO;
    }
    if (cur_len)
        memcpy(s->cursor, cur, cur_len);
    s->cursor_len = cur_len;
    s->entries = v;
    s->n = cnt;
    s->more = more;
    return 0;
}

int cairn_meta_obj_scan(cairn_meta_client_t *c, uint64_t req_id, int table, const uint8_t *cursor, size_t cursor_len,
                        uint32_t max, cairn_meta_scan_t *out)
{
    cairn_buf_t req;
    cairn_buf_init(&req);
    cairn_buf_put_u8(&req, (uint8_t)table);
    cairn_buf_put_bytes(&req, cursor, cursor_len);
    cairn_buf_put_u32(&req, max);
    cairn_buf_reset(&out->raw);
    int rc = cairn_meta_call(c, CAIRN_OP_META_OBJ_SCAN, req_id, req.base, req.len, &out->raw);
    cairn_buf_dispose(&req);
    return rc == 0 ? cairn_meta_scan_decode(out) : rc;
}

int cairn_meta_kv_get(cairn_meta_client_t *c, uint64_t req_id, const char *name, cairn_buf_t *value)
{
    cairn_buf_t req, resp;
    cairn_buf_init(&req);
    cairn_buf_put_str(&req, name);
    int rc = small_call(c, CAIRN_OP_META_KV_GET, req_id, &req, &resp);
    if (rc == 0) {
        cairn_dec_t d;
        const uint8_t *p;
        size_t n;
        cairn_dec_init(&d, resp.base, resp.len);
        cairn_dec_bytes(&d, &p, &n);
        if (d.err || cairn_dec_left(&d) != 0)
            rc = CAIRN_EPROTO;
        else
            cairn_buf_append(value, p, n);
    }
    cairn_buf_dispose(&resp);
    return rc;
}

int cairn_meta_kv_put(cairn_meta_client_t *c, uint64_t req_id, const char *name, const void *value, size_t len)
{
    cairn_buf_t req, resp;
    cairn_buf_init(&req);
    cairn_buf_put_str(&req, name);
    cairn_buf_put_bytes(&req, value, len);
    int rc = small_call(c, CAIRN_OP_META_KV_PUT, req_id, &req, &resp);
    cairn_buf_dispose(&resp);
    return rc;
}

/* ---- job state ---- */

static const char *const job_names[] = {"none", "running", "stopped", "done"};

const char *cairn_job_state_name(int state)
{
    return state >= CAIRN_JOB_NONE && state <= CAIRN_JOB_DONE ? job_names[state] : "unknown";
}

void cairn_job_state_encode(const cairn_job_state_t *s, cairn_buf_t *out)
{
    cairn_buf_put_u8(out, (uint8_t)s->state);
    cairn_buf_put_u64(out, s->epoch);
    cairn_buf_put_u64(out, (uint64_t)s->started_ms);
    cairn_buf_put_u64(out, (uint64_t)s->updated_ms);
    cairn_buf_put_u64(out, s->planned_frags);
    cairn_buf_put_u64(out, s->planned_bytes);
    cairn_buf_put_u64(out, s->done_frags);
    cairn_buf_put_u64(out, s->done_bytes);
    cairn_buf_put_u64(out, s->failed);
    cairn_buf_put_u64(out, s->conflicts);
    cairn_buf_put_bytes(out, s->cursor, s->cursor_len);
}

int cairn_job_state_decode(const uint8_t *p, size_t len, cairn_job_state_t *s)
{
    cairn_dec_t d;
    const uint8_t *cur;
    size_t cl;
    memset(s, 0, sizeof *s);
    cairn_dec_init(&d, p, len);
    s->state = cairn_dec_u8(&d);
    s->epoch = cairn_dec_u64(&d);
    s->started_ms = (int64_t)cairn_dec_u64(&d);
    s->updated_ms = (int64_t)cairn_dec_u64(&d);
    s->planned_frags = cairn_dec_u64(&d);
    s->planned_bytes = cairn_dec_u64(&d);
    s->done_frags = cairn_dec_u64(&d);
    s->done_bytes = cairn_dec_u64(&d);
    s->failed = cairn_dec_u64(&d);
    s->conflicts = cairn_dec_u64(&d);
    cairn_dec_bytes(&d, &cur, &cl);
    if (d.err || cairn_dec_left(&d) != 0 || s->state > CAIRN_JOB_DONE || cl > sizeof s->cursor) {
        memset(s, 0, sizeof *s);
        return CAIRN_EPROTO;
    }
    if (cl)
        memcpy(s->cursor, cur, cl);
    s->cursor_len = cl;
    return 0;
}

void cairn_cluster_health_encode(const cairn_cluster_health_t *h, cairn_buf_t *out)
{
    cairn_buf_put_u64(out, (uint64_t)h->measured_ms);
    cairn_buf_put_u64(out, h->misplaced);
    cairn_buf_put_u64(out, h->degraded);
}

int cairn_cluster_health_decode(const uint8_t *p, size_t len, cairn_cluster_health_t *h)
{
    cairn_dec_t d;
    cairn_dec_init(&d, p, len);
    h->measured_ms = (int64_t)cairn_dec_u64(&d);
    h->misplaced = cairn_dec_u64(&d);
    h->degraded = cairn_dec_u64(&d);
    return d.err || cairn_dec_left(&d) != 0 ? CAIRN_EPROTO : 0;
}
