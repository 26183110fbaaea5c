/* xml.c — see xml.h. */
#include "cairn/xml.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cairn/err.h"

static void put(cairn_buf_t *b, const char *s) { cairn_buf_append(b, s, strlen(s)); }

void cairn_xml_begin(cairn_buf_t *b) { put(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"); }

void cairn_xml_open(cairn_buf_t *b, const char *tag)
{
    put(b, "<");
    put(b, tag);
    put(b, ">");
}

void cairn_xml_open_ns(cairn_buf_t *b, const char *tag, const char *ns)
{
    put(b, "<");
    put(b, tag);
    put(b, " xmlns=\"");
    put(b, ns);
    put(b, "\">");
}

void cairn_xml_close(cairn_buf_t *b, const char *tag)
{
    put(b, "</");
    put(b, tag);
    put(b, ">");
}

void cairn_xml_elem(cairn_buf_t *b, const char *tag, const char *text, size_t len)
{
    cairn_xml_open(b, tag);
    cairn_xml_escape(b, text, len);
    cairn_xml_close(b, tag);
}

/* 1 if [p, p+n) contains nothing cairn_xml_escape would change. */
static int plain_ascii(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] >= 0x80 || p[i] == '&' || p[i] == '<' || p[i] == '>' || p[i] == '"' ||
            p[i] == '\'')
            return 0;
    return 1;
}

void cairn_xml_elemf(cairn_buf_t *b, const char *tag, const char *fmt, ...)
{
    cairn_xml_open(b, tag);
    /* Format in place; most formatted values (numbers, dates, ETags) need no
     * escaping and stay there. Otherwise move them aside and escape. */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    CAIRN_ASSERT(n >= 0);
    size_t start = b->len;
    char *dst = (char *)cairn_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(dst, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (!plain_ascii((const uint8_t *)dst, (size_t)n)) {
        char *copy = cairn_strndup(dst, (size_t)n);
        cairn_xml_escape(b, copy, (size_t)n);
        free(copy);
    } else {
        b->len = start + (size_t)n;
    }
    cairn_xml_close(b, tag);
}

/*
 * Length of the well-formed UTF-8 sequence starting at p (at most n bytes
 * available), with its code point in *cp; 0 if p[0] does not start one.
 * Well-formed means the shortest form, no surrogates, at most U+10FFFF
 * (RFC 3629): lead bytes C0, C1 and F5-FF never appear.
 */
static size_t utf8_seq(const uint8_t *p, size_t n, uint32_t *cp)
{
    uint8_t c = p[0];
    size_t len;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (len == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF)))
        return 0;
    if (len == 4 && (v < 0x10000 || v > 0x10FFFF))
        return 0;
    *cp = v;
    return len;
}

void cairn_xml_escape(cairn_buf_t *b, const char *text, size_t len)
{
    const uint8_t *p = (const uint8_t *)text, *end = p + len;
    const uint8_t *run = p; /* start of the bytes copied unchanged */
    char ref[16];
    while (p < end) {
        uint8_t c = *p;
        const char *rep;
        size_t step = 1;
        if (c >= 0x80) {
            uint32_t cp;
            step = utf8_seq(p, (size_t)(end - p), &cp);
            if (step == 0) {
                rep = "\xEF\xBF\xBD"; /* U+FFFD for this one byte */
                step = 1;
            } else if (cp == 0xFFFE || cp == 0xFFFF) {
                rep = cp == 0xFFFE ? "&#xFFFE;" : "&#xFFFF;";
            } else {
                p += step;
                continue;
            }
        } else {
            switch (c) {
            case '&': rep = "&amp;"; break;
            case '<': rep = "&lt;"; break;
            case '>': rep = "&gt;"; break;
            case '"': rep = "&quot;"; break;
            case '\'': rep = "&apos;"; break;
            case '\t':
            case '\n':
                p++;
                continue;
            default:
                if (c >= 0x20) {
                    p++;
                    continue;
                }
                snprintf(ref, sizeof ref, "&#x%X;", c);
                rep = ref;
            }
        }
        cairn_buf_append(b, run, (size_t)(p - run));
        put(b, rep);
        p += step;
        run = p;
    }
    cairn_buf_append(b, run, (size_t)(p - run));
}
