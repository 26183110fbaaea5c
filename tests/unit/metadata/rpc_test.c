/*
 * rpc_test.c — the metadata service end to end on loopback: the client
 * calls of meta.h against the handlers of rpc.c, served by srv.h, over a
 * scratch database replicated by a one-replica Raft group (raft_glue.c),
 * with snapshots every 64 entries so that tests cross several of them.
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
#include "cairn/cfg.h"
#include "fsm.h"
#include "raft_glue.h"
#include "rpc.h"

typedef struct {
    char dir[64];
    char raft_dir[80];
    char addr[64];
    cairn_cfg_t cfg;
    meta_fsm_t *fsm;
    meta_log_t *log;
    meta_rpc_t rpc;
    cairn_wire_key_t *key;
    int lfd;
    cairn_srv_t *srv;
    pthread_t thread;
    cairn_meta_client_t conn;
    cairn_conn_t raw;
    cairn_buf_t scratch;
} fx_t;

/* A free TCP port on 127.0.0.1 (closed again: a tiny race, fine for tests). */
static unsigned free_port(void)
{
    int fd = cairn_listen("127.0.0.1:0", 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* Start Raft on x's directories and wait until this one replica leads. */
static void log_start(fx_t *x)
{
    meta_log_opts_t o = {
        .id = 1, .raft_addr = x->cfg.metas[0].raft_addr, .dir = x->raft_dir, .cfg = &x->cfg, .key = x->key};
    assert_int_equal(meta_log_create(x->fsm, &o, &x->log), 0);
    x->rpc = (meta_rpc_t){x->fsm, x->log};
    for (int i = 0; i < 500; i++) {
        uint64_t id;
        char a[128];
        meta_log_leader(x->log, &id, a);
        if (id == 1) {
            assert_string_equal(a, x->addr);
            return;
        }
        usleep(10000);
    }
    fail_msg("no leader after 5 s");
}

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
    snprintf(x->raft_dir, sizeof x->raft_dir, "%s/raft", x->dir);
    x->lfd = cairn_listen("127.0.0.1:0", 0);
    assert_true(x->lfd >= 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(x->lfd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(x->addr, sizeof x->addr, "127.0.0.1:%u", ntohs(sa.sin_port));
    x->cfg.nmetas = 1;
    x->cfg.metas[0].id = 1;
    snprintf(x->cfg.metas[0].addr, sizeof x->cfg.metas[0].addr, "%s", x->addr);
    snprintf(x->cfg.metas[0].raft_addr, sizeof x->cfg.metas[0].raft_addr, "127.0.0.1:%u", free_port());
    x->cfg.meta_election_ms = 150;
    x->cfg.meta_heartbeat_ms = 30;
    x->cfg.meta_snapshot_threshold = 64;
    x->cfg.meta_snapshot_trailing = 8;

    const char *secret = "0123456789abcdef-test";
    assert_int_equal(cairn_wire_key_create(secret, strlen(secret), &x->key), 0);
    assert_int_equal(meta_fsm_create(x->dir, META_FSM_NOSYNC, &x->fsm), 0);
    log_start(x);
    assert_int_equal(cairn_srv_create(x->lfd, x->key, meta_rpc_routes, meta_rpc_nroutes, &x->rpc, 5000, &x->srv), 0);
    assert_int_equal(pthread_create(&x->thread, NULL, run_srv, x->srv), 0);
    assert_int_equal(cairn_meta_client_init(&x->conn, x->addr, x->key, 5000), 0);
    cairn_conn_init(&x->raw, x->addr, x->key, 5000);
    cairn_buf_init(&x->scratch);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx_t *x = *state;
    cairn_meta_client_dispose(&x->conn);
    cairn_conn_dispose(&x->raw);
    cairn_srv_stop(x->srv);
    pthread_join(x->thread, NULL);
    cairn_srv_destroy(x->srv);
    close(x->lfd);
    meta_log_destroy(x->log);
    meta_fsm_destroy(x->fsm);
    cairn_wire_key_destroy(x->key);
    cairn_buf_dispose(&x->scratch);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", x->dir);
    assert_int_equal(system(cmd), 0);
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
    assert_true(meta_fsm_applied(x->fsm) > before); /* the put, after the barrier entries of the reads */

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
        assert_int_equal(cairn_conn_call(&x->raw, ops[i], 0, &iov, 1, &x->scratch, &status), 0);
        assert_int_equal(status, CAIRN_EPROTO);
    }
    assert_int_equal(meta_fsm_applied(x->fsm), before);
    int32_t status = -1;
    assert_int_equal(cairn_conn_call(&x->raw, CAIRN_OP_PING, 0, NULL, 0, &x->scratch, &status), 0);
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
    cairn_meta_client_t c;
    cairn_meta_client_init(&c, w->x->addr, w->x->key, 5000);
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
    cairn_meta_client_dispose(&c);
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
    assert_true(meta_fsm_applied(x->fsm) >= before + 200); /* barrier entries take indexes too */
    cairn_meta_list_t l;
    cairn_meta_list_init(&l);
    cairn_meta_list_req_t q = {.bucket = "b", .max_keys = 1000};
    assert_int_equal(cairn_meta_obj_list(&x->conn, 0, &q, &l), 0);
    assert_int_equal(l.nentries, 200);
    cairn_meta_list_dispose(&l);
}

/* ---- replication: command ids, redirects, restarts, status ---- */

/* Send OBJ_PUT wrapped in ONCE with command id `id` over the raw
 * connection; returns the status, *had_old from the answer. */
static int raw_put_once(fx_t *x, const uint8_t id[16], const char *key, const cairn_obj_rec_t *r, int *had_old)
{
    cairn_buf_t body, rec;
    cairn_buf_init(&body);
    cairn_buf_init(&rec);
    cairn_obj_rec_encode(r, &rec);
    cairn_buf_put_u16(&body, CAIRN_OP_META_OBJ_PUT);
    cairn_buf_append(&body, id, 16);
    cairn_buf_put_str(&body, "b");
    cairn_buf_put_bytes(&body, key, strlen(key));
    cairn_buf_put_bytes(&body, rec.base, rec.len);
    struct iovec iov = {body.base, body.len};
    int32_t status = -1;
    assert_int_equal(cairn_conn_call(&x->raw, CAIRN_OP_META_ONCE, 0, &iov, 1, &x->scratch, &status), 0);
    *had_old = status == 0 && x->scratch.len > 0 && x->scratch.base[0] == 1;
    cairn_buf_dispose(&body);
    cairn_buf_dispose(&rec);
    return status;
}

static void test_once(void **state)
{
    fx_t *x = *state;
    cairn_buf_t um;
    cairn_buf_init(&um);
    cairn_obj_rec_t r1, r2;
    uint8_t id1[16] = {0x11}, id2[16] = {0x22};
    int had;
    assert_int_equal(cairn_meta_bucket_create(&x->conn, 0, "b", "AK"), 0);
    make_rec(&r1, 1, 100, &um);
    assert_int_equal(raw_put_once(x, id1, "k", &r1, &had), 0);
    assert_int_equal(had, 0);
    make_rec(&r2, 2, 200, &um);
    assert_int_equal(raw_put_once(x, id2, "k", &r2, &had), 0);
    assert_int_equal(had, 1);
    /* retries of both: the first answers, and version 2 stays */
    assert_int_equal(raw_put_once(x, id2, "k", &r2, &had), 0);
    assert_int_equal(had, 1);
    assert_int_equal(raw_put_once(x, id1, "k", &r1, &had), 0);
    assert_int_equal(had, 0);
    cairn_obj_rec_t got;
    assert_int_equal(cairn_meta_obj_get(&x->conn, 0, "b", "k", 1, &x->scratch, &got), 0);
    assert_int_equal(got.size, 200);
    cairn_meta_gc_entry_t *g;
    size_t n;
    int more;
    uint8_t after[16] = {0};
    assert_int_equal(cairn_meta_gc_list(&x->conn, 0, after, 10, &x->scratch, &g, &n, &more), 0);
    assert_int_equal(n, 1); /* version 1, once */
    free(g);
    /* ONCE around an unknown or nested opcode */
    uint8_t bad[18] = {CAIRN_OP_META_ONCE & 0xff, CAIRN_OP_META_ONCE >> 8};
    struct iovec iov = {bad, sizeof bad};
    int32_t status = 0;
    assert_int_equal(cairn_conn_call(&x->raw, CAIRN_OP_META_ONCE, 0, &iov, 1, &x->scratch, &status), 0);
    assert_int_equal(status, CAIRN_EPROTO);
    iov.iov_len = 5;
    assert_int_equal(cairn_conn_call(&x->raw, CAIRN_OP_META_ONCE, 0, &iov, 1, &x->scratch, &status), 0);
    assert_int_equal(status, CAIRN_EPROTO);
    cairn_buf_dispose(&um);
}

/* A replica that is not the leader, as the client sees it: every request
 * answered CAIRN_ENOTLEADER with the address in data (may be ""). */
static int on_not_leader(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_buf_append(resp, data, strlen(data));
    return CAIRN_ENOTLEADER;
}

static const cairn_srv_route_t fake_routes[] = {{CAIRN_OP_META_ONCE, 0, on_not_leader}};

typedef struct {
    int lfd;
    cairn_srv_t *srv;
    pthread_t thread;
    char addr[64];
} fake_t;

static void fake_start(fx_t *x, fake_t *f, const char *leader)
{
    f->lfd = cairn_listen("127.0.0.1:0", 0);
    assert_true(f->lfd >= 0);
    assert_int_equal(cairn_local_addr(f->lfd, f->addr, sizeof f->addr), 0);
    assert_int_equal(cairn_srv_create(f->lfd, x->key, fake_routes, 1, (void *)leader, 5000, &f->srv), 0);
    assert_int_equal(pthread_create(&f->thread, NULL, run_srv, f->srv), 0);
}

static void fake_stop(fake_t *f)
{
    cairn_srv_stop(f->srv);
    pthread_join(f->thread, NULL);
    cairn_srv_destroy(f->srv);
    close(f->lfd);
}

static void test_redirect(void **state)
{
    fx_t *x = *state;
    fake_t lost, pointing;
    fake_start(x, &lost, "");           /* knows no leader */
    fake_start(x, &pointing, x->addr);  /* names the real one */
    char refused[64], list[256];
    snprintf(refused, sizeof refused, "127.0.0.1:%u", free_port());

    /* refused, then a follower without a clue, then one with the address */
    snprintf(list, sizeof list, "%s,%s,%s", refused, lost.addr, pointing.addr);
    cairn_meta_client_t c;
    assert_int_equal(cairn_meta_client_init(&c, list, x->key, 2000), 0);
    assert_int_equal(cairn_meta_bucket_create(&c, 0, "redir", "AK"), 0);
    assert_string_equal(c.conn.addr, x->addr); /* learned the leader ... */
    assert_int_equal(c.nreplicas, 4);
    assert_int_equal(cairn_meta_bucket_create(&c, 0, "redir", "AK"), CAIRN_EOWNED); /* ... and stays there */
    cairn_meta_client_dispose(&c);

    /* nobody leads: a timeout (an attempt may have been logged) */
    snprintf(list, sizeof list, "%s", lost.addr);
    assert_int_equal(cairn_meta_client_init(&c, list, x->key, 2000), 0);
    c.deadline_ms = 300;
    assert_int_equal(cairn_meta_bucket_create(&c, 0, "x", "AK"), CAIRN_ETIMEOUT);
    cairn_meta_client_dispose(&c);
    /* nobody listens: unavailable (nothing can have been applied) */
    assert_int_equal(cairn_meta_client_init(&c, refused, x->key, 2000), 0);
    c.deadline_ms = 300;
    assert_int_equal(cairn_meta_bucket_create(&c, 0, "x", "AK"), CAIRN_EUNAVAIL);
    cairn_meta_client_dispose(&c);
    assert_int_equal(cairn_meta_client_init(&c, "no-port", x->key, 2000), CAIRN_EINVAL);
    assert_int_equal(cairn_meta_bucket_create(&c, 0, "x", "AK"), CAIRN_EUNAVAIL);
    cairn_meta_client_dispose(&c);
    fake_stop(&lost);
    fake_stop(&pointing);
}

static void test_status(void **state)
{
    fx_t *x = *state;
    assert_int_equal(cairn_meta_call(&x->conn, CAIRN_OP_META_STATUS, 0, NULL, 0, &x->scratch), 0);
    cairn_meta_status_t st;
    assert_int_equal(cairn_meta_status_decode(x->scratch.base, x->scratch.len, &st), 0);
    assert_int_equal(st.id, 1);
    assert_int_equal(st.role, CAIRN_META_ROLE_LEADER);
    assert_int_equal(st.leader_id, 1);
    assert_string_equal(st.leader_addr, x->addr);
    assert_true(st.term >= 1 && st.commit >= 1 && st.applied == st.commit);
    assert_int_equal(st.nmembers, 1);
    assert_int_equal(st.members[0].kind, CAIRN_META_MEMBER_VOTER);
    assert_string_equal(st.members[0].raft_addr, x->cfg.metas[0].raft_addr);
    assert_string_equal(st.members[0].addr, x->addr);
    /* encode/decode round trip, and truncations are refused */
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_meta_status_encode(&st, &b);
    assert_int_equal(b.len, x->scratch.len);
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(cairn_meta_status_decode(b.base, n, &st), CAIRN_EPROTO);
    cairn_buf_dispose(&b);
    /* membership changes of a one-replica group: refused sensibly */
    cairn_buf_t body;
    cairn_buf_init(&body);
    cairn_buf_put_u64(&body, 1);
    assert_int_equal(cairn_meta_call(&x->conn, CAIRN_OP_META_MEMBER_REMOVE, 0, body.base, body.len, &x->scratch),
                     CAIRN_EINVAL); /* the last voter */
    cairn_buf_reset(&body);
    cairn_buf_put_u64(&body, 7);
    assert_int_equal(cairn_meta_call(&x->conn, CAIRN_OP_META_MEMBER_REMOVE, 0, body.base, body.len, &x->scratch),
                     CAIRN_ENOTFOUND);
    cairn_buf_dispose(&body);
}

/* Stop Raft and the database, optionally lose the database (as a crash of
 * the machine can with an unsynced LMDB), start again: the state comes
 * back from the Raft snapshot and log. */
static void restart(fx_t *x, int lose_db)
{
    cairn_srv_stop(x->srv);
    pthread_join(x->thread, NULL);
    cairn_srv_destroy(x->srv);
    meta_log_destroy(x->log);
    meta_fsm_destroy(x->fsm);
    if (lose_db) {
        char p[128];
        snprintf(p, sizeof p, "%s/data.mdb", x->dir);
        assert_int_equal(unlink(p), 0);
    }
    assert_int_equal(meta_fsm_create(x->dir, META_FSM_NOSYNC, &x->fsm), 0);
    log_start(x);
    assert_int_equal(cairn_srv_create(x->lfd, x->key, meta_rpc_routes, meta_rpc_nroutes, &x->rpc, 5000, &x->srv), 0);
    assert_int_equal(pthread_create(&x->thread, NULL, run_srv, x->srv), 0);
}

static void test_restart_from_snapshot(void **state)
{
    fx_t *x = *state;
    cairn_buf_t um;
    cairn_buf_init(&um);
    assert_int_equal(cairn_meta_bucket_create(&x->conn, 0, "b", "AK"), 0);
    for (int i = 0; i < 300; i++) {
        char key[32];
        cairn_obj_rec_t r, old;
        int had_old;
        make_rec(&r, (uint8_t)i, (uint64_t)i + 1, &um);
        snprintf(key, sizeof key, "k%03d", i);
        assert_int_equal(cairn_meta_obj_put(&x->conn, 0, "b", key, strlen(key), &r, &x->scratch, &had_old, &old), 0);
    }
    for (int lose = 0; lose <= 1; lose++) {
        restart(x, lose);
        if (lose)
            assert_true(meta_fsm_applied(x->fsm) > 250); /* restored from the snapshot, then the log */
        for (int i = 0; i < 300; i += 7) {
            char key[32];
            cairn_obj_rec_t got;
            snprintf(key, sizeof key, "k%03d", i);
            assert_int_equal(cairn_meta_obj_get(&x->conn, 0, "b", key, strlen(key), &x->scratch, &got), 0);
            assert_int_equal(got.size, (uint64_t)i + 1);
        }
        cairn_meta_list_t l;
        cairn_meta_list_init(&l);
        cairn_meta_list_req_t q = {.bucket = "b", .max_keys = 1000};
        assert_int_equal(cairn_meta_obj_list(&x->conn, 0, &q, &l), 0);
        assert_int_equal(l.nentries, 300);
        cairn_meta_list_dispose(&l);
    }
    cairn_buf_dispose(&um);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_users_and_buckets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_from_snapshot, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
