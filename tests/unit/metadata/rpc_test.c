/*
 * rpc_test.c — the metadata service end to end on loopback: the client
 * calls of meta.h against the handlers of rpc.c, served by srv.h, over a
 * scratch database.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cairn/err.h"
#include "cairn/meta.h"
#include "cairn/srv.h"
#include "cairn/wire.h"
#include "fsm.h"
#include "rpc.h"

typedef struct {
    char dir[64];
    meta_fsm_t *fsm;
    meta_log_t *log;
    meta_rpc_t rpc;
    cairn_wire_key_t *key;
    int lfd;
    cairn_srv_t *srv;
    pthread_t thread;
    cairn_conn_t conn;
    cairn_buf_t scratch;
} fx_t;

static void *run_srv(void *arg)
{
    cairn_srv_run(arg);
    return NULL;
}

static int setup(void **state)
{
    fx_t *x = calloc(1, sizeof *x);
    snprintf(x->dir, sizeof x->dir, "/tmp/cairn-rpc-test.XXXXXX");
    if (mkdtemp(x->dir) == NULL)
        return -1;
    assert_int_equal(meta_fsm_create(x->dir, META_FSM_NOSYNC, &x->fsm), 0);
    assert_int_equal(meta_log_create(x->fsm, &x->log), 0);
    x->rpc = (meta_rpc_t){x->fsm, x->log};
    const char *secret = "0123456789abcdef-test";
    assert_int_equal(cairn_wire_key_create(secret, strlen(secret), &x->key), 0);
    x->lfd = cairn_listen("127.0.0.1:0", 0);
    assert_true(x->lfd >= 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(x->lfd, (struct sockaddr *)&sa, &sl), 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", ntohs(sa.sin_port));
    assert_int_equal(cairn_srv_create(x->lfd, x->key, meta_rpc_routes, meta_rpc_nroutes, &x->rpc, 5000, &x->srv), 0);
    assert_int_equal(pthread_create(&x->thread, NULL, run_srv, x->srv), 0);
    cairn_conn_init(&x->conn, addr, x->key, 5000);
    cairn_buf_init(&x->scratch);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx_t *x = *state;
    cairn_conn_dispose(&x->conn);
    cairn_srv_stop(x->srv);
    pthread_join(x->thread, NULL);
    cairn_srv_destroy(x->srv);
    close(x->lfd);
    meta_log_destroy(x->log);
    meta_fsm_destroy(x->fsm);
    cairn_wire_key_destroy(x->key);
    cairn_buf_dispose(&x->scratch);
    char p[128];
    snprintf(p, sizeof p, "%s/data.mdb", x->dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", x->dir);
    unlink(p);
    rmdir(x->dir);
    free(x);
    return 0;
}

static void make_rec(cairn_obj_rec_t *r, uint8_t oid0, uint64_t size, cairn_buf_t *meta)
{
    memset(r, 0, sizeof *r);
    r->oid[0] = oid0;
    r->oid[15] = 0xaa;
    r->size = size;
    r->mtime_ms = 1700000000123;
    snprintf(r->etag, sizeof r->etag, "d41d8cd98f00b204e9800998ecf8427e-%u", oid0);
    r->k = 4;
    r->m = 2;
    r->block_size = 65536;
    for (int i = 0; i < 6; i++)
        r->nodes[i] = 10u + (uint32_t)i;
    r->content_type = "image/jpeg";
    r->content_type_len = 10;
    cairn_buf_reset(meta);
    cairn_obj_meta_add(meta, "color", 5, "blue", 4);
    r->user_meta = meta->base;
    r->user_meta_len = meta->len;
}

static void test_users_and_buckets(void **state)
{
    fx_t *x = *state;
    char secret[64], owner[64];
    assert_int_equal(cairn_meta_user_get(&x->conn, 0, "AK", secret, sizeof secret, owner, sizeof owner),
                     CAIRN_ENOSUCHUSER);
    assert_int_equal(cairn_meta_user_put(&x->conn, 0, "AK", "s3cr3t", "AK", "cairn"), 0);
    assert_int_equal(cairn_meta_user_get(&x->conn, 0, "AK", secret, sizeof secret, owner, sizeof owner), 0);
    assert_string_equal(secret, "s3cr3t");
    assert_string_equal(owner, "AK");
    assert_int_equal(cairn_meta_user_get(&x->conn, 0, "AK", secret, 3, owner, sizeof owner), CAIRN_ETOOBIG);

    /* the start-up path: a no-op when the user is already right */
    uint64_t before = meta_fsm_applied(x->fsm);
    assert_int_equal(meta_rpc_ensure_user(&x->rpc, "AK", "s3cr3t", "AK", "cairn"), 0);
    assert_int_equal(meta_fsm_applied(x->fsm), before);
    assert_int_equal(meta_rpc_ensure_user(&x->rpc, "AK", "new", "AK", "cairn"), 0);
    assert_int_equal(meta_fsm_applied(x->fsm), before + 1);

    assert_int_equal(cairn_meta_bucket_create(&x->conn, 0, "pics", "AK"), 0);
    assert_int_equal(cairn_meta_bucket_create(&x->conn, 0, "pics", "AK"), CAIRN_EOWNED);
    assert_int_equal(cairn_meta_bucket_create(&x->conn, 0, "pics", "BK"), CAIRN_EEXIST);
    assert_int_equal(cairn_meta_bucket_create(&x->conn, 0, "", "AK"), CAIRN_EINVAL);
    assert_int_equal(cairn_meta_bucket_create(&x->conn, 0, "docs", "AK"), 0);
    assert_int_equal(cairn_meta_bucket_create(&x->conn, 0, "other", "BK"), 0);

    cairn_bucket_rec_t b;
    assert_int_equal(cairn_meta_bucket_head(&x->conn, 0, "pics", &x->scratch, &b), 0);
    assert_int_equal(b.name_len, 4);
    assert_memory_equal(b.owner, "AK", 2);
    assert_true(b.ctime_ms > 1600000000000); /* stamped by the service */
    assert_int_equal(cairn_meta_bucket_head(&x->conn, 0, "nope", &x->scratch, &b), CAIRN_EBUCKET);

    cairn_bucket_rec_t *v;
    size_t n;
    assert_int_equal(cairn_meta_bucket_list(&x->conn, 0, "AK", &x->scratch, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(v[0].name, "docs", 4);
    assert_memory_equal(v[1].name, "pics", 4);
    free(v);

    assert_int_equal(cairn_meta_bucket_delete(&x->conn, 0, "docs", "BK"), CAIRN_EEXIST);
    assert_int_equal(cairn_meta_bucket_delete(&x->conn, 0, "docs", "AK"), 0);
    assert_int_equal(cairn_meta_bucket_delete(&x->conn, 0, "docs", "AK"), CAIRN_EBUCKET);
}

static void test_objects(void **state)
{
    fx_t *x = *state;
    cairn_buf_t um;
    cairn_buf_init(&um);
    cairn_obj_rec_t r, got, old;
    int had_old;
    make_rec(&r, 1, 1234, &um);
    assert_int_equal(cairn_meta_obj_put(&x->conn, 0, "b", "k", 1, &r, &x->scratch, &had_old, &old), CAIRN_EBUCKET);
    assert_int_equal(cairn_meta_bucket_create(&x->conn, 0, "b", "AK"), 0);
    assert_int_equal(cairn_meta_obj_put(&x->conn, 0, "b", "k", 1, &r, &x->scratch, &had_old, &old), 0);
    assert_int_equal(had_old, 0);
    assert_int_equal(cairn_meta_obj_get(&x->conn, 0, "b", "k", 1, &x->scratch, &got), 0);
    assert_memory_equal(got.oid, r.oid, 16);
    assert_int_equal(got.size, 1234);
    assert_string_equal(got.etag, r.etag);
    assert_int_equal(got.content_type_len, 10);
    assert_memory_equal(got.content_type, "image/jpeg", 10);
    assert_int_equal(got.nodes[5], 15);
    size_t off = 0;
    const char *mn, *mv;
    size_t mnl, mvl;
    assert_int_equal(cairn_obj_meta_next(got.user_meta, got.user_meta_len, &off, &mn, &mnl, &mv, &mvl), 1);
    assert_memory_equal(mv, "blue", 4);

    make_rec(&r, 2, 99, &um);
    assert_int_equal(cairn_meta_obj_put(&x->conn, 0, "b", "k", 1, &r, &x->scratch, &had_old, &old), 0);
    assert_int_equal(had_old, 1);
    assert_int_equal(old.oid[0], 1);
    assert_int_equal(old.size, 1234);

    assert_int_equal(cairn_meta_bucket_delete(&x->conn, 0, "b", "AK"), CAIRN_ENOTEMPTY);
    assert_int_equal(cairn_meta_obj_delete(&x->conn, 0, "b", "k", 1, &x->scratch, &had_old, &old), 0);
    assert_int_equal(had_old, 1);
    assert_int_equal(old.oid[0], 2);
    assert_int_equal(cairn_meta_obj_delete(&x->conn, 0, "b", "k", 1, &x->scratch, &had_old, &old),
                     CAIRN_ENOTFOUND);
    assert_int_equal(had_old, 0);
    assert_int_equal(cairn_meta_obj_get(&x->conn, 0, "b", "k", 1, &x->scratch, &got), CAIRN_ENOTFOUND);

    /* the garbage list holds both versions; collect them */
    uint8_t after[16] = {0};
    cairn_meta_gc_entry_t *g;
    size_t n;
    int more;
    assert_int_equal(cairn_meta_gc_list(&x->conn, 0, after, 1, &x->scratch, &g, &n, &more), 0);
    assert_int_equal(n, 1);
    assert_int_equal(more, 1);
    assert_int_equal(g[0].oid[0], 1);
    assert_int_equal(g[0].rec.size, 1234);
    memcpy(after, g[0].oid, 16);
    free(g);
    assert_int_equal(cairn_meta_gc_list(&x->conn, 0, after, 10, &x->scratch, &g, &n, &more), 0);
    assert_int_equal(n, 1);
    assert_int_equal(more, 0);
    assert_int_equal(g[0].oid[0], 2);
    assert_int_equal(cairn_meta_gc_done(&x->conn, 0, g[0].oid), 0);
    assert_int_equal(cairn_meta_gc_done(&x->conn, 0, g[0].oid), 0);
    free(g);
    memset(after, 0, 16);
    assert_int_equal(cairn_meta_gc_list(&x->conn, 0, after, 10, &x->scratch, &g, &n, &more), 0);
    assert_int_equal(n, 1);
    free(g);

    assert_int_equal(cairn_meta_bucket_delete(&x->conn, 0, "b", "AK"), 0);
    cairn_buf_dispose(&um);
}

static void test_list(void **state)
{
    fx_t *x = *state;
    cairn_buf_t um;
    cairn_buf_init(&um);
    cairn_obj_rec_t r, old;
    int had_old;
    assert_int_equal(cairn_meta_bucket_create(&x->conn, 0, "b", "AK"), 0);
    /* 30 keys: dir/0..9 short, long/ keys of 600 bytes, and top-level files */
    char key[700];
    for (int i = 0; i < 30; i++) {
        size_t kl;
        if (i < 10) {
            kl = (size_t)snprintf(key, sizeof key, "dir/%02d", i);
        } else if (i < 20) {
            memset(key, 'L', 600);
            memcpy(key, "long/", 5);
            key[598] = (char)('a' + i);
            kl = 600;
        } else {
            kl = (size_t)snprintf(key, sizeof key, "f%02d", i);
        }
        make_rec(&r, (uint8_t)i, (uint64_t)i, &um);
        assert_int_equal(cairn_meta_obj_put(&x->conn, 0, "b", key, kl, &r, &x->scratch, &had_old, &old), 0);
    }
    cairn_meta_list_t l;
    cairn_meta_list_init(&l);
    cairn_meta_list_req_t q = {.bucket = "b", .delimiter = "/", .delimiter_len = 1, .max_keys = 1000};
    assert_int_equal(cairn_meta_obj_list(&x->conn, 0, &q, &l), 0);
    assert_int_equal(l.nprefixes, 2);
    assert_memory_equal(l.prefixes[0].p, "dir/", 4);
    assert_memory_equal(l.prefixes[1].p, "long/", 5);
    assert_int_equal(l.nentries, 10);
    assert_int_equal(l.truncated, 0);

    /* page through long/ three at a time */
    q.prefix = "long/";
    q.prefix_len = 5;
    q.max_keys = 3;
    char sa[700];
    size_t total = 0, pages = 0;
    for (;;) {
        assert_int_equal(cairn_meta_obj_list(&x->conn, 0, &q, &l), 0);
        for (size_t i = 0; i < l.nentries; i++) {
            assert_int_equal(l.entries[i].key_len, 600);
            assert_int_equal((unsigned char)l.entries[i].key[598], 'a' + 10 + total + i);
            assert_int_equal(l.entries[i].size, 10 + total + i);
            assert_int_equal(l.entries[i].mtime_ms, 1700000000123);
        }
        total += l.nentries;
        pages++;
        if (!l.truncated)
            break;
        memcpy(sa, l.next, l.next_len);
        q.start_after = sa;
        q.start_after_len = l.next_len;
    }
    assert_int_equal(total, 10);
    assert_int_equal(pages, 4);

    q.bucket = "nope";
    assert_int_equal(cairn_meta_obj_list(&x->conn, 0, &q, &l), CAIRN_EBUCKET);
    cairn_meta_list_dispose(&l);
    cairn_buf_dispose(&um);
}

/* Bodies that are not the documented fields never reach the log. */
static void test_malformed(void **state)
{
    fx_t *x = *state;
    uint64_t before = meta_fsm_applied(x->fsm);
    static const uint16_t ops[] = {CAIRN_OP_META_USER_GET,     CAIRN_OP_META_USER_PUT,   CAIRN_OP_META_BUCKET_CREATE,
                                   CAIRN_OP_META_BUCKET_DELETE, CAIRN_OP_META_BUCKET_HEAD, CAIRN_OP_META_BUCKET_LIST,
                                   CAIRN_OP_META_OBJ_PUT,      CAIRN_OP_META_OBJ_GET,    CAIRN_OP_META_OBJ_DELETE,
                                   CAIRN_OP_META_OBJ_LIST,     CAIRN_OP_META_GC_DONE,    CAIRN_OP_META_GC_LIST};
    uint8_t junk[7] = {9, 0, 0, 0, 'a', 'b', 'c'};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        struct iovec iov = {junk, sizeof junk};
        int32_t status = 0;
        assert_int_equal(cairn_conn_call(&x->conn, ops[i], 0, &iov, 1, &x->scratch, &status), 0);
        assert_int_equal(status, CAIRN_EPROTO);
    }
    assert_int_equal(meta_fsm_applied(x->fsm), before);
    int32_t status = -1;
    assert_int_equal(cairn_conn_call(&x->conn, CAIRN_OP_PING, 0, NULL, 0, &x->scratch, &status), 0);
    assert_int_equal(status, 0);
}

/* Several clients writing at once: every command applied exactly once. */
typedef struct {
    fx_t *x;
    int id;
} worker_t;

static void *writer(void *arg)
{
    worker_t *w = arg;
    cairn_conn_t c;
    cairn_conn_init(&c, w->x->conn.addr, w->x->key, 5000);
    cairn_buf_t scratch, um;
    cairn_buf_init(&scratch);
    cairn_buf_init(&um);
    for (int i = 0; i < 50; i++) {
        char key[32];
        cairn_obj_rec_t r, old;
        int had_old;
        make_rec(&r, (uint8_t)i, (uint64_t)i, &um);
        r.oid[1] = (uint8_t)w->id;
        snprintf(key, sizeof key, "w%d/%02d", w->id, i);
        if (cairn_meta_obj_put(&c, 0, "b", key, strlen(key), &r, &scratch, &had_old, &old) != 0)
            abort();
    }
    cairn_buf_dispose(&scratch);
    cairn_buf_dispose(&um);
    cairn_conn_dispose(&c);
    return NULL;
}

static void test_concurrent(void **state)
{
    fx_t *x = *state;
    assert_int_equal(cairn_meta_bucket_create(&x->conn, 0, "b", "AK"), 0);
    uint64_t before = meta_fsm_applied(x->fsm);
    pthread_t t[4];
    worker_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){x, i};
        assert_int_equal(pthread_create(&t[i], NULL, writer, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(meta_fsm_applied(x->fsm), before + 200);
    cairn_meta_list_t l;
    cairn_meta_list_init(&l);
    cairn_meta_list_req_t q = {.bucket = "b", .max_keys = 1000};
    assert_int_equal(cairn_meta_obj_list(&x->conn, 0, &q, &l), 0);
    assert_int_equal(l.nentries, 200);
    cairn_meta_list_dispose(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_users_and_buckets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
