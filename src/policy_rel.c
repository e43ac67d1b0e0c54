/*
 * policy_rel.c — relation references: how a name in FROM resolves for the
 * tenant and what replaces it.
 *
 * Unqualified names resolve against the CTE scope, then pg_catalog, then the
 * pinned search_path (clients cannot SET it), skipping relations the tenant
 * may not read, so a hidden relation is indistinguishable from a missing one:
 * both get PostgreSQL's own 42P01 message. Each readable base relation with
 * a row filter or masks becomes a derived table
 *     (SELECT c1, ..., <mask> AS cn FROM [ONLY] s.t WHERE <row filter>) AS alias
 * whose SQL is collected here and spliced in by policy.c (one parse for all
 * of a statement's replacements). Catalog relations get the filtered views
 * policy_catalog.c writes. Whether a replacement is fenced is decided by the
 * leak analysis (policy_qual.c), not here; this file tells it what each FROM
 * item is (a base relation with known columns, replaced or read as is, or
 * something opaque such as a CTE reference).
 *
 * Sequences are never readable as relations, even the ones a readable
 * table owns, which the virtual catalog lists: a sequence is shared by
 * every tenant writing the table, and its last_value, log_cnt and is_called
 * (like nextval, currval and setval, which are not allowed functions, and
 * pg_sequence_last_value, which answers NULL) count the other tenants'
 * rows. Reading one fails closed with the answer a nonexistent relation
 * gets (42P01), so a sequence name tells nothing either way. The snapshot
 * has no sequences (schema.c reads tables, views and their kin only), and
 * a FROM item that resolves to relkind 'S' is refused all the same, so
 * that stays true if the snapshot ever grows them. (A sequence's name in a
 * regclass literal is another matter: it is an object the catalog lists,
 * checked against the visible set at run time like any other.)
 */
#include "policy.h"
#include "policy_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "policy_catalog.h"

/* ------------------------------------------------------------------------ */
/* Policy lookups                                                             */
/* ------------------------------------------------------------------------ */

const PgwTablePolicy *policy_table_policy(const PgwConfig *cfg, const char *schema,
                                          const char *name)
{
    for (size_t i = 0; i < cfg->ntables; i++)
        if (strcmp(cfg->tables[i].schema, schema) == 0 && strcmp(cfg->tables[i].name, name) == 0)
            return &cfg->tables[i];
    return NULL;
}

bool policy_is_catalog_schema(const char *schema)
{
    return strcmp(schema, "pg_catalog") == 0 || strcmp(schema, "information_schema") == 0;
}

/* May the tenant read user relation schema.name (ignoring whether the
 * backend has it)? */
bool policy_relation_readable(const PgwConfig *cfg, const char *schema, const char *name)
{
    const PgwTablePolicy *tp = policy_table_policy(cfg, schema, name);
    if (tp != NULL)
        return !tp->hidden;
    return cfg->default_access == PGW_ACCESS_ALLOW;
}

bool policy_catalog_first(const PgwConfig *cfg)
{
    /* pg_catalog is searched first unless the path names it later. */
    const char *sp = cfg->search_path != NULL ? cfg->search_path : "";
    const char *at = strstr(sp, "pg_catalog");
    if (at == NULL)
        return true;
    for (const char *p = sp; p < at; p++)
        if (*p != ' ' && *p != '"')
            return false;
    return true;
}

int policy_split_search_path(Rewrite *rw)
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

const PgwColumnMask *policy_column_mask(const PgwTablePolicy *tp, const char *column)
{
    if (tp == NULL)
        return NULL;
    for (size_t i = 0; i < tp->nmasks; i++)
        if (strcmp(tp->masks[i].column, column) == 0)
            return &tp->masks[i];
    return NULL;
}

/* hash and partial are meant to keep a value unreadable while equal values
 * stay equal (joins, GROUP BY) or the tail stays recognisable:
 *  - hash is keyed (config_mask_key): md5 over the key and the value, so a
 *    tenant cannot invert it by hashing guessed values itself (an unkeyed
 *    md5 of an e-mail or a name falls to a dictionary at once). The key
 *    only ever travels to the backend inside the rewrite, which no tenant
 *    reads back (EXPLAIN of a masked relation is refused, errors are
 *    scrubbed, pg_stat_activity shows no query text).
 *  - partial shows the last 4 characters only of values of 8 or more, so
 *    at least half of every value stays hidden; shorter values read as x's
 *    of their length (a 4-character value used to show whole). */
static void append_masked_column(PgwBuf *b, const PgwSchemaColumn *c, PgwMaskKind kind,
                                 const char *key)
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
        policy_append_literal(b, key);
        buf_append_str(b, " OPERATOR(pg_catalog.||) ");
        policy_append_ident(b, c->name);
        buf_append_str(b, "::text)");
        break;
    case PGW_MASK_PARTIAL:
        /* CASE WHEN length(v) >= 8 THEN repeat('x', n-4) || right(v, 4)
         * ELSE repeat('x', n) END */
        buf_append_str(b, "CASE WHEN pg_catalog.length(");
        policy_append_ident(b, c->name);
        buf_append_str(b, "::text) OPERATOR(pg_catalog.>=) 8 THEN pg_catalog.repeat('x', "
                          "pg_catalog.length(");
        policy_append_ident(b, c->name);
        buf_append_str(b, "::text) OPERATOR(pg_catalog.-) 4) OPERATOR(pg_catalog.||) "
                          "pg_catalog.\"right\"(");
        policy_append_ident(b, c->name);
        buf_append_str(b, "::text, 4) ELSE pg_catalog.repeat('x', pg_catalog.length(");
        policy_append_ident(b, c->name);
        buf_append_str(b, "::text)) END");
        break;
    case PGW_MASK_HIDE:
        break;
    }
    buf_append_str(b, " AS ");
    policy_append_ident(b, c->name);
}

/* Masks whose value is always NULL: the column is read from NULL_SOURCE,
 * an outer join that never matches, instead of being written as
 * NULL::type. The value is the same NULL of the same type and typmod, but
 * it is now a column of the base table (NULL-extended), so PostgreSQL's
 * RowDescription reports the column's table OID and attribute number, as
 * it does for every column it can follow through derived tables, CTEs
 * and joins to a base table (markTargetListOrigin follows Vars only; an
 * expression, even a NULL constant, has no origin). Clients such as pgjdbc
 * read the table name and nullability from those fields. The source is a
 * subquery whose only output columns are the masked ones under aliases
 * the base table does not have, so the row filter's and the other
 * columns' unqualified names still mean the base table's columns. It reads
 * no row (WHERE false: the planner makes it an empty Result) and the leak
 * analysis treats its columns as it treats expressions: not the base
 * column passed through (passes_through compares the source name). Masks
 * that compute a value (hash, partial, redact of text) stay expressions,
 * so their origin stays 0/0. */
#define NULL_SOURCE "pgwarden_masked"

static bool null_mask(const PgwSchemaColumn *c, PgwMaskKind kind)
{
    return kind == PGW_MASK_NULL || (kind == PGW_MASK_REDACT && !c->is_text);
}

static bool has_column(const PgwSchemaTable *t, const char *name)
{
    for (size_t i = 0; i < t->ncolumns; i++)
        if (strcmp(t->columns[i].name, name) == 0)
            return true;
    return false;
}

/* pgwarden_m<n>, lengthened with '_' until no column of t has the name. */
static void null_alias(const PgwSchemaTable *t, unsigned n, char *out, size_t outlen)
{
    int len = snprintf(out, outlen, "pgwarden_m%u", n);
    while (has_column(t, out) && len > 0 && (size_t)len + 1 < outlen) {
        out[len++] = '_';
        out[len] = '\0';
    }
}

static int add_replacement(Rewrite *rw, PgQuery__Node **slot, PgwBuf *body,
                           const PgQuery__RangeVar *rv)
{
    PgwBuf tail;
    buf_init(&tail);
    buf_append_str(&tail, ") AS ");
    policy_append_ident(&tail, rv->alias != NULL ? rv->alias->aliasname : rv->relname);
    if (rw->nrepl == rw->repl_cap) {
        rw->repl_cap = rw->repl_cap > 0 ? rw->repl_cap * 2 : 8;
        rw->repl = pgw_realloc(rw->repl, rw->repl_cap * sizeof(*rw->repl));
    }
    rw->reads_protected = true;
    rw->repl[rw->nrepl].slot = slot;
    rw->repl[rw->nrepl].body = buf_steal_str(body);
    rw->repl[rw->nrepl].tail = buf_steal_str(&tail);
    rw->nrepl++;
    return 0;
}


/* ------------------------------------------------------------------------ */
/* Relations                                                                  */
/* ------------------------------------------------------------------------ */

const QualColumns *policy_cte_columns(const Scope *scope, const char *name)
{
    for (; scope != NULL; scope = scope->up) {
        if (scope->with == NULL)
            continue;
        for (size_t i = 0; i < scope->nvisible; i++) {
            const PgQuery__Node *n = scope->with->ctes[i];
            if (NODE(n, COMMON_TABLE_EXPR) && strcmp(n->common_table_expr->ctename, name) == 0)
                return scope->cte_cols != NULL ? &scope->cte_cols[i] : NULL;
        }
    }
    return NULL;
}

bool policy_cte_visible(const Scope *scope, const char *name)
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
        return policy_refuse(rw, SQLSTATE_UNDEFINED_TABLE, NULL,
                             "relation \"%s.%s\" does not exist", rv->schemaname, rv->relname);
    return policy_refuse(rw, SQLSTATE_UNDEFINED_TABLE, NULL, "relation \"%s\" does not exist",
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
        return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                             "pgwarden: catalog relation %s.%s is not available", schema,
                             rv->relname);
    if (access == PGW_CATALOG_AS_IS) {
        /* Readable as is; pin the schema so search_path cannot matter. */
        policy_set_string(&rv->schemaname, schema);
        return 0;
    }
    PgwBuf b;
    buf_init(&b);
    if (policy_object_catalog_view(rw, &b, schema, rv->relname) < 0) {
        buf_free(&b);
        return -1;
    }
    return add_replacement(rw, slot, &b, rv);
}

static int rewrite_user_relation(Rewrite *rw, PgQuery__Node **slot, PgQuery__RangeVar *rv,
                                 const PgwSchemaTable *t)
{
    const PgwTablePolicy *tp = policy_table_policy(rw->ctx->cfg, t->schema, t->name);
    bool plain = tp == NULL || (tp->row_filter == NULL && tp->nmasks == 0);

    if (plain) {
        /* Nothing to filter or mask: keep the reference, pinned to the schema
         * we resolved, so the backend reads exactly what we checked. */
        policy_set_string(&rv->schemaname, t->schema);
        policy_set_string(&rv->catalogname, "");
        return 0;
    }
    PgwBuf b, nulls;
    buf_init(&b);
    buf_init(&nulls);
    buf_append_str(&b, "(SELECT ");
    bool first = true;
    unsigned nnull = 0;
    for (size_t i = 0; i < t->ncolumns; i++) {
        const PgwSchemaColumn *c = &t->columns[i];
        const PgwColumnMask *m = policy_column_mask(tp, c->name);
        if (m != NULL && m->kind == PGW_MASK_HIDE)
            continue;
        if (!first)
            buf_append_str(&b, ", ");
        first = false;
        if (m == NULL) {
            policy_append_ident(&b, c->name);
        } else if (null_mask(c, m->kind) && strcmp(t->name, NULL_SOURCE) != 0) {
            char alias[64];
            null_alias(t, ++nnull, alias, sizeof alias);
            buf_printf(&b, "%s.%s AS ", NULL_SOURCE, alias);
            policy_append_ident(&b, c->name);
            buf_append_str(&nulls, nnull > 1 ? ", " : "SELECT ");
            policy_append_ident(&nulls, c->name);
            buf_printf(&nulls, " AS %s", alias);
        } else {
            append_masked_column(&b, c, m->kind, config_mask_key(rw->ctx->cfg));
        }
    }
    buf_append_str(&b, " FROM ");
    if (!rv->inh)
        buf_append_str(&b, "ONLY ");
    policy_append_ident(&b, t->schema);
    buf_append_byte(&b, '.');
    policy_append_ident(&b, t->name);
    if (nnull > 0) {
        buf_append_str(&b, " LEFT JOIN (");
        buf_append(&b, nulls.data, nulls.len);
        buf_append_str(&b, " FROM ONLY ");
        policy_append_ident(&b, t->schema);
        buf_append_byte(&b, '.');
        policy_append_ident(&b, t->name);
        buf_printf(&b, " WHERE false) %s ON false", NULL_SOURCE);
    }
    buf_free(&nulls);
    if (tp->row_filter != NULL && tp->row_filter[0] != '\0') {
        buf_append_str(&b, " WHERE (");
        append_row_filter(&b, tp->row_filter,
                          rw->ctx->tenant->id != NULL ? rw->ctx->tenant->id
                                                      : rw->ctx->tenant->name);
        buf_append_byte(&b, ')');
    }
    return add_replacement(rw, slot, &b, rv);
}

Resolved policy_resolve_relation(const Rewrite *rw, const PgQuery__RangeVar *rv,
                                 const PgwSchemaTable **t, const char **catalog)
{
    const PgwConfig *cfg = rw->ctx->cfg;
    *t = NULL;
    *catalog = NULL;
    if (rv->schemaname[0] != '\0') {
        if (policy_is_catalog_schema(rv->schemaname)) {
            *catalog =
                strcmp(rv->schemaname, "pg_catalog") == 0 ? "pg_catalog" : "information_schema";
            return RESOLVED_CATALOG;
        }
        *t = schema_table(rw->ctx->schema, rv->schemaname, rv->relname);
        if (*t == NULL || !policy_relation_readable(cfg, (*t)->schema, (*t)->name))
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
        if (policy_relation_readable(cfg, (*t)->schema, (*t)->name))
            return RESOLVED_USER;
    }
    *t = NULL;
    return RESOLVED_NONE;
}

/* A RangeVar in FROM: a CTE reference, a catalog, or a user relation; it
 * becomes a FROM item of the walker's level for the leak analysis. */
int policy_visit_range_var(Walk *w, PgQuery__Node **slot)
{
    PgQuery__RangeVar *rv = (*slot)->range_var;
    Rewrite *rw = w->rw;
    const PgwSchemaTable *t;
    const char *catalog;
    const char *shown =
        rv->alias != NULL && rv->alias->aliasname[0] != '\0' ? rv->alias->aliasname : rv->relname;

    if (rv->schemaname[0] == '\0' && policy_cte_visible(w->scope, rv->relname)) {
        /* A CTE's contents are analysed where it is defined, not where a
         * strict level would run them per outer row. */
        if (w->level->strict)
            rw->leaky = true;
        qual_add_item(w->level, shown, NULL, rv->alias, NULL, false);
        const QualColumns *cols = policy_cte_columns(w->scope, rv->relname);
        if (cols != NULL && (rv->alias == NULL || rv->alias->n_colnames == 0))
            w->level->items[w->level->nitems - 1].cols = cols;
        return 0;
    }
    size_t before = rw->nrepl;
    int rc;
    switch (policy_resolve_relation(rw, rv, &t, &catalog)) {
    case RESOLVED_CATALOG:
        policy_note_relation(rw, catalog, rv->relname);
        rc = rewrite_catalog(rw, slot, rv, catalog);
        t = schema_table(rw->ctx->schema, catalog, rv->relname);
        break;
    case RESOLVED_USER:
        if (t->relkind == 'S')
            return refuse_missing(rw, rv); /* see the top of this file */
        policy_note_relation(rw, t->schema, t->name);
        rc = rewrite_user_relation(rw, slot, rv, t);
        break;
    default:
        return refuse_missing(rw, rv);
    }
    if (rc < 0)
        return -1;
    bool replaced = rw->nrepl > before;
    qual_add_item(w->level, shown, t, rv->alias, replaced ? slot : NULL, replaced);
    /* A view's contents are not analysed: a strict level may not run it. */
    if (w->level->strict && (t == NULL || t->relkind == 'v'))
        rw->leaky = true;
    return 0;
}
