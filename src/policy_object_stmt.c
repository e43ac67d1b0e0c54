/*
 * policy_object_stmt.c — what the virtual catalog needs from the whole
 * statement, before and after the walk (policy.c's driver calls
 * policy_object_prepare first and policy_object_finish last):
 *
 *   - the pre-pass: reserved names (the generated SQL names its CTEs and
 *     range variables pgwarden_*, so a client's of the same name could
 *     capture a reference of ours), the catalog columns the statement can
 *     read (a view carries only those, which keeps the rewrite of a psql
 *     \d query small), the system columns it names (tableoid, ctid, xmin:
 *     a view carries them as ordinary columns), pg_show_all_settings() in
 *     FROM read as pg_settings, current_catalog, SHOW of settings a tenant
 *     may not read (SHOW ALL becomes a pg_settings query), PREPARE argument
 *     types;
 *   - star expansion: because a view carries system columns as ordinary
 *     ones, t.* (and a lone * over one catalog) over such a view would show
 *     them, which PostgreSQL's never does; the star is written out as the
 *     catalog's own columns, in order (a whole-row reference, or a * over
 *     several FROM items, still would: see the README's limits);
 *   - the Parse message's parameter types (a reg* type or a user-defined
 *     type is converted by the backend before any rewrite sees the value);
 *   - the WITH that defines the visible sets, attached to the outermost
 *     SELECT ahead of the client's own CTEs;
 *   - a workaround for libpg_query 15's deparser, which writes FETCH/MOVE
 *     cursor names without quotes ("SQL_CUR0x55..." came back as
 *     sql_cur0x55..., so the verifying re-parse refused every psqlODBC
 *     fetch).
 *
 * It must never change what a statement means: every rewrite here is one
 * PostgreSQL would answer alike (a star and its columns, SHOW ALL and
 * pg_settings), or a refusal.
 */
#include "policy.h"
#include "policy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "policy_catalog.h"
#include "policy_object_int.h"
#include "policy_walk.h"

/* First OID of objects created after initdb. */
#define FIRST_NORMAL_OID 16384u

/* ------------------------------------------------------------------------ */
/* Names                                                                      */
/* ------------------------------------------------------------------------ */

static void names_add(Names *ns, const char *name)
{
    for (size_t i = 0; i < ns->n; i++)
        if (strcmp(ns->v[i], name) == 0)
            return;
    if (ns->n == ns->cap) {
        ns->cap = ns->cap ? 2 * ns->cap : 16;
        ns->v = pgw_realloc(ns->v, ns->cap * sizeof(*ns->v));
    }
    ns->v[ns->n++] = pgw_strdup(name);
}

static bool names_has(const Names *ns, const char *name)
{
    for (size_t i = 0; i < ns->n; i++)
        if (strcmp(ns->v[i], name) == 0)
            return true;
    return false;
}

static void names_clear(Names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
    memset(ns, 0, sizeof(*ns));
}

static bool statement_reads_column(const void *arg, const char *column)
{
    const PgwObjectState *st = arg;
    return st->all_columns || names_has(&st->columns, column);
}


void policy_object_reset(Rewrite *rw)
{
    if (rw->objects == NULL)
        return;
    policy_object_free_templates(rw->objects);
    names_clear(&rw->objects->columns);
    names_clear(&rw->objects->bare);
    names_clear(&rw->objects->ranges);
    names_clear(&rw->objects->ctes);
    free(rw->objects);
    rw->objects = NULL;
}


/* ------------------------------------------------------------------------ */
/* The pre-pass                                                               */
/* ------------------------------------------------------------------------ */

/* The SELECT that can carry the statement's WITH, NULL when there is none
 * (EXECUTE's parameters). COPY t TO STDOUT becomes COPY (SELECT ...) in the
 * walk, so it has one. */
static PgQuery__SelectStmt *with_target(PgQuery__Node *n, bool *will_have)
{
    *will_have = false;
    switch (n != NULL ? n->node_case : PG_QUERY__NODE__NODE__NOT_SET) {
    case PG_QUERY__NODE__NODE_SELECT_STMT:
        *will_have = true;
        return n->select_stmt;
    case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
        return with_target(n->declare_cursor_stmt->query, will_have);
    case PG_QUERY__NODE__NODE_PREPARE_STMT:
        return with_target(n->prepare_stmt->query, will_have);
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
        return with_target(n->explain_stmt->query, will_have);
    case PG_QUERY__NODE__NODE_COPY_STMT:
        if (n->copy_stmt->query == NULL) {
            *will_have = n->copy_stmt->relation != NULL;
            return NULL;
        }
        return with_target(n->copy_stmt->query, will_have);
    default:
        return NULL;
    }
}

typedef struct Prepass {
    Rewrite *rw;
    PgwObjectState *st;
} Prepass;

static bool reserved(const char *name)
{
    return strncmp(name, PGW_CATALOG_RESERVED_PREFIX, strlen(PGW_CATALOG_RESERVED_PREFIX)) == 0;
}

/* FROM pg_show_all_settings() is what the pg_settings view is made of:
 * read the view instead, so it gets pg_settings' filter. */
static bool is_show_all_settings(const PgQuery__RangeFunction *rf)
{
    if (rf->ordinality || rf->is_rowsfrom || rf->n_functions != 1 || rf->n_coldeflist > 0 ||
        !NODE(rf->functions[0], LIST) || rf->functions[0]->list->n_items < 1)
        return false;
    const PgQuery__List *l = rf->functions[0]->list;
    if (l->n_items > 1 && l->items[1] != NULL &&
        l->items[1]->node_case != PG_QUERY__NODE__NODE__NOT_SET)
        return false;
    if (!NODE(l->items[0], FUNC_CALL))
        return false;
    const PgQuery__FuncCall *fc = l->items[0]->func_call;
    const char *fname =
        fc->n_funcname > 0 ? policy_string_value(fc->funcname[fc->n_funcname - 1]) : NULL;
    const char *schema = fc->n_funcname == 2 ? policy_string_value(fc->funcname[0]) : NULL;
    return fc->n_args == 0 && fc->n_funcname <= 2 && fname != NULL &&
           strcmp(fname, "pg_show_all_settings") == 0 &&
           (fc->n_funcname == 1 || (schema != NULL && strcmp(schema, "pg_catalog") == 0));
}

static int replace_with_parsed(Rewrite *rw, PgQuery__Node **slot, const char *sql, bool from_item)
{
    PgQuery__ParseResult *tree = policy_parse_tree(sql);
    PgQuery__Node *n = NULL;
    if (tree != NULL && tree->n_stmts == 1) {
        PgQuery__Node **src = &tree->stmts[0]->stmt;
        if (from_item && NODE(*src, SELECT_STMT) && (*src)->select_stmt->n_from_clause == 1)
            src = &(*src)->select_stmt->from_clause[0];
        n = *src;
        *src = NULL;
    }
    if (tree != NULL)
        pg_query__parse_result__free_unpacked(tree, NULL);
    if (n == NULL)
        return policy_refuse(rw, SQLSTATE_INTERNAL_ERROR, NULL,
                             "pgwarden: internal error in the catalog rewrite");
    policy_object_replace_node(slot, n);
    return 0;
}

/* FROM pg_show_all_settings() [alias] becomes FROM pg_catalog.pg_settings
 * [alias]: the same columns, and the view's filter applies. */
static int read_settings_view(Rewrite *rw, PgQuery__Node **slot)
{
    PgQuery__Alias *alias = (*slot)->range_function->alias;
    (*slot)->range_function->alias = NULL;
    if (replace_with_parsed(rw, slot, "SELECT 1 FROM pg_catalog.pg_settings", true) < 0) {
        if (alias != NULL)
            pg_query__alias__free_unpacked(alias, NULL);
        return -1;
    }
    (*slot)->range_var->alias = alias;
    return 0;
}

/* Contexts that type an untyped literal as text whatever the other
 * operand is, so aclitem's input never reads it (see policy_object_reg.c):
 * LIKE, ILIKE, SIMILAR TO and the regular-expression operators but ~
 * (which is also aclitem[] ~ aclitem), for which every candidate takes
 * text, name, bpchar or bytea. */
static bool acl_literal_context_typed_expr(const PgQuery__AExpr *e)
{
    if (e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_LIKE ||
        e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_ILIKE ||
        e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_SIMILAR)
        return true;
    if (e->kind != PG_QUERY__A__EXPR__KIND__AEXPR_OP || e->n_name != 1)
        return false;
    static const char *const ops[] = {"~*", "!~", "!~*", "~~", "~~*", "!~~", "!~~*"};
    const char *op = policy_string_value(e->name[0]);
    for (size_t i = 0; op != NULL && i < PGW_ARRAY_LEN(ops); i++)
        if (strcmp(op, ops[i]) == 0)
            return true;
    return false;
}

/* Built-in functions none of whose candidates takes aclitem, aclitem[] or
 * a polymorphic type from the given argument on: a literal argument there
 * is text (or of "any", passed as it is), never an ACL item. pgAdmin
 * reads reloptions with substring(... FROM 'fillfactor=([0-9]*)'). The
 * number of arguments past the end when the call is none of them. */
static size_t acl_literal_first_typed_arg(const PgQuery__FuncCall *fc)
{
    static const struct {
        const char *name;
        size_t first;
    } funcs[] = {
        {"substring", 0},
        {"substr", 0},
        {"regexp_match", 0},
        {"regexp_matches", 0},
        {"regexp_replace", 0},
        {"regexp_split_to_array", 0},
        {"regexp_split_to_table", 0},
        {"regexp_like", 0},
        {"regexp_count", 0},
        {"regexp_instr", 0},
        {"regexp_substr", 0},
        {"split_part", 0},
        {"strpos", 0},
        {"position", 0},
        {"replace", 0},
        {"translate", 0},
        {"to_char", 0},
        {"to_date", 0},
        {"to_timestamp", 0},
        {"to_number", 0},
        {"lpad", 0},
        {"rpad", 0},
        {"ltrim", 0},
        {"rtrim", 0},
        {"btrim", 0},
        {"starts_with", 0},
        {"left", 0},
        {"right", 0},
        {"format", 0},
        {"concat", 0},
        {"concat_ws", 0},
        {"like_escape", 0},
        {"similar_to_escape", 0},
        {"string_to_array", 0},
        {"array_to_string", 1},
    };
    const char *name =
        fc->n_funcname > 0 ? policy_string_value(fc->funcname[fc->n_funcname - 1]) : NULL;
    const char *schema = fc->n_funcname == 2 ? policy_string_value(fc->funcname[0]) : NULL;
    if (name == NULL || fc->n_funcname > 2 ||
        (fc->n_funcname == 2 && (schema == NULL || strcmp(schema, "pg_catalog") != 0)) ||
        fc->agg_star || fc->func_variadic)
        return fc->n_args;
    for (size_t i = 0; i < PGW_ARRAY_LEN(funcs); i++)
        if (strcmp(funcs[i].name, name) == 0)
            return funcs[i].first;
    return fc->n_args;
}

static int prepass(PgQuery__Node **slot, void *arg);

/* The node's children walked by prepass with the untyped literals among
 * slots (a context that types them) set aside and put back. */
static int prepass_without_literals(PgQuery__Node **slot, PgQuery__Node **slots[], size_t n,
                                    void *arg)
{
    PgQuery__Node *kept[64];
    for (size_t i = 0; i < n; i++) {
        kept[i] = *slots[i];
        if (kept[i] != NULL && NODE(kept[i], A_CONST))
            *slots[i] = NULL;
        else
            kept[i] = NULL;
    }
    int rc = policy_walk_children(policy_walk_inner(*slot), prepass, arg);
    for (size_t i = 0; i < n; i++)
        if (kept[i] != NULL)
            *slots[i] = kept[i];
    return rc;
}

static int prepass(PgQuery__Node **slot, void *arg)
{
    Prepass *pp = arg;
    Rewrite *rw = pp->rw;
    PgQuery__Node *n = *slot;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR:
        if (reserved(n->common_table_expr->ctename))
            return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                                 "pgwarden: names starting with \"%s\" are reserved",
                                 PGW_CATALOG_RESERVED_PREFIX);
        names_add(&pp->st->ctes, n->common_table_expr->ctename);
        break;
    case PG_QUERY__NODE__NODE_COLUMN_REF: {
        const PgQuery__ColumnRef *cr = n->column_ref;
        const char *col =
            cr->n_fields > 0 ? policy_string_value(cr->fields[cr->n_fields - 1]) : NULL;
        if (col != NULL) {
            pp->st->cat.syscols |= policy_catalog_syscol(col);
            names_add(&pp->st->columns, col);
            if (cr->n_fields == 1)
                names_add(&pp->st->bare, col);
        } else {
            pp->st->all_columns = true; /* * or t.* */
        }
        break;
    }
    case PG_QUERY__NODE__NODE_A_STAR:
        pp->st->all_columns = true;
        break;
    case PG_QUERY__NODE__NODE_COPY_STMT: {
        const PgQuery__CopyStmt *cs = n->copy_stmt;
        if (cs->relation != NULL && cs->n_attlist == 0)
            pp->st->all_columns = true; /* COPY t: every column */
        for (size_t i = 0; i < cs->n_attlist; i++)
            if (policy_string_value(cs->attlist[i]) != NULL)
                names_add(&pp->st->columns, policy_string_value(cs->attlist[i]));
        break;
    }
    case PG_QUERY__NODE__NODE_RANGE_VAR:
    case PG_QUERY__NODE__NODE_RANGE_SUBSELECT:
    case PG_QUERY__NODE__NODE_RANGE_FUNCTION:
    case PG_QUERY__NODE__NODE_JOIN_EXPR: {
        /* Generated SQL names its range variables pgwarden_*: a client's
         * of the same name must not be able to capture a reference of ours. */
        const PgQuery__Alias *alias = NODE(n, RANGE_VAR)         ? n->range_var->alias
                                      : NODE(n, RANGE_SUBSELECT) ? n->range_subselect->alias
                                      : NODE(n, RANGE_FUNCTION)  ? n->range_function->alias
                                                                 : n->join_expr->alias;
        if (alias != NULL && reserved(alias->aliasname))
            return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                                 "pgwarden: names starting with \"%s\" are reserved",
                                 PGW_CATALOG_RESERVED_PREFIX);
        /* Column aliases rename columns by position; NATURAL joins and USING
         * name columns without column references. */
        if (alias != NULL && alias->n_colnames > 0)
            pp->st->all_columns = true;
        if (alias != NULL)
            names_add(&pp->st->ranges, alias->aliasname);
        if (NODE(n, RANGE_VAR))
            names_add(&pp->st->ranges, n->range_var->relname);
        if (NODE(n, JOIN_EXPR)) {
            if (n->join_expr->is_natural)
                pp->st->all_columns = true;
            for (size_t i = 0; i < n->join_expr->n_using_clause; i++)
                if (policy_string_value(n->join_expr->using_clause[i]) != NULL)
                    names_add(&pp->st->columns, policy_string_value(n->join_expr->using_clause[i]));
        }
        if (NODE(n, RANGE_FUNCTION) && is_show_all_settings(n->range_function))
            return read_settings_view(rw, slot);
        break;
    }
    case PG_QUERY__NODE__NODE_SQLVALUE_FUNCTION:
        if (n->sqlvalue_function->op == PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_CATALOG) {
            PgQuery__Node *lit;
            if (policy_object_expression(rw, "(SELECT %T)", &lit) < 0)
                return -1;
            policy_object_set_output_name(lit, "current_catalog");
            policy_object_replace_node(slot, lit);
            return 0;
        }
        break;
    case PG_QUERY__NODE__NODE_A_EXPR:
        if (acl_literal_context_typed_expr(n->a_expr)) {
            /* Its literal operands are text: walked as everything else,
             * but not as untyped literals (set aside while walking). */
            PgQuery__Node **sides[2] = {&n->a_expr->lexpr, &n->a_expr->rexpr};
            return prepass_without_literals(slot, sides, 2, arg);
        }
        break;
    case PG_QUERY__NODE__NODE_FUNC_CALL: {
        PgQuery__FuncCall *fc = n->func_call;
        size_t first = acl_literal_first_typed_arg(fc);
        if (first < fc->n_args) {
            PgQuery__Node **args[64];
            size_t k = 0;
            for (size_t i = first; i < fc->n_args && k < PGW_ARRAY_LEN(args); i++)
                args[k++] = &fc->args[i];
            return prepass_without_literals(slot, args, k, arg);
        }
        break;
    }
    case PG_QUERY__NODE__NODE_TYPE_CAST: {
        /* 'text'::type: the literal has the cast's type, never the one
         * its context would give it (a cast to aclitem is refused by
         * policy_object_check_type_name); only a cast to unknown leaves
         * it untyped. The rest of the cast is walked as usual. */
        const PgQuery__TypeCast *tc = n->type_cast;
        const PgQuery__TypeName *tn = tc->type_name;
        const char *tname =
            tn != NULL && tn->n_names > 0 ? policy_string_value(tn->names[tn->n_names - 1]) : NULL;
        if (NODE(tc->arg, A_CONST) && tname != NULL && strcmp(tname, "unknown") != 0)
            return 0;
        break;
    }
    case PG_QUERY__NODE__NODE_A_CONST:
        /* Refused in policy_object_finish, so every other check (which
         * may refuse with a more telling error) comes first. */
        if (n->a_const->val_case == PG_QUERY__A__CONST__VAL_SVAL && n->a_const->sval != NULL &&
            policy_object_acl_literal_resolves(n->a_const->sval->sval))
            pp->st->acl_literal = true;
        break;
    case PG_QUERY__NODE__NODE_PREPARE_STMT: {
        Walk w = {.rw = rw};
        PgQuery__PrepareStmt *ps = n->prepare_stmt;
        bool open = policy_param_highest((const ProtobufCMessage *)ps->query) > (int)ps->n_argtypes;
        for (size_t i = 0; i < ps->n_argtypes; i++) {
            if (!NODE(ps->argtypes[i], TYPE_NAME))
                continue;
            const PgQuery__TypeName *tn = ps->argtypes[i]->type_name;
            const char *last = tn->n_names ? policy_string_value(tn->names[tn->n_names - 1]) : NULL;
            open = open || (last != NULL && strcmp(last, "unknown") == 0);
            if (policy_object_check_type_name(&w, tn, false) < 0)
                return -1;
        }
        /* A parameter PREPARE leaves untyped is typed by the backend from
         * its context, and EXECUTE's argument is then read by that type's
         * input: 'pg_class'::regclass = $1 looks EXECUTE's 'hush.t' up
         * (stmt.c asks the backend for a Parse's; a PREPARE must say). */
        if (open)
            return policy_refuse(rw, SQLSTATE_FEATURE_NOT_SUPPORTED,
                                 "Declare every parameter's type: PREPARE name(text, integer) "
                                 "AS ...",
                                 "pgwarden: PREPARE must declare the type of every parameter");
        break;
    }
    case PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT: {
        const char *name = n->variable_show_stmt->name;
        if (strcasecmp(name, "all") == 0)
            /* SHOW ALL: the same rows as pg_settings, filtered the same way. */
            return replace_with_parsed(rw, slot,
                                       "SELECT name, setting, short_desc AS description FROM "
                                       "pg_catalog.pg_settings ORDER BY name",
                                       false);
        if (!policy_setting_visible(name))
            return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                                 "pgwarden: permission denied to examine \"%s\"", name);
        break;
    }
    default:
        break;
    }
    return policy_walk_children(policy_walk_inner(*slot), prepass, arg);
}

/* ------------------------------------------------------------------------ */
/* Star expansion                                                             */
/* ------------------------------------------------------------------------ */

/* The FROM item of sel that range name q (an alias, or a relation's name
 * without one) stands for, when it is a plain relation; NULL otherwise. */
static const PgQuery__RangeVar *from_relation(PgQuery__Node *const *items, size_t n, const char *q)
{
    for (size_t i = 0; i < n; i++) {
        const PgQuery__Node *it = items[i];
        if (NODE(it, RANGE_VAR)) {
            const PgQuery__RangeVar *rv = it->range_var;
            const char *name = rv->alias != NULL ? rv->alias->aliasname : rv->relname;
            if (strcmp(name, q) == 0)
                return rv;
        } else if (NODE(it, JOIN_EXPR) && it->join_expr->alias == NULL) {
            PgQuery__Node *sides[2] = {it->join_expr->larg, it->join_expr->rarg};
            const PgQuery__RangeVar *rv = from_relation(sides, 2, q);
            if (rv != NULL)
                return rv;
        }
    }
    return NULL;
}

/* The snapshot's table for rv when rv reads a catalog table whose view
 * carries the statement's system columns; NULL otherwise. */
static const PgwSchemaTable *syscol_catalog(const Rewrite *rw, const PgwObjectState *st,
                                            const PgQuery__RangeVar *rv)
{
    if (rv->catalogname[0] != '\0' ||
        (rv->schemaname[0] != '\0' && strcmp(rv->schemaname, "pg_catalog") != 0))
        return NULL;
    if (rv->schemaname[0] == '\0' && names_has(&st->ctes, rv->relname))
        return NULL; /* the client's CTE of that name */
    if (policy_catalog_access("pg_catalog", rv->relname) != PGW_CATALOG_FILTERED)
        return NULL;
    const PgwSchemaTable *t = schema_table(rw->ctx->schema, "pg_catalog", rv->relname);
    return t != NULL && t->relkind == 'r' ? t : NULL;
}

/* A target list entry "q.*" (or "*" over a single FROM item) over such a
 * catalog, written out as "q.c1, q.c2, ..." (the ResTargets of a parse of
 * that text); NULL when the entry is anything else. */
static PgQuery__ParseResult *expanded_star(const Rewrite *rw, const PgwObjectState *st,
                                           const PgQuery__SelectStmt *sel,
                                           const PgQuery__Node *target)
{
    if (!NODE(target, RES_TARGET) || target->res_target->val == NULL ||
        !NODE(target->res_target->val, COLUMN_REF))
        return NULL;
    const PgQuery__ColumnRef *cr = target->res_target->val->column_ref;
    if (cr->n_fields == 0 || !NODE(cr->fields[cr->n_fields - 1], A_STAR) || cr->n_fields > 3)
        return NULL;
    const PgQuery__RangeVar *rv = NULL;
    if (cr->n_fields == 1) {
        if (sel->n_from_clause == 1 && NODE(sel->from_clause[0], RANGE_VAR))
            rv = sel->from_clause[0]->range_var;
    } else {
        const char *q = policy_string_value(cr->fields[cr->n_fields - 2]);
        if (q != NULL)
            rv = from_relation(sel->from_clause, sel->n_from_clause, q);
        if (rv != NULL && cr->n_fields == 3 && rv->alias == NULL) {
            const char *sch = policy_string_value(cr->fields[0]);
            if (sch == NULL || strcmp(sch, "pg_catalog") != 0)
                rv = NULL;
        }
    }
    const PgwSchemaTable *t = rv != NULL ? syscol_catalog(rw, st, rv) : NULL;
    if (t == NULL || t->ncolumns == 0)
        return NULL;
    const char *q = rv->alias != NULL ? rv->alias->aliasname : rv->relname;
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, "SELECT ");
    for (size_t i = 0; i < t->ncolumns; i++) {
        if (i > 0)
            buf_append_str(&b, ", ");
        policy_append_ident(&b, q);
        buf_append_str(&b, ".");
        policy_append_ident(&b, t->columns[i].name);
    }
    char *sql = buf_steal_str(&b);
    PgQuery__ParseResult *tree = policy_parse_tree(sql);
    free(sql);
    if (tree != NULL && (tree->n_stmts != 1 || !NODE(tree->stmts[0]->stmt, SELECT_STMT) ||
                         tree->stmts[0]->stmt->select_stmt->n_target_list != t->ncolumns)) {
        pg_query__parse_result__free_unpacked(tree, NULL);
        tree = NULL;
    }
    return tree;
}

typedef struct Stars {
    Rewrite *rw;
    PgwObjectState *st;
} Stars;

static int expand_stars(PgQuery__Node **slot, void *arg)
{
    Stars *sp = arg;
    PgQuery__Node *n = *slot;
    if (NODE(n, SELECT_STMT)) {
        PgQuery__SelectStmt *sel = n->select_stmt;
        for (size_t i = 0; i < sel->n_target_list; i++) {
            PgQuery__ParseResult *tree = expanded_star(sp->rw, sp->st, sel, sel->target_list[i]);
            if (tree == NULL)
                continue;
            PgQuery__SelectStmt *cols = tree->stmts[0]->stmt->select_stmt;
            size_t m = cols->n_target_list;
            size_t total = sel->n_target_list - 1 + m;
            PgQuery__Node **list = pgw_malloc(total * sizeof(*list));
            memcpy(list, sel->target_list, i * sizeof(*list));
            memcpy(list + i, cols->target_list, m * sizeof(*list));
            memcpy(list + i + m, sel->target_list + i + 1,
                   (sel->n_target_list - i - 1) * sizeof(*list));
            pg_query__node__free_unpacked(sel->target_list[i], NULL);
            free(sel->target_list);
            sel->target_list = list;
            sel->n_target_list = total;
            cols->n_target_list = 0;
            pg_query__parse_result__free_unpacked(tree, NULL);
            i += m - 1;
        }
    }
    return policy_walk_children(policy_walk_inner(*slot), expand_stars, arg);
}

/* ------------------------------------------------------------------------ */
/* Parameter types, prepare and finish                                        */
/* ------------------------------------------------------------------------ */

/* A Parse message's parameter types are converted by the backend before
 * any rewrite of ours sees the values: a reg* type resolves a name blind to
 * the policy, and a user-defined type may be the row type of a hidden
 * relation (its input function reports its column count). */
static int check_param_types(Rewrite *rw)
{
    for (size_t i = 0; i < rw->ctx->nparam_types; i++) {
        uint32_t oid = rw->ctx->param_types[i];
        if (policy_builtin_is_reg_type_oid(oid))
            return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                                 "Send the value as text (or unspecified) and cast it in the "
                                 "query: $n::regclass.",
                                 "pgwarden: parameter $%zu has a type (OID %u) pgwarden does not "
                                 "accept",
                                 i + 1, oid);
        /* Types whose input looks names up beyond the reg* ones (see
         * policy_object_check_type_name): aclitem, and row types, which
         * are the bootstrap catalogs' (below) or were made by initdb
         * (10000 up: the other catalogs', information_schema's; no client
         * binds those). */
        static const uint32_t name_inputs[] = {1033, 1034, 71,   75,   81,   83,   210, 270,
                                               272,  273,  1248, 2842, 2843, 4066, 6101};
        bool resolves = oid >= 10000u && oid < FIRST_NORMAL_OID;
        for (size_t j = 0; j < PGW_ARRAY_LEN(name_inputs) && !resolves; j++)
            resolves = oid == name_inputs[j];
        if (resolves)
            return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                                 "Send the value as text (or unspecified) and read the parts "
                                 "you need.",
                                 "pgwarden: parameter $%zu has a type (OID %u) whose input "
                                 "looks names up, which pgwarden does not accept",
                                 i + 1, oid);
        if (oid >= FIRST_NORMAL_OID)
            return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                                 "Send the value as text (or unspecified) and cast it in the "
                                 "query.",
                                 "pgwarden: parameter $%zu has a user-defined type (OID %u), "
                                 "which pgwarden does not accept",
                                 i + 1, oid);
    }
    return 0;
}

int policy_object_prepare(Rewrite *rw, PgQuery__Node **stmt)
{
    PgwObjectState *st = policy_object_state(rw);
    policy_object_free_templates(st);
    st->cat.used = 0;
    st->cat.syscols = 0;
    st->cat.inline_sets = true;
    names_clear(&st->columns);
    names_clear(&st->bare);
    names_clear(&st->ranges);
    names_clear(&st->ctes);
    st->all_columns = false;
    st->acl_literal = false;
    st->cat.column_used = statement_reads_column;
    st->cat.column_arg = st;
    if (!st->params_checked) {
        st->params_checked = true;
        if (check_param_types(rw) < 0)
            return -1;
    }
    if (*stmt == NULL)
        return 0;
    bool will_have;
    Prepass pp = {rw, st};
    if (prepass(stmt, &pp) < 0 || rw->refused)
        return -1;
    if (policy_object_check_reg_literals(rw, stmt) < 0)
        return -1;
    /* A one-field reference naming a relation or alias may be a whole-row
     * reference (SELECT c FROM pg_class c): every column then. */
    for (size_t i = 0; i < st->bare.n && !st->all_columns; i++)
        st->all_columns = names_has(&st->ranges, st->bare.v[i]);
    if (st->cat.syscols != 0 && st->all_columns) {
        Stars sp = {rw, st};
        if (expand_stars(stmt, &sp) < 0)
            return -1;
    }
    /* SHOW ALL became a SELECT: it can carry the sets now. */
    (void)with_target(*stmt, &will_have);
    st->cat.inline_sets = !will_have;
    return 0;
}

int policy_object_finish(Rewrite *rw, PgQuery__Node **stmt)
{
    PgwObjectState *st = policy_object_state(rw);
    if (st->acl_literal)
        return policy_refuse(
            rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
            "Cast it to the type you mean ('...'::text); read ACLs with aclexplode().",
            "pgwarden: a string literal that reads as an ACL item may name only PUBLIC and "
            "predefined roles");
    if (st->cat.used == 0 || st->cat.inline_sets)
        return 0;
    bool will_have;
    PgQuery__SelectStmt *target = with_target(*stmt, &will_have);
    if (target == NULL)
        return policy_refuse(rw, SQLSTATE_INTERNAL_ERROR, NULL,
                             "pgwarden: internal error in the catalog rewrite");
    PgwBuf b;
    buf_init(&b);
    policy_catalog_append_with(&st->cat, &b);
    char *sql = buf_steal_str(&b);
    PgQuery__ParseResult *tree = policy_parse_tree(sql);
    free(sql);
    if (tree == NULL || tree->n_stmts != 1 || !NODE(tree->stmts[0]->stmt, SELECT_STMT) ||
        tree->stmts[0]->stmt->select_stmt->with_clause == NULL) {
        if (tree != NULL)
            pg_query__parse_result__free_unpacked(tree, NULL);
        return policy_refuse(rw, SQLSTATE_INTERNAL_ERROR, NULL,
                             "pgwarden: internal error in the catalog rewrite");
    }
    PgQuery__WithClause *ours = tree->stmts[0]->stmt->select_stmt->with_clause;
    if (target->with_clause == NULL) {
        target->with_clause = ours;
        tree->stmts[0]->stmt->select_stmt->with_clause = NULL;
    } else {
        /* Ours first: a non-recursive CTE sees only those before it, so the
         * client's may read ours (harmless) and ours read nothing of theirs. */
        PgQuery__WithClause *wc = target->with_clause;
        size_t n = ours->n_ctes + wc->n_ctes;
        PgQuery__Node **ctes = pgw_malloc(n * sizeof(*ctes));
        memcpy(ctes, ours->ctes, ours->n_ctes * sizeof(*ctes));
        memcpy(ctes + ours->n_ctes, wc->ctes, wc->n_ctes * sizeof(*ctes));
        free(wc->ctes);
        wc->ctes = ctes;
        wc->n_ctes = n;
        ours->n_ctes = 0;
    }
    pg_query__parse_result__free_unpacked(tree, NULL);
    return 0;
}

/* libpg_query 15's deparser writes a FETCH/MOVE cursor name as it is, so
 * "SQL_CUR0x55d4..." would come back as sql_cur0x55d4...: around the
 * deparse the names are put in quotes (and taken out again for the
 * verifying comparison). */
void policy_object_portal_names(PgQuery__ParseResult *tree, bool quote)
{
    for (size_t i = 0; i < tree->n_stmts; i++) {
        PgQuery__Node *n = tree->stmts[i]->stmt;
        if (!NODE(n, FETCH_STMT) || n->fetch_stmt->portalname[0] == '\0')
            continue;
        const char *name = n->fetch_stmt->portalname;
        PgwBuf b;
        buf_init(&b);
        if (quote) {
            policy_append_ident(&b, name);
        } else {
            size_t len = strlen(name);
            if (len < 2 || name[0] != '"' || name[len - 1] != '"') {
                buf_free(&b);
                continue;
            }
            for (size_t j = 1; j + 1 < len; j++) {
                buf_append_byte(&b, (uint8_t)name[j]);
                if (name[j] == '"')
                    j++;
            }
        }
        char *s = buf_steal_str(&b);
        policy_set_string(&n->fetch_stmt->portalname, s);
        free(s);
    }
}
