/*
 * gw_metrics.c — the gateway's request accounting and admin endpoint (see
 * gw_metrics.h).
 *
 * Per S3 operation the handles are fixed at start (histogram, byte
 * counters); request counters are per (operation, status) and registered
 * on first use into a table of atomic pointers indexed by status 100..599,
 * so the steady state never locks or allocates.
 */
#include "gw_metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cairn/adminhttp.h"
#include "cairn/err.h"
#include "cairn/log.h"

/* S3 operation names, as AWS spells them. */
static const char *const op_names[] = {
    [S3_OP_NONE] = "Unknown",
    [S3_OP_LIST_BUCKETS] = "ListBuckets",
    [S3_OP_CREATE_BUCKET] = "CreateBucket",
    [S3_OP_DELETE_BUCKET] = "DeleteBucket",
    [S3_OP_HEAD_BUCKET] = "HeadBucket",
    [S3_OP_LIST_OBJECTS] = "ListObjects",
    [S3_OP_LIST_OBJECTS_V2] = "ListObjectsV2",
    [S3_OP_GET_BUCKET_LOCATION] = "GetBucketLocation",
    [S3_OP_PUT_OBJECT] = "PutObject",
    [S3_OP_GET_OBJECT] = "GetObject",
    [S3_OP_HEAD_OBJECT] = "HeadObject",
    [S3_OP_DELETE_OBJECT] = "DeleteObject",
    [S3_OP_CREATE_MPU] = "CreateMultipartUpload",
    [S3_OP_UPLOAD_PART] = "UploadPart",
    [S3_OP_UPLOAD_PART_COPY] = "UploadPartCopy",
    [S3_OP_COMPLETE_MPU] = "CompleteMultipartUpload",
    [S3_OP_ABORT_MPU] = "AbortMultipartUpload",
    [S3_OP_LIST_PARTS] = "ListParts",
    [S3_OP_LIST_MPUS] = "ListMultipartUploads",
    [S3_OP_COPY_OBJECT] = "CopyObject",
    [S3_OP_DELETE_OBJECTS] = "DeleteObjects",
    [S3_OP_GET_BUCKET_VERSIONING] = "GetBucketVersioning",
    [S3_OP_LIST_OBJECT_VERSIONS] = "ListObjectVersions",
    [S3_OP_GET_ACL] = "GetAcl",
    [S3_OP_PUT_ACL] = "PutAcl",
    [S3_OP_GET_OBJECT_TAGGING] = "GetObjectTagging",
    [S3_OP_BUCKET_CONFIG] = "BucketConfig",
};
/* One more slot for operations added to s3_op_t later than this table. */
#define NOPS (sizeof op_names / sizeof op_names[0] + 1)
#define OTHER_OP (NOPS - 1)
#define MIN_STATUS 100
#define NSTATUS 500 /* 100..599 */

typedef struct {
    char name[40];
    cairn_hist_t *duration;
    cairn_counter_t *rx, *tx;
    _Atomic(cairn_counter_t *) requests[NSTATUS];
} op_t;

struct gw_metrics_s {
    cairn_metrics_t *registry;
    cairn_adminhttp_t *admin;
    cairn_gauge_t *in_flight;
    op_t ops[NOPS];
};

static op_t *op_of(gw_t *gw, const gw_job_t *job)
{
    size_t i = (size_t)job->op;
    if (i >= NOPS - 1 || op_names[i] == NULL)
        i = OTHER_OP;
    return &gw->metrics->ops[i];
}

static double suspect_nodes(void *arg)
{
    gw_t *gw = arg;
    size_t n = __atomic_load_n(&gw->nslots, __ATOMIC_ACQUIRE), suspect = 0;
    int64_t now = cairn_now_ms();
    for (size_t s = 0; s < n; s++)
        suspect += __atomic_load_n(&gw->suspect_until[s], __ATOMIC_RELAXED) > now;
    return (double)suspect;
}

static double map_epoch(void *arg)
{
    gw_t *gw = arg;
    pthread_rwlock_rdlock(&gw->map_lock);
    uint64_t e = gw->map.epoch;
    pthread_rwlock_unlock(&gw->map_lock);
    return (double)e;
}

int gw_metrics_start(gw_t *gw)
{
    struct gw_metrics_s *gm = cairn_calloc(1, sizeof *gm);
    gw->metrics = gm;
    gm->registry = cairn_metrics_create();
    cairn_metrics_service(gm->registry, "gateway", gw->cfg.gw_listen);
    gm->in_flight =
        cairn_metrics_gauge(gm->registry, "cairn_gateway_requests_in_flight", "S3 requests not yet finished.", NULL);
    char labels[64];
    for (size_t i = 0; i < NOPS; i++) {
        op_t *o = &gm->ops[i];
        snprintf(o->name, sizeof o->name, "%s", i == OTHER_OP || op_names[i] == NULL ? "Other" : op_names[i]);
        cairn_metrics_labels(labels, sizeof labels, "op", o->name, NULL);
        o->duration = cairn_metrics_histogram(gm->registry, "cairn_gateway_request_duration_seconds",
                                              "S3 request time from arrival to the last byte sent, seconds.", labels,
                                              NULL, 0);
        o->rx = cairn_metrics_counter(gm->registry, "cairn_gateway_received_bytes_total",
                                      "S3 request body bytes received.", labels);
        o->tx = cairn_metrics_counter(gm->registry, "cairn_gateway_sent_bytes_total", "S3 response body bytes sent.",
                                      labels);
    }
    cairn_metrics_gauge_fn(gm->registry, "cairn_gateway_nodes_suspect",
                           "Storage nodes currently skipped after a failure or timeout.", NULL, suspect_nodes, gw);
    cairn_metrics_gauge_fn(gm->registry, "cairn_gateway_map_epoch", "Epoch of the cluster map in use.", NULL,
                           map_epoch, gw);
    if (gw->cfg.gw_admin_listen[0] == '\0')
        return 0;
    int rc = cairn_adminhttp_create(gw->cfg.gw_admin_listen, gm->registry, NULL, NULL, &gm->admin);
    if (rc != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "admin endpoint on %s: %s", gw->cfg.gw_admin_listen, cairn_strerror(rc));
        return rc;
    }
    cairn_log(CAIRN_LOG_INFO, 0, "admin endpoint (/health, /metrics) on http://%s", cairn_adminhttp_addr(gm->admin));
    return 0;
}

cairn_metrics_t *gw_metrics_registry(gw_t *gw)
{
    return gw->metrics->registry;
}

void gw_metrics_request_begin(gw_job_t *job)
{
    job->start_ns = cairn_metrics_now_ns();
    cairn_gauge_add(job->thread->gw->metrics->in_flight, 1);
}

static void count(gw_job_t *job, int status, uint64_t sent)
{
    gw_t *gw = job->thread->gw;
    op_t *o = op_of(gw, job);
    if (status < MIN_STATUS || status >= MIN_STATUS + NSTATUS)
        status = 500;
    _Atomic(cairn_counter_t *) *slot = &o->requests[status - MIN_STATUS];
    cairn_counter_t *c = atomic_load_explicit(slot, memory_order_acquire);
    if (c == NULL) { /* first of its kind; registering twice returns the same series */
        char labels[80], code[8];
        snprintf(code, sizeof code, "%d", status);
        cairn_metrics_labels(labels, sizeof labels, "op", o->name, "status", code, NULL);
        c = cairn_metrics_counter(gw->metrics->registry, "cairn_gateway_requests_total",
                                  "S3 requests answered, by operation and HTTP status.", labels);
        atomic_store_explicit(slot, c, memory_order_release);
    }
    cairn_counter_add(c, 1);
    cairn_counter_add(o->rx, job->body.len);
    cairn_counter_add(o->tx, sent);
    cairn_hist_observe(o->duration, (double)(cairn_metrics_now_ns() - job->start_ns) / 1e9);
}

void gw_metrics_request_end(gw_job_t *job, int status)
{
    if (job->metered)
        return;
    job->metered = 1;
    count(job, status, job->streaming ? job->sent : job->is_head ? 0 : job->resp_body.len);
}

void gw_metrics_request_gone(gw_job_t *job)
{
    cairn_gauge_add(job->thread->gw->metrics->in_flight, -1);
    if (!job->metered) {
        job->metered = 1;
        count(job, 499, job->sent);
    }
}
