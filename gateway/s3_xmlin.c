/*
 * s3_xmlin.c — XML request bodies (CompleteMultipartUpload, DeleteObjects)
 * with expat. The bodies S3 takes are flat lists: a root, items, and leaf
 * fields in each item. The parser keeps the texts of the current item only,
 * so memory stays O(one item) whatever the number of items. The readers of
 * the two bodies are here too, as pure functions (fuzzed by
 * tests/fuzz/fuzz_s3xml.c).
 *
 * expat decodes entities and character references and rejects malformed
 * documents; a DOCTYPE is refused outright, so no entity expansion (the
 * "billion laughs") can run.
 */
#include <expat.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "s3_ext.h"

#define MAX_FIELDS 16
#define MAX_TEXT (64u << 10) /* one element's text; keys are at most 1 KiB */

typedef struct {
    XML_Parser p;
    const char *root;
    int depth;
    int failed;       /* malformed (-1) or the callback's value */
    char item[64];    /* current item's name */
    cairn_buf_t text; /* text of the element being read (item or field) */
    cairn_buf_t item_text;
    cairn_buf_t store; /* field names and texts of the current item, NUL-terminated */
    size_t name_off[MAX_FIELDS], text_off[MAX_FIELDS], text_len[MAX_FIELDS];
    size_t nf;
    char field[64];
    s3_xml_item_fn fn;
    void *arg;
} xp_t;

static const char *local_name(const char *n)
{
    const char *c = strrchr(n, ':');
    return c ? c + 1 : n;
}

static void stop(xp_t *x, int rc)
{
    if (x->failed == 0)
        x->failed = rc;
    XML_StopParser(x->p, XML_FALSE);
}

static void XMLCALL on_start(void *data, const XML_Char *name, const XML_Char **attrs)
{
    xp_t *x = data;
    const char *n = local_name(name);
    x->depth++;
    if (x->depth > 3) {
        stop(x, -1); /* root/item/field is as deep as S3 bodies go */
        return;
    }
    if (x->depth == 1) {
        if (strcmp(n, x->root) != 0)
            stop(x, -1);
    } else if (x->depth == 2) {
        snprintf(x->item, sizeof x->item, "%s", n);
        x->nf = 0;
        cairn_buf_reset(&x->store);
        cairn_buf_reset(&x->item_text);
    } else if (x->depth == 3) {
        snprintf(x->field, sizeof x->field, "%s", n);
        cairn_buf_reset(&x->text);
    }
}

static void XMLCALL on_end(void *data, const XML_Char *name)
{
    xp_t *x = data;
    if (x->depth == 3) {
        if (x->nf == MAX_FIELDS) {
            stop(x, -1);
            return;
        }
        x->name_off[x->nf] = x->store.len;
        cairn_buf_append(&x->store, x->field, strlen(x->field) + 1);
        x->text_off[x->nf] = x->store.len;
        x->text_len[x->nf] = x->text.len;
        cairn_buf_append(&x->store, x->text.base, x->text.len);
        cairn_buf_append(&x->store, "", 1);
        x->nf++;
    } else if (x->depth == 2) {
        s3_xml_field_t f[MAX_FIELDS];
        for (size_t i = 0; i < x->nf; i++)
            f[i] = (s3_xml_field_t){(const char *)x->store.base + x->name_off[i],
                                    (const char *)x->store.base + x->text_off[i], x->text_len[i]};
        cairn_buf_append(&x->item_text, "", 1);
        int rc = x->fn(x->arg, x->item, (const char *)x->item_text.base, x->item_text.len - 1, f, x->nf);
        if (rc)
            stop(x, rc);
    }
    x->depth--;
}

static void XMLCALL on_text(void *data, const XML_Char *s, int len)
{
    xp_t *x = data;
    cairn_buf_t *b = x->depth == 3 ? &x->text : x->depth == 2 ? &x->item_text : NULL;
    if (b == NULL)
        return;
    if (b->len + (size_t)len > MAX_TEXT) {
        stop(x, -1);
        return;
    }
    cairn_buf_append(b, s, (size_t)len);
}

static void XMLCALL on_doctype(void *data, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                               int has_internal_subset)
{
    stop(data, -1);
}

int s3_xml_items(const char *body, size_t len, const char *root, s3_xml_item_fn fn, void *arg)
{
    xp_t x;
    memset(&x, 0, sizeof x);
    x.root = root;
    x.fn = fn;
    x.arg = arg;
    cairn_buf_init(&x.text);
    cairn_buf_init(&x.item_text);
    cairn_buf_init(&x.store);
    x.p = XML_ParserCreate("UTF-8");
    CAIRN_ASSERT(x.p != NULL);
    XML_SetUserData(x.p, &x);
    XML_SetElementHandler(x.p, on_start, on_end);
    XML_SetCharacterDataHandler(x.p, on_text);
    XML_SetStartDoctypeDeclHandler(x.p, on_doctype);
    int ok = len <= S3_MAX_XML_BODY && XML_Parse(x.p, body, (int)len, XML_TRUE) == XML_STATUS_OK;
    int rc = x.failed ? x.failed : ok ? 0 : -1;
    XML_ParserFree(x.p);
    cairn_buf_dispose(&x.text);
    cairn_buf_dispose(&x.item_text);
    cairn_buf_dispose(&x.store);
    return rc;
}

/* ---- DeleteObjects ---- */

static int on_delete_item(void *arg, const char *name, const char *text, size_t tlen, const s3_xml_field_t *f,
                          size_t nf)
{
    s3_delete_in_t *d = arg;
    if (strcmp(name, "Quiet") == 0) {
        d->quiet = tlen == 4 && strncasecmp(text, "true", 4) == 0;
        return 0;
    }
    if (strcmp(name, "Object") != 0)
        return 0;
    const s3_xml_field_t *key = NULL, *ver = NULL;
    for (size_t i = 0; i < nf; i++) {
        if (strcmp(f[i].name, "Key") == 0)
            key = &f[i];
        else if (strcmp(f[i].name, "VersionId") == 0)
            ver = &f[i];
    }
    if (key == NULL) {
        d->bad = 1;
        return -1;
    }
    if (++d->n > S3_DELETE_MAX) {
        d->too_many = 1;
        return -1;
    }
    cairn_buf_put_bytes(&d->keys, key->text, key->len);
    cairn_buf_put_u8(&d->keys, ver && !(ver->len == 4 && memcmp(ver->text, "null", 4) == 0));
    return 0;
}

int s3_xml_delete_parse(const char *body, size_t len, s3_delete_in_t *d)
{
    memset(d, 0, sizeof *d);
    cairn_buf_init(&d->keys);
    int rc = s3_xml_items(body, len, "Delete", on_delete_item, d);
    return rc != 0 || d->n == 0 ? -1 : 0;
}

void s3_delete_in_dispose(s3_delete_in_t *d)
{
    cairn_buf_dispose(&d->keys);
}

/* ---- CompleteMultipartUpload ---- */

static int on_part(void *arg, const char *name, const char *text, size_t tlen, const s3_xml_field_t *f, size_t nf)
{
    s3_parts_in_t *pi = arg;
    if (strcmp(name, "Part") != 0)
        return 0;
    const char *num = NULL, *etag = NULL;
    size_t elen = 0;
    for (size_t i = 0; i < nf; i++) {
        if (strcmp(f[i].name, "PartNumber") == 0)
            num = f[i].text;
        else if (strcmp(f[i].name, "ETag") == 0) {
            etag = f[i].text;
            elen = f[i].len;
        }
    }
    if (num == NULL || etag == NULL)
        return -1;
    char *end;
    long n = strtol(num, &end, 10);
    if (*num == '\0' || *end != '\0' || n < 1 || n > CAIRN_MPU_MAX_PARTS) {
        pi->bad_number = 1;
        return -2;
    }
    if (pi->n == CAIRN_MPU_MAX_PARTS)
        return -1;
    /* ETags come quoted, maybe with blanks around: keep the hex inside. */
    while (elen > 0 && (*etag == '"' || *etag == ' ' || *etag == '\n' || *etag == '\t' || *etag == '\r')) {
        etag++;
        elen--;
    }
    while (elen > 0 && (etag[elen - 1] == '"' || etag[elen - 1] == ' ' || etag[elen - 1] == '\n' ||
                        etag[elen - 1] == '\t' || etag[elen - 1] == '\r'))
        elen--;
    if (pi->n == pi->cap) {
        pi->cap = pi->cap ? 2 * pi->cap : 64;
        pi->sel = cairn_realloc(pi->sel, pi->cap * sizeof *pi->sel);
        pi->eoff = cairn_realloc(pi->eoff, pi->cap * sizeof *pi->eoff);
    }
    pi->eoff[pi->n] = pi->etags.len;
    cairn_buf_append(&pi->etags, etag, elen);
    pi->sel[pi->n] = (cairn_mpu_sel_t){(uint32_t)n, NULL, elen};
    pi->n++;
    return 0;
}

int s3_xml_complete_parse(const char *body, size_t len, s3_parts_in_t *pi)
{
    memset(pi, 0, sizeof *pi);
    cairn_buf_init(&pi->etags);
    int rc = s3_xml_items(body, len, "CompleteMultipartUpload", on_part, pi);
    if (pi->bad_number)
        return -2;
    if (rc != 0 || pi->n == 0)
        return -1;
    for (size_t i = 0; i < pi->n; i++)
        pi->sel[i].etag = (const char *)pi->etags.base + pi->eoff[i];
    return 0;
}

void s3_parts_in_dispose(s3_parts_in_t *pi)
{
    free(pi->sel);
    free(pi->eoff);
    cairn_buf_dispose(&pi->etags);
    memset(pi, 0, sizeof *pi);
}
