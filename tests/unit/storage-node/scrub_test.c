/*
 * scrub_test.c — the scrubber and the bad list: damage on disk is found by
 * a pass, quarantined and listed; the list survives a restart; a put takes
 * a fragment off it; the rate limit holds; the page cache is left as it was
 * found; a stopped pass resumes where it stopped; the counters and the list
 * reach a client over the wire; NODE_SCRUB_NOW runs a pass at once.
 *
 * A real store in a fresh temporary directory; the wire cases run the
 * node's server on 127.0.0.1:0.
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/frag.h"
#include "cairn/log.h"
#include "cairn/node_client.h"
#include "cairn/srv.h"
#include "cairn/wire.h"
#include "frag_store.h"
#include "scrub.h"

#define SECRET "scrub test secret 0123456789abcdef"
#define NODE_ID 3

typedef struct {
    char dir[256];
    cairn_fstore_t *st;
    /* the server, for the wire cases */
    cairn_wire_key_t *key;
    cairn_srv_t *srv;
    int lfd;
    pthread_t thr;
    cairn_conn_t c;
} env_t;

static int setup(void **state)
{
    env_t *e = calloc(1, sizeof(*e));
    snprintf(e->dir, sizeof e->dir, "/tmp/cairn-scrub-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    assert_int_equal(cairn_fstore_open(e->dir, NODE_ID, &e->st), 0);
    e->lfd = -1;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env_t *e = *state;
    if (e->srv != NULL) {
        cairn_conn_dispose(&e->c);
        cairn_srv_stop(e->srv);
        pthread_join(e->thr, NULL);
        cairn_srv_destroy(e->srv);
        close(e->lfd);
        cairn_wire_key_destroy(e->key);
    }
    cairn_fstore_close(e->st);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    assert_int_equal(system(cmd), 0);
    free(e);
    return 0;
}

static void *srv_main(void *arg)
{
    env_t *e = arg;
    cairn_srv_run(e->srv);
    return NULL;
}

static void serve(env_t *e)
{
    char addr[64];
    assert_int_equal(cairn_wire_key_create(SECRET, strlen(SECRET), &e->key), 0);
    e->lfd = cairn_listen("127.0.0.1:0", 0);
    assert_true(e->lfd >= 0);
    assert_int_equal(cairn_local_addr(e->lfd, addr, sizeof addr), 0);
    assert_int_equal(
        cairn_srv_create(e->lfd, e->key, cairn_fstore_routes, cairn_fstore_nroutes, e->st, 2000, &e->srv), 0);
    assert_int_equal(pthread_create(&e->thr, NULL, srv_main, e), 0);
    cairn_conn_init(&e->c, addr, e->key, 5000);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- fragments ---- */

static void oid_of(uint8_t oid[16], unsigned seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 7;
    for (int i = 0; i < 16; i++) {
        x ^= x >> 31;
        x *= 0x94d049bb133111ebull;
        oid[i] = (uint8_t)(x >> 56);
    }
}

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

/* Build fragment (seed, index) of a k+2 object of size bytes, blocks of B,
 * and store it; f gets the file. Returns its size. */
static size_t put(env_t *e, unsigned seed, unsigned index, unsigned k, uint32_t B, uint64_t size, cairn_buf_t *f)
{
    cairn_frag_hdr_t h = {.index = (uint8_t)index, .k = (uint8_t)k, .m = 2, .block_size = B, .object_size = size};
    oid_of(h.oid, seed);
    size_t len = (size_t)cairn_frag_file_size(&h);
    cairn_buf_reset(f);
    uint8_t *p = cairn_buf_reserve(f, len);
    cairn_frag_hdr_encode(&h, p);
    for (uint64_t s = 0; s < cairn_frag_nstripes(&h); s++) {
        uint8_t *b = p + cairn_frag_block_offset(&h, s);
        size_t bl = cairn_frag_block_len(&h, s);
        for (size_t i = 0; i < bl; i++)
            b[i] = (uint8_t)(i * 31 + s * 7 + seed);
        cairn_le64_put(b + bl, cairn_frag_sum(b, bl));
    }
    f->len = len;
    cairn_dec_t d;
    cairn_dec_init(&d, f->base, len);
    cairn_fstore_src_t src = {mem_read, mem_verify, &d, len};
    assert_int_equal(cairn_fstore_put(e->st, &src, 0), 0);
    return len;
}

static void path_of(env_t *e, unsigned seed, unsigned index, char *out, size_t outsz)
{
    uint8_t oid[16];
    char rel[64];
    oid_of(oid, seed);
    cairn_frag_path(oid, index, rel, sizeof rel);
    snprintf(out, outsz, "%s/frags/%s", e->dir, rel);
}

static void flip(env_t *e, unsigned seed, unsigned index, uint64_t off)
{
    char path[PATH_MAX];
    path_of(e, seed, index, path, sizeof path);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= 0x10;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

static void resize(env_t *e, unsigned seed, unsigned index, off_t len)
{
    char path[PATH_MAX];
    path_of(e, seed, index, path, sizeof path);
    assert_int_equal(truncate(path, len), 0);
}

static void grow(env_t *e, unsigned seed, unsigned index)
{
    char path[PATH_MAX];
    struct stat sb;
    path_of(e, seed, index, path, sizeof path);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size + 1), 0);
}

/* Drop a fragment's clean pages from the page cache. */
static void uncache(env_t *e, unsigned seed, unsigned index)
{
    char path[PATH_MAX];
    path_of(e, seed, index, path, sizeof path);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    close(fd);
}

static int exists(env_t *e, unsigned seed, unsigned index)
{
    char path[PATH_MAX];
    path_of(e, seed, index, path, sizeof path);
    return access(path, F_OK) == 0;
}

static cairn_scrub_t *scrubber(env_t *e, uint64_t rate_bps, int64_t interval_ms)
{
    cairn_scrub_opts_t o = {.enabled = 1, .rate_bps = rate_bps, .interval_ms = interval_ms,
                            .keep_ms = CAIRN_SCRUB_KEEP_MS};
    return cairn_scrub_create(e->st, &o);
}

/* The bad list straight from the store (at most 64 entries). */
static size_t bad_list(env_t *e, cairn_node_bad_t *out)
{
    cairn_node_bad_t *v;
    size_t n;
    int more;
    cairn_fstore_bad_list(e->st, 64, &v, &n, &more);
    assert_int_equal(more, 0);
    if (n > 0)
        memcpy(out, v, n * sizeof(*v));
    free(v);
    return n;
}

/* The reason seed/index is listed for, or -1. */
static int listed(const cairn_node_bad_t *v, size_t n, unsigned seed, unsigned index)
{
    uint8_t oid[16];
    oid_of(oid, seed);
    for (size_t i = 0; i < n; i++)
        if (memcmp(v[i].oid, oid, 16) == 0 && v[i].index == index)
            return v[i].reason;
    return -1;
}

/* Twelve fragments, six of them then damaged in six ways. Returns the total
 * size of the six intact ones. */
enum { NFRAG = 12 };
static uint64_t populate_and_damage(env_t *e)
{
    cairn_buf_t f;
    cairn_buf_init(&f);
    uint64_t good = 0;
    for (unsigned i = 0; i < NFRAG; i++) {
        size_t len = put(e, i, i % 6, 4, 4096, 1000 + (uint64_t)i * 37000, &f);
        if (i >= 6)
            good += len;
    }
    flip(e, 0, 0, 64 + 10);                                 /* a block */
    flip(e, 1, 1, 64 + 4096 + 3);                           /* the checksum after block 0 */
    flip(e, 2, 2, 33);                                      /* the header (object size) */
    resize(e, 3, 3, 64 + 4096 + 8 + 100);                   /* torn: ends inside stripe 1 */
    grow(e, 4, 4);                                          /* longer than its header says */
    resize(e, 5, 5, 20);                                    /* a header cut short */
    cairn_buf_dispose(&f);
    return good;
}

static void check_damage_listed(const cairn_node_bad_t *v, size_t n)
{
    assert_int_equal(n, 6);
    assert_int_equal(listed(v, n, 0, 0), CAIRN_BAD_BLOCK);
    assert_int_equal(listed(v, n, 1, 1), CAIRN_BAD_BLOCK);
    assert_int_equal(listed(v, n, 2, 2), CAIRN_BAD_HEADER);
    assert_int_equal(listed(v, n, 3, 3), CAIRN_BAD_SIZE);
    assert_int_equal(listed(v, n, 4, 4), CAIRN_BAD_SIZE);
    assert_int_equal(listed(v, n, 5, 5), CAIRN_BAD_SIZE);
    for (size_t i = 1; i < n; i++) /* in (oid, index) order */
        assert_true(memcmp(v[i - 1].oid, v[i].oid, 16) < 0 ||
                    (memcmp(v[i - 1].oid, v[i].oid, 16) == 0 && v[i - 1].index < v[i].index));
}

/* ---- tests ---- */

static void test_pass_finds_damage(void **state)
{
    env_t *e = *state;
    uint64_t good = populate_and_damage(e);
    int64_t before = (int64_t)time(NULL) * 1000 - 1000;
    cairn_scrub_t *s = scrubber(e, 0, 1000);
    assert_int_equal(cairn_scrub_pass(s), 0);
    cairn_node_scrub_status_t st;
    cairn_scrub_status(s, &st);
    assert_int_equal(st.passes, 1);
    assert_int_equal(st.fragments_checked, NFRAG);
    assert_int_equal(st.bad_found, 6);
    assert_true(st.bytes_checked >= good);
    assert_true(st.last_pass_end_ms >= before);
    assert_int_equal(st.pass_progress_fragments, 0);

    cairn_node_bad_t v[64];
    size_t n = bad_list(e, v);
    check_damage_listed(v, n);
    for (size_t i = 0; i < n; i++)
        assert_true(v[i].found_ms >= before && v[i].found_ms <= st.last_pass_end_ms);
    for (unsigned i = 0; i < NFRAG; i++) {
        assert_int_equal(exists(e, i, i % 6), i >= 6);
        cairn_frag_hdr_t h;
        uint64_t size;
        int64_t mtime;
        uint8_t oid[16];
        oid_of(oid, i);
        assert_int_equal(cairn_fstore_stat(e->st, oid, i % 6, &h, &size, &mtime), i >= 6 ? 0 : CAIRN_ENOTFOUND);
    }

    /* the next pass sees only the intact ones, and reads each byte once */
    uint64_t b0 = st.bytes_checked;
    assert_int_equal(cairn_scrub_pass(s), 0);
    cairn_scrub_status(s, &st);
    assert_int_equal(st.bytes_checked - b0, good);
    assert_int_equal(st.passes, 2);
    assert_int_equal(st.fragments_checked, NFRAG + 6);
    assert_int_equal(st.bad_found, 6);
    assert_int_equal(bad_list(e, v), 6);
    cairn_scrub_destroy(s);
}

/* Blocks larger than the 1 MiB read window. */
static void test_large_blocks(void **state)
{
    env_t *e = *state;
    cairn_buf_t f;
    cairn_buf_init(&f);
    size_t len = put(e, 50, 0, 1, 2u << 20, (5u << 20) + 3, &f); /* 3 stripes of 2 MiB, 1 MiB, 3 bytes */
    put(e, 51, 0, 1, 2u << 20, (5u << 20) + 3, &f);
    flip(e, 51, 0, 64 + 2 * ((2u << 20) + 8) + 1000); /* in the last full-size block */
    cairn_scrub_t *s = scrubber(e, 0, 1000);
    assert_int_equal(cairn_scrub_pass(s), 0);
    cairn_node_scrub_status_t st;
    cairn_scrub_status(s, &st);
    assert_int_equal(st.fragments_checked, 2);
    assert_int_equal(st.bad_found, 1);
    cairn_node_bad_t v[4];
    assert_int_equal(bad_list(e, v), 1);
    assert_int_equal(listed(v, 1, 51, 0), CAIRN_BAD_BLOCK);
    uint64_t b0 = st.bytes_checked;
    assert_int_equal(cairn_scrub_pass(s), 0);
    cairn_scrub_status(s, &st);
    assert_int_equal(st.bytes_checked - b0, len);
    cairn_scrub_destroy(s);
    cairn_buf_dispose(&f);
}

static void reopen(env_t *e)
{
    cairn_fstore_close(e->st);
    assert_int_equal(cairn_fstore_open(e->dir, NODE_ID, &e->st), 0);
}

static void test_bad_list_persists(void **state)
{
    env_t *e = *state;
    populate_and_damage(e);
    cairn_scrub_t *s = scrubber(e, 0, 1000);
    assert_int_equal(cairn_scrub_pass(s), 0);
    cairn_scrub_destroy(s);
    cairn_node_bad_t v[64], w[64];
    size_t n = bad_list(e, v);
    assert_int_equal(n, 6);

    /* a restart finds the same list */
    reopen(e);
    assert_int_equal(bad_list(e, w), n);
    assert_memory_equal(v, w, n * sizeof(*v));

    /* a repair takes one off, for good */
    cairn_buf_t f;
    cairn_buf_init(&f);
    put(e, 3, 3, 4, 4096, 1000 + 3 * 37000, &f);
    assert_int_equal(bad_list(e, w), 5);
    assert_int_equal(listed(w, 5, 3, 3), -1);
    reopen(e);
    assert_int_equal(bad_list(e, w), 5);
    assert_int_equal(listed(w, 5, 3, 3), -1);

    /* damaged again and found by a read: listed again, one more copy */
    resize(e, 3, 3, 100);
    uint8_t oid[16];
    oid_of(oid, 3);
    cairn_buf_t out;
    cairn_buf_init(&out);
    assert_int_equal(cairn_fstore_get(e->st, oid, 3, 0, 1, &out, 0), CAIRN_ECORRUPT);
    assert_int_equal(bad_list(e, w), 6);
    assert_int_equal(listed(w, 6, 3, 3), CAIRN_BAD_SIZE);
    reopen(e);
    assert_int_equal(bad_list(e, w), 6);

    /* a copy renamed into quarantine by a node that died before anything
     * else happened is on the list after the restart */
    put(e, 20, 1, 4, 4096, 5000, &f);
    char from[PATH_MAX], to[PATH_MAX], hex[33];
    path_of(e, 20, 1, from, sizeof from);
    oid_of(oid, 20);
    cairn_hex(oid, 16, hex);
    snprintf(to, sizeof to, "%s/quarantine/%s.1.%lld.%d", e->dir, hex, (long long)time(NULL) * 1000, CAIRN_BAD_BLOCK);
    assert_int_equal(rename(from, to), 0);
    reopen(e);
    assert_int_equal(bad_list(e, w), 7);
    assert_int_equal(listed(w, 7, 20, 1), CAIRN_BAD_BLOCK);
    assert_int_equal(cairn_fstore_get(e->st, oid, 1, 0, 1, &out, 0), 0); /* intact, served from quarantine */

    /* delete removes every copy of one fragment; expiry removes the rest */
    oid_of(oid, 3);
    assert_int_equal(cairn_fstore_delete(e->st, oid, 3), 0);
    assert_int_equal(bad_list(e, w), 6);
    assert_int_equal(cairn_fstore_delete(e->st, oid, 3), CAIRN_ENOTFOUND);
    assert_int_equal(cairn_fstore_expire_quarantine(e->st, (int64_t)time(NULL) * 1000 - 3600 * 1000), 0);
    assert_int_equal(cairn_fstore_expire_quarantine(e->st, (int64_t)time(NULL) * 1000 + 1000), 6);
    assert_int_equal(bad_list(e, w), 0);
    char qdir[PATH_MAX];
    snprintf(qdir, sizeof qdir, "%s/quarantine", e->dir);
    DIR *d = opendir(qdir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        assert_true(de->d_name[0] == '.');
    closedir(d);
    reopen(e);
    assert_int_equal(bad_list(e, w), 0);
    cairn_buf_dispose(&out);
    cairn_buf_dispose(&f);
}

/* Reads stay within the rate, roughly: a lower bound on the time only, as a
 * slow machine may take longer but never shorter. */
static void test_rate_limit(void **state)
{
    env_t *e = *state;
    cairn_buf_t f;
    cairn_buf_init(&f);
    uint64_t total = 0;
    for (unsigned i = 0; i < 24; i++)
        total += put(e, 100 + i, 0, 2, 65536, 600000, &f);
    const uint64_t rate = 20 * 1000 * 1000;
    cairn_scrub_t *s = scrubber(e, rate, 1000);
    double t0 = now_s();
    assert_int_equal(cairn_scrub_pass(s), 0);
    double limited = now_s() - t0;
    cairn_node_scrub_status_t st;
    cairn_scrub_status(s, &st);
    assert_int_equal(st.bad_found, 0);
    assert_true(st.bytes_checked >= total);
    double want = (double)st.bytes_checked / (double)rate;
    if (limited < 0.8 * want)
        fail_msg("%llu bytes at %llu B/s in %.3f s, expected at least %.3f s", (unsigned long long)st.bytes_checked,
                 (unsigned long long)rate, limited, 0.8 * want);
    cairn_scrub_destroy(s);
    cairn_buf_dispose(&f);
}

/* Resident pages of a file, per mincore(). */
static double resident(const char *path)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat sb;
    assert_int_equal(fstat(fd, &sb), 0);
    void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(m != MAP_FAILED);
    long pg = sysconf(_SC_PAGESIZE);
    size_t np = ((size_t)sb.st_size + (size_t)pg - 1) / (size_t)pg, in = 0;
    unsigned char *vec = malloc(np);
    assert_int_equal(mincore(m, (size_t)sb.st_size, vec), 0);
    for (size_t i = 0; i < np; i++)
        in += vec[i] & 1;
    free(vec);
    munmap(m, (size_t)sb.st_size);
    close(fd);
    return (double)in / (double)np;
}

/* A pass neither fills the page cache with what it reads nor evicts what
 * clients had cached. */
static void test_page_cache(void **state)
{
    env_t *e = *state;
    struct statfs sf;
    assert_int_equal(statfs(e->dir, &sf), 0);
    if (sf.f_type == 0x01021994) /* tmpfs: the page cache is the storage */
        skip();
    cairn_buf_t f;
    cairn_buf_init(&f);
    put(e, 200, 1, 1, 65536, 8u << 20, &f);
    char path[PATH_MAX];
    path_of(e, 200, 1, path, sizeof path);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    assert_true(resident(path) < 0.05);

    cairn_scrub_t *s = scrubber(e, 0, 1000);
    assert_int_equal(cairn_scrub_pass(s), 0);
    double cold = resident(path);
    /* a client reads it: hot */
    uint8_t *buf = malloc(f.len);
    assert_int_equal(pread(fd, buf, f.len, 0), (ssize_t)f.len);
    assert_true(resident(path) > 0.95);
    assert_int_equal(cairn_scrub_pass(s), 0);
    double hot = resident(path);
    cairn_node_scrub_status_t st;
    cairn_scrub_status(s, &st);
    assert_int_equal(st.fragments_checked, 2);
    assert_int_equal(st.bad_found, 0);
    /* Readahead and a busy machine leave some pages behind (up to 0.13 seen);
     * without the DONTNEED the whole file stays (1.00). */
    if (cold > 0.5 || hot < 0.9)
        fail_msg("resident after a pass over a cold file %.2f, over a hot one %.2f", cold, hot);
    cairn_scrub_destroy(s);
    free(buf);
    close(fd);
    cairn_buf_dispose(&f);
}

static void wait_status(env_t *e, cairn_node_scrub_status_t *st, int (*done)(const cairn_node_scrub_status_t *))
{
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(cairn_node_scrub_status(&e->c, st), 0);
        if (done(st))
            return;
        usleep(5000);
    }
    fail_msg("scrubber made no progress: passes %llu, fragments %llu, bad %llu", (unsigned long long)st->passes,
             (unsigned long long)st->fragments_checked, (unsigned long long)st->bad_found);
}

static int two_passes(const cairn_node_scrub_status_t *st) { return st->passes >= 2; }
static int found_one(const cairn_node_scrub_status_t *st) { return st->bad_found >= 1; }

/* The thread runs passes on its own; NODE_SCRUB_STATUS and NODE_BAD_LIST
 * report them; the end of the last pass survives a restart. */
static void test_thread_and_wire(void **state)
{
    env_t *e = *state;
    serve(e);
    cairn_node_scrub_status_t st;
    assert_int_equal(cairn_node_scrub_status(&e->c, &st), 0); /* no scrubber attached: zeros */
    assert_int_equal(st.passes, 0);
    assert_int_equal(st.last_pass_end_ms, 0);

    cairn_buf_t f;
    cairn_buf_init(&f);
    for (unsigned i = 0; i < 5; i++)
        put(e, 300 + i, 2, 4, 4096, 50000, &f);
    cairn_scrub_t *s = scrubber(e, 50 * 1000 * 1000, 20);
    cairn_fstore_set_scrub(e->st, s);
    assert_int_equal(cairn_scrub_start(s), 0);
    wait_status(e, &st, two_passes);
    assert_true(st.fragments_checked >= 10);
    assert_int_equal(st.bad_found, 0);
    assert_true(st.last_pass_end_ms > 0);

    cairn_node_bad_t v[8];
    size_t n;
    int more;
    assert_int_equal(cairn_node_bad_list(&e->c, v, 8, &n, &more), 0);
    assert_int_equal(n, 0);
    flip(e, 302, 2, 64 + 4096 + 8 + 5);
    wait_status(e, &st, found_one);
    assert_int_equal(cairn_node_bad_list(&e->c, v, 8, &n, &more), 0);
    assert_int_equal(n, 1);
    assert_int_equal(more, 0);
    assert_int_equal(listed(v, n, 302, 2), CAIRN_BAD_BLOCK);
    assert_int_equal(cairn_node_bad_list(&e->c, v, 0, &n, &more), 0); /* max 0: none, but more */
    assert_int_equal(n, 0);
    assert_int_equal(more, 1);
    cairn_node_info_t info;
    assert_int_equal(cairn_node_info(&e->c, &info), 0);
    assert_int_equal(info.id, NODE_ID);
    assert_int_equal(info.fragments, 4);

    cairn_fstore_set_scrub(e->st, NULL);
    cairn_scrub_destroy(s);
    s = scrubber(e, 0, 1000);
    cairn_node_scrub_status_t again;
    cairn_scrub_status(s, &again);
    assert_true(again.last_pass_end_ms >= st.last_pass_end_ms);
    assert_int_equal(again.passes, 0);
    cairn_scrub_destroy(s);
    cairn_buf_dispose(&f);
}

/* A pass stopped half-way resumes after the last fragment it checked. */
static void test_resume(void **state)
{
    env_t *e = *state;
    enum { N = 20 };
    cairn_buf_t f;
    cairn_buf_init(&f);
    for (unsigned i = 0; i < N; i++)
        put(e, 400 + i, 0, 1, 65536, 65536, &f);
    cairn_scrub_t *s = scrubber(e, 500 * 1000, 3600 * 1000); /* ~2.6 s a pass */
    assert_int_equal(cairn_scrub_start(s), 0);
    cairn_node_scrub_status_t st;
    for (int i = 0; i < 1000; i++) {
        cairn_scrub_status(s, &st);
        if (st.pass_progress_fragments >= 3)
            break;
        usleep(2000);
    }
    cairn_scrub_destroy(s);
    uint64_t done = st.pass_progress_fragments;
    assert_true(done >= 3);
    if (done > N - 3)
        skip(); /* this machine stalled past the whole pass; nothing to resume */

    s = scrubber(e, 0, 3600 * 1000);
    assert_int_equal(cairn_scrub_pass(s), 0);
    cairn_scrub_status(s, &st);
    assert_int_equal(st.passes, 1);
    /* one more fragment may have been checked between the status and the stop */
    if (st.fragments_checked > N - done || st.fragments_checked + 1 < N - done)
        fail_msg("resumed pass checked %llu fragments; %llu of %d were done before the stop",
                 (unsigned long long)st.fragments_checked, (unsigned long long)done, N);
    /* the next pass starts over */
    assert_int_equal(cairn_scrub_pass(s), 0);
    cairn_scrub_status(s, &st);
    assert_int_equal(st.passes, 2);
    assert_true(st.fragments_checked >= N);
    cairn_scrub_destroy(s);
    cairn_buf_dispose(&f);
}

/* Poll NODE_SCRUB_STATUS until request want is served; fails after 10 s. */
static void wait_served(env_t *e, uint64_t want, cairn_node_scrub_status_t *st)
{
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(cairn_node_scrub_status(&e->c, st), 0);
        assert_true(st->now_requested >= want);
        assert_true(st->now_done <= st->now_requested);
        if (st->now_done >= want)
            return;
        usleep(5000);
    }
    fail_msg("request not served: now_requested %llu, now_done %llu, passes %llu",
             (unsigned long long)st->now_requested, (unsigned long long)st->now_done, (unsigned long long)st->passes);
}

/* NODE_SCRUB_NOW during a slow pass: the pass goes on at the requested
 * rate, the next one starts at once, and the request is served when that
 * one is back where the first was when the request came; damage on both
 * sides of that point is found by then. Afterwards the configured rate
 * applies again. Where scrubbing is off, a request runs a pass only when
 * it names a rate, and nothing runs once it is served. */
static void test_scrub_now(void **state)
{
    env_t *e = *state;
    enum { N = 20 };
    serve(e);
    assert_int_equal(cairn_node_scrub_now(&e->c, 0), CAIRN_EUNAVAIL); /* no scrubber attached */
    cairn_buf_t f;
    cairn_buf_init(&f);
    unsigned first = 0, last = 0; /* the seeds whose oids sort first and last */
    uint8_t lo[16], hi[16], oid[16];
    for (unsigned i = 0; i < N; i++) {
        put(e, 500 + i, 0, 1, 65536, 65536, &f);
        oid_of(oid, 500 + i);
        if (i == 0 || memcmp(oid, lo, 16) < 0)
            memcpy(lo, oid, 16), first = 500 + i;
        if (i == 0 || memcmp(oid, hi, 16) > 0)
            memcpy(hi, oid, 16), last = 500 + i;
    }
    const double slow = 500 * 1000, frag = 65536 + 64 + 8; /* B/s: ~2.6 s a pass; bytes a fragment */
    cairn_scrub_t *s = scrubber(e, (uint64_t)slow, 3600 * 1000);
    cairn_fstore_set_scrub(e->st, s);
    assert_int_equal(cairn_scrub_start(s), 0);
    cairn_node_scrub_status_t st;
    for (int i = 0; i < 2000; i++) {
        cairn_scrub_status(s, &st);
        if (st.pass_progress_fragments >= 2)
            break;
        usleep(2000);
    }
    assert_true(st.pass_progress_fragments >= 2);
    assert_int_equal(st.now_requested, 0);
    flip(e, first, 0, 64 + 100); /* behind the cursor of the pass under way */
    flip(e, last, 0, 64 + 100);  /* ahead of it */
    if (st.pass_progress_fragments > N - 4)
        skip(); /* this machine stalled past the whole pass */
    double left = (double)(N - st.pass_progress_fragments) * frag / slow; /* of the pass, at the slow rate */

    double t0 = now_s();
    assert_int_equal(cairn_node_scrub_now(&e->c, 1000), 0);
    assert_int_equal(cairn_node_scrub_status(&e->c, &st), 0);
    uint64_t want = st.now_requested, passes = st.passes;
    assert_int_equal(want, 1);
    wait_served(e, want, &st);
    double took = now_s() - t0;
    assert_int_equal(st.passes, passes + 1); /* the one under way; the next is under way */
    assert_int_equal(st.bad_found, 2);
    assert_int_equal(exists(e, first, 0), 0);
    assert_int_equal(exists(e, last, 0), 0);
    if (took > left / 2)
        fail_msg("the request took %.2f s to serve; the rest of the pass under way alone, at the old rate, %.2f s",
                 took, left);
    /* Served: the configured rate again. In 0.5 s at 500 kB/s: 4 fragments,
     * plus a burst and the read that was waiting. */
    uint64_t before = st.fragments_checked;
    usleep(500 * 1000);
    assert_int_equal(cairn_node_scrub_status(&e->c, &st), 0);
    if (st.fragments_checked > before + 6)
        fail_msg("%llu fragments checked in 0.5 s after the request was served, at 500 kB/s",
                 (unsigned long long)(st.fragments_checked - before));
    cairn_fstore_set_scrub(e->st, NULL);
    cairn_scrub_destroy(s);

    /* Scrubbing off: no configured rate, so a request must name one. */
    cairn_scrub_opts_t off = {.enabled = 0, .interval_ms = 0, .keep_ms = CAIRN_SCRUB_KEEP_MS};
    s = cairn_scrub_create(e->st, &off);
    cairn_fstore_set_scrub(e->st, s);
    assert_int_equal(cairn_scrub_start(s), 0);
    assert_int_equal(cairn_node_scrub_now(&e->c, 0), CAIRN_EINVAL);
    assert_int_equal(cairn_node_scrub_status(&e->c, &st), 0);
    assert_int_equal(st.now_requested, 0);
    assert_int_equal(cairn_node_scrub_now(&e->c, 100), 0);
    assert_int_equal(cairn_node_scrub_status(&e->c, &st), 0);
    wait_served(e, st.now_requested, &st);
    /* The previous scrubber stopped mid-pass; this one resumed that pass,
     * finished it, and paused the next once back at the request's point. */
    uint64_t checked = st.fragments_checked;
    assert_true(checked >= N - 2 && checked <= 2 * (N - 2));
    usleep(200 * 1000);
    assert_int_equal(cairn_node_scrub_status(&e->c, &st), 0);
    assert_int_equal(st.fragments_checked, checked);
    assert_int_equal(st.bad_found, 0);
    cairn_fstore_set_scrub(e->st, NULL);
    cairn_scrub_destroy(s);
    cairn_buf_dispose(&f);
}

/* Scrub throughput without a rate limit, for the record (not a check):
 * CAIRN_SCRUB_BENCH_MB=512 build/tests/storage-node/scrub_test */
static void test_bench(void **state)
{
    env_t *e = *state;
    const char *mb = getenv("CAIRN_SCRUB_BENCH_MB");
    if (mb == NULL)
        skip();
    uint64_t want = strtoull(mb, NULL, 10) << 20, total = 0;
    cairn_buf_t f;
    cairn_buf_init(&f);
    unsigned nf = 0;
    for (; total < want; nf++)
        total += put(e, 1000 + nf, 0, 4, 256 * 1024, 16u << 20, &f); /* 4 MiB fragments, 256 KiB blocks */
    for (unsigned i = 0; i < nf; i++)
        uncache(e, 1000 + i, 0); /* read from disk, as a pass over a large store would */
    cairn_scrub_t *s = scrubber(e, 0, 1000);
    double t0 = now_s();
    assert_int_equal(cairn_scrub_pass(s), 0);
    double dt = now_s() - t0;
    cairn_node_scrub_status_t st;
    cairn_scrub_status(s, &st);
    printf("scrub, unlimited rate, from disk: %llu fragments, %.1f MiB in %.2f s = %.0f MB/s\n",
           (unsigned long long)st.fragments_checked, st.bytes_checked / 1048576.0, dt, st.bytes_checked / dt / 1e6);
    /* the same from the page cache: the cost of verification alone */
    for (unsigned i = 0; i < nf; i++) {
        char path[PATH_MAX];
        path_of(e, 1000 + i, 0, path, sizeof path);
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        while (fread(f.base, 1, f.cap, fp) > 0)
            ;
        fclose(fp);
    }
    uint64_t b0 = st.bytes_checked;
    t0 = now_s();
    assert_int_equal(cairn_scrub_pass(s), 0);
    dt = now_s() - t0;
    cairn_scrub_status(s, &st);
    printf("scrub, unlimited rate, page cache: %.1f MiB in %.2f s = %.0f MB/s\n", (st.bytes_checked - b0) / 1048576.0,
           dt, (st.bytes_checked - b0) / dt / 1e6);
    cairn_scrub_destroy(s);
    cairn_buf_dispose(&f);
}

int main(void)
{
    cairn_log_init("test", "scrub", getenv("CAIRN_TEST_LOG") ? CAIRN_LOG_DEBUG : CAIRN_LOG_ERROR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pass_finds_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_list_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_and_wire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scrub_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bench, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
