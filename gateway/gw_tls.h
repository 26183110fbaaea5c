/*
 * gw_tls.h — TLS on the S3 endpoint ([gateway] tls_cert, tls_key).
 *
 * With both keys set the S3 port speaks HTTPS only: one OpenSSL context,
 * built once at start-up, is shared by every event-loop thread's accept
 * context, and h2o 2.2.5 does the handshake (within its handshake_timeout,
 * 10 s) before the connection becomes HTTP/1.1. The admin port
 * ([gateway] admin_listen: /health, /metrics) stays plain HTTP.
 *
 * Policy: TLS 1.2 and 1.3 only; TLS 1.2 limited to ECDHE key exchange with
 * AEAD ciphers (AES-GCM, ChaCha20-Poly1305), the server's order preferred;
 * no compression, no renegotiation. ALPN offers "http/1.1" only: the
 * gateway's per-request limits (header bytes, request timer, connection
 * refusal) are those of its HTTP/1 path.
 *
 * Caveats
 * - The files are read once: a renewed certificate takes a restart.
 * - The key must be unencrypted (there is nobody to type a passphrase);
 *   an encrypted one fails start-up instead of prompting.
 * - A certificate already expired, or expiring within 30 days, is logged
 *   as a warning, not refused: clients decide what they accept.
 */
#ifndef CAIRN_GW_TLS_H
#define CAIRN_GW_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "cairn/cfg.h"

/*
 * Build the endpoint's TLS context from cfg->gw_tls_cert and gw_tls_key.
 *
 * *out is NULL when both are empty (plain HTTP), else a context owned by
 * the caller for the life of the process (SSL_CTX_free to drop it). Loads
 * the chain (leaf first) and the key, and checks that they match.
 *
 * Returns 0, or CAIRN_EINVAL with a one-line reason in err (always
 * NUL-terminated when errsz > 0) naming the file and OpenSSL's reason, e.g.
 *   "tls_cert /etc/cairn/cert.pem: No such file or directory"
 *   "tls_key /etc/cairn/key.pem does not belong to tls_cert /etc/cairn/cert.pem: key values mismatch (...)"
 * Logs the certificate's subject and expiry (info) once loaded.
 */
int gw_tls_create(const cairn_cfg_t *cfg, SSL_CTX **out, char *err, size_t errsz);

#endif
