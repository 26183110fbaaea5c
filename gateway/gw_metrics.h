/*
 * gw_metrics.h — what the gateway exports on its admin endpoint
 * ([gateway] admin_listen; adminhttp.h, metrics.h).
 *
 *   cairn_gateway_requests_total{op,status}        S3 requests answered, by
 *                                                  operation (GetObject...) and
 *                                                  HTTP status (499: the client
 *                                                  left before the answer ended)
 *   cairn_gateway_request_duration_seconds{op}     arrival to the last byte handed
 *                                                  to the connection
 *   cairn_gateway_received_bytes_total{op}         request body bytes
 *   cairn_gateway_sent_bytes_total{op}             response body bytes
 *   cairn_gateway_requests_in_flight               requests not yet finished
 *   cairn_gateway_nodes_suspect                    storage nodes skipped after a
 *                                                  failure (store.c SUSPECT_MS)
 *   cairn_gateway_map_epoch                        epoch of the cluster map in use
 *   cairn_service_info{service="gateway",id}, process_*  (cairn_metrics_service)
 *
 * Accounting: gw_metrics_request_begin() when a request becomes a job,
 * gw_metrics_request_end() where its status is final and its last byte
 * sent (http.c log_done), gw_metrics_request_gone() when h2o frees the
 * request; a request that ends without gw_metrics_request_end() is counted
 * there as status 499. Each costs a few relaxed atomic adds; the first
 * request of an (op, status) pair registers its counter.
 */
#ifndef CAIRN_GW_METRICS_H
#define CAIRN_GW_METRICS_H

#include "cairn/metrics.h"
#include "gw.h"

/* Create gw->metrics (call before the worker threads start) and open the
 * admin endpoint when cfg.gw_admin_listen is set. 0 or the listen error
 * (logged). */
int gw_metrics_start(gw_t *gw);
/* The registry, for more series (cairn_metrics_*); valid for the gateway's life. */
cairn_metrics_t *gw_metrics_registry(gw_t *gw);

/* Loop thread, per job: see above. */
void gw_metrics_request_begin(gw_job_t *job);
void gw_metrics_request_end(gw_job_t *job, int status);
void gw_metrics_request_gone(gw_job_t *job);

#endif
