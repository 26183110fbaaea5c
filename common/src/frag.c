/*
 * frag.c — the fragment file format (see frag.h).
 *
 * Everything here is a pure function of the header: the node, the gateway
 * and the repair tool compute the same offsets without talking to each
 * other. Stripe s < last sits at 64 + s * (B + 8); the last stripe's blocks
 * are L = ceil(last_stripe_bytes / k) bytes, so an object of size 0 is a
 * header-only file.
 */
#include "cairn/frag.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>
#include <xxh_x86dispatch.h>

#include "cairn/buf.h"
#include "cairn/err.h"

void cairn_frag_hdr_encode(const cairn_frag_hdr_t *h, uint8_t out[CAIRN_FRAG_HDR_SIZE])
{
    memset(out, 0, CAIRN_FRAG_HDR_SIZE);
    cairn_le32_put(out, CAIRN_FRAG_MAGIC);
    out[4] = CAIRN_FRAG_VERSION & 0xff;
    out[5] = CAIRN_FRAG_VERSION >> 8;
    out[6] = CAIRN_FRAG_HDR_SIZE & 0xff;
    out[7] = CAIRN_FRAG_HDR_SIZE >> 8;
    memcpy(out + 8, h->oid, 16);
    out[24] = h->index;
    out[25] = h->k;
    out[26] = h->m;
    cairn_le32_put(out + 28, h->block_size);
    cairn_le64_put(out + 32, h->object_size);
    cairn_le64_put(out + 56, XXH3_64bits(out, 56));
}

int cairn_frag_hdr_decode(const uint8_t in[CAIRN_FRAG_HDR_SIZE], cairn_frag_hdr_t *h)
{
    /* Magic and checksum first: a damaged version field is corruption, not
     * a newer format. Every later version keeps both where they are. */
    if (cairn_le32_get(in) != CAIRN_FRAG_MAGIC)
        return CAIRN_ECORRUPT;
    if (cairn_le64_get(in + 56) != XXH3_64bits(in, 56))
        return CAIRN_ECORRUPT;
    unsigned version = in[4] | (unsigned)in[5] << 8;
    unsigned hsize = in[6] | (unsigned)in[7] << 8;
    if (version != CAIRN_FRAG_VERSION || hsize != CAIRN_FRAG_HDR_SIZE)
        return CAIRN_EPROTO;
    if (in[27] != 0)
        return CAIRN_EPROTO;
    for (int i = 40; i < 56; i++)
        if (in[i] != 0)
            return CAIRN_EPROTO;
    memcpy(h->oid, in + 8, 16);
    h->index = in[24];
    h->k = in[25];
    h->m = in[26];
    h->block_size = cairn_le32_get(in + 28);
    h->object_size = cairn_le64_get(in + 32);
    if (h->k == 0 || (unsigned)h->k + h->m > CAIRN_MAX_FRAGS || h->index >= (unsigned)h->k + h->m)
        return CAIRN_EPROTO;
    if (h->block_size == 0 || h->block_size > CAIRN_FRAG_MAX_BLOCK || h->block_size % 64 != 0)
        return CAIRN_EPROTO;
    if (h->object_size > CAIRN_FRAG_MAX_OBJECT)
        return CAIRN_EPROTO;
    return 0;
}

static uint64_t stripe_size(const cairn_frag_hdr_t *h)
{
    return (uint64_t)h->k * h->block_size;
}

uint64_t cairn_frag_nstripes(const cairn_frag_hdr_t *h)
{
    uint64_t ss = stripe_size(h);
    return h->object_size / ss + (h->object_size % ss != 0);
}

uint64_t cairn_frag_stripe_bytes(const cairn_frag_hdr_t *h, uint64_t stripe)
{
    uint64_t n = cairn_frag_nstripes(h);
    if (stripe >= n)
        return 0;
    if (stripe + 1 < n)
        return stripe_size(h);
    return h->object_size - stripe * stripe_size(h);
}

size_t cairn_frag_block_len(const cairn_frag_hdr_t *h, uint64_t stripe)
{
    uint64_t n = cairn_frag_nstripes(h);
    if (stripe >= n)
        return 0;
    if (stripe + 1 < n)
        return h->block_size;
    uint64_t last = h->object_size - stripe * stripe_size(h);
    return (size_t)((last + h->k - 1) / h->k);
}

uint64_t cairn_frag_block_offset(const cairn_frag_hdr_t *h, uint64_t stripe)
{
    /* Only the last stripe differs in length, so every block before it is B + 8. */
    return CAIRN_FRAG_HDR_SIZE + stripe * ((uint64_t)h->block_size + CAIRN_FRAG_SUM_SIZE);
}

uint64_t cairn_frag_file_size(const cairn_frag_hdr_t *h)
{
    uint64_t n = cairn_frag_nstripes(h);
    if (n == 0)
        return CAIRN_FRAG_HDR_SIZE;
    return cairn_frag_block_offset(h, n - 1) + cairn_frag_block_len(h, n - 1) + CAIRN_FRAG_SUM_SIZE;
}

uint64_t cairn_frag_sum(const void *p, size_t n)
{
    return XXH3_64bits(p, n);
}

void cairn_frag_path(const uint8_t oid[16], unsigned index, char *out, size_t outsz)
{
    char hex[33];
    cairn_hex(oid, 16, hex);
    snprintf(out, outsz, "%.2s/%s.%u", hex, hex, index);
}

int cairn_frag_read_check(const cairn_frag_hdr_t *want, unsigned index, uint64_t first, uint32_t n, const uint8_t *p,
                          size_t len)
{
    cairn_frag_hdr_t h;
    if (len < CAIRN_FRAG_HDR_SIZE || cairn_frag_hdr_decode(p, &h) != 0)
        return CAIRN_ECORRUPT;
    if (memcmp(h.oid, want->oid, 16) != 0 || h.index != index || h.k != want->k || h.m != want->m ||
        h.block_size != want->block_size || h.object_size != want->object_size)
        return CAIRN_ECORRUPT;
    size_t off = CAIRN_FRAG_HDR_SIZE;
    for (uint32_t i = 0; i < n; i++) {
        size_t L = cairn_frag_block_len(&h, first + i);
        if (len - off < L + CAIRN_FRAG_SUM_SIZE)
            return CAIRN_EPROTO;
        if (cairn_frag_sum(p + off, L) != cairn_le64_get(p + off + L))
            return CAIRN_ECORRUPT;
        off += L + CAIRN_FRAG_SUM_SIZE;
    }
    return off == len ? 0 : CAIRN_EPROTO;
}

const uint8_t *cairn_frag_read_block(const cairn_frag_hdr_t *h, const uint8_t *p, uint64_t first, uint32_t i)
{
    size_t off = CAIRN_FRAG_HDR_SIZE;
    for (uint32_t j = 0; j < i; j++)
        off += cairn_frag_block_len(h, first + j) + CAIRN_FRAG_SUM_SIZE;
    return p + off;
}
