/*
 * frag_test.c — fragment header and geometry.
 *
 * Geometry is checked against a slow reference that lays the object out
 * stripe by stripe (take k*B bytes or what is left, cut it into k blocks of
 * ceil(bytes/k), append each block and its checksum) at the edge sizes
 * 0, 1, k*B-1, k*B, k*B+1 and on seeded random shapes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/frag.h"

/* ---- reference layout ---- */

typedef struct {
    uint64_t nstripes;
    uint64_t fsize;
} ref_t;

/* Walks the stripes; checks every per-stripe function on the way. */
static ref_t ref_walk(const cairn_frag_hdr_t *h)
{
    ref_t r = {0, CAIRN_FRAG_HDR_SIZE};
    uint64_t left = h->object_size, full = (uint64_t)h->k * h->block_size;
    while (left > 0) {
        uint64_t sb = left < full ? left : full;
        uint64_t len = (sb + h->k - 1) / h->k;
        assert_int_equal(cairn_frag_block_offset(h, r.nstripes), r.fsize);
        assert_int_equal(cairn_frag_block_len(h, r.nstripes), len);
        assert_int_equal(cairn_frag_stripe_bytes(h, r.nstripes), sb);
        r.fsize += len + CAIRN_FRAG_SUM_SIZE;
        left -= sb;
        r.nstripes++;
    }
    return r;
}

static void check_geometry(uint8_t k, uint8_t m, uint32_t B, uint64_t size)
{
    cairn_frag_hdr_t h = {.k = k, .m = m, .block_size = B, .object_size = size};
    ref_t r = ref_walk(&h);
    assert_int_equal(cairn_frag_nstripes(&h), r.nstripes);
    assert_int_equal(cairn_frag_file_size(&h), r.fsize);
    /* past the end: nothing */
    assert_int_equal(cairn_frag_block_len(&h, r.nstripes), 0);
    assert_int_equal(cairn_frag_stripe_bytes(&h, r.nstripes), 0);
}

static void test_geometry_edges(void **state)
{
    const uint8_t ks[] = {1, 2, 4, 10};
    const uint32_t bs[] = {64, 4096, 256 << 10};
    for (size_t i = 0; i < sizeof ks; i++) {
        for (size_t j = 0; j < sizeof bs / sizeof bs[0]; j++) {
            uint8_t k = ks[i];
            uint32_t B = bs[j];
            uint64_t kb = (uint64_t)k * B;
            check_geometry(k, 2, B, 0);
            check_geometry(k, 2, B, 1);
            check_geometry(k, 2, B, kb - 1);
            check_geometry(k, 2, B, kb);
            check_geometry(k, 2, B, kb + 1);
            check_geometry(k, 2, B, 3 * kb + 7);
        }
    }
}

/* The sizes named in the format's contract, spelled out for k=4, B=256. */
static void test_geometry_values(void **state)
{
    cairn_frag_hdr_t h = {.k = 4, .m = 2, .block_size = 256};
    h.object_size = 0;
    assert_int_equal(cairn_frag_nstripes(&h), 0);
    assert_int_equal(cairn_frag_file_size(&h), 64);
    h.object_size = 1; /* one stripe of 1-byte blocks */
    assert_int_equal(cairn_frag_nstripes(&h), 1);
    assert_int_equal(cairn_frag_block_len(&h, 0), 1);
    assert_int_equal(cairn_frag_file_size(&h), 64 + 1 + 8);
    h.object_size = 1023; /* k*B - 1: blocks of 256 (ceil(1023/4)) */
    assert_int_equal(cairn_frag_nstripes(&h), 1);
    assert_int_equal(cairn_frag_block_len(&h, 0), 256);
    assert_int_equal(cairn_frag_stripe_bytes(&h, 0), 1023);
    h.object_size = 1024;
    assert_int_equal(cairn_frag_nstripes(&h), 1);
    assert_int_equal(cairn_frag_file_size(&h), 64 + 256 + 8);
    h.object_size = 1025; /* a second stripe of 1-byte blocks */
    assert_int_equal(cairn_frag_nstripes(&h), 2);
    assert_int_equal(cairn_frag_block_len(&h, 1), 1);
    assert_int_equal(cairn_frag_block_offset(&h, 1), 64 + 264);
    assert_int_equal(cairn_frag_stripe_bytes(&h, 1), 1);
    assert_int_equal(cairn_frag_file_size(&h), 64 + 264 + 9);
}

static void test_geometry_random(void **state)
{
    srand(12345);
    for (int i = 0; i < 2000; i++) {
        uint8_t k = (uint8_t)(1 + rand() % 16);
        uint8_t m = (uint8_t)(rand() % (CAIRN_MAX_FRAGS - k + 1));
        uint32_t B = 64u * (uint32_t)(1 + rand() % 64);
        uint64_t size = (uint64_t)rand() % (20ull * k * B);
        check_geometry(k, m, B, size);
    }
}

/* ---- header ---- */

static cairn_frag_hdr_t sample_hdr(void)
{
    cairn_frag_hdr_t h = {.index = 5, .k = 4, .m = 2, .block_size = 256 << 10, .object_size = 123456789};
    for (int i = 0; i < 16; i++)
        h.oid[i] = (uint8_t)(0xa0 + i);
    return h;
}

static void test_hdr_round_trip(void **state)
{
    cairn_frag_hdr_t h = sample_hdr(), g;
    uint8_t b[CAIRN_FRAG_HDR_SIZE];
    cairn_frag_hdr_encode(&h, b);
    assert_int_equal(cairn_le32_get(b), CAIRN_FRAG_MAGIC);
    assert_memory_equal(b, "CRNF", 4);
    assert_int_equal(cairn_frag_hdr_decode(b, &g), 0);
    assert_memory_equal(g.oid, h.oid, 16);
    assert_int_equal(g.index, 5);
    assert_int_equal(g.k, 4);
    assert_int_equal(g.m, 2);
    assert_int_equal(g.block_size, 256 << 10);
    assert_int_equal(g.object_size, 123456789);
    /* the checksum is XXH3-64 of bytes 0..55, little-endian at 56 */
    assert_int_equal(cairn_le64_get(b + 56), XXH3_64bits(b, 56));
}

/* Every single-bit flip anywhere in the header is caught. */
static void test_hdr_corruption(void **state)
{
    cairn_frag_hdr_t h = sample_hdr(), g;
    uint8_t b[CAIRN_FRAG_HDR_SIZE];
    cairn_frag_hdr_encode(&h, b);
    for (int i = 0; i < CAIRN_FRAG_HDR_SIZE; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1 << bit);
            assert_int_equal(cairn_frag_hdr_decode(b, &g), CAIRN_ECORRUPT);
            b[i] ^= (uint8_t)(1 << bit);
        }
    }
    assert_int_equal(cairn_frag_hdr_decode(b, &g), 0);
}

/* Re-seal a modified header with a valid checksum. */
static int decode_patched(const cairn_frag_hdr_t *h, int off, uint8_t val)
{
    uint8_t b[CAIRN_FRAG_HDR_SIZE];
    cairn_frag_hdr_t g;
    cairn_frag_hdr_encode(h, b);
    if (off >= 0)
        b[off] = val;
    cairn_le64_put(b + 56, XXH3_64bits(b, 56));
    return cairn_frag_hdr_decode(b, &g);
}

static void test_hdr_insane(void **state)
{
    cairn_frag_hdr_t h = sample_hdr(), x;
    assert_int_equal(decode_patched(&h, -1, 0), 0);
    assert_int_equal(decode_patched(&h, 4, 2), CAIRN_EPROTO);   /* version 2 */
    assert_int_equal(decode_patched(&h, 6, 32), CAIRN_EPROTO);  /* header size */
    assert_int_equal(decode_patched(&h, 27, 1), CAIRN_EPROTO);  /* reserved */
    assert_int_equal(decode_patched(&h, 47, 1), CAIRN_EPROTO);  /* reserved */
    x = h, x.k = 0;
    assert_int_equal(decode_patched(&x, -1, 0), CAIRN_EPROTO);
    x = h, x.k = 30, x.m = 3, x.index = 0;
    assert_int_equal(decode_patched(&x, -1, 0), CAIRN_EPROTO);
    x = h, x.k = 30, x.m = 2, x.index = 31;
    assert_int_equal(decode_patched(&x, -1, 0), 0);
    x = h, x.index = 6;
    assert_int_equal(decode_patched(&x, -1, 0), CAIRN_EPROTO);
    x = h, x.block_size = 0;
    assert_int_equal(decode_patched(&x, -1, 0), CAIRN_EPROTO);
    x = h, x.block_size = 100;
    assert_int_equal(decode_patched(&x, -1, 0), CAIRN_EPROTO);
    x = h, x.block_size = CAIRN_FRAG_MAX_BLOCK;
    assert_int_equal(decode_patched(&x, -1, 0), 0);
    x = h, x.block_size = CAIRN_FRAG_MAX_BLOCK + 64;
    assert_int_equal(decode_patched(&x, -1, 0), CAIRN_EPROTO);
    x = h, x.object_size = CAIRN_FRAG_MAX_OBJECT + 1;
    assert_int_equal(decode_patched(&x, -1, 0), CAIRN_EPROTO);
}

static void test_path_and_sum(void **state)
{
    uint8_t oid[16];
    char path[64];
    for (int i = 0; i < 16; i++)
        oid[i] = (uint8_t)(i * 17);
    cairn_frag_path(oid, 3, path, sizeof path);
    assert_string_equal(path, "00/00112233445566778899aabbccddeeff.3");
    oid[0] = 0xab;
    cairn_frag_path(oid, 255, path, sizeof path);
    assert_string_equal(path, "ab/ab112233445566778899aabbccddeeff.255");
    uint8_t data[1000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7);
    for (size_t n = 0; n <= sizeof data; n += 37)
        assert_int_equal(cairn_frag_sum(data, n), XXH3_64bits(data, n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry_edges), cmocka_unit_test(test_geometry_values),
        cmocka_unit_test(test_geometry_random), cmocka_unit_test(test_hdr_round_trip),
        cmocka_unit_test(test_hdr_corruption), cmocka_unit_test(test_hdr_insane),
        cmocka_unit_test(test_path_and_sum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
