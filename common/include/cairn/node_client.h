/*
 * node_client.h — the storage node's administrative operations on the wire:
 * NODE_INFO, NODE_BAD_LIST and NODE_SCRUB_STATUS (wire.h opcodes 15-17).
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
 *                      i64 last_pass_end_ms, u64 pass_progress_fragments
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
 * fragments checked so far in the pass under way (0 between passes). */
typedef struct {
    uint64_t passes;
    uint64_t fragments_checked;
    uint64_t bytes_checked;
    uint64_t bad_found;
    int64_t last_pass_end_ms;
    uint64_t pass_progress_fragments;
} cairn_node_scrub_status_t;

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
 * holds more than cap entries. */
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

#endif
