/*
 * sigv4.h — AWS Signature Version 4 verification for the S3 gateway.
 *
 * Two ways to carry a signature are understood:
 *   - the Authorization header
 *       AWS4-HMAC-SHA256 Credential=AK/YYYYMMDD/region/s3/aws4_request,
 *                        SignedHeaders=a;b;c, Signature=<64 hex>
 *     with the time in x-amz-date (or, failing that, an RFC 1123 Date);
 *   - a presigned URL: X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
 *     X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature in the query.
 * Signature V2 ("AWS AK:sig", AWSAccessKeyId=...) and SigV4a (ECDSA) are
 * recognised only to be refused with CAIRN_SIGV4_EMECHANISM.
 *
 * Use: fill a cairn_sigv4_request_t from the HTTP request, call
 * cairn_sigv4_parse() (syntax only, no secret needed; tells anonymous
 * requests apart), look the access key up, then cairn_sigv4_verify() with
 * its secret. If the client sent a hex x-amz-content-sha256, check the body
 * against it afterwards with cairn_sigv4_payload_check().
 *
 * Caveats — read these before wiring it to a server:
 *   - h2o 2.2.5 removes Host, Content-Length and Transfer-Encoding from
 *     req->headers. The caller must add them back to the header array it
 *     passes ("host" = req->authority, "content-length" = the decimal body
 *     size when the client sent one; "transfer-encoding: chunked" when the
 *     body came chunked), or requests that signed them fail with
 *     CAIRN_SIGV4_ESIGNATURE ("A header named in SignedHeaders is not
 *     present in the request.").
 *   - The path and query must be the raw bytes from the wire (h2o's
 *     req->path split at the first '?'), never path_normalized.
 *   - Clients disagree on canonicalisation. verify() first tries the AWS
 *     form (path and query percent-decoded and re-encoded with the AWS rules,
 *     the query sorted) and then the path and/or query exactly as sent; the
 *     second is what curl 7.88 signs (it neither sorts nor re-encodes the
 *     query, and signs a bare "uploads" without '='). Each candidate must
 *     match the client's HMAC, so accepting several forms weakens nothing.
 *   - Payload hash when x-amz-content-sha256 is ABSENT (curl 7.88 never sends
 *     it): curl signs sha256 of its --data/--data-binary bytes, but for -T
 *     uploads and for bodyless requests it signs sha256("") (e3b0c442...)
 *     whatever the body is. verify() therefore tries sha256("") first and
 *     then rq->body_sha256_hex when the caller supplies it. A caller that
 *     does not want to hash every body can pass NULL, and only if the result
 *     is CAIRN_SIGV4_ESIGNATURE with auth->payload == CAIRN_SIGV4_PAYLOAD_ABSENT
 *     and a non-empty body, hash the body and call verify() again.
 *     When sha256("") matched a non-empty body the body is not covered by
 *     the signature (res->body_signed == 0), exactly as with UNSIGNED-PAYLOAD.
 *   - Streaming payloads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) verify
 *     the seed signature here; the aws-chunked body decoder checks each chunk
 *     with cairn_sigv4_chunk_signature() using res->signing_key.
 *   - No global state, no caching: every function is thread-safe. verify()
 *     allocates a few small buffers for the canonical request and frees them.
 */
#ifndef CAIRN_SIGV4_H
#define CAIRN_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cairn/err.h"

/*
 * Error codes. Each names the S3 error the gateway should answer with;
 * cairn_sigv4_s3_error() gives the code string and HTTP status. Parse and
 * verify also hand back a static reason string that is safe to put in the
 * error's <Message>.
 */
enum {
    CAIRN_SIGV4_EBASE = CAIRN_EBASE + 200,
    CAIRN_SIGV4_ESIGNATURE = -(CAIRN_SIGV4_EBASE + 1),  /* 403 SignatureDoesNotMatch */
    CAIRN_SIGV4_EEXPIRED = -(CAIRN_SIGV4_EBASE + 2),    /* 403 AccessDenied "Request has expired" (presigned) */
    CAIRN_SIGV4_ENOTYET = -(CAIRN_SIGV4_EBASE + 3),     /* 403 AccessDenied "Request is not valid yet" (presigned dated in the future) */
    CAIRN_SIGV4_ESKEW = -(CAIRN_SIGV4_EBASE + 4),       /* 403 RequestTimeTooSkewed (header auth, > 15 min off) */
    CAIRN_SIGV4_EHEADER = -(CAIRN_SIGV4_EBASE + 5),     /* 400 AuthorizationHeaderMalformed */
    CAIRN_SIGV4_EQUERY = -(CAIRN_SIGV4_EBASE + 6),      /* 400 AuthorizationQueryParametersError */
    CAIRN_SIGV4_EARGUMENT = -(CAIRN_SIGV4_EBASE + 7),   /* 400 InvalidArgument (bad x-amz-content-sha256, two auth mechanisms, unknown scheme) */
    CAIRN_SIGV4_EMECHANISM = -(CAIRN_SIGV4_EBASE + 8),  /* 400 InvalidRequest "Please use AWS4-HMAC-SHA256" (SigV2, SigV4a) */
    CAIRN_SIGV4_EDATE = -(CAIRN_SIGV4_EBASE + 9),       /* 403 AccessDenied "requires a valid Date or x-amz-date header" */
    CAIRN_SIGV4_ECONTENTSHA = -(CAIRN_SIGV4_EBASE + 10),/* 400 XAmzContentSHA256Mismatch */
    CAIRN_SIGV4_EUNSIGNED = -(CAIRN_SIGV4_EBASE + 11),  /* 403 AccessDenied "There were headers present in the request which were not signed" */
    CAIRN_SIGV4_ELAST = -(CAIRN_SIGV4_EBASE + 12),
};

/* Name of a sigv4 code ("CAIRN_SIGV4_ESKEW"), or cairn_strerror(err) for any other value. Static string. */
const char *cairn_sigv4_strerror(int err);

/*
 * The S3 error for a code returned by this module: sets *http_status (may be
 * NULL) and returns the S3 code string ("SignatureDoesNotMatch") and, through
 * *message (may be NULL), a default message. Unknown codes give
 * "AccessDenied"/403. Strings are static.
 */
const char *cairn_sigv4_s3_error(int err, int *http_status, const char **message);

/* One request header. Names lower-case (h2o gives them so); neither needs a NUL. */
typedef struct cairn_sigv4_header_s {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} cairn_sigv4_header_t;

/* The parts of an HTTP request that the signature covers. All borrowed; nothing is kept after a call returns. */
typedef struct cairn_sigv4_request_s {
    const char *method;
    size_t method_len;
    const char *raw_path;  /* as on the wire, before '?': "/bkt/my%20key" */
    size_t raw_path_len;
    const char *raw_query; /* after '?' (without it); may be NULL/0 */
    size_t raw_query_len;
    const cairn_sigv4_header_t *headers; /* every header, plus "host" and "content-length" added back (see caveats) */
    size_t nheaders;
    const char *body_sha256_hex; /* optional: lower-case hex sha256 of the body, used only when x-amz-content-sha256 is absent */
    time_t now;                  /* the server's clock, for expiry and skew checks */
    int require_signed_amz;      /* if set, every x-amz-* header present must be signed (AWS does this); see EUNSIGNED */
} cairn_sigv4_request_t;

/* What the payload line of the canonical request is taken from. */
typedef enum cairn_sigv4_payload_e {
    CAIRN_SIGV4_PAYLOAD_ABSENT = 0,          /* header auth, no x-amz-content-sha256 (curl 7.88) */
    CAIRN_SIGV4_PAYLOAD_HEX,                 /* x-amz-content-sha256 is a sha256: check the body with cairn_sigv4_payload_check() */
    CAIRN_SIGV4_PAYLOAD_UNSIGNED,            /* UNSIGNED-PAYLOAD, or a presigned URL without the header */
    CAIRN_SIGV4_PAYLOAD_STREAMING,           /* STREAMING-AWS4-HMAC-SHA256-PAYLOAD: signed aws-chunked body */
    CAIRN_SIGV4_PAYLOAD_STREAMING_TRAILER,   /* STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER */
    CAIRN_SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER, /* STREAMING-UNSIGNED-PAYLOAD-TRAILER: aws-chunked, chunks unsigned */
} cairn_sigv4_payload_t;

#define CAIRN_SIGV4_SIGNED_HEADERS_MAX 4096
#define CAIRN_SIGV4_MAX_EXPIRES 604800L /* 7 days, the S3 limit for X-Amz-Expires */
#define CAIRN_SIGV4_MAX_SKEW 900        /* 15 minutes */

/* Result of cairn_sigv4_parse(): plain values, owns no memory, safe to copy. */
typedef struct cairn_sigv4_auth_s {
    int presigned;             /* 1 query-string auth, 0 Authorization header */
    char access_key[129];
    char date[9];              /* credential scope date, YYYYMMDD */
    char region[64];
    char service[32];          /* always "s3" after a successful parse */
    char scope[160];           /* date/region/service/aws4_request */
    char amz_date[17];         /* request time, YYYYMMDDTHHMMSSZ */
    time_t request_time;       /* amz_date as seconds since the epoch */
    long expires;              /* X-Amz-Expires for presigned, 0 otherwise */
    char signed_headers[CAIRN_SIGV4_SIGNED_HEADERS_MAX]; /* "host;x-amz-date", NUL-terminated */
    char signature[65];        /* lower-case hex */
    char content_sha256[65];   /* x-amz-content-sha256 as sent, "" when absent */
    cairn_sigv4_payload_t payload;
    int unsigned_payload;      /* payload is UNSIGNED-PAYLOAD (incl. presigned without the header) */
    const char *reason;        /* static, set when parse fails */
} cairn_sigv4_auth_t;

/* Extra results of a successful verify(). */
typedef struct cairn_sigv4_result_s {
    uint8_t signing_key[32];   /* HMAC key for chunk signatures; secret — wipe when done */
    int raw_path;              /* 1 if the path matched as sent rather than re-encoded */
    int raw_query;             /* 1 if the query matched as sent rather than canonicalised */
    int body_signed;           /* 1 if the matched payload hash covers the body (hex header still needs payload_check) */
    char payload_hash[65];     /* the payload line that matched */
} cairn_sigv4_result_t;

/*
 * Find and syntax-check the request's credentials. Needs no secret. On
 * success fills *auth and returns 0; auth->access_key says whose secret to
 * fetch. Returns CAIRN_ENOTFOUND if the request carries no credentials at
 * all (anonymous), otherwise on failure one of CAIRN_SIGV4_EHEADER,
 * _EQUERY, _EARGUMENT, _EMECHANISM, _EDATE with auth->reason set. Never
 * reads past the given lengths; safe on hostile input.
 */
int cairn_sigv4_parse(const cairn_sigv4_request_t *rq, cairn_sigv4_auth_t *auth);

/*
 * Check the time limits, then recompute the signature with secret_key
 * (NUL-terminated) and compare in constant time. rq must be the request
 * auth was parsed from. Returns 0 when it matches, filling *res if not NULL.
 * Errors, with *reason (may be NULL) set to a static message:
 *   CAIRN_SIGV4_EEXPIRED   presigned and now > X-Amz-Date + X-Amz-Expires
 *   CAIRN_SIGV4_ENOTYET    presigned and X-Amz-Date more than 15 min ahead
 *   CAIRN_SIGV4_ESKEW      header auth and |now - request time| > 15 min
 *   CAIRN_SIGV4_EUNSIGNED  rq->require_signed_amz and an x-amz-* header is not signed
 *   CAIRN_SIGV4_ESIGNATURE no candidate canonical request matches, or a
 *                          signed header is missing from the request
 * Cost: one signing-key derivation (4 HMACs) plus one SHA-256 and one HMAC
 * per candidate tried (at most 2 paths x 2 queries x 2 payload hashes).
 */
int cairn_sigv4_verify(const cairn_sigv4_request_t *rq, const cairn_sigv4_auth_t *auth, const char *secret_key,
                       cairn_sigv4_result_t *res, const char **reason);

/*
 * For requests whose x-amz-content-sha256 is a hex digest: compare it with
 * the sha256 of the body the gateway received. Returns 0 when they match or
 * when there is nothing to compare (any other payload kind), and
 * CAIRN_SIGV4_ECONTENTSHA on mismatch.
 */
int cairn_sigv4_payload_check(const cairn_sigv4_auth_t *auth, const uint8_t sha256[32]);

/*
 * The canonical request and string to sign in their first (AWS-normalised)
 * form, for logs and for the <CanonicalRequest>/<StringToSign> elements AWS
 * puts in SignatureDoesNotMatch errors. Both are malloc'd, NUL-terminated,
 * and the caller frees them. Returns 0, or CAIRN_SIGV4_ESIGNATURE if a signed
 * header is missing from the request.
 */
int cairn_sigv4_canonical_request(const cairn_sigv4_request_t *rq, const cairn_sigv4_auth_t *auth, char **creq,
                                  char **string_to_sign);

/* HMAC key for date/region/service/aws4_request (as in auth) from a secret. */
void cairn_sigv4_signing_key(const char *secret_key, const cairn_sigv4_auth_t *auth, uint8_t key[32]);

/*
 * Signature of one aws-chunked chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD):
 * HMAC(key, "AWS4-HMAC-SHA256-PAYLOAD\n" amz_date "\n" scope "\n" prev "\n"
 * sha256("") "\n" hex(chunk_sha256)). prev_signature is the previous chunk's
 * signature (the seed signature, auth->signature, for the first chunk), 64
 * hex chars. out gets 64 lower-case hex chars and a NUL. The decoder should
 * compare with CRYPTO_memcmp.
 */
void cairn_sigv4_chunk_signature(const uint8_t key[32], const cairn_sigv4_auth_t *auth, const char *prev_signature,
                                 const uint8_t chunk_sha256[32], char out[65]);

/* Same for the trailing-header chunk: "AWS4-HMAC-SHA256-TRAILER\n" ... prev "\n" hex(sha256 of the canonical trailer lines). */
void cairn_sigv4_trailer_signature(const uint8_t key[32], const cairn_sigv4_auth_t *auth, const char *prev_signature,
                                   const uint8_t trailer_sha256[32], char out[65]);

#endif
