/*
 * srv_metrics.h — request metrics for a server of the internal protocol
 * (srv.h), by wrapping its route table: every handler call is counted,
 * timed and sized, without the handlers knowing.
 *
 * With prefix P ("cairn_node", "cairn_meta") it registers:
 *   P_requests_total{op,result}       counter: requests answered, by opcode
 *                                      and outcome ("ok", "not_found",
 *                                      "not_leader", ..., "error")
 *   P_request_duration_seconds{op}    histogram: handler time
 *   P_received_bytes_total{op}        counter: request body bytes
 *   P_sent_bytes_total{op}            counter: response body bytes
 *   P_requests_in_flight              gauge: handlers running now
 * op is the opcode's name (cairn_srv_op_name: "frag_put", "obj_get", ...).
 * A request wrapped in CAIRN_OP_META_ONCE is counted under the opcode it
 * wraps. Frame headers and MACs are not counted as bytes; requests the
 * server rejects before a handler runs (bad MAC, unknown opcode) are not
 * counted at all.
 *
 * Cost per request: two clock reads, a scan of the route table for the
 * opcode, and a handful of relaxed atomic adds; the first request of each
 * (op, result) pair registers its counter.
 */
#ifndef CAIRN_SRV_METRICS_H
#define CAIRN_SRV_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/metrics.h"
#include "cairn/srv.h"

typedef struct cairn_srv_metrics_s cairn_srv_metrics_t;

/* Wrap routes[0..nroutes) (borrowed, must outlive the wrapper) whose
 * handlers expect data. Pass cairn_srv_metrics_routes() (nroutes entries)
 * and the wrapper itself as the data to cairn_srv_create(). */
cairn_srv_metrics_t *cairn_srv_metrics_create(cairn_metrics_t *m, const char *prefix, const cairn_srv_route_t *routes,
                                              size_t nroutes, void *data);
const cairn_srv_route_t *cairn_srv_metrics_routes(const cairn_srv_metrics_t *sm);
/* After the server is destroyed. NULL is fine. */
void cairn_srv_metrics_destroy(cairn_srv_metrics_t *sm);

/* A short lower-case name of an opcode of wire.h, meta.h or meta_mpu.h
 * ("frag_get", "obj_put", "mpu_complete"), or NULL if unknown. Static. */
const char *cairn_srv_op_name(uint16_t op);

#endif
