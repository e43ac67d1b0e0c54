/*
 * policy_expr.c — expressions: which functions may run, and whether the
 * statement's expressions are leak-proof enough to let PostgreSQL evaluate
 * them below the row filters (see policy.c for the design of the fence).
 *
 * The walk visits every Node of a SELECT (policy_walk.c guarantees nothing
 * is skipped), dispatching the few node types the policy cares about:
 * relation references to policy_rel.c, casts and calls that name objects to
 * policy_object.c, and everything else to the leak analysis here.
 */
#include "policy_int.h"

#include <stdlib.h>

#include "policy_catalog.h"
#include "policy_walk.h"

static const char *const leakproof_operators[] = {"<", "<=", "<>", "=", ">", ">="};

/* ------------------------------------------------------------------------ */
/* Expressions                                                                */
/* ------------------------------------------------------------------------ */


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
        return policy_check_set_config(rw, fc);
    }
    bool aggregate = builtin_schema && policy_builtin_aggregate(name);
    /* information_schema's helpers that drivers call (pgjdbc getPrimaryKeys). */
    bool infoschema = schema != NULL && strcmp(schema, "information_schema") == 0 &&
                      (strcmp(name, "_pg_expandarray") == 0 || strcmp(name, "_pg_keysequal") == 0);
    bool allowed = (builtin_schema && (aggregate || policy_builtin_scalar(name))) || infoschema ||
                   user_function_allowed(rw->ctx->cfg, schema, name);
    if (!allowed) {
        if (schema != NULL)
            return policy_refuse(rw, SQLSTATE_UNDEFINED_FUNCTION,
                                 "pgwarden lets through only allowlisted functions.",
                                 "function %s.%s does not exist", schema, name);
        return policy_refuse(rw, SQLSTATE_UNDEFINED_FUNCTION,
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
    if (policy_walk_node(&inner, &fc->base) < 0)
        return -1;
    return builtin_schema ? policy_object_func_call(rw, slot, name) : 0;
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
    if (!w->exempt && !policy_is_constant(tc->arg))
        w->rw->leaky = true;
    return policy_walk_node(w, &tc->base);
}

static int visit_a_expr(Walk *w, PgQuery__AExpr *e)
{
    const char *op = e->n_name > 0 ? policy_string_value(e->name[e->n_name - 1]) : NULL;
    if (e->n_name == 2) {
        const char *schema = policy_string_value(e->name[0]);
        if (schema == NULL || strcmp(schema, "pg_catalog") != 0)
            return policy_refuse(w->rw, SQLSTATE_UNDEFINED_FUNCTION, NULL,
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
    return policy_walk_node(w, &e->base);
}

static int visit_column_ref(Walk *w, PgQuery__ColumnRef *cr)
{
    /* schema.table.column (or db.schema.table.column) can no longer name a
     * derived table; keep table.column. */
    if (cr->n_fields >= 3 && policy_string_value(cr->fields[cr->n_fields - 3]) != NULL) {
        const char *ns = policy_string_value(cr->fields[cr->n_fields - 3]);
        const char *rel = policy_string_value(cr->fields[cr->n_fields - 2]);
        if (rel != NULL && schema_table(w->rw->ctx->schema, ns, rel) != NULL) {
            Rewrite *rw = w->rw;
            rw->colfix = pgw_realloc(rw->colfix, (rw->ncolfix + 1) * sizeof(*rw->colfix));
            rw->colfix[rw->ncolfix++] = cr;
        }
    }
    return policy_walk_node(w, &cr->base);
}

static int visit(PgQuery__Node **slot, void *arg)
{
    Walk *w = arg;
    PgQuery__Node *n = *slot;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_SELECT_STMT:
        return policy_walk_select(w->rw, n->select_stmt, w->scope, false);
    case PG_QUERY__NODE__NODE_RANGE_VAR:
        return policy_visit_range_var(w, slot);
    case PG_QUERY__NODE__NODE_FUNC_CALL:
        return visit_func_call(w, slot);
    case PG_QUERY__NODE__NODE_TYPE_CAST:
        return visit_type_cast(w, n->type_cast);
    case PG_QUERY__NODE__NODE_COLUMN_DEF: /* f() AS t(a some_type) */
        if (policy_check_type_name(w, n->column_def->type_name) < 0)
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
    case PG_QUERY__NODE__NODE_SUB_LINK: {
        /* A scalar subquery errors on a second row: data-dependent. */
        PgQuery__SubLinkType t = n->sub_link->sub_link_type;
        Walk inner = *w;
        inner.exempt = false;
        if (t == PG_QUERY__SUB_LINK_TYPE__EXPR_SUBLINK ||
            t == PG_QUERY__SUB_LINK_TYPE__ROWCOMPARE_SUBLINK ||
            t == PG_QUERY__SUB_LINK_TYPE__MULTIEXPR_SUBLINK)
            w->rw->leaky = w->rw->leaky || !w->exempt;
        return policy_walk_node(&inner, &n->sub_link->base);
    }
    case PG_QUERY__NODE__NODE_SQLVALUE_FUNCTION:
    case PG_QUERY__NODE__NODE_CURRENT_OF_EXPR:
        /* CURRENT_TIMESTAMP, CURRENT_USER ...: not cacheable. */
        w->rw->volatile_seen = true;
        return 0;
    case PG_QUERY__NODE__NODE_RANGE_TABLE_SAMPLE:
        return policy_refuse(w->rw, SQLSTATE_FEATURE_NOT_SUPPORTED, NULL,
                             "pgwarden: TABLESAMPLE is not supported");
    case PG_QUERY__NODE__NODE_XML_EXPR:
    case PG_QUERY__NODE__NODE_XML_SERIALIZE:
    case PG_QUERY__NODE__NODE_RANGE_TABLE_FUNC:
        if (!w->exempt)
            w->rw->leaky = true;
        return policy_walk_node(w, policy_walk_inner(n));
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

/* Parse "SELECT ... FROM <text>"-like generated SQL into a tree. */
int policy_walk_select(Rewrite *rw, PgQuery__SelectStmt *s, const Scope *up, bool outermost)
{
    if (s->into_clause != NULL)
        return policy_refuse(
            rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
            "pgwarden: only read-only queries are allowed: SELECT INTO is refused");
    if (s->n_locking_clause > 0)
        return policy_refuse(
            rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
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
                return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                                     "pgwarden: only read-only queries are allowed: data-modifying "
                                     "WITH is refused");
            sc.nvisible = wc->recursive ? wc->n_ctes : i;
            if (policy_walk_slot(&inner, &cte->ctequery) < 0)
                return -1;
            if (cte->search_clause != NULL || cte->cycle_clause != NULL)
                if (policy_walk_node(&inner, cte->search_clause != NULL
                                                 ? &cte->search_clause->base
                                                 : &cte->cycle_clause->base) < 0)
                    return -1;
        }
        sc.nvisible = wc->n_ctes;
    }
    if (s->larg != NULL && policy_walk_select(rw, s->larg, &sc, outermost) < 0)
        return -1;
    if (s->rarg != NULL && policy_walk_select(rw, s->rarg, &sc, outermost) < 0)
        return -1;

    Walk shown = {rw, &sc, outermost};
    if (policy_walk_slots(&inner, s->from_clause, s->n_from_clause) < 0 ||
        policy_walk_slot(&inner, &s->where_clause) < 0 ||
        policy_walk_slot(&inner, &s->having_clause) < 0 ||
        policy_walk_slots(&inner, s->values_lists, s->n_values_lists) < 0 ||
        policy_walk_slots(&shown, s->target_list, s->n_target_list) < 0 ||
        policy_walk_slots(&shown, s->distinct_clause, s->n_distinct_clause) < 0 ||
        policy_walk_slots(&shown, s->group_clause, s->n_group_clause) < 0 ||
        policy_walk_slots(&shown, s->window_clause, s->n_window_clause) < 0 ||
        policy_walk_slots(&shown, s->sort_clause, s->n_sort_clause) < 0 ||
        policy_walk_slot(&shown, &s->limit_offset) < 0 ||
        policy_walk_slot(&shown, &s->limit_count) < 0)
        return -1;
    return 0;
}
