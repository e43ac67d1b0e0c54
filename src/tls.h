/*
 * tls.h — the server-side TLS context for client connections.
 *
 * pgwarden terminates client TLS itself (libevent's OpenSSL bufferevents);
 * this module only builds and validates the SSL_CTX from the configured
 * certificate and key. TLS 1.2 is the floor.
 */
#ifndef PGW_TLS_H
#define PGW_TLS_H

#include "pgw.h"
#include <openssl/ssl.h>

/* NULL with err filled when the files are missing or do not match. */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen);
void tls_ctx_free(SSL_CTX *ctx);

#endif
