/* buf.c — see buf.h. */
#include "cairn/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cairn/err.h"

void cairn_buf_dispose(cairn_buf_t *b)
{
    free(b->base);
    cairn_buf_init(b);
}

uint8_t *cairn_buf_reserve(cairn_buf_t *b, size_t n)
{
    /* An empty buffer allocates even for n == 0: callers get a real
     * pointer (NULL + 0 is undefined behaviour). */
    if (b->cap - b->len < n || b->base == NULL) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
            cap *= 2;
        b->base = cairn_realloc(b->base, cap);
        b->cap = cap;
    }
    return b->base + b->len;
}

void cairn_buf_append(cairn_buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    memcpy(cairn_buf_reserve(b, n), p, n);
    b->len += n;
}

void cairn_buf_appendf(cairn_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    CAIRN_ASSERT(n >= 0);
    char *dst = (char *)cairn_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(dst, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void cairn_buf_put_u8(cairn_buf_t *b, uint8_t v) { cairn_buf_append(b, &v, 1); }
void cairn_buf_put_u16(cairn_buf_t *b, uint16_t v)
{
    uint8_t p[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    cairn_buf_append(b, p, 2);
}
void cairn_buf_put_u32(cairn_buf_t *b, uint32_t v)
{
    uint8_t p[4];
    cairn_le32_put(p, v);
    cairn_buf_append(b, p, 4);
}
void cairn_buf_put_u64(cairn_buf_t *b, uint64_t v)
{
    uint8_t p[8];
    cairn_le64_put(p, v);
    cairn_buf_append(b, p, 8);
}
void cairn_buf_put_bytes(cairn_buf_t *b, const void *p, size_t n)
{
    CAIRN_ASSERT(n <= UINT32_MAX);
    cairn_buf_put_u32(b, (uint32_t)n);
    cairn_buf_append(b, p, n);
}
void cairn_buf_put_str(cairn_buf_t *b, const char *s) { cairn_buf_put_bytes(b, s, strlen(s)); }

static const uint8_t *take(cairn_dec_t *d, size_t n)
{
    if (d->err || cairn_dec_left(d) < n) {
        d->err = CAIRN_EPROTO;
        return NULL;
    }
    const uint8_t *p = d->p;
    d->p += n;
    return p;
}

uint8_t cairn_dec_u8(cairn_dec_t *d)
{
    const uint8_t *p = take(d, 1);
    return p ? p[0] : 0;
}
uint16_t cairn_dec_u16(cairn_dec_t *d)
{
    const uint8_t *p = take(d, 2);
    return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}
uint32_t cairn_dec_u32(cairn_dec_t *d)
{
    const uint8_t *p = take(d, 4);
    return p ? cairn_le32_get(p) : 0;
}
uint64_t cairn_dec_u64(cairn_dec_t *d)
{
    const uint8_t *p = take(d, 8);
    return p ? cairn_le64_get(p) : 0;
}
void cairn_dec_bytes(cairn_dec_t *d, const uint8_t **out, size_t *n)
{
    uint32_t len = cairn_dec_u32(d);
    const uint8_t *p = take(d, len);
    *out = p ? p : (const uint8_t *)"";
    *n = p ? len : 0;
}
void cairn_dec_raw(cairn_dec_t *d, void *out, size_t n)
{
    const uint8_t *p = take(d, n);
    if (p)
        memcpy(out, p, n);
    else
        memset(out, 0, n);
}

void cairn_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int cairn_unhex(const char *s, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return CAIRN_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}
