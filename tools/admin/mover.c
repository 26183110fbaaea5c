/*
 * mover.c — see mover.h.
 */
#include "mover.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn/ec.h"
#include "cairn/err.h"

#define CHUNK_BYTES (4u << 20)   /* fragment data read per leg and round */
#define LIST_PAGE 10000
#define LOCK_STALE_MS 30000
#define LOCK_NAME "admin.lock"

static volatile sig_atomic_t stop_flag;

void mover_stop(void) { stop_flag = 1; }
int mover_stopping(void) { return stop_flag != 0; }

void mv_job_from(mv_job_t *j, const admin_fragset_t *fs, int table)
{
    memset(j, 0, offsetof(mv_job_t, nodes));
    size_t bl = fs->bucket_len < CAIRN_MAX_BUCKET_LEN ? fs->bucket_len : CAIRN_MAX_BUCKET_LEN;
    memcpy(j->bucket, fs->bucket, bl);
    j->bucket[bl] = '\0';
    j->key_len = fs->key_len < CAIRN_MAX_KEY_LEN ? fs->key_len : CAIRN_MAX_KEY_LEN;
    memcpy(j->key, fs->key, j->key_len);
    j->table = table;
    memcpy(j->oid, fs->oid, 16);
    j->size = fs->size;
    j->k = fs->k, j->m = fs->m;
    j->block_size = fs->block_size;
    for (int i = 0; i < CAIRN_MAX_FRAGS; i++)
        j->nodes[i] = j->to[i] = i < fs->k + fs->m ? fs->nodes[i] : 0;
    j->fix = j->bad = 0;
    j->surviving = fs->k + fs->m;
}

static void job_hdr(const mv_job_t *j, cairn_frag_hdr_t *h)
{
    memset(h, 0, sizeof *h);
    memcpy(h->oid, j->oid, 16);
    h->k = j->k, h->m = j->m;
    h->block_size = j->block_size;
    h->object_size = j->size;
}

uint64_t mv_frag_bytes(const mv_job_t *j)
{
    cairn_frag_hdr_t h;
    job_hdr(j, &h);
    return cairn_frag_file_size(&h);
}

/* ---- the mover ---- */

typedef struct {
    mover_t *mv;
    pthread_t tid;
    cairn_conn_t conns[CAIRN_MAP_MAX_NODES]; /* by index in the map */
    uint8_t conn_ready[CAIRN_MAP_MAX_NODES];
    cairn_meta_client_t meta;
    cairn_buf_t legs[CAIRN_MAX_FRAGS];
    cairn_buf_t scratch;
    uint8_t *rebuild;
    size_t rebuild_cap;
    cairn_ec_t *ec;
} worker_t;

struct mover_s {
    admin_t *a;
    const cairn_map_t *map;
    int nworkers;
    worker_t *w;
    /* rate limit: a token bucket of bytes */
    double rate_bps;
    pthread_mutex_t rate_lock;
    double tokens;
    int64_t refill_ms;
    /* the batch being run */
    mv_job_t *jobs;
    size_t njobs, next, skipped;
    pthread_mutex_t lock;
    mover_stats_t st;
};

static void stat_add(mover_t *mv, uint64_t *field, uint64_t v) { __atomic_add_fetch(field, v, __ATOMIC_RELAXED); }

mover_t *mover_create(admin_t *a, const cairn_map_t *map, int parallel, double rate_mb)
{
    mover_t *mv = cairn_calloc(1, sizeof *mv);
    mv->a = a;
    mv->map = map;
    mv->nworkers = parallel < 1 ? 1 : parallel > 64 ? 64 : parallel;
    mv->w = cairn_calloc((size_t)mv->nworkers, sizeof *mv->w);
    for (int i = 0; i < mv->nworkers; i++) {
        mv->w[i].mv = mv;
        admin_meta_client(a, &mv->w[i].meta);
        cairn_buf_init(&mv->w[i].scratch);
        for (int f = 0; f < CAIRN_MAX_FRAGS; f++)
            cairn_buf_init(&mv->w[i].legs[f]);
    }
    mv->rate_bps = rate_mb > 0 ? rate_mb * 1e6 : 0;
    mv->refill_ms = -1;
    pthread_mutex_init(&mv->rate_lock, NULL);
    pthread_mutex_init(&mv->lock, NULL);
    return mv;
}

void mover_destroy(mover_t *mv)
{
    if (mv == NULL)
        return;
    for (int i = 0; i < mv->nworkers; i++) {
        worker_t *w = &mv->w[i];
        for (size_t c = 0; c < CAIRN_MAP_MAX_NODES; c++)
            if (w->conn_ready[c])
                cairn_conn_dispose(&w->conns[c]);
        cairn_meta_client_dispose(&w->meta);
        cairn_buf_dispose(&w->scratch);
        for (int f = 0; f < CAIRN_MAX_FRAGS; f++)
            cairn_buf_dispose(&w->legs[f]);
        free(w->rebuild);
        cairn_ec_destroy(w->ec);
    }
    free(mv->w);
    pthread_mutex_destroy(&mv->rate_lock);
    pthread_mutex_destroy(&mv->lock);
    free(mv);
}

void mover_stats(mover_t *mv, mover_stats_t *out)
{
    out->jobs_done = __atomic_load_n(&mv->st.jobs_done, __ATOMIC_RELAXED);
    out->jobs_failed = __atomic_load_n(&mv->st.jobs_failed, __ATOMIC_RELAXED);
    out->jobs_conflict = __atomic_load_n(&mv->st.jobs_conflict, __ATOMIC_RELAXED);
    out->frags_written = __atomic_load_n(&mv->st.frags_written, __ATOMIC_RELAXED);
    out->bytes_written = __atomic_load_n(&mv->st.bytes_written, __ATOMIC_RELAXED);
    out->frags_rebuilt = __atomic_load_n(&mv->st.frags_rebuilt, __ATOMIC_RELAXED);
}

/* Wait until n more bytes may be written. */
static void rate_take(mover_t *mv, size_t n)
{
    if (mv->rate_bps <= 0)
        return;
    pthread_mutex_lock(&mv->rate_lock);
    int64_t now = cairn_now_ms();
    if (mv->refill_ms < 0)
        mv->refill_ms = now; /* the bucket starts empty at the first write */
    double cap = mv->rate_bps; /* at most one second of burst */
    mv->tokens += (double)(now - mv->refill_ms) * mv->rate_bps / 1000.0;
    if (mv->tokens > cap)
        mv->tokens = cap;
    mv->refill_ms = now;
    mv->tokens -= (double)n;
    double debt = mv->tokens < 0 ? -mv->tokens : 0;
    pthread_mutex_unlock(&mv->rate_lock);
    if (debt > 0)
        usleep((useconds_t)(debt / mv->rate_bps * 1e6));
}

/* The worker's connection to node id, or NULL when the map has no such node
 * or it is out. */
static cairn_conn_t *conn_of(worker_t *w, uint32_t id)
{
    const cairn_map_t *map = w->mv->map;
    for (size_t i = 0; i < map->n; i++) {
        if (map->nodes[i].id != id)
            continue;
        if (map->nodes[i].state == CAIRN_NODE_OUT)
            return NULL;
        if (!w->conn_ready[i]) {
            cairn_conn_init(&w->conns[i], map->nodes[i].addr, w->mv->a->key, w->mv->a->cfg.io_timeout_ms);
            w->conn_ready[i] = 1;
        }
        return &w->conns[i];
    }
    return NULL;
}

static int frag_delete(worker_t *w, uint32_t node, const uint8_t oid[16], unsigned index)
{
    cairn_conn_t *c = conn_of(w, node);
    if (c == NULL)
        return CAIRN_EUNAVAIL;
    uint8_t body[CAIRN_NODE_FRAG_REQ_MAX];
    struct iovec iov = {body, cairn_node_frag_req_encode(body, CAIRN_OP_FRAG_DELETE, oid, index, 0, 0)};
    int32_t status = 0;
    int rc = cairn_conn_call(c, CAIRN_OP_FRAG_DELETE, 0, &iov, 1, &w->scratch, &status);
    return rc ? rc : status == CAIRN_ENOTFOUND ? 0 : status;
}

/* Read stripes [first, first+n) of fragment i of job j from its node into
 * legs[i], checked. Two phases (send to many, then collect) run the nodes in
 * parallel: send_read then recv_read. */
static int send_read(worker_t *w, const mv_job_t *j, int i, uint64_t first, uint32_t n)
{
    cairn_conn_t *c = conn_of(w, j->nodes[i]);
    if (c == NULL)
        return CAIRN_EUNAVAIL;
    uint8_t body[CAIRN_NODE_FRAG_REQ_MAX];
    struct iovec iov = {body, cairn_node_frag_req_encode(body, CAIRN_OP_FRAG_GET, j->oid, (unsigned)i, first, n)};
    return cairn_conn_send(c, CAIRN_OP_FRAG_GET, 0, &iov, 1);
}

static int recv_read(worker_t *w, const mv_job_t *j, int i, uint64_t first, uint32_t n)
{
    cairn_conn_t *c = conn_of(w, j->nodes[i]);
    int32_t status = 0;
    int rc = cairn_conn_recv(c, &w->legs[i], &status);
    if (rc == 0)
        rc = status;
    if (rc == 0) {
        cairn_frag_hdr_t h;
        job_hdr(j, &h);
        rc = cairn_frag_read_check(&h, (unsigned)i, first, n, w->legs[i].base, w->legs[i].len);
    }
    return rc;
}

/* Read fragments `want` (bitmask) of the chunk in parallel; returns the mask
 * of those that arrived intact. */
static uint32_t read_legs(worker_t *w, const mv_job_t *j, uint32_t want, uint64_t first, uint32_t n)
{
    uint32_t sent = 0, got = 0;
    for (int i = 0; i < j->k + j->m; i++)
        if (want & (1u << i) && send_read(w, j, i, first, n) == 0)
            sent |= 1u << i;
    for (int i = 0; i < j->k + j->m; i++)
        if (sent & (1u << i) && recv_read(w, j, i, first, n) == 0)
            got |= 1u << i;
    return got;
}

static int popcount(uint32_t v) { return __builtin_popcount(v); }

static cairn_ec_t *ec_for(worker_t *w, int k, int m)
{
    if (w->ec && (cairn_ec_k(w->ec) != k || cairn_ec_m(w->ec) != m)) {
        cairn_ec_destroy(w->ec);
        w->ec = NULL;
    }
    if (w->ec == NULL && cairn_ec_create(k, m, &w->ec) != 0)
        w->ec = NULL;
    return w->ec;
}

/* Write one chunk of every fixed fragment: copied legs as they came (blocks
 * with their sums), the others rebuilt stripe by stripe from the legs in
 * `have`. */
static int write_chunk(worker_t *w, const mv_job_t *j, cairn_conn_t **dst, uint32_t have, uint64_t first,
                       uint32_t n)
{
    const int k = j->k, nf = j->k + j->m;
    cairn_frag_hdr_t h;
    job_hdr(j, &h);
    size_t bytes = 0;
    for (int i = 0; i < nf; i++) {
        if (!(j->fix & (1u << i)) || !(have & (1u << i)))
            continue;
        struct iovec iov = {w->legs[i].base + CAIRN_FRAG_HDR_SIZE, w->legs[i].len - CAIRN_FRAG_HDR_SIZE};
        int rc = cairn_conn_stream_write(dst[i], &iov, 1);
        if (rc)
            return rc;
        bytes += iov.iov_len;
    }
    uint32_t missing = j->fix & ~have;
    if (missing) {
        cairn_ec_t *ec = ec_for(w, k, j->m);
        if (ec == NULL || popcount(have) < k)
            return CAIRN_EUNAVAIL;
        size_t need = (size_t)nf * j->block_size;
        if (w->rebuild_cap < need) {
            free(w->rebuild);
            w->rebuild = cairn_malloc(need);
            w->rebuild_cap = need;
        }
        for (uint32_t s = 0; s < n; s++) {
            size_t L = cairn_frag_block_len(&h, first + s);
            uint8_t *frags[CAIRN_MAX_FRAGS], present[CAIRN_MAX_FRAGS];
            for (int i = 0; i < nf; i++) {
                frags[i] = w->rebuild + (size_t)i * L;
                present[i] = (have >> i) & 1;
                if (present[i])
                    memcpy(frags[i], cairn_frag_read_block(&h, w->legs[i].base, first, s), L);
            }
            int rc = cairn_ec_reconstruct(ec, L, frags, present);
            for (int i = 0; rc == 0 && i < nf; i++) {
                if (!(missing & (1u << i)))
                    continue;
                uint8_t sum[CAIRN_FRAG_SUM_SIZE];
                cairn_le64_put(sum, cairn_frag_sum(frags[i], L));
                struct iovec iov[2] = {{frags[i], L}, {sum, sizeof sum}};
                rc = cairn_conn_stream_write(dst[i], iov, 2);
                bytes += L + sizeof sum;
            }
            if (rc)
                return rc;
        }
    }
    rate_take(w->mv, bytes);
    return 0;
}

/* Write every fixed fragment of j to its target: 0 when all are durable. */
static int write_targets(worker_t *w, mv_job_t *j)
{
    const int nf = j->k + j->m;
    cairn_frag_hdr_t h;
    job_hdr(j, &h);
    uint64_t fsize = cairn_frag_file_size(&h), nstripes = cairn_frag_nstripes(&h);
    uint32_t chunk = CHUNK_BYTES / j->block_size ? CHUNK_BYTES / j->block_size : 1;
    cairn_conn_t *dst[CAIRN_MAX_FRAGS] = {0};
    int rc = 0;
    for (int i = 0; i < nf && rc == 0; i++) {
        if (!(j->fix & (1u << i)))
            continue;
        if ((dst[i] = conn_of(w, j->to[i])) == NULL) {
            rc = CAIRN_EUNAVAIL;
            break;
        }
        uint8_t hdr[CAIRN_FRAG_HDR_SIZE];
        h.index = (uint8_t)i;
        cairn_frag_hdr_encode(&h, hdr);
        struct iovec iov = {hdr, sizeof hdr};
        if ((rc = cairn_conn_stream_begin(dst[i], CAIRN_OP_FRAG_PUT, 0, fsize)) == 0)
            rc = cairn_conn_stream_write(dst[i], &iov, 1);
    }
    uint32_t good = ((nf == 32) ? ~0u : ((1u << nf) - 1)) & ~j->bad; /* copies worth reading */
    uint32_t rebuilt = 0;
    for (uint64_t s = 0; s < nstripes && rc == 0; s += chunk) {
        uint32_t n = (uint32_t)(nstripes - s < chunk ? nstripes - s : chunk);
        /* the fixed fragments' own copies first, then as many others as
         * the rebuild needs */
        uint32_t have = read_legs(w, j, j->fix & good, s, n);
        good &= ~((j->fix & good) & ~have);
        while ((j->fix & ~have) && popcount(have) < j->k) {
            uint32_t cand = good & ~have & ~j->fix, pick = 0;
            for (int i = 0; i < nf && popcount(have) + popcount(pick) < j->k; i++)
                if (cand & (1u << i))
                    pick |= 1u << i;
            if (pick == 0)
                break;
            uint32_t got = read_legs(w, j, pick, s, n);
            good &= ~(pick & ~got);
            have |= got;
        }
        rebuilt |= j->fix & ~have;
        rc = write_chunk(w, j, dst, have, s, n);
    }
    for (int i = 0; i < nf && rc == 0; i++)
        if (dst[i])
            rc = cairn_conn_stream_finish(dst[i]);
    for (int i = 0; i < nf && rc == 0; i++) {
        int32_t status = 0;
        if (dst[i] && (rc = cairn_conn_recv(dst[i], &w->scratch, &status)) == 0)
            rc = status;
    }
    if (rc) {
        for (int i = 0; i < nf; i++)
            if (dst[i])
                cairn_conn_close(dst[i]); /* an unfinished stream leaves nothing behind */
        return rc;
    }
    stat_add(w->mv, &w->mv->st.frags_written, (uint64_t)popcount(j->fix));
    stat_add(w->mv, &w->mv->st.bytes_written, fsize * (uint64_t)popcount(j->fix));
    stat_add(w->mv, &w->mv->st.frags_rebuilt, (uint64_t)popcount(rebuilt));
    return 0;
}

/* Does record r still name node `node` for fragment `index` of oid? */
static int rec_holds(const cairn_obj_rec_t *r, const uint8_t oid[16], unsigned index, uint32_t node)
{
    if (r->nparts == 0)
        return !r->is_inline && memcmp(r->oid, oid, 16) == 0 && index < (unsigned)r->k + r->m &&
               r->nodes[index] == node;
    cairn_obj_part_t p;
    size_t off = 0;
    while (cairn_obj_part_next(r->parts, r->parts_len, &off, &p))
        if (memcmp(p.oid, oid, 16) == 0)
            return index < (unsigned)p.k + p.m && p.nodes[index] == node;
    return 0;
}

/* The record changed under us: remove the new copies it does not name. */
static void undo_copies(worker_t *w, const mv_job_t *j, uint32_t moved)
{
    cairn_obj_rec_t r;
    int rc = cairn_meta_obj_get(&w->meta, 0, j->bucket, (const char *)j->key, j->key_len, &w->scratch, &r);
    if (rc != 0 && rc != CAIRN_ENOTFOUND && rc != CAIRN_EBUCKET)
        return; /* unknown: leave them, gc decides later */
    for (int i = 0; i < j->k + j->m; i++)
        if (moved & (1u << i) && (rc != 0 || !rec_holds(&r, j->oid, (unsigned)i, j->to[i])))
            frag_delete(w, j->to[i], j->oid, (unsigned)i);
}

static void run_job(worker_t *w, mv_job_t *j)
{
    mover_t *mv = w->mv;
    int rc = write_targets(w, j);
    if (rc) {
        fprintf(stderr, "\ncairn-admin: %s/%.*s: %s (will be retried by the next run)\n", j->bucket,
                (int)j->key_len, (const char *)j->key, cairn_strerror(rc));
        stat_add(mv, &mv->st.jobs_failed, 1);
        return;
    }
    cairn_relocation_t moves[CAIRN_MAX_FRAGS];
    size_t nm = 0;
    uint32_t moved = 0;
    for (int i = 0; i < j->k + j->m; i++)
        if (j->fix & (1u << i) && j->to[i] != j->nodes[i]) {
            moves[nm++] = (cairn_relocation_t){(uint8_t)i, j->nodes[i], j->to[i]};
            moved |= 1u << i;
        }
    if (nm > 0) {
        rc = cairn_meta_obj_relocate(&w->meta, 0, j->bucket, j->key, j->key_len, j->oid, moves, nm);
        if (rc == CAIRN_ECONFLICT || rc == CAIRN_ENOTFOUND || rc == CAIRN_EBUCKET) {
            undo_copies(w, j, moved);
            stat_add(mv, &mv->st.jobs_conflict, 1);
            stat_add(mv, &mv->st.jobs_done, 1);
            return;
        }
        if (rc) {
            fprintf(stderr, "\ncairn-admin: %s/%.*s: relocation: %s\n", j->bucket, (int)j->key_len,
                    (const char *)j->key, cairn_strerror(rc));
            stat_add(mv, &mv->st.jobs_failed, 1);
            return;
        }
        for (size_t i = 0; i < nm; i++)
            if (!(j->bad & (1u << moves[i].index)))
                frag_delete(w, moves[i].from, j->oid, moves[i].index);
    }
    stat_add(mv, &mv->st.jobs_done, 1);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    mover_t *mv = w->mv;
    for (;;) {
        if (stop_flag)
            break;
        pthread_mutex_lock(&mv->lock);
        size_t i = mv->next < mv->njobs ? mv->next++ : (size_t)-1;
        pthread_mutex_unlock(&mv->lock);
        if (i == (size_t)-1)
            break;
        run_job(w, &mv->jobs[i]);
    }
    return NULL;
}

size_t mover_run(mover_t *mv, mv_job_t *jobs, size_t n)
{
    mv->jobs = jobs;
    mv->njobs = n;
    mv->next = 0;
    int started = 0;
    for (int i = 0; i < mv->nworkers && (size_t)i < n; i++)
        started += pthread_create(&mv->w[i].tid, NULL, worker_main, &mv->w[i]) == 0;
    if (started == 0 && n > 0)
        worker_main(&mv->w[0]);
    for (int i = 0; i < started; i++)
        pthread_join(mv->w[i].tid, NULL);
    return n - (mv->next < n ? mv->next : n);
}

/* ---- inventory ---- */

static int inv_cmp(const void *a, const void *b)
{
    const inv_ent_t *x = a, *y = b;
    int c = memcmp(x->oid, y->oid, 16);
    if (c)
        return c;
    if (x->index != y->index)
        return x->index < y->index ? -1 : 1;
    return x->node < y->node ? -1 : x->node > y->node;
}

static int list_node(admin_t *a, const cairn_map_node_t *node, inventory_t *inv)
{
    cairn_conn_t c;
    cairn_buf_t resp;
    cairn_conn_init(&c, node->addr, a->key, a->cfg.io_timeout_ms);
    cairn_buf_init(&resp);
    uint8_t body[16 + 1 + 4] = {0}; /* (zero oid, index 0): before every real fragment */
    int rc = 0, more = 1;
    while (rc == 0 && more) {
        cairn_le32_put(body + 17, LIST_PAGE);
        struct iovec iov = {body, sizeof body};
        int32_t status = 0;
        if ((rc = cairn_conn_call(&c, CAIRN_OP_FRAG_LIST, 0, &iov, 1, &resp, &status)) == 0)
            rc = status;
        if (rc)
            break;
        cairn_dec_t d;
        cairn_dec_init(&d, resp.base, resp.len);
        uint32_t n = cairn_dec_u32(&d);
        if (d.err || n > cairn_dec_left(&d) / 25) {
            rc = CAIRN_EPROTO;
            break;
        }
        for (uint32_t i = 0; i < n; i++) {
            uint8_t oid[16];
            cairn_dec_raw(&d, oid, 16);
            uint8_t index = cairn_dec_u8(&d);
            uint64_t size = cairn_dec_u64(&d);
            inventory_add(inv, oid, index, node->id, size);
            memcpy(body, oid, 16);
            body[16] = index;
        }
        more = cairn_dec_u8(&d);
        if (d.err || cairn_dec_left(&d) != 0)
            rc = CAIRN_EPROTO;
    }
    cairn_conn_dispose(&c);
    cairn_buf_dispose(&resp);
    return rc;
}

int inventory_load(admin_t *a, const cairn_map_t *map, inventory_t *inv)
{
    memset(inv, 0, sizeof *inv);
    for (size_t i = 0; i < map->n; i++) {
        const cairn_map_node_t *node = &map->nodes[i];
        if (node->state == CAIRN_NODE_OUT)
            continue;
        size_t before = inv->n;
        int rc = list_node(a, node, inv);
        if (rc) {
            inv->n = before;
            inv->unreachable[inv->nunreachable++] = node->id;
            fprintf(stderr, "cairn-admin: node %u (%s) cannot be listed: %s\n", node->id, node->addr,
                    cairn_strerror(rc));
        }
    }
    inventory_sort(inv);
    return 0;
}

void inventory_add(inventory_t *inv, const uint8_t oid[16], unsigned index, uint32_t node, uint64_t size)
{
    if (inv->n == inv->cap) {
        inv->cap = inv->cap ? inv->cap * 2 : 4096;
        inv->v = cairn_realloc(inv->v, inv->cap * sizeof *inv->v);
    }
    inv_ent_t *e = &inv->v[inv->n++];
    memcpy(e->oid, oid, 16);
    e->index = (uint8_t)index;
    e->node = node;
    e->size = size;
}

void inventory_sort(inventory_t *inv)
{
    if (inv->n > 1)
        qsort(inv->v, inv->n, sizeof *inv->v, inv_cmp);
}

static int inv_cmp_frag(const void *a, const void *b)
{
    const inv_ent_t *x = a, *y = b;
    int c = memcmp(x->oid, y->oid, 16);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

int inventory_has_any(const inventory_t *inv, const uint8_t oid[16], unsigned index)
{
    inv_ent_t key = {.index = (uint8_t)index};
    memcpy(key.oid, oid, 16);
    return inv->n > 0 && bsearch(&key, inv->v, inv->n, sizeof key, inv_cmp_frag) != NULL;
}

void inventory_dispose(inventory_t *inv)
{
    free(inv->v);
    memset(inv, 0, sizeof *inv);
}

int inventory_has(const inventory_t *inv, const uint8_t oid[16], unsigned index, uint32_t node)
{
    inv_ent_t key = {.index = (uint8_t)index, .node = node};
    memcpy(key.oid, oid, 16);
    return inv->n > 0 && bsearch(&key, inv->v, inv->n, sizeof key, inv_cmp) != NULL;
}

int inventory_node_unreachable(const inventory_t *inv, uint32_t node)
{
    for (size_t i = 0; i < inv->nunreachable; i++)
        if (inv->unreachable[i] == node)
            return 1;
    return 0;
}

/* ---- job lock ---- */

static void lock_value(cairn_buf_t *b, const char *what)
{
    char host[128] = "";
    gethostname(host, sizeof host - 1);
    cairn_buf_put_u64(b, (uint64_t)cairn_wall_ms());
    cairn_buf_put_u32(b, (uint32_t)getpid());
    cairn_buf_put_str(b, host);
    cairn_buf_put_str(b, what);
}

static char lock_what[32];

int admin_lock(cairn_meta_client_t *mc, const char *what)
{
    cairn_buf_t cur;
    cairn_buf_init(&cur);
    int rc = cairn_meta_kv_get(mc, 0, LOCK_NAME, &cur);
    if (rc == 0) {
        cairn_dec_t d;
        const uint8_t *host, *job;
        size_t hl, jl;
        cairn_dec_init(&d, cur.base, cur.len);
        int64_t beat = (int64_t)cairn_dec_u64(&d);
        uint32_t pid = cairn_dec_u32(&d);
        cairn_dec_bytes(&d, &host, &hl);
        cairn_dec_bytes(&d, &job, &jl);
        char me[128] = "";
        gethostname(me, sizeof me - 1);
        int dead_here = !d.err && hl == strlen(me) && memcmp(host, me, hl) == 0 && kill((pid_t)pid, 0) != 0 &&
                        errno == ESRCH; /* its process is gone: no need to wait */
        if (!d.err && !dead_here && cairn_wall_ms() - beat < LOCK_STALE_MS) {
            fprintf(stderr,
                    "cairn-admin: a %.*s is running (pid %u on %.*s); wait for it, or stop it (a stopped job "
                    "frees the lock within %d s)\n",
                    (int)jl, (const char *)job, pid, (int)hl, (const char *)host, LOCK_STALE_MS / 1000);
            cairn_buf_dispose(&cur);
            return CAIRN_EEXIST;
        }
    } else if (rc != CAIRN_ENOTFOUND) {
        fprintf(stderr, "cairn-admin: metadata tier: %s\n", cairn_strerror(rc));
        cairn_buf_dispose(&cur);
        return rc;
    }
    cairn_buf_dispose(&cur);
    snprintf(lock_what, sizeof lock_what, "%s", what);
    admin_lock_beat(mc);
    return 0;
}

void admin_lock_beat(cairn_meta_client_t *mc)
{
    cairn_buf_t v;
    cairn_buf_init(&v);
    lock_value(&v, lock_what);
    cairn_meta_kv_put(mc, 0, LOCK_NAME, v.base, v.len);
    cairn_buf_dispose(&v);
}

void admin_unlock(cairn_meta_client_t *mc) { cairn_meta_kv_put(mc, 0, LOCK_NAME, NULL, 0); }

/* ---- progress ---- */

static void fmt_eta(char *out, size_t n, double secs)
{
    if (secs < 0 || secs > 99 * 3600)
        snprintf(out, n, "--:--");
    else
        snprintf(out, n, "%d:%02d:%02d", (int)secs / 3600, (int)secs / 60 % 60, (int)secs % 60);
}

int progress_due(int64_t *last_line, int final, int *tty)
{
    *tty = isatty(STDERR_FILENO);
    int64_t now = cairn_now_ms();
    if (!final && !*tty && now - *last_line < 10000)
        return 0;
    *last_line = now;
    return 1;
}

void progress_show(const char *what, uint64_t done, uint64_t total, uint64_t bytes, uint64_t bytes_total,
                   uint64_t run_bytes, int64_t run_started_ms, int final)
{
    static int64_t last_line;
    int tty;
    if (!progress_due(&last_line, final, &tty))
        return;
    int64_t now = last_line;
    double secs = (double)(now - run_started_ms) / 1000.0, rate = secs > 0 ? (double)run_bytes / secs : 0;
    double frac = total ? (double)done / (double)total : 1.0;
    char eta[32];
    fmt_eta(eta, sizeof eta, rate > 0 && bytes_total > bytes ? (double)(bytes_total - bytes) / rate : 0);
    if (tty) {
        char bar[31];
        int filled = (int)(frac * 30);
        for (int i = 0; i < 30; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r%s [%s] %3.0f%% %llu/%llu fragments %.1f/%.1f MiB %.1f MB/s ETA %s ", what, bar, frac * 100,
               (unsigned long long)done, (unsigned long long)total, (double)bytes / 1048576.0,
               (double)bytes_total / 1048576.0, rate / 1e6, eta);
        if (final)
            fprintf(stderr, "\n");
    } else {
        fprintf(stderr, "%s: %llu/%llu fragments, %.1f/%.1f MiB, %.1f MB/s, ETA %s\n", what, (unsigned long long)done,
               (unsigned long long)total, (double)bytes / 1048576.0, (double)bytes_total / 1048576.0, rate / 1e6,
               eta);
    }
    fflush(stderr);
}
