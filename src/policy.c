/*
 * policy.c — decide whether a statement may run and rewrite it so that it
 * can only see the tenant's rows and masked columns.
 *
 * Flow: libpg_query parses the text into a protobuf tree; we walk it once,
 * refusing every statement that is not a read-only query (or an allowlisted
 * SET/SHOW/transaction/cursor statement), every function outside an
 * allowlist, and every relation the tenant may not read. Each readable base
 * relation reference is replaced by a derived table
 *     (SELECT c1, ..., <mask> AS cn FROM [ONLY] s.t WHERE <row filter>) AS alias
 * so joins, subqueries, whole-row references, ORDER BY and aggregates all see
 * filtered, masked data under the names the client wrote. Replacement trees
 * are produced by parsing generated SQL (one parse for all of a statement's
 * replacements) and spliced in; the result is deparsed, parsed again and
 * compared with the tree we built, so a deparser fault fails closed.
 *
 * Leak-proof evaluation (the one subtle design point). PostgreSQL flattens a
 * simple derived table into the outer query and may then evaluate an outer
 * WHERE/ON qual on a base row *before* the row filter (quals are ordered by
 * cost). A qual that can raise an error or take data-dependent time on
 * another tenant's row would leak it (e.g. WHERE 1/(x-42) > 0). security
 * barriers only exist for views, so we decide per statement: if every
 * expression that could be pushed below a scan (everything except the
 * outermost SELECT list, its ORDER BY/GROUP BY/LIMIT and aggregate/window
 * arguments, which are evaluated after the scan's quals) is built from
 * comparisons (= <> < > <= >=, IN, BETWEEN, IS [NOT] DISTINCT, IS NULL),
 * AND/OR/NOT, constants, parameters and column references, the derived
 * tables stay flattenable and `WHERE id = 5` still uses an index. Otherwise
 * every derived table of the statement gets OFFSET 0, which PostgreSQL
 * treats as a fence: no pull-up and no qual push-down, so the row filter
 * runs first. Residual: comparisons between columns of different types may
 * cast (date vs timestamptz), which we do not inspect.
 *
 * Catalogs are virtualized the same way: pg_class, pg_attribute, pg_type,
 * information_schema.tables/columns and friends get a filter that keeps only
 * relations the policy lets the tenant read and drops hidden columns;
 * statistics and activity views are refused. Known residual: functions that
 * take a guessed OID (obj_description, pg_get_viewdef ...) or a name
 * (has_table_privilege) can still confirm that a hidden relation exists.
 *
 * Unqualified names resolve against the CTE scope, then pg_catalog, then the
 * pinned search_path (clients cannot SET it), skipping relations the tenant
 * may not read, so a hidden relation is indistinguishable from a missing one:
 * both get PostgreSQL's own 42P01 message. Rewrites are cached by (config
 * version, schema snapshot, tenant, text) in a bounded, mutex-protected map.
 */
#include "policy.h"

#include <ctype.h>
#include <pg_query.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "policy_walk.h"

#define NODE(n, kind) ((n) != NULL && (n)->node_case == PG_QUERY__NODE__NODE_##kind)

/* ------------------------------------------------------------------------ */
/* Allowlists                                                                 */
/* ------------------------------------------------------------------------ */

/* Aggregates and window functions: their arguments are evaluated after the
 * scan's quals, so they never matter for leak-proofness. */
static const char *const aggregate_functions[] = {
    "array_agg", "avg", "bit_and", "bit_or", "bit_xor", "bool_and", "bool_or", "corr",
    "count", "covar_pop", "covar_samp", "cume_dist", "dense_rank", "every", "first_value",
    "json_agg", "json_object_agg", "jsonb_agg", "jsonb_object_agg", "lag", "last_value",
    "lead", "max", "min", "mode", "nth_value", "ntile", "percent_rank", "percentile_cont",
    "percentile_disc", "range_agg", "range_intersect_agg", "rank", "regr_avgx", "regr_avgy",
    "regr_count", "regr_intercept", "regr_r2", "regr_slope", "regr_sxx", "regr_sxy",
    "regr_syy", "row_number", "stddev", "stddev_pop", "stddev_samp", "string_agg", "sum",
    "var_pop", "var_samp", "variance",
};

/* Built-in scalar and set-returning functions a read-only query may call.
 * Absent on purpose: anything that reads files or large objects, runs a
 * query given as text (query_to_xml, ts_stat, ...), sleeps, signals or
 * changes settings, sequences, advisory locks, dblink, statistics readers. */
static const char *const scalar_functions[] = {
    "abs", "acos", "acosd", "acosh", "age", "array_append", "array_cat", "array_dims",
    "array_fill", "array_length", "array_lower", "array_ndims", "array_position",
    "array_positions", "array_prepend", "array_remove", "array_replace", "array_to_json",
    "array_to_string", "array_upper", "ascii", "asin", "asind", "asinh", "atan", "atan2",
    "atan2d", "atand", "atanh", "bit_count", "bit_length", "bool", "btrim", "cardinality",
    "cbrt", "ceil", "ceiling", "char_length", "character_length", "chr", "clock_timestamp",
    "col_description", "concat", "concat_ws", "cos", "cosd", "cosh", "cot", "cotd",
    "current_database", "current_schema", "current_schemas", "current_setting", "date",
    "date_bin", "date_part", "date_trunc", "daterange", "decode", "degrees", "div", "encode",
    "exp", "extract", "factorial", "float4", "float8", "floor", "format", "format_type",
    "gcd", "gen_random_uuid", "generate_series", "generate_subscripts", "get_bit",
    "get_byte", "has_any_column_privilege", "has_column_privilege",
    "has_database_privilege", "has_function_privilege", "has_schema_privilege",
    "has_sequence_privilege", "has_table_privilege", "has_type_privilege", "initcap",
    "int2", "int4", "int4range", "int8", "int8range", "interval", "isempty", "isfinite",
    "json_array_elements", "json_array_elements_text", "json_array_length",
    "json_build_array", "json_build_object", "json_each", "json_each_text",
    "json_extract_path", "json_extract_path_text", "json_object", "json_object_keys",
    "json_populate_record", "json_populate_recordset", "json_strip_nulls", "json_to_record",
    "json_to_recordset", "json_typeof", "jsonb_array_elements", "jsonb_array_elements_text",
    "jsonb_array_length", "jsonb_build_array", "jsonb_build_object", "jsonb_each",
    "jsonb_each_text", "jsonb_extract_path", "jsonb_extract_path_text", "jsonb_insert",
    "jsonb_object", "jsonb_object_keys", "jsonb_path_exists", "jsonb_path_match",
    "jsonb_path_query", "jsonb_path_query_array", "jsonb_path_query_first",
    "jsonb_populate_record", "jsonb_populate_recordset", "jsonb_pretty", "jsonb_set",
    "jsonb_set_lax", "jsonb_strip_nulls", "jsonb_to_record", "jsonb_to_recordset",
    "jsonb_typeof", "justify_days", "justify_hours", "justify_interval", "lcm", "left",
    "length", "ln", "log", "log10", "lower", "lower_inc", "lower_inf", "lpad", "ltrim",
    "make_date", "make_interval", "make_time", "make_timestamp", "make_timestamptz", "md5",
    "min_scale", "mod", "normalize", "now", "num_nonnulls", "num_nulls", "numeric",
    "numrange", "obj_description", "octet_length", "overlay", "pg_backend_pid",
    "pg_char_to_encoding", "pg_collation_is_visible", "pg_column_size",
    "pg_conversion_is_visible", "pg_encoding_max_length", "pg_encoding_to_char",
    "pg_function_is_visible", "pg_get_constraintdef", "pg_get_expr",
    "pg_get_function_arguments", "pg_get_function_identity_arguments",
    "pg_get_function_result", "pg_get_indexdef", "pg_get_keywords", "pg_get_partkeydef",
    "pg_get_serial_sequence", "pg_get_statisticsobjdef_columns", "pg_get_triggerdef",
    "pg_get_userbyid", "pg_get_viewdef", "pg_is_in_recovery", "pg_opclass_is_visible",
    "pg_operator_is_visible", "pg_options_to_table", "pg_postmaster_start_time",
    "pg_relation_is_publishable", "pg_size_pretty", "pg_table_is_visible",
    "pg_tablespace_location", "pg_ts_config_is_visible", "pg_type_is_visible", "pg_typeof",
    "phraseto_tsquery", "pi", "plainto_tsquery", "position", "pow", "power",
    "quote_ident", "quote_literal", "quote_nullable", "radians", "random", "regexp_count",
    "regexp_instr", "regexp_like", "regexp_match", "regexp_matches", "regexp_replace",
    "regexp_split_to_array", "regexp_split_to_table", "regexp_substr", "repeat", "replace",
    "reverse", "right", "round", "row_to_json", "rpad", "rtrim", "scale", "setweight",
    "sha224", "sha256", "sha384", "sha512", "shobj_description", "sign", "sin", "sind",
    "sinh", "split_part", "sqrt", "starts_with", "statement_timestamp", "string_to_array",
    "string_to_table", "strpos", "substr", "substring", "tan", "tand", "tanh", "text",
    "time", "timeofday", "timestamp", "timestamptz", "timezone", "to_ascii", "to_char",
    "to_date", "to_hex", "to_json", "to_jsonb", "to_number", "to_timestamp", "to_tsquery",
    "to_tsvector", "transaction_timestamp", "translate", "trim", "trim_scale", "trunc",
    "ts_headline", "ts_rank", "ts_rank_cd", "tsrange", "tstzrange", "unistr", "unnest",
    "upper", "upper_inc", "upper_inf", "varchar", "version", "websearch_to_tsquery",
    "width_bucket",
};

/* Functions whose result changes between two runs of the same text: a
 * statement calling one is not cacheable. */
static const char *const volatile_functions[] = {
    "clock_timestamp", "current_setting", "gen_random_uuid", "now", "pg_backend_pid",
    "random", "statement_timestamp", "timeofday", "transaction_timestamp",
};

/* Settings a client may SET/RESET; everything else (search_path, role,
 * session_authorization, ...) is pinned by pgwarden. */
static const char *const settable[] = {
    "application_name", "bytea_output", "client_encoding", "client_min_messages",
    "datestyle", "default_transaction_isolation", "default_transaction_read_only",
    "extra_float_digits", "idle_in_transaction_session_timeout", "intervalstyle",
    "jit", "lock_timeout", "session characteristics", "standard_conforming_strings",
    "statement_timeout", "timezone", "transaction", "transaction_isolation",
    "transaction_read_only", "work_mem",
};

static const char *const leakproof_operators[] = {"<", "<=", "<>", "=", ">", ">="};

static bool in_list(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}
#define IN_LIST(list, s) in_list((list), PGW_ARRAY_LEN(list), (s))

/* Catalog relations. A filter is a boolean SQL expression over alias r, in
 * which %R stands for the set of readable relation OIDs. */
typedef struct CatalogRule {
    const char *schema;
    const char *name;
    const char *filter; /* NULL: readable as is; "" : refused */
} CatalogRule;

#define REFUSED ""
static const CatalogRule catalog_rules[] = {
    {"pg_catalog", "pg_class", "r.oid IN (%R)"},
    {"pg_catalog", "pg_attribute", "r.attrelid IN (%R) AND NOT %H(r.attrelid, r.attname)"},
    {"pg_catalog", "pg_attrdef", "r.adrelid IN (%R)"},
    {"pg_catalog", "pg_index", "r.indrelid IN (%R)"},
    {"pg_catalog", "pg_constraint",
     "(r.conrelid = 0 OR r.conrelid IN (%R)) AND (r.confrelid = 0 OR r.confrelid IN (%R))"},
    {"pg_catalog", "pg_description",
     "(r.classoid <> 'pg_catalog.pg_class'::pg_catalog.regclass OR r.objoid IN (%R))"},
    {"pg_catalog", "pg_inherits", "r.inhrelid IN (%R) AND r.inhparent IN (%R)"},
    {"pg_catalog", "pg_trigger", "r.tgrelid IN (%R)"},
    {"pg_catalog", "pg_policy", "r.polrelid IN (%R)"},
    {"pg_catalog", "pg_rewrite", "r.ev_class IN (%R)"},
    {"pg_catalog", "pg_statistic_ext", "r.stxrelid IN (%R)"},
    {"pg_catalog", "pg_partitioned_table", "r.partrelid IN (%R)"},
    {"pg_catalog", "pg_sequence", "r.seqrelid IN (%R)"},
    {"pg_catalog", "pg_foreign_table", "r.ftrelid IN (%R)"},
    {"pg_catalog", "pg_depend",
     "(r.classid <> 'pg_catalog.pg_class'::pg_catalog.regclass OR r.objid IN (%R)) AND "
     "(r.refclassid <> 'pg_catalog.pg_class'::pg_catalog.regclass OR r.refobjid IN (%R))"},
    {"pg_catalog", "pg_type",
     "(r.typrelid = 0 OR r.typrelid IN (%R)) AND NOT EXISTS (SELECT 1 FROM "
     "pg_catalog.pg_type e WHERE e.oid = r.typelem AND e.typrelid <> 0 AND "
     "e.typrelid NOT IN (%R))"},
    {"pg_catalog", "pg_tables", "%N(r.schemaname, r.tablename)"},
    {"pg_catalog", "pg_views", "%N(r.schemaname, r.viewname)"},
    {"pg_catalog", "pg_matviews", "%N(r.schemaname, r.matviewname)"},
    {"pg_catalog", "pg_indexes", "%N(r.schemaname, r.tablename)"},
    {"pg_catalog", "pg_sequences", "%N(r.schemaname, r.sequencename)"},
    {"information_schema", "tables", "%N(r.table_schema, r.table_name)"},
    {"information_schema", "views", "%N(r.table_schema, r.table_name)"},
    {"information_schema", "columns",
     "%N(r.table_schema, r.table_name) AND NOT %C(r.table_schema, r.table_name, "
     "r.column_name)"},
    {"information_schema", "table_constraints", "%N(r.table_schema, r.table_name)"},
    {"information_schema", "key_column_usage", "%N(r.table_schema, r.table_name)"},
    {"information_schema", "constraint_column_usage", "%N(r.table_schema, r.table_name)"},
    {"information_schema", "table_privileges", "%N(r.table_schema, r.table_name)"},
    {"information_schema", "column_privileges",
     "%N(r.table_schema, r.table_name) AND NOT %C(r.table_schema, r.table_name, "
     "r.column_name)"},
    {"information_schema", "schemata", NULL},
    {"information_schema", "routines", NULL},
    {"information_schema", "parameters", NULL},
    {"information_schema", "character_sets", NULL},
    {"information_schema", "collations", NULL},
    {"pg_catalog", "pg_namespace", NULL},
    {"pg_catalog", "pg_am", NULL},
    {"pg_catalog", "pg_collation", NULL},
    {"pg_catalog", "pg_proc", NULL},
    {"pg_catalog", "pg_database", NULL},
    {"pg_catalog", "pg_roles", NULL},
    {"pg_catalog", "pg_user", NULL},
    {"pg_catalog", "pg_auth_members", NULL},
    {"pg_catalog", "pg_settings", NULL},
    {"pg_catalog", "pg_tablespace", NULL},
    {"pg_catalog", "pg_extension", NULL},
    {"pg_catalog", "pg_available_extensions", NULL},
    {"pg_catalog", "pg_enum", NULL},
    {"pg_catalog", "pg_range", NULL},
    {"pg_catalog", "pg_opclass", NULL},
    {"pg_catalog", "pg_opfamily", NULL},
    {"pg_catalog", "pg_operator", NULL},
    {"pg_catalog", "pg_cast", NULL},
    {"pg_catalog", "pg_language", NULL},
    {"pg_catalog", "pg_aggregate", NULL},
    {"pg_catalog", "pg_conversion", NULL},
    {"pg_catalog", "pg_ts_config", NULL},
    {"pg_catalog", "pg_ts_dict", NULL},
    {"pg_catalog", "pg_ts_parser", NULL},
    {"pg_catalog", "pg_ts_template", NULL},
    {"pg_catalog", "pg_timezone_names", NULL},
    {"pg_catalog", "pg_timezone_abbrevs", NULL},
    {"pg_catalog", "pg_cursors", NULL},
    {"pg_catalog", "pg_prepared_statements", NULL},
    {"pg_catalog", "pg_foreign_data_wrapper", NULL},
    {"pg_catalog", "pg_foreign_server", NULL},
    {"pg_catalog", "pg_event_trigger", NULL},
    {"pg_catalog", "pg_publication", NULL},
    {"pg_catalog", "pg_shdescription", NULL},
};

/* ------------------------------------------------------------------------ */
/* Rewrite state                                                              */
/* ------------------------------------------------------------------------ */

/* CTE names visible at a point: the first nvisible CTEs of each enclosing
 * WITH (a non-recursive CTE sees only the ones before it). */
typedef struct Scope {
    const struct Scope *up;
    const PgQuery__WithClause *with;
    size_t nvisible;
} Scope;

typedef struct Replacement {
    PgQuery__Node **slot; /* the RangeVar node to replace */
    char *body; /* "(SELECT ... WHERE ..." */
    char *tail; /* ") AS alias"; the fence, if any, goes between */
} Replacement;

typedef struct Rewrite {
    const PgwPolicyCtx *ctx;
    PgwPolicyResult *out;
    bool refused;
    bool leaky; /* some pushable expression is not leak-proof: fence */
    bool volatile_seen;
    char **search_path;
    size_t nsearch_path;
    size_t nrepl;
    Replacement *repl;
    size_t ncolfix;
    PgQuery__ColumnRef **colfix; /* schema.table.column references to shorten */
} Rewrite;

/* Where the walker is: leak analysis exempts the outermost SELECT list and
 * aggregate arguments. */
typedef struct Walk {
    Rewrite *rw;
    const Scope *scope;
    bool exempt;
} Walk;

static int refuse(Rewrite *rw, const char *sqlstate, const char *hint, const char *fmt, ...)
    PGW_PRINTF(4, 5);

static int refuse(Rewrite *rw, const char *sqlstate, const char *hint, const char *fmt, ...)
{
    if (rw->refused)
        return -1;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rw->refused = true;
    rw->out->decision = PGW_POLICY_REFUSE;
    snprintf(rw->out->sqlstate, sizeof(rw->out->sqlstate), "%s", sqlstate);
    rw->out->message = pgw_strdup(msg);
    rw->out->reason = pgw_strdup(msg);
    rw->out->hint = hint != NULL ? pgw_strdup(hint) : NULL;
    return -1;
}

static void append_ident(PgwBuf *b, const char *s)
{
    buf_append_byte(b, '"');
    for (; *s != '\0'; s++) {
        if (*s == '"')
            buf_append_byte(b, '"');
        buf_append_byte(b, (uint8_t)*s);
    }
    buf_append_byte(b, '"');
}

static void append_literal(PgwBuf *b, const char *s)
{
    buf_append_byte(b, '\'');
    for (; *s != '\0'; s++) {
        if (*s == '\'')
            buf_append_byte(b, '\'');
        buf_append_byte(b, (uint8_t)*s);
    }
    buf_append_byte(b, '\'');
}

/* Replace a protobuf string field; unset fields point at protobuf-c's static
 * empty string, which must not be freed. */
static void set_string(char **field, const char *value)
{
    char *copy = pgw_strdup(value); /* value may be *field itself */
    if (*field != NULL && *field != protobuf_c_empty_string)
        free(*field);
    *field = copy;
}

static const char *string_value(const PgQuery__Node *n)
{
    return NODE(n, STRING) ? n->string->sval : NULL;
}

/* ------------------------------------------------------------------------ */
/* Policy lookups                                                             */
/* ------------------------------------------------------------------------ */

static const PgwTablePolicy *table_policy(const PgwConfig *cfg, const char *schema,
                                          const char *name)
{
    for (size_t i = 0; i < cfg->ntables; i++)
        if (strcmp(cfg->tables[i].schema, schema) == 0 && strcmp(cfg->tables[i].name, name) == 0)
            return &cfg->tables[i];
    return NULL;
}

static bool is_catalog_schema(const char *schema)
{
    return strcmp(schema, "pg_catalog") == 0 || strcmp(schema, "information_schema") == 0;
}

/* May the tenant read user relation schema.name (ignoring whether the
 * backend has it)? */
static bool relation_readable(const PgwConfig *cfg, const char *schema, const char *name)
{
    const PgwTablePolicy *tp = table_policy(cfg, schema, name);
    if (tp != NULL)
        return !tp->hidden;
    return cfg->default_access == PGW_ACCESS_ALLOW;
}

static const CatalogRule *catalog_rule(const char *schema, const char *name)
{
    for (size_t i = 0; i < PGW_ARRAY_LEN(catalog_rules); i++)
        if (strcmp(catalog_rules[i].schema, schema) == 0 &&
            strcmp(catalog_rules[i].name, name) == 0)
            return &catalog_rules[i];
    return NULL;
}

static int split_search_path(Rewrite *rw)
{
    const char *sp = rw->ctx->cfg->search_path;
    if (sp == NULL || *sp == '\0')
        sp = "public";
    const char *p = sp;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        const char *start = p;
        size_t len;
        if (*p == '"') {
            start = ++p;
            while (*p != '\0' && *p != '"')
                p++;
            len = (size_t)(p - start);
            if (*p == '"')
                p++;
        } else {
            while (*p != '\0' && *p != ',' && *p != ' ')
                p++;
            len = (size_t)(p - start);
        }
        char *name = pgw_strndup(start, len);
        if (strcmp(name, "$user") == 0 || strcmp(name, "pg_catalog") == 0) {
            free(name);
            continue;
        }
        if (start[-1] != '"')
            for (char *c = name; *c != '\0'; c++)
                *c = (char)tolower((unsigned char)*c);
        rw->search_path = pgw_realloc(rw->search_path, (rw->nsearch_path + 1) * sizeof(char *));
        rw->search_path[rw->nsearch_path++] = name;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* SQL for replacements                                                       */
/* ------------------------------------------------------------------------ */

/* The row filter with every $tenant outside quotes replaced by a literal. */
static void append_row_filter(PgwBuf *b, const char *filter, const char *tenant_id)
{
    const char *p = filter;
    while (*p != '\0') {
        if (*p == '\'' || *p == '"') {
            char q = *p;
            buf_append_byte(b, (uint8_t)*p++);
            while (*p != '\0') {
                buf_append_byte(b, (uint8_t)*p);
                if (*p++ == q) {
                    if (*p != q)
                        break;
                    buf_append_byte(b, (uint8_t)*p++);
                }
            }
            continue;
        }
        if (strncmp(p, "$tenant", 7) == 0 && !isalnum((unsigned char)p[7]) && p[7] != '_') {
            append_literal(b, tenant_id);
            p += 7;
            continue;
        }
        buf_append_byte(b, (uint8_t)*p++);
    }
}

static const PgwColumnMask *column_mask(const PgwTablePolicy *tp, const char *column)
{
    if (tp == NULL)
        return NULL;
    for (size_t i = 0; i < tp->nmasks; i++)
        if (strcmp(tp->masks[i].column, column) == 0)
            return &tp->masks[i];
    return NULL;
}

static void append_masked_column(PgwBuf *b, const PgwSchemaColumn *c, PgwMaskKind kind)
{
    switch (kind) {
    case PGW_MASK_NULL:
        buf_printf(b, "NULL::%s", c->type);
        break;
    case PGW_MASK_REDACT:
        if (c->is_text) {
            buf_append_str(b, "CAST(CASE WHEN ");
            append_ident(b, c->name);
            buf_printf(b, " IS NULL THEN NULL ELSE '***' END AS %s)", c->type);
        } else {
            buf_printf(b, "NULL::%s", c->type);
        }
        break;
    case PGW_MASK_HASH:
        buf_append_str(b, "pg_catalog.md5(");
        append_ident(b, c->name);
        buf_append_str(b, "::text)");
        break;
    case PGW_MASK_PARTIAL:
        /* repeat('x', n-4) || last 4 characters; shorter values keep all. */
        buf_append_str(b, "pg_catalog.repeat('x', pg_catalog.length(");
        append_ident(b, c->name);
        buf_append_str(b, "::text) - 4) || pg_catalog.\"right\"(");
        append_ident(b, c->name);
        buf_append_str(b, "::text, 4)");
        break;
    case PGW_MASK_HIDE:
        break;
    }
    buf_append_str(b, " AS ");
    append_ident(b, c->name);
}

static int add_replacement(Rewrite *rw, PgQuery__Node **slot, PgwBuf *body,
                           const PgQuery__RangeVar *rv)
{
    PgwBuf tail;
    buf_init(&tail);
    buf_append_str(&tail, ") AS ");
    append_ident(&tail, rv->alias != NULL ? rv->alias->aliasname : rv->relname);
    rw->repl = pgw_realloc(rw->repl, (rw->nrepl + 1) * sizeof(*rw->repl));
    rw->repl[rw->nrepl].slot = slot;
    rw->repl[rw->nrepl].body = buf_steal_str(body);
    rw->repl[rw->nrepl].tail = buf_steal_str(&tail);
    rw->nrepl++;
    return 0;
}

/* "%R": OIDs of relations the tenant may read, plus their indexes. */
static void append_readable_pair_cond(Rewrite *rw, PgwBuf *b, const char *ns, const char *rel)
{
    const PgwConfig *cfg = rw->ctx->cfg;
    bool allow = cfg->default_access == PGW_ACCESS_ALLOW;
    bool any = false;
    buf_printf(b, "(%s::text IN ('pg_catalog', 'information_schema') OR ", ns);
    if (allow)
        buf_append_str(b, "NOT ");
    buf_printf(b, "(%s::text, %s::text) IN (VALUES ", ns, rel);
    for (size_t i = 0; i < cfg->ntables; i++) {
        const PgwTablePolicy *tp = &cfg->tables[i];
        if (tp->hidden != allow)
            continue;
        buf_append_str(b, any ? ", (" : "(");
        append_literal(b, tp->schema);
        buf_append_str(b, ", ");
        append_literal(b, tp->name);
        buf_append_byte(b, ')');
        any = true;
    }
    if (!any)
        buf_append_str(b, "(NULL, NULL)");
    buf_append_str(b, "))");
}

static void append_readable_oids(Rewrite *rw, PgwBuf *b)
{
    buf_append_str(b, "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                      "ON n.oid = c.relnamespace WHERE ");
    append_readable_pair_cond(rw, b, "n.nspname", "c.relname");
    buf_append_str(b, " UNION ALL SELECT i.indexrelid FROM pg_catalog.pg_index i JOIN "
                      "pg_catalog.pg_class c ON c.oid = i.indrelid JOIN pg_catalog.pg_namespace "
                      "n ON n.oid = c.relnamespace WHERE ");
    append_readable_pair_cond(rw, b, "n.nspname", "c.relname");
}

/* Hidden columns (mask hide) as a VALUES list of (schema, table, column). */
static void append_hidden_columns(Rewrite *rw, PgwBuf *b)
{
    const PgwConfig *cfg = rw->ctx->cfg;
    bool any = false;
    buf_append_str(b, "(VALUES ");
    for (size_t i = 0; i < cfg->ntables; i++)
        for (size_t m = 0; m < cfg->tables[i].nmasks; m++) {
            if (cfg->tables[i].masks[m].kind != PGW_MASK_HIDE)
                continue;
            buf_append_str(b, any ? ", (" : "(");
            append_literal(b, cfg->tables[i].schema);
            buf_append_str(b, ", ");
            append_literal(b, cfg->tables[i].name);
            buf_append_str(b, ", ");
            append_literal(b, cfg->tables[i].masks[m].column);
            buf_append_byte(b, ')');
            any = true;
        }
    if (!any)
        buf_append_str(b, "(NULL, NULL, NULL)");
    buf_append_byte(b, ')');
}

/* Split "f(a, b, c)" argument text of a filter placeholder. */
static const char *placeholder_args(const char *p, char args[3][64], int *nargs)
{
    *nargs = 0;
    if (*p != '(')
        return p;
    p++;
    while (*p != '\0' && *p != ')' && *nargs < 3) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = 0;
        while (*p != '\0' && *p != ',' && *p != ')' && n < 63)
            args[*nargs][n++] = *p++;
        args[*nargs][n] = '\0';
        (*nargs)++;
    }
    return *p == ')' ? p + 1 : p;
}

static void append_catalog_filter(Rewrite *rw, PgwBuf *b, const char *filter)
{
    for (const char *p = filter; *p != '\0';) {
        if (*p != '%') {
            buf_append_byte(b, (uint8_t)*p++);
            continue;
        }
        char kind = p[1];
        char args[3][64];
        int nargs;
        p = placeholder_args(p + 2, args, &nargs);
        if (kind == 'R') {
            append_readable_oids(rw, b);
        } else if (kind == 'N' && nargs == 2) {
            append_readable_pair_cond(rw, b, args[0], args[1]);
        } else if (kind == 'C' && nargs == 3) {
            buf_printf(b, "(%s::text, %s::text, %s::text) IN (SELECT * FROM ", args[0],
                       args[1], args[2]);
            append_hidden_columns(rw, b);
            buf_append_str(b, " h)");
        } else if (kind == 'H' && nargs == 2) {
            buf_append_str(b, "EXISTS (SELECT 1 FROM pg_catalog.pg_class hc JOIN "
                              "pg_catalog.pg_namespace hn ON hn.oid = hc.relnamespace, ");
            append_hidden_columns(rw, b);
            buf_printf(b, " h(s, t, c) WHERE hc.oid = %s AND hn.nspname::text = h.s AND "
                          "hc.relname::text = h.t AND %s::text = h.c)",
                       args[0], args[1]);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Relations                                                                  */
/* ------------------------------------------------------------------------ */

static bool cte_visible(const Scope *scope, const char *name)
{
    for (; scope != NULL; scope = scope->up) {
        if (scope->with == NULL)
            continue;
        for (size_t i = 0; i < scope->nvisible; i++) {
            const PgQuery__Node *n = scope->with->ctes[i];
            if (NODE(n, COMMON_TABLE_EXPR) && strcmp(n->common_table_expr->ctename, name) == 0)
                return true;
        }
    }
    return false;
}

static int refuse_missing(Rewrite *rw, const PgQuery__RangeVar *rv)
{
    if (rv->schemaname[0] != '\0')
        return refuse(rw, SQLSTATE_UNDEFINED_TABLE, NULL, "relation \"%s.%s\" does not exist",
                      rv->schemaname, rv->relname);
    return refuse(rw, SQLSTATE_UNDEFINED_TABLE, NULL, "relation \"%s\" does not exist",
                  rv->relname);
}

static int rewrite_catalog(Rewrite *rw, PgQuery__Node **slot, PgQuery__RangeVar *rv,
                           const char *schema)
{
    const CatalogRule *rule = catalog_rule(schema, rv->relname);
    if (rule == NULL && strcmp(schema, "pg_catalog") == 0 &&
        schema_table(rw->ctx->schema, schema, rv->relname) == NULL)
        return refuse_missing(rw, rv);
    if (rule == NULL || (rule->filter != NULL && rule->filter[0] == '\0'))
        return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                      "pgwarden: catalog relation %s.%s is not available", schema,
                      rv->relname);
    if (rule->filter == NULL) {
        /* Readable as is; pin the schema so search_path cannot matter. */
        set_string(&rv->schemaname, schema);
        return 0;
    }
    PgwBuf b;
    buf_init(&b);
    buf_printf(&b, "(SELECT * FROM %s.%s r WHERE ", schema, rule->name);
    append_catalog_filter(rw, &b, rule->filter);
    return add_replacement(rw, slot, &b, rv);
}

static int rewrite_user_relation(Rewrite *rw, PgQuery__Node **slot, PgQuery__RangeVar *rv,
                                 const PgwSchemaTable *t)
{
    const PgwTablePolicy *tp = table_policy(rw->ctx->cfg, t->schema, t->name);
    bool plain = tp == NULL || (tp->row_filter == NULL && tp->nmasks == 0);

    if (plain) {
        /* Nothing to filter or mask: keep the reference, pinned to the schema
         * we resolved, so the backend reads exactly what we checked. */
        set_string(&rv->schemaname, t->schema);
        set_string(&rv->catalogname, "");
        return 0;
    }
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, "(SELECT ");
    bool first = true;
    for (size_t i = 0; i < t->ncolumns; i++) {
        const PgwSchemaColumn *c = &t->columns[i];
        const PgwColumnMask *m = column_mask(tp, c->name);
        if (m != NULL && m->kind == PGW_MASK_HIDE)
            continue;
        if (!first)
            buf_append_str(&b, ", ");
        first = false;
        if (m == NULL)
            append_ident(&b, c->name);
        else
            append_masked_column(&b, c, m->kind);
    }
    buf_append_str(&b, " FROM ");
    if (!rv->inh)
        buf_append_str(&b, "ONLY ");
    append_ident(&b, t->schema);
    buf_append_byte(&b, '.');
    append_ident(&b, t->name);
    if (tp->row_filter != NULL && tp->row_filter[0] != '\0') {
        buf_append_str(&b, " WHERE (");
        append_row_filter(&b, tp->row_filter, rw->ctx->tenant->id != NULL
                                                  ? rw->ctx->tenant->id
                                                  : rw->ctx->tenant->name);
        buf_append_byte(&b, ')');
    }
    return add_replacement(rw, slot, &b, rv);
}

/* A RangeVar in FROM: a CTE reference, a catalog, or a user relation. */
static int visit_range_var(Walk *w, PgQuery__Node **slot)
{
    Rewrite *rw = w->rw;
    PgQuery__RangeVar *rv = (*slot)->range_var;
    const PgwConfig *cfg = rw->ctx->cfg;

    if (rv->schemaname[0] == '\0' && cte_visible(w->scope, rv->relname))
        return 0;
    if (rv->schemaname[0] != '\0') {
        if (is_catalog_schema(rv->schemaname))
            return rewrite_catalog(rw, slot, rv, rv->schemaname);
        const PgwSchemaTable *t = schema_table(rw->ctx->schema, rv->schemaname, rv->relname);
        if (t == NULL || !relation_readable(cfg, t->schema, t->name))
            return refuse_missing(rw, rv);
        return rewrite_user_relation(rw, slot, rv, t);
    }
    /* Unqualified: pg_catalog comes first, as PostgreSQL does implicitly. */
    if (schema_table(rw->ctx->schema, "pg_catalog", rv->relname) != NULL ||
        catalog_rule("pg_catalog", rv->relname) != NULL)
        return rewrite_catalog(rw, slot, rv, "pg_catalog");
    for (size_t i = 0; i < rw->nsearch_path; i++) {
        const char *ns = rw->search_path[i];
        const PgwSchemaTable *t = schema_table(rw->ctx->schema, ns, rv->relname);
        if (t == NULL)
            continue;
        if (strcmp(ns, "information_schema") == 0)
            return rewrite_catalog(rw, slot, rv, ns);
        /* A relation the tenant may not read does not exist for it, so the
         * search goes on exactly as if it were absent. */
        if (relation_readable(cfg, t->schema, t->name))
            return rewrite_user_relation(rw, slot, rv, t);
    }
    return refuse_missing(rw, rv);
}

/* ------------------------------------------------------------------------ */
/* Expressions                                                                */
/* ------------------------------------------------------------------------ */

static int walk(Walk *w, ProtobufCMessage *msg);
static int walk_select(Rewrite *rw, PgQuery__SelectStmt *s, const Scope *up, bool outermost);

static bool user_function_allowed(const PgwConfig *cfg, const char *schema, const char *name)
{
    for (size_t i = 0; i < cfg->nallowed_functions; i++) {
        const char *f = cfg->allowed_functions[i];
        const char *dot = strrchr(f, '.');
        const char *fname = dot != NULL ? dot + 1 : f;
        if (strcmp(fname, name) != 0)
            continue;
        if (schema == NULL || dot == NULL)
            return true;
        if (strlen(schema) == (size_t)(dot - f) && strncmp(f, schema, (size_t)(dot - f)) == 0)
            return true;
    }
    return false;
}

static int visit_func_call(Walk *w, PgQuery__FuncCall *fc)
{
    Rewrite *rw = w->rw;
    const char *schema = NULL, *name = NULL;
    if (fc->n_funcname == 1) {
        name = string_value(fc->funcname[0]);
    } else if (fc->n_funcname == 2) {
        schema = string_value(fc->funcname[0]);
        name = string_value(fc->funcname[1]);
    }
    if (name == NULL)
        return refuse(rw, SQLSTATE_UNDEFINED_FUNCTION, NULL, "function does not exist");

    bool builtin_schema = schema == NULL || strcmp(schema, "pg_catalog") == 0;
    bool aggregate = builtin_schema && IN_LIST(aggregate_functions, name);
    bool allowed = (builtin_schema && (aggregate || IN_LIST(scalar_functions, name))) ||
                   user_function_allowed(rw->ctx->cfg, schema, name);
    if (!allowed) {
        if (schema != NULL)
            return refuse(rw, SQLSTATE_UNDEFINED_FUNCTION,
                          "pgwarden lets through only allowlisted functions.",
                          "function %s.%s does not exist", schema, name);
        return refuse(rw, SQLSTATE_UNDEFINED_FUNCTION,
                      "pgwarden lets through only allowlisted functions.",
                      "function %s does not exist", name);
    }
    if (builtin_schema && IN_LIST(volatile_functions, name))
        rw->volatile_seen = true;

    Walk inner = *w;
    if (aggregate || fc->over != NULL) {
        inner.exempt = true;
    } else if (!w->exempt) {
        rw->leaky = true;
    }
    return walk(&inner, &fc->base);
}

static bool is_constant(const PgQuery__Node *n)
{
    if (NODE(n, A_CONST) || NODE(n, PARAM_REF))
        return true;
    return NODE(n, TYPE_CAST) && is_constant(n->type_cast->arg);
}

static int resolve_regclass_literal(Walk *w, const char *text);

static int visit_type_cast(Walk *w, PgQuery__TypeCast *tc)
{
    const PgQuery__TypeName *tn = tc->type_name;
    const char *tname = tn != NULL && tn->n_names > 0 ? string_value(tn->names[tn->n_names - 1])
                                                      : NULL;
    if (tname != NULL && strcmp(tname, "regclass") == 0) {
        /* A name is checked like a FROM reference; an OID is only accepted
         * when it comes from a (virtualized) catalog column. */
        const PgQuery__Node *arg = tc->arg;
        if (NODE(arg, A_CONST) && arg->a_const->val_case == PG_QUERY__A__CONST__VAL_SVAL) {
            if (resolve_regclass_literal(w, arg->a_const->sval->sval) < 0)
                return -1;
        } else if (!NODE(arg, COLUMN_REF)) {
            return refuse(w->rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                          "pgwarden: casting an expression to regclass is not allowed");
        }
    }
    if (!w->exempt && !is_constant(tc->arg))
        w->rw->leaky = true;
    return walk(w, &tc->base);
}

static int visit_a_expr(Walk *w, PgQuery__AExpr *e)
{
    const char *op = e->n_name > 0 ? string_value(e->name[e->n_name - 1]) : NULL;
    if (e->n_name == 2) {
        const char *schema = string_value(e->name[0]);
        if (schema == NULL || strcmp(schema, "pg_catalog") != 0)
            return refuse(w->rw, SQLSTATE_UNDEFINED_FUNCTION, NULL,
                          "operator does not exist: %s.%s", schema != NULL ? schema : "?",
                          op != NULL ? op : "?");
    }
    if (!w->exempt) {
        switch (e->kind) {
        case PG_QUERY__A__EXPR__KIND__AEXPR_OP:
        case PG_QUERY__A__EXPR__KIND__AEXPR_OP_ANY:
        case PG_QUERY__A__EXPR__KIND__AEXPR_OP_ALL:
        case PG_QUERY__A__EXPR__KIND__AEXPR_IN:
            if (op == NULL || !IN_LIST(leakproof_operators, op))
                w->rw->leaky = true;
            break;
        case PG_QUERY__A__EXPR__KIND__AEXPR_DISTINCT:
        case PG_QUERY__A__EXPR__KIND__AEXPR_NOT_DISTINCT:
        case PG_QUERY__A__EXPR__KIND__AEXPR_NULLIF:
        case PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN:
        case PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN:
        case PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN_SYM:
        case PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN_SYM:
            break;
        default:
            w->rw->leaky = true;
        }
    }
    return walk(w, &e->base);
}

static int visit_column_ref(Walk *w, PgQuery__ColumnRef *cr)
{
    /* schema.table.column (or db.schema.table.column) can no longer name a
     * derived table; keep table.column. */
    if (cr->n_fields >= 3 && string_value(cr->fields[cr->n_fields - 3]) != NULL) {
        const char *ns = string_value(cr->fields[cr->n_fields - 3]);
        const char *rel = string_value(cr->fields[cr->n_fields - 2]);
        if (rel != NULL && schema_table(w->rw->ctx->schema, ns, rel) != NULL) {
            Rewrite *rw = w->rw;
            rw->colfix = pgw_realloc(rw->colfix, (rw->ncolfix + 1) * sizeof(*rw->colfix));
            rw->colfix[rw->ncolfix++] = cr;
        }
    }
    return walk(w, &cr->base);
}

static int visit(PgQuery__Node **slot, void *arg)
{
    Walk *w = arg;
    PgQuery__Node *n = *slot;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_SELECT_STMT:
        return walk_select(w->rw, n->select_stmt, w->scope, false);
    case PG_QUERY__NODE__NODE_RANGE_VAR:
        return visit_range_var(w, slot);
    case PG_QUERY__NODE__NODE_FUNC_CALL:
        return visit_func_call(w, n->func_call);
    case PG_QUERY__NODE__NODE_TYPE_CAST:
        return visit_type_cast(w, n->type_cast);
    case PG_QUERY__NODE__NODE_A_EXPR:
        return visit_a_expr(w, n->a_expr);
    case PG_QUERY__NODE__NODE_COLUMN_REF:
        return visit_column_ref(w, n->column_ref);
    case PG_QUERY__NODE__NODE_SUB_LINK: {
        /* A scalar subquery errors on a second row: data-dependent. */
        PgQuery__SubLinkType t = n->sub_link->sub_link_type;
        Walk inner = *w;
        inner.exempt = false;
        if (t == PG_QUERY__SUB_LINK_TYPE__EXPR_SUBLINK ||
            t == PG_QUERY__SUB_LINK_TYPE__ROWCOMPARE_SUBLINK ||
            t == PG_QUERY__SUB_LINK_TYPE__MULTIEXPR_SUBLINK)
            w->rw->leaky = w->rw->leaky || !w->exempt;
        return walk(&inner, &n->sub_link->base);
    }
    case PG_QUERY__NODE__NODE_SQLVALUE_FUNCTION:
    case PG_QUERY__NODE__NODE_CURRENT_OF_EXPR:
        /* CURRENT_TIMESTAMP, CURRENT_USER ...: not cacheable. */
        w->rw->volatile_seen = true;
        return 0;
    case PG_QUERY__NODE__NODE_RANGE_TABLE_SAMPLE:
        return refuse(w->rw, SQLSTATE_FEATURE_NOT_SUPPORTED, NULL,
                      "pgwarden: TABLESAMPLE is not supported");
    case PG_QUERY__NODE__NODE_XML_EXPR:
    case PG_QUERY__NODE__NODE_XML_SERIALIZE:
    case PG_QUERY__NODE__NODE_RANGE_TABLE_FUNC:
        if (!w->exempt)
            w->rw->leaky = true;
        return walk(w, policy_walk_inner(n));
    default:
        return walk(w, policy_walk_inner(n));
    }
}

static int walk(Walk *w, ProtobufCMessage *msg)
{
    if (policy_walk_children(msg, visit, w) < 0 || w->rw->refused)
        return -1;
    return 0;
}

static int walk_slot(Walk *w, PgQuery__Node **slot)
{
    if (*slot == NULL)
        return 0;
    if (visit(slot, w) < 0 || w->rw->refused)
        return -1;
    return 0;
}

static int walk_slots(Walk *w, PgQuery__Node **slots, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (walk_slot(w, &slots[i]) < 0)
            return -1;
    return 0;
}

static int resolve_regclass_literal(Walk *w, const char *text)
{
    /* Parse the name the way PostgreSQL would and check it as a relation. */
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, "SELECT 1 FROM ");
    buf_append_str(&b, text);
    char *sql = buf_steal_str(&b);
    PgQueryProtobufParseResult pr = pg_query_parse_protobuf(sql);
    free(sql);
    int rc = -1;
    PgQuery__ParseResult *tree = NULL;
    if (pr.error == NULL)
        tree = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
                                              (const uint8_t *)pr.parse_tree.data);
    if (tree == NULL || tree->n_stmts != 1 || !NODE(tree->stmts[0]->stmt, SELECT_STMT) ||
        tree->stmts[0]->stmt->select_stmt->n_from_clause != 1 ||
        !NODE(tree->stmts[0]->stmt->select_stmt->from_clause[0], RANGE_VAR)) {
        refuse(w->rw, SQLSTATE_UNDEFINED_TABLE, NULL, "relation \"%s\" does not exist", text);
        goto done;
    }
    /* Resolve against the same rules; the replacement it may produce is
     * discarded with this little tree. */
    Rewrite probe = *w->rw;
    probe.nrepl = 0;
    probe.repl = NULL;
    probe.ncolfix = 0;
    probe.colfix = NULL;
    Walk pw = {&probe, NULL, true};
    PgQuery__Node **slot = &tree->stmts[0]->stmt->select_stmt->from_clause[0];
    rc = visit_range_var(&pw, slot);
    for (size_t i = 0; i < probe.nrepl; i++) {
        free(probe.repl[i].body);
        free(probe.repl[i].tail);
    }
    free(probe.repl);
    if (probe.refused) {
        w->rw->refused = true;
        rc = -1;
    }
done:
    if (tree != NULL)
        pg_query__parse_result__free_unpacked(tree, NULL);
    pg_query_free_protobuf_parse_result(pr);
    return rc;
}

static int walk_select(Rewrite *rw, PgQuery__SelectStmt *s, const Scope *up, bool outermost)
{
    if (s->into_clause != NULL)
        return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                      "pgwarden: only read-only queries are allowed: SELECT INTO is refused");
    if (s->n_locking_clause > 0)
        return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                      "pgwarden: only read-only queries are allowed: SELECT FOR UPDATE/SHARE "
                      "is refused");

    Scope sc = {up, s->with_clause, 0};
    Walk inner = {rw, &sc, false};
    if (s->with_clause != NULL) {
        PgQuery__WithClause *wc = s->with_clause;
        for (size_t i = 0; i < wc->n_ctes; i++) {
            PgQuery__Node *n = wc->ctes[i];
            if (!NODE(n, COMMON_TABLE_EXPR))
                continue;
            PgQuery__CommonTableExpr *cte = n->common_table_expr;
            if (cte->ctequery != NULL && !NODE(cte->ctequery, SELECT_STMT))
                return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                              "pgwarden: only read-only queries are allowed: data-modifying "
                              "WITH is refused");
            sc.nvisible = wc->recursive ? wc->n_ctes : i;
            if (walk_slot(&inner, &cte->ctequery) < 0)
                return -1;
            if (cte->search_clause != NULL || cte->cycle_clause != NULL)
                if (walk(&inner, cte->search_clause != NULL ? &cte->search_clause->base
                                                             : &cte->cycle_clause->base) < 0)
                    return -1;
        }
        sc.nvisible = wc->n_ctes;
    }
    if (s->larg != NULL && walk_select(rw, s->larg, &sc, outermost) < 0)
        return -1;
    if (s->rarg != NULL && walk_select(rw, s->rarg, &sc, outermost) < 0)
        return -1;

    Walk shown = {rw, &sc, outermost};
    if (walk_slots(&inner, s->from_clause, s->n_from_clause) < 0 ||
        walk_slot(&inner, &s->where_clause) < 0 || walk_slot(&inner, &s->having_clause) < 0 ||
        walk_slots(&inner, s->values_lists, s->n_values_lists) < 0 ||
        walk_slots(&shown, s->target_list, s->n_target_list) < 0 ||
        walk_slots(&shown, s->distinct_clause, s->n_distinct_clause) < 0 ||
        walk_slots(&shown, s->group_clause, s->n_group_clause) < 0 ||
        walk_slots(&shown, s->window_clause, s->n_window_clause) < 0 ||
        walk_slots(&shown, s->sort_clause, s->n_sort_clause) < 0 ||
        walk_slot(&shown, &s->limit_offset) < 0 || walk_slot(&shown, &s->limit_count) < 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Statements                                                                 */
/* ------------------------------------------------------------------------ */

static const struct {
    const char *node;
    const char *kind;
} statement_kinds[] = {
    {"create_stmt", "CREATE TABLE"}, {"index_stmt", "CREATE INDEX"},
    {"view_stmt", "CREATE VIEW"}, {"createdb_stmt", "CREATE DATABASE"},
    {"dropdb_stmt", "DROP DATABASE"}, {"rule_stmt", "CREATE RULE"},
    {"create_table_as_stmt", "CREATE TABLE AS"}, {"do_stmt", "DO"},
    {"variable_set_stmt", "SET"}, {"rename_stmt", "ALTER ... RENAME"},
    {"copy_stmt", "COPY"}, {"prepare_stmt", "PREPARE"}, {"execute_stmt", "EXECUTE"},
    {"deallocate_stmt", "DEALLOCATE"}, {"grant_stmt", "GRANT"},
    {"grant_role_stmt", "GRANT"}, {"create_function_stmt", "CREATE FUNCTION"},
    {"vacuum_stmt", "VACUUM"}, {"explain_stmt", "EXPLAIN"}, {"lock_stmt", "LOCK"},
    {"notify_stmt", "NOTIFY"}, {"listen_stmt", "LISTEN"}, {"unlisten_stmt", "UNLISTEN"},
    {"call_stmt", "CALL"}, {"discard_stmt", "DISCARD"}, {"load_stmt", "LOAD"},
    {"check_point_stmt", "CHECKPOINT"}, {"cluster_stmt", "CLUSTER"},
    {"reindex_stmt", "REINDEX"}, {"truncate_stmt", "TRUNCATE"}, {"merge_stmt", "MERGE"},
    {"insert_stmt", "INSERT"}, {"update_stmt", "UPDATE"}, {"delete_stmt", "DELETE"},
    {"alter_system_stmt", "ALTER SYSTEM"}, {"comment_stmt", "COMMENT"},
    {"refresh_mat_view_stmt", "REFRESH MATERIALIZED VIEW"},
};

/* "delete_stmt" -> "DELETE", "alter_table_stmt" -> "ALTER TABLE". */
static void statement_kind(const PgQuery__Node *n, char *out, size_t outlen)
{
    const char *name = policy_walk_node_name(n);
    for (size_t i = 0; i < PGW_ARRAY_LEN(statement_kinds); i++)
        if (strcmp(statement_kinds[i].node, name) == 0) {
            snprintf(out, outlen, "%s", statement_kinds[i].kind);
            return;
        }
    size_t len = strlen(name);
    if (len > 5 && strcmp(name + len - 5, "_stmt") == 0)
        len -= 5;
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < outlen; i++)
        out[o++] = name[i] == '_' ? ' ' : (char)toupper((unsigned char)name[i]);
    out[o] = '\0';
}

static int refuse_kind(Rewrite *rw, const char *kind)
{
    return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                  "pgwarden lets through read-only queries (SELECT, VALUES, TABLE, WITH), "
                  "cursors, COPY ... TO STDOUT, SHOW, allowed SET and transaction control.",
                  "pgwarden: only read-only queries are allowed: %s is refused", kind);
}

/* Turn COPY t [(cols)] TO STDOUT into COPY (SELECT cols FROM t) TO STDOUT so
 * the relation is rewritten like any other. */
static int copy_relation_to_query(Rewrite *rw, PgQuery__CopyStmt *cs)
{
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, "SELECT ");
    if (cs->n_attlist == 0)
        buf_append_byte(&b, '*');
    for (size_t i = 0; i < cs->n_attlist; i++) {
        const char *col = string_value(cs->attlist[i]);
        if (i > 0)
            buf_append_str(&b, ", ");
        append_ident(&b, col != NULL ? col : "");
    }
    buf_append_str(&b, " FROM ");
    if (cs->relation->schemaname[0] != '\0') {
        append_ident(&b, cs->relation->schemaname);
        buf_append_byte(&b, '.');
    }
    append_ident(&b, cs->relation->relname);
    char *sql = buf_steal_str(&b);
    PgQueryProtobufParseResult pr = pg_query_parse_protobuf(sql);
    free(sql);
    PgQuery__ParseResult *tree = NULL;
    int rc = -1;
    if (pr.error != NULL)
        goto done;
    tree = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
                                          (const uint8_t *)pr.parse_tree.data);
    if (tree == NULL || tree->n_stmts != 1)
        goto done;
    cs->query = tree->stmts[0]->stmt;
    tree->stmts[0]->stmt = NULL;
    pg_query__range_var__free_unpacked(cs->relation, NULL);
    cs->relation = NULL;
    for (size_t i = 0; i < cs->n_attlist; i++)
        pg_query__node__free_unpacked(cs->attlist[i], NULL);
    free(cs->attlist);
    cs->attlist = NULL;
    cs->n_attlist = 0;
    rc = 0;
done:
    if (tree != NULL)
        pg_query__parse_result__free_unpacked(tree, NULL);
    pg_query_free_protobuf_parse_result(pr);
    if (rc < 0)
        return refuse(rw, SQLSTATE_SYNTAX_ERROR, NULL, "pgwarden: cannot rewrite this COPY");
    return 0;
}

static int check_set(Rewrite *rw, const PgQuery__VariableSetStmt *vs)
{
    if (vs->kind == PG_QUERY__VARIABLE_SET_KIND__VAR_RESET_ALL)
        return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                      "pgwarden: RESET ALL is not allowed");
    char name[128];
    snprintf(name, sizeof(name), "%s", vs->name);
    for (char *c = name; *c != '\0'; c++)
        *c = (char)tolower((unsigned char)*c);
    if (!IN_LIST(settable, name))
        return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                      "pgwarden pins this setting for every session.",
                      "pgwarden: SET %s is not allowed", vs->name);
    return 0;
}

/* Decide on one statement; returns -1 when refused. *rows says whether it is
 * a query returning rows. */
static int walk_statement(Rewrite *rw, PgQuery__Node **slot, bool *rows)
{
    PgQuery__Node *n = *slot;
    char kind[96];
    *rows = false;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_SELECT_STMT:
        *rows = true;
        return walk_select(rw, n->select_stmt, NULL, true);
    case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
        if (!NODE(n->declare_cursor_stmt->query, SELECT_STMT))
            return refuse_kind(rw, "DECLARE CURSOR");
        return walk_select(rw, n->declare_cursor_stmt->query->select_stmt, NULL, true);
    case PG_QUERY__NODE__NODE_COPY_STMT: {
        PgQuery__CopyStmt *cs = n->copy_stmt;
        if (cs->is_from)
            return refuse_kind(rw, "COPY FROM");
        if (cs->is_program || cs->filename[0] != '\0')
            return refuse_kind(rw, "COPY to a file or program");
        if (cs->relation != NULL && copy_relation_to_query(rw, cs) < 0)
            return -1;
        if (!NODE(cs->query, SELECT_STMT)) {
            if (cs->query != NULL)
                statement_kind(cs->query, kind, sizeof(kind));
            return refuse_kind(rw, cs->query != NULL ? kind : "COPY");
        }
        return walk_select(rw, cs->query->select_stmt, NULL, true);
    }
    case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
        return check_set(rw, n->variable_set_stmt);
    case PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT:
    case PG_QUERY__NODE__NODE_FETCH_STMT:
    case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT:
        return 0;
    case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
        switch (n->transaction_stmt->kind) {
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE:
            return refuse_kind(rw, "PREPARE TRANSACTION");
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT_PREPARED:
            return refuse_kind(rw, "COMMIT PREPARED");
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_PREPARED:
            return refuse_kind(rw, "ROLLBACK PREPARED");
        default:
            return 0;
        }
    default:
        statement_kind(n, kind, sizeof(kind));
        return refuse_kind(rw, kind);
    }
}

/* Parse all of the statement's replacement SQL at once and splice the
 * derived tables in place of the RangeVars. */
static int materialize(Rewrite *rw)
{
    if (rw->nrepl == 0)
        return 0;
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, "SELECT 1 FROM ");
    for (size_t i = 0; i < rw->nrepl; i++) {
        if (i > 0)
            buf_append_str(&b, ", ");
        buf_append_str(&b, rw->repl[i].body);
        if (rw->leaky)
            buf_append_str(&b, " OFFSET 0");
        buf_append_str(&b, rw->repl[i].tail);
    }
    char *sql = buf_steal_str(&b);
    PgQueryProtobufParseResult pr = pg_query_parse_protobuf(sql);
    PgQuery__ParseResult *tree = NULL;
    int rc = -1;
    if (pr.error != NULL) {
        refuse(rw, SQLSTATE_INTERNAL_ERROR, NULL,
               "pgwarden: a row filter or mask of this policy does not parse");
        free(rw->out->reason);
        rw->out->reason = pgw_strdup(pr.error->message);
        goto done;
    }
    tree = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
                                          (const uint8_t *)pr.parse_tree.data);
    if (tree == NULL || tree->n_stmts != 1 || !NODE(tree->stmts[0]->stmt, SELECT_STMT))
        goto done;
    PgQuery__SelectStmt *s = tree->stmts[0]->stmt->select_stmt;
    if (s->n_from_clause != rw->nrepl)
        goto done;
    for (size_t i = 0; i < rw->nrepl; i++) {
        PgQuery__Node *sub = s->from_clause[i];
        PgQuery__RangeVar *rv = (*rw->repl[i].slot)->range_var;
        if (!NODE(sub, RANGE_SUBSELECT))
            goto done;
        if (rv->alias != NULL) {
            /* Keep the client's alias, column aliases included. */
            pg_query__alias__free_unpacked(sub->range_subselect->alias, NULL);
            sub->range_subselect->alias = rv->alias;
            rv->alias = NULL;
        }
        pg_query__node__free_unpacked(*rw->repl[i].slot, NULL);
        *rw->repl[i].slot = sub;
        s->from_clause[i] = NULL;
    }
    s->n_from_clause = 0;
    rc = 0;
done:
    free(sql);
    if (tree != NULL)
        pg_query__parse_result__free_unpacked(tree, NULL);
    pg_query_free_protobuf_parse_result(pr);
    return rc;
}

static void shorten_column_refs(Rewrite *rw)
{
    for (size_t i = 0; i < rw->ncolfix; i++) {
        PgQuery__ColumnRef *cr = rw->colfix[i];
        size_t drop = cr->n_fields - 2;
        for (size_t j = 0; j < drop; j++)
            pg_query__node__free_unpacked(cr->fields[j], NULL);
        memmove(cr->fields, cr->fields + drop, 2 * sizeof(*cr->fields));
        cr->n_fields = 2;
    }
}

static void rewrite_reset_statement(Rewrite *rw)
{
    for (size_t i = 0; i < rw->nrepl; i++) {
        free(rw->repl[i].body);
        free(rw->repl[i].tail);
    }
    free(rw->repl);
    rw->repl = NULL;
    rw->nrepl = 0;
    free(rw->colfix);
    rw->colfix = NULL;
    rw->ncolfix = 0;
    rw->leaky = false;
}

/* Deparse, then parse the output again: a deparser fault that changes the
 * meaning shows up as a different tree, and we refuse rather than forward
 * something we did not check. */
static int deparse_verified(Rewrite *rw, PgQuery__ParseResult *tree, char **out)
{
    size_t len = pg_query__parse_result__get_packed_size(tree);
    uint8_t *packed = pgw_malloc(len > 0 ? len : 1);
    pg_query__parse_result__pack(tree, packed);
    PgQueryProtobuf pb = {len, (char *)packed};
    PgQueryDeparseResult dr = pg_query_deparse_protobuf(pb);
    free(packed);
    PgQueryProtobufParseResult pr = {0};
    PgQuery__ParseResult *again = NULL;
    int rc = -1;

    if (dr.error != NULL) {
        refuse(rw, SQLSTATE_FEATURE_NOT_SUPPORTED, NULL,
               "pgwarden: this statement cannot be rewritten safely");
        free(rw->out->reason);
        rw->out->reason = pgw_strdup(dr.error->message);
        goto done;
    }
    pr = pg_query_parse_protobuf(dr.query);
    if (pr.error == NULL)
        again = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
                                               (const uint8_t *)pr.parse_tree.data);
    if (again == NULL || !policy_walk_equal(&tree->base, &again->base)) {
        refuse(rw, SQLSTATE_FEATURE_NOT_SUPPORTED, NULL,
               "pgwarden: this statement cannot be rewritten safely");
        free(rw->out->reason);
        rw->out->reason = pgw_strdup("deparsed rewrite does not parse back to the same tree");
        goto done;
    }
    *out = pgw_strdup(dr.query);
    rc = 0;
done:
    if (again != NULL)
        pg_query__parse_result__free_unpacked(again, NULL);
    if (dr.error == NULL)
        pg_query_free_protobuf_parse_result(pr);
    pg_query_free_deparse_result(dr);
    return rc;
}

int policy_rewrite_uncached(const PgwPolicyCtx *ctx, const char *sql, PgwPolicyResult *out)
{
    Rewrite rw = {0};
    PgQueryProtobufParseResult pr;
    PgQuery__ParseResult *tree = NULL;
    bool rows_all = true;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    out->decision = PGW_POLICY_REFUSE;
    rw.ctx = ctx;
    rw.out = out;
    if (ctx == NULL || ctx->cfg == NULL || ctx->tenant == NULL || sql == NULL)
        return -1;
    if (split_search_path(&rw) < 0)
        goto done;

    pr = pg_query_parse_protobuf(sql);
    if (pr.error != NULL) {
        refuse(&rw, SQLSTATE_SYNTAX_ERROR, NULL, "%s", pr.error->message);
        pg_query_free_protobuf_parse_result(pr);
        rc = 0;
        goto done;
    }
    tree = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
                                          (const uint8_t *)pr.parse_tree.data);
    pg_query_free_protobuf_parse_result(pr);
    if (tree == NULL)
        goto done;

    for (size_t i = 0; i < tree->n_stmts; i++) {
        bool rows;
        if (tree->stmts[i]->stmt == NULL)
            continue;
        if (walk_statement(&rw, &tree->stmts[i]->stmt, &rows) < 0 || rw.refused) {
            rc = rw.refused ? 0 : -1;
            goto done;
        }
        rows_all = rows_all && rows;
        if (materialize(&rw) < 0) {
            rc = rw.refused ? 0 : -1;
            goto done;
        }
        shorten_column_refs(&rw);
        rewrite_reset_statement(&rw);
    }
    if (deparse_verified(&rw, tree, &out->sql) < 0) {
        rc = rw.refused ? 0 : -1;
        goto done;
    }
    out->decision = PGW_POLICY_ALLOW;
    out->read_only_query = tree->n_stmts > 0 && rows_all;
    out->cacheable = out->read_only_query && !rw.volatile_seen;
    out->reason = pgw_strdup(tree->n_stmts > 0 ? "allowed" : "empty");
    rc = 0;
done:
    rewrite_reset_statement(&rw);
    for (size_t i = 0; i < rw.nsearch_path; i++)
        free(rw.search_path[i]);
    free(rw.search_path);
    if (tree != NULL)
        pg_query__parse_result__free_unpacked(tree, NULL);
    if (rc < 0 && !rw.refused)
        refuse(&rw, SQLSTATE_INTERNAL_ERROR, NULL, "pgwarden: internal error in the policy");
    return rc;
}

void policy_result_free(PgwPolicyResult *r)
{
    if (r == NULL)
        return;
    free(r->sql);
    free(r->message);
    free(r->hint);
    free(r->reason);
    memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------------------ */
/* Rewrite cache                                                              */
/* ------------------------------------------------------------------------ */

/* A bounded map from key to decision; when full, the oldest entry goes
 * (FIFO: rewrites are cheap to redo, and FIFO needs no bookkeeping on hits). */
#define CACHE_BUCKETS 4096
#define CACHE_CAPACITY 4096

typedef struct CacheEntry {
    struct CacheEntry *next;
    uint64_t hash;
    char *key;
    size_t keylen;
    PgwPolicyResult result;
} CacheEntry;

static struct {
    pthread_mutex_t lock;
    CacheEntry *buckets[CACHE_BUCKETS];
    CacheEntry *ring[CACHE_CAPACITY]; /* insertion order */
    size_t head, count;
    unsigned long hits, misses;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? pgw_strdup(s) : NULL;
}

static void result_copy(PgwPolicyResult *dst, const PgwPolicyResult *src)
{
    *dst = *src;
    dst->sql = dup_or_null(src->sql);
    dst->message = dup_or_null(src->message);
    dst->hint = dup_or_null(src->hint);
    dst->reason = dup_or_null(src->reason);
}

static void cache_entry_free(CacheEntry *e)
{
    policy_result_free(&e->result);
    free(e->key);
    free(e);
}

static void cache_unlink(CacheEntry *e)
{
    CacheEntry **pp = &cache.buckets[e->hash % CACHE_BUCKETS];
    while (*pp != NULL && *pp != e)
        pp = &(*pp)->next;
    if (*pp == e)
        *pp = e->next;
}

static char *cache_key(const PgwPolicyCtx *ctx, const char *sql, size_t *len)
{
    PgwBuf b;
    buf_init(&b);
    buf_printf(&b, "%u/%lu/", ctx->cfg->version, schema_generation(ctx->schema));
    buf_append(&b, ctx->tenant->name, strlen(ctx->tenant->name) + 1);
    buf_append_str(&b, sql);
    *len = b.len;
    return buf_steal_str(&b);
}

int policy_rewrite(const PgwPolicyCtx *ctx, const char *sql, PgwPolicyResult *out)
{
    if (ctx == NULL || ctx->cfg == NULL || ctx->tenant == NULL || sql == NULL) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    size_t keylen;
    char *key = cache_key(ctx, sql, &keylen);
    uint64_t h = fnv1a(key, keylen);

    pthread_mutex_lock(&cache.lock);
    for (CacheEntry *e = cache.buckets[h % CACHE_BUCKETS]; e != NULL; e = e->next) {
        if (e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0) {
            result_copy(out, &e->result);
            cache.hits++;
            pthread_mutex_unlock(&cache.lock);
            free(key);
            return 0;
        }
    }
    cache.misses++;
    pthread_mutex_unlock(&cache.lock);

    int rc = policy_rewrite_uncached(ctx, sql, out);
    if (rc < 0) {
        free(key);
        return rc;
    }
    CacheEntry *e = pgw_calloc(1, sizeof(*e));
    e->hash = h;
    e->key = key;
    e->keylen = keylen;
    result_copy(&e->result, out);

    pthread_mutex_lock(&cache.lock);
    if (cache.count == CACHE_CAPACITY) {
        CacheEntry *old = cache.ring[cache.head];
        cache_unlink(old);
        cache_entry_free(old);
        cache.ring[cache.head] = e;
        cache.head = (cache.head + 1) % CACHE_CAPACITY;
    } else {
        cache.ring[(cache.head + cache.count) % CACHE_CAPACITY] = e;
        cache.count++;
    }
    e->next = cache.buckets[h % CACHE_BUCKETS];
    cache.buckets[h % CACHE_BUCKETS] = e;
    pthread_mutex_unlock(&cache.lock);
    return 0;
}

void policy_cache_stats(PgwPolicyCacheStats *out)
{
    pthread_mutex_lock(&cache.lock);
    out->hits = cache.hits;
    out->misses = cache.misses;
    out->entries = cache.count;
    out->capacity = CACHE_CAPACITY;
    pthread_mutex_unlock(&cache.lock);
}

void policy_cache_clear(void)
{
    pthread_mutex_lock(&cache.lock);
    for (size_t i = 0; i < cache.count; i++)
        cache_entry_free(cache.ring[(cache.head + i) % CACHE_CAPACITY]);
    memset(cache.buckets, 0, sizeof(cache.buckets));
    cache.head = cache.count = 0;
    cache.hits = cache.misses = 0;
    pthread_mutex_unlock(&cache.lock);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int policy_measure_us(const PgwPolicyCtx *ctx, const char *sql, int iterations,
                      double *uncached_us, double *cached_us)
{
    PgwPolicyResult r;
    if (iterations <= 0)
        return -1;
    double t0 = now_us();
    for (int i = 0; i < iterations; i++) {
        int rc = policy_rewrite_uncached(ctx, sql, &r);
        policy_result_free(&r);
        if (rc < 0)
            return -1;
    }
    double t1 = now_us();
    if (policy_rewrite(ctx, sql, &r) < 0)
        return -1;
    policy_result_free(&r);
    double t2 = now_us();
    for (int i = 0; i < iterations; i++) {
        if (policy_rewrite(ctx, sql, &r) < 0)
            return -1;
        policy_result_free(&r);
    }
    double t3 = now_us();
    *uncached_us = (t1 - t0) / iterations;
    *cached_us = (t3 - t2) / iterations;
    return 0;
}
