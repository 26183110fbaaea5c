/*
 * srv.h — the server side of the internal protocol (wire.h), shared by the
 * storage node and the metadata service.
 *
 * Model: one thread per accepted connection, blocking I/O. The peers are a
 * handful of gateways and tools, each holding a few connections, so thread
 * count stays small, and a fragment write that blocks in fsync blocks only
 * its own connection.
 *
 * Each connection starts with the server's hello (a fresh random session
 * id, wire.h). A request whose seq is not the next one of the session, or
 * whose clock is more than CAIRN_WIRE_SKEW_MS off, is refused with
 * CAIRN_EAUTH before its body is read, and the connection is closed: a
 * replayed or reordered frame never reaches a handler.
 *
 * For each request frame, the server looks up the opcode in the handler
 * table. A handler not marked streaming gets the whole body, already
 * MAC-checked (a bad MAC is answered with CAIRN_EAUTH and the connection is
 * closed, the handler never runs). A streaming handler reads the body itself
 * with cairn_srv_read() and must call cairn_srv_body_verify() before acting
 * on it (committing a file). The handler fills resp (the response body) and
 * returns the response status (0 or a negative cairn error). Unknown
 * opcodes get CAIRN_EPROTO.
 *
 * The server answers (flag CAIRN_WIRE_FLAG_CLOSE) and then closes the
 * connection when it can no longer
 * tell where the next frame starts: bad MAC (CAIRN_EAUTH), a non-streamed
 * body above CAIRN_WIRE_MAX_BODY (CAIRN_ETOOBIG), a malformed header
 * (CAIRN_EPROTO), or a streaming handler that returned without reading the
 * whole body (its status; CAIRN_EPROTO if it claimed 0). If a streaming
 * handler returns without calling cairn_srv_body_verify() after reading the
 * whole body, the server checks the trailer itself (too late to protect the
 * handler's actions, but the stream stays in step). A transport failure
 * while reading a body (timeout, peer gone) closes without answering.
 * Every failed request logs one line with its request id.
 *
 * Handlers run on the connection's thread and may block (disk I/O, fsync).
 */
#ifndef CAIRN_SRV_H
#define CAIRN_SRV_H

#include "cairn/buf.h"
#include "cairn/wire.h"

typedef struct cairn_srv_s cairn_srv_t;
typedef struct cairn_srv_req_s cairn_srv_req_t;

struct cairn_srv_req_s {
    cairn_frame_hdr_t hdr;
    const uint8_t *body; /* non-streaming handlers: the whole body (hdr.body_len bytes); NULL for streaming */
    void *conn_data;     /* per-connection slot for the handler's use; freed by nobody (keep it NULL or manage it) */
    /* private */
    int fd;
    uint64_t body_left;
    cairn_wire_mac_t *mac;
    int64_t deadline_ms;
};

typedef int (*cairn_srv_handler_fn)(void *data, cairn_srv_req_t *req, cairn_buf_t *resp);

typedef struct {
    uint16_t opcode;
    int streaming;
    cairn_srv_handler_fn fn;
} cairn_srv_route_t;

/* Create a server on an already listening fd (see cairn_listen). listen_fd,
 * key and routes (a static table of nroutes entries) are borrowed: the caller
 * closes listen_fd after cairn_srv_destroy(). data is passed to handlers.
 * io_timeout_ms bounds each stall once a frame has started (<= 0: none);
 * idle connections between frames are kept without limit. */
int cairn_srv_create(int listen_fd, const cairn_wire_key_t *key, const cairn_srv_route_t *routes, size_t nroutes,
                     void *data, int io_timeout_ms, cairn_srv_t **out);
/* Tests and fuzzing only: every connection gets this session id instead of
 * a random one, so that frames made in advance are valid. This removes the
 * protection against frames replayed on another connection; never call it
 * in a service. Call before run/serve_conn. */
void cairn_srv_fix_session(cairn_srv_t *s, const uint8_t session[CAIRN_WIRE_SESSION_SIZE]);
/* Accept loop on the calling thread; one detached thread per connection.
 * Returns 0 after cairn_srv_stop(), or a negative error if accept fails for
 * good (e.g. the listening socket was closed). */
int cairn_srv_run(cairn_srv_t *s);
/* Make run() return and shut down every open connection (handlers busy with
 * disk work finish it first). Thread- and async-safe enough for a signal
 * thread; callable from any thread, more than once. */
void cairn_srv_stop(cairn_srv_t *s);
/* Stop (if not yet), wait until every connection thread has finished, free.
 * Call after run() returned. */
void cairn_srv_destroy(cairn_srv_t *s);
/* Serve one connected socket on the calling thread until the peer hangs up
 * or the server stops; takes ownership of fd (closed on return). For tests,
 * fuzzing and callers with their own accept loop. 0, or CAIRN_EUNAVAIL if
 * the server is stopping (fd closed). */
int cairn_srv_serve_conn(cairn_srv_t *s, int fd);

/* Streaming handlers: read exactly n body bytes (n <= bytes left, else
 * CAIRN_EINVAL); feeds the MAC. Transport errors (CAIRN_ETIMEOUT,
 * CAIRN_EPROTO on EOF, -ECONNRESET) are sticky: every later call returns
 * the same error and the connection is closed after the handler. */
int cairn_srv_read(cairn_srv_req_t *req, void *p, size_t n);
/* After the whole body was read: read the trailer and check it; 0 or
 * CAIRN_EAUTH (mismatch), CAIRN_EPROTO (body not fully read), or a
 * transport error. Idempotent. */
int cairn_srv_body_verify(cairn_srv_req_t *req);

#endif
