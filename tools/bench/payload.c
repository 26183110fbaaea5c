/*
 * payload.c — object contents that a reader can check without a copy.
 *
 * Every object is a 32-byte header followed by bytes of one shared random
 * pool:
 *
 *   0..7    "CAIRNBv1"
 *   8..15   seed, little-endian (bench_obj_seed(bucket, key))
 *   16..23  object size, little-endian
 *   24..31  XXH3-64 of bytes 0..23, little-endian
 *   32..    byte i of the object is pool[(seed + i) mod period]
 *
 * Why a pool and not a hash per object: a PUT then sends straight out of
 * the pool (no generation cost per byte) and a GET is checked with memcmp
 * at memory speed, on a client that shares its cores with the cluster it
 * measures. The period (8 MiB + 4099 bytes) is odd, so two blocks of any
 * power-of-two size swapped inside an object never line up with the same
 * pool bytes: a misplaced fragment or stripe shows as a mismatch, as do a
 * wrong object (other seed) and a truncated or padded one (size field).
 */
#include <string.h>

#include <xxhash.h>
#include <xxh_x86dispatch.h>

#include "bench.h"
#include "cairn/err.h"

#define POOL_PERIOD ((size_t)(8u << 20) + 4099)
#define POOL_SLICE_MAX ((size_t)4 << 20)

static const char MAGIC[8] = {'C', 'A', 'I', 'R', 'N', 'B', 'v', '1'};

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void bench_pool_init(bench_pool_t *pool)
{
    pool->period = POOL_PERIOD;
    pool->slice_max = POOL_SLICE_MAX;
    pool->bytes = cairn_malloc(pool->period + pool->slice_max);
    uint64_t st = 0x636169726e62656eull; /* fixed: every run writes the same bytes */
    size_t i = 0;
    for (; i + 8 <= pool->period; i += 8) {
        uint64_t r = splitmix64(&st);
        memcpy(pool->bytes + i, &r, 8);
    }
    for (; i < pool->period; i++)
        pool->bytes[i] = (uint8_t)splitmix64(&st);
    memcpy(pool->bytes + pool->period, pool->bytes, pool->slice_max);
}

void bench_pool_dispose(bench_pool_t *pool)
{
    free(pool->bytes);
    pool->bytes = NULL;
}

uint64_t bench_obj_seed(const char *bucket, const char *key)
{
    XXH3_state_t *st = XXH3_createState();
    CAIRN_ASSERT(st != NULL);
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, bucket, strlen(bucket) + 1); /* with the NUL: "a"+"bc" != "ab"+"c" */
    XXH3_64bits_update(st, key, strlen(key));
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

void bench_obj_init(bench_obj_t *o, const bench_pool_t *pool, uint64_t seed, uint64_t size)
{
    o->pool = pool;
    o->seed = seed;
    o->size = size;
    o->corrupt_at = UINT64_MAX;
    o->flipped = 0;
    memcpy(o->hdr, MAGIC, 8);
    put_le64(o->hdr + 8, seed);
    put_le64(o->hdr + 16, size);
    put_le64(o->hdr + 24, XXH3_64bits(o->hdr, 24));
}

/* The object byte at off, ignoring corruption. */
static uint8_t byte_at(const bench_obj_t *o, uint64_t off)
{
    if (off < BENCH_HDR_LEN)
        return o->hdr[off];
    return o->pool->bytes[(o->seed % o->pool->period + off % o->pool->period) % o->pool->period];
}

size_t bench_obj_slice(bench_obj_t *o, uint64_t off, const uint8_t **p)
{
    CAIRN_ASSERT(off < o->size);
    uint64_t end = o->size;
    if (o->corrupt_at < o->size) {
        if (off == o->corrupt_at) {
            o->flipped = (uint8_t)(byte_at(o, off) ^ 0x5a);
            *p = &o->flipped;
            return 1;
        }
        if (off < o->corrupt_at)
            end = o->corrupt_at;
    }
    size_t n;
    if (off < BENCH_HDR_LEN) {
        *p = o->hdr + off;
        n = BENCH_HDR_LEN - (size_t)off;
    } else {
        size_t start = (size_t)((o->seed % o->pool->period + off % o->pool->period) % o->pool->period);
        *p = o->pool->bytes + start;
        n = o->pool->slice_max;
    }
    if (n > end - off)
        n = (size_t)(end - off);
    return n;
}

void bench_verify_start(bench_verify_t *v, const bench_pool_t *pool, uint64_t seed, uint64_t size)
{
    bench_obj_init(&v->obj, pool, seed, size);
    v->pos = 0;
    v->bad = 0;
    v->bad_at = 0;
    v->want = v->got = 0;
}

void bench_verify_feed(bench_verify_t *v, const uint8_t *p, size_t n)
{
    while (n > 0 && !v->bad) {
        if (v->pos >= v->obj.size) { /* longer than announced in the header */
            v->bad = 1;
            v->bad_at = v->pos;
            v->got = p[0];
            return;
        }
        const uint8_t *q;
        size_t m = bench_obj_slice(&v->obj, v->pos, &q);
        if (m > n)
            m = n;
        if (memcmp(p, q, m) != 0) {
            size_t i = 0;
            while (p[i] == q[i])
                i++;
            v->bad = 1;
            v->bad_at = v->pos + i;
            v->want = q[i];
            v->got = p[i];
            return;
        }
        v->pos += m;
        p += m;
        n -= m;
    }
}

int bench_verify_end(bench_verify_t *v, char *msg, size_t msg_len)
{
    if (v->bad) {
        if (v->bad_at >= v->obj.size)
            snprintf(msg, msg_len, "body longer than the %llu bytes expected", (unsigned long long)v->obj.size);
        else if (v->bad_at < BENCH_HDR_LEN)
            snprintf(msg, msg_len, "header byte %llu is 0x%02x, expected 0x%02x (another object, or a size mismatch)",
                     (unsigned long long)v->bad_at, v->got, v->want);
        else
            snprintf(msg, msg_len, "byte %llu of %llu is 0x%02x, expected 0x%02x", (unsigned long long)v->bad_at,
                     (unsigned long long)v->obj.size, v->got, v->want);
        return -1;
    }
    if (v->pos != v->obj.size) {
        snprintf(msg, msg_len, "body ended after %llu of %llu bytes", (unsigned long long)v->pos,
                 (unsigned long long)v->obj.size);
        return -1;
    }
    return 0;
}
