/*
 * limits.c — the gateway's connection limit ([gateway] max_connections).
 *
 * h2o 2.2.5 in library mode accepts every connection it is handed; its own
 * limits are per request: the request head (H2O_MAX_REQLEN, about 408 KiB,
 * and H2O_MAX_HEADERS, 100 headers: more and h2o closes the connection
 * without an answer), the body (max_request_entity_size: 413) and one timer
 * from the first header byte to the last body byte (http1.req_timeout, set
 * from [gateway] request_timeout_ms, which also cuts off a client that
 * trickles its headers). The rest is ours: requests in flight and header
 * bytes are checked in http.c, connections here.
 *
 * Every accepted socket counts in gw->nconns until h2o closes it (its
 * on_close callback). Past the limit a new connection gets a fixed 503
 * SlowDown (S3's answer to "too much, retry later"), flagged
 * "Connection: close", and is then drained until the client hangs up or
 * LINGER_MS pass, so the client reads the answer instead of a reset. Under
 * TLS the refusal is a plain close (no handshake is spent on it).
 *
 * Everything here runs on the accepting loop thread.
 */
#include <stdio.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "gw.h"

#define LINGER_MS 2000

static const char slow_down[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
                                "</Error>";

/* A refused connection while its answer goes out and the client hangs up. */
typedef struct {
    h2o_socket_t *sock;
    h2o_timeout_entry_t linger;
    char head[192];
} refused_t;

static __thread h2o_timeout_t linger_timeout; /* one per loop thread */
static __thread int linger_ready;

static void on_conn_close(void *data)
{
    __atomic_sub_fetch(&((gw_t *)data)->nconns, 1, __ATOMIC_RELAXED);
}

/* r (and the answer it holds) lives until h2o has let go of the socket. */
static void on_refused_closed(void *data)
{
    free(data);
}

static void refused_close(refused_t *r)
{
    if (h2o_timeout_is_linked(&r->linger))
        h2o_timeout_unlink(&r->linger);
    h2o_socket_close(r->sock);
}

static void on_linger_timeout(h2o_timeout_entry_t *entry)
{
    refused_close(H2O_STRUCT_FROM_MEMBER(refused_t, linger, entry));
}

/* Drain whatever the client still sends; EOF or an error ends it. */
static void on_refused_read(h2o_socket_t *sock, const char *err)
{
    refused_t *r = sock->data;
    if (err != NULL) {
        refused_close(r);
        return;
    }
    h2o_buffer_consume(&sock->input, sock->input->size);
}

static void on_refused_written(h2o_socket_t *sock, const char *err)
{
    refused_t *r = sock->data;
    if (err != NULL) {
        refused_close(r);
        return;
    }
    h2o_socket_read_start(sock, on_refused_read);
}

static void refuse(gw_thread_t *th, h2o_socket_t *sock)
{
    if (th->accept_ctx.ssl_ctx != NULL) {
        h2o_socket_close(sock);
        return;
    }
    if (!linger_ready) {
        h2o_timeout_init(th->ctx.loop, &linger_timeout, LINGER_MS);
        linger_ready = 1;
    }
    refused_t *r = cairn_calloc(1, sizeof *r);
    r->sock = sock;
    r->linger.cb = on_linger_timeout;
    sock->data = r;
    sock->on_close.cb = on_refused_closed;
    sock->on_close.data = r;
    h2o_timeout_link(th->ctx.loop, &linger_timeout, &r->linger);
    int hl = snprintf(r->head, sizeof r->head,
                      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: %zu\r\n"
                      "Retry-After: 1\r\nConnection: close\r\n\r\n",
                      sizeof slow_down - 1);
    h2o_iovec_t v[2] = {h2o_iovec_init(r->head, (size_t)hl), h2o_iovec_init(slow_down, sizeof slow_down - 1)};
    h2o_socket_write(sock, v, 2, on_refused_written);
}

void gw_limits_accept(gw_thread_t *th, h2o_socket_t *sock)
{
    gw_t *gw = th->gw;
    int n = __atomic_add_fetch(&gw->nconns, 1, __ATOMIC_RELAXED);
    if (n > gw->cfg.gw_max_connections) {
        __atomic_sub_fetch(&gw->nconns, 1, __ATOMIC_RELAXED);
        static __thread int64_t logged_ms;
        int64_t now = cairn_now_ms();
        if (now - logged_ms >= 10000) { /* a flood must not flood the log */
            logged_ms = now;
            cairn_log(CAIRN_LOG_WARN, 0, "max_connections (%d) reached: refusing new connections with 503 SlowDown",
                      gw->cfg.gw_max_connections);
        }
        refuse(th, sock);
        return;
    }
    sock->on_close.cb = on_conn_close;
    sock->on_close.data = gw;
    h2o_accept(&th->accept_ctx, sock);
}
