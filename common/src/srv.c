/*
 * srv.c — thread-per-connection server of the internal protocol (see srv.h).
 *
 * Life of a connection: send the hello with a fresh session id (wire.h),
 * then wait for a frame header with no time limit (an idle
 * pooled connection costs one sleeping thread), then give the rest of the
 * frame io_timeout_ms per stall. Non-streaming bodies are read into a
 * per-connection buffer and MAC-checked before the handler runs; streaming
 * handlers pull the body themselves through cairn_srv_read().
 *
 * When a request leaves the byte stream in an unknown place (bad MAC, body
 * too large, streaming handler that stopped reading) the server answers and
 * then hangs up "lingering": it shuts down its sending side and drains what
 * the client still sends for a moment, so the client reads the answer
 * instead of a reset.
 *
 * Stopping: cairn_srv_stop() wakes the accept loop through a self-pipe and
 * shuts down every open connection socket, so connection threads blocked in
 * a read return at once; a handler in the middle of disk work finishes it,
 * fails to answer, and exits. cairn_srv_destroy() waits for all of them.
 */
#include "cairn/srv.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cairn/err.h"
#include "cairn/log.h"

/* Buffers above this are released after the request that grew them, so an
 * idle connection does not pin a 64 MiB body; typical block reads stay
 * below it and reuse their buffer. */
#define KEEP_BUF (16u << 20)
/* How long a lingering close drains the client's leftover bytes. */
#define LINGER_MS 2000

typedef struct conn_s conn_t;

struct conn_s {
    cairn_srv_req_t req; /* first: handlers get &req, we get back with container_of */
    cairn_srv_t *srv;
    int fd;
    cairn_wire_mac_t *mac;
    cairn_buf_t body;
    cairn_buf_t resp;
    int trailer;  /* 0 not read, 1 matched, -1 mismatched */
    int io_err;   /* first transport error while reading the body */
    uint8_t session[CAIRN_WIRE_SESSION_SIZE];
    uint32_t next_seq;                     /* the seq the next request must carry */
    uint8_t req_raw[CAIRN_WIRE_HDR_SIZE];  /* the current request's header as received */
    conn_t *prev, *next;
};

struct cairn_srv_s {
    int lfd;
    const cairn_wire_key_t *key;
    const cairn_srv_route_t *routes;
    size_t nroutes;
    void *data;
    int io_timeout_ms;
    int wake[2]; /* self-pipe: stop -> accept loop */
    pthread_mutex_t mu;
    pthread_cond_t idle; /* signalled when nconns drops to 0 */
    conn_t *conns;
    size_t nconns;
    int stopping;
    int fixed_session; /* tests: every connection gets fixed */
    uint8_t fixed[CAIRN_WIRE_SESSION_SIZE];
};

static int stopping(cairn_srv_t *s)
{
    return __atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE);
}

static conn_t *conn_of(cairn_srv_req_t *req)
{
    return (conn_t *)((char *)req - offsetof(conn_t, req));
}

int cairn_srv_create(int listen_fd, const cairn_wire_key_t *key, const cairn_srv_route_t *routes, size_t nroutes,
                     void *data, int io_timeout_ms, cairn_srv_t **out)
{
    cairn_srv_t *s = cairn_calloc(1, sizeof(*s));
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        int rc = -errno;
        free(s);
        return rc;
    }
    s->lfd = listen_fd;
    s->key = key;
    s->routes = routes;
    s->nroutes = nroutes;
    s->data = data;
    s->io_timeout_ms = io_timeout_ms;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    *out = s;
    return 0;
}

void cairn_srv_fix_session(cairn_srv_t *s, const uint8_t session[CAIRN_WIRE_SESSION_SIZE])
{
    memcpy(s->fixed, session, CAIRN_WIRE_SESSION_SIZE);
    s->fixed_session = 1;
}

void cairn_srv_stop(cairn_srv_t *s)
{
    pthread_mutex_lock(&s->mu);
    __atomic_store_n(&s->stopping, 1, __ATOMIC_RELEASE);
    for (conn_t *c = s->conns; c; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_unlock(&s->mu);
    ssize_t w = write(s->wake[1], "x", 1);
    (void)w;
}

void cairn_srv_destroy(cairn_srv_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    __atomic_store_n(&s->stopping, 1, __ATOMIC_RELEASE);
    for (conn_t *c = s->conns; c; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    while (s->nconns > 0)
        pthread_cond_wait(&s->idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- body access for handlers ---- */

int cairn_srv_read(cairn_srv_req_t *req, void *p, size_t n)
{
    conn_t *c = conn_of(req);
    if (c->io_err != 0)
        return c->io_err;
    if (n > req->body_left)
        return CAIRN_EINVAL;
    int rc = cairn_io_read_idle(c->fd, p, n, c->srv->io_timeout_ms);
    if (rc != 0) {
        c->io_err = rc;
        return rc;
    }
    cairn_wire_mac_update(c->mac, p, n);
    req->body_left -= n;
    return 0;
}

int cairn_srv_body_verify(cairn_srv_req_t *req)
{
    conn_t *c = conn_of(req);
    if (c->trailer != 0)
        return c->trailer > 0 ? 0 : CAIRN_EAUTH;
    if (c->io_err != 0)
        return c->io_err;
    if (req->body_left != 0)
        return CAIRN_EPROTO;
    uint8_t trailer[CAIRN_WIRE_MAC_SIZE];
    int rc = cairn_io_read_idle(c->fd, trailer, sizeof trailer, c->srv->io_timeout_ms);
    if (rc != 0) {
        c->io_err = rc;
        return rc;
    }
    c->trailer = cairn_wire_mac_check(c->mac, trailer) == 0 ? 1 : -1;
    return c->trailer > 0 ? 0 : CAIRN_EAUTH;
}

/* ---- one connection ---- */

static const cairn_srv_route_t *find_route(const cairn_srv_t *s, uint16_t op)
{
    for (size_t i = 0; i < s->nroutes; i++)
        if (s->routes[i].opcode == op)
            return &s->routes[i];
    return NULL;
}

static int respond(conn_t *c, int32_t status, int closing)
{
    const cairn_frame_hdr_t *rq = &c->req.hdr;
    if (c->resp.len > CAIRN_WIRE_MAX_BODY) {
        cairn_log(CAIRN_LOG_ERROR, rq->req_id, "op=%u response of %zu bytes exceeds the frame limit", rq->opcode,
                  c->resp.len);
        status = CAIRN_ETOOBIG;
        c->resp.len = 0;
    }
    cairn_frame_hdr_t h = {
        .opcode = rq->opcode,
        .flags = CAIRN_WIRE_FLAG_RESPONSE | (closing ? CAIRN_WIRE_FLAG_CLOSE : 0),
        .status = status,
        .seq = rq->seq,
        .req_id = rq->req_id,
        .body_len = c->resp.len,
        .time_ms = cairn_wall_ms(),
    };
    uint8_t hb[CAIRN_WIRE_HDR_SIZE], trailer[CAIRN_WIRE_MAC_SIZE];
    cairn_wire_hdr_encode(&h, hb);
    /* bound to the request it answers: its header is the link */
    cairn_wire_mac_begin(c->mac, c->session, c->req_raw, hb);
    cairn_wire_mac_update(c->mac, c->resp.base, c->resp.len);
    cairn_wire_mac_final(c->mac, trailer);
    struct iovec v[3] = {{hb, sizeof hb}, {c->resp.base, c->resp.len}, {trailer, sizeof trailer}};
    return cairn_io_write_idle(c->fd, v, 3, c->srv->io_timeout_ms);
}

/* Answer, then hang up without resetting the answer away (see top). */
static void linger_close(conn_t *c)
{
    shutdown(c->fd, SHUT_WR);
    char sink[16384];
    int64_t until = cairn_now_ms() + LINGER_MS;
    for (;;) {
        int64_t left = until - cairn_now_ms();
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        ssize_t r = recv(c->fd, sink, sizeof sink, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
            break;
    }
}

/* Wait for the next frame header: no limit before its first byte, the I/O
 * timeout after. 0 ok, 1 clean end of connection, else an error. */
static int read_header(conn_t *c, uint8_t hb[CAIRN_WIRE_HDR_SIZE])
{
    ssize_t r;
    for (;;) {
        r = recv(c->fd, hb, CAIRN_WIRE_HDR_SIZE, 0);
        if (r >= 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK))
            break;
        if (errno != EINTR) {
            /* a non-blocking fd handed to cairn_srv_serve_conn(): wait, unbounded */
            struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
            poll(&pfd, 1, -1);
        }
    }
    if (r == 0)
        return 1;
    if (r < 0)
        return (errno == ECONNRESET || errno == ENOTCONN) ? 1 : -errno;
    if (r == CAIRN_WIRE_HDR_SIZE)
        return 0;
    return cairn_io_read_idle(c->fd, hb + r, CAIRN_WIRE_HDR_SIZE - (size_t)r, c->srv->io_timeout_ms);
}

static void log_failure(const conn_t *c, int32_t status)
{
    const cairn_frame_hdr_t *h = &c->req.hdr;
    /* "Not found" and friends are answers, not faults. */
    int level = (status == CAIRN_ENOTFOUND || status == CAIRN_ENOTLEADER || status == CAIRN_ECONFLICT ||
                 status == CAIRN_EEXIST)
                    ? CAIRN_LOG_INFO
                    : CAIRN_LOG_WARN;
    cairn_log(level, h->req_id, "op=%u body=%llu status=%d (%s)", h->opcode, (unsigned long long)h->body_len,
              (int)status, cairn_strerror(status));
}

static void trim(cairn_buf_t *b)
{
    if (b->cap > KEEP_BUF)
        cairn_buf_dispose(b);
    else
        cairn_buf_reset(b);
}

/* Serve one request whose header is decoded into c->req.hdr. Returns 0 to
 * keep the connection, 1 to close it after a lingering drain, -1 to close
 * at once (transport failure). */
static int serve_one(conn_t *c)
{
    cairn_srv_t *s = c->srv;
    cairn_srv_req_t *req = &c->req;
    const cairn_srv_route_t *rt = find_route(s, req->hdr.opcode);
    int32_t status;

    if (rt == NULL || !rt->streaming) {
        if (req->hdr.body_len > CAIRN_WIRE_MAX_BODY) {
            status = CAIRN_ETOOBIG;
            log_failure(c, status);
            return respond(c, status, 1) == 0 ? 1 : -1;
        }
        size_t n = (size_t)req->hdr.body_len;
        uint8_t *p = cairn_buf_reserve(&c->body, n + 1); /* +1: never NULL, even for n == 0 */
        int rc = cairn_srv_read(req, p, n);
        if (rc == 0)
            rc = cairn_srv_body_verify(req);
        if (rc == CAIRN_EAUTH) {
            cairn_log(CAIRN_LOG_WARN, req->hdr.req_id, "op=%u bad MAC: wrong cluster secret?", req->hdr.opcode);
            return respond(c, rc, 1) == 0 ? 1 : -1;
        }
        if (rc != 0) {
            cairn_log(CAIRN_LOG_INFO, req->hdr.req_id, "op=%u body cut short: %s", req->hdr.opcode,
                      cairn_strerror(rc));
            return -1;
        }
        c->body.len = n;
        req->body = p;
        status = rt ? rt->fn(s->data, req, &c->resp) : CAIRN_EPROTO;
        if (status != 0)
            log_failure(c, status);
        return respond(c, status, 0) == 0 ? 0 : -1;
    }

    req->body = NULL;
    status = rt->fn(s->data, req, &c->resp);
    /* A handler that read the whole body but never checked the trailer has
     * not acted on it: check it now so the stream stays in step. */
    if (c->io_err == 0 && c->trailer == 0 && req->body_left == 0)
        cairn_srv_body_verify(req);
    if (c->io_err != 0) {
        cairn_log(CAIRN_LOG_INFO, req->hdr.req_id, "op=%u body cut short: %s", req->hdr.opcode,
                  cairn_strerror(c->io_err));
        return -1;
    }
    if (c->trailer < 0) {
        cairn_log(CAIRN_LOG_WARN, req->hdr.req_id, "op=%u bad MAC: wrong cluster secret?", req->hdr.opcode);
        c->resp.len = 0;
        return respond(c, CAIRN_EAUTH, 1) == 0 ? 1 : -1;
    }
    int unread = c->trailer == 0;
    if (unread && status == 0)
        status = CAIRN_EPROTO; /* claimed success without taking the body */
    if (status != 0)
        log_failure(c, status);
    if (respond(c, status, unread) != 0)
        return -1;
    return unread ? 1 : 0;
}

/* Open the session: pick its id and send the hello. 0 or a transport error. */
static int send_hello(conn_t *c)
{
    cairn_srv_t *s = c->srv;
    uint8_t hello[CAIRN_WIRE_HELLO_SIZE];
    if (s->fixed_session)
        memcpy(c->session, s->fixed, sizeof c->session);
    else
        cairn_wire_session_new(c->session);
    c->next_seq = 1;
    cairn_wire_hello_encode(c->mac, c->session, hello);
    struct iovec v = {hello, sizeof hello};
    return cairn_io_write_idle(c->fd, &v, 1, s->io_timeout_ms);
}

/* A request header that decoded: is it the next one of this session, and
 * recent? 0, or CAIRN_EAUTH after logging why. The MAC (checked after the
 * body) then proves the header itself. */
static int check_fresh(conn_t *c)
{
    const cairn_frame_hdr_t *h = &c->req.hdr;
    if (h->seq != c->next_seq) {
        cairn_log(CAIRN_LOG_WARN, h->req_id, "op=%u refused: seq %u, expected %u (a replayed or reordered frame)",
                  h->opcode, h->seq, c->next_seq);
        return CAIRN_EAUTH;
    }
    int64_t now = cairn_wall_ms();
    if (cairn_wire_time_check(h->time_ms, now) != 0) {
        cairn_log(CAIRN_LOG_WARN, h->req_id,
                  "op=%u refused: frame clock %lld s off ours (a replayed frame, or clocks out of sync)", h->opcode,
                  (long long)(h->time_ms / 1000 - now / 1000));
        return CAIRN_EAUTH;
    }
    c->next_seq++; /* after 2^32 - 1 requests nothing matches: the client reconnects first */
    return 0;
}

static void serve(conn_t *c)
{
    cairn_srv_t *s = c->srv;
    int rc0 = send_hello(c);
    if (rc0 != 0) {
        cairn_log(CAIRN_LOG_DEBUG, 0, "connection: sending hello: %s", cairn_strerror(rc0));
        return;
    }
    for (;;) {
        uint8_t hb[CAIRN_WIRE_HDR_SIZE];
        int rc = read_header(c, hb);
        if (rc != 0) {
            if (rc < 0)
                cairn_log(CAIRN_LOG_DEBUG, 0, "connection: reading header: %s", cairn_strerror(rc));
            return;
        }
        memset(&c->req, 0, sizeof c->req);
        rc = cairn_wire_hdr_decode(hb, &c->req.hdr);
        c->req.fd = c->fd;
        c->req.body_left = c->req.hdr.body_len;
        c->req.mac = c->mac;
        c->trailer = 0;
        c->io_err = 0;
        cairn_buf_reset(&c->resp);
        memcpy(c->req_raw, hb, sizeof hb);
        cairn_wire_mac_begin(c->mac, c->session, NULL, hb);
        if (rc == CAIRN_EPROTO && cairn_le32_get(hb) != CAIRN_WIRE_MAGIC) {
            cairn_log(CAIRN_LOG_WARN, 0, "connection: not a cairn frame; closing");
            return;
        }
        if (rc == 0 && (c->req.hdr.flags & CAIRN_WIRE_FLAG_RESPONSE))
            rc = CAIRN_EPROTO;
        if (rc == 0)
            rc = check_fresh(c);
        if (rc != 0) {
            /* Framing we cannot follow, or a stale frame: answer (the id is
             * readable) and go. */
            log_failure(c, rc);
            if (respond(c, rc, 1) == 0)
                linger_close(c);
            return;
        }
        rc = serve_one(c);
        trim(&c->body);
        trim(&c->resp);
        if (rc > 0)
            linger_close(c);
        if (rc != 0 || stopping(s))
            return;
    }
}

static int conn_register(cairn_srv_t *s, conn_t *c)
{
    pthread_mutex_lock(&s->mu);
    int ok = !s->stopping;
    if (ok) {
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        s->nconns++;
    }
    pthread_mutex_unlock(&s->mu);
    return ok ? 0 : CAIRN_EUNAVAIL;
}

static void conn_free(conn_t *c)
{
    cairn_srv_t *s = c->srv;
    pthread_mutex_lock(&s->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (--s->nconns == 0)
        pthread_cond_broadcast(&s->idle);
    /* close under the lock: stop() must never shut down a recycled fd */
    close(c->fd);
    pthread_mutex_unlock(&s->mu);
    cairn_wire_mac_destroy(c->mac);
    cairn_buf_dispose(&c->body);
    cairn_buf_dispose(&c->resp);
    free(c);
}

static conn_t *conn_new(cairn_srv_t *s, int fd)
{
    conn_t *c = cairn_calloc(1, sizeof(*c));
    c->srv = s;
    c->fd = fd;
    c->mac = cairn_wire_mac_create(s->key);
    cairn_buf_init(&c->body);
    cairn_buf_init(&c->resp);
    return c;
}

int cairn_srv_serve_conn(cairn_srv_t *s, int fd)
{
    conn_t *c = conn_new(s, fd);
    if (conn_register(s, c) != 0) {
        close(fd);
        cairn_wire_mac_destroy(c->mac);
        free(c);
        return CAIRN_EUNAVAIL;
    }
    serve(c);
    conn_free(c);
    return 0;
}

static void *conn_main(void *arg)
{
    conn_t *c = arg;
    serve(c);
    conn_free(c);
    return NULL;
}

int cairn_srv_run(cairn_srv_t *s)
{
    for (;;) {
        struct pollfd pfd[2] = {{.fd = s->lfd, .events = POLLIN}, {.fd = s->wake[0], .events = POLLIN}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (pfd[1].revents || stopping(s))
            return 0;
        if (!pfd[0].revents)
            continue;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EINTR || e == EAGAIN || e == ECONNABORTED || e == EPROTO)
                continue;
            cairn_log(CAIRN_LOG_ERROR, 0, "accept: %s", strerror(e));
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                poll(NULL, 0, 100); /* let connections close instead of spinning */
                continue;
            }
            return -e;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_t *c = conn_new(s, fd);
        if (conn_register(s, c) != 0) {
            close(fd);
            cairn_wire_mac_destroy(c->mac);
            free(c);
            return 0;
        }
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, conn_main, c);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            cairn_log(CAIRN_LOG_ERROR, 0, "pthread_create: %s", strerror(rc));
            conn_free(c);
        }
    }
}
