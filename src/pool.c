/*
 * pool.c — per-tenant pools of backend sessions; see pool.h.
 *
 * Invariants, all under the pool's mutex: total counts every session alive
 * or connecting; total <= the tenant's pool_size when a new session starts;
 * a session is in exactly one place: the idle list (detached from any event
 * base), a client, a mail in flight, or the reset that precedes release.
 *
 * Work that touches a client or a session's bufferevent runs on the owning
 * worker; the pool only decides under its lock and then mails.
 */
#include "pool.h"

#include "backend.h"
#include "client.h"
#include "codec.h"
#include "config.h"
#include "log.h"
#include "schema.h"
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* The GUC_REPORT settings of PostgreSQL 15: what a client learns at login. */
static const char *const reported_params[] = {
    "server_version",
    "server_encoding",
    "client_encoding",
    "application_name",
    "default_transaction_read_only",
    "in_hot_standby",
    "is_superuser",
    "session_authorization",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "integer_datetimes",
    "standard_conforming_strings",
};

static pthread_mutex_t pools_mu = PTHREAD_MUTEX_INITIALIZER;
static PgwPool *pools;

typedef struct PoolMail {
    PgwPool *pool;
    PgwBackend *backend; /* NULL: "a slot is yours, connect" */
    uint32_t pid;
    uint64_t serial;
} PoolMail;

PgwPool *pool_get(const char *tenant)
{
    pthread_mutex_lock(&pools_mu);
    PgwPool *p;
    for (p = pools; p; p = p->next)
        if (strcmp(p->tenant, tenant) == 0)
            break;
    if (!p) {
        p = pgw_calloc(1, sizeof *p);
        p->tenant = pgw_strdup(tenant);
        pthread_mutex_init(&p->mu, NULL);
        p->next = pools;
        pools = p;
    }
    pthread_mutex_unlock(&pools_mu);
    return p;
}

void pool_foreach(void (*fn)(PgwPool *p, void *arg), void *arg)
{
    pthread_mutex_lock(&pools_mu);
    for (PgwPool *p = pools; p; p = p->next)
        fn(p, arg);
    pthread_mutex_unlock(&pools_mu);
}

static int pool_limit(PgwPool *p)
{
    PgwSnapshot *s = snapshot_acquire();
    const PgwTenant *t = config_tenant(s->cfg, p->tenant);
    int limit = t && t->pool_size > 0 ? t->pool_size : s->cfg->pool_size;
    snapshot_release(s);
    return limit;
}

/* Start a session for the client (pid, serial) on worker w. The slot is
 * already counted in total. */
static void connect_for(PgwPool *p, PgwWorker *w, uint32_t pid, uint64_t serial)
{
    PgwSnapshot *s = snapshot_acquire();
    const PgwTenant *t = config_tenant(s->cfg, p->tenant);
    if (!t) {
        snapshot_release(s);
        pthread_mutex_lock(&p->mu);
        p->total--;
        pthread_mutex_unlock(&p->mu);
        PgwClient *c = worker_find_client(w, pid, serial);
        if (c)
            client_backend_failed(c, SQLSTATE_INVALID_CATALOG,
                                  "pgwarden: the tenant is no longer configured");
        return;
    }
    /* Session settings are startup options, not SETs, so DISCARD ALL on
     * release returns to them rather than to the server's defaults. They
     * come after the tenant's own options, so they win. The server must
     * read string literals as the policy's parser did (backslashes are not
     * escapes), whatever the tenant's server is configured with. */
    char options[512];
    snprintf(options, sizeof options,
             "-c default_transaction_read_only=on -c standard_conforming_strings=on "
             "-c search_path=%s -c statement_timeout=%d",
             s->cfg->search_path ? s->cfg->search_path : "public", s->cfg->statement_timeout_ms);
    char *conninfo = pgw_strdup(t->backend);
    snapshot_release(s);
    pthread_mutex_lock(&p->mu);
    p->connects++;
    pthread_mutex_unlock(&p->mu);
    backend_connect(p, w, conninfo, options, pid, serial);
    free(conninfo);
}

static void connect_mail(PgwWorker *w, void *arg);

/* A slot freed up: give it to the first waiter, if any. Called with the
 * lock held; returns the mail to post after unlocking (or NULL). */
static PoolMail *next_waiter_locked(PgwPool *p, PgwBackend *b)
{
    PgwPoolWaiter *wt = p->waiters;
    if (!wt)
        return NULL;
    p->waiters = wt->next;
    if (!p->waiters)
        p->waiters_tail = NULL;
    PoolMail *m = pgw_malloc(sizeof *m);
    m->pool = p;
    m->backend = b;
    m->pid = wt->pid; /* the pid names the worker the mail goes to */
    m->serial = wt->serial;
    free(wt);
    return m;
}

static void handoff_mail(PgwWorker *w, void *arg)
{
    PoolMail *m = arg;
    PgwBackend *b = m->backend;
    PgwClient *c = worker_find_client(w, m->pid, m->serial);
    backend_attach(b, w);
    if (c && client_is_waiting(c))
        client_backend_ready(c, b);
    else
        pool_backend_clean(b);
    free(m);
}

static void connect_mail(PgwWorker *w, void *arg)
{
    PoolMail *m = arg;
    PgwPool *p = m->pool;
    PgwClient *c = worker_find_client(w, m->pid, m->serial);
    if (c && client_is_waiting(c)) {
        connect_for(p, w, m->pid, m->serial);
    } else {
        pthread_mutex_lock(&p->mu);
        p->total--;
        PoolMail *next = NULL;
        if (p->total < pool_limit(p) && p->waiters) {
            next = next_waiter_locked(p, NULL);
            p->total++;
        }
        pthread_mutex_unlock(&p->mu);
        if (next)
            worker_post(server_worker_for_pid(next->pid), connect_mail, next);
    }
    free(m);
}

static void post_mail(PoolMail *m)
{
    PgwWorker *w = server_worker_for_pid(m->pid);
    worker_post(w, m->backend ? handoff_mail : connect_mail, m);
}

/* An idle session whose server went away shows EOF (or an unexpected
 * message) on its socket. */
static bool idle_alive(PgwBackend *b)
{
    char byte;
    ssize_t n = recv(PQsocket(b->conn), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

PgwAcquire pool_acquire(PgwPool *p, PgwClient *c, PgwBackend **out)
{
    int limit = pool_limit(p);
    PgwBackend *dead = NULL;
    pthread_mutex_lock(&p->mu);
    while (p->idle) {
        PgwBackend *b = p->idle;
        p->idle = b->next;
        p->nidle--;
        b->next = NULL;
        if (!idle_alive(b)) {
            p->total--;
            b->next = dead;
            dead = b;
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        while (dead) {
            PgwBackend *d = dead;
            dead = d->next;
            backend_free(d);
        }
        backend_attach(b, client_worker(c));
        *out = b;
        return PGW_ACQUIRE_NOW;
    }
    bool start = p->total < limit;
    if (start) {
        p->total++;
    } else {
        PgwPoolWaiter *wt = pgw_calloc(1, sizeof *wt);
        wt->worker = client_worker(c);
        wt->pid = client_pid(c);
        wt->serial = client_serial(c);
        if (p->waiters_tail)
            p->waiters_tail->next = wt;
        else
            p->waiters = wt;
        p->waiters_tail = wt;
    }
    pthread_mutex_unlock(&p->mu);
    while (dead) {
        PgwBackend *d = dead;
        dead = d->next;
        backend_free(d);
    }
    if (start)
        connect_for(p, client_worker(c), client_pid(c), client_serial(c));
    return PGW_ACQUIRE_LATER;
}

void pool_cancel_wait(PgwPool *p, uint32_t pid, uint64_t serial)
{
    pthread_mutex_lock(&p->mu);
    PgwPoolWaiter **pp = &p->waiters, *prev = NULL;
    while (*pp) {
        PgwPoolWaiter *wt = *pp;
        if (wt->pid == pid && wt->serial == serial) {
            *pp = wt->next;
            if (p->waiters_tail == wt)
                p->waiters_tail = prev;
            free(wt);
            break;
        }
        prev = wt;
        pp = &wt->next;
    }
    pthread_mutex_unlock(&p->mu);
}

void pool_release(PgwPool *p, PgwBackend *b)
{
    /* Reset first; pool_backend_clean follows when it is done. */
    b->client = NULL;
    if (b->tx_status != 'I')
        backend_send_internal(b, "ROLLBACK");
    backend_send_internal(b, "DISCARD ALL");
}

void pool_backend_clean(PgwBackend *b)
{
    PgwPool *p = b->pool;
    if (b->state != PGW_BE_READY || b->fatal_seen || b->tx_status != 'I') {
        pool_discard(p, b);
        return;
    }
    backend_detach(b);
    pthread_mutex_lock(&p->mu);
    PoolMail *m = next_waiter_locked(p, b);
    if (!m) {
        b->next = p->idle;
        p->idle = b;
        p->nidle++;
    }
    pthread_mutex_unlock(&p->mu);
    if (m)
        post_mail(m);
}

void pool_discard(PgwPool *p, PgwBackend *b)
{
    pthread_mutex_lock(&p->mu);
    p->total--;
    PoolMail *m = NULL;
    if (p->waiters && p->total < pool_limit(p)) {
        m = next_waiter_locked(p, NULL);
        p->total++;
    }
    pthread_mutex_unlock(&p->mu);
    backend_free(b);
    if (m)
        post_mail(m);
}

void pool_backend_ready(PgwBackend *b)
{
    PgwPool *p = b->pool;
    pthread_mutex_lock(&p->mu);
    if (!p->have_params) {
        for (size_t i = 0; i < PGW_ARRAY_LEN(reported_params) && p->nparams < PGW_MAX_PARAMS; i++) {
            const char *v = PQparameterStatus(b->conn, reported_params[i]);
            if (!v)
                continue;
            p->param_names[p->nparams] = pgw_strdup(reported_params[i]);
            p->param_values[p->nparams++] = pgw_strdup(v);
        }
        p->have_params = true;
    }
    pthread_mutex_unlock(&p->mu);
    PgwClient *c = worker_find_client(b->worker, b->want_pid, b->want_serial);
    if (c && client_is_waiting(c))
        client_backend_ready(c, b);
    else
        pool_backend_clean(b);
}

void pool_backend_failed(PgwBackend *b, const char *why)
{
    PgwPool *p = b->pool;
    PgwWorker *w = b->worker;
    uint32_t pid = b->want_pid;
    uint64_t serial = b->want_serial;
    log_warning("tenant %s: cannot connect to the backend: %s", p->tenant, why);
    pthread_mutex_lock(&p->mu);
    p->connect_failures++;
    pthread_mutex_unlock(&p->mu);
    pool_discard(p, b);
    PgwClient *c = pid ? worker_find_client(w, pid, serial) : NULL;
    if (c && client_is_waiting(c)) {
        char msg[256];
        snprintf(msg, sizeof msg, "pgwarden: cannot connect to the server of tenant \"%s\"",
                 p->tenant);
        client_backend_failed(c, SQLSTATE_CANNOT_CONNECT, msg);
    }
}

bool pool_params(PgwPool *p, PgwBuf *out, size_t nover, const char *const *over_names,
                 const char *const *over_values)
{
    pthread_mutex_lock(&p->mu);
    bool have = p->have_params;
    for (size_t i = 0; have && i < p->nparams; i++) {
        const char *v = p->param_values[i];
        for (size_t k = 0; k < nover; k++)
            if (strcasecmp(over_names[k], p->param_names[i]) == 0)
                v = over_values[k];
        codec_parameter_status(out, p->param_names[i], v);
    }
    pthread_mutex_unlock(&p->mu);
    return have;
}

/* ---------- the tenant's schema ---------- */

static unsigned current_config_version(void)
{
    PgwSnapshot *s = snapshot_acquire();
    unsigned v = s->cfg->version;
    snapshot_release(s);
    return v;
}

bool pool_schema_needed(PgwPool *p)
{
    unsigned v = current_config_version();
    pthread_mutex_lock(&p->mu);
    bool needed = !p->schema || p->schema_version != v;
    pthread_mutex_unlock(&p->mu);
    return needed;
}

static void schema_ref_drop(PgwSchemaRef *ref)
{
    /* called with p->mu held */
    if (ref && --ref->refs == 0) {
        schema_free(ref->schema);
        free(ref);
    }
}

void pool_schema_set(PgwPool *p, PgwSchema *schema)
{
    PgwSchemaRef *ref = pgw_malloc(sizeof *ref);
    ref->schema = schema;
    ref->pool = p;
    ref->refs = 1;
    unsigned v = current_config_version();
    pthread_mutex_lock(&p->mu);
    schema_ref_drop(p->schema);
    p->schema = ref;
    p->schema_version = v;
    pthread_mutex_unlock(&p->mu);
}

PgwSchemaRef *pool_schema_acquire(PgwPool *p)
{
    pthread_mutex_lock(&p->mu);
    PgwSchemaRef *ref = p->schema;
    if (ref)
        ref->refs++;
    pthread_mutex_unlock(&p->mu);
    return ref;
}

void pool_schema_release(PgwPool *p, PgwSchemaRef *ref)
{
    pthread_mutex_lock(&p->mu);
    schema_ref_drop(ref);
    pthread_mutex_unlock(&p->mu);
}
