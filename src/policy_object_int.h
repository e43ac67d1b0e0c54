/*
 * policy_object_int.h — what policy_object.c (objects named by calls and
 * casts) and policy_object_stmt.c (the statement around them: pre-pass,
 * parameter types, star expansion, the visible sets' WITH) share: the
 * per-statement state and the few tree helpers both use. Private to those
 * files (and policy_object_lit.c); the rest of the policy sees only
 * policy_int.h.
 */
#ifndef PGW_POLICY_OBJECT_INT_H
#define PGW_POLICY_OBJECT_INT_H

#include "policy_catalog.h"
#include "policy_int.h"

/* A wrapper template: SQL text expanded once per statement, parsed once,
 * copied for every use. */
typedef struct Template {
    char *sql; /* "SELECT <expr>" as expanded */
    PgQuery__ParseResult *tree;
} Template;

/* Names a statement uses: which catalog columns it can read. */
typedef struct Names {
    size_t n, cap;
    char **v;
} Names;

struct PgwObjectState {
    PgwCatalogCtx cat;
    size_t ntemplates;
    Template *templates;
    bool params_checked;
    Names columns; /* last fields of column references, USING and COPY lists */
    Names bare; /* one-field column references (maybe a whole-row reference) */
    Names ranges; /* relation names and aliases in FROM */
    Names ctes; /* names of the statement's own CTEs */
    bool all_columns; /* *, t.*, NATURAL, column aliases, a whole-row reference */
    bool acl_literal; /* an untyped literal aclitem input would look a role up in */
};

/* The statement's state, made on first use. */
PgwObjectState *policy_object_state(Rewrite *rw);
void policy_object_free_templates(PgwObjectState *st);

/* sql (a template: %T, %{set}...) expanded and parsed as one expression. */
PGW_WUR int policy_object_expression(Rewrite *rw, const char *sql, PgQuery__Node **out);
/* *slot freed and replaced by with. */
void policy_object_replace_node(PgQuery__Node **slot, PgQuery__Node *with);
/* The output column name n (a generated expression) will have. */
void policy_object_set_output_name(PgQuery__Node *n, const char *name);
/* A type name in a cast (cast) or a declaration: refused when it names a
 * reg* type where that is not allowed, or a hidden relation's row type. */
PGW_WUR int policy_object_check_type_name(Walk *w, const PgQuery__TypeName *tn, bool cast);

/* Replace *slot by the template's expression over *slot (and a2, a3 for
 * the other placeholders). */
PGW_WUR int policy_object_wrap(Rewrite *rw, PgQuery__Node **slot, const char *tmpl,
                               PgQuery__Node *a2, PgQuery__Node *a3);

/* Refused as PostgreSQL answers a missing schema when the tenant cannot
 * see schema; the second: the schema part of a name written as text. */
PGW_WUR int policy_object_check_schema(Rewrite *rw, const char *schema);
PGW_WUR int policy_object_check_literal_schema(Rewrite *rw, const char *text);
/* policy_object_lit.c: untyped literals a reg* input would read (before
 * the walk, on the client's tree). */
PGW_WUR int policy_object_check_reg_literals(Rewrite *rw, PgQuery__Node **stmt);

/* policy_object_reg.c: reg* values checked against the visible sets. */
bool policy_object_reg_operator(const char *regtype); /* regoper, regoperator */
/* A reg* type checked by its catalog's rule: operators, collations, text
 * search configurations and dictionaries. */
bool policy_object_reg_by_rule(const char *regtype);
/* Is name (schema NULL: any) the row type, or "_" + the array type, of a
 * relation of the snapshot with a column whose input looks names up (a
 * reg* type, aclitem, or such a row type)? */
bool policy_object_rowtype_resolves_names(const PgwSchema *sch, const char *schema,
                                          const char *name);
/* Could an untyped string literal, read as aclitem or aclitem[] input,
 * look up a role name other than PUBLIC's or a predefined role's? */
bool policy_object_acl_literal_resolves(const char *text);
/* X read as a cast to regtype would, kept when in answer (a FROM-item
 * template); hidden and missing names fail alike. */
PGW_WUR int policy_object_wrap_resolve(Rewrite *rw, PgQuery__Node **slot, const char *regtype,
                                       const char *exists, const char *answer);
/* The OID of relation text pgwarden_v.r (an OID's digits or a name), 0 for
 * none, found without failing: a hidden and a missing name take the same
 * path to the relation argument's own check (policy_object.c, column_arg). */
#define PGW_REL_BY_TEXT                                                                            \
    "CASE WHEN pgwarden_v.r ~ '^[0-9]+$' THEN pgwarden_v.r::pg_catalog.oid ELSE "                  \
    "COALESCE(pg_catalog.to_regclass(pgwarden_v.r)::pg_catalog.oid, 0::pg_catalog.oid) END"
/* to_<regtype>(X): NULL unless the object is in set. */
PGW_WUR int policy_object_wrap_to_reg(Rewrite *rw, PgQuery__Node **slot, const char *regtype,
                                      const char *set);

#endif
