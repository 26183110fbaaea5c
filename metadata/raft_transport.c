/*
 * raft_transport.c — an authenticated TCP transport for libraft. See
 * raft_transport.h for the handshake and its caveats.
 *
 * Handles and memory. Streams handed to libraft are uv_tcp_t allocated
 * with raft_malloc: libraft closes them and frees them with raft_free.
 * Everything else here is ours:
 *   incoming  an accepted connection until its handshake is checked: the
 *             stream, a timer; freed once both handles are closed.
 *   outgoing  a connect request until its handshake is written: the stream
 *             (ours until handed over), the request of libraft to answer.
 * Closing the transport (libraft does it when it closes) stops the
 * listener, drops incoming connections, cancels outgoing ones (their
 * callbacks get RAFT_CANCELED), and calls libraft back once every handle of
 * ours is closed.
 */
#include "raft_transport.h"

#include <string.h>
#include <time.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/log.h"

#define HS_MAGIC 0x54465243u /* "CRFT" */
#define HS_VERSION 1
#define HS_ADDR_MAX 128
#define HS_BODY 160
#define HS_SIZE (HS_BODY + CAIRN_WIRE_MAC_SIZE)
#define HANDSHAKE_TIMEOUT_MS 10000
#define HANDSHAKE_SKEW_MS (5 * 60 * 1000)
#define BACKLOG 64

typedef struct tr_s tr_t;

typedef struct incoming_s {
    struct incoming_s *prev, *next;
    tr_t *tr;
    uv_tcp_t *tcp;      /* raft_malloc: handed to libraft on success */
    uv_timer_t timer;
    uint8_t buf[HS_SIZE];
    size_t got;
    int open_handles;   /* handles of ours still to close before freeing */
    int done;           /* handed over or being dropped */
} incoming_t;

typedef struct outgoing_s {
    struct outgoing_s *prev, *next;
    tr_t *tr;
    struct raft_uv_connect *req;
    uv_tcp_t *tcp;      /* raft_malloc */
    uv_connect_t connect;
    uv_write_t write;
    uint8_t hs[HS_SIZE];
    int closing;        /* tcp is being closed; its close callback answers libraft with status */
    int status;         /* RAFT_NOCONNECTION, or RAFT_CANCELED when the transport closes */
} outgoing_t;

struct tr_s {
    uv_loop_t *loop;
    cairn_wire_mac_t *mac;
    raft_id id;
    char address[HS_ADDR_MAX];
    uv_tcp_t listener;
    int listening;
    raft_uv_accept_cb accept_cb;
    incoming_t *in;
    outgoing_t *out;
    int closing;
    int pending;        /* handles and requests that must finish before close_cb */
    raft_uv_transport_close_cb close_cb;
    struct raft_uv_transport *t;
};

#define LIST_ADD(head, e)          \
    do {                           \
        (e)->prev = NULL;          \
        (e)->next = (head);        \
        if (head)                  \
            (head)->prev = (e);    \
        (head) = (e);              \
    } while (0)
#define LIST_DEL(head, e)                \
    do {                                 \
        if ((e)->prev)                   \
            (e)->prev->next = (e)->next; \
        else                             \
            (head) = (e)->next;          \
        if ((e)->next)                   \
            (e)->next->prev = (e)->prev; \
    } while (0)

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "a.b.c.d:port" -> sockaddr. 0 or RAFT_INVALID. */
static int parse_addr(const char *address, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(address, ':');
    if (colon == NULL || (size_t)(colon - address) >= sizeof host)
        return RAFT_INVALID;
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535 || uv_ip4_addr(host, (int)port, sa) != 0)
        return RAFT_INVALID;
    return 0;
}

static void hs_encode(tr_t *tr, uint8_t out[HS_SIZE])
{
    memset(out, 0, HS_SIZE);
    size_t alen = strlen(tr->address);
    cairn_le32_put(out, HS_MAGIC);
    cairn_le32_put(out + 4, HS_VERSION);
    cairn_le64_put(out + 8, tr->id);
    cairn_le64_put(out + 16, (uint64_t)wall_ms());
    out[24] = (uint8_t)alen;
    out[25] = (uint8_t)(alen >> 8);
    memcpy(out + 26, tr->address, alen);
    cairn_wire_mac_reset(tr->mac);
    cairn_wire_mac_update(tr->mac, out, HS_BODY);
    cairn_wire_mac_final(tr->mac, out + HS_BODY);
}

/* Check a received handshake; fills id and address (NUL-terminated). */
static int hs_check(tr_t *tr, const uint8_t in[HS_SIZE], raft_id *id, char address[HS_ADDR_MAX], const char **why)
{
    cairn_wire_mac_reset(tr->mac);
    cairn_wire_mac_update(tr->mac, in, HS_BODY);
    if (cairn_wire_mac_check(tr->mac, in + HS_BODY) != 0) {
        *why = "bad MAC";
        return -1;
    }
    size_t alen = (size_t)in[24] | (size_t)in[25] << 8;
    int64_t skew = (int64_t)cairn_le64_get(in + 16) - wall_ms();
    if (cairn_le32_get(in) != HS_MAGIC || cairn_le32_get(in + 4) != HS_VERSION || alen == 0 ||
        alen >= HS_ADDR_MAX || memchr(in + 26, '\0', alen) != NULL) {
        *why = "malformed";
        return -1;
    }
    if (skew > HANDSHAKE_SKEW_MS || skew < -HANDSHAKE_SKEW_MS) {
        *why = "clock too far off (or a replayed handshake)";
        return -1;
    }
    *id = cairn_le64_get(in + 8);
    memcpy(address, in + 26, alen);
    address[alen] = '\0';
    return *id == 0 ? (*why = "server id 0", -1) : 0;
}

/* ---- closing ---- */

static void maybe_closed(tr_t *tr)
{
    if (tr->closing && tr->pending == 0 && tr->close_cb) {
        raft_uv_transport_close_cb cb = tr->close_cb;
        tr->close_cb = NULL;
        cb(tr->t);
    }
}

static void on_listener_closed(uv_handle_t *h)
{
    tr_t *tr = h->data;
    tr->pending--;
    maybe_closed(tr);
}

/* ---- incoming ---- */

static void on_incoming_handle_closed(uv_handle_t *h)
{
    incoming_t *c = h->data;
    tr_t *tr = c->tr;
    if (h == (uv_handle_t *)c->tcp)
        raft_free(c->tcp);
    if (--c->open_handles == 0) {
        LIST_DEL(tr->in, c);
        free(c);
        tr->pending--;
        maybe_closed(tr);
    }
}

/* Drop an incoming connection whose handshake failed (or on close). */
static void incoming_drop(incoming_t *c)
{
    if (c->done)
        return;
    c->done = 1;
    uv_read_stop((uv_stream_t *)c->tcp);
    uv_timer_stop(&c->timer);
    c->tcp->data = c;
    uv_close((uv_handle_t *)c->tcp, on_incoming_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_incoming_handle_closed);
}

static void on_incoming_timeout(uv_timer_t *t)
{
    incoming_t *c = t->data;
    cairn_log(CAIRN_LOG_WARN, 0, "raft transport: no handshake within %d ms: connection dropped", HANDSHAKE_TIMEOUT_MS);
    incoming_drop(c);
}

/* Read exactly the handshake: each buffer is what is still missing of it,
 * so nothing of the Raft messages that follow is consumed here. */
static void on_incoming_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    incoming_t *c = h->data;
    *buf = uv_buf_init((char *)c->buf + c->got, (unsigned)(HS_SIZE - c->got));
}

static void on_incoming_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    incoming_t *c = s->data;
    tr_t *tr = c->tr;
    if (n < 0) {
        incoming_drop(c);
        return;
    }
    c->got += (size_t)n;
    if (c->got < HS_SIZE)
        return;
    uv_read_stop(s);
    raft_id id;
    char address[HS_ADDR_MAX];
    const char *why = "";
    if (hs_check(tr, c->buf, &id, address, &why) != 0) {
        cairn_log(CAIRN_LOG_WARN, 0, "raft transport: refused a connection: %s", why);
        incoming_drop(c);
        return;
    }
    /* Hand the stream over; the timer and c go away on their own. */
    c->done = 1;
    uv_timer_stop(&c->timer);
    uv_stream_t *stream = (uv_stream_t *)c->tcp;
    c->tcp = NULL;
    c->open_handles--; /* the stream is libraft's now */
    uv_close((uv_handle_t *)&c->timer, on_incoming_handle_closed);
    stream->data = NULL;
    tr->accept_cb(tr->t, id, address, stream);
}

static void on_connection(uv_stream_t *server, int status)
{
    tr_t *tr = server->data;
    if (status < 0 || tr->closing)
        return;
    incoming_t *c = cairn_calloc(1, sizeof *c);
    c->tr = tr;
    c->tcp = raft_malloc(sizeof *c->tcp);
    CAIRN_ASSERT(c->tcp != NULL);
    uv_tcp_init(tr->loop, c->tcp);
    c->tcp->data = c;
    c->open_handles = 2;
    LIST_ADD(tr->in, c);
    tr->pending++;
    uv_timer_init(tr->loop, &c->timer);
    c->timer.data = c;
    /* Raft messages are small and each waits for its answer: without
     * TCP_NODELAY, Nagle's algorithm and delayed ACKs hold them for up to
     * 40 ms. */
    if (uv_accept(server, (uv_stream_t *)c->tcp) != 0 || uv_tcp_nodelay(c->tcp, 1) != 0 ||
        uv_read_start((uv_stream_t *)c->tcp, on_incoming_alloc, on_incoming_read) != 0) {
        incoming_drop(c);
        return;
    }
    uv_timer_start(&c->timer, on_incoming_timeout, HANDSHAKE_TIMEOUT_MS, 0);
}

/* ---- outgoing ---- */

static void outgoing_done(outgoing_t *o, uv_stream_t *stream, int status)
{
    tr_t *tr = o->tr;
    LIST_DEL(tr->out, o);
    struct raft_uv_connect *req = o->req;
    free(o);
    tr->pending--;
    req->cb(req, stream, status);
    maybe_closed(tr);
}

/* The connection failed or is canceled: close our stream, then answer
 * libraft (NOCONNECTION makes it retry later; CANCELED does not). */
static void on_outgoing_failed_closed(uv_handle_t *h)
{
    outgoing_t *o = h->data;
    raft_free(h);
    outgoing_done(o, NULL, o->status);
}

static void outgoing_fail(outgoing_t *o, int status)
{
    if (o->closing)
        return; /* already closing; its close callback answers */
    o->closing = 1;
    o->status = status;
    uv_close((uv_handle_t *)o->tcp, on_outgoing_failed_closed);
}

static void on_handshake_written(uv_write_t *w, int status)
{
    outgoing_t *o = w->data;
    if (o->closing)
        return; /* the close already under way answers */
    if (status < 0) {
        outgoing_fail(o, RAFT_NOCONNECTION);
        return;
    }
    uv_stream_t *stream = (uv_stream_t *)o->tcp;
    stream->data = NULL;
    outgoing_done(o, stream, 0);
}

static void on_connected(uv_connect_t *req, int status)
{
    outgoing_t *o = req->data;
    if (o->closing)
        return;
    if (status < 0) {
        outgoing_fail(o, RAFT_NOCONNECTION);
        return;
    }
    if (uv_tcp_nodelay(o->tcp, 1) != 0) {
        outgoing_fail(o, RAFT_NOCONNECTION);
        return;
    }
    hs_encode(o->tr, o->hs);
    uv_buf_t b = uv_buf_init((char *)o->hs, HS_SIZE);
    o->write.data = o;
    if (uv_write(&o->write, (uv_stream_t *)o->tcp, &b, 1, on_handshake_written) != 0)
        outgoing_fail(o, RAFT_NOCONNECTION);
}

/* ---- the raft_uv_transport interface ---- */

static void on_raft_handle_closed(uv_handle_t *h) { raft_free(h); }

static int tr_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    tr_t *tr = t->impl;
    if (strlen(address) >= HS_ADDR_MAX)
        return RAFT_NAMETOOLONG;
    tr->id = id;
    snprintf(tr->address, sizeof tr->address, "%s", address);
    return 0;
}

static int tr_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    tr_t *tr = t->impl;
    struct sockaddr_in sa;
    int rv = parse_addr(tr->address, &sa);
    if (rv != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "bad address %s (want IPv4:port)", tr->address);
        return rv;
    }
    uv_tcp_init(tr->loop, &tr->listener);
    tr->listener.data = tr;
    tr->listening = 1;
    tr->accept_cb = cb;
    rv = uv_tcp_bind(&tr->listener, (const struct sockaddr *)&sa, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&tr->listener, BACKLOG, on_connection);
    if (rv != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "listen on %s: %s", tr->address, uv_strerror(rv));
        return RAFT_IOERR;
    }
    return 0;
}

static int tr_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id, const char *address,
                      raft_uv_connect_cb cb)
{
    tr_t *tr = t->impl;
    struct sockaddr_in sa;
    if (tr->closing)
        return RAFT_CANCELED;
    if (parse_addr(address, &sa) != 0)
        return RAFT_NOCONNECTION;
    outgoing_t *o = cairn_calloc(1, sizeof *o);
    o->tr = tr;
    o->req = req;
    req->cb = cb;
    o->tcp = raft_malloc(sizeof *o->tcp);
    CAIRN_ASSERT(o->tcp != NULL);
    uv_tcp_init(tr->loop, o->tcp);
    o->tcp->data = o;
    o->connect.data = o;
    LIST_ADD(tr->out, o);
    tr->pending++;
    int rv = uv_tcp_connect(&o->connect, o->tcp, (const struct sockaddr *)&sa, on_connected);
    if (rv != 0) {
        /* no connect callback will come: unwind without answering */
        LIST_DEL(tr->out, o);
        uv_close((uv_handle_t *)o->tcp, on_raft_handle_closed);
        free(o);
        tr->pending--;
        return RAFT_NOCONNECTION;
    }
    return 0;
}

static void tr_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    tr_t *tr = t->impl;
    tr->closing = 1;
    tr->close_cb = cb;
    if (tr->listening) {
        tr->listening = 0;
        tr->pending++;
        uv_close((uv_handle_t *)&tr->listener, on_listener_closed);
    }
    for (incoming_t *c = tr->in; c; c = c->next)
        incoming_drop(c);
    for (outgoing_t *o = tr->out; o; o = o->next)
        outgoing_fail(o, RAFT_CANCELED);
    maybe_closed(tr);
}

int meta_transport_init(struct raft_uv_transport *t, uv_loop_t *loop, const cairn_wire_key_t *key)
{
    memset(t, 0, sizeof *t);
    tr_t *tr = cairn_calloc(1, sizeof *tr);
    tr->loop = loop;
    tr->mac = cairn_wire_mac_create(key);
    tr->t = t;
    t->impl = tr;
    t->init = tr_init;
    t->listen = tr_listen;
    t->connect = tr_connect;
    t->close = tr_close;
    return 0;
}

void meta_transport_release(struct raft_uv_transport *t)
{
    tr_t *tr = t->impl;
    if (tr == NULL)
        return;
    cairn_wire_mac_destroy(tr->mac);
    free(tr);
    t->impl = NULL;
}
