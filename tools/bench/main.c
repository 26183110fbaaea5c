/*
 * cairn-bench — an S3 load generator with its own SigV4 client.
 *
 *   cairn-bench put|get|head|mixed|list|delete [options]
 *   cairn-bench files --dir DIR [options]      the objects as files, for a web server
 *   cairn-bench load --cluster-config FILE [options]   empty objects into the metadata tier
 *   cairn-bench memcpy                         one thread's copy bandwidth
 *
 * Prints throughput, operations per second, latency percentiles and errors
 * by HTTP status and S3 code, as a table or (--json) as one JSON object.
 * Exit status: 0 when every measured operation succeeded, 1 when some
 * failed or set-up failed, 2 for a usage error, 3 when a GET returned bytes
 * other than those written (verification failure; wins over 1).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cairn/err.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cairn-bench put|get|head|mixed|list|delete|files|load|memcpy [options]\n"
            "\n"
            "workloads\n"
            "  put      PUT keys PREFIX/o0, o1, ... (unique keys; wrap at --objects N if given)\n"
            "  get      upload --objects keys, then GET them at random\n"
            "  head     upload --objects keys, then HEAD them at random\n"
            "  mixed    upload --objects keys, then random operations weighted by --mix\n"
            "  list     upload --objects keys, then page through them with ListObjectsV2\n"
            "  delete   upload --objects keys, then DELETE each once\n"
            "\n"
            "other commands\n"
            "  files    write --objects objects as files DIR/BUCKET/PREFIX/o<i> (--dir DIR), with the\n"
            "           bytes a PUT would send: a web server serving DIR can then be measured with\n"
            "           get --raw --no-prepare, every byte checked\n"
            "  load     commit --objects empty objects PREFIX/o<i> straight to the metadata tier of\n"
            "           --cluster-config FILE (its [cluster] meta and secret; the bucket is created for\n"
            "           its [s3] access_key), -c threads; -d stops early. For listing benchmarks.\n"
            "  memcpy   memcpy bandwidth of one thread, in cache and in memory\n"
            "\n"
            "target (flags win over --env, which wins over the environment:\n"
            "CAIRN_ENDPOINT or AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION)\n"
            "  --env FILE            read those variables from FILE (a cluster.env)\n"
            "  --endpoint URL        http://host:port\n"
            "  --access-key KEY, --secret-key SECRET, --region REGION (default us-east-1)\n"
            "  --bucket NAME         default cairn-bench; with --buckets N: NAME-0 .. NAME-(N-1)\n"
            "  --buckets N           spread keys over N buckets (key i goes to bucket i mod N)\n"
            "  --prefix P            key prefix (default bench)\n"
            "  --no-create-bucket    do not create the bucket(s) first\n"
            "  --raw                 unsigned requests to a plain HTTP server (get/head with --no-prepare)\n"
            "\n"
            "load\n"
            "  -s, --size SIZE       object size, or MIN-MAX for uniform sizes: 4KiB, 64MiB, 1MB-8MB\n"
            "                        (K/KiB/M/MiB/G/GiB are powers of 1024, KB/MB/GB of 1000; default 1MiB, list 1KiB)\n"
            "  -c, --concurrency N   threads, one keep-alive connection each (default 4)\n"
            "  -d, --duration T      length of the measured phase: 10, 10s, 500ms, 2m (default 10s)\n"
            "  -n, --count N         stop after N operations instead\n"
            "  --objects N           keys to prepare (get/mixed/delete: about 256 MiB of data, at\n"
            "                        least the concurrency, at most 1000; list: 2000); put: wrap keys at N\n"
            "  --no-prepare          the objects exist already (from an earlier put with the same prefix)\n"
            "  --mix SPEC            mixed weights, default get=60,put=30,delete=10 (also head=, list=)\n"
            "  --max-keys N          list page size (default 1000)\n"
            "  --no-verify           do not check the bytes GET returns\n"
            "  --corrupt             put: flip one byte of every object, so a later verifying get must fail\n"
            "  --cleanup             delete the keys written at the end\n"
            "  --seed N              random seed for key and operation choices (default: from the clock)\n"
            "  --timeout T           socket timeout (default 120s)\n"
            "  --watch-pids P,P,...  report the CPU time these processes (the servers) used in the measured phase\n"
            "\n"
            "output\n"
            "  --json                one JSON object on stdout instead of the table\n"
            "  -q, --quiet           no progress messages on stderr\n"
            "\n"
            "exit status: 0 all operations succeeded, 1 some failed, 2 usage, 3 verification failed\n");
}

/* "64MiB", "4k", "1MB", "123" -> bytes. 0 or -1. */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || v < 0)
        return -1;
    while (*end == ' ')
        end++;
    static const struct { const char *suf; double mul; } sufs[] = {
        {"", 1}, {"b", 1}, {"k", 1024.0}, {"kib", 1024.0}, {"m", 1048576.0}, {"mib", 1048576.0},
        {"g", 1073741824.0}, {"gib", 1073741824.0}, {"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}};
    for (size_t i = 0; i < sizeof sufs / sizeof sufs[0]; i++)
        if (strcasecmp(end, sufs[i].suf) == 0) {
            double b = v * sufs[i].mul;
            if (b > 1e15)
                return -1;
            *out = (uint64_t)llround(b);
            return 0;
        }
    return -1;
}

/* "10", "10s", "500ms", "2m" -> seconds. */
static int parse_duration(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || v < 0)
        return -1;
    if (*end == '\0' || strcmp(end, "s") == 0)
        *out = v;
    else if (strcmp(end, "ms") == 0)
        *out = v / 1000;
    else if (strcmp(end, "m") == 0)
        *out = v * 60;
    else
        return -1;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

static int parse_mix(const char *spec, unsigned mix[BENCH_NOPS])
{
    memset(mix, 0, sizeof(unsigned) * BENCH_NOPS);
    char *copy = cairn_strndup(spec, strlen(spec)), *save = NULL;
    unsigned total = 0;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        uint64_t w;
        int op = -1;
        if (eq != NULL) {
            *eq = '\0';
            for (int i = 0; i < BENCH_NOPS; i++)
                if (strcmp(tok, bench_op_names[i]) == 0)
                    op = i;
        }
        if (op < 0 || parse_u64(eq + 1, &w) != 0 || w > 1000000) {
            rc = -1;
            break;
        }
        mix[op] = (unsigned)w;
        total += (unsigned)w;
    }
    free(copy);
    return rc == 0 && total > 0 ? 0 : -1;
}

#define BENCH_MAX_WATCH 64

/* "12,34,56" -> pids. */
static int parse_pids(const char *s, int *out, int *n)
{
    *n = 0;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno != 0 || v <= 0 || v > 1L << 30 || *n == BENCH_MAX_WATCH)
            return -1;
        out[(*n)++] = (int)v;
        s = end;
        if (*s == ',')
            s++;
        else if (*s != '\0')
            return -1;
    }
    return *n > 0 ? 0 : -1;
}

/* Environment-style file: KEY=VALUE lines, "export" lines and comments ignored. */
typedef struct {
    char endpoint[512], access[256], secret[256], region[64];
} env_t;

static void env_set(env_t *e, const char *k, const char *v)
{
    if (strcmp(k, "CAIRN_ENDPOINT") == 0 || (strcmp(k, "AWS_ENDPOINT_URL") == 0 && e->endpoint[0] == '\0'))
        snprintf(e->endpoint, sizeof e->endpoint, "%s", v);
    else if (strcmp(k, "AWS_ACCESS_KEY_ID") == 0)
        snprintf(e->access, sizeof e->access, "%s", v);
    else if (strcmp(k, "AWS_SECRET_ACCESS_KEY") == 0)
        snprintf(e->secret, sizeof e->secret, "%s", v);
    else if (strcmp(k, "AWS_DEFAULT_REGION") == 0 || (strcmp(k, "AWS_REGION") == 0 && e->region[0] == '\0'))
        snprintf(e->region, sizeof e->region, "%s", v);
}

static int env_file(env_t *e, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cairn-bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[1024];
    while (fgets(line, sizeof line, f) != NULL) {
        char *s = line;
        s[strcspn(s, "\r\n")] = '\0';
        while (isspace((unsigned char)*s))
            s++;
        if (strncmp(s, "export ", 7) == 0) {
            s += 7;
            if (strchr(s, '=') == NULL)
                continue;
        }
        char *eq = strchr(s, '=');
        if (*s == '#' || eq == NULL)
            continue;
        *eq = '\0';
        char *v = eq + 1;
        size_t vl = strlen(v);
        if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
            v[vl - 1] = '\0';
            v++;
        }
        env_set(e, s, v);
    }
    fclose(f);
    return 0;
}

static const char *size_str(uint64_t b, char *buf, size_t len)
{
    static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    double v = (double)b;
    while (v >= 1024 && i < 4 && fmod(v, 1024) == 0) {
        v /= 1024;
        i++;
    }
    snprintf(buf, len, "%.0f %s", v, u[i]);
    return buf;
}

/* Indexed by bench_workload_t. */
static const char *wl_names[] = {"put", "get", "mixed", "list", "delete", "head"};

static double ms(int64_t ns)
{
    return (double)ns / 1e6;
}

/* A JSON string literal of s (ASCII control characters escaped). */
static void json_str(FILE *o, const char *s)
{
    fputc('"', o);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(o, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(o, "\\u%04x", ch);
        else
            fputc(ch, o);
    }
    fputc('"', o);
}

static void json_lat(FILE *o, const int64_t *v, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    fprintf(o, "{\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}", n ? sum / (double)n / 1e6 : 0.0,
            ms(bench_quantile(v, n, 0.50)), ms(bench_quantile(v, n, 0.90)), ms(bench_quantile(v, n, 0.99)),
            ms(n ? v[n - 1] : 0));
}

static void report_json(const bench_cfg_t *cfg, const char *endpoint, const bench_result_t *res)
{
    FILE *o = stdout;
    double el = res->elapsed_s > 0 ? res->elapsed_s : 1e-9;
    fprintf(o, "{\"workload\":\"%s\",\"endpoint\":", wl_names[cfg->workload]);
    json_str(o, endpoint);
    fprintf(o, ",\"size_min\":%llu,\"size_max\":%llu,\"concurrency\":%d,\"objects\":%llu,\"verify\":%s,",
            (unsigned long long)cfg->size_min, (unsigned long long)cfg->size_max, cfg->concurrency,
            (unsigned long long)cfg->objects, cfg->verify ? "true" : "false");
    fprintf(o, "\"elapsed_s\":%.4f,\"prepare_s\":%.3f,\"keys\":%llu,\"connects\":%llu,", res->elapsed_s,
            res->prepare_s, (unsigned long long)res->keys, (unsigned long long)res->connects);
    fprintf(o, "\"client_cpu_s\":{\"user\":%.3f,\"sys\":%.3f},", res->cpu_user_s, res->cpu_sys_s);
    if (cfg->nwatch)
        fprintf(o, "\"watched_cpu_s\":%.3f,", res->watched_cpu_s);
    fprintf(o, "\"machine_cpu_s\":{\"busy\":%.3f,\"steal\":%.3f},", res->machine_busy_s, res->machine_steal_s);
    uint64_t tok = 0, terr = 0, tbytes = 0;
    fprintf(o, "\"ops\":{");
    int first = 1;
    for (int op = 0; op < BENCH_NOPS; op++) {
        const bench_opstats_t *s = &res->ops[op];
        tok += s->ok;
        terr += s->errors;
        tbytes += op == BENCH_OP_LIST ? 0 : s->bytes;
        if (s->ok + s->errors == 0)
            continue;
        fprintf(o, "%s\"%s\":{\"ok\":%llu,\"errors\":%llu,\"bytes\":%llu,\"ops_per_s\":%.3f,\"mb_per_s\":%.3f,",
                first ? "" : ",", bench_op_names[op], (unsigned long long)s->ok, (unsigned long long)s->errors,
                (unsigned long long)s->bytes, (double)s->ok / el, (double)s->bytes / el / 1e6);
        if (op == BENCH_OP_LIST)
            fprintf(o, "\"keys\":%llu,\"keys_per_s\":%.1f,", (unsigned long long)s->items, (double)s->items / el);
        fprintf(o, "\"latency_ms\":");
        json_lat(o, s->lat_ns, s->n);
        fprintf(o, ",\"ttfb_ms\":");
        json_lat(o, s->ttfb_ns, s->n);
        fputc('}', o);
        first = 0;
    }
    fprintf(o, "},\"total\":{\"ok\":%llu,\"errors\":%llu,\"bytes\":%llu,\"ops_per_s\":%.3f,\"mb_per_s\":%.3f},",
            (unsigned long long)tok, (unsigned long long)terr, (unsigned long long)tbytes, (double)tok / el,
            (double)tbytes / el / 1e6);
    fprintf(o, "\"errors\":{");
    for (size_t i = 0; i < res->nerrs; i++) {
        if (i)
            fputc(',', o);
        json_str(o, res->errs[i].label);
        fprintf(o, ":%llu", (unsigned long long)res->errs[i].count);
    }
    fprintf(o, "},\"verify_failures\":%llu,\"verify_details\":[", (unsigned long long)res->verify_failures);
    for (size_t i = 0; i < res->ndetails; i++) {
        if (i)
            fputc(',', o);
        json_str(o, res->details[i]);
    }
    fprintf(o, "]}\n");
}

static void report_text(const bench_cfg_t *cfg, const char *endpoint, const bench_result_t *res)
{
    FILE *o = stdout;
    double el = res->elapsed_s > 0 ? res->elapsed_s : 1e-9;
    char a[32], b[32];
    if (cfg->workload != BENCH_WL_PUT && !cfg->prepare)
        snprintf(a, sizeof a, "existing");
    else if (cfg->size_min == cfg->size_max)
        snprintf(a, sizeof a, "%s", size_str(cfg->size_min, b, sizeof b));
    else {
        char c[32];
        snprintf(a, sizeof a, "%s-%s", size_str(cfg->size_min, b, sizeof b), size_str(cfg->size_max, c, sizeof c));
    }
    fprintf(o, "cairn-bench %s: %s objects, concurrency %d, %.2f s measured, %s%s\n", wl_names[cfg->workload], a,
            cfg->concurrency, res->elapsed_s, endpoint, cfg->verify ? "" : " (no verification)");
    if (res->prepare_s > 0)
        fprintf(o, "  prepared %llu objects in %.2f s\n", (unsigned long long)cfg->objects, res->prepare_s);
    fprintf(o, "%-8s %8s %9s %9s %9s %9s %9s %9s %9s %7s\n", "op", "ok", "ops/s", "MB/s", "p50 ms", "p90 ms",
            "p99 ms", "max ms", "ttfb p50", "errors");
    uint64_t tok = 0, terr = 0, tbytes = 0;
    int kinds = 0;
    for (int op = 0; op < BENCH_NOPS; op++) {
        const bench_opstats_t *s = &res->ops[op];
        tok += s->ok;
        terr += s->errors;
        tbytes += op == BENCH_OP_LIST ? 0 : s->bytes;
        if (s->ok + s->errors == 0)
            continue;
        kinds++;
        fprintf(o, "%-8s %8llu %9.1f %9.1f %9.2f %9.2f %9.2f %9.2f %9.2f %7llu\n", bench_op_names[op],
                (unsigned long long)s->ok, (double)s->ok / el, (double)s->bytes / el / 1e6,
                ms(bench_quantile(s->lat_ns, s->n, 0.5)), ms(bench_quantile(s->lat_ns, s->n, 0.9)),
                ms(bench_quantile(s->lat_ns, s->n, 0.99)), ms(s->n ? s->lat_ns[s->n - 1] : 0),
                ms(bench_quantile(s->ttfb_ns, s->n, 0.5)), (unsigned long long)s->errors);
        if (op == BENCH_OP_LIST)
            fprintf(o, "%-8s %8llu keys listed, %.0f keys/s\n", "", (unsigned long long)s->items,
                    (double)s->items / el);
    }
    if (kinds > 1)
        fprintf(o, "%-8s %8llu %9.1f %9.1f %49llu\n", "total", (unsigned long long)tok, (double)tok / el,
                (double)tbytes / el / 1e6, (unsigned long long)terr);
    if (res->nerrs) {
        fprintf(o, "errors:\n");
        for (size_t i = 0; i < res->nerrs; i++)
            fprintf(o, "  %8llu  %s\n", (unsigned long long)res->errs[i].count, res->errs[i].label);
    }
    for (size_t i = 0; i < res->ndetails; i++)
        fprintf(o, "  verify: %s\n", res->details[i]);
    fprintf(o, "client: %.2f s user + %.2f s sys CPU, %llu connection(s); MB = 10^6 bytes\n", res->cpu_user_s,
            res->cpu_sys_s, (unsigned long long)res->connects);
    if (cfg->nwatch && res->watched_cpu_s >= 0) {
        fprintf(o, "server: %.2f CPU-s", res->watched_cpu_s);
        if (tbytes)
            fprintf(o, ", %.2f CPU-s per GB", res->watched_cpu_s / ((double)tbytes / 1e9));
        if (tok)
            fprintf(o, ", %.3f CPU-ms per operation", res->watched_cpu_s * 1e3 / (double)tok);
        fputc('\n', o);
    }
    fprintf(o, "machine: %.2f of %.0f CPU-s busy (%.2f stolen)\n", res->machine_busy_s,
            res->elapsed_s * (double)sysconf(_SC_NPROCESSORS_ONLN), res->machine_steal_s);
}

typedef enum { CMD_RUN, CMD_FILES, CMD_LOAD } cmd_t;

static int run_memcpy(int json)
{
    double cache, mem;
    bench_memcpy_speed(&cache, &mem);
    if (json)
        printf("{\"memcpy_cache_gb_s\":%.2f,\"memcpy_memory_gb_s\":%.2f}\n", cache, mem);
    else
        printf("memcpy, one thread: %.1f GB/s in cache (256 KiB), %.1f GB/s in memory (64 MiB)\n", cache, mem);
    return 0;
}

static int run_load(const bench_cfg_t *cfg, const char *conf_path, int dur_given, int json)
{
    bench_load_t ld;
    if (bench_load(cfg, conf_path, dur_given, &ld) != 0)
        return 1;
    double el = ld.elapsed_s > 0 ? ld.elapsed_s : 1e-9;
    size_t n = (size_t)ld.loaded;
    if (json) {
        printf("{\"workload\":\"load\",\"bucket\":");
        json_str(stdout, cfg->bucket);
        printf(",\"prefix\":");
        json_str(stdout, cfg->prefix);
        printf(",\"concurrency\":%d,\"wanted\":%llu,\"loaded\":%llu,\"failed\":%llu,\"elapsed_s\":%.3f,"
               "\"records_per_s\":%.1f,\"latency_ms\":",
               cfg->concurrency, (unsigned long long)cfg->objects, (unsigned long long)ld.loaded,
               (unsigned long long)ld.failed, ld.elapsed_s, (double)ld.loaded / el);
        json_lat(stdout, ld.lat_ns, n);
        if (cfg->nwatch)
            printf(",\"watched_cpu_s\":%.3f", ld.watched_cpu_s);
        printf(",\"machine_cpu_s\":{\"busy\":%.3f}", ld.machine_busy_s);
        if (ld.failed)
            printf(",\"first_error\":\"%s\"", cairn_strerror(ld.first_err));
        printf("}\n");
    } else {
        printf("cairn-bench load: %llu of %llu empty objects in %.2f s (%.0f per second), concurrency %d, %llu failed%s%s\n",
               (unsigned long long)ld.loaded, (unsigned long long)cfg->objects, ld.elapsed_s, (double)ld.loaded / el,
               cfg->concurrency, (unsigned long long)ld.failed, ld.failed ? ": " : "",
               ld.failed ? cairn_strerror(ld.first_err) : "");
        printf("  commit latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", ms(bench_quantile(ld.lat_ns, n, 0.5)),
               ms(bench_quantile(ld.lat_ns, n, 0.99)), ms(n ? ld.lat_ns[n - 1] : 0));
        if (cfg->nwatch && ld.watched_cpu_s >= 0 && ld.loaded)
            printf("server: %.2f CPU-s, %.3f CPU-ms per record\n", ld.watched_cpu_s,
                   ld.watched_cpu_s * 1e3 / (double)ld.loaded);
    }
    free(ld.lat_ns);
    return ld.failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    enum {
        O_ENV = 256, O_ENDPOINT, O_ACCESS, O_SECRET, O_REGION, O_BUCKET, O_BUCKETS, O_PREFIX, O_NOCREATE,
        O_OBJECTS, O_NOPREP, O_MIX, O_MAXKEYS, O_NOVERIFY, O_CORRUPT, O_CLEANUP, O_SEED, O_TIMEOUT, O_JSON,
        O_WATCH, O_RAW, O_DIR, O_CCONF,
    };
    static const struct option opts[] = {
        {"env", 1, NULL, O_ENV}, {"endpoint", 1, NULL, O_ENDPOINT}, {"access-key", 1, NULL, O_ACCESS},
        {"secret-key", 1, NULL, O_SECRET}, {"region", 1, NULL, O_REGION}, {"bucket", 1, NULL, O_BUCKET},
        {"buckets", 1, NULL, O_BUCKETS}, {"prefix", 1, NULL, O_PREFIX}, {"no-create-bucket", 0, NULL, O_NOCREATE},
        {"size", 1, NULL, 's'}, {"concurrency", 1, NULL, 'c'}, {"duration", 1, NULL, 'd'},
        {"count", 1, NULL, 'n'}, {"objects", 1, NULL, O_OBJECTS}, {"no-prepare", 0, NULL, O_NOPREP},
        {"mix", 1, NULL, O_MIX}, {"max-keys", 1, NULL, O_MAXKEYS}, {"no-verify", 0, NULL, O_NOVERIFY},
        {"corrupt", 0, NULL, O_CORRUPT}, {"cleanup", 0, NULL, O_CLEANUP}, {"seed", 1, NULL, O_SEED},
        {"timeout", 1, NULL, O_TIMEOUT}, {"json", 0, NULL, O_JSON}, {"quiet", 0, NULL, 'q'},
        {"watch-pids", 1, NULL, O_WATCH}, {"raw", 0, NULL, O_RAW}, {"dir", 1, NULL, O_DIR},
        {"cluster-config", 1, NULL, O_CCONF},
        {"help", 0, NULL, 'h'}, {NULL, 0, NULL, 0}};

    bench_cfg_t cfg = {
        .bucket = "cairn-bench", .nbuckets = 1, .prefix = "bench", .concurrency = 4, .duration_s = 10,
        .prepare = 1, .max_keys = 1000, .verify = 1, .create_bucket = 1,
        .mix = {[BENCH_OP_GET] = 60, [BENCH_OP_PUT] = 30, [BENCH_OP_DELETE] = 10},
    };
    env_t env = {0}, flags = {0};
    const char *env_path = NULL, *size_arg = NULL, *dir = NULL, *cconf = NULL;
    int have_objects = 0, have_seed = 0, json = 0, raw = 0, dur_given = 0;
    double timeout_s = 120;
    static int watch[BENCH_MAX_WATCH];
    uint64_t u;
    int c;
    while ((c = getopt_long(argc, argv, "s:c:d:n:qh", opts, NULL)) != -1) {
        switch (c) {
        case O_ENV: env_path = optarg; break;
        case O_ENDPOINT: snprintf(flags.endpoint, sizeof flags.endpoint, "%s", optarg); break;
        case O_ACCESS: snprintf(flags.access, sizeof flags.access, "%s", optarg); break;
        case O_SECRET: snprintf(flags.secret, sizeof flags.secret, "%s", optarg); break;
        case O_REGION: snprintf(flags.region, sizeof flags.region, "%s", optarg); break;
        case O_BUCKET: cfg.bucket = optarg; break;
        case O_BUCKETS:
            if (parse_u64(optarg, &u) != 0 || u < 1 || u > BENCH_MAX_BUCKETS)
                goto bad;
            cfg.nbuckets = (int)u;
            break;
        case O_PREFIX: cfg.prefix = optarg; break;
        case O_NOCREATE: cfg.create_bucket = 0; break;
        case 's': size_arg = optarg; break;
        case 'c':
            if (parse_u64(optarg, &u) != 0 || u < 1 || u > 4096)
                goto bad;
            cfg.concurrency = (int)u;
            break;
        case 'd':
            if (parse_duration(optarg, &cfg.duration_s) != 0 || cfg.duration_s <= 0)
                goto bad;
            dur_given = 1;
            break;
        case 'n':
            if (parse_u64(optarg, &cfg.count) != 0 || cfg.count == 0)
                goto bad;
            break;
        case O_OBJECTS:
            if (parse_u64(optarg, &cfg.objects) != 0 || cfg.objects == 0)
                goto bad;
            have_objects = 1;
            break;
        case O_NOPREP: cfg.prepare = 0; break;
        case O_MIX:
            if (parse_mix(optarg, cfg.mix) != 0)
                goto bad;
            break;
        case O_MAXKEYS:
            if (parse_u64(optarg, &u) != 0 || u < 1 || u > 1000)
                goto bad;
            cfg.max_keys = (int)u;
            break;
        case O_NOVERIFY: cfg.verify = 0; break;
        case O_CORRUPT: cfg.corrupt = 1; break;
        case O_CLEANUP: cfg.cleanup = 1; break;
        case O_SEED:
            if (parse_u64(optarg, &cfg.rng_seed) != 0)
                goto bad;
            have_seed = 1;
            break;
        case O_TIMEOUT:
            if (parse_duration(optarg, &timeout_s) != 0 || timeout_s < 0.001 || timeout_s > 86400)
                goto bad;
            break;
        case O_JSON: json = 1; break;
        case O_WATCH:
            if (parse_pids(optarg, watch, &cfg.nwatch) != 0)
                goto bad;
            cfg.watch_pids = watch;
            break;
        case O_RAW: raw = 1; break;
        case O_DIR: dir = optarg; break;
        case O_CCONF: cconf = optarg; break;
        case 'q': cfg.quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        continue;
    bad:
        fprintf(stderr, "cairn-bench: bad value for %s: %s\n", argv[optind - 1], optarg);
        return 2;
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *wl = argv[optind];
    cmd_t cmd = CMD_RUN;
    int found = 0;
    for (int i = 0; i < (int)(sizeof wl_names / sizeof wl_names[0]); i++)
        if (strcmp(wl, wl_names[i]) == 0) {
            cfg.workload = (bench_workload_t)i;
            found = 1;
        }
    if (strcmp(wl, "files") == 0)
        cmd = CMD_FILES;
    else if (strcmp(wl, "load") == 0)
        cmd = CMD_LOAD;
    else if (strcmp(wl, "memcpy") == 0)
        return run_memcpy(json);
    else if (!found) {
        fprintf(stderr, "cairn-bench: unknown workload %s (put, get, head, mixed, list, delete, files, load, memcpy)\n",
                wl);
        return 2;
    }
    if (cmd != CMD_RUN && !have_objects) {
        fprintf(stderr, "cairn-bench: %s needs --objects N\n", wl);
        return 2;
    }
    if ((cmd == CMD_FILES && dir == NULL) || (cmd == CMD_LOAD && cconf == NULL)) {
        fprintf(stderr, "cairn-bench: %s needs %s\n", wl, cmd == CMD_FILES ? "--dir DIR" : "--cluster-config FILE");
        return 2;
    }
    if (raw && (cmd != CMD_RUN || (cfg.workload != BENCH_WL_GET && cfg.workload != BENCH_WL_HEAD) || cfg.prepare)) {
        fprintf(stderr, "cairn-bench: --raw is for get and head with --no-prepare (the server has the objects)\n");
        return 2;
    }
    if (raw)
        cfg.create_bucket = 0;

    /* target: flags, then --env, then the environment */
    static const char *vars[] = {"AWS_ENDPOINT_URL", "CAIRN_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                 "AWS_REGION", "AWS_DEFAULT_REGION"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]) && *getenv(vars[i]))
            env_set(&env, vars[i], getenv(vars[i]));
    if (env_path) {
        env_t fe = {0};
        if (env_file(&fe, env_path) != 0)
            return 2;
        if (fe.endpoint[0]) memcpy(env.endpoint, fe.endpoint, sizeof env.endpoint);
        if (fe.access[0]) memcpy(env.access, fe.access, sizeof env.access);
        if (fe.secret[0]) memcpy(env.secret, fe.secret, sizeof env.secret);
        if (fe.region[0]) memcpy(env.region, fe.region, sizeof env.region);
    }
    if (flags.endpoint[0]) memcpy(env.endpoint, flags.endpoint, sizeof env.endpoint);
    if (flags.access[0]) memcpy(env.access, flags.access, sizeof env.access);
    if (flags.secret[0]) memcpy(env.secret, flags.secret, sizeof env.secret);
    if (flags.region[0]) memcpy(env.region, flags.region, sizeof env.region);
    if (!env.region[0])
        snprintf(env.region, sizeof env.region, "us-east-1");
    if (cmd == CMD_RUN && (!env.endpoint[0] || (!raw && (!env.access[0] || !env.secret[0])))) {
        fprintf(stderr, "cairn-bench: need an endpoint and credentials (--env cluster.env, flags or "
                        "CAIRN_ENDPOINT/AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)\n");
        return 2;
    }
    if (cmd == CMD_RUN && bench_target_parse(&cfg.target, env.endpoint) != 0)
        return 2;
    cfg.target.raw = raw;
    cfg.target.access_key = env.access;
    cfg.target.secret_key = env.secret;
    cfg.target.region = env.region;
    cfg.target.timeout_ms = (int)(timeout_s * 1000);

    /* sizes and key counts */
    if (size_arg) {
        const char *dash = strchr(size_arg, '-');
        if (dash) {
            char lo[64];
            size_t n = (size_t)(dash - size_arg);
            if (n >= sizeof lo)
                goto bad_size;
            memcpy(lo, size_arg, n);
            lo[n] = '\0';
            if (parse_size(lo, &cfg.size_min) != 0 || parse_size(dash + 1, &cfg.size_max) != 0 ||
                cfg.size_min > cfg.size_max)
                goto bad_size;
        } else {
            if (parse_size(size_arg, &cfg.size_min) != 0)
                goto bad_size;
            cfg.size_max = cfg.size_min;
        }
    } else {
        cfg.size_min = cfg.size_max = cfg.workload == BENCH_WL_LIST ? 1024 : 1048576;
    }
    if (cmd == CMD_LOAD)
        cfg.size_min = cfg.size_max = 0;
    if (!have_objects && cfg.workload != BENCH_WL_PUT) {
        uint64_t base = ((uint64_t)256 << 20) / (cfg.size_max ? cfg.size_max : 1);
        uint64_t lo = (uint64_t)cfg.concurrency * (cfg.workload == BENCH_WL_MIXED ? 4 : 1);
        cfg.objects = base < lo ? lo : base;
        if (cfg.objects > 1000)
            cfg.objects = lo > 1000 ? lo : 1000;
        if (cfg.workload == BENCH_WL_LIST)
            cfg.objects = 2000;
    }
    if (cfg.workload == BENCH_WL_MIXED && cfg.objects < (uint64_t)cfg.concurrency) {
        fprintf(stderr, "cairn-bench: mixed needs at least one object per thread (--objects >= %d)\n",
                cfg.concurrency);
        return 2;
    }
    if (!have_seed)
        cfg.rng_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    signal(SIGPIPE, SIG_IGN);

    if (cmd == CMD_LOAD)
        return run_load(&cfg, cconf, dur_given, json);
    bench_pool_t pool;
    bench_pool_init(&pool);
    if (cmd == CMD_FILES) {
        int frc = bench_files(&cfg, &pool, dir);
        bench_pool_dispose(&pool);
        return frc == 0 ? 0 : 1;
    }
    bench_result_t res;
    int rc = bench_run(&cfg, &pool, &res);
    if (rc != 0)
        fprintf(stderr, "cairn-bench: set-up failed, nothing was measured\n");
    if (json)
        report_json(&cfg, env.endpoint, &res);
    else
        report_text(&cfg, env.endpoint, &res);
    uint64_t errors = 0;
    for (int op = 0; op < BENCH_NOPS; op++)
        errors += res.ops[op].errors;
    int status = res.verify_failures ? 3 : (rc != 0 || errors) ? 1 : 0;
    bench_result_dispose(&res);
    bench_pool_dispose(&pool);
    return status;

bad_size:
    fprintf(stderr, "cairn-bench: bad size %s (examples: 4KiB, 64MiB, 1MB, 4k-1m)\n", size_arg);
    return 2;
}
