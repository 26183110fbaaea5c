/*
 * gw.h — the gateway's shared types.
 *
 * Threads: N h2o event-loop threads accept S3 requests; a pool of worker
 * threads does everything that blocks (metadata calls, fragment I/O, hashing
 * of request bodies). A request becomes a gw_job_t: the loop thread parses
 * it and hands it to the pool; a worker runs the job's step and posts the job
 * back to its loop thread, which answers the client. A GET is a job that goes
 * round several times, one chunk of stripes per round, with two chunk
 * buffers: while h2o writes one to the client, a worker reads the next into
 * the other. Backpressure: a read starts only when a buffer is free, so at
 * most two chunks per GET are in memory and a slow client slows the reads.
 *
 * Only the loop thread touches job->req. A worker touches the request body
 * (borrowed from h2o) only while it holds job->body_busy; if the request dies
 * first, the loop thread marks the job cancelled and waits for the worker to
 * let go of the body (at most one stripe's work).
 */
#ifndef CAIRN_GW_H
#define CAIRN_GW_H

#include <pthread.h>
#include <stdint.h>

#include <h2o.h>

#include "cairn/buf.h"
#include "cairn/cfg.h"
#include "cairn/ec.h"
#include "cairn/meta.h"
#include "cairn/meta_map.h"
#include "cairn/place.h"
#include "cairn/sigv4.h"
#include "cairn/wire.h"

typedef struct gw_s gw_t;
typedef struct gw_thread_s gw_thread_t;
typedef struct gw_worker_s gw_worker_t;
typedef struct gw_job_s gw_job_t;

/* S3 operations the gateway knows. */
typedef enum {
    S3_OP_NONE = 0,
    S3_OP_LIST_BUCKETS,
    S3_OP_CREATE_BUCKET,
    S3_OP_DELETE_BUCKET,
    S3_OP_HEAD_BUCKET,
    S3_OP_LIST_OBJECTS,    /* v1 */
    S3_OP_LIST_OBJECTS_V2,
    S3_OP_GET_BUCKET_LOCATION,
    S3_OP_PUT_OBJECT,
    S3_OP_GET_OBJECT,
    S3_OP_HEAD_OBJECT,
    S3_OP_DELETE_OBJECT,
    /* s3_ext.h */
    S3_OP_CREATE_MPU,
    S3_OP_UPLOAD_PART,
    S3_OP_UPLOAD_PART_COPY,
    S3_OP_COMPLETE_MPU,
    S3_OP_ABORT_MPU,
    S3_OP_LIST_PARTS,
    S3_OP_LIST_MPUS,
    S3_OP_COPY_OBJECT,
    S3_OP_DELETE_OBJECTS,
    S3_OP_GET_BUCKET_VERSIONING,
    S3_OP_LIST_OBJECT_VERSIONS,
    S3_OP_GET_ACL,
    S3_OP_PUT_ACL,
    S3_OP_GET_OBJECT_TAGGING,
    S3_OP_BUCKET_CONFIG,
} s3_op_t;

struct gw_s {
    cairn_cfg_t cfg;
    cairn_wire_key_t *key;
    cairn_ec_t *ec;
    /* The cluster map (map.c): the newest one fetched from the metadata
     * tier, under map_lock. Each node the gateway has ever seen owns a
     * slot, for the gateway's life: slots[] only grows (nslots, release
     * and acquire), a slot's id and address never change, its state
     * follows the map (GW_SLOT_GONE once removed). */
    pthread_rwlock_t map_lock;
    cairn_map_t map;
    struct {
        uint32_t id;
        char addr[CAIRN_MAP_ADDR_MAX];
        int state; /* CAIRN_NODE_* or GW_SLOT_GONE; atomic */
    } slots[CAIRN_MAP_MAX_NODES];
    size_t nslots;
    /* Per slot: until when (cairn_now_ms) the node is suspect after a
     * transport failure or timeout. Reads go to healthy nodes first, writes
     * skip suspect nodes, so one dead or stalled node costs one timeout per
     * SUSPECT_MS, not one per request. Written by any worker: atomics. */
    int64_t suspect_until[CAIRN_MAP_MAX_NODES];
    int64_t probe_at[CAIRN_MAP_MAX_NODES]; /* last health probe of a suspect node */
    h2o_globalconf_t h2o;
    struct gw_metrics_s *metrics;  /* gw_metrics.h */
    /* worker queue */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    gw_job_t *head, *tail;
    int stopping;
    /* limits ([gateway] max_connections, max_requests): atomics */
    int nconns;     /* open client connections (main.c) */
    int inflight;   /* requests between gw_http_on_req and their job's end (http.c) */
};

struct gw_thread_s {
    gw_t *gw;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_multithread_receiver_t done_receiver;
    pthread_t tid;
};

/* A worker's private connections and scratch; see store.c. */
struct gw_worker_s {
    gw_t *gw;
    pthread_t tid;
    cairn_meta_client_t meta;  /* the metadata replicas (follows the leader) */
    cairn_conn_t nodes[CAIRN_MAP_MAX_NODES]; /* one per slot, set up on first use */
    size_t nconns;
    cairn_buf_t scratch;        /* metadata responses */
    cairn_buf_t probe;          /* answers to health probes */
    cairn_buf_t *leg_bufs;      /* one response buffer per fragment index */
    uint8_t *parity;            /* m * block_size */
    uint8_t *pad;               /* k * block_size: the last, partial stripe */
    uint8_t *rebuild;           /* (k+m) * block_size: decode workspace */
    void *place_scratch;
    /* credential cache */
    struct { char access_key[128]; char secret[128]; char owner[128]; int64_t expires_ms; } creds[8];
    unsigned creds_next;
    /* bucket owner cache (s3_auth.c) */
    struct { char bucket[CAIRN_MAX_BUCKET_LEN + 1]; char owner[128]; int64_t expires_ms; } owners[16];
    unsigned owners_next;
};

typedef void (*gw_step_fn)(gw_worker_t *w, gw_job_t *job);
typedef void (*gw_done_fn)(gw_job_t *job);

struct gw_job_s {
    h2o_multithread_message_t msg; /* first: the posted-back message */
    gw_job_t *next;                /* worker queue link */
    gw_thread_t *thread;
    h2o_req_t *req;                /* loop thread only; NULL once the request is gone */
    gw_step_fn step;               /* runs on a worker */
    gw_done_fn done;               /* runs on the loop thread after step */
    int in_worker;                 /* loop thread only */

    pthread_mutex_t lock;
    pthread_cond_t cond;
    int body_busy, cancelled;

    uint64_t req_id;
    char req_id_hex[17];
    int64_t start_ms;
    int64_t start_ns;              /* gw_metrics.h: request timing and accounting */
    int metered;
    s3_op_t op;
    int is_head;
    char method[8];
    char bucket[CAIRN_MAX_BUCKET_LEN + 1];
    char *key; size_t key_len;                 /* decoded, owned */
    char *path; size_t path_len;               /* raw path (no query), owned */
    char *query; size_t query_len;             /* raw query, owned */
    cairn_sigv4_header_t *headers; size_t nheaders; /* copies, owned (hdr_store) */
    cairn_buf_t hdr_store;
    h2o_iovec_t body;                          /* borrowed from req->entity */
    char owner[128];                           /* authenticated user */

    /* response */
    int status;
    const char *err_code;       /* S3 error code, when status >= 300 */
    char *err_msg;              /* owned, optional */
    cairn_buf_t resp_hdrs;      /* "name\0value\0" pairs */
    cairn_buf_t resp_body;

    /* GET/HEAD state */
    cairn_buf_t rec_buf;
    cairn_obj_rec_t rec;
    uint64_t pos, end;          /* next byte to send, end (exclusive) */
    uint8_t *chunk[2]; size_t chunk_cap[2];
    h2o_iovec_t out[2];         /* the read part of each chunk buffer */
    int rd;                     /* buffer the next (or running) read fills */
    int read_busy;              /* a worker is reading into chunk[rd] */
    int read_ready;             /* chunk[rd ^ 1]... see http.c: a read chunk waits to be sent */
    int want;                   /* h2o asked for more (proceed) and nothing was ready */
    int read_err;               /* the last read failed */
    h2o_generator_t generator;
    int streaming;
    uint64_t sent;
    struct { size_t off; uint64_t base; } part_cur; /* multipart GET: next part entry, its first byte (s3_multipart.c) */
};

/* gc.c: remove a superseded version's fragments after [gateway] gc_delay_ms. */
int gw_gc_start(gw_t *gw);
void gw_gc_defer(gw_t *gw, uint64_t req_id, const cairn_obj_rec_t *old);

/* limits.c: count an accepted connection against [gateway] max_connections
 * and hand it to h2o, or answer 503 SlowDown and close it. Loop thread. */
void gw_limits_accept(gw_thread_t *th, h2o_socket_t *sock);
/* worker pool (pool.c) */
int gw_pool_start(gw_t *gw, int nworkers);
void gw_pool_submit(gw_t *gw, gw_job_t *job);

/* http.c */
int gw_http_on_req(h2o_handler_t *self, h2o_req_t *req);
void gw_http_on_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);

/* job helpers (http.c) */
void gw_job_header(gw_job_t *job, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Body access for workers: 0 while the request is alive, -1 when cancelled. */
int gw_job_body_acquire(gw_job_t *job);
void gw_job_body_release(gw_job_t *job);
int gw_job_cancelled(gw_job_t *job);

/* s3_error.c: set job->status/err_code from an S3 error code name. */
void s3_error(gw_job_t *job, const char *code, const char *msg_fmt, ...) __attribute__((format(printf, 3, 4)));
/* Map an internal cairn error to an S3 error on the job. */
void s3_error_from(gw_job_t *job, int err);
/* Render job's error as XML into job->resp_body. */
void s3_error_render(gw_job_t *job);
int s3_error_status(const char *code);

/* s3_auth.c: authenticate the job's request (worker). 0, or sets an S3 error and returns -1. */
int s3_auth(gw_worker_t *w, gw_job_t *job, const uint8_t *payload_sha256 /* NULL: not computed */);
/* The same, also handing back the parsed credentials and the verify result
 * (signing key for aws-chunked bodies); either may be NULL. */
int s3_auth_full(gw_worker_t *w, gw_job_t *job, const uint8_t *payload_sha256, cairn_sigv4_auth_t *auth_out,
                 cairn_sigv4_result_t *res_out);
/* The authenticated user (job->owner) must own `bucket`: 0, or sets
 * NoSuchBucket / AccessDenied / ServiceUnavailable on the job and returns -1.
 * Owners are cached per worker for BUCKET_OWNER_TTL_MS. */
int s3_bucket_access(gw_worker_t *w, gw_job_t *job, const char *bucket);
/* Forget a bucket's cached owner (after this worker deleted it). */
void s3_bucket_forget(gw_worker_t *w, const char *bucket);
/* Does the request ask us to hash the body for its signature? (curl without x-amz-content-sha256, or a hex hash) */
int s3_auth_wants_body_hash(gw_job_t *job);

/* s3_bucket.c */
void s3_time_iso(int64_t ms, char out[64]);
void s3_bucket_step(gw_worker_t *w, gw_job_t *job);
int s3_bucket_name_valid(const char *name, size_t len);
/* Virtual-hosted style: the bucket named by Host "bucket.<domain>[:port]",
 * domains a comma-separated list ([gateway] domain). Its length, 0 when the
 * request is path style, -1 when the name is longer than a bucket's. */
int s3_vhost_bucket(const char *domains, const char *host, size_t hlen, char bucket[CAIRN_MAX_BUCKET_LEN + 1]);

/* s3_object.c */
void s3_object_step(gw_worker_t *w, gw_job_t *job);
void s3_get_next_step(gw_worker_t *w, gw_job_t *job);

/* store.c: the erasure-coded data path. */
typedef struct {
    uint8_t oid[16];
    uint32_t nodes[CAIRN_MAX_FRAGS];
    uint8_t md5[16];
    uint8_t sha256[32];
    int have_sha256;
} gw_put_result_t;
/* map.c: fetch (or seed) the cluster map, then follow it from a thread. */
#define GW_SLOT_GONE (-1)
int gw_map_start(gw_t *gw);
/* The slot of node id if it may be read (up or draining), else -1. */
int gw_map_slot(gw_t *gw, uint32_t id);
/* Placement of a new object by the current map: n slots (and node ids);
 * returns how many nodes were found (fewer than n: not enough nodes up). */
int gw_map_pick(gw_worker_t *w, const uint8_t oid[16], int n, int *slots, uint32_t *ids);
/* The worker's connection to a slot's node. */
cairn_conn_t *gw_conn(gw_worker_t *w, int slot);

int gw_worker_init(gw_worker_t *w, gw_t *gw);
void gw_worker_dispose(gw_worker_t *w);
/* A small object kept inside its record: copy the body into *copy and hash it (no fragments). */
int gw_store_inline(gw_worker_t *w, gw_job_t *job, int want_sha256, gw_put_result_t *out, cairn_buf_t *copy);
/* Write an object's fragments; k+1 durable acks needed (k when m == 0). */
int gw_store_put(gw_worker_t *w, gw_job_t *job, int want_sha256, gw_put_result_t *out);
/* Read stripes [first, first+n) of rec into out (their data bytes, contiguous). */
int gw_store_read(gw_worker_t *w, uint64_t req_id, const cairn_obj_rec_t *rec, uint64_t first, uint32_t n,
                  uint8_t *out);
/* Remove every fragment of rec; 0 when all are gone. */
int gw_store_delete(gw_worker_t *w, uint64_t req_id, const cairn_obj_rec_t *rec);

#endif
