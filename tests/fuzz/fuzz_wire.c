/*
 * fuzz_wire.c — libFuzzer driver for the internal frame protocol: header
 * decoding, MAC checking, the client's response parsing and the server's
 * request loop.
 *
 * Input: byte 0 holds mode bits, the rest is a byte stream of frames.
 *   bit 0  seal: rewrite each frame's trailer with the correct MAC, so the
 *          fuzzer reaches what happens after authentication (handlers,
 *          streaming, statuses) instead of stopping at CAIRN_EAUTH;
 *   bit 1  the client expects the request id found in the first header
 *          (else a fixed one, which mostly tests the mismatch path).
 * Frames are cut from the stream as the receiver would: a 32-byte header,
 * then body_len bytes (clamped to what is left), then a 32-byte trailer.
 *
 * Checked properties, beyond "no crash, no sanitizer report":
 * - a header that decodes re-encodes to the same 32 bytes (the encoding is
 *   canonical);
 * - a MAC computed in pieces equals the MAC computed in one go;
 * - the client accepts a response only if it is a well-formed, correctly
 *   MACed response to its request, and never returns a body above
 *   CAIRN_WIRE_MAX_BODY.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icommon/include \
 *          tests/fuzz/fuzz_wire.c common/src/wire.c common/src/srv.c common/src/buf.c \
 *          common/src/err.c common/src/log.c -lcrypto -lpthread
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/srv.h"
#include "cairn/wire.h"

#define SECRET "fuzz cluster secret"
/* Everything must fit in a socket buffer: the peer is this same thread. */
#define MAX_INPUT (48 * 1024)

static cairn_wire_key_t *key;
static cairn_srv_t *srv;
static cairn_wire_mac_t *mac;

/* ---- server routes ---- */

static int on_echo(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    if (req->body == NULL)
        abort(); /* non-streaming handlers always get the body */
    cairn_buf_append(resp, req->body, (size_t)req->hdr.body_len);
    return 0;
}

static int on_decode(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    /* a typical body decoder: oid[16] u8 u64 u32, then a length-prefixed string */
    cairn_dec_t d;
    uint8_t oid[16];
    const uint8_t *p;
    size_t n;
    cairn_dec_init(&d, req->body, (size_t)req->hdr.body_len);
    cairn_dec_raw(&d, oid, sizeof oid);
    cairn_dec_u8(&d);
    cairn_dec_u64(&d);
    cairn_dec_u32(&d);
    cairn_dec_bytes(&d, &p, &n);
    if (d.err)
        return CAIRN_EPROTO;
    if (p + n > req->body + req->hdr.body_len)
        abort();
    cairn_buf_put_bytes(resp, p, n);
    return 0;
}

/* Reads in uneven pieces; stops early when the data says so. */
static int on_stream(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    uint8_t buf[97];
    uint64_t sum = 0;
    while (req->body_left > 0) {
        size_t n = req->body_left < sizeof buf ? (size_t)req->body_left : sizeof buf;
        int rc = cairn_srv_read(req, buf, n);
        if (rc != 0)
            return rc;
        for (size_t i = 0; i < n; i++)
            sum += buf[i];
        if (buf[0] == 0xee)
            return CAIRN_ECORRUPT; /* refuse mid-body */
    }
    int rc = cairn_srv_body_verify(req);
    if (rc != 0)
        return rc;
    cairn_buf_put_u64(resp, sum);
    return 0;
}

/* Returns without touching the body at all. */
static int on_lazy(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    return req->hdr.body_len & 1 ? CAIRN_ENOTFOUND : 0;
}

static const cairn_srv_route_t routes[] = {
    {1, 0, on_echo},
    {2, 0, on_decode},
    {3, 1, on_stream},
    {4, 1, on_lazy},
};

static void init_once(void)
{
    if (key != NULL)
        return;
    cairn_log_init("fuzz", "wire", CAIRN_LOG_ERROR + 1);
    if (cairn_wire_key_create(SECRET, strlen(SECRET), &key) != 0 ||
        cairn_srv_create(-1, key, routes, sizeof routes / sizeof routes[0], NULL, 1000, &srv) != 0)
        abort();
    mac = cairn_wire_mac_create(key);
}

/* ---- helpers ---- */

/* Copy the frame stream, optionally resealing every trailer. */
static void build_stream(const uint8_t *p, size_t n, int seal, cairn_buf_t *out)
{
    cairn_buf_reset(out);
    while (n >= CAIRN_WIRE_HDR_SIZE) {
        cairn_frame_hdr_t h;
        int rc = cairn_wire_hdr_decode(p, &h);
        size_t body = rc == 0 && h.body_len < n - CAIRN_WIRE_HDR_SIZE ? (size_t)h.body_len
                                                                       : n - CAIRN_WIRE_HDR_SIZE;
        size_t frame = CAIRN_WIRE_HDR_SIZE + body;
        cairn_buf_append(out, p, frame);
        p += frame;
        n -= frame;
        if (seal) {
            uint8_t t[CAIRN_WIRE_MAC_SIZE];
            cairn_wire_mac_update(mac, out->base + out->len - frame, frame);
            cairn_wire_mac_final(mac, t);
            cairn_buf_append(out, t, sizeof t);
            size_t skip = n < CAIRN_WIRE_MAC_SIZE ? n : CAIRN_WIRE_MAC_SIZE;
            p += skip;
            n -= skip;
        } else {
            size_t take = n < CAIRN_WIRE_MAC_SIZE ? n : CAIRN_WIRE_MAC_SIZE;
            cairn_buf_append(out, p, take);
            p += take;
            n -= take;
        }
    }
    cairn_buf_append(out, p, n);
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    struct iovec v = {(void *)p, n};
    if (cairn_io_write_all(fd, &v, 1, cairn_now_ms() + 1000) != 0)
        abort();
}

static void drain(int fd)
{
    uint8_t b[4096];
    while (recv(fd, b, sizeof b, MSG_DONTWAIT) > 0)
        ;
}

/* ---- properties ---- */

static void fuzz_header(const uint8_t *p, size_t n)
{
    if (n < CAIRN_WIRE_HDR_SIZE)
        return;
    cairn_frame_hdr_t h;
    int rc = cairn_wire_hdr_decode(p, &h);
    if (rc == 0) {
        uint8_t again[CAIRN_WIRE_HDR_SIZE];
        cairn_wire_hdr_encode(&h, again);
        if (memcmp(again, p, sizeof again) != 0)
            abort();
    } else if (rc != CAIRN_EPROTO && rc != CAIRN_ETOOBIG) {
        abort();
    }
}

static void fuzz_mac(const uint8_t *p, size_t n)
{
    if (n < CAIRN_WIRE_MAC_SIZE)
        return;
    size_t len = n - CAIRN_WIRE_MAC_SIZE, cut = len ? p[0] % (len + 1) : 0;
    uint8_t one[CAIRN_WIRE_MAC_SIZE], two[CAIRN_WIRE_MAC_SIZE];
    cairn_wire_mac_update(mac, p, len);
    cairn_wire_mac_final(mac, one);
    cairn_wire_mac_update(mac, p, cut);
    cairn_wire_mac_update(mac, p + cut, len - cut);
    cairn_wire_mac_final(mac, two);
    if (memcmp(one, two, sizeof one) != 0)
        abort();
    int rc = cairn_wire_mac_check(mac, p + len);
    if (rc != 0 && rc != CAIRN_EAUTH)
        abort();
}

/* The bytes arrive as a response to a request the client just sent. */
static void fuzz_client(const uint8_t *stream, size_t n, uint64_t req_id)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    write_all(sv[1], stream, n);
    shutdown(sv[1], SHUT_WR);
    cairn_conn_t c;
    cairn_conn_init(&c, "127.0.0.1:1", key, 1000);
    c.fd = sv[0];
    c.req_id = req_id;
    cairn_buf_t resp;
    cairn_buf_init(&resp);
    int32_t status = 0;
    for (int i = 0; i < 4 && c.fd >= 0; i++) {
        int rc = cairn_conn_recv(&c, &resp, &status);
        if (rc != 0) {
            if (c.fd != -1 || resp.len != 0)
                abort(); /* failure closes and leaves no body */
            break;
        }
        if (resp.len > CAIRN_WIRE_MAX_BODY || resp.len > n)
            abort();
    }
    cairn_buf_dispose(&resp);
    cairn_conn_dispose(&c);
    close(sv[1]);
}

/* The bytes arrive as requests on a server connection. */
static void fuzz_server(const uint8_t *stream, size_t n)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    int big = 4 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    write_all(sv[1], stream, n);
    shutdown(sv[1], SHUT_WR);
    cairn_srv_serve_conn(srv, sv[0]); /* closes sv[0] */
    drain(sv[1]);
    close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    if (size < 1 || size > MAX_INPUT)
        return 0;
    int mode = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;

    fuzz_header(p, n);
    fuzz_mac(p, n);

    cairn_buf_t stream;
    cairn_buf_init(&stream);
    build_stream(p, n, mode & 1, &stream);
    uint64_t id = 0x1234;
    if ((mode & 2) && n >= CAIRN_WIRE_HDR_SIZE)
        id = cairn_le64_get(p + 16);
    fuzz_client(stream.base, stream.len, id);
    fuzz_server(stream.base, stream.len);
    cairn_buf_dispose(&stream);
    return 0;
}
