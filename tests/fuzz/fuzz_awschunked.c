/*
 * fuzz_awschunked.c — libFuzzer driver for the aws-chunked decoder and the
 * XML-free record decoders that read multipart state (cairn/meta_mpu.h).
 *
 * Input: byte 0 selects the mode (bit 0: signed chunks, bit 1: trailers,
 * bit 2: also feed the rest to the record decoders); the rest is the body.
 * Signed mode uses a fixed key and seed signature, so the decoder runs its
 * whole signature path (and fails the check on anything not made with them).
 * Checked: no crash or sanitizer report, the decoded length never exceeds
 * the input, and a successful decode of an unsigned body is stable (decoding
 * the same input twice gives the same bytes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/awschunked.h"
#include "cairn/err.h"
#include "cairn/meta.h"
#include "cairn/meta_mpu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static cairn_sigv4_auth_t auth;
    static uint8_t key[32];
    if (auth.scope[0] == '\0') {
        strcpy(auth.amz_date, "20130524T000000Z");
        strcpy(auth.scope, "20130524/us-east-1/s3/aws4_request");
        memset(auth.signature, 'a', 64);
        memset(key, 7, sizeof key);
    }
    uint8_t mode = data[0];
    size_t n = size - 1;
    uint8_t *a = malloc(n ? n : 1), *b = malloc(n ? n : 1);
    memcpy(a, data + 1, n);
    memcpy(b, data + 1, n);
    cairn_awschunked_t st = {.signed_chunks = mode & 1, .trailer = (mode >> 1) & 1, .signing_key = key,
                             .auth = &auth};
    size_t out = 0, out2 = 0;
    int rc = cairn_awschunked_decode(&st, a, n, &out);
    if (rc == 0 && out > n)
        abort();
    if (rc == 0 && !(mode & 1)) {
        cairn_awschunked_t st2 = {.trailer = (mode >> 1) & 1};
        if (cairn_awschunked_decode(&st2, b, n, &out2) != 0 || out2 != out || memcmp(a, b, out) != 0)
            abort();
    }
    if (mode & 4) {
        cairn_obj_rec_t r;
        cairn_mpu_rec_t u;
        if (cairn_obj_rec_decode(data + 1, n, &r) == 0) {
            size_t off = 0;
            cairn_obj_part_t p;
            uint32_t parts = 0;
            while (cairn_obj_part_next(r.parts, r.parts_len, &off, &p))
                parts++;
            if (parts != r.nparts)
                abort();
        }
        (void)cairn_mpu_rec_decode(data + 1, n, &u);
    }
    free(a);
    free(b);
    return 0;
}
