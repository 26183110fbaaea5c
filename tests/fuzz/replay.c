/*
 * replay.c — runs a fuzz target's LLVMFuzzerTestOneInput over its committed
 * corpus without libFuzzer, so `make test` checks every corpus input (and
 * every past crash kept there) with the normal compiler and, in the
 * sanitizer pass, under AddressSanitizer.
 *
 *   $(B)/tests/fuzz/<name>_test [FILE|DIR ...]
 *
 * Without arguments it replays tests/fuzz/corpus/<name>/ (relative to the
 * current directory, the repository root under tests/run-all.sh), <name>
 * being the program's name without "_test". A missing or empty corpus is a
 * failure: a target whose corpus was lost must not pass silently. A crash
 * or sanitizer report in the target ends the program as it would end the
 * fuzzer; the file being replayed is printed first.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Present when linked with a sanitizer runtime. */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static size_t inputs, bytes;
static char current[4096]; /* the input being replayed */

/* Name the input that killed the target (async-signal-safe). */
static void on_death(void)
{
    static const char pre[] = "\nreplay: crashed on ";
    ssize_t w = write(2, pre, sizeof pre - 1);
    w = write(2, current, strlen(current));
    w = write(2, "\n", 1);
    (void)w;
}

static void on_signal(int sig)
{
    on_death();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (n == cap)
            buf = realloc(buf, cap *= 2);
        if (buf == NULL)
            abort();
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        fprintf(stderr, "replay: %s: read error\n", path);
        free(buf);
        return -1;
    }
    snprintf(current, sizeof current, "%s", path);
    /* An exact-size copy, so ASan sees reads past the end of the input. */
    uint8_t *exact = malloc(n ? n : 1);
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    inputs++;
    bytes += n;
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir, in name order (a stable order for bisecting). */
static int replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            names = realloc(names, cap * sizeof *names);
            if (names == NULL)
                abort();
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        snprintf(names[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
            rc = replay_file(names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

static int replay_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return S_ISDIR(st.st_mode) ? replay_dir(path) : replay_file(path);
}

int main(int argc, char **argv)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(on_death);
    signal(SIGABRT, on_signal);
    signal(SIGSEGV, on_signal);
    signal(SIGBUS, on_signal);
    signal(SIGFPE, on_signal);
    int rc = 0;
    char dflt[512];
    if (argc > 1) {
        for (int i = 1; i < argc && rc == 0; i++)
            rc = replay_path(argv[i]);
    } else {
        const char *base = strrchr(argv[0], '/');
        base = base ? base + 1 : argv[0];
        size_t len = strlen(base);
        if (len > 5 && strcmp(base + len - 5, "_test") == 0)
            len -= 5;
        snprintf(dflt, sizeof dflt, "tests/fuzz/corpus/%.*s", (int)len, base);
        rc = replay_path(dflt);
        if (rc == 0 && inputs == 0) {
            fprintf(stderr, "replay: %s holds no inputs\n", dflt);
            rc = -1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
    printf("%s: replayed %zu inputs, %zu bytes, in %ld ms%s\n", argc > 1 ? "replay" : dflt, inputs, bytes, ms,
           rc ? " (FAILED)" : "");
    return rc ? 1 : 0;
}
