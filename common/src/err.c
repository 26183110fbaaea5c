/* err.c — error names and aborting allocators. */
#include "cairn/err.h"

#include <string.h>

const char *cairn_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case CAIRN_EPROTO: return "protocol error";
    case CAIRN_EAUTH: return "authentication failed";
    case CAIRN_ECORRUPT: return "checksum mismatch";
    case CAIRN_ETOOBIG: return "too large";
    case CAIRN_ENOTFOUND: return "not found";
    case CAIRN_EEXIST: return "already exists";
    case CAIRN_ENOTEMPTY: return "not empty";
    case CAIRN_ETIMEOUT: return "timed out";
    case CAIRN_EUNAVAIL: return "unavailable";
    case CAIRN_EINVAL: return "invalid argument";
    case CAIRN_ENOTLEADER: return "not the leader";
    case CAIRN_ECONFLICT: return "conflict";
    case CAIRN_ENOSUCHUSER: return "no such user";
    case CAIRN_EBUCKET: return "no such bucket";
    case CAIRN_EOWNED: return "bucket already owned by you";
    }
    if (err < 0 && err > -CAIRN_EBASE)
        return strerror(-err);
    return "unknown error";
}

void *cairn_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    CAIRN_ASSERT(p != NULL);
    return p;
}

void *cairn_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    CAIRN_ASSERT(p != NULL);
    return p;
}

void *cairn_realloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    CAIRN_ASSERT(p != NULL);
    return p;
}

char *cairn_strndup(const char *s, size_t n)
{
    char *p = cairn_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
