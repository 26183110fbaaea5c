/*
 * meta_mpu.h — multipart uploads in the metadata service: the upload record,
 * the protocol of the multipart opcodes, and their blocking client calls.
 *
 * Model. CreateMultipartUpload stores an upload record under (bucket, upload
 * id); the gateway picks the id (16 random bytes, shown to clients as 32 hex
 * digits). Each UploadPart is stored like a small object: its data becomes
 * fragments under a fresh object id, and its record (cairn_obj_rec_t, etag =
 * MD5 hex of the part) is filed under (upload id, part number). Uploading a
 * part number again supersedes the earlier part, whose record goes to the
 * garbage list. CompleteMultipartUpload checks the client's list against the
 * stored parts and commits one object record naming the chosen parts
 * (cairn_obj_part_t, meta.h) — no data is copied; parts left out go to the
 * garbage list. AbortMultipartUpload moves every part to the garbage list.
 * Whenever parts go to the garbage list they are also returned, so the
 * gateway can delete their fragments at once and report them done
 * (cairn_meta_gc_done_many); the list covers a crash in between.
 *
 * Records returned by these calls are views into the caller's buffer (as in
 * meta.h): valid while that buffer is unchanged.
 *
 * Errors, besides those of meta.h: CAIRN_MPU_ENOUPLOAD (NoSuchUpload: no
 * such upload in this bucket, or it belongs to another key),
 * CAIRN_MPU_EPART (InvalidPart: a listed part is missing or its ETag
 * differs), CAIRN_MPU_EORDER (InvalidPartOrder: part numbers not strictly
 * ascending), CAIRN_MPU_ESMALL (EntityTooSmall: a part other than the last
 * is below the minimum), CAIRN_MPU_EPRECOND (a conditional write's
 * precondition failed: 412 PreconditionFailed), CAIRN_MPU_ENOKEY (If-Match
 * on a key that does not exist: 404 NoSuchKey).
 */
#ifndef CAIRN_META_MPU_H
#define CAIRN_META_MPU_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/meta.h"
#include "cairn/wire.h"

#define CAIRN_MPU_MAX_PARTS 10000
#define CAIRN_MPU_MIN_PART_SIZE (5ull << 20) /* S3: every part but the last */
#define CAIRN_MPU_MAX_PART_SIZE (5ull << 30)
#define CAIRN_MPU_MAX_LIST 1000             /* max-parts, max-uploads clamp */

enum {
    CAIRN_MPU_EBASE = CAIRN_EBASE + 300,
    CAIRN_MPU_ENOUPLOAD = -(CAIRN_MPU_EBASE + 1),
    CAIRN_MPU_EPART = -(CAIRN_MPU_EBASE + 2),
    CAIRN_MPU_EORDER = -(CAIRN_MPU_EBASE + 3),
    CAIRN_MPU_ESMALL = -(CAIRN_MPU_EBASE + 4),
    CAIRN_MPU_EPRECOND = -(CAIRN_MPU_EBASE + 5),
    CAIRN_MPU_ENOKEY = -(CAIRN_MPU_EBASE + 6),
};

/* Name of an error of this band, else cairn_strerror(err). Static. */
const char *cairn_mpu_strerror(int err);

enum {
    CAIRN_OP_META_MPU_CREATE = 160,     /* str bucket, id[16], bytes upload record -> empty */
    CAIRN_OP_META_MPU_GET = 161,        /* str bucket, id[16] -> bytes upload record */
    CAIRN_OP_META_MPU_PART_PUT = 162,   /* str bucket, id[16], u32 number, bytes part record
                                         * -> u8 had_old, [bytes old part record] */
    CAIRN_OP_META_MPU_COMPLETE = 163,   /* see cairn_mpu_complete_req_t -> see cairn_mpu_complete_t */
    CAIRN_OP_META_MPU_ABORT = 164,      /* str bucket, id[16] -> u32 n, n x bytes part record */
    CAIRN_OP_META_MPU_LIST_PARTS = 165, /* str bucket, id[16], u32 after, u32 max
                                         * -> bytes upload record, u32 n, n x (u32 number, bytes part record), u8 truncated */
    CAIRN_OP_META_MPU_LIST = 166,       /* see cairn_mpu_list_req_t -> see cairn_mpu_list_t */
    CAIRN_OP_META_GC_DONE_MANY = 167,   /* u32 n, n x oid[16] -> empty */
    CAIRN_OP_META_OBJ_PUT_IF = 168,     /* str bucket, bytes key, bytes record, u8 cond, bytes etag
                                         * -> as CAIRN_OP_META_OBJ_PUT */
};

/* An upload in progress. Encoding: u8 version (1), bytes key, bytes owner,
 * u64 initiated_ms, bytes content_type, bytes user_meta, bytes sys_meta. */
typedef struct {
    const char *key; size_t key_len;
    const char *owner; size_t owner_len;
    int64_t initiated_ms;
    const char *content_type; size_t content_type_len;
    const uint8_t *user_meta; size_t user_meta_len; /* as in cairn_obj_rec_t */
    const uint8_t *sys_meta; size_t sys_meta_len;
} cairn_mpu_rec_t;

void cairn_mpu_rec_encode(const cairn_mpu_rec_t *u, cairn_buf_t *out);
/* Views into p; CAIRN_EPROTO if malformed. */
int cairn_mpu_rec_decode(const uint8_t *p, size_t len, cairn_mpu_rec_t *u);

/* Upload ids as clients see them: 32 lower-case hex digits. */
void cairn_mpu_id_hex(const uint8_t id[16], char out[33]);
/* CAIRN_EINVAL unless s is exactly 32 hex digits. */
int cairn_mpu_id_parse(const char *s, size_t len, uint8_t id[16]);

/* ---- CompleteMultipartUpload ---- */

enum {
    CAIRN_MPU_COND_NONE = 0,
    CAIRN_MPU_COND_IF_NONE_MATCH = 1, /* If-None-Match: *  — the key must not exist */
    CAIRN_MPU_COND_IF_MATCH = 2,      /* If-Match: etag    — the key must exist with this ETag */
};

/* One part chosen by the client. etag: hex, without quotes. */
typedef struct {
    uint32_t number;
    const char *etag; size_t etag_len;
} cairn_mpu_sel_t;

/* Request encoding: str bucket, id[16], bytes key, oid[16], u64 mtime_ms,
 * u64 min_part_size, u8 cond, bytes cond_etag, u32 n, n x (u32 number, bytes etag). */
typedef struct {
    const char *key; size_t key_len;  /* must be the upload's key */
    uint8_t oid[16];                  /* fresh id of the new object version (its garbage-list key) */
    int64_t mtime_ms;
    uint64_t min_part_size;           /* CAIRN_MPU_MIN_PART_SIZE normally */
    int cond; const char *cond_etag; size_t cond_etag_len;
    const cairn_mpu_sel_t *sel; size_t nsel;
} cairn_mpu_complete_req_t;

/* Response encoding: bytes new record, u8 had_old, [bytes old record],
 * u32 n, n x bytes part record (parts not chosen, now on the garbage list). */
typedef struct {
    cairn_buf_t raw;            /* owns what the views point into */
    cairn_obj_rec_t rec;        /* the committed object */
    int had_old;
    cairn_obj_rec_t old;        /* the superseded version, when had_old */
    cairn_obj_rec_t *unused;    /* heap */
    size_t nunused;
} cairn_mpu_complete_t;

void cairn_mpu_complete_init(cairn_mpu_complete_t *c);
void cairn_mpu_complete_dispose(cairn_mpu_complete_t *c);

/* ---- listings ---- */

typedef struct {
    uint32_t number;
    cairn_obj_rec_t rec; /* views into the list's raw buffer */
} cairn_mpu_part_entry_t;

typedef struct {
    cairn_buf_t raw;
    cairn_mpu_rec_t upload;
    cairn_mpu_part_entry_t *parts; /* heap */
    size_t nparts;
    int truncated;
} cairn_mpu_parts_t;

void cairn_mpu_parts_init(cairn_mpu_parts_t *l);
void cairn_mpu_parts_dispose(cairn_mpu_parts_t *l);

/* Request encoding: str bucket, bytes prefix, bytes delimiter, bytes
 * key_marker, u8 has_id_marker, id_marker[16], u32 max. Uploads are listed
 * by key, then initiation time, then id. */
typedef struct {
    const char *bucket;
    const char *prefix; size_t prefix_len;
    const char *delimiter; size_t delimiter_len;
    const char *key_marker; size_t key_marker_len;
    int has_id_marker; uint8_t id_marker[16];
    uint32_t max;
} cairn_mpu_list_req_t;

typedef struct {
    uint8_t id[16];
    cairn_mpu_rec_t u;
} cairn_mpu_list_entry_t;

/* Response encoding: u32 n, n x (id[16], bytes upload record), u32 np,
 * np x bytes prefix, u8 truncated. */
typedef struct {
    cairn_buf_t raw;
    cairn_mpu_list_entry_t *uploads; /* heap */
    size_t n;
    struct { const char *p; size_t len; } *prefixes; /* heap */
    size_t nprefixes;
    int truncated;
} cairn_mpu_list_t;

void cairn_mpu_list_init(cairn_mpu_list_t *l);
void cairn_mpu_list_dispose(cairn_mpu_list_t *l);

/* ---- client calls (blocking; see meta.h) ---- */

int cairn_meta_mpu_create(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const uint8_t id[16],
                          const cairn_mpu_rec_t *u);
/* The upload record, views into scratch. */
int cairn_meta_mpu_get(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const uint8_t id[16],
                       cairn_buf_t *scratch, cairn_mpu_rec_t *out);
/* File a part. If the number was taken, *had_old = 1 and *old (views into
 * scratch) is the superseded part: delete its fragments, then GC_DONE. */
int cairn_meta_mpu_part_put(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const uint8_t id[16],
                            uint32_t number, const cairn_obj_rec_t *part, cairn_buf_t *scratch, int *had_old,
                            cairn_obj_rec_t *old);
int cairn_meta_mpu_complete(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const uint8_t id[16],
                            const cairn_mpu_complete_req_t *q, cairn_mpu_complete_t *out);
/* Abort: *parts (heap, views into scratch) are the parts now on the garbage list. */
int cairn_meta_mpu_abort(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const uint8_t id[16],
                         cairn_buf_t *scratch, cairn_obj_rec_t **parts, size_t *n);
/* Parts with number > after, at most max (clamped to CAIRN_MPU_MAX_LIST). */
int cairn_meta_mpu_list_parts(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const uint8_t id[16],
                              uint32_t after, uint32_t max, cairn_mpu_parts_t *out);
int cairn_meta_mpu_list(cairn_meta_client_t *c, uint64_t req_id, const cairn_mpu_list_req_t *q, cairn_mpu_list_t *out);
/* cairn_meta_obj_put (meta.h) under a write condition (CAIRN_MPU_COND_*,
 * checked atomically with the commit): CAIRN_MPU_EPRECOND, CAIRN_MPU_ENOKEY.
 * With CAIRN_MPU_COND_NONE it is cairn_meta_obj_put. */
int cairn_meta_obj_put_if(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const char *key,
                          size_t key_len, const cairn_obj_rec_t *rec, int cond, const char *etag, size_t etag_len,
                          cairn_buf_t *scratch, int *had_old, cairn_obj_rec_t *old);
/* The fragments of these garbage-list entries are gone (one log command). */
int cairn_meta_gc_done_many(cairn_meta_client_t *c, uint64_t req_id, const uint8_t (*oids)[16], size_t n);

/* ---- encodings shared with the service ---- */

void cairn_mpu_complete_req_encode(const char *bucket, const uint8_t id[16], const cairn_mpu_complete_req_t *q,
                                   cairn_buf_t *out);
void cairn_mpu_list_req_encode(const cairn_mpu_list_req_t *q, cairn_buf_t *out);
/* Views into p; q->bucket points to `bucket`. CAIRN_EPROTO / CAIRN_EINVAL as cairn_meta_list_req_decode. */
int cairn_mpu_list_req_decode(const uint8_t *p, size_t n, cairn_mpu_list_req_t *q,
                              char bucket[CAIRN_MAX_BUCKET_LEN + 1]);

#endif
