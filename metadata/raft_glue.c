/*
 * raft_glue.c — libraft on its own loop thread, fed by the service's
 * connection threads. See raft_glue.h for the model and its caveats.
 *
 * Threads and ownership
 * - A job (one submit, barrier, status or membership change) is allocated
 *   by the calling thread and referenced twice: by that thread while it
 *   waits and by the loop until libraft calls back. Whichever lets go last
 *   frees it, so a caller that times out simply walks away.
 * - Everything under `mu`: the job queue, job completion, the published
 *   leader. Everything else in meta_log_t belongs to the loop thread, except
 *   the snapshot mapping, which the threadpool fills between the loop's
 *   snapshot() and snapshot_finalize() calls (libraft orders them).
 *
 * Log entry (a RAFT_COMMAND payload; every field little-endian):
 *   0  u32 magic "CMD1"       8  command id[16] (zero when flags bit 0 is clear)
 *   4  u32 flags (bit 0: id)  24 i64 leader's wall clock, ms
 *   32 the fsm.h command, already padded to a multiple of 8
 *
 * Reads (meta_log_barrier) are linearizable. The leader serves them at
 * once while it holds a lease, else after a barrier entry commits. The
 * lease: once an entry appended at time t in this term has committed, a
 * majority heard from this leader after t, and each of them refuses to vote
 * for anyone else (libraft: "local server has a leader") until its own
 * election timer, at least election_timeout_ms, runs out. So until
 * t + election_timeout_ms / 2 (half as margin for clock rates) no other
 * leader can have been elected and committed anything. A leadership
 * transfer lets the target disrupt the leader at once, so the lease ends
 * when one starts, and during membership changes. Reads check the lease on
 * the loop thread, where libraft's state is whole: a vote this leader
 * grants (stepping down) happens there too. A reader thread stalled between
 * that check and its LMDB read (a paused process) may still return what
 * was current at the check, as with every lease.
 */
#include "raft_glue.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/wire.h"
#include "raft_transport.h"

#define ENTRY_MAGIC 0x31444d43u /* "CMD1" */
#define ENTRY_HDR 32
#define FLAG_ID 1u
/* How long a caller waits for its job. Longer than an election, so a
 * leader that loses its majority answers ENOTLEADER (libraft fails pending
 * entries when it steps down) rather than a timeout. */
#define JOB_TIMEOUT_MS 10000
/* Stopping: how long a leader waits for its successor to take over. */
#define TRANSFER_WAIT_MS 2000

enum { J_APPLY, J_BARRIER, J_STATUS, J_ADD, J_REMOVE, J_TRANSFER };

typedef struct job_s job_t;
struct job_s {
    job_t *next;
    meta_log_t *log;
    int kind;
    /* under mu */
    int refs;
    int done;
    int rc;
    pthread_cond_t cond;
    /* J_APPLY: the entry (raft_malloc; raft's once raft_apply took it) and the answer */
    struct raft_buffer entry;
    cairn_buf_t result;
    /* J_ADD, J_REMOVE, J_TRANSFER */
    uint64_t id;
    char addr[128], raft_addr[128];
    int step; /* J_ADD: 0 record addresses, 1 raft_add, 2 raft_assign */
    int64_t start_ms; /* J_APPLY: when raft_apply took it (cairn_now_ms) */
    /* J_STATUS */
    cairn_meta_status_t st;
    union {
        struct raft_apply apply;
        struct raft_change change;
        struct raft_transfer transfer;
    } rq;
};

struct meta_log_s {
    meta_fsm_t *fsm;
    const cairn_cfg_t *cfg;
    uint64_t id;
    char *dir;

    pthread_t thread;
    uv_loop_t loop;
    uv_async_t wake;
    uv_check_t check;
    uv_timer_t stop_timer;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm rfsm;
    struct raft raft;

    pthread_mutex_t mu;
    job_t *head, *tail; /* queued for the loop */
    int stopping;       /* no new jobs; the loop shuts down */
    int wake_closed;    /* `wake` is being closed: uv_async_send on it would be undefined */
    uint64_t leader_id; /* published view of the leader */
    char leader_addr[128];
    int role;

    /* loop thread */
    int closing;
    int closed_handles;
    cairn_buf_t apply_res;     /* result of the entry being applied; read by on_apply right after */
    uint64_t apply_res_index;
    job_t *reads_waiting;      /* barriers not yet covered by a raft_barrier */
    job_t *reads_inflight;     /* covered by `barrier` */
    int barrier_busy;
    struct raft_barrier barrier;
    int64_t barrier_start_ms;  /* when `barrier` was appended (cairn_now_ms) */
    int64_t lease_ms;          /* 0: every read waits for a barrier */
    int64_t lease_until_ms;    /* reads need no barrier before this (cairn_now_ms) ... */
    uint64_t lease_term;       /* ... while still leader of this term */
    int lease_renew;           /* a barrier with no reads waiting, to extend the lease */
    uint64_t lease_reads, barrier_reads;
    job_t *change;             /* the membership change in progress */
    struct raft_transfer stop_transfer;
    uint64_t published_leader;
    int published_role;
    uint64_t snapshot_index;

    /* snapshot in progress (see the file comment) */
    int snap_fd;
    void *snap_map;
    size_t snap_len;
};

/* ---- small helpers ---- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int role_of(int state)
{
    switch (state) {
    case RAFT_FOLLOWER: return CAIRN_META_ROLE_FOLLOWER;
    case RAFT_CANDIDATE: return CAIRN_META_ROLE_CANDIDATE;
    case RAFT_LEADER: return CAIRN_META_ROLE_LEADER;
    default: return CAIRN_META_ROLE_UNAVAILABLE;
    }
}

/* A libraft status code as a cairn error. Losing leadership with an entry
 * in flight is ENOTLEADER: the caller retries elsewhere with the same id. */
static int from_raft(int rv)
{
    switch (rv) {
    case 0: return 0;
    case RAFT_NOTLEADER:
    case RAFT_LEADERSHIPLOST: return CAIRN_ENOTLEADER;
    case RAFT_CANTCHANGE: return CAIRN_ECONFLICT;
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
    case RAFT_BADROLE: return CAIRN_EEXIST;
    case RAFT_BADID:
    case RAFT_NOTFOUND: return CAIRN_ENOTFOUND;
    case RAFT_NOMEM: return -ENOMEM;
    case RAFT_NOSPACE: return -ENOSPC;
    default: return CAIRN_EUNAVAIL;
    }
}

/* The service address of replica id: what it registered through the log
 * (meta_log_add), else its [meta.<id>] section. Empty if neither. */
static void resolve_addr(meta_log_t *l, uint64_t id, char out[128])
{
    char raft_addr[128];
    out[0] = '\0';
    if (id == 0)
        return;
    if (meta_fsm_replica_get(l->fsm, id, out, raft_addr) == 0)
        return;
    const cairn_cfg_meta_t *m = id <= UINT32_MAX ? cairn_cfg_replica(l->cfg, (uint32_t)id) : NULL;
    if (m)
        snprintf(out, 128, "%s", m->addr);
}

/* ---- jobs ---- */

static job_t *job_new(int kind)
{
    job_t *j = cairn_calloc(1, sizeof *j);
    j->kind = kind;
    j->refs = 2;
    pthread_cond_init(&j->cond, NULL);
    cairn_buf_init(&j->result);
    return j;
}

static void job_free(job_t *j)
{
    if (j->entry.base)
        raft_free(j->entry.base);
    cairn_buf_dispose(&j->result);
    pthread_cond_destroy(&j->cond);
    free(j);
}

/* Drop one reference (mu held); frees on the last. */
static void job_unref_locked(job_t *j)
{
    if (--j->refs == 0)
        job_free(j);
}

/* Loop thread: the job is over with rc; wake its caller. */
static void job_finish(meta_log_t *l, job_t *j, int rc)
{
    pthread_mutex_lock(&l->mu);
    j->rc = rc;
    j->done = 1;
    pthread_cond_signal(&j->cond);
    job_unref_locked(j);
    pthread_mutex_unlock(&l->mu);
}

/* Queue j for the loop and wait for it (at most timeout_ms). On success
 * *resultp and *stp (if not NULL) receive the job's result and status.
 * Returns the job's rc, or CAIRN_ETIMEOUT / CAIRN_EUNAVAIL. Consumes the
 * caller's reference. */
static int job_run(meta_log_t *l, job_t *j, int timeout_ms, cairn_buf_t *resultp, cairn_meta_status_t *stp)
{
    j->log = l;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&l->mu);
    if (l->stopping) {
        j->refs = 1;
        job_unref_locked(j);
        pthread_mutex_unlock(&l->mu);
        return CAIRN_EUNAVAIL;
    }
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    /* Under mu: the loop closes `wake` only after it saw `stopping`, which
     * is set under mu. Wakes coalesce; the loop drains the whole queue. */
    uv_async_send(&l->wake);
    int rc = 0;
    while (!j->done && rc == 0)
        rc = pthread_cond_timedwait(&j->cond, &l->mu, &until);
    if (j->done) {
        rc = j->rc;
        if (rc == 0 && resultp) {
            cairn_buf_reset(resultp);
            cairn_buf_append(resultp, j->result.base, j->result.len);
        }
        if (rc == 0 && stp)
            *stp = j->st;
    } else {
        rc = CAIRN_ETIMEOUT;
    }
    job_unref_locked(j);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* ---- the state machine (loop thread, called by libraft) ---- */

static int fsm_apply(struct raft_fsm *rfsm, const struct raft_buffer *buf, void **result)
{
    meta_log_t *l = rfsm->data;
    /* libraft applies entries in index order and passes none: the entry
     * being applied is the one after the last applied (barrier and
     * configuration entries advance last_applied too). */
    uint64_t index = raft_last_applied(&l->raft) + 1;
    const uint8_t *p = buf->base;
    cairn_buf_reset(&l->apply_res);
    l->apply_res_index = index;
    *result = &l->apply_res;
    if (buf->len < ENTRY_HDR || cairn_le32_get(p) != ENTRY_MAGIC) {
        cairn_log(CAIRN_LOG_ERROR, 0, "raft: entry %llu is not a cairn command (%zu bytes): skipped",
                  (unsigned long long)index, buf->len);
        cairn_buf_put_u32(&l->apply_res, (uint32_t)CAIRN_EPROTO);
        return 0; /* a command error, not an LMDB one: never stall on it */
    }
    uint32_t flags = cairn_le32_get(p + 4);
    int64_t now = (int64_t)cairn_le64_get(p + 24);
    int rc = meta_fsm_apply_once(l->fsm, index, (flags & FLAG_ID) ? p + 8 : NULL, now, p + ENTRY_HDR,
                                 buf->len - ENTRY_HDR, &l->apply_res);
    if (rc != 0) {
        /* LMDB failed (disk full, I/O error): the entry must not be
         * skipped, so application stops here and libraft retries it on
         * its next commit. Clients time out meanwhile. */
        cairn_log(CAIRN_LOG_ERROR, 0, "raft: applying entry %llu failed: %s; application paused",
                  (unsigned long long)index, cairn_strerror(rc));
        return RAFT_IOERR;
    }
    return 0;
}

static int fsm_snapshot(struct raft_fsm *rfsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    meta_log_t *l = rfsm->data;
    if (l->snap_map != NULL || l->snap_fd >= 0)
        return RAFT_BUSY; /* libraft retries at its next threshold check */
    *bufs = NULL;
    *n_bufs = 0;
    l->snapshot_index = raft_last_applied(&l->raft);
    return 0;
}

/* Threadpool: the compacted copy of LMDB, mapped read-only. */
static int fsm_snapshot_async(struct raft_fsm *rfsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    meta_log_t *l = rfsm->data;
    char path[4096];
    snprintf(path, sizeof path, "%s/copy.XXXXXX", l->dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "snapshot: mkstemp in %s: %s", l->dir, strerror(errno));
        return RAFT_IOERR;
    }
    unlink(path); /* gone with the last fd/mapping, even after a crash */
    int64_t t0 = cairn_now_ms();
    int rc = meta_fsm_copy(l->fsm, fd);
    struct stat sb;
    if (rc == 0 && fstat(fd, &sb) != 0)
        rc = -errno;
    void *map = MAP_FAILED;
    if (rc == 0 && sb.st_size > 0) {
        map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
            rc = -errno;
        else
            madvise(map, (size_t)sb.st_size, MADV_SEQUENTIAL);
    }
    if (rc == 0 && map == MAP_FAILED)
        rc = CAIRN_ECORRUPT; /* an empty copy */
    if (rc != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "snapshot: copying the database failed: %s", cairn_strerror(rc));
        close(fd);
        return RAFT_IOERR;
    }
    l->snap_fd = fd;
    l->snap_map = map;
    l->snap_len = (size_t)sb.st_size;
    *bufs = raft_malloc(sizeof **bufs);
    if (*bufs == NULL)
        return RAFT_NOMEM; /* finalize releases the mapping */
    (*bufs)[0].base = map;
    (*bufs)[0].len = l->snap_len;
    *n_bufs = 1;
    cairn_log(CAIRN_LOG_INFO, 0, "snapshot at index %llu: %zu bytes copied in %lld ms",
              (unsigned long long)l->snapshot_index, l->snap_len, (long long)(cairn_now_ms() - t0));
    return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *rfsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    meta_log_t *l = rfsm->data;
    if (l->snap_map != NULL)
        munmap(l->snap_map, l->snap_len);
    if (l->snap_fd >= 0)
        close(l->snap_fd);
    l->snap_map = NULL;
    l->snap_fd = -1;
    l->snap_len = 0;
    if (*bufs)
        raft_free(*bufs);
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* Write all of buf to path and fsync it. 0 or -errno. */
static int write_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    const uint8_t *p = buf;
    int rc = 0;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* A snapshot from libraft: at start-up (the last one taken here) or sent by
 * the leader to a replica that fell behind its log. The state machine is
 * already durable in LMDB, so the image replaces it only when it is ahead. */
static int fsm_restore(struct raft_fsm *rfsm, struct raft_buffer *buf)
{
    meta_log_t *l = rfsm->data;
    char path[4096];
    snprintf(path, sizeof path, "%s/restore.mdb", l->dir);
    int64_t t0 = cairn_now_ms();
    uint64_t img = 0, local = meta_fsm_applied(l->fsm);
    int rc = write_file(path, buf->base, buf->len);
    if (rc == 0)
        rc = meta_fsm_image_applied(path, &img);
    if (rc == 0 && img <= local) {
        cairn_log(CAIRN_LOG_INFO, 0, "snapshot (state at index %llu, %zu bytes) not newer than the database "
                  "(index %llu): kept the database", (unsigned long long)img, buf->len,
                  (unsigned long long)local);
        unlink(path);
    } else if (rc == 0) {
        rc = meta_fsm_replace(l->fsm, path);
        if (rc == 0)
            cairn_log(CAIRN_LOG_INFO, 0, "restored a snapshot: state at index %llu (was %llu), %zu bytes, %lld ms",
                      (unsigned long long)img, (unsigned long long)local, buf->len,
                      (long long)(cairn_now_ms() - t0));
    }
    if (rc != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "restoring a snapshot of %zu bytes failed: %s", buf->len, cairn_strerror(rc));
        unlink(path);
        return RAFT_IOERR; /* libraft keeps ownership of buf */
    }
    raft_free(buf->base);
    return 0;
}

/* ---- the loop: jobs ---- */

/* An entry appended at start_ms in this term has committed (file comment). */
static void lease_extend(meta_log_t *l, int64_t start_ms)
{
    if (l->lease_ms == 0)
        return;
    int64_t until = start_ms + l->lease_ms;
    if (l->lease_term != l->raft.current_term || until > l->lease_until_ms) {
        l->lease_term = l->raft.current_term;
        l->lease_until_ms = until;
    }
}

static void lease_end(meta_log_t *l) { l->lease_until_ms = 0; }

/* A read under the lease, if it holds: 1, counted, and a renewal asked for
 * when half the lease is gone (the barrier goes out once the queue is
 * drained). 0: the read must wait for a barrier. */
static int lease_read(meta_log_t *l)
{
    struct raft *r = &l->raft;
    int64_t now = cairn_now_ms();
    if (l->lease_ms == 0 || now >= l->lease_until_ms || raft_state(r) != RAFT_LEADER ||
        l->lease_term != r->current_term || r->transfer != NULL || l->change != NULL ||
        raft_last_applied(r) < r->commit_index)
        return 0;
    l->lease_reads++;
    if (l->lease_until_ms - now < l->lease_ms / 2)
        l->lease_renew = 1;
    return 1;
}

static void on_apply(struct raft_apply *req, int status, void *result)
{
    job_t *j = req->data;
    int rc = from_raft(status);
    if (rc == 0) {
        cairn_buf_t *res = result;
        /* fsm_apply filled it for this very index just before this call */
        if (res == NULL || res->len < 4) {
            rc = CAIRN_EUNAVAIL;
        } else {
            cairn_buf_reset(&j->result);
            cairn_buf_append(&j->result, res->base, res->len);
        }
        lease_extend(j->log, j->start_ms);
    }
    job_finish(j->log, j, rc);
}

static void start_apply(meta_log_t *l, job_t *j)
{
    j->rq.apply.data = j;
    j->start_ms = cairn_now_ms();
    int rv = raft_apply(&l->raft, &j->rq.apply, &j->entry, 1, on_apply);
    if (rv != 0) {
        job_finish(l, j, from_raft(rv));
        return;
    }
    j->entry.base = NULL; /* libraft owns it now */
}

/* Finish every job of a list linked through next, with rc. */
static void finish_list(meta_log_t *l, job_t *list, int rc)
{
    while (list) {
        job_t *n = list->next;
        job_finish(l, list, rc);
        list = n;
    }
}

static void kick_barrier(meta_log_t *l);

static void on_barrier(struct raft_barrier *req, int status)
{
    meta_log_t *l = req->data;
    job_t *done = l->reads_inflight;
    l->reads_inflight = NULL;
    l->barrier_busy = 0;
    finish_list(l, done, from_raft(status));
    if (status != 0) {
        /* Leadership lost (or shutdown). libraft fails its requests while
         * it tears the leader state down: raft_state() still says leader
         * but the replication progress is gone, so no request may start
         * from here. The waiting reads fail as well; their clients retry
         * at the new leader. */
        job_t *w = l->reads_waiting;
        l->reads_waiting = NULL;
        finish_list(l, w, CAIRN_ENOTLEADER);
        return;
    }
    lease_extend(l, l->barrier_start_ms);
    kick_barrier(l);
}

/* Cover every waiting read with one barrier, unless one is in flight: the
 * reads that arrived after it was appended wait for the next. With no read
 * waiting, a barrier still goes out when the lease asks for renewal. */
static void kick_barrier(meta_log_t *l)
{
    if (l->barrier_busy || (l->reads_waiting == NULL && !l->lease_renew) || l->closing)
        return;
    l->lease_renew = 0;
    if (raft_state(&l->raft) != RAFT_LEADER) {
        job_t *w = l->reads_waiting;
        l->reads_waiting = NULL;
        finish_list(l, w, CAIRN_ENOTLEADER);
        return;
    }
    l->reads_inflight = l->reads_waiting;
    l->reads_waiting = NULL;
    l->barrier.data = l;
    l->barrier_start_ms = cairn_now_ms();
    int rv = raft_barrier(&l->raft, &l->barrier, on_barrier);
    if (rv != 0) {
        job_t *w = l->reads_inflight;
        l->reads_inflight = NULL;
        finish_list(l, w, from_raft(rv));
        return;
    }
    l->barrier_busy = 1;
}

static void fill_status(meta_log_t *l, cairn_meta_status_t *st)
{
    struct raft *r = &l->raft;
    memset(st, 0, sizeof *st);
    st->id = l->id;
    st->role = role_of(raft_state(r));
    st->term = r->current_term;
    st->commit = r->commit_index;
    st->applied = raft_last_applied(r);
    st->last_index = raft_last_index(r);
    st->lease_reads = l->lease_reads;
    st->barrier_reads = l->barrier_reads;
    st->fsm_applied = meta_fsm_applied(l->fsm);
    st->snapshot_index = r->log.snapshot.last_index;
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(r, &lid, &laddr);
    st->leader_id = lid;
    resolve_addr(l, lid, st->leader_addr);
    for (unsigned i = 0; i < r->configuration.n && st->nmembers < CAIRN_META_MAX_MEMBERS; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        size_t k = st->nmembers++;
        st->members[k].id = s->id;
        st->members[k].kind = s->role;
        snprintf(st->members[k].raft_addr, sizeof st->members[k].raft_addr, "%s", s->address ? s->address : "");
        resolve_addr(l, s->id, st->members[k].addr);
    }
}

static void change_step(meta_log_t *l, job_t *j);

static void on_change(struct raft_change *req, int status)
{
    job_t *j = req->data;
    meta_log_t *l = j->log;
    if (status != 0 || j->kind != J_ADD || j->step == 2) {
        l->change = NULL;
        job_finish(l, j, from_raft(status));
        return;
    }
    j->step++;
    change_step(l, j);
}

/* Run the next libraft call of a membership job. */
static void change_step(meta_log_t *l, job_t *j)
{
    int rv;
    j->rq.change.data = j;
    if (j->kind == J_REMOVE) {
        rv = raft_remove(&l->raft, &j->rq.change, j->id, on_change);
    } else if (j->step == 1) {
        rv = raft_add(&l->raft, &j->rq.change, j->id, j->raft_addr, on_change);
        if (rv == RAFT_DUPLICATEID) { /* already a member (e.g. a spare from an earlier try): promote it */
            j->step = 2;
            rv = raft_assign(&l->raft, &j->rq.change, j->id, RAFT_VOTER, on_change);
        }
    } else {
        rv = raft_assign(&l->raft, &j->rq.change, j->id, RAFT_VOTER, on_change);
    }
    if (rv != 0) {
        l->change = NULL;
        job_finish(l, j, from_raft(rv));
    }
}

/* J_ADD step 0 went through the log (apply job): the replica's addresses
 * are known to every replica. Now change the configuration. */
static void on_add_recorded(struct raft_apply *req, int status, void *result)
{
    job_t *j = req->data;
    meta_log_t *l = j->log;
    const cairn_buf_t *res = result;
    int rc = from_raft(status);
    if (rc == 0 && (res == NULL || res->len < 4))
        rc = CAIRN_EUNAVAIL;
    if (rc == 0)
        rc = (int32_t)cairn_le32_get(res->base);
    if (rc != 0) {
        l->change = NULL;
        job_finish(l, j, rc);
        return;
    }
    j->step = 1;
    change_step(l, j);
}

static void on_transfer(struct raft_transfer *req)
{
    job_t *j = req->data;
    meta_log_t *l = j->log;
    raft_id lid = 0;
    const char *a = NULL;
    raft_leader(&l->raft, &lid, &a);
    int ok = lid != 0 && lid != l->id && (j->id == 0 || lid == j->id);
    job_finish(l, j, ok ? 0 : CAIRN_ETIMEOUT);
}

/* Build the log entry of a command (envelope + command). */
static int make_entry(struct raft_buffer *e, const uint8_t id[16], const uint8_t *cmd, size_t len)
{
    if (len % 8 != 0)
        return CAIRN_EINVAL;
    e->len = ENTRY_HDR + len;
    e->base = raft_calloc(1, e->len);
    if (e->base == NULL)
        return -ENOMEM;
    uint8_t *p = e->base;
    cairn_le32_put(p, ENTRY_MAGIC);
    cairn_le32_put(p + 4, id ? FLAG_ID : 0);
    if (id)
        memcpy(p + 8, id, 16);
    cairn_le64_put(p + 24, (uint64_t)wall_ms());
    if (len)
        memcpy(p + ENTRY_HDR, cmd, len);
    return 0;
}

static void run_job(meta_log_t *l, job_t *j)
{
    int leader = raft_state(&l->raft) == RAFT_LEADER;
    switch (j->kind) {
    case J_APPLY:
        if (!leader)
            job_finish(l, j, CAIRN_ENOTLEADER);
        else
            start_apply(l, j);
        return;
    case J_BARRIER:
        if (lease_read(l)) {
            job_finish(l, j, 0);
            return;
        }
        l->barrier_reads++;
        j->next = l->reads_waiting;
        l->reads_waiting = j;
        return; /* kicked once the queue is drained */
    case J_STATUS:
        fill_status(l, &j->st);
        job_finish(l, j, 0);
        return;
    case J_ADD:
    case J_REMOVE:
        if (!leader) {
            job_finish(l, j, CAIRN_ENOTLEADER);
            return;
        }
        if (l->change) {
            job_finish(l, j, CAIRN_ECONFLICT);
            return;
        }
        if (j->kind == J_REMOVE) {
            /* libraft would remove the last voter too, leaving a group
             * that can never elect a leader again */
            unsigned voters = 0, is_voter = 0;
            for (unsigned i = 0; i < l->raft.configuration.n; i++) {
                const struct raft_server *sv = &l->raft.configuration.servers[i];
                voters += sv->role == RAFT_VOTER;
                is_voter |= sv->id == j->id && sv->role == RAFT_VOTER;
            }
            if (is_voter && voters == 1) {
                job_finish(l, j, CAIRN_EINVAL);
                return;
            }
            l->change = j;
            lease_end(l);
            change_step(l, j);
            return;
        }
        l->change = j;
        lease_end(l);
        {
            cairn_buf_t cmd;
            cairn_buf_init(&cmd);
            meta_cmd_replica_put(&cmd, j->id, j->addr, j->raft_addr);
            int rc = make_entry(&j->entry, NULL, cmd.base, cmd.len);
            cairn_buf_dispose(&cmd);
            int rv = rc == 0 ? 0 : RAFT_NOMEM;
            if (rv == 0) {
                j->rq.apply.data = j;
                rv = raft_apply(&l->raft, &j->rq.apply, &j->entry, 1, on_add_recorded);
            }
            if (rv != 0) {
                l->change = NULL;
                job_finish(l, j, from_raft(rv));
                return;
            }
            j->entry.base = NULL;
        }
        return;
    case J_TRANSFER:
        if (!leader) {
            job_finish(l, j, CAIRN_ENOTLEADER);
            return;
        }
        j->rq.transfer.data = j;
        lease_end(l);
        {
            int rv = raft_transfer(&l->raft, &j->rq.transfer, j->id, on_transfer);
            if (rv != 0)
                job_finish(l, j, from_raft(rv));
        }
        return;
    }
    CAIRN_ASSERT(0);
}

/* ---- the loop: life cycle ---- */

static void on_handle_closed(uv_handle_t *h)
{
    meta_log_t *l = h->data;
    l->closed_handles++;
}

static void on_raft_closed(struct raft *r)
{
    meta_log_t *l = r->data;
    job_t *w = l->reads_waiting;
    l->reads_waiting = NULL;
    finish_list(l, w, CAIRN_EUNAVAIL);
    pthread_mutex_lock(&l->mu);
    l->wake_closed = 1;
    pthread_mutex_unlock(&l->mu);
    uv_close((uv_handle_t *)&l->wake, on_handle_closed);
    uv_close((uv_handle_t *)&l->check, on_handle_closed);
    uv_close((uv_handle_t *)&l->stop_timer, on_handle_closed);
}

static void close_raft(meta_log_t *l)
{
    if (l->closing)
        return;
    l->closing = 1;
    uv_timer_stop(&l->stop_timer);
    raft_close(&l->raft, on_raft_closed);
}

static void on_stop_timer(uv_timer_t *t)
{
    close_raft(t->data);
}

/* libraft calls this while it converts to follower: closing from inside
 * that would tear the state down under its feet, so close from the timer,
 * in the loop's next turn. */
static void on_stop_transfer(struct raft_transfer *req)
{
    meta_log_t *l = req->data;
    uv_timer_start(&l->stop_timer, on_stop_timer, 0, 0);
}

/* Leaving: a leader first hands over (so clients wait for a transfer, not
 * an election timeout), bounded by TRANSFER_WAIT_MS. */
static void begin_stop(meta_log_t *l)
{
    if (l->closing || uv_is_active((uv_handle_t *)&l->stop_timer))
        return;
    uv_timer_start(&l->stop_timer, on_stop_timer, TRANSFER_WAIT_MS, 0);
    if (raft_state(&l->raft) == RAFT_LEADER && l->raft.configuration.n > 1) {
        l->stop_transfer.data = l;
        lease_end(l);
        if (raft_transfer(&l->raft, &l->stop_transfer, 0, on_stop_transfer) == 0) {
            cairn_log(CAIRN_LOG_INFO, 0, "raft: handing leadership over before stopping");
            return;
        }
    }
    close_raft(l);
}

static void on_wake(uv_async_t *a)
{
    meta_log_t *l = a->data;
    pthread_mutex_lock(&l->mu);
    job_t *list = l->head;
    l->head = l->tail = NULL;
    int stopping = l->stopping;
    pthread_mutex_unlock(&l->mu);
    while (list) {
        job_t *n = list->next;
        list->next = NULL;
        if (l->closing || uv_is_active((uv_handle_t *)&l->stop_timer))
            job_finish(l, list, CAIRN_EUNAVAIL);
        else
            run_job(l, list);
        list = n;
    }
    kick_barrier(l);
    if (stopping)
        begin_stop(l);
}

/* After every loop iteration: publish who leads, for callers that must not
 * wait for the loop (redirects). Cheap unless the leader changed. */
static void on_check(uv_check_t *c)
{
    meta_log_t *l = c->data;
    if (l->closing)
        return;
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(&l->raft, &lid, &laddr);
    int role = role_of(raft_state(&l->raft));
    if (lid == l->published_leader && role == l->published_role)
        return;
    char addr[128];
    resolve_addr(l, lid, addr);
    if (lid != l->published_leader)
        cairn_log(CAIRN_LOG_INFO, 0, "raft: leader is %llu (%s), term %llu, this replica is %s",
                  (unsigned long long)lid, lid ? (addr[0] ? addr : "address unknown") : "none",
                  (unsigned long long)l->raft.current_term,
                  role == CAIRN_META_ROLE_LEADER ? "leader" : role == CAIRN_META_ROLE_CANDIDATE ? "candidate" : "follower");
    l->published_leader = lid;
    l->published_role = role;
    pthread_mutex_lock(&l->mu);
    l->leader_id = lid;
    l->role = role;
    memcpy(l->leader_addr, addr, sizeof addr);
    pthread_mutex_unlock(&l->mu);
    if (role != CAIRN_META_ROLE_LEADER)
        kick_barrier(l); /* waiting reads learn they must go elsewhere */
}

static void *loop_main(void *arg)
{
    meta_log_t *l = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    uv_run(&l->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- public ---- */

int meta_log_create(meta_fsm_t *fsm, const meta_log_opts_t *o, meta_log_t **out)
{
    if (mkdir(o->dir, 0700) != 0 && errno != EEXIST) {
        int err = -errno;
        cairn_log(CAIRN_LOG_ERROR, 0, "mkdir %s: %s", o->dir, strerror(errno));
        return err;
    }
    meta_log_t *l = cairn_calloc(1, sizeof *l);
    l->fsm = fsm;
    l->cfg = o->cfg;
    l->id = o->id;
    l->dir = cairn_strndup(o->dir, strlen(o->dir));
    l->snap_fd = -1;
    cairn_buf_init(&l->apply_res);
    pthread_mutex_init(&l->mu, NULL);

    int rv = uv_loop_init(&l->loop);
    const char *what = "uv_loop_init";
    if (rv == 0) {
        what = "raft transport";
        rv = meta_transport_init(&l->transport, &l->loop, o->key);
    }
    if (rv == 0) {
        what = "raft io";
        rv = raft_uv_init(&l->io, &l->loop, o->dir, &l->transport);
    }
    if (rv != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "%s: %s", what, rv < 0 ? uv_strerror(rv) : raft_strerror(rv));
        goto fail_early;
    }
    /* libraft 0.15 implements async_work but advertises version 1, and
     * raft_init() refuses an asynchronous snapshot on version 1. */
    l->io.version = 2;
    /* Compression would build an in-memory copy of the whole snapshot. */
    raft_uv_set_snapshot_compression(&l->io, false);
    l->rfsm = (struct raft_fsm){
        .version = 3,
        .data = l,
        .apply = fsm_apply,
        .snapshot = fsm_snapshot,
        .restore = fsm_restore,
        .snapshot_finalize = fsm_snapshot_finalize,
        .snapshot_async = fsm_snapshot_async,
    };
    rv = raft_init(&l->raft, &l->io, &l->rfsm, o->id, o->raft_addr);
    if (rv != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "raft_init: %s", raft_errmsg(&l->raft));
        raft_uv_close(&l->io);
        goto fail_early;
    }
    l->raft.data = l;
    raft_set_election_timeout(&l->raft, (unsigned)o->cfg->meta_election_ms);
    raft_set_heartbeat_timeout(&l->raft, (unsigned)o->cfg->meta_heartbeat_ms);
    l->lease_ms = o->cfg->meta_lease_reads ? o->cfg->meta_election_ms / 2 : 0;
    raft_set_snapshot_threshold(&l->raft, (unsigned)o->cfg->meta_snapshot_threshold);
    raft_set_snapshot_trailing(&l->raft, (unsigned)o->cfg->meta_snapshot_trailing);
    raft_set_pre_vote(&l->raft, true); /* a replica back from a partition does not depose the leader */

    if (!o->join) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        for (size_t i = 0; i < o->cfg->nmetas && rv == 0; i++)
            rv = raft_configuration_add(&conf, o->cfg->metas[i].id, o->cfg->metas[i].raft_addr, RAFT_VOTER);
        if (rv == 0) {
            rv = raft_bootstrap(&l->raft, &conf);
            if (rv == 0)
                cairn_log(CAIRN_LOG_INFO, 0, "raft: bootstrapped a group of %zu replicas", o->cfg->nmetas);
            else if (rv == RAFT_CANTBOOTSTRAP)
                rv = 0; /* not pristine: the log already holds the configuration */
        }
        raft_configuration_close(&conf);
        if (rv != 0) {
            cairn_log(CAIRN_LOG_ERROR, 0, "raft_bootstrap: %s", raft_strerror(rv));
            goto fail_raft;
        }
    }
    if ((rv = raft_start(&l->raft)) != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "raft_start: %s", raft_errmsg(&l->raft));
        goto fail_raft;
    }
    uv_async_init(&l->loop, &l->wake, on_wake);
    l->wake.data = l;
    uv_check_init(&l->loop, &l->check);
    l->check.data = l;
    uv_check_start(&l->check, on_check);
    uv_timer_init(&l->loop, &l->stop_timer);
    l->stop_timer.data = l;
    if ((rv = pthread_create(&l->thread, NULL, loop_main, l)) != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "pthread_create: %s", strerror(rv));
        CAIRN_ASSERT(0); /* the loop owns live handles: nothing sane to unwind */
    }
    cairn_log(CAIRN_LOG_INFO, 0, "raft: replica %llu on %s, log in %s%s", (unsigned long long)o->id, o->raft_addr,
              o->dir, o->join ? " (joining)" : "");
    *out = l;
    return 0;

fail_raft:
    /* raft_close needs the loop to run its callbacks */
    raft_close(&l->raft, NULL);
    uv_run(&l->loop, UV_RUN_DEFAULT);
    raft_uv_close(&l->io);
fail_early:
    meta_transport_release(&l->transport);
    uv_loop_close(&l->loop);
    pthread_mutex_destroy(&l->mu);
    cairn_buf_dispose(&l->apply_res);
    free(l->dir);
    free(l);
    return CAIRN_EUNAVAIL;
}

void meta_log_stop(meta_log_t *l)
{
    pthread_mutex_lock(&l->mu);
    int first = !l->stopping;
    l->stopping = 1;
    l->role = CAIRN_META_ROLE_UNAVAILABLE;
    if (first && !l->wake_closed)
        uv_async_send(&l->wake);
    pthread_mutex_unlock(&l->mu);
    if (!first)
        return;
    pthread_join(l->thread, NULL);
    /* raft_close released libraft's state; the io and transport objects
     * are released separately once the loop has stopped using them. */
    raft_uv_close(&l->io);
    meta_transport_release(&l->transport);
    uv_run(&l->loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&l->loop) != 0)
        cairn_log(CAIRN_LOG_WARN, 0, "raft: loop closed with handles still open");
    /* jobs queued after the loop's last drain */
    pthread_mutex_lock(&l->mu);
    job_t *list = l->head;
    l->head = l->tail = NULL;
    pthread_mutex_unlock(&l->mu);
    finish_list(l, list, CAIRN_EUNAVAIL);
}

void meta_log_destroy(meta_log_t *l)
{
    if (l == NULL)
        return;
    meta_log_stop(l);
    pthread_mutex_destroy(&l->mu);
    cairn_buf_dispose(&l->apply_res);
    free(l->dir);
    free(l);
}

static int submit(meta_log_t *l, const uint8_t id[16], const uint8_t *cmd, size_t len, cairn_buf_t *result)
{
    pthread_mutex_lock(&l->mu);
    int follower = l->role != CAIRN_META_ROLE_LEADER;
    pthread_mutex_unlock(&l->mu);
    if (follower)
        return CAIRN_ENOTLEADER; /* the loop would say the same, a round trip later */
    job_t *j = job_new(J_APPLY);
    int rc = make_entry(&j->entry, id, cmd, len);
    if (rc != 0) {
        job_free(j);
        return rc;
    }
    return job_run(l, j, JOB_TIMEOUT_MS, result, NULL);
}

int meta_log_submit(meta_log_t *l, const uint8_t *cmd, size_t len, cairn_buf_t *result)
{
    return submit(l, NULL, cmd, len, result);
}

int meta_log_submit_once(meta_log_t *l, const uint8_t id[16], const uint8_t *cmd, size_t len, cairn_buf_t *result)
{
    return submit(l, id, cmd, len, result);
}

int meta_log_barrier(meta_log_t *l)
{
    pthread_mutex_lock(&l->mu);
    int follower = l->role != CAIRN_META_ROLE_LEADER;
    pthread_mutex_unlock(&l->mu);
    if (follower)
        return CAIRN_ENOTLEADER;
    return job_run(l, job_new(J_BARRIER), JOB_TIMEOUT_MS, NULL, NULL);
}

void meta_log_leader(meta_log_t *l, uint64_t *id, char addr[128])
{
    pthread_mutex_lock(&l->mu);
    *id = l->leader_id;
    memcpy(addr, l->leader_addr, 128);
    pthread_mutex_unlock(&l->mu);
}

int meta_log_status(meta_log_t *l, cairn_meta_status_t *st)
{
    return job_run(l, job_new(J_STATUS), JOB_TIMEOUT_MS, NULL, st);
}

int meta_log_add(meta_log_t *l, uint64_t id, const char *addr, const char *raft_addr, int timeout_ms)
{
    if (id == 0 || strlen(addr) >= 128 || strlen(raft_addr) >= 128 || !addr[0] || !raft_addr[0])
        return CAIRN_EINVAL;
    job_t *j = job_new(J_ADD);
    j->id = id;
    snprintf(j->addr, sizeof j->addr, "%s", addr);
    snprintf(j->raft_addr, sizeof j->raft_addr, "%s", raft_addr);
    return job_run(l, j, timeout_ms, NULL, NULL);
}

int meta_log_remove(meta_log_t *l, uint64_t id, int timeout_ms)
{
    job_t *j = job_new(J_REMOVE);
    j->id = id;
    return job_run(l, j, timeout_ms, NULL, NULL);
}

int meta_log_transfer(meta_log_t *l, uint64_t id, int timeout_ms)
{
    job_t *j = job_new(J_TRANSFER);
    j->id = id;
    return job_run(l, j, timeout_ms, NULL, NULL);
}
