/*
 * walk.c — what several admin commands share: the cluster map and a walk
 * over every fragment set the metadata tier knows of.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "cairn/err.h"

#define PAGE 100

void admin_meta_client(admin_t *a, cairn_meta_client_t *mc)
{
    cairn_meta_client_init(mc, a->cfg.meta_addr, a->key, a->cfg.io_timeout_ms);
}

int admin_map_load(admin_t *a, cairn_meta_client_t *mc, cairn_map_t *map)
{
    int rc = cairn_meta_map_get(mc, 0, map);
    if (rc == 0 && map->epoch == 0) {
        static cairn_map_t seed;
        cairn_map_from_cfg(&a->cfg, &seed);
        rc = cairn_meta_map_init(mc, 0, &seed, map);
    }
    if (rc != 0)
        fprintf(stderr, "cairn-admin: cannot read the cluster map: %s\n", cairn_strerror(rc));
    return rc;
}

static int visit(const cairn_meta_scan_entry_t *e, admin_walk_fn fn, void *arg)
{
    admin_fragset_t fs = {e->bucket, e->bucket_len, e->key, e->key_len};
    const cairn_obj_rec_t *r = &e->rec;
    if (r->is_inline)
        return 0;
    if (r->nparts == 0) {
        fs.oid = r->oid;
        fs.size = r->size;
        fs.k = r->k, fs.m = r->m, fs.block_size = r->block_size;
        fs.nodes = r->nodes;
        return fn(arg, &fs);
    }
    cairn_obj_part_t p;
    size_t off = 0;
    int rc = 0;
    while (rc == 0 && cairn_obj_part_next(r->parts, r->parts_len, &off, &p)) {
        fs.oid = p.oid;
        fs.size = p.size;
        fs.k = p.k, fs.m = p.m, fs.block_size = p.block_size;
        fs.nodes = p.nodes;
        rc = fn(arg, &fs);
    }
    return rc;
}

int admin_walk(cairn_meta_client_t *mc, int table, const uint8_t *cursor, size_t cursor_len, admin_walk_fn fn,
               admin_page_fn page_done, void *arg)
{
    cairn_meta_scan_t s;
    cairn_meta_scan_init(&s);
    uint8_t cur[sizeof s.cursor];
    size_t cur_len = cursor && cursor_len < sizeof cur ? cursor_len : 0;
    if (cur_len)
        memcpy(cur, cursor, cur_len);
    int rc;
    do {
        rc = cairn_meta_obj_scan(mc, 0, table, cur, cur_len, PAGE, &s);
        for (size_t i = 0; rc == 0 && i < s.n; i++)
            rc = visit(&s.entries[i], fn, arg);
        if (rc == 0) {
            memcpy(cur, s.cursor, s.cursor_len);
            cur_len = s.cursor_len;
            if (page_done)
                rc = page_done(arg, cur, cur_len);
        }
    } while (rc == 0 && s.more);
    cairn_meta_scan_dispose(&s);
    return rc;
}
