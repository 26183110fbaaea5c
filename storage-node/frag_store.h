/*
 * frag_store.h — fragment files on one storage node, and the node's request
 * handlers (the CAIRN_OP_FRAG_* and NODE_INFO opcodes of wire.h).
 *
 * Layout under the data directory DIR:
 *   DIR/frags/ab/abcdef...(32 hex).i   one file per fragment (frag.h format),
 *                                       fanned out by the first oid byte
 *   DIR/tmp/                            writes in progress; emptied at open
 *   DIR/quarantine/<32 hex>.i.<ms>.<r>  fragments found bad (created on first
 *                                       use): r is the CAIRN_BAD_* reason,
 *                                       ms the wall-clock time it was found
 *   DIR/scrub.state                     the scrubber's progress (scrub.h)
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
 * Quarantine. A fragment found bad (a header that does not parse, a block
 * checksum mismatch, a file shorter or longer than its header implies, a
 * read that fails with EIO), whether by a read or by the scrubber, is
 * renamed into DIR/quarantine/ and put on the node's bad list, which
 * NODE_BAD_LIST reports so that a repair can rebuild it. The request that
 * finds the damage gets CAIRN_ECORRUPT; from then on FRAG_STAT answers
 * CAIRN_ENOTFOUND, FRAG_LIST and NODE_INFO leave it out, and FRAG_GET
 * answers CAIRN_ENOTFOUND when the quarantined header is bad, else serves
 * the stripes that still verify from the quarantined copy (CAIRN_ECORRUPT
 * for a range touching a bad one): an object damaged in different stripes
 * of more than m fragments stays readable stripe by stripe until repaired.
 * A FRAG_PUT of the same (oid, index), a repair, takes it off the bad list;
 * a FRAG_DELETE removes the quarantined copies too; otherwise they are
 * removed after CAIRN_SCRUB_KEEP_MS (7 days, see scrub.h).
 * The quarantine directory is the persistent bad list: one rename records
 * an entry atomically, and open rebuilds the list from the names (the
 * newest copy of each fragment is listed unless a live file exists, which
 * means it was put again). The rename happens only if the file at the path
 * is still the one found bad, so a put racing with the discovery is never
 * quarantined by mistake.
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
 *   NODE_BAD_LIST, NODE_SCRUB_STATUS: see cairn/node_client.h
 *   FRAG_DELETE of a quarantined fragment removes its copies and answers 0.
 */
#ifndef CAIRN_FRAG_STORE_H
#define CAIRN_FRAG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/buf.h"
#include "cairn/frag.h"
#include "cairn/node_client.h"
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

/* The data directory, as given to open. Valid until close. */
const char *cairn_fstore_dir(const cairn_fstore_t *st);

/* Paces the reads of cairn_fstore_verify: wait() runs before each read of
 * n bytes; a non-zero return abandons the verification with that value. */
typedef struct {
    int (*wait)(void *ctx, size_t n);
    void *ctx;
} cairn_fstore_pace_t;

/*
 * Re-read one fragment file from disk and verify all of it: header, file
 * size against the header, every block's XXH3. Reads go through the page
 * cache without growing it: pages that were cached before are used and
 * kept, pages this read brought in are dropped again (POSIX_FADV_DONTNEED),
 * so client reads keep their hot pages. A bad fragment is quarantined (see
 * above). *bytes gets the bytes read, *reason the CAIRN_BAD_* found.
 * Returns 0 (intact), CAIRN_ECORRUPT (bad, quarantined), CAIRN_ENOTFOUND
 * (gone meanwhile), the pace's error, or -errno (could not open or read for
 * a reason that says nothing about the file, e.g. -EMFILE).
 */
int cairn_fstore_verify(cairn_fstore_t *st, const uint8_t oid[16], unsigned index, const cairn_fstore_pace_t *pace,
                        uint64_t *bytes, unsigned *reason);

/* The first max bad-list entries in (oid, index) order: *v is a new array
 * (the caller frees it; NULL when the list is empty) holding *n of them,
 * *more says whether any were left out. O(entries log entries). */
void cairn_fstore_bad_list(cairn_fstore_t *st, size_t max, cairn_node_bad_t **v, size_t *n, int *more);

/* Remove quarantined copies found before cutoff_ms (wall clock), with
 * their bad-list entries. Returns how many were removed. */
size_t cairn_fstore_expire_quarantine(cairn_fstore_t *st, int64_t cutoff_ms);

/* The scrubber whose counters NODE_SCRUB_STATUS reports (NULL: none, the
 * answer is all zeros). Borrowed: set it back to NULL before destroying the
 * scrubber, with no request running (after cairn_srv_destroy). */
struct cairn_scrub_s;
void cairn_fstore_set_scrub(cairn_fstore_t *st, struct cairn_scrub_s *sc);

#endif
