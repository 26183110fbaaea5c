/*
 * cfg.c — the cluster configuration file (see cfg.h).
 *
 * libinih splits the file into (section, key, value); everything else is
 * here. The option table below is the only place an option is named: the
 * defaults, the value parser, the range checks and cairn_cfg_help() all read
 * it, so adding an option is one line plus a struct field.
 *
 * Debian's libinih is built without line numbers in the handler and without
 * a callback for a section that has no keys, so the line reader given to
 * ini_parse_stream() does three jobs besides reading: it counts lines (for
 * "file:line:" messages), checks every section header as it goes by (so an
 * empty "[gatewy]" or "[node.7]" is still seen), and strips leading
 * whitespace so that an indented "key = value" is a key and not, as libinih
 * would have it, a continuation of the previous value.
 */
#include "cairn/cfg.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cairn/err.h"
#include "cairn/log.h"

typedef enum { T_STRING, T_INT, T_SIZE, T_DOUBLE, T_BOOL } opt_type_t;
static const char *const type_names[] = {"string", "int", "size", "double", "bool"};

/* S_NODE stands for every [node.<id>] section (fields in cairn_cfg_node_t),
 * S_REPLICA for every [meta.<id>] section (fields in cairn_cfg_meta_t); S_META
 * is the single [meta] section of settings shared by the replicas. */
typedef enum { S_CLUSTER, S_NODE, S_GATEWAY, S_S3, S_LOG, S_META, S_REPLICA, S_COUNT } sect_t;
static const char *const sect_names[S_COUNT] = {"cluster", "node", "gateway", "s3", "log", "meta", "meta"};

typedef struct {
    sect_t sect;
    const char *key;
    opt_type_t type;
    const char *def;  /* default, spelled as in the file; NULL = required (non-empty string) */
    size_t off;       /* into cairn_cfg_t, cairn_cfg_node_t (S_NODE) or cairn_cfg_meta_t (S_REPLICA) */
    size_t size;      /* sizeof the field: string capacity, or integer width */
    double min, max;  /* inclusive bounds of a number */
    const char *(*check)(const void *field); /* extra rule: NULL if fine, else what is wrong */
    int secret;       /* never echo the value in a message */
    const char *help;
} opt_t;

static const char *check_secret(const void *f)
{
    return strlen(f) < 16 ? "must be at least 16 characters" : NULL;
}

static const char *check_block_size(const void *f)
{
    return *(const uint32_t *)f % 64 ? "must be a multiple of 64" : NULL;
}

static const char *check_positive(const void *f)
{
    return *(const double *)f > 0 ? NULL : "must be greater than 0";
}

static const char *check_log_level(const void *f)
{
    return cairn_log_parse_level(f) < 0 ? "must be debug, info, warn or error" : NULL;
}

static const char *check_meta_list(const void *f)
{
    char addrs[CAIRN_CFG_MAX_META][128];
    if (*(const char *)f == '\0')
        return NULL; /* "required" is reported once the whole file is read */
    int n = cairn_cfg_split_addrs(f, addrs, CAIRN_CFG_MAX_META);
    if (n == CAIRN_ETOOBIG)
        return "too many addresses (at most 7)";
    if (n < 0)
        return "must be host:port[,host:port...]";
    return NULL;
}

/* "s3.example.com,localhost": host names (letters, digits, '-', '.'), no port. */
static const char *check_domain_list(const void *f)
{
    for (const char *p = f; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != ',')
            return "must be host names separated by commas (no ports, no blanks)";
    return NULL;
}

/* An admin endpoint: empty (none) or one host:port. */
static const char *check_admin_addr(const void *f)
{
    char one[1][128];
    if (*(const char *)f == '\0')
        return NULL;
    return cairn_cfg_split_addrs(f, one, 1) == 1 ? NULL : "must be host:port, or empty for none";
}

#define CF(f) .off = offsetof(cairn_cfg_t, f), .size = sizeof(((cairn_cfg_t *)0)->f)
#define NF(f) .off = offsetof(cairn_cfg_node_t, f), .size = sizeof(((cairn_cfg_node_t *)0)->f)
#define MF(f) .off = offsetof(cairn_cfg_meta_t, f), .size = sizeof(((cairn_cfg_meta_t *)0)->f)

static const opt_t opts[] = {
    {S_CLUSTER, "secret", T_STRING, NULL, CF(secret), .check = check_secret, .secret = 1,
     .help = "shared key authenticating internal RPC (at least 16 characters)"},
    {S_CLUSTER, "k", T_INT, "4", CF(k), .min = 1, .max = CAIRN_CFG_MAX_KM,
     .help = "data fragments per stripe"},
    {S_CLUSTER, "m", T_INT, "2", CF(m), .min = 0, .max = CAIRN_CFG_MAX_KM - 1,
     .help = "parity fragments per stripe (k + m <= 32)"},
    {S_CLUSTER, "block_size", T_SIZE, "256k", CF(block_size), .min = 64, .max = CAIRN_CFG_MAX_BLOCK_SIZE,
     .check = check_block_size, .help = "erasure-coding block: a multiple of 64 bytes, at most 16m"},
    {S_CLUSTER, "meta", T_STRING, NULL, CF(meta_addr), .check = check_meta_list,
     .help = "host:port of each metadata replica, comma-separated"},
    {S_CLUSTER, "io_timeout_ms", T_INT, "5000", CF(io_timeout_ms), .min = 1, .max = INT_MAX,
     .help = "timeout of one internal request, milliseconds"},
    {S_CLUSTER, "scrub_rate_mb", T_INT, "8", CF(scrub_rate_mb), .min = 0, .max = 1000000,
     .help = "storage-node scrubber: MB/s (10^6 bytes) of fragment data re-read and verified; 0 = off"},
    {S_CLUSTER, "scrub_interval_s", T_INT, "86400", CF(scrub_interval_s), .min = 0, .max = INT_MAX,
     .help = "storage-node scrubber: seconds from the end of one full pass to the start of the next"},

    {S_NODE, "addr", T_STRING, NULL, NF(addr), .help = "host:port of this storage node"},
    {S_NODE, "zone", T_STRING, "default", NF(zone), .help = "failure domain (rack, room) label"},
    {S_NODE, "weight", T_DOUBLE, "1.0", NF(weight), .min = 0, .max = 1e6, .check = check_positive,
     .help = "placement weight, relative to other nodes (e.g. capacity in TB)"},
    {S_NODE, "admin_addr", T_STRING, "", NF(admin_addr), .check = check_admin_addr,
     .help = "host:port of this node's HTTP /health and /metrics; empty: none"},

    {S_GATEWAY, "listen", T_STRING, "127.0.0.1:9000", CF(gw_listen), .help = "host:port of the S3 endpoint"},
    {S_GATEWAY, "admin_listen", T_STRING, "", CF(gw_admin_listen), .check = check_admin_addr,
     .help = "host:port of the gateway's HTTP /health and /metrics; empty: none"},
    {S_GATEWAY, "threads", T_INT, "0", CF(gw_threads), .min = 0, .max = 1024,
     .help = "event-loop threads; 0 = one per core"},
    {S_GATEWAY, "workers", T_INT, "16", CF(gw_workers), .min = 1, .max = 4096,
     .help = "blocking worker threads for backend I/O"},
    {S_GATEWAY, "region", T_STRING, "us-east-1", CF(region), .help = "S3 region, as in SigV4 credential scopes"},
    {S_GATEWAY, "domain", T_STRING, "", CF(gw_domain), .check = check_domain_list,
     .help = "base domains of virtual-hosted-style requests (bucket.domain), comma-separated; empty: path style only"},
    {S_GATEWAY, "max_object_size", T_SIZE, "5g", CF(max_object_size), .min = 1, .max = 5.0 * (1ull << 40),
     .help = "largest object (or part) one PUT may send"},
    {S_GATEWAY, "inline_max", T_SIZE, "16k", CF(inline_max), .min = 0, .max = 1 << 20,
     .help = "objects up to this size live inside their metadata record (replicated), not in fragments"},
    {S_GATEWAY, "gc_delay_ms", T_INT, "30000", CF(gc_delay_ms), .min = 0, .max = INT_MAX,
     .help = "a replaced or deleted version's fragments are removed this long after (running GETs finish)"},
    {S_GATEWAY, "request_timeout_ms", T_INT, "600000", CF(request_timeout_ms), .min = 1, .max = INT_MAX,
     .help = "longest an S3 request may take, milliseconds: from its first header byte to its last body byte "
             "(a client trickling headers is cut off then), also the keep-alive idle time"},
    {S_GATEWAY, "max_connections", T_INT, "4096", CF(gw_max_connections), .min = 1, .max = 1000000,
     .help = "open client connections; beyond it new ones get 503 SlowDown and are closed"},
    {S_GATEWAY, "max_requests", T_INT, "1024", CF(gw_max_requests), .min = 1, .max = 1000000,
     .help = "S3 requests in flight; beyond it new ones get 503 SlowDown"},
    {S_GATEWAY, "max_header_size", T_SIZE, "16k", CF(gw_max_header_size), .min = 1024, .max = 400 * 1024,
     .help = "bytes of request headers (names and values); beyond it 400 RequestHeaderSectionTooLarge"},
    {S_GATEWAY, "tls_cert", T_STRING, "", CF(gw_tls_cert),
     .help = "PEM file: the S3 endpoint's certificate chain, leaf first; with tls_key it serves HTTPS only "
             "(TLS 1.2+); empty: plain HTTP"},
    {S_GATEWAY, "tls_key", T_STRING, "", CF(gw_tls_key),
     .help = "PEM file: the unencrypted private key of tls_cert; set both or neither"},

    {S_S3, "access_key", T_STRING, NULL, CF(access_key), .help = "access key id of the bootstrap user"},
    {S_S3, "secret_key", T_STRING, NULL, CF(secret_key), .secret = 1, .help = "secret access key of the bootstrap user"},

    {S_LOG, "level", T_STRING, "info", CF(log_level), .check = check_log_level,
     .help = "debug, info, warn or error"},

    {S_META, "election_timeout_ms", T_INT, "1000", CF(meta_election_ms), .min = 50, .max = 60000,
     .help = "Raft election timeout (randomised between 1x and 2x), milliseconds"},
    {S_META, "heartbeat_ms", T_INT, "100", CF(meta_heartbeat_ms), .min = 10, .max = 10000,
     .help = "Raft heartbeat interval, milliseconds (below election_timeout_ms)"},
    {S_META, "lease_reads", T_BOOL, "true", CF(meta_lease_reads),
     .help = "the leader answers reads at once while a write or barrier it appended less than half an "
             "election timeout ago has committed; false: every read waits for a barrier entry"},
    /* A snapshot copies the whole database (1 M objects: ~400 MB, 1.5-5 s):
     * take one per 64 Ki entries (~20 MB of log), not per libraft's 1 Ki. */
    {S_META, "snapshot_threshold", T_INT, "65536", CF(meta_snapshot_threshold), .min = 4, .max = INT_MAX,
     .help = "log entries applied since the last snapshot that trigger a new one"},
    {S_META, "snapshot_trailing", T_INT, "8192", CF(meta_snapshot_trailing), .min = 0, .max = INT_MAX,
     .help = "log entries kept behind a snapshot, so a lagging replica needs no snapshot"},

    {S_REPLICA, "addr", T_STRING, NULL, MF(addr), .help = "host:port of this metadata replica's service"},
    {S_REPLICA, "raft_addr", T_STRING, NULL, MF(raft_addr),
     .help = "IPv4:port of this replica's Raft transport (replica to replica)"},
    {S_REPLICA, "admin_addr", T_STRING, "", MF(admin_addr), .check = check_admin_addr,
     .help = "host:port of this replica's HTTP /health and /metrics; empty: none"},
};
#define NOPTS (sizeof opts / sizeof opts[0])
_Static_assert(NOPTS <= 64, "seen-bitmaps are 64 bits wide");

typedef struct {
    cairn_cfg_t *cfg;
    const char *name; /* file name, for messages */
    FILE *fp;         /* input: a file ... */
    const char *text; /* ... or the rest of a string */
    int lineno;       /* lines read so far */
    int failed;
    int fail_line;
    char *err;
    size_t errsz;
    uint32_t seen_sect;                         /* bit per sect_t, except S_NODE */
    uint64_t seen_global;                       /* bit per opts[] index */
    uint64_t seen_node[CAIRN_CFG_MAX_NODES];    /* bit per opts[] index, per node */
    uint64_t seen_replica[CAIRN_CFG_MAX_META];  /* bit per opts[] index, per [meta.<id>] */
    char why[96];                               /* scratch for a value's error */
} ctx_t;

/* Record the first error only; line 0 means "about the whole file". */
__attribute__((format(printf, 3, 4))) static void fail(ctx_t *c, int line, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = 1;
    c->fail_line = line;
    if (c->errsz == 0)
        return;
    int n = line > 0 ? snprintf(c->err, c->errsz, "%s:%d: ", c->name, line) : snprintf(c->err, c->errsz, "%s: ", c->name);
    if (n < 0 || (size_t)n >= c->errsz)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errsz - (size_t)n, fmt, ap);
    va_end(ap);
}

int cairn_cfg_parse_size(const char *s, uint64_t *out)
{
    if (!isdigit((unsigned char)*s))
        return CAIRN_EINVAL;
    uint64_t v = 0;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return CAIRN_EINVAL;
        v = v * 10 + d;
    }
    unsigned shift = 0;
    switch (*s) {
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    case 't': case 'T': shift = 40; break;
    case '\0': break;
    default: return CAIRN_EINVAL;
    }
    if (shift) {
        s++;
        if (*s == 'i' || *s == 'I')
            s++;
        else if (*s == '\0')
            goto done;
        if (*s != 'b' && *s != 'B')
            return CAIRN_EINVAL;
        s++;
        if (*s != '\0')
            return CAIRN_EINVAL;
    }
done:
    if (v > (UINT64_MAX >> shift))
        return CAIRN_EINVAL;
    *out = v << shift;
    return 0;
}

int cairn_cfg_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return CAIRN_EINVAL;
}

static const char *out_of_range(ctx_t *c, const opt_t *o)
{
    snprintf(c->why, sizeof c->why, "must be between %.0f and %.0f", o->min, o->max);
    return c->why;
}

/* Parse val into the field of o inside base. NULL on success, else what is wrong. */
static const char *set_value(ctx_t *c, const opt_t *o, void *base, const char *val)
{
    void *field = (char *)base + o->off;
    char *end;
    switch (o->type) {
    case T_STRING: {
        size_t n = strlen(val);
        if (n >= o->size) {
            snprintf(c->why, sizeof c->why, "longer than %zu characters", o->size - 1);
            return c->why;
        }
        memcpy(field, val, n + 1);
        break;
    }
    case T_INT: {
        CAIRN_ASSERT(o->size == sizeof(int));
        errno = 0;
        long v = strtol(val, &end, 10);
        if (*val == '\0' || *end != '\0' || errno)
            return "expected an integer";
        if (v < o->min || v > o->max)
            return out_of_range(c, o);
        *(int *)field = (int)v;
        break;
    }
    case T_SIZE: {
        uint64_t v;
        if (cairn_cfg_parse_size(val, &v) < 0)
            return "expected a size such as 4096, 256k, 4m or 5g";
        if ((double)v < o->min || (double)v > o->max) {
            snprintf(c->why, sizeof c->why, "must be between %.0f and %.0f bytes", o->min, o->max);
            return c->why;
        }
        if (o->size == sizeof(uint32_t))
            *(uint32_t *)field = (uint32_t)v;
        else {
            CAIRN_ASSERT(o->size == sizeof(uint64_t));
            *(uint64_t *)field = v;
        }
        break;
    }
    case T_DOUBLE: {
        CAIRN_ASSERT(o->size == sizeof(double));
        errno = 0;
        double v = strtod(val, &end);
        if (*val == '\0' || *end != '\0' || errno || !isfinite(v))
            return "expected a number";
        if (v < o->min || v > o->max) {
            snprintf(c->why, sizeof c->why, "must be between %g and %g", o->min, o->max);
            return c->why;
        }
        *(double *)field = v;
        break;
    }
    case T_BOOL: {
        CAIRN_ASSERT(o->size == sizeof(int));
        int v;
        if (cairn_cfg_parse_bool(val, &v) < 0)
            return "expected true or false";
        *(int *)field = v;
        break;
    }
    }
    return o->check ? o->check(field) : NULL;
}

static void set_defaults(ctx_t *c, sect_t sect, void *base)
{
    for (size_t i = 0; i < NOPTS; i++) {
        if (opts[i].sect != sect || opts[i].def == NULL)
            continue;
        const char *why = set_value(c, &opts[i], base, opts[i].def);
        CAIRN_ASSERT(why == NULL); /* a default that fails its own rules is a bug here */
    }
}

/* "<prefix>.<id>": the id, or 0 if the name is not a positive decimal
 * without leading zeros. */
static uint32_t node_id(const char *section)
{
    const char *p = strchr(section, '.');
    if (p == NULL)
        return 0;
    p++;
    if (*p < '1' || *p > '9' || strlen(p) > 10)
        return 0;
    uint64_t v = 0;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return 0;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    return v <= UINT32_MAX ? (uint32_t)v : 0;
}

static int node_index(const cairn_cfg_t *cfg, uint32_t id)
{
    for (size_t i = 0; i < cfg->nnodes; i++)
        if (cfg->nodes[i].id == id)
            return (int)i;
    return -1;
}

static int is_node_section(const char *name)
{
    return strncmp(name, "node", 4) == 0 && (name[4] == '\0' || name[4] == '.');
}

/* [meta.<id>]; the bare [meta] is the shared settings section. */
static int is_replica_section(const char *name) { return strncmp(name, "meta.", 5) == 0; }

static int replica_index(const cairn_cfg_t *cfg, uint32_t id)
{
    for (size_t i = 0; i < cfg->nmetas; i++)
        if (cfg->metas[i].id == id)
            return (int)i;
    return -1;
}

/* A [meta.<id>] header: create the replica. 0 or -1 (failed). */
static int on_replica_section(ctx_t *c, const char *name)
{
    uint32_t id = node_id(name);
    if (id == 0) {
        fail(c, c->lineno, "bad section [%s]: expected [meta.<id>] with a positive integer id", name);
        return -1;
    }
    if (replica_index(c->cfg, id) >= 0) {
        fail(c, c->lineno, "duplicate section [%s]", name);
        return -1;
    }
    if (c->cfg->nmetas == CAIRN_CFG_MAX_META) {
        fail(c, c->lineno, "too many metadata replicas (at most %d)", CAIRN_CFG_MAX_META);
        return -1;
    }
    cairn_cfg_meta_t *m = &c->cfg->metas[c->cfg->nmetas];
    memset(m, 0, sizeof *m);
    m->id = id;
    set_defaults(c, S_REPLICA, m);
    c->seen_replica[c->cfg->nmetas] = 0;
    c->cfg->nmetas++;
    return 0;
}

/* A section header went by: check it, and create the node it names. 0 or -1 (failed). */
static int on_section(ctx_t *c, const char *name)
{
    if (is_replica_section(name))
        return on_replica_section(c, name);
    if (is_node_section(name)) {
        uint32_t id = name[4] ? node_id(name) : 0;
        if (id == 0) {
            fail(c, c->lineno, "bad section [%s]: expected [node.<id>] with a positive integer id", name);
            return -1;
        }
        if (node_index(c->cfg, id) >= 0) {
            fail(c, c->lineno, "duplicate section [%s]", name);
            return -1;
        }
        if (c->cfg->nnodes == CAIRN_CFG_MAX_NODES) {
            fail(c, c->lineno, "too many nodes (at most %d)", CAIRN_CFG_MAX_NODES);
            return -1;
        }
        cairn_cfg_node_t *n = &c->cfg->nodes[c->cfg->nnodes];
        memset(n, 0, sizeof *n);
        n->id = id;
        set_defaults(c, S_NODE, n);
        c->seen_node[c->cfg->nnodes] = 0;
        c->cfg->nnodes++;
        return 0;
    }
    for (int s = 0; s < S_COUNT; s++) {
        if (s == S_NODE || s == S_REPLICA || strcmp(name, sect_names[s]) != 0)
            continue;
        if (c->seen_sect & (1u << s)) {
            fail(c, c->lineno, "duplicate section [%s]", name);
            return -1;
        }
        c->seen_sect |= 1u << s;
        return 0;
    }
    fail(c, c->lineno, "unknown section [%s]", name);
    return -1;
}

/* ini_reader: one line into str (at most num-1 bytes with its newline). */
static char *read_line(char *str, int num, void *stream)
{
    ctx_t *c = stream;
    if (c->failed)
        return NULL;
    size_t n, max = (size_t)num - 2; /* longest content, not counting the newline */
    int too_long;
    if (c->fp) {
        if (!fgets(str, num, c->fp))
            return NULL;
        n = strlen(str);
        too_long = n > max && str[n - 1] != '\n';
    } else {
        if (*c->text == '\0')
            return NULL;
        const char *nl = strchr(c->text, '\n');
        n = nl ? (size_t)(nl - c->text) + 1 : strlen(c->text);
        size_t content = nl ? n - 1 : n;
        too_long = content > max;
        if (!too_long) {
            memcpy(str, c->text, n);
            str[n] = '\0';
        }
        c->text += n;
    }
    c->lineno++;
    if (too_long) {
        fail(c, c->lineno, "line longer than %zu characters", max);
        return NULL;
    }
    if (c->lineno == 1 && strncmp(str, "\xEF\xBB\xBF", 3) == 0) /* UTF-8 byte order mark */
        memmove(str, str + 3, strlen(str + 3) + 1);
    size_t lead = strspn(str, " \t");
    if (lead)
        memmove(str, str + lead, strlen(str + lead) + 1);
    if (str[0] == '[') {
        const char *close = strchr(str, ']');
        if (close) {
            char name[64];
            size_t len = (size_t)(close - str - 1);
            if (len >= sizeof name) {
                fail(c, c->lineno, "unknown section [%.*s...]", 40, str + 1);
                return NULL;
            }
            memcpy(name, str + 1, len);
            name[len] = '\0';
            if (on_section(c, name) < 0)
                return NULL;
        }
        /* no ']': libinih reports the line as a syntax error */
    }
    return str;
}

/* ini_handler: one key. Returns 1 to go on, 0 on error. */
static int on_key(void *user, const char *section, const char *key, const char *value)
{
    ctx_t *c = user;
    if (c->failed)
        return 0;
    if (*section == '\0') {
        fail(c, c->lineno, "key %s before any [section]", key);
        return 0;
    }
    sect_t sect = S_COUNT;
    void *base = c->cfg;
    uint64_t *seen = &c->seen_global;
    if (is_node_section(section)) {
        int i = node_index(c->cfg, node_id(section));
        CAIRN_ASSERT(i >= 0); /* read_line created it */
        sect = S_NODE;
        base = &c->cfg->nodes[i];
        seen = &c->seen_node[i];
    } else if (is_replica_section(section)) {
        int i = replica_index(c->cfg, node_id(section));
        CAIRN_ASSERT(i >= 0); /* read_line created it */
        sect = S_REPLICA;
        base = &c->cfg->metas[i];
        seen = &c->seen_replica[i];
    } else {
        for (int s = 0; s < S_COUNT; s++)
            if (s != S_REPLICA && strcmp(section, sect_names[s]) == 0)
                sect = (sect_t)s;
        CAIRN_ASSERT(sect != S_COUNT); /* read_line let no other section through */
    }
    for (size_t i = 0; i < NOPTS; i++) {
        const opt_t *o = &opts[i];
        if (o->sect != sect || strcmp(o->key, key) != 0)
            continue;
        if (*seen & (1ull << i)) {
            fail(c, c->lineno, "duplicate key %s in [%s]", key, section);
            return 0;
        }
        *seen |= 1ull << i;
        const char *why = set_value(c, o, base, value);
        if (why) {
            if (o->secret)
                fail(c, c->lineno, "bad value for %s in [%s]: %s", key, section, why);
            else
                fail(c, c->lineno, "bad value for %s in [%s] ('%s'): %s", key, section, value, why);
            return 0;
        }
        return 1;
    }
    fail(c, c->lineno, "unknown key %s in [%s]", key, section);
    return 0;
}

/* Rules about the file as a whole, once every line has been read. */
static void validate(ctx_t *c)
{
    const cairn_cfg_t *cfg = c->cfg;
    for (size_t i = 0; i < NOPTS; i++) {
        const opt_t *o = &opts[i];
        if (o->def != NULL)
            continue;
        CAIRN_ASSERT(o->type == T_STRING);
        if (o->sect == S_NODE) {
            for (size_t n = 0; n < cfg->nnodes; n++)
                if (((const char *)&cfg->nodes[n])[o->off] == '\0')
                    fail(c, 0, "%s is required in [node.%u]", o->key, cfg->nodes[n].id);
        } else if (o->sect == S_REPLICA) {
            for (size_t n = 0; n < cfg->nmetas; n++)
                if (((const char *)&cfg->metas[n])[o->off] == '\0')
                    fail(c, 0, "%s is required in [meta.%u]", o->key, cfg->metas[n].id);
        } else if (((const char *)cfg)[o->off] == '\0') {
            fail(c, 0, "%s is required in [%s]", o->key, sect_names[o->sect]);
        }
    }
    if (cfg->k + cfg->m > CAIRN_CFG_MAX_KM)
        fail(c, 0, "k + m is %d, at most %d is supported", cfg->k + cfg->m, CAIRN_CFG_MAX_KM);
    if (cfg->nnodes < (size_t)(cfg->k + cfg->m))
        fail(c, 0, "%d+%d erasure coding needs at least %d nodes, but %zu [node.<id>] section%s configured",
             cfg->k, cfg->m, cfg->k + cfg->m, cfg->nnodes, cfg->nnodes == 1 ? " is" : "s are");
    for (size_t i = 0; i < cfg->nnodes; i++)
        for (size_t j = i + 1; j < cfg->nnodes; j++)
            if (strcmp(cfg->nodes[i].addr, cfg->nodes[j].addr) == 0)
                fail(c, 0, "[node.%u] and [node.%u] have the same addr %s", cfg->nodes[i].id,
                     cfg->nodes[j].id, cfg->nodes[i].addr);
    for (size_t i = 0; i < cfg->nmetas; i++)
        for (size_t j = i + 1; j < cfg->nmetas; j++)
            if (strcmp(cfg->metas[i].addr, cfg->metas[j].addr) == 0 ||
                strcmp(cfg->metas[i].raft_addr, cfg->metas[j].raft_addr) == 0)
                fail(c, 0, "[meta.%u] and [meta.%u] have the same address", cfg->metas[i].id, cfg->metas[j].id);
    if ((cfg->gw_tls_cert[0] == '\0') != (cfg->gw_tls_key[0] == '\0'))
        fail(c, 0, "%s is set but %s is not in [gateway]: set both (HTTPS) or neither (plain HTTP)",
             cfg->gw_tls_cert[0] ? "tls_cert" : "tls_key", cfg->gw_tls_cert[0] ? "tls_key" : "tls_cert");
    if (cfg->meta_heartbeat_ms >= cfg->meta_election_ms)
        fail(c, 0, "heartbeat_ms (%d) must be below election_timeout_ms (%d) in [meta]", cfg->meta_heartbeat_ms,
             cfg->meta_election_ms);
}

static int parse(ctx_t *c)
{
    memset(c->cfg, 0, sizeof *c->cfg);
    if (c->errsz)
        c->err[0] = '\0';
    set_defaults(c, S_CLUSTER, c->cfg);
    set_defaults(c, S_GATEWAY, c->cfg);
    set_defaults(c, S_S3, c->cfg);
    set_defaults(c, S_LOG, c->cfg);
    set_defaults(c, S_META, c->cfg);
    int rc = ini_parse_stream(read_line, c, on_key, c);
    if (c->fp && ferror(c->fp))
        fail(c, 0, "read error: %s", strerror(errno));
    /* libinih's own complaint (no '=', no ']') wins if it came first */
    if (rc > 0 && (!c->failed || rc < c->fail_line)) {
        c->failed = 0;
        fail(c, rc, "syntax error: expected [section], key = value or a ; comment");
    } else if (rc < 0) {
        fail(c, 0, "cannot parse (libinih error %d)", rc);
    }
    if (!c->failed)
        validate(c);
    return c->failed ? CAIRN_EINVAL : 0;
}

int cairn_cfg_load(const char *path, cairn_cfg_t *cfg, char *err, size_t errsz)
{
    ctx_t *c = cairn_calloc(1, sizeof *c);
    c->cfg = cfg;
    c->name = path;
    c->err = err;
    c->errsz = errsz;
    c->fp = fopen(path, "r");
    int rc;
    if (c->fp == NULL) {
        fail(c, 0, "%s", strerror(errno));
        rc = CAIRN_EINVAL;
    } else {
        rc = parse(c);
        fclose(c->fp);
    }
    free(c);
    return rc;
}

int cairn_cfg_load_string(const char *text, const char *name, cairn_cfg_t *cfg, char *err, size_t errsz)
{
    ctx_t *c = cairn_calloc(1, sizeof *c);
    c->cfg = cfg;
    c->name = name;
    c->err = err;
    c->errsz = errsz;
    c->text = text;
    int rc = parse(c);
    free(c);
    return rc;
}

const cairn_cfg_node_t *cairn_cfg_node(const cairn_cfg_t *cfg, uint32_t id)
{
    int i = node_index(cfg, id);
    return i < 0 ? NULL : &cfg->nodes[i];
}

const cairn_cfg_meta_t *cairn_cfg_replica(const cairn_cfg_t *cfg, uint32_t id)
{
    int i = replica_index(cfg, id);
    return i < 0 ? NULL : &cfg->metas[i];
}

int cairn_cfg_split_addrs(const char *list, char out[][128], int max)
{
    int n = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        const char *colon = len ? memrchr(p, ':', len) : NULL;
        size_t plen = colon ? len - (size_t)(colon + 1 - p) : 0;
        if (len == 0 || len >= 128 || colon == NULL || colon == p || plen == 0 || plen > 5 ||
            strspn(colon + 1, "0123456789") < plen)
            return CAIRN_EINVAL;
        size_t hlen = (size_t)(colon - p);
        if (memchr(p, ':', hlen) && !(p[0] == '[' && p[hlen - 1] == ']')) /* only "[v6]" hosts hold ':' */
            return CAIRN_EINVAL;
        if (n == max)
            return CAIRN_ETOOBIG;
        memcpy(out[n], p, len);
        out[n][len] = '\0';
        n++;
        if (end == NULL)
            return n;
        p = end + 1;
    }
}

void cairn_cfg_help(FILE *out)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const opt_t *o = &opts[i];
        char name[64];
        const char *sect = o->sect == S_NODE ? "node.<id>" : o->sect == S_REPLICA ? "meta.<id>" : sect_names[o->sect];
        snprintf(name, sizeof name, "%s.%s", sect, o->key);
        fprintf(out, "  %-26s %-6s %-15s %s\n", name, type_names[o->type], o->def ? o->def : "(required)", o->help);
    }
}
