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
 * - quarantine (frag_store.h): the bad list is an array of every
 *   quarantined copy, scanned linearly under one mutex: O(copies) per
 *   lookup, paid by a GET of a fragment that is not in frags/, and by every
 *   PUT and DELETE (one lock, and a scan of what is usually an empty
 *   array). Copies are few: a failing disk is replaced long before
 *   thousands accumulate.
 * - verify (the scrubber): one pread per window of up to 1 MiB (or one
 *   block), so a small fragment costs open, fstat, one read, close.
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
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/wire.h"
#include "scrub.h"

#define IO_BUF_MIN (1u << 20)
#define WRITEBACK_EVERY (8u << 20)
#define QUARANTINE "quarantine"

/* One quarantined copy: DIR/quarantine/<hex>.<index>.<found_ms>.<reason>. */
typedef struct {
    uint8_t oid[16];
    uint8_t index;
    uint8_t reason;
    uint8_t listed; /* on the bad list: the newest copy, and no live file put since */
    int64_t found_ms;
} qrec_t;

struct cairn_fstore_s {
    char dir[PATH_MAX];
    uint32_t node_id;
    int dir_fd;
    int frags_fd;
    int tmp_fd;
    pthread_mutex_t mu; /* guards fan[] */
    int fan[256];       /* fan-out directory fds, -1 until first used */
    /* qmu guards q_fd and q[], and is held around every rename into or out
     * of frags/, so "is the file at the path still the bad one" and the
     * rename into quarantine are one step as far as puts are concerned. */
    pthread_mutex_t qmu;
    int q_fd; /* DIR/quarantine, -1 until it exists */
    qrec_t *q;
    size_t nq, qcap;
    struct cairn_scrub_s *scrub;
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
    if (b->cap < need) { /* grows keeping its contents (verify relies on it) */
        size_t cap = need < IO_BUF_MIN ? IO_BUF_MIN : need;
        b->p = cairn_realloc(b->p, cap);
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

/* ---- quarantine ---- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void q_name(const qrec_t *r, char *out, size_t outsz)
{
    char hex[33];
    cairn_hex(r->oid, 16, hex);
    snprintf(out, outsz, "%s.%u.%lld.%u", hex, r->index, (long long)r->found_ms, r->reason);
}

/* Decimal digits up to the next '.' or the end; advances *p. -1 if none. */
static int64_t q_num(const char **p, int maxdigits)
{
    int64_t v = 0;
    int digits = 0;
    for (; **p >= '0' && **p <= '9'; (*p)++) {
        if (++digits > maxdigits)
            return -1;
        v = v * 10 + (**p - '0');
    }
    return digits ? v : -1;
}

static int q_parse(const char *name, qrec_t *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < 32; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return -1;
    if (name[32] != '.' || cairn_unhex(name, 16, r->oid) != 0)
        return -1;
    const char *p = name + 33;
    int64_t index = q_num(&p, 3);
    if (index < 0 || index > 255 || *p++ != '.')
        return -1;
    int64_t ms = q_num(&p, 18);
    if (ms < 0 || *p++ != '.')
        return -1;
    int64_t reason = q_num(&p, 3);
    if (reason < 1 || reason > 255 || *p != '\0')
        return -1;
    r->index = (uint8_t)index;
    r->found_ms = ms;
    r->reason = (uint8_t)reason;
    return 0;
}

static int q_cmp(const void *a, const void *b)
{
    const qrec_t *x = a, *y = b;
    int c = key_cmp(x->oid, x->index, y->oid, y->index);
    if (c != 0)
        return c;
    return x->found_ms < y->found_ms ? -1 : x->found_ms > y->found_ms;
}

static int live_exists(cairn_fstore_t *st, const uint8_t oid[16], unsigned index)
{
    char path[64];
    struct stat sb;
    cairn_frag_path(oid, index, path, sizeof path);
    return fstatat(st->frags_fd, path, &sb, 0) == 0;
}

static void q_push(cairn_fstore_t *st, const qrec_t *r)
{
    if (st->nq == st->qcap) {
        st->qcap = st->qcap ? st->qcap * 2 : 16;
        st->q = cairn_realloc(st->q, st->qcap * sizeof(*st->q));
    }
    st->q[st->nq++] = *r;
}

/* Rebuild the bad list from DIR/quarantine (see frag_store.h). */
static int q_load(cairn_fstore_t *st)
{
    int fd = openat(st->dir_fd, QUARANTINE, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    st->q_fd = fd;
    int dfd = dup(fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (d == NULL) {
        int e = -errno;
        if (dfd >= 0)
            close(dfd);
        return e;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        qrec_t r;
        if (q_parse(de->d_name, &r) == 0)
            q_push(st, &r);
    }
    closedir(d);
    if (st->nq > 1)
        qsort(st->q, st->nq, sizeof(*st->q), q_cmp);
    size_t listed = 0;
    for (size_t i = 0; i < st->nq; i++) {
        const qrec_t *r = &st->q[i];
        int newest = i + 1 == st->nq || key_cmp(r->oid, r->index, st->q[i + 1].oid, st->q[i + 1].index) != 0;
        st->q[i].listed = newest && !live_exists(st, r->oid, r->index);
        listed += st->q[i].listed;
    }
    if (st->nq > 0)
        cairn_log(CAIRN_LOG_WARN, 0, "%zu fragment(s) on the bad list, %zu quarantined copies in %s/" QUARANTINE,
                  listed, st->nq, st->dir);
    return 0;
}

/* DIR/quarantine, created (and made durable) on first use. qmu held. */
static int q_dir(cairn_fstore_t *st)
{
    if (st->q_fd >= 0)
        return st->q_fd;
    int created = mkdirat(st->dir_fd, QUARANTINE, 0755) == 0;
    if (!created && errno != EEXIST)
        return -errno;
    int fd = openat(st->dir_fd, QUARANTINE, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (created && fsync(st->dir_fd) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    st->q_fd = fd;
    return fd;
}

/* Whether a copy with r's key and time is recorded. qmu held. */
static int q_exists(const cairn_fstore_t *st, const qrec_t *r)
{
    for (size_t i = 0; i < st->nq; i++)
        if (q_cmp(&st->q[i], r) == 0)
            return 1;
    return 0;
}

/* The listed copy of (oid, index), or NULL. qmu held. */
static qrec_t *q_listed(cairn_fstore_t *st, const uint8_t oid[16], unsigned index)
{
    for (size_t i = 0; i < st->nq; i++)
        if (st->q[i].listed && st->q[i].index == index && memcmp(st->q[i].oid, oid, 16) == 0)
            return &st->q[i];
    return NULL;
}

/*
 * Move the fragment open as fd out of frags/ because it is bad, if the file
 * at its path is still that one (a put may have replaced it, a delete
 * removed it, another reader quarantined it). Logs what it did.
 */
static void quarantine(cairn_fstore_t *st, int fd, const uint8_t oid[16], unsigned index, unsigned reason,
                       uint64_t req_id)
{
    char path[64], qname[96];
    struct stat mine, now;
    cairn_frag_path(oid, index, path, sizeof path);
    if (fstat(fd, &mine) != 0)
        return;
    pthread_mutex_lock(&st->qmu);
    int qfd = q_dir(st);
    if (qfd < 0) {
        pthread_mutex_unlock(&st->qmu);
        cairn_log(CAIRN_LOG_ERROR, req_id, "cannot create %s/" QUARANTINE ": %s", st->dir, cairn_strerror(qfd));
        return;
    }
    if (fstatat(st->frags_fd, path, &now, 0) != 0 || now.st_ino != mine.st_ino || now.st_dev != mine.st_dev) {
        pthread_mutex_unlock(&st->qmu);
        return;
    }
    qrec_t r = {.index = (uint8_t)index, .reason = (uint8_t)reason, .listed = 1, .found_ms = wall_ms()};
    memcpy(r.oid, oid, 16);
    while (q_exists(st, &r)) /* one name per copy, even within a millisecond */
        r.found_ms++;
    q_name(&r, qname, sizeof qname);
    if (renameat(st->frags_fd, path, qfd, qname) != 0) {
        int e = errno;
        pthread_mutex_unlock(&st->qmu);
        cairn_log(CAIRN_LOG_ERROR, req_id, "cannot quarantine %s/frags/%s: %s", st->dir, path, strerror(e));
        return;
    }
    qrec_t *old = q_listed(st, oid, index);
    if (old != NULL)
        old->listed = 0;
    q_push(st, &r);
    pthread_mutex_unlock(&st->qmu);
    int dfd = fan_dir(st, oid[0]);
    if (fsync(qfd) != 0 || (dfd >= 0 && fsync(dfd) != 0))
        cairn_log(CAIRN_LOG_ERROR, req_id, "fsync after quarantining %s: %s", path, strerror(errno));
    cairn_log(CAIRN_LOG_ERROR, req_id, "quarantined fragment %s/frags/%s as %s/" QUARANTINE "/%s (bad %s)", st->dir,
              path, st->dir, qname, cairn_node_bad_reason(reason));
}

/* The listed quarantined copy of (oid, index), opened; CAIRN_ENOTFOUND if none. */
static int open_quarantined(cairn_fstore_t *st, const uint8_t oid[16], unsigned index)
{
    char qname[96];
    int fd = CAIRN_ENOTFOUND;
    pthread_mutex_lock(&st->qmu);
    const qrec_t *r = st->nq ? q_listed(st, oid, index) : NULL;
    if (r != NULL) {
        q_name(r, qname, sizeof qname);
        fd = openat(st->q_fd, qname, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            fd = errno == ENOENT ? CAIRN_ENOTFOUND : -errno;
    }
    pthread_mutex_unlock(&st->qmu);
    return fd;
}

/* Remove the copies matching (oid, index), or every copy found before
 * cutoff_ms when oid is NULL; fsyncs the directory. Returns the count. */
static size_t q_remove(cairn_fstore_t *st, const uint8_t *oid, unsigned index, int64_t cutoff_ms)
{
    size_t removed = 0, keep = 0;
    char qname[96];
    pthread_mutex_lock(&st->qmu);
    for (size_t i = 0; i < st->nq; i++) {
        const qrec_t *r = &st->q[i];
        int match = oid ? r->index == index && memcmp(r->oid, oid, 16) == 0 : r->found_ms < cutoff_ms;
        if (!match) {
            st->q[keep++] = *r;
            continue;
        }
        q_name(r, qname, sizeof qname);
        if (unlinkat(st->q_fd, qname, 0) != 0 && errno != ENOENT)
            cairn_log(CAIRN_LOG_WARN, 0, "cannot remove %s/" QUARANTINE "/%s: %s", st->dir, qname, strerror(errno));
        removed++;
    }
    st->nq = keep;
    if (removed > 0 && fsync(st->q_fd) != 0)
        cairn_log(CAIRN_LOG_WARN, 0, "fsync of %s/" QUARANTINE ": %s", st->dir, strerror(errno));
    pthread_mutex_unlock(&st->qmu);
    return removed;
}

size_t cairn_fstore_expire_quarantine(cairn_fstore_t *st, int64_t cutoff_ms)
{
    size_t n = q_remove(st, NULL, 0, cutoff_ms);
    if (n > 0)
        cairn_log(CAIRN_LOG_INFO, 0, "removed %zu quarantined fragment copies past their keeping time", n);
    return n;
}

static int bad_cmp(const void *a, const void *b)
{
    const cairn_node_bad_t *x = a, *y = b;
    return key_cmp(x->oid, x->index, y->oid, y->index);
}

void cairn_fstore_bad_list(cairn_fstore_t *st, size_t max, cairn_node_bad_t **v, size_t *n, int *more)
{
    cairn_node_bad_t *all = NULL;
    size_t cnt = 0;
    pthread_mutex_lock(&st->qmu);
    if (st->nq > 0)
        all = cairn_malloc(st->nq * sizeof(*all));
    for (size_t i = 0; i < st->nq; i++) {
        const qrec_t *r = &st->q[i];
        if (!r->listed)
            continue;
        memcpy(all[cnt].oid, r->oid, 16);
        all[cnt].index = r->index;
        all[cnt].reason = r->reason;
        all[cnt].found_ms = r->found_ms;
        cnt++;
    }
    pthread_mutex_unlock(&st->qmu);
    if (cnt > 1)
        qsort(all, cnt, sizeof(*all), bad_cmp);
    *n = cnt < max ? cnt : max;
    *more = cnt > max;
    *v = all;
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
    st->dir_fd = st->frags_fd = st->tmp_fd = st->q_fd = -1;
    for (int i = 0; i < 256; i++)
        st->fan[i] = -1;
    pthread_mutex_init(&st->mu, NULL);
    pthread_mutex_init(&st->qmu, NULL);

    if ((rc = mkdir_p(dir)) != 0)
        goto fail;
    st->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->dir_fd < 0) {
        rc = -errno;
        goto fail;
    }
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
    if ((rc = q_load(st)) != 0)
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
    if (st->q_fd >= 0)
        close(st->q_fd);
    if (st->dir_fd >= 0)
        close(st->dir_fd);
    pthread_mutex_destroy(&st->mu);
    pthread_mutex_destroy(&st->qmu);
    free(st->q);
    free(st);
}

const char *cairn_fstore_dir(const cairn_fstore_t *st)
{
    return st->dir;
}

void cairn_fstore_set_scrub(cairn_fstore_t *st, struct cairn_scrub_s *sc)
{
    __atomic_store_n(&st->scrub, sc, __ATOMIC_RELEASE);
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
    pthread_mutex_lock(&st->qmu);
    if (renameat(st->tmp_fd, tmp, dfd, name) != 0) {
        rc = -errno;
        pthread_mutex_unlock(&st->qmu);
        goto fail;
    }
    qrec_t *bad = st->nq ? q_listed(st, h.oid, h.index) : NULL;
    if (bad != NULL)
        bad->listed = 0;
    pthread_mutex_unlock(&st->qmu);
    if (bad != NULL)
        cairn_log(CAIRN_LOG_INFO, req_id, "put %s replaces a quarantined fragment: off the bad list", name);
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

/* ---- get / stat / delete / verify ---- */

static int open_frag(cairn_fstore_t *st, const uint8_t oid[16], unsigned index, char *path, size_t pathsz)
{
    cairn_frag_path(oid, index, path, pathsz);
    int fd = openat(st->frags_fd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? CAIRN_ENOTFOUND : -errno;
    return fd;
}

/* An I/O error that means the disk lost the data, not a passing condition. */
static int is_media_error(int rc)
{
    return rc == -EIO || rc == -EBADMSG || rc == -EUCLEAN;
}

/* The header of an open fragment. 0, or CAIRN_ECORRUPT with *reason
 * (a short file or a header that does not parse), or -errno. */
static int read_hdr(int fd, uint8_t hb[CAIRN_FRAG_HDR_SIZE], cairn_frag_hdr_t *h, unsigned *reason)
{
    int rc = pread_full(fd, hb, CAIRN_FRAG_HDR_SIZE, 0);
    if (rc == CAIRN_ECORRUPT)
        *reason = CAIRN_BAD_SIZE;
    else if (rc == 0 && cairn_frag_hdr_decode(hb, h) != 0) {
        rc = CAIRN_ECORRUPT;
        *reason = CAIRN_BAD_HEADER;
    } else if (is_media_error(rc))
        *reason = CAIRN_BAD_IO;
    return rc;
}

/* Log the damage read in fragment path (open as fd) and quarantine it;
 * a copy already in quarantine (from_q) stays where it is. */
static void found_bad(cairn_fstore_t *st, int fd, int from_q, const uint8_t oid[16], unsigned index,
                      unsigned reason, uint64_t req_id, const char *path, const char *what)
{
    cairn_log(CAIRN_LOG_ERROR, req_id, "corrupt fragment %s/%s%s: %s", st->dir, from_q ? "quarantined " : "frags/",
              path, what);
    if (!from_q)
        quarantine(st, fd, oid, index, reason, req_id);
}

int cairn_fstore_get(cairn_fstore_t *st, const uint8_t oid[16], unsigned index, uint64_t first, uint32_t n,
                     cairn_buf_t *out, uint64_t req_id)
{
    char path[64];
    uint8_t hb[CAIRN_FRAG_HDR_SIZE];
    cairn_frag_hdr_t h;
    unsigned reason = 0;
    int from_q = 0;
    int fd = open_frag(st, oid, index, path, sizeof path);
    if (fd == CAIRN_ENOTFOUND) {
        fd = open_quarantined(st, oid, index);
        from_q = 1;
    }
    if (fd < 0)
        return fd;
    int rc = read_hdr(fd, hb, &h, &reason);
    if (rc != 0) {
        if (reason != 0)
            found_bad(st, fd, from_q, oid, index, reason, req_id, path,
                      reason == CAIRN_BAD_HEADER ? "bad header" : "cannot read the header");
        close(fd);
        /* A quarantined copy without a sound header has nothing to offer. */
        return from_q && rc == CAIRN_ECORRUPT ? CAIRN_ENOTFOUND : rc;
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
    if (rc == CAIRN_ECORRUPT)
        found_bad(st, fd, from_q, oid, index, CAIRN_BAD_SIZE, req_id, path, "shorter than its header says");
    else if (is_media_error(rc))
        found_bad(st, fd, from_q, oid, index, CAIRN_BAD_IO, req_id, path, strerror(-rc));
    if (rc != 0) {
        close(fd);
        return rc;
    }
    const uint8_t *blk = p + CAIRN_FRAG_HDR_SIZE;
    for (uint64_t s = first; s < first + cnt; s++) {
        size_t len = cairn_frag_block_len(&h, s);
        if (cairn_frag_sum(blk, len) != cairn_le64_get(blk + len)) {
            char what[64];
            snprintf(what, sizeof what, "stripe %llu checksum mismatch", (unsigned long long)s);
            found_bad(st, fd, from_q, oid, index, CAIRN_BAD_BLOCK, req_id, path, what);
            close(fd);
            return CAIRN_ECORRUPT;
        }
        blk += len + CAIRN_FRAG_SUM_SIZE;
    }
    close(fd);
    out->len += CAIRN_FRAG_HDR_SIZE + (size_t)bytes;
    return 0;
}

int cairn_fstore_stat(cairn_fstore_t *st, const uint8_t oid[16], unsigned index, cairn_frag_hdr_t *hdr,
                      uint64_t *file_size, int64_t *mtime_ms)
{
    char path[64];
    uint8_t hb[CAIRN_FRAG_HDR_SIZE];
    unsigned reason = 0;
    struct stat sb;
    int fd = open_frag(st, oid, index, path, sizeof path);
    if (fd < 0)
        return fd;
    int rc = read_hdr(fd, hb, hdr, &reason);
    if (rc != 0 && reason != 0)
        found_bad(st, fd, 0, oid, index, reason, 0, path,
                  reason == CAIRN_BAD_HEADER ? "bad header" : "cannot read the header");
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
    int rc = 0;
    if (unlinkat(st->frags_fd, path, 0) != 0)
        rc = errno == ENOENT ? CAIRN_ENOTFOUND : -errno;
    size_t copies = q_remove(st, oid, index, 0);
    if (rc == CAIRN_ENOTFOUND && copies > 0)
        return 0;
    if (rc != 0)
        return rc;
    int dfd = fan_dir(st, oid[0]);
    if (dfd < 0)
        return dfd;
    return fsync(dfd) == 0 ? 0 : -errno;
}

/*
 * Read n bytes at off for verification without growing the page cache.
 * RWF_NOWAIT first takes what is cached (a prefix of the range; such pages
 * belong to client reads and stay); the rest is read normally and then
 * dropped. The descriptor is POSIX_FADV_RANDOM, so the kernel reads ahead
 * nothing that would escape the drop. Pages cached behind a cold one are
 * dropped too: an approximation that keeps this at two system calls.
 */
static int pread_cold(int fd, uint8_t *p, size_t n, uint64_t off)
{
    struct iovec v = {p, n};
    ssize_t r = preadv2(fd, &v, 1, (off_t)off, RWF_NOWAIT);
    size_t hot = r > 0 ? (size_t)r : 0;
    if (hot == n)
        return 0;
    int rc = pread_full(fd, p + hot, n - hot, off + hot);
    posix_fadvise(fd, (off_t)(off + hot), (off_t)(n - hot), POSIX_FADV_DONTNEED);
    return rc;
}

/* Verify the blocks of an open fragment whose header and size are sound;
 * the first window [0, wlen) of the file is in buf already. Windows are
 * contiguous: a block cut by the end of one is moved to the front of the
 * buffer and completed by the next read, so every byte is read once. */
static int verify_blocks(int fd, const cairn_frag_hdr_t *h, uint8_t *buf, size_t cap, size_t wlen,
                         const cairn_fstore_pace_t *pace, uint64_t *bytes, unsigned *reason)
{
    uint64_t fsize = cairn_frag_file_size(h), woff = 0, ns = cairn_frag_nstripes(h);
    size_t full = (size_t)h->block_size + CAIRN_FRAG_SUM_SIZE;
    size_t whole = cap / full * full; /* windows end on a block boundary */
    for (uint64_t s = 0; s < ns; s++) {
        uint64_t off = cairn_frag_block_offset(h, s);
        size_t len = cairn_frag_block_len(h, s);
        if (off + len + CAIRN_FRAG_SUM_SIZE > woff + wlen) {
            size_t keep = woff + wlen > off ? (size_t)(woff + wlen - off) : 0;
            size_t want = fsize - off < whole ? (size_t)(fsize - off) : whole;
            memmove(buf, buf + (off - woff), keep);
            int rc = pace->wait(pace->ctx, want - keep);
            if (rc != 0)
                return rc;
            rc = pread_cold(fd, buf + keep, want - keep, off + keep);
            if (rc != 0) {
                *reason = rc == CAIRN_ECORRUPT ? CAIRN_BAD_SIZE : CAIRN_BAD_IO;
                return rc == CAIRN_ECORRUPT || is_media_error(rc) ? CAIRN_ECORRUPT : rc;
            }
            *bytes += want - keep;
            woff = off;
            wlen = want;
        }
        const uint8_t *blk = buf + (off - woff);
        if (cairn_frag_sum(blk, len) != cairn_le64_get(blk + len)) {
            *reason = CAIRN_BAD_BLOCK;
            return CAIRN_ECORRUPT;
        }
    }
    return 0;
}

int cairn_fstore_verify(cairn_fstore_t *st, const uint8_t oid[16], unsigned index, const cairn_fstore_pace_t *pace,
                        uint64_t *bytes, unsigned *reason)
{
    char path[64];
    struct stat sb;
    cairn_frag_hdr_t h = {0};
    *bytes = 0;
    *reason = 0;
    int fd = open_frag(st, oid, index, path, sizeof path);
    if (fd < 0)
        return fd;
    if (fstat(fd, &sb) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
    uint64_t size = (uint64_t)sb.st_size;
    uint8_t *buf = tbuf_get(IO_BUF_MIN);
    size_t cap = tbuf_cap();
    size_t wlen = size < cap ? (size_t)size : cap;
    int rc = pace->wait(pace->ctx, wlen);
    if (rc == 0)
        rc = pread_cold(fd, buf, wlen, 0);
    if (rc == 0)
        *bytes = wlen;
    if (rc == CAIRN_ECORRUPT || (rc == 0 && size < CAIRN_FRAG_HDR_SIZE)) { /* shrank since the fstat, or tiny */
        rc = CAIRN_ECORRUPT;
        *reason = CAIRN_BAD_SIZE;
    } else if (rc == 0 && cairn_frag_hdr_decode(buf, &h) != 0) {
        rc = CAIRN_ECORRUPT;
        *reason = CAIRN_BAD_HEADER;
    } else if (rc == 0 && size != cairn_frag_file_size(&h)) {
        rc = CAIRN_ECORRUPT;
        *reason = CAIRN_BAD_SIZE;
    } else if (is_media_error(rc)) {
        rc = CAIRN_ECORRUPT;
        *reason = CAIRN_BAD_IO;
    }
    if (rc == 0 && h.block_size + (size_t)CAIRN_FRAG_SUM_SIZE > cap) {
        buf = tbuf_get(h.block_size + (size_t)CAIRN_FRAG_SUM_SIZE); /* blocks above 1 MiB */
        cap = tbuf_cap();
    }
    if (rc == 0)
        rc = verify_blocks(fd, &h, buf, cap, wlen, pace, bytes, reason);
    if (rc == CAIRN_ECORRUPT) {
        char what[80];
        snprintf(what, sizeof what, "found by the scrubber (bad %s)", cairn_node_bad_reason(*reason));
        found_bad(st, fd, 0, oid, index, *reason, 0, path, what);
    }
    close(fd);
    return rc;
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
    cairn_node_info_t info = {.id = st->node_id};
    int rc = cairn_fstore_info(st, &info.used, &info.avail, &info.fragments);
    if (rc != 0)
        return rc;
    cairn_node_info_encode(resp, &info);
    return 0;
}

static int on_bad_list(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_dec_t d;
    cairn_dec_init(&d, req->body, (size_t)req->hdr.body_len);
    uint32_t max = cairn_dec_u32(&d);
    if (d.err)
        return CAIRN_EPROTO;
    if (max > CAIRN_NODE_BAD_LIST_MAX)
        max = CAIRN_NODE_BAD_LIST_MAX;
    cairn_node_bad_t *v;
    size_t n;
    int more;
    cairn_fstore_bad_list(data, max, &v, &n, &more);
    cairn_node_bad_list_encode(resp, v, n, more);
    free(v);
    return 0;
}

static int on_scrub_status(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_fstore_t *st = data;
    cairn_node_scrub_status_t s = {0};
    cairn_scrub_t *sc = __atomic_load_n(&st->scrub, __ATOMIC_ACQUIRE);
    if (sc != NULL)
        cairn_scrub_status(sc, &s);
    cairn_node_scrub_status_encode(resp, &s);
    return 0;
}

/* u32 rate_mb -> empty (node_client.h). */
static int on_scrub_now(void *data, cairn_srv_req_t *req, cairn_buf_t *resp)
{
    cairn_fstore_t *st = data;
    cairn_dec_t d;
    cairn_dec_init(&d, req->body, (size_t)req->hdr.body_len);
    uint32_t rate_mb = cairn_dec_u32(&d);
    if (d.err || cairn_dec_left(&d) != 0)
        return CAIRN_EPROTO;
    cairn_scrub_t *sc = __atomic_load_n(&st->scrub, __ATOMIC_ACQUIRE);
    if (sc == NULL)
        return CAIRN_EUNAVAIL;
    return cairn_scrub_now(sc, (uint64_t)rate_mb * 1000000);
}

const cairn_srv_route_t cairn_fstore_routes[] = {
    {CAIRN_OP_PING, 0, on_ping},
    {CAIRN_OP_FRAG_PUT, 1, on_put},
    {CAIRN_OP_FRAG_GET, 0, on_get},
    {CAIRN_OP_FRAG_DELETE, 0, on_delete},
    {CAIRN_OP_FRAG_STAT, 0, on_stat},
    {CAIRN_OP_FRAG_LIST, 0, on_list},
    {CAIRN_OP_NODE_INFO, 0, on_info},
    {CAIRN_OP_NODE_BAD_LIST, 0, on_bad_list},
    {CAIRN_OP_NODE_SCRUB_STATUS, 0, on_scrub_status},
    {CAIRN_OP_NODE_SCRUB_NOW, 0, on_scrub_now},
};
const size_t cairn_fstore_nroutes = sizeof cairn_fstore_routes / sizeof cairn_fstore_routes[0];
