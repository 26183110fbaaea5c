/*
 * frag.h — the fragment file format.
 *
 * Object bytes are cut into stripes of k * B bytes; stripe s gives one block
 * to each of the k data fragments (block i = bytes [i*L, (i+1)*L) of the
 * stripe, zero-padded) and ISA-L computes m parity blocks. Fragment i is one
 * file holding block i of every stripe:
 *
 *   header (64 bytes) | block 0 | xxh3(block 0) | block 1 | xxh3 | ...
 *
 * Every block is B bytes except in the last stripe, where all k+m blocks are
 * L = ceil(last_stripe_bytes / k) bytes, so a small object costs k+m small
 * files rather than k+m files of B bytes. Each block is followed by its
 * XXH3-64 (8 bytes, little-endian), so any fragment verifies alone, and a
 * range read touches only the blocks it needs.
 *
 * Header, little-endian:
 *   0  u32 magic "CRNF"   4 u16 version (1)   6 u16 header size (64)
 *   8  oid[16]            24 u8 index  25 u8 k  26 u8 m  27 u8 0
 *   28 u32 block size B   32 u64 object size  40..55 zero
 *   56 u64 XXH3-64 of bytes 0..55
 */
#ifndef CAIRN_FRAG_H
#define CAIRN_FRAG_H

#include <stddef.h>
#include <stdint.h>

#define CAIRN_FRAG_MAGIC 0x464e5243u /* "CRNF" */
#define CAIRN_FRAG_VERSION 1
#define CAIRN_FRAG_HDR_SIZE 64
#define CAIRN_FRAG_SUM_SIZE 8
#define CAIRN_MAX_FRAGS 32
#define CAIRN_FRAG_MAX_BLOCK (16u << 20)
/* Largest object size a header may claim (1 PiB): keeps every offset
 * computation below far from 64-bit overflow. */
#define CAIRN_FRAG_MAX_OBJECT (1ull << 50)

typedef struct {
    uint8_t oid[16];
    uint8_t index;
    uint8_t k, m;
    uint32_t block_size;
    uint64_t object_size;
} cairn_frag_hdr_t;

void cairn_frag_hdr_encode(const cairn_frag_hdr_t *h, uint8_t out[CAIRN_FRAG_HDR_SIZE]);
/* CAIRN_ECORRUPT on bad magic/checksum, CAIRN_EPROTO on unsupported version
 * or insane values (k == 0, k + m > CAIRN_MAX_FRAGS, index >= k + m,
 * block size 0 or > CAIRN_FRAG_MAX_BLOCK or not a multiple of 64, object
 * size > CAIRN_FRAG_MAX_OBJECT, non-zero reserved bytes). The checksum is
 * checked before the version, so a damaged version reads as corruption. */
int cairn_frag_hdr_decode(const uint8_t in[CAIRN_FRAG_HDR_SIZE], cairn_frag_hdr_t *h);

/* Geometry: pure functions of a decoded (sane) header. Stripes past the end
 * have block_len and stripe_bytes 0; an object of size 0 has no stripes and
 * its file is the header alone. */
uint64_t cairn_frag_nstripes(const cairn_frag_hdr_t *h);                  /* ceil(size / (k*B)) */
size_t cairn_frag_block_len(const cairn_frag_hdr_t *h, uint64_t stripe);   /* B, or L for the last stripe */
uint64_t cairn_frag_block_offset(const cairn_frag_hdr_t *h, uint64_t stripe); /* file offset of the block */
uint64_t cairn_frag_file_size(const cairn_frag_hdr_t *h);
/* Data bytes of the object held in stripe s (k*B, or the remainder). */
uint64_t cairn_frag_stripe_bytes(const cairn_frag_hdr_t *h, uint64_t stripe);

/* XXH3-64 of a block (AVX2 entry point). */
uint64_t cairn_frag_sum(const void *p, size_t n);

/* A FRAG_GET answer (header, then n blocks from stripe `first`, each with
 * its sum): 0 when the header is fragment `index` of the object `want`
 * describes and every block's sum matches; CAIRN_ECORRUPT or CAIRN_EPROTO
 * (wrong length) otherwise. */
int cairn_frag_read_check(const cairn_frag_hdr_t *want, unsigned index, uint64_t first, uint32_t n, const uint8_t *p,
                          size_t len);
/* Block i (0-based, relative to `first`) inside a checked FRAG_GET answer. */
const uint8_t *cairn_frag_read_block(const cairn_frag_hdr_t *h, const uint8_t *p, uint64_t first, uint32_t i);

/* The file name of a fragment relative to a data directory:
 * "ab/abcdef...(32 hex).i" with i the index in decimal; out >= 64 bytes. */
void cairn_frag_path(const uint8_t oid[16], unsigned index, char *out, size_t outsz);

#endif
