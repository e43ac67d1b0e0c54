/*
 * policy_object.c — objects named inside a statement: relations, types,
 * functions, schemas, roles and databases given by name or OID to casts
 * (x::regclass, NULL::t), to built-in functions (has_table_privilege,
 * format_type, pg_get_constraintdef, pg_relation_size ...), as parameter
 * types of a PREPARE or a column definition list, checked against the
 * tenant's virtual catalog (policy_catalog.c).
 *
 * The rule for all of them: a hidden object answers exactly as a missing
 * one. A name written as a literal is resolved here when the policy can
 * (relations, qualified function names); anything else is resolved by the
 * backend at run time and kept only when it is in the tenant's visible set
 * of that class: an OID argument becomes
 *     (SELECT v.o FROM (VALUES ((X)::oid)) v(o) WHERE v.o IN <visible set>)
 * which yields NULL, PostgreSQL's own answer for an OID that names nothing,
 * and a text cast to a reg* type is looked up by the backend (for
 * operators, collations and text search objects only after its schema part
 * is found visible; a literal naming a hidden schema is refused here with
 * PostgreSQL's 3F000) and, when the object is invisible, looked up a second time with
 * search_path narrowed to pg_catalog, which fails with exactly the error a
 * missing name gets (the narrowing is transactional and is undone by that
 * very error). X appears once in every wrapper, so a volatile argument
 * cannot be checked with one value and used with another, and wrappers
 * work whatever expression (VALUES, CTE, subquery, parameter) produced X:
 * the check is on the value, not on the shape.
 *
 * Linear cost: each wrapper is SQL text expanded from a template, parsed
 * once per statement and copied for every use; the visible sets are CTEs
 * defined once per statement (attached by policy_object_finish), so a call
 * with 8,000 OID arguments costs 8,000 small copies, not 8,000 parses of
 * the whole set definition.
 *
 * The statement around these calls (pre-pass, parameter types, star
 * expansion, the WITH of the sets) is policy_object_stmt.c's; the state
 * both share is in policy_object_int.h.
 */
#include "policy.h"
#include "policy_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "policy_catalog.h"
#include "policy_object_int.h"
#include "policy_walk.h"

#define SQLSTATE_UNDEFINED_SCHEMA "3F000"

static bool schema_visible(const Rewrite *rw, const char *schema);
static int refuse_missing_schema(Rewrite *rw, const char *schema);

/* ------------------------------------------------------------------------ */
/* State                                                                      */
/* ------------------------------------------------------------------------ */

void policy_object_free_templates(PgwObjectState *st)
{
    for (size_t i = 0; i < st->ntemplates; i++) {
        free(st->templates[i].sql);
        if (st->templates[i].tree != NULL)
            pg_query__parse_result__free_unpacked(st->templates[i].tree, NULL);
    }
    free(st->templates);
    st->templates = NULL;
    st->ntemplates = 0;
}

PgwObjectState *policy_object_state(Rewrite *rw)
{
    if (rw->objects == NULL) {
        /* Not prepared (a caller outside the driver): no WITH to attach the
         * sets to, so they are written inline. */
        rw->objects = pgw_calloc(1, sizeof(*rw->objects));
        rw->objects->cat.inline_sets = true;
    }
    PgwCatalogCtx *cc = &rw->objects->cat;
    cc->cfg = rw->ctx->cfg;
    cc->tenant = rw->ctx->tenant->name;
    cc->search_path = (const char *const *)rw->search_path;
    cc->nsearch_path = rw->nsearch_path;
    return rw->objects;
}

int policy_object_catalog_view(Rewrite *rw, PgwBuf *b, const char *schema, const char *name)
{
    PgwObjectState *st = policy_object_state(rw);
    const PgwSchemaTable *t = schema_table(rw->ctx->schema, schema, name);
    if (policy_catalog_view(&st->cat, b, schema, name, t) < 0)
        return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                             "pgwarden: catalog relation %s.%s is not available", schema, name);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Small tree helpers                                                         */
/* ------------------------------------------------------------------------ */

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

static PgQuery__Node *copy_node(const PgQuery__Node *n)
{
    size_t len = pg_query__node__get_packed_size(n);
    uint8_t *packed = pgw_malloc(len > 0 ? len : 1);
    pg_query__node__pack(n, packed);
    PgQuery__Node *copy = pg_query__node__unpack(NULL, len, packed);
    free(packed);
    return copy;
}

static const char *type_name_last(const PgQuery__TypeName *tn)
{
    return tn != NULL && tn->n_names > 0 ? policy_string_value(tn->names[tn->n_names - 1]) : NULL;
}

/* A type name in pg_catalog or unqualified (a built-in type). */
static bool type_name_builtin(const PgQuery__TypeName *tn)
{
    if (tn == NULL || tn->n_names == 0 || tn->n_names > 2)
        return false;
    const char *schema = tn->n_names == 2 ? policy_string_value(tn->names[0]) : NULL;
    return schema == NULL || strcmp(schema, "pg_catalog") == 0;
}

/* The string of a constant ('x', or 'x' cast to a text-like or reg type);
 * NULL otherwise. */
static PgQuery__String *string_constant(PgQuery__Node *n)
{
    if (NODE(n, TYPE_CAST)) {
        const char *tname = type_name_last(n->type_cast->type_name);
        if (tname == NULL || !type_name_builtin(n->type_cast->type_name) ||
            n->type_cast->type_name->n_array_bounds > 0 ||
            (strcmp(tname, "text") != 0 && strcmp(tname, "name") != 0 &&
             strcmp(tname, "varchar") != 0 && !policy_builtin_is_reg_type(tname)))
            return NULL;
        n = n->type_cast->arg;
    }
    if (NODE(n, A_CONST) && n->a_const->val_case == PG_QUERY__A__CONST__VAL_SVAL)
        return n->a_const->sval;
    return NULL;
}

static bool is_null_constant(const PgQuery__Node *n)
{
    if (NODE(n, TYPE_CAST))
        return is_null_constant(n->type_cast->arg);
    return NODE(n, A_CONST) && n->a_const->isnull;
}

static bool all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Constants, parameters and columns: the same value however often they are
 * evaluated within a row, so a wrapper may use a copy. */
static bool is_plain(const PgQuery__Node *n)
{
    if (NODE(n, TYPE_CAST))
        return is_plain(n->type_cast->arg);
    return NODE(n, A_CONST) || NODE(n, PARAM_REF) || NODE(n, COLUMN_REF);
}

/* A copy of a plain node; schema.table.column references lose their schema
 * as the walk does for the original (a derived table has no schema). */
static PgQuery__Node *copy_plain(const PgQuery__Node *n)
{
    PgQuery__Node *c = copy_node(n);
    PgQuery__Node *inner = c;
    while (NODE(inner, TYPE_CAST))
        inner = inner->type_cast->arg;
    if (NODE(inner, COLUMN_REF) && inner->column_ref->n_fields >= 3) {
        PgQuery__ColumnRef *cr = inner->column_ref;
        size_t drop = cr->n_fields - 2;
        for (size_t j = 0; j < drop; j++)
            pg_query__node__free_unpacked(cr->fields[j], NULL);
        memmove(cr->fields, cr->fields + drop, 2 * sizeof(*cr->fields));
        cr->n_fields = 2;
    }
    return c;
}

/* ------------------------------------------------------------------------ */
/* Templates                                                                  */
/* ------------------------------------------------------------------------ */

#define NPLACEHOLDERS 3
static const char *const placeholder_names[NPLACEHOLDERS] = {"pgwarden_arg", "pgwarden_arg2",
                                                             "pgwarden_arg3"};

typedef struct Fill {
    PgQuery__Node *values[NPLACEHOLDERS];
    bool used[NPLACEHOLDERS];
} Fill;

static int fill_placeholders(PgQuery__Node **slot, void *arg)
{
    Fill *f = arg;
    PgQuery__Node *n = *slot;
    if (NODE(n, COLUMN_REF) && n->column_ref->n_fields == 1) {
        const char *name = policy_string_value(n->column_ref->fields[0]);
        for (int i = 0; name != NULL && i < NPLACEHOLDERS; i++)
            if (strcmp(name, placeholder_names[i]) == 0) {
                if (f->used[i] || f->values[i] == NULL)
                    return -1;
                pg_query__node__free_unpacked(n, NULL);
                *slot = f->values[i]; /* not descended into: it is the client's */
                f->used[i] = true;
                return 0;
            }
    }
    return policy_walk_children(policy_walk_inner(n), fill_placeholders, arg);
}

/* The expression of template tmpl (policy_catalog.c's template language,
 * plus pgwarden_arg, pgwarden_arg2, pgwarden_arg3 standing for a1..a3) with
 * the arguments put in. The arguments are moved into the result. The
 * template is parsed once per statement. */
static int instantiate(Rewrite *rw, const char *tmpl, PgQuery__Node *a1, PgQuery__Node *a2,
                       PgQuery__Node *a3, PgQuery__Node **out)
{
    PgwObjectState *st = policy_object_state(rw);
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, "SELECT ");
    policy_catalog_expand(&st->cat, &b, tmpl);
    char *sql = buf_steal_str(&b);
    Template *t = NULL;
    for (size_t i = 0; i < st->ntemplates; i++)
        if (strcmp(st->templates[i].sql, sql) == 0) {
            t = &st->templates[i];
            break;
        }
    if (t == NULL) {
        st->templates = pgw_realloc(st->templates, (st->ntemplates + 1) * sizeof(*st->templates));
        t = &st->templates[st->ntemplates++];
        t->sql = sql;
        t->tree = policy_parse_tree(sql);
        sql = NULL;
    }
    free(sql);
    PgQuery__ParseResult *tree = t->tree;
    if (tree == NULL || tree->n_stmts != 1 || !NODE(tree->stmts[0]->stmt, SELECT_STMT) ||
        tree->stmts[0]->stmt->select_stmt->n_target_list != 1)
        return -1;
    PgQuery__Node *expr =
        copy_node(tree->stmts[0]->stmt->select_stmt->target_list[0]->res_target->val);
    Fill f = {{a1, a2, a3}, {false, false, false}};
    if (expr == NULL || fill_placeholders(&expr, &f) < 0 || f.used[0] != (a1 != NULL) ||
        f.used[1] != (a2 != NULL) || f.used[2] != (a3 != NULL)) {
        /* Values not yet placed still belong to the caller's tree. */
        if (expr != NULL) {
            for (int i = 0; i < NPLACEHOLDERS; i++)
                if (f.used[i])
                    return -1; /* partly filled: cannot be undone safely */
            pg_query__node__free_unpacked(expr, NULL);
        }
        return -1;
    }
    *out = expr;
    return 0;
}

/* Replace *slot by the template's expression over *slot (and copies or
 * moved nodes for the other placeholders). */
int policy_object_wrap(Rewrite *rw, PgQuery__Node **slot, const char *tmpl, PgQuery__Node *a2,
                       PgQuery__Node *a3)
{
    PgQuery__Node *out;
    if (instantiate(rw, tmpl, *slot, a2, a3, &out) < 0)
        return policy_refuse(rw, SQLSTATE_INTERNAL_ERROR, NULL,
                             "pgwarden: internal error while rewriting an object reference");
    *slot = out;
    return 0;
}

static int wrap_fmt(Rewrite *rw, PgQuery__Node **slot, PgQuery__Node *a2, PgQuery__Node *a3,
                    const char *fmt, ...) PGW_PRINTF(5, 6);

static int wrap_fmt(Rewrite *rw, PgQuery__Node **slot, PgQuery__Node *a2, PgQuery__Node *a3,
                    const char *fmt, ...)
{
    char tmpl[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmpl, sizeof(tmpl), fmt, ap);
    va_end(ap);
    return policy_object_wrap(rw, slot, tmpl, a2, a3);
}

/* A fresh expression from SQL (no placeholders). */
int policy_object_expression(Rewrite *rw, const char *sql, PgQuery__Node **out)
{
    if (instantiate(rw, sql, NULL, NULL, NULL, out) < 0)
        return policy_refuse(rw, SQLSTATE_INTERNAL_ERROR, NULL,
                             "pgwarden: internal error while rewriting an object reference");
    return 0;
}

void policy_object_replace_node(PgQuery__Node **slot, PgQuery__Node *with)
{
    pg_query__node__free_unpacked(*slot, NULL);
    *slot = with;
}

/* The output column name PostgreSQL gives an expression in a target list
 * (parse_target.c's FigureColname), with its strength: 2 for a name taken
 * from a column or function, 1 for a keyword-like default, 0 for none.
 * Rewrites that replace an expression keep that name, so a client reads
 * the same column titles as without pgwarden. */
static int figure_colname(const PgQuery__Node *n, const char **name)
{
    if (n == NULL)
        return 0;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_COLUMN_REF: {
        const PgQuery__ColumnRef *cr = n->column_ref;
        const char *last =
            cr->n_fields > 0 ? policy_string_value(cr->fields[cr->n_fields - 1]) : NULL;
        if (last == NULL)
            return 0;
        *name = last;
        return 2;
    }
    case PG_QUERY__NODE__NODE_FUNC_CALL: {
        const PgQuery__FuncCall *fc = n->func_call;
        const char *last =
            fc->n_funcname > 0 ? policy_string_value(fc->funcname[fc->n_funcname - 1]) : NULL;
        if (last == NULL)
            return 0;
        *name = last;
        return 2;
    }
    case PG_QUERY__NODE__NODE_TYPE_CAST: {
        int strength = figure_colname(n->type_cast->arg, name);
        if (strength <= 1) {
            const char *t = type_name_last(n->type_cast->type_name);
            if (t != NULL) {
                *name = t;
                return 1;
            }
        }
        return strength;
    }
    case PG_QUERY__NODE__NODE_COLLATE_CLAUSE:
        return figure_colname(n->collate_clause->arg, name);
    case PG_QUERY__NODE__NODE_SUB_LINK: {
        const PgQuery__SubLink *sl = n->sub_link;
        if (sl->sub_link_type == PG_QUERY__SUB_LINK_TYPE__EXISTS_SUBLINK) {
            *name = "exists";
            return 2;
        }
        if (sl->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ARRAY_SUBLINK) {
            *name = "array";
            return 2;
        }
        if (sl->sub_link_type == PG_QUERY__SUB_LINK_TYPE__EXPR_SUBLINK &&
            NODE(sl->subselect, SELECT_STMT) && sl->subselect->select_stmt->n_target_list > 0) {
            const PgQuery__ResTarget *rt = sl->subselect->select_stmt->target_list[0]->res_target;
            if (rt->name != NULL && rt->name[0] != '\0') {
                *name = rt->name;
                return 2;
            }
            int strength = figure_colname(rt->val, name);
            return strength > 0 ? 2 : 0;
        }
        return 0;
    }
    default:
        return 0;
    }
}

/* Give a generated scalar subquery the output name name. */
void policy_object_set_output_name(PgQuery__Node *n, const char *name)
{
    if (name != NULL && NODE(n, SUB_LINK) && NODE(n->sub_link->subselect, SELECT_STMT) &&
        n->sub_link->subselect->select_stmt->n_target_list == 1)
        policy_set_string(&n->sub_link->subselect->select_stmt->target_list[0]->res_target->name,
                          name);
}

/* Replace the whole expression *slot by a generated one that keeps its
 * output name. */
static void replace_named(PgQuery__Node **slot, PgQuery__Node *with)
{
    const char *name = NULL;
    char *copy = figure_colname(*slot, &name) > 0 ? pgw_strdup(name) : NULL;
    policy_object_set_output_name(with, copy);
    free(copy);
    policy_object_replace_node(slot, with);
}

/* ---- the wrappers ---- */

/* X if it is 0 or in the set (a FROM-item template), NULL otherwise. */
#define OID_WRAPPER                                                                                           \
    "(SELECT pgwarden_v.o FROM (VALUES ((pgwarden_arg)::pg_catalog.oid)) pgwarden_v(o) WHERE pgwarden_v.o = " \
    "0::pg_catalog.oid OR pgwarden_v.o IN (SELECT s.o FROM %s s))"

static int wrap_oid(Rewrite *rw, PgQuery__Node **slot, const char *set)
{
    return wrap_fmt(rw, slot, NULL, NULL, OID_WRAPPER, set);
}

/* ------------------------------------------------------------------------ */
/* Type names                                                                 */
/* ------------------------------------------------------------------------ */

static bool has_hidden_columns(const PgwConfig *cfg, const char *schema, const char *name)
{
    const PgwTablePolicy *tp = policy_table_policy(cfg, schema, name);
    for (size_t i = 0; tp != NULL && i < tp->nmasks; i++)
        if (tp->masks[i].kind == PGW_MASK_HIDE)
            return true;
    return false;
}

/* Does name (a relation name, or "_" + one: its array type) name a
 * relation of the snapshot outside the catalogs? */
static bool names_relation(const PgwSchema *sch, const char *schema, const char *name)
{
    for (size_t i = 0; sch != NULL && i < schema_ntables(sch); i++) {
        const PgwSchemaTable *t = schema_table_at(sch, i);
        if (strcmp(t->name, name) == 0 && !policy_is_catalog_schema(t->schema) &&
            (schema == NULL || strcmp(t->schema, schema) == 0))
            return true;
    }
    return false;
}

/* A type named like a user relation is that relation's row type (and "_t"
 * its array type): NULL::t, ROW(...)::t, json_populate_record(NULL::t, ...)
 * and (x::t).* tell its column names. So a row type exists for the tenant
 * exactly when the relation does, and only when none of its columns is
 * hidden. In a declaration (a column definition list, PREPARE's argument
 * types) a reg* type is refused too: the backend would convert a value
 * with the reg type's input function, a name lookup blind to the policy. */
/* PostgreSQL's answer to a type name it cannot find (TypeNameToString:
 * schema.name[]). */
static int refuse_missing_type(Walk *w, const PgQuery__TypeName *tn, const char *schema,
                               const char *name)
{
    char brackets[64] = "";
    for (size_t i = 0; i < tn->n_array_bounds && i < 30; i++)
        strcat(brackets, "[]");
    if (schema != NULL)
        return policy_refuse(w->rw, SQLSTATE_UNDEFINED_OBJECT, NULL,
                             "type \"%s.%s%s\" does not exist", schema, name, brackets);
    return policy_refuse(w->rw, SQLSTATE_UNDEFINED_OBJECT, NULL, "type \"%s%s\" does not exist",
                         name, brackets);
}

/* Would the backend's parser find a type of that name, as it looks one up:
 * in the schema given, or in pg_catalog and then the pinned search_path. */
static bool type_known(const Rewrite *rw, const char *schema, const char *name)
{
    const PgwSchema *sch = rw->ctx->schema;
    if (schema != NULL)
        return schema_type(sch, schema, name);
    if (schema_type(sch, "pg_catalog", name))
        return true;
    for (size_t i = 0; i < rw->nsearch_path; i++)
        if (schema_type(sch, rw->search_path[i], name))
            return true;
    return false;
}

/* Checks a type name; a hidden relation's row type is refused as missing,
 * unless run_time, where it is left to a run-time lookup that answers it
 * as missing (a regtype literal: the same path a missing name takes). */
static int check_type_name(Walk *w, const PgQuery__TypeName *tn, bool cast, bool run_time);

int policy_object_check_type_name(Walk *w, const PgQuery__TypeName *tn, bool cast)
{
    return check_type_name(w, tn, cast, false);
}

static int check_type_name(Walk *w, const PgQuery__TypeName *tn, bool cast, bool run_time)
{
    if (tn == NULL || tn->n_names == 0)
        return 0;
    const char *name = type_name_last(tn);
    const char *schema = tn->n_names >= 2 ? policy_string_value(tn->names[tn->n_names - 2]) : NULL;
    if (name == NULL)
        return 0;
    if (!cast && type_name_builtin(tn) &&
        (policy_builtin_is_reg_type(name) ||
         (name[0] == '_' && policy_builtin_is_reg_type(name + 1))))
        return policy_refuse(w->rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                             "Declare the value as text and cast it in the query.",
                             "pgwarden: values of type %s may not be declared here", name);
    if (type_name_builtin(tn) && (strcmp(name, "aclitem") == 0 || strcmp(name, "_aclitem") == 0))
        return policy_refuse(w->rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                             "Read ACLs from the catalogs; aclexplode() shows their parts.",
                             "pgwarden: values of type %s may not be built here: its input looks "
                             "role names up",
                             name);
    if ((schema == NULL || policy_is_catalog_schema(schema) || schema_visible(w->rw, schema)) &&
        policy_object_rowtype_resolves_names(w->rw->ctx->schema, schema, name))
        return policy_refuse(w->rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                             "Select the columns you need instead of building the whole row.",
                             "pgwarden: values of type %s may not be built here: a column of it "
                             "looks names up (a reg* or aclitem type)",
                             name);
    if (schema != NULL && policy_is_catalog_schema(schema))
        return 0;
    if (schema != NULL && !schema_visible(w->rw, schema))
        return refuse_missing_schema(w->rw, schema);
    const PgwSchema *sch = w->rw->ctx->schema;
    const char *relname = name;
    if (!names_relation(sch, schema, relname) && name[0] == '_' &&
        names_relation(sch, schema, name + 1))
        relname = name + 1;
    else if (!names_relation(sch, schema, relname)) {
        /* Not a user relation's row type: a type the backend knows is left
         * to it; a name it does not know is refused here, with the answer
         * its parser would give, because a hidden relation's row type is
         * refused here too (below) and the two must take the same path
         * (check_relation_literal's prose). */
        if (!run_time && !tn->pct_type && schema_has_types(sch) && !type_known(w->rw, schema, name))
            return refuse_missing_type(w, tn, schema, name);
        return 0;
    }
    PgwBuf b;
    buf_init(&b);
    if (schema != NULL) {
        policy_append_ident(&b, schema);
        buf_append_byte(&b, '.');
    }
    policy_append_ident(&b, relname);
    char *text = buf_steal_str(&b);
    const PgwSchemaTable *t;
    const char *catalog;
    Resolved r = policy_resolve_relation_text(w->rw, text, &t, &catalog);
    free(text);
    if (r == RESOLVED_NONE && run_time)
        return 0;
    if (r == RESOLVED_NONE)
        return refuse_missing_type(w, tn, schema, name);
    if (r == RESOLVED_USER && has_hidden_columns(w->rw->ctx->cfg, t->schema, t->name))
        return policy_refuse(w->rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                             "pgwarden: the row type of \"%s\" is not available", relname);
    return 0;
}

int policy_check_type_name(Walk *w, const PgQuery__TypeName *tn)
{
    return policy_object_check_type_name(w, tn, false);
}

/* A type written as text ('customers'::regtype): parsed as a type name and
 * checked like one; a hidden relation's row type goes on to the run-time
 * lookup, as a missing type does (see check_relation_literal). */
static int check_type_text(Walk *w, const char *text)
{
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, "SELECT NULL::");
    buf_append_str(&b, text);
    char *sql = buf_steal_str(&b);
    PgQuery__ParseResult *tree = policy_parse_tree(sql);
    free(sql);
    int rc = 0;
    if (tree != NULL && tree->n_stmts == 1 && NODE(tree->stmts[0]->stmt, SELECT_STMT) &&
        tree->stmts[0]->stmt->select_stmt->n_target_list == 1) {
        PgQuery__Node *v = tree->stmts[0]->stmt->select_stmt->target_list[0]->res_target->val;
        if (NODE(v, TYPE_CAST))
            rc = check_type_name(w, v->type_cast->type_name, true, true);
    }
    if (tree != NULL)
        pg_query__parse_result__free_unpacked(tree, NULL);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Relation names in literals                                                 */
/* ------------------------------------------------------------------------ */

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

/* Does a schema exist for the tenant, as far as the policy can tell now:
 * the catalogs', the pinned search_path's, allowed functions', every schema
 * holding a relation the tenant may read, and the schema a readable,
 * unhidden column's type is qualified with (pg_namespace lists it too,
 * policy_catalog.c: PGW_SET_NSP; its other types stay invisible and are
 * resolved at run time against the type set). */
static bool schema_visible(const Rewrite *rw, const char *schema)
{
    if (policy_is_catalog_schema(schema) || strcmp(schema, "pg_toast") == 0)
        return true;
    for (size_t i = 0; i < rw->nsearch_path; i++)
        if (strcmp(rw->search_path[i], schema) == 0)
            return true;
    const PgwConfig *cfg = rw->ctx->cfg;
    for (size_t i = 0; i < cfg->nallowed_functions; i++) {
        const char *f = cfg->allowed_functions[i];
        const char *dot = strrchr(f, '.');
        if (dot != NULL && strlen(schema) == (size_t)(dot - f) &&
            strncmp(f, schema, (size_t)(dot - f)) == 0)
            return true;
        if (dot == NULL && strcmp(schema, "public") == 0)
            return true;
    }
    const PgwSchema *sch = rw->ctx->schema;
    for (size_t i = 0; i < schema_ntables(sch); i++) {
        const PgwSchemaTable *t = schema_table_at(sch, i);
        if (strcmp(t->schema, schema) == 0 && policy_relation_readable(cfg, t->schema, t->name))
            return true;
    }
    /* format_type qualifies a type outside the snapshot's search_path as
     * quote_ident(schema).name: compare with the schema written both ways
     * (bare only when it needs no quotes; a keyword-named schema printed
     * quoted is matched by the quoted form). */
    PgwBuf q, bare;
    buf_init(&q);
    buf_init(&bare);
    policy_append_ident(&q, schema);
    buf_append_byte(&q, '.');
    bool plain = (schema[0] >= 'a' && schema[0] <= 'z') || schema[0] == '_';
    for (const char *p = schema; *p != '\0' && plain; p++)
        plain = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '$';
    if (plain)
        buf_printf(&bare, "%s.", schema);
    bool found = false;
    for (size_t i = 0; i < schema_ntables(sch) && !found; i++) {
        const PgwSchemaTable *t = schema_table_at(sch, i);
        if (!policy_relation_readable(cfg, t->schema, t->name))
            continue;
        const PgwTablePolicy *tp = policy_table_policy(cfg, t->schema, t->name);
        for (size_t c = 0; c < t->ncolumns && !found; c++) {
            const char *type = t->columns[c].type;
            const PgwColumnMask *m = tp != NULL ? policy_column_mask(tp, t->columns[c].name) : NULL;
            if (type == NULL || (m != NULL && m->kind == PGW_MASK_HIDE))
                continue;
            found = strncmp(type, (const char *)q.data, q.len) == 0 ||
                    (plain && strncmp(type, (const char *)bare.data, bare.len) == 0);
        }
    }
    buf_free(&q);
    buf_free(&bare);
    return found;
}

static int refuse_missing_schema(Rewrite *rw, const char *schema)
{
    return policy_refuse(rw, SQLSTATE_UNDEFINED_SCHEMA, NULL, "schema \"%s\" does not exist",
                         schema);
}

/* What a relation name in a string literal comes to. */
typedef enum {
    LIT_REFUSED = -1, /* names nothing the tenant may see: refused as missing */
    LIT_USER, /* a readable user relation (pinned to its schema) */
    LIT_CATALOG, /* a catalog relation */
    LIT_RUNTIME, /* any other name (hidden, missing, an index, a sequence, a
                  * newer table): the backend resolves it and the visible set
                  * decides */
} Literal;

/* The RangeVar a relation name in text parses to; NULL when it is none.
 * Free *tree after use. */
static const PgQuery__RangeVar *parse_relation_text(const char *text, PgQuery__ParseResult **tree)
{
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, "SELECT 1 FROM ");
    buf_append_str(&b, text);
    char *sql = buf_steal_str(&b);
    *tree = policy_parse_tree(sql);
    free(sql);
    PgQuery__ParseResult *t = *tree;
    if (t != NULL && t->n_stmts == 1 && NODE(t->stmts[0]->stmt, SELECT_STMT) &&
        t->stmts[0]->stmt->select_stmt->n_from_clause == 1 &&
        NODE(t->stmts[0]->stmt->select_stmt->from_clause[0], RANGE_VAR))
        return t->stmts[0]->stmt->select_stmt->from_clause[0]->range_var;
    return NULL;
}

/* A relation name in a string literal: pinned to the relation we resolved
 * when readable (the backend's search_path would not skip a hidden
 * namesake); refused as PostgreSQL refuses a missing schema when its
 * schema is not one the tenant sees; otherwise left to the run-time check
 * (policy_object_reg.c), which answers a hidden relation exactly as a
 * missing one.
 *
 * What decides the path is only what the tenant may see: the visible
 * relations and schemas. Whether an invisible name exists must not, not
 * even by how long the answer takes: a hidden relation refused here took
 * 40 us while a missing one went to the backend and took 15 ms, which told
 * them apart. An index, a sequence or a newer table (not in the snapshot)
 * takes the run-time path as well, so that path is the one for every name
 * the snapshot cannot show the tenant. */
static Literal check_relation_literal(Rewrite *rw, PgQuery__String *lit, const PgwSchemaTable **t)
{
    const char *catalog;
    Resolved r = policy_resolve_relation_text(rw, lit->sval, t, &catalog);
    if (r == RESOLVED_CATALOG)
        return LIT_CATALOG;
    if (r == RESOLVED_USER) {
        PgwBuf b;
        buf_init(&b);
        policy_append_ident(&b, (*t)->schema);
        buf_append_byte(&b, '.');
        policy_append_ident(&b, (*t)->name);
        char *q = buf_steal_str(&b);
        policy_set_string(&lit->sval, q);
        free(q);
        return LIT_USER;
    }
    PgQuery__ParseResult *tree;
    const PgQuery__RangeVar *rv = parse_relation_text(lit->sval, &tree);
    Literal out = LIT_REFUSED;
    if (rv != NULL && rv->schemaname[0] != '\0' && !schema_visible(rw, rv->schemaname))
        refuse_missing_schema(rw, rv->schemaname);
    else if (rv != NULL)
        out = LIT_RUNTIME;
    else
        policy_refuse(rw, SQLSTATE_UNDEFINED_TABLE, NULL, "relation \"%s\" does not exist",
                      lit->sval);
    if (tree != NULL)
        pg_query__parse_result__free_unpacked(tree, NULL);
    return out;
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

static bool config_has_hidden_columns(const PgwConfig *cfg)
{
    for (size_t i = 0; i < cfg->ntables; i++)
        for (size_t m = 0; m < cfg->tables[i].nmasks; m++)
            if (cfg->tables[i].masks[m].kind == PGW_MASK_HIDE)
                return true;
    return false;
}

/* Is a qualified function name ("s.f", "s.f(int)") one the tenant may
 * call? Unqualified names are decided at run time. Refuses (as PostgreSQL
 * answers a missing schema, then a missing function) when not. */
static int check_function_text(Rewrite *rw, const char *text)
{
    size_t namelen = strcspn(text, "(");
    const char *dot = memchr(text, '.', namelen);
    if (dot == NULL)
        return 0;
    char schema[128], name[128];
    snprintf(schema, sizeof(schema), "%.*s", (int)(dot - text), text);
    snprintf(name, sizeof(name), "%.*s", (int)(namelen - (size_t)(dot - text) - 1), dot + 1);
    for (char *p = schema; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (strcmp(schema, "pg_catalog") == 0 || strcmp(schema, "information_schema") == 0)
        return 0;
    const PgwConfig *cfg = rw->ctx->cfg;
    for (size_t i = 0; i < cfg->nallowed_functions; i++) {
        const char *f = cfg->allowed_functions[i];
        const char *fdot = strrchr(f, '.');
        const char *fschema = fdot != NULL ? f : "public";
        size_t fslen = fdot != NULL ? (size_t)(fdot - f) : strlen("public");
        const char *fname = fdot != NULL ? fdot + 1 : f;
        if (strlen(schema) == fslen && strncmp(schema, fschema, fslen) == 0 &&
            strcmp(name, fname) == 0)
            return 0;
    }
    if (!schema_visible(rw, schema))
        return refuse_missing_schema(rw, schema);
    return policy_refuse(rw, SQLSTATE_UNDEFINED_FUNCTION, NULL, "function \"%s\" does not exist",
                         text);
}

/* ------------------------------------------------------------------------ */
/* Casts to reg* types                                                        */
/* ------------------------------------------------------------------------ */

/* The schema a reg* name written as a literal is qualified with, parsed
 * the way the input function reads names (libpg_query reads the
 * identifiers); false when unqualified or not a name (the backend then
 * decides, and the run-time check of the schema still applies). */
static bool literal_schema(const char *text, bool op, char *out, size_t outlen)
{
    char *copy = pgw_strdup(text);
    char *qual = copy;
    if (op) {
        /* "schema.+(int4,int4)": the symbol has no '.', so the schema is
         * what precedes the last '.' before the argument list. */
        char *paren = strchr(copy, '(');
        if (paren != NULL)
            *paren = '\0';
        char *dot = strrchr(copy, '.');
        if (dot == NULL) {
            free(copy);
            return false;
        }
        *dot = '\0';
    }
    PgQuery__ParseResult *tree;
    const PgQuery__RangeVar *rv = parse_relation_text(qual, &tree);
    bool found = false;
    if (rv != NULL) {
        /* op: "schema" or "db.schema" is the relation part; otherwise the
         * name's own schema part. */
        const char *schema = op ? rv->relname : rv->schemaname;
        if (schema != NULL && schema[0] != '\0') {
            snprintf(out, outlen, "%s", schema);
            found = true;
        }
    }
    if (tree != NULL)
        pg_query__parse_result__free_unpacked(tree, NULL);
    free(copy);
    return found;
}

int policy_object_check_schema(Rewrite *rw, const char *schema)
{
    return schema_visible(rw, schema) ? 0 : refuse_missing_schema(rw, schema);
}

int policy_object_check_literal_schema(Rewrite *rw, const char *text)
{
    char schema[256];
    if (!literal_schema(text, false, schema, sizeof(schema)))
        return 0;
    return policy_object_check_schema(rw, schema);
}

int policy_object_type_cast(Walk *w, PgQuery__TypeCast *tc)
{
    Rewrite *rw = w->rw;
    if (policy_object_check_type_name(w, tc->type_name, true) < 0)
        return -1;
    const PgQuery__TypeName *tn = tc->type_name;
    const char *tname = type_name_last(tn);
    if (tname == NULL || !type_name_builtin(tn))
        return 0;
    bool array = tn->n_array_bounds > 0;
    if (tname[0] == '_' && policy_builtin_is_reg_type(tname + 1)) {
        array = true;
        tname++;
    }
    if (!policy_builtin_is_reg_type(tname) || is_null_constant(tc->arg))
        return 0;
    if (array)
        return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                             "Cast each element on its own: name::regclass.",
                             "pgwarden: casting to %s[] is not allowed", tname);
    PgQuery__String *lit = string_constant(tc->arg);
    bool digits = lit != NULL && all_digits(lit->sval);
    bool regclass = strcmp(tname, "regclass") == 0;
    bool regtype = strcmp(tname, "regtype") == 0;
    bool regproc = strcmp(tname, "regproc") == 0 || strcmp(tname, "regprocedure") == 0;
    bool regnamespace = strcmp(tname, "regnamespace") == 0;
    bool regrole = strcmp(tname, "regrole") == 0;
    if (!regclass && !regtype && !regproc && !regnamespace && !regrole &&
        !policy_object_reg_by_rule(tname))
        /* A reg* type with no visible set: refused (fail closed). */
        return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                             "pgwarden: casting to %s is not allowed", tname);

    if (lit != NULL && !digits && policy_object_reg_by_rule(tname)) {
        /* 'hidden.x'::regconfig: a schema the tenant cannot see answers as
         * a missing one, before any lookup. */
        char schema[256];
        if (literal_schema(lit->sval, policy_object_reg_operator(tname), schema, sizeof(schema)) &&
            !schema_visible(rw, schema))
            return refuse_missing_schema(rw, schema);
    }
    if (lit != NULL && !digits) {
        if (regclass) {
            /* 'customers'::regclass: decided now, exactly as FROM customers
             * (an index or sequence name only the backend knows: at run
             * time). */
            const PgwSchemaTable *t;
            Literal l = check_relation_literal(rw, lit, &t);
            if (l != LIT_RUNTIME)
                return l == LIT_REFUSED ? -1 : 0;
        }
        if (regtype && check_type_text(w, lit->sval) < 0)
            return -1;
        if (regproc && check_function_text(rw, lit->sval) < 0)
            return -1;
    }
    if (policy_walk_node(w, &tc->base) < 0)
        return -1;
    if (digits &&
        policy_object_wrap(rw, &tc->arg, "((pgwarden_arg)::pg_catalog.oid)", NULL, NULL) < 0)
        return -1; /* '16433'::regclass: the input function reads digits as an OID */
    /* The column keeps the name PostgreSQL gives the cast. */
    char *colname = NULL;
    const char *figured = NULL;
    int strength = figure_colname(tc->arg, &figured);
    colname = pgw_strdup(strength >= 2 ? figured : tname);
    int rc;
    if (regclass)
        rc = policy_object_wrap_resolve(rw, &tc->arg, "regclass", "%{rel}", "%{rel}");
    else if (regtype)
        rc = policy_object_wrap_resolve(rw, &tc->arg, "regtype", "%{type}", "%{type}");
    else if (regproc)
        rc = policy_object_wrap_resolve(rw, &tc->arg, tname, "%{proc}", "%{proc}");
    else if (policy_object_reg_by_rule(tname)) {
        /* Operators, collations, text search objects: the set is their
         * catalog view's rows (policy_catalog.c, %W). */
        char set[64];
        snprintf(set, sizeof(set), "%%W(%s)", policy_builtin_reg_catalog(tname));
        rc = policy_object_wrap_resolve(rw, &tc->arg, tname, set, set);
    } else if (regnamespace)
        rc = policy_object_wrap(
            rw, &tc->arg,
            "(SELECT n.oid::pg_catalog.regnamespace FROM pg_catalog.pg_namespace n, (VALUES "
            "((pgwarden_arg)::pg_catalog.text)) pgwarden_v(t) WHERE n.oid IN (SELECT s.o FROM %{nsp} "
            "s) AND CASE WHEN pgwarden_v.t ~ '^[0-9]+$' THEN n.oid = pgwarden_v.t::pg_catalog.oid ELSE n.oid "
            "= pg_catalog.to_regnamespace(pgwarden_v.t)::pg_catalog.oid END)",
            NULL, NULL);
    else
        rc = policy_object_wrap(
            rw, &tc->arg,
            "(SELECT a.oid::pg_catalog.regrole FROM pg_catalog.pg_roles a, (VALUES "
            "((pgwarden_arg)::pg_catalog.text)) pgwarden_v(t) WHERE a.oid IN (SELECT s.o FROM "
            "%{role} s) AND CASE WHEN pgwarden_v.t ~ '^[0-9]+$' THEN a.oid = pgwarden_v.t::pg_catalog.oid "
            "ELSE a.oid = pg_catalog.to_regrole(pgwarden_v.t)::pg_catalog.oid END)",
            NULL, NULL);
    if (rc == 0)
        policy_object_set_output_name(tc->arg, colname);
    free(colname);
    return rc < 0 ? -1 : 1;
}

/* ------------------------------------------------------------------------ */
/* Built-in functions that take objects                                       */
/* ------------------------------------------------------------------------ */

/* The set (FROM-item template) a catalog's OIDs are checked against;
 * "" for classes every tenant may see (tablespaces, shared); NULL when
 * unknown. A catalog without a set of its own is checked by its catalog
 * rule (%W): an object is described exactly when its row is shown. */
static const char *class_set(const char *catalog)
{
    static const struct {
        const char *catalog, *set;
    } classes[] = {
        {"pg_class", "%{rel}"},
        {"pg_type", "%{type}"},
        {"pg_proc", "%{proc}"},
        {"pg_namespace", "%{nsp}"},
        {"pg_constraint", "%{con}"},
        {"pg_trigger", "%{trig}"},
        {"pg_database", "%{db}"},
        {"pg_authid", "%{role}"},
        {"pg_rewrite", "(SELECT vw.oid AS o FROM pg_catalog.pg_rewrite vw WHERE vw.ev_class IN "
                       "(SELECT vs.o FROM %{rel} vs))"},
        {"pg_statistic_ext", "(SELECT vx.oid AS o FROM pg_catalog.pg_statistic_ext vx WHERE "
                             "vx.stxrelid IN (SELECT vs.o FROM %{rel} vs) AND NOT "
                             "%h(pg_statistic_ext, vx.oid))"},
        {"pg_am", "%W(pg_am)"},
        {"pg_cast", "%W(pg_cast)"},
        {"pg_collation", "%W(pg_collation)"},
        {"pg_conversion", "%W(pg_conversion)"},
        {"pg_event_trigger", "%W(pg_event_trigger)"},
        {"pg_extension", "%W(pg_extension)"},
        {"pg_foreign_data_wrapper", "%W(pg_foreign_data_wrapper)"},
        {"pg_foreign_server", "%W(pg_foreign_server)"},
        {"pg_language", "%W(pg_language)"},
        {"pg_opclass", "%W(pg_opclass)"},
        {"pg_operator", "%W(pg_operator)"},
        {"pg_opfamily", "%W(pg_opfamily)"},
        {"pg_publication", "%W(pg_publication)"},
        {"pg_tablespace", ""},
        {"pg_transform", "%W(pg_transform)"},
        {"pg_ts_config", "%W(pg_ts_config)"},
        {"pg_ts_dict", "%W(pg_ts_dict)"},
        {"pg_ts_parser", "%W(pg_ts_parser)"},
        {"pg_ts_template", "%W(pg_ts_template)"},
    };
    if (strncmp(catalog, "pg_catalog.", 11) == 0)
        catalog += 11;
    for (size_t i = 0; i < PGW_ARRAY_LEN(classes); i++)
        if (strcmp(classes[i].catalog, catalog) == 0)
            return classes[i].set;
    return NULL;
}

static const char *kind_set(PgwArgKind k)
{
    switch (k) {
    case PGW_ARG_REL:
        return "%{rel}";
    case PGW_ARG_REL_VOLUME:
        return "%{unf}";
    case PGW_ARG_TYPE:
        return "%{type}";
    case PGW_ARG_FUNC:
        return "%{proc}";
    case PGW_ARG_NAMESPACE:
        return "%{nsp}";
    case PGW_ARG_ROLE:
        return "%{role}";
    case PGW_ARG_DATABASE:
        return "%{db}";
    case PGW_ARG_CONSTRAINT:
        return "%{con}";
    case PGW_ARG_TRIGGER:
        return "%{trig}";
    case PGW_ARG_RULE:
        return class_set("pg_rewrite");
    case PGW_ARG_STATISTICS:
        return class_set("pg_statistic_ext");
    case PGW_ARG_OPERATOR:
        return class_set("pg_operator");
    case PGW_ARG_COLLATION:
        return class_set("pg_collation");
    default:
        return NULL;
    }
}

static bool is_role_keyword(const PgQuery__Node *n)
{
    if (!NODE(n, SQLVALUE_FUNCTION))
        return false;
    switch (n->sqlvalue_function->op) {
    case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_ROLE:
    case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_USER:
    case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_USER:
    case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_SESSION_USER:
        return true;
    default:
        return false;
    }
}

/* The call's relation argument: a literal resolved now (t set, or a
 * catalog), or an expression checked at run time. */
typedef struct CallRel {
    int index; /* -1: none */
    PgQuery__Node *original; /* a copy of a plain original, for column checks */
    const PgwSchemaTable *t; /* literal resolved to a user relation */
    bool literal;
} CallRel;

static int relation_arg(Rewrite *rw, const char *fname, PgQuery__Node **slot, PgwArgKind k,
                        bool text, CallRel *cr)
{
    PgQuery__String *lit = string_constant(*slot);
    bool volume = k == PGW_ARG_REL_VOLUME;
    Literal l = LIT_RUNTIME;
    if (lit != NULL && !all_digits(lit->sval))
        l = check_relation_literal(rw, lit, &cr->t);
    if (l == LIT_REFUSED)
        return -1;
    if (l == LIT_USER || l == LIT_CATALOG) {
        cr->literal = true;
        if (volume)
            /* Sizes and counts of a row-filtered relation (or of a catalog,
             * which counts every tenant's objects) are other tenants'
             * volume: NULL, as for a relation without storage. */
            return policy_object_wrap(
                rw, slot,
                "(SELECT pgwarden_v.o FROM (VALUES "
                "((pgwarden_arg)::pg_catalog.regclass::pg_catalog.oid)) pgwarden_v(o) WHERE pgwarden_v.o IN "
                "(SELECT s.o FROM %{unf} s))",
                NULL, NULL);
        return 0;
    }
    if (is_plain(*slot))
        cr->original = copy_plain(*slot);
    if ((lit == NULL || !all_digits(lit->sval)) && text) {
        /* A name computed at run time (Metabase's quoted schema || '.' ||
         * table): resolved by the backend, kept when visible. */
        if (policy_object_wrap_resolve(rw, slot, "regclass", "%{rel}",
                                       volume ? "%{unf}" : "%{rel}") < 0)
            return -1;
        if (strcmp(fname, "pg_get_serial_sequence") == 0)
            return policy_object_wrap(rw, slot, "((pgwarden_arg)::pg_catalog.text)", NULL, NULL);
        return 0;
    }
    return wrap_oid(rw, slot, volume ? "%{unf}" : "%{rel}");
}

/* A column given with a relation: by name or number. */
static int column_arg(Rewrite *rw, const char *fname, PgQuery__Node **slot, const CallRel *cr)
{
    PgQuery__String *lit = string_constant(*slot);
    bool number =
        NODE(*slot, A_CONST) && (*slot)->a_const->val_case == PG_QUERY__A__CONST__VAL_IVAL;
    if (cr->literal && lit != NULL) {
        if (cr->t != NULL && !column_visible(rw, cr->t, lit->sval))
            return policy_refuse(rw, SQLSTATE_UNDEFINED_COLUMN, NULL,
                                 "column \"%s\" of relation \"%s\" does not exist", lit->sval,
                                 cr->t->name);
        return 0;
    }
    if (lit == NULL && !number && strcmp(fname, "pg_get_serial_sequence") == 0)
        return 0; /* SQLAlchemy passes a.attname; the result is checked instead */
    if (lit == NULL && !number)
        return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                             "pgwarden: %s takes a column only by name or number, as a constant",
                             fname);
    if (!config_has_hidden_columns(rw->ctx->cfg))
        return 0;
    if (cr->original == NULL)
        return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                             "pgwarden: %s takes its relation only as a constant, a parameter or "
                             "a column",
                             fname);
    PgQuery__Node *rel = copy_node(cr->original);
    /* Both the column and (a copy of) the relation are values of the
     * wrapper's VALUES, so neither is evaluated in a scope of ours. The
     * relation is read as an OID or by to_regclass (0: none), never by
     * regclassin, which fails at plan time for a missing name but not for a
     * hidden one, whose statement then built the visible set first. */
    if (number)
        return policy_object_wrap(
            rw, slot,
            "(SELECT pgwarden_v.n FROM (VALUES ((pgwarden_arg)::pg_catalog.int2, "
            "(pgwarden_arg2)::pg_catalog.text)) pgwarden_v(n, r) WHERE NOT "
            "%H(" PGW_REL_BY_TEXT ", pgwarden_v.n))",
            rel, NULL);
    return policy_object_wrap(
        rw, slot,
        "(SELECT pgwarden_v.c FROM (VALUES ((pgwarden_arg)::pg_catalog.text, "
        "(pgwarden_arg2)::pg_catalog.text)) pgwarden_v(c, r) WHERE NOT EXISTS (SELECT 1 FROM "
        "%{hcol} vh JOIN pg_catalog.pg_attribute va ON va.attrelid = vh.rel AND va.attnum = "
        "vh.att WHERE vh.rel = " PGW_REL_BY_TEXT " AND va.attname = pgwarden_v.c))",
        rel, NULL);
}

/* An argument naming an object of class k, other than a relation. */
static int object_arg(Rewrite *rw, const char *fname, PgQuery__Node **slot, PgwArgKind k, bool text)
{
    PgQuery__String *lit = string_constant(*slot);
    switch (k) {
    case PGW_ARG_TYPE:
        if (text)
            return policy_object_wrap_resolve(rw, slot, "regtype", "%{type}", "%{type}");
        return wrap_oid(rw, slot, "%{type}");
    case PGW_ARG_FUNC:
        if (text) {
            if (lit != NULL && check_function_text(rw, lit->sval) < 0)
                return -1;
            return policy_object_wrap_resolve(rw, slot, "regprocedure", "%{proc}", "%{proc}");
        }
        return wrap_oid(rw, slot, "%{proc}");
    case PGW_ARG_NAMESPACE:
        if (text)
            return policy_object_wrap(
                rw, slot,
                "(SELECT n.oid FROM pg_catalog.pg_namespace n, (VALUES "
                "((pgwarden_arg)::pg_catalog.text)) pgwarden_v(t) WHERE n.oid IN (SELECT s.o FROM "
                "%{nsp} s) AND CASE WHEN pgwarden_v.t ~ '^[0-9]+$' THEN n.oid = "
                "pgwarden_v.t::pg_catalog.oid ELSE n.nspname = pgwarden_v.t END)",
                NULL, NULL);
        return wrap_oid(rw, slot, "%{nsp}");
    case PGW_ARG_ROLE:
        if (is_role_keyword(*slot) || (lit != NULL && strcasecmp(lit->sval, "public") == 0))
            return 0;
        if (text)
            return policy_object_wrap(
                rw, slot,
                "(SELECT CASE WHEN pg_catalog.lower(pgwarden_v.t) = 'public' THEN "
                "'public'::pg_catalog.name ELSE (SELECT a.rolname FROM "
                "pg_catalog.pg_roles a WHERE a.oid IN (SELECT s.o FROM %{role} s) AND "
                "CASE WHEN pgwarden_v.t ~ '^[0-9]+$' THEN a.oid = pgwarden_v.t::pg_catalog.oid ELSE "
                "a.rolname = pgwarden_v.t END) END FROM (VALUES ((pgwarden_arg)::pg_catalog.text)) "
                "pgwarden_v(t))",
                NULL, NULL);
        return wrap_oid(rw, slot, "%{role}");
    case PGW_ARG_DATABASE: {
        /* Only the tenant's database exists, under the tenant's name. */
        PgQuery__Node *n;
        if (lit != NULL && strcmp(lit->sval, rw->ctx->tenant->name) == 0) {
            if (policy_object_expression(rw, "pg_catalog.current_database()", &n) < 0)
                return -1;
            policy_object_replace_node(slot, n);
            return 0;
        }
        if (lit != NULL) {
            if (policy_object_expression(rw, "NULL::pg_catalog.name", &n) < 0)
                return -1;
            policy_object_replace_node(slot, n);
            return 0;
        }
        return policy_object_wrap(
            rw, slot,
            "(SELECT CASE WHEN pgwarden_v.t = %T::pg_catalog.text OR pgwarden_v.t = (SELECT "
            "d.oid::pg_catalog.text FROM pg_catalog.pg_database d WHERE d.datname = "
            "pg_catalog.current_database()) THEN pg_catalog.current_database() END FROM "
            "(VALUES ((pgwarden_arg)::pg_catalog.text)) pgwarden_v(t))",
            NULL, NULL);
    }
    case PGW_ARG_TYPE_VECTOR:
        /* Each hidden type becomes an OID no type has (the largest: the
         * OID counter never hands it out in practice), so the answer is
         * the one for a missing type ("???"); 0 stays ("-"). */
        return policy_object_wrap(
            rw, slot,
            "(SELECT CASE WHEN pgwarden_v.a IS NOT NULL THEN "
            "pg_catalog.array_to_string(ARRAY(SELECT CASE WHEN vx.x = 0 OR vx.x IN "
            "(SELECT s.o FROM %{type} s) THEN vx.x ELSE 4294967295::pg_catalog.oid END "
            "FROM pg_catalog.unnest(pgwarden_v.a) WITH ORDINALITY vx(x, i) ORDER BY "
            "vx.i), ' ')::pg_catalog.oidvector END FROM (VALUES "
            "((pgwarden_arg)::pg_catalog.oid[])) pgwarden_v(a))",
            NULL, NULL);
    case PGW_ARG_SETTING:
        if (lit != NULL) {
            if (!policy_setting_visible(lit->sval))
                return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                                     "pgwarden: permission denied to examine \"%s\"", lit->sval);
            return 0;
        }
        return policy_object_wrap(
            rw, slot,
            "(SELECT CASE WHEN %G(pgwarden_v.t) THEN pgwarden_v.t END FROM (VALUES "
            "((pgwarden_arg)::pg_catalog.text)) pgwarden_v(t))",
            NULL, NULL);
    default: {
        const char *set = kind_set(k);
        if (set == NULL)
            return 0;
        (void)fname;
        return wrap_oid(rw, slot, set);
    }
    }
}

/* obj_description(oid, catalog), shobj_description, pg_describe_object,
 * pg_identify_object*: the object's OID is checked against its class's set
 * when the class is a constant, and otherwise the whole call runs over its
 * arguments evaluated once, guarded by the generic object predicate. */
static int described_object(Rewrite *rw, PgQuery__Node **slot, const char *fname,
                            const PgwBuiltinObjects *bo)
{
    PgQuery__FuncCall *fc = (*slot)->func_call;
    int obj = -1, cls = -1, sub = -1;
    for (int i = 0; i < bo->nargs; i++) {
        PgwArgKind k = PGW_ARG_KIND(bo->args[i]);
        if (k == PGW_ARG_OBJECT)
            obj = i;
        else if (k == PGW_ARG_CLASS)
            cls = i;
        else if (k == PGW_ARG_SUBID)
            sub = i;
    }
    if (obj < 0 || cls < 0)
        return 0;
    /* A class given as a constant ('pg_class', 'pg_catalog.pg_class',
     * 'pg_class'::regclass) and no column number, or column 0: the OID is
     * checked against the class's set and the call stays as written. */
    PgQuery__String *lit = string_constant(fc->args[cls]);
    const char *set = lit != NULL ? class_set(lit->sval) : NULL;
    bool whole_object = sub < 0 ||
                        (NODE(fc->args[sub], A_CONST) &&
                         fc->args[sub]->a_const->val_case == PG_QUERY__A__CONST__VAL_IVAL &&
                         fc->args[sub]->a_const->ival->ival == 0) ||
                        !config_has_hidden_columns(rw->ctx->cfg) ||
                        (set != NULL && strcmp(set, "%{rel}") != 0);
    if (set != NULL && whole_object)
        return set[0] == '\0' ? 0 : wrap_oid(rw, &fc->args[obj], set);

    bool shared = strcmp(fname, "shobj_description") == 0;
    bool byname = strcmp(fname, "obj_description") == 0 || shared;
    char tmpl[2048];
    if (byname)
        snprintf(
            tmpl, sizeof(tmpl),
            "(SELECT pg_catalog.%s(pgwarden_v.o, pgwarden_v.c) FROM (VALUES ((pgwarden_arg)::pg_catalog.oid, "
            "(pgwarden_arg2)::pg_catalog.name)) pgwarden_v(o, c) WHERE %s)",
            fname,
            shared
                ? "%S((SELECT vc.oid FROM pg_catalog.pg_class vc WHERE vc.relname = pgwarden_v.c "
                  "AND vc.relnamespace = 11), pgwarden_v.o)"
                : "%O((SELECT vc.oid FROM pg_catalog.pg_class vc WHERE vc.relname = pgwarden_v.c "
                  "AND vc.relnamespace = 11), pgwarden_v.o, 0)");
    else
        snprintf(
            tmpl, sizeof(tmpl),
            "(SELECT pg_catalog.%s(pgwarden_v.c, pgwarden_v.o, pgwarden_v.s) FROM (VALUES "
            "((pgwarden_arg2)::pg_catalog.oid, (pgwarden_arg)::pg_catalog.oid, "
            "(pgwarden_arg3)::pg_catalog.int4)) pgwarden_v(c, o, s) WHERE %%O(pgwarden_v.c, pgwarden_v.o, pgwarden_v.s))",
            fname);
    PgQuery__Node *out;
    if (instantiate(rw, tmpl, fc->args[obj], fc->args[cls], sub >= 0 ? fc->args[sub] : NULL, &out) <
        0)
        return policy_refuse(rw, SQLSTATE_INTERNAL_ERROR, NULL, "pgwarden: cannot rewrite %s",
                             fname);
    /* The arguments now live in out. */
    fc->args[obj] = NULL;
    fc->args[cls] = NULL;
    if (sub >= 0)
        fc->args[sub] = NULL;
    replace_named(slot, out);
    return 0;
}

/* col_description(rel, attnum): the whole call over its arguments evaluated
 * once, so the relation and the column number are checked together. */
static int column_description(Rewrite *rw, PgQuery__Node **slot)
{
    PgQuery__FuncCall *fc = (*slot)->func_call;
    PgQuery__Node *out;
    if (instantiate(
            rw,
            "(SELECT pg_catalog.col_description(pgwarden_v.o, pgwarden_v.n) FROM (VALUES "
            "((pgwarden_arg)::pg_catalog.oid, (pgwarden_arg2)::pg_catalog.int4)) pgwarden_v(o, n) "
            "WHERE pgwarden_v.o IN (SELECT s.o FROM %{rel} s) AND NOT %H(pgwarden_v.o, pgwarden_v.n))",
            fc->args[0], fc->args[1], NULL, &out) < 0)
        return policy_refuse(rw, SQLSTATE_INTERNAL_ERROR, NULL,
                             "pgwarden: cannot rewrite col_description");
    fc->args[0] = fc->args[1] = NULL;
    replace_named(slot, out);
    return 0;
}

int policy_object_func_call(Rewrite *rw, PgQuery__Node **slot, const char *name)
{
    PgQuery__FuncCall *fc = (*slot)->func_call;
    const PgwBuiltinObjects *bo = policy_builtin_objects(name, fc->n_args);
    if (bo == NULL)
        return 0;
    for (size_t i = 0; i < fc->n_args; i++)
        if (NODE(fc->args[i], NAMED_ARG_EXPR))
            return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                                 "pgwarden: %s takes its arguments only by position", name);
    if (fc->agg_star || fc->func_variadic)
        return 0; /* not a call PostgreSQL accepts for these functions */
    PgQuery__Node *n;
    switch ((PgwCallKind)bo->call) {
    case PGW_CALL_TENANT:
        if (policy_object_expression(rw, "(SELECT %T)", &n) < 0)
            return -1;
        replace_named(slot, n);
        return 0;
    case PGW_CALL_CONST: {
        char sql[96];
        snprintf(sql, sizeof(sql), "(SELECT %s)", bo->type);
        if (policy_object_expression(rw, sql, &n) < 0)
            return -1;
        replace_named(slot, n);
        return 0;
    }
    case PGW_CALL_TO_REG: {
        PgwArgKind k = PGW_ARG_KIND(bo->args[0]);
        PgQuery__String *lit = string_constant(fc->args[0]);
        if (k == PGW_ARG_REL && lit != NULL) {
            const PgwSchemaTable *t;
            const char *catalog;
            PgQuery__ParseResult *tree;
            const PgQuery__RangeVar *rv = parse_relation_text(lit->sval, &tree);
            /* Any name of a schema the tenant sees, hidden or missing, is
             * looked up at run time (see check_relation_literal). */
            bool runtime =
                rv != NULL && (rv->schemaname[0] == '\0' || schema_visible(rw, rv->schemaname));
            if (tree != NULL)
                pg_query__parse_result__free_unpacked(tree, NULL);
            if (policy_resolve_relation_text(rw, lit->sval, &t, &catalog) != RESOLVED_NONE)
                return check_relation_literal(rw, lit, &t) == LIT_REFUSED ? -1 : 0;
            if (!runtime) {
                /* to_regclass('hidden.t') is NULL, as for a missing schema. */
                if (policy_object_expression(rw, "(SELECT NULL::pg_catalog.regclass)", &n) < 0)
                    return -1;
                replace_named(slot, n);
                return 0;
            }
        }
        /* name lives in the call, which goes away. */
        char *fname = pgw_strdup(name);
        PgQuery__Node *arg = fc->args[0];
        fc->args[0] = NULL;
        fc->n_args = 0;
        PgQuery__Node *old = *slot;
        *slot = arg;
        pg_query__node__free_unpacked(old, NULL);
        int rc = policy_object_wrap_to_reg(rw, slot, bo->type, kind_set(k));
        if (rc == 0)
            policy_object_set_output_name(*slot, fname);
        free(fname);
        return rc;
    }
    default:
        break;
    }
    if (strcmp(name, "col_description") == 0)
        return column_description(rw, slot);
    if (strcmp(name, "obj_description") == 0 || strcmp(name, "shobj_description") == 0 ||
        strncmp(name, "pg_describe_object", 18) == 0 ||
        strncmp(name, "pg_identify_object", 18) == 0)
        if (fc->n_args >= 2)
            return described_object(rw, slot, name, bo);

    CallRel cr = {-1, NULL, NULL, false};
    int rc = 0;
    for (size_t i = 0; i < fc->n_args && rc == 0; i++) {
        PgwArgKind k = PGW_ARG_KIND(bo->args[i]);
        bool text = (bo->args[i] & PGW_ARG_TEXT) != 0;
        if (k == PGW_ARG_VALUE || is_null_constant(fc->args[i]))
            continue;
        if (k == PGW_ARG_REL || k == PGW_ARG_REL_VOLUME) {
            cr.index = (int)i;
            rc = relation_arg(rw, name, &fc->args[i], k, text, &cr);
        } else if (k == PGW_ARG_COLUMN) {
            rc = cr.index >= 0 ? column_arg(rw, name, &fc->args[i], &cr) : 0;
        } else {
            rc = object_arg(rw, name, &fc->args[i], k, text);
        }
    }
    if (cr.original != NULL)
        pg_query__node__free_unpacked(cr.original, NULL);
    if (rc < 0 || rw->refused)
        return -1;
    if (bo->call == PGW_CALL_VIEWDEF && !is_null_constant(fc->args[0]))
        /* A view's definition names everything it reads: none for a view
         * whose rule uses an invisible object (policy_catalog.c, %d), as
         * pg_rewrite shows no such rule. The argument, checked above, is
         * read back as an OID whatever its form (OID, regclass, or a
         * literal name, looked up as the call itself would; never an OID
         * printed as a name and read again, which fails for TOAST). */
        return policy_object_wrap(
            rw, &fc->args[0],
            "(SELECT pgwarden_v.o FROM (VALUES "
            "((pgwarden_arg)::pg_catalog.regclass::pg_catalog.oid)) pgwarden_v(o) WHERE "
            "pgwarden_v.o NOT IN (SELECT vw.ev_class FROM pg_catalog.pg_rewrite vw WHERE "
            "%d(pg_rewrite, vw.oid)))",
            NULL, NULL);
    if (bo->call == PGW_CALL_PARTITION && !is_null_constant(fc->args[0]))
        /* A visible partition of a hidden parent (or a visible parent of a
         * hidden partition) would name the hidden one: such a relation has
         * no partition hierarchy for the tenant. */
        return policy_object_wrap(
            rw, &fc->args[0],
            "(SELECT pgwarden_v.o::pg_catalog.regclass FROM (VALUES "
            "(pg_catalog.regclassin((pgwarden_arg)::pg_catalog.text::pg_catalog.cstring)::"
            "pg_catalog.oid)) pgwarden_v(o) WHERE pgwarden_v.o IN (SELECT s.o FROM %{rel} s) AND NOT EXISTS "
            "(SELECT 1 FROM pg_catalog.pg_partition_ancestors(pgwarden_v.o) va WHERE "
            "va.relid::pg_catalog.oid NOT IN (SELECT s.o FROM %{rel} s)) AND NOT EXISTS "
            "(SELECT 1 FROM pg_catalog.pg_partition_tree(pgwarden_v.o) vt WHERE "
            "vt.relid::pg_catalog.oid NOT IN (SELECT s.o FROM %{rel} s)))",
            NULL, NULL);
    if (strcmp(name, "pg_get_serial_sequence") == 0) {
        /* The sequence of a hidden column is no visible relation. (name
         * is the call's, which survives: it is moved into the wrapper.) */
        if (policy_object_wrap(
                rw, slot,
                "(SELECT pgwarden_v.t FROM (VALUES ((pgwarden_arg)::pg_catalog.text)) pgwarden_v(t) WHERE "
                "pg_catalog.to_regclass(pgwarden_v.t)::pg_catalog.oid IN (SELECT s.o FROM %{rel} s))",
                NULL, NULL) < 0)
            return -1;
        policy_object_set_output_name(*slot, name);
    }
    return 0;
}
