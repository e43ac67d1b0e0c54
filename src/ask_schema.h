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

/* Choose at most max tables relevant to the question, without any model:
 * words of the question (lower-cased, snake_case and camelCase split, plural
 * endings stripped) are scored against table names, column names and
 * comments, rare words counting more; the tables of the best-matching schema
 * are preferred, then foreign-key neighbours of the top hits fill the
 * remaining places. Earlier questions of the session count at half weight so
 * follow-ups keep their tables. Deterministic. Writes table indexes to out
 * (room for max) and returns how many. */
size_t ask_select_tables(const PgwAskSchema *s, const char *question,
                         const char *const *history_questions, size_t nhist, size_t max,
                         size_t *out);

/* The tables (all of them when tables is NULL) as annotated DDL: CREATE
 * TABLE with column types, NOT NULL, PRIMARY KEY, REFERENCES, and comments
 * as -- comments. malloc'd. */
char *ask_schema_ddl(const PgwAskSchema *s, const size_t *tables, size_t ntables);

#endif
