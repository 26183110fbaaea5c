/*
 * meta_mpu.c — see meta_mpu.h: upload records, the parts encoding of
 * multipart object records (meta.h), and the multipart client calls.
 *
 * Part entry encoding (inside a version 2 object record):
 *   u32 number, oid[16], u64 size, u8 k, u8 m, u32 block_size, (k+m) x u32 node
 * 1 <= k, k + m <= CAIRN_MAX_FRAGS.
 */
#include "cairn/meta_mpu.h"

#include <string.h>

#include "cairn/err.h"

#define MPU_REC_VERSION 1

const char *cairn_mpu_strerror(int err)
{
    switch (err) {
    case CAIRN_MPU_ENOUPLOAD: return "no such upload";
    case CAIRN_MPU_EPART: return "invalid part";
    case CAIRN_MPU_EORDER: return "invalid part order";
    case CAIRN_MPU_ESMALL: return "part too small";
    case CAIRN_MPU_EPRECOND: return "precondition failed";
    case CAIRN_MPU_ENOKEY: return "no such key for a conditional write";
    }
    return cairn_strerror(err);
}

/* ---- parts of a multipart object ---- */

void cairn_obj_part_add(cairn_buf_t *b, const cairn_obj_part_t *p)
{
    CAIRN_ASSERT(p->k >= 1 && (unsigned)p->k + p->m <= CAIRN_MAX_FRAGS);
    cairn_buf_put_u32(b, p->number);
    cairn_buf_append(b, p->oid, 16);
    cairn_buf_put_u64(b, p->size);
    cairn_buf_put_u8(b, p->k);
    cairn_buf_put_u8(b, p->m);
    cairn_buf_put_u32(b, p->block_size);
    for (unsigned i = 0; i < (unsigned)p->k + p->m; i++)
        cairn_buf_put_u32(b, p->nodes[i]);
}

int cairn_obj_part_next(const uint8_t *parts, size_t len, size_t *off, cairn_obj_part_t *p)
{
    if (*off >= len)
        return 0;
    cairn_dec_t d;
    cairn_dec_init(&d, parts + *off, len - *off);
    memset(p, 0, sizeof *p);
    p->number = cairn_dec_u32(&d);
    cairn_dec_raw(&d, p->oid, 16);
    p->size = cairn_dec_u64(&d);
    p->k = cairn_dec_u8(&d);
    p->m = cairn_dec_u8(&d);
    p->block_size = cairn_dec_u32(&d);
    if (d.err || p->k == 0 || (unsigned)p->k + p->m > CAIRN_MAX_FRAGS || p->block_size == 0)
        return 0;
    for (unsigned i = 0; i < (unsigned)p->k + p->m; i++)
        p->nodes[i] = cairn_dec_u32(&d);
    if (d.err)
        return 0;
    *off = (size_t)(d.p - parts);
    return 1;
}

void cairn_obj_part_rec(const cairn_obj_part_t *p, cairn_obj_rec_t *r)
{
    memset(r, 0, sizeof *r);
    memcpy(r->oid, p->oid, 16);
    r->size = p->size;
    r->k = p->k;
    r->m = p->m;
    r->block_size = p->block_size;
    memcpy(r->nodes, p->nodes, sizeof r->nodes);
    r->content_type = "";
}

/* ---- upload records ---- */

void cairn_mpu_rec_encode(const cairn_mpu_rec_t *u, cairn_buf_t *out)
{
    cairn_buf_put_u8(out, MPU_REC_VERSION);
    cairn_buf_put_bytes(out, u->key, u->key_len);
    cairn_buf_put_bytes(out, u->owner, u->owner_len);
    cairn_buf_put_u64(out, (uint64_t)u->initiated_ms);
    cairn_buf_put_bytes(out, u->content_type, u->content_type_len);
    cairn_buf_put_bytes(out, u->user_meta, u->user_meta_len);
    cairn_buf_put_bytes(out, u->sys_meta, u->sys_meta_len);
}

int cairn_mpu_rec_decode(const uint8_t *p, size_t len, cairn_mpu_rec_t *u)
{
    cairn_dec_t d;
    const uint8_t *v;
    cairn_dec_init(&d, p, len);
    memset(u, 0, sizeof *u);
    if (cairn_dec_u8(&d) != MPU_REC_VERSION)
        return CAIRN_EPROTO;
    cairn_dec_bytes(&d, &v, &u->key_len);
    u->key = (const char *)v;
    cairn_dec_bytes(&d, &v, &u->owner_len);
    u->owner = (const char *)v;
    u->initiated_ms = (int64_t)cairn_dec_u64(&d);
    cairn_dec_bytes(&d, &v, &u->content_type_len);
    u->content_type = (const char *)v;
    cairn_dec_bytes(&d, &u->user_meta, &u->user_meta_len);
    cairn_dec_bytes(&d, &u->sys_meta, &u->sys_meta_len);
    if (d.err || cairn_dec_left(&d) != 0 || u->key_len == 0 || u->key_len > CAIRN_MAX_KEY_LEN)
        return CAIRN_EPROTO;
    return 0;
}

void cairn_mpu_id_hex(const uint8_t id[16], char out[33]) { cairn_hex(id, 16, out); }

int cairn_mpu_id_parse(const char *s, size_t len, uint8_t id[16])
{
    if (len != 32)
        return CAIRN_EINVAL;
    return cairn_unhex(s, 16, id);
}

/* ---- result holders ---- */

void cairn_mpu_complete_init(cairn_mpu_complete_t *c)
{
    memset(c, 0, sizeof *c);
    cairn_buf_init(&c->raw);
}

void cairn_mpu_complete_dispose(cairn_mpu_complete_t *c)
{
    free(c->unused);
    cairn_buf_dispose(&c->raw);
    memset(c, 0, sizeof *c);
}

void cairn_mpu_parts_init(cairn_mpu_parts_t *l)
{
    memset(l, 0, sizeof *l);
    cairn_buf_init(&l->raw);
}

void cairn_mpu_parts_dispose(cairn_mpu_parts_t *l)
{
    free(l->parts);
    cairn_buf_dispose(&l->raw);
    memset(l, 0, sizeof *l);
}

void cairn_mpu_list_init(cairn_mpu_list_t *l)
{
    memset(l, 0, sizeof *l);
    cairn_buf_init(&l->raw);
}

void cairn_mpu_list_dispose(cairn_mpu_list_t *l)
{
    free(l->uploads);
    free(l->prefixes);
    cairn_buf_dispose(&l->raw);
    memset(l, 0, sizeof *l);
}

/* ---- request encodings ---- */

void cairn_mpu_complete_req_encode(const char *bucket, const uint8_t id[16], const cairn_mpu_complete_req_t *q,
                                   cairn_buf_t *out)
{
    cairn_buf_put_str(out, bucket);
    cairn_buf_append(out, id, 16);
    cairn_buf_put_bytes(out, q->key, q->key_len);
    cairn_buf_append(out, q->oid, 16);
    cairn_buf_put_u64(out, (uint64_t)q->mtime_ms);
    cairn_buf_put_u64(out, q->min_part_size);
    cairn_buf_put_u8(out, (uint8_t)q->cond);
    cairn_buf_put_bytes(out, q->cond_etag, q->cond_etag_len);
    cairn_buf_put_u32(out, (uint32_t)q->nsel);
    for (size_t i = 0; i < q->nsel; i++) {
        cairn_buf_put_u32(out, q->sel[i].number);
        cairn_buf_put_bytes(out, q->sel[i].etag, q->sel[i].etag_len);
    }
}

void cairn_mpu_list_req_encode(const cairn_mpu_list_req_t *q, cairn_buf_t *out)
{
    cairn_buf_put_str(out, q->bucket);
    cairn_buf_put_bytes(out, q->prefix, q->prefix_len);
    cairn_buf_put_bytes(out, q->delimiter, q->delimiter_len);
    cairn_buf_put_bytes(out, q->key_marker, q->key_marker_len);
    cairn_buf_put_u8(out, (uint8_t)(q->has_id_marker != 0));
    cairn_buf_append(out, q->id_marker, 16);
    cairn_buf_put_u32(out, q->max);
}

int cairn_mpu_list_req_decode(const uint8_t *p, size_t n, cairn_mpu_list_req_t *q,
                              char bucket[CAIRN_MAX_BUCKET_LEN + 1])
{
    cairn_dec_t d;
    const uint8_t *b, *v;
    size_t blen;
    cairn_dec_init(&d, p, n);
    memset(q, 0, sizeof *q);
    cairn_dec_bytes(&d, &b, &blen);
    cairn_dec_bytes(&d, &v, &q->prefix_len);
    q->prefix = (const char *)v;
    cairn_dec_bytes(&d, &v, &q->delimiter_len);
    q->delimiter = (const char *)v;
    cairn_dec_bytes(&d, &v, &q->key_marker_len);
    q->key_marker = (const char *)v;
    q->has_id_marker = cairn_dec_u8(&d);
    cairn_dec_raw(&d, q->id_marker, 16);
    q->max = cairn_dec_u32(&d);
    if (d.err || cairn_dec_left(&d) != 0 || q->has_id_marker > 1)
        return CAIRN_EPROTO;
    if (blen == 0 || blen > CAIRN_MAX_BUCKET_LEN || memchr(b, '\0', blen) != NULL)
        return CAIRN_EINVAL;
    memcpy(bucket, b, blen);
    bucket[blen] = '\0';
    q->bucket = bucket;
    return 0;
}

/* ---- client calls ---- */

static int call(cairn_meta_client_t *c, uint16_t op, uint64_t req_id, const cairn_buf_t *req, cairn_buf_t *resp)
{
    return cairn_meta_call(c, op, req_id, req->base, req->len, resp);
}

static void put_id(cairn_buf_t *b, const char *bucket, const uint8_t id[16])
{
    cairn_buf_put_str(b, bucket);
    cairn_buf_append(b, id, 16);
}

int cairn_meta_mpu_create(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const uint8_t id[16],
                          const cairn_mpu_rec_t *u)
{
    cairn_buf_t req, rec, resp;
    cairn_buf_init(&req);
    cairn_buf_init(&rec);
    cairn_buf_init(&resp);
    put_id(&req, bucket, id);
    cairn_mpu_rec_encode(u, &rec);
    cairn_buf_put_bytes(&req, rec.base, rec.len);
    int rc = call(c, CAIRN_OP_META_MPU_CREATE, req_id, &req, &resp);
    cairn_buf_dispose(&req);
    cairn_buf_dispose(&rec);
    cairn_buf_dispose(&resp);
    return rc;
}

int cairn_meta_mpu_get(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const uint8_t id[16],
                       cairn_buf_t *scratch, cairn_mpu_rec_t *out)
{
    cairn_buf_t req;
    cairn_buf_init(&req);
    put_id(&req, bucket, id);
    int rc = call(c, CAIRN_OP_META_MPU_GET, req_id, &req, scratch);
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
    return cairn_mpu_rec_decode(p, n, out);
}

/* "u8 had_old, [bytes record]" at d. */
static int dec_old(cairn_dec_t *d, int *had_old, cairn_obj_rec_t *old)
{
    uint8_t h = cairn_dec_u8(d);
    *had_old = 0;
    if (d->err || h > 1)
        return CAIRN_EPROTO;
    if (h) {
        const uint8_t *p;
        size_t n;
        cairn_dec_bytes(d, &p, &n);
        if (d->err || cairn_obj_rec_decode(p, n, old) != 0)
            return CAIRN_EPROTO;
    }
    *had_old = h;
    return 0;
}

/* "u32 n, n x bytes record" at d into a heap array. */
static int dec_recs(cairn_dec_t *d, cairn_obj_rec_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    uint32_t cnt = cairn_dec_u32(d);
    if (d->err || cnt > cairn_dec_left(d) / 4)
        return CAIRN_EPROTO;
    cairn_obj_rec_t *v = cairn_calloc(cnt ? cnt : 1, sizeof *v);
    for (uint32_t i = 0; i < cnt; i++) {
        const uint8_t *p;
        size_t len;
        cairn_dec_bytes(d, &p, &len);
        if (d->err || cairn_obj_rec_decode(p, len, &v[i]) != 0) {
            free(v);
            return CAIRN_EPROTO;
        }
    }
    *out = v;
    *n = cnt;
    return 0;
}

int cairn_meta_mpu_part_put(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const uint8_t id[16],
                            uint32_t number, const cairn_obj_rec_t *part, cairn_buf_t *scratch, int *had_old,
                            cairn_obj_rec_t *old)
{
    *had_old = 0;
    cairn_buf_t req, rec;
    cairn_buf_init(&req);
    cairn_buf_init(&rec);
    put_id(&req, bucket, id);
    cairn_buf_put_u32(&req, number);
    cairn_obj_rec_encode(part, &rec);
    cairn_buf_put_bytes(&req, rec.base, rec.len);
    int rc = call(c, CAIRN_OP_META_MPU_PART_PUT, req_id, &req, scratch);
    cairn_buf_dispose(&req);
    cairn_buf_dispose(&rec);
    if (rc != 0)
        return rc;
    cairn_dec_t d;
    cairn_dec_init(&d, scratch->base, scratch->len);
    rc = dec_old(&d, had_old, old);
    return rc == 0 && cairn_dec_left(&d) != 0 ? CAIRN_EPROTO : rc;
}

int cairn_meta_mpu_complete(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const uint8_t id[16],
                            const cairn_mpu_complete_req_t *q, cairn_mpu_complete_t *out)
{
    cairn_buf_t req;
    cairn_buf_init(&req);
    cairn_mpu_complete_req_encode(bucket, id, q, &req);
    free(out->unused);
    out->unused = NULL;
    out->nunused = 0;
    out->had_old = 0;
    int rc = call(c, CAIRN_OP_META_MPU_COMPLETE, req_id, &req, &out->raw);
    cairn_buf_dispose(&req);
    if (rc != 0)
        return rc;
    cairn_dec_t d;
    const uint8_t *p;
    size_t n;
    cairn_dec_init(&d, out->raw.base, out->raw.len);
    cairn_dec_bytes(&d, &p, &n);
    if (d.err || cairn_obj_rec_decode(p, n, &out->rec) != 0)
        return CAIRN_EPROTO;
    if ((rc = dec_old(&d, &out->had_old, &out->old)) != 0)
        return rc;
    if ((rc = dec_recs(&d, &out->unused, &out->nunused)) != 0)
        return rc;
    return cairn_dec_left(&d) != 0 ? CAIRN_EPROTO : 0;
}

int cairn_meta_mpu_abort(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const uint8_t id[16],
                         cairn_buf_t *scratch, cairn_obj_rec_t **parts, size_t *n)
{
    *parts = NULL;
    *n = 0;
    cairn_buf_t req;
    cairn_buf_init(&req);
    put_id(&req, bucket, id);
    int rc = call(c, CAIRN_OP_META_MPU_ABORT, req_id, &req, scratch);
    cairn_buf_dispose(&req);
    if (rc != 0)
        return rc;
    cairn_dec_t d;
    cairn_dec_init(&d, scratch->base, scratch->len);
    rc = dec_recs(&d, parts, n);
    if (rc == 0 && cairn_dec_left(&d) != 0) {
        free(*parts);
        *parts = NULL;
        *n = 0;
        rc = CAIRN_EPROTO;
    }
    return rc;
}

int cairn_meta_mpu_list_parts(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const uint8_t id[16],
                              uint32_t after, uint32_t max, cairn_mpu_parts_t *out)
{
    free(out->parts);
    out->parts = NULL;
    out->nparts = 0;
    out->truncated = 0;
    cairn_buf_t req;
    cairn_buf_init(&req);
    put_id(&req, bucket, id);
    cairn_buf_put_u32(&req, after);
    cairn_buf_put_u32(&req, max);
    int rc = call(c, CAIRN_OP_META_MPU_LIST_PARTS, req_id, &req, &out->raw);
    cairn_buf_dispose(&req);
    if (rc != 0)
        return rc;
    cairn_dec_t d;
    const uint8_t *p;
    size_t len;
    cairn_dec_init(&d, out->raw.base, out->raw.len);
    cairn_dec_bytes(&d, &p, &len);
    if (d.err || cairn_mpu_rec_decode(p, len, &out->upload) != 0)
        return CAIRN_EPROTO;
    uint32_t cnt = cairn_dec_u32(&d);
    if (d.err || cnt > cairn_dec_left(&d) / 8)
        return CAIRN_EPROTO;
    out->parts = cairn_calloc(cnt ? cnt : 1, sizeof *out->parts);
    for (uint32_t i = 0; i < cnt; i++) {
        out->parts[i].number = cairn_dec_u32(&d);
        cairn_dec_bytes(&d, &p, &len);
        if (d.err || cairn_obj_rec_decode(p, len, &out->parts[i].rec) != 0)
            return CAIRN_EPROTO;
    }
    out->nparts = cnt;
    uint8_t t = cairn_dec_u8(&d);
    if (d.err || t > 1 || cairn_dec_left(&d) != 0)
        return CAIRN_EPROTO;
    out->truncated = t;
    return 0;
}

int cairn_meta_mpu_list(cairn_meta_client_t *c, uint64_t req_id, const cairn_mpu_list_req_t *q, cairn_mpu_list_t *out)
{
    free(out->uploads);
    free(out->prefixes);
    out->uploads = NULL;
    out->prefixes = NULL;
    out->n = out->nprefixes = 0;
    out->truncated = 0;
    cairn_buf_t req;
    cairn_buf_init(&req);
    cairn_mpu_list_req_encode(q, &req);
    int rc = call(c, CAIRN_OP_META_MPU_LIST, req_id, &req, &out->raw);
    cairn_buf_dispose(&req);
    if (rc != 0)
        return rc;
    cairn_dec_t d;
    const uint8_t *p;
    size_t len;
    cairn_dec_init(&d, out->raw.base, out->raw.len);
    uint32_t cnt = cairn_dec_u32(&d);
    if (d.err || cnt > cairn_dec_left(&d) / 20)
        return CAIRN_EPROTO;
    out->uploads = cairn_calloc(cnt ? cnt : 1, sizeof *out->uploads);
    for (uint32_t i = 0; i < cnt; i++) {
        cairn_dec_raw(&d, out->uploads[i].id, 16);
        cairn_dec_bytes(&d, &p, &len);
        if (d.err || cairn_mpu_rec_decode(p, len, &out->uploads[i].u) != 0)
            return CAIRN_EPROTO;
    }
    out->n = cnt;
    uint32_t np = cairn_dec_u32(&d);
    if (d.err || np > cairn_dec_left(&d) / 4)
        return CAIRN_EPROTO;
    out->prefixes = cairn_calloc(np ? np : 1, sizeof *out->prefixes);
    for (uint32_t i = 0; i < np; i++) {
        cairn_dec_bytes(&d, &p, &out->prefixes[i].len);
        out->prefixes[i].p = (const char *)p;
    }
    out->nprefixes = np;
    uint8_t t = cairn_dec_u8(&d);
    if (d.err || t > 1 || cairn_dec_left(&d) != 0)
        return CAIRN_EPROTO;
    out->truncated = t;
    return 0;
}

int cairn_meta_obj_put_if(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const char *key,
                          size_t key_len, const cairn_obj_rec_t *rec, int cond, const char *etag, size_t etag_len,
                          cairn_buf_t *scratch, int *had_old, cairn_obj_rec_t *old)
{
    if (cond == CAIRN_MPU_COND_NONE)
        return cairn_meta_obj_put(c, req_id, bucket, key, key_len, rec, scratch, had_old, old);
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
    cairn_buf_put_u8(&req, (uint8_t)cond);
    cairn_buf_put_bytes(&req, etag, etag_len);
    int rc = call(c, CAIRN_OP_META_OBJ_PUT_IF, req_id, &req, scratch);
    cairn_buf_dispose(&req);
    cairn_buf_dispose(&r);
    if (rc != 0)
        return rc;
    cairn_dec_t d;
    cairn_dec_init(&d, scratch->base, scratch->len);
    rc = dec_old(&d, had_old, old);
    return rc == 0 && cairn_dec_left(&d) != 0 ? CAIRN_EPROTO : rc;
}

int cairn_meta_gc_done_many(cairn_meta_client_t *c, uint64_t req_id, const uint8_t (*oids)[16], size_t n)
{
    cairn_buf_t req, resp;
    cairn_buf_init(&req);
    cairn_buf_init(&resp);
    cairn_buf_put_u32(&req, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        cairn_buf_append(&req, oids[i], 16);
    int rc = call(c, CAIRN_OP_META_GC_DONE_MANY, req_id, &req, &resp);
    cairn_buf_dispose(&req);
    cairn_buf_dispose(&resp);
    return rc;
}
