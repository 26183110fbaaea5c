/*
 * main.c — cairn-node: serves the fragments of one data directory.
 *
 *   cairn-node --config FILE --id N --data DIR [--listen HOST:PORT] [--log-level L]
 *
 * Reads the cluster config (secret, timeouts, this node's address), opens
 * the fragment store (which also clears writes a crash left behind), starts
 * the scrubber ([cluster] scrub_rate_mb, scrub_interval_s; scrub.h), and
 * runs the request server until SIGTERM or SIGINT. On a signal it stops
 * accepting, lets requests in progress finish their disk work, and exits 0;
 * a second signal exits at once.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/cfg.h"
#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/srv.h"
#include "cairn/wire.h"
#include "frag_store.h"
#include "scrub.h"
#include "node_metrics.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cairn-node --config FILE --id N --data DIR [options]\n"
            "\n"
            "Stores erasure-coded fragments for a cairn cluster.\n"
            "\n"
            "  --config FILE      cluster configuration (INI)\n"
            "  --id N             this node's id: the [node.N] section of the config\n"
            "  --data DIR         data directory (created if missing)\n"
            "  --listen HOST:PORT listen here instead of the config's node address\n"
            "  --log-level L      debug, info, warn or error (default: config, else info)\n"
            "  --help             this text\n");
}

typedef struct {
    sigset_t set;
    cairn_srv_t *srv;
} sigctx_t;

/* All threads block SIGTERM/SIGINT; this one takes them synchronously, so
 * stopping runs as ordinary code instead of in a signal handler. */
static void *signal_main(void *arg)
{
    sigctx_t *sc = arg;
    int sig;
    if (sigwait(&sc->set, &sig) != 0)
        return NULL;
    cairn_log(CAIRN_LOG_INFO, 0, "%s: stopping", strsignal(sig));
    cairn_srv_stop(sc->srv);
    if (sigwait(&sc->set, &sig) == 0)
        _exit(0);
    return NULL;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"id", required_argument, NULL, 'i'},
        {"data", required_argument, NULL, 'd'},   {"listen", required_argument, NULL, 'l'},
        {"log-level", required_argument, NULL, 'L'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *data = NULL, *listen_addr = NULL, *level_name = NULL;
    long id = -1;
    int o;
    while ((o = getopt_long(argc, argv, "c:i:d:l:L:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c': config = optarg; break;
        case 'd': data = optarg; break;
        case 'l': listen_addr = optarg; break;
        case 'L': level_name = optarg; break;
        case 'i': {
            char *end;
            errno = 0;
            id = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || errno != 0 || id < 1 || id > UINT32_MAX) {
                fprintf(stderr, "cairn-node: bad --id '%s': expected a positive integer\n", optarg);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || config == NULL || data == NULL || id < 0) {
        if (optind < argc)
            fprintf(stderr, "cairn-node: unexpected argument '%s'\n", argv[optind]);
        else
            fprintf(stderr, "cairn-node: --config, --id and --data are required\n");
        usage(stderr);
        return 2;
    }

    cairn_cfg_t *cfg = cairn_calloc(1, sizeof(*cfg));
    char err[512];
    if (cairn_cfg_load(config, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "cairn-node: %s\n", err);
        return 2;
    }
    if (level_name == NULL && cfg->log_level[0] != '\0')
        level_name = cfg->log_level;
    int level = level_name ? cairn_log_parse_level(level_name) : CAIRN_LOG_INFO;
    if (level < 0) {
        fprintf(stderr, "cairn-node: bad log level '%s'\n", level_name);
        return 2;
    }
    char logid[32];
    snprintf(logid, sizeof logid, "node-%ld", id);
    cairn_log_init("node", logid, level);

    const cairn_cfg_node_t *me = cairn_cfg_node(cfg, (uint32_t)id);
    if (me == NULL && listen_addr == NULL) {
        fprintf(stderr, "cairn-node: no [node.%ld] in %s (or give --listen)\n", id, config);
        return 2;
    }
    if (listen_addr == NULL)
        listen_addr = me->addr;

    signal(SIGPIPE, SIG_IGN);
    sigctx_t sc;
    sigemptyset(&sc.set);
    sigaddset(&sc.set, SIGTERM);
    sigaddset(&sc.set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sc.set, NULL); /* inherited by every thread started below */

    cairn_wire_key_t *key;
    int rc = cairn_wire_key_create(cfg->secret, strlen(cfg->secret), &key);
    if (rc != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "cluster secret: %s", cairn_strerror(rc));
        return 1;
    }
    cairn_fstore_t *store;
    if ((rc = cairn_fstore_open(data, (uint32_t)id, &store)) != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "data directory %s: %s", data, cairn_strerror(rc));
        return 1;
    }
    cairn_scrub_opts_t so = {
        .enabled = cfg->scrub_rate_mb > 0,
        .rate_bps = (uint64_t)cfg->scrub_rate_mb * 1000000,
        .interval_ms = (int64_t)cfg->scrub_interval_s * 1000,
        .keep_ms = CAIRN_SCRUB_KEEP_MS,
    };
    cairn_scrub_t *scrub = cairn_scrub_create(store, &so);
    if ((rc = cairn_scrub_start(scrub)) != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "scrubber: %s", cairn_strerror(rc));
        return 1;
    }
    cairn_fstore_set_scrub(store, scrub);
    int lfd = cairn_listen(listen_addr, 0);
    if (lfd < 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "listen on %s: %s", listen_addr, cairn_strerror(lfd));
        return 1;
    }
    node_metrics_t metrics; /* requests are counted by wrapping the store's routes */
    if (node_metrics_start(&metrics, me ? me->admin_addr : NULL, (uint32_t)id, data, store, scrub) != 0)
        return 1; /* logged */
    cairn_srv_t *srv;
    if ((rc = cairn_srv_create(lfd, key, cairn_srv_metrics_routes(metrics.srv), cairn_fstore_nroutes, metrics.srv,
                               cfg->io_timeout_ms, &srv)) != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "server: %s", cairn_strerror(rc));
        return 1;
    }
    sc.srv = srv;
    pthread_t sigthr;
    if ((rc = pthread_create(&sigthr, NULL, signal_main, &sc)) != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "pthread_create: %s", strerror(rc));
        return 1;
    }
    pthread_detach(sigthr);

    char bound[160];
    if (cairn_local_addr(lfd, bound, sizeof bound) != 0)
        snprintf(bound, sizeof bound, "%s", listen_addr);
    cairn_log(CAIRN_LOG_INFO, 0, "listening on %s, data %s, io timeout %d ms, scrub %d MB/s every %d s", bound, data,
              cfg->io_timeout_ms, cfg->scrub_rate_mb, cfg->scrub_interval_s);

    rc = cairn_srv_run(srv);
    if (rc != 0)
        cairn_log(CAIRN_LOG_ERROR, 0, "accept loop: %s", cairn_strerror(rc));
    cairn_srv_destroy(srv);
    close(lfd);
    cairn_fstore_set_scrub(store, NULL);
    cairn_scrub_destroy(scrub);
    node_metrics_stop(&metrics);
    cairn_fstore_close(store);
    cairn_wire_key_destroy(key);
    free(cfg);
    cairn_log(CAIRN_LOG_INFO, 0, "stopped");
    return rc == 0 ? 0 : 1;
}
