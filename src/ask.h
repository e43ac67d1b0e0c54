/*
 * ask.h — the pure logic of ASK: recognizing an ASK statement, building the
 * model's prompt, taking SQL out of its answer, keying the translation cache,
 * cleaning error texts before the model sees them, and per-tenant limits.
 *
 * Nothing here does I/O: the runtime runs the introspection query, calls the
 * model (llm), stores translations (cache) and sends the generated SQL
 * through policy_rewrite() like any client SQL. See ask_schema.h for the
 * masked schema and the local table choice.
 */
#ifndef PGW_ASK_H
#define PGW_ASK_H

#include "ask_schema.h"
#include "config.h"
#include "pgw.h"

/* Bump when the prompt's wording changes: cached translations made with
 * another prompt are not reused. */
#define ASK_PROMPT_VERSION "pgwarden-ask-2"
/* The marker the model is told to answer with when the schema cannot answer. */
#define ASK_CANNOT_ANSWER "CANNOT_ANSWER"

/* ---- recognition ---- */

typedef enum {
    PGW_ASK_NONE, /* not an ASK: the statement goes on as SQL */
    PGW_ASK_RUN, /* ASK question */
    PGW_ASK_EXPLAIN, /* EXPLAIN ASK question: return the SQL, do not run it */
    PGW_ASK_RELATION, /* SELECT ... FROM ask('question') [AS] alias ... */
} PgwAskKind;

/* Is this statement text an ASK? The keyword is case-insensitive, leading
 * whitespace and comments are skipped; the question runs to the end of the
 * text, optionally quoted '...' ('' unescaped) or $$...$$ / $tag$...$tag$,
 * trailing ';' and whitespace dropped. *question is malloc'd (NULL for
 * NONE). Texts that cannot be an ASK return NONE after a cheap scan, without
 * parsing. Returns -1 with err for an ASK that cannot be served: no question,
 * ask() with anything but one string constant, more than one ask(), ask()
 * in ROWS FROM or WITH ORDINALITY or with a column definition list. */
int ask_recognize(const char *sql, PgwAskKind *kind, char **question, char *err,
                  size_t errlen) PGW_WUR;

/* For PGW_ASK_RELATION: sql with its ask('...') range function replaced by
 * (generated_sql), keeping the alias and column aliases (adding AS ask when
 * there is none, since a subquery in FROM needs one). Textual splice at the
 * positions libpg_query reports; *out is malloc'd. */
int ask_splice(const char *sql, const char *generated_sql, char **out, char *err,
               size_t errlen) PGW_WUR;

/* ---- prompt and answer ---- */

typedef struct PgwAskTurn {
    const char *question;
    const char *sql;
} PgwAskTurn;

#define ASK_PROMPT_MAX_MSGS 16
typedef struct PgwAskPrompt {
    char *system;
    size_t nmsgs;
    char *roles[ASK_PROMPT_MAX_MSGS]; /* "user" or "assistant" */
    char *contents[ASK_PROMPT_MAX_MSGS];
} PgwAskPrompt;

/* What one attempt's prompt is made of. */
typedef struct PgwAskPromptInput {
    const PgwAskSchema *schema;
    const PgwAskValues *values; /* the tenant's values; NULL: none */
    const PgwAskBudget *budget; /* NULL: the defaults (no sample values) */
    const char *examples; /* blocks "Q: ...\nSQL: ..." separated by blank lines; NULL */
    const PgwAskTurn *history;
    size_t nhist;
    const char *question;
    const char *failed_sql; /* a retry: the SQL that failed and its cleaned error */
    const char *failed_error;
} PgwAskPromptInput;

/* The prompt for one attempt. System: the rules (PostgreSQL, one read-only
 * SELECT, only this schema, CANNOT_ANSWER: <reason> otherwise), the schema
 * section (ask_choose: the whole schema when it fits the budget, else the
 * tables the question needs; sample values when the budget asks for them),
 * the few-shot examples. Messages: the latest earlier turns as question /
 * ```sql``` answer pairs, the question, and for a retry the failed SQL and
 * its error. choice (may be NULL) gets what was chosen, for progress
 * notices; free it with ask_choice_free. -1 for a blank question. */
int ask_prompt_build(const PgwAskPromptInput *in, PgwAskPrompt *out, PgwAskChoice *choice) PGW_WUR;

/* The same with tables chosen by the caller: tables NULL shows the whole
 * schema; otherwise the whole schema still when it fits the default budget
 * (a small schema is never under-sent), else the given tables, or the
 * default choice when ntables is 0 (never an empty schema). */
int ask_build_prompt(const PgwAskSchema *s, const size_t *tables, size_t ntables,
                     const char *examples, const PgwAskTurn *history, size_t nhist,
                     const char *question, const char *failed_sql, const char *failed_error,
                     PgwAskPrompt *out) PGW_WUR;

/* The budget the config asks for ([llm] schema_budget, min_tables,
 * max_tables, sample_values). */
void ask_budget_from_config(const PgwConfig *cfg, PgwAskBudget *b);

/* One line naming the chosen tables for a progress notice: "ask: 3 of 40
 * tables chosen: orders, customers, products" or "ask: the whole schema (12
 * tables)". malloc'd. */
char *ask_choice_describe(const PgwAskSchema *s, const PgwAskChoice *c);
void ask_prompt_free(PgwAskPrompt *p);

/* SQL out of a model answer: the first ```sql (or plain ```) fenced block,
 * else the whole text when it starts with SELECT, WITH, VALUES or TABLE;
 * trailing ';' and whitespace stripped. Returns 0 with *sql, 1 with *reason
 * when the model says CANNOT_ANSWER (or "I cannot answer" without SQL), -1
 * with err when there is no SQL. */
int ask_extract_sql(const char *answer, char **sql, char **reason, char *err,
                    size_t errlen) PGW_WUR;

/* Hex SHA-256 over the tenant, the schema fingerprint, the normalized question
 * (lower-case, whitespace collapsed, trailing punctuation dropped), the
 * earlier turns, the model and ASK_PROMPT_VERSION. malloc'd. */
char *ask_cache_key(const char *tenant, const char *schema_fingerprint, const char *question,
                    const PgwAskTurn *history, size_t nhist, const char *model);
/* The normalization the key uses, exposed for tests. malloc'd. */
char *ask_normalize_question(const char *question);

/* An error text fit to show the model (and, in the final refusal, the
 * client). Names: a name in a name position of the message (after
 * "column", "relation", ...) or written by failed_sql is kept only when the
 * tenant can see it or failed_sql defines it as an alias, else it becomes
 * ASK_UNKNOWN_NAME — the same for a hidden name as for one that does not
 * exist, decided without consulting what is hidden; other words of the
 * message are replaced only when they are hidden names. Values: quoted
 * literals become '***' / "***" (an apostrophe inside a word is no quote);
 * a data error (SQLSTATE class 22 or 23) keeps no quoted text at all.
 * sqlstate and failed_sql may be NULL. malloc'd. */
#define ASK_UNKNOWN_NAME "<unknown>"
char *ask_clean_error_sql(const PgwAskSchema *s, const PgwConfig *cfg, const char *sqlstate,
                          const char *error_message, const char *failed_sql);
char *ask_clean_error(const PgwAskSchema *s, const PgwConfig *cfg, const char *error_message);
char *ask_clean_error_state(const PgwAskSchema *s, const PgwConfig *cfg, const char *sqlstate,
                            const char *error_message);

/* ---- per-tenant limits (thread-safe) ---- */

typedef struct PgwAskLimiter PgwAskLimiter;
PgwAskLimiter *ask_limiter_new(void);
void ask_limiter_free(PgwAskLimiter *l);
/* May this tenant call the model now? rate: calls per period_ms (0: no
 * limit), a sliding window; budget: tokens per UTC day (0: no limit).
 * Returns 0 and counts the call, or -1 with a message for the client
 * ("ASK rate limit reached for tenant acme: 10 per minute; try again in 12 s"). */
int ask_limiter_take(PgwAskLimiter *l, const char *tenant, int rate, int period_ms, long budget,
                     int64_t now_ms, char *msg, size_t msglen) PGW_WUR;
/* Count the tokens a call used against the tenant's daily budget. */
void ask_limiter_add_tokens(PgwAskLimiter *l, const char *tenant, long tokens, int64_t now_ms);

#endif
