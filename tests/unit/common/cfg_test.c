/* cfg_test.c — the cluster configuration file: defaults, every rule, every message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/cfg.h"
#include "cairn/err.h"

#define REQUIRED                                  \
    "[cluster]\n"                                 \
    "secret = 0123456789abcdef\n"                 \
    "meta = 127.0.0.1:7000\n"                     \
    "[s3]\n"                                      \
    "access_key = CAIRNTESTKEY\n"                 \
    "secret_key = s3cr3ts3cr3t\n"

#define SIX_NODES                                 \
    "[node.1]\naddr = 127.0.0.1:7101\n"           \
    "[node.2]\naddr = 127.0.0.1:7102\n"           \
    "[node.3]\naddr = 127.0.0.1:7103\n"           \
    "[node.4]\naddr = 127.0.0.1:7104\n"           \
    "[node.5]\naddr = 127.0.0.1:7105\n"           \
    "[node.6]\naddr = 127.0.0.1:7106\n"

static cairn_cfg_t cfg; /* large: keep it off the stack */
static char err[512];

static int load(const char *text)
{
    err[0] = 'x';
    err[1] = '\0';
    return cairn_cfg_load_string(text, "t.conf", &cfg, err, sizeof err);
}

/* The load fails with exactly this message. */
static void expect_err(const char *text, const char *msg)
{
    int rc = load(text);
    if (rc != CAIRN_EINVAL || strcmp(err, msg) != 0)
        fail_msg("rc %d, message\n  got:  %s\n  want: %s", rc, err, msg);
}

static void test_defaults(void **state)
{
    assert_int_equal(load(REQUIRED SIX_NODES), 0);
    assert_string_equal(err, "");
    assert_string_equal(cfg.secret, "0123456789abcdef");
    assert_int_equal(cfg.k, 4);
    assert_int_equal(cfg.m, 2);
    assert_int_equal(cfg.block_size, 256 * 1024);
    assert_string_equal(cfg.meta_addr, "127.0.0.1:7000");
    assert_int_equal(cfg.io_timeout_ms, 5000);
    assert_int_equal(cfg.nnodes, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(cfg.nodes[i].id, i + 1);
        assert_string_equal(cfg.nodes[i].zone, "default");
        assert_true(cfg.nodes[i].weight == 1.0);
    }
    assert_string_equal(cfg.nodes[5].addr, "127.0.0.1:7106");
    assert_string_equal(cfg.gw_listen, "127.0.0.1:9000");
    assert_int_equal(cfg.gw_threads, 0);
    assert_int_equal(cfg.gw_workers, 16);
    assert_string_equal(cfg.region, "us-east-1");
    assert_int_equal(cfg.max_object_size, 5ull << 30);
    assert_int_equal(cfg.request_timeout_ms, 600000);
    assert_string_equal(cfg.access_key, "CAIRNTESTKEY");
    assert_string_equal(cfg.secret_key, "s3cr3ts3cr3t");
    assert_string_equal(cfg.log_level, "info");
}

static void test_every_key(void **state)
{
    const char *text =
        "; a full file\n"
        "# hash comments too\n"
        "[cluster]\n"
        "secret = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
        "k = 2\n"
        "m = 1\n"
        "block_size = 1m\n"
        "meta = 10.0.0.1:7000\n"
        "io_timeout_ms = 250\n"
        "\n"
        "[node.30]\n"
        "addr = 10.0.0.30:7100\n"
        "zone = rack-a\n"
        "weight = 2.5\n"
        "[node.7]\n"
        "addr = 10.0.0.7:7100\n"
        "[node.4294967295]\n"
        "addr = 10.0.0.99:7100\n"
        "zone = rack-b ; inline comment\n"
        "weight = 0.25\n"
        "[gateway]\n"
        "listen = 0.0.0.0:80\n"
        "threads = 8\n"
        "workers = 64\n"
        "region = eu-west-3\n"
        "max_object_size = 1GiB\n"
        "request_timeout_ms = 30000\n"
        "[s3]\n"
        "access_key = AK\n"
        "secret_key = SK\n"
        "[log]\n"
        "level = debug\n";
    assert_int_equal(load(text), 0);
    assert_int_equal(cfg.k, 2);
    assert_int_equal(cfg.m, 1);
    assert_int_equal(cfg.block_size, 1 << 20);
    assert_string_equal(cfg.meta_addr, "10.0.0.1:7000");
    assert_int_equal(cfg.io_timeout_ms, 250);
    assert_int_equal(cfg.nnodes, 3);
    assert_int_equal(cfg.nodes[0].id, 30);
    assert_string_equal(cfg.nodes[0].zone, "rack-a");
    assert_true(cfg.nodes[0].weight == 2.5);
    assert_int_equal(cfg.nodes[1].id, 7);
    assert_string_equal(cfg.nodes[1].zone, "default");
    assert_int_equal(cfg.nodes[2].id, 4294967295u);
    assert_string_equal(cfg.nodes[2].zone, "rack-b");
    assert_true(cfg.nodes[2].weight == 0.25);
    assert_string_equal(cfg.gw_listen, "0.0.0.0:80");
    assert_int_equal(cfg.gw_threads, 8);
    assert_int_equal(cfg.gw_workers, 64);
    assert_string_equal(cfg.region, "eu-west-3");
    assert_int_equal(cfg.max_object_size, 1ull << 30);
    assert_int_equal(cfg.request_timeout_ms, 30000);
    assert_string_equal(cfg.log_level, "debug");

    assert_ptr_equal(cairn_cfg_node(&cfg, 7), &cfg.nodes[1]);
    assert_ptr_equal(cairn_cfg_node(&cfg, 4294967295u), &cfg.nodes[2]);
    assert_null(cairn_cfg_node(&cfg, 1));
    assert_null(cairn_cfg_node(&cfg, 0));
}

static void test_unknown_key(void **state)
{
    expect_err(REQUIRED SIX_NODES "[gateway]\nthread = 4\n", "t.conf:20: unknown key thread in [gateway]");
    expect_err("[cluster]\nsecret = 0123456789abcdef\nK = 4\n", "t.conf:3: unknown key K in [cluster]");
    expect_err("[node.1]\naddr = a:1\nweigth = 2\n", "t.conf:3: unknown key weigth in [node.1]");
    /* a key of one section in another */
    expect_err("[s3]\nlevel = debug\n", "t.conf:2: unknown key level in [s3]");
    expect_err("secret = x\n[cluster]\n", "t.conf:1: key secret before any [section]");
}

static void test_unknown_section(void **state)
{
    /* an unknown section fails even with no keys in it */
    expect_err(REQUIRED SIX_NODES "\n[gatway]\n", "t.conf:20: unknown section [gatway]");
    expect_err("[cluster]\n[metadata]\nk = 1\n", "t.conf:2: unknown section [metadata]");
    expect_err("[Cluster]\n", "t.conf:1: unknown section [Cluster]");
}

static void test_node_sections(void **state)
{
    const char *want = "expected [node.<id>] with a positive integer id";
    char msg[256];
    const char *bad[] = {"[node]", "[node.]", "[node.0]", "[node.-1]", "[node.01]", "[node.x]", "[node.1x]",
                         "[node.4294967296]", "[node. 1]", "[node.+1]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "[cluster]\n%s\naddr = a:1\n", bad[i]);
        snprintf(msg, sizeof msg, "t.conf:2: bad section %s: %s", bad[i], want);
        expect_err(text, msg);
    }
    expect_err("[node.3]\naddr = a:1\n[node.3]\naddr = a:2\n", "t.conf:3: duplicate section [node.3]");
    /* a node section with no addr */
    expect_err(REQUIRED SIX_NODES "[node.9]\nzone = z\n", "t.conf: addr is required in [node.9]");
    expect_err(REQUIRED SIX_NODES "[node.9]\n", "t.conf: addr is required in [node.9]");
    expect_err(REQUIRED SIX_NODES "[node.9]\naddr = 127.0.0.1:7103\n",
               "t.conf: [node.3] and [node.9] have the same addr 127.0.0.1:7103");
}

static void test_too_many_nodes(void **state)
{
    size_t cap = 300 * 40 + 512;
    char *text = malloc(cap);
    size_t n = (size_t)snprintf(text, cap, "%s", REQUIRED);
    for (int i = 1; i <= 256; i++)
        n += (size_t)snprintf(text + n, cap - n, "[node.%d]\naddr = h:%d\n", i, i);
    assert_int_equal(load(text), 0);
    assert_int_equal(cfg.nnodes, 256);
    assert_string_equal(cairn_cfg_node(&cfg, 256)->addr, "h:256");
    snprintf(text + n, cap - n, "[node.999]\naddr = h:999\n");
    expect_err(text, "t.conf:519: too many nodes (at most 256)");
    free(text);
}

static void test_required(void **state)
{
    expect_err(SIX_NODES "[cluster]\nmeta = m:1\n[s3]\naccess_key = a\nsecret_key = b\n",
               "t.conf: secret is required in [cluster]");
    expect_err(SIX_NODES "[cluster]\nsecret = 0123456789abcdef\n[s3]\naccess_key = a\nsecret_key = b\n",
               "t.conf: meta is required in [cluster]");
    expect_err(SIX_NODES "[cluster]\nsecret = 0123456789abcdef\nmeta = m:1\n[s3]\nsecret_key = b\n",
               "t.conf: access_key is required in [s3]");
    expect_err(SIX_NODES "[cluster]\nsecret = 0123456789abcdef\nmeta = m:1\n[s3]\naccess_key = a\n",
               "t.conf: secret_key is required in [s3]");
    /* an empty value does not count */
    expect_err(SIX_NODES "[cluster]\nsecret = 0123456789abcdef\nmeta =\n[s3]\naccess_key = a\nsecret_key = b\n",
               "t.conf: meta is required in [cluster]");
    expect_err("", "t.conf: secret is required in [cluster]");
}

static void test_secret_rules(void **state)
{
    /* too short, and the value is not echoed */
    expect_err("[cluster]\nsecret = hunter2hunter2\n",
               "t.conf:2: bad value for secret in [cluster]: must be at least 16 characters");
    char text[512];
    memset(text, 0, sizeof text);
    strcpy(text, "[s3]\nsecret_key = ");
    memset(text + strlen(text), 'z', 128);
    strcat(text, "\n");
    expect_err(text, "t.conf:2: bad value for secret_key in [s3]: longer than 127 characters");
    assert_null(strstr(err, "zzz"));
}

static void test_numbers(void **state)
{
    expect_err("[cluster]\nk = four\n", "t.conf:2: bad value for k in [cluster] ('four'): expected an integer");
    expect_err("[cluster]\nk = 4x\n", "t.conf:2: bad value for k in [cluster] ('4x'): expected an integer");
    expect_err("[cluster]\nk =\n", "t.conf:2: bad value for k in [cluster] (''): expected an integer");
    expect_err("[cluster]\nk = 0\n", "t.conf:2: bad value for k in [cluster] ('0'): must be between 1 and 32");
    expect_err("[cluster]\nk = 99999999999999999999\n",
               "t.conf:2: bad value for k in [cluster] ('99999999999999999999'): expected an integer");
    expect_err("[cluster]\nm = -1\n", "t.conf:2: bad value for m in [cluster] ('-1'): must be between 0 and 31");
    expect_err("[gateway]\nworkers = 0\n",
               "t.conf:2: bad value for workers in [gateway] ('0'): must be between 1 and 4096");
    expect_err("[cluster]\nblock_size = 100\n",
               "t.conf:2: bad value for block_size in [cluster] ('100'): must be a multiple of 64");
    expect_err("[cluster]\nblock_size = 32m\n",
               "t.conf:2: bad value for block_size in [cluster] ('32m'): must be between 64 and 16777216 bytes");
    expect_err("[cluster]\nblock_size = 4q\n",
               "t.conf:2: bad value for block_size in [cluster] ('4q'): expected a size such as 4096, 256k, 4m or 5g");
    expect_err("[node.1]\nweight = 0\n", "t.conf:2: bad value for weight in [node.1] ('0'): must be greater than 0");
    expect_err("[node.1]\nweight = nan\n", "t.conf:2: bad value for weight in [node.1] ('nan'): expected a number");
    expect_err("[node.1]\nweight = 1e9\n",
               "t.conf:2: bad value for weight in [node.1] ('1e9'): must be between 0 and 1e+06");
    expect_err("[log]\nlevel = loud\n",
               "t.conf:2: bad value for level in [log] ('loud'): must be debug, info, warn or error");

    /* block_size limits are inclusive */
    assert_int_equal(load(REQUIRED SIX_NODES "[cluster]\n"), CAIRN_EINVAL); /* duplicate [cluster] */
    assert_int_equal(load(SIX_NODES REQUIRED "block_size = 16m\n"), CAIRN_EINVAL); /* lands in [s3] */
    assert_string_equal(err, "t.conf:19: unknown key block_size in [s3]");
    assert_int_equal(load("[cluster]\nblock_size = 16m\nsecret = 0123456789abcdef\nmeta = m:1\n"
                          "[s3]\naccess_key = a\nsecret_key = b\n" SIX_NODES), 0);
    assert_int_equal(cfg.block_size, 16u << 20);
    assert_int_equal(load("[cluster]\nblock_size = 64\nsecret = 0123456789abcdef\nmeta = m:1\n"
                          "[s3]\naccess_key = a\nsecret_key = b\n" SIX_NODES), 0);
    assert_int_equal(cfg.block_size, 64);
}

static void test_erasure_vs_nodes(void **state)
{
    expect_err(REQUIRED "[node.1]\naddr = a:1\n",
               "t.conf: 4+2 erasure coding needs at least 6 nodes, but 1 [node.<id>] section is configured");
    expect_err(REQUIRED,
               "t.conf: 4+2 erasure coding needs at least 6 nodes, but 0 [node.<id>] sections are configured");
    expect_err("[cluster]\nk = 20\nm = 13\nsecret = 0123456789abcdef\nmeta = m:1\n"
               "[s3]\naccess_key = a\nsecret_key = b\n",
               "t.conf: k + m is 33, at most 32 is supported");
    assert_int_equal(load("[cluster]\nk = 1\nm = 0\nsecret = 0123456789abcdef\nmeta = m:1\n"
                          "[s3]\naccess_key = a\nsecret_key = b\n[node.5]\naddr = x:1\n"), 0);
    assert_int_equal(cfg.k, 1);
    assert_int_equal(cfg.m, 0);
}

static void test_duplicates(void **state)
{
    expect_err("[cluster]\nk = 4\nk = 5\n", "t.conf:3: duplicate key k in [cluster]");
    expect_err("[node.2]\naddr = a:1\nzone = z\naddr = a:2\n", "t.conf:4: duplicate key addr in [node.2]");
    expect_err("[gateway]\n[s3]\n[gateway]\n", "t.conf:3: duplicate section [gateway]");
}

static void test_syntax(void **state)
{
    expect_err("[cluster]\nk 4\nm = 2\n", "t.conf:2: syntax error: expected [section], key = value or a ; comment");
    expect_err("[cluster\nk = 4\n", "t.conf:1: syntax error: expected [section], key = value or a ; comment");
    /* the first error wins even when a later line fails in the handler */
    expect_err("[cluster]\nk 4\nbogus = 1\n",
               "t.conf:2: syntax error: expected [section], key = value or a ; comment");

    /* a line longer than libinih's buffer is refused, not cut in two */
    char text[600];
    int n = snprintf(text, sizeof text, "[gateway]\nregion = ");
    memset(text + n, 'r', 300);
    strcpy(text + n + 300, "\n");
    expect_err(text, "t.conf:2: line longer than 198 characters");
    /* the longest line that fits: 198 characters */
    n = snprintf(text, sizeof text, "[gateway]\n; ");
    memset(text + n, 'c', 196);
    strcpy(text + n + 196, "\n[log]\nlevel = x\n");
    expect_err(text, "t.conf:4: bad value for level in [log] ('x'): must be debug, info, warn or error");
}

static void test_layout(void **state)
{
    /* indentation, CRLF, a byte order mark, ':' as separator, spaces around '=' */
    const char *text =
        "\xEF\xBB\xBF[cluster]\r\n"
        "    secret=0123456789abcdef\r\n"
        "\tmeta   :   m:1   \r\n"
        "  k = 3\r\n"
        "  m = 3\r\n"
        "   [s3]\r\n"
        "  access_key = a\r\n"
        "  secret_key = b\r\n"
        "[node.1]\r\n  addr = h:1\r\n  zone = z ; why\r\n"
        "[node.2]\r\n  addr = h:2\r\n"
        "[node.3]\r\n  addr = h:3\r\n"
        "[node.4]\r\n  addr = h:4\r\n"
        "[node.5]\r\n  addr = h:5\r\n"
        "[node.6]\r\n  addr = h:6"; /* no final newline */
    assert_int_equal(load(text), 0);
    assert_string_equal(cfg.secret, "0123456789abcdef");
    assert_string_equal(cfg.meta_addr, "m:1");
    assert_int_equal(cfg.k, 3);
    assert_int_equal(cfg.m, 3);
    assert_string_equal(cfg.nodes[0].zone, "z");
    assert_string_equal(cfg.nodes[5].addr, "h:6");
}

static void test_file(void **state)
{
    char path[] = "/tmp/cfg_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(REQUIRED SIX_NODES "[gateway]\nlisten = 127.0.0.1:19000\n", f);
    fclose(f);
    assert_int_equal(cairn_cfg_load(path, &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.gw_listen, "127.0.0.1:19000");
    assert_int_equal(cfg.nnodes, 6);

    f = fopen(path, "a");
    fputs("[gateway]\n", f);
    fclose(f);
    char want[128];
    snprintf(want, sizeof want, "%s:21: duplicate section [gateway]", path);
    assert_int_equal(cairn_cfg_load(path, &cfg, err, sizeof err), CAIRN_EINVAL);
    assert_string_equal(err, want);

    /* an over-long line read from a file */
    f = fopen(path, "w");
    fputs("[gateway]\nregion = ", f);
    for (int i = 0; i < 500; i++)
        fputc('r', f);
    fputs("\n", f);
    fclose(f);
    snprintf(want, sizeof want, "%s:2: line longer than 198 characters", path);
    assert_int_equal(cairn_cfg_load(path, &cfg, err, sizeof err), CAIRN_EINVAL);
    assert_string_equal(err, want);

    unlink(path);
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    assert_int_equal(cairn_cfg_load(path, &cfg, err, sizeof err), CAIRN_EINVAL);
    assert_string_equal(err, want);

    /* a tiny error buffer is still terminated; none at all is allowed */
    char small[8];
    assert_int_equal(cairn_cfg_load(path, &cfg, small, sizeof small), CAIRN_EINVAL);
    assert_int_equal(strlen(small), 7);
    assert_int_equal(cairn_cfg_load(path, &cfg, NULL, 0), CAIRN_EINVAL);
}

static void test_parse_size(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        {"0", 0}, {"4096", 4096}, {"256k", 256 << 10}, {"256K", 256 << 10}, {"4m", 4 << 20},
        {"4MB", 4 << 20}, {"4MiB", 4 << 20}, {"5g", 5ull << 30}, {"1GiB", 1ull << 30}, {"2t", 2ull << 40},
        {"2tb", 2ull << 40}, {"18446744073709551615", UINT64_MAX}, {"16777215t", 16777215ull << 40},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 1;
        if (cairn_cfg_parse_size(ok[i].s, &v) != 0 || v != ok[i].v)
            fail_msg("'%s' -> %llu", ok[i].s, (unsigned long long)v);
    }
    static const char *bad[] = {"", "k", "-1", "+1", " 1", "1 ", "1x", "1kx", "1kbb", "1ib", "1b", "1.5m", "0x10",
                                "18446744073709551616", "16777216t", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 7;
        if (cairn_cfg_parse_size(bad[i], &v) != CAIRN_EINVAL || v != 7)
            fail_msg("'%s' accepted", bad[i]);
    }
}

static void test_parse_bool(void **state)
{
    const char *yes[] = {"true", "TRUE", "yes", "On", "1"};
    const char *no[] = {"false", "No", "off", "0"};
    const char *bad[] = {"", "2", "y", "truth", "nope"};
    int v;
    for (size_t i = 0; i < 5; i++) {
        v = -1;
        assert_int_equal(cairn_cfg_parse_bool(yes[i], &v), 0);
        assert_int_equal(v, 1);
    }
    for (size_t i = 0; i < 4; i++) {
        v = -1;
        assert_int_equal(cairn_cfg_parse_bool(no[i], &v), 0);
        assert_int_equal(v, 0);
    }
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(cairn_cfg_parse_bool(bad[i], &v), CAIRN_EINVAL);
}

static void test_meta_replicas(void **state)
{
    assert_int_equal(load("[cluster]\nsecret = 0123456789abcdef\nmeta = 127.0.0.1:7000 , h2:7001,h3:7002\n"
                          "[s3]\naccess_key = a\nsecret_key = b\n" SIX_NODES
                          "[meta]\nsnapshot_threshold = 64\n"
                          "[meta.3]\naddr = h3:7002\nraft_addr = 127.0.0.3:8002\n"
                          "[meta.1]\naddr = 127.0.0.1:7000\nraft_addr = 127.0.0.1:8000\n"),
                     0);
    assert_int_equal(cfg.nmetas, 2);
    assert_int_equal(cfg.metas[0].id, 3);
    assert_string_equal(cfg.metas[0].raft_addr, "127.0.0.3:8002");
    assert_string_equal(cairn_cfg_replica(&cfg, 1)->addr, "127.0.0.1:7000");
    assert_null(cairn_cfg_replica(&cfg, 2));
    assert_int_equal(cfg.meta_snapshot_threshold, 64);
    assert_int_equal(cfg.meta_snapshot_trailing, 8192);
    assert_int_equal(cfg.meta_election_ms, 1000);

    char a[CAIRN_CFG_MAX_META][128];
    assert_int_equal(cairn_cfg_split_addrs(cfg.meta_addr, a, CAIRN_CFG_MAX_META), 3);
    assert_string_equal(a[0], "127.0.0.1:7000");
    assert_string_equal(a[1], "h2:7001");
    assert_string_equal(a[2], "h3:7002");
    assert_int_equal(cairn_cfg_split_addrs("a:1,,b:2", a, 7), CAIRN_EINVAL);
    assert_int_equal(cairn_cfg_split_addrs("a:1,b", a, 7), CAIRN_EINVAL);
    assert_int_equal(cairn_cfg_split_addrs(":1", a, 7), CAIRN_EINVAL);
    assert_int_equal(cairn_cfg_split_addrs("a:", a, 7), CAIRN_EINVAL);
    assert_int_equal(cairn_cfg_split_addrs("a:1,b:2,c:3", a, 2), CAIRN_ETOOBIG);

    expect_err(REQUIRED SIX_NODES "[meta.0]\naddr = a:1\nraft_addr = a:2\n",
               "t.conf:19: bad section [meta.0]: expected [meta.<id>] with a positive integer id");
    expect_err(REQUIRED SIX_NODES "[meta.1]\naddr = a:1\n", "t.conf: raft_addr is required in [meta.1]");
    expect_err(REQUIRED SIX_NODES "[meta.1]\naddr = a:1\nraft_addr = a:2\n[meta.1]\n",
               "t.conf:22: duplicate section [meta.1]");
    expect_err(REQUIRED SIX_NODES "[meta.1]\naddr = a:1\nraft_addr = a:2\n[meta.2]\naddr = a:1\nraft_addr = a:3\n",
               "t.conf: [meta.1] and [meta.2] have the same address");
    expect_err(REQUIRED SIX_NODES "[meta.1]\nport = 1\n", "t.conf:20: unknown key port in [meta.1]");
    expect_err(REQUIRED SIX_NODES "[meta]\nheartbeat_ms = 1000\n",
               "t.conf: heartbeat_ms (1000) must be below election_timeout_ms (1000) in [meta]");
    expect_err("[cluster]\nsecret = 0123456789abcdef\nmeta = a:1;b:2\n",
               "t.conf:3: bad value for meta in [cluster] ('a:1;b:2'): must be host:port[,host:port...]");
}

/* The admin endpoints: empty (the default) means none; else one host:port. */
static void test_admin_addrs(void **state)
{
    assert_int_equal(load(REQUIRED SIX_NODES), 0);
    assert_string_equal(cfg.gw_admin_listen, "");
    assert_string_equal(cfg.nodes[0].admin_addr, "");
    assert_int_equal(load(REQUIRED "[gateway]\nadmin_listen = 127.0.0.1:9100\n"
                                   "[meta.1]\naddr = 127.0.0.1:7000\nraft_addr = 127.0.0.1:7010\nadmin_addr = [::1]:7020\n"
                                   "[node.1]\naddr = 127.0.0.1:7101\nadmin_addr = 0.0.0.0:7201\n"
                                   "[node.2]\naddr = 127.0.0.1:7102\n[node.3]\naddr = 127.0.0.1:7103\n"
                                   "[node.4]\naddr = 127.0.0.1:7104\n[node.5]\naddr = 127.0.0.1:7105\n"
                                   "[node.6]\naddr = 127.0.0.1:7106\n"),
                     0);
    assert_string_equal(cfg.gw_admin_listen, "127.0.0.1:9100");
    assert_string_equal(cfg.metas[0].admin_addr, "[::1]:7020");
    assert_string_equal(cfg.nodes[0].admin_addr, "0.0.0.0:7201");
    assert_string_equal(cfg.nodes[1].admin_addr, "");
    expect_err(REQUIRED SIX_NODES "[gateway]\nadmin_listen = 9100\n",
               "t.conf:20: bad value for admin_listen in [gateway] ('9100'): must be host:port, or empty for none");
    expect_err(REQUIRED "[node.1]\naddr = a:1\nadmin_addr = a:1,b:2\n",
               "t.conf:9: bad value for admin_addr in [node.1] ('a:1,b:2'): must be host:port, or empty for none");
}

/* [gateway] domain: empty (path style only) by default; host names, comma-separated. */
static void test_domain(void **state)
{
    assert_int_equal(load(REQUIRED SIX_NODES), 0);
    assert_string_equal(cfg.gw_domain, "");
    assert_int_equal(load(REQUIRED SIX_NODES "[gateway]\ndomain = s3.example.com,localhost\n"), 0);
    assert_string_equal(cfg.gw_domain, "s3.example.com,localhost");
    expect_err(REQUIRED SIX_NODES "[gateway]\ndomain = s3.example.com:9000\n",
               "t.conf:20: bad value for domain in [gateway] ('s3.example.com:9000'): "
               "must be host names separated by commas (no ports, no blanks)");
}

/* [gateway] tls_cert and tls_key: both empty (plain HTTP) by default; one
 * without the other is an error naming both. */
static void test_tls_pair(void **state)
{
    assert_int_equal(load(REQUIRED SIX_NODES), 0);
    assert_string_equal(cfg.gw_tls_cert, "");
    assert_string_equal(cfg.gw_tls_key, "");
    assert_int_equal(load(REQUIRED SIX_NODES "[gateway]\ntls_cert = /etc/cairn/cert.pem\ntls_key = /etc/cairn/key.pem\n"),
                     0);
    assert_string_equal(cfg.gw_tls_cert, "/etc/cairn/cert.pem");
    assert_string_equal(cfg.gw_tls_key, "/etc/cairn/key.pem");
    expect_err(REQUIRED SIX_NODES "[gateway]\ntls_cert = /etc/cairn/cert.pem\n",
               "t.conf: tls_cert is set but tls_key is not in [gateway]: set both (HTTPS) or neither (plain HTTP)");
    expect_err(REQUIRED SIX_NODES "[gateway]\ntls_key = /etc/cairn/key.pem\n",
               "t.conf: tls_key is set but tls_cert is not in [gateway]: set both (HTTPS) or neither (plain HTTP)");
}

static void test_help(void **state)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    cairn_cfg_help(f);
    fclose(f);
    const char *want[] = {"cluster.secret", "cluster.k ", "cluster.block_size", "256k", "node.<id>.addr",
                          "node.<id>.weight", "gateway.workers", "gateway.max_object_size", "5g", "s3.access_key",
                          "(required)", "log.level", "info", "gateway.admin_listen", "node.<id>.admin_addr",
                          "meta.<id>.admin_addr", "gateway.tls_cert", "gateway.tls_key", "meta.lease_reads"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(out, want[i]))
            fail_msg("help lacks '%s':\n%s", want[i], out);
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 38);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_unknown_key),     cmocka_unit_test(test_unknown_section),
        cmocka_unit_test(test_node_sections),   cmocka_unit_test(test_too_many_nodes),
        cmocka_unit_test(test_required),        cmocka_unit_test(test_secret_rules),
        cmocka_unit_test(test_numbers),         cmocka_unit_test(test_erasure_vs_nodes),
        cmocka_unit_test(test_duplicates),      cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_layout),          cmocka_unit_test(test_file),
        cmocka_unit_test(test_parse_size),      cmocka_unit_test(test_parse_bool),
        cmocka_unit_test(test_meta_replicas),   cmocka_unit_test(test_help),
        cmocka_unit_test(test_admin_addrs),
        cmocka_unit_test(test_domain),
        cmocka_unit_test(test_tls_pair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
