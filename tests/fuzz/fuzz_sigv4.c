/*
 * fuzz_sigv4.c — libFuzzer driver for the SigV4 parser/verifier and the URI helpers.
 *
 * Input is read as raw HTTP request text: "METHOD target ...\n" then
 * "name: value" lines (names lower-cased here, as h2o does; lines without a
 * ':' are skipped). The clock is fixed at 2013-05-24T00:00:00Z so that the
 * AWS example requests, used as seeds, pass the time checks and reach the
 * signature computation.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icommon/include \
 *          tests/fuzz/fuzz_sigv4.c common/src/sigv4.c common/src/uri.c common/src/err.c -lcrypto
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/sigv4.h"
#include "cairn/uri.h"

#define MAX_HEADERS 64

static void fuzz_uri(const char *s, size_t len)
{
    char *out = malloc(3 * len + 1);
    size_t n;
    if (cairn_uri_decode(s, len, out, &n, len & 1) == 0 && n > len)
        abort();
    size_t e = cairn_uri_encode(s, len, out, 1);
    if (e > 3 * len || out[e] != '\0')
        abort();
    char *dec = malloc(e + 1);
    if (cairn_uri_decode(out, e, dec, &n, 0) != 0 || n != len || memcmp(dec, s, len) != 0)
        abort(); /* encode then decode must give the input back */
    free(dec);

    cairn_query_param_t p[16];
    size_t cnt = cairn_query_parse(s, len, p, 16), total = cairn_query_count(s, len);
    if (cnt > 16 || cnt > total || (total <= 16 && cnt != total))
        abort();
    char v[32];
    int rc = cairn_query_get(s, len, "X-Amz-Date", v, sizeof(v), &n);
    if (rc == 0 && (n >= sizeof(v) || v[n] != '\0'))
        abort();
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    cairn_sigv4_header_t h[MAX_HEADERS];
    cairn_sigv4_request_t rq;
    size_t nh = 0;

    memcpy(buf, data, size);
    buf[size] = '\0';
    fuzz_uri(buf, size);

    memset(&rq, 0, sizeof(rq));
    rq.now = 1369353600;
    rq.require_signed_amz = size & 1;

    char *end = buf + size, *p = buf;
    char *eol = memchr(p, '\n', (size_t)(end - p));
    char *line_end = eol ? eol : end;
    char *sp1 = memchr(p, ' ', (size_t)(line_end - p));
    if (sp1 == NULL)
        goto out;
    char *target = sp1 + 1;
    char *sp2 = memchr(target, ' ', (size_t)(line_end - target));
    char *tend = sp2 ? sp2 : line_end;
    char *qm = memchr(target, '?', (size_t)(tend - target));
    rq.method = p;
    rq.method_len = (size_t)(sp1 - p);
    rq.raw_path = target;
    rq.raw_path_len = (size_t)((qm ? qm : tend) - target);
    if (qm != NULL) {
        rq.raw_query = qm + 1;
        rq.raw_query_len = (size_t)(tend - qm - 1);
    }
    p = eol ? eol + 1 : end;
    while (p < end && nh < MAX_HEADERS) {
        eol = memchr(p, '\n', (size_t)(end - p));
        line_end = eol ? eol : end;
        char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon != NULL) {
            for (char *c = p; c < colon; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c += 32;
            char *v = colon + 1;
            while (v < line_end && *v == ' ')
                v++;
            size_t vlen = (size_t)(line_end - v);
            if (vlen > 0 && v[vlen - 1] == '\r')
                vlen--;
            h[nh].name = p;
            h[nh].name_len = (size_t)(colon - p);
            h[nh].value = v;
            h[nh].value_len = vlen;
            nh++;
        }
        p = eol ? eol + 1 : end;
    }
    rq.headers = h;
    rq.nheaders = nh;
    if (size > 64)
        rq.body_sha256_hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b856";

    cairn_sigv4_auth_t auth;
    cairn_sigv4_result_t res;
    const char *reason = NULL;
    int rc = cairn_sigv4_parse(&rq, &auth);
    if (rc != 0) {
        if (rc != CAIRN_ENOTFOUND && auth.reason == NULL)
            abort();
        goto out;
    }
    rc = cairn_sigv4_verify(&rq, &auth, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &res, &reason);
    if (rc != 0 && reason == NULL)
        abort();
    char *creq, *sts;
    if (cairn_sigv4_canonical_request(&rq, &auth, &creq, &sts) == 0) {
        free(creq);
        free(sts);
    }
    uint8_t sha[32] = {0};
    (void)cairn_sigv4_payload_check(&auth, sha);
    (void)cairn_sigv4_s3_error(rc, NULL, NULL);
out:
    free(buf);
    return 0;
}
