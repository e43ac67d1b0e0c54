/*
 * schema.h — what the policy knows about one tenant's backend: its relations
 * and their columns (with their type OIDs), the built-in comparison
 * operators that are leak-proof there, and the operators defined outside
 * pg_catalog, as PostgreSQL reports them.
 *
 * The runtime runs schema_introspection_sql() once on a backend session (and
 * again after a reload or a DDL-looking failure), hands the text rows to
 * schema_from_rows(), and keeps the resulting snapshot immutable and shared
 * by every policy_rewrite() for that tenant. This module does no I/O and
 * knows nothing about the policy: hidden tables are in the snapshot like any
 * other; the policy decides what a client may see.
 */
#ifndef PGW_SCHEMA_H
#define PGW_SCHEMA_H

#include "pgw.h"

typedef struct PgwSchemaColumn {
    char *name;
    char *type; /* format_type(atttypid, atttypmod), e.g. "character varying(20)" */
    bool is_text; /* typcategory 'S' (text, varchar, char, name, citext ...) */
    int attnum;
    uint32_t type_oid; /* atttypid; 0 when the row did not say (type unknown) */
} PgwSchemaColumn;

typedef struct PgwSchemaTable {
    char *schema;
    char *name;
    char relkind; /* 'r' table, 'v' view, 'm' matview, 'f' foreign, 'p' partitioned */
    size_t ncolumns;
    PgwSchemaColumn *columns; /* attnum order, dropped columns absent */
} PgwSchemaTable;

typedef struct PgwSchema PgwSchema;

/* The one SELECT the runtime runs. Result columns, in order, all text:
 *   0 nspname   1 relname   2 relkind   3 attnum (NULL: relation without columns)
 *   4 attname   5 format_type()   6 typcategory   7 atttypid
 *   8 operator row kind: NULL for relation rows; 'L' a leak-proof built-in
 *     comparison operator (= <> < > <= >= in pg_catalog whose function is
 *     proleakproof); 'U' an operator defined outside pg_catalog; 'F' the
 *     name of a function callable with one argument (any schema but
 *     information_schema): x.f and (x).f may call it; 'T' the name of a
 *     type that is not a relation's row type or its array (composite
 *     types, enums, domains, ranges, base and pseudo types, pg_catalog's
 *     too): with the relations, every type name the backend knows
 *   9 oprname, proname or typname   10 oprleft   11 oprright (type OIDs)
 * Operator, function and type rows carry their schema in column 0, NULL in 1..7.
 * Rows of one relation need not be adjacent; columns are sorted by attnum. */
const char *schema_introspection_sql(void);
#define SCHEMA_INTROSPECTION_NCOLS 12

/* Build a snapshot from that query's result: nrows x ncols text values in
 * row-major order, NULL for SQL NULL. Returns NULL when the shape is wrong
 * (ncols differs) or memory runs out. */
PgwSchema *schema_from_rows(size_t nrows, size_t ncols, const char *const *values);
void schema_free(PgwSchema *schema);

/* NULL when the backend has no such relation. Names compare exactly (as
 * PostgreSQL's identifiers do after case folding). */
const PgwSchemaTable *schema_table(const PgwSchema *schema, const char *nspname,
                                   const char *relname);
/* Is the built-in (pg_catalog) operator name(left, right) there and its
 * function leak-proof (pg_proc.proleakproof)? Only the comparison operators
 * = <> < > <= >= are in the snapshot. */
bool schema_leakproof_operator(const PgwSchema *schema, const char *name, uint32_t left,
                               uint32_t right);
/* Does schema nspname define an operator called name (outside pg_catalog)? */
bool schema_user_operator(const PgwSchema *schema, const char *nspname, const char *name);
/* Does schema nspname have a function called name that one argument can
 * call (PostgreSQL's functional notation: x.name and (x).name)? */
bool schema_unary_function(const PgwSchema *schema, const char *nspname, const char *name);

/* Does schema nspname have a type called name, visible or not: a 'T' row,
 * a relation's row type or its array type ("_name")? schema_has_types is
 * false for a snapshot built without type rows (the unit tests' fixtures),
 * where nothing can be said. */
bool schema_type(const PgwSchema *schema, const char *nspname, const char *name);
bool schema_has_types(const PgwSchema *schema);

/* A distinct number per snapshot in this process, for cache keys. */
unsigned long schema_generation(const PgwSchema *schema);
size_t schema_ntables(const PgwSchema *schema);
const PgwSchemaTable *schema_table_at(const PgwSchema *schema, size_t i);

#endif
