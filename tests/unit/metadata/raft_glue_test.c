/*
 * raft_glue_test.c — three replicas of the replicated log in one process,
 * talking over the authenticated transport on loopback: election,
 * replication to every state machine, redirects, reads behind a barrier,
 * a leader that stops (and hands over), a replica that restarts and catches
 * up, membership changes, and connections to the Raft port that do not
 * carry a valid handshake.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/cfg.h"
#include "cairn/err.h"
#include "cairn/meta.h"
#include "cairn/wire.h"
#include "fsm.h"
#include "raft_glue.h"

#define N 3

typedef struct {
    char root[64];
    char dir[N][96], raft_dir[N][112];
    cairn_cfg_t cfg;
    cairn_wire_key_t *key;
    meta_fsm_t *fsm[N];
    meta_log_t *log[N];
} fx_t;

static unsigned free_port(void)
{
    int fd = cairn_listen("127.0.0.1:0", 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void start(fx_t *x, int i, int join)
{
    assert_int_equal(meta_fsm_create(x->dir[i], META_FSM_NOSYNC, &x->fsm[i]), 0);
    meta_log_opts_t o = {.id = (uint64_t)i + 1, .raft_addr = x->cfg.metas[i].raft_addr, .dir = x->raft_dir[i],
                         .join = join, .cfg = &x->cfg, .key = x->key};
    assert_int_equal(meta_log_create(x->fsm[i], &o, &x->log[i]), 0);
}

static void stop(fx_t *x, int i)
{
    meta_log_destroy(x->log[i]);
    meta_fsm_destroy(x->fsm[i]);
    x->log[i] = NULL;
    x->fsm[i] = NULL;
}

/* The index of the replica every running replica agrees leads; waits. */
static int leader(fx_t *x)
{
    for (int t = 0; t < 1000; t++) {
        int lead = -1, agree = 1;
        for (int i = 0; i < N; i++) {
            if (!x->log[i])
                continue;
            uint64_t id;
            char a[128];
            meta_log_leader(x->log[i], &id, a);
            if (id == 0 || (lead >= 0 && (int)id - 1 != lead))
                agree = 0;
            else if (id)
                lead = (int)id - 1;
        }
        if (agree && lead >= 0 && x->log[lead]) {
            cairn_meta_status_t st;
            if (meta_log_status(x->log[lead], &st) == 0 && st.role == CAIRN_META_ROLE_LEADER)
                return lead;
        }
        usleep(10000);
    }
    fail_msg("no agreed leader after 10 s");
    return -1;
}

/* Wait until every running replica's state machine reached `index`. */
static void wait_applied(fx_t *x, uint64_t index)
{
    for (int t = 0; t < 1000; t++) {
        int ok = 1;
        for (int i = 0; i < N; i++)
            if (x->fsm[i] && meta_fsm_applied(x->fsm[i]) < index)
                ok = 0;
        if (ok)
            return;
        usleep(10000);
    }
    fail_msg("replicas did not apply index %llu within 10 s", (unsigned long long)index);
}

static int setup(void **state)
{
    fx_t *x = calloc(1, sizeof *x);
    snprintf(x->root, sizeof x->root, "/tmp/cairn-raft-test.XXXXXX");
    if (mkdtemp(x->root) == NULL)
        return -1;
    const char *secret = "0123456789abcdef-raft-test";
    assert_int_equal(cairn_wire_key_create(secret, strlen(secret), &x->key), 0);
    x->cfg.nmetas = N;
    x->cfg.meta_election_ms = 200;
    x->cfg.meta_heartbeat_ms = 40;
    x->cfg.meta_snapshot_threshold = 32;
    x->cfg.meta_snapshot_trailing = 4;
    for (int i = 0; i < N; i++) {
        snprintf(x->dir[i], sizeof x->dir[i], "%s/r%d", x->root, i + 1);
        snprintf(x->raft_dir[i], sizeof x->raft_dir[i], "%s/raft", x->dir[i]);
        assert_int_equal(mkdir(x->dir[i], 0700), 0);
        x->cfg.metas[i].id = (uint32_t)i + 1;
        snprintf(x->cfg.metas[i].addr, sizeof x->cfg.metas[i].addr, "10.9.9.%d:7000", i + 1);
        snprintf(x->cfg.metas[i].raft_addr, sizeof x->cfg.metas[i].raft_addr, "127.0.0.1:%u", free_port());
    }
    for (int i = 0; i < N; i++)
        start(x, i, 0);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx_t *x = *state;
    for (int i = 0; i < N; i++)
        if (x->log[i])
            stop(x, i);
    cairn_wire_key_destroy(x->key);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", x->root);
    assert_int_equal(system(cmd), 0);
    free(x);
    return 0;
}

/* Create bucket name on replica i; returns the log's answer, and in *status
 * the command's. */
static int create_bucket(fx_t *x, int i, const char *name, int *status)
{
    cairn_buf_t cmd, res;
    cairn_buf_init(&cmd);
    cairn_buf_init(&res);
    meta_cmd_bucket_create(&cmd, name, strlen(name), "o", 1, 1700000000000);
    int rc = meta_log_submit(x->log[i], cmd.base, cmd.len, &res);
    const uint8_t *p;
    size_t n;
    if (rc == 0)
        *status = meta_fsm_result(&res, &p, &n);
    cairn_buf_dispose(&cmd);
    cairn_buf_dispose(&res);
    return rc;
}

static int has_bucket(fx_t *x, int i, const char *name)
{
    cairn_buf_t out;
    cairn_buf_init(&out);
    int rc = meta_fsm_bucket_head(x->fsm[i], name, strlen(name), &out);
    cairn_buf_dispose(&out);
    return rc == 0;
}

static void test_replicate(void **state)
{
    fx_t *x = *state;
    int l = leader(x), f = (l + 1) % N, st;
    assert_int_equal(create_bucket(x, l, "one", &st), 0);
    assert_int_equal(st, 0);
    assert_int_equal(create_bucket(x, l, "one", &st), 0);
    assert_int_equal(st, CAIRN_EOWNED);
    assert_int_equal(create_bucket(x, f, "two", &st), CAIRN_ENOTLEADER);
    assert_int_equal(meta_log_barrier(x->log[f]), CAIRN_ENOTLEADER);
    assert_int_equal(meta_log_barrier(x->log[l]), 0);
    uint64_t id;
    char a[128];
    meta_log_leader(x->log[f], &id, a);
    assert_int_equal(id, (uint64_t)l + 1);
    assert_string_equal(a, x->cfg.metas[l].addr); /* the service address, for redirects */
    /* enough entries for several snapshots on every replica */
    for (int i = 0; i < 100; i++) {
        char b[32];
        snprintf(b, sizeof b, "bulk-%03d", i);
        assert_int_equal(create_bucket(x, l, b, &st), 0);
        assert_int_equal(st, 0);
    }
    wait_applied(x, meta_fsm_applied(x->fsm[l]));
    for (int i = 0; i < N; i++) {
        assert_true(has_bucket(x, i, "one"));
        assert_true(has_bucket(x, i, "bulk-099"));
        assert_false(has_bucket(x, i, "two"));
    }
    cairn_meta_status_t s;
    assert_int_equal(meta_log_status(x->log[f], &s), 0);
    assert_int_equal(s.role, CAIRN_META_ROLE_FOLLOWER);
    assert_int_equal(s.nmembers, N);
    assert_true(s.snapshot_index > 0);
}

/* Open a TCP connection to a replica's Raft port, send bytes, and report
 * whether the replica closed it within 2 s (1) or kept it open (0). */
static int raft_port_closes(fx_t *x, int i, const void *p, size_t n)
{
    const char *ra = x->cfg.metas[i].raft_addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(strrchr(ra, ':') + 1))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    if (n)
        assert_int_equal(write(fd, p, n), (ssize_t)n);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int closed = 0;
    if (poll(&pfd, 1, 2000) == 1) {
        char b[16];
        closed = read(fd, b, sizeof b) <= 0;
    }
    close(fd);
    return closed;
}

static void test_transport_refuses(void **state)
{
    fx_t *x = *state;
    int l = leader(x), st;
    uint8_t junk[192];
    memset(junk, 0x5a, sizeof junk);
    assert_true(raft_port_closes(x, 0, junk, sizeof junk));
    /* a well-formed handshake MAC'd with another key */
    cairn_wire_key_t *other;
    assert_int_equal(cairn_wire_key_create("another-secret-entirely", 23, &other), 0);
    uint8_t hs[192] = {0};
    cairn_le32_put(hs, 0x54465243u);
    cairn_le32_put(hs + 4, 1);
    cairn_le64_put(hs + 8, 2);
    int64_t now = cairn_now_ms(); /* any clock: the MAC fails first */
    cairn_le64_put(hs + 16, (uint64_t)now);
    hs[24] = 14;
    memcpy(hs + 26, "127.0.0.1:9999", 14);
    cairn_wire_mac_t *m = cairn_wire_mac_create(other);
    cairn_wire_mac_update(m, hs, 160);
    cairn_wire_mac_final(m, hs + 160);
    cairn_wire_mac_destroy(m);
    cairn_wire_key_destroy(other);
    assert_true(raft_port_closes(x, 1, hs, sizeof hs));
    /* libraft's own handshake (protocol 1, id, address length 2^40) */
    uint8_t raw[24] = {1};
    raw[8] = 2;
    raw[16 + 5] = 1;
    raft_port_closes(x, 2, raw, sizeof raw); /* short of a handshake: held until its timeout, never parsed */
    /* and the group still works */
    assert_int_equal(create_bucket(x, l, "after-junk", &st), 0);
    assert_int_equal(st, 0);
}

static void test_leader_stops_and_returns(void **state)
{
    fx_t *x = *state;
    int l = leader(x), st;
    assert_int_equal(create_bucket(x, l, "before", &st), 0);
    uint64_t before = meta_fsm_applied(x->fsm[l]);
    stop(x, l); /* hands leadership over first */
    int l2 = leader(x);
    assert_true(l2 != l);
    assert_int_equal(create_bucket(x, l2, "during", &st), 0);
    assert_int_equal(st, 0);
    start(x, l, 0); /* not pristine: no bootstrap, replays its log */
    assert_true(meta_fsm_applied(x->fsm[l]) >= before);
    wait_applied(x, meta_fsm_applied(x->fsm[l2]));
    assert_true(has_bucket(x, l, "during"));
}

static void test_membership(void **state)
{
    fx_t *x = *state;
    int l = leader(x), f = (l + 1) % N, st;
    cairn_meta_status_t s;
    assert_int_equal(meta_log_remove(x->log[f], (uint64_t)f + 1, 5000), CAIRN_ENOTLEADER);
    assert_int_equal(meta_log_remove(x->log[l], 99, 5000), CAIRN_ENOTFOUND);
    assert_int_equal(meta_log_remove(x->log[l], (uint64_t)f + 1, 5000), 0);
    assert_int_equal(meta_log_status(x->log[l], &s), 0);
    assert_int_equal(s.nmembers, N - 1);
    /* wipe the removed replica and bring it back as a new member */
    stop(x, f);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'/*", x->dir[f]);
    assert_int_equal(system(cmd), 0);
    for (int i = 0; i < 80; i++) { /* move the log past a few snapshots */
        char b[32];
        snprintf(b, sizeof b, "while-out-%02d", i);
        assert_int_equal(create_bucket(x, l, b, &st), 0);
    }
    start(x, f, 1);
    assert_int_equal(meta_log_add(x->log[l], (uint64_t)f + 1, "10.9.9.99:7000", x->cfg.metas[f].raft_addr, 20000), 0);
    assert_int_equal(meta_log_add(x->log[l], (uint64_t)f + 1, "10.9.9.99:7000", x->cfg.metas[f].raft_addr, 20000),
                     CAIRN_EEXIST);
    assert_int_equal(meta_log_status(x->log[l], &s), 0);
    assert_int_equal(s.nmembers, N);
    int found = 0;
    for (size_t i = 0; i < s.nmembers; i++)
        if (s.members[i].id == (uint64_t)f + 1) {
            found = 1;
            assert_int_equal(s.members[i].kind, CAIRN_META_MEMBER_VOTER);
            assert_string_equal(s.members[i].addr, "10.9.9.99:7000"); /* recorded through the log */
        }
    assert_true(found);
    wait_applied(x, meta_fsm_applied(x->fsm[l]));
    assert_true(has_bucket(x, f, "while-out-79"));
    /* the new member can lead */
    assert_int_equal(meta_log_transfer(x->log[l], (uint64_t)f + 1, 10000), 0);
    assert_int_equal(leader(x), f);
    assert_int_equal(create_bucket(x, f, "led-by-the-new-one", &st), 0);
    assert_int_equal(st, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leader_stops_and_returns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_membership, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
