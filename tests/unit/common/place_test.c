/*
 * place_test.c — rendezvous placement against brute force and statistics.
 *
 * The reference scores each node with long double arithmetic straight from
 * the formula in place.h and sorts; without zones cairn_place_pick() must
 * return exactly that order. Zone limits, weight proportionality and the
 * movement bound are checked on seeded random object ids.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <xxh_x86dispatch.h>

#include "cairn/err.h"
#include "cairn/place.h"

#define MAXN 64

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void random_oid(uint64_t *s, uint8_t oid[16])
{
    uint64_t a = rng_next(s), b = rng_next(s);
    memcpy(oid, &a, 8);
    memcpy(oid + 8, &b, 8);
}

/* ---- slow reference ---- */

static long double ref_score(const uint8_t oid[16], uint32_t id, double w)
{
    uint8_t in[20];
    memcpy(in, oid, 16);
    for (int i = 0; i < 4; i++)
        in[16 + i] = (uint8_t)(id >> (8 * i));
    uint64_t h = XXH3_64bits(in, 20);
    long double u = ((long double)(h >> 11) + 0.5L) / 9007199254740992.0L; /* 2^53 */
    return -(long double)w / logl(u);
}

typedef struct {
    long double score;
    uint32_t id, idx;
} ref_t;

static int ref_cmp(const void *pa, const void *pb)
{
    const ref_t *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Top n eligible nodes by reference score, ignoring zones. */
static size_t ref_pick(const uint8_t oid[16], const cairn_place_node_t *nodes, size_t nn, size_t n,
                       uint32_t *out)
{
    ref_t r[MAXN];
    size_t ne = 0;
    for (size_t i = 0; i < nn; i++)
        if (nodes[i].weight > 0 && isfinite(nodes[i].weight))
            r[ne++] = (ref_t){ref_score(oid, nodes[i].id, nodes[i].weight), nodes[i].id, (uint32_t)i};
    qsort(r, ne, sizeof(r[0]), ref_cmp);
    size_t k = n < ne ? n : ne;
    for (size_t i = 0; i < k; i++)
        out[i] = r[i].idx;
    return k;
}

/* ---- helpers ---- */

static void *scratch_for(size_t nn)
{
    size_t sz = cairn_place_scratch_size(nn);
    void *p = test_malloc(sz ? sz : 1);
    memset(p, 0xff, sz); /* contents on entry must not matter */
    return p;
}

static int pick(const uint8_t oid[16], const cairn_place_node_t *nodes, size_t nn, size_t n,
                void *scratch, uint32_t *out)
{
    int got = cairn_place_pick(oid, nodes, nn, n, scratch, out);
    /* Always: distinct, eligible, in non-increasing score order. */
    for (int i = 0; i < got; i++) {
        assert_true(out[i] < nn);
        assert_true(nodes[out[i]].weight > 0);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(out[i], out[j]);
        if (i > 0)
            assert_true(cairn_place_score(oid, nodes[out[i - 1]].id, nodes[out[i - 1]].weight) >=
                        cairn_place_score(oid, nodes[out[i]].id, nodes[out[i]].weight));
    }
    return got;
}

/* ---- tests ---- */

static void test_score_matches_formula(void **state)
{
    uint64_t s = 1;
    uint8_t oid[16];
    for (int i = 0; i < 100000; i++) {
        random_oid(&s, oid);
        uint32_t id = (uint32_t)rng_next(&s);
        double w = 0.01 + (double)(rng_next(&s) % 10000) / 100.0;
        double got = cairn_place_score(oid, id, w);
        long double want = ref_score(oid, id, w);
        assert_true(got > 0 && isfinite(got));
        assert_true(fabsl((got - want) / want) < 1e-13L);
    }
    assert_true(cairn_place_score(oid, 1, 0) == 0);
    assert_true(cairn_place_score(oid, 1, -1) == 0);
    assert_true(cairn_place_score(oid, 1, NAN) == 0);
    assert_true(cairn_place_score(oid, 1, INFINITY) == 0);
}

static void test_edges(void **state)
{
    cairn_place_node_t nodes[4] = {{1, "a", 0}, {2, "a", -3}, {3, "b", NAN}, {4, "b", INFINITY}};
    uint8_t oid[16] = {0};
    uint32_t out[8];
    void *sc = scratch_for(4);
    assert_int_equal(cairn_place_pick(oid, nodes, 0, 3, NULL, out), 0);
    assert_int_equal(cairn_place_pick(oid, nodes, 4, 0, sc, out), 0);
    assert_int_equal(cairn_place_pick(oid, nodes, 4, 3, sc, out), 0); /* none eligible */
    nodes[1].weight = 2;
    nodes[3].weight = 1;
    assert_int_equal(pick(oid, nodes, 4, 8, sc, out), 2); /* fewer eligible than asked */
    assert_true((out[0] == 1 && out[1] == 3) || (out[0] == 3 && out[1] == 1));
    assert_int_equal(cairn_place_scratch_size(0), 0);
    test_free(sc);
}

/* Same inputs, same answer; node order and scratch contents do not matter. */
static void test_determinism(void **state)
{
    static const char *zones[] = {"z1", "z2", "z3", NULL};
    cairn_place_node_t nodes[20], shuffled[20];
    uint32_t a[8], b[8], c[8];
    uint64_t s = 7;
    uint8_t oid[16];
    void *sc = scratch_for(20);
    for (int i = 0; i < 20; i++)
        nodes[i] = (cairn_place_node_t){100 + 3 * i, zones[i % 4], 1 + i % 3};
    for (int iter = 0; iter < 2000; iter++) {
        random_oid(&s, oid);
        memcpy(shuffled, nodes, sizeof(nodes));
        for (int i = 19; i > 0; i--) {
            int j = (int)(rng_next(&s) % (uint64_t)(i + 1));
            cairn_place_node_t t = shuffled[i];
            shuffled[i] = shuffled[j];
            shuffled[j] = t;
        }
        /* zone labels equal by content, not pointer */
        char copy[3][4];
        for (int i = 0; i < 20; i++)
            if (shuffled[i].zone && (rng_next(&s) & 1)) {
                char *d = copy[shuffled[i].zone[1] - '1'];
                strcpy(d, shuffled[i].zone);
                shuffled[i].zone = d;
            }
        int na = pick(oid, nodes, 20, 8, sc, a);
        memset(sc, (int)iter, cairn_place_scratch_size(20));
        int nb = pick(oid, nodes, 20, 8, sc, b);
        int nc = pick(oid, shuffled, 20, 8, sc, c);
        assert_int_equal(na, 8);
        assert_int_equal(nb, 8);
        assert_int_equal(nc, 8);
        for (int i = 0; i < 8; i++) {
            assert_int_equal(a[i], b[i]);
            assert_int_equal(nodes[a[i]].id, shuffled[c[i]].id);
        }
    }
    test_free(sc);
}

/* Without zone limits the answer is the top n of a plain sort. */
static void test_brute_force(void **state)
{
    static const char *distinct[MAXN];
    static char names[MAXN][8];
    cairn_place_node_t nodes[MAXN];
    uint32_t got[MAXN + 4], want[MAXN + 4];
    uint64_t s = 12345;
    uint8_t oid[16];
    for (int i = 0; i < MAXN; i++) {
        snprintf(names[i], sizeof(names[i]), "z%d", i);
        distinct[i] = names[i];
    }
    for (int map = 0; map < 300; map++) {
        size_t nn = 1 + rng_next(&s) % MAXN;
        int zmode = map % 3; /* all NULL, all one zone, every node its own zone */
        uint32_t base = (uint32_t)rng_next(&s);
        for (size_t i = 0; i < nn; i++) {
            uint64_t r = rng_next(&s);
            double w = (r % 8 == 0) ? 0 : 0.05 + (double)(r % 1000) / 37.0;
            nodes[i] = (cairn_place_node_t){base + (uint32_t)i * 2654435761u,
                                            zmode == 0 ? NULL : zmode == 1 ? "" : distinct[i], w};
        }
        void *sc = scratch_for(nn);
        for (int iter = 0; iter < 100; iter++) {
            random_oid(&s, oid);
            size_t n = rng_next(&s) % (nn + 3);
            int g = pick(oid, nodes, nn, n, sc, got);
            size_t w = ref_pick(oid, nodes, nn, n, want);
            assert_int_equal(g, w);
            for (size_t i = 0; i < w; i++)
                assert_int_equal(got[i], want[i]);
        }
        test_free(sc);
    }
}

/* P(first choice) = w / sum(w): 1,000,000 ids, weights 1, 1, 2, 4. */
static void test_weight_proportional(void **state)
{
    cairn_place_node_t nodes[4] = {{11, "a", 1}, {22, "b", 1}, {33, "c", 2}, {44, "d", 4}};
    const int ids = 1000000;
    long count[4] = {0};
    uint64_t s = 2024;
    uint8_t oid[16];
    uint32_t out[1];
    void *sc = scratch_for(4);
    for (int i = 0; i < ids; i++) {
        random_oid(&s, oid);
        assert_int_equal(cairn_place_pick(oid, nodes, 4, 1, sc, out), 1);
        count[out[0]]++;
    }
    for (int i = 0; i < 4; i++) {
        double share = (double)count[i] / ids, want = nodes[i].weight / 8.0;
        print_message("node %u weight %.0f: share %.4f want %.4f\n", nodes[i].id, nodes[i].weight,
                      share, want);
        assert_true(fabs(share - want) / want < 0.02);
    }
    test_free(sc);
}

/* Count choices per zone label ("a", "b", ...). */
static void zone_counts(const cairn_place_node_t *nodes, const uint32_t *out, int got, int *cnt)
{
    memset(cnt, 0, 8 * sizeof(int));
    for (int i = 0; i < got; i++)
        cnt[nodes[out[i]].zone[0] - 'a']++;
}

static void test_zone_spread(void **state)
{
    /* 3 zones x 4 nodes, zone c heavily weighted: still exactly 2 per zone. */
    cairn_place_node_t nodes[12];
    for (int i = 0; i < 12; i++)
        nodes[i] = (cairn_place_node_t){(uint32_t)i + 1, i < 4 ? "a" : i < 8 ? "b" : "c",
                                        i < 8 ? 1.0 + i % 4 : 50.0};
    uint64_t s = 99;
    uint8_t oid[16];
    uint32_t out[12];
    int cnt[8];
    void *sc = scratch_for(12);
    for (int iter = 0; iter < 100000; iter++) {
        random_oid(&s, oid);
        assert_int_equal(pick(oid, nodes, 12, 6, sc, out), 6);
        zone_counts(nodes, out, 6, cnt);
        assert_int_equal(cnt[0], 2);
        assert_int_equal(cnt[1], 2);
        assert_int_equal(cnt[2], 2);
    }
    /* 4 zones (add "d" to nodes 9..11), 6 picks: at most 2 per zone. */
    nodes[9].zone = nodes[10].zone = nodes[11].zone = "d";
    for (int iter = 0; iter < 20000; iter++) {
        random_oid(&s, oid);
        assert_int_equal(pick(oid, nodes, 12, 6, sc, out), 6);
        zone_counts(nodes, out, 6, cnt);
        for (int z = 0; z < 4; z++)
            assert_true(cnt[z] <= 2);
    }
    test_free(sc);
}

/* Zones too small for the limit: it rises one step at a time. */
static void test_zone_relax(void **state)
{
    /* a: 1 node, b: 5, c: 5. */
    cairn_place_node_t nodes[11];
    for (int i = 0; i < 11; i++)
        nodes[i] = (cairn_place_node_t){(uint32_t)i + 1, i < 1 ? "a" : i < 6 ? "b" : "c", 1};
    uint64_t s = 5;
    uint8_t oid[16];
    uint32_t out[11];
    int cnt[8];
    void *sc = scratch_for(11);
    for (int iter = 0; iter < 20000; iter++) {
        random_oid(&s, oid);
        /* n = 6, cap 2: a=1, then b and c share 5 -> 3 + 2 */
        assert_int_equal(pick(oid, nodes, 11, 6, sc, out), 6);
        zone_counts(nodes, out, 6, cnt);
        assert_int_equal(cnt[0], 1);
        assert_true(cnt[1] <= 3 && cnt[2] <= 3);
        /* n = 9, cap 3 -> 7; cap 4 -> 1 + 4 + 4 */
        assert_int_equal(pick(oid, nodes, 11, 9, sc, out), 9);
        zone_counts(nodes, out, 9, cnt);
        assert_int_equal(cnt[0], 1);
        assert_int_equal(cnt[1], 4);
        assert_int_equal(cnt[2], 4);
        /* n = 11: everything */
        assert_int_equal(pick(oid, nodes, 11, 11, sc, out), 11);
    }
    /* A zone whose nodes all have weight 0 does not count: Z = 2, cap 3. */
    nodes[0].weight = 0;
    for (int i = 1; i < 6; i++)
        nodes[i].zone = "d";
    nodes[0].zone = "b";
    for (int iter = 0; iter < 20000; iter++) {
        random_oid(&s, oid);
        assert_int_equal(pick(oid, nodes, 11, 6, sc, out), 6);
        zone_counts(nodes, out, 6, cnt);
        assert_int_equal(cnt[2], 3);
        assert_int_equal(cnt[3], 3);
    }
    test_free(sc);
}

/* Add node 10 to N = 9: each object's set of holders either stays or swaps
 * exactly one node for the new one; the fraction that changes is about
 * n / (N + 1) without zones. */
static void movement(int zoned, double want_frac)
{
    enum { N = 9, K_M = 6, OBJS = 200000 };
    cairn_place_node_t nodes[N + 1];
    for (int i = 0; i <= N; i++)
        nodes[i] = (cairn_place_node_t){(uint32_t)(1000 + 17 * i),
                                        zoned ? (const char *[]){"a", "b", "c"}[i % 3] : NULL, 1};
    uint64_t s = 77;
    uint8_t oid[16];
    uint32_t before[K_M], after[K_M];
    long changed = 0, slots_changed = 0;
    void *sc = scratch_for(N + 1);
    for (int o = 0; o < OBJS; o++) {
        random_oid(&s, oid);
        assert_int_equal(cairn_place_pick(oid, nodes, N, K_M, sc, before), K_M);
        assert_int_equal(cairn_place_pick(oid, nodes, N + 1, K_M, sc, after), K_M);
        int has_new = 0, kept = 0;
        for (int i = 0; i < K_M; i++) {
            if (after[i] == N)
                has_new = 1;
            for (int j = 0; j < K_M; j++)
                kept += after[i] == before[j];
            slots_changed += after[i] != before[i];
        }
        if (has_new) {
            assert_int_equal(kept, K_M - 1); /* one left, only the new node came */
            changed++;
        } else {
            assert_int_equal(kept, K_M);
        }
    }
    double frac = (double)changed / OBJS;
    print_message("%s: objects whose set changed %.4f (want %.4f); slots changed %.4f\n",
                  zoned ? "zones" : "no zones", frac, want_frac,
                  (double)slots_changed / ((double)OBJS * K_M));
    assert_true(fabs(frac - want_frac) < 0.01);
    test_free(sc);
}

static void test_movement(void **state)
{
    movement(0, 6.0 / 10.0);
    /* zones a, b, c hold 3 nodes each and 2 choices each; the new node joins
     * zone a (index 9 % 3 == 0) and wins when it is in a's top 2 of 4. */
    movement(1, 2.0 / 4.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_score_matches_formula),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_brute_force),
        cmocka_unit_test(test_weight_proportional),
        cmocka_unit_test(test_zone_spread),
        cmocka_unit_test(test_zone_relax),
        cmocka_unit_test(test_movement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
