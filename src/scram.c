/*
 * scram.c — the server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) the way
 * PostgreSQL speaks it: a pure state machine that turns the client's
 * messages into the server's, with no I/O. The caller frames the messages
 * (AuthenticationSASL, SASLContinue, SASLFinal) and decides what a failure
 * means for the connection.
 *
 * What this module must never do: tell an unknown user from a wrong
 * password. For a user without a usable secret it runs a mock exchange, as
 * PostgreSQL does (auth-scram.c, mock_scram_secret): a made-up verifier
 * whose salt is an HMAC of the user name under the caller's mock key, so
 * repeated attempts see the same salt, exactly as for a real user with a
 * stored verifier, and the final step fails the same way a wrong proof
 * does. The caller's key (auth_userlist_mock_key) depends only on the
 * auth_file's secrets, so every instance reading the same file shows an
 * unknown user the same salt, as it does a real user; without a key the
 * module draws one per process. A plaintext secret gets its salt the same
 * way (scram_mock_salt), so no user's salt changes from one attempt to the
 * next either.
 *
 * Design choices: like PostgreSQL, the user name in "n=" is ignored (the
 * startup packet already said who is logging in) and no channel binding is
 * offered, so a client asking for it ("p=") is refused while "y" (client
 * could bind, thinks we cannot) is accepted. A plaintext secret is turned
 * into a verifier per exchange (the runtime avoids that cost: the auth
 * module derives verifiers once, at load). Passwords are not
 * SASLprep-normalised: ASCII passwords, the common case,
 * are unaffected. Every secret comparison is constant-time.
 */
#include "scram.h"

#include "buf.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_LEN SHA256_DIGEST_LENGTH
#define SALT_LEN SCRAM_SALT_LEN
#define NONCE_BYTES 18
#define VERIFIER_PREFIX "SCRAM-SHA-256$"

typedef enum { SCRAM_WANT_FIRST, SCRAM_WANT_FINAL, SCRAM_FINISHED } ScramState;

struct PgwScram {
    ScramState state;
    bool doomed; /* no usable secret: the exchange must fail at the end */
    bool auth_failed;
    int iterations;
    uint8_t *salt;
    size_t salt_len;
    uint8_t stored_key[KEY_LEN];
    uint8_t server_key[KEY_LEN];
    char *server_nonce;
    char *nonce; /* client nonce + server nonce */
    char gs2_header[4]; /* "n,," or "y,," */
    char *client_first_bare;
    char *server_first;
};

/* ---- base64 ------------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *scram_b64_encode(const uint8_t *in, size_t len)
{
    char *out = pgw_malloc((len + 2) / 3 * 4 + 1), *o = out;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        *o++ = b64_alphabet[(v >> 18) & 63];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        *o++ = i + 2 < len ? b64_alphabet[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64_alphabet, c) : NULL;
    return p ? (int)(p - b64_alphabet) : -1;
}

/* Strict: padded, no whitespace, '=' only at the end. */
int scram_b64_decode(const char *in, uint8_t **out, size_t *out_len)
{
    size_t len = strlen(in), n = 0;
    uint8_t *buf;

    if (len % 4)
        return -1;
    buf = pgw_malloc(len / 4 * 3 + 1);
    for (size_t i = 0; i < len; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            bool last_group = i + 4 == len;
            if (in[i + j] == '=' && last_group && j >= 2 && (j == 3 || in[i + 3] == '=')) {
                v[j] = 0;
                pad++;
                continue;
            }
            v[j] = pad ? -1 : b64_value(in[i + j]);
            if (v[j] < 0)
                goto fail;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | v[3];
        buf[n++] = (uint8_t)(w >> 16);
        if (pad < 2)
            buf[n++] = (uint8_t)(w >> 8);
        if (pad < 1)
            buf[n++] = (uint8_t)w;
    }
    *out = buf;
    *out_len = n;
    return 0;
fail:
    free(buf);
    return -1;
}

/* ---- key derivation ----------------------------------------------------- */

static int hmac256(const uint8_t *key, size_t key_len, const void *data, size_t len,
                   uint8_t out[KEY_LEN])
{
    unsigned int out_len = KEY_LEN;
    return HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &out_len) ? 0 : -1;
}

/* StoredKey and ServerKey from a password (RFC 5802 section 3). */
static int derive_keys(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
                       uint8_t stored_key[KEY_LEN], uint8_t server_key[KEY_LEN])
{
    uint8_t salted[KEY_LEN], client_key[KEY_LEN];
    int rc = -1;

    if (!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, iterations,
                           EVP_sha256(), KEY_LEN, salted))
        goto fail;
    if (hmac256(salted, KEY_LEN, "Client Key", 10, client_key) < 0 ||
        hmac256(salted, KEY_LEN, "Server Key", 10, server_key) < 0)
        goto fail;
    if (!SHA256(client_key, KEY_LEN, stored_key))
        goto fail;
    rc = 0;
fail:
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(client_key, sizeof(client_key));
    return rc;
}

char *scram_make_verifier(const char *password, const uint8_t *salt, size_t salt_len,
                          int iterations)
{
    uint8_t stored[KEY_LEN], server[KEY_LEN];

    if (iterations < 1 || derive_keys(password, salt, salt_len, iterations, stored, server) < 0)
        return NULL;
    char *s = scram_b64_encode(salt, salt_len);
    char *st = scram_b64_encode(stored, KEY_LEN);
    char *sv = scram_b64_encode(server, KEY_LEN);
    PgwBuf b;
    buf_init(&b);
    buf_printf(&b, VERIFIER_PREFIX "%d:%s$%s:%s", iterations, s, st, sv);
    free(s);
    free(st);
    free(sv);
    return buf_steal_str(&b);
}

/* Decode b64 text [start, end) into exactly want bytes (0: any length). */
static int decode_part(const char *start, const char *end, size_t want, uint8_t **out,
                       size_t *out_len)
{
    char *text = pgw_strndup(start, (size_t)(end - start));
    int rc = scram_b64_decode(text, out, out_len);
    free(text);
    if (rc == 0 && ((want && *out_len != want) || *out_len == 0)) {
        free(*out);
        rc = -1;
    }
    return rc;
}

int scram_parse_verifier(const char *secret, int *iterations, uint8_t **salt, size_t *salt_len,
                         uint8_t stored_key[KEY_LEN], uint8_t server_key[KEY_LEN])
{
    const char *p, *colon, *dollar, *colon2;
    uint8_t *key = NULL;
    size_t len;
    long iter = 0;

    if (!secret || strncmp(secret, VERIFIER_PREFIX, strlen(VERIFIER_PREFIX)) != 0)
        return -1;
    p = secret + strlen(VERIFIER_PREFIX);
    for (; *p >= '0' && *p <= '9' && iter <= 100000000; p++)
        iter = iter * 10 + (*p - '0');
    colon = p;
    dollar = strchr(p, '$');
    colon2 = dollar ? strchr(dollar, ':') : NULL;
    if (*colon != ':' || iter < 1 || iter > 100000000 || !dollar || !colon2)
        return -1;
    if (decode_part(colon + 1, dollar, 0, salt, salt_len) < 0)
        return -1;
    if (decode_part(dollar + 1, colon2, KEY_LEN, &key, &len) < 0)
        goto fail;
    memcpy(stored_key, key, KEY_LEN);
    free(key);
    if (decode_part(colon2 + 1, colon2 + strlen(colon2), KEY_LEN, &key, &len) < 0)
        goto fail;
    memcpy(server_key, key, KEY_LEN);
    free(key);
    *iterations = (int)iter;
    return 0;
fail:
    free(*salt);
    *salt = NULL;
    return -1;
}

/* ---- the exchange ------------------------------------------------------- */

static uint8_t mock_key[KEY_LEN];
static bool mock_key_ok;
static pthread_once_t mock_key_once = PTHREAD_ONCE_INIT;

static void mock_key_init(void)
{
    mock_key_ok = RAND_bytes(mock_key, sizeof(mock_key)) == 1;
}

int scram_mock_salt(const uint8_t *key, const char *user, uint8_t salt[SCRAM_SALT_LEN])
{
    uint8_t mac[KEY_LEN];

    if (!key) {
        pthread_once(&mock_key_once, mock_key_init);
        if (!mock_key_ok)
            return -1;
        key = mock_key;
    }
    if (!user)
        user = "";
    if (hmac256(key, KEY_LEN, user, strlen(user), mac) < 0)
        return -1;
    memcpy(salt, mac, SCRAM_SALT_LEN);
    return 0;
}

/* An unknown user still gets a stable, real-looking salt and iteration
 * count; its keys are random, so no proof can match. */
static int doom(PgwScram *s, const char *user, const uint8_t *key)
{
    uint8_t salt[SCRAM_SALT_LEN];

    if (scram_mock_salt(key, user, salt) < 0)
        return -1;
    free(s->salt);
    s->salt = pgw_malloc(SALT_LEN);
    memcpy(s->salt, salt, SALT_LEN);
    s->salt_len = SALT_LEN;
    s->iterations = SCRAM_ITERATIONS;
    s->doomed = true;
    if (RAND_bytes(s->stored_key, KEY_LEN) != 1 || RAND_bytes(s->server_key, KEY_LEN) != 1)
        return -1;
    return 0;
}

static int load_secret(PgwScram *s, const char *user, const char *secret, const uint8_t *key)
{
    uint8_t salt[SALT_LEN];

    if (!secret)
        return doom(s, user, key);
    if (strncmp(secret, VERIFIER_PREFIX, strlen(VERIFIER_PREFIX)) == 0) {
        if (scram_parse_verifier(secret, &s->iterations, &s->salt, &s->salt_len, s->stored_key,
                                 s->server_key) < 0)
            return doom(s, user, key);
        return 0;
    }
    /* An md5 hash cannot answer SCRAM (PostgreSQL behaves the same). */
    if (strncmp(secret, "md5", 3) == 0 && strlen(secret) == 35 &&
        strspn(secret + 3, "0123456789abcdef") == 32)
        return doom(s, user, key);
    /* A plaintext secret: a salt as stable as a stored verifier's. */
    if (scram_mock_salt(key, user, salt) < 0)
        return -1;
    s->salt = pgw_malloc(SALT_LEN);
    memcpy(s->salt, salt, SALT_LEN);
    s->salt_len = SALT_LEN;
    s->iterations = SCRAM_ITERATIONS;
    return derive_keys(secret, s->salt, s->salt_len, s->iterations, s->stored_key, s->server_key);
}

PgwScram *scram_server_new(const char *user, const char *secret, const char *nonce)
{
    return scram_server_new_keyed(user, secret, NULL, nonce);
}

PgwScram *scram_server_new_keyed(const char *user, const char *secret, const uint8_t *mock_key,
                                 const char *nonce)
{
    PgwScram *s = pgw_calloc(1, sizeof(*s));
    uint8_t raw[NONCE_BYTES];

    if (load_secret(s, user, secret, mock_key) < 0)
        goto fail;
    if (nonce) {
        s->server_nonce = pgw_strdup(nonce);
    } else {
        if (RAND_bytes(raw, sizeof(raw)) != 1)
            goto fail;
        s->server_nonce = scram_b64_encode(raw, sizeof(raw));
    }
    return s;
fail:
    scram_free(s);
    return NULL;
}

void scram_free(PgwScram *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s->stored_key, KEY_LEN);
    OPENSSL_cleanse(s->server_key, KEY_LEN);
    free(s->salt);
    free(s->server_nonce);
    free(s->nonce);
    free(s->client_first_bare);
    free(s->server_first);
    free(s);
}

bool scram_auth_failed(const PgwScram *s)
{
    return s && s->auth_failed;
}

/* The message as a C string; the protocol never puts NUL inside. */
static char *message_text(const uint8_t *in, size_t len)
{
    if (!in || memchr(in, '\0', len))
        return NULL;
    return pgw_strndup((const char *)in, len);
}

/* A nonce: printable ASCII except ','. Returns its end. */
static const char *scan_nonce(const char *p)
{
    while (*p >= 0x21 && *p <= 0x7e && *p != ',')
        p++;
    return p;
}

int scram_server_first(PgwScram *s, const uint8_t *in, size_t in_len, char **out, size_t *out_len,
                       char *err, size_t errlen)
{
    char *msg = message_text(in, in_len), *salt_b64 = NULL;
    const char *p, *nonce, *nonce_end;
    int rc = -1;

    if (s->state != SCRAM_WANT_FIRST) {
        snprintf(err, errlen, "unexpected SCRAM client-first-message");
        goto fail;
    }
    if (!msg) {
        snprintf(err, errlen, "malformed SCRAM message: embedded NUL");
        goto fail;
    }
    if (msg[0] == 'p') {
        snprintf(err, errlen, "channel binding is not supported (use SCRAM-SHA-256, not -PLUS)");
        goto fail;
    }
    if ((msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',') {
        snprintf(err, errlen, "malformed SCRAM message: bad GS2 header");
        goto fail;
    }
    if (msg[2] == 'a' && msg[3] == '=') {
        snprintf(err, errlen, "SCRAM authorization identity is not supported");
        goto fail;
    }
    if (msg[2] != ',') {
        snprintf(err, errlen, "malformed SCRAM message: bad GS2 header");
        goto fail;
    }
    memcpy(s->gs2_header, msg, 3);
    s->gs2_header[3] = '\0';
    p = msg + 3;
    if (p[0] == 'm' && p[1] == '=') {
        snprintf(err, errlen, "SCRAM mandatory extensions are not supported");
        goto fail;
    }
    /* n=<user>, ignored: the startup packet named the user. */
    if (strncmp(p, "n=", 2) != 0 || !(p = strchr(p, ',')) || strncmp(p, ",r=", 3) != 0) {
        snprintf(err, errlen, "malformed SCRAM message: expected n=USER,r=NONCE");
        goto fail;
    }
    nonce = p + 3;
    nonce_end = scan_nonce(nonce);
    if (nonce_end == nonce || (*nonce_end && *nonce_end != ',')) {
        snprintf(err, errlen, "malformed SCRAM message: bad client nonce");
        goto fail;
    }
    s->client_first_bare = pgw_strdup(msg + 3);
    PgwBuf b;
    buf_init(&b);
    buf_append(&b, nonce, (size_t)(nonce_end - nonce));
    buf_append_str(&b, s->server_nonce);
    s->nonce = buf_steal_str(&b);
    salt_b64 = scram_b64_encode(s->salt, s->salt_len);
    buf_printf(&b, "r=%s,s=%s,i=%d", s->nonce, salt_b64, s->iterations);
    s->server_first = buf_steal_str(&b);
    *out = pgw_strdup(s->server_first);
    *out_len = strlen(*out);
    s->state = SCRAM_WANT_FINAL;
    rc = 0;
fail:
    if (rc < 0)
        s->state = SCRAM_FINISHED;
    free(salt_b64);
    free(msg);
    return rc;
}

int scram_server_final(PgwScram *s, const uint8_t *in, size_t in_len, char **out, size_t *out_len,
                       char *err, size_t errlen)
{
    char *msg = message_text(in, in_len), *cbind_b64 = NULL, *auth_message = NULL;
    uint8_t *cbind = NULL, *proof = NULL;
    uint8_t client_sig[KEY_LEN], client_key[KEY_LEN], check[KEY_LEN], server_sig[KEY_LEN];
    size_t cbind_len = 0, proof_len = 0, nonce_len;
    const char *p, *comma, *proof_at;
    int rc = -1;

    if (s->state != SCRAM_WANT_FINAL) {
        snprintf(err, errlen, "unexpected SCRAM client-final-message");
        goto fail;
    }
    if (!msg || strncmp(msg, "c=", 2) != 0 || !(comma = strchr(msg, ','))) {
        snprintf(err, errlen, "malformed SCRAM message: expected c=...");
        goto fail;
    }
    cbind_b64 = pgw_strndup(msg + 2, (size_t)(comma - msg - 2));
    if (scram_b64_decode(cbind_b64, &cbind, &cbind_len) < 0 || cbind_len != strlen(s->gs2_header) ||
        memcmp(cbind, s->gs2_header, cbind_len) != 0) {
        snprintf(err, errlen, "SCRAM channel binding data does not match the GS2 header");
        goto fail;
    }
    p = comma + 1;
    if (strncmp(p, "r=", 2) != 0) {
        snprintf(err, errlen, "malformed SCRAM message: expected r=... after c=...");
        goto fail;
    }
    /* The nonce attribute ends at the next ',' or at the end; a message
     * that ends right after it has a good nonce and no proof, which is a
     * malformed message, not a nonce mismatch. */
    nonce_len = strcspn(p + 2, ",");
    if (nonce_len != strlen(s->nonce) || strncmp(p + 2, s->nonce, nonce_len) != 0) {
        snprintf(err, errlen, "SCRAM nonce does not match");
        goto fail;
    }
    /* The proof is the last attribute; extensions may sit before it. */
    proof_at = strstr(p + 2 + nonce_len, ",p=");
    if (!proof_at) {
        snprintf(err, errlen,
                 "malformed SCRAM message: the client-final-message has no proof (p=)");
        goto fail;
    }
    if (strchr(proof_at + 3, ',') || scram_b64_decode(proof_at + 3, &proof, &proof_len) < 0 ||
        proof_len != KEY_LEN) {
        snprintf(err, errlen, "malformed SCRAM message: invalid proof (p=)");
        goto fail;
    }

    PgwBuf b;
    buf_init(&b);
    buf_printf(&b, "%s,%s,", s->client_first_bare, s->server_first);
    buf_append(&b, msg, (size_t)(proof_at - msg));
    auth_message = buf_steal_str(&b);
    if (hmac256(s->stored_key, KEY_LEN, auth_message, strlen(auth_message), client_sig) < 0) {
        snprintf(err, errlen, "SCRAM computation failed");
        goto fail;
    }
    for (int i = 0; i < KEY_LEN; i++)
        client_key[i] = proof[i] ^ client_sig[i];
    if (!SHA256(client_key, KEY_LEN, check) || CRYPTO_memcmp(check, s->stored_key, KEY_LEN) != 0 ||
        s->doomed) {
        s->auth_failed = true;
        snprintf(err, errlen, "password authentication failed");
        goto fail;
    }
    if (hmac256(s->server_key, KEY_LEN, auth_message, strlen(auth_message), server_sig) < 0) {
        snprintf(err, errlen, "SCRAM computation failed");
        goto fail;
    }
    char *sig = scram_b64_encode(server_sig, KEY_LEN);
    buf_printf(&b, "v=%s", sig);
    free(sig);
    *out = buf_steal_str(&b);
    *out_len = strlen(*out);
    rc = 0;
fail:
    s->state = SCRAM_FINISHED;
    OPENSSL_cleanse(client_key, sizeof(client_key));
    free(msg);
    free(cbind_b64);
    free(cbind);
    free(proof);
    free(auth_message);
    return rc;
}
