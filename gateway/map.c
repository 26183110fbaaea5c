/*
 * map.c — the gateway's copy of the cluster map (cairn/meta_map.h).
 *
 * At start the gateway seeds the map from its [node.N] sections if the
 * metadata tier holds none yet (MAP_INIT is applied only while the map is
 * empty, so concurrent gateways agree), then a thread polls the map every
 * POLL_MS and installs a newer epoch. Until the tier answers, the
 * configuration's nodes serve as the map, so a gateway started before the
 * metadata tier still works once it comes.
 *
 * New objects are placed by the current map (up nodes only). Reads go by
 * the node ids in each record: a node that is draining is still read; one
 * that is out or gone from the map is treated as missing, and its fragments
 * are rebuilt from parity.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "gw.h"

#define POLL_MS 1000

/* Under the write lock: adopt m (slots for new nodes, states for all). */
static void install(gw_t *gw, const cairn_map_t *m)
{
    size_t ns = gw->nslots;
    for (size_t i = 0; i < m->n; i++) {
        size_t s;
        for (s = 0; s < ns && gw->slots[s].id != m->nodes[i].id; s++)
            ;
        if (s == ns && ns < CAIRN_MAP_MAX_NODES) {
            gw->slots[s].id = m->nodes[i].id;
            snprintf(gw->slots[s].addr, sizeof gw->slots[s].addr, "%s", m->nodes[i].addr);
            ns++;
        }
    }
    for (size_t s = 0; s < ns; s++) {
        const cairn_map_node_t *x = cairn_map_node(m, gw->slots[s].id);
        __atomic_store_n(&gw->slots[s].state, x ? (int)x->state : GW_SLOT_GONE, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&gw->nslots, ns, __ATOMIC_RELEASE);
    gw->map = *m;
}

static void adopt(gw_t *gw, const cairn_map_t *m)
{
    pthread_rwlock_wrlock(&gw->map_lock);
    uint64_t old = gw->map.epoch;
    int newer = m->epoch > old;
    if (newer)
        install(gw, m);
    pthread_rwlock_unlock(&gw->map_lock);
    if (newer)
        cairn_log(CAIRN_LOG_INFO, 0, "cluster map epoch %llu (%zu nodes, %zu up)", (unsigned long long)m->epoch, m->n,
                  cairn_map_count_up(m));
}

typedef struct {
    gw_t *gw;
    cairn_meta_client_t mc;
    cairn_map_t map, seed;
    int seeded;
} poller_t;

static void poll_once(poller_t *p)
{
    int rc = p->seeded ? cairn_meta_map_get(&p->mc, 0, &p->map) : cairn_meta_map_init(&p->mc, 0, &p->seed, &p->map);
    if (rc == 0) {
        p->seeded = 1;
        adopt(p->gw, &p->map);
    } else if (rc != CAIRN_EUNAVAIL && rc != CAIRN_ETIMEOUT) {
        cairn_log(CAIRN_LOG_WARN, 0, "cluster map: %s", cairn_strerror(rc));
    }
}

static void *poll_main(void *arg)
{
    for (;;) {
        usleep(POLL_MS * 1000);
        poll_once(arg);
    }
    return NULL;
}

int gw_map_start(gw_t *gw)
{
    pthread_rwlock_init(&gw->map_lock, NULL);
    poller_t *p = cairn_calloc(1, sizeof *p);
    p->gw = gw;
    cairn_map_from_cfg(&gw->cfg, &p->seed);
    install(gw, &p->seed); /* epoch 0: any map from the tier replaces it */
    cairn_meta_client_init(&p->mc, gw->cfg.meta_addr, gw->key, gw->cfg.io_timeout_ms);
    poll_once(p); /* serve by the tier's map from the first request when it answers */
    pthread_t tid;
    if (pthread_create(&tid, NULL, poll_main, p) != 0)
        return CAIRN_EUNAVAIL;
    pthread_detach(tid);
    return 0;
}

int gw_map_slot(gw_t *gw, uint32_t id)
{
    size_t ns = __atomic_load_n(&gw->nslots, __ATOMIC_ACQUIRE);
    for (size_t s = 0; s < ns; s++)
        if (gw->slots[s].id == id) {
            int st = __atomic_load_n(&gw->slots[s].state, __ATOMIC_RELAXED);
            return st == CAIRN_NODE_UP || st == CAIRN_NODE_DRAINING ? (int)s : -1;
        }
    return -1;
}

int gw_map_pick(gw_worker_t *w, const uint8_t oid[16], int n, int *slots, uint32_t *ids)
{
    gw_t *gw = w->gw;
    pthread_rwlock_rdlock(&gw->map_lock);
    int got = cairn_map_pick(&gw->map, oid, (size_t)n, w->place_scratch, ids);
    pthread_rwlock_unlock(&gw->map_lock);
    for (int i = 0; i < got; i++)
        if ((slots[i] = gw_map_slot(gw, ids[i])) < 0)
            return i; /* removed in between: try again later */
    return got;
}

cairn_conn_t *gw_conn(gw_worker_t *w, int slot)
{
    gw_t *gw = w->gw;
    size_t ns = __atomic_load_n(&gw->nslots, __ATOMIC_ACQUIRE);
    while (w->nconns < ns) {
        cairn_conn_init(&w->nodes[w->nconns], gw->slots[w->nconns].addr, gw->key, gw->cfg.io_timeout_ms);
        w->nconns++;
    }
    return slot >= 0 && (size_t)slot < w->nconns ? &w->nodes[slot] : NULL;
}
