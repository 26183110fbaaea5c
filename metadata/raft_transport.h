/*
 * raft_transport.h — the TCP transport between metadata replicas, for
 * libraft's libuv backend (struct raft_uv_transport).
 *
 * libraft's own TCP transport (raft_uv_tcp_init) accepts any peer: whoever
 * reaches the Raft port can claim a server id and send AppendEntries, and
 * the sizes in its handshake are trusted (a garbage handshake asks malloc
 * for up to 2^64 bytes). This one keeps libraft's framing of Raft messages
 * but opens every connection with a fixed-size handshake authenticated with
 * the cluster key (wire.h's MAC):
 *
 *   0  u32 magic "CRFT"     8  u64 sender's Raft id     24 u16 address length (< 128)
 *   4  u32 version (1)      16 i64 sender's clock, ms   26 address, zero-padded to 128 bytes
 *   154 zero padding to 160, then the 32-byte MAC of those 160 bytes
 *
 * The receiver reads exactly 192 bytes (never a byte of what follows),
 * within HANDSHAKE_TIMEOUT_MS, checks the MAC and that the clock is within
 * HANDSHAKE_SKEW_MS of its own (a recorded handshake is useless later), and
 * only then hands the connection to libraft. Anything else is closed.
 *
 * Caveats
 * - Only the handshake is authenticated; the Raft messages after it are
 *   not (an attacker able to inject into an established TCP stream is out
 *   of scope, as for plain TCP). Keep raft_addr on a private network.
 * - Addresses are IPv4 literals "a.b.c.d:port" (as libraft's transport).
 * - Every function runs on the loop thread.
 */
#ifndef CAIRN_META_RAFT_TRANSPORT_H
#define CAIRN_META_RAFT_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>

#include "cairn/wire.h"

/* Set up t (its impl) on loop; key is borrowed and outlives t. 0 or
 * RAFT_NOMEM. Then pass t to raft_uv_init(). */
int meta_transport_init(struct raft_uv_transport *t, uv_loop_t *loop, const cairn_wire_key_t *key);
/* Free what init allocated, once libraft has closed the transport (after
 * raft_close completed and the loop ran its callbacks). */
void meta_transport_release(struct raft_uv_transport *t);

#endif
