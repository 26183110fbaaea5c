/*
 * main.c — cairn-meta: one replica of the metadata service.
 *
 *   cairn-meta --config FILE --data DIR [--id N] [--join] [--listen HOST:PORT]
 *              [--raft-addr IP:PORT] [--log-level L]
 *
 * The replica's identity is its [meta.<id>] section (the only one if there
 * is just one): its service address and its Raft address. DIR holds the
 * LMDB database and DIR/raft the Raft log and snapshots.
 *
 * A replica whose Raft directory is pristine bootstraps the group from the
 * [meta.<id>] sections (every replica does the same, so their first entries
 * agree), unless --join is given: then it waits until the leader adds it
 * (cairn-admin meta add), which is how a new or wiped replica enters.
 *
 * Start-up: open the database, start Raft, then make sure the bootstrap
 * user of the config ([s3] access_key / secret_key, owner id = the access
 * key) exists. Only the leader can write it; every replica waits (at most
 * READY_WAIT_MS) until it is committed and visible here and a leader is
 * known, and only then listens, so "the port is open" means "ready" (a
 * joining replica listens at once). After
 * that it serves the internal protocol until SIGTERM or SIGINT. Shutdown
 * stops accepting, hands leadership over if this replica leads, stops Raft,
 * waits for the connection threads, and closes the database.
 *
 * Exit status: 0 after a signal, 1 on a runtime failure, 2 on bad usage or
 * configuration.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "cairn/cfg.h"
#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/srv.h"
#include "cairn/wire.h"
#include "fsm.h"
#include "meta_metrics.h"
#include "raft_glue.h"
#include "rpc.h"

#define READY_WAIT_MS 15000

static void usage(FILE *out)
{
    fprintf(out, "usage: cairn-meta --config FILE --data DIR [--id N] [--join] [--listen HOST:PORT]\n"
                 "                  [--raft-addr IP:PORT] [--log-level L] [--help]\n"
                 "  --config FILE        cluster configuration (INI)\n"
                 "  --data DIR           database and Raft directory (created if missing)\n"
                 "  --id N               this replica's [meta.<id>] (default: the only one)\n"
                 "  --join               never bootstrap; wait to be added (cairn-admin meta add)\n"
                 "  --listen HOST:PORT   service address (default: addr of [meta.<id>])\n"
                 "  --raft-addr IP:PORT  Raft address (default: raft_addr of [meta.<id>])\n"
                 "  --log-level L        debug, info, warn or error (default: [log] level of the config)\n");
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

/* The bootstrap user, written by whichever replica leads; every replica
 * retries until it sees it (a follower's submit answers ENOTLEADER). */
typedef struct {
    meta_rpc_t *rpc;
    const cairn_cfg_t *cfg;
    pthread_mutex_t mu;
    int stop, done;
    pthread_t thread;
} ensure_t;

static void *run_ensure(void *arg)
{
    ensure_t *e = arg;
    int last = 0;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        int stop = e->stop;
        pthread_mutex_unlock(&e->mu);
        if (stop)
            return NULL;
        int rc = meta_rpc_ensure_user(e->rpc, e->cfg->access_key, e->cfg->secret_key, e->cfg->access_key, "cairn");
        if (rc == 0) {
            pthread_mutex_lock(&e->mu);
            e->done = 1;
            pthread_mutex_unlock(&e->mu);
            return NULL;
        }
        if (rc != CAIRN_ENOTLEADER && rc != last)
            cairn_log(CAIRN_LOG_WARN, 0, "storing the bootstrap user: %s (retrying)", cairn_strerror(rc));
        last = rc;
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Does directory path hold anything besides "." and ".."? */
static int dir_has_files(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    struct dirent *e;
    int any = 0;
    while (!any && (e = readdir(d)) != NULL)
        any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return any;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},    {"data", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},    {"log-level", required_argument, NULL, 'v'},
        {"id", required_argument, NULL, 'i'},        {"join", no_argument, NULL, 'j'},
        {"raft-addr", required_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *data = NULL, *listen_addr = NULL, *level_name = NULL, *raft_addr = NULL;
    long id = 0;
    int join = 0;
    int o;
    char *end;
    while ((o = getopt_long(argc, argv, "c:d:l:v:i:jr:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c': config = optarg; break;
        case 'd': data = optarg; break;
        case 'l': listen_addr = optarg; break;
        case 'v': level_name = optarg; break;
        case 'r': raft_addr = optarg; break;
        case 'j': join = 1; break;
        case 'i':
            id = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || id < 1 || id > UINT32_MAX) {
                fprintf(stderr, "cairn-meta: bad --id '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (config == NULL || data == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN); /* libraft writes to peers that may be gone */
    static cairn_cfg_t cfg;   /* large (node table): not on the stack */
    char err[256];
    if (cairn_cfg_load(config, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "cairn-meta: %s\n", err);
        return 2;
    }
    if (id == 0 && cfg.nmetas == 1)
        id = cfg.metas[0].id;
    if (id == 0) {
        fprintf(stderr, "cairn-meta: --id is required (%zu [meta.<id>] sections in %s)\n", cfg.nmetas, config);
        return 2;
    }
    const cairn_cfg_meta_t *me = cairn_cfg_replica(&cfg, (uint32_t)id);
    if (listen_addr == NULL)
        listen_addr = me ? me->addr : NULL;
    if (raft_addr == NULL)
        raft_addr = me ? me->raft_addr : NULL;
    if (listen_addr == NULL || raft_addr == NULL) {
        fprintf(stderr, "cairn-meta: no [meta.%ld] in %s: give --listen and --raft-addr\n", id, config);
        return 2;
    }
    if (me == NULL && !join) {
        fprintf(stderr, "cairn-meta: replica %ld is not in the bootstrap configuration of %s: use --join\n", id,
                config);
        return 2;
    }
    int level = cairn_log_parse_level(level_name ? level_name : cfg.log_level);
    if (level < 0) {
        fprintf(stderr, "cairn-meta: bad log level '%s'\n", level_name ? level_name : cfg.log_level);
        return 2;
    }
    cairn_log_init("meta", listen_addr, level);

    char raft_dir[4096];
    if ((size_t)snprintf(raft_dir, sizeof raft_dir, "%s/raft", data) >= sizeof raft_dir) {
        fprintf(stderr, "cairn-meta: --data path too long\n");
        return 2;
    }
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
    int lfd = -1, ensure_started = 0, sig = 0;
    ensure_t ensure = {.cfg = &cfg};
    static meta_metrics_t metrics; /* zero until started: stopping it is then a no-op */
    pthread_mutex_init(&ensure.mu, NULL);
    /* The log is the durable copy: LMDB commits without fsync. */
    int rc = meta_fsm_create(data, META_FSM_NOSYNC, &fsm);
    if (rc != 0)
        goto out; /* logged by fsm */
    if (!dir_has_files(raft_dir) && meta_fsm_applied(fsm) > 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "%s holds a database (applied index %llu) but %s holds no Raft log: "
                  "refusing to start a replica from state the group does not know; empty %s to join afresh",
                  data, (unsigned long long)meta_fsm_applied(fsm), raft_dir, data);
        goto out;
    }
    if ((rc = cairn_wire_key_create(cfg.secret, strlen(cfg.secret), &key)) != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "cluster key: %s", cairn_strerror(rc));
        goto out;
    }
    meta_log_opts_t lo = {
        .id = (uint64_t)id, .raft_addr = raft_addr, .dir = raft_dir, .join = join, .cfg = &cfg, .key = key};
    if ((rc = meta_log_create(fsm, &lo, &log)) != 0)
        goto out; /* logged */
    meta_rpc_t rpc = {.fsm = fsm, .log = log};
    /* Before waiting for a leader, so /health can tell why it is not ready. */
    if (meta_metrics_start(&metrics, me ? me->admin_addr : NULL, (uint64_t)id, &rpc) != 0)
        goto out; /* logged */
    ensure.rpc = &rpc;
    if ((rc = pthread_create(&ensure.thread, NULL, run_ensure, &ensure)) != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "pthread_create: %s", strerror(rc));
        goto out;
    }
    ensure_started = 1;

    /* Wait to be useful before opening the port (see the top); a joining
     * replica has nothing to wait for until it is added. */
    int64_t t0 = cairn_now_ms();
    while (!join) {
        uint64_t lid;
        char laddr[128];
        meta_log_leader(log, &lid, laddr);
        pthread_mutex_lock(&ensure.mu);
        int done = ensure.done;
        pthread_mutex_unlock(&ensure.mu);
        if (done && lid != 0)
            break;
        if (cairn_now_ms() - t0 > READY_WAIT_MS) {
            cairn_log(CAIRN_LOG_WARN, 0, "no leader or no bootstrap user after %d ms: serving anyway",
                      READY_WAIT_MS);
            break;
        }
        struct timespec ts = {0, 50 * 1000000};
        if (sigtimedwait(&sigs, NULL, &ts) > 0) {
            status = 0;
            cairn_log(CAIRN_LOG_INFO, 0, "signal during start-up: shutting down");
            goto out;
        }
    }
    if ((lfd = cairn_listen(listen_addr, 0)) < 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "listen on %s: %s", listen_addr, cairn_strerror(lfd));
        goto out;
    }
    rc = cairn_srv_create(lfd, key, cairn_srv_metrics_routes(metrics.srv), meta_rpc_nroutes, metrics.srv,
                          cfg.io_timeout_ms, &srv);
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
    cairn_log(CAIRN_LOG_INFO, 0, "listening on %s, data in %s, applied index %llu, ready after %lld ms",
              listen_addr, data, (unsigned long long)meta_fsm_applied(fsm), (long long)(cairn_now_ms() - t0));
    sigwait(&sigs, &sig);
    cairn_srv_stop(srv);
    meta_log_stop(log); /* hand over leadership; handlers still waiting get EUNAVAIL */
    pthread_join(t, NULL);
    if (runner.rc != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "accept loop failed: %s", cairn_strerror(runner.rc));
    } else {
        cairn_log(CAIRN_LOG_INFO, 0, "signal %d: shutting down", sig);
        status = 0;
    }

out:
    if (ensure_started) {
        pthread_mutex_lock(&ensure.mu);
        ensure.stop = 1;
        pthread_mutex_unlock(&ensure.mu);
    }
    if (log)
        meta_log_stop(log); /* before joining ensure: it may wait on a commit */
    if (ensure_started)
        pthread_join(ensure.thread, NULL);
    cairn_srv_destroy(srv); /* waits for the connection threads */
    meta_metrics_stop(&metrics); /* its scrapes read the log */
    if (lfd >= 0)
        close(lfd);
    meta_log_destroy(log);
    meta_fsm_destroy(fsm); /* mdb_env_close */
    cairn_wire_key_destroy(key);
    pthread_mutex_destroy(&ensure.mu);
    return status;
}
