/*
 * ask_rank.c — which tables of a tenant's prompt schema a question needs,
 * decided locally, without any model, in well under a millisecond on a few
 * hundred tables.
 *
 * Words. Schema names, comments, the tenant's values and the question are
 * cut into words the same way (ask_each_word) and reduced to their stem with
 * Snowball's English stemmer (libstemmer), so "superheroes", "superhero" and
 * "hero_power" meet on "superhero" and "hero", "ordered" on "order".
 *
 * Scoring is a small bag-of-words ranking over a term index built once per
 * snapshot: every distinct stem points at the tables it appears in, with the
 * weight of the strongest place (table name > column name = table comment >
 * column comment), and words found in few tables count more (idf). A
 * question word inside a longer schema word, or a schema word inside a longer
 * question word, counts by the share it covers (catalog names are lower-case,
 * so "sbcustomer" cannot be split otherwise). Values the question names
 * (ask_values.c: "North Bohemia", "Lewis Hamilton") count for the tables
 * holding them; a handful of general concepts (male/female → gender, a
 * currency's name → currency) add their category word at a discount.
 *
 * Order. Every table with a real match comes before any table without one;
 * a matching table that reaches the better matches only through tables that
 * do not match brings the shortest such bridge right after it (foreign keys
 * and joins guessed from column names both count as links); then come the
 * unmatched neighbours of the matches, then the best-connected tables of the
 * question's schema, so a question sharing no word with the schema still
 * gets the tables most others hang on. The caller takes a prefix of that
 * order within its budget (ask_choose). Deterministic: ties go by table
 * order.
 */
#include "ask_schema.h"
#include "ask_int.h"
#include "ask_values_int.h"

#include <ctype.h>
#include <libstemmer.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* ---- words ---- */

struct AskStemmer {
    struct sb_stemmer *sb;
};

AskStemmer *ask_stemmer_new(void)
{
    AskStemmer *st = pgw_calloc(1, sizeof(*st));
    st->sb = sb_stemmer_new("english", "UTF_8");
    return st;
}

void ask_stemmer_free(AskStemmer *st)
{
    if (st == NULL)
        return;
    if (st->sb != NULL)
        sb_stemmer_delete(st->sb);
    free(st);
}

/* Function words say nothing about tables. Sorted: binary search. */
static const char *const stopwords[] = {
    "a",      "about", "after", "against", "all",   "also",  "am",     "an",      "and",    "any",
    "are",    "as",    "at",    "be",      "been",  "being", "both",   "but",     "by",     "can",
    "could",  "did",   "do",    "does",    "doing", "done",  "each",   "either",  "else",   "every",
    "find",   "for",   "from",  "get",     "give",  "had",   "has",    "have",    "having", "he",
    "her",    "here",  "hers",  "him",     "his",   "how",   "i",      "if",      "in",     "into",
    "is",     "it",    "its",   "just",    "let",   "list",  "many",   "me",      "much",   "my",
    "of",     "off",   "on",    "or",      "our",   "ours",  "please", "provide", "return", "she",
    "should", "show",  "so",    "such",    "tell",  "than",  "that",   "the",     "their",  "them",
    "then",   "there", "these", "they",    "this",  "those", "to",     "too",     "us",     "very",
    "want",   "was",   "we",    "were",    "what",  "when",  "where",  "which",   "while",  "who",
    "whom",   "whose", "why",   "will",    "with",  "would", "you",    "your",
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

/* English irregular forms the stemmer leaves alone ("written" never meets
 * "writes"). Sorted by form. */
static const struct {
    const char *form, *base;
} irregular[] = {
    {"ate", "eat"},
    {"began", "begin"},
    {"begun", "begin"},
    {"bought", "buy"},
    {"brought", "bring"},
    {"built", "build"},
    {"came", "come"},
    {"children", "child"},
    {"chose", "choose"},
    {"chosen", "choose"},
    {"did", "do"},
    {"drew", "draw"},
    {"driven", "drive"},
    {"drove", "drive"},
    {"fed", "feed"},
    {"feet", "foot"},
    {"flew", "fly"},
    {"flown", "fly"},
    {"forgot", "forget"},
    {"gave", "give"},
    {"geese", "goose"},
    {"given", "give"},
    {"gone", "go"},
    {"got", "get"},
    {"grew", "grow"},
    {"grown", "grow"},
    {"held", "hold"},
    {"hid", "hide"},
    {"kept", "keep"},
    {"knew", "know"},
    {"known", "know"},
    {"led", "lead"},
    {"left", "leave"},
    {"lent", "lend"},
    {"lost", "lose"},
    {"made", "make"},
    {"meant", "mean"},
    {"met", "meet"},
    {"mice", "mouse"},
    {"paid", "pay"},
    {"people", "person"},
    {"ran", "run"},
    {"rode", "ride"},
    {"sang", "sing"},
    {"sat", "sit"},
    {"saw", "see"},
    {"seen", "see"},
    {"sent", "send"},
    {"shot", "shoot"},
    {"shown", "show"},
    {"sold", "sell"},
    {"spent", "spend"},
    {"stole", "steal"},
    {"stolen", "steal"},
    {"stood", "stand"},
    {"sung", "sing"},
    {"taken", "take"},
    {"taught", "teach"},
    {"teeth", "tooth"},
    {"thought", "think"},
    {"threw", "throw"},
    {"thrown", "throw"},
    {"told", "tell"},
    {"took", "take"},
    {"understood", "understand"},
    {"went", "go"},
    {"won", "win"},
    {"wore", "wear"},
    {"worn", "wear"},
    {"written", "write"},
    {"wrote", "write"},
};

static const char *irregular_base(const char *w)
{
    size_t lo = 0, hi = PGW_ARRAY_LEN(irregular);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(w, irregular[mid].form);
        if (c == 0)
            return irregular[mid].base;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Bytes of UTF-8 sequences count as letters: "Zürich" stays one word. */
static bool word_byte(unsigned char c)
{
    return isalnum(c) || c >= 0x80;
}

#define WORD_MAX 40

void ask_each_word(AskStemmer *st, const char *text, AskWordFn fn, void *arg)
{
    if (text == NULL)
        return;
    const unsigned char *p = (const unsigned char *)text;
    size_t position = 0;
    while (*p != '\0') {
        while (*p != '\0' && !word_byte(*p))
            p++;
        if (*p == '\0')
            break;
        const unsigned char *start = p;
        p++;
        while (*p != '\0' && word_byte(*p)) {
            bool hump = isupper(*p) && islower(p[-1]);
            bool kind_change = (isdigit(*p) != 0) != (isdigit(p[-1]) != 0);
            if (hump || kind_change)
                break;
            p++;
        }
        size_t len = (size_t)(p - start);
        size_t pos = position++;
        if (len < 2 || len > WORD_MAX || isdigit(*start))
            continue;
        char w[WORD_MAX + 1];
        for (size_t i = 0; i < len; i++)
            w[i] = (char)tolower(start[i]);
        w[len] = '\0';
        if (is_stopword(w))
            continue;
        const char *base = irregular_base(w);
        const char *stemmed = base != NULL ? base : w;
        size_t slen = strlen(stemmed);
        if (st != NULL && st->sb != NULL) {
            const sb_symbol *r = sb_stemmer_stem(st->sb, (const sb_symbol *)stemmed, (int)slen);
            if (r != NULL) {
                stemmed = (const char *)r;
                slen = (size_t)sb_stemmer_length(st->sb);
            }
        }
        if (slen < 2)
            continue;
        fn(arg, stemmed, slen, w, len, pos);
    }
}

/* ---- the term index ---- */

/* Where a word appears decides how much it says about a table. */
#define W_TABLE_NAME 3.0f
#define W_COLUMN_NAME 1.0f
#define W_TABLE_COMMENT 1.0f
#define W_COLUMN_COMMENT 0.5f

typedef struct RawTerm {
    char *word;
    uint32_t table;
    float weight;
} RawTerm;

typedef struct RawTerms {
    size_t n, cap;
    RawTerm *v;
    uint32_t table;
    float weight;
} RawTerms;

static void raw_push(RawTerms *r, const char *word, size_t len)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->v = pgw_realloc(r->v, r->cap * sizeof(RawTerm));
    }
    r->v[r->n].word = pgw_strndup(word, len);
    r->v[r->n].table = r->table;
    r->v[r->n].weight = r->weight;
    r->n++;
}

/* The stem, and the word as written when that differs: both are terms, so
 * a question word meets "sbdailyprice" inside its unstemmed form. */
static void raw_add(void *arg, const char *word, size_t len, const char *raw, size_t rawlen,
                    size_t position)
{
    (void)position;
    raw_push(arg, word, len);
    if (rawlen != len || memcmp(raw, word, len) != 0)
        raw_push(arg, raw, rawlen);
}

static int raw_cmp(const void *a, const void *b)
{
    const RawTerm *x = a, *y = b;
    int c = strcmp(x->word, y->word);
    if (c != 0)
        return c;
    if (x->table != y->table)
        return x->table < y->table ? -1 : 1;
    return (x->weight < y->weight) - (x->weight > y->weight); /* heaviest first */
}

void ask_rank_build(PgwAskSchema *s)
{
    AskStemmer *st = ask_stemmer_new();
    RawTerms raw = {0};
    for (size_t i = 0; i < s->ntables; i++) {
        const AskTable *t = &s->tables[i];
        raw.table = (uint32_t)i;
        raw.weight = W_TABLE_NAME;
        ask_each_word(st, t->name, raw_add, &raw);
        raw.weight = W_TABLE_COMMENT;
        ask_each_word(st, t->comment, raw_add, &raw);
        for (size_t j = 0; j < t->ncolumns; j++) {
            raw.weight = W_COLUMN_NAME;
            ask_each_word(st, t->columns[j].name, raw_add, &raw);
            raw.weight = W_COLUMN_COMMENT;
            ask_each_word(st, t->columns[j].comment, raw_add, &raw);
        }
    }
    ask_stemmer_free(st);
    if (raw.n > 0)
        qsort(raw.v, raw.n, sizeof(RawTerm), raw_cmp);
    /* Sorted by word, then table, heaviest first: one pass builds the terms
     * and their postings (one per table, the strongest place). */
    s->terms = pgw_calloc(raw.n ? raw.n : 1, sizeof(AskTerm));
    s->nterms = 0;
    for (size_t i = 0; i < raw.n;) {
        size_t end = i;
        while (end < raw.n && strcmp(raw.v[end].word, raw.v[i].word) == 0)
            end++;
        AskTerm *term = &s->terms[s->nterms++];
        term->word = raw.v[i].word;
        term->len = strlen(term->word);
        term->posts = pgw_malloc((end - i) * sizeof(AskPosting));
        for (size_t k = i; k < end; k++) {
            if (k > i && raw.v[k].table == raw.v[k - 1].table)
                continue;
            term->posts[term->nposts].table = raw.v[k].table;
            term->posts[term->nposts].weight = raw.v[k].weight;
            term->nposts++;
        }
        term->idf = (float)log(1.0 + (double)s->ntables / (double)term->nposts);
        for (size_t k = i + 1; k < end; k++)
            free(raw.v[k].word);
        i = end;
    }
    free(raw.v);
}

void ask_rank_free(PgwAskSchema *s)
{
    for (size_t i = 0; i < s->nterms; i++) {
        free(s->terms[i].word);
        free(s->terms[i].posts);
    }
    free(s->terms);
    s->terms = NULL;
    s->nterms = 0;
}

/* ---- the question ---- */

/* Weight of an earlier question's words: follow-ups keep their tables. */
#define HISTORY_WEIGHT 0.5f
/* Weight of a concept's category word ("female" → gender). */
#define CONCEPT_WEIGHT 0.6f
/* Share of the best table's score given to the matching tables of the
 * schema that covers the question best. */
#define SCHEMA_BONUS 0.25f
/* A match below this share of the best table's score does not bring a
 * bridge along: the weakest matches are often noise. */
#define BRIDGE_MIN 0.15f
/* A match in another schema than the question's counts among the first
 * when it is at least this share of the best. */
#define OTHER_SCHEMA_MIN 0.5f
/* Longest bridge: this many tables between a match and the others. */
#define BRIDGE_MAX 2

#define QWORDS_MAX 256

typedef struct QWord {
    char word[WORD_MAX + 1]; /* the stem */
    size_t len;
    char raw[WORD_MAX + 1]; /* as written, lower-cased */
    size_t rawlen;
    float weight;
} QWord;

typedef struct Question {
    size_t n;
    QWord v[QWORDS_MAX];
    /* The current question's words in order, for the value index. */
    size_t nseq;
    char seq[QWORDS_MAX][WORD_MAX + 1];
    float weight; /* of the text being added */
    bool record_seq;
} Question;

static void question_add(Question *q, const char *word, size_t len, const char *raw, size_t rawlen,
                         float weight)
{
    for (size_t i = 0; i < q->n; i++) {
        if (q->v[i].len == len && memcmp(q->v[i].word, word, len) == 0) {
            if (weight > q->v[i].weight)
                q->v[i].weight = weight;
            return;
        }
    }
    if (q->n == QWORDS_MAX)
        return;
    QWord *w = &q->v[q->n++];
    memcpy(w->word, word, len);
    w->word[len] = '\0';
    w->len = len;
    memcpy(w->raw, raw, rawlen);
    w->raw[rawlen] = '\0';
    w->rawlen = rawlen;
    w->weight = weight;
}

/* General concepts a question names by an instance rather than by the word
 * a schema uses: a value of the concept → the concept. Stems, sorted by
 * instance. Only categories whose instances are ordinary English words that
 * no schema would name a table after are listed. */
static const struct {
    const char *instance;
    const char *concept;
} concepts[] = {
    {"april", "month"},      {"august", "month"},    {"boy", "gender"},
    {"decemb", "month"},     {"dollar", "currenc"},  {"euro", "currenc"},
    {"februari", "month"},   {"femal", "gender"},    {"friday", "weekday"},
    {"girl", "gender"},      {"januari", "month"},   {"juli", "month"},
    {"june", "month"},       {"koruna", "currenc"},  {"krona", "currenc"},
    {"krone", "currenc"},    {"male", "gender"},     {"man", "gender"},
    {"march", "month"},      {"men", "gender"},      {"monday", "weekday"},
    {"novemb", "month"},     {"octob", "month"},     {"peso", "currenc"},
    {"pound", "currenc"},    {"rubl", "currenc"},    {"rupe", "currenc"},
    {"saturday", "weekday"}, {"septemb", "month"},   {"sunday", "weekday"},
    {"thursday", "weekday"}, {"tuesday", "weekday"}, {"wednesday", "weekday"},
    {"woman", "gender"},     {"women", "gender"},    {"yen", "currenc"},
    {"yuan", "currenc"},     {"zloti", "currenc"},
};

static const char *concept_of(const char *word)
{
    size_t lo = 0, hi = PGW_ARRAY_LEN(concepts);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(word, concepts[mid].instance);
        if (c == 0)
        return concepts[mid].concept;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Units of time in a question are nearly always a filter on a date
 * ("in the past 7 days", "per month"), not the name of a table: they count
 * at a discount. Stems, sorted. */
static const char *const time_words[] = {
    "ago",   "annual",   "daili", "day",     "hour",   "minut", "month",  "monthli",   "quarter",
    "today", "tomorrow", "week",  "weekend", "weekli", "year",  "yearli", "yesterday",
};
#define TIME_WEIGHT 0.3f

static bool is_time_word(const char *w)
{
    size_t lo = 0, hi = PGW_ARRAY_LEN(time_words);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(w, time_words[mid]);
        if (c == 0)
            return true;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

static void question_word(void *arg, const char *word, size_t len, const char *raw, size_t rawlen,
                          size_t position)
{
    (void)position;
    Question *q = arg;
    char stem[WORD_MAX + 1];
    memcpy(stem, word, len);
    stem[len] = '\0';
    question_add(q, word, len, raw, rawlen,
                 is_time_word(stem) ? q->weight * TIME_WEIGHT : q->weight);
    if (q->record_seq && q->nseq < QWORDS_MAX) {
        memcpy(q->seq[q->nseq], word, len);
        q->seq[q->nseq][len] = '\0';
        q->nseq++;
    }
    char w[WORD_MAX + 1];
    memcpy(w, word, len);
    w[len] = '\0';
    const char *c = concept_of(w);
    if (c != NULL)
        question_add(q, c, strlen(c), c, strlen(c), q->weight * CONCEPT_WEIGHT);
}

/* ---- scoring ---- */

static const AskTerm *find_term(const PgwAskSchema *s, const char *word)
{
    size_t lo = 0, hi = s->nterms;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(word, s->terms[mid].word);
        if (c == 0)
            return &s->terms[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static void credit(float *row, const AskTerm *term, float m)
{
    for (size_t p = 0; p < term->nposts; p++) {
        float v = m * term->posts[p].weight * term->idf;
        if (v > row[term->posts[p].table])
            row[term->posts[p].table] = v;
    }
}

/* Is the shorter word a part of the longer one as in a compound
 * ("custom" in "sbcustom", "hero" in "superhero", "daily" in
 * "sbdailyprice")? Not when it only lacks a short ending: stems already
 * unify a word's forms, so what is left ("serv" and "servic", "part" and
 * "parti") are different words. */
static bool compound_part(const char *longer, size_t llen, const char *shorter, size_t slen)
{
    const char *at = strstr(longer, shorter);
    if (at == NULL)
        return false;
    if (at == longer && llen - slen < 4) {
        /* At the start with a short ending: look for a later occurrence. */
        at = strstr(longer + 1, shorter);
        return at != NULL;
    }
    return true;
}

/* Is a short schema word an abbreviation of a longer question word: the
 * same first three letters, the rest in order ("emp" of "employee", "dept"
 * of "department", "cust" of "customer"; not "mean" of "mexican")?
 * Catalogs are full of them. */
static bool abbreviates(const char *abbr, size_t alen, const char *word, size_t wlen)
{
    if (alen < 3 || alen > 5 || wlen < alen + 2 || memcmp(abbr, word, 3) != 0)
        return false;
    size_t k = 3;
    for (size_t i = 3; i < wlen && k < alen; i++)
        if (word[i] == abbr[k])
            k++;
    return k == alen;
}

#define ABBREVIATION_MATCH 0.6f

/* One inside the other. The share covered decides, so "join" says little
 * about "sbcustjoindate". */
static void substring_scores(const PgwAskSchema *s, const char *word, size_t len, float *best)
{
    if (len < 4)
        return;
    for (size_t i = 0; i < s->nterms; i++) {
        const AskTerm *term = &s->terms[i];
        if (term->len < len && abbreviates(term->word, term->len, word, len)) {
            credit(best, term, ABBREVIATION_MATCH);
            continue;
        }
        if (term->len > len) {
            if (compound_part(term->word, term->len, word, len))
                credit(best, term, (float)len / (float)term->len);
        } else if (term->len < len && term->len >= 4 &&
                   compound_part(word, len, term->word, term->len)) {
            credit(best, term, (float)term->len / (float)len);
        }
    }
}

/* best[t]: how well one question word matches table t, its best term
 * weighted by where the term appears and how rare it is. */
static void word_scores(const PgwAskSchema *s, const QWord *w, float *best)
{
    const AskTerm *exact = find_term(s, w->word);
    if (exact != NULL)
        credit(best, exact, 1.0f);
    substring_scores(s, w->word, w->len, best);
    if (w->rawlen != w->len || strcmp(w->raw, w->word) != 0) {
        exact = find_term(s, w->raw);
        if (exact != NULL)
            credit(best, exact, 1.0f);
        substring_scores(s, w->raw, w->rawlen, best);
    }
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

/* The schema whose tables together cover the most of the question's words:
 * [first, end) in the sorted tables; the first schema when nothing matches. */
static void best_schema(const PgwAskSchema *s, const float *scores, size_t nq, size_t *first,
                        size_t *end)
{
    float best_cover = 0.0f;
    *first = *end = 0;
    float *cover = pgw_calloc(nq ? nq : 1, sizeof(float));
    for (size_t i = 0; i < s->ntables;) {
        size_t e = i;
        memset(cover, 0, (nq ? nq : 1) * sizeof(float));
        while (e < s->ntables && strcmp(s->tables[e].schema, s->tables[i].schema) == 0) {
            for (size_t k = 0; k < nq; k++)
                if (scores[k * s->ntables + e] > cover[k])
                    cover[k] = scores[k * s->ntables + e];
            e++;
        }
        float total = 0.0f;
        for (size_t k = 0; k < nq; k++)
            total += cover[k];
        if (*end == 0 || total > best_cover) {
            best_cover = total;
            *first = i;
            *end = e;
        }
        i = e;
    }
    free(cover);
}

/* ---- the order ---- */

typedef struct Order {
    size_t n;
    size_t *v;
    bool *in;
    size_t nmatched;
    size_t nbridges;
} Order;

static bool order_add(Order *o, size_t t)
{
    if (o->in[t])
        return false;
    o->in[t] = true;
    o->v[o->n++] = t;
    return true;
}

static bool linked_to_chosen(const PgwAskSchema *s, const Order *o, size_t t)
{
    const AskTable *tb = &s->tables[t];
    for (size_t i = 0; i < tb->nlinks; i++)
        if (o->in[tb->links[i].table])
            return true;
    return false;
}

/* Shortest path (at most BRIDGE_MAX tables between) from t to any table
 * already chosen in t's schema, through tables not chosen; its inner tables
 * are added after t. Breadth-first over the link graph; declared foreign
 * keys are tried before guessed joins at each step, so an equally short
 * declared path wins. */
static void add_bridge(const PgwAskSchema *s, Order *o, size_t t, size_t *prev, size_t *queue,
                       size_t *depth)
{
    const size_t none = (size_t)-1;
    for (size_t i = 0; i < s->ntables; i++)
        prev[i] = none;
    size_t head = 0, tail = 0;
    queue[tail++] = t;
    prev[t] = t;
    depth[t] = 0;
    size_t found = none;
    while (head < tail && found == none) {
        size_t u = queue[head++];
        if (depth[u] > BRIDGE_MAX)
            break;
        const AskTable *tb = &s->tables[u];
        for (int pass = 0; pass < 2 && found == none; pass++) {
            for (size_t i = 0; i < tb->nlinks; i++) {
                const AskLink *l = &tb->links[i];
                if (l->declared != (pass == 0) || prev[l->table] != none)
                    continue;
                prev[l->table] = u;
                depth[l->table] = depth[u] + 1;
                if (o->in[l->table] && l->table != t) {
                    found = l->table;
                    break;
                }
                if (depth[l->table] <= BRIDGE_MAX)
                    queue[tail++] = l->table;
            }
        }
    }
    if (found == none)
        return;
    for (size_t u = prev[found]; u != t; u = prev[u])
        if (order_add(o, u))
            o->nbridges++;
}

static void add_neighbours(const PgwAskSchema *s, Order *o, size_t t, bool declared)
{
    const AskTable *tb = &s->tables[t];
    for (size_t i = 0; i < tb->nlinks; i++)
        if (tb->links[i].declared == declared)
            order_add(o, tb->links[i].table);
}

size_t ask_rank_order(const PgwAskSchema *s, const PgwAskValues *values, const char *question,
                      const char *const *history, size_t nhist, size_t *out, size_t *nmatched,
                      PgwAskMatches *matches)
{
    if (nmatched != NULL)
        *nmatched = 0;
    if (s->ntables == 0)
        return 0;
    AskStemmer *st = ask_stemmer_new();
    Question *q = pgw_calloc(1, sizeof(*q));
    q->weight = 1.0f;
    q->record_seq = true;
    ask_each_word(st, question, question_word, q);
    q->record_seq = false;
    q->weight = HISTORY_WEIGHT;
    for (size_t i = 0; i < nhist; i++)
        ask_each_word(st, history[i], question_word, q);
    ask_stemmer_free(st);

    size_t nt = s->ntables, nq = q->n;
    /* scores[k * nt + t]: question word k against table t. */
    float *scores = pgw_calloc((nq ? nq : 1) * nt, sizeof(float));
    for (size_t k = 0; k < nq; k++)
        word_scores(s, &q->v[k], scores + k * nt);
    Ranked *r = pgw_malloc(nt * sizeof(Ranked));
    for (size_t t = 0; t < nt; t++) {
        r[t].table = t;
        r[t].score = 0.0f;
        for (size_t k = 0; k < nq; k++)
            r[t].score += scores[k * nt + t] * q->v[k].weight;
    }
    /* Values the question names (this question's words only). */
    if (values != NULL) {
        const char *seq[QWORDS_MAX];
        for (size_t i = 0; i < q->nseq; i++)
            seq[i] = q->seq[i];
        float *vs = pgw_calloc(nt, sizeof(float));
        ask_values_match(values, seq, q->nseq, vs, matches);
        for (size_t t = 0; t < nt; t++)
            r[t].score += vs[t];
        free(vs);
    }
    float best = 0.0f;
    for (size_t t = 0; t < nt; t++)
        if (r[t].score > best)
            best = r[t].score;
    size_t first, end;
    best_schema(s, scores, nq, &first, &end);
    free(scores);
    free(q);
    for (size_t t = first; t < end; t++)
        if (r[t].score > 0.0f)
            r[t].score += SCHEMA_BONUS * best;
    qsort(r, nt, sizeof(Ranked), ranked_cmp);

    Order o = {0, out, pgw_calloc(nt, sizeof(bool)), 0, 0};
    size_t *prev = pgw_malloc(3 * nt * sizeof(size_t));
    size_t nhits = 0;
    while (nhits < nt && r[nhits].score > 0.0f)
        nhits++;
    /* Every match of the question's schema (and the strong ones of other
     * schemas), each followed by the bridge that connects it to the better
     * ones when it is strong enough to be meant; their neighbours; then
     * the other schemas' weaker matches and their neighbours. */
    for (int pass = 0; pass < 2; pass++) {
        size_t from = o.n;
        for (size_t i = 0; i < nhits; i++) {
            size_t t = r[i].table;
            bool primary = (t >= first && t < end) || r[i].score >= OTHER_SCHEMA_MIN * r[0].score;
            if (primary != (pass == 0) || !order_add(&o, t))
                continue;
            o.nmatched++;
            if (o.n > 1 && r[i].score >= BRIDGE_MIN * r[0].score && !linked_to_chosen(s, &o, t))
                add_bridge(s, &o, t, prev, prev + nt, prev + 2 * nt);
        }
        size_t to = o.n;
        for (size_t i = from; i < to; i++)
            add_neighbours(s, &o, o.v[i], true);
        for (size_t i = from; i < to; i++)
            add_neighbours(s, &o, o.v[i], false);
    }
    /* Then the tables most others link to: the question's schema first (the
     * first schema when nothing matched), then the rest. */
    Ranked *deg = r; /* reused */
    size_t nd = 0;
    for (size_t t = 0; t < nt; t++) {
        if (o.in[t])
            continue;
        deg[nd].table = t;
        deg[nd].score = (float)s->tables[t].nlinks + (t >= first && t < end ? 1e6f : 0.0f);
        nd++;
    }
    if (nd > 0)
        qsort(deg, nd, sizeof(Ranked), ranked_cmp);
    for (size_t i = 0; i < nd; i++)
        order_add(&o, deg[i].table);
    free(prev);
    free(o.in);
    free(r);
    if (nmatched != NULL)
        *nmatched = o.nmatched;
    return o.n;
}

size_t ask_select_tables(const PgwAskSchema *s, const char *question,
                         const char *const *history_questions, size_t nhist, size_t max,
                         size_t *out)
{
    return ask_rank_tables(s, NULL, question, history_questions, nhist, max, out);
}

size_t ask_rank_tables(const PgwAskSchema *s, const PgwAskValues *values, const char *question,
                       const char *const *history_questions, size_t nhist, size_t max, size_t *out)
{
    if (max == 0 || s->ntables == 0)
        return 0;
    size_t *all = pgw_malloc(s->ntables * sizeof(size_t));
    size_t n = ask_rank_order(s, values, question, history_questions, nhist, all, NULL, NULL);
    if (n > max)
        n = max;
    memcpy(out, all, n * sizeof(size_t));
    free(all);
    return n;
}

/* ---- the budget ---- */

void ask_budget_default(PgwAskBudget *b)
{
    b->schema_bytes = ASK_DEFAULT_SCHEMA_BYTES;
    b->min_tables = ASK_DEFAULT_MIN_TABLES;
    b->max_tables = ASK_DEFAULT_MAX_TABLES;
    b->samples_per_column = 0;
}

int ask_choose(const PgwAskSchema *s, const PgwAskValues *values, const char *question,
               const char *const *history, size_t nhist, const PgwAskBudget *budget,
               PgwAskChoice *out)
{
    memset(out, 0, sizeof(*out));
    PgwAskBudget def;
    if (budget == NULL) {
        ask_budget_default(&def);
        budget = &def;
    }
    size_t nt = s->ntables;
    out->order = pgw_malloc((nt ? nt : 1) * sizeof(size_t));
    out->norder = ask_rank_order(s, values, question, history, nhist, out->order, &out->nmatched,
                                 &out->matches);
    out->tables = pgw_malloc((nt ? nt : 1) * sizeof(size_t));
    if (s->ddl_bytes <= budget->schema_bytes) {
        /* Everything fits: the whole schema, in its own order, so the
         * prompt's prefix is the same for every question (providers cache
         * it). */
        out->whole = true;
        for (size_t i = 0; i < nt; i++)
            out->tables[i] = i;
        out->ntables = nt;
        return 0;
    }
    size_t bytes = 0;
    size_t max = budget->max_tables > 0 ? budget->max_tables : nt;
    for (size_t i = 0; i < out->norder && out->ntables < max; i++) {
        size_t t = out->order[i];
        size_t tb = s->tables[t].ddl_bytes + 1;
        if (out->ntables >= budget->min_tables && bytes + tb > budget->schema_bytes)
            continue;
        out->tables[out->ntables++] = t;
        bytes += tb;
    }
    return 0;
}

void ask_choice_free(PgwAskChoice *c)
{
    if (c == NULL)
        return;
    free(c->tables);
    free(c->order);
    free(c->matches.v);
    memset(c, 0, sizeof(*c));
}
