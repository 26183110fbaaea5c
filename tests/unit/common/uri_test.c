/* uri_test.c — percent-coding and query access, against hand-checked cases and a slow reference. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/uri.h"

static void decode_ok(const char *in, int plus, const char *want, size_t wantlen)
{
    char out[256];
    size_t n = 12345;
    assert_int_equal(cairn_uri_decode(in, strlen(in), out, &n, plus), 0);
    assert_int_equal(n, wantlen);
    assert_memory_equal(out, want, wantlen);
}

static void test_decode(void **state)
{
    (void)state;
    decode_ok("", 0, "", 0);
    decode_ok("abc", 0, "abc", 3);
    decode_ok("a%20b", 0, "a b", 3);
    decode_ok("%2f%2F", 0, "//", 2);
    decode_ok("a+b", 0, "a+b", 3);
    decode_ok("a+b", 1, "a b", 3);
    decode_ok("%2B", 1, "+", 1);
    decode_ok("%00x", 0, "\0x", 2);
    decode_ok("%e2%82%AC", 0, "\xe2\x82\xac", 3);
}

static void test_decode_bad(void **state)
{
    static const char *bad[] = {"%", "%4", "a%", "%G1", "%1G", "%%41", "ab%2"};
    char out[16];
    size_t n;
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cairn_uri_decode(bad[i], strlen(bad[i]), out, &n, 0), CAIRN_EINVAL);
}

static void test_decode_in_place(void **state)
{
    char buf[] = "x%41%42+y";
    size_t n;
    (void)state;
    assert_int_equal(cairn_uri_decode(buf, strlen(buf), buf, &n, 1), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "xAB y", 5);
}

static void test_encode(void **state)
{
    char out[64];
    (void)state;
    assert_int_equal(cairn_uri_encode("AZaz09-._~", 10, out, 0), 10);
    assert_string_equal(out, "AZaz09-._~");
    cairn_uri_encode("a b/c+d$", 8, out, 1);
    assert_string_equal(out, "a%20b/c%2Bd%24");
    cairn_uri_encode("a b/c+d$", 8, out, 0);
    assert_string_equal(out, "a%20b%2Fc%2Bd%24");
    assert_int_equal(cairn_uri_encode("\xff\x00*", 3, out, 0), 9);
    assert_string_equal(out, "%FF%00%2A");
    assert_int_equal(cairn_uri_encode("", 0, out, 0), 0);
    assert_string_equal(out, "");
}

/* Reference: the obvious definition, one byte at a time with snprintf. */
static size_t encode_ref(const unsigned char *s, size_t len, char *out, int keep_slash)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", c) && c != 0)
            out[o++] = (char)c;
        else if (c == '/' && keep_slash)
            out[o++] = '/';
        else
            o += (size_t)sprintf(out + o, "%%%02X", c);
    }
    out[o] = '\0';
    return o;
}

static void test_encode_decode_random(void **state)
{
    unsigned seed = 12345;
    (void)state;
    for (int iter = 0; iter < 2000; iter++) {
        unsigned char in[64];
        char enc[3 * 64 + 1], ref[3 * 64 + 1], dec[3 * 64];
        size_t len = (size_t)(rand_r(&seed) % 64), n;
        for (size_t i = 0; i < len; i++)
            in[i] = (unsigned char)(rand_r(&seed) % 4 == 0 ? "/ +%"[rand_r(&seed) % 4] : rand_r(&seed) % 256);
        int keep = iter & 1;
        size_t elen = cairn_uri_encode((const char *)in, len, enc, keep);
        assert_int_equal(elen, encode_ref(in, len, ref, keep));
        assert_string_equal(enc, ref);
        assert_int_equal(cairn_uri_decode(enc, elen, dec, &n, 0), 0);
        assert_int_equal(n, len);
        assert_memory_equal(dec, in, len);
        /* decoding with '+' as space is the same here: encoded text never holds '+' */
        assert_int_equal(cairn_uri_decode(enc, elen, dec, &n, 1), 0);
        assert_memory_equal(dec, in, len);
    }
}

static void test_query_parse(void **state)
{
    const char *q = "a=1&&b&c=&=x&d=e=f&";
    cairn_query_param_t p[8];
    (void)state;
    assert_int_equal(cairn_query_count(q, strlen(q)), 5);
    assert_int_equal(cairn_query_parse(q, strlen(q), p, 8), 5);
    assert_int_equal(p[0].name_len, 1);
    assert_memory_equal(p[0].name, "a", 1);
    assert_int_equal(p[0].value_len, 1);
    assert_memory_equal(p[0].value, "1", 1);
    assert_int_equal(p[0].has_eq, 1);
    assert_memory_equal(p[1].name, "b", 1);
    assert_int_equal(p[1].value_len, 0);
    assert_int_equal(p[1].has_eq, 0);
    assert_memory_equal(p[2].name, "c", 1);
    assert_int_equal(p[2].value_len, 0);
    assert_int_equal(p[2].has_eq, 1);
    assert_int_equal(p[3].name_len, 0);
    assert_memory_equal(p[3].value, "x", 1);
    assert_memory_equal(p[4].name, "d", 1);
    assert_int_equal(p[4].value_len, 3);
    assert_memory_equal(p[4].value, "e=f", 3);

    /* stops at max */
    assert_int_equal(cairn_query_parse(q, strlen(q), p, 2), 2);
    assert_int_equal(cairn_query_parse(q, strlen(q), p, 0), 0);
    assert_int_equal(cairn_query_count("", 0), 0);
    assert_int_equal(cairn_query_count("&&&", 3), 0);
    /* a range that is not NUL-terminated: only the first 3 bytes */
    assert_int_equal(cairn_query_parse("x=1&y=2", 3, p, 8), 1);
    assert_int_equal(p[0].value_len, 1);
}

static void test_query_get(void **state)
{
    const char *q = "prefix=a%2Fb+c&max-keys=2&uploads&X%2DAmz-Date=20130524T000000Z&bad=%ZZ&e=";
    char out[32];
    size_t n;
    (void)state;
    assert_int_equal(cairn_query_get(q, strlen(q), "prefix", out, sizeof(out), &n), 0);
    assert_string_equal(out, "a/b c");
    assert_int_equal(n, 5);
    assert_int_equal(cairn_query_get(q, strlen(q), "max-keys", out, sizeof(out), NULL), 0);
    assert_string_equal(out, "2");
    assert_int_equal(cairn_query_get(q, strlen(q), "uploads", out, sizeof(out), &n), 0);
    assert_string_equal(out, "");
    assert_int_equal(cairn_query_get(q, strlen(q), "e", out, sizeof(out), &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(cairn_query_get(q, strlen(q), "X-Amz-Date", out, sizeof(out), &n), 0);
    assert_string_equal(out, "20130524T000000Z");
    assert_int_equal(cairn_query_get(q, strlen(q), "missing", out, sizeof(out), &n), CAIRN_ENOTFOUND);
    assert_int_equal(cairn_query_get(q, strlen(q), "prefi", out, sizeof(out), &n), CAIRN_ENOTFOUND);
    assert_int_equal(cairn_query_get(q, strlen(q), "Prefix", out, sizeof(out), &n), CAIRN_ENOTFOUND);
    assert_int_equal(cairn_query_get(q, strlen(q), "bad", out, sizeof(out), &n), CAIRN_EINVAL);
    /* "a/b c" needs 6 bytes with its NUL; the raw value is 9 long */
    assert_int_equal(cairn_query_get(q, strlen(q), "prefix", out, 6, &n), 0);
    assert_string_equal(out, "a/b c");
    assert_int_equal(cairn_query_get(q, strlen(q), "prefix", out, 5, &n), CAIRN_ETOOBIG);
    assert_int_equal(cairn_query_get(q, strlen(q), "max-keys", out, 1, &n), CAIRN_ETOOBIG);
    assert_int_equal(cairn_query_get(q, strlen(q), "uploads", out, 1, &n), 0);
    assert_int_equal(cairn_query_get("", 0, "a", out, sizeof(out), &n), CAIRN_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_decode_bad),
        cmocka_unit_test(test_decode_in_place),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_encode_decode_random),
        cmocka_unit_test(test_query_parse),
        cmocka_unit_test(test_query_get),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
