/*
 * buf.h — a growable byte buffer, and little-endian encode/decode helpers.
 *
 * cairn_buf_t owns its memory (malloc); growth doubles, so appending n bytes
 * costs amortised O(n). Allocation failure aborts.
 *
 * cairn_dec_t reads from a borrowed byte range with bounds checks: any read
 * past the end sets d->err and returns zeros, so a decoder can read a whole
 * message and check err once at the end. Decoding never allocates.
 */
#ifndef CAIRN_BUF_H
#define CAIRN_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *base;
    size_t len;
    size_t cap;
} cairn_buf_t;

static inline void cairn_buf_init(cairn_buf_t *b) { b->base = NULL; b->len = b->cap = 0; }
void cairn_buf_dispose(cairn_buf_t *b);
/* Make room for n more bytes; returns a pointer to the free space (len unchanged). */
uint8_t *cairn_buf_reserve(cairn_buf_t *b, size_t n);
void cairn_buf_append(cairn_buf_t *b, const void *p, size_t n);
void cairn_buf_appendf(cairn_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void cairn_buf_reset(cairn_buf_t *b) { b->len = 0; }

/* Little-endian writers. put_bytes writes a u32 length then the bytes; put_str likewise (no NUL). */
void cairn_buf_put_u8(cairn_buf_t *b, uint8_t v);
void cairn_buf_put_u16(cairn_buf_t *b, uint16_t v);
void cairn_buf_put_u32(cairn_buf_t *b, uint32_t v);
void cairn_buf_put_u64(cairn_buf_t *b, uint64_t v);
void cairn_buf_put_bytes(cairn_buf_t *b, const void *p, size_t n);
void cairn_buf_put_str(cairn_buf_t *b, const char *s);

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    int err; /* 0, or CAIRN_EPROTO after a read past the end */
} cairn_dec_t;

static inline void cairn_dec_init(cairn_dec_t *d, const void *p, size_t n)
{
    d->p = (const uint8_t *)p;
    d->end = d->p + n;
    d->err = 0;
}
static inline size_t cairn_dec_left(const cairn_dec_t *d) { return (size_t)(d->end - d->p); }
uint8_t cairn_dec_u8(cairn_dec_t *d);
uint16_t cairn_dec_u16(cairn_dec_t *d);
uint32_t cairn_dec_u32(cairn_dec_t *d);
uint64_t cairn_dec_u64(cairn_dec_t *d);
/* A u32 length then that many bytes; *p borrows from the decoded buffer. */
void cairn_dec_bytes(cairn_dec_t *d, const uint8_t **p, size_t *n);
/* Exactly n raw bytes copied to out (zeros on error). */
void cairn_dec_raw(cairn_dec_t *d, void *out, size_t n);

static inline void cairn_le32_put(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void cairn_le64_put(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline uint32_t cairn_le32_get(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = (v << 8) | p[i]; return v; }
static inline uint64_t cairn_le64_get(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = (v << 8) | p[i]; return v; }

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void cairn_hex(const uint8_t *p, size_t n, char *out);
/* Parse 2n hex digits into n bytes; CAIRN_EINVAL on a bad digit. */
int cairn_unhex(const char *s, size_t n, uint8_t *out);

#endif
