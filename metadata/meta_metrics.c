/*
 * meta_metrics.c — a metadata replica's metrics and health (see meta_metrics.h).
 */
#include "meta_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/meta_map.h"
#include "fsm_map.h"

static const char *const member_kinds[] = {"standby", "voter", "spare"}; /* CAIRN_META_MEMBER_* */
static const char *const job_names[] = {"rebalance", "repair"};

/* The job states and health cairn-admin keeps in the KV store. */
static void scrape_jobs(meta_metrics_t *mm)
{
    cairn_buf_t b;
    cairn_buf_init(&b);
    for (int j = 0; j < 2; j++) {
        cairn_job_state_t s;
        cairn_buf_reset(&b);
        const uint8_t *p;
        size_t n;
        cairn_dec_t d;
        if (meta_fsm_kv_get(mm->fsm, (const uint8_t *)job_names[j], strlen(job_names[j]), &b) != 0)
            continue;
        cairn_dec_init(&d, b.base, b.len);
        cairn_dec_bytes(&d, &p, &n);
        if (d.err || cairn_job_state_decode(p, n, &s) != 0)
            continue;
        cairn_gauge_set(mm->jobs[j].running, s.state == CAIRN_JOB_RUNNING);
        cairn_gauge_set(mm->jobs[j].planned_frags, (int64_t)s.planned_frags);
        cairn_gauge_set(mm->jobs[j].done_frags, (int64_t)s.done_frags);
        cairn_gauge_set(mm->jobs[j].planned_bytes, (int64_t)s.planned_bytes);
        cairn_gauge_set(mm->jobs[j].done_bytes, (int64_t)s.done_bytes);
        cairn_gauge_set(mm->jobs[j].failed, (int64_t)s.failed);
    }
    cairn_buf_reset(&b);
    cairn_cluster_health_t h;
    const uint8_t *p;
    size_t n;
    cairn_dec_t d;
    if (meta_fsm_kv_get(mm->fsm, (const uint8_t *)"health", 6, &b) == 0) {
        cairn_dec_init(&d, b.base, b.len);
        cairn_dec_bytes(&d, &p, &n);
        if (!d.err && cairn_cluster_health_decode(p, n, &h) == 0) {
            if (h.misplaced != UINT64_MAX)
                cairn_gauge_set(mm->misplaced, (int64_t)h.misplaced);
            if (h.degraded != UINT64_MAX)
                cairn_gauge_set(mm->degraded, (int64_t)h.degraded);
            cairn_gauge_set(mm->health_time, h.measured_ms / 1000);
        }
    }
    cairn_buf_dispose(&b);
}

static void on_scrape(void *arg)
{
    meta_metrics_t *mm = arg;
    cairn_meta_status_t *st = cairn_calloc(1, sizeof *st);
    if (meta_log_status(mm->log, st) != 0)
        st->role = CAIRN_META_ROLE_UNAVAILABLE; /* the rest keeps its last values */
    for (int r = 0; r < 4; r++)
        cairn_gauge_set(mm->role[r], st->role == r);
    if (st->role != CAIRN_META_ROLE_UNAVAILABLE) {
        cairn_gauge_set(mm->term, (int64_t)st->term);
        cairn_gauge_set(mm->commit, (int64_t)st->commit);
        cairn_gauge_set(mm->applied, (int64_t)st->applied);
        cairn_gauge_set(mm->last_index, (int64_t)st->last_index);
        cairn_gauge_set(mm->snapshot_index, (int64_t)st->snapshot_index);
        cairn_gauge_set(mm->leader_id, (int64_t)st->leader_id);
        int64_t n[3] = {0, 0, 0};
        for (size_t i = 0; i < st->nmembers; i++)
            if (st->members[i].kind >= 0 && st->members[i].kind < 3)
                n[st->members[i].kind]++;
        for (int k = 0; k < 3; k++)
            cairn_gauge_set(mm->members[k], n[k]);
        uint64_t reads[2] = {st->lease_reads, st->barrier_reads};
        for (int k = 0; k < 2; k++) {
            if (reads[k] > mm->reads_seen[k])
                cairn_counter_add(mm->reads[k], reads[k] - mm->reads_seen[k]);
            mm->reads_seen[k] = reads[k];
        }
    }
    free(st);
    scrape_jobs(mm);
}

static int on_health(void *arg, char *why, size_t n)
{
    meta_metrics_t *mm = arg;
    uint64_t id;
    char addr[128];
    meta_log_leader(mm->log, &id, addr);
    if (id != 0)
        return 0;
    snprintf(why, n, "no Raft leader known");
    return 1;
}

static cairn_gauge_t *gauge(meta_metrics_t *mm, const char *name, const char *help)
{
    return cairn_metrics_gauge(mm->registry, name, help, NULL);
}

int meta_metrics_start(meta_metrics_t *mm, const char *admin_addr, uint64_t id, meta_rpc_t *rpc)
{
    memset(mm, 0, sizeof *mm);
    mm->log = rpc->log;
    mm->fsm = rpc->fsm;
    mm->registry = cairn_metrics_create();
    char buf[64];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)id);
    cairn_metrics_service(mm->registry, "meta", buf);
    mm->srv = cairn_srv_metrics_create(mm->registry, "cairn_meta", meta_rpc_routes, meta_rpc_nroutes, rpc);
    static const int roles[] = {CAIRN_META_ROLE_LEADER, CAIRN_META_ROLE_FOLLOWER, CAIRN_META_ROLE_CANDIDATE,
                                CAIRN_META_ROLE_UNAVAILABLE};
    for (int i = 0; i < 4; i++) {
        cairn_metrics_labels(buf, sizeof buf, "role", cairn_meta_role_name(roles[i]), NULL);
        mm->role[roles[i]] = cairn_metrics_gauge(mm->registry, "cairn_meta_raft_role",
                                                 "1 for this replica's current Raft role, 0 for the others.", buf);
    }
    mm->term = gauge(mm, "cairn_meta_raft_term", "Current Raft term.");
    mm->commit = gauge(mm, "cairn_meta_raft_commit_index", "Highest log index known to be committed.");
    mm->applied = gauge(mm, "cairn_meta_raft_applied_index", "Highest log index applied on this replica.");
    mm->last_index = gauge(mm, "cairn_meta_raft_last_index", "Highest log index in this replica's log.");
    mm->snapshot_index = gauge(mm, "cairn_meta_raft_snapshot_index", "Log index of the last snapshot here.");
    mm->leader_id = gauge(mm, "cairn_meta_raft_leader_id", "Raft id of the leader as seen here (0: none known).");
    for (int k = 0; k < 3; k++) {
        cairn_metrics_labels(buf, sizeof buf, "kind", member_kinds[k], NULL);
        mm->members[k] = cairn_metrics_gauge(mm->registry, "cairn_meta_raft_members",
                                             "Replicas in the Raft configuration, by kind.", buf);
    }
    static const char *const read_paths[] = {"lease", "barrier"};
    for (int k = 0; k < 2; k++) {
        cairn_metrics_labels(buf, sizeof buf, "path", read_paths[k], NULL);
        mm->reads[k] = cairn_metrics_counter(mm->registry, "cairn_meta_reads_total",
                                             "Linearizable reads on this replica: at once under the leader's lease, "
                                             "or after a barrier entry committed.", buf);
    }
    for (int j = 0; j < 2; j++) {
        cairn_metrics_labels(buf, sizeof buf, "job", job_names[j], NULL);
        mm->jobs[j].running = cairn_metrics_gauge(mm->registry, "cairn_job_running",
                                                  "1 while the job's last run has not ended.", buf);
        mm->jobs[j].planned_frags = cairn_metrics_gauge(mm->registry, "cairn_job_planned_fragments",
                                                        "Fragments the job's last run set out to write.", buf);
        mm->jobs[j].done_frags = cairn_metrics_gauge(mm->registry, "cairn_job_done_fragments",
                                                     "Fragments the job's last run has written.", buf);
        mm->jobs[j].planned_bytes = cairn_metrics_gauge(mm->registry, "cairn_job_planned_bytes",
                                                        "Bytes the job's last run set out to write.", buf);
        mm->jobs[j].done_bytes = cairn_metrics_gauge(mm->registry, "cairn_job_done_bytes",
                                                     "Bytes the job's last run has written.", buf);
        mm->jobs[j].failed = cairn_metrics_gauge(mm->registry, "cairn_job_failed",
                                                 "Fragment sets the job's last run could not fix.", buf);
    }
    mm->misplaced = gauge(mm, "cairn_cluster_misplaced_fragments",
                          "Fragments not on the nodes the current map chooses, as last measured by cairn-admin.");
    mm->degraded = gauge(mm, "cairn_cluster_degraded_objects",
                         "Fragment sets with fewer than k+m good fragments, as last measured by cairn-admin.");
    mm->health_time = gauge(mm, "cairn_cluster_health_timestamp_seconds",
                            "Unix time of cairn-admin's last measurement of misplaced and degraded counts.");
    cairn_metrics_on_scrape(mm->registry, on_scrape, mm);
    if (admin_addr == NULL || admin_addr[0] == '\0')
        return 0;
    int rc = cairn_adminhttp_create(admin_addr, mm->registry, on_health, mm, &mm->admin);
    if (rc != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "admin endpoint on %s: %s", admin_addr, cairn_strerror(rc));
        return rc;
    }
    cairn_log(CAIRN_LOG_INFO, 0, "admin endpoint (/health, /metrics) on http://%s", cairn_adminhttp_addr(mm->admin));
    return 0;
}

void meta_metrics_stop(meta_metrics_t *mm)
{
    cairn_adminhttp_destroy(mm->admin);
    cairn_srv_metrics_destroy(mm->srv);
    cairn_metrics_destroy(mm->registry);
    memset(mm, 0, sizeof *mm);
}
