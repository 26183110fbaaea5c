/*
 * ec_test.c — Reed-Solomon against a slow reference.
 *
 * The reference below does GF(2^8) arithmetic by shift-and-add with the
 * polynomial 0x11d and builds the same Cauchy generator (identity on top,
 * 1 / (p XOR j) below) from first principles. ISA-L's parity must equal the
 * reference parity byte for byte, and every loss pattern of up to m
 * fragments must reconstruct the original bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "cairn/ec.h"
#include "cairn/err.h"

/* ---- reference GF(2^8), polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d) ---- */

static uint8_t ref_mul(uint8_t a, uint8_t b)
{
    uint8_t r = 0;
    while (b) {
        if (b & 1)
            r ^= a;
        b >>= 1;
        a = (uint8_t)((a << 1) ^ ((a & 0x80) ? 0x1d : 0));
    }
    return r;
}

static uint8_t ref_inv(uint8_t a)
{
    for (int b = 1; b < 256; b++)
        if (ref_mul(a, (uint8_t)b) == 1)
            return (uint8_t)b;
    fail_msg("no inverse of %u", a);
    return 0;
}

/* Parity p (0-based) from k data blocks: parity[p] = sum_j data[j] / ((k+p) ^ j). */
static void ref_encode(int k, int m, size_t len, uint8_t **data, uint8_t **parity)
{
    for (int p = 0; p < m; p++) {
        uint8_t coef[CAIRN_EC_MAX_FRAGS];
        for (int j = 0; j < k; j++)
            coef[j] = ref_inv((uint8_t)((k + p) ^ j));
        for (size_t b = 0; b < len; b++) {
            uint8_t acc = 0;
            for (int j = 0; j < k; j++)
                acc ^= ref_mul(coef[j], data[j][b]);
            parity[p][b] = acc;
        }
    }
}

/* ---- seeded randomness ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill_random(uint64_t *s, uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)rng_next(s);
}

/* ---- a stripe: reference fragments plus a working copy ---- */

typedef struct {
    int k, m;
    size_t len;
    uint8_t *ref[CAIRN_EC_MAX_FRAGS];  /* data + reference parity */
    uint8_t *work[CAIRN_EC_MAX_FRAGS]; /* what the code under test sees */
} stripe_t;

static void stripe_init(stripe_t *st, int k, int m, size_t len, uint64_t seed)
{
    st->k = k;
    st->m = m;
    st->len = len;
    for (int i = 0; i < k + m; i++) {
        st->ref[i] = test_malloc(len ? len : 1);
        st->work[i] = test_malloc(len ? len : 1);
    }
    for (int i = 0; i < k; i++)
        fill_random(&seed, st->ref[i], len);
    ref_encode(k, m, len, st->ref, st->ref + k);
}

static void stripe_dispose(stripe_t *st)
{
    for (int i = 0; i < st->k + st->m; i++) {
        test_free(st->ref[i]);
        test_free(st->work[i]);
    }
}

/* Copy present fragments into work, scribble over missing ones, reconstruct
 * with the given chunk size and compare every fragment with the reference. */
static void check_pattern(const cairn_ec_t *ec, stripe_t *st, uint32_t lostmask, size_t chunk)
{
    uint8_t present[CAIRN_EC_MAX_FRAGS];
    for (int i = 0; i < st->k + st->m; i++) {
        present[i] = !(lostmask & (1u << i));
        if (present[i])
            memcpy(st->work[i], st->ref[i], st->len);
        else
            memset(st->work[i], 0xa5, st->len);
    }
    assert_int_equal(cairn__ec_reconstruct_chunked(ec, st->len, st->work, present, chunk), 0);
    for (int i = 0; i < st->k + st->m; i++)
        if (memcmp(st->work[i], st->ref[i], st->len) != 0)
            fail_msg("k=%d m=%d len=%zu lost=%#x: fragment %d wrong", st->k, st->m, st->len,
                     lostmask, i);
}

/* Encode must match the reference; then every loss pattern of 0..m fragments
 * (all subsets of k+m with popcount <= m) must round-trip. */
static void round_trip_all(int k, int m, size_t len, size_t chunk)
{
    cairn_ec_t *ec;
    stripe_t st;
    assert_int_equal(cairn_ec_create(k, m, &ec), 0);
    assert_int_equal(cairn_ec_k(ec), k);
    assert_int_equal(cairn_ec_m(ec), m);
    stripe_init(&st, k, m, len, 0x5eed0000u + (uint64_t)(k * 100 + m) * 7919u + len);

    for (int i = 0; i < k; i++)
        memcpy(st.work[i], st.ref[i], len);
    for (int i = 0; i < m; i++)
        memset(st.work[k + i], 0x5a, len); /* encode overwrites, never accumulates */
    cairn__ec_encode_chunked(ec, len, st.work, st.work + k, chunk);
    for (int i = 0; i < m; i++)
        if (memcmp(st.work[k + i], st.ref[k + i], len) != 0)
            fail_msg("k=%d m=%d len=%zu: parity %d differs from reference", k, m, len, i);

    int n = k + m, patterns = 0;
    if (n > 20) { /* too many subsets: sample losses of exactly m */
        uint64_t seed = 99;
        for (int iter = 0; iter < 200; iter++) {
            uint32_t mask = 0;
            while (__builtin_popcount(mask) < m)
                mask |= 1u << (rng_next(&seed) % (uint64_t)n);
            check_pattern(ec, &st, mask, chunk);
        }
        goto out;
    }
    for (uint32_t mask = 0; mask < (1u << n); mask++) {
        if (__builtin_popcount(mask) > m)
            continue;
        check_pattern(ec, &st, mask, chunk);
        patterns++;
    }
    int expect = 0, c = 1; /* sum of C(n, i) for i = 0..m */
    for (int i = 0; i <= m; i++) {
        expect += c;
        c = c * (n - i) / (i + 1);
    }
    assert_int_equal(patterns, expect);
out:
    stripe_dispose(&st);
    cairn_ec_destroy(ec);
}

static const size_t lens[] = {1, 1000, 4160};

static void test_4_2(void **state)
{
    for (size_t i = 0; i < 3; i++)
        round_trip_all(4, 2, lens[i], SIZE_MAX);
}

static void test_8_3(void **state)
{
    for (size_t i = 0; i < 3; i++)
        round_trip_all(8, 3, lens[i], SIZE_MAX);
}

static void test_10_4(void **state)
{
    for (size_t i = 0; i < 3; i++)
        round_trip_all(10, 4, lens[i], SIZE_MAX);
}

/* k = 1 is replication with scaled copies; m = 0 is no redundancy. */
static void test_edges(void **state)
{
    for (size_t i = 0; i < 3; i++) {
        round_trip_all(1, 3, lens[i], SIZE_MAX);
        round_trip_all(1, 0, lens[i], SIZE_MAX);
        round_trip_all(5, 0, lens[i], SIZE_MAX);
    }
    round_trip_all(4, 2, 0, SIZE_MAX);
    round_trip_all(16, 16, 64, SIZE_MAX); /* largest tables: k * m = 256 */
}

/* The >INT_MAX loop, driven with small odd chunks. */
static void test_chunked(void **state)
{
    round_trip_all(4, 2, 1000, 7);
    round_trip_all(8, 3, 4160, 64);
    round_trip_all(10, 4, 1000, 333);
}

static void test_bad_args(void **state)
{
    cairn_ec_t *ec = (cairn_ec_t *)&ec;
    assert_int_equal(cairn_ec_create(0, 2, &ec), CAIRN_EINVAL);
    assert_int_equal(cairn_ec_create(4, -1, &ec), CAIRN_EINVAL);
    assert_int_equal(cairn_ec_create(30, 3, &ec), CAIRN_EINVAL);
    assert_ptr_equal(ec, (cairn_ec_t *)&ec);
    assert_int_equal(cairn_ec_create(31, 1, &ec), 0);
    cairn_ec_destroy(ec);
    cairn_ec_destroy(NULL);
}

/* Fewer than k present: CAIRN_EUNAVAIL and no buffer touched. */
static void test_too_few(void **state)
{
    const int k = 4, m = 2;
    cairn_ec_t *ec;
    stripe_t st;
    uint8_t present[6] = {1, 0, 1, 0, 0, 1};
    assert_int_equal(cairn_ec_create(k, m, &ec), 0);
    stripe_init(&st, k, m, 100, 42);
    for (int i = 0; i < k + m; i++)
        memset(st.work[i], 0x11 * i, 100);
    assert_int_equal(cairn_ec_reconstruct(ec, 100, st.work, present), CAIRN_EUNAVAIL);
    for (int i = 0; i < k + m; i++)
        for (int b = 0; b < 100; b++)
            assert_int_equal(st.work[i][b], (uint8_t)(0x11 * i));

    uint8_t none[6] = {0};
    assert_int_equal(cairn_ec_reconstruct(ec, 100, st.work, none), CAIRN_EUNAVAIL);
    cairn_ec_destroy(ec);

    /* m = 0: any loss is fatal, no loss is fine. */
    assert_int_equal(cairn_ec_create(3, 0, &ec), 0);
    uint8_t one_lost[3] = {1, 0, 1}, all[3] = {1, 1, 1};
    assert_int_equal(cairn_ec_reconstruct(ec, 100, st.work, one_lost), CAIRN_EUNAVAIL);
    assert_int_equal(cairn_ec_reconstruct(ec, 100, st.work, all), 0);
    cairn_ec_destroy(ec);
    stripe_dispose(&st);
}

/* One shared code, several threads reconstructing different patterns. */
typedef struct {
    const cairn_ec_t *ec;
    int seed, failures;
} thr_arg_t;

static void *thr_main(void *p)
{
    thr_arg_t *a = p;
    const int k = 8, m = 3, n = 11;
    const size_t len = 4096;
    uint8_t buf[2][11][4096];
    uint8_t *ref[11], *work[11];
    uint64_t s = (uint64_t)a->seed;
    for (int i = 0; i < n; i++) {
        ref[i] = buf[0][i];
        work[i] = buf[1][i];
    }
    for (int i = 0; i < k; i++)
        fill_random(&s, ref[i], len);
    cairn_ec_encode(a->ec, len, ref, ref + k);
    for (int iter = 0; iter < 300; iter++) {
        uint8_t present[11];
        uint32_t lost = 0;
        while (__builtin_popcount(lost) < m)
            lost |= 1u << (rng_next(&s) % n);
        for (int i = 0; i < n; i++) {
            present[i] = !(lost & (1u << i));
            memcpy(work[i], ref[i], len);
            if (!present[i])
                memset(work[i], 0, len);
        }
        if (cairn_ec_reconstruct(a->ec, len, work, present) != 0)
            a->failures++;
        for (int i = 0; i < n; i++)
            if (memcmp(work[i], ref[i], len) != 0)
                a->failures++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    cairn_ec_t *ec;
    pthread_t t[4];
    thr_arg_t a[4];
    assert_int_equal(cairn_ec_create(8, 3, &ec), 0);
    for (int i = 0; i < 4; i++) {
        a[i] = (thr_arg_t){ec, 1000 + i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, thr_main, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].failures, 0);
    }
    cairn_ec_destroy(ec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_4_2),     cmocka_unit_test(test_8_3),
        cmocka_unit_test(test_10_4),    cmocka_unit_test(test_edges),
        cmocka_unit_test(test_chunked), cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_too_few), cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
