/*
 * fuzz_auth.c — libFuzzer target for the login path as pgwarden's client
 * module walks it: the untyped startup packet, then the SASLInitialResponse
 * body, then the SCRAM client-final message, each parsed by the same
 * functions the server runs (codec_parse_startup, codec_parse_sasl_initial,
 * scram_server_first, scram_server_final).
 *
 * Input layout: the three pieces separated by the line "\n--\n" (missing
 * pieces mean the client stopped there). The user comes from the startup
 * packet and is looked up in a fixed userlist, so known users (a verifier,
 * an md5 secret SCRAM cannot use) and unknown ones (the mock exchange) are
 * all reached.
 *
 * A fuzzer cannot compute an HMAC, so a client-final message whose proof is
 * the literal "p=PROOF" gets the correct proof filled in by this harness the
 * way a client would compute it: that lets mutations reach the code after a
 * valid proof (server signature, state handling) instead of stopping at
 * "wrong password" every time. Properties checked: a successful exchange
 * happens only for a known user with the right password; its server-final
 * is "v=" + 44 base64 characters; a failed one never returns a message.
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "buf.h"
#include "codec.h"
#include "scram.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define SEP "\n--\n"
#define PASSWORD "alice-secret"
#define ITERATIONS 2 /* PBKDF2 cost per exec: keep it tiny */

static PgwUserlist *users;
static char *alice_verifier;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const uint8_t salt[16] = "fuzz-salt-16byte";
    char err[256], text[1024];

    alice_verifier = scram_make_verifier(PASSWORD, salt, sizeof(salt), ITERATIONS);
    CHECK(alice_verifier);
    /* carol's md5 secret cannot answer SCRAM: the mock exchange, as for an
     * unknown user. (A plaintext secret is left out: the server would run
     * 4096 PBKDF2 rounds with a random salt per input, which is slow and
     * not reproducible; the unit tests cover it.) */
    snprintf(text, sizeof(text),
             "\"alice\" \"%s\"\n\"carol\" \"md5a2a8dbd7f79b84b6ba43a3bb3a9ab7c5\"\n",
             alice_verifier);
    CHECK(auth_userlist_parse("fuzz-users", text, &users, err, sizeof(err)) == 0);
    return 0;
}

/* Split off the next piece of the input at SEP. */
static const uint8_t *next_piece(const uint8_t **p, const uint8_t *end, size_t *len)
{
    const uint8_t *start = *p;
    if (!start)
        return NULL;
    const uint8_t *sep = memmem(start, (size_t)(end - start), SEP, strlen(SEP));
    if (sep) {
        *len = (size_t)(sep - start);
        *p = sep + strlen(SEP);
    } else {
        *len = (size_t)(end - start);
        *p = NULL;
    }
    return start;
}

/* An exact-size heap copy so that ASan sees any read past the end. */
static uint8_t *copy(const uint8_t *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    CHECK(c);
    memcpy(c, p, n);
    return c;
}

/* The client side of the proof (RFC 5802), from the server-first message. */
static char *with_proof(const char *final, size_t final_len, const char *client_first_bare,
                        const char *server_first, const char *password)
{
    const char *at = strstr(final, ",p=PROOF");
    char nonce[512], salt_b64[512];
    int iter;
    uint8_t *salt, salted[32], ck[32], stored[32], sig[32], proof[32];
    size_t salt_len;
    unsigned int l = 32;

    if (!at || at[8] != '\0' || (size_t)(at - final) > 4096)
        return NULL;
    if (sscanf(server_first, "r=%511[^,],s=%511[^,],i=%d", nonce, salt_b64, &iter) != 3)
        return NULL;
    if (scram_b64_decode(salt_b64, &salt, &salt_len) < 0)
        return NULL;
    PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, iter, EVP_sha256(), 32,
                      salted);
    free(salt);
    HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Client Key", 10, ck, &l);
    SHA256(ck, 32, stored);
    size_t auth_len = strlen(client_first_bare) + strlen(server_first) + (size_t)(at - final) + 3;
    char *auth = malloc(auth_len);
    CHECK(auth);
    snprintf(auth, auth_len, "%s,%s,%.*s", client_first_bare, server_first, (int)(at - final),
             final);
    HMAC(EVP_sha256(), stored, 32, (const uint8_t *)auth, strlen(auth), sig, &l);
    free(auth);
    for (int i = 0; i < 32; i++)
        proof[i] = ck[i] ^ sig[i];
    char *b64 = scram_b64_encode(proof, 32);
    size_t out_len = (size_t)(at - final) + 4 + strlen(b64) + 1;
    char *out = malloc(out_len);
    CHECK(out);
    snprintf(out, out_len, "%.*s,p=%s", (int)(at - final), final, b64);
    free(b64);
    (void)final_len;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size, *piece;
    uint8_t *startup_body = NULL, *initial = NULL, *final = NULL;
    size_t len;
    PgwStartup st;
    PgwScram *scram = NULL;
    char *first_out = NULL, *final_out = NULL, *filled = NULL, err[256];
    size_t first_len = 0, final_len = 0;

    piece = next_piece(&p, end, &len);
    startup_body = copy(piece, len);
    if (codec_parse_startup(startup_body, len, &st) < 0 || st.kind != PGW_STARTUP_NORMAL)
        goto done;
    const char *user = codec_startup_param(&st, "user");
    if (!user || !*user)
        goto done;
    const char *secret = auth_userlist_get(users, user);
    (void)codec_startup_param(&st, "database");

    /* SASLInitialResponse */
    if (!(piece = next_piece(&p, end, &len)))
        goto done;
    initial = copy(piece, len);
    const char *mech;
    const uint8_t *idata;
    size_t ilen;
    if (codec_parse_sasl_initial(initial, len, &mech, &idata, &ilen) < 0 ||
        strcmp(mech, "SCRAM-SHA-256") != 0)
        goto done;
    scram = scram_server_new(user, secret, "fuzzservernonce");
    CHECK(scram);
    if (scram_server_first(scram, idata, ilen, &first_out, &first_len, err, sizeof(err)) < 0) {
        CHECK(!scram_auth_failed(scram));
        goto done;
    }
    CHECK(first_out && strlen(first_out) == first_len && strncmp(first_out, "r=", 2) == 0);

    /* client-final */
    if (!(piece = next_piece(&p, end, &len)))
        goto done;
    final = copy(piece, len);
    const uint8_t *fin = final;
    size_t fin_len = len;
    bool right_password = false;
    if (!memchr(final, '\0', len)) {
        char *text = pgw_strndup((const char *) final, len);
        /* what the client said was its first message, minus the GS2 header */
        char *bare = pgw_strndup((const char *)idata + 3, ilen > 3 ? ilen - 3 : 0);
        const char *password = PASSWORD;
        if (ilen > 3 && (filled = with_proof(text, len, bare, first_out, password))) {
            fin = (const uint8_t *)filled;
            fin_len = strlen(filled);
            right_password = strcmp(user, "alice") == 0;
        }
        free(bare);
        free(text);
    }
    int rc = scram_server_final(scram, fin, fin_len, &final_out, &final_len, err, sizeof(err));
    if (rc == 0) {
        CHECK(secret && right_password);
        CHECK(final_out && final_len == 46 && strncmp(final_out, "v=", 2) == 0);
    } else {
        CHECK(final_out == NULL);
    }
    /* A second final message after the exchange ended is always refused. */
    char *again = NULL;
    size_t again_len;
    CHECK(scram_server_final(scram, fin, fin_len, &again, &again_len, err, sizeof(err)) < 0);
    CHECK(again == NULL);

done:
    scram_free(scram);
    free(first_out);
    free(final_out);
    free(filled);
    free(startup_body);
    free(initial);
    free(final);
    return 0;
}
