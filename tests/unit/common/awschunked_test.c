/* awschunked_test.c — aws-chunked decoding: the AWS documentation's signed
 * example, trailers (signed and unsigned), tampering, malformed framing, and
 * seeded random bodies encoded here and decoded in place. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/awschunked.h"
#include "cairn/buf.h"
#include "cairn/err.h"

#define AWS_SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define SEED_SIG "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"

static void example_auth(cairn_sigv4_auth_t *auth, uint8_t key[32])
{
    memset(auth, 0, sizeof *auth);
    strcpy(auth->date, "20130524");
    strcpy(auth->region, "us-east-1");
    strcpy(auth->service, "s3");
    strcpy(auth->scope, "20130524/us-east-1/s3/aws4_request");
    strcpy(auth->amz_date, "20130524T000000Z");
    strcpy(auth->signature, SEED_SIG);
    cairn_sigv4_signing_key(AWS_SK, auth, key);
}

/* Encoder used by the tests: chunks of the given sizes (the last size list
 * entry repeats), signed when key != NULL, with optional trailers. */
static void encode(cairn_buf_t *out, const uint8_t *data, size_t len, size_t chunk, const uint8_t *key,
                   const cairn_sigv4_auth_t *auth, const char *const *trailers, size_t ntrailers)
{
    char prev[65];
    if (key)
        memcpy(prev, auth->signature, 65);
    size_t off = 0;
    for (;;) {
        size_t n = len - off < chunk ? len - off : chunk;
        if (key) {
            uint8_t sha[32];
            char sig[65];
            EVP_Digest(data + off, n, sha, NULL, EVP_sha256(), NULL);
            cairn_sigv4_chunk_signature(key, auth, prev, sha, sig);
            cairn_buf_appendf(out, "%zx;chunk-signature=%s\r\n", n, sig);
            memcpy(prev, sig, 65);
        } else {
            cairn_buf_appendf(out, "%zx\r\n", n);
        }
        if (n == 0)
            break;
        cairn_buf_append(out, data + off, n);
        cairn_buf_append(out, "\r\n", 2);
        off += n;
    }
    if (trailers) {
        cairn_buf_t canon;
        cairn_buf_init(&canon);
        for (size_t i = 0; i < ntrailers; i++) {
            cairn_buf_appendf(out, "%s\r\n", trailers[i]);
            cairn_buf_appendf(&canon, "%s\n", trailers[i]);
        }
        if (key) {
            uint8_t sha[32];
            char sig[65];
            EVP_Digest(canon.base, canon.len, sha, NULL, EVP_sha256(), NULL);
            cairn_sigv4_trailer_signature(key, auth, prev, sha, sig);
            cairn_buf_appendf(out, "x-amz-trailer-signature:%s\r\n", sig);
        }
        cairn_buf_dispose(&canon);
    }
    cairn_buf_append(out, "\r\n", 2);
}

/* The example of "Signature Calculations for the Authorization Header:
 * Transferring Payload in Multiple Chunks" (AWS S3 documentation). */
static void test_aws_example(void **state)
{
    (void)state;
    cairn_sigv4_auth_t auth;
    uint8_t key[32];
    example_auth(&auth, key);
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_buf_appendf(&b, "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
    memset(cairn_buf_reserve(&b, 65536), 'a', 65536);
    b.len += 65536;
    cairn_buf_appendf(&b, "\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
    memset(cairn_buf_reserve(&b, 1024), 'a', 1024);
    b.len += 1024;
    cairn_buf_appendf(&b, "\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");

    cairn_awschunked_t st = {.signed_chunks = 1, .signing_key = key, .auth = &auth};
    size_t n;
    assert_int_equal(cairn_awschunked_decode(&st, b.base, b.len, &n), 0);
    assert_int_equal(n, 66560);
    assert_int_equal(st.nchunks, 2);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(b.base[i], 'a');
    cairn_buf_dispose(&b);
}

static void test_unsigned_trailer(void **state)
{
    (void)state;
    const char *data = "hello world, this is a body";
    const char *tr[] = {"x-amz-checksum-crc32:DUoRhQ=="};
    cairn_buf_t b;
    cairn_buf_init(&b);
    encode(&b, (const uint8_t *)data, strlen(data), 5, NULL, NULL, tr, 1);
    cairn_awschunked_t st = {.trailer = 1};
    size_t n;
    assert_int_equal(cairn_awschunked_decode(&st, b.base, b.len, &n), 0);
    assert_int_equal(n, strlen(data));
    assert_memory_equal(b.base, data, n);
    assert_int_equal(st.ntrailers, 1);
    assert_string_equal(cairn_awschunked_trailer(&st, "x-amz-checksum-crc32"), "DUoRhQ==");
    assert_null(cairn_awschunked_trailer(&st, "x-amz-checksum-crc32c"));
    cairn_buf_dispose(&b);

    /* without the final CRLF (tolerated), and with blanks around the value */
    cairn_buf_init(&b);
    cairn_buf_appendf(&b, "3\r\nabc\r\n0\r\nX-Amz-Checksum-CRC32C: 4waSgw== ");
    memset(&st, 0, sizeof st);
    st.trailer = 1;
    assert_int_equal(cairn_awschunked_decode(&st, b.base, b.len, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(cairn_awschunked_trailer(&st, "x-amz-checksum-crc32c"), "4waSgw==");
    cairn_buf_dispose(&b);
}

static void test_signed_trailer(void **state)
{
    (void)state;
    cairn_sigv4_auth_t auth;
    uint8_t key[32];
    example_auth(&auth, key);
    uint8_t data[20000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7);
    const char *tr[] = {"x-amz-checksum-sha256:abc="};
    cairn_buf_t b;
    cairn_buf_init(&b);
    encode(&b, data, sizeof data, 8192, key, &auth, tr, 1);
    cairn_buf_t copy;
    cairn_buf_init(&copy);
    cairn_buf_append(&copy, b.base, b.len);

    cairn_awschunked_t st = {.signed_chunks = 1, .trailer = 1, .signing_key = key, .auth = &auth};
    size_t n;
    assert_int_equal(cairn_awschunked_decode(&st, b.base, b.len, &n), 0);
    assert_int_equal(n, sizeof data);
    assert_memory_equal(b.base, data, n);
    assert_int_equal(st.nchunks, 3);
    assert_string_equal(cairn_awschunked_trailer(&st, "x-amz-checksum-sha256"), "abc=");

    /* a changed trailer value breaks the trailer signature */
    b.len = 0;
    cairn_buf_append(&b, copy.base, copy.len);
    uint8_t *t = memmem(b.base, b.len, "abc=", 4);
    assert_non_null(t);
    t[0] = 'x';
    assert_int_equal(cairn_awschunked_decode(&st, b.base, b.len, &n), CAIRN_SIGV4_ESIGNATURE);

    /* a missing trailer signature */
    b.len = 0;
    cairn_buf_append(&b, copy.base, copy.len);
    t = memmem(b.base, b.len, "x-amz-trailer-signature", 23);
    b.len = (size_t)(t - b.base);
    cairn_buf_append(&b, "\r\n", 2);
    assert_int_equal(cairn_awschunked_decode(&st, b.base, b.len, &n), CAIRN_EPROTO);
    cairn_buf_dispose(&b);
    cairn_buf_dispose(&copy);
}

static void test_tampering(void **state)
{
    (void)state;
    cairn_sigv4_auth_t auth;
    uint8_t key[32];
    example_auth(&auth, key);
    uint8_t data[3000];
    memset(data, 'z', sizeof data);
    cairn_buf_t b, orig;
    cairn_buf_init(&orig);
    encode(&orig, data, sizeof data, 1000, key, &auth, NULL, 0);
    cairn_buf_init(&b);
    size_t n;
    cairn_awschunked_t st = {.signed_chunks = 1, .signing_key = key, .auth = &auth};

    /* one flipped data byte in each position class: first, middle, last chunk */
    size_t offs[] = {100, 1200, 2500};
    for (size_t i = 0; i < 3; i++) {
        b.len = 0;
        cairn_buf_append(&b, orig.base, orig.len);
        /* the offs[i]-th 'z' of the encoding is data (headers hold no 'z') */
        size_t seen = 0;
        for (size_t p = 0; p < b.len; p++) {
            if (b.base[p] == 'z' && seen++ == offs[i]) {
                b.base[p] = 'y';
                break;
            }
        }
        assert_int_equal(cairn_awschunked_decode(&st, b.base, b.len, &n), CAIRN_SIGV4_ESIGNATURE);
    }
    /* a different seed signature */
    cairn_sigv4_auth_t other = auth;
    other.signature[0] = other.signature[0] == '0' ? '1' : '0';
    st.auth = &other;
    b.len = 0;
    cairn_buf_append(&b, orig.base, orig.len);
    assert_int_equal(cairn_awschunked_decode(&st, b.base, b.len, &n), CAIRN_SIGV4_ESIGNATURE);
    /* a truncated body (the final chunk missing) */
    st.auth = &auth;
    b.len = 0;
    cairn_buf_append(&b, orig.base, orig.len);
    uint8_t *last = memmem(b.base, b.len, "\r\n0;chunk-signature", 19);
    assert_non_null(last);
    b.len = (size_t)(last - b.base) + 2;
    assert_int_equal(cairn_awschunked_decode(&st, b.base, b.len, &n), CAIRN_EPROTO);
    /* unsigned chunks where signed ones are expected */
    b.len = 0;
    cairn_buf_appendf(&b, "3\r\nabc\r\n0\r\n\r\n");
    assert_int_equal(cairn_awschunked_decode(&st, b.base, b.len, &n), CAIRN_EPROTO);
    cairn_buf_dispose(&b);
    cairn_buf_dispose(&orig);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",                         /* nothing */
        "3\r\nab\r\n0\r\n\r\n",     /* short data */
        "3\r\nabcd\r\n0\r\n\r\n",   /* data longer than announced */
        "3\nabc\r\n0\r\n\r\n",      /* LF only */
        "x\r\nabc\r\n0\r\n\r\n",    /* bad size */
        "3;foo=bar\r\nabc\r\n0\r\n\r\n", /* unknown extension */
        "3\r\nabc\r\n0\r\n\r\nextra", /* bytes after the end */
        "3\r\nabc\r\n",             /* no final chunk */
        "11111111111111111\r\n",    /* 17 hex digits */
        "ffffffffffffffff\r\nabc\r\n0\r\n\r\n", /* huge size */
        "3;chunk-signature=00\r\nabc\r\n0\r\n\r\n", /* signature in an unsigned body */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cairn_buf_t b;
        cairn_buf_init(&b);
        cairn_buf_append(&b, bad[i], strlen(bad[i]));
        cairn_awschunked_t st = {0};
        size_t n;
        int rc = cairn_awschunked_decode(&st, b.base ? b.base : (uint8_t *)"", b.len, &n);
        if (rc != CAIRN_EPROTO)
            fail_msg("case %zu (%s): rc %d", i, bad[i], rc);
        assert_non_null(st.reason);
        cairn_buf_dispose(&b);
    }
    /* a trailer section where none was announced */
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_buf_appendf(&b, "3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n");
    cairn_awschunked_t st = {0};
    size_t n;
    assert_int_equal(cairn_awschunked_decode(&st, b.base, b.len, &n), CAIRN_EPROTO);
    /* too many trailers */
    b.len = 0;
    cairn_buf_appendf(&b, "0\r\na:1\r\nb:2\r\nc:3\r\nd:4\r\ne:5\r\n\r\n");
    st.trailer = 1;
    assert_int_equal(cairn_awschunked_decode(&st, b.base, b.len, &n), CAIRN_ETOOBIG);
    /* empty body with a trailer: fine */
    b.len = 0;
    cairn_buf_appendf(&b, "0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n");
    assert_int_equal(cairn_awschunked_decode(&st, b.base, b.len, &n), 0);
    assert_int_equal(n, 0);
    cairn_buf_dispose(&b);
}

/* Seeded random bodies and chunk sizes, signed and not, decoded in place. */
static void test_random_round_trip(void **state)
{
    (void)state;
    cairn_sigv4_auth_t auth;
    uint8_t key[32];
    example_auth(&auth, key);
    srand(1234);
    for (int round = 0; round < 60; round++) {
        size_t len = (size_t)(rand() % 70000);
        size_t chunk = 1 + (size_t)(rand() % 9000);
        uint8_t *data = malloc(len + 1);
        for (size_t i = 0; i < len; i++)
            data[i] = (uint8_t)rand();
        int sign = round % 2, trailer = round % 3 == 0;
        const char *tr[] = {"x-amz-checksum-crc32c:AAAAAA=="};
        cairn_buf_t b;
        cairn_buf_init(&b);
        encode(&b, data, len, chunk, sign ? key : NULL, &auth, trailer ? tr : NULL, 1);
        cairn_awschunked_t st = {.signed_chunks = sign, .trailer = trailer, .signing_key = key, .auth = &auth};
        size_t n;
        assert_int_equal(cairn_awschunked_decode(&st, b.base, b.len, &n), 0);
        assert_int_equal(n, len);
        assert_memory_equal(b.base, data, len);
        assert_int_equal(st.ntrailers, trailer ? 1 : 0);
        cairn_buf_dispose(&b);
        free(data);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_example),    cmocka_unit_test(test_unsigned_trailer),
        cmocka_unit_test(test_signed_trailer), cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_malformed),      cmocka_unit_test(test_random_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
