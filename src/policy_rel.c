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
 * expression analysis (policy_expr.c), not here.
 */
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
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, "(SELECT ");
    bool first = true;
    for (size_t i = 0; i < t->ncolumns; i++) {
        const PgwSchemaColumn *c = &t->columns[i];
        const PgwColumnMask *m = policy_column_mask(tp, c->name);
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

/* A RangeVar in FROM: a CTE reference, a catalog, or a user relation. */
int policy_visit_range_var(Walk *w, PgQuery__Node **slot)
{
    PgQuery__RangeVar *rv = (*slot)->range_var;
    const PgwSchemaTable *t;
    const char *catalog;

    if (rv->schemaname[0] == '\0' && cte_visible(w->scope, rv->relname))
        return 0;
    switch (policy_resolve_relation(w->rw, rv, &t, &catalog)) {
    case RESOLVED_CATALOG:
        return rewrite_catalog(w->rw, slot, rv, catalog);
    case RESOLVED_USER:
        return rewrite_user_relation(w->rw, slot, rv, t);
    default:
        return refuse_missing(w->rw, rv);
    }
}
