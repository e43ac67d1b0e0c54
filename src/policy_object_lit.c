/*
 * policy_object_lit.c — untyped string literals the backend would read
 * with a reg* input function, and other names the backend looks up while
 * it analyses a statement, before any wrapper of ours can run.
 *
 * An untyped literal takes the type its context gives it, and its
 * context's type is settled by PostgreSQL's type resolution: COALESCE,
 * CASE results, ARRAY[...], VALUES rows, the arms of UNION/INTERSECT/
 * EXCEPT, GREATEST/LEAST, IN lists, operators and polymorphic functions
 * (array_append ...) bring their inputs to one type. Beside a value of a
 * reg* type the literal becomes that type, and regclassin, regtypein,
 * regprocin ... look its text up with the backend role's view of the
 * catalogs: COALESCE(NULL::regclass, 'audit_secrets') answered the hidden
 * table's name (and, ::oid, its OID), where a missing name failed 42P01.
 * An explicit 'x'::regclass is checked (policy_object.c); this literal
 * never was, and nothing of ours runs between the lookup and the answer.
 *
 * The policy does not know every expression's type (that would take the
 * backend's resolution), so it asks a weaker question it can answer from
 * the text alone: could any input of the construct be of a reg* type? An
 * expression could when it contains a cast to a reg* type, a call of a
 * built-in that returns one (pg_typeof, to_regclass ...), a catalog column
 * of a reg* type (pg_proc.prosupport, pg_type.typinput ...), or a column
 * of a subquery, CTE or function in FROM whose output could be one (named
 * so by the statement itself; found by a fixpoint over those names; the
 * statement's own outermost select list is not referable and not
 * counted). A construct holding such an input and an untyped string
 * literal is refused, whatever the literal says and whether or not the
 * inputs really meet as reg* values: the refusal depends on the
 * statement's text only, so it tells nothing about the catalogs. Bind
 * parameters of such types are the statement pipeline's concern, not
 * this file's.
 *
 * The same lookup without a reg* sibling, where a function's parameter is
 * a reg* type (to_tsvector('cfg', ...) and the other text search calls,
 * whose first argument is a regconfig): the literal is cast explicitly,
 * as PostgreSQL would read it, so the cast's checks apply (policy_object.c:
 * a schema the tenant cannot see answers as a missing one, 3F000, where
 * the backend said 42704 for a hidden schema). ts_headline with three
 * arguments may read its first as text or as regconfig; there a literal
 * qualified with a schema the tenant cannot see is refused as a missing
 * schema is. A COLLATE clause names its collation's schema the same way.
 */
#include "policy.h"
#include "policy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "policy_builtin.h"
#include "policy_object_int.h"
#include "policy_walk.h"
#include "schema.h"

/* Built-ins the allowlist holds that return a reg* value, or rows with a
 * reg* column (whose column names are in reg_columns), besides to_reg*. */
static const char *const reg_functions[] = {
    "pg_get_catalog_foreign_keys", "pg_get_replica_identity_index",
    "pg_partition_ancestors",      "pg_partition_root",
    "pg_partition_tree",           "pg_typeof",
};

/* Columns of pg_catalog and information_schema relations (and of the
 * functions above) whose type is a reg* type or an array of one (PG 15). */
static const char *const reg_columns[] = {
    "aggcombinefn",   "aggdeserialfn", "aggfinalfn",      "aggfnoid",    "aggmfinalfn",
    "aggminvtransfn", "aggmtransfn",   "aggserialfn",     "aggtransfn",  "amhandler",
    "amproc",         "conproc",       "data_type",       "fktable",     "oprcode",
    "oprjoin",        "oprrest",       "parameter_types", "parentrelid", "pktable",
    "prosupport",     "prsend",        "prsheadline",     "prslextype",  "prsstart",
    "prstoken",       "relid",         "rngcanonical",    "rngsubdiff",  "tmplinit",
    "tmpllexize",     "trffromsql",    "trftosql",        "typanalyze",  "typinput",
    "typmodin",       "typmodout",     "typoutput",       "typreceive",  "typsend",
    "typsubscript",
};

/* Polymorphic built-ins that bring their arguments to one type (lag and
 * lead: the value and its default, anycompatible). */
static const char *const unifying_functions[] = {
    "array_append",   "array_cat",       "array_fill",
    "array_position", "array_positions", "array_prepend",
    "array_remove",   "array_replace",   "lag",
    "lead",           "width_bucket",
};

static bool in(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; s != NULL && i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

typedef struct RegLit {
    Rewrite *rw;
    Names tainted; /* output names of derived columns that could be reg* */
    bool catalogs; /* the statement names a relation of pg_catalog or information_schema */
    bool grew;
    bool found; /* a construct with a literal and a possible reg* input */
} RegLit;

static bool tainted(const RegLit *rl, const char *name)
{
    for (size_t i = 0; name != NULL && i < rl->tainted.n; i++)
        if (strcmp(rl->tainted.v[i], name) == 0)
            return true;
    return false;
}

static void taint(RegLit *rl, const char *name)
{
    if (name == NULL || tainted(rl, name))
        return;
    Names *ns = &rl->tainted;
    if (ns->n == ns->cap) {
        ns->cap = ns->cap ? 2 * ns->cap : 8;
        ns->v = pgw_realloc(ns->v, ns->cap * sizeof(*ns->v));
    }
    ns->v[ns->n++] = pgw_strdup(name);
    rl->grew = true;
}

static const char *last_name(PgQuery__Node *const *names, size_t n)
{
    return n > 0 ? policy_string_value(names[n - 1]) : NULL;
}

static bool reg_type_name(const PgQuery__TypeName *tn)
{
    const char *name = tn != NULL ? last_name(tn->names, tn->n_names) : NULL;
    if (name == NULL)
        return false;
    if (tn->n_names == 2 && strcmp(policy_string_value(tn->names[0]), "pg_catalog") != 0)
        return false;
    return policy_builtin_is_reg_type(name) ||
           (name[0] == '_' && policy_builtin_is_reg_type(name + 1));
}

/* Polymorphic scalar built-ins whose result has their argument's type (or
 * its element's or array's): a reg* argument makes a reg* result. Every
 * aggregate and window function counts as such too (array_agg, min,
 * lag, mode() WITHIN GROUP ... do; count does not, and counting it is
 * only a refusal too many). */
static const char *const passing_functions[] = {
    "array_append",
    "array_cat",
    "array_fill",
    "array_prepend",
    "array_remove",
    "array_replace",
    "json_populate_record",
    "json_populate_recordset",
    "jsonb_populate_record",
    "jsonb_populate_recordset",
    "trim_array",
    "unnest",
};

static bool maybe_reg(const RegLit *rl, PgQuery__Node *n);
static bool untyped_literal(const PgQuery__Node *n);

/* A column type as format_type prints it: regclass, regtype[] ... */
static bool reg_type_text(const char *type)
{
    char name[64];
    if (type == NULL)
        return false;
    if (strncmp(type, "pg_catalog.", 11) == 0)
        type += 11;
    size_t n = strcspn(type, "[");
    if (n >= sizeof(name))
        return false;
    memcpy(name, type, n);
    name[n] = '\0';
    return policy_builtin_is_reg_type(name);
}

typedef struct Probe {
    const RegLit *rl;
    bool reg;
} Probe;

static int probe_visit(PgQuery__Node **slot, void *arg)
{
    Probe *p = arg;
    if (maybe_reg(p->rl, *slot)) {
        p->reg = true;
        return -1; /* found: stop */
    }
    return 0;
}

/* Does any Node directly below msg (a list, a SELECT's targets ...) maybe
 * hold a reg* value? */
static bool any_child_reg(const RegLit *rl, ProtobufCMessage *msg)
{
    Probe p = {rl, false};
    if (msg != NULL && policy_walk_children(msg, probe_visit, &p) < 0)
        return true; /* probe_visit stops the walk when it finds one */
    return p.reg;
}

/* Could the expression's value be of a reg* type (or hold one: an array,
 * a row)? Follows the value, not every subexpression: x::regclass::text
 * is text. Node types not named here answer as any of their children
 * does (fail closed). */
static bool maybe_reg(const RegLit *rl, PgQuery__Node *n)
{
    if (n == NULL)
        return false;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_TYPE_CAST:
        return reg_type_name(n->type_cast->type_name);
    case PG_QUERY__NODE__NODE_FUNC_CALL: {
        const PgQuery__FuncCall *fc = n->func_call;
        const char *name = last_name(fc->funcname, fc->n_funcname);
        if (in(reg_functions, PGW_ARRAY_LEN(reg_functions), name) ||
            (name != NULL && strncmp(name, "to_reg", 6) == 0))
            return true;
        if (!in(passing_functions, PGW_ARRAY_LEN(passing_functions), name) &&
            (name == NULL || !policy_builtin_aggregate(name)))
            return false;
        /* Arguments, and WITHIN GROUP (ORDER BY ...) of mode() and
         * percentile_disc(), whose result is of the ordering's type. */
        return any_child_reg(rl, policy_walk_inner(n));
    }
    case PG_QUERY__NODE__NODE_COLUMN_REF: {
        const PgQuery__ColumnRef *cr = n->column_ref;
        if (cr->n_fields > 0 && NODE(cr->fields[cr->n_fields - 1], A_STAR))
            /* t.* or *: any column of what it expands to */
            return rl->catalogs || rl->tainted.n > 0;
        const char *col = last_name(cr->fields, cr->n_fields);
        return in(reg_columns, PGW_ARRAY_LEN(reg_columns), col) || tainted(rl, col);
    }
    case PG_QUERY__NODE__NODE_A_EXPR: {
        const PgQuery__AExpr *e = n->a_expr;
        const char *op = e->n_name == 1 ? policy_string_value(e->name[0]) : NULL;
        if (e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NULLIF)
            return maybe_reg(rl, e->lexpr);
        if (e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_OP && op != NULL && strcmp(op, "||") == 0)
            return maybe_reg(rl, e->lexpr) || maybe_reg(rl, e->rexpr);
        return false; /* comparisons, LIKE, IN ...: boolean; arithmetic */
    }
    case PG_QUERY__NODE__NODE_SUB_LINK: {
        const PgQuery__SubLink *sl = n->sub_link;
        if (sl->sub_link_type == PG_QUERY__SUB_LINK_TYPE__EXISTS_SUBLINK ||
            sl->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ANY_SUBLINK ||
            sl->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ALL_SUBLINK)
            return false;
        if (!NODE(sl->subselect, SELECT_STMT))
            return any_child_reg(rl, policy_walk_inner(n));
        const PgQuery__SelectStmt *s = sl->subselect->select_stmt;
        for (size_t i = 0; i < s->n_target_list; i++)
            if (NODE(s->target_list[i], RES_TARGET) &&
                maybe_reg(rl, s->target_list[i]->res_target->val))
                return true;
        return any_child_reg(rl, policy_walk_inner(sl->subselect));
    }
    case PG_QUERY__NODE__NODE_BOOL_EXPR:
    case PG_QUERY__NODE__NODE_NULL_TEST:
    case PG_QUERY__NODE__NODE_BOOLEAN_TEST:
    case PG_QUERY__NODE__NODE_A_CONST:
    case PG_QUERY__NODE__NODE_PARAM_REF: /* Bind values: the pipeline's */
    case PG_QUERY__NODE__NODE_SQLVALUE_FUNCTION:
    case PG_QUERY__NODE__NODE_GROUPING_FUNC:
    case PG_QUERY__NODE__NODE_XML_EXPR:
        return false;
    case PG_QUERY__NODE__NODE_CASE_EXPR: {
        const PgQuery__CaseExpr *ce = n->case_expr;
        for (size_t i = 0; i < ce->n_args; i++)
            if (NODE(ce->args[i], CASE_WHEN) && maybe_reg(rl, ce->args[i]->case_when->result))
                return true;
        return maybe_reg(rl, ce->defresult);
    }
    default:
        /* COALESCE, GREATEST, ARRAY[...], ROW(...), subscripts, COLLATE,
         * lists and anything else: as its parts. */
        return any_child_reg(rl, policy_walk_inner(n));
    }
}

/* A string constant of type unknown: 'x', or 'x'::unknown (which stays
 * unknown and is read by the input function of whatever type it meets),
 * or either with a COLLATE clause, which keeps its argument's type (the
 * backend coerces the literal under it: COALESCE(NULL::regclass, 'x'
 * COLLATE "C") reads 'x' with regclassin). */
static bool untyped_literal(const PgQuery__Node *n)
{
    if (NODE(n, COLLATE_CLAUSE))
        return untyped_literal(n->collate_clause->arg);
    if (NODE(n, TYPE_CAST)) {
        const PgQuery__TypeName *tn = n->type_cast->type_name;
        const char *name = tn != NULL ? last_name(tn->names, tn->n_names) : NULL;
        return name != NULL && strcmp(name, "unknown") == 0 && tn->n_array_bounds == 0 &&
               untyped_literal(n->type_cast->arg);
    }
    return NODE(n, A_CONST) && !n->a_const->isnull &&
           n->a_const->val_case == PG_QUERY__A__CONST__VAL_SVAL;
}

/* One construct's inputs, brought to one type by the backend. */
typedef struct Group {
    bool literal, reg;
} Group;

/* A row constructor's fields meet the other row's fields one by one
 * (ROW(ARRAY[x::regclass]) = ROW('{name}') reads the literal as
 * regclass[]): its fields join the group, every one with every other,
 * which refuses more than a field-by-field pairing would, never less. */
static void group_add(const RegLit *rl, Group *g, PgQuery__Node *n)
{
    if (n == NULL)
        return;
    if (NODE(n, LIST) || NODE(n, ROW_EXPR)) {
        size_t k = NODE(n, LIST) ? n->list->n_items : n->row_expr->n_args;
        for (size_t i = 0; i < k; i++)
            group_add(rl, g, NODE(n, LIST) ? n->list->items[i] : n->row_expr->args[i]);
        return;
    }
    if (untyped_literal(n))
        g->literal = true;
    else if (!g->reg && maybe_reg(rl, n))
        g->reg = true;
}

static void group_end(RegLit *rl, const Group *g)
{
    if (g->literal && g->reg)
        rl->found = true;
}

/* The leaf selects of a set operation, in order (a plain select: itself). */
typedef struct Leaves {
    size_t n, cap;
    PgQuery__SelectStmt **v;
} Leaves;

static bool is_setop(const PgQuery__SelectStmt *s)
{
    return s->op != PG_QUERY__SET_OPERATION__SETOP_NONE &&
           s->op != PG_QUERY__SET_OPERATION__SET_OPERATION_UNDEFINED;
}

static void set_leaves(PgQuery__SelectStmt *s, Leaves *out)
{
    if (s == NULL)
        return;
    if (is_setop(s)) {
        set_leaves(s->larg, out);
        set_leaves(s->rarg, out);
        return;
    }
    if (out->n == out->cap) {
        out->cap = out->cap ? 2 * out->cap : 8;
        out->v = pgw_realloc(out->v, out->cap * sizeof(*out->v));
    }
    out->v[out->n++] = s;
}

/* Column i of a leaf select: its targets', or every VALUES row's. */
static void leaf_column(const RegLit *rl, const PgQuery__SelectStmt *s, size_t i, Group *g)
{
    if (s->n_values_lists > 0) {
        for (size_t r = 0; r < s->n_values_lists; r++) {
            const PgQuery__Node *row = s->values_lists[r];
            if (NODE(row, LIST) && i < row->list->n_items)
                group_add(rl, g, row->list->items[i]);
        }
        return;
    }
    if (i < s->n_target_list && NODE(s->target_list[i], RES_TARGET))
        group_add(rl, g, s->target_list[i]->res_target->val);
}

static size_t leaf_width(const PgQuery__SelectStmt *s)
{
    if (s->n_values_lists > 0 && NODE(s->values_lists[0], LIST))
        return s->values_lists[0]->list->n_items;
    return s->n_target_list;
}

static void check_select(RegLit *rl, PgQuery__SelectStmt *s)
{
    if (!is_setop(s) && s->n_values_lists < 2)
        return; /* one select list: nothing meets */
    Leaves lv = {0};
    set_leaves(s, &lv);
    size_t width = 0;
    for (size_t l = 0; l < lv.n; l++)
        if (leaf_width(lv.v[l]) > width)
            width = leaf_width(lv.v[l]);
    /* A leaf whose select list has a star: its columns' places are not
     * known here, so a star that could hold a reg* column counts for
     * every place. */
    bool star_reg = false;
    for (size_t l = 0; l < lv.n && !star_reg; l++)
        for (size_t i = 0; i < lv.v[l]->n_target_list && !star_reg; i++) {
            const PgQuery__Node *t = lv.v[l]->target_list[i];
            const PgQuery__Node *v = NODE(t, RES_TARGET) ? t->res_target->val : NULL;
            star_reg = NODE(v, COLUMN_REF) && v->column_ref->n_fields > 0 &&
                       NODE(v->column_ref->fields[v->column_ref->n_fields - 1], A_STAR) &&
                       maybe_reg(rl, (PgQuery__Node *)v);
        }
    for (size_t i = 0; i < width; i++) {
        Group g = {false, star_reg};
        for (size_t l = 0; l < lv.n; l++)
            leaf_column(rl, lv.v[l], i, &g);
        group_end(rl, &g);
    }
    free(lv.v);
}

/* Regconfig-first calls: the literal is cast as the backend would read it,
 * so the cast's checks apply; or, where the overload is ambiguous, the
 * schema part is checked. */
static int text_search_argument(RegLit *rl, PgQuery__FuncCall *fc)
{
    const char *name = last_name(fc->funcname, fc->n_funcname);
    if (name == NULL || fc->n_args == 0 || !untyped_literal(fc->args[0]) ||
        (fc->n_funcname == 2 && strcmp(policy_string_value(fc->funcname[0]), "pg_catalog") != 0))
        return 0;
    static const char *const two[] = {"phraseto_tsquery", "plainto_tsquery", "to_tsquery",
                                      "to_tsvector", "websearch_to_tsquery"};
    bool headline = strcmp(name, "ts_headline") == 0;
    bool cast =
        (fc->n_args == 2 && in(two, PGW_ARRAY_LEN(two), name)) || (headline && fc->n_args == 4);
    if (cast)
        return policy_object_wrap(rl->rw, &fc->args[0], "((pgwarden_arg)::pg_catalog.regconfig)",
                                  NULL, NULL);
    if (headline && fc->n_args == 3) {
        const PgQuery__Node *lit = fc->args[0];
        while (NODE(lit, TYPE_CAST) || NODE(lit, COLLATE_CLAUSE))
            lit = NODE(lit, TYPE_CAST) ? lit->type_cast->arg : lit->collate_clause->arg;
        return policy_object_check_literal_schema(rl->rw, lit->a_const->sval->sval);
    }
    return 0;
}

static int check_visit(PgQuery__Node **slot, void *arg);

/* COLLATE s.c: a schema the tenant cannot see answers as a missing one. */
static int collation_schema(RegLit *rl, const PgQuery__CollateClause *cc)
{
    if (cc == NULL || cc->n_collname < 2)
        return 0;
    const char *schema = policy_string_value(cc->collname[cc->n_collname - 2]);
    return schema != NULL ? policy_object_check_schema(rl->rw, schema) : 0;
}

/* A set operation's tree once: its arms are checked together above, so
 * they are walked as leaves, never as set operations of their own (a
 * chain of n UNIONs would otherwise be flattened n times). */
static int walk_setop(RegLit *rl, PgQuery__SelectStmt *s)
{
    if (s == NULL)
        return 0;
    if (!is_setop(s))
        return policy_walk_children(&s->base, check_visit, rl);
    PgQuery__SelectStmt *larg = s->larg, *rarg = s->rarg;
    s->larg = s->rarg = NULL;
    int rc = policy_walk_children(&s->base, check_visit, rl);
    s->larg = larg;
    s->rarg = rarg;
    if (rc < 0 || walk_setop(rl, larg) < 0)
        return -1;
    return walk_setop(rl, rarg);
}

static int check_visit(PgQuery__Node **slot, void *arg)
{
    RegLit *rl = arg;
    PgQuery__Node *n = *slot;
    Group g = {false, false};
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_COALESCE_EXPR:
        for (size_t i = 0; i < n->coalesce_expr->n_args; i++)
            group_add(rl, &g, n->coalesce_expr->args[i]);
        break;
    case PG_QUERY__NODE__NODE_MIN_MAX_EXPR:
        for (size_t i = 0; i < n->min_max_expr->n_args; i++)
            group_add(rl, &g, n->min_max_expr->args[i]);
        break;
    case PG_QUERY__NODE__NODE_A_ARRAY_EXPR:
        for (size_t i = 0; i < n->a_array_expr->n_elements; i++)
            group_add(rl, &g, n->a_array_expr->elements[i]);
        break;
    case PG_QUERY__NODE__NODE_CASE_EXPR: {
        const PgQuery__CaseExpr *ce = n->case_expr;
        Group w = {false, false};
        group_add(rl, &w, ce->arg);
        for (size_t i = 0; i < ce->n_args; i++)
            if (NODE(ce->args[i], CASE_WHEN)) {
                group_add(rl, &g, ce->args[i]->case_when->result);
                if (ce->arg != NULL)
                    group_add(rl, &w, ce->args[i]->case_when->expr);
            }
        group_add(rl, &g, ce->defresult);
        group_end(rl, &w);
        break;
    }
    case PG_QUERY__NODE__NODE_A_EXPR:
        /* Operators (=, ||, @> ...), IN lists, BETWEEN, NULLIF, IS
         * DISTINCT FROM: both sides meet in one operator's input types. */
        group_add(rl, &g, n->a_expr->lexpr);
        group_add(rl, &g, n->a_expr->rexpr);
        break;
    case PG_QUERY__NODE__NODE_FUNC_CALL: {
        PgQuery__FuncCall *fc = n->func_call;
        if (text_search_argument(rl, fc) < 0)
            return -1;
        if (in(unifying_functions, PGW_ARRAY_LEN(unifying_functions),
               last_name(fc->funcname, fc->n_funcname)))
            for (size_t i = 0; i < fc->n_args; i++)
                group_add(rl, &g, fc->args[i]);
        break;
    }
    case PG_QUERY__NODE__NODE_COLLATE_CLAUSE:
        if (collation_schema(rl, n->collate_clause) < 0)
            return -1;
        break;
    case PG_QUERY__NODE__NODE_COLUMN_DEF: /* AS f(a text COLLATE s.c) */
        if (collation_schema(rl, n->column_def->coll_clause) < 0)
            return -1;
        break;
    case PG_QUERY__NODE__NODE_SELECT_STMT:
        check_select(rl, n->select_stmt);
        if (is_setop(n->select_stmt))
            return walk_setop(rl, n->select_stmt);
        break;
    default:
        break;
    }
    group_end(rl, &g);
    return policy_walk_children(policy_walk_inner(*slot), check_visit, arg);
}

/* Output names of a derived select whose columns could be reg*: explicit
 * names, else the name PostgreSQL would figure (a column's, a function's,
 * a cast's type); every column alias of the FROM item besides. */
static void taint_select(RegLit *rl, PgQuery__SelectStmt *s, const PgQuery__Alias *alias)
{
    Leaves lv = {0};
    set_leaves(s, &lv);
    size_t n = lv.n;
    PgQuery__SelectStmt **leaves = lv.v;
    bool any = false;
    for (size_t l = 0; l < n; l++) {
        const PgQuery__SelectStmt *leaf = leaves[l];
        for (size_t i = 0; i < leaf->n_target_list; i++) {
            if (!NODE(leaf->target_list[i], RES_TARGET))
                continue;
            const PgQuery__ResTarget *rt = leaf->target_list[i]->res_target;
            if (!maybe_reg(rl, rt->val))
                continue;
            any = true;
            if (rt->name != NULL && rt->name[0] != '\0') {
                taint(rl, rt->name);
                continue;
            }
            const PgQuery__Node *v = rt->val;
            while (NODE(v, TYPE_CAST) && !NODE(v->type_cast->arg, A_CONST))
                v = v->type_cast->arg;
            if (NODE(v, COLUMN_REF))
                taint(rl, last_name(v->column_ref->fields, v->column_ref->n_fields));
            else if (NODE(v, FUNC_CALL))
                taint(rl, last_name(v->func_call->funcname, v->func_call->n_funcname));
            else if (NODE(v, TYPE_CAST))
                taint(rl,
                      last_name(v->type_cast->type_name->names, v->type_cast->type_name->n_names));
        }
        for (size_t r = 0; r < leaf->n_values_lists && !any; r++)
            any = maybe_reg(rl, leaf->values_lists[r]);
    }
    if (any && n > 0 && leaves[0]->n_values_lists > 0) {
        /* VALUES columns are column1, column2 ... */
        char name[32];
        for (size_t i = 0; i < leaf_width(leaves[0]); i++) {
            snprintf(name, sizeof(name), "column%zu", i + 1);
            taint(rl, name);
        }
    }
    for (size_t i = 0; any && alias != NULL && i < alias->n_colnames; i++)
        taint(rl, policy_string_value(alias->colnames[i]));
    free(lv.v);
}

static int taint_visit(PgQuery__Node **slot, void *arg)
{
    RegLit *rl = arg;
    PgQuery__Node *n = *slot;
    if (NODE(n, RANGE_SUBSELECT) && NODE(n->range_subselect->subquery, SELECT_STMT))
        taint_select(rl, n->range_subselect->subquery->select_stmt, n->range_subselect->alias);
    else if (NODE(n, COMMON_TABLE_EXPR) && NODE(n->common_table_expr->ctequery, SELECT_STMT)) {
        const PgQuery__CommonTableExpr *c = n->common_table_expr;
        taint_select(rl, c->ctequery->select_stmt, NULL);
        if (c->n_aliascolnames > 0 && maybe_reg(rl, c->ctequery))
            for (size_t i = 0; i < c->n_aliascolnames; i++)
                taint(rl, policy_string_value(c->aliascolnames[i]));
    } else if (NODE(n, RANGE_FUNCTION) && maybe_reg(rl, n)) {
        /* Its columns: named by the alias list, else after the alias or
         * the function (unnest(...) AS u: u; unnest(...): unnest), or by
         * the function's own OUT parameters (in reg_columns). */
        const PgQuery__RangeFunction *rf = n->range_function;
        const PgQuery__Alias *a = rf->alias;
        for (size_t i = 0; a != NULL && i < a->n_colnames; i++)
            taint(rl, policy_string_value(a->colnames[i]));
        if (a != NULL)
            taint(rl, a->aliasname);
        for (size_t i = 0; i < rf->n_functions; i++) {
            const PgQuery__Node *item = rf->functions[i];
            if (NODE(item, LIST) && item->list->n_items > 0 &&
                NODE(item->list->items[0], FUNC_CALL))
                taint(rl, last_name(item->list->items[0]->func_call->funcname,
                                    item->list->items[0]->func_call->n_funcname));
        }
    } else if (NODE(n, RANGE_VAR)) {
        const char *schema = n->range_var->schemaname;
        if ((schema != NULL &&
             (strcmp(schema, "pg_catalog") == 0 || strcmp(schema, "information_schema") == 0)) ||
            strncmp(n->range_var->relname, "pg_", 3) == 0)
            rl->catalogs = true;
    }
    return policy_walk_children(policy_walk_inner(*slot), taint_visit, arg);
}

int policy_object_check_reg_literals(Rewrite *rw, PgQuery__Node **stmt)
{
    RegLit rl = {.rw = rw};
    int rc = 0;
    /* Columns of the tenant's own tables that are of a reg* type (the
     * catalogs' are reg_columns). */
    const PgwSchema *sch = rw->ctx->schema;
    for (size_t t = 0; sch != NULL && t < schema_ntables(sch); t++) {
        const PgwSchemaTable *tab = schema_table_at(sch, t);
        if (policy_is_catalog_schema(tab->schema))
            continue;
        for (size_t c = 0; c < tab->ncolumns; c++)
            if (reg_type_text(tab->columns[c].type))
                taint(&rl, tab->columns[c].name);
    }
    /* Each round can only add names; a statement has finitely many. The
     * second round sees what the first learnt of catalogs (for stars). */
    for (int round = 0; round < 2 || rl.grew; round++) {
        rl.grew = false;
        if (policy_walk_children(policy_walk_inner(*stmt), taint_visit, &rl) < 0)
            break;
    }
    if (check_visit(stmt, &rl) < 0 || rw->refused)
        rc = -1;
    else if (rl.found)
        rc = policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                           "Cast the literal to the type you mean ('name'::regclass, "
                           "'name'::text).",
                           "pgwarden: an untyped string literal beside a value of a reg* type is "
                           "not allowed: the backend would look its text up as a name");
    for (size_t i = 0; i < rl.tainted.n; i++)
        free(rl.tainted.v[i]);
    free(rl.tainted.v);
    return rc;
}
