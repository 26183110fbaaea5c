/*
 * scrub.h — the storage node's scrubber: a background thread that re-reads
 * every fragment file of the store and verifies it (header checksum, file
 * size, every block's XXH3-64), so that damage is found before a read needs
 * the fragment and before a second fragment of the same object decays.
 *
 * A pass walks the fragments in (oid, index) order with FRAG_LIST's
 * iteration (cairn_fstore_list) and checks each with cairn_fstore_verify,
 * which quarantines what is bad (frag_store.h). Passes are separated by
 * interval_ms, counted from the end of one pass to the start of the next.
 *
 * Cost and fairness: reads are paced by a token bucket of rate_bps bytes a
 * second (a burst of at most 1/20 s of rate or one read window), in windows
 * of up to 1 MiB, so client requests see at most one such read queued
 * ahead of them. Verification reads leave the page cache as they found it
 * (cairn_fstore_verify). At the default 8 MB/s a pass over 1 TB of
 * fragments takes about 35 hours.
 *
 * Persistence: DIR/scrub.state holds the end time of the last finished
 * pass and, while a pass is under way, its cursor (the last fragment
 * checked), written atomically (temporary file, fsync, rename, fsync of
 * DIR) at most once a minute during a pass and when a pass ends or the
 * scrubber stops. A restarted node resumes the pass where it stopped, or
 * waits out the interval from the last pass's end, instead of starting
 * over. The counters of cairn_node_scrub_status_t restart from 0.
 *
 * On request (NODE_SCRUB_NOW, cairn_scrub_now) every fragment is verified
 * again, starting at once instead of after the interval, also when
 * periodic scrubbing is disabled: a pass starts now, or the pass under way
 * goes on to its end and the next one starts right after it and serves
 * the request once it reaches the point where the first one was when the
 * request came (so at most one pass's worth of reading, never two). Until
 * every request is served, reads are paced at the requested rate, the
 * pass under way included; then the pass under way goes on at the
 * configured rate or, with scrubbing disabled, pauses until the next
 * request. Requests are not persisted: a restarted node forgets them (the
 * caller notices, node_client.h).
 *
 * The same thread removes quarantined copies older than keep_ms (once an
 * hour), also when scrubbing is disabled.
 *
 * Caveat: a page already cached is verified as cached; damage on disk under
 * it is found by a later pass, once the page has left the cache.
 */
#ifndef CAIRN_SCRUB_H
#define CAIRN_SCRUB_H

#include <stdint.h>

#include "cairn/node_client.h"
#include "frag_store.h"

/* How long a quarantined copy is kept before the scrubber removes it. */
#define CAIRN_SCRUB_KEEP_MS (7LL * 24 * 3600 * 1000)

typedef struct cairn_scrub_s cairn_scrub_t;

typedef struct {
    int enabled;         /* 0: no passes, only the removal of old quarantined copies */
    uint64_t rate_bps;   /* bytes read per second at most; 0 = unlimited */
    int64_t interval_ms; /* from the end of one pass to the start of the next, >= 0 */
    int64_t keep_ms;     /* quarantined copies older than this are removed (CAIRN_SCRUB_KEEP_MS) */
} cairn_scrub_opts_t;

/* A scrubber of st (borrowed; outlives it), not yet running: reads
 * DIR/scrub.state (a missing or malformed file means "never scrubbed";
 * the latter is logged). Never fails. */
cairn_scrub_t *cairn_scrub_create(cairn_fstore_t *st, const cairn_scrub_opts_t *o);

/* Start the background thread. 0 or -errno (pthread_create). */
int cairn_scrub_start(cairn_scrub_t *s);

/* One pass on the calling thread (continuing the pass under way, if any),
 * paced like the thread's (with scrubbing disabled and no request waiting
 * it pauses at once). For tests and benchmarks; not while the thread
 * runs. 0, or -errno when the store could not be listed (the pass stays
 * under way). */
int cairn_scrub_pass(cairn_scrub_t *s);

/* Ask for a pass that starts after this call, read at rate_bps (0: the
 * configured rate) until every request so far is served; wakes the thread.
 * Callable from any thread. 0, or CAIRN_EINVAL when rate_bps is 0 and
 * periodic scrubbing is disabled (there is no configured rate). */
int cairn_scrub_now(cairn_scrub_t *s, uint64_t rate_bps);

/* The counters; callable from any thread. */
void cairn_scrub_status(cairn_scrub_t *s, cairn_node_scrub_status_t *out);

/* Stop the thread (a read under way finishes; a pacing wait does not),
 * save the state, free. NULL is fine. */
void cairn_scrub_destroy(cairn_scrub_t *s);

#endif
