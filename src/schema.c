/*
 * schema.c — the tenant's backend catalog snapshot used by the policy.
 *
 * A snapshot is a sorted array of relations, each with its columns in attnum
 * order (and their type OIDs), plus two sorted operator sets: the built-in
 * comparison operators whose functions are leak-proof on this backend, and
 * the operators defined outside pg_catalog. It is built once from the text
 * rows of schema_introspection_sql() and never modified afterwards, so any
 * number of threads may read it. Lookups are binary searches. The module
 * performs no I/O: the runtime owns the backend session and passes rows in.
 *
 * Everything comes in one statement (relations UNION ALL operators UNION ALL
 * function names UNION ALL type names, told apart by column 8) so the
 * runtime's contract stays "run this, hand me the rows". Leak-proofness is read from the backend rather than listed here:
 * it is a property of the server version (numeric comparisons are not
 * leak-proof in PostgreSQL 15, for instance), and a missing or unknown entry
 * only makes the policy fence more.
 */
#include "schema.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct SchemaOperator {
    char *nsp; /* 'U' entries: the operator's schema; 'L' entries: NULL */
    char *name;
    uint32_t left, right;
} SchemaOperator;

struct PgwSchema {
    size_t ntables;
    PgwSchemaTable *tables;
    size_t nleakproof;
    SchemaOperator *leakproof; /* sorted by (name, left, right) */
    size_t nuser_ops;
    SchemaOperator *user_ops; /* sorted by (nsp, name) */
    size_t nfuncs;
    SchemaOperator *funcs; /* functions callable with one argument, by (nsp, name) */
    size_t ntypes;
    SchemaOperator *types; /* types but relations' row types (and their arrays), by (nsp, name) */
    unsigned long generation;
};

static atomic_ulong schema_generations = 1;

/* pg_toast and temporary schemas are never addressable by a client query
 * that the policy lets through, so they are left out to keep the snapshot
 * small. Columns: see schema.h. */
static const char introspection_sql[] =
    "SELECT n.nspname::text, c.relname::text, c.relkind::text, a.attnum::text, "
    "a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), t.typcategory::text, "
    "a.atttypid::text, NULL::text, NULL::text, NULL::text, NULL::text "
    "FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
    "AND NOT a.attisdropped "
    "LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
    "WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') "
    "AND n.nspname <> 'pg_toast' AND n.nspname NOT LIKE 'pg\\_temp\\_%' "
    "AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%' "
    "UNION ALL "
    "SELECT n.nspname::text, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "CASE WHEN n.nspname = 'pg_catalog' THEN 'L' ELSE 'U' END, o.oprname::text, "
    "o.oprleft::text, o.oprright::text "
    "FROM pg_catalog.pg_operator o "
    "JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace "
    "JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode "
    "WHERE n.nspname <> 'pg_catalog' OR (p.proleakproof "
    "AND o.oprname IN ('=', '<>', '<', '>', '<=', '>=')) "
    "UNION ALL "
    "SELECT DISTINCT n.nspname::text, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'F', "
    "p.proname::text, NULL, NULL "
    "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
    "WHERE p.pronargs >= 1 AND p.pronargs - p.pronargdefaults <= 1 "
    "AND n.nspname <> 'information_schema' "
    "UNION ALL "
    "SELECT n.nspname::text, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'T', t.typname::text, "
    "NULL, NULL "
    "FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
    "LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem AND e.typarray = t.oid "
    "WHERE n.nspname <> 'pg_toast' AND n.nspname NOT LIKE 'pg\\_temp\\_%' "
    "AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%' "
    "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relkind <> 'c' "
    "AND c.oid IN (t.typrelid, e.typrelid))";

const char *schema_introspection_sql(void)
{
    return introspection_sql;
}

static int table_cmp(const char *s1, const char *n1, const char *s2, const char *n2)
{
    int c = strcmp(s1, s2);
    return c != 0 ? c : strcmp(n1, n2);
}

static int table_sort_cmp(const void *a, const void *b)
{
    const PgwSchemaTable *x = a, *y = b;
    return table_cmp(x->schema, x->name, y->schema, y->name);
}

static int column_sort_cmp(const void *a, const void *b)
{
    const PgwSchemaColumn *x = a, *y = b;
    return (x->attnum > y->attnum) - (x->attnum < y->attnum);
}

static int operator_cmp(const SchemaOperator *x, const char *nsp, const char *name, uint32_t left,
                        uint32_t right)
{
    int c = strcmp(x->nsp != NULL ? x->nsp : "", nsp != NULL ? nsp : "");
    if (c == 0)
        c = strcmp(x->name, name);
    if (c == 0)
        c = (x->left > left) - (x->left < left);
    if (c == 0)
        c = (x->right > right) - (x->right < right);
    return c;
}

static int operator_sort_cmp(const void *a, const void *b)
{
    const SchemaOperator *y = b;
    return operator_cmp(a, y->nsp, y->name, y->left, y->right);
}

static uint32_t parse_oid(const char *s)
{
    if (s == NULL)
        return 0;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    return *end == '\0' && v <= UINT32_MAX ? (uint32_t)v : 0;
}

/* One operator or function row (column 8 set): returns -1 on out of
 * memory. */
static int add_operator(PgwSchema *s, const char *const *row)
{
    bool leakproof = strcmp(row[8], "L") == 0;
    bool func = strcmp(row[8], "F") == 0;
    bool type = strcmp(row[8], "T") == 0;
    if (row[9] == NULL || (!leakproof && row[0] == NULL))
        return 0;
    size_t *n = leakproof ? &s->nleakproof : func ? &s->nfuncs : type ? &s->ntypes : &s->nuser_ops;
    SchemaOperator **arr = leakproof ? &s->leakproof
                           : func    ? &s->funcs
                           : type    ? &s->types
                                     : &s->user_ops;
    SchemaOperator *grown = realloc(*arr, (*n + 1) * sizeof(**arr));
    if (grown == NULL)
        return -1;
    *arr = grown;
    SchemaOperator *o = &grown[*n];
    memset(o, 0, sizeof(*o));
    o->name = strdup(row[9]);
    o->nsp = leakproof ? NULL : strdup(row[0]);
    o->left = parse_oid(row[10]);
    o->right = parse_oid(row[11]);
    (*n)++;
    return o->name == NULL || (!leakproof && o->nsp == NULL) ? -1 : 0;
}

static void operators_free(SchemaOperator *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(ops[i].nsp);
        free(ops[i].name);
    }
    free(ops);
}

static void table_clear(PgwSchemaTable *t)
{
    free(t->schema);
    free(t->name);
    for (size_t i = 0; i < t->ncolumns; i++) {
        free(t->columns[i].name);
        free(t->columns[i].type);
    }
    free(t->columns);
}

void schema_free(PgwSchema *schema)
{
    if (schema == NULL)
        return;
    for (size_t i = 0; i < schema->ntables; i++)
        table_clear(&schema->tables[i]);
    free(schema->tables);
    operators_free(schema->leakproof, schema->nleakproof);
    operators_free(schema->user_ops, schema->nuser_ops);
    operators_free(schema->funcs, schema->nfuncs);
    operators_free(schema->types, schema->ntypes);
    free(schema);
}

PgwSchema *schema_from_rows(size_t nrows, size_t ncols, const char *const *values)
{
    PgwSchema *s = NULL;

    if (ncols != SCHEMA_INTROSPECTION_NCOLS || (nrows > 0 && values == NULL))
        return NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto fail;
    /* At most one table per row; shrink-free over-allocation is fine for a
     * snapshot that lives until the next reload. */
    s->tables = calloc(nrows > 0 ? nrows : 1, sizeof(*s->tables));
    if (s->tables == NULL)
        goto fail;

    for (size_t r = 0; r < nrows; r++) {
        const char *const *row = values + r * ncols;
        if (row[8] != NULL) {
            if (add_operator(s, row) < 0)
                goto fail;
            continue;
        }
        if (row[0] == NULL || row[1] == NULL)
            continue;
        PgwSchemaTable *t = s->ntables > 0 ? &s->tables[s->ntables - 1] : NULL;
        /* Rows of one relation are usually adjacent; when they are not, a
         * second entry appears and is merged below after sorting. */
        if (t == NULL || strcmp(t->schema, row[0]) != 0 || strcmp(t->name, row[1]) != 0) {
            t = &s->tables[s->ntables++];
            t->schema = strdup(row[0]);
            t->name = strdup(row[1]);
            t->relkind = row[2] != NULL && row[2][0] != '\0' ? row[2][0] : 'r';
            if (t->schema == NULL || t->name == NULL)
                goto fail;
        }
        if (row[3] == NULL || row[4] == NULL)
            continue;
        PgwSchemaColumn *cols = realloc(t->columns, (t->ncolumns + 1) * sizeof(*cols));
        if (cols == NULL)
            goto fail;
        t->columns = cols;
        PgwSchemaColumn *c = &cols[t->ncolumns];
        memset(c, 0, sizeof(*c));
        c->attnum = atoi(row[3]);
        c->name = strdup(row[4]);
        c->type = strdup(row[5] != NULL ? row[5] : "text");
        c->is_text = row[6] != NULL && strcmp(row[6], "S") == 0;
        c->type_oid = parse_oid(row[7]);
        t->ncolumns++;
        if (c->name == NULL || c->type == NULL)
            goto fail;
    }

    qsort(s->tables, s->ntables, sizeof(*s->tables), table_sort_cmp);
    /* Merge duplicates left by non-adjacent rows. */
    size_t out = 0;
    for (size_t i = 0; i < s->ntables; i++) {
        PgwSchemaTable *t = &s->tables[i];
        if (out > 0 && table_sort_cmp(&s->tables[out - 1], t) == 0) {
            PgwSchemaTable *d = &s->tables[out - 1];
            PgwSchemaColumn *cols =
                realloc(d->columns, (d->ncolumns + t->ncolumns + 1) * sizeof(*cols));
            if (cols == NULL)
                goto fail;
            d->columns = cols;
            memcpy(cols + d->ncolumns, t->columns, t->ncolumns * sizeof(*cols));
            d->ncolumns += t->ncolumns;
            free(t->columns);
            free(t->schema);
            free(t->name);
            memset(t, 0, sizeof(*t));
            continue;
        }
        if (out != i) {
            s->tables[out] = *t;
            memset(t, 0, sizeof(*t));
        }
        out++;
    }
    s->ntables = out;
    for (size_t i = 0; i < s->ntables; i++)
        qsort(s->tables[i].columns, s->tables[i].ncolumns, sizeof(PgwSchemaColumn),
              column_sort_cmp);
    if (s->nleakproof > 0)
        qsort(s->leakproof, s->nleakproof, sizeof(*s->leakproof), operator_sort_cmp);
    if (s->nuser_ops > 0)
        qsort(s->user_ops, s->nuser_ops, sizeof(*s->user_ops), operator_sort_cmp);
    if (s->nfuncs > 0)
        qsort(s->funcs, s->nfuncs, sizeof(*s->funcs), operator_sort_cmp);
    if (s->ntypes > 0)
        qsort(s->types, s->ntypes, sizeof(*s->types), operator_sort_cmp);
    s->generation = atomic_fetch_add(&schema_generations, 1);
    return s;

fail:
    if (s != NULL) {
        /* Entries past ntables were never filled, so freeing ntables+1 is
         * safe: calloc zeroed them. */
        if (s->tables != NULL && s->ntables < (nrows > 0 ? nrows : 1))
            s->ntables++;
        schema_free(s);
    }
    return NULL;
}

const PgwSchemaTable *schema_table(const PgwSchema *schema, const char *nspname,
                                   const char *relname)
{
    if (schema == NULL || nspname == NULL || relname == NULL)
        return NULL;
    size_t lo = 0, hi = schema->ntables;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const PgwSchemaTable *t = &schema->tables[mid];
        int c = table_cmp(nspname, relname, t->schema, t->name);
        if (c == 0)
            return t;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

bool schema_leakproof_operator(const PgwSchema *schema, const char *name, uint32_t left,
                               uint32_t right)
{
    if (schema == NULL || name == NULL)
        return false;
    size_t lo = 0, hi = schema->nleakproof;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = operator_cmp(&schema->leakproof[mid], NULL, name, left, right);
        if (c == 0)
            return true;
        if (c > 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

/* Entries sorted by (nsp, name, left, right): is there one for (nsp, name)? */
static bool find_named(const SchemaOperator *arr, size_t n, const char *nspname, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (operator_cmp(&arr[mid], nspname, name, 0, 0) >= 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo < n && strcmp(arr[lo].nsp, nspname) == 0 && strcmp(arr[lo].name, name) == 0;
}

bool schema_has_types(const PgwSchema *schema)
{
    return schema != NULL && schema->ntypes > 0;
}

bool schema_type(const PgwSchema *schema, const char *nspname, const char *name)
{
    if (schema == NULL || nspname == NULL || name == NULL)
        return false;
    if (find_named(schema->types, schema->ntypes, nspname, name) ||
        schema_table(schema, nspname, name) != NULL)
        return true;
    return name[0] == '_' && schema_table(schema, nspname, name + 1) != NULL;
}

bool schema_user_operator(const PgwSchema *schema, const char *nspname, const char *name)
{
    if (schema == NULL || nspname == NULL || name == NULL)
        return false;
    return find_named(schema->user_ops, schema->nuser_ops, nspname, name);
}

bool schema_unary_function(const PgwSchema *schema, const char *nspname, const char *name)
{
    if (schema == NULL || nspname == NULL || name == NULL)
        return false;
    return find_named(schema->funcs, schema->nfuncs, nspname, name);
}

unsigned long schema_generation(const PgwSchema *schema)
{
    return schema != NULL ? schema->generation : 0;
}

size_t schema_ntables(const PgwSchema *schema)
{
    return schema != NULL ? schema->ntables : 0;
}

const PgwSchemaTable *schema_table_at(const PgwSchema *schema, size_t i)
{
    return schema != NULL && i < schema->ntables ? &schema->tables[i] : NULL;
}
