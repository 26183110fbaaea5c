/*
 * meta_cmd.c — `cairn-admin meta ...`: the metadata replicas.
 *
 *   status                      one line per replica: id, address, role, term,
 *                               commit index, applied index (exit 1 without a leader)
 *   add ID ADDR RAFT_ADDR       add a replica (running with --join) and promote it
 *                               to voter once it has caught up
 *   remove ID                   drop a replica from the group
 *   transfer [ID]               hand leadership to ID (default: any caught-up voter)
 *   bench [-n N] [-c C]         N object-record commits from C threads straight to
 *                               the metadata tier: commits/s and latency (records
 *                               go to bucket "cairn-meta-bench"; they name no data)
 *
 * status asks every replica it knows of (the [cluster] meta list, then the
 * members the others report) directly, without redirects, so it shows each
 * replica's own view; a replica that does not answer is "unreachable".
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "admin.h"
#include "cairn/err.h"
#include "cairn/meta.h"

#define STATUS_TIMEOUT_MS 2000
#define CHANGE_TIMEOUT_MS 70000 /* the service allows a change 60 s */

static void meta_usage(FILE *out)
{
    fprintf(out, "usage: cairn-admin meta status\n"
                 "       cairn-admin meta add ID ADDR RAFT_ADDR\n"
                 "       cairn-admin meta remove ID\n"
                 "       cairn-admin meta transfer [ID]\n"
                 "       cairn-admin meta bench [-n N] [-c CONCURRENCY]\n");
}

static int parse_id(const char *s, uint64_t *id)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno || v == 0 || s[0] == '-')
        return -1;
    *id = v;
    return 0;
}

/* ---- status ---- */

typedef struct {
    char addr[128];
    uint64_t id;     /* 0 until known */
    int answered;
    cairn_meta_status_t st;
} row_t;

static int ask_status(admin_t *a, const char *addr, cairn_meta_status_t *st)
{
    cairn_conn_t c;
    cairn_conn_init(&c, addr, a->key, STATUS_TIMEOUT_MS);
    cairn_buf_t resp;
    cairn_buf_init(&resp);
    int32_t status = 0;
    int rc = cairn_conn_call(&c, CAIRN_OP_META_STATUS, 0, NULL, 0, &resp, &status);
    if (rc == 0)
        rc = status;
    if (rc == 0)
        rc = cairn_meta_status_decode(resp.base, resp.len, st);
    cairn_buf_dispose(&resp);
    cairn_conn_dispose(&c);
    return rc;
}

static row_t *find_row(row_t *rows, size_t n, uint64_t id, const char *addr)
{
    for (size_t i = 0; i < n; i++)
        if ((id && rows[i].id == id) || (addr && addr[0] && strcmp(rows[i].addr, addr) == 0))
            return &rows[i];
    return NULL;
}

static int cmd_status(admin_t *a)
{
    enum { MAXROWS = CAIRN_META_MAX_MEMBERS + CAIRN_CFG_MAX_META };
    row_t rows[MAXROWS];
    size_t n = 0;
    char list[CAIRN_CFG_MAX_META][128];
    int nl = cairn_cfg_split_addrs(a->cfg.meta_addr, list, CAIRN_CFG_MAX_META);
    for (int i = 0; i < nl; i++) {
        memset(&rows[n], 0, sizeof rows[n]);
        memcpy(rows[n].addr, list[i], 128);
        const cairn_cfg_meta_t *m = NULL;
        for (size_t k = 0; k < a->cfg.nmetas && m == NULL; k++)
            if (strcmp(a->cfg.metas[k].addr, list[i]) == 0)
                m = &a->cfg.metas[k];
        rows[n].id = m ? m->id : 0;
        n++;
    }
    /* Ask each row once; members reported by a replica that we do not know
     * yet become new rows (asked in a later pass). */
    for (size_t i = 0; i < n; i++) {
        row_t *r = &rows[i];
        if (ask_status(a, r->addr, &r->st) == 0) {
            r->answered = 1;
            r->id = r->st.id;
        }
        if (!r->answered)
            continue;
        for (size_t k = 0; k < r->st.nmembers; k++) {
            row_t *o = find_row(rows, n, r->st.members[k].id, NULL);
            if (o == NULL && n < MAXROWS) {
                o = &rows[n++];
                memset(o, 0, sizeof *o);
                o->id = r->st.members[k].id;
            }
            if (o && o->addr[0] == '\0')
                memcpy(o->addr, r->st.members[k].addr, 128);
        }
    }
    /* The leader's view of the membership decides who is a member. */
    const cairn_meta_status_t *lead = NULL;
    for (size_t i = 0; i < n; i++)
        if (rows[i].answered && rows[i].st.role == CAIRN_META_ROLE_LEADER &&
            (lead == NULL || rows[i].st.term > lead->term))
            lead = &rows[i].st;
    if (a->json)
        printf("[");
    else
        printf("%-4s %-22s %-12s %8s %10s %10s\n", "ID", "ADDRESS", "ROLE", "TERM", "COMMIT", "APPLIED");
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        row_t *r = &rows[i];
        const char *kind = "";
        int member = lead == NULL;
        for (size_t k = 0; lead && k < lead->nmembers; k++)
            if (lead->members[k].id == r->id) {
                member = 1;
                kind = lead->members[k].kind == CAIRN_META_MEMBER_VOTER   ? ""
                       : lead->members[k].kind == CAIRN_META_MEMBER_SPARE ? "spare"
                                                                           : "standby";
            }
        if (!member)
            kind = "not a member";
        const char *role = r->answered ? cairn_meta_role_name(r->st.role) : "unreachable";
        if (a->json) {
            printf("%s{\"id\":%llu,\"address\":\"%s\",\"role\":\"%s\"", first ? "" : ",", (unsigned long long)r->id,
                   r->addr, role);
            if (r->answered)
                printf(",\"term\":%llu,\"commit\":%llu,\"applied\":%llu,\"snapshot\":%llu",
                       (unsigned long long)r->st.term, (unsigned long long)r->st.commit,
                       (unsigned long long)r->st.applied, (unsigned long long)r->st.snapshot_index);
            printf(",\"member\":%s,\"kind\":\"%s\"}", member ? "true" : "false", kind[0] ? kind : "voter");
        } else if (r->answered) {
            printf("%-4llu %-22s %-12s %8llu %10llu %10llu%s%s\n", (unsigned long long)r->id, r->addr, role,
                   (unsigned long long)r->st.term, (unsigned long long)r->st.commit,
                   (unsigned long long)r->st.applied, kind[0] ? "  " : "", kind);
        } else {
            char id[24] = "?";
            if (r->id)
                snprintf(id, sizeof id, "%llu", (unsigned long long)r->id);
            printf("%-4s %-22s %-12s %8s %10s %10s%s%s\n", id, r->addr[0] ? r->addr : "?", role, "-", "-", "-",
                   kind[0] ? "  " : "", kind);
        }
        first = 0;
    }
    if (a->json)
        printf("]\n");
    return lead ? 0 : 1;
}

/* ---- membership ---- */

static int change(admin_t *a, uint16_t op, const cairn_buf_t *body, const char *what)
{
    cairn_meta_client_t c;
    cairn_meta_client_init(&c, a->cfg.meta_addr, a->key, CHANGE_TIMEOUT_MS);
    cairn_buf_t resp;
    cairn_buf_init(&resp);
    int rc = cairn_meta_call(&c, op, 0, body->base, body->len, &resp);
    cairn_buf_dispose(&resp);
    cairn_meta_client_dispose(&c);
    if (rc != 0) {
        fprintf(stderr, "cairn-admin: %s: %s\n", what, cairn_strerror(rc));
        return 1;
    }
    printf("%s: done\n", what);
    return 0;
}

/* ---- bench ---- */

typedef struct {
    admin_t *a;
    int index, ops;
    double *lat_ms; /* ops entries */
    int failed;
    int first_err;
} bench_worker_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *bench_run(void *arg)
{
    bench_worker_t *w = arg;
    cairn_meta_client_t c;
    cairn_meta_client_init(&c, w->a->cfg.meta_addr, w->a->key, w->a->cfg.io_timeout_ms);
    cairn_buf_t scratch;
    cairn_buf_init(&scratch);
    cairn_obj_rec_t rec, old;
    memset(&rec, 0, sizeof rec);
    rec.size = 4096;
    rec.k = 4;
    rec.m = 2;
    rec.block_size = 256 * 1024;
    for (int i = 0; i < 6; i++)
        rec.nodes[i] = (uint32_t)i + 1;
    snprintf(rec.etag, sizeof rec.etag, "0123456789abcdef0123456789abcdef");
    rec.content_type = "application/octet-stream";
    rec.content_type_len = strlen(rec.content_type);
    for (int i = 0; i < w->ops; i++) {
        char key[64];
        int had_old;
        snprintf(key, sizeof key, "w%d/%08d", w->index, i);
        RAND_bytes(rec.oid, sizeof rec.oid);
        double t0 = now_s();
        int rc = cairn_meta_obj_put(&c, 0, "cairn-meta-bench", key, strlen(key), &rec, &scratch, &had_old, &old);
        w->lat_ms[i] = (now_s() - t0) * 1000;
        if (rc != 0) {
            if (w->failed++ == 0)
                w->first_err = rc;
        }
    }
    cairn_buf_dispose(&scratch);
    cairn_meta_client_dispose(&c);
    return NULL;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static int cmd_bench(admin_t *a, int total, int conc)
{
    cairn_meta_client_t c;
    cairn_meta_client_init(&c, a->cfg.meta_addr, a->key, a->cfg.io_timeout_ms);
    int rc = cairn_meta_bucket_create(&c, 0, "cairn-meta-bench", a->cfg.access_key);
    cairn_meta_client_dispose(&c);
    if (rc != 0 && rc != CAIRN_EOWNED) {
        fprintf(stderr, "cairn-admin: create bucket cairn-meta-bench: %s\n", cairn_strerror(rc));
        return 1;
    }
    bench_worker_t *w = calloc((size_t)conc, sizeof *w);
    pthread_t *t = calloc((size_t)conc, sizeof *t);
    double *lat = calloc((size_t)total, sizeof *lat);
    int off = 0;
    for (int i = 0; i < conc; i++) {
        w[i] = (bench_worker_t){.a = a, .index = i, .ops = total / conc + (i < total % conc), .lat_ms = lat + off};
        off += w[i].ops;
    }
    double t0 = now_s();
    for (int i = 0; i < conc; i++)
        pthread_create(&t[i], NULL, bench_run, &w[i]);
    int failed = 0, first_err = 0;
    for (int i = 0; i < conc; i++) {
        pthread_join(t[i], NULL);
        if (w[i].failed && !failed)
            first_err = w[i].first_err;
        failed += w[i].failed;
    }
    double secs = now_s() - t0;
    qsort(lat, (size_t)total, sizeof *lat, cmp_double);
    double p50 = lat[total / 2], p99 = lat[(size_t)((double)total * 0.99)], max = lat[total - 1];
    if (a->json)
        printf("{\"ops\":%d,\"concurrency\":%d,\"seconds\":%.3f,\"commits_per_s\":%.0f,\"p50_ms\":%.2f,"
               "\"p99_ms\":%.2f,\"max_ms\":%.2f,\"failed\":%d}\n",
               total, conc, secs, total / secs, p50, p99, max, failed);
    else
        printf("meta bench: %d commits from %d threads in %.2f s: %.0f commits/s, latency p50 %.2f ms, p99 %.2f ms, "
               "max %.2f ms, %d failed%s%s\n",
               total, conc, secs, total / secs, p50, p99, max, failed, failed ? ": " : "",
               failed ? cairn_strerror(first_err) : "");
    free(w);
    free(t);
    free(lat);
    return failed ? 1 : 0;
}

/* ---- entry ---- */

int admin_meta(admin_t *a, int argc, char **argv)
{
    if (argc < 2) {
        meta_usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    uint64_t id = 0;
    cairn_buf_t body;
    cairn_buf_init(&body);
    int rc = 2;
    if (strcmp(cmd, "status") == 0 && argc == 2) {
        rc = cmd_status(a);
    } else if (strcmp(cmd, "add") == 0 && argc == 5 && parse_id(argv[2], &id) == 0) {
        cairn_buf_put_u64(&body, id);
        cairn_buf_put_str(&body, argv[3]);
        cairn_buf_put_str(&body, argv[4]);
        char what[300];
        snprintf(what, sizeof what, "add replica %llu (%s, raft %s)", (unsigned long long)id, argv[3], argv[4]);
        rc = change(a, CAIRN_OP_META_MEMBER_ADD, &body, what);
    } else if (strcmp(cmd, "remove") == 0 && argc == 3 && parse_id(argv[2], &id) == 0) {
        cairn_buf_put_u64(&body, id);
        char what[64];
        snprintf(what, sizeof what, "remove replica %llu", (unsigned long long)id);
        rc = change(a, CAIRN_OP_META_MEMBER_REMOVE, &body, what);
    } else if (strcmp(cmd, "transfer") == 0 && (argc == 2 || (argc == 3 && parse_id(argv[2], &id) == 0))) {
        cairn_buf_put_u64(&body, id);
        char what[64];
        snprintf(what, sizeof what, "transfer leadership to %s", argc == 3 ? argv[2] : "any voter");
        rc = change(a, CAIRN_OP_META_TRANSFER, &body, what);
    } else if (strcmp(cmd, "bench") == 0) {
        int n = 10000, c = 32, ok = 1;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
                n = atoi(argv[++i]);
            else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
                c = atoi(argv[++i]);
            else
                ok = 0;
        }
        if (ok && n > 0 && c > 0 && c <= 1024)
            rc = cmd_bench(a, n, c < n ? c : n);
        else
            meta_usage(stderr);
    } else {
        meta_usage(stderr);
    }
    cairn_buf_dispose(&body);
    return rc;
}
