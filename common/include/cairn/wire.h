/*
 * wire.h — the internal framed protocol spoken between gateway, storage
 * nodes, metadata replicas and the admin tool.
 *
 * A frame is a 40-byte header, a body of body_len bytes, and a 32-byte MAC
 * trailer. The MAC is a trailer so that a large body (a fragment) can be
 * streamed without buffering it; the receiver of a streamed body must not
 * act on it (rename a file, apply a command) before cairn_wire_mac_check()
 * matched the trailer.
 *
 * Header, little-endian:
 *   0  u32 magic "CRN2"       8  i32 status (responses; 0 or a cairn error)
 *   4  u16 opcode             12 u32 seq (frame number on this connection)
 *   6  u16 flags (bit 0: response; bit 1, responses only: the server closes
 *      the connection after this response)
 *   16 u64 request id (echoed in the response; also the log request id)
 *   24 u64 body length
 *   32 i64 sender's wall clock, ms since the Unix epoch
 *
 * Sessions and replay. A connection opens with the server's hello: a frame
 * (opcode CAIRN_OP_HELLO, response flag, seq 0) whose 16-byte body is a
 * random session id the server picked for this connection. Every frame
 * after it is MACed as
 *
 *   HMAC-SHA256(frame key, session || link || header || XXH3-128(body))
 *
 * where link is 40 zero bytes for a request and, for a response, the header
 * of the request it answers (the hello uses an all-zero session). Requests
 * carry seq 1, 2, 3, ... and each response repeats its request's seq. So:
 * - a frame recorded on one connection fails the MAC on any other (the
 *   session differs, and the server chose it after the recording);
 * - on its own connection, a repeated, dropped or reordered request has the
 *   wrong seq and is refused;
 * - a response is valid only as the answer to the exact request header it
 *   names (opcode, request id, seq and send time), so an old response
 *   cannot answer a new request even under a replayed hello;
 * - a frame whose clock is more than CAIRN_WIRE_SKEW_MS from the
 *   receiver's is refused (this bounds how long a recorded hello is worth
 *   anything; it requires the cluster's clocks to agree within that).
 * Cost: 8 header bytes per frame, one 88-byte hello and one round trip per
 * new connection; nothing on the per-frame path allocates.
 *
 * One connection carries one request at a time from this client (the server
 * answers in order); the request id ties log lines across services.
 *
 * Client calls here are blocking with a per-call timeout (a read or write
 * that cannot proceed waits in poll() against the deadline). They are meant
 * for worker threads, never an event loop.
 * On any transport error the connection is closed (fd = -1) and the next
 * call reconnects.
 */
#ifndef CAIRN_WIRE_H
#define CAIRN_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "cairn/buf.h"

#define CAIRN_WIRE_MAGIC 0x324e5243u /* "CRN2" */
#define CAIRN_WIRE_HDR_SIZE 40
#define CAIRN_WIRE_MAC_SIZE 32
#define CAIRN_WIRE_SESSION_SIZE 16
/* The server's first frame on a connection: header, session id, MAC. */
#define CAIRN_WIRE_HELLO_SIZE (CAIRN_WIRE_HDR_SIZE + CAIRN_WIRE_SESSION_SIZE + CAIRN_WIRE_MAC_SIZE)
/* Largest accepted difference between a frame's clock and the receiver's. */
#define CAIRN_WIRE_SKEW_MS 60000
#define CAIRN_WIRE_FLAG_RESPONSE 1
#define CAIRN_WIRE_FLAG_CLOSE 2
/* Largest body the receiver buffers in memory (control messages, block reads). */
#define CAIRN_WIRE_MAX_BODY (64u << 20)
/* Largest streamed body (a fragment file of a 5 TiB object at k=1 is out of scope;
 * a 5 GiB object at k=1 plus checksums fits). */
#define CAIRN_WIRE_MAX_STREAM (8ull << 30)

/* Opcodes. Node ops 1..99, metadata ops 100..199. Bodies are documented
 * where they are handled (storage-node/, metadata/) and encoded with buf.h. */
enum {
    CAIRN_OP_HELLO = 0,        /* server -> client, once per connection: session[16] */
    CAIRN_OP_PING = 1,         /* -> empty; answers "alive" */
    CAIRN_OP_FRAG_PUT = 10,    /* streamed: the fragment file (frag.h header + blocks) -> empty */
    CAIRN_OP_FRAG_GET = 11,    /* oid[16] u8 index u64 first_stripe u32 nstripes -> header + blocks */
    CAIRN_OP_FRAG_DELETE = 12, /* oid[16] u8 index -> empty (CAIRN_ENOTFOUND if absent) */
    CAIRN_OP_FRAG_STAT = 13,   /* oid[16] u8 index -> frag header(64) u64 file_size i64 mtime_ms */
    CAIRN_OP_FRAG_LIST = 14,   /* oid[16] u8 index (exclusive start) u32 max -> u32 n, n x (oid[16] u8 index u64 size), u8 more */
    CAIRN_OP_NODE_INFO = 15,   /* -> str id, u64 used, u64 free, u64 fragments */
    CAIRN_OP_NODE_BAD_LIST = 16,     /* u32 max -> quarantined fragments (node_client.h) */
    CAIRN_OP_NODE_SCRUB_STATUS = 17, /* -> scrubber counters (node_client.h) */
    CAIRN_OP_NODE_SCRUB_NOW = 18,    /* u32 rate_mb -> empty: a scrub pass at once (node_client.h) */
    CAIRN_OP_META_BASE = 100,
};

typedef struct {
    uint16_t opcode;
    uint16_t flags;
    int32_t status;
    uint32_t seq;
    uint64_t req_id;
    uint64_t body_len;
    int64_t time_ms;
} cairn_frame_hdr_t;

void cairn_wire_hdr_encode(const cairn_frame_hdr_t *h, uint8_t out[CAIRN_WIRE_HDR_SIZE]);
/* CAIRN_EPROTO on bad magic or unknown flags, CAIRN_ETOOBIG when
 * body_len > CAIRN_WIRE_MAX_STREAM. Fills *h in both cases (the request id of
 * a refused frame is still known). */
int cairn_wire_hdr_decode(const uint8_t in[CAIRN_WIRE_HDR_SIZE], cairn_frame_hdr_t *h);

/* Wall clock, ms since the Unix epoch (CLOCK_REALTIME): frame times. */
int64_t cairn_wall_ms(void);
/* 0 if a frame stamped time_ms may be accepted at now_ms (within
 * CAIRN_WIRE_SKEW_MS either way), else CAIRN_EAUTH. */
int cairn_wire_time_check(int64_t time_ms, int64_t now_ms);
/* A fresh random session id (getrandom). */
void cairn_wire_session_new(uint8_t session[CAIRN_WIRE_SESSION_SIZE]);

/* The cluster key, derived once from the cluster secret. Immutable, thread-safe. */
typedef struct cairn_wire_key_s cairn_wire_key_t;
int cairn_wire_key_create(const char *secret, size_t len, cairn_wire_key_t **out);
void cairn_wire_key_destroy(cairn_wire_key_t *k);

/* Incremental MAC. create returns a MAC ready for update; final (and check)
 * leave it reset for the next message; reset abandons a partial MAC. No
 * call allocates except create. A MAC object is used by one thread at a time.
 *
 * Frames: cairn_wire_mac_begin() with the connection's session, the link
 * (NULL for a request, the request's header for a response) and the frame's
 * header; then update with the body; then final or check.
 * Other messages (the Raft handshake): reset, update, final. Of the bytes
 * given to update, the first CAIRN_WIRE_HDR_SIZE go to the HMAC and the
 * rest through the keyed XXH3; such a MAC never equals a frame MAC (the
 * HMAC input has another length). */
typedef struct cairn_wire_mac_s cairn_wire_mac_t;
cairn_wire_mac_t *cairn_wire_mac_create(const cairn_wire_key_t *k);
void cairn_wire_mac_destroy(cairn_wire_mac_t *m);
void cairn_wire_mac_reset(cairn_wire_mac_t *m);
void cairn_wire_mac_update(cairn_wire_mac_t *m, const void *p, size_t n);
void cairn_wire_mac_begin(cairn_wire_mac_t *m, const uint8_t session[CAIRN_WIRE_SESSION_SIZE],
                          const uint8_t link[CAIRN_WIRE_HDR_SIZE], const uint8_t hdr[CAIRN_WIRE_HDR_SIZE]);
void cairn_wire_mac_final(cairn_wire_mac_t *m, uint8_t out[CAIRN_WIRE_MAC_SIZE]);
/* Constant-time compare of the computed MAC with a received trailer: 0 or CAIRN_EAUTH. */
int cairn_wire_mac_check(cairn_wire_mac_t *m, const uint8_t trailer[CAIRN_WIRE_MAC_SIZE]);

/* The hello (see top): encode one for session, stamped now; decode checks
 * the header, the clock and the MAC and yields the session id. 0, or
 * CAIRN_EPROTO (not a hello) or CAIRN_EAUTH (bad MAC, clock out of window). */
void cairn_wire_hello_encode(cairn_wire_mac_t *m, const uint8_t session[CAIRN_WIRE_SESSION_SIZE],
                             uint8_t out[CAIRN_WIRE_HELLO_SIZE]);
int cairn_wire_hello_decode(cairn_wire_mac_t *m, const uint8_t in[CAIRN_WIRE_HELLO_SIZE],
                            uint8_t session[CAIRN_WIRE_SESSION_SIZE]);

/* Blocking I/O with a deadline (ms since an arbitrary epoch, from cairn_now_ms();
 * a negative deadline waits forever).
 * 0 on success, CAIRN_ETIMEOUT, -EPIPE/-ECONNRESET..., CAIRN_EPROTO on EOF mid-frame.
 * Writes never raise SIGPIPE (MSG_NOSIGNAL). */
int64_t cairn_now_ms(void);
int cairn_io_write_all(int fd, const struct iovec *iov, int iovcnt, int64_t deadline_ms);
int cairn_io_read_all(int fd, void *p, size_t n, int64_t deadline_ms);
/* The same with an inactivity timeout: fails with CAIRN_ETIMEOUT only after
 * idle_ms without any byte moving (idle_ms <= 0: never), so a 64 MiB body is
 * not held to the deadline of a small one. */
int cairn_io_write_idle(int fd, const struct iovec *iov, int iovcnt, int idle_ms);
int cairn_io_read_idle(int fd, void *p, size_t n, int idle_ms);

/* A random non-zero request id (thread-local xorshift64* seeded from getrandom). */
uint64_t cairn_wire_new_req_id(void);

/* A client connection to one service. Embedded (init/dispose). Not thread-safe:
 * one thread uses it at a time. */
typedef struct {
    int fd;                       /* -1 when not connected */
    char addr[128];               /* "host:port" */
    const cairn_wire_key_t *key;  /* borrowed; outlives the connection */
    cairn_wire_mac_t *mac;
    int timeout_ms;               /* per call: connect, wait for the reply; while sending
                                     or receiving a body, the longest stall; <= 0: none */
    uint64_t req_id;              /* id of the current/last request */
    /* streaming request state */
    uint64_t stream_left;
    /* session (from the server's hello when connecting) */
    uint8_t session[CAIRN_WIRE_SESSION_SIZE];
    uint32_t seq;                          /* seq of the current/last request */
    uint8_t req_hdr[CAIRN_WIRE_HDR_SIZE];  /* its header: the link of its response */
} cairn_conn_t;

void cairn_conn_init(cairn_conn_t *c, const char *addr, const cairn_wire_key_t *key, int timeout_ms);
void cairn_conn_dispose(cairn_conn_t *c);
/* Close the socket (next call reconnects). */
void cairn_conn_close(cairn_conn_t *c);

/* Connecting (done by the calls below when fd < 0) reads and checks the
 * server's hello within timeout_ms: a server with another key fails with
 * CAIRN_EAUTH before any request is sent. A connection is reopened after
 * 2^32 - 1 requests (seq would wrap).
 *
 * One request/response. req_id 0 picks a random id. The response body is
 * appended to resp (reset first; resp may be NULL to discard it); *status
 * gets the response status (status may be NULL).
 * Returns 0 when a response arrived (whatever its status), else a transport
 * error (connection closed): CAIRN_ETIMEOUT, -ECONNREFUSED..., CAIRN_EPROTO
 * (malformed response, wrong request id or seq, missing response flag),
 * CAIRN_ETOOBIG (request or response body above CAIRN_WIRE_MAX_BODY; a
 * too-big request is refused before anything is sent), CAIRN_EAUTH
 * (response MAC mismatch, or its clock out of window). A response flagged CAIRN_WIRE_FLAG_CLOSE (the
 * server hangs up after it: bad MAC, refused stream...) closes the
 * connection too. A connection the peer closed while idle is noticed before
 * the next request (one poll) and reopened transparently. */
int cairn_conn_call(cairn_conn_t *c, uint16_t op, uint64_t req_id, const struct iovec *iov, int iovcnt,
                    cairn_buf_t *resp, int32_t *status);

/* Streamed request body: begin (sends the header), write pieces totalling
 * exactly body_len, end (sends the MAC, reads the response). Any error closes
 * the connection; after an error, only cairn_conn_close/dispose are valid.
 * When the server refuses the body part-way (it answers early and hangs up),
 * stream_write returns the server's status (e.g. CAIRN_ECORRUPT, -ENOSPC)
 * rather than a bare transport error, when it could still be read. Writing
 * more than body_len in total is CAIRN_EINVAL, as is ending early. */
int cairn_conn_stream_begin(cairn_conn_t *c, uint16_t op, uint64_t req_id, uint64_t body_len);
int cairn_conn_stream_write(cairn_conn_t *c, const struct iovec *iov, int iovcnt);
int cairn_conn_stream_end(cairn_conn_t *c, cairn_buf_t *resp, int32_t *status);
/* The first half of stream_end: send the MAC only. Collect the answer with
 * cairn_conn_recv, so that many streams can be finished before any answer
 * is awaited (one slow peer then delays the others by nothing). */
int cairn_conn_stream_finish(cairn_conn_t *c);

/* Two-phase call for fan-out: send a request to many connections first, then
 * collect the answers, so the peers work in parallel. */
int cairn_conn_send(cairn_conn_t *c, uint16_t op, uint64_t req_id, const struct iovec *iov, int iovcnt);
int cairn_conn_recv(cairn_conn_t *c, cairn_buf_t *resp, int32_t *status);

/* Parse "host:port" (IPv4 literal or name) into a sockaddr; 0 or CAIRN_EINVAL. */
struct sockaddr_storage;
int cairn_addr_parse(const char *hostport, struct sockaddr_storage *ss, unsigned *sslen);
/* Listen on "host:port" with SO_REUSEADDR (and SO_REUSEPORT if reuseport); returns fd or negative error.
 * Host may be empty or "*" (any IPv4 address), "[v6]" or a name; port 0 picks a free port. */
int cairn_listen(const char *hostport, int reuseport);
/* The local address of a socket as "host:port" (e.g. the port picked for :0). */
int cairn_local_addr(int fd, char *out, size_t outsz);

#endif
