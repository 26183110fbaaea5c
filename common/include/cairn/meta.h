/*
 * meta.h — the metadata service's protocol: record types, their encoding,
 * and the blocking client calls the gateway and the admin tool use.
 *
 * Every mutation the service performs is one encoded command applied in log
 * order by the state machine (metadata/fsm.c); reads go to the state machine
 * directly. The client functions here hide that: they send one request frame
 * (wire.h) and decode the answer.
 *
 * The service is a Raft group of replicas (metadata/raft_glue.h). Only the
 * leader serves; the others answer CAIRN_ENOTLEADER with the leader's
 * address as the whole response body (empty when they know none). A client
 * (cairn_meta_client_t) holds the list of replicas and hides all of it:
 * it follows redirects, tries the next replica when one does not answer,
 * and retries across an election until a deadline. Every call is sent
 * wrapped in CAIRN_OP_META_ONCE with a command id fixed for the call, so a
 * mutation retried after its first attempt did commit is not applied twice:
 * the service answers the first attempt's result.
 *
 * Records returned by decode functions hold views (pointer + length) into the
 * buffer they were decoded from: valid while that buffer is unchanged.
 *
 * Errors (beside transport errors from wire.h): CAIRN_EBUCKET (no such
 * bucket), CAIRN_ENOTFOUND (no such key), CAIRN_EEXIST (bucket owned by
 * someone else), CAIRN_EOWNED (bucket already yours), CAIRN_ENOTEMPTY,
 * CAIRN_ENOSUCHUSER, CAIRN_EINVAL (bad argument, e.g. key too long).
 * When the tier cannot answer within the client's deadline: CAIRN_EUNAVAIL
 * (nothing can have been applied) or CAIRN_ETIMEOUT (a mutation may have
 * been applied; its outcome is unknown).
 */
#ifndef CAIRN_META_H
#define CAIRN_META_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/buf.h"
#include "cairn/frag.h"
#include "cairn/wire.h"

#define CAIRN_MAX_KEY_LEN 1024
#define CAIRN_MAX_BUCKET_LEN 63

enum {
    CAIRN_OP_META_USER_GET = 100,     /* str access_key -> str secret, str owner_id, str display_name */
    CAIRN_OP_META_USER_PUT = 101,     /* str access_key, str secret, str owner_id, str display_name -> empty */
    CAIRN_OP_META_BUCKET_CREATE = 110,/* str bucket, str owner -> empty */
    CAIRN_OP_META_BUCKET_DELETE = 111,/* str bucket, str owner -> empty */
    CAIRN_OP_META_BUCKET_HEAD = 112,  /* str bucket -> bucket record */
    CAIRN_OP_META_BUCKET_LIST = 113,  /* str owner -> u32 n, n x bucket record */
    CAIRN_OP_META_OBJ_PUT = 120,      /* str bucket, bytes key, bytes record -> u8 had_old, [bytes old record] */
    CAIRN_OP_META_OBJ_GET = 121,      /* str bucket, bytes key -> bytes record */
    CAIRN_OP_META_OBJ_DELETE = 122,   /* str bucket, bytes key -> u8 had_old, [bytes old record] */
    CAIRN_OP_META_OBJ_LIST = 123,     /* see cairn_meta_list_req_t -> see cairn_meta_list_t */
    CAIRN_OP_META_OBJ_PUT_MANY = 124, /* str bucket, u32 n, n x (bytes key, bytes record)
                                       * -> u32 n, n x (u8 had_old, [bytes old record]); all or none */
    CAIRN_OP_META_GC_DONE = 130,      /* oid[16] -> empty: the fragments of a superseded version are gone */
    CAIRN_OP_META_GC_LIST = 131,      /* oid[16] after (exclusive), u32 max
                                       * -> u32 n, n x (oid[16], bytes record), u8 more */
    CAIRN_OP_META_STATUS = 180,       /* -> the replica's view, see cairn_meta_status_t */
    CAIRN_OP_META_MEMBER_ADD = 181,   /* u64 id, str addr, str raft_addr -> empty (leader only) */
    CAIRN_OP_META_MEMBER_REMOVE = 182,/* u64 id -> empty (leader only) */
    CAIRN_OP_META_TRANSFER = 183,     /* u64 id (0: any) -> empty: hand leadership over (leader only) */
    CAIRN_OP_META_ONCE = 190,         /* u16 op, id[16], body of op -> the answer of op; id names the
                                       * command across retries (see above) */
};

typedef struct {
    const char *name; size_t name_len;
    const char *owner; size_t owner_len;
    int64_t ctime_ms;
} cairn_bucket_rec_t;

/* One stored object version. */
typedef struct {
    uint8_t oid[16];
    uint64_t size;
    int64_t mtime_ms;
    char etag[72];                      /* quoted form is the gateway's job: "hex" or "hex-N", NUL-terminated */
    uint8_t k, m;
    uint32_t block_size;
    uint32_t nodes[CAIRN_MAX_FRAGS];    /* node id holding fragment i, i < k+m */
    const char *content_type; size_t content_type_len;  /* view */
    /* x-amz-meta-* pairs, encoded as repeated (u16 name_len, name, u16 value_len, value);
     * names lower-case without the "x-amz-meta-" prefix. View. */
    const uint8_t *user_meta; size_t user_meta_len;
    /* Stored system headers (content-encoding, cache-control, x-amz-checksum-*,
     * ...), same pair encoding as user_meta, names lower-case. View. */
    const uint8_t *sys_meta; size_t sys_meta_len;
    /* A completed multipart upload: k = m = 0 and no fragments of its own;
     * the data is the concatenation of nparts parts, each stored like an
     * object (see cairn_obj_part_t). View. */
    uint32_t nparts;
    const uint8_t *parts; size_t parts_len;
    /* A small object stored inside its record (k = m = 0, nparts = 0): the
     * metadata tier replicates it, and no fragment files exist. View. */
    int is_inline;
    const uint8_t *inline_data; size_t inline_len;
} cairn_obj_rec_t;

/* One part of a multipart object, as listed in its record. */
typedef struct {
    uint32_t number;                    /* the client's part number, 1..10000 */
    uint8_t oid[16];
    uint64_t size;
    uint8_t k, m;
    uint32_t block_size;
    uint32_t nodes[CAIRN_MAX_FRAGS];
} cairn_obj_part_t;

/* Append one part entry to a parts encoding (meta_mpu.c). */
void cairn_obj_part_add(cairn_buf_t *b, const cairn_obj_part_t *p);
/* Iterate a parts encoding: *off starts at 0; 1 while parts remain (*p
 * filled), 0 at the end or on a malformed entry (*off then stays). */
int cairn_obj_part_next(const uint8_t *parts, size_t len, size_t *off, cairn_obj_part_t *p);
/* A part as a record of its own (oid, size, k, m, block_size, nodes; no
 * metadata), for the data path and the garbage list. */
void cairn_obj_part_rec(const cairn_obj_part_t *p, cairn_obj_rec_t *r);

/* Records without sys_meta and parts are written in the version 1 encoding
 * (what older readers know); others in version 2. */
void cairn_obj_rec_encode(const cairn_obj_rec_t *r, cairn_buf_t *out);
/* Views point into p. CAIRN_EPROTO on malformed input. */
int cairn_obj_rec_decode(const uint8_t *p, size_t len, cairn_obj_rec_t *r);
/* Append one x-amz-meta pair to a user_meta encoding. */
void cairn_obj_meta_add(cairn_buf_t *b, const char *name, size_t name_len, const char *value, size_t value_len);
/* Iterate user_meta: *off starts at 0; returns 1 and sets the views while pairs remain, 0 at the end. */
int cairn_obj_meta_next(const uint8_t *p, size_t len, size_t *off, const char **name, size_t *name_len,
                        const char **value, size_t *value_len);

typedef struct {
    const char *bucket;
    const char *prefix; size_t prefix_len;
    const char *delimiter; size_t delimiter_len;   /* empty: no grouping */
    const char *start_after; size_t start_after_len; /* exclusive; empty: from the start (continuation token decoded by the caller) */
    uint32_t max_keys;                              /* 0..1000 */
} cairn_meta_list_req_t;

typedef struct {
    const char *key; size_t key_len;
    uint64_t size;
    int64_t mtime_ms;
    const char *etag;  /* NUL-terminated view */
} cairn_meta_list_entry_t;

typedef struct {
    cairn_buf_t raw;                 /* owns the response the views point into */
    cairn_meta_list_entry_t *entries;/* heap, nentries */
    size_t nentries;
    struct { const char *p; size_t len; } *prefixes; /* CommonPrefixes, heap */
    size_t nprefixes;
    int truncated;
    const char *next; size_t next_len; /* last key or prefix returned (the next start_after) when truncated */
} cairn_meta_list_t;

void cairn_meta_list_init(cairn_meta_list_t *l);
void cairn_meta_list_dispose(cairn_meta_list_t *l);

/* The most replicas a client tracks: the configured ones plus one learned
 * from a redirect. */
#define CAIRN_META_MAX_REPLICAS 8

/* A client of the replicated metadata tier. Embedded (init/dispose); one
 * thread at a time, like the connection inside it. */
typedef struct {
    cairn_conn_t conn;       /* to replicas[cur] */
    struct {
        char addr[128];
        int64_t down_until;  /* ms (cairn_now_ms): skipped until then after a failure */
    } replicas[CAIRN_META_MAX_REPLICAS];
    size_t nreplicas;
    size_t cur;
    int timeout_ms;          /* one attempt (connect, answer) */
    int deadline_ms;         /* a whole call, across replicas and elections */
    uint64_t client_id;      /* random; with seq, the command ids of this client */
    uint64_t seq;
} cairn_meta_client_t;

/* addrs: "host:port[,host:port...]" (the [cluster] meta option). key is
 * borrowed. timeout_ms bounds one attempt; a call gives up after
 * max(2 * timeout_ms, 10 s), which must stay well below the 2 minutes the
 * service remembers command ids (so keep timeout_ms under a minute). CAIRN_EINVAL for a malformed list (the client
 * is then usable but has no replica: every call fails). */
int cairn_meta_client_init(cairn_meta_client_t *c, const char *addrs, const cairn_wire_key_t *key, int timeout_ms);
void cairn_meta_client_dispose(cairn_meta_client_t *c);

/* One call of any metadata opcode, with redirects and retries: the response
 * body goes to resp (may be NULL). Returns the response status (0 or the
 * operation's cairn error) or, when no replica answered in time,
 * CAIRN_EUNAVAIL / CAIRN_ETIMEOUT as described at the top. */
int cairn_meta_call(cairn_meta_client_t *c, uint16_t op, uint64_t req_id, const void *body, size_t len,
                    cairn_buf_t *resp);

/* Client calls: blocking, through the client above. `scratch` receives the
 * raw response; returned records point into it. */
int cairn_meta_user_get(cairn_meta_client_t *c, uint64_t req_id, const char *access_key, char *secret, size_t secret_sz,
                        char *owner, size_t owner_sz);
int cairn_meta_user_put(cairn_meta_client_t *c, uint64_t req_id, const char *access_key, const char *secret,
                        const char *owner, const char *display_name);
int cairn_meta_bucket_create(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const char *owner);
int cairn_meta_bucket_delete(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const char *owner);
int cairn_meta_bucket_head(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, cairn_buf_t *scratch,
                           cairn_bucket_rec_t *out);
/* Buckets of an owner, sorted by name: *out is heap (free()), views into scratch. */
int cairn_meta_bucket_list(cairn_meta_client_t *c, uint64_t req_id, const char *owner, cairn_buf_t *scratch,
                           cairn_bucket_rec_t **out, size_t *n);
/* Commit a new version. If a previous version existed, *had_old = 1 and *old
 * is decoded from scratch (the caller removes its fragments, then GC_DONE). */
int cairn_meta_obj_put(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const char *key, size_t key_len,
                       const cairn_obj_rec_t *rec, cairn_buf_t *scratch, int *had_old, cairn_obj_rec_t *old);
int cairn_meta_obj_get(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const char *key, size_t key_len,
                       cairn_buf_t *scratch, cairn_obj_rec_t *out);
/* Commit n versions in one Raft entry: all or none (the first failure is
 * returned). Versions they replace go to the garbage-collection table, as
 * a PUT's do when its gateway dies before removing them; `cairn-admin gc`
 * and the gateways' collector remove their fragments. For bulk loads. */
#define CAIRN_META_PUT_MANY_MAX 1000
int cairn_meta_obj_put_many(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, size_t n,
                            const char *const *keys, const size_t *key_lens, const cairn_obj_rec_t *recs,
                            cairn_buf_t *scratch);
/* Delete: CAIRN_ENOTFOUND is not an error for S3 (the gateway answers 204 anyway). */
int cairn_meta_obj_delete(cairn_meta_client_t *c, uint64_t req_id, const char *bucket, const char *key, size_t key_len,
                          cairn_buf_t *scratch, int *had_old, cairn_obj_rec_t *old);
int cairn_meta_obj_list(cairn_meta_client_t *c, uint64_t req_id, const cairn_meta_list_req_t *q, cairn_meta_list_t *out);
int cairn_meta_gc_done(cairn_meta_client_t *c, uint64_t req_id, const uint8_t oid[16]);

/* ---- Encodings shared by the client (here) and the service (metadata/). ----
 *
 * Bucket record: str name, str owner, u64 ctime_ms.
 * OBJ_LIST request: str bucket, bytes prefix, bytes delimiter, bytes start_after, u32 max_keys.
 * OBJ_LIST response:
 *   u32 n, n x (bytes key, u64 size, u64 mtime_ms, bytes etag including its NUL),
 *   u32 np, np x bytes prefix,
 *   u8 truncated, bytes next.
 */
void cairn_bucket_rec_encode(const cairn_bucket_rec_t *r, cairn_buf_t *out);
/* Read one bucket record from d (views into d's buffer); CAIRN_EPROTO if malformed. */
int cairn_bucket_rec_decode(cairn_dec_t *d, cairn_bucket_rec_t *r);

void cairn_meta_list_req_encode(const cairn_meta_list_req_t *q, cairn_buf_t *out);
/* Views into p, except q->bucket, which points to `bucket` (copied, NUL-terminated).
 * CAIRN_EPROTO if malformed, CAIRN_EINVAL if the bucket name is empty, too long or holds a NUL. */
int cairn_meta_list_req_decode(const uint8_t *p, size_t n, cairn_meta_list_req_t *q,
                               char bucket[CAIRN_MAX_BUCKET_LEN + 1]);
/* Parse l->raw (an OBJ_LIST response body) into l's entries and prefixes;
 * frees the arrays of a previous parse. CAIRN_EPROTO if malformed. */
int cairn_meta_list_decode(cairn_meta_list_t *l);

/* One superseded version waiting for its fragments to be deleted. */
typedef struct {
    uint8_t oid[16];
    cairn_obj_rec_t rec; /* views into the scratch buffer */
} cairn_meta_gc_entry_t;

/* Up to max entries of the garbage list with oid > after (all-zero: from the
 * start), in oid order. *out is heap (free()), views into scratch; *more is 1
 * when entries remain past the last one returned. */
int cairn_meta_gc_list(cairn_meta_client_t *c, uint64_t req_id, const uint8_t after[16], uint32_t max, cairn_buf_t *scratch,
                       cairn_meta_gc_entry_t **out, size_t *n, int *more);

/* ---- Replica status (CAIRN_OP_META_STATUS) ---- */

enum { CAIRN_META_ROLE_UNAVAILABLE, CAIRN_META_ROLE_FOLLOWER, CAIRN_META_ROLE_CANDIDATE, CAIRN_META_ROLE_LEADER };
enum { CAIRN_META_MEMBER_STANDBY, CAIRN_META_MEMBER_VOTER, CAIRN_META_MEMBER_SPARE };
#define CAIRN_META_MAX_MEMBERS 16

/* One replica's view of the group. Encoding: u64 id, u8 role, u64 term,
 * u64 commit, u64 applied, u64 last_index, u64 fsm_applied,
 * u64 snapshot_index, u64 leader_id, str leader_addr, u32 n,
 * n x (u64 id, u8 kind, str raft_addr, str addr). */
typedef struct {
    uint64_t id;
    int role;                 /* CAIRN_META_ROLE_* */
    uint64_t term;
    uint64_t commit;          /* highest entry known committed */
    uint64_t applied;         /* highest entry applied here */
    uint64_t last_index;      /* highest entry in the local log */
    uint64_t fsm_applied;     /* highest command entry in LMDB (barriers and configuration
                               * entries are applied without touching it) */
    uint64_t snapshot_index;  /* last snapshot taken or installed here */
    uint64_t leader_id;       /* 0: none known */
    char leader_addr[128];
    uint64_t lease_reads;     /* reads served under the leader's lease (this process; not encoded) */
    uint64_t barrier_reads;   /* reads that waited for a barrier entry (this process; not encoded) */
    size_t nmembers;
    struct {
        uint64_t id;
        int kind;             /* CAIRN_META_MEMBER_* */
        char raft_addr[128];
        char addr[128];       /* service address; empty if unknown */
    } members[CAIRN_META_MAX_MEMBERS];
} cairn_meta_status_t;

void cairn_meta_status_encode(const cairn_meta_status_t *st, cairn_buf_t *out);
/* CAIRN_EPROTO if malformed (too many members, strings of 128 bytes or more). */
int cairn_meta_status_decode(const uint8_t *p, size_t len, cairn_meta_status_t *st);
const char *cairn_meta_role_name(int role);

#endif
