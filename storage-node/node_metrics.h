/*
 * node_metrics.h — what a storage node exports on its admin endpoint
 * ([node.<id>] admin_addr; adminhttp.h, metrics.h).
 *
 *   cairn_node_requests_total{op,result}, cairn_node_request_duration_seconds{op},
 *   cairn_node_received_bytes_total{op}, cairn_node_sent_bytes_total{op},
 *   cairn_node_requests_in_flight          every request (srv_metrics.h)
 *   cairn_node_fragments                   fragment files stored
 *   cairn_node_disk_used_bytes             used on the data file system
 *   cairn_node_disk_free_bytes             free for the service (statvfs f_bavail)
 *   cairn_service_info{service="node",id}, process_*  (cairn_metrics_service)
 *
 * The three storage gauges are what CAIRN_OP_NODE_INFO answers, read at
 * scrape time: the fragment count walks the data directory, O(fragments),
 * so it is refreshed only once ten times the last walk's duration has
 * passed (6000 fragments: a 12 ms walk, at most every 0.12 s) and may lag
 * by that much.
 *
 * /health is 503 while the data directory is not writable.
 */
#ifndef CAIRN_NODE_METRICS_H
#define CAIRN_NODE_METRICS_H

#include <stdint.h>

#include "cairn/adminhttp.h"
#include "cairn/metrics.h"
#include "cairn/srv_metrics.h"
#include "frag_store.h"
#include "scrub.h"

typedef struct {
    cairn_metrics_t *registry; /* more series can be registered here (cairn_metrics_*) for the node's life */
    cairn_srv_metrics_t *srv;  /* serve cairn_srv_metrics_routes(srv) with srv as the data */
    cairn_adminhttp_t *admin;  /* NULL when admin_addr is empty */
    /* private */
    cairn_fstore_t *store;
    char frags_dir[4096];
    cairn_gauge_t *fragments, *used, *avail;
    cairn_scrub_t *scrub;
    cairn_gauge_t *scrub_passes, *scrub_frags, *scrub_bytes, *scrub_bad, *scrub_last;
    int64_t walked_ns, walk_ns; /* end and duration of the last count (cairn_metrics_now_ns) */
} node_metrics_t;

/* Set up the registry and the request metrics around the fragment store's
 * routes; open the admin endpoint when admin_addr is not empty. store and
 * data_dir are borrowed. 0, or the admin listen error (logged). */
int node_metrics_start(node_metrics_t *nm, const char *admin_addr, uint32_t node_id, const char *data_dir,
                       cairn_fstore_t *store, cairn_scrub_t *scrub);
/* Close the endpoint and free everything; after the server is destroyed. */
void node_metrics_stop(node_metrics_t *nm);

#endif
