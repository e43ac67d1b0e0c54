/*
 * policy_builtin.c — what the policy knows of PostgreSQL's built-ins without
 * asking the backend: which functions a read-only query may call (and which
 * of those change from one run to the next), which run-time settings a
 * client may change, and SQL quoting (see policy_builtin.h).
 *
 * Everything here is a constant table or a pure function of its arguments;
 * nothing parses, walks trees or knows the backend's schema snapshot. What a
 * function's arguments name (a relation, a type, a role ...) and how the
 * policy checks them is policy_object.c's; which catalog rows a tenant sees
 * is policy_catalog.c's.
 */
#include "policy_builtin.h"

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

/* Built-in scalar and set-returning functions a read-only query may call,
 * sorted (binary search). Absent on purpose: anything that reads files or
 * large objects, runs a query given as text (query_to_xml, ts_stat, ...),
 * sleeps, signals or changes settings, sequences, advisory locks, dblink,
 * Those that take an object
 * (sizes, statistics readers, definition printers) are only called with
 * arguments policy_object.c checked; see builtin_objects below. */
static const char *const scalar_functions[] = {
    "abs",
    "aclexplode",
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
    "bpchar",
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
    "getdatabaseencoding",
    "has_any_column_privilege",
    "has_column_privilege",
    "has_database_privilege",
    "has_foreign_data_wrapper_privilege",
    "has_function_privilege",
    "has_language_privilege",
    "has_schema_privilege",
    "has_sequence_privilege",
    "has_server_privilege",
    "has_table_privilege",
    "has_tablespace_privilege",
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
    "name",
    "normalize",
    "now",
    "num_nonnulls",
    "num_nulls",
    "numeric",
    "numrange",
    "obj_description",
    "octet_length",
    "oid",
    "oidvectortypes",
    "overlay",
    "parse_ident",
    "pg_available_extension_versions",
    "pg_available_extensions",
    "pg_backend_pid",
    "pg_blocking_pids",
    "pg_char_to_encoding",
    "pg_client_encoding",
    "pg_collation_is_visible",
    "pg_column_is_updatable",
    "pg_column_size",
    "pg_conf_load_time",
    "pg_conversion_is_visible",
    "pg_database_size",
    "pg_describe_object",
    "pg_encoding_max_length",
    "pg_encoding_to_char",
    "pg_function_is_visible",
    "pg_get_catalog_foreign_keys",
    "pg_get_constraintdef",
    "pg_get_expr",
    "pg_get_function_arg_default",
    "pg_get_function_arguments",
    "pg_get_function_identity_arguments",
    "pg_get_function_result",
    "pg_get_function_sqlbody",
    "pg_get_functiondef",
    "pg_get_indexdef",
    "pg_get_keywords",
    "pg_get_partition_constraintdef",
    "pg_get_partkeydef",
    "pg_get_replica_identity_index",
    "pg_get_ruledef",
    "pg_get_serial_sequence",
    "pg_get_statisticsobjdef",
    "pg_get_statisticsobjdef_columns",
    "pg_get_statisticsobjdef_expressions",
    "pg_get_triggerdef",
    "pg_get_userbyid",
    "pg_get_viewdef",
    "pg_has_role",
    "pg_identify_object",
    "pg_identify_object_as_address",
    "pg_index_column_has_property",
    "pg_index_has_property",
    "pg_indexam_has_property",
    "pg_indexes_size",
    "pg_is_in_recovery",
    "pg_is_other_temp_schema",
    "pg_jit_available",
    "pg_listening_channels",
    "pg_my_temp_schema",
    "pg_opclass_is_visible",
    "pg_operator_is_visible",
    "pg_opfamily_is_visible",
    "pg_options_to_table",
    "pg_partition_ancestors",
    "pg_partition_root",
    "pg_partition_tree",
    "pg_postmaster_start_time",
    "pg_relation_is_publishable",
    "pg_relation_is_updatable",
    "pg_relation_size",
    "pg_safe_snapshot_blocking_pids",
    "pg_sequence_last_value",
    "pg_settings_get_flags",
    "pg_size_bytes",
    "pg_size_pretty",
    "pg_stat_get_analyze_count",
    "pg_stat_get_autoanalyze_count",
    "pg_stat_get_autovacuum_count",
    "pg_stat_get_blocks_fetched",
    "pg_stat_get_blocks_hit",
    "pg_stat_get_dead_tuples",
    "pg_stat_get_ins_since_vacuum",
    "pg_stat_get_last_analyze_time",
    "pg_stat_get_last_autoanalyze_time",
    "pg_stat_get_last_autovacuum_time",
    "pg_stat_get_last_vacuum_time",
    "pg_stat_get_lastscan",
    "pg_stat_get_live_tuples",
    "pg_stat_get_mod_since_analyze",
    "pg_stat_get_numscans",
    "pg_stat_get_tuples_deleted",
    "pg_stat_get_tuples_fetched",
    "pg_stat_get_tuples_hot_updated",
    "pg_stat_get_tuples_inserted",
    "pg_stat_get_tuples_returned",
    "pg_stat_get_tuples_updated",
    "pg_stat_get_vacuum_count",
    "pg_stat_get_xact_blocks_fetched",
    "pg_stat_get_xact_blocks_hit",
    "pg_stat_get_xact_numscans",
    "pg_stat_get_xact_tuples_deleted",
    "pg_stat_get_xact_tuples_fetched",
    "pg_stat_get_xact_tuples_hot_updated",
    "pg_stat_get_xact_tuples_inserted",
    "pg_stat_get_xact_tuples_returned",
    "pg_stat_get_xact_tuples_updated",
    "pg_statistics_obj_is_visible",
    "pg_table_is_visible",
    "pg_table_size",
    "pg_tablespace_location",
    "pg_tablespace_size",
    "pg_total_relation_size",
    "pg_trigger_depth",
    "pg_ts_config_is_visible",
    "pg_ts_dict_is_visible",
    "pg_ts_parser_is_visible",
    "pg_ts_template_is_visible",
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
    "row_security_active",
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
    "to_json",
    "to_jsonb",
    "to_number",
    "to_regclass",
    "to_regcollation",
    "to_regnamespace",
    "to_regoper",
    "to_regoperator",
    "to_regproc",
    "to_regprocedure",
    "to_regrole",
    "to_regtype",
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
    "ts_token_type",
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
    "clock_timestamp",     "current_setting",   "gen_random_uuid",       "now",
    "pg_backend_pid",      "pg_conf_load_time", "pg_listening_channels", "random",
    "statement_timestamp", "timeofday",         "transaction_timestamp",
};


static bool in_list(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static int name_cmp(const void *key, const void *elem)
{
    return strcmp(key, *(const char *const *)elem);
}

static bool in_sorted(const char *const *list, size_t n, const char *s)
{
    return bsearch(s, list, n, sizeof(*list), name_cmp) != NULL;
}

bool policy_builtin_aggregate(const char *name)
{
    return in_sorted(aggregate_functions, PGW_ARRAY_LEN(aggregate_functions), name);
}

bool policy_builtin_scalar(const char *name)
{
    return in_sorted(scalar_functions, PGW_ARRAY_LEN(scalar_functions), name);
}

bool policy_builtin_volatile(const char *name)
{
    return in_list(volatile_functions, PGW_ARRAY_LEN(volatile_functions), name);
}

/* ---- what built-ins' arguments name ---- */

#define T PGW_ARG_TEXT
#define REL PGW_ARG_REL
#define VOL PGW_ARG_REL_VOLUME
#define TYP PGW_ARG_TYPE
#define FUN PGW_ARG_FUNC
#define NSP PGW_ARG_NAMESPACE
#define ROL PGW_ARG_ROLE
#define DB PGW_ARG_DATABASE
#define CON PGW_ARG_CONSTRAINT
#define TRG PGW_ARG_TRIGGER
#define RUL PGW_ARG_RULE
#define STX PGW_ARG_STATISTICS
#define COL PGW_ARG_COLUMN
#define CLS PGW_ARG_CLASS
#define OBJ PGW_ARG_OBJECT
#define SUB PGW_ARG_SUBID
#define SET PGW_ARG_SETTING
#define TYV PGW_ARG_TYPE_VECTOR
#define OPR PGW_ARG_OPERATOR
#define COLL PGW_ARG_COLLATION
#define V PGW_ARG_VALUE
#define STAT_FN(n)                                                                                 \
    {                                                                                              \
        "pg_stat_get_" n, 1, {VOL}, PGW_CALL_ARGS, NULL                                            \
    }

/* Every allowlisted built-in that takes an object, by name and number of
 * arguments (an overload that differs only in argument types, e.g. role
 * name or role OID, has one entry: both forms are handled). Sorted by name
 * for the binary search. A built-in missing here that takes an object is a
 * hole: tests/unit/test_catalog.c checks every allowlisted function whose
 * name suggests an object (has_*, pg_get_*, *_description, to_reg*, ...)
 * has an entry. */
static const PgwBuiltinObjects builtin_objects[] = {
    {"col_description", 2, {REL, COL}, PGW_CALL_ARGS, NULL},
    {"current_database", 0, {V}, PGW_CALL_TENANT, NULL},
    {"current_setting", 1, {SET | T}, PGW_CALL_ARGS, NULL},
    {"current_setting", 2, {SET | T, V}, PGW_CALL_ARGS, NULL},
    {"format_type", 2, {TYP, V}, PGW_CALL_ARGS, NULL},
    {"has_any_column_privilege", 2, {REL | T, V}, PGW_CALL_ARGS, NULL},
    {"has_any_column_privilege", 3, {ROL | T, REL | T, V}, PGW_CALL_ARGS, NULL},
    {"has_column_privilege", 3, {REL | T, COL | T, V}, PGW_CALL_ARGS, NULL},
    {"has_column_privilege", 4, {ROL | T, REL | T, COL | T, V}, PGW_CALL_ARGS, NULL},
    {"has_database_privilege", 2, {DB | T, V}, PGW_CALL_ARGS, NULL},
    {"has_database_privilege", 3, {ROL | T, DB | T, V}, PGW_CALL_ARGS, NULL},
    {"has_foreign_data_wrapper_privilege", 3, {ROL | T, V, V}, PGW_CALL_ARGS, NULL},
    {"has_function_privilege", 2, {FUN | T, V}, PGW_CALL_ARGS, NULL},
    {"has_function_privilege", 3, {ROL | T, FUN | T, V}, PGW_CALL_ARGS, NULL},
    {"has_language_privilege", 3, {ROL | T, V, V}, PGW_CALL_ARGS, NULL},
    {"has_schema_privilege", 2, {NSP | T, V}, PGW_CALL_ARGS, NULL},
    {"has_schema_privilege", 3, {ROL | T, NSP | T, V}, PGW_CALL_ARGS, NULL},
    {"has_sequence_privilege", 2, {REL | T, V}, PGW_CALL_ARGS, NULL},
    {"has_sequence_privilege", 3, {ROL | T, REL | T, V}, PGW_CALL_ARGS, NULL},
    {"has_server_privilege", 3, {ROL | T, V, V}, PGW_CALL_ARGS, NULL},
    {"has_table_privilege", 2, {REL | T, V}, PGW_CALL_ARGS, NULL},
    {"has_table_privilege", 3, {ROL | T, REL | T, V}, PGW_CALL_ARGS, NULL},
    {"has_tablespace_privilege", 3, {ROL | T, V, V}, PGW_CALL_ARGS, NULL},
    {"has_type_privilege", 2, {TYP | T, V}, PGW_CALL_ARGS, NULL},
    {"has_type_privilege", 3, {ROL | T, TYP | T, V}, PGW_CALL_ARGS, NULL},
    {"obj_description", 1, {REL}, PGW_CALL_ARGS, NULL},
    {"obj_description", 2, {OBJ, CLS | T}, PGW_CALL_ARGS, NULL},
    {"oidvectortypes", 1, {TYV}, PGW_CALL_ARGS, NULL},
    /* Other sessions are other tenants: none blocks one's own. */
    {"pg_blocking_pids", 1, {V}, PGW_CALL_CONST, "'{}'::pg_catalog.int4[]"},
    {"pg_column_is_updatable", 3, {REL, V, V}, PGW_CALL_ARGS, NULL},
    {"pg_database_size", 1, {DB | T}, PGW_CALL_CONST, "NULL::pg_catalog.int8"},
    {"pg_describe_object", 3, {CLS, OBJ, SUB}, PGW_CALL_ARGS, NULL},
    {"pg_function_is_visible", 1, {FUN}, PGW_CALL_ARGS, NULL},
    {"pg_get_constraintdef", 1, {CON}, PGW_CALL_ARGS, NULL},
    {"pg_get_constraintdef", 2, {CON, V}, PGW_CALL_ARGS, NULL},
    {"pg_get_expr", 2, {V, REL}, PGW_CALL_ARGS, NULL},
    {"pg_get_expr", 3, {V, REL, V}, PGW_CALL_ARGS, NULL},
    {"pg_get_function_arg_default", 2, {FUN, V}, PGW_CALL_ARGS, NULL},
    {"pg_get_function_arguments", 1, {FUN}, PGW_CALL_ARGS, NULL},
    {"pg_get_function_identity_arguments", 1, {FUN}, PGW_CALL_ARGS, NULL},
    {"pg_get_function_result", 1, {FUN}, PGW_CALL_ARGS, NULL},
    {"pg_get_function_sqlbody", 1, {FUN}, PGW_CALL_ARGS, NULL},
    {"pg_get_functiondef", 1, {FUN}, PGW_CALL_ARGS, NULL},
    {"pg_get_indexdef", 1, {REL}, PGW_CALL_ARGS, NULL},
    {"pg_get_indexdef", 3, {REL, V, V}, PGW_CALL_ARGS, NULL},
    {"pg_get_partition_constraintdef", 1, {REL}, PGW_CALL_ARGS, NULL},
    {"pg_get_partkeydef", 1, {REL}, PGW_CALL_ARGS, NULL},
    {"pg_get_replica_identity_index", 1, {REL | T}, PGW_CALL_ARGS, NULL},
    {"pg_get_ruledef", 1, {RUL}, PGW_CALL_ARGS, NULL},
    {"pg_get_ruledef", 2, {RUL, V}, PGW_CALL_ARGS, NULL},
    {"pg_get_serial_sequence", 2, {REL | T, COL | T}, PGW_CALL_ARGS, NULL},
    {"pg_get_statisticsobjdef", 1, {STX}, PGW_CALL_ARGS, NULL},
    {"pg_get_statisticsobjdef_columns", 1, {STX}, PGW_CALL_ARGS, NULL},
    {"pg_get_statisticsobjdef_expressions", 1, {STX}, PGW_CALL_ARGS, NULL},
    {"pg_get_triggerdef", 1, {TRG}, PGW_CALL_ARGS, NULL},
    {"pg_get_triggerdef", 2, {TRG, V}, PGW_CALL_ARGS, NULL},
    {"pg_get_userbyid", 1, {ROL}, PGW_CALL_ARGS, NULL},
    {"pg_get_viewdef", 1, {REL | T}, PGW_CALL_VIEWDEF, NULL},
    {"pg_get_viewdef", 2, {REL | T, V}, PGW_CALL_VIEWDEF, NULL},
    {"pg_has_role", 2, {ROL | T, V}, PGW_CALL_ARGS, NULL},
    {"pg_has_role", 3, {ROL | T, ROL | T, V}, PGW_CALL_ARGS, NULL},
    {"pg_identify_object", 3, {CLS, OBJ, SUB}, PGW_CALL_ARGS, NULL},
    {"pg_identify_object_as_address", 3, {CLS, OBJ, SUB}, PGW_CALL_ARGS, NULL},
    {"pg_index_column_has_property", 3, {REL | T, V, V}, PGW_CALL_ARGS, NULL},
    {"pg_index_has_property", 2, {REL | T, V}, PGW_CALL_ARGS, NULL},
    {"pg_indexes_size", 1, {VOL | T}, PGW_CALL_ARGS, NULL},
    {"pg_is_other_temp_schema", 1, {NSP}, PGW_CALL_ARGS, NULL},
    {"pg_partition_ancestors", 1, {REL | T}, PGW_CALL_PARTITION, NULL},
    {"pg_partition_root", 1, {REL | T}, PGW_CALL_PARTITION, NULL},
    {"pg_partition_tree", 1, {REL | T}, PGW_CALL_PARTITION, NULL},
    {"pg_relation_is_publishable", 1, {REL | T}, PGW_CALL_ARGS, NULL},
    {"pg_relation_is_updatable", 2, {REL, V}, PGW_CALL_ARGS, NULL},
    {"pg_relation_size", 1, {VOL | T}, PGW_CALL_ARGS, NULL},
    {"pg_relation_size", 2, {VOL | T, V}, PGW_CALL_ARGS, NULL},
    {"pg_safe_snapshot_blocking_pids", 1, {V}, PGW_CALL_CONST, "'{}'::pg_catalog.int4[]"},
    /* A sequence's value counts every tenant's rows. */
    {"pg_sequence_last_value", 1, {REL | T}, PGW_CALL_CONST, "NULL::pg_catalog.int8"},
    {"pg_settings_get_flags", 1, {SET | T}, PGW_CALL_ARGS, NULL},
    STAT_FN("analyze_count"),
    STAT_FN("autoanalyze_count"),
    STAT_FN("autovacuum_count"),
    STAT_FN("blocks_fetched"),
    STAT_FN("blocks_hit"),
    STAT_FN("dead_tuples"),
    STAT_FN("ins_since_vacuum"),
    STAT_FN("last_analyze_time"),
    STAT_FN("last_autoanalyze_time"),
    STAT_FN("last_autovacuum_time"),
    STAT_FN("last_vacuum_time"),
    STAT_FN("lastscan"),
    STAT_FN("live_tuples"),
    STAT_FN("mod_since_analyze"),
    STAT_FN("numscans"),
    STAT_FN("tuples_deleted"),
    STAT_FN("tuples_fetched"),
    STAT_FN("tuples_hot_updated"),
    STAT_FN("tuples_inserted"),
    STAT_FN("tuples_returned"),
    STAT_FN("tuples_updated"),
    STAT_FN("vacuum_count"),
    STAT_FN("xact_blocks_fetched"),
    STAT_FN("xact_blocks_hit"),
    STAT_FN("xact_numscans"),
    STAT_FN("xact_tuples_deleted"),
    STAT_FN("xact_tuples_fetched"),
    STAT_FN("xact_tuples_hot_updated"),
    STAT_FN("xact_tuples_inserted"),
    STAT_FN("xact_tuples_returned"),
    STAT_FN("xact_tuples_updated"),
    {"pg_statistics_obj_is_visible", 1, {STX}, PGW_CALL_ARGS, NULL},
    {"pg_table_is_visible", 1, {REL}, PGW_CALL_ARGS, NULL},
    {"pg_table_size", 1, {VOL | T}, PGW_CALL_ARGS, NULL},
    {"pg_tablespace_size", 1, {V}, PGW_CALL_CONST, "NULL::pg_catalog.int8"},
    {"pg_total_relation_size", 1, {VOL | T}, PGW_CALL_ARGS, NULL},
    {"pg_type_is_visible", 1, {TYP}, PGW_CALL_ARGS, NULL},
    {"row_security_active", 1, {REL | T}, PGW_CALL_ARGS, NULL},
    {"shobj_description", 2, {OBJ, CLS | T}, PGW_CALL_ARGS, NULL},
    {"to_regclass", 1, {REL | T}, PGW_CALL_TO_REG, "regclass"},
    {"to_regcollation", 1, {COLL | T}, PGW_CALL_TO_REG, "regcollation"},
    {"to_regnamespace", 1, {NSP | T}, PGW_CALL_TO_REG, "regnamespace"},
    {"to_regoper", 1, {OPR | T}, PGW_CALL_TO_REG, "regoper"},
    {"to_regoperator", 1, {OPR | T}, PGW_CALL_TO_REG, "regoperator"},
    {"to_regproc", 1, {FUN | T}, PGW_CALL_TO_REG, "regproc"},
    {"to_regprocedure", 1, {FUN | T}, PGW_CALL_TO_REG, "regprocedure"},
    {"to_regrole", 1, {ROL | T}, PGW_CALL_TO_REG, "regrole"},
    {"to_regtype", 1, {TYP | T}, PGW_CALL_TO_REG, "regtype"},
};

#undef T
#undef REL
#undef VOL
#undef TYP
#undef FUN
#undef NSP
#undef ROL
#undef DB
#undef CON
#undef TRG
#undef RUL
#undef STX
#undef COL
#undef CLS
#undef OBJ
#undef SUB
#undef SET
#undef OPR
#undef COLL
#undef V
#undef STAT_FN


const PgwBuiltinObjects *policy_builtin_objects(const char *name, size_t nargs)
{
    size_t lo = 0, hi = PGW_ARRAY_LEN(builtin_objects);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, builtin_objects[mid].name);
        if (c == 0) {
            /* Overloads by argument count are adjacent. */
            while (mid > 0 && strcmp(builtin_objects[mid - 1].name, name) == 0)
                mid--;
            for (; mid < PGW_ARRAY_LEN(builtin_objects) &&
                   strcmp(builtin_objects[mid].name, name) == 0;
                 mid++)
                if (builtin_objects[mid].nargs == nargs)
                    return &builtin_objects[mid];
            return NULL;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* The reg* types: each input function resolves a name with the backend's
 * own lookup, blind to the tenant's view (OIDs: regclass 2205, regtype
 * 2206, regproc 24, regprocedure 2202, regoper 2203, regoperator 2204,
 * regconfig 3734, regdictionary 3769, regnamespace 4089, regrole 4096,
 * regcollation 4191, and their array types), and the catalog whose visible
 * set a value of the type is checked against. */
static const struct {
    const char *name;
    uint32_t oid, array_oid;
    const char *catalog;
} reg_types[] = {
    {"regclass", 2205, 2210, "pg_class"},         {"regcollation", 4191, 4192, "pg_collation"},
    {"regconfig", 3734, 3735, "pg_ts_config"},    {"regdictionary", 3769, 3770, "pg_ts_dict"},
    {"regnamespace", 4089, 4090, "pg_namespace"}, {"regoper", 2203, 2208, "pg_operator"},
    {"regoperator", 2204, 2209, "pg_operator"},   {"regproc", 24, 1008, "pg_proc"},
    {"regprocedure", 2202, 2207, "pg_proc"},      {"regrole", 4096, 4097, "pg_authid"},
    {"regtype", 2206, 2211, "pg_type"},
};

const char *policy_builtin_reg_catalog(const char *name)
{
    for (size_t i = 0; i < PGW_ARRAY_LEN(reg_types); i++)
        if (strcmp(reg_types[i].name, name) == 0)
            return reg_types[i].catalog;
    return NULL;
}

bool policy_builtin_is_reg_type(const char *name)
{
    for (size_t i = 0; i < PGW_ARRAY_LEN(reg_types); i++)
        if (strcmp(reg_types[i].name, name) == 0)
            return true;
    return false;
}

bool policy_builtin_is_reg_type_oid(uint32_t oid)
{
    for (size_t i = 0; i < PGW_ARRAY_LEN(reg_types); i++)
        if (reg_types[i].oid == oid || reg_types[i].array_oid == oid)
            return true;
    return false;
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

/* Settings a tenant may not read: where the server keeps its files, how it
 * accepts connections, what it archives and replicates from, which
 * libraries it loads. Sorted, lower case. */
static const char *const hidden_settings[] = {
    "archive_cleanup_command",
    "archive_command",
    "archive_library",
    "config_file",
    "data_directory",
    "dynamic_library_path",
    "external_pid_file",
    "hba_file",
    "ident_file",
    "krb_server_keyfile",
    "listen_addresses",
    "local_preload_libraries",
    "log_directory",
    "log_filename",
    "port",
    "primary_conninfo",
    "primary_slot_name",
    "promote_trigger_file",
    "recovery_end_command",
    "restore_command",
    "session_preload_libraries",
    "shared_preload_libraries",
    "ssl_ca_file",
    "ssl_cert_file",
    "ssl_crl_dir",
    "ssl_crl_file",
    "ssl_dh_params_file",
    "ssl_key_file",
    "ssl_passphrase_command",
    "stats_temp_directory",
    "unix_socket_directories",
    "unix_socket_group",
    "unix_socket_permissions",
};

bool policy_setting_visible(const char *name)
{
    char lower[128];
    size_t n = 0;
    for (; name[n] != '\0' && n + 1 < sizeof(lower); n++)
        lower[n] = (char)tolower((unsigned char)name[n]);
    lower[n] = '\0';
    return !in_sorted(hidden_settings, PGW_ARRAY_LEN(hidden_settings), lower);
}

void policy_setting_append_hidden(PgwBuf *b)
{
    for (size_t i = 0; i < PGW_ARRAY_LEN(hidden_settings); i++) {
        if (i > 0)
            buf_append_str(b, ", ");
        policy_append_literal(b, hidden_settings[i]);
    }
}

/* ---- SQL quoting ---- */

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

bool policy_builtin_tables_sorted(void)
{
    for (size_t i = 1; i < PGW_ARRAY_LEN(builtin_objects); i++)
        if (strcmp(builtin_objects[i - 1].name, builtin_objects[i].name) > 0)
            return false;
    for (size_t i = 1; i < PGW_ARRAY_LEN(scalar_functions); i++)
        if (strcmp(scalar_functions[i - 1], scalar_functions[i]) >= 0)
            return false;
    for (size_t i = 1; i < PGW_ARRAY_LEN(aggregate_functions); i++)
        if (strcmp(aggregate_functions[i - 1], aggregate_functions[i]) >= 0)
            return false;
    for (size_t i = 1; i < PGW_ARRAY_LEN(hidden_settings); i++)
        if (strcmp(hidden_settings[i - 1], hidden_settings[i]) >= 0)
            return false;
    return true;
}
