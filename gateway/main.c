/*
 * cairn-gateway — the S3 endpoint.
 *
 *   cairn-gateway --config FILE [--listen HOST:PORT] [--log-level L]
 *
 * Starts the worker pool, then one h2o event loop per thread, each with its
 * own SO_REUSEPORT listener so the kernel spreads connections.
 */
#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "gw.h"
#include "gw_metrics.h"
#include "gw_tls.h"

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock != NULL)
        gw_limits_accept(H2O_STRUCT_FROM_MEMBER(gw_thread_t, accept_ctx, listener->data), sock);
}

static void *thread_main(void *arg)
{
    gw_thread_t *th = arg;
    gw_t *gw = th->gw;
    h2o_context_init(&th->ctx, h2o_evloop_create(), &gw->h2o);
    h2o_multithread_register_receiver(th->ctx.queue, &th->done_receiver, gw_http_on_done);
    int fd = cairn_listen(gw->cfg.gw_listen, 1);
    if (fd < 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "listen on %s: %s", gw->cfg.gw_listen, cairn_strerror(fd));
        exit(1);
    }
    th->accept_ctx.ctx = &th->ctx;
    th->accept_ctx.hosts = gw->h2o.hosts;
    h2o_socket_t *ls = h2o_evloop_socket_create(th->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    ls->data = &th->accept_ctx;
    h2o_socket_read_start(ls, on_accept);
    while (h2o_evloop_run(th->ctx.loop, INT32_MAX) == 0)
        ;
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: cairn-gateway --config FILE [--listen HOST:PORT] [--log-level debug|info|warn|error]\n\n"
                 "Serves the S3 API. Options of the config file:\n");
    cairn_cfg_help(out);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", 1, NULL, 'c'}, {"listen", 1, NULL, 'l'},
                                         {"log-level", 1, NULL, 'v'}, {"help", 0, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *config = NULL, *listen_addr = NULL, *level = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:l:v:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'l': listen_addr = optarg; break;
        case 'v': level = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (config == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    static gw_t gw;
    char err[512];
    if (cairn_cfg_load(config, &gw.cfg, err, sizeof err) != 0) {
        fprintf(stderr, "cairn-gateway: %s\n", err);
        return 2;
    }
    if (listen_addr)
        snprintf(gw.cfg.gw_listen, sizeof gw.cfg.gw_listen, "%s", listen_addr);
    int lv = cairn_log_parse_level(level ? level : gw.cfg.log_level);
    if (lv < 0) {
        fprintf(stderr, "cairn-gateway: unknown log level\n");
        return 2;
    }
    cairn_log_init("gateway", "gw-1", lv);
    signal(SIGPIPE, SIG_IGN);

    SSL_CTX *tls = NULL; /* [gateway] tls_cert/tls_key: HTTPS on the S3 port, shared by every thread */
    if (gw_tls_create(&gw.cfg, &tls, err, sizeof err) != 0) {
        fprintf(stderr, "cairn-gateway: %s\n", err);
        return 1;
    }

    if (cairn_wire_key_create(gw.cfg.secret, strlen(gw.cfg.secret), &gw.key) != 0 ||
        cairn_ec_create(gw.cfg.k, gw.cfg.m, &gw.ec) != 0) {
        fprintf(stderr, "cairn-gateway: cannot set up the cluster key or the erasure code\n");
        return 1;
    }
    if (gw_map_start(&gw) != 0) {
        fprintf(stderr, "cairn-gateway: cannot start the cluster map thread\n");
        return 1;
    }
    if (gw_metrics_start(&gw) != 0)
        return 1; /* logged */

    h2o_config_init(&gw.h2o);
    gw.h2o.max_request_entity_size = gw.cfg.max_object_size;
    gw.h2o.http1.req_timeout = (uint64_t)gw.cfg.request_timeout_ms;
    gw.h2o.http2.idle_timeout = (uint64_t)gw.cfg.request_timeout_ms;
    h2o_hostconf_t *host = h2o_config_register_host(&gw.h2o, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    int nthreads = gw.cfg.gw_threads > 0 ? gw.cfg.gw_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads < 1)
        nthreads = 1;
    gw_thread_t *threads = cairn_calloc((size_t)nthreads, sizeof *threads);

    /* The handler finds its thread from req->conn->ctx (embedded in gw_thread_t). */
    h2o_create_handler(path, sizeof(h2o_handler_t))->on_req = gw_http_on_req;

    if (gw_pool_start(&gw, gw.cfg.gw_workers) != 0 || gw_gc_start(&gw) != 0) {
        fprintf(stderr, "cairn-gateway: cannot start workers\n");
        return 1;
    }
    cairn_log(CAIRN_LOG_INFO, 0, "listening on %s (%s, %d threads, %d workers, EC %d+%d, %zu nodes)", gw.cfg.gw_listen,
              tls ? "https" : "http", nthreads, gw.cfg.gw_workers, gw.cfg.k, gw.cfg.m, gw.map.n);
    for (int i = 0; i < nthreads; i++) {
        threads[i].gw = &gw;
        threads[i].accept_ctx.ssl_ctx = tls;
        if (i > 0)
            pthread_create(&threads[i].tid, NULL, thread_main, &threads[i]);
    }
    thread_main(&threads[0]);
    return 0;
}
