/*
 * status_cmd.c — `cairn-admin status [--deep]`: the cluster at a glance.
 *
 *   - the cluster map: epoch, k+m, and per storage node its id, address,
 *     zone, weight and state, whether it answers (PING within 2 s, all
 *     nodes at once), its used and free bytes and its fragment count
 *     (NODE_INFO);
 *   - the metadata replicas, as `cairn-admin meta status` shows them;
 *   - from a scan of every object record: fragments (and objects) that sit
 *     on another node than the current map wants (what `cairn-admin
 *     rebalance` would move: cairn_map_plan_moves against cairn_map_pick),
 *     and objects with a fragment on a node that is out, gone from the map
 *     or unreachable;
 *   - with --deep, every fragment is asked for (FRAG_STAT: present, header
 *     intact, right object and index, file of the right size): objects
 *     with fewer than k+m good fragments (degraded), with fewer than k
 *     (unreadable), and the worst case.
 *
 * Costs: the scan reads every record once (pages of 500). --deep adds one
 * round trip per fragment, the k+m fragments of an object asked in
 * parallel; a node that fails a request is not asked again in this run.
 *
 * A multipart object counts once; it is degraded or misplaced when any of
 * its parts is. Exit status: 0 when everything could be read (whatever
 * the cluster's health), 1 when the map or the records could not, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "admin.h"
#include "cairn/err.h"
#include "cairn/frag.h"

#define PROBE_TIMEOUT_MS 2000
#define STAT_TIMEOUT_MS 5000

static const char status_usage[] =
    "usage: cairn-admin [--json] status [--deep]\n"
    "  the cluster map (epoch, k+m, every node: state, zone, weight, reachable,\n"
    "  used/free bytes, fragments), the metadata replicas, misplaced fragments\n"
    "  against the current map and objects with a fragment on an out, removed or\n"
    "  unreachable node.\n"
    "  --deep   also ask every node for every fragment it should hold: degraded\n"
    "           objects (fewer than k+m good fragments) and the worst case\n"
    "  --json   machine-readable output\n";

typedef struct {
    admin_t *a;
    const cairn_map_t *map;
    int *node_rc;            /* per map index: 0 reachable, else why not (probe, then FRAG_STAT failures) */
    void *scratch;           /* cairn_map_pick */
    int deep;
    cairn_conn_t *conns;     /* per map index, opened on first use (--deep) */
    int *conn_open;

    /* the object being visited (its fragment sets arrive together) */
    cairn_buf_t cur;         /* bucket '\0' key */
    int have_cur, cur_misplaced, cur_risk, cur_worst, cur_worst_of, cur_unreadable;

    uint64_t objects, sets, fragments;
    uint64_t misplaced_fragments, misplaced_objects, unplaceable_sets;
    uint64_t risk_objects;
    /* --deep */
    uint64_t checked, bad;
    uint64_t degraded, unreadable;
    int worst, worst_of;     /* the most fragments missing: good ones of how many (-1: no object) */
    uint64_t worst_objects;
} scan_t;

static int map_index(const cairn_map_t *m, uint32_t id)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->nodes[i].id == id)
            return (int)i;
    return -1;
}

/* Can fragments on map index j be read? (up or draining, answering) */
static int usable(const scan_t *s, int j)
{
    return j >= 0 && s->map->nodes[j].state != CAIRN_NODE_OUT && s->node_rc[j] == 0;
}

/* ---- --deep: FRAG_STAT ---- */

/* Is the FRAG_STAT answer resp that of a good fragment i of fs? */
static int frag_good(const admin_fragset_t *fs, int i, const cairn_buf_t *resp)
{
    cairn_frag_hdr_t h;
    if (resp->len != CAIRN_FRAG_HDR_SIZE + 16 || cairn_frag_hdr_decode(resp->base, &h) != 0)
        return 0;
    cairn_dec_t d;
    cairn_dec_init(&d, resp->base + CAIRN_FRAG_HDR_SIZE, 16);
    uint64_t file_size = cairn_dec_u64(&d);
    return memcmp(h.oid, fs->oid, 16) == 0 && h.index == i && h.k == fs->k && h.m == fs->m &&
           h.object_size == fs->size && file_size == cairn_frag_file_size(&h);
}

static cairn_conn_t *conn_of(scan_t *s, int j)
{
    if (!s->conn_open[j]) {
        cairn_conn_init(&s->conns[j], s->map->nodes[j].addr, s->a->key, STAT_TIMEOUT_MS);
        s->conn_open[j] = 1;
    }
    return &s->conns[j];
}

/* Ask for each fragment of fs: requests to different nodes go out
 * together; a second fragment on the same node waits for the next round.
 * Returns how many are good. */
static int deep_check(scan_t *s, const admin_fragset_t *fs)
{
    int n = fs->k + fs->m, good = 0, pending[CAIRN_MAX_FRAGS], idx[CAIRN_MAX_FRAGS];
    for (int i = 0; i < n; i++) {
        idx[i] = map_index(s->map, fs->nodes[i]);
        pending[i] = usable(s, idx[i]);
        s->checked++;
    }
    cairn_buf_t resp;
    cairn_buf_init(&resp);
    for (;;) {
        int sent[CAIRN_MAX_FRAGS], nsent = 0;
        for (int i = 0; i < n; i++) {
            sent[i] = 0;
            if (!pending[i] || !usable(s, idx[i]))
                continue;
            int dup = 0;
            for (int j = 0; j < i; j++)
                dup |= sent[j] && idx[j] == idx[i];
            if (dup)
                continue;
            uint8_t body[CAIRN_NODE_FRAG_REQ_MAX];
            size_t len = cairn_node_frag_req_encode(body, CAIRN_OP_FRAG_STAT, fs->oid, (unsigned)i, 0, 0);
            struct iovec iov = {body, len};
            int rc = cairn_conn_send(conn_of(s, idx[i]), CAIRN_OP_FRAG_STAT, 0, &iov, 1);
            pending[i] = 0;
            if (rc != 0) {
                s->node_rc[idx[i]] = rc;
                continue;
            }
            sent[i] = 1;
            nsent++;
        }
        if (nsent == 0)
            break;
        for (int i = 0; i < n; i++) {
            if (!sent[i])
                continue;
            int32_t status = 0;
            int rc = cairn_conn_recv(conn_of(s, idx[i]), &resp, &status);
            if (rc != 0)
                s->node_rc[idx[i]] = rc; /* not asked again */
            else if (status == 0 && frag_good(fs, i, &resp))
                good++;
        }
    }
    cairn_buf_dispose(&resp);
    s->bad += (uint64_t)(n - good);
    return good;
}

/* ---- the scan ---- */

static void finish_object(scan_t *s)
{
    if (!s->have_cur)
        return;
    s->objects++;
    s->misplaced_objects += s->cur_misplaced;
    s->risk_objects += s->cur_risk;
    if (s->deep) {
        s->degraded += s->cur_worst < s->cur_worst_of;
        s->unreadable += s->cur_unreadable;
        int missing = s->cur_worst_of - s->cur_worst;
        if (s->worst < 0 || missing > s->worst_of - s->worst) {
            s->worst = s->cur_worst;
            s->worst_of = s->cur_worst_of;
            s->worst_objects = 0;
        }
        s->worst_objects += missing == s->worst_of - s->worst;
    }
    s->have_cur = 0;
}

/* Start a new object unless fs belongs to the current one. */
static void track_object(scan_t *s, const admin_fragset_t *fs)
{
    size_t len = fs->bucket_len + 1 + fs->key_len;
    if (s->have_cur && s->cur.len == len && memcmp(s->cur.base, fs->bucket, fs->bucket_len) == 0 &&
        memcmp(s->cur.base + fs->bucket_len + 1, fs->key, fs->key_len) == 0)
        return;
    finish_object(s);
    cairn_buf_reset(&s->cur);
    cairn_buf_append(&s->cur, fs->bucket, fs->bucket_len);
    cairn_buf_put_u8(&s->cur, 0);
    cairn_buf_append(&s->cur, fs->key, fs->key_len);
    s->have_cur = 1;
    s->cur_misplaced = s->cur_risk = s->cur_unreadable = 0;
    s->cur_worst = 1, s->cur_worst_of = 0; /* "one more than all": any set is worse */
}

static int visit_set(void *arg, const admin_fragset_t *fs)
{
    scan_t *s = arg;
    int n = fs->k + fs->m;
    track_object(s, fs);
    s->sets++;
    s->fragments += (uint64_t)n;
    uint32_t want[CAIRN_MAX_FRAGS], to[CAIRN_MAX_FRAGS];
    if (cairn_map_pick(s->map, fs->oid, (size_t)n, s->scratch, want) < n) {
        s->unplaceable_sets++; /* more fragments than nodes up: nowhere to move them */
    } else {
        int moves = cairn_map_plan_moves(fs->nodes, want, n, to);
        s->misplaced_fragments += (uint64_t)moves;
        s->cur_misplaced |= moves > 0;
    }
    for (int i = 0; i < n; i++)
        if (!usable(s, map_index(s->map, fs->nodes[i])))
            s->cur_risk = 1;
    if (s->deep) {
        int good = deep_check(s, fs);
        if (good - n < s->cur_worst - s->cur_worst_of) {
            s->cur_worst = good;
            s->cur_worst_of = n;
        }
        s->cur_unreadable |= good < fs->k;
    }
    return 0;
}

/* ---- output ---- */

/* probe_rc: the probe's verdict per node (the scan may have learnt of more failures since). */
static void print_nodes_text(const cairn_map_t *m, const int *probe_rc, const cairn_node_info_t *info)
{
    size_t count[3] = {0};
    for (size_t i = 0; i < m->n; i++)
        count[m->nodes[i].state]++;
    printf("cluster map epoch %llu: %u+%u erasure coding, %zu nodes (%zu up, %zu draining, %zu out)\n\n",
           (unsigned long long)m->epoch, m->k, m->m, m->n, count[0], count[1], count[2]);
    printf("%-6s %-22s %-10s %6s  %-8s  %-9s %10s %10s %10s\n", "ID", "ADDRESS", "ZONE", "WEIGHT", "STATE",
           "REACHABLE", "USED", "FREE", "FRAGMENTS");
    for (size_t i = 0; i < m->n; i++) {
        const cairn_map_node_t *n = &m->nodes[i];
        char w[32], used[32] = "-", avail[32] = "-", frags[32] = "-";
        admin_fmt_weight(n->weight_milli, w, sizeof w);
        if (probe_rc[i] == 0) {
            admin_fmt_bytes(info[i].used, used, sizeof used);
            admin_fmt_bytes(info[i].avail, avail, sizeof avail);
            snprintf(frags, sizeof frags, "%llu", (unsigned long long)info[i].fragments);
        }
        printf("%-6u %-22s %-10s %6s  %-8s  %-9s %10s %10s %10s", n->id, n->addr, n->zone, w,
               cairn_node_state_name(n->state), probe_rc[i] == 0 ? "yes" : "no", used, avail, frags);
        if (probe_rc[i] != 0)
            printf("  (%s)", cairn_strerror(probe_rc[i]));
        printf("\n");
    }
}

static void print_scan_text(const scan_t *s)
{
    printf("\nerasure-coded objects: %llu (%llu fragment sets, %llu fragments)\n", (unsigned long long)s->objects,
           (unsigned long long)s->sets, (unsigned long long)s->fragments);
    printf("misplaced against the current map: %llu fragments in %llu objects%s\n",
           (unsigned long long)s->misplaced_fragments, (unsigned long long)s->misplaced_objects,
           s->misplaced_fragments ? " (`cairn-admin rebalance` moves them)" : "");
    if (s->unplaceable_sets)
        printf("fragment sets wider than the nodes up (cannot be placed): %llu\n",
               (unsigned long long)s->unplaceable_sets);
    printf("objects with a fragment on an out, removed or unreachable node: %llu\n",
           (unsigned long long)s->risk_objects);
    if (!s->deep)
        return;
    printf("deep check: %llu fragments checked, %llu missing, damaged or on a node that cannot be read\n",
           (unsigned long long)s->checked, (unsigned long long)s->bad);
    printf("degraded objects (fewer than k+m good fragments): %llu, unreadable (fewer than k): %llu\n",
           (unsigned long long)s->degraded, (unsigned long long)s->unreadable);
    if (s->worst >= 0)
        printf("worst case: %d of %d good fragments (%llu object%s)\n", s->worst, s->worst_of,
               (unsigned long long)s->worst_objects, s->worst_objects == 1 ? "" : "s");
}

static void print_json(admin_t *a, const scan_t *s, const int *probe_rc, const cairn_node_info_t *info,
                       const admin_replica_t *reps, size_t nreps, int leader, int scanned)
{
    const cairn_map_t *m = s->map;
    printf("{\"epoch\":%llu,\"k\":%u,\"m\":%u,\"nodes\":[", (unsigned long long)m->epoch, m->k, m->m);
    for (size_t i = 0; i < m->n; i++) {
        const cairn_map_node_t *n = &m->nodes[i];
        char w[32];
        admin_fmt_weight(n->weight_milli, w, sizeof w);
        printf("%s{\"id\":%u,\"addr\":", i ? "," : "", n->id);
        admin_json_str(n->addr);
        printf(",\"zone\":");
        admin_json_str(n->zone);
        printf(",\"weight\":%s,\"state\":\"%s\",\"reachable\":%s", w, cairn_node_state_name(n->state),
               probe_rc[i] == 0 ? "true" : "false");
        if (probe_rc[i] == 0) {
            printf(",\"used_bytes\":%llu,\"free_bytes\":%llu,\"fragments\":%llu", (unsigned long long)info[i].used,
                   (unsigned long long)info[i].avail, (unsigned long long)info[i].fragments);
        } else {
            printf(",\"error\":");
            admin_json_str(cairn_strerror(probe_rc[i]));
        }
        printf("}");
    }
    printf("],\"meta\":");
    admin_meta_replicas_print(a, reps, nreps);
    printf(",\"meta_leader\":%s", leader >= 0 ? "true" : "false");
    if (scanned) {
        printf(",\"objects\":%llu,\"fragment_sets\":%llu,\"fragments\":%llu,\"misplaced_fragments\":%llu,"
               "\"misplaced_objects\":%llu,\"unplaceable_sets\":%llu,\"objects_on_unavailable_nodes\":%llu",
               (unsigned long long)s->objects, (unsigned long long)s->sets, (unsigned long long)s->fragments,
               (unsigned long long)s->misplaced_fragments, (unsigned long long)s->misplaced_objects,
               (unsigned long long)s->unplaceable_sets, (unsigned long long)s->risk_objects);
        if (s->deep) {
            printf(",\"deep\":{\"fragments_checked\":%llu,\"bad_fragments\":%llu,\"degraded_objects\":%llu,"
                   "\"unreadable_objects\":%llu",
                   (unsigned long long)s->checked, (unsigned long long)s->bad, (unsigned long long)s->degraded,
                   (unsigned long long)s->unreadable);
            if (s->worst >= 0)
                printf(",\"worst_good_fragments\":%d,\"worst_of\":%d,\"worst_objects\":%llu", s->worst, s->worst_of,
                       (unsigned long long)s->worst_objects);
            printf("}");
        }
    }
    printf("}\n");
}

/* ---- entry ---- */

int admin_status(admin_t *a, int argc, char **argv)
{
    int deep = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(status_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--deep") == 0) {
            deep = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            a->json = 1;
        } else {
            fprintf(stderr, "cairn-admin: status: unexpected argument '%s'\n%s", argv[i], status_usage);
            return 2;
        }
    }
    static admin_replica_t reps[ADMIN_MAX_REPLICAS];
    static cairn_map_t map;
    static cairn_node_info_t info[CAIRN_MAP_MAX_NODES];
    static int node_rc[CAIRN_MAP_MAX_NODES];
    int leader;
    size_t nreps = admin_meta_replicas(a, reps, &leader);
    cairn_meta_client_t mc;
    admin_meta_client(a, &mc);
    if (admin_map_load(a, &mc, &map) != 0) {
        if (!a->json) {
            printf("metadata replicas:\n");
            admin_meta_replicas_print(a, reps, nreps);
        }
        cairn_meta_client_dispose(&mc);
        return 1;
    }
    admin_node_probe_all(a, &map, PROBE_TIMEOUT_MS, node_rc, info);

    scan_t s = {.a = a, .map = &map, .node_rc = node_rc, .deep = deep, .worst = -1};
    s.scratch = cairn_malloc(cairn_map_scratch_size());
    s.conns = cairn_calloc(map.n ? map.n : 1, sizeof *s.conns);
    s.conn_open = cairn_calloc(map.n ? map.n : 1, sizeof *s.conn_open);
    cairn_buf_init(&s.cur);
    /* The table shows the probe's verdict; the scan may learn of more failures. */
    int probe_rc[CAIRN_MAP_MAX_NODES];
    memcpy(probe_rc, node_rc, sizeof probe_rc);
    int rc = admin_walk(&mc, CAIRN_SCAN_OBJECTS, NULL, 0, visit_set, NULL, &s);
    finish_object(&s);
    if (rc != 0)
        fprintf(stderr, "cairn-admin: status: cannot scan the object records: %s\n", cairn_strerror(rc));
    if (a->json) {
        print_json(a, &s, probe_rc, info, reps, nreps, leader, rc == 0);
    } else {
        print_nodes_text(&map, probe_rc, info);
        printf("\nmetadata replicas:\n");
        admin_meta_replicas_print(a, reps, nreps);
        if (rc == 0)
            print_scan_text(&s);
    }
    for (size_t i = 0; i < map.n; i++)
        if (s.conn_open[i])
            cairn_conn_dispose(&s.conns[i]);
    free(s.conns);
    free(s.conn_open);
    free(s.scratch);
    cairn_buf_dispose(&s.cur);
    cairn_meta_client_dispose(&mc);
    return rc == 0 ? 0 : 1;
}
