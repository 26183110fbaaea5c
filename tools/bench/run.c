/*
 * run.c — the workloads of cairn-bench and the threads that drive them.
 *
 * A run has up to four phases, each done by cfg->concurrency threads with
 * one connection apiece (the connections live across phases):
 *   buckets  create the bucket(s), one thread;
 *   prepare  upload objects o0..o<objects-1> (get, head, mixed, list, delete);
 *   measure  the workload, until cfg->count operations were started or
 *            cfg->duration_s passed (operations in flight then finish and
 *            count); only this phase is in the statistics;
 *   cleanup  delete the keys the run wrote (--cleanup).
 *
 * Work is handed out with one atomic ticket counter per phase, so a fixed
 * count is split evenly whatever the speed of each thread. The mixed
 * workload gives each thread the keys whose index is its own modulo the
 * concurrency, and tracks which of them exist, so a GET never races a
 * DELETE of the same key and every answer can be held to what S3 promises
 * (read-after-write: a key we wrote must be there, with our bytes).
 *
 * Latencies go into per-thread arrays that are merged and sorted once at
 * the end (8 bytes per operation; a million operations cost 8 MB).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "cairn/err.h"
#include "cairn/uri.h"

const char *const bench_op_names[BENCH_NOPS] = {"put", "get", "head", "delete", "list"};

typedef enum { PHASE_PREPARE, PHASE_MEASURE, PHASE_CLEANUP } phase_t;

typedef struct run_s run_t;

typedef struct worker_s {
    run_t *run;
    int id;
    pthread_t tid;
    bench_conn_t *conn;
    uint64_t rng;
    bench_opstats_t ops[BENCH_NOPS];
    bench_err_t errs[BENCH_MAX_ERR_KINDS];
    size_t nerrs;
    uint64_t verify_failures;
    char details[BENCH_MAX_DETAILS][256];
    size_t ndetails;
    uint64_t prepare_errors;
    /* mixed: which of my keys (index id + j * concurrency) exist */
    uint8_t *exists;
    uint64_t nowned, nexisting;
    /* list: where this thread is in the listing */
    char *token;
    int64_t finish_ns;
    char key[256], bucket[80];
} worker_t;

struct run_s {
    const bench_cfg_t *cfg;
    const bench_pool_t *pool;
    worker_t *w;
    phase_t phase;
    _Atomic uint64_t ticket;
    uint64_t limit;        /* tickets of this phase (UINT64_MAX: until the deadline) */
    int64_t deadline_ns;   /* 0: none */
    _Atomic uint64_t max_key; /* put: highest key index written + 1 */
};

/* ---------------------------------------------------------------- helpers */

static uint64_t rnd(worker_t *w)
{
    uint64_t z = (w->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rnd_below(worker_t *w, uint64_t n)
{
    return n ? rnd(w) % n : 0;
}

static uint64_t pick_size(worker_t *w)
{
    const bench_cfg_t *cfg = w->run->cfg;
    if (cfg->size_max <= cfg->size_min)
        return cfg->size_min;
    return cfg->size_min + rnd_below(w, cfg->size_max - cfg->size_min + 1);
}

void bench_key_name(const bench_cfg_t *cfg, uint64_t i, char *bucket, size_t bucket_len, char *key, size_t key_len)
{
    if (cfg->nbuckets > 1)
        snprintf(bucket, bucket_len, "%s-%llu", cfg->bucket, (unsigned long long)(i % (uint64_t)cfg->nbuckets));
    else
        snprintf(bucket, bucket_len, "%s", cfg->bucket);
    snprintf(key, key_len, "%s/o%llu", cfg->prefix, (unsigned long long)i);
}

/* Set w->bucket and w->key for key index i. */
static void name_key(worker_t *w, uint64_t i)
{
    bench_key_name(w->run->cfg, i, w->bucket, sizeof w->bucket, w->key, sizeof w->key);
}

static void stats_add(bench_opstats_t *s, int64_t lat, int64_t ttfb)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->lat_ns = cairn_realloc(s->lat_ns, s->cap * sizeof *s->lat_ns);
        s->ttfb_ns = cairn_realloc(s->ttfb_ns, s->cap * sizeof *s->ttfb_ns);
    }
    s->lat_ns[s->n] = lat;
    s->ttfb_ns[s->n] = ttfb;
    s->n++;
}

static void count_error(bench_err_t *errs, size_t *nerrs, const char *label, uint64_t n)
{
    for (size_t i = 0; i < *nerrs; i++)
        if (strcmp(errs[i].label, label) == 0) {
            errs[i].count += n;
            return;
        }
    if (*nerrs == BENCH_MAX_ERR_KINDS - 1 && strcmp(label, "other") != 0) {
        count_error(errs, nerrs, "other", n);
        return;
    }
    snprintf(errs[*nerrs].label, BENCH_ERR_LABEL, "%s", label);
    errs[*nerrs].count = n;
    (*nerrs)++;
}

static void record_error(worker_t *w, const bench_resp_t *r, const char *what)
{
    char label[BENCH_ERR_LABEL];
    if (what != NULL)
        snprintf(label, sizeof label, "%s", what);
    else if (r->status == 0)
        snprintf(label, sizeof label, "net: %.70s", r->neterr);
    else if (r->code[0])
        snprintf(label, sizeof label, "%d %s", r->status, r->code);
    else
        snprintf(label, sizeof label, "%d", r->status);
    count_error(w->errs, &w->nerrs, label, 1);
}

/* ---------------------------------------------------------------- GET verification sink */

typedef struct {
    const bench_pool_t *pool;
    uint64_t seed;
    const bench_resp_t *resp;
    bench_verify_t v;
    int started;
    uint8_t head[BENCH_HDR_LEN];
    size_t head_len;
} check_t;

static void check_begin(check_t *k, uint64_t size)
{
    bench_verify_start(&k->v, k->pool, k->seed, size);
    k->started = 1;
}

static void on_body(void *arg, const uint8_t *p, size_t n)
{
    check_t *k = arg;
    if (!k->started && k->resp->content_length != UINT64_MAX)
        check_begin(k, k->resp->content_length);
    if (!k->started) {
        /* No Content-Length (chunked): take the size from the object's own header. */
        size_t m = BENCH_HDR_LEN - k->head_len;
        if (m > n)
            m = n;
        memcpy(k->head + k->head_len, p, m);
        k->head_len += m;
        if (k->head_len < BENCH_HDR_LEN)
            return;
        uint64_t size = 0;
        for (int i = 7; i >= 0; i--)
            size = size << 8 | k->head[16 + i];
        check_begin(k, size);
        bench_verify_feed(&k->v, k->head, BENCH_HDR_LEN);
        p += m;
        n -= m;
    }
    bench_verify_feed(&k->v, p, n);
}

/* ---------------------------------------------------------------- operations */

/* Each returns 1 on success, 0 on failure (recorded). */

static int op_put(worker_t *w, uint64_t idx, int measured)
{
    const bench_cfg_t *cfg = w->run->cfg;
    name_key(w, idx);
    bench_obj_t obj;
    uint64_t size = pick_size(w);
    bench_obj_init(&obj, w->run->pool, bench_obj_seed(w->bucket, w->key), size);
    if (cfg->corrupt && size > 0)
        obj.corrupt_at = size / 2;
    bench_req_t rq = {.method = "PUT", .bucket = w->bucket, .key = w->key, .body = &obj};
    bench_resp_t r;
    int64_t t0 = bench_now_ns();
    int rc = bench_request(w->conn, &rq, &r);
    int64_t lat = bench_now_ns() - t0;
    int ok = rc == 0 && r.status == 200;
    if (!measured) {
        if (!ok) {
            w->prepare_errors++;
            if (w->prepare_errors <= 3) {
                if (rc == 0)
                    fprintf(stderr, "cairn-bench: prepare PUT %s/%s: HTTP %d %s\n", w->bucket, w->key, r.status,
                            r.code);
                else
                    fprintf(stderr, "cairn-bench: prepare PUT %s/%s: %s\n", w->bucket, w->key, r.neterr);
            }
        }
        return ok;
    }
    bench_opstats_t *s = &w->ops[BENCH_OP_PUT];
    if (ok) {
        s->ok++;
        s->bytes += size;
        stats_add(s, lat, r.ttfb_ns);
    } else {
        s->errors++;
        record_error(w, &r, NULL);
    }
    return ok;
}

static int op_get(worker_t *w, uint64_t idx, int head)
{
    const bench_cfg_t *cfg = w->run->cfg;
    name_key(w, idx);
    check_t k = {.pool = w->run->pool, .seed = bench_obj_seed(w->bucket, w->key)};
    bench_resp_t r;
    k.resp = &r;
    int check = cfg->verify && !head;
    bench_req_t rq = {.method = head ? "HEAD" : "GET", .bucket = w->bucket, .key = w->key,
                      .sink = check ? on_body : NULL, .sink_arg = &k};
    int64_t t0 = bench_now_ns();
    int rc = bench_request(w->conn, &rq, &r);
    int64_t lat = bench_now_ns() - t0;
    bench_opstats_t *s = &w->ops[head ? BENCH_OP_HEAD : BENCH_OP_GET];
    if (rc != 0 || r.status != 200) {
        s->errors++;
        record_error(w, &r, NULL);
        return 0;
    }
    if (check) {
        if (!k.started)
            check_begin(&k, r.content_length == UINT64_MAX ? 0 : r.content_length);
        char msg[160];
        if (bench_verify_end(&k.v, msg, sizeof msg) != 0) {
            s->errors++;
            w->verify_failures++;
            record_error(w, &r, "verify: content mismatch");
            if (w->ndetails < BENCH_MAX_DETAILS)
                snprintf(w->details[w->ndetails++], sizeof w->details[0], "%.60s/%.80s: %.100s", w->bucket, w->key, msg);
            return 0;
        }
    }
    s->ok++;
    s->bytes += head ? 0 : r.body_bytes;
    stats_add(s, lat, r.ttfb_ns);
    return 1;
}

static int op_delete(worker_t *w, uint64_t idx, int measured)
{
    name_key(w, idx);
    bench_req_t rq = {.method = "DELETE", .bucket = w->bucket, .key = w->key};
    bench_resp_t r;
    int64_t t0 = bench_now_ns();
    int rc = bench_request(w->conn, &rq, &r);
    int64_t lat = bench_now_ns() - t0;
    int ok = rc == 0 && (r.status == 204 || r.status == 200);
    if (!measured)
        return ok;
    bench_opstats_t *s = &w->ops[BENCH_OP_DELETE];
    if (ok) {
        s->ok++;
        stats_add(s, lat, r.ttfb_ns);
    } else {
        s->errors++;
        record_error(w, &r, NULL);
    }
    return ok;
}

/* Copy the text of the first <tag>...</tag> in xml into out, decoding the five XML entities. 0 if found. */
static int xml_text(const char *xml, const char *tag, char *out, size_t outlen)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *s = strstr(xml, open);
    if (s == NULL)
        return -1;
    s += strlen(open);
    const char *e = strstr(s, close);
    if (e == NULL)
        return -1;
    size_t o = 0;
    static const struct { const char *ent; char c; } ents[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    while (s < e && o + 1 < outlen) {
        int done = 0;
        if (*s == '&')
            for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++) {
                size_t l = strlen(ents[i].ent);
                if ((size_t)(e - s) >= l && memcmp(s, ents[i].ent, l) == 0) {
                    out[o++] = ents[i].c;
                    s += l;
                    done = 1;
                    break;
                }
            }
        if (!done)
            out[o++] = *s++;
    }
    out[o] = '\0';
    return 0;
}

/* One ListObjectsV2 page, continuing where this thread left off (bucket 0 only). */
static int op_list(worker_t *w)
{
    const bench_cfg_t *cfg = w->run->cfg;
    char bucket[80];
    if (cfg->nbuckets > 1)
        snprintf(bucket, sizeof bucket, "%s-0", cfg->bucket);
    else
        snprintf(bucket, sizeof bucket, "%s", cfg->bucket);
    char pfx[300];
    snprintf(pfx, sizeof pfx, "%s/", cfg->prefix);
    size_t tl = w->token ? strlen(w->token) : 0;
    char *q = cairn_malloc(3 * (tl + strlen(pfx)) + 128);
    char *o = q;
    if (w->token) {
        o += sprintf(o, "continuation-token=");
        o += cairn_uri_encode(w->token, tl, o, 0);
        *o++ = '&';
    }
    o += sprintf(o, "list-type=2&max-keys=%d&prefix=", cfg->max_keys);
    cairn_uri_encode(pfx, strlen(pfx), o, 0);

    bench_req_t rq = {.method = "GET", .bucket = bucket, .query = q, .keep_body = 1};
    bench_resp_t r;
    int64_t t0 = bench_now_ns();
    int rc = bench_request(w->conn, &rq, &r);
    int64_t lat = bench_now_ns() - t0;
    free(q);
    bench_opstats_t *s = &w->ops[BENCH_OP_LIST];
    if (rc != 0 || r.status != 200 || r.body == NULL) {
        s->errors++;
        record_error(w, &r, rc == 0 && r.status == 200 ? "list: empty body" : NULL);
        free(w->token);
        w->token = NULL;
        return 0;
    }
    uint64_t keys = 0;
    for (const char *p = r.body; (p = strstr(p, "<Key>")) != NULL; p += 5)
        keys++;
    char trunc[8] = "", next[1024];
    xml_text(r.body, "IsTruncated", trunc, sizeof trunc);
    free(w->token);
    w->token = NULL;
    if (strcmp(trunc, "true") == 0 && xml_text(r.body, "NextContinuationToken", next, sizeof next) == 0)
        w->token = cairn_strndup(next, strlen(next));
    s->ok++;
    s->bytes += r.body_bytes;
    s->items += keys;
    stats_add(s, lat, r.ttfb_ns);
    return 1;
}

/* ---------------------------------------------------------------- mixed */

static uint64_t owned_index(worker_t *w, uint64_t j)
{
    return (uint64_t)w->id + j * (uint64_t)w->run->cfg->concurrency;
}

/* A random existing key of mine (its slot j), or UINT64_MAX if none. */
static uint64_t pick_existing(worker_t *w)
{
    if (w->nexisting == 0)
        return UINT64_MAX;
    uint64_t j = rnd_below(w, w->nowned);
    while (!w->exists[j]) /* expected tries: nowned / nexisting */
        j = (j + 1) % w->nowned;
    return j;
}

static void mixed_op(worker_t *w)
{
    const bench_cfg_t *cfg = w->run->cfg;
    unsigned total = 0;
    for (int i = 0; i < BENCH_NOPS; i++)
        total += cfg->mix[i];
    uint64_t r = rnd_below(w, total);
    int op = 0;
    while (r >= cfg->mix[op]) {
        r -= cfg->mix[op];
        op++;
    }
    if (op == BENCH_OP_LIST) {
        op_list(w);
        return;
    }
    uint64_t j = op == BENCH_OP_PUT ? rnd_below(w, w->nowned) : pick_existing(w);
    if (j == UINT64_MAX) { /* nothing left to read or delete: write instead */
        op = BENCH_OP_PUT;
        j = rnd_below(w, w->nowned);
    }
    uint64_t idx = owned_index(w, j);
    switch (op) {
    case BENCH_OP_PUT:
        if (op_put(w, idx, 1) && !w->exists[j]) {
            w->exists[j] = 1;
            w->nexisting++;
        }
        break;
    case BENCH_OP_GET:
    case BENCH_OP_HEAD:
        op_get(w, idx, op == BENCH_OP_HEAD);
        break;
    case BENCH_OP_DELETE:
        if (op_delete(w, idx, 1)) {
            w->exists[j] = 0;
            w->nexisting--;
        }
        break;
    }
}

/* ---------------------------------------------------------------- threads */

static int take_ticket(run_t *run, uint64_t *t)
{
    if (run->deadline_ns && bench_now_ns() >= run->deadline_ns)
        return 0;
    *t = atomic_fetch_add(&run->ticket, 1);
    return *t < run->limit;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    run_t *run = w->run;
    const bench_cfg_t *cfg = run->cfg;
    uint64_t t;
    while (take_ticket(run, &t)) {
        switch (run->phase) {
        case PHASE_PREPARE:
            op_put(w, t, 0);
            break;
        case PHASE_CLEANUP:
            op_delete(w, t, 0);
            break;
        case PHASE_MEASURE:
            switch (cfg->workload) {
            case BENCH_WL_PUT: {
                uint64_t idx = cfg->objects ? t % cfg->objects : t;
                op_put(w, idx, 1);
                uint64_t want = idx + 1, cur = atomic_load(&run->max_key);
                while (cur < want && !atomic_compare_exchange_weak(&run->max_key, &cur, want))
                    ;
                break;
            }
            case BENCH_WL_GET:
            case BENCH_WL_HEAD:
                op_get(w, rnd_below(w, cfg->objects), cfg->workload == BENCH_WL_HEAD);
                break;
            case BENCH_WL_MIXED:
                mixed_op(w);
                break;
            case BENCH_WL_LIST:
                op_list(w);
                break;
            case BENCH_WL_DELETE:
                op_delete(w, t, 1);
                break;
            }
            break;
        }
    }
    w->finish_ns = bench_now_ns();
    return NULL;
}

static void run_phase(run_t *run, phase_t phase, uint64_t limit, int64_t deadline_ns)
{
    run->phase = phase;
    run->limit = limit;
    run->deadline_ns = deadline_ns;
    atomic_store(&run->ticket, 0);
    int n = run->cfg->concurrency;
    for (int i = 0; i < n; i++)
        if (pthread_create(&run->w[i].tid, NULL, worker_main, &run->w[i]) != 0) {
            fprintf(stderr, "cairn-bench: cannot start a thread\n");
            exit(1);
        }
    for (int i = 0; i < n; i++)
        pthread_join(run->w[i].tid, NULL);
}

static int create_buckets(run_t *run)
{
    const bench_cfg_t *cfg = run->cfg;
    worker_t *w = &run->w[0];
    for (int i = 0; i < cfg->nbuckets; i++) {
        char name[80];
        if (cfg->nbuckets > 1)
            snprintf(name, sizeof name, "%s-%d", cfg->bucket, i);
        else
            snprintf(name, sizeof name, "%s", cfg->bucket);
        bench_req_t rq = {.method = "PUT", .bucket = name};
        bench_resp_t r;
        if (bench_request(w->conn, &rq, &r) != 0) {
            fprintf(stderr, "cairn-bench: create bucket %s: %s\n", name, r.neterr);
            return -1;
        }
        if (r.status != 200 && strcmp(r.code, "BucketAlreadyOwnedByYou") != 0) {
            fprintf(stderr, "cairn-bench: create bucket %s: HTTP %d %s\n", name, r.status, r.code);
            return -1;
        }
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t bench_quantile(const int64_t *sorted, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)(q * (double)n + 0.999999); /* nearest rank, 1-based */
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static void merge(run_t *run, bench_result_t *res)
{
    for (int i = 0; i < run->cfg->concurrency; i++) {
        worker_t *w = &run->w[i];
        for (int op = 0; op < BENCH_NOPS; op++) {
            bench_opstats_t *d = &res->ops[op], *s = &w->ops[op];
            d->ok += s->ok;
            d->errors += s->errors;
            d->bytes += s->bytes;
            d->items += s->items;
            if (s->n) {
                d->lat_ns = cairn_realloc(d->lat_ns, (d->n + s->n) * sizeof *d->lat_ns);
                d->ttfb_ns = cairn_realloc(d->ttfb_ns, (d->n + s->n) * sizeof *d->ttfb_ns);
                memcpy(d->lat_ns + d->n, s->lat_ns, s->n * sizeof *s->lat_ns);
                memcpy(d->ttfb_ns + d->n, s->ttfb_ns, s->n * sizeof *s->ttfb_ns);
                d->n += s->n;
                d->cap = d->n;
            }
        }
        for (size_t e = 0; e < w->nerrs; e++)
            count_error(res->errs, &res->nerrs, w->errs[e].label, w->errs[e].count);
        res->verify_failures += w->verify_failures;
        for (size_t d = 0; d < w->ndetails && res->ndetails < BENCH_MAX_DETAILS; d++)
            memcpy(res->details[res->ndetails++], w->details[d], sizeof w->details[d]);
        res->prepare_errors += w->prepare_errors;
        res->connects += bench_conn_connects(w->conn);
    }
    for (int op = 0; op < BENCH_NOPS; op++) {
        bench_opstats_t *d = &res->ops[op];
        if (d->n) {
            qsort(d->lat_ns, d->n, sizeof *d->lat_ns, cmp_i64);
            qsort(d->ttfb_ns, d->n, sizeof *d->ttfb_ns, cmp_i64);
        }
    }
}

double bench_watched_cpu(const bench_cfg_t *cfg)
{
    double hz = (double)sysconf(_SC_CLK_TCK), sum = 0;
    for (int i = 0; i < cfg->nwatch; i++) {
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%d/stat", cfg->watch_pids[i]);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            return -1;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* after "pid (comm) ": state is field 3; utime and stime are fields 14 and 15 */
        char *p = strrchr(buf, ')');
        unsigned long long ut, st;
        if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
            return -1;
        sum += (double)(ut + st) / hz;
    }
    return sum;
}

void bench_machine_cpu(double *busy, double *steal)
{
    *busy = *steal = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return;
    unsigned long long v[8] = {0};
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
               &v[7]) == 8) {
        double hz = (double)sysconf(_SC_CLK_TCK);
        /* user nice system idle iowait irq softirq steal: busy excludes idle and iowait */
        *busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / hz;
        *steal = (double)v[7] / hz;
    }
    fclose(f);
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int bench_run(const bench_cfg_t *cfg, const bench_pool_t *pool, bench_result_t *res)
{
    memset(res, 0, sizeof *res);
    run_t run = {.cfg = cfg, .pool = pool};
    int n = cfg->concurrency;
    run.w = cairn_calloc((size_t)n, sizeof *run.w);
    for (int i = 0; i < n; i++) {
        worker_t *w = &run.w[i];
        w->run = &run;
        w->id = i;
        w->conn = bench_conn_create(&cfg->target);
        w->rng = cfg->rng_seed * 0x100000001b3ull + (uint64_t)i * 0x9e3779b97f4a7c15ull;
        if (cfg->workload == BENCH_WL_MIXED) {
            w->nowned = cfg->objects > (uint64_t)i ? (cfg->objects - (uint64_t)i + (uint64_t)n - 1) / (uint64_t)n : 0;
            w->exists = cairn_calloc(w->nowned ? w->nowned : 1, 1);
        }
    }
    int rc = 0;
    if (cfg->create_bucket && create_buckets(&run) != 0) {
        rc = -1;
        goto out;
    }

    if (cfg->workload != BENCH_WL_PUT && cfg->prepare && cfg->objects > 0) {
        if (!cfg->quiet)
            fprintf(stderr, "cairn-bench: preparing %llu objects...\n", (unsigned long long)cfg->objects);
        int64_t t0 = bench_now_ns();
        run_phase(&run, PHASE_PREPARE, cfg->objects, 0);
        res->prepare_s = (double)(bench_now_ns() - t0) / 1e9;
        uint64_t perr = 0;
        for (int i = 0; i < n; i++)
            perr += run.w[i].prepare_errors;
        if (perr) {
            fprintf(stderr, "cairn-bench: %llu of %llu uploads failed while preparing\n", (unsigned long long)perr,
                    (unsigned long long)cfg->objects);
            rc = -1;
            goto out;
        }
    }
    if (cfg->workload == BENCH_WL_MIXED) /* prepared now, or (--no-prepare) by an earlier run */
        for (int i = 0; i < n; i++) {
            worker_t *w = &run.w[i];
            memset(w->exists, 1, w->nowned);
            w->nexisting = w->nowned;
        }

    uint64_t limit = cfg->count ? cfg->count : UINT64_MAX;
    if (cfg->workload == BENCH_WL_DELETE && limit > cfg->objects)
        limit = cfg->objects;
    struct rusage ru0, ru1;
    double w0 = bench_watched_cpu(cfg), mb0, ms0, mb1, ms1;
    bench_machine_cpu(&mb0, &ms0);
    getrusage(RUSAGE_SELF, &ru0);
    int64_t start = bench_now_ns();
    int64_t deadline = cfg->count ? 0 : start + (int64_t)(cfg->duration_s * 1e9);
    run_phase(&run, PHASE_MEASURE, limit, deadline);
    int64_t end = start;
    for (int i = 0; i < n; i++)
        if (run.w[i].finish_ns > end)
            end = run.w[i].finish_ns;
    getrusage(RUSAGE_SELF, &ru1);
    bench_machine_cpu(&mb1, &ms1);
    double w1 = bench_watched_cpu(cfg);
    res->watched_cpu_s = w0 >= 0 && w1 >= 0 ? w1 - w0 : -1;
    res->machine_busy_s = mb1 - mb0;
    res->machine_steal_s = ms1 - ms0;
    res->elapsed_s = (double)(end - start) / 1e9;
    res->cpu_user_s = tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime);
    res->cpu_sys_s = tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime);
    res->keys = atomic_load(&run.max_key);

    if (cfg->cleanup) {
        uint64_t nkeys = cfg->workload == BENCH_WL_PUT ? res->keys : cfg->objects;
        if (cfg->workload != BENCH_WL_DELETE && nkeys > 0)
            run_phase(&run, PHASE_CLEANUP, nkeys, 0);
    }

out:
    merge(&run, res);
    for (int i = 0; i < n; i++) {
        worker_t *w = &run.w[i];
        bench_conn_destroy(w->conn);
        for (int op = 0; op < BENCH_NOPS; op++) {
            free(w->ops[op].lat_ns);
            free(w->ops[op].ttfb_ns);
        }
        free(w->exists);
        free(w->token);
    }
    free(run.w);
    return rc;
}

void bench_result_dispose(bench_result_t *res)
{
    for (int op = 0; op < BENCH_NOPS; op++) {
        free(res->ops[op].lat_ns);
        free(res->ops[op].ttfb_ns);
    }
    memset(res, 0, sizeof *res);
}
