/*
 * meta_metrics.h — what a metadata replica exports on its admin endpoint
 * ([meta.<id>] admin_addr; adminhttp.h, metrics.h).
 *
 *   cairn_meta_requests_total{op,result}, cairn_meta_request_duration_seconds{op},
 *   cairn_meta_received_bytes_total{op}, cairn_meta_sent_bytes_total{op},
 *   cairn_meta_requests_in_flight         every request (srv_metrics.h)
 *   cairn_meta_raft_role{role}            1 for this replica's role, 0 for the
 *                                         others (leader, follower, candidate,
 *                                         unavailable)
 *   cairn_meta_raft_term, _commit_index, _applied_index, _last_index,
 *   _snapshot_index, _leader_id           this replica's Raft view
 *   cairn_meta_raft_members{kind}         replicas in the configuration
 *                                         (voter, standby, spare)
 *   cairn_job_running{job}, cairn_job_{planned,done}_{fragments,bytes}{job},
 *   cairn_job_failed{job}                 progress of the last rebalance and
 *                                         repair (job state in the KV store)
 *   cairn_cluster_misplaced_fragments, cairn_cluster_degraded_objects,
 *   cairn_cluster_health_timestamp_seconds   what cairn-admin last measured
 *   cairn_service_info{service="meta",id}, process_*  (cairn_metrics_service)
 *
 * The Raft series come from one meta_log_status() call per scrape (a job
 * on the Raft loop: normally well under a millisecond, at most its 10 s
 * timeout when the loop is stuck).
 *
 * /health is 503 while the replica knows no leader.
 */
#ifndef CAIRN_META_METRICS_H
#define CAIRN_META_METRICS_H

#include <stdint.h>

#include "cairn/adminhttp.h"
#include "cairn/metrics.h"
#include "cairn/srv_metrics.h"
#include "raft_glue.h"
#include "rpc.h"

typedef struct {
    cairn_metrics_t *registry; /* more series can be registered here (cairn_metrics_*) for the replica's life */
    cairn_srv_metrics_t *srv;  /* serve cairn_srv_metrics_routes(srv) with srv as the data */
    cairn_adminhttp_t *admin;  /* NULL when admin_addr is empty */
    /* private */
    meta_log_t *log;
    cairn_gauge_t *role[4];    /* by CAIRN_META_ROLE_* */
    cairn_gauge_t *term, *commit, *applied, *last_index, *snapshot_index, *leader_id;
    cairn_gauge_t *members[3]; /* by CAIRN_META_MEMBER_* */
    cairn_counter_t *reads[2]; /* served under the lease, after a barrier */
    uint64_t reads_seen[2];    /* the totals at the last scrape */
    meta_fsm_t *fsm;
    struct {
        cairn_gauge_t *running, *planned_frags, *done_frags, *planned_bytes, *done_bytes, *failed;
    } jobs[2];                 /* rebalance, repair */
    cairn_gauge_t *misplaced, *degraded, *health_time;
} meta_metrics_t;

/* Set up the registry and the request metrics around meta_rpc_routes (rpc
 * is their data); open the admin endpoint when admin_addr is not empty.
 * rpc and its log are borrowed. 0, or the admin listen error (logged).
 * A zeroed meta_metrics_t that was never started may be stopped. */
int meta_metrics_start(meta_metrics_t *mm, const char *admin_addr, uint64_t id, meta_rpc_t *rpc);
/* Close the endpoint and free; after the server is destroyed, before the log. */
void meta_metrics_stop(meta_metrics_t *mm);

#endif
