/*
 * auth.c — the auth_file (PgBouncer's userlist.txt format) and the md5 and
 * cleartext password checks. SCRAM is in scram.c.
 *
 * The user list is read whole into a small table; lookups are linear
 * because a userlist is short and is rebuilt on reload. Parsing is strict:
 * a malformed line is an error naming FILE:LINE rather than a user who
 * silently cannot log in.
 *
 * What it must never do: compare a secret with memcmp/strcmp (everything
 * goes through CRYPTO_memcmp on equal-length buffers), or log a secret.
 *
 * Login probing: a SCRAM exchange must look the same for every name, known
 * or not. The list therefore carries a mock key (a hash of all its entries,
 * so only someone who knows the secrets could compute it, and every
 * instance reading the same file has the same one) from which the mock
 * exchange of an unknown user takes its stable salt, and it derives a SCRAM
 * verifier for every plaintext secret once, when loaded
 * (auth_userlist_prepare_scram), with a salt from the same key: no login
 * then runs PBKDF2, so neither the salts nor the time an exchange takes
 * tell a user with a plaintext secret, one with a stored verifier and an
 * unknown name apart. What remains: a change to the file changes the mock
 * key, and with it the salts of unknown and plaintext users, not those of
 * stored verifiers.
 */
#include "auth.h"

#include "buf.h"
#include "scram.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct PgwUserlist {
    size_t n;
    char **users;
    char **secrets;
    char **scram; /* what SCRAM runs against, per user (NULL: mock); after prepare */
    uint8_t mock_key[SCRAM_MOCK_KEY_LEN];
};

/* SHA-256 over every entry: the mock key (see above). */
static void compute_mock_key(PgwUserlist *ul)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    static const char domain[] = "pgwarden mock SCRAM salt key v1";
    unsigned int len = 0;
    if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, domain, sizeof domain) == 1) {
        for (size_t i = 0; i < ul->n; i++) {
            EVP_DigestUpdate(ctx, ul->users[i], strlen(ul->users[i]) + 1);
            EVP_DigestUpdate(ctx, ul->secrets[i], strlen(ul->secrets[i]) + 1);
        }
        EVP_DigestFinal_ex(ctx, ul->mock_key, &len);
    }
    if (len != SCRAM_MOCK_KEY_LEN && RAND_bytes(ul->mock_key, sizeof ul->mock_key) != 1)
        memset(ul->mock_key, 0, sizeof ul->mock_key); /* still unknown to a client */
    EVP_MD_CTX_free(ctx);
}


int auth_userlist_parse(const char *name, const char *text, PgwUserlist **out, char *err,
                        size_t errlen)
{
    PgwUserlist *ul = pgw_calloc(1, sizeof(*ul));
    char *user = NULL, *secret = NULL;
    const char *line = text;
    int lineno = 0;

    *out = NULL;
    while (line && *line) {
        const char *nl = strchr(line, '\n');
        const char *s = line;
        lineno++;
        line = nl ? nl + 1 : NULL;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\n' || *s == '\r' || *s == '\0' || *s == ';' || *s == '#')
            continue;
        user = buf_take_quoted(&s);
        while (user && (*s == ' ' || *s == '\t'))
            s++;
        secret = user ? buf_take_quoted(&s) : NULL;
        if (!user || !secret || !*user) {
            snprintf(err, errlen, "%s:%d: expected \"user\" \"password\"", name, lineno);
            goto fail;
        }
        /* PgBouncer ignores whatever follows the two fields; so do we. */
        if (auth_userlist_get(ul, user)) {
            snprintf(err, errlen, "%s:%d: duplicate user \"%s\"", name, lineno, user);
            goto fail;
        }
        ul->users = pgw_realloc(ul->users, (ul->n + 1) * sizeof(char *));
        ul->secrets = pgw_realloc(ul->secrets, (ul->n + 1) * sizeof(char *));
        ul->users[ul->n] = user;
        ul->secrets[ul->n] = secret;
        ul->n++;
        user = secret = NULL;
    }
    compute_mock_key(ul);
    *out = ul;
    return 0;
fail:
    free(user);
    if (secret)
        OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
    auth_userlist_free(ul);
    return -1;
}

int auth_userlist_load(const char *path, PgwUserlist **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char chunk[4096];
    size_t n;
    PgwBuf text;
    int rc = -1;

    *out = NULL;
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    buf_init(&text);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&text, chunk, n);
    if (ferror(f)) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        goto fail;
    }
    char *s = buf_steal_str(&text);
    rc = auth_userlist_parse(path, s, out, err, errlen);
    OPENSSL_cleanse(s, strlen(s));
    free(s);
fail:
    buf_free(&text);
    fclose(f);
    OPENSSL_cleanse(chunk, sizeof(chunk));
    return rc;
}

void auth_userlist_free(PgwUserlist *ul)
{
    if (!ul)
        return;
    for (size_t i = 0; i < ul->n; i++) {
        free(ul->users[i]);
        OPENSSL_cleanse(ul->secrets[i], strlen(ul->secrets[i]));
        free(ul->secrets[i]);
        if (ul->scram && ul->scram[i] && ul->scram[i] != ul->secrets[i]) {
            OPENSSL_cleanse(ul->scram[i], strlen(ul->scram[i]));
            free(ul->scram[i]);
        }
    }
    free(ul->users);
    free(ul->secrets);
    free(ul->scram);
    OPENSSL_cleanse(ul->mock_key, sizeof ul->mock_key);
    free(ul);
}

const char *auth_userlist_get(const PgwUserlist *ul, const char *user)
{
    for (size_t i = 0; ul && user && i < ul->n; i++)
        if (strcmp(ul->users[i], user) == 0)
            return ul->secrets[i];
    return NULL;
}

const uint8_t *auth_userlist_mock_key(const PgwUserlist *ul)
{
    return ul->mock_key;
}

static bool is_md5_hash(const char *secret);

int auth_userlist_prepare_scram(PgwUserlist *ul)
{
    if (ul->scram)
        return 0;
    char **scram = pgw_calloc(ul->n ? ul->n : 1, sizeof *scram);
    for (size_t i = 0; i < ul->n; i++) {
        const char *secret = ul->secrets[i];
        if (auth_secret_kind(secret) == PGW_SECRET_SCRAM) {
            scram[i] = ul->secrets[i]; /* stored: used as is (or mocked if malformed) */
        } else if (!is_md5_hash(secret)) {
            uint8_t salt[SCRAM_SALT_LEN];
            if (scram_mock_salt(ul->mock_key, ul->users[i], salt) != 0)
                goto fail;
            scram[i] = scram_make_verifier(secret, salt, sizeof salt, SCRAM_ITERATIONS);
            if (!scram[i])
                goto fail;
        } /* an md5 hash cannot answer SCRAM: NULL, the mock exchange */
    }
    ul->scram = scram;
    return 0;
fail:
    for (size_t i = 0; i < ul->n; i++)
        if (scram[i] && scram[i] != ul->secrets[i])
            free(scram[i]);
    free(scram);
    return -1;
}

const char *auth_userlist_scram(const PgwUserlist *ul, const char *user)
{
    for (size_t i = 0; ul && user && i < ul->n; i++)
        if (strcmp(ul->users[i], user) == 0)
            return ul->scram ? ul->scram[i] : ul->secrets[i];
    return NULL;
}

static bool is_md5_hash(const char *secret)
{
    return strncmp(secret, "md5", 3) == 0 && strlen(secret) == 35 &&
           strspn(secret + 3, "0123456789abcdef") == 32;
}

PgwSecretKind auth_secret_kind(const char *secret)
{
    if (!secret)
        return PGW_SECRET_PLAIN;
    if (is_md5_hash(secret))
        return PGW_SECRET_MD5;
    if (strncmp(secret, "SCRAM-SHA-256$", 14) == 0)
        return PGW_SECRET_SCRAM;
    return PGW_SECRET_PLAIN;
}

void auth_md5_salt(uint8_t salt[4])
{
    /* RAND_bytes only fails when the CSPRNG cannot be seeded; a predictable
     * salt would allow replay, so this is fatal. */
    if (RAND_bytes(salt, 4) != 1) {
        fputs("pgwarden: cannot draw random bytes for an md5 salt\n", stderr);
        abort();
    }
}

/* md5 of a ‖ b as 32 lowercase hex digits. */
static int md5_hex(const void *a, size_t alen, const void *b, size_t blen, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = -1;

    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL) || !EVP_DigestUpdate(ctx, a, alen) ||
        !EVP_DigestUpdate(ctx, b, blen) || !EVP_DigestFinal_ex(ctx, digest, &dlen) || dlen != 16)
        goto fail;
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[32] = '\0';
    rc = 0;
fail:
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* The stored md5 hash ("md5" + hex of password ‖ user) for a secret. */
static int stored_md5(const char *secret, const char *user, char out[36])
{
    if (is_md5_hash(secret)) {
        memcpy(out, secret, 36);
        return 0;
    }
    if (auth_secret_kind(secret) != PGW_SECRET_PLAIN)
        return -1;
    memcpy(out, "md5", 3);
    return md5_hex(secret, strlen(secret), user, strlen(user), out + 3);
}

bool auth_md5_check(const char *secret, const char *user, const uint8_t salt[4],
                    const char *response)
{
    char stored[36], expect[36];
    bool ok = false;

    if (!secret || !user || !response || strlen(response) != 35)
        goto done;
    if (stored_md5(secret, user, stored) < 0)
        goto done;
    memcpy(expect, "md5", 3);
    if (md5_hex(stored + 3, 32, salt, 4, expect + 3) < 0)
        goto done;
    ok = CRYPTO_memcmp(expect, response, 35) == 0;
done:
    OPENSSL_cleanse(stored, sizeof(stored));
    OPENSSL_cleanse(expect, sizeof(expect));
    return ok;
}

/* Compare two strings without leaking where they differ: both are hashed
 * first so the comparison runs over equal lengths. */
static bool equal_secret(const char *a, const char *b)
{
    uint8_t ha[SHA256_DIGEST_LENGTH], hb[SHA256_DIGEST_LENGTH];

    SHA256((const uint8_t *)a, strlen(a), ha);
    SHA256((const uint8_t *)b, strlen(b), hb);
    return CRYPTO_memcmp(ha, hb, sizeof(ha)) == 0;
}

bool auth_plain_check(const char *secret, const char *user, const char *password)
{
    if (!secret || !user || !password)
        return false;
    switch (auth_secret_kind(secret)) {
    case PGW_SECRET_PLAIN:
        return equal_secret(secret, password);
    case PGW_SECRET_MD5: {
        char hash[36] = "md5";
        if (md5_hex(password, strlen(password), user, strlen(user), hash + 3) < 0)
            return false;
        return CRYPTO_memcmp(hash, secret, 35) == 0;
    }
    case PGW_SECRET_SCRAM: {
        int iterations, my_iterations;
        uint8_t *salt = NULL, *my_salt = NULL, stored[32], server[32], my_stored[32];
        size_t salt_len, my_salt_len;
        char *mine = NULL;
        bool ok = false;
        /* Derive the verifier from the password with the stored salt and
         * compare StoredKeys. */
        if (scram_parse_verifier(secret, &iterations, &salt, &salt_len, stored, server) < 0)
            return false;
        mine = scram_make_verifier(password, salt, salt_len, iterations);
        if (mine && scram_parse_verifier(mine, &my_iterations, &my_salt, &my_salt_len, my_stored,
                                         server) == 0)
            ok = CRYPTO_memcmp(my_stored, stored, sizeof(stored)) == 0;
        free(mine);
        free(salt);
        free(my_salt);
        return ok;
    }
    }
    return false;
}
