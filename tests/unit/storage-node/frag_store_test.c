/*
 * frag_store_test.c — the storage node's fragment store, end to end.
 *
 * A real server (cairn_srv with the node's routes) runs on 127.0.0.1:0 over
 * a fresh temporary data directory; the tests speak the wire protocol to it
 * the way the gateway does, then look at the files on disk: corrupt them,
 * truncate them, check that nothing half-written ever becomes visible.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/frag.h"
#include "cairn/log.h"
#include "cairn/node_client.h"
#include "cairn/srv.h"
#include "cairn/wire.h"
#include "frag_store.h"

#define SECRET "frag store test secret 0123456789"
#define NODE_ID 7

typedef struct {
    char dir[256];
    cairn_fstore_t *st;
    cairn_wire_key_t *key;
    cairn_srv_t *srv;
    int lfd;
    pthread_t thr;
    char addr[64];
    cairn_conn_t c;
    cairn_buf_t resp;
} env_t;

static void *srv_main(void *arg)
{
    env_t *e = arg;
    cairn_srv_run(e->srv);
    return NULL;
}

static int setup(void **state)
{
    env_t *e = calloc(1, sizeof(*e));
    snprintf(e->dir, sizeof e->dir, "/tmp/cairn-fstore-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    assert_int_equal(cairn_fstore_open(e->dir, NODE_ID, &e->st), 0);
    assert_int_equal(cairn_wire_key_create(SECRET, strlen(SECRET), &e->key), 0);
    e->lfd = cairn_listen("127.0.0.1:0", 0);
    assert_true(e->lfd >= 0);
    assert_int_equal(cairn_local_addr(e->lfd, e->addr, sizeof e->addr), 0);
    assert_int_equal(
        cairn_srv_create(e->lfd, e->key, cairn_fstore_routes, cairn_fstore_nroutes, e->st, 2000, &e->srv), 0);
    assert_int_equal(pthread_create(&e->thr, NULL, srv_main, e), 0);
    cairn_conn_init(&e->c, e->addr, e->key, 5000);
    cairn_buf_init(&e->resp);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env_t *e = *state;
    cairn_conn_dispose(&e->c);
    cairn_buf_dispose(&e->resp);
    cairn_srv_stop(e->srv);
    pthread_join(e->thr, NULL);
    cairn_srv_destroy(e->srv);
    close(e->lfd);
    cairn_fstore_close(e->st);
    cairn_wire_key_destroy(e->key);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    assert_int_equal(system(cmd), 0);
    free(e);
    return 0;
}

/* ---- building fragments ---- */

static void make_oid(uint8_t oid[16], unsigned seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int i = 0; i < 16; i++) {
        x ^= x >> 29;
        x *= 0xbf58476d1ce4e5b9ull;
        oid[i] = (uint8_t)(x >> 56);
    }
}

/* A well-formed fragment file: header, then pseudo-random blocks each
 * followed by its checksum. */
static void make_frag(cairn_buf_t *out, const uint8_t oid[16], unsigned index, unsigned k, unsigned m, uint32_t B,
                      uint64_t size, unsigned seed)
{
    cairn_frag_hdr_t h = {.index = (uint8_t)index, .k = (uint8_t)k, .m = (uint8_t)m, .block_size = B,
                          .object_size = size};
    memcpy(h.oid, oid, 16);
    cairn_buf_reset(out);
    uint8_t *p = cairn_buf_reserve(out, (size_t)cairn_frag_file_size(&h));
    cairn_frag_hdr_encode(&h, p);
    uint64_t ns = cairn_frag_nstripes(&h);
    uint32_t x = seed * 2654435761u + 1;
    for (uint64_t s = 0; s < ns; s++) {
        uint8_t *b = p + cairn_frag_block_offset(&h, s);
        size_t len = cairn_frag_block_len(&h, s);
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            b[i] = (uint8_t)(x >> 16);
        }
        cairn_le64_put(b + len, cairn_frag_sum(b, len));
    }
    out->len = (size_t)cairn_frag_file_size(&h);
}

/* ---- client helpers: return the transport error or the status ---- */

static int put_bytes(cairn_conn_t *c, const uint8_t *p, size_t n, size_t piece)
{
    int32_t status;
    int rc = cairn_conn_stream_begin(c, CAIRN_OP_FRAG_PUT, 0, n);
    for (size_t off = 0; rc == 0 && off < n; off += piece) {
        struct iovec v = {(void *)(p + off), piece < n - off ? piece : n - off};
        rc = cairn_conn_stream_write(c, &v, 1);
    }
    if (rc == 0)
        rc = cairn_conn_stream_end(c, NULL, &status);
    return rc != 0 ? rc : status;
}

static int put_frag(env_t *e, const cairn_buf_t *f)
{
    return put_bytes(&e->c, f->base, f->len, 100003);
}

static int key_call(env_t *e, uint16_t op, const uint8_t oid[16], unsigned index, const void *extra, size_t xlen)
{
    uint8_t idx = (uint8_t)index;
    struct iovec v[3] = {{(void *)oid, 16}, {&idx, 1}, {(void *)extra, xlen}};
    int32_t status;
    int rc = cairn_conn_call(&e->c, op, 0, v, 3, &e->resp, &status);
    return rc != 0 ? rc : status;
}

static int get_frag(env_t *e, const uint8_t oid[16], unsigned index, uint64_t first, uint32_t n)
{
    uint8_t x[12];
    cairn_le64_put(x, first);
    cairn_le32_put(x + 8, n);
    return key_call(e, CAIRN_OP_FRAG_GET, oid, index, x, sizeof x);
}

static int stat_frag(env_t *e, const uint8_t oid[16], unsigned index)
{
    return key_call(e, CAIRN_OP_FRAG_STAT, oid, index, NULL, 0);
}

static int del_frag(env_t *e, const uint8_t oid[16], unsigned index)
{
    return key_call(e, CAIRN_OP_FRAG_DELETE, oid, index, NULL, 0);
}

static void frag_file(env_t *e, const uint8_t oid[16], unsigned index, char *out, size_t outsz)
{
    char rel[64];
    cairn_frag_path(oid, index, rel, sizeof rel);
    snprintf(out, outsz, "%s/frags/%s", e->dir, rel);
}

static int tmp_entries(env_t *e)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/tmp", e->dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The server cleans up on its own thread after a failed put: wait for it. */
static void wait_tmp_empty(env_t *e)
{
    for (int i = 0; i < 300 && tmp_entries(e) != 0; i++)
        usleep(10 * 1000);
    assert_int_equal(tmp_entries(e), 0);
}

static void flip_byte(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

/* ---- tests ---- */

static void test_put_get_stat(void **state)
{
    env_t *e = *state;
    cairn_buf_t f;
    cairn_buf_init(&f);
    const struct {
        unsigned k;
        uint32_t B;
        uint64_t size;
    } shapes[] = {
        {4, 4096, 0}, {4, 4096, 1}, {4, 4096, 4 * 4096 - 1}, {4, 4096, 4 * 4096},
        {4, 4096, 4 * 4096 + 1}, {3, 64, 10000}, {2, 65536, 5u << 20}, {1, 1u << 20, (3u << 20) + 5},
    };
    for (unsigned i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        uint8_t oid[16];
        make_oid(oid, i);
        unsigned index = i % (shapes[i].k + 2);
        make_frag(&f, oid, index, shapes[i].k, 2, shapes[i].B, shapes[i].size, i);
        assert_int_equal(put_frag(e, &f), 0);

        /* whole fragment: the file byte for byte */
        assert_int_equal(get_frag(e, oid, index, 0, UINT32_MAX), 0);
        assert_int_equal(e->resp.len, f.len);
        assert_memory_equal(e->resp.base, f.base, f.len);
        char path[PATH_MAX];
        struct stat sb;
        frag_file(e, oid, index, path, sizeof path);
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_size, f.len);

        cairn_frag_hdr_t h;
        assert_int_equal(cairn_frag_hdr_decode(f.base, &h), 0);
        uint64_t ns = cairn_frag_nstripes(&h);
        /* a middle range: header + exactly those blocks and checksums */
        if (ns >= 3) {
            assert_int_equal(get_frag(e, oid, index, 1, 2), 0);
            uint64_t a = cairn_frag_block_offset(&h, 1), b = cairn_frag_block_offset(&h, 3);
            assert_int_equal(e->resp.len, 64 + (b - a));
            assert_memory_equal(e->resp.base, f.base, 64);
            assert_memory_equal(e->resp.base + 64, f.base + a, b - a);
        }
        /* clamped to the end */
        if (ns >= 1) {
            assert_int_equal(get_frag(e, oid, index, ns - 1, 1000), 0);
            uint64_t a = cairn_frag_block_offset(&h, ns - 1);
            assert_int_equal(e->resp.len, 64 + (f.len - a));
            assert_memory_equal(e->resp.base + 64, f.base + a, f.len - a);
        }
        /* past the end, or no stripes asked: the header alone */
        assert_int_equal(get_frag(e, oid, index, ns + 5, 3), 0);
        assert_int_equal(e->resp.len, 64);
        assert_int_equal(get_frag(e, oid, index, 0, 0), 0);
        assert_int_equal(e->resp.len, 64);

        /* stat: header, size, mtime */
        assert_int_equal(stat_frag(e, oid, index), 0);
        assert_int_equal(e->resp.len, 64 + 16);
        assert_memory_equal(e->resp.base, f.base, 64);
        assert_int_equal(cairn_le64_get(e->resp.base + 64), f.len);
        int64_t mtime = (int64_t)cairn_le64_get(e->resp.base + 72);
        assert_true(mtime / 1000 >= sb.st_mtime - 1 && mtime / 1000 <= sb.st_mtime + 1);
    }
    assert_int_equal(tmp_entries(e), 0);

    /* unknown fragments */
    uint8_t none[16] = {0};
    assert_int_equal(get_frag(e, none, 0, 0, 1), CAIRN_ENOTFOUND);
    assert_int_equal(stat_frag(e, none, 0), CAIRN_ENOTFOUND);
    /* a short request body */
    uint8_t junk[5] = {0};
    struct iovec v = {junk, sizeof junk};
    int32_t status;
    assert_int_equal(cairn_conn_call(&e->c, CAIRN_OP_FRAG_GET, 0, &v, 1, &e->resp, &status), 0);
    assert_int_equal(status, CAIRN_EPROTO);
    cairn_buf_dispose(&f);
}

static void test_overwrite_and_delete(void **state)
{
    env_t *e = *state;
    cairn_buf_t a, b;
    cairn_buf_init(&a);
    cairn_buf_init(&b);
    uint8_t oid[16];
    make_oid(oid, 100);
    make_frag(&a, oid, 1, 4, 2, 4096, 50000, 1);
    make_frag(&b, oid, 1, 4, 2, 4096, 70000, 2);
    assert_int_equal(put_frag(e, &a), 0);
    assert_int_equal(put_frag(e, &b), 0); /* replaces */
    assert_int_equal(get_frag(e, oid, 1, 0, UINT32_MAX), 0);
    assert_int_equal(e->resp.len, b.len);
    assert_memory_equal(e->resp.base, b.base, b.len);

    assert_int_equal(del_frag(e, oid, 1), 0);
    assert_int_equal(get_frag(e, oid, 1, 0, 1), CAIRN_ENOTFOUND);
    assert_int_equal(stat_frag(e, oid, 1), CAIRN_ENOTFOUND);
    assert_int_equal(del_frag(e, oid, 1), CAIRN_ENOTFOUND);
    char path[PATH_MAX];
    frag_file(e, oid, 1, path, sizeof path);
    assert_int_equal(access(path, F_OK), -1);
    cairn_buf_dispose(&a);
    cairn_buf_dispose(&b);
}

static int key_cmp(const uint8_t *a, unsigned ia, const uint8_t *b, unsigned ib)
{
    int c = memcmp(a, b, 16);
    return c ? c : (ia > ib) - (ia < ib);
}

static void test_list(void **state)
{
    env_t *e = *state;
    enum { N = 40 };
    struct {
        uint8_t oid[16];
        unsigned index;
        uint64_t size;
    } want[N], t;
    cairn_buf_t f;
    cairn_buf_init(&f);
    for (unsigned i = 0; i < N; i++) {
        make_oid(want[i].oid, i / 3 + 200); /* three fragments per oid */
        if (i % 7 == 0)
            want[i].oid[0] = 0x42; /* crowd one fan-out directory */
        want[i].index = (i * 5) % 6;
        make_frag(&f, want[i].oid, want[i].index, 4, 2, 64, 100 + i * 37, i);
        want[i].size = f.len;
        assert_int_equal(put_frag(e, &f), 0);
    }
    /* drop duplicates of (oid, index) made above: keep the last put */
    for (unsigned i = 0; i < N; i++)
        for (unsigned j = i + 1; j < N; j++)
            assert_true(key_cmp(want[i].oid, want[i].index, want[j].oid, want[j].index) != 0);
    /* expected order */
    for (unsigned i = 1; i < N; i++)
        for (unsigned j = i; j > 0 && key_cmp(want[j - 1].oid, want[j - 1].index, want[j].oid, want[j].index) > 0;
             j--)
            t = want[j], want[j] = want[j - 1], want[j - 1] = t;

    /* page through with max = 3 */
    uint8_t start[16] = {0}, sidx = 0;
    unsigned got = 0;
    for (int page = 0; page < 100; page++) {
        uint8_t max[4];
        cairn_le32_put(max, 3);
        assert_int_equal(key_call(e, CAIRN_OP_FRAG_LIST, start, sidx, max, 4), 0);
        cairn_dec_t d;
        cairn_dec_init(&d, e->resp.base, e->resp.len);
        uint32_t n = cairn_dec_u32(&d);
        assert_true(n <= 3);
        for (uint32_t i = 0; i < n; i++) {
            uint8_t oid[16];
            cairn_dec_raw(&d, oid, 16);
            unsigned idx = cairn_dec_u8(&d);
            uint64_t size = cairn_dec_u64(&d);
            assert_true(got < N);
            assert_memory_equal(oid, want[got].oid, 16);
            assert_int_equal(idx, want[got].index);
            assert_int_equal(size, want[got].size);
            memcpy(start, oid, 16);
            sidx = (uint8_t)idx;
            got++;
        }
        uint8_t more = cairn_dec_u8(&d);
        assert_int_equal(d.err, 0);
        assert_int_equal(cairn_dec_left(&d), 0);
        if (!more)
            break;
        assert_int_equal(n, 3);
    }
    assert_int_equal(got, N);

    /* max 0: nothing, but "more" */
    uint8_t zero[16] = {0}, max[4] = {0};
    assert_int_equal(key_call(e, CAIRN_OP_FRAG_LIST, zero, 0, max, 4), 0);
    assert_int_equal(e->resp.len, 5);
    assert_int_equal(cairn_le32_get(e->resp.base), 0);
    assert_int_equal(e->resp.base[4], 1);

    /* the store call directly, from the middle */
    cairn_fstore_ent_t ents[N];
    size_t n;
    int more;
    assert_int_equal(cairn_fstore_list(e->st, want[9].oid, want[9].index, N, ents, &n, &more), 0);
    assert_int_equal(n, N - 10);
    assert_int_equal(more, 0);
    assert_memory_equal(ents[0].oid, want[10].oid, 16);

    /* node info counts them */
    int32_t status;
    assert_int_equal(cairn_conn_call(&e->c, CAIRN_OP_NODE_INFO, 0, NULL, 0, &e->resp, &status), 0);
    assert_int_equal(status, 0);
    cairn_dec_t d;
    const uint8_t *id;
    size_t idlen;
    cairn_dec_init(&d, e->resp.base, e->resp.len);
    cairn_dec_bytes(&d, &id, &idlen);
    uint64_t used = cairn_dec_u64(&d), avail = cairn_dec_u64(&d), frags = cairn_dec_u64(&d);
    assert_int_equal(d.err, 0);
    assert_int_equal(idlen, 1);
    assert_memory_equal(id, "7", 1);
    assert_true(used > 0 && avail > 0);
    assert_int_equal(frags, N);
    cairn_buf_dispose(&f);
}

/* Number of entries in DIR/quarantine (0 if it does not exist). */
static int quarantined(env_t *e)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/quarantine", e->dir);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The node's bad list over the wire: *reason of the one entry, or -1 when
 * the list is empty. */
static int bad_reason(env_t *e, const uint8_t oid[16], unsigned index)
{
    cairn_node_bad_t v[4];
    size_t n;
    int more;
    assert_int_equal(cairn_node_bad_list(&e->c, v, 4, &n, &more), 0);
    assert_int_equal(more, 0);
    if (n == 0)
        return -1;
    assert_int_equal(n, 1);
    assert_memory_equal(v[0].oid, oid, 16);
    assert_int_equal(v[0].index, index);
    return v[0].reason;
}

/* Damage found by a read: the request gets CAIRN_ECORRUPT, the file moves to
 * quarantine and onto the bad list, STAT says it is gone, GET still serves
 * the stripes that verify, a PUT takes it off the list, DELETE removes the
 * quarantined copies. */
static void test_corrupt_on_disk(void **state)
{
    env_t *e = *state;
    cairn_buf_t f;
    cairn_buf_init(&f);
    uint8_t oid[16];
    make_oid(oid, 300);
    make_frag(&f, oid, 2, 2, 1, 1024, 5 * 2048 + 10, 3); /* 6 stripes */
    assert_int_equal(put_frag(e, &f), 0);
    cairn_frag_hdr_t h;
    assert_int_equal(cairn_frag_hdr_decode(f.base, &h), 0);
    char path[PATH_MAX];
    frag_file(e, oid, 2, path, sizeof path);
    uint64_t last = cairn_frag_block_offset(&h, 5);

    /* a flipped byte inside stripe 1's block */
    flip_byte(path, cairn_frag_block_offset(&h, 1) + 100);
    assert_int_equal(get_frag(e, oid, 2, 0, 1), 0); /* stripe 0 is fine, and not looked at */
    assert_int_equal(bad_reason(e, oid, 2), -1);
    assert_int_equal(get_frag(e, oid, 2, 1, 1), CAIRN_ECORRUPT);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(quarantined(e), 1);
    assert_int_equal(bad_reason(e, oid, 2), CAIRN_BAD_BLOCK);
    assert_int_equal(stat_frag(e, oid, 2), CAIRN_ENOTFOUND);
    /* served from quarantine where it verifies */
    assert_int_equal(get_frag(e, oid, 2, 0, 1), 0);
    assert_memory_equal(e->resp.base + 64, f.base + 64, 1024 + 8);
    assert_int_equal(get_frag(e, oid, 2, 2, 10), 0);
    assert_int_equal(e->resp.len, 64 + f.len - cairn_frag_block_offset(&h, 2));
    assert_int_equal(get_frag(e, oid, 2, 0, UINT32_MAX), CAIRN_ECORRUPT);
    /* left out of LIST and INFO */
    uint64_t used, avail, frags;
    assert_int_equal(cairn_fstore_info(e->st, &used, &avail, &frags), 0);
    assert_int_equal(frags, 0);
    /* a repair: back, off the list; the copy stays until deleted or expired */
    assert_int_equal(put_frag(e, &f), 0);
    assert_int_equal(bad_reason(e, oid, 2), -1);
    assert_int_equal(get_frag(e, oid, 2, 0, UINT32_MAX), 0);
    assert_int_equal(quarantined(e), 1);

    /* a flipped checksum byte of the last stripe */
    flip_byte(path, f.len - 3);
    assert_int_equal(get_frag(e, oid, 2, 5, 1), CAIRN_ECORRUPT);
    assert_int_equal(bad_reason(e, oid, 2), CAIRN_BAD_BLOCK);
    assert_int_equal(quarantined(e), 2);
    assert_int_equal(put_frag(e, &f), 0);

    /* a truncated file */
    assert_int_equal(truncate(path, (off_t)f.len - 1), 0);
    assert_int_equal(get_frag(e, oid, 2, 0, 5), 0); /* not touching the end: unnoticed */
    assert_int_equal(get_frag(e, oid, 2, 5, 1), CAIRN_ECORRUPT);
    assert_int_equal(bad_reason(e, oid, 2), CAIRN_BAD_SIZE);
    assert_int_equal(get_frag(e, oid, 2, 0, 5), 0);
    assert_int_equal(e->resp.len, last); /* header + stripes 0..4 */
    assert_int_equal(get_frag(e, oid, 2, 4, 2), CAIRN_ECORRUPT);
    assert_int_equal(put_frag(e, &f), 0);

    /* a damaged header spoils everything; found by STAT this time */
    flip_byte(path, 30);
    assert_int_equal(stat_frag(e, oid, 2), CAIRN_ECORRUPT);
    assert_int_equal(bad_reason(e, oid, 2), CAIRN_BAD_HEADER);
    assert_int_equal(get_frag(e, oid, 2, 0, 1), CAIRN_ENOTFOUND);
    assert_int_equal(stat_frag(e, oid, 2), CAIRN_ENOTFOUND);
    assert_int_equal(quarantined(e), 4);
    /* and it can still be deleted: every copy goes */
    assert_int_equal(del_frag(e, oid, 2), 0);
    assert_int_equal(quarantined(e), 0);
    assert_int_equal(bad_reason(e, oid, 2), -1);
    assert_int_equal(del_frag(e, oid, 2), CAIRN_ENOTFOUND);

    /* a header cut short */
    assert_int_equal(put_frag(e, &f), 0);
    assert_int_equal(truncate(path, 40), 0);
    assert_int_equal(get_frag(e, oid, 2, 0, 1), CAIRN_ECORRUPT);
    assert_int_equal(bad_reason(e, oid, 2), CAIRN_BAD_SIZE);
    assert_int_equal(del_frag(e, oid, 2), 0);
    cairn_buf_dispose(&f);
}

/* Bad puts are refused and leave nothing behind, neither in frags/ nor tmp/. */
static void test_bad_put(void **state)
{
    env_t *e = *state;
    cairn_buf_t f;
    cairn_buf_init(&f);
    uint8_t oid[16];
    make_oid(oid, 400);

    /* a block damaged in transit (small fragment: the refusal comes at the end) */
    make_frag(&f, oid, 0, 4, 2, 4096, 40000, 4);
    f.base[64 + 4096 + 8 + 17] ^= 1;
    assert_int_equal(put_frag(e, &f), CAIRN_ECORRUPT);
    assert_int_equal(stat_frag(e, oid, 0), CAIRN_ENOTFOUND);
    wait_tmp_empty(e);

    /* ... and early in a large one: refused mid-stream */
    make_frag(&f, oid, 0, 1, 2, 65536, 40u << 20, 5);
    f.base[64 + 3] ^= 1;
    assert_int_equal(put_frag(e, &f), CAIRN_ECORRUPT);
    assert_int_equal(stat_frag(e, oid, 0), CAIRN_ENOTFOUND);
    wait_tmp_empty(e);

    /* a header damaged in transit */
    make_frag(&f, oid, 0, 4, 2, 4096, 1000, 6);
    f.base[20] ^= 1;
    assert_int_equal(put_frag(e, &f), CAIRN_ECORRUPT);
    /* a body longer or shorter than the header says */
    make_frag(&f, oid, 0, 4, 2, 4096, 1000, 6);
    cairn_buf_put_u8(&f, 0);
    assert_int_equal(put_frag(e, &f), CAIRN_EPROTO);
    assert_int_equal(put_bytes(&e->c, f.base, f.len - 2, 1000), CAIRN_EPROTO);
    assert_int_equal(put_bytes(&e->c, f.base, 10, 1000), CAIRN_EPROTO);
    assert_int_equal(stat_frag(e, oid, 0), CAIRN_ENOTFOUND);
    wait_tmp_empty(e);

    /* the good one goes through on the same connection */
    make_frag(&f, oid, 0, 4, 2, 4096, 1000, 6);
    assert_int_equal(put_frag(e, &f), 0);
    assert_int_equal(stat_frag(e, oid, 0), 0);
    cairn_buf_dispose(&f);
}

/* A writer that dies mid-stream leaves nothing visible. */
static void test_aborted_put(void **state)
{
    env_t *e = *state;
    cairn_buf_t f;
    cairn_buf_init(&f);
    uint8_t oid[16];
    make_oid(oid, 500);
    make_frag(&f, oid, 3, 4, 2, 65536, 3u << 20, 7);
    cairn_conn_t w;
    cairn_conn_init(&w, e->addr, e->key, 5000);
    assert_int_equal(cairn_conn_stream_begin(&w, CAIRN_OP_FRAG_PUT, 0, f.len), 0);
    struct iovec v = {f.base, f.len / 2};
    assert_int_equal(cairn_conn_stream_write(&w, &v, 1), 0);
    for (int i = 0; i < 1000 && tmp_entries(e) == 0; i++)
        usleep(5 * 1000);
    assert_int_equal(tmp_entries(e), 1);                  /* in progress, out of sight */
    assert_int_equal(stat_frag(e, oid, 3), CAIRN_ENOTFOUND);
    cairn_conn_dispose(&w);                               /* the writer dies */
    wait_tmp_empty(e);
    assert_int_equal(stat_frag(e, oid, 3), CAIRN_ENOTFOUND);
    cairn_buf_dispose(&f);
}

static void test_bad_hmac(void **state)
{
    env_t *e = *state;
    cairn_wire_key_t *wrong;
    assert_int_equal(cairn_wire_key_create("guessed secret", 14, &wrong), 0);
    cairn_conn_t c;
    cairn_conn_init(&c, e->addr, wrong, 5000);
    cairn_buf_t f;
    cairn_buf_init(&f);
    uint8_t oid[16];
    make_oid(oid, 600);
    make_frag(&f, oid, 0, 4, 2, 4096, 100000, 8);
    int rc = put_bytes(&c, f.base, f.len, 65536);
    assert_int_equal(rc, CAIRN_EAUTH);
    assert_int_equal(stat_frag(e, oid, 0), CAIRN_ENOTFOUND);
    wait_tmp_empty(e);

    /* a stored fragment is not readable or deletable with the wrong key */
    assert_int_equal(put_frag(e, &f), 0);
    uint8_t idx = 0;
    struct iovec v[2] = {{oid, 16}, {&idx, 1}};
    int32_t status = 0;
    cairn_buf_t resp;
    cairn_buf_init(&resp);
    rc = cairn_conn_call(&c, CAIRN_OP_FRAG_DELETE, 0, v, 2, &resp, &status);
    assert_true(rc == CAIRN_EAUTH || (rc == 0 && status == CAIRN_EAUTH));
    assert_int_equal(stat_frag(e, oid, 0), 0);
    cairn_buf_dispose(&resp);
    cairn_buf_dispose(&f);
    cairn_conn_dispose(&c);
    cairn_wire_key_destroy(wrong);
}

/* Responses are limited to one frame: a 70 MiB fragment is read in parts. */
static void test_get_too_big(void **state)
{
    env_t *e = *state;
    cairn_buf_t f;
    cairn_buf_init(&f);
    uint8_t oid[16];
    make_oid(oid, 700);
    make_frag(&f, oid, 0, 1, 1, 1u << 20, 70u << 20, 9);
    assert_int_equal(put_frag(e, &f), 0);
    assert_int_equal(get_frag(e, oid, 0, 0, UINT32_MAX), CAIRN_ETOOBIG);
    assert_int_equal(get_frag(e, oid, 0, 60, 20), 0);
    assert_int_equal(e->resp.len, 64 + 10 * ((1u << 20) + 8));
    assert_memory_equal(e->resp.base + 64, f.base + 64 + 60ull * ((1u << 20) + 8), e->resp.len - 64);
    cairn_buf_dispose(&f);
}

/* The store API without a server; and open clears leftovers from a crash. */
static int mem_read(void *ctx, void *p, size_t n)
{
    cairn_dec_t *d = ctx;
    cairn_dec_raw(d, p, n);
    return d->err;
}

static int mem_verify(void *ctx)
{
    return 0;
}

static void test_direct_and_reopen(void **state)
{
    env_t *e = *state;
    cairn_buf_t f, out;
    cairn_buf_init(&f);
    cairn_buf_init(&out);
    uint8_t oid[16];
    make_oid(oid, 800);
    make_frag(&f, oid, 4, 4, 2, 256, 5000, 10);
    cairn_dec_t d;
    cairn_dec_init(&d, f.base, f.len);
    cairn_fstore_src_t src = {mem_read, mem_verify, &d, f.len};
    assert_int_equal(cairn_fstore_put(e->st, &src, 1), 0);
    cairn_buf_append(&out, "pre", 3);
    assert_int_equal(cairn_fstore_get(e->st, oid, 4, 0, UINT32_MAX, &out, 1), 0);
    assert_int_equal(out.len, 3 + f.len); /* appended */
    assert_memory_equal(out.base + 3, f.base, f.len);
    cairn_frag_hdr_t h;
    uint64_t size;
    int64_t mtime;
    assert_int_equal(cairn_fstore_stat(e->st, oid, 4, &h, &size, &mtime), 0);
    assert_int_equal(size, f.len);
    assert_int_equal(h.object_size, 5000);

    /* a crashed write's leftovers disappear on the next open */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/tmp/deadbeef.1.0123456789abcdef", e->dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    close(fd);
    cairn_fstore_t *st2;
    assert_int_equal(cairn_fstore_open(e->dir, NODE_ID, &st2), 0);
    assert_int_equal(access(path, F_OK), -1);
    out.len = 0;
    assert_int_equal(cairn_fstore_get(st2, oid, 4, 0, 1, &out, 1), 0);
    cairn_fstore_close(st2);

    /* a fresh directory tree is created */
    char fresh[PATH_MAX];
    snprintf(fresh, sizeof fresh, "%s/new/data", e->dir);
    assert_int_equal(cairn_fstore_open(fresh, NODE_ID, &st2), 0);
    uint64_t used, avail, frags;
    assert_int_equal(cairn_fstore_info(st2, &used, &avail, &frags), 0);
    assert_int_equal(frags, 0);
    cairn_fstore_close(st2);
    cairn_buf_dispose(&f);
    cairn_buf_dispose(&out);
}

int main(void)
{
    cairn_log_init("test", "fstore", getenv("CAIRN_TEST_LOG") ? CAIRN_LOG_DEBUG : CAIRN_LOG_ERROR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_stat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overwrite_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_on_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_put, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aborted_put, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_hmac, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_and_reopen, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
