/* s3_bucket_test.c — virtual-hosted-style addressing (which Host names a
 * bucket, for which configured domains) and the bucket name rules. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "gw.h"

/* The bucket Host names under domains, "" for path style, NULL for an invalid name. */
static const char *vhost(const char *domains, const char *host)
{
    static char bucket[CAIRN_MAX_BUCKET_LEN + 1];
    int n = s3_vhost_bucket(domains, host, strlen(host), bucket);
    if (n < 0)
        return NULL;
    if (n == 0)
        return "";
    assert_int_equal((size_t)n, strlen(bucket));
    return bucket;
}

static void test_vhost(void **state)
{
    (void)state;
    const char *d = "s3.localhost,localhost";
    assert_string_equal(vhost(d, "photos.localhost:9000"), "photos");
    assert_string_equal(vhost(d, "photos.s3.localhost:9000"), "photos");
    assert_string_equal(vhost(d, "Photos.S3.LocalHost"), "Photos"); /* the name rules refuse it later */
    assert_string_equal(vhost(d, "my.dotted.bucket.localhost"), "my.dotted.bucket");
    assert_string_equal(vhost(d, "photos.localhost."), "photos");
    /* a domain itself: path style, also when another domain is its suffix */
    assert_string_equal(vhost(d, "s3.localhost:9000"), "");
    assert_string_equal(vhost(d, "localhost"), "");
    /* under no domain: path style */
    assert_string_equal(vhost(d, "127.0.0.1:9000"), "");
    assert_string_equal(vhost(d, "[::1]:9000"), "");
    assert_string_equal(vhost(d, "photos.example.com"), "");
    assert_string_equal(vhost(d, "notlocalhost"), "");
    assert_string_equal(vhost(d, ""), "");
    assert_string_equal(vhost("", "photos.localhost"), "");
    /* longer than a bucket name, or empty */
    char big[128], b63[64];
    memset(big, 'b', 64);
    strcpy(big + 64, ".localhost");
    assert_null(vhost(d, big));                   /* 64 characters */
    memcpy(b63, big, 63);
    b63[63] = '\0';
    assert_string_equal(vhost(d, big + 1), b63); /* 63: the longest bucket name */
    assert_null(vhost(d, ".localhost"));
    assert_string_equal(vhost("example.com,,", "b1.example.com"), "b1");
}

static void test_bucket_names(void **state)
{
    (void)state;
    static const char *good[] = {"abc", "my-bucket", "my.bucket.1", "123abc", NULL};
    static const char *bad[] = {"ab", "ABC", "-abc", "abc-", "a..b", "a.-b", "192.168.1.1", "xn--abc", "abc-s3alias",
                                "a_b", NULL};
    for (int i = 0; good[i]; i++)
        assert_true(s3_bucket_name_valid(good[i], strlen(good[i])));
    for (int i = 0; bad[i]; i++)
        assert_false(s3_bucket_name_valid(bad[i], strlen(bad[i])));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vhost),
        cmocka_unit_test(test_bucket_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
