/*
 * ask.c — ASK's pure logic: which statements are ASKs, what the model is
 * told, what is taken from its answer, how translations are keyed, what an
 * error may say back to it, and how often a tenant may ask.
 *
 * ask_recognize() sits on the hot path: every statement passes through it.
 * It decides from the first keyword (after whitespace and comments) for ASK
 * and EXPLAIN ASK, and only parses (libpg_query) a text in which "ask" is
 * followed by "(" — the shape of ask('...') as a relation. Replacing that
 * relation is a textual splice at the positions the parser and the scanner
 * report, so the rest of the user's statement stays byte for byte what they
 * wrote and the policy sees it as usual.
 *
 * The model is untrusted and so is its answer: this module only extracts
 * text from it; the policy decides what runs. Nothing here does I/O, and
 * nothing it puts in a prompt comes from anywhere but the masked schema
 * (ask_schema.c), the session's own questions and cleaned error texts.
 */
#include "ask.h"
#include "policy_catalog.h" /* the built-in function names */
#include "policy_walk.h"

#include <ctype.h>
#include <openssl/sha.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

/* Fill the caller's error buffer (named err, errlen in every function). */
#define set_err(...)                                                                               \
    ((err) != NULL && (errlen) > 0 ? (void)snprintf(err, errlen, __VA_ARGS__) : (void)0)

/* ---- recognition ---- */

static bool ident_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

/* strcasestr without _GNU_SOURCE. */
static const char *find_ci(const char *hay, const char *needle)
{
    /* needle is lower case; its first byte is tested before the call,
     * since this runs over every statement's text */
    size_t n = strlen(needle);
    for (; *hay != '\0'; hay++)
        if ((*hay | 0x20) == needle[0] && strncasecmp(hay, needle, n) == 0)
            return hay;
    return NULL;
}

/* Skip whitespace, -- comments and (nested) block comments. */
static const char *skip_space(const char *p)
{
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (p[0] == '-' && p[1] == '-') {
            while (*p != '\0' && *p != '\n')
                p++;
            continue;
        }
        if (p[0] == '/' && p[1] == '*') {
            int depth = 1;
            p += 2;
            while (*p != '\0' && depth > 0) {
                if (p[0] == '/' && p[1] == '*') {
                    depth++;
                    p += 2;
                } else if (p[0] == '*' && p[1] == '/') {
                    depth--;
                    p += 2;
                } else {
                    p++;
                }
            }
            continue;
        }
        return p;
    }
}

/* The keyword at p (case-insensitive, whole word)? Returns what follows. */
static const char *keyword(const char *p, const char *kw)
{
    size_t n = strlen(kw);
    if (strncasecmp(p, kw, n) != 0 || ident_char((unsigned char)p[n]))
        return NULL;
    return p + n;
}

/* A dollar-quote opening tag at p ($$ or $tag$)? Its length, else 0. */
static size_t dollar_tag(const char *p)
{
    if (p[0] != '$')
        return 0;
    size_t i = 1;
    if (isalpha((unsigned char)p[i]) || p[i] == '_')
        while (isalnum((unsigned char)p[i]) || p[i] == '_')
            i++;
    return p[i] == '$' ? i + 1 : 0;
}

/* The question after ASK: p..end trimmed; one quoted literal spanning all
 * of it is unquoted, anything else is taken as written. */
static char *question_text(const char *p)
{
    p = skip_space(p);
    size_t len = strlen(p);
    while (len > 0 && (isspace((unsigned char)p[len - 1]) || p[len - 1] == ';'))
        len--;
    if (len >= 2 && p[0] == '\'') {
        PgwBuf b;
        buf_init(&b);
        size_t i = 1;
        for (; i < len; i++) {
            if (p[i] == '\'') {
                if (i + 1 < len && p[i + 1] == '\'') {
                    buf_append_byte(&b, '\'');
                    i++;
                    continue;
                }
                break;
            }
            buf_append_byte(&b, (uint8_t)p[i]);
        }
        if (i == len - 1)
            return buf_steal_str(&b);
        buf_free(&b); /* 'a' and b: not one literal */
    }
    size_t tag = dollar_tag(p);
    if (tag > 0 && len >= 2 * tag && strncmp(p + len - tag, p, tag) == 0) {
        const char *inner = p + tag;
        size_t n = len - 2 * tag;
        /* The closing tag must not occur inside: $$a$$ b $$c$$ is not one. */
        bool one = true;
        for (size_t i = 0; i + tag <= n; i++)
            if (strncmp(inner + i, p, tag) == 0)
                one = false;
        if (one)
            return pgw_strndup(inner, n);
    }
    return pgw_strndup(p, len);
}

static bool blank(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return *s == '\0';
}

/* Cheap test before any parsing: "ask" as a whole word followed by "(". */
static bool maybe_ask_call(const char *sql)
{
    for (const char *p = sql; (p = find_ci(p, "ask")) != NULL; p += 3) {
        if (p > sql && ident_char((unsigned char)p[-1]))
            continue;
        const char *q = p + 3;
        while (isspace((unsigned char)*q))
            q++;
        if (*q == '(')
            return true;
    }
    return false;
}


typedef struct AskCall {
    int count; /* ask() range functions found */
    const char *problem; /* why one cannot be served, NULL: fine */
    char *question; /* the first one's */
    int location; /* of its FuncCall, byte offset */
    bool has_alias;
} AskCall;

static const PgQuery__FuncCall *ask_func_call(const PgQuery__Node *n)
{
    /* RangeFunction.functions holds List(FuncCall, column definitions). */
    if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_LIST || n->list->n_items == 0)
        return NULL;
    const PgQuery__Node *fn = n->list->items[0];
    if (fn == NULL || fn->node_case != PG_QUERY__NODE__NODE_FUNC_CALL)
        return NULL;
    const PgQuery__FuncCall *fc = fn->func_call;
    if (fc->n_funcname != 1 || fc->funcname[0]->node_case != PG_QUERY__NODE__NODE_STRING ||
        strcmp(fc->funcname[0]->string->sval, "ask") != 0)
        return NULL;
    return fc;
}

static void find_ask_call(const ProtobufCMessage *m, void *arg)
{
    AskCall *ac = arg;
    if (m->descriptor != &pg_query__range_function__descriptor)
        return;
    const PgQuery__RangeFunction *rf = (const PgQuery__RangeFunction *)m;
    for (size_t i = 0; i < rf->n_functions; i++) {
        const PgQuery__FuncCall *fc = ask_func_call(rf->functions[i]);
        if (fc == NULL)
            continue;
        if (++ac->count > 1) {
            ac->problem = "only one ask('...') per statement is supported";
            return;
        }
        if (rf->is_rowsfrom || rf->n_functions > 1 || rf->ordinality)
            ac->problem = "ask('...') cannot be used in ROWS FROM or WITH ORDINALITY";
        else if (rf->n_coldeflist > 0)
            ac->problem = "ask('...') takes no column definition list";
        else if (fc->n_args != 1 || fc->args[0]->node_case != PG_QUERY__NODE__NODE_A_CONST ||
                 fc->args[0]->a_const->val_case != PG_QUERY__A__CONST__VAL_SVAL || fc->agg_star ||
                 fc->agg_distinct || fc->n_agg_order > 0)
            ac->problem = "ask() takes one string constant: the question";
        else if (blank(fc->args[0]->a_const->sval->sval))
            ac->problem = "ASK needs a question";
        else
            ac->question = pgw_strdup(fc->args[0]->a_const->sval->sval);
        ac->location = fc->location;
        ac->has_alias = rf->alias != NULL;
    }
}

/* Parse sql and find its ask() relation. 1: found (ac filled), 0: none,
 * -1: cannot be served (err). */
static int locate_ask_call(const char *sql, AskCall *ac, char *err, size_t errlen)
{
    memset(ac, 0, sizeof(*ac));
    PgQueryProtobufParseResult pr = pg_query_parse_protobuf(sql);
    if (pr.error != NULL) {
        /* Not valid SQL: the backend (or the policy) will say why. */
        pg_query_free_protobuf_parse_result(pr);
        return 0;
    }
    PgQuery__ParseResult *tree = pg_query__parse_result__unpack(
        NULL, pr.parse_tree.len, (const uint8_t *)pr.parse_tree.data);
    pg_query_free_protobuf_parse_result(pr);
    if (tree == NULL) {
        set_err("ask: cannot read the parse tree");
        return -1;
    }
    policy_walk_messages(&tree->base, find_ask_call, ac);
    int rc = ac->count > 0 ? 1 : 0;
    if (rc == 1 && tree->n_stmts > 1)
        ac->problem = "ask('...') must be the only statement in the query";
    pg_query__parse_result__free_unpacked(tree, NULL);
    if (rc == 1 && ac->problem != NULL) {
        set_err("%s", ac->problem);
        free(ac->question);
        ac->question = NULL;
        return -1;
    }
    return rc;
}

int ask_recognize(const char *sql, PgwAskKind *kind, char **question, char *err, size_t errlen)
{
    *kind = PGW_ASK_NONE;
    *question = NULL;
    const char *p = skip_space(sql);
    const char *rest = keyword(p, "ask");
    PgwAskKind k = PGW_ASK_RUN;
    if (rest == NULL && (rest = keyword(p, "explain")) != NULL) {
        rest = keyword(skip_space(rest), "ask");
        k = PGW_ASK_EXPLAIN;
    }
    if (rest != NULL) {
        char *q = question_text(rest);
        if (blank(q)) {
            free(q);
            set_err("ASK needs a question");
            return -1;
        }
        *kind = k;
        *question = q;
        return 0;
    }
    if (!maybe_ask_call(p))
        return 0;
    AskCall ac;
    int rc = locate_ask_call(sql, &ac, err, errlen);
    if (rc <= 0)
        return rc;
    *kind = PGW_ASK_RELATION;
    *question = ac.question;
    return 0;
}

int ask_splice(const char *sql, const char *generated_sql, char **out, char *err, size_t errlen)
{
    *out = NULL;
    AskCall ac;
    PgQueryScanResult sr = {0};
    PgQuery__ScanResult *scan = NULL;
    int rc = locate_ask_call(sql, &ac, err, errlen);
    if (rc == 0)
        set_err("the statement has no ask('...') relation");
    if (rc <= 0)
        goto fail;
    free(ac.question);

    /* The call ends at the ")" after ask ( 'question' — the scanner knows
     * where, whatever comments or spacing the user wrote in between. */
    sr = pg_query_scan(sql);
    if (sr.error != NULL) {
        set_err("ask: %s", sr.error->message);
        goto fail;
    }
    scan = pg_query__scan_result__unpack(NULL, sr.pbuf.len, (const uint8_t *)sr.pbuf.data);
    if (scan == NULL) {
        set_err("ask: cannot read the scan result");
        goto fail;
    }
    long end = -1;
    for (size_t i = 0; i + 3 < scan->n_tokens; i++) {
        if (scan->tokens[i]->start != ac.location)
            continue;
        /* From "ask" to its matching ")"; comments are tokens without parentheses. */
        int depth = 0;
        for (size_t j = i + 1; j < scan->n_tokens; j++) {
            if (scan->tokens[j]->token == PG_QUERY__TOKEN__ASCII_40)
                depth++;
            else if (scan->tokens[j]->token == PG_QUERY__TOKEN__ASCII_41 && --depth == 0) {
                end = scan->tokens[j]->end;
                break;
            }
        }
        break;
    }
    if (end < 0) {
        set_err("ask: cannot find the end of ask('...')");
        goto fail;
    }
    PgwBuf b;
    buf_init(&b);
    buf_append(&b, sql, (size_t)ac.location);
    /* The newline keeps a trailing -- comment in the model's SQL from
     * swallowing the closing parenthesis. */
    buf_printf(&b, "(%s\n)", generated_sql);
    if (!ac.has_alias)
        buf_append_str(&b, " AS ask");
    buf_append_str(&b, sql + end);
    *out = buf_steal_str(&b);
    pg_query__scan_result__free_unpacked(scan, NULL);
    pg_query_free_scan_result(sr);
    return 0;

fail:
    if (scan != NULL)
        pg_query__scan_result__free_unpacked(scan, NULL);
    if (sr.pbuf.data != NULL || sr.error != NULL)
        pg_query_free_scan_result(sr);
    return -1;
}

/* ---- prompt ---- */

static const char system_rules[] =
    "You translate questions into SQL for PostgreSQL 15.\n"
    "Rules:\n"
    "- Answer with exactly one read-only query (SELECT, or WITH ... SELECT) in a ```sql fenced "
    "code block. Never write INSERT, UPDATE, DELETE, DDL or more than one statement.\n"
    "- Use only the tables and columns of the schema below; do not invent names.\n"
    "- When the question cannot be answered from this schema, reply with one line: " ASK_CANNOT_ANSWER
    ": <reason>\n"
    "- Qualify column names with table aliases when more than one table is involved.\n";

/* Few-shot examples: blocks "Q: ...\nSQL: ..." (SQL may continue on further
 * lines) separated by blank lines; malformed blocks are skipped. */
static void append_examples(PgwBuf *b, const char *examples)
{
    bool any = false;
    const char *p = examples;
    while (*p != '\0') {
        /* One block: up to a blank line. */
        const char *end = p;
        for (;;) {
            const char *nl = strchr(end, '\n');
            if (nl == NULL) {
                end += strlen(end);
                break;
            }
            const char *next = nl + 1;
            const char *t = next;
            while (*t == ' ' || *t == '\t' || *t == '\r')
                t++;
            if (*t == '\n' || *t == '\0') {
                end = nl;
                break;
            }
            end = next;
        }
        char *block = pgw_strndup(p, (size_t)(end - p));
        char *q = strstr(block, "Q:");
        char *s = strstr(block, "SQL:");
        if (q != NULL && s != NULL && q < s) {
            char *qtext = q + 2, *stext = s + 4;
            *s = '\0';
            while (isspace((unsigned char)*qtext))
                qtext++;
            while (isspace((unsigned char)*stext))
                stext++;
            size_t ql = strlen(qtext), sl = strlen(stext);
            while (ql > 0 && isspace((unsigned char)qtext[ql - 1]))
                ql--;
            while (sl > 0 && isspace((unsigned char)stext[sl - 1]))
                sl--;
            if (ql > 0 && sl > 0) {
                if (!any)
                    buf_append_str(b, "\nExamples:\n");
                any = true;
                buf_printf(b, "\nQuestion: %.*s\n```sql\n%.*s\n```\n", (int)ql, qtext, (int)sl,
                           stext);
            }
        }
        free(block);
        p = end;
        while (isspace((unsigned char)*p))
            p++;
    }
}

static void add_msg(PgwAskPrompt *p, const char *role, char *content)
{
    p->roles[p->nmsgs] = pgw_strdup(role);
    p->contents[p->nmsgs] = content;
    p->nmsgs++;
}

static char *fenced(const char *sql)
{
    PgwBuf b;
    buf_init(&b);
    buf_printf(&b, "```sql\n%s\n```", sql);
    return buf_steal_str(&b);
}

/* Each question on its own "Question:" line: the model (and the offline
 * stand-in, which matches its scripted rules there) can tell the question
 * from the error text of a retry. */
static char *question_message(const char *question)
{
    PgwBuf b;
    buf_init(&b);
    buf_printf(&b, "Question: %s", question);
    return buf_steal_str(&b);
}

static int build_prompt(const PgwAskPromptInput *in, const PgwAskChoice *choice, PgwAskPrompt *out)
{
    memset(out, 0, sizeof(*out));
    if (in->question == NULL || blank(in->question))
        return -1;
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, system_rules);
    char *ddl = ask_schema_prompt_ddl(in->schema, in->values, choice, in->budget);
    buf_printf(&b, "\nSchema:\n%s", ddl);
    free(ddl);
    if (in->examples != NULL)
        append_examples(&b, in->examples);
    out->system = buf_steal_str(&b);

    /* Room for the question and a retry pair; the latest turns matter most. */
    size_t room = (ASK_PROMPT_MAX_MSGS - 3) / 2;
    size_t first = in->nhist > room ? in->nhist - room : 0;
    for (size_t i = first; i < in->nhist; i++) {
        if (in->history[i].question == NULL || in->history[i].sql == NULL)
            continue;
        add_msg(out, "user", question_message(in->history[i].question));
        add_msg(out, "assistant", fenced(in->history[i].sql));
    }
    add_msg(out, "user", question_message(in->question));
    if (in->failed_sql != NULL) {
        add_msg(out, "assistant", fenced(in->failed_sql));
        buf_printf(&b, "That SQL failed: %s\nFix it and answer with the corrected query.",
                   in->failed_error != NULL ? in->failed_error : "unknown error");
        add_msg(out, "user", buf_steal_str(&b));
    }
    return 0;
}

int ask_prompt_build(const PgwAskPromptInput *in, PgwAskPrompt *out, PgwAskChoice *choice)
{
    memset(out, 0, sizeof(*out));
    if (choice != NULL)
        memset(choice, 0, sizeof(*choice));
    if (in->question == NULL || blank(in->question))
        return -1;
    PgwAskChoice c;
    const char *hq[ASK_PROMPT_MAX_MSGS];
    size_t nh = 0;
    for (size_t i = 0; i < in->nhist && nh < ASK_PROMPT_MAX_MSGS; i++)
        if (in->history[i].question != NULL)
            hq[nh++] = in->history[i].question;
    if (ask_choose(in->schema, in->values, in->question, hq, nh, in->budget, &c) != 0)
        return -1;
    int rc = build_prompt(in, &c, out);
    if (choice != NULL && rc == 0)
        *choice = c;
    else
        ask_choice_free(&c);
    return rc;
}

int ask_build_prompt(const PgwAskSchema *s, const size_t *tables, size_t ntables,
                     const char *examples, const PgwAskTurn *history, size_t nhist,
                     const char *question, const char *failed_sql, const char *failed_error,
                     PgwAskPrompt *out)
{
    PgwAskPromptInput in = {
        .schema = s,
        .examples = examples,
        .history = history,
        .nhist = nhist,
        .question = question,
        .failed_sql = failed_sql,
        .failed_error = failed_error,
    };
    memset(out, 0, sizeof(*out));
    if (question == NULL || blank(question))
        return -1;
    PgwAskBudget def;
    ask_budget_default(&def);
    if (tables != NULL && ntables == 0)
        return ask_prompt_build(&in, out, NULL);
    size_t n = ask_schema_ntables(s);
    PgwAskChoice c;
    memset(&c, 0, sizeof(c));
    c.tables = pgw_malloc((n ? n : 1) * sizeof(size_t));
    if (tables == NULL || ask_schema_ddl_bytes(s) <= def.schema_bytes) {
        c.whole = true;
        for (size_t i = 0; i < n; i++)
            c.tables[i] = i;
        c.ntables = n;
    } else {
        for (size_t i = 0; i < ntables; i++)
            if (tables[i] < n)
                c.tables[c.ntables++] = tables[i];
    }
    int rc = build_prompt(&in, &c, out);
    ask_choice_free(&c);
    return rc;
}

void ask_budget_from_config(const PgwConfig *cfg, PgwAskBudget *b)
{
    ask_budget_default(b);
    if (cfg == NULL)
        return;
    if (cfg->llm_schema_budget > 0)
        b->schema_bytes = cfg->llm_schema_budget;
    if (cfg->llm_min_tables > 0)
        b->min_tables = (size_t)cfg->llm_min_tables;
    if (cfg->llm_max_tables > 0)
        b->max_tables = (size_t)cfg->llm_max_tables;
    if (b->max_tables < b->min_tables)
        b->max_tables = b->min_tables;
    b->samples_per_column = cfg->llm_sample_values ? ASK_SAMPLES_PER_COLUMN : 0;
}

char *ask_choice_describe(const PgwAskSchema *s, const PgwAskChoice *c)
{
    PgwBuf b;
    buf_init(&b);
    size_t n = ask_schema_ntables(s);
    if (c->whole) {
        buf_printf(&b, "ask: the whole schema (%zu table%s)", n, n == 1 ? "" : "s");
        return buf_steal_str(&b);
    }
    buf_printf(&b, "ask: %zu of %zu tables chosen:", c->ntables, n);
    for (size_t i = 0; i < c->ntables; i++) {
        const char *sn, *tn;
        ask_schema_table_name(s, c->tables[i], &sn, &tn);
        if (strcmp(sn, "public") == 0)
            buf_printf(&b, "%s %s", i ? "," : "", tn);
        else
            buf_printf(&b, "%s %s.%s", i ? "," : "", sn, tn);
        if (b.len > 900) {
            buf_printf(&b, ", ... (%zu more)", c->ntables - i - 1);
            break;
        }
    }
    return buf_steal_str(&b);
}

void ask_prompt_free(PgwAskPrompt *p)
{
    if (p == NULL)
        return;
    free(p->system);
    for (size_t i = 0; i < p->nmsgs; i++) {
        free(p->roles[i]);
        free(p->contents[i]);
    }
    memset(p, 0, sizeof(*p));
}

/* ---- answer ---- */

static char *trimmed_sql(const char *s, size_t len)
{
    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len > 0 && (isspace((unsigned char)s[len - 1]) || s[len - 1] == ';'))
        len--;
    return len > 0 ? pgw_strndup(s, len) : NULL;
}

/* The first fenced block tagged sql-ish or untagged: its body, else NULL. */
static char *fenced_sql(const char *answer)
{
    const char *p = answer;
    while ((p = strstr(p, "```")) != NULL) {
        const char *tag = p + 3;
        const char *nl = strchr(tag, '\n');
        if (nl == NULL)
            return NULL;
        const char *body = nl + 1;
        const char *close = strstr(body, "```");
        if (close == NULL)
            close = body + strlen(body); /* unterminated: take the rest */
        size_t taglen = (size_t)(nl - tag);
        char lang[32] = "";
        if (taglen < sizeof(lang)) {
            for (size_t i = 0; i < taglen; i++)
                lang[i] = (char)tolower((unsigned char)tag[i]);
            lang[taglen] = '\0';
        }
        char *t = lang + strspn(lang, " \t\r");
        t[strcspn(t, " \t\r")] = '\0';
        if (*t == '\0' || strstr(t, "sql") != NULL || strncmp(t, "postgres", 8) == 0) {
            char *sql = trimmed_sql(body, (size_t)(close - body));
            if (sql != NULL)
                return sql;
        }
        if (*close == '\0')
            return NULL;
        p = close + 3;
    }
    return NULL;
}

int ask_extract_sql(const char *answer, char **sql, char **reason, char *err, size_t errlen)
{
    *sql = NULL;
    *reason = NULL;
    if (answer == NULL) {
        set_err("the model gave no answer");
        return -1;
    }
    const char *marker = strstr(answer, ASK_CANNOT_ANSWER);
    if (marker != NULL) {
        const char *r = marker + strlen(ASK_CANNOT_ANSWER);
        while (*r == ':' || *r == ' ' || *r == '\t')
            r++;
        size_t n = strcspn(r, "\n");
        *reason = n > 0 ? pgw_strndup(r, n) : pgw_strdup("the schema cannot answer the question");
        return 1;
    }
    char *s = fenced_sql(answer);
    if (s == NULL) {
        const char *p = answer;
        while (isspace((unsigned char)*p))
            p++;
        static const char *const starts[] = {"select", "with", "values", "table"};
        for (size_t i = 0; i < PGW_ARRAY_LEN(starts); i++)
            if (keyword(p, starts[i]) != NULL)
                s = trimmed_sql(p, strlen(p));
    }
    if (s != NULL) {
        *sql = s;
        return 0;
    }
    if (find_ci(answer, "cannot answer") != NULL) {
        const char *p = answer;
        while (isspace((unsigned char)*p))
            p++;
        *reason = trimmed_sql(p, strcspn(p, "\n"));
        if (*reason == NULL)
            *reason = pgw_strdup("the schema cannot answer the question");
        return 1;
    }
    set_err("the model's answer contains no SQL query");
    return -1;
}

/* ---- translation cache key ---- */

char *ask_normalize_question(const char *question)
{
    PgwBuf b;
    buf_init(&b);
    bool space = false;
    for (const char *p = question; *p != '\0'; p++) {
        if (isspace((unsigned char)*p)) {
            space = b.len > 0;
            continue;
        }
        if (space)
            buf_append_byte(&b, ' ');
        space = false;
        buf_append_byte(&b, (uint8_t)tolower((unsigned char)*p));
    }
    while (b.len > 0 && strchr("?.!;,: ", b.data[b.len - 1]) != NULL)
        b.len--;
    buf_append_byte(&b, '\0');
    b.len--;
    return buf_steal_str(&b);
}

/* Length-prefixed, so no choice of texts can make two keys' inputs equal. */
static void key_field(PgwBuf *b, const char *s)
{
    if (s == NULL)
        s = "";
    buf_printf(b, "%zu:", strlen(s));
    buf_append_str(b, s);
}

char *ask_cache_key(const char *tenant, const char *schema_fingerprint, const char *question,
                    const PgwAskTurn *history, size_t nhist, const char *model)
{
    PgwBuf b;
    buf_init(&b);
    key_field(&b, ASK_PROMPT_VERSION);
    /* The tenant first: a translation is the model's answer to a prompt
     * made of one tenant's schema, values and samples, and it names what
     * that prompt showed. Two tenants whose masked schemas are alike must
     * still never share one (the other's SQL, literals from its values and
     * the timing of a hit would tell what it asked and what it holds). */
    key_field(&b, tenant);
    key_field(&b, schema_fingerprint);
    key_field(&b, model);
    char *nq = ask_normalize_question(question != NULL ? question : "");
    key_field(&b, nq);
    free(nq);
    buf_printf(&b, "%zu turns", nhist);
    for (size_t i = 0; i < nhist; i++) {
        nq = ask_normalize_question(history[i].question != NULL ? history[i].question : "");
        key_field(&b, nq);
        free(nq);
        key_field(&b, history[i].sql);
    }
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(b.data, b.len, md);
    buf_free(&b);
    char *hex = pgw_malloc(2 * SHA256_DIGEST_LENGTH + 1);
    for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return hex;
}

/* ---- cleaning error texts ----
 *
 * What an error may tell the model (and, through the final refusal, the
 * client) must not depend on what is hidden: a hidden name and a name that
 * does not exist get identical treatment, or the difference is an oracle
 * for guessing hidden tables and columns. So a name the failed SQL wrote,
 * or a name in a name position of the message (after "column", "relation",
 * ...), is kept only when the tenant can see it (or the SQL defined it as
 * an alias), and otherwise replaced by ASK_UNKNOWN_NAME — decided from the
 * visible schema and the SQL alone, never from the list of hidden names.
 * Only words that come from neither (the message's own wording, names the
 * backend volunteers) are checked against the hidden names, which the
 * asker cannot choose. Quoted values never pass: '***' and "***".
 */

static bool cfg_hides(const PgwConfig *cfg, const char *name, size_t len)
{
    if (cfg == NULL)
        return false;
    for (size_t i = 0; i < cfg->ntables; i++) {
        const PgwTablePolicy *tp = &cfg->tables[i];
        if (tp->hidden && strlen(tp->name) == len && strncasecmp(tp->name, name, len) == 0)
            return true;
        for (size_t j = 0; j < tp->nmasks; j++)
            if (tp->masks[j].kind == PGW_MASK_HIDE && strlen(tp->masks[j].column) == len &&
                strncasecmp(tp->masks[j].column, name, len) == 0)
                return true;
    }
    return false;
}

/* What the failed SQL says about names: the identifiers it uses and the
 * aliases it defines (lower-case, as the backend folds them). */
typedef struct SqlNames {
    size_t n, cap;
    char **used;
    size_t na, acap;
    char **aliases;
} SqlNames;

static void names_push(char ***v, size_t *n, size_t *cap, const char *s, size_t len)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *v = pgw_realloc(*v, *cap * sizeof(char *));
    }
    char *c = pgw_strndup(s, len);
    for (char *p = c; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    (*v)[(*n)++] = c;
}

static bool names_has(char *const *v, size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i]) == len && strncasecmp(v[i], s, len) == 0)
            return true;
    return false;
}

static void collect_aliases(const ProtobufCMessage *m, void *arg)
{
    SqlNames *sn = arg;
    const char *name = NULL;
    if (m->descriptor == &pg_query__alias__descriptor)
        name = ((const PgQuery__Alias *)m)->aliasname;
    else if (m->descriptor == &pg_query__res_target__descriptor)
        name = ((const PgQuery__ResTarget *)m)->name;
    else if (m->descriptor == &pg_query__common_table_expr__descriptor)
        name = ((const PgQuery__CommonTableExpr *)m)->ctename;
    if (name != NULL && *name != '\0')
        names_push(&sn->aliases, &sn->na, &sn->acap, name, strlen(name));
}

static void sql_names(const char *sql, SqlNames *sn)
{
    memset(sn, 0, sizeof(*sn));
    if (sql == NULL)
        return;
    PgQueryScanResult sr = pg_query_scan(sql);
    if (sr.error == NULL) {
        PgQuery__ScanResult *scan =
            pg_query__scan_result__unpack(NULL, sr.pbuf.len, (const uint8_t *)sr.pbuf.data);
        for (size_t i = 0; scan != NULL && i < scan->n_tokens; i++) {
            const PgQuery__ScanToken *t = scan->tokens[i];
            /* Identifiers, and unreserved keywords, which may be names
             * (name, comment, ...). */
            if (t->token != PG_QUERY__TOKEN__IDENT &&
                t->keyword_kind != PG_QUERY__KEYWORD_KIND__UNRESERVED_KEYWORD)
                continue;
            const char *w = sql + t->start;
            size_t len = (size_t)(t->end - t->start);
            if (len >= 2 && w[0] == '"') {
                w++;
                len -= 2;
            }
            names_push(&sn->used, &sn->n, &sn->cap, w, len);
        }
        if (scan != NULL)
            pg_query__scan_result__free_unpacked(scan, NULL);
    }
    pg_query_free_scan_result(sr);
    PgQueryProtobufParseResult pr = pg_query_parse_protobuf(sql);
    if (pr.error == NULL) {
        PgQuery__ParseResult *tree = pg_query__parse_result__unpack(
            NULL, pr.parse_tree.len, (const uint8_t *)pr.parse_tree.data);
        if (tree != NULL) {
            policy_walk_messages(&tree->base, collect_aliases, sn);
            pg_query__parse_result__free_unpacked(tree, NULL);
        }
    }
    pg_query_free_protobuf_parse_result(pr);
}

static void sql_names_free(SqlNames *sn)
{
    for (size_t i = 0; i < sn->n; i++)
        free(sn->used[i]);
    free(sn->used);
    for (size_t i = 0; i < sn->na; i++)
        free(sn->aliases[i]);
    free(sn->aliases);
}

typedef struct Cleaner {
    const PgwAskSchema *s;
    const PgwConfig *cfg;
    SqlNames sql;
} Cleaner;

/* Built-in type names: part of PostgreSQL, not of anyone's schema. */
static const char *const builtin_types[] = {
    "bigint",   "bool",   "boolean",   "bytea",       "char",    "character", "date", "double",
    "float4",   "float8", "inet",      "int",         "int2",    "int4",      "int8", "integer",
    "interval", "json",   "jsonb",     "money",       "numeric", "precision", "real", "smallint",
    "text",     "time",   "timestamp", "timestamptz", "timetz",  "unknown",   "uuid", "varchar",
    "varying",  "void",   "with",      "without",     "zone",
};

/* A word whose meaning is PostgreSQL's, the same for every tenant: the
 * built-in functions and types. Kept wherever it appears, also when a
 * hidden object happens to share it (a nonexistent one would be kept too). */
static bool public_word(const char *w, size_t len)
{
    char low[64];
    if (len >= sizeof(low))
        return false;
    for (size_t i = 0; i < len; i++)
        low[i] = (char)tolower((unsigned char)w[i]);
    low[len] = '\0';
    for (size_t i = 0; i < PGW_ARRAY_LEN(builtin_types); i++)
        if (strcmp(low, builtin_types[i]) == 0)
            return true;
    return policy_builtin_aggregate(low) || policy_builtin_scalar(low);
}

static bool visible_name(const Cleaner *c, const char *name, size_t len)
{
    return (c->s != NULL && ask_schema_name_visible(c->s, name, len)) ||
           names_has(c->sql.aliases, c->sql.na, name, len) || public_word(name, len);
}

/* One word of the message: keep it, or the placeholder. In a name
 * position, or when the failed SQL wrote it, the answer depends only on
 * what the tenant sees. */
static void clean_word(PgwBuf *out, const Cleaner *c, const char *w, size_t len, bool name_position)
{
    bool keep;
    if (visible_name(c, w, len))
        keep = true;
    else if (name_position || names_has(c->sql.used, c->sql.n, w, len))
        keep = false;
    else
        keep =
            !((c->s != NULL && ask_schema_name_hidden(c->s, w, len)) || cfg_hides(c->cfg, w, len));
    if (keep)
        buf_append(out, w, len);
    else
        buf_append_str(out, ASK_UNKNOWN_NAME);
}

/* Words after which PostgreSQL writes a name rather than a value. */
static bool names_follow(const char *msg, const char *at)
{
    static const char *const words[] = {
        "column",    "relation",   "table", "schema",   "function",
        "type",      "constraint", "index", "view",     "sequence",
        "reference", "operator",   "alias", "database", "entry",
    };
    const char *e = at;
    while (e > msg && e[-1] == ' ')
        e--;
    const char *w = e;
    while (w > msg && isalpha((unsigned char)w[-1]))
        w--;
    for (size_t i = 0; i < PGW_ARRAY_LEN(words); i++)
        if ((size_t)(e - w) == strlen(words[i]) && strncasecmp(w, words[i], (size_t)(e - w)) == 0)
            return true;
    return false;
}

/* Words PostgreSQL's messages put right after a name word that are not
 * names ("operator does not exist", "table name ... specified more than
 * once", "column definition list"). Fixed, so the same for every tenant. */
static bool message_word(const char *w, size_t len)
{
    static const char *const words[] = {
        "already", "and",       "are",       "at",   "cannot", "definition", "does", "for",
        "in",      "is",        "list",      "must", "name",   "names",      "not",  "of",
        "or",      "reference", "specified", "the",  "to",     "with",       "a",    "an",
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(words); i++)
        if (strlen(words[i]) == len && strncasecmp(words[i], w, len) == 0)
            return true;
    return false;
}

/* Identifier chain a.b.c: each part cleaned as a name. false when the text
 * is not such a chain. */
static bool clean_name_chain(PgwBuf *out, const Cleaner *c, const char *t, size_t len,
                             bool name_position)
{
    for (size_t i = 0; i < len; i++)
        if (!ident_char((unsigned char)t[i]) && t[i] != '.')
            return false;
    if (len == 0)
        return false;
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && t[j] != '.')
            j++;
        if (j > i)
            clean_word(out, c, t + i, j - i, name_position);
        if (j < len)
            buf_append_byte(out, '.');
        i = j + 1;
    }
    return true;
}

/* Does a single quote at p open a quoted literal? Not an apostrophe inside
 * a word ("model's", "can't"): a literal's quote follows no letter. */
static bool opens_literal(const char *msg, const char *p)
{
    return p == msg || !isalnum((unsigned char)p[-1]);
}

/* The end of the single-quoted literal opening at p ('' inside kept), or
 * NULL. */
static const char *literal_end(const char *p)
{
    for (const char *q = p + 1; *q != '\0'; q++) {
        if (*q != '\'')
            continue;
        if (q[1] == '\'') {
            q++;
            continue;
        }
        return q;
    }
    return NULL;
}

char *ask_clean_error_sql(const PgwAskSchema *s, const PgwConfig *cfg, const char *sqlstate,
                          const char *error_message, const char *failed_sql)
{
    bool data_error =
        sqlstate != NULL && (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0);
    Cleaner c = {s, cfg, {0}};
    sql_names(failed_sql, &c.sql);
    PgwBuf b;
    buf_init(&b);
    const char *msg = error_message != NULL ? error_message : "";
    const char *p = msg;
    while (*p != '\0') {
        if (*p == '\'' && !opens_literal(msg, p)) {
            buf_append_byte(&b, '\'');
            p++;
            continue;
        }
        if (*p == '"' || *p == '\'') {
            char q = *p;
            const char *end = q == '\'' ? literal_end(p) : strchr(p + 1, q);
            if (end == NULL) {
                buf_append_str(&b, q == '"' ? "\"***\"" : "'***'");
                break;
            }
            buf_append_byte(&b, (uint8_t)q);
            size_t start = b.len;
            bool kept = q == '"' && !data_error && names_follow(msg, p) &&
                        clean_name_chain(&b, &c, p + 1, (size_t)(end - p - 1), true);
            if (!kept) {
                b.len = start;
                buf_append_str(&b, "***");
            }
            buf_append_byte(&b, (uint8_t)q);
            p = end + 1;
            continue;
        }
        if (p[0] == '=' && p[1] == '(') {
            /* DETAIL: Key (col)=(value) */
            const char *end = strchr(p, ')');
            buf_append_str(&b, "=(***)");
            p = end != NULL ? end + 1 : p + strlen(p);
            continue;
        }
        if (ident_char((unsigned char)*p) && !isdigit((unsigned char)*p)) {
            /* An unquoted word. PostgreSQL leaves two kinds of names
             * unquoted: a qualified column ("column c.secret_score does not
             * exist") and a function with its arguments ("function
             * f(integer) does not exist"). */
            const char *w = p;
            while (ident_char((unsigned char)*p) || (*p == '.' && ident_char((unsigned char)p[1])))
                p++;
            size_t len = (size_t)(p - w);
            bool chain = memchr(w, '.', len) != NULL;
            bool name_position = names_follow(msg, w) && !message_word(w, len);
            if (chain || name_position)
                (void)clean_name_chain(&b, &c, w, len, name_position);
            else
                clean_word(&b, &c, w, len, false);
            continue;
        }
        buf_append_byte(&b, (uint8_t)*p++);
    }
    sql_names_free(&c.sql);
    return buf_steal_str(&b);
}

char *ask_clean_error_state(const PgwAskSchema *s, const PgwConfig *cfg, const char *sqlstate,
                            const char *error_message)
{
    return ask_clean_error_sql(s, cfg, sqlstate, error_message, NULL);
}

char *ask_clean_error(const PgwAskSchema *s, const PgwConfig *cfg, const char *error_message)
{
    return ask_clean_error_sql(s, cfg, NULL, error_message, NULL);
}

/* ---- per-tenant limits ---- */

typedef struct LimitEntry {
    char *tenant;
    int64_t *calls; /* times of the calls in the current window, oldest first */
    size_t ncalls, cap;
    int64_t day; /* UTC day number the token count belongs to */
    long tokens;
} LimitEntry;

struct PgwAskLimiter {
    pthread_mutex_t lock;
    size_t n, cap;
    LimitEntry *v;
};

#define DAY_MS 86400000LL

PgwAskLimiter *ask_limiter_new(void)
{
    PgwAskLimiter *l = pgw_calloc(1, sizeof(*l));
    pthread_mutex_init(&l->lock, NULL);
    return l;
}

void ask_limiter_free(PgwAskLimiter *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].tenant);
        free(l->v[i].calls);
    }
    free(l->v);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* Tenants are few (one per [tenant.*] section): a linear search is enough. */
static LimitEntry *limit_entry(PgwAskLimiter *l, const char *tenant)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].tenant, tenant) == 0)
            return &l->v[i];
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = pgw_realloc(l->v, l->cap * sizeof(LimitEntry));
    }
    LimitEntry *e = &l->v[l->n++];
    memset(e, 0, sizeof(*e));
    e->tenant = pgw_strdup(tenant);
    return e;
}

static void describe_period(char *buf, size_t len, int period_ms)
{
    static const struct {
        int ms;
        const char *name;
    } units[] = {{1000, "second"}, {60000, "minute"}, {3600000, "hour"}, {86400000, "day"}};
    for (size_t i = 0; i < PGW_ARRAY_LEN(units); i++) {
        if (period_ms == units[i].ms) {
            snprintf(buf, len, "%s", units[i].name);
            return;
        }
    }
    if (period_ms % 1000 == 0)
        snprintf(buf, len, "%d s", period_ms / 1000);
    else
        snprintf(buf, len, "%d ms", period_ms);
}

int ask_limiter_take(PgwAskLimiter *l, const char *tenant, int rate, int period_ms, long budget,
                     int64_t now_ms, char *msg, size_t msglen)
{
    int rc = 0;
    pthread_mutex_lock(&l->lock);
    LimitEntry *e = limit_entry(l, tenant);
    int64_t day = now_ms / DAY_MS;
    if (e->day != day) {
        e->day = day;
        e->tokens = 0;
    }
    if (budget > 0 && e->tokens >= budget) {
        int64_t left_min = ((day + 1) * DAY_MS - now_ms + 59999) / 60000;
        snprintf(msg, msglen,
                 "ASK token budget reached for tenant %s: %ld tokens per day; "
                 "it renews in %lld h %lld min (00:00 UTC)",
                 tenant, budget, (long long)(left_min / 60), (long long)(left_min % 60));
        rc = -1;
        goto done;
    }
    if (rate <= 0 || period_ms <= 0)
        goto done;
    size_t drop = 0;
    while (drop < e->ncalls && e->calls[drop] <= now_ms - period_ms)
        drop++;
    /* A lowered rate after a reload: only the latest calls matter. */
    if (e->ncalls - drop > (size_t)rate)
        drop = e->ncalls - (size_t)rate;
    if (drop > 0) {
        memmove(e->calls, e->calls + drop, (e->ncalls - drop) * sizeof(int64_t));
        e->ncalls -= drop;
    }
    if (e->ncalls >= (size_t)rate) {
        int64_t wait_ms = e->calls[0] + period_ms - now_ms;
        char per[32];
        describe_period(per, sizeof(per), period_ms);
        snprintf(msg, msglen,
                 "ASK rate limit reached for tenant %s: %d per %s; try again in %lld s", tenant,
                 rate, per, (long long)((wait_ms + 999) / 1000));
        rc = -1;
        goto done;
    }
    if (e->ncalls == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 16;
        e->calls = pgw_realloc(e->calls, e->cap * sizeof(int64_t));
    }
    e->calls[e->ncalls++] = now_ms;
done:
    pthread_mutex_unlock(&l->lock);
    return rc;
}

void ask_limiter_add_tokens(PgwAskLimiter *l, const char *tenant, long tokens, int64_t now_ms)
{
    pthread_mutex_lock(&l->lock);
    LimitEntry *e = limit_entry(l, tenant);
    int64_t day = now_ms / DAY_MS;
    if (e->day != day) {
        e->day = day;
        e->tokens = 0;
    }
    e->tokens += tokens;
    pthread_mutex_unlock(&l->lock);
}
