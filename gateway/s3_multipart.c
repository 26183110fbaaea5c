/*
 * s3_multipart.c — multipart uploads (worker side): CreateMultipartUpload,
 * UploadPart, CompleteMultipartUpload, AbortMultipartUpload, ListParts,
 * ListMultipartUploads; and the data path of multipart objects (reading a
 * byte range across parts, deleting every part's fragments).
 *
 * A part is written exactly like an object (gw_store_put: its own object
 * id, k+m fragments, k+1 durable acks) and then filed with the metadata
 * tier under (upload, part number). Complete sends the client's part list;
 * the metadata tier checks it and commits one record naming the parts, in
 * one log command (cairn/meta_mpu.h), so the object appears whole or not at
 * all and no byte is copied. Whatever the tier moves to its garbage list
 * (superseded parts, parts left out of the list, an aborted upload's parts,
 * the object version replaced) comes back in the answer, and its fragments
 * are deleted here at once; if that fails, the garbage list keeps them.
 *
 * Outcome unknown: when the tier does not answer in time (CAIRN_ETIMEOUT)
 * a part may or may not have been filed, so its fragments are kept (the
 * garbage collector owns orphans); on any definite refusal they are deleted.
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/meta_mpu.h"
#include "cairn/xml.h"
#include "s3_ext.h"

#define READ_CHUNK_BYTES (4u << 20)
#define PART_COPY_MAX (1ull << 30) /* a copied part is read into memory whole */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void s3_mpu_error(gw_job_t *job, int rc)
{
    switch (rc) {
    case CAIRN_MPU_ENOUPLOAD:
        s3_error(job, "NoSuchUpload",
                 "The specified upload does not exist. The upload ID may be invalid, or the upload may have been "
                 "aborted or completed.");
        break;
    case CAIRN_MPU_EPART:
        s3_error(job, "InvalidPart",
                 "One or more of the specified parts could not be found. The part may not have been uploaded, or "
                 "the specified entity tag may not match the part's entity tag.");
        break;
    case CAIRN_MPU_EORDER:
        s3_error(job, "InvalidPartOrder", "The list of parts was not in ascending order. Parts must be ordered by "
                                          "part number.");
        break;
    case CAIRN_MPU_ESMALL:
        s3_error(job, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.");
        break;
    case CAIRN_MPU_EPRECOND:
        s3_error(job, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
        break;
    case CAIRN_MPU_ENOKEY:
        s3_error(job, "NoSuchKey", NULL);
        break;
    default:
        s3_error_from(job, rc);
        break;
    }
}

/* ---- data path of multipart objects ---- */

int gw_part_locate(gw_job_t *job, cairn_obj_rec_t *part, uint64_t *base)
{
    const cairn_obj_rec_t *r = &job->rec;
    if (job->pos < job->part_cur.base || job->part_cur.off > r->parts_len) {
        job->part_cur.base = 0;
        job->part_cur.off = 0;
    }
    for (;;) {
        size_t off = job->part_cur.off;
        cairn_obj_part_t p;
        if (!cairn_obj_part_next(r->parts, r->parts_len, &off, &p))
            return CAIRN_EINVAL;
        if (job->pos < job->part_cur.base + p.size) {
            cairn_obj_part_rec(&p, part);
            *base = job->part_cur.base;
            return 0;
        }
        job->part_cur.base += p.size;
        job->part_cur.off = off;
    }
}

int gw_store_delete_parts(gw_worker_t *w, uint64_t req_id, const cairn_obj_rec_t *rec)
{
    /* rec may be a view into w->scratch, which the deletes below reuse: copy the list first. */
    uint8_t *parts = cairn_malloc(rec->parts_len ? rec->parts_len : 1);
    size_t len = rec->parts_len, off = 0;
    memcpy(parts, rec->parts, len);
    cairn_obj_part_t p;
    int failed = 0;
    while (cairn_obj_part_next(parts, len, &off, &p)) {
        cairn_obj_rec_t pr;
        cairn_obj_part_rec(&p, &pr);
        if (gw_store_delete(w, req_id, &pr) != 0)
            failed = 1;
    }
    free(parts);
    return failed ? CAIRN_EUNAVAIL : 0;
}

/* Read [off, off+len) of a single-part record (its own fragments). */
static int read_single(gw_worker_t *w, uint64_t req_id, const cairn_obj_rec_t *r, uint64_t off, uint64_t len,
                       uint8_t *out, uint8_t **tmp, size_t *tmp_cap)
{
    if (r->is_inline) {
        memcpy(out, r->inline_data + off, (size_t)len);
        return 0;
    }
    uint64_t sb = (uint64_t)r->k * r->block_size;
    uint64_t per = READ_CHUNK_BYTES / sb ? READ_CHUNK_BYTES / sb : 1;
    while (len > 0) {
        uint64_t s = off / sb, last = (off + len - 1) / sb;
        uint32_t n = (uint32_t)(last - s + 1 < per ? last - s + 1 : per);
        size_t need = (size_t)(n * sb);
        if (*tmp_cap < need) {
            free(*tmp);
            *tmp = cairn_malloc(need);
            *tmp_cap = need;
        }
        int rc = gw_store_read(w, req_id, r, s, n, *tmp);
        if (rc != 0)
            return rc;
        uint64_t cbase = s * sb, cend = (s + n) * sb;
        uint64_t stop = cend < off + len ? cend : off + len;
        memcpy(out, *tmp + (off - cbase), (size_t)(stop - off));
        out += stop - off;
        len -= stop - off;
        off = stop;
    }
    return 0;
}

int gw_obj_read(gw_worker_t *w, uint64_t req_id, const cairn_obj_rec_t *rec, uint64_t off, uint64_t len,
                uint8_t *out)
{
    uint8_t *tmp = NULL;
    size_t cap = 0;
    int rc = 0;
    if (off + len > rec->size || off + len < off)
        return CAIRN_EINVAL;
    if (rec->nparts == 0) {
        if (len > 0)
            rc = read_single(w, req_id, rec, off, len, out, &tmp, &cap);
        free(tmp);
        return rc;
    }
    size_t poff = 0;
    uint64_t base = 0;
    cairn_obj_part_t p;
    while (rc == 0 && len > 0 && cairn_obj_part_next(rec->parts, rec->parts_len, &poff, &p)) {
        if (off < base + p.size) {
            cairn_obj_rec_t pr;
            cairn_obj_part_rec(&p, &pr);
            uint64_t a = off - base, n = p.size - a < len ? p.size - a : len;
            rc = read_single(w, req_id, &pr, a, n, out, &tmp, &cap);
            out += n;
            off += n;
            len -= n;
        }
        base += p.size;
    }
    free(tmp);
    return rc == 0 && len > 0 ? CAIRN_ECORRUPT : rc;
}

void s3_free_recs(gw_worker_t *w, uint64_t req_id, const cairn_obj_rec_t *recs, size_t n)
{
    uint8_t(*done)[16] = cairn_malloc((n ? n : 1) * 16);
    size_t nd = 0;
    for (size_t i = 0; i < n; i++)
        if (gw_store_delete(w, req_id, &recs[i]) == 0)
            memcpy(done[nd++], recs[i].oid, 16);
    for (size_t i = 0; i < nd; i += 1000) {
        size_t m = nd - i < 1000 ? nd - i : 1000;
        int rc = cairn_meta_gc_done_many(&w->meta, req_id, done + i, m);
        if (rc != 0)
            cairn_log(CAIRN_LOG_WARN, req_id, "gc done: %s; entries stay on the garbage list", cairn_strerror(rc));
    }
    free(done);
}

/* ---- request helpers ---- */

/* The uploadId parameter; NoSuchUpload set when absent or malformed. */
static int upload_id(gw_job_t *job, uint8_t id[16])
{
    char v[64];
    size_t n = 0;
    if (cairn_query_get(job->query, job->query_len, "uploadId", v, sizeof v, &n) != 0 ||
        cairn_mpu_id_parse(v, n, id) != 0) {
        s3_mpu_error(job, CAIRN_MPU_ENOUPLOAD);
        return -1;
    }
    return 0;
}

/* A decimal query parameter in [lo, hi]; def when absent. -1 (InvalidArgument) when malformed. */
static int uint_param(gw_job_t *job, const char *name, long lo, long hi, long def, long *out, const char *msg)
{
    char v[32];
    size_t n = 0;
    int rc = cairn_query_get(job->query, job->query_len, name, v, sizeof v, &n);
    if (rc == CAIRN_ENOTFOUND) {
        *out = def;
        return 0;
    }
    char *end;
    long x = rc == 0 && n > 0 ? strtol(v, &end, 10) : -1;
    if (rc != 0 || n == 0 || *end != '\0' || x < lo || x > hi) {
        s3_error(job, "InvalidArgument", "%s", msg);
        return -1;
    }
    *out = x;
    return 0;
}

/* The upload exists in this bucket and belongs to the request's key. */
static int upload_check(gw_worker_t *w, gw_job_t *job, const uint8_t id[16], cairn_mpu_rec_t *u)
{
    int rc = cairn_meta_mpu_get(&w->meta, job->req_id, job->bucket, id, &w->scratch, u);
    if (rc == 0 && (u->key_len != job->key_len || memcmp(u->key, job->key, job->key_len) != 0))
        rc = CAIRN_MPU_ENOUPLOAD;
    if (rc != 0) {
        s3_mpu_error(job, rc);
        return -1;
    }
    return 0;
}

/* ---- CreateMultipartUpload ---- */

/* The checksum type of a new upload (x-amz-checksum-type, with S3's
 * default per algorithm): "FULL_OBJECT" (CRCs: the whole object's CRC,
 * combined at Complete; the only type of CRC64NVME), "COMPOSITE" (the
 * checksum of the parts' checksums; CRC32, CRC32C, SHA1, SHA256), "" when
 * the upload has no algorithm. NULL with InvalidRequest set when the
 * request asks for a combination S3 refuses. */
static const char *checksum_type(gw_job_t *job, cairn_ck_alg_t alg)
{
    const cairn_sigv4_header_t *h = s3_header(job, "x-amz-checksum-type");
    int full = h && h->value_len == 11 && memcmp(h->value, "FULL_OBJECT", 11) == 0;
    int composite = h && h->value_len == 9 && memcmp(h->value, "COMPOSITE", 9) == 0;
    const char *why = NULL;
    if (h && !full && !composite)
        why = "The x-amz-checksum-type header is invalid.";
    else if (h && alg == CAIRN_CK_NONE)
        why = "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.";
    else if (full && (alg == CAIRN_CK_SHA1 || alg == CAIRN_CK_SHA256))
        why = "The FULL_OBJECT checksum type cannot be used with the SHA1 or SHA256 checksum algorithm.";
    else if (composite && alg == CAIRN_CK_CRC64NVME)
        why = "The COMPOSITE checksum type cannot be used with the CRC64NVME checksum algorithm.";
    if (why) {
        s3_error(job, "InvalidRequest", "%s", why);
        return NULL;
    }
    if (alg == CAIRN_CK_NONE)
        return "";
    return full || alg == CAIRN_CK_CRC64NVME ? "FULL_OBJECT" : "COMPOSITE";
}

static void mpu_create(gw_worker_t *w, gw_job_t *job)
{
    if (s3_auth(w, job, NULL) != 0)
        return;
    const cairn_sigv4_header_t *h = s3_header(job, "x-amz-acl");
    if (h && !(h->value_len == 7 && memcmp(h->value, "private", 7) == 0)) {
        s3_error(job, "NotImplemented", "Only the canned ACL private is supported.");
        return;
    }
    s3_body_t *sb = cairn_calloc(1, sizeof *sb);
    cairn_buf_t um, sys;
    cairn_buf_init(&um);
    cairn_buf_init(&sys);
    if (s3_body_stored_headers(job, sb) != 0 || s3_user_meta(job, &um) != 0)
        goto out;
    cairn_buf_append(&sys, sb->sys, sb->sys_len);
    /* The checksum the parts will carry: Complete derives the object's
     * COMPOSITE checksum from theirs (metadata/fsm_mpu.c). */
    cairn_ck_alg_t alg = CAIRN_CK_NONE;
    if ((h = s3_header(job, "x-amz-checksum-algorithm"))) {
        alg = cairn_ck_from_name(h->value, h->value_len);
        if (alg == CAIRN_CK_NONE) {
            s3_error(job, "InvalidRequest", "Checksum algorithm provided is unsupported.");
            goto out;
        }
        const char *name = cairn_ck_name(alg);
        cairn_obj_meta_add(&sys, "x-amz-checksum-algorithm", 24, name, strlen(name));
    }
    const char *type = checksum_type(job, alg);
    if (type == NULL)
        goto out;
    if (*type)
        cairn_obj_meta_add(&sys, "x-amz-checksum-type", 19, type, strlen(type));
    h = s3_header(job, "content-type");
    uint8_t id[16];
    RAND_bytes(id, sizeof id);
    cairn_mpu_rec_t u = {.key = job->key, .key_len = job->key_len, .owner = job->owner,
                         .owner_len = strlen(job->owner), .initiated_ms = wall_ms(),
                         .content_type = h ? h->value : "binary/octet-stream",
                         .content_type_len = h ? h->value_len : strlen("binary/octet-stream"),
                         .user_meta = um.base, .user_meta_len = um.len, .sys_meta = sys.base,
                         .sys_meta_len = sys.len};
    int rc = cairn_meta_mpu_create(&w->meta, job->req_id, job->bucket, id, &u);
    if (rc != 0) {
        s3_mpu_error(job, rc);
        goto out;
    }
    char hex[33];
    cairn_mpu_id_hex(id, hex);
    cairn_buf_t *b = &job->resp_body;
    cairn_xml_begin(b);
    cairn_xml_open_ns(b, "InitiateMultipartUploadResult", S3_NS);
    cairn_xml_elem(b, "Bucket", job->bucket, strlen(job->bucket));
    cairn_xml_elem(b, "Key", job->key, job->key_len);
    cairn_xml_elem(b, "UploadId", hex, 32);
    cairn_xml_close(b, "InitiateMultipartUploadResult");
    if (alg != CAIRN_CK_NONE) {
        gw_job_header(job, "x-amz-checksum-algorithm", "%s", cairn_ck_name(alg));
        gw_job_header(job, "x-amz-checksum-type", "%s", type);
    }
    job->status = 200;
out:
    cairn_buf_dispose(&um);
    cairn_buf_dispose(&sys);
    free(sb);
}

/* ---- UploadPart, UploadPartCopy ---- */

/* File a part whose fragments res describes; on a definite refusal its
 * fragments are deleted. sb (may be NULL): the checksum kept with the part.
 * 0 with *part filled, or an S3 error set and -1. */
static int commit_part(gw_worker_t *w, gw_job_t *job, const uint8_t id[16], uint32_t number,
                       const gw_put_result_t *res, uint64_t size, const s3_body_t *sb, cairn_obj_rec_t *part)
{
    memset(part, 0, sizeof *part);
    part->size = size;
    part->mtime_ms = wall_ms();
    part->k = (uint8_t)w->gw->cfg.k;
    part->m = (uint8_t)w->gw->cfg.m;
    part->block_size = w->gw->cfg.block_size;
    part->content_type = "";
    memcpy(part->oid, res->oid, 16);
    memcpy(part->nodes, res->nodes, sizeof part->nodes);
    cairn_hex(res->md5, 16, part->etag);
    cairn_buf_t ck;
    cairn_buf_init(&ck);
    if (sb && sb->ck_alg != CAIRN_CK_NONE) {
        const char *hn = cairn_ck_header(sb->ck_alg);
        cairn_obj_meta_add(&ck, hn, strlen(hn), sb->ck_value, strlen(sb->ck_value));
        part->sys_meta = ck.base;
        part->sys_meta_len = ck.len;
    }
    int had_old = 0;
    cairn_obj_rec_t old;
    int rc = cairn_meta_mpu_part_put(&w->meta, job->req_id, job->bucket, id, number, part, &w->scratch, &had_old,
                                     &old);
    part->sys_meta = NULL;
    part->sys_meta_len = 0;
    cairn_buf_dispose(&ck);
    if (rc != 0) {
        cairn_log(CAIRN_LOG_WARN, job->req_id, "part %u: commit failed: %s", number, cairn_mpu_strerror(rc));
        if (rc != CAIRN_ETIMEOUT)
            gw_store_delete(w, job->req_id, part);
        s3_mpu_error(job, rc);
        return -1;
    }
    if (had_old)
        s3_drop_version(w, job, &old);
    return 0;
}

static void upload_part(gw_worker_t *w, gw_job_t *job)
{
    s3_body_t *sb = cairn_calloc(1, sizeof *sb);
    long number;
    uint8_t id[16];
    cairn_mpu_rec_t u;
    if (job->body.len > CAIRN_MPU_MAX_PART_SIZE) {
        s3_error(job, "EntityTooLarge", NULL);
        goto out;
    }
    if (s3_body_prepare(w, job, sb) != 0)
        goto out;
    if (uint_param(job, "partNumber", 1, CAIRN_MPU_MAX_PARTS, 0, &number,
                   "Part number must be an integer between 1 and 10000, inclusive") != 0 ||
        upload_id(job, id) != 0 || upload_check(w, job, id, &u) != 0)
        goto out;

    gw_put_result_t res;
    int rc = gw_store_put(w, job, sb->check_sha, &res);
    if (rc != 0) {
        if (!gw_job_cancelled(job))
            s3_error_from(job, rc);
        goto out;
    }
    const char *bad = s3_body_verify(job, sb, &res);
    if (bad) {
        cairn_obj_rec_t tmp = {.k = (uint8_t)w->gw->cfg.k, .m = (uint8_t)w->gw->cfg.m};
        memcpy(tmp.oid, res.oid, 16);
        memcpy(tmp.nodes, res.nodes, sizeof tmp.nodes);
        gw_store_delete(w, job->req_id, &tmp);
        s3_error(job, bad, NULL);
        goto out;
    }
    cairn_obj_rec_t part;
    if (commit_part(w, job, id, (uint32_t)number, &res, job->body.len, sb, &part) != 0)
        goto out;
    job->status = 200;
    gw_job_header(job, "etag", "\"%s\"", part.etag);
    if (sb->ck_alg != CAIRN_CK_NONE)
        gw_job_header(job, cairn_ck_header(sb->ck_alg), "%s", sb->ck_value);
out:
    free(sb);
}

/* x-amz-copy-source-range "bytes=first-last" within size; whole object when absent. */
static int copy_range(gw_job_t *job, uint64_t size, uint64_t *off, uint64_t *len)
{
    const cairn_sigv4_header_t *h = s3_header(job, "x-amz-copy-source-range");
    *off = 0;
    *len = size;
    if (h == NULL)
        return 0;
    char v[64];
    unsigned long long a, b;
    int n = 0;
    if (h->value_len >= sizeof v)
        goto bad;
    memcpy(v, h->value, h->value_len);
    v[h->value_len] = '\0';
    if (sscanf(v, "bytes=%llu-%llu%n", &a, &b, &n) != 2 || (size_t)n != h->value_len || b < a)
        goto bad;
    if (b >= size) {
        s3_error(job, "InvalidArgument", "Range specified is not valid for source object of size: %llu",
                 (unsigned long long)size);
        return -1;
    }
    *off = a;
    *len = b - a + 1;
    return 0;
bad:
    s3_error(job, "InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last where "
                                     "first and last are the zero-based offsets of the first and last bytes to copy");
    return -1;
}

static void upload_part_copy(gw_worker_t *w, gw_job_t *job)
{
    long number;
    uint8_t id[16];
    cairn_mpu_rec_t u;
    cairn_buf_t sbuf;
    cairn_buf_init(&sbuf);
    cairn_obj_rec_t src;
    uint64_t off, len;
    int same;
    if (s3_auth(w, job, NULL) != 0 ||
        uint_param(job, "partNumber", 1, CAIRN_MPU_MAX_PARTS, 0, &number,
                   "Part number must be an integer between 1 and 10000, inclusive") != 0 ||
        upload_id(job, id) != 0 || upload_check(w, job, id, &u) != 0 ||
        s3_copy_source(w, job, &sbuf, &src, &same) != 0 || copy_range(job, src.size, &off, &len) != 0)
        goto out;
    if (len > PART_COPY_MAX) {
        s3_error(job, "EntityTooLarge", "A copied part may be at most %llu bytes here.", (unsigned long long)PART_COPY_MAX);
        goto out;
    }
    gw_put_result_t res;
    int rc = s3_copy_store(w, job, &src, off, len, &res);
    if (rc != 0) {
        s3_error_from(job, rc);
        goto out;
    }
    cairn_obj_rec_t part;
    if (commit_part(w, job, id, (uint32_t)number, &res, len, NULL, &part) != 0)
        goto out;
    char t[64];
    s3_time_iso(part.mtime_ms, t);
    cairn_buf_t *b = &job->resp_body;
    cairn_xml_begin(b);
    cairn_xml_open_ns(b, "CopyPartResult", S3_NS);
    cairn_xml_elem(b, "LastModified", t, strlen(t));
    cairn_xml_elemf(b, "ETag", "\"%s\"", part.etag);
    cairn_xml_close(b, "CopyPartResult");
    job->status = 200;
out:
    cairn_buf_dispose(&sbuf);
}

/* ---- CompleteMultipartUpload ---- */

static void mpu_complete(gw_worker_t *w, gw_job_t *job)
{
    uint8_t sha[32];
    if (gw_job_body_acquire(job) != 0) {
        s3_error(job, "InternalError", "request cancelled");
        return;
    }
    EVP_Digest(job->body.base, job->body.len, sha, NULL, EVP_sha256(), NULL);
    gw_job_body_release(job);
    if (s3_auth(w, job, sha) != 0)
        return;
    uint8_t id[16];
    if (upload_id(job, id) != 0)
        return;
    if (job->body.len > S3_MAX_XML_BODY) {
        s3_error(job, "MalformedXML", NULL);
        return;
    }
    s3_parts_in_t pi;
    memset(&pi, 0, sizeof pi);
    cairn_buf_init(&pi.etags);
    cairn_mpu_complete_t res;
    cairn_mpu_complete_init(&res);
    if (gw_job_body_acquire(job) != 0) {
        s3_error(job, "InternalError", "request cancelled");
        goto out;
    }
    int rc = s3_xml_complete_parse(job->body.base, job->body.len, &pi);
    gw_job_body_release(job);
    if (rc == -2) {
        s3_error(job, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
        goto out;
    }
    if (rc != 0) {
        s3_error(job, "MalformedXML", NULL);
        goto out;
    }

    char cond_etag[80];
    cairn_mpu_complete_req_t q = {.key = job->key, .key_len = job->key_len, .mtime_ms = wall_ms(),
                                  .min_part_size = CAIRN_MPU_MIN_PART_SIZE, .sel = pi.sel, .nsel = pi.n,
                                  .cond_etag = cond_etag};
    if (s3_write_cond(job, &q.cond, cond_etag, &q.cond_etag_len) != 0)
        goto out;
    RAND_bytes(q.oid, sizeof q.oid);
    rc = cairn_meta_mpu_complete(&w->meta, job->req_id, job->bucket, id, &q, &res);
    if (rc != 0) {
        s3_mpu_error(job, rc);
        goto out;
    }
    const cairn_sigv4_header_t *host = s3_header(job, "host");
    cairn_buf_t *b = &job->resp_body;
    cairn_xml_begin(b);
    cairn_xml_open_ns(b, "CompleteMultipartUploadResult", S3_NS);
    cairn_xml_open(b, "Location");
    cairn_buf_appendf(b, "%s://", job->thread->gw->cfg.gw_tls_cert[0] ? "https" : "http");
    if (host)
        cairn_xml_escape(b, host->value, host->value_len);
    cairn_xml_escape(b, job->path, job->path_len);
    cairn_xml_close(b, "Location");
    cairn_xml_elem(b, "Bucket", job->bucket, strlen(job->bucket));
    cairn_xml_elem(b, "Key", job->key, job->key_len);
    cairn_xml_elemf(b, "ETag", "\"%s\"", res.rec.etag);
    size_t off = 0, nl, vl;
    const char *n, *v;
    while (cairn_obj_meta_next(res.rec.sys_meta, res.rec.sys_meta_len, &off, &n, &nl, &v, &vl)) {
        cairn_ck_alg_t a = cairn_ck_from_header(n, nl);
        if (a != CAIRN_CK_NONE) {
            char tag[32];
            snprintf(tag, sizeof tag, "Checksum%s", cairn_ck_name(a));
            cairn_xml_elem(b, tag, v, vl);
        }
    }
    cairn_xml_close(b, "CompleteMultipartUploadResult");
    job->status = 200;
    if (res.nunused)
        s3_free_recs(w, job->req_id, res.unused, res.nunused);
    if (res.had_old)
        s3_drop_version(w, job, &res.old);
out:
    s3_parts_in_dispose(&pi);
    cairn_mpu_complete_dispose(&res);
}

/* ---- AbortMultipartUpload ---- */

static void mpu_abort(gw_worker_t *w, gw_job_t *job)
{
    if (s3_auth(w, job, NULL) != 0)
        return;
    uint8_t id[16];
    cairn_mpu_rec_t u;
    if (upload_id(job, id) != 0 || upload_check(w, job, id, &u) != 0)
        return;
    cairn_obj_rec_t *parts = NULL;
    size_t n = 0;
    int rc = cairn_meta_mpu_abort(&w->meta, job->req_id, job->bucket, id, &w->scratch, &parts, &n);
    if (rc != 0) {
        s3_mpu_error(job, rc);
        return;
    }
    job->status = 204;
    s3_free_recs(w, job->req_id, parts, n);
    free(parts);
}

/* ---- ListParts ---- */

static void list_parts(gw_worker_t *w, gw_job_t *job)
{
    if (s3_auth(w, job, NULL) != 0)
        return;
    uint8_t id[16];
    long max, marker;
    if (upload_id(job, id) != 0 ||
        uint_param(job, "max-parts", 0, 2147483647L, 1000, &max, "max-parts must be a non-negative integer") ||
        uint_param(job, "part-number-marker", 0, 2147483647L, 0, &marker,
                   "part-number-marker must be a non-negative integer"))
        return;
    if (max > CAIRN_MPU_MAX_LIST)
        max = CAIRN_MPU_MAX_LIST;
    cairn_mpu_parts_t l;
    cairn_mpu_parts_init(&l);
    int rc = cairn_meta_mpu_list_parts(&w->meta, job->req_id, job->bucket, id,
                                       (uint32_t)(marker > UINT32_MAX ? UINT32_MAX : marker), (uint32_t)max, &l);
    if (rc == 0 && (l.upload.key_len != job->key_len || memcmp(l.upload.key, job->key, job->key_len) != 0))
        rc = CAIRN_MPU_ENOUPLOAD;
    if (rc != 0) {
        s3_mpu_error(job, rc);
        cairn_mpu_parts_dispose(&l);
        return;
    }
    char hex[33];
    cairn_mpu_id_hex(id, hex);
    cairn_buf_t *b = &job->resp_body;
    cairn_xml_begin(b);
    cairn_xml_open_ns(b, "ListPartsResult", S3_NS);
    cairn_xml_elem(b, "Bucket", job->bucket, strlen(job->bucket));
    cairn_xml_elem(b, "Key", job->key, job->key_len);
    cairn_xml_elem(b, "UploadId", hex, 32);
    s3_xml_owner(b, "Initiator", l.upload.owner, l.upload.owner_len);
    s3_xml_owner(b, "Owner", l.upload.owner, l.upload.owner_len);
    cairn_xml_elem(b, "StorageClass", "STANDARD", 8);
    cairn_xml_elemf(b, "PartNumberMarker", "%ld", marker);
    if (l.nparts)
        cairn_xml_elemf(b, "NextPartNumberMarker", "%u", l.parts[l.nparts - 1].number);
    cairn_xml_elemf(b, "MaxParts", "%ld", max);
    cairn_xml_elem(b, "IsTruncated", l.truncated ? "true" : "false", l.truncated ? 4 : 5);
    for (size_t i = 0; i < l.nparts; i++) {
        const cairn_obj_rec_t *r = &l.parts[i].rec;
        char t[64];
        s3_time_iso(r->mtime_ms, t);
        cairn_xml_open(b, "Part");
        cairn_xml_elemf(b, "PartNumber", "%u", l.parts[i].number);
        cairn_xml_elem(b, "LastModified", t, strlen(t));
        cairn_xml_elemf(b, "ETag", "\"%s\"", r->etag);
        cairn_xml_elemf(b, "Size", "%llu", (unsigned long long)r->size);
        size_t off = 0;
        const char *n, *v;
        size_t nl, vl;
        while (cairn_obj_meta_next(r->sys_meta, r->sys_meta_len, &off, &n, &nl, &v, &vl)) {
            cairn_ck_alg_t a = cairn_ck_from_header(n, nl);
            if (a != CAIRN_CK_NONE) {
                char tag[32];
                snprintf(tag, sizeof tag, "Checksum%s", cairn_ck_name(a));
                cairn_xml_elem(b, tag, v, vl);
            }
        }
        cairn_xml_close(b, "Part");
    }
    cairn_xml_close(b, "ListPartsResult");
    job->status = 200;
    cairn_mpu_parts_dispose(&l);
}

/* ---- ListMultipartUploads ---- */

static void list_uploads(gw_worker_t *w, gw_job_t *job)
{
    if (s3_auth(w, job, NULL) != 0)
        return;
    char *prefix, *delim, *km, *idm, *enc;
    size_t plen, dlen, kmlen, idmlen, enclen;
    long max;
    cairn_mpu_list_t l;
    cairn_mpu_list_init(&l);
    int perr = s3_param(job, "prefix", &prefix, &plen) | s3_param(job, "delimiter", &delim, &dlen) |
               s3_param(job, "key-marker", &km, &kmlen) | s3_param(job, "upload-id-marker", &idm, &idmlen) |
               s3_param(job, "encoding-type", &enc, &enclen);
    cairn_mpu_list_req_t q = {.bucket = job->bucket};
    if (perr) {
        s3_error(job, "InvalidArgument", "Invalid query parameter encoding.");
        goto out;
    }
    if (uint_param(job, "max-uploads", 0, 2147483647L, 1000, &max, "max-uploads must be a non-negative integer"))
        goto out;
    if (enc && strcmp(enc, "url") != 0) {
        s3_error(job, "InvalidArgument", "Invalid Encoding Method specified in Request");
        goto out;
    }
    int url = enc != NULL;
    q.prefix = prefix ? prefix : "";
    q.prefix_len = plen;
    q.delimiter = delim ? delim : "";
    q.delimiter_len = dlen;
    q.key_marker = km ? km : "";
    q.key_marker_len = kmlen;
    q.max = (uint32_t)(max > CAIRN_MPU_MAX_LIST ? CAIRN_MPU_MAX_LIST : max);
    if (idm && idmlen && km && kmlen) {
        if (cairn_mpu_id_parse(idm, idmlen, q.id_marker) != 0) {
            s3_error(job, "InvalidArgument", "Invalid uploadId marker");
            goto out;
        }
        q.has_id_marker = 1;
    }
    int rc = cairn_meta_mpu_list(&w->meta, job->req_id, &q, &l);
    if (rc != 0) {
        s3_mpu_error(job, rc);
        goto out;
    }
    cairn_buf_t *b = &job->resp_body;
    cairn_xml_begin(b);
    cairn_xml_open_ns(b, "ListMultipartUploadsResult", S3_NS);
    cairn_xml_elem(b, "Bucket", job->bucket, strlen(job->bucket));
    s3_xml_key(b, "KeyMarker", q.key_marker, q.key_marker_len, url);
    cairn_xml_elem(b, "UploadIdMarker", q.has_id_marker ? idm : "", q.has_id_marker ? idmlen : 0);
    if (l.truncated) {
        /* The last item returned, upload or CommonPrefix: items come in key
         * order, so it is the greater of the last of each. */
        const char *nk = "";
        size_t nkl = 0;
        char nid[33] = "";
        if (l.n) {
            nk = l.uploads[l.n - 1].u.key;
            nkl = l.uploads[l.n - 1].u.key_len;
            cairn_mpu_id_hex(l.uploads[l.n - 1].id, nid);
        }
        if (l.nprefixes) {
            const char *p = l.prefixes[l.nprefixes - 1].p;
            size_t pl = l.prefixes[l.nprefixes - 1].len;
            int c = memcmp(p, nk, pl < nkl ? pl : nkl);
            if (l.n == 0 || c > 0 || (c == 0 && pl > nkl)) {
                nk = p;
                nkl = pl;
                nid[0] = '\0';
            }
        }
        s3_xml_key(b, "NextKeyMarker", nk, nkl, url);
        cairn_xml_elem(b, "NextUploadIdMarker", nid, strlen(nid));
    }
    if (delim)
        s3_xml_key(b, "Delimiter", q.delimiter, q.delimiter_len, url);
    s3_xml_key(b, "Prefix", q.prefix, q.prefix_len, url);
    cairn_xml_elemf(b, "MaxUploads", "%ld", max);
    if (url)
        cairn_xml_elem(b, "EncodingType", "url", 3);
    cairn_xml_elem(b, "IsTruncated", l.truncated ? "true" : "false", l.truncated ? 4 : 5);
    for (size_t i = 0; i < l.n; i++) {
        const cairn_mpu_rec_t *u = &l.uploads[i].u;
        char hex[33], t[64];
        cairn_mpu_id_hex(l.uploads[i].id, hex);
        s3_time_iso(u->initiated_ms, t);
        cairn_xml_open(b, "Upload");
        s3_xml_key(b, "Key", u->key, u->key_len, url);
        cairn_xml_elem(b, "UploadId", hex, 32);
        s3_xml_owner(b, "Initiator", u->owner, u->owner_len);
        s3_xml_owner(b, "Owner", u->owner, u->owner_len);
        cairn_xml_elem(b, "StorageClass", "STANDARD", 8);
        cairn_xml_elem(b, "Initiated", t, strlen(t));
        cairn_xml_close(b, "Upload");
    }
    for (size_t i = 0; i < l.nprefixes; i++) {
        cairn_xml_open(b, "CommonPrefixes");
        s3_xml_key(b, "Prefix", l.prefixes[i].p, l.prefixes[i].len, url);
        cairn_xml_close(b, "CommonPrefixes");
    }
    cairn_xml_close(b, "ListMultipartUploadsResult");
    job->status = 200;
out:
    cairn_mpu_list_dispose(&l);
    free(prefix);
    free(delim);
    free(km);
    free(idm);
    free(enc);
}

void s3_mpu_step(gw_worker_t *w, gw_job_t *job)
{
    switch (job->op) {
    case S3_OP_CREATE_MPU: mpu_create(w, job); break;
    case S3_OP_UPLOAD_PART: upload_part(w, job); break;
    case S3_OP_UPLOAD_PART_COPY: upload_part_copy(w, job); break;
    case S3_OP_COMPLETE_MPU: mpu_complete(w, job); break;
    case S3_OP_ABORT_MPU: mpu_abort(w, job); break;
    case S3_OP_LIST_PARTS: list_parts(w, job); break;
    case S3_OP_LIST_MPUS: list_uploads(w, job); break;
    default: s3_error(job, "NotImplemented", NULL); break;
    }
}
