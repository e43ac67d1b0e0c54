/*
 * policy_expr.c — expressions and query levels: which functions may run,
 * how every built-in function and operator is pinned to pg_catalog, and the
 * walk over a SELECT that feeds the leak analysis (policy_qual.c) with its
 * query levels, FROM items and the quals that may run below a scan.
 *
 * The walk visits every Node of a SELECT (policy_walk.c guarantees nothing
 * is skipped), dispatching the few node types the policy cares about:
 * relation references to policy_rel.c, casts and calls that name objects to
 * policy_object.c, FROM items and sublinks to the level bookkeeping here.
 *
 * Name resolution (issue 7, class 2). PostgreSQL resolves an unqualified
 * function or operator through the search_path, so a user-defined
 * public.length(customers) or public.=(varchar, varchar) someone created
 * would run instead of the built-in. The rewrite therefore calls every
 * allowlisted built-in as pg_catalog.name(...), every allowed_functions
 * entry under its configured schema (a bare entry means public), and writes
 * every explicit operator as OPERATOR(pg_catalog.op) (LIKE, ILIKE and
 * SIMILAR TO become their operators ~~, ~~*, ~ so they can be qualified;
 * IN (SELECT ...) becomes OPERATOR(pg_catalog.=) ANY (SELECT ...)). The
 * grammar names some operators implicitly and offers no qualified form:
 * IN (list), BETWEEN, IS [NOT] DISTINCT FROM, NULLIF, CASE x WHEN, JOIN
 * USING and NATURAL. Those are allowed as long as no schema of the pinned
 * search_path but pg_catalog defines an operator of that name (the backend
 * reports them with the schema snapshot), or pg_catalog is searched first
 * and has the exact operator for the operand types; otherwise refused.
 * The same qualification is applied to the SQL the policy generates (row
 * filters, masks, catalog views) once it is parsed.
 */
#include "policy.h"
#include "policy_int.h"

#include <stdlib.h>
#include <strings.h>

#include "policy_catalog.h"
#include "policy_walk.h"

/* ------------------------------------------------------------------------ */
/* Names                                                                      */
/* ------------------------------------------------------------------------ */

static PgQuery__Node *string_node(const char *s)
{
    PgQuery__Node *n = pgw_malloc(sizeof(*n));
    pg_query__node__init(n);
    n->node_case = PG_QUERY__NODE__NODE_STRING;
    n->string = pgw_malloc(sizeof(*n->string));
    pg_query__string__init(n->string);
    n->string->sval = pgw_strdup(s);
    return n;
}

void policy_qualify_name(PgQuery__Node ***names, size_t *n, const char *schema)
{
    if (*n != 1)
        return;
    PgQuery__Node **grown = pgw_malloc(2 * sizeof(*grown));
    grown[0] = string_node(schema);
    grown[1] = (*names)[0];
    free(*names);
    *names = grown;
    *n = 2;
}

/* LIKE, ILIKE and SIMILAR TO are their operators; as AEXPR_OP they can be
 * written OPERATOR(pg_catalog.~~). */
static void like_to_operator(PgQuery__AExpr *e)
{
    if (e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_LIKE ||
        e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_ILIKE ||
        e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_SIMILAR)
        e->kind = PG_QUERY__A__EXPR__KIND__AEXPR_OP;
}

static bool explicit_operator(const PgQuery__AExpr *e)
{
    return e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_OP ||
           e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_OP_ANY ||
           e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_OP_ALL;
}

static PgQuery__Node *string_node(const char *s);

/* The final pass over a rewritten tree: the client's parts were qualified
 * by the walk already; what is left unqualified came from generated SQL
 * (row filters, masks, catalog views, OID wrappers). */
static int qualify_visit(PgQuery__Node **slot, void *arg)
{
    PgQuery__Node *n = *slot;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_A_EXPR:
        like_to_operator(n->a_expr);
        if (explicit_operator(n->a_expr))
            policy_qualify_name(&n->a_expr->name, &n->a_expr->n_name, "pg_catalog");
        break;
    case PG_QUERY__NODE__NODE_SUB_LINK: {
        PgQuery__SubLink *sl = n->sub_link;
        if (sl->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ANY_SUBLINK && sl->n_oper_name == 0) {
            sl->oper_name = pgw_malloc(sizeof(*sl->oper_name));
            sl->oper_name[0] = string_node("=");
            sl->n_oper_name = 1;
        }
        policy_qualify_name(&sl->oper_name, &sl->n_oper_name, "pg_catalog");
        break;
    }
    case PG_QUERY__NODE__NODE_SORT_BY:
        policy_qualify_name(&n->sort_by->use_op, &n->sort_by->n_use_op, "pg_catalog");
        break;
    case PG_QUERY__NODE__NODE_FUNC_CALL: {
        /* Built-ins only: a row filter may call the operator's own
         * functions through the search_path on purpose. */
        PgQuery__FuncCall *fc = n->func_call;
        const char *name = fc->n_funcname == 1 ? policy_string_value(fc->funcname[0]) : NULL;
        if (name != NULL && (policy_builtin_scalar(name) || policy_builtin_aggregate(name)))
            policy_qualify_name(&fc->funcname, &fc->n_funcname, "pg_catalog");
        break;
    }
    default:
        break;
    }
    return policy_walk_children(policy_walk_inner(n), qualify_visit, arg);
}

int policy_qualify_names(ProtobufCMessage *tree)
{
    return policy_walk_children(tree, qualify_visit, NULL);
}

void policy_note_relation(Rewrite *rw, const char *schema, const char *name)
{
    if (rw->nrelations == rw->relations_cap) {
        rw->relations_cap = rw->relations_cap > 0 ? rw->relations_cap * 2 : 8;
        rw->relations = pgw_realloc(rw->relations, rw->relations_cap * sizeof(*rw->relations));
    }
    PgwBuf b;
    buf_init(&b);
    buf_printf(&b, "%s.%s", schema, name);
    rw->relations[rw->nrelations++] = buf_steal_str(&b);
}

/* ------------------------------------------------------------------------ */
/* Functions                                                                  */
/* ------------------------------------------------------------------------ */

/* The allowed_functions entry a call names, as its schema; NULL when none.
 * A bare entry means public; an unqualified call takes the first entry of
 * that name whose schema is on the search_path, else the first. */
static const char *user_function_schema(const Rewrite *rw, const char *schema, const char *name,
                                        char *buf, size_t buflen)
{
    const PgwConfig *cfg = rw->ctx->cfg;
    const char *first = NULL;
    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < cfg->nallowed_functions; i++) {
            const char *f = cfg->allowed_functions[i];
            const char *dot = strrchr(f, '.');
            const char *fname = dot != NULL ? dot + 1 : f;
            if (strcmp(fname, name) != 0)
                continue;
            size_t nslen = dot != NULL ? (size_t)(dot - f) : 6;
            const char *ns = dot != NULL ? f : "public";
            if (nslen + 1 > buflen)
                continue;
            memcpy(buf, ns, nslen);
            buf[nslen] = '\0';
            if (schema != NULL) {
                if (strcmp(schema, buf) == 0)
                    return buf;
                continue;
            }
            if (pass == 1)
                return buf;
            for (size_t k = 0; k < rw->nsearch_path; k++)
                if (strcmp(rw->search_path[k], buf) == 0)
                    return buf;
            if (first == NULL)
                first = f;
        }
        if (schema != NULL || first == NULL)
            return NULL;
    }
    return NULL;
}

/* Functions whose value depends on the moment or the session, beyond the
 * catalog's volatile list: a statement calling one is not cacheable. */
static bool time_dependent(const char *name, size_t nargs)
{
    static const char *const names[] = {
        "current_date",
        "current_time",
        "current_timestamp",
        "localtime",
        "localtimestamp",
        "clock_timestamp",
        "statement_timestamp",
        "transaction_timestamp",
        "timeofday",
        "now",
        "random",
        "gen_random_uuid",
        "current_setting",
        "pg_backend_pid",
        "current_query",
        "txid_current",
    };
    if (IN_LIST(names, name))
        return true;
    /* age(timestamp) counts from today; age(a, b) does not. */
    return strcmp(name, "age") == 0 && nargs == 1;
}

/* Helpers the grammar itself calls: LIKE ... ESCAPE, SIMILAR TO. */
static bool grammar_helper(const char *name)
{
    return strcmp(name, "like_escape") == 0 || strcmp(name, "similar_to_escape") == 0;
}

static int visit_func_call(Walk *w, PgQuery__Node **slot)
{
    PgQuery__FuncCall *fc = (*slot)->func_call;
    Rewrite *rw = w->rw;
    const char *schema = NULL, *name = NULL;
    if (fc->n_funcname == 1) {
        name = policy_string_value(fc->funcname[0]);
    } else if (fc->n_funcname == 2) {
        schema = policy_string_value(fc->funcname[0]);
        name = policy_string_value(fc->funcname[1]);
    }
    if (name == NULL)
        return policy_refuse(rw, SQLSTATE_UNDEFINED_FUNCTION, NULL, "function does not exist");

    bool builtin_schema = schema == NULL || strcmp(schema, "pg_catalog") == 0;
    if (builtin_schema && strcmp(name, "set_config") == 0) {
        rw->volatile_seen = true;
        if (policy_check_set_config(rw, fc) < 0)
            return -1;
        policy_qualify_name(&fc->funcname, &fc->n_funcname, "pg_catalog");
        return 0;
    }
    bool aggregate = builtin_schema && policy_builtin_aggregate(name);
    /* information_schema's helpers that drivers call (pgjdbc getPrimaryKeys). */
    bool infoschema = schema != NULL && strcmp(schema, "information_schema") == 0 &&
                      (strcmp(name, "_pg_expandarray") == 0 || strcmp(name, "_pg_keysequal") == 0);
    bool builtin =
        builtin_schema && (aggregate || policy_builtin_scalar(name) || grammar_helper(name));
    char nsbuf[128];
    const char *user_schema =
        builtin || infoschema ? NULL : user_function_schema(rw, schema, name, nsbuf, sizeof(nsbuf));
    if (!builtin && !infoschema && user_schema == NULL) {
        if (schema != NULL)
            return policy_refuse(rw, SQLSTATE_UNDEFINED_FUNCTION,
                                 "pgwarden lets through only allowlisted functions.",
                                 "function %s.%s does not exist", schema, name);
        return policy_refuse(rw, SQLSTATE_UNDEFINED_FUNCTION,
                             "pgwarden lets through only allowlisted functions.",
                             "function %s does not exist", name);
    }
    /* Pin the call to the function the allowlist means (class 2). */
    if (builtin) {
        policy_qualify_name(&fc->funcname, &fc->n_funcname, "pg_catalog");
        if (policy_builtin_volatile(name) || time_dependent(name, fc->n_args))
            rw->volatile_seen = true;
    } else if (user_schema != NULL) {
        policy_qualify_name(&fc->funcname, &fc->n_funcname, user_schema);
        rw->volatile_seen = true; /* its volatility is not known here */
    }
    if (builtin && policy_builtin_objects(name, fc->n_args) != NULL)
        rw->reads_protected = true; /* answers from the catalog: no EXPLAIN */

    if (policy_walk_node(w, &fc->base) < 0)
        return -1;
    return builtin ? policy_object_func_call(rw, slot, name) : 0;
}

bool policy_is_constant(const PgQuery__Node *n)
{
    if (NODE(n, A_CONST) || NODE(n, PARAM_REF))
        return true;
    return NODE(n, TYPE_CAST) && policy_is_constant(n->type_cast->arg);
}

static int visit_type_cast(Walk *w, PgQuery__TypeCast *tc)
{
    int handled = policy_object_type_cast(w, tc);
    if (handled != 0)
        return handled < 0 ? -1 : 0;
    return policy_walk_node(w, &tc->base);
}

/* The operand of an IN list or BETWEEN the implicit-operator check types. */
static const PgQuery__Node *first_item(const PgQuery__Node *list)
{
    return NODE(list, LIST) && list->list->n_items > 0 ? list->list->items[0] : NULL;
}

static int visit_a_expr(Walk *w, PgQuery__AExpr *e)
{
    const char *op = e->n_name > 0 ? policy_string_value(e->name[e->n_name - 1]) : NULL;
    if (e->n_name >= 2) {
        const char *schema = policy_string_value(e->name[0]);
        if (e->n_name > 2 || schema == NULL || strcmp(schema, "pg_catalog") != 0)
            return policy_refuse(w->rw, SQLSTATE_UNDEFINED_FUNCTION, NULL,
                                 "operator does not exist: %s.%s", schema != NULL ? schema : "?",
                                 op != NULL ? op : "?");
    }
    like_to_operator(e);
    if (explicit_operator(e)) {
        policy_qualify_name(&e->name, &e->n_name, "pg_catalog");
    } else if (op != NULL) {
        int rc = 0;
        switch (e->kind) {
        case PG_QUERY__A__EXPR__KIND__AEXPR_IN:
            rc = qual_check_implicit_operator(w, op, e->lexpr, first_item(e->rexpr), "IN (...)");
            break;
        case PG_QUERY__A__EXPR__KIND__AEXPR_DISTINCT:
        case PG_QUERY__A__EXPR__KIND__AEXPR_NOT_DISTINCT:
            rc = qual_check_implicit_operator(w, "=", e->lexpr, e->rexpr, "IS DISTINCT FROM");
            break;
        case PG_QUERY__A__EXPR__KIND__AEXPR_NULLIF:
            rc = qual_check_implicit_operator(w, "=", e->lexpr, e->rexpr, "NULLIF");
            break;
        case PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN:
        case PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN_SYM:
        case PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN:
        case PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN_SYM: {
            static const char *const ops[] = {"<", ">", "<=", ">="};
            for (size_t i = 0; i < PGW_ARRAY_LEN(ops) && rc == 0; i++)
                rc = qual_check_implicit_operator(w, ops[i], e->lexpr, first_item(e->rexpr),
                                                  "BETWEEN");
            break;
        }
        default:
            break;
        }
        if (rc < 0)
            return -1;
    }
    return policy_walk_node(w, &e->base);
}

static int visit_column_ref(Walk *w, PgQuery__ColumnRef *cr)
{
    if (qual_check_column_ref(w, cr) < 0)
        return -1;
    /* schema.table.column (or db.schema.table.column) can no longer name a
     * derived table; keep table.column. */
    if (cr->n_fields >= 3 && policy_string_value(cr->fields[cr->n_fields - 3]) != NULL) {
        const char *ns = policy_string_value(cr->fields[cr->n_fields - 3]);
        const char *rel = policy_string_value(cr->fields[cr->n_fields - 2]);
        if (rel != NULL && schema_table(w->rw->ctx->schema, ns, rel) != NULL) {
            Rewrite *rw = w->rw;
            if (rw->ncolfix == rw->colfix_cap) {
                rw->colfix_cap = rw->colfix_cap > 0 ? rw->colfix_cap * 2 : 16;
                rw->colfix = pgw_realloc(rw->colfix, rw->colfix_cap * sizeof(*rw->colfix));
            }
            rw->colfix[rw->ncolfix++] = cr;
        }
    }
    return policy_walk_node(w, &cr->base);
}

static void note_safe_sublink(Rewrite *rw, const PgQuery__SubLink *sl)
{
    if (rw->nsafe_sublinks == rw->safe_sublinks_cap) {
        rw->safe_sublinks_cap = rw->safe_sublinks_cap > 0 ? rw->safe_sublinks_cap * 2 : 8;
        rw->safe_sublinks =
            pgw_realloc(rw->safe_sublinks, rw->safe_sublinks_cap * sizeof(*rw->safe_sublinks));
    }
    rw->safe_sublinks[rw->nsafe_sublinks++] = sl;
    rw->safe_sublinks_sorted = false;
}

static int visit_sub_link(Walk *w, PgQuery__SubLink *sl)
{
    Rewrite *rw = w->rw;
    switch (sl->sub_link_type) {
    case PG_QUERY__SUB_LINK_TYPE__ANY_SUBLINK:
        /* x IN (SELECT ...) is x = ANY (SELECT ...) with = looked up by
         * name: write it qualified. */
        if (sl->n_oper_name == 0) {
            sl->oper_name = pgw_malloc(sizeof(*sl->oper_name));
            sl->oper_name[0] = string_node("=");
            sl->n_oper_name = 1;
        }
        /* fall through */
    case PG_QUERY__SUB_LINK_TYPE__ALL_SUBLINK:
    case PG_QUERY__SUB_LINK_TYPE__ROWCOMPARE_SUBLINK:
        if (sl->n_oper_name >= 2) {
            const char *schema = policy_string_value(sl->oper_name[0]);
            if (sl->n_oper_name > 2 || schema == NULL || strcmp(schema, "pg_catalog") != 0)
                return policy_refuse(rw, SQLSTATE_UNDEFINED_FUNCTION, NULL,
                                     "operator does not exist");
        }
        policy_qualify_name(&sl->oper_name, &sl->n_oper_name, "pg_catalog");
        break;
    default:
        break;
    }
    if (policy_walk_slot(w, &sl->testexpr) < 0)
        return -1;
    /* A sublink in a qual may run once per outer row before the row
     * filter: its whole subquery must be safe (a strict level). */
    bool strict = w->pushable || w->level->strict;
    uint32_t out_type = 0;
    if (NODE(sl->subselect, SELECT_STMT)) {
        bool any = sl->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ANY_SUBLINK;
        if (policy_walk_select(rw, sl->subselect->select_stmt, w->scope, w->level,
                               strict ? WALK_STRICT : 0, any ? &out_type : NULL, NULL) < 0)
            return -1;
        if (any && qual_sublink_test_ok(w, sl, out_type))
            note_safe_sublink(rw, sl);
        return 0;
    }
    return policy_walk_slot(w, &sl->subselect);
}

/* ------------------------------------------------------------------------ */
/* FROM items                                                                 */
/* ------------------------------------------------------------------------ */

static const char *alias_name(const PgQuery__Alias *a)
{
    return a != NULL && a->aliasname[0] != '\0' ? a->aliasname : NULL;
}

static int visit_join(Walk *w, PgQuery__JoinExpr *j)
{
    size_t lo = w->level->nitems;
    if (policy_walk_slot(w, &j->larg) < 0)
        return -1;
    size_t mid = w->level->nitems;
    if (policy_walk_slot(w, &j->rarg) < 0)
        return -1;
    if (j->n_using_clause > 0 && qual_check_using(w, j, lo, mid) < 0)
        return -1;
    if (j->is_natural) {
        /* The common columns are not worked out here: fence. */
        if (qual_check_implicit_types(w, "=", NULL, NULL, "NATURAL JOIN") < 0)
            return -1;
        w->rw->leaky = true;
    }
    Walk on = *w;
    on.pushable = true;
    if (policy_walk_slot(&on, &j->quals) < 0)
        return -1;
    qual_check_root(&on, j->quals);
    if (j->join_using_alias != NULL && policy_walk_node(w, &j->join_using_alias->base) < 0)
        return -1;
    if (alias_name(j->alias) != NULL || j->join_using_alias != NULL)
        qual_add_item(w->level,
                      alias_name(j->alias) != NULL ? alias_name(j->alias)
                                                   : alias_name(j->join_using_alias),
                      NULL, NULL, NULL, false);
    return 0;
}

static int visit_range_subselect(Walk *w, PgQuery__RangeSubselect *r)
{
    const QualLevel *up = r->lateral ? w->level : w->level->up;
    unsigned flags = w->level->strict ? WALK_STRICT : 0;
    if (NODE(r->subquery, SELECT_STMT)) {
        QualColumns *cols = pgw_calloc(1, sizeof(*cols));
        if (policy_walk_select(w->rw, r->subquery->select_stmt, w->scope, up, flags, NULL, cols) <
            0) {
            qual_columns_free(cols);
            free(cols);
            return -1;
        }
        if (r->alias != NULL)
            qual_rename_columns(cols, r->alias->colnames, r->alias->n_colnames);
        qual_add_item(w->level, alias_name(r->alias), NULL, r->alias, NULL, false);
        QualItem *it = &w->level->items[w->level->nitems - 1];
        it->cols = it->owned_cols = cols;
        it->alias = NULL; /* its column aliases are in cols already */
    } else {
        if (policy_walk_slot(w, &r->subquery) < 0)
            return -1;
        qual_add_item(w->level, alias_name(r->alias), NULL, r->alias, NULL, false);
    }
    if (r->alias != NULL && policy_walk_node(w, &r->alias->base) < 0)
        return -1;
    return 0;
}

static int visit_range_function(Walk *w, PgQuery__Node *n)
{
    /* Function arguments run in the function scan, on outer rows that
     * passed their quals; in a strict level they may not. */
    if (w->level->strict)
        w->rw->leaky = true;
    Walk args = *w;
    args.pushable = false;
    if (policy_walk_node(&args, policy_walk_inner(n)) < 0)
        return -1;
    const PgQuery__Alias *a =
        NODE(n, RANGE_FUNCTION) ? n->range_function->alias : n->range_table_func->alias;
    const char *name = alias_name(a);
    if (name == NULL && NODE(n, RANGE_FUNCTION) && n->range_function->n_functions == 1 &&
        NODE(n->range_function->functions[0], LIST) &&
        n->range_function->functions[0]->list->n_items > 0 &&
        NODE(n->range_function->functions[0]->list->items[0], FUNC_CALL)) {
        /* Unaliased, a function in FROM is named after the function. */
        const PgQuery__FuncCall *fc = n->range_function->functions[0]->list->items[0]->func_call;
        name = fc->n_funcname > 0 ? policy_string_value(fc->funcname[fc->n_funcname - 1]) : NULL;
    }
    qual_add_item(w->level, name, NULL, a, NULL, false);
    if (NODE(n, RANGE_FUNCTION))
        w->level->items[w->level->nitems - 1].func = n->range_function;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The visitor                                                                */
/* ------------------------------------------------------------------------ */

static bool moment_literal(const PgQuery__AConst *c)
{
    static const char *const words[] = {"now", "today", "tomorrow", "yesterday"};
    if (c->val_case != PG_QUERY__A__CONST__VAL_SVAL)
        return false;
    const char *s = c->sval->sval;
    while (*s == ' ')
        s++;
    for (size_t i = 0; i < PGW_ARRAY_LEN(words); i++) {
        size_t n = strlen(words[i]);
        if (strncasecmp(s, words[i], n) == 0 && strspn(s + n, " ") == strlen(s + n))
            return true;
    }
    return false;
}

static int visit(PgQuery__Node **slot, void *arg)
{
    Walk *w = arg;
    PgQuery__Node *n = *slot;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_SELECT_STMT:
        return policy_walk_select(w->rw, n->select_stmt, w->scope, w->level,
                                  w->pushable || w->level->strict ? WALK_STRICT : 0, NULL, NULL);
    case PG_QUERY__NODE__NODE_RANGE_VAR:
        return policy_visit_range_var(w, slot);
    case PG_QUERY__NODE__NODE_RANGE_SUBSELECT:
        return visit_range_subselect(w, n->range_subselect);
    case PG_QUERY__NODE__NODE_RANGE_FUNCTION:
        return visit_range_function(w, n);
    case PG_QUERY__NODE__NODE_RANGE_TABLE_FUNC:
        /* XMLTABLE: its row and column expressions are not analysed. */
        w->rw->leaky = true;
        return visit_range_function(w, n);
    case PG_QUERY__NODE__NODE_JOIN_EXPR:
        return visit_join(w, n->join_expr);
    case PG_QUERY__NODE__NODE_FUNC_CALL:
        return visit_func_call(w, slot);
    case PG_QUERY__NODE__NODE_TYPE_CAST:
        return visit_type_cast(w, n->type_cast);
    case PG_QUERY__NODE__NODE_COLUMN_DEF: /* f() AS t(a some_type) */
        if (policy_check_type_name(w, n->column_def->type_name) < 0)
            return -1;
        return policy_walk_node(w, policy_walk_inner(n));
    case PG_QUERY__NODE__NODE_RANGE_TABLE_FUNC_COL:
        /* XMLTABLE(... COLUMNS x some_type): the text is read by the type's
         * input, as a column definition's is (its TypeName is no Node). */
        if (policy_check_type_name(w, n->range_table_func_col->type_name) < 0)
            return -1;
        return policy_walk_node(w, policy_walk_inner(n));
    case PG_QUERY__NODE__NODE_TYPE_NAME:
        if (policy_check_type_name(w, n->type_name) < 0)
            return -1;
        return policy_walk_node(w, policy_walk_inner(n));
    case PG_QUERY__NODE__NODE_A_EXPR:
        return visit_a_expr(w, n->a_expr);
    case PG_QUERY__NODE__NODE_COLUMN_REF:
        return visit_column_ref(w, n->column_ref);
    case PG_QUERY__NODE__NODE_SUB_LINK:
        return visit_sub_link(w, n->sub_link);
    case PG_QUERY__NODE__NODE_A_INDIRECTION:
        if (policy_walk_node(w, policy_walk_inner(n)) < 0)
            return -1;
        return qual_check_indirection(w, n->a_indirection);
    case PG_QUERY__NODE__NODE_CASE_EXPR: {
        /* CASE x WHEN v: x = v with = looked up by name. */
        PgQuery__CaseExpr *ce = n->case_expr;
        if (ce->arg != NULL && ce->n_args > 0 && NODE(ce->args[0], CASE_WHEN) &&
            qual_check_implicit_operator(w, "=", ce->arg, ce->args[0]->case_when->expr,
                                         "CASE x WHEN") < 0)
            return -1;
        return policy_walk_node(w, policy_walk_inner(n));
    }
    case PG_QUERY__NODE__NODE_SORT_BY: {
        PgQuery__SortBy *sb = n->sort_by;
        if (sb->n_use_op >= 2) {
            const char *schema = policy_string_value(sb->use_op[0]);
            if (sb->n_use_op > 2 || schema == NULL || strcmp(schema, "pg_catalog") != 0)
                return policy_refuse(w->rw, SQLSTATE_UNDEFINED_FUNCTION, NULL,
                                     "operator does not exist");
        }
        policy_qualify_name(&sb->use_op, &sb->n_use_op, "pg_catalog");
        return policy_walk_node(w, policy_walk_inner(n));
    }
    case PG_QUERY__NODE__NODE_A_CONST:
        if (moment_literal(n->a_const))
            w->rw->volatile_seen = true; /* 'now', 'today': the value changes */
        return 0;
    case PG_QUERY__NODE__NODE_SQLVALUE_FUNCTION:
    case PG_QUERY__NODE__NODE_CURRENT_OF_EXPR:
        /* CURRENT_TIMESTAMP, CURRENT_USER ...: not cacheable. */
        w->rw->volatile_seen = true;
        return 0;
    case PG_QUERY__NODE__NODE_RANGE_TABLE_SAMPLE:
        return policy_refuse(w->rw, SQLSTATE_FEATURE_NOT_SUPPORTED, NULL,
                             "pgwarden: TABLESAMPLE is not supported");
    default:
        return policy_walk_node(w, policy_walk_inner(n));
    }
}

int policy_walk_node(Walk *w, ProtobufCMessage *msg)
{
    if (policy_walk_children(msg, visit, w) < 0 || w->rw->refused)
        return -1;
    return 0;
}

int policy_walk_slot(Walk *w, PgQuery__Node **slot)
{
    if (*slot == NULL)
        return 0;
    if (visit(slot, w) < 0 || w->rw->refused)
        return -1;
    return 0;
}

int policy_walk_slots(Walk *w, PgQuery__Node **slots, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (policy_walk_slot(w, &slots[i]) < 0)
            return -1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* A query level                                                              */
/* ------------------------------------------------------------------------ */

static int walk_values(Walk *w, PgQuery__Node **slots, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (policy_walk_slot(w, &slots[i]) < 0)
            return -1;
        if (w->level->strict)
            qual_check_value(w, slots[i]);
    }
    return 0;
}

static int walk_having(Walk *w, PgQuery__Node **slot)
{
    PgQuery__Node *n = *slot;
    if (n == NULL)
        return 0;
    if (NODE(n, BOOL_EXPR) && n->bool_expr->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR) {
        for (size_t i = 0; i < n->bool_expr->n_args; i++)
            if (walk_having(w, &n->bool_expr->args[i]) < 0)
                return -1;
        return 0;
    }
    /* A conjunct with an aggregate stays above the aggregation: its
     * sublinks see grouped rows only. */
    Walk h = *w;
    h.pushable = w->level->strict || !qual_has_aggregate(slot);
    if (policy_walk_slot(&h, slot) < 0)
        return -1;
    if (h.pushable)
        qual_check_root(&h, *slot);
    return 0;
}

int policy_walk_select(Rewrite *rw, PgQuery__SelectStmt *s, const Scope *up,
                       const QualLevel *up_level, unsigned flags, uint32_t *out_type,
                       QualColumns *out_cols)
{
    if (out_type != NULL)
        *out_type = 0;
    if (out_cols != NULL)
        memset(out_cols, 0, sizeof(*out_cols));
    if (s->into_clause != NULL)
        return policy_refuse(
            rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
            "pgwarden: only read-only queries are allowed: SELECT INTO is refused");
    if (s->n_locking_clause > 0)
        return policy_refuse(
            rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
            "pgwarden: only read-only queries are allowed: SELECT FOR UPDATE/SHARE "
            "is refused");

    Scope sc = {up, s->with_clause, 0, NULL};
    QualLevel lv = {.up = up_level, .strict = (flags & WALK_STRICT) != 0};
    Walk inner = {rw, &sc, &lv, false};
    int rc = -1;
    unsigned sub = flags & WALK_STRICT;
    if (s->with_clause != NULL) {
        PgQuery__WithClause *wc = s->with_clause;
        sc.cte_cols = pgw_calloc(wc->n_ctes > 0 ? wc->n_ctes : 1, sizeof(*sc.cte_cols));
        for (size_t i = 0; i < wc->n_ctes; i++) {
            PgQuery__Node *n = wc->ctes[i];
            if (!NODE(n, COMMON_TABLE_EXPR))
                continue;
            PgQuery__CommonTableExpr *cte = n->common_table_expr;
            if (cte->ctequery != NULL && !NODE(cte->ctequery, SELECT_STMT)) {
                policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                              "pgwarden: only read-only queries are allowed: data-modifying "
                              "WITH is refused");
                goto done;
            }
            sc.nvisible = wc->recursive ? wc->n_ctes : i;
            if (cte->ctequery != NULL &&
                policy_walk_select(rw, cte->ctequery->select_stmt, &sc, up_level, sub, NULL,
                                   &sc.cte_cols[i]) < 0)
                goto done;
            qual_rename_columns(&sc.cte_cols[i], cte->aliascolnames, cte->n_aliascolnames);
            if (cte->search_clause != NULL || cte->cycle_clause != NULL)
                if (policy_walk_node(&inner, cte->search_clause != NULL
                                                 ? &cte->search_clause->base
                                                 : &cte->cycle_clause->base) < 0)
                    goto done;
        }
        sc.nvisible = wc->n_ctes;
    }
    unsigned arms = flags & (WALK_OUTERMOST | WALK_STRICT);
    if (s->larg != NULL && policy_walk_select(rw, s->larg, &sc, up_level, arms, NULL, NULL) < 0)
        goto done;
    if (s->rarg != NULL && policy_walk_select(rw, s->rarg, &sc, up_level, arms, NULL, NULL) < 0)
        goto done;

    if (policy_walk_slots(&inner, s->from_clause, s->n_from_clause) < 0)
        goto done;
    Walk where = inner;
    where.pushable = true;
    if (policy_walk_slot(&where, &s->where_clause) < 0)
        goto done;
    qual_check_root(&where, s->where_clause);
    if (walk_having(&inner, &s->having_clause) < 0)
        goto done;
    /* Everything else is evaluated on rows that passed this level's quals
     * (a strict level checks it all the same). */
    if (walk_values(&inner, s->values_lists, s->n_values_lists) < 0 ||
        walk_values(&inner, s->target_list, s->n_target_list) < 0 ||
        walk_values(&inner, s->distinct_clause, s->n_distinct_clause) < 0 ||
        walk_values(&inner, s->group_clause, s->n_group_clause) < 0 ||
        walk_values(&inner, s->sort_clause, s->n_sort_clause) < 0 ||
        walk_values(&inner, &s->limit_offset, 1) < 0 || walk_values(&inner, &s->limit_count, 1) < 0)
        goto done;
    if (policy_walk_slots(&inner, s->window_clause, s->n_window_clause) < 0)
        goto done;
    if (lv.strict && s->n_window_clause > 0)
        rw->leaky = true;
    if (out_type != NULL && s->larg == NULL && s->n_target_list == 1 && s->n_group_clause == 0 &&
        s->having_clause == NULL && s->n_distinct_clause == 0)
        *out_type = qual_output_type(&inner, s->target_list[0]);
    if (out_cols != NULL)
        qual_output_columns(&inner, s, NULL, out_cols);
    rc = 0;
done:
    qual_level_free(&lv);
    if (sc.cte_cols != NULL) {
        for (size_t i = 0; i < s->with_clause->n_ctes; i++)
            qual_columns_free(&sc.cte_cols[i]);
        free(sc.cte_cols);
    }
    return rc;
}
