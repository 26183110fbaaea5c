/*
 * checksum.c — see checksum.h. Every CRC state is kept in "result form"
 * (what the one-shot function would return for the bytes so far, starting
 * from 0), so chaining is the same call for all three CRCs.
 */
#include "cairn/checksum.h"

#include <isa-l/crc.h>
#include <isa-l/crc64.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "cairn/err.h"

#define CRC64NVME_POLY 0x9a6c9329ac4bc9b5ull /* 0xad93d23594c93659 bit-reversed */

static const struct {
    const char *name;
    const char *header;
} algs[CAIRN_CK_COUNT] = {
    [CAIRN_CK_NONE] = {"", ""},
    [CAIRN_CK_CRC32] = {"CRC32", "x-amz-checksum-crc32"},
    [CAIRN_CK_CRC32C] = {"CRC32C", "x-amz-checksum-crc32c"},
    [CAIRN_CK_CRC64NVME] = {"CRC64NVME", "x-amz-checksum-crc64nvme"},
    [CAIRN_CK_SHA1] = {"SHA1", "x-amz-checksum-sha1"},
    [CAIRN_CK_SHA256] = {"SHA256", "x-amz-checksum-sha256"},
};

const char *cairn_ck_name(cairn_ck_alg_t alg) { return alg > 0 && alg < CAIRN_CK_COUNT ? algs[alg].name : ""; }

const char *cairn_ck_header(cairn_ck_alg_t alg) { return alg > 0 && alg < CAIRN_CK_COUNT ? algs[alg].header : ""; }

cairn_ck_alg_t cairn_ck_from_name(const char *s, size_t len)
{
    for (int a = 1; a < CAIRN_CK_COUNT; a++)
        if (strlen(algs[a].name) == len && strncasecmp(algs[a].name, s, len) == 0)
            return (cairn_ck_alg_t)a;
    return CAIRN_CK_NONE;
}

cairn_ck_alg_t cairn_ck_from_header(const char *s, size_t len)
{
    for (int a = 1; a < CAIRN_CK_COUNT; a++)
        if (strlen(algs[a].header) == len && strncasecmp(algs[a].header, s, len) == 0)
            return (cairn_ck_alg_t)a;
    return CAIRN_CK_NONE;
}

/* ---- CRC-64/NVME ---- */

static uint64_t crc64_tab[8][256];
static pthread_once_t crc64_once = PTHREAD_ONCE_INIT;

static void crc64_tab_init(void)
{
    for (int i = 0; i < 256; i++) {
        uint64_t c = (uint64_t)i;
        for (int j = 0; j < 8; j++)
            c = (c >> 1) ^ ((c & 1) ? CRC64NVME_POLY : 0);
        crc64_tab[0][i] = c;
    }
    for (int i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc64_tab[t][i] = (crc64_tab[t - 1][i] >> 8) ^ crc64_tab[0][crc64_tab[t - 1][i] & 0xff];
}

uint64_t cairn_crc64nvme_base(uint64_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= b[i];
        for (int j = 0; j < 8; j++)
            crc = (crc >> 1) ^ ((crc & 1) ? CRC64NVME_POLY : 0);
    }
    return ~crc;
}

/* Slice-by-8: eight table lookups per 8 input bytes (about 2 GB/s). */
uint64_t cairn_crc64nvme(uint64_t crc, const void *p, size_t n)
{
    pthread_once(&crc64_once, crc64_tab_init);
    const uint8_t *b = p;
    crc = ~crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, b, 8); /* little-endian host (x86-64) */
        crc ^= v;
        crc = crc64_tab[7][crc & 0xff] ^ crc64_tab[6][(crc >> 8) & 0xff] ^ crc64_tab[5][(crc >> 16) & 0xff] ^
              crc64_tab[4][(crc >> 24) & 0xff] ^ crc64_tab[3][(crc >> 32) & 0xff] ^
              crc64_tab[2][(crc >> 40) & 0xff] ^ crc64_tab[1][(crc >> 48) & 0xff] ^ crc64_tab[0][crc >> 56];
        b += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ crc64_tab[0][(crc ^ *b++) & 0xff];
    return ~crc;
}

/* ---- incremental interface ---- */

void cairn_ck_init(cairn_ck_t *c, cairn_ck_alg_t alg)
{
    c->alg = alg;
    c->crc = 0;
    c->md = NULL;
    if (alg == CAIRN_CK_SHA1 || alg == CAIRN_CK_SHA256) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        CAIRN_ASSERT(md != NULL);
        EVP_DigestInit_ex(md, alg == CAIRN_CK_SHA1 ? EVP_sha1() : EVP_sha256(), NULL);
        c->md = md;
    }
}

void cairn_ck_update(cairn_ck_t *c, const void *p, size_t n)
{
    /* ISA-L takes int/uint64 lengths and non-const buffers; feed it in pieces. */
    const uint8_t *b = p;
    while (n > 0) {
        size_t piece = n > (1u << 30) ? (1u << 30) : n;
        switch (c->alg) {
        case CAIRN_CK_CRC32:
            c->crc = crc32_gzip_refl((uint32_t)c->crc, (unsigned char *)b, piece);
            break;
        case CAIRN_CK_CRC32C:
            c->crc = crc32_iscsi((unsigned char *)b, (int)piece, (uint32_t)c->crc ^ 0xffffffffu) ^ 0xffffffffu;
            break;
        case CAIRN_CK_CRC64NVME:
            c->crc = cairn_crc64nvme(c->crc, b, piece);
            break;
        case CAIRN_CK_SHA1:
        case CAIRN_CK_SHA256:
            EVP_DigestUpdate(c->md, b, piece);
            break;
        default:
            break;
        }
        b += piece;
        n -= piece;
    }
}

void cairn_ck_dispose(cairn_ck_t *c)
{
    if (c->md)
        EVP_MD_CTX_free(c->md);
    c->md = NULL;
}

size_t cairn_ck_final(cairn_ck_t *c, char out[CAIRN_CK_B64_MAX])
{
    uint8_t raw[32];
    size_t n = 0;
    switch (c->alg) {
    case CAIRN_CK_CRC32:
    case CAIRN_CK_CRC32C:
        for (int i = 0; i < 4; i++)
            raw[i] = (uint8_t)(c->crc >> (24 - 8 * i));
        n = 4;
        break;
    case CAIRN_CK_CRC64NVME:
        for (int i = 0; i < 8; i++)
            raw[i] = (uint8_t)(c->crc >> (56 - 8 * i));
        n = 8;
        break;
    case CAIRN_CK_SHA1:
    case CAIRN_CK_SHA256: {
        unsigned int len = 0;
        EVP_DigestFinal_ex(c->md, raw, &len);
        n = len;
        break;
    }
    default:
        break;
    }
    cairn_ck_dispose(c);
    out[0] = '\0';
    if (n == 0)
        return 0;
    return (size_t)EVP_EncodeBlock((unsigned char *)out, raw, (int)n);
}

/* ---- combining CRCs ----
 *
 * A reflected CRC register of w bits holds a polynomial over GF(2) with x^0
 * in the top bit. Appending len2 bytes to A multiplies A's register by
 * x^(8 len2) mod P; with init and xorout all ones, those cancel out between
 * the three CRCs, so CRC(A||B) = CRC(A) * x^(8 len2) ^ CRC(B) (zlib's
 * crc32_combine, for any width up to 64). */

static int crc_shape(cairn_ck_alg_t alg, uint64_t *poly, int *bits)
{
    switch (alg) {
    case CAIRN_CK_CRC32: *poly = 0xedb88320u; *bits = 32; return 0;
    case CAIRN_CK_CRC32C: *poly = 0x82f63b78u; *bits = 32; return 0;
    case CAIRN_CK_CRC64NVME: *poly = CRC64NVME_POLY; *bits = 64; return 0;
    default: return CAIRN_EINVAL;
    }
}

/* a * b mod P, both reflected (bit bits-1 is x^0). */
static uint64_t crc_mulmod(uint64_t a, uint64_t b, uint64_t poly, int bits)
{
    uint64_t p = 0;
    for (uint64_t m = 1ull << (bits - 1); m && a; m >>= 1) {
        if (a & m) {
            p ^= b;
            a ^= m;
        }
        b = (b & 1) ? (b >> 1) ^ poly : b >> 1;
    }
    return p;
}

uint64_t cairn_crc_combine(cairn_ck_alg_t alg, uint64_t crc1, uint64_t crc2, uint64_t len2)
{
    uint64_t poly;
    int bits;
    if (crc_shape(alg, &poly, &bits) != 0)
        return crc1;
    uint64_t xn = 1ull << (bits - 1);   /* x^0 */
    uint64_t sq = 1ull << (bits - 1 - 8); /* x^8: one byte */
    for (; len2; len2 >>= 1) {
        if (len2 & 1)
            xn = crc_mulmod(sq, xn, poly, bits);
        sq = crc_mulmod(sq, sq, poly, bits);
    }
    return crc_mulmod(xn, crc1, poly, bits) ^ crc2;
}

int cairn_ck_crc_decode(cairn_ck_alg_t alg, const char *b64, size_t len, uint64_t *crc)
{
    uint64_t poly;
    int bits;
    uint8_t raw[12];
    if (crc_shape(alg, &poly, &bits) != 0 || len != (bits == 32 ? 8u : 12u))
        return CAIRN_EINVAL;
    if (EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len) != (bits == 32 ? 6 : 9))
        return CAIRN_EINVAL; /* EVP_DecodeBlock counts the padding as bytes */
    *crc = 0;
    for (int i = 0; i < bits / 8; i++)
        *crc = (*crc << 8) | raw[i];
    return 0;
}

size_t cairn_ck_crc_encode(cairn_ck_alg_t alg, uint64_t crc, char out[CAIRN_CK_B64_MAX])
{
    uint64_t poly;
    int bits;
    out[0] = '\0';
    if (crc_shape(alg, &poly, &bits) != 0)
        return 0;
    cairn_ck_t c = {.alg = alg, .crc = crc};
    return cairn_ck_final(&c, out);
}

size_t cairn_ck_compute(cairn_ck_alg_t alg, const void *p, size_t n, char out[CAIRN_CK_B64_MAX])
{
    cairn_ck_t c;
    cairn_ck_init(&c, alg);
    cairn_ck_update(&c, p, n);
    return cairn_ck_final(&c, out);
}
