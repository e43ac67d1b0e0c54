/*
 * policy_catalog.h — the tenant's virtual catalog: one coherent set of
 * visible objects (relations, types, schemas, functions, constraints,
 * triggers, roles, the database) written as SQL from the configuration and
 * evaluated by the backend at run time, and the filtered views of
 * pg_catalog and information_schema relations built on those sets.
 *
 * The policy (policy_rel.c) asks this module how to treat a catalog relation
 * it found in FROM and gets the SQL of a derived table with exactly the
 * relation's columns, rows about invisible objects removed, and volume
 * figures of row-filtered relations NULL. policy_object.c uses the same sets
 * to check OIDs and names given to functions and casts. This module
 * produces SQL text only; it never parses or walks trees.
 *
 * For compatibility the built-in tables (functions, settings, quoting) are
 * declared in policy_builtin.h, which this header includes.
 */
#ifndef PGW_POLICY_CATALOG_H
#define PGW_POLICY_CATALOG_H

#include "buf.h"
#include "config.h"
#include "pgw.h"
#include "policy_builtin.h"
#include "schema.h"

typedef enum {
    PGW_CATALOG_UNKNOWN, /* not in the rule table: refused (or 42P01 if absent) */
    PGW_CATALOG_AS_IS, /* holds nothing tenant-specific: readable unchanged */
    PGW_CATALOG_FILTERED, /* rows about hidden objects are removed */
    PGW_CATALOG_REFUSED, /* values, other sessions, server configuration */
} PgwCatalogAccess;

PgwCatalogAccess policy_catalog_access(const char *schema, const char *name);

/* The same, with the rule's row filter (a template; NULL when the relation
 * is read as is or has no rule): what %W(cat) selects. */
PgwCatalogAccess policy_catalog_rule_filter(const char *schema, const char *name,
                                            const char **filter);

/* The visible sets, in dependency order (each uses only sets before it).
 * Each is a relation of OIDs (column o); PGW_SET_HCOL (hidden columns) has
 * columns rel and att. */
typedef enum {
    PGW_SET_NSPBASE, /* schemas holding something readable, the fixed ones (%n) */
    PGW_SET_RELBASE, /* relations the config lets the tenant read, catalogs, composite types */
    PGW_SET_HCOL, /* columns hidden by mask = hide */
    PGW_SET_REL, /* ... plus their indexes and the sequences they own */
    PGW_SET_UNF, /* visible user relations without a row filter (and their indexes), never sequences */
    PGW_SET_ROWREL, /* visible relations whose row type may be seen */
    PGW_SET_PROC,
    PGW_SET_TYPE, /* types of base schemas, and the ones visible columns and functions use */
    PGW_SET_NSP, /* the base schemas and the schemas of visible types (pg_namespace) */
    PGW_SET_CON,
    PGW_SET_TRIG,
    PGW_SET_ROLE,
    PGW_SET_DB,
    PGW_NSETS
} PgwSet;

/* The state one statement's generated SQL shares. */
typedef struct PgwCatalogCtx {
    const PgwConfig *cfg;
    const char *tenant; /* the database name the tenant sees (its dbname) */
    const char *const *search_path; /* the pinned search_path, pg_catalog left out */
    size_t nsearch_path;
    bool inline_sets; /* the statement has no WITH to carry the sets: expand in place */
    /* Bit (1 << PgwSet) per set referenced so far; above PGW_NSETS, one bit
     * per catalog rule used as a set (%W, policy_catalog.c). */
    uint64_t used;
    unsigned syscols; /* PGW_SYSCOL_* the statement names */
    /* Which columns the statement can read: a view leaves out the others
     * (and their rewritten values). NULL: every column. */
    bool (*column_used)(const void *arg, const char *column);
    const void *column_arg;
} PgwCatalogCtx;

#define PGW_SYSCOL_TABLEOID 0x01u
#define PGW_SYSCOL_CTID 0x02u
#define PGW_SYSCOL_XMIN 0x04u
#define PGW_SYSCOL_XMAX 0x08u
#define PGW_SYSCOL_CMIN 0x10u
#define PGW_SYSCOL_CMAX 0x20u
/* The PGW_SYSCOL_* bit of a column name, 0 when it is no system column. */
unsigned policy_catalog_syscol(const char *column);

/* Append tmpl with its placeholders expanded (the template language is
 * described in policy_catalog.c). Used for generated SQL outside catalog
 * views: OID wrappers and run-time name resolution. */
void policy_catalog_expand(PgwCatalogCtx *cc, PgwBuf *b, const char *tmpl);

/* Append "(SELECT <columns> FROM schema.name r WHERE <filter>" (no closing
 * parenthesis: the caller adds the fence and alias) for a FILTERED catalog
 * relation; t is the relation as the backend's snapshot has it (its
 * columns), NULL when unknown. Returns -1 when the view needs the columns
 * and t does not have them. */
int policy_catalog_view(PgwCatalogCtx *cc, PgwBuf *b, const char *schema, const char *name,
                        const PgwSchemaTable *t) PGW_WUR;

/* Append "WITH pgwarden_x AS (...), ... SELECT 1": the definitions of every
 * set referenced so far (and of those they use), in dependency order.
 * Nothing when none was referenced. */
void policy_catalog_append_with(PgwCatalogCtx *cc, PgwBuf *b);

/* The i-th catalog relation of the rule table (name, and its schema in
 * *schema); NULL past the end. For tests. */
const char *policy_catalog_rule_at(size_t i, const char **schema);

/* The name every generated CTE starts with; clients may not use it. */
#define PGW_CATALOG_RESERVED_PREFIX "pgwarden_"

#endif
