/*
 * metrics.h — a small registry of counters, gauges and histograms, rendered
 * in the Prometheus text exposition format 0.0.4 (served by adminhttp.h).
 *
 * Model. A registry holds families (one metric name, one type, one help
 * line) and each family holds series (one label set each). Registration
 * returns a series handle that stays valid until the registry is destroyed;
 * updating it is one relaxed atomic operation, from any thread, without a
 * lock and without allocating. Registration itself takes a mutex and
 * allocates, so do it at start-up, or once per label set and cache the
 * handle (a table of atomic pointers filled on first use is the usual way
 * for a label such as an HTTP status).
 *
 *   cairn_counter_t *puts = cairn_metrics_counter(m, "cairn_node_requests_total",
 *                                                 "Requests served.", "op=\"frag_put\",result=\"ok\"");
 *   cairn_counter_add(puts, 1);
 *
 * Types
 * - counter: uint64, only goes up (cairn_counter_add).
 * - gauge: int64, set or moved (cairn_gauge_set / cairn_gauge_add); or a
 *   callback gauge whose value a function returns at scrape time (values
 *   owned elsewhere: a Raft term, free disk space).
 * - histogram: fixed bucket upper bounds chosen at registration (seconds for
 *   latency: CAIRN_METRICS_LATENCY_BOUNDS), rendered as cumulative
 *   _bucket{le=...} series plus _sum and _count.
 *
 * Names and labels. A metric name matches [a-zA-Z_:][a-zA-Z0-9_:]*. Labels
 * are given as a fixed string in exposition syntax without the braces:
 * `op="get",status="200"` (NULL or "" for none); cairn_metrics_labels()
 * builds one with escaping. Registering the same name and labels again
 * returns the same series, so lazy registration from several threads is
 * safe. A malformed name or label string, or a name registered with another
 * type, is a programming error: CAIRN_ASSERT.
 *
 * Scrape hooks (cairn_metrics_on_scrape) run at the start of every render,
 * before the registry is locked: they may refresh several gauges from one
 * expensive read (one Raft status call for role, term and commit index) and
 * may register new series. Gauge callbacks run while the registry is
 * locked and must not register anything.
 *
 * Caveats
 * - Series are never removed (the registry only grows); keep label values
 *   from a small fixed set.
 * - A histogram's _sum and its buckets are separate atomics: a render that
 *   races an observation may see one updated and not the other. _count is
 *   computed from the buckets, so buckets and _count always agree.
 */
#ifndef CAIRN_METRICS_H
#define CAIRN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/buf.h"

typedef struct cairn_metrics_s cairn_metrics_t;
typedef struct cairn_counter_s cairn_counter_t;
typedef struct cairn_gauge_s cairn_gauge_t;
typedef struct cairn_hist_s cairn_hist_t;

/* Request latency buckets, seconds: 1 ms to 10 s. */
#define CAIRN_METRICS_LATENCY_BOUNDS \
    {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
#define CAIRN_METRICS_MAX_BOUNDS 32

/* A new, empty registry (never fails: allocation failure aborts). */
cairn_metrics_t *cairn_metrics_create(void);
/* Free the registry and every series; handles become invalid. NULL is fine. */
void cairn_metrics_destroy(cairn_metrics_t *m);

/* Find or register a series. name, help and labels are copied. */
cairn_counter_t *cairn_metrics_counter(cairn_metrics_t *m, const char *name, const char *help, const char *labels);
cairn_gauge_t *cairn_metrics_gauge(cairn_metrics_t *m, const char *name, const char *help, const char *labels);
/* bounds: nbounds (1..CAIRN_METRICS_MAX_BOUNDS) strictly increasing finite
 * upper bounds (+Inf is implied); NULL/0 for CAIRN_METRICS_LATENCY_BOUNDS.
 * Every series of a family uses the bounds of its first registration. */
cairn_hist_t *cairn_metrics_histogram(cairn_metrics_t *m, const char *name, const char *help, const char *labels,
                                      const double *bounds, size_t nbounds);
/* A gauge read at scrape time: fn(arg) on the rendering thread, with the
 * registry locked (fn must not register metrics). arg is borrowed and must
 * outlive the registry. Registering the same name and labels again replaces
 * fn and arg. */
void cairn_metrics_gauge_fn(cairn_metrics_t *m, const char *name, const char *help, const char *labels,
                            double (*fn)(void *arg), void *arg);
/* Call fn(arg) at the start of every render, in registration order, on the
 * rendering thread and without the registry lock. arg is borrowed. */
void cairn_metrics_on_scrape(cairn_metrics_t *m, void (*fn)(void *arg), void *arg);

/* Updates: lock-free, any thread. */
void cairn_counter_add(cairn_counter_t *c, uint64_t n);
void cairn_gauge_set(cairn_gauge_t *g, int64_t v);
void cairn_gauge_add(cairn_gauge_t *g, int64_t delta);
/* v in the histogram's unit (seconds for latency). NaN is ignored. */
void cairn_hist_observe(cairn_hist_t *h, double v);

/* Current values, for tests and for code that reads its own metrics. */
uint64_t cairn_counter_value(const cairn_counter_t *c);
int64_t cairn_gauge_value(const cairn_gauge_t *g);
/* Observations so far and their sum. */
uint64_t cairn_hist_count(const cairn_hist_t *h, double *sum);

/* Append every family to out in the text exposition format 0.0.4
 * (Content-Type "text/plain; version=0.0.4"): "# HELP", "# TYPE", then one
 * line per sample, families and series in registration order. Runs the
 * scrape hooks first. Cost: O(series + buckets), one lock hold. */
void cairn_metrics_render(cairn_metrics_t *m, cairn_buf_t *out);

/*
 * Build a label string from NULL-terminated name/value pairs:
 *   cairn_metrics_labels(buf, sizeof buf, "zone", zone, "node", "3", NULL)
 *   -> zone="rack \"a\"",node="3"
 * Values are escaped (\\, \", \n). Returns 0, or CAIRN_ETOOBIG when the
 * result does not fit in outsz (out then holds ""), CAIRN_EINVAL for a bad
 * label name.
 */
int cairn_metrics_labels(char *out, size_t outsz, ...) __attribute__((sentinel));

/*
 * The series every cairn service exports: cairn_service_info{service,id} 1
 * (so a dashboard can name the target), process_start_time_seconds (Unix
 * time), and, read from /proc/self at scrape time,
 * process_resident_memory_bytes and process_open_fds.
 */
void cairn_metrics_service(cairn_metrics_t *m, const char *service, const char *id);

/* Monotonic clock in nanoseconds, for measuring durations to observe. */
int64_t cairn_metrics_now_ns(void);

#endif
