/*
 * policy_object.c — objects named inside expressions: relations and types
 * given to casts ('t'::regclass, NULL::t) and to built-in functions that take
 * a relation by name or OID (has_table_privilege, to_regclass,
 * pg_get_viewdef ...). The rule for all of them: a hidden object answers
 * exactly as a missing one. Names are resolved here, against the tenant's
 * view of the schema; OIDs are only known at run time, so an OID argument is
 * wrapped in a subquery that yields it only when it names a readable
 * relation (NULL otherwise, which is what these functions give for an OID
 * that does not exist).
 */
#include "policy_int.h"

#include <stdlib.h>

#include "policy_catalog.h"
#include "policy_walk.h"

static int resolve_regclass_literal(Walk *w, PgQuery__String *lit);

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}


static bool has_hidden_columns(const PgwConfig *cfg, const char *schema, const char *name)
{
    const PgwTablePolicy *tp = policy_table_policy(cfg, schema, name);
    for (size_t i = 0; tp != NULL && i < tp->nmasks; i++)
        if (tp->masks[i].kind == PGW_MASK_HIDE)
            return true;
    return false;
}

/* A type named like a user relation is that relation's row type: NULL::t,
 * ROW(...)::t, json_populate_record(NULL::t, ...) and (x::t).* tell its
 * column names. So a row type exists for the tenant exactly when the
 * relation does, and only when none of its columns is hidden. */
int policy_check_type_name(Walk *w, const PgQuery__TypeName *tn)
{
    if (tn == NULL || tn->n_names == 0)
        return 0;
    const char *name = policy_string_value(tn->names[tn->n_names - 1]);
    const char *schema = tn->n_names >= 2 ? policy_string_value(tn->names[tn->n_names - 2]) : NULL;
    if (name == NULL || (schema != NULL && policy_is_catalog_schema(schema)))
        return 0;
    const PgwSchema *sch = w->rw->ctx->schema;
    bool relation_named = false;
    for (size_t i = 0; sch != NULL && i < schema_ntables(sch); i++) {
        const PgwSchemaTable *t = schema_table_at(sch, i);
        if (strcmp(t->name, name) == 0 && !policy_is_catalog_schema(t->schema) &&
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
    Resolved r = policy_resolve_relation_text(w->rw, text, &t, &catalog);
    free(text);
    if (r == RESOLVED_NONE)
        return policy_refuse(w->rw, SQLSTATE_UNDEFINED_OBJECT, NULL, "type \"%s\" does not exist",
                             name);
    if (r == RESOLVED_USER && has_hidden_columns(w->rw->ctx->cfg, t->schema, t->name))
        return policy_refuse(w->rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
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
    const char *name =
        fc->n_funcname > 0 ? policy_string_value(fc->funcname[fc->n_funcname - 1]) : NULL;
    const char *schema = fc->n_funcname == 2 ? policy_string_value(fc->funcname[0]) : NULL;
    return fc->n_funcname <= 2 && name != NULL && strcmp(name, "pg_get_serial_sequence") == 0 &&
           (schema == NULL || strcmp(schema, "pg_catalog") == 0);
}

/* Casts to regclass: a name is checked like a FROM reference; an OID is only
 * accepted when it comes from a (virtualized) catalog column. */
int policy_object_type_cast(Walk *w, PgQuery__TypeCast *tc)
{
    if (policy_check_type_name(w, tc->type_name) < 0)
        return -1;
    const PgQuery__TypeName *tn = tc->type_name;
    const char *tname =
        tn != NULL && tn->n_names > 0 ? policy_string_value(tn->names[tn->n_names - 1]) : NULL;
    if (tname != NULL && strcmp(tname, "regclass") == 0) {
        /* A name is checked like a FROM reference; an OID is only accepted
         * when it comes from a (virtualized) catalog column. */
        PgQuery__Node *arg = tc->arg;
        if (NODE(arg, A_CONST) && arg->a_const->val_case == PG_QUERY__A__CONST__VAL_SVAL &&
            all_digits(arg->a_const->sval->sval)) {
            /* '16433'::regclass (psql's \d sends these): an OID, answered
             * only for relations the tenant may read, NULL otherwise. */
            if (policy_walk_node(w, &tc->base) < 0 || policy_wrap_readable_oid(w->rw, &tc->arg) < 0)
                return -1;
            return 1;
        }
        if (NODE(arg, A_CONST) && arg->a_const->val_case == PG_QUERY__A__CONST__VAL_SVAL) {
            if (resolve_regclass_literal(w, arg->a_const->sval) < 0)
                return -1;
        } else if (!NODE(arg, COLUMN_REF) && !is_serial_sequence_call(arg)) {
            return policy_refuse(w->rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                                 "pgwarden: casting an expression to regclass is not allowed");
        }
    }
    return 0;
}


PgQuery__ParseResult *policy_parse_tree(const char *sql)
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
Resolved policy_resolve_relation_text(const Rewrite *rw, const char *text, const PgwSchemaTable **t,
                                      const char **catalog)
{
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, "SELECT 1 FROM ");
    buf_append_str(&b, text);
    char *sql = buf_steal_str(&b);
    PgQuery__ParseResult *tree = policy_parse_tree(sql);
    free(sql);
    Resolved r = RESOLVED_NONE;
    *t = NULL;
    *catalog = NULL;
    if (tree != NULL && tree->n_stmts == 1 && NODE(tree->stmts[0]->stmt, SELECT_STMT) &&
        tree->stmts[0]->stmt->select_stmt->n_from_clause == 1 &&
        NODE(tree->stmts[0]->stmt->select_stmt->from_clause[0], RANGE_VAR))
        r = policy_resolve_relation(
            rw, tree->stmts[0]->stmt->select_stmt->from_clause[0]->range_var, t, catalog);
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
    switch (policy_resolve_relation_text(rw, lit->sval, t, &catalog)) {
    case RESOLVED_NONE:
        return policy_refuse(rw, SQLSTATE_UNDEFINED_TABLE, NULL, "relation \"%s\" does not exist",
                             lit->sval);
    case RESOLVED_USER: {
        PgwBuf b;
        buf_init(&b);
        policy_append_ident(&b, (*t)->schema);
        buf_append_byte(&b, '.');
        policy_append_ident(&b, (*t)->name);
        char *q = buf_steal_str(&b);
        policy_set_string(&lit->sval, q);
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
        policy_string_value(n->column_ref->fields[0]) != NULL &&
        strcmp(policy_string_value(n->column_ref->fields[0]), "pgw_arg") == 0) {
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
int policy_wrap_readable_oid(Rewrite *rw, PgQuery__Node **slot)
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
    PgQuery__ParseResult *tree = policy_parse_tree(sql);
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
        const char *tname =
            tn != NULL && tn->n_names > 0 ? policy_string_value(tn->names[tn->n_names - 1]) : NULL;
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
    const PgwColumnMask *m =
        policy_column_mask(policy_table_policy(rw->ctx->cfg, t->schema, t->name), column);
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
int policy_object_func_call(Rewrite *rw, PgQuery__Node **slot, const char *name)
{
    PgQuery__FuncCall *fc = (*slot)->func_call;
    PgwRelationArg ra;
    if (!policy_catalog_relation_arg(name, fc->n_args, &ra))
        return 0;
    PgQuery__Node **rel = &fc->args[ra.relation];
    PgQuery__String *lit = string_constant(*rel);
    bool digits =
        lit != NULL && lit->sval[0] != '\0' && strspn(lit->sval, "0123456789") == strlen(lit->sval);
    if (lit != NULL && !digits) {
        const PgwSchemaTable *t = NULL;
        if (ra.null_when_missing) {
            const char *catalog;
            if (policy_resolve_relation_text(rw, lit->sval, &t, &catalog) == RESOLVED_NONE) {
                /* to_regclass('hidden') is NULL, as for a missing name. */
                policy_set_string(&lit->sval, "pg_catalog.pgwarden_no_such_relation");
                return 0;
            }
        }
        if (check_relation_literal(rw, lit, &t) < 0)
            return -1;
        if (ra.column < 0)
            return 0;
        PgQuery__String *col = string_constant(fc->args[ra.column]);
        if (col == NULL)
            return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                                 "pgwarden: %s takes a column only by name, as a constant", name);
        if (t != NULL && !column_visible(rw, t, col->sval))
            return policy_refuse(rw, SQLSTATE_UNDEFINED_COLUMN, NULL,
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
        if (policy_wrap_readable_oid(rw, &(*rel)->type_cast->arg->type_cast->arg) < 0)
            return policy_refuse(rw, SQLSTATE_INTERNAL_ERROR, NULL, "pgwarden: cannot rewrite %s",
                                 name);
        return 0;
    }
    if (ra.null_when_missing || ra.column >= 0 || strcmp(name, "pg_get_serial_sequence") == 0)
        return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                             "pgwarden: %s takes a relation only by name, as a constant", name);
    if (strcmp(name, "obj_description") == 0 && fc->n_args == 2) {
        /* obj_description(oid, 'pg_namespace') and friends are not about
         * relations. */
        PgQuery__String *cat = string_constant(fc->args[1]);
        if (cat != NULL && strcmp(cat->sval, "pg_class") != 0)
            return 0;
    }
    if (!is_plain_value(*rel))
        return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                             "pgwarden: %s takes a relation only as a constant, a parameter or a "
                             "column",
                             name);
    if (policy_wrap_readable_oid(rw, rel) < 0)
        return policy_refuse(rw, SQLSTATE_INTERNAL_ERROR, NULL, "pgwarden: cannot rewrite %s",
                             name);
    return 0;
}
