/*
 * metrics.c — see metrics.h. Like the admin console, it reads only what
 * the lower layers publish: atomic counters, pool_views' copies, the
 * rewrite cache's stats and the server's shutting-down flag.
 */
#include "metrics.h"

#include "buf.h"
#include "policy.h"
#include "pool.h"
#include "server.h"
#include "stats.h"

#include <event2/buffer.h>
#include <event2/http.h>
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
