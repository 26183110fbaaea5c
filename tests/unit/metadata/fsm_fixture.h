/*
 * fsm_fixture.h — the cmocka fixture shared by the state-machine tests
 * (fsm_test.c, fsm_map_test.c, fsm_mpu_test.c): a meta_fsm_t on a scratch
 * LMDB directory, the command / result / scratch buffers, and the helpers
 * that apply a command at the next log index and read its answer.
 *
 * Before including it, a test defines
 *   FX_TMPDIR      the mkdtemp() template of its scratch directory;
 *   FX_RUN_CHECKS  (optional) to have run() also check that every command is
 *                  padded to 8 bytes and that the applied index advances.
 *
 * Everything here is static and marked unused, since no test uses all of it;
 * each test includes the header once, from its single translation unit.
 */
#ifndef FSM_FIXTURE_H
#define FSM_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/buf.h"
#include "cairn/meta.h"
#include "fsm.h"
#include "fsm_mpu.h"

#ifndef FX_TMPDIR
#error "define FX_TMPDIR (a mkdtemp template) before including fsm_fixture.h"
#endif

typedef struct {
    char dir[64];
    meta_fsm_t *f;
    unsigned flags;
    uint64_t idx; /* the last index applied */
    cairn_buf_t body, cmd, res, out;
} fx_t;

#define K(s) (const uint8_t *)(s), strlen(s)

/* (Re)open x->dir with x->flags; the next run() applies after what is there. */
__attribute__((unused)) static void fx_open(fx_t *x)
{
    assert_int_equal(meta_fsm_create(x->dir, x->flags, &x->f), 0);
    x->idx = meta_fsm_applied(x->f);
}

__attribute__((unused)) static int setup_flags(void **state, unsigned flags)
{
    fx_t *x = calloc(1, sizeof *x);
    snprintf(x->dir, sizeof x->dir, "%s", FX_TMPDIR);
    if (mkdtemp(x->dir) == NULL)
        return -1;
    x->flags = flags;
    cairn_buf_init(&x->body);
    cairn_buf_init(&x->cmd);
    cairn_buf_init(&x->res);
    cairn_buf_init(&x->out);
    fx_open(x);
    *state = x;
    return 0;
}

__attribute__((unused)) static int setup(void **state) { return setup_flags(state, META_FSM_NOSYNC); }
__attribute__((unused)) static int setup_sync(void **state) { return setup_flags(state, 0); }
__attribute__((unused)) static int setup_probe(void **state)
{
    return setup_flags(state, META_FSM_NOSYNC | META_FSM_TEST_HOME);
}

__attribute__((unused)) static int teardown(void **state)
{
    fx_t *x = *state;
    meta_fsm_destroy(x->f);
    char p[128];
    snprintf(p, sizeof p, "%s/data.mdb", x->dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", x->dir);
    unlink(p);
    rmdir(x->dir);
    cairn_buf_dispose(&x->body);
    cairn_buf_dispose(&x->cmd);
    cairn_buf_dispose(&x->res);
    cairn_buf_dispose(&x->out);
    free(x);
    return 0;
}

/* Apply x->cmd at the next index; returns the command's status. The payload
 * is left in x->res (after the 4 status bytes). */
__attribute__((unused)) static int run(fx_t *x)
{
#ifdef FX_RUN_CHECKS
    assert_int_equal(x->cmd.len % 8, 0);
#endif
    assert_int_equal(meta_fsm_apply(x->f, ++x->idx, x->cmd.base, x->cmd.len, &x->res), 0);
#ifdef FX_RUN_CHECKS
    assert_int_equal(meta_fsm_applied(x->f), x->idx);
#endif
    cairn_buf_reset(&x->cmd);
    const uint8_t *p;
    size_t n;
    return meta_fsm_result(&x->res, &p, &n);
}

/* Wrap x->body as a command of this type (as rpc_map.c and rpc_mpu.c do)
 * and run it. */
__attribute__((unused)) static int run_body(fx_t *x, int type)
{
    meta_cmd_mpu(&x->cmd, type, x->body.base, x->body.len);
    cairn_buf_reset(&x->body);
    return run(x);
}

/* The payload of the last result, valid until x->res changes. */
__attribute__((unused)) static const uint8_t *payload(fx_t *x, size_t *n)
{
    const uint8_t *p;
    meta_fsm_result(&x->res, &p, n);
    return p;
}

/* A decoder over the payload of the last result. */
__attribute__((unused)) static cairn_dec_t result_dec(fx_t *x)
{
    cairn_dec_t d;
    size_t n;
    const uint8_t *p = payload(x, &n);
    cairn_dec_init(&d, p, n);
    return d;
}

__attribute__((unused)) static int bucket_create(fx_t *x, const char *b, const char *owner)
{
    meta_cmd_bucket_create(&x->cmd, b, strlen(b), owner, strlen(owner), 1700000000000);
    return run(x);
}

/* Create bucket b, owned by "owner"; it must succeed. */
__attribute__((unused)) static void bucket(fx_t *x, const char *b)
{
    assert_int_equal(bucket_create(x, b, "owner"), 0);
}

#endif
