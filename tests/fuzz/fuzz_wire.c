/*
 * fuzz_wire.c — libFuzzer driver for the internal frame protocol: header
 * decoding, the hello, MAC checking, the replay checks (seq, clock), the
 * client's response parsing and the server's request loop.
 *
 * Input: byte 0 holds mode bits, the rest is a byte stream of frames.
 *   bit 0  seal: rewrite each frame's trailer with the correct MAC for the
 *          session (the server's session is fixed with
 *          cairn_srv_fix_session), so the fuzzer reaches what happens after
 *          authentication (handlers, streaming, statuses) instead of
 *          stopping at CAIRN_EAUTH;
 *   bit 1  the client expects the request id and seq found in the first
 *          header (else fixed ones, which mostly tests the mismatch path);
 *   bit 2  with bit 0, also stamp each frame with the next seq and the
 *          current clock (else the input's seq and clock stay, and the
 *          freshness checks refuse most frames).
 * Frames are cut from the stream as the receiver would: a 40-byte header,
 * then body_len bytes (clamped to what is left), then a 32-byte trailer.
 * For the server they are sealed as requests; for the client, as answers
 * to the client's current request (its header is the link).
 *
 * Checked properties, beyond "no crash, no sanitizer report":
 * - a header that decodes re-encodes to the same 40 bytes (the encoding is
 *   canonical);
 * - a MAC computed in pieces equals the MAC computed in one go;
 * - a hello decodes only if it re-encodes to the same session, and it
 *   never yields a session when refused;
 * - the client accepts a response only if it is a well-formed, correctly
 *   MACed response to its request, and never returns a body above
 *   CAIRN_WIRE_MAX_BODY.
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
static const uint8_t session[CAIRN_WIRE_SESSION_SIZE] = "fuzz session 16b";

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
    cairn_srv_fix_session(srv, session);
    mac = cairn_wire_mac_create(key);
}

/* ---- helpers ---- */

/* Copy the frame stream, optionally resealing every trailer: as requests
 * (link NULL) numbered from seq 1, or as answers to the request header link
 * (each stamped with link's seq). */
static void build_stream(const uint8_t *p, size_t n, int mode, const uint8_t *link, cairn_buf_t *out)
{
    uint32_t seq = 1;
    if (link != NULL)
        seq = cairn_le32_get(link + 12);
    cairn_buf_reset(out);
    while (n >= CAIRN_WIRE_HDR_SIZE) {
        cairn_frame_hdr_t h;
        int rc = cairn_wire_hdr_decode(p, &h);
        size_t body = rc == 0 && h.body_len < n - CAIRN_WIRE_HDR_SIZE ? (size_t)h.body_len
                                                                       : n - CAIRN_WIRE_HDR_SIZE;
        size_t frame = CAIRN_WIRE_HDR_SIZE + body;
        size_t start = out->len;
        cairn_buf_append(out, p, frame);
        p += frame;
        n -= frame;
        if (mode & 1) {
            uint8_t *hdr = out->base + start;
            if (mode & 4) {
                cairn_le32_put(hdr + 12, link ? seq : seq++);
                cairn_le64_put(hdr + 32, (uint64_t)cairn_wall_ms());
            }
            uint8_t t[CAIRN_WIRE_MAC_SIZE];
            cairn_wire_mac_begin(mac, session, link, hdr);
            cairn_wire_mac_update(mac, hdr + CAIRN_WIRE_HDR_SIZE, body);
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

/* The first CAIRN_WIRE_HELLO_SIZE bytes as a hello (sealed in seal mode). */
static void fuzz_hello(const uint8_t *p, size_t n, int mode)
{
    if (n < CAIRN_WIRE_HELLO_SIZE)
        return;
    uint8_t h[CAIRN_WIRE_HELLO_SIZE], got[CAIRN_WIRE_SESSION_SIZE], again[CAIRN_WIRE_HELLO_SIZE];
    memcpy(h, p, sizeof h);
    if (mode & 1) {
        if (mode & 4)
            cairn_le64_put(h + 32, (uint64_t)cairn_wall_ms());
        cairn_wire_mac_begin(mac, NULL, NULL, h);
        cairn_wire_mac_update(mac, h + CAIRN_WIRE_HDR_SIZE, CAIRN_WIRE_SESSION_SIZE);
        cairn_wire_mac_final(mac, h + CAIRN_WIRE_HDR_SIZE + CAIRN_WIRE_SESSION_SIZE);
    }
    memset(got, 0xa5, sizeof got);
    int rc = cairn_wire_hello_decode(mac, h, got);
    if (rc == 0) {
        if (memcmp(got, h + CAIRN_WIRE_HDR_SIZE, sizeof got) != 0)
            abort();
        cairn_wire_hello_encode(mac, got, again); /* a fresh hello of the same session decodes */
        if (cairn_wire_hello_decode(mac, again, got) != 0 || memcmp(got, h + CAIRN_WIRE_HDR_SIZE, sizeof got) != 0)
            abort();
    } else {
        if (rc != CAIRN_EPROTO && rc != CAIRN_EAUTH)
            abort();
        for (size_t i = 0; i < sizeof got; i++)
            if (got[i] != 0xa5)
                abort(); /* a refused hello yields nothing */
    }
    cairn_frame_hdr_t fh;
    if (cairn_wire_hdr_decode(h, &fh) == 0)
        (void)cairn_wire_time_check(fh.time_ms, cairn_wall_ms());
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
    if (len < CAIRN_WIRE_HDR_SIZE)
        return;
    /* frame MACs: body in pieces, too */
    size_t blen = len - CAIRN_WIRE_HDR_SIZE, bcut = blen ? p[1 % len] % (blen + 1) : 0;
    cairn_wire_mac_begin(mac, session, NULL, p);
    cairn_wire_mac_update(mac, p + CAIRN_WIRE_HDR_SIZE, blen);
    cairn_wire_mac_final(mac, one);
    cairn_wire_mac_begin(mac, session, NULL, p);
    cairn_wire_mac_update(mac, p + CAIRN_WIRE_HDR_SIZE, bcut);
    cairn_wire_mac_update(mac, p + CAIRN_WIRE_HDR_SIZE + bcut, blen - bcut);
    cairn_wire_mac_final(mac, two);
    if (memcmp(one, two, sizeof one) != 0)
        abort();
}

/* The bytes arrive as answers to the request the client just sent (whose
 * header is req_hdr). */
static void fuzz_client(const uint8_t *stream, size_t n, const uint8_t req_hdr[CAIRN_WIRE_HDR_SIZE])
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    write_all(sv[1], stream, n);
    shutdown(sv[1], SHUT_WR);
    cairn_conn_t c;
    cairn_conn_init(&c, "127.0.0.1:1", key, 1000);
    c.fd = sv[0];
    c.req_id = cairn_le64_get(req_hdr + 16);
    c.seq = cairn_le32_get(req_hdr + 12);
    memcpy(c.session, session, sizeof c.session);
    memcpy(c.req_hdr, req_hdr, sizeof c.req_hdr);
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
    fuzz_hello(p, n, mode);
    fuzz_mac(p, n);

    /* the client's request: fixed, or taken from the first header */
    cairn_frame_hdr_t rq = {.opcode = 1, .seq = 7, .req_id = 0x1234, .time_ms = cairn_wall_ms()};
    if ((mode & 2) && n >= CAIRN_WIRE_HDR_SIZE) {
        rq.opcode = (uint16_t)(p[4] | p[5] << 8);
        rq.seq = cairn_le32_get(p + 12);
        rq.req_id = cairn_le64_get(p + 16);
    }
    uint8_t req_hdr[CAIRN_WIRE_HDR_SIZE];
    cairn_wire_hdr_encode(&rq, req_hdr);

    cairn_buf_t stream;
    cairn_buf_init(&stream);
    build_stream(p, n, mode, req_hdr, &stream);
    fuzz_client(stream.base, stream.len, req_hdr);
    build_stream(p, n, mode, NULL, &stream);
    fuzz_server(stream.base, stream.len);
    cairn_buf_dispose(&stream);
    return 0;
}
