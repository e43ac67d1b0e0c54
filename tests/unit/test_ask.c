/*
 * test_ask.c — ASK's pure logic, table-driven: which texts are ASKs and what
 * their question is, the ask('...') splice, SQL taken out of model answers,
 * what the prompt shows (and never shows) of a masked schema, error texts
 * cleaned for the model, the translation-cache key, per-tenant limits, and
 * the local table choice.
 *
 * The config is built by hand, as in test_policy.c, so the test depends on
 * config.h's structures only.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ask.h"
#include "ask_schema.h"

/* ---- fixture ---- */

#define R(...)                                                                                     \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }
static const char *const schema_rows[][ASK_SCHEMA_NCOLS] = {
    /* nsp, rel, kind, rel comment, attnum, att, type, notnull, att comment, pk, fk nsp/rel/att */
    R("public", "customers", "r", "People who buy from us", "1", "id", "integer", "t", NULL, "t",
      NULL, NULL, NULL),
    R("public", "customers", "r", "People who buy from us", "2", "tenant_id", "text", "t", NULL,
      "f", NULL, NULL, NULL),
    R("public", "customers", "r", "People who buy from us", "3", "name", "text", "f", "full name",
      "f", NULL, NULL, NULL),
    R("public", "customers", "r", "People who buy from us", "4", "ssn", "character varying(11)",
      "f", "social security number", "f", NULL, NULL, NULL),
    R("public", "customers", "r", "People who buy from us", "5", "secret_score", "integer", "f",
      "the classified sauce", "f", NULL, NULL, NULL),
    R("public", "customers", "r", "People who buy from us", "6", "user", "text", "f", NULL, "f",
      NULL, NULL, NULL),
    R("public", "orders", "r", "Orders placed by customers", "1", "id", "integer", "t", NULL, "t",
      NULL, NULL, NULL),
    R("public", "orders", "r", "Orders placed by customers", "2", "customer_id", "integer", "t",
      NULL, "f", "public", "customers", "id"),
    R("public", "orders", "r", "Orders placed by customers", "3", "total", "numeric(10,2)", "f",
      "order amount in EUR", "f", NULL, NULL, NULL),
    R("public", "orders", "r", "Orders placed by customers", "4", "note_id", "integer", "f", NULL,
      "f", "public", "internal_notes", "id"),
    R("public", "orders", "r", "Orders placed by customers", "5", "ranking", "integer", "f", NULL,
      "f", "public", "customers", "secret_score"),
    R("public", "products", "r", NULL, "1", "id", "integer", "t", NULL, "t", NULL, NULL, NULL),
    R("public", "products", "r", NULL, "2", "title", "text", "f", "product title", "f", NULL, NULL,
      NULL),
    R("public", "internal_notes", "r", "acquisition plans for Zebracorp", "1", "id", "integer", "t",
      NULL, "t", NULL, NULL, NULL),
    R("public", "internal_notes", "r", "acquisition plans for Zebracorp", "2", "memo", "text", "f",
      "board memo", "f", NULL, NULL, NULL),
    R("public", "unlisted", "r", "not in the config", "1", "whisper", "integer", "f", NULL, "f",
      NULL, NULL, NULL),
    R("sales", "regions", "v", NULL, "1", "region", "text", "f", NULL, "f", NULL, NULL, NULL),
    R("pg_catalog", "pg_class", "r", NULL, "1", "oid", "oid", "t", NULL, "f", NULL, NULL, NULL),
    R("information_schema", "columns", "v", NULL, "1", "table_name", "name", "f", NULL, "f", NULL,
      NULL, NULL),
    R("public", "empty_table", "r", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
};

static PgwColumnMask customer_masks[] = {
    {"ssn", PGW_MASK_NULL},
    {"secret_score", PGW_MASK_HIDE},
};
static PgwTablePolicy tables[] = {
    {"public", "customers", "tenant_id = $tenant", false, 2, customer_masks, 1},
    {"public", "orders", "tenant_id = $tenant", false, 0, NULL, 2},
    {"public", "products", NULL, false, 0, NULL, 3},
    {"public", "internal_notes", NULL, true, 0, NULL, 4},
    {"sales", "regions", NULL, false, 0, NULL, 5},
    {"public", "empty_table", NULL, false, 0, NULL, 6},
};
static PgwTenant tenant = {
    .name = "acme", .backend = "host=x", .id = "acme", .pool_size = 1, .line = 1};
static PgwConfig cfg;
static PgwAskSchema *schema;

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    cfg.default_access = PGW_ACCESS_DENY;
    cfg.ntables = PGW_ARRAY_LEN(tables);
    cfg.tables = tables;
    schema = ask_schema_build(&cfg, &tenant, PGW_ARRAY_LEN(schema_rows), ASK_SCHEMA_NCOLS,
                              &schema_rows[0][0]);
    ck_assert_ptr_nonnull(schema);
}

static void teardown(void)
{
    ask_schema_free(schema);
    schema = NULL;
}

/* ---- recognition ---- */

static const struct {
    const char *sql;
    PgwAskKind kind;
    const char *question; /* NULL: none; for errors, a substring of err */
    int rc;
} recognize_cases[] = {
    {"ASK how many customers", PGW_ASK_RUN, "how many customers", 0},
    {"ask how many customers?", PGW_ASK_RUN, "how many customers?", 0},
    {"Ask top products;", PGW_ASK_RUN, "top products", 0},
    {"  \n\t ASK   spaced out  ;  ", PGW_ASK_RUN, "spaced out", 0},
    {"-- a comment\nASK after a comment", PGW_ASK_RUN, "after a comment", 0},
    {"/* block /* nested */ */ ask after blocks", PGW_ASK_RUN, "after blocks", 0},
    {"ASK 'quoted question'", PGW_ASK_RUN, "quoted question", 0},
    {"ASK 'it''s quoted';", PGW_ASK_RUN, "it's quoted", 0},
    {"ASK $$dollar quoted$$;", PGW_ASK_RUN, "dollar quoted", 0},
    {"ASK $q$tagged 'dollar'$q$", PGW_ASK_RUN, "tagged 'dollar'", 0},
    {"ASK which customer's orders are late", PGW_ASK_RUN, "which customer's orders are late", 0},
    {"ASK 'a' and 'b'", PGW_ASK_RUN, "'a' and 'b'", 0},
    {"ASK\nmulti\nline", PGW_ASK_RUN, "multi\nline", 0},
    {"EXPLAIN ASK revenue by month", PGW_ASK_EXPLAIN, "revenue by month", 0},
    {"explain  /* c */ ask 'revenue';", PGW_ASK_EXPLAIN, "revenue", 0},
    {"SELECT * FROM ask('top customers') t", PGW_ASK_RELATION, "top customers", 0},
    {"select * from ASK ( 'it''s here' ) AS t(a, b)", PGW_ASK_RELATION, "it's here", 0},
    {"SELECT t.* FROM ask('x') t JOIN products p ON p.id = t.id", PGW_ASK_RELATION, "x", 0},
    {"SELECT * FROM (SELECT * FROM ask('nested') a) b", PGW_ASK_RELATION, "nested", 0},
    {"SELECT * FROM ask($$dollar$$) t", PGW_ASK_RELATION, "dollar", 0},
    {"SELECT count(*) FROM products WHERE id IN (SELECT id FROM ask('sub') s)", PGW_ASK_RELATION,
     "sub", 0},
    /* not ASKs */
    {"SELECT 1", PGW_ASK_NONE, NULL, 0},
    {"SELECT 'ASK me'", PGW_ASK_NONE, NULL, 0},
    {"SELECT 'ask(1)'", PGW_ASK_NONE, NULL, 0},
    {"SELECT ask FROM t", PGW_ASK_NONE, NULL, 0},
    {"SELECT ask FROM t WHERE ask > 1", PGW_ASK_NONE, NULL, 0},
    {"SELECT task(1)", PGW_ASK_NONE, NULL, 0},
    {"SELECT ask('in a target list')", PGW_ASK_NONE, NULL, 0},
    {"SELECT * FROM myschema.ask('qualified') t", PGW_ASK_NONE, NULL, 0},
    {"ASKING for trouble", PGW_ASK_NONE, NULL, 0},
    {"EXPLAIN SELECT 1", PGW_ASK_NONE, NULL, 0},
    {"EXPLAIN ASKING", PGW_ASK_NONE, NULL, 0},
    {"", PGW_ASK_NONE, NULL, 0},
    {"-- ASK in a comment\nSELECT 1", PGW_ASK_NONE, NULL, 0},
    {"SELECT * FROM ask(", PGW_ASK_NONE, NULL, 0},
    /* ASKs that cannot be served */
    {"ASK", PGW_ASK_NONE, "ASK needs a question", -1},
    {"ask ;", PGW_ASK_NONE, "ASK needs a question", -1},
    {"ASK ''", PGW_ASK_NONE, "ASK needs a question", -1},
    {"EXPLAIN ASK", PGW_ASK_NONE, "ASK needs a question", -1},
    {"SELECT * FROM ask('') t", PGW_ASK_NONE, "ASK needs a question", -1},
    {"SELECT * FROM ask(42) t", PGW_ASK_NONE, "one string constant", -1},
    {"SELECT * FROM ask('a', 'b') t", PGW_ASK_NONE, "one string constant", -1},
    {"SELECT * FROM ask('a') x, ask('b') y", PGW_ASK_NONE, "only one", -1},
    {"SELECT * FROM ask('a') WITH ORDINALITY t", PGW_ASK_NONE, "ORDINALITY", -1},
    {"SELECT * FROM ask('a') AS t(x int)", PGW_ASK_NONE, "column definition", -1},
    {"SELECT * FROM ask('a') t; SELECT 1", PGW_ASK_NONE, "only statement", -1},
};

START_TEST(test_recognize)
{
    const char *sql = recognize_cases[_i].sql;
    PgwAskKind kind = (PgwAskKind)99;
    char *q = (char *)"unset";
    char err[256] = "";
    int rc = ask_recognize(sql, &kind, &q, err, sizeof(err));
    ck_assert_msg(rc == recognize_cases[_i].rc, "%s: rc %d (%s)", sql, rc, err);
    if (rc < 0) {
        ck_assert_msg(strstr(err, recognize_cases[_i].question) != NULL, "%s: err '%s'", sql, err);
        ck_assert_ptr_null(q);
        return;
    }
    ck_assert_msg(kind == recognize_cases[_i].kind, "%s: kind %d", sql, kind);
    if (recognize_cases[_i].question == NULL) {
        ck_assert_ptr_null(q);
    } else {
        ck_assert_ptr_nonnull(q);
        ck_assert_str_eq(q, recognize_cases[_i].question);
    }
    free(q);
}
END_TEST

static const struct {
    const char *sql;
    const char *generated;
    const char *expected;
} splice_cases[] = {
    {"SELECT * FROM ask('top customers') t", "SELECT name FROM customers",
     "SELECT * FROM (SELECT name FROM customers\n) t"},
    {"SELECT * FROM ask('x') AS t(a, b) ORDER BY 1", "SELECT 1, 2",
     "SELECT * FROM (SELECT 1, 2\n) AS t(a, b) ORDER BY 1"},
    {"SELECT * FROM ask('no alias')", "SELECT 1", "SELECT * FROM (SELECT 1\n) AS ask"},
    {"select * from ask ( /* c ) */ 'it''s (odd)' ) q join products p on p.id = q.id",
     "SELECT id FROM orders -- trailing comment",
     "select * from (SELECT id FROM orders -- trailing comment\n) q join products p on p.id = "
     "q.id"},
    {"SELECT * FROM (SELECT * FROM ask('nested') a) b", "VALUES (1)",
     "SELECT * FROM (SELECT * FROM (VALUES (1)\n) a) b"},
};

START_TEST(test_splice)
{
    char *out = NULL;
    char err[256] = "";
    int rc = ask_splice(splice_cases[_i].sql, splice_cases[_i].generated, &out, err, sizeof(err));
    ck_assert_msg(rc == 0, "%s: %s", splice_cases[_i].sql, err);
    ck_assert_str_eq(out, splice_cases[_i].expected);
    free(out);
}
END_TEST

START_TEST(test_splice_refuses_plain_sql)
{
    char *out = NULL;
    char err[256] = "";
    ck_assert_int_eq(ask_splice("SELECT 1", "SELECT 2", &out, err, sizeof(err)), -1);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(err, "no ask"));
}
END_TEST

/* ---- answers ---- */

static const struct {
    const char *answer;
    int rc;
    const char *expected; /* sql, reason, or error substring */
} extract_cases[] = {
    {"```sql\nSELECT 1;\n```", 0, "SELECT 1"},
    {"```\nSELECT 2\n```", 0, "SELECT 2"},
    {"```SQL\nselect 3 ;  \n```", 0, "select 3"},
    {"```postgresql\nSELECT 4\n```", 0, "SELECT 4"},
    {"Here is the query:\n```sql\nSELECT name\nFROM customers;\n```\nIt lists names.", 0,
     "SELECT name\nFROM customers"},
    {"```sql\nSELECT 'first'\n```\nor\n```sql\nSELECT 'second'\n```", 0, "SELECT 'first'"},
    {"```python\nprint(1)\n```\n```sql\nSELECT 5\n```", 0, "SELECT 5"},
    {"  SELECT * FROM orders;\n", 0, "SELECT * FROM orders"},
    {"with x as (select 1) select * from x", 0, "with x as (select 1) select * from x"},
    {"VALUES (1)", 0, "VALUES (1)"},
    {"TABLE products;", 0, "TABLE products"},
    {"```sql\nSELECT 6", 0, "SELECT 6"},
    {"CANNOT_ANSWER: there is no salary column", 1, "there is no salary column"},
    {"Sorry.\nCANNOT_ANSWER: no such data\n", 1, "no such data"},
    {"CANNOT_ANSWER", 1, "the schema cannot answer the question"},
    {"I cannot answer that with this schema.", 1, "I cannot answer that with this schema."},
    {"The answer is 42.", -1, "no SQL"},
    {"Selecting is hard", -1, "no SQL"},
    {"```sql\n\n```", -1, "no SQL"},
    {"", -1, "no SQL"},
};

START_TEST(test_extract_sql)
{
    char *sql = NULL, *reason = NULL;
    char err[256] = "";
    int rc = ask_extract_sql(extract_cases[_i].answer, &sql, &reason, err, sizeof(err));
    ck_assert_msg(rc == extract_cases[_i].rc, "%s: rc %d", extract_cases[_i].answer, rc);
    if (rc == 0) {
        ck_assert_str_eq(sql, extract_cases[_i].expected);
        ck_assert_ptr_null(reason);
    } else if (rc == 1) {
        ck_assert_str_eq(reason, extract_cases[_i].expected);
        ck_assert_ptr_null(sql);
    } else {
        ck_assert_ptr_nonnull(strstr(err, extract_cases[_i].expected));
        ck_assert_ptr_null(sql);
        ck_assert_ptr_null(reason);
    }
    free(sql);
    free(reason);
}
END_TEST

/* ---- schema masking and prompt ---- */

/* Whatever the tenant may not see, wherever it could leak into a prompt. */
static const char *const never_in_prompt[] = {
    "secret_score",
    "classified",
    "internal_notes",
    "Zebracorp",
    "acquisition",
    "memo",
    "unlisted",
    "whisper",
    "pg_class",
    "information_schema",
    "table_name",
    "note_id REFERENCES",
    "ranking integer REFERENCES",
};

static char *whole_prompt(const PgwAskPrompt *p)
{
    size_t len = strlen(p->system) + 1;
    for (size_t i = 0; i < p->nmsgs; i++)
        len += strlen(p->roles[i]) + strlen(p->contents[i]) + 2;
    char *all = malloc(len);
    strcpy(all, p->system);
    for (size_t i = 0; i < p->nmsgs; i++) {
        strcat(all, p->roles[i]);
        strcat(all, "\n");
        strcat(all, p->contents[i]);
        strcat(all, "\n");
    }
    return all;
}

START_TEST(test_prompt_masks_schema)
{
    PgwAskTurn history[] = {{"how many customers", "SELECT count(*) FROM customers"}};
    PgwAskPrompt p;
    ck_assert_int_eq(ask_build_prompt(schema, NULL, 0, NULL, history, 1, "same, but only for 2023",
                                      "SELECT secret_score FROM x",
                                      "column \"<hidden>\" does not exist", &p),
                     0);
    char *all = whole_prompt(&p);
    /* The failed SQL is the model's own text, so only check the schema part. */
    for (size_t i = 0; i < PGW_ARRAY_LEN(never_in_prompt); i++)
        ck_assert_msg(strstr(p.system, never_in_prompt[i]) == NULL, "prompt shows %s:\n%s",
                      never_in_prompt[i], p.system);
    static const char *const shown[] = {
        "PostgreSQL",
        "CANNOT_ANSWER",
        "-- People who buy from us\nCREATE TABLE customers (",
        "    id integer NOT NULL PRIMARY KEY,",
        "    name text, -- full name",
        "    ssn character varying(11), -- social security number (values masked)",
        "    \"user\" text\n);",
        "    customer_id integer NOT NULL REFERENCES customers(id),",
        "    note_id integer,",
        "    ranking integer\n",
        "total numeric(10,2), -- order amount in EUR",
        "CREATE TABLE products (",
        "-- (a view)\nCREATE TABLE sales.regions (",
        "CREATE TABLE empty_table (\n);",
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(shown); i++)
        ck_assert_msg(strstr(p.system, shown[i]) != NULL, "prompt lacks %s:\n%s", shown[i],
                      p.system);
    ck_assert_int_eq(p.nmsgs, 5);
    ck_assert_str_eq(p.roles[0], "user");
    ck_assert_str_eq(p.contents[0], "Question: how many customers");
    ck_assert_str_eq(p.roles[1], "assistant");
    ck_assert_str_eq(p.contents[1], "```sql\nSELECT count(*) FROM customers\n```");
    ck_assert_str_eq(p.contents[2], "Question: same, but only for 2023");
    ck_assert_str_eq(p.roles[3], "assistant");
    ck_assert_ptr_nonnull(strstr(p.contents[3], "SELECT secret_score FROM x"));
    ck_assert_str_eq(p.roles[4], "user");
    ck_assert_ptr_nonnull(strstr(p.contents[4], "That SQL failed: column \"<hidden>\""));
    free(all);
    ask_prompt_free(&p);
}
END_TEST

START_TEST(test_prompt_subset_and_examples)
{
    long orders = ask_schema_find_table(schema, "public", "orders");
    ck_assert_int_ge(orders, 0);
    size_t pick[] = {(size_t)orders};
    const char *examples = "Q: total revenue\nSQL: SELECT sum(total)\n  FROM orders\n\n"
                           "this block is malformed\n\n"
                           "Q: product count\nSQL: SELECT count(*) FROM products\n";
    PgwAskPrompt p;
    /* A small schema is never under-sent: the caller's one table or not,
     * the whole schema fits the default budget. */
    ck_assert_int_eq(
        ask_build_prompt(schema, pick, 1, NULL, NULL, 0, "best orders", NULL, NULL, &p), 0);
    ck_assert_ptr_nonnull(strstr(p.system, "CREATE TABLE orders"));
    ck_assert_ptr_nonnull(strstr(p.system, "CREATE TABLE customers"));
    ask_prompt_free(&p);
    /* A budget too small for the whole schema: the question's tables. */
    PgwAskBudget tight = {.schema_bytes = 1, .min_tables = 1, .max_tables = 1};
    PgwAskPromptInput in = {
        .schema = schema, .budget = &tight, .examples = examples, .question = "best orders"};
    PgwAskChoice choice;
    ck_assert_int_eq(ask_prompt_build(&in, &p, &choice), 0);
    ck_assert(!choice.whole);
    ck_assert_uint_eq(choice.ntables, 1);
    ck_assert_uint_eq(choice.tables[0], (size_t)orders);
    ask_choice_free(&choice);
    ck_assert_ptr_nonnull(strstr(p.system, "CREATE TABLE orders"));
    ck_assert_ptr_null(strstr(p.system, "CREATE TABLE customers"));
    ck_assert_ptr_nonnull(
        strstr(p.system, "Question: total revenue\n```sql\nSELECT sum(total)\n  FROM orders\n```"));
    ck_assert_ptr_nonnull(
        strstr(p.system, "Question: product count\n```sql\nSELECT count(*) FROM products\n```"));
    ck_assert_ptr_null(strstr(p.system, "malformed"));
    ck_assert_int_eq(p.nmsgs, 1);
    ck_assert_str_eq(p.contents[0], "Question: best orders");
    ask_prompt_free(&p);
}
END_TEST

START_TEST(test_prompt_keeps_latest_history)
{
    PgwAskTurn history[20];
    char qs[20][16];
    for (int i = 0; i < 20; i++) {
        snprintf(qs[i], sizeof(qs[i]), "question %d", i);
        history[i].question = qs[i];
        history[i].sql = "SELECT 1";
    }
    PgwAskPrompt p;
    ck_assert_int_eq(
        ask_build_prompt(schema, NULL, 0, NULL, history, 20, "now", "SELECT x", "boom", &p), 0);
    ck_assert_int_le(p.nmsgs, ASK_PROMPT_MAX_MSGS);
    ck_assert_str_eq(p.contents[p.nmsgs - 5], "Question: question 19");
    ck_assert_str_eq(p.contents[p.nmsgs - 3], "Question: now");
    ck_assert_str_eq(p.contents[0], "Question: question 14");
    ask_prompt_free(&p);
    ck_assert_int_eq(ask_build_prompt(schema, NULL, 0, NULL, NULL, 0, "  ", NULL, NULL, &p), -1);
}
END_TEST

START_TEST(test_fingerprint)
{
    char *a = ask_schema_fingerprint(schema);
    ck_assert_int_eq(strlen(a), 64);
    PgwAskSchema *same = ask_schema_build(&cfg, &tenant, PGW_ARRAY_LEN(schema_rows),
                                          ASK_SCHEMA_NCOLS, &schema_rows[0][0]);
    char *b = ask_schema_fingerprint(same);
    ck_assert_str_eq(a, b);
    /* Fewer visible rows: another fingerprint. */
    PgwAskSchema *less = ask_schema_build(&cfg, &tenant, 5, ASK_SCHEMA_NCOLS, &schema_rows[0][0]);
    char *c = ask_schema_fingerprint(less);
    ck_assert_str_ne(a, c);
    free(a);
    free(b);
    free(c);
    ask_schema_free(same);
    ask_schema_free(less);
    ck_assert_ptr_null(ask_schema_build(&cfg, &tenant, 0, 7, NULL));
}
END_TEST

START_TEST(test_default_allow_still_hides)
{
    PgwConfig allow = cfg;
    allow.default_access = PGW_ACCESS_ALLOW;
    PgwAskSchema *s = ask_schema_build(&allow, &tenant, PGW_ARRAY_LEN(schema_rows),
                                       ASK_SCHEMA_NCOLS, &schema_rows[0][0]);
    char *ddl = ask_schema_ddl(s, NULL, 0);
    ck_assert_ptr_nonnull(strstr(ddl, "CREATE TABLE unlisted"));
    ck_assert_ptr_null(strstr(ddl, "internal_notes"));
    ck_assert_ptr_null(strstr(ddl, "pg_class"));
    ck_assert_ptr_null(strstr(ddl, "secret_score"));
    free(ddl);
    ask_schema_free(s);
}
END_TEST

/* ---- error cleaning ---- */

static const struct {
    const char *sqlstate;
    const char *message;
    const char *failed_sql;
    const char *expected;
} clean_cases[] = {
    /* Names the tenant cannot see: hidden or nonexistent, one placeholder. */
    {"42703", "column \"ssn_number\" does not exist", NULL, "column \"<unknown>\" does not exist"},
    {"42703", "column \"secret_score\" does not exist", NULL,
     "column \"<unknown>\" does not exist"},
    {"42703", "column c.secret_score does not exist", "SELECT c.secret_score FROM customers c",
     "column c.<unknown> does not exist"},
    {"42703", "column c.no_such does not exist", "SELECT c.no_such FROM customers c",
     "column c.<unknown> does not exist"},
    {"42P01", "relation \"internal_notes\" does not exist", NULL,
     "relation \"<unknown>\" does not exist"},
    {"42P01", "relation \"public.unlisted\" does not exist", NULL,
     "relation \"public.<unknown>\" does not exist"},
    {"42883", "function secret_score(integer) does not exist", "SELECT secret_score(1)",
     "function <unknown>(integer) does not exist"},
    /* Visible names, built-ins and the SQL's own aliases stay. */
    {"42703", "column \"name\" does not exist", NULL, "column \"name\" does not exist"},
    {"42883", "function sum(text) does not exist", "SELECT sum(name) FROM customers",
     "function sum(text) does not exist"},
    {"42883", "operator does not exist: text = integer", "SELECT 1 FROM customers WHERE name = 1",
     "operator does not exist: text = integer"},
    {"42P01", "missing FROM-clause entry for table \"x\"", "SELECT x.id FROM customers AS x2",
     "missing FROM-clause entry for table \"<unknown>\""},
    {"42703", "column t.secret_score does not exist", "SELECT t.secret_score FROM orders AS t",
     "column t.<unknown> does not exist"},
    {NULL, "Perhaps you meant to reference the column \"customers.secret_score\".", NULL,
     "Perhaps you meant to reference the column \"customers.<unknown>\"."},
    /* A hidden name the message volunteers in free text. */
    {NULL, "could not read internal_notes", NULL, "could not read <unknown>"},
    /* A word the failed SQL wrote, hidden or not: the same. */
    {NULL, "cannot use secret_score here", "SELECT secret_score", "cannot use <unknown> here"},
    {NULL, "cannot use nosuchthing here", "SELECT nosuchthing", "cannot use <unknown> here"},
    /* Values never pass. */
    {"22P02", "invalid input syntax for type integer: \"abc\"", NULL,
     "invalid input syntax for type integer: \"***\""},
    {"22P02", "column \"name\" bad value \"x\"", NULL, "column \"***\" bad value \"***\""},
    {NULL, "invalid input syntax for type integer: \"abc\"", NULL,
     "invalid input syntax for type integer: \"***\""},
    {"42601", "syntax error at or near \"FROMM\"", NULL, "syntax error at or near \"***\""},
    {"23505", "Key (id)=(42) already exists.", NULL, "Key (id)=(***) already exists."},
    {"XX000", "value 'Zebracorp' is 'secret'", NULL, "value '***' is '***'"},
    {"XX000", "value 'O''Brien' is wrong", NULL, "value '***' is wrong"},
    {NULL, "unterminated \"quote", NULL, "unterminated \"***\""},
    /* An apostrophe inside a word is no quote (issue 14.7). */
    {NULL, "the model's answer contains no SQL query", NULL,
     "the model's answer contains no SQL query"},
    {NULL, "can't read the model's answer: 'x'", NULL, "can't read the model's answer: '***'"},
};

START_TEST(test_clean_error)
{
    char *out = ask_clean_error_sql(schema, &cfg, clean_cases[_i].sqlstate, clean_cases[_i].message,
                                    clean_cases[_i].failed_sql);
    ck_assert_str_eq(out, clean_cases[_i].expected);
    free(out);
}
END_TEST

/* The oracle of issue 7.6: every message shape, with a hidden name and with
 * a name that exists nowhere, written by the SQL or not, cleans the same. */
static const char *const oracle_shapes[] = {
    "column \"%s\" does not exist",
    "column c.%s does not exist",
    "column %s.id does not exist",
    "relation \"%s\" does not exist",
    "relation \"public.%s\" does not exist",
    "missing FROM-clause entry for table \"%s\"",
    "function %s(integer) does not exist",
    "type \"%s\" does not exist",
    "permission denied for table %s",
    "pgwarden: relation %s is not readable",
    "column \"%s\" of relation \"%s\" does not exist",
    "Perhaps you meant to reference the column \"customers.%s\".",
};
static const char *const hidden_names[] = {"secret_score", "internal_notes", "whisper", "unlisted"};

START_TEST(test_clean_error_hidden_looks_unknown)
{
    for (size_t h = 0; h < PGW_ARRAY_LEN(hidden_names); h++) {
        for (size_t k = 0; k < PGW_ARRAY_LEN(oracle_shapes); k++) {
            for (int with_sql = 0; with_sql < 2; with_sql++) {
                char a[256], b[256], sa[256], sb[256];
                snprintf(a, sizeof(a), oracle_shapes[k], hidden_names[h], hidden_names[h]);
                snprintf(b, sizeof(b), oracle_shapes[k], "qqzzy_nothing", "qqzzy_nothing");
                snprintf(sa, sizeof(sa), "SELECT c.%s FROM %s c", hidden_names[h], hidden_names[h]);
                snprintf(sb, sizeof(sb), "SELECT c.%s FROM %s c", "qqzzy_nothing", "qqzzy_nothing");
                char *ca = ask_clean_error_sql(schema, &cfg, "42703", a, with_sql ? sa : NULL);
                char *cb = ask_clean_error_sql(schema, &cfg, "42703", b, with_sql ? sb : NULL);
                ck_assert_msg(strcmp(ca, cb) == 0, "%s -> %s\n%s -> %s", a, ca, b, cb);
                ck_assert_ptr_null(strstr(ca, hidden_names[h]));
                free(ca);
                free(cb);
            }
        }
    }
}
END_TEST

START_TEST(test_clean_error_without_schema)
{
    char *out = ask_clean_error(NULL, &cfg, "column \"secret_score\" of relation internal_notes");
    ck_assert_str_eq(out, "column \"<unknown>\" of relation <unknown>");
    free(out);
}
END_TEST

/* ---- cache key ---- */

START_TEST(test_cache_key)
{
    PgwAskTurn h1[] = {{"how many customers", "SELECT count(*) FROM customers"}};
    PgwAskTurn h2[] = {{"how many orders", "SELECT count(*) FROM orders"}};
    char *base = ask_cache_key("acme", "fp1", "How many  customers?", NULL, 0, "gpt");
    ck_assert_int_eq(strlen(base), 64);
    char *same = ask_cache_key("acme", "fp1", "  how many customers ", NULL, 0, "gpt");
    ck_assert_str_eq(base, same);
    const char *differ[][2] = {{"fp2", "gpt"}, {"fp1", "claude"}};
    for (size_t i = 0; i < 2; i++) {
        char *k = ask_cache_key("acme", differ[i][0], "how many customers", NULL, 0, differ[i][1]);
        ck_assert_str_ne(base, k);
        free(k);
    }
    char *other_q = ask_cache_key("acme", "fp1", "how many orders", NULL, 0, "gpt");
    ck_assert_str_ne(base, other_q);
    /* another tenant with the same schema never shares a translation */
    char *other_t = ask_cache_key("globex", "fp1", "How many  customers?", NULL, 0, "gpt");
    ck_assert_str_ne(base, other_t);
    free(other_t);
    char *with_h1 = ask_cache_key("acme", "fp1", "how many customers", h1, 1, "gpt");
    char *with_h2 = ask_cache_key("acme", "fp1", "how many customers", h2, 1, "gpt");
    ck_assert_str_ne(base, with_h1);
    ck_assert_str_ne(with_h1, with_h2);
    char *n = ask_normalize_question("  Top   5\tProducts?!  ");
    ck_assert_str_eq(n, "top 5 products");
    free(n);
    free(base);
    free(same);
    free(other_q);
    free(with_h1);
    free(with_h2);
}
END_TEST

/* ---- limits ---- */

START_TEST(test_limiter_rate)
{
    PgwAskLimiter *l = ask_limiter_new();
    char msg[256];
    int64_t t0 = 1700000000000LL;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ask_limiter_take(l, "acme", 3, 60000, 0, t0 + i * 1000, msg, sizeof(msg)),
                         0);
    ck_assert_int_eq(ask_limiter_take(l, "acme", 3, 60000, 0, t0 + 48000, msg, sizeof(msg)), -1);
    ck_assert_str_eq(msg,
                     "ASK rate limit reached for tenant acme: 3 per minute; try again in 12 s");
    /* Another tenant has its own window. */
    ck_assert_int_eq(ask_limiter_take(l, "globex", 3, 60000, 0, t0 + 48000, msg, sizeof(msg)), 0);
    /* The first call leaves the window after a minute. */
    ck_assert_int_eq(ask_limiter_take(l, "acme", 3, 60000, 0, t0 + 60000, msg, sizeof(msg)), 0);
    ck_assert_int_eq(ask_limiter_take(l, "acme", 3, 60000, 0, t0 + 60001, msg, sizeof(msg)), -1);
    /* No limit configured: always allowed. */
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(ask_limiter_take(l, "initech", 0, 60000, 0, t0, msg, sizeof(msg)), 0);
    ck_assert_int_eq(ask_limiter_take(l, "hooli", 1, 10000, 0, t0, msg, sizeof(msg)), 0);
    ck_assert_int_eq(ask_limiter_take(l, "hooli", 1, 10000, 0, t0 + 1, msg, sizeof(msg)), -1);
    ck_assert_ptr_nonnull(strstr(msg, "1 per 10 s; try again in 10 s"));
    ask_limiter_free(l);
}
END_TEST

START_TEST(test_limiter_budget)
{
    PgwAskLimiter *l = ask_limiter_new();
    char msg[256];
    int64_t day = 86400000LL;
    int64_t t0 = 19700 * day + 22 * 3600000LL; /* 22:00 UTC */
    ck_assert_int_eq(ask_limiter_take(l, "acme", 0, 0, 1000, t0, msg, sizeof(msg)), 0);
    ask_limiter_add_tokens(l, "acme", 600, t0);
    ck_assert_int_eq(ask_limiter_take(l, "acme", 0, 0, 1000, t0 + 1, msg, sizeof(msg)), 0);
    ask_limiter_add_tokens(l, "acme", 400, t0 + 2);
    ck_assert_int_eq(ask_limiter_take(l, "acme", 0, 0, 1000, t0 + 3, msg, sizeof(msg)), -1);
    ck_assert_ptr_nonnull(
        strstr(msg, "ASK token budget reached for tenant acme: 1000 tokens per day"));
    ck_assert_ptr_nonnull(strstr(msg, "2 h 0 min"));
    /* Other tenants are not affected; the next UTC day starts afresh. */
    ck_assert_int_eq(ask_limiter_take(l, "globex", 0, 0, 1000, t0 + 3, msg, sizeof(msg)), 0);
    ck_assert_int_eq(ask_limiter_take(l, "acme", 0, 0, 1000, t0 + 2 * 3600000LL, msg, sizeof(msg)),
                     0);
    ask_limiter_free(l);
}
END_TEST

/* ---- table choice ---- */

static bool picked(const size_t *out, size_t n, const char *schema_name, const char *table)
{
    long t = ask_schema_find_table(schema, schema_name, table);
    for (size_t i = 0; t >= 0 && i < n; i++)
        if (out[i] == (size_t)t)
            return true;
    return false;
}

START_TEST(test_select_tables)
{
    size_t out[8];
    /* Table name, plural and camel/snake forms all meet. */
    size_t n =
        ask_select_tables(schema, "Which products have the longest titles?", NULL, 0, 1, out);
    ck_assert_uint_eq(n, 1);
    ck_assert(picked(out, n, "public", "products"));
    /* A foreign-key neighbour comes along. */
    n = ask_select_tables(schema, "total order amount per month", NULL, 0, 2, out);
    ck_assert_uint_eq(n, 2);
    ck_assert(picked(out, n, "public", "orders"));
    ck_assert(picked(out, n, "public", "customers"));
    /* Comments count: "people" only appears in the customers comment. */
    n = ask_select_tables(schema, "list the people", NULL, 0, 1, out);
    ck_assert(picked(out, n, "public", "customers"));
    /* A follow-up keeps the earlier question's tables. */
    const char *hist[] = {"which region sells most"};
    n = ask_select_tables(schema, "same, but only for 2023", hist, 1, 1, out);
    ck_assert_uint_eq(n, 1);
    ck_assert(picked(out, n, "sales", "regions"));
    /* Hidden things are never chosen, even when named. */
    n = ask_select_tables(schema, "internal notes memo acquisition Zebracorp", NULL, 0, 8, out);
    ck_assert(!picked(out, n, "public", "internal_notes"));
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_lt(out[i], ask_schema_ntables(schema));
    /* Deterministic, and max is honoured. */
    size_t again[8];
    size_t n2 =
        ask_select_tables(schema, "internal notes memo acquisition Zebracorp", NULL, 0, 8, again);
    ck_assert_uint_eq(n, n2);
    ck_assert_mem_eq(out, again, n * sizeof(size_t));
    ck_assert_uint_eq(ask_select_tables(schema, "customers orders products", NULL, 0, 0, out), 0);
}
END_TEST

START_TEST(test_names)
{
    ck_assert(ask_schema_name_visible(schema, "SSN", 3));
    ck_assert(!ask_schema_name_hidden(schema, "ssn", 3));
    ck_assert(ask_schema_name_hidden(schema, "secret_score", 12));
    ck_assert(ask_schema_name_hidden(schema, "internal_notes", 14));
    ck_assert(ask_schema_name_hidden(schema, "whisper", 7));
    /* "id" is a column of hidden tables too, but visible elsewhere. */
    ck_assert(!ask_schema_name_hidden(schema, "id", 2));
    ck_assert_int_eq(ask_schema_find_table(schema, "public", "internal_notes"), -1);
    ck_assert_int_eq(ask_schema_find_table(schema, "pg_catalog", "pg_class"), -1);
    ck_assert_int_eq(ask_schema_ntables(schema), 5);
    ck_assert_ptr_nonnull(strstr(ask_schema_introspection_sql(), "col_description"));
}
END_TEST

/* ---- the ranking on a schema of its own: one row per class of miss ---- */

/* A game's characters (issue 13's classes): plural and singular, lookup
 * tables named by their values, a bridge two links away, abbreviated and
 * undeclared joins, and unrelated tables to lose places to. */
static const char *const game_rows[][ASK_SCHEMA_NCOLS] = {
    R("public", "superhero", "r", NULL, "1", "id", "integer", "t", NULL, "t", NULL, NULL, NULL),
    R("public", "superhero", "r", NULL, "2", "superhero_name", "text", "f", NULL, "f", NULL, NULL,
      NULL),
    R("public", "superhero", "r", NULL, "3", "gender_id", "integer", "f", NULL, "f", "public",
      "gender", "id"),
    R("public", "gender", "r", NULL, "1", "id", "integer", "t", NULL, "t", NULL, NULL, NULL),
    R("public", "gender", "r", NULL, "2", "gender", "text", "f", NULL, "f", NULL, NULL, NULL),
    R("public", "superpower", "r", NULL, "1", "id", "integer", "t", NULL, "t", NULL, NULL, NULL),
    R("public", "superpower", "r", NULL, "2", "power_name", "text", "f", NULL, "f", NULL, NULL,
      NULL),
    /* No declared keys: joined by its column names. */
    R("public", "hero_power", "r", NULL, "1", "hero_id", "integer", "f", NULL, "f", NULL, NULL,
      NULL),
    R("public", "hero_power", "r", NULL, "2", "power_id", "integer", "f", NULL, "f", NULL, NULL,
      NULL),
    R("public", "district", "r", NULL, "1", "district_id", "integer", "t", NULL, "t", NULL, NULL,
      NULL),
    R("public", "district", "r", NULL, "2", "a3", "text", "f", "region", "f", NULL, NULL, NULL),
    R("public", "account", "r", NULL, "1", "account_id", "integer", "t", NULL, "t", NULL, NULL,
      NULL),
    R("public", "account", "r", NULL, "2", "district_id", "integer", "f", NULL, "f", NULL, NULL,
      NULL),
    R("public", "account", "r", NULL, "3", "frequency", "text", "f", NULL, "f", NULL, NULL, NULL),
    R("public", "drivers", "r", NULL, "1", "driverid", "integer", "t", NULL, "t", NULL, NULL, NULL),
    R("public", "drivers", "r", NULL, "2", "forename", "text", "f", NULL, "f", NULL, NULL, NULL),
    R("public", "drivers", "r", NULL, "3", "surname", "text", "f", NULL, "f", NULL, NULL, NULL),
    R("public", "payslip", "r", NULL, "1", "slipno", "integer", "f", NULL, "f", NULL, NULL, NULL),
    R("public", "payslip", "r", NULL, "2", "cur", "text", "f", NULL, "f", NULL, NULL, NULL),
    R("public", "payslip", "r", NULL, "3", "currency", "text", "f", NULL, "f", NULL, NULL, NULL),
    R("public", "emp", "r", NULL, "1", "empno", "integer", "f", NULL, "f", NULL, NULL, NULL),
    R("public", "emp", "r", NULL, "2", "ename", "text", "f", NULL, "f", NULL, NULL, NULL),
    R("public", "calendar", "r", NULL, "1", "day", "date", "f", NULL, "f", NULL, NULL, NULL),
    R("public", "calendar", "r", NULL, "2", "month", "integer", "f", NULL, "f", NULL, NULL, NULL),
    R("public", "visits", "r", NULL, "1", "visit_id", "integer", "f", NULL, "f", NULL, NULL, NULL),
    R("public", "visits", "r", NULL, "2", "visited_on", "date", "f", NULL, "f", NULL, NULL, NULL),
    R("public", "visits", "r", NULL, "3", "note", "text", "f", NULL, "f", NULL, NULL, NULL),
};

static const char *const game_values[][ASK_VALUES_NCOLS] = {
    {"public", "gender", "gender", "Male"},
    {"public", "gender", "gender", "Female"},
    {"public", "district", "a3", "North Bohemia"},
    {"public", "district", "a3", "Prague"},
    {"public", "drivers", "forename", "Lewis"},
    {"public", "drivers", "surname", "Hamilton"},
    {"public", "account", "frequency", "monthly issuance"},
    /* Not in the snapshot, or not a column of it: dropped. */
    {"public", "internal_notes", "memo", "Zebracorp"},
    {"public", "drivers", "no_such_column", "Quux"},
};

static const struct {
    const char *question;
    size_t max;
    const char *must[3]; /* tables that must be among the first max */
} rank_cases[] = {
    /* Plural and word forms. */
    {"How many superheroes are there?", 1, {"superhero"}},
    {"list every superpower", 1, {"superpower"}},
    /* A value named instead of a table (the value index). */
    {"How many accounts are in North Bohemia?", 2, {"account", "district"}},
    {"Which races did Lewis Hamilton win?", 1, {"drivers"}},
    /* A concept's instance: female → gender. */
    {"how many female superheroes", 2, {"superhero", "gender"}},
    /* A bridge two links away: superhero → hero_power → superpower. */
    {"which superheroes have the superpower of flight",
     3,
     {"superhero", "superpower", "hero_power"}},
    /* An abbreviated name. */
    {"names of all employees", 1, {"emp"}},
    /* Time words are filters, not tables: visits beats calendar. */
    {"visits per month in the last 30 days", 1, {"visits"}},
};

static PgwAskSchema *game_schema(PgwAskValues **values)
{
    PgwConfig allow;
    memset(&allow, 0, sizeof(allow));
    allow.default_access = PGW_ACCESS_ALLOW;
    PgwAskSchema *s = ask_schema_build(&allow, NULL, PGW_ARRAY_LEN(game_rows), ASK_SCHEMA_NCOLS,
                                       &game_rows[0][0]);
    ck_assert_ptr_nonnull(s);
    if (values != NULL) {
        *values =
            ask_values_build(s, PGW_ARRAY_LEN(game_values), ASK_VALUES_NCOLS, &game_values[0][0]);
        ck_assert_ptr_nonnull(*values);
    }
    return s;
}

static bool in_first(const PgwAskSchema *s, const size_t *out, size_t n, const char *table)
{
    long t = ask_schema_find_table(s, "public", table);
    for (size_t i = 0; t >= 0 && i < n; i++)
        if (out[i] == (size_t)t)
            return true;
    return false;
}

START_TEST(test_rank_classes)
{
    PgwAskValues *v;
    PgwAskSchema *s = game_schema(&v);
    size_t out[16];
    size_t n = ask_rank_tables(s, v, rank_cases[_i].question, NULL, 0, rank_cases[_i].max, out);
    ck_assert_uint_eq(n, rank_cases[_i].max);
    for (size_t k = 0; k < 3 && rank_cases[_i].must[k] != NULL; k++) {
        if (in_first(s, out, n, rank_cases[_i].must[k]))
            continue;
        char got[512] = "";
        for (size_t i = 0; i < n; i++) {
            const char *sn, *tn;
            ask_schema_table_name(s, out[i], &sn, &tn);
            strcat(got, " ");
            strcat(got, tn);
        }
        ck_abort_msg("%s: %s not in the first %zu:%s", rank_cases[_i].question,
                     rank_cases[_i].must[k], rank_cases[_i].max, got);
    }
    ask_values_free(v);
    ask_schema_free(s);
}
END_TEST

START_TEST(test_rank_needs_the_value_index)
{
    /* Without values, "North Bohemia" names nothing: the index is what
     * finds district (so the case above can fail). */
    PgwAskSchema *s = game_schema(NULL);
    size_t out[2];
    size_t n = ask_rank_tables(s, NULL, "How many accounts are in North Bohemia?", NULL, 0, 1, out);
    ck_assert_uint_eq(n, 1);
    ck_assert(!in_first(s, out, n, "district"));
    ask_schema_free(s);
}
END_TEST

START_TEST(test_rank_order_is_complete_and_matches_first)
{
    PgwAskValues *v;
    PgwAskSchema *s = game_schema(&v);
    size_t nt = ask_schema_ntables(s);
    size_t order[32];
    size_t nmatched = 99;
    /* A question sharing no word: every table, none matched, never empty. */
    size_t n =
        ask_rank_order(s, v, "give me a summary of everything", NULL, 0, order, &nmatched, NULL);
    ck_assert_uint_eq(n, nt);
    ck_assert_uint_eq(nmatched, 0);
    bool seen[32] = {false};
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_lt(order[i], nt);
        ck_assert(!seen[order[i]]);
        seen[order[i]] = true;
    }
    /* Every real match before any neighbour: superhero, superpower and
     * gender match; hero_power (their bridge) and the rest do not. */
    PgwAskMatches m = {0};
    n = ask_rank_order(s, v, "female superheroes and their superpower", NULL, 0, order, &nmatched,
                       &m);
    ck_assert_uint_ge(nmatched, 3);
    /* The matches, with the one bridge among them (hero_power). */
    ck_assert(in_first(s, order, nmatched + 1, "superhero"));
    ck_assert(in_first(s, order, nmatched + 1, "superpower"));
    ck_assert(in_first(s, order, nmatched + 1, "gender"));
    ck_assert(in_first(s, order, nmatched + 1, "hero_power"));
    ck_assert_uint_ge(m.n, 1);
    ck_assert_str_eq(m.v[0].value, "Female");
    free(m.v);
    ask_values_free(v);
    ask_schema_free(s);
}
END_TEST

START_TEST(test_budget)
{
    PgwAskSchema *s = game_schema(NULL);
    size_t nt = ask_schema_ntables(s), whole = ask_schema_ddl_bytes(s);
    char *ddl = ask_schema_ddl(s, NULL, 0);
    ck_assert_uint_eq(strlen(ddl), whole);
    free(ddl);
    static const struct {
        size_t bytes, min, max;
        bool whole;
        size_t ntables; /* 0: not checked */
    } cases[] = {
        {ASK_DEFAULT_SCHEMA_BYTES, 4, 10, true, 0},
        {1, 4, 10, false, 4}, /* the minimum wins over the budget */
        {1, 1, 1, false, 1},
        {1000000, 1, 2, true, 0}, /* fits: max does not apply */
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(cases); i++) {
        PgwAskBudget b = {cases[i].bytes, cases[i].min, cases[i].max, 0};
        PgwAskChoice c;
        ck_assert_int_eq(ask_choose(s, NULL, "list every superpower", NULL, 0, &b, &c), 0);
        ck_assert(c.whole == cases[i].whole);
        ck_assert_uint_eq(c.ntables, cases[i].whole ? nt : cases[i].ntables);
        if (!c.whole)
            ck_assert_uint_eq(c.tables[0],
                              (size_t)ask_schema_find_table(s, "public", "superpower"));
        char *text = ask_choice_describe(s, &c);
        ck_assert_ptr_nonnull(strstr(text, c.whole ? "the whole schema" : "tables chosen"));
        free(text);
        ask_choice_free(&c);
    }
    /* Between: as many tables as fit, within min and max. */
    PgwAskBudget mid = {whole / 2, 1, 100, 0};
    PgwAskChoice c;
    ck_assert_int_eq(ask_choose(s, NULL, "list every superpower", NULL, 0, &mid, &c), 0);
    ck_assert(!c.whole);
    ck_assert_uint_gt(c.ntables, 1);
    ck_assert_uint_lt(c.ntables, nt);
    ask_choice_free(&c);
    ask_schema_free(s);
}
END_TEST

START_TEST(test_sample_values)
{
    PgwAskValues *v;
    PgwAskSchema *s = game_schema(&v);
    /* Dropped: a table the snapshot lacks, a column it lacks. */
    ck_assert_uint_eq(ask_values_count(v), 7);
    PgwAskBudget b = {ASK_DEFAULT_SCHEMA_BYTES, 4, 10, 3};
    PgwAskChoice c;
    ck_assert_int_eq(ask_choose(s, v, "accounts in Prague", NULL, 0, &b, &c), 0);
    char *ddl = ask_schema_prompt_ddl(s, v, &c, &b);
    /* The value the question names first, then the others. */
    ck_assert_ptr_nonnull(strstr(ddl, "a3 text -- region e.g. 'Prague', 'North Bohemia'"));
    ck_assert_ptr_nonnull(strstr(ddl, "gender text -- e.g. 'Male', 'Female'"));
    ck_assert_ptr_null(strstr(ddl, "Zebracorp"));
    ck_assert_ptr_null(strstr(ddl, "Quux"));
    free(ddl);
    /* No samples asked for, or no room for them: none shown. */
    PgwAskBudget none = {ASK_DEFAULT_SCHEMA_BYTES, 4, 10, 0};
    ddl = ask_schema_prompt_ddl(s, v, &c, &none);
    ck_assert_ptr_null(strstr(ddl, "e.g."));
    free(ddl);
    PgwAskBudget tight = {ask_schema_ddl_bytes(s) + 20, 4, 10, 3};
    ddl = ask_schema_prompt_ddl(s, v, &c, &tight);
    ck_assert_uint_le(strlen(ddl), tight.schema_bytes);
    free(ddl);
    ask_choice_free(&c);
    ask_values_free(v);
    ask_schema_free(s);
}
END_TEST

START_TEST(test_values_never_masked_and_bounded)
{
    /* customers.ssn is masked: its values are never indexed or shown. */
    static const char *const rows[][ASK_VALUES_NCOLS] = {
        {"public", "customers", "ssn", "555-01-7001"},
        {"public", "customers", "secret_score", "99"},
        {"public", "customers", "name", "Ada"},
        {"public", "customers", "name", "Ada"},
        {"public", "internal_notes", "memo", "acquisition"},
    };
    PgwAskValues *v = ask_values_build(schema, PGW_ARRAY_LEN(rows), ASK_VALUES_NCOLS, &rows[0][0]);
    ck_assert_uint_eq(ask_values_count(v), 1);
    ask_values_free(v);
    ck_assert_ptr_null(ask_values_build(schema, 0, 3, NULL));
    /* A column with more distinct values than a category has is dropped. */
    size_t n = ASK_VALUES_PER_COLUMN + 1;
    const char **many = calloc(n * ASK_VALUES_NCOLS, sizeof(char *));
    char(*text)[16] = calloc(n, 16);
    for (size_t i = 0; i < n; i++) {
        snprintf(text[i], 16, "name %zu", i);
        const char *row[] = {"public", "customers", "name", text[i]};
        memcpy(many + i * ASK_VALUES_NCOLS, row, sizeof(row));
    }
    v = ask_values_build(schema, n, ASK_VALUES_NCOLS, many);
    ck_assert_uint_eq(ask_values_count(v), 0);
    ask_values_free(v);
    free(many);
    free(text);
    /* The reading query: text columns only, never a masked one. */
    char *sql = ask_values_sql(schema, 100);
    ck_assert_ptr_nonnull(sql);
    ck_assert_ptr_nonnull(strstr(sql, "\"name\"::text AS v FROM \"public\".\"customers\""));
    ck_assert_ptr_null(strstr(sql, "ssn"));
    ck_assert_ptr_null(strstr(sql, "secret_score"));
    ck_assert_ptr_null(strstr(sql, "internal_notes"));
    ck_assert_ptr_null(strstr(sql, "\"id\""));
    free(sql);
    ck_assert_ptr_nonnull(strstr(ask_schema_generation_sql(), "pg_attribute"));
}
END_TEST

static Suite *ask_suite(void)
{
    Suite *s = suite_create("ask");
    TCase *tc = tcase_create("recognize");
    tcase_add_loop_test(tc, test_recognize, 0, PGW_ARRAY_LEN(recognize_cases));
    tcase_add_loop_test(tc, test_splice, 0, PGW_ARRAY_LEN(splice_cases));
    tcase_add_test(tc, test_splice_refuses_plain_sql);
    suite_add_tcase(s, tc);

    tc = tcase_create("answer");
    tcase_add_loop_test(tc, test_extract_sql, 0, PGW_ARRAY_LEN(extract_cases));
    tcase_add_test(tc, test_cache_key);
    tcase_add_test(tc, test_limiter_rate);
    tcase_add_test(tc, test_limiter_budget);
    suite_add_tcase(s, tc);

    tc = tcase_create("schema");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_prompt_masks_schema);
    tcase_add_test(tc, test_prompt_subset_and_examples);
    tcase_add_test(tc, test_prompt_keeps_latest_history);
    tcase_add_test(tc, test_fingerprint);
    tcase_add_test(tc, test_default_allow_still_hides);
    tcase_add_loop_test(tc, test_clean_error, 0, PGW_ARRAY_LEN(clean_cases));
    tcase_add_test(tc, test_clean_error_without_schema);
    tcase_add_test(tc, test_clean_error_hidden_looks_unknown);
    tcase_add_test(tc, test_select_tables);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_values_never_masked_and_bounded);
    suite_add_tcase(s, tc);

    tc = tcase_create("rank");
    tcase_add_loop_test(tc, test_rank_classes, 0, PGW_ARRAY_LEN(rank_cases));
    tcase_add_test(tc, test_rank_needs_the_value_index);
    tcase_add_test(tc, test_rank_order_is_complete_and_matches_first);
    tcase_add_test(tc, test_budget);
    tcase_add_test(tc, test_sample_values);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ask_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
