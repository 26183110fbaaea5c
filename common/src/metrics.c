/*
 * metrics.c — counters, gauges and histograms in the Prometheus text format
 * (see metrics.h).
 *
 * The registry is two levels of singly linked lists, families and their
 * series, appended under one mutex and never shortened, so a handle is a
 * plain pointer that stays valid until the registry is destroyed. Updates
 * touch only the series' atomics. Lookups on registration are linear scans
 * (O(families + series of the family)): registration happens at start-up or
 * once per label set, never per request.
 */
#include "cairn/metrics.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn/err.h"

typedef enum { T_COUNTER, T_GAUGE, T_HISTOGRAM } type_t;
static const char *const type_names[] = {"counter", "gauge", "histogram"};

typedef struct series_s series_t;
struct series_s {
    series_t *next;
    char *labels;                 /* "" when none */
    _Atomic uint64_t u;           /* counter */
    _Atomic int64_t i;            /* gauge */
    double (*fn)(void *arg);      /* callback gauge, else NULL */
    void *arg;
    _Atomic uint64_t sum_bits;    /* histogram: the double sum, as bits (CAS) */
    _Atomic uint64_t *counts;     /* histogram: per bucket, not cumulative; nbounds + 1 (+Inf) */
};

/* The public handle types are views of a series. */
struct cairn_counter_s { series_t s; };
struct cairn_gauge_s { series_t s; };
struct cairn_hist_s { series_t s; const double *bounds; size_t nbounds; };

typedef struct family_s family_t;
struct family_s {
    family_t *next;
    char *name, *help;
    type_t type;
    double bounds[CAIRN_METRICS_MAX_BOUNDS];
    char le[CAIRN_METRICS_MAX_BOUNDS + 1][40]; /* le="..." of each bucket, formatted once */
    size_t nbounds;
    series_t *head, **tail;
};

typedef struct {
    void (*fn)(void *arg);
    void *arg;
} hook_t;

struct cairn_metrics_s {
    pthread_mutex_t mu;
    family_t *head, **tail;
    hook_t *hooks;
    size_t nhooks;
};

/* ---- names and labels ---- */

static int name_ok(const char *s, int colon)
{
    if (s == NULL || !(isalpha((unsigned char)*s) || *s == '_' || (colon && *s == ':')))
        return 0;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || (colon && *s == ':')))
            return 0;
    return 1;
}

/* name="value"(,name="value")* with \\ \" \n the only escapes, or empty. */
static int labels_ok(const char *s)
{
    if (s == NULL || *s == '\0')
        return 1;
    for (;;) {
        if (!(isalpha((unsigned char)*s) || *s == '_'))
            return 0;
        while (isalnum((unsigned char)*s) || *s == '_')
            s++;
        if (*s++ != '=' || *s++ != '"')
            return 0;
        for (;; s++) {
            if (*s == '\0' || *s == '\n')
                return 0;
            if (*s == '"')
                break;
            if (*s == '\\' && s[1] != '\\' && s[1] != '"' && s[1] != 'n')
                return 0;
            if (*s == '\\')
                s++;
        }
        s++;
        if (*s == '\0')
            return 1;
        if (*s++ != ',')
            return 0;
    }
}

int cairn_metrics_labels(char *out, size_t outsz, ...)
{
    va_list ap;
    size_t n = 0;
    int rc = 0;
    va_start(ap, outsz);
    const char *name;
    while (rc == 0 && (name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        if (!name_ok(name, 0)) {
            rc = CAIRN_EINVAL;
            break;
        }
        char tmp[8];
#define PUT(str, len)                                \
    do {                                             \
        if (n + (len) >= outsz) {                    \
            rc = CAIRN_ETOOBIG;                      \
            goto done;                               \
        }                                            \
        memcpy(out + n, (str), (len));               \
        n += (len);                                  \
    } while (0)
        if (n > 0)
            PUT(",", 1);
        PUT(name, strlen(name));
        PUT("=\"", 2);
        for (const char *v = value ? value : ""; *v; v++) {
            size_t l = 1;
            tmp[0] = *v;
            if (*v == '\\' || *v == '"' || *v == '\n') {
                tmp[0] = '\\';
                tmp[1] = *v == '\n' ? 'n' : *v;
                l = 2;
            }
            PUT(tmp, l);
        }
        PUT("\"", 1);
#undef PUT
    }
done:
    va_end(ap);
    if (outsz > 0)
        out[rc == 0 ? n : 0] = '\0';
    return rc;
}

static void fmt_double(double v, char out[32]);

/* ---- registry ---- */

cairn_metrics_t *cairn_metrics_create(void)
{
    cairn_metrics_t *m = cairn_calloc(1, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    m->tail = &m->head;
    return m;
}

void cairn_metrics_destroy(cairn_metrics_t *m)
{
    if (m == NULL)
        return;
    for (family_t *f = m->head, *fn; f; f = fn) {
        fn = f->next;
        for (series_t *s = f->head, *sn; s; s = sn) {
            sn = s->next;
            free(s->labels);
            free(s->counts);
            free(s);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    free(m->hooks);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* The family called name, created if missing; with m->mu held. */
static family_t *family(cairn_metrics_t *m, const char *name, const char *help, type_t type, const double *bounds,
                        size_t nbounds)
{
    for (family_t *f = m->head; f; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            CAIRN_ASSERT(f->type == type); /* one name, one type */
            return f;
        }
    }
    family_t *f = cairn_calloc(1, sizeof *f);
    f->name = cairn_strndup(name, strlen(name));
    f->help = cairn_strndup(help ? help : "", help ? strlen(help) : 0);
    f->type = type;
    f->tail = &f->head;
    if (type == T_HISTOGRAM) {
        static const double latency[] = CAIRN_METRICS_LATENCY_BOUNDS;
        if (bounds == NULL || nbounds == 0) {
            bounds = latency;
            nbounds = sizeof latency / sizeof latency[0];
        }
        CAIRN_ASSERT(nbounds <= CAIRN_METRICS_MAX_BOUNDS);
        char num[32];
        for (size_t i = 0; i < nbounds; i++) {
            CAIRN_ASSERT(isfinite(bounds[i]) && (i == 0 || bounds[i] > bounds[i - 1]));
            f->bounds[i] = bounds[i];
            fmt_double(bounds[i], num);
            snprintf(f->le[i], sizeof f->le[i], "le=\"%s\"", num);
        }
        snprintf(f->le[nbounds], sizeof f->le[nbounds], "le=\"+Inf\"");
        f->nbounds = nbounds;
    }
    *m->tail = f;
    m->tail = &f->next;
    return f;
}

/* The series of (name, labels), created if missing. */
static series_t *series(cairn_metrics_t *m, const char *name, const char *help, const char *labels, type_t type,
                        const double *bounds, size_t nbounds, family_t **fout)
{
    CAIRN_ASSERT(name_ok(name, 1));
    CAIRN_ASSERT(labels_ok(labels));
    if (labels == NULL)
        labels = "";
    pthread_mutex_lock(&m->mu);
    family_t *f = family(m, name, help, type, bounds, nbounds);
    series_t *s;
    for (s = f->head; s; s = s->next)
        if (strcmp(s->labels, labels) == 0)
            break;
    if (s == NULL) {
        s = cairn_calloc(1, type == T_HISTOGRAM ? sizeof(struct cairn_hist_s) : sizeof *s);
        s->labels = cairn_strndup(labels, strlen(labels));
        if (type == T_HISTOGRAM) {
            s->counts = cairn_calloc(f->nbounds + 1, sizeof *s->counts);
            struct cairn_hist_s *h = (struct cairn_hist_s *)s;
            h->bounds = f->bounds;
            h->nbounds = f->nbounds;
        }
        *f->tail = s;
        f->tail = &s->next;
    }
    pthread_mutex_unlock(&m->mu);
    if (fout)
        *fout = f;
    return s;
}

cairn_counter_t *cairn_metrics_counter(cairn_metrics_t *m, const char *name, const char *help, const char *labels)
{
    return (cairn_counter_t *)series(m, name, help, labels, T_COUNTER, NULL, 0, NULL);
}

cairn_gauge_t *cairn_metrics_gauge(cairn_metrics_t *m, const char *name, const char *help, const char *labels)
{
    return (cairn_gauge_t *)series(m, name, help, labels, T_GAUGE, NULL, 0, NULL);
}

cairn_hist_t *cairn_metrics_histogram(cairn_metrics_t *m, const char *name, const char *help, const char *labels,
                                      const double *bounds, size_t nbounds)
{
    return (cairn_hist_t *)series(m, name, help, labels, T_HISTOGRAM, bounds, nbounds, NULL);
}

void cairn_metrics_gauge_fn(cairn_metrics_t *m, const char *name, const char *help, const char *labels,
                            double (*fn)(void *arg), void *arg)
{
    CAIRN_ASSERT(fn != NULL);
    series_t *s = series(m, name, help, labels, T_GAUGE, NULL, 0, NULL);
    pthread_mutex_lock(&m->mu); /* render reads fn and arg under the lock */
    s->fn = fn;
    s->arg = arg;
    pthread_mutex_unlock(&m->mu);
}

void cairn_metrics_on_scrape(cairn_metrics_t *m, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&m->mu);
    m->hooks = cairn_realloc(m->hooks, (m->nhooks + 1) * sizeof *m->hooks);
    m->hooks[m->nhooks++] = (hook_t){fn, arg};
    pthread_mutex_unlock(&m->mu);
}

/* ---- updates ---- */

void cairn_counter_add(cairn_counter_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->s.u, n, memory_order_relaxed);
}

void cairn_gauge_set(cairn_gauge_t *g, int64_t v)
{
    atomic_store_explicit(&g->s.i, v, memory_order_relaxed);
}

void cairn_gauge_add(cairn_gauge_t *g, int64_t delta)
{
    atomic_fetch_add_explicit(&g->s.i, delta, memory_order_relaxed);
}

static double bits_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t double_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

void cairn_hist_observe(cairn_hist_t *h, double v)
{
    if (isnan(v))
        return;
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i]) /* le: a value equal to a bound belongs to it */
        i++;
    atomic_fetch_add_explicit(&h->s.counts[i], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&h->s.sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&h->s.sum_bits, &old, double_bits(bits_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

uint64_t cairn_counter_value(const cairn_counter_t *c)
{
    return atomic_load_explicit(&c->s.u, memory_order_relaxed);
}

int64_t cairn_gauge_value(const cairn_gauge_t *g)
{
    return atomic_load_explicit(&g->s.i, memory_order_relaxed);
}

uint64_t cairn_hist_count(const cairn_hist_t *h, double *sum)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= h->nbounds; i++)
        n += atomic_load_explicit(&h->s.counts[i], memory_order_relaxed);
    if (sum)
        *sum = bits_double(atomic_load_explicit(&h->s.sum_bits, memory_order_relaxed));
    return n;
}

int64_t cairn_metrics_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the series of every service ---- */

static double resident_bytes(void *arg)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    int ok = f && fscanf(f, "%llu %llu", &size, &resident) == 2;
    if (f)
        fclose(f);
    return ok ? (double)resident * (double)sysconf(_SC_PAGESIZE) : NAN;
}

static double open_fds(void *arg)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return NAN;
    long n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return (double)(n - 1); /* not the directory's own descriptor */
}

void cairn_metrics_service(cairn_metrics_t *m, const char *service, const char *id)
{
    char labels[256];
    int rc = cairn_metrics_labels(labels, sizeof labels, "service", service, "id", id, NULL);
    CAIRN_ASSERT(rc == 0);
    cairn_gauge_set(cairn_metrics_gauge(m, "cairn_service_info", "Which cairn service this is (always 1).", labels), 1);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    cairn_gauge_set(cairn_metrics_gauge(m, "process_start_time_seconds",
                                        "Start time of the process since the Unix epoch, seconds.", NULL),
                    (int64_t)ts.tv_sec);
    cairn_metrics_gauge_fn(m, "process_resident_memory_bytes", "Resident memory size, bytes.", NULL, resident_bytes,
                           NULL);
    cairn_metrics_gauge_fn(m, "process_open_fds", "Open file descriptors.", NULL, open_fds, NULL);
}

/* ---- rendering ---- */

/* The shortest decimal that reads back as v; Prometheus spellings of the
 * special values. */
static void fmt_double(double v, char out[32])
{
    if (isnan(v)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) { /* integers in full: "10", not "1e+01" */
        snprintf(out, 32, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* HELP text: backslash and newline escaped. */
static void put_help(cairn_buf_t *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            cairn_buf_append(out, "\\\\", 2);
        else if (*s == '\n')
            cairn_buf_append(out, "\\n", 2);
        else
            cairn_buf_append(out, s, 1);
    }
}

/* Rendering appends pieces directly (no printf per sample): a scrape of a
 * few hundred series costs tens of microseconds. */
static void put_str(cairn_buf_t *out, const char *s)
{
    cairn_buf_append(out, s, strlen(s));
}

/* v in decimal, then a newline. */
static void put_u64_line(cairn_buf_t *out, uint64_t v, int negative)
{
    char tmp[24];
    size_t i = sizeof tmp;
    tmp[--i] = '\n';
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (negative)
        tmp[--i] = '-';
    cairn_buf_append(out, tmp + i, sizeof tmp - i);
}

static void put_i64_line(cairn_buf_t *out, int64_t v)
{
    put_u64_line(out, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0);
}

static void put_double_line(cairn_buf_t *out, double v)
{
    char num[32];
    fmt_double(v, num);
    put_str(out, num);
    cairn_buf_append(out, "\n", 1);
}

/* "name[suffix]{labels[,extra]} " — braces only when there is a label. */
static void put_sample_name(cairn_buf_t *out, const char *name, const char *suffix, const char *labels,
                            const char *extra)
{
    put_str(out, name);
    put_str(out, suffix);
    if (*labels || extra) {
        cairn_buf_append(out, "{", 1);
        put_str(out, labels);
        if (*labels && extra)
            cairn_buf_append(out, ",", 1);
        if (extra)
            put_str(out, extra);
        cairn_buf_append(out, "}", 1);
    }
    cairn_buf_append(out, " ", 1);
}

static void render_hist(cairn_buf_t *out, const family_t *f, const series_t *s)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= f->nbounds; i++) {
        cum += atomic_load_explicit(&s->counts[i], memory_order_relaxed);
        put_sample_name(out, f->name, "_bucket", s->labels, f->le[i]);
        put_u64_line(out, cum, 0);
    }
    put_sample_name(out, f->name, "_sum", s->labels, NULL);
    put_double_line(out, bits_double(atomic_load_explicit(&s->sum_bits, memory_order_relaxed)));
    put_sample_name(out, f->name, "_count", s->labels, NULL);
    put_u64_line(out, cum, 0);
}

static void render_family(cairn_buf_t *out, const family_t *f)
{
    put_str(out, "# HELP ");
    put_str(out, f->name);
    cairn_buf_append(out, " ", 1);
    put_help(out, f->help);
    put_str(out, "\n# TYPE ");
    put_str(out, f->name);
    cairn_buf_append(out, " ", 1);
    put_str(out, type_names[f->type]);
    cairn_buf_append(out, "\n", 1);
    for (const series_t *s = f->head; s; s = s->next) {
        switch (f->type) {
        case T_COUNTER:
            put_sample_name(out, f->name, "", s->labels, NULL);
            put_u64_line(out, atomic_load_explicit(&s->u, memory_order_relaxed), 0);
            break;
        case T_GAUGE:
            put_sample_name(out, f->name, "", s->labels, NULL);
            if (s->fn)
                put_double_line(out, s->fn(s->arg));
            else
                put_i64_line(out, atomic_load_explicit(&s->i, memory_order_relaxed));
            break;
        case T_HISTOGRAM:
            render_hist(out, f, s);
            break;
        }
    }
}

void cairn_metrics_render(cairn_metrics_t *m, cairn_buf_t *out)
{
    /* Hooks run unlocked (they may register): copy the list first. */
    pthread_mutex_lock(&m->mu);
    size_t nhooks = m->nhooks;
    hook_t *hooks = cairn_malloc((nhooks ? nhooks : 1) * sizeof *hooks);
    if (nhooks)
        memcpy(hooks, m->hooks, nhooks * sizeof *hooks);
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < nhooks; i++)
        hooks[i].fn(hooks[i].arg);
    free(hooks);

    pthread_mutex_lock(&m->mu);
    for (const family_t *f = m->head; f; f = f->next)
        render_family(out, f);
    pthread_mutex_unlock(&m->mu);
}
