/*
 * stmt.c — the statement pipeline; see stmt.h.
 *
 * Plain SQL is decided by the policy: parse, refuse or rewrite — at once,
 * or, for a statement longer than PGW_POLICY_INLINE_MAX bytes, on a policy
 * thread with the answer posted back to the request's event loop
 * (stmt_offload.c), so a huge statement never stalls a worker's other
 * clients. The same holds for the SQL an ASK produces.
 *
 * ASK statements (ASK q, EXPLAIN ASK q, ask('q') as a relation) become an
 * AskJob that runs on the request's event loop, one step at a time, each
 * step ending in a callback: the tenant's prompt schema (read once through
 * one of the owner's queries on the client's session, masked by the
 * policy), the translation cache, the model (curl multi on that event
 * loop), the policy, and an EXPLAIN of the rewritten SQL on the client's
 * session so a wrong column costs a retry, not a user-visible error. A
 * refusal or a failed EXPLAIN goes back to the model with the error
 * (cleaned of hidden names and values) until max_attempts. Nothing in the
 * job blocks; a cancel or disconnect aborts whatever step is in flight
 * (stmt_abort). The job reaches the client's session only through the
 * owner's PgwStmtSessionOps.
 *
 * What the prompt shows is ask_choose's: the whole masked schema when it
 * fits [llm] schema_budget, else the tables the question needs. While an
 * ASK runs, the client sees its progress as NOTICEs (the tables shown,
 * attempt k of n and why a retry happened) when the session's
 * client_min_messages lets NOTICEs through (read from the session when the
 * ASK starts); the final "ask: <sql>" NOTICE goes with the result as ever.
 *
 * The model is untrusted: its SQL reaches the backend only as the policy
 * rewrote it, exactly like SQL a person typed.
 *
 * Fail closed: without the tenant's schema, or when the policy itself
 * fails, the statement is refused, never forwarded as written.
 */
#include "stmt.h"
#include "stmt_int.h"

#include "ask.h"
#include "ask_schema.h"
#include "audit.h"
#include "cache_redis_shared.h"
#include "codec.h"
#include "config.h"
#include "kvcache.h"
#include "llm.h"
#include "log.h"
#include "policy.h"
#include "policy_cache.h" /* policy_rewrite_shaped */
#include "policy_catalog.h" /* policy_append_literal: SQL literal quoting */
#include "schema.h"
#include "snapshot.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#define ASK_HISTORY 6 /* earlier turns a follow-up question sees */
#define ASK_SCHEMA_CHECK_MS 2000 /* how often the catalog may be checked for DDL */
#define ASK_VALUE_COLUMNS 200 /* text columns whose values the index reads at most */
#define SQLSTATE_ASK_LIMIT "53400" /* configuration_limit_exceeded */
#define SQLSTATE_ASK_LLM "58000" /* system_error: the model is unavailable */
#define SQLSTATE_ASK_CANNOT "0A000"
#define SQLSTATE_INSUFFICIENT_RESOURCES "53000"

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void result_init(PgwStmtResult *res)
{
    memset(res, 0, sizeof *res);
    buf_init(&res->answer);
    buf_init(&res->notices);
}

static void refuse(PgwStmtResult *res, const char *sqlstate, const char *message,
                   const char *detail, const char *hint)
{
    res->action = PGW_STMT_REFUSE;
    snprintf(res->sqlstate, sizeof res->sqlstate, "%s", sqlstate);
    res->message = pgw_strdup(message);
    res->detail = pgw_strdup(detail);
    res->hint = pgw_strdup(hint);
}

/* ---------- the cache's verdict, once per statement template ----------
 *
 * cache_eligible parses the policy's rewrite and walks it: for a point
 * query that is most of what a statement costs pgwarden, and pgbench-like
 * traffic (the same text with other numbers) would pay it every time. A
 * statement the policy answered from a template (policy_rewrite_shaped) is
 * judged by the template's rewrite instead, once per template key, and the
 * verdict kept here. That is the same verdict: the analysis never looks at
 * the value of a numeric constant (it reads string constants for clock
 * words, function and type names, relations, statement kinds and clauses;
 * a constant and a parameter are both "fixed" as a cast's source), and the
 * template's rewrite is the statement's with each number replaced by a
 * parameter at the same place, so both have the same tree but for those
 * leaves. The template key names the configuration version, the schema
 * generation, the tenant and the literals' types, which with the text are
 * everything else cache_eligible reads here (stmt_cache_verdict passes no
 * runtime facts: those are checked by the caller per statement). The memo
 * is direct-mapped and bounded: a collision only costs a new analysis.
 *
 * A statement decided on its own text (one with parameters of its own, as
 * every untyped Parse of "... WHERE aid = $1" is; one without numbers) is
 * judged by its own rewrite, once per key of that text (the same names,
 * the Parse's declared parameter types and the text itself): the policy's
 * decision is a function of that key (it is what the rewrite cache keeps
 * the decision under), so the verdict read from it is too. Without this,
 * every Parse of the same text paid the analysis (a parse of the rewrite,
 * 340k instructions for pgbench's point query). Keys longer than
 * VERDICT_MEMO_MAX_KEY are not kept, so the memo holds at most
 * slots x that much. */

#define VERDICT_MEMO_SLOTS 1024
#define VERDICT_MEMO_MAX_KEY 16384

typedef struct VerdictMemo {
    char *key;
    size_t keylen;
    uint64_t hash;
    PgwCacheVerdict verdict;
} VerdictMemo;

static pthread_mutex_t verdict_memo_mu = PTHREAD_MUTEX_INITIALIZER;
static VerdictMemo verdict_memo[VERDICT_MEMO_SLOTS];

static uint64_t memo_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void verdict_copy(PgwCacheVerdict *dst, const PgwCacheVerdict *src)
{
    *dst = *src;
    dst->relations = NULL;
    if (src->nrelations) {
        dst->relations = pgw_malloc(src->nrelations * sizeof *dst->relations);
        for (size_t i = 0; i < src->nrelations; i++)
            dst->relations[i] = pgw_strdup(src->relations[i]);
    }
}

static bool verdict_memo_get(const PgwPolicyShape *shape, uint64_t h, PgwCacheVerdict *out)
{
    bool found = false;
    pthread_mutex_lock(&verdict_memo_mu);
    VerdictMemo *m = &verdict_memo[h % VERDICT_MEMO_SLOTS];
    if (m->key && m->hash == h && m->keylen == shape->keylen &&
        memcmp(m->key, shape->key, shape->keylen) == 0) {
        verdict_copy(out, &m->verdict);
        found = true;
    }
    pthread_mutex_unlock(&verdict_memo_mu);
    return found;
}

static void verdict_memo_put(const PgwPolicyShape *shape, uint64_t h, const PgwCacheVerdict *v)
{
    VerdictMemo fresh = {.key = pgw_malloc(shape->keylen), .keylen = shape->keylen, .hash = h};
    memcpy(fresh.key, shape->key, shape->keylen);
    verdict_copy(&fresh.verdict, v);
    pthread_mutex_lock(&verdict_memo_mu);
    VerdictMemo old = verdict_memo[h % VERDICT_MEMO_SLOTS];
    verdict_memo[h % VERDICT_MEMO_SLOTS] = fresh;
    pthread_mutex_unlock(&verdict_memo_mu);
    free(old.key);
    cache_verdict_free(&old.verdict);
}

bool stmt_cache_verdict(const PgwPolicyCtx *ctx, const PgwPolicyResult *pr,
                        const PgwPolicyShape *shape, PgwCacheVerdict *out)
{
    if (pr->decision != PGW_POLICY_ALLOW || pr->sql == NULL)
        return false;
    bool memo = shape && shape->key && shape->keylen <= VERDICT_MEMO_MAX_KEY;
    uint64_t h = memo ? memo_hash(shape->key, shape->keylen) : 0;
    if (memo && verdict_memo_get(shape, h, out))
        return true;
    PgwPolicyResult judged = *pr;
    if (memo && shape->sql)
        judged.sql = shape->sql; /* the template's rewrite: see above */
    PgwCacheStatement st = {
        .cfg = ctx->cfg,
        .tenant = ctx->tenant,
        .schema = ctx->schema,
        .policy = &judged,
        .param_types = ctx->param_types,
        .nparam_types = ctx->nparam_types,
    };
    cache_eligible(&st, out);
    if (memo)
        verdict_memo_put(shape, h, out);
    return true;
}

/* Hand the verdict (taken: *v is emptied) and the fingerprints of what it
 * was decided under to a REWRITE result. */
static void result_set_verdict(PgwStmtResult *res, const PgwConfig *cfg, const PgwTenant *tenant,
                               const PgwSchema *schema, PgwCacheVerdict *v)
{
    if (res->action != PGW_STMT_REWRITE) {
        cache_verdict_free(v);
        return;
    }
    res->has_verdict = true;
    res->verdict = *v;
    memset(v, 0, sizeof *v);
    cache_policy_fingerprint(cfg, tenant, res->policy_fp);
    cache_schema_fingerprint(schema, res->schema_fp);
}

/* ---------- per-session state: ASK's conversation, parameter types ---------- */

typedef struct AskSession {
    size_t n;
    char *questions[ASK_HISTORY];
    char *sqls[ASK_HISTORY];
    PgwParamMemo *params; /* the backend's answers about untyped parameters */
} AskSession;

static void session_add(AskSession *s, const char *question, const char *sql)
{
    if (s->n == ASK_HISTORY) {
        free(s->questions[0]);
        free(s->sqls[0]);
        memmove(s->questions, s->questions + 1, (ASK_HISTORY - 1) * sizeof *s->questions);
        memmove(s->sqls, s->sqls + 1, (ASK_HISTORY - 1) * sizeof *s->sqls);
        s->n--;
    }
    s->questions[s->n] = pgw_strdup(question);
    s->sqls[s->n++] = pgw_strdup(sql);
}

void stmt_session_free(void *state)
{
    AskSession *s = state;
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->questions[i]);
        free(s->sqls[i]);
    }
    stmt_params_memo_free(s->params);
    free(s);
}

/* ---------- process-wide ASK state ---------- */

/* Prompt schemas by tenant, valid for one config version (a reload
 * re-reads them). Reference-counted: a job keeps its schema alive. */
typedef struct SchemaEntry {
    char *tenant;
    unsigned version;
    PgwAskSchema *schema;
    PgwAskValues *values; /* the tenant's own values, or NULL */
    char *fingerprint;
    char *generation; /* the catalog's signature when it was read */
    int64_t checked_ms; /* when that was last confirmed (under ask_mu) */
    int refs;
    struct SchemaEntry *next;
} SchemaEntry;

static pthread_mutex_t ask_mu = PTHREAD_MUTEX_INITIALIZER;
static SchemaEntry *schemas;
static PgwKvCache *translations;
static PgwAskLimiter *limiter;
/* One model client per thread, on the event base of the first request the
 * thread runs: a worker thread runs one event loop for its whole life. The
 * key's destructor frees it when the thread ends, after its loop has
 * returned and before the event base is freed (workers are joined first). */
static pthread_key_t llm_key;
static pthread_once_t llm_key_once = PTHREAD_ONCE_INIT;

static void llm_key_free(void *llm)
{
    llm_free(llm);
}

static void llm_key_make(void)
{
    (void)pthread_key_create(&llm_key, llm_key_free);
}

static PgwLlm *thread_llm(struct event_base *base)
{
    pthread_once(&llm_key_once, llm_key_make);
    PgwLlm *llm = pthread_getspecific(llm_key);
    if (llm == NULL) {
        llm = llm_new(base);
        (void)pthread_setspecific(llm_key, llm);
    }
    return llm;
}

static void ask_globals(void)
{
    pthread_mutex_lock(&ask_mu);
    if (!translations)
        translations = kvcache_new(4096);
    if (!limiter)
        limiter = ask_limiter_new();
    pthread_mutex_unlock(&ask_mu);
}

static SchemaEntry *schema_get(const char *tenant, unsigned version)
{
    pthread_mutex_lock(&ask_mu);
    SchemaEntry *e;
    for (e = schemas; e; e = e->next)
        if (e->version == version && strcmp(e->tenant, tenant) == 0)
            break;
    if (e)
        e->refs++;
    pthread_mutex_unlock(&ask_mu);
    return e;
}

static void schema_put(SchemaEntry *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&ask_mu);
    bool last = --e->refs == 0;
    pthread_mutex_unlock(&ask_mu);
    if (last) {
        ask_values_free(e->values);
        ask_schema_free(e->schema);
        free(e->generation);
        free(e->fingerprint);
        free(e->tenant);
        free(e);
    }
}

/* Install a freshly read schema (replacing older ones of the tenant) and
 * return it with a reference for the caller. */
static SchemaEntry *schema_install(const char *tenant, unsigned version, PgwAskSchema *schema,
                                   PgwAskValues *values, char *generation)
{
    SchemaEntry *e = pgw_calloc(1, sizeof *e);
    e->tenant = pgw_strdup(tenant);
    e->version = version;
    e->schema = schema;
    e->values = values;
    e->generation = generation;
    e->checked_ms = now_ms();
    e->fingerprint = ask_schema_fingerprint(schema);
    e->refs = 2; /* the list's and the caller's */
    SchemaEntry *old = NULL;
    pthread_mutex_lock(&ask_mu);
    for (SchemaEntry **pp = &schemas; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->tenant, tenant) == 0) {
            old = *pp;
            *pp = old->next;
            break;
        }
    }
    e->next = schemas;
    schemas = e;
    pthread_mutex_unlock(&ask_mu);
    schema_put(old);
    return e;
}

void stmt_ask_cache_clear(void)
{
    ask_globals();
    kvcache_clear(translations);
}

void stmt_ask_cache_stats(PgwKvCacheStats *out)
{
    ask_globals();
    kvcache_stats(translations, out);
}

/* ---------- the ASK job ---------- */

typedef enum { STEP_SCHEMA, STEP_LLM, STEP_EXPLAIN, STEP_PARAMS, STEP_DONE } AskStep;

struct PgwStmtHandle {
    PgwStmtDone done;
    void *arg;
    bool *finished; /* set when done() ran while stmt_submit is still on the stack */
    const PgwStmtSessionOps *ops;
    void *owner;
    void **session_state;
    struct event_base *base;
    PgwSnapshot *snap;
    char *user, *tenant, *client_addr;
    PgwStmtProtocol protocol;
    PgwAskKind kind;
    char *sql; /* the client's statement */
    size_t nparam_types; /* its Parse parameter types, if any */
    uint32_t *param_types;
    char *question;
    const PgwSchema *policy_schema; /* kept alive by schema_ref, which the job owns */
    void (*schema_release)(void *schema_ref);
    void *schema_ref;
    SchemaEntry *schema;
    AskStep step;
    int attempt;
    bool progress; /* the session's client_min_messages lets NOTICEs through */
    char *generation; /* the catalog signature read for this ASK */
    PgwAskSchema *new_schema; /* read, waiting for its values */
    char *last_sql; /* the model's SQL of the latest attempt */
    char *last_error; /* why it failed, cleaned for the model */
    char *final_sql; /* the statement to forward: rewritten */
    char *cache_key;
    bool from_cache;
    PgwLlmCall *call;
    void *internal; /* the owner's query in flight */
    PgwPolicyTask *task; /* a decision in flight on a policy thread */
    bool cache_verdict; /* the request wants the cache's verdict */
    bool has_verdict;
    PgwCacheVerdict verdict; /* of final_sql */
    PgwRedis *redis; /* mode = redis: shared limits and translations */
    PgwRedisOp *redis_op; /* a Redis call in flight */
    PgwAudit *audit;
    PgwStmtResult *held; /* the decision, while the backend is asked its parameter types */
    long tokens_in, tokens_out;
    double model_ms;
    int64_t started_ms;
};

static void job_free(PgwStmtHandle *j)
{
    if (j->redis_op)
        cache_redis_cancel(j->redis_op);
    if (j->has_verdict)
        cache_verdict_free(&j->verdict);
    if (j->snap)
        snapshot_release(j->snap);
    if (j->schema_release)
        j->schema_release(j->schema_ref);
    schema_put(j->schema);
    audit_discard(j->audit);
    free(j->user);
    free(j->tenant);
    free(j->client_addr);
    free(j->sql);
    free(j->param_types);
    free(j->question);
    free(j->generation);
    ask_schema_free(j->new_schema);
    free(j->last_sql);
    free(j->last_error);
    free(j->final_sql);
    free(j->cache_key);
    if (j->held) {
        stmt_result_free(j->held);
        free(j->held);
    }
    free(j);
}

static bool params_check(PgwStmtHandle *j, PgwStmtResult *res, bool parsed_here, bool checked);

/* A handle for req: who is told, whose session it may use, the Parse's
 * parameter types. */
static PgwStmtHandle *job_new(const PgwStmtRequest *req, PgwStmtDone done, void *arg)
{
    PgwStmtHandle *j = pgw_calloc(1, sizeof *j);
    j->done = done;
    j->arg = arg;
    j->ops = req->ops;
    j->owner = req->owner;
    j->session_state = req->session_state;
    j->protocol = req->protocol;
    if (req->nparam_types) {
        j->nparam_types = req->nparam_types;
        j->param_types = pgw_malloc(req->nparam_types * sizeof *j->param_types);
        memcpy(j->param_types, req->param_types, req->nparam_types * sizeof *j->param_types);
    }
    return j;
}

static void job_finish(PgwStmtHandle *j, PgwStmtResult *res)
{
    j->step = STEP_DONE;
    audit_set_int(j->audit, "attempts", j->attempt);
    audit_set_int(j->audit, "tokens_in", j->tokens_in);
    audit_set_int(j->audit, "tokens_out", j->tokens_out);
    audit_set_int(j->audit, "model_ms", (int64_t)j->model_ms);
    audit_set_str(j->audit, "translation", j->from_cache ? "cache" : "model");
    res->audit = j->audit;
    j->audit = NULL;
    /* The model's SQL is a Parse's too: its parameters are checked alike. */
    if (j->last_sql && params_check(j, res, stmt_policy_inline(strlen(j->last_sql)), false)) {
        j->step = STEP_PARAMS;
        return;
    }
    PgwStmtDone done = j->done;
    void *arg = j->arg;
    if (j->finished)
        *j->finished = true;
    job_free(j);
    done(arg, res);
}

static void job_refuse(PgwStmtHandle *j, const char *sqlstate, const char *message,
                       const char *detail, const char *hint)
{
    PgwStmtResult res;
    result_init(&res);
    refuse(&res, sqlstate, message, detail, hint);
    audit_set_decision(j->audit, "refuse", j->last_sql, message, sqlstate);
    job_finish(j, &res);
}

static void job_ask_model(PgwStmtHandle *j);

/* The latest SQL failed (policy or EXPLAIN): try again or give up. */
static void job_failed(PgwStmtHandle *j, const char *raw_error)
{
    PgwConfig *cfg = j->snap->cfg;
    free(j->last_error);
    j->last_error = ask_clean_error_sql(j->schema->schema, cfg, NULL, raw_error, j->last_sql);
    if (j->from_cache) {
        /* A cached translation no longer works (schema or policy changed
         * in a way the key missed): ask the model instead. */
        j->from_cache = false;
    }
    if (j->attempt < (cfg->llm_max_attempts > 0 ? cfg->llm_max_attempts : 1)) {
        job_ask_model(j);
        return;
    }
    char detail[2048];
    snprintf(detail, sizeof detail, "Last SQL: %s", j->last_sql ? j->last_sql : "(none)");
    char msg[1024];
    snprintf(msg, sizeof msg, "pgwarden ask: no usable SQL after %d attempts: %s", j->attempt,
             j->last_error);
    job_refuse(j, SQLSTATE_INSUFFICIENT_PRIVILEGE, msg, detail,
               "Rephrase the question, or write the SQL yourself.");
}

static void job_succeed(PgwStmtHandle *j)
{
    PgwStmtResult res;
    result_init(&res);
    if (!j->from_cache && j->cache_key) {
        PgwConfig *cfg = j->snap->cfg;
        int ttl = cfg->cache_ttl_ms > 0 ? cfg->cache_ttl_ms : 60000;
        kvcache_put(translations, j->cache_key, j->last_sql, now_ms() + ttl * 10LL);
        if (j->redis)
            cache_redis_kv_set(j->redis, "ask", j->cache_key, j->last_sql,
                               ttl > INT32_MAX / 10 ? INT32_MAX : ttl * 10);
    }
    AskSession **sess = (AskSession **)j->session_state;
    if (!*sess)
        *sess = pgw_calloc(1, sizeof **sess);
    session_add(*sess, j->question, j->last_sql);
    res.action = PGW_STMT_REWRITE;
    if (j->kind == PGW_ASK_EXPLAIN) {
        /* The SQL as one row, one text column "sql": a SELECT, so it works
         * on both protocols and Describe reports the column. */
        PgwBuf b;
        buf_init(&b);
        buf_append_str(&b, "SELECT ");
        policy_append_literal(&b, j->last_sql);
        buf_append_str(&b, "::text AS sql");
        res.sql = buf_steal_str(&b);
    } else {
        res.sql = j->final_sql;
        j->final_sql = NULL;
        res.from_ask = true;
        if (j->has_verdict) {
            PgwConfig *cfg = j->snap->cfg;
            j->has_verdict = false;
            result_set_verdict(&res, cfg, config_tenant(cfg, j->tenant), j->policy_schema,
                               &j->verdict);
        }
        char msg[8192];
        snprintf(msg, sizeof msg, "ask: %s", j->last_sql);
        codec_notice(&res.notices, "NOTICE", "00000", msg, NULL, NULL);
    }
    audit_set_decision(j->audit, "allow", res.sql, "ask", NULL);
    audit_set_str(j->audit, "generated_sql", j->last_sql);
    job_finish(j, &res);
}

static void explain_done(void *arg, size_t nrows, size_t ncols, char **values, const char *error)
{
    PgwStmtHandle *j = arg;
    j->internal = NULL;
    if (error) {
        job_failed(j, error);
        return;
    }
    job_succeed(j);
}

static void job_checked(PgwStmtHandle *j, int rc, PgwPolicyResult *pr, PgwCacheVerdict *v);
static void job_decided(void *arg, int rc, PgwPolicyResult *pr, PgwCacheVerdict *v);

/* Policy, then EXPLAIN on the client's session. */
static void job_check_sql(PgwStmtHandle *j)
{
    PgwConfig *cfg = j->snap->cfg;
    char *statement = NULL;
    char err[512];
    if (j->kind == PGW_ASK_RELATION) {
        if (ask_splice(j->sql, j->last_sql, &statement, err, sizeof err) != 0) {
            job_failed(j, err);
            return;
        }
    } else {
        statement = pgw_strdup(j->last_sql);
    }
    PgwPolicyCtx ctx = {.cfg = cfg,
                        .tenant = config_tenant(cfg, j->tenant),
                        .schema = j->policy_schema,
                        .nparam_types = j->kind == PGW_ASK_RELATION ? j->nparam_types : 0,
                        .param_types = j->param_types};
    if (ctx.tenant && ctx.schema && !stmt_policy_inline(strlen(statement))) {
        j->task = stmt_policy_offload(j->base, j->snap, &ctx, statement, j->cache_verdict,
                                      job_decided, j);
        free(statement);
        if (!j->task)
            job_refuse(j, SQLSTATE_INSUFFICIENT_RESOURCES,
                       "pgwarden ask: the statement is too long to be checked now", NULL, NULL);
        return;
    }
    PgwPolicyResult pr;
    memset(&pr, 0, sizeof pr);
    int rc = ctx.tenant && ctx.schema ? policy_rewrite(&ctx, statement, &pr) : -1;
    free(statement);
    PgwCacheVerdict v;
    bool hv = j->cache_verdict && rc == 0 && stmt_cache_verdict(&ctx, &pr, NULL, &v);
    job_checked(j, rc, &pr, hv ? &v : NULL);
}

/* A policy thread decided the generated SQL. */
static void job_decided(void *arg, int rc, PgwPolicyResult *pr, PgwCacheVerdict *v)
{
    PgwStmtHandle *j = arg;
    j->task = NULL;
    job_checked(j, rc, pr, v);
}

/* The policy's verdict on the generated SQL: EXPLAIN it, or try again.
 * Takes v (the cache's verdict, or NULL). */
static void job_checked(PgwStmtHandle *j, int rc, PgwPolicyResult *pr, PgwCacheVerdict *v)
{
    if (j->has_verdict)
        cache_verdict_free(&j->verdict);
    j->has_verdict = v != NULL;
    if (v) {
        j->verdict = *v;
        memset(v, 0, sizeof *v);
    }
    if (rc != 0 || pr->decision != PGW_POLICY_ALLOW || !pr->read_only_query) {
        char why[1024];
        snprintf(why, sizeof why, "%s",
                 rc != 0 ? "the statement could not be checked"
                 : pr->decision != PGW_POLICY_ALLOW
                     ? (pr->message ? pr->message : "refused")
                     : "only a query that returns rows can answer a question");
        policy_result_free(pr);
        job_failed(j, why);
        return;
    }
    free(j->final_sql);
    j->final_sql = pgw_strdup(pr->sql);
    policy_result_free(pr);
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, "EXPLAIN ");
    buf_append_str(&b, j->final_sql);
    char *explain = buf_steal_str(&b);
    j->step = STEP_EXPLAIN;
    j->internal = j->ops->query(j->owner, explain, explain_done, j);
    free(explain);
    if (!j->internal)
        job_refuse(j, SQLSTATE_CONNECTION_FAILURE, "pgwarden ask: no server session", NULL, NULL);
}

static void llm_done(void *arg, PgwLlmResult *r)
{
    PgwStmtHandle *j = arg;
    j->call = NULL;
    j->tokens_in += r->prompt_tokens;
    j->tokens_out += r->completion_tokens;
    j->model_ms += r->latency_ms;
    long tokens = r->prompt_tokens + r->completion_tokens;
    /* Counted here too, so the local limiter is right whenever Redis is
     * not there to decide. */
    ask_limiter_add_tokens(limiter, j->tenant, tokens, now_ms());
    if (j->redis && tokens > 0)
        cache_redis_tokens_add(j->redis, j->tenant, tokens);
    if (!r->ok) {
        char msg[1024];
        snprintf(msg, sizeof msg, "pgwarden ask: the language model is unavailable: %s",
                 r->error ? r->error : "unknown error");
        job_refuse(j, SQLSTATE_ASK_LLM, msg, NULL, "Try again later, or write the SQL yourself.");
        return;
    }
    char *sql = NULL, *reason = NULL;
    char err[512];
    int rc = ask_extract_sql(r->text, &sql, &reason, err, sizeof err);
    if (rc == 1) {
        char msg[1024];
        snprintf(msg, sizeof msg,
                 "pgwarden ask: the question cannot be answered from this schema%s%s",
                 reason && *reason ? ": " : "", reason ? reason : "");
        free(reason);
        job_refuse(j, SQLSTATE_ASK_CANNOT, msg, NULL, NULL);
        return;
    }
    if (rc != 0) {
        free(j->last_sql);
        j->last_sql = NULL;
        job_failed(j, err);
        return;
    }
    free(j->last_sql);
    j->last_sql = sql;
    job_check_sql(j);
}

/* A progress NOTICE, sent at once (in protocol order) when the session's
 * client_min_messages lets NOTICEs through. */
static void job_progress(PgwStmtHandle *j, const char *text)
{
    if (!j->progress || !j->ops || !j->ops->notice)
        return;
    PgwBuf b;
    buf_init(&b);
    codec_notice(&b, "NOTICE", "00000", text, NULL, NULL);
    j->ops->notice(j->owner, &b);
    buf_free(&b);
}

static void job_call_model(PgwStmtHandle *j);

/* "10 s", "1 min", "2 h": the rate limit's period as the local limiter
 * says it. */
static void period_words(char *out, size_t outlen, int period_ms)
{
    if (period_ms % 3600000 == 0)
        snprintf(out, outlen, "%d h", period_ms / 3600000);
    else if (period_ms % 60000 == 0)
        snprintf(out, outlen, "%d min", period_ms / 60000);
    else
        snprintf(out, outlen, "%d s", (period_ms + 999) / 1000);
}

/* Redis decided the shared limit (mode = redis): one limit per tenant for
 * every instance. Redis unavailable: this process's limiter decides. */
static void rate_taken(void *arg, PgwRedisStatus st, const PgwRedisRate *rate)
{
    PgwStmtHandle *j = arg;
    j->redis_op = NULL;
    PgwConfig *cfg = j->snap->cfg;
    char msg[512];
    if (st != PGW_REDIS_OK) {
        if (ask_limiter_take(limiter, j->tenant, cfg->llm_rate_limit, cfg->llm_rate_period_ms,
                             cfg->llm_token_budget, now_ms(), msg, sizeof msg) != 0) {
            job_refuse(j, SQLSTATE_ASK_LIMIT, msg, NULL, NULL);
            return;
        }
        job_call_model(j);
        return;
    }
    if (rate->verdict == PGW_REDIS_RATE_BUDGET) {
        int64_t day_ms = 86400000;
        int64_t left_min = ((rate->now_ms / day_ms + 1) * day_ms - rate->now_ms + 59999) / 60000;
        snprintf(msg, sizeof msg,
                 "ASK token budget reached for tenant %s: %ld tokens per day; "
                 "it renews in %lld h %lld min (00:00 UTC)",
                 j->tenant, cfg->llm_token_budget, (long long)(left_min / 60),
                 (long long)(left_min % 60));
        job_refuse(j, SQLSTATE_ASK_LIMIT, msg, NULL, NULL);
        return;
    }
    if (rate->verdict == PGW_REDIS_RATE_LIMITED) {
        char per[32];
        period_words(per, sizeof per, cfg->llm_rate_period_ms);
        snprintf(msg, sizeof msg,
                 "ASK rate limit reached for tenant %s: %d per %s; try again in %lld s", j->tenant,
                 cfg->llm_rate_limit, per, (long long)((rate->wait_ms + 999) / 1000));
        job_refuse(j, SQLSTATE_ASK_LIMIT, msg, NULL, NULL);
        return;
    }
    job_call_model(j);
}

static void job_ask_model(PgwStmtHandle *j)
{
    PgwConfig *cfg = j->snap->cfg;
    if (j->redis && (cfg->llm_rate_limit > 0 || cfg->llm_token_budget > 0)) {
        j->redis_op =
            cache_redis_rate_take(j->redis, j->tenant, cfg->llm_rate_limit, cfg->llm_rate_period_ms,
                                  cfg->llm_token_budget, rate_taken, j);
        if (j->redis_op)
            return;
    }
    char msg[512];
    if (ask_limiter_take(limiter, j->tenant, cfg->llm_rate_limit, cfg->llm_rate_period_ms,
                         cfg->llm_token_budget, now_ms(), msg, sizeof msg) != 0) {
        job_refuse(j, SQLSTATE_ASK_LIMIT, msg, NULL, NULL);
        return;
    }
    job_call_model(j);
}

/* The limit allowed it: the prompt, then the model. */
static void job_call_model(PgwStmtHandle *j)
{
    PgwConfig *cfg = j->snap->cfg;
    j->attempt++;
    AskSession *sess = *(AskSession **)j->session_state;
    PgwAskTurn turns[ASK_HISTORY];
    size_t nh = sess ? sess->n : 0;
    for (size_t i = 0; i < nh; i++) {
        turns[i].question = sess->questions[i];
        turns[i].sql = sess->sqls[i];
    }
    PgwAskPrompt prompt;
    memset(&prompt, 0, sizeof prompt);
    char *examples = NULL;
    if (cfg->llm_examples_file && *cfg->llm_examples_file) {
        FILE *f = fopen(cfg->llm_examples_file, "r");
        if (f) {
            PgwBuf b;
            buf_init(&b);
            char chunk[4096];
            size_t n;
            while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < 65536)
                buf_append(&b, chunk, n);
            fclose(f);
            examples = buf_steal_str(&b);
        }
    }
    PgwAskBudget budget;
    ask_budget_from_config(cfg, &budget);
    PgwAskPromptInput in = {
        .schema = j->schema->schema,
        .values = j->schema->values,
        .budget = &budget,
        .examples = examples,
        .history = turns,
        .nhist = nh,
        .question = j->question,
        .failed_sql = j->last_error ? j->last_sql : NULL,
        .failed_error = j->last_error,
    };
    PgwAskChoice choice;
    int rc = ask_prompt_build(&in, &prompt, &choice);
    free(examples);
    if (rc != 0) {
        job_refuse(j, SQLSTATE_INTERNAL_ERROR, "pgwarden ask: cannot build the prompt", NULL, NULL);
        return;
    }
    int max_attempts = cfg->llm_max_attempts > 0 ? cfg->llm_max_attempts : 1;
    if (j->attempt == 1 || !j->last_error) {
        char *what = ask_choice_describe(j->schema->schema, &choice);
        job_progress(j, what);
        free(what);
    }
    ask_choice_free(&choice);
    char line[1536];
    if (j->attempt > 1 && j->last_error)
        snprintf(line, sizeof line, "ask: attempt %d of %d: the previous SQL failed: %s",
                 j->attempt, max_attempts, j->last_error);
    else
        snprintf(line, sizeof line, "ask: attempt %d of %d", j->attempt, max_attempts);
    job_progress(j, line);
    PgwLlmMessage msgs[16];
    size_t nm = prompt.nmsgs < 16 ? prompt.nmsgs : 16;
    for (size_t i = 0; i < nm; i++) {
        msgs[i].role = prompt.roles[i];
        msgs[i].content = prompt.contents[i];
    }
    PgwLlmOptions opt = {
        .provider = cfg->llm_provider,
        .base_url = cfg->llm_base_url,
        .model = cfg->llm_model,
        .api_key = cfg->llm_api_key,
        .timeout_ms = cfg->llm_timeout_ms,
        .max_attempts = cfg->llm_max_attempts,
    };
    j->step = STEP_LLM;
    j->call = llm_call(thread_llm(j->base), &opt, prompt.system, msgs, nm, llm_done, j);
    ask_prompt_free(&prompt);
    if (!j->call)
        job_refuse(j, SQLSTATE_ASK_LLM, "pgwarden ask: cannot start the model call", NULL, NULL);
}

/* The shared translation cache answered (mode = redis). */
static void translation_read(void *arg, PgwRedisStatus st, const char *value, size_t len)
{
    PgwStmtHandle *j = arg;
    j->redis_op = NULL;
    if (st == PGW_REDIS_OK && value && len > 0 && memchr(value, 0, len) == NULL) {
        char *sql = pgw_malloc(len + 1);
        memcpy(sql, value, len);
        sql[len] = 0;
        j->from_cache = true;
        j->last_sql = sql;
        job_check_sql(j);
        return;
    }
    job_ask_model(j);
}

/* The prompt schema is known: the translation cache, else the model. */
static void job_have_schema(PgwStmtHandle *j)
{
    PgwConfig *cfg = j->snap->cfg;
    AskSession *sess = *(AskSession **)j->session_state;
    PgwAskTurn turns[ASK_HISTORY];
    size_t nh = sess ? sess->n : 0;
    for (size_t i = 0; i < nh; i++) {
        turns[i].question = sess->questions[i];
        turns[i].sql = sess->sqls[i];
    }
    j->cache_key =
        ask_cache_key(j->tenant, j->schema->fingerprint, j->question, turns, nh, cfg->llm_model);
    char *cached = j->cache_key ? kvcache_get(translations, j->cache_key, now_ms()) : NULL;
    if (cached) {
        j->from_cache = true;
        j->last_sql = cached;
        job_check_sql(j);
        return;
    }
    if (j->redis && j->cache_key) {
        /* Another instance may have asked the model already. */
        j->redis_op = cache_redis_kv_get(j->redis, "ask", j->cache_key, translation_read, j);
        if (j->redis_op)
            return;
    }
    job_ask_model(j);
}

/* The tenant's values are read (or not needed): install the snapshot. */
static void schema_ready(PgwStmtHandle *j, PgwAskValues *values)
{
    PgwConfig *cfg = j->snap->cfg;
    PgwAskSchema *s = j->new_schema;
    j->new_schema = NULL;
    char *generation = j->generation;
    j->generation = NULL;
    j->schema = schema_install(j->tenant, cfg->version, s, values, generation);
    job_have_schema(j);
}

static void values_read(void *arg, size_t nrows, size_t ncols, char **values, const char *error)
{
    PgwStmtHandle *j = arg;
    j->internal = NULL;
    PgwAskValues *v = NULL;
    if (error)
        log_warning("tenant %s: reading values for ASK failed: %s", j->tenant, error);
    else
        v = ask_values_build(j->new_schema, nrows, ncols, (const char *const *)values);
    schema_ready(j, v);
}

/* The value index, when the prompt will need it: the schema does not fit
 * the budget (the ranking uses values) or sample values are on. Read on
 * the client's session through the policy with the tenant's own context,
 * so only its filtered, masked rows are seen — never table statistics,
 * which would show the other tenants' volume. Without values ASK still
 * works: any failure here only costs ranking quality. */
static void read_values(PgwStmtHandle *j)
{
    PgwConfig *cfg = j->snap->cfg;
    PgwAskBudget budget;
    ask_budget_from_config(cfg, &budget);
    bool needed =
        budget.samples_per_column > 0 || ask_schema_ddl_bytes(j->new_schema) > budget.schema_bytes;
    char *sql = needed ? ask_values_sql(j->new_schema, ASK_VALUE_COLUMNS) : NULL;
    if (!sql) {
        schema_ready(j, NULL);
        return;
    }
    PgwPolicyCtx ctx = {
        .cfg = cfg, .tenant = config_tenant(cfg, j->tenant), .schema = j->policy_schema};
    PgwPolicyResult pr;
    memset(&pr, 0, sizeof pr);
    int rc = ctx.tenant && ctx.schema ? policy_rewrite(&ctx, sql, &pr) : -1;
    free(sql);
    if (rc != 0 || pr.decision != PGW_POLICY_ALLOW || !pr.sql) {
        log_warning("tenant %s: the policy did not let ASK read values: %s", j->tenant,
                    rc != 0      ? "policy failure"
                    : pr.message ? pr.message
                                 : "refused");
        policy_result_free(&pr);
        schema_ready(j, NULL);
        return;
    }
    j->internal = j->ops->query(j->owner, pr.sql, values_read, j);
    policy_result_free(&pr);
    if (!j->internal)
        schema_ready(j, NULL);
}

static void schema_read(void *arg, size_t nrows, size_t ncols, char **values, const char *error)
{
    PgwStmtHandle *j = arg;
    j->internal = NULL;
    PgwConfig *cfg = j->snap->cfg;
    PgwAskSchema *s = error ? NULL
                            : ask_schema_build(cfg, config_tenant(cfg, j->tenant), nrows, ncols,
                                               (const char *const *)values);
    if (!s) {
        log_warning("tenant %s: reading the schema for ASK failed: %s", j->tenant,
                    error ? error : "unexpected result");
        job_refuse(j, SQLSTATE_INTERNAL_ERROR, "pgwarden ask: cannot read the tenant's schema",
                   NULL, NULL);
        return;
    }
    j->new_schema = s;
    read_values(j);
}

/* The catalog's signature is known: the cached snapshot still holds when
 * it matches, else the schema is read again (DDL since: a new column, a
 * dropped table), without waiting for a RELOAD. */
static void generation_read(void *arg, size_t nrows, size_t ncols, char **values, const char *error)
{
    PgwStmtHandle *j = arg;
    j->internal = NULL;
    const char *gen = !error && nrows == 1 && ncols == 1 && values[0] ? values[0] : "";
    free(j->generation);
    j->generation = pgw_strdup(gen);
    if (j->schema) {
        bool same = j->schema->generation && strcmp(j->schema->generation, gen) == 0;
        if (same) {
            pthread_mutex_lock(&ask_mu);
            j->schema->checked_ms = now_ms();
            pthread_mutex_unlock(&ask_mu);
            job_have_schema(j);
            return;
        }
        schema_put(j->schema);
        j->schema = NULL;
    }
    j->internal = j->ops->query(j->owner, ask_schema_introspection_sql(), schema_read, j);
    if (!j->internal)
        job_refuse(j, SQLSTATE_CONNECTION_FAILURE, "pgwarden ask: no server session", NULL, NULL);
}

/* Whether progress NOTICEs reach the client, as PostgreSQL decides for its
 * own: client_min_messages at notice or below (log sits below notice
 * there). Then the prompt schema: cached, or read now. */
static void settings_read(void *arg, size_t nrows, size_t ncols, char **values, const char *error)
{
    PgwStmtHandle *j = arg;
    j->internal = NULL;
    const char *level = !error && nrows == 1 && ncols == 1 ? values[0] : NULL;
    j->progress = level && (strncasecmp(level, "debug", 5) == 0 || strcasecmp(level, "log") == 0 ||
                            strcasecmp(level, "notice") == 0);
    j->schema = schema_get(j->tenant, j->snap->cfg->version);
    if (j->schema) {
        pthread_mutex_lock(&ask_mu);
        bool fresh = now_ms() - j->schema->checked_ms < ASK_SCHEMA_CHECK_MS;
        pthread_mutex_unlock(&ask_mu);
        if (fresh) {
            job_have_schema(j);
            return;
        }
    }
    j->internal = j->ops->query(j->owner, ask_schema_generation_sql(), generation_read, j);
    if (!j->internal)
        job_refuse(j, SQLSTATE_CONNECTION_FAILURE, "pgwarden ask: no server session", NULL, NULL);
}

static PgwStmtHandle *ask_start(const PgwStmtRequest *req, PgwAskKind kind, char *question,
                                PgwStmtDone done, void *arg)
{
    ask_globals();
    PgwStmtHandle *j = job_new(req, done, arg);
    bool finished = false;
    j->finished = &finished;
    j->base = req->base;
    j->snap = snapshot_retain(req->snap);
    j->user = pgw_strdup(req->user);
    j->tenant = pgw_strdup(req->tenant);
    j->client_addr = pgw_strdup(req->client_addr);
    j->kind = kind;
    j->sql = pgw_strdup(req->sql);
    j->question = question;
    j->policy_schema = req->schema;
    j->schema_release = req->schema_release;
    j->schema_ref = req->schema_ref;
    j->cache_verdict = req->cache_verdict;
    j->redis = req->redis;
    j->started_ms = now_ms();
    j->audit = audit_begin(req->user, req->tenant, req->client_addr,
                           kind == PGW_ASK_EXPLAIN ? "explain ask" : "ask",
                           req->protocol == PGW_STMT_SIMPLE ? "simple" : "extended", req->sql);
    audit_set_str(j->audit, "question", question);
    j->step = STEP_SCHEMA;
    j->internal = j->ops->query(
        j->owner, "SELECT pg_catalog.current_setting('client_min_messages')", settings_read, j);
    if (!j->internal)
        job_refuse(j, SQLSTATE_CONNECTION_FAILURE, "pgwarden ask: no server session", NULL, NULL);
    if (finished)
        return NULL; /* done() has run; j is gone */
    j->finished = NULL;
    return j;
}

/* ---------- parameter types the backend would infer (stmt_param.c) ---------- */

static void params_finish(PgwStmtHandle *j, PgwStmtResult *res)
{
    PgwStmtDone done = j->done;
    void *arg = j->arg;
    if (j->finished)
        *j->finished = true;
    job_free(j);
    done(arg, res);
}

static void params_probed(void *arg, size_t nrows, size_t ncols, char **values, const char *error)
{
    PgwStmtHandle *j = arg;
    j->internal = NULL;
    PgwStmtResult res = *j->held;
    free(j->held);
    j->held = NULL;
    char *sql = pgw_strdup(res.sql ? res.sql : "");
    stmt_params_answer(&res, j->nparam_types, j->param_types, nrows, ncols, values, error);
    AskSession **sess = (AskSession **)j->session_state;
    if (sess && res.param_types) {
        if (!*sess)
            *sess = pgw_calloc(1, sizeof **sess);
        stmt_params_memo_put(&(*sess)->params, sql, j->nparam_types, j->param_types, &res);
    }
    free(sql);
    params_finish(j, &res);
}

/* Whether a decision needs no question about its parameters: not a
 * Parse's REWRITE, no parameter left to the backend, or the session's
 * answer kept from before (then in *res). */
static bool params_settled(PgwStmtProtocol protocol, size_t ntypes, const uint32_t *types,
                           void **session_state, PgwStmtResult *res)
{
    if (protocol != PGW_STMT_PARSE || res->action != PGW_STMT_REWRITE || !res->sql ||
        !stmt_params_may_be_open(res->sql, ntypes, types))
        return true;
    AskSession *sess = session_state ? *(AskSession **)session_state : NULL;
    return sess && stmt_params_memo_get(sess->params, res->sql, ntypes, types, res);
}

/* A Parse's decision (REWRITE) that leaves a parameter to the backend: ask
 * it first. True when the question is in flight (j keeps *res and
 * finishes later); false when *res is final (perhaps now a refusal).
 * parsed_here: the policy read the statement on this thread, so its
 * rewrite can be read again here. checked: params_settled said no already. */
static bool params_check(PgwStmtHandle *j, PgwStmtResult *res, bool parsed_here, bool checked)
{
    if (!checked &&
        params_settled(j->protocol, j->nparam_types, j->param_types, j->session_state, res))
        return false;
    char *probe = NULL;
    if (policy_param_probe(res->sql, j->nparam_types, j->param_types, parsed_here, &probe) != 0) {
        stmt_params_refuse(res, SQLSTATE_FEATURE_NOT_SUPPORTED,
                           "pgwarden: this statement's parameters cannot be checked",
                           "Declare every parameter's type in the Parse message.");
        return false;
    }
    if (!probe)
        return false;
    void *q = j->ops ? j->ops->query(j->owner, probe, params_probed, j) : NULL;
    free(probe);
    if (!q) {
        stmt_params_refuse(res, SQLSTATE_CONNECTION_FAILURE,
                           "pgwarden: no server session to check the parameters' types", NULL);
        return false;
    }
    j->internal = q;
    j->held = pgw_malloc(sizeof *j->held);
    *j->held = *res;
    memset(res, 0, sizeof *res);
    return true;
}

/* ---------- the pipeline ---------- */

/* The policy's answer as the pipeline's result; frees *pr. */
static void policy_outcome(PgwStmtResult *res, PgwAudit *audit, int rc, PgwPolicyResult *pr)
{
    if (rc != 0) {
        refuse(res, SQLSTATE_INSUFFICIENT_PRIVILEGE,
               "pgwarden: the statement could not be checked, so it is refused", NULL, NULL);
        audit_set_decision(audit, "refuse", NULL, pr->reason ? pr->reason : "policy failure",
                           res->sqlstate);
    } else if (pr->decision == PGW_POLICY_REFUSE) {
        refuse(res, pr->sqlstate, pr->message, NULL, pr->hint);
        audit_set_decision(audit, "refuse", NULL, pr->reason, pr->sqlstate);
    } else {
        res->action = PGW_STMT_REWRITE;
        res->sql = pgw_strdup(pr->sql);
        audit_set_decision(audit, "allow", pr->sql, pr->reason, NULL);
    }
    policy_result_free(pr);
    res->audit = audit;
}

static PgwAudit *sql_audit(const PgwStmtRequest *req)
{
    return audit_begin(req->user, req->tenant, req->client_addr, "sql",
                       req->protocol == PGW_STMT_SIMPLE ? "simple" : "extended", req->sql);
}

static PgwPolicyCtx sql_ctx(const PgwStmtRequest *req, const PgwTenant *tenant)
{
    PgwPolicyCtx ctx = {.cfg = req->snap->cfg,
                        .tenant = tenant,
                        .schema = req->schema,
                        .nparam_types = req->nparam_types,
                        .param_types = req->param_types};
    return ctx;
}

static void decide_sql(const PgwStmtRequest *req, PgwStmtResult *res)
{
    PgwAudit *audit = sql_audit(req);
    const PgwTenant *tenant = config_tenant(req->snap->cfg, req->tenant);
    if (!tenant || !req->schema) {
        refuse(res, SQLSTATE_CANNOT_CONNECT_NOW,
               "pgwarden: the tenant's schema is not known yet, so no statement can be checked",
               NULL, "Retry in a moment.");
        audit_set_decision(audit, "refuse", NULL, "schema unknown", res->sqlstate);
        res->audit = audit;
        return;
    }
    PgwPolicyCtx ctx = sql_ctx(req, tenant);
    PgwPolicyResult pr;
    memset(&pr, 0, sizeof pr);
    PgwPolicyShape shape;
    int rc = policy_rewrite_shaped(&ctx, req->sql, &pr, &shape);
    PgwCacheVerdict v;
    bool hv = req->cache_verdict && rc == 0 && stmt_cache_verdict(&ctx, &pr, &shape, &v);
    policy_shape_free(&shape);
    policy_outcome(res, audit, rc, &pr);
    if (hv)
        result_set_verdict(res, ctx.cfg, tenant, req->schema, &v);
}

/* A policy thread decided a long statement. */
static void sql_decided(void *arg, int rc, PgwPolicyResult *pr, PgwCacheVerdict *v)
{
    PgwStmtHandle *j = arg;
    j->task = NULL;
    PgwStmtResult res;
    result_init(&res);
    policy_outcome(&res, j->audit, rc, pr);
    j->audit = NULL;
    if (v) {
        PgwConfig *cfg = j->snap->cfg;
        result_set_verdict(&res, cfg, config_tenant(cfg, j->tenant), j->policy_schema, v);
    }
    if (j->schema_release) {
        j->schema_release(j->schema_ref); /* nothing reads the schema any more */
        j->schema_release = NULL;
    }
    if (params_check(j, &res, false, false))
        return; /* params_probed finishes */
    PgwStmtDone done = j->done;
    void *done_arg = j->arg;
    job_free(j);
    done(done_arg, &res);
}

/* A long statement: decided on a policy thread. Returns NULL when done()
 * has run already (no thread could take it). */
static PgwStmtHandle *sql_offload(const PgwStmtRequest *req, const PgwTenant *tenant,
                                  PgwStmtDone done, void *arg)
{
    PgwStmtHandle *j = job_new(req, done, arg);
    j->snap = snapshot_retain(req->snap);
    j->tenant = pgw_strdup(req->tenant);
    j->policy_schema = req->schema;
    j->schema_release = req->schema_release;
    j->schema_ref = req->schema_ref;
    j->audit = sql_audit(req);
    PgwPolicyCtx ctx = sql_ctx(req, tenant);
    j->task =
        stmt_policy_offload(req->base, j->snap, &ctx, req->sql, req->cache_verdict, sql_decided, j);
    if (j->task)
        return j;
    PgwStmtResult res;
    result_init(&res);
    refuse(&res, SQLSTATE_INSUFFICIENT_RESOURCES,
           "pgwarden: the statement is too long to be checked now, so it is refused", NULL,
           "Retry in a moment, or send a shorter statement.");
    audit_set_decision(j->audit, "refuse", NULL, "no policy thread", res.sqlstate);
    res.audit = j->audit;
    j->audit = NULL;
    job_free(j);
    done(arg, &res);
    return NULL;
}

static void drop_schema(const PgwStmtRequest *req)
{
    if (req->schema_release)
        req->schema_release(req->schema_ref);
}

PgwStmtHandle *stmt_submit(const PgwStmtRequest *req, PgwStmtDone done, void *arg)
{
    PgwStmtResult res;
    result_init(&res);
    PgwAskKind kind = PGW_ASK_NONE;
    char *question = NULL;
    char err[512];
    if (ask_recognize(req->sql, &kind, &question, err, sizeof err) != 0) {
        refuse(&res, SQLSTATE_SYNTAX_ERROR, err, NULL,
               "Write ASK followed by a question, e.g. ASK how many orders were placed last month");
        drop_schema(req);
        done(arg, &res);
        return NULL;
    }
    if (kind != PGW_ASK_NONE && req->ops)
        return ask_start(req, kind, question, done, arg);
    free(question);
    const PgwTenant *tenant = config_tenant(req->snap->cfg, req->tenant);
    if (tenant && req->schema && !stmt_policy_inline(strlen(req->sql)))
        return sql_offload(req, tenant, done, arg);
    decide_sql(req, &res);
    drop_schema(req);
    /* The handle the question needs is made only when it is asked (a
     * driver repeating its Parse has the answer kept). */
    if (!params_settled(req->protocol, req->nparam_types, req->param_types, req->session_state,
                        &res)) {
        PgwStmtHandle *j = job_new(req, done, arg);
        bool finished = false;
        j->finished = &finished;
        if (params_check(j, &res, true, true)) {
            if (finished)
                return NULL;
            j->finished = NULL;
            return j;
        }
        job_free(j);
    }
    done(arg, &res);
    return NULL;
}

void stmt_abort(PgwStmtHandle *j)
{
    if (!j)
        return;
    if (j->call)
        llm_abort(j->call);
    if (j->internal)
        j->ops->forget(j->owner, j->internal);
    if (j->task) {
        /* A policy thread may still read the schema: its reference goes
         * with the task. */
        stmt_policy_abandon(j->task, j->schema_release, j->schema_ref);
        j->schema_release = NULL;
    }
    audit_set_str(j->audit, "outcome", "canceled");
    audit_finish(j->audit, 0);
    j->audit = NULL;
    job_free(j);
}

void stmt_result_free(PgwStmtResult *r)
{
    if (r->has_verdict)
        cache_verdict_free(&r->verdict);
    free(r->sql);
    free(r->message);
    free(r->detail);
    free(r->hint);
    free(r->param_types);
    buf_free(&r->answer);
    buf_free(&r->notices);
    audit_discard(r->audit);
    memset(r, 0, sizeof *r);
}
