/*
 * frag_store.h — fragment files on one storage node, and the node's request
 * handlers (the CAIRN_OP_FRAG_* and NODE_INFO opcodes of wire.h).
 *
 * Layout under the data directory DIR:
 *   DIR/frags/ab/abcdef...(32 hex).i   one file per fragment (frag.h format),
 *                                       fanned out by the first oid byte
 *   DIR/tmp/                            writes in progress; emptied at open
 *
 * Durability: a put writes the whole file under DIR/tmp, verifies every
 * block checksum and the frame MAC, fsyncs the file, renames it into place
 * and fsyncs the fan-out directory (and DIR/frags when the fan-out directory
 * was new) before it answers. A crash at any point leaves either the old
 * fragment or the new one visible, never a partial file; leftovers in
 * DIR/tmp are removed by the next open. Putting a fragment that exists
 * replaces it.
 *
 * Reads verify the header checksum and each block's XXH3 before returning
 * bytes, so corruption on disk becomes CAIRN_ECORRUPT (logged) rather than
 * wrong data.
 *
 * Thread safety: every call may run on many threads at once (one per
 * connection). Concurrent puts of the same fragment each write their own
 * temporary file; the last rename wins.
 *
 * Request bodies (little-endian, buf.h encoding), all beyond wire.h's summary:
 *   FRAG_PUT    streamed fragment file; its length must equal
 *               cairn_frag_file_size(header) exactly -> empty
 *   FRAG_GET    oid[16] u8 index u64 first_stripe u32 nstripes
 *               -> header(64) then, for each stripe in range, its block and
 *               8-byte checksum exactly as on disk. The range is clamped to
 *               the fragment's stripes (nstripes 0, or a start past the end,
 *               returns the header alone); a response above
 *               CAIRN_WIRE_MAX_BODY is CAIRN_ETOOBIG: ask for fewer stripes.
 *   FRAG_DELETE oid[16] u8 index -> empty, CAIRN_ENOTFOUND if absent
 *   FRAG_STAT   oid[16] u8 index -> header(64) u64 file_size i64 mtime_ms
 *   FRAG_LIST   oid[16] u8 index u32 max -> u32 n, n x (oid[16] u8 index
 *               u64 file_size), u8 more. Fragments strictly after (oid,
 *               index) in (oid bytes, index) order; start from oid 0 index 0
 *               (only that exact key is skipped, and no real oid is all
 *               zeros). max is capped at CAIRN_FSTORE_LIST_MAX; more = 1 when
 *               fragments remain after the last one returned.
 *   NODE_INFO   empty -> str id (the node id in decimal), u64 used bytes,
 *               u64 free bytes (statvfs of DIR), u64 fragments (counted by
 *               walking DIR/frags: O(fragments))
 */
#ifndef CAIRN_FRAG_STORE_H
#define CAIRN_FRAG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/buf.h"
#include "cairn/frag.h"
#include "cairn/srv.h"

#define CAIRN_FSTORE_LIST_MAX 10000

typedef struct cairn_fstore_s cairn_fstore_t;

/* Open (creating DIR, DIR/frags and DIR/tmp as needed) and empty DIR/tmp.
 * node_id is reported by NODE_INFO. 0 or -errno. */
int cairn_fstore_open(const char *dir, uint32_t node_id, cairn_fstore_t **out);
void cairn_fstore_close(cairn_fstore_t *st);

/* Routes for cairn_srv_create(); pass the store as the handler data. */
extern const cairn_srv_route_t cairn_fstore_routes[];
extern const size_t cairn_fstore_nroutes;

/* Where a put reads the fragment file from: len bytes through read(), then
 * verify() once they are all read (for a request: the frame MAC). */
typedef struct {
    int (*read)(void *ctx, void *p, size_t n);
    int (*verify)(void *ctx);
    void *ctx;
    uint64_t len;
} cairn_fstore_src_t;

/*
 * Store one fragment file read from src. Checks the header, that len equals
 * the file size the header implies, every block's checksum as it arrives,
 * and finally src->verify(); only then makes the file visible.
 * Errors: CAIRN_EPROTO (insane header, wrong length), CAIRN_ECORRUPT (header
 * or block checksum mismatch: damaged in transit), src errors (CAIRN_EAUTH, transport), -errno from the
 * file system (-ENOSPC...). On error nothing changes on disk.
 * req_id only tags log lines.
 */
int cairn_fstore_put(cairn_fstore_t *st, const cairn_fstore_src_t *src, uint64_t req_id);

/*
 * Append the header and stripes [first, first + n) (clamped) of a fragment
 * to out, verified. Errors: CAIRN_ENOTFOUND, CAIRN_ECORRUPT (header, block
 * checksum or a file shorter than its header says; out is left as it was),
 * CAIRN_ETOOBIG (the answer would exceed CAIRN_WIRE_MAX_BODY), -errno.
 */
int cairn_fstore_get(cairn_fstore_t *st, const uint8_t oid[16], unsigned index, uint64_t first, uint32_t n,
                     cairn_buf_t *out, uint64_t req_id);

/* Remove a fragment durably (unlink, fsync of its directory).
 * CAIRN_ENOTFOUND if absent, -errno. */
int cairn_fstore_delete(cairn_fstore_t *st, const uint8_t oid[16], unsigned index);

/* Header, file size and mtime of a fragment. CAIRN_ENOTFOUND, CAIRN_ECORRUPT
 * (bad header), -errno. */
int cairn_fstore_stat(cairn_fstore_t *st, const uint8_t oid[16], unsigned index, cairn_frag_hdr_t *hdr,
                      uint64_t *file_size, int64_t *mtime_ms);

typedef struct {
    uint8_t oid[16];
    uint8_t index;
    uint64_t size; /* file size in bytes */
} cairn_fstore_ent_t;

/* Up to max fragments after (oid, index) in order into ents (room for max);
 * *n gets the count, *more whether any remain. Cost: reads the fan-out
 * directories it passes through, O(entries there). 0 or -errno. */
int cairn_fstore_list(cairn_fstore_t *st, const uint8_t oid[16], unsigned index, size_t max,
                      cairn_fstore_ent_t *ents, size_t *n, int *more);

/* Bytes used and free on the data file system, and the fragment count
 * (a full directory walk). 0 or -errno. */
int cairn_fstore_info(cairn_fstore_t *st, uint64_t *used, uint64_t *avail, uint64_t *fragments);

#endif
