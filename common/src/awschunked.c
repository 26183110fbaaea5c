/*
 * awschunked.c — see awschunked.h.
 *
 * The decoder walks the input with a read offset `r` and moves each chunk's
 * data to a write offset `w <= r`. Lines are found with memchr for '\n' and
 * must end in "\r\n". A size line is at most SIZE_LINE_MAX bytes (16 hex digits
 * and a signature extension fit easily), which also bounds the work spent on
 * a hostile line.
 */
#include "cairn/awschunked.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#include "cairn/err.h"

#define SIZE_LINE_MAX 256
#define SIG_EXT ";chunk-signature="
#define SIG_EXT_LEN (sizeof SIG_EXT - 1)

static int fail(cairn_awschunked_t *st, int rc, const char *why)
{
    st->reason = why;
    return rc;
}

/* The line starting at p (of at most `left` bytes): its length without the
 * CRLF, or -1 if there is no CRLF-terminated line within SIZE_LINE_MAX bytes. */
static long line_len(const uint8_t *p, size_t left, size_t max)
{
    size_t lim = left < max + 2 ? left : max + 2;
    const uint8_t *nl = memchr(p, '\n', lim);
    if (nl == NULL || nl == p || nl[-1] != '\r')
        return -1;
    return (long)(nl - p) - 1;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Parse "<hex>[;chunk-signature=<64 hex>]" of n bytes. */
static int parse_size_line(cairn_awschunked_t *st, const uint8_t *p, size_t n, uint64_t *size, char sig[65])
{
    size_t i = 0;
    uint64_t v = 0;
    while (i < n && hexval(p[i]) >= 0) {
        if (i >= 16)
            return fail(st, CAIRN_EPROTO, "aws-chunked: chunk size too long");
        v = v << 4 | (uint64_t)hexval(p[i]);
        i++;
    }
    if (i == 0)
        return fail(st, CAIRN_EPROTO, "aws-chunked: missing chunk size");
    *size = v;
    sig[0] = '\0';
    if (i == n) {
        if (st->signed_chunks)
            return fail(st, CAIRN_EPROTO, "aws-chunked: chunk without chunk-signature");
        return 0;
    }
    if (n - i != SIG_EXT_LEN + 64 || memcmp(p + i, SIG_EXT, SIG_EXT_LEN) != 0)
        return fail(st, CAIRN_EPROTO, "aws-chunked: malformed chunk extension");
    if (!st->signed_chunks)
        return fail(st, CAIRN_EPROTO, "aws-chunked: unexpected chunk-signature in an unsigned payload");
    const uint8_t *s = p + i + SIG_EXT_LEN;
    for (int j = 0; j < 64; j++) {
        if (hexval(s[j]) < 0)
            return fail(st, CAIRN_EPROTO, "aws-chunked: malformed chunk-signature");
        sig[j] = (char)tolower(s[j]);
    }
    sig[64] = '\0';
    return 0;
}

static int check_sig(cairn_awschunked_t *st, char prev[65], const char got[65], const uint8_t sha[32], int trailer)
{
    char want[65];
    if (trailer)
        cairn_sigv4_trailer_signature(st->signing_key, st->auth, prev, sha, want);
    else
        cairn_sigv4_chunk_signature(st->signing_key, st->auth, prev, sha, want);
    if (CRYPTO_memcmp(want, got, 64) != 0)
        return fail(st, CAIRN_SIGV4_ESIGNATURE,
                    trailer ? "The trailer signature does not match." : "A chunk signature does not match.");
    memcpy(prev, got, 65);
    return 0;
}

/* Trailing header lines after the final chunk, up to the empty line (or the
 * end of input). Signed payloads end with x-amz-trailer-signature, which
 * covers the lines before it. */
static int parse_trailers(cairn_awschunked_t *st, const uint8_t *p, size_t left, char prev[65])
{
    EVP_MD_CTX *md = NULL;
    int have_sig = 0, rc = 0;
    char sig[65];
    if (st->signed_chunks) {
        md = EVP_MD_CTX_new();
        CAIRN_ASSERT(md != NULL);
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    }
    while (left > 0) {
        long n = line_len(p, left, CAIRN_AWSCHUNKED_NAME_MAX + CAIRN_AWSCHUNKED_VALUE_MAX + 8);
        size_t ln;
        if (n < 0) {
            /* the last line may lack its CRLF */
            if (left > CAIRN_AWSCHUNKED_NAME_MAX + CAIRN_AWSCHUNKED_VALUE_MAX + 8 || memchr(p, '\n', left)) {
                rc = fail(st, CAIRN_EPROTO, "aws-chunked: malformed trailer line");
                break;
            }
            ln = left;
        } else {
            ln = (size_t)n;
        }
        if (ln == 0) { /* the closing empty line */
            if (left != 2)
                rc = fail(st, CAIRN_EPROTO, "aws-chunked: data after the end of the body");
            break;
        }
        if (have_sig) {
            rc = fail(st, CAIRN_EPROTO, "aws-chunked: trailer after x-amz-trailer-signature");
            break;
        }
        const uint8_t *colon = memchr(p, ':', ln);
        if (colon == NULL || colon == p) {
            rc = fail(st, CAIRN_EPROTO, "aws-chunked: malformed trailer line");
            break;
        }
        size_t nl = (size_t)(colon - p);
        const uint8_t *v = colon + 1, *ve = p + ln;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t vl = (size_t)(ve - v);
        if (nl > CAIRN_AWSCHUNKED_NAME_MAX || vl > CAIRN_AWSCHUNKED_VALUE_MAX) {
            rc = fail(st, CAIRN_ETOOBIG, "aws-chunked: trailer too long");
            break;
        }
        char name[CAIRN_AWSCHUNKED_NAME_MAX + 1];
        for (size_t i = 0; i < nl; i++)
            name[i] = (char)tolower(p[i]);
        name[nl] = '\0';
        if (st->signed_chunks && strcmp(name, "x-amz-trailer-signature") == 0) {
            if (vl != 64) {
                rc = fail(st, CAIRN_EPROTO, "aws-chunked: malformed x-amz-trailer-signature");
                break;
            }
            for (int j = 0; j < 64; j++)
                sig[j] = (char)tolower(v[j]);
            sig[64] = '\0';
            have_sig = 1;
        } else {
            if (st->ntrailers == CAIRN_AWSCHUNKED_MAX_TRAILERS) {
                rc = fail(st, CAIRN_ETOOBIG, "aws-chunked: too many trailers");
                break;
            }
            cairn_awschunked_trailer_t *t = &st->trailers[st->ntrailers++];
            memcpy(t->name, name, nl + 1);
            memcpy(t->value, v, vl);
            t->value[vl] = '\0';
            if (md) {
                EVP_DigestUpdate(md, name, nl);
                EVP_DigestUpdate(md, ":", 1);
                EVP_DigestUpdate(md, v, vl);
                EVP_DigestUpdate(md, "\n", 1);
            }
        }
        if (n < 0) { /* unterminated last line */
            left = 0;
            break;
        }
        p += ln + 2;
        left -= ln + 2;
    }
    if (rc == 0 && md) {
        uint8_t sha[32];
        EVP_DigestFinal_ex(md, sha, NULL);
        if (!have_sig)
            rc = fail(st, CAIRN_EPROTO, "aws-chunked: missing x-amz-trailer-signature");
        else
            rc = check_sig(st, prev, sig, sha, 1);
    }
    if (md)
        EVP_MD_CTX_free(md);
    return rc;
}

int cairn_awschunked_decode(cairn_awschunked_t *st, uint8_t *buf, size_t len, size_t *out_len)
{
    size_t r = 0, w = 0;
    char prev[65], sig[65];
    st->ntrailers = 0;
    st->nchunks = 0;
    st->reason = NULL;
    *out_len = 0;
    if (st->signed_chunks) {
        CAIRN_ASSERT(st->signing_key != NULL && st->auth != NULL);
        memcpy(prev, st->auth->signature, 65);
    }
    for (;;) {
        long n = line_len(buf + r, len - r, SIZE_LINE_MAX);
        if (n < 0)
            return fail(st, CAIRN_EPROTO, "aws-chunked: malformed chunk size line");
        uint64_t size;
        int rc = parse_size_line(st, buf + r, (size_t)n, &size, sig);
        if (rc)
            return rc;
        r += (size_t)n + 2;
        if (size > len - r)
            return fail(st, CAIRN_EPROTO, "aws-chunked: chunk data shorter than its size");
        if (st->signed_chunks) {
            uint8_t sha[32];
            EVP_Digest(buf + r, (size_t)size, sha, NULL, EVP_sha256(), NULL);
            if ((rc = check_sig(st, prev, sig, sha, 0)) != 0)
                return rc;
        }
        if (size == 0)
            break;
        memmove(buf + w, buf + r, (size_t)size);
        w += (size_t)size;
        r += (size_t)size;
        st->nchunks++;
        if (len - r < 2 || buf[r] != '\r' || buf[r + 1] != '\n')
            return fail(st, CAIRN_EPROTO, "aws-chunked: chunk data not followed by CRLF");
        r += 2;
    }
    /* After the final chunk: trailers (if announced), then the empty line. */
    if (st->trailer) {
        int rc = parse_trailers(st, buf + r, len - r, prev);
        if (rc)
            return rc;
    } else if (!(len - r == 0 || (len - r == 2 && buf[r] == '\r' && buf[r + 1] == '\n'))) {
        return fail(st, CAIRN_EPROTO, "aws-chunked: data after the final chunk");
    }
    *out_len = w;
    return 0;
}

const char *cairn_awschunked_trailer(const cairn_awschunked_t *st, const char *name)
{
    for (size_t i = 0; i < st->ntrailers; i++)
        if (strcmp(st->trailers[i].name, name) == 0)
            return st->trailers[i].value;
    return NULL;
}
