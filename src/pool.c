/*
 * pool.c — per-tenant pools of backend sessions; see pool.h.
 *
 * Invariants, all under the pool's mutex: total counts every session alive
 * or connecting; total <= the tenant's pool_size when a new session starts;
 * a session is in exactly one place: the idle list, a user, a mail in
 * flight, or the reset that precedes release.
 *
 * An idle session stays attached to the worker that gave it back, its read
 * event still in that worker's epoll set: a client of that worker takes it
 * as it is (no epoll_ctl either way, which transaction pooling would
 * otherwise pay twice per transaction), and a server that goes away while
 * it is idle is seen at once (EOF or its FATAL) and the session dropped. A
 * client of another worker takes it by mail: the owning worker detaches it
 * (pool_acquire prefers a local one), as a hand-over to a waiter there
 * always did.
 *
 * A wait ticket is shared by the waiter and the pool (its queue, a mail in
 * flight, or the session connecting for it), so it is reference-counted;
 * its owner field is read and cleared only on the waiter's worker (by the
 * answer, or by pool_cancel_wait), which is also where every mail about it
 * runs and where a session connecting for it lives — so whether the waiter
 * still waits is never a cross-thread question.
 *
 * Work that touches a session's bufferevent runs on the worker it is
 * attached to; the pool only decides under its lock and then mails. The
 * pool is the backends' home (PgwBackendHome): they report to it, and it
 * never includes anything above it.
 */
#include "pool.h"

#include "backend.h"
#include "codec.h"
#include "config.h"
#include "log.h"
#include "schema.h"
#include "snapshot.h"
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define PGW_MAX_PARAMS 24

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

struct PgwPoolWait {
    PgwPool *pool;
    PgwWorker *worker; /* the waiter's */
    const PgwPoolWaitOps *ops;
    void *owner; /* NULL once answered or withdrawn (worker's thread only) */
    int refs; /* atomic */
    unsigned passed_over; /* times a later local waiter went first (under the lock) */
    int64_t since; /* when the wait began (CLOCK_MONOTONIC, us) */
    struct PgwPoolWait *next; /* the queue */
};

struct PgwPool {
    char *tenant;
    pthread_mutex_t mu;
    int total; /* sessions alive or connecting */
    int nidle;
    PgwBackend *idle;
    PgwPoolWait *waiters, *waiters_tail;
    int nwaiting;
    /* Learnt from the first session; guarded by mu. */
    bool have_params;
    size_t nparams;
    char *param_names[PGW_MAX_PARAMS];
    char *param_values[PGW_MAX_PARAMS];
    PgwSchemaRef *schema; /* what the policy knows of the backend */
    unsigned schema_version; /* config version it was read under */
    bool schema_stale; /* the backend's catalog changed since (pool_schema_refresh) */
    /* counters for SHOW POOLS */
    uint64_t connects, connect_failures;
    long prepared; /* atomic */
    struct PgwPool *next;
};

static pthread_mutex_t pools_mu = PTHREAD_MUTEX_INITIALIZER;
static PgwPool *pools;

static const PgwBackendHome pool_home;

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

const char *pool_tenant(const PgwPool *p)
{
    return p->tenant;
}

static const char *pool_mode_name(PgwPool *p)
{
    PgwSnapshot *s = snapshot_acquire();
    PgwPoolMode m = config_pool_mode(s->cfg, config_tenant(s->cfg, p->tenant));
    snapshot_release(s);
    return m == PGW_POOL_TRANSACTION ? "transaction" : "session";
}

void pool_count_prepared(PgwPool *p, int delta)
{
    if (delta)
        __atomic_add_fetch(&p->prepared, delta, __ATOMIC_RELAXED);
}

void pool_views(void (*fn)(const PgwPoolView *v, void *arg), void *arg)
{
    pthread_mutex_lock(&pools_mu);
    for (PgwPool *p = pools; p; p = p->next) {
        PgwPoolView v;
        pthread_mutex_lock(&p->mu);
        v.tenant = p->tenant;
        v.mode = pool_mode_name(p);
        v.sessions = p->total;
        v.idle = p->nidle;
        v.active = p->total - p->nidle;
        v.prepared = __atomic_load_n(&p->prepared, __ATOMIC_RELAXED);
        v.waiting = p->nwaiting;
        v.connects = p->connects;
        v.connect_failures = p->connect_failures;
        v.schema_tables = p->schema ? schema_ntables(p->schema->schema) : 0;
        pthread_mutex_unlock(&p->mu);
        fn(&v, arg);
    }
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

/* ---------- wait tickets ---------- */

static void wait_put(PgwPoolWait *t)
{
    if (t && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(t);
}

/* On the waiter's worker: hand over (b) or refuse (b NULL). Returns false
 * when nobody waits any more. */
static bool answer(PgwPoolWait *t, PgwBackend *b, const char *sqlstate, const char *message)
{
    void *owner = t->owner;
    if (!owner)
        return false;
    t->owner = NULL;
    const PgwPoolWaitOps *ops = t->ops;
    wait_put(t); /* the owner's reference */
    if (b)
        ops->ready(owner, b);
    else
        ops->failed(owner, sqlstate, message);
    return true;
}

/* ---------- connecting ---------- */

/* Start a session for the waiter t on its worker (the slot is already
 * counted in total); t's reference passes to the connecting session. */
static void connect_for(PgwPool *p, PgwPoolWait *t)
{
    PgwSnapshot *s = snapshot_acquire();
    const PgwTenant *t_cfg = config_tenant(s->cfg, p->tenant);
    if (!t_cfg) {
        snapshot_release(s);
        pthread_mutex_lock(&p->mu);
        p->total--;
        pthread_mutex_unlock(&p->mu);
        answer(t, NULL, SQLSTATE_INVALID_CATALOG, "pgwarden: the tenant is no longer configured");
        wait_put(t);
        return;
    }
    /* Session settings are startup options, not SETs, so DISCARD ALL on
     * release returns to them rather than to the server's defaults. They
     * come after the tenant's own options, so they win. The server must
     * read string literals as the policy's parser did (backslashes are not
     * escapes), whatever the tenant's server is configured with.
     * JIT is off by default: the virtual catalog's queries are large and
     * short, exactly what JIT compiles slowly for nothing (a client may
     * still SET jit). In libpq's options a space or backslash inside a
     * value must be backslash-escaped ("trap, public" is one value). */
    PgwBuf ob;
    buf_init(&ob);
    buf_printf(&ob,
               "-c default_transaction_read_only=on -c standard_conforming_strings=on "
               "-c jit=off -c statement_timeout=%d -c search_path=",
               s->cfg->statement_timeout_ms);
    for (const char *c = s->cfg->search_path ? s->cfg->search_path : "public"; *c; c++) {
        if (*c == ' ' || *c == '\\')
            buf_append_byte(&ob, '\\');
        buf_append_byte(&ob, (uint8_t)*c);
    }
    char *options = buf_steal_str(&ob);
    char *conninfo = pgw_strdup(t_cfg->backend);
    snapshot_release(s);
    pthread_mutex_lock(&p->mu);
    p->connects++;
    pthread_mutex_unlock(&p->mu);
    backend_connect(&pool_home, p, t, t->worker, conninfo, options);
    free(conninfo);
    free(options);
}

typedef struct PoolMail {
    PgwPool *pool;
    PgwBackend *backend; /* NULL: "a slot is yours, connect" */
    PgwPoolWait *wait; /* the mail holds the queue's reference */
} PoolMail;

static void connect_mail(PgwWorker *w, void *arg);

/* A slot or a session freed up: give it to the first waiter, if any.
 * Called with the lock held; returns the mail to post after unlocking (or
 * NULL). */
static PoolMail *next_waiter_locked(PgwPool *p, PgwBackend *b)
{
    PgwPoolWait *t = p->waiters;
    if (!t)
        return NULL;
    p->waiters = t->next;
    if (!p->waiters)
        p->waiters_tail = NULL;
    p->nwaiting--;
    t->next = NULL;
    PoolMail *m = pgw_malloc(sizeof *m);
    m->pool = p;
    m->backend = b;
    m->wait = t;
    return m;
}

static void handoff_mail(PgwWorker *w, void *arg)
{
    PoolMail *m = arg;
    PgwBackend *b = m->backend;
    backend_attach(b, w);
    if (!answer(m->wait, b, NULL, NULL))
        pool_home.clean(m->pool, b); /* the waiter left meanwhile: next one */
    wait_put(m->wait);
    free(m);
}

static void connect_mail(PgwWorker *w, void *arg)
{
    PoolMail *m = arg;
    PgwPool *p = m->pool;
    if (m->wait->owner) {
        connect_for(p, m->wait); /* the mail's reference goes with it */
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
            worker_post(next->wait->worker, connect_mail, next);
        wait_put(m->wait);
    }
    free(m);
}

static void post_mail(PoolMail *m)
{
    worker_post(m->wait->worker, m->backend ? handoff_mail : connect_mail, m);
}

/* How long an idle session's own read event is trusted to have reported
 * its server going away, in place of a look at the socket. */
#define IDLE_TRUST_USEC 1000000

/* CLOCK_MONOTONIC in microseconds (the vDSO's: no system call). */
static int64_t monotonic_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* May an idle session be used? On its worker.
 *
 * Its read event has been in its worker's epoll set since it went idle,
 * so a server that went away (a FATAL, EOF) or spoke out of turn before
 * this loop turn has been read: backend_idle_watched says so, or
 * home_broken dropped the session already. What is ready in the same turn
 * is reported in the order it became ready, so a server killed before the
 * client's statement arrived is read before that statement is. That is
 * what the look at the socket (recv MSG_PEEK: EOF or an unexpected
 * message) used to establish, one system call per transaction. The look
 * is still made for a session that is not watched, and for one idle over
 * IDLE_TRUST_USEC: the read event stands in for it only on the hot path,
 * where sessions go round within milliseconds. */
static bool idle_usable(PgwBackend *b)
{
    if (b->state != PGW_BE_READY || b->fatal_seen || b->stray)
        return false;
    if (backend_idle_watched(b) && monotonic_usec() - b->idle_usec < IDLE_TRUST_USEC)
        return true;
    char byte;
    ssize_t n = recv(PQsocket(b->conn), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Take an idle session off the list, one of worker w's if there is one
 * (no move), else the most recently idle. Called with the lock held. */
static PgwBackend *take_idle_locked(PgwPool *p, PgwWorker *w)
{
    PgwBackend **pp = &p->idle;
    while (*pp && (*pp)->worker != w)
        pp = &(*pp)->next;
    if (!*pp)
        pp = &p->idle;
    PgwBackend *b = *pp;
    if (!b)
        return NULL;
    *pp = b->next;
    b->next = NULL;
    b->pooled = false;
    p->nidle--;
    return b;
}

static void unlink_idle_locked(PgwPool *p, PgwBackend *b)
{
    for (PgwBackend **pp = &p->idle; *pp; pp = &(*pp)->next) {
        if (*pp == b) {
            *pp = b->next;
            b->next = NULL;
            b->pooled = false;
            p->nidle--;
            return;
        }
    }
}

int64_t pool_wait_age_usec(const PgwPoolWait *t)
{
    return monotonic_usec() - t->since;
}

static PgwPoolWait *wait_new(PgwPool *p, PgwWorker *w, const PgwPoolWaitOps *ops, void *owner)
{
    PgwPoolWait *t = pgw_calloc(1, sizeof *t);
    t->since = monotonic_usec();
    t->pool = p;
    t->worker = w;
    t->ops = ops;
    t->owner = owner;
    t->refs = 2; /* the owner's, and the queue's, a mail's or the connecting session's */
    return t;
}

/* On the worker an idle session was attached to, which another worker's
 * client took: off this worker's epoll, then to the taker's worker. A
 * session that went bad meanwhile (home_broken left it to this mail) is
 * dropped, and its slot connects a new one for the taker. */
static void move_mail(PgwWorker *w, void *arg)
{
    PoolMail *m = arg;
    PgwBackend *b = m->backend;
    pthread_mutex_lock(&m->pool->mu);
    b->moving = false;
    pthread_mutex_unlock(&m->pool->mu);
    if (!idle_usable(b)) {
        pool_count_prepared(m->pool, -(int)b->nstmts);
        backend_free(b);
        m->backend = NULL;
        post_mail(m);
        return;
    }
    backend_detach(b);
    post_mail(m);
}

PgwAcquire pool_acquire(PgwPool *p, PgwWorker *w, const PgwPoolWaitOps *ops, void *owner,
                        PgwBackend **out, PgwPoolWait **wait)
{
    int limit = pool_limit(p);
    /* A liveness check that needs a system call is made with the lock
     * released (the session taken is this caller's alone by then), so the
     * other workers' acquires and releases do not queue behind it. */
    pthread_mutex_lock(&p->mu);
    PgwBackend *b;
    while ((b = take_idle_locked(p, w)) != NULL) {
        if (b->worker != w) {
            /* Another worker's: it comes by mail, which holds the
             * ticket's second reference. */
            PgwPoolWait *t = wait_new(p, w, ops, owner);
            *wait = t;
            b->moving = true;
            PgwWorker *home = b->worker;
            pthread_mutex_unlock(&p->mu);
            PoolMail *m = pgw_malloc(sizeof *m);
            m->pool = p;
            m->backend = b;
            m->wait = t;
            worker_post(home, move_mail, m);
            return PGW_ACQUIRE_LATER;
        }
        pthread_mutex_unlock(&p->mu);
        if (!idle_usable(b)) {
            /* As any discarded session: its place goes to a waiter that
             * queued meanwhile, or to this caller below. */
            pool_discard(p, b);
            pthread_mutex_lock(&p->mu);
            continue;
        }
        *out = b;
        return PGW_ACQUIRE_NOW;
    }
    PgwPoolWait *t = wait_new(p, w, ops, owner);
    *wait = t;
    bool start = p->total < limit;
    if (start) {
        p->total++;
    } else {
        if (p->waiters_tail)
            p->waiters_tail->next = t;
        else
            p->waiters = t;
        p->waiters_tail = t;
        p->nwaiting++;
    }
    pthread_mutex_unlock(&p->mu);
    if (start)
        connect_for(p, t);
    return PGW_ACQUIRE_LATER;
}

void pool_cancel_wait(PgwPoolWait *t)
{
    /* Only for a wait not answered yet: an answer may have freed it. */
    PgwPool *p = t->pool;
    t->owner = NULL;
    bool queued = false;
    pthread_mutex_lock(&p->mu);
    PgwPoolWait **pp = &p->waiters, *prev = NULL;
    while (*pp) {
        if (*pp == t) {
            *pp = t->next;
            if (p->waiters_tail == t)
                p->waiters_tail = prev;
            p->nwaiting--;
            queued = true;
            break;
        }
        prev = *pp;
        pp = &(*pp)->next;
    }
    pthread_mutex_unlock(&p->mu);
    if (queued)
        wait_put(t); /* the queue's reference */
    wait_put(t); /* the owner's */
}

void pool_release(PgwPool *p, PgwBackend *b)
{
    /* Reset first; the home's clean() follows when it is done. DISCARD
     * ALL drops the prepared statements and settings it carried. */
    backend_set_user(b, NULL, NULL);
    if (b->tx_status != 'I')
        backend_send_internal(b, "ROLLBACK");
    backend_send_internal(b, "DISCARD ALL");
    pool_count_prepared(p, -(int)b->nstmts);
    backend_stmt_clear(b);
    free(b->applied_sets);
    b->applied_sets = NULL;
}

void pool_discard(PgwPool *p, PgwBackend *b)
{
    pool_count_prepared(p, -(int)b->nstmts);
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

/* ---------- the backends' home ---------- */

/* A waiter on the session's own worker, which leaves the queue; NULL when
 * there is none near the front. Called with the lock held.
 *
 * The first waiter when it is local. Otherwise one of the next few, since
 * handing the session to another worker costs a detach, a mail and an
 * attach (two epoll_ctl and a wake-up of that worker's thread): with two
 * workers and a full pool, taking only the head made every other
 * transaction migrate. Fairness stays bounded: the head of the queue is
 * passed over at most LOCAL_PASS_MAX times, then served whatever its
 * worker, so every waiter is served, at most LOCAL_PASS_MAX hand-overs
 * later per waiter ahead of it than FIFO order would serve it.
 *
 * How far: a worker queues its clients in runs (one loop turn reads many
 * of them), so a look at the next 8 often saw only the other worker's
 * run, and a head passed over 4 times came round fast: with 200 clients
 * on a pool of 10, one transaction in ten still migrated (per_txn,
 * TXN_CLIENTS=200: 0.2 epoll_ctl per transaction). 64 and 16 leave one
 * in a hundred; a hand-over is a fraction of a transaction's time, so 16
 * of them ahead of the head cost it little. */
#define LOCAL_LOOKAHEAD 64
#define LOCAL_PASS_MAX 16

static PgwPoolWait *local_waiter_locked(PgwPool *p, const PgwBackend *b)
{
    PgwPoolWait *head = p->waiters, *prev = NULL, *t = head;
    for (int i = 0; t && i < LOCAL_LOOKAHEAD; i++, prev = t, t = t->next) {
        if (t->worker == b->worker)
            break;
        if (t == head && head->passed_over >= LOCAL_PASS_MAX)
            return NULL; /* the head's turn has come */
    }
    if (!t || t->worker != b->worker)
        return NULL;
    if (prev) {
        prev->next = t->next;
        head->passed_over++;
    } else {
        p->waiters = t->next;
    }
    if (p->waiters_tail == t)
        p->waiters_tail = prev;
    p->nwaiting--;
    t->next = NULL;
    return t;
}

static void home_clean(void *home, PgwBackend *b)
{
    PgwPool *p = home;
    if (b->state != PGW_BE_READY || b->fatal_seen || b->stray || b->tx_status != 'I') {
        pool_discard(p, b);
        return;
    }
    /* A waiter on this worker (transaction pooling: the next client's
     * transaction, most of the time) gets the session as it is, here and
     * now: no detach and attach (a bufferevent freed and made again, two
     * epoll_ctl), no mail. Its answer runs that client's code from here,
     * as home_connected's does. */
    for (;;) {
        pthread_mutex_lock(&p->mu);
        PgwPoolWait *t = local_waiter_locked(p, b);
        pthread_mutex_unlock(&p->mu);
        if (!t)
            break;
        bool taken = answer(t, b, NULL, NULL);
        wait_put(t); /* the queue's reference */
        if (taken)
            return;
    }
    /* Idle, it stays attached here and watched (see the top of the file).
     * Once in the list another worker may take it: nothing here touches it
     * after the unlock. */
    int64_t now = monotonic_usec();
    pthread_mutex_lock(&p->mu);
    PoolMail *m = next_waiter_locked(p, b);
    if (!m) {
        b->idle_usec = now;
        b->pooled = true;
        b->next = p->idle;
        p->idle = b;
        p->nidle++;
    }
    pthread_mutex_unlock(&p->mu);
    if (m) {
        backend_detach(b);
        post_mail(m);
    }
}

static void home_connected(void *home, PgwBackend *b)
{
    PgwPool *p = home;
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
    PgwPoolWait *t = b->want;
    b->want = NULL;
    if (!answer(t, b, NULL, NULL))
        home_clean(p, b);
    wait_put(t);
}

static void home_connect_failed(void *home, PgwBackend *b, const char *why)
{
    PgwPool *p = home;
    PgwPoolWait *t = b->want;
    b->want = NULL;
    log_warning("tenant %s: cannot connect to the backend: %s", p->tenant, why);
    pthread_mutex_lock(&p->mu);
    p->connect_failures++;
    pthread_mutex_unlock(&p->mu);
    pool_discard(p, b);
    char msg[256];
    snprintf(msg, sizeof msg, "pgwarden: cannot connect to the server of tenant \"%s\"", p->tenant);
    answer(t, NULL, SQLSTATE_CANNOT_CONNECT, msg);
    wait_put(t);
}

static void home_broken(void *home, PgwBackend *b)
{
    PgwPool *p = home;
    pthread_mutex_lock(&p->mu);
    bool moving = b->moving;
    if (b->pooled)
        unlink_idle_locked(p, b); /* its server went away while it was idle */
    pthread_mutex_unlock(&p->mu);
    if (!moving)
        pool_discard(p, b); /* else the move's mail, on its way here, drops it */
}

static const char *home_name(void *home)
{
    return ((PgwPool *)home)->tenant;
}

static bool home_schema_needed(void *home)
{
    return pool_schema_needed(home);
}

static void home_schema_read(void *home, PgwSchema *schema);

static const PgwBackendHome pool_home = {
    .connected = home_connected,
    .connect_failed = home_connect_failed,
    .clean = home_clean,
    .broken = home_broken,
    .schema_needed = home_schema_needed,
    .schema_read = home_schema_read,
    .name = home_name,
};

/* ---------- what clients learn at login ---------- */

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
    bool needed = !p->schema || p->schema_version != v || p->schema_stale;
    pthread_mutex_unlock(&p->mu);
    return needed;
}

/* The change service saw DDL on the tenant's database: the next statement
 * reads the schema again (as after a reload), so the policy knows a new
 * column at once. A pool not made yet has nothing to refresh. */
void pool_schema_refresh(const char *tenant)
{
    pthread_mutex_lock(&pools_mu);
    for (PgwPool *p = pools; p; p = p->next)
        if (strcmp(p->tenant, tenant) == 0) {
            pthread_mutex_lock(&p->mu);
            p->schema_stale = p->schema != NULL;
            pthread_mutex_unlock(&p->mu);
        }
    pthread_mutex_unlock(&pools_mu);
}

static void schema_ref_drop(PgwSchemaRef *ref)
{
    /* called with the pool's mutex held */
    if (ref && --ref->refs == 0) {
        schema_free(ref->schema);
        free(ref);
    }
}

static void home_schema_read(void *home, PgwSchema *schema)
{
    PgwPool *p = home;
    PgwSchemaRef *ref = pgw_malloc(sizeof *ref);
    ref->schema = schema;
    ref->pool = p;
    ref->refs = 1;
    unsigned v = current_config_version();
    pthread_mutex_lock(&p->mu);
    schema_ref_drop(p->schema);
    p->schema = ref;
    p->schema_version = v;
    p->schema_stale = false;
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

void pool_schema_release(PgwSchemaRef *ref)
{
    PgwPool *p = ref->pool;
    pthread_mutex_lock(&p->mu);
    schema_ref_drop(ref);
    pthread_mutex_unlock(&p->mu);
}
