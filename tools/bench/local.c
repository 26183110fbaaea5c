/*
 * local.c — the parts of cairn-bench that do not talk to a server.
 *
 * `files` writes objects as plain files so that a web server (nginx in
 * `make bench`) can serve the very bytes a cairn GET returns, and
 * `get --raw` can check them with the same code and at the same cost.
 *
 * `memcpy` measures one thread's copy bandwidth, the ceiling of every
 * stage that moves bytes in user space (a GET copies each byte at least
 * once in the gateway, a PUT hands each to the kernel at least twice).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "cairn/err.h"

/* mkdir -p of the directory part of path (everything before the last '/'). */
static int make_parents(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0755);
        int e = errno;
        *p = '/';
        if (rc != 0 && e != EEXIST) {
            fprintf(stderr, "cairn-bench: mkdir %.*s: %s\n", (int)(p - path), path, strerror(e));
            return -1;
        }
    }
    return 0;
}

/* Write object o to fd from its slices. 0 or -1 (errno set). */
static int write_obj(int fd, bench_obj_t *o)
{
    for (uint64_t off = 0; off < o->size;) {
        const uint8_t *p;
        size_t n = bench_obj_slice(o, off, &p);
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        off += (uint64_t)w;
    }
    return 0;
}

int bench_files(const bench_cfg_t *cfg, const bench_pool_t *pool, const char *dir)
{
    uint64_t rng = cfg->rng_seed | 1;
    for (uint64_t i = 0; i < cfg->objects; i++) {
        char bucket[80], key[256], path[4096];
        bench_key_name(cfg, i, bucket, sizeof bucket, key, sizeof key);
        snprintf(path, sizeof path, "%s/%s/%s", dir, bucket, key);
        if (make_parents(path) != 0)
            return -1;
        uint64_t size = cfg->size_min;
        if (cfg->size_max > cfg->size_min) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size += (rng >> 11) % (cfg->size_max - cfg->size_min + 1);
        }
        bench_obj_t o;
        bench_obj_init(&o, pool, bench_obj_seed(bucket, key), size);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write_obj(fd, &o) != 0 || close(fd) != 0) {
            fprintf(stderr, "cairn-bench: write %s: %s\n", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
    }
    return 0;
}

/* GB/s of memcpy between two buffers of len bytes, repeated for about `seconds`. */
static double copy_rate(size_t len, double seconds)
{
    uint8_t *a = cairn_malloc(len), *b = cairn_malloc(len);
    memset(a, 0x5a, len); /* touch every page before timing */
    memset(b, 0xa5, len);
    uint64_t bytes = 0;
    int64_t t0 = bench_now_ns(), t1 = t0, until = t0 + (int64_t)(seconds * 1e9);
    while (t1 < until) {
        for (int i = 0; i < 8; i++) {
            memcpy(b, a, len);
            __asm__ volatile("" : : "r"(b) : "memory"); /* the copy must happen */
            bytes += len;
        }
        t1 = bench_now_ns();
    }
    free(a);
    free(b);
    return (double)bytes / ((double)(t1 - t0) / 1e9) / 1e9;
}

void bench_memcpy_speed(double *in_cache_gb_s, double *memory_gb_s)
{
    *in_cache_gb_s = copy_rate((size_t)256 << 10, 0.4);
    *memory_gb_s = copy_rate((size_t)64 << 20, 0.6);
}
