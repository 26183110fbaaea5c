/*
 * adminhttp.c — /health and /metrics over plain HTTP/1.1 (see adminhttp.h).
 *
 * One thread, one poll() loop. Each connection is a slot with a fixed
 * request buffer: while reading, bytes accumulate until the blank line that
 * ends the headers; then the whole answer is built in memory (a scrape of a
 * few hundred series is tens of KiB) and written as the socket takes it.
 * Every slot has a deadline (5 s to send the request, then 5 s to take the
 * answer), which also bounds poll()'s timeout. A self-pipe wakes the loop
 * to stop.
 */
#include "cairn/adminhttp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/wire.h"

typedef struct {
    int fd;           /* -1: free slot */
    int writing;      /* 0: reading the request, 1: sending the answer */
    int64_t deadline; /* cairn_now_ms() */
    uint64_t seq;     /* accept order: the oldest reader is dropped first */
    size_t inlen;
    char in[CAIRN_ADMINHTTP_REQ_MAX];
    cairn_buf_t out;
    size_t outoff;
} conn_t;

struct cairn_adminhttp_s {
    int lfd;
    int wake[2];
    pthread_t thread;
    cairn_metrics_t *metrics;
    cairn_adminhttp_health_fn health;
    void *arg;
    char addr[160];
    uint64_t seq;
    conn_t conns[CAIRN_ADMINHTTP_MAX_CONNS];
};

static void conn_close(conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->writing = 0;
    c->inlen = 0;
    c->outoff = 0;
    cairn_buf_reset(&c->out);
    if (c->out.cap > (1u << 20)) { /* an unusually large scrape: give the memory back */
        cairn_buf_dispose(&c->out);
        cairn_buf_init(&c->out);
    }
}

/* ---- answers ---- */

static void respond(conn_t *c, int status, const char *reason, const char *ctype, const char *extra_hdr,
                    const void *body, size_t len)
{
    cairn_buf_reset(&c->out);
    cairn_buf_appendf(&c->out,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sCache-Control: no-store\r\n"
                      "Connection: close\r\n\r\n",
                      status, reason, ctype, len, extra_hdr ? extra_hdr : "");
    cairn_buf_append(&c->out, body, len);
    c->outoff = 0;
    c->writing = 1;
    c->deadline = cairn_now_ms() + CAIRN_ADMINHTTP_TIMEOUT_MS;
}

static void respond_text(conn_t *c, int status, const char *reason, const char *text)
{
    respond(c, status, reason, "text/plain; charset=utf-8", NULL, text, strlen(text));
}

static void serve_health(cairn_adminhttp_t *a, conn_t *c)
{
    char why[256] = "";
    if (a->health == NULL || a->health(a->arg, why, sizeof why) == 0) {
        respond_text(c, 200, "OK", "ok\n");
        return;
    }
    why[sizeof why - 1] = '\0';
    char body[300];
    snprintf(body, sizeof body, "%s\n", why[0] ? why : "unhealthy");
    respond_text(c, 503, "Service Unavailable", body);
}

static void serve_metrics(cairn_adminhttp_t *a, conn_t *c)
{
    cairn_buf_t body;
    cairn_buf_init(&body);
    cairn_metrics_render(a->metrics, &body);
    respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", NULL, body.base ? body.base : (uint8_t *)"",
            body.len);
    cairn_buf_dispose(&body);
}

/* The request line is in c->in (the headers are complete): route it. */
static void serve(cairn_adminhttp_t *a, conn_t *c)
{
    c->in[c->inlen < sizeof c->in ? c->inlen : sizeof c->in - 1] = '\0';
    size_t mlen = strcspn(c->in, " \r\n");
    const char *target = c->in + mlen;
    if (mlen == 0 || *target != ' ') {
        respond_text(c, 400, "Bad Request", "bad request line\n");
        return;
    }
    target++;
    size_t tlen = strcspn(target, " \r\n");
    const char *version = target + tlen;
    if (tlen == 0 || *version != ' ' || strncmp(version + 1, "HTTP/1.", 7) != 0) {
        respond_text(c, 400, "Bad Request", "bad request line\n");
        return;
    }
    if (mlen != 3 || memcmp(c->in, "GET", 3) != 0) {
        respond(c, 405, "Method Not Allowed", "text/plain; charset=utf-8", "Allow: GET\r\n", "only GET\n", 9);
        return;
    }
    size_t plen = strcspn(target, "? \r\n"); /* the query, if any, is ignored */
    if (plen == 7 && memcmp(target, "/health", 7) == 0)
        serve_health(a, c);
    else if (plen == 8 && memcmp(target, "/metrics", 8) == 0)
        serve_metrics(a, c);
    else
        respond_text(c, 404, "Not Found", "not found: try /health or /metrics\n");
}

/* ---- connection I/O ---- */

/* Do the bytes read so far end the headers? */
static int headers_done(const conn_t *c)
{
    return memmem(c->in, c->inlen, "\r\n\r\n", 4) != NULL || memmem(c->in, c->inlen, "\n\n", 2) != NULL;
}

static void on_readable(cairn_adminhttp_t *a, conn_t *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) { /* gone before a whole request: nobody to answer */
            conn_close(c);
            return;
        }
        c->inlen += (size_t)n;
        if (headers_done(c)) {
            serve(a, c);
            return;
        }
        if (c->inlen == sizeof c->in) {
            respond_text(c, 431, "Request Header Fields Too Large", "request larger than 8 KiB\n");
            return;
        }
    }
}

static void on_writable(conn_t *c)
{
    while (c->outoff < c->out.len) {
        ssize_t n = send(c->fd, c->out.base + c->outoff, c->out.len - c->outoff, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0) {
            conn_close(c);
            return;
        }
        c->outoff += (size_t)n;
    }
    shutdown(c->fd, SHUT_WR);
    conn_close(c);
}

/* A free slot, dropping the oldest connection still sending its request
 * when all are taken (a writer is left to finish). NULL if all are writers. */
static conn_t *free_slot(cairn_adminhttp_t *a)
{
    conn_t *oldest = NULL;
    for (int i = 0; i < CAIRN_ADMINHTTP_MAX_CONNS; i++) {
        conn_t *c = &a->conns[i];
        if (c->fd < 0)
            return c;
        if (!c->writing && (oldest == NULL || c->seq < oldest->seq))
            oldest = c;
    }
    if (oldest)
        conn_close(oldest);
    return oldest;
}

static void on_accept(cairn_adminhttp_t *a)
{
    for (int i = 0; i < CAIRN_ADMINHTTP_MAX_CONNS; i++) { /* a bounded batch per wake-up */
        int fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a transient failure (EMFILE...): poll again */
        conn_t *c = free_slot(a);
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->writing = 0;
        c->inlen = 0;
        c->seq = ++a->seq;
        c->deadline = cairn_now_ms() + CAIRN_ADMINHTTP_TIMEOUT_MS;
    }
}

static const char timeout_answer[] = "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

static void *run(void *arg)
{
    cairn_adminhttp_t *a = arg;
    struct pollfd pfd[CAIRN_ADMINHTTP_MAX_CONNS + 2];
    int slot[CAIRN_ADMINHTTP_MAX_CONNS + 2];
    for (;;) {
        int n = 0;
        int64_t now = cairn_now_ms(), next = -1;
        pfd[n++] = (struct pollfd){.fd = a->wake[0], .events = POLLIN};
        pfd[n++] = (struct pollfd){.fd = a->lfd, .events = POLLIN};
        for (int i = 0; i < CAIRN_ADMINHTTP_MAX_CONNS; i++) {
            conn_t *c = &a->conns[i];
            if (c->fd < 0)
                continue;
            if (now >= c->deadline) {
                if (!c->writing) /* best effort: a client that sent nothing in time */
                    (void)!send(c->fd, timeout_answer, sizeof timeout_answer - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
                conn_close(c);
                continue;
            }
            if (next < 0 || c->deadline < next)
                next = c->deadline;
            slot[n] = i;
            pfd[n++] = (struct pollfd){.fd = c->fd, .events = c->writing ? POLLOUT : POLLIN};
        }
        int rc = poll(pfd, (nfds_t)n, next < 0 ? -1 : (int)(next - now + 1));
        if (rc < 0 && errno != EINTR) {
            cairn_log(CAIRN_LOG_ERROR, 0, "admin endpoint: poll: %s", strerror(errno));
            return NULL;
        }
        if (rc <= 0)
            continue;
        if (pfd[0].revents)
            return NULL; /* destroy() */
        for (int j = 2; j < n; j++) {
            conn_t *c = &a->conns[slot[j]];
            if (pfd[j].revents == 0 || c->fd != pfd[j].fd)
                continue;
            if (c->writing)
                on_writable(c);
            else
                on_readable(a, c);
            if (c->fd >= 0 && c->writing) /* answered just now: try to send at once */
                on_writable(c);
        }
        if (pfd[1].revents)
            on_accept(a);
    }
}

int cairn_adminhttp_create(const char *listen_addr, cairn_metrics_t *metrics, cairn_adminhttp_health_fn health,
                           void *arg, cairn_adminhttp_t **out)
{
    int lfd = cairn_listen(listen_addr, 0);
    if (lfd < 0)
        return lfd;
    cairn_adminhttp_t *a = cairn_calloc(1, sizeof *a);
    a->lfd = lfd;
    a->metrics = metrics;
    a->health = health;
    a->arg = arg;
    for (int i = 0; i < CAIRN_ADMINHTTP_MAX_CONNS; i++) {
        a->conns[i].fd = -1;
        cairn_buf_init(&a->conns[i].out);
    }
    if (cairn_local_addr(lfd, a->addr, sizeof a->addr) != 0)
        snprintf(a->addr, sizeof a->addr, "%s", listen_addr);
    int rc = 0;
    if (fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK) != 0 || pipe2(a->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = -errno;
        close(lfd);
        free(a);
        return rc;
    }
    /* The thread blocks every signal: the service's own signal handling
     * (sigwait on SIGTERM...) must never land here. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&a->thread, NULL, run, a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        close(a->wake[0]);
        close(a->wake[1]);
        close(lfd);
        free(a);
        return -rc;
    }
    *out = a;
    return 0;
}

const char *cairn_adminhttp_addr(const cairn_adminhttp_t *a)
{
    return a->addr;
}

void cairn_adminhttp_destroy(cairn_adminhttp_t *a)
{
    if (a == NULL)
        return;
    (void)!write(a->wake[1], "x", 1);
    pthread_join(a->thread, NULL);
    for (int i = 0; i < CAIRN_ADMINHTTP_MAX_CONNS; i++) {
        conn_close(&a->conns[i]);
        cairn_buf_dispose(&a->conns[i].out);
    }
    close(a->wake[0]);
    close(a->wake[1]);
    close(a->lfd);
    free(a);
}
