/*
 * err.h — error numbers shared by every cairn module.
 *
 * Functions return int: 0 on success, a negative number on failure. The
 * negative number is either -errno (system errors, e.g. -ENOENT) or one of
 * the CAIRN_E* codes below, which live in a band far above errno values.
 * cairn_strerror() names both kinds.
 */
#ifndef CAIRN_ERR_H
#define CAIRN_ERR_H

#include <stdio.h>
#include <stdlib.h>

enum {
    CAIRN_EBASE = 10000,
    CAIRN_EPROTO = -(CAIRN_EBASE + 1),     /* malformed frame or message */
    CAIRN_EAUTH = -(CAIRN_EBASE + 2),      /* bad HMAC / signature */
    CAIRN_ECORRUPT = -(CAIRN_EBASE + 3),   /* checksum mismatch on stored data */
    CAIRN_ETOOBIG = -(CAIRN_EBASE + 4),    /* length above a limit */
    CAIRN_ENOTFOUND = -(CAIRN_EBASE + 5),  /* no such object / bucket / key */
    CAIRN_EEXIST = -(CAIRN_EBASE + 6),     /* already exists */
    CAIRN_ENOTEMPTY = -(CAIRN_EBASE + 7),  /* bucket not empty */
    CAIRN_ETIMEOUT = -(CAIRN_EBASE + 8),   /* peer did not answer in time */
    CAIRN_EUNAVAIL = -(CAIRN_EBASE + 9),   /* not enough nodes / peer down */
    CAIRN_EINVAL = -(CAIRN_EBASE + 10),    /* invalid argument or config */
    CAIRN_ENOTLEADER = -(CAIRN_EBASE + 11),/* metadata replica is not the leader */
    CAIRN_ECONFLICT = -(CAIRN_EBASE + 12), /* compare-and-set lost */
    CAIRN_ENOSUCHUSER = -(CAIRN_EBASE + 13), /* unknown access key */
    CAIRN_EBUCKET = -(CAIRN_EBASE + 14),   /* no such bucket */
    CAIRN_EOWNED = -(CAIRN_EBASE + 15),    /* bucket exists, owned by caller */
    CAIRN_ELAST = -(CAIRN_EBASE + 16),
};

/* Name of an error: a static string, valid forever. Accepts any value. */
const char *cairn_strerror(int err);

/* Always-on assertion: logs file:line and aborts. */
#define CAIRN_ASSERT(cond)                                                                 \
    do {                                                                                   \
        if (__builtin_expect(!(cond), 0)) {                                                \
            fprintf(stderr, "assertion failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* Allocation that aborts on out-of-memory (never returns NULL). */
void *cairn_malloc(size_t n);
void *cairn_calloc(size_t n, size_t size);
void *cairn_realloc(void *p, size_t n);
char *cairn_strndup(const char *s, size_t n);

#endif
