/*
 * policy_fixture.h — the backend schema and policy the policy's unit tests
 * share (test_policy.c: rewrites and refusals; test_leak.c: the leak
 * analysis, name resolution, bounds). The schema rows are what
 * schema_introspection_sql() returns, type OIDs and operator rows included;
 * the leak-proof operators are those of PostgreSQL 15's catalog for the
 * types the tests use (numeric comparisons are not leak-proof there).
 *
 * The config is built by hand so the tests depend only on config.h's
 * structures, not on the INI parser. Included by one file per test binary.
 */
#ifndef PGW_TEST_POLICY_FIXTURE_H
#define PGW_TEST_POLICY_FIXTURE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "policy.h"

#define R(ns, rel, kind, num, col, type, cat, oid)                                                 \
    {                                                                                              \
        ns, rel, kind, num, col, type, cat, oid, NULL, NULL, NULL, NULL                            \
    }
#define OP(name, l, r)                                                                             \
    {                                                                                              \
        "pg_catalog", NULL, NULL, NULL, NULL, NULL, NULL, NULL, "L", name, l, r                    \
    }
#define FN(ns, name)                                                                               \
    {                                                                                              \
        ns, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "F", name, NULL, NULL                        \
    }

static const char *const fixture_rows[][SCHEMA_INTROSPECTION_NCOLS] = {
    R("public", "customers", "r", "1", "id", "integer", "N", "23"),
    R("public", "customers", "r", "2", "tenant_id", "text", "S", "25"),
    R("public", "customers", "r", "3", "name", "text", "S", "25"),
    R("public", "customers", "r", "4", "ssn", "character varying(11)", "S", "1043"),
    R("public", "customers", "r", "5", "secret", "text", "S", "25"),
    R("public", "customers", "r", "6", "email", "text", "S", "25"),
    R("public", "customers", "r", "7", "card", "text", "S", "25"),
    R("public", "customers", "r", "8", "score", "integer", "N", "23"),
    R("public", "customers", "r", "9", "city", "character varying(40)", "S", "1043"),
    R("public", "customers", "r", "10", "signup", "date", "D", "1082"),
    R("public", "customers", "r", "11", "active", "boolean", "B", "16"),
    R("public", "customers", "r", "12", "rating", "double precision", "N", "701"),
    R("public", "orders", "r", "1", "id", "integer", "N", "23"),
    R("public", "orders", "r", "2", "customer_id", "integer", "N", "23"),
    R("public", "orders", "r", "3", "total", "numeric(10,2)", "N", "1700"),
    R("public", "orders", "r", "4", "tenant_id", "text", "S", "25"),
    R("public", "orders", "r", "5", "placed", "timestamp with time zone", "D", "1184"),
    R("public", "orders", "r", "6", "big", "bigint", "N", "20"),
    R("public", "orders", "r", "7", "status", "text", "S", "25"),
    R("public", "products", "r", "1", "id", "integer", "N", "23"),
    R("public", "products", "r", "2", "name", "text", "S", "25"),
    R("public", "products", "r", "3", "price", "numeric", "N", "1700"),
    R("public", "internal_notes", "r", "1", "note", "text", "S", "25"),
    R("public", "unlisted", "r", "1", "x", "integer", "N", "23"),
    R("public", "order_view", "v", "1", "id", "integer", "N", "23"),
    R("public", "order_view", "v", "2", "tenant_id", "text", "S", "25"),
    R("sales", "orders", "r", "1", "id", "integer", "N", "23"),
    R("pg_catalog", "pg_class", "r", "1", "oid", "oid", "N", "26"),
    R("pg_catalog", "pg_class", "r", "2", "relname", "name", "S", "19"),
    R("pg_catalog", "pg_class", "r", "3", "relnamespace", "oid", "N", "26"),
    R("pg_catalog", "pg_namespace", "r", "1", "oid", "oid", "N", "26"),
    R("pg_catalog", "pg_namespace", "r", "2", "nspname", "name", "S", "19"),
    R("pg_catalog", "pg_attribute", "r", "1", "attrelid", "oid", "N", "26"),
    R("pg_catalog", "pg_attribute", "r", "2", "attname", "name", "S", "19"),
    R("pg_catalog", "pg_stats", "v", "1", "schemaname", "name", "S", "19"),
    R("pg_catalog", "pg_stat_activity", "v", "1", "pid", "integer", "N", "23"),
    R("information_schema", "columns", "v", "1", "table_name", "name", "S", "19"),
#define CMP(l, r)                                                                                  \
    OP("=", l, r), OP("<>", l, r), OP("<", l, r), OP(">", l, r), OP("<=", l, r), OP(">=", l, r)
    CMP("23", "23"),
    CMP("23", "20"),
    CMP("20", "23"),
    CMP("20", "20"),
    CMP("21", "21"),
    CMP("21", "23"),
    CMP("23", "21"),
    CMP("25", "25"),
    CMP("19", "19"),
    CMP("19", "25"),
    CMP("25", "19"),
    CMP("16", "16"),
    CMP("1082", "1082"),
    CMP("1114", "1114"),
    CMP("1184", "1184"),
    CMP("700", "700"),
    CMP("701", "701"),
    CMP("700", "701"),
    CMP("701", "700"),
    CMP("26", "26"),
    CMP("1042", "1042"),
    CMP("2950", "2950"),
#undef CMP
    /* functions one argument can call (x.f and (x).f call them) */
    FN("pg_catalog", "length"),
    FN("pg_catalog", "nextval"),
    FN("pg_catalog", "pg_sleep"),
    FN("pg_catalog", "name"),
    FN("pg_catalog", "upper"),
    FN("public", "safe_fn"),
};
#undef R
#undef OP
#undef FN

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
    {"public", "order_view", "tenant_id = $tenant", false, 0, NULL, 5},
};
static char *allowed_functions[] = {"public.safe_fn"};
static PgwConfig cfg;
static PgwTenant tenant = {"acme", "", "o'acme", 1};
static PgwSchema *schema;
static PgwPolicyCtx ctx;

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    cfg.tables = tables;
    cfg.ntables = PGW_ARRAY_LEN(tables);
    cfg.default_access = PGW_ACCESS_DENY;
    cfg.search_path = "public";
    cfg.allowed_functions = allowed_functions;
    cfg.nallowed_functions = 1;
    cfg.version = 7;
    cfg.statement_timeout_ms = 30000;
    cfg.max_nesting_depth = 10000;
    cfg.rewrite_cache_size = 64u * 1024 * 1024;
    schema = schema_from_rows(PGW_ARRAY_LEN(fixture_rows), SCHEMA_INTROSPECTION_NCOLS,
                              &fixture_rows[0][0]);
    ck_assert_ptr_nonnull(schema);
    ctx = (PgwPolicyCtx){&cfg, &tenant, schema, 0, NULL, false};
}

static void teardown(void)
{
    schema_free(schema);
    schema = NULL;
}

/* Rewrite sql with ctx; the result must be a decision (not an internal
 * failure). */
static __attribute__((unused)) PgwPolicyResult rewrite_ok(const PgwPolicyCtx *c, const char *sql)
{
    PgwPolicyResult r;
    int rc = policy_rewrite_uncached(c, sql, &r);
    ck_assert_msg(rc == 0, "policy failed internally on: %.200s (%s)", sql,
                  r.reason != NULL ? r.reason : "");
    return r;
}

/* customers.ssn is masked null: read from an outer join that never
 * matches, so RowDescription keeps its origin (policy_rel.c). */
#define FILTERED_CUSTOMERS                                                                         \
    "FROM public.customers LEFT JOIN (SELECT ssn AS pgwarden_m1 FROM ONLY public.customers WHERE " \
    "false) pgwarden_masked ON false WHERE tenant_id OPERATOR(pg_catalog.=) 'o''acme'"
#define FILTERED_ORDERS "FROM public.orders WHERE tenant_id OPERATOR(pg_catalog.=) 'o''acme'"

#endif
