/*
 * admin.c — the admin console; see admin.h.
 *
 * Each command builds a small text result set with the codec. Commands read
 * shared state only through the owners' thread-safe accessors (snapshot,
 * pool_foreach, server_foreach_client, policy cache stats).
 */
#include "admin.h"

#include "client.h"
#include "codec.h"
#include "config.h"
#include "policy.h"
#include "pool.h"
#include "schema.h"
#include "server.h"
#include "stats.h"

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

static void pool_row(PgwPool *p, void *arg)
{
    Table *t = arg;
    pthread_mutex_lock(&p->mu);
    int waiting = 0;
    for (PgwPoolWaiter *w = p->waiters; w; w = w->next)
        waiting++;
    char total[16], idle[16], wait[16], conn[24], fail[24], tables[24];
    snprintf(total, sizeof total, "%d", p->total);
    snprintf(idle, sizeof idle, "%d", p->nidle);
    snprintf(wait, sizeof wait, "%d", waiting);
    snprintf(conn, sizeof conn, "%llu", (unsigned long long)p->connects);
    snprintf(fail, sizeof fail, "%llu", (unsigned long long)p->connect_failures);
    snprintf(tables, sizeof tables, "%zu", p->schema ? schema_ntables(p->schema->schema) : 0);
    const char *row[] = {p->tenant, total, idle, wait, conn, fail, tables};
    table_row(t, row);
    pthread_mutex_unlock(&p->mu);
}

static void show_pools(PgwBuf *out)
{
    static const char *const names[] = {"tenant",   "sessions",         "idle",         "waiting",
                                        "connects", "connect_failures", "schema_tables"};
    Table t;
    table_begin(&t, out, 7, names);
    pool_foreach(pool_row, &t);
    table_end(&t, "SHOW");
}

static void client_row(PgwClient *c, void *arg)
{
    Table *t = arg;
    PgwClientInfo info;
    client_describe(c, &info);
    char pid[16], bpid[16];
    snprintf(pid, sizeof pid, "%u", info.pid);
    snprintf(bpid, sizeof bpid, "%d", info.backend_pid);
    const char *row[] = {info.user,
                         info.tenant,
                         info.addr,
                         info.state,
                         info.tls ? "yes" : "no",
                         pid,
                         info.backend_pid ? bpid : NULL};
    table_row(t, row);
}

static void show_clients(PgwBuf *out)
{
    static const char *const names[] = {"user", "tenant", "addr",       "state",
                                        "tls",  "pid",    "backend_pid"};
    Table t;
    table_begin(&t, out, 7, names);
    server_foreach_client(client_row, &t);
    table_end(&t, "SHOW");
}

static void show_stats(PgwBuf *out)
{
    static const char *const names[] = {"stat", "value"};
    Table t;
    table_begin(&t, out, 2, names);
    struct {
        const char *name;
        uint64_t v;
    } rows[] = {
        {"logins", STATS_GET(logins)},
        {"login_failures", STATS_GET(login_failures)},
        {"clients_active", STATS_GET(clients_active)},
        {"statements", STATS_GET(statements)},
        {"statements_refused", STATS_GET(statements_refused)},
        {"rows", STATS_GET(rows)},
        {"cancels", STATS_GET(cancels)},
        {"backend_lost", STATS_GET(backend_lost)},
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(rows); i++) {
        char v[32];
        snprintf(v, sizeof v, "%llu", (unsigned long long)rows[i].v);
        const char *row[] = {rows[i].name, v};
        table_row(&t, row);
    }
    table_end(&t, "SHOW");
}

static void show_cache(PgwBuf *out)
{
    static const char *const names[] = {"cache", "mode", "entries", "capacity", "hits", "misses"};
    Table t;
    table_begin(&t, out, 6, names);
    PgwPolicyCacheStats st;
    policy_cache_stats(&st);
    char e[24], c[24], h[24], m[24];
    snprintf(e, sizeof e, "%zu", st.entries);
    snprintf(c, sizeof c, "%zu", st.capacity);
    snprintf(h, sizeof h, "%lu", st.hits);
    snprintf(m, sizeof m, "%lu", st.misses);
    const char *row[] = {"rewrite", "memory", e, c, h, m};
    table_row(&t, row);
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
        /* The rewrite cache is keyed by tenant but cleared whole: a rewrite
         * is cheap to redo. */
        policy_cache_clear();
        codec_command_complete(out, "CACHE CLEAR");
        return;
    }
    codec_error(
        out, "ERROR", SQLSTATE_SYNTAX_ERROR, "pgwarden admin: unknown command", NULL,
        "Commands: SHOW TENANTS|POOLS|CLIENTS|STATS|CACHE|LLM|VERSION; RELOAD; CACHE CLEAR [tenant].");
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
