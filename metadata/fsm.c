/*
 * fsm.c — the metadata state machine in LMDB. See fsm.h for the contract.
 *
 * Object keys. The objects database is keyed by bucket '\0' key, so that
 * LMDB's byte order is the S3 listing order and a prefix is a key range.
 * LMDB keys stop at 511 bytes and S3 keys go to 1024, so:
 *
 *   short key (len <= 439):  bucket '\0' key                    value: record
 *   long key  (len >  439):  bucket '\0' key[0..439) slot(8 BE)  value: u16 len, key, record
 *
 * The key part of a long entry is always exactly 447 bytes, longer than any
 * short key, so the two kinds never collide. Every full key K with the
 * truncated prefix P sorts after P itself and before every short key greater
 * than P, and LMDB puts the long entries of P exactly there: between groups
 * and short keys the LMDB order is the listing order. Only inside a group of
 * long keys sharing P is it not (slots follow hashes), so the list code
 * gathers a group, sorts it by full key and walks it in memory.
 *
 * The slot of a long key is found by linear probing from its home slot
 * XXH3-64(key): lookups walk the run of occupied slots from home comparing
 * full keys; a delete shifts later members of the run back into the hole
 * (classic backward-shift deletion, without wrap-around), so there are no
 * tombstones and a miss costs one get. With 64-bit hashes a run longer than
 * one entry needs a collision, so in practice every long key costs one get.
 * XXH3's output is fixed by its specification, so the layout does not
 * depend on the library version.
 */
#include "fsm.h"
#include "fsm_int.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>
#include <xxh_x86dispatch.h>

#include "cairn/err.h"
#include "cairn/log.h"

#define FORMAT_VERSION 1
#define SLOT_LEN 8
#define LONG_PART (META_FSM_SHORT_KEY + SLOT_LEN) /* key part of every long entry */
#define LKEY_MAX (CAIRN_MAX_BUCKET_LEN + 1 + LONG_PART)
#define HOME_SEED 0x636169726e6b6579ull
#define MAX_USER_FIELD 255

_Static_assert(LKEY_MAX <= 511, "object keys must fit LMDB's key limit");

struct meta_fsm_s {
    MDB_env *env;
    MDB_dbi sys, users, buckets, objects, gc;
    MDB_dbi cmds, cmdage; /* command ids already applied (see "command ids" below) */
    MDB_dbi uploads, parts; /* multipart uploads (fsm_mpu.h) */
    char *dir;            /* the env directory */
    unsigned envflags;
    /* Every call holds it shared; shutdown holds it exclusive, so the env is
     * never closed under a running transaction. */
    pthread_rwlock_t lock;
    int closed;
    uint64_t applied; /* cache of sys "applied"; atomic access */
    int test_home;    /* META_FSM_TEST_HOME */
};

/* ---- errors ---- */

/* Map an internal code (LMDB error, positive errno, or cairn error) to the
 * project's errors. LMDB failures are logged here, once. */
static int to_err(int rc)
{
    if (rc == 0)
        return 0;
    if (rc > 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "lmdb: %s", mdb_strerror(rc));
        return -rc;
    }
    if (rc < MDB_KEYEXIST || rc > MDB_LAST_ERRCODE)
        return rc; /* already a cairn error */
    cairn_log(CAIRN_LOG_ERROR, 0, "lmdb: %s", mdb_strerror(rc));
    switch (rc) {
    case MDB_MAP_FULL:
        return -ENOSPC;
    case MDB_READERS_FULL:
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
        return CAIRN_EUNAVAIL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return CAIRN_ECORRUPT;
    case MDB_BAD_VALSIZE:
        return CAIRN_EINVAL;
    default:
        return -EIO;
    }
}

/* ---- open / close ---- */

static int open_dbs(meta_fsm_t *f)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(f->env, NULL, 0, &txn);
    if (rc)
        return rc;
    struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {{"sys", &f->sys}, {"users", &f->users}, {"buckets", &f->buckets},
               {"objects", &f->objects}, {"gc", &f->gc}, {"cmds", &f->cmds}, {"cmdage", &f->cmdage},
               {"uploads", &f->uploads}, {"parts", &f->parts}};
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0] && rc == 0; i++)
        rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);

    MDB_val k = {6, "format"}, v;
    uint8_t ver[4];
    if (rc == 0) {
        rc = mdb_get(txn, f->sys, &k, &v);
        if (rc == MDB_NOTFOUND) {
            cairn_le32_put(ver, FORMAT_VERSION);
            v = (MDB_val){4, ver};
            rc = mdb_put(txn, f->sys, &k, &v, 0);
        } else if (rc == 0 && (v.mv_size != 4 || cairn_le32_get(v.mv_data) != FORMAT_VERSION)) {
            cairn_log(CAIRN_LOG_ERROR, 0, "metadata database: unknown format");
            rc = CAIRN_ECORRUPT;
        }
    }
    k = (MDB_val){7, "applied"};
    if (rc == 0) {
        rc = mdb_get(txn, f->sys, &k, &v);
        if (rc == 0 && v.mv_size == 8)
            __atomic_store_n(&f->applied, cairn_le64_get(v.mv_data), __ATOMIC_RELEASE);
        else if (rc == 0)
            rc = CAIRN_ECORRUPT;
        else if (rc == MDB_NOTFOUND)
            rc = 0;
        if (rc == 0 && v.mv_size != 8)
            __atomic_store_n(&f->applied, 0, __ATOMIC_RELEASE);
    }
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

/* Open the environment in f->dir and its databases; on failure f->env is
 * NULL. Returns an internal code (to_err). */
static int env_open(meta_fsm_t *f)
{
    int rc = mdb_env_create(&f->env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(f->env, META_FSM_MAPSIZE);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(f->env, 16);
    /* One reader slot per concurrent read transaction: srv runs a thread per
     * connection, so allow far more than LMDB's default of 126. */
    if (rc == 0)
        rc = mdb_env_set_maxreaders(f->env, 1024);
    if (rc == 0)
        rc = mdb_env_open(f->env, f->dir, f->envflags, 0600);
    if (rc == 0) {
        int dead = 0;
        mdb_reader_check(f->env, &dead); /* clear slots left by a crashed process */
        rc = open_dbs(f);
    }
    if (rc && f->env) {
        mdb_env_close(f->env);
        f->env = NULL;
    }
    return rc;
}

int meta_fsm_create(const char *dir, unsigned flags, meta_fsm_t **out)
{
    meta_fsm_t *f = cairn_calloc(1, sizeof *f);
    f->test_home = (flags & META_FSM_TEST_HOME) != 0;
    f->dir = cairn_strndup(dir, strlen(dir));
    f->envflags = MDB_NOTLS | ((flags & META_FSM_NOSYNC) ? MDB_NOSYNC : 0);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&f->lock, &attr);
    pthread_rwlockattr_destroy(&attr);

    int rc = env_open(f);
    if (rc) {
        int err = to_err(rc);
        cairn_log(CAIRN_LOG_ERROR, 0, "cannot open metadata database in %s: %s", dir, cairn_strerror(err));
        pthread_rwlock_destroy(&f->lock);
        free(f->dir);
        free(f);
        return err;
    }
    *out = f;
    return 0;
}

void meta_fsm_shutdown(meta_fsm_t *f)
{
    pthread_rwlock_wrlock(&f->lock);
    if (!f->closed) {
        if (f->env)
            mdb_env_close(f->env);
        f->env = NULL;
        f->closed = 1;
    }
    pthread_rwlock_unlock(&f->lock);
}

void meta_fsm_destroy(meta_fsm_t *f)
{
    if (f == NULL)
        return;
    meta_fsm_shutdown(f);
    pthread_rwlock_destroy(&f->lock);
    free(f->dir);
    free(f);
}

uint64_t meta_fsm_applied(meta_fsm_t *f) { return __atomic_load_n(&f->applied, __ATOMIC_ACQUIRE); }

/* Shared hold of the lock plus a read-only transaction; 0 or a cairn error. */
static int rd_begin(meta_fsm_t *f, MDB_txn **txn)
{
    pthread_rwlock_rdlock(&f->lock);
    if (f->closed) {
        pthread_rwlock_unlock(&f->lock);
        return CAIRN_EUNAVAIL;
    }
    int rc = mdb_txn_begin(f->env, NULL, MDB_RDONLY, txn);
    if (rc) {
        pthread_rwlock_unlock(&f->lock);
        return to_err(rc);
    }
    return 0;
}

static void rd_end(meta_fsm_t *f, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&f->lock);
}

/* ---- helpers ---- */

static int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c != 0)
        return c;
    return an < bn ? -1 : an > bn;
}

static int bucket_ok(const void *b, size_t n) { return n >= 1 && n <= CAIRN_MAX_BUCKET_LEN && !memchr(b, '\0', n); }
static int key_ok(size_t n) { return n >= 1 && n <= CAIRN_MAX_KEY_LEN; }

typedef struct {
    uint8_t b[LKEY_MAX];
    size_t len;
} lkey_t;

static uint64_t key_home(const meta_fsm_t *f, const uint8_t *key, size_t klen)
{
    if (f->test_home)
        return UINT64_MAX - (key[klen - 1] & 7);
    return XXH3_64bits_withSeed(key, klen, HOME_SEED);
}

/* The LMDB key of an object: slot is ignored for a short key. */
static void okey_make(lkey_t *k, const void *bucket, size_t blen, const uint8_t *key, size_t klen, uint64_t slot)
{
    memcpy(k->b, bucket, blen);
    k->b[blen] = '\0';
    if (klen <= META_FSM_SHORT_KEY) {
        if (klen)
            memcpy(k->b + blen + 1, key, klen);
        k->len = blen + 1 + klen;
        return;
    }
    memcpy(k->b + blen + 1, key, META_FSM_SHORT_KEY);
    for (int i = 0; i < SLOT_LEN; i++)
        k->b[blen + 1 + META_FSM_SHORT_KEY + i] = (uint8_t)(slot >> (56 - 8 * i));
    k->len = blen + 1 + LONG_PART;
}

/* Split the value of a long entry into the full key and the record. */
static int long_val(const MDB_val *v, const uint8_t **key, size_t *klen, const uint8_t **rec, size_t *rlen)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size < 2)
        return CAIRN_ECORRUPT;
    size_t n = (size_t)p[0] | (size_t)p[1] << 8;
    if (n <= META_FSM_SHORT_KEY || n > CAIRN_MAX_KEY_LEN || v->mv_size < 2 + n)
        return CAIRN_ECORRUPT;
    *key = p + 2;
    *klen = n;
    *rec = p + 2 + n;
    *rlen = v->mv_size - 2 - n;
    return 0;
}

/* Where an object is, or would go. */
typedef struct {
    lkey_t k;
    int found;
    int full;      /* long key without a free slot after its home: cannot insert */
    uint64_t slot; /* long keys: the slot of k */
    const uint8_t *rec;
    size_t rec_len; /* when found: the record, borrowed from the transaction */
} oloc_t;

static int obj_locate(const meta_fsm_t *f, MDB_txn *txn, const void *bucket, size_t blen, const uint8_t *key,
                      size_t klen, oloc_t *l)
{
    memset(l, 0, sizeof *l);
    uint64_t s = klen > META_FSM_SHORT_KEY ? key_home(f, key, klen) : 0;
    for (;;) {
        okey_make(&l->k, bucket, blen, key, klen, s);
        l->slot = s;
        MDB_val mk = {l->k.len, l->k.b}, v;
        int rc = mdb_get(txn, f->objects, &mk, &v);
        if (rc == MDB_NOTFOUND)
            return 0;
        if (rc)
            return rc;
        if (klen <= META_FSM_SHORT_KEY) {
            l->found = 1;
            l->rec = v.mv_data;
            l->rec_len = v.mv_size;
            return 0;
        }
        const uint8_t *fk;
        size_t fkl;
        if ((rc = long_val(&v, &fk, &fkl, &l->rec, &l->rec_len)) != 0)
            return rc;
        if (fkl == klen && memcmp(fk, key, klen) == 0) {
            l->found = 1;
            return 0;
        }
        if (s == UINT64_MAX) {
            l->full = 1;
            return 0;
        }
        s++;
    }
}

/* Delete the object found at l, then close the hole in its probe run: each
 * later member of the run whose home is at or before the hole moves into it,
 * leaving a new hole where it was. Ends at the first empty slot. */
static int obj_remove(const meta_fsm_t *f, MDB_txn *txn, const void *bucket, size_t blen, const uint8_t *key,
                      size_t klen, const oloc_t *l)
{
    MDB_val mk = {l->k.len, (void *)l->k.b};
    int rc = mdb_del(txn, f->objects, &mk, NULL);
    if (rc || klen <= META_FSM_SHORT_KEY)
        return rc;
    uint64_t hole = l->slot;
    cairn_buf_t tmp;
    cairn_buf_init(&tmp);
    for (uint64_t s = hole + 1; s != 0 && rc == 0; s++) {
        lkey_t sk;
        okey_make(&sk, bucket, blen, key, klen, s); /* same truncated prefix as key */
        MDB_val k = {sk.len, sk.b}, v;
        rc = mdb_get(txn, f->objects, &k, &v);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        const uint8_t *fk, *r;
        size_t fkl, rl;
        if (rc == 0)
            rc = long_val(&v, &fk, &fkl, &r, &rl);
        if (rc || key_home(f, fk, fkl) > hole)
            continue;
        /* Copy first: a write may move the page v points into. */
        cairn_buf_reset(&tmp);
        cairn_buf_append(&tmp, v.mv_data, v.mv_size);
        lkey_t hk;
        okey_make(&hk, bucket, blen, key, klen, hole);
        MDB_val hkv = {hk.len, hk.b}, nv = {tmp.len, tmp.base};
        rc = mdb_put(txn, f->objects, &hkv, &nv, 0);
        if (rc == 0)
            rc = mdb_del(txn, f->objects, &k, NULL);
        hole = s;
    }
    cairn_buf_dispose(&tmp);
    return rc;
}

/* ---- commands ---- */

static void cmd_pad(cairn_buf_t *cmd)
{
    static const uint8_t zero[8];
    cairn_buf_append(cmd, zero, (8 - cmd->len % 8) % 8);
}

void meta_cmd_user_put(cairn_buf_t *cmd, const char *ak, size_t ak_len, const char *secret, size_t secret_len,
                       const char *owner, size_t owner_len, const char *display, size_t display_len)
{
    cairn_buf_put_u8(cmd, META_CMD_USER_PUT);
    cairn_buf_put_bytes(cmd, ak, ak_len);
    cairn_buf_put_bytes(cmd, secret, secret_len);
    cairn_buf_put_bytes(cmd, owner, owner_len);
    cairn_buf_put_bytes(cmd, display, display_len);
    cmd_pad(cmd);
}

void meta_cmd_bucket_create(cairn_buf_t *cmd, const char *bucket, size_t bucket_len, const char *owner,
                            size_t owner_len, int64_t ctime_ms)
{
    cairn_buf_put_u8(cmd, META_CMD_BUCKET_CREATE);
    cairn_buf_put_bytes(cmd, bucket, bucket_len);
    cairn_buf_put_bytes(cmd, owner, owner_len);
    cairn_buf_put_u64(cmd, (uint64_t)ctime_ms);
    cmd_pad(cmd);
}

void meta_cmd_bucket_delete(cairn_buf_t *cmd, const char *bucket, size_t bucket_len, const char *owner,
                            size_t owner_len)
{
    cairn_buf_put_u8(cmd, META_CMD_BUCKET_DELETE);
    cairn_buf_put_bytes(cmd, bucket, bucket_len);
    cairn_buf_put_bytes(cmd, owner, owner_len);
    cmd_pad(cmd);
}

void meta_cmd_obj_put(cairn_buf_t *cmd, const char *bucket, size_t bucket_len, const uint8_t *key, size_t key_len,
                      const uint8_t *rec, size_t rec_len)
{
    cairn_buf_put_u8(cmd, META_CMD_OBJ_PUT);
    cairn_buf_put_bytes(cmd, bucket, bucket_len);
    cairn_buf_put_bytes(cmd, key, key_len);
    cairn_buf_put_bytes(cmd, rec, rec_len);
    cmd_pad(cmd);
}

void meta_cmd_obj_put_many(cairn_buf_t *cmd, const char *bucket, size_t bucket_len, uint32_t n, const uint8_t *items,
                           size_t items_len)
{
    cairn_buf_put_u8(cmd, META_CMD_OBJ_PUT_MANY);
    cairn_buf_put_bytes(cmd, bucket, bucket_len);
    cairn_buf_put_u32(cmd, n);
    cairn_buf_append(cmd, items, items_len);
    cmd_pad(cmd);
}

void meta_cmd_obj_delete(cairn_buf_t *cmd, const char *bucket, size_t bucket_len, const uint8_t *key,
                         size_t key_len)
{
    cairn_buf_put_u8(cmd, META_CMD_OBJ_DELETE);
    cairn_buf_put_bytes(cmd, bucket, bucket_len);
    cairn_buf_put_bytes(cmd, key, key_len);
    cmd_pad(cmd);
}

void meta_cmd_gc_done(cairn_buf_t *cmd, const uint8_t oid[16])
{
    cairn_buf_put_u8(cmd, META_CMD_GC_DONE);
    cairn_buf_append(cmd, oid, 16);
    cmd_pad(cmd);
}

void meta_cmd_replica_put(cairn_buf_t *cmd, uint64_t id, const char *addr, const char *raft_addr)
{
    cairn_buf_put_u8(cmd, META_CMD_REPLICA_PUT);
    cairn_buf_put_u64(cmd, id);
    cairn_buf_put_str(cmd, addr);
    cairn_buf_put_str(cmd, raft_addr);
    cmd_pad(cmd);
}

/* A command was decoded completely: no read past the end, and what is left
 * is the zero padding to a multiple of 8. */
int meta__cmd_done(const cairn_dec_t *d, size_t total)
{
    if (d->err || total % 8 != 0 || cairn_dec_left(d) >= 8)
        return 0;
    for (const uint8_t *p = d->p; p < d->end; p++)
        if (*p)
            return 0;
    return 1;
}

static int cmd_done(const cairn_dec_t *d, size_t total) { return meta__cmd_done(d, total); }

/* Each command handler returns an internal error (LMDB or cairn code: the
 * transaction is then abandoned) and sets *status for command-level
 * outcomes; it may append the answer payload to res. */

static int cmd_user_put(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    const uint8_t *ak, *sec, *own, *dn;
    size_t akl, secl, ownl, dnl;
    cairn_dec_bytes(d, &ak, &akl);
    cairn_dec_bytes(d, &sec, &secl);
    cairn_dec_bytes(d, &own, &ownl);
    cairn_dec_bytes(d, &dn, &dnl);
    if (!cmd_done(d, len)) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    if (akl == 0 || akl > MAX_USER_FIELD || secl > MAX_USER_FIELD || ownl == 0 || ownl > MAX_USER_FIELD ||
        dnl > MAX_USER_FIELD) {
        *status = CAIRN_EINVAL;
        return 0;
    }
    cairn_buf_t v;
    cairn_buf_init(&v);
    cairn_buf_put_bytes(&v, sec, secl);
    cairn_buf_put_bytes(&v, own, ownl);
    cairn_buf_put_bytes(&v, dn, dnl);
    MDB_val mk = {akl, (void *)ak}, mv = {v.len, v.base};
    int rc = mdb_put(txn, f->users, &mk, &mv, 0);
    cairn_buf_dispose(&v);
    return rc;
}

static int cmd_bucket_create(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res,
                             int *status)
{
    cairn_bucket_rec_t r;
    const uint8_t *b, *o;
    cairn_dec_bytes(d, &b, &r.name_len);
    cairn_dec_bytes(d, &o, &r.owner_len);
    r.ctime_ms = (int64_t)cairn_dec_u64(d);
    r.name = (const char *)b;
    r.owner = (const char *)o;
    if (!cmd_done(d, len)) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    if (!bucket_ok(b, r.name_len) || r.owner_len == 0 || r.owner_len > MAX_USER_FIELD) {
        *status = CAIRN_EINVAL;
        return 0;
    }
    MDB_val mk = {r.name_len, (void *)b}, mv;
    int rc = mdb_get(txn, f->buckets, &mk, &mv);
    if (rc == 0) {
        cairn_dec_t vd;
        cairn_bucket_rec_t old;
        cairn_dec_init(&vd, mv.mv_data, mv.mv_size);
        if (cairn_bucket_rec_decode(&vd, &old) != 0)
            return CAIRN_ECORRUPT;
        int mine = old.owner_len == r.owner_len && memcmp(old.owner, r.owner, r.owner_len) == 0;
        *status = mine ? CAIRN_EOWNED : CAIRN_EEXIST;
        return 0;
    }
    if (rc != MDB_NOTFOUND)
        return rc;
    cairn_buf_t v;
    cairn_buf_init(&v);
    cairn_bucket_rec_encode(&r, &v);
    mv = (MDB_val){v.len, v.base};
    rc = mdb_put(txn, f->buckets, &mk, &mv, 0);
    cairn_buf_dispose(&v);
    return rc;
}

/* *exists = whether a key with prefix bucket '\0' is in the objects database. */
static int bucket_has_objects(meta_fsm_t *f, MDB_txn *txn, const void *bucket, size_t blen, int *exists)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, f->objects, &cur);
    if (rc)
        return rc;
    lkey_t k;
    okey_make(&k, bucket, blen, NULL, 0, 0);
    MDB_val mk = {k.len, k.b}, mv;
    rc = mdb_cursor_get(cur, &mk, &mv, MDB_SET_RANGE);
    *exists = rc == 0 && mk.mv_size >= k.len && memcmp(mk.mv_data, k.b, k.len) == 0;
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int cmd_bucket_delete(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res,
                             int *status)
{
    const uint8_t *b, *o;
    size_t bl, ol;
    cairn_dec_bytes(d, &b, &bl);
    cairn_dec_bytes(d, &o, &ol);
    if (!cmd_done(d, len)) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    if (!bucket_ok(b, bl)) {
        *status = CAIRN_EINVAL;
        return 0;
    }
    MDB_val mk = {bl, (void *)b}, mv;
    int rc = mdb_get(txn, f->buckets, &mk, &mv);
    if (rc == MDB_NOTFOUND) {
        *status = CAIRN_EBUCKET;
        return 0;
    }
    if (rc)
        return rc;
    cairn_dec_t vd;
    cairn_bucket_rec_t old;
    cairn_dec_init(&vd, mv.mv_data, mv.mv_size);
    if (cairn_bucket_rec_decode(&vd, &old) != 0)
        return CAIRN_ECORRUPT;
    if (old.owner_len != ol || memcmp(old.owner, o, ol) != 0) {
        *status = CAIRN_EEXIST; /* someone else's bucket */
        return 0;
    }
    int nonempty;
    if ((rc = bucket_has_objects(f, txn, b, bl, &nonempty)) != 0)
        return rc;
    if (!nonempty && (rc = meta__mpu_bucket_busy(f, txn, b, bl, &nonempty)) != 0)
        return rc;
    if (nonempty) {
        *status = CAIRN_ENOTEMPTY;
        return 0;
    }
    return mdb_del(txn, f->buckets, &mk, NULL);
}

static int bucket_exists(meta_fsm_t *f, MDB_txn *txn, const void *b, size_t bl, int *exists)
{
    MDB_val mk = {bl, (void *)b}, mv;
    int rc = mdb_get(txn, f->buckets, &mk, &mv);
    *exists = rc == 0;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The old version leaves the namespace: answer "1, old record" and put its
 * oid on the garbage list. old is a private copy (writes move pages). */
static int retire_old(meta_fsm_t *f, MDB_txn *txn, const cairn_buf_t *old, cairn_buf_t *res)
{
    cairn_obj_rec_t r;
    if (cairn_obj_rec_decode(old->base, old->len, &r) != 0)
        return CAIRN_ECORRUPT;
    cairn_buf_put_u8(res, 1);
    cairn_buf_put_bytes(res, old->base, old->len);
    MDB_val gk = {16, r.oid}, gv = {old->len, old->base};
    return mdb_put(txn, f->gc, &gk, &gv, 0);
}

static int cmd_obj_put(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    const uint8_t *b, *key, *rec;
    size_t bl, kl, rl;
    cairn_dec_bytes(d, &b, &bl);
    cairn_dec_bytes(d, &key, &kl);
    cairn_dec_bytes(d, &rec, &rl);
    if (!cmd_done(d, len)) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    return meta__obj_put(f, txn, b, bl, key, kl, rec, rl, res, status);
}

/* Every item as OBJ_PUT, in the command's one transaction: the first that
 * fails fails the command, and the caller's child transaction undoes the
 * others. */
static int cmd_obj_put_many(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    const uint8_t *b;
    size_t bl;
    cairn_dec_bytes(d, &b, &bl);
    uint32_t n = cairn_dec_u32(d);
    if (d->err || n == 0 || n > CAIRN_META_PUT_MANY_MAX) {
        *status = d->err ? CAIRN_EPROTO : CAIRN_EINVAL;
        return 0;
    }
    cairn_buf_put_u32(res, n);
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *key, *rec;
        size_t kl, rl;
        cairn_dec_bytes(d, &key, &kl);
        cairn_dec_bytes(d, &rec, &rl);
        if (d->err) {
            *status = CAIRN_EPROTO;
            return 0;
        }
        int rc = meta__obj_put(f, txn, b, bl, key, kl, rec, rl, res, status);
        if (rc || *status)
            return rc;
    }
    if (!cmd_done(d, len))
        *status = CAIRN_EPROTO;
    return 0;
}

int meta__obj_put(meta_fsm_t *f, MDB_txn *txn, const uint8_t *b, size_t bl, const uint8_t *key, size_t kl,
                  const uint8_t *rec, size_t rl, cairn_buf_t *res, int *status)
{
    cairn_obj_rec_t nr;
    if (cairn_obj_rec_decode(rec, rl, &nr) != 0) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    if (!bucket_ok(b, bl) || !key_ok(kl)) {
        *status = CAIRN_EINVAL;
        return 0;
    }
    int exists;
    int rc = bucket_exists(f, txn, b, bl, &exists);
    if (rc || !exists) {
        *status = rc ? 0 : CAIRN_EBUCKET;
        return rc;
    }
    oloc_t l;
    if ((rc = obj_locate(f, txn, b, bl, key, kl, &l)) != 0)
        return rc;
    if (!l.found && l.full) {
        *status = CAIRN_ECONFLICT;
        return 0;
    }
    cairn_buf_t old, v;
    cairn_buf_init(&old);
    cairn_buf_init(&v);
    cairn_obj_rec_t or;
    if (l.found) {
        cairn_buf_append(&old, l.rec, l.rec_len);
        if (cairn_obj_rec_decode(old.base, old.len, &or) != 0)
            rc = CAIRN_ECORRUPT;
    }
    if (rc == 0 && l.found && memcmp(or.oid, nr.oid, 16) != 0) {
        rc = retire_old(f, txn, &old, res);
    } else {
        /* New key, or the same version committed again (a retried command):
         * nothing to collect, and the live fragments must not be. */
        cairn_buf_put_u8(res, 0);
    }
    if (kl > META_FSM_SHORT_KEY) {
        cairn_buf_put_u16(&v, (uint16_t)kl);
        cairn_buf_append(&v, key, kl);
    }
    cairn_buf_append(&v, rec, rl);
    MDB_val mk = {l.k.len, l.k.b}, mv = {v.len, v.base};
    if (rc == 0)
        rc = mdb_put(txn, f->objects, &mk, &mv, 0);
    cairn_buf_dispose(&old);
    cairn_buf_dispose(&v);
    return rc;
}

static int cmd_obj_delete(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    const uint8_t *b, *key;
    size_t bl, kl;
    cairn_dec_bytes(d, &b, &bl);
    cairn_dec_bytes(d, &key, &kl);
    if (!cmd_done(d, len)) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    if (!bucket_ok(b, bl) || !key_ok(kl)) {
        *status = CAIRN_EINVAL;
        return 0;
    }
    int exists;
    int rc = bucket_exists(f, txn, b, bl, &exists);
    if (rc || !exists) {
        *status = rc ? 0 : CAIRN_EBUCKET;
        return rc;
    }
    oloc_t l;
    if ((rc = obj_locate(f, txn, b, bl, key, kl, &l)) != 0)
        return rc;
    if (!l.found) {
        *status = CAIRN_ENOTFOUND;
        return 0;
    }
    cairn_buf_t old;
    cairn_buf_init(&old);
    cairn_buf_append(&old, l.rec, l.rec_len);
    rc = obj_remove(f, txn, b, bl, key, kl, &l);
    if (rc == 0)
        rc = retire_old(f, txn, &old, res);
    cairn_buf_dispose(&old);
    return rc;
}

static int cmd_gc_done(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    uint8_t oid[16];
    cairn_dec_raw(d, oid, 16);
    if (!cmd_done(d, len)) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    MDB_val k = {16, oid};
    int rc = mdb_del(txn, f->gc, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc; /* idempotent: a retry finds it gone */
}

/* sys key of a replica's addresses: "replica" then the id, big-endian. */
static void replica_key(uint8_t k[15], uint64_t id)
{
    memcpy(k, "replica", 7);
    for (int i = 0; i < 8; i++)
        k[7 + i] = (uint8_t)(id >> (56 - 8 * i));
}

static int cmd_replica_put(meta_fsm_t *f, MDB_txn *txn, cairn_dec_t *d, size_t len, cairn_buf_t *res, int *status)
{
    uint64_t id = cairn_dec_u64(d);
    const uint8_t *a, *ra;
    size_t al, ral;
    cairn_dec_bytes(d, &a, &al);
    cairn_dec_bytes(d, &ra, &ral);
    if (!cmd_done(d, len)) {
        *status = CAIRN_EPROTO;
        return 0;
    }
    if (id == 0 || al == 0 || al >= 128 || ral == 0 || ral >= 128 || memchr(a, '\0', al) || memchr(ra, '\0', ral)) {
        *status = CAIRN_EINVAL;
        return 0;
    }
    uint8_t k[15];
    replica_key(k, id);
    cairn_buf_t v;
    cairn_buf_init(&v);
    cairn_buf_put_bytes(&v, a, al);
    cairn_buf_put_bytes(&v, ra, ral);
    MDB_val mk = {sizeof k, k}, mv = {v.len, v.base};
    int rc = mdb_put(txn, f->sys, &mk, &mv, 0);
    cairn_buf_dispose(&v);
    return rc;
}

static int run_cmd(meta_fsm_t *f, MDB_txn *txn, const uint8_t *cmd, size_t len, cairn_buf_t *res, int *status)
{
    cairn_dec_t d;
    cairn_dec_init(&d, cmd, len);
    uint8_t type = cairn_dec_u8(&d);
    switch (type) {
    case META_CMD_USER_PUT:
        return cmd_user_put(f, txn, &d, len, res, status);
    case META_CMD_BUCKET_CREATE:
        return cmd_bucket_create(f, txn, &d, len, res, status);
    case META_CMD_BUCKET_DELETE:
        return cmd_bucket_delete(f, txn, &d, len, res, status);
    case META_CMD_OBJ_PUT:
        return cmd_obj_put(f, txn, &d, len, res, status);
    case META_CMD_OBJ_DELETE:
        return cmd_obj_delete(f, txn, &d, len, res, status);
    case META_CMD_OBJ_PUT_MANY:
        return cmd_obj_put_many(f, txn, &d, len, res, status);
    case META_CMD_GC_DONE:
        return cmd_gc_done(f, txn, &d, len, res, status);
    case META_CMD_REPLICA_PUT:
        return cmd_replica_put(f, txn, &d, len, res, status);
    default:
        if (type >= META_CMD_MPU_FIRST && type <= META_CMD_MPU_LAST)
            return meta__mpu_cmd(f, txn, type, &d, len, res, status);
        if (type >= META_CMD_MAP_FIRST && type <= META_CMD_MAP_LAST)
            return meta__map_cmd(f, txn, type, &d, len, res, status);
        *status = CAIRN_EPROTO;
        return 0;
    }
}

/* ---- command ids ----
 *
 * A client that retries a mutation across an election cannot know whether
 * its first attempt was committed, so it sends every attempt with the same
 * 16-byte command id. The first entry carrying an id is applied and its
 * result stored under the id (cmds: id -> u64 index, u64 time_ms, result);
 * a later entry with the same id changes nothing and answers the stored
 * result. Ids are forgotten META_FSM_DEDUP_MS after their entry's time (the
 * leader's clock, carried in the log, so every replica forgets the same ids
 * at the same index): cmdage (u64 time_ms BE, id) -> empty orders them by
 * age, and each insertion removes at most DEDUP_PRUNE expired ones, which
 * keeps up since each apply adds only one. */

#define DEDUP_PRUNE 64

static int dedup_lookup(meta_fsm_t *f, MDB_txn *txn, const uint8_t id[16], cairn_buf_t *result, int *found)
{
    MDB_val k = {16, (void *)id}, v;
    int rc = mdb_get(txn, f->cmds, &k, &v);
    *found = rc == 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    if (v.mv_size < 20)
        return CAIRN_ECORRUPT;
    cairn_buf_reset(result);
    cairn_buf_append(result, (const uint8_t *)v.mv_data + 16, v.mv_size - 16);
    return 0;
}

static int dedup_store(meta_fsm_t *f, MDB_txn *txn, const uint8_t id[16], uint64_t index, int64_t now_ms,
                       const cairn_buf_t *result)
{
    cairn_buf_t v;
    cairn_buf_init(&v);
    cairn_buf_put_u64(&v, index);
    cairn_buf_put_u64(&v, (uint64_t)now_ms);
    cairn_buf_append(&v, result->base, result->len);
    MDB_val k = {16, (void *)id}, mv = {v.len, v.base};
    int rc = mdb_put(txn, f->cmds, &k, &mv, 0);
    cairn_buf_dispose(&v);
    uint8_t ak[24];
    for (int i = 0; i < 8; i++)
        ak[i] = (uint8_t)((uint64_t)now_ms >> (56 - 8 * i));
    memcpy(ak + 8, id, 16);
    MDB_val akv = {24, ak}, empty = {0, ""};
    if (rc == 0)
        rc = mdb_put(txn, f->cmdage, &akv, &empty, 0);

    MDB_cursor *cur;
    if (rc == 0)
        rc = mdb_cursor_open(txn, f->cmdage, &cur);
    if (rc)
        return rc;
    uint64_t horizon = now_ms > META_FSM_DEDUP_MS ? (uint64_t)now_ms - META_FSM_DEDUP_MS : 0;
    for (int n = 0; n < DEDUP_PRUNE && rc == 0; n++) {
        MDB_val ck, cv;
        rc = mdb_cursor_get(cur, &ck, &cv, MDB_FIRST);
        if (rc)
            break;
        const uint8_t *p = ck.mv_data;
        uint64_t t = 0;
        for (int i = 0; i < 8 && ck.mv_size == 24; i++)
            t = t << 8 | p[i];
        if (ck.mv_size != 24) {
            rc = CAIRN_ECORRUPT;
            break;
        }
        if (t >= horizon)
            break;
        MDB_val old = {16, (void *)(p + 8)};
        rc = mdb_del(txn, f->cmds, &old, NULL);
        if (rc == 0 || rc == MDB_NOTFOUND)
            rc = mdb_cursor_del(cur, 0);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int meta_fsm_apply(meta_fsm_t *f, uint64_t index, const uint8_t *cmd, size_t len, cairn_buf_t *result)
{
    return meta_fsm_apply_once(f, index, NULL, 0, cmd, len, result);
}

int meta_fsm_apply_once(meta_fsm_t *f, uint64_t index, const uint8_t id[16], int64_t now_ms, const uint8_t *cmd,
                        size_t len, cairn_buf_t *result)
{
    CAIRN_ASSERT(index > 0);
    cairn_buf_reset(result);
    pthread_rwlock_rdlock(&f->lock);
    if (f->closed) {
        pthread_rwlock_unlock(&f->lock);
        return CAIRN_EUNAVAIL;
    }
    MDB_txn *txn = NULL, *child = NULL;
    MDB_val ak = {7, "applied"}, av;
    int status = 0;
    int rc = mdb_txn_begin(f->env, NULL, 0, &txn);
    if (rc)
        goto out;
    rc = mdb_get(txn, f->sys, &ak, &av);
    if (rc == 0 && av.mv_size != 8)
        rc = CAIRN_ECORRUPT;
    if (rc && rc != MDB_NOTFOUND)
        goto out;
    if (rc == 0 && index <= cairn_le64_get(av.mv_data)) {
        rc = 0;
        goto out; /* replayed entry: already in the state */
    }
    int seen = 0;
    if (id != NULL && (rc = dedup_lookup(f, txn, id, result, &seen)) != 0)
        goto out;
    if (seen)
        goto advance; /* a retried command: answer as the first time */

    /* The command runs in a child transaction so that a command-level error
     * discards its partial writes while the index still advances. */
    if ((rc = mdb_txn_begin(f->env, txn, 0, &child)) != 0)
        goto out;
    cairn_buf_put_u32(result, 0);
    rc = run_cmd(f, child, cmd, len, result, &status);
    if (rc == 0 && status == 0) {
        rc = mdb_txn_commit(child);
    } else {
        mdb_txn_abort(child);
        result->len = 4;
    }
    child = NULL;
    if (rc)
        goto out;
    cairn_le32_put(result->base, (uint32_t)status);
    if (id != NULL && (rc = dedup_store(f, txn, id, index, now_ms, result)) != 0)
        goto out;

advance:;
    uint8_t ib[8];
    cairn_le64_put(ib, index);
    av = (MDB_val){8, ib};
    if ((rc = mdb_put(txn, f->sys, &ak, &av, 0)) != 0)
        goto out;
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc == 0)
        __atomic_store_n(&f->applied, index, __ATOMIC_RELEASE);
out:
    if (txn)
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&f->lock);
    if (rc)
        cairn_buf_reset(result);
    return to_err(rc);
}

int meta_fsm_result(const cairn_buf_t *result, const uint8_t **payload, size_t *len)
{
    if (result->len < 4) {
        *payload = (const uint8_t *)"";
        *len = 0;
        return CAIRN_EPROTO;
    }
    *payload = result->base + 4;
    *len = result->len - 4;
    return (int32_t)cairn_le32_get(result->base);
}

/* ---- reads ---- */

int meta_fsm_user_get(meta_fsm_t *f, const char *ak, size_t ak_len, cairn_buf_t *out)
{
    if (ak_len == 0 || ak_len > MAX_USER_FIELD)
        return CAIRN_ENOSUCHUSER;
    MDB_txn *txn;
    int rc = rd_begin(f, &txn);
    if (rc)
        return rc;
    MDB_val mk = {ak_len, (void *)ak}, mv;
    rc = mdb_get(txn, f->users, &mk, &mv);
    if (rc == 0)
        cairn_buf_append(out, mv.mv_data, mv.mv_size);
    rd_end(f, txn);
    return rc == MDB_NOTFOUND ? CAIRN_ENOSUCHUSER : to_err(rc);
}

int meta_fsm_bucket_head(meta_fsm_t *f, const char *bucket, size_t bucket_len, cairn_buf_t *out)
{
    if (!bucket_ok(bucket, bucket_len))
        return CAIRN_EBUCKET;
    MDB_txn *txn;
    int rc = rd_begin(f, &txn);
    if (rc)
        return rc;
    MDB_val mk = {bucket_len, (void *)bucket}, mv;
    rc = mdb_get(txn, f->buckets, &mk, &mv);
    if (rc == 0)
        cairn_buf_append(out, mv.mv_data, mv.mv_size);
    rd_end(f, txn);
    return rc == MDB_NOTFOUND ? CAIRN_EBUCKET : to_err(rc);
}

int meta_fsm_bucket_list(meta_fsm_t *f, const char *owner, size_t owner_len, cairn_buf_t *out)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = rd_begin(f, &txn);
    if (rc)
        return rc;
    if ((rc = mdb_cursor_open(txn, f->buckets, &cur)) != 0) {
        rd_end(f, txn);
        return to_err(rc);
    }
    size_t start = out->len;
    uint32_t n = 0;
    cairn_buf_put_u32(out, 0);
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        cairn_dec_t d;
        cairn_bucket_rec_t r;
        cairn_dec_init(&d, v.mv_data, v.mv_size);
        if (cairn_bucket_rec_decode(&d, &r) != 0) {
            rc = CAIRN_ECORRUPT;
            break;
        }
        if (r.owner_len == owner_len && memcmp(r.owner, owner, owner_len) == 0) {
            cairn_buf_append(out, v.mv_data, v.mv_size);
            n++;
        }
    }
    mdb_cursor_close(cur);
    rd_end(f, txn);
    if (rc != MDB_NOTFOUND) {
        out->len = start;
        return to_err(rc);
    }
    cairn_le32_put(out->base + start, n);
    return 0;
}

int meta_fsm_obj_get(meta_fsm_t *f, const char *bucket, size_t bucket_len, const uint8_t *key, size_t key_len,
                     cairn_buf_t *out)
{
    if (!bucket_ok(bucket, bucket_len) || !key_ok(key_len))
        return CAIRN_EINVAL;
    MDB_txn *txn;
    int rc = rd_begin(f, &txn);
    if (rc)
        return rc;
    int exists;
    oloc_t l;
    rc = bucket_exists(f, txn, bucket, bucket_len, &exists);
    if (rc == 0 && !exists)
        rc = CAIRN_EBUCKET;
    if (rc == 0)
        rc = obj_locate(f, txn, bucket, bucket_len, key, key_len, &l);
    if (rc == 0 && !l.found)
        rc = CAIRN_ENOTFOUND;
    if (rc == 0)
        cairn_buf_put_bytes(out, l.rec, l.rec_len);
    rd_end(f, txn);
    return to_err(rc);
}

/* ---- listing ----
 *
 * vcur_t walks the objects of one bucket in full-key order: short entries
 * straight from the LMDB cursor, long-key groups through a sorted array.
 * Every pointer it hands out borrows from the read transaction. */

typedef struct {
    const uint8_t *key;
    size_t klen;
    const uint8_t *rec;
    size_t rlen;
} vent_t;

typedef struct {
    MDB_cursor *cur;
    uint8_t bp[CAIRN_MAX_BUCKET_LEN + 1]; /* bucket '\0' */
    size_t bplen;
    int at; /* the LMDB cursor is on an entry (k, v) */
    MDB_val k, v;
    vent_t *grp; /* the current long-key group, sorted */
    size_t gn, gcap, gi;
    int in_grp;
    int valid; /* e is the current object */
    vent_t e;
    int err;
} vcur_t;

static void vc_step(vcur_t *c, const MDB_val *seek, MDB_cursor_op op)
{
    if (seek)
        c->k = *seek;
    int rc = mdb_cursor_get(c->cur, &c->k, &c->v, op);
    c->at = rc == 0;
    if (rc != 0 && rc != MDB_NOTFOUND)
        c->err = rc;
}

static int vent_cmp(const void *a, const void *b)
{
    const vent_t *x = a, *y = b;
    return bytes_cmp(x->key, x->klen, y->key, y->klen);
}

/* Make the entry under the LMDB cursor current (gathering its group if it
 * is a long key). A group is always entered at its first member: seeks use
 * keys of at most META_FSM_SHORT_KEY bytes, which sort before any group they
 * are a prefix of. */
static void vc_load(vcur_t *c)
{
    c->valid = 0;
    c->in_grp = 0;
    if (c->err || !c->at || c->k.mv_size < c->bplen || memcmp(c->k.mv_data, c->bp, c->bplen) != 0)
        return;
    const uint8_t *kp = (const uint8_t *)c->k.mv_data + c->bplen;
    size_t kl = c->k.mv_size - c->bplen;
    if (kl <= META_FSM_SHORT_KEY) {
        c->e = (vent_t){kp, kl, c->v.mv_data, c->v.mv_size};
        c->valid = 1;
        return;
    }
    const uint8_t *g0 = c->k.mv_data;
    c->gn = 0;
    while (c->at && !c->err && c->k.mv_size == c->bplen + LONG_PART &&
           memcmp(c->k.mv_data, g0, c->bplen + META_FSM_SHORT_KEY) == 0) {
        if (c->gn == c->gcap) {
            c->gcap = c->gcap ? 2 * c->gcap : 8;
            c->grp = cairn_realloc(c->grp, c->gcap * sizeof *c->grp);
        }
        vent_t *e = &c->grp[c->gn];
        if (long_val(&c->v, &e->key, &e->klen, &e->rec, &e->rlen) != 0) {
            c->err = CAIRN_ECORRUPT;
            return;
        }
        c->gn++;
        vc_step(c, NULL, MDB_NEXT);
    }
    if (c->err)
        return;
    if (c->gn == 0) { /* a long-form key of the wrong length */
        c->err = CAIRN_ECORRUPT;
        return;
    }
    qsort(c->grp, c->gn, sizeof *c->grp, vent_cmp);
    c->in_grp = 1;
    c->gi = 0;
    c->e = c->grp[0];
    c->valid = 1;
}

static void vc_next(vcur_t *c)
{
    if (c->in_grp && c->gi + 1 < c->gn) {
        c->e = c->grp[++c->gi];
        return;
    }
    if (!c->in_grp)
        vc_step(c, NULL, MDB_NEXT);
    vc_load(c); /* after a group the cursor already stands past it */
}

/* Position at the first object whose key is >= t. The LMDB seek uses at most
 * the first META_FSM_SHORT_KEY bytes of t: exact for a short t; for a long t
 * it lands on t's truncated prefix, and the loop skips at most that prefix
 * and the members of its group that sort below t. */
static void vc_seek(vcur_t *c, const uint8_t *t, size_t tlen)
{
    uint8_t kb[CAIRN_MAX_BUCKET_LEN + 1 + META_FSM_SHORT_KEY];
    size_t n = tlen < META_FSM_SHORT_KEY ? tlen : META_FSM_SHORT_KEY;
    memcpy(kb, c->bp, c->bplen);
    memcpy(kb + c->bplen, t, n);
    MDB_val k = {c->bplen + n, kb};
    vc_step(c, &k, MDB_SET_RANGE);
    vc_load(c);
    while (c->valid && bytes_cmp(c->e.key, c->e.klen, t, tlen) < 0)
        vc_next(c);
}

/* Position at the first object that does not start with p: p with its
 * trailing 0xFF bytes dropped and its last byte incremented is the least
 * string above every extension of p. An all-0xFF p has no such string. */
static void vc_seek_past(vcur_t *c, const uint8_t *p, size_t plen)
{
    uint8_t t[CAIRN_MAX_KEY_LEN];
    CAIRN_ASSERT(plen <= sizeof t);
    memcpy(t, p, plen);
    while (plen > 0 && t[plen - 1] == 0xFF)
        plen--;
    if (plen == 0) {
        c->valid = 0;
        return;
    }
    t[plen - 1]++;
    vc_seek(c, t, plen);
}

/*
 * ListObjectsV2 over the vcur (the algorithm of dependencies.md §4):
 *   start at max(prefix, start_after), skipping start_after itself;
 *   while the key starts with prefix:
 *     no delimiter after the prefix -> a Contents entry, step;
 *     else CommonPrefix cp = key up to and including the delimiter: emit it
 *       unless cp <= start_after (it was on an earlier page), then seek past
 *       every key starting with cp.
 * Entries and prefixes share max_keys; one more qualifying item means
 * truncated. Cost: O(log n) per CommonPrefix plus O(1) per entry (plus the
 * sort of any long-key group met on the way).
 */
int meta_fsm_obj_list(meta_fsm_t *f, const cairn_meta_list_req_t *q, cairn_buf_t *out)
{
    size_t blen = strlen(q->bucket);
    if (!bucket_ok(q->bucket, blen))
        return CAIRN_EINVAL;
    if (q->prefix_len > CAIRN_MAX_KEY_LEN || q->delimiter_len > CAIRN_MAX_KEY_LEN ||
        q->start_after_len > CAIRN_MAX_KEY_LEN)
        return CAIRN_EINVAL;
    /* empty views may be NULL */
    const uint8_t *pf = q->prefix_len ? (const uint8_t *)q->prefix : (const uint8_t *)"";
    const uint8_t *dl = q->delimiter_len ? (const uint8_t *)q->delimiter : (const uint8_t *)"";
    const uint8_t *sa = q->start_after_len ? (const uint8_t *)q->start_after : (const uint8_t *)"";
    size_t plen = q->prefix_len, dlen = q->delimiter_len, salen = q->start_after_len;
    uint32_t max = q->max_keys < META_FSM_MAX_LIST ? q->max_keys : META_FSM_MAX_LIST;

    MDB_txn *txn;
    int rc = rd_begin(f, &txn);
    if (rc)
        return rc;
    int exists;
    rc = bucket_exists(f, txn, q->bucket, blen, &exists);
    if (rc == 0 && !exists)
        rc = CAIRN_EBUCKET;
    vcur_t c;
    memset(&c, 0, sizeof c);
    if (rc == 0)
        rc = mdb_cursor_open(txn, f->objects, &c.cur);
    if (rc) {
        rd_end(f, txn);
        return to_err(rc);
    }
    memcpy(c.bp, q->bucket, blen);
    c.bp[blen] = '\0';
    c.bplen = blen + 1;

    size_t start = out->len;
    cairn_buf_t pb;
    cairn_buf_init(&pb);
    uint32_t ne = 0, np = 0;
    int truncated = 0;
    const uint8_t *next = NULL;
    size_t next_len = 0;
    cairn_buf_put_u32(out, 0);

    if (salen > 0 && bytes_cmp(sa, salen, pf, plen) >= 0) {
        vc_seek(&c, sa, salen);
        if (c.valid && bytes_cmp(c.e.key, c.e.klen, sa, salen) == 0)
            vc_next(&c);
    } else {
        vc_seek(&c, pf, plen);
    }
    while (c.valid) {
        const vent_t *e = &c.e;
        if (e->klen < plen || memcmp(e->key, pf, plen) != 0)
            break;
        const uint8_t *hit = dlen ? memmem(e->key + plen, e->klen - plen, dl, dlen) : NULL;
        if (hit == NULL) {
            if (ne + np == max) {
                truncated = 1;
                break;
            }
            cairn_obj_rec_t r;
            if (cairn_obj_rec_decode(e->rec, e->rlen, &r) != 0) {
                c.err = CAIRN_ECORRUPT;
                break;
            }
            cairn_buf_put_bytes(out, e->key, e->klen);
            cairn_buf_put_u64(out, r.size);
            cairn_buf_put_u64(out, (uint64_t)r.mtime_ms);
            cairn_buf_put_bytes(out, r.etag, strlen(r.etag) + 1);
            ne++;
            next = e->key;
            next_len = e->klen;
            vc_next(&c);
            continue;
        }
        const uint8_t *cp = e->key;
        size_t cplen = (size_t)(hit - e->key) + dlen;
        if (salen == 0 || bytes_cmp(cp, cplen, sa, salen) > 0) {
            if (ne + np == max) {
                truncated = 1;
                break;
            }
            cairn_buf_put_bytes(&pb, cp, cplen);
            np++;
            next = cp;
            next_len = cplen;
        }
        vc_seek_past(&c, cp, cplen);
    }

    if (c.err == 0) {
        cairn_le32_put(out->base + start, ne);
        cairn_buf_put_u32(out, np);
        cairn_buf_append(out, pb.base, pb.len);
        cairn_buf_put_u8(out, (uint8_t)truncated);
        cairn_buf_put_bytes(out, truncated ? next : NULL, truncated ? next_len : 0);
    } else {
        out->len = start;
    }
    rc = c.err;
    free(c.grp);
    cairn_buf_dispose(&pb);
    mdb_cursor_close(c.cur);
    rd_end(f, txn);
    return to_err(rc);
}

int meta_fsm_gc_list(meta_fsm_t *f, const uint8_t after[16], uint32_t max, cairn_buf_t *out)
{
    if (max > META_FSM_MAX_LIST)
        max = META_FSM_MAX_LIST;
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = rd_begin(f, &txn);
    if (rc)
        return rc;
    if ((rc = mdb_cursor_open(txn, f->gc, &cur)) != 0) {
        rd_end(f, txn);
        return to_err(rc);
    }
    size_t start = out->len;
    uint32_t n = 0;
    cairn_buf_put_u32(out, 0);
    MDB_val k = {16, (void *)after}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && k.mv_size == 16 && memcmp(k.mv_data, after, 16) == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    for (; rc == 0 && n < max; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 16) {
            rc = CAIRN_ECORRUPT;
            break;
        }
        cairn_buf_append(out, k.mv_data, 16);
        cairn_buf_put_bytes(out, v.mv_data, v.mv_size);
        n++;
    }
    int more = rc == 0;
    mdb_cursor_close(cur);
    rd_end(f, txn);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        out->len = start;
        return to_err(rc);
    }
    cairn_le32_put(out->base + start, n);
    cairn_buf_put_u8(out, (uint8_t)more);
    return 0;
}

/* ---- scan (rebalance, repair, garbage collection) ---- */

int meta_fsm_obj_scan(meta_fsm_t *f, int table, const uint8_t *after, size_t after_len, uint32_t max, cairn_buf_t *out)
{
    if (max > META_FSM_MAX_LIST)
        max = META_FSM_MAX_LIST;
    if (after_len > LKEY_MAX || table < CAIRN_SCAN_OBJECTS || table > CAIRN_SCAN_GC)
        return CAIRN_EINVAL;
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = rd_begin(f, &txn);
    if (rc)
        return rc;
    MDB_dbi dbi = table == CAIRN_SCAN_OBJECTS ? f->objects : table == CAIRN_SCAN_PARTS ? f->parts : f->gc;
    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0) {
        rd_end(f, txn);
        return to_err(rc);
    }
    size_t start = out->len;
    uint32_t n = 0;
    cairn_buf_put_u32(out, 0);
    MDB_val k = {after_len, (void *)after}, v, last = {0, NULL};
    if (after_len == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    else if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)) == 0 && k.mv_size == after_len &&
             memcmp(k.mv_data, after, after_len) == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    for (; rc == 0 && n < max; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data, *zero = memchr(kp, '\0', k.mv_size), *key, *rec;
        size_t klen, rlen;
        if (table != CAIRN_SCAN_OBJECTS) { /* no bucket: the key is the LMDB key */
            cairn_buf_put_bytes(out, NULL, 0);
            cairn_buf_put_bytes(out, kp, k.mv_size);
            cairn_buf_put_bytes(out, v.mv_data, v.mv_size);
            last = k;
            n++;
            continue;
        }
        if (zero == NULL || zero == kp) {
            rc = CAIRN_ECORRUPT;
            break;
        }
        size_t blen = (size_t)(zero - kp);
        if (k.mv_size - blen - 1 == LONG_PART) {
            if ((rc = long_val(&v, &key, &klen, &rec, &rlen)) != 0)
                break;
        } else {
            key = zero + 1, klen = k.mv_size - blen - 1, rec = v.mv_data, rlen = v.mv_size;
        }
        cairn_buf_put_bytes(out, kp, blen);
        cairn_buf_put_bytes(out, key, klen);
        cairn_buf_put_bytes(out, rec, rlen);
        last = k;
        n++;
    }
    int more = rc == 0;
    if (rc == 0 || rc == MDB_NOTFOUND) {
        cairn_buf_put_u8(out, (uint8_t)more);
        if (n > 0)
            cairn_buf_put_bytes(out, last.mv_data, last.mv_size);
        else
            cairn_buf_put_bytes(out, after, after_len);
    }
    mdb_cursor_close(cur);
    rd_end(f, txn);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        out->len = start;
        return to_err(rc);
    }
    cairn_le32_put(out->base + start, n);
    return 0;
}

/* ---- replicas ---- */

int meta_fsm_replica_get(meta_fsm_t *f, uint64_t id, char addr[128], char raft_addr[128])
{
    MDB_txn *txn;
    int rc = rd_begin(f, &txn);
    if (rc)
        return rc;
    uint8_t k[15];
    replica_key(k, id);
    MDB_val mk = {sizeof k, k}, mv;
    rc = mdb_get(txn, f->sys, &mk, &mv);
    if (rc == 0) {
        cairn_dec_t d;
        const uint8_t *a, *ra;
        size_t al, ral;
        cairn_dec_init(&d, mv.mv_data, mv.mv_size);
        cairn_dec_bytes(&d, &a, &al);
        cairn_dec_bytes(&d, &ra, &ral);
        if (d.err || cairn_dec_left(&d) != 0 || al >= 128 || ral >= 128) {
            rc = CAIRN_ECORRUPT;
        } else {
            memcpy(addr, a, al);
            addr[al] = '\0';
            memcpy(raft_addr, ra, ral);
            raft_addr[ral] = '\0';
        }
    }
    rd_end(f, txn);
    return rc == MDB_NOTFOUND ? CAIRN_ENOTFOUND : to_err(rc);
}

/* ---- snapshots ----
 *
 * A snapshot is a compacted copy of the LMDB file, written by LMDB from its
 * own read transaction: the writer (apply) is never blocked, and memory stays
 * flat whatever the database size (the copy streams pages to the fd). The
 * copy may include a few entries applied after the snapshot's index; that is
 * harmless because the applied index travels inside the copy and later
 * entries up to it are skipped on the replica that restores it. */

int meta_fsm_copy(meta_fsm_t *f, int fd)
{
    pthread_rwlock_rdlock(&f->lock);
    int rc = CAIRN_EUNAVAIL;
    if (!f->closed) {
        rc = mdb_env_sync(f->env, 1); /* the copy reads pages through the map: no need, but cheap insurance */
        if (rc == 0)
            rc = mdb_env_copyfd2(f->env, fd, MDB_CP_COMPACT);
        rc = to_err(rc);
    }
    pthread_rwlock_unlock(&f->lock);
    return rc;
}

int meta_fsm_image_applied(const char *path, uint64_t *applied)
{
    MDB_env *env;
    MDB_txn *txn = NULL;
    MDB_dbi sys;
    *applied = 0;
    int rc = mdb_env_create(&env);
    if (rc)
        return to_err(rc);
    rc = mdb_env_set_maxdbs(env, 16);
    if (rc == 0)
        rc = mdb_env_set_mapsize(env, META_FSM_MAPSIZE);
    if (rc == 0)
        rc = mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0600);
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "sys", 0, &sys);
    MDB_val k = {6, "format"}, v;
    if (rc == 0)
        rc = mdb_get(txn, sys, &k, &v);
    if (rc == 0 && (v.mv_size != 4 || cairn_le32_get(v.mv_data) != FORMAT_VERSION))
        rc = CAIRN_ECORRUPT;
    k = (MDB_val){7, "applied"};
    if (rc == 0) {
        rc = mdb_get(txn, sys, &k, &v);
        if (rc == 0 && v.mv_size == 8)
            *applied = cairn_le64_get(v.mv_data);
        else if (rc == 0)
            rc = CAIRN_ECORRUPT;
        else if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    if (txn)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    if (rc == MDB_NOTFOUND || rc == MDB_INVALID)
        rc = CAIRN_ECORRUPT;
    return to_err(rc);
}

int meta_fsm_replace(meta_fsm_t *f, const char *path)
{
    char dst[4096];
    int n = snprintf(dst, sizeof dst, "%s/data.mdb", f->dir);
    if (n < 0 || (size_t)n >= sizeof dst)
        return -ENAMETOOLONG;
    pthread_rwlock_wrlock(&f->lock);
    if (f->closed) {
        pthread_rwlock_unlock(&f->lock);
        return CAIRN_EUNAVAIL;
    }
    mdb_env_close(f->env);
    f->env = NULL;
    int rc = 0;
    if (rename(path, dst) != 0) {
        rc = -errno;
        cairn_log(CAIRN_LOG_ERROR, 0, "rename %s to %s: %s", path, dst, strerror(errno));
    } else {
        int dfd = open(f->dir, O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    /* Reopen in any case: after a failed rename the old file is still there. */
    int orc = env_open(f);
    if (orc != 0) {
        cairn_log(CAIRN_LOG_ERROR, 0, "cannot reopen the metadata database in %s: %s", f->dir,
                  cairn_strerror(to_err(orc)));
        f->closed = 1;
        rc = to_err(orc);
    }
    pthread_rwlock_unlock(&f->lock);
    return rc;
}

/* ---- shared-internal (fsm_int.h) ---- */

MDB_dbi meta__dbi(meta_fsm_t *f, int which)
{
    switch (which) {
    case META__DB_GC: return f->gc;
    case META__DB_UPLOADS: return f->uploads;
    case META__DB_SYS: return f->sys;
    default: return f->parts;
    }
}

int meta__rd_begin(meta_fsm_t *f, MDB_txn **txn) { return rd_begin(f, txn); }
void meta__rd_end(meta_fsm_t *f, MDB_txn *txn) { rd_end(f, txn); }
int meta__err(int rc) { return to_err(rc); }

int meta__bucket_exists(meta_fsm_t *f, MDB_txn *txn, const void *b, size_t bl, int *exists)
{
    return bucket_exists(f, txn, b, bl, exists);
}

int meta__obj_peek(meta_fsm_t *f, MDB_txn *txn, const uint8_t *b, size_t bl, const uint8_t *key, size_t kl,
                   cairn_buf_t *out, int *found)
{
    oloc_t l;
    int rc = obj_locate(f, txn, b, bl, key, kl, &l);
    *found = rc == 0 && l.found;
    if (*found)
        cairn_buf_append(out, l.rec, l.rec_len);
    return rc;
}
