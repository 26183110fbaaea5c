/*
 * meta_test.c — the record and message encodings of meta.h: round trips,
 * and every truncation or corruption of a valid encoding refused with
 * CAIRN_EPROTO instead of read past the end (the decoders face bytes from
 * the network and from disk).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/meta.h"

static void fill_rec(cairn_obj_rec_t *r, cairn_buf_t *um)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < 16; i++)
        r->oid[i] = (uint8_t)(0xa0 + i);
    r->size = 5ull << 30;
    r->mtime_ms = -12345; /* negative survives */
    strcpy(r->etag, "9b2cf535f27731c974343645a3985328-12");
    r->k = 8;
    r->m = 3;
    r->block_size = 1 << 20;
    for (int i = 0; i < 11; i++)
        r->nodes[i] = 0xfffff000u + (uint32_t)i;
    r->content_type = "application/octet-stream";
    r->content_type_len = strlen(r->content_type);
    cairn_buf_reset(um);
    cairn_obj_meta_add(um, "author", 6, "ana", 3);
    cairn_obj_meta_add(um, "empty", 5, "", 0);
    cairn_obj_meta_add(um, "utf8", 4, "\xc3\xa9t\xc3\xa9", 6);
    r->user_meta = um->base;
    r->user_meta_len = um->len;
}

static void test_rec_roundtrip(void **state)
{
    cairn_buf_t um, enc;
    cairn_buf_init(&um);
    cairn_buf_init(&enc);
    cairn_obj_rec_t r, d;
    fill_rec(&r, &um);
    cairn_obj_rec_encode(&r, &enc);
    assert_int_equal(cairn_obj_rec_decode(enc.base, enc.len, &d), 0);
    assert_memory_equal(d.oid, r.oid, 16);
    assert_int_equal(d.size, r.size);
    assert_int_equal(d.mtime_ms, -12345);
    assert_string_equal(d.etag, r.etag);
    assert_int_equal(d.k, 8);
    assert_int_equal(d.m, 3);
    assert_int_equal(d.block_size, 1 << 20);
    assert_memory_equal(d.nodes, r.nodes, 11 * sizeof r.nodes[0]);
    assert_int_equal(d.nodes[11], 0);
    assert_int_equal(d.content_type_len, r.content_type_len);
    assert_memory_equal(d.content_type, r.content_type, r.content_type_len);
    /* views point into the encoding */
    assert_true((const uint8_t *)d.content_type >= enc.base && (const uint8_t *)d.content_type < enc.base + enc.len);

    size_t off = 0, nl, vl;
    const char *n, *v;
    assert_int_equal(cairn_obj_meta_next(d.user_meta, d.user_meta_len, &off, &n, &nl, &v, &vl), 1);
    assert_int_equal(nl, 6);
    assert_memory_equal(n, "author", 6);
    assert_memory_equal(v, "ana", 3);
    assert_int_equal(cairn_obj_meta_next(d.user_meta, d.user_meta_len, &off, &n, &nl, &v, &vl), 1);
    assert_int_equal(vl, 0);
    assert_int_equal(cairn_obj_meta_next(d.user_meta, d.user_meta_len, &off, &n, &nl, &v, &vl), 1);
    assert_int_equal(vl, 6);
    assert_int_equal(cairn_obj_meta_next(d.user_meta, d.user_meta_len, &off, &n, &nl, &v, &vl), 0);
    assert_int_equal(off, d.user_meta_len);

    /* the smallest record: no fragments, no type, no metadata, empty etag */
    cairn_obj_rec_t z;
    memset(&z, 0, sizeof z);
    cairn_buf_reset(&enc);
    cairn_obj_rec_encode(&z, &enc);
    assert_int_equal(cairn_obj_rec_decode(enc.base, enc.len, &d), 0);
    assert_int_equal(d.content_type_len, 0);
    assert_int_equal(d.user_meta_len, 0);
    assert_string_equal(d.etag, "");

    /* the largest etag that fits */
    memset(z.etag, 'x', sizeof z.etag - 1);
    z.etag[sizeof z.etag - 1] = '\0';
    cairn_buf_reset(&enc);
    cairn_obj_rec_encode(&z, &enc);
    assert_int_equal(cairn_obj_rec_decode(enc.base, enc.len, &d), 0);
    assert_int_equal(strlen(d.etag), sizeof z.etag - 1);
    cairn_buf_dispose(&um);
    cairn_buf_dispose(&enc);
}

static void test_rec_malformed(void **state)
{
    cairn_buf_t um, enc;
    cairn_buf_init(&um);
    cairn_buf_init(&enc);
    cairn_obj_rec_t r, d;
    fill_rec(&r, &um);
    cairn_obj_rec_encode(&r, &enc);

    /* every strict prefix */
    for (size_t n = 0; n < enc.len; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan catches over-reads */
        memcpy(copy, enc.base, n);
        assert_int_equal(cairn_obj_rec_decode(copy, n, &d), CAIRN_EPROTO);
        free(copy);
    }
    /* trailing byte */
    cairn_buf_t ext;
    cairn_buf_init(&ext);
    cairn_buf_append(&ext, enc.base, enc.len);
    cairn_buf_put_u8(&ext, 0);
    assert_int_equal(cairn_obj_rec_decode(ext.base, ext.len, &d), CAIRN_EPROTO);

    /* bad version */
    enc.base[0] = 2;
    assert_int_equal(cairn_obj_rec_decode(enc.base, enc.len, &d), CAIRN_EPROTO);
    enc.base[0] = 1;

    /* etag length 72 */
    size_t etag_at = 1 + 16 + 8 + 8;
    uint8_t saved = enc.base[etag_at];
    enc.base[etag_at] = 72;
    assert_int_equal(cairn_obj_rec_decode(enc.base, enc.len, &d), CAIRN_EPROTO);
    enc.base[etag_at] = saved;

    /* k + m above the maximum */
    size_t km_at = etag_at + 1 + saved;
    enc.base[km_at] = 30;
    assert_int_equal(cairn_obj_rec_decode(enc.base, enc.len, &d), CAIRN_EPROTO);
    enc.base[km_at] = 8;
    assert_int_equal(cairn_obj_rec_decode(enc.base, enc.len, &d), 0);

    /* a NUL inside the etag */
    enc.base[etag_at + 3] = 0;
    assert_int_equal(cairn_obj_rec_decode(enc.base, enc.len, &d), CAIRN_EPROTO);

    /* malformed user metadata: a pair whose value runs past the end */
    cairn_obj_rec_t z;
    memset(&z, 0, sizeof z);
    uint8_t bad_um[] = {1, 0, 'a', 5, 0, 'x'};
    z.user_meta = bad_um;
    z.user_meta_len = sizeof bad_um;
    cairn_buf_reset(&enc);
    cairn_obj_rec_encode(&z, &enc);
    assert_int_equal(cairn_obj_rec_decode(enc.base, enc.len, &d), CAIRN_EPROTO);
    /* and the iterator stops on it instead of looping */
    size_t off = 0, nl, vl;
    const char *n, *v;
    assert_int_equal(cairn_obj_meta_next(bad_um, sizeof bad_um, &off, &n, &nl, &v, &vl), 0);
    assert_int_equal(off, 0);

    cairn_buf_dispose(&ext);
    cairn_buf_dispose(&um);
    cairn_buf_dispose(&enc);
}

static void test_bucket_rec(void **state)
{
    cairn_buf_t enc;
    cairn_buf_init(&enc);
    cairn_bucket_rec_t r = {"photos", 6, "AKIA", 4, 1700000000000}, d;
    cairn_bucket_rec_encode(&r, &enc);
    cairn_dec_t dec;
    cairn_dec_init(&dec, enc.base, enc.len);
    assert_int_equal(cairn_bucket_rec_decode(&dec, &d), 0);
    assert_int_equal(cairn_dec_left(&dec), 0);
    assert_int_equal(d.name_len, 6);
    assert_memory_equal(d.name, "photos", 6);
    assert_memory_equal(d.owner, "AKIA", 4);
    assert_int_equal(d.ctime_ms, 1700000000000);
    for (size_t n = 0; n < enc.len; n++) {
        cairn_dec_init(&dec, enc.base, n);
        assert_int_equal(cairn_bucket_rec_decode(&dec, &d), CAIRN_EPROTO);
    }
    cairn_buf_dispose(&enc);
}

static void test_list_req(void **state)
{
    cairn_buf_t enc;
    cairn_buf_init(&enc);
    cairn_meta_list_req_t q = {.bucket = "bkt",
                               .prefix = "a/",
                               .prefix_len = 2,
                               .delimiter = "/",
                               .delimiter_len = 1,
                               .start_after = "a/\xff\0z",
                               .start_after_len = 5,
                               .max_keys = 1000},
                          d;
    char bucket[CAIRN_MAX_BUCKET_LEN + 1];
    cairn_meta_list_req_encode(&q, &enc);
    assert_int_equal(cairn_meta_list_req_decode(enc.base, enc.len, &d, bucket), 0);
    assert_string_equal(d.bucket, "bkt");
    assert_ptr_equal(d.bucket, bucket);
    assert_int_equal(d.prefix_len, 2);
    assert_memory_equal(d.prefix, "a/", 2);
    assert_int_equal(d.start_after_len, 5);
    assert_memory_equal(d.start_after, "a/\xff\0z", 5);
    assert_int_equal(d.max_keys, 1000);
    for (size_t n = 0; n < enc.len; n++)
        assert_int_equal(cairn_meta_list_req_decode(enc.base, n, &d, bucket), CAIRN_EPROTO);

    /* bucket names: empty and too long are CAIRN_EINVAL */
    q.bucket = "";
    cairn_buf_reset(&enc);
    cairn_meta_list_req_encode(&q, &enc);
    assert_int_equal(cairn_meta_list_req_decode(enc.base, enc.len, &d, bucket), CAIRN_EINVAL);
    char big[65];
    memset(big, 'b', 64);
    big[64] = '\0';
    q.bucket = big;
    cairn_buf_reset(&enc);
    cairn_meta_list_req_encode(&q, &enc);
    assert_int_equal(cairn_meta_list_req_decode(enc.base, enc.len, &d, bucket), CAIRN_EINVAL);
    big[63] = '\0';
    cairn_buf_reset(&enc);
    cairn_meta_list_req_encode(&q, &enc);
    assert_int_equal(cairn_meta_list_req_decode(enc.base, enc.len, &d, bucket), 0);
    assert_int_equal(strlen(d.bucket), 63);
    cairn_buf_dispose(&enc);
}

/* A list response as the service writes it. */
static void build_list(cairn_buf_t *b, int truncated)
{
    cairn_buf_put_u32(b, 2);
    cairn_buf_put_bytes(b, "a", 1);
    cairn_buf_put_u64(b, 10);
    cairn_buf_put_u64(b, 1700000000000);
    cairn_buf_put_bytes(b, "etag1", 6);
    cairn_buf_put_bytes(b, "c\xff", 2);
    cairn_buf_put_u64(b, 0);
    cairn_buf_put_u64(b, 5);
    cairn_buf_put_bytes(b, "", 1);
    cairn_buf_put_u32(b, 1);
    cairn_buf_put_bytes(b, "b/", 2);
    cairn_buf_put_u8(b, (uint8_t)truncated);
    cairn_buf_put_bytes(b, "c\xff", truncated ? 2 : 0);
}

static void test_list_decode(void **state)
{
    cairn_meta_list_t l;
    cairn_meta_list_init(&l);
    build_list(&l.raw, 1);
    assert_int_equal(cairn_meta_list_decode(&l), 0);
    assert_int_equal(l.nentries, 2);
    assert_int_equal(l.entries[0].key_len, 1);
    assert_int_equal(l.entries[0].size, 10);
    assert_int_equal(l.entries[0].mtime_ms, 1700000000000);
    assert_string_equal(l.entries[0].etag, "etag1");
    assert_string_equal(l.entries[1].etag, "");
    assert_int_equal(l.nprefixes, 1);
    assert_memory_equal(l.prefixes[0].p, "b/", 2);
    assert_int_equal(l.truncated, 1);
    assert_int_equal(l.next_len, 2);

    /* decoding again replaces the arrays (no leak under ASan) */
    assert_int_equal(cairn_meta_list_decode(&l), 0);

    /* every strict prefix fails and leaves the list empty */
    cairn_buf_t full;
    cairn_buf_init(&full);
    cairn_buf_append(&full, l.raw.base, l.raw.len);
    for (size_t n = 0; n < full.len; n++) {
        cairn_buf_reset(&l.raw);
        cairn_buf_append(&l.raw, full.base, n);
        assert_int_equal(cairn_meta_list_decode(&l), CAIRN_EPROTO);
        assert_int_equal(l.nentries + l.nprefixes, 0);
        assert_null(l.entries);
    }
    /* an etag without its NUL */
    cairn_buf_reset(&l.raw);
    cairn_buf_put_u32(&l.raw, 1);
    cairn_buf_put_bytes(&l.raw, "a", 1);
    cairn_buf_put_u64(&l.raw, 1);
    cairn_buf_put_u64(&l.raw, 1);
    cairn_buf_put_bytes(&l.raw, "etag", 4);
    cairn_buf_put_u32(&l.raw, 0);
    cairn_buf_put_u8(&l.raw, 0);
    cairn_buf_put_bytes(&l.raw, "", 0);
    assert_int_equal(cairn_meta_list_decode(&l), CAIRN_EPROTO);
    /* a huge count is refused before any allocation */
    cairn_buf_reset(&l.raw);
    cairn_buf_put_u32(&l.raw, 0xffffffffu);
    assert_int_equal(cairn_meta_list_decode(&l), CAIRN_EPROTO);
    cairn_buf_dispose(&full);
    cairn_meta_list_dispose(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rec_roundtrip), cmocka_unit_test(test_rec_malformed), cmocka_unit_test(test_bucket_rec),
        cmocka_unit_test(test_list_req),      cmocka_unit_test(test_list_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
