/*
 * log.h — one line per event, to stderr.
 *
 *   2026-11-27T23:30:01.123Z INFO gateway gw-1 req=00000000deadbeef PUT /b/k 200 ...
 *
 * Every line names the service, the process's id and, when there is one, the
 * request id (hex, the same value the gateway returns as x-amz-request-id).
 * cairn_log() checks the level before formatting, so debug lines cost one
 * comparison when disabled. Thread-safe: a line is written with one write(2).
 */
#ifndef CAIRN_LOG_H
#define CAIRN_LOG_H

#include <stdint.h>

enum { CAIRN_LOG_DEBUG = 0, CAIRN_LOG_INFO = 1, CAIRN_LOG_WARN = 2, CAIRN_LOG_ERROR = 3 };

extern int cairn_log_level;

/* Set the service name ("gateway"), the process id ("gw-1") and the minimum level.
 * Both strings are copied. Call once at start-up, before threads. */
void cairn_log_init(const char *service, const char *id, int level);

/* Parse "debug", "info", "warn" or "error"; -1 if unknown. */
int cairn_log_parse_level(const char *s);

#define cairn_log(level, req_id, ...)                    \
    do {                                                 \
        if ((level) >= cairn_log_level)                  \
            cairn__log((level), (req_id), __VA_ARGS__);  \
    } while (0)

void cairn__log(int level, uint64_t req_id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
