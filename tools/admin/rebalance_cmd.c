/*
 * rebalance_cmd.c — cairn-admin rebalance | repair | gc.
 *
 * rebalance: every fragment set whose fragments do not sit on the nodes the
 * current map chooses is moved, with the fewest moves (a fragment already
 * on a chosen node stays; see cairn_map_plan_moves). The walk goes in pages
 * of records in storage order; after each page the cursor and counters are
 * saved in the metadata tier (KV "rebalance"), so a stopped or killed run
 * resumes after the last finished page; redoing part of a page moves nothing
 * twice (a moved fragment already sits where the plan wants it). At the end
 * a sweep deletes copies a killed run left behind (a fragment present on a
 * node other than the one its record names).
 *
 * repair: lists what every node holds, then rebuilds each fragment that is
 * missing (lost disk, quarantined by the scrubber or a read) from the
 * others, onto the same node, or onto a chosen node when its node is out or
 * gone; sets with the fewest surviving fragments first. With --verify it
 * first has every node run a scrub pass at once (NODE_SCRUB_NOW) and waits
 * for them, so silent damage is quarantined, then rebuilt, in one run.
 *
 * gc: deletes fragments no record references: stale copies at once,
 * orphans (crashed PUTs) only when older than --min-age.
 *
 * The three take a cluster-wide lock (mover.h), so they never race each
 * other; clients may keep reading and writing throughout.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "cairn/err.h"
#include "mover.h"

#define STATE_NAME "rebalance"
enum { ST_NONE = CAIRN_JOB_NONE, ST_RUNNING = CAIRN_JOB_RUNNING, ST_STOPPED = CAIRN_JOB_STOPPED, ST_DONE = CAIRN_JOB_DONE };

typedef cairn_job_state_t rb_state_t;

/* ---- saved state (cairn_job_state_t under a KV name) ---- */

static void state_save_as(cairn_meta_client_t *mc, const char *name, rb_state_t *s)
{
    cairn_buf_t b;
    cairn_buf_init(&b);
    s->updated_ms = cairn_wall_ms();
    cairn_job_state_encode(s, &b);
    int rc = cairn_meta_kv_put(mc, 0, name, b.base, b.len);
    if (rc)
        fprintf(stderr, "cairn-admin: cannot save the %s progress: %s\n", name, cairn_strerror(rc));
    cairn_buf_dispose(&b);
}

static void state_save(cairn_meta_client_t *mc, rb_state_t *s) { state_save_as(mc, STATE_NAME, s); }

static int state_load(cairn_meta_client_t *mc, rb_state_t *s)
{
    memset(s, 0, sizeof *s);
    cairn_buf_t b;
    cairn_buf_init(&b);
    int rc = cairn_meta_kv_get(mc, 0, STATE_NAME, &b);
    if (rc == 0)
        cairn_job_state_decode(b.base, b.len, s); /* unreadable: start afresh */
    else if (rc == CAIRN_ENOTFOUND)
        rc = 0;
    cairn_buf_dispose(&b);
    return rc;
}

/* What this run measured of the cluster, for /metrics (UINT64_MAX: not measured). */
static void health_save(cairn_meta_client_t *mc, uint64_t misplaced, uint64_t degraded)
{
    cairn_cluster_health_t h = {cairn_wall_ms(), misplaced, degraded}, old;
    cairn_buf_t b;
    cairn_buf_init(&b);
    if (cairn_meta_kv_get(mc, 0, "health", &b) == 0 && cairn_cluster_health_decode(b.base, b.len, &old) == 0) {
        if (misplaced == UINT64_MAX)
            h.misplaced = old.misplaced;
        if (degraded == UINT64_MAX)
            h.degraded = old.degraded;
    }
    cairn_buf_reset(&b);
    cairn_cluster_health_encode(&h, &b);
    cairn_meta_kv_put(mc, 0, "health", b.base, b.len);
    cairn_buf_dispose(&b);
}

/* ---- planning ---- */

typedef struct {
    uint32_t from, to;
    uint64_t frags, bytes;
} flow_t;

typedef struct {
    admin_t *a;
    const cairn_map_t *map;
    void *scratch;
    /* plan totals */
    uint64_t sets, sets_moving, frags, bytes, unplaceable;
    flow_t *flows;
    size_t nflows, capflows;
    /* run: the jobs of the current page */
    mv_job_t *jobs;
    size_t njobs, capjobs;
    int collect;
    void *run; /* the run_t moving them (run_page) */
} plan_t;

/* Is the copy on node id unreadable by the map (out or gone)? */
static int node_lost(const cairn_map_t *map, uint32_t id)
{
    const cairn_map_node_t *x = cairn_map_node(map, id);
    return x == NULL || x->state == CAIRN_NODE_OUT;
}

static void flow_add(plan_t *p, uint32_t from, uint32_t to, uint64_t bytes)
{
    size_t i;
    for (i = 0; i < p->nflows && (p->flows[i].from != from || p->flows[i].to != to); i++)
        ;
    if (i == p->nflows) {
        if (p->nflows == p->capflows) {
            p->capflows = p->capflows ? p->capflows * 2 : 64;
            p->flows = cairn_realloc(p->flows, p->capflows * sizeof *p->flows);
        }
        p->flows[p->nflows++] = (flow_t){from, to, 0, 0};
    }
    p->flows[i].frags++;
    p->flows[i].bytes += bytes;
}

/* Where lines that are not the result go: with --json stdout holds only the result. */
static FILE *info_out(const admin_t *a) { return a->json ? stderr : stdout; }

/* A new job at the end of a growing array (rebalance's page, repair's list). */
static mv_job_t *job_new(mv_job_t **jobs, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        *jobs = cairn_realloc(*jobs, *cap * sizeof **jobs);
    }
    return &(*jobs)[(*n)++];
}

/* The moves one fragment set needs under the map. */
static int plan_set(void *arg, const admin_fragset_t *fs)
{
    plan_t *p = arg;
    const int nf = fs->k + fs->m;
    uint32_t want[CAIRN_MAX_FRAGS], to[CAIRN_MAX_FRAGS];
    p->sets++;
    if (cairn_map_pick(p->map, fs->oid, (size_t)nf, p->scratch, want) < nf) {
        p->unplaceable++;
        return 0;
    }
    if (cairn_map_plan_moves(fs->nodes, want, nf, to) == 0)
        return 0;
    mv_job_t tmp, *j = p->collect ? job_new(&p->jobs, &p->njobs, &p->capjobs) : &tmp;
    mv_job_from(j, fs, CAIRN_SCAN_OBJECTS);
    uint64_t fbytes = mv_frag_bytes(j);
    p->sets_moving++;
    for (int i = 0; i < nf; i++) {
        if (to[i] == fs->nodes[i])
            continue;
        j->to[i] = to[i];
        j->fix |= 1u << i;
        if (node_lost(p->map, fs->nodes[i]))
            j->bad |= 1u << i;
        p->frags++;
        p->bytes += fbytes;
        flow_add(p, fs->nodes[i], to[i], fbytes);
    }
    return 0;
}

/* ---- options shared by the commands ---- */

typedef struct {
    int dry_run, restart, parallel, verify;
    double rate;
    uint64_t min_age_s;
} opts_t;

static int parse_opts(int argc, char **argv, opts_t *o, const char *usage_text)
{
    static const struct option lo[] = {
        {"dry-run", no_argument, NULL, 'n'}, {"rate", required_argument, NULL, 'r'},
        {"parallel", required_argument, NULL, 'p'}, {"restart", no_argument, NULL, 'R'},
        {"min-age", required_argument, NULL, 'a'}, {"verify", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->parallel = 4;
    o->min_age_s = 3600;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'n': o->dry_run = 1; break;
        case 'R': o->restart = 1; break;
        case 'V': o->verify = 1; break;
        case 'r':
            o->rate = strtod(optarg, &end);
            if (*end || !(o->rate > 0)) {
                fprintf(stderr, "cairn-admin: --rate wants a positive number of MB/s, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'p':
            o->parallel = (int)strtol(optarg, &end, 10);
            if (*end || o->parallel < 1 || o->parallel > 64) {
                fprintf(stderr, "cairn-admin: --parallel wants 1..64, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'a':
            o->min_age_s = strtoull(optarg, &end, 10);
            if (*end || optarg[0] == '-' || optarg[0] == '\0') {
                fprintf(stderr, "cairn-admin: --min-age wants seconds, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    return -1;
}

static void on_signal(int sig)
{
    (void)sig;
    mover_stop();
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ---- stale copies ---- */

static int ref_set(void *arg, const admin_fragset_t *fs)
{
    inventory_t *refs = arg;
    for (int i = 0; i < fs->k + fs->m; i++)
        inventory_add(refs, fs->oid, (unsigned)i, fs->nodes[i], 0);
    return 0;
}

/* Every fragment any record names: live objects, parts of uploads in
 * progress, versions waiting for deletion. */
static int load_refs(cairn_meta_client_t *mc, inventory_t *refs)
{
    memset(refs, 0, sizeof *refs);
    int rc = 0;
    for (int t = CAIRN_SCAN_OBJECTS; t <= CAIRN_SCAN_GC && rc == 0; t++)
        rc = admin_walk(mc, t, NULL, 0, ref_set, NULL, refs);
    inventory_sort(refs);
    return rc;
}

typedef struct {
    uint64_t stale, stale_bytes, orphans, orphan_bytes, young, failed;
} sweep_t;

static int frag_call(admin_t *a, cairn_conn_t *c, uint16_t op, const inv_ent_t *e, cairn_buf_t *resp)
{
    uint8_t body[CAIRN_NODE_FRAG_REQ_MAX];
    struct iovec iov = {body, cairn_node_frag_req_encode(body, op, e->oid, e->index, 0, 0)};
    int32_t status = 0;
    int rc = cairn_conn_call(c, op, 0, &iov, 1, resp, &status);
    (void)a;
    return rc ? rc : status;
}

/* Delete what no record names: stale copies always, orphans older than
 * min_age_ms (min_age_ms < 0: never). inv must have been listed before refs
 * were loaded, so a record committed in between names its fragments. */
static int sweep(admin_t *a, const cairn_map_t *map, const inventory_t *inv, const inventory_t *refs,
                 int64_t min_age_ms, int dry_run, sweep_t *out)
{
    cairn_conn_t conns[CAIRN_MAP_MAX_NODES];
    uint8_t ready[CAIRN_MAP_MAX_NODES] = {0};
    cairn_buf_t resp;
    cairn_buf_init(&resp);
    memset(out, 0, sizeof *out);
    int64_t now = cairn_wall_ms();
    for (size_t i = 0; i < inv->n; i++) {
        const inv_ent_t *e = &inv->v[i];
        if (inventory_has(refs, e->oid, e->index, e->node))
            continue;
        int stale = inventory_has_any(refs, e->oid, e->index);
        size_t ni;
        for (ni = 0; ni < map->n && map->nodes[ni].id != e->node; ni++)
            ;
        if (ni == map->n)
            continue;
        if (!ready[ni]) {
            cairn_conn_init(&conns[ni], map->nodes[ni].addr, a->key, a->cfg.io_timeout_ms);
            ready[ni] = 1;
        }
        if (!stale) {
            if (min_age_ms < 0)
                continue;
            /* FRAG_STAT: header(64) u64 file_size i64 mtime_ms */
            if (frag_call(a, &conns[ni], CAIRN_OP_FRAG_STAT, e, &resp) != 0 || resp.len < 80)
                continue;
            int64_t mtime = (int64_t)cairn_le64_get(resp.base + 72);
            if (now - mtime < min_age_ms) {
                out->young++;
                continue;
            }
        }
        int rc = dry_run ? 0 : frag_call(a, &conns[ni], CAIRN_OP_FRAG_DELETE, e, &resp);
        if (rc != 0 && rc != CAIRN_ENOTFOUND) {
            out->failed++;
            continue;
        }
        if (stale)
            out->stale++, out->stale_bytes += e->size;
        else
            out->orphans++, out->orphan_bytes += e->size;
    }
    for (size_t i = 0; i < CAIRN_MAP_MAX_NODES; i++)
        if (ready[i])
            cairn_conn_dispose(&conns[i]);
    cairn_buf_dispose(&resp);
    return 0;
}

/* ---- rebalance ---- */

static const char rebalance_usage[] =
    "usage: cairn-admin rebalance [--dry-run] [--rate MB/s] [--parallel N] [--restart]\n"
    "       cairn-admin rebalance status\n"
    "Move every fragment whose node the current cluster map no longer chooses,\n"
    "with the fewest moves. Stop it any time (Ctrl-C, kill): running it again\n"
    "resumes where it stopped.\n"
    "  --dry-run      print the plan (fragments and bytes per source and target node), move nothing\n"
    "  --rate MB/s    limit the data written per second (default: no limit)\n"
    "  --parallel N   fragment sets moved at once (default 4)\n"
    "  --restart      ignore a stopped run's cursor and start from the first object\n"
    "  status         progress of the current or last run (from any host)\n";

static void print_plan(admin_t *a, const plan_t *p, uint64_t epoch)
{
    if (a->json) {
        printf("{\"epoch\":%llu,\"sets\":%llu,\"sets_moving\":%llu,\"fragments\":%llu,\"bytes\":%llu,"
               "\"unplaceable\":%llu,\"flows\":[",
               (unsigned long long)epoch, (unsigned long long)p->sets, (unsigned long long)p->sets_moving,
               (unsigned long long)p->frags, (unsigned long long)p->bytes, (unsigned long long)p->unplaceable);
        for (size_t i = 0; i < p->nflows; i++)
            printf("%s{\"from\":%u,\"to\":%u,\"fragments\":%llu,\"bytes\":%llu}", i ? "," : "", p->flows[i].from,
                   p->flows[i].to, (unsigned long long)p->flows[i].frags, (unsigned long long)p->flows[i].bytes);
        printf("]}\n");
        return;
    }
    printf("map epoch %llu: %llu fragment sets scanned, %llu to change: %llu fragments, %.1f MiB\n",
           (unsigned long long)epoch, (unsigned long long)p->sets, (unsigned long long)p->sets_moving,
           (unsigned long long)p->frags, (double)p->bytes / 1048576.0);
    if (p->unplaceable)
        printf("warning: %llu sets cannot be placed (fewer nodes up than k+m)\n", (unsigned long long)p->unplaceable);
    if (p->nflows)
        printf("%8s %8s %12s %12s\n", "FROM", "TO", "FRAGMENTS", "MiB");
    for (size_t i = 0; i < p->nflows; i++) {
        const cairn_map_node_t *x = cairn_map_node(p->map, p->flows[i].from);
        printf("%8u %8u %12llu %12.1f%s\n", p->flows[i].from, p->flows[i].to, (unsigned long long)p->flows[i].frags,
               (double)p->flows[i].bytes / 1048576.0,
               x == NULL ? "  (node gone: rebuilt)" : x->state == CAIRN_NODE_OUT ? "  (node out: rebuilt)" : "");
    }
}

static int rebalance_status(admin_t *a, cairn_meta_client_t *mc)
{
    rb_state_t s;
    int rc = state_load(mc, &s);
    if (rc) {
        fprintf(stderr, "cairn-admin: %s\n", cairn_strerror(rc));
        return 1;
    }
    double secs = s.started_ms ? (double)(s.updated_ms - s.started_ms) / 1000.0 : 0;
    if (a->json) {
        printf("{\"state\":\"%s\",\"epoch\":%llu,\"planned_fragments\":%llu,\"planned_bytes\":%llu,"
               "\"moved_fragments\":%llu,\"moved_bytes\":%llu,\"failed\":%llu,\"conflicts\":%llu,"
               "\"started_ms\":%lld,\"updated_ms\":%lld}\n",
               cairn_job_state_name(s.state), (unsigned long long)s.epoch, (unsigned long long)s.planned_frags,
               (unsigned long long)s.planned_bytes, (unsigned long long)s.done_frags,
               (unsigned long long)s.done_bytes, (unsigned long long)s.failed, (unsigned long long)s.conflicts,
               (long long)s.started_ms, (long long)s.updated_ms);
        return 0;
    }
    if (s.state == ST_NONE) {
        printf("no rebalance has run\n");
        return 0;
    }
    printf("rebalance %s (map epoch %llu): %llu/%llu fragments, %.1f/%.1f MiB moved, %llu failed, %llu yielded "
           "to clients; %.0f s, %.1f MB/s; last update %.0f s ago\n",
           cairn_job_state_name(s.state), (unsigned long long)s.epoch, (unsigned long long)s.done_frags,
           (unsigned long long)s.planned_frags, (double)s.done_bytes / 1048576.0,
           (double)s.planned_bytes / 1048576.0, (unsigned long long)s.failed, (unsigned long long)s.conflicts, secs,
           secs > 0 ? (double)s.done_bytes / secs / 1e6 : 0.0, (double)(cairn_wall_ms() - s.updated_ms) / 1000.0);
    return 0;
}

typedef struct {
    plan_t *plan;
    mover_t *mv;
    rb_state_t *st;
    cairn_meta_client_t *mc;
    mover_stats_t base;
    uint64_t done_frags_before;
    int64_t t0;
} run_t;

/* After each page of records: move its sets, then save the cursor. */
static int run_page(void *arg, const uint8_t *cursor, size_t len)
{
    plan_t *p = arg;
    run_t *r = p->run;
    size_t left = mover_run(r->mv, p->jobs, p->njobs);
    p->njobs = 0;
    mover_stats_t now;
    mover_stats(r->mv, &now);
    r->st->done_frags = r->done_frags_before + now.frags_written;
    r->st->done_bytes = now.bytes_written + r->base.bytes_written;
    r->st->failed = r->base.jobs_failed + now.jobs_failed;
    r->st->conflicts = r->base.jobs_conflict + now.jobs_conflict;
    if (left || mover_stopping())
        return CAIRN_EUNAVAIL; /* stopped: this page is redone next time */
    memcpy(r->st->cursor, cursor, len);
    r->st->cursor_len = len;
    state_save(r->mc, r->st);
    admin_lock_beat(r->mc);
    progress_show("rebalance", r->st->done_frags, r->st->planned_frags, r->st->done_bytes, r->st->planned_bytes,
                  now.bytes_written, r->t0, 0);
    return 0;
}

/* Jobs are collected by plan_set during the walk, moved per page by run_page. */
static int rebalance_run(admin_t *a, cairn_meta_client_t *mc, const cairn_map_t *map, const opts_t *o)
{
    rb_state_t st;
    if (state_load(mc, &st) != 0)
        memset(&st, 0, sizeof st);
    int resume = !o->restart && (st.state == ST_RUNNING || st.state == ST_STOPPED) && st.epoch == map->epoch;
    if (!resume) {
        memset(&st, 0, sizeof st);
        st.epoch = map->epoch;
        st.started_ms = cairn_wall_ms();
    }
    plan_t plan = {.a = a, .map = map, .scratch = cairn_malloc(cairn_map_scratch_size())};
    int rc = admin_walk(mc, CAIRN_SCAN_OBJECTS, st.cursor, st.cursor_len, plan_set, NULL, &plan);
    if (rc) {
        fprintf(stderr, "cairn-admin: cannot scan the object records: %s\n", cairn_strerror(rc));
        return 1;
    }
    st.planned_frags = st.done_frags + plan.frags;
    st.planned_bytes = st.done_bytes + plan.bytes;
    st.state = ST_RUNNING;
    FILE *info = info_out(a);
    if (resume)
        fprintf(info, "resuming the rebalance of map epoch %llu: %llu fragments (%.1f MiB) moved before, %llu "
               "(%.1f MiB) to go\n",
               (unsigned long long)map->epoch, (unsigned long long)st.done_frags, (double)st.done_bytes / 1048576.0,
               (unsigned long long)plan.frags, (double)plan.bytes / 1048576.0);
    else
        fprintf(info, "rebalance of map epoch %llu: %llu fragments (%.1f MiB) to move\n", (unsigned long long)map->epoch,
               (unsigned long long)plan.frags, (double)plan.bytes / 1048576.0);
    fflush(info);
    state_save(mc, &st);

    mover_t *mv = mover_create(a, map, o->parallel, o->rate);
    run_t r = {.plan = &plan, .mv = mv, .st = &st, .mc = mc, .done_frags_before = st.done_frags};
    r.base.bytes_written = st.done_bytes;
    r.base.jobs_failed = st.failed;
    r.base.jobs_conflict = st.conflicts;
    plan.collect = 1;
    plan.run = &r;
    int64_t t0 = cairn_now_ms();
    r.t0 = t0;
    catch_signals();
    rc = admin_walk(mc, CAIRN_SCAN_OBJECTS, st.cursor, st.cursor_len, plan_set, run_page, &plan);
    int stopped = mover_stopping();
    mover_stats_t ms;
    mover_stats(mv, &ms);
    mover_destroy(mv);
    free(plan.jobs);
    free(plan.flows);
    free(plan.scratch);
    progress_show("rebalance", st.done_frags, st.planned_frags, st.done_bytes, st.planned_bytes, ms.bytes_written,
                  t0, 1);
    if (stopped || rc) {
        st.state = ST_STOPPED;
        state_save(mc, &st);
        if (stopped)
            fprintf(info, "stopped; run `cairn-admin rebalance` again to resume\n");
        else
            fprintf(stderr, "cairn-admin: rebalance interrupted: %s; run it again to resume\n", cairn_strerror(rc));
        return 1;
    }
    /* Copies a killed run left behind. */
    inventory_t inv, refs;
    sweep_t sw = {0};
    inventory_load(a, map, &inv);
    if (load_refs(mc, &refs) == 0)
        sweep(a, map, &inv, &refs, -1, 0, &sw);
    inventory_dispose(&inv);
    inventory_dispose(&refs);
    st.state = ms.jobs_failed ? ST_STOPPED : ST_DONE;
    state_save(mc, &st);
    health_save(mc, ms.jobs_failed ? UINT64_MAX : 0, UINT64_MAX);
    double secs = (double)(cairn_now_ms() - t0) / 1000.0;
    if (a->json)
        printf("{\"state\":\"%s\",\"moved_fragments\":%llu,\"moved_bytes\":%llu,\"this_run_fragments\":%llu,"
               "\"this_run_bytes\":%llu,\"rebuilt\":%llu,\"failed\":%llu,\"conflicts\":%llu,\"stale_removed\":%llu,"
               "\"seconds\":%.3f}\n",
               cairn_job_state_name(st.state), (unsigned long long)st.done_frags, (unsigned long long)st.done_bytes,
               (unsigned long long)ms.frags_written, (unsigned long long)ms.bytes_written,
               (unsigned long long)ms.frags_rebuilt, (unsigned long long)ms.jobs_failed,
               (unsigned long long)ms.jobs_conflict, (unsigned long long)sw.stale, secs);
    else
        printf("moved %llu fragments (%.1f MiB, %llu rebuilt from parity) in %.1f s (%.1f MB/s); %llu sets yielded "
               "to client writes; %llu failed; %llu leftover copies removed\n",
               (unsigned long long)ms.frags_written, (double)ms.bytes_written / 1048576.0,
               (unsigned long long)ms.frags_rebuilt, secs, secs > 0 ? (double)ms.bytes_written / secs / 1e6 : 0.0,
               (unsigned long long)ms.jobs_conflict, (unsigned long long)ms.jobs_failed,
               (unsigned long long)sw.stale);
    if (ms.jobs_failed)
        fprintf(stderr, "cairn-admin: %llu sets could not be moved; run `cairn-admin rebalance` again\n",
                (unsigned long long)ms.jobs_failed);
    return ms.jobs_failed ? 1 : 0;
}

int admin_rebalance(admin_t *a, int argc, char **argv)
{
    opts_t o;
    int rc = parse_opts(argc, argv, &o, rebalance_usage);
    if (rc >= 0)
        return rc;
    if (o.verify) {
        fprintf(stderr, "cairn-admin: --verify is an option of repair\n%s", rebalance_usage);
        return 2;
    }
    int status_cmd = 0;
    if (optind < argc) {
        if (strcmp(argv[optind], "status") != 0 || optind + 1 != argc) {
            fprintf(stderr, "cairn-admin: unexpected argument '%s'\n%s", argv[optind], rebalance_usage);
            return 2;
        }
        status_cmd = 1;
    }
    cairn_meta_client_t mc;
    admin_meta_client(a, &mc);
    static cairn_map_t map;
    int st = 1;
    if (status_cmd) {
        st = rebalance_status(a, &mc);
    } else if (admin_map_load(a, &mc, &map) == 0) {
        if (o.dry_run) {
            plan_t plan = {.a = a, .map = &map, .scratch = cairn_malloc(cairn_map_scratch_size())};
            rc = admin_walk(&mc, CAIRN_SCAN_OBJECTS, NULL, 0, plan_set, NULL, &plan);
            if (rc == 0) {
                print_plan(a, &plan, map.epoch);
                health_save(&mc, plan.frags, UINT64_MAX);
            }
            else
                fprintf(stderr, "cairn-admin: cannot scan the object records: %s\n", cairn_strerror(rc));
            free(plan.flows);
            free(plan.scratch);
            st = rc ? 1 : 0;
        } else if (admin_lock(&mc, "rebalance") == 0) {
            st = rebalance_run(a, &mc, &map, &o);
            admin_unlock(&mc);
        }
    }
    cairn_meta_client_dispose(&mc);
    return st;
}

/* ---- repair ---- */

static const char repair_usage[] =
    "usage: cairn-admin repair [--verify] [--dry-run] [--rate MB/s] [--parallel N]\n"
    "Rebuild every missing or quarantined fragment from the others, objects with\n"
    "the fewest surviving fragments first, until every object has k+m again.\n"
    "  --verify       first have every node (up or draining) re-read and check all its\n"
    "                 fragments at once, as its scrubber does, and wait for them: corrupt\n"
    "                 fragments are quarantined, then rebuilt. Exit status 1 when a node\n"
    "                 could not be verified (it is reported and skipped, not waited for)\n"
    "  --dry-run      report what is degraded, rebuild nothing (with --verify: verify,\n"
    "                 which quarantines what is corrupt, and report)\n"
    "  --rate MB/s    limit the data written per second (default: no limit); with --verify\n"
    "                 also each node's verification reads (default: its scrub_rate_mb)\n"
    "  --parallel N   fragment sets rebuilt at once (default 4)\n";

/* ---- repair --verify: a scrub pass on every node, now ---- */

#define VERIFY_POLL_MIN_MS 100    /* first status poll; doubles up to the max */
#define VERIFY_POLL_MAX_MS 500
#define VERIFY_SILENT_MS 60000    /* a node that answers nothing for this long is given up */
#define VERIFY_BEAT_MS 10000      /* job lock refresh while waiting */

enum { V_WAIT, V_DONE, V_SKIPPED };

/* One node being verified. The counters checked are last - base, plus
 * what was counted before the node restarted (carried). */
typedef struct {
    uint32_t id;
    const char *addr;                     /* the map's; valid while it is */
    cairn_conn_t c;
    int state;                            /* V_* */
    int asked;                            /* the node holds our request */
    uint64_t want;                        /* its now_requested right after the request */
    cairn_node_scrub_status_t base, last; /* before the request; its latest answer */
    uint64_t carried_frags, carried_bytes, carried_bad;
    int64_t heard_ms;                     /* last answer, cairn_now_ms() */
} vnode_t;

typedef struct {
    size_t nodes, done, skipped;
    uint64_t frags, bytes, bad; /* checked and found corrupt since the request */
    double secs;
} verify_t;

/* A counter's growth; a counter that went backwards restarted from 0. */
static uint64_t grown(uint64_t now, uint64_t then) { return now >= then ? now - then : now; }

static void verify_skip(vnode_t *x, int rc, const char *what)
{
    const char *hint = rc == CAIRN_EINVAL ? " (scrubbing is off there: give --rate)"
                       : rc == CAIRN_EPROTO ? " (a cairn-node without NODE_SCRUB_NOW?)"
                                            : "";
    fprintf(stderr, "cairn-admin: node %u (%s) %s: %s%s; its fragments are not verified\n", x->id, x->addr, what,
            cairn_strerror(rc), hint);
    x->state = V_SKIPPED;
}

/* Ask the node for a pass and learn the request count to wait for. */
static int verify_ask(vnode_t *x, uint32_t rate_mb)
{
    cairn_node_scrub_status_t st;
    int rc = cairn_node_scrub_status(&x->c, &x->base);
    if (rc == 0)
        rc = cairn_node_scrub_now(&x->c, rate_mb);
    if (rc == 0)
        rc = cairn_node_scrub_status(&x->c, &st);
    if (rc == 0 && st.now_requested == 0)
        rc = CAIRN_EPROTO; /* took the request but does not count it */
    if (rc != 0)
        return rc;
    if (st.fragments_checked < x->base.fragments_checked) /* restarted in between */
        memset(&x->base, 0, sizeof x->base);
    x->want = st.now_requested;
    x->last = st;
    x->asked = 1;
    x->heard_ms = cairn_now_ms();
    return 0;
}

static void verify_poll(vnode_t *x, uint32_t rate_mb)
{
    cairn_node_scrub_status_t st;
    int was_asked = x->asked;
    int rc = was_asked ? cairn_node_scrub_status(&x->c, &st) : verify_ask(x, rate_mb);
    if (rc != 0) {
        if (cairn_now_ms() - x->heard_ms >= VERIFY_SILENT_MS)
            verify_skip(x, rc, "stopped answering");
        return;
    }
    if (!was_asked)
        return; /* asked again after a restart: wait from here */
    x->heard_ms = cairn_now_ms();
    if (st.now_requested < x->want || st.passes < x->last.passes ||
        st.fragments_checked < x->last.fragments_checked) {
        /* The node restarted and forgot the request: keep what it checked, ask again. */
        x->carried_frags += grown(x->last.fragments_checked, x->base.fragments_checked);
        x->carried_bytes += grown(x->last.bytes_checked, x->base.bytes_checked);
        x->carried_bad += grown(x->last.bad_found, x->base.bad_found);
        x->asked = 0;
        fprintf(stderr, "cairn-admin: node %u (%s) restarted during the verification: asking it again\n", x->id,
                x->addr);
        verify_ask(x, rate_mb); /* on failure the next poll tries again */
        return;
    }
    x->last = st;
    if (st.now_done >= x->want)
        x->state = V_DONE;
}

static void verify_sum(const vnode_t *v, size_t n, verify_t *t)
{
    t->done = t->skipped = 0;
    t->frags = t->bytes = t->bad = 0;
    for (size_t i = 0; i < n; i++) {
        const vnode_t *x = &v[i];
        t->done += x->state == V_DONE;
        t->skipped += x->state == V_SKIPPED;
        t->frags += x->carried_frags + grown(x->last.fragments_checked, x->base.fragments_checked);
        t->bytes += x->carried_bytes + grown(x->last.bytes_checked, x->base.bytes_checked);
        t->bad += x->carried_bad + grown(x->last.bad_found, x->base.bad_found);
    }
}

/* Progress on stderr: redrawn in place on a terminal, else a line every 10 s. */
static void verify_show(const verify_t *t, int64_t t0, int final)
{
    static int64_t last_line;
    int tty;
    if (!progress_due(&last_line, final, &tty))
        return;
    int64_t now = last_line;
    char skipped[48] = "";
    if (t->skipped)
        snprintf(skipped, sizeof skipped, " (%zu skipped)", t->skipped);
    fprintf(stderr, "%sverify: %zu/%zu nodes done%s, %llu fragments (%.1f MiB) checked, %llu corrupt found, %.0f s%s",
            tty ? "\r" : "", t->done, t->nodes, skipped, (unsigned long long)t->frags, (double)t->bytes / 1048576.0,
            (unsigned long long)t->bad, (double)(now - t0) / 1000.0, tty && !final ? " " : "\n");
    fflush(stderr);
}

/*
 * Have every node that is up or draining scrub all its fragments now, at
 * rate_mb MB/s (0: each node's own rate), and wait until each has verified
 * every fragment since the request (node_client.h: now_done), or was given
 * up (it refused or did not answer the request, or answered nothing for
 * VERIFY_SILENT_MS).
 * Returns early on a stop (mover_stopping). lock_mc, when not NULL, is the
 * metadata client whose job lock is kept fresh meanwhile. Cost: a few
 * small requests per node and poll; the nodes do the reading.
 */
static void verify_run(admin_t *a, const cairn_map_t *map, uint32_t rate_mb, cairn_meta_client_t *lock_mc,
                       verify_t *t)
{
    vnode_t *v = cairn_calloc(map->n ? map->n : 1, sizeof *v);
    size_t n = 0;
    int64_t t0 = cairn_now_ms(), beat = t0;
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < map->n && !mover_stopping(); i++) {
        if (map->nodes[i].state == CAIRN_NODE_OUT)
            continue;
        vnode_t *x = &v[n++];
        x->id = map->nodes[i].id;
        x->addr = map->nodes[i].addr;
        cairn_conn_init(&x->c, x->addr, a->key, a->cfg.io_timeout_ms);
        int rc = verify_ask(x, rate_mb);
        if (rc != 0)
            verify_skip(x, rc, "cannot start a scrub pass");
    }
    t->nodes = n;
    int poll_ms = VERIFY_POLL_MIN_MS;
    for (;;) {
        verify_sum(v, n, t);
        if (t->done + t->skipped == n || mover_stopping())
            break;
        verify_show(t, t0, 0);
        struct timespec ts = {poll_ms / 1000, (long)(poll_ms % 1000) * 1000000};
        nanosleep(&ts, NULL); /* a signal cuts it short: the loop sees the stop */
        poll_ms = poll_ms * 2 < VERIFY_POLL_MAX_MS ? poll_ms * 2 : VERIFY_POLL_MAX_MS;
        for (size_t i = 0; i < n && !mover_stopping(); i++)
            if (v[i].state == V_WAIT)
                verify_poll(&v[i], rate_mb);
        if (lock_mc != NULL && cairn_now_ms() - beat >= VERIFY_BEAT_MS) {
            admin_lock_beat(lock_mc);
            beat = cairn_now_ms();
        }
    }
    t->secs = (double)(cairn_now_ms() - t0) / 1000.0;
    verify_show(t, t0, 1);
    for (size_t i = 0; i < n; i++)
        cairn_conn_dispose(&v[i].c);
    free(v);
}

/* --rate as the whole MB/s NODE_SCRUB_NOW takes, rounded up (0: not given). */
static uint32_t rate_mb_up(double rate)
{
    if (!(rate > 0))
        return 0;
    if (rate >= (double)UINT32_MAX)
        return UINT32_MAX;
    uint32_t r = (uint32_t)rate;
    return r + ((double)r < rate);
}

typedef struct {
    const cairn_map_t *map;
    const inventory_t *inv;
    void *scratch;
    int table;
    mv_job_t *jobs;
    size_t njobs, capjobs;
    uint64_t sets, lost, unknown, stuck, frags;
    uint64_t bytes;
    int worst;
} scan_t;

static int repair_set(void *arg, const admin_fragset_t *fs)
{
    scan_t *s = arg;
    const int nf = fs->k + fs->m;
    uint32_t bad = 0, unknown = 0, relocate = 0;
    s->sets++;
    for (int i = 0; i < nf; i++) {
        if (node_lost(s->map, fs->nodes[i]))
            bad |= 1u << i, relocate |= 1u << i;
        else if (inventory_node_unreachable(s->inv, fs->nodes[i]))
            unknown |= 1u << i;
        else if (!inventory_has(s->inv, fs->oid, (unsigned)i, fs->nodes[i]))
            bad |= 1u << i;
    }
    if (bad == 0)
        return 0;
    int surviving = nf - __builtin_popcount(bad | unknown);
    if (surviving < s->worst)
        s->worst = surviving;
    if (surviving < fs->k) {
        s->lost++;
        fprintf(stderr, "cairn-admin: %.*s/%.*s: only %d of %d fragments left, %d needed: cannot be rebuilt now\n",
                (int)fs->bucket_len, fs->bucket, (int)fs->key_len, (const char *)fs->key, surviving, nf, fs->k);
        return 0;
    }
    if (relocate && s->table != CAIRN_SCAN_OBJECTS) {
        s->stuck++; /* an upload in progress on a lost node: completes or is aborted by its client */
        return 0;
    }
    uint32_t to[CAIRN_MAX_FRAGS];
    memcpy(to, fs->nodes, sizeof(uint32_t) * (size_t)nf);
    if (relocate) {
        uint32_t want[CAIRN_MAX_FRAGS], moved[CAIRN_MAX_FRAGS];
        if (cairn_map_pick(s->map, fs->oid, (size_t)nf, s->scratch, want) < nf) {
            s->stuck++;
            return 0;
        }
        /* Fragments on lost nodes go where the plan wants them; the others stay. */
        uint32_t cur[CAIRN_MAX_FRAGS];
        for (int i = 0; i < nf; i++)
            cur[i] = relocate & (1u << i) ? 0 : fs->nodes[i];
        cairn_map_plan_moves(cur, want, nf, moved);
        for (int i = 0; i < nf; i++)
            if (relocate & (1u << i))
                to[i] = moved[i];
    }
    mv_job_t *j = job_new(&s->jobs, &s->njobs, &s->capjobs);
    mv_job_from(j, fs, s->table);
    memcpy(j->to, to, sizeof(uint32_t) * (size_t)nf);
    j->fix = j->bad = bad;
    j->surviving = surviving;
    s->frags += (uint64_t)__builtin_popcount(bad);
    s->bytes += mv_frag_bytes(j) * (uint64_t)__builtin_popcount(bad);
    s->unknown += unknown != 0;
    return 0;
}

static int by_surviving(const void *a, const void *b)
{
    const mv_job_t *x = a, *y = b;
    return (x->surviving > y->surviving) - (x->surviving < y->surviving);
}

int admin_repair(admin_t *a, int argc, char **argv)
{
    opts_t o;
    int rc = parse_opts(argc, argv, &o, repair_usage);
    if (rc >= 0)
        return rc;
    if (optind < argc) {
        fprintf(stderr, "cairn-admin: unexpected argument '%s'\n%s", argv[optind], repair_usage);
        return 2;
    }
    cairn_meta_client_t mc;
    admin_meta_client(a, &mc);
    static cairn_map_t map;
    if (admin_map_load(a, &mc, &map) != 0 || (!o.dry_run && admin_lock(&mc, "repair") != 0)) {
        cairn_meta_client_dispose(&mc);
        return 1;
    }
    verify_t vr = {0};
    char vjson[256] = ""; /* the verify counts in the --json answer */
    if (o.verify) {
        catch_signals();
        verify_run(a, &map, rate_mb_up(o.rate), o.dry_run ? NULL : &mc, &vr);
        if (mover_stopping()) {
            fprintf(stderr, "cairn-admin: stopped during the verification; nothing was rebuilt\n");
            if (!o.dry_run)
                admin_unlock(&mc);
            cairn_meta_client_dispose(&mc);
            return 1;
        }
        FILE *info = info_out(a);
        fprintf(info, "verify: %zu of %zu nodes checked all their fragments: %llu fragments (%.1f MiB) in %.1f s, "
                "%llu corrupt found and quarantined\n",
                vr.done, vr.nodes, (unsigned long long)vr.frags, (double)vr.bytes / 1048576.0, vr.secs,
                (unsigned long long)vr.bad);
        fflush(info);
        snprintf(vjson, sizeof vjson,
                 ",\"verify\":{\"nodes\":%zu,\"verified\":%zu,\"skipped\":%zu,\"fragments\":%llu,\"bytes\":%llu,"
                 "\"corrupt\":%llu,\"seconds\":%.3f}",
                 vr.nodes, vr.done, vr.skipped, (unsigned long long)vr.frags, (unsigned long long)vr.bytes,
                 (unsigned long long)vr.bad, vr.secs);
    }
    int64_t t0 = cairn_now_ms();
    inventory_t inv;
    inventory_load(a, &map, &inv);
    scan_t s = {.map = &map, .inv = &inv, .scratch = cairn_malloc(cairn_map_scratch_size()), .worst = CAIRN_MAX_FRAGS};
    rc = 0;
    for (int t = CAIRN_SCAN_OBJECTS; t <= CAIRN_SCAN_PARTS && rc == 0; t++) {
        s.table = t;
        rc = admin_walk(&mc, t, NULL, 0, repair_set, NULL, &s);
    }
    int st = 0;
    if (rc != 0) {
        fprintf(stderr, "cairn-admin: cannot scan the records: %s\n", cairn_strerror(rc));
        st = 1;
    }
    if (s.njobs > 1)
        qsort(s.jobs, s.njobs, sizeof *s.jobs, by_surviving);
    if (st == 0 && !o.dry_run) {
        FILE *info = info_out(a);
        fprintf(info, "repair: %llu fragment sets degraded, %llu fragments (%.1f MiB) to rebuild; fewest surviving: %d\n",
                (unsigned long long)s.njobs, (unsigned long long)s.frags, (double)s.bytes / 1048576.0,
                s.njobs ? s.jobs[0].surviving : 0);
        fflush(info);
        catch_signals();
        mover_t *mv = mover_create(a, &map, o.parallel, o.rate);
        size_t step = 256;
        mover_stats_t ms = {0};
        rb_state_t js = {.state = ST_RUNNING, .epoch = map.epoch, .started_ms = cairn_wall_ms(),
                         .planned_frags = s.frags, .planned_bytes = s.bytes};
        state_save_as(&mc, "repair", &js);
        for (size_t i = 0; i < s.njobs && !mover_stopping(); i += step) {
            size_t n = s.njobs - i < step ? s.njobs - i : step;
            mover_run(mv, s.jobs + i, n);
            mover_stats(mv, &ms);
            js.done_frags = ms.frags_written, js.done_bytes = ms.bytes_written, js.failed = ms.jobs_failed;
            state_save_as(&mc, "repair", &js);
            admin_lock_beat(&mc);
            progress_show("repair", ms.frags_written, s.frags, ms.bytes_written, s.bytes, ms.bytes_written, t0, 0);
        }
        mover_stats(mv, &ms);
        mover_destroy(mv);
        js.done_frags = ms.frags_written, js.done_bytes = ms.bytes_written, js.failed = ms.jobs_failed;
        js.state = ms.jobs_failed || mover_stopping() ? ST_STOPPED : ST_DONE;
        state_save_as(&mc, "repair", &js);
        health_save(&mc, UINT64_MAX, ms.jobs_failed || mover_stopping() ? UINT64_MAX : s.lost);
        progress_show("repair", ms.frags_written, s.frags, ms.bytes_written, s.bytes, ms.bytes_written, t0, 1);
        double secs = (double)(cairn_now_ms() - t0) / 1000.0;
        if (a->json)
            printf("{\"degraded_sets\":%zu,\"rebuilt_fragments\":%llu,\"bytes\":%llu,\"failed\":%llu,"
                   "\"unrecoverable\":%llu,\"skipped\":%llu,\"seconds\":%.3f%s}\n",
                   s.njobs, (unsigned long long)ms.frags_written, (unsigned long long)ms.bytes_written,
                   (unsigned long long)ms.jobs_failed, (unsigned long long)s.lost, (unsigned long long)s.stuck, secs,
                   vjson);
        else
            printf("rebuilt %llu fragments (%.1f MiB) of %zu sets in %.1f s (%.1f MB/s)%s\n",
                   (unsigned long long)ms.frags_written, (double)ms.bytes_written / 1048576.0, s.njobs, secs,
                   secs > 0 ? (double)ms.bytes_written / secs / 1e6 : 0.0,
                   ms.jobs_failed || mover_stopping() ? "" : "; every object is back to k+m fragments");
        if (ms.jobs_failed || mover_stopping() || s.lost)
            st = 1;
    } else if (st == 0) {
        health_save(&mc, UINT64_MAX, s.njobs + s.lost);
        if (a->json)
            printf("{\"sets\":%llu,\"degraded_sets\":%zu,\"fragments\":%llu,\"bytes\":%llu,\"unrecoverable\":%llu,"
                   "\"fewest_surviving\":%d%s}\n",
                   (unsigned long long)s.sets, s.njobs, (unsigned long long)s.frags, (unsigned long long)s.bytes,
                   (unsigned long long)s.lost, s.njobs ? s.jobs[0].surviving : -1, vjson);
        else
            printf("%llu fragment sets, %zu degraded: %llu fragments (%.1f MiB) to rebuild; %llu cannot be rebuilt\n",
                   (unsigned long long)s.sets, s.njobs, (unsigned long long)s.frags, (double)s.bytes / 1048576.0,
                   (unsigned long long)s.lost);
    }
    if (inv.nunreachable)
        fprintf(stderr, "cairn-admin: %zu node(s) unreachable: their fragments were neither checked nor rebuilt\n",
                inv.nunreachable);
    if (vr.skipped) {
        fprintf(stderr, "cairn-admin: %zu node(s) not verified (see above): run `cairn-admin repair --verify` "
                "again once they answer\n", vr.skipped);
        st = 1;
    }
    if (!o.dry_run)
        admin_unlock(&mc);
    inventory_dispose(&inv);
    free(s.jobs);
    free(s.scratch);
    cairn_meta_client_dispose(&mc);
    return st;
}

/* ---- gc ---- */

static const char gc_usage[] =
    "usage: cairn-admin gc [--dry-run] [--min-age SECONDS]\n"
    "Delete fragment files that no record references: copies left behind by a\n"
    "stopped rebalance at once, orphans (a PUT that crashed before its commit)\n"
    "once older than --min-age (default 3600 s, so no PUT in flight is touched).\n"
    "  --dry-run      count what would be deleted\n";

int admin_gc(admin_t *a, int argc, char **argv)
{
    opts_t o;
    int rc = parse_opts(argc, argv, &o, gc_usage);
    if (rc >= 0)
        return rc;
    if (o.verify) {
        fprintf(stderr, "cairn-admin: --verify is an option of repair\n%s", gc_usage);
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "cairn-admin: unexpected argument '%s'\n%s", argv[optind], gc_usage);
        return 2;
    }
    cairn_meta_client_t mc;
    admin_meta_client(a, &mc);
    static cairn_map_t map;
    if (admin_map_load(a, &mc, &map) != 0 || (!o.dry_run && admin_lock(&mc, "gc") != 0)) {
        cairn_meta_client_dispose(&mc);
        return 1;
    }
    inventory_t inv, refs;
    sweep_t sw = {0};
    inventory_load(a, &map, &inv); /* before the records: see sweep() */
    rc = load_refs(&mc, &refs);
    if (rc == 0)
        sweep(a, &map, &inv, &refs, (int64_t)o.min_age_s * 1000, o.dry_run, &sw);
    else
        fprintf(stderr, "cairn-admin: cannot scan the records: %s\n", cairn_strerror(rc));
    if (rc == 0 && a->json)
        printf("{\"dry_run\":%s,\"stale\":%llu,\"stale_bytes\":%llu,\"orphans\":%llu,\"orphan_bytes\":%llu,"
               "\"young\":%llu,\"failed\":%llu,\"unreachable_nodes\":%zu}\n",
               o.dry_run ? "true" : "false", (unsigned long long)sw.stale, (unsigned long long)sw.stale_bytes,
               (unsigned long long)sw.orphans, (unsigned long long)sw.orphan_bytes, (unsigned long long)sw.young,
               (unsigned long long)sw.failed, inv.nunreachable);
    else if (rc == 0)
        printf("%s %llu leftover copies (%.1f MiB) and %llu orphans (%.1f MiB); %llu younger than %llu s kept; "
               "%llu failed\n",
               o.dry_run ? "would delete" : "deleted", (unsigned long long)sw.stale,
               (double)sw.stale_bytes / 1048576.0, (unsigned long long)sw.orphans, (double)sw.orphan_bytes / 1048576.0,
               (unsigned long long)sw.young, (unsigned long long)o.min_age_s, (unsigned long long)sw.failed);
    if (inv.nunreachable)
        fprintf(stderr, "cairn-admin: %zu node(s) unreachable: not collected\n", inv.nunreachable);
    if (!o.dry_run)
        admin_unlock(&mc);
    inventory_dispose(&inv);
    inventory_dispose(&refs);
    cairn_meta_client_dispose(&mc);
    return rc || sw.failed ? 1 : 0;
}
