/*
 * fsm_map_test.c — the cluster map, record relocation, the record scan and
 * the job key-value store in the state machine (fsm_map.c, and
 * meta_fsm_obj_scan of fsm.c): map seeding happens once; node ids are
 * assigned, never reused, and every change bumps the epoch by one while a
 * refused change leaves the map as it was; no change leaves fewer than k+m
 * nodes up; relocation is a compare-and-set on a plain record and on a part
 * of a multipart record, and puts nothing on the garbage list; the scan
 * visits every record of every bucket exactly once from any cursor,
 * including keys longer than META_FSM_SHORT_KEY.
 */
#include "cairn/err.h"
#include "cairn/meta.h"
#include "cairn/meta_map.h"
#include "fsm.h"
#include "fsm_map.h"
#include "fsm_mpu.h"
#define FX_TMPDIR "/tmp/cairn-fsm-map-test.XXXXXX"
#include "fsm_fixture.h"

/* ---- the map ---- */

static cairn_map_t map_scratch; /* large: not on the stack */

static void seed_map(cairn_map_t *m, int nodes, int k, int mm)
{
    memset(m, 0, sizeof *m);
    m->epoch = 77; /* ignored by MAP_INIT */
    m->next_id = 99;
    m->k = (uint8_t)k;
    m->m = (uint8_t)mm;
    for (int i = 0; i < nodes; i++) {
        cairn_map_node_t *n = &m->nodes[m->n++];
        n->id = (uint32_t)i + 1;
        snprintf(n->addr, sizeof n->addr, "127.0.0.1:%d", 7000 + i);
        snprintf(n->zone, sizeof n->zone, "z%d", i % 3);
        n->weight_milli = 1000;
        n->state = CAIRN_NODE_UP;
    }
}

/* MAP_INIT with seed; the status, and the answered map in *out. */
static int map_init(fx_t *x, const cairn_map_t *seed, cairn_map_t *out)
{
    cairn_buf_t enc;
    cairn_buf_init(&enc);
    cairn_map_encode(seed, &enc);
    cairn_buf_put_bytes(&x->body, enc.base, enc.len);
    cairn_buf_dispose(&enc);
    int st = run_body(x, META_CMD_MAP_INIT);
    if (st == 0) {
        const uint8_t *p;
        size_t n;
        meta_fsm_result(&x->res, &p, &n);
        assert_int_equal(cairn_map_decode(p, n, out), 0);
    }
    return st;
}

static void map_get(fx_t *x, cairn_map_t *m)
{
    cairn_buf_reset(&x->out);
    assert_int_equal(meta_fsm_map_get(x->f, &x->out), 0);
    assert_int_equal(cairn_map_decode(x->out.base, x->out.len, m), 0);
}

static uint64_t epoch_of(fx_t *x)
{
    map_get(x, &map_scratch);
    return map_scratch.epoch;
}

/* The stored map's encoding, to compare before and after a refused change. */
static void map_bytes(fx_t *x, cairn_buf_t *out)
{
    cairn_buf_reset(out);
    assert_int_equal(meta_fsm_map_get(x->f, out), 0);
}

static int node_add(fx_t *x, uint32_t id, const char *addr, const char *zone, uint32_t wm, uint32_t *new_id,
                    uint64_t *epoch)
{
    cairn_buf_put_u32(&x->body, id);
    cairn_buf_put_str(&x->body, addr);
    cairn_buf_put_str(&x->body, zone);
    cairn_buf_put_u32(&x->body, wm);
    int st = run_body(x, META_CMD_NODE_ADD);
    if (st == 0) {
        cairn_dec_t d = result_dec(x);
        uint32_t v = cairn_dec_u32(&d);
        uint64_t e = cairn_dec_u64(&d);
        assert_int_equal(d.err, 0);
        assert_int_equal(cairn_dec_left(&d), 0);
        if (new_id)
            *new_id = v;
        if (epoch)
            *epoch = e;
    }
    return st;
}

static int epoch_answer(fx_t *x, int st, uint64_t *epoch)
{
    if (st == 0) {
        cairn_dec_t d = result_dec(x);
        uint64_t e = cairn_dec_u64(&d);
        assert_int_equal(d.err, 0);
        assert_int_equal(cairn_dec_left(&d), 0);
        if (epoch)
            *epoch = e;
    }
    return st;
}

static int node_set(fx_t *x, uint32_t id, int state, uint32_t wm, uint64_t *epoch)
{
    cairn_buf_put_u32(&x->body, id);
    cairn_buf_put_u8(&x->body, (uint8_t)state);
    cairn_buf_put_u32(&x->body, wm);
    return epoch_answer(x, run_body(x, META_CMD_NODE_SET), epoch);
}

static int node_remove(fx_t *x, uint32_t id, uint64_t *epoch)
{
    cairn_buf_put_u32(&x->body, id);
    return epoch_answer(x, run_body(x, META_CMD_NODE_REMOVE), epoch);
}

/* A change that must be refused with want and leave the map byte for byte. */
#define REFUSED(x, call, want)                                                                                      \
    do {                                                                                                            \
        cairn_buf_t before_, after_;                                                                                \
        cairn_buf_init(&before_);                                                                                   \
        cairn_buf_init(&after_);                                                                                    \
        map_bytes(x, &before_);                                                                                     \
        assert_int_equal((call), (want));                                                                           \
        map_bytes(x, &after_);                                                                                      \
        assert_int_equal(before_.len, after_.len);                                                                  \
        assert_memory_equal(before_.base, after_.base, before_.len);                                                \
        cairn_buf_dispose(&before_);                                                                                \
        cairn_buf_dispose(&after_);                                                                                 \
    } while (0)

static void test_map_init(void **state)
{
    fx_t *x = *state;
    cairn_map_t *seed = calloc(1, sizeof *seed), *got = calloc(1, sizeof *got), *again = calloc(1, sizeof *again);

    /* Empty at first: epoch 0, no nodes; nothing can be added before seeding. */
    map_get(x, got);
    assert_int_equal(got->epoch, 0);
    assert_int_equal(got->n, 0);
    assert_int_equal(node_add(x, 0, "127.0.0.1:9", "z", 1000, NULL, NULL), CAIRN_EUNAVAIL);

    /* Seeds that cannot be a map are refused, and the map stays empty. */
    seed_map(seed, 5, 4, 2); /* fewer nodes than k+m */
    assert_int_equal(map_init(x, seed, got), CAIRN_EINVAL);
    seed_map(seed, 6, 0, 2); /* k = 0 */
    assert_int_equal(map_init(x, seed, got), CAIRN_EINVAL);
    seed_map(seed, 6, 4, 2);
    snprintf(seed->nodes[3].addr, sizeof seed->nodes[3].addr, "%s", seed->nodes[1].addr); /* same address twice */
    assert_int_equal(map_init(x, seed, got), CAIRN_EINVAL);
    seed_map(seed, 6, 4, 2);
    seed->nodes[2].id = seed->nodes[4].id; /* same id twice */
    assert_int_equal(map_init(x, seed, got), CAIRN_EINVAL);
    seed_map(seed, 6, 4, 2);
    seed->nodes[0].weight_milli = 0;
    assert_int_equal(map_init(x, seed, got), CAIRN_EINVAL);
    seed_map(seed, 6, 4, 2);
    seed->nodes[5].id = UINT32_MAX; /* next_id would wrap to 0 */
    assert_int_equal(map_init(x, seed, got), CAIRN_EINVAL);
    cairn_buf_put_bytes(&x->body, "junk", 4); /* a malformed seed */
    assert_int_equal(run_body(x, META_CMD_MAP_INIT), CAIRN_EPROTO);
    assert_int_equal(epoch_of(x), 0);

    /* A good seed: epoch 1, every node up, next_id past the highest id. */
    seed_map(seed, 6, 4, 2);
    seed->nodes[1].state = CAIRN_NODE_OUT; /* a seed's states are ignored */
    seed->nodes[5].id = 9;
    assert_int_equal(map_init(x, seed, got), 0);
    assert_int_equal(got->epoch, 1);
    assert_int_equal(got->k, 4);
    assert_int_equal(got->m, 2);
    assert_int_equal(got->next_id, 10);
    assert_int_equal(got->n, 6);
    assert_int_equal(cairn_map_count_up(got), 6);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(got->nodes[i].id, seed->nodes[i].id);
        assert_string_equal(got->nodes[i].addr, seed->nodes[i].addr);
        assert_string_equal(got->nodes[i].zone, seed->nodes[i].zone);
        assert_int_equal(got->nodes[i].weight_milli, 1000);
    }
    map_get(x, again);
    assert_memory_equal(got, again, sizeof *got);

    /* A second seed (another gateway, another config) changes nothing. */
    seed_map(seed, 8, 5, 3);
    REFUSED(x, map_init(x, seed, again), 0);
    assert_int_equal(again->epoch, 1);
    assert_int_equal(again->n, 6);
    assert_int_equal(again->k, 4);
    assert_memory_equal(got, again, sizeof *got);

    free(seed);
    free(got);
    free(again);
}

/* Seed 6 nodes (ids 1..6), 4+2. */
static void seed6(fx_t *x)
{
    cairn_map_t *seed = calloc(1, sizeof *seed), *got = calloc(1, sizeof *got);
    seed_map(seed, 6, 4, 2);
    assert_int_equal(map_init(x, seed, got), 0);
    assert_int_equal(got->epoch, 1);
    free(seed);
    free(got);
}

static void test_node_add(void **state)
{
    fx_t *x = *state;
    seed6(x);
    uint32_t id;
    uint64_t epoch;

    /* The next id, then an explicit one, then the next after that. */
    assert_int_equal(node_add(x, 0, "127.0.0.1:8001", "z9", 1500, &id, &epoch), 0);
    assert_int_equal(id, 7);
    assert_int_equal(epoch, 2);
    assert_int_equal(node_add(x, 20, "127.0.0.1:8002", "z9", 1000, &id, &epoch), 0);
    assert_int_equal(id, 20);
    assert_int_equal(epoch, 3);
    assert_int_equal(node_add(x, 0, "127.0.0.1:8003", "z9", 1000, &id, &epoch), 0);
    assert_int_equal(id, 21);
    assert_int_equal(epoch, 4);

    map_get(x, &map_scratch);
    assert_int_equal(map_scratch.n, 9);
    assert_int_equal(map_scratch.next_id, 22);
    const cairn_map_node_t *n7 = cairn_map_node(&map_scratch, 7);
    assert_non_null(n7);
    assert_string_equal(n7->addr, "127.0.0.1:8001");
    assert_string_equal(n7->zone, "z9");
    assert_int_equal(n7->weight_milli, 1500);
    assert_int_equal(n7->state, CAIRN_NODE_UP);

    /* Refused, map unchanged: an id in use, an id below next_id (handed
     * out once), a duplicate address, weight 0, empty or over-long
     * address or zone, the largest id (next_id would wrap). */
    REFUSED(x, node_add(x, 3, "127.0.0.1:8100", "z", 1000, NULL, NULL), CAIRN_EEXIST);
    REFUSED(x, node_add(x, 15, "127.0.0.1:8100", "z", 1000, NULL, NULL), CAIRN_EEXIST);
    REFUSED(x, node_add(x, 0, "127.0.0.1:7002", "z", 1000, NULL, NULL), CAIRN_EEXIST);
    REFUSED(x, node_add(x, 30, "127.0.0.1:8001", "z", 1000, NULL, NULL), CAIRN_EEXIST);
    REFUSED(x, node_add(x, 0, "127.0.0.1:8100", "z", 0, NULL, NULL), CAIRN_EINVAL);
    REFUSED(x, node_add(x, 0, "", "z", 1000, NULL, NULL), CAIRN_EINVAL);
    REFUSED(x, node_add(x, 0, "127.0.0.1:8100", "", 1000, NULL, NULL), CAIRN_EINVAL);
    char big[CAIRN_MAP_ADDR_MAX + 1];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    REFUSED(x, node_add(x, 0, big, "z", 1000, NULL, NULL), CAIRN_EINVAL);
    REFUSED(x, node_add(x, UINT32_MAX, "127.0.0.1:8100", "z", 1000, NULL, NULL), CAIRN_EINVAL);

    /* Removed ids are never handed out again, explicitly or not. */
    assert_int_equal(node_remove(x, 7, &epoch), 0);
    assert_int_equal(epoch, 5);
    REFUSED(x, node_add(x, 7, "127.0.0.1:8200", "z", 1000, NULL, NULL), CAIRN_EEXIST);
    assert_int_equal(node_remove(x, 21, &epoch), 0); /* the highest id */
    REFUSED(x, node_add(x, 21, "127.0.0.1:8200", "z", 1000, NULL, NULL), CAIRN_EEXIST);
    assert_int_equal(node_add(x, 0, "127.0.0.1:8001", "z", 1000, &id, &epoch), 0); /* the freed address is fine */
    assert_int_equal(id, 22);
    assert_int_equal(epoch, 7);

    /* A malformed body is a protocol error. */
    cairn_buf_put_u32(&x->body, 0);
    assert_int_equal(run_body(x, META_CMD_NODE_ADD), CAIRN_EPROTO);
}

static void test_node_set_remove(void **state)
{
    fx_t *x = *state;
    seed6(x);
    uint64_t epoch;

    /* With exactly k+m up, nothing may leave the up set. */
    REFUSED(x, node_set(x, 1, CAIRN_NODE_DRAINING, 0, NULL), CAIRN_ECONFLICT);
    REFUSED(x, node_set(x, 2, CAIRN_NODE_OUT, 0, NULL), CAIRN_ECONFLICT);
    REFUSED(x, node_remove(x, 3, NULL), CAIRN_ECONFLICT);
    /* ... but the weight may change, and setting up an up node is allowed. */
    assert_int_equal(node_set(x, 1, CAIRN_NODE_STATE_KEEP, 2500, &epoch), 0);
    assert_int_equal(epoch, 2);
    assert_int_equal(node_set(x, 1, CAIRN_NODE_UP, 0, &epoch), 0);
    assert_int_equal(epoch, 3);
    map_get(x, &map_scratch);
    assert_int_equal(cairn_map_node(&map_scratch, 1)->weight_milli, 2500);
    assert_int_equal(cairn_map_node(&map_scratch, 1)->state, CAIRN_NODE_UP);

    /* Unknown ids and states. */
    REFUSED(x, node_set(x, 42, CAIRN_NODE_DRAINING, 0, NULL), CAIRN_ENOTFOUND);
    REFUSED(x, node_set(x, 1, 7, 0, NULL), CAIRN_EINVAL);
    REFUSED(x, node_remove(x, 42, NULL), CAIRN_ENOTFOUND);

    /* A seventh node allows one to leave. */
    assert_int_equal(node_add(x, 0, "127.0.0.1:8001", "z", 1000, NULL, &epoch), 0);
    assert_int_equal(epoch, 4);
    assert_int_equal(node_set(x, 2, CAIRN_NODE_DRAINING, 0, &epoch), 0);
    assert_int_equal(epoch, 5);
    REFUSED(x, node_set(x, 3, CAIRN_NODE_DRAINING, 0, NULL), CAIRN_ECONFLICT);
    REFUSED(x, node_set(x, 3, CAIRN_NODE_OUT, 0, NULL), CAIRN_ECONFLICT);
    REFUSED(x, node_remove(x, 3, NULL), CAIRN_ECONFLICT);
    /* A draining node may go out, come back, and its weight change. */
    assert_int_equal(node_set(x, 2, CAIRN_NODE_OUT, 0, &epoch), 0);
    assert_int_equal(epoch, 6);
    assert_int_equal(node_set(x, 2, CAIRN_NODE_STATE_KEEP, 500, &epoch), 0);
    assert_int_equal(epoch, 7);
    map_get(x, &map_scratch);
    assert_int_equal(cairn_map_node(&map_scratch, 2)->state, CAIRN_NODE_OUT);
    assert_int_equal(cairn_map_node(&map_scratch, 2)->weight_milli, 500);
    assert_int_equal(cairn_map_count_up(&map_scratch), 6);
    assert_int_equal(node_set(x, 2, CAIRN_NODE_UP, 0, &epoch), 0);
    assert_int_equal(epoch, 8);
    assert_int_equal(node_set(x, 2, CAIRN_NODE_DRAINING, 0, &epoch), 0);
    assert_int_equal(epoch, 9);

    /* A node that is not up may always be removed; then ids go on. */
    assert_int_equal(node_remove(x, 2, &epoch), 0);
    assert_int_equal(epoch, 10);
    map_get(x, &map_scratch);
    assert_int_equal(map_scratch.n, 6);
    assert_null(cairn_map_node(&map_scratch, 2));
    assert_int_equal(map_scratch.next_id, 8);
    REFUSED(x, node_remove(x, 2, NULL), CAIRN_ENOTFOUND);
    REFUSED(x, node_remove(x, 1, NULL), CAIRN_ECONFLICT);
}

/* ---- objects ---- */

static void mkoid(uint8_t oid[16], int seed)
{
    for (int i = 0; i < 16; i++)
        oid[i] = (uint8_t)(seed * 37 + i * 5 + 1);
}

/* A plain 4+2 record of oid seed, fragments on first..first+5. */
static void plain_rec(int seed, uint32_t first, cairn_buf_t *out)
{
    cairn_obj_rec_t r;
    memset(&r, 0, sizeof r);
    mkoid(r.oid, seed);
    r.size = 1000 + (uint64_t)seed;
    r.mtime_ms = 1700000000000 + seed;
    snprintf(r.etag, sizeof r.etag, "etag%d", seed);
    r.k = 4;
    r.m = 2;
    r.block_size = 1 << 18;
    for (int i = 0; i < 6; i++)
        r.nodes[i] = first + (uint32_t)i;
    r.content_type = "text/plain";
    r.content_type_len = 10;
    cairn_buf_reset(out);
    cairn_obj_rec_encode(&r, out);
}

/* A multipart record (oid seed) of two parts with oids seed+1 and seed+2,
 * on nodes 1..6 and 2..7. */
static void mpu_rec(int seed, cairn_buf_t *out)
{
    cairn_buf_t parts;
    cairn_buf_init(&parts);
    for (int p = 0; p < 2; p++) {
        cairn_obj_part_t part;
        memset(&part, 0, sizeof part);
        part.number = (uint32_t)p + 1;
        mkoid(part.oid, seed + 1 + p);
        part.size = 5u << 20;
        part.k = 4;
        part.m = 2;
        part.block_size = 1 << 18;
        for (int i = 0; i < 6; i++)
            part.nodes[i] = (uint32_t)(1 + p + i);
        cairn_obj_part_add(&parts, &part);
    }
    cairn_obj_rec_t r;
    memset(&r, 0, sizeof r);
    mkoid(r.oid, seed);
    r.size = 10u << 20;
    r.mtime_ms = 1700000000000;
    snprintf(r.etag, sizeof r.etag, "abcdef-2");
    r.content_type = "text/plain";
    r.content_type_len = 10;
    r.nparts = 2;
    r.parts = parts.base;
    r.parts_len = parts.len;
    cairn_buf_reset(out);
    cairn_obj_rec_encode(&r, out);
    cairn_buf_dispose(&parts);
}

static void put_rec(fx_t *x, const char *b, const uint8_t *k, size_t kl, const cairn_buf_t *rec)
{
    meta_cmd_obj_put(&x->cmd, b, strlen(b), k, kl, rec->base, rec->len);
    assert_int_equal(run(x), 0);
}

/* The stored record of (b, k) into x->out, decoded into *r. */
static int get_rec(fx_t *x, const char *b, const uint8_t *k, size_t kl, cairn_obj_rec_t *r)
{
    cairn_buf_reset(&x->out);
    int rc = meta_fsm_obj_get(x->f, b, strlen(b), k, kl, &x->out);
    if (rc != 0)
        return rc;
    cairn_dec_t d;
    const uint8_t *p;
    size_t n;
    cairn_dec_init(&d, x->out.base, x->out.len);
    cairn_dec_bytes(&d, &p, &n);
    assert_int_equal(d.err, 0);
    assert_int_equal(cairn_obj_rec_decode(p, n, r), 0);
    return 0;
}

static int relocate(fx_t *x, const char *b, const uint8_t *k, size_t kl, const uint8_t oid[16],
                    const cairn_relocation_t *mv, size_t n)
{
    cairn_buf_put_str(&x->body, b);
    cairn_buf_put_bytes(&x->body, k, kl);
    cairn_buf_append(&x->body, oid, 16);
    cairn_buf_put_u8(&x->body, (uint8_t)n);
    for (size_t i = 0; i < n; i++) {
        cairn_buf_put_u8(&x->body, mv[i].index);
        cairn_buf_put_u32(&x->body, mv[i].from);
        cairn_buf_put_u32(&x->body, mv[i].to);
    }
    int st = run_body(x, META_CMD_OBJ_RELOCATE);
    if (st == 0) {
        const uint8_t *p;
        size_t len;
        meta_fsm_result(&x->res, &p, &len);
        assert_int_equal(len, 0);
    }
    return st;
}

static size_t gc_count(fx_t *x)
{
    uint8_t after[16] = {0};
    cairn_buf_reset(&x->out);
    assert_int_equal(meta_fsm_gc_list(x->f, after, 1000, &x->out), 0);
    cairn_dec_t d;
    cairn_dec_init(&d, x->out.base, x->out.len);
    return cairn_dec_u32(&d);
}

/* The record bytes of (b, k), to compare before and after a refused relocation. */
static void rec_bytes(fx_t *x, const char *b, const uint8_t *k, size_t kl, cairn_buf_t *out)
{
    cairn_buf_reset(out);
    assert_int_equal(meta_fsm_obj_get(x->f, b, strlen(b), k, kl, out), 0);
}

#define REC_UNCHANGED(x, b, kk, call, want)                                                                           \
    do {                                                                                                            \
        cairn_buf_t before_, after_;                                                                                \
        cairn_buf_init(&before_);                                                                                   \
        cairn_buf_init(&after_);                                                                                    \
        rec_bytes(x, b, kk, &before_);                                                                              \
        assert_int_equal((call), (want));                                                                           \
        rec_bytes(x, b, kk, &after_);                                                                               \
        assert_int_equal(before_.len, after_.len);                                                                  \
        assert_memory_equal(before_.base, after_.base, before_.len);                                                \
        cairn_buf_dispose(&before_);                                                                                \
        cairn_buf_dispose(&after_);                                                                                 \
    } while (0)

static void test_relocate_plain(void **state)
{
    fx_t *x = *state;
    cairn_buf_t rec;
    cairn_buf_init(&rec);
    bucket(x, "b");
    plain_rec(1, 1, &rec); /* nodes 1..6 */
    put_rec(x, "b", K("obj"), &rec);
    uint8_t oid1[16], oid2[16];
    mkoid(oid1, 1);
    mkoid(oid2, 2);
    size_t gc0 = gc_count(x);
    assert_int_equal(gc0, 0);

    /* Two fragments move at once. */
    cairn_relocation_t mv[2] = {{2, 3, 7}, {5, 6, 8}};
    assert_int_equal(relocate(x, "b", K("obj"), oid1, mv, 2), 0);
    cairn_obj_rec_t r;
    assert_int_equal(get_rec(x, "b", K("obj"), &r), 0);
    const uint32_t want[6] = {1, 2, 7, 4, 5, 8};
    assert_memory_equal(r.nodes, want, sizeof want);
    assert_memory_equal(r.oid, oid1, 16);
    assert_int_equal(r.size, 1001);
    assert_string_equal(r.etag, "etag1");
    assert_int_equal(r.content_type_len, 10);
    assert_int_equal(gc_count(x), 0); /* the live fragments are not garbage */

    /* Compare-and-set: `from` no longer matches; one good and one stale
     * move together apply neither; index out of range; destination 0. */
    cairn_relocation_t stale = {2, 3, 9};
    REC_UNCHANGED(x, "b", K("obj"), relocate(x, "b", K("obj"), oid1, &stale, 1), CAIRN_ECONFLICT);
    cairn_relocation_t mixed[2] = {{0, 1, 9}, {2, 3, 9}};
    REC_UNCHANGED(x, "b", K("obj"), relocate(x, "b", K("obj"), oid1, mixed, 2), CAIRN_ECONFLICT);
    cairn_relocation_t range = {6, 1, 9};
    REC_UNCHANGED(x, "b", K("obj"), relocate(x, "b", K("obj"), oid1, &range, 1), CAIRN_ECONFLICT);
    cairn_relocation_t zero = {0, 1, 0};
    REC_UNCHANGED(x, "b", K("obj"), relocate(x, "b", K("obj"), oid1, &zero, 1), CAIRN_ECONFLICT);

    /* Another oid (the object was overwritten): conflict, nothing moves. */
    cairn_relocation_t ok = {0, 1, 9};
    REC_UNCHANGED(x, "b", K("obj"), relocate(x, "b", K("obj"), oid2, &ok, 1), CAIRN_ECONFLICT);
    plain_rec(2, 11, &rec);
    put_rec(x, "b", K("obj"), &rec);
    assert_int_equal(gc_count(x), 1); /* the overwritten version */
    REC_UNCHANGED(x, "b", K("obj"), relocate(x, "b", K("obj"), oid1, &ok, 1), CAIRN_ECONFLICT);
    cairn_relocation_t ok2 = {0, 11, 1};
    assert_int_equal(relocate(x, "b", K("obj"), oid2, &ok2, 1), 0);
    assert_int_equal(get_rec(x, "b", K("obj"), &r), 0);
    assert_int_equal(r.nodes[0], 1);
    assert_int_equal(gc_count(x), 1);

    /* Deleted, never existed, no bucket. */
    meta_cmd_obj_delete(&x->cmd, "b", 1, K("obj"));
    assert_int_equal(run(x), 0);
    assert_int_equal(relocate(x, "b", K("obj"), oid2, &ok, 1), CAIRN_ENOTFOUND);
    assert_int_equal(relocate(x, "b", K("never"), oid2, &ok, 1), CAIRN_ENOTFOUND);
    assert_int_equal(relocate(x, "nobucket", K("obj"), oid2, &ok, 1), CAIRN_EBUCKET);
    assert_int_equal(get_rec(x, "b", K("obj"), &r), CAIRN_ENOTFOUND); /* not resurrected */

    /* An inline object has no fragments to move. */
    cairn_obj_rec_t in;
    memset(&in, 0, sizeof in);
    mkoid(in.oid, 5);
    in.size = 3;
    in.is_inline = 1;
    in.inline_data = (const uint8_t *)"abc";
    in.inline_len = 3;
    cairn_buf_reset(&rec);
    cairn_obj_rec_encode(&in, &rec);
    put_rec(x, "b", K("small"), &rec);
    uint8_t oid5[16];
    mkoid(oid5, 5);
    REC_UNCHANGED(x, "b", K("small"), relocate(x, "b", K("small"), oid5, &ok, 1), CAIRN_ECONFLICT);

    /* A long key (stored under its hash slot) moves the same way. */
    uint8_t lk[700];
    memset(lk, 'L', sizeof lk);
    plain_rec(6, 1, &rec);
    put_rec(x, "b", lk, sizeof lk, &rec);
    uint8_t oid6[16];
    mkoid(oid6, 6);
    size_t gc1 = gc_count(x); /* the overwritten and the deleted version */
    assert_int_equal(gc1, 2);
    assert_int_equal(relocate(x, "b", lk, sizeof lk, oid6, mv, 2), 0);
    assert_int_equal(get_rec(x, "b", lk, sizeof lk, &r), 0);
    assert_memory_equal(r.nodes, want, sizeof want);
    assert_int_equal(gc_count(x), gc1);

    /* Malformed: no moves. */
    assert_int_equal(relocate(x, "b", K("small"), oid5, NULL, 0), CAIRN_EPROTO);
    cairn_buf_dispose(&rec);
}

static void test_relocate_multipart(void **state)
{
    fx_t *x = *state;
    cairn_buf_t rec;
    cairn_buf_init(&rec);
    bucket(x, "b");
    mpu_rec(10, &rec); /* record oid 10, parts 11 (nodes 1..6) and 12 (nodes 2..7) */
    put_rec(x, "b", K("big"), &rec);
    uint8_t rec_oid[16], p1[16], p2[16], other[16];
    mkoid(rec_oid, 10);
    mkoid(p1, 11);
    mkoid(p2, 12);
    mkoid(other, 13);

    /* Move fragment 0 of part 2 from node 2 to node 1. */
    cairn_relocation_t mv = {0, 2, 1};
    assert_int_equal(relocate(x, "b", K("big"), p2, &mv, 1), 0);
    cairn_obj_rec_t r;
    assert_int_equal(get_rec(x, "b", K("big"), &r), 0);
    assert_memory_equal(r.oid, rec_oid, 16);
    assert_int_equal(r.nparts, 2);
    assert_int_equal(r.size, 10u << 20);
    assert_string_equal(r.etag, "abcdef-2");
    cairn_obj_part_t part;
    size_t off = 0;
    assert_int_equal(cairn_obj_part_next(r.parts, r.parts_len, &off, &part), 1);
    assert_int_equal(part.number, 1);
    assert_memory_equal(part.oid, p1, 16);
    const uint32_t want1[6] = {1, 2, 3, 4, 5, 6};
    assert_memory_equal(part.nodes, want1, sizeof want1);
    assert_int_equal(cairn_obj_part_next(r.parts, r.parts_len, &off, &part), 1);
    assert_int_equal(part.number, 2);
    assert_memory_equal(part.oid, p2, 16);
    assert_int_equal(part.size, 5u << 20);
    const uint32_t want2[6] = {1, 3, 4, 5, 6, 7};
    assert_memory_equal(part.nodes, want2, sizeof want2);
    assert_int_equal(cairn_obj_part_next(r.parts, r.parts_len, &off, &part), 0);
    assert_int_equal(off, r.parts_len);
    assert_int_equal(gc_count(x), 0);

    /* Part 1, last fragment, and the stale move again. */
    cairn_relocation_t mv1 = {5, 6, 9};
    assert_int_equal(relocate(x, "b", K("big"), p1, &mv1, 1), 0);
    assert_int_equal(get_rec(x, "b", K("big"), &r), 0);
    off = 0;
    assert_int_equal(cairn_obj_part_next(r.parts, r.parts_len, &off, &part), 1);
    assert_int_equal(part.nodes[5], 9);
    assert_int_equal(part.nodes[0], 1);
    REC_UNCHANGED(x, "b", K("big"), relocate(x, "b", K("big"), p2, &mv, 1), CAIRN_ECONFLICT);

    /* The record's own oid names no fragments; an oid of no part; a part
     * replaced by a new upload of the key. */
    cairn_relocation_t any = {1, 3, 9};
    REC_UNCHANGED(x, "b", K("big"), relocate(x, "b", K("big"), rec_oid, &any, 1), CAIRN_ECONFLICT);
    REC_UNCHANGED(x, "b", K("big"), relocate(x, "b", K("big"), other, &any, 1), CAIRN_ECONFLICT);
    assert_int_equal(gc_count(x), 0);
    mpu_rec(20, &rec);
    put_rec(x, "b", K("big"), &rec);
    assert_int_equal(gc_count(x), 1); /* the first upload */
    REC_UNCHANGED(x, "b", K("big"), relocate(x, "b", K("big"), p2, &any, 1), CAIRN_ECONFLICT);
    assert_int_equal(gc_count(x), 1);
    cairn_buf_dispose(&rec);
}

/* ---- scan ---- */

typedef struct {
    char bucket[16];
    uint8_t key[1100];
    size_t klen;
    int seed;
    int seen;
} sk_t;

/* Every scanned record, page by page with max per page, from the start. */
static size_t scan_all(fx_t *x, sk_t *keys, size_t nkeys, uint32_t max, uint8_t *cursors, size_t *cursor_lens)
{
    cairn_meta_scan_t s;
    cairn_meta_scan_init(&s);
    uint8_t cur[512];
    size_t cur_len = 0, total = 0, pages = 0;
    char last_bucket[16] = "";
    for (size_t i = 0; i < nkeys; i++)
        keys[i].seen = 0;
    for (;;) {
        cairn_buf_reset(&s.raw);
        assert_int_equal(meta_fsm_obj_scan(x->f, CAIRN_SCAN_OBJECTS, cur, cur_len, max, &s.raw), 0);
        assert_int_equal(cairn_meta_scan_decode(&s), 0);
        assert_true(s.n <= max);
        for (size_t i = 0; i < s.n; i++) {
            const cairn_meta_scan_entry_t *e = &s.entries[i];
            size_t j;
            for (j = 0; j < nkeys; j++)
                if (strlen(keys[j].bucket) == e->bucket_len && memcmp(keys[j].bucket, e->bucket, e->bucket_len) == 0 &&
                    keys[j].klen == e->key_len && memcmp(keys[j].key, e->key, e->key_len) == 0)
                    break;
            assert_true(j < nkeys);
            assert_int_equal(keys[j].seen, 0); /* exactly once */
            keys[j].seen = 1;
            uint8_t oid[16];
            mkoid(oid, keys[j].seed);
            assert_memory_equal(e->rec.oid, oid, 16);
            /* storage order: buckets never go back */
            char b[16];
            memcpy(b, e->bucket, e->bucket_len);
            b[e->bucket_len] = '\0';
            assert_true(strcmp(b, last_bucket) >= 0);
            snprintf(last_bucket, sizeof last_bucket, "%s", b);
            total++;
        }
        if (s.n > 0)
            assert_true(s.cursor_len > 0);
        if (cursors) {
            memcpy(cursors + 512 * pages, s.cursor, s.cursor_len);
            cursor_lens[pages] = s.cursor_len;
        }
        pages++;
        memcpy(cur, s.cursor, s.cursor_len);
        cur_len = s.cursor_len;
        if (!s.more)
            break;
        assert_true(pages < 10000);
    }
    cairn_meta_scan_dispose(&s);
    return total;
}

static void scan_keys(fx_t *x, sk_t *keys, size_t *nkeys)
{
    static const char *const buckets[] = {"alpha", "beta", "gamma"};
    static const size_t lens[] = {1, 5, 438, 439, 440, 447, 448, 700, 1024};
    size_t n = 0;
    cairn_buf_t rec;
    cairn_buf_init(&rec);
    bucket(x, "empty"); /* a bucket with nothing in it */
    for (int b = 0; b < 3; b++) {
        bucket(x, buckets[b]);
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
            for (int v = 0; v < 3; v++) {
                sk_t *k = &keys[n];
                snprintf(k->bucket, sizeof k->bucket, "%s", buckets[b]);
                memset(k->key, 'k', lens[l]);
                k->key[0] = (uint8_t)('A' + l);
                /* The last byte varies: the long keys of one length share
                 * their first 439 bytes and differ only after them. Under
                 * META_FSM_TEST_HOME 'a' and 'i' have the same home slot,
                 * so one of them probes to the next. */
                k->key[lens[l] - 1] = (uint8_t)"aic"[v];
                k->klen = lens[l];
                k->seed = (int)n + 100;
                plain_rec(k->seed, 1, &rec);
                put_rec(x, k->bucket, k->key, k->klen, &rec);
                n++;
            }
    }
    cairn_buf_dispose(&rec);
    *nkeys = n;
}

static void check_scan(fx_t *x)
{
    static sk_t keys[100];
    size_t n;
    scan_keys(x, keys, &n);
    assert_int_equal(n, 81);

    /* One page, then every page size: each record exactly once. */
    assert_int_equal(scan_all(x, keys, n, 1000, NULL, NULL), n);
    for (uint32_t max = 1; max <= 9; max++) {
        assert_int_equal(scan_all(x, keys, n, max, NULL, NULL), n);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(keys[i].seen, 1);
    }

    /* Resume from each cursor of a one-record walk: the rest, exactly. */
    static uint8_t cursors[100 * 512];
    static size_t cursor_lens[100];
    assert_int_equal(scan_all(x, keys, n, 1, cursors, cursor_lens), n);
    cairn_meta_scan_t s;
    cairn_meta_scan_init(&s);
    for (size_t p = 0; p < n; p++) {
        cairn_buf_reset(&s.raw);
        assert_int_equal(meta_fsm_obj_scan(x->f, CAIRN_SCAN_OBJECTS, cursors + 512 * p, cursor_lens[p], 1000, &s.raw), 0);
        assert_int_equal(cairn_meta_scan_decode(&s), 0);
        assert_int_equal(s.n, n - 1 - p);
        assert_int_equal(s.more, 0);
    }

    /* A cursor whose record was deleted in between still resumes right
     * after it. */
    cairn_buf_reset(&s.raw);
    assert_int_equal(meta_fsm_obj_scan(x->f, CAIRN_SCAN_OBJECTS, NULL, 0, 40, &s.raw), 0);
    assert_int_equal(cairn_meta_scan_decode(&s), 0);
    assert_int_equal(s.n, 40);
    uint8_t cur[512];
    size_t cur_len = s.cursor_len;
    memcpy(cur, s.cursor, cur_len);
    char b[16];
    memcpy(b, s.entries[39].bucket, s.entries[39].bucket_len);
    b[s.entries[39].bucket_len] = '\0';
    meta_cmd_obj_delete(&x->cmd, b, strlen(b), s.entries[39].key, s.entries[39].key_len);
    assert_int_equal(run(x), 0);
    cairn_buf_reset(&s.raw);
    assert_int_equal(meta_fsm_obj_scan(x->f, CAIRN_SCAN_OBJECTS, cur, cur_len, 1000, &s.raw), 0);
    assert_int_equal(cairn_meta_scan_decode(&s), 0);
    assert_int_equal(s.n, n - 40);

    /* The end: nothing more, and the cursor stays put. */
    cairn_buf_reset(&s.raw);
    assert_int_equal(meta_fsm_obj_scan(x->f, CAIRN_SCAN_OBJECTS, s.cursor, s.cursor_len, 10, &s.raw), 0);
    assert_int_equal(cairn_meta_scan_decode(&s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(s.more, 0);

    /* A cursor longer than any key is refused. */
    uint8_t big[600];
    memset(big, 'x', sizeof big);
    cairn_buf_reset(&s.raw);
    assert_int_equal(meta_fsm_obj_scan(x->f, CAIRN_SCAN_OBJECTS, big, sizeof big, 10, &s.raw), CAIRN_EINVAL);
    cairn_meta_scan_dispose(&s);
}

static void test_scan(void **state) { check_scan(*state); }

/* The same with long keys crowded into neighbouring hash slots. */
static void test_scan_probe(void **state) { check_scan(*state); }

static void test_scan_empty(void **state)
{
    fx_t *x = *state;
    cairn_meta_scan_t s;
    cairn_meta_scan_init(&s);
    for (int t = CAIRN_SCAN_OBJECTS; t <= CAIRN_SCAN_GC; t++) {
        cairn_buf_reset(&s.raw);
        assert_int_equal(meta_fsm_obj_scan(x->f, t, NULL, 0, 10, &s.raw), 0);
        assert_int_equal(cairn_meta_scan_decode(&s), 0);
        assert_int_equal(s.n, 0);
        assert_int_equal(s.more, 0);
        assert_int_equal(s.cursor_len, 0);
    }
    cairn_buf_reset(&s.raw);
    assert_int_equal(meta_fsm_obj_scan(x->f, CAIRN_SCAN_GC + 1, NULL, 0, 10, &s.raw), CAIRN_EINVAL);
    assert_int_equal(s.raw.len, 0);
    assert_int_equal(meta_fsm_obj_scan(x->f, -1, NULL, 0, 10, &s.raw), CAIRN_EINVAL);
    cairn_meta_scan_dispose(&s);
}

/* The garbage list as a scan table: each superseded version once, keyed by
 * its object id, with no bucket. */
static void test_scan_gc(void **state)
{
    fx_t *x = *state;
    cairn_buf_t rec;
    cairn_buf_init(&rec);
    bucket(x, "b");
    for (int i = 0; i < 5; i++) {
        plain_rec(200 + i, 1, &rec);
        put_rec(x, "b", K("k"), &rec); /* four superseded versions */
    }
    cairn_buf_dispose(&rec);
    cairn_meta_scan_t s;
    cairn_meta_scan_init(&s);
    uint8_t cur[512];
    size_t cur_len = 0, total = 0;
    int seen[4] = {0};
    do {
        cairn_buf_reset(&s.raw);
        assert_int_equal(meta_fsm_obj_scan(x->f, CAIRN_SCAN_GC, cur, cur_len, 3, &s.raw), 0);
        assert_int_equal(cairn_meta_scan_decode(&s), 0);
        for (size_t i = 0; i < s.n; i++) {
            const cairn_meta_scan_entry_t *e = &s.entries[i];
            assert_int_equal(e->bucket_len, 0);
            assert_int_equal(e->key_len, 16);
            assert_memory_equal(e->key, e->rec.oid, 16);
            int j;
            for (j = 0; j < 4; j++) {
                uint8_t oid[16];
                mkoid(oid, 200 + j);
                if (memcmp(oid, e->rec.oid, 16) == 0)
                    break;
            }
            assert_true(j < 4);
            assert_int_equal(seen[j], 0);
            seen[j] = 1;
            total++;
        }
        memcpy(cur, s.cursor, s.cursor_len);
        cur_len = s.cursor_len;
    } while (s.more);
    assert_int_equal(total, 4);
    cairn_meta_scan_dispose(&s);
}

/* ---- job state ---- */

static int kv_put(fx_t *x, const char *name, const void *v, size_t len)
{
    cairn_buf_put_str(&x->body, name);
    cairn_buf_put_bytes(&x->body, v, len);
    int st = run_body(x, META_CMD_KV_PUT);
    if (st == 0) {
        const uint8_t *p;
        size_t n;
        meta_fsm_result(&x->res, &p, &n);
        assert_int_equal(n, 0);
    }
    return st;
}

/* KV_GET: status; the value into x->out's decoded view. */
static int kv_get(fx_t *x, const char *name, const uint8_t **v, size_t *len)
{
    cairn_buf_reset(&x->out);
    int rc = meta_fsm_kv_get(x->f, (const uint8_t *)name, strlen(name), &x->out);
    if (rc != 0) {
        assert_int_equal(x->out.len, 0);
        return rc;
    }
    cairn_dec_t d;
    cairn_dec_init(&d, x->out.base, x->out.len);
    cairn_dec_bytes(&d, v, len);
    assert_int_equal(d.err, 0);
    assert_int_equal(cairn_dec_left(&d), 0);
    return 0;
}

static void test_kv(void **state)
{
    fx_t *x = *state;
    const uint8_t *v;
    size_t n;
    assert_int_equal(kv_get(x, "rebalance", &v, &n), CAIRN_ENOTFOUND);
    assert_int_equal(kv_put(x, "rebalance", "cursor-1", 8), 0);
    assert_int_equal(kv_put(x, "repair", "\0\1\2", 3), 0);
    assert_int_equal(kv_get(x, "rebalance", &v, &n), 0);
    assert_int_equal(n, 8);
    assert_memory_equal(v, "cursor-1", 8);
    assert_int_equal(kv_put(x, "rebalance", "cursor-22", 9), 0);
    assert_int_equal(kv_get(x, "rebalance", &v, &n), 0);
    assert_int_equal(n, 9);
    assert_memory_equal(v, "cursor-22", 9);
    assert_int_equal(kv_get(x, "repair", &v, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(v, "\0\1\2", 3);

    /* An empty value deletes; deleting what is not there is fine. */
    assert_int_equal(kv_put(x, "rebalance", "", 0), 0);
    assert_int_equal(kv_get(x, "rebalance", &v, &n), CAIRN_ENOTFOUND);
    assert_int_equal(kv_put(x, "rebalance", "", 0), 0);
    assert_int_equal(kv_get(x, "repair", &v, &n), 0);

    /* Limits: a name of 1..64 bytes, a value of at most 4096. */
    static uint8_t big[CAIRN_KV_VALUE_MAX + 1];
    assert_int_equal(kv_put(x, "max", big, CAIRN_KV_VALUE_MAX), 0);
    assert_int_equal(kv_get(x, "max", &v, &n), 0);
    assert_int_equal(n, CAIRN_KV_VALUE_MAX);
    assert_int_equal(kv_put(x, "max", big, sizeof big), CAIRN_EINVAL);
    assert_int_equal(kv_get(x, "max", &v, &n), 0);
    assert_int_equal(n, CAIRN_KV_VALUE_MAX);
    char name[CAIRN_KV_NAME_MAX + 2];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    assert_int_equal(kv_put(x, name, "v", 1), CAIRN_EINVAL);
    assert_int_equal(kv_get(x, name, &v, &n), CAIRN_EINVAL);
    name[CAIRN_KV_NAME_MAX] = '\0';
    assert_int_equal(kv_put(x, name, "v", 1), 0);
    assert_int_equal(kv_get(x, name, &v, &n), 0);
    assert_int_equal(kv_put(x, "", "v", 1), CAIRN_EINVAL);

    /* Job state lives beside the map and does not touch it. */
    assert_int_equal(epoch_of(x), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_map_init, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_add, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_set_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relocate_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relocate_multipart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_probe, setup_probe, teardown),
        cmocka_unit_test_setup_teardown(test_scan_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
