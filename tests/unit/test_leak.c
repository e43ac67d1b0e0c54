/*
 * test_leak.c — the policy's isolation soundness, table-driven (issue 7):
 *
 *  - the leak analysis: statement -> fenced (every derived table gets
 *    OFFSET 0) or not, for the allowlisted shapes and for everything that
 *    must fence, in every position the planner can push below a scan;
 *  - name resolution: built-in calls and operators written against
 *    pg_catalog, allowed functions against their configured schema, and the
 *    operators the grammar names implicitly refused when the search_path
 *    holds a same-named one;
 *  - bounds: nesting depth (54001), statements whose parse needs more stack
 *    than the calling thread has, the rewrite cache's byte bound and key;
 *  - what the result reports: relations read, cacheability.
 * Cost of huge statements is printed (not asserted): rewrites must grow in
 * proportion to the statement.
 */
#include <check.h>
#include <pthread.h>
#include <time.h>

#include "policy_fixture.h"

static bool fenced(const PgwPolicyResult *r)
{
    return r->sql != NULL && strstr(r->sql, "OFFSET 0") != NULL;
}

/* ---- the leak analysis ---- */

typedef struct LeakCase {
    const char *sql;
    bool fenced;
} LeakCase;

static const LeakCase leak_cases[] = {
    /* allowlisted shapes on filtered tables: flattenable, indexes usable */
    {"SELECT * FROM customers WHERE id = 5", false},
    {"SELECT * FROM customers WHERE 5 = id", false},
    {"SELECT * FROM customers WHERE id <> 5 AND id < 9 AND id >= 1", false},
    {"SELECT * FROM customers WHERE id IN (1, 2, 3)", false},
    {"SELECT * FROM customers WHERE id NOT IN (1, 2)", false},
    {"SELECT * FROM customers WHERE id IN (7)", false},
    {"SELECT * FROM customers WHERE id = ANY('{1,2}')", false},
    {"SELECT * FROM customers WHERE id = ANY(ARRAY[1, 2])", false},
    {"SELECT * FROM customers WHERE id = ANY($1)", false},
    {"SELECT * FROM customers WHERE id <> ALL(ARRAY[1, 2])", false},
    {"SELECT * FROM customers WHERE id = ANY('{1,2}'::int[])", false},
    {"SELECT * FROM customers WHERE id BETWEEN 1 AND 10", false},
    {"SELECT * FROM customers WHERE id NOT BETWEEN 1 AND 10", false},
    {"SELECT * FROM customers WHERE id BETWEEN SYMMETRIC 10 AND 1", false},
    {"SELECT * FROM customers WHERE name IS NULL OR name IS NOT NULL", false},
    {"SELECT * FROM customers WHERE active", false},
    {"SELECT * FROM customers WHERE NOT active AND active IS NOT TRUE", false},
    {"SELECT * FROM customers WHERE name = 'x' AND (id = 1 OR id = 2)", false},
    {"SELECT * FROM customers WHERE name IS DISTINCT FROM 'x'", false},
    {"SELECT * FROM customers WHERE city = 'Oslo'", false}, /* varchar: text's = */
    {"SELECT * FROM customers WHERE city = 'Oslo'::text", false},
    {"SELECT * FROM customers WHERE city IN ('Oslo', 'Lyon')", false},
    {"SELECT * FROM customers WHERE signup >= '2024-01-01'", false},
    {"SELECT * FROM customers WHERE signup = '2024-01-01'::date", false},
    {"SELECT * FROM customers WHERE rating > 2.5 AND rating < 7", false},
    {"SELECT * FROM customers WHERE id = $1", false},
    {"SELECT * FROM customers WHERE id = 10000000000", false}, /* int4 = int8 */
    {"SELECT * FROM orders WHERE big = 5 AND big IN (1, 10000000000)", false},
    {"SELECT * FROM orders WHERE placed > '2024-01-01 00:00:00+00'", false},
    {"SELECT * FROM customers WHERE true AND NULL IS NULL", false},
    {"SELECT * FROM customers WHERE name = $1::text", false},
    {"SELECT * FROM customers c WHERE c.id = 5 AND customers_id_is_not_a_thing IS NULL", true},
    {"SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = 42",
     false},
    {"SELECT * FROM orders o LEFT JOIN customers c ON c.id = o.customer_id AND c.active", false},
    {"SELECT * FROM orders JOIN customers USING (id)", false},
    {"SELECT * FROM orders o, customers c WHERE o.customer_id = c.id", false},
    {"SELECT * FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)",
     false},
    {"SELECT * FROM customers c WHERE NOT EXISTS (SELECT FROM orders o WHERE o.id = c.id)", false},
    {"SELECT * FROM customers WHERE id IN (SELECT customer_id FROM orders WHERE id < 10)", false},
    {"SELECT * FROM customers WHERE id NOT IN (SELECT customer_id FROM orders)", false},
    {"SELECT * FROM customers c WHERE EXISTS (SELECT count(*) FROM orders o WHERE o.id = c.id)",
     false},
    {"SELECT customer_id, count(*) FROM orders GROUP BY customer_id HAVING count(*) > 5", false},
    {"SELECT customer_id FROM orders GROUP BY customer_id HAVING customer_id = 5", false},
    {"SELECT status, sum(total) FROM orders GROUP BY status HAVING sum(total) / 2 > 100", false},
    /* expressions evaluated on rows that passed the filter */
    {"SELECT 1 / (id - 5), upper(name) FROM customers WHERE id = 1", false},
    {"SELECT sum(1 / (id - 5)) FILTER (WHERE lower(name) = 'x') FROM orders", false},
    {"SELECT * FROM orders ORDER BY total / 2, lower(status) LIMIT 5", false},
    {"SELECT status, count(*) FROM orders GROUP BY lower(status), status", false},
    {"SELECT DISTINCT ON (lower(status)) status FROM orders", false},
    {"SELECT row_number() OVER (PARTITION BY lower(status) ORDER BY total / 2) FROM orders", false},
    {"SELECT * FROM (SELECT id, upper(name) AS u FROM customers) s", false},
    {"WITH x AS (SELECT customer_id, sum(total) t FROM orders GROUP BY 1) SELECT * FROM x", false},
    {"SELECT (SELECT max(1 / (o.id - 5)) FROM orders o WHERE o.customer_id = c.id) FROM customers "
     "c",
     false},
    {"SELECT * FROM orders o, LATERAL (SELECT 1 / (o.id - 5) AS x) l", false},
    {"SELECT * FROM orders o, LATERAL (SELECT c.name FROM customers c WHERE c.id = o.customer_id "
     "LIMIT 1) l",
     false},
    {"SELECT * FROM customers, generate_series(1, 10 / id) g", false},
    {"SELECT id FROM orders UNION SELECT id FROM customers WHERE id = 3", false},
    {"SELECT upper(name) FROM customers WHERE id IN (1, 2) AND name IS NOT NULL", false},
    {"VALUES (1, 'a'), (2, 1 / 0)", false},
    /* quals that read only unfiltered relations (rule b) */
    {"SELECT * FROM products p WHERE lower(p.name) = 'x' AND p.price / 2 > 1", false},
    {"SELECT * FROM orders o JOIN products p ON p.id = o.id WHERE lower(p.name) = 'x'", false},
    {"SELECT * FROM orders o JOIN products p ON p.id = o.id AND p.price * 2 > 10", false},
    {"SELECT relname FROM pg_class WHERE relname = 'x'", false},
    /* (pg_namespace is a virtualized catalog now, fenced like a filtered
     * table; pg_am is read as is) */
    {"SELECT a.amname FROM pg_am a WHERE lower(a.amname) = 'x'", false},
    {"SELECT * FROM orders WHERE 1 = 1", false},
    /* everything else fences: the examples and their relatives */
    {"SELECT count(*) FROM orders WHERE ARRAY[ARRAY[1], CASE WHEN status = 'x' THEN ARRAY[1,2] "
     "ELSE ARRAY[1] END] IS NOT NULL",
     true},
    {"SELECT * FROM customers WHERE 1 / (id - 5) > 0", true},
    {"SELECT * FROM customers WHERE lower(name) = 'x'", true},
    {"SELECT * FROM customers WHERE name || 'x' = 'yx'", true},
    {"SELECT * FROM customers WHERE id + 1 = 5", true},
    {"SELECT * FROM customers WHERE - id = 5", true},
    {"SELECT * FROM customers WHERE id::text = '5'", true},
    {"SELECT * FROM customers WHERE name::int = 1", true},
    {"SELECT * FROM orders WHERE total > 5", true}, /* numeric: not leak-proof */
    {"SELECT * FROM customers WHERE id = 2.5", true}, /* the column would convert */
    {"SELECT * FROM customers WHERE id IN (1, 2.5)", true}, /* common type numeric */
    {"SELECT * FROM orders WHERE placed > '2024-01-01'::date", true}, /* date vs timestamptz */
    {"SELECT * FROM customers WHERE signup < now()", true},
    {"SELECT * FROM customers WHERE name COLLATE \"C\" < 'm'", true},
    {"SELECT * FROM customers WHERE ROW(id, name) = ROW(1, 'x')", true},
    {"SELECT * FROM customers WHERE (id, name) > (1, 'a')", true},
    {"SELECT * FROM customers WHERE GREATEST(id, 5) = 5", true},
    {"SELECT * FROM customers WHERE LEAST(id, 5) = 5", true},
    {"SELECT * FROM customers WHERE COALESCE(name, 'x') = 'x'", true},
    {"SELECT * FROM customers WHERE NULLIF(id, 5) IS NULL", true},
    {"SELECT * FROM customers WHERE CASE WHEN id = 1 THEN true ELSE false END", true},
    {"SELECT * FROM customers WHERE name LIKE 'a%'", true},
    {"SELECT * FROM customers WHERE name ~ '^a'", true},
    {"SELECT * FROM customers WHERE name SIMILAR TO 'a%'", true},
    {"SELECT * FROM customers WHERE id = ANY(ARRAY[id, 1])", true},
    {"SELECT * FROM customers WHERE id = ANY(ARRAY[CASE WHEN name = 'x' THEN 1 END])", true},
    {"SELECT * FROM customers WHERE id = ANY('{1,2}'::text[])", true},
    {"SELECT * FROM customers WHERE ARRAY[id] = '{1}'", true},
    {"SELECT * FROM customers WHERE id IS DISTINCT FROM NULLIF(id, 3)", true},
    {"SELECT * FROM customers WHERE id BETWEEN 1 AND id + 1", true},
    {"SELECT * FROM customers WHERE name IN (upper(name), 'x')", true},
    {"SELECT * FROM customers WHERE ssn = 'x'", true}, /* masked: an expression */
    {"SELECT * FROM customers WHERE score = '5'", true}, /* hashed */
    {"SELECT * FROM customers WHERE email IS NULL", true}, /* redacted */
    {"SELECT * FROM customers c WHERE c IS NOT NULL", true}, /* whole row */
    {"SELECT * FROM customers WHERE id = (SELECT 5)", true},
    {"SELECT * FROM customers WHERE id = (SELECT id FROM products LIMIT 1)", true},
    {"SELECT * FROM customers WHERE id > ALL (SELECT 1 / 0)", true},
    {"SELECT * FROM customers WHERE id IN (SELECT customer_id + 0 FROM orders)", true},
    {"SELECT * FROM customers WHERE id IN (SELECT 1 / (id - 5) FROM orders)", true},
    {"SELECT * FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id "
     "AND 1 / (o.id - 5) > 0)",
     true},
    {"SELECT * FROM customers c WHERE EXISTS (SELECT 1 / (o.id - 5) FROM orders o WHERE "
     "o.customer_id = c.id GROUP BY o.id)",
     true},
    {"SELECT * FROM customers c WHERE EXISTS (SELECT max(o.total) FROM orders o WHERE o.id = c.id)",
     true},
    {"SELECT * FROM customers c WHERE EXISTS (SELECT 1 FROM products p WHERE p.id = c.id AND "
     "lower(p.name) = 'x')",
     true},
    {"SELECT * FROM customers c WHERE EXISTS (SELECT 1 FROM order_view v WHERE v.id = c.id)", true},
    {"SELECT * FROM customers c WHERE EXISTS (SELECT 1 FROM generate_series(1, c.id))", true},
    {"WITH w AS (SELECT 1 AS x) SELECT * FROM customers c WHERE EXISTS (SELECT 1 FROM w)", true},
    {"SELECT * FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.id = c.id LIMIT 1)",
     false},
    {"SELECT * FROM customers WHERE $1::int = id", false},
    {"SELECT * FROM orders o JOIN customers c ON lower(c.name) = o.status", true},
    {"SELECT * FROM orders o JOIN (VALUES (1), (2)) v(x) ON o.id = v.x", true},
    /* derived tables and CTEs: columns passed through keep their base facts */
    {"SELECT * FROM (SELECT * FROM orders) s WHERE s.id = 5", false},
    {"WITH o AS (SELECT * FROM orders) SELECT * FROM o WHERE id = 5", false},
    {"WITH o AS (SELECT id, status FROM orders) SELECT * FROM o WHERE id = 5", false},
    {"SELECT * FROM (SELECT id AS k FROM orders) s WHERE s.k = 5", false},
    {"SELECT * FROM (SELECT id FROM orders) s(k) WHERE k = 1", false},
    {"WITH x(k) AS (SELECT id FROM orders) SELECT * FROM x WHERE k = 1", false},
    {"SELECT * FROM (SELECT c.id FROM customers c JOIN orders o ON o.id = c.id) s WHERE s.id = 5",
     false},
    {"SELECT * FROM (SELECT customer_id, count(*) FROM orders GROUP BY customer_id) s WHERE "
     "customer_id = 5",
     false},
    {"WITH a AS (SELECT * FROM orders), b AS (SELECT * FROM a) SELECT * FROM b WHERE b.id = 1",
     false},
    {"SELECT * FROM (SELECT id, 1 / total AS x FROM orders) s WHERE s.x = 5", true},
    {"SELECT * FROM (SELECT * FROM customers c JOIN orders o ON o.id = c.id) s WHERE s.id = 5",
     true}, /* two columns called id */
    {"SELECT * FROM (SELECT ssn FROM customers) s WHERE s.ssn = 'x'", true},
    {"SELECT * FROM (SELECT id FROM orders UNION ALL SELECT id FROM orders) s WHERE id = 5", true},
    {"SELECT * FROM (SELECT * FROM order_view) s WHERE id = 1", true},
    {"SELECT * FROM (SELECT lower(status) AS status FROM orders) s WHERE status = 'x'", true},
    {"SELECT * FROM (SELECT * FROM orders) s WHERE 1 / s.id > 0", true},
    {"SELECT * FROM orders o, LATERAL (SELECT 1 WHERE 1 / (o.id - 5) > 0) l", true},
    {"SELECT * FROM orders NATURAL JOIN customers", true},
    {"SELECT * FROM orders WHERE random() < 0.5", true},
    {"SELECT * FROM orders WHERE status = 'x' AND now() > '2020-01-01'", true},
    {"SELECT status FROM orders GROUP BY status HAVING lower(status) = 'x'", true},
    {"SELECT * FROM order_view WHERE id = 5", true}, /* a view's column may be an expression */
    {"SELECT relname FROM pg_class WHERE relname::text LIKE 'x%'", true},
    {"SELECT * FROM customers c JOIN orders o ON o.id = c.id WHERE o.total / 2 > 1", true},
    {"SELECT * FROM customers WHERE id = 1 OR 1 / (id - 5) > 0", true},
    {"SELECT * FROM xmltable('/a' PASSING '<a/>' COLUMNS x int) t, customers c WHERE c.id = 1",
     true},
};

START_TEST(test_leak_case)
{
    const LeakCase *c = &leak_cases[_i];
    PgwPolicyResult r = rewrite_ok(&ctx, c->sql);
    ck_assert_msg(r.decision == PGW_POLICY_ALLOW, "refused %s: %s %s", c->sql, r.sqlstate,
                  r.message != NULL ? r.message : "");
    ck_assert_msg(fenced(&r) == c->fenced, "%s\n  should %sbe fenced:\n  %s", c->sql,
                  c->fenced ? "" : "not ", r.sql);
    /* Fenced means every derived table: count the row filters. */
    if (c->fenced) {
        size_t selects = 0, fences = 0;
        for (const char *p = r.sql;
             (p = strstr(p, "tenant_id OPERATOR(pg_catalog.=) 'o''acme'")) != NULL; p++)
            selects++;
        for (const char *p = r.sql; (p = strstr(p, "OFFSET 0")) != NULL; p++)
            fences++;
        ck_assert_msg(fences >= selects, "%s: %zu fences for %zu derived tables: %s", c->sql,
                      fences, selects, r.sql);
    }
    policy_result_free(&r);
}
END_TEST

/* Parameter types from a Parse message change the decision. */
START_TEST(test_param_types)
{
    static const struct {
        const char *sql;
        uint32_t type;
        bool fenced;
    } cases[] = {
        {"SELECT * FROM customers WHERE id = $1", 0, false},
        {"SELECT * FROM customers WHERE id = $1", 23, false},
        {"SELECT * FROM customers WHERE id = $1", 20, false},
        {"SELECT * FROM customers WHERE id = $1", 1700, true}, /* the column would convert */
        {"SELECT * FROM customers WHERE id = ANY($1)", 1007, false},
        {"SELECT * FROM customers WHERE id = ANY($1)", 1009, true},
        {"SELECT * FROM customers WHERE $1::int = id", 25, true}, /* converted at run time */
        {"SELECT * FROM customers WHERE $1::int = id", 23, false},
        {"SELECT * FROM customers WHERE active = $1", 16, false},
        {"SELECT * FROM customers WHERE rating > $1", 1700, true},
        {"SELECT * FROM customers WHERE rating > $1", 701, false},
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(cases); i++) {
        PgwPolicyCtx c = ctx;
        c.nparam_types = 1;
        c.param_types = &cases[i].type;
        PgwPolicyResult r = rewrite_ok(&c, cases[i].sql);
        ck_assert_int_eq(r.decision, PGW_POLICY_ALLOW);
        ck_assert_msg(fenced(&r) == cases[i].fenced, "%s with $1 of type %u: %s", cases[i].sql,
                      cases[i].type, r.sql);
        policy_result_free(&r);
    }
}
END_TEST

/* The fence goes on catalog views exactly as on tables. */
START_TEST(test_catalog_fenced)
{
    PgwPolicyResult r = rewrite_ok(
        &ctx, "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
              "WHERE pg_catalog.length(c.relname) = 3 AND c.relname < 'b'");
    ck_assert_int_eq(r.decision, PGW_POLICY_ALLOW);
    ck_assert_msg(fenced(&r), "%s", r.sql);
    policy_result_free(&r);
    r = rewrite_ok(&ctx, "SELECT c.relname FROM pg_class c WHERE c.relname = 'x' AND c.oid > 5");
    ck_assert_msg(!fenced(&r), "%s", r.sql);
    policy_result_free(&r);
}
END_TEST

/* ---- name resolution (class 2) ---- */

typedef struct NameCase {
    const char *sql;
    const char *sqlstate; /* NULL: allowed */
    const char *must[3];
} NameCase;

static const NameCase name_cases[] = {
    {"SELECT length(name), count(*) FROM products GROUP BY 1",
     NULL,
     {"pg_catalog.length(name)", "pg_catalog.count(*)"}},
    {"SELECT safe_fn(id) FROM products", NULL, {"public.safe_fn(id)"}},
    {"SELECT public.safe_fn(id) FROM products", NULL, {"public.safe_fn(id)"}},
    {"SELECT sales.safe_fn(id) FROM products", "42883", {"sales.safe_fn"}},
    {"SELECT evil.length(name) FROM products", "42883", {"evil.length"}},
    {"SELECT name FROM products WHERE name LIKE 'a%' OR name NOT ILIKE 'b%'",
     NULL,
     {"name OPERATOR(pg_catalog.~~) 'a%'", "OPERATOR(pg_catalog.!~~*)"}},
    {"SELECT name FROM products WHERE name SIMILAR TO 'a%'",
     NULL,
     {"OPERATOR(pg_catalog.~) pg_catalog.similar_to_escape("}},
    {"SELECT name FROM products WHERE name LIKE 'a!%' ESCAPE '!'",
     NULL,
     {"pg_catalog.like_escape("}},
    {"SELECT 1 + 1, - id, id = 2 FROM products",
     NULL,
     {"1 OPERATOR(pg_catalog.+) 1", "OPERATOR(pg_catalog.-) id", "id OPERATOR(pg_catalog.=) 2"}},
    {"SELECT * FROM products WHERE id IN (SELECT id FROM products)",
     NULL,
     {"id OPERATOR(pg_catalog.=) ANY (SELECT"}},
    {"SELECT * FROM products WHERE id > ALL (SELECT id FROM products)",
     NULL,
     {"OPERATOR(pg_catalog.>) ALL (SELECT"}},
    {"SELECT * FROM products ORDER BY id USING <", NULL, {"USING OPERATOR(pg_catalog.<)"}},
    {"SELECT * FROM products WHERE id = ANY('{1}')", NULL, {"OPERATOR(pg_catalog.=) ANY("}},
    {"SELECT * FROM generate_series(1, 3) g", NULL, {"pg_catalog.generate_series(1, 3) g"}},
    {"SELECT * FROM products WHERE name OPERATOR(public.=) 'x'", "42883", {"operator"}},
    {"SELECT * FROM products WHERE id = ANY (SELECT 1) AND id OPERATOR(evil.<) 3",
     "42883",
     {"operator"}},
    {"SELECT set_config('application_name', 'x', false)", NULL, {"pg_catalog.set_config("}},
    {"SELECT extract(year FROM signup), position('a' IN name) FROM customers",
     NULL,
     {"extract ('year' FROM signup)", "POSITION('a' IN name)"}},
    {"SELECT \"left\"(name, 1), \"right\"(name, 1) FROM products",
     NULL,
     {"pg_catalog.\"left\"(name, 1)", "pg_catalog.\"right\"(name, 1)"}},
    /* the row filter's operators too */
    {"SELECT id FROM orders", NULL, {FILTERED_ORDERS}},
    /* functional notation: rel.f and (x).f call f(rel) and f(x) */
    {"SELECT c.length FROM customers c", "42703", {"column c.length does not exist"}},
    {"SELECT c.secret FROM customers c", NULL, {"c.secret"}}, /* the backend: no such column */
    {"SELECT public.customers.length FROM public.customers", "42703", {"length"}},
    {"SELECT (c.name).length FROM customers c", "42703", {"length"}},
    {"SELECT (x).nextval FROM (SELECT 'seq'::text AS x) t", "42703", {"nextval"}},
    {"SELECT (1).pg_sleep", "42703", {"pg_sleep"}},
    {"SELECT g.nextval FROM generate_series(1, 2) g", "42703", {"g.nextval"}},
    {"SELECT s.safe_fn FROM (SELECT 1) s", "42703", {"s.safe_fn"}},
    {"SELECT c.name, c.xmin FROM customers c", NULL, {"c.name"}},
    {"SELECT (c).name, (c).* FROM customers c", NULL, {"(c).name"}},
    {"SELECT s.name, s.upper FROM (SELECT name, 1 AS upper FROM products) s", NULL, {"s.upper"}},
    {"SELECT g.g, n.x FROM generate_series(1, 2) g, generate_series(1, 2) n(x)", NULL, {"g.g"}},
    {"SELECT (information_schema._pg_expandarray(ARRAY[1])).n", NULL, {"_pg_expandarray"}},
};

START_TEST(test_name_case)
{
    const NameCase *c = &name_cases[_i];
    PgwPolicyResult r = rewrite_ok(&ctx, c->sql);
    if (c->sqlstate == NULL) {
        ck_assert_msg(r.decision == PGW_POLICY_ALLOW, "refused %s: %s", c->sql,
                      r.message != NULL ? r.message : "");
    } else {
        ck_assert_msg(r.decision == PGW_POLICY_REFUSE && strcmp(r.sqlstate, c->sqlstate) == 0,
                      "%s: wanted %s, got %s %s", c->sql, c->sqlstate, r.sqlstate,
                      r.sql != NULL ? r.sql : r.message);
    }
    const char *text = c->sqlstate == NULL ? r.sql : r.message;
    for (size_t i = 0; i < PGW_ARRAY_LEN(c->must) && c->must[i] != NULL; i++)
        ck_assert_msg(strstr(text, c->must[i]) != NULL, "%s\n  gave: %s\n  missing: %s", c->sql,
                      text, c->must[i]);
    /* Nothing is called unqualified: no "name(" without a schema. */
    if (c->sqlstate == NULL)
        ck_assert_msg(strstr(text, " length(") == NULL && strstr(text, " count(") == NULL, "%s",
                      text);
    policy_result_free(&r);
}
END_TEST

/* A backend where public defines = and < (as extensions do): what the
 * grammar resolves by name is refused unless the built-in provably wins. */
START_TEST(test_shadowing_operators)
{
    size_t n = PGW_ARRAY_LEN(fixture_rows) + 2;
    const char **rows = pgw_calloc(n * SCHEMA_INTROSPECTION_NCOLS, sizeof(*rows));
    memcpy(rows, fixture_rows, sizeof(fixture_rows));
    const char *user_ops[2][SCHEMA_INTROSPECTION_NCOLS] = {
        {"public", NULL, NULL, NULL, NULL, NULL, NULL, NULL, "U", "=", "1043", "1043"},
        {"public", NULL, NULL, NULL, NULL, NULL, NULL, NULL, "U", "<", "1043", "1043"},
    };
    memcpy(rows + PGW_ARRAY_LEN(fixture_rows) * SCHEMA_INTROSPECTION_NCOLS, user_ops,
           sizeof(user_ops));
    PgwSchema *s = schema_from_rows(n, SCHEMA_INTROSPECTION_NCOLS, rows);
    ck_assert_ptr_nonnull(s);
    ck_assert(schema_user_operator(s, "public", "="));
    ck_assert(!schema_user_operator(s, "public", ">"));
    PgwPolicyCtx c = ctx;
    c.schema = s;
    static const struct {
        const char *sql;
        bool refused;
    } cases[] = {
        {"SELECT * FROM customers WHERE id IN (1, 2)", false}, /* int4 = int4 is exact */
        {"SELECT * FROM customers WHERE city = 'x'", false}, /* explicit: qualified */
        {"SELECT * FROM customers WHERE city IN ('a', 'b')", true},
        {"SELECT * FROM customers WHERE upper(name) IS DISTINCT FROM 'x'", true},
        {"SELECT NULLIF(lower(name), 'x') FROM customers", true},
        {"SELECT CASE lower(name) WHEN 'x' THEN 1 END FROM customers", true},
        {"SELECT * FROM customers WHERE city BETWEEN 'a' AND 'b'", true},
        {"SELECT * FROM customers WHERE id BETWEEN 1 AND 2", false},
        {"SELECT * FROM orders JOIN customers USING (id)", false},
        {"SELECT * FROM orders NATURAL JOIN customers", true},
        {"SELECT * FROM customers WHERE id > 3", false}, /* no user > */
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(cases); i++) {
        PgwPolicyResult r = rewrite_ok(&c, cases[i].sql);
        ck_assert_msg((r.decision == PGW_POLICY_REFUSE) == cases[i].refused, "%s: %s", cases[i].sql,
                      r.decision == PGW_POLICY_REFUSE ? r.message : r.sql);
        if (cases[i].refused) {
            ck_assert_str_eq(r.sqlstate, "42501");
            ck_assert_ptr_nonnull(r.hint);
        }
        policy_result_free(&r);
    }
    schema_free(s);
    free(rows);
}
END_TEST

/* ---- EXPLAIN (class 4) ---- */

START_TEST(test_explain)
{
    static const struct {
        const char *sql;
        bool allowed;
    } cases[] = {
        {"EXPLAIN SELECT * FROM products WHERE id = 5", true},
        {"EXPLAIN ANALYZE SELECT count(*) FROM products", true},
        {"EXPLAIN SELECT * FROM pg_am", true},
        {"EXPLAIN SELECT * FROM pg_namespace", false}, /* a virtualized catalog */
        {"EXPLAIN SELECT * FROM orders WHERE id = 42", false},
        {"EXPLAIN SELECT name FROM customers WHERE name < 'x'", false},
        {"EXPLAIN ANALYZE SELECT * FROM orders", false},
        {"EXPLAIN (FORMAT JSON) SELECT * FROM products p WHERE p.id IN (SELECT id FROM orders)",
         false},
        {"EXPLAIN SELECT * FROM products, LATERAL (SELECT * FROM customers LIMIT 1) c", false},
        {"EXPLAIN WITH x AS (SELECT * FROM orders) SELECT 1", false},
        {"EXPLAIN SELECT relname FROM pg_class", false},
        {"EXPLAIN SELECT attname FROM pg_attribute", false},
        {"EXPLAIN SELECT has_table_privilege(1259::oid, 'SELECT')", false},
        {"EXPLAIN EXECUTE q", false},
        {"SELECT 1; EXPLAIN SELECT * FROM orders", false},
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(cases); i++) {
        PgwPolicyResult r = rewrite_ok(&ctx, cases[i].sql);
        ck_assert_msg((r.decision == PGW_POLICY_ALLOW) == cases[i].allowed, "%s: %s", cases[i].sql,
                      r.decision == PGW_POLICY_ALLOW ? r.sql : r.message);
        if (!cases[i].allowed) {
            ck_assert_str_eq(r.sqlstate, "42501");
            ck_assert_ptr_nonnull(r.hint);
        }
        policy_result_free(&r);
    }
}
END_TEST

/* ---- bounds (class 8) ---- */

static char *repeat_sql(const char *head, const char *unit, size_t n, const char *tail)
{
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, head);
    for (size_t i = 0; i < n; i++)
        buf_append_str(&b, unit);
    buf_append_str(&b, tail);
    return buf_steal_str(&b);
}

START_TEST(test_depth)
{
    static const struct {
        const char *head, *unit, *tail;
        size_t n;
        bool refused;
    } cases[] = {
        {"SELECT 1", "+1", "", 1000, false},
        {"SELECT 1", "+1", "", 6000, true}, /* the 6,000 terms */
        {"SELECT ", "NOT ", "true", 4500, false}, /* and 4,500 NOTs: PostgreSQL runs them */
        {"SELECT ", "NOT ", "true", 9000, true},
        {"SELECT 1 FROM orders WHERE id = 1", "+1", "", 6000, true},
        {"SELECT 'a'", "||'a'", "", 6000, true},
        {"SELECT 1", " UNION SELECT 1", "", 12000, true},
        {"SELECT 1", " UNION SELECT 1", "", 2000, false},
        {"SELECT ", "abs(", "1", 8000, true}, /* closed below */
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(cases); i++) {
        char *sql = repeat_sql(cases[i].head, cases[i].unit, cases[i].n, cases[i].tail);
        if (strcmp(cases[i].unit, "abs(") == 0) {
            char *closed = repeat_sql(sql, ")", cases[i].n, "");
            free(sql);
            sql = closed;
        }
        PgwPolicyResult r = rewrite_ok(&ctx, sql);
        if (cases[i].refused) {
            ck_assert_msg(r.decision == PGW_POLICY_REFUSE, "%zu x %s allowed", cases[i].n,
                          cases[i].unit);
            ck_assert_msg(strcmp(r.sqlstate, "54001") == 0 || strcmp(r.sqlstate, "42601") == 0,
                          "%zu x %s: %s %s", cases[i].n, cases[i].unit, r.sqlstate, r.message);
            if (strcmp(r.sqlstate, "54001") == 0)
                ck_assert_ptr_nonnull(strstr(r.message, "too deeply nested"));
        } else {
            ck_assert_msg(r.decision == PGW_POLICY_ALLOW, "%zu x %s: %s", cases[i].n, cases[i].unit,
                          r.message);
        }
        policy_result_free(&r);
        free(sql);
    }
    /* The bound is a setting. */
    cfg.max_nesting_depth = 30000;
    char *sql = repeat_sql("SELECT 1", "+1", 6000, "");
    PgwPolicyResult r = rewrite_ok(&ctx, sql);
    ck_assert_msg(r.decision == PGW_POLICY_ALLOW, "%s", r.message);
    policy_result_free(&r);
    free(sql);
}
END_TEST

/* A statement whose parse needs more stack than this thread has left is
 * checked on a thread that has it: refused cleanly, never a crash. */
static void *small_stack_main(void *arg)
{
    char *sql = arg;
    PgwPolicyResult r;
    int rc = policy_rewrite_uncached(&ctx, sql, &r);
    bool ok = rc == 0 && r.decision == PGW_POLICY_REFUSE && strcmp(r.sqlstate, "54001") == 0;
    policy_result_free(&r);
    return ok ? sql : NULL;
}

START_TEST(test_stack_guard)
{
    /* 200 kB of 1+1+...: libpg_query needs ~35 MB of stack to parse it. */
    char *sql = repeat_sql("SELECT 1", "+1", 100000, "");
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 1024 * 1024);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, &a, small_stack_main, sql), 0);
    void *res;
    pthread_join(th, &res);
    pthread_attr_destroy(&a);
    ck_assert_msg(res == sql, "the deep statement was not refused with 54001");
    free(sql);
}
END_TEST

/* ---- the rewrite cache ---- */

START_TEST(test_cache_bytes)
{
    policy_cache_clear();
    cfg.rewrite_cache_size = 256 * 1024;
    PgwPolicyCacheStats st;
    char sql[128];
    for (int i = 0; i < 2000; i++) {
        snprintf(sql, sizeof(sql), "SELECT id, '%d' AS k FROM orders WHERE status = 'x%d'", i, i);
        PgwPolicyResult r;
        ck_assert_int_eq(policy_rewrite(&ctx, sql, &r), 0);
        policy_result_free(&r);
        policy_cache_stats(&st);
        ck_assert_msg(st.bytes <= cfg.rewrite_cache_size, "%zu bytes cached", st.bytes);
    }
    ck_assert_uint_gt(st.entries, 10);
    ck_assert_uint_lt(st.entries, 2000); /* the oldest went */
    ck_assert_uint_eq(st.capacity, cfg.rewrite_cache_size);

    /* A huge statement is decided but never stored. */
    cfg.rewrite_cache_size = 64u * 1024 * 1024;
    policy_cache_clear();
    char *big = repeat_sql("SELECT id FROM orders WHERE id IN (0", ", 123456", 60000, ")");
    for (int i = 0; i < 2; i++) {
        PgwPolicyResult r;
        ck_assert_int_eq(policy_rewrite(&ctx, big, &r), 0);
        ck_assert_int_eq(r.decision, PGW_POLICY_ALLOW);
        policy_result_free(&r);
    }
    policy_cache_stats(&st);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.misses, 2);
    free(big);

    /* 0: no cache at all. */
    cfg.rewrite_cache_size = 0;
    PgwPolicyResult r;
    ck_assert_int_eq(policy_rewrite(&ctx, "SELECT id FROM orders", &r), 0);
    policy_result_free(&r);
    policy_cache_stats(&st);
    ck_assert_uint_eq(st.entries, 0);
}
END_TEST

START_TEST(test_cache_param_types)
{
    policy_cache_clear();
    const char *sql = "SELECT * FROM customers WHERE id = $1";
    uint32_t int4 = 23, numeric = 1700;
    PgwPolicyCtx a = ctx, b = ctx;
    a.nparam_types = b.nparam_types = 1;
    a.param_types = &int4;
    b.param_types = &numeric;
    PgwPolicyResult ra, rb, ra2;
    ck_assert_int_eq(policy_rewrite(&a, sql, &ra), 0);
    ck_assert_int_eq(policy_rewrite(&b, sql, &rb), 0);
    ck_assert_int_eq(policy_rewrite(&a, sql, &ra2), 0);
    ck_assert(!fenced(&ra) && fenced(&rb) && !fenced(&ra2));
    PgwPolicyCacheStats st;
    policy_cache_stats(&st);
    ck_assert_uint_eq(st.misses, 2);
    ck_assert_uint_eq(st.hits, 1);
    policy_result_free(&ra);
    policy_result_free(&rb);
    policy_result_free(&ra2);

    /* Templates judge a lifted number as the literal it was. */
    PgwPolicyResult t1, t2;
    ck_assert_int_eq(policy_rewrite(&ctx, "SELECT * FROM customers WHERE id = 2.5", &t1), 0);
    ck_assert_int_eq(policy_rewrite(&ctx, "SELECT * FROM customers WHERE id = 25", &t2), 0);
    ck_assert_msg(fenced(&t1), "%s", t1.sql);
    ck_assert_msg(!fenced(&t2), "%s", t2.sql);
    ck_assert_ptr_nonnull(strstr(t1.sql, "2.5"));
    policy_result_free(&t1);
    policy_result_free(&t2);
    PgwPolicyResult t3;
    ck_assert_int_eq(policy_rewrite(&ctx, "SELECT * FROM customers WHERE rating > 3", &t3), 0);
    ck_assert_msg(!fenced(&t3), "%s", t3.sql);
    policy_result_free(&t3);
}
END_TEST

/* ---- what the result reports ---- */

START_TEST(test_relations)
{
    static const struct {
        const char *sql;
        const char *relations; /* comma-separated, sorted */
    } cases[] = {
        {"SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id JOIN products p ON p.id "
         "= o.id JOIN orders o2 ON o2.id = o.id",
         "public.customers,public.orders,public.products"},
        {"SELECT relname FROM pg_class", "pg_catalog.pg_class"},
        {"COPY orders TO STDOUT", "public.orders"},
        {"DECLARE c CURSOR FOR SELECT * FROM products", "public.products"},
        {"PREPARE q AS SELECT * FROM customers WHERE id IN (SELECT customer_id FROM orders)",
         "public.customers,public.orders"},
        {"WITH orders AS (SELECT 1) SELECT * FROM orders", ""},
        {"SELECT 1", ""},
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(cases); i++) {
        PgwPolicyResult r = rewrite_ok(&ctx, cases[i].sql);
        ck_assert_int_eq(r.decision, PGW_POLICY_ALLOW);
        PgwBuf b;
        buf_init(&b);
        for (size_t k = 0; k < r.nrelations; k++)
            buf_printf(&b, "%s%s", k > 0 ? "," : "", r.relations[k]);
        char *got = buf_steal_str(&b);
        ck_assert_msg(strcmp(got, cases[i].relations) == 0, "%s: %s", cases[i].sql, got);
        free(got);
        policy_result_free(&r);
    }
    /* the rewrite cache copies them */
    policy_cache_clear();
    PgwPolicyResult r1, r2;
    ck_assert_int_eq(policy_rewrite(&ctx, "SELECT * FROM products, orders", &r1), 0);
    ck_assert_int_eq(policy_rewrite(&ctx, "SELECT * FROM products, orders", &r2), 0);
    ck_assert_uint_eq(r2.nrelations, 2);
    ck_assert_str_eq(r2.relations[1], "public.products");
    policy_result_free(&r1);
    policy_result_free(&r2);
}
END_TEST

START_TEST(test_cacheable)
{
    static const struct {
        const char *sql;
        bool cacheable;
    } cases[] = {
        {"SELECT id FROM orders", true},
        {"SELECT age(signup, '2020-01-01') FROM customers", true},
        {"SELECT now()", false},
        {"SELECT current_date", false},
        {"SELECT localtimestamp", false},
        {"SELECT clock_timestamp()", false},
        {"SELECT statement_timestamp()", false},
        {"SELECT random()", false},
        {"SELECT * FROM orders WHERE placed > 'today'", false},
        {"SELECT 'now'::timestamptz", false},
        {"SELECT age(signup) FROM customers", false},
        {"SELECT safe_fn(id) FROM products", false},
        {"SELECT current_setting('timezone')", false},
        {"EXECUTE q", false},
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(cases); i++) {
        PgwPolicyResult r = rewrite_ok(&ctx, cases[i].sql);
        ck_assert_int_eq(r.decision, PGW_POLICY_ALLOW);
        ck_assert_msg(r.cacheable == cases[i].cacheable, "%s", cases[i].sql);
        policy_result_free(&r);
    }
}
END_TEST

/* ---- cost in proportion to size (printed, not asserted) ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double time_rewrite(const char *sql)
{
    double t0 = now_ms();
    PgwPolicyResult r = rewrite_ok(&ctx, sql);
    double t = now_ms() - t0;
    ck_assert_msg(r.decision == PGW_POLICY_ALLOW, "%.80s: %s", sql, r.message);
    policy_result_free(&r);
    return t;
}

START_TEST(test_linear_cost)
{
    static const struct {
        const char *name, *head, *unit, *tail;
        size_t small, large;
    } shapes[] = {
        {"IN list", "SELECT id FROM orders WHERE id IN (0", ", 12345", ")", 10000, 100000},
        {"call args", "SELECT concat(0", ", id", ") FROM orders", 1000, 8000},
        {"OID-wrapped args", "SELECT concat(0", ", obj_description(1259)", ")", 1000, 8000},
        {"OR chain", "SELECT id FROM orders WHERE id = 0", " OR id = 7", "", 1000, 8000},
        {"derived tables", "SELECT 1 FROM orders o0", ", orders", "", 100, 800},
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(shapes); i++) {
        char *a = repeat_sql(shapes[i].head, shapes[i].unit, shapes[i].small, shapes[i].tail);
        char *b = repeat_sql(shapes[i].head, shapes[i].unit, shapes[i].large, shapes[i].tail);
        double ta = time_rewrite(a), tb = time_rewrite(b);
        printf("rewrite cost, %s: %zu items %.1f ms, %zu items %.1f ms (x%.1f for x%.1f)\n",
               shapes[i].name, shapes[i].small, ta, shapes[i].large, tb, tb / ta,
               (double)shapes[i].large / (double)shapes[i].small);
        free(a);
        free(b);
    }
}
END_TEST

static Suite *leak_suite(void)
{
    Suite *s = suite_create("leak");
    TCase *tc = tcase_create("analysis");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_leak_case, 0, PGW_ARRAY_LEN(leak_cases));
    tcase_add_test(tc, test_param_types);
    tcase_add_test(tc, test_catalog_fenced);
    tcase_add_loop_test(tc, test_name_case, 0, PGW_ARRAY_LEN(name_cases));
    tcase_add_test(tc, test_shadowing_operators);
    tcase_add_test(tc, test_explain);
    tcase_add_test(tc, test_depth);
    tcase_add_test(tc, test_stack_guard);
    tcase_add_test(tc, test_cache_bytes);
    tcase_add_test(tc, test_cache_param_types);
    tcase_add_test(tc, test_relations);
    tcase_add_test(tc, test_cacheable);
    tcase_add_test(tc, test_linear_cost);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(leak_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
