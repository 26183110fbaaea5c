/*
 * fsm_mpu_test.c — multipart uploads in the state machine: create, parts
 * (including a superseded part), every Complete error, the committed record
 * and its ETag, parts left out and aborted parts on the garbage list,
 * conditional Complete and conditional PUT, listings, and a bucket held by an
 * upload.
 */
#include <openssl/evp.h>

#include "cairn/err.h"
#include "cairn/meta.h"
#include "cairn/meta_mpu.h"
#include "fsm.h"
#include "fsm_mpu.h"
#define FX_TMPDIR "/tmp/cairn-fsm-mpu-test.XXXXXX"
#include "fsm_fixture.h"

#define MiB (1u << 20)

static void mkid(uint8_t id[16], int seed)
{
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(seed * 31 + i);
}

static int create(fx_t *x, const char *b, const uint8_t id[16], const char *key, int64_t t)
{
    cairn_buf_t rec;
    cairn_buf_init(&rec);
    cairn_buf_t um;
    cairn_buf_init(&um);
    cairn_obj_meta_add(&um, "color", 5, "blue", 4);
    cairn_mpu_rec_t u = {.key = key, .key_len = strlen(key), .owner = "owner", .owner_len = 5, .initiated_ms = t,
                         .content_type = "text/plain", .content_type_len = 10, .user_meta = um.base,
                         .user_meta_len = um.len};
    cairn_mpu_rec_encode(&u, &rec);
    cairn_buf_put_str(&x->body, b);
    cairn_buf_append(&x->body, id, 16);
    cairn_buf_put_bytes(&x->body, rec.base, rec.len);
    cairn_buf_dispose(&rec);
    cairn_buf_dispose(&um);
    return run_body(x, META_CMD_MPU_CREATE);
}

/* The etag of part data "seed": md5 hex of the seed string. */
static void part_etag(int seed, char out[33])
{
    char s[16];
    uint8_t md[16];
    snprintf(s, sizeof s, "p%d", seed);
    EVP_Digest(s, strlen(s), md, NULL, EVP_md5(), NULL);
    cairn_hex(md, 16, out);
}

static void part_rec(int seed, uint64_t size, cairn_buf_t *out)
{
    cairn_obj_rec_t r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 16; i++)
        r.oid[i] = (uint8_t)(seed + 7 * i);
    r.size = size;
    r.mtime_ms = 1700000000000 + seed;
    part_etag(seed, r.etag);
    r.k = 4;
    r.m = 2;
    r.block_size = 65536;
    for (int i = 0; i < 6; i++)
        r.nodes[i] = (uint32_t)(i + 1);
    r.content_type = "";
    cairn_obj_rec_encode(&r, out);
}

/* Put part `number` with data seed; returns status, *had_old. */
static int part_put(fx_t *x, const char *b, const uint8_t id[16], uint32_t number, int seed, uint64_t size,
                    int *had_old)
{
    cairn_buf_t rec;
    cairn_buf_init(&rec);
    part_rec(seed, size, &rec);
    cairn_buf_put_str(&x->body, b);
    cairn_buf_append(&x->body, id, 16);
    cairn_buf_put_u32(&x->body, number);
    cairn_buf_put_bytes(&x->body, rec.base, rec.len);
    cairn_buf_dispose(&rec);
    int st = run_body(x, META_CMD_MPU_PART_PUT);
    if (st == 0) {
        cairn_dec_t d = result_dec(x);
        *had_old = cairn_dec_u8(&d);
    }
    return st;
}

static int complete(fx_t *x, const char *b, const uint8_t id[16], const char *key, const uint32_t *nums,
                    const int *seeds, size_t n, int cond, const char *cond_etag)
{
    char etags[16][33];
    cairn_mpu_sel_t sel[16];
    for (size_t i = 0; i < n; i++) {
        part_etag(seeds[i], etags[i]);
        sel[i] = (cairn_mpu_sel_t){nums[i], etags[i], 32};
    }
    cairn_mpu_complete_req_t q = {.key = key, .key_len = strlen(key), .mtime_ms = 1700000001000,
                                  .min_part_size = 5 * MiB, .cond = cond, .cond_etag = cond_etag,
                                  .cond_etag_len = cond_etag ? strlen(cond_etag) : 0, .sel = sel, .nsel = n};
    memset(q.oid, 0xA0 + seeds[0], 16); /* a fresh version id per distinct completion */
    cairn_mpu_complete_req_encode(b, id, &q, &x->body);
    return run_body(x, META_CMD_MPU_COMPLETE);
}

static size_t gc_count(fx_t *x)
{
    uint8_t after[16] = {0};
    cairn_buf_reset(&x->out);
    assert_int_equal(meta_fsm_gc_list(x->f, after, 1000, &x->out), 0);
    return cairn_le32_get(x->out.base);
}

static int mpu_get(fx_t *x, const char *b, const uint8_t id[16])
{
    cairn_buf_t q;
    cairn_buf_init(&q);
    cairn_buf_put_str(&q, b);
    cairn_buf_append(&q, id, 16);
    cairn_buf_reset(&x->out);
    int rc = meta_fsm_mpu_get(x->f, q.base, q.len, &x->out);
    cairn_buf_dispose(&q);
    return rc;
}

static void test_upload_complete(void **state)
{
    fx_t *x = *state;
    uint8_t id[16], other[16];
    int had_old = -1;
    mkid(id, 1);
    mkid(other, 2);
    bucket(x, "b");
    assert_int_equal(create(x, "nob", id, "k", 1), CAIRN_EBUCKET);
    assert_int_equal(create(x, "b", id, "k", 1), 0);
    assert_int_equal(create(x, "b", id, "k", 1), CAIRN_EEXIST);
    assert_int_equal(mpu_get(x, "b", id), 0);
    assert_int_equal(mpu_get(x, "b", other), CAIRN_MPU_ENOUPLOAD);
    assert_int_equal(mpu_get(x, "nob", id), CAIRN_EBUCKET);

    assert_int_equal(part_put(x, "b", other, 1, 1, 5 * MiB, &had_old), CAIRN_MPU_ENOUPLOAD);
    assert_int_equal(part_put(x, "b", id, 0, 1, 5 * MiB, &had_old), CAIRN_EINVAL);
    assert_int_equal(part_put(x, "b", id, 10001, 1, 5 * MiB, &had_old), CAIRN_EINVAL);
    assert_int_equal(part_put(x, "b", id, 1, 1, 5 * MiB, &had_old), 0);
    assert_int_equal(had_old, 0);
    assert_int_equal(part_put(x, "b", id, 2, 2, 6 * MiB, &had_old), 0);
    /* part 2 again, other data: the first one is superseded and collected */
    assert_int_equal(part_put(x, "b", id, 2, 22, 6 * MiB, &had_old), 0);
    assert_int_equal(had_old, 1);
    assert_int_equal(gc_count(x), 1);
    /* the same part committed again (a retry): nothing to collect */
    assert_int_equal(part_put(x, "b", id, 2, 22, 6 * MiB, &had_old), 0);
    assert_int_equal(had_old, 0);
    assert_int_equal(part_put(x, "b", id, 3, 3, 1024, &had_old), 0);
    assert_int_equal(part_put(x, "b", id, 4, 4, 10, &had_old), 0);

    /* errors, each leaving the upload intact */
    uint32_t n21[] = {2, 1};
    int s21[] = {22, 1};
    assert_int_equal(complete(x, "b", id, "k", n21, s21, 2, 0, NULL), CAIRN_MPU_EORDER);
    uint32_t n15[] = {1, 5};
    int s15[] = {1, 5};
    assert_int_equal(complete(x, "b", id, "k", n15, s15, 2, 0, NULL), CAIRN_MPU_EPART);
    uint32_t n12[] = {1, 2};
    int s12old[] = {1, 2}; /* part 2's superseded ETag */
    assert_int_equal(complete(x, "b", id, "k", n12, s12old, 2, 0, NULL), CAIRN_MPU_EPART);
    uint32_t n34[] = {3, 4};
    int s34[] = {3, 4};
    assert_int_equal(complete(x, "b", id, "k", n34, s34, 2, 0, NULL), CAIRN_MPU_ESMALL);
    uint32_t n13[] = {1, 3};
    int s13[] = {1, 3};
    assert_int_equal(complete(x, "b", id, "other-key", n13, s13, 2, 0, NULL), CAIRN_MPU_ENOUPLOAD);
    assert_int_equal(complete(x, "b", id, "k", n13, s13, 0, 0, NULL), CAIRN_EINVAL);
    assert_int_equal(complete(x, "b", id, "k", n13, s13, 2, CAIRN_MPU_COND_IF_MATCH, "abc"), CAIRN_MPU_ENOKEY);
    assert_int_equal(mpu_get(x, "b", id), 0);

    /* success: parts 1 and 3; 2 and 4 go to the garbage list */
    assert_int_equal(complete(x, "b", id, "k", n13, s13, 2, CAIRN_MPU_COND_IF_NONE_MATCH, NULL), 0);
    cairn_dec_t d = result_dec(x);
    const uint8_t *p;
    size_t len;
    cairn_dec_bytes(&d, &p, &len);
    cairn_obj_rec_t r;
    assert_int_equal(cairn_obj_rec_decode(p, len, &r), 0);
    assert_int_equal(r.size, 5 * MiB + 1024);
    assert_int_equal(r.nparts, 2);
    assert_int_equal(r.k, 0);
    assert_memory_equal(r.content_type, "text/plain", 10);
    assert_int_equal(r.user_meta_len, 2 + 5 + 2 + 4);
    /* ETag: md5 of the binary part md5s, "-2" */
    char e1[33], e3[33];
    uint8_t bins[32], sum[16];
    char want[40];
    part_etag(1, e1);
    part_etag(3, e3);
    cairn_unhex(e1, 16, bins);
    cairn_unhex(e3, 16, bins + 16);
    EVP_Digest(bins, 32, sum, NULL, EVP_md5(), NULL);
    cairn_hex(sum, 16, want);
    strcat(want, "-2");
    assert_string_equal(r.etag, want);
    size_t off = 0;
    cairn_obj_part_t part;
    assert_int_equal(cairn_obj_part_next(r.parts, r.parts_len, &off, &part), 1);
    assert_int_equal(part.number, 1);
    assert_int_equal(part.size, 5 * MiB);
    assert_int_equal(part.k, 4);
    assert_int_equal(part.nodes[5], 6);
    assert_int_equal(cairn_obj_part_next(r.parts, r.parts_len, &off, &part), 1);
    assert_int_equal(part.number, 3);
    assert_int_equal(cairn_obj_part_next(r.parts, r.parts_len, &off, &part), 0);
    assert_int_equal(cairn_dec_u8(&d), 0); /* no old version */
    assert_int_equal(cairn_dec_u32(&d), 2); /* unused parts */
    assert_int_equal(gc_count(x), 3);
    assert_int_equal(mpu_get(x, "b", id), CAIRN_MPU_ENOUPLOAD);

    /* the object reads back */
    cairn_buf_reset(&x->out);
    assert_int_equal(meta_fsm_obj_get(x->f, "b", 1, (const uint8_t *)"k", 1, &x->out), 0);

    /* conditional completes against the existing key */
    assert_int_equal(create(x, "b", other, "k", 2), 0);
    int had;
    assert_int_equal(part_put(x, "b", other, 1, 7, 10, &had), 0);
    uint32_t n1[] = {1};
    int s7[] = {7};
    assert_int_equal(complete(x, "b", other, "k", n1, s7, 1, CAIRN_MPU_COND_IF_NONE_MATCH, NULL), CAIRN_MPU_EPRECOND);
    assert_int_equal(complete(x, "b", other, "k", n1, s7, 1, CAIRN_MPU_COND_IF_MATCH, "0123"), CAIRN_MPU_EPRECOND);
    assert_int_equal(complete(x, "b", other, "k", n1, s7, 1, CAIRN_MPU_COND_IF_MATCH, want), 0);
    d = result_dec(x);
    cairn_dec_bytes(&d, &p, &len);
    assert_int_equal(cairn_dec_u8(&d), 1); /* the first multipart version is superseded */
    assert_int_equal(gc_count(x), 4);

    /* gc_done_many clears entries, idempotently */
    uint8_t after[16] = {0};
    cairn_buf_reset(&x->out);
    assert_int_equal(meta_fsm_gc_list(x->f, after, 1000, &x->out), 0);
    cairn_dec_t g;
    cairn_dec_init(&g, x->out.base, x->out.len);
    uint32_t ng = cairn_dec_u32(&g);
    cairn_buf_put_u32(&x->body, ng + 1);
    for (uint32_t i = 0; i < ng; i++) {
        uint8_t oid[16];
        cairn_dec_raw(&g, oid, 16);
        cairn_dec_bytes(&g, &p, &len);
        cairn_buf_append(&x->body, oid, 16);
    }
    uint8_t missing[16] = {9};
    cairn_buf_append(&x->body, missing, 16);
    assert_int_equal(run_body(x, META_CMD_GC_DONE_MANY), 0);
    assert_int_equal(gc_count(x), 0);
}

static void test_abort_and_bucket(void **state)
{
    fx_t *x = *state;
    uint8_t id[16];
    int had;
    mkid(id, 3);
    bucket(x, "c");
    assert_int_equal(create(x, "c", id, "big", 5), 0);
    assert_int_equal(part_put(x, "c", id, 1, 1, 5 * MiB, &had), 0);
    assert_int_equal(part_put(x, "c", id, 7, 2, 5 * MiB, &had), 0);
    /* an upload keeps its bucket */
    meta_cmd_bucket_delete(&x->cmd, "c", 1, "owner", 5);
    assert_int_equal(run(x), CAIRN_ENOTEMPTY);

    /* list parts: paging by part number */
    cairn_buf_t q;
    cairn_buf_init(&q);
    cairn_buf_put_str(&q, "c");
    cairn_buf_append(&q, id, 16);
    cairn_buf_put_u32(&q, 0);
    cairn_buf_put_u32(&q, 1);
    cairn_buf_reset(&x->out);
    assert_int_equal(meta_fsm_mpu_list_parts(x->f, q.base, q.len, &x->out), 0);
    cairn_dec_t d;
    const uint8_t *p;
    size_t len;
    cairn_dec_init(&d, x->out.base, x->out.len);
    cairn_dec_bytes(&d, &p, &len);
    assert_int_equal(cairn_dec_u32(&d), 1);
    assert_int_equal(cairn_dec_u32(&d), 1);
    cairn_dec_bytes(&d, &p, &len);
    assert_int_equal(cairn_dec_u8(&d), 1); /* truncated */
    cairn_le32_put(q.base + q.len - 8, 1); /* after part 1 */
    cairn_le32_put(q.base + q.len - 4, 10);
    cairn_buf_reset(&x->out);
    assert_int_equal(meta_fsm_mpu_list_parts(x->f, q.base, q.len, &x->out), 0);
    cairn_dec_init(&d, x->out.base, x->out.len);
    cairn_dec_bytes(&d, &p, &len);
    assert_int_equal(cairn_dec_u32(&d), 1);
    assert_int_equal(cairn_dec_u32(&d), 7);
    cairn_dec_bytes(&d, &p, &len);
    assert_int_equal(cairn_dec_u8(&d), 0);
    cairn_buf_dispose(&q);

    /* abort returns both parts and moves them to the garbage list */
    cairn_buf_put_str(&x->body, "c");
    cairn_buf_append(&x->body, id, 16);
    assert_int_equal(run_body(x, META_CMD_MPU_ABORT), 0);
    d = result_dec(x);
    assert_int_equal(cairn_dec_u32(&d), 2);
    assert_int_equal(gc_count(x), 2);
    cairn_buf_put_str(&x->body, "c");
    cairn_buf_append(&x->body, id, 16);
    assert_int_equal(run_body(x, META_CMD_MPU_ABORT), CAIRN_MPU_ENOUPLOAD);
    meta_cmd_bucket_delete(&x->cmd, "c", 1, "owner", 5);
    assert_int_equal(run(x), 0);
}

/* List uploads and return "key,key,|prefix,prefix|t" for checking. */
static void list(fx_t *x, const char *prefix, const char *delim, const char *km, const uint8_t *idm, uint32_t max,
                 char *out, size_t outsz)
{
    cairn_mpu_list_req_t q = {.bucket = "l", .prefix = prefix, .prefix_len = strlen(prefix), .delimiter = delim,
                              .delimiter_len = strlen(delim), .key_marker = km, .key_marker_len = strlen(km),
                              .has_id_marker = idm != NULL, .max = max};
    if (idm)
        memcpy(q.id_marker, idm, 16);
    cairn_buf_reset(&x->out);
    assert_int_equal(meta_fsm_mpu_list(x->f, &q, &x->out), 0);
    cairn_dec_t d;
    cairn_dec_init(&d, x->out.base, x->out.len);
    size_t o = 0;
    out[0] = '\0';
    uint32_t n = cairn_dec_u32(&d);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t id[16];
        const uint8_t *p;
        size_t len;
        cairn_mpu_rec_t u;
        cairn_dec_raw(&d, id, 16);
        cairn_dec_bytes(&d, &p, &len);
        assert_int_equal(cairn_mpu_rec_decode(p, len, &u), 0);
        o += (size_t)snprintf(out + o, outsz - o, "%.*s/%d,", (int)u.key_len, u.key, id[0]);
    }
    o += (size_t)snprintf(out + o, outsz - o, "|");
    uint32_t np = cairn_dec_u32(&d);
    for (uint32_t i = 0; i < np; i++) {
        const uint8_t *p;
        size_t len;
        cairn_dec_bytes(&d, &p, &len);
        o += (size_t)snprintf(out + o, outsz - o, "%.*s,", (int)len, p);
    }
    snprintf(out + o, outsz - o, "|%d", cairn_dec_u8(&d));
    assert_int_equal(d.err, 0);
    assert_int_equal(cairn_dec_left(&d), 0);
}

static void test_list_uploads(void **state)
{
    fx_t *x = *state;
    bucket(x, "l");
    bucket(x, "lm"); /* a neighbour whose uploads must not show */
    struct {
        const char *key;
        int id;
        int64_t t;
    } ups[] = {{"b", 10, 5}, {"a/1", 20, 1}, {"a/2", 30, 1}, {"b", 40, 3}, {"c", 50, 1}};
    for (size_t i = 0; i < 5; i++) {
        uint8_t id[16];
        memset(id, ups[i].id, 16);
        assert_int_equal(create(x, "l", id, ups[i].key, ups[i].t), 0);
    }
    uint8_t nid[16];
    memset(nid, 99, 16);
    assert_int_equal(create(x, "lm", nid, "a", 1), 0);

    char s[512];
    list(x, "", "", "", NULL, 1000, s, sizeof s);
    assert_string_equal(s, "a/1/20,a/2/30,b/40,b/10,c/50,||0"); /* b: older upload first */
    list(x, "", "/", "", NULL, 1000, s, sizeof s);
    assert_string_equal(s, "b/40,b/10,c/50,|a/,|0");
    list(x, "", "/", "", NULL, 2, s, sizeof s);
    assert_string_equal(s, "b/40,|a/,|1");
    list(x, "", "/", "a/", NULL, 1000, s, sizeof s);
    assert_string_equal(s, "b/40,b/10,c/50,||0");
    list(x, "a/", "", "", NULL, 1000, s, sizeof s);
    assert_string_equal(s, "a/1/20,a/2/30,||0");
    uint8_t m40[16];
    memset(m40, 40, 16);
    list(x, "", "", "b", m40, 1000, s, sizeof s);
    assert_string_equal(s, "b/10,c/50,||0");
    list(x, "", "", "b", NULL, 1000, s, sizeof s);
    assert_string_equal(s, "c/50,||0");
}

/* A conditional OBJ_PUT, decided with the write. */
static int put_if(fx_t *x, const char *key, int seed, int cond, const char *etag)
{
    cairn_buf_t rec;
    cairn_buf_init(&rec);
    part_rec(seed, 10, &rec);
    cairn_buf_put_str(&x->body, "p");
    cairn_buf_put_bytes(&x->body, key, strlen(key));
    cairn_buf_put_bytes(&x->body, rec.base, rec.len);
    cairn_buf_put_u8(&x->body, (uint8_t)cond);
    cairn_buf_put_bytes(&x->body, etag, etag ? strlen(etag) : 0);
    cairn_buf_dispose(&rec);
    return run_body(x, META_CMD_OBJ_PUT_IF);
}

static void test_put_if(void **state)
{
    fx_t *x = *state;
    bucket(x, "p");
    char e1[33], e2[33];
    part_etag(1, e1);
    part_etag(2, e2);
    assert_int_equal(put_if(x, "k", 1, CAIRN_MPU_COND_IF_MATCH, e1), CAIRN_MPU_ENOKEY);
    assert_int_equal(put_if(x, "k", 1, CAIRN_MPU_COND_IF_NONE_MATCH, NULL), 0);
    assert_int_equal(put_if(x, "k", 2, CAIRN_MPU_COND_IF_NONE_MATCH, NULL), CAIRN_MPU_EPRECOND);
    assert_int_equal(put_if(x, "k", 2, CAIRN_MPU_COND_IF_MATCH, e2), CAIRN_MPU_EPRECOND);
    assert_int_equal(put_if(x, "k", 2, CAIRN_MPU_COND_IF_MATCH, e1), 0);
    cairn_dec_t d = result_dec(x);
    assert_int_equal(cairn_dec_u8(&d), 1); /* version 1 superseded */
    assert_int_equal(put_if(x, "k", 3, 9, NULL), CAIRN_EPROTO);
    assert_int_equal(gc_count(x), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_upload_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_and_bucket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_uploads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_if, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
