/*
 * s3_ext.c — routing of the calls in s3_ext.h, and the ones served here
 * (worker side): CopyObject, DeleteObjects, conditional GET/HEAD,
 * GetBucketVersioning, ListObjectVersions, Get/PutBucketAcl and ObjectAcl,
 * GetObjectTagging, and the "no such configuration" answers that tools
 * expect from a bucket without lifecycle, policy, CORS and so on.
 *
 * CopyObject reads the source through the ordinary read path and writes a
 * new fragment set (each copy is independent of its source, so deleting one
 * never touches the other). A source up to COPY_WINDOW is copied whole and
 * keeps an MD5 ETag; a larger one is copied window by window, each window
 * stored as a part of a multipart record, so memory stays at one window and
 * the ETag takes the multipart form (MD5 of the window MD5s, "-N").
 */
#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/uri.h"
#include "cairn/xml.h"
#include "s3_ext.h"

#define COPY_WINDOW (64u << 20)

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ext_step(gw_worker_t *w, gw_job_t *job);

/* ---- routing (loop thread) ---- */

static int has(const cairn_query_param_t *qp, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (qp[i].name_len == len && memcmp(qp[i].name, name, len) == 0)
            return 1;
    return 0;
}

/* Bucket sub-resources answered with an error or an empty document. */
static const struct {
    const char *param;
    const char *code; /* S3 error, or NULL: answer `doc` */
    const char *doc;  /* root element of an empty answer */
} configs[] = {
    {"lifecycle", "NoSuchLifecycleConfiguration", NULL},
    {"policy", "NoSuchBucketPolicy", NULL},
    {"cors", "NoSuchCORSConfiguration", NULL},
    {"tagging", "NoSuchTagSet", NULL},
    {"website", "NoSuchWebsiteConfiguration", NULL},
    {"encryption", "ServerSideEncryptionConfigurationNotFoundError", NULL},
    {"replication", "ReplicationConfigurationNotFoundError", NULL},
    {"object-lock", "ObjectLockConfigurationNotFoundError", NULL},
    {"ownershipControls", "OwnershipControlsNotFoundError", NULL},
    {"publicAccessBlock", "NoSuchPublicAccessBlockConfiguration", NULL},
    {"logging", NULL, "BucketLoggingStatus"},
    {"notification", NULL, "NotificationConfiguration"},
    {"accelerate", NULL, "AccelerateConfiguration"},
    {"requestPayment", NULL, "RequestPaymentConfiguration"},
    {NULL, NULL, NULL},
};

gw_step_fn s3_ext_route(gw_job_t *job, const cairn_query_param_t *qp, size_t nq)
{
    const char *m = job->method;
    int get = strcmp(m, "GET") == 0, head = strcmp(m, "HEAD") == 0, put = strcmp(m, "PUT") == 0;
    int post = strcmp(m, "POST") == 0, del = strcmp(m, "DELETE") == 0;
    if (job->bucket[0] == '\0')
        return NULL;
    if (job->key == NULL) {
        if (get && has(qp, nq, "uploads"))
            return job->op = S3_OP_LIST_MPUS, s3_mpu_step;
        if (post && has(qp, nq, "delete"))
            return job->op = S3_OP_DELETE_OBJECTS, ext_step;
        if (get && has(qp, nq, "versioning"))
            return job->op = S3_OP_GET_BUCKET_VERSIONING, ext_step;
        if (get && has(qp, nq, "versions"))
            return job->op = S3_OP_LIST_OBJECT_VERSIONS, ext_step;
        if ((get || head) && has(qp, nq, "acl"))
            return job->op = S3_OP_GET_ACL, ext_step;
        if (put && has(qp, nq, "acl"))
            return job->op = S3_OP_PUT_ACL, ext_step;
        for (int i = 0; get && configs[i].param; i++)
            if (has(qp, nq, configs[i].param))
                return job->op = S3_OP_BUCKET_CONFIG, ext_step;
        return NULL;
    }
    if (post && has(qp, nq, "uploads"))
        return job->op = S3_OP_CREATE_MPU, s3_mpu_step;
    if (post && has(qp, nq, "uploadId"))
        return job->op = S3_OP_COMPLETE_MPU, s3_mpu_step;
    if (put && has(qp, nq, "uploadId") && has(qp, nq, "partNumber")) {
        if (s3_header(job, "x-amz-copy-source"))
            return job->op = S3_OP_UPLOAD_PART_COPY, s3_mpu_step;
        return job->op = S3_OP_UPLOAD_PART, s3_mpu_step;
    }
    if (del && has(qp, nq, "uploadId"))
        return job->op = S3_OP_ABORT_MPU, s3_mpu_step;
    if (get && has(qp, nq, "uploadId"))
        return job->op = S3_OP_LIST_PARTS, s3_mpu_step;
    if ((get || head) && has(qp, nq, "acl"))
        return job->op = S3_OP_GET_ACL, ext_step;
    if (put && has(qp, nq, "acl"))
        return job->op = S3_OP_PUT_ACL, ext_step;
    if (get && has(qp, nq, "tagging"))
        return job->op = S3_OP_GET_OBJECT_TAGGING, ext_step;
    if (put && s3_header(job, "x-amz-copy-source"))
        return job->op = S3_OP_COPY_OBJECT, ext_step;
    return NULL;
}

/* ---- shared helpers ---- */

int s3_param(gw_job_t *job, const char *name, char **out, size_t *len)
{
    size_t cap = job->query_len + 1;
    *out = NULL;
    *len = 0;
    char *v = cairn_malloc(cap);
    int rc = cairn_query_get(job->query, job->query_len, name, v, cap, len);
    if (rc == CAIRN_ENOTFOUND) {
        free(v);
        return 0;
    }
    if (rc != 0) {
        free(v);
        return -1;
    }
    *out = v;
    return 0;
}

void s3_xml_key(cairn_buf_t *b, const char *tag, const char *s, size_t len, int url)
{
    if (!url) {
        cairn_xml_elem(b, tag, s, len);
        return;
    }
    char *enc = cairn_malloc(3 * len + 1);
    size_t n = cairn_uri_encode(s, len, enc, 1);
    cairn_xml_elem(b, tag, enc, n);
    free(enc);
}

void s3_xml_owner(cairn_buf_t *b, const char *tag, const char *id, size_t len)
{
    cairn_xml_open(b, tag);
    cairn_xml_elem(b, "ID", id, len);
    cairn_xml_elem(b, "DisplayName", id, len);
    cairn_xml_close(b, tag);
}

void s3_drop_version(gw_worker_t *w, gw_job_t *job, const cairn_obj_rec_t *old)
{
    gw_gc_defer(w->gw, job->req_id, old); /* later: a GET may still be reading it */
}

void s3_sys_headers(gw_job_t *job, const cairn_obj_rec_t *rec)
{
    const cairn_sigv4_header_t *mode = s3_header(job, "x-amz-checksum-mode");
    int ck = mode && mode->value_len == 7 && strncasecmp(mode->value, "ENABLED", 7) == 0;
    size_t off = 0;
    const char *n, *v;
    size_t nl, vl;
    while (cairn_obj_meta_next(rec->sys_meta, rec->sys_meta_len, &off, &n, &nl, &v, &vl)) {
        char name[64];
        if (nl >= sizeof name)
            continue;
        memcpy(name, n, nl);
        name[nl] = '\0';
        int is_ck = cairn_ck_from_header(n, nl) != CAIRN_CK_NONE || strcmp(name, "x-amz-checksum-type") == 0;
        if ((is_ck && !ck) || strcmp(name, "x-amz-checksum-algorithm") == 0)
            continue;
        gw_job_header(job, name, "%.*s", (int)vl, v);
    }
}

/* ---- conditional requests ---- */

/* An HTTP date (RFC 1123, RFC 850, asctime) as seconds; -1 if none parses. */
static int64_t http_time(const char *v, size_t n)
{
    static const char *fmts[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y",
                                 "%Y-%m-%dT%H:%M:%S", NULL};
    char s[64];
    if (n >= sizeof s)
        return -1;
    memcpy(s, v, n);
    s[n] = '\0';
    for (int i = 0; fmts[i]; i++) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *e = strptime(s, fmts[i], &tm);
        if (e && (*e == '\0' || *e == 'Z' || *e == '.'))
            return (int64_t)timegm(&tm);
    }
    return -1;
}

/* Does a list of entity tags ("a", W/"b", *) name etag? */
static int etag_in(const char *v, size_t n, const char *etag)
{
    size_t el = strlen(etag), i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        size_t a = i, e = j;
        while (a < e && isspace((unsigned char)v[a]))
            a++;
        while (e > a && isspace((unsigned char)v[e - 1]))
            e--;
        if (e - a >= 2 && v[a] == 'W' && v[a + 1] == '/')
            a += 2;
        if (e - a >= 2 && v[a] == '"' && v[e - 1] == '"') {
            a++;
            e--;
        }
        if ((e - a == 1 && v[a] == '*') || (e - a == el && strncasecmp(v + a, etag, el) == 0))
            return 1;
        i = j + 1;
    }
    return 0;
}

/* The RFC 7232 evaluation S3 follows, for headers named prefix + "if-...":
 * 0 (go on), 412 or 304. */
static int cond_eval(gw_job_t *job, const cairn_obj_rec_t *rec, const char *prefix)
{
    char name[64];
    const cairn_sigv4_header_t *im, *inm, *ims, *ius;
    snprintf(name, sizeof name, "%sif-match", prefix);
    im = s3_header(job, name);
    snprintf(name, sizeof name, "%sif-none-match", prefix);
    inm = s3_header(job, name);
    snprintf(name, sizeof name, "%sif-modified-since", prefix);
    ims = s3_header(job, name);
    snprintf(name, sizeof name, "%sif-unmodified-since", prefix);
    ius = s3_header(job, name);
    int64_t mt = rec->mtime_ms / 1000, t;
    if (im) {
        if (!etag_in(im->value, im->value_len, rec->etag))
            return 412;
    } else if (ius && (t = http_time(ius->value, ius->value_len)) >= 0 && mt > t) {
        return 412;
    }
    if (inm) {
        if (etag_in(inm->value, inm->value_len, rec->etag))
            return 304;
    } else if (ims && (t = http_time(ims->value, ims->value_len)) >= 0 && mt <= t) {
        return 304;
    }
    return 0;
}

int s3_cond_check(gw_job_t *job, const cairn_obj_rec_t *rec)
{
    int v = cond_eval(job, rec, "");
    if (v == 0)
        return 0;
    if (v == 412) {
        s3_error(job, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
        return 1;
    }
    char date[64];
    time_t t = (time_t)(rec->mtime_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    job->status = 304;
    job->pos = job->end = 0;
    gw_job_header(job, "etag", "\"%s\"", rec->etag);
    gw_job_header(job, "last-modified", "%s", date);
    return 1;
}

/* ---- copy ---- */

int s3_copy_source(gw_worker_t *w, gw_job_t *job, cairn_buf_t *buf, cairn_obj_rec_t *src, int *same)
{
    const cairn_sigv4_header_t *h = s3_header(job, "x-amz-copy-source");
    if (h == NULL || h->value_len == 0 || h->value_len > 3 * (CAIRN_MAX_BUCKET_LEN + CAIRN_MAX_KEY_LEN + 64)) {
        s3_error(job, "InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
        return -1;
    }
    const char *v = h->value, *end = h->value + h->value_len;
    if (*v == '/')
        v++;
    const char *q = memchr(v, '?', (size_t)(end - v));
    if (q) {
        /* versionId: only "null" exists in an unversioned bucket */
        if ((size_t)(end - q) != 15 || memcmp(q, "?versionId=null", 15) != 0) {
            s3_error(job, "InvalidArgument", "Invalid version id specified");
            return -1;
        }
        end = q;
    }
    char *dec = cairn_malloc((size_t)(end - v) + 1);
    size_t n = 0;
    int rc = cairn_uri_decode(v, (size_t)(end - v), dec, &n, 0);
    const char *slash = rc == 0 ? memchr(dec, '/', n) : NULL;
    size_t bl = slash ? (size_t)(slash - dec) : 0, kl = slash ? n - bl - 1 : 0;
    if (slash == NULL || bl == 0 || bl > CAIRN_MAX_BUCKET_LEN || kl == 0 || kl > CAIRN_MAX_KEY_LEN ||
        memchr(dec, '\0', n)) {
        free(dec);
        s3_error(job, "InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
        return -1;
    }
    char sb[CAIRN_MAX_BUCKET_LEN + 1];
    memcpy(sb, dec, bl);
    sb[bl] = '\0';
    if (s3_bucket_access(w, job, sb) != 0) { /* the source must be readable by the caller too */
        free(dec);
        return -1;
    }
    rc = cairn_meta_obj_get(&w->meta, job->req_id, sb, slash + 1, kl, buf, src);
    *same = strcmp(sb, job->bucket) == 0 && kl == job->key_len && memcmp(slash + 1, job->key, kl) == 0;
    free(dec);
    if (rc != 0) {
        s3_error_from(job, rc);
        return -1;
    }
    if (cond_eval(job, src, "x-amz-copy-source-") != 0) {
        s3_error(job, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
        return -1;
    }
    return 0;
}

int s3_copy_store(gw_worker_t *w, gw_job_t *job, const cairn_obj_rec_t *src, uint64_t off, uint64_t len,
                  gw_put_result_t *res)
{
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return -ENOMEM;
    int rc = gw_obj_read(w, job->req_id, src, off, len, buf);
    if (rc == 0) {
        /* The data path takes its bytes from job->body: lend it the copy. */
        h2o_iovec_t saved = job->body;
        job->body = h2o_iovec_init(buf, len);
        rc = gw_store_put(w, job, 0, res);
        job->body = saved;
    }
    free(buf);
    return rc;
}

static void part_of(const gw_put_result_t *res, uint32_t number, uint64_t size, const cairn_cfg_t *cfg,
                    cairn_obj_part_t *p)
{
    memset(p, 0, sizeof *p);
    p->number = number;
    memcpy(p->oid, res->oid, 16);
    p->size = size;
    p->k = (uint8_t)cfg->k;
    p->m = (uint8_t)cfg->m;
    p->block_size = cfg->block_size;
    memcpy(p->nodes, res->nodes, sizeof p->nodes);
}

static void copy_object(gw_worker_t *w, gw_job_t *job)
{
    cairn_buf_t sbuf, um, parts;
    cairn_buf_init(&sbuf);
    cairn_buf_init(&um);
    cairn_buf_init(&parts);
    s3_body_t *sb = cairn_calloc(1, sizeof *sb);
    cairn_obj_rec_t src, rec;
    memset(&rec, 0, sizeof rec);
    int same = 0, rc;
    if (s3_auth(w, job, NULL) != 0 || s3_copy_source(w, job, &sbuf, &src, &same) != 0)
        goto out;
    const cairn_sigv4_header_t *h = s3_header(job, "x-amz-metadata-directive");
    int replace = 0;
    if (h) {
        if (h->value_len == 7 && memcmp(h->value, "REPLACE", 7) == 0)
            replace = 1;
        else if (!(h->value_len == 4 && memcmp(h->value, "COPY", 4) == 0)) {
            s3_error(job, "InvalidArgument", "Unknown metadata directive.");
            goto out;
        }
    }
    if (same && !replace) {
        s3_error(job, "InvalidRequest",
                 "This copy request is illegal because it is trying to copy an object to itself without changing "
                 "the object's metadata, storage class, website redirect location or encryption attributes.");
        goto out;
    }
    cairn_bucket_rec_t br;
    if ((rc = cairn_meta_bucket_head(&w->meta, job->req_id, job->bucket, &w->scratch, &br)) != 0) {
        s3_error_from(job, rc);
        goto out;
    }
    if (replace) {
        if (s3_body_stored_headers(job, sb) != 0 || s3_user_meta(job, &um) != 0)
            goto out;
        h = s3_header(job, "content-type");
        rec.content_type = h ? h->value : "binary/octet-stream";
        rec.content_type_len = h ? h->value_len : strlen("binary/octet-stream");
        rec.user_meta = um.base;
        rec.user_meta_len = um.len;
        rec.sys_meta = sb->sys;
        rec.sys_meta_len = sb->sys_len;
    } else {
        rec.content_type = src.content_type;
        rec.content_type_len = src.content_type_len;
        rec.user_meta = src.user_meta;
        rec.user_meta_len = src.user_meta_len;
        rec.sys_meta = src.sys_meta;
        rec.sys_meta_len = src.sys_meta_len;
    }
    rec.size = src.size;
    if (src.size <= COPY_WINDOW) {
        gw_put_result_t res;
        if ((rc = s3_copy_store(w, job, &src, 0, src.size, &res)) != 0) {
            s3_error_from(job, rc);
            goto out;
        }
        memcpy(rec.oid, res.oid, 16);
        memcpy(rec.nodes, res.nodes, sizeof rec.nodes);
        rec.k = (uint8_t)w->gw->cfg.k;
        rec.m = (uint8_t)w->gw->cfg.m;
        rec.block_size = w->gw->cfg.block_size;
        cairn_hex(res.md5, 16, rec.etag);
    } else {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_DigestInit_ex(md, EVP_md5(), NULL);
        uint32_t np = 0;
        rc = 0;
        for (uint64_t off = 0; off < src.size && rc == 0; off += COPY_WINDOW) {
            uint64_t n = src.size - off < COPY_WINDOW ? src.size - off : COPY_WINDOW;
            gw_put_result_t res;
            if ((rc = s3_copy_store(w, job, &src, off, n, &res)) != 0)
                break;
            cairn_obj_part_t p;
            part_of(&res, ++np, n, &w->gw->cfg, &p);
            cairn_obj_part_add(&parts, &p);
            EVP_DigestUpdate(md, res.md5, 16);
        }
        uint8_t sum[16];
        EVP_DigestFinal_ex(md, sum, NULL);
        EVP_MD_CTX_free(md);
        rec.nparts = np;
        rec.parts = parts.base;
        rec.parts_len = parts.len;
        if (rc != 0) {
            gw_store_delete_parts(w, job->req_id, &rec);
            s3_error_from(job, rc);
            goto out;
        }
        RAND_bytes(rec.oid, 16);
        cairn_hex(sum, 16, rec.etag);
        snprintf(rec.etag + 32, sizeof rec.etag - 32, "-%u", np);
    }
    rec.mtime_ms = wall_ms();
    int had_old = 0;
    cairn_obj_rec_t old;
    rc = cairn_meta_obj_put(&w->meta, job->req_id, job->bucket, job->key, job->key_len, &rec, &w->scratch, &had_old,
                            &old);
    if (rc != 0) {
        cairn_log(CAIRN_LOG_WARN, job->req_id, "copy: commit failed: %s", cairn_strerror(rc));
        if (rc != CAIRN_ETIMEOUT)
            gw_store_delete(w, job->req_id, &rec);
        s3_error_from(job, rc);
        goto out;
    }
    char t[64];
    s3_time_iso(rec.mtime_ms, t);
    cairn_buf_t *b = &job->resp_body;
    cairn_xml_begin(b);
    cairn_xml_open_ns(b, "CopyObjectResult", S3_NS);
    cairn_xml_elem(b, "LastModified", t, strlen(t));
    cairn_xml_elemf(b, "ETag", "\"%s\"", rec.etag);
    cairn_xml_close(b, "CopyObjectResult");
    job->status = 200;
    if (had_old)
        s3_drop_version(w, job, &old);
out:
    cairn_buf_dispose(&sbuf);
    cairn_buf_dispose(&um);
    cairn_buf_dispose(&parts);
    free(sb);
}

/* ---- DeleteObjects ---- */

static void delete_objects(gw_worker_t *w, gw_job_t *job)
{
    uint8_t sha[32], md5[16];
    if (gw_job_body_acquire(job) != 0) {
        s3_error(job, "InternalError", "request cancelled");
        return;
    }
    EVP_Digest(job->body.base, job->body.len, sha, NULL, EVP_sha256(), NULL);
    EVP_Digest(job->body.base, job->body.len, md5, NULL, EVP_md5(), NULL);
    gw_job_body_release(job);
    if (s3_auth(w, job, sha) != 0)
        return;
    const cairn_sigv4_header_t *h = s3_header(job, "content-md5");
    if (h) {
        uint8_t tmp[24];
        if (h->value_len != 24 || EVP_DecodeBlock(tmp, (const unsigned char *)h->value, 24) != 18) {
            s3_error(job, "InvalidDigest", NULL);
            return;
        }
        if (memcmp(tmp, md5, 16) != 0) {
            s3_error(job, "BadDigest", NULL);
            return;
        }
    }
    cairn_bucket_rec_t br;
    int rc = cairn_meta_bucket_head(&w->meta, job->req_id, job->bucket, &w->scratch, &br);
    if (rc != 0) {
        s3_error_from(job, rc);
        return;
    }
    s3_delete_in_t d;
    if (gw_job_body_acquire(job) != 0) {
        s3_error(job, "InternalError", "request cancelled");
        return;
    }
    rc = s3_xml_delete_parse(job->body.base, job->body.len, &d);
    gw_job_body_release(job);
    if (rc != 0) {
        s3_error(job, "MalformedXML", d.too_many ? "The request must contain no more than 1000 keys." : NULL);
        s3_delete_in_dispose(&d);
        return;
    }
    cairn_buf_t *b = &job->resp_body;
    cairn_xml_begin(b);
    cairn_xml_open_ns(b, "DeleteResult", S3_NS);
    cairn_dec_t dec;
    cairn_dec_init(&dec, d.keys.base, d.keys.len);
    for (size_t i = 0; i < d.n; i++) {
        const uint8_t *k;
        size_t kl;
        cairn_dec_bytes(&dec, &k, &kl);
        int bad_version = cairn_dec_u8(&dec);
        const char *code = NULL, *msg = NULL;
        if (kl == 0 || kl > CAIRN_MAX_KEY_LEN) {
            code = kl ? "KeyTooLongError" : "InvalidArgument";
            msg = kl ? "Your key is too long." : "The key is empty.";
        } else if (bad_version) {
            code = "NoSuchVersion";
            msg = "The specified version does not exist.";
        } else {
            int had_old = 0;
            cairn_obj_rec_t old;
            rc = cairn_meta_obj_delete(&w->meta, job->req_id, job->bucket, (const char *)k, kl, &w->scratch,
                                       &had_old, &old);
            if (rc == 0 && had_old)
                s3_drop_version(w, job, &old);
            if (rc != 0 && rc != CAIRN_ENOTFOUND) {
                code = "InternalError";
                msg = cairn_strerror(rc);
            }
        }
        if (code) {
            cairn_xml_open(b, "Error");
            cairn_xml_elem(b, "Key", (const char *)k, kl);
            cairn_xml_elem(b, "Code", code, strlen(code));
            cairn_xml_elem(b, "Message", msg, strlen(msg));
            cairn_xml_close(b, "Error");
        } else if (!d.quiet) {
            cairn_xml_open(b, "Deleted");
            cairn_xml_elem(b, "Key", (const char *)k, kl);
            cairn_xml_close(b, "Deleted");
        }
    }
    cairn_xml_close(b, "DeleteResult");
    job->status = 200;
    s3_delete_in_dispose(&d);
}

/* ---- versioning, ACLs, tagging, configurations ---- */

static void list_versions(gw_worker_t *w, gw_job_t *job)
{
    char *prefix, *delim, *km, *vm, *maxk, *enc;
    size_t plen, dlen, kmlen, vmlen, mklen, enclen;
    cairn_meta_list_t l;
    cairn_meta_list_init(&l);
    if (s3_param(job, "prefix", &prefix, &plen) | s3_param(job, "delimiter", &delim, &dlen) |
        s3_param(job, "key-marker", &km, &kmlen) | s3_param(job, "version-id-marker", &vm, &vmlen) |
        s3_param(job, "max-keys", &maxk, &mklen) | s3_param(job, "encoding-type", &enc, &enclen)) {
        s3_error(job, "InvalidArgument", "Invalid query parameter encoding.");
        goto out;
    }
    long max = 1000;
    if (maxk) {
        char *e;
        max = strtol(maxk, &e, 10);
        if (mklen == 0 || *e || max < 0) {
            s3_error(job, "InvalidArgument", "Provided max-keys not an integer or within integer range");
            goto out;
        }
        if (max > 1000)
            max = 1000;
    }
    if (enc && strcmp(enc, "url") != 0) {
        s3_error(job, "InvalidArgument", "Invalid Encoding Method specified in Request");
        goto out;
    }
    int url = enc != NULL;
    if (vm && vmlen && !(vmlen == 4 && memcmp(vm, "null", 4) == 0)) {
        s3_error(job, "InvalidArgument", "Invalid version id specified");
        goto out;
    }
    cairn_meta_list_req_t q = {.bucket = job->bucket, .max_keys = (uint32_t)max};
    q.prefix = prefix ? prefix : "";
    q.prefix_len = plen;
    q.delimiter = delim ? delim : "";
    q.delimiter_len = dlen;
    q.start_after = km ? km : "";
    q.start_after_len = kmlen;
    int rc = cairn_meta_obj_list(&w->meta, job->req_id, &q, &l);
    if (rc != 0) {
        s3_error_from(job, rc);
        goto out;
    }
    cairn_buf_t *b = &job->resp_body;
    cairn_xml_begin(b);
    cairn_xml_open_ns(b, "ListVersionsResult", S3_NS);
    cairn_xml_elem(b, "Name", job->bucket, strlen(job->bucket));
    s3_xml_key(b, "Prefix", q.prefix, q.prefix_len, url);
    s3_xml_key(b, "KeyMarker", q.start_after, q.start_after_len, url);
    cairn_xml_elem(b, "VersionIdMarker", vm ? vm : "", vm ? vmlen : 0);
    if (l.truncated) {
        s3_xml_key(b, "NextKeyMarker", l.next, l.next_len, url);
        cairn_xml_elem(b, "NextVersionIdMarker", "null", 4);
    }
    cairn_xml_elemf(b, "MaxKeys", "%ld", max);
    if (delim)
        s3_xml_key(b, "Delimiter", q.delimiter, q.delimiter_len, url);
    if (url)
        cairn_xml_elem(b, "EncodingType", "url", 3);
    cairn_xml_elem(b, "IsTruncated", l.truncated ? "true" : "false", l.truncated ? 4 : 5);
    for (size_t i = 0; i < l.nentries; i++) {
        const cairn_meta_list_entry_t *e = &l.entries[i];
        char t[64];
        s3_time_iso(e->mtime_ms, t);
        cairn_xml_open(b, "Version");
        s3_xml_key(b, "Key", e->key, e->key_len, url);
        cairn_xml_elem(b, "VersionId", "null", 4);
        cairn_xml_elem(b, "IsLatest", "true", 4);
        cairn_xml_elem(b, "LastModified", t, strlen(t));
        cairn_xml_elemf(b, "ETag", "\"%s\"", e->etag);
        cairn_xml_elemf(b, "Size", "%llu", (unsigned long long)e->size);
        s3_xml_owner(b, "Owner", job->owner, strlen(job->owner));
        cairn_xml_elem(b, "StorageClass", "STANDARD", 8);
        cairn_xml_close(b, "Version");
    }
    for (size_t i = 0; i < l.nprefixes; i++) {
        cairn_xml_open(b, "CommonPrefixes");
        s3_xml_key(b, "Prefix", l.prefixes[i].p, l.prefixes[i].len, url);
        cairn_xml_close(b, "CommonPrefixes");
    }
    cairn_xml_close(b, "ListVersionsResult");
    job->status = 200;
out:
    cairn_meta_list_dispose(&l);
    free(prefix);
    free(delim);
    free(km);
    free(vm);
    free(maxk);
    free(enc);
}

static void acl_doc(gw_job_t *job, const char *owner, size_t len)
{
    cairn_buf_t *b = &job->resp_body;
    cairn_xml_begin(b);
    cairn_xml_open_ns(b, "AccessControlPolicy", S3_NS);
    s3_xml_owner(b, "Owner", owner, len);
    cairn_xml_open(b, "AccessControlList");
    cairn_xml_open(b, "Grant");
    cairn_buf_appendf(b, "<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
                         "xsi:type=\"CanonicalUser\">");
    cairn_xml_elem(b, "ID", owner, len);
    cairn_xml_elem(b, "DisplayName", owner, len);
    cairn_xml_close(b, "Grantee");
    cairn_xml_elem(b, "Permission", "FULL_CONTROL", 12);
    cairn_xml_close(b, "Grant");
    cairn_xml_close(b, "AccessControlList");
    cairn_xml_close(b, "AccessControlPolicy");
}

/* The bucket (and, for object calls, the object) must exist; *owner is the bucket's owner. */
static int target_exists(gw_worker_t *w, gw_job_t *job, char owner[128])
{
    cairn_bucket_rec_t br;
    int rc = cairn_meta_bucket_head(&w->meta, job->req_id, job->bucket, &w->scratch, &br);
    if (rc == 0)
        snprintf(owner, 128, "%.*s", (int)br.owner_len, br.owner);
    if (rc == 0 && job->key) {
        cairn_obj_rec_t r;
        rc = cairn_meta_obj_get(&w->meta, job->req_id, job->bucket, job->key, job->key_len, &w->scratch, &r);
    }
    if (rc != 0) {
        s3_error_from(job, rc);
        return -1;
    }
    return 0;
}

static void bucket_config(gw_worker_t *w, gw_job_t *job)
{
    cairn_query_param_t qp[64];
    size_t nq = cairn_query_parse(job->query, job->query_len, qp, 64);
    for (int i = 0; configs[i].param; i++) {
        if (!has(qp, nq, configs[i].param))
            continue;
        if (configs[i].code) {
            s3_error(job, configs[i].code, NULL);
            return;
        }
        cairn_buf_t *b = &job->resp_body;
        cairn_xml_begin(b);
        cairn_xml_open_ns(b, configs[i].doc, S3_NS);
        if (strcmp(configs[i].param, "requestPayment") == 0)
            cairn_xml_elem(b, "Payer", "BucketOwner", 11);
        cairn_xml_close(b, configs[i].doc);
        job->status = 200;
        return;
    }
    s3_error(job, "NotImplemented", NULL);
}

static void ext_step(gw_worker_t *w, gw_job_t *job)
{
    char owner[128];
    switch (job->op) {
    case S3_OP_COPY_OBJECT:
        copy_object(w, job);
        return;
    case S3_OP_DELETE_OBJECTS:
        delete_objects(w, job);
        return;
    default:
        break;
    }
    if (s3_auth(w, job, NULL) != 0 || target_exists(w, job, owner) != 0)
        return;
    switch (job->op) {
    case S3_OP_GET_BUCKET_VERSIONING: {
        cairn_buf_t *b = &job->resp_body;
        cairn_xml_begin(b);
        cairn_xml_open_ns(b, "VersioningConfiguration", S3_NS);
        cairn_xml_close(b, "VersioningConfiguration");
        job->status = 200;
        return;
    }
    case S3_OP_LIST_OBJECT_VERSIONS:
        list_versions(w, job);
        return;
    case S3_OP_GET_ACL:
        acl_doc(job, owner, strlen(owner));
        job->status = 200;
        return;
    case S3_OP_PUT_ACL: {
        const cairn_sigv4_header_t *h = s3_header(job, "x-amz-acl");
        if (h && h->value_len == 7 && memcmp(h->value, "private", 7) == 0 && job->body.len == 0) {
            job->status = 200;
            return;
        }
        s3_error(job, "NotImplemented", "Only the canned ACL private is supported.");
        return;
    }
    case S3_OP_GET_OBJECT_TAGGING: {
        cairn_buf_t *b = &job->resp_body;
        cairn_xml_begin(b);
        cairn_xml_open_ns(b, "Tagging", S3_NS);
        cairn_xml_open(b, "TagSet");
        cairn_xml_close(b, "TagSet");
        cairn_xml_close(b, "Tagging");
        job->status = 200;
        return;
    }
    case S3_OP_BUCKET_CONFIG:
        bucket_config(w, job);
        return;
    default:
        s3_error(job, "NotImplemented", NULL);
        return;
    }
}
