/*
 * ec.c — Reed-Solomon k+m on ISA-L.
 *
 * The code object holds the (k+m) x k Cauchy generator A and the ISA-L
 * multiplication tables for its m parity rows, built once in create.
 *
 * Encoding is one ec_encode_data() call with those tables.
 *
 * Reconstruction: take the first k present fragments (data rows come first,
 * so when only parity is lost S is the identity), stack their generator rows
 * into S, and invert it. Since survivors = S * data, a lost
 * data block i is row i of S^-1 applied to the survivors, and a lost parity
 * block p is (A[p] * S^-1) applied to the survivors. All lost rows go into one
 * decode matrix so a single ec_encode_data() pass writes every missing block.
 *
 * ISA-L takes an int length; longer buffers are processed in chunks.
 */
#include "cairn/ec.h"

#include <isa-l/erasure_code.h>
#include <string.h>

#include "cairn/err.h"

/* Bytes handed to ISA-L per call: below INT_MAX and a multiple of 64 so every
 * chunk but the last stays on ISA-L's vector path. */
#define EC_CHUNK ((size_t)1 << 30)

/* Upper bound of k * m (and of k * nlost) for k + m <= 32: 16 * 16. */
#define EC_MAX_KM 256

struct cairn_ec_s {
    int k, m;
    uint8_t gen[CAIRN_EC_MAX_FRAGS * CAIRN_EC_MAX_FRAGS]; /* (k+m) x k, row-major */
    uint8_t enc_tbls[32 * EC_MAX_KM];                     /* 32 * k * m used */
};

int cairn_ec_create(int k, int m, cairn_ec_t **out)
{
    if (k < 1 || m < 0 || k + m > CAIRN_EC_MAX_FRAGS)
        return CAIRN_EINVAL;
    cairn_ec_t *ec = cairn_calloc(1, sizeof(*ec));
    ec->k = k;
    ec->m = m;
    gf_gen_cauchy1_matrix(ec->gen, k + m, k);
    if (m > 0)
        ec_init_tables(k, m, ec->gen + k * k, ec->enc_tbls);
    *out = ec;
    return 0;
}

void cairn_ec_destroy(cairn_ec_t *ec)
{
    free(ec);
}

int cairn_ec_k(const cairn_ec_t *ec)
{
    return ec->k;
}

int cairn_ec_m(const cairn_ec_t *ec)
{
    return ec->m;
}

/* Apply `rows` coefficient rows (as ISA-L tables) to the k sources, writing
 * `rows` outputs, `chunk` bytes at a time. The tables are only read, but ISA-L
 * declares them non-const. */
static void run_tables(int k, int rows, const uint8_t *tbls, size_t len, uint8_t *const *src,
                       uint8_t *const *dst, size_t chunk)
{
    uint8_t *s[CAIRN_EC_MAX_FRAGS], *d[CAIRN_EC_MAX_FRAGS];

    if (chunk > EC_CHUNK)
        chunk = EC_CHUNK;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        for (int i = 0; i < k; i++)
            s[i] = src[i] + off;
        for (int i = 0; i < rows; i++)
            d[i] = dst[i] + off;
        ec_encode_data((int)n, k, rows, (uint8_t *)tbls, s, d);
    }
}

void cairn__ec_encode_chunked(const cairn_ec_t *ec, size_t len, uint8_t *const *data,
                              uint8_t **parity, size_t chunk)
{
    CAIRN_ASSERT(chunk > 0);
    if (ec->m == 0 || len == 0)
        return;
    run_tables(ec->k, ec->m, ec->enc_tbls, len, data, parity, chunk);
}

void cairn_ec_encode(const cairn_ec_t *ec, size_t len, uint8_t *const *data, uint8_t **parity)
{
    cairn__ec_encode_chunked(ec, len, data, parity, EC_CHUNK);
}

int cairn__ec_reconstruct_chunked(const cairn_ec_t *ec, size_t len, uint8_t **frags,
                                  const uint8_t *present, size_t chunk)
{
    const int k = ec->k, n = ec->k + ec->m;
    uint8_t *src[CAIRN_EC_MAX_FRAGS], *dst[CAIRN_EC_MAX_FRAGS];
    uint8_t srow[CAIRN_EC_MAX_FRAGS]; /* generator row of each chosen survivor */
    uint8_t lost[CAIRN_EC_MAX_FRAGS];
    int nsrc = 0, nlost = 0;

    CAIRN_ASSERT(chunk > 0);

    /* Survivors: the first k present fragments. Lost: every absent one. */
    for (int i = 0; i < n; i++) {
        if (!present[i])
            lost[nlost++] = (uint8_t)i;
        else if (nsrc < k)
            srow[nsrc++] = (uint8_t)i;
    }
    if (nsrc < k)
        return CAIRN_EUNAVAIL;
    if (nlost == 0 || len == 0)
        return 0;

    /* S = survivor rows of the generator; inv = S^-1. Cauchy guarantees S is
     * invertible, so failure here means memory corruption. */
    uint8_t s[CAIRN_EC_MAX_FRAGS * CAIRN_EC_MAX_FRAGS];
    uint8_t inv[CAIRN_EC_MAX_FRAGS * CAIRN_EC_MAX_FRAGS];
    for (int r = 0; r < k; r++) {
        memcpy(s + r * k, ec->gen + srow[r] * k, (size_t)k);
        src[r] = frags[srow[r]];
    }
    CAIRN_ASSERT(gf_invert_matrix(s, inv, k) == 0);

    /* Decode matrix: one row per lost fragment, expressed over the survivors. */
    uint8_t dec[EC_MAX_KM];
    for (int l = 0; l < nlost; l++) {
        int f = lost[l];
        uint8_t *row = dec + l * k;
        dst[l] = frags[f];
        if (f < k) {
            memcpy(row, inv + f * k, (size_t)k);
            continue;
        }
        const uint8_t *g = ec->gen + f * k; /* parity: row = A[f] * inv */
        for (int c = 0; c < k; c++) {
            uint8_t acc = 0;
            for (int j = 0; j < k; j++)
                acc ^= gf_mul(g[j], inv[j * k + c]);
            row[c] = acc;
        }
    }

    uint8_t tbls[32 * EC_MAX_KM];
    ec_init_tables(k, nlost, dec, tbls);
    run_tables(k, nlost, tbls, len, src, dst, chunk);
    return 0;
}

int cairn_ec_reconstruct(const cairn_ec_t *ec, size_t len, uint8_t **frags, const uint8_t *present)
{
    return cairn__ec_reconstruct_chunked(ec, len, frags, present, EC_CHUNK);
}
