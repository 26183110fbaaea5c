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

/* The row of replica id, else of address addr (either may be 0 / NULL). */
static admin_replica_t *find_row(admin_replica_t *rows, size_t n, uint64_t id, const char *addr)
{
    for (size_t i = 0; i < n; i++)
        if (id && rows[i].id == id)
            return &rows[i];
    for (size_t i = 0; i < n; i++)
        if (addr && addr[0] && strcmp(rows[i].addr, addr) == 0)
            return &rows[i];
    return NULL;
}

/* Fold rows that turned out to be the same replica (a configured address
 * that answered with an id a member list had already reported) into the
 * first of them: the one that answered keeps its view. */
static size_t merge_rows(admin_replica_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n;) {
            if (rows[i].id == 0 || rows[j].id != rows[i].id) {
                j++;
                continue;
            }
            if (!rows[i].answered && rows[j].answered) {
                char addr[128];
                memcpy(addr, rows[i].addr, sizeof addr);
                rows[i] = rows[j];
                if (rows[i].addr[0] == '\0')
                    memcpy(rows[i].addr, addr, sizeof addr);
            } else if (rows[i].addr[0] == '\0') {
                memcpy(rows[i].addr, rows[j].addr, sizeof rows[i].addr);
            }
            memmove(&rows[j], &rows[j + 1], (n - j - 1) * sizeof rows[0]);
            n--;
        }
    return n;
}

size_t admin_meta_replicas(admin_t *a, admin_replica_t *rows, int *leader)
{
    size_t n = 0;
    char list[CAIRN_CFG_MAX_META][128];
    int nl = cairn_cfg_split_addrs(a->cfg.meta_addr, list, CAIRN_CFG_MAX_META);
    for (int i = 0; i < nl; i++) {
        memset(&rows[n], 0, sizeof rows[n]);
        memcpy(rows[n].addr, list[i], 128);
        for (size_t k = 0; k < a->cfg.nmetas; k++)
            if (strcmp(a->cfg.metas[k].addr, list[i]) == 0)
                rows[n].id = a->cfg.metas[k].id;
        n++;
    }
    /* Ask each row once; members reported by a replica that no row holds
     * yet (by id, else by address) become new rows, asked in a later pass. */
    for (size_t i = 0; i < n; i++) {
        admin_replica_t *r = &rows[i];
        if (r->addr[0] && ask_status(a, r->addr, &r->st) == 0) {
            r->answered = 1;
            r->id = r->st.id;
        }
        if (!r->answered)
            continue;
        for (size_t k = 0; k < r->st.nmembers; k++) {
            const char *maddr = r->st.members[k].addr;
            admin_replica_t *o = find_row(rows, n, r->st.members[k].id, maddr);
            if (o == NULL && n < ADMIN_MAX_REPLICAS) {
                o = &rows[n++];
                memset(o, 0, sizeof *o);
            }
            if (o == NULL)
                continue;
            if (o->id == 0)
                o->id = r->st.members[k].id;
            if (o->addr[0] == '\0')
                memcpy(o->addr, maddr, 128);
        }
    }
    n = merge_rows(rows, n);
    /* The leader's view of the membership decides who is a member. */
    int lead = -1;
    for (size_t i = 0; i < n; i++)
        if (rows[i].answered && rows[i].st.role == CAIRN_META_ROLE_LEADER &&
            (lead < 0 || rows[i].st.term > rows[lead].st.term))
            lead = (int)i;
    for (size_t i = 0; i < n; i++) {
        admin_replica_t *r = &rows[i];
        r->member = lead < 0;
        r->kind = lead < 0 ? "voter" : "not a member";
        const cairn_meta_status_t *ls = lead < 0 ? NULL : &rows[lead].st;
        for (size_t k = 0; ls && k < ls->nmembers; k++)
            if (ls->members[k].id == r->id) {
                r->member = 1;
                r->kind = ls->members[k].kind == CAIRN_META_MEMBER_VOTER   ? "voter"
                          : ls->members[k].kind == CAIRN_META_MEMBER_SPARE ? "spare"
                                                                           : "standby";
            }
    }
    *leader = lead;
    return n;
}

void admin_meta_replicas_print(admin_t *a, const admin_replica_t *rows, size_t n)
{
    if (a->json)
        printf("[");
    else
        printf("%-4s %-22s %-12s %8s %10s %10s\n", "ID", "ADDRESS", "ROLE", "TERM", "COMMIT", "APPLIED");
    for (size_t i = 0; i < n; i++) {
        const admin_replica_t *r = &rows[i];
        const char *role = r->answered ? cairn_meta_role_name(r->st.role) : "unreachable";
        /* the table names only what is unusual */
        const char *note = strcmp(r->kind, "voter") == 0 ? "" : r->kind;
        if (a->json) {
            printf("%s{\"id\":%llu,\"address\":", i ? "," : "", (unsigned long long)r->id);
            admin_json_str(r->addr);
            printf(",\"role\":\"%s\"", role);
            if (r->answered)
                printf(",\"term\":%llu,\"commit\":%llu,\"applied\":%llu,\"snapshot\":%llu",
                       (unsigned long long)r->st.term, (unsigned long long)r->st.commit,
                       (unsigned long long)r->st.applied, (unsigned long long)r->st.snapshot_index);
            printf(",\"member\":%s,\"kind\":\"%s\"}", r->member ? "true" : "false", r->kind);
        } else if (r->answered) {
            printf("%-4llu %-22s %-12s %8llu %10llu %10llu%s%s\n", (unsigned long long)r->id, r->addr, role,
                   (unsigned long long)r->st.term, (unsigned long long)r->st.commit,
                   (unsigned long long)r->st.applied, note[0] ? "  " : "", note);
        } else {
            char id[24] = "?";
            if (r->id)
                snprintf(id, sizeof id, "%llu", (unsigned long long)r->id);
            printf("%-4s %-22s %-12s %8s %10s %10s%s%s\n", id, r->addr[0] ? r->addr : "?", role, "-", "-", "-",
                   note[0] ? "  " : "", note);
        }
    }
    if (a->json)
        printf("]");
}

static int cmd_status(admin_t *a)
{
    static admin_replica_t rows[ADMIN_MAX_REPLICAS]; /* ~100 KiB */
    int lead;
    size_t n = admin_meta_replicas(a, rows, &lead);
    admin_meta_replicas_print(a, rows, n);
    if (a->json)
        printf("\n");
    return lead >= 0 ? 0 : 1;
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
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            meta_usage(stdout);
            return 0;
        }
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
