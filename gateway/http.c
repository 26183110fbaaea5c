/*
 * http.c — h2o glue: turn an HTTP request into a job, hand it to the worker
 * pool, and answer the client when the job comes back.
 *
 * Job lifetime: a job is tied to its request with a shared pool allocation
 * (on_req_dispose runs when h2o frees the request, answered or aborted).
 * The job is freed by whichever comes last on the loop thread: the request's
 * disposal, or the worker's posted-back message.
 */
#include <openssl/rand.h>
#include <stdarg.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/uri.h"
#include "gw.h"
#include "gw_metrics.h"
#include "s3_ext.h"

typedef struct {
    gw_job_t *job;
} anchor_t;

static void job_free(gw_job_t *job)
{
    __atomic_sub_fetch(&job->thread->gw->inflight, 1, __ATOMIC_RELAXED);
    free(job->key);
    free(job->path);
    free(job->query);
    free(job->headers);
    free(job->err_msg);
    free(job->chunk[0]);
    free(job->chunk[1]);
    cairn_buf_dispose(&job->hdr_store);
    cairn_buf_dispose(&job->resp_hdrs);
    cairn_buf_dispose(&job->resp_body);
    cairn_buf_dispose(&job->rec_buf);
    pthread_mutex_destroy(&job->lock);
    pthread_cond_destroy(&job->cond);
    free(job);
}

static void on_req_dispose(void *p)
{
    gw_job_t *job = ((anchor_t *)p)->job;
    pthread_mutex_lock(&job->lock);
    job->cancelled = 1;
    while (job->body_busy)
        pthread_cond_wait(&job->cond, &job->lock);
    pthread_mutex_unlock(&job->lock);
    gw_metrics_request_gone(job);
    job->req = NULL;
    if (!job->in_worker)
        job_free(job);
}

int gw_job_body_acquire(gw_job_t *job)
{
    pthread_mutex_lock(&job->lock);
    int rc = job->cancelled ? -1 : 0;
    if (rc == 0)
        job->body_busy = 1;
    pthread_mutex_unlock(&job->lock);
    return rc;
}

void gw_job_body_release(gw_job_t *job)
{
    pthread_mutex_lock(&job->lock);
    job->body_busy = 0;
    pthread_cond_broadcast(&job->cond);
    pthread_mutex_unlock(&job->lock);
}

int gw_job_cancelled(gw_job_t *job)
{
    pthread_mutex_lock(&job->lock);
    int c = job->cancelled;
    pthread_mutex_unlock(&job->lock);
    return c;
}

void gw_job_header(gw_job_t *job, const char *name, const char *fmt, ...)
{
    cairn_buf_append(&job->resp_hdrs, name, strlen(name) + 1);
    va_list ap;
    va_start(ap, fmt);
    char tmp[2048];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof tmp)
        n = sizeof tmp - 1;
    cairn_buf_append(&job->resp_hdrs, tmp, (size_t)n);
    cairn_buf_append(&job->resp_hdrs, "", 1);
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 416: return "Range Not Satisfiable";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    }
    return "Unknown";
}

static void log_done(gw_job_t *job, int status)
{
    gw_metrics_request_end(job, status);
    cairn_log(status >= 500 ? CAIRN_LOG_WARN : CAIRN_LOG_INFO, job->req_id, "%s /%s%s%.*s %d %s %llu ms",
              job->method, job->bucket, job->key_len ? "/" : "", (int)(job->key_len > 200 ? 200 : job->key_len),
              job->key ? job->key : "", status, job->err_code ? job->err_code : "-",
              (unsigned long long)(cairn_now_ms() - job->start_ms));
}

static void add_headers(gw_job_t *job)
{
    h2o_req_t *req = job->req;
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-amz-request-id"), 0, NULL, job->req_id_hex,
                          16);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-amz-id-2"), 0, NULL, job->req_id_hex, 16);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("server"), 0, NULL, H2O_STRLIT("cairn"));
    const char *p = (const char *)job->resp_hdrs.base, *end = p + job->resp_hdrs.len;
    while (p < end) {
        const char *name = p;
        size_t nlen = strlen(name);
        const char *value = name + nlen + 1;
        size_t vlen = strlen(value);
        h2o_iovec_t n = h2o_strdup(&req->pool, name, nlen);
        h2o_iovec_t v = h2o_strdup(&req->pool, value, vlen);
        h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 1, NULL, v.base, v.len);
        p = value + vlen + 1;
    }
}

/* ---- GET streaming ----
 *
 * Two buffers alternate. Sending chunk[i] hands it to h2o until the next
 * proceed; at that moment the worker may start filling chunk[i ^ 1], which
 * h2o released at the previous proceed. State (loop thread only):
 * read_busy — a worker fills chunk[rd]; read_ready — chunk[rd] is filled and
 * waits for h2o to ask (want). */

static void on_read_done(gw_job_t *job);

static void start_read(gw_job_t *job)
{
    job->read_busy = 1;
    job->step = s3_get_next_step;
    job->done = on_read_done;
    job->in_worker = 1;
    gw_pool_submit(job->thread->gw, job);
}

/* Send the ready chunk, then start reading the next one into the other buffer. */
static void send_ready(gw_job_t *job)
{
    int i = job->rd;
    job->read_ready = 0;
    job->want = 0;
    if (job->read_err) {
        /* Headers are gone already: all we can do is cut the connection, so the client sees a short body. */
        log_done(job, 500);
        h2o_send(job->req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    job->sent += job->out[i].len;
    int final = job->pos >= job->end;
    job->rd ^= 1;
    if (final)
        log_done(job, job->req->res.status);
    else
        start_read(job);
    h2o_send(job->req, &job->out[i], 1, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_read_done(gw_job_t *job)
{
    job->read_busy = 0;
    job->read_ready = 1;
    if (job->want)
        send_ready(job);
}

static void on_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    gw_job_t *job = (gw_job_t *)((char *)g - offsetof(gw_job_t, generator));
    job->want = 1;
    if (job->read_ready)
        send_ready(job);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *req)
{
    /* The client went away; on_req_dispose follows and releases the job. */
}

/* ---- first answer ---- */

static void send_response(gw_job_t *job)
{
    h2o_req_t *req = job->req;
    if (job->status >= 300 && job->err_code)
        s3_error_render(job);
    req->res.status = job->status;
    req->res.reason = reason_of(job->status);
    add_headers(job);
    if (job->streaming) {
        job->generator.proceed = on_proceed;
        job->generator.stop = on_stop;
        req->res.content_length = job->end - (job->pos - job->out[job->rd].len);
        h2o_start_response(req, &job->generator);
        job->read_ready = 1;
        send_ready(job);
        return;
    }
    log_done(job, job->status);
    if (job->is_head) {
        req->res.content_length = job->err_code ? 0 : job->end - job->pos;
        h2o_start_response(req, &job->generator);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    if (job->resp_body.len && job->err_code == NULL && !h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1))
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/xml"));
    if (job->err_code)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/xml"));
    req->res.content_length = job->resp_body.len;
    h2o_send_inline(req, (const char *)job->resp_body.base, job->resp_body.len);
}

void gw_http_on_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        gw_job_t *job = (gw_job_t *)msg;
        job->in_worker = 0;
        if (job->req == NULL) {
            job_free(job);
            continue;
        }
        job->done(job);
    }
}

/* ---- request parsing ---- */

static int has_param(const cairn_query_param_t *qp, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (qp[i].name_len == len && memcmp(qp[i].name, name, len) == 0)
            return 1;
    return 0;
}

/* Query parameters that select nothing by themselves: listing options,
 * presigned-URL auth, response header overrides. Anything else names a
 * sub-resource (acl, uploads, ...) that this gateway does not serve yet. */
static int plain_param(const cairn_query_param_t *p)
{
    static const char *ok[] = {"prefix", "delimiter", "marker", "max-keys", "encoding-type", "list-type",
                               "continuation-token", "start-after", "fetch-owner", "x-id", "partNumber", NULL};
    if (p->name_len > 6 && memcmp(p->name, "X-Amz-", 6) == 0)
        return 1;
    if (p->name_len > 9 && memcmp(p->name, "response-", 9) == 0)
        return 1;
    for (int i = 0; ok[i]; i++)
        if (p->name_len == strlen(ok[i]) && memcmp(p->name, ok[i], p->name_len) == 0)
            return 1;
    return 0;
}

static void unsupported_step(gw_worker_t *w, gw_job_t *job)
{
    if (s3_auth(w, job, NULL) == 0)
        s3_error(job, "NotImplemented", "A header or query you provided implies functionality that is not implemented.");
}

static void fail_now(gw_job_t *job, const char *code, const char *msg)
{
    s3_error(job, code, "%s", msg);
    send_response(job);
}

int gw_http_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    gw_thread_t *th = H2O_STRUCT_FROM_MEMBER(gw_thread_t, ctx, req->conn->ctx);
    size_t plen = req->query_at == SIZE_MAX ? req->path.len : req->query_at;

    if (plen == 14 && memcmp(req->path.base, "/_cairn/health", 14) == 0) {
        static const char ok[] = "ok\n";
        req->res.status = 200;
        req->res.reason = "OK";
        req->res.content_length = sizeof ok - 1;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain"));
        h2o_send_inline(req, ok, sizeof ok - 1);
        return 0;
    }

    gw_job_t *job = cairn_calloc(1, sizeof *job);
    pthread_mutex_init(&job->lock, NULL);
    pthread_cond_init(&job->cond, NULL);
    job->thread = th;
    job->req = req;
    job->start_ms = cairn_now_ms();
    RAND_bytes((uint8_t *)&job->req_id, sizeof job->req_id);
    job->req_id |= 1; /* never 0: 0 means "no request" in logs */
    snprintf(job->req_id_hex, sizeof job->req_id_hex, "%016llX", (unsigned long long)job->req_id);
    anchor_t *anchor = h2o_mem_alloc_shared(&req->pool, sizeof *anchor, on_req_dispose);
    anchor->job = job; /* linked to the pool: on_req_dispose runs when the request is freed */
    gw_metrics_request_begin(job);
    snprintf(job->method, sizeof job->method, "%.*s", (int)(req->method.len < 7 ? req->method.len : 7),
             req->method.base);
    job->body = req->entity;
    if (job->body.base == NULL)
        job->body = h2o_iovec_init("", 0);

    job->path = cairn_strndup(req->path.base, plen);
    job->path_len = plen;
    if (req->query_at != SIZE_MAX) {
        job->query_len = req->path.len - req->query_at - 1;
        job->query = cairn_strndup(req->path.base + req->query_at + 1, job->query_len);
    } else {
        job->query = cairn_strndup("", 0);
    }

    /* Limits ([gateway] max_requests, max_header_size; limits.c has the rest). */
    if (__atomic_add_fetch(&th->gw->inflight, 1, __ATOMIC_RELAXED) > th->gw->cfg.gw_max_requests)
        return fail_now(job, "SlowDown", "Please reduce your request rate."), 0;
    size_t hbytes = req->authority.len;
    for (size_t i = 0; i < req->headers.size; i++)
        hbytes += req->headers.entries[i].name->len + req->headers.entries[i].value.len;
    if (hbytes > th->gw->cfg.gw_max_header_size)
        return fail_now(job, "RequestHeaderSectionTooLarge", "Your request header section exceeds the maximum allowed size."), 0;

    /* Headers for the signature: h2o took host and content-length out of the list. */
    size_t nh = req->headers.size + 2;
    job->headers = cairn_calloc(nh, sizeof *job->headers);
    cairn_buf_init(&job->hdr_store);
    char clen[24];
    snprintf(clen, sizeof clen, "%zu", job->body.len);
    size_t total = req->authority.len + strlen(clen) + 32;
    for (size_t i = 0; i < req->headers.size; i++)
        total += req->headers.entries[i].name->len + req->headers.entries[i].value.len;
    cairn_buf_reserve(&job->hdr_store, total); /* no reallocation below: the views stay valid */
#define KEEP(p, n) (cairn_buf_append(&job->hdr_store, (p), (n)), (const char *)job->hdr_store.base + job->hdr_store.len - (n))
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        cairn_sigv4_header_t *o = &job->headers[job->nheaders++];
        o->name = KEEP(h->name->base, h->name->len);
        o->name_len = h->name->len;
        o->value = KEEP(h->value.base, h->value.len);
        o->value_len = h->value.len;
    }
    job->headers[job->nheaders++] = (cairn_sigv4_header_t){KEEP("host", 4), 4, KEEP(req->authority.base, req->authority.len),
                                                          req->authority.len};
    job->headers[job->nheaders++] = (cairn_sigv4_header_t){KEEP("content-length", 14), 14, KEEP(clen, strlen(clen)),
                                                          strlen(clen)};
#undef KEEP

    /* Virtual-hosted style: the bucket from Host (s3_bucket.c), the key is the
     * whole path; else path style: /bucket/key. */
    if (plen == 0 || req->path.base[0] != '/')
        return fail_now(job, "InvalidURI", "Couldn't parse the specified URI."), 0;
    const char *p = req->path.base + 1, *end = req->path.base + plen;
    int vhost = s3_vhost_bucket(th->gw->cfg.gw_domain, req->authority.base, req->authority.len, job->bucket);
    if (vhost < 0)
        return fail_now(job, "InvalidBucketName", "The specified bucket is not valid."), 0;
    const char *slash = vhost ? req->path.base : memchr(p, '/', (size_t)(end - p));
    size_t blen = vhost;
    if (!vhost) {
        const char *bend = slash ? slash : end;
        char bucket_raw[3 * CAIRN_MAX_BUCKET_LEN + 1];
        if ((size_t)(bend - p) > sizeof bucket_raw - 1)
            return fail_now(job, "InvalidBucketName", "The specified bucket is not valid."), 0;
        if (cairn_uri_decode(p, (size_t)(bend - p), bucket_raw, &blen, 0) != 0)
            return fail_now(job, "InvalidURI", "Couldn't parse the specified URI."), 0;
        if (blen > CAIRN_MAX_BUCKET_LEN)
            return fail_now(job, "InvalidBucketName", "The specified bucket is not valid."), 0;
        memcpy(job->bucket, bucket_raw, blen);
        job->bucket[blen] = '\0';
    }
    if (slash && slash + 1 < end) {
        size_t rawlen = (size_t)(end - slash - 1);
        job->key = cairn_malloc(rawlen + 1);
        if (cairn_uri_decode(slash + 1, rawlen, job->key, &job->key_len, 0) != 0)
            return fail_now(job, "InvalidURI", "Couldn't parse the specified URI."), 0;
        job->key[job->key_len] = '\0';
        if (job->key_len > CAIRN_MAX_KEY_LEN)
            return fail_now(job, "KeyTooLongError", "Your key is too long."), 0;
        if (memchr(job->key, '\0', job->key_len))
            return fail_now(job, "InvalidArgument", "Object key contains a NUL byte."), 0;
    }

    cairn_query_param_t qp[64];
    size_t nq = cairn_query_parse(job->query, job->query_len, qp, 64);
    int method_get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"));
    int method_head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    int method_put = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PUT"));
    int method_del = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("DELETE"));
    job->is_head = method_head;

    if (blen == 0) {
        if (method_get)
            job->op = S3_OP_LIST_BUCKETS;
    } else if (job->key == NULL) {
        if (method_get && nq == 1 && has_param(qp, nq, "location"))
            job->op = S3_OP_GET_BUCKET_LOCATION;
        else if (method_put)
            job->op = S3_OP_CREATE_BUCKET;
        else if (method_del)
            job->op = S3_OP_DELETE_BUCKET;
        else if (method_head)
            job->op = S3_OP_HEAD_BUCKET;
        else if (method_get) {
            char lt[8];
            job->op = cairn_query_get(job->query, job->query_len, "list-type", lt, sizeof lt, NULL) == 0 &&
                              strcmp(lt, "2") == 0
                          ? S3_OP_LIST_OBJECTS_V2
                          : S3_OP_LIST_OBJECTS;
        }
    } else {
        if (method_put)
            job->op = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-amz-copy-source"), -1) == -1
                          ? S3_OP_PUT_OBJECT
                          : S3_OP_NONE;
        else if (method_get)
            job->op = S3_OP_GET_OBJECT;
        else if (method_head)
            job->op = S3_OP_HEAD_OBJECT;
        else if (method_del)
            job->op = S3_OP_DELETE_OBJECT;
    }
    if ((job->step = s3_ext_route(job, qp, nq)) != NULL) { /* multipart, copy, sub-resources: s3_ext.c */
        job->done = send_response;
        job->in_worker = 1;
        gw_pool_submit(th->gw, job);
        return 0;
    }
    for (size_t i = 0; i < nq && job->op != S3_OP_NONE && job->op != S3_OP_GET_BUCKET_LOCATION; i++)
        if (!plain_param(&qp[i]))
            job->op = S3_OP_NONE;
    if (job->op == S3_OP_NONE) {
        int known = method_get || method_head || method_put || method_del ||
                    h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
        if (!known)
            return fail_now(job, "MethodNotAllowed", "The specified method is not allowed against this resource."), 0;
    }

    switch (job->op) {
    case S3_OP_NONE:
        job->step = unsupported_step; /* authenticate first: a bad signature is reported as such */
        break;
    case S3_OP_PUT_OBJECT: case S3_OP_GET_OBJECT: case S3_OP_HEAD_OBJECT: case S3_OP_DELETE_OBJECT:
        job->step = s3_object_step;
        break;
    default:
        job->step = s3_bucket_step;
        break;
    }
    job->done = send_response;
    job->in_worker = 1;
    gw_pool_submit(th->gw, job);
    return 0;
}
