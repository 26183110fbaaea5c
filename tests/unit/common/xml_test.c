/* xml_test.c — the S3 XML writer: exact output, escaping, control characters, invalid UTF-8. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/buf.h"
#include "cairn/xml.h"

#define FFFD "\xEF\xBF\xBD"

/* The buffer holds exactly want (want_len bytes). */
static void expect_buf(const cairn_buf_t *b, const char *want, size_t want_len)
{
    if (b->len != want_len || (want_len && memcmp(b->base, want, want_len) != 0))
        fail_msg("got (%zu bytes):  %.*s\nwant (%zu bytes): %.*s", b->len, (int)b->len, (const char *)b->base,
                 want_len, (int)want_len, want);
}

/* Escaping in (in_len bytes) gives exactly want (a literal: sizeof - 1 is its length). */
#define EXPECT_ESCAPE(in, want) expect_escape(in, sizeof(in) - 1, want, sizeof(want) - 1)
static void expect_escape(const char *in, size_t in_len, const char *want, size_t want_len)
{
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_xml_escape(&b, in, in_len);
    expect_buf(&b, want, want_len);
    cairn_buf_dispose(&b);
}

static void test_document(void **state)
{
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_xml_begin(&b);
    cairn_xml_open_ns(&b, "ListBucketResult", CAIRN_XML_S3_NS);
    cairn_xml_elem(&b, "Name", "photos", 6);
    cairn_xml_elem(&b, "Prefix", "", 0);
    cairn_xml_elemf(&b, "MaxKeys", "%d", 1000);
    cairn_xml_elem(&b, "IsTruncated", "false", 5);
    cairn_xml_open(&b, "Contents");
    cairn_xml_elem(&b, "Key", "a&b <c>.jpg", 11);
    cairn_xml_elemf(&b, "Size", "%" PRIu64, (uint64_t)5368709120ull);
    cairn_xml_elemf(&b, "ETag", "\"%s\"", "9b2cf535f27731c974343645a3985328");
    cairn_xml_close(&b, "Contents");
    cairn_xml_close(&b, "ListBucketResult");
    static const char want[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Name>photos</Name><Prefix></Prefix><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
        "<Contents><Key>a&amp;b &lt;c&gt;.jpg</Key><Size>5368709120</Size>"
        "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag></Contents>"
        "</ListBucketResult>";
    expect_buf(&b, want, sizeof want - 1);
    cairn_buf_dispose(&b);
}

static void test_error_document(void **state)
{
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_xml_begin(&b);
    cairn_xml_open(&b, "Error");
    cairn_xml_elem(&b, "Code", "NoSuchKey", 9);
    cairn_xml_elem(&b, "Message", "The specified key does not exist.", 33);
    cairn_xml_elem(&b, "Key", "it's \"here\"xyz", 11); /* len stops before "xyz" */
    cairn_xml_elemf(&b, "RequestId", "%016" PRIx64, (uint64_t)0xdeadbeefull);
    cairn_xml_close(&b, "Error");
    static const char want[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                               "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>"
                               "<Key>it&apos;s &quot;here&quot;</Key><RequestId>00000000deadbeef</RequestId></Error>";
    expect_buf(&b, want, sizeof want - 1);
    cairn_buf_dispose(&b);
}

static void test_elemf_escapes(void **state)
{
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_xml_elem(&b, "A", "x", 1); /* something before, so in-place formatting starts mid-buffer */
    cairn_xml_elemf(&b, "K", "%s&%d\x01%s", "a<b", 5, "\xC3");
    cairn_xml_elemf(&b, "E", "%s", "");
    static const char want[] = "<A>x</A><K>a&lt;b&amp;5&#x1;" FFFD "</K><E></E>";
    expect_buf(&b, want, sizeof want - 1);

    /* a formatted value much longer than the buffer so far */
    cairn_buf_reset(&b);
    char big[5000];
    memset(big, '<', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cairn_xml_elemf(&b, "B", "%s", big);
    assert_int_equal(b.len, 3 + 4999 * 4 + 4);
    assert_memory_equal(b.base, "<B>&lt;&lt;", 11);
    assert_memory_equal(b.base + b.len - 8, "&lt;</B>", 8);
    cairn_buf_dispose(&b);
}

static void test_escape_specials(void **state)
{
    EXPECT_ESCAPE("", "");
    EXPECT_ESCAPE("plain text 123", "plain text 123");
    EXPECT_ESCAPE("&", "&amp;");
    EXPECT_ESCAPE("<>", "&lt;&gt;");
    EXPECT_ESCAPE("\"'", "&quot;&apos;");
    EXPECT_ESCAPE("a&b<c>d\"e'f", "a&amp;b&lt;c&gt;d&quot;e&apos;f");
    EXPECT_ESCAPE("&amp;", "&amp;amp;");
    EXPECT_ESCAPE("]]>", "]]&gt;");
    EXPECT_ESCAPE("~!@#$%^*()_+`-=[]{}|\\;:,./? \x7F", "~!@#$%^*()_+`-=[]{}|\\;:,./? \x7F");
}

static void test_escape_controls(void **state)
{
    EXPECT_ESCAPE("\t\n", "\t\n");
    EXPECT_ESCAPE("\r", "&#xD;");
    EXPECT_ESCAPE("a\x01z", "a&#x1;z");
    EXPECT_ESCAPE("\x1F\x1E", "&#x1F;&#x1E;");
    EXPECT_ESCAPE("\x08\x0B\x0C", "&#x8;&#xB;&#xC;");
    EXPECT_ESCAPE("a\0b", "a&#x0;b");
    /* every control byte on its own */
    for (int c = 0; c < 0x20; c++) {
        char in = (char)c, want[16];
        if (c == '\t' || c == '\n')
            snprintf(want, sizeof want, "%c", c);
        else
            snprintf(want, sizeof want, "&#x%X;", c);
        expect_escape(&in, 1, want, strlen(want));
    }
}

static void test_escape_valid_utf8(void **state)
{
    EXPECT_ESCAPE("caf\xC3\xA9", "caf\xC3\xA9");                         /* U+00E9 */
    EXPECT_ESCAPE("\xC2\x80\xC2\x9F", "\xC2\x80\xC2\x9F");               /* C1 controls are XML characters */
    EXPECT_ESCAPE("\xE2\x82\xAC", "\xE2\x82\xAC");                       /* U+20AC */
    EXPECT_ESCAPE("\xE0\xA0\x80", "\xE0\xA0\x80");                       /* U+0800, smallest 3-byte */
    EXPECT_ESCAPE("\xED\x9F\xBF\xEE\x80\x80", "\xED\x9F\xBF\xEE\x80\x80"); /* around the surrogates */
    EXPECT_ESCAPE(FFFD, FFFD);
    EXPECT_ESCAPE("\xF0\x90\x80\x80", "\xF0\x90\x80\x80");               /* U+10000 */
    EXPECT_ESCAPE("\xF0\x9D\x84\x9E", "\xF0\x9D\x84\x9E");               /* U+1D11E */
    EXPECT_ESCAPE("\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF");               /* U+10FFFF */
    EXPECT_ESCAPE("\xE6\x97\xA5<\xE6\x9C\xAC>", "\xE6\x97\xA5&lt;\xE6\x9C\xAC&gt;");
    /* not XML characters, written as references like the controls */
    EXPECT_ESCAPE("\xEF\xBF\xBE", "&#xFFFE;");
    EXPECT_ESCAPE("a\xEF\xBF\xBFz", "a&#xFFFF;z");
}

static void test_escape_invalid_utf8(void **state)
{
    EXPECT_ESCAPE("\x80", FFFD);                                  /* stray continuation */
    EXPECT_ESCAPE("a\xBF" "b", "a" FFFD "b");
    EXPECT_ESCAPE("\xC0\x80", FFFD FFFD);                         /* overlong NUL */
    EXPECT_ESCAPE("\xC1\xBF", FFFD FFFD);                         /* overlong */
    EXPECT_ESCAPE("\xE0\x80\x80", FFFD FFFD FFFD);                /* overlong 3-byte */
    EXPECT_ESCAPE("\xE0\x9F\xBF", FFFD FFFD FFFD);
    EXPECT_ESCAPE("\xF0\x8F\xBF\xBF", FFFD FFFD FFFD FFFD);       /* overlong 4-byte */
    EXPECT_ESCAPE("\xED\xA0\x80", FFFD FFFD FFFD);                /* surrogate U+D800 */
    EXPECT_ESCAPE("\xED\xBF\xBF", FFFD FFFD FFFD);                /* surrogate U+DFFF */
    EXPECT_ESCAPE("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD);       /* U+110000 */
    EXPECT_ESCAPE("\xF5\x80\x80\x80", FFFD FFFD FFFD FFFD);
    EXPECT_ESCAPE("\xFE\xFF", FFFD FFFD);
    EXPECT_ESCAPE("\xC3", FFFD);                                  /* truncated at the end */
    EXPECT_ESCAPE("\xE2\x82", FFFD FFFD);
    EXPECT_ESCAPE("\xF0\x9D\x84", FFFD FFFD FFFD);
    EXPECT_ESCAPE("\xE2\x82" "A", FFFD FFFD "A");                 /* truncated by an ASCII byte */
    EXPECT_ESCAPE("\xE2<\xAC", FFFD "&lt;" FFFD);
    EXPECT_ESCAPE("\xC3\xC3\xA9", FFFD "\xC3\xA9");               /* a bad lead, then a good pair */
    /* a valid sequence cut short by the length, not by a NUL */
    expect_escape("\xC3\xA9", 1, FFFD, 3);
}

/*
 * A slow reference escaper, written from the Unicode table of well-formed
 * byte sequences (Table 3-7) rather than by decoding, to compare with the
 * real one on random input.
 */
static const struct {
    uint8_t lo[4], hi[4];
    int len;
} wellformed[] = {
    {{0xC2, 0x80}, {0xDF, 0xBF}, 2},
    {{0xE0, 0xA0, 0x80}, {0xE0, 0xBF, 0xBF}, 3},
    {{0xE1, 0x80, 0x80}, {0xEC, 0xBF, 0xBF}, 3},
    {{0xED, 0x80, 0x80}, {0xED, 0x9F, 0xBF}, 3},
    {{0xEE, 0x80, 0x80}, {0xEF, 0xBF, 0xBF}, 3},
    {{0xF0, 0x90, 0x80, 0x80}, {0xF0, 0xBF, 0xBF, 0xBF}, 4},
    {{0xF1, 0x80, 0x80, 0x80}, {0xF3, 0xBF, 0xBF, 0xBF}, 4},
    {{0xF4, 0x80, 0x80, 0x80}, {0xF4, 0x8F, 0xBF, 0xBF}, 4},
};

static void ref_escape(cairn_buf_t *b, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            if (c == '&') cairn_buf_appendf(b, "&amp;");
            else if (c == '<') cairn_buf_appendf(b, "&lt;");
            else if (c == '>') cairn_buf_appendf(b, "&gt;");
            else if (c == '"') cairn_buf_appendf(b, "&quot;");
            else if (c == '\'') cairn_buf_appendf(b, "&apos;");
            else if (c < 0x20 && c != '\t' && c != '\n') cairn_buf_appendf(b, "&#x%X;", c);
            else cairn_buf_append(b, &c, 1);
            i++;
            continue;
        }
        int len = 0;
        for (size_t r = 0; r < sizeof wellformed / sizeof wellformed[0] && !len; r++) {
            int l = wellformed[r].len, ok = i + (size_t)l <= n;
            for (int j = 0; ok && j < l; j++)
                ok = p[i + j] >= wellformed[r].lo[j] && p[i + j] <= wellformed[r].hi[j];
            if (ok)
                len = l;
        }
        if (len == 0) {
            cairn_buf_append(b, FFFD, 3);
            i++;
        } else if (len == 3 && p[i] == 0xEF && p[i + 1] == 0xBF && p[i + 2] >= 0xBE) {
            cairn_buf_appendf(b, "&#xFFF%c;", p[i + 2] == 0xBE ? 'E' : 'F');
            i += 3;
        } else {
            cairn_buf_append(b, p + i, (size_t)len);
            i += (size_t)len;
        }
    }
}

static void test_escape_random_vs_reference(void **state)
{
    /* bytes that matter most: specials, controls, lead and continuation bytes */
    static const uint8_t interesting[] = {'a', 'Z', ' ', '&', '<', '>', '"', '\'', 0, 1, '\t', '\n', '\r', 0x1F,
                                          0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                                          0xE0, 0xED, 0xEE, 0xEF, 0xBE, 0xF0, 0xF4, 0xF5, 0xFF};
    srandom(12345);
    cairn_buf_t got, want;
    cairn_buf_init(&got);
    cairn_buf_init(&want);
    uint8_t in[64];
    for (int iter = 0; iter < 200000; iter++) {
        size_t n = (size_t)(random() % sizeof in);
        for (size_t i = 0; i < n; i++)
            in[i] = random() % 2 ? interesting[random() % sizeof interesting] : (uint8_t)random();
        cairn_buf_reset(&got);
        cairn_buf_reset(&want);
        cairn_xml_escape(&got, (const char *)in, n);
        ref_escape(&want, in, n);
        if (got.len != want.len || memcmp(got.base, want.base, got.len) != 0) {
            char hex[200] = "";
            for (size_t i = 0; i < n; i++)
                snprintf(hex + 3 * i, sizeof hex - 3 * i, "%02X ", in[i]);
            fail_msg("iteration %d, input %s", iter, hex);
        }
    }
    cairn_buf_dispose(&got);
    cairn_buf_dispose(&want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_document),          cmocka_unit_test(test_error_document),
        cmocka_unit_test(test_elemf_escapes),     cmocka_unit_test(test_escape_specials),
        cmocka_unit_test(test_escape_controls),   cmocka_unit_test(test_escape_valid_utf8),
        cmocka_unit_test(test_escape_invalid_utf8), cmocka_unit_test(test_escape_random_vs_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
