/*
 * fuzz_policy.c — libFuzzer target for the statement policy's entry point,
 * policy_rewrite_uncached, with a fixed configuration and backend schema
 * snapshot (the same shape as tests/unit/test_policy.c: filtered and masked
 * tables, a hidden table, an unlisted one, a few catalogs, default deny).
 *
 * Each input is one statement text as a client would send it in a Query
 * (NUL-free; a NUL ends the text as it ends the message). The call runs on a
 * thread with the stack the runtime promises the policy (policy.h): up to
 * PGW_POLICY_INLINE_MAX bytes inline on a worker's PGW_POLICY_INLINE_STACK,
 * longer texts on a policy thread of PGW_POLICY_STACK_SIZE. A statement
 * that overflows that stack is a crash of the gateway, not of the harness.
 *
 * Properties: a decision always comes back (0), or -1 only as an internal
 * failure; an ALLOW carries SQL that libpg_query parses again and a REFUSE
 * a five-character SQLSTATE and a message; no refusal message names the
 * hidden table (internal_notes) — the input itself may, so this is checked
 * only when the input does not contain the name in any spelling. The seed
 * corpus holds the deep and wide statements of issue 7 item 8.
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <pg_query.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static const char *const schema_rows[][SCHEMA_INTROSPECTION_NCOLS] = {
    {"public", "customers", "r", "1", "id", "integer", "N"},
    {"public", "customers", "r", "2", "tenant_id", "text", "S"},
    {"public", "customers", "r", "3", "name", "text", "S"},
    {"public", "customers", "r", "4", "ssn", "character varying(11)", "S"},
    {"public", "customers", "r", "5", "secret", "text", "S"},
    {"public", "customers", "r", "6", "email", "text", "S"},
    {"public", "customers", "r", "7", "card", "text", "S"},
    {"public", "customers", "r", "8", "score", "integer", "N"},
    {"public", "orders", "r", "1", "id", "integer", "N"},
    {"public", "orders", "r", "2", "customer_id", "integer", "N"},
    {"public", "orders", "r", "3", "total", "numeric(10,2)", "N"},
    {"public", "orders", "r", "4", "tenant_id", "text", "S"},
    {"public", "products", "r", "1", "id", "integer", "N"},
    {"public", "products", "r", "2", "name", "text", "S"},
    {"public", "internal_notes", "r", "1", "note", "text", "S"},
    {"public", "unlisted", "r", "1", "x", "integer", "N"},
    {"sales", "orders", "r", "1", "id", "integer", "N"},
    {"pg_catalog", "pg_class", "r", "1", "oid", "oid", "N"},
    {"pg_catalog", "pg_namespace", "r", "1", "oid", "oid", "N"},
    {"pg_catalog", "pg_attribute", "r", "1", "attrelid", "oid", "N"},
    {"pg_catalog", "pg_stats", "v", "1", "schemaname", "name", "S"},
    {"pg_catalog", "pg_stat_activity", "v", "1", "pid", "integer", "N"},
    {"information_schema", "columns", "v", "1", "table_name", "name", "S"},
};

static PgwColumnMask customer_masks[] = {
    {"ssn", PGW_MASK_NULL},     {"secret", PGW_MASK_HIDE}, {"email", PGW_MASK_REDACT},
    {"card", PGW_MASK_PARTIAL}, {"score", PGW_MASK_HASH},
};
static PgwTablePolicy tables[] = {
    {"public", "customers", "tenant_id = $tenant", false, PGW_ARRAY_LEN(customer_masks),
     customer_masks, 1},
    {"public", "orders", "tenant_id = $tenant", false, 0, NULL, 2},
    {"public", "products", NULL, false, 0, NULL, 3},
    {"public", "internal_notes", NULL, true, 0, NULL, 4},
};
static char *allowed_functions[] = {"public.safe_fn"};
static PgwConfig cfg;
static PgwTenant tenant = {.name = "acme", .backend = "", .id = "o'acme", .pool_size = 1};
static PgwSchema *schema;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    cfg.tables = tables;
    cfg.ntables = PGW_ARRAY_LEN(tables);
    cfg.default_access = PGW_ACCESS_DENY;
    cfg.search_path = "public";
    cfg.allowed_functions = allowed_functions;
    cfg.nallowed_functions = 1;
    cfg.version = 7;
    cfg.statement_timeout_ms = 30000;
    schema = schema_from_rows(PGW_ARRAY_LEN(schema_rows), SCHEMA_INTROSPECTION_NCOLS,
                              &schema_rows[0][0]);
    CHECK(schema);
    return 0;
}

typedef struct Job {
    const char *sql;
    int rc;
    PgwPolicyResult res;
} Job;

static void *run(void *arg)
{
    Job *job = arg;
    PgwPolicyCtx ctx = {&cfg, &tenant, schema, 0, NULL};
    job->rc = policy_rewrite_uncached(&ctx, job->sql, &job->res);
    return NULL;
}

static bool mentions_hidden(const char *sql)
{
    for (const char *p = sql; *p; p++) {
        if (strncasecmp(p, "internal_notes", 14) == 0)
            return true;
    }
    /* escapes (U&"...", E'...') could spell it without the plain bytes */
    return strchr(sql, '\\') != NULL || strcasestr(sql, "U&") != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Job job = {0};
    pthread_attr_t attr;
    pthread_t t;
    char *sql = malloc(size + 1);

    CHECK(sql);
    memcpy(sql, data, size);
    sql[size] = '\0';
    job.sql = sql;
    size_t len = strlen(sql);
    CHECK(pthread_attr_init(&attr) == 0);
    CHECK(pthread_attr_setstacksize(&attr, len <= PGW_POLICY_INLINE_MAX
                                               ? PGW_POLICY_INLINE_STACK
                                               : PGW_POLICY_STACK_SIZE) == 0);
    CHECK(pthread_create(&t, &attr, run, &job) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    pthread_attr_destroy(&attr);

    if (job.rc == 0) {
        if (job.res.decision == PGW_POLICY_ALLOW) {
            CHECK(job.res.sql != NULL);
            PgQueryParseResult pr = pg_query_parse(job.res.sql);
            CHECK(pr.error == NULL);
            pg_query_free_parse_result(pr);
        } else {
            CHECK(strlen(job.res.sqlstate) == 5 && job.res.message && job.res.message[0]);
            if (!mentions_hidden(sql))
                CHECK(strcasestr(job.res.message, "internal_notes") == NULL);
        }
    }
    policy_result_free(&job.res);
    free(sql);
    return 0;
}
