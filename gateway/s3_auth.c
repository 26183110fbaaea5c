/*
 * s3_auth.c — SigV4 for the gateway: look the access key up in the
 * metadata tier (cached per worker for a few seconds), verify the signature
 * (sigv4.c), and name the S3 error when it fails.
 */
#include <openssl/evp.h>
#include <string.h>
#include <time.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "gw.h"

#define CREDS_TTL_MS 10000
#define BUCKET_OWNER_TTL_MS 1000 /* how stale a bucket's owner may be (deleted and recreated by someone else) */

static void request_of(gw_job_t *job, cairn_sigv4_request_t *rq, const char *body_hex)
{
    memset(rq, 0, sizeof *rq);
    rq->method = job->method;
    rq->method_len = strlen(job->method);
    rq->raw_path = job->path;
    rq->raw_path_len = job->path_len;
    rq->raw_query = job->query;
    rq->raw_query_len = job->query_len;
    rq->headers = job->headers;
    rq->nheaders = job->nheaders;
    rq->body_sha256_hex = body_hex;
    rq->now = time(NULL);
}

/* The secret and owner of an access key: from the cache, else the metadata tier. */
static int lookup(gw_worker_t *w, gw_job_t *job, const char *ak, const char **secret, const char **owner)
{
    int64_t now = cairn_now_ms();
    for (unsigned i = 0; i < 8; i++) {
        if (w->creds[i].expires_ms > now && strcmp(w->creds[i].access_key, ak) == 0) {
            *secret = w->creds[i].secret;
            *owner = w->creds[i].owner;
            return 0;
        }
    }
    unsigned slot = w->creds_next++ % 8;
    int rc = cairn_meta_user_get(&w->meta, job->req_id, ak, w->creds[slot].secret, sizeof w->creds[slot].secret,
                                 w->creds[slot].owner, sizeof w->creds[slot].owner);
    if (rc != 0)
        return rc;
    size_t aklen = strlen(ak);
    if (aklen >= sizeof w->creds[slot].access_key)
        return CAIRN_ENOSUCHUSER;
    memcpy(w->creds[slot].access_key, ak, aklen + 1);
    w->creds[slot].expires_ms = now + CREDS_TTL_MS;
    *secret = w->creds[slot].secret;
    *owner = w->creds[slot].owner;
    return 0;
}

static void sigv4_fail(gw_job_t *job, int rc, const char *reason)
{
    int status;
    const char *msg;
    const char *code = cairn_sigv4_s3_error(rc, &status, &msg);
    s3_error(job, code, "%s", reason ? reason : msg);
    job->status = status;
}

int s3_auth(gw_worker_t *w, gw_job_t *job, const uint8_t *payload_sha256)
{
    return s3_auth_full(w, job, payload_sha256, NULL, NULL);
}

int s3_auth_full(gw_worker_t *w, gw_job_t *job, const uint8_t *payload_sha256, cairn_sigv4_auth_t *auth_out,
                 cairn_sigv4_result_t *res_out)
{
    cairn_sigv4_request_t rq;
    cairn_sigv4_auth_t auth;
    request_of(job, &rq, NULL);
    int rc = cairn_sigv4_parse(&rq, &auth);
    if (rc == CAIRN_ENOTFOUND) {
        s3_error(job, "AccessDenied", "Anonymous access is not allowed.");
        return -1;
    }
    if (rc != 0) {
        sigv4_fail(job, rc, auth.reason);
        return -1;
    }
    const char *secret, *owner;
    rc = lookup(w, job, auth.access_key, &secret, &owner);
    if (rc == CAIRN_ENOSUCHUSER || rc == CAIRN_ENOTFOUND) {
        s3_error(job, "InvalidAccessKeyId", NULL);
        return -1;
    }
    if (rc != 0) {
        cairn_log(CAIRN_LOG_ERROR, job->req_id, "auth: metadata service: %s", cairn_strerror(rc));
        s3_error(job, "ServiceUnavailable", "The metadata service is unreachable; try again.");
        return -1;
    }
    const char *reason = NULL;
    rc = cairn_sigv4_verify(&rq, &auth, secret, res_out, &reason);
    if (rc == CAIRN_SIGV4_ESIGNATURE && auth.payload == CAIRN_SIGV4_PAYLOAD_ABSENT && job->body.len > 0) {
        /* Clients that sign the body's hash without sending it (curl --data). */
        uint8_t sum[32];
        char hex[65];
        if (payload_sha256 == NULL) {
            if (gw_job_body_acquire(job) != 0) {
                s3_error(job, "InternalError", "request cancelled");
                return -1;
            }
            EVP_Digest(job->body.base, job->body.len, sum, NULL, EVP_sha256(), NULL);
            gw_job_body_release(job);
            payload_sha256 = sum;
        }
        cairn_hex(payload_sha256, 32, hex);
        request_of(job, &rq, hex);
        rc = cairn_sigv4_verify(&rq, &auth, secret, res_out, &reason);
    }
    if (rc != 0) {
        cairn_log(CAIRN_LOG_INFO, job->req_id, "auth failed for %s: %s", auth.access_key,
                  reason ? reason : cairn_sigv4_strerror(rc));
        sigv4_fail(job, rc, reason);
        return -1;
    }
    if (payload_sha256 && (rc = cairn_sigv4_payload_check(&auth, payload_sha256)) != 0) {
        sigv4_fail(job, rc, NULL);
        return -1;
    }
    snprintf(job->owner, sizeof job->owner, "%s", owner);
    if (auth_out)
        *auth_out = auth;
    /* Buckets are private to their owner: every call naming a bucket, but
     * CreateBucket (which the metadata tier checks itself), needs it owned. */
    if (job->bucket[0] && job->op != S3_OP_CREATE_BUCKET && s3_bucket_access(w, job, job->bucket) != 0)
        return -1;
    return 0;
}

int s3_bucket_access(gw_worker_t *w, gw_job_t *job, const char *bucket)
{
    int64_t now = cairn_now_ms();
    const char *owner = NULL;
    for (unsigned i = 0; i < 16 && !owner; i++)
        if (w->owners[i].expires_ms > now && strcmp(w->owners[i].bucket, bucket) == 0)
            owner = w->owners[i].owner;
    if (owner == NULL) {
        cairn_bucket_rec_t br;
        int rc = cairn_meta_bucket_head(&w->meta, job->req_id, bucket, &w->scratch, &br);
        if (rc != 0) {
            s3_error_from(job, rc == CAIRN_EINVAL ? CAIRN_EBUCKET : rc);
            return -1;
        }
        unsigned slot = w->owners_next++ % 16;
        snprintf(w->owners[slot].bucket, sizeof w->owners[slot].bucket, "%s", bucket);
        snprintf(w->owners[slot].owner, sizeof w->owners[slot].owner, "%.*s", (int)br.owner_len, br.owner);
        w->owners[slot].expires_ms = now + BUCKET_OWNER_TTL_MS;
        owner = w->owners[slot].owner;
    }
    if (strcmp(owner, job->owner) != 0) {
        s3_error(job, "AccessDenied", NULL);
        return -1;
    }
    return 0;
}

void s3_bucket_forget(gw_worker_t *w, const char *bucket)
{
    for (unsigned i = 0; i < 16; i++)
        if (strcmp(w->owners[i].bucket, bucket) == 0)
            w->owners[i].expires_ms = 0;
}

int s3_auth_wants_body_hash(gw_job_t *job)
{
    for (size_t i = 0; i < job->nheaders; i++) {
        const cairn_sigv4_header_t *h = &job->headers[i];
        if (h->name_len == 20 && memcmp(h->name, "x-amz-content-sha256", 20) == 0)
            return h->value_len == 64; /* a hex digest: the body must be checked against it */
    }
    return 0;
}
