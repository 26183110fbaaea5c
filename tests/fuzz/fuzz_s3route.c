/*
 * fuzz_s3route.c — libFuzzer driver for the S3 request front end: from the
 * bytes of an HTTP/1 request to an S3 operation.
 *
 * gw_http_on_req (gateway/http.c) needs a live h2o request, so this driver
 * runs the same steps on the same functions without h2o's server: the
 * request is parsed by picohttpparser (phr_parse_request, h2o's HTTP/1
 * parser, from libh2o), header names are lower-cased and Host and
 * Content-Length taken out as h2o does; then, as in gw_http_on_req, the
 * bucket comes from Host (s3_vhost_bucket, domains "s3.test,localhost") or
 * from the first path segment (cairn_uri_decode, bounded like the
 * gateway's), the key from the rest, the query is split
 * (cairn_query_parse), and s3_ext_route picks multipart, copy, DeleteObjects
 * and sub-resource calls. The request's SigV4 parse runs on the result.
 *
 * Checked properties, beyond "no crash, no sanitizer report":
 * - a key is at most what the path held, decoded, and any key longer than
 *   CAIRN_MAX_KEY_LEN or holding a NUL is refused before routing;
 * - s3_ext_route returns a step exactly when it sets one of its own
 *   operations, never routes a request without a bucket, and sends calls on
 *   keys only when there is a key (and bucket calls only when there is not).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/sigv4.h"
#include "cairn/uri.h"
#include "gw.h"
#include "s3_ext.h"

/* picohttpparser, exported by libh2o without a header */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                      size_t last_len);

#define MAX_HEADERS 100 /* h2o's H2O_MAX_HEADERS */

static int key_op(s3_op_t op)
{
    switch (op) {
    case S3_OP_CREATE_MPU: case S3_OP_COMPLETE_MPU: case S3_OP_UPLOAD_PART: case S3_OP_UPLOAD_PART_COPY:
    case S3_OP_ABORT_MPU: case S3_OP_LIST_PARTS: case S3_OP_COPY_OBJECT: case S3_OP_GET_OBJECT_TAGGING:
        return 1;
    case S3_OP_LIST_MPUS: case S3_OP_DELETE_OBJECTS: case S3_OP_GET_BUCKET_VERSIONING:
    case S3_OP_LIST_OBJECT_VERSIONS: case S3_OP_BUCKET_CONFIG:
        return 0;
    default:
        return -1; /* either (ACLs), or not one of s3_ext_route's */
    }
}

/* Bucket and key as gw_http_on_req takes them: 0, or -1 when the gateway
 * answers an error before routing. */
static int split_path(gw_job_t *job, const char *path, size_t plen, const char *host, size_t hlen)
{
    if (plen == 0 || path[0] != '/')
        return -1;
    const char *p = path + 1, *end = path + plen;
    int vhost = s3_vhost_bucket("s3.test,localhost", host, hlen, job->bucket);
    if (vhost < 0)
        return -1;
    if (vhost > 0 && (strlen(job->bucket) != (size_t)vhost))
        abort();
    const char *slash = vhost ? path : memchr(p, '/', (size_t)(end - p));
    if (!vhost) {
        const char *bend = slash ? slash : end;
        char raw[3 * CAIRN_MAX_BUCKET_LEN + 1];
        size_t blen;
        if ((size_t)(bend - p) > sizeof raw - 1 || cairn_uri_decode(p, (size_t)(bend - p), raw, &blen, 0) != 0 ||
            blen > CAIRN_MAX_BUCKET_LEN)
            return -1;
        memcpy(job->bucket, raw, blen);
        job->bucket[blen] = '\0';
    }
    if (slash && slash + 1 < end) {
        size_t rawlen = (size_t)(end - slash - 1);
        job->key = malloc(rawlen + 1);
        if (cairn_uri_decode(slash + 1, rawlen, job->key, &job->key_len, 0) != 0)
            return -1;
        if (job->key_len > rawlen)
            abort();
        job->key[job->key_len] = '\0';
        if (job->key_len > CAIRN_MAX_KEY_LEN || memchr(job->key, '\0', job->key_len))
            return -1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    const char *method, *target;
    size_t mlen, tlen, nh = MAX_HEADERS;
    int minor;
    struct phr_header hs[MAX_HEADERS];
    int hl = phr_parse_request(buf, size, &method, &mlen, &target, &tlen, &minor, hs, &nh, 0);
    if (hl <= 0) {
        free(buf);
        return 0;
    }

    gw_job_t *job = calloc(1, sizeof *job);
    snprintf(job->method, sizeof job->method, "%.*s", (int)(mlen < 7 ? mlen : 7), method);
    const char *qm = memchr(target, '?', tlen);
    size_t plen = qm ? (size_t)(qm - target) : tlen;
    job->path = strndup(target, plen);
    job->path_len = plen;
    job->query = qm ? strndup(qm + 1, tlen - plen - 1) : strdup("");
    job->query_len = strlen(job->query);

    /* h2o: names lower-cased, Host becomes the authority, Content-Length goes */
    const char *host = "";
    size_t hostlen = 0;
    job->headers = calloc(nh + 1, sizeof *job->headers);
    for (size_t i = 0; i < nh; i++) {
        if (hs[i].name == NULL)
            continue; /* a continuation line */
        char *name = (char *)hs[i].name;
        for (size_t j = 0; j < hs[i].name_len; j++)
            if (name[j] >= 'A' && name[j] <= 'Z')
                name[j] += 32;
        if (hs[i].name_len == 4 && memcmp(name, "host", 4) == 0) {
            host = hs[i].value;
            hostlen = hs[i].value_len;
            continue;
        }
        if (hs[i].name_len == 14 && memcmp(name, "content-length", 14) == 0)
            continue;
        job->headers[job->nheaders++] =
            (cairn_sigv4_header_t){name, hs[i].name_len, hs[i].value, hs[i].value_len};
    }
    job->headers[job->nheaders++] = (cairn_sigv4_header_t){"host", 4, host, hostlen};

    if (split_path(job, target, plen, host, hostlen) == 0) {
        cairn_query_param_t qp[64];
        size_t nq = cairn_query_parse(job->query, job->query_len, qp, 64);
        if (nq > 64)
            abort();
        job->op = S3_OP_NONE;
        gw_step_fn step = s3_ext_route(job, qp, nq);
        int k = key_op(job->op);
        if ((step != NULL) != (k >= 0 || job->op == S3_OP_GET_ACL || job->op == S3_OP_PUT_ACL))
            abort();
        if (step && job->bucket[0] == '\0')
            abort();
        if (step && k >= 0 && (k == 1) != (job->key != NULL))
            abort();
        (void)s3_bucket_name_valid(job->bucket, strlen(job->bucket));

        /* the signature parse the worker runs first */
        cairn_sigv4_request_t rq = {
            .method = method, .method_len = mlen, .raw_path = job->path, .raw_path_len = job->path_len,
            .raw_query = job->query, .raw_query_len = job->query_len, .headers = job->headers,
            .nheaders = job->nheaders, .now = 1369353600};
        cairn_sigv4_auth_t auth;
        (void)cairn_sigv4_parse(&rq, &auth);
    }
    free(job->key);
    free(job->path);
    free(job->query);
    free(job->headers);
    free(job);
    free(buf);
    return 0;
}
