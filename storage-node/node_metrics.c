/*
 * node_metrics.c — a storage node's metrics and health (see node_metrics.h).
 */
#include "node_metrics.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cairn/err.h"
#include "cairn/log.h"

/* The walk that counts fragments costs about 2 us per fragment (6000: 12 ms
 * here; a million: seconds), so a scrape repeats it only once 10x its last
 * duration has passed: at most a tenth of the admin thread's time. */
#define WALK_DUTY 10

static void on_scrape(void *arg)
{
    node_metrics_t *nm = arg;
    cairn_node_scrub_status_t ss;
    cairn_scrub_status(nm->scrub, &ss);
    cairn_gauge_set(nm->scrub_passes, (int64_t)ss.passes);
    cairn_gauge_set(nm->scrub_frags, (int64_t)ss.fragments_checked);
    cairn_gauge_set(nm->scrub_bytes, (int64_t)ss.bytes_checked);
    cairn_gauge_set(nm->scrub_bad, (int64_t)ss.bad_found);
    cairn_gauge_set(nm->scrub_last, ss.last_pass_end_ms / 1000);
    int64_t t0 = cairn_metrics_now_ns();
    if (nm->walked_ns && t0 - nm->walked_ns < WALK_DUTY * nm->walk_ns)
        return;
    uint64_t used, avail, frags;
    if (cairn_fstore_info(nm->store, &used, &avail, &frags) != 0)
        return; /* keep the last values */
    nm->walked_ns = cairn_metrics_now_ns();
    nm->walk_ns = nm->walked_ns - t0;
    cairn_gauge_set(nm->fragments, (int64_t)frags);
    cairn_gauge_set(nm->used, (int64_t)used);
    cairn_gauge_set(nm->avail, (int64_t)avail);
}

static int on_health(void *arg, char *why, size_t n)
{
    node_metrics_t *nm = arg;
    if (access(nm->frags_dir, W_OK | X_OK) == 0)
        return 0;
    snprintf(why, n, "data directory %s: %s", nm->frags_dir, strerror(errno));
    return 1;
}

int node_metrics_start(node_metrics_t *nm, const char *admin_addr, uint32_t node_id, const char *data_dir,
                       cairn_fstore_t *store, cairn_scrub_t *scrub)
{
    memset(nm, 0, sizeof *nm);
    nm->store = store;
    nm->scrub = scrub;
    snprintf(nm->frags_dir, sizeof nm->frags_dir, "%s/frags", data_dir);
    nm->registry = cairn_metrics_create();
    char id[16];
    snprintf(id, sizeof id, "%u", node_id);
    cairn_metrics_service(nm->registry, "node", id);
    nm->srv = cairn_srv_metrics_create(nm->registry, "cairn_node", cairn_fstore_routes, cairn_fstore_nroutes, store);
    nm->fragments = cairn_metrics_gauge(nm->registry, "cairn_node_fragments", "Fragment files stored.", NULL);
    nm->used = cairn_metrics_gauge(nm->registry, "cairn_node_disk_used_bytes",
                                   "Bytes used on the file system of the data directory.", NULL);
    nm->avail = cairn_metrics_gauge(nm->registry, "cairn_node_disk_free_bytes",
                                    "Bytes free for the node on the file system of the data directory.", NULL);
    nm->scrub_passes = cairn_metrics_gauge(nm->registry, "cairn_node_scrub_passes",
                                           "Full scrub passes finished since the node started.", NULL);
    nm->scrub_frags = cairn_metrics_gauge(nm->registry, "cairn_node_scrub_fragments_checked",
                                          "Fragments the scrubber verified since the node started.", NULL);
    nm->scrub_bytes = cairn_metrics_gauge(nm->registry, "cairn_node_scrub_bytes_checked",
                                          "Bytes the scrubber verified since the node started.", NULL);
    nm->scrub_bad = cairn_metrics_gauge(nm->registry, "cairn_node_scrub_bad_found",
                                        "Corrupt fragments the scrubber quarantined since the node started.", NULL);
    nm->scrub_last = cairn_metrics_gauge(nm->registry, "cairn_node_scrub_last_pass_end_seconds",
                                         "Unix time the last full scrub pass ended (0: never).", NULL);
    cairn_metrics_on_scrape(nm->registry, on_scrape, nm);
    if (admin_addr == NULL || admin_addr[0] == '\0')
        return 0;
    int rc = cairn_adminhttp_create(admin_addr, nm->registry, on_health, nm, &nm->admin);
    if (rc != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "admin endpoint on %s: %s", admin_addr, cairn_strerror(rc));
        return rc;
    }
    cairn_log(CAIRN_LOG_INFO, 0, "admin endpoint (/health, /metrics) on http://%s", cairn_adminhttp_addr(nm->admin));
    return 0;
}

void node_metrics_stop(node_metrics_t *nm)
{
    cairn_adminhttp_destroy(nm->admin);
    cairn_srv_metrics_destroy(nm->srv);
    cairn_metrics_destroy(nm->registry);
    memset(nm, 0, sizeof *nm);
}
