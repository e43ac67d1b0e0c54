/*
 * ask_schema.c — the tenant's masked schema as an ASK prompt shows it, and
 * the local choice of the tables relevant to a question.
 *
 * A snapshot is built once from the introspection rows and never modified,
 * so any number of threads may read it. Masking is done here, at build time,
 * and nowhere else: what the tenant may not read never enters the snapshot's
 * tables, so the DDL printer and the table chooser cannot leak it by
 * mistake. The names of what was left out are kept in a separate sorted list,
 * used only to scrub error texts before they go back to the model.
 *
 * Joins are part of the snapshot: declared foreign keys, and joins guessed
 * from column names where none is declared (many schemas declare no keys
 * at all), so the ranking (ask_rank.c) can bring a bridge table along. The
 * DDL printer is also where sample values enter a prompt, bounded by the
 * budget, and only values the value index accepted (ask_values.c).
 */
#include "ask_schema.h"
#include "ask_int.h"
#include "ask_values_int.h"

#include <ctype.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

static const char introspection_sql[] =
    "SELECT n.nspname::text, c.relname::text, c.relkind::text, "
    "pg_catalog.obj_description(c.oid, 'pg_class'), "
    "a.attnum::text, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), "
    "a.attnotnull::text, pg_catalog.col_description(c.oid, a.attnum), "
    "(SELECT (count(*) > 0)::text FROM pg_catalog.pg_constraint p "
    "WHERE p.conrelid = c.oid AND p.contype = 'p' AND a.attnum = ANY (p.conkey)), "
    "fk.nspname, fk.relname, fk.attname "
    "FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
    "AND NOT a.attisdropped "
    "LEFT JOIN LATERAL (SELECT rn.nspname::text, rc.relname::text, ra.attname::text "
    "FROM pg_catalog.pg_constraint f "
    "CROSS JOIN LATERAL unnest(f.conkey, f.confkey) AS k(col, refcol) "
    "JOIN pg_catalog.pg_class rc ON rc.oid = f.confrelid "
    "JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace "
    "JOIN pg_catalog.pg_attribute ra ON ra.attrelid = f.confrelid AND ra.attnum = k.refcol "
    "WHERE f.conrelid = c.oid AND f.contype = 'f' AND k.col = a.attnum "
    "ORDER BY f.conname LIMIT 1) fk ON true "
    "WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
    "AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%' "
    "ORDER BY 1, 2, a.attnum";

const char *ask_schema_introspection_sql(void)
{
    return introspection_sql;
}

static const char generation_sql[] = "SELECT concat_ws('/', " ASK_SCHEMA_GENERATION_PARTS ")";

const char *ask_schema_generation_sql(void)
{
    return generation_sql;
}

/* ---- small helpers ---- */

static char *dup_or_null(const char *s)
{
    return s != NULL && *s != '\0' ? pgw_strdup(s) : NULL;
}

static bool text_true(const char *s)
{
    return s != NULL && (strcmp(s, "t") == 0 || strcmp(s, "true") == 0);
}

static bool is_system_schema(const char *schema)
{
    return strcmp(schema, "pg_catalog") == 0 || strcmp(schema, "information_schema") == 0 ||
           strncmp(schema, "pg_toast", 8) == 0 || strncmp(schema, "pg_temp", 7) == 0;
}

/* The policy's rule (policy.c relation_readable), applied to the schema. */
static bool table_readable(const PgwConfig *cfg, const char *schema, const char *name)
{
    if (is_system_schema(schema))
        return false;
    const PgwTablePolicy *tp = config_table(cfg, schema, name);
    if (tp != NULL)
        return !tp->hidden;
    return cfg->default_access == PGW_ACCESS_ALLOW;
}

static const PgwColumnMask *column_mask(const PgwConfig *cfg, const char *schema, const char *table,
                                        const char *column)
{
    const PgwTablePolicy *tp = config_table(cfg, schema, table);
    if (tp == NULL)
        return NULL;
    for (size_t i = 0; i < tp->nmasks; i++)
        if (strcmp(tp->masks[i].column, column) == 0)
            return &tp->masks[i];
    return NULL;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A growable list of malloc'd strings. */
typedef struct StrList {
    size_t n, cap;
    char **v;
} StrList;

static void strlist_add_lower(StrList *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = pgw_realloc(l->v, l->cap * sizeof(char *));
    }
    char *c = pgw_strndup(s, len);
    for (char *p = c; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    l->v[l->n++] = c;
}

/* Sort and drop duplicates. */
static void strlist_unique(StrList *l)
{
    if (l->n == 0)
        return;
    qsort(l->v, l->n, sizeof(char *), cmp_str_ptr);
    size_t w = 1;
    for (size_t i = 1; i < l->n; i++) {
        if (strcmp(l->v[i], l->v[w - 1]) == 0)
            free(l->v[i]);
        else
            l->v[w++] = l->v[i];
    }
    l->n = w;
}

static bool sorted_contains(char *const *v, size_t n, const char *name, size_t len)
{
    char key[128];
    if (n == 0 || len >= sizeof(key))
        return false; /* bsearch's base must not be NULL, even for n == 0 */
    for (size_t i = 0; i < len; i++)
        key[i] = (char)tolower((unsigned char)name[i]);
    key[len] = '\0';
    const char *k = key;
    return bsearch(&k, v, n, sizeof(char *), cmp_str_ptr) != NULL;
}

/* ---- building ---- */

static AskTable *find_or_add_table(PgwAskSchema *s, size_t *cap, const char *schema,
                                   const char *name)
{
    if (s->ntables > 0) {
        AskTable *last = &s->tables[s->ntables - 1];
        if (strcmp(last->schema, schema) == 0 && strcmp(last->name, name) == 0)
            return last;
        for (size_t i = 0; i < s->ntables; i++)
            if (strcmp(s->tables[i].schema, schema) == 0 && strcmp(s->tables[i].name, name) == 0)
                return &s->tables[i];
    }
    if (s->ntables == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        s->tables = pgw_realloc(s->tables, *cap * sizeof(AskTable));
    }
    AskTable *t = &s->tables[s->ntables++];
    memset(t, 0, sizeof(*t));
    t->schema = pgw_strdup(schema);
    t->name = pgw_strdup(name);
    return t;
}

static void add_column(AskTable *t, size_t *cap, const PgwConfig *cfg, const char *const *row)
{
    if (t->ncolumns == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        t->columns = pgw_realloc(t->columns, *cap * sizeof(AskColumn));
    }
    AskColumn *c = &t->columns[t->ncolumns++];
    memset(c, 0, sizeof(*c));
    c->name = pgw_strdup(row[5]);
    c->type = pgw_strdup(row[6] != NULL ? row[6] : "unknown");
    c->not_null = text_true(row[7]);
    c->comment = dup_or_null(row[8]);
    c->primary_key = text_true(row[9]);
    c->masked = column_mask(cfg, t->schema, t->name, c->name) != NULL;
    c->textual = strncmp(c->type, "text", 4) == 0 || strncmp(c->type, "character", 9) == 0 ||
                 strcmp(c->type, "citext") == 0 || strcmp(c->type, "name") == 0;
    if (row[10] != NULL && row[11] != NULL && row[12] != NULL) {
        c->ref_schema = pgw_strdup(row[10]);
        c->ref_table = pgw_strdup(row[11]);
        c->ref_column = pgw_strdup(row[12]);
    }
}

static int table_cmp(const void *a, const void *b)
{
    const AskTable *x = a, *y = b;
    int c = strcmp(x->schema, y->schema);
    return c != 0 ? c : strcmp(x->name, y->name);
}

long ask_schema_find_table(const PgwAskSchema *s, const char *schema, const char *name)
{
    size_t lo = 0, hi = s->ntables;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(schema, s->tables[mid].schema);
        if (c == 0)
            c = strcmp(name, s->tables[mid].name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

static const AskColumn *find_column(const AskTable *t, const char *name)
{
    for (size_t i = 0; i < t->ncolumns; i++)
        if (strcmp(t->columns[i].name, name) == 0)
            return &t->columns[i];
    return NULL;
}

/* A foreign key may only be shown when its target is visible too. */
static void drop_invisible_references(PgwAskSchema *s)
{
    for (size_t i = 0; i < s->ntables; i++) {
        AskTable *t = &s->tables[i];
        for (size_t j = 0; j < t->ncolumns; j++) {
            AskColumn *c = &t->columns[j];
            if (c->ref_table == NULL)
                continue;
            long r = ask_schema_find_table(s, c->ref_schema, c->ref_table);
            if (r >= 0 && find_column(&s->tables[r], c->ref_column) != NULL)
                continue;
            free(c->ref_schema);
            free(c->ref_table);
            free(c->ref_column);
            c->ref_schema = c->ref_table = c->ref_column = NULL;
        }
    }
}

static void add_link(AskTable *t, size_t other, bool declared)
{
    for (size_t i = 0; i < t->nlinks; i++) {
        if (t->links[i].table == other) {
            t->links[i].declared = t->links[i].declared || declared;
            return;
        }
    }
    t->links = pgw_realloc(t->links, (t->nlinks + 1) * sizeof(AskLink));
    t->links[t->nlinks++] = (AskLink){(uint32_t)other, declared};
}

static bool key_like(const char *column)
{
    size_t len = strlen(column);
    return len > 2 && strcasecmp(column + len - 2, "id") == 0;
}

/* Do two columns of different tables look like the two ends of a join?
 * The same key-like name (but not a bare "id"), or a key-like name ending in
 * the other table's primary key name minus a common prefix ("sbtxcustid",
 * "sbcustid": "custid"), at a word boundary when the names have underscores. */
static bool implied_key(const AskColumn *x, const AskColumn *y)
{
    if (!key_like(x->name) || !key_like(y->name))
        return false;
    if (strcasecmp(x->name, y->name) == 0)
        return strcasecmp(x->name, "id") != 0;
    if (!x->primary_key && !y->primary_key)
        return false;
    size_t lx = strlen(x->name), ly = strlen(y->name), n = 0;
    while (n < lx && n < ly &&
           tolower((unsigned char)x->name[lx - 1 - n]) ==
               tolower((unsigned char)y->name[ly - 1 - n]))
        n++;
    if (n < 6 || n == lx || n == ly)
        return false;
    bool snake = strchr(x->name, '_') != NULL || strchr(y->name, '_') != NULL;
    return !snake || (x->name[lx - 1 - n] == '_' && y->name[ly - 1 - n] == '_');
}

/* Does a key-like column name the table it points at: "customer_id" →
 * customers, "hero_id" → superhero, "power_id" → superpower? The name minus
 * its id suffix is the table's name (singular or plural), or the end of it
 * (four letters at least), and the table has a key to point at. */
static bool names_table(const AskColumn *c, const AskTable *t)
{
    size_t len = strlen(c->name);
    if (!key_like(c->name) || len < 5)
        return false;
    size_t xl = len - 2;
    if (c->name[xl - 1] == '_')
        xl--;
    if (xl < 3)
        return false;
    bool has_key = false;
    for (size_t i = 0; i < t->ncolumns && !has_key; i++)
        has_key = t->columns[i].primary_key || strcasecmp(t->columns[i].name, "id") == 0;
    if (!has_key)
        return false;
    size_t tl = strlen(t->name);
    /* The table name's singular forms: as is, minus "s", minus "es". */
    size_t forms[3] = {tl, 0, 0};
    if (tl > 3 && tolower((unsigned char)t->name[tl - 1]) == 's') {
        forms[1] = tl - 1;
        if (tolower((unsigned char)t->name[tl - 2]) == 'e')
            forms[2] = tl - 2;
    }
    for (size_t f = 0; f < 3; f++) {
        size_t fl = forms[f];
        if (fl == 0 || fl < xl)
            continue;
        if (strncasecmp(t->name + fl - xl, c->name, xl) != 0)
            continue;
        if (fl == xl || xl >= 4)
            return true;
    }
    return false;
}

static void build_links(PgwAskSchema *s)
{
    for (size_t i = 0; i < s->ntables; i++) {
        AskTable *t = &s->tables[i];
        for (size_t j = 0; j < t->ncolumns; j++) {
            const AskColumn *c = &t->columns[j];
            if (c->ref_table == NULL)
                continue;
            long r = ask_schema_find_table(s, c->ref_schema, c->ref_table);
            if (r >= 0 && (size_t)r != i) {
                add_link(t, (size_t)r, true);
                add_link(&s->tables[r], i, true);
            }
        }
    }
    /* Undeclared join keys: "aid" in author and in writes; "sbtxcustid" in
     * sbtransaction naming sbcustomer's primary key "sbcustid"; "hero_id"
     * naming superhero. Quadratic in the columns of one schema, done once
     * per snapshot. */
    for (size_t i = 0; i < s->ntables; i++) {
        AskTable *a = &s->tables[i];
        for (size_t k = i + 1; k < s->ntables && strcmp(s->tables[k].schema, a->schema) == 0; k++) {
            AskTable *b = &s->tables[k];
            bool linked = false;
            for (size_t j = 0; j < a->ncolumns && !linked; j++) {
                linked = names_table(&a->columns[j], b);
                for (size_t m = 0; m < b->ncolumns && !linked; m++)
                    linked = implied_key(&a->columns[j], &b->columns[m]);
            }
            for (size_t m = 0; m < b->ncolumns && !linked; m++)
                linked = names_table(&b->columns[m], a);
            if (linked) {
                add_link(a, k, false);
                add_link(b, i, false);
            }
        }
    }
}

static void append_table_ddl(PgwBuf *b, const AskTable *t, const char *const *samples);

/* Each table's DDL length (what the budget counts) and the fingerprint. */
static void compute_fingerprint(PgwAskSchema *s)
{
    PgwBuf one;
    buf_init(&one);
    s->ddl_bytes = 0;
    for (size_t i = 0; i < s->ntables; i++) {
        one.len = 0;
        append_table_ddl(&one, &s->tables[i], NULL);
        s->tables[i].ddl_bytes = one.len;
        s->ddl_bytes += one.len + (i > 0 ? 1 : 0);
    }
    buf_free(&one);
    char *ddl = ask_schema_ddl(s, NULL, 0);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)ddl, strlen(ddl), md);
    free(ddl);
    s->fingerprint = pgw_malloc(2 * SHA256_DIGEST_LENGTH + 1);
    for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(s->fingerprint + 2 * i, 3, "%02x", md[i]);
}

PgwAskSchema *ask_schema_build(const PgwConfig *cfg, const PgwTenant *tenant, size_t nrows,
                               size_t ncols, const char *const *values)
{
    (void)tenant; /* visibility is per config today, the same for every tenant */
    if (ncols != ASK_SCHEMA_NCOLS || (nrows > 0 && values == NULL))
        return NULL;
    PgwAskSchema *s = pgw_calloc(1, sizeof(*s));
    StrList visible = {0}, hidden = {0};
    size_t tcap = 0, ccap = 0;
    AskTable *current = NULL;

    for (size_t r = 0; r < nrows; r++) {
        const char *const *row = values + r * ncols;
        if (row[0] == NULL || row[1] == NULL)
            continue;
        if (is_system_schema(row[0]))
            continue;
        if (!table_readable(cfg, row[0], row[1])) {
            strlist_add_lower(&hidden, row[1], strlen(row[1]));
            if (row[5] != NULL)
                strlist_add_lower(&hidden, row[5], strlen(row[5]));
            continue;
        }
        AskTable *t = find_or_add_table(s, &tcap, row[0], row[1]);
        if (t != current) {
            current = t;
            ccap = t->ncolumns; /* exact: a revisited table's array is full */
            t->relkind = row[2] != NULL ? row[2][0] : 'r';
            if (t->comment == NULL)
                t->comment = dup_or_null(row[3]);
        }
        if (row[4] == NULL || row[5] == NULL)
            continue;
        const PgwColumnMask *m = column_mask(cfg, row[0], row[1], row[5]);
        if (m != NULL && m->kind == PGW_MASK_HIDE) {
            strlist_add_lower(&hidden, row[5], strlen(row[5]));
            continue;
        }
        add_column(t, &ccap, cfg, row);
    }
    /* Hidden tables the backend may not even have: their names stay secret. */
    for (size_t i = 0; i < cfg->ntables; i++) {
        const PgwTablePolicy *tp = &cfg->tables[i];
        if (tp->hidden)
            strlist_add_lower(&hidden, tp->name, strlen(tp->name));
        for (size_t j = 0; j < tp->nmasks; j++)
            if (tp->masks[j].kind == PGW_MASK_HIDE)
                strlist_add_lower(&hidden, tp->masks[j].column, strlen(tp->masks[j].column));
    }

    if (s->ntables > 0)
        qsort(s->tables, s->ntables, sizeof(AskTable), table_cmp);
    drop_invisible_references(s);
    for (size_t i = 0; i < s->ntables; i++) {
        const AskTable *t = &s->tables[i];
        strlist_add_lower(&visible, t->schema, strlen(t->schema));
        strlist_add_lower(&visible, t->name, strlen(t->name));
        for (size_t j = 0; j < t->ncolumns; j++)
            strlist_add_lower(&visible, t->columns[j].name, strlen(t->columns[j].name));
    }
    strlist_unique(&visible);
    strlist_unique(&hidden);
    /* A name that is also visible somewhere is no secret. */
    size_t w = 0;
    for (size_t i = 0; i < hidden.n; i++) {
        if (sorted_contains(visible.v, visible.n, hidden.v[i], strlen(hidden.v[i])))
            free(hidden.v[i]);
        else
            hidden.v[w++] = hidden.v[i];
    }
    hidden.n = w;
    s->visible = visible.v;
    s->nvisible = visible.n;
    s->hidden = hidden.v;
    s->nhidden = hidden.n;

    build_links(s);
    ask_rank_build(s);
    compute_fingerprint(s);
    return s;
}

void ask_schema_free(PgwAskSchema *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->ntables; i++) {
        AskTable *t = &s->tables[i];
        for (size_t j = 0; j < t->ncolumns; j++) {
            AskColumn *c = &t->columns[j];
            free(c->name);
            free(c->type);
            free(c->comment);
            free(c->ref_schema);
            free(c->ref_table);
            free(c->ref_column);
        }
        free(t->columns);
        free(t->links);
        free(t->schema);
        free(t->name);
        free(t->comment);
    }
    free(s->tables);
    for (size_t i = 0; i < s->nvisible; i++)
        free(s->visible[i]);
    free(s->visible);
    for (size_t i = 0; i < s->nhidden; i++)
        free(s->hidden[i]);
    free(s->hidden);
    ask_rank_free(s);
    free(s->fingerprint);
    free(s);
}

char *ask_schema_fingerprint(const PgwAskSchema *s)
{
    return pgw_strdup(s->fingerprint);
}

size_t ask_schema_ntables(const PgwAskSchema *s)
{
    return s->ntables;
}

void ask_schema_table_name(const PgwAskSchema *s, size_t i, const char **schema, const char **name)
{
    *schema = s->tables[i].schema;
    *name = s->tables[i].name;
}

bool ask_schema_name_visible(const PgwAskSchema *s, const char *name, size_t len)
{
    return sorted_contains(s->visible, s->nvisible, name, len);
}

bool ask_schema_name_hidden(const PgwAskSchema *s, const char *name, size_t len)
{
    return sorted_contains(s->hidden, s->nhidden, name, len);
}

/* ---- DDL ---- */

static const char *const reserved_words[] = {
    "all",          "analyse",
    "analyze",      "and",
    "any",          "array",
    "as",           "asc",
    "asymmetric",   "both",
    "case",         "cast",
    "check",        "collate",
    "column",       "constraint",
    "create",       "current_catalog",
    "current_date", "current_role",
    "current_time", "current_timestamp",
    "current_user", "default",
    "deferrable",   "desc",
    "distinct",     "do",
    "else",         "end",
    "except",       "false",
    "fetch",        "for",
    "foreign",      "from",
    "grant",        "group",
    "having",       "in",
    "initially",    "intersect",
    "into",         "lateral",
    "leading",      "limit",
    "localtime",    "localtimestamp",
    "not",          "null",
    "offset",       "on",
    "only",         "or",
    "order",        "placing",
    "primary",      "references",
    "returning",    "select",
    "session_user", "some",
    "symmetric",    "table",
    "then",         "to",
    "trailing",     "true",
    "union",        "unique",
    "user",         "using",
    "variadic",     "when",
    "where",        "window",
    "with",
};

static void append_ident(PgwBuf *b, const char *name)
{
    bool plain = (islower((unsigned char)name[0]) || name[0] == '_');
    for (const char *p = name; plain && *p; p++)
        plain = islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' || *p == '$';
    for (size_t i = 0; plain && i < PGW_ARRAY_LEN(reserved_words); i++)
        plain = strcmp(name, reserved_words[i]) != 0;
    if (plain) {
        buf_append_str(b, name);
        return;
    }
    buf_append_byte(b, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            buf_append_byte(b, '"');
        buf_append_byte(b, (uint8_t)*p);
    }
    buf_append_byte(b, '"');
}

static void append_qualified(PgwBuf *b, const char *schema, const char *name)
{
    if (strcmp(schema, "public") != 0) {
        append_ident(b, schema);
        buf_append_byte(b, '.');
    }
    append_ident(b, name);
}

/* A comment stays on one line: newlines would end the SQL comment. */
static void append_comment(PgwBuf *b, const char *text)
{
    for (const char *p = text; *p; p++)
        buf_append_byte(b, (*p == '\n' || *p == '\r') ? ' ' : (uint8_t)*p);
}

static void append_table_ddl(PgwBuf *b, const AskTable *t, const char *const *samples)
{
    size_t npk = 0;
    for (size_t j = 0; j < t->ncolumns; j++)
        npk += t->columns[j].primary_key;
    if (t->comment != NULL) {
        buf_append_str(b, "-- ");
        append_comment(b, t->comment);
        buf_append_byte(b, '\n');
    }
    if (t->relkind == 'v' || t->relkind == 'm')
        buf_append_str(b, t->relkind == 'v' ? "-- (a view)\n" : "-- (a materialized view)\n");
    buf_append_str(b, "CREATE TABLE ");
    append_qualified(b, t->schema, t->name);
    buf_append_str(b, " (\n");
    for (size_t j = 0; j < t->ncolumns; j++) {
        const AskColumn *c = &t->columns[j];
        const char *sample = samples != NULL ? samples[j] : NULL;
        buf_append_str(b, "    ");
        append_ident(b, c->name);
        buf_append_byte(b, ' ');
        buf_append_str(b, c->type);
        if (c->not_null)
            buf_append_str(b, " NOT NULL");
        if (c->primary_key && npk == 1)
            buf_append_str(b, " PRIMARY KEY");
        if (c->ref_table != NULL) {
            buf_append_str(b, " REFERENCES ");
            append_qualified(b, c->ref_schema, c->ref_table);
            buf_append_byte(b, '(');
            append_ident(b, c->ref_column);
            buf_append_byte(b, ')');
        }
        if (j + 1 < t->ncolumns || npk > 1)
            buf_append_byte(b, ',');
        if (c->comment != NULL || c->masked || sample != NULL) {
            buf_append_str(b, " --");
            if (c->comment != NULL) {
                buf_append_byte(b, ' ');
                append_comment(b, c->comment);
            }
            if (c->masked)
                buf_append_str(b, " (values masked)");
            if (sample != NULL)
                buf_append_str(b, sample);
        }
        buf_append_byte(b, '\n');
    }
    if (npk > 1) {
        buf_append_str(b, "    PRIMARY KEY (");
        bool first = true;
        for (size_t j = 0; j < t->ncolumns; j++) {
            if (!t->columns[j].primary_key)
                continue;
            if (!first)
                buf_append_str(b, ", ");
            append_ident(b, t->columns[j].name);
            first = false;
        }
        buf_append_str(b, ")\n");
    }
    buf_append_str(b, ");\n");
}

char *ask_schema_ddl(const PgwAskSchema *s, const size_t *tables, size_t ntables)
{
    PgwBuf b;
    buf_init(&b);
    size_t n = tables != NULL ? ntables : s->ntables;
    for (size_t i = 0; i < n; i++) {
        size_t ti = tables != NULL ? tables[i] : i;
        if (ti >= s->ntables)
            continue;
        if (b.len > 0)
            buf_append_byte(&b, '\n');
        append_table_ddl(&b, &s->tables[ti], NULL);
    }
    return buf_steal_str(&b);
}

size_t ask_schema_ddl_bytes(const PgwAskSchema *s)
{
    return s->ddl_bytes;
}

/* ---- sample values ---- */

/* Longest sample shown; a longer value is cut at a character boundary. */
#define SAMPLE_SHOWN_MAX 40

/* One value as an SQL literal, on one line, at most SAMPLE_SHOWN_MAX bytes
 * of it (cut at a UTF-8 boundary, marked with "..."). */
static void append_sample(PgwBuf *b, const char *value)
{
    size_t len = strlen(value), n = len;
    if (n > SAMPLE_SHOWN_MAX) {
        n = SAMPLE_SHOWN_MAX;
        while (n > 0 && ((unsigned char)value[n] & 0xC0) == 0x80)
            n--;
    }
    buf_append_byte(b, '\'');
    for (size_t i = 0; i < n; i++) {
        char ch = value[i];
        if (ch == '\'')
            buf_append_byte(b, '\'');
        buf_append_byte(b, (ch == '\n' || ch == '\r' || ch == '\t') ? ' ' : (uint8_t)ch);
    }
    if (n < len)
        buf_append_str(b, "...");
    buf_append_byte(b, '\'');
}

/* The " e.g. 'a', 'b'" text for one column: the values the question named
 * first, then the column's first values, max in all. NULL: none. */
static char *column_sample(const PgwAskValues *values, const PgwAskChoice *choice, size_t table,
                           size_t column, size_t max)
{
    const char *const *vals;
    size_t n = ask_values_of(values, table, column, &vals);
    if (n == 0 || max == 0)
        return NULL;
    const char *shown[16];
    size_t ns = 0;
    if (max > PGW_ARRAY_LEN(shown))
        max = PGW_ARRAY_LEN(shown);
    for (size_t i = 0; i < choice->matches.n && ns < max; i++) {
        const PgwAskMatch *m = &choice->matches.v[i];
        if (m->table == table && m->column == column)
            shown[ns++] = m->value;
    }
    for (size_t i = 0; i < n && ns < max; i++) {
        bool dup = false;
        for (size_t k = 0; k < ns && !dup; k++)
            dup = shown[k] == vals[i];
        if (!dup)
            shown[ns++] = vals[i];
    }
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, " e.g. ");
    for (size_t i = 0; i < ns; i++) {
        if (i > 0)
            buf_append_str(&b, ", ");
        append_sample(&b, shown[i]);
    }
    return buf_steal_str(&b);
}

char *ask_schema_prompt_ddl(const PgwAskSchema *s, const PgwAskValues *values,
                            const PgwAskChoice *choice, const PgwAskBudget *budget)
{
    size_t nshow = choice->ntables;
    /* samples[k][j]: column j of the k-th shown table; NULL: none. */
    char ***samples = pgw_calloc(nshow ? nshow : 1, sizeof(char **));
    size_t per = budget != NULL ? budget->samples_per_column : 0;
    if (values != NULL && per > 0) {
        size_t used = 0;
        for (size_t k = 0; k < nshow; k++)
            used += s->tables[choice->tables[k]].ddl_bytes + (k > 0 ? 1 : 0);
        /* By relevance: the tables most likely needed get their samples
         * first, while the budget lasts. */
        for (size_t r = 0; r < choice->norder; r++) {
            size_t t = choice->order[r];
            size_t k = 0;
            while (k < nshow && choice->tables[k] != t)
                k++;
            if (k == nshow)
                continue;
            const AskTable *tb = &s->tables[t];
            for (size_t j = 0; j < tb->ncolumns; j++) {
                char *text = column_sample(values, choice, t, j, per);
                if (text == NULL)
                    continue;
                /* " --" is added when the column has no comment yet. */
                size_t cost = strlen(text) +
                              (tb->columns[j].comment == NULL && !tb->columns[j].masked ? 3 : 0);
                if (used + cost > budget->schema_bytes) {
                    free(text);
                    continue;
                }
                if (samples[k] == NULL)
                    samples[k] = pgw_calloc(tb->ncolumns, sizeof(char *));
                samples[k][j] = text;
                used += cost;
            }
        }
    }
    PgwBuf b;
    buf_init(&b);
    for (size_t k = 0; k < nshow; k++) {
        if (k > 0)
            buf_append_byte(&b, '\n');
        const AskTable *tb = &s->tables[choice->tables[k]];
        append_table_ddl(&b, tb, (const char *const *)samples[k]);
        if (samples[k] != NULL) {
            for (size_t j = 0; j < tb->ncolumns; j++)
                free(samples[k][j]);
            free(samples[k]);
        }
    }
    free(samples);
    return buf_steal_str(&b);
}
