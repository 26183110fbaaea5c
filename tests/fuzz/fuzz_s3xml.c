/*
 * fuzz_s3xml.c — libFuzzer driver for the XML request bodies the gateway
 * reads (gateway/s3_xmlin.c): DeleteObjects, CompleteMultipartUpload, and
 * the item walker under both.
 *
 * Input: byte 0 picks the reader (mod 3), the rest is the body.
 *
 * Checked properties, beyond "no crash, no sanitizer report":
 * - DeleteObjects: accepted bodies name 1..1000 keys, encoded exactly as
 *   documented; and the keys survive a round trip through our own XML
 *   writer (cairn_xml_escape): written back as a DeleteObjects body and
 *   read again, they come out identical;
 * - CompleteMultipartUpload: accepted bodies list 1..10000 parts with
 *   numbers in 1..10000 and unquoted ETags inside the parse's buffer; -2
 *   exactly when a part number is bad;
 * - the walker hands callbacks at most 16 NUL-terminated fields, and
 *   refuses elements nested deeper than root/item/field.
 */
#include <expat.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/buf.h"
#include "cairn/xml.h"
#include "s3_ext.h"

static void delete_body(const char *p, size_t n)
{
    s3_delete_in_t d;
    int rc = s3_xml_delete_parse(p, n, &d);
    if (rc != 0) {
        s3_delete_in_dispose(&d);
        return;
    }
    if (d.n == 0 || d.n > S3_DELETE_MAX || d.too_many)
        abort();
    /* decode the documented encoding, and write the keys back as XML */
    cairn_buf_t xml;
    cairn_buf_init(&xml);
    cairn_buf_appendf(&xml, "<Delete>");
    cairn_dec_t dec;
    cairn_dec_init(&dec, d.keys.base, d.keys.len);
    for (size_t i = 0; i < d.n; i++) {
        const uint8_t *k;
        size_t kl;
        cairn_dec_bytes(&dec, &k, &kl);
        uint8_t bad_version = cairn_dec_u8(&dec);
        if (dec.err || bad_version > 1)
            abort();
        cairn_buf_appendf(&xml, "<Object><Key>");
        cairn_xml_escape(&xml, (const char *)k, kl);
        cairn_buf_appendf(&xml, "</Key></Object>");
    }
    if (cairn_dec_left(&dec) != 0)
        abort();
    cairn_buf_appendf(&xml, "</Delete>");
    s3_delete_in_t e;
    if (s3_xml_delete_parse((const char *)xml.base, xml.len, &e) != 0 || e.n != d.n)
        abort();
    /* same keys (the bad_version flags are not written back) */
    cairn_dec_t a, b;
    cairn_dec_init(&a, d.keys.base, d.keys.len);
    cairn_dec_init(&b, e.keys.base, e.keys.len);
    for (size_t i = 0; i < d.n; i++) {
        const uint8_t *k1, *k2;
        size_t l1, l2;
        cairn_dec_bytes(&a, &k1, &l1);
        cairn_dec_u8(&a);
        cairn_dec_bytes(&b, &k2, &l2);
        cairn_dec_u8(&b);
        if (l1 != l2 || memcmp(k1, k2, l1) != 0)
            abort();
    }
    s3_delete_in_dispose(&e);
    cairn_buf_dispose(&xml);
    s3_delete_in_dispose(&d);
}

static void complete_body(const char *p, size_t n)
{
    s3_parts_in_t pi;
    int rc = s3_xml_complete_parse(p, n, &pi);
    if ((rc == -2) != (pi.bad_number != 0))
        abort();
    if (rc == 0) {
        if (pi.n == 0 || pi.n > CAIRN_MPU_MAX_PARTS)
            abort();
        const char *lo = (const char *)pi.etags.base, *hi = lo + pi.etags.len;
        for (size_t i = 0; i < pi.n; i++) {
            const cairn_mpu_sel_t *s = &pi.sel[i];
            if (s->number < 1 || s->number > CAIRN_MPU_MAX_PARTS)
                abort();
            if (s->etag_len && (s->etag < lo || s->etag + s->etag_len > hi || s->etag[0] == '"' ||
                                s->etag[s->etag_len - 1] == '"'))
                abort();
        }
    } else if (rc != -1 && rc != -2) {
        abort();
    }
    s3_parts_in_dispose(&pi);
}

static int on_item(void *arg, const char *name, const char *text, size_t tlen, const s3_xml_field_t *f, size_t nf)
{
    size_t *items = arg;
    if (nf > 16 || strlen(name) >= 64 || text[tlen] != '\0')
        abort();
    for (size_t i = 0; i < nf; i++)
        if (f[i].text[f[i].len] != '\0' || strlen(f[i].name) >= 64)
            abort();
    (*items)++;
    return name[0] == 'X' ? 7 : 0; /* a callback may stop the walk with its own value */
}

/* The deepest element nesting of a well-formed document, by expat on its
 * own (-1 if expat refuses the document). */
typedef struct {
    int depth, max;
} depth_t;

static void XMLCALL depth_start(void *data, const XML_Char *name, const XML_Char **attrs)
{
    depth_t *d = data;
    if (++d->depth > d->max)
        d->max = d->depth;
}

static void XMLCALL depth_end(void *data, const XML_Char *name)
{
    ((depth_t *)data)->depth--;
}

static int max_depth(const char *p, size_t n)
{
    depth_t d = {0, 0};
    XML_Parser x = XML_ParserCreate("UTF-8");
    XML_SetUserData(x, &d);
    XML_SetElementHandler(x, depth_start, depth_end);
    int ok = XML_Parse(x, p, (int)n, XML_TRUE) == XML_STATUS_OK;
    XML_ParserFree(x);
    return ok ? d.max : -1;
}

static void items(const char *p, size_t n)
{
    size_t count = 0;
    int rc = s3_xml_items(p, n, "Delete", on_item, &count);
    if (rc != 0 && rc != -1 && rc != 7)
        abort();
    if (rc == 0 && max_depth(p, n) > 3)
        abort(); /* accepted a body nested deeper than root/item/field */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = size - 1;
    char *p = malloc(n ? n : 1); /* exact size: no NUL after the body */
    memcpy(p, data + 1, n);
    switch (data[0] % 3) {
    case 0: delete_body(p, n); break;
    case 1: complete_body(p, n); break;
    case 2: items(p, n); break;
    }
    free(p);
    return 0;
}
