/*
 * place.c — weighted rendezvous hashing with zone limits.
 *
 * A pick works on scratch in four steps:
 *   1. score every eligible node                                  O(N) hashes
 *   2. count distinct zones, stopping at n (ceil(n/Z) is 1 for Z >= n)
 *   3. heapify by score and pop nodes best-first; take a node unless its
 *      zone already holds `cap` choices; stop after n takes
 *   4. only if the heap ran dry short of n: the zones lacked nodes for the
 *      limit, so sweep the now fully sorted array again with cap+1, cap+2...
 *      and emit the taken nodes in score order.
 * Usually n is small and step 3 pops a handful of nodes, so a pick costs
 * little more than the N hashes.
 */
#include "cairn/place.h"

#include <float.h>
#include <math.h>
#include <string.h>
#include <xxhash.h>
#include <xxh_x86dispatch.h>

#include "cairn/err.h"

#define NO_ZONE UINT32_MAX

typedef struct {
    double score;
    uint32_t id;    /* node id, the tie-break for equal scores */
    uint32_t idx;   /* index into nodes[] */
    uint32_t zslot; /* index into the zone table, NO_ZONE until looked up */
    uint32_t taken;
} entry_t;

typedef struct {
    const char *zone; /* never NULL: NULL labels are stored as "" */
    uint32_t count;   /* choices made in this zone so far */
} zone_t;

size_t cairn_place_scratch_size(size_t nnodes)
{
    return nnodes * (sizeof(entry_t) + sizeof(zone_t));
}

static int eligible(double w)
{
    return w > 0 && w <= DBL_MAX; /* false for NaN and infinities */
}

/* -w / ln(u), u = (q + 0.5) / 2^53 with q = h >> 11. Computed so that u is
 * never rounded: below one half, q + 0.5 < 2^52 is exact; above, ln(u) is
 * taken as log1p(-v) with v = 1 - u = (2^53 - 1 - q + 0.5) / 2^53, also
 * exact. This keeps u strictly inside (0, 1) (so ln(u) is finite and
 * nonzero) and keeps full precision for the best scores, where u is near 1. */
static double score_from_hash(uint64_t h, double w)
{
    uint64_t q = h >> 11;
    double lnu;
    if (q < (1ull << 52))
        lnu = log(((double)q + 0.5) * 0x1p-53);
    else
        lnu = log1p(-((double)((1ull << 53) - 1 - q) + 0.5) * 0x1p-53);
    return -w / lnu;
}

static uint64_t hash_of(const uint8_t oid[16], uint32_t node_id)
{
    uint8_t in[20];
    memcpy(in, oid, 16);
    in[16] = (uint8_t)node_id; /* little-endian on every host */
    in[17] = (uint8_t)(node_id >> 8);
    in[18] = (uint8_t)(node_id >> 16);
    in[19] = (uint8_t)(node_id >> 24);
    return XXH3_64bits(in, sizeof(in));
}

double cairn_place_score(const uint8_t oid[16], uint32_t node_id, double weight)
{
    if (!eligible(weight))
        return 0;
    return score_from_hash(hash_of(oid, node_id), weight);
}

/* Strict order: higher score first, then lower id, then lower index. */
static int better(const entry_t *a, const entry_t *b)
{
    if (a->score != b->score)
        return a->score > b->score;
    if (a->id != b->id)
        return a->id < b->id;
    return a->idx < b->idx;
}

static void sift_down(entry_t *e, size_t n, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && better(&e[c + 1], &e[c]))
            c++;
        if (!better(&e[c], &e[i]))
            return;
        entry_t t = e[i];
        e[i] = e[c];
        e[c] = t;
        i = c;
    }
}

/* Slot of `zone` in zt[0..*nz), appended if new. O(*nz) compares. */
static uint32_t zone_slot(zone_t *zt, uint32_t *nz, const char *zone)
{
    if (zone == NULL)
        zone = "";
    for (uint32_t i = 0; i < *nz; i++)
        if (zt[i].zone == zone || strcmp(zt[i].zone, zone) == 0)
            return i;
    zt[*nz] = (zone_t){zone, 0};
    return (*nz)++;
}

/* Take e if its zone is below cap. */
static int try_take(entry_t *e, zone_t *zt, uint32_t *nz, const cairn_place_node_t *nodes,
                    size_t cap)
{
    if (e->zslot == NO_ZONE)
        e->zslot = zone_slot(zt, nz, nodes[e->idx].zone);
    if (zt[e->zslot].count >= cap)
        return 0;
    zt[e->zslot].count++;
    e->taken = 1;
    return 1;
}

int cairn_place_pick(const uint8_t oid[16], const cairn_place_node_t *nodes, size_t nnodes,
                     size_t n, void *scratch, uint32_t *out)
{
    CAIRN_ASSERT(nnodes <= INT32_MAX);
    CAIRN_ASSERT(nnodes == 0 || ((uintptr_t)scratch % _Alignof(double)) == 0);
    entry_t *e = scratch;
    zone_t *zt = (zone_t *)(e + nnodes);
    size_t ne = 0, chosen = 0;
    uint32_t nz = 0;

    /* 1. Scores. */
    for (size_t i = 0; i < nnodes; i++) {
        if (!eligible(nodes[i].weight))
            continue;
        e[ne++] = (entry_t){cairn_place_score(oid, nodes[i].id, nodes[i].weight), nodes[i].id,
                            (uint32_t)i, NO_ZONE, 0};
    }
    if (n > ne)
        n = ne;
    if (n == 0)
        return 0;

    /* 2. Distinct zones, counted up to n; the table is reused for counts. */
    for (size_t i = 0; i < ne && nz < n; i++)
        e[i].zslot = zone_slot(zt, &nz, nodes[e[i].idx].zone);
    size_t cap = (n + nz - 1) / nz;

    /* 3. Best-first under the zone limit. Each pop moves the best remaining
     * entry to e[heap], so e[heap..ne) ends up sorted, best at e[ne - 1]. */
    for (size_t i = ne / 2; i-- > 0;)
        sift_down(e, ne, i);
    size_t heap = ne;
    while (chosen < n && heap > 0) {
        entry_t t = e[0];
        e[0] = e[--heap];
        e[heap] = t;
        sift_down(e, heap, 0);
        if (try_take(&e[heap], zt, &nz, nodes, cap))
            out[chosen++] = e[heap].idx;
    }
    if (chosen == n)
        return (int)n; /* taken in score order already */

    /* 4. Not enough nodes in the zones for the limit (the heap is empty and
     * e[] is fully sorted): relax it a step at a time. */
    for (size_t c = cap + 1; chosen < n; c++)
        for (size_t j = ne; j-- > 0 && chosen < n;)
            if (!e[j].taken && try_take(&e[j], zt, &nz, nodes, c))
                chosen++;
    chosen = 0;
    for (size_t j = ne; j-- > 0;)
        if (e[j].taken)
            out[chosen++] = e[j].idx;
    return (int)chosen;
}
