/*
 * wire_test.c — frames, MACs, the client connection and the server.
 *
 * Pure parts (header codec, MAC) are tested on byte arrays. The client and
 * the server are tested against each other over loopback: a real
 * cairn_srv on 127.0.0.1:0 in a thread with a handful of test routes.
 * Server behaviour the client never provokes (oversized or tampered frames)
 * is driven with hand-built frames on a raw socket; client parsing of bad
 * responses is driven by a fake peer on a socketpair.
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

static void build_frame(const cairn_wire_key_t *key, uint16_t op, uint16_t flags, int32_t status, uint64_t id,
                        const void *body, size_t len, uint64_t claimed_len, cairn_buf_t *out)
{
    cairn_frame_hdr_t h = {.opcode = op, .flags = flags, .status = status, .req_id = id, .body_len = claimed_len};
    uint8_t hb[CAIRN_WIRE_HDR_SIZE], mac[CAIRN_WIRE_MAC_SIZE];
    cairn_wire_hdr_encode(&h, hb);
    cairn_wire_mac_t *m = cairn_wire_mac_create(key);
    cairn_wire_mac_update(m, hb, sizeof hb);
    cairn_wire_mac_update(m, body, len);
    cairn_wire_mac_final(m, mac);
    cairn_wire_mac_destroy(m);
    cairn_buf_reset(out);
    cairn_buf_append(out, hb, sizeof hb);
    cairn_buf_append(out, body, len);
    cairn_buf_append(out, mac, sizeof mac);
}

static int raw_connect(const char *addr)
{
    struct sockaddr_storage ss;
    unsigned len;
    assert_int_equal(cairn_addr_parse(addr, &ss, &len), 0);
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
    return fd;
}

static void raw_send(int fd, const void *p, size_t n)
{
    struct iovec v = {(void *)p, n};
    assert_int_equal(cairn_io_write_all(fd, &v, 1, cairn_now_ms() + 2000), 0);
}

static uint16_t raw_flags; /* of the last raw_response() */

/* Read one response frame and check its MAC; returns its status. */
static int32_t raw_response(int fd, const cairn_wire_key_t *key, uint64_t id)
{
    uint8_t hb[CAIRN_WIRE_HDR_SIZE], mac[CAIRN_WIRE_MAC_SIZE];
    cairn_frame_hdr_t h;
    assert_int_equal(cairn_io_read_all(fd, hb, sizeof hb, cairn_now_ms() + 3000), 0);
    assert_int_equal(cairn_wire_hdr_decode(hb, &h), 0);
    assert_true(h.flags & CAIRN_WIRE_FLAG_RESPONSE);
    raw_flags = h.flags;
    assert_int_equal(h.req_id, id);
    assert_true(h.body_len < 4096);
    uint8_t body[4096];
    assert_int_equal(cairn_io_read_all(fd, body, (size_t)h.body_len, cairn_now_ms() + 3000), 0);
    assert_int_equal(cairn_io_read_all(fd, mac, sizeof mac, cairn_now_ms() + 3000), 0);
    cairn_wire_mac_t *m = cairn_wire_mac_create(key);
    cairn_wire_mac_update(m, hb, sizeof hb);
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
            .req_id = (uint64_t)rand() << 33 ^ (uint64_t)rand(),
            .body_len = ((uint64_t)rand() << 20 ^ (uint64_t)rand()) % (CAIRN_WIRE_MAX_STREAM + 1),
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
    }
    /* the documented layout */
    cairn_frame_hdr_t h = {.opcode = 0x0102, .flags = 1, .status = -5, .req_id = 0x1122334455667788ull, .body_len = 9};
    uint8_t b[CAIRN_WIRE_HDR_SIZE];
    cairn_wire_hdr_encode(&h, b);
    assert_memory_equal(b, "CRN1", 4);
    assert_int_equal(b[4], 2);
    assert_int_equal(b[5], 1);
    assert_int_equal(b[6], 1);
    assert_int_equal(cairn_le32_get(b + 8), (uint32_t)-5);
    assert_int_equal(cairn_le32_get(b + 12), 0);
    assert_int_equal(cairn_le64_get(b + 16), 0x1122334455667788ull);
    assert_int_equal(cairn_le64_get(b + 24), 9);
}

static void test_hdr_bad(void **state)
{
    cairn_frame_hdr_t h = {.opcode = 1, .req_id = 5, .body_len = 10}, g;
    uint8_t b[CAIRN_WIRE_HDR_SIZE];
    cairn_wire_hdr_encode(&h, b);
    b[0] ^= 1; /* magic */
    assert_int_equal(cairn_wire_hdr_decode(b, &g), CAIRN_EPROTO);
    b[0] ^= 1;
    b[13] = 1; /* reserved */
    assert_int_equal(cairn_wire_hdr_decode(b, &g), CAIRN_EPROTO);
    b[13] = 0;
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
 * the client's response parsing. */
static void test_truncated(void **state)
{
    int sv[2];
    uint8_t b[CAIRN_WIRE_HDR_SIZE];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    raw_send(sv[1], "CRN1\0\0\0\0\0\0", 10);
    close(sv[1]);
    assert_int_equal(cairn_io_read_all(sv[0], b, sizeof b, cairn_now_ms() + 1000), CAIRN_EPROTO);
    close(sv[0]);

    /* client side: the fake peer answers with 20 bytes of a header */
    cairn_wire_key_t *key;
    assert_int_equal(cairn_wire_key_create(SECRET, strlen(SECRET), &key), 0);
    cairn_conn_t c;
    cairn_conn_init(&c, "127.0.0.1:1", key, 1000);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    c.fd = sv[0];
    c.req_id = 77;
    cairn_frame_hdr_t h = {.opcode = OP_ECHO, .flags = CAIRN_WIRE_FLAG_RESPONSE, .req_id = 77};
    cairn_wire_hdr_encode(&h, b);
    raw_send(sv[1], b, 20);
    close(sv[1]);
    cairn_buf_t resp;
    cairn_buf_init(&resp);
    int32_t status = 1;
    assert_int_equal(cairn_conn_recv(&c, &resp, &status), CAIRN_EPROTO);
    assert_int_equal(c.fd, -1);

    /* a response to another request, a request posing as a response, an
     * oversized response, a bad MAC: all refused and the connection closed */
    struct {
        uint16_t flags;
        uint64_t id, len;
        int key_ok;
        int want;
    } cases[] = {
        {CAIRN_WIRE_FLAG_RESPONSE, 78, 0, 1, CAIRN_EPROTO},
        {0, 77, 0, 1, CAIRN_EPROTO},
        {CAIRN_WIRE_FLAG_RESPONSE, 77, CAIRN_WIRE_MAX_BODY + 1ull, 1, CAIRN_ETOOBIG},
        {CAIRN_WIRE_FLAG_RESPONSE, 77, 3, 0, CAIRN_EAUTH},
        {CAIRN_WIRE_FLAG_RESPONSE, 77, 3, 1, 0},
    };
    cairn_wire_key_t *other;
    assert_int_equal(cairn_wire_key_create("another secret", 14, &other), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cairn_buf_t f;
        cairn_buf_init(&f);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        c.fd = sv[0];
        c.req_id = 77;
        size_t len = cases[i].len > 3 ? 0 : (size_t)cases[i].len;
        build_frame(cases[i].key_ok ? key : other, OP_ECHO, cases[i].flags, -3, cases[i].id, "abc", len,
                    cases[i].len, &f);
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

/* ---- MAC ---- */

static void test_mac(void **state)
{
    cairn_wire_key_t *k1, *k2, *k3;
    assert_int_equal(cairn_wire_key_create(SECRET, strlen(SECRET), &k1), 0);
    assert_int_equal(cairn_wire_key_create(SECRET, strlen(SECRET), &k2), 0);
    assert_int_equal(cairn_wire_key_create(SECRET "!", strlen(SECRET) + 1, &k3), 0);
    assert_int_equal(cairn_wire_key_create("", 0, &k3 /* untouched */), CAIRN_EINVAL);

    uint8_t body[300];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i ^ 0x5a);
    cairn_buf_t f;
    cairn_buf_init(&f);
    build_frame(k1, 7, 0, 0, 99, body, sizeof body, sizeof body, &f);
    size_t maclen = f.len - CAIRN_WIRE_MAC_SIZE;

    cairn_wire_mac_t *m = cairn_wire_mac_create(k2);
    /* pieces of any size give the same MAC; final leaves it ready again */
    for (int round = 0; round < 3; round++) {
        for (size_t off = 0; off < maclen;) {
            size_t n = 1 + (off * 7 + (size_t)round) % 61;
            if (n > maclen - off)
                n = maclen - off;
            cairn_wire_mac_update(m, f.base + off, n);
            off += n;
        }
        assert_int_equal(cairn_wire_mac_check(m, f.base + maclen), 0);
    }
    /* reset abandons a partial MAC */
    cairn_wire_mac_update(m, "junk", 4);
    cairn_wire_mac_reset(m);
    cairn_wire_mac_update(m, f.base, maclen);
    assert_int_equal(cairn_wire_mac_check(m, f.base + maclen), 0);

    /* a flipped byte in header, body or trailer is caught */
    for (size_t i = 0; i < f.len; i++) {
        f.base[i] ^= 0x20;
        cairn_wire_mac_update(m, f.base, maclen);
        assert_int_equal(cairn_wire_mac_check(m, f.base + maclen), CAIRN_EAUTH);
        f.base[i] ^= 0x20;
    }
    /* another secret gives another MAC */
    cairn_wire_mac_t *m3 = cairn_wire_mac_create(k3);
    cairn_wire_mac_update(m3, f.base, maclen);
    assert_int_equal(cairn_wire_mac_check(m3, f.base + maclen), CAIRN_EAUTH);
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

    /* The server refuses with CAIRN_EAUTH, MACed with the real key, which
     * this client cannot verify either: refused one way or the other. */
    struct iovec v = {"secret stuff", 12};
    int rc = cairn_conn_call(&c, OP_ECHO, 0, &v, 1, &resp, &status);
    assert_true(rc == CAIRN_EAUTH || (rc == 0 && status == CAIRN_EAUTH));
    assert_int_equal(c.fd, -1);
    assert_int_equal(calls(t), 0);

    /* streamed: the handler reads the body, but the MAC check fails */
    assert_int_equal(cairn_conn_stream_begin(&c, OP_SUM, 0, 12), 0);
    assert_int_equal(cairn_conn_stream_write(&c, &v, 1), 0);
    rc = cairn_conn_stream_end(&c, &resp, &status);
    assert_true(rc == CAIRN_EAUTH || (rc == 0 && status == CAIRN_EAUTH));
    assert_int_equal(resp.len, 0);

    /* the streaming handler that never verifies: the server does it */
    assert_int_equal(cairn_conn_stream_begin(&c, OP_NOVERIFY, 0, 12), 0);
    assert_int_equal(cairn_conn_stream_write(&c, &v, 1), 0);
    rc = cairn_conn_stream_end(&c, &resp, &status);
    assert_true(rc == CAIRN_EAUTH || (rc == 0 && status == CAIRN_EAUTH));

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
    int fd = raw_connect(t->addr);
    usleep(400 * 1000); /* idle longer than the I/O timeout: still served */
    cairn_buf_t f;
    cairn_buf_init(&f);
    build_frame(t->key, OP_ECHO, 0, 0, 42, "ping", 4, 4, &f);
    raw_send(fd, f.base, f.len);
    assert_int_equal(raw_response(fd, t->key, 42), 0);
    assert_int_equal(raw_flags, CAIRN_WIRE_FLAG_RESPONSE); /* keeps the connection */
    /* now half a frame, then silence */
    raw_send(fd, f.base, 40);
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
    cairn_buf_t f;
    cairn_buf_init(&f);

    /* a non-streamed body above the limit: CAIRN_ETOOBIG, then hang up */
    int fd = raw_connect(t->addr);
    build_frame(t->key, OP_ECHO, 0, 0, 1, NULL, 0, CAIRN_WIRE_MAX_BODY + 1ull, &f);
    raw_send(fd, f.base, CAIRN_WIRE_HDR_SIZE);
    assert_int_equal(raw_response(fd, t->key, 1), CAIRN_ETOOBIG);
    assert_true(raw_flags & CAIRN_WIRE_FLAG_CLOSE);
    assert_closed(fd);
    close(fd);

    /* above the stream limit on a streaming route */
    fd = raw_connect(t->addr);
    build_frame(t->key, OP_SUM, 0, 0, 2, NULL, 0, CAIRN_WIRE_MAX_STREAM + 1, &f);
    raw_send(fd, f.base, CAIRN_WIRE_HDR_SIZE);
    assert_int_equal(raw_response(fd, t->key, 2), CAIRN_ETOOBIG);
    assert_true(raw_flags & CAIRN_WIRE_FLAG_CLOSE);
    assert_closed(fd);
    close(fd);

    /* tampered body: CAIRN_EAUTH, handler never runs, hang up */
    fd = raw_connect(t->addr);
    build_frame(t->key, OP_ECHO, 0, 0, 3, "payload", 7, 7, &f);
    f.base[CAIRN_WIRE_HDR_SIZE + 2] ^= 1;
    raw_send(fd, f.base, f.len);
    assert_int_equal(raw_response(fd, t->key, 3), CAIRN_EAUTH);
    assert_true(raw_flags & CAIRN_WIRE_FLAG_CLOSE);
    assert_closed(fd);
    close(fd);
    assert_int_equal(calls(t), 0);

    /* a "request" with the response flag */
    fd = raw_connect(t->addr);
    build_frame(t->key, OP_ECHO, CAIRN_WIRE_FLAG_RESPONSE, 0, 4, "x", 1, 1, &f);
    raw_send(fd, f.base, f.len);
    assert_int_equal(raw_response(fd, t->key, 4), CAIRN_EPROTO);
    assert_true(raw_flags & CAIRN_WIRE_FLAG_CLOSE);
    assert_closed(fd);
    close(fd);

    /* not our protocol at all: just closed */
    fd = raw_connect(t->addr);
    static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    raw_send(fd, http, sizeof http - 1);
    assert_closed(fd);
    close(fd);

    cairn_buf_dispose(&f);
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
        cmocka_unit_test(test_truncated),        cmocka_unit_test(test_mac),
        cmocka_unit_test(test_addr_parse),       cmocka_unit_test(test_req_ids),
        cmocka_unit_test(test_call),             cmocka_unit_test(test_stream),
        cmocka_unit_test(test_stream_refused),   cmocka_unit_test(test_bad_key),
        cmocka_unit_test(test_timeout),          cmocka_unit_test(test_server_timeout),
        cmocka_unit_test(test_server_refusals),  cmocka_unit_test(test_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
