/*
 * s3_chunked.c — turning a request body into the object's bytes (worker
 * side): authentication with the signing key kept, aws-chunked decoding in
 * place (cairn/awschunked.h), the additional checksums (cairn/checksum.h),
 * and the system headers stored with the object.
 *
 * Order, and why: authenticate first (the seed signature of a streamed body
 * is in the headers, and no byte is trusted before it checks); decode the
 * framing, verifying each chunk signature; then verify the checksum the
 * client sent (header, or trailer after the last chunk) over the decoded
 * bytes. All of it happens before any fragment is written, so a body that
 * fails costs no storage. Content-MD5 and a hex x-amz-content-sha256 are
 * checked after the data path has hashed the body (s3_body_verify), since it
 * computes MD5 for the ETag anyway.
 *
 * Cost: decoding moves every byte once (memmove) and, for signed chunks,
 * hashes it with SHA-256; a checksum is one more pass (CRC32C ~20 GB/s,
 * CRC32 and CRC64 ~2 GB/s or more, SHA ~1 GB/s).
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <strings.h>

#include "cairn/awschunked.h"
#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/meta_mpu.h"
#include "s3_ext.h"

/* Headers stored with an object and returned by GET/HEAD. */
static const char *const stored[] = {"content-encoding", "content-disposition", "content-language",
                                     "cache-control", "expires", NULL};

const cairn_sigv4_header_t *s3_header(gw_job_t *job, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < job->nheaders; i++)
        if (job->headers[i].name_len == len && memcmp(job->headers[i].name, name, len) == 0)
            return &job->headers[i];
    return NULL;
}

static int sys_add(s3_body_t *b, const char *name, const char *value, size_t vlen)
{
    size_t nlen = strlen(name);
    if (b->sys_len + 4 + nlen + vlen > sizeof b->sys || vlen > UINT16_MAX)
        return -1;
    uint8_t *p = b->sys + b->sys_len;
    p[0] = (uint8_t)nlen;
    p[1] = (uint8_t)(nlen >> 8);
    memcpy(p + 2, name, nlen);
    p[2 + nlen] = (uint8_t)vlen;
    p[3 + nlen] = (uint8_t)(vlen >> 8);
    memcpy(p + 4 + nlen, value, vlen);
    b->sys_len += 4 + nlen + vlen;
    return 0;
}

/* Content-Encoding without its aws-chunked token ("aws-chunked,gzip" -> "gzip"). */
static size_t strip_aws_chunked(const char *v, size_t n, char *out, size_t outsz)
{
    size_t o = 0, i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        size_t a = i, e = j;
        while (a < e && (v[a] == ' ' || v[a] == '\t'))
            a++;
        while (e > a && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > a && !(e - a == 11 && strncasecmp(v + a, "aws-chunked", 11) == 0) && o + (e - a) + 1 < outsz) {
            if (o)
                out[o++] = ',';
            memcpy(out + o, v + a, e - a);
            o += e - a;
        }
        i = j + 1;
    }
    out[o] = '\0';
    return o;
}

/* Length of the base64 form of each algorithm's value. */
static size_t ck_b64_len(cairn_ck_alg_t a)
{
    switch (a) {
    case CAIRN_CK_CRC32:
    case CAIRN_CK_CRC32C: return 8;
    case CAIRN_CK_CRC64NVME: return 12;
    case CAIRN_CK_SHA1: return 28;
    case CAIRN_CK_SHA256: return 44;
    default: return 0;
    }
}

static int decode_chunked(gw_job_t *job, const cairn_sigv4_auth_t *auth, const cairn_sigv4_result_t *res,
                          cairn_awschunked_t *st)
{
    st->signed_chunks = auth->payload != CAIRN_SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER;
    st->trailer = auth->payload != CAIRN_SIGV4_PAYLOAD_STREAMING;
    st->signing_key = res->signing_key;
    st->auth = auth;
    if (gw_job_body_acquire(job) != 0) {
        s3_error(job, "InternalError", "request cancelled");
        return -1;
    }
    size_t n = 0;
    int rc = cairn_awschunked_decode(st, (uint8_t *)job->body.base, job->body.len, &n);
    gw_job_body_release(job);
    if (rc == CAIRN_SIGV4_ESIGNATURE) {
        s3_error(job, "SignatureDoesNotMatch", "%s", st->reason);
        return -1;
    }
    if (rc != 0) {
        s3_error(job, "IncompleteBody", "%s", st->reason ? st->reason : "malformed aws-chunked body");
        return -1;
    }
    job->body.len = n;
    const cairn_sigv4_header_t *h = s3_header(job, "x-amz-decoded-content-length");
    if (h) {
        char tmp[24];
        snprintf(tmp, sizeof tmp, "%zu", n);
        if (h->value_len != strlen(tmp) || memcmp(h->value, tmp, h->value_len) != 0) {
            s3_error(job, "IncompleteBody", "The decoded body is not x-amz-decoded-content-length bytes long.");
            return -1;
        }
    }
    return 0;
}

/* Which checksum the client sent (header or trailer) or asked for; verify
 * it over the body and remember it for storing. */
static int checksum(gw_job_t *job, const cairn_awschunked_t *st, s3_body_t *b)
{
    const char *want = NULL;
    size_t want_len = 0;
    cairn_ck_alg_t alg = CAIRN_CK_NONE;
    for (size_t i = 0; i < job->nheaders; i++) {
        const cairn_sigv4_header_t *h = &job->headers[i];
        cairn_ck_alg_t a = cairn_ck_from_header(h->name, h->name_len);
        if (a == CAIRN_CK_NONE)
            continue;
        if (alg != CAIRN_CK_NONE) {
            s3_error(job, "InvalidRequest", "Expecting a single x-amz-checksum- header.");
            return -1;
        }
        alg = a;
        want = h->value;
        want_len = h->value_len;
    }
    const cairn_sigv4_header_t *t = s3_header(job, "x-amz-trailer");
    if (t && alg == CAIRN_CK_NONE) {
        alg = cairn_ck_from_header(t->value, t->value_len);
        if (alg == CAIRN_CK_NONE) {
            s3_error(job, "InvalidRequest", "The value specified in the x-amz-trailer header is not supported.");
            return -1;
        }
        want = cairn_awschunked_trailer(st, cairn_ck_header(alg));
        if (want == NULL) {
            s3_error(job, "IncompleteBody", "The trailer named by x-amz-trailer is missing.");
            return -1;
        }
        want_len = strlen(want);
    }
    if (alg == CAIRN_CK_NONE) {
        const cairn_sigv4_header_t *a = s3_header(job, "x-amz-sdk-checksum-algorithm");
        if (a == NULL)
            a = s3_header(job, "x-amz-checksum-algorithm");
        if (a == NULL)
            return 0;
        alg = cairn_ck_from_name(a->value, a->value_len);
        if (alg == CAIRN_CK_NONE) {
            s3_error(job, "InvalidRequest", "Checksum algorithm provided is unsupported.");
            return -1;
        }
    }
    if (want && want_len != ck_b64_len(alg)) {
        s3_error(job, "InvalidRequest", "Value for %s header is invalid.", cairn_ck_header(alg));
        return -1;
    }
    if (gw_job_body_acquire(job) != 0) {
        s3_error(job, "InternalError", "request cancelled");
        return -1;
    }
    cairn_ck_compute(alg, job->body.base, job->body.len, b->ck_value);
    gw_job_body_release(job);
    if (want && (strlen(b->ck_value) != want_len || CRYPTO_memcmp(b->ck_value, want, want_len) != 0)) {
        s3_error(job, "BadDigest", "The %s you specified did not match the calculated checksum.",
                 cairn_ck_name(alg));
        return -1;
    }
    b->ck_alg = alg;
    return 0;
}

int s3_body_prepare(gw_worker_t *w, gw_job_t *job, s3_body_t *b)
{
    cairn_sigv4_auth_t auth;
    cairn_sigv4_result_t res;
    cairn_awschunked_t st;
    memset(b, 0, sizeof *b);
    memset(&st, 0, sizeof st);
    memset(&res, 0, sizeof res);
    if (s3_auth_full(w, job, NULL, &auth, &res) != 0)
        return -1;
    int rc = 0;
    const cairn_sigv4_header_t *h = s3_header(job, "x-amz-acl");
    if (h && !(h->value_len == 7 && memcmp(h->value, "private", 7) == 0)) {
        s3_error(job, "NotImplemented", "Only the canned ACL private is supported.");
        rc = -1;
    }
    if (rc == 0 && (auth.payload == CAIRN_SIGV4_PAYLOAD_STREAMING ||
                    auth.payload == CAIRN_SIGV4_PAYLOAD_STREAMING_TRAILER ||
                    auth.payload == CAIRN_SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER))
        rc = decode_chunked(job, &auth, &res, &st);
    OPENSSL_cleanse(res.signing_key, sizeof res.signing_key);
    if (rc != 0)
        return -1;
    if ((h = s3_header(job, "content-md5"))) {
        uint8_t tmp[24];
        if (h->value_len != 24 || EVP_DecodeBlock(tmp, (const unsigned char *)h->value, 24) != 18) {
            s3_error(job, "InvalidDigest", NULL);
            return -1;
        }
        memcpy(b->want_md5, tmp, 16);
        b->have_md5 = 1;
    }
    b->check_sha = s3_auth_wants_body_hash(job);
    if (s3_write_cond(job, &b->cond, b->cond_etag, &b->cond_etag_len) != 0)
        return -1;
    if (checksum(job, &st, b) != 0)
        return -1;
    if (s3_body_stored_headers(job, b) != 0)
        return -1;
    if (b->ck_alg != CAIRN_CK_NONE)
        sys_add(b, cairn_ck_header(b->ck_alg), b->ck_value, strlen(b->ck_value));
    return 0;
}

int s3_write_cond(gw_job_t *job, int *cond, char etag[80], size_t *etag_len)
{
    const cairn_sigv4_header_t *inm = s3_header(job, "if-none-match"), *im = s3_header(job, "if-match");
    *cond = CAIRN_MPU_COND_NONE;
    *etag_len = 0;
    etag[0] = '\0';
    if (inm) {
        if (!(inm->value_len == 1 && inm->value[0] == '*')) {
            s3_error(job, "NotImplemented", "If-None-Match on a write only takes *.");
            return -1;
        }
        *cond = CAIRN_MPU_COND_IF_NONE_MATCH;
    } else if (im) {
        const char *v = im->value;
        size_t n = im->value_len;
        if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
            v++;
            n -= 2;
        }
        if (n == 0 || n >= 80) {
            s3_error(job, "InvalidArgument", "Invalid If-Match value.");
            return -1;
        }
        memcpy(etag, v, n);
        etag[n] = '\0';
        *etag_len = n;
        *cond = CAIRN_MPU_COND_IF_MATCH;
    }
    return 0;
}

int s3_body_stored_headers(gw_job_t *job, s3_body_t *b)
{
    const cairn_sigv4_header_t *h;
    for (int i = 0; stored[i]; i++) {
        if ((h = s3_header(job, stored[i])) == NULL)
            continue;
        const char *v = h->value;
        size_t vl = h->value_len;
        char ce[512];
        if (strcmp(stored[i], "content-encoding") == 0) {
            vl = strip_aws_chunked(h->value, h->value_len, ce, sizeof ce);
            v = ce;
        }
        if (vl > 0 && sys_add(b, stored[i], v, vl) != 0) {
            s3_error(job, "MetadataTooLarge", "The stored headers exceed %u bytes.", S3_MAX_SYS_META);
            return -1;
        }
    }
    return 0;
}

#define MAX_USER_META 2048 /* S3's limit for x-amz-meta-* (names + values) */

int s3_user_meta(gw_job_t *job, cairn_buf_t *um)
{
    size_t bytes = 0;
    for (size_t i = 0; i < job->nheaders; i++) {
        const cairn_sigv4_header_t *x = &job->headers[i];
        if (x->name_len > 11 && memcmp(x->name, "x-amz-meta-", 11) == 0) {
            bytes += x->name_len - 11 + x->value_len;
            if (bytes > MAX_USER_META) {
                s3_error(job, "MetadataTooLarge", NULL);
                return -1;
            }
            cairn_obj_meta_add(um, x->name + 11, x->name_len - 11, x->value, x->value_len);
        }
    }
    return 0;
}

const char *s3_body_verify(gw_job_t *job, const s3_body_t *b, const gw_put_result_t *res)
{
    if (b->have_md5 && memcmp(b->want_md5, res->md5, 16) != 0)
        return "BadDigest";
    if (b->check_sha) {
        char hex[65];
        const cairn_sigv4_header_t *h = s3_header(job, "x-amz-content-sha256");
        cairn_hex(res->sha256, 32, hex);
        if (!res->have_sha256 || h == NULL || strncasecmp(hex, h->value, 64) != 0)
            return "XAmzContentSHA256Mismatch";
    }
    return NULL;
}
