/*
 * bench.h — the shared types of cairn-bench, the S3 load generator.
 *
 * cairn-bench speaks plain HTTP/1.1 with keep-alive to one S3 endpoint, one
 * blocking connection per thread, and signs every request itself with SigV4
 * (header auth, x-amz-content-sha256: UNSIGNED-PAYLOAD, so the client never
 * hashes a body); with --raw it sends the same requests unsigned, to measure
 * a plain web server with the same client. It is built from these files:
 *   client.c   the connection: SigV4 signing, sending a request with a
 *              streamed body, reading the response into a sink
 *   payload.c  object contents that can be checked without storing them:
 *              a 32-byte header (magic, seed, size, checksum) followed by
 *              bytes of a shared random pool at an offset chosen by the seed
 *   run.c      the workloads (put, get, head, mixed, list, delete), the
 *              worker threads, per-thread latency and error records
 *   local.c    what does not go through S3: `files` (the objects as files,
 *              for a web server to serve), `memcpy` (a reference figure)
 *   load.c     `load`: empty objects written straight into the metadata
 *              tier, to fill a bucket with many keys quickly
 *   main.c     options, the report (text or JSON), the exit status
 *
 * Caveats:
 *   - http:// only; no TLS, no proxies, no 100-continue, no aws-chunked.
 *   - The client shares the machine with whatever it measures. It reports
 *     its own CPU time so the reader can tell.
 *   - The seed of an object is a hash of its bucket and key, so any GET can
 *     be checked without knowing who wrote the object or how large it was
 *     (the size comes from Content-Length and is checked against the
 *     header). Two writers of one key with different sizes are told apart.
 */
#ifndef CAIRN_BENCH_H
#define CAIRN_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define BENCH_HDR_LEN 32          /* bytes of the object header */
#define BENCH_MAX_BUCKETS 1024
#define BENCH_ERR_LABEL 80        /* longest error label kept, with its NUL */

/* ---------------------------------------------------------------- payload.c */

/*
 * The random pool every object's bytes come from. Read-only after
 * bench_pool_init(), shared by all threads.
 */
typedef struct bench_pool_s {
    uint8_t *bytes;   /* period + slice_max bytes: bytes[i] == bytes[i % period] */
    size_t period;    /* odd, not a multiple of any power of two block size */
    size_t slice_max; /* longest contiguous slice bench_obj_slice() hands out */
} bench_pool_t;

/* Fill the pool (about 12 MiB; a few milliseconds). Aborts on out of memory. */
void bench_pool_init(bench_pool_t *pool);
void bench_pool_dispose(bench_pool_t *pool);

/* The seed of the object stored under bucket/key: a 64-bit hash of both. */
uint64_t bench_obj_seed(const char *bucket, const char *key);

/*
 * One object's expected contents, as a byte stream: header then pool bytes.
 * corrupt_at: when < size, the byte at that offset is flipped (to write
 * objects that a later verifying GET must reject); UINT64_MAX otherwise.
 */
typedef struct bench_obj_s {
    const bench_pool_t *pool;
    uint64_t seed, size;
    uint64_t corrupt_at;
    uint8_t hdr[BENCH_HDR_LEN];
    uint8_t flipped; /* the corrupt byte */
} bench_obj_t;

void bench_obj_init(bench_obj_t *o, const bench_pool_t *pool, uint64_t seed, uint64_t size);

/*
 * Contiguous bytes of the object from offset off (< size): sets *p and
 * returns their count (>= 1, at most pool->slice_max). *p points into o or
 * the pool and lives as long as they do. O(1).
 */
size_t bench_obj_slice(bench_obj_t *o, uint64_t off, const uint8_t **p);

/*
 * Incremental check of a body against an expected object. Feed the body in
 * order with bench_verify_feed(); the first difference is remembered
 * (offset and bytes) and later data is ignored. bench_verify_end() returns
 * 0 if exactly o->size matching bytes were fed, -1 otherwise, with a
 * description in msg (NUL-terminated, at most msg_len bytes).
 */
typedef struct bench_verify_s {
    bench_obj_t obj;
    uint64_t pos;
    int bad;
    uint64_t bad_at;
    uint8_t want, got;
} bench_verify_t;

void bench_verify_start(bench_verify_t *v, const bench_pool_t *pool, uint64_t seed, uint64_t size);
void bench_verify_feed(bench_verify_t *v, const uint8_t *p, size_t n);
int bench_verify_end(bench_verify_t *v, char *msg, size_t msg_len);

/* ---------------------------------------------------------------- client.c */

/* Where to connect and how to sign. Strings are owned by main.c and outlive every connection. */
typedef struct bench_target_s {
    char host[256];     /* as in the Host header: "127.0.0.1:9000" */
    char addr[256];     /* host part to resolve */
    char port[16];
    const char *access_key, *secret_key, *region;
    int timeout_ms;     /* send/receive timeout of each socket call */
    int raw;            /* send requests unsigned (a plain HTTP server, not S3) */
} bench_target_t;

/* Parse "http://host[:port][/]" into t->host/addr/port. 0, or -1 with a message on stderr. */
int bench_target_parse(bench_target_t *t, const char *endpoint);

/*
 * A response body consumer: called with successive pieces of the body as
 * they arrive (pieces are valid only during the call).
 */
typedef void (*bench_sink_fn)(void *arg, const uint8_t *p, size_t n);

/* One request. Strings are borrowed for the duration of bench_request(). */
typedef struct bench_req_s {
    const char *method;     /* "GET", "PUT", "HEAD", "DELETE" */
    const char *bucket;     /* NULL: the service ("/") */
    const char *key;        /* NULL: the bucket itself; raw (encoded here) */
    const char *query;      /* canonical query (sorted, encoded) or NULL */
    bench_obj_t *body;      /* PUT body, or NULL for none */
    bench_sink_fn sink;     /* where a 2xx body goes; NULL: discarded */
    void *sink_arg;
    int keep_body;          /* copy the body (first 1 MiB) into resp->body as well */
} bench_req_t;

typedef struct bench_resp_s {
    int status;             /* HTTP status; 0 when the exchange failed */
    char code[64];          /* S3 error code from the XML body of a non-2xx answer, or "" */
    char neterr[96];        /* what failed when status == 0 */
    uint64_t content_length;/* as announced, UINT64_MAX if none */
    uint64_t body_bytes;    /* body bytes received */
    int64_t ttfb_ns;        /* from the first byte sent to the first byte of the response */
    char *body;             /* keep_body: NUL-terminated copy, owned by the connection until the next request */
    size_t body_len;
} bench_resp_t;

typedef struct bench_conn_s bench_conn_t;

/* A connection that connects lazily and reconnects after errors or "Connection: close". */
bench_conn_t *bench_conn_create(const bench_target_t *t);
void bench_conn_destroy(bench_conn_t *c);
/* How many TCP connections this one has opened. */
uint64_t bench_conn_connects(const bench_conn_t *c);

/*
 * Sign and send rq, read the whole response. Returns 0 when an HTTP
 * response was read (any status; see resp->status), -1 when the exchange
 * failed (resp->neterr says why; the connection is closed and the next
 * request reconnects). A request that fails on a reused connection before
 * any response byte arrived is retried once on a fresh one (the server may
 * have closed an idle connection).
 */
int bench_request(bench_conn_t *c, const bench_req_t *rq, bench_resp_t *resp);

/* Monotonic clock in nanoseconds. */
int64_t bench_now_ns(void);

/* ---------------------------------------------------------------- run.c */

/* What one request did, for the statistics. */
typedef enum {
    BENCH_OP_PUT = 0,
    BENCH_OP_GET,
    BENCH_OP_HEAD,
    BENCH_OP_DELETE,
    BENCH_OP_LIST,
    BENCH_NOPS
} bench_op_t;

extern const char *const bench_op_names[BENCH_NOPS];

/* The workload: what the measured phase does. */
typedef enum {
    BENCH_WL_PUT = 0, /* PUT keys o0, o1, ... (wrapping at --objects when given) */
    BENCH_WL_GET,     /* GET random keys among --objects prepared ones */
    BENCH_WL_MIXED,   /* random operations by weight over prepared keys */
    BENCH_WL_LIST,    /* ListObjectsV2 pages over the prepared keys, start to end, again and again */
    BENCH_WL_DELETE,  /* DELETE each prepared key once */
    BENCH_WL_HEAD,    /* HEAD random keys among --objects prepared ones */
} bench_workload_t;

/* Everything a run needs. Filled by main.c; read-only during the run. */
typedef struct bench_cfg_s {
    bench_workload_t workload;
    bench_target_t target;
    const char *bucket;        /* name, or base name when nbuckets > 1 ("NAME-0", "NAME-1", ...) */
    int nbuckets;
    const char *prefix;        /* keys are PREFIX/o<index> */
    uint64_t size_min, size_max; /* object size, uniform in [min, max] */
    int concurrency;           /* threads, one connection each */
    double duration_s;         /* measured phase length when count == 0 */
    uint64_t count;            /* total operations of the measured phase; 0: use duration */
    uint64_t objects;          /* keys prepared / key space; 0 for put: unique keys */
    int prepare;               /* upload the objects before a get/mixed/list/delete phase */
    unsigned mix[BENCH_NOPS];  /* weights of the mixed workload */
    int max_keys;              /* page size of list */
    int verify;                /* check GET bodies */
    uint64_t corrupt;          /* put: flip one byte of every object (1) to test verification */
    int create_bucket;         /* create the bucket(s) first (an existing one of ours is fine) */
    int cleanup;               /* delete the keys this run wrote at the end */
    uint64_t rng_seed;         /* for key and operation choices */
    int quiet;                 /* no progress lines on stderr */
    const int *watch_pids;     /* processes whose CPU time the measured phase reports (the server's) */
    int nwatch;
} bench_cfg_t;

/* Statistics of one operation kind over the measured phase. */
typedef struct bench_opstats_s {
    uint64_t ok, errors;
    uint64_t bytes;            /* body bytes moved by successful operations */
    uint64_t items;            /* list: keys returned */
    int64_t *lat_ns;           /* latencies of successful operations (sorted after the run) */
    int64_t *ttfb_ns;          /* time to first response byte, likewise */
    size_t n, cap;
} bench_opstats_t;

typedef struct bench_err_s {
    char label[BENCH_ERR_LABEL]; /* "503 SlowDown", "404 NoSuchKey", "verify", "net: connect: ..." */
    uint64_t count;
} bench_err_t;

#define BENCH_MAX_ERR_KINDS 32
#define BENCH_MAX_DETAILS 5

typedef struct bench_result_s {
    double elapsed_s;          /* measured phase, first start to last finish */
    double prepare_s;
    bench_opstats_t ops[BENCH_NOPS];
    bench_err_t errs[BENCH_MAX_ERR_KINDS]; /* of the measured phase; the last slot collects "other" */
    size_t nerrs;
    uint64_t prepare_errors;
    uint64_t verify_failures;
    char details[BENCH_MAX_DETAILS][256]; /* first verification failures, with their keys */
    size_t ndetails;
    uint64_t keys;             /* put: distinct keys written */
    uint64_t connects;         /* TCP connections opened, all phases */
    double cpu_user_s, cpu_sys_s; /* this process during the measured phase */
    double watched_cpu_s;      /* user+sys of cfg->watch_pids during the measured phase (-1: unreadable) */
    double machine_busy_s;     /* all CPUs, non-idle time during the measured phase (from /proc/stat) */
    double machine_steal_s;    /* of which stolen by the hypervisor */
} bench_result_t;

/*
 * Run cfg: create buckets, prepare, the measured phase, cleanup. Fills
 * *res (release with bench_result_dispose). Returns 0, or -1 when a set-up
 * step failed (bucket creation, preparation) with a message on stderr; the
 * measured phase's own errors are counted in res, not returned.
 */
int bench_run(const bench_cfg_t *cfg, const bench_pool_t *pool, bench_result_t *res);
void bench_result_dispose(bench_result_t *res);
/* user+sys seconds of cfg->watch_pids (all their threads) so far, or -1 if one is gone. */
double bench_watched_cpu(const bench_cfg_t *cfg);
/* Non-idle and stolen CPU seconds of the whole machine so far (/proc/stat); 0 if unreadable. */
void bench_machine_cpu(double *busy, double *steal);
/* Set bucket (of bucket_len bytes) and key (of key_len) to the names of key index i under cfg. */
void bench_key_name(const bench_cfg_t *cfg, uint64_t i, char *bucket, size_t bucket_len, char *key, size_t key_len);

/* ---------------------------------------------------------------- local.c */

/*
 * Write objects 0..cfg->objects-1 as files DIR/BUCKET/PREFIX/o<i>, with the
 * bytes a PUT of the same key would send, so that a web server serving DIR
 * answers GET /BUCKET/PREFIX/o<i> with what `get --raw` can verify.
 * Directories are created as needed. 0, or -1 with a message on stderr.
 */
int bench_files(const bench_cfg_t *cfg, const bench_pool_t *pool, const char *dir);

/* memcpy bandwidth of one thread, in GB/s (10^9 bytes per second), for a
 * buffer that fits in the L2 cache (256 KiB) and for one that does not
 * (64 MiB). Takes about a second. */
void bench_memcpy_speed(double *in_cache_gb_s, double *memory_gb_s);

/* ---------------------------------------------------------------- load.c */

/* What a load did. */
typedef struct bench_load_s {
    uint64_t loaded;        /* records committed */
    uint64_t failed;
    int first_err;          /* cairn error of the first failure */
    double elapsed_s;
    double watched_cpu_s;   /* -1 when not watched or unreadable */
    double machine_busy_s;
    int64_t *lat_ns;        /* sorted commit latencies, `loaded` of them */
} bench_load_t;

/*
 * Fill cfg->bucket with empty objects PREFIX/o0 .. o<objects-1>, committed
 * straight to the metadata tier of the cluster configured in conf_path
 * (its [cluster] meta and secret, its [s3] access_key as the bucket's
 * owner), from cfg->concurrency threads with one metadata client each.
 * The records are what the gateway commits for an empty PUT (inline, no
 * data, the MD5 of nothing as ETag). The bucket is created if missing.
 * Stops early after cfg->duration_s when cfg->count is 0 and the duration
 * was given (dur_given). Returns 0, or -1 when set-up failed (message on
 * stderr); failed commits are counted in *out. Free out->lat_ns.
 */
int bench_load(const bench_cfg_t *cfg, const char *conf_path, int dur_given, bench_load_t *out);
/* The q-quantile (0..1) of sorted latencies, nearest rank; 0 when empty. */
int64_t bench_quantile(const int64_t *sorted, size_t n, double q);

#endif
