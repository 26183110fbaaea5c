/*
 * fsm_int.h — what fsm.c shares with the files that extend the state
 * machine (fsm_mpu.c). Not for the rest of the service: these work inside
 * transactions and return LMDB or cairn codes as the command handlers of
 * fsm.c do (an internal error abandons the transaction; command-level
 * outcomes go to *status).
 */
#ifndef CAIRN_META_FSM_INT_H
#define CAIRN_META_FSM_INT_H

#include <lmdb.h>

#include "cairn/buf.h"
#include "fsm.h"
#include "fsm_map.h"
#include "fsm_mpu.h"

/* ---- from fsm.c ---- */

/* A command decoded completely: no read past its end, only its zero
 * padding (< 8 bytes) left. */
int meta__cmd_done(const cairn_dec_t *d, size_t total);

enum { META__DB_GC, META__DB_UPLOADS, META__DB_PARTS, META__DB_SYS };
MDB_dbi meta__dbi(meta_fsm_t *f, int which);
/* A read-only transaction under the fsm's shared lock (rd_begin/rd_end of fsm.c). */
int meta__rd_begin(meta_fsm_t *f, MDB_txn **txn);
void meta__rd_end(meta_fsm_t *f, MDB_txn *txn);
/* Map an internal code to the project's errors (logs LMDB failures). */
int meta__err(int rc);
int meta__bucket_exists(meta_fsm_t *f, MDB_txn *txn, const void *b, size_t bl, int *exists);
/* Commit rec as object (bucket, key) exactly as OBJ_PUT does: the previous
 * version goes to the garbage list; appends "u8 had_old, [bytes old]" to res. */
int meta__obj_put(meta_fsm_t *f, MDB_txn *txn, const uint8_t *b, size_t bl, const uint8_t *key, size_t kl,
                  const uint8_t *rec, size_t rl, cairn_buf_t *res, int *status);
/* Copy the current record of (bucket, key) to out; *found = 0 if none. */
int meta__obj_peek(meta_fsm_t *f, MDB_txn *txn, const uint8_t *b, size_t bl, const uint8_t *key, size_t kl,
                   cairn_buf_t *out, int *found);

/* ---- from fsm_mpu.c ---- */

/* Run a META_CMD_MPU_* command (type already read from d). */
int meta__mpu_cmd(meta_fsm_t *f, MDB_txn *txn, int type, cairn_dec_t *d, size_t len, cairn_buf_t *res,
                  int *status);
/* *busy = whether the bucket has uploads in progress. */
int meta__mpu_bucket_busy(meta_fsm_t *f, MDB_txn *txn, const void *b, size_t bl, int *busy);

/* ---- from fsm_map.c ---- */

/* Run a META_CMD_MAP_* command (type already read from d). */
int meta__map_cmd(meta_fsm_t *f, MDB_txn *txn, int type, cairn_dec_t *d, size_t len, cairn_buf_t *res,
                  int *status);

#endif
