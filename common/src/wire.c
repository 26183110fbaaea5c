/*
 * wire.c — frames, their MAC, deadline-bound socket I/O and the blocking
 * client connection (see wire.h).
 *
 * MAC: HMAC-SHA256 through OpenSSL 3's EVP_MAC. The key object holds one
 * EVP_MAC_CTX already keyed (the "template"); every MAC object is a dup of
 * it, and resetting re-runs EVP_MAC_init with a NULL key, which keeps the
 * key schedule and only restarts the digest (~0.3 us, no allocation).
 *
 * I/O: sockets stay in blocking mode, but every transfer is tried with
 * MSG_DONTWAIT first and only waits in poll() when the kernel has nothing
 * to give, so a transfer that can proceed costs one syscall and a stalled
 * one never waits past its deadline. MSG_NOSIGNAL keeps a dead peer from
 * raising SIGPIPE even in programs that did not ignore it.
 */
#include "cairn/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <xxh_x86dispatch.h>

#include "cairn/err.h"

/* ---- frame header ---- */

void cairn_wire_hdr_encode(const cairn_frame_hdr_t *h, uint8_t out[CAIRN_WIRE_HDR_SIZE])
{
    cairn_le32_put(out, CAIRN_WIRE_MAGIC);
    out[4] = (uint8_t)h->opcode;
    out[5] = (uint8_t)(h->opcode >> 8);
    out[6] = (uint8_t)h->flags;
    out[7] = (uint8_t)(h->flags >> 8);
    cairn_le32_put(out + 8, (uint32_t)h->status);
    cairn_le32_put(out + 12, h->seq);
    cairn_le64_put(out + 16, h->req_id);
    cairn_le64_put(out + 24, h->body_len);
    cairn_le64_put(out + 32, (uint64_t)h->time_ms);
}

int cairn_wire_hdr_decode(const uint8_t in[CAIRN_WIRE_HDR_SIZE], cairn_frame_hdr_t *h)
{
    if (cairn_le32_get(in) != CAIRN_WIRE_MAGIC)
        return CAIRN_EPROTO;
    h->opcode = (uint16_t)(in[4] | in[5] << 8);
    h->flags = (uint16_t)(in[6] | in[7] << 8);
    h->status = (int32_t)cairn_le32_get(in + 8);
    h->seq = cairn_le32_get(in + 12);
    h->req_id = cairn_le64_get(in + 16);
    h->body_len = cairn_le64_get(in + 24);
    h->time_ms = (int64_t)cairn_le64_get(in + 32);
    if ((h->flags & ~(CAIRN_WIRE_FLAG_RESPONSE | CAIRN_WIRE_FLAG_CLOSE)) != 0)
        return CAIRN_EPROTO;
    if (h->body_len > CAIRN_WIRE_MAX_STREAM)
        return CAIRN_ETOOBIG;
    return 0;
}

int64_t cairn_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cairn_wire_time_check(int64_t time_ms, int64_t now_ms)
{
    int64_t d; /* a hostile INT64_MIN must not overflow */
    if (__builtin_sub_overflow(time_ms, now_ms, &d))
        return CAIRN_EAUTH;
    return d >= -CAIRN_WIRE_SKEW_MS && d <= CAIRN_WIRE_SKEW_MS ? 0 : CAIRN_EAUTH;
}

void cairn_wire_session_new(uint8_t session[CAIRN_WIRE_SESSION_SIZE])
{
    size_t got = 0;
    while (got < CAIRN_WIRE_SESSION_SIZE) {
        ssize_t r = getrandom(session + got, CAIRN_WIRE_SESSION_SIZE - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        CAIRN_ASSERT(r > 0); /* a predictable session would reopen replay */
        got += (size_t)r;
    }
}

/* ---- key and MAC ---- */

/*
 * The trailer is HMAC-SHA256(key, session || link || header || D), where D
 * is the 128-bit XXH3 of the body keyed with a secret derived from the
 * cluster key (session and link: see wire.h). The header (opcode, ids,
 * lengths, seq, time) is authenticated with HMAC; the body is bound to it
 * by the keyed XXH3, which runs at memory speed (SHA-256 over every fragment
 * byte cost more CPU than erasure coding and MD5 together). XXH3 is not a
 * proven MAC: against an on-path attacker who rewrites bodies, the internal
 * network must be trusted; reaching a port without the key gets nothing.
 */
#define XXH_SECRET_SIZE 192

struct cairn_wire_key_s {
    EVP_MAC *mac;
    EVP_MAC_CTX *tmpl; /* keyed; only ever duplicated */
    uint8_t xxh_secret[XXH_SECRET_SIZE];
};

struct cairn_wire_mac_s {
    EVP_MAC_CTX *ctx;
    const cairn_wire_key_t *key;
    size_t hdr_left; /* header bytes still to feed to the HMAC */
    int fresh;       /* nothing fed since the last reset */
    XXH3_state_t *body;
};

static const char key_label[] = "cairn wire key v1";

static int hmac_init(EVP_MAC_CTX *ctx, const void *key, size_t keylen)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_init(ctx, key, keylen, params) == 1 ? 0 : CAIRN_EINVAL;
}

int cairn_wire_key_create(const char *secret, size_t len, cairn_wire_key_t **out)
{
    if (secret == NULL || len == 0)
        return CAIRN_EINVAL;
    cairn_wire_key_t *k = cairn_calloc(1, sizeof(*k));
    k->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    CAIRN_ASSERT(k->mac != NULL);
    k->tmpl = EVP_MAC_CTX_new(k->mac);
    CAIRN_ASSERT(k->tmpl != NULL);
    /* The frame key is HMAC(secret, label), so the raw cluster secret can key
     * other things (admin tokens, ...) without ever meeting frame MACs. */
    uint8_t derived[32];
    size_t dlen = 0;
    int rc = hmac_init(k->tmpl, secret, len);
    if (rc == 0 && (EVP_MAC_update(k->tmpl, (const uint8_t *)key_label, sizeof key_label - 1) != 1 ||
                    EVP_MAC_final(k->tmpl, derived, &dlen, sizeof derived) != 1 || dlen != sizeof derived))
        rc = CAIRN_EINVAL;
    if (rc == 0)
        rc = hmac_init(k->tmpl, derived, sizeof derived);
    /* The body hash's secret: HMAC(frame key, "xxh3 secret" || i), i = 0.. */
    for (unsigned i = 0; rc == 0 && i * 32 < XXH_SECRET_SIZE; i++) {
        uint8_t block[32], label[16];
        size_t blen = 0;
        int ll = snprintf((char *)label, sizeof label, "xxh3 secret %u", i);
        EVP_MAC_CTX *c = EVP_MAC_CTX_dup(k->tmpl);
        if (c == NULL || EVP_MAC_update(c, label, (size_t)ll) != 1 || EVP_MAC_final(c, block, &blen, 32) != 1)
            rc = CAIRN_EINVAL;
        else
            memcpy(k->xxh_secret + i * 32, block, 32);
        EVP_MAC_CTX_free(c);
    }
    OPENSSL_cleanse(derived, sizeof derived);
    if (rc != 0) {
        cairn_wire_key_destroy(k);
        return rc;
    }
    *out = k;
    return 0;
}

void cairn_wire_key_destroy(cairn_wire_key_t *k)
{
    if (k == NULL)
        return;
    EVP_MAC_CTX_free(k->tmpl);
    EVP_MAC_free(k->mac);
    free(k);
}

cairn_wire_mac_t *cairn_wire_mac_create(const cairn_wire_key_t *k)
{
    cairn_wire_mac_t *m = cairn_malloc(sizeof(*m));
    m->ctx = EVP_MAC_CTX_dup(k->tmpl);
    CAIRN_ASSERT(m->ctx != NULL);
    m->key = k;
    m->body = XXH3_createState();
    CAIRN_ASSERT(m->body != NULL);
    m->hdr_left = CAIRN_WIRE_HDR_SIZE;
    m->fresh = 1;
    CAIRN_ASSERT(XXH3_128bits_reset_withSecret(m->body, k->xxh_secret, XXH_SECRET_SIZE) == XXH_OK);
    return m;
}

void cairn_wire_mac_destroy(cairn_wire_mac_t *m)
{
    if (m == NULL)
        return;
    EVP_MAC_CTX_free(m->ctx);
    XXH3_freeState(m->body);
    free(m);
}

void cairn_wire_mac_reset(cairn_wire_mac_t *m)
{
    CAIRN_ASSERT(EVP_MAC_init(m->ctx, NULL, 0, NULL) == 1);
    CAIRN_ASSERT(XXH3_128bits_reset_withSecret(m->body, m->key->xxh_secret, XXH_SECRET_SIZE) == XXH_OK);
    m->hdr_left = CAIRN_WIRE_HDR_SIZE;
    m->fresh = 1;
}

void cairn_wire_mac_begin(cairn_wire_mac_t *m, const uint8_t session[CAIRN_WIRE_SESSION_SIZE],
                          const uint8_t link[CAIRN_WIRE_HDR_SIZE], const uint8_t hdr[CAIRN_WIRE_HDR_SIZE])
{
    static const uint8_t zero[CAIRN_WIRE_HDR_SIZE];
    if (!m->fresh)
        cairn_wire_mac_reset(m);
    m->fresh = 0;
    /* 16 + 40 + 40 bytes: with the 16-byte body digest, two SHA-256 blocks */
    CAIRN_ASSERT(EVP_MAC_update(m->ctx, session ? session : zero, CAIRN_WIRE_SESSION_SIZE) == 1);
    CAIRN_ASSERT(EVP_MAC_update(m->ctx, link ? link : zero, CAIRN_WIRE_HDR_SIZE) == 1);
    CAIRN_ASSERT(EVP_MAC_update(m->ctx, hdr, CAIRN_WIRE_HDR_SIZE) == 1);
    m->hdr_left = 0;
}

void cairn_wire_mac_update(cairn_wire_mac_t *m, const void *p, size_t n)
{
    const uint8_t *b = p;
    m->fresh = 0;
    if (m->hdr_left > 0 && n > 0) {
        size_t h = n < m->hdr_left ? n : m->hdr_left;
        CAIRN_ASSERT(EVP_MAC_update(m->ctx, b, h) == 1);
        m->hdr_left -= h;
        b += h;
        n -= h;
    }
    if (n > 0)
        XXH3_128bits_update(m->body, b, n);
}

void cairn_wire_mac_final(cairn_wire_mac_t *m, uint8_t out[CAIRN_WIRE_MAC_SIZE])
{
    size_t n = 0;
    XXH128_canonical_t digest;
    XXH128_canonicalFromHash(&digest, XXH3_128bits_digest(m->body));
    CAIRN_ASSERT(EVP_MAC_update(m->ctx, digest.digest, sizeof digest.digest) == 1);
    CAIRN_ASSERT(EVP_MAC_final(m->ctx, out, &n, CAIRN_WIRE_MAC_SIZE) == 1 && n == CAIRN_WIRE_MAC_SIZE);
    cairn_wire_mac_reset(m);
}

int cairn_wire_mac_check(cairn_wire_mac_t *m, const uint8_t trailer[CAIRN_WIRE_MAC_SIZE])
{
    uint8_t mine[CAIRN_WIRE_MAC_SIZE];
    cairn_wire_mac_final(m, mine);
    return CRYPTO_memcmp(mine, trailer, CAIRN_WIRE_MAC_SIZE) == 0 ? 0 : CAIRN_EAUTH;
}

/* ---- hello ---- */

void cairn_wire_hello_encode(cairn_wire_mac_t *m, const uint8_t session[CAIRN_WIRE_SESSION_SIZE],
                             uint8_t out[CAIRN_WIRE_HELLO_SIZE])
{
    cairn_frame_hdr_t h = {.opcode = CAIRN_OP_HELLO, .flags = CAIRN_WIRE_FLAG_RESPONSE,
                           .body_len = CAIRN_WIRE_SESSION_SIZE, .time_ms = cairn_wall_ms()};
    cairn_wire_hdr_encode(&h, out);
    memcpy(out + CAIRN_WIRE_HDR_SIZE, session, CAIRN_WIRE_SESSION_SIZE);
    cairn_wire_mac_begin(m, NULL, NULL, out);
    cairn_wire_mac_update(m, session, CAIRN_WIRE_SESSION_SIZE);
    cairn_wire_mac_final(m, out + CAIRN_WIRE_HDR_SIZE + CAIRN_WIRE_SESSION_SIZE);
}

int cairn_wire_hello_decode(cairn_wire_mac_t *m, const uint8_t in[CAIRN_WIRE_HELLO_SIZE],
                            uint8_t session[CAIRN_WIRE_SESSION_SIZE])
{
    cairn_frame_hdr_t h;
    if (cairn_wire_hdr_decode(in, &h) != 0 || h.opcode != CAIRN_OP_HELLO || h.flags != CAIRN_WIRE_FLAG_RESPONSE ||
        h.status != 0 || h.seq != 0 || h.body_len != CAIRN_WIRE_SESSION_SIZE)
        return CAIRN_EPROTO;
    const uint8_t *body = in + CAIRN_WIRE_HDR_SIZE;
    cairn_wire_mac_begin(m, NULL, NULL, in);
    cairn_wire_mac_update(m, body, CAIRN_WIRE_SESSION_SIZE);
    if (cairn_wire_mac_check(m, body + CAIRN_WIRE_SESSION_SIZE) != 0 ||
        cairn_wire_time_check(h.time_ms, cairn_wall_ms()) != 0)
        return CAIRN_EAUTH;
    memcpy(session, body, CAIRN_WIRE_SESSION_SIZE);
    return 0;
}

/* ---- deadline I/O ---- */

int64_t cairn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events or the deadline passes (deadline < 0:
 * never). 0 when ready (or in error: the next syscall reports which). */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int timeout = -1;
        if (deadline_ms >= 0) {
            int64_t left = deadline_ms - cairn_now_ms();
            if (left <= 0)
                return CAIRN_ETIMEOUT;
            timeout = left > 1000000000 ? 1000000000 : (int)left;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int r = poll(&pfd, 1, timeout);
        if (r > 0)
            return (pfd.revents & POLLNVAL) ? -EBADF : 0;
        if (r == 0)
            return CAIRN_ETIMEOUT;
        if (errno != EINTR)
            return -errno;
    }
}

static int64_t next_deadline(int64_t deadline_ms, int idle_ms)
{
    if (idle_ms == 0)
        return deadline_ms;
    return idle_ms < 0 ? -1 : cairn_now_ms() + idle_ms;
}

/* Write everything; the deadline is absolute (idle_ms == 0) or restarts on
 * every transfer (idle_ms > 0; < 0 waits forever). */
static int write_core(int fd, const struct iovec *iov, int iovcnt, int64_t deadline_ms, int idle_ms)
{
    enum { CHUNK = 64 };
    struct iovec v[CHUNK];
    int notsock = 0;
    if (idle_ms != 0)
        deadline_ms = next_deadline(0, idle_ms);
    for (int base = 0; base < iovcnt; base += CHUNK) {
        int cnt = iovcnt - base < CHUNK ? iovcnt - base : CHUNK;
        memcpy(v, iov + base, sizeof(v[0]) * (size_t)cnt);
        struct iovec *cur = v;
        while (cnt > 0) {
            if (cur->iov_len == 0) {
                cur++, cnt--;
                continue;
            }
            ssize_t w;
            if (!notsock) {
                struct msghdr mh = {.msg_iov = cur, .msg_iovlen = (size_t)cnt};
                w = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w < 0 && errno == ENOTSOCK) {
                    notsock = 1;
                    continue;
                }
            } else {
                int rc = wait_fd(fd, POLLOUT, deadline_ms);
                if (rc != 0)
                    return rc;
                w = writev(fd, cur, cnt);
            }
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    int rc = wait_fd(fd, POLLOUT, deadline_ms);
                    if (rc != 0)
                        return rc;
                    continue;
                }
                return -errno;
            }
            size_t done = (size_t)w;
            while (cnt > 0 && done >= cur->iov_len) {
                done -= cur->iov_len;
                cur++, cnt--;
            }
            if (cnt > 0) {
                cur->iov_base = (uint8_t *)cur->iov_base + done;
                cur->iov_len -= done;
            }
            deadline_ms = next_deadline(deadline_ms, idle_ms);
        }
    }
    return 0;
}

static int read_core(int fd, void *p, size_t n, int64_t deadline_ms, int idle_ms)
{
    uint8_t *q = p;
    int notsock = 0;
    if (idle_ms != 0)
        deadline_ms = next_deadline(0, idle_ms);
    while (n > 0) {
        ssize_t r;
        if (!notsock) {
            r = recv(fd, q, n, MSG_DONTWAIT);
            if (r < 0 && errno == ENOTSOCK) {
                notsock = 1;
                continue;
            }
        } else {
            int rc = wait_fd(fd, POLLIN, deadline_ms);
            if (rc != 0)
                return rc;
            r = read(fd, q, n);
        }
        if (r == 0)
            return CAIRN_EPROTO;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                int rc = wait_fd(fd, POLLIN, deadline_ms);
                if (rc != 0)
                    return rc;
                continue;
            }
            return -errno;
        }
        q += r;
        n -= (size_t)r;
        deadline_ms = next_deadline(deadline_ms, idle_ms);
    }
    return 0;
}

int cairn_io_write_all(int fd, const struct iovec *iov, int iovcnt, int64_t deadline_ms)
{
    return write_core(fd, iov, iovcnt, deadline_ms, 0);
}

int cairn_io_read_all(int fd, void *p, size_t n, int64_t deadline_ms)
{
    return read_core(fd, p, n, deadline_ms, 0);
}

int cairn_io_write_idle(int fd, const struct iovec *iov, int iovcnt, int idle_ms)
{
    return write_core(fd, iov, iovcnt, -1, idle_ms == 0 ? -1 : idle_ms);
}

int cairn_io_read_idle(int fd, void *p, size_t n, int idle_ms)
{
    return read_core(fd, p, n, -1, idle_ms == 0 ? -1 : idle_ms);
}

/* ---- request ids ---- */

static __thread uint64_t rng_state;

uint64_t cairn_wire_new_req_id(void)
{
    uint64_t x = rng_state;
    if (x == 0) {
        if (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x || x == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            x = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ (uint64_t)(uintptr_t)&ts;
            x |= 1;
        }
    }
    /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    uint64_t id = x * 0x2545f4914f6cdd1dull;
    return id ? id : 1;
}

/* ---- addresses and listening ---- */

int cairn_addr_parse(const char *hostport, struct sockaddr_storage *ss, unsigned *sslen)
{
    char host[256];
    const char *colon, *h = hostport;
    size_t hlen;
    if (hostport == NULL)
        return CAIRN_EINVAL;
    if (hostport[0] == '[') {
        const char *rb = strchr(hostport, ']');
        if (rb == NULL || rb[1] != ':')
            return CAIRN_EINVAL;
        h = hostport + 1;
        hlen = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(hostport, ':');
        if (colon == NULL)
            return CAIRN_EINVAL;
        hlen = (size_t)(colon - hostport);
    }
    if (hlen >= sizeof host)
        return CAIRN_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || port > 65535)
        return CAIRN_EINVAL;

    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (hlen == 0 || strcmp(host, "*") == 0) {
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        sin->sin_port = htons((uint16_t)port);
        *sslen = sizeof(*sin);
        return 0;
    }
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *sslen = sizeof(*sin);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *sslen = sizeof(*sin6);
        return 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
        return CAIRN_EINVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = (unsigned)res->ai_addrlen;
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET)
        sin->sin_port = htons((uint16_t)port);
    else if (ss->ss_family == AF_INET6)
        sin6->sin6_port = htons((uint16_t)port);
    else
        return CAIRN_EINVAL;
    return 0;
}

int cairn_listen(const char *hostport, int reuseport)
{
    struct sockaddr_storage ss;
    unsigned len;
    int rc = cairn_addr_parse(hostport, &ss, &len);
    if (rc != 0)
        return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1024) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int cairn_local_addr(int fd, char *out, size_t outsz)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN];
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -errno;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        snprintf(out, outsz, "%s:%u", host, ntohs(sin->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        snprintf(out, outsz, "[%s]:%u", host, ntohs(sin6->sin6_port));
    } else {
        return CAIRN_EINVAL;
    }
    return 0;
}

/* ---- client connection ---- */

static int64_t call_deadline(const cairn_conn_t *c)
{
    return c->timeout_ms > 0 ? cairn_now_ms() + c->timeout_ms : -1;
}

static int conn_connect(cairn_conn_t *c)
{
    struct sockaddr_storage ss;
    unsigned len;
    int rc = cairn_addr_parse(c->addr, &ss, &len);
    if (rc != 0)
        return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto fail;
        }
        rc = wait_fd(fd, POLLOUT, call_deadline(c));
        if (rc != 0)
            goto fail;
        int err = 0;
        socklen_t elen = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
            err = errno;
        if (err != 0) {
            rc = -err;
            goto fail;
        }
    }
    int flags = fcntl(fd, F_GETFL);
    int one = 1;
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        rc = -errno;
        goto fail;
    }
    uint8_t hello[CAIRN_WIRE_HELLO_SIZE];
    rc = cairn_io_read_all(fd, hello, sizeof hello, call_deadline(c));
    if (rc == 0)
        rc = cairn_wire_hello_decode(c->mac, hello, c->session);
    if (rc != 0)
        goto fail;
    c->seq = 0;
    c->fd = fd;
    return 0;
fail:
    close(fd);
    return rc;
}

/* Before a new request: drop a connection the peer closed while it sat idle
 * (any readable byte between requests is EOF or garbage) or whose sequence
 * numbers are used up, then connect. */
static int conn_ready(cairn_conn_t *c)
{
    if (c->fd >= 0) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN | POLLRDHUP};
        if (poll(&pfd, 1, 0) != 0 || c->seq == UINT32_MAX)
            cairn_conn_close(c);
    }
    c->stream_left = 0;
    return c->fd >= 0 ? 0 : conn_connect(c);
}

void cairn_conn_init(cairn_conn_t *c, const char *addr, const cairn_wire_key_t *key, int timeout_ms)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    snprintf(c->addr, sizeof c->addr, "%s", addr ? addr : "");
    c->key = key;
    c->mac = cairn_wire_mac_create(key);
    c->timeout_ms = timeout_ms;
}

void cairn_conn_dispose(cairn_conn_t *c)
{
    cairn_conn_close(c);
    cairn_wire_mac_destroy(c->mac);
    c->mac = NULL;
}

void cairn_conn_close(cairn_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->stream_left = 0;
}

static size_t iov_total(const struct iovec *iov, int iovcnt)
{
    size_t n = 0;
    for (int i = 0; i < iovcnt; i++)
        n += iov[i].iov_len;
    return n;
}

/* The next request's header, into c->req_hdr, and its MAC started. */
static void start_frame(cairn_conn_t *c, uint16_t op, uint64_t req_id, uint64_t body_len)
{
    c->req_id = req_id ? req_id : cairn_wire_new_req_id();
    cairn_frame_hdr_t h = {
        .opcode = op, .seq = ++c->seq, .req_id = c->req_id, .body_len = body_len, .time_ms = cairn_wall_ms()};
    cairn_wire_hdr_encode(&h, c->req_hdr);
    cairn_wire_mac_begin(c->mac, c->session, NULL, c->req_hdr);
}

int cairn_conn_send(cairn_conn_t *c, uint16_t op, uint64_t req_id, const struct iovec *iov, int iovcnt)
{
    size_t total = iov_total(iov, iovcnt);
    if (total > CAIRN_WIRE_MAX_BODY)
        return CAIRN_ETOOBIG; /* the peer would refuse to buffer it */
    int rc = conn_ready(c);
    if (rc != 0)
        return rc;
    uint8_t trailer[CAIRN_WIRE_MAC_SIZE];
    start_frame(c, op, req_id, total);
    struct iovec small[16], *v = iovcnt + 2 <= 16 ? small : cairn_malloc(sizeof(*v) * (size_t)(iovcnt + 2));
    v[0] = (struct iovec){c->req_hdr, sizeof c->req_hdr};
    for (int i = 0; i < iovcnt; i++) {
        cairn_wire_mac_update(c->mac, iov[i].iov_base, iov[i].iov_len);
        v[i + 1] = iov[i];
    }
    cairn_wire_mac_final(c->mac, trailer);
    v[iovcnt + 1] = (struct iovec){trailer, sizeof trailer};
    rc = cairn_io_write_idle(c->fd, v, iovcnt + 2, c->timeout_ms);
    if (v != small)
        free(v);
    if (rc != 0)
        cairn_conn_close(c);
    return rc;
}

static int recv_into(cairn_conn_t *c, cairn_buf_t *resp, int32_t *status, int64_t deadline_ms)
{
    uint8_t hb[CAIRN_WIRE_HDR_SIZE], trailer[CAIRN_WIRE_MAC_SIZE];
    cairn_frame_hdr_t h;
    if (c->fd < 0)
        return -ENOTCONN;
    cairn_buf_reset(resp);
    int rc = cairn_io_read_all(c->fd, hb, sizeof hb, deadline_ms);
    if (rc == 0)
        rc = cairn_wire_hdr_decode(hb, &h);
    if (rc == 0 && (!(h.flags & CAIRN_WIRE_FLAG_RESPONSE) || h.req_id != c->req_id || h.seq != c->seq))
        rc = CAIRN_EPROTO;
    if (rc == 0 && h.body_len > CAIRN_WIRE_MAX_BODY)
        rc = CAIRN_ETOOBIG;
    if (rc == 0)
        rc = cairn_wire_time_check(h.time_ms, cairn_wall_ms());
    if (rc != 0)
        goto fail;
    cairn_wire_mac_begin(c->mac, c->session, c->req_hdr, hb);
    uint8_t *body = cairn_buf_reserve(resp, (size_t)h.body_len);
    /* The body may be tens of MiB: time it out on stalls, not on its size. */
    rc = cairn_io_read_idle(c->fd, body, (size_t)h.body_len, c->timeout_ms);
    if (rc == 0)
        rc = cairn_io_read_idle(c->fd, trailer, sizeof trailer, c->timeout_ms);
    if (rc != 0)
        goto fail;
    cairn_wire_mac_update(c->mac, body, (size_t)h.body_len);
    rc = cairn_wire_mac_check(c->mac, trailer);
    if (rc != 0)
        goto fail;
    resp->len = (size_t)h.body_len;
    if (status)
        *status = h.status;
    if (h.flags & CAIRN_WIRE_FLAG_CLOSE)
        cairn_conn_close(c); /* the server hangs up after this answer */
    return 0;
fail:
    cairn_buf_reset(resp);
    cairn_conn_close(c);
    return rc;
}

int cairn_conn_recv(cairn_conn_t *c, cairn_buf_t *resp, int32_t *status)
{
    cairn_buf_t scratch;
    cairn_buf_init(&scratch);
    int rc = recv_into(c, resp ? resp : &scratch, status, call_deadline(c));
    cairn_buf_dispose(&scratch);
    return rc;
}

int cairn_conn_call(cairn_conn_t *c, uint16_t op, uint64_t req_id, const struct iovec *iov, int iovcnt,
                    cairn_buf_t *resp, int32_t *status)
{
    int rc = cairn_conn_send(c, op, req_id, iov, iovcnt);
    return rc != 0 ? rc : cairn_conn_recv(c, resp, status);
}

int cairn_conn_stream_begin(cairn_conn_t *c, uint16_t op, uint64_t req_id, uint64_t body_len)
{
    if (body_len > CAIRN_WIRE_MAX_STREAM)
        return CAIRN_ETOOBIG;
    int rc = conn_ready(c);
    if (rc != 0)
        return rc;
    start_frame(c, op, req_id, body_len);
    struct iovec v = {c->req_hdr, sizeof c->req_hdr};
    rc = cairn_io_write_all(c->fd, &v, 1, call_deadline(c));
    if (rc != 0) {
        cairn_conn_close(c);
        return rc;
    }
    c->stream_left = body_len;
    return 0;
}

/* The server answered before the body was complete: it refused the stream
 * (bad fragment, no space, ...) and is closing. Return its status so the
 * caller learns why, not just "connection reset". */
static int early_answer(cairn_conn_t *c, int fallback, int wait_ms)
{
    int32_t status = 0;
    cairn_buf_t scratch;
    cairn_buf_init(&scratch);
    int rc = c->fd >= 0 ? recv_into(c, &scratch, &status, cairn_now_ms() + wait_ms) : -ENOTCONN;
    cairn_buf_dispose(&scratch);
    cairn_conn_close(c);
    if (rc == 0)
        return status < 0 ? status : CAIRN_EPROTO;
    return fallback;
}

int cairn_conn_stream_write(cairn_conn_t *c, const struct iovec *iov, int iovcnt)
{
    if (c->fd < 0)
        return -ENOTCONN;
    size_t total = iov_total(iov, iovcnt);
    if (total > c->stream_left) {
        cairn_conn_close(c);
        return CAIRN_EINVAL;
    }
    /* One cheap poll: a server that already answered has refused the body. */
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) > 0)
        return early_answer(c, CAIRN_EPROTO, c->timeout_ms > 0 ? c->timeout_ms : 1000);
    for (int i = 0; i < iovcnt; i++)
        cairn_wire_mac_update(c->mac, iov[i].iov_base, iov[i].iov_len);
    int rc = cairn_io_write_idle(c->fd, iov, iovcnt, c->timeout_ms);
    if (rc != 0)
        return early_answer(c, rc, 100);
    c->stream_left -= total;
    return 0;
}

int cairn_conn_stream_finish(cairn_conn_t *c)
{
    if (c->fd < 0)
        return -ENOTCONN;
    if (c->stream_left != 0) {
        cairn_conn_close(c);
        return CAIRN_EINVAL;
    }
    uint8_t trailer[CAIRN_WIRE_MAC_SIZE];
    cairn_wire_mac_final(c->mac, trailer);
    struct iovec v = {trailer, sizeof trailer};
    int rc = cairn_io_write_all(c->fd, &v, 1, call_deadline(c));
    return rc != 0 ? early_answer(c, rc, 100) : 0;
}

int cairn_conn_stream_end(cairn_conn_t *c, cairn_buf_t *resp, int32_t *status)
{
    int rc = cairn_conn_stream_finish(c);
    return rc != 0 ? rc : cairn_conn_recv(c, resp, status);
}
