/*
 * adminhttp.h — the admin HTTP endpoint every cairn service can open:
 *
 *   GET /health   200 "ok\n", or 503 and the reason the service gave
 *   GET /metrics  the metrics registry (metrics.h), text format 0.0.4
 *
 * Anything else is 404 (another path) or 405 (another method). HTTP/1.1,
 * one request per connection, every answer with Connection: close. Plain
 * HTTP, no authentication: bind it to a management address.
 *
 * Model: one thread of its own runs a poll() loop over the listening socket
 * and every open connection (non-blocking), so a slow or silent client holds
 * only its own slot, never the thread: a request must arrive in full (at
 * most 8 KiB of request line and headers; a body is ignored) within 5 s of
 * the connect, and the answer must be taken within 5 s, else the connection
 * is closed. At most 64 connections are open; when a 65th arrives, the
 * oldest one still sending its request is dropped.
 *
 * The health callback and the metrics render (with its scrape hooks and
 * gauge callbacks) run on this thread, one request at a time: they should
 * answer within milliseconds, and must not wait on anything that waits on
 * this server.
 */
#ifndef CAIRN_ADMINHTTP_H
#define CAIRN_ADMINHTTP_H

#include <stddef.h>

#include "cairn/metrics.h"

typedef struct cairn_adminhttp_s cairn_adminhttp_t;

/* Healthy: return 0. Otherwise return nonzero and write a one-line reason
 * (NUL-terminated, at most reasonsz bytes) for the 503 answer. */
typedef int (*cairn_adminhttp_health_fn)(void *arg, char *reason, size_t reasonsz);

#define CAIRN_ADMINHTTP_REQ_MAX 8192
#define CAIRN_ADMINHTTP_TIMEOUT_MS 5000
#define CAIRN_ADMINHTTP_MAX_CONNS 64

/*
 * Listen on "host:port" (port 0 picks a free one, see cairn_adminhttp_addr)
 * and start serving on a new thread, which blocks every signal. metrics,
 * health (NULL: always healthy) and arg are borrowed until destroy.
 * Returns 0, or a negative error from the listen (CAIRN_EINVAL for a
 * malformed address, -EADDRINUSE...); nothing is left running on failure.
 */
int cairn_adminhttp_create(const char *listen_addr, cairn_metrics_t *metrics, cairn_adminhttp_health_fn health,
                           void *arg, cairn_adminhttp_t **out);
/* The bound address "host:port"; valid until destroy. */
const char *cairn_adminhttp_addr(const cairn_adminhttp_t *a);
/* Stop the thread, close every connection and the listener, free. NULL is fine. */
void cairn_adminhttp_destroy(cairn_adminhttp_t *a);

#endif
