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
 * Catalogs are virtualized the same way (the rules live in
 * policy_catalog.c with the function and settings allowlists); functions
 * that take a relation by name or OID (has_table_privilege, to_regclass,
 * pg_get_viewdef ...) answer for a hidden relation as for a missing one.
 * EXPLAIN, PREPARE and DECLARE rewrite their statement exactly as if it ran
 * alone, and are refused the same way.
 *
 * Unqualified names resolve against the CTE scope, then pg_catalog, then the
 * pinned search_path (clients cannot SET it), skipping relations the tenant
 * may not read, so a hidden relation is indistinguishable from a missing one:
 * both get PostgreSQL's own 42P01 message. policy_rewrite() (the cached
 * entry point) lives in policy_cache.c.
 */
#include "policy.h"

#include <ctype.h>
#include <pg_query.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "policy_catalog.h"
#include "policy_walk.h"

#define NODE(n, kind) ((n) != NULL && (n)->node_case == PG_QUERY__NODE__NODE_##kind)

/* ------------------------------------------------------------------------ */
/* Allowlists                                                                 */
/* ------------------------------------------------------------------------ */

static const char *const leakproof_operators[] = {"<", "<=", "<>", "=", ">", ">="};

static bool in_list(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}
#define IN_LIST(list, s) in_list((list), PGW_ARRAY_LEN(list), (s))


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
        bool quoted = *p == '"';
        if (quoted) {
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
        if (!quoted)
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
            policy_append_literal(b, tenant_id);
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
            policy_append_ident(b, c->name);
            buf_printf(b, " IS NULL THEN NULL ELSE '***' END AS %s)", c->type);
        } else {
            buf_printf(b, "NULL::%s", c->type);
        }
        break;
    case PGW_MASK_HASH:
        buf_append_str(b, "pg_catalog.md5(");
        policy_append_ident(b, c->name);
        buf_append_str(b, "::text)");
        break;
    case PGW_MASK_PARTIAL:
        /* repeat('x', n-4) || last 4 characters; shorter values keep all. */
        buf_append_str(b, "pg_catalog.repeat('x', pg_catalog.length(");
        policy_append_ident(b, c->name);
        buf_append_str(b, "::text) - 4) || pg_catalog.\"right\"(");
        policy_append_ident(b, c->name);
        buf_append_str(b, "::text, 4)");
        break;
    case PGW_MASK_HIDE:
        break;
    }
    buf_append_str(b, " AS ");
    policy_append_ident(b, c->name);
}

static int add_replacement(Rewrite *rw, PgQuery__Node **slot, PgwBuf *body,
                           const PgQuery__RangeVar *rv)
{
    PgwBuf tail;
    buf_init(&tail);
    buf_append_str(&tail, ") AS ");
    policy_append_ident(&tail, rv->alias != NULL ? rv->alias->aliasname : rv->relname);
    rw->repl = pgw_realloc(rw->repl, (rw->nrepl + 1) * sizeof(*rw->repl));
    rw->repl[rw->nrepl].slot = slot;
    rw->repl[rw->nrepl].body = buf_steal_str(body);
    rw->repl[rw->nrepl].tail = buf_steal_str(&tail);
    rw->nrepl++;
    return 0;
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
    PgwCatalogAccess access = policy_catalog_access(schema, rv->relname);
    if (access == PGW_CATALOG_UNKNOWN && strcmp(schema, "pg_catalog") == 0 &&
        schema_table(rw->ctx->schema, schema, rv->relname) == NULL)
        return refuse_missing(rw, rv);
    if (access == PGW_CATALOG_UNKNOWN || access == PGW_CATALOG_REFUSED)
        return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                      "pgwarden: catalog relation %s.%s is not available", schema,
                      rv->relname);
    if (access == PGW_CATALOG_AS_IS) {
        /* Readable as is; pin the schema so search_path cannot matter. */
        set_string(&rv->schemaname, schema);
        return 0;
    }
    PgwBuf b;
    buf_init(&b);
    policy_catalog_append_view(&b, rw->ctx->cfg, schema, rv->relname);
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
            policy_append_ident(&b, c->name);
        else
            append_masked_column(&b, c, m->kind);
    }
    buf_append_str(&b, " FROM ");
    if (!rv->inh)
        buf_append_str(&b, "ONLY ");
    policy_append_ident(&b, t->schema);
    buf_append_byte(&b, '.');
    policy_append_ident(&b, t->name);
    if (tp->row_filter != NULL && tp->row_filter[0] != '\0') {
        buf_append_str(&b, " WHERE (");
        append_row_filter(&b, tp->row_filter, rw->ctx->tenant->id != NULL
                                                  ? rw->ctx->tenant->id
                                                  : rw->ctx->tenant->name);
        buf_append_byte(&b, ')');
    }
    return add_replacement(rw, slot, &b, rv);
}

/* Resolve a relation name as PostgreSQL would for this tenant (CTE names
 * aside): a readable user relation (*t set), a catalog relation (*catalog
 * set to its schema), or nothing, which is also the answer for a relation
 * the tenant may not read. */
typedef enum { RESOLVED_NONE, RESOLVED_USER, RESOLVED_CATALOG } Resolved;

static Resolved resolve_relation(const Rewrite *rw, const PgQuery__RangeVar *rv,
                                 const PgwSchemaTable **t, const char **catalog)
{
    const PgwConfig *cfg = rw->ctx->cfg;
    *t = NULL;
    *catalog = NULL;
    if (rv->schemaname[0] != '\0') {
        if (is_catalog_schema(rv->schemaname)) {
            *catalog = strcmp(rv->schemaname, "pg_catalog") == 0 ? "pg_catalog"
                                                                 : "information_schema";
            return RESOLVED_CATALOG;
        }
        *t = schema_table(rw->ctx->schema, rv->schemaname, rv->relname);
        if (*t == NULL || !relation_readable(cfg, (*t)->schema, (*t)->name))
            return RESOLVED_NONE;
        return RESOLVED_USER;
    }
    /* Unqualified: pg_catalog comes first, as PostgreSQL does implicitly. */
    if (schema_table(rw->ctx->schema, "pg_catalog", rv->relname) != NULL ||
        policy_catalog_access("pg_catalog", rv->relname) != PGW_CATALOG_UNKNOWN) {
        *catalog = "pg_catalog";
        return RESOLVED_CATALOG;
    }
    for (size_t i = 0; i < rw->nsearch_path; i++) {
        const char *ns = rw->search_path[i];
        *t = schema_table(rw->ctx->schema, ns, rv->relname);
        if (*t == NULL)
            continue;
        if (strcmp(ns, "information_schema") == 0) {
            *t = NULL;
            *catalog = "information_schema";
            return RESOLVED_CATALOG;
        }
        /* A relation the tenant may not read does not exist for it, so the
         * search goes on exactly as if it were absent. */
        if (relation_readable(cfg, (*t)->schema, (*t)->name))
            return RESOLVED_USER;
    }
    *t = NULL;
    return RESOLVED_NONE;
}

/* A RangeVar in FROM: a CTE reference, a catalog, or a user relation. */
static int visit_range_var(Walk *w, PgQuery__Node **slot)
{
    PgQuery__RangeVar *rv = (*slot)->range_var;
    const PgwSchemaTable *t;
    const char *catalog;

    if (rv->schemaname[0] == '\0' && cte_visible(w->scope, rv->relname))
        return 0;
    switch (resolve_relation(w->rw, rv, &t, &catalog)) {
    case RESOLVED_CATALOG:
        return rewrite_catalog(w->rw, slot, rv, catalog);
    case RESOLVED_USER:
        return rewrite_user_relation(w->rw, slot, rv, t);
    default:
        return refuse_missing(w->rw, rv);
    }
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

static int check_relation_args(Rewrite *rw, PgQuery__FuncCall *fc, const char *name);
static int check_set_config(Rewrite *rw, const PgQuery__FuncCall *fc);

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
    if (builtin_schema && strcmp(name, "set_config") == 0) {
        rw->volatile_seen = true;
        return check_set_config(rw, fc);
    }
    bool aggregate = builtin_schema && policy_builtin_aggregate(name);
    /* information_schema's helpers that drivers call (pgjdbc getPrimaryKeys). */
    bool infoschema = schema != NULL && strcmp(schema, "information_schema") == 0 &&
                      (strcmp(name, "_pg_expandarray") == 0 || strcmp(name, "_pg_keysequal") == 0);
    bool allowed = (builtin_schema && (aggregate || policy_builtin_scalar(name))) || infoschema ||
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
    if (builtin_schema && policy_builtin_volatile(name))
        rw->volatile_seen = true;

    Walk inner = *w;
    if (aggregate || fc->over != NULL) {
        inner.exempt = true;
    } else if (!w->exempt) {
        rw->leaky = true;
    }
    if (walk(&inner, &fc->base) < 0)
        return -1;
    return builtin_schema ? check_relation_args(rw, fc, name) : 0;
}

static bool is_constant(const PgQuery__Node *n)
{
    if (NODE(n, A_CONST) || NODE(n, PARAM_REF))
        return true;
    return NODE(n, TYPE_CAST) && is_constant(n->type_cast->arg);
}

static int resolve_regclass_literal(Walk *w, PgQuery__String *lit);
static int wrap_readable_oid(Rewrite *rw, PgQuery__Node **slot);

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static Resolved resolve_relation_text(const Rewrite *rw, const char *text,
                                      const PgwSchemaTable **t, const char **catalog);

static bool has_hidden_columns(const PgwConfig *cfg, const char *schema, const char *name)
{
    const PgwTablePolicy *tp = table_policy(cfg, schema, name);
    for (size_t i = 0; tp != NULL && i < tp->nmasks; i++)
        if (tp->masks[i].kind == PGW_MASK_HIDE)
            return true;
    return false;
}

/* A type named like a user relation is that relation's row type: NULL::t,
 * ROW(...)::t, json_populate_record(NULL::t, ...) and (x::t).* tell its
 * column names. So a row type exists for the tenant exactly when the
 * relation does, and only when none of its columns is hidden. */
static int check_type_name(Walk *w, const PgQuery__TypeName *tn)
{
    if (tn == NULL || tn->n_names == 0)
        return 0;
    const char *name = string_value(tn->names[tn->n_names - 1]);
    const char *schema = tn->n_names >= 2 ? string_value(tn->names[tn->n_names - 2]) : NULL;
    if (name == NULL || (schema != NULL && is_catalog_schema(schema)))
        return 0;
    const PgwSchema *sch = w->rw->ctx->schema;
    bool relation_named = false;
    for (size_t i = 0; sch != NULL && i < schema_ntables(sch); i++) {
        const PgwSchemaTable *t = schema_table_at(sch, i);
        if (strcmp(t->name, name) == 0 && !is_catalog_schema(t->schema) &&
            (schema == NULL || strcmp(t->schema, schema) == 0))
            relation_named = true;
    }
    if (!relation_named)
        return 0;
    PgwBuf b;
    buf_init(&b);
    if (schema != NULL) {
        policy_append_ident(&b, schema);
        buf_append_byte(&b, '.');
    }
    policy_append_ident(&b, name);
    char *text = buf_steal_str(&b);
    const PgwSchemaTable *t;
    const char *catalog;
    Resolved r = resolve_relation_text(w->rw, text, &t, &catalog);
    free(text);
    if (r == RESOLVED_NONE)
        return refuse(w->rw, SQLSTATE_UNDEFINED_OBJECT, NULL, "type \"%s\" does not exist", name);
    if (r == RESOLVED_USER && has_hidden_columns(w->rw->ctx->cfg, t->schema, t->name))
        return refuse(w->rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                      "pgwarden: the row type of \"%s\" is not available", name);
    return 0;
}

/* pg_get_serial_sequence(...) names the sequence of a relation the policy
 * already checked (its arguments are checked like any relation argument);
 * SQLAlchemy casts the result to regclass. */
static bool is_serial_sequence_call(const PgQuery__Node *n)
{
    if (!NODE(n, FUNC_CALL))
        return false;
    const PgQuery__FuncCall *fc = n->func_call;
    const char *name = fc->n_funcname > 0 ? string_value(fc->funcname[fc->n_funcname - 1]) : NULL;
    const char *schema = fc->n_funcname == 2 ? string_value(fc->funcname[0]) : NULL;
    return fc->n_funcname <= 2 && name != NULL && strcmp(name, "pg_get_serial_sequence") == 0 &&
           (schema == NULL || strcmp(schema, "pg_catalog") == 0);
}

static int visit_type_cast(Walk *w, PgQuery__TypeCast *tc)
{
    if (check_type_name(w, tc->type_name) < 0)
        return -1;
    const PgQuery__TypeName *tn = tc->type_name;
    const char *tname = tn != NULL && tn->n_names > 0 ? string_value(tn->names[tn->n_names - 1])
                                                      : NULL;
    if (tname != NULL && strcmp(tname, "regclass") == 0) {
        /* A name is checked like a FROM reference; an OID is only accepted
         * when it comes from a (virtualized) catalog column. */
        PgQuery__Node *arg = tc->arg;
        if (NODE(arg, A_CONST) && arg->a_const->val_case == PG_QUERY__A__CONST__VAL_SVAL &&
            all_digits(arg->a_const->sval->sval)) {
            /* '16433'::regclass (psql's \d sends these): an OID, answered
             * only for relations the tenant may read, NULL otherwise. */
            int rc = walk(w, &tc->base);
            return rc < 0 ? rc : wrap_readable_oid(w->rw, &tc->arg);
        }
        if (NODE(arg, A_CONST) && arg->a_const->val_case == PG_QUERY__A__CONST__VAL_SVAL) {
            if (resolve_regclass_literal(w, arg->a_const->sval) < 0)
                return -1;
        } else if (!NODE(arg, COLUMN_REF) && !is_serial_sequence_call(arg)) {
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
    case PG_QUERY__NODE__NODE_COLUMN_DEF: /* f() AS t(a some_type) */
        if (check_type_name(w, n->column_def->type_name) < 0)
            return -1;
        return walk(w, policy_walk_inner(n));
    case PG_QUERY__NODE__NODE_TYPE_NAME:
        if (check_type_name(w, n->type_name) < 0)
            return -1;
        return walk(w, policy_walk_inner(n));
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

/* Parse "SELECT ... FROM <text>"-like generated SQL into a tree. */
static PgQuery__ParseResult *parse_tree(const char *sql)
{
    PgQueryProtobufParseResult pr = pg_query_parse_protobuf(sql);
    PgQuery__ParseResult *tree = NULL;
    if (pr.error == NULL)
        tree = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
                                              (const uint8_t *)pr.parse_tree.data);
    pg_query_free_protobuf_parse_result(pr);
    return tree;
}

/* Resolve a relation named in a string ('customers', 'public."Odd"'), as
 * regclass input would; RESOLVED_NONE also when the text is not a name. */
static Resolved resolve_relation_text(const Rewrite *rw, const char *text,
                                      const PgwSchemaTable **t, const char **catalog)
{
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, "SELECT 1 FROM ");
    buf_append_str(&b, text);
    char *sql = buf_steal_str(&b);
    PgQuery__ParseResult *tree = parse_tree(sql);
    free(sql);
    Resolved r = RESOLVED_NONE;
    *t = NULL;
    *catalog = NULL;
    if (tree != NULL && tree->n_stmts == 1 && NODE(tree->stmts[0]->stmt, SELECT_STMT) &&
        tree->stmts[0]->stmt->select_stmt->n_from_clause == 1 &&
        NODE(tree->stmts[0]->stmt->select_stmt->from_clause[0], RANGE_VAR))
        r = resolve_relation(rw, tree->stmts[0]->stmt->select_stmt->from_clause[0]->range_var,
                             t, catalog);
    if (tree != NULL)
        pg_query__parse_result__free_unpacked(tree, NULL);
    return r;
}

/* A relation name in a string literal: refused like a FROM reference when
 * the tenant may not see it; otherwise pinned to the relation we resolved
 * (the backend's search_path would not skip a hidden namesake). */
static int check_relation_literal(Rewrite *rw, PgQuery__String *lit, const PgwSchemaTable **t)
{
    const char *catalog;
    switch (resolve_relation_text(rw, lit->sval, t, &catalog)) {
    case RESOLVED_NONE:
        return refuse(rw, SQLSTATE_UNDEFINED_TABLE, NULL, "relation \"%s\" does not exist",
                      lit->sval);
    case RESOLVED_USER: {
        PgwBuf b;
        buf_init(&b);
        policy_append_ident(&b, (*t)->schema);
        buf_append_byte(&b, '.');
        policy_append_ident(&b, (*t)->name);
        char *q = buf_steal_str(&b);
        set_string(&lit->sval, q);
        free(q);
        return 0;
    }
    default:
        return 0;
    }
}

static int resolve_regclass_literal(Walk *w, PgQuery__String *lit)
{
    const PgwSchemaTable *t;
    return check_relation_literal(w->rw, lit, &t);
}

static PgQuery__Node *copy_node(const PgQuery__Node *n)
{
    size_t len = pg_query__node__get_packed_size(n);
    uint8_t *packed = pgw_malloc(len > 0 ? len : 1);
    pg_query__node__pack(n, packed);
    PgQuery__Node *copy = pg_query__node__unpack(NULL, len, packed);
    free(packed);
    return copy;
}

typedef struct Placeholder {
    PgQuery__Node *value; /* spliced in for the first pgw_arg, copies after */
    bool used;
} Placeholder;

static int fill_placeholder(PgQuery__Node **slot, void *arg)
{
    Placeholder *ph = arg;
    PgQuery__Node *n = *slot;
    if (NODE(n, COLUMN_REF) && n->column_ref->n_fields == 1 &&
        string_value(n->column_ref->fields[0]) != NULL &&
        strcmp(string_value(n->column_ref->fields[0]), "pgw_arg") == 0) {
        PgQuery__Node *v = ph->used ? copy_node(ph->value) : ph->value;
        if (v == NULL)
            return -1;
        pg_query__node__free_unpacked(n, NULL);
        *slot = v;
        ph->used = true;
        return 0;
    }
    return policy_walk_children(policy_walk_inner(n), fill_placeholder, arg);
}

/* Replace the OID argument X by
 *     (SELECT o FROM (VALUES (X::oid)) v(o) WHERE o IN (<readable relation OIDs>))
 * so a guessed OID of a hidden relation gives the NULL a missing one gives.
 * X is a column, constant or parameter: it holds no relation reference, so
 * evaluating a copy of it twice changes nothing. */
static int wrap_readable_oid(Rewrite *rw, PgQuery__Node **slot)
{
    PgwBuf b;
    buf_init(&b);
    /* X appears once: a copy would miss the schema.table.column shortening
     * that the walk recorded for the original node. */
    buf_append_str(&b, "SELECT (SELECT pgw_o.o FROM (VALUES ((pgw_arg)::pg_catalog.oid)) "
                       "pgw_o(o) WHERE pgw_o.o IN (");
    policy_catalog_append_readable_oids(&b, rw->ctx->cfg);
    buf_append_str(&b, "))");
    char *sql = buf_steal_str(&b);
    PgQuery__ParseResult *tree = parse_tree(sql);
    free(sql);
    int rc = -1;
    if (tree == NULL || tree->n_stmts != 1 || !NODE(tree->stmts[0]->stmt, SELECT_STMT) ||
        tree->stmts[0]->stmt->select_stmt->n_target_list != 1)
        goto done;
    PgQuery__ResTarget *rt = tree->stmts[0]->stmt->select_stmt->target_list[0]->res_target;
    Placeholder ph = {*slot, false};
    if (fill_placeholder(&rt->val, &ph) < 0 || !ph.used)
        goto done;
    *slot = rt->val;
    rt->val = NULL;
    rc = 0;
done:
    if (tree != NULL)
        pg_query__parse_result__free_unpacked(tree, NULL);
    return rc;
}

/* The string of a constant ('x' or 'x'::text-like); NULL otherwise. */
static PgQuery__String *string_constant(PgQuery__Node *n)
{
    if (NODE(n, TYPE_CAST)) {
        const PgQuery__TypeName *tn = n->type_cast->type_name;
        const char *tname = tn != NULL && tn->n_names > 0
                                ? string_value(tn->names[tn->n_names - 1])
                                : NULL;
        if (tname == NULL || (strcmp(tname, "text") != 0 && strcmp(tname, "regclass") != 0 &&
                              strcmp(tname, "name") != 0 && strcmp(tname, "varchar") != 0))
            return NULL;
        n = n->type_cast->arg;
    }
    if (NODE(n, A_CONST) && n->a_const->val_case == PG_QUERY__A__CONST__VAL_SVAL)
        return n->a_const->sval;
    return NULL;
}

static bool is_plain_value(const PgQuery__Node *n)
{
    if (NODE(n, TYPE_CAST))
        return is_plain_value(n->type_cast->arg);
    return NODE(n, A_CONST) || NODE(n, PARAM_REF) || NODE(n, COLUMN_REF);
}

static bool column_visible(const Rewrite *rw, const PgwSchemaTable *t, const char *column)
{
    const PgwColumnMask *m = column_mask(table_policy(rw->ctx->cfg, t->schema, t->name), column);
    if (m != NULL && m->kind == PGW_MASK_HIDE)
        return false;
    for (size_t i = 0; i < t->ncolumns; i++)
        if (strcmp(t->columns[i].name, column) == 0)
            return true;
    return false;
}

/* has_table_privilege('hidden', ...), to_regclass('hidden'),
 * pg_get_viewdef(<guessed oid>) ...: a function that takes a relation must
 * answer for a hidden relation exactly as for a missing one. Called after
 * the arguments were walked. */
static int check_relation_args(Rewrite *rw, PgQuery__FuncCall *fc, const char *name)
{
    PgwRelationArg ra;
    if (!policy_catalog_relation_arg(name, fc->n_args, &ra))
        return 0;
    PgQuery__Node **rel = &fc->args[ra.relation];
    PgQuery__String *lit = string_constant(*rel);
    bool digits = lit != NULL && lit->sval[0] != '\0' &&
                  strspn(lit->sval, "0123456789") == strlen(lit->sval);
    if (lit != NULL && !digits) {
        const PgwSchemaTable *t = NULL;
        if (ra.null_when_missing) {
            const char *catalog;
            if (resolve_relation_text(rw, lit->sval, &t, &catalog) == RESOLVED_NONE) {
                /* to_regclass('hidden') is NULL, as for a missing name. */
                set_string(&lit->sval, "pg_catalog.pgwarden_no_such_relation");
                return 0;
            }
        }
        if (check_relation_literal(rw, lit, &t) < 0)
            return -1;
        if (ra.column < 0)
            return 0;
        PgQuery__String *col = string_constant(fc->args[ra.column]);
        if (col == NULL)
            return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                          "pgwarden: %s takes a column only by name, as a constant", name);
        if (t != NULL && !column_visible(rw, t, col->sval))
            return refuse(rw, SQLSTATE_UNDEFINED_COLUMN, NULL,
                          "column \"%s\" of relation \"%s\" does not exist", col->sval,
                          t->name);
        return 0;
    }
    if (strcmp(name, "pg_get_serial_sequence") == 0 && NODE(*rel, TYPE_CAST) &&
        NODE((*rel)->type_cast->arg, TYPE_CAST) &&
        is_plain_value((*rel)->type_cast->arg->type_cast->arg)) {
        /* SQLAlchemy: pg_get_serial_sequence(a.attrelid::regclass::text, ...):
         * the OID inside is answered only for readable relations, so a
         * hidden one reads as NULL (and the function returns NULL). */
        if (wrap_readable_oid(rw, &(*rel)->type_cast->arg->type_cast->arg) < 0)
            return refuse(rw, SQLSTATE_INTERNAL_ERROR, NULL, "pgwarden: cannot rewrite %s", name);
        return 0;
    }
    if (ra.null_when_missing || ra.column >= 0 || strcmp(name, "pg_get_serial_sequence") == 0)
        return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                      "pgwarden: %s takes a relation only by name, as a constant", name);
    if (strcmp(name, "obj_description") == 0 && fc->n_args == 2) {
        /* obj_description(oid, 'pg_namespace') and friends are not about
         * relations. */
        PgQuery__String *cat = string_constant(fc->args[1]);
        if (cat != NULL && strcmp(cat->sval, "pg_class") != 0)
            return 0;
    }
    if (!is_plain_value(*rel))
        return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                      "pgwarden: %s takes a relation only as a constant, a parameter or a "
                      "column",
                      name);
    if (wrap_readable_oid(rw, rel) < 0)
        return refuse(rw, SQLSTATE_INTERNAL_ERROR, NULL, "pgwarden: cannot rewrite %s", name);
    return 0;
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
        policy_append_ident(&b, col != NULL ? col : "");
    }
    buf_append_str(&b, " FROM ");
    if (cs->relation->schemaname[0] != '\0') {
        policy_append_ident(&b, cs->relation->schemaname);
        buf_append_byte(&b, '.');
    }
    policy_append_ident(&b, cs->relation->relname);
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

/* The value of a SET argument or set_config() constant as text. */
static bool constant_text(const PgQuery__Node *n, char *out, size_t outlen)
{
    if (NODE(n, TYPE_CAST))
        n = n->type_cast->arg;
    if (!NODE(n, A_CONST) || n->a_const->isnull)
        return false;
    const PgQuery__AConst *c = n->a_const;
    switch (c->val_case) {
    case PG_QUERY__A__CONST__VAL_SVAL:
        snprintf(out, outlen, "%s", c->sval->sval);
        return true;
    case PG_QUERY__A__CONST__VAL_IVAL:
        snprintf(out, outlen, "%d", c->ival->ival);
        return true;
    case PG_QUERY__A__CONST__VAL_FVAL:
        snprintf(out, outlen, "%s", c->fval->fval);
        return true;
    case PG_QUERY__A__CONST__VAL_BOOLVAL:
        snprintf(out, outlen, "%s", c->boolval->boolval ? "on" : "off");
        return true;
    default:
        return false;
    }
}

/* May the client set name to value (NULL: RESET / DEFAULT)? */
static int check_setting(Rewrite *rw, const char *name, const char *value)
{
    switch (policy_setting_verdict(rw->ctx->cfg, name, value)) {
    case PGW_SETTING_OK:
        return 0;
    case PGW_SETTING_READ_ONLY:
        return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, "pgwarden sessions are read-only.",
                      "pgwarden: SET %s to %s is not allowed", name, value);
    case PGW_SETTING_TIMEOUT:
        return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                      "pgwarden: statement_timeout must be between 1 ms and the configured "
                      "%d ms",
                      rw->ctx->cfg->statement_timeout_ms);
    case PGW_SETTING_ENCODING:
        return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                      "Use UTF8 or another ASCII-safe encoding.",
                      "pgwarden: client_encoding %s is not allowed", value);
    default:
        return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                      "pgwarden pins this setting for every session.",
                      "pgwarden: SET %s is not allowed", name);
    }
}

/* Options of SET TRANSACTION, SET SESSION CHARACTERISTICS AS TRANSACTION,
 * BEGIN and START TRANSACTION: isolation levels and DEFERRABLE are fine,
 * READ WRITE is not. */
static int check_transaction_options(Rewrite *rw, PgQuery__Node **opts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!NODE(opts[i], DEF_ELEM))
            return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                          "pgwarden: this transaction option is not allowed");
        const PgQuery__DefElem *d = opts[i]->def_elem;
        char value[64] = "";
        if (d->arg != NULL && !constant_text(d->arg, value, sizeof(value)))
            return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                          "pgwarden: this transaction option is not allowed");
        if (strcmp(d->defname, "transaction_read_only") == 0 && !policy_setting_is_on(value))
            return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, "pgwarden sessions are read-only.",
                          "pgwarden: only read-only queries are allowed: READ WRITE is refused");
        if (strcmp(d->defname, "transaction_isolation") != 0 &&
            strcmp(d->defname, "transaction_read_only") != 0 &&
            strcmp(d->defname, "transaction_deferrable") != 0)
            return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                          "pgwarden: transaction option %s is not allowed", d->defname);
    }
    return 0;
}

static int check_set(Rewrite *rw, PgQuery__VariableSetStmt *vs)
{
    char value[256] = "";
    switch (vs->kind) {
    case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET_ALL:
        /* Pinned settings are startup options: RESET ALL returns to them. */
        return 0;
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_MULTI:
        if (strcmp(vs->name, "TRANSACTION") == 0 ||
            strcmp(vs->name, "SESSION CHARACTERISTICS") == 0)
            return check_transaction_options(rw, vs->args, vs->n_args);
        return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL, "pgwarden: SET %s is not allowed",
                      vs->name);
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_VALUE:
        /* A list (SET datestyle = iso, mdy) is checked item by item. */
        if (vs->n_args == 0)
            return check_setting(rw, vs->name, NULL);
        for (size_t i = 0; i < vs->n_args; i++) {
            if (!constant_text(vs->args[i], value, sizeof(value)))
                return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                              "pgwarden: SET %s to this value is not allowed", vs->name);
            if (check_setting(rw, vs->name, value) < 0)
                return -1;
        }
        return 0;
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_CURRENT:
        return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                      "pgwarden: SET %s FROM CURRENT is not allowed", vs->name);
    default: /* SET x TO DEFAULT, RESET x */
        return check_setting(rw, vs->name, NULL);
    }
}

/* set_config('name', 'value', is_local): the same allowlist as SET, and
 * only with constant arguments, so the decision is made here. */
static int check_set_config(Rewrite *rw, const PgQuery__FuncCall *fc)
{
    char name[128], value[256], local[16];
    if (fc->n_args != 3 || !constant_text(fc->args[0], name, sizeof(name)) ||
        !constant_text(fc->args[1], value, sizeof(value)) ||
        !constant_text(fc->args[2], local, sizeof(local)))
        return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                      "Call set_config('name', 'value', is_local) with constants.",
                      "pgwarden: set_config is allowed only with constant arguments");
    return check_setting(rw, name, value);
}

static int walk_statement(Rewrite *rw, PgQuery__Node **slot, bool *rows);

/* EXPLAIN [ANALYZE] of an allowed statement: the statement is rewritten
 * exactly as when it runs alone, and refused the same way. ANALYZE runs it,
 * which is no more than running it. VERBOSE is refused: its output lists
 * the columns every scan reads, hidden ones included. */
static int walk_explain(Rewrite *rw, PgQuery__ExplainStmt *es)
{
    static const char *const options[] = {"analyze", "costs", "settings", "buffers",
                                          "wal", "timing", "summary", "format"};
    for (size_t i = 0; i < es->n_options; i++) {
        if (!NODE(es->options[i], DEF_ELEM) ||
            !IN_LIST(options, es->options[i]->def_elem->defname))
            return refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                          "pgwarden: this EXPLAIN option is not allowed");
    }
    bool inner;
    return walk_statement(rw, &es->query, &inner);
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
    case PG_QUERY__NODE__NODE_FETCH_STMT: /* FETCH and MOVE */
    case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT:
    case PG_QUERY__NODE__NODE_DEALLOCATE_STMT:
    case PG_QUERY__NODE__NODE_DISCARD_STMT:
        /* DISCARD ALL is what pools and drivers send between clients; it
         * returns pinned settings to their startup values. */
        return 0;
    case PG_QUERY__NODE__NODE_UNLISTEN_STMT:
        /* Harmless without LISTEN, and part of every pool's reset. */
        return 0;
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
        return walk_explain(rw, n->explain_stmt);
    case PG_QUERY__NODE__NODE_PREPARE_STMT: {
        /* The statement is rewritten now, as if it ran alone; EXECUTE then
         * runs the rewrite. */
        bool inner;
        return walk_statement(rw, &n->prepare_stmt->query, &inner);
    }
    case PG_QUERY__NODE__NODE_EXECUTE_STMT: {
        Walk params = {rw, NULL, true};
        rw->volatile_seen = true;
        return walk_slots(&params, n->execute_stmt->params, n->execute_stmt->n_params);
    }
    case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
        if (check_transaction_options(rw, n->transaction_stmt->options,
                                      n->transaction_stmt->n_options) < 0)
            return -1;
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

