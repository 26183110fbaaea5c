/*
 * uri.c — percent-decoding/encoding and raw query-string access.
 *
 * Everything works on byte ranges that need not be NUL-terminated, because
 * the gateway hands us slices of h2o's request buffer. Each function is one
 * pass over its input; none allocates.
 */
#include <string.h>

#include "cairn/err.h"
#include "cairn/uri.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cairn_uri_decode(const char *s, size_t len, char *out, size_t *outlen, int plus_is_space)
{
    size_t i = 0, o = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi, lo;
            if (len - i < 3 || (hi = hexval((unsigned char)s[i + 1])) < 0 || (lo = hexval((unsigned char)s[i + 2])) < 0)
                return CAIRN_EINVAL;
            out[o++] = (char)(hi << 4 | lo);
            i += 3;
        } else {
            /* o <= i always, so decoding in place (out == s) is safe */
            out[o++] = (c == '+' && plus_is_space) ? ' ' : (char)c;
            i++;
        }
    }
    *outlen = o;
    return 0;
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

size_t cairn_uri_encode(const char *s, size_t len, char *out, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (c == '/' && keep_slash)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return o;
}

/* Walks the pairs of q; calls back for each non-empty one. Returns the count. */
static size_t query_walk(const char *q, size_t len, cairn_query_param_t *out, size_t max)
{
    size_t n = 0, i = 0;

    while (i < len) {
        const char *amp = memchr(q + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - q) : len;
        if (end > i) {
            if (out != NULL) {
                if (n == max)
                    return n;
                const char *piece = q + i;
                size_t plen = end - i;
                const char *eq = memchr(piece, '=', plen);
                cairn_query_param_t *p = &out[n];
                p->name = piece;
                if (eq != NULL) {
                    p->name_len = (size_t)(eq - piece);
                    p->value = eq + 1;
                    p->value_len = plen - p->name_len - 1;
                    p->has_eq = 1;
                } else {
                    p->name_len = plen;
                    p->value = piece + plen;
                    p->value_len = 0;
                    p->has_eq = 0;
                }
            }
            n++;
        }
        i = end + 1;
    }
    return n;
}

size_t cairn_query_parse(const char *q, size_t len, cairn_query_param_t *out, size_t max)
{
    if (max == 0)
        return 0;
    return query_walk(q, len, out, max);
}

size_t cairn_query_count(const char *q, size_t len)
{
    return query_walk(q, len, NULL, 0);
}

/* Length of the percent-decoded form of s[0..len), without writing it. */
static int decoded_len(const char *s, size_t len, size_t *n)
{
    size_t i = 0, o = 0;

    while (i < len) {
        if (s[i] == '%') {
            if (len - i < 3 || hexval((unsigned char)s[i + 1]) < 0 || hexval((unsigned char)s[i + 2]) < 0)
                return CAIRN_EINVAL;
            i += 3;
        } else {
            i++;
        }
        o++;
    }
    *n = o;
    return 0;
}

/* Does the percent-decoded form of raw[0..len) equal the C string want? Decodes on the fly. */
static int decoded_equals(const char *raw, size_t len, const char *want)
{
    size_t i = 0;
    const unsigned char *w = (const unsigned char *)want;

    while (i < len) {
        int c = (unsigned char)raw[i];
        if (c == '%') {
            int hi, lo;
            if (len - i < 3 || (hi = hexval((unsigned char)raw[i + 1])) < 0 || (lo = hexval((unsigned char)raw[i + 2])) < 0)
                return 0;
            c = hi << 4 | lo;
            i += 3;
        } else {
            if (c == '+')
                c = ' ';
            i++;
        }
        if (*w == '\0' || *w != c)
            return 0;
        w++;
    }
    return *w == '\0';
}

int cairn_query_get(const char *q, size_t len, const char *name, char *out, size_t outsz, size_t *outlen)
{
    size_t i = 0;

    while (i < len) {
        const char *amp = memchr(q + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - q) : len;
        const char *piece = q + i;
        size_t plen = end - i;
        const char *eq = memchr(piece, '=', plen);
        size_t nlen = eq ? (size_t)(eq - piece) : plen;

        if (plen > 0 && decoded_equals(piece, nlen, name)) {
            const char *v = eq ? eq + 1 : piece + plen;
            size_t vlen = eq ? plen - nlen - 1 : 0;
            size_t dlen;
            /* the decoded value is at most vlen bytes; count exactly only when that might not fit */
            if (vlen + 1 > outsz) {
                size_t need;
                if (decoded_len(v, vlen, &need) != 0)
                    return CAIRN_EINVAL;
                if (need + 1 > outsz)
                    return CAIRN_ETOOBIG;
            }
            if (cairn_uri_decode(v, vlen, out, &dlen, 1) != 0)
                return CAIRN_EINVAL;
            out[dlen] = '\0';
            if (outlen != NULL)
                *outlen = dlen;
            return 0;
        }
        i = end + 1;
    }
    return CAIRN_ENOTFOUND;
}
