/*
 * client_cache.c — the result cache in a client's protocol; see
 * client_cache.h. It owns, per client, what a cache key needs to know about
 * the session and where a cached answer starts and ends; the store, the
 * fronts and Redis are cache_service's.
 *
 * Simple protocol. A Query is first looked up by its raw text (tenant,
 * policy and schema fingerprints, the session's settings): a hit is
 * replayed through link_answer without the policy and without the backend.
 * A miss goes through the pipeline, which also gives the cache's verdict on
 * the rewrite; an eligible one is looked up again by the rewrite, with
 * single flight: hit, lead (the statement runs; its answer is captured from
 * the relayed bytes up to its ReadyForQuery and stored, with the raw text
 * as an alias), or bypass.
 *
 * Extended protocol. Parses go through the pipeline as always (their
 * rewrite and verdict are remembered per statement name); a Bind of the
 * unnamed portal to an eligible statement is held with the Describe and
 * Execute that follow it, and the three are looked up together (statement,
 * parameter values and formats, result formats). A hit answers
 * BindComplete, the row description if Describe asked, rows and
 * CommandComplete; a Sync with nothing of its pipeline at the server is
 * answered by the link itself, so a hit costs the backend nothing. A miss
 * or bypass puts the held messages back at the front of the input and they
 * go on as they came.
 *
 * Soundness rests on four things this file follows exactly:
 *  - Where an answer starts: a statement is looked up (and led) only when
 *    the session owes the client nothing (no ReadyForQuery of the client's
 *    expected; pgwarden's own queries and Syncs relay nothing) and nothing
 *    but Parses went to it since it was last synced; so the next bytes
 *    relayed are this statement's answer (a ParseComplete, which the
 *    capture skips, may come first). Otherwise it waits for the session, or
 *    bypasses. A capture ends with its answer, with the session, or at the
 *    client's Sync when its messages found no session at all.
 *  - The settings that shape the answer's bytes: read from the session
 *    itself (pg_settings, what the client or pgwarden set) when first
 *    needed, and read again after anything that may have changed one — a
 *    statement the verdict cannot call settings-safe (SET, RESET, DISCARD,
 *    set_config(), a user function, a transaction's end), an Execute of a
 *    portal whose statement is not known, or a ParameterStatus relayed.
 *  - Which statement a name means: a Parse is only believed once the
 *    session has answered everything without an error (until then it is
 *    used only inside the pipeline that sent it, where an error makes the
 *    server skip what follows, so a capture sees no answer and stores
 *    nothing); Close, DEALLOCATE and DISCARD forget, a lost session forgets
 *    all.
 *  - The transaction: only looked up in status 'I', read when the session
 *    owes nothing.
 * The relay's bytes are framed here from the first one on (link hooks, set
 * before anything is forwarded), so ErrorResponse and ParameterStatus are
 * seen wherever they fall.
 *
 * Never waiting for the client. While a decision is under way the client's
 * input is not read (its Sync may be in it), so what a decision waits for
 * must come without the client: a ReadyForQuery of the client's own (the
 * ready hook says it came), the settings query's answer (read only on a
 * synced session), the store's answer (a single-flight lead is another
 * client's statement, which never waits on a lookup while it captures),
 * the client's output draining. Never a ParseComplete: the server sends it
 * only at the client's Sync or Flush (hence OWES_PARSES goes on), and
 * never a ReadyForQuery of pgwarden's own (the SET of the client's startup
 * parameters, its settings replayed where transaction pooling lands it):
 * nothing announces those, and a Parse owed behind one would wait for the
 * very Sync not read; link_owed does not count them.
 */
#include "client_cache.h"

#include "audit.h"
#include "cache_service.h"
#include "codec.h"
#include "config.h"
#include "log.h"
#include "pool.h"
#include "schema.h"
#include "snapshot.h"
#include "stats.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STMT_BUCKETS 64
#define PEEK_MAX 1024 /* what is read of a message to learn its names */
/* The largest Bind held for a lookup (it must fit the client's input
 * buffer whole, see CLIENT_IN_HIGH); larger ones stream as always. */
#define HOLD_MAX (256 * 1024)

static const char settings_sql[] =
    "SELECT name, setting FROM pg_catalog.pg_settings WHERE source IN ('client', 'session') "
    "ORDER BY name";

/* A prepared statement as the pipeline decided it. */
typedef struct Stmt {
    char *name;
    char *raw; /* the client's text */
    char *rewrite; /* what the session prepared */
    size_t ntypes;
    uint32_t *types;
    bool has_verdict;
    PgwCacheVerdict verdict;
    uint8_t policy_fp[PGW_CACHE_DIGEST_LEN], schema_fp[PGW_CACHE_DIGEST_LEN];
    size_t bytes; /* charged to the client's max_prepared_memory */
    struct Stmt *next;
} Stmt;

/* What is being decided: a Query by its text (c->cur), the pipeline's
 * rewrite of a Query (c->result), a held Bind/Describe/Execute, or only
 * the settings before a Parse goes to the pipeline (c->cur). */
typedef enum { JOB_NONE, JOB_QUERY, JOB_RESULT, JOB_EXECUTE, JOB_PARSE } JobKind;
typedef enum { ST_START, ST_SETTINGS, ST_LOOKUP, ST_READY } JobStage;

typedef struct ClientCache {
    PgwClient *c;
    PgwCacheFront *front;
    /* the session's settings that shape answers */
    bool settings_known;
    unsigned settings_gen; /* counts every change of settings[] */
    unsigned settings_fp_gen; /* settings_fp is of settings[] at this generation */
    bool settings_fp_known;
    uint8_t settings_fp[PGW_CACHE_DIGEST_LEN];
    size_t nsettings;
    PgwCacheSetting *settings; /* strings owned */
    void *settings_query; /* being read ... */
    struct SettingsRead *settings_token; /* ... with this as its callback's argument */
    /* prepared statements: believed ones by name, and the ones parsed
     * since the session last owed nothing (in order) */
    Stmt *stmts[STMT_BUCKETS];
    Stmt *pending;
    size_t stmt_bytes; /* what they hold, against max_prepared_memory */
    bool saw_error; /* an ErrorResponse was relayed since then */
    bool dirty; /* more than Parses went to the session since its last Sync */
    bool waiting; /* a decision waits for the session to answer what came first */
    /* what the unnamed portal was bound to, when it went to the session */
    bool portal_known, portal_safe, portal_drops;
    /* framing of the relayed bytes */
    uint8_t fhdr[5];
    size_t fhave;
    uint32_t fleft;
    /* an answer being captured */
    bool capturing;
    PgwCacheCapture cap;
    PgwCacheTicket *lead;
    PgwAudit *lead_audit; /* extended-protocol miss: ours */
    PgwAudit *lead_query_audit; /* simple-protocol miss: the link's, alive until after ready */
    /* the decision under way */
    JobKind kind;
    JobStage stage;
    PgwCacheTicket *ticket;
    bool in_begin;
    PgwCacheOutcome how;
    PgwCacheEntry *entry;
    PgwCacheTicket *granted;
    char why[192];
    /* extended protocol: Bind [Describe] Execute held for a lookup */
    struct evbuffer *held;
    size_t hold_max; /* the largest Bind held (max_query_size, as of the last decision) */
    int nheld;
    bool held_describe;
    unsigned no_hold; /* messages put back: they pass without being held */
    /* A Query's raw-text key, kept from its first lookup for the alias its
     * miss stores: valid for the same text (the next lookup_result of this
     * Query), the same fingerprints and the same settings (generation). */
    bool raw_saved;
    char *raw_sql; /* the text it was made of */
    unsigned raw_gen;
    PgwCacheKey raw_key;
    uint8_t raw_pfp[PGW_CACHE_DIGEST_LEN], raw_sfp[PGW_CACHE_DIGEST_LEN];
} ClientCache;

static const PgwLinkHooks cache_hooks;

/* The argument of the settings query: the session may answer it (with an
 * error) after it was lost, even after the client went away, so the glue
 * is reached through this and unhooked when it no longer waits. */
typedef struct SettingsRead {
    ClientCache *cc;
} SettingsRead;

/* ---------- small helpers ---------- */

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

static void stmt_free(ClientCache *cc, Stmt *s)
{
    if (!s)
        return;
    cc->stmt_bytes -= s->bytes;
    free(s->name);
    free(s->raw);
    free(s->rewrite);
    free(s->types);
    if (s->has_verdict)
        cache_verdict_free(&s->verdict);
    free(s);
}

static Stmt **stmt_slot(ClientCache *cc, const char *name)
{
    Stmt **pp = &cc->stmts[name_hash(name) % STMT_BUCKETS];
    while (*pp && strcmp((*pp)->name, name) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* The statement name means now: the latest of this pipeline's Parses, else
 * the believed one. */
static Stmt *stmt_find(ClientCache *cc, const char *name)
{
    Stmt *found = NULL;
    for (Stmt *s = cc->pending; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            found = s;
    return found ? found : *stmt_slot(cc, name);
}

static void stmt_forget(ClientCache *cc, const char *name)
{
    Stmt **pp = stmt_slot(cc, name);
    if (*pp) {
        Stmt *s = *pp;
        *pp = s->next;
        stmt_free(cc, s);
    }
    for (Stmt **q = &cc->pending; *q;) {
        if (strcmp((*q)->name, name) == 0) {
            Stmt *s = *q;
            *q = s->next;
            stmt_free(cc, s);
        } else {
            q = &(*q)->next;
        }
    }
}

static void stmts_clear(ClientCache *cc)
{
    for (size_t i = 0; i < STMT_BUCKETS; i++) {
        while (cc->stmts[i]) {
            Stmt *s = cc->stmts[i];
            cc->stmts[i] = s->next;
            stmt_free(cc, s);
        }
    }
    while (cc->pending) {
        Stmt *s = cc->pending;
        cc->pending = s->next;
        stmt_free(cc, s);
    }
    cc->portal_known = false;
}

/* The session owes nothing: this pipeline's Parses are what it now holds,
 * unless one of them (or anything after them) failed. */
static void settle(ClientCache *cc)
{
    PgwLink *l = &cc->c->link;
    if (link_busy(l) || !link_synced(l))
        return;
    if (cc->saw_error && cc->pending) {
        /* Which of them the server has is not known: none is believed,
         * and the unnamed statement may have been dropped too. */
        while (cc->pending) {
            Stmt *s = cc->pending;
            cc->pending = s->next;
            stmt_free(cc, s);
        }
        stmt_forget(cc, "");
    }
    while (cc->pending) {
        Stmt *s = cc->pending;
        cc->pending = s->next;
        Stmt **pp = stmt_slot(cc, s->name);
        if (*pp) {
            Stmt *old = *pp;
            s->next = old->next;
            stmt_free(cc, old);
        } else {
            s->next = NULL;
        }
        *pp = s;
    }
    cc->saw_error = false;
    cc->dirty = false;
}

static void settings_clear(ClientCache *cc)
{
    for (size_t i = 0; i < cc->nsettings; i++) {
        free((char *)cc->settings[i].name);
        free((char *)cc->settings[i].value);
    }
    free(cc->settings);
    cc->settings = NULL;
    cc->nsettings = 0;
    cc->settings_known = false;
    cc->settings_gen++;
}

/* What a statement that went to the session may have done to it. */
static void statement_effects(ClientCache *cc, bool known, bool settings_safe, bool drops)
{
    if (!known || !settings_safe)
        cc->settings_known = false;
    if (!known || drops)
        stmts_clear(cc);
}

/* A copy of up to PEEK_MAX bytes of the message at the front of in. */
static size_t peek(struct evbuffer *in, size_t whole, uint8_t *out)
{
    size_t n = whole < PEEK_MAX ? whole : PEEK_MAX;
    ev_ssize_t got = evbuffer_copyout(in, out, n);
    return got < 0 ? 0 : (size_t)got;
}

/* The NUL-terminated string at *pos in b (len bytes), or NULL. */
static const char *cstr_at(const uint8_t *b, size_t len, size_t *pos)
{
    const uint8_t *nul = *pos < len ? memchr(b + *pos, 0, len - *pos) : NULL;
    if (!nul)
        return NULL;
    const char *s = (const char *)b + *pos;
    *pos = (size_t)(nul - b) + 1;
    return s;
}

static PgwBuf view(const uint8_t *data, size_t len)
{
    PgwBuf b = {(uint8_t *)data, len, len};
    return b;
}

/* ---------- the relay's bytes (link hooks) ---------- */

static void lead_finish(ClientCache *cc)
{
    cc->capturing = false;
    uint64_t rows = cc->cap.rows;
    bool stored = !cc->cap.failed && cc->cap.complete;
    if (cc->lead_query_audit) {
        audit_set_str(cc->lead_query_audit, "cache_reason",
                      stored ? "stored" : (cc->cap.why[0] ? cc->cap.why : "not stored"));
        cc->lead_query_audit = NULL;
    }
    if (cc->lead_audit) {
        audit_set_str(cc->lead_audit, "cache", "miss");
        audit_set_str(cc->lead_audit, "cache_reason",
                      stored ? "stored" : (cc->cap.why[0] ? cc->cap.why : "not stored"));
        audit_finish(cc->lead_audit, (int64_t)rows);
        cc->lead_audit = NULL;
    }
    cache_ticket_finish(cc->lead, &cc->cap);
    cc->lead = NULL;
}

static void lead_abandon(ClientCache *cc, const char *outcome)
{
    if (!cc->capturing)
        return;
    cc->capturing = false;
    cache_capture_free(&cc->cap);
    cache_ticket_abandon(cc->lead);
    cc->lead = NULL;
    cc->lead_query_audit = NULL;
    if (cc->lead_audit) {
        audit_set_str(cc->lead_audit, "cache", "miss");
        audit_set_str(cc->lead_audit, "outcome", outcome);
        audit_finish(cc->lead_audit, -1);
        cc->lead_audit = NULL;
    }
}

/* A message begins in the relayed stream. */
static void relayed_message(ClientCache *cc, char type)
{
    if (type == 'E')
        cc->saw_error = true;
    else if (type == 'S')
        cc->settings_known = false; /* a setting changed (SET, or the server's own) */
}

static void on_relayed(void *arg, const uint8_t *data, size_t len)
{
    ClientCache *cc = arg;
    if (cc->capturing) {
        cache_capture_bytes(&cc->cap, data, len);
        if (cc->cap.ready && cc->cap.shape == PGW_CACHE_EXTENDED)
            lead_finish(cc);
    }
    while (len > 0) {
        if (cc->fleft > 0) {
            size_t n = len < cc->fleft ? len : cc->fleft;
            cc->fleft -= (uint32_t)n;
            data += n;
            len -= n;
            continue;
        }
        size_t n = 5 - cc->fhave < len ? 5 - cc->fhave : len;
        memcpy(cc->fhdr + cc->fhave, data, n);
        cc->fhave += n;
        data += n;
        len -= n;
        if (cc->fhave < 5)
            return;
        cc->fhave = 0;
        uint32_t mlen = (uint32_t)cc->fhdr[1] << 24 | (uint32_t)cc->fhdr[2] << 16 |
                        (uint32_t)cc->fhdr[3] << 8 | cc->fhdr[4];
        cc->fleft = mlen >= 4 ? mlen - 4 : 0;
        relayed_message(cc, (char)cc->fhdr[0]);
    }
}

static void on_ready(void *arg, char tx_status)
{
    ClientCache *cc = arg;
    if (cc->capturing && cc->cap.ready)
        lead_finish(cc);
    settle(cc);
    if (cc->waiting) {
        /* What came before may be answered now (the session need not be
         * idle: a Parse of the pipeline may still be owed). */
        cc->waiting = false;
        client_resume(cc->c);
    }
}

static const PgwLinkHooks cache_hooks = {
    .relayed = on_relayed,
    .ready = on_ready,
};

/* ---------- the glue's life ---------- */

static ClientCache *cc_get(PgwClient *c)
{
    if (c->cache || c->cache_off)
        return c->cache;
    if (c->admin || !c->tenant) {
        c->cache_off = true;
        return NULL;
    }
    PgwSnapshot *s = snapshot_acquire();
    PgwCacheFront *front = cache_service_front(c->w, s->cfg);
    size_t max_query = s->cfg->max_query_size;
    snapshot_release(s);
    if (!front) {
        c->cache_off = true;
        return NULL;
    }
    ClientCache *cc = pgw_calloc(1, sizeof *cc);
    cc->c = c;
    cc->front = front;
    cc->hold_max = max_query < HOLD_MAX ? max_query : HOLD_MAX;
    c->cache = cc;
    link_set_hooks(&c->link, &cache_hooks, cc);
    return cc;
}

bool client_cache_on(PgwClient *c)
{
    return cc_get(c) != NULL;
}

struct PgwRedis *client_cache_redis(PgwClient *c)
{
    ClientCache *cc = cc_get(c);
    return cc ? cache_front_redis(cc->front) : NULL;
}

static void settings_forget(ClientCache *cc);

static void job_reset(ClientCache *cc)
{
    if (cc->ticket)
        cache_ticket_cancel(cc->ticket);
    cc->ticket = NULL;
    if (cc->entry)
        cache_entry_release(cc->entry);
    cc->entry = NULL;
    if (cc->granted)
        cache_ticket_abandon(cc->granted);
    cc->granted = NULL;
    cc->kind = JOB_NONE;
    cc->stage = ST_START;
    cc->why[0] = '\0';
}

static void held_drop(ClientCache *cc)
{
    if (cc->held)
        evbuffer_drain(cc->held, evbuffer_get_length(cc->held));
    cc->nheld = 0;
    cc->held_describe = false;
}

void client_cache_free(PgwClient *c)
{
    ClientCache *cc = c->cache;
    if (!cc)
        return;
    link_set_hooks(&c->link, NULL, NULL);
    job_reset(cc);
    lead_abandon(cc, "client disconnected");
    settings_forget(cc);
    settings_clear(cc);
    stmts_clear(cc);
    if (cc->held)
        evbuffer_free(cc->held);
    free(cc->raw_sql);
    free(cc);
    c->cache = NULL;
}

bool client_cache_busy(const PgwClient *c)
{
    /* A decided Query or Execute is still to be answered or let go (by
     * client_cache_step); a decided result is apply_result's. */
    const ClientCache *cc = c->cache;
    return cc && cc->kind != JOB_NONE && (cc->stage != ST_READY || cc->kind != JOB_RESULT);
}

bool client_cache_idle(const PgwClient *c)
{
    const ClientCache *cc = c->cache;
    return !cc || (cc->kind == JOB_NONE && cc->nheld == 0 && !cc->capturing);
}

/* ---------- the decision ---------- */

static void on_cache(void *arg, PgwCacheOutcome how, PgwCacheEntry *e, PgwCacheTicket *lead,
                     const char *why)
{
    ClientCache *cc = arg;
    cc->ticket = NULL;
    cc->how = how;
    cc->entry = e;
    cc->granted = lead;
    pgw_copy_str(cc->why, sizeof cc->why, why ? why : "");
    cc->stage = ST_READY;
    if (!cc->in_begin)
        client_resume(cc->c);
}

static void decide(ClientCache *cc, PgwCacheOutcome how, const char *why)
{
    cc->how = how;
    pgw_copy_str(cc->why, sizeof cc->why, why);
    cc->stage = ST_READY;
}

static void advance(ClientCache *cc);

/* Stop waiting for the settings query. */
static void settings_forget(ClientCache *cc)
{
    if (!cc->settings_query)
        return;
    if (link_has_session(&cc->c->link)) {
        link_forget(&cc->c->link, cc->settings_query);
        free(cc->settings_token);
    } else {
        cc->settings_token->cc = NULL; /* its answer comes, and only frees the token */
    }
    cc->settings_query = NULL;
    cc->settings_token = NULL;
}

static void settings_read(void *arg, size_t nrows, size_t ncols, char **values, const char *error)
{
    SettingsRead *token = arg;
    ClientCache *cc = token->cc;
    free(token);
    if (!cc)
        return;
    cc->settings_query = NULL;
    cc->settings_token = NULL;
    settings_clear(cc);
    if (!error && ncols == 2) {
        cc->settings = pgw_calloc(nrows + 1, sizeof *cc->settings);
        for (size_t i = 0; i < nrows; i++) {
            if (!values[2 * i])
                continue;
            cc->settings[cc->nsettings].name = pgw_strdup(values[2 * i]);
            cc->settings[cc->nsettings++].value =
                pgw_strdup(values[2 * i + 1] ? values[2 * i + 1] : "");
        }
        cc->settings_known = true;
        cc->settings_gen++;
    }
    if (cc->kind == JOB_PARSE && cc->stage == ST_SETTINGS) {
        cc->stage = ST_READY;
        client_resume(cc->c);
        return;
    }
    if (cc->kind != JOB_NONE && cc->stage == ST_SETTINGS) {
        if (!cc->settings_known) {
            decide(cc, PGW_CACHE_BYPASS, "bypass: the session's settings could not be read");
        } else {
            cc->stage = ST_START;
            advance(cc);
        }
        client_resume(cc->c);
    }
}

/* Start reading the session's settings; false when it cannot be. */
static bool settings_start(ClientCache *cc)
{
    SettingsRead *token = pgw_malloc(sizeof *token);
    token->cc = cc;
    cc->settings_query = link_query(&cc->c->link, settings_sql, settings_read, token);
    if (!cc->settings_query) {
        free(token);
        return false;
    }
    cc->settings_token = token;
    cc->stage = ST_SETTINGS;
    return true;
}

/* The key for sql under the fingerprints it was decided with. */
static int make_key(ClientCache *cc, const char *tenant, const uint8_t *policy_fp,
                    const uint8_t *schema_fp, PgwCacheShape shape, bool raw, const char *sql,
                    size_t ntypes, const uint32_t *types, const PgwCacheBind *bind,
                    PgwCacheKey *out)
{
    PgwCacheKeyInput in = {
        .tenant = tenant,
        .policy_fp = policy_fp,
        .schema_fp = schema_fp,
        .shape = shape,
        .raw_text = raw,
        .sql = sql,
        .nparam_types = ntypes,
        .param_types = types,
        .bind = bind,
        .settings_fp = cc->settings_fp,
    };
    if (!cc->settings_fp_known || cc->settings_fp_gen != cc->settings_gen) {
        cache_settings_fingerprint(cc->nsettings, cc->settings, cc->settings_fp);
        cc->settings_fp_gen = cc->settings_gen;
        cc->settings_fp_known = true;
    }
    return cache_key_build(&in, out, cc->why, sizeof cc->why);
}

static const char *query_text(PgwClient *c)
{
    const char *sql;
    if (codec_parse_query(c->cur.data + 5, c->cur.len - 5, &sql) != 0)
        return NULL;
    return sql;
}

static void begin(ClientCache *cc, const PgwCacheBegin *b)
{
    cc->stage = ST_LOOKUP;
    cc->in_begin = true;
    PgwCacheTicket *t = cache_begin(cc->front, b, on_cache, cc);
    cc->in_begin = false;
    if (cc->stage == ST_LOOKUP)
        cc->ticket = t;
}

/* The raw text of a Query, before the policy. */
static void lookup_query(ClientCache *cc, const PgwConfig *cfg)
{
    PgwClient *c = cc->c;
    const char *sql = query_text(c);
    const PgwTenant *tenant = config_tenant(cfg, c->tenant);
    PgwSchemaRef *schema = pool_schema_acquire(link_pool(&c->link));
    PgwCacheKey raw;
    if (!sql || !tenant || !schema) {
        if (schema)
            pool_schema_release(schema);
        decide(cc, PGW_CACHE_MISS, "miss");
        return;
    }
    uint8_t pfp[PGW_CACHE_DIGEST_LEN], sfp[PGW_CACHE_DIGEST_LEN];
    cache_policy_fingerprint(cfg, tenant, pfp);
    cache_schema_fingerprint(schema->schema, sfp);
    pool_schema_release(schema);
    if (make_key(cc, c->tenant, pfp, sfp, PGW_CACHE_SIMPLE, true, sql, 0, NULL, NULL, &raw) != 0) {
        decide(cc, PGW_CACHE_MISS, "miss");
        return;
    }
    cc->raw_saved = true;
    free(cc->raw_sql);
    cc->raw_sql = pgw_strdup(sql);
    cc->raw_gen = cc->settings_gen;
    cc->raw_key = raw;
    memcpy(cc->raw_pfp, pfp, sizeof pfp);
    memcpy(cc->raw_sfp, sfp, sizeof sfp);
    PgwCacheBegin b = {.tenant = c->tenant, .raw = &raw};
    begin(cc, &b);
}

/* The policy's rewrite of a Query, with single flight. */
static void lookup_result(ClientCache *cc, const PgwConfig *cfg)
{
    PgwClient *c = cc->c;
    PgwStmtResult *r = c->result;
    const char *sql = query_text(c);
    PgwCacheKey raw, primary;
    if (make_key(cc, c->tenant, r->policy_fp, r->schema_fp, PGW_CACHE_SIMPLE, false, r->sql, 0,
                 NULL, NULL, &primary) != 0) {
        decide(cc, PGW_CACHE_BYPASS, "bypass: no key");
        return;
    }
    /* A model's SQL is not a function of the client's text. */
    bool saved = cc->raw_saved && sql && strcmp(cc->raw_sql, sql) == 0 &&
                 cc->raw_gen == cc->settings_gen &&
                 memcmp(cc->raw_pfp, r->policy_fp, PGW_CACHE_DIGEST_LEN) == 0 &&
                 memcmp(cc->raw_sfp, r->schema_fp, PGW_CACHE_DIGEST_LEN) == 0;
    cc->raw_saved = false;
    if (saved)
        raw = cc->raw_key; /* the key lookup_query made of the same inputs */
    bool has_raw = !r->from_ask && sql &&
                   (saved || make_key(cc, c->tenant, r->policy_fp, r->schema_fp, PGW_CACHE_SIMPLE,
                                      true, sql, 0, NULL, NULL, &raw) == 0);
    PgwCacheBegin b = {
        .tenant = c->tenant,
        .raw = has_raw ? &raw : NULL,
        .primary = &primary,
        .nrelations = r->verdict.nrelations,
        .relations = r->verdict.relations,
        .ttl_ms = r->verdict.ttl_ms,
        .wait_ms = cfg->statement_timeout_ms,
    };
    begin(cc, &b);
}

/* The held Bind/[Describe]/Execute: the statement, its values, formats. */
static void lookup_execute(ClientCache *cc, const PgwConfig *cfg)
{
    PgwClient *c = cc->c;
    uint8_t hdr[5];
    evbuffer_copyout(cc->held, hdr, 5);
    uint32_t blen =
        (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
    const uint8_t *bind_msg = evbuffer_pullup(cc->held, 1 + (ev_ssize_t)blen);
    PgwCacheBind bind;
    if (!bind_msg || blen < 4 || cache_parse_bind(bind_msg + 5, blen - 4, &bind) != 0) {
        decide(cc, PGW_CACHE_BYPASS, "bypass: the Bind cannot be read");
        return;
    }
    Stmt *s = stmt_find(cc, bind.statement);
    if (!s || !s->has_verdict || !s->verdict.cacheable) {
        decide(cc, PGW_CACHE_BYPASS,
               s && s->has_verdict ? s->verdict.reason : "bypass: the statement is not known");
        return;
    }
    char why[160];
    if (!cache_bind_cacheable(&bind, why, sizeof why)) {
        snprintf(cc->why, sizeof cc->why, "bypass: %s", why);
        cc->how = PGW_CACHE_BYPASS;
        cc->stage = ST_READY;
        return;
    }
    PgwCacheKey primary;
    if (make_key(cc, c->tenant, s->policy_fp, s->schema_fp, PGW_CACHE_EXTENDED, false, s->rewrite,
                 s->ntypes, s->types, &bind, &primary) != 0) {
        char reason[sizeof cc->why];
        snprintf(reason, sizeof reason, "bypass: %.170s", cc->why);
        decide(cc, PGW_CACHE_BYPASS, reason);
        return;
    }
    PgwCacheBegin b = {
        .tenant = c->tenant,
        .primary = &primary,
        .nrelations = s->verdict.nrelations,
        .relations = s->verdict.relations,
        .ttl_ms = s->verdict.ttl_ms,
        .wait_ms = cfg->statement_timeout_ms,
    };
    begin(cc, &b);
}

/* As far as the decision goes now (see the prose on where an answer
 * starts). */
static void advance(ClientCache *cc)
{
    PgwClient *c = cc->c;
    PgwLink *l = &c->link;
    if (cc->stage != ST_START)
        return;
    switch (link_owed(l)) {
    case PGW_LINK_OWES_READY:
        cc->waiting = true; /* the ready hook or the link's idle() brings us back */
        return;
    case PGW_LINK_OWES_PIPELINE:
        decide(cc, cc->kind == JOB_QUERY ? PGW_CACHE_MISS : PGW_CACHE_BYPASS,
               "bypass: it follows other messages of an unfinished pipeline");
        return;
    case PGW_LINK_OWES_PARSES:
    case PGW_LINK_OWES_NOTHING:
        break;
    }
    cc->waiting = false;
    if (link_output_congested(l))
        return; /* a client that does not read gets no more answers: resume() */
    settle(cc);
    if (!link_synced(l) && cc->dirty) {
        decide(cc, cc->kind == JOB_QUERY ? PGW_CACHE_MISS : PGW_CACHE_BYPASS,
               "bypass: it follows other messages of an unfinished pipeline");
        return;
    }
    if (cc->kind != JOB_EXECUTE && !link_synced(l)) {
        decide(cc, cc->kind == JOB_QUERY ? PGW_CACHE_MISS : PGW_CACHE_BYPASS,
               "bypass: a Query inside an extended-protocol pipeline");
        return;
    }
    if (link_tx_status(l) != 'I') {
        decide(cc, cc->kind == JOB_QUERY ? PGW_CACHE_MISS : PGW_CACHE_BYPASS,
               "bypass: it runs inside an explicit transaction");
        return;
    }
    if (!cc->settings_known && cc->kind == JOB_EXECUTE && stmt_find(cc, "") != NULL) {
        /* Reading them is a simple Query, which would end the client's
         * unnamed statement on the session. */
        decide(cc, PGW_CACHE_BYPASS, "bypass: the session's settings changed since its Parse");
        return;
    }
    if (!cc->settings_known && !link_synced(l)) {
        /* Reading them now would be a simple Query in the middle of the
         * client's pipeline, which ends its unnamed statement. */
        decide(cc, cc->kind == JOB_QUERY ? PGW_CACHE_MISS : PGW_CACHE_BYPASS,
               "bypass: the session's settings changed inside this pipeline");
        return;
    }
    if (!cc->settings_known) {
        if (settings_start(cc))
            return;
        decide(cc, cc->kind == JOB_QUERY ? PGW_CACHE_MISS : PGW_CACHE_BYPASS,
               "bypass: the session's settings are not known");
        return;
    }
    PgwSnapshot *snap = snapshot_acquire();
    cache_service_configure(snap->cfg);
    cc->hold_max = snap->cfg->max_query_size < HOLD_MAX ? snap->cfg->max_query_size : HOLD_MAX;
    switch (cc->kind) {
    case JOB_QUERY:
        lookup_query(cc, snap->cfg);
        break;
    case JOB_RESULT:
        lookup_result(cc, snap->cfg);
        break;
    case JOB_EXECUTE:
        lookup_execute(cc, snap->cfg);
        break;
    case JOB_PARSE:
    case JOB_NONE:
        break;
    }
    snapshot_release(snap);
}

static size_t max_entry_now(void)
{
    PgwSnapshot *s = snapshot_acquire();
    size_t n = s->cfg->cache_max_entry;
    snapshot_release(s);
    return n;
}

static void start_capture(ClientCache *cc, PgwCacheShape shape, PgwCacheTicket *lead)
{
    /* A lead starts only once the session owes nothing, so the previous
     * capture has ended; should one still run, it gives up. */
    lead_abandon(cc, "not answered");
    cache_capture_init(&cc->cap, shape, max_entry_now());
    cc->capturing = true;
    cc->lead = lead;
}

static void audit_cache(PgwAudit *a, const char *how, const char *why)
{
    audit_set_str(a, "cache", how);
    if (why && *why)
        audit_set_str(a, "cache_reason", why);
}

/* ---------- simple protocol ---------- */

bool client_cache_query(PgwClient *c)
{
    ClientCache *cc = cc_get(c);
    if (cc)
        cc->raw_saved = false; /* another Query */
    if (!cc || cc->kind != JOB_NONE)
        return false;
    /* A simple Query ends the unnamed statement, in PostgreSQL (and in
     * transaction pooling's link): whether it runs or is answered here. */
    stmt_forget(cc, "");
    cc->kind = JOB_QUERY;
    cc->stage = ST_START;
    advance(cc); /* client_cache_step goes on from where this gets */
    return true;
}

bool client_cache_parse(PgwClient *c)
{
    ClientCache *cc = cc_get(c);
    PgwLink *l = &c->link;
    if (!cc || cc->settings_known || cc->kind != JOB_NONE || link_busy(l) || !link_synced(l) ||
        link_tx_status(l) != 'I')
        return false;
    PgwParseMsg pm;
    if (codec_parse_parse(c->cur.data + 5, c->cur.len - 5, &pm) != 0 ||
        (*pm.name && stmt_find(cc, "") != NULL))
        return false; /* reading them would end the unnamed statement the client still has */
    /* The settings are read before the Parse goes: once it has, reading
     * them would end the unnamed statement it makes. */
    cc->kind = JOB_PARSE;
    if (settings_start(cc))
        return true;
    cc->kind = JOB_NONE;
    cc->stage = ST_START;
    return false;
}

/* The raw text's lookup is decided: replay a hit, or let the pipeline run. */
static bool finish_query(ClientCache *cc)
{
    PgwClient *c = cc->c;
    if (cc->how == PGW_CACHE_HIT && cc->entry) {
        const PgwCacheAnswer *a = cache_entry_answer(cc->entry);
        PgwBuf msgs = view(a->data, a->len);
        link_answer(&c->link, &msgs, true);
        PgwAudit *au = audit_begin(c->user, c->tenant, c->addr, "sql", "simple", query_text(c));
        audit_set_decision(au, "allow", NULL, "answered from the result cache", NULL);
        audit_cache(au, "hit", cc->why);
        audit_finish(au, (int64_t)a->rows);
        STATS_ADD(rows, a->rows);
        job_reset(cc);
        c->cur_type = 0;
        buf_reset(&c->cur);
        return true;
    }
    job_reset(cc);
    client_submit_statement(c);
    return !c->closing;
}

ClientCacheApply client_cache_apply(PgwClient *c, PgwStmtResult *r)
{
    ClientCache *cc = c->cache;
    if (!cc || c->cur_type != 'Q' || r->action != PGW_STMT_REWRITE)
        return CLIENT_CACHE_SEND;
    if (cc->kind == JOB_NONE) {
        if (!r->has_verdict || !r->verdict.cacheable) {
            char why[256];
            snprintf(why, sizeof why, "not cacheable, because %s",
                     r->has_verdict ? r->verdict.reason : "it was not checked");
            audit_cache(r->audit, "bypass", why);
            return CLIENT_CACHE_SEND;
        }
        cc->kind = JOB_RESULT;
        cc->stage = ST_START;
        advance(cc);
    }
    if (cc->kind != JOB_RESULT || cc->stage != ST_READY)
        return CLIENT_CACHE_WAIT;
    ClientCacheApply out = CLIENT_CACHE_SEND;
    switch (cc->how) {
    case PGW_CACHE_HIT: {
        const PgwCacheAnswer *a = cache_entry_answer(cc->entry);
        PgwBuf msgs = view(a->data, a->len);
        link_answer(&c->link, &msgs, true);
        audit_cache(r->audit, "hit", cc->why);
        audit_finish(r->audit, (int64_t)a->rows);
        r->audit = NULL;
        STATS_ADD(rows, a->rows);
        out = CLIENT_CACHE_ANSWERED;
        break;
    }
    case PGW_CACHE_LEAD:
        audit_cache(r->audit, "miss", cc->why);
        start_capture(cc, PGW_CACHE_SIMPLE, cc->granted);
        cc->granted = NULL;
        /* The link finishes it at the statement's ReadyForQuery, after our
         * ready hook has said whether the answer was stored. */
        cc->lead_query_audit = r->audit;
        break;
    default:
        audit_cache(r->audit, "bypass", cc->why);
        break;
    }
    job_reset(cc);
    return out;
}

void client_cache_sent(PgwClient *c, const PgwStmtResult *r)
{
    ClientCache *cc = c->cache;
    if (!cc)
        return;
    if (c->cur_type == 'Q') {
        if (!link_synced(&c->link))
            cc->dirty = true; /* a Query inside an open extended-protocol pipeline */
        statement_effects(cc, r->has_verdict, r->has_verdict && r->verdict.settings_safe,
                          !r->has_verdict || r->verdict.drops_prepared);
        return;
    }
    /* A Parse: what the name will mean once the session has answered. */
    PgwParseMsg pm;
    if (codec_parse_parse(c->cur.data + 5, c->cur.len - 5, &pm) != 0)
        return;
    Stmt *s = pgw_calloc(1, sizeof *s);
    s->name = pgw_strdup(pm.name);
    const char *rewrite = r->action == PGW_STMT_REWRITE && r->sql ? r->sql : pm.query;
    size_t bytes = strlen(pm.query) + strlen(rewrite) + 4 * ((size_t)pm.nparams + r->nparam_types);
    PgwSnapshot *snap = snapshot_acquire();
    bool fits = cc->stmt_bytes + bytes <= snap->cfg->max_prepared_memory;
    snapshot_release(snap);
    if (!fits) {
        /* Past max_prepared_memory the name is all that is kept: the
         * statement runs as usual, never from the cache (no verdict), so a
         * client's Parses cannot grow this process without bound. */
        Stmt **tail = &cc->pending;
        while (*tail)
            tail = &(*tail)->next;
        *tail = s;
        return;
    }
    s->bytes = bytes;
    cc->stmt_bytes += bytes;
    s->raw = pgw_strdup(pm.query);
    s->rewrite = pgw_strdup(rewrite);
    if (r->param_types && r->nparam_types) {
        /* The types the Parse went with (stmt.c typed every parameter). */
        s->ntypes = r->nparam_types;
        s->types = pgw_malloc(s->ntypes * sizeof *s->types);
        memcpy(s->types, r->param_types, s->ntypes * sizeof *s->types);
    } else if (pm.nparams) {
        s->ntypes = pm.nparams;
        s->types = pgw_malloc(s->ntypes * sizeof *s->types);
        for (size_t i = 0; i < s->ntypes; i++) {
            const uint8_t *p = pm.param_types_raw + 4 * i;
            s->types[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        }
    }
    if (r->has_verdict) {
        s->has_verdict = true;
        s->verdict = r->verdict;
        /* the relations are the result's; the statement keeps copies */
        s->verdict.relations = NULL;
        if (r->verdict.nrelations) {
            s->verdict.relations = pgw_calloc(r->verdict.nrelations, sizeof(char *));
            for (size_t i = 0; i < r->verdict.nrelations; i++)
                s->verdict.relations[i] = pgw_strdup(r->verdict.relations[i]);
        }
        memcpy(s->policy_fp, r->policy_fp, sizeof s->policy_fp);
        memcpy(s->schema_fp, r->schema_fp, sizeof s->schema_fp);
    }
    Stmt **tail = &cc->pending;
    while (*tail)
        tail = &(*tail)->next;
    *tail = s;
}

/* ---------- extended protocol ---------- */

/* Put the held messages back in front of the input: they go on as they
 * came, unheld. */
static void held_release(ClientCache *cc)
{
    struct evbuffer *in = bufferevent_get_input(cc->c->bev);
    cc->no_hold += (unsigned)cc->nheld;
    evbuffer_prepend_buffer(in, cc->held);
    cc->nheld = 0;
    cc->held_describe = false;
}

static void hold(ClientCache *cc, struct evbuffer *in, size_t whole)
{
    if (!cc->held)
        cc->held = evbuffer_new();
    evbuffer_remove_buffer(in, cc->held, whole);
    cc->nheld++;
}

/* The held group is decided. */
static bool finish_execute(ClientCache *cc)
{
    PgwClient *c = cc->c;
    if (cc->how == PGW_CACHE_HIT && cc->entry) {
        const PgwCacheAnswer *a = cache_entry_answer(cc->entry);
        if (cc->held_describe && !a->has_head) {
            snprintf(cc->why, sizeof cc->why,
                     "bypass: the cached answer has no row description for Describe");
            cc->how = PGW_CACHE_BYPASS;
        } else {
            /* Parse the Bind again for the statement's texts (the audit record). */
            uint8_t hdr[5];
            evbuffer_copyout(cc->held, hdr, 5);
            uint32_t blen =
                (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
            const uint8_t *bm = evbuffer_pullup(cc->held, 1 + (ev_ssize_t)blen);
            size_t pos = 5;
            const char *portal = bm ? cstr_at(bm, 1 + blen, &pos) : NULL;
            const char *name = portal ? cstr_at(bm, 1 + blen, &pos) : NULL;
            Stmt *s = name ? stmt_find(cc, name) : NULL;
            PgwBuf out;
            buf_init(&out);
            buf_append(&out, "2\0\0\0\4", 5); /* BindComplete */
            if (cc->held_describe)
                buf_append(&out, a->data, a->head_len);
            buf_append(&out, a->data + a->head_len, a->len - a->head_len);
            link_answer(&c->link, &out, false);
            buf_free(&out);
            PgwAudit *au =
                audit_begin(c->user, c->tenant, c->addr, "sql", "extended", s ? s->raw : NULL);
            audit_set_decision(au, "allow", s ? s->rewrite : NULL, "answered from the result cache",
                               NULL);
            audit_set_str(au, "step", "execute");
            audit_cache(au, "hit", cc->why);
            audit_finish(au, (int64_t)a->rows);
            STATS_ADD(rows, a->rows);
            held_drop(cc);
            job_reset(cc);
            return true;
        }
    }
    if (cc->how == PGW_CACHE_LEAD && cc->granted) {
        start_capture(cc, PGW_CACHE_EXTENDED, cc->granted);
        cc->granted = NULL;
        uint8_t hdr[5];
        evbuffer_copyout(cc->held, hdr, 5);
        uint32_t blen =
            (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
        const uint8_t *bm = evbuffer_pullup(cc->held, 1 + (ev_ssize_t)blen);
        size_t pos = 5;
        const char *portal = bm ? cstr_at(bm, 1 + blen, &pos) : NULL;
        const char *name = portal ? cstr_at(bm, 1 + blen, &pos) : NULL;
        Stmt *s = name ? stmt_find(cc, name) : NULL;
        cc->lead_audit =
            audit_begin(c->user, c->tenant, c->addr, "sql", "extended", s ? s->raw : NULL);
        audit_set_decision(cc->lead_audit, "allow", s ? s->rewrite : NULL,
                           "prepared statement executed", NULL);
        audit_set_str(cc->lead_audit, "step", "execute");
    }
    job_reset(cc);
    held_release(cc);
    return true;
}

/* Whether a Describe or Execute names the unnamed portal; Execute's row
 * limit in *max_rows. */
static bool unnamed_portal(struct evbuffer *in, size_t whole, char type, uint32_t *max_rows)
{
    uint8_t m[16];
    if (whole > sizeof m)
        return false; /* a named portal */
    evbuffer_copyout(in, m, whole);
    if (type == 'D')
        return whole == 7 && m[5] == 'P' && m[6] == 0;
    if (whole != 10 || m[5] != 0)
        return false;
    *max_rows = (uint32_t)m[6] << 24 | (uint32_t)m[7] << 16 | (uint32_t)m[8] << 8 | m[9];
    return true;
}

/* A message that goes to the session unheld: what it does to what the
 * cache follows. */
static void note_forward(ClientCache *cc, struct evbuffer *in, char type, size_t whole)
{
    uint8_t m[PEEK_MAX];
    size_t n, pos = 5;
    switch (type) {
    case 'B': {
        cc->dirty = true;
        n = peek(in, whole, m);
        const char *portal = cstr_at(m, n, &pos);
        const char *name = portal ? cstr_at(m, n, &pos) : NULL;
        if (portal && *portal)
            return; /* a named portal: its Execute is not known */
        Stmt *s = name ? stmt_find(cc, name) : NULL;
        cc->portal_known = s && s->has_verdict;
        cc->portal_safe = cc->portal_known && s->verdict.settings_safe;
        cc->portal_drops = !cc->portal_known || s->verdict.drops_prepared;
        return;
    }
    case 'E': {
        cc->dirty = true;
        n = peek(in, whole, m);
        const char *portal = cstr_at(m, n, &pos);
        bool known = portal && !*portal && cc->portal_known;
        statement_effects(cc, known, cc->portal_safe, cc->portal_drops);
        return;
    }
    case 'C': {
        cc->dirty = true;
        n = peek(in, whole, m);
        if (n > 6 && m[5] == 'S') {
            pos = 6;
            const char *name = cstr_at(m, n, &pos);
            if (name)
                stmt_forget(cc, name);
            else
                stmts_clear(cc); /* a name longer than we looked at */
        }
        return;
    }
    case 'S':
    case 'X':
        return;
    default:
        cc->dirty = true;
        return;
    }
}

bool client_cache_message(PgwClient *c, struct evbuffer *in, char type, size_t whole, bool *go_on)
{
    ClientCache *cc = cc_get(c);
    *go_on = true;
    if (!cc)
        return false;
    if (type == 'S' && cc->capturing && !link_has_session(&c->link)) {
        /* A lead whose messages found no session (transaction pooling:
         * none came free within pool_timeout; the client got the error and
         * skipped to this Sync): its answer will never be relayed, and the
         * next statement's must not be taken for it. */
        lead_abandon(cc, "no server session");
    }
    if (cc->no_hold > 0) {
        cc->no_hold--;
        if (!c->ext_skip)
            note_forward(cc, in, type, whole);
        return false;
    }
    if (c->ext_skip)
        return false;
    size_t avail = evbuffer_get_length(in);
    if (cc->nheld > 0) {
        uint32_t max_rows = 0;
        if (type == 'D' && !cc->held_describe && avail >= whole &&
            unnamed_portal(in, whole, 'D', &max_rows)) {
            hold(cc, in, whole);
            cc->held_describe = true;
            return true;
        }
        if (type == 'E' && avail >= whole && unnamed_portal(in, whole, 'E', &max_rows)) {
            hold(cc, in, whole);
            if (max_rows != 0) {
                held_release(cc); /* a portal read in parts is not cached */
                return true;
            }
            cc->kind = JOB_EXECUTE;
            cc->stage = ST_START;
            advance(cc);
            if (cc->stage == ST_READY)
                return finish_execute(cc), true;
            return true;
        }
        if ((type == 'D' || type == 'E') && avail < whole) {
            *go_on = false; /* the rest of it is on its way */
            return true;
        }
        held_release(cc);
        return true;
    }
    if (type == 'S') {
        settle(cc);
        return false;
    }
    if (type != 'B' || cc->kind != JOB_NONE || cc->capturing) {
        note_forward(cc, in, type, whole);
        return false;
    }
    /* A Bind: held when it binds the unnamed portal to an eligible
     * statement and is small enough to be held. */
    if (whole > cc->hold_max) {
        note_forward(cc, in, type, whole);
        return false;
    }
    if (avail < whole) {
        *go_on = false; /* the rest of it is on its way */
        return true;
    }
    uint8_t m[PEEK_MAX];
    size_t n = peek(in, whole, m), pos = 5;
    const char *portal = cstr_at(m, n, &pos);
    const char *name = portal ? cstr_at(m, n, &pos) : NULL;
    Stmt *st = name ? stmt_find(cc, name) : NULL;
    if (!portal || *portal || !st || !st->has_verdict || !st->verdict.cacheable) {
        note_forward(cc, in, type, whole);
        return false;
    }
    hold(cc, in, whole);
    return true;
}

/* ---------- going on, stopping ---------- */

bool client_cache_step(PgwClient *c)
{
    ClientCache *cc = c->cache;
    if (!cc || cc->kind == JOB_NONE)
        return true;
    if (cc->kind != JOB_PARSE)
        advance(cc);
    if (cc->stage != ST_READY)
        return false;
    switch (cc->kind) {
    case JOB_PARSE:
        job_reset(cc);
        client_submit_statement(c);
        return !c->closing;
    case JOB_QUERY:
        return finish_query(cc);
    case JOB_EXECUTE:
        return finish_execute(cc);
    default:
        return true; /* apply_result takes it */
    }
}

bool client_cache_cancel(PgwClient *c, char *type)
{
    ClientCache *cc = c->cache;
    if (!cc || cc->kind == JOB_NONE)
        return false;
    JobKind kind = cc->kind;
    settings_forget(cc);
    job_reset(cc);
    if (kind == JOB_EXECUTE) {
        held_drop(cc);
        *type = 'E';
        return true;
    }
    if (kind == JOB_PARSE) {
        c->cur_type = 0;
        buf_reset(&c->cur);
        *type = 'P';
        return true;
    }
    if (kind == JOB_RESULT && c->result) {
        stmt_result_free(c->result);
        free(c->result);
        c->result = NULL;
    }
    c->cur_type = 0;
    buf_reset(&c->cur);
    *type = 'Q';
    return true;
}

void client_cache_lost(PgwClient *c, bool skip_to_sync)
{
    ClientCache *cc = c->cache;
    if (!cc)
        return;
    lead_abandon(cc, "session lost");
    if (cc->kind == JOB_EXECUTE || cc->nheld) {
        /* The held messages name a statement of the lost session: inside
         * the pipeline the error ends they go with it; otherwise they go
         * on, and the new session says the statement does not exist. */
        job_reset(cc);
        if (skip_to_sync)
            held_drop(cc);
        else
            held_release(cc);
    }
    /* A new session knows none of the old one's statements or settings. */
    stmts_clear(cc);
    cc->settings_known = false;
    cc->saw_error = false;
    cc->dirty = false;
    cc->fhave = 0;
    cc->fleft = 0;
    if (cc->settings_query) {
        settings_forget(cc); /* the session took it with it */
        if (cc->kind != JOB_NONE && cc->stage == ST_SETTINGS)
            decide(cc, cc->kind == JOB_QUERY ? PGW_CACHE_MISS : PGW_CACHE_BYPASS,
                   "bypass: the session was lost"); /* JOB_PARSE: READY, it goes on */
    }
}
