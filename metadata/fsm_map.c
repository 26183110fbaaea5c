/*
 * fsm_map.c — the cluster map, record relocation and job state in the state
 * machine. See fsm_map.h for the layout and cairn/meta_map.h for the model.
 */
#include "fsm_int.h"

#include <string.h>

#include "cairn/err.h"
#include "cairn/meta_map.h"

#define MAP_KEY "map"
#define KV_PREFIX "kv:"

static int cmd_done(const cairn_dec_t *d, size_t total) { return meta__cmd_done(d, total); }

/* The stored map into *m (epoch 0 and no nodes when never seeded). */
static int map_load(meta_fsm_t *f, MDB_txn *txn, cairn_map_t *m)
{
    MDB_val k = {sizeof MAP_KEY - 1, MAP_KEY}, v;
    int rc = mdb_get(txn, meta__dbi(f, META__DB_SYS), &k, &v);
    if (rc == MDB_NOTFOUND) {
        memset(m, 0, offsetof(cairn_map_t, nodes));
        return 0;
    }
    if (rc)
        return rc;
    return cairn_map_decode(v.mv_data, v.mv_size, m) == 0 ? 0 : CAIRN_ECORRUPT;
}

static int map_store(meta_fsm_t *f, MDB_txn *txn, cairn_map_t *m)
{
    cairn_buf_t b;
    cairn_buf_init(&b);
    m->epoch++;
    cairn_map_encode(m, &b);
    MDB_val k = {sizeof MAP_KEY - 1, MAP_KEY}, v = {b.len, b.base};
    int rc = mdb_put(txn, meta__dbi(f, META__DB_SYS), &k, &v, 0);
    cairn_buf_dispose(&b);
    return rc;
}

static int addr_in_use(const cairn_map_t *m, const char *addr)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->nodes[i].addr, addr) == 0)
            return 1;
    return 0;
}

/* Ids stop below UINT32_MAX: next_id (one past the highest) must not wrap. */
static int node_ok(const cairn_map_node_t *n)
{
    return n->id > 0 && n->id < UINT32_MAX && n->addr[0] && n->zone[0] && n->weight_milli > 0 && n->state <= CAIRN_NODE_OUT;
}

/* Map commands hold a static map (tens of KiB): apply runs on one thread. */
static cairn_map_t map_a, map_b;

static int cmd_map_init(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    cairn_map_t *cur = &map_a, *seed = &map_b;
    const uint8_t *body;
    size_t blen;
    cairn_dec_bytes(d, &body, &blen); /* the request body, as bytes (see rpc_map.c) */
    if (!cmd_done(d, len)) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    int rc = map_load(f, txn, cur);
    if (rc)
        return rc;
    if (cur->epoch == 0) {
        if (cairn_map_decode(body, blen, seed) != 0) {
            *status = CAIRN_EPROTO;
            return 0;
        }
        uint32_t next = 1;
        int valid = seed->k >= 1 && (unsigned)seed->k + seed->m <= CAIRN_MAX_FRAGS &&
                    seed->n >= (size_t)seed->k + seed->m;
        for (size_t i = 0; i < seed->n && valid; i++) {
            cairn_map_node_t *x = &seed->nodes[i];
            x->state = CAIRN_NODE_UP;
            valid = node_ok(x);
            for (size_t j = 0; j < i && valid; j++)
                valid = seed->nodes[j].id != x->id && strcmp(seed->nodes[j].addr, x->addr) != 0;
            if (x->id >= next)
                next = x->id + 1;
        }
        if (!valid) {
            *status = CAIRN_EINVAL;
            return 0;
        }
        seed->epoch = 0;
        seed->next_id = next;
        if ((rc = map_store(f, txn, seed)) != 0)
            return rc;
        cur = seed;
    }
    cairn_map_encode(cur, res);
    return 0;
}

static int cmd_node_add(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    cairn_map_t *m = &map_a;
    cairn_map_node_t x = {.state = CAIRN_NODE_UP};
    const uint8_t *addr, *zone;
    size_t al, zl;
    x.id = cairn_dec_u32(d);
    cairn_dec_bytes(d, &addr, &al);
    cairn_dec_bytes(d, &zone, &zl);
    x.weight_milli = cairn_dec_u32(d);
    if (!cmd_done(d, len)) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    int rc = map_load(f, txn, m);
    if (rc)
        return rc;
    if (m->epoch == 0) {
        *status = CAIRN_EUNAVAIL;
        return 0;
    }
    if (al == 0 || al >= sizeof x.addr || zl == 0 || zl >= sizeof x.zone || memchr(addr, 0, al) ||
        memchr(zone, 0, zl) || x.weight_milli == 0 || m->n >= CAIRN_MAP_MAX_NODES) {
        *status = CAIRN_EINVAL;
        return 0;
    }
    memcpy(x.addr, addr, al);
    memcpy(x.zone, zone, zl);
    if (x.id == 0)
        x.id = m->next_id;
    if (x.id == UINT32_MAX) {
        *status = CAIRN_EINVAL;
        return 0;
    }
    if (x.id < m->next_id && (cairn_map_node(m, x.id) || x.id != m->next_id)) {
        /* in use, or used once and removed: ids are never reused */
        *status = CAIRN_EEXIST;
        return 0;
    }
    if (addr_in_use(m, x.addr)) {
        *status = CAIRN_EEXIST;
        return 0;
    }
    m->nodes[m->n++] = x;
    m->next_id = x.id + 1 > m->next_id ? x.id + 1 : m->next_id;
    if ((rc = map_store(f, txn, m)) != 0)
        return rc;
    cairn_buf_put_u32(res, x.id);
    cairn_buf_put_u64(res, m->epoch);
    return 0;
}

static int cmd_node_set(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    cairn_map_t *m = &map_a;
    uint32_t id = cairn_dec_u32(d);
    uint8_t state = cairn_dec_u8(d);
    uint32_t weight = cairn_dec_u32(d);
    if (!cmd_done(d, len)) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    int rc = map_load(f, txn, m);
    if (rc)
        return rc;
    cairn_map_node_t *x = (cairn_map_node_t *)cairn_map_node(m, id);
    if (x == NULL) {
        *status = CAIRN_ENOTFOUND;
        return 0;
    }
    if (state != CAIRN_NODE_STATE_KEEP && state > CAIRN_NODE_OUT) {
        *status = CAIRN_EINVAL;
        return 0;
    }
    if (state != CAIRN_NODE_STATE_KEEP && state != CAIRN_NODE_UP && x->state == CAIRN_NODE_UP &&
        cairn_map_count_up(m) - 1 < (size_t)m->k + m->m) {
        *status = CAIRN_ECONFLICT;
        return 0;
    }
    if (state != CAIRN_NODE_STATE_KEEP)
        x->state = state;
    if (weight)
        x->weight_milli = weight;
    if ((rc = map_store(f, txn, m)) != 0)
        return rc;
    cairn_buf_put_u64(res, m->epoch);
    return 0;
}

static int cmd_node_remove(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    cairn_map_t *m = &map_a;
    uint32_t id = cairn_dec_u32(d);
    if (!cmd_done(d, len)) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    int rc = map_load(f, txn, m);
    if (rc)
        return rc;
    const cairn_map_node_t *x = cairn_map_node(m, id);
    if (x == NULL) {
        *status = CAIRN_ENOTFOUND;
        return 0;
    }
    if (x->state == CAIRN_NODE_UP && cairn_map_count_up(m) - 1 < (size_t)m->k + m->m) {
        *status = CAIRN_ECONFLICT;
        return 0;
    }
    size_t i = (size_t)(x - m->nodes);
    memmove(&m->nodes[i], &m->nodes[i + 1], (m->n - i - 1) * sizeof m->nodes[0]);
    m->n--;
    if ((rc = map_store(f, txn, m)) != 0)
        return rc;
    cairn_buf_put_u64(res, m->epoch);
    return 0;
}

/* Apply the moves to nodes[] of one fragment set; 0, or CAIRN_ECONFLICT when
 * any fragment is not where the move expects it. */
static int apply_moves(uint32_t *nodes, int nf, const cairn_relocation_t *mv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (mv[i].index >= nf || nodes[mv[i].index] != mv[i].from || mv[i].to == 0)
            return CAIRN_ECONFLICT;
    for (size_t i = 0; i < n; i++)
        nodes[mv[i].index] = mv[i].to;
    return 0;
}

/* The new encoding of record r (bytes rec) with the moves applied to the
 * object or to its part with object id oid, into out. */
static int relocated(const uint8_t *rec, size_t rl, const uint8_t oid[16], const cairn_relocation_t *mv, size_t n,
                     cairn_buf_t *parts, cairn_buf_t *out)
{
    cairn_obj_rec_t r;
    if (cairn_obj_rec_decode(rec, rl, &r) != 0)
        return CAIRN_ECORRUPT;
    int rc = CAIRN_ECONFLICT;
    if (r.nparts == 0 && !r.is_inline && memcmp(r.oid, oid, 16) == 0) {
        rc = apply_moves(r.nodes, r.k + r.m, mv, n);
    } else if (r.nparts > 0) {
        cairn_buf_append(parts, r.parts, r.parts_len);
        cairn_obj_part_t p;
        size_t off = 0, at = 0;
        while (rc == CAIRN_ECONFLICT && (at = off, cairn_obj_part_next(parts->base, parts->len, &off, &p))) {
            if (memcmp(p.oid, oid, 16) != 0)
                continue;
            if ((rc = apply_moves(p.nodes, p.k + p.m, mv, n)) == 0) {
                size_t nodes_at = at + 4 + 16 + 8 + 1 + 1 + 4;
                for (int i = 0; i < p.k + p.m; i++)
                    cairn_le32_put(parts->base + nodes_at + 4 * (size_t)i, p.nodes[i]);
            }
            break;
        }
        r.parts = parts->base;
    }
    if (rc == 0)
        cairn_obj_rec_encode(&r, out);
    return rc;
}

static int cmd_obj_relocate(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    const uint8_t *b, *key;
    size_t bl, kl;
    uint8_t oid[16];
    cairn_relocation_t mv[CAIRN_MAX_FRAGS];
    cairn_dec_bytes(d, &b, &bl);
    cairn_dec_bytes(d, &key, &kl);
    cairn_dec_raw(d, oid, 16);
    uint8_t n = cairn_dec_u8(d);
    for (unsigned i = 0; i < n && i < CAIRN_MAX_FRAGS; i++) {
        mv[i].index = cairn_dec_u8(d);
        mv[i].from = cairn_dec_u32(d);
        mv[i].to = cairn_dec_u32(d);
    }
    if (n == 0 || n > CAIRN_MAX_FRAGS || !cmd_done(d, len)) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    int exists, found;
    int rc = meta__bucket_exists(f, txn, b, bl, &exists);
    if (rc || !exists) {
        *status = rc ? 0 : CAIRN_EBUCKET;
        return rc;
    }
    cairn_buf_t cur, parts, nrec, scratch;
    cairn_buf_init(&cur);
    cairn_buf_init(&parts);
    cairn_buf_init(&nrec);
    cairn_buf_init(&scratch);
    rc = meta__obj_peek(f, txn, b, bl, key, kl, &cur, &found);
    if (rc == 0 && !found)
        *status = CAIRN_ENOTFOUND;
    if (rc == 0 && found) {
        int st = relocated(cur.base, cur.len, oid, mv, n, &parts, &nrec);
        if (st == CAIRN_ECORRUPT)
            rc = st;
        else if (st != 0)
            *status = st;
        else
            rc = meta__obj_put(f, txn, b, bl, key, kl, nrec.base, nrec.len, &scratch, status);
    }
    cairn_buf_dispose(&cur);
    cairn_buf_dispose(&parts);
    cairn_buf_dispose(&nrec);
    cairn_buf_dispose(&scratch);
    (void)res;
    return rc;
}

static int kv_name_ok(const uint8_t *p, size_t n) { return n >= 1 && n <= CAIRN_KV_NAME_MAX && !memchr(p, 0, n); }

static size_t kv_key(uint8_t *k, const uint8_t *name, size_t n)
{
    memcpy(k, KV_PREFIX, sizeof KV_PREFIX - 1);
    memcpy(k + sizeof KV_PREFIX - 1, name, n);
    return sizeof KV_PREFIX - 1 + n;
}

static int cmd_kv_put(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    const uint8_t *name, *val;
    size_t nl, vl;
    cairn_dec_bytes(d, &name, &nl);
    cairn_dec_bytes(d, &val, &vl);
    if (!cmd_done(d, len)) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    if (!kv_name_ok(name, nl) || vl > CAIRN_KV_VALUE_MAX) {
        *status = CAIRN_EINVAL;
        return 0;
    }
    uint8_t kb[sizeof KV_PREFIX + CAIRN_KV_NAME_MAX];
    MDB_val k = {kv_key(kb, name, nl), kb}, v = {vl, (void *)val};
    int rc = vl ? mdb_put(txn, meta__dbi(f, META__DB_SYS), &k, &v, 0) : mdb_del(txn, meta__dbi(f, META__DB_SYS), &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int meta__map_cmd(meta_fsm_t *f, MDB_txn *txn, int type, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    switch (type) {
    case META_CMD_MAP_INIT: return cmd_map_init(f, txn, d, len, res, status);
    case META_CMD_NODE_ADD: return cmd_node_add(f, txn, d, len, res, status);
    case META_CMD_NODE_SET: return cmd_node_set(f, txn, d, len, res, status);
    case META_CMD_NODE_REMOVE: return cmd_node_remove(f, txn, d, len, res, status);
    case META_CMD_OBJ_RELOCATE: return cmd_obj_relocate(f, txn, d, len, res, status);
    case META_CMD_KV_PUT: return cmd_kv_put(f, txn, d, len, res, status);
    default: *status = CAIRN_EPROTO; return 0;
    }
}

/* ---- reads ---- */

int meta_fsm_map_get(meta_fsm_t *f, cairn_buf_t *out)
{
    MDB_txn *txn;
    int rc = meta__rd_begin(f, &txn);
    if (rc)
        return rc;
    MDB_val k = {sizeof MAP_KEY - 1, MAP_KEY}, v;
    rc = mdb_get(txn, meta__dbi(f, META__DB_SYS), &k, &v);
    if (rc == 0) {
        cairn_buf_append(out, v.mv_data, v.mv_size);
    } else if (rc == MDB_NOTFOUND) {
        cairn_map_t empty = {0};
        cairn_map_encode(&empty, out);
        rc = 0;
    }
    meta__rd_end(f, txn);
    return rc ? meta__err(rc) : 0;
}

int meta_fsm_kv_get(meta_fsm_t *f, const uint8_t *name, size_t len, cairn_buf_t *out)
{
    if (!kv_name_ok(name, len))
        return CAIRN_EINVAL;
    MDB_txn *txn;
    int rc = meta__rd_begin(f, &txn);
    if (rc)
        return rc;
    uint8_t kb[sizeof KV_PREFIX + CAIRN_KV_NAME_MAX];
    MDB_val k = {kv_key(kb, name, len), kb}, v;
    rc = mdb_get(txn, meta__dbi(f, META__DB_SYS), &k, &v);
    if (rc == 0)
        cairn_buf_put_bytes(out, v.mv_data, v.mv_size);
    meta__rd_end(f, txn);
    return rc == MDB_NOTFOUND ? CAIRN_ENOTFOUND : rc ? meta__err(rc) : 0;
}
