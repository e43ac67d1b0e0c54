/*
 * test_cache_key.c — result-cache keys and eligibility (src/cache_key.h),
 * table-driven: a statement and the session's state in, "cacheable for N ms"
 * or "not cacheable, because ..." out; and key cases: two inputs in, same
 * key or different keys out.
 *
 * Statements go through the real policy first (policy_rewrite with a config
 * parsed from INI text and a schema snapshot built from introspection rows),
 * because eligibility is decided on the policy's rewrite — what the backend
 * runs, with row filters and masks in it.
 */
#include <arpa/inet.h>
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cache_key.h"
#include "config.h"
#include "policy.h"
#include "schema.h"

static const char *const schema_rows[][SCHEMA_INTROSPECTION_NCOLS] = {
    {"public", "customers", "r", "1", "id", "integer", "N"},
    {"public", "customers", "r", "2", "tenant_id", "text", "S"},
    {"public", "customers", "r", "3", "name", "text", "S"},
    {"public", "customers", "r", "4", "ssn", "text", "S"},
    {"public", "customers", "r", "5", "joined", "date", "D"},
    {"public", "customers", "r", "6", "note", "text", "S"},
    {"public", "orders", "r", "1", "id", "integer", "N"},
    {"public", "orders", "r", "2", "customer_id", "integer", "N"},
    {"public", "orders", "r", "3", "total", "numeric(10,2)", "N"},
    {"public", "orders", "r", "4", "placed_at", "timestamp with time zone", "D"},
    {"public", "orders", "r", "5", "tenant_id", "text", "S"},
    {"public", "orders", "r", "6", "due", "text", "S"},
    {"public", "products", "r", "1", "id", "integer", "N"},
    {"public", "products", "r", "2", "name", "text", "S"},
    {"public", "rates", "r", "1", "cur", "text", "S"},
    {"public", "rates", "r", "2", "rate", "numeric", "N"},
    {"public", "live", "r", "1", "v", "integer", "N"},
    {"pg_catalog", "pg_class", "r", "1", "oid", "oid", "N"},
    {"pg_catalog", "pg_class", "r", "2", "relname", "name", "S"},
    {"pg_catalog", "pg_stat_activity", "v", "1", "pid", "integer", "N"},
};

static const char *config_text(const char *customers_filter, const char *extra)
{
    static char text[4096];
    snprintf(text, sizeof text,
             "[pgwarden]\n"
             "auth_type = trust\n"
             "default_access = deny\n"
             "allowed_functions = public.my_fn, pg_catalog.pg_sleep\n"
             "[users]\n"
             "alice = acme\n"
             "bob = globex\n"
             "[tenant.acme]\n"
             "backend = host=127.0.0.1 dbname=acme\n"
             "[tenant.globex]\n"
             "backend = host=127.0.0.1 dbname=globex\n"
             "[table.public.customers]\n"
             "row_filter = %s\n"
             "mask.ssn = null\n"
             "[table.public.orders]\n"
             "row_filter = tenant_id = $tenant\n"
             "[table.public.products]\n"
             "cache_ttl = 300s\n"
             "[table.public.rates]\n"
             "cache_ttl = 5s\n"
             "[table.public.live]\n"
             "cache_ttl = 0\n"
             "[cache]\n"
             "%s",
             customers_filter, extra);
    return text;
}

static PgwConfig *cfg;
static PgwSchema *schema;

static PgwConfig *load(const char *text)
{
    PgwConfig *c = NULL;
    char err[512];
    int rc = config_parse_string("test.ini", text, &c, err, sizeof err);
    ck_assert_msg(rc == 0, "config: %s", err);
    return c;
}

static void setup(void)
{
    cfg = load(config_text("tenant_id = $tenant", "ttl = 60s\n"));
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

/* ---- a Bind body built from text/NULL/binary parameters ---- */

typedef struct Param {
    int format; /* 0 text, 1 binary */
    const char *value; /* NULL: SQL NULL */
} Param;

static void build_bind(PgwBuf *b, int nformats, const Param *params, int nparams, int nresult,
                       const int *result_formats)
{
    buf_init(b);
    buf_append_cstr(b, "");
    buf_append_cstr(b, "");
    buf_append_u16(b, (uint16_t)nformats);
    for (int i = 0; i < nformats; i++)
        buf_append_u16(b, (uint16_t)params[nformats == 1 ? 0 : i].format);
    buf_append_u16(b, (uint16_t)nparams);
    for (int i = 0; i < nparams; i++) {
        if (params[i].value == NULL) {
            buf_append_u32(b, 0xffffffffu);
        } else {
            buf_append_u32(b, (uint32_t)strlen(params[i].value));
            buf_append_str(b, params[i].value);
        }
    }
    buf_append_u16(b, (uint16_t)nresult);
    for (int i = 0; i < nresult; i++)
        buf_append_u16(b, (uint16_t)result_formats[i]);
}

/* ---- eligibility, table-driven ---- */

typedef struct EligCase {
    const char *sql;
    bool in_transaction;
    const char *param; /* one text parameter, or NULL for none */
    uint32_t max_rows;
    int ttl_ms; /* expected ttl when cacheable; 0: expect "not cacheable" */
    const char *reason; /* substring of the reason when not cacheable */
} EligCase;

static const EligCase elig_cases[] = {
    /* plain queries: the ttl is [cache] ttl, or the shortest cache_ttl */
    {"SELECT name FROM customers WHERE id = 1", false, NULL, 0, 60000, NULL},
    {"SELECT c.name, sum(o.total) FROM customers c JOIN orders o ON o.customer_id = c.id "
     "GROUP BY c.name ORDER BY 2 DESC",
     false, NULL, 0, 60000, NULL},
    {"SELECT * FROM products", false, NULL, 0, 300000, NULL}, /* cache_ttl overrides, up too */
    {"SELECT p.name, c.name FROM products p, customers c", false, NULL, 0, 60000, NULL},
    {"SELECT p.name, r.rate FROM products p, rates r", false, NULL, 0, 5000, NULL},
    {"VALUES (1), (2)", false, NULL, 0, 60000, NULL},
    {"SELECT 1; SELECT 2", false, NULL, 0, 60000, NULL},
    {"SELECT id FROM orders WHERE id = $1", false, "42", 0, 60000, NULL},
    /* dates computed from data and TimeZone (in the key) are fine */
    {"SELECT placed_at::date, count(*) FROM orders GROUP BY 1", false, NULL, 0, 60000, NULL},
    {"SELECT date_trunc('month', placed_at)::date FROM orders", false, NULL, 0, 60000, NULL},
    {"SELECT CAST(max(placed_at) AS date) FROM orders", false, NULL, 0, 60000, NULL},
    {"SELECT joined::timestamp FROM customers", false, NULL, 0, 60000, NULL},
    {"SELECT '2024-01-01'::date + 1", false, NULL, 0, 60000, NULL},
    {"SELECT age(placed_at, '2024-01-01') FROM orders", false, NULL, 0, 60000, NULL},
    {"SELECT name FROM customers WHERE name = 'Snowco'", false, NULL, 0, 60000, NULL},
    {"SELECT relname FROM pg_class", false, NULL, 0, 60000, NULL},

    /* the session */
    {"SELECT 1", true, NULL, 0, 0, "inside an explicit transaction"},
    {"SELECT id FROM orders", false, NULL, 10, 0, "rows at a time"},

    /* not queries */
    {"SET TimeZone = 'UTC'", false, NULL, 0, 0, "setting"},
    {"SHOW TimeZone", false, NULL, 0, 0, "setting"},
    {"BEGIN; SELECT 1; COMMIT", false, NULL, 0, 0, "transaction"},
    {"DECLARE c CURSOR FOR SELECT 1", false, NULL, 0, 0, "cursor"},
    {"FETCH 10 FROM c", false, NULL, 0, 0, "cursor"},
    {"COPY (SELECT 1) TO STDOUT", false, NULL, 0, 0, "COPY"},
    {"SELECT id FROM orders FOR UPDATE", false, NULL, 0, 0, ""},
    {"WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d", false, NULL, 0, 0, ""},

    /* the clock, randomness, server state */
    {"SELECT now()", false, NULL, 0, 0, "now()"},
    {"SELECT id FROM orders WHERE placed_at > now() - interval '1 day'", false, NULL, 0, 0,
     "now()"},
    {"SELECT clock_timestamp()", false, NULL, 0, 0, "clock_timestamp"},
    {"SELECT random()", false, NULL, 0, 0, "random"},
    {"SELECT id FROM orders ORDER BY random() LIMIT 1", false, NULL, 0, 0, "random"},
    {"SELECT gen_random_uuid()", false, NULL, 0, 0, "gen_random_uuid"},
    {"SELECT statement_timestamp()", false, NULL, 0, 0, "statement_timestamp"},
    {"SELECT timeofday()", false, NULL, 0, 0, "timeofday"},
    {"SELECT current_date", false, NULL, 0, 0, "clock"},
    {"SELECT id FROM orders WHERE placed_at > CURRENT_TIMESTAMP", false, NULL, 0, 0, "clock"},
    {"SELECT localtimestamp", false, NULL, 0, 0, "clock"},
    {"SELECT age(placed_at) FROM orders", false, NULL, 0, 0, "age()"},
    {"SELECT pg_backend_pid()", false, NULL, 0, 0, "pg_backend_pid"},
    {"SELECT pg_postmaster_start_time()", false, NULL, 0, 0, "pg_postmaster_start_time"},
    {"SELECT current_setting('TimeZone')", false, NULL, 0, 0, "current_setting"},
    {"SELECT 'today'::date", false, NULL, 0, 0, "today"},
    {"SELECT date 'tomorrow'", false, NULL, 0, 0, "tomorrow"},
    {"SELECT id FROM orders WHERE placed_at > 'now'", false, NULL, 0, 0, "now"},
    {"SELECT id FROM orders WHERE placed_at > 'YESTERDAY 10:00'", false, NULL, 0, 0, "yesterday"},
    {"SELECT id FROM orders WHERE placed_at > $1", false, "now", 0, 0, "parameter $1"},
    {"SELECT id FROM orders WHERE placed_at::date = $1", false, "Today", 0, 0, "parameter $1"},
    {"SELECT due::date FROM orders", false, NULL, 0, 0, "may be text"},
    {"SELECT CAST(due AS timestamptz) FROM orders", false, NULL, 0, 0, "may be text"},
    {"SELECT date(due) FROM orders", false, NULL, 0, 0, "may be text"},
    {"SELECT (due || '')::date FROM orders", false, NULL, 0, 0, "may be text"},

    /* user-defined functions: volatility unknown */
    {"SELECT public.my_fn(1)", false, NULL, 0, 0, "user-defined"},
    {"SELECT my_fn(1)", false, NULL, 0, 0, "user-defined"},
    {"SELECT pg_sleep(0)", false, NULL, 0, 0, "pg_sleep"},

    /* per-table cache_ttl = 0, wherever the table is read */
    {"SELECT v FROM live", false, NULL, 0, 0, "cache_ttl = 0"},
    {"SELECT p.name FROM products p WHERE p.id IN (SELECT v FROM live)", false, NULL, 0, 0,
     "cache_ttl = 0"},
    {"WITH x AS (SELECT v FROM live) SELECT * FROM x", false, NULL, 0, 0, "cache_ttl = 0"},
};

static void decide(const PgwConfig *c, const char *tenant_name, const char *sql,
                   const PgwCacheBind *bind, bool in_txn, uint32_t max_rows, PgwPolicyResult *pr,
                   PgwCacheVerdict *v)
{
    uint32_t types[1] = {0};
    PgwPolicyCtx ctx = {.cfg = c,
                        .tenant = config_tenant(c, tenant_name),
                        .schema = schema,
                        .nparam_types = bind ? bind->nparams : 0,
                        .param_types = types};
    memset(pr, 0, sizeof(*pr));
    ck_assert_int_eq(policy_rewrite(&ctx, sql, pr), 0);
    PgwCacheStatement st = {.cfg = c,
                            .tenant = ctx.tenant,
                            .schema = schema,
                            .policy = pr,
                            .in_transaction = in_txn,
                            .bind = bind,
                            .max_rows = max_rows};
    cache_eligible(&st, v);
    cache_verdict_free(v);
}

START_TEST(eligibility)
{
    const EligCase *tc = &elig_cases[_i];
    PgwBuf bind_body;
    PgwCacheBind bind, *bp = NULL;
    Param p = {0, tc->param};
    if (tc->param != NULL) {
        build_bind(&bind_body, 0, &p, 1, 0, NULL);
        ck_assert_int_eq(cache_parse_bind(bind_body.data, bind_body.len, &bind), 0);
        bp = &bind;
    }
    PgwPolicyResult pr;
    PgwCacheVerdict v;
    decide(cfg, "acme", tc->sql, bp, tc->in_transaction, tc->max_rows, &pr, &v);
    if (pr.decision != PGW_POLICY_ALLOW && tc->ttl_ms > 0)
        ck_abort_msg("%s: the policy refused it: %s", tc->sql, pr.message);
    if (tc->ttl_ms > 0) {
        ck_assert_msg(v.cacheable, "%s: expected cacheable, got: %s", tc->sql, v.reason);
        ck_assert_int_eq(v.ttl_ms, tc->ttl_ms);
    } else {
        ck_assert_msg(!v.cacheable, "%s: expected not cacheable", tc->sql);
        ck_assert_msg(strstr(v.reason, tc->reason) != NULL, "%s: reason '%s' lacks '%s'", tc->sql,
                      v.reason, tc->reason);
    }
    policy_result_free(&pr);
    if (tc->param != NULL)
        buf_free(&bind_body);
}
END_TEST

/* What a statement may do to the session the cache follows, whatever its
 * verdict: change a setting (the runtime reads the settings again), drop
 * prepared statements (it forgets the names). */
typedef struct SessionCase {
    const char *sql;
    bool settings_safe;
    bool drops_prepared;
} SessionCase;

static const SessionCase session_cases[] = {
    {"SELECT name FROM customers WHERE id = 1", true, false},
    {"SELECT now()", true, false}, /* not cacheable, but changes nothing */
    {"SELECT random(); SELECT 1", true, false},
    {"BEGIN", true, false},
    {"COMMIT", true, false},
    {"ROLLBACK", true, false}, /* undoes SETs, each of which was seen */
    {"SHOW TimeZone", true, false},
    {"SET TimeZone = 'UTC'", false, false},
    {"RESET ALL", false, false},
    {"SET extra_float_digits = 3", false, false},
    {"SELECT 1; SET bytea_output = 'escape'", false, false},
    {"SELECT set_config('TimeZone', 'UTC', false)", false, false},
    {"SELECT name FROM customers WHERE my_fn(id) > 0", false, false},
    {"SELECT public.my_fn(1)", false, false},
    {"DISCARD ALL", false, true},
    {"DEALLOCATE ALL", false, true},
    {"DECLARE c CURSOR FOR SELECT 1", false, false},
    {"FETCH 1 FROM c", false, false},
};

START_TEST(what_a_statement_may_do_to_the_session)
{
    const SessionCase *tc = &session_cases[_i];
    PgwPolicyResult pr;
    PgwCacheVerdict v;
    decide(cfg, "acme", tc->sql, NULL, false, 0, &pr, &v);
    ck_assert_msg(pr.decision == PGW_POLICY_ALLOW, "%s: the policy refused it: %s", tc->sql,
                  pr.message);
    ck_assert_msg(v.settings_safe == tc->settings_safe, "%s: settings_safe %d", tc->sql,
                  v.settings_safe);
    ck_assert_msg(v.drops_prepared == tc->drops_prepared, "%s: drops_prepared %d", tc->sql,
                  v.drops_prepared);
    policy_result_free(&pr);
}
END_TEST

/* A statement eligible without its values, checked against each Bind. */
START_TEST(bind_values_alone)
{
    static const struct {
        Param p;
        bool ok;
    } cases[] = {
        {{0, "42"}, true},         {{0, "2024-01-01"}, true}, {{0, "snowco"}, true},
        {{1, "now"}, true}, /* binary: not read as text by a date/time input */
        {{0, NULL}, true},         {{0, "now"}, false},       {{0, "Today 10:00"}, false},
        {{0, "yesterday"}, false}, {{0, "TOMORROW"}, false},
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(cases); i++) {
        PgwBuf body;
        PgwCacheBind bind;
        build_bind(&body, 1, &cases[i].p, 1, 0, NULL);
        ck_assert_int_eq(cache_parse_bind(body.data, body.len, &bind), 0);
        char why[160] = "";
        bool ok = cache_bind_cacheable(&bind, why, sizeof why);
        ck_assert_msg(ok == cases[i].ok, "value %s: %d", cases[i].p.value, ok);
        if (!ok)
            ck_assert(strstr(why, "parameter $1") != NULL);
        buf_free(&body);
    }
}
END_TEST

START_TEST(refused_statements_are_not_cacheable)
{
    PgwPolicyResult pr;
    PgwCacheVerdict v;
    decide(cfg, "acme", "DELETE FROM orders", NULL, false, 0, &pr, &v);
    ck_assert(!v.cacheable);
    ck_assert_str_eq(v.reason, "the policy did not allow it");
    policy_result_free(&pr);
}
END_TEST

/* The policy's own list of relations counts even where the rewrite does
 * not show them (and live server state is never cached). */
START_TEST(relations_from_the_policy_count)
{
    char *rels[] = {"pg_catalog.pg_stat_activity"};
    PgwPolicyResult pr = {.decision = PGW_POLICY_ALLOW,
                          .sql = "SELECT 1",
                          .cacheable = true,
                          .read_only_query = true,
                          .nrelations = 1,
                          .relations = rels};
    PgwCacheStatement st = {.cfg = cfg, .tenant = config_tenant(cfg, "acme"), .policy = &pr};
    PgwCacheVerdict v;
    cache_eligible(&st, &v);
    ck_assert(!v.cacheable);
    ck_assert_msg(strstr(v.reason, "live state") != NULL, "%s", v.reason);
    char *live[] = {"public.live"};
    pr.relations = live;
    cache_eligible(&st, &v);
    ck_assert(!v.cacheable);
    ck_assert_str_eq(v.reason, "table public.live has cache_ttl = 0");
    char *rates[] = {"public.rates"};
    pr.relations = rates;
    cache_eligible(&st, &v);
    ck_assert(v.cacheable);
    ck_assert_int_eq(v.ttl_ms, 5000);
    ck_assert_int_eq(v.nrelations, 1);
    ck_assert_str_eq(v.relations[0], "public.rates");
    cache_verdict_free(&v);
}
END_TEST

START_TEST(cache_off_and_ttl_zero)
{
    PgwConfig *off = load(config_text("tenant_id = $tenant", "mode = off\nttl = 60s\n"));
    PgwPolicyResult pr;
    PgwCacheVerdict v;
    decide(off, "acme", "SELECT 1", NULL, false, 0, &pr, &v);
    ck_assert(!v.cacheable);
    ck_assert_str_eq(v.reason, "the result cache is off");
    policy_result_free(&pr);
    config_free(off);

    PgwConfig *zero = load(config_text("tenant_id = $tenant", "ttl = 0\n"));
    decide(zero, "acme", "SELECT name FROM customers", NULL, false, 0, &pr, &v);
    ck_assert(!v.cacheable);
    ck_assert_str_eq(v.reason, "ttl is 0");
    policy_result_free(&pr);
    /* a table's own cache_ttl overrides [cache] ttl for what reads only it */
    decide(zero, "acme", "SELECT name FROM products", NULL, false, 0, &pr, &v);
    ck_assert_msg(v.cacheable, "%s", v.reason);
    ck_assert_int_eq(v.ttl_ms, 300000);
    policy_result_free(&pr);
    decide(zero, "acme", "SELECT 1", NULL, false, 0, &pr, &v);
    ck_assert(!v.cacheable);
    policy_result_free(&pr);
    config_free(zero);
}
END_TEST

START_TEST(a_row_filter_reading_the_clock_makes_it_uncacheable)
{
    PgwConfig *c =
        load(config_text("tenant_id = $tenant AND joined <= current_date", "ttl = 60s\n"));
    PgwPolicyResult pr;
    PgwCacheVerdict v;
    decide(c, "acme", "SELECT name FROM customers", NULL, false, 0, &pr, &v);
    if (pr.decision == PGW_POLICY_ALLOW) {
        ck_assert_msg(!v.cacheable, "a filter with current_date was cacheable");
        ck_assert_msg(strstr(v.reason, "clock") != NULL, "reason: %s", v.reason);
    }
    policy_result_free(&pr);
    config_free(c);
}
END_TEST

/* ---- keys ---- */

typedef struct KeyInputs {
    const char *tenant;
    const char *sql;
    const char *timezone;
    const char *datestyle;
    const char *app_name;
    bool raw;
} KeyInputs;

static void key_of(const PgwConfig *c, const KeyInputs *k, PgwCacheKey *out)
{
    uint8_t pfp[PGW_CACHE_DIGEST_LEN], sfp[PGW_CACHE_DIGEST_LEN];
    cache_policy_fingerprint(c, config_tenant(c, k->tenant), pfp);
    cache_schema_fingerprint(schema, sfp);
    PgwCacheSetting settings[3];
    size_t n = 0;
    if (k->timezone)
        settings[n++] = (PgwCacheSetting){"TimeZone", k->timezone};
    if (k->datestyle)
        settings[n++] = (PgwCacheSetting){"DateStyle", k->datestyle};
    if (k->app_name)
        settings[n++] = (PgwCacheSetting){"application_name", k->app_name};
    PgwCacheKeyInput in = {.tenant = k->tenant,
                           .policy_fp = pfp,
                           .schema_fp = sfp,
                           .shape = PGW_CACHE_SIMPLE,
                           .raw_text = k->raw,
                           .sql = k->sql,
                           .nsettings = n,
                           .settings = settings};
    char why[128];
    ck_assert_int_eq(cache_key_build(&in, out, why, sizeof why), 0);
}

typedef struct KeyCase {
    const char *name;
    KeyInputs a, b;
    bool same;
} KeyCase;

static const KeyCase key_cases[] = {
    {"same statement, same tenant",
     {"acme", "SELECT 1", "UTC", "ISO, MDY", NULL, false},
     {"acme", "SELECT 1", "UTC", "ISO, MDY", NULL, false},
     true},
    {"another tenant never shares",
     {"acme", "SELECT 1", "UTC", "ISO, MDY", NULL, false},
     {"globex", "SELECT 1", "UTC", "ISO, MDY", NULL, false},
     false},
    {"TimeZone gets its own entry",
     {"acme", "SELECT 1", "UTC", "ISO, MDY", NULL, false},
     {"acme", "SELECT 1", "Europe/Paris", "ISO, MDY", NULL, false},
     false},
    {"DateStyle gets its own entry",
     {"acme", "SELECT 1", "UTC", "ISO, MDY", NULL, false},
     {"acme", "SELECT 1", "UTC", "German, DMY", NULL, false},
     false},
    {"application_name does not change the bytes",
     {"acme", "SELECT 1", "UTC", "ISO, MDY", "psql", false},
     {"acme", "SELECT 1", "UTC", "ISO, MDY", "dashboard", false},
     true},
    {"a setting absent is not a setting empty",
     {"acme", "SELECT 1", "UTC", NULL, NULL, false},
     {"acme", "SELECT 1", "UTC", "", NULL, false},
     false},
    {"the raw text and a rewrite of the same text are different keys",
     {"acme", "SELECT 1", "UTC", NULL, NULL, false},
     {"acme", "SELECT 1", "UTC", NULL, NULL, true},
     false},
    {"the statement text",
     {"acme", "SELECT 1", "UTC", NULL, NULL, false},
     {"acme", "SELECT 2", "UTC", NULL, NULL, false},
     false},
    {"field boundaries cannot be shifted",
     {"acme", "xSELECT 1", NULL, NULL, NULL, false},
     {"acmex", "SELECT 1", NULL, NULL, NULL, false},
     false},
};

START_TEST(keys)
{
    const KeyCase *tc = &key_cases[_i];
    PgwCacheKey a, b;
    key_of(cfg, &tc->a, &a);
    key_of(cfg, &tc->b, &b);
    ck_assert_msg((memcmp(a.digest, b.digest, sizeof a.digest) == 0) == tc->same, "%s", tc->name);
}
END_TEST

START_TEST(settings_order_and_case_do_not_matter)
{
    uint8_t pfp[PGW_CACHE_DIGEST_LEN] = {1}, sfp[PGW_CACHE_DIGEST_LEN] = {2};
    PgwCacheSetting s1[] = {{"TimeZone", "UTC"}, {"DateStyle", "ISO"}, {"extra_float_digits", "3"}};
    PgwCacheSetting s2[] = {{"extra_float_digits", "3"}, {"datestyle", "ISO"}, {"timezone", "UTC"}};
    /* the later of two values for one name is the one in effect */
    PgwCacheSetting s3[] = {{"TimeZone", "Asia/Tokyo"},
                            {"DateStyle", "ISO"},
                            {"extra_float_digits", "3"},
                            {"timezone", "UTC"}};
    PgwCacheKeyInput in = {.tenant = "acme", .policy_fp = pfp, .schema_fp = sfp, .sql = "SELECT 1"};
    PgwCacheKey k1, k2, k3;
    in.settings = s1;
    in.nsettings = 3;
    ck_assert_int_eq(cache_key_build(&in, &k1, NULL, 0), 0);
    in.settings = s2;
    ck_assert_int_eq(cache_key_build(&in, &k2, NULL, 0), 0);
    in.settings = s3;
    in.nsettings = 4;
    ck_assert_int_eq(cache_key_build(&in, &k3, NULL, 0), 0);
    ck_assert_mem_eq(k1.digest, k2.digest, PGW_CACHE_DIGEST_LEN);
    ck_assert_mem_eq(k1.digest, k3.digest, PGW_CACHE_DIGEST_LEN);

    /* A caller that keeps the settings' digest gets the same key as one
     * passing the list; other settings give another digest and key. */
    uint8_t fp[PGW_CACHE_DIGEST_LEN];
    cache_settings_fingerprint(3, s1, fp);
    PgwCacheKeyInput by_fp = {
        .tenant = "acme", .policy_fp = pfp, .schema_fp = sfp, .sql = "SELECT 1", .settings_fp = fp};
    PgwCacheKey k4, k5;
    ck_assert_int_eq(cache_key_build(&by_fp, &k4, NULL, 0), 0);
    ck_assert_mem_eq(k1.digest, k4.digest, PGW_CACHE_DIGEST_LEN);
    PgwCacheSetting tokyo[] = {{"TimeZone", "Asia/Tokyo"}, {"DateStyle", "ISO"}};
    cache_settings_fingerprint(2, tokyo, fp);
    ck_assert_int_eq(cache_key_build(&by_fp, &k5, NULL, 0), 0);
    ck_assert_int_ne(memcmp(k1.digest, k5.digest, PGW_CACHE_DIGEST_LEN), 0);
}
END_TEST

static int bind_key(const Param *params, int nformats, int nparams, int nresult,
                    const int *result_formats, PgwCacheKey *out)
{
    uint8_t pfp[PGW_CACHE_DIGEST_LEN] = {1}, sfp[PGW_CACHE_DIGEST_LEN] = {2};
    PgwBuf body;
    PgwCacheBind bind;
    build_bind(&body, nformats, params, nparams, nresult, result_formats);
    ck_assert_int_eq(cache_parse_bind(body.data, body.len, &bind), 0);
    uint32_t types[4] = {23, 23, 23, 23};
    PgwCacheKeyInput in = {.tenant = "acme",
                           .policy_fp = pfp,
                           .schema_fp = sfp,
                           .shape = PGW_CACHE_EXTENDED,
                           .sql = "SELECT $1",
                           .nparam_types = (size_t)nparams,
                           .param_types = types,
                           .bind = &bind};
    char why[128];
    int rc = cache_key_build(&in, out, why, sizeof why);
    buf_free(&body);
    return rc;
}

START_TEST(bind_parameters_and_formats)
{
    PgwCacheKey k0, k1, k2, k3, k4, k5, k6, k7;
    Param text1[] = {{0, "1"}};
    Param text2[] = {{0, "2"}};
    Param null1[] = {{0, NULL}};
    Param empty1[] = {{0, ""}};
    Param bin1[] = {{1, "1"}};
    int all_binary[] = {1};
    int all_text[] = {0};
    int two_text[] = {0, 0};
    ck_assert_int_eq(bind_key(text1, 0, 1, 0, NULL, &k0), 0);
    ck_assert_int_eq(bind_key(text1, 1, 1, 1, all_text, &k1), 0); /* same meaning: all text */
    ck_assert_int_eq(bind_key(text2, 0, 1, 0, NULL, &k2), 0);
    ck_assert_int_eq(bind_key(null1, 0, 1, 0, NULL, &k3), 0);
    ck_assert_int_eq(bind_key(empty1, 0, 1, 0, NULL, &k4), 0);
    ck_assert_int_eq(bind_key(bin1, 1, 1, 0, NULL, &k5), 0);
    ck_assert_int_eq(bind_key(text1, 0, 1, 1, all_binary, &k6), 0);
    ck_assert_int_eq(bind_key(text1, 0, 1, 2, two_text, &k7), 0);
    ck_assert_mem_eq(k0.digest, k1.digest, PGW_CACHE_DIGEST_LEN);
    ck_assert_mem_ne(k0.digest, k2.digest, PGW_CACHE_DIGEST_LEN);
    ck_assert_mem_ne(k3.digest, k4.digest, PGW_CACHE_DIGEST_LEN); /* NULL is not '' */
    ck_assert_mem_ne(k0.digest, k5.digest, PGW_CACHE_DIGEST_LEN); /* binary is not text */
    ck_assert_mem_ne(k0.digest, k6.digest, PGW_CACHE_DIGEST_LEN); /* binary results */
    ck_assert_mem_ne(k0.digest, k7.digest, PGW_CACHE_DIGEST_LEN); /* PostgreSQL checks n */

    /* what PostgreSQL would refuse gets no key */
    Param two[] = {{0, "1"}, {0, "2"}, {0, "3"}};
    PgwCacheKey bad;
    ck_assert_int_eq(bind_key(two, 2, 3, 0, NULL, &bad), -1);
    Param weird[] = {{7, "1"}};
    ck_assert_int_eq(bind_key(weird, 1, 1, 0, NULL, &bad), -1);
}
END_TEST

START_TEST(malformed_binds_are_refused)
{
    Param p[] = {{0, "hello"}};
    PgwBuf body;
    PgwCacheBind bind;
    build_bind(&body, 1, p, 1, 0, NULL);
    ck_assert_int_eq(cache_parse_bind(body.data, body.len, &bind), 0);
    for (size_t cut = 0; cut < body.len; cut++)
        ck_assert_int_eq(cache_parse_bind(body.data, cut, &bind), -1);
    buf_append_byte(&body, 0);
    ck_assert_int_eq(cache_parse_bind(body.data, body.len, &bind), -1); /* trailing byte */
    buf_free(&body);
    /* a length that points past the end */
    uint8_t lie[] = {0, 0, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 'x', 0, 0};
    ck_assert_int_eq(cache_parse_bind(lie, sizeof lie, &bind), -1);
}
END_TEST

/* Random bytes and random mutations of a valid Bind: refused or parsed,
 * never read past the end (valgrind/ASan builds check the "never"). */
START_TEST(bind_parser_fuzz)
{
    Param p[] = {{0, "1"}, {1, "abcd"}, {0, NULL}};
    PgwBuf good;
    int rf[] = {1, 0};
    build_bind(&good, 3, p, 3, 2, rf);
    unsigned seed = 12345;
    uint8_t buf[256];
    for (int round = 0; round < 20000; round++) {
        size_t len;
        if (round % 2) {
            len = (size_t)(rand_r(&seed) % (int)sizeof buf);
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)rand_r(&seed);
        } else {
            len = good.len;
            memcpy(buf, good.data, len);
            for (int k = 0; k < 3; k++)
                buf[rand_r(&seed) % (int)len] = (uint8_t)rand_r(&seed);
            len -= (size_t)(rand_r(&seed) % 3);
        }
        uint8_t *copy = malloc(len ? len : 1); /* exact size: overreads are caught */
        memcpy(copy, buf, len);
        PgwCacheBind b;
        if (cache_parse_bind(copy, len, &b) == 0) {
            for (size_t i = 0; i < b.nparams; i++) {
                int format;
                const uint8_t *v;
                int32_t n;
                ck_assert_int_eq(cache_bind_param(&b, i, &format, &v, &n), 0);
                ck_assert(n == -1 || (v >= copy && v + n <= copy + len));
            }
            uint8_t pfp[PGW_CACHE_DIGEST_LEN] = {0}, sfp[PGW_CACHE_DIGEST_LEN] = {0};
            PgwCacheKeyInput in = {.tenant = "t",
                                   .policy_fp = pfp,
                                   .schema_fp = sfp,
                                   .shape = PGW_CACHE_EXTENDED,
                                   .sql = "SELECT $1",
                                   .bind = &b};
            PgwCacheKey k;
            int rc = cache_key_build(&in, &k, NULL, 0);
            ck_assert(rc == 0 || rc == -1);
        }
        free(copy);
    }
    buf_free(&good);
}
END_TEST

START_TEST(a_reload_that_changes_the_policy_changes_the_key)
{
    KeyInputs k = {"acme", "SELECT name FROM customers", "UTC", NULL, NULL, true};
    PgwCacheKey before, same, after, masked;
    key_of(cfg, &k, &before);
    PgwConfig *again = load(config_text("tenant_id = $tenant", "ttl = 60s\n"));
    key_of(again, &k, &same); /* a reload of the same file: entries stay valid */
    ck_assert_mem_eq(before.digest, same.digest, PGW_CACHE_DIGEST_LEN);
    PgwConfig *filtered = load(config_text("tenant_id = $tenant AND id > 1", "ttl = 60s\n"));
    key_of(filtered, &k, &after);
    ck_assert_mem_ne(before.digest, after.digest, PGW_CACHE_DIGEST_LEN);
    char text[4096];
    snprintf(text, sizeof text, "%s", config_text("tenant_id = $tenant", "ttl = 60s\n"));
    char *m = strstr(text, "mask.ssn = null");
    ck_assert_ptr_nonnull(m);
    memcpy(m, "mask.ssn = hash", 15);
    PgwConfig *hashed = load(text);
    key_of(hashed, &k, &masked);
    ck_assert_mem_ne(before.digest, masked.digest, PGW_CACHE_DIGEST_LEN);
    config_free(again);
    config_free(filtered);
    config_free(hashed);
}
END_TEST

START_TEST(another_schema_changes_the_key)
{
    uint8_t a[PGW_CACHE_DIGEST_LEN], b[PGW_CACHE_DIGEST_LEN], n[PGW_CACHE_DIGEST_LEN];
    cache_schema_fingerprint(schema, a);
    const char *values[SCHEMA_INTROSPECTION_NCOLS] = {
        "public", "customers", "r", "1", "id", "bigint", "N", "20", NULL, NULL, NULL, NULL};
    PgwSchema *other = schema_from_rows(1, SCHEMA_INTROSPECTION_NCOLS, values);
    cache_schema_fingerprint(other, b);
    cache_schema_fingerprint(NULL, n);
    ck_assert_mem_ne(a, b, PGW_CACHE_DIGEST_LEN);
    ck_assert_mem_ne(a, n, PGW_CACHE_DIGEST_LEN);
    schema_free(other);
}
END_TEST

START_TEST(cache_ttl_in_table_sections)
{
    const PgwTablePolicy *t = config_table(cfg, "public", "products");
    ck_assert_int_eq(t->cache_ttl_ms, 300000);
    ck_assert_int_eq(config_table(cfg, "public", "live")->cache_ttl_ms, -1); /* never */
    ck_assert_int_eq(config_table(cfg, "public", "orders")->cache_ttl_ms, 0); /* not set */
    PgwConfig *c = NULL;
    char err[512];
    const char *bad = "[pgwarden]\nauth_type = trust\n[table.public.t]\ncache_ttl = soon\n";
    ck_assert_int_eq(config_parse_string("bad.ini", bad, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "bad.ini:4: invalid value for cache_ttl: 'soon'") != NULL, "%s", err);
    const char *twice =
        "[pgwarden]\nauth_type = trust\n[table.public.t]\ncache_ttl = 1s\ncache_ttl = 2s\n";
    ck_assert_int_eq(config_parse_string("twice.ini", twice, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "twice.ini:5:") != NULL, "%s", err);
}
END_TEST

/* ---- the hostile and analytic corpora of the integration tests ----
 *
 * Every statement goes through eligibility as if the policy had allowed it
 * unchanged (the analysis must hold on its own): nothing crashes, whatever
 * writes, changes settings or controls transactions is never cacheable, and
 * neither is anything that reads the clock or randomness by name. */

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

static bool mentions(const char *sql, const char *word)
{
    char lower[8192];
    size_t i = 0;
    for (; sql[i] && i + 1 < sizeof lower; i++)
        lower[i] = (char)tolower((unsigned char)sql[i]);
    lower[i] = '\0';
    return strstr(lower, word) != NULL;
}

static int corpus_run(const char *rel, int *cacheable)
{
    char *text = slurp(rel);
    int n = 0;
    PgwBuf stmt;
    buf_init(&stmt);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (stmt.len == 0 && (line[0] == '#' || strchr(line, '|') == NULL))
            continue; /* a comment, or a blank line */
        size_t len = strlen(line);
        bool more = len > 0 && line[len - 1] == '\\';
        if (more)
            line[len - 1] = ' ';
        buf_append_str(&stmt, line);
        if (more)
            continue;
        char *all = buf_steal_str(&stmt);
        char *bar = strchr(all, '|');
        char expect[16] = "";
        snprintf(expect, sizeof expect, "%.*s", bar ? (int)(bar - all) : 0, all);
        const char *sql = bar ? bar + 1 : all;
        PgwPolicyResult pr = {.decision = PGW_POLICY_ALLOW,
                              .sql = (char *)sql,
                              .cacheable = true,
                              .read_only_query = true};
        PgwCacheStatement st = {.cfg = cfg, .tenant = config_tenant(cfg, "acme"), .policy = &pr};
        PgwCacheVerdict v;
        cache_eligible(&st, &v);
        if (strncmp(expect, "42501", 5) == 0)
            ck_assert_msg(!v.cacheable, "a write or utility statement was cacheable: %s", sql);
        static const char *const clock[] = {
            "now()",     "current_date", "current_timestamp", "clock_timestamp", "random()",
            "localtime", "pg_stat",      "pg_locks",          "pg_settings",     "query_to_xml",
            "ts_stat(",  "pg_cursors",   "pg_prepared",       "pg_reload_conf",  "pg_switch_wal"};
        for (size_t i = 0; i < PGW_ARRAY_LEN(clock); i++)
            ck_assert_msg(!v.cacheable || !mentions(sql, clock[i]), "cacheable with %s: %s",
                          clock[i], sql);
        if (mentions(sql, "set ") && !mentions(sql, "select") && !mentions(sql, "offset"))
            ck_assert_msg(!v.cacheable, "a SET was cacheable: %s", sql);
        *cacheable += v.cacheable;
        if (getenv("CACHE_CORPUS_VERBOSE"))
            fprintf(stderr, "%s: %s %s:%s\n", rel, v.cacheable ? "CACHEABLE" : "not cacheable",
                    v.reason, sql);
        cache_verdict_free(&v);
        free(all);
        n++;
    }
    buf_free(&stmt);
    free(text);
    return n;
}

START_TEST(corpora)
{
    int hostile_ok = 0, analytic_ok = 0;
    int hostile = corpus_run("tests/integration/sql/hostile.sql", &hostile_ok);
    int analytic = corpus_run("tests/integration/sql/analytic.sql", &analytic_ok);
    ck_assert_int_gt(hostile, 300);
    ck_assert_int_gt(analytic, 60);
    /* most analytic queries are what a dashboard repeats: they are cacheable */
    ck_assert_msg(analytic_ok * 2 > analytic, "only %d of %d analytic queries cacheable",
                  analytic_ok, analytic);
}
END_TEST

START_TEST(hex)
{
    PgwCacheKey k;
    for (size_t i = 0; i < PGW_CACHE_DIGEST_LEN; i++)
        k.digest[i] = (uint8_t)(i * 9);
    char h[2 * PGW_CACHE_DIGEST_LEN + 1];
    cache_key_hex(&k, h);
    ck_assert_int_eq(strlen(h), 64);
    ck_assert(strncmp(h, "000912", 6) == 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache_key");
    TCase *tc = tcase_create("cache_key");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, eligibility, 0, (int)PGW_ARRAY_LEN(elig_cases));
    tcase_add_test(tc, refused_statements_are_not_cacheable);
    tcase_add_loop_test(tc, what_a_statement_may_do_to_the_session, 0,
                        (int)PGW_ARRAY_LEN(session_cases));
    tcase_add_test(tc, bind_values_alone);
    tcase_add_test(tc, relations_from_the_policy_count);
    tcase_add_test(tc, cache_off_and_ttl_zero);
    tcase_add_test(tc, a_row_filter_reading_the_clock_makes_it_uncacheable);
    tcase_add_loop_test(tc, keys, 0, (int)PGW_ARRAY_LEN(key_cases));
    tcase_add_test(tc, settings_order_and_case_do_not_matter);
    tcase_add_test(tc, bind_parameters_and_formats);
    tcase_add_test(tc, malformed_binds_are_refused);
    tcase_add_test(tc, bind_parser_fuzz);
    tcase_add_test(tc, a_reload_that_changes_the_policy_changes_the_key);
    tcase_add_test(tc, another_schema_changes_the_key);
    tcase_add_test(tc, cache_ttl_in_table_sections);
    tcase_add_test(tc, corpora);
    tcase_add_test(tc, hex);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
