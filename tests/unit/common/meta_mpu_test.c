/* meta_mpu_test.c — encodings of multipart uploads: upload records, the parts
 * list of a multipart object record (version 2), version 1 kept for plain
 * records, upload ids, and rejection of every truncation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/meta.h"
#include "cairn/meta_mpu.h"

static void test_upload_rec(void **state)
{
    (void)state;
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_mpu_rec_t u = {.key = "a/b", .key_len = 3, .owner = "me", .owner_len = 2, .initiated_ms = 1234567,
                         .content_type = "text/plain", .content_type_len = 10, .user_meta = (const uint8_t *)"x",
                         .user_meta_len = 1, .sys_meta = (const uint8_t *)"yz", .sys_meta_len = 2};
    cairn_mpu_rec_encode(&u, &b);
    cairn_mpu_rec_t v;
    assert_int_equal(cairn_mpu_rec_decode(b.base, b.len, &v), 0);
    assert_memory_equal(v.key, "a/b", 3);
    assert_int_equal(v.initiated_ms, 1234567);
    assert_int_equal(v.sys_meta_len, 2);
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(cairn_mpu_rec_decode(b.base, n, &v), CAIRN_EPROTO);
    u.key_len = 0;
    cairn_buf_reset(&b);
    cairn_mpu_rec_encode(&u, &b);
    assert_int_equal(cairn_mpu_rec_decode(b.base, b.len, &v), CAIRN_EPROTO); /* a key is required */
    cairn_buf_dispose(&b);
}

static void test_upload_id(void **state)
{
    (void)state;
    uint8_t id[16], back[16];
    char hex[33];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(i * 17 + 3);
    cairn_mpu_id_hex(id, hex);
    assert_int_equal(strlen(hex), 32);
    assert_int_equal(cairn_mpu_id_parse(hex, 32, back), 0);
    assert_memory_equal(id, back, 16);
    assert_int_equal(cairn_mpu_id_parse(hex, 31, back), CAIRN_EINVAL);
    hex[5] = 'g';
    assert_int_equal(cairn_mpu_id_parse(hex, 32, back), CAIRN_EINVAL);
}

static void make_parts(cairn_buf_t *parts, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        cairn_obj_part_t p = {.number = i * 2 + 1, .size = 5u << 20, .k = (uint8_t)(1 + i % 8),
                              .m = (uint8_t)(i % 3), .block_size = 65536};
        memset(p.oid, (int)i, 16);
        for (int j = 0; j < p.k + p.m; j++)
            p.nodes[j] = i * 100 + (uint32_t)j;
        cairn_obj_part_add(parts, &p);
    }
}

static void test_parts_record(void **state)
{
    (void)state;
    cairn_buf_t parts, enc;
    cairn_buf_init(&parts);
    cairn_buf_init(&enc);
    make_parts(&parts, 5);
    cairn_obj_rec_t r = {.size = 25u << 20, .mtime_ms = 99, .nparts = 5, .parts = parts.base,
                         .parts_len = parts.len, .content_type = "a/b", .content_type_len = 3};
    strcpy(r.etag, "0123456789abcdef0123456789abcdef-5");
    memset(r.oid, 7, 16);
    cairn_obj_rec_encode(&r, &enc);
    assert_int_equal(enc.base[0], 2); /* version 2 */
    cairn_obj_rec_t d;
    assert_int_equal(cairn_obj_rec_decode(enc.base, enc.len, &d), 0);
    assert_int_equal(d.nparts, 5);
    assert_int_equal(d.k, 0);
    assert_string_equal(d.etag, r.etag);
    size_t off = 0;
    cairn_obj_part_t p;
    for (uint32_t i = 0; i < 5; i++) {
        assert_int_equal(cairn_obj_part_next(d.parts, d.parts_len, &off, &p), 1);
        assert_int_equal(p.number, i * 2 + 1);
        assert_int_equal(p.k, 1 + i % 8);
        assert_int_equal(p.nodes[p.k + p.m - 1], i * 100 + p.k + p.m - 1);
        cairn_obj_rec_t pr;
        cairn_obj_part_rec(&p, &pr);
        assert_int_equal(pr.size, 5u << 20);
        assert_int_equal(pr.nparts, 0);
    }
    assert_int_equal(cairn_obj_part_next(d.parts, d.parts_len, &off, &p), 0);
    /* every truncation is refused */
    for (size_t n = 0; n < enc.len; n++)
        assert_int_equal(cairn_obj_rec_decode(enc.base, n, &d), CAIRN_EPROTO);
    /* a count that disagrees with the list is refused */
    r.nparts = 4;
    cairn_buf_reset(&enc);
    cairn_obj_rec_encode(&r, &enc);
    assert_int_equal(cairn_obj_rec_decode(enc.base, enc.len, &d), CAIRN_EPROTO);
    /* a plain record stays version 1 */
    cairn_obj_rec_t plain = {.size = 1, .k = 4, .m = 2, .block_size = 4096, .content_type = "", .content_type_len = 0};
    cairn_buf_reset(&enc);
    cairn_obj_rec_encode(&plain, &enc);
    assert_int_equal(enc.base[0], 1);
    assert_int_equal(cairn_obj_rec_decode(enc.base, enc.len, &d), 0);
    assert_int_equal(d.nparts, 0);
    assert_null(d.sys_meta);
    /* sys_meta alone makes version 2, and must be well-formed pairs */
    cairn_buf_t sm;
    cairn_buf_init(&sm);
    cairn_obj_meta_add(&sm, "cache-control", 13, "no-cache", 8);
    plain.sys_meta = sm.base;
    plain.sys_meta_len = sm.len;
    cairn_buf_reset(&enc);
    cairn_obj_rec_encode(&plain, &enc);
    assert_int_equal(enc.base[0], 2);
    assert_int_equal(cairn_obj_rec_decode(enc.base, enc.len, &d), 0);
    assert_int_equal(d.sys_meta_len, sm.len);
    plain.sys_meta_len = sm.len - 1;
    cairn_buf_reset(&enc);
    cairn_obj_rec_encode(&plain, &enc);
    assert_int_equal(cairn_obj_rec_decode(enc.base, enc.len, &d), CAIRN_EPROTO);
    cairn_buf_dispose(&sm);
    cairn_buf_dispose(&parts);
    cairn_buf_dispose(&enc);
}

static void test_bad_parts(void **state)
{
    (void)state;
    cairn_obj_part_t p;
    size_t off = 0;
    uint8_t zero_k[16 + 4 + 8 + 2 + 4] = {0}; /* k = 0 */
    assert_int_equal(cairn_obj_part_next(zero_k, sizeof zero_k, &off, &p), 0);
    assert_int_equal(off, 0);
    cairn_buf_t b;
    cairn_buf_init(&b);
    make_parts(&b, 1);
    b.base[4 + 16 + 8] = 30; /* k = 30, m = 0... */
    b.base[4 + 16 + 8 + 1] = 3; /* ...m = 3: 33 fragments */
    assert_int_equal(cairn_obj_part_next(b.base, b.len, &off, &p), 0);
    cairn_buf_dispose(&b);
}

static void test_list_req(void **state)
{
    (void)state;
    cairn_mpu_list_req_t q = {.bucket = "bkt", .prefix = "p/", .prefix_len = 2, .delimiter = "/",
                              .delimiter_len = 1, .key_marker = "p/k", .key_marker_len = 3, .has_id_marker = 1,
                              .max = 7};
    memset(q.id_marker, 0xEE, 16);
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_mpu_list_req_encode(&q, &b);
    cairn_mpu_list_req_t d;
    char bucket[CAIRN_MAX_BUCKET_LEN + 1];
    assert_int_equal(cairn_mpu_list_req_decode(b.base, b.len, &d, bucket), 0);
    assert_string_equal(d.bucket, "bkt");
    assert_int_equal(d.max, 7);
    assert_int_equal(d.has_id_marker, 1);
    assert_memory_equal(d.key_marker, "p/k", 3);
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(cairn_mpu_list_req_decode(b.base, n, &d, bucket), CAIRN_EPROTO);
    cairn_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upload_rec),   cmocka_unit_test(test_upload_id), cmocka_unit_test(test_parts_record),
        cmocka_unit_test(test_bad_parts),    cmocka_unit_test(test_list_req),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
