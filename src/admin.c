/*
 * admin.c — the admin console; see admin.h.
 *
 * Each command builds a small text result set with the codec. Commands read
 * only what the lower layers publish for them, each copy made under its
 * owner's lock or with atomic loads: the runtime snapshot, pool_views,
 * the workers' connection views (workers_foreach_view), the atomic
 * counters, the rewrite cache's stats. The console never touches a live
 * client, session or pool, so it can run on any thread.
 */
#include "admin.h"

#include "cache_redis.h"
#include "cache_service.h"
#include "changes_service.h"
#include "codec.h"
#include "config.h"
#include "policy.h"
#include "pool.h"
#include "server.h"
#include "snapshot.h"
#include "stats.h"
#include "stmt.h"
#include "worker.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_COLS 12

typedef struct Table {
    PgwBuf *out;
    int ncols;
    long nrows;
} Table;

static void table_begin(Table *t, PgwBuf *out, int ncols, const char *const *names)
{
    t->out = out;
    t->ncols = ncols;
    t->nrows = 0;
    codec_row_description(out, ncols, names, NULL);
}

static void table_row(Table *t, const char *const *values)
{
    codec_data_row(t->out, t->ncols, values);
    t->nrows++;
}

static void table_end(Table *t, const char *command)
{
    char tag[64];
    snprintf(tag, sizeof tag, "%s %ld", command, t->nrows);
    codec_command_complete(t->out, tag);
}

/* The conninfo without its password. */
static char *safe_conninfo(const char *conninfo)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (!opts) {
        PQfreemem(err);
        return pgw_strdup("(invalid)");
    }
    PgwBuf b;
    buf_init(&b);
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || strcmp(o->keyword, "password") == 0)
            continue;
        buf_printf(&b, "%s%s=%s", b.len ? " " : "", o->keyword, o->val);
    }
    PQconninfoFree(opts);
    return buf_steal_str(&b);
}

static void show_tenants(PgwBuf *out)
{
    static const char *const names[] = {"tenant", "id", "backend", "pool_size", "users"};
    Table t;
    table_begin(&t, out, 5, names);
    PgwSnapshot *s = snapshot_acquire();
    PgwConfig *cfg = s->cfg;
    for (size_t i = 0; i < cfg->ntenants; i++) {
        const PgwTenant *tn = &cfg->tenants[i];
        PgwBuf users;
        buf_init(&users);
        for (size_t u = 0; u < cfg->nusers; u++)
            for (size_t k = 0; k < cfg->users[u].ntenants; k++)
                if (strcmp(cfg->users[u].tenants[k], tn->name) == 0)
                    buf_printf(&users, "%s%s", users.len ? "," : "", cfg->users[u].user);
        char *users_s = buf_steal_str(&users);
        char *backend = safe_conninfo(tn->backend);
        char size[16];
        snprintf(size, sizeof size, "%d", tn->pool_size > 0 ? tn->pool_size : cfg->pool_size);
        const char *row[] = {tn->name, tn->id, backend, size, users_s};
        table_row(&t, row);
        free(users_s);
        free(backend);
    }
    snapshot_release(s);
    table_end(&t, "SHOW");
}

/* Clients per tenant by what they do, for SHOW POOLS: active holds a
 * backend session (or a statement being decided), waiting waits for one. */
typedef struct ClientCounts {
    struct ClientCounts *next;
    char tenant[64];
    int active, idle, waiting;
} ClientCounts;

static void count_client(const PgwConnView *v, void *arg)
{
    ClientCounts **list = arg;
    if (!*v->database)
        return;
    ClientCounts *c = *list;
    while (c && strcmp(c->tenant, v->database) != 0)
        c = c->next;
    if (!c) {
        c = pgw_calloc(1, sizeof *c);
        snprintf(c->tenant, sizeof c->tenant, "%s", v->database);
        c->next = *list;
        *list = c;
    }
    if (v->state == PGW_CONN_WAITING)
        c->waiting++;
    else if (v->backend_pid || v->state == PGW_CONN_ACTIVE)
        c->active++;
    else if (v->state == PGW_CONN_IDLE)
        c->idle++;
}

typedef struct PoolTable {
    Table t;
    ClientCounts *clients;
} PoolTable;

static void pool_row(const PgwPoolView *p, void *arg)
{
    PoolTable *pt = arg;
    Table *t = &pt->t;
    char total[16], idle[16], wait[16], conn[24], fail[24], tables[24];
    char active[16], prepared[24], cl_active[16], cl_idle[16], cl_waiting[16];
    const ClientCounts *c = pt->clients;
    while (c && strcmp(c->tenant, p->tenant) != 0)
        c = c->next;
    snprintf(active, sizeof active, "%d", p->active);
    snprintf(prepared, sizeof prepared, "%ld", p->prepared);
    snprintf(cl_active, sizeof cl_active, "%d", c ? c->active : 0);
    snprintf(cl_idle, sizeof cl_idle, "%d", c ? c->idle : 0);
    snprintf(cl_waiting, sizeof cl_waiting, "%d", c ? c->waiting : 0);
    snprintf(total, sizeof total, "%d", p->sessions);
    snprintf(idle, sizeof idle, "%d", p->idle);
    snprintf(wait, sizeof wait, "%d", p->waiting);
    snprintf(conn, sizeof conn, "%llu", (unsigned long long)p->connects);
    snprintf(fail, sizeof fail, "%llu", (unsigned long long)p->connect_failures);
    snprintf(tables, sizeof tables, "%zu", p->schema_tables);
    const char *row[] = {p->tenant, total,  idle,     wait,      conn,    fail,      tables,
                         p->mode,   active, prepared, cl_active, cl_idle, cl_waiting};
    table_row(t, row);
}

/* The first seven columns are the old ones, in their order: tools that
 * read them by position go on working. */
static void show_pools(PgwBuf *out)
{
    static const char *const names[] = {
        "tenant",           "sessions",      "idle",      "waiting", "connects",
        "connect_failures", "schema_tables", "pool_mode", "active",  "prepared",
        "cl_active",        "cl_idle",       "cl_waiting"};
    PoolTable pt = {.clients = NULL};
    workers_foreach_view(count_client, &pt.clients);
    table_begin(&pt.t, out, 13, names);
    pool_views(pool_row, &pt);
    table_end(&pt.t, "SHOW");
    while (pt.clients) {
        ClientCounts *c = pt.clients;
        pt.clients = c->next;
        free(c);
    }
}

static void client_row(const PgwConnView *v, void *arg)
{
    static const char *const states[] = {
        [PGW_CONN_STARTUP] = "startup", [PGW_CONN_AUTH] = "auth",
        [PGW_CONN_LOGIN] = "login",     [PGW_CONN_IDLE] = "idle",
        [PGW_CONN_ACTIVE] = "active",   [PGW_CONN_WAITING] = "waiting",
    };
    Table *t = arg;
    char pid[16], bpid[16], prepared[16];
    snprintf(pid, sizeof pid, "%u", v->id);
    snprintf(bpid, sizeof bpid, "%d", v->backend_pid);
    snprintf(prepared, sizeof prepared, "%u", v->prepared);
    const char *row[] = {*v->user ? v->user : NULL,
                         *v->database ? v->database : NULL,
                         v->addr,
                         (size_t)v->state < PGW_ARRAY_LEN(states) ? states[v->state] : "?",
                         v->tls ? "yes" : "no",
                         pid,
                         v->backend_pid ? bpid : NULL,
                         prepared};
    table_row(t, row);
}

static void show_clients(PgwBuf *out)
{
    static const char *const names[] = {"user", "tenant", "addr",        "state",
                                        "tls",  "pid",    "backend_pid", "prepared"};
    Table t;
    table_begin(&t, out, 8, names);
    workers_foreach_view(client_row, &t);
    table_end(&t, "SHOW");
}

static void show_stats(PgwBuf *out)
{
    static const char *const names[] = {"stat", "value"};
    Table t;
    table_begin(&t, out, 2, names);
    PgwRedisStats rs;
    cache_redis_stats(&rs);
    struct {
        const char *name;
        uint64_t v;
    } rows[] = {
        {"logins", STATS_GET(logins)},
        {"login_failures", STATS_GET(login_failures)},
        {"clients_active", STATS_GET(clients_active)},
        {"clients_parked", STATS_GET(clients_parked)},
        {"statements", STATS_GET(statements)},
        {"statements_refused", STATS_GET(statements_refused)},
        {"rows", STATS_GET(rows)},
        {"cancels", STATS_GET(cancels)},
        {"backend_lost", STATS_GET(backend_lost)},
        /* the result cache's Redis (mode = redis) */
        {"redis_connected", (uint64_t)(rs.connected > 0 ? rs.connected : 0)},
        {"redis_outages", rs.outages},
        {"redis_timeouts", rs.timeouts},
        {"redis_errors", rs.errors},
        {"redis_reconnects", rs.reconnects},
        {"redis_bypassed", rs.bypassed},
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(rows); i++) {
        char v[32];
        snprintf(v, sizeof v, "%llu", (unsigned long long)rows[i].v);
        const char *row[] = {rows[i].name, v};
        table_row(&t, row);
    }
    table_end(&t, "SHOW");
}

static const char *mode_name(PgwCacheMode m)
{
    return m == PGW_CACHE_REDIS ? "redis" : m == PGW_CACHE_MEMORY ? "memory" : "off";
}

/* The counters of one cache as text cells (NULL where a cache has none). */
typedef struct CacheRow {
    char v[9][24];
    const char *cell[9];
} CacheRow;

static void cache_row_counters(CacheRow *r, const PgwCacheCounters *n)
{
    const unsigned long long vals[] = {n->entries,   n->bytes,     n->hits,     n->misses,
                                       n->evictions, n->coalesced, n->bypasses, n->invalidations};
    for (size_t i = 0; i < PGW_ARRAY_LEN(vals); i++) {
        snprintf(r->v[i], sizeof r->v[i], "%llu", vals[i]);
        r->cell[i] = r->v[i];
    }
}

#define SHOW_CACHE_COLS 16

/* invalidation = replication: one row per followed database (cache
 * "stream"): whether its results are served (mode: exact, held, fallback
 * to ttl), the invalidations it sent, and the stream's state, last LSN
 * processed and lag. */
static void stream_row(void *arg, const PgwChangesView *v)
{
    char inv[24], lsn[32], lag[24];
    snprintf(inv, sizeof inv, "%llu", (unsigned long long)v->invalidations);
    snprintf(lsn, sizeof lsn, "%X/%X", (unsigned)(v->st.last_lsn >> 32),
             (unsigned)(v->st.last_lsn & 0xffffffffu));
    snprintf(lag, sizeof lag, "%lld", (long long)v->st.lag_ms);
    const char *row[SHOW_CACHE_COLS] = {"stream",
                                        changes_gate_name(v->gate),
                                        NULL,
                                        NULL,
                                        NULL,
                                        NULL,
                                        NULL,
                                        NULL,
                                        NULL,
                                        NULL,
                                        inv,
                                        v->database,
                                        changes_state_name(v->st.state),
                                        lsn,
                                        lag,
                                        v->tenants};
    table_row(arg, row);
}

/* SHOW CACHE: the three caches a statement meets, side by side, then the
 * change streams. The first six columns are the ones SHOW CACHE always
 * had; database..tenants are the streams' alone. */
static void show_cache(PgwBuf *out)
{
    static const char *const names[SHOW_CACHE_COLS] = {
        "cache",  "mode",      "entries",   "capacity", "hits",          "misses",
        "bytes",  "evictions", "coalesced", "bypasses", "invalidations", "database",
        "stream", "last_lsn",  "lag_ms",    "tenants"};
    Table t;
    table_begin(&t, out, SHOW_CACHE_COLS, names);
    PgwPolicyCacheStats st;
    policy_cache_stats(&st);
    char e[24], c[24], h[24], m[24];
    snprintf(e, sizeof e, "%zu", st.entries);
    snprintf(c, sizeof c, "%zu", st.capacity);
    snprintf(h, sizeof h, "%lu", st.hits);
    snprintf(m, sizeof m, "%lu", st.misses);
    const char *rewrite[SHOW_CACHE_COLS] = {"rewrite", "memory", e, c, h, m};
    table_row(&t, rewrite);

    PgwSnapshot *s = snapshot_acquire();
    PgwCacheMode mode = s->cfg->cache_mode;
    snapshot_release(s);
    PgwCacheCounters n = {0};
    size_t max_memory = 0;
    PgwCache *store = cache_service_store();
    if (store)
        cache_totals(store, &n, &max_memory);
    CacheRow r;
    cache_row_counters(&r, &n);
    char cap[24];
    snprintf(cap, sizeof cap, "%zu", max_memory);
    /* In Redis mode the entries live in Redis: this process holds none. */
    const char *result[SHOW_CACHE_COLS] = {"result",
                                           mode_name(mode),
                                           mode == PGW_CACHE_REDIS ? NULL : r.cell[0],
                                           mode == PGW_CACHE_REDIS ? NULL : cap,
                                           r.cell[2],
                                           r.cell[3],
                                           mode == PGW_CACHE_REDIS ? NULL : r.cell[1],
                                           r.cell[4],
                                           r.cell[5],
                                           r.cell[6],
                                           r.cell[7]};
    table_row(&t, result);

    PgwKvCacheStats ks;
    stmt_ask_cache_stats(&ks);
    char ke[24], kh[24], km[24];
    snprintf(ke, sizeof ke, "%zu", ks.entries);
    snprintf(kh, sizeof kh, "%llu", (unsigned long long)ks.hits);
    snprintf(km, sizeof km, "%llu", (unsigned long long)ks.misses);
    const char *translation[SHOW_CACHE_COLS] = {"translation",
                                                mode == PGW_CACHE_REDIS ? "memory+redis" : "memory",
                                                ke,
                                                NULL,
                                                kh,
                                                km,
                                                NULL,
                                                NULL,
                                                NULL,
                                                NULL,
                                                NULL};
    table_row(&t, translation);
    changes_service_views(stream_row, &t);
    table_end(&t, "SHOW");
}

typedef struct TenantRows {
    Table *t;
    const char *only; /* one tenant, or NULL */
} TenantRows;

static void tenant_row(void *arg, const char *tenant, const PgwCacheCounters *n)
{
    TenantRows *tr = arg;
    if (tr->only && strcmp(tr->only, tenant) != 0)
        return;
    CacheRow r;
    cache_row_counters(&r, n);
    const char *row[] = {tenant,    r.cell[0], r.cell[1], r.cell[2], r.cell[3],
                         r.cell[4], r.cell[5], r.cell[6], r.cell[7]};
    table_row(tr->t, row);
}

/* SHOW CACHE TENANTS | SHOW CACHE <tenant>: the result cache per tenant. */
static void show_cache_tenants(PgwBuf *out, const char *only)
{
    static const char *const names[] = {"tenant",    "entries",  "bytes",
                                        "hits",      "misses",   "evictions",
                                        "coalesced", "bypasses", "invalidations"};
    Table t;
    table_begin(&t, out, 9, names);
    PgwCache *store = cache_service_store();
    TenantRows tr = {&t, only};
    if (store)
        cache_foreach_tenant(store, tenant_row, &tr);
    table_end(&t, "SHOW");
}

static void show_llm(PgwBuf *out)
{
    static const char *const names[] = {"provider",   "base_url",     "model",
                                        "timeout_ms", "max_attempts", "api_key"};
    Table t;
    table_begin(&t, out, 6, names);
    PgwSnapshot *s = snapshot_acquire();
    PgwConfig *cfg = s->cfg;
    char to[16], att[16];
    snprintf(to, sizeof to, "%d", cfg->llm_timeout_ms);
    snprintf(att, sizeof att, "%d", cfg->llm_max_attempts);
    const char *row[] = {cfg->llm_provider == PGW_LLM_ANTHROPIC ? "anthropic" : "openai",
                         cfg->llm_base_url,
                         cfg->llm_model,
                         to,
                         att,
                         cfg->llm_api_key && *cfg->llm_api_key ? "(set)" : "(not set)"};
    table_row(&t, row);
    snapshot_release(s);
    table_end(&t, "SHOW");
}

static void show_version(PgwBuf *out)
{
    static const char *const names[] = {"version"};
    Table t;
    table_begin(&t, out, 1, names);
    const char *row[] = {"pgwarden " PGW_VERSION_STRING};
    table_row(&t, row);
    table_end(&t, "SHOW");
}

/* The third word of a command as typed (a tenant name keeps its case). */
static void third_word(const char *sql, char *out, size_t outlen)
{
    const char *p = sql;
    for (int w = 0; w < 2; w++) {
        while (*p && isspace((unsigned char)*p))
            p++;
        while (*p && !isspace((unsigned char)*p) && *p != ';')
            p++;
    }
    while (*p && isspace((unsigned char)*p))
        p++;
    size_t n = 0;
    while (p[n] && !isspace((unsigned char)p[n]) && p[n] != ';' && n + 1 < outlen)
        n++;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* Split the command into at most 4 lower-cased words. */
static int words(const char *sql, char w[4][64])
{
    int n = 0;
    const char *p = sql;
    while (*p) {
        while (*p && (isspace((unsigned char)*p) || *p == ';'))
            p++;
        if (!*p)
            break;
        if (n == 4)
            return -1;
        size_t len = 0;
        while (*p && !isspace((unsigned char)*p) && *p != ';') {
            if (len < 63)
                w[n][len++] = (char)tolower((unsigned char)*p);
            p++;
        }
        w[n][len] = '\0';
        n++;
    }
    return n;
}

void admin_execute(const char *sql, PgwBuf *out)
{
    char w[4][64];
    int n = words(sql, w);
    if (n == 0) {
        codec_empty_query(out);
        return;
    }
    if (n == 2 && strcmp(w[0], "show") == 0) {
        if (strcmp(w[1], "tenants") == 0)
            return show_tenants(out);
        if (strcmp(w[1], "pools") == 0)
            return show_pools(out);
        if (strcmp(w[1], "clients") == 0)
            return show_clients(out);
        if (strcmp(w[1], "stats") == 0)
            return show_stats(out);
        if (strcmp(w[1], "cache") == 0)
            return show_cache(out);
        if (strcmp(w[1], "llm") == 0)
            return show_llm(out);
        if (strcmp(w[1], "version") == 0)
            return show_version(out);
    }
    if (n == 3 && strcmp(w[0], "show") == 0 && strcmp(w[1], "cache") == 0) {
        char tenant[64];
        third_word(sql, tenant, sizeof tenant);
        return show_cache_tenants(out, strcmp(w[2], "tenants") == 0 ? NULL : tenant);
    }
    if (n == 1 && strcmp(w[0], "reload") == 0) {
        char err[1024];
        if (server_reload(err, sizeof err) != 0) {
            codec_error(out, "ERROR", "F0000",
                        "pgwarden: reload failed, the running configuration stays", err, NULL);
            return;
        }
        codec_command_complete(out, "RELOAD");
        return;
    }
    if ((n == 2 || n == 3) && strcmp(w[0], "cache") == 0 && strcmp(w[1], "clear") == 0) {
        /* Without a worker to reach Redis from (admin_execute_later is
         * the console's way): what lives in this process. */
        char tenant[64];
        third_word(sql, tenant, sizeof tenant);
        policy_cache_clear();
        if (n == 2)
            stmt_ask_cache_clear();
        PgwCache *store = cache_service_store();
        if (store)
            cache_clear(store, n == 3 ? tenant : NULL);
        codec_command_complete(out, "CACHE CLEAR");
        return;
    }
    codec_error(out, "ERROR", SQLSTATE_SYNTAX_ERROR, "pgwarden admin: unknown command", NULL,
                "Commands: SHOW TENANTS|POOLS|CLIENTS|STATS|CACHE [TENANTS|tenant]|LLM|VERSION; "
                "RELOAD; CACHE CLEAR [tenant].");
}

typedef struct Clear {
    void (*done)(void *arg, const PgwBuf *out);
    void *arg;
} Clear;

static void cleared(void *arg, size_t memory, long long redis, bool redis_ok)
{
    Clear *cl = arg;
    PgwBuf out;
    buf_init(&out);
    if (!redis_ok)
        codec_notice(&out, "WARNING", "58000",
                     "pgwarden: the result cache's entries in Redis were not cleared: Redis is "
                     "unavailable",
                     NULL,
                     "Run CACHE CLEAR again once Redis is back (SHOW STATS: redis_connected).");
    codec_command_complete(&out, "CACHE CLEAR");
    cl->done(cl->arg, &out);
    buf_free(&out);
    free(cl);
}

bool admin_execute_later(PgwWorker *w, const char *sql, void (*done)(void *arg, const PgwBuf *out),
                         void *arg)
{
    char words_[4][64];
    int n = words(sql, words_);
    if (!((n == 2 || n == 3) && strcmp(words_[0], "cache") == 0 && strcmp(words_[1], "clear") == 0))
        return false;
    char tenant[64];
    third_word(sql, tenant, sizeof tenant);
    /* The rewrite cache is keyed by tenant but cleared whole: a rewrite is
     * cheap to redo; so are ASK translations, cleared with everything. */
    policy_cache_clear();
    if (n == 2)
        stmt_ask_cache_clear();
    Clear *cl = pgw_malloc(sizeof *cl);
    cl->done = done;
    cl->arg = arg;
    PgwSnapshot *s = snapshot_acquire();
    cache_service_clear(w, s->cfg, n == 3 ? tenant : NULL, cleared, cl);
    snapshot_release(s);
    return true;
}

void admin_login_params(PgwBuf *out)
{
    codec_parameter_status(out, "server_version", "15.0 (pgwarden " PGW_VERSION_STRING ")");
    codec_parameter_status(out, "server_encoding", "UTF8");
    codec_parameter_status(out, "client_encoding", "UTF8");
    codec_parameter_status(out, "DateStyle", "ISO, MDY");
    codec_parameter_status(out, "integer_datetimes", "on");
    codec_parameter_status(out, "standard_conforming_strings", "on");
    codec_parameter_status(out, "application_name", "");
}
