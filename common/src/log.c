/* log.c — see log.h. */
#include "cairn/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int cairn_log_level = CAIRN_LOG_INFO;
static char log_service[32] = "cairn";
static char log_id[64] = "-";

void cairn_log_init(const char *service, const char *id, int level)
{
    snprintf(log_service, sizeof log_service, "%s", service);
    snprintf(log_id, sizeof log_id, "%s", id);
    cairn_log_level = level;
}

int cairn_log_parse_level(const char *s)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

void cairn__log(int level, uint64_t req_id, const char *fmt, ...)
{
    static const char *lv[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s %s ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     lv[level & 3], log_service, log_id);
    if (req_id != 0)
        n += snprintf(line + n, sizeof line - n, "req=%016llX ", (unsigned long long)req_id);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    n = (m < 0 || (size_t)(n + m) >= sizeof line - 1) ? (int)sizeof line - 2 : n + m;
    line[n++] = '\n';
    ssize_t w = write(2, line, n);
    (void)w;
}
