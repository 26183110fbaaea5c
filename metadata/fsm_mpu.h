/*
 * fsm_mpu.h — multipart uploads in the metadata state machine (fsm_mpu.c):
 * the commands and reads behind the opcodes of cairn/meta_mpu.h.
 *
 * LMDB layout (two more named databases of the fsm environment):
 *   uploads  bucket '\0' id[16]          -> upload record (meta_mpu.h)
 *   parts    id[16] number (u32 BE)      -> part record (cairn_obj_rec_t, etag = MD5 hex)
 * Upload ids are random, so parts need no bucket; every command still
 * checks the upload under (bucket, id), so an id works only in its bucket.
 *
 * Every command is the opcode's request body verbatim behind its type byte
 * (meta_cmd_mpu), so the log holds exactly what the gateway asked; times and
 * ids inside it come from the gateway, and apply stays deterministic.
 * Results are the opcode's response bodies.
 *
 * Caveats
 * - ListMultipartUploads reads every upload of the bucket and sorts them in
 *   memory: O(uploads in the bucket) per page. Fine for the thousands of
 *   concurrent uploads a bucket sees; an index by key would be next.
 * - A bucket with uploads in progress cannot be deleted (BucketNotEmpty):
 *   their parts hold data that nothing else would free.
 */
#ifndef CAIRN_META_FSM_MPU_H
#define CAIRN_META_FSM_MPU_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/buf.h"
#include "cairn/meta_mpu.h"
#include "fsm.h"

enum {
    META_CMD_MPU_CREATE = 32,   /* CAIRN_OP_META_MPU_CREATE body */
    META_CMD_MPU_PART_PUT = 33, /* CAIRN_OP_META_MPU_PART_PUT body */
    META_CMD_MPU_COMPLETE = 34, /* CAIRN_OP_META_MPU_COMPLETE body */
    META_CMD_MPU_ABORT = 35,    /* CAIRN_OP_META_MPU_ABORT body */
    META_CMD_GC_DONE_MANY = 36, /* CAIRN_OP_META_GC_DONE_MANY body */
    META_CMD_OBJ_PUT_IF = 37,   /* CAIRN_OP_META_OBJ_PUT_IF body: a conditional write */
};
#define META_CMD_MPU_FIRST META_CMD_MPU_CREATE
#define META_CMD_MPU_LAST META_CMD_OBJ_PUT_IF

/* Append one padded command: the type byte, then body[0..len). */
void meta_cmd_mpu(cairn_buf_t *cmd, int type, const uint8_t *body, size_t len);

/* Reads; each appends the opcode's response body to out and returns 0, a
 * cairn error (CAIRN_EBUCKET, CAIRN_MPU_ENOUPLOAD, CAIRN_EPROTO for a
 * malformed request; out unchanged), or a system error. */
int meta_fsm_mpu_get(meta_fsm_t *f, const uint8_t *req, size_t len, cairn_buf_t *out);
int meta_fsm_mpu_list_parts(meta_fsm_t *f, const uint8_t *req, size_t len, cairn_buf_t *out);
int meta_fsm_mpu_list(meta_fsm_t *f, const cairn_mpu_list_req_t *q, cairn_buf_t *out);

#endif
