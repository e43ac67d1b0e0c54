/*
 * test_stmt_verdict.c — the result cache's verdict remembered per statement
 * template (stmt.c, stmt_cache_verdict with the shape policy_rewrite_shaped
 * gives): differential. For every statement, the verdict cache_eligible
 * gives on the statement's own rewrite must be the verdict the memo gives,
 * on its first use (computed on the template's rewrite) and on later ones
 * (remembered), also for another statement of the same template (other
 * numbers). The statements are a list written to hit the analysis' rules
 * with numbers in every position the scanner lifts (casts, ORDER BY
 * ordinals, LIMIT, IN lists, function arguments, type modifiers, intervals)
 * and the analytic and hostile corpora of the integration tests.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cache_key.h"
#include "config.h"
#include "policy.h"
#include "policy_cache.h"
#include "schema.h"
#include "stmt_int.h"

static const char *const schema_rows[][SCHEMA_INTROSPECTION_NCOLS] = {
    {"public", "customers", "r", "1", "id", "integer", "N"},
    {"public", "customers", "r", "2", "tenant_id", "text", "S"},
    {"public", "customers", "r", "3", "name", "text", "S"},
    {"public", "customers", "r", "4", "joined", "date", "D"},
    {"public", "orders", "r", "1", "id", "integer", "N"},
    {"public", "orders", "r", "2", "customer_id", "integer", "N"},
    {"public", "orders", "r", "3", "total", "numeric(10,2)", "N"},
    {"public", "orders", "r", "4", "placed_at", "timestamp with time zone", "D"},
    {"public", "orders", "r", "5", "tenant_id", "text", "S"},
    {"public", "orders", "r", "6", "due", "text", "S"},
    {"public", "live", "r", "1", "v", "integer", "N"},
    {"public", "rates", "r", "1", "rate", "numeric", "N"},
};

static const char config_text[] = "[pgwarden]\n"
                                  "auth_type = trust\n"
                                  "default_access = allow\n"
                                  "allowed_functions = public.my_fn\n"
                                  "[users]\n"
                                  "alice = acme\n"
                                  "[tenant.acme]\n"
                                  "backend = host=127.0.0.1 dbname=acme\n"
                                  "[table.public.orders]\n"
                                  "row_filter = tenant_id = $tenant\n"
                                  "[table.public.live]\n"
                                  "cache_ttl = 0\n"
                                  "[table.public.rates]\n"
                                  "cache_ttl = 5s\n"
                                  "[cache]\n"
                                  "ttl = 60s\n";

static PgwConfig *cfg;
static PgwSchema *schema;

static void setup(void)
{
    char err[512];
    ck_assert_msg(config_parse_string("test.ini", config_text, &cfg, err, sizeof err) == 0, "%s",
                  err);
    const char *values[PGW_ARRAY_LEN(schema_rows) * SCHEMA_INTROSPECTION_NCOLS];
    for (size_t i = 0; i < PGW_ARRAY_LEN(schema_rows); i++)
        for (size_t j = 0; j < SCHEMA_INTROSPECTION_NCOLS; j++)
            values[i * SCHEMA_INTROSPECTION_NCOLS + j] = schema_rows[i][j];
    schema = schema_from_rows(PGW_ARRAY_LEN(schema_rows), SCHEMA_INTROSPECTION_NCOLS, values);
    ck_assert_ptr_nonnull(schema);
}

static void teardown(void)
{
    config_free(cfg);
    schema_free(schema);
}

static void same_verdict(const char *sql, const PgwCacheVerdict *want, const PgwCacheVerdict *got,
                         const char *how)
{
    ck_assert_msg(want->cacheable == got->cacheable, "%s (%s): cacheable %d, memo says %d", sql,
                  how, want->cacheable, got->cacheable);
    ck_assert_msg(want->ttl_ms == got->ttl_ms, "%s (%s): ttl", sql, how);
    ck_assert_msg(strcmp(want->reason, got->reason) == 0, "%s (%s): reason '%s', memo '%s'", sql,
                  how, want->reason, got->reason);
    ck_assert_msg(want->settings_safe == got->settings_safe, "%s (%s): settings_safe", sql, how);
    ck_assert_msg(want->drops_prepared == got->drops_prepared, "%s (%s): drops_prepared", sql, how);
    ck_assert_msg(want->nrelations == got->nrelations, "%s (%s): relations", sql, how);
    for (size_t i = 0; i < want->nrelations; i++)
        ck_assert_str_eq(want->relations[i], got->relations[i]);
}

/* The statement's verdict both ways, as a Parse declaring ntypes types
 * would have it decided; returns whether a template decided it. */
static bool check_typed(const char *sql, size_t ntypes, const uint32_t *types)
{
    PgwPolicyCtx ctx = {.cfg = cfg,
                        .tenant = config_tenant(cfg, "acme"),
                        .schema = schema,
                        .nparam_types = ntypes,
                        .param_types = types};
    PgwPolicyResult pr;
    PgwPolicyShape shape;
    ck_assert_int_eq(policy_rewrite_shaped(&ctx, sql, &pr, &shape), 0);
    bool templated = shape.sql != NULL;
    /* a statement decided on its own text is remembered by that text's key */
    ck_assert_msg(shape.key != NULL, "no key for %s", sql);
    if (pr.decision == PGW_POLICY_ALLOW && pr.sql != NULL) {
        PgwCacheVerdict direct, memo;
        ck_assert(stmt_cache_verdict(&ctx, &pr, NULL, &direct));
        for (int round = 0; round < 2; round++) {
            ck_assert(stmt_cache_verdict(&ctx, &pr, &shape, &memo));
            same_verdict(sql, &direct, &memo, round == 0 ? "first" : "remembered");
            cache_verdict_free(&memo);
        }
        cache_verdict_free(&direct);
    }
    policy_shape_free(&shape);
    policy_result_free(&pr);
    return templated;
}

static bool check(const char *sql)
{
    return check_typed(sql, 0, NULL);
}

/* Pairs of one template: the second is judged from the first's memo. */
static const char *const pairs[][2] = {
    {"SELECT name FROM customers WHERE id = 1", "SELECT name FROM customers WHERE id = 99999"},
    {"SELECT id FROM orders WHERE total > 2.5 ORDER BY 1 LIMIT 10",
     "SELECT id FROM orders WHERE total > 1e3 ORDER BY 1 LIMIT 20"},
    {"SELECT id FROM orders WHERE id IN (1, 2, 3)", "SELECT id FROM orders WHERE id IN (7, 8, 9)"},
    {"SELECT 5::date", "SELECT 6::date"},
    {"SELECT joined + 3 FROM customers", "SELECT joined + 4 FROM customers"},
    {"SELECT '2024-01-01'::date + 1", "SELECT '2024-01-01'::date + 30"},
    {"SELECT 'now'::date + 1", "SELECT 'now'::date + 2"},
    {"SELECT due::date + 1 FROM orders", "SELECT due::date + 7 FROM orders"},
    {"SELECT now() - 5 * interval '1 day'", "SELECT now() - 6 * interval '1 day'"},
    {"SELECT random() * 10", "SELECT random() * 20"},
    {"SELECT my_fn(1)", "SELECT my_fn(2)"},
    {"SELECT generate_series(1, 10)", "SELECT generate_series(2, 20)"},
    {"SELECT v FROM live WHERE v = 3", "SELECT v FROM live WHERE v = 4"},
    {"SELECT rate FROM rates WHERE rate > 0.5", "SELECT rate FROM rates WHERE rate > 0.7"},
    {"SELECT 1.5::numeric(10, 2)", "SELECT 2.5::numeric(12, 3)"},
    {"SELECT id FROM orders WHERE placed_at > now() - interval '3 hours' LIMIT 5",
     "SELECT id FROM orders WHERE placed_at > now() - interval '3 hours' LIMIT 6"},
    {"SELECT count(*) FROM orders GROUP BY customer_id HAVING count(*) > 2 OFFSET 1",
     "SELECT count(*) FROM orders GROUP BY customer_id HAVING count(*) > 3 OFFSET 4"},
    {"SELECT id FROM orders FOR UPDATE LIMIT 1", "SELECT id FROM orders FOR UPDATE LIMIT 2"},
    {"SELECT * FROM pg_stat_activity WHERE pid = 1",
     "SELECT * FROM pg_stat_activity WHERE pid = 2"},
    {"SELECT set_config('work_mem', '64MB', false), 1",
     "SELECT set_config('work_mem', '64MB', false), 2"},
    {"SELECT (SELECT max(v) FROM live) + 1", "SELECT (SELECT max(v) FROM live) + 2"},
    {"SELECT age(joined) > 3 FROM customers", "SELECT age(joined) > 4 FROM customers"},
};

START_TEST(pairs_of_a_template)
{
    const char *a = pairs[_i][0], *b = pairs[_i][1];
    check(a);
    check(b); /* from the memo check(a) filled, when they share a template */
    check(a);
}
END_TEST

/* At least the plain point query is decided by its template (else the
 * test above proves nothing about the memo). */
START_TEST(point_queries_are_templated)
{
    ck_assert(check("SELECT name FROM customers WHERE id = 4711"));
}
END_TEST

/* Statements with parameters of their own (every driver's Parse) are
 * decided on their own text, and their verdict is remembered by its key:
 * the same as the analysis of their rewrite, untyped or typed, and a
 * text judged under one set of declared types is not answered for
 * another. */
START_TEST(parameters_of_their_own)
{
    static const char *const texts[] = {
        "SELECT name FROM customers WHERE id = $1",
        "SELECT v FROM live WHERE v = $1",
        "SELECT rate FROM rates WHERE rate > $1",
        "SELECT $1::date + 1",
        "SELECT now() - $1 * interval '1 day'",
        "SELECT id FROM orders WHERE placed_at > $1 LIMIT $2",
        "SELECT id FROM orders FOR UPDATE",
        "SELECT my_fn($1)",
        "SELECT name FROM customers",
    };
    static const uint32_t int4[] = {23, 23}, text[] = {25, 25}, tz[] = {1184, 23};
    for (size_t i = 0; i < PGW_ARRAY_LEN(texts); i++) {
        ck_assert(!check_typed(texts[i], 0, NULL));
        ck_assert(!check_typed(texts[i], 0, NULL)); /* remembered */
        check_typed(texts[i], 1, int4);
        check_typed(texts[i], 2, text);
        check_typed(texts[i], 2, tz);
        check_typed(texts[i], 1, int4);
    }
}
END_TEST

static char *slurp(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", TEST_SRCDIR, rel);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    PgwBuf b;
    buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    return buf_steal_str(&b);
}

/* The corpora's "expect|sql" lines (a trailing backslash continues one). */
static int corpus(const char *rel, int *templated)
{
    char *text = slurp(rel);
    int n = 0;
    PgwBuf stmt;
    buf_init(&stmt);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (stmt.len == 0 && (line[0] == '#' || strchr(line, '|') == NULL))
            continue;
        size_t len = strlen(line);
        bool more = len > 0 && line[len - 1] == '\\';
        if (more)
            line[len - 1] = ' ';
        buf_append_str(&stmt, line);
        if (more)
            continue;
        char *all = buf_steal_str(&stmt);
        char *bar = strchr(all, '|');
        const char *sql = bar ? bar + 1 : all;
        if (strlen(sql) <= PGW_POLICY_INLINE_MAX) {
            *templated += check(sql);
            check(sql); /* remembered */
            n++;
        }
        free(all);
    }
    buf_free(&stmt);
    free(text);
    return n;
}

START_TEST(corpora)
{
    int templated = 0;
    int n = corpus("tests/integration/sql/analytic.sql", &templated);
    n += corpus("tests/integration/sql/hostile.sql", &templated);
    ck_assert_int_gt(n, 300);
    ck_assert_int_gt(templated, 20);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stmt_verdict");
    TCase *tc = tcase_create("stmt_verdict");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, pairs_of_a_template, 0, (int)PGW_ARRAY_LEN(pairs));
    tcase_add_test(tc, point_queries_are_templated);
    tcase_add_test(tc, parameters_of_their_own);
    tcase_add_test(tc, corpora);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
