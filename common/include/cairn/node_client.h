/*
 * node_client.h — the storage node's administrative operations on the wire:
 * NODE_INFO, NODE_BAD_LIST, NODE_SCRUB_STATUS and NODE_SCRUB_NOW (wire.h
 * opcodes 15-18), and the request body of the operations on one fragment.
 *
 * One place holds each response format: the node encodes with the
 * *_encode functions, and the admin tool and tests decode with *_decode or
 * call the node with the blocking cairn_node_* calls. Decoding never
 * allocates; the caller passes room for the entries it asked for.
 *
 * Response bodies (little-endian, buf.h encoding):
 *   NODE_INFO          -> str id, u64 used, u64 free, u64 fragments
 *   NODE_BAD_LIST      u32 max -> u32 n, n x (oid[16] u8 index u8 reason
 *                      i64 found_ms), u8 more. The node's quarantined
 *                      fragments still waiting for a repair, in (oid, index)
 *                      order, at most max (capped at CAIRN_NODE_BAD_LIST_MAX);
 *                      more = 1 when entries were left out.
 *   NODE_SCRUB_STATUS  empty -> u64 passes, u64 fragments_checked,
 *                      u64 bytes_checked, u64 bad_found,
 *                      i64 last_pass_end_ms, u64 pass_progress_fragments,
 *                      u64 now_requested, u64 now_done. A node that predates
 *                      NODE_SCRUB_NOW sends the first six only (48 bytes);
 *                      the decoder accepts both and gives 0 for the others.
 *   NODE_SCRUB_NOW     u32 rate_mb -> empty. The node's scrubber verifies
 *                      every fragment it holds again, starting at once: a
 *                      pass starts now or, when one is under way, that pass
 *                      goes on to its end and the next one starts right
 *                      after it, up to where the first one was when the
 *                      request arrived (or further). Until every request so
 *                      far is served, the scrubber reads at most rate_mb
 *                      MB/s (10^6 bytes; 0: the node's configured [cluster]
 *                      scrub_rate_mb; the latest request's rate wins). Runs
 *                      even where periodic scrubbing is off, but there
 *                      rate_mb 0 is CAIRN_EINVAL (no configured rate).
 *                      CAIRN_EUNAVAIL when the node has no scrubber.
 *
 * Waiting for a requested pass. now_requested counts the NODE_SCRUB_NOW
 * requests the node accepted since it started; now_done is the highest
 * count n such that every fragment the node holds has been verified since
 * request n arrived (it may lag behind; it never runs ahead). So: send
 * NODE_SCRUB_NOW, then read the status once, R = its now_requested (this
 * request or a later one); everything was verified after the request as
 * soon as a status shows now_done >= R. A status with now_requested < R
 * (or counters going backwards) means the node restarted and forgot the
 * request: send it again. The counters, not clocks, decide, so the
 * caller's and the node's clocks need not agree.
 */
#ifndef CAIRN_NODE_CLIENT_H
#define CAIRN_NODE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/buf.h"
#include "cairn/wire.h"

/* Entries one NODE_BAD_LIST answer carries at most (26 bytes each: 2.6 MB). */
#define CAIRN_NODE_BAD_LIST_MAX 100000
/* Size of one encoded bad-list entry. */
#define CAIRN_NODE_BAD_ENTRY_SIZE 26

/* Why a fragment was found bad. */
enum {
    CAIRN_BAD_HEADER = 1, /* header checksum, magic or sanity check failed */
    CAIRN_BAD_BLOCK = 2,  /* a block's XXH3-64 does not match */
    CAIRN_BAD_SIZE = 3,   /* the file is shorter or longer than its header implies */
    CAIRN_BAD_IO = 4,     /* the disk failed to read it (EIO) */
};

typedef struct {
    uint8_t oid[16];
    uint8_t index;
    uint8_t reason;   /* CAIRN_BAD_* */
    int64_t found_ms; /* wall clock (ms since the epoch) when it was quarantined */
} cairn_node_bad_t;

/* Counters since the node started, except last_pass_end_ms, which survives
 * restarts (0: no pass ever finished). pass_progress_fragments counts the
 * fragments checked so far in the pass under way (0 between passes).
 * now_requested and now_done: see "Waiting for a requested pass" above. */
typedef struct {
    uint64_t passes;
    uint64_t fragments_checked;
    uint64_t bytes_checked;
    uint64_t bad_found;
    int64_t last_pass_end_ms;
    uint64_t pass_progress_fragments;
    uint64_t now_requested;
    uint64_t now_done;
} cairn_node_scrub_status_t;

/* Encoded NODE_SCRUB_STATUS body: now, and from a node without NODE_SCRUB_NOW. */
#define CAIRN_NODE_SCRUB_STATUS_SIZE 64
#define CAIRN_NODE_SCRUB_STATUS_SIZE_V1 48

typedef struct {
    uint32_t id;        /* the node id */
    uint64_t used;      /* bytes used on the data file system */
    uint64_t avail;     /* bytes free for the node */
    uint64_t fragments; /* fragment files served */
} cairn_node_info_t;

/* "header", "block", "size", "io", or "unknown". Static string. */
const char *cairn_node_bad_reason(unsigned reason);

/* Encoders: append a response body to out. */
void cairn_node_info_encode(cairn_buf_t *out, const cairn_node_info_t *info);
void cairn_node_bad_list_encode(cairn_buf_t *out, const cairn_node_bad_t *v, size_t n, int more);
void cairn_node_scrub_status_encode(cairn_buf_t *out, const cairn_node_scrub_status_t *s);

/* Decoders of a response body. CAIRN_EPROTO if it is malformed (short,
 * trailing bytes, an id that is not a decimal u32); bad_list also when it
 * holds more than cap entries; scrub_status unless it is one of the two
 * sizes above. */
int cairn_node_info_decode(const uint8_t *p, size_t len, cairn_node_info_t *info);
int cairn_node_bad_list_decode(const uint8_t *p, size_t len, cairn_node_bad_t *v, size_t cap, size_t *n,
                               int *more);
int cairn_node_scrub_status_decode(const uint8_t *p, size_t len, cairn_node_scrub_status_t *s);

/*
 * Blocking calls on a connection to a node (wire.h cairn_conn_call rules).
 * Return a transport error, else the node's status if not 0, else the
 * decoder's result. cairn_node_bad_list asks for at most cap entries
 * (cap <= CAIRN_NODE_BAD_LIST_MAX) into v.
 */
int cairn_node_info(cairn_conn_t *c, cairn_node_info_t *info);
int cairn_node_bad_list(cairn_conn_t *c, cairn_node_bad_t *v, size_t cap, size_t *n, int *more);
int cairn_node_scrub_status(cairn_conn_t *c, cairn_node_scrub_status_t *s);
/* NODE_SCRUB_NOW with rate_mb (0: the node's configured rate). A node that
 * predates it answers CAIRN_EPROTO (unknown opcode). */
int cairn_node_scrub_now(cairn_conn_t *c, uint32_t rate_mb);

/*
 * The request body of an operation on one fragment, the one encoder of it:
 *   FRAG_DELETE, FRAG_STAT  oid[16] u8 index                      (17 bytes)
 *   FRAG_GET                oid[16] u8 index u64 first_stripe u32 nstripes
 *                                                                (29 bytes)
 * Writes the body of op (one of the three; anything else asserts) to out
 * and returns its length; first_stripe and nstripes matter to FRAG_GET only.
 */
#define CAIRN_NODE_FRAG_REQ_MAX 29
size_t cairn_node_frag_req_encode(uint8_t out[CAIRN_NODE_FRAG_REQ_MAX], uint16_t op, const uint8_t oid[16],
                                  unsigned index, uint64_t first_stripe, uint32_t nstripes);

#endif
