/*
 * scram.h — the server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as
 * PostgreSQL speaks it, as a pure state machine: messages in, messages out.
 *
 * No channel binding is offered (mechanism "SCRAM-SHA-256" only); a client
 * asking for binding with 'p=' is refused, 'y'/'n' accepted. Unknown users
 * still get a full exchange with a made-up verifier (as PostgreSQL does) so
 * the failure looks the same as a wrong password, down to a salt that is
 * the same on every attempt.
 */
#ifndef PGW_SCRAM_H
#define PGW_SCRAM_H

#include "pgw.h"

typedef struct PgwScram PgwScram;

#define SCRAM_SALT_LEN 16
#define SCRAM_ITERATIONS 4096 /* for verifiers pgwarden makes up or derives */
#define SCRAM_MOCK_KEY_LEN 32

/* secret: plaintext password or SCRAM verifier; NULL for an unknown user
 * (the exchange then always fails at the end). nonce: server nonce to use
 * (base64-ish printable) for tests, or NULL to generate 18 random bytes. */
PgwScram *scram_server_new(const char *user, const char *secret, const char *nonce);
/* The same, with the key the salts of unknown users (and of plaintext
 * secrets) derive from: SCRAM_MOCK_KEY_LEN bytes, or NULL for one drawn
 * once per process. */
PgwScram *scram_server_new_keyed(const char *user, const char *secret, const uint8_t *mock_key,
                                 const char *nonce);
/* The stable salt for user under key (NULL: the per-process key). */
int scram_mock_salt(const uint8_t *key, const char *user, uint8_t salt[SCRAM_SALT_LEN]) PGW_WUR;
void scram_free(PgwScram *s);

/* client-first-message in (the SASLInitialResponse data); server-first out
 * (malloc'd, *out_len bytes). -1 with err set on a malformed message. */
int scram_server_first(PgwScram *s, const uint8_t *in, size_t in_len, char **out, size_t *out_len,
                       char *err, size_t errlen) PGW_WUR;
/* client-final-message in; on a valid proof returns 0 and the server-final
 * message ("v=...") out. On a wrong proof or malformed message returns -1. */
int scram_server_final(PgwScram *s, const uint8_t *in, size_t in_len, char **out, size_t *out_len,
                       char *err, size_t errlen) PGW_WUR;

/* Build a verifier "SCRAM-SHA-256$iter:salt$StoredKey:ServerKey" from a
 * password (salt raw bytes). Malloc'd. */
char *scram_make_verifier(const char *password, const uint8_t *salt, size_t salt_len,
                          int iterations);

/* Split a verifier into its parts; -1 if secret is not a well-formed
 * SCRAM-SHA-256 verifier. *salt is malloc'd. */
int scram_parse_verifier(const char *secret, int *iterations, uint8_t **salt, size_t *salt_len,
                         uint8_t stored_key[32], uint8_t server_key[32]) PGW_WUR;
/* After scram_server_final failed: true when the message was well-formed
 * but the proof wrong (or the user unknown): 28P01 rather than 08P01. */
bool scram_auth_failed(const PgwScram *s);

/* base64 helpers (standard alphabet, padded), malloc'd results. */
char *scram_b64_encode(const uint8_t *in, size_t len);
int scram_b64_decode(const char *in, uint8_t **out, size_t *out_len) PGW_WUR;

#endif
