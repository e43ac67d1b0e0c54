/*
 * ask_values_int.h — what the ranking (ask_rank.c) and the DDL printer
 * (ask_schema.c) read of a value index (ask_values.c). Internal to ask*.
 */
#ifndef PGW_ASK_VALUES_INT_H
#define PGW_ASK_VALUES_INT_H

#include <stddef.h>

/* The public header is not included: the module's own .c files include both,
 * and a private header that includes its public one makes an include cycle. */
typedef struct PgwAskValues PgwAskValues;
typedef struct PgwAskMatches PgwAskMatches;

/* Add to scores[t] what the question's words (stems, in order) say through
 * the values of table t, and append the values they name to matches (may be
 * NULL). */
void ask_values_match(const PgwAskValues *v, const char *const *words, size_t nwords, float *scores,
                      PgwAskMatches *matches);

/* The distinct values known for one column, in the order they were given;
 * *vals is owned by the index. */
size_t ask_values_of(const PgwAskValues *v, size_t table, size_t column, const char *const **vals);

#endif
