/*
 * checksum.h — the additional checksums of S3 (x-amz-checksum-*): CRC32,
 * CRC32C, CRC64NVME, SHA1 and SHA256, computed incrementally and rendered
 * the way S3 sends them (base64 of the big-endian CRC or of the digest).
 *
 * CRC32 and CRC32C use ISA-L (crc32_gzip_refl, crc32_iscsi). ISA-L 2.30 has
 * no CRC-64/NVME, so it is here: slice-by-8 tables (built once, on first
 * use, under pthread_once) beside a bitwise reference, checked against each
 * other by the unit test. SHA1/SHA256 go through OpenSSL EVP.
 *
 * Costs per GiB on one core (dependencies.md): CRC32C ~0.05 s, CRC64 (tables)
 * ~0.5 s, SHA256 ~0.7 s, SHA1 ~0.6 s. The gateway computes at most one of
 * them per request, besides the MD5 of the ETag.
 *
 * Caveats
 * - cairn_ck_t for SHA1/SHA256 holds an EVP context: call cairn_ck_dispose()
 *   (cairn_ck_final() does it too). CRC states hold nothing.
 * - Names are matched case-insensitively ("crc32c", "CRC32C"); header
 *   names are the lower-case "x-amz-checksum-crc32c".
 */
#ifndef CAIRN_CHECKSUM_H
#define CAIRN_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CAIRN_CK_NONE = 0,
    CAIRN_CK_CRC32,
    CAIRN_CK_CRC32C,
    CAIRN_CK_CRC64NVME,
    CAIRN_CK_SHA1,
    CAIRN_CK_SHA256,
    CAIRN_CK_COUNT,
} cairn_ck_alg_t;

/* Longest base64 value (SHA256: 44 characters) plus NUL, rounded up. */
#define CAIRN_CK_B64_MAX 48

typedef struct {
    cairn_ck_alg_t alg;
    uint64_t crc;  /* CRC state */
    void *md;      /* EVP_MD_CTX for SHA1/SHA256 */
} cairn_ck_t;

/* "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"; "" for NONE. Static. */
const char *cairn_ck_name(cairn_ck_alg_t alg);
/* "x-amz-checksum-crc32" etc.; "" for NONE. Static. */
const char *cairn_ck_header(cairn_ck_alg_t alg);
/* Algorithm of a name (case-insensitive, not NUL-terminated); CAIRN_CK_NONE if unknown. */
cairn_ck_alg_t cairn_ck_from_name(const char *s, size_t len);
/* Algorithm of a header name ("x-amz-checksum-sha1", lower case); CAIRN_CK_NONE if it is not one. */
cairn_ck_alg_t cairn_ck_from_header(const char *s, size_t len);

void cairn_ck_init(cairn_ck_t *c, cairn_ck_alg_t alg);
void cairn_ck_update(cairn_ck_t *c, const void *p, size_t n);
/* Base64 of the result into out (NUL-terminated); returns its length.
 * Disposes the state. NONE gives "". */
size_t cairn_ck_final(cairn_ck_t *c, char out[CAIRN_CK_B64_MAX]);
/* Release the state without a result. Idempotent. */
void cairn_ck_dispose(cairn_ck_t *c);

/* One-shot: base64 checksum of p[0..n) into out; returns its length. */
size_t cairn_ck_compute(cairn_ck_alg_t alg, const void *p, size_t n, char out[CAIRN_CK_B64_MAX]);

/* The CRC of A||B from crc1 = CRC(A), crc2 = CRC(B) and len2 = |B|, for
 * CRC32, CRC32C and CRC64NVME (values as cairn_ck computes them): what S3's
 * FULL_OBJECT checksum of a multipart upload is made from, the parts' CRCs
 * and sizes. Costs O(log len2) carry-less products of 32 or 64 bits (about
 * 2 us for a 5 GiB part); no table. crc1 for another algorithm is returned. */
uint64_t cairn_crc_combine(cairn_ck_alg_t alg, uint64_t crc1, uint64_t crc2, uint64_t len2);
/* A CRC value from its base64 form (CRC32, CRC32C: 4 bytes; CRC64NVME: 8,
 * big-endian). 0, or CAIRN_EINVAL when it is not that. */
int cairn_ck_crc_decode(cairn_ck_alg_t alg, const char *b64, size_t len, uint64_t *crc);
/* The base64 form of a CRC value of alg into out; its length (0 if alg is no CRC). */
size_t cairn_ck_crc_encode(cairn_ck_alg_t alg, uint64_t crc, char out[CAIRN_CK_B64_MAX]);

/* CRC-64/NVME (poly 0xad93d23594c93659 reflected, init and xorout all ones).
 * Chain calls by passing the previous result; start with 0. */
uint64_t cairn_crc64nvme(uint64_t crc, const void *p, size_t n);
/* Bitwise reference of the same function (slow; for tests). */
uint64_t cairn_crc64nvme_base(uint64_t crc, const void *p, size_t n);

#endif
