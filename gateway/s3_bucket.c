/*
 * s3_bucket.c — bucket operations and listings (worker side):
 * ListBuckets, CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation,
 * ListObjects (v1) and ListObjectsV2; bucket name rules, and the bucket a
 * virtual-hosted-style Host names (called by http.c on the loop thread).
 */
#include <ctype.h>
#include <openssl/evp.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cairn/err.h"
#include "cairn/uri.h"
#include "cairn/xml.h"
#include "gw.h"
#include "s3_ext.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"

int s3_bucket_name_valid(const char *s, size_t len)
{
    if (len < 3 || len > 63)
        return 0;
    if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[len - 1]))
        return 0;
    int digits_dots = 1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '.' || c == '-'))
            return 0;
        if (c == '.' && (s[i + 1] == '.' || s[i + 1] == '-' || (i > 0 && s[i - 1] == '-')))
            return 0;
        if (!(isdigit((unsigned char)c) || c == '.'))
            digits_dots = 0;
    }
    if (digits_dots) /* looks like an IPv4 address */
        return 0;
    if (len > 4 && memcmp(s, "xn--", 4) == 0)
        return 0;
    if (len > 8 && memcmp(s + len - 8, "-s3alias", 8) == 0)
        return 0;
    return 1;
}

/* Virtual-hosted-style addressing: Host "bucket.domain[:port]" names the
 * bucket, for the longest domain of the comma-separated list that the host
 * ends with (case-insensitive), so "s3.localhost" is a domain and not the
 * bucket "s3" under "localhost" when both are listed. A host equal to a
 * domain, or under none of them (an IP address, another name), is path
 * style. The bucket is the whole part before ".domain", dots included. */
int s3_vhost_bucket(const char *domains, const char *host, size_t hlen, char bucket[CAIRN_MAX_BUCKET_LEN + 1])
{
    const char *rb = memrchr(host, ']', hlen), *colon = memrchr(host, ':', hlen);
    if (colon && (rb == NULL || colon > rb))
        hlen = (size_t)(colon - host); /* drop the port */
    while (hlen > 0 && host[hlen - 1] == '.')
        hlen--; /* "bucket.example.com." is the same name */
    size_t best = 0; /* length of the longest matching domain */
    int exact = 0;
    for (const char *d = domains; *d;) {
        const char *e = strchr(d, ',');
        size_t dlen = e ? (size_t)(e - d) : strlen(d);
        if (dlen > best && dlen <= hlen && strncasecmp(host + hlen - dlen, d, dlen) == 0 &&
            (dlen == hlen || host[hlen - dlen - 1] == '.')) {
            best = dlen;
            exact = dlen == hlen;
        }
        d += dlen + (e != NULL);
    }
    if (best == 0 || exact)
        return 0;
    size_t blen = hlen - best - 1;
    if (blen == 0 || blen > CAIRN_MAX_BUCKET_LEN)
        return -1;
    memcpy(bucket, host, blen);
    bucket[blen] = '\0';
    return (int)blen;
}

void s3_time_iso(int64_t ms, char out[64])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static void list_buckets(gw_worker_t *w, gw_job_t *job)
{
    cairn_bucket_rec_t *bs = NULL;
    size_t n = 0;
    int rc = cairn_meta_bucket_list(&w->meta, job->req_id, job->owner, &w->scratch, &bs, &n);
    if (rc != 0) {
        s3_error_from(job, rc);
        return;
    }
    cairn_buf_t *b = &job->resp_body;
    cairn_xml_begin(b);
    cairn_xml_open_ns(b, "ListAllMyBucketsResult", S3_NS);
    s3_xml_owner(b, "Owner", job->owner, strlen(job->owner));
    cairn_xml_open(b, "Buckets");
    for (size_t i = 0; i < n; i++) {
        char t[64];
        s3_time_iso(bs[i].ctime_ms, t);
        cairn_xml_open(b, "Bucket");
        cairn_xml_elem(b, "Name", bs[i].name, bs[i].name_len);
        cairn_xml_elem(b, "CreationDate", t, strlen(t));
        cairn_xml_close(b, "Bucket");
    }
    cairn_xml_close(b, "Buckets");
    cairn_xml_close(b, "ListAllMyBucketsResult");
    free(bs);
    job->status = 200;
}

static void list_objects(gw_worker_t *w, gw_job_t *job, int v2)
{
    char *prefix, *delim, *marker, *maxkeys, *enc, *token, *start_after, *fetch_owner;
    size_t prefix_len, delim_len, marker_len, mk_len, enc_len, token_len, sa_len, fo_len;
    char *decoded_token = NULL;
    cairn_meta_list_t l;
    cairn_meta_list_init(&l);
    if (s3_param(job, "prefix", &prefix, &prefix_len) | s3_param(job, "delimiter", &delim, &delim_len) |
        s3_param(job, "marker", &marker, &marker_len) | s3_param(job, "max-keys", &maxkeys, &mk_len) |
        s3_param(job, "encoding-type", &enc, &enc_len) | s3_param(job, "continuation-token", &token, &token_len) |
        s3_param(job, "start-after", &start_after, &sa_len) | s3_param(job, "fetch-owner", &fetch_owner, &fo_len)) {
        s3_error(job, "InvalidArgument", "Invalid query parameter encoding.");
        goto out;
    }
    long max_keys = 1000;
    if (maxkeys) {
        char *endp;
        max_keys = strtol(maxkeys, &endp, 10);
        if (mk_len == 0 || *endp != '\0' || max_keys < 0) {
            s3_error(job, "InvalidArgument", "Provided max-keys not an integer or within integer range");
            goto out;
        }
        if (max_keys > 1000)
            max_keys = 1000;
    }
    int url = 0;
    if (enc) {
        if (strcmp(enc, "url") != 0) {
            s3_error(job, "InvalidArgument", "Invalid Encoding Method specified in Request");
            goto out;
        }
        url = 1;
    }
    cairn_meta_list_req_t q = {.bucket = job->bucket, .max_keys = (uint32_t)max_keys};
    q.prefix = prefix ? prefix : "";
    q.prefix_len = prefix_len;
    q.delimiter = delim ? delim : "";
    q.delimiter_len = delim_len;
    if (v2 && token) {
        decoded_token = cairn_malloc(token_len + 4);
        int n = EVP_DecodeBlock((unsigned char *)decoded_token, (const unsigned char *)token, (int)token_len);
        if (token_len == 0 || token_len % 4 != 0 || n < 0) {
            s3_error(job, "InvalidArgument", "The continuation token provided is incorrect");
            goto out;
        }
        /* EVP_DecodeBlock counts padding bytes as zeros: drop them. */
        while (n > 0 && token[--token_len] == '=')
            n--;
        q.start_after = decoded_token;
        q.start_after_len = (size_t)n;
    } else if (v2 && start_after) {
        q.start_after = start_after;
        q.start_after_len = sa_len;
    } else if (!v2 && marker) {
        q.start_after = marker;
        q.start_after_len = marker_len;
    } else {
        q.start_after = "";
    }
    int rc = cairn_meta_obj_list(&w->meta, job->req_id, &q, &l);
    if (rc != 0) {
        s3_error_from(job, rc);
        goto out;
    }

    cairn_buf_t *b = &job->resp_body;
    cairn_xml_begin(b);
    cairn_xml_open_ns(b, "ListBucketResult", S3_NS);
    cairn_xml_elem(b, "Name", job->bucket, strlen(job->bucket));
    s3_xml_key(b, "Prefix", q.prefix, q.prefix_len, url);
    if (v2) {
        if (token)
            cairn_xml_elem(b, "ContinuationToken", token, strlen(token));
        if (start_after)
            s3_xml_key(b, "StartAfter", start_after, sa_len, url);
    } else {
        s3_xml_key(b, "Marker", marker ? marker : "", marker_len, url);
    }
    if (delim)
        s3_xml_key(b, "Delimiter", delim, delim_len, url);
    cairn_xml_elemf(b, "MaxKeys", "%ld", max_keys);
    if (url)
        cairn_xml_elem(b, "EncodingType", "url", 3);
    if (v2)
        cairn_xml_elemf(b, "KeyCount", "%zu", l.nentries + l.nprefixes);
    cairn_xml_elem(b, "IsTruncated", l.truncated ? "true" : "false", l.truncated ? 4 : 5);
    if (l.truncated && v2) {
        char *tok = cairn_malloc(4 * (l.next_len / 3 + 1) + 1);
        int n = EVP_EncodeBlock((unsigned char *)tok, (const unsigned char *)l.next, (int)l.next_len);
        cairn_xml_elem(b, "NextContinuationToken", tok, (size_t)n);
        free(tok);
    } else if (l.truncated) {
        s3_xml_key(b, "NextMarker", l.next, l.next_len, url);
    }
    int owner = !v2 || (fetch_owner && strcmp(fetch_owner, "true") == 0);
    for (size_t i = 0; i < l.nentries; i++) {
        const cairn_meta_list_entry_t *e = &l.entries[i];
        char t[64];
        s3_time_iso(e->mtime_ms, t);
        cairn_xml_open(b, "Contents");
        s3_xml_key(b, "Key", e->key, e->key_len, url);
        cairn_xml_elem(b, "LastModified", t, strlen(t));
        cairn_xml_elemf(b, "ETag", "\"%s\"", e->etag);
        cairn_xml_elemf(b, "Size", "%llu", (unsigned long long)e->size);
        if (owner) {
            s3_xml_owner(b, "Owner", job->owner, strlen(job->owner));
        }
        cairn_xml_elem(b, "StorageClass", "STANDARD", 8);
        cairn_xml_close(b, "Contents");
    }
    for (size_t i = 0; i < l.nprefixes; i++) {
        cairn_xml_open(b, "CommonPrefixes");
        s3_xml_key(b, "Prefix", l.prefixes[i].p, l.prefixes[i].len, url);
        cairn_xml_close(b, "CommonPrefixes");
    }
    cairn_xml_close(b, "ListBucketResult");
    job->status = 200;
out:
    cairn_meta_list_dispose(&l);
    free(prefix);
    free(delim);
    free(marker);
    free(maxkeys);
    free(enc);
    free(token);
    free(start_after);
    free(fetch_owner);
    free(decoded_token);
}

void s3_bucket_step(gw_worker_t *w, gw_job_t *job)
{
    if (s3_auth(w, job, NULL) != 0)
        return;
    size_t blen = strlen(job->bucket);
    int rc;
    switch (job->op) {
    case S3_OP_LIST_BUCKETS:
        list_buckets(w, job);
        return;
    case S3_OP_CREATE_BUCKET:
        if (!s3_bucket_name_valid(job->bucket, blen)) {
            s3_error(job, "InvalidBucketName", NULL);
            return;
        }
        rc = cairn_meta_bucket_create(&w->meta, job->req_id, job->bucket, job->owner);
        if (rc != 0) {
            s3_error_from(job, rc);
            return;
        }
        gw_job_header(job, "location", "/%s", job->bucket);
        job->status = 200;
        return;
    case S3_OP_DELETE_BUCKET:
        rc = cairn_meta_bucket_delete(&w->meta, job->req_id, job->bucket, job->owner);
        if (rc != 0) {
            s3_error_from(job, rc);
            return;
        }
        s3_bucket_forget(w, job->bucket);
        job->status = 204;
        return;
    case S3_OP_HEAD_BUCKET:
    case S3_OP_GET_BUCKET_LOCATION: {
        cairn_bucket_rec_t br;
        rc = cairn_meta_bucket_head(&w->meta, job->req_id, job->bucket, &w->scratch, &br);
        if (rc != 0) {
            s3_error_from(job, rc);
            return;
        }
        job->status = 200;
        gw_job_header(job, "x-amz-bucket-region", "%s", w->gw->cfg.region);
        if (job->op == S3_OP_GET_BUCKET_LOCATION) {
            cairn_buf_t *b = &job->resp_body;
            cairn_xml_begin(b);
            cairn_buf_appendf(b, "<LocationConstraint xmlns=\"%s\">", S3_NS);
            if (strcmp(w->gw->cfg.region, "us-east-1") != 0)
                cairn_xml_escape(b, w->gw->cfg.region, strlen(w->gw->cfg.region));
            cairn_buf_appendf(b, "</LocationConstraint>");
        }
        return;
    }
    case S3_OP_LIST_OBJECTS:
    case S3_OP_LIST_OBJECTS_V2:
        list_objects(w, job, job->op == S3_OP_LIST_OBJECTS_V2);
        return;
    default:
        s3_error(job, "NotImplemented", NULL);
        return;
    }
}
