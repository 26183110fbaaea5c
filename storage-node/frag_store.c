/*
 * frag_store.c — fragment files on local disk and the node's handlers
 * (see frag_store.h for the layout and the request bodies).
 *
 * Work per request:
 * - put: one pass over the incoming bytes: read a batch of whole blocks
 *   into a per-thread buffer (>= 1 MiB, or one block if blocks are larger),
 *   check each block's XXH3, write the batch; then the MAC, fsync, rename,
 *   fsync of the directory. Dirty pages are pushed to disk in the
 *   background every 8 MiB (sync_file_range), so the final fsync of a large
 *   fragment waits for the tail only.
 * - get: blocks of consecutive stripes are contiguous in the file, so a
 *   range is one pread straight into the response buffer, verified in place.
 * - list, info: readdir of the fan-out directories; no index is kept, so
 *   nothing can drift from what is on disk.
 *
 * Directory fds (DIR/frags, DIR/tmp, and each fan-out directory once used)
 * stay open for the life of the store: a put costs no path walk beyond the
 * file itself.
 */
#include "frag_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/wire.h"

#define IO_BUF_MIN (1u << 20)
#define WRITEBACK_EVERY (8u << 20)

struct cairn_fstore_s {
    char dir[PATH_MAX];
    uint32_t node_id;
    int frags_fd;
    int tmp_fd;
    pthread_mutex_t mu; /* guards fan[] */
    int fan[256];       /* fan-out directory fds, -1 until first used */
};

/* ---- per-thread I/O buffer (one per connection thread) ---- */

typedef struct {
    uint8_t *p;
    size_t cap;
} tbuf_t;

static pthread_key_t tbuf_key;
static pthread_once_t tbuf_once = PTHREAD_ONCE_INIT;

static void tbuf_free(void *arg)
{
    tbuf_t *b = arg;
    free(b->p);
    free(b);
}

static void tbuf_key_init(void)
{
    CAIRN_ASSERT(pthread_key_create(&tbuf_key, tbuf_free) == 0);
}

static uint8_t *tbuf_get(size_t need)
{
    pthread_once(&tbuf_once, tbuf_key_init);
    tbuf_t *b = pthread_getspecific(tbuf_key);
    if (b == NULL) {
        b = cairn_calloc(1, sizeof(*b));
        pthread_setspecific(tbuf_key, b);
    }
    if (b->cap < need) {
        size_t cap = need < IO_BUF_MIN ? IO_BUF_MIN : need;
        free(b->p);
        b->p = cairn_malloc(cap);
        b->cap = cap;
    }
    return b->p;
}

static size_t tbuf_cap(void)
{
    tbuf_t *b = pthread_getspecific(tbuf_key);
    return b ? b->cap : 0;
}

/* ---- small file helpers ---- */

static int write_full(int fd, const void *p, size_t n)
{
    const uint8_t *q = p;
    while (n > 0) {
        ssize_t w = write(fd, q, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read n bytes at off; CAIRN_ECORRUPT if the file ends first. */
static int pread_full(int fd, void *p, size_t n, uint64_t off)
{
    uint8_t *q = p;
    while (n > 0) {
        ssize_t r = pread(fd, q, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return CAIRN_ECORRUPT;
        q += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* "abcdef...(32 hex).i": the file name inside its fan-out directory. */
static void frag_name(const uint8_t oid[16], unsigned index, char *out, size_t outsz)
{
    char hex[33];
    cairn_hex(oid, 16, hex);
    snprintf(out, outsz, "%s.%u", hex, index);
}

static int parse_name(const char *name, uint8_t oid[16], unsigned *index)
{
    for (int i = 0; i < 32; i++) {
        char ch = name[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return -1;
    }
    if (name[32] != '.' || cairn_unhex(name, 16, oid) != 0)
        return -1;
    const char *p = name + 33;
    unsigned v = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++)
        v = v * 10 + (unsigned)(*p - '0');
    if (*p != '\0' || digits == 0 || digits > 3 || v > 255 || (digits > 1 && name[33] == '0'))
        return -1;
    *index = v;
    return 0;
}

static int key_cmp(const uint8_t *oa, unsigned ia, const uint8_t *ob, unsigned ib)
{
    int c = memcmp(oa, ob, 16);
    if (c != 0)
        return c;
    return ia < ib ? -1 : ia > ib;
}

/* The fan-out directory of first oid byte b, created on first use. When it
 * is created, DIR/frags is fsynced so the directory itself is durable
 * before any fragment in it is acknowledged. */
static int fan_dir(cairn_fstore_t *st, uint8_t b)
{
    int fd = __atomic_load_n(&st->fan[b], __ATOMIC_ACQUIRE);
    if (fd >= 0)
        return fd;
    pthread_mutex_lock(&st->mu);
    fd = st->fan[b];
    if (fd < 0) {
        char name[8];
        snprintf(name, sizeof name, "%02x", b);
        int created = mkdirat(st->frags_fd, name, 0755) == 0;
        if (!created && errno != EEXIST) {
            fd = -errno;
        } else {
            fd = openat(st->frags_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd < 0)
                fd = -errno;
            else if (created && fsync(st->frags_fd) != 0) {
                int e = -errno;
                close(fd);
                fd = e;
            }
        }
        if (fd >= 0)
            __atomic_store_n(&st->fan[b], fd, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&st->mu);
    return fd;
}

/* ---- open / close ---- */

static int clean_tmp(int tmp_fd, const char *dir)
{
    int fd = dup(tmp_fd);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = -errno;
        close(fd);
        return e;
    }
    rewinddir(d);
    unsigned removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(tmp_fd, de->d_name, 0) == 0)
            removed++;
        else
            cairn_log(CAIRN_LOG_WARN, 0, "cannot remove %s/tmp/%s: %s", dir, de->d_name, strerror(errno));
    }
    closedir(d);
    if (removed > 0)
        cairn_log(CAIRN_LOG_INFO, 0, "removed %u unfinished fragment writes from %s/tmp", removed, dir);
    return 0;
}

int cairn_fstore_open(const char *dir, uint32_t node_id, cairn_fstore_t **out)
{
    char path[PATH_MAX];
    int rc;
    if (strlen(dir) + 8 >= PATH_MAX)
        return -ENAMETOOLONG;
    cairn_fstore_t *st = cairn_calloc(1, sizeof(*st));
    snprintf(st->dir, sizeof st->dir, "%s", dir);
    st->node_id = node_id;
    st->frags_fd = st->tmp_fd = -1;
    for (int i = 0; i < 256; i++)
        st->fan[i] = -1;
    pthread_mutex_init(&st->mu, NULL);

    snprintf(path, sizeof path, "%s/frags", dir);
    if ((rc = mkdir_p(path)) != 0)
        goto fail;
    st->frags_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->frags_fd < 0) {
        rc = -errno;
        goto fail;
    }
    snprintf(path, sizeof path, "%s/tmp", dir);
    if ((rc = mkdir_p(path)) != 0)
        goto fail;
    st->tmp_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->tmp_fd < 0) {
        rc = -errno;
        goto fail;
    }
    if ((rc = clean_tmp(st->tmp_fd, dir)) != 0)
        goto fail;
    *out = st;
    return 0;
fail:
    cairn_fstore_close(st);
    return rc;
}

void cairn_fstore_close(cairn_fstore_t *st)
{
    if (st == NULL)
        return;
    for (int i = 0; i < 256; i++)
        if (st->fan[i] >= 0)
            close(st->fan[i]);
    if (st->frags_fd >= 0)
        close(st->frags_fd);
    if (st->tmp_fd >= 0)
        close(st->tmp_fd);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* ---- put ---- */

/* Receive the blocks after the header into fd, checking each checksum. */
static int put_blocks(const cairn_frag_hdr_t *h, const cairn_fstore_src_t *src, int fd, uint64_t req_id)
{
    uint64_t ns = cairn_frag_nstripes(h);
    size_t full = (size_t)h->block_size + CAIRN_FRAG_SUM_SIZE;
    uint8_t *buf = tbuf_get(full);
    size_t cap = tbuf_cap();
    uint64_t written = CAIRN_FRAG_HDR_SIZE, synced = 0;
    for (uint64_t s = 0; s < ns;) {
        size_t rec, cnt;
        if (s + 1 < ns) {
            rec = full;
            cnt = cap / full;
            if (cnt > ns - 1 - s)
                cnt = (size_t)(ns - 1 - s);
        } else {
            rec = cairn_frag_block_len(h, s) + CAIRN_FRAG_SUM_SIZE;
            cnt = 1;
        }
        int rc = src->read(src->ctx, buf, rec * cnt);
        if (rc != 0)
            return rc;
        for (size_t i = 0; i < cnt; i++) {
            const uint8_t *blk = buf + i * rec;
            if (cairn_frag_sum(blk, rec - CAIRN_FRAG_SUM_SIZE) != cairn_le64_get(blk + rec - CAIRN_FRAG_SUM_SIZE)) {
                cairn_log(CAIRN_LOG_WARN, req_id, "put: block of stripe %llu arrived with a bad checksum",
                          (unsigned long long)(s + i));
                return CAIRN_ECORRUPT;
            }
        }
        if ((rc = write_full(fd, buf, rec * cnt)) != 0)
            return rc;
        written += rec * cnt;
        if (written - synced >= WRITEBACK_EVERY) {
            sync_file_range(fd, (off_t)synced, (off_t)(written - synced), SYNC_FILE_RANGE_WRITE);
            synced = written;
        }
        s += cnt;
    }
    return 0;
}

int cairn_fstore_put(cairn_fstore_t *st, const cairn_fstore_src_t *src, uint64_t req_id)
{
    uint8_t hb[CAIRN_FRAG_HDR_SIZE];
    cairn_frag_hdr_t h;
    if (src->len < CAIRN_FRAG_HDR_SIZE)
        return CAIRN_EPROTO;
    int rc = src->read(src->ctx, hb, sizeof hb);
    if (rc != 0)
        return rc;
    if ((rc = cairn_frag_hdr_decode(hb, &h)) != 0) {
        cairn_log(CAIRN_LOG_WARN, req_id, "put: bad fragment header: %s", cairn_strerror(rc));
        return rc;
    }
    uint64_t fsize = cairn_frag_file_size(&h);
    if (src->len != fsize) {
        cairn_log(CAIRN_LOG_WARN, req_id, "put: body of %llu bytes, header implies %llu",
                  (unsigned long long)src->len, (unsigned long long)fsize);
        return CAIRN_EPROTO;
    }

    char name[64], tmp[96];
    frag_name(h.oid, h.index, name, sizeof name);
    snprintf(tmp, sizeof tmp, "%s.%016llx", name, (unsigned long long)cairn_wire_new_req_id());
    int fd = openat(st->tmp_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        cairn_log(CAIRN_LOG_ERROR, req_id, "put: create %s/tmp/%s: %s", st->dir, tmp, strerror(errno));
        return rc;
    }
    /* Reserve the space first: a full disk fails now, not after the body. */
    if (fsize > IO_BUF_MIN && fallocate(fd, 0, 0, (off_t)fsize) != 0 && errno != EOPNOTSUPP) {
        rc = -errno;
        goto fail;
    }
    if ((rc = write_full(fd, hb, sizeof hb)) != 0)
        goto fail;
    if ((rc = put_blocks(&h, src, fd, req_id)) != 0)
        goto fail;
    if ((rc = src->verify(src->ctx)) != 0)
        goto fail;
    if (fsync(fd) != 0) {
        rc = -errno;
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = -errno;
        goto fail;
    }
    fd = -1;
    int dfd = fan_dir(st, h.oid[0]);
    if (dfd < 0) {
        rc = dfd;
        goto fail;
    }
    if (renameat(st->tmp_fd, tmp, dfd, name) != 0) {
        rc = -errno;
        goto fail;
    }
    if (fsync(dfd) != 0) {
        /* Renamed but not known durable: report failure so the writer counts
         * this copy as missing; the file itself is complete and valid. */
        rc = -errno;
        cairn_log(CAIRN_LOG_ERROR, req_id, "put: fsync of fan-out directory: %s", strerror(errno));
        return rc;
    }
    return 0;
fail:
    if (rc > -CAIRN_EBASE) /* file system errors; the server logs the rest */
        cairn_log(CAIRN_LOG_ERROR, req_id, "put %s: %s", name, cairn_strerror(rc));
    if (fd >= 0)
        close(fd);
    unlinkat(st->tmp_fd, tmp, 0);
    return rc;
}

/* ---- get / stat / delete ---- */

static int open_frag(cairn_fstore_t *st, const uint8_t oid[16], unsigned index, char *path, size_t pathsz)
{
    cairn_frag_path(oid, index, path, pathsz);
    int fd = openat(st->frags_fd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? CAIRN_ENOTFOUND : -errno;
    return fd;
}

static int read_hdr(int fd, uint8_t hb[CAIRN_FRAG_HDR_SIZE], cairn_frag_hdr_t *h)
{
    int rc = pread_full(fd, hb, CAIRN_FRAG_HDR_SIZE, 0);
    if (rc == 0 && cairn_frag_hdr_decode(hb, h) != 0)
        rc = CAIRN_ECORRUPT;
    return rc;
}

int cairn_fstore_get(cairn_fstore_t *st, const uint8_t oid[16], unsigned index, uint64_t first, uint32_t n,
                     cairn_buf_t *out, uint64_t req_id)
{
    char path[64];
    uint8_t hb[CAIRN_FRAG_HDR_SIZE];
    cairn_frag_hdr_t h;
    int fd = open_frag(st, oid, index, path, sizeof path);
    if (fd < 0)
        return fd;
    int rc = read_hdr(fd, hb, &h);
    if (rc != 0) {
        if (rc == CAIRN_ECORRUPT)
            cairn_log(CAIRN_LOG_ERROR, req_id, "corrupt fragment %s/frags/%s: bad header", st->dir, path);
        close(fd);
        return rc;
    }
    uint64_t ns = cairn_frag_nstripes(&h), cnt = 0, bytes = 0;
    if (first < ns)
        cnt = n < ns - first ? n : ns - first;
    if (cnt > 0) {
        uint64_t last = first + cnt - 1;
        bytes = cairn_frag_block_offset(&h, last) + cairn_frag_block_len(&h, last) + CAIRN_FRAG_SUM_SIZE -
                cairn_frag_block_offset(&h, first);
    }
    if (CAIRN_FRAG_HDR_SIZE + bytes > CAIRN_WIRE_MAX_BODY) {
        close(fd);
        return CAIRN_ETOOBIG;
    }
    uint8_t *p = cairn_buf_reserve(out, CAIRN_FRAG_HDR_SIZE + (size_t)bytes);
    memcpy(p, hb, sizeof hb);
    rc = pread_full(fd, p + CAIRN_FRAG_HDR_SIZE, (size_t)bytes, cairn_frag_block_offset(&h, first));
    close(fd);
    if (rc == CAIRN_ECORRUPT)
        cairn_log(CAIRN_LOG_ERROR, req_id, "corrupt fragment %s/frags/%s: shorter than its header says", st->dir,
                  path);
    if (rc != 0)
        return rc;
    const uint8_t *blk = p + CAIRN_FRAG_HDR_SIZE;
    for (uint64_t s = first; s < first + cnt; s++) {
        size_t len = cairn_frag_block_len(&h, s);
        if (cairn_frag_sum(blk, len) != cairn_le64_get(blk + len)) {
            cairn_log(CAIRN_LOG_ERROR, req_id, "corrupt fragment %s/frags/%s: stripe %llu checksum mismatch",
                      st->dir, path, (unsigned long long)s);
            return CAIRN_ECORRUPT;
        }
        blk += len + CAIRN_FRAG_SUM_SIZE;
    }
    out->len += CAIRN_FRAG_HDR_SIZE + (size_t)bytes;
    return 0;
}

int cairn_fstore_stat(cairn_fstore_t *st, const uint8_t oid[16], unsigned index, cairn_frag_hdr_t *hdr,
                      uint64_t *file_size, int64_t *mtime_ms)
{
    char path[64];
    uint8_t hb[CAIRN_FRAG_HDR_SIZE];
    struct stat sb;
    int fd = open_frag(st, oid, index, path, sizeof path);
    if (fd < 0)
        return fd;
    int rc = read_hdr(fd, hb, hdr);
    if (rc == 0 && fstat(fd, &sb) != 0)
        rc = -errno;
    close(fd);
    if (rc != 0)
        return rc;
    *file_size = (uint64_t)sb.st_size;
    *mtime_ms = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
    return 0;
}

int cairn_fstore_delete(cairn_fstore_t *st, const uint8_t oid[16], unsigned index)
{
    char path[64];
    cairn_frag_path(oid, index, path, sizeof path);
    if (unlinkat(st->frags_fd, path, 0) != 0)
        return errno == ENOENT ? CAIRN_ENOTFOUND : -errno;
    int dfd = fan_dir(st, oid[0]);
    if (dfd < 0)
        return dfd;
    return fsync(dfd) == 0 ? 0 : -errno;
}

/* ---- list / info ---- */

typedef struct {
    cairn_fstore_ent_t *v;
    size_t n, cap;
} entvec_t;

static int ent_cmp(const void *a, const void *b)
{
    const cairn_fstore_ent_t *x = a, *y = b;
    return key_cmp(x->oid, x->index, y->oid, y->index);
}

/* Scan fan-out directory b: entries after (oid, index) into v (unsorted),
 * or only count them when v is NULL. ENOENT is an empty directory. */
static int scan_dir(cairn_fstore_t *st, unsigned b, const uint8_t *oid, unsigned index, entvec_t *v,
                    uint64_t *count)
{
    char name[8];
    snprintf(name, sizeof name, "%02x", b);
    int fd = openat(st->frags_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = -errno;
        close(fd);
        return e;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        cairn_fstore_ent_t e = {0};
        unsigned idx;
        if (parse_name(de->d_name, e.oid, &idx) != 0 || e.oid[0] != b)
            continue;
        if (oid != NULL && key_cmp(e.oid, idx, oid, index) <= 0)
            continue;
        if (count)
            (*count)++;
        if (v == NULL)
            continue;
        e.index = (uint8_t)idx;
        if (v->n == v->cap) {
            v->cap = v->cap ? v->cap * 2 : 256;
            v->v = cairn_realloc(v->v, v->cap * sizeof(*v->v));
        }
        v->v[v->n++] = e;
    }
    closedir(d);
    return 0;
}

int cairn_fstore_list(cairn_fstore_t *st, const uint8_t oid[16], unsigned index, size_t max,
                      cairn_fstore_ent_t *ents, size_t *n, int *more)
{
    entvec_t v = {0};
    size_t have = 0;
    int rc = 0;
    *more = 0;
    for (unsigned b = oid[0]; b < 256 && !*more; b++) {
        v.n = 0;
        if ((rc = scan_dir(st, b, b == oid[0] ? oid : NULL, index, &v, NULL)) != 0)
            break;
        if (v.n > 1)
            qsort(v.v, v.n, sizeof(*v.v), ent_cmp);
        for (size_t i = 0; i < v.n; i++) {
            if (have == max) {
                *more = 1;
                break;
            }
            char path[64];
            struct stat sb;
            cairn_frag_path(v.v[i].oid, v.v[i].index, path, sizeof path);
            if (fstatat(st->frags_fd, path, &sb, 0) != 0)
                continue; /* deleted since the readdir */
            ents[have] = v.v[i];
            ents[have].size = (uint64_t)sb.st_size;
            have++;
        }
    }
    free(v.v);
    *n = have;
    return rc;
}

int cairn_fstore_info(cairn_fstore_t *st, uint64_t *used, uint64_t *avail, uint64_t *fragments)
{
    struct statvfs sv;
    if (fstatvfs(st->frags_fd, &sv) != 0)
        return -errno;
    *used = (uint64_t)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
    *avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    *fragments = 0;
    for (unsigned b = 0; b < 256; b++) {
        int rc = scan_dir(st, b, NULL, 0, NULL, fragments);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- request handlers ---- */

static int src_read(void *ctx, void *p, size_t n)
{
    return cairn_srv_read(ctx, p, n);
}

static int src_verify(void *ctx)
{
    return cairn_srv_body_verify(ctx);
}

static int on_ping(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    return 0;
}

static int on_put(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_fstore_src_t src = {src_read, src_verify, req, req->hdr.body_len};
    return cairn_fstore_put(data, &src, req->hdr.req_id);
}

/* oid[16] u8 index: the key that starts every other request body. */
static void dec_key(cairn_dec_t *d, uint8_t oid[16], unsigned *index)
{
    cairn_dec_raw(d, oid, 16);
    *index = cairn_dec_u8(d);
}

static int on_get(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    uint8_t oid[16];
    unsigned index;
    cairn_dec_init(&d, req->body, (size_t)req->hdr.body_len);
    dec_key(&d, oid, &index);
    uint64_t first = cairn_dec_u64(&d);
    uint32_t n = cairn_dec_u32(&d);
    if (d.err)
        return CAIRN_EPROTO;
    return cairn_fstore_get(data, oid, index, first, n, resp, req->hdr.req_id);
}

static int on_delete(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    uint8_t oid[16];
    unsigned index;
    cairn_dec_init(&d, req->body, (size_t)req->hdr.body_len);
    dec_key(&d, oid, &index);
    if (d.err)
        return CAIRN_EPROTO;
    return cairn_fstore_delete(data, oid, index);
}

static int on_stat(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    uint8_t oid[16], hb[CAIRN_FRAG_HDR_SIZE];
    unsigned index;
    cairn_frag_hdr_t h;
    uint64_t size;
    int64_t mtime;
    cairn_dec_init(&d, req->body, (size_t)req->hdr.body_len);
    dec_key(&d, oid, &index);
    if (d.err)
        return CAIRN_EPROTO;
    int rc = cairn_fstore_stat(data, oid, index, &h, &size, &mtime);
    if (rc != 0)
        return rc;
    cairn_frag_hdr_encode(&h, hb); /* byte-identical to the file: encoding is canonical */
    cairn_buf_append(resp, hb, sizeof hb);
    cairn_buf_put_u64(resp, size);
    cairn_buf_put_u64(resp, (uint64_t)mtime);
    return 0;
}

static int on_list(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    uint8_t oid[16];
    unsigned index;
    cairn_dec_init(&d, req->body, (size_t)req->hdr.body_len);
    dec_key(&d, oid, &index);
    uint32_t max = cairn_dec_u32(&d);
    if (d.err)
        return CAIRN_EPROTO;
    if (max > CAIRN_FSTORE_LIST_MAX)
        max = CAIRN_FSTORE_LIST_MAX;
    cairn_fstore_ent_t *ents = cairn_malloc(sizeof(*ents) * (max ? max : 1));
    size_t n = 0;
    int more = 0;
    int rc = cairn_fstore_list(data, oid, index, max, ents, &n, &more);
    if (rc == 0) {
        cairn_buf_put_u32(resp, (uint32_t)n);
        for (size_t i = 0; i < n; i++) {
            cairn_buf_append(resp, ents[i].oid, 16);
            cairn_buf_put_u8(resp, ents[i].index);
            cairn_buf_put_u64(resp, ents[i].size);
        }
        cairn_buf_put_u8(resp, (uint8_t)more);
    }
    free(ents);
    return rc;
}

static int on_info(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_fstore_t *st = data;
    uint64_t used, avail, frags;
    int rc = cairn_fstore_info(st, &used, &avail, &frags);
    if (rc != 0)
        return rc;
    char id[16];
    snprintf(id, sizeof id, "%u", st->node_id);
    cairn_buf_put_str(resp, id);
    cairn_buf_put_u64(resp, used);
    cairn_buf_put_u64(resp, avail);
    cairn_buf_put_u64(resp, frags);
    return 0;
}

const cairn_srv_route_t cairn_fstore_routes[] = {
    {CAIRN_OP_PING, 0, on_ping},
    {CAIRN_OP_FRAG_PUT, 1, on_put},
    {CAIRN_OP_FRAG_GET, 0, on_get},
    {CAIRN_OP_FRAG_DELETE, 0, on_delete},
    {CAIRN_OP_FRAG_STAT, 0, on_stat},
    {CAIRN_OP_FRAG_LIST, 0, on_list},
    {CAIRN_OP_NODE_INFO, 0, on_info},
};
const size_t cairn_fstore_nroutes = sizeof cairn_fstore_routes / sizeof cairn_fstore_routes[0];
