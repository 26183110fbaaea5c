/*
 * awschunked.h — decoding of "aws-chunked" request bodies (Content-Encoding:
 * aws-chunked), the framing S3 clients use for streamed uploads:
 *
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD            signed chunks
 *     <hex size>;chunk-signature=<64 hex>\r\n <data>\r\n ... 0;chunk-signature=<sig>\r\n \r\n
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER    signed chunks, then signed trailing headers
 *     ... 0;chunk-signature=<sig>\r\n x-amz-checksum-crc32:<b64>\r\n x-amz-trailer-signature:<sig>\r\n \r\n
 *   STREAMING-UNSIGNED-PAYLOAD-TRAILER            plain chunks, then trailing headers
 *     <hex size>\r\n <data>\r\n ... 0\r\n x-amz-checksum-crc32:<b64>\r\n \r\n
 *
 * Each chunk signature is HMAC(signing key, "AWS4-HMAC-SHA256-PAYLOAD" ...
 * previous signature ... sha256(chunk)) (sigv4.h), chained from the seed
 * signature of the Authorization header; the trailer signature chains from
 * the final (empty) chunk's. A body whose every signature matches is exactly
 * the bytes the key holder sent, in order and complete.
 *
 * The decoder works in place: the chunk data is moved to the front of the
 * buffer (the output never overtakes the input, since every chunk's header
 * comes before its data), so no second copy of a large body is needed. The
 * framing never survives into the output.
 *
 * Cost: one pass over the body with memmove, plus SHA-256 of every byte and
 * one HMAC per chunk when the chunks are signed (~0.7 s per GiB on one core).
 * Nothing is allocated.
 *
 * Caveats
 * - The whole body must be in memory (h2o 2.2 buffers request bodies).
 * - On failure the buffer holds partly moved data: the caller must not use
 *   it as the original body any more.
 * - Chunk extensions other than chunk-signature are rejected; so is any
 *   byte after the end of the body, except that a missing final CRLF after
 *   the last line is tolerated (some clients stop after the trailers).
 */
#ifndef CAIRN_AWSCHUNKED_H
#define CAIRN_AWSCHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/sigv4.h"

#define CAIRN_AWSCHUNKED_MAX_TRAILERS 4
#define CAIRN_AWSCHUNKED_NAME_MAX 64   /* bytes of a trailer name, without NUL */
#define CAIRN_AWSCHUNKED_VALUE_MAX 256 /* bytes of a trailer value, without NUL */

typedef struct {
    char name[CAIRN_AWSCHUNKED_NAME_MAX + 1];   /* lower-cased, NUL-terminated */
    char value[CAIRN_AWSCHUNKED_VALUE_MAX + 1]; /* surrounding blanks removed, NUL-terminated */
} cairn_awschunked_trailer_t;

typedef struct {
    /* Set by the caller. */
    int signed_chunks;                 /* every chunk carries chunk-signature=, verified */
    int trailer;                       /* trailing header lines follow the final chunk */
    const uint8_t *signing_key;        /* 32 bytes (cairn_sigv4_result_t), when signed_chunks */
    const cairn_sigv4_auth_t *auth;    /* seed signature, date, scope; when signed_chunks */
    /* Results. x-amz-trailer-signature is checked and not listed. */
    cairn_awschunked_trailer_t trailers[CAIRN_AWSCHUNKED_MAX_TRAILERS];
    size_t ntrailers;
    size_t nchunks;     /* data chunks, not counting the final empty one */
    const char *reason; /* static message when decode fails */
} cairn_awschunked_t;

/*
 * Decode buf[0..len) in place; *out_len gets the length of the data now at
 * buf[0..*out_len). Returns 0, or
 *   CAIRN_EPROTO            malformed framing (bad size line, missing CRLF,
 *                           data shorter than announced, bytes after the end,
 *                           missing trailer signature)
 *   CAIRN_ETOOBIG           more than CAIRN_AWSCHUNKED_MAX_TRAILERS trailers,
 *                           or one longer than the limits above
 *   CAIRN_SIGV4_ESIGNATURE  a chunk or trailer signature does not match
 * with st->reason set.
 */
int cairn_awschunked_decode(cairn_awschunked_t *st, uint8_t *buf, size_t len, size_t *out_len);

/* The value of trailer `name` (lower case), or NULL. Borrowed from st. */
const char *cairn_awschunked_trailer(const cairn_awschunked_t *st, const char *name);

#endif
