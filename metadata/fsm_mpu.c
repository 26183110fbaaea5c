/*
 * fsm_mpu.c — multipart uploads in the state machine. See fsm_mpu.h for the
 * layout and cairn/meta_mpu.h for the model.
 *
 * Complete, step by step (one transaction, so it happens entirely or not at
 * all): check the part numbers ascend; look every chosen part up and compare
 * its ETag; check the sizes; compute the ETag (MD5 of the binary part MD5s,
 * then "-N"); check the conditional-write precondition; commit the object
 * record through the same code as OBJ_PUT (the old version goes to the
 * garbage list); then move every part that was not chosen to the garbage
 * list and drop the upload and its part records. The chosen parts' fragments
 * now belong to the object record, which names them.
 *
 * Reads inside a write transaction return pointers into pages that a later
 * write in the same transaction may move, so anything kept across a write is
 * copied first.
 */
#include "fsm_int.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cairn/checksum.h"
#include "cairn/err.h"
#include "cairn/meta.h"
#include "cairn/meta_mpu.h"

#define ID_LEN 16
#define UKEY_MAX (CAIRN_MAX_BUCKET_LEN + 1 + ID_LEN)
#define PKEY_LEN (ID_LEN + 4)

/* ---- helpers ---- */

void meta_cmd_mpu(cairn_buf_t *cmd, int type, const uint8_t *body, size_t len)
{
    static const uint8_t zero[8];
    cairn_buf_put_u8(cmd, (uint8_t)type);
    cairn_buf_append(cmd, body, len);
    cairn_buf_append(cmd, zero, (8 - cmd->len % 8) % 8);
}

static int cmd_done(const cairn_dec_t *d, size_t total) { return meta__cmd_done(d, total); }

static int bucket_ok(const void *b, size_t n) { return n >= 1 && n <= CAIRN_MAX_BUCKET_LEN && !memchr(b, '\0', n); }

static int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c != 0)
        return c;
    return an < bn ? -1 : an > bn;
}

typedef struct {
    uint8_t b[UKEY_MAX];
    size_t len;
} ukey_t;

static void ukey_make(ukey_t *k, const void *bucket, size_t bl, const uint8_t id[ID_LEN])
{
    memcpy(k->b, bucket, bl);
    k->b[bl] = '\0';
    memcpy(k->b + bl + 1, id, ID_LEN);
    k->len = bl + 1 + ID_LEN;
}

static void pkey_make(uint8_t k[PKEY_LEN], const uint8_t id[ID_LEN], uint32_t number)
{
    memcpy(k, id, ID_LEN);
    for (int i = 0; i < 4; i++)
        k[ID_LEN + i] = (uint8_t)(number >> (24 - 8 * i));
}

static uint32_t pkey_number(const uint8_t *k)
{
    return (uint32_t)k[ID_LEN] << 24 | (uint32_t)k[ID_LEN + 1] << 16 | (uint32_t)k[ID_LEN + 2] << 8 | k[ID_LEN + 3];
}

/* The upload (bucket, id), copied into out. Command-level outcomes in *status:
 * CAIRN_EBUCKET, CAIRN_MPU_ENOUPLOAD. */
static int upload_get(meta_fsm_t *f, MDB_txn *txn, const void *b, size_t bl, const uint8_t id[ID_LEN],
                      cairn_buf_t *out, int *status)
{
    int exists = 0;
    if (!bucket_ok(b, bl)) {
        *status = CAIRN_EBUCKET;
        return 0;
    }
    int rc = meta__bucket_exists(f, txn, b, bl, &exists);
    if (rc || !exists) {
        *status = rc ? 0 : CAIRN_EBUCKET;
        return rc;
    }
    ukey_t k;
    ukey_make(&k, b, bl, id);
    MDB_val mk = {k.len, k.b}, mv;
    rc = mdb_get(txn, meta__dbi(f, META__DB_UPLOADS), &mk, &mv);
    if (rc == MDB_NOTFOUND) {
        *status = CAIRN_MPU_ENOUPLOAD;
        return 0;
    }
    if (rc)
        return rc;
    if (out)
        cairn_buf_append(out, mv.mv_data, mv.mv_size);
    return 0;
}

/* Every part of upload id: numbers and copies of their records, in order. */
typedef struct {
    cairn_buf_t recs;  /* the records, back to back */
    uint32_t *numbers; /* heap */
    size_t *off, *len; /* heap: each record's place in recs */
    size_t n, cap;
} partset_t;

static void partset_dispose(partset_t *s)
{
    cairn_buf_dispose(&s->recs);
    free(s->numbers);
    free(s->off);
    free(s->len);
}

static int parts_all(meta_fsm_t *f, MDB_txn *txn, const uint8_t id[ID_LEN], partset_t *s)
{
    memset(s, 0, sizeof *s);
    cairn_buf_init(&s->recs);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, meta__dbi(f, META__DB_PARTS), &cur);
    if (rc)
        return rc;
    uint8_t start[PKEY_LEN];
    pkey_make(start, id, 0);
    MDB_val k = {PKEY_LEN, start}, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != PKEY_LEN || memcmp(k.mv_data, id, ID_LEN) != 0)
            break;
        if (s->n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 16;
            s->numbers = cairn_realloc(s->numbers, s->cap * sizeof *s->numbers);
            s->off = cairn_realloc(s->off, s->cap * sizeof *s->off);
            s->len = cairn_realloc(s->len, s->cap * sizeof *s->len);
        }
        s->numbers[s->n] = pkey_number(k.mv_data);
        s->off[s->n] = s->recs.len;
        s->len[s->n] = v.mv_size;
        cairn_buf_append(&s->recs, v.mv_data, v.mv_size);
        s->n++;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Put a part record on the garbage list under its oid. */
static int gc_put(meta_fsm_t *f, MDB_txn *txn, const uint8_t *rec, size_t len)
{
    cairn_obj_rec_t r;
    if (cairn_obj_rec_decode(rec, len, &r) != 0)
        return CAIRN_ECORRUPT;
    MDB_val gk = {16, r.oid}, gv = {len, (void *)rec};
    return mdb_put(txn, meta__dbi(f, META__DB_GC), &gk, &gv, 0);
}

/* Drop the upload record and the part records of s. */
static int upload_drop(meta_fsm_t *f, MDB_txn *txn, const void *b, size_t bl, const uint8_t id[ID_LEN],
                       const partset_t *s)
{
    int rc = 0;
    for (size_t i = 0; i < s->n && rc == 0; i++) {
        uint8_t pk[PKEY_LEN];
        pkey_make(pk, id, s->numbers[i]);
        MDB_val k = {PKEY_LEN, pk};
        rc = mdb_del(txn, meta__dbi(f, META__DB_PARTS), &k, NULL);
    }
    ukey_t uk;
    ukey_make(&uk, b, bl, id);
    MDB_val k = {uk.len, uk.b};
    if (rc == 0)
        rc = mdb_del(txn, meta__dbi(f, META__DB_UPLOADS), &k, NULL);
    return rc;
}

/* ---- commands ---- */

static int cmd_create(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    const uint8_t *b, *rec;
    size_t bl, rl;
    uint8_t id[ID_LEN];
    cairn_mpu_rec_t u;
    cairn_dec_bytes(d, &b, &bl);
    cairn_dec_raw(d, id, ID_LEN);
    cairn_dec_bytes(d, &rec, &rl);
    if (!cmd_done(d, len) || cairn_mpu_rec_decode(rec, rl, &u) != 0) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    if (!bucket_ok(b, bl)) {
        *status = CAIRN_EINVAL;
        return 0;
    }
    int exists;
    int rc = meta__bucket_exists(f, txn, b, bl, &exists);
    if (rc || !exists) {
        *status = rc ? 0 : CAIRN_EBUCKET;
        return rc;
    }
    ukey_t k;
    ukey_make(&k, b, bl, id);
    MDB_val mk = {k.len, k.b}, mv = {rl, (void *)rec};
    rc = mdb_put(txn, meta__dbi(f, META__DB_UPLOADS), &mk, &mv, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        *status = CAIRN_EEXIST;
        return 0;
    }
    return rc;
}

static int cmd_part_put(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    const uint8_t *b, *rec;
    size_t bl, rl;
    uint8_t id[ID_LEN];
    cairn_dec_bytes(d, &b, &bl);
    cairn_dec_raw(d, id, ID_LEN);
    uint32_t number = cairn_dec_u32(d);
    cairn_dec_bytes(d, &rec, &rl);
    cairn_obj_rec_t nr;
    if (!cmd_done(d, len) || cairn_obj_rec_decode(rec, rl, &nr) != 0 || nr.nparts != 0 || nr.k == 0) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    if (number < 1 || number > CAIRN_MPU_MAX_PARTS) {
        *status = CAIRN_EINVAL;
        return 0;
    }
    int rc = upload_get(f, txn, b, bl, id, NULL, status);
    if (rc || *status)
        return rc;
    uint8_t pk[PKEY_LEN];
    pkey_make(pk, id, number);
    MDB_val mk = {PKEY_LEN, pk}, mv;
    rc = mdb_get(txn, meta__dbi(f, META__DB_PARTS), &mk, &mv);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    if (rc == 0) {
        cairn_buf_t old;
        cairn_buf_init(&old);
        cairn_buf_append(&old, mv.mv_data, mv.mv_size);
        cairn_obj_rec_t or;
        rc = cairn_obj_rec_decode(old.base, old.len, &or) != 0 ? CAIRN_ECORRUPT : 0;
        if (rc == 0 && memcmp(or.oid, nr.oid, 16) != 0) {
            rc = gc_put(f, txn, old.base, old.len);
            cairn_buf_put_u8(res, 1);
            cairn_buf_put_bytes(res, old.base, old.len);
        } else {
            cairn_buf_put_u8(res, 0); /* the same part committed again: nothing to collect */
        }
        cairn_buf_dispose(&old);
        if (rc)
            return rc;
    } else {
        cairn_buf_put_u8(res, 0);
    }
    mv = (MDB_val){rl, (void *)rec};
    return mdb_put(txn, meta__dbi(f, META__DB_PARTS), &mk, &mv, 0);
}

typedef struct {
    uint32_t number;
    const uint8_t *etag;
    size_t etag_len;
} sel_t;

/* Check the chosen parts and build the object's parts encoding, size and ETag. */
static int complete_parts(meta_fsm_t *f, MDB_txn *txn, const uint8_t id[ID_LEN], const sel_t *sel, size_t n,
                          uint64_t min_size, cairn_buf_t *enc, uint64_t *total, char etag[72], int *status)
{
    for (size_t i = 1; i < n; i++) {
        if (sel[i].number <= sel[i - 1].number) {
            *status = CAIRN_MPU_EORDER;
            return 0;
        }
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    CAIRN_ASSERT(md != NULL);
    EVP_DigestInit_ex(md, EVP_md5(), NULL);
    int rc = 0, small = 0;
    *total = 0;
    for (size_t i = 0; i < n && rc == 0 && *status == 0; i++) {
        uint8_t pk[PKEY_LEN], bin[16];
        pkey_make(pk, id, sel[i].number);
        MDB_val k = {PKEY_LEN, pk}, v;
        rc = mdb_get(txn, meta__dbi(f, META__DB_PARTS), &k, &v);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            *status = CAIRN_MPU_EPART;
            break;
        }
        cairn_obj_rec_t pr;
        if (rc == 0 && cairn_obj_rec_decode(v.mv_data, v.mv_size, &pr) != 0)
            rc = CAIRN_ECORRUPT;
        if (rc)
            break;
        size_t el = strlen(pr.etag);
        if (el != sel[i].etag_len || strncasecmp(pr.etag, (const char *)sel[i].etag, el) != 0 ||
            el != 32 || cairn_unhex(pr.etag, 16, bin) != 0) {
            *status = CAIRN_MPU_EPART;
            break;
        }
        if (i + 1 < n && pr.size < min_size)
            small = 1; /* reported after every part was found: InvalidPart comes first */
        EVP_DigestUpdate(md, bin, 16);
        cairn_obj_part_t part = {.number = sel[i].number, .size = pr.size, .k = pr.k, .m = pr.m,
                                 .block_size = pr.block_size};
        memcpy(part.oid, pr.oid, 16);
        memcpy(part.nodes, pr.nodes, sizeof part.nodes);
        cairn_obj_part_add(enc, &part);
        *total += pr.size;
    }
    uint8_t sum[16];
    EVP_DigestFinal_ex(md, sum, NULL);
    EVP_MD_CTX_free(md);
    if (rc == 0 && *status == 0 && small)
        *status = CAIRN_MPU_ESMALL;
    if (rc == 0 && *status == 0) {
        cairn_hex(sum, 16, etag);
        snprintf(etag + 32, 72 - 32, "-%zu", n);
    }
    return rc;
}

/* A pair of a system-header encoding (meta.h) named name, or NULL. */
static const char *sys_find(const uint8_t *p, size_t len, const char *name, size_t *vlen)
{
    size_t off = 0, nl;
    const char *n, *v;
    while (cairn_obj_meta_next(p, len, &off, &n, &nl, &v, vlen))
        if (nl == strlen(name) && memcmp(n, name, nl) == 0)
            return v;
    return NULL;
}

/* The completed object's system headers: the upload's, and, when the upload
 * named a checksum algorithm (x-amz-checksum-algorithm) and every chosen
 * part carries that checksum, the object's checksum of the upload's type
 * (x-amz-checksum-type, which the gateway always sets):
 *   COMPOSITE    the algorithm over the parts' raw checksums, then "-N";
 *   FULL_OBJECT  (CRCs only) the CRC of the whole object, combined from the
 *                parts' CRCs and sizes (cairn_crc_combine), no suffix.
 * Reads only; called before any write of the transaction. */
static int complete_sys_meta(meta_fsm_t *f, MDB_txn *txn, const uint8_t id[ID_LEN], const sel_t *sel, size_t n,
                             const cairn_mpu_rec_t *u, cairn_buf_t *out)
{
    size_t off = 0, nl, vl, al = 0, tl = 0;
    const char *nm, *v;
    while (cairn_obj_meta_next(u->sys_meta, u->sys_meta_len, &off, &nm, &nl, &v, &vl))
        if (!(nl == 24 && memcmp(nm, "x-amz-checksum-algorithm", 24) == 0) &&
            !(nl == 19 && memcmp(nm, "x-amz-checksum-type", 19) == 0))
            cairn_obj_meta_add(out, nm, nl, v, vl);
    const char *an = sys_find(u->sys_meta, u->sys_meta_len, "x-amz-checksum-algorithm", &al);
    const char *ty = sys_find(u->sys_meta, u->sys_meta_len, "x-amz-checksum-type", &tl);
    cairn_ck_alg_t alg = an ? cairn_ck_from_name(an, al) : CAIRN_CK_NONE;
    int full = ty && tl == 11 && memcmp(ty, "FULL_OBJECT", 11) == 0;
    int is_crc = alg == CAIRN_CK_CRC32 || alg == CAIRN_CK_CRC32C || alg == CAIRN_CK_CRC64NVME;
    uint64_t crc = 0;
    if (alg == CAIRN_CK_NONE || (ty && !full && !(tl == 9 && memcmp(ty, "COMPOSITE", 9) == 0)) || (full && !is_crc))
        return 0;
    const char *hn = cairn_ck_header(alg);
    cairn_ck_t ck;
    cairn_ck_init(&ck, alg);
    int rc = 0, ok = 1;
    for (size_t i = 0; i < n && ok && rc == 0; i++) {
        uint8_t pk[PKEY_LEN], raw[48];
        pkey_make(pk, id, sel[i].number);
        MDB_val k = {PKEY_LEN, pk}, pv;
        cairn_obj_rec_t pr;
        rc = mdb_get(txn, meta__dbi(f, META__DB_PARTS), &k, &pv);
        if (rc == 0 && cairn_obj_rec_decode(pv.mv_data, pv.mv_size, &pr) != 0)
            rc = CAIRN_ECORRUPT;
        if (rc)
            break;
        const char *pc = sys_find(pr.sys_meta, pr.sys_meta_len, hn, &vl);
        if (full) {
            uint64_t pcrc = 0;
            ok = pc && cairn_ck_crc_decode(alg, pc, vl, &pcrc) == 0;
            crc = i == 0 ? pcrc : cairn_crc_combine(alg, crc, pcrc, pr.size);
            continue;
        }
        int dl = pc && vl > 0 && vl % 4 == 0 && vl <= 44 ? EVP_DecodeBlock(raw, (const uint8_t *)pc, (int)vl) : -1;
        if (dl <= 0) {
            ok = 0;
            break;
        }
        while (vl > 0 && pc[vl - 1] == '=') { /* EVP_DecodeBlock counts padding as bytes */
            vl--;
            dl--;
        }
        cairn_ck_update(&ck, raw, (size_t)dl);
    }
    char val[CAIRN_CK_B64_MAX + 16];
    size_t len = cairn_ck_final(&ck, val);
    if (rc == 0 && ok && full) {
        len = cairn_ck_crc_encode(alg, crc, val);
        cairn_obj_meta_add(out, hn, strlen(hn), val, len);
        cairn_obj_meta_add(out, "x-amz-checksum-type", 19, "FULL_OBJECT", 11);
    } else if (rc == 0 && ok) {
        len += (size_t)snprintf(val + len, sizeof val - len, "-%zu", n);
        cairn_obj_meta_add(out, hn, strlen(hn), val, len);
        cairn_obj_meta_add(out, "x-amz-checksum-type", 19, "COMPOSITE", 9);
    }
    return rc;
}

/* The precondition of a conditional write (Complete, PUT) against the current version. */
static int complete_cond(meta_fsm_t *f, MDB_txn *txn, const uint8_t *b, size_t bl, const uint8_t *key, size_t kl,
                         int cond, const uint8_t *ce, size_t cel, int *status)
{
    if (cond == CAIRN_MPU_COND_NONE)
        return 0;
    cairn_buf_t cur;
    cairn_buf_init(&cur);
    int found = 0;
    int rc = meta__obj_peek(f, txn, b, bl, key, kl, &cur, &found);
    if (rc == 0) {
        if (cond == CAIRN_MPU_COND_IF_NONE_MATCH) {
            if (found)
                *status = CAIRN_MPU_EPRECOND;
        } else if (cond == CAIRN_MPU_COND_IF_MATCH) {
            cairn_obj_rec_t r;
            if (!found)
                *status = CAIRN_MPU_ENOKEY;
            else if (cairn_obj_rec_decode(cur.base, cur.len, &r) != 0)
                rc = CAIRN_ECORRUPT;
            else if (strlen(r.etag) != cel || strncasecmp(r.etag, (const char *)ce, cel) != 0)
                *status = CAIRN_MPU_EPRECOND;
        } else {
            *status = CAIRN_EPROTO;
        }
    }
    cairn_buf_dispose(&cur);
    return rc;
}

static int cmd_complete(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    const uint8_t *b, *key, *ce;
    size_t bl, kl, cel;
    uint8_t id[ID_LEN], oid[16];
    cairn_dec_bytes(d, &b, &bl);
    cairn_dec_raw(d, id, ID_LEN);
    cairn_dec_bytes(d, &key, &kl);
    cairn_dec_raw(d, oid, 16);
    int64_t mtime = (int64_t)cairn_dec_u64(d);
    uint64_t min_size = cairn_dec_u64(d);
    int cond = cairn_dec_u8(d);
    cairn_dec_bytes(d, &ce, &cel);
    uint32_t n = cairn_dec_u32(d);
    if (d->err || n > CAIRN_MPU_MAX_PARTS || n > cairn_dec_left(d) / 8) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    sel_t *sel = cairn_calloc(n ? n : 1, sizeof *sel);
    for (uint32_t i = 0; i < n; i++) {
        sel[i].number = cairn_dec_u32(d);
        cairn_dec_bytes(d, &sel[i].etag, &sel[i].etag_len);
    }
    int rc = 0;
    cairn_buf_t ubuf, enc, rec, unused, sys;
    cairn_buf_init(&sys);
    cairn_buf_init(&ubuf);
    cairn_buf_init(&enc);
    cairn_buf_init(&rec);
    cairn_buf_init(&unused);
    partset_t all;
    memset(&all, 0, sizeof all);
    cairn_mpu_rec_t u;
    if (!cmd_done(d, len)) {
        *status = CAIRN_EPROTO;
        goto out;
    }
    if (n == 0 || kl == 0 || kl > CAIRN_MAX_KEY_LEN) {
        *status = CAIRN_EINVAL;
        goto out;
    }
    if ((rc = upload_get(f, txn, b, bl, id, &ubuf, status)) != 0 || *status)
        goto out;
    if (cairn_mpu_rec_decode(ubuf.base, ubuf.len, &u) != 0) {
        rc = CAIRN_ECORRUPT;
        goto out;
    }
    if (u.key_len != kl || memcmp(u.key, key, kl) != 0) {
        *status = CAIRN_MPU_ENOUPLOAD;
        goto out;
    }
    cairn_obj_rec_t r = {.mtime_ms = mtime, .nparts = n};
    rc = complete_parts(f, txn, id, sel, n, min_size, &enc, &r.size, r.etag, status);
    if (rc || *status)
        goto out;
    if ((rc = complete_cond(f, txn, b, bl, key, kl, cond, ce, cel, status)) != 0 || *status)
        goto out;
    if ((rc = complete_sys_meta(f, txn, id, sel, n, &u, &sys)) != 0)
        goto out;
    memcpy(r.oid, oid, 16);
    r.content_type = u.content_type;
    r.content_type_len = u.content_type_len;
    r.user_meta = u.user_meta;
    r.user_meta_len = u.user_meta_len;
    r.sys_meta = sys.base;
    r.sys_meta_len = sys.len;
    r.parts = enc.base;
    r.parts_len = enc.len;
    cairn_obj_rec_encode(&r, &rec);
    cairn_buf_put_bytes(res, rec.base, rec.len);
    if ((rc = meta__obj_put(f, txn, b, bl, key, kl, rec.base, rec.len, res, status)) != 0 || *status)
        goto out;

    /* Parts left out: to the garbage list, and back to the gateway. */
    if ((rc = parts_all(f, txn, id, &all)) != 0)
        goto out;
    uint32_t nun = 0;
    size_t j = 0;
    for (size_t i = 0; i < all.n && rc == 0; i++) {
        while (j < n && sel[j].number < all.numbers[i])
            j++;
        if (j < n && sel[j].number == all.numbers[i])
            continue;
        rc = gc_put(f, txn, all.recs.base + all.off[i], all.len[i]);
        cairn_buf_put_bytes(&unused, all.recs.base + all.off[i], all.len[i]);
        nun++;
    }
    if (rc == 0)
        rc = upload_drop(f, txn, b, bl, id, &all);
    cairn_buf_put_u32(res, nun);
    cairn_buf_append(res, unused.base, unused.len);
out:
    free(sel);
    partset_dispose(&all);
    cairn_buf_dispose(&ubuf);
    cairn_buf_dispose(&enc);
    cairn_buf_dispose(&rec);
    cairn_buf_dispose(&unused);
    cairn_buf_dispose(&sys);
    return rc;
}

static int cmd_abort(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    const uint8_t *b;
    size_t bl;
    uint8_t id[ID_LEN];
    cairn_dec_bytes(d, &b, &bl);
    cairn_dec_raw(d, id, ID_LEN);
    if (!cmd_done(d, len)) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    int rc = upload_get(f, txn, b, bl, id, NULL, status);
    if (rc || *status)
        return rc;
    partset_t all;
    if ((rc = parts_all(f, txn, id, &all)) == 0) {
        cairn_buf_put_u32(res, (uint32_t)all.n);
        for (size_t i = 0; i < all.n && rc == 0; i++) {
            rc = gc_put(f, txn, all.recs.base + all.off[i], all.len[i]);
            cairn_buf_put_bytes(res, all.recs.base + all.off[i], all.len[i]);
        }
        if (rc == 0)
            rc = upload_drop(f, txn, b, bl, id, &all);
    }
    partset_dispose(&all);
    return rc;
}

static int cmd_gc_done_many(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    uint32_t n = cairn_dec_u32(d);
    if (d->err || n > cairn_dec_left(d) / 16) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    const uint8_t *oids = d->p;
    d->p += (size_t)n * 16;
    if (!cmd_done(d, len)) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        MDB_val k = {16, (void *)(oids + (size_t)i * 16)};
        rc = mdb_del(txn, meta__dbi(f, META__DB_GC), &k, NULL);
        if (rc == MDB_NOTFOUND) /* idempotent, as GC_DONE */
            rc = 0;
    }
    return rc;
}

/* OBJ_PUT under If-None-Match: * / If-Match, decided in the same transaction as the write. */
static int cmd_obj_put_if(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    const uint8_t *b, *key, *rec, *ce;
    size_t bl, kl, rl, cel;
    cairn_dec_bytes(d, &b, &bl);
    cairn_dec_bytes(d, &key, &kl);
    cairn_dec_bytes(d, &rec, &rl);
    int cond = cairn_dec_u8(d);
    cairn_dec_bytes(d, &ce, &cel);
    if (!cmd_done(d, len)) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    if (!bucket_ok(b, bl) || kl == 0 || kl > CAIRN_MAX_KEY_LEN) {
        *status = CAIRN_EINVAL;
        return 0;
    }
    int exists;
    int rc = meta__bucket_exists(f, txn, b, bl, &exists);
    if (rc || !exists) {
        *status = rc ? 0 : CAIRN_EBUCKET;
        return rc;
    }
    if ((rc = complete_cond(f, txn, b, bl, key, kl, cond, ce, cel, status)) != 0 || *status)
        return rc;
    return meta__obj_put(f, txn, b, bl, key, kl, rec, rl, res, status);
}

int meta__mpu_cmd(meta_fsm_t *f, MDB_txn *txn, int type, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    switch (type) {
    case META_CMD_MPU_CREATE: return cmd_create(f, txn, d, len, res, status);
    case META_CMD_MPU_PART_PUT: return cmd_part_put(f, txn, d, len, res, status);
    case META_CMD_MPU_COMPLETE: return cmd_complete(f, txn, d, len, res, status);
    case META_CMD_MPU_ABORT: return cmd_abort(f, txn, d, len, res, status);
    case META_CMD_GC_DONE_MANY: return cmd_gc_done_many(f, txn, d, len, res, status);
    case META_CMD_OBJ_PUT_IF: return cmd_obj_put_if(f, txn, d, len, res, status);
    }
    *status = CAIRN_EPROTO;
    return 0;
}

int meta__mpu_bucket_busy(meta_fsm_t *f, MDB_txn *txn, const void *b, size_t bl, int *busy)
{
    MDB_cursor *cur;
    *busy = 0;
    int rc = mdb_cursor_open(txn, meta__dbi(f, META__DB_UPLOADS), &cur);
    if (rc)
        return rc;
    uint8_t pfx[CAIRN_MAX_BUCKET_LEN + 1];
    memcpy(pfx, b, bl);
    pfx[bl] = '\0';
    MDB_val k = {bl + 1, pfx}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    *busy = rc == 0 && k.mv_size > bl + 1 && memcmp(k.mv_data, pfx, bl + 1) == 0;
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ---- reads ---- */

/* Decode "str bucket, id[16]" at d; 0 or CAIRN_EPROTO / CAIRN_EBUCKET. */
static int dec_bucket_id(cairn_dec_t *d, const uint8_t **b, size_t *bl, uint8_t id[ID_LEN])
{
    cairn_dec_bytes(d, b, bl);
    cairn_dec_raw(d, id, ID_LEN);
    if (d->err)
        return CAIRN_EPROTO;
    return bucket_ok(*b, *bl) ? 0 : CAIRN_EBUCKET;
}

int meta_fsm_mpu_get(meta_fsm_t *f, const uint8_t *req, size_t len, cairn_buf_t *out)
{
    cairn_dec_t d;
    const uint8_t *b;
    size_t bl;
    uint8_t id[ID_LEN];
    cairn_dec_init(&d, req, len);
    int rc = dec_bucket_id(&d, &b, &bl, id);
    if (rc == 0 && cairn_dec_left(&d) != 0)
        rc = CAIRN_EPROTO;
    if (rc)
        return rc;
    MDB_txn *txn;
    if ((rc = meta__rd_begin(f, &txn)) != 0)
        return rc;
    cairn_buf_t u;
    cairn_buf_init(&u);
    int status = 0;
    rc = upload_get(f, txn, b, bl, id, &u, &status);
    meta__rd_end(f, txn);
    if (rc == 0 && status == 0)
        cairn_buf_put_bytes(out, u.base, u.len);
    cairn_buf_dispose(&u);
    return rc ? meta__err(rc) : status;
}

int meta_fsm_mpu_list_parts(meta_fsm_t *f, const uint8_t *req, size_t len, cairn_buf_t *out)
{
    cairn_dec_t d;
    const uint8_t *b;
    size_t bl;
    uint8_t id[ID_LEN];
    cairn_dec_init(&d, req, len);
    int rc = dec_bucket_id(&d, &b, &bl, id);
    uint32_t after = cairn_dec_u32(&d), max = cairn_dec_u32(&d);
    if (rc == 0 && (d.err || cairn_dec_left(&d) != 0))
        rc = CAIRN_EPROTO;
    if (rc)
        return rc;
    if (max > CAIRN_MPU_MAX_LIST)
        max = CAIRN_MPU_MAX_LIST;
    MDB_txn *txn;
    if ((rc = meta__rd_begin(f, &txn)) != 0)
        return rc;
    cairn_buf_t u;
    cairn_buf_init(&u);
    int status = 0;
    size_t start = out->len;
    rc = upload_get(f, txn, b, bl, id, &u, &status);
    MDB_cursor *cur = NULL;
    if (rc == 0 && status == 0)
        rc = mdb_cursor_open(txn, meta__dbi(f, META__DB_PARTS), &cur);
    if (rc == 0 && status == 0) {
        cairn_buf_put_bytes(out, u.base, u.len);
        size_t count_at = out->len;
        cairn_buf_put_u32(out, 0);
        uint32_t n = 0;
        int truncated = 0;
        uint8_t pk[PKEY_LEN];
        pkey_make(pk, id, after == UINT32_MAX ? after : after + 1);
        MDB_val k = {PKEY_LEN, pk}, v;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size != PKEY_LEN || memcmp(k.mv_data, id, ID_LEN) != 0)
                break;
            uint32_t num = pkey_number(k.mv_data);
            if (num <= after)
                continue;
            if (n == max) {
                truncated = 1;
                break;
            }
            cairn_buf_put_u32(out, num);
            cairn_buf_put_bytes(out, v.mv_data, v.mv_size);
            n++;
        }
        if (rc == MDB_NOTFOUND)
            rc = 0;
        cairn_le32_put(out->base + count_at, n);
        cairn_buf_put_u8(out, (uint8_t)truncated);
    }
    if (cur)
        mdb_cursor_close(cur);
    meta__rd_end(f, txn);
    cairn_buf_dispose(&u);
    if (rc || status)
        out->len = start;
    return rc ? meta__err(rc) : status;
}

typedef struct {
    const uint8_t *key;
    size_t klen;
    int64_t initiated;
    const uint8_t *id;
    const uint8_t *rec;
    size_t rlen;
} lent_t;

static int lent_cmp(const void *a, const void *b)
{
    const lent_t *x = a, *y = b;
    int c = bytes_cmp(x->key, x->klen, y->key, y->klen);
    if (c)
        return c;
    if (x->initiated != y->initiated)
        return x->initiated < y->initiated ? -1 : 1;
    return memcmp(x->id, y->id, ID_LEN);
}

/* Uploads by key, then initiation time, then id; the markers, prefix and
 * delimiter work as in ListObjects (see meta_fsm_obj_list). */
int meta_fsm_mpu_list(meta_fsm_t *f, const cairn_mpu_list_req_t *q, cairn_buf_t *out)
{
    size_t bl = strlen(q->bucket);
    if (!bucket_ok(q->bucket, bl))
        return CAIRN_EINVAL;
    if (q->prefix_len > CAIRN_MAX_KEY_LEN || q->delimiter_len > CAIRN_MAX_KEY_LEN ||
        q->key_marker_len > CAIRN_MAX_KEY_LEN)
        return CAIRN_EINVAL;
    uint32_t max = q->max < CAIRN_MPU_MAX_LIST ? q->max : CAIRN_MPU_MAX_LIST;
    const uint8_t *pf = (const uint8_t *)(q->prefix_len ? q->prefix : "");
    const uint8_t *dl = (const uint8_t *)(q->delimiter_len ? q->delimiter : "");
    const uint8_t *km = (const uint8_t *)(q->key_marker_len ? q->key_marker : "");
    size_t plen = q->prefix_len, dlen = q->delimiter_len, kmlen = q->key_marker_len;

    MDB_txn *txn;
    int rc = meta__rd_begin(f, &txn);
    if (rc)
        return rc;
    int exists = 0;
    MDB_cursor *cur = NULL;
    rc = meta__bucket_exists(f, txn, q->bucket, bl, &exists);
    if (rc == 0 && !exists)
        rc = CAIRN_EBUCKET;
    if (rc == 0)
        rc = mdb_cursor_open(txn, meta__dbi(f, META__DB_UPLOADS), &cur);
    lent_t *v = NULL;
    size_t n = 0, cap = 0;
    if (rc == 0) {
        uint8_t pfx[CAIRN_MAX_BUCKET_LEN + 1];
        memcpy(pfx, q->bucket, bl);
        pfx[bl] = '\0';
        MDB_val k = {bl + 1, pfx}, val;
        for (rc = mdb_cursor_get(cur, &k, &val, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
            if (k.mv_size != bl + 1 + ID_LEN || memcmp(k.mv_data, pfx, bl + 1) != 0)
                break;
            cairn_mpu_rec_t u;
            if (cairn_mpu_rec_decode(val.mv_data, val.mv_size, &u) != 0) {
                rc = CAIRN_ECORRUPT;
                break;
            }
            if (u.key_len < plen || memcmp(u.key, pf, plen) != 0)
                continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                v = cairn_realloc(v, cap * sizeof *v);
            }
            v[n++] = (lent_t){(const uint8_t *)u.key, u.key_len, u.initiated_ms,
                              (const uint8_t *)k.mv_data + bl + 1, val.mv_data, val.mv_size};
        }
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    size_t start = out->len;
    if (rc == 0) {
        if (n > 1)
            qsort(v, n, sizeof *v, lent_cmp);
        cairn_buf_t pb;
        cairn_buf_init(&pb);
        uint32_t ne = 0, np = 0;
        int truncated = 0, passed_id = 0;
        const uint8_t *lastcp = NULL;
        size_t lastcp_len = 0;
        cairn_buf_put_u32(out, 0);
        for (size_t i = 0; i < n; i++) {
            const lent_t *e = &v[i];
            if (kmlen) {
                int c = bytes_cmp(e->key, e->klen, km, kmlen);
                if (c < 0)
                    continue;
                if (c == 0) {
                    if (!q->has_id_marker || !passed_id) {
                        if (q->has_id_marker && memcmp(e->id, q->id_marker, ID_LEN) == 0)
                            passed_id = 1;
                        continue;
                    }
                }
            }
            const uint8_t *hit = dlen ? memmem(e->key + plen, e->klen - plen, dl, dlen) : NULL;
            if (hit) {
                size_t cplen = (size_t)(hit - e->key) + dlen;
                if (kmlen && bytes_cmp(e->key, cplen, km, kmlen) <= 0)
                    continue;
                if (lastcp && lastcp_len == cplen && memcmp(lastcp, e->key, cplen) == 0)
                    continue;
                if (ne + np == max) {
                    truncated = 1;
                    break;
                }
                cairn_buf_put_bytes(&pb, e->key, cplen);
                lastcp = e->key;
                lastcp_len = cplen;
                np++;
                continue;
            }
            if (ne + np == max) {
                truncated = 1;
                break;
            }
            cairn_buf_append(out, e->id, ID_LEN);
            cairn_buf_put_bytes(out, e->rec, e->rlen);
            ne++;
        }
        cairn_le32_put(out->base + start, ne);
        cairn_buf_put_u32(out, np);
        cairn_buf_append(out, pb.base, pb.len);
        cairn_buf_put_u8(out, (uint8_t)truncated);
        cairn_buf_dispose(&pb);
    }
    free(v);
    if (cur)
        mdb_cursor_close(cur);
    meta__rd_end(f, txn);
    if (rc)
        out->len = start;
    return meta__err(rc);
}
