/*
 * ask_values.c — the tenant's own values of its prompt schema's columns:
 * an index from the words of a value to the columns holding it, so that a
 * question naming a value ("North Bohemia", "Lewis Hamilton", "female")
 * finds the table it lives in, and the few example values per column a
 * prompt may show (sample_values).
 *
 * What it must never hold: another tenant's values or a masked column's.
 * The runtime reads the values through the policy with the tenant's own
 * context (row filters and masks applied) and decides from that filtered
 * data which columns qualify; this module checks again what it can check
 * without the data: a value for a table or column the snapshot does not
 * show (hidden, unreadable, 'hide' mask) or for a column under any mask is
 * dropped, so a mistake upstream cannot put it in a prompt. It does no I/O.
 *
 * Bounded: values longer than ASK_VALUE_MAX_LEN bytes, more than
 * ASK_VALUES_PER_COLUMN per column or ASK_VALUES_MAX_BYTES in all are
 * dropped, the first ones given kept. Immutable once built, so any thread
 * may read it; it refers to the snapshot it was built for by table and
 * column index and must not outlive it.
 *
 * Matching: a value's words go through the same stemming as questions
 * (ask_each_word); the whole value is one key, and each word of a value of
 * several words is a weaker partial key ("Hamilton" alone). The question's
 * word runs are looked up longest first, and a run that matched a whole
 * value hides its shorter runs. A key in few tables counts more (idf).
 */
#include "ask_schema.h"
#include "ask_int.h"
#include "ask_values_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* What a named value is worth, per word, before idf: a value named in
 * full says more than a table-name word. */
#define W_VALUE 2.0f
#define W_PARTIAL 0.5f
/* A value of one word says less: "active", "transfer" are as often the
 * question's own words as a value it names; and when the word also names
 * a table or column, the question most likely means that. */
#define W_ONE_WORD 0.5f
#define W_SCHEMA_WORD 0.2f
#define KEY_WORDS_MAX 6
#define QUESTION_RUN_MAX 4
#define MATCHES_MAX 16

typedef struct ValueColumn {
    uint32_t table, column;
    size_t n;
    char **v;
} ValueColumn;

typedef struct ValueKey {
    char *key;
    uint32_t col; /* index into cols */
    uint32_t value; /* index into that column's values */
    uint8_t nwords;
    bool partial;
    bool schema_word; /* one word that also names something in the schema */
} ValueKey;

struct PgwAskValues {
    size_t ntables; /* of the snapshot: scores arrays are that long */
    size_t ncols;
    ValueColumn *cols;
    size_t nkeys;
    ValueKey *keys; /* sorted by key, then column */
    float *idf; /* per key entry: over the distinct tables of its key */
    size_t nvalues, bytes;
};

typedef struct Entry {
    uint32_t table, column;
    size_t order;
    const char *value;
} Entry;

static int entry_value_cmp(const void *a, const void *b)
{
    const Entry *x = a, *y = b;
    if (x->table != y->table)
        return x->table < y->table ? -1 : 1;
    if (x->column != y->column)
        return x->column < y->column ? -1 : 1;
    int c = strcmp(x->value, y->value);
    if (c != 0)
        return c;
    return (x->order > y->order) - (x->order < y->order);
}

static int entry_order_cmp(const void *a, const void *b)
{
    const Entry *x = a, *y = b;
    if (x->table != y->table)
        return x->table < y->table ? -1 : 1;
    if (x->column != y->column)
        return x->column < y->column ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

static long column_index(const AskTable *t, const char *name)
{
    for (size_t i = 0; i < t->ncolumns; i++)
        if (strcmp(t->columns[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* Words of one value, joined by spaces. */
typedef struct KeyWords {
    size_t n;
    char w[KEY_WORDS_MAX][48];
    bool too_many;
} KeyWords;

static void key_word(void *arg, const char *word, size_t len, const char *raw, size_t rawlen,
                     size_t position)
{
    (void)raw;
    (void)rawlen;
    (void)position;
    KeyWords *k = arg;
    if (k->n == KEY_WORDS_MAX || len >= sizeof(k->w[0])) {
        k->too_many = true;
        return;
    }
    memcpy(k->w[k->n], word, len);
    k->w[k->n][len] = '\0';
    k->n++;
}

typedef struct Keys {
    size_t n, cap;
    ValueKey *v;
} Keys;

static void keys_add(Keys *k, char *key, uint32_t col, uint32_t value, size_t nwords, bool partial)
{
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 1024;
        k->v = pgw_realloc(k->v, k->cap * sizeof(ValueKey));
    }
    k->v[k->n++] = (ValueKey){key, col, value, (uint8_t)nwords, partial};
}

static int key_cmp(const void *a, const void *b)
{
    const ValueKey *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c != 0)
        return c;
    if (x->partial != y->partial)
        return x->partial ? 1 : -1; /* whole values first */
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return (x->value > y->value) - (x->value < y->value);
}

static char *join_words(const char *const *w, size_t n)
{
    PgwBuf b;
    buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_append_byte(&b, ' ');
        buf_append_str(&b, w[i]);
    }
    return buf_steal_str(&b);
}

PgwAskValues *ask_values_build(const PgwAskSchema *s, size_t nrows, size_t ncols,
                               const char *const *cells)
{
    if (ncols != ASK_VALUES_NCOLS || (nrows > 0 && cells == NULL))
        return NULL;
    PgwAskValues *v = pgw_calloc(1, sizeof(*v));
    v->ntables = s->ntables;
    Entry *e = pgw_malloc((nrows ? nrows : 1) * sizeof(Entry));
    size_t ne = 0;
    long last_table = -1;
    const char *last_schema = NULL, *last_name = NULL;
    for (size_t r = 0; r < nrows; r++) {
        const char *const *row = cells + r * ncols;
        if (row[0] == NULL || row[1] == NULL || row[2] == NULL || row[3] == NULL)
            continue;
        size_t len = strlen(row[3]);
        if (len == 0 || len > ASK_VALUE_MAX_LEN)
            continue;
        if (last_schema == NULL || strcmp(last_schema, row[0]) != 0 ||
            strcmp(last_name, row[1]) != 0) {
            last_table = ask_schema_find_table(s, row[0], row[1]);
            last_schema = row[0];
            last_name = row[1];
        }
        if (last_table < 0)
            continue; /* not in the snapshot: hidden or unreadable */
        const AskTable *t = &s->tables[last_table];
        long c = column_index(t, row[2]);
        if (c < 0 || t->columns[c].masked)
            continue; /* hidden or masked: never indexed, never shown */
        e[ne++] = (Entry){(uint32_t)last_table, (uint32_t)c, r, row[3]};
    }
    if (ne > 0)
        qsort(e, ne, sizeof(Entry), entry_value_cmp);
    size_t w = 0;
    for (size_t i = 0; i < ne; i++)
        if (w == 0 || e[i].table != e[w - 1].table || e[i].column != e[w - 1].column ||
            strcmp(e[i].value, e[w - 1].value) != 0)
            e[w++] = e[i];
    ne = w;
    if (ne > 0)
        qsort(e, ne, sizeof(Entry), entry_order_cmp);

    /* Columns, keeping the first values given within the bounds. */
    v->cols = pgw_calloc(ne ? ne : 1, sizeof(ValueColumn));
    for (size_t i = 0; i < ne; i++) {
        size_t len = strlen(e[i].value);
        if (v->bytes + len > ASK_VALUES_MAX_BYTES)
            continue;
        ValueColumn *col = v->ncols > 0 ? &v->cols[v->ncols - 1] : NULL;
        if (col == NULL || col->table != e[i].table || col->column != e[i].column) {
            col = &v->cols[v->ncols++];
            col->table = e[i].table;
            col->column = e[i].column;
        }
        if (col->n > ASK_VALUES_PER_COLUMN)
            continue; /* already too many: dropped below */
        col->v = pgw_realloc(col->v, (col->n + 1) * sizeof(char *));
        col->v[col->n++] = pgw_strdup(e[i].value);
        v->nvalues++;
        v->bytes += len;
    }
    free(e);
    /* A column with more distinct values than a category has is no
     * category: none of its values is indexed or shown. */
    size_t wc = 0;
    for (size_t c = 0; c < v->ncols; c++) {
        if (v->cols[c].n > ASK_VALUES_PER_COLUMN) {
            for (size_t i = 0; i < v->cols[c].n; i++) {
                v->bytes -= strlen(v->cols[c].v[i]);
                free(v->cols[c].v[i]);
            }
            v->nvalues -= v->cols[c].n;
            free(v->cols[c].v);
            continue;
        }
        v->cols[wc++] = v->cols[c];
    }
    v->ncols = wc;

    /* The key index. */
    AskStemmer *st = ask_stemmer_new();
    Keys keys = {0};
    for (size_t c = 0; c < v->ncols; c++) {
        for (size_t i = 0; i < v->cols[c].n; i++) {
            KeyWords kw = {0};
            ask_each_word(st, v->cols[c].v[i], key_word, &kw);
            if (kw.n == 0 || kw.too_many)
                continue;
            const char *words[KEY_WORDS_MAX];
            for (size_t k = 0; k < kw.n; k++)
                words[k] = kw.w[k];
            keys_add(&keys, join_words(words, kw.n), (uint32_t)c, (uint32_t)i, kw.n, false);
            for (size_t k = 0; kw.n > 1 && k < kw.n; k++)
                keys_add(&keys, pgw_strdup(kw.w[k]), (uint32_t)c, (uint32_t)i, 1, true);
        }
    }
    ask_stemmer_free(st);
    if (keys.n > 0)
        qsort(keys.v, keys.n, sizeof(ValueKey), key_cmp);
    v->keys = keys.v;
    v->nkeys = keys.n;
    for (size_t i = 0; i < keys.n; i++) {
        if (keys.v[i].nwords != 1)
            continue;
        size_t lo = 0, hi = s->nterms;
        while (lo < hi && !keys.v[i].schema_word) {
            size_t mid = (lo + hi) / 2;
            int c = strcmp(keys.v[i].key, s->terms[mid].word);
            if (c == 0)
                keys.v[i].schema_word = true;
            else if (c < 0)
                hi = mid;
            else
                lo = mid + 1;
        }
    }
    v->idf = pgw_malloc((keys.n ? keys.n : 1) * sizeof(float));
    /* seen[t] == i + 1: table t already counted for the key starting at i. */
    size_t *seen = pgw_calloc(s->ntables ? s->ntables : 1, sizeof(size_t));
    for (size_t i = 0; i < keys.n;) {
        size_t end = i, df = 0;
        while (end < keys.n && strcmp(keys.v[end].key, keys.v[i].key) == 0) {
            uint32_t t = v->cols[keys.v[end].col].table;
            if (seen[t] != i + 1) {
                seen[t] = i + 1;
                df++;
            }
            end++;
        }
        float idf = (float)log(1.0 + (double)s->ntables / (double)df);
        for (size_t k = i; k < end; k++)
            v->idf[k] = idf;
        i = end;
    }
    free(seen);
    return v;
}

void ask_values_free(PgwAskValues *v)
{
    if (v == NULL)
        return;
    for (size_t c = 0; c < v->ncols; c++) {
        for (size_t i = 0; i < v->cols[c].n; i++)
            free(v->cols[c].v[i]);
        free(v->cols[c].v);
    }
    free(v->cols);
    for (size_t i = 0; i < v->nkeys; i++)
        free(v->keys[i].key);
    free(v->keys);
    free(v->idf);
    free(v);
}

static void append_literal(PgwBuf *b, const char *s)
{
    buf_append_byte(b, '\'');
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            buf_append_byte(b, '\'');
        buf_append_byte(b, (uint8_t)*p);
    }
    buf_append_byte(b, '\'');
}

static void append_quoted(PgwBuf *b, const char *s)
{
    buf_append_byte(b, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            buf_append_byte(b, '"');
        buf_append_byte(b, (uint8_t)*p);
    }
    buf_append_byte(b, '"');
}

char *ask_values_sql(const PgwAskSchema *s, size_t max_columns)
{
    PgwBuf b;
    buf_init(&b);
    size_t n = 0;
    for (size_t i = 0; i < s->ntables && n < max_columns; i++) {
        const AskTable *t = &s->tables[i];
        /* Plain views may be expensive to scan: tables and their kin only. */
        if (t->relkind != 'r' && t->relkind != 'p' && t->relkind != 'm')
            continue;
        for (size_t j = 0; j < t->ncolumns && n < max_columns; j++) {
            const AskColumn *c = &t->columns[j];
            if (!c->textual || c->masked)
                continue;
            if (n++ > 0)
                buf_append_str(&b, " UNION ALL ");
            buf_append_str(&b, "(SELECT ");
            append_literal(&b, t->schema);
            buf_append_str(&b, "::text, ");
            append_literal(&b, t->name);
            buf_append_str(&b, "::text, ");
            append_literal(&b, c->name);
            buf_append_str(&b, "::text, d.v FROM (SELECT DISTINCT r.v FROM (SELECT ");
            append_quoted(&b, c->name);
            buf_append_str(&b, "::text AS v FROM ");
            append_quoted(&b, t->schema);
            buf_append_byte(&b, '.');
            append_quoted(&b, t->name);
            buf_append_str(&b, " WHERE ");
            append_quoted(&b, c->name);
            buf_printf(&b, " IS NOT NULL LIMIT %d) r WHERE length(r.v) <= %d LIMIT %d) d)",
                       ASK_VALUES_SCAN_ROWS, ASK_VALUE_MAX_LEN, ASK_VALUES_PER_COLUMN + 1);
        }
    }
    if (n == 0) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal_str(&b);
}

size_t ask_values_count(const PgwAskValues *v)
{
    return v != NULL ? v->nvalues : 0;
}

size_t ask_values_of(const PgwAskValues *v, size_t table, size_t column, const char *const **vals)
{
    *vals = NULL;
    if (v == NULL)
        return 0;
    size_t lo = 0, hi = v->ncols;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const ValueColumn *c = &v->cols[mid];
        if (c->table == table && c->column == column) {
            *vals = (const char *const *)c->v;
            return c->n;
        }
        if (c->table < table || (c->table == table && c->column < column))
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static size_t first_key(const PgwAskValues *v, const char *key)
{
    size_t lo = 0, hi = v->nkeys;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(v->keys[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void add_match(PgwAskMatches *m, const PgwAskValues *v, const ValueKey *k)
{
    if (m == NULL || m->n == MATCHES_MAX)
        return;
    const ValueColumn *c = &v->cols[k->col];
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].table == c->table && m->v[i].column == c->column &&
            m->v[i].value == c->v[k->value])
            return;
    if (m->v == NULL)
        m->v = pgw_malloc(MATCHES_MAX * sizeof(PgwAskMatch));
    m->v[m->n++] = (PgwAskMatch){c->table, c->column, c->v[k->value]};
}

void ask_values_match(const PgwAskValues *v, const char *const *words, size_t nwords, float *scores,
                      PgwAskMatches *matches)
{
    if (v == NULL || v->nkeys == 0 || nwords == 0)
        return;
    bool *covered = pgw_calloc(nwords, sizeof(bool));
    /* best[t]: the strongest credit this run gives table t (a run naming
     * many values of one table counts once for it). */
    float *best = pgw_calloc(v->ntables ? v->ntables : 1, sizeof(float));
    for (size_t n = nwords < QUESTION_RUN_MAX ? nwords : QUESTION_RUN_MAX; n >= 1; n--) {
        for (size_t i = 0; i + n <= nwords; i++) {
            bool free_run = true;
            for (size_t k = i; k < i + n; k++)
                free_run = free_run && !covered[k];
            if (!free_run)
                continue;
            char *key = join_words(words + i, n);
            size_t k = first_key(v, key);
            bool whole = false;
            for (size_t j = k; j < v->nkeys && strcmp(v->keys[j].key, key) == 0; j++) {
                const ValueKey *vk = &v->keys[j];
                float credit = W_VALUE * (float)n * v->idf[j] * (vk->partial ? W_PARTIAL : 1.0f);
                if (n == 1)
                    credit *= vk->schema_word ? W_SCHEMA_WORD : W_ONE_WORD;
                uint32_t t = v->cols[vk->col].table;
                if (credit > best[t])
                    best[t] = credit;
                if (!vk->partial) {
                    whole = true;
                    add_match(matches, v, vk);
                }
            }
            free(key);
            for (size_t t = 0; t < v->ntables; t++) {
                scores[t] += best[t];
                best[t] = 0.0f;
            }
            if (whole)
                for (size_t c = i; c < i + n; c++)
                    covered[c] = true;
        }
    }
    free(best);
    free(covered);
}
