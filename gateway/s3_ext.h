/*
 * s3_ext.h — the S3 calls beyond plain objects and buckets, shared by their
 * files:
 *   s3_multipart.c  multipart uploads; reading and deleting multipart objects
 *   s3_chunked.c    request bodies: aws-chunked decoding, x-amz-checksum-*,
 *                   the system headers stored with an object
 *   s3_ext.c        routing of these calls; CopyObject, DeleteObjects,
 *                   conditional GET/HEAD, versioning/ACL/configuration answers
 *   s3_xmlin.c      XML request bodies (expat)
 * Everything here runs on workers, except s3_ext_route (loop thread, while
 * the request is parsed).
 */
#ifndef CAIRN_GW_S3_EXT_H
#define CAIRN_GW_S3_EXT_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/checksum.h"
#include "cairn/meta.h"
#include "cairn/meta_mpu.h"
#include "cairn/uri.h"
#include "gw.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"
#define S3_MAX_XML_BODY (4u << 20) /* Complete with 10,000 parts is about 1 MiB */
#define S3_MAX_SYS_META 4096       /* stored system headers of one object */

/* ---- s3_ext.c ---- */

/* The step for a request served by these files (job->op set), or NULL. */
gw_step_fn s3_ext_route(gw_job_t *job, const cairn_query_param_t *qp, size_t nq);
/* Conditional GET/HEAD (If-Match, If-None-Match, If-Modified-Since,
 * If-Unmodified-Since) against rec: 0 to serve the object, 1 when the
 * answer is set (304 Not Modified, or 412 PreconditionFailed). */
int s3_cond_check(gw_job_t *job, const cairn_obj_rec_t *rec);
/* Response headers from rec's stored system headers; x-amz-checksum-* only
 * when the request asked with x-amz-checksum-mode: ENABLED. */
void s3_sys_headers(gw_job_t *job, const cairn_obj_rec_t *rec);
/* A query parameter decoded into a heap string (*out NULL when absent);
 * -1 on a bad encoding. */
int s3_param(gw_job_t *job, const char *name, char **out, size_t *len);
/* An S3 listing element, URL-encoded when url (encoding-type=url). */
void s3_xml_key(cairn_buf_t *b, const char *tag, const char *s, size_t len, int url);
/* <Owner> (or another tag) with ID and DisplayName. */
void s3_xml_owner(cairn_buf_t *b, const char *tag, const char *id, size_t len);
/* x-amz-copy-source: parse it, fetch the source record into buf (*src
 * views into it), and check the x-amz-copy-source-if-* conditions. *same
 * tells whether the source is the request's own bucket and key. 0, or an
 * S3 error is set and -1 returned. */
int s3_copy_source(gw_worker_t *w, gw_job_t *job, cairn_buf_t *buf, cairn_obj_rec_t *src, int *same);
/* Store bytes [off, off+len) of src as a new fragment set (read into
 * memory, then the ordinary data path); *res as gw_store_put. */
int s3_copy_store(gw_worker_t *w, gw_job_t *job, const cairn_obj_rec_t *src, uint64_t off, uint64_t len,
                  gw_put_result_t *res);
/* A request header by lower-case name, or NULL. */
const cairn_sigv4_header_t *s3_header(gw_job_t *job, const char *name);
/* Remove a superseded version's fragments (parts included), then tell the
 * metadata tier they are gone. Failures are left to garbage collection. */
void s3_drop_version(gw_worker_t *w, gw_job_t *job, const cairn_obj_rec_t *old);

/* ---- s3_chunked.c ---- */

typedef struct {
    int have_md5;
    uint8_t want_md5[16];          /* Content-MD5 */
    int check_sha;                 /* x-amz-content-sha256 is a hex digest of the body */
    cairn_ck_alg_t ck_alg;         /* x-amz-checksum-* verified on the body, NONE if none */
    char ck_value[CAIRN_CK_B64_MAX];
    uint8_t sys[S3_MAX_SYS_META];  /* system headers to store (meta.h pair encoding) */
    size_t sys_len;
    int cond;                      /* conditional write: CAIRN_MPU_COND_* (s3_write_cond) */
    char cond_etag[80];
    size_t cond_etag_len;
} s3_body_t;

/* The write condition of a PUT or Complete: If-None-Match: * or If-Match:
 * "etag" (CAIRN_MPU_COND_*, etag unquoted into etag[80]). 0, or an S3 error
 * is set and -1 returned. */
int s3_write_cond(gw_job_t *job, int *cond, char etag[80], size_t *etag_len);

/* Authenticate a request that carries an object body (PutObject,
 * UploadPart) and make job->body the object's bytes: an aws-chunked body is
 * decoded in place with every chunk signature checked; Content-MD5 is
 * parsed; an x-amz-checksum-* value (header or trailer) is checked against
 * the body; the headers to store are collected in b->sys. 0, or an S3 error
 * is set on the job and -1 returned. */
int s3_body_prepare(gw_worker_t *w, gw_job_t *job, s3_body_t *b);
/* Only the headers to store (s3_body_prepare does this too), for calls
 * without an object body (CreateMultipartUpload, CopyObject with REPLACE).
 * 0, or an S3 error is set and -1 returned. */
int s3_body_stored_headers(gw_job_t *job, s3_body_t *b);
/* x-amz-meta-* of the request into um (meta.h pair encoding); 0, or
 * MetadataTooLarge set and -1 returned. */
int s3_user_meta(gw_job_t *job, cairn_buf_t *um);
/* After the data path hashed the body: NULL, or the S3 error code when
 * Content-MD5 or the signed sha256 do not match. */
const char *s3_body_verify(gw_job_t *job, const s3_body_t *b, const gw_put_result_t *res);

/* ---- s3_multipart.c ---- */

void s3_mpu_step(gw_worker_t *w, gw_job_t *job);
/* The part of job->rec (a multipart record) holding byte job->pos, as a
 * record of its own, and the object offset where it starts. Keeps a cursor
 * in the job, so a sequential read costs O(1) per call. CAIRN_EINVAL past
 * the end. */
int gw_part_locate(gw_job_t *job, cairn_obj_rec_t *part, uint64_t *base);
/* Delete the fragments of every part of a multipart record. 0 when all are gone. */
int gw_store_delete_parts(gw_worker_t *w, uint64_t req_id, const cairn_obj_rec_t *rec);
/* Read bytes [off, off+len) of an object (multipart or not) into out. */
int gw_obj_read(gw_worker_t *w, uint64_t req_id, const cairn_obj_rec_t *rec, uint64_t off, uint64_t len,
                uint8_t *out);
/* Delete the fragments of records now on the garbage list, then report them
 * done in one command. */
void s3_free_recs(gw_worker_t *w, uint64_t req_id, const cairn_obj_rec_t *recs, size_t n);
/* S3 error for a metadata error of a multipart call. */
void s3_mpu_error(gw_job_t *job, int rc);

/* ---- s3_xmlin.c ---- */

/* One child of an item: <Name>text</Name>. text is NUL-terminated (heap, owned by the parse). */
typedef struct {
    const char *name;
    const char *text;
    size_t len;
} s3_xml_field_t;

/* Called for each child element of the root: its name, its own text (for a
 * leaf like <Quiet>true</Quiet>), and its leaf children. Return 0 to go on,
 * nonzero to stop (returned by s3_xml_items). */
typedef int (*s3_xml_item_fn)(void *arg, const char *name, const char *text, size_t tlen, const s3_xml_field_t *f,
                              size_t nf);

/* Parse an XML body whose root element is `root` (namespace prefixes are
 * ignored). Returns 0, -1 if the XML is malformed, has another root, nests
 * deeper than root/item/field or exceeds S3_MAX_XML_BODY, or the
 * callback's nonzero value. */
int s3_xml_items(const char *body, size_t len, const char *root, s3_xml_item_fn fn, void *arg);

#define S3_DELETE_MAX 1000 /* keys in one DeleteObjects */

/* A DeleteObjects body: each <Object> as (u32 len, key, u8 bad_version)
 * in keys (bad_version: a VersionId other than "null"). */
typedef struct {
    cairn_buf_t keys;
    size_t n;
    int quiet;
    int too_many; /* more than S3_DELETE_MAX objects */
    int bad;      /* an <Object> without <Key> */
} s3_delete_in_t;
/* 0, or -1 (malformed, no object, too many): dispose *d either way. */
int s3_xml_delete_parse(const char *body, size_t len, s3_delete_in_t *d);
void s3_delete_in_dispose(s3_delete_in_t *d);

/* A CompleteMultipartUpload body: the parts in document order; each
 * sel[i].etag (unquoted, not NUL-terminated) points into etags. */
typedef struct {
    cairn_mpu_sel_t *sel;
    size_t n, cap;
    cairn_buf_t etags; /* the ETags, back to back */
    size_t *eoff;
    int bad_number;
} s3_parts_in_t;
/* 0; -2 when a PartNumber is not an integer in 1..10000; -1 when malformed
 * or without parts. Dispose *pi either way. */
int s3_xml_complete_parse(const char *body, size_t len, s3_parts_in_t *pi);
void s3_parts_in_dispose(s3_parts_in_t *pi);

#endif
