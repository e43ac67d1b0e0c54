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
 * Table choice is a small bag-of-words ranking, precomputed as far as
 * possible: every table carries its distinct words (from its name, column
 * names and comments) with the weight of the strongest place each appears,
 * and every word its document frequency, so a question costs one pass over
 * the tables' word lists. Words that appear in few tables count more (idf).
 * Catalog names are lower-case, so "sbcustomer" cannot be split; a question
 * word found inside a longer schema word counts at a discount. Two kinds of
 * links fill the places left after the best hits: declared foreign keys, and
 * columns ending in "id" that two tables of one schema share (many schemas
 * declare no keys at all).
 */
#include "ask_schema.h"

#include <ctype.h>
#include <math.h>
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

/* Where a word appears decides how much it says about a table. */
#define W_TABLE_NAME 3.0f
#define W_COLUMN_NAME 1.0f
#define W_TABLE_COMMENT 1.0f
#define W_COLUMN_COMMENT 0.5f
/* A question word found inside a longer schema word ("customer" in
 * "sbcustomer") counts this much of an exact match. */
#define SUBSTRING_MATCH 1.0f
#define HISTORY_WEIGHT 0.5f
/* Share of the best table's score given to the matching tables of the
 * schema that covers the question best. */
#define SCHEMA_BONUS 0.25f

typedef struct AskColumn {
    char *name;
    char *type;
    char *comment;
    bool not_null;
    bool primary_key;
    bool masked; /* a non-hiding mask applies: values are not the real ones */
    char *ref_schema; /* foreign key target, NULL: none */
    char *ref_table;
    char *ref_column;
} AskColumn;

typedef struct AskTerm {
    const char *word; /* points into the snapshot's word table */
    float weight;
    float idf;
} AskTerm;

typedef struct AskTable {
    char *schema;
    char *name;
    char *comment;
    char relkind;
    size_t ncolumns;
    AskColumn *columns;
    size_t nterms;
    AskTerm *terms;
    size_t nlinks;
    size_t *links; /* neighbours: foreign keys either way, shared *id columns */
} AskTable;

struct PgwAskSchema {
    size_t ntables;
    AskTable *tables;
    size_t nvisible;
    char **visible; /* sorted lower-case names of visible schemas, tables, columns */
    size_t nhidden;
    char **hidden; /* sorted lower-case names left out, minus visible ones */
    size_t nwords;
    char **words; /* distinct words of all tables, sorted, owned here */
    char *fingerprint;
};

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
    if (len >= sizeof(key))
        return false;
    for (size_t i = 0; i < len; i++)
        key[i] = (char)tolower((unsigned char)name[i]);
    key[len] = '\0';
    const char *k = key;
    return bsearch(&k, v, n, sizeof(char *), cmp_str_ptr) != NULL;
}

/* ---- words ---- */

/* Function words say nothing about tables. Sorted: binary search. */
static const char *const stopwords[] = {
    "a",    "about", "all",   "also", "an",     "and",    "any",   "are",   "as",    "at",
    "be",   "been",  "by",    "can",  "did",    "do",     "does",  "each",  "every", "for",
    "from", "get",   "give",  "had",  "has",    "have",   "her",   "his",   "how",   "i",
    "if",   "in",    "into",  "is",   "it",     "its",    "list",  "me",    "my",    "of",
    "on",   "or",    "our",   "per",  "please", "return", "show",  "so",    "such",  "than",
    "that", "the",   "their", "them", "then",   "there",  "these", "they",  "this",  "those",
    "to",   "us",    "was",   "we",   "were",   "what",   "when",  "where", "which", "while",
    "who",  "whom",  "whose", "why",  "will",   "with",   "would", "you",   "your",
};

static bool is_stopword(const char *w)
{
    size_t lo = 0, hi = PGW_ARRAY_LEN(stopwords);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(w, stopwords[mid]);
        if (c == 0)
            return true;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

static bool ends_with(const char *w, size_t len, const char *suffix)
{
    size_t sl = strlen(suffix);
    return len >= sl && memcmp(w + len - sl, suffix, sl) == 0;
}

/* Crude English plural stripping, the same for schema and question words
 * so both sides meet: cities → city, addresses → address, sales → sale. */
static size_t stem(char *w, size_t len)
{
    if (len > 4 && ends_with(w, len, "ies")) {
        w[len - 3] = 'y';
        return len - 2;
    }
    if (len > 4 && (ends_with(w, len, "sses") || ends_with(w, len, "ches") ||
                    ends_with(w, len, "shes") || ends_with(w, len, "xes")))
        return len - 2;
    if (len > 3 && w[len - 1] == 's' && !ends_with(w, len, "ss") && !ends_with(w, len, "us") &&
        !ends_with(w, len, "is"))
        return len - 1;
    return len;
}

typedef void (*WordFn)(void *arg, const char *word, float weight);

/* Split text into words: runs of letters and digits, cut at snake_case
 * underscores, camelCase humps and letter/digit changes; lower-case, stem,
 * drop stopwords, words starting with a digit and single letters. */
static void each_word(const char *text, float weight, WordFn fn, void *arg)
{
    if (text == NULL)
        return;
    const unsigned char *p = (const unsigned char *)text;
    while (*p != '\0') {
        while (*p != '\0' && !isalnum(*p))
            p++;
        if (*p == '\0')
            break;
        const unsigned char *start = p;
        p++;
        while (*p != '\0' && isalnum(*p)) {
            bool hump = isupper(*p) && islower(p[-1]);
            bool kind_change = (isdigit(*p) != 0) != (isdigit(p[-1]) != 0);
            if (hump || kind_change)
                break;
            p++;
        }
        size_t len = (size_t)(p - start);
        if (len < 2 || len > 40 || isdigit(*start))
            continue;
        char w[48];
        for (size_t i = 0; i < len; i++)
            w[i] = (char)tolower(start[i]);
        w[len] = '\0';
        if (is_stopword(w))
            continue;
        len = stem(w, len);
        w[len] = '\0';
        fn(arg, w, weight);
    }
}

/* Collecting a table's words: (word, weight) pairs, merged later. */
typedef struct RawTerm {
    char *word;
    float weight;
} RawTerm;
typedef struct RawTerms {
    size_t n, cap;
    RawTerm *v;
} RawTerms;

static void raw_term_add(void *arg, const char *word, float weight)
{
    RawTerms *r = arg;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 32;
        r->v = pgw_realloc(r->v, r->cap * sizeof(RawTerm));
    }
    r->v[r->n].word = pgw_strdup(word);
    r->v[r->n].weight = weight;
    r->n++;
}

static int raw_term_cmp(const void *a, const void *b)
{
    const RawTerm *x = a, *y = b;
    int c = strcmp(x->word, y->word);
    if (c != 0)
        return c;
    return (x->weight < y->weight) - (x->weight > y->weight); /* heaviest first */
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

static void add_link(AskTable *t, size_t other)
{
    for (size_t i = 0; i < t->nlinks; i++)
        if (t->links[i] == other)
            return;
    t->links = pgw_realloc(t->links, (t->nlinks + 1) * sizeof(size_t));
    t->links[t->nlinks++] = other;
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
                add_link(t, (size_t)r);
                add_link(&s->tables[r], i);
            }
        }
    }
    /* Undeclared join keys: "aid" in author and in writes; "sbtxcustid" in
     * sbtransaction naming sbcustomer's primary key "sbcustid". Quadratic in
     * the columns of one schema, done once per snapshot. */
    for (size_t i = 0; i < s->ntables; i++) {
        AskTable *a = &s->tables[i];
        for (size_t k = i + 1; k < s->ntables && strcmp(s->tables[k].schema, a->schema) == 0; k++) {
            AskTable *b = &s->tables[k];
            bool linked = false;
            for (size_t j = 0; j < a->ncolumns && !linked; j++)
                for (size_t m = 0; m < b->ncolumns && !linked; m++)
                    linked = implied_key(&a->columns[j], &b->columns[m]);
            if (linked) {
                add_link(a, k);
                add_link(b, i);
            }
        }
    }
}

static void build_terms(PgwAskSchema *s)
{
    StrList all = {0};
    RawTerms *raw = pgw_calloc(s->ntables ? s->ntables : 1, sizeof(RawTerms));
    for (size_t i = 0; i < s->ntables; i++) {
        const AskTable *t = &s->tables[i];
        each_word(t->name, W_TABLE_NAME, raw_term_add, &raw[i]);
        each_word(t->comment, W_TABLE_COMMENT, raw_term_add, &raw[i]);
        for (size_t j = 0; j < t->ncolumns; j++) {
            each_word(t->columns[j].name, W_COLUMN_NAME, raw_term_add, &raw[i]);
            each_word(t->columns[j].comment, W_COLUMN_COMMENT, raw_term_add, &raw[i]);
        }
        qsort(raw[i].v, raw[i].n, sizeof(RawTerm), raw_term_cmp);
        for (size_t j = 0; j < raw[i].n; j++)
            if (j == 0 || strcmp(raw[i].v[j].word, raw[i].v[j - 1].word) != 0)
                strlist_add_lower(&all, raw[i].v[j].word, strlen(raw[i].v[j].word));
    }
    /* all holds each table's distinct words once: its duplicates count the
     * tables a word appears in. */
    qsort(all.v, all.n, sizeof(char *), cmp_str_ptr);
    size_t *df = pgw_calloc(all.n ? all.n : 1, sizeof(size_t));
    size_t nw = 0;
    for (size_t i = 0; i < all.n; i++) {
        if (nw > 0 && strcmp(all.v[i], all.v[nw - 1]) == 0) {
            free(all.v[i]);
            df[nw - 1]++;
            continue;
        }
        all.v[nw] = all.v[i];
        df[nw++] = 1;
    }
    s->words = all.v;
    s->nwords = nw;

    for (size_t i = 0; i < s->ntables; i++) {
        AskTable *t = &s->tables[i];
        t->terms = pgw_calloc(raw[i].n ? raw[i].n : 1, sizeof(AskTerm));
        for (size_t j = 0; j < raw[i].n; j++) {
            if (j > 0 && strcmp(raw[i].v[j].word, raw[i].v[j - 1].word) == 0)
                continue;
            const char *key = raw[i].v[j].word;
            char **w = bsearch(&key, s->words, s->nwords, sizeof(char *), cmp_str_ptr);
            size_t wi = (size_t)(w - s->words);
            AskTerm *term = &t->terms[t->nterms++];
            term->word = *w;
            term->weight = raw[i].v[j].weight;
            term->idf = (float)log(1.0 + (double)s->ntables / (double)df[wi]);
        }
        for (size_t j = 0; j < raw[i].n; j++)
            free(raw[i].v[j].word);
        free(raw[i].v);
    }
    free(raw);
    free(df);
}

static void compute_fingerprint(PgwAskSchema *s)
{
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
    build_terms(s);
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
        free(t->terms);
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
    for (size_t i = 0; i < s->nwords; i++)
        free(s->words[i]);
    free(s->words);
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

/* ---- choosing tables ---- */

typedef struct QWord {
    char word[48];
    size_t len;
    float weight;
} QWord;

typedef struct QWords {
    size_t n;
    QWord v[256];
} QWords;

static void qword_add(void *arg, const char *word, float weight)
{
    QWords *q = arg;
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->v[i].word, word) == 0) {
            if (weight > q->v[i].weight)
                q->v[i].weight = weight;
            return;
        }
    }
    if (q->n == PGW_ARRAY_LEN(q->v))
        return;
    QWord *w = &q->v[q->n++];
    w->len = strlen(word);
    memcpy(w->word, word, w->len + 1);
    w->weight = weight;
}

/* How well one question word matches a table: its best term, weighted by
 * where the term appears and how rare it is. A question word inside a longer
 * schema word counts by the share of it that it covers, so "customer" nearly
 * fully names "sbcustomer" but "join" says little about "sbcustjoindate". */
static float word_score(const AskTable *t, const QWord *w)
{
    float best = 0.0f;
    for (size_t j = 0; j < t->nterms; j++) {
        const AskTerm *term = &t->terms[j];
        float m;
        if (strcmp(term->word, w->word) == 0)
            m = 1.0f;
        else if (w->len >= 4 && strstr(term->word, w->word) != NULL)
            m = SUBSTRING_MATCH * (float)w->len / (float)strlen(term->word);
        else
            continue;
        float v = m * term->weight * term->idf;
        if (v > best)
            best = v;
    }
    return best * w->weight;
}

typedef struct Ranked {
    size_t table;
    float score;
} Ranked;

static int ranked_cmp(const void *a, const void *b)
{
    const Ranked *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return (x->table > y->table) - (x->table < y->table);
}

size_t ask_select_tables(const PgwAskSchema *s, const char *question,
                         const char *const *history_questions, size_t nhist, size_t max,
                         size_t *out)
{
    if (max == 0 || s->ntables == 0)
        return 0;
    QWords *q = pgw_malloc(sizeof(*q));
    q->n = 0;
    each_word(question, 1.0f, qword_add, q);
    for (size_t i = 0; i < nhist; i++)
        each_word(history_questions[i], HISTORY_WEIGHT, qword_add, q);

    /* scores[i * nq + k]: question word k against table i. */
    size_t nq = q->n;
    float *scores = pgw_calloc(s->ntables * (nq ? nq : 1), sizeof(float));
    Ranked *r = pgw_malloc(s->ntables * sizeof(Ranked));
    float best = 0.0f;
    for (size_t i = 0; i < s->ntables; i++) {
        r[i].table = i;
        r[i].score = 0.0f;
        for (size_t k = 0; k < nq; k++) {
            scores[i * nq + k] = word_score(&s->tables[i], &q->v[k]);
            r[i].score += scores[i * nq + k];
        }
        if (r[i].score > best)
            best = r[i].score;
    }
    free(q);

    /* A question is usually about one schema: the one whose tables together
     * cover the most of its words. Its matching tables get a share of the
     * best table's score, so a second schema with one similar table name
     * does not push them out. Tables are sorted by schema: one pass. */
    float best_cover = 0.0f;
    size_t best_first = 0, best_end = 0;
    float *cover = pgw_calloc(nq ? nq : 1, sizeof(float));
    for (size_t i = 0; i < s->ntables;) {
        size_t end = i;
        memset(cover, 0, (nq ? nq : 1) * sizeof(float));
        while (end < s->ntables && strcmp(s->tables[end].schema, s->tables[i].schema) == 0) {
            for (size_t k = 0; k < nq; k++)
                if (scores[end * nq + k] > cover[k])
                    cover[k] = scores[end * nq + k];
            end++;
        }
        float total = 0.0f;
        for (size_t k = 0; k < nq; k++)
            total += cover[k];
        if (total > best_cover) {
            best_cover = total;
            best_first = i;
            best_end = end;
        }
        i = end;
    }
    free(cover);
    free(scores);
    for (size_t i = best_first; i < best_end; i++)
        if (r[i].score > 0.0f)
            r[i].score += SCHEMA_BONUS * best;
    qsort(r, s->ntables, sizeof(Ranked), ranked_cmp);

    bool *chosen = pgw_calloc(s->ntables, sizeof(bool));
    size_t n = 0;
    size_t nhits = 0;
    while (nhits < s->ntables && r[nhits].score > 0.0f)
        nhits++;
    /* The top hits first, then their neighbours, then the other hits. */
    size_t top = (max + 1) / 2;
    for (size_t i = 0; i < nhits && n < top; i++) {
        chosen[r[i].table] = true;
        out[n++] = r[i].table;
    }
    size_t ntop = n;
    for (size_t i = 0; i < ntop && n < max; i++) {
        const AskTable *t = &s->tables[out[i]];
        for (size_t j = 0; j < t->nlinks && n < max; j++) {
            if (chosen[t->links[j]])
                continue;
            chosen[t->links[j]] = true;
            out[n++] = t->links[j];
        }
    }
    for (size_t i = 0; i < nhits && n < max; i++) {
        if (chosen[r[i].table])
            continue;
        chosen[r[i].table] = true;
        out[n++] = r[i].table;
    }
    free(chosen);
    free(r);
    return n;
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

static void append_table_ddl(PgwBuf *b, const AskTable *t)
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
        if (c->comment != NULL || c->masked) {
            buf_append_str(b, " -- ");
            if (c->comment != NULL)
                append_comment(b, c->comment);
            if (c->masked)
                buf_append_str(b, c->comment != NULL ? " (values masked)" : "(values masked)");
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
        append_table_ddl(&b, &s->tables[ti]);
    }
    return buf_steal_str(&b);
}
