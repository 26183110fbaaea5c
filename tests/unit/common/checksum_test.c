/* checksum_test.c — S3 additional checksums: published check values, chaining,
 * the table-driven CRC-64/NVME against its bitwise reference on seeded random input, and
 * CRC combining (FULL_OBJECT checksums of multipart uploads) against whole-buffer CRCs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cairn/checksum.h"
#include "cairn/err.h"

static const char check[] = "123456789";

static void expect_b64(cairn_ck_alg_t alg, const void *p, size_t n, const char *want)
{
    char out[CAIRN_CK_B64_MAX];
    size_t len = cairn_ck_compute(alg, p, n, out);
    assert_string_equal(out, want);
    assert_int_equal(len, strlen(want));
}

static void test_check_values(void **state)
{
    (void)state;
    expect_b64(CAIRN_CK_CRC32, check, 9, "y/Q5Jg==");
    expect_b64(CAIRN_CK_CRC32C, check, 9, "4waSgw==");
    expect_b64(CAIRN_CK_CRC64NVME, check, 9, "rosUhgp5mIg=");
    expect_b64(CAIRN_CK_SHA1, check, 9, "98O8HYCOBHMq32eZZczDTKeuNEE=");
    expect_b64(CAIRN_CK_SHA256, check, 9, "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=");
    expect_b64(CAIRN_CK_SHA256, "", 0, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    expect_b64(CAIRN_CK_CRC32, "", 0, "AAAAAA==");
    assert_int_equal(cairn_crc64nvme(0, check, 9), 0xae8b14860a799888ull);
    assert_int_equal(cairn_crc64nvme_base(0, check, 9), 0xae8b14860a799888ull);
}

/* Feeding the bytes in arbitrary pieces gives the one-shot result, for every algorithm. */
static void test_chaining(void **state)
{
    (void)state;
    uint8_t buf[4099];
    srand(7);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rand();
    for (int a = 1; a < CAIRN_CK_COUNT; a++) {
        char whole[CAIRN_CK_B64_MAX], parts[CAIRN_CK_B64_MAX];
        cairn_ck_compute((cairn_ck_alg_t)a, buf, sizeof buf, whole);
        cairn_ck_t c;
        cairn_ck_init(&c, (cairn_ck_alg_t)a);
        size_t off = 0;
        while (off < sizeof buf) {
            size_t n = (size_t)(rand() % 700);
            if (n > sizeof buf - off)
                n = sizeof buf - off;
            cairn_ck_update(&c, buf + off, n);
            off += n;
        }
        cairn_ck_final(&c, parts);
        assert_string_equal(whole, parts);
    }
}

static void test_crc64_vs_reference(void **state)
{
    (void)state;
    uint8_t buf[1000];
    srand(42);
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)(rand() % (int)sizeof buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)rand();
        uint64_t seed = round % 3 ? 0 : ((uint64_t)rand() << 32 | (uint64_t)rand());
        size_t off = (size_t)(rand() % 8);
        if (off > n)
            off = n;
        assert_int_equal(cairn_crc64nvme(seed, buf + off, n - off), cairn_crc64nvme_base(seed, buf + off, n - off));
    }
}

/* CRC(A||B) from CRC(A), CRC(B), |B| equals the CRC of the whole, for
 * seeded random splits (empty pieces included), and the base64 forms
 * round-trip. */
static void test_combine(void **state)
{
    (void)state;
    static const cairn_ck_alg_t crcs[] = {CAIRN_CK_CRC32, CAIRN_CK_CRC32C, CAIRN_CK_CRC64NVME};
    size_t n = 300000;
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    srand(7);
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)rand();
    for (size_t a = 0; a < 3; a++) {
        char whole[CAIRN_CK_B64_MAX], got[CAIRN_CK_B64_MAX];
        cairn_ck_compute(crcs[a], buf, n, whole);
        for (int round = 0; round < 40; round++) {
            /* up to four pieces, cut at random points (equal cuts give empty pieces) */
            size_t cut[5] = {0, (size_t)rand() % n, (size_t)rand() % n, round % 3 ? (size_t)rand() % n : 0, n};
            for (int i = 1; i < 4; i++)
                for (int j = i + 1; j < 4; j++)
                    if (cut[j] < cut[i]) {
                        size_t t = cut[i];
                        cut[i] = cut[j];
                        cut[j] = t;
                    }
            uint64_t acc = 0;
            for (int i = 0; i < 4; i++) {
                char b64[CAIRN_CK_B64_MAX];
                uint64_t part;
                size_t len = cairn_ck_compute(crcs[a], buf + cut[i], cut[i + 1] - cut[i], b64);
                assert_int_equal(cairn_ck_crc_decode(crcs[a], b64, len, &part), 0);
                acc = i == 0 ? part : cairn_crc_combine(crcs[a], acc, part, cut[i + 1] - cut[i]);
            }
            size_t len = cairn_ck_crc_encode(crcs[a], acc, got);
            assert_string_equal(got, whole);
            assert_int_equal(len, strlen(whole));
        }
    }
    free(buf);
    uint64_t v;
    assert_int_equal(cairn_ck_crc_decode(CAIRN_CK_CRC32, "y/Q5Jg==", 8, &v), 0);
    assert_int_equal(v, 0xcbf43926u);
    assert_int_equal(cairn_ck_crc_decode(CAIRN_CK_CRC64NVME, "y/Q5Jg==", 8, &v), CAIRN_EINVAL);
    assert_int_equal(cairn_ck_crc_decode(CAIRN_CK_SHA1, "y/Q5Jg==", 8, &v), CAIRN_EINVAL);
    assert_int_equal(cairn_ck_crc_decode(CAIRN_CK_CRC32, "y/Q5J!==", 8, &v), CAIRN_EINVAL);
}

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(cairn_ck_from_name("crc32c", 6), CAIRN_CK_CRC32C);
    assert_int_equal(cairn_ck_from_name("CRC32", 5), CAIRN_CK_CRC32);
    assert_int_equal(cairn_ck_from_name("CRC32CX", 7), CAIRN_CK_NONE);
    assert_int_equal(cairn_ck_from_name("crc64nvme", 9), CAIRN_CK_CRC64NVME);
    assert_int_equal(cairn_ck_from_header("x-amz-checksum-sha256", 21), CAIRN_CK_SHA256);
    assert_int_equal(cairn_ck_from_header("x-amz-checksum-md5", 18), CAIRN_CK_NONE);
    assert_string_equal(cairn_ck_header(CAIRN_CK_SHA1), "x-amz-checksum-sha1");
    assert_string_equal(cairn_ck_name(CAIRN_CK_CRC64NVME), "CRC64NVME");
    assert_string_equal(cairn_ck_name(CAIRN_CK_NONE), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_values),
        cmocka_unit_test(test_chaining),
        cmocka_unit_test(test_crc64_vs_reference),
        cmocka_unit_test(test_combine),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
