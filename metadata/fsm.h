/*
 * fsm.h — the metadata state machine: users, buckets, object records and the
 * garbage list, in LMDB.
 *
 * Every mutation is one command: a byte string (u8 type, then fields encoded
 * with buf.h, zero-padded to a multiple of 8 bytes because the Raft log
 * requires it) applied in log order by meta_fsm_apply(). Apply is a pure
 * function of (state, command): no clock, no randomness, so every replica
 * that applies the same log holds the same state. The applied index is stored
 * in the same LMDB transaction as the command's effects, and a command whose
 * index is not above it is skipped, so entries replayed after a restart
 * change nothing.
 *
 * A command that fails on its own terms (no such bucket, bucket not empty,
 * malformed) still consumes its index: its status and payload go to *result
 * and the state is unchanged. meta_fsm_apply() returns nonzero only when LMDB
 * itself fails (disk full, I/O error); the command is then not applied and
 * the same index may be submitted again.
 *
 * A command may carry a 16-byte command id (meta_fsm_apply_once): the first
 * entry with an id is applied, and any later entry with the same id, within
 * META_FSM_DEDUP_MS of the first by the leader's clock, answers the first
 * one's result without touching the state. That is what makes a client's
 * retry across an election safe.
 *
 * Reads use read-only LMDB transactions (MVCC: they never block the writer
 * or each other) and may run on any thread, concurrently with apply.
 *
 * LMDB layout (env directory `dir`, named databases):
 *   sys      "format" -> u32 1, "applied" -> u64 index
 *   users    access key -> str secret, str owner id, str display name
 *   buckets  name -> bucket record (meta.h)
 *   objects  bucket '\0' key -> object record (meta.h), see "long keys" in fsm.c
 *   gc       oid[16] -> object record of a superseded version
 *   cmds     command id[16] -> u64 index, u64 time_ms, result
 *   cmdage   u64 time_ms (big-endian) id[16] -> empty (expiry order of cmds)
 * sys also holds "replica" u64 id (big-endian) -> str addr, str raft_addr:
 * the service address of each metadata replica, replicated so that any
 * replica can tell a client where the leader is.
 *
 * Caveats
 * - Bucket listing by owner scans every bucket: O(total buckets).
 * - Snapshots (meta_fsm_copy) are LMDB's compacted copy of the whole file:
 *   O(database) time, O(1) memory.
 */
#ifndef CAIRN_META_FSM_H
#define CAIRN_META_FSM_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/buf.h"
#include "cairn/meta.h"

/* Address space reserved for the database. LMDB maps it lazily: the file
 * grows with the data, not to this size. */
#define META_FSM_MAPSIZE (64ull << 30)

/* How long a command id is remembered after its entry (leader's clock). A
 * client's retries must end well within it (meta.h clients give up after
 * max(2 x io_timeout, 10 s)). The cost is one record per command for that
 * long: at 3000 commits/s, ~360 k records (~100 MB of LMDB). */
#define META_FSM_DEDUP_MS (2 * 60 * 1000)

/* Object keys up to this many bytes are stored verbatim in the LMDB key;
 * longer keys are stored under their first META_FSM_SHORT_KEY bytes plus an
 * 8-byte hash slot. 63 (bucket) + 1 + 439 + 8 = 511, LMDB's key limit. */
#define META_FSM_SHORT_KEY 439

/* Largest max_keys / max answered by a list; larger requests are clamped. */
#define META_FSM_MAX_LIST 1000

typedef struct meta_fsm_s meta_fsm_t;

enum {
    /* Commit without fsync (MDB_NOSYNC): for tests, and for a replicated log
     * that provides durability itself. The default syncs every commit. */
    META_FSM_NOSYNC = 1,
    /* Tests only, never on a real database (it changes the layout): the home
     * slot of a long key is UINT64_MAX - (last byte & 7), so a test chooses
     * collisions, probe runs and full runs. */
    META_FSM_TEST_HOME = 1u << 31,
};

/* Open (creating if needed) the database in directory dir, which must exist.
 * 0, or a negative error (-errno, CAIRN_ECORRUPT for an unknown format). */
int meta_fsm_create(const char *dir, unsigned flags, meta_fsm_t **out);
/* Close the LMDB environment. Waits for running calls; calls made afterwards
 * return CAIRN_EUNAVAIL. The object stays allocated, so threads that still
 * hold it are safe. Idempotent. */
void meta_fsm_shutdown(meta_fsm_t *f);
/* Shutdown (if needed) and free. No other thread may use f any more. */
void meta_fsm_destroy(meta_fsm_t *f);

/* Highest applied index (0 for a new database). */
uint64_t meta_fsm_applied(meta_fsm_t *f);

/* Apply command cmd (len bytes) at log index `index` (> 0). result is reset
 * and receives i32 status (0 or a cairn error) then the payload of the
 * answer; a skipped command (index <= applied) leaves result empty.
 * Returns 0, or a negative system error (nothing was applied). */
int meta_fsm_apply(meta_fsm_t *f, uint64_t index, const uint8_t *cmd, size_t len, cairn_buf_t *result);
/* The same for a command with an id (NULL: none, as meta_fsm_apply) issued at
 * now_ms by the leader's clock: if the id was applied before, result is that
 * first result and the state is unchanged (the index still advances). */
int meta_fsm_apply_once(meta_fsm_t *f, uint64_t index, const uint8_t id[16], int64_t now_ms, const uint8_t *cmd,
                        size_t len, cairn_buf_t *result);

/* Split a result from meta_fsm_apply: returns the status (CAIRN_EPROTO for
 * an empty or short result); *payload borrows from result. */
int meta_fsm_result(const cairn_buf_t *result, const uint8_t **payload, size_t *len);

/* ---- commands ----
 * Each builder appends one complete, padded command to cmd (normally empty).
 * Strings are (pointer, length) views. Payloads of the results:
 *   USER_PUT, BUCKET_CREATE, BUCKET_DELETE, GC_DONE: empty
 *   OBJ_PUT, OBJ_DELETE: u8 had_old, [bytes old record]
 *   OBJ_PUT_MANY: u32 n, n x (u8 had_old, [bytes old record])
 */
enum {
    META_CMD_USER_PUT = 1,      /* str access_key, str secret, str owner, str display_name */
    META_CMD_BUCKET_CREATE = 2, /* str bucket, str owner, u64 ctime_ms */
    META_CMD_BUCKET_DELETE = 3, /* str bucket, str owner */
    META_CMD_OBJ_PUT = 4,       /* str bucket, bytes key, bytes record */
    META_CMD_OBJ_DELETE = 5,    /* str bucket, bytes key */
    META_CMD_GC_DONE = 6,       /* oid[16] */
    META_CMD_OBJ_PUT_MANY = 7,  /* str bucket, u32 n, n x (bytes key, bytes record): all or none */
    META_CMD_REPLICA_PUT = 100, /* u64 id, str addr, str raft_addr; result payload empty */
};

void meta_cmd_user_put(cairn_buf_t *cmd, const char *ak, size_t ak_len, const char *secret, size_t secret_len,
                       const char *owner, size_t owner_len, const char *display, size_t display_len);
void meta_cmd_bucket_create(cairn_buf_t *cmd, const char *bucket, size_t bucket_len, const char *owner,
                            size_t owner_len, int64_t ctime_ms);
void meta_cmd_bucket_delete(cairn_buf_t *cmd, const char *bucket, size_t bucket_len, const char *owner,
                            size_t owner_len);
void meta_cmd_obj_put(cairn_buf_t *cmd, const char *bucket, size_t bucket_len, const uint8_t *key, size_t key_len,
                      const uint8_t *rec, size_t rec_len);
/* items: n x (bytes key, bytes record), already encoded (the request's own bytes) */
void meta_cmd_obj_put_many(cairn_buf_t *cmd, const char *bucket, size_t bucket_len, uint32_t n, const uint8_t *items,
                           size_t items_len);
void meta_cmd_obj_delete(cairn_buf_t *cmd, const char *bucket, size_t bucket_len, const uint8_t *key,
                         size_t key_len);
void meta_cmd_gc_done(cairn_buf_t *cmd, const uint8_t oid[16]);
void meta_cmd_replica_put(cairn_buf_t *cmd, uint64_t id, const char *addr, const char *raft_addr);

/* ---- reads ----
 * Each appends the response body of the matching opcode (meta.h) to out and
 * returns 0, a cairn error (out then unchanged), or a system error. */

/* str secret, str owner, str display name; CAIRN_ENOSUCHUSER. */
int meta_fsm_user_get(meta_fsm_t *f, const char *ak, size_t ak_len, cairn_buf_t *out);
/* Bucket record; CAIRN_EBUCKET. */
int meta_fsm_bucket_head(meta_fsm_t *f, const char *bucket, size_t bucket_len, cairn_buf_t *out);
/* u32 n, n x bucket record, sorted by name. O(all buckets). */
int meta_fsm_bucket_list(meta_fsm_t *f, const char *owner, size_t owner_len, cairn_buf_t *out);
/* bytes record; CAIRN_EBUCKET, CAIRN_ENOTFOUND, CAIRN_EINVAL (bad name or key length). */
int meta_fsm_obj_get(meta_fsm_t *f, const char *bucket, size_t bucket_len, const uint8_t *key, size_t key_len,
                     cairn_buf_t *out);
/* ListObjectsV2 page (encoding in meta.h); one read transaction, one seek
 * per CommonPrefix. CAIRN_EBUCKET, CAIRN_EINVAL (prefix, delimiter or
 * start_after above CAIRN_MAX_KEY_LEN). max_keys above META_FSM_MAX_LIST is
 * clamped. */
int meta_fsm_obj_list(meta_fsm_t *f, const cairn_meta_list_req_t *q, cairn_buf_t *out);
/* GC_LIST response (meta.h): entries with oid > after, at most max (clamped). */
int meta_fsm_gc_list(meta_fsm_t *f, const uint8_t after[16], uint32_t max, cairn_buf_t *out);


/* The addresses a REPLICA_PUT stored for replica id; CAIRN_ENOTFOUND. */
int meta_fsm_replica_get(meta_fsm_t *f, uint64_t id, char addr[128], char raft_addr[128]);

/* ---- snapshots ----
 * meta_fsm_copy writes a compacted copy of the database (an LMDB data file)
 * to fd, from its own read transaction: it runs concurrently with apply and
 * reads, on any thread, in O(1) memory. The copy's state is at least the
 * one applied when the call began.
 *
 * meta_fsm_image_applied reads the applied index of such a copy at path;
 * CAIRN_ECORRUPT if it is not one.
 *
 * meta_fsm_replace makes the copy at path the database (rename over
 * data.mdb, directory fsync, reopen): it waits for running calls and holds
 * off new ones meanwhile. The caller must not run apply concurrently. If the
 * database cannot be reopened, f acts as shut down (CAIRN_EUNAVAIL) and the
 * error is returned. */
int meta_fsm_copy(meta_fsm_t *f, int fd);
int meta_fsm_image_applied(const char *path, uint64_t *applied);
int meta_fsm_replace(meta_fsm_t *f, const char *path);

#endif
