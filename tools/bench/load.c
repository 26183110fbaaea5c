/*
 * load.c — fill a bucket with many empty objects, fast, for listing
 * benchmarks.
 *
 * A listing's cost depends on the keys in the bucket, not on their data,
 * and an empty object is stored inline in its metadata record (no
 * fragments). So `load` commits the record the gateway would commit for
 * an empty PUT straight to the metadata tier, LOAD_BATCH records per
 * CAIRN_OP_META_OBJ_PUT_MANY (one Raft entry, one LMDB transaction)
 * through the ordinary client (cairn_meta_client_t: leader redirects,
 * retries, exactly-once command ids), from several threads. It skips only
 * the gateway's share of an S3 PUT (HTTP, SigV4, the bucket lookup); every
 * record goes through the Raft log and LMDB like any other.
 */
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cairn/cfg.h"
#include "cairn/err.h"
#include "cairn/meta.h"

#define EMPTY_MD5 "d41d8cd98f00b204e9800998ecf8427e" /* the ETag of an empty object */

typedef struct load_s load_t;

typedef struct {
    load_t *ld;
    pthread_t tid;
    uint64_t ok, failed;
    int first_err;
    int64_t *lat_ns;
    size_t n, cap;
} loader_t;

struct load_s {
    const bench_cfg_t *cfg;
    const cairn_cfg_t *ccfg;
    cairn_wire_key_t *key;
    _Atomic uint64_t ticket;
    int64_t deadline_ns; /* 0: none */
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Records per CAIRN_OP_META_OBJ_PUT_MANY: one Raft entry each. */
#define LOAD_BATCH 250

static void *loader_main(void *arg)
{
    loader_t *l = arg;
    load_t *ld = l->ld;
    cairn_meta_client_t mc;
    cairn_meta_client_init(&mc, ld->ccfg->meta_addr, ld->key, ld->ccfg->io_timeout_ms);
    cairn_buf_t scratch;
    cairn_buf_init(&scratch);
    cairn_obj_rec_t *recs = cairn_calloc(LOAD_BATCH, sizeof *recs);
    char(*names)[256] = cairn_calloc(LOAD_BATCH, sizeof *names);
    const char *keys[LOAD_BATCH];
    size_t lens[LOAD_BATCH];
    for (int b = 0; b < LOAD_BATCH; b++) {
        cairn_obj_rec_t *rec = &recs[b];
        rec->is_inline = 1;
        rec->inline_data = (const uint8_t *)"";
        snprintf(rec->etag, sizeof rec->etag, "%s", EMPTY_MD5);
        rec->content_type = "binary/octet-stream"; /* what the gateway stores when the client sends none */
        rec->content_type_len = strlen(rec->content_type);
    }
    for (;;) {
        if (ld->deadline_ns && bench_now_ns() >= ld->deadline_ns)
            break;
        uint64_t first = atomic_fetch_add(&ld->ticket, LOAD_BATCH);
        if (first >= ld->cfg->objects)
            break;
        uint64_t last = first + LOAD_BATCH < ld->cfg->objects ? first + LOAD_BATCH : ld->cfg->objects;
        /* one call per bucket: key i lives in bucket i mod nbuckets */
        for (uint64_t b0 = first; b0 < first + (uint64_t)ld->cfg->nbuckets && b0 < last; b0++) {
            char bucket[80];
            size_t n = 0;
            for (uint64_t i = b0; i < last; i += (uint64_t)ld->cfg->nbuckets, n++) {
                bench_key_name(ld->cfg, i, bucket, sizeof bucket, names[n], sizeof names[n]);
                keys[n] = names[n];
                lens[n] = strlen(names[n]);
                RAND_bytes(recs[n].oid, sizeof recs[n].oid);
                recs[n].mtime_ms = wall_ms();
            }
            int64_t t0 = bench_now_ns();
            int rc = cairn_meta_obj_put_many(&mc, 0, bucket, n, keys, lens, recs, &scratch);
            int64_t lat = bench_now_ns() - t0;
            if (rc != 0) {
                if (l->failed == 0)
                    l->first_err = rc;
                l->failed += n;
                continue;
            }
            if (l->n + n > l->cap) {
                l->cap = l->cap ? 2 * l->cap + n : 4096;
                l->lat_ns = cairn_realloc(l->lat_ns, l->cap * sizeof *l->lat_ns);
            }
            for (size_t k = 0; k < n; k++)
                l->lat_ns[l->n++] = lat; /* each record waited for its batch */
            l->ok += n;
        }
    }
    free(recs);
    free(names);
    cairn_buf_dispose(&scratch);
    cairn_meta_client_dispose(&mc);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The bucket(s), owned by the [s3] access key's user, as an S3 CreateBucket makes them. */
static int create_buckets(const bench_cfg_t *cfg, const cairn_cfg_t *ccfg, cairn_wire_key_t *key)
{
    cairn_meta_client_t mc;
    cairn_meta_client_init(&mc, ccfg->meta_addr, key, ccfg->io_timeout_ms);
    char secret[256], owner[256];
    int rc = cairn_meta_user_get(&mc, 0, ccfg->access_key, secret, sizeof secret, owner, sizeof owner);
    memset(secret, 0, sizeof secret);
    if (rc != 0)
        fprintf(stderr, "cairn-bench: load: the owner of access key %s: %s\n", ccfg->access_key, cairn_strerror(rc));
    for (int i = 0; rc == 0 && i < cfg->nbuckets; i++) {
        char name[80];
        if (cfg->nbuckets > 1)
            snprintf(name, sizeof name, "%s-%d", cfg->bucket, i);
        else
            snprintf(name, sizeof name, "%s", cfg->bucket);
        rc = cairn_meta_bucket_create(&mc, 0, name, owner);
        if (rc == CAIRN_EOWNED)
            rc = 0;
        if (rc != 0)
            fprintf(stderr, "cairn-bench: load: create bucket %s: %s\n", name, cairn_strerror(rc));
    }
    cairn_meta_client_dispose(&mc);
    return rc == 0 ? 0 : -1;
}

int bench_load(const bench_cfg_t *cfg, const char *conf_path, int dur_given, bench_load_t *out)
{
    memset(out, 0, sizeof *out);
    out->watched_cpu_s = -1;
    static cairn_cfg_t ccfg; /* large */
    char err[256];
    if (cairn_cfg_load(conf_path, &ccfg, err, sizeof err) != 0) {
        fprintf(stderr, "cairn-bench: load: %s\n", err);
        return -1;
    }
    load_t ld = {.cfg = cfg, .ccfg = &ccfg};
    int rc = cairn_wire_key_create(ccfg.secret, strlen(ccfg.secret), &ld.key);
    if (rc != 0) {
        fprintf(stderr, "cairn-bench: load: cluster key: %s\n", cairn_strerror(rc));
        return -1;
    }
    if (create_buckets(cfg, &ccfg, ld.key) != 0) {
        cairn_wire_key_destroy(ld.key);
        return -1;
    }
    int n = cfg->concurrency;
    loader_t *l = cairn_calloc((size_t)n, sizeof *l);
    double w0 = cfg->nwatch ? bench_watched_cpu(cfg) : -1, mb0, ms0, mb1, ms1;
    bench_machine_cpu(&mb0, &ms0);
    int64_t t0 = bench_now_ns();
    ld.deadline_ns = dur_given && cfg->count == 0 ? t0 + (int64_t)(cfg->duration_s * 1e9) : 0;
    for (int i = 0; i < n; i++) {
        l[i].ld = &ld;
        if (pthread_create(&l[i].tid, NULL, loader_main, &l[i]) != 0) {
            fprintf(stderr, "cairn-bench: cannot start a thread\n");
            exit(1);
        }
    }
    for (int i = 0; i < n; i++)
        pthread_join(l[i].tid, NULL);
    out->elapsed_s = (double)(bench_now_ns() - t0) / 1e9;
    bench_machine_cpu(&mb1, &ms1);
    out->machine_busy_s = mb1 - mb0;
    double w1 = cfg->nwatch ? bench_watched_cpu(cfg) : -1;
    out->watched_cpu_s = w0 >= 0 && w1 >= 0 ? w1 - w0 : -1;
    out->lat_ns = cairn_malloc(sizeof *out->lat_ns * (size_t)(1 + cfg->objects));
    for (int i = 0; i < n; i++) {
        out->loaded += l[i].ok;
        if (l[i].failed && !out->failed)
            out->first_err = l[i].first_err;
        out->failed += l[i].failed;
        if (l[i].n) /* a thread that got no batch has no array */
            memcpy(out->lat_ns + (out->loaded - l[i].ok), l[i].lat_ns, l[i].n * sizeof *l[i].lat_ns);
        free(l[i].lat_ns);
    }
    qsort(out->lat_ns, (size_t)out->loaded, sizeof *out->lat_ns, cmp_i64);
    free(l);
    cairn_wire_key_destroy(ld.key);
    return 0;
}
