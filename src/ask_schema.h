/*
 * ask_schema.h — the schema an ASK prompt may show: one tenant's tables,
 * columns, keys and comments, already masked by the policy, plus the local
 * choice of the few tables relevant to a question.
 *
 * The runtime runs ask_schema_introspection_sql() on a backend session, hands
 * the text rows to ask_schema_build(), and keeps the snapshot (immutable,
 * shareable between threads) per tenant until a reload or a schema change.
 * Masking happens at build time, so nothing downstream can leak what the
 * tenant may not see: hidden and unreadable tables, hidden columns, their
 * comments and foreign keys pointing at them are simply not in the snapshot.
 * Their names are kept apart (never printed) so error texts can be scrubbed.
 * This module does no I/O.
 */
#ifndef PGW_ASK_SCHEMA_H
#define PGW_ASK_SCHEMA_H

#include "config.h"
#include "pgw.h"

/* The introspection SELECT. One row per column (a relation without columns
 * has one row with attnum NULL), ordered by schema, relation, attnum; every
 * value text, NULL for SQL NULL:
 *    0 nspname        1 relname        2 relkind ('r','v','m','f','p')
 *    3 relation comment
 *    4 attnum         5 attname        6 format_type()
 *    7 attnotnull ('t'/'true' or 'f'/'false')
 *    8 column comment
 *    9 column is part of the primary key ('t'/'true' or 'f'/'false')
 *   10 foreign key target schema  11 target relation  12 target column
 *      (NULL when the column references nothing; the first FK by name wins)
 * System schemas (pg_catalog, information_schema, pg_toast, temp) are left
 * out by the query and again by ask_schema_build(). */
const char *ask_schema_introspection_sql(void);

/* A cheap signature of the backend's catalog (one text row): it changes
 * with any DDL that could change the introspection's result — a table,
 * column, key or comment created, altered or dropped — because every such
 * change writes catalog rows, and so their count and transaction ids. */
const char *ask_schema_generation_sql(void);
#define ASK_SCHEMA_NCOLS 13

typedef struct PgwAskSchema PgwAskSchema;

/* Build the masked snapshot: only relations the tenant may read (their
 * [table.*] section, else default_access; never hidden ones, never system
 * schemas), without columns masked with 'hide'. cfg and tenant are only read
 * during the call (tenant may be NULL: the policy has no per-tenant
 * visibility today). Returns NULL when ncols is not ASK_SCHEMA_NCOLS. */
PgwAskSchema *ask_schema_build(const PgwConfig *cfg, const PgwTenant *tenant, size_t nrows,
                               size_t ncols, const char *const *values);
void ask_schema_free(PgwAskSchema *s);

/* Hex SHA-256 of the masked schema's DDL: equal for equal visible schemas,
 * so translation-cache entries survive a rebuild that changed nothing. */
char *ask_schema_fingerprint(const PgwAskSchema *s);

size_t ask_schema_ntables(const PgwAskSchema *s);
/* The i-th visible table's schema and name (owned by the snapshot). */
void ask_schema_table_name(const PgwAskSchema *s, size_t i, const char **schema, const char **name);
/* Index of a visible table, or -1. */
long ask_schema_find_table(const PgwAskSchema *s, const char *schema, const char *name);

/* Is this identifier (compared case-insensitively) the name of something the
 * tenant may see (schema, table or column)? Of something it may not (a
 * hidden or unreadable table, a hidden column) and that is not also visible? */
bool ask_schema_name_visible(const PgwAskSchema *s, const char *name, size_t len);
bool ask_schema_name_hidden(const PgwAskSchema *s, const char *name, size_t len);

/* ---- the tenant's values (ask_values.c) ----
 * Rows of (nspname, relname, attname, value), all text: distinct values of
 * the snapshot's columns read from the tenant's own filtered, masked rows.
 * Rows for anything the snapshot does not show, or for a masked column, are
 * dropped; see ask_values.c for the bounds. The index refers to the snapshot
 * it was built for and must not outlive it. NULL when ncols is wrong. */
#define ASK_VALUES_NCOLS 4
#define ASK_VALUE_MAX_LEN 80 /* bytes; longer values are not categories */
#define ASK_VALUES_PER_COLUMN 1000
#define ASK_VALUES_MAX_BYTES (4u << 20)
typedef struct PgwAskValues PgwAskValues;
PgwAskValues *ask_values_build(const PgwAskSchema *s, size_t nrows, size_t ncols,
                               const char *const *values);
void ask_values_free(PgwAskValues *v);
/* The SELECT that reads those rows: for each text column of each visible
 * table, materialized view or partition (at most max_columns, masked ones
 * never), up to ASK_VALUES_PER_COLUMN + 1 distinct values of at most
 * ASK_VALUE_MAX_LEN bytes among its first ASK_VALUES_SCAN_ROWS rows. The
 * caller must send it through the policy with the tenant's context, so row
 * filters and masks apply, and then ask_values_build() the result: a column
 * with more distinct values than ASK_VALUES_PER_COLUMN is no category and
 * is dropped. NULL when no column qualifies. malloc'd. */
#define ASK_VALUES_SCAN_ROWS 10000
char *ask_values_sql(const PgwAskSchema *s, size_t max_columns);
size_t ask_values_count(const PgwAskValues *v);

/* ---- choosing tables (ask_rank.c) ---- */

/* What a prompt's schema section may cost. */
typedef struct PgwAskBudget {
    size_t schema_bytes; /* DDL and sample values together */
    size_t min_tables; /* when choosing: never fewer (the budget gives way) */
    size_t max_tables; /* when choosing: never more; 0: the budget alone */
    size_t samples_per_column; /* example values per column; 0: none */
} PgwAskBudget;
#define ASK_DEFAULT_SCHEMA_BYTES (24u * 1024)
#define ASK_DEFAULT_MIN_TABLES 4
#define ASK_DEFAULT_MAX_TABLES 10
#define ASK_SAMPLES_PER_COLUMN 3
void ask_budget_default(PgwAskBudget *b);

/* A value of the tenant's the question named: table and column indexes,
 * the value as stored (owned by the PgwAskValues). */
typedef struct PgwAskMatch {
    size_t table, column;
    const char *value;
} PgwAskMatch;
typedef struct PgwAskMatches {
    size_t n;
    PgwAskMatch *v;
} PgwAskMatches;

typedef struct PgwAskChoice {
    bool whole; /* the whole schema fits the budget: all tables, schema order */
    size_t ntables;
    size_t *tables; /* what the prompt shows, in that order */
    size_t norder;
    size_t *order; /* every table, most relevant first (sample values follow it) */
    size_t nmatched; /* tables that matched the question: they lead order,
                      * each followed by the bridge it needed, if any */
    PgwAskMatches matches;
} PgwAskChoice;

/* The tables a prompt shows for this question: the whole schema when its
 * DDL fits budget->schema_bytes (budget NULL: the defaults), else a prefix
 * of the ranking that fits, at least min and at most max tables; never none
 * when the schema has a table. values may be NULL. Earlier questions of the
 * session count at half weight so follow-ups keep their tables. */
int ask_choose(const PgwAskSchema *s, const PgwAskValues *values, const char *question,
               const char *const *history_questions, size_t nhist, const PgwAskBudget *budget,
               PgwAskChoice *out) PGW_WUR;
void ask_choice_free(PgwAskChoice *c);

/* The ranking itself (see ask_rank.c): every table, most relevant first;
 * writes ntables indexes to out and returns ntables; *nmatched (may be
 * NULL) gets how many of them matched (they lead, with their bridges); matches (may be NULL) the values the
 * question named. */
size_t ask_rank_order(const PgwAskSchema *s, const PgwAskValues *values, const char *question,
                      const char *const *history_questions, size_t nhist, size_t *out,
                      size_t *nmatched, PgwAskMatches *matches);

/* The first max tables of the ranking (room for max in out); returns how
 * many: min(max, tables in the schema). ask_select_tables is the same
 * without values. Deterministic. */
size_t ask_rank_tables(const PgwAskSchema *s, const PgwAskValues *values, const char *question,
                       const char *const *history_questions, size_t nhist, size_t max, size_t *out);
size_t ask_select_tables(const PgwAskSchema *s, const char *question,
                         const char *const *history_questions, size_t nhist, size_t max,
                         size_t *out);

/* The tables (all of them when tables is NULL) as annotated DDL: CREATE
 * TABLE with column types, NOT NULL, PRIMARY KEY, REFERENCES, and comments
 * as -- comments. malloc'd. */
char *ask_schema_ddl(const PgwAskSchema *s, const size_t *tables, size_t ntables);

/* The schema section of a prompt for a choice: its tables' DDL and, when
 * budget->samples_per_column > 0 and values are given, up to that many
 * example values per column (the values the question named first), added
 * in the choice's order of relevance while the whole stays within
 * budget->schema_bytes. malloc'd. */
char *ask_schema_prompt_ddl(const PgwAskSchema *s, const PgwAskValues *values,
                            const PgwAskChoice *choice, const PgwAskBudget *budget);

/* The length of ask_schema_ddl() of the whole schema, without building it. */
size_t ask_schema_ddl_bytes(const PgwAskSchema *s);

/* The parts of a catalog generation signature covering what a prompt shows
 * (relations, columns, constraints, comments): each "count:sum of xmin" of a
 * catalog, so any DDL that changes one changes the signature. SQL text, for
 * "SELECT concat_ws('/', " ASK_SCHEMA_GENERATION_PARTS ")"; others that
 * depend on more catalogs append theirs. */
#define ASK_SCHEMA_GENERATION_PARTS                                                                \
    "(SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM pg_catalog.pg_class), "  \
    "(SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) "                             \
    "FROM pg_catalog.pg_attribute), "                                                              \
    "(SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) "                             \
    "FROM pg_catalog.pg_constraint), "                                                             \
    "(SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) "                             \
    "FROM pg_catalog.pg_description)"

#endif
