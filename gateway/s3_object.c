/*
 * s3_object.c — PutObject, GetObject (streamed, single Range or one part
 * by ?partNumber), HeadObject, DeleteObject (worker side).
 *
 * Order of a PUT, and why: authenticate; check the bucket (so no fragments
 * are written for a bucket that does not exist); write the fragments under a
 * fresh object id; check the body's digests (Content-MD5, signed sha256);
 * commit the record. Only the commit makes the object visible, so a crash or
 * an error at any earlier point leaves nothing half-written in view, only
 * orphan fragments (removed here on errors, by garbage collection after a
 * crash). The superseded version's fragments are removed after the commit.
 */
#include <ctype.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/meta_mpu.h"
#include "gw.h"
#include "s3_ext.h"

#define GET_CHUNK_BYTES (4u << 20) /* data read from the nodes per round of a GET */
#define MAX_USER_META 2048         /* S3's limit for x-amz-meta-* (names + values) */


static const cairn_sigv4_header_t *header(gw_job_t *job, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < job->nheaders; i++)
        if (job->headers[i].name_len == len && memcmp(job->headers[i].name, name, len) == 0)
            return &job->headers[i];
    return NULL;
}

static void http_date(int64_t ms, char out[64])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 64, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void put_object(gw_worker_t *w, gw_job_t *job)
{
    const cairn_sigv4_header_t *h;
    uint8_t want_md5[16];
    int have_md5 = 0;

    if (job->body.len > w->gw->cfg.max_object_size) {
        s3_error(job, "EntityTooLarge", NULL);
        return;
    }
    s3_body_t bd; /* s3_chunked.c: auth, aws-chunked decoding, checksums, headers to store */
    if (s3_body_prepare(w, job, &bd) != 0)
        return;
    int check_sha = s3_auth_wants_body_hash(job);
    if ((h = header(job, "content-md5"))) {
        uint8_t tmp[24];
        if (h->value_len != 24 || EVP_DecodeBlock(tmp, (const unsigned char *)h->value, 24) != 18) {
            s3_error(job, "InvalidDigest", NULL);
            return;
        }
        memcpy(want_md5, tmp, 16);
        have_md5 = 1;
    }
    cairn_bucket_rec_t br;
    int rc = cairn_meta_bucket_head(&w->meta, job->req_id, job->bucket, &w->scratch, &br);
    if (rc != 0) {
        s3_error_from(job, rc);
        return;
    }

    gw_put_result_t res;
    cairn_buf_t inl;
    cairn_buf_init(&inl);
    int is_inline = job->body.len <= w->gw->cfg.inline_max;
    rc = is_inline ? gw_store_inline(w, job, check_sha, &res, &inl) : gw_store_put(w, job, check_sha, &res);
    if (rc != 0) {
        cairn_buf_dispose(&inl);
        if (!gw_job_cancelled(job))
            s3_error_from(job, rc);
        return;
    }
    cairn_obj_rec_t rec = {.size = job->body.len};
    if (is_inline) {
        rec.is_inline = 1;
        rec.inline_data = inl.base ? inl.base : (const uint8_t *)"";
        rec.inline_len = inl.len;
    } else {
        rec.k = (uint8_t)w->gw->cfg.k;
        rec.m = (uint8_t)w->gw->cfg.m;
        rec.block_size = w->gw->cfg.block_size;
        memcpy(rec.nodes, res.nodes, sizeof rec.nodes);
    }
    memcpy(rec.oid, res.oid, 16);
    const char *fail = NULL;
    if (have_md5 && memcmp(want_md5, res.md5, 16) != 0)
        fail = "BadDigest";
    if (check_sha) {
        char hex[65];
        cairn_hex(res.sha256, 32, hex);
        h = header(job, "x-amz-content-sha256");
        if (strncasecmp(hex, h->value, 64) != 0)
            fail = "XAmzContentSHA256Mismatch";
    }
    if (fail) {
        gw_store_delete(w, job->req_id, &rec);
        cairn_buf_dispose(&inl);
        s3_error(job, fail, NULL);
        return;
    }

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rec.mtime_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    cairn_hex(res.md5, 16, rec.etag);
    h = header(job, "content-type");
    rec.content_type = h ? h->value : "binary/octet-stream";
    rec.content_type_len = h ? h->value_len : strlen(rec.content_type);
    cairn_buf_t um;
    cairn_buf_init(&um);
    size_t meta_bytes = 0;
    for (size_t i = 0; i < job->nheaders; i++) {
        const cairn_sigv4_header_t *x = &job->headers[i];
        if (x->name_len > 11 && memcmp(x->name, "x-amz-meta-", 11) == 0) {
            cairn_obj_meta_add(&um, x->name + 11, x->name_len - 11, x->value, x->value_len);
            meta_bytes += x->name_len - 11 + x->value_len;
        }
    }
    if (meta_bytes > MAX_USER_META) {
        cairn_buf_dispose(&um);
        cairn_buf_dispose(&inl);
        gw_store_delete(w, job->req_id, &rec);
        s3_error(job, "MetadataTooLarge", NULL);
        return;
    }
    rec.user_meta = um.base;
    rec.user_meta_len = um.len;
    rec.sys_meta = bd.sys;
    rec.sys_meta_len = bd.sys_len;

    int had_old = 0;
    cairn_obj_rec_t old;
    /* meta_mpu.h: the plain put, or If-None-Match / If-Match checked with the commit */
    rc = cairn_meta_obj_put_if(&w->meta, job->req_id, job->bucket, job->key, job->key_len, &rec, bd.cond,
                               bd.cond_etag, bd.cond_etag_len, &w->scratch, &had_old, &old);
    cairn_buf_dispose(&um);
    cairn_buf_dispose(&inl);
    if (rc != 0) {
        cairn_log(CAIRN_LOG_WARN, job->req_id, "put: commit failed: %s", cairn_strerror(rc));
        if (rc != CAIRN_ETIMEOUT && rc > -CAIRN_EBASE - 1000) /* surely not committed: drop the new fragments */
            gw_store_delete(w, job->req_id, &rec);
        s3_error_from(job, rc);
        return;
    }
    job->status = 200;
    gw_job_header(job, "etag", "\"%s\"", rec.etag);
    if (bd.ck_alg != CAIRN_CK_NONE)
        gw_job_header(job, cairn_ck_header(bd.ck_alg), "%s", bd.ck_value);
    if (had_old)
        s3_drop_version(w, job, &old);
}

/* Parse a single "bytes=" range against size. 1: range set; 0: no usable
 * Range (serve everything); -1: unsatisfiable. */
static int parse_range(const cairn_sigv4_header_t *h, uint64_t size, uint64_t *first, uint64_t *last)
{
    char v[128];
    if (h == NULL || h->value_len >= sizeof v)
        return 0;
    memcpy(v, h->value, h->value_len);
    v[h->value_len] = '\0';
    if (strncmp(v, "bytes=", 6) != 0 || strchr(v, ','))
        return 0;
    char *p = v + 6, *e;
    if (*p == '-') {
        if (!isdigit((unsigned char)p[1]))
            return 0;
        unsigned long long n = strtoull(p + 1, &e, 10);
        if (*e)
            return 0;
        if (n == 0 || size == 0)
            return -1;
        *first = n >= size ? 0 : size - n;
        *last = size - 1;
        return 1;
    }
    if (!isdigit((unsigned char)*p))
        return 0;
    unsigned long long a = strtoull(p, &e, 10), b;
    if (*e != '-')
        return 0;
    p = e + 1;
    if (*p == '\0') {
        b = size ? size - 1 : 0;
    } else {
        if (!isdigit((unsigned char)*p))
            return 0;
        b = strtoull(p, &e, 10);
        if (*e || b < a)
            return 0;
    }
    if (a >= size)
        return -1;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return 1;
}

/* GetObject/HeadObject ?partNumber=N: 0 when absent, else N in [1, 10000];
 * -1 with InvalidArgument set when malformed. */
static int part_number(gw_job_t *job, long *n)
{
    char v[16];
    size_t len = 0;
    *n = 0;
    int rc = cairn_query_get(job->query, job->query_len, "partNumber", v, sizeof v, &len);
    if (rc == CAIRN_ENOTFOUND)
        return 0;
    char *e;
    long x = rc == 0 && len > 0 && isdigit((unsigned char)v[0]) ? strtol(v, &e, 10) : -1;
    if (x < 1 || x > CAIRN_MPU_MAX_PARTS || *e != '\0') {
        s3_error(job, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
        return -1;
    }
    *n = x;
    return 0;
}

/* Bytes [*first, *end) of part n of the object. A multipart object's part
 * n; an object of one PUT is part 1 whole (as S3 answers). 0, or -1 when
 * there is no such part. */
static int part_bounds(const cairn_obj_rec_t *r, long n, uint64_t *first, uint64_t *end)
{
    if (r->nparts == 0) {
        *first = 0;
        *end = r->size;
        return n == 1 ? 0 : -1;
    }
    size_t off = 0;
    uint64_t base = 0;
    cairn_obj_part_t p;
    for (long i = 1; cairn_obj_part_next(r->parts, r->parts_len, &off, &p); i++) {
        if (i == n) {
            *first = base;
            *end = base + p.size;
            return 0;
        }
        base += p.size;
    }
    return -1;
}

/* rec's system headers without the x-amz-checksum-* pairs, into b: a
 * checksum describes the whole object, so a part or a range goes without. */
static void sys_without_checksums(const cairn_obj_rec_t *r, cairn_buf_t *b)
{
    size_t off = 0, nl, vl;
    const char *n, *v;
    while (cairn_obj_meta_next(r->sys_meta, r->sys_meta_len, &off, &n, &nl, &v, &vl))
        if (!(nl >= 15 && memcmp(n, "x-amz-checksum-", 15) == 0))
            cairn_obj_meta_add(b, n, nl, v, vl);
}

static void object_headers(gw_job_t *job, int whole)
{
    cairn_obj_rec_t rec = job->rec, *r = &rec;
    cairn_buf_t sys;
    cairn_buf_init(&sys);
    if (!whole) {
        sys_without_checksums(&job->rec, &sys);
        rec.sys_meta = sys.base;
        rec.sys_meta_len = sys.len;
    }
    char date[64];
    http_date(r->mtime_ms, date);
    gw_job_header(job, "etag", "\"%s\"", r->etag);
    gw_job_header(job, "last-modified", "%s", date);
    gw_job_header(job, "accept-ranges", "bytes");
    gw_job_header(job, "content-type", "%.*s", (int)r->content_type_len, r->content_type);
    size_t off = 0;
    const char *n, *v;
    size_t nl, vl;
    while (cairn_obj_meta_next(r->user_meta, r->user_meta_len, &off, &n, &nl, &v, &vl)) {
        char name[128];
        snprintf(name, sizeof name, "x-amz-meta-%.*s", (int)nl, n);
        gw_job_header(job, name, "%.*s", (int)vl, v);
    }
    s3_sys_headers(job, r); /* s3_ext.c: content-encoding, cache-control, checksums... */
    cairn_buf_dispose(&sys);
}

/* Read the next chunk of stripes covering job->pos into job->chunk[job->rd]. */
static int read_chunk(gw_worker_t *w, gw_job_t *job)
{
    const cairn_obj_rec_t *r = &job->rec;
    cairn_obj_rec_t part;
    uint64_t pbase = 0, pend = job->end;
    if (r->is_inline) { /* the bytes came with the record (job->rec_buf): no copy */
        job->out[job->rd] = h2o_iovec_init(r->inline_data + job->pos, (size_t)(job->end - job->pos));
        job->pos = job->end;
        return 0;
    }
    if (r->nparts) { /* multipart: the part holding job->pos (s3_multipart.c); a chunk stays in one part */
        int rc = gw_part_locate(job, &part, &pbase);
        if (rc != 0)
            return rc;
        r = &part;
        if (pbase + part.size < pend)
            pend = pbase + part.size;
    }
    uint64_t pos = job->pos - pbase, end = pend - pbase; /* within r */
    uint64_t sb = (uint64_t)r->k * r->block_size;
    uint64_t s = pos / sb, last = (end - 1) / sb;
    uint64_t per = GET_CHUNK_BYTES / sb ? GET_CHUNK_BYTES / sb : 1;
    uint32_t n = (uint32_t)(last - s + 1 < per ? last - s + 1 : per);
    size_t need = (size_t)(n * sb);
    int i = job->rd;
    if (job->chunk_cap[i] < need) {
        free(job->chunk[i]);
        job->chunk[i] = cairn_malloc(need);
        job->chunk_cap[i] = need;
    }
    int rc = gw_store_read(w, job->req_id, r, s, n, job->chunk[i]);
    if (rc != 0)
        return rc;
    uint64_t base = s * sb, stop = (s + n) * sb < end ? (s + n) * sb : end;
    job->out[i] = h2o_iovec_init(job->chunk[i] + (pos - base), (size_t)(stop - pos));
    job->pos = pbase + stop;
    return 0;
}

static void get_object(gw_worker_t *w, gw_job_t *job)
{
    if (s3_auth(w, job, NULL) != 0)
        return;
    int rc = cairn_meta_obj_get(&w->meta, job->req_id, job->bucket, job->key, job->key_len, &job->rec_buf, &job->rec);
    if (rc != 0) {
        s3_error_from(job, rc);
        return;
    }
    if (s3_cond_check(job, &job->rec)) /* s3_ext.c: 304 Not Modified or 412 */
        return;
    long pn;
    if (part_number(job, &pn) != 0)
        return;
    uint64_t size = job->rec.size, first = 0, last = size ? size - 1 : 0;
    int ranged;
    if (pn) { /* a part is a range: 206 and Content-Range, but for an empty one */
        uint64_t pend;
        if (header(job, "range")) {
            s3_error(job, "InvalidRequest", "Cannot specify both Range header and partNumber query parameter.");
            return;
        }
        if (part_bounds(&job->rec, pn, &first, &pend) != 0) {
            s3_error(job, "InvalidPartNumber", "The requested partnumber is not satisfiable");
            return;
        }
        if (job->rec.nparts)
            gw_job_header(job, "x-amz-mp-parts-count", "%u", job->rec.nparts);
        ranged = pend > first;
        last = ranged ? pend - 1 : first;
        size = ranged ? size : first; /* an empty part: nothing to send */
    } else {
        ranged = parse_range(header(job, "range"), size, &first, &last);
        if (ranged < 0) {
            s3_error(job, "InvalidRange", NULL);
            gw_job_header(job, "content-range", "bytes */%llu", (unsigned long long)size);
            return;
        }
    }
    object_headers(job, ranged == 0 && !(pn && job->rec.nparts));
    job->status = 200;
    job->pos = pn ? first : 0;
    job->end = size;
    if (ranged > 0) {
        job->status = 206;
        job->pos = first;
        job->end = last + 1;
        gw_job_header(job, "content-range", "bytes %llu-%llu/%llu", (unsigned long long)first,
                      (unsigned long long)last, (unsigned long long)job->rec.size);
    }
    if (job->is_head || job->end == job->pos)
        return;
    rc = read_chunk(w, job);
    if (rc != 0) {
        cairn_buf_reset(&job->resp_hdrs);
        s3_error_from(job, rc);
        return;
    }
    job->streaming = 1;
}

void s3_get_next_step(gw_worker_t *w, gw_job_t *job)
{
    int rc = read_chunk(w, job);
    job->read_err = rc != 0;
    if (rc != 0)
        cairn_log(CAIRN_LOG_ERROR, job->req_id, "get: read failed mid-stream at byte %llu: %s",
                  (unsigned long long)job->pos, cairn_strerror(rc));
}

static void delete_object(gw_worker_t *w, gw_job_t *job)
{
    if (s3_auth(w, job, NULL) != 0)
        return;
    int had_old = 0;
    cairn_obj_rec_t old;
    int rc = cairn_meta_obj_delete(&w->meta, job->req_id, job->bucket, job->key, job->key_len, &w->scratch, &had_old,
                                   &old);
    if (rc != 0 && rc != CAIRN_ENOTFOUND) {
        s3_error_from(job, rc);
        return;
    }
    job->status = 204;
    if (rc == 0 && had_old)
        s3_drop_version(w, job, &old);
}

void s3_object_step(gw_worker_t *w, gw_job_t *job)
{
    switch (job->op) {
    case S3_OP_PUT_OBJECT: put_object(w, job); break;
    case S3_OP_GET_OBJECT:
    case S3_OP_HEAD_OBJECT: get_object(w, job); break;
    case S3_OP_DELETE_OBJECT: delete_object(w, job); break;
    default: s3_error(job, "NotImplemented", NULL); break;
    }
}
