/*
 * ask_int.h — the inside of a prompt schema snapshot, shared by the modules
 * that build it (ask_schema.c), rank its tables for a question (ask_rank.c)
 * and index the tenant's values (ask_values.c). Nothing outside ask* may
 * include it: everyone else sees PgwAskSchema through ask_schema.h only.
 *
 * A snapshot is immutable once ask_schema_build() returns, so every field
 * here may be read by any thread without a lock.
 */
#ifndef PGW_ASK_INT_H
#define PGW_ASK_INT_H

#include "pgw.h"

/* The public header is not included: the module's own .c files include both,
 * and a private header that includes its public one makes an include cycle. */
typedef struct PgwAskSchema PgwAskSchema;

typedef struct AskColumn {
    char *name;
    char *type;
    char *comment;
    bool not_null;
    bool primary_key;
    bool masked; /* a non-hiding mask applies: values are not the real ones */
    bool textual; /* a text-like type: its values may be indexed and sampled */
    char *ref_schema; /* foreign key target, NULL: none */
    char *ref_table;
    char *ref_column;
} AskColumn;

typedef struct AskLink {
    uint32_t table;
    bool declared; /* a foreign key; else a join guessed from column names */
} AskLink;

typedef struct AskTable {
    char *schema;
    char *name;
    char *comment;
    char relkind;
    size_t ncolumns;
    AskColumn *columns;
    size_t nlinks;
    AskLink *links; /* neighbours: foreign keys either way, guessed joins */
    size_t ddl_bytes; /* length of this table's DDL in a prompt, samples excluded */
} AskTable;

/* One distinct word of the schema (stemmed) and where it appears. */
typedef struct AskPosting {
    uint32_t table;
    float weight; /* the strongest place it appears in: table name, column, comment */
} AskPosting;

typedef struct AskTerm {
    char *word;
    size_t len;
    float idf;
    size_t nposts;
    AskPosting *posts;
} AskTerm;

struct PgwAskSchema {
    size_t ntables;
    AskTable *tables;
    size_t nvisible;
    char **visible; /* sorted lower-case names of visible schemas, tables, columns */
    size_t nhidden;
    char **hidden; /* sorted lower-case names left out, minus visible ones */
    size_t nterms;
    AskTerm *terms; /* sorted by word */
    size_t ddl_bytes; /* the whole schema's DDL */
    char *fingerprint;
};

/* ---- words (ask_rank.c) ----
 * Text is cut into words at anything but letters and digits, at snake_case
 * underscores, camelCase humps and letter/digit changes; words are
 * lower-cased, stopwords and one-letter words dropped, and reduced to their
 * stem (Snowball's English stemmer: superheroes → superhero, cities → citi),
 * the same for schema, values and questions so that all of them meet. */
typedef struct AskStemmer AskStemmer;
AskStemmer *ask_stemmer_new(void);
void ask_stemmer_free(AskStemmer *st);
typedef void (*AskWordFn)(void *arg, const char *word, size_t len, const char *raw, size_t rawlen,
                          size_t position);
/* Calls fn for each word of text: its stem, and the lower-cased word as
 * written (compound catalog names like "sbdailyprice" stem badly, so
 * substring matches use that); position counts the words of the text,
 * dropped ones included, so consecutive positions are adjacent words. */
void ask_each_word(AskStemmer *st, const char *text, AskWordFn fn, void *arg);

/* The term index over tables (ask_rank.c), built once per snapshot. */
void ask_rank_build(PgwAskSchema *s);
void ask_rank_free(PgwAskSchema *s);

#endif
