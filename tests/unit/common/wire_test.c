/*
 * wire_test.c — frames, MACs, the client connection and the server.
 *
 * Pure parts (header codec, MAC) are tested on byte arrays. The client and
 * the server are tested against each other over loopback: a real
 * cairn_srv on 127.0.0.1:0 in a thread with a handful of test routes.
 * Server behaviour the client never provokes (oversized, tampered,
 * replayed, reordered or stale frames) is driven with hand-built frames on
 * a raw socket; client parsing of bad responses is driven by a fake peer on
 * a socketpair.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/srv.h"
#include "cairn/wire.h"

#define SECRET "test cluster secret 0123456789"

enum {
    OP_ECHO = 50,    /* body -> same body */
    OP_SUM = 51,     /* streamed body -> u64 FNV-1a of it */
    OP_SLOW = 52,    /* sleeps 400 ms */
    OP_FAIL = 53,    /* -> CAIRN_ENOTFOUND */
    OP_PARTIAL = 54, /* streamed: reads 16 bytes, refuses with CAIRN_ECORRUPT */
    OP_BIG = 55,     /* u32 n -> n bytes */
    OP_NOVERIFY = 56 /* streamed: reads everything, never checks the MAC, says 0 */
};

typedef struct {
    int calls; /* handler invocations, atomically */
} counters_t;

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
#define FNV0 0xcbf29ce484222325ull

static void count(void *data)
{
    __atomic_add_fetch(&((counters_t *)data)->calls, 1, __ATOMIC_SEQ_CST);
}

static int on_echo(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    count(data);
    if (req->body == NULL)
        return CAIRN_EINVAL; /* no cmocka asserts off the main thread */
    cairn_buf_append(resp, req->body, (size_t)req->hdr.body_len);
    return 0;
}

static int on_sum(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    count(data);
    if (req->body != NULL)
        return CAIRN_EINVAL;
    uint8_t buf[7000];
    uint64_t h = FNV0;
    while (req->body_left > 0) {
        size_t n = req->body_left < sizeof buf ? (size_t)req->body_left : sizeof buf;
        int rc = cairn_srv_read(req, buf, n);
        if (rc != 0)
            return rc;
        h = fnv(h, buf, n);
    }
    int rc = cairn_srv_body_verify(req);
    if (rc != 0)
        return rc;
    cairn_buf_put_u64(resp, h);
    return 0;
}

static int on_slow(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    count(data);
    usleep(400 * 1000);
    return 0;
}

static int on_fail(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    count(data);
    return CAIRN_ENOTFOUND;
}

static int on_partial(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    count(data);
    uint8_t buf[16];
    if (req->body_left >= sizeof buf)
        cairn_srv_read(req, buf, sizeof buf);
    return CAIRN_ECORRUPT;
}

static int on_big(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    count(data);
    cairn_dec_t d;
    cairn_dec_init(&d, req->body, (size_t)req->hdr.body_len);
    uint32_t n = cairn_dec_u32(&d);
    if (d.err)
        return CAIRN_EPROTO;
    uint8_t *p = cairn_buf_reserve(resp, n);
    for (uint32_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + 7);
    resp->len += n;
    return 0;
}

static int on_noverify(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    count(data);
    uint8_t buf[4096];
    while (req->body_left > 0) {
        size_t n = req->body_left < sizeof buf ? (size_t)req->body_left : sizeof buf;
        if (cairn_srv_read(req, buf, n) != 0)
            return CAIRN_EPROTO;
    }
    return 0;
}

static const cairn_srv_route_t routes[] = {
    {OP_ECHO, 0, on_echo},       {OP_SUM, 1, on_sum},         {OP_SLOW, 0, on_slow},
    {OP_FAIL, 0, on_fail},       {OP_PARTIAL, 1, on_partial}, {OP_BIG, 0, on_big},
    {OP_NOVERIFY, 1, on_noverify},
};

/* ---- a server in a thread ---- */

typedef struct {
    cairn_wire_key_t *key;
    cairn_srv_t *srv;
    int lfd;
    pthread_t thr;
    char addr[64];
    counters_t ctr;
    int run_rc;
} tsrv_t;

static void *tsrv_main(void *arg)
{
    tsrv_t *t = arg;
    t->run_rc = cairn_srv_run(t->srv);
    return NULL;
}

static tsrv_t *tsrv_start(int io_timeout_ms)
{
    tsrv_t *t = calloc(1, sizeof(*t));
    assert_int_equal(cairn_wire_key_create(SECRET, strlen(SECRET), &t->key), 0);
    t->lfd = cairn_listen("127.0.0.1:0", 0);
    assert_true(t->lfd >= 0);
    assert_int_equal(cairn_local_addr(t->lfd, t->addr, sizeof t->addr), 0);
    assert_int_equal(cairn_srv_create(t->lfd, t->key, routes, sizeof routes / sizeof routes[0], &t->ctr,
                                      io_timeout_ms, &t->srv),
                     0);
    assert_int_equal(pthread_create(&t->thr, NULL, tsrv_main, t), 0);
    return t;
}

static void tsrv_stop(tsrv_t *t)
{
    cairn_srv_stop(t->srv);
    pthread_join(t->thr, NULL);
    assert_int_equal(t->run_rc, 0);
    cairn_srv_destroy(t->srv);
    close(t->lfd);
    cairn_wire_key_destroy(t->key);
    free(t);
}

static int calls(tsrv_t *t)
{
    return __atomic_load_n(&t->ctr.calls, __ATOMIC_SEQ_CST);
}

/* ---- raw frames ---- */

/* What a hand-built frame claims, beyond its body. */
typedef struct {
    uint16_t op, flags;
    int32_t status;
    uint32_t seq;
    uint64_t id;
    uint64_t claimed_len; /* header's body_len (may differ from the bytes sent) */
    int64_t time_ms;      /* 0: now */
    const uint8_t *session;
    const uint8_t *link;  /* responses: the request header answered */
} fspec_t;

static void build_frame(const cairn_wire_key_t *key, const fspec_t *fs, const void *body, size_t len,
                        cairn_buf_t *out)
{
    cairn_frame_hdr_t h = {.opcode = fs->op,
                           .flags = fs->flags,
                           .status = fs->status,
                           .seq = fs->seq,
                           .req_id = fs->id,
                           .body_len = fs->claimed_len,
                           .time_ms = fs->time_ms ? fs->time_ms : cairn_wall_ms()};
    uint8_t hb[CAIRN_WIRE_HDR_SIZE], mac[CAIRN_WIRE_MAC_SIZE];
    cairn_wire_hdr_encode(&h, hb);
    cairn_wire_mac_t *m = cairn_wire_mac_create(key);
    cairn_wire_mac_begin(m, fs->session, fs->link, hb);
    cairn_wire_mac_update(m, body, len);
    cairn_wire_mac_final(m, mac);
    cairn_wire_mac_destroy(m);
    cairn_buf_reset(out);
    cairn_buf_append(out, hb, sizeof hb);
    cairn_buf_append(out, body, len);
    cairn_buf_append(out, mac, sizeof mac);
}

/* A request of this session: op, seq, id, body (claimed length = len). */
static void build_req(const cairn_wire_key_t *key, const uint8_t *session, uint16_t op, uint32_t seq, uint64_t id,
                      const void *body, size_t len, cairn_buf_t *out)
{
    fspec_t fs = {.op = op, .seq = seq, .id = id, .claimed_len = len, .session = session};
    build_frame(key, &fs, body, len, out);
}

/* Connect and read the server's hello; *session gets its id (checked with
 * key, or taken as is when key is NULL). */
static int raw_connect(const char *addr, const cairn_wire_key_t *key, uint8_t session[CAIRN_WIRE_SESSION_SIZE])
{
    struct sockaddr_storage ss;
    unsigned len;
    assert_int_equal(cairn_addr_parse(addr, &ss, &len), 0);
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
    uint8_t hello[CAIRN_WIRE_HELLO_SIZE];
    assert_int_equal(cairn_io_read_all(fd, hello, sizeof hello, cairn_now_ms() + 3000), 0);
    if (key == NULL) { /* an attacker: takes the session id without checking */
        memcpy(session, hello + CAIRN_WIRE_HDR_SIZE, CAIRN_WIRE_SESSION_SIZE);
        return fd;
    }
    cairn_wire_mac_t *m = cairn_wire_mac_create(key);
    assert_int_equal(cairn_wire_hello_decode(m, hello, session), 0);
    cairn_wire_mac_destroy(m);
    return fd;
}

static void raw_send(int fd, const void *p, size_t n)
{
    struct iovec v = {(void *)p, n};
    assert_int_equal(cairn_io_write_all(fd, &v, 1, cairn_now_ms() + 2000), 0);
}

static uint16_t raw_flags; /* of the last raw_response() */

/* Read one response frame to the request whose frame starts at req (its
 * header is the link) and check its seq and MAC; returns its status. */
static int32_t raw_response(int fd, const cairn_wire_key_t *key, const uint8_t *session, const uint8_t *req)
{
    uint8_t hb[CAIRN_WIRE_HDR_SIZE], mac[CAIRN_WIRE_MAC_SIZE];
    cairn_frame_hdr_t h, rq;
    cairn_wire_hdr_decode(req, &rq);
    assert_int_equal(cairn_io_read_all(fd, hb, sizeof hb, cairn_now_ms() + 3000), 0);
    assert_int_equal(cairn_wire_hdr_decode(hb, &h), 0);
    assert_true(h.flags & CAIRN_WIRE_FLAG_RESPONSE);
    raw_flags = h.flags;
    assert_int_equal(h.req_id, rq.req_id);
    assert_int_equal(h.seq, rq.seq);
    assert_int_equal(cairn_wire_time_check(h.time_ms, cairn_wall_ms()), 0);
    assert_true(h.body_len < 4096);
    uint8_t body[4096];
    assert_int_equal(cairn_io_read_all(fd, body, (size_t)h.body_len, cairn_now_ms() + 3000), 0);
    assert_int_equal(cairn_io_read_all(fd, mac, sizeof mac, cairn_now_ms() + 3000), 0);
    cairn_wire_mac_t *m = cairn_wire_mac_create(key);
    cairn_wire_mac_begin(m, session, req, hb);
    cairn_wire_mac_update(m, body, (size_t)h.body_len);
    assert_int_equal(cairn_wire_mac_check(m, mac), 0);
    cairn_wire_mac_destroy(m);
    return h.status;
}

/* The server hung up: EOF (or reset) within a few seconds. */
static void assert_closed(int fd)
{
    char b[4096];
    int64_t until = cairn_now_ms() + 5000;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_true(poll(&p, 1, (int)(until - cairn_now_ms())) > 0);
        ssize_t r = recv(fd, b, sizeof b, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return;
        assert_true(r > 0);
    }
}

/* ---- header ---- */

static void test_hdr_round_trip(void **state)
{
    srand(7);
    for (int i = 0; i < 1000; i++) {
        cairn_frame_hdr_t h = {
            .opcode = (uint16_t)rand(),
            .flags = (uint16_t)(rand() & 1),
            .status = -(rand() % 20000),
            .seq = (uint32_t)rand() << 1 ^ (uint32_t)rand(),
            .req_id = (uint64_t)rand() << 33 ^ (uint64_t)rand(),
            .body_len = ((uint64_t)rand() << 20 ^ (uint64_t)rand()) % (CAIRN_WIRE_MAX_STREAM + 1),
            .time_ms = (int64_t)((uint64_t)rand() << 40 ^ (uint64_t)rand()),
        };
        cairn_frame_hdr_t g;
        uint8_t b[CAIRN_WIRE_HDR_SIZE];
        cairn_wire_hdr_encode(&h, b);
        assert_int_equal(cairn_wire_hdr_decode(b, &g), 0);
        assert_int_equal(g.opcode, h.opcode);
        assert_int_equal(g.flags, h.flags);
        assert_int_equal(g.status, h.status);
        assert_int_equal(g.req_id, h.req_id);
        assert_int_equal(g.body_len, h.body_len);
        assert_int_equal(g.seq, h.seq);
        assert_int_equal(g.time_ms, h.time_ms);
    }
    /* the documented layout */
    cairn_frame_hdr_t h = {.opcode = 0x0102,
                           .flags = 1,
                           .status = -5,
                           .seq = 0xa0b0c0d0u,
                           .req_id = 0x1122334455667788ull,
                           .body_len = 9,
                           .time_ms = 1700000000123};
    uint8_t b[CAIRN_WIRE_HDR_SIZE];
    cairn_wire_hdr_encode(&h, b);
    assert_memory_equal(b, "CRN2", 4);
    assert_int_equal(b[4], 2);
    assert_int_equal(b[5], 1);
    assert_int_equal(b[6], 1);
    assert_int_equal(cairn_le32_get(b + 8), (uint32_t)-5);
    assert_int_equal(cairn_le32_get(b + 12), 0xa0b0c0d0u);
    assert_int_equal(cairn_le64_get(b + 16), 0x1122334455667788ull);
    assert_int_equal(cairn_le64_get(b + 24), 9);
    assert_int_equal(cairn_le64_get(b + 32), 1700000000123ull);
}

static void test_time_check(void **state)
{
    int64_t now = 1700000000000;
    assert_int_equal(cairn_wire_time_check(now, now), 0);
    assert_int_equal(cairn_wire_time_check(now - CAIRN_WIRE_SKEW_MS, now), 0);
    assert_int_equal(cairn_wire_time_check(now + CAIRN_WIRE_SKEW_MS, now), 0);
    assert_int_equal(cairn_wire_time_check(now - CAIRN_WIRE_SKEW_MS - 1, now), CAIRN_EAUTH);
    assert_int_equal(cairn_wire_time_check(now + CAIRN_WIRE_SKEW_MS + 1, now), CAIRN_EAUTH);
    assert_int_equal(cairn_wire_time_check(0, now), CAIRN_EAUTH);
    assert_int_equal(cairn_wire_time_check(INT64_MIN, now), CAIRN_EAUTH);
    assert_int_equal(cairn_wire_time_check(INT64_MAX, now), CAIRN_EAUTH);
    assert_int_equal(cairn_wire_time_check(INT64_MIN, INT64_MAX), CAIRN_EAUTH);
    int64_t wall = cairn_wall_ms();
    assert_true(wall > 1600000000000); /* a real wall clock, not a monotonic one */

    uint8_t a[CAIRN_WIRE_SESSION_SIZE], b[CAIRN_WIRE_SESSION_SIZE];
    cairn_wire_session_new(a);
    cairn_wire_session_new(b);
    assert_memory_not_equal(a, b, sizeof a);
}

static void test_hdr_bad(void **state)
{
    cairn_frame_hdr_t h = {.opcode = 1, .req_id = 5, .body_len = 10}, g;
    uint8_t b[CAIRN_WIRE_HDR_SIZE];
    cairn_wire_hdr_encode(&h, b);
    b[0] ^= 1; /* magic */
    assert_int_equal(cairn_wire_hdr_decode(b, &g), CAIRN_EPROTO);
    b[0] ^= 1;
    memcpy(b, "CRN1", 4); /* the previous format, which had no replay protection */
    assert_int_equal(cairn_wire_hdr_decode(b, &g), CAIRN_EPROTO);
    memcpy(b, "CRN2", 4);
    b[6] = 4; /* unknown flag */
    assert_int_equal(cairn_wire_hdr_decode(b, &g), CAIRN_EPROTO);
    b[6] = 0;
    h.body_len = CAIRN_WIRE_MAX_STREAM;
    cairn_wire_hdr_encode(&h, b);
    assert_int_equal(cairn_wire_hdr_decode(b, &g), 0);
    h.body_len = CAIRN_WIRE_MAX_STREAM + 1;
    cairn_wire_hdr_encode(&h, b);
    assert_int_equal(cairn_wire_hdr_decode(b, &g), CAIRN_ETOOBIG);
    h.body_len = UINT64_MAX;
    cairn_wire_hdr_encode(&h, b);
    assert_int_equal(cairn_wire_hdr_decode(b, &g), CAIRN_ETOOBIG);
}

/* A header cut short by EOF is a protocol error, on a plain read and in
 * the client's response parsing. Then every way a response can fail to
 * answer the client's request. */
static void test_truncated(void **state)
{
    int sv[2];
    uint8_t b[CAIRN_WIRE_HDR_SIZE];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    raw_send(sv[1], "CRN2\0\0\0\0\0\0", 10);
    close(sv[1]);
    assert_int_equal(cairn_io_read_all(sv[0], b, sizeof b, cairn_now_ms() + 1000), CAIRN_EPROTO);
    close(sv[0]);

    /* client side: a connection in the middle of a session, waiting for
     * the answer to request seq 5, id 77 */
    cairn_wire_key_t *key;
    assert_int_equal(cairn_wire_key_create(SECRET, strlen(SECRET), &key), 0);
    cairn_conn_t c;
    cairn_conn_init(&c, "127.0.0.1:1", key, 1000);
    uint8_t session[CAIRN_WIRE_SESSION_SIZE], other_session[CAIRN_WIRE_SESSION_SIZE];
    cairn_wire_session_new(session);
    cairn_wire_session_new(other_session);
    memcpy(c.session, session, sizeof session);
    cairn_frame_hdr_t rq = {.opcode = OP_ECHO, .seq = 5, .req_id = 77, .body_len = 3, .time_ms = cairn_wall_ms()};
    cairn_wire_hdr_encode(&rq, c.req_hdr);
    uint8_t older_req[CAIRN_WIRE_HDR_SIZE]; /* an earlier request of the same session */
    rq.time_ms -= 1000;
    cairn_wire_hdr_encode(&rq, older_req);

    /* the fake peer answers with 20 bytes of a header */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    c.fd = sv[0];
    c.req_id = 77;
    c.seq = 5;
    cairn_frame_hdr_t h = {.opcode = OP_ECHO, .flags = CAIRN_WIRE_FLAG_RESPONSE, .seq = 5, .req_id = 77};
    cairn_wire_hdr_encode(&h, b);
    raw_send(sv[1], b, 20);
    close(sv[1]);
    cairn_buf_t resp;
    cairn_buf_init(&resp);
    int32_t status = 1;
    assert_int_equal(cairn_conn_recv(&c, &resp, &status), CAIRN_EPROTO);
    assert_int_equal(c.fd, -1);

    /* a response to another request, a request posing as a response, an
     * oversized response, a bad MAC, another seq, another session, a
     * response bound to another request, a stale clock: all refused and the
     * connection closed */
    const uint8_t *S = session, *L = c.req_hdr;
    int64_t now = cairn_wall_ms();
    struct {
        fspec_t fs;
        int key_ok;
        int want;
    } cases[] = {
        {{.flags = CAIRN_WIRE_FLAG_RESPONSE, .seq = 5, .id = 78, .session = S, .link = L}, 1, CAIRN_EPROTO},
        {{.flags = 0, .seq = 5, .id = 77, .session = S, .link = L}, 1, CAIRN_EPROTO},
        {{.flags = CAIRN_WIRE_FLAG_RESPONSE, .seq = 5, .id = 77, .claimed_len = CAIRN_WIRE_MAX_BODY + 1ull,
          .session = S, .link = L},
         1,
         CAIRN_ETOOBIG},
        {{.flags = CAIRN_WIRE_FLAG_RESPONSE, .seq = 5, .id = 77, .claimed_len = 3, .session = S, .link = L}, 0,
         CAIRN_EAUTH},
        {{.flags = CAIRN_WIRE_FLAG_RESPONSE, .seq = 4, .id = 77, .claimed_len = 3, .session = S, .link = L}, 1,
         CAIRN_EPROTO},
        {{.flags = CAIRN_WIRE_FLAG_RESPONSE, .seq = 5, .id = 77, .claimed_len = 3, .session = other_session,
          .link = L},
         1,
         CAIRN_EAUTH},
        {{.flags = CAIRN_WIRE_FLAG_RESPONSE, .seq = 5, .id = 77, .claimed_len = 3, .session = S, .link = older_req},
         1,
         CAIRN_EAUTH},
        {{.flags = CAIRN_WIRE_FLAG_RESPONSE, .seq = 5, .id = 77, .claimed_len = 3, .session = S, .link = NULL}, 1,
         CAIRN_EAUTH},
        {{.flags = CAIRN_WIRE_FLAG_RESPONSE, .seq = 5, .id = 77, .claimed_len = 3, .session = S, .link = L,
          .time_ms = now - CAIRN_WIRE_SKEW_MS - 5000},
         1,
         CAIRN_EAUTH},
        {{.flags = CAIRN_WIRE_FLAG_RESPONSE, .seq = 5, .id = 77, .claimed_len = 3, .session = S, .link = L,
          .time_ms = now + CAIRN_WIRE_SKEW_MS + 5000},
         1,
         CAIRN_EAUTH},
        {{.flags = CAIRN_WIRE_FLAG_RESPONSE, .seq = 5, .id = 77, .claimed_len = 3, .session = S, .link = L}, 1, 0},
    };
    cairn_wire_key_t *other;
    assert_int_equal(cairn_wire_key_create("another secret", 14, &other), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cairn_buf_t f;
        cairn_buf_init(&f);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        c.fd = sv[0];
        c.req_id = 77;
        c.seq = 5;
        cases[i].fs.op = OP_ECHO;
        cases[i].fs.status = -3;
        size_t len = cases[i].fs.claimed_len > 3 ? 0 : (size_t)cases[i].fs.claimed_len;
        build_frame(cases[i].key_ok ? key : other, &cases[i].fs, "abc", len, &f);
        raw_send(sv[1], f.base, f.len);
        status = 1;
        assert_int_equal(cairn_conn_recv(&c, &resp, &status), cases[i].want);
        if (cases[i].want == 0) {
            assert_int_equal(status, -3);
            assert_int_equal(resp.len, 3);
            assert_memory_equal(resp.base, "abc", 3);
            cairn_conn_close(&c);
        } else {
            assert_int_equal(c.fd, -1);
            assert_int_equal(resp.len, 0);
        }
        close(sv[1]);
        cairn_buf_dispose(&f);
    }
    cairn_buf_dispose(&resp);
    cairn_conn_dispose(&c);
    cairn_wire_key_destroy(other);
    cairn_wire_key_destroy(key);
}

/* The client checks the hello: another key, a stale one, or something that
 * is not a hello fails the connect, before any request is sent. */
static void test_hello(void **state)
{
    cairn_wire_key_t *key, *other;
    assert_int_equal(cairn_wire_key_create(SECRET, strlen(SECRET), &key), 0);
    assert_int_equal(cairn_wire_key_create("another secret", 14, &other), 0);
    cairn_wire_mac_t *m = cairn_wire_mac_create(key), *mo = cairn_wire_mac_create(other);
    uint8_t session[CAIRN_WIRE_SESSION_SIZE], got[CAIRN_WIRE_SESSION_SIZE], hello[CAIRN_WIRE_HELLO_SIZE];
    cairn_wire_session_new(session);

    cairn_wire_hello_encode(m, session, hello);
    assert_int_equal(cairn_wire_hello_decode(m, hello, got), 0);
    assert_memory_equal(got, session, sizeof got);
    assert_int_equal(cairn_wire_hello_decode(mo, hello, got), CAIRN_EAUTH);
    for (size_t i = 0; i < sizeof hello; i++) { /* every byte is checked */
        hello[i] ^= 0x10;
        assert_true(cairn_wire_hello_decode(m, hello, got) != 0);
        hello[i] ^= 0x10;
    }
    /* a hello recorded earlier than the skew window */
    cairn_buf_t f;
    cairn_buf_init(&f);
    fspec_t fs = {.op = CAIRN_OP_HELLO,
                  .flags = CAIRN_WIRE_FLAG_RESPONSE,
                  .claimed_len = CAIRN_WIRE_SESSION_SIZE,
                  .time_ms = cairn_wall_ms() - CAIRN_WIRE_SKEW_MS - 1000};
    build_frame(key, &fs, session, sizeof session, &f);
    assert_int_equal(f.len, CAIRN_WIRE_HELLO_SIZE);
    assert_int_equal(cairn_wire_hello_decode(m, f.base, got), CAIRN_EAUTH);
    fs.time_ms = 0;
    build_frame(key, &fs, session, sizeof session, &f);
    assert_int_equal(cairn_wire_hello_decode(m, f.base, got), 0);
    /* a request frame or a response in place of the hello */
    fs.flags = 0;
    build_frame(key, &fs, session, sizeof session, &f);
    assert_int_equal(cairn_wire_hello_decode(m, f.base, got), CAIRN_EPROTO);
    fs.flags = CAIRN_WIRE_FLAG_RESPONSE;
    fs.op = OP_ECHO;
    build_frame(key, &fs, session, sizeof session, &f);
    assert_int_equal(cairn_wire_hello_decode(m, f.base, got), CAIRN_EPROTO);

    /* a fake server sending a stale hello: the client's call fails at connect */
    int lfd = cairn_listen("127.0.0.1:0", 0);
    char addr[64];
    assert_int_equal(cairn_local_addr(lfd, addr, sizeof addr), 0);
    cairn_conn_t c;
    cairn_conn_init(&c, addr, key, 1000);
    fs.op = CAIRN_OP_HELLO;
    fs.time_ms = cairn_wall_ms() - 10 * CAIRN_WIRE_SKEW_MS;
    build_frame(key, &fs, session, sizeof session, &f);
    cairn_buf_t resp;
    cairn_buf_init(&resp);
    int32_t status;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int sfd = accept(lfd, NULL, NULL);
        struct iovec v = {f.base, f.len};
        cairn_io_write_all(sfd, &v, 1, cairn_now_ms() + 2000);
        char sink[256];
        while (read(sfd, sink, sizeof sink) > 0) /* nothing may arrive: the client hangs up */
            _exit(3);
        _exit(0);
    }
    struct iovec v = {"x", 1};
    assert_int_equal(cairn_conn_call(&c, OP_ECHO, 0, &v, 1, &resp, &status), CAIRN_EAUTH);
    assert_int_equal(c.fd, -1);
    int wst;
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    assert_true(WIFEXITED(wst) && WEXITSTATUS(wst) == 0); /* no request reached the fake server */
    close(lfd);
    cairn_conn_dispose(&c);
    cairn_buf_dispose(&resp);
    cairn_buf_dispose(&f);
    cairn_wire_mac_destroy(m);
    cairn_wire_mac_destroy(mo);
    cairn_wire_key_destroy(key);
    cairn_wire_key_destroy(other);
}

/* ---- MAC ---- */

static void test_mac(void **state)
{
    cairn_wire_key_t *k1, *k2, *k3;
    assert_int_equal(cairn_wire_key_create(SECRET, strlen(SECRET), &k1), 0);
    assert_int_equal(cairn_wire_key_create(SECRET, strlen(SECRET), &k2), 0);
    assert_int_equal(cairn_wire_key_create(SECRET "!", strlen(SECRET) + 1, &k3), 0);
    assert_int_equal(cairn_wire_key_create("", 0, &k3 /* untouched */), CAIRN_EINVAL);

    uint8_t body[300], session[CAIRN_WIRE_SESSION_SIZE], link[CAIRN_WIRE_HDR_SIZE];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i ^ 0x5a);
    memset(session, 0x33, sizeof session);
    memset(link, 0x44, sizeof link);
    cairn_buf_t f;
    cairn_buf_init(&f);
    fspec_t fs = {.op = 7, .seq = 3, .id = 99, .claimed_len = sizeof body, .session = session};
    build_frame(k1, &fs, body, sizeof body, &f);
    size_t maclen = f.len - CAIRN_WIRE_MAC_SIZE;
    const uint8_t *hdr = f.base, *bod = f.base + CAIRN_WIRE_HDR_SIZE, *trailer = f.base + maclen;

    cairn_wire_mac_t *m = cairn_wire_mac_create(k2);
    /* body pieces of any size give the same MAC; final leaves it ready again */
    for (int round = 0; round < 3; round++) {
        cairn_wire_mac_begin(m, session, NULL, hdr);
        for (size_t off = 0; off < sizeof body;) {
            size_t n = 1 + (off * 7 + (size_t)round) % 61;
            if (n > sizeof body - off)
                n = sizeof body - off;
            cairn_wire_mac_update(m, bod + off, n);
            off += n;
        }
        assert_int_equal(cairn_wire_mac_check(m, trailer), 0);
    }
    /* begin abandons a partial MAC */
    cairn_wire_mac_begin(m, session, NULL, hdr);
    cairn_wire_mac_update(m, "junk", 4);
    cairn_wire_mac_begin(m, session, NULL, hdr);
    cairn_wire_mac_update(m, bod, sizeof body);
    assert_int_equal(cairn_wire_mac_check(m, trailer), 0);

    /* a flipped byte in header, body or trailer is caught */
    for (size_t i = 0; i < f.len; i++) {
        f.base[i] ^= 0x20;
        cairn_wire_mac_begin(m, session, NULL, hdr);
        cairn_wire_mac_update(m, bod, sizeof body);
        assert_int_equal(cairn_wire_mac_check(m, trailer), CAIRN_EAUTH);
        f.base[i] ^= 0x20;
    }
    /* the same frame in another session, or as the answer to a request */
    uint8_t other[CAIRN_WIRE_SESSION_SIZE];
    memcpy(other, session, sizeof other);
    other[15] ^= 1;
    cairn_wire_mac_begin(m, other, NULL, hdr);
    cairn_wire_mac_update(m, bod, sizeof body);
    assert_int_equal(cairn_wire_mac_check(m, trailer), CAIRN_EAUTH);
    cairn_wire_mac_begin(m, session, link, hdr);
    cairn_wire_mac_update(m, bod, sizeof body);
    assert_int_equal(cairn_wire_mac_check(m, trailer), CAIRN_EAUTH);
    /* the plain MAC of the same bytes (the Raft handshake's kind) differs */
    cairn_wire_mac_update(m, f.base, maclen);
    assert_int_equal(cairn_wire_mac_check(m, trailer), CAIRN_EAUTH);
    /* plain MACs: pieces of any size, reset abandons */
    uint8_t t1[CAIRN_WIRE_MAC_SIZE];
    cairn_wire_mac_update(m, f.base, maclen);
    cairn_wire_mac_final(m, t1);
    for (size_t off = 0; off < maclen; off += 13)
        cairn_wire_mac_update(m, f.base + off, maclen - off < 13 ? maclen - off : 13);
    assert_int_equal(cairn_wire_mac_check(m, t1), 0);
    cairn_wire_mac_update(m, "junk", 4);
    cairn_wire_mac_reset(m);
    cairn_wire_mac_update(m, f.base, maclen);
    assert_int_equal(cairn_wire_mac_check(m, t1), 0);
    /* another secret gives another MAC */
    cairn_wire_mac_t *m3 = cairn_wire_mac_create(k3);
    cairn_wire_mac_begin(m3, session, NULL, hdr);
    cairn_wire_mac_update(m3, bod, sizeof body);
    assert_int_equal(cairn_wire_mac_check(m3, trailer), CAIRN_EAUTH);
    cairn_wire_mac_destroy(m3);
    cairn_wire_mac_destroy(m);
    cairn_buf_dispose(&f);
    cairn_wire_key_destroy(k1);
    cairn_wire_key_destroy(k2);
    cairn_wire_key_destroy(k3);
}

static void test_addr_parse(void **state)
{
    struct sockaddr_storage ss;
    unsigned len;
    assert_int_equal(cairn_addr_parse("127.0.0.1:80", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(cairn_addr_parse("[::1]:80", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(cairn_addr_parse(":7000", &ss, &len), 0);
    assert_int_equal(cairn_addr_parse("localhost:7000", &ss, &len), 0);
    assert_int_equal(cairn_addr_parse("127.0.0.1", &ss, &len), CAIRN_EINVAL);
    assert_int_equal(cairn_addr_parse("127.0.0.1:", &ss, &len), CAIRN_EINVAL);
    assert_int_equal(cairn_addr_parse("127.0.0.1:65536", &ss, &len), CAIRN_EINVAL);
    assert_int_equal(cairn_addr_parse("127.0.0.1:12x", &ss, &len), CAIRN_EINVAL);
    assert_int_equal(cairn_addr_parse("[::1:80", &ss, &len), CAIRN_EINVAL);
}

static void test_req_ids(void **state)
{
    uint64_t seen[256];
    for (int i = 0; i < 256; i++) {
        seen[i] = cairn_wire_new_req_id();
        assert_true(seen[i] != 0);
        for (int j = 0; j < i; j++)
            assert_true(seen[j] != seen[i]);
    }
}

/* ---- client against server ---- */

static void test_call(void **state)
{
    tsrv_t *t = tsrv_start(2000);
    cairn_conn_t c;
    cairn_buf_t resp;
    int32_t status;
    cairn_buf_init(&resp);
    cairn_conn_init(&c, t->addr, t->key, 2000);

    /* several pieces, one frame */
    struct iovec v[3] = {{"hello", 5}, {", ", 2}, {"world", 5}};
    assert_int_equal(cairn_conn_call(&c, OP_ECHO, 0, v, 3, &resp, &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(resp.len, 12);
    assert_memory_equal(resp.base, "hello, world", 12);
    uint64_t first_id = c.req_id;
    assert_true(first_id != 0);
    int fd = c.fd;

    /* an explicit id is used; the connection is reused */
    assert_int_equal(cairn_conn_call(&c, OP_ECHO, 0xabcdef, NULL, 0, &resp, &status), 0);
    assert_int_equal(c.req_id, 0xabcdef);
    assert_int_equal(resp.len, 0);
    assert_int_equal(c.fd, fd);

    /* handler statuses come back as statuses */
    assert_int_equal(cairn_conn_call(&c, OP_FAIL, 0, NULL, 0, &resp, &status), 0);
    assert_int_equal(status, CAIRN_ENOTFOUND);
    assert_int_equal(c.fd, fd);

    /* unknown opcode */
    assert_int_equal(cairn_conn_call(&c, 999, 0, NULL, 0, &resp, &status), 0);
    assert_int_equal(status, CAIRN_EPROTO);

    /* large bodies both ways */
    size_t n = 5u << 20;
    uint8_t *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)(i * 13 + (i >> 12));
    struct iovec bv = {big, n};
    assert_int_equal(cairn_conn_call(&c, OP_ECHO, 0, &bv, 1, &resp, &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(resp.len, n);
    assert_memory_equal(resp.base, big, n);
    uint8_t req[4];
    cairn_le32_put(req, 9u << 20);
    struct iovec rv = {req, 4};
    assert_int_equal(cairn_conn_call(&c, OP_BIG, 0, &rv, 1, &resp, NULL), 0);
    assert_int_equal(resp.len, 9u << 20);
    for (size_t i = 0; i < resp.len; i += 4093)
        assert_int_equal(resp.base[i], (uint8_t)(i * 31 + 7));
    free(big);

    /* a body the server would not buffer is refused before sending */
    uint8_t dummy;
    struct iovec tv[2] = {{&dummy, CAIRN_WIRE_MAX_BODY}, {&dummy, 1}};
    assert_int_equal(cairn_conn_send(&c, OP_ECHO, 0, tv, 2), CAIRN_ETOOBIG);

    /* two-phase calls on several connections */
    cairn_conn_t cs[4];
    for (int i = 0; i < 4; i++) {
        cairn_conn_init(&cs[i], t->addr, t->key, 2000);
        char msg[32];
        snprintf(msg, sizeof msg, "conn %d", i);
        struct iovec mv = {msg, strlen(msg)};
        assert_int_equal(cairn_conn_send(&cs[i], OP_ECHO, 0, &mv, 1), 0);
    }
    for (int i = 0; i < 4; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "conn %d", i);
        assert_int_equal(cairn_conn_recv(&cs[i], &resp, &status), 0);
        assert_int_equal(resp.len, strlen(msg));
        assert_memory_equal(resp.base, msg, resp.len);
        cairn_conn_dispose(&cs[i]);
    }

    /* the server drops the idle connection: the next call reconnects */
    cairn_srv_stop(t->srv);
    pthread_join(t->thr, NULL);
    cairn_srv_destroy(t->srv);
    assert_int_equal(cairn_srv_create(t->lfd, t->key, routes, sizeof routes / sizeof routes[0], &t->ctr, 2000,
                                      &t->srv),
                     0);
    assert_int_equal(pthread_create(&t->thr, NULL, tsrv_main, t), 0);
    assert_int_equal(cairn_conn_call(&c, OP_ECHO, 0, v, 1, &resp, &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(resp.len, 5);

    cairn_buf_dispose(&resp);
    cairn_conn_dispose(&c);
    tsrv_stop(t);
}

static void test_stream(void **state)
{
    tsrv_t *t = tsrv_start(2000);
    cairn_conn_t c;
    cairn_buf_t resp;
    int32_t status;
    cairn_buf_init(&resp);
    cairn_conn_init(&c, t->addr, t->key, 2000);

    size_t n = 3u << 20;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 2654435761u >> 13);
    for (int round = 0; round < 2; round++) {
        int route = round == 0 ? OP_SUM : OP_NOVERIFY;
        assert_int_equal(cairn_conn_stream_begin(&c, (uint16_t)route, 0, n), 0);
        size_t off = 0, piece = 1;
        while (off < n) {
            size_t len = piece < n - off ? piece : n - off;
            struct iovec v[2] = {{data + off, len / 2}, {data + off + len / 2, len - len / 2}};
            assert_int_equal(cairn_conn_stream_write(&c, v, 2), 0);
            off += len;
            piece = piece * 3 + 1;
        }
        assert_int_equal(cairn_conn_stream_end(&c, &resp, &status), 0);
        assert_int_equal(status, 0);
        if (route == OP_SUM) {
            assert_int_equal(resp.len, 8);
            assert_int_equal(cairn_le64_get(resp.base), fnv(FNV0, data, n));
        }
    }
    /* and an ordinary call on the same connection afterwards */
    struct iovec v = {"after", 5};
    int fd = c.fd;
    assert_int_equal(cairn_conn_call(&c, OP_ECHO, 0, &v, 1, &resp, &status), 0);
    assert_int_equal(resp.len, 5);
    assert_int_equal(c.fd, fd);

    /* writing past body_len, or ending early, is the caller's bug */
    assert_int_equal(cairn_conn_stream_begin(&c, OP_SUM, 0, 4), 0);
    struct iovec five = {"12345", 5};
    assert_int_equal(cairn_conn_stream_write(&c, &five, 1), CAIRN_EINVAL);
    assert_int_equal(c.fd, -1);
    assert_int_equal(cairn_conn_stream_begin(&c, OP_SUM, 0, 4), 0);
    assert_int_equal(cairn_conn_stream_end(&c, &resp, &status), CAIRN_EINVAL);
    assert_int_equal(cairn_conn_stream_begin(&c, OP_SUM, 0, CAIRN_WIRE_MAX_STREAM + 1), CAIRN_ETOOBIG);

    free(data);
    cairn_buf_dispose(&resp);
    cairn_conn_dispose(&c);
    tsrv_stop(t);
}

/* A streaming handler that gives up early: the client learns its status. */
static void test_stream_refused(void **state)
{
    tsrv_t *t = tsrv_start(2000);
    cairn_conn_t c;
    cairn_buf_t resp;
    int32_t status = 0;
    cairn_buf_init(&resp);
    cairn_conn_init(&c, t->addr, t->key, 2000);
    size_t total = 64u << 20, chunk = 256u << 10;
    uint8_t *buf = calloc(1, chunk);
    assert_int_equal(cairn_conn_stream_begin(&c, OP_PARTIAL, 0, total), 0);
    int rc = 0;
    for (size_t off = 0; off < total && rc == 0; off += chunk) {
        struct iovec v = {buf, chunk};
        rc = cairn_conn_stream_write(&c, &v, 1);
    }
    if (rc == 0) {
        rc = cairn_conn_stream_end(&c, &resp, &status);
        if (rc == 0)
            rc = status;
    }
    assert_int_equal(rc, CAIRN_ECORRUPT);
    assert_int_equal(c.fd, -1);
    /* the connection is gone, the next call reconnects */
    struct iovec v = {"x", 1};
    assert_int_equal(cairn_conn_call(&c, OP_ECHO, 0, &v, 1, &resp, &status), 0);
    assert_int_equal(status, 0);
    free(buf);
    cairn_buf_dispose(&resp);
    cairn_conn_dispose(&c);
    tsrv_stop(t);
}

static void test_bad_key(void **state)
{
    tsrv_t *t = tsrv_start(2000);
    cairn_wire_key_t *wrong;
    assert_int_equal(cairn_wire_key_create("not the cluster secret", 22, &wrong), 0);
    cairn_conn_t c;
    cairn_buf_t resp;
    int32_t status = 0;
    cairn_buf_init(&resp);
    cairn_conn_init(&c, t->addr, wrong, 2000);

    /* The client cannot verify the server's hello: nothing is sent. */
    struct iovec v = {"secret stuff", 12};
    assert_int_equal(cairn_conn_call(&c, OP_ECHO, 0, &v, 1, &resp, &status), CAIRN_EAUTH);
    assert_int_equal(c.fd, -1);
    assert_int_equal(cairn_conn_stream_begin(&c, OP_SUM, 0, 12), CAIRN_EAUTH);
    assert_int_equal(c.fd, -1);

    /* A client that ignores the hello's MAC and signs with its own key:
     * refused with CAIRN_EAUTH (MACed with the real key), handler never
     * acts; streamed bodies fail the check, in the handler or after it. */
    static const uint16_t ops[] = {OP_ECHO, OP_SUM, OP_NOVERIFY};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        uint8_t session[CAIRN_WIRE_SESSION_SIZE];
        cairn_buf_t f;
        cairn_buf_init(&f);
        int fd = raw_connect(t->addr, NULL, session);
        build_req(wrong, session, ops[i], 1, 10 + i, "secret stuff", 12, &f);
        raw_send(fd, f.base, f.len);
        assert_int_equal(raw_response(fd, t->key, session, f.base), CAIRN_EAUTH);
        assert_true(raw_flags & CAIRN_WIRE_FLAG_CLOSE);
        assert_closed(fd);
        close(fd);
        cairn_buf_dispose(&f);
    }
    assert_int_equal(calls(t), 2); /* the streaming handlers ran, but could not act */

    cairn_buf_dispose(&resp);
    cairn_conn_dispose(&c);
    cairn_wire_key_destroy(wrong);
    tsrv_stop(t);
}

static void test_timeout(void **state)
{
    tsrv_t *t = tsrv_start(2000);
    cairn_conn_t c;
    cairn_buf_t resp;
    int32_t status;
    cairn_buf_init(&resp);
    cairn_conn_init(&c, t->addr, t->key, 100);
    int64_t t0 = cairn_now_ms();
    assert_int_equal(cairn_conn_call(&c, OP_SLOW, 0, NULL, 0, &resp, &status), CAIRN_ETIMEOUT);
    int64_t took = cairn_now_ms() - t0;
    assert_true(took >= 90 && took < 1500); /* generous: CI machines are loaded */
    assert_int_equal(c.fd, -1);
    /* next call: a new connection (the old one's handler is still asleep) */
    struct iovec v = {"ok", 2};
    assert_int_equal(cairn_conn_call(&c, OP_ECHO, 0, &v, 1, &resp, &status), 0);
    assert_int_equal(status, 0);
    cairn_conn_dispose(&c);

    /* connection refused */
    char addr[64];
    int lfd = cairn_listen("127.0.0.1:0", 0);
    assert_int_equal(cairn_local_addr(lfd, addr, sizeof addr), 0);
    close(lfd);
    cairn_conn_init(&c, addr, t->key, 500);
    assert_int_equal(cairn_conn_call(&c, OP_ECHO, 0, &v, 1, &resp, &status), -ECONNREFUSED);
    assert_int_equal(c.fd, -1);
    cairn_conn_dispose(&c);
    cairn_buf_dispose(&resp);
    tsrv_stop(t);
}

/* Server-side timeout: a frame that stalls half-way is dropped. An idle
 * connection between frames is not. */
static void test_server_timeout(void **state)
{
    tsrv_t *t = tsrv_start(200);
    uint8_t session[CAIRN_WIRE_SESSION_SIZE];
    int fd = raw_connect(t->addr, t->key, session);
    usleep(400 * 1000); /* idle longer than the I/O timeout: still served */
    cairn_buf_t f;
    cairn_buf_init(&f);
    build_req(t->key, session, OP_ECHO, 1, 42, "ping", 4, &f);
    raw_send(fd, f.base, f.len);
    assert_int_equal(raw_response(fd, t->key, session, f.base), 0);
    assert_int_equal(raw_flags, CAIRN_WIRE_FLAG_RESPONSE); /* keeps the connection */
    /* now half a frame, then silence */
    build_req(t->key, session, OP_ECHO, 2, 43, "ping", 4, &f);
    raw_send(fd, f.base, 44);
    int64_t t0 = cairn_now_ms();
    assert_closed(fd);
    assert_true(cairn_now_ms() - t0 < 4000);
    close(fd);
    cairn_buf_dispose(&f);
    tsrv_stop(t);
}

static void test_server_refusals(void **state)
{
    tsrv_t *t = tsrv_start(2000);
    uint8_t session[CAIRN_WIRE_SESSION_SIZE];
    cairn_buf_t f;
    cairn_buf_init(&f);

    /* a non-streamed body above the limit: CAIRN_ETOOBIG, then hang up */
    int fd = raw_connect(t->addr, t->key, session);
    fspec_t fs = {.op = OP_ECHO, .seq = 1, .id = 1, .claimed_len = CAIRN_WIRE_MAX_BODY + 1ull, .session = session};
    build_frame(t->key, &fs, NULL, 0, &f);
    raw_send(fd, f.base, CAIRN_WIRE_HDR_SIZE);
    assert_int_equal(raw_response(fd, t->key, session, f.base), CAIRN_ETOOBIG);
    assert_true(raw_flags & CAIRN_WIRE_FLAG_CLOSE);
    assert_closed(fd);
    close(fd);

    /* above the stream limit on a streaming route */
    fd = raw_connect(t->addr, t->key, session);
    fs = (fspec_t){.op = OP_SUM, .seq = 1, .id = 2, .claimed_len = CAIRN_WIRE_MAX_STREAM + 1, .session = session};
    build_frame(t->key, &fs, NULL, 0, &f);
    raw_send(fd, f.base, CAIRN_WIRE_HDR_SIZE);
    assert_int_equal(raw_response(fd, t->key, session, f.base), CAIRN_ETOOBIG);
    assert_true(raw_flags & CAIRN_WIRE_FLAG_CLOSE);
    assert_closed(fd);
    close(fd);

    /* tampered body, header or trailer: CAIRN_EAUTH, handler never runs, hang up */
    static const size_t flips[] = {CAIRN_WIRE_HDR_SIZE + 2, 4 /* opcode */, 17 /* request id */,
                                   CAIRN_WIRE_HDR_SIZE + 7 + 3 /* trailer */};
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        fd = raw_connect(t->addr, t->key, session);
        build_req(t->key, session, OP_ECHO, 1, 3, "payload", 7, &f);
        f.base[flips[i]] ^= 0x40; /* the opcode becomes one with no route */
        raw_send(fd, f.base, f.len);
        assert_int_equal(raw_response(fd, t->key, session, f.base), CAIRN_EAUTH);
        assert_true(raw_flags & CAIRN_WIRE_FLAG_CLOSE);
        assert_closed(fd);
        close(fd);
    }
    assert_int_equal(calls(t), 0);

    /* a "request" with the response flag */
    fd = raw_connect(t->addr, t->key, session);
    fs = (fspec_t){.op = OP_ECHO, .flags = CAIRN_WIRE_FLAG_RESPONSE, .seq = 1, .id = 4, .claimed_len = 1,
                   .session = session};
    build_frame(t->key, &fs, "x", 1, &f);
    raw_send(fd, f.base, f.len);
    assert_int_equal(raw_response(fd, t->key, session, f.base), CAIRN_EPROTO);
    assert_true(raw_flags & CAIRN_WIRE_FLAG_CLOSE);
    assert_closed(fd);
    close(fd);

    /* not our protocol at all: just closed */
    fd = raw_connect(t->addr, t->key, session);
    static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    raw_send(fd, http, sizeof http - 1);
    assert_closed(fd);
    close(fd);

    cairn_buf_dispose(&f);
    tsrv_stop(t);
}

/* Send one request frame on fd and return the status of its answer. */
static int32_t raw_call(int fd, tsrv_t *t, const uint8_t *session, const cairn_buf_t *f)
{
    raw_send(fd, f->base, f->len);
    return raw_response(fd, t->key, session, f->base);
}

/* A recorded frame sent again on its connection, or on another one, is
 * refused before any handler runs, and so are frames out of order. */
static void test_replay(void **state)
{
    tsrv_t *t = tsrv_start(2000);
    uint8_t s1[CAIRN_WIRE_SESSION_SIZE], s2[CAIRN_WIRE_SESSION_SIZE];
    cairn_buf_t f1, f2;
    cairn_buf_init(&f1);
    cairn_buf_init(&f2);

    /* the same frame twice on one connection: the copy is refused */
    int fd = raw_connect(t->addr, t->key, s1);
    build_req(t->key, s1, OP_ECHO, 1, 100, "once", 4, &f1);
    assert_int_equal(raw_call(fd, t, s1, &f1), 0);
    assert_int_equal(calls(t), 1);
    assert_int_equal(raw_call(fd, t, s1, &f1), CAIRN_EAUTH);
    assert_true(raw_flags & CAIRN_WIRE_FLAG_CLOSE);
    assert_closed(fd);
    close(fd);
    assert_int_equal(calls(t), 1);

    /* the recorded frame on a new connection: another session, refused, even
     * as that connection's first frame (its seq is right) */
    fd = raw_connect(t->addr, t->key, s2);
    assert_memory_not_equal(s1, s2, sizeof s1);
    assert_int_equal(raw_call(fd, t, s2, &f1), CAIRN_EAUTH);
    assert_true(raw_flags & CAIRN_WIRE_FLAG_CLOSE);
    assert_closed(fd);
    close(fd);
    assert_int_equal(calls(t), 1);

    /* reordered: seq 2 before seq 1; a skipped seq; seq 0 */
    static const uint32_t bad_first[] = {2, 0, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad_first / sizeof bad_first[0]; i++) {
        fd = raw_connect(t->addr, t->key, s2);
        build_req(t->key, s2, OP_ECHO, bad_first[i], 200, "early", 5, &f2);
        assert_int_equal(raw_call(fd, t, s2, &f2), CAIRN_EAUTH);
        assert_closed(fd);
        close(fd);
    }
    fd = raw_connect(t->addr, t->key, s2);
    build_req(t->key, s2, OP_ECHO, 1, 201, "one", 3, &f1);
    assert_int_equal(raw_call(fd, t, s2, &f1), 0);
    build_req(t->key, s2, OP_ECHO, 3, 202, "three", 5, &f2);
    assert_int_equal(raw_call(fd, t, s2, &f2), CAIRN_EAUTH);
    assert_closed(fd);
    close(fd);
    assert_int_equal(calls(t), 2);

    /* in order, many frames are served on one connection */
    fd = raw_connect(t->addr, t->key, s2);
    for (uint32_t seq = 1; seq <= 20; seq++) {
        build_req(t->key, s2, OP_ECHO, seq, 300 + seq, "n", 1, &f1);
        assert_int_equal(raw_call(fd, t, s2, &f1), 0);
        assert_int_equal(raw_flags, CAIRN_WIRE_FLAG_RESPONSE);
    }
    close(fd);
    assert_int_equal(calls(t), 22);

    /* a duplicate streamed request is refused before the handler reads it */
    fd = raw_connect(t->addr, t->key, s2);
    build_req(t->key, s2, OP_SUM, 1, 400, "streamed body", 13, &f1);
    assert_int_equal(raw_call(fd, t, s2, &f1), 0);
    assert_int_equal(raw_call(fd, t, s2, &f1), CAIRN_EAUTH);
    assert_closed(fd);
    close(fd);
    assert_int_equal(calls(t), 23);

    cairn_buf_dispose(&f1);
    cairn_buf_dispose(&f2);
    tsrv_stop(t);
}

/* Frames stamped outside the skew window are refused (a recording kept
 * for later); inside it they are served. */
static void test_stale(void **state)
{
    tsrv_t *t = tsrv_start(2000);
    uint8_t s[CAIRN_WIRE_SESSION_SIZE];
    cairn_buf_t f;
    cairn_buf_init(&f);
    int64_t now = cairn_wall_ms();
    struct {
        int64_t off;
        int32_t want;
    } cases[] = {
        {-CAIRN_WIRE_SKEW_MS - 2000, CAIRN_EAUTH}, {CAIRN_WIRE_SKEW_MS + 2000, CAIRN_EAUTH},
        {-24 * 3600 * 1000LL, CAIRN_EAUTH},        {-now, CAIRN_EAUTH},
        {-CAIRN_WIRE_SKEW_MS / 2, 0},              {CAIRN_WIRE_SKEW_MS / 2, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = raw_connect(t->addr, t->key, s);
        fspec_t fs = {.op = OP_ECHO, .seq = 1, .id = 500 + i, .claimed_len = 3, .session = s};
        fs.time_ms = now + cases[i].off;
        if (fs.time_ms == 0)
            fs.time_ms = -1; /* 0 means "now" to build_frame */
        build_frame(t->key, &fs, "old", 3, &f);
        assert_int_equal(raw_call(fd, t, s, &f), cases[i].want);
        if (cases[i].want != 0) {
            assert_true(raw_flags & CAIRN_WIRE_FLAG_CLOSE);
            assert_closed(fd);
        }
        close(fd);
    }
    assert_int_equal(calls(t), 2);
    cairn_buf_dispose(&f);
    tsrv_stop(t);
}

/* The client numbers its requests and reconnects before seq would wrap. */
static void test_client_seq(void **state)
{
    tsrv_t *t = tsrv_start(2000);
    cairn_conn_t c;
    cairn_buf_t resp;
    int32_t status;
    cairn_buf_init(&resp);
    cairn_conn_init(&c, t->addr, t->key, 2000);
    for (uint32_t i = 1; i <= 5; i++) {
        assert_int_equal(cairn_conn_call(&c, OP_ECHO, 0, NULL, 0, &resp, &status), 0);
        assert_int_equal(c.seq, i);
    }
    uint8_t first[CAIRN_WIRE_SESSION_SIZE];
    memcpy(first, c.session, sizeof first);
    int fd = c.fd;
    c.seq = UINT32_MAX; /* as if 2^32 - 1 requests were made */
    assert_int_equal(cairn_conn_call(&c, OP_ECHO, 0, NULL, 0, &resp, &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(c.seq, 1);
    assert_memory_not_equal(c.session, first, sizeof first);
    (void)fd;
    cairn_buf_dispose(&resp);
    cairn_conn_dispose(&c);
    tsrv_stop(t);
}

/* stop + destroy return promptly with connections open, idle or busy. */
static void test_stop(void **state)
{
    tsrv_t *t = tsrv_start(2000);
    cairn_conn_t idle, busy;
    cairn_buf_t resp;
    int32_t status;
    cairn_buf_init(&resp);
    cairn_conn_init(&idle, t->addr, t->key, 2000);
    cairn_conn_init(&busy, t->addr, t->key, 2000);
    assert_int_equal(cairn_conn_call(&idle, OP_ECHO, 0, NULL, 0, &resp, &status), 0);
    assert_int_equal(cairn_conn_stream_begin(&busy, OP_SUM, 0, 1000), 0); /* handler waits for the body */
    usleep(50 * 1000);
    int64_t t0 = cairn_now_ms();
    tsrv_stop(t);
    assert_true(cairn_now_ms() - t0 < 3000);
    cairn_conn_dispose(&idle);
    cairn_conn_dispose(&busy);
    cairn_buf_dispose(&resp);
}

int main(void)
{
    cairn_log_init("test", "wire", CAIRN_LOG_ERROR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdr_round_trip),   cmocka_unit_test(test_hdr_bad),
        cmocka_unit_test(test_time_check),       cmocka_unit_test(test_hello),
        cmocka_unit_test(test_truncated),        cmocka_unit_test(test_mac),
        cmocka_unit_test(test_addr_parse),       cmocka_unit_test(test_req_ids),
        cmocka_unit_test(test_call),             cmocka_unit_test(test_stream),
        cmocka_unit_test(test_stream_refused),   cmocka_unit_test(test_bad_key),
        cmocka_unit_test(test_timeout),          cmocka_unit_test(test_server_timeout),
        cmocka_unit_test(test_server_refusals),  cmocka_unit_test(test_replay),
        cmocka_unit_test(test_stale),            cmocka_unit_test(test_client_seq),
        cmocka_unit_test(test_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
