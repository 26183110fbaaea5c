/*
 * uri.h — percent-decoding and -encoding, and raw query-string access.
 *
 * Used by the S3 gateway to turn the raw request target (h2o's req->path,
 * which still carries the client's escapes) into bucket/key names and query
 * parameters, and by sigv4 to rebuild the canonical URI and query string.
 *
 * Encoding follows the AWS SigV4 rules (RFC 3986 "unreserved" kept as is:
 * A-Z a-z 0-9 - . _ ~ ; every other byte becomes %XX with upper-case hex),
 * optionally keeping '/'. Decoding is byte-oriented: no UTF-8 validation,
 * and a decoded NUL byte is returned like any other byte — callers that turn
 * the result into a C string must reject embedded NULs themselves.
 *
 * Nothing here allocates, and nothing keeps state: all functions are
 * thread-safe.
 */
#ifndef CAIRN_URI_H
#define CAIRN_URI_H

#include <stddef.h>

/*
 * Percent-decode s[0..len) into out. Every well-formed %XX (either hex case)
 * becomes one byte; if plus_is_space, '+' becomes ' ' (form/query style),
 * otherwise '+' stays '+' (path style). out needs room for len bytes and may
 * be s itself (decoding never grows). The result is NOT NUL-terminated; its
 * length is stored in *outlen.
 * Errors: CAIRN_EINVAL for a '%' not followed by two hex digits (*outlen is
 * then unspecified and out partly written).
 */
int cairn_uri_decode(const char *s, size_t len, char *out, size_t *outlen, int plus_is_space);

/*
 * Percent-encode s[0..len) into out with the AWS rules above. If keep_slash,
 * '/' is copied as is (for paths); otherwise it becomes %2F (query names and
 * values). out needs 3 * len + 1 bytes; the result is NUL-terminated and its
 * length (without the NUL) is returned. Cannot fail.
 */
size_t cairn_uri_encode(const char *s, size_t len, char *out, int keep_slash);

/* One name=value pair of a raw query string, pointing into that string. */
typedef struct cairn_query_param_s {
    const char *name;  /* raw, still percent-encoded; not NUL-terminated */
    size_t name_len;
    const char *value; /* raw; for a parameter without '=', points just past the name with value_len 0 */
    size_t value_len;
    int has_eq;        /* 1 if the pair had an '=' ("a=" or "a=b"), 0 for a bare "a" */
} cairn_query_param_t;

/*
 * Split a raw query string (the part after '?', without the '?') at '&' and
 * each piece at its first '='. Empty pieces ("a=1&&b=2", a trailing '&') are
 * skipped. Stores at most max pairs into out, in the order they appear, and
 * returns how many were stored (so at most max; use cairn_query_count() to
 * size the array). The pairs point into q and live as long as q. O(len).
 */
size_t cairn_query_parse(const char *q, size_t len, cairn_query_param_t *out, size_t max);

/* Number of non-empty pairs in a raw query string (what cairn_query_parse would find with unlimited max). */
size_t cairn_query_count(const char *q, size_t len);

/*
 * Find the first parameter whose percent-decoded name equals name (exact,
 * case-sensitive) and decode its value into out, '+' read as a space (the way
 * S3 reads query values), NUL-terminated; *outlen (may be NULL) gets the
 * length without the NUL. A parameter without '=' has an empty value.
 * Errors: CAIRN_ENOTFOUND no such parameter; CAIRN_ETOOBIG the decoded value
 * and its NUL do not fit in outsz bytes; CAIRN_EINVAL bad %XX in the value.
 * Pairs whose name has a bad escape are skipped as non-matching.
 */
int cairn_query_get(const char *q, size_t len, const char *name, char *out, size_t outsz, size_t *outlen);

#endif
