/*
 * node_cmd.c — `cairn-admin node ...`: the storage nodes of the cluster map
 * (cairn/meta_map.h).
 *
 *   list                          the map: epoch, k+m, each node's id,
 *                                 address, zone, weight and state
 *   add ADDR [--zone Z] [--weight W] [--id N] [--force]
 *                                 put a running node into the map; its id
 *                                 is the one the node answers with (its
 *                                 --id), else N, else the next free id
 *   drain ID                      no new fragments; rebalance moves its own away
 *   undrain ID                    back to up
 *   out ID                        a dead disk: neither written nor read;
 *                                 rebalance rebuilds its fragments elsewhere
 *   weight ID W                   a new placement weight
 *   remove ID [--force]           drop it from the map; refused while the
 *                                 node still holds fragments or cannot be
 *                                 asked, unless --force (then a warning
 *                                 says what the cluster loses)
 *
 * Every command checks its arguments before it asks anything, then checks
 * them against the map, so a refusal names its reason in words rather than
 * as the metadata tier's error code; the tier still decides (two admins at
 * once), and its refusals get the same words. Weights are decimals with up
 * to three places (1.5 -> weight_milli 1500). Exit status: 0 done (or
 * nothing to do), 1 refused or failed, 2 bad usage.
 *
 * Also here, for status_cmd.c: probing nodes, JSON strings, number formats.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "cairn/err.h"

#define PROBE_TIMEOUT_MS 2000
#define WEIGHT_MILLI_MAX 1000000000u /* 1,000,000: the largest weight a configuration takes */

static const char node_usage_text[] =
    "usage: cairn-admin [--json] node list\n"
    "       cairn-admin node add ADDR [--zone ZONE] [--weight W] [--id N] [--force]\n"
    "       cairn-admin node drain ID\n"
    "       cairn-admin node undrain ID\n"
    "       cairn-admin node out ID\n"
    "       cairn-admin node weight ID W\n"
    "       cairn-admin node remove ID [--force]\n"
    "\n"
    "  list     the cluster map: epoch, k+m, every node (--json: machine-readable)\n"
    "  add      put a running storage node at ADDR (host:port) into the map. Its id is\n"
    "           the one the node was started with (--id N must agree), else the next\n"
    "           free one; ids are never reused. ZONE is its failure domain (default\n"
    "           \"default\"), W its placement weight, a decimal > 0 (default 1).\n"
    "           --force adds a node that does not answer.\n"
    "  drain    no new fragments go to the node; `cairn-admin rebalance` moves its\n"
    "           fragments away; it stays readable meanwhile\n"
    "  undrain  the node is a placement target again\n"
    "  out      the node is lost (dead disk): neither written nor read; rebalance\n"
    "           rebuilds its fragments from the others\n"
    "  weight   set the node's placement weight W\n"
    "  remove   drop the node from the map; refused while it holds fragments or\n"
    "           cannot be asked; --force removes it anyway and says what is lost\n"
    "\n"
    "No change may leave fewer than k+m nodes up. Gateways pick every change up\n"
    "within seconds; existing fragments move only with `cairn-admin rebalance`.\n";

/* ---- helpers shared with status_cmd.c ---- */

void admin_json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

void admin_fmt_weight(uint32_t wm, char *out, size_t n)
{
    int len = snprintf(out, n, "%u.%03u", wm / 1000, wm % 1000);
    while (len > 0 && (size_t)len < n && out[len - 1] == '0')
        out[--len] = '\0';
    if (len > 0 && (size_t)len < n && out[len - 1] == '.')
        out[--len] = '\0';
}

void admin_fmt_bytes(uint64_t b, char *out, size_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, n, "%llu B", (unsigned long long)b);
    else
        snprintf(out, n, "%.1f %s", v, units[u]);
}

int admin_node_probe(admin_t *a, const char *addr, int timeout_ms, cairn_node_info_t *info)
{
    cairn_conn_t c;
    cairn_conn_init(&c, addr, a->key, timeout_ms);
    int32_t status = 0;
    int rc = cairn_conn_call(&c, CAIRN_OP_PING, 0, NULL, 0, NULL, &status);
    if (rc == 0)
        rc = status;
    if (rc == 0)
        rc = cairn_node_info(&c, info);
    cairn_conn_dispose(&c);
    return rc;
}

typedef struct {
    admin_t *a;
    const char *addr;
    int timeout_ms;
    int rc;
    cairn_node_info_t *info;
} probe_job_t;

static void *probe_main(void *arg)
{
    probe_job_t *j = arg;
    j->rc = admin_node_probe(j->a, j->addr, j->timeout_ms, j->info);
    return NULL;
}

void admin_node_probe_all(admin_t *a, const cairn_map_t *m, int timeout_ms, int *rc, cairn_node_info_t *info)
{
    probe_job_t *jobs = cairn_calloc(m->n ? m->n : 1, sizeof *jobs);
    pthread_t *tids = cairn_calloc(m->n ? m->n : 1, sizeof *tids);
    int *started = cairn_calloc(m->n ? m->n : 1, sizeof *started);
    for (size_t i = 0; i < m->n; i++) {
        memset(&info[i], 0, sizeof info[i]);
        jobs[i] = (probe_job_t){a, m->nodes[i].addr, timeout_ms, 0, &info[i]};
        started[i] = pthread_create(&tids[i], NULL, probe_main, &jobs[i]) == 0;
        if (!started[i])
            probe_main(&jobs[i]); /* out of threads: ask this one inline */
    }
    for (size_t i = 0; i < m->n; i++) {
        if (started[i])
            pthread_join(tids[i], NULL);
        rc[i] = jobs[i].rc;
    }
    free(jobs);
    free(tids);
    free(started);
}

/* ---- argument checks ---- */

/* A node id: a decimal in 1..UINT32_MAX-1. */
static int parse_node_id(const char *s, uint32_t *id)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno || v == 0 || v >= UINT32_MAX)
        return -1;
    *id = (uint32_t)v;
    return 0;
}

/* A weight as a decimal with at most three places, > 0: thousandths into
 * *wm, or NULL; else why it is not one. */
static const char *parse_weight(const char *s, uint32_t *wm)
{
    const char *p = s;
    uint64_t v = 0;
    int digits = 0, places = -1;
    if (*p == '-')
        return "a weight must be greater than 0";
    for (; *p; p++) {
        if (*p == '.' && places < 0) {
            places = 0;
            continue;
        }
        if (*p < '0' || *p > '9')
            return "a weight is a decimal number such as 1, 2.5 or 0.25";
        if (places >= 3) {
            if (*p != '0')
                return "a weight has at most three decimal places";
            continue;
        }
        v = v * 10 + (uint64_t)(*p - '0');
        digits++;
        if (places >= 0)
            places++;
        if (v > (uint64_t)WEIGHT_MILLI_MAX)
            return "a weight must be at most 1000000";
    }
    if (digits == 0)
        return "a weight is a decimal number such as 1, 2.5 or 0.25";
    for (int i = places < 0 ? 0 : places; i < 3; i++)
        v *= 10;
    if (v == 0)
        return "a weight must be greater than 0";
    if (v > WEIGHT_MILLI_MAX)
        return "a weight must be at most 1000000";
    *wm = (uint32_t)v;
    return NULL;
}

static int host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == '_';
}

/* HOST:PORT with a name or IPv4 host, or [IPv6]:PORT; NULL, or why not. */
static const char *check_addr(const char *s)
{
    if (strlen(s) >= CAIRN_MAP_ADDR_MAX)
        return "too long";
    const char *colon = strrchr(s, ':'), *host = s, *host_end;
    if (colon == NULL)
        return "expected HOST:PORT, e.g. 10.0.0.5:7200";
    if (s[0] == '[') {
        host_end = strchr(s, ']');
        if (host_end == NULL || host_end + 1 != colon)
            return "expected [IPv6]:PORT";
        host++;
        for (const char *p = host; p < host_end; p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F') || *p == ':' ||
                  *p == '.'))
                return "not an IPv6 address between the brackets";
    } else {
        host_end = colon;
        for (const char *p = host; p < host_end; p++)
            if (!host_char(*p))
                return *p == ':' ? "an IPv6 address needs brackets: [ADDR]:PORT"
                                 : "the host may hold letters, digits, '.', '-' and '_' only";
    }
    if (host_end == host)
        return "no host before the port";
    const char *port = colon + 1;
    char *end;
    errno = 0;
    unsigned long v = strtoul(port, &end, 10);
    if (port[0] < '0' || port[0] > '9' || *end != '\0' || errno || v == 0 || v > 65535)
        return "the port must be a number from 1 to 65535";
    return NULL;
}

static const char *check_zone(const char *z)
{
    size_t n = strlen(z);
    if (n == 0 || n >= CAIRN_MAP_ZONE_MAX)
        return "a zone is 1 to 63 characters";
    for (const char *p = z; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return "a zone holds no spaces or control characters";
    return NULL;
}

/* ---- the command line ---- */

enum { OPT_ZONE = 1, OPT_WEIGHT = 2, OPT_ID = 4, OPT_FORCE = 8 };

typedef struct {
    const char *cmd;
    const char *synopsis; /* "node add ADDR [...]" */
    const char *pos[3];
    int npos;
    const char *zone, *weight, *id;
    int force, help;
} nargs_t;

static int usage_error(const nargs_t *o, const char *fmt, const char *arg)
{
    fprintf(stderr, "cairn-admin: node %s: ", o->cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nusage: cairn-admin %s\n", o->synopsis);
    return 2;
}

/* argv[0] is the command. Options anywhere, as --opt VALUE or --opt=VALUE;
 * only those in allowed; --json sets a->json. 0, or the exit status 2. */
static int parse_args(admin_t *a, int argc, char **argv, unsigned allowed, int npos, const char *synopsis,
                      nargs_t *o)
{
    static const struct {
        const char *name;
        unsigned bit;
        int has_value;
    } opts[] = {{"zone", OPT_ZONE, 1}, {"weight", OPT_WEIGHT, 1}, {"id", OPT_ID, 1}, {"force", OPT_FORCE, 0}};
    memset(o, 0, sizeof *o);
    o->cmd = argv[0];
    o->synopsis = synopsis;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            o->help = 1;
            return 0;
        }
        if (strcmp(s, "--json") == 0) {
            a->json = 1;
            continue;
        }
        if (strncmp(s, "--", 2) != 0 || s[2] == '\0') {
            if (o->npos == npos || o->npos == 3)
                return usage_error(o, "unexpected argument '%s'", s);
            o->pos[o->npos++] = s;
            continue;
        }
        const char *name = s + 2, *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        size_t k;
        for (k = 0; k < sizeof opts / sizeof opts[0]; k++)
            if ((allowed & opts[k].bit) && strlen(opts[k].name) == nl && strncmp(opts[k].name, name, nl) == 0)
                break;
        if (k == sizeof opts / sizeof opts[0])
            return usage_error(o, "unknown option '%s'", s);
        const char *val = NULL;
        if (opts[k].has_value) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return usage_error(o, "%s needs a value", s);
        } else if (eq) {
            return usage_error(o, "%s takes no value", s);
        }
        switch (opts[k].bit) {
        case OPT_ZONE: o->zone = val; break;
        case OPT_WEIGHT: o->weight = val; break;
        case OPT_ID: o->id = val; break;
        default: o->force = 1; break;
        }
    }
    if (o->npos < npos)
        return usage_error(o, "%s", "missing argument");
    return 0;
}

/* ---- talking to the metadata tier ---- */

typedef struct {
    admin_t *a;
    cairn_meta_client_t mc;
    cairn_map_t map; /* large: the context is static */
} ctx_t;

static int ctx_open(ctx_t *c, admin_t *a)
{
    c->a = a;
    admin_meta_client(a, &c->mc);
    if (admin_map_load(a, &c->mc, &c->map) != 0) {
        cairn_meta_client_dispose(&c->mc);
        return -1;
    }
    return 0;
}

static void ctx_close(ctx_t *c) { cairn_meta_client_dispose(&c->mc); }

static const cairn_map_node_t *known_node(ctx_t *c, const char *cmd, uint32_t id)
{
    const cairn_map_node_t *n = cairn_map_node(&c->map, id);
    if (n == NULL)
        fprintf(stderr, "cairn-admin: node %s: there is no node %u in the cluster map (`cairn-admin node list` "
                        "shows the ids)\n", cmd, id);
    return n;
}

/* Would taking node n out of the up set leave fewer than k+m up? Then say
 * so and return 1. */
static int below_quorum(ctx_t *c, const char *cmd, const cairn_map_node_t *n, const char *verb)
{
    size_t up = cairn_map_count_up(&c->map), need = (size_t)c->map.k + c->map.m;
    if (n->state != CAIRN_NODE_UP || up - 1 >= need)
        return 0;
    fprintf(stderr,
            "cairn-admin: node %s: refused: %s node %u would leave %zu node%s up, fewer than the %zu (k+m = %u+%u) "
            "that every new object needs; add a node first\n",
            cmd, verb, n->id, up - 1, up - 1 == 1 ? "" : "s", need, c->map.k, c->map.m);
    return 1;
}

/* The tier's refusal of a change, in words. */
static int tier_error(ctx_t *c, const char *cmd, uint32_t id, int rc)
{
    switch (rc) {
    case CAIRN_ENOTFOUND:
        fprintf(stderr, "cairn-admin: node %s: there is no node %u in the cluster map (removed meanwhile?)\n", cmd,
                id);
        break;
    case CAIRN_ECONFLICT:
        fprintf(stderr, "cairn-admin: node %s: refused by the metadata tier: fewer than k+m = %u+%u nodes would "
                        "stay up (the map changed meanwhile?)\n", cmd, c->map.k, c->map.m);
        break;
    case CAIRN_EEXIST:
        fprintf(stderr, "cairn-admin: node %s: refused by the metadata tier: the id or the address is already in "
                        "the cluster map, or the id was used before (the map changed meanwhile?)\n", cmd);
        break;
    case CAIRN_EINVAL:
        fprintf(stderr, "cairn-admin: node %s: refused by the metadata tier: invalid address, zone, weight or id\n",
                cmd);
        break;
    default:
        fprintf(stderr, "cairn-admin: node %s: %s\n", cmd, cairn_strerror(rc));
    }
    return 1;
}

/* ---- list ---- */

static int cmd_list(ctx_t *c)
{
    const cairn_map_t *m = &c->map;
    char w[32];
    if (c->a->json) {
        printf("{\"epoch\":%llu,\"k\":%u,\"m\":%u,\"next_id\":%u,\"nodes\":[", (unsigned long long)m->epoch, m->k,
               m->m, m->next_id);
        for (size_t i = 0; i < m->n; i++) {
            const cairn_map_node_t *n = &m->nodes[i];
            admin_fmt_weight(n->weight_milli, w, sizeof w);
            printf("%s{\"id\":%u,\"addr\":", i ? "," : "", n->id);
            admin_json_str(n->addr);
            printf(",\"zone\":");
            admin_json_str(n->zone);
            printf(",\"weight\":%s,\"weight_milli\":%u,\"state\":\"%s\"}", w, n->weight_milli,
                   cairn_node_state_name(n->state));
        }
        printf("]}\n");
        return 0;
    }
    size_t count[3] = {0};
    for (size_t i = 0; i < m->n; i++)
        count[m->nodes[i].state]++;
    printf("cluster map epoch %llu, %u+%u erasure coding, %zu nodes: %zu up, %zu draining, %zu out\n",
           (unsigned long long)m->epoch, m->k, m->m, m->n, count[0], count[1], count[2]);
    printf("%-6s %-24s %-12s %8s  %s\n", "ID", "ADDRESS", "ZONE", "WEIGHT", "STATE");
    for (size_t i = 0; i < m->n; i++) {
        const cairn_map_node_t *n = &m->nodes[i];
        admin_fmt_weight(n->weight_milli, w, sizeof w);
        printf("%-6u %-24s %-12s %8s  %s\n", n->id, n->addr, n->zone, w, cairn_node_state_name(n->state));
    }
    return 0;
}

/* ---- add ---- */

/* May id be given to a new node? Else say why: addr is the node that
 * reported id as its own, or NULL when the id came from --id. */
static int id_free(ctx_t *c, uint32_t id, const char *addr)
{
    char who[200];
    if (addr)
        snprintf(who, sizeof who, "the node at %s was started as node %u", addr, id);
    else
        snprintf(who, sizeof who, "id %u", id);
    const cairn_map_node_t *n = cairn_map_node(&c->map, id);
    if (n) {
        fprintf(stderr, "cairn-admin: node add: %s, but node %u of the map is %s\n", who, id, n->addr);
        return 0;
    }
    if (id < c->map.next_id) {
        fprintf(stderr, "cairn-admin: node add: %s, an id used before; node ids are never reused: %s with a new id "
                        "(%u or above)\n", who, addr ? "restart the node" : "start the node", c->map.next_id);
        return 0;
    }
    return 1;
}

static int cmd_add(ctx_t *c, const nargs_t *o, uint32_t id, const char *zone, uint32_t wm)
{
    const char *addr = o->pos[0];
    for (size_t i = 0; i < c->map.n; i++)
        if (strcmp(c->map.nodes[i].addr, addr) == 0) {
            fprintf(stderr, "cairn-admin: node add: duplicate address: %s is node %u already\n", addr,
                    c->map.nodes[i].id);
            return 1;
        }
    if (id && !id_free(c, id, NULL))
        return 1;
    cairn_node_info_t info;
    int rc = admin_node_probe(c->a, addr, PROBE_TIMEOUT_MS, &info);
    if (rc == 0) {
        if (id && info.id != id) {
            fprintf(stderr, "cairn-admin: node add: the node at %s was started as node %u, not %u\n", addr, info.id,
                    id);
            return 1;
        }
        if (!id && !id_free(c, info.id, addr))
            return 1;
        id = info.id;
    } else if (!o->force) {
        fprintf(stderr, "cairn-admin: node add: cannot reach a storage node at %s: %s; start it first (or add it "
                        "anyway with --force)\n", addr, cairn_strerror(rc));
        return 1;
    } else {
        fprintf(stderr, "cairn-admin: node add: warning: no storage node answers at %s (%s); adding it anyway: "
                        "new objects will place fragments on it\n", addr, cairn_strerror(rc));
    }
    uint32_t new_id = 0;
    uint64_t epoch = 0;
    rc = cairn_meta_node_add(&c->mc, 0, id, addr, zone, wm, &new_id, &epoch);
    if (rc != 0)
        return tier_error(c, "add", id, rc);
    char w[32];
    admin_fmt_weight(wm, w, sizeof w);
    if (c->a->json) {
        printf("{\"id\":%u,\"addr\":", new_id);
        admin_json_str(addr);
        printf(",\"zone\":");
        admin_json_str(zone);
        printf(",\"weight\":%s,\"epoch\":%llu}\n", w, (unsigned long long)epoch);
    } else {
        printf("added node %u: %s, zone %s, weight %s (cluster map epoch %llu)\n", new_id, addr, zone, w,
               (unsigned long long)epoch);
        printf("new objects place fragments on it now; `cairn-admin rebalance` moves its share of the existing "
               "ones\n");
    }
    return 0;
}

/* ---- state and weight ---- */

static int print_change(ctx_t *c, const cairn_map_node_t *n, const char *what, uint64_t epoch, const char *hint)
{
    if (c->a->json) {
        printf("{\"id\":%u,\"state\":\"%s\",\"weight_milli\":%u,\"epoch\":%llu}\n", n->id,
               cairn_node_state_name(n->state), n->weight_milli, (unsigned long long)epoch);
    } else {
        printf("node %u (%s): %s (cluster map epoch %llu)\n", n->id, n->addr, what, (unsigned long long)epoch);
        if (hint)
            printf("%s\n", hint);
    }
    return 0;
}

static int cmd_state(ctx_t *c, const char *cmd, uint32_t id, int state)
{
    const cairn_map_node_t *n = known_node(c, cmd, id);
    if (n == NULL)
        return 1;
    const char *name = cairn_node_state_name(state);
    if (n->state == state) {
        if (!c->a->json)
            printf("node %u (%s) is %s already: nothing to do\n", id, n->addr, name);
        return c->a->json ? print_change(c, n, name, c->map.epoch, NULL) : 0;
    }
    if (state != CAIRN_NODE_UP && below_quorum(c, cmd, n, state == CAIRN_NODE_DRAINING ? "draining" : "taking out"))
        return 1;
    uint64_t epoch = 0;
    int rc = cairn_meta_node_set(&c->mc, 0, id, state, 0, &epoch);
    if (rc != 0)
        return tier_error(c, cmd, id, rc);
    char what[64];
    snprintf(what, sizeof what, "%s (was %s)", name, cairn_node_state_name(n->state));
    cairn_map_node_t after = *n;
    after.state = (uint8_t)state;
    static const char *const hints[] = {
        "it receives new fragments again",
        "it receives no new fragments; `cairn-admin rebalance` moves its fragments to other nodes, then "
        "`cairn-admin node remove` takes it out of the map",
        "it is neither written nor read; `cairn-admin rebalance` rebuilds its fragments on other nodes",
    };
    return print_change(c, &after, what, epoch, hints[state]);
}

static int cmd_weight(ctx_t *c, uint32_t id, uint32_t wm)
{
    const cairn_map_node_t *n = known_node(c, "weight", id);
    if (n == NULL)
        return 1;
    char w[32], old[32];
    admin_fmt_weight(wm, w, sizeof w);
    admin_fmt_weight(n->weight_milli, old, sizeof old);
    if (n->weight_milli == wm) {
        if (!c->a->json)
            printf("node %u (%s) has weight %s already: nothing to do\n", id, n->addr, w);
        return c->a->json ? print_change(c, n, "", c->map.epoch, NULL) : 0;
    }
    uint64_t epoch = 0;
    int rc = cairn_meta_node_set(&c->mc, 0, id, CAIRN_NODE_STATE_KEEP, wm, &epoch);
    if (rc != 0)
        return tier_error(c, "weight", id, rc);
    char what[96];
    snprintf(what, sizeof what, "weight %s (was %s)", w, old);
    cairn_map_node_t after = *n;
    after.weight_milli = wm;
    return print_change(c, &after, what, epoch,
                        "new objects follow the new weight; `cairn-admin rebalance` moves existing ones to match");
}

/* ---- remove ---- */

typedef struct {
    const cairn_map_t *map;
    uint32_t id;
    uint64_t sets, lost; /* fragment sets with a fragment on id; of those, left with fewer than k readable */
} loss_t;

static int count_loss(void *arg, const admin_fragset_t *fs)
{
    loss_t *l = arg;
    int on = 0, readable = 0;
    for (int i = 0; i < fs->k + fs->m; i++) {
        const cairn_map_node_t *n = cairn_map_node(l->map, fs->nodes[i]);
        if (fs->nodes[i] == l->id)
            on = 1;
        else if (n && n->state != CAIRN_NODE_OUT)
            readable++;
    }
    if (on) {
        l->sets++;
        l->lost += readable < fs->k;
    }
    return 0;
}

static void warn_loss(ctx_t *c, const cairn_map_node_t *n, int probe_rc, const cairn_node_info_t *info)
{
    if (probe_rc == 0) {
        fprintf(stderr, "cairn-admin: node remove: warning: node %u still holds %llu fragments; they are lost to "
                        "the cluster\n", n->id, (unsigned long long)info->fragments);
    } else {
        fprintf(stderr, "cairn-admin: node remove: warning: node %u at %s cannot be asked (%s); whatever it holds "
                        "is lost to the cluster\n", n->id, n->addr, cairn_strerror(probe_rc));
    }
    loss_t l = {&c->map, n->id, 0, 0};
    int rc = admin_walk(&c->mc, CAIRN_SCAN_OBJECTS, NULL, 0, count_loss, NULL, &l);
    if (rc != 0) {
        fprintf(stderr, "cairn-admin: node remove: warning: cannot count the objects it affects: %s\n",
                cairn_strerror(rc));
        return;
    }
    fprintf(stderr, "cairn-admin: node remove: warning: %llu object%s (or parts) had a fragment on node %u: %llu "
                    "stay readable from their other fragments until `cairn-admin repair` rebuilds the missing one; "
                    "%llu cannot be read any more (fewer than k fragments left elsewhere)\n",
            (unsigned long long)l.sets, l.sets == 1 ? "" : "s", n->id, (unsigned long long)(l.sets - l.lost),
            (unsigned long long)l.lost);
}

static int cmd_remove(ctx_t *c, uint32_t id, int force)
{
    const cairn_map_node_t *n = known_node(c, "remove", id);
    if (n == NULL)
        return 1;
    if (below_quorum(c, "remove", n, "removing"))
        return 1;
    cairn_node_info_t info;
    int prc = admin_node_probe(c->a, n->addr, PROBE_TIMEOUT_MS, &info);
    if (prc == 0 && info.fragments > 0 && !force) {
        fprintf(stderr, "cairn-admin: node remove: refused: node %u still holds %llu fragments. Drain it first "
                        "(`cairn-admin node drain %u`, then `cairn-admin rebalance`), or remove it anyway with "
                        "--force\n", id, (unsigned long long)info.fragments, id);
        return 1;
    }
    if (prc != 0 && !force) {
        fprintf(stderr, "cairn-admin: node remove: refused: cannot ask node %u at %s whether it still holds "
                        "fragments (%s); remove it anyway with --force\n", id, n->addr, cairn_strerror(prc));
        return 1;
    }
    if (prc != 0 || info.fragments > 0)
        warn_loss(c, n, prc, &info);
    cairn_map_node_t gone = *n;
    uint64_t epoch = 0;
    int rc = cairn_meta_node_remove(&c->mc, 0, id, &epoch);
    if (rc != 0)
        return tier_error(c, "remove", id, rc);
    if (c->a->json)
        printf("{\"id\":%u,\"removed\":true,\"epoch\":%llu}\n", id, (unsigned long long)epoch);
    else
        printf("removed node %u (%s) from the cluster map (epoch %llu); its process may be stopped now\n", gone.id,
               gone.addr, (unsigned long long)epoch);
    return 0;
}

/* ---- entry ---- */

static int run(admin_t *a, const nargs_t *o, int (*fn)(ctx_t *, const nargs_t *, void *), void *arg)
{
    static ctx_t ctx;
    if (ctx_open(&ctx, a) != 0)
        return 1;
    int st = fn(&ctx, o, arg);
    ctx_close(&ctx);
    return st;
}

typedef struct {
    uint32_t id, wm;
    int state;
    const char *zone;
} req_t;

static int do_list(ctx_t *c, const nargs_t *o, void *arg) { return cmd_list(c); }
static int do_add(ctx_t *c, const nargs_t *o, void *arg)
{
    req_t *r = arg;
    return cmd_add(c, o, r->id, r->zone, r->wm);
}
static int do_state(ctx_t *c, const nargs_t *o, void *arg)
{
    req_t *r = arg;
    return cmd_state(c, o->cmd, r->id, r->state);
}
static int do_weight(ctx_t *c, const nargs_t *o, void *arg)
{
    req_t *r = arg;
    return cmd_weight(c, r->id, r->wm);
}
static int do_remove(ctx_t *c, const nargs_t *o, void *arg)
{
    req_t *r = arg;
    return cmd_remove(c, r->id, o->force);
}

static int bad_id(const nargs_t *o, const char *s)
{
    return usage_error(o, "a node id is a positive integer, not '%s'", s);
}

static int bad_weight(const nargs_t *o, const char *s, const char *why)
{
    fprintf(stderr, "cairn-admin: node %s: bad weight '%s': %s\n", o->cmd, s, why);
    return 2;
}

int admin_node(admin_t *a, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(node_usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static const struct {
        const char *name;
        unsigned opts;
        int npos;
        int state;
        const char *synopsis;
    } cmds[] = {
        {"list", 0, 0, -1, "[--json] node list"},
        {"add", OPT_ZONE | OPT_WEIGHT | OPT_ID | OPT_FORCE, 1, -1,
         "node add ADDR [--zone ZONE] [--weight W] [--id N] [--force]"},
        {"drain", 0, 1, CAIRN_NODE_DRAINING, "node drain ID"},
        {"undrain", 0, 1, CAIRN_NODE_UP, "node undrain ID"},
        {"out", 0, 1, CAIRN_NODE_OUT, "node out ID"},
        {"weight", 0, 2, -1, "node weight ID W"},
        {"remove", OPT_FORCE, 1, -1, "node remove ID [--force]"},
    };
    size_t k;
    for (k = 0; k < sizeof cmds / sizeof cmds[0]; k++)
        if (strcmp(argv[1], cmds[k].name) == 0)
            break;
    if (k == sizeof cmds / sizeof cmds[0]) {
        fprintf(stderr, "cairn-admin: node: unknown command '%s'\n", argv[1]);
        fputs(node_usage_text, stderr);
        return 2;
    }
    nargs_t o;
    int st = parse_args(a, argc - 1, argv + 1, cmds[k].opts, cmds[k].npos, cmds[k].synopsis, &o);
    if (st != 0)
        return st;
    if (o.help) {
        fputs(node_usage_text, stdout);
        return 0;
    }
    req_t r = {.state = cmds[k].state, .zone = o.zone ? o.zone : "default", .wm = 1000};
    const char *why;
    switch (k) {
    case 0:
        return run(a, &o, do_list, &r);
    case 1:
        if ((why = check_addr(o.pos[0])) != NULL) {
            fprintf(stderr, "cairn-admin: node add: bad address '%s': %s\n", o.pos[0], why);
            return 2;
        }
        if ((why = check_zone(r.zone)) != NULL) {
            fprintf(stderr, "cairn-admin: node add: bad zone '%s': %s\n", r.zone, why);
            return 2;
        }
        if (o.weight && (why = parse_weight(o.weight, &r.wm)) != NULL)
            return bad_weight(&o, o.weight, why);
        if (o.id && parse_node_id(o.id, &r.id) != 0)
            return bad_id(&o, o.id);
        return run(a, &o, do_add, &r);
    case 5:
        if (parse_node_id(o.pos[0], &r.id) != 0)
            return bad_id(&o, o.pos[0]);
        if ((why = parse_weight(o.pos[1], &r.wm)) != NULL)
            return bad_weight(&o, o.pos[1], why);
        return run(a, &o, do_weight, &r);
    default:
        if (parse_node_id(o.pos[0], &r.id) != 0)
            return bad_id(&o, o.pos[0]);
        return run(a, &o, k == 6 ? do_remove : do_state, &r);
    }
}
