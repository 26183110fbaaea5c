/*
 * ec.h — Reed-Solomon erasure coding over GF(2^8) (ISA-L underneath).
 *
 * An object stripe is cut into k data blocks of equal length; the code adds m
 * parity blocks so that any k of the k+m blocks ("fragments") rebuild the rest.
 * The code is systematic: fragments 0..k-1 are the data itself, so a healthy
 * read decodes nothing.
 *
 * The generator is ISA-L's Cauchy matrix (gf_gen_cauchy1_matrix, polynomial
 * 0x11d): the top k rows are the identity, parity row p (k <= p < k+m) has
 * entries 1 / (p XOR j) for column j. Every k x k submatrix of a Cauchy matrix
 * is invertible, so every loss of up to m fragments is recoverable. The
 * matrix is part of the on-disk format: changing it makes stored parity
 * unreadable.
 *
 * Caveats
 * - k + m <= 32 (CAIRN_EC_MAX_FRAGS). This keeps every matrix and decode table
 *   on the stack: the data path never allocates.
 * - A cairn_ec_t is immutable after cairn_ec_create(); share one across threads.
 * - Buffers of different fragments must not overlap. No alignment is needed,
 *   but 32-byte aligned buffers run faster.
 * - Cost: encode is one pass over the k data blocks writing m outputs.
 *   Reconstruct additionally inverts a k x k matrix and builds decode tables
 *   on every call (~8 us for 10+4 with 4 losses), so call it on whole
 *   stripes (e.g. 256 KiB blocks), not on small pieces.
 */
#ifndef CAIRN_EC_H
#define CAIRN_EC_H

#include <stddef.h>
#include <stdint.h>

#define CAIRN_EC_MAX_FRAGS 32

/* Stack used by cairn_ec_reconstruct(), with margin: two k x k matrices, the
 * decode rows and 32 * k * nlost bytes of ISA-L tables (k * nlost <= 256 when
 * k + m <= 32), about 12 KiB in all at -O2. Threads that call it need this
 * much stack to spare. */
#define CAIRN_EC_RECONSTRUCT_STACK (16 * 1024)

typedef struct cairn_ec_s cairn_ec_t;

/* Create a k+m code. 1 <= k, 0 <= m, k + m <= CAIRN_EC_MAX_FRAGS.
 * Returns 0 and sets *out (free with cairn_ec_destroy), or CAIRN_EINVAL (a
 * negative code, see err.h) for bad k/m, leaving *out untouched. */
int cairn_ec_create(int k, int m, cairn_ec_t **out);

/* Free a code; NULL is a no-op. No call may be in flight on it. */
void cairn_ec_destroy(cairn_ec_t *ec);

int cairn_ec_k(const cairn_ec_t *ec);
int cairn_ec_m(const cairn_ec_t *ec);

/* Compute parity[0..m) from data[0..k), every block len bytes (len may be 0
 * and need not be aligned). parity buffers are overwritten, not accumulated.
 * Never allocates, never fails. Thread-safe on a shared ec. */
void cairn_ec_encode(const cairn_ec_t *ec, size_t len, uint8_t *const *data, uint8_t **parity);

/* Rebuild missing fragments in place.
 *
 * frags[0..k+m) points to one len-byte buffer per fragment (data 0..k-1, then
 * parity); present[i] != 0 means frags[i] holds valid contents. Every missing
 * fragment, data or parity, is written into its frags[i], so the caller
 * supplies a buffer for each. Present fragments are only read.
 *
 * Returns 0 (also when nothing is missing), or CAIRN_EUNAVAIL when fewer
 * than k fragments are present (no buffer is written then).
 * Never allocates; uses up to CAIRN_EC_RECONSTRUCT_STACK bytes of stack.
 * Thread-safe on a shared ec. */
int cairn_ec_reconstruct(const cairn_ec_t *ec, size_t len, uint8_t **frags, const uint8_t *present);

/* Shared-internal, for tests: the same as above but handing ISA-L at most
 * `chunk` bytes per call (chunk >= 1). The public functions use ~1 GiB chunks
 * because ISA-L takes an int length; tests use tiny chunks to cover the loop
 * without allocating gigabytes. */
void cairn__ec_encode_chunked(const cairn_ec_t *ec, size_t len, uint8_t *const *data,
                              uint8_t **parity, size_t chunk);
int cairn__ec_reconstruct_chunked(const cairn_ec_t *ec, size_t len, uint8_t **frags,
                                  const uint8_t *present, size_t chunk);

#endif
