/*
 * scrub.c — the scrubber thread: passes over the fragment store, pacing,
 * and the persisted progress (see scrub.h).
 *
 * The pass state (in_pass, cursor, pass_start_ms, last_end_ms) belongs to
 * the thread that runs passes; the counters are atomics read by
 * NODE_SCRUB_STATUS on request threads. mu and cv serve only to sleep
 * until a deadline, a request (cairn_scrub_now) or destroy.
 *
 * Requests. now_req counts them (request threads); now_done is the
 * highest count n such that every fragment has been checked since request
 * n arrived (pass thread). A pass serves the count it started with
 * (pass_req) when it ends. A request noticed mid-pass, after fragment F
 * was checked, is served without waiting for a whole pass of its own: the
 * pass goes on to its end, checking everything after F after the request,
 * and the next pass, started at once, serves it when its cursor reaches F
 * again (the mark). While now_done < now_req the thread runs passes back
 * to back, paced at now_rate; once all are served the pass under way goes
 * on at the configured rate, or, with periodic scrubbing off, pauses at
 * its cursor until the next request.
 *
 * DIR/scrub.state, text, one item a line:
 *   cairn-scrub-state 1
 *   last_pass_end_ms <ms since the epoch, 0 = never>
 *   pass <start ms> <32 hex oid> <index>     (only while a pass is under way)
 */
#include "scrub.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn/err.h"
#include "cairn/log.h"

#define PAGE 4096                   /* fragments listed at once */
#define SAVE_EVERY_NS (60ll * 1000000000) /* cursor written at most this often */
#define EXPIRE_EVERY_MS (3600ll * 1000)
#define RETRY_MS (60ll * 1000)       /* after a pass failed to list the store */
#define STATE_FILE "scrub.state"
#define STATE_MAGIC "cairn-scrub-state 1"

struct cairn_scrub_s {
    cairn_fstore_t *st;
    cairn_scrub_opts_t o;
    char state_path[PATH_MAX];
    pthread_t thr;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* signalled by destroy and by requests */
    int stop;           /* under mu; also read without it as a hint */
    int kicked;         /* under mu: a request arrived since the thread last looked */
    /* token bucket, pass thread only */
    double tokens;
    int64_t tb_ns;
    /* pass state, pass thread only */
    int in_pass;
    uint8_t cur_oid[16];
    unsigned cur_index;
    int64_t pass_start_ms;
    int64_t saved_ns;
    uint64_t pass_req;  /* now_req when this pass started: served at its end */
    uint64_t seen_req;  /* requests accounted for (pass_req or the mark) */
    int marked;         /* a mark is pending (see top) */
    int mark_armed;     /* a later pass than the mark's: reaching it serves mark_req */
    uint8_t mark_oid[16];
    unsigned mark_index;
    uint64_t mark_req;
    /* counters: atomics */
    uint64_t passes, fragments, bytes, bad, progress;
    int64_t last_end_ms;
    uint64_t now_req, now_done; /* requests accepted; served (see top) */
    uint64_t now_rate;          /* bytes/s while a request waits (0: unlimited) */
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int stopping(cairn_scrub_t *s)
{
    return __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
}

/* Sleep until the monotonic time deadline_ns or destroy, or also until a
 * request when kick is set (not while pacing: a request must not cut the
 * pacing short). CAIRN_EUNAVAIL if stopping. */
static int sleep_until(cairn_scrub_t *s, int64_t deadline_ns, int kick)
{
    struct timespec ts = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};
    pthread_mutex_lock(&s->mu);
    while (!s->stop && !(kick && s->kicked) && mono_ns() < deadline_ns)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
            break;
    int stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop ? CAIRN_EUNAVAIL : 0;
}

/* Is a request waiting to be served? */
static int requested(cairn_scrub_t *s)
{
    return __atomic_load_n(&s->now_done, __ATOMIC_ACQUIRE) < __atomic_load_n(&s->now_req, __ATOMIC_ACQUIRE);
}

/* Requests up to n are served (pass thread only; now_done never goes back). */
static void serve_upto(cairn_scrub_t *s, uint64_t n)
{
    if (n <= __atomic_load_n(&s->now_done, __ATOMIC_RELAXED))
        return;
    __atomic_store_n(&s->now_done, n, __ATOMIC_RELEASE);
    cairn_log(CAIRN_LOG_INFO, 0, "scrub: every fragment checked since request #%llu", (unsigned long long)n);
}

/* ---- pacing: a token bucket that may run into debt, repaid by sleeping ---- */

static int pace_wait(void *ctx, size_t n)
{
    cairn_scrub_t *s = ctx;
    if (stopping(s))
        return CAIRN_EUNAVAIL;
    int asked = requested(s);
    if (!asked && !s->o.enabled)
        return CAIRN_EUNAVAIL; /* scrubbing is off and the requests are served: pause the pass here */
    /* A change of rate applies from the next read; the debt carries over. */
    uint64_t bps = asked ? __atomic_load_n(&s->now_rate, __ATOMIC_ACQUIRE) : s->o.rate_bps;
    if (bps == 0)
        return 0;
    double rate = (double)bps, burst = rate / 20;
    int64_t now = mono_ns();
    s->tokens += (double)(now - s->tb_ns) * rate / 1e9;
    s->tb_ns = now;
    if (s->tokens > burst)
        s->tokens = burst;
    s->tokens -= (double)n;
    if (s->tokens >= 0)
        return 0;
    return sleep_until(s, now + (int64_t)(-s->tokens / rate * 1e9), 0);
}

/* ---- state file ---- */

static void state_save(cairn_scrub_t *s)
{
    char tmp[PATH_MAX + 8], hex[33], text[256];
    int n;
    if (s->in_pass) {
        cairn_hex(s->cur_oid, 16, hex);
        n = snprintf(text, sizeof text, STATE_MAGIC "\nlast_pass_end_ms %lld\npass %lld %s %u\n",
                     (long long)s->last_end_ms, (long long)s->pass_start_ms, hex, s->cur_index);
    } else {
        n = snprintf(text, sizeof text, STATE_MAGIC "\nlast_pass_end_ms %lld\n", (long long)s->last_end_ms);
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", s->state_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int ok = fd >= 0 && write(fd, text, (size_t)n) == n && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = 0;
    if (ok && rename(tmp, s->state_path) == 0) {
        int dfd = open(cairn_fstore_dir(s->st), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        s->saved_ns = mono_ns();
        return;
    }
    cairn_log(CAIRN_LOG_WARN, 0, "cannot write %s: %s", s->state_path, strerror(errno));
    unlink(tmp);
}

static void state_load(cairn_scrub_t *s)
{
    FILE *f = fopen(s->state_path, "re");
    if (f == NULL) {
        if (errno != ENOENT)
            cairn_log(CAIRN_LOG_WARN, 0, "cannot read %s: %s", s->state_path, strerror(errno));
        return;
    }
    char line[160], hex[40];
    long long end = -1, start;
    unsigned index;
    int ok = fgets(line, sizeof line, f) != NULL && strcmp(line, STATE_MAGIC "\n") == 0 &&
             fgets(line, sizeof line, f) != NULL && sscanf(line, "last_pass_end_ms %lld", &end) == 1 && end >= 0;
    if (ok && fgets(line, sizeof line, f) != NULL) {
        ok = sscanf(line, "pass %lld %32s %u", &start, hex, &index) == 3 && strlen(hex) == 32 && index <= 255 &&
             cairn_unhex(hex, 16, s->cur_oid) == 0;
        if (ok) {
            s->in_pass = 1;
            s->pass_start_ms = start;
            s->cur_index = index;
        }
    }
    fclose(f);
    if (!ok) {
        cairn_log(CAIRN_LOG_WARN, 0, "%s is malformed: scrubbing as if never scrubbed", s->state_path);
        s->in_pass = 0;
        end = 0;
    }
    s->last_end_ms = end;
}

/* ---- passes ---- */

static void pass_begin(cairn_scrub_t *s)
{
    s->in_pass = 1;
    memset(s->cur_oid, 0, sizeof s->cur_oid);
    s->cur_index = 0;
    s->pass_start_ms = wall_ms();
    s->pass_req = __atomic_load_n(&s->now_req, __ATOMIC_ACQUIRE);
    if (s->pass_req > s->seen_req)
        s->seen_req = s->pass_req;
    s->mark_armed = s->marked;
    __atomic_store_n(&s->progress, 0, __ATOMIC_RELAXED);
    cairn_log(CAIRN_LOG_DEBUG, 0, "scrub pass starts");
}

static void pass_end(cairn_scrub_t *s)
{
    int64_t now = wall_ms();
    uint64_t n = __atomic_load_n(&s->progress, __ATOMIC_RELAXED);
    s->in_pass = 0;
    __atomic_store_n(&s->last_end_ms, now, __ATOMIC_RELAXED);
    __atomic_store_n(&s->progress, 0, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->passes, 1, __ATOMIC_RELAXED);
    serve_upto(s, s->pass_req); /* after the counters above */
    if (s->marked && s->mark_req <= s->pass_req)
        s->marked = 0; /* served by this whole pass (its fragment was gone, or nothing followed it) */
    state_save(s);
    cairn_log(CAIRN_LOG_INFO, 0, "scrub pass done: %llu fragments in %.1f s",
              (unsigned long long)n, (double)(now - s->pass_start_ms) / 1000);
}

static int key_cmp(const uint8_t a[16], unsigned ai, const uint8_t b[16], unsigned bi)
{
    int c = memcmp(a, b, 16);
    return c ? c : (ai > bi) - (ai < bi);
}

/* After fragment e was checked: serve the mark once the cursor is back at
 * it, and mark at e a request that arrived since the last look (e itself
 * may have been read before it arrived, so it is re-checked). */
static void note_requests(cairn_scrub_t *s, const cairn_fstore_ent_t *e)
{
    if (s->marked && s->mark_armed && key_cmp(e->oid, e->index, s->mark_oid, s->mark_index) >= 0) {
        serve_upto(s, s->mark_req);
        s->marked = 0;
    }
    uint64_t req = __atomic_load_n(&s->now_req, __ATOMIC_ACQUIRE);
    if (req > s->seen_req) {
        s->seen_req = req;
        s->marked = 1;
        s->mark_armed = 0;
        memcpy(s->mark_oid, e->oid, 16);
        s->mark_index = e->index;
        s->mark_req = req;
    }
}

/* Check one fragment; CAIRN_EUNAVAIL when stopping or pausing. */
static int check_one(cairn_scrub_t *s, const cairn_fstore_ent_t *e, const cairn_fstore_pace_t *pace)
{
    uint64_t bytes;
    unsigned reason;
    int rc = cairn_fstore_verify(s->st, e->oid, e->index, pace, &bytes, &reason);
    __atomic_add_fetch(&s->bytes, bytes, __ATOMIC_RELAXED);
    if (rc == CAIRN_EUNAVAIL)
        return rc;
    if (rc == 0 || rc == CAIRN_ECORRUPT) {
        __atomic_add_fetch(&s->fragments, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&s->progress, 1, __ATOMIC_RELAXED);
    }
    if (rc == CAIRN_ECORRUPT)
        __atomic_add_fetch(&s->bad, 1, __ATOMIC_RELAXED);
    else if (rc != 0 && rc != CAIRN_ENOTFOUND) {
        char hex[33];
        cairn_hex(e->oid, 16, hex);
        cairn_log(CAIRN_LOG_WARN, 0, "scrub: cannot check %s.%u: %s", hex, e->index, cairn_strerror(rc));
    }
    memcpy(s->cur_oid, e->oid, 16);
    s->cur_index = e->index;
    note_requests(s, e);
    return 0;
}

int cairn_scrub_pass(cairn_scrub_t *s)
{
    cairn_fstore_pace_t pace = {pace_wait, s};
    cairn_fstore_ent_t *ents = cairn_malloc(PAGE * sizeof(*ents));
    int rc = 0, more = 1;
    if (!s->in_pass)
        pass_begin(s);
    s->tb_ns = mono_ns();
    s->tokens = 0;
    while (more && rc == 0) {
        size_t n;
        rc = cairn_fstore_list(s->st, s->cur_oid, s->cur_index, PAGE, ents, &n, &more);
        if (rc != 0) {
            cairn_log(CAIRN_LOG_ERROR, 0, "scrub: cannot list the fragments: %s", cairn_strerror(rc));
            break;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = check_one(s, &ents[i], &pace);
            if (mono_ns() - s->saved_ns > SAVE_EVERY_NS)
                state_save(s);
        }
    }
    free(ents);
    if (rc == 0)
        pass_end(s);
    return rc == CAIRN_EUNAVAIL ? 0 : rc;
}

/* ---- the thread ---- */

static void expire(cairn_scrub_t *s)
{
    cairn_fstore_expire_quarantine(s->st, wall_ms() - s->o.keep_ms);
}

static void *scrub_main(void *arg)
{
    cairn_scrub_t *s = arg;
    int64_t next_expire = mono_ns();
    while (!stopping(s)) {
        pthread_mutex_lock(&s->mu);
        s->kicked = 0; /* before looking at the requests: a later one kicks again */
        pthread_mutex_unlock(&s->mu);
        int64_t now = mono_ns(), wake;
        if (now >= next_expire) {
            expire(s);
            next_expire = now + EXPIRE_EVERY_MS * 1000000;
        }
        wake = next_expire;
        int asked = requested(s);
        if (s->o.enabled || asked) {
            int64_t wall = wall_ms(), last = __atomic_load_n(&s->last_end_ms, __ATOMIC_RELAXED);
            if (last > wall)
                last = wall; /* the clock went back */
            int64_t due = s->in_pass || last == 0 || asked ? wall : last + s->o.interval_ms;
            if (wall >= due) {
                if (cairn_scrub_pass(s) != 0)
                    sleep_until(s, mono_ns() + RETRY_MS * 1000000, 1);
                continue;
            }
            if (now + (due - wall) * 1000000 < wake)
                wake = now + (due - wall) * 1000000;
        }
        sleep_until(s, wake, 1);
    }
    return NULL;
}

cairn_scrub_t *cairn_scrub_create(cairn_fstore_t *st, const cairn_scrub_opts_t *o)
{
    cairn_scrub_t *s = cairn_calloc(1, sizeof(*s));
    s->st = st;
    s->o = *o;
    snprintf(s->state_path, sizeof s->state_path, "%s/" STATE_FILE, cairn_fstore_dir(st));
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->saved_ns = mono_ns();
    state_load(s);
    return s;
}

int cairn_scrub_start(cairn_scrub_t *s)
{
    int rc = pthread_create(&s->thr, NULL, scrub_main, s);
    if (rc != 0)
        return -rc;
    s->started = 1;
    if (s->o.enabled)
        cairn_log(CAIRN_LOG_INFO, 0, "scrubber: %s, %lld s between passes%s",
                  s->o.rate_bps ? "rate-limited" : "unlimited rate", (long long)(s->o.interval_ms / 1000),
                  s->in_pass ? ", resuming the pass under way" : "");
    return 0;
}

int cairn_scrub_now(cairn_scrub_t *s, uint64_t rate_bps)
{
    if (rate_bps == 0 && !s->o.enabled)
        return CAIRN_EINVAL;
    if (rate_bps == 0)
        rate_bps = s->o.rate_bps;
    pthread_mutex_lock(&s->mu);
    __atomic_store_n(&s->now_rate, rate_bps, __ATOMIC_RELEASE); /* before the request is seen */
    uint64_t n = __atomic_add_fetch(&s->now_req, 1, __ATOMIC_ACQ_REL);
    s->kicked = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (rate_bps)
        cairn_log(CAIRN_LOG_INFO, 0, "scrub pass requested (#%llu): reading at %.0f MB/s until it is done",
                  (unsigned long long)n, (double)rate_bps / 1e6);
    else
        cairn_log(CAIRN_LOG_INFO, 0, "scrub pass requested (#%llu): reading at an unlimited rate until it is done",
                  (unsigned long long)n);
    return 0;
}

void cairn_scrub_status(cairn_scrub_t *s, cairn_node_scrub_status_t *out)
{
    out->passes = __atomic_load_n(&s->passes, __ATOMIC_RELAXED);
    out->fragments_checked = __atomic_load_n(&s->fragments, __ATOMIC_RELAXED);
    out->bytes_checked = __atomic_load_n(&s->bytes, __ATOMIC_RELAXED);
    out->bad_found = __atomic_load_n(&s->bad, __ATOMIC_RELAXED);
    out->last_pass_end_ms = __atomic_load_n(&s->last_end_ms, __ATOMIC_RELAXED);
    out->pass_progress_fragments = __atomic_load_n(&s->progress, __ATOMIC_RELAXED);
    out->now_done = __atomic_load_n(&s->now_done, __ATOMIC_ACQUIRE);
    out->now_requested = __atomic_load_n(&s->now_req, __ATOMIC_ACQUIRE);
}

void cairn_scrub_destroy(cairn_scrub_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->started)
        pthread_join(s->thr, NULL);
    if (s->in_pass)
        state_save(s);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
