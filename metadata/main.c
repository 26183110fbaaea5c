/*
 * main.c — cairn-meta: the metadata service.
 *
 *   cairn-meta --config FILE --data DIR [--listen HOST:PORT] [--log-level L]
 *
 * Opens (creating if needed) the LMDB database in DIR, makes sure the
 * bootstrap user of the config ([s3] access_key / secret_key, owner id = the
 * access key) exists, then serves the internal protocol until SIGTERM or
 * SIGINT. Shutdown stops accepting, waits for the connection threads, and
 * closes the database.
 *
 * Exit status: 0 after a signal, 1 on a runtime failure, 2 on bad usage or
 * configuration.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/cfg.h"
#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/srv.h"
#include "cairn/wire.h"
#include "fsm.h"
#include "rpc.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: cairn-meta --config FILE --data DIR [--listen HOST:PORT] [--log-level L] [--help]\n"
                 "  --config FILE      cluster configuration (INI)\n"
                 "  --data DIR         database directory (created if missing)\n"
                 "  --listen HOST:PORT address to serve on (default: [cluster] meta of the config)\n"
                 "  --log-level L      debug, info, warn or error (default: [log] level of the config)\n");
}

typedef struct {
    cairn_srv_t *srv;
    pthread_t main_thread;
    int rc;
} runner_t;

/* The accept loop, on its own thread, so the main thread can wait for signals. */
static void *run_srv(void *arg)
{
    runner_t *r = arg;
    r->rc = cairn_srv_run(r->srv);
    if (r->rc != 0)
        pthread_kill(r->main_thread, SIGTERM); /* wake the main thread: accept failed for good */
    return NULL;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"data", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'}, {"log-level", required_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *data = NULL, *listen_addr = NULL, *level_name = NULL;
    int o;
    while ((o = getopt_long(argc, argv, "c:d:l:v:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c': config = optarg; break;
        case 'd': data = optarg; break;
        case 'l': listen_addr = optarg; break;
        case 'v': level_name = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (config == NULL || data == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    static cairn_cfg_t cfg; /* large (node table): not on the stack */
    char err[256];
    if (cairn_cfg_load(config, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "cairn-meta: %s\n", err);
        return 2;
    }
    if (listen_addr == NULL)
        listen_addr = cfg.meta_addr;
    int level = cairn_log_parse_level(level_name ? level_name : cfg.log_level);
    if (level < 0) {
        fprintf(stderr, "cairn-meta: bad log level '%s'\n", level_name ? level_name : cfg.log_level);
        return 2;
    }
    cairn_log_init("meta", listen_addr, level);

    if (mkdir(data, 0700) != 0 && errno != EEXIST) {
        cairn_log(CAIRN_LOG_ERROR, 0, "mkdir %s: %s", data, strerror(errno));
        return 1;
    }

    /* Signals are taken by sigwait() on this thread only: block them before
     * any thread starts, so every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    int status = 1;
    meta_fsm_t *fsm = NULL;
    meta_log_t *log = NULL;
    cairn_wire_key_t *key = NULL;
    cairn_srv_t *srv = NULL;
    int lfd = -1;
    int rc = meta_fsm_create(data, 0, &fsm);
    if (rc != 0)
        goto out; /* logged by fsm */
    meta_log_create(fsm, &log);
    meta_rpc_t rpc = {.fsm = fsm, .log = log};
    rc = meta_rpc_ensure_user(&rpc, cfg.access_key, cfg.secret_key, cfg.access_key, "cairn");
    if (rc != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "cannot store the bootstrap user: %s", cairn_strerror(rc));
        goto out;
    }
    if ((rc = cairn_wire_key_create(cfg.secret, strlen(cfg.secret), &key)) != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "cluster key: %s", cairn_strerror(rc));
        goto out;
    }
    if ((lfd = cairn_listen(listen_addr, 0)) < 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "listen on %s: %s", listen_addr, cairn_strerror(lfd));
        goto out;
    }
    rc = cairn_srv_create(lfd, key, meta_rpc_routes, meta_rpc_nroutes, &rpc, cfg.io_timeout_ms, &srv);
    if (rc != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "server: %s", cairn_strerror(rc));
        goto out;
    }

    runner_t runner = {.srv = srv, .main_thread = pthread_self()};
    pthread_t t;
    if ((rc = pthread_create(&t, NULL, run_srv, &runner)) != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "pthread_create: %s", strerror(rc));
        goto out;
    }
    cairn_log(CAIRN_LOG_INFO, 0, "listening on %s, data in %s, applied index %llu", listen_addr, data,
              (unsigned long long)meta_fsm_applied(fsm));
    int sig = 0;
    sigwait(&sigs, &sig);
    cairn_srv_stop(srv);
    pthread_join(t, NULL);
    if (runner.rc != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "accept loop failed: %s", cairn_strerror(runner.rc));
    } else {
        cairn_log(CAIRN_LOG_INFO, 0, "signal %d: shutting down", sig);
        status = 0;
    }

out:
    cairn_srv_destroy(srv); /* waits for the connection threads */
    if (lfd >= 0)
        close(lfd);
    meta_log_destroy(log);
    meta_fsm_destroy(fsm); /* mdb_env_close */
    cairn_wire_key_destroy(key);
    return status;
}
