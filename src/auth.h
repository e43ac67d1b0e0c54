/*
 * auth.h — who may log in: the auth_file (PgBouncer's userlist.txt format)
 * and the md5 password check. SCRAM lives in scram.h.
 *
 * auth_file lines: "username" "password"; the password is plaintext,
 * "md5" + md5(password || username) in hex, or a SCRAM-SHA-256 verifier
 * "SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>".
 * Double quotes inside a field are doubled; lines starting with ';' or '#'
 * and blank lines are ignored. Pure: parsing takes text, checks take strings.
 */
#ifndef PGW_AUTH_H
#define PGW_AUTH_H

#include "pgw.h"

typedef struct PgwUserlist PgwUserlist;

int auth_userlist_load(const char *path, PgwUserlist **out, char *err, size_t errlen) PGW_WUR;
int auth_userlist_parse(const char *name, const char *text, PgwUserlist **out, char *err,
                        size_t errlen) PGW_WUR;
void auth_userlist_free(PgwUserlist *ul);
/* The stored secret for user, or NULL. */
const char *auth_userlist_get(const PgwUserlist *ul, const char *user);

/* Derive a SCRAM verifier for every plaintext secret, once (PBKDF2 per
 * plaintext user), so a SCRAM login never runs PBKDF2: call it after
 * loading when SCRAM is in use. */
int auth_userlist_prepare_scram(PgwUserlist *ul) PGW_WUR;
/* What a SCRAM exchange for user runs against: its verifier (stored, or
 * derived by prepare; before prepare, the stored secret), or NULL when the
 * user is unknown or has only an md5 hash (the mock exchange then runs). */
const char *auth_userlist_scram(const PgwUserlist *ul, const char *user);
/* SCRAM_MOCK_KEY_LEN bytes that only this list's secrets determine: the
 * salts of the mock exchange derive from it (scram_server_new_keyed). */
const uint8_t *auth_userlist_mock_key(const PgwUserlist *ul);

typedef enum { PGW_SECRET_PLAIN, PGW_SECRET_MD5, PGW_SECRET_SCRAM } PgwSecretKind;
PgwSecretKind auth_secret_kind(const char *secret);

/* Fill salt with 4 random bytes. */
void auth_md5_salt(uint8_t salt[4]);
/* Check an md5 PasswordMessage ("md5" + 32 hex) against a stored secret
 * (plaintext or md5 hash; a SCRAM verifier cannot answer md5 and fails).
 * Constant-time comparison. */
bool auth_md5_check(const char *secret, const char *user, const uint8_t salt[4],
                    const char *response);
/* Cleartext check (used only over TLS if ever): secret plain, md5 or SCRAM. */
bool auth_plain_check(const char *secret, const char *user, const char *password);

#endif
