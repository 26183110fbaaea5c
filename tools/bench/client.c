/*
 * client.c — one blocking HTTP/1.1 keep-alive connection that signs its
 * requests with SigV4.
 *
 * Every request is signed over host, x-amz-content-sha256 and x-amz-date,
 * with the payload line UNSIGNED-PAYLOAD: per request that is one SHA-256
 * of a ~250-byte canonical request and one HMAC (a few microseconds); the
 * signing key (four HMACs) is derived once per UTC day. Bodies are sent
 * with sendmsg() straight from the object's slices (no copy in user space)
 * and received into one 256 KiB buffer that the sink reads in place.
 *
 * The wire path is the canonical URI: the key percent-encoded once with
 * the AWS rules and '/' kept, which is what S3 expects (no double encoding).
 * With target->raw the same request goes out without the x-amz headers and
 * the signature, for a plain web server.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "bench.h"
#include "cairn/err.h"
#include "cairn/sigv4.h"
#include "cairn/uri.h"

#define RBUF_SIZE ((size_t)256 << 10)
#define HEAD_MAX ((size_t)64 << 10)      /* longest response head accepted */
#define KEEP_BODY_MAX ((size_t)1 << 20)  /* error and listing bodies kept up to this */
#define REQ_HEAD_MAX 8192

struct bench_conn_s {
    const bench_target_t *t;
    int fd;
    uint64_t connects;
    uint64_t used;          /* requests on the current socket */
    uint8_t *rbuf;
    size_t rpos, rlen;      /* unread bytes are rbuf[rpos..rlen) */
    char *body;             /* kept body */
    size_t body_len, body_cap;
    /* signing */
    char key_date[9];
    uint8_t signing_key[32];
    cairn_sigv4_auth_t *scope; /* only date/region/service are used */
    char *head;             /* request head */
    char *enc;              /* encoded path scratch */
    size_t enc_cap;
};

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int bench_target_parse(bench_target_t *t, const char *endpoint)
{
    const char *p = endpoint;
    if (strncmp(p, "http://", 7) == 0) {
        p += 7;
    } else if (strncmp(p, "https://", 8) == 0) {
        fprintf(stderr, "cairn-bench: https endpoints are not supported: %s\n", endpoint);
        return -1;
    } else if (strstr(p, "://") != NULL) {
        fprintf(stderr, "cairn-bench: unknown scheme in endpoint %s\n", endpoint);
        return -1;
    }
    size_t n = strcspn(p, "/?#");
    if (n == 0 || n >= sizeof t->host) {
        fprintf(stderr, "cairn-bench: bad endpoint %s\n", endpoint);
        return -1;
    }
    if (p[n] != '\0' && strcmp(p + n, "/") != 0) {
        fprintf(stderr, "cairn-bench: endpoint must not have a path: %s\n", endpoint);
        return -1;
    }
    memcpy(t->host, p, n);
    t->host[n] = '\0';
    const char *h = t->host, *colon;
    size_t hl;
    if (h[0] == '[') { /* [v6]:port */
        const char *rb = strchr(h, ']');
        if (rb == NULL) {
            fprintf(stderr, "cairn-bench: bad endpoint %s\n", endpoint);
            return -1;
        }
        hl = (size_t)(rb - h - 1);
        memcpy(t->addr, h + 1, hl);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = strrchr(h, ':');
        hl = colon ? (size_t)(colon - h) : strlen(h);
        memcpy(t->addr, h, hl);
    }
    t->addr[hl] = '\0';
    snprintf(t->port, sizeof t->port, "%s", colon ? colon + 1 : "80");
    if (t->addr[0] == '\0' || t->port[0] == '\0') {
        fprintf(stderr, "cairn-bench: bad endpoint %s\n", endpoint);
        return -1;
    }
    return 0;
}

bench_conn_t *bench_conn_create(const bench_target_t *t)
{
    bench_conn_t *c = cairn_calloc(1, sizeof *c);
    c->t = t;
    c->fd = -1;
    c->rbuf = cairn_malloc(RBUF_SIZE);
    c->scope = cairn_calloc(1, sizeof *c->scope);
    snprintf(c->scope->region, sizeof c->scope->region, "%s", t->region);
    snprintf(c->scope->service, sizeof c->scope->service, "s3");
    c->head = cairn_malloc(REQ_HEAD_MAX);
    return c;
}

static void conn_close(bench_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->rpos = c->rlen = 0;
    c->used = 0;
}

void bench_conn_destroy(bench_conn_t *c)
{
    if (c == NULL)
        return;
    conn_close(c);
    OPENSSL_cleanse(c->signing_key, sizeof c->signing_key);
    free(c->rbuf);
    free(c->body);
    free(c->scope);
    free(c->head);
    free(c->enc);
    free(c);
}

uint64_t bench_conn_connects(const bench_conn_t *c)
{
    return c->connects;
}

static int conn_open(bench_conn_t *c, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(c->t->addr, c->t->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "resolve: %s", gai_strerror(rc));
        return -1;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        struct timeval tv = {c->t->timeout_ms / 1000, (c->t->timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        e = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "connect: %s", strerror(e));
        return -1;
    }
    c->fd = fd;
    c->connects++;
    c->used = 0;
    c->rpos = c->rlen = 0;
    return 0;
}

static void to_hex(const uint8_t *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* The request path ("/", "/bucket", "/bucket/enc(key)") into c->enc. */
static const char *build_path(bench_conn_t *c, const bench_req_t *rq)
{
    size_t need = 3 + (rq->bucket ? 3 * strlen(rq->bucket) : 0) + (rq->key ? 3 * strlen(rq->key) : 0) + 1;
    if (need > c->enc_cap) {
        c->enc = cairn_realloc(c->enc, need);
        c->enc_cap = need;
    }
    char *o = c->enc;
    *o++ = '/';
    if (rq->bucket) {
        o += cairn_uri_encode(rq->bucket, strlen(rq->bucket), o, 0);
        if (rq->key) {
            *o++ = '/';
            o += cairn_uri_encode(rq->key, strlen(rq->key), o, 1);
        }
    }
    *o = '\0';
    return c->enc;
}

/* The value of a Content-Length header the request needs, or "" for none. */
static void content_length(const bench_req_t *rq, char *out, size_t len)
{
    out[0] = '\0';
    if (rq->body != NULL)
        snprintf(out, len, "Content-Length: %llu\r\n", (unsigned long long)rq->body->size);
    else if (strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "POST") == 0)
        snprintf(out, len, "Content-Length: 0\r\n");
}

/* --raw: the same request line and body, no signature (a plain HTTP server). */
static size_t build_raw_head(bench_conn_t *c, const bench_req_t *rq)
{
    const char *path = build_path(c, rq);
    const char *query = rq->query ? rq->query : "";
    char clen[48];
    content_length(rq, clen, sizeof clen);
    int n = snprintf(c->head, REQ_HEAD_MAX, "%s %s%s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: cairn-bench\r\n%s\r\n",
                     rq->method, path, *query ? "?" : "", query, c->t->host, clen);
    return n < 0 || n >= REQ_HEAD_MAX ? 0 : (size_t)n;
}

/* Build the signed request head into c->head; returns its length, or 0 if it does not fit. */
static size_t build_head(bench_conn_t *c, const bench_req_t *rq)
{
    const bench_target_t *t = c->t;
    if (t->raw)
        return build_raw_head(c, rq);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char amz_date[17], date[9];
    strftime(amz_date, sizeof amz_date, "%Y%m%dT%H%M%SZ", &tm);
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    if (strcmp(date, c->key_date) != 0) {
        memcpy(c->scope->date, date, 9);
        cairn_sigv4_signing_key(t->secret_key, c->scope, c->signing_key);
        memcpy(c->key_date, date, 9);
    }
    const char *path = build_path(c, rq);
    const char *query = rq->query ? rq->query : "";

    /* canonical request -> string to sign -> signature */
    char creq[REQ_HEAD_MAX];
    int n = snprintf(creq, sizeof creq,
                     "%s\n%s\n%s\nhost:%s\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:%s\n\n"
                     "host;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD",
                     rq->method, path, query, t->host, amz_date);
    if (n < 0 || (size_t)n >= sizeof creq)
        return 0;
    uint8_t md[32];
    char creq_hex[65], sts[512], sig[65];
    unsigned mdlen = 0;
    EVP_Digest(creq, (size_t)n, md, &mdlen, EVP_sha256(), NULL);
    to_hex(md, 32, creq_hex);
    int sn = snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/s3/aws4_request\n%s", amz_date, date, t->region,
                      creq_hex);
    if (sn < 0 || (size_t)sn >= sizeof sts)
        return 0;
    HMAC(EVP_sha256(), c->signing_key, 32, (const uint8_t *)sts, (size_t)sn, md, &mdlen);
    to_hex(md, 32, sig);

    char clen[48];
    content_length(rq, clen, sizeof clen);
    n = snprintf(c->head, REQ_HEAD_MAX,
                 "%s %s%s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: cairn-bench\r\nx-amz-date: %s\r\n"
                 "x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n"
                 "Authorization: AWS4-HMAC-SHA256 Credential=%s/%s/%s/s3/aws4_request, "
                 "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=%s\r\n%s\r\n",
                 rq->method, path, *query ? "?" : "", query, t->host, amz_date, t->access_key, date, t->region, sig,
                 clen);
    if (n < 0 || n >= REQ_HEAD_MAX)
        return 0;
    return (size_t)n;
}

/* Send head and body. 0, or -1 with errno set (EAGAIN: timeout). */
static int send_all(bench_conn_t *c, const char *head, size_t head_len, bench_obj_t *body)
{
    size_t hoff = 0;
    uint64_t boff = 0, blen = body ? body->size : 0;
    while (hoff < head_len || boff < blen) {
        struct iovec iov[8];
        int niov = 0;
        if (hoff < head_len)
            iov[niov++] = (struct iovec){(void *)(head + hoff), head_len - hoff};
        for (uint64_t off = boff; off < blen && niov < 8;) {
            const uint8_t *p;
            size_t m = bench_obj_slice(body, off, &p);
            iov[niov++] = (struct iovec){(void *)p, m};
            off += m;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
        ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        size_t left = (size_t)w;
        if (hoff < head_len) {
            size_t h = left < head_len - hoff ? left : head_len - hoff;
            hoff += h;
            left -= h;
        }
        boff += left;
    }
    return 0;
}

/* Read more bytes into rbuf (compacting it first if full). >0 bytes read, 0 EOF, -1 error. */
static ssize_t fill(bench_conn_t *c)
{
    if (c->rpos == c->rlen) {
        c->rpos = c->rlen = 0;
    } else if (c->rlen == RBUF_SIZE) {
        if (c->rpos == 0)
            return -2; /* head too large for the buffer */
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    for (;;) {
        ssize_t r = recv(c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r > 0)
            c->rlen += (size_t)r;
        return r;
    }
}

static void keep(bench_conn_t *c, const uint8_t *p, size_t n)
{
    if (c->body_len + n > KEEP_BODY_MAX)
        n = KEEP_BODY_MAX - c->body_len;
    if (c->body_len + n + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 4096;
        while (cap < c->body_len + n + 1)
            cap *= 2;
        c->body = cairn_realloc(c->body, cap);
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, p, n);
    c->body_len += n;
    c->body[c->body_len] = '\0';
}

typedef struct {
    bench_conn_t *c;
    const bench_req_t *rq;
    bench_resp_t *resp;
    int to_sink, to_keep;
} body_ctx_t;

static void deliver(body_ctx_t *b, const uint8_t *p, size_t n)
{
    b->resp->body_bytes += n;
    if (b->to_sink)
        b->rq->sink(b->rq->sink_arg, p, n);
    if (b->to_keep)
        keep(b->c, p, n);
}

static void set_neterr(bench_resp_t *resp, const char *what, int e)
{
    if (e == EAGAIN || e == EWOULDBLOCK)
        snprintf(resp->neterr, sizeof resp->neterr, "%s: timeout", what);
    else if (e == 0)
        snprintf(resp->neterr, sizeof resp->neterr, "%s: connection closed", what);
    else
        snprintf(resp->neterr, sizeof resp->neterr, "%s: %s", what, strerror(e));
}

/* Deliver exactly n body bytes. 0 or -1 (resp->neterr set). */
static int read_fixed(body_ctx_t *b, uint64_t n)
{
    bench_conn_t *c = b->c;
    while (n > 0) {
        if (c->rpos == c->rlen) {
            ssize_t r = fill(c);
            if (r <= 0) {
                set_neterr(b->resp, "body", r == 0 ? 0 : errno);
                return -1;
            }
        }
        size_t m = c->rlen - c->rpos;
        if (m > n)
            m = (size_t)n;
        deliver(b, c->rbuf + c->rpos, m);
        c->rpos += m;
        n -= m;
    }
    return 0;
}

/* One CRLF-terminated line from rbuf (without the CRLF, NUL-terminated in place). NULL on error. */
static char *read_line(body_ctx_t *b)
{
    bench_conn_t *c = b->c;
    for (;;) {
        uint8_t *s = c->rbuf + c->rpos;
        uint8_t *nl = memchr(s, '\n', c->rlen - c->rpos);
        if (nl != NULL) {
            *nl = '\0';
            if (nl > s && nl[-1] == '\r')
                nl[-1] = '\0';
            c->rpos = (size_t)(nl + 1 - c->rbuf);
            return (char *)s;
        }
        ssize_t r = fill(c);
        if (r <= 0) {
            set_neterr(b->resp, "chunk", r == 0 ? 0 : errno);
            return NULL;
        }
    }
}

static int read_chunked(body_ctx_t *b)
{
    for (;;) {
        char *line = read_line(b);
        if (line == NULL)
            return -1;
        char *end;
        errno = 0;
        unsigned long long n = strtoull(line, &end, 16);
        if (end == line || errno != 0) {
            snprintf(b->resp->neterr, sizeof b->resp->neterr, "bad chunk size line");
            return -1;
        }
        if (n == 0) { /* trailers until an empty line */
            for (;;) {
                line = read_line(b);
                if (line == NULL)
                    return -1;
                if (*line == '\0')
                    return 0;
            }
        }
        if (read_fixed(b, n) != 0)
            return -1;
        line = read_line(b);
        if (line == NULL)
            return -1;
        if (*line != '\0') {
            snprintf(b->resp->neterr, sizeof b->resp->neterr, "chunk not followed by CRLF");
            return -1;
        }
    }
}

static int read_to_eof(body_ctx_t *b)
{
    bench_conn_t *c = b->c;
    for (;;) {
        if (c->rpos < c->rlen) {
            deliver(b, c->rbuf + c->rpos, c->rlen - c->rpos);
            c->rpos = c->rlen;
        }
        ssize_t r = fill(c);
        if (r == 0)
            return 0;
        if (r < 0) {
            set_neterr(b->resp, "body", errno);
            return -1;
        }
    }
}

/* The value of <Code> in an S3 error body, or "". */
static void error_code(const char *body, char *out, size_t outlen)
{
    out[0] = '\0';
    if (body == NULL)
        return;
    const char *s = strstr(body, "<Code>");
    if (s == NULL)
        return;
    s += 6;
    const char *e = strstr(s, "</Code>");
    if (e == NULL)
        return;
    size_t n = (size_t)(e - s);
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

/*
 * Read one response. Returns 0, -1 on failure, or 1 when the connection
 * failed before any response byte (the caller may retry on a new socket).
 */
static int read_response(bench_conn_t *c, const bench_req_t *rq, bench_resp_t *resp, int64_t t0, int *close_after)
{
    int got_any = c->rlen > c->rpos;
    size_t head_end;
    for (;;) {
        /* find the end of the head */
        for (;;) {
            uint8_t *s = c->rbuf + c->rpos;
            size_t avail = c->rlen - c->rpos;
            uint8_t *e = avail >= 4 ? memmem(s, avail, "\r\n\r\n", 4) : NULL;
            if (e != NULL) {
                head_end = (size_t)(e - c->rbuf) + 4;
                break;
            }
            if (avail > HEAD_MAX) {
                snprintf(resp->neterr, sizeof resp->neterr, "response head too long");
                return -1;
            }
            ssize_t r = fill(c);
            if (r <= 0) {
                int e2 = errno;
                if (r == -2) {
                    snprintf(resp->neterr, sizeof resp->neterr, "response head too long");
                    return -1;
                }
                set_neterr(resp, "response", r == 0 ? 0 : e2);
                return got_any ? -1 : 1;
            }
            if (!got_any) {
                resp->ttfb_ns = bench_now_ns() - t0;
                got_any = 1;
            }
        }
        /* status line and the headers we use */
        char *h = (char *)c->rbuf + c->rpos;
        c->rbuf[head_end - 1] = '\0';
        c->rpos = head_end;
        int status = 0;
        if (strncmp(h, "HTTP/1.", 7) != 0 || sscanf(h + 8, " %d", &status) != 1 || status < 100 || status > 999) {
            snprintf(resp->neterr, sizeof resp->neterr, "bad status line");
            return -1;
        }
        int http10 = h[7] == '0';
        uint64_t clen = UINT64_MAX;
        int chunked = 0, conn_close = http10, conn_keep = 0;
        for (char *line = strstr(h, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
            line += 2;
            char *colon = strchr(line, ':');
            char *eol = strstr(line, "\r\n");
            if (colon == NULL || (eol != NULL && colon > eol))
                continue;
            size_t nl = (size_t)(colon - line);
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            if (nl == 14 && strncasecmp(line, "content-length", 14) == 0)
                clen = strtoull(v, NULL, 10);
            else if (nl == 17 && strncasecmp(line, "transfer-encoding", 17) == 0)
                chunked = strncasecmp(v, "chunked", 7) == 0;
            else if (nl == 10 && strncasecmp(line, "connection", 10) == 0) {
                if (strncasecmp(v, "close", 5) == 0)
                    conn_close = 1;
                else if (strncasecmp(v, "keep-alive", 10) == 0)
                    conn_keep = 1;
            }
        }
        if (http10 && conn_keep)
            conn_close = 0;
        if (status < 200) /* 1xx: an interim response, the real one follows */
            continue;
        resp->status = status;
        resp->content_length = clen;
        *close_after = conn_close;

        int two = status >= 200 && status < 300;
        body_ctx_t b = {c, rq, resp, two && rq->sink != NULL, !two || rq->keep_body};
        c->body_len = 0;
        if (c->body)
            c->body[0] = '\0';
        int rc = 0;
        if (strcmp(rq->method, "HEAD") == 0 || status == 204 || status == 304)
            rc = 0;
        else if (chunked)
            rc = read_chunked(&b);
        else if (clen != UINT64_MAX)
            rc = read_fixed(&b, clen);
        else {
            rc = read_to_eof(&b);
            *close_after = 1;
        }
        if (rc != 0)
            return -1;
        if (b.to_keep) {
            resp->body = c->body;
            resp->body_len = c->body_len;
        }
        if (!two)
            error_code(c->body, resp->code, sizeof resp->code);
        return 0;
    }
}

int bench_request(bench_conn_t *c, const bench_req_t *rq, bench_resp_t *resp)
{
    for (int attempt = 0;; attempt++) {
        memset(resp, 0, sizeof *resp);
        resp->content_length = UINT64_MAX;
        if (c->fd < 0 && conn_open(c, resp->neterr, sizeof resp->neterr) != 0)
            return -1;
        int reused = c->used > 0;
        size_t hl = build_head(c, rq);
        if (hl == 0) {
            snprintf(resp->neterr, sizeof resp->neterr, "request head too long");
            return -1;
        }
        int64_t t0 = bench_now_ns();
        int send_err = 0;
        if (send_all(c, c->head, hl, rq->body) != 0)
            send_err = errno;
        /*
         * Even when sending failed, a response may be waiting: a server
         * that refuses a body early answers and closes.
         */
        int close_after = 0;
        int rc = read_response(c, rq, resp, t0, &close_after);
        if (rc == 0) {
            if (resp->ttfb_ns == 0)
                resp->ttfb_ns = bench_now_ns() - t0;
            c->used++;
            if (close_after)
                conn_close(c);
            return 0;
        }
        if (send_err != 0)
            set_neterr(resp, "send", send_err);
        conn_close(c);
        if (rc == 1 && reused && attempt == 0)
            continue; /* a stale keep-alive connection: try once more on a new one */
        return -1;
    }
}
