/*
 * policy_qual.c — the leak analysis: may this statement's derived tables be
 * flattened, so that PostgreSQL can evaluate the client's quals on base rows
 * *before* the row filter (and use indexes), or must every derived table of
 * the statement be fenced with OFFSET 0?
 *
 * A qual evaluated on another tenant's row is an oracle as soon as it can
 * raise an error (or its evaluation depends on the row in any observable
 * way): one bit per query is enough to rebuild values. So the decision is
 * an allowlist. A conjunct of a qual PostgreSQL can push below a scan keeps
 * the statement unfenced only when
 *  (a) it is one of a few shapes that cannot raise an error: comparisons
 *      = <> < > <= >= between a column and a constant (or two columns, for
 *      joins), col IN (constants), col = ANY(constant array or parameter),
 *      col BETWEEN constants, col IS [NOT] DISTINCT FROM constant,
 *      col IS [NOT] NULL, col IS [NOT] TRUE/FALSE, boolean columns,
 *      constants, parameters, EXISTS (...), col IN (SELECT col ...), and
 *      AND/OR/NOT of these; where every operator is the built-in one for
 *      the operand types PostgreSQL will pick and its function is
 *      leak-proof on this backend (pg_proc.proleakproof, read with the
 *      schema), and every column is a column of a base relation that the
 *      derived table passes through unchanged (a masked column is an
 *      expression, a view's column may be one); or
 *  (b) it reads no relation with a row filter or mask at all (it then runs
 *      at the scan of a relation the tenant may read whole, or once), has
 *      no sublink, and, when it reads no column, no volatile function.
 * Anything else, known node type or not, fences the statement.
 *
 * Where quals can run below a scan: WHERE, JOIN ON (and the = a USING
 * implies), HAVING conjuncts without an aggregate of their level (the
 * planner moves those to WHERE), at every query level: subqueries in FROM,
 * LATERAL, CTEs (inlined since PostgreSQL 12), set-operation arms, sublinks.
 * Target lists, GROUP BY, ORDER BY, DISTINCT, LIMIT, window clauses and
 * aggregate arguments are evaluated on rows that passed their level's quals;
 * a subquery's output column pulled up into an outer qual is an opaque
 * column there, so the outer qual fails (a) on it. One exception makes
 * levels "strict": a sublink in a pushable position may run once per outer
 * row *before* the row filter (as a SubPlan or a lazily evaluated InitPlan),
 * with that row's values as parameters, so every expression of the
 * subquery (its target list and aggregates included) must pass (a), and
 * its FROM may hold only base relations and derived subqueries (no views,
 * CTE references or functions, whose contents are not analysed here).
 *
 * Column references resolve like PostgreSQL's: through the FROM items of
 * their level (alias, column aliases, columns a "hide" mask removed), then
 * the enclosing levels; a name an opaque item (function, VALUES, aliased
 * join, set operation) could supply is unknown, and unknown is unsafe. A
 * derived table's or CTE's output column that selects a base column
 * unchanged (directly or through SELECT *) keeps that column's facts: the
 * planner either pulls the subquery up (the qual is then on the base
 * column) or pushes the qual down into it (the same), or evaluates it on
 * the subquery's output; any other output column is an expression, unsafe.
 * Constants: an untyped literal, NULL or unspecified parameter takes the
 * other side's type; integer literals are int4 (int8 or numeric when
 * large); other numeric literals numeric; a cast of a literal its target
 * type (a cast of anything else is not a constant: it could fail at run
 * time). Operator choice follows PostgreSQL's for these cases: an exact
 * built-in operator wins; varchar compares as text; a float column against
 * a numeric literal uses the float operator with the literal converted once
 * at plan time. Any other mix (int4 column against a numeric literal, date
 * against timestamptz) would convert the column, so it is unsafe.
 *
 * The columns a safe qual uses are checked once the replacement SQL is
 * parsed (qual_check_needs): the derived table must select that column
 * unchanged, which also covers the catalog views policy_catalog.c writes.
 */
#include "policy.h"
#include "policy_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <strings.h>

#include "policy_catalog.h"
#include "policy_walk.h"

/* Built-in type OIDs (fixed by PostgreSQL's catalog, the same in every
 * version) for the type names casts use. */
enum {
    OID_BOOL = 16,
    OID_NAME = 19,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_TEXT = 25,
    OID_OID = 26,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_BPCHAR = 1042,
    OID_VARCHAR = 1043,
    OID_NUMERIC = 1700,
};

static const struct {
    const char *name;
    uint32_t oid, array;
    char category; /* typcategory, for IN lists' common type */
} builtin_types[] = {
    {"bool", 16, 1000, 'B'},        {"bytea", 17, 1001, 'U'},         {"char", 18, 1002, 'Z'},
    {"name", 19, 1003, 'S'},        {"int8", 20, 1016, 'N'},          {"int2", 21, 1005, 'N'},
    {"int4", 23, 1007, 'N'},        {"text", 25, 1009, 'S'},          {"oid", 26, 1028, 'N'},
    {"json", 114, 199, 'U'},        {"float4", 700, 1021, 'N'},       {"float8", 701, 1022, 'N'},
    {"cidr", 650, 651, 'I'},        {"inet", 869, 1041, 'I'},         {"bpchar", 1042, 1014, 'S'},
    {"varchar", 1043, 1015, 'S'},   {"date", 1082, 1182, 'D'},        {"time", 1083, 1183, 'D'},
    {"timestamp", 1114, 1115, 'D'}, {"timestamptz", 1184, 1185, 'D'}, {"interval", 1186, 1187, 'T'},
    {"timetz", 1266, 1270, 'D'},    {"numeric", 1700, 1231, 'N'},     {"uuid", 2950, 2951, 'U'},
    {"jsonb", 3802, 3807, 'U'},
};

static uint32_t type_by_name(const char *name, bool array)
{
    for (size_t i = 0; i < PGW_ARRAY_LEN(builtin_types); i++)
        if (strcmp(builtin_types[i].name, name) == 0)
            return array ? builtin_types[i].array : builtin_types[i].oid;
    return 0;
}

static uint32_t element_type(uint32_t array)
{
    for (size_t i = 0; i < PGW_ARRAY_LEN(builtin_types); i++)
        if (builtin_types[i].array == array)
            return builtin_types[i].oid;
    return 0;
}

static char type_category(uint32_t oid)
{
    for (size_t i = 0; i < PGW_ARRAY_LEN(builtin_types); i++)
        if (builtin_types[i].oid == oid)
            return builtin_types[i].category;
    return 0;
}

/* The numeric types ordered by PostgreSQL's implicit casts (int2 -> int4 ->
 * int8 -> numeric -> float4 -> float8): the common type of two is the
 * later one. */
static int numeric_rank(uint32_t oid)
{
    static const uint32_t order[] = {OID_INT2,    OID_INT4,   OID_INT8,
                                     OID_NUMERIC, OID_FLOAT4, OID_FLOAT8};
    for (size_t i = 0; i < PGW_ARRAY_LEN(order); i++)
        if (order[i] == oid)
            return (int)i;
    return -1;
}

/* ------------------------------------------------------------------------ */
/* FROM items                                                                 */
/* ------------------------------------------------------------------------ */

void qual_columns_free(QualColumns *c)
{
    if (c == NULL)
        return;
    free(c->cols);
    memset(c, 0, sizeof(*c));
}

void qual_level_free(QualLevel *lv)
{
    for (size_t i = 0; i < lv->nitems; i++) {
        qual_columns_free(lv->items[i].owned_cols);
        free(lv->items[i].owned_cols);
    }
    free(lv->items);
    lv->items = NULL;
    lv->nitems = lv->cap = 0;
}

void qual_add_item(QualLevel *lv, const char *name, const PgwSchemaTable *t,
                   const PgQuery__Alias *alias, PgQuery__Node **slot, bool skip_hidden)
{
    if (lv->nitems == lv->cap) {
        lv->cap = lv->cap > 0 ? lv->cap * 2 : 8;
        lv->items = pgw_realloc(lv->items, lv->cap * sizeof(*lv->items));
    }
    QualItem *it = &lv->items[lv->nitems++];
    it->name = name;
    it->t = t;
    it->alias = alias;
    it->slot = slot;
    it->skip_hidden = skip_hidden;
    /* A view's columns can be expressions of its own; through a derived
     * table they would be pushed below the row filter. */
    it->plain = t != NULL && t->relkind != 'v';
    it->func = NULL;
    it->cols = NULL;
    it->owned_cols = NULL;
}

static const char *string_field(const PgQuery__Node *n)
{
    return policy_string_value(n);
}

/* The column called name as item it shows it; NULL if none. */
static const PgwSchemaColumn *item_column(const Rewrite *rw, const QualItem *it, const char *name)
{
    if (it->t == NULL)
        return NULL;
    const PgwTablePolicy *tp = NULL;
    if (it->skip_hidden)
        tp = policy_table_policy(rw->ctx->cfg, it->t->schema, it->t->name);
    size_t k = 0;
    for (size_t i = 0; i < it->t->ncolumns; i++) {
        const PgwSchemaColumn *c = &it->t->columns[i];
        const PgwColumnMask *m = tp != NULL ? policy_column_mask(tp, c->name) : NULL;
        if (m != NULL && m->kind == PGW_MASK_HIDE)
            continue;
        const char *shown = c->name;
        if (it->alias != NULL && k < it->alias->n_colnames &&
            string_field(it->alias->colnames[k]) != NULL)
            shown = string_field(it->alias->colnames[k]);
        k++;
        if (strcmp(shown, name) == 0)
            return c;
    }
    return NULL;
}

/* What a column reference found: a column whose base relation is known
 * (directly, or passed through a derived table or CTE). */
typedef struct Hit {
    const QualItem *item; /* the FROM item it names */
    const PgwSchemaTable *t; /* the base relation; NULL with col NULL: whole row */
    const PgwSchemaColumn *col;
    PgQuery__Node **slot; /* the base relation's derived table, NULL: read as is */
    bool plain;
} Hit;

enum { LOOK_NONE, LOOK_BASE, LOOK_UNKNOWN, LOOK_MAYBE };

/* Does item it show a column called name, and from which base relation? */
static int item_lookup(const Rewrite *rw, const QualItem *it, const char *name, Hit *hit)
{
    if (it->t != NULL) {
        const PgwSchemaColumn *c = item_column(rw, it, name);
        if (c == NULL)
            return LOOK_NONE;
        *hit = (Hit){it, it->t, c, it->slot, it->plain};
        return LOOK_BASE;
    }
    if (it->cols == NULL)
        return LOOK_MAYBE;
    int found = LOOK_NONE;
    for (size_t i = 0; i < it->cols->n; i++) {
        const QualColumn *qc = &it->cols->cols[i];
        if (qc->name == NULL || strcmp(qc->name, name) != 0)
            continue;
        if (found != LOOK_NONE)
            return LOOK_UNKNOWN; /* ambiguous in the subquery's output */
        found = qc->t != NULL ? LOOK_BASE : LOOK_UNKNOWN;
        if (qc->t != NULL)
            *hit = (Hit){it, qc->t, qc->col, qc->slot, qc->plain};
    }
    if (found == LOOK_NONE && !it->cols->complete)
        return LOOK_MAYBE;
    return found;
}

/* Resolve a ColumnRef to the FROM item (and column) it names, as
 * PostgreSQL would; false when that cannot be known for certain. */
static bool resolve_ref(const Rewrite *rw, const QualLevel *lv, const PgQuery__ColumnRef *cr,
                        Hit *hit)
{
    size_t nf = cr->n_fields;
    bool star = nf > 0 && NODE(cr->fields[nf - 1], A_STAR);
    for (size_t i = 0; i + (star ? 1 : 0) < nf; i++)
        if (string_field(cr->fields[i]) == NULL)
            return false;
    memset(hit, 0, sizeof(*hit));
    if (nf == 1 && !star) {
        const char *col = string_field(cr->fields[0]);
        for (; lv != NULL; lv = lv->up) {
            Hit found = {0};
            size_t nfound = 0;
            bool maybe = false, unknown = false, named = false;
            for (size_t i = 0; i < lv->nitems; i++) {
                const QualItem *it = &lv->items[i];
                Hit h;
                switch (item_lookup(rw, it, col, &h)) {
                case LOOK_BASE:
                    found = h;
                    nfound++;
                    break;
                case LOOK_UNKNOWN:
                    unknown = true;
                    nfound++;
                    break;
                case LOOK_MAYBE:
                    maybe = true;
                    break;
                default:
                    break;
                }
                if (it->name != NULL && strcmp(it->name, col) == 0)
                    named = true;
            }
            if (nfound == 1 && !maybe && !unknown) {
                *hit = found;
                return true;
            }
            if (nfound > 0 || maybe)
                return false;
            if (named) { /* a whole-row reference */
                for (size_t i = 0; i < lv->nitems; i++)
                    if (lv->items[i].name != NULL && strcmp(lv->items[i].name, col) == 0) {
                        if (hit->item != NULL)
                            return false;
                        hit->item = &lv->items[i];
                    }
                hit->t = hit->item->t;
                hit->slot = hit->item->slot;
                return true;
            }
        }
        return false;
    }
    if (nf == 2 || nf == 3) {
        const char *ns = nf == 3 ? string_field(cr->fields[0]) : NULL;
        const char *rel = string_field(cr->fields[nf - 2]);
        const char *col = star ? NULL : string_field(cr->fields[nf - 1]);
        for (; lv != NULL; lv = lv->up) {
            const QualItem *found = NULL;
            size_t nfound = 0;
            bool opaque_unnamed = false;
            for (size_t i = 0; i < lv->nitems; i++) {
                const QualItem *it = &lv->items[i];
                if (it->name == NULL) {
                    opaque_unnamed = opaque_unnamed || it->t == NULL;
                    continue;
                }
                if (strcmp(it->name, rel) != 0)
                    continue;
                if (ns != NULL &&
                    (it->t == NULL || it->alias != NULL || strcmp(it->t->schema, ns) != 0))
                    continue;
                found = it;
                nfound++;
            }
            if (nfound > 1 || (nfound == 0 && opaque_unnamed))
                return false;
            if (nfound == 1) {
                if (col == NULL) {
                    *hit = (Hit){found, found->t, NULL, found->slot, found->plain};
                    return true;
                }
                return item_lookup(rw, found, col, hit) == LOOK_BASE;
            }
        }
        return false;
    }
    return false;
}

/* ------------------------------------------------------------------------ */
/* Operands                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct Operand {
    bool ok; /* a column or constant whose type is known or is taken from the other side */
    bool column;
    bool numeric_literal; /* an integer or numeric literal, uncast */
    uint32_t type; /* 0: untyped (string literal, NULL, unspecified parameter) */
    PgQuery__Node **slot; /* a column's derived table (NULL: read as is) */
    const PgwSchemaTable *t;
    const char *colname;
} Operand;

static uint32_t literal_type(const PgQuery__AConst *c, bool *numeric, bool *ok)
{
    *numeric = false;
    *ok = true;
    if (c->isnull)
        return 0;
    switch (c->val_case) {
    case PG_QUERY__A__CONST__VAL_IVAL:
        *numeric = true;
        return OID_INT4;
    case PG_QUERY__A__CONST__VAL_FVAL: {
        /* libpg_query keeps an integer too large for int4 as a Float. */
        const char *s = c->fval->fval;
        const char *p = s + (*s == '-' || *s == '+');
        *numeric = true;
        if (*p != '\0' && strspn(p, "0123456789") == strlen(p)) {
            errno = 0;
            (void)strtoll(s, NULL, 10);
            return errno == 0 ? OID_INT8 : OID_NUMERIC;
        }
        return OID_NUMERIC;
    }
    case PG_QUERY__A__CONST__VAL_SVAL:
        return 0;
    case PG_QUERY__A__CONST__VAL_BOOLVAL:
        return OID_BOOL;
    default: /* bit strings */
        *ok = false;
        return 0;
    }
}

/* The type a cast names; 0 when it is not a built-in type we know. */
static uint32_t cast_type(const Rewrite *rw, const PgQuery__TypeName *tn)
{
    if (tn == NULL || tn->n_names == 0 || tn->n_names > 2 || tn->setof || tn->pct_type)
        return 0;
    if (tn->n_names == 2) {
        const char *ns = string_field(tn->names[0]);
        if (ns == NULL || strcmp(ns, "pg_catalog") != 0)
            return 0;
    } else if (!policy_catalog_first(rw->ctx->cfg)) {
        return 0; /* an unqualified name could resolve outside pg_catalog */
    }
    const char *name = string_field(tn->names[tn->n_names - 1]);
    return name != NULL ? type_by_name(name, tn->n_array_bounds > 0) : 0;
}

static uint32_t param_type(const Rewrite *rw, int number)
{
    const PgwPolicyCtx *ctx = rw->ctx;
    if (number < 1 || (size_t)number > ctx->nparam_types || ctx->param_types == NULL)
        return 0;
    return ctx->param_types[number - 1];
}

static Operand operand(const Walk *w, const PgQuery__Node *n)
{
    Operand o = {0};
    Rewrite *rw = w->rw;
    if (NODE(n, COLUMN_REF)) {
        Hit hit;
        if (!resolve_ref(rw, w->level, n->column_ref, &hit) || hit.col == NULL || !hit.plain ||
            hit.col->type_oid == 0)
            return o;
        if (hit.slot != NULL) {
            /* A masked column is an expression in the derived table. */
            const PgwTablePolicy *tp =
                policy_table_policy(rw->ctx->cfg, hit.t->schema, hit.t->name);
            if (tp != NULL && policy_column_mask(tp, hit.col->name) != NULL)
                return o;
        }
        o.ok = o.column = true;
        o.type = hit.col->type_oid;
        o.slot = hit.slot;
        o.t = hit.t;
        o.colname = hit.col->name;
        return o;
    }
    if (NODE(n, A_CONST)) {
        bool ok;
        o.type = literal_type(n->a_const, &o.numeric_literal, &ok);
        o.ok = ok;
        if (rw->ctx->params_are_literals)
            o.numeric_literal = o.numeric_literal && o.ok;
        return o;
    }
    if (NODE(n, PARAM_REF)) {
        o.type = param_type(rw, n->param_ref->number);
        o.ok = true;
        /* The rewrite cache's templates: the parameter stands for the
         * numeric literal that was lifted out of the text. */
        o.numeric_literal = rw->ctx->params_are_literals && o.type != 0;
        return o;
    }
    if (NODE(n, TYPE_CAST)) {
        const PgQuery__TypeCast *tc = n->type_cast;
        uint32_t t = cast_type(rw, tc->type_name);
        if (t == 0)
            return o;
        const PgQuery__Node *a = tc->arg;
        if (NODE(a, A_CONST)) {
            bool numeric, ok;
            (void)literal_type(a->a_const, &numeric, &ok);
            if (!ok)
                return o;
            /* A string or NULL is converted by the parser; a number only to
             * a numeric or text type (immutable casts, folded at plan
             * time). */
            char cat = type_category(t);
            if (numeric && cat != 'N' && t != OID_TEXT && t != OID_VARCHAR)
                return o;
        } else if (NODE(a, PARAM_REF)) {
            uint32_t declared = param_type(rw, a->param_ref->number);
            if (declared != 0 && declared != t)
                return o; /* converted at run time: could fail */
        } else {
            return o;
        }
        o.ok = true;
        o.type = t;
        return o;
    }
    return o;
}

static void need(Rewrite *rw, const Operand *o)
{
    if (!o->column || o->slot == NULL)
        return;
    if (rw->nneeds == rw->needs_cap) {
        rw->needs_cap = rw->needs_cap > 0 ? rw->needs_cap * 2 : 16;
        rw->needs = pgw_realloc(rw->needs, rw->needs_cap * sizeof(*rw->needs));
    }
    rw->needs[rw->nneeds++] = (QualNeed){o->slot, o->colname};
}

static uint32_t as_text(uint32_t t)
{
    return t == OID_VARCHAR ? OID_TEXT : t;
}

/* Would PostgreSQL evaluate l op r with a leak-proof built-in operator and
 * convert neither column? */
static bool comparison_ok(const Rewrite *rw, const char *op, const Operand *l, const Operand *r)
{
    if (!l->ok || !r->ok)
        return false;
    const PgwSchema *s = rw->ctx->schema;
    uint32_t lt = l->type, rt = r->type;
    if (lt == 0 && rt == 0)
        lt = rt = OID_TEXT;
    else if (lt == 0)
        lt = rt;
    else if (rt == 0)
        rt = lt;
    if (schema_leakproof_operator(s, op, lt, rt))
        return true;
    /* varchar has no comparison operators of its own: text's are used. */
    if ((as_text(lt) != lt || as_text(rt) != rt) &&
        schema_leakproof_operator(s, op, as_text(lt), as_text(rt)))
        return true;
    /* A float column against a number literal: the literal is converted
     * (once, at plan time) and the float operator used; likewise an oid
     * column against an integer literal. */
    if (l->column && r->numeric_literal && (lt == OID_FLOAT8 || lt == OID_FLOAT4))
        return schema_leakproof_operator(s, op, lt, OID_FLOAT8);
    if (r->column && l->numeric_literal && (rt == OID_FLOAT8 || rt == OID_FLOAT4))
        return schema_leakproof_operator(s, op, OID_FLOAT8, rt);
    if (l->column && r->numeric_literal && lt == OID_OID && (rt == OID_INT4 || rt == OID_INT8))
        return schema_leakproof_operator(s, op, OID_OID, OID_OID);
    if (r->column && l->numeric_literal && rt == OID_OID && (lt == OID_INT4 || lt == OID_INT8))
        return schema_leakproof_operator(s, op, OID_OID, OID_OID);
    return false;
}

static bool comparison_ok_nodes(Walk *w, const char *op, const PgQuery__Node *ln,
                                const PgQuery__Node *rn)
{
    Operand l = operand(w, ln), r = operand(w, rn);
    if (!comparison_ok(w->rw, op, &l, &r))
        return false;
    need(w->rw, &l);
    need(w->rw, &r);
    return true;
}

static const char *const comparison_ops[] = {"=", "<>", "<", ">", "<=", ">="};

/* The operator of an A_Expr, if it is a built-in one (bare or
 * pg_catalog-qualified). */
static const char *builtin_op(const PgQuery__AExpr *e)
{
    if (e->n_name == 0 || e->n_name > 2)
        return NULL;
    if (e->n_name == 2) {
        const char *ns = string_field(e->name[0]);
        if (ns == NULL || strcmp(ns, "pg_catalog") != 0)
            return NULL;
    }
    return string_field(e->name[e->n_name - 1]);
}

/* The common type PostgreSQL picks for an IN list's left operand and its
 * constants (select_common_type), for the types this analysis knows; 0 when
 * it cannot be known. */
static uint32_t common_type(uint32_t lt, const uint32_t *types, size_t n)
{
    uint32_t t = lt;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = types[i];
        if (u == 0 || u == t)
            continue;
        if (t == 0) {
            t = u;
            continue;
        }
        int a = numeric_rank(t), b = numeric_rank(u);
        if (a >= 0 && b >= 0) {
            if (b > a)
                t = u;
            continue;
        }
        if (type_category(t) == 'S' && type_category(u) == 'S' && as_text(t) == as_text(u))
            continue; /* varchar and text: either way the text operators */
        return 0;
    }
    return t;
}

static bool in_list_ok(Walk *w, const char *op, const PgQuery__AExpr *e)
{
    if (!NODE(e->rexpr, LIST))
        return false;
    const PgQuery__List *list = e->rexpr->list;
    if (list->n_items == 1)
        return comparison_ok_nodes(w, op, e->lexpr, list->items[0]);
    Operand l = operand(w, e->lexpr);
    if (!l.ok || l.type == 0)
        return false;
    uint32_t *types = pgw_malloc((list->n_items + 1) * sizeof(*types));
    bool ok = true;
    for (size_t i = 0; i < list->n_items && ok; i++) {
        Operand c = operand(w, list->items[i]);
        ok = c.ok && !c.column;
        types[i] = c.type;
    }
    uint32_t t = ok ? common_type(l.type, types, list->n_items) : 0;
    free(types);
    if (t == 0)
        return false;
    Operand r = {.ok = true, .type = t};
    if (!comparison_ok(w->rw, op, &l, &r))
        return false;
    need(w->rw, &l);
    return true;
}

/* col op ANY/ALL (array): a constant array, an array literal or an array
 * parameter. */
static bool array_op_ok(Walk *w, const char *op, const PgQuery__AExpr *e)
{
    Operand l = operand(w, e->lexpr);
    if (!l.ok)
        return false;
    const PgQuery__Node *r = e->rexpr;
    Operand elem = {.ok = true};
    if (NODE(r, A_ARRAY_EXPR)) {
        const PgQuery__AArrayExpr *a = r->a_array_expr;
        if (a->n_elements == 0)
            return false;
        uint32_t *types = pgw_malloc(a->n_elements * sizeof(*types));
        bool ok = true;
        for (size_t i = 0; i < a->n_elements && ok; i++) {
            Operand c = operand(w, a->elements[i]);
            ok = c.ok && !c.column;
            types[i] = c.type;
        }
        /* ARRAY[...] of untyped literals is text[]. */
        uint32_t t = ok ? common_type(0, types, a->n_elements) : 0;
        free(types);
        if (!ok)
            return false;
        elem.type = t != 0 ? t : OID_TEXT;
    } else {
        Operand arr = operand(w, r);
        if (!arr.ok || arr.column)
            return false;
        if (arr.type != 0) {
            elem.type = element_type(arr.type);
            if (elem.type == 0)
                return false;
        }
        /* An untyped literal or parameter: an array of the column's type. */
    }
    if (!comparison_ok(w->rw, op, &l, &elem))
        return false;
    need(w->rw, &l);
    return true;
}

static bool between_ok(Walk *w, const PgQuery__AExpr *e)
{
    if (!NODE(e->rexpr, LIST) || e->rexpr->list->n_items != 2)
        return false;
    PgQuery__Node *lo = e->rexpr->list->items[0], *hi = e->rexpr->list->items[1];
    if (operand(w, lo).column || operand(w, hi).column)
        return false;
    bool negated = e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN ||
                   e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN_SYM;
    bool symmetric = e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN_SYM ||
                     e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN_SYM;
    const char *ge = negated ? "<" : ">=", *le = negated ? ">" : "<=";
    if (!comparison_ok_nodes(w, ge, e->lexpr, lo) || !comparison_ok_nodes(w, le, e->lexpr, hi))
        return false;
    return !symmetric ||
           (comparison_ok_nodes(w, ge, e->lexpr, hi) && comparison_ok_nodes(w, le, e->lexpr, lo));
}

static int ptr_cmp(const void *a, const void *b)
{
    const void *x = *(const void *const *)a, *y = *(const void *const *)b;
    return (x > y) - (x < y);
}

/* An ANY sublink whose test passed at walk time (see policy_expr.c). */
static bool safe_sublink(Rewrite *rw, const PgQuery__SubLink *sl)
{
    if (rw->nsafe_sublinks == 0)
        return false;
    if (!rw->safe_sublinks_sorted) {
        qsort(rw->safe_sublinks, rw->nsafe_sublinks, sizeof(*rw->safe_sublinks), ptr_cmp);
        rw->safe_sublinks_sorted = true;
    }
    return bsearch(&sl, rw->safe_sublinks, rw->nsafe_sublinks, sizeof(*rw->safe_sublinks),
                   ptr_cmp) != NULL;
}

/* Shape (a). */
static bool shape_ok(Walk *w, const PgQuery__Node *n)
{
    if (n == NULL)
        return true;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_BOOL_EXPR:
        for (size_t i = 0; i < n->bool_expr->n_args; i++)
            if (!shape_ok(w, n->bool_expr->args[i]))
                return false;
        return true;
    case PG_QUERY__NODE__NODE_A_CONST:
    case PG_QUERY__NODE__NODE_PARAM_REF:
    case PG_QUERY__NODE__NODE_TYPE_CAST: {
        Operand o = operand(w, n);
        return o.ok && !o.column;
    }
    case PG_QUERY__NODE__NODE_COLUMN_REF: {
        Operand o = operand(w, n);
        if (!o.ok || o.type != OID_BOOL)
            return false;
        need(w->rw, &o);
        return true;
    }
    case PG_QUERY__NODE__NODE_NULL_TEST:
    case PG_QUERY__NODE__NODE_BOOLEAN_TEST: {
        const PgQuery__Node *arg = NODE(n, NULL_TEST) ? n->null_test->arg : n->boolean_test->arg;
        Operand o = operand(w, arg);
        if (!o.ok)
            return false;
        need(w->rw, &o);
        return true;
    }
    case PG_QUERY__NODE__NODE_SUB_LINK: {
        const PgQuery__SubLink *sl = n->sub_link;
        if (sl->sub_link_type == PG_QUERY__SUB_LINK_TYPE__EXISTS_SUBLINK)
            return true;
        return sl->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ANY_SUBLINK && safe_sublink(w->rw, sl);
    }
    case PG_QUERY__NODE__NODE_A_EXPR: {
        const PgQuery__AExpr *e = n->a_expr;
        const char *op = builtin_op(e);
        switch (e->kind) {
        case PG_QUERY__A__EXPR__KIND__AEXPR_OP:
            return op != NULL && e->lexpr != NULL && IN_LIST(comparison_ops, op) &&
                   comparison_ok_nodes(w, op, e->lexpr, e->rexpr);
        case PG_QUERY__A__EXPR__KIND__AEXPR_DISTINCT:
        case PG_QUERY__A__EXPR__KIND__AEXPR_NOT_DISTINCT:
            return op != NULL && strcmp(op, "=") == 0 &&
                   comparison_ok_nodes(w, "=", e->lexpr, e->rexpr);
        case PG_QUERY__A__EXPR__KIND__AEXPR_IN:
            return op != NULL && IN_LIST(comparison_ops, op) && in_list_ok(w, op, e);
        case PG_QUERY__A__EXPR__KIND__AEXPR_OP_ANY:
        case PG_QUERY__A__EXPR__KIND__AEXPR_OP_ALL:
            return op != NULL && IN_LIST(comparison_ops, op) && array_op_ok(w, op, e);
        case PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN:
        case PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN:
        case PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN_SYM:
        case PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN_SYM:
            return between_ok(w, e);
        default:
            return false;
        }
    }
    default:
        return false;
    }
}

/* ---- rule (b): nothing protected is read ---- */

typedef struct Harmless {
    Walk *w;
    bool ok;
    bool saw_column;
    bool saw_call;
} Harmless;

static int harmless_visit(PgQuery__Node **slot, void *arg)
{
    Harmless *h = arg;
    const PgQuery__Node *n = *slot;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_SUB_LINK:
    case PG_QUERY__NODE__NODE_SELECT_STMT:
        h->ok = false;
        return -1;
    case PG_QUERY__NODE__NODE_COLUMN_REF: {
        Hit hit;
        h->saw_column = true;
        if (!resolve_ref(h->w->rw, h->w->level, n->column_ref, &hit) || hit.t == NULL ||
            hit.slot != NULL) {
            h->ok = false;
            return -1;
        }
        return 0;
    }
    case PG_QUERY__NODE__NODE_FUNC_CALL:
    case PG_QUERY__NODE__NODE_SQLVALUE_FUNCTION:
        h->saw_call = true;
        break;
    default:
        break;
    }
    return policy_walk_children(policy_walk_inner(*slot), harmless_visit, arg);
}

static bool reads_nothing_protected(Walk *w, PgQuery__Node **slot)
{
    Harmless h = {w, true, false, false};
    if (harmless_visit(slot, &h) < 0 || !h.ok)
        return false;
    /* Without a column a qual is evaluated once, unless it is volatile,
     * which may put it on a scan: then it must not call anything. */
    return h.saw_column || !h.saw_call;
}

static void check_conjunct(Walk *w, PgQuery__Node **slot)
{
    if (w->rw->leaky)
        return;
    if (shape_ok(w, *slot))
        return;
    if (!w->level->strict && reads_nothing_protected(w, slot))
        return;
    w->rw->leaky = true;
}

static void check_conjuncts(Walk *w, PgQuery__Node **slot)
{
    PgQuery__Node *n = *slot;
    if (NODE(n, BOOL_EXPR) && n->bool_expr->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR) {
        for (size_t i = 0; i < n->bool_expr->n_args; i++)
            check_conjuncts(w, &n->bool_expr->args[i]);
        return;
    }
    check_conjunct(w, slot);
}

void qual_check_root(Walk *w, PgQuery__Node *qual)
{
    if (qual == NULL || w->rw->leaky)
        return;
    if (w->rw->ctx->schema == NULL) {
        w->rw->leaky = true;
        return;
    }
    PgQuery__Node *slot = qual;
    check_conjuncts(w, &slot);
}

/* ---- HAVING ---- */

typedef struct AggFind {
    bool found;
} AggFind;

static int agg_visit(PgQuery__Node **slot, void *arg)
{
    AggFind *f = arg;
    const PgQuery__Node *n = *slot;
    if (NODE(n, SUB_LINK) || NODE(n, SELECT_STMT))
        return 0;
    if (NODE(n, FUNC_CALL)) {
        const PgQuery__FuncCall *fc = n->func_call;
        const char *name =
            fc->n_funcname > 0 ? string_field(fc->funcname[fc->n_funcname - 1]) : NULL;
        const char *ns = fc->n_funcname == 2 ? string_field(fc->funcname[0]) : NULL;
        if (fc->n_funcname <= 2 && name != NULL && (ns == NULL || strcmp(ns, "pg_catalog") == 0) &&
            policy_builtin_aggregate(name)) {
            f->found = true;
            return -1;
        }
    }
    return policy_walk_children(policy_walk_inner(*slot), agg_visit, arg);
}

bool qual_has_aggregate(PgQuery__Node **slot)
{
    AggFind f = {false};
    (void)agg_visit(slot, &f);
    return f.found;
}

/* ---- strict levels: every expression position ---- */

void qual_check_value(Walk *w, PgQuery__Node *n)
{
    if (n == NULL || n->node_case == PG_QUERY__NODE__NODE__NOT_SET || w->rw->leaky)
        return;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_RES_TARGET:
        qual_check_value(w, n->res_target->val);
        return;
    case PG_QUERY__NODE__NODE_SORT_BY:
        if (n->sort_by->n_use_op > 0)
            w->rw->leaky = true;
        qual_check_value(w, n->sort_by->node);
        return;
    case PG_QUERY__NODE__NODE_COLUMN_REF:
        /* Any reference: a column or a row of the level's items, whose
         * masks cannot fail. */
        return;
    case PG_QUERY__NODE__NODE_FUNC_CALL: {
        /* count() cannot fail; everything else might. */
        const PgQuery__FuncCall *fc = n->func_call;
        const char *name =
            fc->n_funcname > 0 ? string_field(fc->funcname[fc->n_funcname - 1]) : NULL;
        const char *ns = fc->n_funcname == 2 ? string_field(fc->funcname[0]) : NULL;
        if (name == NULL || strcmp(name, "count") != 0 || fc->n_funcname > 2 ||
            (ns != NULL && strcmp(ns, "pg_catalog") != 0) || fc->over != NULL ||
            fc->agg_filter != NULL || fc->n_agg_order > 0) {
            w->rw->leaky = true;
            return;
        }
        for (size_t i = 0; i < fc->n_args; i++)
            qual_check_value(w, fc->args[i]);
        return;
    }
    default: {
        PgQuery__Node *slot = n;
        if (!shape_ok(w, slot))
            w->rw->leaky = true;
    }
    }
}

/* ---- JOIN ... USING ---- */

static bool using_side(Walk *w, size_t from, size_t to, const char *col, Operand *o)
{
    const QualItem *found = NULL;
    const PgwSchemaColumn *fc = NULL;
    for (size_t i = from; i < to; i++) {
        const QualItem *it = &w->level->items[i];
        if (it->t == NULL)
            return false; /* an opaque item could supply it */
        const PgwSchemaColumn *c = item_column(w->rw, it, col);
        if (c == NULL)
            continue;
        if (found != NULL)
            return false;
        found = it;
        fc = c;
    }
    if (found == NULL || !found->plain || fc->type_oid == 0)
        return false;
    if (found->slot != NULL) {
        const PgwTablePolicy *tp =
            policy_table_policy(w->rw->ctx->cfg, found->t->schema, found->t->name);
        if (tp != NULL && policy_column_mask(tp, fc->name) != NULL)
            return false;
    }
    *o = (Operand){.ok = true,
                   .column = true,
                   .type = fc->type_oid,
                   .slot = found->slot,
                   .t = found->t,
                   .colname = fc->name};
    return true;
}

int qual_check_using(Walk *w, const PgQuery__JoinExpr *j, size_t lo, size_t mid)
{
    size_t hi = w->level->nitems;
    for (size_t i = 0; i < j->n_using_clause; i++) {
        const char *col = string_field(j->using_clause[i]);
        Operand l = {0}, r = {0};
        bool typed =
            col != NULL && using_side(w, lo, mid, col, &l) && using_side(w, mid, hi, col, &r);
        if (qual_check_implicit_types(w, "=", typed ? &l : NULL, typed ? &r : NULL,
                                      "JOIN ... USING") < 0)
            return -1;
        if (!typed || !comparison_ok(w->rw, "=", &l, &r)) {
            w->rw->leaky = true;
            continue;
        }
        need(w->rw, &l);
        need(w->rw, &r);
    }
    return 0;
}

/* ---- operators the grammar names implicitly (class 2) ---- */

int qual_check_implicit_types(Walk *w, const char *name, const void *lp, const void *rp,
                              const char *construct)
{
    Rewrite *rw = w->rw;
    const Operand *l = lp, *r = rp;
    const char *shadow = NULL;
    for (size_t i = 0; i < rw->nsearch_path && shadow == NULL; i++)
        if (schema_user_operator(rw->ctx->schema, rw->search_path[i], name))
            shadow = rw->search_path[i];
    if (shadow == NULL)
        return 0;
    /* pg_catalog is searched first and has the exact operator: it wins. */
    if (policy_catalog_first(rw->ctx->cfg) && l != NULL && r != NULL && l->ok && r->ok &&
        l->type != 0 && r->type != 0 &&
        schema_leakproof_operator(rw->ctx->schema, name, l->type, r->type))
        return 0;
    return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                         "Write the comparison with OPERATOR(pg_catalog.op), e.g. x "
                         "OPERATOR(pg_catalog.=) ANY (ARRAY[...]).",
                         "pgwarden: %s would look up operator %s on the search_path, where schema "
                         "\"%s\" defines one",
                         construct, name, shadow);
}

int qual_check_implicit_operator(Walk *w, const char *name, const PgQuery__Node *l,
                                 const PgQuery__Node *r, const char *construct)
{
    Operand lo = l != NULL ? operand(w, l) : (Operand){0};
    Operand ro = r != NULL ? operand(w, r) : (Operand){0};
    return qual_check_implicit_types(w, name, l != NULL ? &lo : NULL, r != NULL ? &ro : NULL,
                                     construct);
}

/* The type of a sublink's single output column, when it is a plain column
 * of a base relation of the subquery's level (see policy_walk_select). */
uint32_t qual_output_type(Walk *w, const PgQuery__Node *target)
{
    if (!NODE(target, RES_TARGET))
        return 0;
    Operand o = operand(w, target->res_target->val);
    if (!o.ok || !o.column)
        return 0;
    need(w->rw, &o);
    return o.type;
}

bool qual_sublink_test_ok(Walk *w, const PgQuery__SubLink *sl, uint32_t out_type)
{
    if (out_type == 0 || sl->testexpr == NULL)
        return false;
    const char *op = "=";
    if (sl->n_oper_name == 2 && string_field(sl->oper_name[0]) != NULL &&
        strcmp(string_field(sl->oper_name[0]), "pg_catalog") == 0)
        op = string_field(sl->oper_name[1]);
    else if (sl->n_oper_name == 1)
        op = string_field(sl->oper_name[0]);
    else if (sl->n_oper_name != 0)
        return false;
    if (op == NULL || !IN_LIST(comparison_ops, op))
        return false;
    Operand l = operand(w, sl->testexpr);
    Operand r = {.ok = true, .column = false, .type = out_type};
    if (!comparison_ok(w->rw, op, &l, &r))
        return false;
    need(w->rw, &l);
    return true;
}

/* ---- functional notation (class 2) ---- */

static bool system_column(const char *name)
{
    static const char *const names[] = {"tableoid", "ctid", "xmin", "xmax", "cmin", "cmax"};
    return IN_LIST(names, name);
}

/* Could f(x) with one argument resolve to some function: a built-in, or
 * one in a schema of the search_path (user_only: not pg_catalog's, whose
 * one-argument functions cannot take a record)? */
static bool callable(const Rewrite *rw, const char *name, bool user_only)
{
    const PgwSchema *s = rw->ctx->schema;
    if (s == NULL)
        return true;
    if (!user_only && schema_unary_function(s, "pg_catalog", name))
        return true;
    for (size_t i = 0; i < rw->nsearch_path; i++)
        if (schema_unary_function(s, rw->search_path[i], name))
            return true;
    return false;
}

/* The names a function in FROM gives its columns. */
static bool function_column(const PgQuery__RangeFunction *rf, const QualItem *it, const char *name)
{
    if (it->alias != NULL && it->alias->n_colnames > 0) {
        for (size_t i = 0; i < it->alias->n_colnames; i++) {
            const char *c = string_field(it->alias->colnames[i]);
            if (c != NULL && strcmp(c, name) == 0)
                return true;
        }
        return false;
    }
    if (it->name != NULL && strcmp(it->name, name) == 0)
        return true;
    for (size_t i = 0; i < rf->n_coldeflist; i++)
        if (NODE(rf->coldeflist[i], COLUMN_DEF) &&
            strcmp(rf->coldeflist[i]->column_def->colname, name) == 0)
            return true;
    return false;
}

static int refuse_column(Rewrite *rw, const char *rel, const char *col)
{
    return policy_refuse(rw, SQLSTATE_UNDEFINED_COLUMN,
                         "pgwarden does not let rel.f or (x).f call a function f; call it as f(x).",
                         "column %s.%s does not exist", rel, col);
}

int qual_check_column_ref(Walk *w, const PgQuery__ColumnRef *cr)
{
    size_t nf = cr->n_fields;
    if (nf < 2 || nf > 3 || NODE(cr->fields[nf - 1], A_STAR))
        return 0;
    const char *col = string_field(cr->fields[nf - 1]);
    const char *rel = string_field(cr->fields[nf - 2]);
    const char *ns = nf == 3 ? string_field(cr->fields[0]) : NULL;
    if (col == NULL || rel == NULL || (nf == 3 && ns == NULL))
        return 0;
    for (const QualLevel *lv = w->level; lv != NULL; lv = lv->up) {
        for (size_t i = 0; i < lv->nitems; i++) {
            const QualItem *it = &lv->items[i];
            if (it->name == NULL || strcmp(it->name, rel) != 0)
                continue;
            if (ns != NULL && (it->t == NULL || strcmp(it->t->schema, ns) != 0))
                continue;
            if (it->t != NULL) {
                /* Not a column the snapshot knows: PostgreSQL says "no such
                 * column" unless a function by that name takes the row (a
                 * column added since the snapshot still works). */
                if (item_column(w->rw, it, col) == NULL && !system_column(col) &&
                    callable(w->rw, col, false))
                    return refuse_column(w->rw, rel, col);
                return 0;
            }
            if (it->func != NULL) {
                if (!function_column(it->func, it, col) && callable(w->rw, col, false))
                    return refuse_column(w->rw, rel, col);
                return 0;
            }
            Hit h;
            int look = item_lookup(w->rw, it, col, &h);
            if (look == LOOK_BASE || look == LOOK_UNKNOWN)
                return 0; /* one of its output columns */
            /* A subquery, CTE, VALUES or join row is a record: only a
             * function of the search_path could take it. */
            if (callable(w->rw, col, true))
                return refuse_column(w->rw, rel, col);
            return 0;
        }
    }
    return 0;
}

int qual_check_indirection(Walk *w, const PgQuery__AIndirection *ind)
{
    for (size_t i = 0; i < ind->n_indirection; i++) {
        const char *field = string_field(ind->indirection[i]);
        if (field == NULL)
            continue; /* a subscript or .* */
        bool field_for_sure = false;
        if (i == 0 && NODE(ind->arg, COLUMN_REF) && ind->arg->column_ref->n_fields == 1) {
            /* (c).col for a FROM item c whose columns are known */
            Hit hit;
            if (resolve_ref(w->rw, w->level, ind->arg->column_ref, &hit) && hit.col == NULL &&
                hit.item->t != NULL)
                field_for_sure = item_column(w->rw, hit.item, field) != NULL;
        }
        if (i == 0 && NODE(ind->arg, FUNC_CALL) && ind->arg->func_call->n_funcname == 2) {
            /* pgjdbc: (information_schema._pg_expandarray(...)).n */
            const char *ns = string_field(ind->arg->func_call->funcname[0]);
            const char *fn = string_field(ind->arg->func_call->funcname[1]);
            field_for_sure = ns != NULL && fn != NULL && strcmp(ns, "information_schema") == 0 &&
                             strcmp(fn, "_pg_expandarray") == 0 &&
                             (strcmp(field, "x") == 0 || strcmp(field, "n") == 0);
        }
        if (!field_for_sure && callable(w->rw, field, false))
            return refuse_column(w->rw, "(...)", field);
    }
    return 0;
}

/* ---- output columns of derived tables and CTEs ---- */

static void add_column(QualColumns *out, const char *name, const Hit *hit)
{
    if (out->n == out->cap) {
        out->cap = out->cap > 0 ? out->cap * 2 : 8;
        out->cols = pgw_realloc(out->cols, out->cap * sizeof(*out->cols));
    }
    QualColumn *c = &out->cols[out->n++];
    memset(c, 0, sizeof(*c));
    c->name = name;
    if (hit != NULL && hit->col != NULL && hit->t != NULL) {
        c->t = hit->t;
        c->col = hit->col;
        c->slot = hit->slot;
        c->plain = hit->plain;
    }
}

/* Every column item it shows, for SELECT * and it.* */
static bool add_item_columns(const Rewrite *rw, const QualItem *it, QualColumns *out)
{
    if (it->t != NULL) {
        const PgwTablePolicy *tp =
            it->skip_hidden ? policy_table_policy(rw->ctx->cfg, it->t->schema, it->t->name) : NULL;
        size_t k = 0;
        for (size_t i = 0; i < it->t->ncolumns; i++) {
            const PgwSchemaColumn *c = &it->t->columns[i];
            const PgwColumnMask *m = tp != NULL ? policy_column_mask(tp, c->name) : NULL;
            if (m != NULL && m->kind == PGW_MASK_HIDE)
                continue;
            const char *shown = c->name;
            if (it->alias != NULL && k < it->alias->n_colnames &&
                string_field(it->alias->colnames[k]) != NULL)
                shown = string_field(it->alias->colnames[k]);
            k++;
            Hit h = {it, it->t, c, it->slot, it->plain};
            add_column(out, shown, &h);
        }
        return true;
    }
    if (it->cols != NULL && it->cols->complete) {
        for (size_t i = 0; i < it->cols->n; i++) {
            const QualColumn *qc = &it->cols->cols[i];
            Hit h = {it, qc->t, qc->col, qc->slot, qc->plain};
            add_column(out, qc->name, qc->t != NULL ? &h : NULL);
        }
        return true;
    }
    return false;
}

void qual_output_columns(Walk *w, const PgQuery__SelectStmt *s, const PgQuery__Alias *alias,
                         QualColumns *out)
{
    memset(out, 0, sizeof(*out));
    if (s->larg != NULL || s->rarg != NULL || s->n_values_lists > 0)
        return; /* set operations and VALUES: opaque */
    out->complete = true;
    for (size_t i = 0; i < s->n_target_list; i++) {
        const PgQuery__Node *t = s->target_list[i];
        if (!NODE(t, RES_TARGET)) {
            out->complete = false;
            continue;
        }
        const PgQuery__ResTarget *rt = t->res_target;
        const char *name = rt->name[0] != '\0' ? rt->name : NULL;
        const PgQuery__Node *v = rt->val;
        if (NODE(v, COLUMN_REF) && v->column_ref->n_fields > 0 &&
            NODE(v->column_ref->fields[v->column_ref->n_fields - 1], A_STAR)) {
            const PgQuery__ColumnRef *cr = v->column_ref;
            if (cr->n_fields == 1) {
                for (size_t k = 0; k < w->level->nitems; k++)
                    if (!add_item_columns(w->rw, &w->level->items[k], out))
                        out->complete = false;
            } else {
                Hit h;
                if (!resolve_ref(w->rw, w->level, cr, &h) || h.item == NULL ||
                    !add_item_columns(w->rw, h.item, out))
                    out->complete = false;
            }
            continue;
        }
        if (NODE(v, COLUMN_REF)) {
            const PgQuery__ColumnRef *cr = v->column_ref;
            if (name == NULL)
                name = string_field(cr->fields[cr->n_fields - 1]);
            Hit h;
            bool ok = resolve_ref(w->rw, w->level, cr, &h) && h.col != NULL;
            add_column(out, name, ok ? &h : NULL);
            continue;
        }
        if (name == NULL && NODE(v, FUNC_CALL) && v->func_call->n_funcname > 0)
            name = string_field(v->func_call->funcname[v->func_call->n_funcname - 1]);
        if (name == NULL) {
            out->complete = false; /* PostgreSQL names it; we would have to guess */
            continue;
        }
        add_column(out, name, NULL);
    }
    if (alias != NULL)
        qual_rename_columns(out, alias->colnames, alias->n_colnames);
}

void qual_rename_columns(QualColumns *cols, PgQuery__Node *const *names, size_t n)
{
    for (size_t i = 0; i < n && i < cols->n; i++) {
        const char *c = string_field(names[i]);
        if (c != NULL)
            cols->cols[i].name = c;
    }
    if (n > cols->n)
        cols->complete = false;
}

/* ------------------------------------------------------------------------ */
/* Deferred checks on the parsed replacements                                 */
/* ------------------------------------------------------------------------ */

typedef struct SlotIndex {
    PgQuery__Node **slot;
    size_t index;
} SlotIndex;

static int slot_cmp(const void *a, const void *b)
{
    const SlotIndex *x = a, *y = b;
    return (x->slot > y->slot) - (x->slot < y->slot);
}

/* Does body select column unchanged (SELECT *, or "column" AS column)? */
static bool passes_through(const PgQuery__SelectStmt *body, const char *column)
{
    for (size_t i = 0; i < body->n_target_list; i++) {
        const PgQuery__Node *t = body->target_list[i];
        if (!NODE(t, RES_TARGET))
            return false;
        const PgQuery__ResTarget *rt = t->res_target;
        const PgQuery__Node *v = rt->val;
        if (!NODE(v, COLUMN_REF) || v->column_ref->n_fields == 0 || v->column_ref->n_fields > 2)
            continue;
        const PgQuery__ColumnRef *cr = v->column_ref;
        const PgQuery__Node *last = cr->fields[cr->n_fields - 1];
        if (NODE(last, A_STAR)) {
            if (rt->name[0] == '\0')
                return true;
            continue;
        }
        const char *src = string_field(last);
        const char *shown = rt->name[0] != '\0' ? rt->name : src;
        if (src != NULL && shown != NULL && strcmp(shown, column) == 0)
            return strcmp(src, column) == 0;
    }
    return false;
}

void qual_check_needs(Rewrite *rw, PgQuery__SelectStmt *const *bodies)
{
    if (rw->nneeds == 0 || rw->leaky)
        return;
    SlotIndex *idx = pgw_malloc(rw->nrepl * sizeof(*idx));
    for (size_t i = 0; i < rw->nrepl; i++)
        idx[i] = (SlotIndex){rw->repl[i].slot, i};
    qsort(idx, rw->nrepl, sizeof(*idx), slot_cmp);
    for (size_t i = 0; i < rw->nneeds && !rw->leaky; i++) {
        SlotIndex key = {rw->needs[i].slot, 0};
        const SlotIndex *hit = bsearch(&key, idx, rw->nrepl, sizeof(*idx), slot_cmp);
        if (hit == NULL || !passes_through(bodies[hit->index], rw->needs[i].column))
            rw->leaky = true;
    }
    free(idx);
}
