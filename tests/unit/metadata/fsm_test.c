/*
 * fsm_test.c — the metadata state machine, driven through meta_fsm_apply()
 * and the read functions, on a scratch LMDB directory.
 *
 * The listing is checked against a slow reference: all keys sorted in memory,
 * mapped to Contents / CommonPrefixes by the S3 rules, paged through with
 * every combination of prefix, delimiter, start_after and max_keys the
 * seeded generator produces. The key set is built to stress the long-key
 * layout: groups of keys longer than META_FSM_SHORT_KEY sharing their first
 * 439 bytes, delimiters on both sides of that boundary, 0xFF and NUL bytes,
 * UTF-8, and neighbouring buckets whose keys sort right next to the tested
 * one.
 */
#include "cairn/err.h"
#define FX_TMPDIR "/tmp/cairn-fsm-test.XXXXXX"
#define FX_RUN_CHECKS
#include "fsm_fixture.h"

/* ---- commands ---- */

static int bucket_delete(fx_t *x, const char *b, const char *owner)
{
    meta_cmd_bucket_delete(&x->cmd, b, strlen(b), owner, strlen(owner));
    return run(x);
}

/* A record whose fields derive from seed, so a reader can check it. */
static void make_rec(uint64_t seed, cairn_buf_t *out)
{
    cairn_obj_rec_t r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 16; i++)
        r.oid[i] = (uint8_t)(seed >> (8 * (i % 8))) ^ (uint8_t)i;
    r.size = seed * 7;
    r.mtime_ms = (int64_t)(1700000000000 + seed);
    snprintf(r.etag, sizeof r.etag, "e%llx", (unsigned long long)seed);
    r.k = 4;
    r.m = 2;
    r.block_size = 1 << 18;
    for (int i = 0; i < 6; i++)
        r.nodes[i] = (uint32_t)(i + 1);
    r.content_type = "text/plain";
    r.content_type_len = 10;
    cairn_buf_reset(out);
    cairn_obj_rec_encode(&r, out);
}

static void oid_of(uint64_t seed, uint8_t oid[16])
{
    for (int i = 0; i < 16; i++)
        oid[i] = (uint8_t)(seed >> (8 * (i % 8))) ^ (uint8_t)i;
}

/* Put key with the record of seed. Returns the status; *old_seed_size gets
 * the old record's size (or -1 when there was none). */
static int obj_put(fx_t *x, const char *b, const uint8_t *k, size_t kl, uint64_t seed, int64_t *old_size)
{
    cairn_buf_t r;
    cairn_buf_init(&r);
    make_rec(seed, &r);
    meta_cmd_obj_put(&x->cmd, b, strlen(b), k, kl, r.base, r.len);
    cairn_buf_dispose(&r);
    int st = run(x);
    if (old_size)
        *old_size = -1;
    if (st != 0)
        return st;
    size_t n;
    const uint8_t *p = payload(x, &n);
    assert_true(n >= 1);
    if (p[0] == 1 && old_size) {
        cairn_dec_t d;
        const uint8_t *rp;
        size_t rl;
        cairn_obj_rec_t old;
        cairn_dec_init(&d, p + 1, n - 1);
        cairn_dec_bytes(&d, &rp, &rl);
        assert_int_equal(d.err, 0);
        assert_int_equal(cairn_obj_rec_decode(rp, rl, &old), 0);
        *old_size = (int64_t)old.size;
    }
    return 0;
}

static int obj_delete(fx_t *x, const char *b, const uint8_t *k, size_t kl)
{
    meta_cmd_obj_delete(&x->cmd, b, strlen(b), k, kl);
    return run(x);
}

/* Get: status, and on success the record's size. */
static int obj_get(fx_t *x, const char *b, const uint8_t *k, size_t kl, uint64_t *size)
{
    cairn_buf_reset(&x->out);
    int rc = meta_fsm_obj_get(x->f, b, strlen(b), k, kl, &x->out);
    if (rc != 0) {
        assert_int_equal(x->out.len, 0);
        return rc;
    }
    cairn_dec_t d;
    const uint8_t *rp;
    size_t rl;
    cairn_obj_rec_t r;
    cairn_dec_init(&d, x->out.base, x->out.len);
    cairn_dec_bytes(&d, &rp, &rl);
    assert_int_equal(d.err, 0);
    assert_int_equal(cairn_dec_left(&d), 0);
    assert_int_equal(cairn_obj_rec_decode(rp, rl, &r), 0);
    *size = r.size;
    return 0;
}

static size_t gc_count(fx_t *x)
{
    uint8_t after[16] = {0};
    size_t total = 0;
    for (;;) {
        cairn_buf_reset(&x->out);
        assert_int_equal(meta_fsm_gc_list(x->f, after, 3, &x->out), 0);
        cairn_dec_t d;
        cairn_dec_init(&d, x->out.base, x->out.len);
        uint32_t n = cairn_dec_u32(&d);
        for (uint32_t i = 0; i < n; i++) {
            uint8_t oid[16];
            const uint8_t *rp;
            size_t rl;
            cairn_obj_rec_t r;
            cairn_dec_raw(&d, oid, 16);
            cairn_dec_bytes(&d, &rp, &rl);
            assert_int_equal(cairn_obj_rec_decode(rp, rl, &r), 0);
            assert_memory_equal(oid, r.oid, 16);
            assert_true(memcmp(oid, after, 16) > 0);
            memcpy(after, oid, 16);
        }
        int more = cairn_dec_u8(&d);
        assert_int_equal(d.err, 0);
        assert_int_equal(cairn_dec_left(&d), 0);
        total += n;
        if (!more)
            return total;
        assert_int_equal(n, 3);
    }
}

static int gc_done(fx_t *x, uint64_t seed)
{
    uint8_t oid[16];
    oid_of(seed, oid);
    meta_cmd_gc_done(&x->cmd, oid);
    return run(x);
}

/* ---- users and buckets ---- */

static void test_users(void **state)
{
    fx_t *x = *state;
    assert_int_equal(meta_fsm_user_get(x->f, "AK", 2, &x->out), CAIRN_ENOSUCHUSER);
    meta_cmd_user_put(&x->cmd, "AK", 2, "secret", 6, "AK", 2, "cairn", 5);
    assert_int_equal(run(x), 0);
    cairn_buf_reset(&x->out);
    assert_int_equal(meta_fsm_user_get(x->f, "AK", 2, &x->out), 0);
    cairn_dec_t d;
    const uint8_t *s, *o, *dn;
    size_t sl, ol, dl;
    cairn_dec_init(&d, x->out.base, x->out.len);
    cairn_dec_bytes(&d, &s, &sl);
    cairn_dec_bytes(&d, &o, &ol);
    cairn_dec_bytes(&d, &dn, &dl);
    assert_int_equal(d.err, 0);
    assert_int_equal(sl, 6);
    assert_memory_equal(s, "secret", 6);
    assert_int_equal(ol, 2);
    assert_int_equal(dl, 5);
    /* overwrite */
    meta_cmd_user_put(&x->cmd, "AK", 2, "other", 5, "AK", 2, "cairn", 5);
    assert_int_equal(run(x), 0);
    cairn_buf_reset(&x->out);
    assert_int_equal(meta_fsm_user_get(x->f, "AK", 2, &x->out), 0);
    assert_int_equal(cairn_le32_get(x->out.base), 5);
    /* empty access key is refused */
    meta_cmd_user_put(&x->cmd, "", 0, "s", 1, "o", 1, "", 0);
    assert_int_equal(run(x), CAIRN_EINVAL);
}

static void test_buckets(void **state)
{
    fx_t *x = *state;
    char name64[65];
    memset(name64, 'a', 64);
    name64[64] = '\0';
    assert_int_equal(bucket_create(x, "", "alice"), CAIRN_EINVAL);
    assert_int_equal(bucket_create(x, name64, "alice"), CAIRN_EINVAL);
    name64[63] = '\0';
    assert_int_equal(bucket_create(x, name64, "alice"), 0);

    assert_int_equal(bucket_create(x, "photos", "alice"), 0);
    assert_int_equal(bucket_create(x, "photos", "alice"), CAIRN_EOWNED);
    assert_int_equal(bucket_create(x, "photos", "bob"), CAIRN_EEXIST);
    assert_int_equal(bucket_create(x, "b2", "bob"), 0);
    assert_int_equal(bucket_create(x, "a1", "alice"), 0);

    cairn_buf_reset(&x->out);
    assert_int_equal(meta_fsm_bucket_head(x->f, "photos", 6, &x->out), 0);
    cairn_dec_t d;
    cairn_bucket_rec_t r;
    cairn_dec_init(&d, x->out.base, x->out.len);
    assert_int_equal(cairn_bucket_rec_decode(&d, &r), 0);
    assert_int_equal(cairn_dec_left(&d), 0);
    assert_int_equal(r.name_len, 6);
    assert_memory_equal(r.owner, "alice", 5);
    assert_int_equal(r.ctime_ms, 1700000000000);
    cairn_buf_reset(&x->out);
    assert_int_equal(meta_fsm_bucket_head(x->f, "nope", 4, &x->out), CAIRN_EBUCKET);
    assert_int_equal(x->out.len, 0);

    /* list of alice: a1, aaa..., photos (sorted) */
    cairn_buf_reset(&x->out);
    assert_int_equal(meta_fsm_bucket_list(x->f, "alice", 5, &x->out), 0);
    cairn_dec_init(&d, x->out.base, x->out.len);
    assert_int_equal(cairn_dec_u32(&d), 3);
    const char *want[] = {"a1", name64, "photos"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cairn_bucket_rec_decode(&d, &r), 0);
        assert_int_equal(r.name_len, strlen(want[i]));
        assert_memory_equal(r.name, want[i], r.name_len);
    }
    assert_int_equal(cairn_dec_left(&d), 0);
    cairn_buf_reset(&x->out);
    assert_int_equal(meta_fsm_bucket_list(x->f, "carol", 5, &x->out), 0);
    assert_int_equal(x->out.len, 4);
    assert_int_equal(cairn_le32_get(x->out.base), 0);

    /* delete: not empty (short key, then only a long key), other owner, missing */
    assert_int_equal(obj_put(x, "photos", K("cat.jpg"), 1, NULL), 0);
    assert_int_equal(bucket_delete(x, "photos", "alice"), CAIRN_ENOTEMPTY);
    assert_int_equal(bucket_delete(x, "photos", "bob"), CAIRN_EEXIST);
    assert_int_equal(obj_delete(x, "photos", K("cat.jpg")), 0);
    uint8_t longkey[700];
    memset(longkey, 'q', sizeof longkey);
    assert_int_equal(obj_put(x, "photos", longkey, sizeof longkey, 2, NULL), 0);
    assert_int_equal(bucket_delete(x, "photos", "alice"), CAIRN_ENOTEMPTY);
    assert_int_equal(obj_delete(x, "photos", longkey, sizeof longkey), 0);
    /* an object in a bucket whose name extends this one does not count */
    assert_int_equal(bucket_create(x, "photosX", "alice"), 0);
    assert_int_equal(obj_put(x, "photosX", K("k"), 3, NULL), 0);
    assert_int_equal(bucket_delete(x, "photos", "alice"), 0);
    assert_int_equal(bucket_delete(x, "photos", "alice"), CAIRN_EBUCKET);
    assert_int_equal(meta_fsm_bucket_head(x->f, "photos", 6, &x->out), CAIRN_EBUCKET);
    assert_int_equal(bucket_create(x, "photos", "bob"), 0);
}

/* ---- objects and the garbage list ---- */

static void test_objects_gc(void **state)
{
    fx_t *x = *state;
    uint64_t size;
    int64_t old;
    assert_int_equal(obj_put(x, "nob", K("k"), 1, NULL), CAIRN_EBUCKET);
    assert_int_equal(obj_get(x, "nob", K("k"), &size), CAIRN_EBUCKET);
    assert_int_equal(obj_delete(x, "nob", K("k")), CAIRN_EBUCKET);
    assert_int_equal(bucket_create(x, "b", "o"), 0);
    assert_int_equal(obj_get(x, "b", K("k"), &size), CAIRN_ENOTFOUND);
    assert_int_equal(obj_delete(x, "b", K("k")), CAIRN_ENOTFOUND);
    assert_int_equal(obj_get(x, "b", (const uint8_t *)"", 0, &size), CAIRN_EINVAL);

    assert_int_equal(obj_put(x, "b", K("k"), 10, &old), 0);
    assert_int_equal(old, -1);
    assert_int_equal(obj_get(x, "b", K("k"), &size), 0);
    assert_int_equal(size, 70);
    assert_int_equal(gc_count(x), 0);

    /* overwrite: old returned and queued */
    assert_int_equal(obj_put(x, "b", K("k"), 11, &old), 0);
    assert_int_equal(old, 70);
    assert_int_equal(obj_get(x, "b", K("k"), &size), 0);
    assert_int_equal(size, 77);
    assert_int_equal(gc_count(x), 1);

    /* the same version again (a retried command): nothing to collect */
    assert_int_equal(obj_put(x, "b", K("k"), 11, &old), 0);
    assert_int_equal(old, -1);
    assert_int_equal(gc_count(x), 1);

    /* delete: old returned and queued */
    assert_int_equal(obj_delete(x, "b", K("k")), 0);
    size_t n;
    const uint8_t *p = payload(x, &n);
    assert_true(n > 1 && p[0] == 1);
    assert_int_equal(obj_get(x, "b", K("k"), &size), CAIRN_ENOTFOUND);
    assert_int_equal(gc_count(x), 2);

    /* GC_DONE removes, and is idempotent */
    assert_int_equal(gc_done(x, 10), 0);
    assert_int_equal(gc_count(x), 1);
    assert_int_equal(gc_done(x, 10), 0);
    assert_int_equal(gc_done(x, 11), 0);
    assert_int_equal(gc_count(x), 0);

    /* many entries: paging of the garbage list */
    for (uint64_t i = 0; i < 20; i++)
        assert_int_equal(obj_put(x, "b", K("g"), 100 + i, NULL), 0);
    assert_int_equal(gc_count(x), 19);

    /* key length limits */
    uint8_t big[CAIRN_MAX_KEY_LEN + 1];
    memset(big, 'x', sizeof big);
    assert_int_equal(obj_put(x, "b", big, sizeof big, 1, NULL), CAIRN_EINVAL);
    assert_int_equal(obj_put(x, "b", big, CAIRN_MAX_KEY_LEN, 1, NULL), 0);
    assert_int_equal(obj_get(x, "b", big, CAIRN_MAX_KEY_LEN, &size), 0);
    assert_int_equal(obj_put(x, "b", (const uint8_t *)"", 0, 1, NULL), CAIRN_EINVAL);
}

/* OBJ_PUT_MANY: every item or none, results in order, old versions queued. */
static int obj_put_many(fx_t *x, const char *b, const char *const *keys, const uint64_t *seeds, uint32_t n)
{
    cairn_buf_t items, r;
    cairn_buf_init(&items);
    cairn_buf_init(&r);
    for (uint32_t i = 0; i < n; i++) {
        make_rec(seeds[i], &r);
        cairn_buf_put_bytes(&items, keys[i], strlen(keys[i]));
        cairn_buf_put_bytes(&items, r.base, r.len);
    }
    meta_cmd_obj_put_many(&x->cmd, b, strlen(b), n, items.base, items.len);
    cairn_buf_dispose(&items);
    cairn_buf_dispose(&r);
    return run(x);
}

static void test_obj_put_many(void **state)
{
    fx_t *x = *state;
    uint64_t size;
    const char *keys[] = {"a", "b", "c"};
    const uint64_t seeds[] = {1, 2, 3};
    assert_int_equal(obj_put_many(x, "nob", keys, seeds, 3), CAIRN_EBUCKET);
    assert_int_equal(bucket_create(x, "bk", "o"), 0);
    assert_int_equal(obj_put(x, "bk", K("b"), 20, NULL), 0);
    assert_int_equal(obj_put_many(x, "bk", keys, seeds, 3), 0);
    size_t n;
    const uint8_t *p = payload(x, &n);
    cairn_dec_t d;
    cairn_dec_init(&d, p, n);
    assert_int_equal(cairn_dec_u32(&d), 3);
    assert_int_equal(cairn_dec_u8(&d), 0); /* a: new */
    assert_int_equal(cairn_dec_u8(&d), 1); /* b: replaced seed 20 */
    const uint8_t *rp;
    size_t rl;
    cairn_obj_rec_t old;
    cairn_dec_bytes(&d, &rp, &rl);
    assert_int_equal(cairn_obj_rec_decode(rp, rl, &old), 0);
    assert_int_equal(old.size, 140);
    assert_int_equal(cairn_dec_u8(&d), 0); /* c: new */
    assert_int_equal(d.err, 0);
    assert_int_equal(cairn_dec_left(&d), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(obj_get(x, "bk", (const uint8_t *)keys[i], 1, &size), 0);
        assert_int_equal(size, seeds[i] * 7);
    }
    assert_int_equal(gc_count(x), 1);

    /* one bad item (an empty key) fails the command, and nothing of it stays */
    const char *bad[] = {"d", "", "e"};
    const uint64_t seeds2[] = {4, 5, 6};
    assert_int_equal(obj_put_many(x, "bk", bad, seeds2, 3), CAIRN_EINVAL);
    assert_int_equal(obj_get(x, "bk", K("d"), &size), CAIRN_ENOTFOUND);
    assert_int_equal(obj_get(x, "bk", K("e"), &size), CAIRN_ENOTFOUND);
    assert_int_equal(obj_put_many(x, "bk", keys, seeds, 0), CAIRN_EINVAL);

    /* a count beyond the items: malformed */
    cairn_buf_t items, r;
    cairn_buf_init(&items);
    cairn_buf_init(&r);
    make_rec(7, &r);
    cairn_buf_put_bytes(&items, "f", 1);
    cairn_buf_put_bytes(&items, r.base, r.len);
    meta_cmd_obj_put_many(&x->cmd, "bk", 2, 2, items.base, items.len);
    assert_int_equal(run(x), CAIRN_EPROTO);
    assert_int_equal(obj_get(x, "bk", K("f"), &size), CAIRN_ENOTFOUND);
    cairn_buf_dispose(&items);
    cairn_buf_dispose(&r);
}

/* ---- log semantics: skipping, command errors, malformed commands ---- */

static void test_replay_and_restart(void **state)
{
    fx_t *x = *state;
    assert_int_equal(bucket_create(x, "b", "o"), 0);
    assert_int_equal(obj_put(x, "b", K("k"), 1, NULL), 0);
    uint64_t applied = meta_fsm_applied(x->f);
    assert_int_equal(applied, 2);

    /* an entry replayed after a restart changes nothing and answers nothing */
    cairn_buf_t r;
    cairn_buf_init(&r);
    make_rec(99, &r);
    meta_cmd_obj_put(&x->cmd, "b", 1, K("k"), r.base, r.len);
    assert_int_equal(meta_fsm_apply(x->f, 2, x->cmd.base, x->cmd.len, &x->res), 0);
    assert_int_equal(x->res.len, 0);
    assert_int_equal(meta_fsm_apply(x->f, 1, x->cmd.base, x->cmd.len, &x->res), 0);
    assert_int_equal(x->res.len, 0);
    uint64_t size;
    assert_int_equal(obj_get(x, "b", K("k"), &size), 0);
    assert_int_equal(size, 7);
    assert_int_equal(gc_count(x), 0);

    /* indices may jump (Raft entries that are not commands) */
    assert_int_equal(meta_fsm_apply(x->f, 10, x->cmd.base, x->cmd.len, &x->res), 0);
    assert_int_equal(meta_fsm_applied(x->f), 10);
    assert_int_equal(obj_get(x, "b", K("k"), &size), 0);
    assert_int_equal(size, 99 * 7);
    cairn_buf_reset(&x->cmd);
    cairn_buf_dispose(&r);

    /* restart: state and applied index persist */
    meta_fsm_destroy(x->f);
    fx_open(x);
    assert_int_equal(meta_fsm_applied(x->f), 10);
    assert_int_equal(obj_get(x, "b", K("k"), &size), 0);
    assert_int_equal(size, 99 * 7);
    assert_int_equal(gc_count(x), 1);

    /* after shutdown, calls answer EUNAVAIL */
    meta_fsm_shutdown(x->f);
    assert_int_equal(obj_get(x, "b", K("k"), &size), CAIRN_EUNAVAIL);
    uint8_t oid[16] = {1};
    meta_cmd_gc_done(&x->cmd, oid);
    assert_int_equal(meta_fsm_apply(x->f, 11, x->cmd.base, x->cmd.len, &x->res), CAIRN_EUNAVAIL);
    cairn_buf_reset(&x->cmd);
    meta_fsm_destroy(x->f);
    fx_open(x);
    assert_int_equal(meta_fsm_applied(x->f), 10);
}

/* ---- command ids: a retried command applies once ---- */

/* Apply an OBJ_PUT of seed's record under command id `id` (16 bytes) at
 * the next index, stamped now_ms. Returns the status; *had_old the answer's
 * flag and *old_size the old record's size when it has one. */
static int put_once(fx_t *x, const uint8_t *id, int64_t now_ms, const char *key, uint64_t seed, int *had_old,
                    int64_t *old_size)
{
    cairn_buf_t r;
    cairn_buf_init(&r);
    make_rec(seed, &r);
    meta_cmd_obj_put(&x->cmd, "b", 1, K(key), r.base, r.len);
    cairn_buf_dispose(&r);
    assert_int_equal(meta_fsm_apply_once(x->f, ++x->idx, id, now_ms, x->cmd.base, x->cmd.len, &x->res), 0);
    cairn_buf_reset(&x->cmd);
    assert_int_equal(meta_fsm_applied(x->f), x->idx);
    const uint8_t *p;
    size_t n;
    int st = meta_fsm_result(&x->res, &p, &n);
    *had_old = n > 0 && p[0] == 1;
    *old_size = -1;
    if (st == 0 && *had_old) {
        cairn_dec_t d;
        const uint8_t *rp;
        size_t rl;
        cairn_obj_rec_t old;
        cairn_dec_init(&d, p + 1, n - 1);
        cairn_dec_bytes(&d, &rp, &rl);
        assert_int_equal(cairn_obj_rec_decode(rp, rl, &old), 0);
        *old_size = (int64_t)old.size;
    }
    return st;
}

static void test_command_ids(void **state)
{
    fx_t *x = *state;
    uint8_t a[16] = {1}, b[16] = {2}, c[16] = {3};
    int64_t t = 1700000000000, old;
    int had;
    uint64_t size;
    assert_int_equal(bucket_create(x, "b", "o"), 0);
    assert_int_equal(put_once(x, a, t, "k", 1, &had, &old), 0);
    assert_int_equal(had, 0);
    assert_int_equal(put_once(x, b, t + 1, "k", 2, &had, &old), 0);
    assert_int_equal(had, 1);
    assert_int_equal(old, 7);
    assert_int_equal(gc_count(x), 1);

    /* b again (its first attempt did commit): the first answer, no change */
    assert_int_equal(put_once(x, b, t + 2, "k", 2, &had, &old), 0);
    assert_int_equal(had, 1);
    assert_int_equal(old, 7);
    assert_int_equal(gc_count(x), 1);
    /* a again, late: must not bring version 1 back */
    assert_int_equal(put_once(x, a, t + 3, "k", 1, &had, &old), 0);
    assert_int_equal(had, 0);
    assert_int_equal(obj_get(x, "b", K("k"), &size), 0);
    assert_int_equal(size, 14);
    assert_int_equal(gc_count(x), 1);

    /* a command-level failure is remembered too */
    meta_cmd_obj_put(&x->cmd, "nob", 3, K("k"), (const uint8_t *)"", 0);
    assert_int_equal(meta_fsm_apply_once(x->f, ++x->idx, c, t + 4, x->cmd.base, x->cmd.len, &x->res), 0);
    const uint8_t *p;
    size_t n;
    assert_int_equal(meta_fsm_result(&x->res, &p, &n), CAIRN_EPROTO);
    assert_int_equal(meta_fsm_apply_once(x->f, ++x->idx, c, t + 5, x->cmd.base, x->cmd.len, &x->res), 0);
    assert_int_equal(meta_fsm_result(&x->res, &p, &n), CAIRN_EPROTO);
    cairn_buf_reset(&x->cmd);

    /* ids survive a restart */
    meta_fsm_destroy(x->f);
    fx_open(x);
    assert_int_equal(put_once(x, b, t + 6, "k", 2, &had, &old), 0);
    assert_int_equal(had, 1);
    assert_int_equal(old, 7);
    assert_int_equal(gc_count(x), 1);

    /* ... and are forgotten after META_FSM_DEDUP_MS: then b applies again
     * (the same version, so nothing new for the garbage list) */
    int64_t later = t + META_FSM_DEDUP_MS + 10;
    uint8_t d[16] = {4};
    assert_int_equal(put_once(x, d, later, "other", 5, &had, &old), 0);
    assert_int_equal(put_once(x, b, later + 1, "k", 3, &had, &old), 0);
    assert_int_equal(had, 1);
    assert_int_equal(old, 14);
    assert_int_equal(obj_get(x, "b", K("k"), &size), 0);
    assert_int_equal(size, 21);
}

/* Pruning is bounded per command but keeps up: thousands of expired ids go
 * away as new commands arrive, and live ones stay. */
static void test_command_ids_prune(void **state)
{
    fx_t *x = *state;
    int64_t t = 1700000000000, old;
    int had;
    assert_int_equal(bucket_create(x, "b", "o"), 0);
    for (uint32_t i = 0; i < 3000; i++) {
        uint8_t id[16] = {0};
        memcpy(id, &i, sizeof i);
        id[15] = 0xee;
        assert_int_equal(put_once(x, id, t + i, "k", 1 + (i & 1), &had, &old), 0);
    }
    /* well past the window: every insertion prunes up to 64 */
    for (uint32_t i = 0; i < 60; i++) {
        uint8_t id[16] = {0};
        memcpy(id, &i, sizeof i);
        id[15] = 0xdd;
        assert_int_equal(put_once(x, id, t + META_FSM_DEDUP_MS + 5000 + i, "k", 7, &had, &old), 0);
    }
    /* an old id is new again; a recent one is still known */
    uint8_t first[16] = {0};
    first[15] = 0xee;
    assert_int_equal(put_once(x, first, t + META_FSM_DEDUP_MS + 6000, "k", 8, &had, &old), 0);
    assert_int_equal(old, 49); /* applied: the old record was seed 7's */
    uint8_t recent[16] = {0};
    uint32_t i = 59;
    memcpy(recent, &i, sizeof i);
    recent[15] = 0xdd;
    assert_int_equal(put_once(x, recent, t + META_FSM_DEDUP_MS + 6001, "k", 9, &had, &old), 0);
    assert_int_equal(had, 0); /* the stored answer of its first apply (seed 7 over seed 7) */
    uint64_t size;
    assert_int_equal(obj_get(x, "b", K("k"), &size), 0);
    assert_int_equal(size, 56); /* still seed 8's */
}

/* ---- replicas and snapshots ---- */

static void test_replicas(void **state)
{
    fx_t *x = *state;
    char a[128], ra[128];
    assert_int_equal(meta_fsm_replica_get(x->f, 4, a, ra), CAIRN_ENOTFOUND);
    meta_cmd_replica_put(&x->cmd, 4, "10.0.0.4:7000", "10.0.0.4:7100");
    assert_int_equal(run(x), 0);
    assert_int_equal(meta_fsm_replica_get(x->f, 4, a, ra), 0);
    assert_string_equal(a, "10.0.0.4:7000");
    assert_string_equal(ra, "10.0.0.4:7100");
    meta_cmd_replica_put(&x->cmd, 4, "10.0.0.5:7000", "10.0.0.5:7100");
    assert_int_equal(run(x), 0);
    assert_int_equal(meta_fsm_replica_get(x->f, 4, a, ra), 0);
    assert_string_equal(a, "10.0.0.5:7000");
    meta_cmd_replica_put(&x->cmd, 0, "a:1", "b:2");
    assert_int_equal(run(x), CAIRN_EINVAL);
    meta_cmd_replica_put(&x->cmd, 5, "", "b:2");
    assert_int_equal(run(x), CAIRN_EINVAL);
}

/* Copy the database, change it, then put the copy back: the state and the
 * applied index are the copy's again. */
static void test_copy_replace(void **state)
{
    fx_t *x = *state;
    uint64_t size;
    assert_int_equal(bucket_create(x, "b", "o"), 0);
    for (uint64_t i = 0; i < 500; i++) {
        char k[32];
        snprintf(k, sizeof k, "key-%04llu", (unsigned long long)i);
        assert_int_equal(obj_put(x, "b", K(k), i + 1, NULL), 0);
    }
    uint64_t at = meta_fsm_applied(x->f);
    char path[128];
    snprintf(path, sizeof path, "%s/copy.mdb", x->dir);
    FILE *fp = fopen(path, "w+");
    assert_non_null(fp);
    assert_int_equal(meta_fsm_copy(x->f, fileno(fp)), 0);
    fclose(fp);
    uint64_t img = 0;
    assert_int_equal(meta_fsm_image_applied(path, &img), 0);
    assert_int_equal(img, at);

    assert_int_equal(obj_delete(x, "b", K("key-0007")), 0);
    assert_int_equal(obj_put(x, "b", K("new"), 9, NULL), 0);
    assert_int_equal(meta_fsm_applied(x->f), at + 2);

    assert_int_equal(meta_fsm_replace(x->f, path), 0);
    assert_int_equal(access(path, F_OK), -1); /* moved into place */
    assert_int_equal(meta_fsm_applied(x->f), at);
    assert_int_equal(obj_get(x, "b", K("key-0007"), &size), 0);
    assert_int_equal(size, 8 * 7);
    assert_int_equal(obj_get(x, "b", K("new"), &size), CAIRN_ENOTFOUND);
    x->idx = at;
    assert_int_equal(obj_put(x, "b", K("after"), 3, NULL), 0); /* still writable */

    /* not a database */
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("definitely not an LMDB file, but long enough to hold a header or two.............", fp);
    fclose(fp);
    assert_int_equal(meta_fsm_image_applied(path, &img), CAIRN_ECORRUPT);
    unlink(path);
}

static void test_command_errors(void **state)
{
    fx_t *x = *state;
    /* a command-level error consumes its index and changes nothing */
    assert_int_equal(obj_put(x, "nob", K("k"), 1, NULL), CAIRN_EBUCKET);
    assert_int_equal(meta_fsm_applied(x->f), 1);
    assert_int_equal(x->res.len, 4);

    /* malformed: each one is answered CAIRN_EPROTO, apply still returns 0 */
    uint8_t bad[64];
    memset(bad, 0, sizeof bad);
    struct {
        const uint8_t *p;
        size_t n;
    } cases[8];
    int nc = 0;
    cases[nc++] = (typeof(cases[0])){bad, 0};       /* empty */
    bad[0] = 77;
    cases[nc++] = (typeof(cases[0])){bad, 8};       /* unknown type */

    cairn_buf_t c1, c2, c3;
    cairn_buf_init(&c1);
    cairn_buf_init(&c2);
    cairn_buf_init(&c3);
    meta_cmd_bucket_create(&c1, "bkt", 3, "o", 1, 5);
    cases[nc++] = (typeof(cases[0])){c1.base, c1.len - 8}; /* truncated */
    cases[nc++] = (typeof(cases[0])){c1.base, c1.len - 1}; /* not padded */
    meta_cmd_bucket_create(&c2, "bkt", 3, "o", 1, 5);
    c2.base[c2.len - 1] = 1;
    cases[nc++] = (typeof(cases[0])){c2.base, c2.len}; /* nonzero padding */
    meta_cmd_bucket_create(&c3, "bkt", 3, "o", 1, 5);
    cairn_buf_append(&c3, bad + 1, 8);
    cases[nc++] = (typeof(cases[0])){c3.base, c3.len}; /* padding too long */
    for (int i = 0; i < nc; i++) {
        assert_int_equal(meta_fsm_apply(x->f, ++x->idx, cases[i].p, cases[i].n, &x->res), 0);
        const uint8_t *p;
        size_t n;
        assert_int_equal(meta_fsm_result(&x->res, &p, &n), CAIRN_EPROTO);
        assert_int_equal(n, 0);
    }
    assert_int_equal(meta_fsm_bucket_head(x->f, "bkt", 3, &x->out), CAIRN_EBUCKET);
    /* the well-formed one works */
    assert_int_equal(meta_fsm_apply(x->f, ++x->idx, c1.base, c1.len, &x->res), 0);
    assert_int_equal(cairn_le32_get(x->res.base), 0);
    assert_int_equal(meta_fsm_applied(x->f), x->idx);

    /* a record that does not decode */
    meta_cmd_obj_put(&x->cmd, "bkt", 3, K("k"), bad, 5);
    assert_int_equal(run(x), CAIRN_EPROTO);
    cairn_buf_dispose(&c1);
    cairn_buf_dispose(&c2);
    cairn_buf_dispose(&c3);
}

/* Every commit synced (the service's mode): a short smoke test. */
static void test_sync_mode(void **state)
{
    fx_t *x = *state;
    assert_int_equal(bucket_create(x, "b", "o"), 0);
    for (uint64_t i = 0; i < 5; i++)
        assert_int_equal(obj_put(x, "b", K("k"), i, NULL), 0);
    meta_fsm_destroy(x->f);
    fx_open(x);
    uint64_t size;
    assert_int_equal(obj_get(x, "b", K("k"), &size), 0);
    assert_int_equal(size, 4 * 7);
}

/* ---- reference listing ---- */

typedef struct {
    uint8_t *p;
    size_t n;
    uint64_t seed; /* record of the key */
} str_t;

typedef struct {
    const uint8_t *p;
    size_t n;
    int is_prefix;
} item_t;

static int str_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an < bn ? -1 : an > bn);
}

static int str_qcmp(const void *a, const void *b)
{
    const str_t *x = a, *y = b;
    return str_cmp(x->p, x->n, y->p, y->n);
}

/* All items of the listing from start_after on, unlimited. */
static size_t naive_list(const str_t *keys, size_t nkeys, const uint8_t *pf, size_t pl, const uint8_t *dl, size_t dlen,
                         const uint8_t *sa, size_t sal, item_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < nkeys; i++) {
        const str_t *k = &keys[i];
        if (str_cmp(k->p, k->n, sa, sal) <= 0)
            continue;
        if (k->n < pl || memcmp(k->p, pf, pl) != 0)
            continue;
        const uint8_t *hit = dlen ? memmem(k->p + pl, k->n - pl, dl, dlen) : NULL;
        if (!hit) {
            out[n++] = (item_t){k->p, k->n, 0};
            continue;
        }
        size_t cl = (size_t)(hit - k->p) + dlen;
        if (sal && str_cmp(k->p, cl, sa, sal) <= 0)
            continue;
        if (n > 0 && out[n - 1].is_prefix && out[n - 1].n == cl && memcmp(out[n - 1].p, k->p, cl) == 0)
            continue;
        out[n++] = (item_t){k->p, cl, 1};
    }
    return n;
}

/* Page through the fsm listing, checking each page, and compare the
 * concatenation with the reference. */
static void check_listing(fx_t *x, const char *bucket, const str_t *keys, size_t nkeys, const uint8_t *pf, size_t pl,
                          const uint8_t *dl, size_t dlen, const uint8_t *sa, size_t sal, uint32_t max_keys,
                          item_t *want, uint8_t *buf)
{
    size_t nwant = naive_list(keys, nkeys, pf, pl, dl, dlen, sa, sal, want);
    uint32_t eff = max_keys > META_FSM_MAX_LIST ? META_FSM_MAX_LIST : max_keys;
    cairn_meta_list_t l;
    cairn_meta_list_init(&l);
    cairn_meta_list_req_t q = {.bucket = bucket,
                               .prefix = (const char *)pf,
                               .prefix_len = pl,
                               .delimiter = (const char *)dl,
                               .delimiter_len = dlen,
                               .max_keys = max_keys};
    uint8_t *cur_sa = buf; /* start_after of the current page (a copy: the previous response is reused) */
    memcpy(cur_sa, sa, sal);
    size_t cur_sal = sal;
    size_t got = 0;
    for (int pages = 0;; pages++) {
        assert_true(pages <= 2000);
        q.start_after = (const char *)cur_sa;
        q.start_after_len = cur_sal;
        cairn_buf_reset(&l.raw);
        assert_int_equal(meta_fsm_obj_list(x->f, &q, &l.raw), 0);
        assert_int_equal(cairn_meta_list_decode(&l), 0);
        size_t ei = 0, pi = 0, cnt = l.nentries + l.nprefixes;
        assert_true(cnt <= eff);
        if (l.truncated)
            assert_int_equal(cnt, eff);
        /* merge entries and prefixes back into listing order */
        const uint8_t *last = NULL;
        size_t last_n = 0;
        while (ei < l.nentries || pi < l.nprefixes) {
            int take_prefix;
            if (ei == l.nentries)
                take_prefix = 1;
            else if (pi == l.nprefixes)
                take_prefix = 0;
            else
                take_prefix = str_cmp((const uint8_t *)l.prefixes[pi].p, l.prefixes[pi].len,
                                      (const uint8_t *)l.entries[ei].key, l.entries[ei].key_len) < 0;
            const uint8_t *p;
            size_t n;
            if (take_prefix) {
                p = (const uint8_t *)l.prefixes[pi].p;
                n = l.prefixes[pi].len;
                pi++;
            } else {
                const cairn_meta_list_entry_t *e = &l.entries[ei++];
                p = (const uint8_t *)e->key;
                n = e->key_len;
                /* the entry carries its record's fields */
                const str_t *k = bsearch(&(str_t){(uint8_t *)p, n, 0}, keys, nkeys, sizeof *keys, str_qcmp);
                assert_non_null(k);
                assert_int_equal(e->size, k->seed * 7);
                assert_int_equal(e->mtime_ms, (int64_t)(1700000000000 + k->seed));
                char etag[32];
                snprintf(etag, sizeof etag, "e%llx", (unsigned long long)k->seed);
                assert_string_equal(e->etag, etag);
            }
            if (got >= nwant)
                fail_msg("listing returned more items than the reference (%zu)", nwant);
            if (want[got].is_prefix != take_prefix || want[got].n != n || memcmp(want[got].p, p, n) != 0)
                fail_msg("item %zu differs (prefix %d vs %d, len %zu vs %zu)", got, want[got].is_prefix,
                         take_prefix, want[got].n, n);
            got++;
            last = p;
            last_n = n;
        }
        if (!l.truncated)
            break;
        if (eff == 0) {
            /* max_keys 0: truncated iff anything qualifies, nothing returned */
            assert_true(nwant > 0);
            assert_int_equal(l.next_len, 0);
            cairn_meta_list_dispose(&l);
            return;
        }
        assert_int_equal(l.next_len, last_n);
        assert_memory_equal(l.next, last, last_n);
        memcpy(cur_sa, l.next, l.next_len);
        cur_sal = l.next_len;
    }
    assert_int_equal(got, nwant);
    cairn_meta_list_dispose(&l);
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static const char *const pieces[] = {"a", "b", "/", "-", "\xff", "\xc3\xa9", "ab", "z", "/a", "0"};
#define NPIECES (sizeof pieces / sizeof pieces[0])

/* Random key into buf (cap 1024). Long keys grow from a few shared bases so
 * that groups of long keys share their first 439 bytes. */
static size_t gen_key(uint8_t *buf)
{
    size_t n = 0;
    unsigned r = (unsigned)(rnd() % 100);
    if (r < 30) {
        switch (rnd() % 6) {
        case 0: /* exactly the short limit, then more */
            memset(buf, 'L', 439);
            n = 439;
            break;
        case 1: /* a delimiter just before the boundary */
            memset(buf, 'M', 437);
            buf[437] = '/';
            n = 438;
            break;
        case 2: /* a delimiter just after it */
            memset(buf, 'N', 440);
            buf[440] = '/';
            n = 441;
            break;
        case 3:
            memset(buf, 0xff, 450);
            n = 450;
            break;
        case 4: /* a directory, then a long name */
            memcpy(buf, "a/", 2);
            memset(buf + 2, 'x', 600);
            n = 602;
            break;
        case 5: /* NUL bytes in the shared part */
            memset(buf, 'P', 439);
            buf[100] = 0;
            buf[438] = 0;
            n = 439;
            break;
        }
    }
    size_t np = 1 + rnd() % 6;
    for (size_t i = 0; i < np; i++) {
        const char *p = pieces[rnd() % NPIECES];
        size_t pl = strlen(p);
        if (rnd() % 23 == 0) { /* a rare NUL byte */
            p = "\0";
            pl = 1;
        }
        if (n + pl > CAIRN_MAX_KEY_LEN)
            break;
        memcpy(buf + n, p, pl);
        n += pl;
    }
    if (r >= 95 && n < CAIRN_MAX_KEY_LEN) { /* occasionally pad towards the maximum */
        size_t pad = rnd() % (CAIRN_MAX_KEY_LEN - n + 1);
        memset(buf + n, 'y', pad);
        n += pad;
    }
    return n;
}

/* A query string: empty, a prefix of an existing key, or random. */
static size_t gen_probe(const str_t *keys, size_t nkeys, uint8_t *buf, int allow_whole)
{
    unsigned r = (unsigned)(rnd() % 10);
    if (r < 3)
        return 0;
    if (r < 8 && nkeys > 0) {
        const str_t *k = &keys[rnd() % nkeys];
        size_t n = allow_whole && rnd() % 2 ? k->n : rnd() % (k->n + 1);
        memcpy(buf, k->p, n);
        if (r == 7 && n > 0 && n < CAIRN_MAX_KEY_LEN) /* just off an existing key */
            buf[n++] = (uint8_t)(rnd() % 2 ? 0 : 0xff);
        return n;
    }
    return gen_key(buf);
}

static void put_keys(fx_t *x, const char *bucket, str_t *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(obj_put(x, bucket, keys[i].p, keys[i].n, keys[i].seed, NULL), 0);
}

static size_t gen_keys(str_t *keys, size_t n, uint64_t seed0)
{
    uint8_t buf[CAIRN_MAX_KEY_LEN];
    for (size_t i = 0; i < n; i++) {
        size_t kl = gen_key(buf);
        if (kl == 0)
            buf[kl++] = 'e';
        keys[i].p = malloc(kl);
        memcpy(keys[i].p, buf, kl);
        keys[i].n = kl;
        keys[i].seed = seed0 + i;
    }
    qsort(keys, n, sizeof *keys, str_qcmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && str_qcmp(&keys[m - 1], &keys[i]) == 0) {
            free(keys[i].p);
            continue;
        }
        keys[m++] = keys[i];
    }
    return m;
}

static void free_keys(str_t *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i].p);
}

static void run_queries(fx_t *x, const str_t *keys, size_t nkeys, int nq)
{
    static const struct {
        const char *p;
        size_t n;
    } delims[] = {{"", 0}, {"", 0}, {"/", 1}, {"/", 1}, {"-", 1}, {"ab", 2}, {"\xff", 1},
                  {"a", 1}, {"/a", 2}, {"\xc3\xa9", 2}, {"\0", 1}};
    static const uint32_t maxes[] = {0, 1, 2, 3, 7, 50, 1000, 5000};
    item_t *want = malloc((nkeys + 1) * sizeof *want);
    uint8_t *sabuf = malloc(CAIRN_MAX_KEY_LEN);
    uint8_t pf[CAIRN_MAX_KEY_LEN + 1], sa[CAIRN_MAX_KEY_LEN + 1];
    for (int i = 0; i < nq; i++) {
        size_t pl = gen_probe(keys, nkeys, pf, 0);
        size_t sal = gen_probe(keys, nkeys, sa, 1);
        size_t di = rnd() % (sizeof delims / sizeof delims[0]);
        uint32_t mk = maxes[rnd() % (sizeof maxes / sizeof maxes[0])];
        check_listing(x, "bk", keys, nkeys, pf, pl, (const uint8_t *)delims[di].p, delims[di].n, sa, sal, mk, want,
                      sabuf);
    }
    free(want);
    free(sabuf);
}

static void test_list_random(void **state)
{
    fx_t *x = *state;
    rng_state = 0x9e3779b97f4a7c15ull;
    /* the tested bucket and neighbours whose keys sort right around it:
     * "bj\0..." < "bk\0..." < "bk\x01\0..." */
    assert_int_equal(bucket_create(x, "bk", "o"), 0);
    assert_int_equal(bucket_create(x, "bj", "o"), 0);
    assert_int_equal(bucket_create(x, "bk\x01", "o"), 0);
    str_t nb[200];
    size_t nnb = gen_keys(nb, 200, 1000000);
    put_keys(x, "bj", nb, nnb);
    put_keys(x, "bk\x01", nb, nnb);
    free_keys(nb, nnb);

    enum { N = 1500 };
    str_t *keys = malloc(N * sizeof *keys);
    size_t nkeys = gen_keys(keys, N, 1);
    put_keys(x, "bk", keys, nkeys);
    /* every key reads back */
    for (size_t i = 0; i < nkeys; i++) {
        uint64_t size;
        assert_int_equal(obj_get(x, "bk", keys[i].p, keys[i].n, &size), 0);
        assert_int_equal(size, keys[i].seed * 7);
    }
    run_queries(x, keys, nkeys, 600);

    /* delete about half (records and positions shift inside long-key
     * groups) and list again */
    size_t m = 0;
    for (size_t i = 0; i < nkeys; i++) {
        if (rnd() % 2) {
            assert_int_equal(obj_delete(x, "bk", keys[i].p, keys[i].n), 0);
            free(keys[i].p);
        } else {
            keys[m++] = keys[i];
        }
    }
    nkeys = m;
    for (size_t i = 0; i < nkeys; i++) {
        uint64_t size;
        assert_int_equal(obj_get(x, "bk", keys[i].p, keys[i].n, &size), 0);
    }
    run_queries(x, keys, nkeys, 400);

    /* an empty bucket, and a missing one */
    assert_int_equal(bucket_create(x, "empty", "o"), 0);
    cairn_meta_list_req_t q = {.bucket = "empty", .max_keys = 10};
    cairn_buf_reset(&x->out);
    assert_int_equal(meta_fsm_obj_list(x->f, &q, &x->out), 0);
    cairn_meta_list_t l;
    cairn_meta_list_init(&l);
    cairn_buf_append(&l.raw, x->out.base, x->out.len);
    assert_int_equal(cairn_meta_list_decode(&l), 0);
    assert_int_equal(l.nentries + l.nprefixes, 0);
    assert_int_equal(l.truncated, 0);
    cairn_meta_list_dispose(&l);
    q.bucket = "missing";
    assert_int_equal(meta_fsm_obj_list(x->f, &q, &x->out), CAIRN_EBUCKET);

    free_keys(keys, nkeys);
    free(keys);
}

/* A hand-checked listing: the S3 documentation's photos example. */
static void test_list_example(void **state)
{
    fx_t *x = *state;
    assert_int_equal(bucket_create(x, "bk", "o"), 0);
    const char *names[] = {"sample.jpg", "photos/2006/January/sample.jpg", "photos/2006/February/sample2.jpg",
                           "photos/2006/February/sample3.jpg", "photos/2006/February/sample4.jpg"};
    for (int i = 0; i < 5; i++)
        assert_int_equal(obj_put(x, "bk", K(names[i]), (uint64_t)i + 1, NULL), 0);
    cairn_meta_list_t l;
    cairn_meta_list_init(&l);
    cairn_meta_list_req_t q = {.bucket = "bk", .delimiter = "/", .delimiter_len = 1, .max_keys = 1000};
    assert_int_equal(meta_fsm_obj_list(x->f, &q, &l.raw), 0);
    assert_int_equal(cairn_meta_list_decode(&l), 0);
    assert_int_equal(l.nentries, 1);
    assert_memory_equal(l.entries[0].key, "sample.jpg", 10);
    assert_int_equal(l.nprefixes, 1);
    assert_int_equal(l.prefixes[0].len, 7);
    assert_memory_equal(l.prefixes[0].p, "photos/", 7);

    q.prefix = "photos/2006/";
    q.prefix_len = strlen(q.prefix);
    cairn_buf_reset(&l.raw);
    assert_int_equal(meta_fsm_obj_list(x->f, &q, &l.raw), 0);
    assert_int_equal(cairn_meta_list_decode(&l), 0);
    assert_int_equal(l.nentries, 0);
    assert_int_equal(l.nprefixes, 2);
    assert_memory_equal(l.prefixes[0].p, "photos/2006/February/", 21);
    assert_memory_equal(l.prefixes[1].p, "photos/2006/January/", 20);

    /* max_keys 1: truncated after the first prefix, next = that prefix */
    q.max_keys = 1;
    cairn_buf_reset(&l.raw);
    assert_int_equal(meta_fsm_obj_list(x->f, &q, &l.raw), 0);
    assert_int_equal(cairn_meta_list_decode(&l), 0);
    assert_int_equal(l.nprefixes, 1);
    assert_int_equal(l.truncated, 1);
    assert_int_equal(l.next_len, 21);
    /* start_after inside a directory: that directory is not repeated */
    q.max_keys = 1000;
    q.start_after = "photos/2006/February/sample2.jpg";
    q.start_after_len = strlen(q.start_after);
    cairn_buf_reset(&l.raw);
    assert_int_equal(meta_fsm_obj_list(x->f, &q, &l.raw), 0);
    assert_int_equal(cairn_meta_list_decode(&l), 0);
    assert_int_equal(l.nprefixes, 1);
    assert_memory_equal(l.prefixes[0].p, "photos/2006/January/", 20);
    assert_int_equal(l.truncated, 0);
    cairn_meta_list_dispose(&l);
}

/* ---- long keys with forced hash collisions ---- */

/* With META_FSM_TEST_HOME a long key's home is UINT64_MAX - (last byte & 7),
 * so keys sharing their first 439 bytes collide constantly: random puts,
 * deletes and gets against a model exercise probing, backward-shift deletes
 * and the "no free slot" answer.
 *
 * Whether a put finds a slot follows from the homes alone (linear probing
 * without wrap-around): slot c is occupied iff some t <= c has at least
 * c - t + 1 present keys homed in [t, c]; a key homed at h fits iff some
 * slot in [h, MAX] is free. Slots here are numbered 0..7 from UINT64_MAX-7. */
static int slot_occupied(const int *homes_present, int c)
{
    for (int t = c; t >= 0; t--) {
        int cnt = 0;
        for (int u = t; u <= c; u++)
            cnt += homes_present[u];
        if (cnt >= c - t + 1)
            return 1;
    }
    return 0;
}

static int fits(const int *homes_present, int h)
{
    for (int c = h; c < 8; c++)
        if (!slot_occupied(homes_present, c))
            return 1;
    return 0;
}

static void test_long_probe(void **state)
{
    fx_t *x = *state;
    rng_state = 12345;
    assert_int_equal(bucket_create(x, "b", "o"), 0);
    enum { NK = 24 };
    uint8_t keys[NK][500];
    size_t klen[NK];
    for (int i = 0; i < NK; i++) {
        memset(keys[i], 'Q', 439);
        klen[i] = 441 + rnd() % 60;
        for (size_t j = 439; j < klen[i]; j++)
            keys[i][j] = (uint8_t)('a' + rnd() % 3);
        keys[i][439] = (uint8_t)i;                    /* distinct */
        keys[i][klen[i] - 1] = (uint8_t)(rnd() % 8); /* home slot 7 - this, counted from UINT64_MAX - 7 */
    }
    int64_t model[NK]; /* seed stored, or -1 */
    int present = 0, homes[8] = {0}, conflicts = 0;
    for (int i = 0; i < NK; i++)
        model[i] = -1;
    for (int step = 0; step < 3000; step++) {
        int i = (int)(rnd() % NK);
        unsigned op = (unsigned)(rnd() % 3);
        uint64_t size;
        if (op == 0) {
            int64_t old;
            int st = obj_put(x, "b", keys[i], klen[i], (uint64_t)step + 1, &old);
            int h = 7 - keys[i][klen[i] - 1];
            if (model[i] < 0 && !fits(homes, h)) {
                assert_int_equal(st, CAIRN_ECONFLICT);
                conflicts++;
                continue;
            }
            assert_int_equal(st, 0);
            assert_int_equal(old, model[i] < 0 ? -1 : model[i] * 7);
            if (model[i] < 0) {
                present++;
                homes[h]++;
            }
            model[i] = step + 1;
        } else if (op == 1) {
            int st = obj_delete(x, "b", keys[i], klen[i]);
            assert_int_equal(st, model[i] < 0 ? CAIRN_ENOTFOUND : 0);
            if (model[i] >= 0) {
                present--;
                homes[7 - keys[i][klen[i] - 1]]--;
            }
            model[i] = -1;
        }
        for (int j = 0; j < NK; j++) {
            int st = obj_get(x, "b", keys[j], klen[j], &size);
            if (model[j] < 0) {
                assert_int_equal(st, CAIRN_ENOTFOUND);
            } else {
                assert_int_equal(st, 0);
                assert_int_equal(size, (uint64_t)model[j] * 7);
            }
        }
        if (step % 50 == 0) {
            /* the group lists in full-key order */
            cairn_meta_list_t l;
            cairn_meta_list_init(&l);
            cairn_meta_list_req_t q = {.bucket = "b", .max_keys = 1000};
            assert_int_equal(meta_fsm_obj_list(x->f, &q, &l.raw), 0);
            assert_int_equal(cairn_meta_list_decode(&l), 0);
            assert_int_equal(l.nentries, present);
            for (size_t e = 1; e < l.nentries; e++)
                assert_true(str_cmp((const uint8_t *)l.entries[e - 1].key, l.entries[e - 1].key_len,
                                    (const uint8_t *)l.entries[e].key, l.entries[e].key_len) < 0);
            cairn_meta_list_dispose(&l);
        }
    }
    assert_true(conflicts > 0);
}

/* Long keys with the real hash: many groups, gets and deletes. */
static void test_long_keys(void **state)
{
    fx_t *x = *state;
    assert_int_equal(bucket_create(x, "b", "o"), 0);
    uint8_t k[CAIRN_MAX_KEY_LEN];
    memset(k, 'z', sizeof k);
    for (int i = 0; i < 200; i++) {
        k[500] = (uint8_t)i;
        k[438] = (uint8_t)(i % 3); /* three groups */
        assert_int_equal(obj_put(x, "b", k, 501 + (size_t)i, (uint64_t)i, NULL), 0);
    }
    for (int i = 0; i < 200; i++) {
        uint64_t size;
        k[500] = (uint8_t)i;
        k[438] = (uint8_t)(i % 3);
        assert_int_equal(obj_get(x, "b", k, 501 + (size_t)i, &size), 0);
        assert_int_equal(size, (uint64_t)i * 7);
        /* same bytes, other length: absent */
        assert_int_equal(obj_get(x, "b", k, 500 + (size_t)i, &size), CAIRN_ENOTFOUND);
    }
    for (int i = 0; i < 200; i += 2) {
        k[500] = (uint8_t)i;
        k[438] = (uint8_t)(i % 3);
        assert_int_equal(obj_delete(x, "b", k, 501 + (size_t)i), 0);
    }
    for (int i = 0; i < 200; i++) {
        uint64_t size;
        k[500] = (uint8_t)i;
        k[438] = (uint8_t)(i % 3);
        assert_int_equal(obj_get(x, "b", k, 501 + (size_t)i, &size), i % 2 ? 0 : CAIRN_ENOTFOUND);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buckets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_objects_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_obj_put_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_ids_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replicas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_mode, setup_sync, teardown),
        cmocka_unit_test_setup_teardown(test_list_example, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_probe, setup_probe, teardown),
        cmocka_unit_test_setup_teardown(test_list_random, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
