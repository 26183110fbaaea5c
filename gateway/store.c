/*
 * store.c — the erasure-coded data path of the gateway (runs on workers).
 *
 * PUT: the request body (already in memory or in h2o's spill file) is cut
 * into stripes of k*B bytes. Data blocks are pointers into the body, so a
 * full stripe is never copied; only the last, partial stripe is copied into
 * a zero-padded buffer. Each stripe's parity is computed with ISA-L, each
 * block gets its XXH3, and block i goes to fragment i's node over one
 * streamed FRAG_PUT per node. The node acknowledges after fsync + rename +
 * directory fsync. A PUT needs k+1 acknowledgements (k when m == 0): one lost
 * node more than the bare minimum may still be read back.
 *
 * GET: a chunk of stripes is requested from the k data fragments at once
 * (send to all, then collect). Every block's checksum is verified here even
 * though the node checked it too: the bytes crossed a network. A fragment
 * that is missing, late or wrong is replaced by parity fragments and the
 * stripe is rebuilt with ISA-L. The client gets correct bytes or an error.
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/frag.h"
#include "cairn/log.h"
#include "cairn/node_client.h"
#include "gw.h"
#include "s3_ext.h"

int gw_worker_init(gw_worker_t *w, gw_t *gw)
{
    const cairn_cfg_t *cfg = &gw->cfg;
    size_t nfrag = (size_t)cfg->k + cfg->m;
    memset(w, 0, sizeof *w);
    w->gw = gw;
    cairn_meta_client_init(&w->meta, cfg->meta_addr, gw->key, cfg->io_timeout_ms);
    cairn_buf_init(&w->scratch);
    cairn_buf_init(&w->probe);
    w->leg_bufs = cairn_calloc(CAIRN_MAX_FRAGS, sizeof *w->leg_bufs);
    w->parity = cairn_malloc((size_t)(cfg->m ? cfg->m : 1) * cfg->block_size);
    w->pad = cairn_malloc((size_t)cfg->k * cfg->block_size);
    w->rebuild = cairn_malloc(nfrag * cfg->block_size);
    w->place_scratch = cairn_malloc(cairn_map_scratch_size());
    return 0;
}

void gw_worker_dispose(gw_worker_t *w)
{
    cairn_meta_client_dispose(&w->meta);
    for (size_t i = 0; i < w->nconns; i++)
        cairn_conn_dispose(&w->nodes[i]);
    for (int i = 0; i < CAIRN_MAX_FRAGS; i++)
        cairn_buf_dispose(&w->leg_bufs[i]);
    free(w->leg_bufs);
    cairn_buf_dispose(&w->scratch);
    cairn_buf_dispose(&w->probe);
    free(w->parity);
    free(w->pad);
    free(w->rebuild);
    free(w->place_scratch);
}

#define SUSPECT_MS 10000       /* how long a failed node is avoided */
#define PROBE_MS 1000          /* a suspect node is probed at most this often (all workers together) */
#define PROBE_TIMEOUT_MS 300   /* a probe slower than this leaves the node suspect */
#define READ_TIMEOUT_MS 2000    /* a fragment read slower than this is read from parity instead */

/* The slot of the node with stable id `id` (map.c), or -1 when it may not
 * be read (out, or gone from the map). */
static int node_index(gw_worker_t *w, uint32_t id) { return gw_map_slot(w->gw, id); }

static int is_suspect(gw_worker_t *w, int idx)
{
    return idx < 0 || __atomic_load_n(&w->gw->suspect_until[idx], __ATOMIC_RELAXED) > cairn_now_ms();
}

/* Transport trouble (refused, reset, timeout): avoid the node for a while.
 * Data-level answers (not found, corrupt) say nothing about the node's health. */
static void note_failure(gw_worker_t *w, int idx, int err)
{
    if (idx >= 0 && (err == CAIRN_ETIMEOUT || (err < 0 && err > -CAIRN_EBASE) || err == CAIRN_EPROTO))
        __atomic_store_n(&w->gw->suspect_until[idx], cairn_now_ms() + SUSPECT_MS, __ATOMIC_RELAXED);
}

/* Worth sending a write or delete to? Healthy nodes are; a suspect node is
 * probed with a PING (one probe per PROBE_MS, bounded by PROBE_TIMEOUT_MS)
 * so a restarted node is used again at once while a dead or stalled one
 * costs a short probe now and then instead of an I/O timeout per request. */
static int node_usable(gw_worker_t *w, int idx)
{
    if (idx < 0)
        return 0;
    if (!is_suspect(w, idx))
        return 1;
    int64_t now = cairn_now_ms(), last = __atomic_load_n(&w->gw->probe_at[idx], __ATOMIC_RELAXED);
    if (now - last < PROBE_MS ||
        !__atomic_compare_exchange_n(&w->gw->probe_at[idx], &last, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return 0;
    cairn_conn_t *c = gw_conn(w, idx);
    int saved = c->timeout_ms;
    int32_t status = 0;
    c->timeout_ms = PROBE_TIMEOUT_MS;
    int rc = cairn_conn_call(c, CAIRN_OP_PING, 0, NULL, 0, &w->probe, &status);
    c->timeout_ms = saved;
    if (rc == 0 && status == 0) {
        __atomic_store_n(&w->gw->suspect_until[idx], 0, __ATOMIC_RELAXED);
        return 1;
    }
    note_failure(w, idx, rc ? rc : CAIRN_EUNAVAIL);
    return 0;
}

int gw_store_inline(gw_worker_t *w, gw_job_t *job, int want_sha256, gw_put_result_t *out, cairn_buf_t *copy)
{
    if (gw_job_body_acquire(job) != 0)
        return CAIRN_EUNAVAIL;
    cairn_buf_append(copy, job->body.base, job->body.len);
    gw_job_body_release(job);
    memset(out, 0, sizeof *out);
    RAND_bytes(out->oid, sizeof out->oid); /* names the version (garbage list, conditional writes) */
    EVP_Digest(copy->base, copy->len, out->md5, NULL, EVP_md5(), NULL);
    out->have_sha256 = want_sha256;
    if (want_sha256)
        EVP_Digest(copy->base, copy->len, out->sha256, NULL, EVP_sha256(), NULL);
    return 0;
}

int gw_store_put(gw_worker_t *w, gw_job_t *job, int want_sha256, gw_put_result_t *out)
{
    gw_t *gw = w->gw;
    const int k = gw->cfg.k, m = gw->cfg.m, n = k + m;
    const uint32_t B = gw->cfg.block_size;
    int pick[CAIRN_MAX_FRAGS];
    cairn_conn_t *legs[CAIRN_MAX_FRAGS];
    int ok[CAIRN_MAX_FRAGS];
    int rc = 0;

    RAND_bytes(out->oid, sizeof out->oid);
    if (gw_map_pick(w, out->oid, n, pick, out->nodes) < n)
        return CAIRN_EUNAVAIL;

    cairn_frag_hdr_t fh = {.k = (uint8_t)k, .m = (uint8_t)m, .block_size = B, .object_size = job->body.len};
    memcpy(fh.oid, out->oid, 16);
    uint64_t fsize = cairn_frag_file_size(&fh);
    /* Suspect nodes are skipped only while enough others remain: with fewer
     * usable nodes than a PUT needs, every picked node is tried in full. */
    const int need = m > 0 ? k + 1 : k;
    int usable[CAIRN_MAX_FRAGS], nusable = 0;
    for (int i = 0; i < n; i++)
        nusable += usable[i] = node_usable(w, pick[i]);
    int alive = 0;
    for (int i = 0; i < n; i++) {
        uint8_t hdr[CAIRN_FRAG_HDR_SIZE];
        legs[i] = gw_conn(w, pick[i]);
        fh.index = (uint8_t)i;
        cairn_frag_hdr_encode(&fh, hdr);
        struct iovec iov = {hdr, sizeof hdr};
        int rc1 = usable[i] || nusable < need ? 0 : CAIRN_EUNAVAIL;
        if (rc1 == 0 && (rc1 = cairn_conn_stream_begin(legs[i], CAIRN_OP_FRAG_PUT, job->req_id, fsize)) == 0)
            rc1 = cairn_conn_stream_write(legs[i], &iov, 1);
        ok[i] = rc1 == 0;
        if (!ok[i]) {
            note_failure(w, pick[i], rc1);
            cairn_log(CAIRN_LOG_WARN, job->req_id, "fragment %d: node %u (%s) unavailable: %s", i, out->nodes[i],
                      legs[i]->addr, cairn_strerror(rc1));
        }
        alive += ok[i];
    }

    EVP_MD_CTX *md5 = EVP_MD_CTX_new(), *sha = want_sha256 ? EVP_MD_CTX_new() : NULL;
    EVP_DigestInit_ex(md5, EVP_md5(), NULL);
    if (sha)
        EVP_DigestInit_ex(sha, EVP_sha256(), NULL);

    uint64_t nstripes = cairn_frag_nstripes(&fh);
    for (uint64_t s = 0; s < nstripes && alive >= need; s++) {
        if (gw_job_body_acquire(job) != 0) {
            rc = CAIRN_EUNAVAIL;
            break;
        }
        const uint8_t *src = (const uint8_t *)job->body.base + s * (uint64_t)k * B;
        uint64_t sbytes = cairn_frag_stripe_bytes(&fh, s);
        size_t L = cairn_frag_block_len(&fh, s);
        uint8_t *data[CAIRN_MAX_FRAGS], *parity[CAIRN_MAX_FRAGS];
        EVP_DigestUpdate(md5, src, sbytes);
        if (sha)
            EVP_DigestUpdate(sha, src, sbytes);
        if (sbytes == (uint64_t)k * L) {
            for (int i = 0; i < k; i++)
                data[i] = (uint8_t *)src + (size_t)i * L;
        } else {
            memcpy(w->pad, src, sbytes);
            memset(w->pad + sbytes, 0, (size_t)k * L - sbytes);
            for (int i = 0; i < k; i++)
                data[i] = w->pad + (size_t)i * L;
        }
        for (int i = 0; i < m; i++)
            parity[i] = w->parity + (size_t)i * L;
        cairn_ec_encode(gw->ec, L, data, parity);
        for (int i = 0; i < n; i++) {
            if (!ok[i])
                continue;
            uint8_t *blk = i < k ? data[i] : parity[i - k];
            uint8_t sum[8];
            cairn_le64_put(sum, cairn_frag_sum(blk, L));
            struct iovec iov[2] = {{blk, L}, {sum, sizeof sum}};
            int wrc = cairn_conn_stream_write(legs[i], iov, 2);
            if (wrc != 0) {
                note_failure(w, (int)pick[i], wrc);
                cairn_log(CAIRN_LOG_WARN, job->req_id, "fragment %d: write to node %u failed: %s", i, out->nodes[i],
                          cairn_strerror(wrc));
                ok[i] = 0;
                alive--;
            }
        }
        gw_job_body_release(job);
    }
    EVP_DigestFinal_ex(md5, out->md5, NULL);
    EVP_MD_CTX_free(md5);
    out->have_sha256 = sha != NULL;
    if (sha) {
        EVP_DigestFinal_ex(sha, out->sha256, NULL);
        EVP_MD_CTX_free(sha);
    }

    /* Finish every stream before awaiting any answer: the nodes fsync in
     * parallel, and a stalled node delays the others' answers by nothing. */
    int acked = 0, finished[CAIRN_MAX_FRAGS] = {0};
    for (int i = 0; i < n; i++) {
        if (!ok[i])
            continue;
        int frc = rc == 0 && alive >= need ? cairn_conn_stream_finish(legs[i]) : CAIRN_EUNAVAIL;
        if (frc == 0) {
            finished[i] = 1;
        } else {
            if (rc == 0 && alive >= need) {
                note_failure(w, (int)pick[i], frc);
                cairn_log(CAIRN_LOG_WARN, job->req_id, "fragment %d: node %u: %s", i, out->nodes[i],
                          cairn_strerror(frc));
            }
            cairn_conn_close(legs[i]); /* abandons the streamed put: the node drops its temp file */
            ok[i] = 0;
        }
    }
    for (int i = 0; i < n; i++) {
        if (!finished[i])
            continue;
        int32_t status = 0;
        int erc = cairn_conn_recv(legs[i], &w->scratch, &status);
        if (erc == 0 && status == 0) {
            acked++;
            continue;
        }
        note_failure(w, (int)pick[i], erc);
        cairn_log(CAIRN_LOG_WARN, job->req_id, "fragment %d: node %u refused: %s", i, out->nodes[i],
                  cairn_strerror(erc ? erc : status));
        ok[i] = 0;
    }
    if (rc == 0 && acked < need) {
        cairn_log(CAIRN_LOG_ERROR, job->req_id, "put: only %d of %d fragments durable, need %d", acked, n, need);
        rc = CAIRN_EUNAVAIL;
    }
    if (rc != 0) {
        cairn_obj_rec_t rec = {.k = (uint8_t)k, .m = (uint8_t)m};
        memcpy(rec.oid, out->oid, 16);
        memcpy(rec.nodes, out->nodes, sizeof rec.nodes);
        gw_store_delete(w, job->req_id, &rec);
    } else if (acked < n) {
        cairn_log(CAIRN_LOG_WARN, job->req_id, "put: %d of %d fragments durable (object degraded)", acked, n);
    }
    return rc;
}

int gw_store_read(gw_worker_t *w, uint64_t req_id, const cairn_obj_rec_t *rec, uint64_t first, uint32_t n,
                  uint8_t *out)
{
    const int k = rec->k, m = rec->m, nf = k + m;
    cairn_frag_hdr_t fh = {.k = rec->k, .m = rec->m, .block_size = rec->block_size, .object_size = rec->size};
    memcpy(fh.oid, rec->oid, 16);
    uint8_t present[CAIRN_MAX_FRAGS] = {0};
    cairn_conn_t *conns[CAIRN_MAX_FRAGS];
    int idx[CAIRN_MAX_FRAGS], order[CAIRN_MAX_FRAGS], norder = 0;
    uint8_t body[CAIRN_NODE_FRAG_REQ_MAX];
    int have = 0;

    /* Ask healthy data fragments first (a healthy GET decodes nothing), then
     * healthy parity, then suspect nodes as a last resort. */
    for (int i = 0; i < nf; i++) {
        idx[i] = node_index(w, rec->nodes[i]);
        conns[i] = gw_conn(w, idx[i]);
    }
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < nf; i++)
            if (is_suspect(w, idx[i]) == pass)
                order[norder++] = i;
    int next = 0;
    while (have < k) {
        int batch[CAIRN_MAX_FRAGS], nb = 0;
        while (next < norder && have + nb < k) {
            int i = order[next++];
            size_t len = cairn_node_frag_req_encode(body, CAIRN_OP_FRAG_GET, rec->oid, (unsigned)i, first, n);
            struct iovec iov = {body, len};
            int src = conns[i] ? cairn_conn_send(conns[i], CAIRN_OP_FRAG_GET, req_id, &iov, 1) : CAIRN_EUNAVAIL;
            if (src == 0) {
                batch[nb++] = i;
            } else {
                note_failure(w, idx[i], src);
                cairn_log(CAIRN_LOG_WARN, req_id, "fragment %d: node %u unreachable", i, rec->nodes[i]);
            }
        }
        if (nb == 0 && next >= norder)
            break;
        for (int j = 0; j < nb; j++) {
            int i = batch[j];
            int32_t status = 0;
            int saved = conns[i]->timeout_ms;
            if (conns[i]->timeout_ms > READ_TIMEOUT_MS)
                conns[i]->timeout_ms = READ_TIMEOUT_MS;
            int rc = cairn_conn_recv(conns[i], &w->leg_bufs[i], &status);
            conns[i]->timeout_ms = saved;
            if (rc != 0)
                note_failure(w, idx[i], rc);
            else if (status != 0)
                rc = status;
            else
                rc = cairn_frag_read_check(&fh, (unsigned)i, first, n, w->leg_bufs[i].base, w->leg_bufs[i].len);
            if (rc == 0) {
                present[i] = 1;
                have++;
            } else {
                cairn_log(CAIRN_LOG_WARN, req_id, "fragment %d on node %u: %s; reading parity", i, rec->nodes[i],
                          cairn_strerror(rc));
            }
        }
    }
    if (have < k) {
        cairn_log(CAIRN_LOG_ERROR, req_id, "read: only %d of %d fragments readable, need %d", have, nf, k);
        return CAIRN_EUNAVAIL;
    }

    int degraded = 0;
    for (int i = 0; i < k; i++)
        degraded |= !present[i];
    uint64_t opos = 0;
    for (uint32_t s = 0; s < n; s++) {
        size_t L = cairn_frag_block_len(&fh, first + s);
        uint64_t sbytes = cairn_frag_stripe_bytes(&fh, first + s);
        const uint8_t *blocks[CAIRN_MAX_FRAGS];
        if (degraded) {
            uint8_t *frags[CAIRN_MAX_FRAGS];
            for (int i = 0; i < nf; i++) {
                frags[i] = w->rebuild + (size_t)i * L;
                if (present[i])
                    memcpy(frags[i], cairn_frag_read_block(&fh, w->leg_bufs[i].base, first, s), L);
            }
            int rc = cairn_ec_reconstruct(w->gw->ec, L, frags, present);
            if (rc != 0)
                return rc;
            for (int i = 0; i < k; i++)
                blocks[i] = frags[i];
        } else {
            for (int i = 0; i < k; i++)
                blocks[i] = cairn_frag_read_block(&fh, w->leg_bufs[i].base, first, s);
        }
        uint64_t left = sbytes;
        for (int i = 0; i < k && left > 0; i++) {
            size_t c = left < L ? (size_t)left : L;
            memcpy(out + opos, blocks[i], c);
            opos += c;
            left -= c;
        }
    }
    return 0;
}

int gw_store_delete(gw_worker_t *w, uint64_t req_id, const cairn_obj_rec_t *rec)
{
    if (rec->nparts > 0) /* a multipart object owns no fragments, its parts do (s3_multipart.c) */
        return gw_store_delete_parts(w, req_id, rec);
    int nf = rec->k + rec->m, failed = 0;
    uint8_t body[CAIRN_NODE_FRAG_REQ_MAX];
    cairn_conn_t *sent[CAIRN_MAX_FRAGS] = {0};
    int idx[CAIRN_MAX_FRAGS];
    for (int i = 0; i < nf; i++) {
        idx[i] = node_index(w, rec->nodes[i]);
        cairn_conn_t *c = node_usable(w, idx[i]) ? gw_conn(w, idx[i]) : NULL;
        size_t len = cairn_node_frag_req_encode(body, CAIRN_OP_FRAG_DELETE, rec->oid, (unsigned)i, 0, 0);
        struct iovec iov = {body, len};
        int rc = c ? cairn_conn_send(c, CAIRN_OP_FRAG_DELETE, req_id, &iov, 1) : CAIRN_EUNAVAIL;
        if (rc == 0)
            sent[i] = c;
        else
            failed++, note_failure(w, idx[i], rc);
    }
    for (int i = 0; i < nf; i++) {
        int32_t status = 0;
        if (!sent[i])
            continue;
        int rc = cairn_conn_recv(sent[i], &w->scratch, &status);
        if (rc != 0)
            note_failure(w, idx[i], rc);
        if (rc != 0 || (status != 0 && status != CAIRN_ENOTFOUND))
            failed++;
    }
    if (failed)
        cairn_log(CAIRN_LOG_WARN, req_id, "delete: %d fragment(s) not removed; left for garbage collection", failed);
    return failed ? CAIRN_EUNAVAIL : 0;
}
