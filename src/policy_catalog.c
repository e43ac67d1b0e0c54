/*
 * policy_catalog.c — catalog virtualization: which pg_catalog and
 * information_schema relations a tenant may read, and how each is filtered
 * so hidden relations and hidden columns vanish from it (see
 * policy_catalog.h).
 *
 * Every rule is a boolean SQL expression over the catalog row (alias r).
 * Placeholders expand to SQL built from the configuration alone, never from
 * the backend's schema snapshot, so the filter is evaluated by the backend
 * against its real catalog at the moment the query runs:
 *     %R          the OIDs of every readable relation and of their indexes
 *     %N(ns, rel) (ns, rel) names a readable relation
 *     %F(ns, fn)  (ns, fn) names a built-in or an allowed_functions entry
 *     %C(ns, rel, col) the column is hidden (mask = hide)
 *     %H(oid, col)     the same, by relation OID
 * With default_access = deny the readable set is the configured, non-hidden
 * tables; with allow it is everything but the hidden ones. Catalog relations
 * that expose values (pg_stats, pg_statistic) or other sessions
 * (pg_stat_activity ...) have no rule and are refused. A catalog that only
 * describes types, functions, roles or settings is readable as is.
 *
 * Known residuals: functions that take a constraint or trigger OID
 * (pg_get_constraintdef, pg_get_triggerdef) are not checked, so a guessed
 * OID can describe a hidden table's constraint; a column cast to regclass
 * (x::regclass) shows a hidden relation's name when the client feeds it a
 * guessed OID through VALUES or a CTE.
 */
#include "policy_catalog.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- built-in functions ---- */

/* Aggregates and window functions: their arguments are evaluated after the
 * scan's quals, so they never matter for leak-proofness. */
static const char *const aggregate_functions[] = {
    "array_agg",
    "avg",
    "bit_and",
    "bit_or",
    "bit_xor",
    "bool_and",
    "bool_or",
    "corr",
    "count",
    "covar_pop",
    "covar_samp",
    "cume_dist",
    "dense_rank",
    "every",
    "first_value",
    "json_agg",
    "json_object_agg",
    "jsonb_agg",
    "jsonb_object_agg",
    "lag",
    "last_value",
    "lead",
    "max",
    "min",
    "mode",
    "nth_value",
    "ntile",
    "percent_rank",
    "percentile_cont",
    "percentile_disc",
    "range_agg",
    "range_intersect_agg",
    "rank",
    "regr_avgx",
    "regr_avgy",
    "regr_count",
    "regr_intercept",
    "regr_r2",
    "regr_slope",
    "regr_sxx",
    "regr_sxy",
    "regr_syy",
    "row_number",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "string_agg",
    "sum",
    "var_pop",
    "var_samp",
    "variance",
};

/* Built-in scalar and set-returning functions a read-only query may call.
 * Absent on purpose: anything that reads files or large objects, runs a
 * query given as text (query_to_xml, ts_stat, ...), sleeps, signals or
 * changes settings, sequences, advisory locks, dblink, statistics readers. */
static const char *const scalar_functions[] = {
    "abs",
    "acos",
    "acosd",
    "acosh",
    "age",
    "array_append",
    "array_cat",
    "array_dims",
    "array_fill",
    "array_length",
    "array_lower",
    "array_ndims",
    "array_position",
    "array_positions",
    "array_prepend",
    "array_remove",
    "array_replace",
    "array_to_json",
    "array_to_string",
    "array_upper",
    "ascii",
    "asin",
    "asind",
    "asinh",
    "atan",
    "atan2",
    "atan2d",
    "atand",
    "atanh",
    "bit_count",
    "bit_length",
    "bool",
    "btrim",
    "cardinality",
    "cbrt",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "chr",
    "clock_timestamp",
    "col_description",
    "concat",
    "concat_ws",
    "cos",
    "cosd",
    "cosh",
    "cot",
    "cotd",
    "current_database",
    "current_schema",
    "current_schemas",
    "current_setting",
    "date",
    "date_bin",
    "date_part",
    "date_trunc",
    "daterange",
    "decode",
    "degrees",
    "div",
    "encode",
    "exp",
    "extract",
    "factorial",
    "float4",
    "float8",
    "floor",
    "format",
    "format_type",
    "gcd",
    "gen_random_uuid",
    "generate_series",
    "generate_subscripts",
    "get_bit",
    "get_byte",
    "has_any_column_privilege",
    "has_column_privilege",
    "has_database_privilege",
    "has_function_privilege",
    "has_schema_privilege",
    "has_sequence_privilege",
    "has_table_privilege",
    "has_type_privilege",
    "initcap",
    "int2",
    "int4",
    "int4range",
    "int8",
    "int8range",
    "interval",
    "isempty",
    "isfinite",
    "json_array_elements",
    "json_array_elements_text",
    "json_array_length",
    "json_build_array",
    "json_build_object",
    "json_each",
    "json_each_text",
    "json_extract_path",
    "json_extract_path_text",
    "json_object",
    "json_object_keys",
    "json_populate_record",
    "json_populate_recordset",
    "json_strip_nulls",
    "json_to_record",
    "json_to_recordset",
    "json_typeof",
    "jsonb_array_elements",
    "jsonb_array_elements_text",
    "jsonb_array_length",
    "jsonb_build_array",
    "jsonb_build_object",
    "jsonb_each",
    "jsonb_each_text",
    "jsonb_extract_path",
    "jsonb_extract_path_text",
    "jsonb_insert",
    "jsonb_object",
    "jsonb_object_keys",
    "jsonb_path_exists",
    "jsonb_path_match",
    "jsonb_path_query",
    "jsonb_path_query_array",
    "jsonb_path_query_first",
    "jsonb_populate_record",
    "jsonb_populate_recordset",
    "jsonb_pretty",
    "jsonb_set",
    "jsonb_set_lax",
    "jsonb_strip_nulls",
    "jsonb_to_record",
    "jsonb_to_recordset",
    "jsonb_typeof",
    "justify_days",
    "justify_hours",
    "justify_interval",
    "lcm",
    "left",
    "length",
    "ln",
    "log",
    "log10",
    "lower",
    "lower_inc",
    "lower_inf",
    "lpad",
    "ltrim",
    "make_date",
    "make_interval",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "md5",
    "min_scale",
    "mod",
    "normalize",
    "now",
    "num_nonnulls",
    "num_nulls",
    "numeric",
    "numrange",
    "obj_description",
    "octet_length",
    "overlay",
    "pg_backend_pid",
    "pg_char_to_encoding",
    "pg_collation_is_visible",
    "pg_column_size",
    "pg_conversion_is_visible",
    "pg_encoding_max_length",
    "pg_encoding_to_char",
    "pg_function_is_visible",
    "pg_get_constraintdef",
    "pg_get_expr",
    "pg_get_function_arguments",
    "pg_get_function_identity_arguments",
    "pg_get_function_result",
    "pg_get_indexdef",
    "pg_get_keywords",
    "pg_get_partkeydef",
    "pg_get_serial_sequence",
    "pg_get_statisticsobjdef_columns",
    "pg_get_triggerdef",
    "pg_get_userbyid",
    "pg_get_viewdef",
    "pg_is_in_recovery",
    "pg_opclass_is_visible",
    "pg_operator_is_visible",
    "pg_opfamily_is_visible",
    "pg_options_to_table",
    "pg_partition_ancestors",
    "pg_partition_root",
    "pg_postmaster_start_time",
    "pg_relation_is_publishable",
    "pg_size_pretty",
    "pg_table_is_visible",
    "pg_tablespace_location",
    "pg_ts_config_is_visible",
    "pg_type_is_visible",
    "pg_typeof",
    "phraseto_tsquery",
    "pi",
    "plainto_tsquery",
    "position",
    "pow",
    "power",
    "quote_ident",
    "quote_literal",
    "quote_nullable",
    "radians",
    "random",
    "regexp_count",
    "regexp_instr",
    "regexp_like",
    "regexp_match",
    "regexp_matches",
    "regexp_replace",
    "regexp_split_to_array",
    "regexp_split_to_table",
    "regexp_substr",
    "repeat",
    "replace",
    "reverse",
    "right",
    "round",
    "row_to_json",
    "rpad",
    "rtrim",
    "scale",
    "setweight",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "shobj_description",
    "sign",
    "sin",
    "sind",
    "sinh",
    "split_part",
    "sqrt",
    "starts_with",
    "statement_timestamp",
    "string_to_array",
    "string_to_table",
    "strpos",
    "substr",
    "substring",
    "tan",
    "tand",
    "tanh",
    "text",
    "time",
    "timeofday",
    "timestamp",
    "timestamptz",
    "timezone",
    "to_ascii",
    "to_char",
    "to_date",
    "to_hex",
    "to_regclass",
    "to_json",
    "to_jsonb",
    "to_number",
    "to_timestamp",
    "to_tsquery",
    "to_tsvector",
    "transaction_timestamp",
    "translate",
    "trim",
    "trim_scale",
    "trunc",
    "ts_headline",
    "ts_rank",
    "ts_rank_cd",
    "tsrange",
    "tstzrange",
    "unistr",
    "unnest",
    "upper",
    "upper_inc",
    "upper_inf",
    "varchar",
    "version",
    "websearch_to_tsquery",
    "width_bucket",
};

/* Functions whose result changes between two runs of the same text: a
 * statement calling one is not cacheable. */
static const char *const volatile_functions[] = {
    "clock_timestamp",       "current_setting", "gen_random_uuid",     "now",
    "pg_backend_pid",        "random",          "statement_timestamp", "timeofday",
    "transaction_timestamp",
};


static bool in_list(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

bool policy_builtin_aggregate(const char *name)
{
    return in_list(aggregate_functions, PGW_ARRAY_LEN(aggregate_functions), name);
}

bool policy_builtin_scalar(const char *name)
{
    return in_list(scalar_functions, PGW_ARRAY_LEN(scalar_functions), name);
}

bool policy_builtin_volatile(const char *name)
{
    return in_list(volatile_functions, PGW_ARRAY_LEN(volatile_functions), name);
}

/* ---- settings ---- */

/* Settings a client may SET, RESET or set_config(), and what values they may
 * take. Everything else is pinned: search_path (name resolution depends on
 * it), role and session_authorization, work_mem (one tenant could exhaust a
 * shared server), standard_conforming_strings (the backend must read string
 * literals the way libpg_query did). Pinned values come from the backend's
 * startup options, so RESET and DISCARD ALL return to them. */
typedef enum {
    SETTING_ANY,
    SETTING_ON_ONLY, /* read-only switches: only on */
    SETTING_TIMEOUT, /* statement_timeout: 0 < value <= the configured bound */
    SETTING_ENCODING, /* client encodings whose bytes libpg_query reads as PostgreSQL does */
} SettingCheck;

static const struct {
    const char *name;
    SettingCheck check;
} settable[] = {
    {"application_name", SETTING_ANY},
    {"bytea_output", SETTING_ANY},
    {"client_encoding", SETTING_ENCODING},
    {"client_min_messages", SETTING_ANY},
    {"datestyle", SETTING_ANY},
    {"default_transaction_deferrable", SETTING_ANY},
    {"default_transaction_isolation", SETTING_ANY},
    {"default_transaction_read_only", SETTING_ON_ONLY},
    {"extra_float_digits", SETTING_ANY},
    {"idle_in_transaction_session_timeout", SETTING_ANY},
    {"intervalstyle", SETTING_ANY},
    {"jit", SETTING_ANY},
    {"lock_timeout", SETTING_ANY},
    {"standard_conforming_strings", SETTING_ON_ONLY},
    {"statement_timeout", SETTING_TIMEOUT},
    {"timezone", SETTING_ANY},
    {"transaction_deferrable", SETTING_ANY},
    {"transaction_isolation", SETTING_ANY},
    {"transaction_read_only", SETTING_ON_ONLY},
};

bool policy_setting_is_on(const char *v)
{
    static const char *const on[] = {"on", "true", "yes", "1", "t", "y"};
    for (size_t i = 0; i < PGW_ARRAY_LEN(on); i++)
        if (strcasecmp(v, on[i]) == 0)
            return true;
    return false;
}

/* "5000", "5s", "1.5 min" ... in milliseconds, as PostgreSQL reads a
 * time setting without unit as ms; -1 when unreadable. */
static double timeout_ms(const char *v)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"", 1},        {"us", 0.001},  {"ms", 1},      {"s", 1000},
                 {"min", 60000}, {"h", 3600000}, {"d", 86400000}};
    char *end;
    double x = strtod(v, &end);
    if (end == v)
        return -1;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < PGW_ARRAY_LEN(units); i++)
        if (strcmp(end, units[i].unit) == 0)
            return x * units[i].ms;
    return -1;
}

/* SJIS, BIG5, GBK, UHC, GB18030 and JOHAB put ASCII bytes (a quote, a
 * backslash) inside multibyte characters: the backend would split the text
 * differently from the policy's parser. */
static bool encoding_safe(const char *v)
{
    char norm[64];
    size_t n = 0;
    for (const char *p = v; *p != '\0' && n + 1 < sizeof(norm); p++)
        if (*p != '-' && *p != '_')
            norm[n++] = (char)tolower((unsigned char)*p);
    norm[n] = '\0';
    static const char *const prefixes[] = {"utf8",    "unicode", "sqlascii", "latin",  "win12",
                                           "iso8859", "koi8",    "euc",      "default"};
    for (size_t i = 0; i < PGW_ARRAY_LEN(prefixes); i++)
        if (strncmp(norm, prefixes[i], strlen(prefixes[i])) == 0)
            return strcmp(norm, "euccn") == 0 || strncmp(norm, "euc", 3) != 0 ||
                   strcmp(norm, "euctw") == 0 || strcmp(norm, "eucjp") == 0 ||
                   strcmp(norm, "euckr") == 0 || strcmp(norm, "eucjis2004") == 0;
    return false;
}

/* What policy_setting_verdict says about name = value (NULL: RESET). */
PgwSettingVerdict policy_setting_verdict(const PgwConfig *cfg, const char *name, const char *value)
{
    char lower[128];
    size_t n = 0;
    for (; name[n] != '\0' && n + 1 < sizeof(lower); n++)
        lower[n] = (char)tolower((unsigned char)name[n]);
    lower[n] = '\0';
    /* RESET x and SET x TO DEFAULT return to the startup value, which for
     * pinned settings is pgwarden's (RESET ALL does the same for all). */
    if (value == NULL)
        return PGW_SETTING_OK;
    for (size_t i = 0; i < PGW_ARRAY_LEN(settable); i++) {
        if (strcmp(settable[i].name, lower) != 0)
            continue;
        switch (settable[i].check) {
        case SETTING_ON_ONLY:
            return policy_setting_is_on(value) ? PGW_SETTING_OK : PGW_SETTING_READ_ONLY;
        case SETTING_TIMEOUT: {
            double ms = timeout_ms(value);
            int bound = cfg->statement_timeout_ms;
            return bound <= 0 || (ms >= 1 && ms <= bound) ? PGW_SETTING_OK : PGW_SETTING_TIMEOUT;
        }
        case SETTING_ENCODING:
            return encoding_safe(value) ? PGW_SETTING_OK : PGW_SETTING_ENCODING;
        default:
            return PGW_SETTING_OK;
        }
    }
    return PGW_SETTING_PINNED;
}

/* ---- catalog relations ---- */

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
    /* Function bodies name tables: only built-ins and allowed_functions. */
    {"information_schema", "routines", "%F(r.routine_schema, r.routine_name)"},
    {"information_schema", "parameters",
     "r.specific_schema::text IN ('pg_catalog', 'information_schema')"},
    {"information_schema", "character_sets", NULL},
    {"information_schema", "collations", NULL},
    {"pg_catalog", "pg_namespace", NULL},
    {"pg_catalog", "pg_am", NULL},
    {"pg_catalog", "pg_collation", NULL},
    {"pg_catalog", "pg_proc",
     "EXISTS (SELECT 1 FROM pg_catalog.pg_namespace pn WHERE pn.oid = r.pronamespace AND "
     "%F(pn.nspname, r.proname))"},
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
    {"pg_catalog", "pg_publication_namespace", NULL}, /* schemas only; psql's \\d reads it */
    {"pg_catalog", "pg_publication_rel", "r.prrelid IN (%R)"},
    {"pg_catalog", "pg_shdescription", NULL},
};

void policy_append_ident(PgwBuf *b, const char *s)
{
    buf_append_byte(b, '"');
    for (; *s != '\0'; s++) {
        if (*s == '"')
            buf_append_byte(b, '"');
        buf_append_byte(b, (uint8_t)*s);
    }
    buf_append_byte(b, '"');
}

void policy_append_literal(PgwBuf *b, const char *s)
{
    buf_append_byte(b, '\'');
    for (; *s != '\0'; s++) {
        if (*s == '\'')
            buf_append_byte(b, '\'');
        buf_append_byte(b, (uint8_t)*s);
    }
    buf_append_byte(b, '\'');
}

static const CatalogRule *catalog_rule(const char *schema, const char *name)
{
    for (size_t i = 0; i < PGW_ARRAY_LEN(catalog_rules); i++)
        if (strcmp(catalog_rules[i].schema, schema) == 0 &&
            strcmp(catalog_rules[i].name, name) == 0)
            return &catalog_rules[i];
    return NULL;
}

PgwCatalogAccess policy_catalog_access(const char *schema, const char *name)
{
    const CatalogRule *rule = catalog_rule(schema, name);
    if (rule == NULL)
        return PGW_CATALOG_UNKNOWN;
    if (rule->filter == NULL)
        return PGW_CATALOG_AS_IS;
    return rule->filter[0] == '\0' ? PGW_CATALOG_REFUSED : PGW_CATALOG_FILTERED;
}

/* "%R": OIDs of relations the tenant may read, plus their indexes. */
static void append_readable_pair_cond(const PgwConfig *cfg, PgwBuf *b, const char *ns,
                                      const char *rel)
{
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
        policy_append_literal(b, tp->schema);
        buf_append_str(b, ", ");
        policy_append_literal(b, tp->name);
        buf_append_byte(b, ')');
        any = true;
    }
    /* An empty list still needs a row; a NULL row would make NOT IN yield
     * NULL and hide everything. No relation is named ''. */
    if (!any)
        buf_append_str(b, "('', '')");
    buf_append_str(b, "))");
}

/* "%F": functions the tenant may see: built-ins and allowed_functions
 * ("schema.name"; a bare name means public). */
static void append_callable_pair_cond(const PgwConfig *cfg, PgwBuf *b, const char *ns,
                                      const char *name)
{
    buf_printf(b,
               "(%s::text IN ('pg_catalog', 'information_schema') OR (%s::text, %s::text) IN "
               "(VALUES ('', '')",
               ns, ns, name);
    for (size_t i = 0; i < cfg->nallowed_functions; i++) {
        const char *f = cfg->allowed_functions[i];
        const char *dot = strchr(f, '.');
        char *schema = dot ? strndup(f, (size_t)(dot - f)) : strdup("public");
        buf_append_str(b, ", (");
        policy_append_literal(b, schema);
        buf_append_str(b, ", ");
        policy_append_literal(b, dot ? dot + 1 : f);
        buf_append_byte(b, ')');
        free(schema);
    }
    buf_append_str(b, "))");
}

static void append_readable_oids(const PgwConfig *cfg, PgwBuf *b)
{
    buf_append_str(b, "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                      "ON n.oid = c.relnamespace WHERE ");
    append_readable_pair_cond(cfg, b, "n.nspname", "c.relname");
    buf_append_str(b, " UNION ALL SELECT i.indexrelid FROM pg_catalog.pg_index i JOIN "
                      "pg_catalog.pg_class c ON c.oid = i.indrelid JOIN pg_catalog.pg_namespace "
                      "n ON n.oid = c.relnamespace WHERE ");
    append_readable_pair_cond(cfg, b, "n.nspname", "c.relname");
}

/* Hidden columns (mask hide) as a VALUES list of (schema, table, column). */
static void append_hidden_columns(const PgwConfig *cfg, PgwBuf *b)
{
    bool any = false;
    buf_append_str(b, "(VALUES ");
    for (size_t i = 0; i < cfg->ntables; i++)
        for (size_t m = 0; m < cfg->tables[i].nmasks; m++) {
            if (cfg->tables[i].masks[m].kind != PGW_MASK_HIDE)
                continue;
            buf_append_str(b, any ? ", (" : "(");
            policy_append_literal(b, cfg->tables[i].schema);
            buf_append_str(b, ", ");
            policy_append_literal(b, cfg->tables[i].name);
            buf_append_str(b, ", ");
            policy_append_literal(b, cfg->tables[i].masks[m].column);
            buf_append_byte(b, ')');
            any = true;
        }
    if (!any)
        buf_append_str(b, "('', '', '')"); /* never matches; NULL would poison NOT IN */
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

static void append_catalog_filter(const PgwConfig *cfg, PgwBuf *b, const char *filter)
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
            append_readable_oids(cfg, b);
        } else if (kind == 'N' && nargs == 2) {
            append_readable_pair_cond(cfg, b, args[0], args[1]);
        } else if (kind == 'F' && nargs == 2) {
            append_callable_pair_cond(cfg, b, args[0], args[1]);
        } else if (kind == 'C' && nargs == 3) {
            buf_printf(b, "(%s::text, %s::text, %s::text) IN (SELECT * FROM ", args[0], args[1],
                       args[2]);
            append_hidden_columns(cfg, b);
            buf_append_str(b, " h)");
        } else if (kind == 'H' && nargs == 2) {
            buf_append_str(b, "EXISTS (SELECT 1 FROM pg_catalog.pg_class hc JOIN "
                              "pg_catalog.pg_namespace hn ON hn.oid = hc.relnamespace, ");
            append_hidden_columns(cfg, b);
            buf_printf(b,
                       " h(s, t, c) WHERE hc.oid = %s AND hn.nspname::text = h.s AND "
                       "hc.relname::text = h.t AND %s::text = h.c)",
                       args[0], args[1]);
        }
    }
}

void policy_catalog_append_view(PgwBuf *b, const PgwConfig *cfg, const char *schema,
                                const char *name)
{
    const CatalogRule *rule = catalog_rule(schema, name);
    buf_printf(b, "(SELECT * FROM %s.%s r WHERE ", rule->schema, rule->name);
    append_catalog_filter(cfg, b, rule->filter);
}

void policy_catalog_append_readable_oids(PgwBuf *b, const PgwConfig *cfg)
{
    append_readable_oids(cfg, b);
}

/* Functions that take a relation (by name or OID) and would answer
 * differently for a hidden relation than for a missing one. */
static const struct {
    const char *name;
    size_t nargs;
    PgwRelationArg arg;
} relation_functions[] = {
    {"has_table_privilege", 2, {0, -1, false}},
    {"has_table_privilege", 3, {1, -1, false}},
    {"has_any_column_privilege", 2, {0, -1, false}},
    {"has_any_column_privilege", 3, {1, -1, false}},
    {"has_sequence_privilege", 2, {0, -1, false}},
    {"has_sequence_privilege", 3, {1, -1, false}},
    {"has_column_privilege", 3, {0, 1, false}},
    {"has_column_privilege", 4, {1, 2, false}},
    {"to_regclass", 1, {0, -1, true}},
    {"pg_table_is_visible", 1, {0, -1, false}},
    {"obj_description", 1, {0, -1, false}},
    {"obj_description", 2, {0, -1, false}},
    {"col_description", 2, {0, -1, false}},
    {"pg_get_viewdef", 1, {0, -1, false}},
    {"pg_get_viewdef", 2, {0, -1, false}},
    {"pg_get_indexdef", 1, {0, -1, false}},
    {"pg_get_indexdef", 3, {0, -1, false}},
    {"pg_get_partkeydef", 1, {0, -1, false}},
    {"pg_get_serial_sequence", 2, {0, 1, false}},
    {"pg_relation_is_publishable", 1, {0, -1, false}},
    {"pg_get_expr", 2, {1, -1, false}},
    {"pg_get_expr", 3, {1, -1, false}},
};

bool policy_catalog_relation_arg(const char *func, size_t nargs, PgwRelationArg *out)
{
    for (size_t i = 0; i < PGW_ARRAY_LEN(relation_functions); i++)
        if (relation_functions[i].nargs == nargs && strcmp(relation_functions[i].name, func) == 0) {
            *out = relation_functions[i].arg;
            return true;
        }
    return false;
}
