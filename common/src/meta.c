/*
 * meta.c — see meta.h. Record encodings and the blocking client calls of
 * the metadata service.
 *
 * Object record encoding (little-endian, version 1):
 *   u8 version (1), oid[16], u64 size, u64 mtime_ms,
 *   u8 etag_len, etag bytes (no NUL), u8 k, u8 m, u32 block_size,
 *   (k + m) x u32 node id,
 *   bytes content_type, bytes user_meta (u32 length, then the bytes)
 * Version 2 (records with system headers or parts) continues with
 *   bytes sys_meta, u32 nparts, bytes parts (nparts entries, meta_mpu.c)
 * The decoder rejects anything else: a bad version, k + m above
 * CAIRN_MAX_FRAGS, an etag of 72 bytes or more, malformed user_meta pairs,
 * trailing bytes.
 *
 * Client calls: the response status of a frame carries the cairn error of
 * the operation and is returned as-is. Transport errors, redirects and
 * elections are handled by cairn_meta_call() (see "the replicated client"
 * below); what it cannot hide becomes CAIRN_EUNAVAIL or CAIRN_ETIMEOUT.
 */
#include "cairn/meta.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "cairn/cfg.h"
#include "cairn/err.h"

#define OBJ_REC_VERSION 1
#define OBJ_REC_VERSION_2 2
#define OBJ_REC_VERSION_3 3 /* v2 + inline data */

/* ---- object records ---- */

void cairn_obj_rec_encode(const cairn_obj_rec_t *r, cairn_buf_t *out)
{
    size_t etag_len = strnlen(r->etag, sizeof r->etag);
    CAIRN_ASSERT(etag_len < sizeof r->etag);
    CAIRN_ASSERT((unsigned)r->k + r->m <= CAIRN_MAX_FRAGS);
    CAIRN_ASSERT(!r->is_inline || (r->k == 0 && r->m == 0 && r->nparts == 0 && r->inline_len == r->size));
    int v2 = r->sys_meta_len > 0 || r->nparts > 0 || r->is_inline;
    cairn_buf_put_u8(out, r->is_inline ? OBJ_REC_VERSION_3 : v2 ? OBJ_REC_VERSION_2 : OBJ_REC_VERSION);
    cairn_buf_append(out, r->oid, 16);
    cairn_buf_put_u64(out, r->size);
    cairn_buf_put_u64(out, (uint64_t)r->mtime_ms);
    cairn_buf_put_u8(out, (uint8_t)etag_len);
    cairn_buf_append(out, r->etag, etag_len);
    cairn_buf_put_u8(out, r->k);
    cairn_buf_put_u8(out, r->m);
    cairn_buf_put_u32(out, r->block_size);
    for (unsigned i = 0; i < (unsigned)r->k + r->m; i++)
        cairn_buf_put_u32(out, r->nodes[i]);
    cairn_buf_put_bytes(out, r->content_type, r->content_type_len);
    cairn_buf_put_bytes(out, r->user_meta, r->user_meta_len);
    if (v2) {
        cairn_buf_put_bytes(out, r->sys_meta, r->sys_meta_len);
        cairn_buf_put_u32(out, r->nparts);
        cairn_buf_put_bytes(out, r->parts, r->parts_len);
    }
    if (r->is_inline)
        cairn_buf_put_bytes(out, r->inline_data, r->inline_len);
}

/* 0 if p[0..len) is a well-formed sequence of (u16 len, name, u16 len, value). */
static int user_meta_check(const uint8_t *p, size_t len)
{
    size_t off = 0;
    const char *n, *v;
    size_t nl, vl;
    while (cairn_obj_meta_next(p, len, &off, &n, &nl, &v, &vl) == 1)
        ;
    return off == len ? 0 : CAIRN_EPROTO;
}

/* 0 if the parts encoding holds exactly nparts well-formed entries. O(nparts). */
static int parts_check(const cairn_obj_rec_t *r)
{
    size_t off = 0;
    uint32_t n = 0;
    cairn_obj_part_t part;
    while (cairn_obj_part_next(r->parts, r->parts_len, &off, &part) == 1)
        n++;
    return off == r->parts_len && n == r->nparts ? 0 : CAIRN_EPROTO;
}

int cairn_obj_rec_decode(const uint8_t *p, size_t len, cairn_obj_rec_t *r)
{
    cairn_dec_t d;
    cairn_dec_init(&d, p, len);
    memset(r, 0, sizeof *r);
    uint8_t version = cairn_dec_u8(&d);
    if (version != OBJ_REC_VERSION && version != OBJ_REC_VERSION_2 && version != OBJ_REC_VERSION_3)
        return CAIRN_EPROTO;
    cairn_dec_raw(&d, r->oid, 16);
    r->size = cairn_dec_u64(&d);
    r->mtime_ms = (int64_t)cairn_dec_u64(&d);
    uint8_t etag_len = cairn_dec_u8(&d);
    if (etag_len >= sizeof r->etag)
        return CAIRN_EPROTO;
    cairn_dec_raw(&d, r->etag, etag_len);
    r->etag[etag_len] = '\0';
    r->k = cairn_dec_u8(&d);
    r->m = cairn_dec_u8(&d);
    if ((unsigned)r->k + r->m > CAIRN_MAX_FRAGS)
        return CAIRN_EPROTO;
    r->block_size = cairn_dec_u32(&d);
    for (unsigned i = 0; i < (unsigned)r->k + r->m; i++)
        r->nodes[i] = cairn_dec_u32(&d);
    const uint8_t *ct;
    cairn_dec_bytes(&d, &ct, &r->content_type_len);
    r->content_type = (const char *)ct;
    cairn_dec_bytes(&d, &r->user_meta, &r->user_meta_len);
    if (version >= OBJ_REC_VERSION_2) {
        cairn_dec_bytes(&d, &r->sys_meta, &r->sys_meta_len);
        r->nparts = cairn_dec_u32(&d);
        cairn_dec_bytes(&d, &r->parts, &r->parts_len);
    }
    if (version == OBJ_REC_VERSION_3) {
        r->is_inline = 1;
        cairn_dec_bytes(&d, &r->inline_data, &r->inline_len);
        if (r->k || r->m || r->nparts || r->inline_len != r->size)
            return CAIRN_EPROTO;
    }
    if (d.err || cairn_dec_left(&d) != 0 || memchr(r->etag, '\0', etag_len) != NULL)
        return CAIRN_EPROTO;
    if (user_meta_check(r->user_meta, r->user_meta_len) != 0 || user_meta_check(r->sys_meta, r->sys_meta_len) != 0)
        return CAIRN_EPROTO;
    return parts_check(r);
}

void cairn_obj_meta_add(cairn_buf_t *b, const char *name, size_t name_len, const char *value, size_t value_len)
{
    CAIRN_ASSERT(name_len <= UINT16_MAX && value_len <= UINT16_MAX);
    cairn_buf_put_u16(b, (uint16_t)name_len);
    cairn_buf_append(b, name, name_len);
    cairn_buf_put_u16(b, (uint16_t)value_len);
    cairn_buf_append(b, value, value_len);
}

/* A malformed tail ends the iteration (returns 0 without moving *off), so a
 * loop `while (cairn_obj_meta_next(...))` always terminates. */
int cairn_obj_meta_next(const uint8_t *p, size_t len, size_t *off, const char **name, size_t *name_len,
                        const char **value, size_t *value_len)
{
    if (*off >= len)
        return 0;
    cairn_dec_t d;
    cairn_dec_init(&d, p + *off, len - *off);
    size_t nl = cairn_dec_u16(&d);
    const uint8_t *n = d.p;
    if (d.err || cairn_dec_left(&d) < nl)
        return 0;
    d.p += nl;
    size_t vl = cairn_dec_u16(&d);
    const uint8_t *v = d.p;
    if (d.err || cairn_dec_left(&d) < vl)
        return 0;
    d.p += vl;
    *name = (const char *)n;
    *name_len = nl;
    *value = (const char *)v;
    *value_len = vl;
    *off = (size_t)(d.p - p);
    return 1;
}

/* ---- bucket records and list messages ---- */

void cairn_bucket_rec_encode(const cairn_bucket_rec_t *r, cairn_buf_t *out)
{
    cairn_buf_put_bytes(out, r->name, r->name_len);
    cairn_buf_put_bytes(out, r->owner, r->owner_len);
    cairn_buf_put_u64(out, (uint64_t)r->ctime_ms);
}

int cairn_bucket_rec_decode(cairn_dec_t *d, cairn_bucket_rec_t *r)
{
    const uint8_t *p;
    cairn_dec_bytes(d, &p, &r->name_len);
    r->name = (const char *)p;
    cairn_dec_bytes(d, &p, &r->owner_len);
    r->owner = (const char *)p;
    r->ctime_ms = (int64_t)cairn_dec_u64(d);
    return d->err ? CAIRN_EPROTO : 0;
}

void cairn_meta_list_req_encode(const cairn_meta_list_req_t *q, cairn_buf_t *out)
{
    cairn_buf_put_str(out, q->bucket);
    cairn_buf_put_bytes(out, q->prefix, q->prefix_len);
    cairn_buf_put_bytes(out, q->delimiter, q->delimiter_len);
    cairn_buf_put_bytes(out, q->start_after, q->start_after_len);
    cairn_buf_put_u32(out, q->max_keys);
}

int cairn_meta_list_req_decode(const uint8_t *p, size_t n, cairn_meta_list_req_t *q,
                               char bucket[CAIRN_MAX_BUCKET_LEN + 1])
{
    cairn_dec_t d;
    cairn_dec_init(&d, p, n);
    const uint8_t *b, *v;
    size_t blen;
    cairn_dec_bytes(&d, &b, &blen);
    cairn_dec_bytes(&d, &v, &q->prefix_len);
    q->prefix = (const char *)v;
    cairn_dec_bytes(&d, &v, &q->delimiter_len);
    q->delimiter = (const char *)v;
    cairn_dec_bytes(&d, &v, &q->start_after_len);
    q->start_after = (const char *)v;
    q->max_keys = cairn_dec_u32(&d);
    if (d.err || cairn_dec_left(&d) != 0)
        return CAIRN_EPROTO;
    if (blen == 0 || blen > CAIRN_MAX_BUCKET_LEN || memchr(b, '\0', blen) != NULL)
        return CAIRN_EINVAL;
    memcpy(bucket, b, blen);
    bucket[blen] = '\0';
    q->bucket = bucket;
    return 0;
}

void cairn_meta_list_init(cairn_meta_list_t *l)
{
    memset(l, 0, sizeof *l);
    cairn_buf_init(&l->raw);
}

static void list_clear(cairn_meta_list_t *l)
{
    free(l->entries);
    free(l->prefixes);
    l->entries = NULL;
    l->prefixes = NULL;
    l->nentries = l->nprefixes = 0;
    l->truncated = 0;
    l->next = NULL;
    l->next_len = 0;
}

void cairn_meta_list_dispose(cairn_meta_list_t *l)
{
    list_clear(l);
    cairn_buf_dispose(&l->raw);
}

int cairn_meta_list_decode(cairn_meta_list_t *l)
{
    list_clear(l);
    cairn_dec_t d;
    cairn_dec_init(&d, l->raw.base, l->raw.len);
    const uint8_t *p;
    size_t n;

    uint32_t ne = cairn_dec_u32(&d);
    /* Each entry takes at least 4 + 8 + 8 + 4 + 1 bytes: bound the count
     * before allocating so a bogus count cannot ask for gigabytes. */
    if (d.err || ne > cairn_dec_left(&d) / 25)
        goto bad;
    l->entries = cairn_calloc(ne ? ne : 1, sizeof *l->entries);
    for (uint32_t i = 0; i < ne; i++) {
        cairn_meta_list_entry_t *e = &l->entries[i];
        cairn_dec_bytes(&d, &p, &e->key_len);
        e->key = (const char *)p;
        e->size = cairn_dec_u64(&d);
        e->mtime_ms = (int64_t)cairn_dec_u64(&d);
        cairn_dec_bytes(&d, &p, &n);
        if (d.err || n == 0 || p[n - 1] != '\0' || memchr(p, '\0', n - 1) != NULL)
            goto bad;
        e->etag = (const char *)p;
    }
    l->nentries = ne;

    uint32_t np = cairn_dec_u32(&d);
    if (d.err || np > cairn_dec_left(&d) / 4)
        goto bad;
    l->prefixes = cairn_calloc(np ? np : 1, sizeof *l->prefixes);
    for (uint32_t i = 0; i < np; i++) {
        cairn_dec_bytes(&d, &p, &l->prefixes[i].len);
        l->prefixes[i].p = (const char *)p;
    }
    l->nprefixes = np;

    l->truncated = cairn_dec_u8(&d);
    cairn_dec_bytes(&d, &p, &l->next_len);
    l->next = (const char *)p;
    if (d.err || cairn_dec_left(&d) != 0 || l->truncated > 1)
        goto bad;
    return 0;
bad:
    list_clear(l);
    return CAIRN_EPROTO;
}

/* ---- the replicated client ----
 *
 * One call is a loop over attempts until an answer that is not "ask
 * someone else", or the deadline:
 *   - CAIRN_ENOTLEADER: go to the leader named in the body, or else the
 *     next replica;
 *   - CAIRN_EUNAVAIL or CAIRN_ETIMEOUT from the replica (shutting down, or
 *     the commit did not come in time), or no answer at all (refused,
 *     reset, timed out): the next replica; one that did not answer is
 *     skipped for DOWN_MS unless every replica is;
 *   - after a full round without a leader, sleep (20 ms doubling to 500 ms):
 *     an election is under way.
 * Every attempt carries the same command id (client_id, seq), so the
 * service applies a mutation at most once however many attempts reached a
 * leader. At the deadline the answer is CAIRN_EUNAVAIL if no attempt can
 * have been applied, else CAIRN_ETIMEOUT. Only a refused connection proves
 * an attempt was never seen: a "not leader" answer may come from a replica
 * that logged the entry and then lost its leadership.
 */

#define DOWN_MS 1000
#define ONCE_HDR 18 /* u16 op, id[16] */

int cairn_meta_client_init(cairn_meta_client_t *c, const char *addrs, const cairn_wire_key_t *key, int timeout_ms)
{
    memset(c, 0, sizeof *c);
    char list[CAIRN_META_MAX_REPLICAS][128];
    int n = cairn_cfg_split_addrs(addrs ? addrs : "", list, CAIRN_META_MAX_REPLICAS - 1);
    for (int i = 0; i < n; i++)
        memcpy(c->replicas[i].addr, list[i], 128);
    c->nreplicas = n > 0 ? (size_t)n : 0;
    cairn_conn_init(&c->conn, c->nreplicas ? c->replicas[0].addr : "", key, timeout_ms);
    c->timeout_ms = timeout_ms;
    c->deadline_ms = 2 * timeout_ms > 10000 ? 2 * timeout_ms : 10000;
    c->client_id = cairn_wire_new_req_id();
    return n > 0 ? 0 : CAIRN_EINVAL;
}

void cairn_meta_client_dispose(cairn_meta_client_t *c) { cairn_conn_dispose(&c->conn); }

static void use_replica(cairn_meta_client_t *c, size_t i)
{
    c->cur = i;
    if (strcmp(c->conn.addr, c->replicas[i].addr) != 0) {
        cairn_conn_close(&c->conn);
        snprintf(c->conn.addr, sizeof c->conn.addr, "%s", c->replicas[i].addr);
    }
}

/* The next replica after cur that is not marked down (cur + 1 if all are). */
static size_t next_replica(const cairn_meta_client_t *c, int64_t now)
{
    for (size_t k = 1; k <= c->nreplicas; k++) {
        size_t i = (c->cur + k) % c->nreplicas;
        if (c->replicas[i].down_until <= now)
            return i;
    }
    return (c->cur + 1) % c->nreplicas;
}

/* The index of the replica at addr, adding it (in the spare slot) if new. */
static size_t find_replica(cairn_meta_client_t *c, const char *addr, size_t len)
{
    for (size_t i = 0; i < c->nreplicas; i++)
        if (strlen(c->replicas[i].addr) == len && memcmp(c->replicas[i].addr, addr, len) == 0)
            return i;
    size_t i = c->nreplicas < CAIRN_META_MAX_REPLICAS ? c->nreplicas++ : CAIRN_META_MAX_REPLICAS - 1;
    memcpy(c->replicas[i].addr, addr, len);
    c->replicas[i].addr[len] = '\0';
    c->replicas[i].down_until = 0;
    return i;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int cairn_meta_call(cairn_meta_client_t *c, uint16_t op, uint64_t req_id, const void *body, size_t len,
                    cairn_buf_t *resp)
{
    if (c->nreplicas == 0)
        return CAIRN_EUNAVAIL;
    uint8_t hdr[ONCE_HDR];
    hdr[0] = (uint8_t)op;
    hdr[1] = (uint8_t)(op >> 8);
    cairn_le64_put(hdr + 2, c->client_id);
    cairn_le64_put(hdr + 10, ++c->seq);
    struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)body, len}};
    cairn_buf_t scratch;
    cairn_buf_init(&scratch);
    cairn_buf_t *out = resp ? resp : &scratch;

    int64_t start = cairn_now_ms(), deadline = start + c->deadline_ms;
    int maybe_applied = 0, backoff = 20, rc;
    size_t misses = 0; /* attempts since the last redirect to a named leader */
    use_replica(c, c->cur < c->nreplicas ? c->cur : 0);
    for (;;) {
        int64_t now = cairn_now_ms();
        if (c->replicas[c->cur].down_until > now)
            use_replica(c, next_replica(c, now));
        int left = (int)(deadline - now);
        c->conn.timeout_ms = c->timeout_ms > 0 && c->timeout_ms < left ? c->timeout_ms : (left > 1 ? left : 1);
        int32_t status = 0;
        rc = cairn_conn_call(&c->conn, CAIRN_OP_META_ONCE, req_id, iov, len ? 2 : 1, out, &status);
        if (rc == CAIRN_ETOOBIG)
            break; /* refused before sending: no replica would take it */
        if (rc == 0 && status != CAIRN_ENOTLEADER && status != CAIRN_EUNAVAIL && status != CAIRN_ETIMEOUT) {
            rc = status;
            break;
        }
        now = cairn_now_ms();
        size_t next;
        if (rc != 0) {
            if (rc != -ECONNREFUSED)
                maybe_applied = 1;
            c->replicas[c->cur].down_until = now + DOWN_MS;
            next = next_replica(c, now);
        } else if (status == CAIRN_ENOTLEADER && out->len > 0 && out->len < 128 &&
                   !(strlen(c->replicas[c->cur].addr) == out->len &&
                     memcmp(c->replicas[c->cur].addr, out->base, out->len) == 0)) {
            maybe_applied = 1; /* it may have been leader when the entry was logged */
            next = find_replica(c, (const char *)out->base, out->len);
            c->replicas[next].down_until = 0; /* named leader: worth a try even if it failed before */
        } else {
            maybe_applied = 1;
            next = next_replica(c, now);
        }
        if (++misses >= c->nreplicas) {
            misses = 0;
            int wait = backoff < deadline - now ? backoff : (int)(deadline - now);
            if (wait > 0)
                sleep_ms(wait);
            backoff = backoff * 2 < 500 ? backoff * 2 : 500;
        }
        if (cairn_now_ms() >= deadline) {
            rc = maybe_applied ? CAIRN_ETIMEOUT : CAIRN_EUNAVAIL;
            break;
        }
        use_replica(c, next);
    }
    if (rc == CAIRN_EUNAVAIL || rc == CAIRN_ETIMEOUT)
        cairn_buf_reset(out);
    cairn_buf_dispose(&scratch);
    return rc;
}

/* ---- client calls ---- */

/* One call whose request body is req (may be empty). The response body goes
 * to resp. Returns the response status or the client's failure. */
static int call(cairn_meta_client_t *c, uint16_t op, uint64_t req_id, const cairn_buf_t *req, cairn_buf_t *resp)
{
    return cairn_meta_call(c, op, req_id, req->base, req->len, resp);
}

/* Copy a decoded string view into a caller's buffer; CAIRN_ETOOBIG if it does not fit. */
static int copy_out(const uint8_t *p, size_t n, char *out, size_t outsz)
{
    if (n + 1 > outsz)
        return CAIRN_ETOOBIG;
    if (memchr(p, '\0', n) != NULL)
        return CAIRN_EPROTO;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

int cairn_meta_user_get(cairn_meta_client_t *c, uint64_t req_id, const char *access_key, char *secret, size_t secret_sz,
                        char *owner, size_t owner_sz)
{
    cairn_buf_t req, resp;
    cairn_buf_init(&req);
    cairn_buf_init(&resp);
    cairn_buf_put_str(&req, access_key);
    int rc = call(c, CAIRN_OP_META_USER_GET, req_id, &req, &resp);
    if (rc == 0) {
        cairn_dec_t d;
        const uint8_t *s, *o, *dn;
        size_t sl, ol, dl;
        cairn_dec_init(&d, resp.base, resp.len);
        cairn_dec_bytes(&d, &s, &sl);
        cairn_dec_bytes(&d, &o, &ol);
        cairn_dec_bytes(&d, &dn, &dl);
        if (d.err || cairn_dec_left(&d) != 0)
            rc = CAIRN_EPROTO;
        if (rc == 0)
            rc = copy_out(s, sl, secret, secret_sz);
        if (rc == 0)
            rc = copy_out(o, ol, owner, owner_sz);
    }
    cairn_buf_dispose(&req);
    cairn_buf_dispose(&resp);
    return rc;
}

int cairn_meta_user_put(cairn_meta_client_t *c, uint64_t req_id, const char *access_key, const char *secret,
                        const char *owner, const char *display_name)
{
    cairn_buf_t req, resp;
    cairn_buf_init(&req);
    cairn_buf_init(&resp);
    cairn_buf_put_str(&req, access_key);
    cairn_buf_put_str(&req, secret);
    cairn_buf_put_str(&req, owner);
    cairn_buf_put_str(&req, display_name);
    int rc = call(c, CAIRN_OP_META_USER_PUT, req_id, &req, &resp);
    cairn_buf_dispose(&req);
    cairn_buf_dispose(&resp);
    return rc;
}

static int bucket_op(cairn_meta_client_t *c, uint16_t op, uint64_t req_id, const char *bucket, const char *owner)
{
    cairn_buf_t req, resp;
    cairn_buf_init(&req);
    cairn_buf_init(&resp);
    cairn_buf_put_str(&req, bucket);
    cairn_buf_put_str(&req, owner);
    int rc = call(c, op, req_id, &req, &resp);
    cairn_buf_dispose(&req);
    cairn_buf_dispose(&resp);
    return rc;
}

int cairn_meta_bucket_create(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const char *owner)
{
    return bucket_op(c, CAIRN_OP_META_BUCKET_CREATE, req_id, bucket, owner);
}

int cairn_meta_bucket_delete(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const char *owner)
{
    return bucket_op(c, CAIRN_OP_META_BUCKET_DELETE, req_id, bucket, owner);
}

int cairn_meta_bucket_head(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, cairn_buf_t *scratch,
                           cairn_bucket_rec_t *out)
{
    cairn_buf_t req;
    cairn_buf_init(&req);
    cairn_buf_put_str(&req, bucket);
    int rc = call(c, CAIRN_OP_META_BUCKET_HEAD, req_id, &req, scratch);
    cairn_buf_dispose(&req);
    if (rc != 0)
        return rc;
    cairn_dec_t d;
    cairn_dec_init(&d, scratch->base, scratch->len);
    rc = cairn_bucket_rec_decode(&d, out);
    return rc == 0 && cairn_dec_left(&d) != 0 ? CAIRN_EPROTO : rc;
}

int cairn_meta_bucket_list(cairn_meta_client_t *c, uint64_t req_id, const char *owner, cairn_buf_t *scratch,
                           cairn_bucket_rec_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    cairn_buf_t req;
    cairn_buf_init(&req);
    cairn_buf_put_str(&req, owner);
    int rc = call(c, CAIRN_OP_META_BUCKET_LIST, req_id, &req, scratch);
    cairn_buf_dispose(&req);
    if (rc != 0)
        return rc;
    cairn_dec_t d;
    cairn_dec_init(&d, scratch->base, scratch->len);
    uint32_t cnt = cairn_dec_u32(&d);
    if (d.err || cnt > cairn_dec_left(&d) / 16) /* a record is at least 16 bytes */
        return CAIRN_EPROTO;
    cairn_bucket_rec_t *v = cairn_calloc(cnt ? cnt : 1, sizeof *v);
    for (uint32_t i = 0; i < cnt; i++)
        cairn_bucket_rec_decode(&d, &v[i]);
    if (d.err || cairn_dec_left(&d) != 0) {
        free(v);
        return CAIRN_EPROTO;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* Decode "u8 had_old, [bytes old record]" from scratch. */
static int decode_old(const cairn_buf_t *scratch, int *had_old, cairn_obj_rec_t *old)
{
    cairn_dec_t d;
    cairn_dec_init(&d, scratch->base, scratch->len);
    uint8_t h = cairn_dec_u8(&d);
    *had_old = 0;
    if (d.err || h > 1)
        return CAIRN_EPROTO;
    if (h) {
        const uint8_t *p;
        size_t n;
        cairn_dec_bytes(&d, &p, &n);
        if (d.err || cairn_obj_rec_decode(p, n, old) != 0)
            return CAIRN_EPROTO;
    }
    if (cairn_dec_left(&d) != 0)
        return CAIRN_EPROTO;
    *had_old = h;
    return 0;
}

int cairn_meta_obj_put(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const char *key, size_t key_len,
                       const cairn_obj_rec_t *rec, cairn_buf_t *scratch, int *had_old, cairn_obj_rec_t *old)
{
    *had_old = 0;
    if (key_len == 0 || key_len > CAIRN_MAX_KEY_LEN)
        return CAIRN_EINVAL;
    cairn_buf_t req, r;
    cairn_buf_init(&req);
    cairn_buf_init(&r);
    cairn_obj_rec_encode(rec, &r);
    cairn_buf_put_str(&req, bucket);
    cairn_buf_put_bytes(&req, key, key_len);
    cairn_buf_put_bytes(&req, r.base, r.len);
    int rc = call(c, CAIRN_OP_META_OBJ_PUT, req_id, &req, scratch);
    cairn_buf_dispose(&req);
    cairn_buf_dispose(&r);
    return rc != 0 ? rc : decode_old(scratch, had_old, old);
}

int cairn_meta_obj_put_many(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, size_t n,
                            const char *const *keys, const size_t *key_lens, const cairn_obj_rec_t *recs,
                            cairn_buf_t *scratch)
{
    if (n == 0 || n > CAIRN_META_PUT_MANY_MAX)
        return CAIRN_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (key_lens[i] == 0 || key_lens[i] > CAIRN_MAX_KEY_LEN)
            return CAIRN_EINVAL;
    cairn_buf_t req, r;
    cairn_buf_init(&req);
    cairn_buf_init(&r);
    cairn_buf_put_str(&req, bucket);
    cairn_buf_put_u32(&req, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        cairn_buf_reset(&r);
        cairn_obj_rec_encode(&recs[i], &r);
        cairn_buf_put_bytes(&req, keys[i], key_lens[i]);
        cairn_buf_put_bytes(&req, r.base, r.len);
    }
    int rc = call(c, CAIRN_OP_META_OBJ_PUT_MANY, req_id, &req, scratch);
    cairn_buf_dispose(&req);
    cairn_buf_dispose(&r);
    return rc;
}

int cairn_meta_obj_get(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const char *key, size_t key_len,
                       cairn_buf_t *scratch, cairn_obj_rec_t *out)
{
    if (key_len == 0 || key_len > CAIRN_MAX_KEY_LEN)
        return CAIRN_EINVAL;
    cairn_buf_t req;
    cairn_buf_init(&req);
    cairn_buf_put_str(&req, bucket);
    cairn_buf_put_bytes(&req, key, key_len);
    int rc = call(c, CAIRN_OP_META_OBJ_GET, req_id, &req, scratch);
    cairn_buf_dispose(&req);
    if (rc != 0)
        return rc;
    cairn_dec_t d;
    const uint8_t *p;
    size_t n;
    cairn_dec_init(&d, scratch->base, scratch->len);
    cairn_dec_bytes(&d, &p, &n);
    if (d.err || cairn_dec_left(&d) != 0)
        return CAIRN_EPROTO;
    return cairn_obj_rec_decode(p, n, out);
}

int cairn_meta_obj_delete(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const char *key, size_t key_len,
                          cairn_buf_t *scratch, int *had_old, cairn_obj_rec_t *old)
{
    *had_old = 0;
    if (key_len == 0 || key_len > CAIRN_MAX_KEY_LEN)
        return CAIRN_EINVAL;
    cairn_buf_t req;
    cairn_buf_init(&req);
    cairn_buf_put_str(&req, bucket);
    cairn_buf_put_bytes(&req, key, key_len);
    int rc = call(c, CAIRN_OP_META_OBJ_DELETE, req_id, &req, scratch);
    cairn_buf_dispose(&req);
    return rc != 0 ? rc : decode_old(scratch, had_old, old);
}

int cairn_meta_obj_list(cairn_meta_client_t *c, uint64_t req_id, const cairn_meta_list_req_t *q, cairn_meta_list_t *out)
{
    list_clear(out);
    cairn_buf_t req;
    cairn_buf_init(&req);
    cairn_meta_list_req_encode(q, &req);
    int rc = call(c, CAIRN_OP_META_OBJ_LIST, req_id, &req, &out->raw);
    cairn_buf_dispose(&req);
    return rc != 0 ? rc : cairn_meta_list_decode(out);
}

int cairn_meta_gc_done(cairn_meta_client_t *c, uint64_t req_id, const uint8_t oid[16])
{
    cairn_buf_t req, resp;
    cairn_buf_init(&req);
    cairn_buf_init(&resp);
    cairn_buf_append(&req, oid, 16);
    int rc = call(c, CAIRN_OP_META_GC_DONE, req_id, &req, &resp);
    cairn_buf_dispose(&req);
    cairn_buf_dispose(&resp);
    return rc;
}

int cairn_meta_gc_list(cairn_meta_client_t *c, uint64_t req_id, const uint8_t after[16], uint32_t max, cairn_buf_t *scratch,
                       cairn_meta_gc_entry_t **out, size_t *n, int *more)
{
    *out = NULL;
    *n = 0;
    *more = 0;
    cairn_buf_t req;
    cairn_buf_init(&req);
    cairn_buf_append(&req, after, 16);
    cairn_buf_put_u32(&req, max);
    int rc = call(c, CAIRN_OP_META_GC_LIST, req_id, &req, scratch);
    cairn_buf_dispose(&req);
    if (rc != 0)
        return rc;
    cairn_dec_t d;
    cairn_dec_init(&d, scratch->base, scratch->len);
    uint32_t cnt = cairn_dec_u32(&d);
    if (d.err || cnt > cairn_dec_left(&d) / 20) /* oid + record length at least */
        return CAIRN_EPROTO;
    cairn_meta_gc_entry_t *v = cairn_calloc(cnt ? cnt : 1, sizeof *v);
    for (uint32_t i = 0; i < cnt && rc == 0; i++) {
        const uint8_t *p;
        size_t len;
        cairn_dec_raw(&d, v[i].oid, 16);
        cairn_dec_bytes(&d, &p, &len);
        rc = d.err ? CAIRN_EPROTO : cairn_obj_rec_decode(p, len, &v[i].rec);
    }
    uint8_t m = cairn_dec_u8(&d);
    if (rc != 0 || d.err || cairn_dec_left(&d) != 0 || m > 1) {
        free(v);
        return CAIRN_EPROTO;
    }
    *out = v;
    *n = cnt;
    *more = m;
    return 0;
}

/* ---- replica status ---- */

void cairn_meta_status_encode(const cairn_meta_status_t *st, cairn_buf_t *out)
{
    cairn_buf_put_u64(out, st->id);
    cairn_buf_put_u8(out, (uint8_t)st->role);
    cairn_buf_put_u64(out, st->term);
    cairn_buf_put_u64(out, st->commit);
    cairn_buf_put_u64(out, st->applied);
    cairn_buf_put_u64(out, st->last_index);
    cairn_buf_put_u64(out, st->fsm_applied);
    cairn_buf_put_u64(out, st->snapshot_index);
    cairn_buf_put_u64(out, st->leader_id);
    cairn_buf_put_str(out, st->leader_addr);
    cairn_buf_put_u32(out, (uint32_t)st->nmembers);
    for (size_t i = 0; i < st->nmembers; i++) {
        cairn_buf_put_u64(out, st->members[i].id);
        cairn_buf_put_u8(out, (uint8_t)st->members[i].kind);
        cairn_buf_put_str(out, st->members[i].raft_addr);
        cairn_buf_put_str(out, st->members[i].addr);
    }
}

/* A decoded string into a 128-byte field. */
static int dec_str128(cairn_dec_t *d, char out[128])
{
    const uint8_t *p;
    size_t n;
    cairn_dec_bytes(d, &p, &n);
    if (d->err || n >= 128 || memchr(p, '\0', n))
        return CAIRN_EPROTO;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

int cairn_meta_status_decode(const uint8_t *p, size_t len, cairn_meta_status_t *st)
{
    cairn_dec_t d;
    cairn_dec_init(&d, p, len);
    memset(st, 0, sizeof *st);
    st->id = cairn_dec_u64(&d);
    st->role = cairn_dec_u8(&d);
    st->term = cairn_dec_u64(&d);
    st->commit = cairn_dec_u64(&d);
    st->applied = cairn_dec_u64(&d);
    st->last_index = cairn_dec_u64(&d);
    st->fsm_applied = cairn_dec_u64(&d);
    st->snapshot_index = cairn_dec_u64(&d);
    st->leader_id = cairn_dec_u64(&d);
    if (dec_str128(&d, st->leader_addr) != 0)
        return CAIRN_EPROTO;
    uint32_t n = cairn_dec_u32(&d);
    if (d.err || n > CAIRN_META_MAX_MEMBERS || st->role > CAIRN_META_ROLE_LEADER)
        return CAIRN_EPROTO;
    for (uint32_t i = 0; i < n; i++) {
        st->members[i].id = cairn_dec_u64(&d);
        st->members[i].kind = cairn_dec_u8(&d);
        if (dec_str128(&d, st->members[i].raft_addr) != 0 || dec_str128(&d, st->members[i].addr) != 0)
            return CAIRN_EPROTO;
    }
    st->nmembers = n;
    return d.err || cairn_dec_left(&d) != 0 ? CAIRN_EPROTO : 0;
}

const char *cairn_meta_role_name(int role)
{
    switch (role) {
    case CAIRN_META_ROLE_FOLLOWER: return "follower";
    case CAIRN_META_ROLE_CANDIDATE: return "candidate";
    case CAIRN_META_ROLE_LEADER: return "leader";
    default: return "unavailable";
    }
}
