/*
 * fuzz_meta.c — libFuzzer driver for the metadata encodings (meta.h,
 * meta_mpu.h): object records (with their parts and metadata pairs),
 * bucket records, OBJ_LIST requests and responses, replica status, upload
 * records, upload ids and upload-list requests. The metadata service
 * decodes requests from the network and records from LMDB with these; the
 * gateway decodes answers with them.
 *
 * Input: byte 0 picks the decoder (mod 9), the rest is the encoding.
 *
 * Checked properties, beyond "no crash, no sanitizer report":
 * - every view a decoder returns lies inside the input;
 * - what decodes re-encodes to something that decodes to the same values
 *   (round trip), and a record's iterators visit exactly what it claims
 *   (nparts parts, metadata pairs that tile their encoding).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/meta.h"
#include "cairn/meta_mpu.h"

static const uint8_t *lo, *hi; /* the input, for view checks */

static void in_input(const void *p, size_t n)
{
    const uint8_t *b = p;
    if (n > 0 && (b < lo || b > hi || n > (size_t)(hi - b)))
        abort();
}

static void same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen || (alen && memcmp(a, b, alen) != 0))
        abort();
}

/* Metadata pairs tile their encoding and stay inside it. */
static void walk_pairs(const uint8_t *p, size_t len)
{
    size_t off = 0, last = 0;
    const char *n, *v;
    size_t nl, vl;
    while (cairn_obj_meta_next(p, len, &off, &n, &nl, &v, &vl)) {
        if (off <= last || (const uint8_t *)n < p || (const uint8_t *)v + vl > p + len)
            abort();
        last = off;
    }
}

static uint32_t walk_parts(const uint8_t *p, size_t len)
{
    size_t off = 0;
    uint32_t n = 0;
    cairn_obj_part_t part;
    cairn_obj_rec_t r;
    while (cairn_obj_part_next(p, len, &off, &part)) {
        if (off > len || part.k == 0 || (unsigned)part.k + part.m > CAIRN_MAX_FRAGS)
            abort();
        cairn_obj_part_rec(&part, &r);
        if (r.size != part.size || r.k != part.k || memcmp(r.oid, part.oid, 16) != 0)
            abort();
        n++;
    }
    return n;
}

static void obj_rec(const uint8_t *p, size_t n)
{
    cairn_obj_rec_t r, s;
    if (cairn_obj_rec_decode(p, n, &r) != 0)
        return;
    in_input(r.content_type, r.content_type_len);
    in_input(r.user_meta, r.user_meta_len);
    in_input(r.sys_meta, r.sys_meta_len);
    in_input(r.parts, r.parts_len);
    in_input(r.inline_data, r.inline_len);
    walk_pairs(r.user_meta, r.user_meta_len);
    walk_pairs(r.sys_meta, r.sys_meta_len);
    if (walk_parts(r.parts, r.parts_len) != r.nparts)
        abort();
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_obj_rec_encode(&r, &b);
    if (cairn_obj_rec_decode(b.base, b.len, &s) != 0)
        abort();
    if (memcmp(r.oid, s.oid, 16) || r.size != s.size || r.mtime_ms != s.mtime_ms || strcmp(r.etag, s.etag) ||
        r.k != s.k || r.m != s.m || r.block_size != s.block_size || r.nparts != s.nparts ||
        r.is_inline != s.is_inline || memcmp(r.nodes, s.nodes, sizeof r.nodes))
        abort();
    same_bytes(r.content_type, r.content_type_len, s.content_type, s.content_type_len);
    same_bytes(r.user_meta, r.user_meta_len, s.user_meta, s.user_meta_len);
    same_bytes(r.sys_meta, r.sys_meta_len, s.sys_meta, s.sys_meta_len);
    same_bytes(r.parts, r.parts_len, s.parts, s.parts_len);
    same_bytes(r.inline_data, r.inline_len, s.inline_data, s.inline_len);
    cairn_buf_dispose(&b);
}

static void bucket_recs(const uint8_t *p, size_t n)
{
    cairn_dec_t d;
    cairn_dec_init(&d, p, n);
    cairn_bucket_rec_t r, s;
    while (cairn_dec_left(&d) > 0 && cairn_bucket_rec_decode(&d, &r) == 0) {
        in_input(r.name, r.name_len);
        in_input(r.owner, r.owner_len);
        cairn_buf_t b;
        cairn_buf_init(&b);
        /* the encoder takes strings: only names without NUL round-trip */
        if (!memchr(r.name, 0, r.name_len) && !memchr(r.owner, 0, r.owner_len)) {
            char *name = strndup(r.name, r.name_len), *owner = strndup(r.owner, r.owner_len);
            cairn_bucket_rec_t t = {name, r.name_len, owner, r.owner_len, r.ctime_ms};
            cairn_bucket_rec_encode(&t, &b);
            cairn_dec_t e;
            cairn_dec_init(&e, b.base, b.len);
            if (cairn_bucket_rec_decode(&e, &s) != 0 || cairn_dec_left(&e) != 0 || s.ctime_ms != r.ctime_ms)
                abort();
            same_bytes(s.name, s.name_len, r.name, r.name_len);
            same_bytes(s.owner, s.owner_len, r.owner, r.owner_len);
            free(name);
            free(owner);
        }
        cairn_buf_dispose(&b);
    }
}

static void list_req(const uint8_t *p, size_t n)
{
    char bucket[CAIRN_MAX_BUCKET_LEN + 1], bucket2[CAIRN_MAX_BUCKET_LEN + 1];
    cairn_meta_list_req_t q, q2;
    if (cairn_meta_list_req_decode(p, n, &q, bucket) != 0)
        return;
    if (strlen(q.bucket) == 0 || strlen(q.bucket) > CAIRN_MAX_BUCKET_LEN)
        abort();
    in_input(q.prefix, q.prefix_len);
    in_input(q.delimiter, q.delimiter_len);
    in_input(q.start_after, q.start_after_len);
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_meta_list_req_encode(&q, &b);
    same_bytes(b.base, b.len, p, n); /* the encoding is canonical */
    if (cairn_meta_list_req_decode(b.base, b.len, &q2, bucket2) != 0 || strcmp(bucket, bucket2) != 0)
        abort();
    cairn_buf_dispose(&b);
}

static void list_resp(const uint8_t *p, size_t n)
{
    cairn_meta_list_t l;
    cairn_meta_list_init(&l);
    cairn_buf_reserve(&l.raw, n); /* never NULL, even for n == 0 */
    cairn_buf_append(&l.raw, p, n);
    lo = l.raw.base;
    hi = l.raw.base + l.raw.len;
    if (cairn_meta_list_decode(&l) == 0) {
        for (size_t i = 0; i < l.nentries; i++) {
            in_input(l.entries[i].key, l.entries[i].key_len);
            in_input(l.entries[i].etag, strlen(l.entries[i].etag) + 1);
        }
        for (size_t i = 0; i < l.nprefixes; i++)
            in_input(l.prefixes[i].p, l.prefixes[i].len);
        in_input(l.next, l.next_len);
    }
    /* decoding twice frees the arrays of the first parse */
    (void)cairn_meta_list_decode(&l);
    cairn_meta_list_dispose(&l);
}

static void status(const uint8_t *p, size_t n)
{
    cairn_meta_status_t st, st2;
    if (cairn_meta_status_decode(p, n, &st) != 0)
        return;
    if (st.nmembers > CAIRN_META_MAX_MEMBERS || strlen(st.leader_addr) >= 128 || !cairn_meta_role_name(st.role))
        abort();
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_meta_status_encode(&st, &b);
    same_bytes(b.base, b.len, p, n);
    if (cairn_meta_status_decode(b.base, b.len, &st2) != 0 || memcmp(&st, &st2, sizeof st) != 0)
        abort();
    cairn_buf_dispose(&b);
}

static void mpu_rec(const uint8_t *p, size_t n)
{
    cairn_mpu_rec_t u, v;
    if (cairn_mpu_rec_decode(p, n, &u) != 0)
        return;
    if (u.key_len == 0 || u.key_len > CAIRN_MAX_KEY_LEN)
        abort();
    in_input(u.key, u.key_len);
    in_input(u.owner, u.owner_len);
    in_input(u.content_type, u.content_type_len);
    in_input(u.user_meta, u.user_meta_len);
    in_input(u.sys_meta, u.sys_meta_len);
    walk_pairs(u.user_meta, u.user_meta_len);
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_mpu_rec_encode(&u, &b);
    same_bytes(b.base, b.len, p, n);
    if (cairn_mpu_rec_decode(b.base, b.len, &v) != 0 || v.initiated_ms != u.initiated_ms)
        abort();
    cairn_buf_dispose(&b);
}

static void mpu_id(const uint8_t *p, size_t n)
{
    uint8_t id[16];
    char hex[33];
    if (cairn_mpu_id_parse((const char *)p, n, id) != 0)
        return;
    cairn_mpu_id_hex(id, hex);
    if (n != 32 || strlen(hex) != 32 || strncasecmp(hex, (const char *)p, 32) != 0)
        abort();
}

static void mpu_list_req(const uint8_t *p, size_t n)
{
    char bucket[CAIRN_MAX_BUCKET_LEN + 1], bucket2[CAIRN_MAX_BUCKET_LEN + 1];
    cairn_mpu_list_req_t q, q2;
    if (cairn_mpu_list_req_decode(p, n, &q, bucket) != 0)
        return;
    in_input(q.prefix, q.prefix_len);
    in_input(q.delimiter, q.delimiter_len);
    in_input(q.key_marker, q.key_marker_len);
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_mpu_list_req_encode(&q, &b);
    same_bytes(b.base, b.len, p, n);
    if (cairn_mpu_list_req_decode(b.base, b.len, &q2, bucket2) != 0 || strcmp(bucket, bucket2) != 0)
        abort();
    cairn_buf_dispose(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* an exact copy: views are checked against it */
    size_t n = size - 1;
    uint8_t *p = malloc(n ? n : 1);
    memcpy(p, data + 1, n);
    lo = p;
    hi = p + n;
    switch (data[0] % 9) {
    case 0: obj_rec(p, n); break;
    case 1: bucket_recs(p, n); break;
    case 2: list_req(p, n); break;
    case 3: list_resp(p, n); break;
    case 4: status(p, n); break;
    case 5: mpu_rec(p, n); break;
    case 6: mpu_id(p, n); break;
    case 7: mpu_list_req(p, n); break;
    case 8: walk_parts(p, n); walk_pairs(p, n); break;
    }
    free(p);
    return 0;
}
