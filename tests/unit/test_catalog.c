/*
 * test_catalog.c — the virtual catalog and the object checks, table-driven:
 * SQL in, rewritten SQL (substrings that must and must not appear) or a
 * refusal SQLSTATE out, for a fixed policy and a backend schema snapshot
 * that includes the catalog relations' columns. Also the structure of the
 * tables behind them (every allowlisted function that takes an object has
 * an argument entry; every catalog rule expands to SQL that parses), the
 * parameter-type check, and the cost of a call with thousands of OID
 * arguments (printed, not asserted: speed is checked by benchmarks).
 *
 * Whether the generated SQL answers right is checked against a real
 * PostgreSQL by tests/integration/test_catalog*.py and test_compat.py; here
 * we check the decisions and the shape.
 */
#include <check.h>
#include <pg_query.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "policy.h"
#include "policy_catalog.h"

/* ---- fixture ---- */

static const char *const schema_rows[][SCHEMA_INTROSPECTION_NCOLS] = {
    {"public", "customers", "r", "1", "id", "integer", "N"},
    {"public", "customers", "r", "2", "tenant_id", "text", "S"},
    {"public", "customers", "r", "3", "ssn", "text", "S"},
    {"public", "customers", "r", "4", "secret", "text", "S"},
    {"public", "orders", "r", "1", "id", "integer", "N"},
    {"public", "orders", "r", "2", "tenant_id", "text", "S"},
    {"public", "products", "r", "1", "id", "integer", "N"},
    {"public", "internal_notes", "r", "1", "note", "text", "S"},
    {"hush", "keyring", "r", "1", "k", "text", "S"},
    {"pg_catalog", "pg_class", "r", "1", "oid", "oid", "N"},
    {"pg_catalog", "pg_class", "r", "2", "relname", "name", "S"},
    {"pg_catalog", "pg_class", "r", "3", "relnamespace", "oid", "N"},
    {"pg_catalog", "pg_class", "r", "4", "relpages", "integer", "N"},
    {"pg_catalog", "pg_class", "r", "5", "reltuples", "real", "N"},
    {"pg_catalog", "pg_class", "r", "6", "relallvisible", "integer", "N"},
    {"pg_catalog", "pg_class", "r", "7", "relacl", "aclitem[]", "A"},
    {"pg_catalog", "pg_namespace", "r", "1", "oid", "oid", "N"},
    {"pg_catalog", "pg_namespace", "r", "2", "nspname", "name", "S"},
    {"pg_catalog", "pg_type", "r", "1", "oid", "oid", "N"},
    {"pg_catalog", "pg_type", "r", "2", "typname", "name", "S"},
    {"pg_catalog", "pg_constraint", "r", "1", "oid", "oid", "N"},
    {"pg_catalog", "pg_constraint", "r", "2", "conname", "name", "S"},
    {"pg_catalog", "pg_database", "r", "1", "oid", "oid", "N"},
    {"pg_catalog", "pg_database", "r", "2", "datname", "name", "S"},
    {"pg_catalog", "pg_database", "r", "3", "datacl", "aclitem[]", "A"},
    {"pg_catalog", "pg_description", "r", "1", "objoid", "oid", "N"},
    {"pg_catalog", "pg_description", "r", "2", "description", "text", "S"},
    {"pg_catalog", "pg_roles", "v", "1", "rolname", "name", "S"},
    {"pg_catalog", "pg_roles", "v", "2", "oid", "oid", "N"},
    {"pg_catalog", "pg_settings", "v", "1", "name", "text", "S"},
    {"pg_catalog", "pg_settings", "v", "2", "setting", "text", "S"},
    {"pg_catalog", "pg_settings", "v", "3", "short_desc", "text", "S"},
    {"pg_catalog", "pg_stat_user_tables", "v", "1", "relid", "oid", "N"},
    {"pg_catalog", "pg_stat_user_tables", "v", "2", "relname", "name", "S"},
    {"pg_catalog", "pg_stat_user_tables", "v", "3", "seq_scan", "bigint", "N"},
    {"pg_catalog", "pg_stat_user_tables", "v", "4", "n_live_tup", "bigint", "N"},
    {"pg_catalog", "pg_tables", "v", "1", "schemaname", "name", "S"},
    {"pg_catalog", "pg_tables", "v", "2", "tablename", "name", "S"},
    {"pg_catalog", "pg_tables", "v", "3", "tableowner", "name", "S"},
    {"pg_catalog", "pg_sequences", "v", "1", "schemaname", "name", "S"},
    {"pg_catalog", "pg_sequences", "v", "2", "sequencename", "name", "S"},
    {"pg_catalog", "pg_sequences", "v", "3", "last_value", "bigint", "N"},
    {"pg_catalog", "pg_stats", "v", "1", "schemaname", "name", "S"},
    {"pg_catalog", "pg_stat_activity", "v", "1", "pid", "integer", "N"},
    {"pg_catalog", "pg_stat_activity", "v", "2", "query", "text", "S"},
    {"information_schema", "tables", "v", "1", "table_catalog", "information_schema.sql_identifier",
     "S"},
    {"information_schema", "tables", "v", "2", "table_schema", "information_schema.sql_identifier",
     "S"},
    {"information_schema", "tables", "v", "3", "table_name", "information_schema.sql_identifier",
     "S"},
    {"information_schema", "columns", "v", "1", "table_schema", "information_schema.sql_identifier",
     "S"},
    {"information_schema", "columns", "v", "2", "table_name", "information_schema.sql_identifier",
     "S"},
    {"information_schema", "columns", "v", "3", "column_name", "information_schema.sql_identifier",
     "S"},
    {"information_schema", "schemata", "v", "1", "schema_name", "information_schema.sql_identifier",
     "S"},
    {"information_schema", "schemata", "v", "2", "schema_owner",
     "information_schema.sql_identifier", "S"},
};

static PgwColumnMask customer_masks[] = {{"ssn", PGW_MASK_NULL}, {"secret", PGW_MASK_HIDE}};
static PgwTablePolicy tables[] = {
    {"public", "customers", "tenant_id = $tenant", false, PGW_ARRAY_LEN(customer_masks),
     customer_masks, 1},
    {"public", "orders", "tenant_id = $tenant", false, 0, NULL, 2},
    {"public", "products", NULL, false, 0, NULL, 3},
    {"public", "internal_notes", NULL, true, 0, NULL, 4},
};
static char *allowed_functions[] = {"public.safe_fn"};
static PgwConfig cfg;
static PgwTenant tenant = {"acme", "", "acme", 1};
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
    cfg.version = 3;
    cfg.statement_timeout_ms = 30000;
    schema = schema_from_rows(PGW_ARRAY_LEN(schema_rows), SCHEMA_INTROSPECTION_NCOLS,
                              &schema_rows[0][0]);
    ck_assert_ptr_nonnull(schema);
    ctx = (PgwPolicyCtx){&cfg, &tenant, schema, 0, NULL};
}

static void teardown(void)
{
    schema_free(schema);
    schema = NULL;
}

/* ---- cases ---- */

typedef struct Case {
    const char *sql;
    const char *sqlstate; /* NULL: must be allowed */
    const char *must[4]; /* substrings of the rewritten SQL (or of the message) */
    const char *must_not[3];
} Case;

static const Case cases[] = {
    /* the visible sets: one WITH per statement, in dependency order */
    {"SELECT relname FROM pg_class",
     NULL,
     {"WITH pgwarden_nspbase AS", "pgwarden_hcol AS", "pgwarden_rel AS",
      "FROM pg_catalog.pg_class r WHERE r.oid OPERATOR(pg_catalog.=) ANY (SELECT s.o FROM pgwarden_rel s)"},
     {NULL}},
    /* volume figures of filtered relations and of catalogs: NULL */
    {"SELECT relname, reltuples, relpages FROM pg_class",
     NULL,
     {"CASE WHEN r.oid OPERATOR(pg_catalog.=) ANY (SELECT s.o FROM pgwarden_unf s) THEN r.reltuples END",
      "THEN r.relpages END", "'information_schema', 'pg_toast')"},
     {"relallvisible", "relacl"}},
    /* a view carries only the columns the statement can read */
    {"SELECT relname FROM pg_class", NULL, {"(SELECT * FROM pg_catalog.pg_class r"}, {"reltuples"}},
    {"SELECT * FROM pg_class", NULL, {"THEN r.relallvisible END", "aclexplode"}, {NULL}},
    {"SELECT c FROM pg_class c", NULL, {"THEN r.relallvisible END", "aclexplode"}, {NULL}},
    {"SELECT row_to_json(c.*) FROM pg_class c", NULL, {"THEN r.relallvisible END"}, {NULL}},
    {"SELECT a FROM pg_class AS c(a, b, reltuples)", NULL, {"THEN r.relallvisible END"}, {NULL}},
    {"SELECT 1 FROM pg_class NATURAL JOIN pg_namespace",
     NULL,
     {"THEN r.relallvisible END"},
     {NULL}},
    {"SELECT 1 FROM pg_class JOIN pg_class x USING (reltuples)",
     NULL,
     {"THEN r.reltuples END"},
     {"relallvisible END"}},
    {"SELECT * FROM pg_stat_user_tables",
     NULL,
     {"r.relname",
      "CASE WHEN r.relid OPERATOR(pg_catalog.=) ANY (SELECT s.o FROM pgwarden_unf s) THEN r.n_live_tup END",
      "THEN r.seq_scan END"},
     {NULL}},
    {"SELECT * FROM pg_sequences", NULL, {"NULL::bigint AS last_value"}, {NULL}},
    /* ACLs keep only visible grantees; owners of invisible roles are NULL */
    {"SELECT relacl FROM pg_class", NULL, {"pg_catalog.aclexplode", "pgwarden_role"}, {NULL}},
    {"SELECT tableowner FROM pg_tables", NULL, {"CASE WHEN", "va.rolname"}, {NULL}},
    /* one database, named as the tenant */
    {"SELECT datname FROM pg_database",
     NULL,
     {"'acme'::pg_catalog.name", "r.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()"},
     {NULL}},
    {"SELECT current_database()",
     NULL,
     {"(SELECT 'acme'::pg_catalog.name AS current_database)"},
     {NULL}},
    {"SELECT current_catalog", NULL, {"AS \"current_catalog\")"}, {"current_catalog FROM"}},
    {"SELECT table_catalog FROM information_schema.tables",
     NULL,
     {"ELSE 'acme'::pg_catalog.name END", "r.table_schema"},
     {NULL}},
    {"SELECT schema_name FROM information_schema.schemata", NULL, {"pgwarden_nsp"}, {NULL}},
    {"SELECT has_database_privilege('acme', 'CONNECT')",
     NULL,
     {"has_database_privilege(pg_catalog.current_database(), 'CONNECT')"},
     {NULL}},
    {"SELECT has_database_privilege('saas', 'CONNECT')",
     NULL,
     {"has_database_privilege(NULL::pg_catalog.name, 'CONNECT')"},
     {NULL}},
    {"SELECT pg_database_size('acme')", NULL, {"AS pg_database_size"}, {NULL}},
    /* roles: only the session's own */
    {"SELECT rolname FROM pg_roles",
     NULL,
     {"r.oid OPERATOR(pg_catalog.=) ANY (SELECT s.o FROM pgwarden_role s)"},
     {NULL}},
    {"SELECT has_table_privilege('postgres', 'customers', 'SELECT')",
     NULL,
     {"pg_catalog.pg_roles a", "'\"public\".\"customers\"'"},
     {NULL}},
    {"SELECT has_table_privilege(current_user, 'customers', 'SELECT')",
     NULL,
     {"has_table_privilege(current_user, '\"public\".\"customers\"'"},
     {NULL}},
    {"SELECT pg_get_userbyid(relowner) FROM pg_class", NULL, {"pgwarden_role s"}, {NULL}},
    {"SELECT 'postgres'::regrole", NULL, {"pg_catalog.to_regrole"}, {NULL}},
    /* reg* casts: a readable relation's literal decided now; a hidden or
     * missing name at run time alike (both take as long), everything else
     * at run time */
    {"SELECT 'internal_notes'::regclass",
     NULL,
     {"pg_catalog.to_regclass(pgwarden_v.x::pg_catalog.text)", "pgwarden_rel s"},
     {NULL}},
    {"SELECT x::regclass FROM (VALUES ('internal_notes')) v(x)",
     NULL,
     {"(VALUES (x)) pgwarden_v(x)", "pg_catalog.pg_typeof(pgwarden_v.x)",
      "pg_catalog.set_config('search_path', 'pg_catalog', true)"},
     {NULL}},
    {"SELECT oid::regclass FROM pg_class", NULL, {"END AS oid FROM (VALUES (oid))"}, {NULL}},
    {"SELECT '16433'::regclass", NULL, {"(VALUES ('16433'::pg_catalog.oid))"}, {NULL}},
    {"SELECT CAST($1 AS regclass)", NULL, {"(VALUES ($1)) pgwarden_v(x)", "pgwarden_rel"}, {NULL}},
    {"SELECT '{a,b}'::regclass[]", "42501", {"regclass[]"}, {NULL}},
    {"SELECT NULL::regclass", NULL, {"NULL::regclass"}, {"pgwarden_rel"}},
    /* a hidden relation's row type: looked up at run time, as a missing one */
    {"SELECT 'internal_notes'::regtype",
     NULL,
     {"pg_catalog.to_regtype(pgwarden_v.x::pg_catalog.text)", "pgwarden_type s"},
     {NULL}},
    {"SELECT 'public._internal_notes'::regtype",
     NULL,
     {"pg_catalog.to_regtype(pgwarden_v.x::pg_catalog.text)"},
     {NULL}},
    {"SELECT 'customers'::regtype", "42501", {"row type"}, {NULL}},
    {"SELECT 'orders'::regtype", NULL, {"pg_catalog.regtypein", "pgwarden_type"}, {NULL}},
    {"SELECT NULL::internal_notes", "42704", {"does not exist"}, {NULL}},
    {"SELECT NULL::_internal_notes", "42704", {"does not exist"}, {NULL}},
    {"SELECT NULL::hush.keyring", "3F000", {"schema \"hush\" does not exist"}, {NULL}},
    {"SELECT 'hush.keyring'::regclass", "3F000", {"schema \"hush\" does not exist"}, {NULL}},
    /* not in the snapshot (an index, a sequence, a missing name): the backend
     * answers, the visible set decides */
    {"SELECT 'public.nope'::regclass", NULL, {"(VALUES ('public.nope'))", "pgwarden_rel"}, {NULL}},
    {"SELECT pg_relation_size('orders_pkey')", NULL, {"pgwarden_unf"}, {NULL}},
    {"SELECT pg_relation_size('pg_class')", NULL, {"pgwarden_unf"}, {NULL}},
    {"SELECT to_regclass('orders_pkey')", NULL, {"pg_catalog.to_regclass(CASE WHEN"}, {NULL}},
    {"SELECT 'hush.f()'::regprocedure", "3F000", {NULL}, {NULL}},
    {"SELECT 'leak_fn'::regproc", NULL, {"pg_catalog.regprocin", "pgwarden_proc"}, {NULL}},
    {"SELECT 'public.leak_fn'::regproc",
     "42883",
     {"function \"public.leak_fn\" does not exist"},
     {NULL}},
    {"SELECT 'public.leak_fn(int)'::regprocedure", "42883", {"does not exist"}, {NULL}},
    {"SELECT 'public.safe_fn'::regproc", NULL, {"pg_catalog.regprocin"}, {NULL}},
    {"SELECT 'hush'::regnamespace", NULL, {"pg_catalog.to_regnamespace", "pgwarden_nsp"}, {NULL}},
    /* Operators, collations, text search objects: checked against their
     * catalog's rule; a schema the tenant cannot see is a missing one. */
    {"SELECT 'english'::regconfig", NULL, {"'english'", "pg_ts_config", "cfgnamespace"}, {NULL}},
    {"SELECT 'nowhere.english'::regconfig", "3F000", {"schema \"nowhere\" does not exist"}, {NULL}},
    {"SELECT 'nowhere.=(integer,text)'::regoperator", "3F000", {"\"nowhere\""}, {NULL}},
    {"SELECT 'nowhere.\"C\"'::regcollation", "3F000", {"\"nowhere\""}, {NULL}},
    {"SELECT to_regoper('+')", NULL, {"to_regoper", "oprnamespace"}, {NULL}},
    /* name -> OID functions */
    {"SELECT to_regclass('internal_notes')",
     NULL,
     {"pg_catalog.to_regclass(", "pgwarden_rel s"},
     {NULL}},
    {"SELECT to_regclass('nowhere.internal_notes')",
     NULL,
     {"NULL::pg_catalog.regclass"},
     {"internal_notes"}},
    {"SELECT to_regclass(x) FROM (VALUES ('internal_notes')) v(x)",
     NULL,
     {"pg_catalog.to_regclass(CASE WHEN", "AS to_regclass"},
     {NULL}},
    {"SELECT to_regtype('internal_notes')", NULL, {"pg_catalog.to_regtype(CASE WHEN"}, {NULL}},
    {"SELECT to_regnamespace('hush')", NULL, {"pgwarden_nsp"}, {NULL}},
    {"SELECT has_type_privilege('internal_notes', 'USAGE')",
     NULL,
     {"pg_catalog.regtypein"},
     {NULL}},
    {"SELECT has_schema_privilege('hush', 'USAGE')",
     NULL,
     {"n.nspname OPERATOR(pg_catalog.=) pgwarden_v.t"},
     {NULL}},
    {"SELECT * FROM customers pgwarden_v", "42501", {"reserved"}, {NULL}},
    {"SELECT has_function_privilege('public.leak_fn()', 'EXECUTE')",
     "42883",
     {"does not exist"},
     {NULL}},
    {"SELECT has_function_privilege('lower(text)', 'EXECUTE')",
     NULL,
     {"pg_catalog.regprocedurein"},
     {NULL}},
    /* Metabase: a relation computed at run time */
    {"SELECT has_any_column_privilege(current_user, '\"' || schemaname || '\".\"' || tablename || "
     "'\"', 'select') FROM pg_tables",
     NULL,
     {"pg_catalog.regclassin", "has_any_column_privilege(current_user, (SELECT CASE"},
     {NULL}},
    {"SELECT col_description(CAST(CAST(format('%I.%I', table_schema, table_name) AS regclass) AS "
     "oid), 1) FROM information_schema.columns",
     NULL,
     {"pg_catalog.col_description(pgwarden_v.o, pgwarden_v.n)", "AS col_description"},
     {NULL}},
    /* OID -> definition printers */
    {"SELECT format_type(t.oid, NULL) FROM pg_type t", NULL, {"pgwarden_type s"}, {NULL}},
    {"SELECT pg_get_constraintdef(oid) FROM pg_constraint", NULL, {"pgwarden_con s"}, {NULL}},
    {"SELECT pg_get_triggerdef(1)", NULL, {"pgwarden_trig s"}, {NULL}},
    {"SELECT pg_get_ruledef(1)", NULL, {"pg_catalog.pg_rewrite vw"}, {NULL}},
    {"SELECT pg_get_statisticsobjdef_columns(1)", NULL, {"pg_catalog.pg_statistic_ext vx"}, {NULL}},
    {"SELECT pg_get_functiondef(1)", NULL, {"pgwarden_proc s"}, {NULL}},
    {"SELECT pg_get_indexdef(1, 0, true)", NULL, {"pgwarden_rel s"}, {NULL}},
    {"SELECT col_description(16385, 4)", NULL, {"pgwarden_hcol"}, {NULL}},
    {"SELECT obj_description(1, 'pg_type')", NULL, {"pgwarden_type s"}, {NULL}},
    {"SELECT obj_description(d.objoid, d.c) FROM (VALUES (1::oid, 'pg_class'::name)) d(objoid, c)",
     NULL,
     {"pg_catalog.obj_description(pgwarden_v.o, pgwarden_v.c)", "CASE (SELECT vc.oid"},
     {NULL}},
    {"SELECT shobj_description(1, 'pg_database')", NULL, {"pgwarden_db s"}, {NULL}},
    {"SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend",
     NULL,
     {"pg_catalog.pg_describe_object(pgwarden_v.c, pgwarden_v.o, pgwarden_v.s)"},
     {NULL}},
    {"SELECT * FROM pg_identify_object('pg_class'::regclass, 1, 0)",
     NULL,
     {"pgwarden_rel s"},
     {NULL}},
    {"SELECT pg_partition_root('customers')",
     NULL,
     {"pg_partition_ancestors(pgwarden_v.o)"},
     {NULL}},
    {"SELECT relid FROM pg_partition_ancestors('16433')",
     NULL,
     {"pg_partition_tree(pgwarden_v.o)"},
     {NULL}},
    /* sizes and statistics readers: NULL unless unfiltered */
    {"SELECT pg_relation_size(i.indexrelid) FROM pg_index i", NULL, {"pgwarden_unf s"}, {NULL}},
    {"SELECT pg_table_size('customers')", NULL, {"pgwarden_unf s"}, {NULL}},
    {"SELECT pg_stat_get_numscans(1)", NULL, {"pgwarden_unf s"}, {NULL}},
    {"SELECT pg_total_relation_size('internal_notes')",
     NULL,
     {"pg_catalog.to_regclass(pgwarden_v.x::pg_catalog.text)", "pgwarden_unf s"},
     {NULL}},
    /* settings */
    {"SELECT current_setting('data_directory')", "42501", {"data_directory"}, {NULL}},
    {"SELECT current_setting('server_version_num')",
     NULL,
     {"current_setting('server_version_num')"},
     {"pgwarden"}},
    {"SELECT current_setting(s.name) FROM pg_settings s", NULL, {"'data_directory'"}, {NULL}},
    {"SHOW data_directory", "42501", {"data_directory"}, {NULL}},
    {"SHOW hba_file", "42501", {NULL}, {NULL}},
    {"SHOW ALL", NULL, {"short_desc AS description FROM (SELECT"}, {NULL}},
    {"SELECT set_config('bytea_output', 'hex', false) FROM pg_show_all_settings() WHERE name = "
     "'bytea_output'",
     NULL,
     {"FROM pg_catalog.pg_settings r WHERE pg_catalog.lower"},
     {"pg_show_all_settings"}},
    /* system columns of virtualized catalog tables */
    {"SELECT pgc.tableoid, conname FROM pg_constraint pgc", NULL, {"r.tableoid FROM"}, {NULL}},
    {"SELECT conname FROM pg_constraint", NULL, {NULL}, {"r.tableoid"}},
    /* a star over a view carrying system columns is written out, so it
     * shows only the catalog's own columns (as PostgreSQL's does) */
    {"SELECT c.xmin, c.* FROM pg_constraint c",
     NULL,
     {"SELECT c.xmin, c.oid, c.conname FROM", "r.xmin FROM"},
     {"c.*"}},
    {"SELECT xmin, * FROM pg_catalog.pg_constraint",
     NULL,
     {"xmin, pg_constraint.oid, pg_constraint.conname"},
     {NULL}},
    {"WITH pg_constraint AS (SELECT 1 AS xmin) SELECT xmin, * FROM pg_constraint",
     NULL,
     {"xmin, * FROM"},
     {NULL}},
    /* refused catalogs */
    {"SELECT * FROM pg_authid", "42501", {"not available"}, {NULL}},
    {"SELECT * FROM pg_stats", "42501", {"not available"}, {NULL}},
    {"SELECT * FROM pg_shadow", "42501", {"not available"}, {NULL}},
    /* activity: one's own session, without its query text */
    {"SELECT pid, query FROM pg_stat_activity",
     NULL,
     {"r.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()", "NULL::text AS query"},
     {"r.query"}},
    {"SELECT pg_blocking_pids(pid) FROM pg_stat_activity",
     NULL,
     {"'{}'::int[]"},
     {"pg_blocking_pids(pid"}},
    {"SELECT * FROM pg_catalog.pg_statistic", "42501", {NULL}, {NULL}},
    /* reserved names and declarations */
    {"WITH pgwarden_rel AS (SELECT 1 AS o) SELECT relname FROM pg_class",
     "42501",
     {"reserved"},
     {NULL}},
    {"SELECT * FROM (WITH pgwarden_nsp AS (SELECT 1) SELECT 1) x", "42501", {"reserved"}, {NULL}},
    {"PREPARE p(regclass) AS SELECT $1", "42501", {"regclass"}, {NULL}},
    {"PREPARE p(internal_notes) AS SELECT $1", "42704", {"does not exist"}, {NULL}},
    {"PREPARE p(int) AS SELECT relname FROM pg_class WHERE oid = $1",
     NULL,
     {"PREPARE p(int) AS WITH pgwarden_nspbase"},
     {NULL}},
    {"SELECT * FROM json_to_record('{\"a\": \"x\"}') AS t(a regclass)",
     "42501",
     {"regclass"},
     {NULL}},
    /* statements without a WITH get the sets inline */
    {"EXECUTE q(obj_description(1, 'pg_class'))",
     NULL,
     {"(SELECT c.oid AS o FROM pg_catalog.pg_class c"},
     {"pgwarden_rel"}},
    {"DECLARE c CURSOR FOR SELECT relname FROM pg_class",
     NULL,
     {"CURSOR FOR WITH pgwarden_nspbase"},
     {NULL}},
    {"COPY pg_class TO STDOUT", NULL, {"COPY (WITH pgwarden_nspbase"}, {NULL}},
    /* psqlODBC's quoted mixed-case cursor names survive the deparse */
    {"fetch 100 in \"SQL_CUR0x55d4c2a3b8f0\"",
     NULL,
     {"FETCH FORWARD 100 \"SQL_CUR0x55d4c2a3b8f0\""},
     {NULL}},
    {"MOVE 5 IN \"Ab\"\"c\"", NULL, {"\"Ab\"\"c\""}, {NULL}},
    {"fetch next from c", NULL, {"FETCH \"c\""}, {NULL}},
    /* a user CTE keeps working next to ours */
    {"WITH x AS (SELECT relname FROM pg_class) SELECT * FROM x",
     NULL,
     {"WITH pgwarden_nspbase AS", "x AS (SELECT relname FROM"},
     {NULL}},
};

static void check_case(const Case *c)
{
    PgwPolicyResult r;
    int rc = policy_rewrite_uncached(&ctx, c->sql, &r);
    ck_assert_msg(rc == 0, "policy failed internally on: %s", c->sql);
    if (c->sqlstate == NULL) {
        ck_assert_msg(r.decision == PGW_POLICY_ALLOW, "refused %s: %s %s (%s)", c->sql, r.sqlstate,
                      r.message != NULL ? r.message : "", r.reason != NULL ? r.reason : "");
        PgQueryParseResult p = pg_query_parse(r.sql);
        ck_assert_msg(p.error == NULL, "%s: the rewrite does not parse", c->sql);
        pg_query_free_parse_result(p);
    } else {
        ck_assert_msg(r.decision == PGW_POLICY_REFUSE, "allowed %s as: ...%s", c->sql,
                      r.sql != NULL && strlen(r.sql) > 1500 ? r.sql + strlen(r.sql) - 1500
                      : r.sql != NULL                       ? r.sql
                                                            : "");
        ck_assert_msg(strcmp(r.sqlstate, c->sqlstate) == 0, "%s: sqlstate %s, wanted %s (%s)",
                      c->sql, r.sqlstate, c->sqlstate, r.message);
        /* A refusal never names a hidden object it was not given. */
        if (strstr(c->sql, "nternal_notes") == NULL)
            ck_assert_ptr_null(strstr(r.message, "internal_notes"));
    }
    const char *text = c->sqlstate == NULL ? r.sql : r.message;
    /* Check's messages are bounded: show the end (the statement itself). */
    const char *shown = strlen(text) > 1500 ? text + strlen(text) - 1500 : text;
    for (size_t i = 0; i < PGW_ARRAY_LEN(c->must) && c->must[i] != NULL; i++)
        ck_assert_msg(strstr(text, c->must[i]) != NULL, "%s\n  gave: ...%s\n  missing: %s", c->sql,
                      shown, c->must[i]);
    for (size_t i = 0; i < PGW_ARRAY_LEN(c->must_not) && c->must_not[i] != NULL; i++)
        ck_assert_msg(strstr(text, c->must_not[i]) == NULL,
                      "%s\n  gave: ...%s\n  must not have: %s", c->sql, shown, c->must_not[i]);
    policy_result_free(&r);
}

START_TEST(test_case)
{
    check_case(&cases[_i]);
}
END_TEST

/* With default_access = allow the readable relations are everything but
 * the hidden ones. */
START_TEST(test_default_access_allow)
{
    cfg.default_access = PGW_ACCESS_ALLOW;
    PgwPolicyResult r;
    ck_assert_int_eq(policy_rewrite_uncached(&ctx, "SELECT relname FROM pg_class", &r), 0);
    ck_assert_int_eq(r.decision, PGW_POLICY_ALLOW);
    ck_assert_ptr_nonnull(strstr(
        r.sql,
        "NOT (n.nspname::pg_catalog.text, c.relname::pg_catalog.text) OPERATOR(pg_catalog.=) ANY (VALUES "
        "('public', 'internal_notes'))"));
    policy_result_free(&r);
}
END_TEST

/* A Parse's parameter types are checked: reg* types, user-defined types
 * (possibly a hidden relation's row type) and types whose input looks names
 * up (aclitem, the catalogs' row types) are refused. */
START_TEST(test_parameter_types)
{
    static const struct {
        uint32_t oid;
        bool allowed;
    } types[] = {
        {0, true},     {25, true},     {23, true},
        {1043, true},  {2205, false},  {2210, false},
        {2206, false}, {24, false},    {4089, false},
        {4096, false}, {16500, false}, {83, false} /* pg_class's row type: relacl is aclitem[] */,
        {1033, false} /* aclitem: its input looks role names up */};
    for (size_t i = 0; i < PGW_ARRAY_LEN(types); i++) {
        uint32_t oids[2] = {25, types[i].oid};
        PgwPolicyCtx c = ctx;
        c.nparam_types = 2;
        c.param_types = oids;
        PgwPolicyResult r;
        ck_assert_int_eq(policy_rewrite_uncached(&c, "SELECT $1, $2", &r), 0);
        ck_assert_msg((r.decision == PGW_POLICY_ALLOW) == types[i].allowed, "type %u: %s",
                      types[i].oid, r.message != NULL ? r.message : "allowed");
        if (!types[i].allowed) {
            ck_assert_str_eq(r.sqlstate, "42501");
            ck_assert_ptr_nonnull(strstr(r.message, "$2"));
        }
        policy_result_free(&r);
    }
}
END_TEST

/* Every allowlisted built-in whose name says it takes an object has an
 * argument entry, and the entries are sorted for the binary search. */
START_TEST(test_builtin_objects_complete)
{
    static const char *const object_like[] = {
        "has_",     "pg_get_",      "_description", "to_reg",      "_size",      "pg_stat_get_",
        "_visible", "pg_partition", "pg_identify",  "pg_describe", "format_type"};
    static const char *const exempt[] = {"pg_get_keywords",         "pg_column_size",
                                         "pg_collation_is_visible", "pg_conversion_is_visible",
                                         "pg_opclass_is_visible",   "pg_operator_is_visible",
                                         "pg_opfamily_is_visible",  "pg_ts_config_is_visible",
                                         "pg_size_pretty",          "to_regoper",
                                         "to_regoperator",          "to_regcollation"};
    /* The allowlist is private; probe every name the patterns could match
     * among a broad list of PostgreSQL built-ins. */
    static const char *const probes[] = {"has_table_privilege",
                                         "has_any_column_privilege",
                                         "has_column_privilege",
                                         "has_database_privilege",
                                         "has_function_privilege",
                                         "has_schema_privilege",
                                         "has_sequence_privilege",
                                         "has_type_privilege",
                                         "has_foreign_data_wrapper_privilege",
                                         "has_language_privilege",
                                         "has_server_privilege",
                                         "has_tablespace_privilege",
                                         "pg_get_constraintdef",
                                         "pg_get_expr",
                                         "pg_get_functiondef",
                                         "pg_get_function_arguments",
                                         "pg_get_function_identity_arguments",
                                         "pg_get_function_result",
                                         "pg_get_indexdef",
                                         "pg_get_partkeydef",
                                         "pg_get_partition_constraintdef",
                                         "pg_get_ruledef",
                                         "pg_get_serial_sequence",
                                         "pg_get_statisticsobjdef",
                                         "pg_get_statisticsobjdef_columns",
                                         "pg_get_statisticsobjdef_expressions",
                                         "pg_get_triggerdef",
                                         "pg_get_userbyid",
                                         "pg_get_viewdef",
                                         "obj_description",
                                         "col_description",
                                         "shobj_description",
                                         "to_regclass",
                                         "to_regtype",
                                         "to_regproc",
                                         "to_regprocedure",
                                         "to_regnamespace",
                                         "to_regrole",
                                         "pg_relation_size",
                                         "pg_table_size",
                                         "pg_total_relation_size",
                                         "pg_indexes_size",
                                         "pg_database_size",
                                         "pg_tablespace_size",
                                         "pg_stat_get_numscans",
                                         "pg_stat_get_live_tuples",
                                         "pg_table_is_visible",
                                         "pg_type_is_visible",
                                         "pg_function_is_visible",
                                         "pg_statistics_obj_is_visible",
                                         "pg_partition_root",
                                         "pg_partition_ancestors",
                                         "pg_partition_tree",
                                         "pg_identify_object",
                                         "pg_identify_object_as_address",
                                         "pg_describe_object",
                                         "format_type"};
    for (size_t i = 0; i < PGW_ARRAY_LEN(probes); i++) {
        const char *f = probes[i];
        if (!policy_builtin_scalar(f))
            continue;
        bool like = false, skip = false;
        for (size_t j = 0; j < PGW_ARRAY_LEN(object_like); j++)
            like = like || strstr(f, object_like[j]) != NULL;
        for (size_t j = 0; j < PGW_ARRAY_LEN(exempt); j++)
            skip = skip || strcmp(exempt[j], f) == 0;
        if (!like || skip)
            continue;
        bool found = false;
        for (size_t n = 0; n <= 4 && !found; n++)
            found = policy_builtin_objects(f, n) != NULL;
        ck_assert_msg(found, "%s is allowlisted but its object arguments are not described", f);
    }
    ck_assert(policy_builtin_tables_sorted());
    ck_assert_ptr_nonnull(policy_builtin_objects("has_table_privilege", 3));
    ck_assert_ptr_nonnull(policy_builtin_objects("pg_stat_get_xact_blocks_hit", 1));
    ck_assert_ptr_null(policy_builtin_objects("has_table_privilege", 7));
    ck_assert_ptr_null(policy_builtin_objects("lower", 1));
}
END_TEST

/* Fail closed: a catalog is read as is only when its rows describe no
 * database object (the server's constants); every other rule filters. A
 * new AS_IS rule must be added here on purpose. */
START_TEST(test_as_is_catalogs_are_pinned)
{
    static const char *const as_is[] = {
        "pg_am", /* superusers' access methods (policy_catalog.c) */
        "pg_available_extension_versions",
        "pg_available_extensions",
        "pg_timezone_abbrevs",
        "pg_timezone_names",
        "sql_features",
        "sql_implementation_info",
        "sql_parts",
        "sql_sizing",
    };
    const char *rule_schema;
    const char *name;
    size_t n = 0;
    for (size_t i = 0; (name = policy_catalog_rule_at(i, &rule_schema)) != NULL; i++) {
        if (policy_catalog_access(rule_schema, name) != PGW_CATALOG_AS_IS)
            continue;
        bool pinned = false;
        for (size_t j = 0; j < PGW_ARRAY_LEN(as_is); j++)
            pinned = pinned || strcmp(as_is[j], name) == 0;
        ck_assert_msg(pinned, "%s.%s is read as is but lists objects", rule_schema, name);
        n++;
    }
    ck_assert_uint_eq(n, PGW_ARRAY_LEN(as_is));
    /* The catalogs the red team found unfiltered now have rules. */
    static const char *const filtered[] = {
        "pg_operator",      "pg_opclass",   "pg_opfamily",  "pg_amop",
        "pg_amproc",        "pg_cast",      "pg_collation", "pg_conversion",
        "pg_ts_dict",       "pg_ts_config", "pg_ts_parser", "pg_ts_template",
        "pg_ts_config_map", "pg_extension", "pg_transform", "pg_event_trigger",
    };
    for (size_t j = 0; j < PGW_ARRAY_LEN(filtered); j++)
        ck_assert_int_eq(policy_catalog_access("pg_catalog", filtered[j]), PGW_CATALOG_FILTERED);
    ck_assert_int_eq(policy_catalog_access("pg_catalog", "pg_no_such_catalog"),
                     PGW_CATALOG_UNKNOWN);
}
END_TEST

/* reg* types: every one has the catalog its values are checked against. */
START_TEST(test_reg_types_have_catalogs)
{
    static const char *const reg[] = {
        "regclass",    "regcollation", "regconfig",    "regdictionary", "regnamespace", "regoper",
        "regoperator", "regproc",      "regprocedure", "regrole",       "regtype"};
    for (size_t i = 0; i < PGW_ARRAY_LEN(reg); i++) {
        ck_assert(policy_builtin_is_reg_type(reg[i]));
        ck_assert_ptr_nonnull(policy_builtin_reg_catalog(reg[i]));
    }
    ck_assert_ptr_null(policy_builtin_reg_catalog("text"));
    ck_assert_ptr_nonnull(policy_builtin_objects("to_regoperator", 1));
    ck_assert_ptr_nonnull(policy_builtin_objects("to_regoper", 1));
    ck_assert_ptr_nonnull(policy_builtin_objects("to_regcollation", 1));
}
END_TEST

/* Every filtered catalog view expands to SQL that parses, with the WITH of
 * the sets it uses, in both modes. */
START_TEST(test_every_catalog_rule_parses)
{
    static PgwSchemaColumn col = {"x", "text", true, 1};
    PgwSchemaTable t = {"pg_catalog", "x", 'v', 1, &col};
    const char *rule_schema;
    const char *name;
    int n = 0;
    for (size_t i = 0; (name = policy_catalog_rule_at(i, &rule_schema)) != NULL; i++) {
        if (policy_catalog_access(rule_schema, name) != PGW_CATALOG_FILTERED)
            continue;
        for (int inl = 0; inl < 2; inl++) {
            const char *sp[] = {"public"};
            PgwCatalogCtx cc = {&cfg, "acme", sp, 1, inl == 1, 0, PGW_SYSCOL_CTID};
            PgwBuf b, with;
            buf_init(&b);
            buf_init(&with);
            ck_assert_int_eq(policy_catalog_view(&cc, &b, rule_schema, name, &t), 0);
            buf_append_str(&b, ") v");
            policy_catalog_append_with(&cc, &with);
            char *view = buf_steal_str(&b);
            char *w = buf_steal_str(&with);
            PgwBuf sql;
            buf_init(&sql);
            if (w[0] != '\0') {
                /* "WITH ... SELECT 1": put the view where SELECT 1 was */
                w[strlen(w) - strlen(" SELECT 1")] = '\0';
                buf_printf(&sql, "%s SELECT * FROM %s", w, view);
            } else {
                buf_printf(&sql, "SELECT * FROM %s", view);
            }
            char *text = buf_steal_str(&sql);
            PgQueryParseResult p = pg_query_parse(text);
            ck_assert_msg(p.error == NULL, "%s.%s: %s", rule_schema, name,
                          p.error != NULL ? p.error->message : "");
            if (inl == 0)
                ck_assert_msg(strstr(text, "(SELECT c.oid AS o") == NULL ||
                                  strstr(text, "WITH") != NULL,
                              "%s.%s: sets inline in WITH mode", rule_schema, name);
            pg_query_free_parse_result(p);
            free(text);
            free(view);
            free(w);
            n++;
        }
    }
    ck_assert_int_gt(n, 100);
}
END_TEST

/* issue 7 class 8: a call with 8,000 arguments that each need an OID
 * wrapper. The wrapper template is parsed once and the sets are defined
 * once, so the rewrite is linear: the output grows by a constant per
 * argument and the WITH appears once. (Time is printed, not asserted.) */
START_TEST(test_many_oid_arguments_are_linear)
{
    size_t sizes[] = {1000, 8000};
    double us[2];
    size_t out_len[2];
    for (int k = 0; k < 2; k++) {
        PgwBuf b;
        buf_init(&b);
        buf_append_str(&b, "SELECT pg_catalog.concat(");
        for (size_t i = 0; i < sizes[k]; i++)
            buf_printf(&b, "%sobj_description(%zu, 'pg_class')", i > 0 ? ", " : "", 16384 + i);
        buf_append_byte(&b, ')');
        char *sql = buf_steal_str(&b);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        PgwPolicyResult r;
        ck_assert_int_eq(policy_rewrite_uncached(&ctx, sql, &r), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ck_assert_msg(r.decision == PGW_POLICY_ALLOW, "%s", r.message);
        us[k] = (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
        out_len[k] = strlen(r.sql);
        /* the set is defined once */
        const char *first = strstr(r.sql, "pgwarden_rel AS");
        ck_assert_ptr_nonnull(first);
        ck_assert_ptr_null(strstr(first + 1, "pgwarden_rel AS"));
        policy_result_free(&r);
        free(sql);
    }
    printf("%zu OID arguments: %.0f us; %zu: %.0f us (%.1f us per argument)\n", sizes[0], us[0],
           sizes[1], us[1], us[1] / (double)sizes[1]);
    /* Output per argument is constant: 8x the arguments, about 8x the text. */
    double ratio = (double)out_len[1] / (double)out_len[0];
    ck_assert_msg(ratio < 9.0 && ratio > 6.0, "output grew %.1fx for 8x the arguments", ratio);
}
END_TEST

/* A statement naming a hidden object must be decided exactly as the same
 * statement naming a missing one: the same decision, SQLSTATE and message,
 * and the same rewrite sent to the backend, with the name swapped. Then
 * pgwarden does the same work for both, and nothing (not even how long the
 * answer takes: a hidden relation refused by the policy in 40 us, a
 * missing one looked up by the backend in 15 ms) tells them apart. The
 * policy's own text (the sets name the hidden relation) stays as it is:
 * the missing name is swapped back in the missing statement's answer. The
 * policy decides from the snapshot, which knows the hidden objects; this
 * holds only while no decision looks at what is hidden. */
static void swap_name(char *dst, size_t size, const char *src, const char *from, const char *to)
{
    size_t n = 0, fl = strlen(from), tl = strlen(to);
    while (*src != '\0' && n + tl + 1 < size) {
        if (strncmp(src, from, fl) == 0) {
            memcpy(dst + n, to, tl);
            n += tl;
            src += fl;
        } else {
            dst[n++] = *src++;
        }
    }
    dst[n] = '\0';
}

/* NULL when the template is decided alike for the hidden and the missing
 * name, else what differs (static). */
static const char *decided_differently(const char *template)
{
    static char why[1024];
    char hidden_sql[512], missing_sql[512];
    snprintf(hidden_sql, sizeof(hidden_sql), template, "internal_notes");
    snprintf(missing_sql, sizeof(missing_sql), template, "internal_notez");
    PgwPolicyResult h, m;
    ck_assert_int_eq(policy_rewrite_uncached(&ctx, hidden_sql, &h), 0);
    ck_assert_int_eq(policy_rewrite_uncached(&ctx, missing_sql, &m), 0);
    const char *out = NULL;
    if (h.decision != m.decision) {
        snprintf(why, sizeof(why), "%s for the hidden name, %s for the missing one",
                 h.decision == PGW_POLICY_ALLOW ? "allowed" : "refused",
                 m.decision == PGW_POLICY_ALLOW ? "allowed" : "refused");
        out = why;
    } else {
        const char *ht = h.decision == PGW_POLICY_ALLOW ? h.sql : h.message;
        const char *mt = m.decision == PGW_POLICY_ALLOW ? m.sql : m.message;
        static char swapped[65536];
        swap_name(swapped, sizeof(swapped), mt, "internal_notez", "internal_notes");
        size_t at = 0;
        while (swapped[at] != '\0' && swapped[at] == ht[at])
            at++;
        if (strcmp(swapped, ht) != 0 ||
            (h.decision == PGW_POLICY_REFUSE && strcmp(h.sqlstate, m.sqlstate) != 0)) {
            snprintf(why, sizeof(why),
                     "from byte %zu the hidden name gave [%.300s], the missing one [%.300s]", at,
                     ht + (at > 100 ? at - 100 : 0), swapped + (at > 100 ? at - 100 : 0));
            out = why;
        }
    }
    policy_result_free(&h);
    policy_result_free(&m);
    return out;
}

START_TEST(test_hidden_decided_as_missing)
{
    static const char *const templates[] = {
        "SELECT * FROM %s",
        "SELECT * FROM public.%s",
        "SELECT '%s'::regclass",
        "SELECT '%s'::regclass::oid",
        "SELECT 'public.%s'::regclass",
        "SELECT to_regclass('%s')",
        "SELECT to_regclass('public.%s')",
        "SELECT has_table_privilege('%s', 'SELECT')",
        "SELECT has_table_privilege('alice', 'public.%s', 'SELECT')",
        "SELECT has_column_privilege('%s', 'note', 'SELECT')",
        "SELECT has_any_column_privilege('%s'::regclass, 'SELECT')",
        "SELECT pg_relation_size('%s')",
        "SELECT pg_total_relation_size('%s')",
        "SELECT pg_table_size('public.%s')",
        "SELECT obj_description('%s'::regclass, 'pg_class')",
        "SELECT col_description('%s'::regclass, 1)",
        "SELECT pg_get_serial_sequence('%s', 'note')",
        "SELECT * FROM pg_class WHERE oid = '%s'::regclass",
        "SELECT x::regclass FROM (VALUES ('%s')) v(x)",
        "SELECT '%s'::regtype",
        "SELECT 'public.%s'::regtype",
        "SELECT to_regtype('%s')",
        "SELECT x::regtype FROM (VALUES ('%s')) v(x)",
        "SELECT '%s[]'::regtype",
        "SELECT '_%s'::regtype",
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(templates); i++) {
        const char *why = decided_differently(templates[i]);
        ck_assert_msg(why == NULL, "%s: %s", templates[i], why);
    }
    /* Type names: a hidden relation's row type is refused by the policy, so
     * a type name the backend does not know must be refused by it too,
     * which it can when the snapshot lists the types ('T' rows). */
    static const char *const type_rows[][SCHEMA_INTROSPECTION_NCOLS] = {
        {"pg_catalog", NULL, NULL, NULL, NULL, NULL, NULL, NULL, "T", "int4", NULL, NULL},
        {"pg_catalog", NULL, NULL, NULL, NULL, NULL, NULL, NULL, "T", "text", NULL, NULL},
        {"pg_catalog", NULL, NULL, NULL, NULL, NULL, NULL, NULL, "T", "_text", NULL, NULL},
        {"public", NULL, NULL, NULL, NULL, NULL, NULL, NULL, "T", "mood", NULL, NULL},
    };
    size_t n1 = PGW_ARRAY_LEN(schema_rows), n2 = PGW_ARRAY_LEN(type_rows);
    const char **rows = calloc((n1 + n2) * SCHEMA_INTROSPECTION_NCOLS, sizeof(*rows));
    ck_assert_ptr_nonnull(rows);
    memcpy(rows, schema_rows, sizeof(schema_rows));
    memcpy(rows + n1 * SCHEMA_INTROSPECTION_NCOLS, type_rows, sizeof(type_rows));
    PgwSchema *typed = schema_from_rows(n1 + n2, SCHEMA_INTROSPECTION_NCOLS, rows);
    free(rows);
    ck_assert_ptr_nonnull(typed);
    PgwSchema *untyped = ctx.schema;
    ctx.schema = typed;
    static const char *const type_templates[] = {
        "SELECT NULL::%s",
        "SELECT NULL::public.%s",
        "SELECT 'x'::%s",
        "SELECT NULL::%s[]",
        "PREPARE p(%s) AS SELECT $1",
        "SELECT NULL::_%s",
        "SELECT CAST(NULL AS %s)",
        "SELECT * FROM ROWS FROM (pg_catalog.generate_series(1, 2)) "
        "AS f(x %s)",
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(type_templates); i++) {
        const char *why = decided_differently(type_templates[i]);
        ck_assert_msg(why == NULL, "%s: %s", type_templates[i], why);
    }
    /* Known types are still the backend's to resolve. */
    static const char *const known[] = {"SELECT NULL::int4",    "SELECT 'x'::text",
                                        "SELECT NULL::text[]",  "SELECT NULL::_text",
                                        "SELECT NULL::mood",    "SELECT NULL::public.mood",
                                        "SELECT NULL::products"};
    for (size_t i = 0; i < PGW_ARRAY_LEN(known); i++) {
        PgwPolicyResult r;
        ck_assert_int_eq(policy_rewrite_uncached(&ctx, known[i], &r), 0);
        ck_assert_msg(r.decision == PGW_POLICY_ALLOW, "%s refused: %s", known[i],
                      r.message != NULL ? r.message : "");
        policy_result_free(&r);
    }
    PgwPolicyResult r;
    ck_assert_int_eq(policy_rewrite_uncached(&ctx, "SELECT NULL::nosuch[]", &r), 0);
    ck_assert_int_eq(r.decision, PGW_POLICY_REFUSE);
    ck_assert_str_eq(r.sqlstate, "42704");
    ck_assert_str_eq(r.message, "type \"nosuch[]\" does not exist");
    policy_result_free(&r);
    ctx.schema = untyped;
    schema_free(typed);
}
END_TEST

static Suite *catalog_suite(void)
{
    Suite *s = suite_create("catalog");
    TCase *tc = tcase_create("catalog");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_case, 0, PGW_ARRAY_LEN(cases));
    tcase_add_test(tc, test_default_access_allow);
    tcase_add_test(tc, test_hidden_decided_as_missing);
    tcase_add_test(tc, test_parameter_types);
    tcase_add_test(tc, test_builtin_objects_complete);
    tcase_add_test(tc, test_every_catalog_rule_parses);
    tcase_add_test(tc, test_as_is_catalogs_are_pinned);
    tcase_add_test(tc, test_reg_types_have_catalogs);
    tcase_add_test(tc, test_many_oid_arguments_are_linear);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(catalog_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
