/*
 * place.h — where an object's fragments live: weighted rendezvous hashing
 * with failure domains.
 *
 * Every node scores every object; the best-scoring distinct nodes hold the
 * fragments, fragment i on the i-th choice. For object id X and node n:
 *
 *   h     = XXH3-64 (seed 0) of the 20 bytes  X[0..16) || n.id as 4 bytes
 *           little-endian
 *   u     = ((h >> 11) + 0.5) / 2^53          exactly, in (0, 1) exclusive
 *   score = -w_n / ln(u)                      > 0; higher is better
 *
 * -w / ln(u) makes a node's chance of scoring highest exactly w_n / sum(w).
 * Because each (object, node) score is independent of the other nodes,
 * adding a node only moves objects onto that node, and removing one only
 * moves the objects it held.
 *
 * Failure domains: nodes carry a zone label. With Z = number of distinct
 * zones that contain an eligible node, no zone gets more than ceil(n / Z)
 * of an object's n choices, as long as the zones have enough nodes for that;
 * when they do not, the limit rises one step at a time (ceil(n/Z) + 1, ...)
 * and the remaining choices are filled in score order under each new limit.
 *
 * Caveats
 * - The hash input layout, the u mapping and the rules above are part of the
 *   stored data's address: changing any of them relocates every object.
 * - Scores use libm log()/log1p(). Hosts with different libms could in theory
 *   order two nodes differently when their scores agree to ~1 ulp (odds about
 *   2^-50 per comparison). Metadata records store fragment locations, so
 *   such a disagreement costs a misdirected read, never data.
 * - Node ids must be distinct; zone strings are compared by content, and a
 *   NULL zone is the same zone as "".
 * - Never allocates: the caller passes scratch. Pure function of its inputs;
 *   the chosen nodes do not depend on the order of nodes[].
 * - Cost per pick: one hash and one log per node, O(N) heap build, then
 *   O(log N) per node examined, plus O(N * min(Z, n)) zone-label compares.
 */
#ifndef CAIRN_PLACE_H
#define CAIRN_PLACE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t id;      /* stable node id: never reused for another node */
    const char *zone; /* failure domain label; NULL = "" */
    double weight;    /* relative capacity; <= 0, NaN or infinite: never chosen */
} cairn_place_node_t;

/* Bytes of scratch cairn_place_pick() needs for nnodes nodes (0 for 0). */
size_t cairn_place_scratch_size(size_t nnodes);

/* Choose up to n distinct nodes for the 16-byte object id oid.
 *
 * out[i] (i < return value) is the index into nodes[] of the i-th choice, in
 * descending score order; fragment i goes to out[i]. out must have room for
 * n entries. scratch must hold cairn_place_scratch_size(nnodes) bytes,
 * aligned for a double (malloc'd memory is); its contents on entry do not
 * matter and on return are garbage. nodes[] and oid are only read.
 *
 * Returns the number chosen: min(n, number of eligible nodes). Never fails.
 * Thread-safe (no shared state). */
int cairn_place_pick(const uint8_t oid[16], const cairn_place_node_t *nodes, size_t nnodes,
                     size_t n, void *scratch, uint32_t *out);

/* The score of one node for one object, as defined above; 0 when the weight
 * makes the node ineligible. Exposed for tools and tests. */
double cairn_place_score(const uint8_t oid[16], uint32_t node_id, double weight);

#endif
