/*
 * test_scram.c — SCRAM-SHA-256 server exchange (RFC 7677 vector, a test-side
 * client for the other cases), base64, md5 and the userlist parser.
 *
 * The client half here is written independently of src/scram.c from the
 * RFC's formulas so a mistake shared by both sides is unlikely.
 */
#include "auth.h"
#include "scram.h"

#include <check.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RFC_CLIENT_NONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_NONCE RFC_CLIENT_NONCE RFC_SERVER_NONCE
#define RFC_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
/* Computed with Python's hashlib from the RFC's password, salt and count. */
#define RFC_VERIFIER                                                                               \
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"    \
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
#define RFC_FINAL_NO_PROOF "c=biws,r=" RFC_NONCE
#define RFC_PROOF "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="

static int first(PgwScram *s, const char *msg, char **out, char *err)
{
    size_t len;
    return scram_server_first(s, (const uint8_t *)msg, strlen(msg), out, &len, err, 256);
}

static int final(PgwScram *s, const char *msg, char **out, char *err)
{
    size_t len;
    return scram_server_final(s, (const uint8_t *)msg, strlen(msg), out, &len, err, 256);
}

/* A client: from server-first and the password, the client-final message. */
static char *client_final(const char *password, const char *client_first_bare,
                          const char *server_first, const char *cbind)
{
    char nonce[256], salt_b64[256];
    int iter;
    uint8_t *salt, salted[32], ck[32], stored[32], sig[32], proof[32];
    size_t salt_len;
    unsigned int l = 32;
    char auth[1024], without[512], *out;

    ck_assert_int_eq(sscanf(server_first, "r=%255[^,],s=%255[^,],i=%d", nonce, salt_b64, &iter), 3);
    ck_assert_int_eq(scram_b64_decode(salt_b64, &salt, &salt_len), 0);
    PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, iter, EVP_sha256(), 32,
                      salted);
    free(salt);
    HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Client Key", 10, ck, &l);
    SHA256(ck, 32, stored);
    snprintf(without, sizeof(without), "c=%s,r=%s", cbind, nonce);
    snprintf(auth, sizeof(auth), "%s,%s,%s", client_first_bare, server_first, without);
    HMAC(EVP_sha256(), stored, 32, (const uint8_t *)auth, strlen(auth), sig, &l);
    for (int i = 0; i < 32; i++)
        proof[i] = ck[i] ^ sig[i];
    char *p = scram_b64_encode(proof, 32);
    out = malloc(strlen(without) + strlen(p) + 4);
    sprintf(out, "%s,p=%s", without, p);
    free(p);
    return out;
}

START_TEST(rfc7677_vector)
{
    char err[256], *out = NULL;
    PgwScram *s = scram_server_new("user", RFC_VERIFIER, RFC_SERVER_NONCE);

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(first(s, "n,,n=user,r=" RFC_CLIENT_NONCE, &out, err), 0);
    ck_assert_str_eq(out, "r=" RFC_NONCE ",s=" RFC_SALT ",i=4096");
    free(out);
    ck_assert_int_eq(final(s, RFC_FINAL_NO_PROOF ",p=" RFC_PROOF, &out, err), 0);
    ck_assert_str_eq(out, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    free(out);
    scram_free(s);
}
END_TEST

START_TEST(verifier_matches_independent_derivation)
{
    uint8_t *salt;
    size_t salt_len;

    ck_assert_int_eq(scram_b64_decode(RFC_SALT, &salt, &salt_len), 0);
    char *v = scram_make_verifier("pencil", salt, salt_len, 4096);
    ck_assert_str_eq(v, RFC_VERIFIER);
    free(v);
    free(salt);
}
END_TEST

START_TEST(wrong_proof_rejected)
{
    char err[256], *out = NULL;
    PgwScram *s = scram_server_new("user", RFC_VERIFIER, RFC_SERVER_NONCE);

    ck_assert_int_eq(first(s, "n,,n=user,r=" RFC_CLIENT_NONCE, &out, err), 0);
    free(out);
    out = NULL;
    /* Same shape, one byte of the proof changed. */
    ck_assert_int_eq(
        final(s, RFC_FINAL_NO_PROOF ",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", &out, err),
        -1);
    ck_assert_ptr_null(out);
    ck_assert(scram_auth_failed(s));
    ck_assert_str_eq(err, "password authentication failed");
    scram_free(s);
}
END_TEST

/* A full exchange, with the test's own client; key: the mock key (NULL:
 * the per-process one). */
static int exchange_keyed(const char *user, const char *secret, const uint8_t *key,
                          const char *password, const char *gs2, const char *cbind,
                          char **server_first_out)
{
    char err[256], *sf = NULL, *sfinal = NULL, cf[128];
    PgwScram *s = scram_server_new_keyed(user, secret, key, NULL);

    ck_assert_ptr_nonnull(s);
    snprintf(cf, sizeof(cf), "%sn=,r=clientnonce123", gs2);
    ck_assert_int_eq(first(s, cf, &sf, err), 0);
    char *msg = client_final(password, "n=,r=clientnonce123", sf, cbind);
    int rc = final(s, msg, &sfinal, err);
    if (rc < 0)
        ck_assert(scram_auth_failed(s));
    free(msg);
    free(sfinal);
    if (server_first_out)
        *server_first_out = sf;
    else
        free(sf);
    scram_free(s);
    return rc;
}

static int exchange(const char *user, const char *secret, const char *password, const char *gs2,
                    const char *cbind, char **server_first_out)
{
    return exchange_keyed(user, secret, NULL, password, gs2, cbind, server_first_out);
}

/* The salt attribute of a server-first message, malloc'd. */
static char *salt_of(const char *server_first)
{
    const char *s = strstr(server_first, ",s=");
    ck_assert_ptr_nonnull(s);
    return strndup(s + 3, strcspn(s + 3, ","));
}

START_TEST(plaintext_secret_round_trip)
{
    char *sf;

    ck_assert_int_eq(exchange("alice", "s3cret", "s3cret", "n,,", "biws", &sf), 0);
    /* A 16-byte salt (24 base64 chars) and PostgreSQL's 4096 rounds. */
    ck_assert_ptr_nonnull(strstr(sf, ",i=4096"));
    ck_assert_int_eq((int)(strstr(sf, ",i=") - strstr(sf, ",s=")), 3 + 24);
    free(sf);
    ck_assert_int_eq(exchange("alice", "s3cret", "wrong", "n,,", "biws", NULL), -1);
    /* "y,," (client could bind, thinks we cannot) echoes as eSws. */
    ck_assert_int_eq(exchange("alice", "s3cret", "s3cret", "y,,", "eSws", NULL), 0);
}
END_TEST

/* Login probing: no name's salt changes from one attempt to the next,
 * known or not, and with the same mock key (two instances reading the same
 * auth_file) the same name gets the same salt everywhere. */
START_TEST(salts_are_stable_for_every_kind_of_user)
{
    uint8_t k1[SCRAM_MOCK_KEY_LEN], k2[SCRAM_MOCK_KEY_LEN];
    memset(k1, 1, sizeof k1);
    memset(k2, 2, sizeof k2);
    const char *users[] = {"ghost", "alice"};
    const char *secrets[] = {NULL, "s3cret"}; /* unknown; plaintext */
    for (int u = 0; u < 2; u++) {
        char *a, *b, *c;
        exchange_keyed(users[u], secrets[u], k1, "whatever", "n,,", "biws", &a);
        exchange_keyed(users[u], secrets[u], k1, "whatever", "n,,", "biws", &b);
        exchange_keyed(users[u], secrets[u], k2, "whatever", "n,,", "biws", &c);
        char *sa = salt_of(a), *sb = salt_of(b), *sc = salt_of(c);
        ck_assert_str_eq(sa, sb);
        ck_assert_str_ne(sa, sc);
        ck_assert_ptr_nonnull(strstr(a, ",i=4096"));
        free(sa);
        free(sb);
        free(sc);
        free(a);
        free(b);
        free(c);
    }
    /* The right password still works for the plaintext user. */
    ck_assert_int_eq(exchange_keyed("alice", "s3cret", k1, "s3cret", "n,,", "biws", NULL), 0);
    ck_assert_int_eq(exchange_keyed("ghost", NULL, k1, "s3cret", "n,,", "biws", NULL), -1);
}
END_TEST

START_TEST(userlist_mock_key_and_prepared_verifiers)
{
    static const char text[] = "\"amy\" \"plain-pw\"\n"
                               "\"hal\" \"md520c46e3762c864548e296b33c3406aa9\"\n";
    char err[256];
    PgwUserlist *a, *b, *c;
    ck_assert_int_eq(auth_userlist_parse("u", text, &a, err, sizeof err), 0);
    ck_assert_int_eq(auth_userlist_parse("u", text, &b, err, sizeof err), 0);
    ck_assert_int_eq(auth_userlist_parse("u", "\"amy\" \"other-pw\"\n", &c, err, sizeof err), 0);
    /* The key follows the file's content, not the process. */
    ck_assert_mem_eq(auth_userlist_mock_key(a), auth_userlist_mock_key(b), SCRAM_MOCK_KEY_LEN);
    ck_assert(memcmp(auth_userlist_mock_key(a), auth_userlist_mock_key(c), SCRAM_MOCK_KEY_LEN) !=
              0);

    ck_assert_int_eq(auth_userlist_prepare_scram(a), 0);
    const char *v = auth_userlist_scram(a, "amy");
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(strncmp(v, "SCRAM-SHA-256$4096:", 19), 0);
    ck_assert_ptr_null(auth_userlist_scram(a, "hal")); /* md5 cannot answer SCRAM */
    ck_assert_ptr_null(auth_userlist_scram(a, "nobody"));
    /* The derived verifier works, and its salt is the one the keyed
     * exchange would choose for a plaintext secret. */
    char *sf1, *sf2;
    ck_assert_int_eq(
        exchange_keyed("amy", v, auth_userlist_mock_key(a), "plain-pw", "n,,", "biws", &sf1), 0);
    ck_assert_int_eq(exchange_keyed("amy", "plain-pw", auth_userlist_mock_key(a), "plain-pw", "n,,",
                                    "biws", &sf2),
                     0);
    char *s1 = salt_of(sf1), *s2 = salt_of(sf2);
    ck_assert_str_eq(s1, s2);
    free(s1);
    free(s2);
    free(sf1);
    free(sf2);
    auth_userlist_free(a);
    auth_userlist_free(b);
    auth_userlist_free(c);
}
END_TEST

START_TEST(verifier_secret_round_trip)
{
    const uint8_t salt[] = "0123456789abcdef";
    char *v = scram_make_verifier("hunter2", salt, 16, 4096);

    ck_assert_int_eq(exchange("bob", v, "hunter2", "n,,", "biws", NULL), 0);
    ck_assert_int_eq(exchange("bob", v, "hunter3", "n,,", "biws", NULL), -1);
    free(v);
}
END_TEST

START_TEST(unknown_user_looks_real_and_fails)
{
    char *a, *b, *c;

    /* Even the right-looking password fails; the salt is stable per user
     * and differs between users, as real salts do. */
    ck_assert_int_eq(exchange("ghost", NULL, "anything", "n,,", "biws", &a), -1);
    ck_assert_int_eq(exchange("ghost", NULL, "anything", "n,,", "biws", &b), -1);
    ck_assert_int_eq(exchange("phantom", NULL, "x", "n,,", "biws", &c), -1);
    ck_assert_str_eq(strstr(a, ",s="), strstr(b, ",s="));
    ck_assert_str_ne(strstr(a, ",s="), strstr(c, ",s="));
    ck_assert_ptr_nonnull(strstr(a, ",i=4096"));
    free(a);
    free(b);
    free(c);
    /* An md5 secret cannot answer SCRAM. */
    ck_assert_int_eq(
        exchange("user", "md520c46e3762c864548e296b33c3406aa9", "pencil", "n,,", "biws", NULL), -1);
}
END_TEST

static const char *const bad_first[] = {
    "",
    "n",
    "n,",
    "x,,n=,r=abc",
    "p=tls-server-end-point,,n=,r=abc",
    "n,a=bob,n=,r=abc",
    "n,,m=ext,n=,r=abc",
    "n,,r=abc",
    "n,,n=",
    "n,,n=,r=",
    "n,,n=,r=ab\x01",
    "n,,n=,s=abc",
};

START_TEST(malformed_client_first)
{
    char err[256] = "", *out = NULL;
    PgwScram *s = scram_server_new("user", "pw", "servernonce");

    ck_assert_int_eq(first(s, bad_first[_i], &out, err), -1);
    ck_assert_ptr_null(out);
    ck_assert_msg(err[0], "no error message for '%s'", bad_first[_i]);
    scram_free(s);
}
END_TEST

START_TEST(channel_binding_refused_with_reason)
{
    char err[256], *out = NULL;
    PgwScram *s = scram_server_new("user", "pw", NULL);

    ck_assert_int_eq(first(s, "p=tls-server-end-point,,n=,r=abc", &out, err), -1);
    ck_assert_ptr_nonnull(strstr(err, "channel binding"));
    scram_free(s);
}
END_TEST

static const char *const bad_final[] = {
    "",
    "c=biws",
    "c=eSws,r=" RFC_NONCE ",p=" RFC_PROOF, /* y,, binding after an n,, header */
    "c=biws,r=" RFC_CLIENT_NONCE ",p=" RFC_PROOF, /* nonce without the server part */
    "c=biws,r=" RFC_NONCE "x,p=" RFC_PROOF,
    "c=biws,r=" RFC_NONCE,
    "c=biws,r=" RFC_NONCE ",p=",
    "c=biws,r=" RFC_NONCE ",p=c2hvcnQ=",
    "c=biws,r=" RFC_NONCE ",p=" RFC_PROOF ",x=1",
    "c=!!!!,r=" RFC_NONCE ",p=" RFC_PROOF,
    "r=" RFC_NONCE ",p=" RFC_PROOF,
};

START_TEST(malformed_client_final)
{
    char err[256] = "", *out = NULL;
    PgwScram *s = scram_server_new("user", RFC_VERIFIER, RFC_SERVER_NONCE);

    ck_assert_int_eq(first(s, "n,,n=user,r=" RFC_CLIENT_NONCE, &out, err), 0);
    free(out);
    out = NULL;
    ck_assert_int_eq(final(s, bad_final[_i], &out, err), -1);
    ck_assert_ptr_null(out);
    ck_assert(!scram_auth_failed(s));
    ck_assert_msg(err[0], "no error message for '%s'", bad_final[_i]);
    scram_free(s);
}
END_TEST

/* Each failure names what is wrong: a client author must not hunt a nonce
 * bug when the proof is missing (issue 14 item 7). */
static const struct {
    const char *msg, *says, *not_says;
} final_reasons[] = {
    {"c=biws,r=" RFC_NONCE, "no proof (p=)", "nonce"},
    {"c=biws,r=" RFC_NONCE ",x=1", "no proof (p=)", "nonce"},
    {"c=biws,r=" RFC_NONCE ",p=c2hvcnQ=", "invalid proof", "nonce"},
    {"c=biws,r=" RFC_NONCE "x,p=" RFC_PROOF, "nonce does not match", "proof"},
    {"c=biws,r=" RFC_CLIENT_NONCE ",p=" RFC_PROOF, "nonce does not match", "proof"},
    {"c=biws,p=" RFC_PROOF, "expected r=", "proof"},
};

START_TEST(client_final_failures_say_what_is_wrong)
{
    char err[256] = "", *out = NULL;
    PgwScram *s = scram_server_new("user", RFC_VERIFIER, RFC_SERVER_NONCE);

    ck_assert_int_eq(first(s, "n,,n=user,r=" RFC_CLIENT_NONCE, &out, err), 0);
    free(out);
    out = NULL;
    ck_assert_int_eq(final(s, final_reasons[_i].msg, &out, err), -1);
    ck_assert_msg(strstr(err, final_reasons[_i].says), "'%s': got '%s'", final_reasons[_i].msg,
                  err);
    ck_assert_msg(!strstr(err, final_reasons[_i].not_says), "'%s': got '%s'", final_reasons[_i].msg,
                  err);
    scram_free(s);
}
END_TEST

START_TEST(out_of_order_messages)
{
    char err[256], *out = NULL;
    PgwScram *s = scram_server_new("user", RFC_VERIFIER, RFC_SERVER_NONCE);

    ck_assert_int_eq(final(s, RFC_FINAL_NO_PROOF ",p=" RFC_PROOF, &out, err), -1);
    scram_free(s);
    s = scram_server_new("user", RFC_VERIFIER, RFC_SERVER_NONCE);
    ck_assert_int_eq(first(s, "n,,n=user,r=" RFC_CLIENT_NONCE, &out, err), 0);
    free(out);
    ck_assert_int_eq(first(s, "n,,n=user,r=" RFC_CLIENT_NONCE, &out, err), -1);
    scram_free(s);
}
END_TEST

static const struct {
    const char *raw, *b64;
} b64_cases[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
    {"\xff\xfe?", "//4/"},
};

START_TEST(base64_round_trip)
{
    const char *raw = b64_cases[_i].raw;
    char *enc = scram_b64_encode((const uint8_t *)raw, strlen(raw));
    uint8_t *dec;
    size_t len;

    ck_assert_str_eq(enc, b64_cases[_i].b64);
    ck_assert_int_eq(scram_b64_decode(enc, &dec, &len), 0);
    ck_assert_uint_eq(len, strlen(raw));
    ck_assert(memcmp(dec, raw, len) == 0);
    free(enc);
    free(dec);
}
END_TEST

static const char *const bad_b64[] = {"Zg=",   "Zg==Zg==", "Z===", "Zm9v\n",
                                      "Zm 9v", "=Zm9",     "Zm9-", "Z=g="};

START_TEST(base64_rejects_malformed)
{
    uint8_t *dec = NULL;
    size_t len;

    ck_assert_int_eq(scram_b64_decode(bad_b64[_i], &dec, &len), -1);
}
END_TEST

/* md5 values computed with Python: md5("pencil" "user"), then with salt 01020304. */
#define MD5_STORED "md520c46e3762c864548e296b33c3406aa9"
#define MD5_RESPONSE "md54376eb6913b38f9aaff38dc7cf19ca76"

START_TEST(md5_check)
{
    const uint8_t salt[4] = {1, 2, 3, 4}, other[4] = {1, 2, 3, 5};

    ck_assert(auth_md5_check("pencil", "user", salt, MD5_RESPONSE));
    ck_assert(auth_md5_check(MD5_STORED, "user", salt, MD5_RESPONSE));
    ck_assert(!auth_md5_check("pencil", "user", other, MD5_RESPONSE));
    ck_assert(!auth_md5_check("pencil", "someone", salt, MD5_RESPONSE));
    ck_assert(!auth_md5_check("pencil2", "user", salt, MD5_RESPONSE));
    ck_assert(!auth_md5_check("pencil", "user", salt, "md54376eb6913b38f9aaff38dc7cf19ca7"));
    ck_assert(!auth_md5_check("pencil", "user", salt, ""));
    ck_assert(!auth_md5_check(RFC_VERIFIER, "user", salt, MD5_RESPONSE));
    ck_assert(!auth_md5_check(NULL, "user", salt, MD5_RESPONSE));
}
END_TEST

START_TEST(md5_salt_is_random)
{
    uint8_t a[4], b[4];

    auth_md5_salt(a);
    auth_md5_salt(b);
    /* 1 in 2^32 chance of a false failure. */
    ck_assert(memcmp(a, b, 4) != 0);
}
END_TEST

START_TEST(plain_check)
{
    ck_assert(auth_plain_check("pencil", "user", "pencil"));
    ck_assert(!auth_plain_check("pencil", "user", "pencil2"));
    ck_assert(!auth_plain_check("pencil", "user", "pencilx"));
    ck_assert(auth_plain_check(MD5_STORED, "user", "pencil"));
    ck_assert(!auth_plain_check(MD5_STORED, "user", "pencils"));
    ck_assert(auth_plain_check(RFC_VERIFIER, "user", "pencil"));
    ck_assert(!auth_plain_check(RFC_VERIFIER, "user", "pen"));
}
END_TEST

START_TEST(secret_kinds)
{
    ck_assert_int_eq(auth_secret_kind("pencil"), PGW_SECRET_PLAIN);
    ck_assert_int_eq(auth_secret_kind(MD5_STORED), PGW_SECRET_MD5);
    ck_assert_int_eq(auth_secret_kind("md5notahash"), PGW_SECRET_PLAIN);
    ck_assert_int_eq(auth_secret_kind(RFC_VERIFIER), PGW_SECRET_SCRAM);
}
END_TEST

START_TEST(userlist_parse)
{
    const char *text = "; comment\n"
                       "# another\n"
                       "\n"
                       "\"alice\" \"s3cret\"\n"
                       "  \"bob \"\"the\"\" builder\" \"pa\"\"ss\"  trailing ignored\r\n"
                       "\"carol\" \"" RFC_VERIFIER "\"\n"
                       "\"dave\" \"" MD5_STORED "\"";
    PgwUserlist *ul;
    char err[256];

    ck_assert_int_eq(auth_userlist_parse("users.txt", text, &ul, err, sizeof(err)), 0);
    ck_assert_str_eq(auth_userlist_get(ul, "alice"), "s3cret");
    ck_assert_str_eq(auth_userlist_get(ul, "bob \"the\" builder"), "pa\"ss");
    ck_assert_str_eq(auth_userlist_get(ul, "carol"), RFC_VERIFIER);
    ck_assert_int_eq(auth_secret_kind(auth_userlist_get(ul, "carol")), PGW_SECRET_SCRAM);
    ck_assert_str_eq(auth_userlist_get(ul, "dave"), MD5_STORED);
    ck_assert_ptr_null(auth_userlist_get(ul, "Alice"));
    ck_assert_ptr_null(auth_userlist_get(ul, "eve"));
    auth_userlist_free(ul);
}
END_TEST

static const struct {
    const char *text, *err;
} bad_userlists[] = {
    {"\"alice\" \"x\"\nbob \"y\"\n", "users.txt:2: expected \"user\" \"password\""},
    {"\"alice\" \"x\n", "users.txt:1: expected \"user\" \"password\""},
    {"\"alice\"\n", "users.txt:1: expected \"user\" \"password\""},
    {"\"\" \"x\"\n", "users.txt:1: expected \"user\" \"password\""},
    {"# c\n\"a\" \"x\"\n\"a\" \"y\"\n", "users.txt:3: duplicate user \"a\""},
};

START_TEST(userlist_errors)
{
    PgwUserlist *ul = (PgwUserlist *)1;
    char err[256] = "";

    ck_assert_int_eq(
        auth_userlist_parse("users.txt", bad_userlists[_i].text, &ul, err, sizeof(err)), -1);
    ck_assert_ptr_null(ul);
    ck_assert_str_eq(err, bad_userlists[_i].err);
}
END_TEST

START_TEST(userlist_load_missing_file)
{
    PgwUserlist *ul;
    char err[256];

    ck_assert_int_eq(auth_userlist_load("/nonexistent/users.txt", &ul, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/users.txt: cannot open"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("scram");
    TCase *tc = tcase_create("scram");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, rfc7677_vector);
    tcase_add_test(tc, verifier_matches_independent_derivation);
    tcase_add_test(tc, wrong_proof_rejected);
    tcase_add_test(tc, plaintext_secret_round_trip);
    tcase_add_test(tc, verifier_secret_round_trip);
    tcase_add_test(tc, unknown_user_looks_real_and_fails);
    tcase_add_test(tc, salts_are_stable_for_every_kind_of_user);
    tcase_add_test(tc, userlist_mock_key_and_prepared_verifiers);
    tcase_add_loop_test(tc, malformed_client_first, 0, PGW_ARRAY_LEN(bad_first));
    tcase_add_test(tc, channel_binding_refused_with_reason);
    tcase_add_loop_test(tc, malformed_client_final, 0, PGW_ARRAY_LEN(bad_final));
    tcase_add_loop_test(tc, client_final_failures_say_what_is_wrong, 0,
                        PGW_ARRAY_LEN(final_reasons));
    tcase_add_test(tc, out_of_order_messages);
    tcase_add_loop_test(tc, base64_round_trip, 0, PGW_ARRAY_LEN(b64_cases));
    tcase_add_loop_test(tc, base64_rejects_malformed, 0, PGW_ARRAY_LEN(bad_b64));
    tcase_add_test(tc, md5_check);
    tcase_add_test(tc, md5_salt_is_random);
    tcase_add_test(tc, plain_check);
    tcase_add_test(tc, secret_kinds);
    tcase_add_test(tc, userlist_parse);
    tcase_add_loop_test(tc, userlist_errors, 0, PGW_ARRAY_LEN(bad_userlists));
    tcase_add_test(tc, userlist_load_missing_file);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
