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
 *                    OID to casts and built-in functions
 *   policy_object_stmt.c  the statement around them: pre-pass, parameter
 *                    types, star expansion, the visible sets' WITH (their
 *                    shared state: policy_object_int.h)
 *   policy_catalog.c the virtual catalog: visible sets, catalog views
 *   policy_builtin.c constant tables of built-ins and settings
 *   policy_qual.c    the leak analysis: which quals may run below a row
 *                    filter (an allowlist of typed shapes), the FROM items
 *                    of each query level that column references resolve to
 *   policy_guard.c   bounds checked before anything recursive runs: nesting
 *                    depth of the packed parse tree, stack for the parse
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
#include "config.h"
#include "schema.h"

/* The public header is not included: the module's own .c files include both,
 * and a private header that includes its public one makes an include cycle. */
typedef struct PgwPolicyCtx PgwPolicyCtx;
typedef struct PgwPolicyResult PgwPolicyResult;

#define NODE(n, kind) ((n) != NULL && (n)->node_case == PG_QUERY__NODE__NODE_##kind)

static inline bool policy_in_list(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}
#define IN_LIST(list, s) policy_in_list((list), PGW_ARRAY_LEN(list), (s))

struct QualColumns;

/* CTE names visible at a point: the first nvisible CTEs of each enclosing
 * WITH (a non-recursive CTE sees only the ones before it); cte_cols[i]: the
 * columns CTE i passes through from base relations (leak analysis). */
typedef struct Scope {
    const struct Scope *up;
    const PgQuery__WithClause *with;
    size_t nvisible;
    struct QualColumns *cte_cols;
} Scope;

typedef struct Replacement {
    PgQuery__Node **slot; /* the RangeVar node to replace */
    char *body; /* "(SELECT ... WHERE ..." */
    char *tail; /* ") AS alias"; the fence, if any, goes between */
} Replacement;

/* ---- the leak analysis (policy_qual.c) ---- */

/* The output columns of a derived table or CTE, for column references from
 * outside: a column the subquery selects unchanged from a base relation
 * keeps that relation's facts (t, col, slot), so a qual on it is judged as
 * a qual on the base column, which is what the planner makes of it. */
typedef struct QualColumn {
    const char *name;
    const PgwSchemaTable *t; /* NULL: an expression or unknown: opaque */
    const PgwSchemaColumn *col;
    PgQuery__Node **slot; /* the base relation's derived table, NULL: read as is */
    bool plain;
} QualColumn;

typedef struct QualColumns {
    size_t n, cap;
    QualColumn *cols;
    bool complete; /* every output column is listed (by name) */
} QualColumns;

void qual_columns_free(QualColumns *c);

/* One FROM item of a query level, as a column reference can see it. */
typedef struct QualItem {
    const char *name; /* alias, else relation name; NULL: unnamed */
    const PgwSchemaTable *t; /* base relation whose columns are known; NULL: opaque */
    const PgQuery__Alias *alias; /* column aliases rename the first columns */
    PgQuery__Node **slot; /* replaced by a derived table: its slot; NULL: read as is */
    bool skip_hidden; /* columns masked "hide" are absent (the derived table drops them) */
    bool plain; /* false: a view whose derived table hides expressions */
    /* opaque items: a function in FROM (its whole-row value may be a
     * scalar, so x.f can call any one-argument function f on it) */
    const PgQuery__RangeFunction *func;
    /* opaque items: a derived table's or CTE's output columns, if known */
    const QualColumns *cols;
    QualColumns *owned_cols; /* freed with the level */
} QualItem;

/* The FROM items of one query level; up: the enclosing level (correlated
 * references). strict: the level is (inside) a sublink in a position that
 * may run below a row filter, so all of its expressions must be safe. */
typedef struct QualLevel {
    const struct QualLevel *up;
    size_t nitems, cap;
    QualItem *items;
    bool strict;
} QualLevel;

/* A column a safe qual uses: the derived table in slot must pass it through
 * unchanged (checked when the replacements are parsed). */
typedef struct QualNeed {
    PgQuery__Node **slot;
    const char *column;
} QualNeed;

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
    size_t ncolfix, colfix_cap;
    PgQuery__ColumnRef **colfix; /* schema.table.column references to shorten */
    size_t repl_cap;
    /* iso-policy: the leak analysis and the facts the result needs */
    size_t nneeds, needs_cap;
    QualNeed *needs;
    size_t nsafe_sublinks, safe_sublinks_cap;
    const PgQuery__SubLink **safe_sublinks; /* x IN (SELECT col ...) found safe at walk time */
    bool safe_sublinks_sorted;
    bool reads_protected; /* a filtered or masked relation or catalog is read (EXPLAIN) */
    size_t nrelations, relations_cap;
    char **relations; /* "schema.name" of every relation read, duplicates allowed */
    struct PgwObjectState *objects; /* policy_object.c's per-statement state */
} Rewrite;

/* Where the walker is: the CTE scope and the query level whose FROM items
 * column references resolve against. */
typedef struct Walk {
    Rewrite *rw;
    const Scope *scope;
    QualLevel *level;
    bool pushable; /* inside a qual that may run below a scan: sublinks are strict */
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
/* A RangeVar in FROM: a CTE reference, a catalog, or a user relation. It
 * is added to w->level as the FROM item it is. */
int policy_visit_range_var(Walk *w, PgQuery__Node **slot);
bool policy_cte_visible(const Scope *scope, const char *name);
/* Is pg_catalog searched before every schema of the pinned search_path? */
bool policy_catalog_first(const PgwConfig *cfg);

/* ---- policy_expr.c ---- */
int policy_walk_node(Walk *w, ProtobufCMessage *msg);
int policy_walk_slot(Walk *w, PgQuery__Node **slot);
int policy_walk_slots(Walk *w, PgQuery__Node **slots, size_t n);
/* One query level; up_level: the level its correlated references see;
 * out_type (may be NULL): set to the type of its single output column when
 * that is a plain column of a base relation (for x IN (SELECT col ...));
 * out_cols (may be NULL): filled with its output columns. */
#define WALK_OUTERMOST 1u
#define WALK_STRICT 2u
int policy_walk_select(Rewrite *rw, PgQuery__SelectStmt *s, const Scope *up,
                       const QualLevel *up_level, unsigned flags, uint32_t *out_type,
                       QualColumns *out_cols);
bool policy_is_constant(const PgQuery__Node *n);
/* Qualify a built-in name: ["x"] -> ["pg_catalog", "x"] (for operators and
 * functions in generated or user SQL). */
void policy_qualify_name(PgQuery__Node ***names, size_t *n, const char *schema);
/* Qualify what generated SQL (row filters, masks, catalog views, OID
 * wrappers) left unqualified in a rewritten tree: explicit operators, IN
 * (SELECT ...), ORDER BY USING, built-in function calls. */
int policy_qualify_names(ProtobufCMessage *tree);
/* Record a relation the statement reads ("schema.name"). */
void policy_note_relation(Rewrite *rw, const char *schema, const char *name);

/* ---- policy_qual.c ---- */
void qual_level_free(QualLevel *lv);
/* Add a FROM item to the level (t NULL: opaque). */
void qual_add_item(QualLevel *lv, const char *name, const PgwSchemaTable *t,
                   const PgQuery__Alias *alias, PgQuery__Node **slot, bool skip_hidden);
/* A qual (WHERE, JOIN ON, a HAVING conjunct without aggregates) that may be
 * evaluated below a scan: marks rw->leaky unless every conjunct is an
 * allowlisted shape or touches only relations without a row filter or mask. */
void qual_check_root(Walk *w, PgQuery__Node *qual);
/* Does the expression call an aggregate of its own level? (HAVING
 * conjuncts with one stay above the aggregation.) */
bool qual_has_aggregate(PgQuery__Node **slot);
/* An expression of a strict level outside its quals (target list, GROUP
 * BY, ORDER BY, LIMIT ...): marks rw->leaky unless it cannot fail. */
void qual_check_value(Walk *w, PgQuery__Node *n);
/* A level's output columns (simple SELECTs only; out stays incomplete
 * otherwise), renamed by column aliases if given. */
void qual_output_columns(Walk *w, const PgQuery__SelectStmt *s, const PgQuery__Alias *alias,
                         QualColumns *out);
void qual_rename_columns(QualColumns *cols, PgQuery__Node *const *names, size_t n);
/* The columns of the CTE a FROM reference names (NULL: unknown). */
const QualColumns *policy_cte_columns(const Scope *scope, const char *name);
/* x IN (SELECT col ...): the type of the subquery's output column (0 when
 * not a plain typed column), and whether the test is a safe comparison. */
uint32_t qual_output_type(Walk *w, const PgQuery__Node *target);
bool qual_sublink_test_ok(Walk *w, const PgQuery__SubLink *sl, uint32_t out_type);
/* JOIN ... USING (cols): the implied = comparisons between the items added
 * for the left (from lo) and right (from mid) sides. Returns -1 when refused. */
int qual_check_using(Walk *w, const PgQuery__JoinExpr *j, size_t lo, size_t mid);
/* An operator the grammar names implicitly (IN, BETWEEN, IS DISTINCT FROM,
 * NULLIF, CASE x WHEN, USING): refused when a schema of the search_path
 * other than pg_catalog defines an operator of that name and the built-in
 * one cannot be shown to win. l and r are the operands (NULL: unknown). */
int qual_check_implicit_operator(Walk *w, const char *name, const PgQuery__Node *l,
                                 const PgQuery__Node *r, const char *construct);
/* The same with operands already typed (Operand *, NULL: unknown). */
int qual_check_implicit_types(Walk *w, const char *name, const void *l, const void *r,
                              const char *construct);
/* PostgreSQL's functional notation: rel.f where f is no column of rel calls
 * f(rel), and (x).f calls f(x) when x has no field f, with f looked up
 * through the search_path. Refused (as a missing column) when it could
 * reach a function; -1 when refused. */
int qual_check_column_ref(Walk *w, const PgQuery__ColumnRef *cr);
int qual_check_indirection(Walk *w, const PgQuery__AIndirection *ind);

/* Apply the deferred column checks to the parsed replacement bodies
 * (bodies[i] replaces rw->repl[i]); marks rw->leaky when one fails. */
void qual_check_needs(Rewrite *rw, PgQuery__SelectStmt *const *bodies);

/* ---- policy_guard.c ---- */
/* Nesting depth of a packed ParseResult, computed without recursion;
 * returns false when it is deeper than max (or not a valid message). */
bool policy_guard_depth(const uint8_t *data, size_t len, int max, int *depth);
/* The stack libpg_query's parse of len bytes may need, and what the rest of
 * a rewrite needs for a tree depth levels deep. */
size_t policy_guard_parse_stack(size_t len);
size_t policy_guard_rewrite_stack(int depth);

#ifndef SQLSTATE_STATEMENT_TOO_COMPLEX
#define SQLSTATE_STATEMENT_TOO_COMPLEX "54001"
#endif

/* ---- policy_param.c ---- */
/* The highest $n below m (0: none). */
int policy_param_highest(const ProtobufCMessage *m);

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
