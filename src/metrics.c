/*
 * metrics.c — see metrics.h. Like the admin console, it reads only what
 * the lower layers publish: atomic counters, pool_views' copies, the
 * rewrite cache's stats, the result cache's totals (copied under its lock),
 * the Redis connections' counters and the server's shutting-down flag.
 */
#include "metrics.h"

#include "buf.h"
#include "cache_redis.h"
#include "cache_service.h"
#include "policy.h"
#include "pool.h"
#include "server.h"
#include "stats.h"
#include "stmt.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static struct evhttp *http;

static void pool_metrics(const PgwPoolView *p, void *arg)
{
    PgwBuf *b = arg;
    buf_printf(b, "pgwarden_pool_sessions{tenant=\"%s\"} %d\n", p->tenant, p->sessions);
    buf_printf(b, "pgwarden_pool_idle{tenant=\"%s\"} %d\n", p->tenant, p->idle);
    buf_printf(b, "pgwarden_pool_waiting{tenant=\"%s\"} %d\n", p->tenant, p->waiting);
    buf_printf(b, "pgwarden_pool_connect_failures_total{tenant=\"%s\"} %llu\n", p->tenant,
               (unsigned long long)p->connect_failures);
}

static void counter(PgwBuf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
               (unsigned long long)v);
}

/* Prometheus label values escape backslash, quote and newline. */
static void label(PgwBuf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            buf_append_byte(b, '\\');
        if (*v == '\n')
            buf_append_str(b, "\\n");
        else
            buf_append_byte(b, (uint8_t)*v);
    }
}

typedef struct TenantSeries {
    PgwBuf *b;
    const char *name;
    size_t offset; /* of the counter in PgwCacheCounters */
    bool wide; /* uint64_t, else size_t */
} TenantSeries;

static void tenant_series(void *arg, const char *tenant, const PgwCacheCounters *n)
{
    TenantSeries *ts = arg;
    const char *p = (const char *)n + ts->offset;
    unsigned long long v = ts->wide ? *(const uint64_t *)p : *(const size_t *)p;
    buf_printf(ts->b, "%s{tenant=\"", ts->name);
    label(ts->b, tenant);
    buf_printf(ts->b, "\"} %llu\n", v);
}

/* The result cache: totals, then per tenant. */
static void cache_metrics(PgwBuf *b)
{
    PgwCache *store = cache_service_store();
    PgwCacheCounters n = {0};
    size_t max_memory = 0;
    if (store)
        cache_totals(store, &n, &max_memory);
    static const struct {
        const char *name, *type, *help;
        size_t offset;
        bool wide;
    } series[] = {
        {"pgwarden_cache_entries", "gauge", "Result cache entries held in this process.",
         offsetof(PgwCacheCounters, entries), false},
        {"pgwarden_cache_bytes", "gauge", "Bytes the result cache holds in this process.",
         offsetof(PgwCacheCounters, bytes), false},
        {"pgwarden_cache_hits_total", "counter", "Statements answered from the result cache.",
         offsetof(PgwCacheCounters, hits), true},
        {"pgwarden_cache_misses_total", "counter", "Cacheable statements run on the backend.",
         offsetof(PgwCacheCounters, misses), true},
        {"pgwarden_cache_evictions_total", "counter", "Entries dropped to stay within max_memory.",
         offsetof(PgwCacheCounters, evictions), true},
        {"pgwarden_cache_coalesced_total", "counter",
         "Statements that waited for an identical one instead of running.",
         offsetof(PgwCacheCounters, coalesced), true},
        {"pgwarden_cache_bypasses_total", "counter",
         "Cacheable statements run without storing (too big, Redis away, a wait too long).",
         offsetof(PgwCacheCounters, bypasses), true},
        {"pgwarden_cache_invalidations_total", "counter",
         "Entries dropped because a table changed.", offsetof(PgwCacheCounters, invalidations),
         true},
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(series); i++) {
        const char *p = (const char *)&n + series[i].offset;
        unsigned long long v = series[i].wide ? *(const uint64_t *)p : *(const size_t *)p;
        counter(b, series[i].name, series[i].type, series[i].help, v);
        TenantSeries ts = {b, series[i].name, series[i].offset, series[i].wide};
        if (store)
            cache_foreach_tenant(store, tenant_series, &ts);
    }
    counter(b, "pgwarden_cache_max_memory_bytes", "gauge", "The result cache's max_memory.",
            max_memory);
    PgwRedisStats rs;
    cache_redis_stats(&rs);
    counter(b, "pgwarden_cache_redis_connected", "gauge",
            "Workers whose Redis connection is up (mode = redis).",
            (uint64_t)(rs.connected > 0 ? rs.connected : 0));
    counter(b, "pgwarden_cache_redis_outages_total", "counter", "Times Redis became unavailable.",
            rs.outages);
    counter(b, "pgwarden_cache_redis_timeouts_total", "counter",
            "Redis replies later than redis_timeout.", rs.timeouts);
    counter(b, "pgwarden_cache_redis_errors_total", "counter",
            "Redis error replies, garbled entries and failed connects.", rs.errors);
    counter(b, "pgwarden_cache_redis_reconnects_total", "counter",
            "Redis connection attempts after a failure.", rs.reconnects);
    counter(b, "pgwarden_cache_redis_bypassed_total", "counter",
            "Redis operations answered \"bypass\" (the statement ran uncached).", rs.bypassed);
    PgwKvCacheStats ks;
    stmt_ask_cache_stats(&ks);
    counter(b, "pgwarden_ask_translation_cache_entries", "gauge",
            "ASK translations cached in this process.", ks.entries);
    counter(b, "pgwarden_ask_translation_cache_hits_total", "counter",
            "ASK questions answered from the translation cache.", ks.hits);
    counter(b, "pgwarden_ask_translation_cache_misses_total", "counter",
            "ASK questions that went to the model.", ks.misses);
}

static void metrics_cb(struct evhttp_request *req, void *arg)
{
    PgwBuf b;
    buf_init(&b);
    counter(&b, "pgwarden_logins_total", "counter", "Successful client logins.", STATS_GET(logins));
    counter(&b, "pgwarden_login_failures_total", "counter", "Refused client logins.",
            STATS_GET(login_failures));
    counter(&b, "pgwarden_clients", "gauge", "Connected clients.", STATS_GET(clients_active));
    counter(&b, "pgwarden_statements_total", "counter", "Statements answered by a backend.",
            STATS_GET(statements));
    counter(&b, "pgwarden_statements_refused_total", "counter", "Statements refused by the policy.",
            STATS_GET(statements_refused));
    counter(&b, "pgwarden_rows_total", "counter", "Rows returned to clients.", STATS_GET(rows));
    counter(&b, "pgwarden_cancels_total", "counter", "Cancel requests.", STATS_GET(cancels));
    counter(&b, "pgwarden_backend_lost_total", "counter", "Backend sessions lost mid-use.",
            STATS_GET(backend_lost));
    PgwPolicyCacheStats st;
    policy_cache_stats(&st);
    counter(&b, "pgwarden_rewrite_cache_hits_total", "counter", "Policy rewrite cache hits.",
            st.hits);
    counter(&b, "pgwarden_rewrite_cache_misses_total", "counter", "Policy rewrite cache misses.",
            st.misses);
    cache_metrics(&b);
    buf_printf(&b, "# TYPE pgwarden_pool_sessions gauge\n");
    pool_views(pool_metrics, &b);
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, b.data, b.len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
    buf_free(&b);
}

static void healthz_cb(struct evhttp_request *req, void *arg)
{
    struct evbuffer *out = evbuffer_new();
    bool down = server_shutting_down();
    evbuffer_add_printf(out, down ? "shutting down\n" : "ok\n");
    evhttp_send_reply(req, down ? 503 : 200, down ? "Service Unavailable" : "OK", out);
    evbuffer_free(out);
}

int metrics_start(struct event_base *base, const char *addr, int port, char *err, size_t errlen)
{
    if (port <= 0)
        return 0;
    http = evhttp_new(base);
    evhttp_set_cb(http, "/metrics", metrics_cb, NULL);
    evhttp_set_cb(http, "/healthz", healthz_cb, NULL);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    const char *host = !addr || !*addr || strcmp(addr, "*") == 0 ? "0.0.0.0" : addr;
    if (!evhttp_bind_socket_with_handle(http, host, (ev_uint16_t)port)) {
        snprintf(err, errlen, "cannot listen for metrics on %s:%d", host, port);
        evhttp_free(http);
        http = NULL;
        return -1;
    }
    return 0;
}

void metrics_stop(void)
{
    if (http)
        evhttp_free(http);
    http = NULL;
}
