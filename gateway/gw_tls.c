/*
 * gw_tls.c — the S3 endpoint's OpenSSL context (see gw_tls.h).
 *
 * Everything here runs once, in main() before the loop threads start; the
 * context is then only read (h2o creates one SSL per connection from it,
 * which OpenSSL allows from any thread).
 */
#include "gw_tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <h2o.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "cairn/err.h"
#include "cairn/log.h"

/* TLS 1.2 suites: forward secrecy (ECDHE) and AEAD only, strongest first.
 * TLS 1.3 keeps OpenSSL's default suites, which are all AEAD. */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/* HTTP/1.1 only (h2o's own list would offer h2 first). */
static const h2o_iovec_t alpn_http1[] = {{H2O_STRLIT("http/1.1")}, {NULL, 0}};

#define WARN_DAYS 30

/* OpenSSL's reason for the failure, "reason (library)", from the first
 * error queued (the cause; later ones are the callers giving up); clears
 * the queue and returns the error code. */
static unsigned long ssl_reason(char *buf, size_t n)
{
    unsigned long e = ERR_peek_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    const char *lib = e ? ERR_lib_error_string(e) : NULL;
    if (reason == NULL)
        snprintf(buf, n, "OpenSSL error %#lx", e);
    else
        snprintf(buf, n, "%s (%s)", reason, lib ? lib : "OpenSSL");
    ERR_clear_error();
    return e;
}

/* Called only for an encrypted key: refuse (no prompt) and note it. */
static int on_passphrase(char *buf, int size, int rwflag, void *asked)
{
    *(int *)asked = 1;
    return -1;
}

/* The file must be a readable regular file: a clearer message than OpenSSL's. */
static int check_file(const char *what, const char *path, char *err, size_t errsz)
{
    struct stat st;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errsz, "%s %s: %s", what, path, strerror(errno));
        return CAIRN_EINVAL;
    }
    int rc = fstat(fileno(f), &st);
    fclose(f);
    if (rc != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errsz, "%s %s: not a regular file", what, path);
        return CAIRN_EINVAL;
    }
    if (strcmp(what, "tls_key") == 0 && (st.st_mode & S_IROTH))
        cairn_log(CAIRN_LOG_WARN, 0, "tls_key %s is readable by every user (chmod 600 or 640)", path);
    return 0;
}

/* Log the leaf certificate's subject and expiry; warn when it is (nearly) due. */
static void log_leaf(SSL_CTX *ctx, const char *path)
{
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    if (leaf == NULL)
        return;
    char subject[256], until[64] = "?";
    X509_NAME_oneline(X509_get_subject_name(leaf), subject, sizeof subject);
    const ASN1_TIME *na = X509_get0_notAfter(leaf);
    BIO *b = BIO_new(BIO_s_mem());
    if (b != NULL) {
        if (ASN1_TIME_print(b, na) > 0) {
            int n = BIO_read(b, until, sizeof until - 1);
            until[n > 0 ? n : 0] = '\0';
        }
        BIO_free(b);
    }
    int days = 0, secs = 0;
    if (ASN1_TIME_diff(&days, &secs, NULL, na) && (days < 0 || secs < 0))
        cairn_log(CAIRN_LOG_WARN, 0, "tls_cert %s (%s) EXPIRED on %s: clients will refuse it", path, subject, until);
    else if (days < WARN_DAYS)
        cairn_log(CAIRN_LOG_WARN, 0, "tls_cert %s (%s) expires in %d days (%s)", path, subject, days, until);
    cairn_log(CAIRN_LOG_INFO, 0, "TLS on the S3 endpoint: %s, subject %s, valid until %s", path, subject, until);
}

/* Protocol versions, ciphers and options of the context. 0 or -1 (err set). */
static int set_policy(SSL_CTX *ctx, char *err, size_t errsz)
{
    char why[160];
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
#ifdef SSL_OP_NO_CLIENT_RENEGOTIATION
    SSL_CTX_set_options(ctx, SSL_OP_NO_CLIENT_RENEGOTIATION);
#endif
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1) {
        ssl_reason(why, sizeof why);
        snprintf(err, errsz, "cannot set the TLS policy: %s", why);
        return -1;
    }
    h2o_ssl_register_alpn_protocols(ctx, alpn_http1);
    return 0;
}

/* Load the chain and the key and check they match. 0 or -1 (err set). */
static int load_pair(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errsz)
{
    char why[160];
    int asked = 0;
    SSL_CTX_set_default_passwd_cb(ctx, on_passphrase);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, &asked);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ssl_reason(why, sizeof why);
        snprintf(err, errsz, "tls_cert %s: not a PEM certificate chain: %s", cert, why);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ssl_reason(why, sizeof why);
        if (asked)
            snprintf(err, errsz, "tls_key %s is encrypted: give an unencrypted key (openssl pkey -in K -out K2)", key);
        else if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
            snprintf(err, errsz, "tls_key %s does not belong to tls_cert %s: %s", key, cert, why);
        else
            snprintf(err, errsz, "tls_key %s: not a PEM private key: %s", key, why);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_reason(why, sizeof why);
        snprintf(err, errsz, "tls_key %s does not belong to tls_cert %s: %s", key, cert, why);
        return -1;
    }
    SSL_CTX_set_default_passwd_cb(ctx, NULL);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    return 0;
}

int gw_tls_create(const cairn_cfg_t *cfg, SSL_CTX **out, char *err, size_t errsz)
{
    *out = NULL;
    if (errsz)
        err[0] = '\0';
    const char *cert = cfg->gw_tls_cert, *key = cfg->gw_tls_key;
    if (cert[0] == '\0' && key[0] == '\0')
        return 0;
    if (cert[0] == '\0' || key[0] == '\0') { /* cfg.c refuses this already */
        snprintf(err, errsz, "tls_cert and tls_key go together: set both or neither");
        return CAIRN_EINVAL;
    }
    if (check_file("tls_cert", cert, err, errsz) != 0 || check_file("tls_key", key, err, errsz) != 0)
        return CAIRN_EINVAL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        char why[160];
        ssl_reason(why, sizeof why);
        snprintf(err, errsz, "cannot create a TLS context: %s", why);
        return CAIRN_EINVAL;
    }
    if (set_policy(ctx, err, errsz) != 0 || load_pair(ctx, cert, key, err, errsz) != 0) {
        SSL_CTX_free(ctx);
        return CAIRN_EINVAL;
    }
    log_leaf(ctx, cert);
    *out = ctx;
    return 0;
}
