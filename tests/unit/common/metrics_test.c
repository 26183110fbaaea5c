/*
 * metrics_test.c — the metrics registry: registration, updates from many
 * threads, the exact text exposition output, label escaping, scrape hooks;
 * and the admin HTTP endpoint over loopback (routes, limits, a silent
 * client beside a scrape).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cairn/adminhttp.h"
#include "cairn/err.h"
#include "cairn/metrics.h"
#include "cairn/wire.h"

/* Render m into a NUL-terminated heap string. */
static char *render(cairn_metrics_t *m)
{
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_metrics_render(m, &b);
    cairn_buf_append(&b, "", 1);
    return (char *)b.base;
}

static void test_register_same_series(void **state)
{
    cairn_metrics_t *m = cairn_metrics_create();
    cairn_counter_t *a = cairn_metrics_counter(m, "x_total", "X.", "op=\"get\"");
    cairn_counter_t *b = cairn_metrics_counter(m, "x_total", "X.", "op=\"get\"");
    cairn_counter_t *c = cairn_metrics_counter(m, "x_total", "X.", "op=\"put\"");
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    cairn_counter_add(a, 2);
    cairn_counter_add(b, 3);
    assert_int_equal(cairn_counter_value(a), 5);
    assert_int_equal(cairn_counter_value(c), 0);
    cairn_gauge_t *g = cairn_metrics_gauge(m, "g", "G.", NULL);
    assert_ptr_equal(g, cairn_metrics_gauge(m, "g", "G.", ""));
    cairn_gauge_set(g, 10);
    cairn_gauge_add(g, -15);
    assert_int_equal(cairn_gauge_value(g), -5);
    cairn_metrics_destroy(m);
}

static double forty_two(void *arg) { return *(double *)arg; }

/* The whole output of a small registry, byte for byte. */
static void test_render_exact(void **state)
{
    cairn_metrics_t *m = cairn_metrics_create();
    cairn_counter_add(cairn_metrics_counter(m, "req_total", "Requests.\nAll of them \\ really.", "op=\"get\",status=\"200\""), 7);
    cairn_metrics_counter(m, "req_total", "ignored", "op=\"put\",status=\"500\"");
    cairn_gauge_set(cairn_metrics_gauge(m, "inflight", "In flight.", NULL), -3);
    static const double bounds[] = {0.25, 1};
    cairn_hist_t *h = cairn_metrics_histogram(m, "lat_seconds", "Latency.", "op=\"get\"", bounds, 2);
    cairn_hist_observe(h, 0.125);
    cairn_hist_observe(h, 0.25); /* on the bound: le="0.25" */
    cairn_hist_observe(h, 0.5);
    cairn_hist_observe(h, 30);
    cairn_hist_observe(h, NAN);  /* ignored */
    double v = 42.5;
    cairn_metrics_gauge_fn(m, "term", "Term.", NULL, forty_two, &v);
    cairn_metrics_histogram(m, "empty_seconds", "E.", NULL, bounds, 2);
    char *out = render(m);
    const char *want =
        "# HELP req_total Requests.\\nAll of them \\\\ really.\n"
        "# TYPE req_total counter\n"
        "req_total{op=\"get\",status=\"200\"} 7\n"
        "req_total{op=\"put\",status=\"500\"} 0\n"
        "# HELP inflight In flight.\n"
        "# TYPE inflight gauge\n"
        "inflight -3\n"
        "# HELP lat_seconds Latency.\n"
        "# TYPE lat_seconds histogram\n"
        "lat_seconds_bucket{op=\"get\",le=\"0.25\"} 2\n"
        "lat_seconds_bucket{op=\"get\",le=\"1\"} 3\n"
        "lat_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
        "lat_seconds_sum{op=\"get\"} 30.875\n"
        "lat_seconds_count{op=\"get\"} 4\n"
        "# HELP term Term.\n"
        "# TYPE term gauge\n"
        "term 42.5\n"
        "# HELP empty_seconds E.\n"
        "# TYPE empty_seconds histogram\n"
        "empty_seconds_bucket{le=\"0.25\"} 0\n"
        "empty_seconds_bucket{le=\"1\"} 0\n"
        "empty_seconds_bucket{le=\"+Inf\"} 0\n"
        "empty_seconds_sum 0\n"
        "empty_seconds_count 0\n";
    assert_string_equal(out, want);
    double sum;
    assert_int_equal(cairn_hist_count(h, &sum), 4);
    assert_true(sum == 30.875);
    free(out);
    cairn_metrics_destroy(m);
}

static void test_default_latency_bounds(void **state)
{
    cairn_metrics_t *m = cairn_metrics_create();
    cairn_hist_t *h = cairn_metrics_histogram(m, "d_seconds", "D.", NULL, NULL, 0);
    cairn_hist_observe(h, 0.0007);
    cairn_hist_observe(h, 11);
    char *out = render(m);
    assert_non_null(strstr(out, "d_seconds_bucket{le=\"0.001\"} 1\n"));
    assert_non_null(strstr(out, "d_seconds_bucket{le=\"0.0025\"} 1\n"));
    assert_non_null(strstr(out, "d_seconds_bucket{le=\"10\"} 1\n"));
    assert_non_null(strstr(out, "d_seconds_bucket{le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(out, "d_seconds_count 2\n"));
    free(out);
    cairn_metrics_destroy(m);
}

typedef struct {
    cairn_metrics_t *m;
    cairn_counter_t *c;
    cairn_gauge_t *g;
    cairn_hist_t *h;
    int id;
} worker_arg_t;

#define THREADS 4
#define ROUNDS 100000

static void *hammer(void *p)
{
    worker_arg_t *a = p;
    char labels[32];
    snprintf(labels, sizeof labels, "t=\"%d\"", a->id % 2);
    for (int i = 0; i < ROUNDS; i++) {
        cairn_counter_add(a->c, 1);
        cairn_gauge_add(a->g, (i & 1) ? -1 : 1);
        cairn_hist_observe(a->h, (i % 3) ? 0.25 : 2.0);
        if (i % 1000 == 0) /* lazy registration racing the others */
            cairn_counter_add(cairn_metrics_counter(a->m, "lazy_total", "L.", labels), 1000);
    }
    return NULL;
}

/* Lock-free updates from several threads lose nothing; a render in the
 * middle is harmless. */
static void test_threads(void **state)
{
    cairn_metrics_t *m = cairn_metrics_create();
    static const double bounds[] = {1};
    worker_arg_t args[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg_t){m, cairn_metrics_counter(m, "n_total", "N.", NULL),
                                 cairn_metrics_gauge(m, "g", "G.", NULL),
                                 cairn_metrics_histogram(m, "h", "H.", NULL, bounds, 1), i};
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &args[i]), 0);
    }
    free(render(m));
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(cairn_counter_value(args[0].c), THREADS * ROUNDS);
    assert_int_equal(cairn_gauge_value(args[0].g), 0);
    double sum;
    assert_int_equal(cairn_hist_count(args[0].h, &sum), THREADS * ROUNDS);
    uint64_t twos = THREADS * ((ROUNDS + 2) / 3);
    assert_true(fabs(sum - (2.0 * twos + 0.25 * (THREADS * ROUNDS - twos))) < 1e-6);
    uint64_t lazy = cairn_counter_value(cairn_metrics_counter(m, "lazy_total", "L.", "t=\"0\"")) +
                    cairn_counter_value(cairn_metrics_counter(m, "lazy_total", "L.", "t=\"1\""));
    assert_int_equal(lazy, (uint64_t)THREADS * (ROUNDS / 1000) * 1000);
    char *out = render(m);
    assert_non_null(strstr(out, "h_bucket{le=\"1\"} 266664\n"));
    free(out);
    cairn_metrics_destroy(m);
}

static void test_labels_helper(void **state)
{
    char buf[64];
    assert_int_equal(cairn_metrics_labels(buf, sizeof buf, "zone", "a\"b\\c\nd", "node", "3", NULL), 0);
    assert_string_equal(buf, "zone=\"a\\\"b\\\\c\\nd\",node=\"3\"");
    assert_int_equal(cairn_metrics_labels(buf, sizeof buf, NULL), 0);
    assert_string_equal(buf, "");
    assert_int_equal(cairn_metrics_labels(buf, sizeof buf, "1bad", "x", NULL), CAIRN_EINVAL);
    assert_int_equal(cairn_metrics_labels(buf, 10, "zone", "abcdefgh", NULL), CAIRN_ETOOBIG);
    assert_string_equal(buf, "");
    /* the helper's output is accepted by registration */
    cairn_metrics_t *m = cairn_metrics_create();
    assert_int_equal(cairn_metrics_labels(buf, sizeof buf, "zone", "r\"1", NULL), 0);
    cairn_counter_add(cairn_metrics_counter(m, "z_total", "Z.", buf), 1);
    char *out = render(m);
    assert_non_null(strstr(out, "z_total{zone=\"r\\\"1\"} 1\n"));
    free(out);
    cairn_metrics_destroy(m);
}

typedef struct {
    cairn_metrics_t *m;
    int calls;
} hook_arg_t;

static void hook(void *p)
{
    hook_arg_t *a = p;
    a->calls++;
    cairn_gauge_set(cairn_metrics_gauge(a->m, "calls", "Hook calls.", NULL), a->calls);
}

static void test_scrape_hook(void **state)
{
    cairn_metrics_t *m = cairn_metrics_create();
    hook_arg_t a = {m, 0};
    cairn_metrics_on_scrape(m, hook, &a);
    char *out = render(m);
    assert_non_null(strstr(out, "calls 1\n"));
    free(out);
    out = render(m);
    assert_non_null(strstr(out, "calls 2\n"));
    free(out);
    cairn_metrics_destroy(m);
}

static void test_service_series(void **state)
{
    cairn_metrics_t *m = cairn_metrics_create();
    cairn_metrics_service(m, "node", "7");
    char *out = render(m);
    assert_non_null(strstr(out, "cairn_service_info{service=\"node\",id=\"7\"} 1\n"));
    assert_non_null(strstr(out, "# TYPE process_resident_memory_bytes gauge\n"));
    assert_non_null(strstr(out, "\nprocess_open_fds "));
    assert_null(strstr(out, "NaN"));
    free(out);
    cairn_metrics_destroy(m);
}

/* ---- the admin endpoint ---- */

typedef struct {
    int healthy;
} health_t;

static int on_health(void *arg, char *why, size_t n)
{
    health_t *h = arg;
    if (h->healthy)
        return 0;
    snprintf(why, n, "no leader");
    return 1;
}

static int connect_to(const char *addr)
{
    struct sockaddr_storage ss;
    unsigned len;
    assert_int_equal(cairn_addr_parse(addr, &ss, &len), 0);
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
    return fd;
}

/* Send req, read until the server closes (at most 10 s); the answer in a static buffer. */
static const char *exchange_fd(int fd, const char *req, size_t reqlen)
{
    static char buf[1 << 16];
    if (reqlen)
        assert_int_equal(send(fd, req, reqlen, MSG_NOSIGNAL), (ssize_t)reqlen);
    size_t n = 0;
    int64_t deadline = cairn_now_ms() + 10000;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int left = (int)(deadline - cairn_now_ms());
        assert_true(left > 0);
        if (poll(&p, 1, left) <= 0)
            continue;
        ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    close(fd);
    return buf;
}

static const char *exchange(const char *addr, const char *req)
{
    return exchange_fd(connect_to(addr), req, strlen(req));
}

static void test_admin_routes(void **state)
{
    cairn_metrics_t *m = cairn_metrics_create();
    cairn_counter_add(cairn_metrics_counter(m, "hits_total", "Hits.", NULL), 5);
    health_t h = {1};
    cairn_adminhttp_t *a;
    assert_int_equal(cairn_adminhttp_create("127.0.0.1:0", m, on_health, &h, &a), 0);
    const char *addr = cairn_adminhttp_addr(a);
    assert_non_null(strstr(addr, "127.0.0.1:"));

    const char *r = exchange(addr, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(r, "Connection: close\r\n"));
    assert_non_null(strstr(r, "\r\n\r\nok\n"));
    h.healthy = 0;
    r = exchange(addr, "GET /health HTTP/1.0\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 503 ", 13) == 0);
    assert_non_null(strstr(r, "\r\n\r\nno leader\n"));

    r = exchange(addr, "GET /metrics?x=1 HTTP/1.1\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(r, "\nhits_total 5\n"));
    char clen[64];
    const char *body = strstr(r, "\r\n\r\n") + 4;
    snprintf(clen, sizeof clen, "Content-Length: %zu\r\n", strlen(body));
    assert_non_null(strstr(r, clen));

    r = exchange(addr, "GET /nope HTTP/1.1\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 404 ", 13) == 0);
    r = exchange(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 405 ", 13) == 0);
    assert_non_null(strstr(r, "Allow: GET\r\n"));
    r = exchange(addr, "garbage\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 400 ", 13) == 0);

    /* more than 8 KiB without the end of the headers */
    char *big = malloc(CAIRN_ADMINHTTP_REQ_MAX + 100);
    memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
    memset(big + 26, 'a', CAIRN_ADMINHTTP_REQ_MAX + 100 - 26);
    r = exchange_fd(connect_to(addr), big, CAIRN_ADMINHTTP_REQ_MAX + 100);
    assert_true(strncmp(r, "HTTP/1.1 431 ", 13) == 0);
    free(big);

    cairn_adminhttp_destroy(a);
    cairn_metrics_destroy(m);
}

/* Silent clients hold a slot each, not the server: scrapes go on, and a
 * flood beyond the slot count drops the oldest silent one. */
static void test_admin_silent_clients(void **state)
{
    cairn_metrics_t *m = cairn_metrics_create();
    cairn_adminhttp_t *a;
    assert_int_equal(cairn_adminhttp_create("127.0.0.1:0", m, NULL, NULL, &a), 0);
    const char *addr = cairn_adminhttp_addr(a);
    int silent[CAIRN_ADMINHTTP_MAX_CONNS + 4];
    for (int i = 0; i < CAIRN_ADMINHTTP_MAX_CONNS + 4; i++)
        silent[i] = connect_to(addr);
    /* a partial request line, then nothing */
    assert_int_equal(send(silent[5], "GET /met", 8, 0), 8);
    int64_t t0 = cairn_now_ms();
    const char *r = exchange(addr, "GET /health HTTP/1.1\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_true(cairn_now_ms() - t0 < 2000);
    /* the first silent client was dropped to make room */
    char c;
    struct pollfd p = {silent[0], POLLIN, 0};
    assert_int_equal(poll(&p, 1, 2000), 1);
    assert_int_equal(recv(silent[0], &c, 1, 0), 0);
    for (int i = 0; i < CAIRN_ADMINHTTP_MAX_CONNS + 4; i++)
        close(silent[i]);
    cairn_adminhttp_destroy(a);
    cairn_metrics_destroy(m);
}

static void test_admin_bad_addr(void **state)
{
    cairn_metrics_t *m = cairn_metrics_create();
    cairn_adminhttp_t *a = NULL;
    assert_int_equal(cairn_adminhttp_create("nonsense", m, NULL, NULL, &a), CAIRN_EINVAL);
    assert_null(a);
    cairn_metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_same_series), cmocka_unit_test(test_render_exact),
        cmocka_unit_test(test_default_latency_bounds), cmocka_unit_test(test_threads),
        cmocka_unit_test(test_labels_helper),         cmocka_unit_test(test_scrape_hook),
        cmocka_unit_test(test_service_series),        cmocka_unit_test(test_admin_routes),
        cmocka_unit_test(test_admin_silent_clients),  cmocka_unit_test(test_admin_bad_addr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
