/*
 * fuzz_frag.c — libFuzzer driver for the fragment file format (frag.h): the
 * header reader, the geometry computed from a header, and the check of a
 * FRAG_GET answer (header + blocks + sums) that the gateway runs on every
 * read.
 *
 * Input: byte 0 mode bits, bytes 1..4 the first stripe asked (u32), byte 5
 * the number of blocks asked; the rest is the answer (header, blocks).
 *   bit 0  seal the header: rewrite its checksum, so the fuzzer reaches the
 *          field checks instead of stopping at CAIRN_ECORRUPT;
 *   bit 1  seal the blocks: rewrite every block's sum where the header's
 *          geometry puts it, so the length checks are reached.
 *
 * Checked properties, beyond "no crash, no sanitizer report":
 * - a header that decodes re-encodes to the same 64 bytes;
 * - the geometry is consistent: stripes add up to the object size, every
 *   block fits its stripe, offsets follow one another and end at the file
 *   size (checked on the first and last stripes: there may be 2^44);
 * - a checked answer has exactly the blocks asked, each inside the answer
 *   with its sum right after it;
 * - fragment paths are "xx/<32 hex>.<index>".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/frag.h"

static void check_geometry(const cairn_frag_hdr_t *h)
{
    uint64_t n = cairn_frag_nstripes(h), ss = (uint64_t)h->k * h->block_size;
    if (n != (h->object_size + ss - 1) / ss)
        abort();
    if (n == 0) {
        if (cairn_frag_file_size(h) != CAIRN_FRAG_HDR_SIZE || cairn_frag_block_len(h, 0) != 0)
            abort();
        return;
    }
    uint64_t picks[6] = {0, 1, 2, n - 3, n - 2, n - 1};
    for (int i = 0; i < 6; i++) {
        uint64_t s = picks[i];
        if (s >= n)
            continue;
        size_t L = cairn_frag_block_len(h, s);
        uint64_t sb = cairn_frag_stripe_bytes(h, s);
        if (L == 0 || L > h->block_size || sb == 0 || sb > ss)
            abort();
        if ((uint64_t)L * h->k < sb || (uint64_t)(L - 1) * h->k >= sb)
            abort(); /* L = ceil(sb / k) */
        if (s + 1 < n && (L != h->block_size || sb != ss))
            abort();
        if (s + 1 < n && cairn_frag_block_offset(h, s + 1) != cairn_frag_block_offset(h, s) + L + CAIRN_FRAG_SUM_SIZE)
            abort();
    }
    if ((n - 1) * ss + cairn_frag_stripe_bytes(h, n - 1) != h->object_size)
        abort();
    if (cairn_frag_file_size(h) !=
        cairn_frag_block_offset(h, n - 1) + cairn_frag_block_len(h, n - 1) + CAIRN_FRAG_SUM_SIZE)
        abort();
    if (cairn_frag_block_len(h, n) != 0 || cairn_frag_stripe_bytes(h, n) != 0 || cairn_frag_block_len(h, UINT64_MAX))
        abort();
}

static void check_path(const cairn_frag_hdr_t *h)
{
    char path[64], hex[33];
    cairn_frag_path(h->oid, h->index, path, sizeof path);
    cairn_hex(h->oid, 16, hex);
    if (memcmp(path, hex, 2) != 0 || path[2] != '/' || memcmp(path + 3, hex, 32) != 0 || path[35] != '.')
        abort();
    unsigned v = 0;
    const char *p = path + 36;
    for (; *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (unsigned)(*p - '0');
    if (*p != '\0' || p == path + 36 || v != h->index)
        abort();
}

/* Rewrite the block sums of an answer in place, following h's geometry. */
static void seal_blocks(const cairn_frag_hdr_t *h, uint64_t first, uint32_t n, uint8_t *p, size_t len)
{
    size_t off = CAIRN_FRAG_HDR_SIZE;
    for (uint32_t i = 0; i < n; i++) {
        size_t L = cairn_frag_block_len(h, first + i);
        if (len - off < L + CAIRN_FRAG_SUM_SIZE)
            return;
        cairn_le64_put(p + off + L, cairn_frag_sum(p + off, L));
        off += L + CAIRN_FRAG_SUM_SIZE;
    }
}

static void check_answer(const cairn_frag_hdr_t *h, uint64_t first, uint32_t n, const uint8_t *p, size_t len)
{
    if (cairn_frag_read_check(h, h->index, first, n, p, len) != 0)
        return;
    const uint8_t *end = p + len, *prev = p + CAIRN_FRAG_HDR_SIZE;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *b = cairn_frag_read_block(h, p, first, i);
        size_t L = cairn_frag_block_len(h, first + i);
        if (b != prev || b + L + CAIRN_FRAG_SUM_SIZE > end || cairn_le64_get(b + L) != cairn_frag_sum(b, L))
            abort();
        prev = b + L + CAIRN_FRAG_SUM_SIZE;
    }
    if (prev != end)
        abort();
    /* the same answer for another fragment index or object is refused */
    cairn_frag_hdr_t other = *h;
    other.oid[0] ^= 1;
    if (cairn_frag_read_check(&other, h->index, first, n, p, len) == 0 ||
        cairn_frag_read_check(h, h->index + 1u, first, n, p, len) == 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 6 + CAIRN_FRAG_HDR_SIZE)
        return 0;
    int mode = data[0];
    uint64_t first = cairn_le32_get(data + 1);
    uint32_t n = data[5];
    size_t len = size - 6;
    uint8_t *p = malloc(len);
    memcpy(p, data + 6, len);
    if (mode & 1)
        cairn_le64_put(p + 56, cairn_frag_sum(p, 56));

    cairn_frag_hdr_t h;
    int rc = cairn_frag_hdr_decode(p, &h);
    if (rc == 0) {
        uint8_t again[CAIRN_FRAG_HDR_SIZE];
        cairn_frag_hdr_encode(&h, again);
        if (memcmp(again, p, sizeof again) != 0)
            abort();
        check_geometry(&h);
        check_path(&h);
        uint64_t ns = cairn_frag_nstripes(&h);
        if (first > ns + 1)
            first %= ns + 2; /* mostly real stripes, sometimes just past the end */
        if (mode & 2)
            seal_blocks(&h, first, n, p, len);
        check_answer(&h, first, n, p, len);
    } else if (rc != CAIRN_ECORRUPT && rc != CAIRN_EPROTO) {
        abort();
    }
    free(p);
    return 0;
}
