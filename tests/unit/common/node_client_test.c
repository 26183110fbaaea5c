/*
 * node_client_test.c — the node's administrative responses: each decoder
 * reads back what its encoder wrote, and refuses every truncation, trailing
 * bytes and out-of-range values; the fragment request encoder. (The calls over a real connection are
 * exercised in tests/unit/storage-node/scrub_test.c.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/node_client.h"

static void test_bad_list(void **state)
{
    cairn_node_bad_t v[3] = {
        {.index = 0, .reason = CAIRN_BAD_BLOCK, .found_ms = 1},
        {.index = 5, .reason = CAIRN_BAD_HEADER, .found_ms = INT64_MAX},
        {.index = 255, .reason = CAIRN_BAD_IO, .found_ms = -2},
    };
    for (int i = 0; i < 3; i++)
        memset(v[i].oid, 0xa0 + i, 16);
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_node_bad_list_encode(&b, v, 3, 1);
    assert_int_equal(b.len, 4 + 3 * CAIRN_NODE_BAD_ENTRY_SIZE + 1);

    cairn_node_bad_t w[3];
    size_t n;
    int more;
    assert_int_equal(cairn_node_bad_list_decode(b.base, b.len, w, 3, &n, &more), 0);
    assert_int_equal(n, 3);
    assert_int_equal(more, 1);
    for (int i = 0; i < 3; i++) {
        assert_memory_equal(w[i].oid, v[i].oid, 16);
        assert_int_equal(w[i].index, v[i].index);
        assert_int_equal(w[i].reason, v[i].reason);
        assert_int_equal(w[i].found_ms, v[i].found_ms);
    }
    /* no room for them */
    assert_int_equal(cairn_node_bad_list_decode(b.base, b.len, w, 2, &n, &more), CAIRN_EPROTO);
    /* every truncation, and a trailing byte */
    for (size_t len = 0; len < b.len; len++)
        assert_int_equal(cairn_node_bad_list_decode(b.base, len, w, 3, &n, &more), CAIRN_EPROTO);
    cairn_buf_put_u8(&b, 0);
    assert_int_equal(cairn_node_bad_list_decode(b.base, b.len, w, 3, &n, &more), CAIRN_EPROTO);
    /* a "more" that is not 0 or 1; a count far beyond the bytes */
    b.len--;
    b.base[b.len - 1] = 2;
    assert_int_equal(cairn_node_bad_list_decode(b.base, b.len, w, 3, &n, &more), CAIRN_EPROTO);
    cairn_le32_put(b.base, UINT32_MAX);
    assert_int_equal(cairn_node_bad_list_decode(b.base, b.len, w, 3, &n, &more), CAIRN_EPROTO);

    /* empty */
    cairn_buf_reset(&b);
    cairn_node_bad_list_encode(&b, NULL, 0, 0);
    assert_int_equal(cairn_node_bad_list_decode(b.base, b.len, NULL, 0, &n, &more), 0);
    assert_int_equal(n, 0);
    assert_int_equal(more, 0);
    cairn_buf_dispose(&b);

    assert_string_equal(cairn_node_bad_reason(CAIRN_BAD_SIZE), "size");
    assert_string_equal(cairn_node_bad_reason(99), "unknown");
}

static void test_scrub_status(void **state)
{
    cairn_node_scrub_status_t s = {1, 2, 3ull << 40, 4, 1700000000123, 6, 7, 5}, t;
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_node_scrub_status_encode(&b, &s);
    assert_int_equal(b.len, CAIRN_NODE_SCRUB_STATUS_SIZE);
    assert_int_equal(cairn_node_scrub_status_decode(b.base, b.len, &t), 0);
    assert_memory_equal(&s, &t, sizeof s);
    /* the body of a node without NODE_SCRUB_NOW: the first six counters */
    memset(&t, 0xee, sizeof t);
    assert_int_equal(cairn_node_scrub_status_decode(b.base, CAIRN_NODE_SCRUB_STATUS_SIZE_V1, &t), 0);
    assert_int_equal(t.passes, 1);
    assert_int_equal(t.last_pass_end_ms, 1700000000123);
    assert_int_equal(t.pass_progress_fragments, 6);
    assert_int_equal(t.now_requested, 0);
    assert_int_equal(t.now_done, 0);
    for (size_t len = 0; len < b.len; len++)
        if (len != CAIRN_NODE_SCRUB_STATUS_SIZE_V1)
            assert_int_equal(cairn_node_scrub_status_decode(b.base, len, &t), CAIRN_EPROTO);
    cairn_buf_put_u8(&b, 0);
    assert_int_equal(cairn_node_scrub_status_decode(b.base, b.len, &t), CAIRN_EPROTO);
    cairn_buf_dispose(&b);
}

/* The fragment request bodies, byte for byte as the node decodes them. */
static void test_frag_req(void **state)
{
    uint8_t oid[16], out[CAIRN_NODE_FRAG_REQ_MAX + 1];
    for (int i = 0; i < 16; i++)
        oid[i] = (uint8_t)(0xa0 + i);
    memset(out, 0x55, sizeof out);
    assert_int_equal(cairn_node_frag_req_encode(out, CAIRN_OP_FRAG_GET, oid, 9, 0x0102030405060708ull, 0x0a0b0c0d),
                     29);
    assert_memory_equal(out, oid, 16);
    assert_int_equal(out[16], 9);
    static const uint8_t range[12] = {8, 7, 6, 5, 4, 3, 2, 1, 0x0d, 0x0c, 0x0b, 0x0a};
    assert_memory_equal(out + 17, range, sizeof range);
    assert_int_equal(out[29], 0x55); /* nothing past the body */
    static const uint16_t keyed[] = {CAIRN_OP_FRAG_DELETE, CAIRN_OP_FRAG_STAT};
    for (size_t k = 0; k < 2; k++) {
        memset(out, 0x55, sizeof out);
        assert_int_equal(cairn_node_frag_req_encode(out, keyed[k], oid, 255, 1, 2), 17);
        assert_memory_equal(out, oid, 16);
        assert_int_equal(out[16], 255);
        assert_int_equal(out[17], 0x55);
    }
}

static void test_info(void **state)
{
    cairn_node_info_t i = {.id = UINT32_MAX, .used = 10, .avail = 20, .fragments = 30}, j;
    cairn_buf_t b;
    cairn_buf_init(&b);
    cairn_node_info_encode(&b, &i);
    assert_int_equal(cairn_node_info_decode(b.base, b.len, &j), 0);
    assert_int_equal(j.id, i.id);
    assert_int_equal(j.used, i.used);
    assert_int_equal(j.avail, i.avail);
    assert_int_equal(j.fragments, i.fragments);
    for (size_t len = 0; len < b.len; len++)
        assert_int_equal(cairn_node_info_decode(b.base, len, &j), CAIRN_EPROTO);
    /* ids that are not a decimal u32 */
    static const char *const bad[] = {"", "x", "-1", "4294967296", "12345678901"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cairn_buf_reset(&b);
        cairn_buf_put_str(&b, bad[k]);
        cairn_buf_put_u64(&b, 1);
        cairn_buf_put_u64(&b, 2);
        cairn_buf_put_u64(&b, 3);
        assert_int_equal(cairn_node_info_decode(b.base, b.len, &j), CAIRN_EPROTO);
    }
    cairn_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_list),
        cmocka_unit_test(test_scrub_status),
        cmocka_unit_test(test_frag_req),
        cmocka_unit_test(test_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
