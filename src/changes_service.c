/*
 * changes_service.c — the change streams as the running process holds
 * them; see changes_service.h for what they drive.
 *
 * Threads. The streams run on one thread of their own with its own event
 * base ("changes"): changes.c never blocks it, and nothing a worker does
 * waits for it. A quarter-second timer on that base follows reloads (it
 * compares the snapshot's config version), decides fallbacks and retries
 * Redis invalidations that could not be sent. A second thread ("catalog")
 * polls every database's catalog generation every two seconds on a plain
 * libpq connection; it blocks in libpq, which is why it is a thread with
 * no event loop to stall. Both are joined at shutdown, after the streams
 * are closed, which ends their walsenders and so their temporary slots.
 *
 * Who may serve what. Each database has a gate, computed only on the
 * changes thread from three facts: the stream is caught up, the catalog
 * thread has read the view and inheritance map, the database has fallen
 * back to ttl. EXACT needs the first two; otherwise FALLBACK when the
 * stream has failed twice since it was last caught up, or has not been
 * exact for five seconds; otherwise HOLD. Every result of a followed
 * database is filed under the pseudo-relation PGW_CHANGES_REL_STREAM, and
 * that relation is invalidated whenever the gate leaves or enters EXACT
 * (the gate is published first when leaving, the invalidation first when
 * entering). So: a result stored while exact is dropped the moment the
 * stream can no longer vouch for it; a result stored in fallback (ttl
 * semantics) is dropped when the stream is back; a flight that was running
 * across either edge stores nothing (the store poisons flights of an
 * invalidated relation). A statement that passed the gate while EXACT and
 * registered its flight just after the gate left EXACT may store a result
 * that misses a write of the outage, but nothing is served from the store
 * until the gate is EXACT again, which drops it first.
 *
 * Why a write to T reaches every result that depends on it. The policy's
 * relations name what the statement's text names: a view, a partitioned
 * or inheritance parent, a partition. The stream reports the tables whose
 * rows changed (a partition, or its root with publish_via_partition_root).
 * The catalog thread reads, for every view, the tables it reads (through
 * other views too, from pg_depend on the view's rewrite rule) and, for
 * every table, its inheritance descendants and ancestors (pg_inherits); the
 * gate files a result under all of them. Until that map has been read the
 * gate holds. A catalog generation change (DDL: a table, column, view,
 * rule, partition, constraint or comment created, altered or dropped)
 * re-reads the map, drops every result of the database (a view redefined
 * reads other tables; a catalog query's answer changed) and marks the
 * tenants' pools so that their next statement reads the schema again
 * (the program's schema_changed hook, pool_schema_refresh): the policy then knows a new column without a
 * RELOAD, and the cache keys, which carry the schema's fingerprint, move
 * on with it.
 *
 * Redis. A write is invalidated in this process's store at once (that
 * poisons local flights), and in Redis through worker 0's connection, by
 * mail: cache_redis_invalidate bumps the relation's generation, which every
 * instance's lookup compares with the entry's, and announces it. When that
 * connection is not up, the invalidation is kept (once per tenant and
 * relation, collapsing into the tenant's stream pseudo-relation when too
 * many pile up) and sent on the first tick that finds Redis there. Two
 * windows remain, both as long as a Redis round trip or an outage of this
 * instance's connection: another instance that reads Redis while this one
 * cannot reach it may serve an entry this one invalidated (its own stream
 * saw the same write, and bumps the same generation); and entries stored
 * in Redis during a fallback may be served in the moment between the gate
 * turning EXACT and the stream pseudo-relation's bump reaching Redis.
 */
#include "changes_service.h"

#include "ask_schema.h"
#include "cache.h"
#include "cache_front.h"
#include "cache_redis.h"
#include "cache_service.h"
#include "log.h"
#include "snapshot.h"
#include "worker.h"

#include <event2/event.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_MS 250
#define POLL_MS 2000
#define FALLBACK_AFTER_MS 5000
#define FALLBACK_FAILURES 2

/* The catalog's signature: ASK's (ask_schema.c) covers what its prompt
 * shows; the cache also depends on rewrite rules (a view redefined) and
 * inheritance (a partition attached), and the policy's snapshot on the
 * type names (a type it does not list is refused as missing: an enum
 * created must be seen), so those are added here. */
static const char generation_sql[] =
    "SELECT concat_ws('/', " ASK_SCHEMA_GENERATION_PARTS ", "
    "(SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM pg_catalog.pg_rewrite), "
    "(SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) "
    "FROM pg_catalog.pg_inherits), "
    "(SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM pg_catalog.pg_type))";

/* What each relation's results also depend on: a view's tables (through
 * views too), a table's inheritance descendants and ancestors. */
static const char expand_sql[] =
    "WITH RECURSIVE edge(src, dst) AS ("
    " SELECT DISTINCT r.ev_class, d.refobjid FROM pg_catalog.pg_rewrite r"
    " JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
    "  AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
    "  AND d.refobjid <> r.ev_class"
    " UNION SELECT inhparent, inhrelid FROM pg_catalog.pg_inherits"
    " UNION SELECT inhrelid, inhparent FROM pg_catalog.pg_inherits),"
    " closure(src, dst) AS (SELECT src, dst FROM edge"
    " UNION SELECT c.src, e.dst FROM closure c JOIN edge e ON e.src = c.dst)"
    " SELECT sn.nspname || '.' || s.relname, dn.nspname || '.' || d.relname"
    " FROM closure c JOIN pg_catalog.pg_class s ON s.oid = c.src"
    " JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace"
    " JOIN pg_catalog.pg_class d ON d.oid = c.dst"
    " JOIN pg_catalog.pg_namespace dn ON dn.oid = d.relnamespace"
    " WHERE c.src <> c.dst AND d.relkind IN ('r', 'p', 'f', 'm')"
    " ORDER BY 1, 2";

typedef struct Edge {
    char *from, *to;
} Edge;

typedef struct Db {
    char *key; /* changes_database_key of the tenants' backend */
    char *conninfo; /* the stream's (and the catalog thread's) */
    char *label;
    char **tenants;
    size_t ntenants;
    char *tenant_list; /* comma-separated, for SHOW CACHE */
    PgwChanges *stream;
    /* the gate and what it is computed from (changes thread) */
    _Atomic int gate;
    bool caught_up;
    bool fallback_logged;
    uint64_t failures_at; /* the stream's failure count when it was last exact */
    int64_t unexact_since_ms;
    /* the catalog thread's (under svc.lk, written with it held for writing) */
    _Atomic bool expand_ready;
    Edge *edges; /* sorted by from */
    size_t nedges;
    _Atomic uint64_t invalidations, schema_refreshes;
    struct Db *next;
} Db;

typedef struct Pending {
    char *tenant, *relation;
    struct Pending *next;
} Pending;

static struct {
    pthread_rwlock_t lk; /* the database list and each one's edges */
    Db *dbs;
    bool running;
    bool
        streams; /* invalidation = replication: streams and the gate; else the catalog check only */
    PgwCacheMode mode;
    char *publication;
    unsigned version; /* config version the list follows (changes thread) */
    pthread_t thread, poller;
    struct event_base *base;
    struct event *tick;
    void (*schema_changed)(const char *tenant);
    /* the catalog thread's wake-up */
    pthread_mutex_t pmu;
    pthread_cond_t pcond;
    bool stopping;
    /* Redis invalidations not sent yet */
    pthread_mutex_t qmu;
    Pending *pending;
} svc = {
    .lk = PTHREAD_RWLOCK_INITIALIZER,
    .pmu = PTHREAD_MUTEX_INITIALIZER,
    .pcond = PTHREAD_COND_INITIALIZER,
    .qmu = PTHREAD_MUTEX_INITIALIZER,
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *changes_gate_name(PgwChangesGate g)
{
    switch (g) {
    case PGW_CHANGES_GATE_TTL:
        return "ttl";
    case PGW_CHANGES_GATE_EXACT:
        return "exact";
    case PGW_CHANGES_GATE_FALLBACK:
        return "fallback to ttl";
    case PGW_CHANGES_GATE_HOLD:
        return "held";
    }
    return "?";
}

/* ---- invalidation ---------------------------------------------------------- */

static void redis_mail(PgwWorker *w, void *arg);

/* Keep an invalidation Redis has not heard yet. The list holds each
 * (tenant, relation) once, so a long outage costs at most one entry per
 * table read, not one per write; past PENDING_MAX a tenant's entries
 * collapse into its PGW_CHANGES_REL_STREAM, which drops everything of it
 * (more than needed, never less). Takes the strings. */
#define PENDING_MAX 4096

static size_t pending_count;

static void queue_redis(char *tenant, char *relation)
{
    pthread_mutex_lock(&svc.qmu);
    for (Pending *q = svc.pending; q; q = q->next)
        if (strcmp(q->tenant, tenant) == 0 && (strcmp(q->relation, relation) == 0 ||
                                               strcmp(q->relation, PGW_CHANGES_REL_STREAM) == 0)) {
            pthread_mutex_unlock(&svc.qmu);
            free(tenant);
            free(relation);
            return;
        }
    if (pending_count >= PENDING_MAX) {
        /* this tenant's entries make way for one that covers them all */
        for (Pending **pp = &svc.pending; *pp;) {
            Pending *q = *pp;
            if (strcmp(q->tenant, tenant) != 0) {
                pp = &q->next;
                continue;
            }
            *pp = q->next;
            free(q->tenant);
            free(q->relation);
            free(q);
            pending_count--;
        }
        free(relation);
        relation = pgw_strdup(PGW_CHANGES_REL_STREAM);
    }
    Pending *p = pgw_calloc(1, sizeof *p);
    p->tenant = tenant;
    p->relation = relation;
    p->next = svc.pending;
    svc.pending = p;
    pending_count++;
    pthread_mutex_unlock(&svc.qmu);
}

static void redis_mail(PgwWorker *w, void *arg)
{
    Pending *p = arg;
    if (cache_service_redis_invalidate(w, p->tenant, p->relation)) {
        free(p->tenant);
        free(p->relation);
        free(p);
        return;
    }
    queue_redis(p->tenant, p->relation);
    free(p);
}

static void post_redis(const char *tenant, const char *relation)
{
    if (workers_count() < 1)
        return;
    Pending *p = pgw_calloc(1, sizeof *p);
    p->tenant = pgw_strdup(tenant);
    p->relation = pgw_strdup(relation);
    worker_post(worker_at(0), redis_mail, p);
}

/* relation changed in db: every tenant's results that read it go. */
static void invalidate(Db *db, const char *relation)
{
    PgwCache *store = cache_service_store();
    for (size_t i = 0; i < db->ntenants; i++) {
        if (store)
            cache_invalidate(store, db->tenants[i], relation);
        if (svc.mode == PGW_CACHE_REDIS)
            post_redis(db->tenants[i], relation);
        atomic_fetch_add(&db->invalidations, 1);
    }
}

/* On worker 0: send what is pending, or, while Redis is not there, keep
 * all of it for the next tick (one mail per tick, whatever the backlog). */
static void drain_mail(PgwWorker *w, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&svc.qmu);
    Pending *p = svc.pending;
    svc.pending = NULL;
    pending_count = 0;
    pthread_mutex_unlock(&svc.qmu);
    bool up = true;
    while (p) {
        Pending *next = p->next;
        if (up)
            up = cache_service_redis_invalidate(w, p->tenant, p->relation);
        if (up) {
            free(p->tenant);
            free(p->relation);
        } else {
            queue_redis(p->tenant, p->relation);
        }
        free(p);
        p = next;
    }
}

static void retry_redis(void)
{
    pthread_mutex_lock(&svc.qmu);
    bool any = svc.pending != NULL;
    pthread_mutex_unlock(&svc.qmu);
    if (any && workers_count() > 0)
        worker_post(worker_at(0), drain_mail, NULL);
}

/* ---- the gate (changes thread) --------------------------------------------- */

static void update_gate(Db *db)
{
    bool exact = db->caught_up && atomic_load(&db->expand_ready);
    int old = atomic_load(&db->gate);
    int now;
    if (exact) {
        now = PGW_CHANGES_GATE_EXACT;
    } else {
        if (old == PGW_CHANGES_GATE_EXACT)
            db->unexact_since_ms = mono_ms();
        PgwChangesStats st;
        changes_stats(db->stream, &st);
        bool failing = st.failures - db->failures_at >= FALLBACK_FAILURES ||
                       mono_ms() - db->unexact_since_ms >= FALLBACK_AFTER_MS;
        now = failing ? PGW_CHANGES_GATE_FALLBACK : PGW_CHANGES_GATE_HOLD;
        /* changes.c has logged the failure and its reason, once */
        db->fallback_logged = db->fallback_logged || failing;
    }
    if (now == old)
        return;
    if (now == PGW_CHANGES_GATE_EXACT) {
        /* whatever was stored before now may be older than a write the
         * stream did not report: gone before anything is served again */
        invalidate(db, PGW_CHANGES_REL_STREAM);
        atomic_store(&db->gate, now);
        PgwChangesStats st;
        changes_stats(db->stream, &st);
        db->failures_at = st.failures;
        if (db->fallback_logged)
            log_info("result cache: the change stream of %s is back; cached results follow its "
                     "writes again",
                     db->label);
        db->fallback_logged = false;
        return;
    }
    atomic_store(&db->gate, now);
    if (old == PGW_CHANGES_GATE_EXACT)
        invalidate(db, PGW_CHANGES_REL_STREAM);
}

/* ---- the stream's callbacks (changes thread) ------------------------------- */

static char *rel_name(const PgwChangesTable *t)
{
    size_t n = strlen(t->schema) + strlen(t->name) + 2;
    char *s = pgw_malloc(n);
    snprintf(s, n, "%s.%s", t->schema, t->name);
    return s;
}

static void on_table_changed(void *arg, const PgwChangesTable *table, uint64_t commit_lsn)
{
    (void)commit_lsn;
    char *rel = rel_name(table);
    invalidate(arg, rel);
    free(rel);
}

static void refresh_schema(Db *db)
{
    for (size_t i = 0; i < db->ntenants; i++)
        if (svc.schema_changed)
            svc.schema_changed(db->tenants[i]);
    atomic_fetch_add(&db->schema_refreshes, 1);
}

static void on_schema_changed(void *arg, const PgwChangesTable *table)
{
    Db *db = arg;
    char *rel = rel_name(table);
    invalidate(db, rel);
    free(rel);
    refresh_schema(db);
}

static void on_caught_up(void *arg, bool caught_up, uint64_t epoch)
{
    (void)epoch;
    Db *db = arg;
    db->caught_up = caught_up;
    update_gate(db);
}

static const PgwChangesCallbacks callbacks = {
    .table_changed = on_table_changed,
    .schema_changed = on_schema_changed,
    .caught_up = on_caught_up,
};

/* ---- following the configuration (changes thread) ------------------------- */

static void db_free(Db *db)
{
    for (size_t i = 0; i < db->ntenants; i++)
        free(db->tenants[i]);
    free(db->tenants);
    for (size_t i = 0; i < db->nedges; i++) {
        free(db->edges[i].from);
        free(db->edges[i].to);
    }
    free(db->edges);
    free(db->tenant_list);
    free(db->key);
    free(db->conninfo);
    free(db->label);
    free(db);
}

static char *db_label(const char *conninfo)
{
    char *perr = NULL;
    PQconninfoOption *o = PQconninfoParse(conninfo, &perr);
    PQfreemem(perr);
    const char *dbname = "", *host = "", *port = "";
    for (PQconninfoOption *p = o; p && p->keyword; p++) {
        if (!p->val || !*p->val)
            continue;
        if (strcmp(p->keyword, "dbname") == 0)
            dbname = p->val;
        else if (strcmp(p->keyword, "host") == 0 || (strcmp(p->keyword, "hostaddr") == 0 && !*host))
            host = p->val;
        else if (strcmp(p->keyword, "port") == 0)
            port = p->val;
    }
    char buf[512];
    snprintf(buf, sizeof buf, "%s@%s%s%s", dbname, host, *port ? ":" : "", port);
    PQconninfoFree(o);
    return pgw_strdup(buf);
}

static void add_tenant(Db *db, const char *name)
{
    db->tenants = pgw_realloc(db->tenants, (db->ntenants + 1) * sizeof(char *));
    db->tenants[db->ntenants++] = pgw_strdup(name);
    size_t old = db->tenant_list ? strlen(db->tenant_list) : 0;
    db->tenant_list = pgw_realloc(db->tenant_list, old + strlen(name) + 3);
    snprintf(db->tenant_list + old, strlen(name) + 3, "%s%s", old ? ", " : "", name);
}

/* The databases cfg's tenants read, grouped; the stream's conninfo is the
 * first tenant's changes (file order), else the first one's backend. */
static Db *plan(const PgwConfig *cfg)
{
    Db *head = NULL, **tail = &head;
    for (size_t i = 0; i < cfg->ntenants; i++) {
        const PgwTenant *t = &cfg->tenants[i];
        char key[1024], err[256];
        if (changes_database_key(t->backend, key, sizeof key, err, sizeof err) != 0) {
            log_warning("result cache: tenant %s is not followed: %s", t->name, err);
            continue;
        }
        Db *db;
        for (db = head; db; db = db->next)
            if (strcmp(db->key, key) == 0)
                break;
        if (!db) {
            db = pgw_calloc(1, sizeof *db);
            atomic_store(&db->gate, PGW_CHANGES_GATE_HOLD);
            db->key = pgw_strdup(key);
            *tail = db;
            tail = &db->next;
        }
        if (!db->conninfo && t->changes)
            db->conninfo = pgw_strdup(t->changes);
        add_tenant(db, t->name);
    }
    for (Db *db = head; db; db = db->next) {
        if (!db->conninfo) {
            for (size_t i = 0; i < cfg->ntenants; i++)
                if (strcmp(cfg->tenants[i].name, db->tenants[0]) == 0)
                    db->conninfo = pgw_strdup(cfg->tenants[i].backend);
        }
        db->label = db_label(db->conninfo);
    }
    return head;
}

static void open_stream(Db *db)
{
    PgwChangesOptions o = {
        .conninfo = db->conninfo, .publication = svc.publication, .label = db->label};
    atomic_store(&db->gate, PGW_CHANGES_GATE_HOLD);
    db->unexact_since_ms = mono_ms();
    db->stream = changes_open(svc.base, &o, &callbacks, db);
}

/* The stream's callbacks hold their Db: a database that stays (same key,
 * same conninfo) keeps its Db, whose tenant list is replaced in place. */
static void reconfigure(const PgwConfig *cfg)
{
    Db *fresh = plan(cfg);
    Db *keep = NULL, **ktail = &keep, *gone = NULL;
    /* New databases' streams first (only this thread changes the list, so
     * it reads it unlocked): nothing is published without its stream. */
    for (Db *n = fresh; n; n = n->next) {
        Db *o;
        for (o = svc.dbs; o; o = o->next)
            if (strcmp(o->key, n->key) == 0 && strcmp(o->conninfo, n->conninfo) == 0)
                break;
        if (!o && svc.streams) {
            log_info("result cache: following the changes of %s (tenants %s)", n->label,
                     n->tenant_list);
            open_stream(n);
        }
    }
    pthread_rwlock_wrlock(&svc.lk);
    Db *old = svc.dbs;
    while (fresh) {
        Db *n = fresh;
        fresh = n->next;
        n->next = NULL;
        Db **pp;
        for (pp = &old; *pp; pp = &(*pp)->next)
            if (strcmp((*pp)->key, n->key) == 0 && strcmp((*pp)->conninfo, n->conninfo) == 0)
                break;
        if (*pp) {
            Db *o = *pp;
            *pp = o->next;
            o->next = NULL;
            char **t = o->tenants;
            size_t nt = o->ntenants;
            char *list = o->tenant_list;
            o->tenants = n->tenants;
            o->ntenants = n->ntenants;
            o->tenant_list = n->tenant_list;
            n->tenants = t;
            n->ntenants = nt;
            n->tenant_list = list;
            db_free(n);
            *ktail = o;
            ktail = &o->next;
        } else {
            *ktail = n;
            ktail = &n->next;
        }
    }
    gone = old;
    svc.dbs = keep;
    pthread_rwlock_unlock(&svc.lk);
    for (Db *o = gone; o;) {
        Db *next = o->next;
        if (o->stream) {
            log_info("result cache: no longer following %s", o->label);
            invalidate(o, PGW_CHANGES_REL_STREAM);
            changes_close(o->stream);
        }
        db_free(o);
        o = next;
    }
    pthread_mutex_lock(&svc.pmu);
    pthread_cond_signal(&svc.pcond); /* read the new databases' catalogs now */
    pthread_mutex_unlock(&svc.pmu);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    PgwSnapshot *s = snapshot_acquire();
    if (s->cfg->version != svc.version) {
        svc.version = s->cfg->version;
        reconfigure(s->cfg);
    }
    snapshot_release(s);
    if (!svc.streams)
        return; /* the catalog check alone: no gate, nothing to retry */
    for (Db *db = svc.dbs; db; db = db->next)
        update_gate(db);
    retry_redis();
}

static void *changes_main(void *arg)
{
    (void)arg;
    event_base_dispatch(svc.base);
    /* closing a stream ends its walsender, and the server drops the
     * temporary slot with it */
    pthread_rwlock_wrlock(&svc.lk);
    Db *dbs = svc.dbs;
    svc.dbs = NULL;
    pthread_rwlock_unlock(&svc.lk);
    while (dbs) {
        Db *next = dbs->next;
        if (dbs->stream)
            changes_close(dbs->stream);
        db_free(dbs);
        dbs = next;
    }
    return NULL;
}

/* ---- the catalog thread ---------------------------------------------------- */

typedef struct Poll {
    char *key, *conninfo;
    PGconn *conn;
    char *generation;
    bool seen; /* still configured this round */
    struct Poll *next;
} Poll;

static int edge_cmp(const void *a, const void *b)
{
    const Edge *x = a, *y = b;
    return strcmp(x->from, y->from);
}

/* Read the catalog's generation and, when it moved, the map; apply. */
static void poll_one(Poll *p)
{
    if (p->conn && PQstatus(p->conn) != CONNECTION_OK) {
        PQfinish(p->conn);
        p->conn = NULL;
    }
    if (!p->conn) {
        const char *kw[] = {"dbname", "connect_timeout", "application_name", "options", NULL};
        const char *val[] = {p->conninfo, "5", "pgwarden catalog", "-c statement_timeout=10000",
                             NULL};
        p->conn = PQconnectdbParams(kw, val, 1);
        if (PQstatus(p->conn) != CONNECTION_OK) {
            PQfinish(p->conn);
            p->conn = NULL;
            return;
        }
    }
    PGresult *g = PQexec(p->conn, generation_sql);
    if (PQresultStatus(g) != PGRES_TUPLES_OK || PQntuples(g) != 1) {
        PQclear(g);
        PQfinish(p->conn);
        p->conn = NULL;
        return;
    }
    const char *gen = PQgetvalue(g, 0, 0);
    if (p->generation && strcmp(p->generation, gen) == 0) {
        PQclear(g);
        return;
    }
    PGresult *m = PQexec(p->conn, expand_sql);
    if (PQresultStatus(m) != PGRES_TUPLES_OK || PQnfields(m) != 2) {
        PQclear(g);
        PQclear(m);
        PQfinish(p->conn);
        p->conn = NULL;
        return;
    }
    size_t n = (size_t)PQntuples(m);
    Edge *edges = n ? pgw_calloc(n, sizeof *edges) : NULL;
    for (size_t i = 0; i < n; i++) {
        edges[i].from = pgw_strdup(PQgetvalue(m, (int)i, 0));
        edges[i].to = pgw_strdup(PQgetvalue(m, (int)i, 1));
    }
    PQclear(m);
    if (n)
        qsort(edges, n, sizeof *edges, edge_cmp);
    bool changed = p->generation != NULL;
    free(p->generation);
    p->generation = pgw_strdup(gen);
    PQclear(g);

    pthread_rwlock_wrlock(&svc.lk);
    Db *db;
    for (db = svc.dbs; db; db = db->next)
        if (strcmp(db->key, p->key) == 0)
            break;
    if (db) {
        Edge *old = db->edges;
        size_t nold = db->nedges;
        db->edges = edges;
        db->nedges = n;
        edges = old;
        n = nold;
        atomic_store(&db->expand_ready, true);
    }
    pthread_rwlock_unlock(&svc.lk);
    for (size_t i = 0; i < n; i++) {
        free(edges[i].from);
        free(edges[i].to);
    }
    free(edges);
    if (!changed || !db)
        return;
    /* DDL: the policy's schema, every result of the database */
    pthread_rwlock_rdlock(&svc.lk);
    for (db = svc.dbs; db; db = db->next)
        if (strcmp(db->key, p->key) == 0) {
            refresh_schema(db);
            invalidate(db, PGW_CHANGES_REL_STREAM);
        }
    pthread_rwlock_unlock(&svc.lk);
}

static void *poller_main(void *arg)
{
    (void)arg;
    Poll *polls = NULL;
    pthread_mutex_lock(&svc.pmu);
    while (!svc.stopping) {
        pthread_mutex_unlock(&svc.pmu);
        for (Poll *p = polls; p; p = p->next)
            p->seen = false;
        pthread_rwlock_rdlock(&svc.lk);
        for (Db *db = svc.dbs; db; db = db->next) {
            Poll *p;
            for (p = polls; p; p = p->next)
                if (strcmp(p->key, db->key) == 0 && strcmp(p->conninfo, db->conninfo) == 0)
                    break;
            if (!p) {
                p = pgw_calloc(1, sizeof *p);
                p->key = pgw_strdup(db->key);
                p->conninfo = pgw_strdup(db->conninfo);
                p->next = polls;
                polls = p;
            }
            p->seen = true;
        }
        pthread_rwlock_unlock(&svc.lk);
        for (Poll **pp = &polls; *pp;) {
            Poll *p = *pp;
            if (p->seen) {
                poll_one(p);
                pp = &p->next;
                continue;
            }
            *pp = p->next;
            if (p->conn)
                PQfinish(p->conn);
            free(p->key);
            free(p->conninfo);
            free(p->generation);
            free(p);
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += POLL_MS / 1000;
        pthread_mutex_lock(&svc.pmu);
        if (!svc.stopping)
            pthread_cond_timedwait(&svc.pcond, &svc.pmu, &until);
    }
    pthread_mutex_unlock(&svc.pmu);
    while (polls) {
        Poll *next = polls->next;
        if (polls->conn)
            PQfinish(polls->conn);
        free(polls->key);
        free(polls->conninfo);
        free(polls->generation);
        free(polls);
        polls = next;
    }
    return NULL;
}

/* ---- start, stop ------------------------------------------------------------ */

int changes_service_start(const PgwConfig *cfg, void (*schema_changed)(const char *tenant),
                          char *err, size_t errlen)
{
    /* The catalog check runs in every mode: the policy's schema follows DDL
     * (a new column usable without RELOAD) whether or not the cache follows
     * the data. Streams, and the gate they drive, only with replication. */
    svc.streams =
        cfg->cache_invalidation == PGW_INVALIDATE_REPLICATION && cfg->cache_mode != PGW_CACHE_OFF;
    svc.mode = cfg->cache_mode;
    svc.schema_changed = schema_changed;
    svc.publication = pgw_strdup(cfg->cache_publication);
    svc.base = event_base_new();
    svc.tick = event_new(svc.base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, TICK_MS * 1000};
    event_add(svc.tick, &tv);
    /* the first tick reads the configuration in force */
    svc.version = 0;
    event_active(svc.tick, EV_TIMEOUT, 0);
    if (pthread_create(&svc.thread, NULL, changes_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the change stream thread");
        return -1;
    }
    if (pthread_create(&svc.poller, NULL, poller_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the catalog thread");
        event_base_loopexit(svc.base, NULL);
        pthread_join(svc.thread, NULL);
        return -1;
    }
    svc.running = true;
    return 0;
}

void changes_service_stop(void)
{
    if (!svc.running)
        return;
    svc.running = false;
    event_base_loopexit(svc.base, NULL);
    pthread_join(svc.thread, NULL);
    pthread_mutex_lock(&svc.pmu);
    svc.stopping = true;
    pthread_cond_signal(&svc.pcond);
    pthread_mutex_unlock(&svc.pmu);
    pthread_join(svc.poller, NULL);
    event_free(svc.tick);
    event_base_free(svc.base);
    svc.base = NULL;
    free(svc.publication);
    svc.publication = NULL;
    pthread_mutex_lock(&svc.qmu);
    Pending *p = svc.pending;
    svc.pending = NULL;
    pending_count = 0;
    pthread_mutex_unlock(&svc.qmu);
    while (p) {
        Pending *next = p->next;
        free(p->tenant);
        free(p->relation);
        free(p);
        p = next;
    }
}

/* ---- the gate (any thread) -------------------------------------------------- */

static void add_extra(size_t *n, char ***v, size_t nrels, char *const *rels, const char *rel)
{
    for (size_t i = 0; i < nrels; i++)
        if (strcmp(rels[i], rel) == 0)
            return;
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i], rel) == 0)
            return;
    *v = pgw_realloc(*v, (*n + 1) * sizeof(char *));
    (*v)[(*n)++] = pgw_strdup(rel);
}

static Db *tenant_db(const char *tenant)
{
    for (Db *db = svc.dbs; db; db = db->next)
        for (size_t i = 0; i < db->ntenants; i++)
            if (strcmp(db->tenants[i], tenant) == 0)
                return db;
    return NULL;
}

PgwChangesGate changes_service_gate(const char *tenant, size_t nrels, char *const *rels,
                                    size_t *nextra, char ***extra)
{
    *nextra = 0;
    *extra = NULL;
    if (!svc.running)
        return PGW_CHANGES_GATE_TTL;
    pthread_rwlock_rdlock(&svc.lk);
    Db *db = tenant_db(tenant);
    PgwChangesGate g = db ? (PgwChangesGate)atomic_load(&db->gate) : PGW_CHANGES_GATE_TTL;
    if (g == PGW_CHANGES_GATE_EXACT || g == PGW_CHANGES_GATE_FALLBACK) {
        add_extra(nextra, extra, 0, NULL, PGW_CHANGES_REL_STREAM);
        for (size_t i = 0; i < nrels; i++) {
            Edge k = {.from = rels[i]};
            Edge *e = db->nedges ? bsearch(&k, db->edges, db->nedges, sizeof k, edge_cmp) : NULL;
            if (!e)
                continue;
            while (e > db->edges && strcmp(e[-1].from, rels[i]) == 0)
                e--;
            for (; e < db->edges + db->nedges && strcmp(e->from, rels[i]) == 0; e++)
                add_extra(nextra, extra, nrels, rels, e->to);
        }
    }
    pthread_rwlock_unlock(&svc.lk);
    return g;
}

bool changes_service_cache_gate(const char *tenant, size_t nrels, char *const *rels, size_t *nextra,
                                char ***extra)
{
    return changes_service_gate(tenant, nrels, rels, nextra, extra) != PGW_CHANGES_GATE_HOLD;
}

void changes_service_views(void (*fn)(void *arg, const PgwChangesView *v), void *arg)
{
    if (!svc.streams)
        return; /* no stream rows without streams (SHOW CACHE in ttl mode) */
    pthread_rwlock_rdlock(&svc.lk);
    for (Db *db = svc.dbs; db; db = db->next) {
        PgwChangesView v = {
            .database = db->label,
            .tenants = db->tenant_list,
            .gate = (PgwChangesGate)atomic_load(&db->gate),
            .invalidations = atomic_load(&db->invalidations),
            .schema_refreshes = atomic_load(&db->schema_refreshes),
        };
        if (db->stream)
            changes_stats(db->stream, &v.st);
        fn(arg, &v);
    }
    pthread_rwlock_unlock(&svc.lk);
}
