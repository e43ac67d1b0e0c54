/*
 * fuzz_ask.c — libFuzzer target for src/ask.c's text handling: what pulls
 * SQL out of a model's reply (ask_extract_sql), the recognition of an ASK
 * in a client's statement (ask_recognize, ask_splice) and the cleaner that
 * prepares a backend error for the model (ask_clean_error_state).
 *
 * A model's answer is attacker-shaped text: a prompt injection in a
 * question can make the model answer anything. Properties checked on each
 * input (used as the model's answer, as the statement and as the error):
 *   - extract: 0 gives non-empty SQL without a trailing ';' or whitespace;
 *     1 gives a reason; -1 gives an error message; never two of them;
 *   - recognize: NONE gives no question, an ASK gives one; a relation ASK
 *     splices a generated query in and the result still contains it;
 *   - clean: always returns a string, for any SQLSTATE class.
 * The schema snapshot is a small fixed one with a hidden table and a
 * hidden column, built once.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ask.h"
#include "ask_schema.h"
#include "config.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define R(...)                                                                                     \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }
static const char *const schema_rows[][ASK_SCHEMA_NCOLS] = {
    R("public", "customers", "r", "People", "1", "id", "integer", "t", NULL, "t", NULL, NULL, NULL),
    R("public", "customers", "r", "People", "2", "name", "text", "f", NULL, "f", NULL, NULL, NULL),
    R("public", "customers", "r", "People", "3", "secret_score", "integer", "f", NULL, "f", NULL,
      NULL, NULL),
    R("public", "orders", "r", NULL, "1", "customer_id", "integer", "t", NULL, "f", "public",
      "customers", "id"),
    R("public", "internal_notes", "r", NULL, "1", "memo", "text", "f", NULL, "f", NULL, NULL, NULL),
};
static PgwColumnMask customer_masks[] = {{"secret_score", PGW_MASK_HIDE}};
static PgwTablePolicy tables[] = {
    {"public", "customers", "tenant_id = $tenant", false, 1, customer_masks, 1},
    {"public", "orders", NULL, false, 0, NULL, 2},
    {"public", "internal_notes", NULL, true, 0, NULL, 3},
};
static PgwTenant tenant = {.name = "acme", .backend = "host=x", .id = "acme", .pool_size = 1};
static PgwConfig cfg;
static PgwAskSchema *schema;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    cfg.default_access = PGW_ACCESS_DENY;
    cfg.ntables = PGW_ARRAY_LEN(tables);
    cfg.tables = tables;
    schema = ask_schema_build(&cfg, &tenant, PGW_ARRAY_LEN(schema_rows), ASK_SCHEMA_NCOLS,
                              &schema_rows[0][0]);
    CHECK(schema);
    return 0;
}

static void check_extract(const char *text)
{
    char *sql = NULL, *reason = NULL, err[512] = "";
    int rc = ask_extract_sql(text, &sql, &reason, err, sizeof(err));
    if (rc == 0) {
        CHECK(sql && !reason && sql[0]);
        size_t n = strlen(sql);
        CHECK(sql[n - 1] != ';' && !isspace((unsigned char)sql[n - 1]));
    } else if (rc == 1) {
        CHECK(reason && !sql);
    } else {
        CHECK(rc == -1 && !sql && !reason && err[0]);
    }
    free(sql);
    free(reason);
}

static void check_recognize(const char *text)
{
    PgwAskKind kind = PGW_ASK_NONE;
    char *question = NULL, err[512] = "";
    int rc = ask_recognize(text, &kind, &question, err, sizeof(err));
    if (rc < 0) {
        CHECK(err[0]);
    } else if (kind == PGW_ASK_NONE) {
        CHECK(question == NULL);
    } else {
        CHECK(question != NULL);
        if (kind == PGW_ASK_RELATION) {
            char *out = NULL;
            if (ask_splice(text, "SELECT 4242 AS spliced", &out, err, sizeof(err)) == 0) {
                CHECK(out && strstr(out, "SELECT 4242 AS spliced"));
                free(out);
            }
        }
    }
    free(question);
}

/* Both the generic and the data-error form always answer a string. */
static void check_clean(const char *text)
{
    char *a = ask_clean_error_state(schema, &cfg, NULL, text);
    CHECK(a);
    free(a);
    char *d = ask_clean_error_state(schema, &cfg, "22P02", text);
    CHECK(d);
    free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    CHECK(text);
    memcpy(text, data, size);
    text[size] = '\0';
    check_extract(text);
    check_recognize(text);
    check_clean(text);
    free(text);
    return 0;
}
