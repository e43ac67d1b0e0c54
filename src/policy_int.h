/*
 * policy_int.h — what the policy's files share and nothing outside them
 * sees: the state of one rewrite and the functions each file offers the
 * others. The policy is four files with one entry point (policy_rewrite):
 *
 *   policy.c         statement kinds, the driver: parse, walk each statement,
 *                    splice replacements, deparse and verify
 *   policy_rel.c     relation references: resolution (CTE scope, pg_catalog,
 *                    the pinned search_path) and the filtered, masked derived
 *                    tables that replace them
 *   policy_expr.c    expressions: the function allowlist, leak-proofness
 *                    (which decides the optimization fence), SELECT walking
 *   policy_object.c  objects named inside expressions: relations, types,
 *                    functions, schemas, roles and databases given by name or
 *                    OID to casts and built-in functions; parameter types;
 *                    the per-statement state of the virtual catalog
 *   policy_catalog.c the virtual catalog: visible sets, catalog views
 *   policy_builtin.c constant tables of built-ins and settings
 *
 * Nothing here is thread-shared: a Rewrite lives on the stack of one
 * policy_rewrite_uncached() call.
 */
#ifndef PGW_POLICY_INT_H
#define PGW_POLICY_INT_H

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <string.h>

#include "buf.h"
#include "policy.h"

#define NODE(n, kind) ((n) != NULL && (n)->node_case == PG_QUERY__NODE__NODE_##kind)

static inline bool policy_in_list(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}
#define IN_LIST(list, s) policy_in_list((list), PGW_ARRAY_LEN(list), (s))

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
    struct PgwObjectState *objects; /* policy_object.c's per-statement state */
} Rewrite;

/* Where the walker is: leak analysis exempts the outermost SELECT list and
 * aggregate arguments. */
typedef struct Walk {
    Rewrite *rw;
    const Scope *scope;
    bool exempt;
} Walk;

/* ---- policy.c ---- */
int policy_refuse(Rewrite *rw, const char *sqlstate, const char *hint, const char *fmt, ...)
    PGW_PRINTF(4, 5);
/* Replace a protobuf string field (unset fields share protobuf-c's static
 * empty string, which must not be freed). */
void policy_set_string(char **field, const char *value);
const char *policy_string_value(const PgQuery__Node *n);
int policy_check_set_config(Rewrite *rw, const PgQuery__FuncCall *fc);
/* Parse generated SQL into a tree; NULL when it does not parse (policy_object.c). */
PgQuery__ParseResult *policy_parse_tree(const char *sql);

/* ---- policy_rel.c ---- */
const PgwTablePolicy *policy_table_policy(const PgwConfig *cfg, const char *schema,
                                          const char *name);
bool policy_is_catalog_schema(const char *schema);
/* May the tenant read user relation schema.name (ignoring whether the
 * backend has it)? */
bool policy_relation_readable(const PgwConfig *cfg, const char *schema, const char *name);
const PgwColumnMask *policy_column_mask(const PgwTablePolicy *tp, const char *column);
int policy_split_search_path(Rewrite *rw);

/* Resolve a relation name as PostgreSQL would for this tenant (CTE names
 * aside): a readable user relation (*t set), a catalog relation (*catalog
 * set to its schema), or nothing, which is also the answer for a relation
 * the tenant may not read. */
typedef enum { RESOLVED_NONE, RESOLVED_USER, RESOLVED_CATALOG } Resolved;
Resolved policy_resolve_relation(const Rewrite *rw, const PgQuery__RangeVar *rv,
                                 const PgwSchemaTable **t, const char **catalog);
/* The same for a name written in a string ('customers', 'public."Odd"'), as
 * regclass input reads it; RESOLVED_NONE also when the text is not a name. */
Resolved policy_resolve_relation_text(const Rewrite *rw, const char *text, const PgwSchemaTable **t,
                                      const char **catalog);
/* A RangeVar in FROM: a CTE reference, a catalog, or a user relation. */
int policy_visit_range_var(Walk *w, PgQuery__Node **slot);

/* ---- policy_expr.c ---- */
int policy_walk_node(Walk *w, ProtobufCMessage *msg);
int policy_walk_slot(Walk *w, PgQuery__Node **slot);
int policy_walk_slots(Walk *w, PgQuery__Node **slots, size_t n);
int policy_walk_select(Rewrite *rw, PgQuery__SelectStmt *s, const Scope *up, bool outermost);
bool policy_is_constant(const PgQuery__Node *n);

/* ---- policy_object.c ---- */
typedef struct PgwObjectState PgwObjectState;
/* A type name used in a column definition or a declaration: refused when it
 * names a relation's row type the tenant may not see, or a reg* type. */
int policy_check_type_name(Walk *w, const PgQuery__TypeName *tn);
/* Casts to reg* types and row types. Returns 1 when the cast was handled
 * completely (walked and rewritten), 0 when the caller walks it as any other
 * expression, -1 when refused. */
int policy_object_type_cast(Walk *w, PgQuery__TypeCast *tc);
/* A built-in function call named name (already allowed), after its
 * arguments were walked: object arguments are checked or rewritten so a
 * hidden object answers as a missing one. May replace *slot; everything it
 * generates calls built-ins as pg_catalog.name. */
int policy_object_func_call(Rewrite *rw, PgQuery__Node **slot, const char *name);
/* The filtered view of a catalog relation (policy_rel.c's rewrite_catalog):
 * appends "(SELECT ... FROM schema.name r WHERE ..." or refuses. */
int policy_object_catalog_view(Rewrite *rw, PgwBuf *b, const char *schema, const char *name);
/* Driver hooks (policy.c), per statement: before the walk (the pre-pass, and
 * for the first statement the Parse parameter types), after the
 * replacements are spliced in (attach the visible sets' WITH), and when the
 * rewrite ends. */
int policy_object_prepare(Rewrite *rw, PgQuery__Node **stmt);
int policy_object_finish(Rewrite *rw, PgQuery__Node **stmt);
void policy_object_reset(Rewrite *rw);
/* Around deparse: quote (true) and unquote (false) FETCH/MOVE cursor names,
 * which libpg_query 15's deparser writes without quotes. */
void policy_object_portal_names(PgQuery__ParseResult *tree, bool quote);

#endif
