/*
 * node_client.c — encode, decode and call the storage node's administrative
 * operations (see node_client.h for the formats).
 */
#include "cairn/node_client.h"

#include <stdio.h>
#include <string.h>

#include "cairn/err.h"

const char *cairn_node_bad_reason(unsigned reason)
{
    switch (reason) {
    case CAIRN_BAD_HEADER: return "header";
    case CAIRN_BAD_BLOCK: return "block";
    case CAIRN_BAD_SIZE: return "size";
    case CAIRN_BAD_IO: return "io";
    default: return "unknown";
    }
}

void cairn_node_info_encode(cairn_buf_t *out, const cairn_node_info_t *info)
{
    char id[16];
    snprintf(id, sizeof id, "%u", info->id);
    cairn_buf_put_str(out, id);
    cairn_buf_put_u64(out, info->used);
    cairn_buf_put_u64(out, info->avail);
    cairn_buf_put_u64(out, info->fragments);
}

void cairn_node_bad_list_encode(cairn_buf_t *out, const cairn_node_bad_t *v, size_t n, int more)
{
    cairn_buf_put_u32(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        cairn_buf_append(out, v[i].oid, 16);
        cairn_buf_put_u8(out, v[i].index);
        cairn_buf_put_u8(out, v[i].reason);
        cairn_buf_put_u64(out, (uint64_t)v[i].found_ms);
    }
    cairn_buf_put_u8(out, more ? 1 : 0);
}

void cairn_node_scrub_status_encode(cairn_buf_t *out, const cairn_node_scrub_status_t *s)
{
    cairn_buf_put_u64(out, s->passes);
    cairn_buf_put_u64(out, s->fragments_checked);
    cairn_buf_put_u64(out, s->bytes_checked);
    cairn_buf_put_u64(out, s->bad_found);
    cairn_buf_put_u64(out, (uint64_t)s->last_pass_end_ms);
    cairn_buf_put_u64(out, s->pass_progress_fragments);
    cairn_buf_put_u64(out, s->now_requested);
    cairn_buf_put_u64(out, s->now_done);
}

/* The node id is sent as decimal text: 1..10 digits, no sign, fits a u32. */
static int parse_id(const uint8_t *p, size_t n, uint32_t *id)
{
    uint64_t v = 0;
    if (n == 0 || n > 10)
        return CAIRN_EPROTO;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return CAIRN_EPROTO;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (v > UINT32_MAX)
        return CAIRN_EPROTO;
    *id = (uint32_t)v;
    return 0;
}

int cairn_node_info_decode(const uint8_t *p, size_t len, cairn_node_info_t *info)
{
    cairn_dec_t d;
    const uint8_t *id;
    size_t idlen;
    cairn_dec_init(&d, p, len);
    cairn_dec_bytes(&d, &id, &idlen);
    info->used = cairn_dec_u64(&d);
    info->avail = cairn_dec_u64(&d);
    info->fragments = cairn_dec_u64(&d);
    if (d.err || cairn_dec_left(&d) != 0)
        return CAIRN_EPROTO;
    return parse_id(id, idlen, &info->id);
}

int cairn_node_bad_list_decode(const uint8_t *p, size_t len, cairn_node_bad_t *v, size_t cap, size_t *n,
                               int *more)
{
    cairn_dec_t d;
    cairn_dec_init(&d, p, len);
    uint32_t cnt = cairn_dec_u32(&d);
    /* Check the count against the bytes present before touching v. */
    if (d.err || cnt > cap || cairn_dec_left(&d) != (size_t)cnt * CAIRN_NODE_BAD_ENTRY_SIZE + 1)
        return CAIRN_EPROTO;
    for (uint32_t i = 0; i < cnt; i++) {
        cairn_dec_raw(&d, v[i].oid, 16);
        v[i].index = cairn_dec_u8(&d);
        v[i].reason = cairn_dec_u8(&d);
        v[i].found_ms = (int64_t)cairn_dec_u64(&d);
    }
    uint8_t m = cairn_dec_u8(&d);
    if (d.err || m > 1)
        return CAIRN_EPROTO;
    *n = cnt;
    *more = m;
    return 0;
}

int cairn_node_scrub_status_decode(const uint8_t *p, size_t len, cairn_node_scrub_status_t *s)
{
    cairn_dec_t d;
    cairn_dec_init(&d, p, len);
    s->passes = cairn_dec_u64(&d);
    s->fragments_checked = cairn_dec_u64(&d);
    s->bytes_checked = cairn_dec_u64(&d);
    s->bad_found = cairn_dec_u64(&d);
    s->last_pass_end_ms = (int64_t)cairn_dec_u64(&d);
    s->pass_progress_fragments = cairn_dec_u64(&d);
    s->now_requested = s->now_done = 0;
    if (len == CAIRN_NODE_SCRUB_STATUS_SIZE) {
        s->now_requested = cairn_dec_u64(&d);
        s->now_done = cairn_dec_u64(&d);
    }
    return d.err || cairn_dec_left(&d) != 0 ? CAIRN_EPROTO : 0;
}

size_t cairn_node_frag_req_encode(uint8_t out[CAIRN_NODE_FRAG_REQ_MAX], uint16_t op, const uint8_t oid[16],
                                  unsigned index, uint64_t first_stripe, uint32_t nstripes)
{
    CAIRN_ASSERT(op == CAIRN_OP_FRAG_GET || op == CAIRN_OP_FRAG_DELETE || op == CAIRN_OP_FRAG_STAT);
    memcpy(out, oid, 16);
    out[16] = (uint8_t)index;
    if (op != CAIRN_OP_FRAG_GET)
        return 17;
    cairn_le64_put(out + 17, first_stripe);
    cairn_le32_put(out + 25, nstripes);
    return CAIRN_NODE_FRAG_REQ_MAX;
}

/* One call; the transport error, else the node's status. */
static int call(cairn_conn_t *c, uint16_t op, const void *body, size_t len, cairn_buf_t *resp)
{
    struct iovec v = {(void *)body, len};
    int32_t status = 0;
    int rc = cairn_conn_call(c, op, 0, &v, len ? 1 : 0, resp, &status);
    return rc != 0 ? rc : status;
}

int cairn_node_info(cairn_conn_t *c, cairn_node_info_t *info)
{
    cairn_buf_t resp;
    cairn_buf_init(&resp);
    int rc = call(c, CAIRN_OP_NODE_INFO, NULL, 0, &resp);
    if (rc == 0)
        rc = cairn_node_info_decode(resp.base, resp.len, info);
    cairn_buf_dispose(&resp);
    return rc;
}

int cairn_node_bad_list(cairn_conn_t *c, cairn_node_bad_t *v, size_t cap, size_t *n, int *more)
{
    if (cap > CAIRN_NODE_BAD_LIST_MAX)
        cap = CAIRN_NODE_BAD_LIST_MAX;
    uint8_t max[4];
    cairn_le32_put(max, (uint32_t)cap);
    cairn_buf_t resp;
    cairn_buf_init(&resp);
    int rc = call(c, CAIRN_OP_NODE_BAD_LIST, max, sizeof max, &resp);
    if (rc == 0)
        rc = cairn_node_bad_list_decode(resp.base, resp.len, v, cap, n, more);
    cairn_buf_dispose(&resp);
    return rc;
}

int cairn_node_scrub_status(cairn_conn_t *c, cairn_node_scrub_status_t *s)
{
    cairn_buf_t resp;
    cairn_buf_init(&resp);
    int rc = call(c, CAIRN_OP_NODE_SCRUB_STATUS, NULL, 0, &resp);
    if (rc == 0)
        rc = cairn_node_scrub_status_decode(resp.base, resp.len, s);
    cairn_buf_dispose(&resp);
    return rc;
}

int cairn_node_scrub_now(cairn_conn_t *c, uint32_t rate_mb)
{
    uint8_t body[4];
    cairn_le32_put(body, rate_mb);
    return call(c, CAIRN_OP_NODE_SCRUB_NOW, body, sizeof body, NULL);
}
