/*
 * sigv4.c — AWS Signature Version 4 verification for S3 requests.
 *
 * The work splits in two. parse() reads the credentials out of the
 * Authorization header or the presigned query and checks their syntax; it
 * never needs the secret, so the gateway can look the access key up in
 * between. verify() rebuilds the canonical request
 *
 *     METHOD \n CANONICAL-URI \n CANONICAL-QUERY \n
 *     name:value \n ... \n        (one line per signed header)
 *     \n SIGNED-HEADERS \n PAYLOAD-HASH
 *
 * hashes it into the string to sign, and HMACs that with the key derived
 * from the secret. Because clients canonicalise differently (see sigv4.h),
 * verify() tries a few candidate canonical requests — at most eight, one
 * SHA-256 and one HMAC each — and accepts the first whose HMAC matches.
 *
 * Everything a call builds lives in small heap buffers freed before it
 * returns; there is no global state.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cairn/err.h"
#include "cairn/sigv4.h"
#include "cairn/uri.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ALGORITHM "AWS4-HMAC-SHA256"

/* ---- errors ------------------------------------------------------------ */

const char *cairn_sigv4_strerror(int err)
{
    switch (err) {
    case CAIRN_SIGV4_ESIGNATURE: return "CAIRN_SIGV4_ESIGNATURE";
    case CAIRN_SIGV4_EEXPIRED: return "CAIRN_SIGV4_EEXPIRED";
    case CAIRN_SIGV4_ENOTYET: return "CAIRN_SIGV4_ENOTYET";
    case CAIRN_SIGV4_ESKEW: return "CAIRN_SIGV4_ESKEW";
    case CAIRN_SIGV4_EHEADER: return "CAIRN_SIGV4_EHEADER";
    case CAIRN_SIGV4_EQUERY: return "CAIRN_SIGV4_EQUERY";
    case CAIRN_SIGV4_EARGUMENT: return "CAIRN_SIGV4_EARGUMENT";
    case CAIRN_SIGV4_EMECHANISM: return "CAIRN_SIGV4_EMECHANISM";
    case CAIRN_SIGV4_EDATE: return "CAIRN_SIGV4_EDATE";
    case CAIRN_SIGV4_ECONTENTSHA: return "CAIRN_SIGV4_ECONTENTSHA";
    case CAIRN_SIGV4_EUNSIGNED: return "CAIRN_SIGV4_EUNSIGNED";
    default: return cairn_strerror(err);
    }
}

const char *cairn_sigv4_s3_error(int err, int *http_status, const char **message)
{
    int status = 403;
    const char *code = "AccessDenied", *msg = "Access Denied";

    switch (err) {
    case CAIRN_SIGV4_ESIGNATURE:
        code = "SignatureDoesNotMatch";
        msg = "The request signature we calculated does not match the signature you provided. Check your key and "
              "signing method.";
        break;
    case CAIRN_SIGV4_EEXPIRED: msg = "Request has expired"; break;
    case CAIRN_SIGV4_ENOTYET: msg = "Request is not valid yet"; break;
    case CAIRN_SIGV4_ESKEW:
        code = "RequestTimeTooSkewed";
        msg = "The difference between the request time and the current time is too large.";
        break;
    case CAIRN_SIGV4_EHEADER:
        status = 400;
        code = "AuthorizationHeaderMalformed";
        msg = "The authorization header is malformed.";
        break;
    case CAIRN_SIGV4_EQUERY:
        status = 400;
        code = "AuthorizationQueryParametersError";
        msg = "Error parsing the X-Amz-Credential parameter.";
        break;
    case CAIRN_SIGV4_EARGUMENT:
        status = 400;
        code = "InvalidArgument";
        msg = "Invalid argument.";
        break;
    case CAIRN_SIGV4_EMECHANISM:
        status = 400;
        code = "InvalidRequest";
        msg = "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.";
        break;
    case CAIRN_SIGV4_EDATE: msg = "AWS authentication requires a valid Date or x-amz-date header"; break;
    case CAIRN_SIGV4_ECONTENTSHA:
        status = 400;
        code = "XAmzContentSHA256Mismatch";
        msg = "The provided 'x-amz-content-sha256' header does not match what was computed.";
        break;
    case CAIRN_SIGV4_EUNSIGNED: msg = "There were headers present in the request which were not signed"; break;
    default: break;
    }
    if (http_status != NULL)
        *http_status = status;
    if (message != NULL)
        *message = msg;
    return code;
}

/* ---- small helpers ------------------------------------------------------ */

/* Growable byte buffer, always NUL-terminated once anything was put. */
typedef struct {
    char *p;
    size_t len, cap;
} sbuf_t;

static void sb_reserve(sbuf_t *b, size_t more)
{
    if (b->len + more + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + more + 1)
            cap *= 2;
        b->p = cairn_realloc(b->p, cap);
        b->cap = cap;
    }
}

static void sb_put(sbuf_t *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf_t *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_putc(sbuf_t *b, char c)
{
    sb_put(b, &c, 1);
}

static int sb_equal(const sbuf_t *a, const sbuf_t *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

static void sb_free(sbuf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static int ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

static int is_hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_ws(int c)
{
    return c == ' ' || c == '\t';
}

static void to_hex(const uint8_t *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256(const void *data, size_t len, uint8_t out[32])
{
    unsigned int olen = 32;
    CAIRN_ASSERT(EVP_Digest(data, len, out, &olen, EVP_sha256(), NULL) == 1);
}

static void hmac(const uint8_t *key, size_t keylen, const void *data, size_t len, uint8_t out[32])
{
    unsigned int olen = 32;
    CAIRN_ASSERT(HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &olen) != NULL && olen == 32);
}

/* Copy s[0..n) into dst[dstsz] as a C string; 0, or -1 if it does not fit or holds a NUL. */
static int copy_str(char *dst, size_t dstsz, const char *s, size_t n)
{
    if (n + 1 > dstsz || memchr(s, '\0', n) != NULL)
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

/* Trim spaces and tabs at both ends of [*s, *s+*n). */
static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_ws((unsigned char)(*s)[0])) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_ws((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

/* ---- time ---------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int make_time(int y, int mo, int d, int h, int mi, int s, time_t *t)
{
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60)
        return -1;
    *t = (time_t)(days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s);
    return 0;
}

/* "20130524T000000Z" -> seconds. Exactly 16 characters. */
static int parse_amz_date(const char *s, size_t n, time_t *t)
{
    int y, mo, d, h, mi, sec;
    if (n != 16 || s[8] != 'T' || s[15] != 'Z' || digits(s, 4, &y) || digits(s + 4, 2, &mo) || digits(s + 6, 2, &d) ||
        digits(s + 9, 2, &h) || digits(s + 11, 2, &mi) || digits(s + 13, 2, &sec))
        return -1;
    return make_time(y, mo, d, h, mi, sec, t);
}

/* RFC 1123 "Fri, 24 May 2013 00:00:00 GMT" -> seconds; writes the x-amz-date form into amz[17]. */
static int parse_http_date(const char *s, size_t n, time_t *t, char amz[17])
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int y, mo = 0, d, h, mi, sec;

    /* "Www, DD Mon YYYY HH:MM:SS GMT" is 29 bytes */
    if (n != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[19] != ':' ||
        s[22] != ':' || s[25] != ' ' || memcmp(s + 26, "GMT", 3) != 0)
        return -1;
    for (int i = 0; i < 12; i++)
        if (memcmp(s + 8, months + 3 * i, 3) == 0)
            mo = i + 1;
    if (mo == 0 || digits(s + 5, 2, &d) || digits(s + 12, 4, &y) || digits(s + 17, 2, &h) || digits(s + 20, 2, &mi) ||
        digits(s + 23, 2, &sec) || make_time(y, mo, d, h, mi, sec, t))
        return -1;
    /* every field was checked to be digits, so copy them rather than format */
    memcpy(amz, s + 12, 4);
    amz[4] = (char)('0' + mo / 10);
    amz[5] = (char)('0' + mo % 10);
    memcpy(amz + 6, s + 5, 2);
    amz[8] = 'T';
    memcpy(amz + 9, s + 17, 2);
    memcpy(amz + 11, s + 20, 2);
    memcpy(amz + 13, s + 23, 2);
    amz[15] = 'Z';
    amz[16] = '\0';
    return 0;
}

/* ---- request access ------------------------------------------------------- */

/* The only header called name, or NULL; *count gets how many there are. */
static const cairn_sigv4_header_t *find_header(const cairn_sigv4_request_t *rq, const char *name, int *count)
{
    const cairn_sigv4_header_t *found = NULL;
    size_t nlen = strlen(name);
    *count = 0;
    for (size_t i = 0; i < rq->nheaders; i++) {
        if (ieq(rq->headers[i].name, rq->headers[i].name_len, name, nlen)) {
            if (found == NULL)
                found = &rq->headers[i];
            (*count)++;
        }
    }
    return found;
}

/* Next non-empty '&' piece of the query at *pos; 0 when there are no more. */
static int next_pair(const char *q, size_t len, size_t *pos, cairn_query_param_t *p)
{
    while (*pos < len) {
        size_t start = *pos;
        const char *amp = memchr(q + start, '&', len - start);
        size_t end = amp ? (size_t)(amp - q) : len;
        *pos = end + 1;
        if (end > start) {
            cairn_query_parse(q + start, end - start, p, 1);
            return 1;
        }
    }
    return 0;
}

/* Is the raw (percent-encoded) name exactly the auth parameter want once decoded? */
static int name_is(const cairn_query_param_t *p, const char *want)
{
    char buf[64];
    size_t n;
    if (p->name_len >= sizeof(buf) || cairn_uri_decode(p->name, p->name_len, buf, &n, 0) != 0)
        return 0;
    return n == strlen(want) && memcmp(buf, want, n) == 0;
}

/* How many query parameters are named want; the first is stored in *first. */
static int query_find(const cairn_sigv4_request_t *rq, const char *want, cairn_query_param_t *first)
{
    cairn_query_param_t p;
    size_t pos = 0;
    int count = 0;
    while (next_pair(rq->raw_query, rq->raw_query_len, &pos, &p)) {
        if (name_is(&p, want)) {
            if (count++ == 0 && first != NULL)
                *first = p;
        }
    }
    return count;
}

/* ---- parse ------------------------------------------------------------------ */

static int fail(cairn_sigv4_auth_t *auth, int err, const char *reason)
{
    auth->reason = reason;
    return err;
}

/* "AK/YYYYMMDD/region/s3/aws4_request", split from the right so an access key may contain '/'. */
static int parse_credential(cairn_sigv4_auth_t *auth, const char *s, size_t n, int err)
{
    const char *part[5];
    size_t plen[5];
    size_t end = n;

    for (int i = 4; i > 0; i--) {
        size_t j = end;
        while (j > 0 && s[j - 1] != '/')
            j--;
        if (j == 0)
            return fail(auth, err,
                        "Credential is malformed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".");
        part[i] = s + j;
        plen[i] = end - j;
        end = j - 1;
    }
    part[0] = s;
    plen[0] = end;
    if (plen[0] == 0 || copy_str(auth->access_key, sizeof(auth->access_key), part[0], plen[0]) != 0)
        return fail(auth, err, "Credential access key is empty or too long.");
    int dummy;
    if (plen[1] != 8 || digits(part[1], 8, &dummy) != 0)
        return fail(auth, err, "Credential date must be in YYYYMMDD format.");
    memcpy(auth->date, part[1], 8);
    auth->date[8] = '\0';
    if (plen[2] == 0 || copy_str(auth->region, sizeof(auth->region), part[2], plen[2]) != 0)
        return fail(auth, err, "Credential region is empty or too long.");
    if (copy_str(auth->service, sizeof(auth->service), part[3], plen[3]) != 0 || strcmp(auth->service, "s3") != 0)
        return fail(auth, err, "Credential should be scoped to correct service: 's3'.");
    if (plen[4] != 12 || memcmp(part[4], "aws4_request", 12) != 0)
        return fail(auth, err, "Credential should be scoped with a valid terminator: 'aws4_request'.");
    snprintf(auth->scope, sizeof(auth->scope), "%s/%s/%s/aws4_request", auth->date, auth->region, auth->service);
    return 0;
}

/* "host;range;x-amz-date": non-empty names, no blanks, and host among them. */
static int parse_signed_headers(cairn_sigv4_auth_t *auth, const char *s, size_t n, int err)
{
    int has_host = 0;
    size_t i = 0;

    if (n == 0 || copy_str(auth->signed_headers, sizeof(auth->signed_headers), s, n) != 0)
        return fail(auth, err, "SignedHeaders is empty or too long.");
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != ';') {
            unsigned char c = (unsigned char)s[j];
            if (c <= ' ' || c >= 0x7f || c == ':' || c == ',')
                return fail(auth, err, "SignedHeaders contains an invalid character.");
            j++;
        }
        if (j == i)
            return fail(auth, err, "SignedHeaders contains an empty header name.");
        if (ieq(s + i, j - i, "host", 4))
            has_host = 1;
        i = j + 1;
    }
    if (!has_host)
        return fail(auth, err, "SignedHeaders must include host.");
    return 0;
}

static int parse_signature(cairn_sigv4_auth_t *auth, const char *s, size_t n, int err)
{
    if (n != 64)
        return fail(auth, err, "Signature must be 64 hexadecimal characters.");
    for (size_t i = 0; i < 64; i++) {
        if (!is_hex((unsigned char)s[i]))
            return fail(auth, err, "Signature must be 64 hexadecimal characters.");
        auth->signature[i] = (char)lower((unsigned char)s[i]);
    }
    auth->signature[64] = '\0';
    return 0;
}

/* x-amz-content-sha256, if present: validated and classified. */
static int parse_content_sha(const cairn_sigv4_request_t *rq, cairn_sigv4_auth_t *auth)
{
    static const struct {
        const char *value;
        cairn_sigv4_payload_t kind;
    } literals[] = {
        {"UNSIGNED-PAYLOAD", CAIRN_SIGV4_PAYLOAD_UNSIGNED},
        {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", CAIRN_SIGV4_PAYLOAD_STREAMING},
        {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", CAIRN_SIGV4_PAYLOAD_STREAMING_TRAILER},
        {"STREAMING-UNSIGNED-PAYLOAD-TRAILER", CAIRN_SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER},
    };
    static const char *bad = "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
                             "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, or a "
                             "valid sha256 value.";
    int count;
    const cairn_sigv4_header_t *h = find_header(rq, "x-amz-content-sha256", &count);

    if (h == NULL)
        return 0;
    if (count > 1)
        return fail(auth, CAIRN_SIGV4_EARGUMENT, "x-amz-content-sha256 appears more than once.");
    const char *v = h->value;
    size_t n = h->value_len;
    trim(&v, &n);
    for (size_t i = 0; i < sizeof(literals) / sizeof(literals[0]); i++) {
        if (n == strlen(literals[i].value) && memcmp(v, literals[i].value, n) == 0) {
            memcpy(auth->content_sha256, v, n);
            auth->content_sha256[n] = '\0';
            auth->payload = literals[i].kind;
            auth->unsigned_payload = literals[i].kind == CAIRN_SIGV4_PAYLOAD_UNSIGNED;
            return 0;
        }
    }
    if (n != 64)
        return fail(auth, CAIRN_SIGV4_EARGUMENT, bad);
    for (size_t i = 0; i < 64; i++)
        if (!is_hex((unsigned char)v[i]))
            return fail(auth, CAIRN_SIGV4_EARGUMENT, bad);
    memcpy(auth->content_sha256, v, 64);
    auth->content_sha256[64] = '\0';
    auth->payload = CAIRN_SIGV4_PAYLOAD_HEX;
    return 0;
}

static int parse_header_auth(const cairn_sigv4_request_t *rq, cairn_sigv4_auth_t *auth, const cairn_sigv4_header_t *h)
{
    const char *s = h->value, *end = h->value + h->value_len;
    int have_cred = 0, have_sh = 0, have_sig = 0, rc;

    while (s < end && is_ws((unsigned char)*s))
        s++;
    const char *alg = s;
    while (s < end && !is_ws((unsigned char)*s))
        s++;
    size_t alen = (size_t)(s - alg);
    if (!(alen == strlen(ALGORITHM) && memcmp(alg, ALGORITHM, alen) == 0)) {
        if ((alen == 3 && memcmp(alg, "AWS", 3) == 0) || (alen > 10 && memcmp(alg, "AWS4-ECDSA", 10) == 0))
            return fail(auth, CAIRN_SIGV4_EMECHANISM,
                        "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.");
        return fail(auth, CAIRN_SIGV4_EARGUMENT, "Unsupported Authorization Type");
    }

    /* Credential=..., SignedHeaders=..., Signature=... in any order, each once */
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *item = s;
        size_t ilen = (size_t)((comma ? comma : end) - s);
        s = comma ? comma + 1 : end;
        trim(&item, &ilen);
        if (ilen == 0)
            continue;
        const char *eq = memchr(item, '=', ilen);
        if (eq == NULL)
            return fail(auth, CAIRN_SIGV4_EHEADER, "The authorization header is malformed; a component has no '='.");
        size_t klen = (size_t)(eq - item);
        const char *val = eq + 1;
        size_t vlen = ilen - klen - 1;
        trim(&val, &vlen);
        if (klen == 10 && memcmp(item, "Credential", 10) == 0) {
            if (have_cred++)
                return fail(auth, CAIRN_SIGV4_EHEADER, "The authorization header has Credential twice.");
            if ((rc = parse_credential(auth, val, vlen, CAIRN_SIGV4_EHEADER)) != 0)
                return rc;
        } else if (klen == 13 && memcmp(item, "SignedHeaders", 13) == 0) {
            if (have_sh++)
                return fail(auth, CAIRN_SIGV4_EHEADER, "The authorization header has SignedHeaders twice.");
            if ((rc = parse_signed_headers(auth, val, vlen, CAIRN_SIGV4_EHEADER)) != 0)
                return rc;
        } else if (klen == 9 && memcmp(item, "Signature", 9) == 0) {
            if (have_sig++)
                return fail(auth, CAIRN_SIGV4_EHEADER, "The authorization header has Signature twice.");
            if ((rc = parse_signature(auth, val, vlen, CAIRN_SIGV4_EHEADER)) != 0)
                return rc;
        } else {
            return fail(auth, CAIRN_SIGV4_EHEADER, "The authorization header has an unknown component.");
        }
    }
    if (!have_cred)
        return fail(auth, CAIRN_SIGV4_EHEADER, "The authorization header is malformed; missing Credential.");
    if (!have_sh)
        return fail(auth, CAIRN_SIGV4_EHEADER, "The authorization header is malformed; missing SignedHeaders.");
    if (!have_sig)
        return fail(auth, CAIRN_SIGV4_EHEADER, "The authorization header is malformed; missing Signature.");

    /* the request time: x-amz-date, else Date */
    int count;
    const cairn_sigv4_header_t *d = find_header(rq, "x-amz-date", &count);
    if (d != NULL) {
        const char *v = d->value;
        size_t n = d->value_len;
        trim(&v, &n);
        if (count > 1 || parse_amz_date(v, n, &auth->request_time) != 0)
            return fail(auth, CAIRN_SIGV4_EDATE, "AWS authentication requires a valid Date or x-amz-date header");
        memcpy(auth->amz_date, v, 16);
        auth->amz_date[16] = '\0';
    } else {
        d = find_header(rq, "date", &count);
        const char *v = d ? d->value : NULL;
        size_t n = d ? d->value_len : 0;
        if (d != NULL)
            trim(&v, &n);
        if (d == NULL || count > 1 || parse_http_date(v, n, &auth->request_time, auth->amz_date) != 0)
            return fail(auth, CAIRN_SIGV4_EDATE, "AWS authentication requires a valid Date or x-amz-date header");
    }
    if (memcmp(auth->date, auth->amz_date, 8) != 0)
        return fail(auth, CAIRN_SIGV4_EHEADER, "Invalid credential date. Date is not the same as X-Amz-Date.");
    return parse_content_sha(rq, auth);
}

/* Decode one presigned parameter that must appear exactly once. */
static int query_param(const cairn_sigv4_request_t *rq, cairn_sigv4_auth_t *auth, const char *name, char *out,
                       size_t outsz, size_t *outlen)
{
    cairn_query_param_t p;
    int n = query_find(rq, name, &p);
    if (n == 0)
        return fail(auth, CAIRN_SIGV4_EQUERY,
                    "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
                    "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.");
    if (n > 1)
        return fail(auth, CAIRN_SIGV4_EQUERY, "An X-Amz-* authentication parameter appears more than once.");
    if (p.value_len + 1 > outsz || cairn_uri_decode(p.value, p.value_len, out, outlen, 0) != 0)
        return fail(auth, CAIRN_SIGV4_EQUERY, "An X-Amz-* authentication parameter is too long or badly encoded.");
    out[*outlen] = '\0';
    return 0;
}

static int parse_query_auth(const cairn_sigv4_request_t *rq, cairn_sigv4_auth_t *auth)
{
    char alg[32], cred[512], date[32], exp[32], sig[80];
    char *sh = cairn_malloc(CAIRN_SIGV4_SIGNED_HEADERS_MAX);
    size_t alen, clen, dlen, elen, slen, shlen;
    int rc;

    if ((rc = query_param(rq, auth, "X-Amz-Algorithm", alg, sizeof(alg), &alen)) != 0 ||
        (rc = query_param(rq, auth, "X-Amz-Credential", cred, sizeof(cred), &clen)) != 0 ||
        (rc = query_param(rq, auth, "X-Amz-Date", date, sizeof(date), &dlen)) != 0 ||
        (rc = query_param(rq, auth, "X-Amz-Expires", exp, sizeof(exp), &elen)) != 0 ||
        (rc = query_param(rq, auth, "X-Amz-SignedHeaders", sh, CAIRN_SIGV4_SIGNED_HEADERS_MAX, &shlen)) != 0 ||
        (rc = query_param(rq, auth, "X-Amz-Signature", sig, sizeof(sig), &slen)) != 0)
        goto out;
    if (strcmp(alg, ALGORITHM) != 0) {
        rc = fail(auth, CAIRN_SIGV4_EQUERY, "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
        goto out;
    }
    if ((rc = parse_credential(auth, cred, clen, CAIRN_SIGV4_EQUERY)) != 0 ||
        (rc = parse_signed_headers(auth, sh, shlen, CAIRN_SIGV4_EQUERY)) != 0 ||
        (rc = parse_signature(auth, sig, slen, CAIRN_SIGV4_EQUERY)) != 0)
        goto out;
    if (parse_amz_date(date, dlen, &auth->request_time) != 0) {
        rc = fail(auth, CAIRN_SIGV4_EQUERY, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
        goto out;
    }
    memcpy(auth->amz_date, date, 16);
    auth->amz_date[16] = '\0';
    if (memcmp(auth->date, auth->amz_date, 8) != 0) {
        rc = fail(auth, CAIRN_SIGV4_EQUERY, "Invalid credential date. Date is not the same as X-Amz-Date.");
        goto out;
    }
    int e;
    if (elen == 0 || elen > 7 || digits(exp, elen, &e) != 0) {
        rc = fail(auth, CAIRN_SIGV4_EQUERY, "X-Amz-Expires should be a number");
        goto out;
    }
    if (e > CAIRN_SIGV4_MAX_EXPIRES) {
        rc = fail(auth, CAIRN_SIGV4_EQUERY,
                  "X-Amz-Expires must be less than a week (in seconds) that is 604800 seconds");
        goto out;
    }
    auth->expires = e;
    auth->presigned = 1;
    auth->payload = CAIRN_SIGV4_PAYLOAD_UNSIGNED;
    auth->unsigned_payload = 1;
    if ((rc = parse_content_sha(rq, auth)) != 0)
        goto out;
out:
    free(sh);
    return rc;
}

int cairn_sigv4_parse(const cairn_sigv4_request_t *rq, cairn_sigv4_auth_t *auth)
{
    int count;
    const cairn_sigv4_header_t *authz;
    int q_v4, q_v2;

    memset(auth, 0, sizeof(*auth));
    authz = find_header(rq, "authorization", &count);
    q_v4 = query_find(rq, "X-Amz-Algorithm", NULL) || query_find(rq, "X-Amz-Credential", NULL) ||
           query_find(rq, "X-Amz-Signature", NULL);
    q_v2 = query_find(rq, "AWSAccessKeyId", NULL) || (query_find(rq, "Signature", NULL) && query_find(rq, "Expires", NULL));

    if (count > 1)
        return fail(auth, CAIRN_SIGV4_EHEADER, "The request has more than one Authorization header.");
    if (authz != NULL && (q_v4 || q_v2))
        return fail(auth, CAIRN_SIGV4_EARGUMENT,
                    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string "
                    "parameter or the Authorization header should be specified");
    if (authz != NULL)
        return parse_header_auth(rq, auth, authz);
    if (q_v4)
        return parse_query_auth(rq, auth);
    if (q_v2)
        return fail(auth, CAIRN_SIGV4_EMECHANISM,
                    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.");
    return CAIRN_ENOTFOUND;
}

/* ---- canonical request -------------------------------------------------------- */

/* Path decoded and re-encoded with AWS rules, '/' kept. -1 if it holds a bad escape. */
static int canonical_path(const cairn_sigv4_request_t *rq, sbuf_t *out)
{
    if (rq->raw_path_len == 0) {
        sb_putc(out, '/');
        return 0;
    }
    char *dec = cairn_malloc(rq->raw_path_len);
    size_t dlen;
    if (cairn_uri_decode(rq->raw_path, rq->raw_path_len, dec, &dlen, 0) != 0) {
        free(dec);
        return -1;
    }
    sb_reserve(out, 3 * dlen);
    out->len += cairn_uri_encode(dec, dlen, out->p + out->len, 1);
    free(dec);
    return 0;
}

static void raw_path(const cairn_sigv4_request_t *rq, sbuf_t *out)
{
    if (rq->raw_path_len == 0)
        sb_putc(out, '/');
    else
        sb_put(out, rq->raw_path, rq->raw_path_len);
}

/* One query pair after re-encoding; sorted by (name, value) as raw bytes. */
typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} qpair_t;

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int cmp_qpair(const void *x, const void *y)
{
    const qpair_t *a = x, *b = y;
    int c = cmp_bytes(a->name, a->name_len, b->name, b->name_len);
    return c ? c : cmp_bytes(a->value, a->value_len, b->value, b->value_len);
}

/*
 * Canonical query: each name and value decoded and re-encoded with AWS
 * rules, sorted by name then value, joined "n=v&n=v". X-Amz-Signature is
 * left out for presigned requests. -1 on a bad escape.
 *
 * '+' decodes to a space, as cairn_query_get() reads it: the normalised
 * form must give two requests the same canonical string only when the
 * gateway also reads them the same, or a signed "a%2Bb" ("a+b") could be
 * replayed as "a+b" and read as "a b". SDKs never send a raw '+'; curl's
 * raw '+' is matched by the as-sent candidate instead.
 */
static int canonical_query(const cairn_sigv4_request_t *rq, int presigned, sbuf_t *out)
{
    size_t n = cairn_query_count(rq->raw_query, rq->raw_query_len);
    if (n == 0)
        return 0;
    cairn_query_param_t *params = cairn_calloc(n, sizeof(*params));
    qpair_t *pairs = cairn_calloc(n, sizeof(*pairs));
    /* encoding at most triples each byte, plus the NUL cairn_uri_encode puts after each name and value */
    char *store = cairn_malloc(3 * rq->raw_query_len + 2 * n + 1);
    char *dec = cairn_malloc(rq->raw_query_len + 1);
    size_t used = 0, np = 0;
    int rc = 0;

    cairn_query_parse(rq->raw_query, rq->raw_query_len, params, n);
    for (size_t i = 0; i < n; i++) {
        size_t dn, dv;
        if (presigned && name_is(&params[i], "X-Amz-Signature"))
            continue;
        if (cairn_uri_decode(params[i].name, params[i].name_len, dec, &dn, 1) != 0) {
            rc = -1;
            goto out;
        }
        pairs[np].name = store + used;
        pairs[np].name_len = cairn_uri_encode(dec, dn, store + used, 0);
        used += pairs[np].name_len + 1;
        if (cairn_uri_decode(params[i].value, params[i].value_len, dec, &dv, 1) != 0) {
            rc = -1;
            goto out;
        }
        pairs[np].value = store + used;
        pairs[np].value_len = cairn_uri_encode(dec, dv, store + used, 0);
        used += pairs[np].value_len + 1;
        np++;
    }
    qsort(pairs, np, sizeof(*pairs), cmp_qpair);
    for (size_t i = 0; i < np; i++) {
        if (i > 0)
            sb_putc(out, '&');
        sb_put(out, pairs[i].name, pairs[i].name_len);
        sb_putc(out, '=');
        sb_put(out, pairs[i].value, pairs[i].value_len);
    }
out:
    free(params);
    free(pairs);
    free(store);
    free(dec);
    return rc;
}

/* The query as sent (minus X-Amz-Signature when presigned): what curl 7.88 signs. */
static void raw_query(const cairn_sigv4_request_t *rq, int presigned, sbuf_t *out)
{
    if (!presigned) {
        if (rq->raw_query_len > 0)
            sb_put(out, rq->raw_query, rq->raw_query_len);
        return;
    }
    cairn_query_param_t p;
    size_t pos = 0;
    int first = 1;
    while (next_pair(rq->raw_query, rq->raw_query_len, &pos, &p)) {
        if (name_is(&p, "X-Amz-Signature"))
            continue;
        if (!first)
            sb_putc(out, '&');
        first = 0;
        /* the pair runs from name to the end of its value */
        size_t plen = p.has_eq ? (size_t)(p.value + p.value_len - p.name) : p.name_len;
        sb_put(out, p.name, plen);
    }
}

/* Append one header value trimmed, with runs of blanks collapsed to one space. */
static void put_header_value(sbuf_t *out, const char *v, size_t n)
{
    int blank = 0;
    trim(&v, &n);
    for (size_t i = 0; i < n; i++) {
        if (is_ws((unsigned char)v[i])) {
            blank = 1;
            continue;
        }
        if (blank)
            sb_putc(out, ' ');
        blank = 0;
        sb_putc(out, v[i]);
    }
}

/* "name:v1,v2\n" for each signed header, in SignedHeaders order. -1 if one is missing. */
static int canonical_headers(const cairn_sigv4_request_t *rq, const cairn_sigv4_auth_t *auth, sbuf_t *out)
{
    const char *s = auth->signed_headers;

    sb_reserve(out, 0);
    while (*s != '\0') {
        const char *semi = strchr(s, ';');
        size_t nlen = semi ? (size_t)(semi - s) : strlen(s);
        int found = 0;
        for (size_t i = 0; i < nlen; i++)
            sb_putc(out, (char)lower((unsigned char)s[i]));
        sb_putc(out, ':');
        for (size_t i = 0; i < rq->nheaders; i++) {
            const cairn_sigv4_header_t *h = &rq->headers[i];
            if (!ieq(h->name, h->name_len, s, nlen))
                continue;
            if (found++)
                sb_putc(out, ',');
            put_header_value(out, h->value, h->value_len);
        }
        if (!found)
            return -1;
        sb_putc(out, '\n');
        s = semi ? semi + 1 : s + nlen;
    }
    return 0;
}

static int is_signed(const cairn_sigv4_auth_t *auth, const char *name, size_t nlen)
{
    const char *s = auth->signed_headers;
    while (*s != '\0') {
        const char *semi = strchr(s, ';');
        size_t len = semi ? (size_t)(semi - s) : strlen(s);
        if (ieq(s, len, name, nlen))
            return 1;
        s = semi ? semi + 1 : s + len;
    }
    return 0;
}

static void build_creq(const cairn_sigv4_request_t *rq, const cairn_sigv4_auth_t *auth, const sbuf_t *path,
                       const sbuf_t *query, const sbuf_t *headers, const char *payload, sbuf_t *out)
{
    out->len = 0;
    sb_put(out, rq->method, rq->method_len);
    sb_putc(out, '\n');
    sb_put(out, path->p, path->len);
    sb_putc(out, '\n');
    if (query->len > 0)
        sb_put(out, query->p, query->len);
    sb_putc(out, '\n');
    sb_put(out, headers->p, headers->len);
    sb_putc(out, '\n');
    sb_puts(out, auth->signed_headers);
    sb_putc(out, '\n');
    sb_puts(out, payload);
}

static void build_sts(const cairn_sigv4_auth_t *auth, const sbuf_t *creq, sbuf_t *out)
{
    uint8_t h[32];
    char hex[65];
    sha256(creq->p, creq->len, h);
    to_hex(h, 32, hex);
    out->len = 0;
    sb_puts(out, ALGORITHM "\n");
    sb_puts(out, auth->amz_date);
    sb_putc(out, '\n');
    sb_puts(out, auth->scope);
    sb_putc(out, '\n');
    sb_put(out, hex, 64);
}

void cairn_sigv4_signing_key(const char *secret_key, const cairn_sigv4_auth_t *auth, uint8_t key[32])
{
    size_t slen = strlen(secret_key);
    uint8_t *k0 = cairn_malloc(slen + 4);
    uint8_t a[32], b[32];

    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret_key, slen);
    hmac(k0, slen + 4, auth->date, strlen(auth->date), a);
    hmac(a, 32, auth->region, strlen(auth->region), b);
    hmac(b, 32, auth->service, strlen(auth->service), a);
    hmac(a, 32, "aws4_request", 12, key);
    OPENSSL_cleanse(k0, slen + 4);
    OPENSSL_cleanse(a, sizeof(a));
    OPENSSL_cleanse(b, sizeof(b));
    free(k0);
}

static void chunk_like_signature(const char *alg, const uint8_t key[32], const cairn_sigv4_auth_t *auth,
                                 const char *prev, const uint8_t sha[32], int with_empty, char out[65])
{
    char buf[512], hex[65];
    uint8_t mac[32];
    int n;

    to_hex(sha, 32, hex);
    if (with_empty)
        n = snprintf(buf, sizeof(buf), "%s\n%s\n%s\n%.64s\n%s\n%s", alg, auth->amz_date, auth->scope, prev,
                     EMPTY_SHA256, hex);
    else
        n = snprintf(buf, sizeof(buf), "%s\n%s\n%s\n%.64s\n%s", alg, auth->amz_date, auth->scope, prev, hex);
    CAIRN_ASSERT(n > 0 && (size_t)n < sizeof(buf));
    hmac(key, 32, buf, (size_t)n, mac);
    to_hex(mac, 32, out);
}

void cairn_sigv4_chunk_signature(const uint8_t key[32], const cairn_sigv4_auth_t *auth, const char *prev_signature,
                                 const uint8_t chunk_sha256[32], char out[65])
{
    chunk_like_signature("AWS4-HMAC-SHA256-PAYLOAD", key, auth, prev_signature, chunk_sha256, 1, out);
}

void cairn_sigv4_trailer_signature(const uint8_t key[32], const cairn_sigv4_auth_t *auth, const char *prev_signature,
                                   const uint8_t trailer_sha256[32], char out[65])
{
    chunk_like_signature("AWS4-HMAC-SHA256-TRAILER", key, auth, prev_signature, trailer_sha256, 0, out);
}

/* Payload lines to try, in order; returns how many (1 or 2). */
static int payload_candidates(const cairn_sigv4_request_t *rq, const cairn_sigv4_auth_t *auth, const char *cand[2])
{
    int n = 0;
    if (auth->payload != CAIRN_SIGV4_PAYLOAD_ABSENT) {
        cand[n++] = auth->content_sha256;
        if (auth->presigned && strcmp(auth->content_sha256, "UNSIGNED-PAYLOAD") != 0)
            cand[n++] = "UNSIGNED-PAYLOAD";
        return n;
    }
    if (auth->presigned) {
        cand[n++] = "UNSIGNED-PAYLOAD";
        return n;
    }
    cand[n++] = EMPTY_SHA256;
    if (rq->body_sha256_hex != NULL && strlen(rq->body_sha256_hex) == 64 && strcmp(rq->body_sha256_hex, EMPTY_SHA256) != 0)
        cand[n++] = rq->body_sha256_hex;
    return n;
}

int cairn_sigv4_canonical_request(const cairn_sigv4_request_t *rq, const cairn_sigv4_auth_t *auth, char **creq,
                                  char **string_to_sign)
{
    sbuf_t path = {0}, query = {0}, headers = {0}, c = {0}, sts = {0};
    const char *cand[2];
    int rc = 0;

    if (canonical_path(rq, &path) != 0) {
        path.len = 0;
        raw_path(rq, &path);
    }
    if (canonical_query(rq, auth->presigned, &query) != 0) {
        query.len = 0;
        raw_query(rq, auth->presigned, &query);
    }
    if (canonical_headers(rq, auth, &headers) != 0) {
        rc = CAIRN_SIGV4_ESIGNATURE;
        goto out;
    }
    payload_candidates(rq, auth, cand);
    build_creq(rq, auth, &path, &query, &headers, cand[0], &c);
    build_sts(auth, &c, &sts);
    *creq = c.p;
    *string_to_sign = sts.p;
    c.p = sts.p = NULL;
out:
    sb_free(&path);
    sb_free(&query);
    sb_free(&headers);
    sb_free(&c);
    sb_free(&sts);
    return rc;
}

static int check_time(const cairn_sigv4_request_t *rq, const cairn_sigv4_auth_t *auth, const char **reason)
{
    int64_t now = (int64_t)rq->now, t = (int64_t)auth->request_time;

    if (auth->presigned) {
        if (t - now > CAIRN_SIGV4_MAX_SKEW) {
            *reason = "Request is not valid yet";
            return CAIRN_SIGV4_ENOTYET;
        }
        if (now > t + auth->expires) {
            *reason = "Request has expired";
            return CAIRN_SIGV4_EEXPIRED;
        }
        return 0;
    }
    if (now - t > CAIRN_SIGV4_MAX_SKEW || t - now > CAIRN_SIGV4_MAX_SKEW) {
        *reason = "The difference between the request time and the current time is too large.";
        return CAIRN_SIGV4_ESKEW;
    }
    return 0;
}

int cairn_sigv4_verify(const cairn_sigv4_request_t *rq, const cairn_sigv4_auth_t *auth, const char *secret_key,
                       cairn_sigv4_result_t *res, const char **reason)
{
    const char *dummy;
    sbuf_t paths[2] = {{0}}, queries[2] = {{0}}, headers = {0}, creq = {0}, sts = {0};
    int npaths = 0, nqueries = 0, path_raw[2] = {0, 0}, query_raw[2] = {0, 0}, rc;
    const char *cand[2];
    int ncand;
    uint8_t key[32], mac[32];
    char hex[65];

    if (reason == NULL)
        reason = &dummy;
    *reason = NULL;
    if ((rc = check_time(rq, auth, reason)) != 0)
        return rc;
    if (rq->require_signed_amz) {
        for (size_t i = 0; i < rq->nheaders; i++) {
            const cairn_sigv4_header_t *h = &rq->headers[i];
            if (h->name_len >= 6 && ieq(h->name, 6, "x-amz-", 6) && !ieq(h->name, h->name_len, "x-amz-content-sha256", 20) &&
                !is_signed(auth, h->name, h->name_len)) {
                *reason = "There were headers present in the request which were not signed";
                return CAIRN_SIGV4_EUNSIGNED;
            }
        }
    }
    if (canonical_headers(rq, auth, &headers) != 0) {
        sb_free(&headers);
        *reason = "A header named in SignedHeaders is not present in the request.";
        return CAIRN_SIGV4_ESIGNATURE;
    }

    /* candidate paths and queries: AWS-normalised first, then as sent when that differs */
    if (canonical_path(rq, &paths[0]) == 0)
        path_raw[npaths++] = 0;
    raw_path(rq, &paths[npaths]);
    if (npaths == 0 || !sb_equal(&paths[0], &paths[1]))
        path_raw[npaths++] = 1;
    if (canonical_query(rq, auth->presigned, &queries[0]) == 0)
        query_raw[nqueries++] = 0;
    raw_query(rq, auth->presigned, &queries[nqueries]);
    if (nqueries == 0 || !sb_equal(&queries[0], &queries[1]))
        query_raw[nqueries++] = 1;
    ncand = payload_candidates(rq, auth, cand);

    cairn_sigv4_signing_key(secret_key, auth, key);
    rc = CAIRN_SIGV4_ESIGNATURE;
    *reason = "The request signature we calculated does not match the signature you provided. Check your key and "
              "signing method.";
    for (int c = 0; c < ncand && rc != 0; c++) {
        for (int p = 0; p < npaths && rc != 0; p++) {
            for (int q = 0; q < nqueries && rc != 0; q++) {
                build_creq(rq, auth, &paths[p], &queries[q], &headers, cand[c], &creq);
                build_sts(auth, &creq, &sts);
                hmac(key, 32, sts.p, sts.len, mac);
                to_hex(mac, 32, hex);
                if (CRYPTO_memcmp(hex, auth->signature, 64) == 0) {
                    rc = 0;
                    *reason = NULL;
                    if (res != NULL) {
                        memcpy(res->signing_key, key, 32);
                        res->raw_path = path_raw[p];
                        res->raw_query = query_raw[q];
                        /* the matched payload line covers the body if it is a real hash of it */
                        res->body_signed = (auth->payload == CAIRN_SIGV4_PAYLOAD_HEX && c == 0) ||
                                           (auth->payload == CAIRN_SIGV4_PAYLOAD_ABSENT &&
                                            (c == 1 || (rq->body_sha256_hex != NULL &&
                                                        strcmp(rq->body_sha256_hex, EMPTY_SHA256) == 0)));
                        snprintf(res->payload_hash, sizeof(res->payload_hash), "%s", cand[c]);
                    }
                }
            }
        }
    }
    OPENSSL_cleanse(key, sizeof(key));
    for (int i = 0; i < 2; i++) {
        sb_free(&paths[i]);
        sb_free(&queries[i]);
    }
    sb_free(&headers);
    sb_free(&creq);
    sb_free(&sts);
    return rc;
}

int cairn_sigv4_payload_check(const cairn_sigv4_auth_t *auth, const uint8_t sha[32])
{
    char hex[65];

    if (auth->payload != CAIRN_SIGV4_PAYLOAD_HEX)
        return 0;
    to_hex(sha, 32, hex);
    for (int i = 0; i < 64; i++)
        if (lower((unsigned char)auth->content_sha256[i]) != hex[i])
            return CAIRN_SIGV4_ECONTENTSHA;
    return 0;
}
