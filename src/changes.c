/*
 * changes.c — one logical replication stream; see changes.h for what the
 * owner hears and why.
 *
 * The connection walks a fixed sequence of steps, each one asynchronous
 * libpq call whose result arrives through events on the socket:
 *
 *   RESOLVE   evdns turns a host name into hostaddr (libpq's own lookup
 *             would block the loop); skipped for addresses and sockets
 *   CONNECT   PQconnectStartParams / PQconnectPoll, replication=database
 *   IDENTIFY  IDENTIFY_SYSTEM: the server really is a walsender on a database
 *   PUBLISH   two SQL queries (allowed on a database replication
 *             connection): the publication's options and its tables
 *   SLOT      CREATE_REPLICATION_SLOT <unique> TEMPORARY LOGICAL pgoutput
 *   START     START_REPLICATION SLOT <unique> LOGICAL 0/0 (proto_version '1', ...)
 *   STREAM    CopyBoth: XLogData and keepalives in, status updates out
 *
 * Any failure closes the connection (the temporary slot goes with it) and
 * schedules the whole sequence again after a backoff; the stream is never
 * resumed, because a temporary slot cannot be, and because the owner
 * already treats everything before the new epoch as changed.
 *
 * Acknowledging: nothing here needs a change twice (a reconnect starts a
 * new slot and a new epoch), so the position processed is the position
 * acknowledged: the end of the last commit, or the server's keepalive
 * position when no transaction is in progress.
 *
 * Caught up: the walsender sends a keepalive when it has decoded all the
 * WAL it knows to be flushed and must wait for more (walsender.c,
 * WalSndWaitForWal) — and a fresh slot has confirmed nothing, so the first
 * wait always sends one. The first such keepalive after START (not one
 * the server sends because a reply is overdue, nor one we asked for) is
 * the moment every commit before it has been delivered.
 *
 * Never: a blocking call on the owner's loop, a read of table data, or a
 * write on the server beyond the temporary slot itself.
 */
#include "changes.h"

#include "buf.h"
#include "changes_proto.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef enum {
    STEP_IDLE,
    STEP_RESOLVE,
    STEP_CONNECT,
    STEP_IDENTIFY,
    STEP_PUBLISH,
    STEP_SLOT,
    STEP_START,
    STEP_STREAM,
} Step;

static const char *const step_names[] = {"idle",
                                         "resolving the host",
                                         "connecting",
                                         "identifying the system",
                                         "reading the publication",
                                         "creating the slot",
                                         "starting replication",
                                         "streaming"};

/* ---- small maps keyed by relation OID and by name ------------------------ */

/* What the publication said of one table at connect. */
typedef struct PubRel {
    uint32_t oid;
    bool followed;
    char *schema, *name;
} PubRel;

/* What the stream's Relation messages said of one table on this connection. */
typedef struct StreamRel {
    uint32_t oid;
    uint64_t shape; /* hash of namespace, name, columns and their types */
    char *schema, *name;
    bool in_txn; /* changed by the transaction in progress */
} StreamRel;

/* Open addressing, linear probing, never shrinks; cleared per connection. */
typedef struct OidMap {
    size_t cap, count; /* cap: a power of two, or 0 */
    uint32_t *keys; /* 0 marks an empty slot (InvalidOid never names a relation) */
    void **vals;
} OidMap;

static size_t oid_slot(uint32_t oid, size_t cap)
{
    return (size_t)((oid * 2654435761u) & (cap - 1));
}

static void *oidmap_get(const OidMap *m, uint32_t oid)
{
    if (m->cap == 0 || oid == 0)
        return NULL;
    for (size_t i = oid_slot(oid, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == oid)
            return m->vals[i];
        if (m->keys[i] == 0)
            return NULL;
    }
}

static void oidmap_put(OidMap *m, uint32_t oid, void *val)
{
    if ((m->count + 1) * 2 > m->cap) {
        OidMap n = {m->cap ? m->cap * 2 : 16, 0, NULL, NULL};
        n.keys = pgw_calloc(n.cap, sizeof *n.keys);
        n.vals = pgw_calloc(n.cap, sizeof *n.vals);
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i])
                oidmap_put(&n, m->keys[i], m->vals[i]);
        free(m->keys);
        free(m->vals);
        *m = n;
    }
    size_t i = oid_slot(oid, m->cap);
    while (m->keys[i] != 0 && m->keys[i] != oid)
        i = (i + 1) & (m->cap - 1);
    if (m->keys[i] == 0)
        m->count++;
    m->keys[i] = oid;
    m->vals[i] = val;
}

static void oidmap_clear(OidMap *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] && free_val)
            free_val(m->vals[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static void pubrel_free(void *p)
{
    PubRel *r = p;
    free(r->schema);
    free(r->name);
    free(r);
}

static void streamrel_free(void *p)
{
    StreamRel *r = p;
    free(r->schema);
    free(r->name);
    free(r);
}

static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* schema and name hashed with the NUL between them: no two pairs collide
 * by concatenation, whatever characters identifiers hold. */
static uint64_t name_hash(const char *schema, const char *name)
{
    uint64_t h = fnv(1469598103934665603ull, schema, strlen(schema) + 1);
    return fnv(h, name, strlen(name) + 1);
}

/* The followed tables by name, for changes_follows from any thread. */
typedef struct NameSet {
    size_t cap, count;
    PubRel **slots; /* borrowed from the PubRel map that owns them */
} NameSet;

static void nameset_add(NameSet *s, PubRel *r)
{
    if ((s->count + 1) * 2 > s->cap) {
        NameSet n = {s->cap ? s->cap * 2 : 16, 0, NULL};
        n.slots = pgw_calloc(n.cap, sizeof *n.slots);
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i])
                nameset_add(&n, s->slots[i]);
        free(s->slots);
        *s = n;
    }
    size_t i = (size_t)name_hash(r->schema, r->name) & (s->cap - 1);
    while (s->slots[i])
        i = (i + 1) & (s->cap - 1);
    s->slots[i] = r;
    s->count++;
}

static bool nameset_has(const NameSet *s, const char *schema, const char *name)
{
    if (s->cap == 0)
        return false;
    for (size_t i = (size_t)name_hash(schema, name) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        const PubRel *r = s->slots[i];
        if (!r)
            return false;
        if (strcmp(r->schema, schema) == 0 && strcmp(r->name, name) == 0)
            return true;
    }
}

/* ---- the stream ----------------------------------------------------------- */

struct PgwChanges {
    struct event_base *base;
    struct evdns_base *dns;
    struct evdns_getaddrinfo_request *dns_req;
    PgwChangesCallbacks cb;
    void *arg;
    char *conninfo, *publication, *label;
    int status_interval_ms, timeout_ms, retry_min_ms, retry_max_ms;
    int tick_ms;
    int64_t last_restart_usec;
    int restart_ms;

    Step step;
    int64_t step_usec; /* when the current step began */
    PGconn *conn;
    int server_version;
    char **addrs; /* the host's addresses as evdns resolved them, or NULL */
    size_t naddrs, addr_i; /* addr_i: the one being tried */
    struct event *ev_sock; /* reading (and while connecting, what PQconnectPoll wants) */
    struct event *ev_write; /* armed while libpq has output it could not send */
    struct event *ev_tick; /* status updates, liveness and step timeouts */
    struct event *ev_retry; /* the next attempt */
    int retry_ms;
    bool closing;
    char slot[64];

    /* the publication as read at connect */
    bool pub_found, pub_all_ops, pub_all_tables;
    OidMap published; /* PubRel */
    /* this connection's stream */
    OidMap rels; /* StreamRel */
    StreamRel **txn_rels; /* tables the transaction in progress changed */
    size_t ntxn_rels, cap_txn_rels;
    bool in_txn;
    uint64_t txn_changes;
    uint64_t ack_lsn, acked_lsn;
    int64_t last_recv_usec, last_status_usec;
    bool status_pending; /* a status update could not be queued yet */

    char logged_error[256]; /* the failure last logged, to log each reason once */

    /* what other threads read */
    pthread_mutex_t mu;
    PgwChangesStats st;
    NameSet followed;
};

static void start_attempt(PgwChanges *c);
static void begin_connect(PgwChanges *c);
static void sock_cb(evutil_socket_t fd, short what, void *arg);

static int64_t now_usec(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static void set_state(PgwChanges *c, PgwChangesState state)
{
    pthread_mutex_lock(&c->mu);
    c->st.state = state;
    pthread_mutex_unlock(&c->mu);
}

static void first_line(char *s)
{
    s[strcspn(s, "\n")] = '\0';
}

/* Drop the connection and everything that belongs to it. */
static void disconnect(PgwChanges *c)
{
    if (c->dns_req) {
        evdns_getaddrinfo_cancel(c->dns_req); /* its callback runs with EVUTIL_EAI_CANCEL */
        c->dns_req = NULL;
    }
    if (c->ev_sock) {
        event_free(c->ev_sock);
        c->ev_sock = NULL;
    }
    if (c->ev_write) {
        event_free(c->ev_write);
        c->ev_write = NULL;
    }
    evtimer_del(c->ev_tick);
    if (c->conn) {
        PQfinish(c->conn); /* the walsender exits and drops the temporary slot */
        c->conn = NULL;
    }
    for (size_t i = 0; i < c->naddrs; i++)
        free(c->addrs[i]);
    free(c->addrs);
    c->addrs = NULL;
    c->naddrs = c->addr_i = 0;
    pthread_mutex_lock(&c->mu);
    free(c->followed.slots);
    memset(&c->followed, 0, sizeof c->followed);
    c->st.followed = 0;
    pthread_mutex_unlock(&c->mu);
    c->pub_found = c->pub_all_ops = c->pub_all_tables = false;
    oidmap_clear(&c->published, pubrel_free);
    oidmap_clear(&c->rels, streamrel_free);
    c->ntxn_rels = 0;
    c->in_txn = false;
    c->txn_changes = 0;
    c->ack_lsn = c->acked_lsn = 0;
    c->status_pending = false;
    c->step = STEP_IDLE;
}

/* The stream stops being caught up: tell the owner first, so it stops
 * trusting the epoch before anything else happens. */
static void lose_caught_up(PgwChanges *c)
{
    pthread_mutex_lock(&c->mu);
    bool was = c->st.caught_up;
    uint64_t epoch = c->st.epoch;
    c->st.caught_up = false;
    c->st.lag_ms = 0;
    pthread_mutex_unlock(&c->mu);
    if (was && c->cb.caught_up)
        c->cb.caught_up(c->arg, false, epoch);
}

static void schedule(PgwChanges *c, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->ev_retry, &tv);
}

/* A failure: log it (once per distinct reason), close, retry later. */
static void fail(PgwChanges *c, const char *fmt, ...) PGW_PRINTF(2, 3);
static void fail(PgwChanges *c, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    first_line(why);

    Step step = c->step;
    lose_caught_up(c);
    disconnect(c);
    pthread_mutex_lock(&c->mu);
    c->st.failures++;
    snprintf(c->st.last_error, sizeof c->st.last_error, "%s", why);
    c->st.state = PGW_CHANGES_RETRYING;
    pthread_mutex_unlock(&c->mu);
    if (strcmp(why, c->logged_error) != 0) {
        log_warning("change stream for %s: %s failed: %s; the cache falls back to ttl for this "
                    "database, retrying with backoff",
                    c->label, step_names[step], why);
        snprintf(c->logged_error, sizeof c->logged_error, "%s", why);
    } else {
        log_debug("change stream for %s: %s failed again: %s", c->label, step_names[step], why);
    }
    /* full jitter in the upper half: instances that lost one server do not
     * come back in lockstep */
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
        r = (uint32_t)now_usec();
    int delay = c->retry_ms / 2 + (int)(r % (uint32_t)(c->retry_ms / 2 + 1));
    schedule(c, delay);
    c->retry_ms = c->retry_ms > c->retry_max_ms / 2 ? c->retry_max_ms : c->retry_ms * 2;
}

/* Not a failure: what the stream knows of the publication is out of date.
 * Start over at once (a new epoch reads it again). */
static void restart(PgwChanges *c, const char *why)
{
    /* Restarts close together are no longer one DDL statement but a picture
     * that does not settle: space them out like failures. */
    int64_t now = now_usec();
    if (c->last_restart_usec && now - c->last_restart_usec < INT64_C(60000000))
        c->restart_ms = c->restart_ms ? c->restart_ms * 2 : c->retry_min_ms;
    else
        c->restart_ms = 0;
    if (c->restart_ms > c->retry_max_ms)
        c->restart_ms = c->retry_max_ms;
    c->last_restart_usec = now;
    log_info("change stream for %s: %s; restarting the stream to re-read the publication", c->label,
             why);
    lose_caught_up(c);
    disconnect(c);
    set_state(c, PGW_CHANGES_CONNECTING);
    schedule(c, c->restart_ms);
}

static void fail_pq(PgwChanges *c, const char *doing)
{
    fail(c, "%s: %s", doing, c->conn ? PQerrorMessage(c->conn) : "no connection");
}

/* A failed result's reason with its SQLSTATE, for the log line. */
static void fail_result(PgwChanges *c, PGresult *res, const char *doing)
{
    char why[256];
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
    if (msg)
        snprintf(why, sizeof why, "%s: %s (SQLSTATE %s)%s%s", doing, msg, state ? state : "?",
                 hint ? "; hint: " : "", hint ? hint : "");
    else
        snprintf(why, sizeof why, "%s: %s", doing, PQresultErrorMessage(res));
    PQclear(res);
    fail(c, "%s", why);
}

/* ---- writing ------------------------------------------------------------ */

static void write_cb(evutil_socket_t fd, short what, void *arg);

/* Push libpq's output; keep a write event armed while some is left. */
static int flush_out(PgwChanges *c)
{
    int r = PQflush(c->conn);
    if (r < 0) {
        fail_pq(c, "sending to the server");
        return -1;
    }
    if (r > 0 && !event_pending(c->ev_write, EV_WRITE, NULL))
        event_add(c->ev_write, NULL);
    return 0;
}

static int send_status(PgwChanges *c, bool ask_reply)
{
    uint8_t msg[PGW_REPL_STATUS_LEN];
    int64_t now = now_usec();
    changes_encode_status(msg, c->ack_lsn, c->ack_lsn, c->ack_lsn, now - PGW_PG_EPOCH_USEC,
                          ask_reply);
    int r = PQputCopyData(c->conn, (const char *)msg, sizeof msg);
    if (r < 0) {
        fail_pq(c, "sending a status update");
        return -1;
    }
    if (r == 0) { /* libpq's buffer is full: try again once it drains */
        c->status_pending = true;
        return flush_out(c);
    }
    c->status_pending = false;
    c->last_status_usec = now;
    if (c->acked_lsn != c->ack_lsn) {
        c->acked_lsn = c->ack_lsn;
        pthread_mutex_lock(&c->mu);
        c->st.acked_lsn = c->acked_lsn;
        pthread_mutex_unlock(&c->mu);
    }
    return flush_out(c);
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    PgwChanges *c = arg;
    if (flush_out(c) < 0)
        return;
    if (c->status_pending && c->step == STEP_STREAM)
        (void)send_status(c, false);
}

/* ---- the steps ------------------------------------------------------------ */

static void arm_sock(PgwChanges *c, short what)
{
    if (c->ev_sock)
        event_free(c->ev_sock);
    c->ev_sock = event_new(c->base, PQsocket(c->conn), what, sock_cb, c);
    event_add(c->ev_sock, NULL);
}

static void begin_step(PgwChanges *c, Step step)
{
    c->step = step;
    c->step_usec = now_usec();
}

/* Send one command (or a few SQL statements) and wait for its results. */
static void send_command(PgwChanges *c, Step step, const char *sql)
{
    begin_step(c, step);
    log_debug("change stream for %s: %s", c->label, sql);
    if (!PQsendQuery(c->conn, sql)) {
        fail_pq(c, step_names[step]);
        return;
    }
    (void)flush_out(c);
}

static char *quote_literal(PgwChanges *c, const char *s)
{
    char *lit = PQescapeLiteral(c->conn, s, strlen(s));
    if (!lit)
        return NULL;
    char *out = pgw_strdup(lit);
    PQfreemem(lit);
    return out;
}

static void send_identify(PgwChanges *c)
{
    c->server_version = PQserverVersion(c->conn);
    /* the replication socket stays readable-driven from here on */
    if (c->ev_sock)
        event_free(c->ev_sock);
    c->ev_sock = event_new(c->base, PQsocket(c->conn), EV_READ | EV_PERSIST, sock_cb, c);
    event_add(c->ev_sock, NULL);
    if (c->ev_write)
        event_free(c->ev_write);
    c->ev_write = event_new(c->base, PQsocket(c->conn), EV_WRITE, write_cb, c);
    send_command(c, STEP_IDENTIFY, "IDENTIFY_SYSTEM");
}

static void send_publication_queries(PgwChanges *c)
{
    char *lit = quote_literal(c, c->publication);
    if (!lit) {
        fail_pq(c, "quoting the publication name");
        return;
    }
    /* A table is followed when every change to its rows reaches the stream
     * under its own name (see changes.h): listed by the publication
     * (publishable, permanent, named as its changes will be), no row filter,
     * and not a plain inheritance parent. pg_publication_tables.rowfilter
     * exists from PostgreSQL 15; before, there are no row filters. */
    const char *no_filter = c->server_version >= 150000 ? "t.rowfilter IS NULL" : "true";
    PgwBuf sql;
    buf_init(&sql);
    buf_printf(&sql,
               "SELECT p.puballtables, p.pubinsert AND p.pubupdate AND p.pubdelete AND "
               "p.pubtruncate FROM pg_catalog.pg_publication p WHERE p.pubname = %s; "
               "SELECT c.oid, t.schemaname, t.tablename, %s AND (c.relkind = 'p' OR NOT EXISTS "
               "(SELECT FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid)) "
               "FROM pg_catalog.pg_publication_tables t "
               "JOIN pg_catalog.pg_namespace n ON n.nspname = t.schemaname "
               "JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.tablename "
               "WHERE t.pubname = %s",
               lit, no_filter, lit);
    free(lit);
    char *text = buf_steal_str(&sql);
    send_command(c, STEP_PUBLISH, text);
    free(text);
}

static void send_create_slot(PgwChanges *c)
{
    /* Unique across instances and attempts: the process, a counter and
     * random bits (slot names: lower-case letters, digits, '_'; < 64). */
    static atomic_uint counter;
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
        r = (uint32_t)now_usec();
    snprintf(c->slot, sizeof c->slot, "pgwarden_%ld_%u_%08x", (long)getpid(),
             atomic_fetch_add(&counter, 1) + 1, r);
    pthread_mutex_lock(&c->mu);
    snprintf(c->st.slot, sizeof c->st.slot, "%s", c->slot);
    pthread_mutex_unlock(&c->mu);
    char sql[256];
    /* no exported snapshot: nothing here reads the data as of the slot */
    snprintf(sql, sizeof sql, "CREATE_REPLICATION_SLOT %s TEMPORARY LOGICAL pgoutput %s", c->slot,
             c->server_version >= 150000 ? "(SNAPSHOT 'nothing')" : "NOEXPORT_SNAPSHOT");
    send_command(c, STEP_SLOT, sql);
}

static void send_start(PgwChanges *c)
{
    /* publication_names is a list of identifiers inside a string literal:
     * quote the name as an identifier, then the whole as a literal. */
    char *ident = PQescapeIdentifier(c->conn, c->publication, strlen(c->publication));
    if (!ident) {
        fail_pq(c, "quoting the publication name");
        return;
    }
    char *lit = quote_literal(c, ident);
    PQfreemem(ident);
    if (!lit) {
        fail_pq(c, "quoting the publication name");
        return;
    }
    PgwBuf sql;
    buf_init(&sql);
    buf_printf(&sql,
               "START_REPLICATION SLOT %s LOGICAL 0/0 (proto_version '1', publication_names %s%s)",
               c->slot, lit, c->server_version >= 140000 ? ", messages 'true'" : "");
    free(lit);
    char *text = buf_steal_str(&sql);
    send_command(c, STEP_START, text);
    free(text);
}

/* One result of the current step. Returns -1 when the stream failed. */
static int step_result(PgwChanges *c, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && st != PGRES_COPY_BOTH) {
        fail_result(c, res, step_names[c->step]);
        return -1;
    }
    switch (c->step) {
    case STEP_IDENTIFY:
        /* systemid, timeline, xlogpos, dbname: dbname is NULL on a physical
         * connection, which could not decode anything */
        if (PQntuples(res) != 1 || PQnfields(res) < 4 || PQgetisnull(res, 0, 3)) {
            PQclear(res);
            fail(c, "IDENTIFY_SYSTEM did not name a database (is replication=database honoured?)");
            return -1;
        }
        break;
    case STEP_PUBLISH:
        if (PQnfields(res) == 2) { /* the publication's row */
            c->pub_found = PQntuples(res) == 1;
            if (c->pub_found) {
                c->pub_all_tables = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
                c->pub_all_ops = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
            }
        } else if (PQnfields(res) == 4) { /* its tables */
            for (int i = 0; i < PQntuples(res); i++) {
                PubRel *r = pgw_calloc(1, sizeof *r);
                r->oid = (uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10);
                r->schema = pgw_strdup(PQgetvalue(res, i, 1));
                r->name = pgw_strdup(PQgetvalue(res, i, 2));
                r->followed = strcmp(PQgetvalue(res, i, 3), "t") == 0;
                if (r->oid == 0 || oidmap_get(&c->published, r->oid)) {
                    pubrel_free(r);
                    continue;
                }
                oidmap_put(&c->published, r->oid, r);
            }
        }
        break;
    case STEP_SLOT:
        if (PQntuples(res) != 1 || PQnfields(res) < 2) {
            PQclear(res);
            fail(c, "CREATE_REPLICATION_SLOT answered no slot");
            return -1;
        }
        break;
    case STEP_START:
        if (st != PGRES_COPY_BOTH) {
            PQclear(res);
            fail(c, "START_REPLICATION did not start streaming");
            return -1;
        }
        break;
    default:
        break;
    }
    PQclear(res);
    return 0;
}

static void start_streaming(PgwChanges *c);

/* The current step's results are all in: go on. */
static void step_done(PgwChanges *c)
{
    switch (c->step) {
    case STEP_IDENTIFY:
        send_publication_queries(c);
        return;
    case STEP_PUBLISH: {
        if (!c->pub_found) {
            fail(c,
                 "publication \"%s\" does not exist in this database (the DBA creates it: "
                 "CREATE PUBLICATION %s FOR ALL TABLES)",
                 c->publication, c->publication);
            return;
        }
        if (!c->pub_all_ops) {
            fail(c,
                 "publication \"%s\" does not publish every insert, update, delete and "
                 "truncate, so the cache cannot follow it (ALTER PUBLICATION %s SET (publish "
                 "= 'insert, update, delete, truncate'))",
                 c->publication, c->publication);
            return;
        }
        /* publish the followed names for changes_follows */
        NameSet set = {0, 0, NULL};
        for (size_t i = 0; i < c->published.cap; i++) {
            PubRel *r = c->published.keys[i] ? c->published.vals[i] : NULL;
            if (r && r->followed)
                nameset_add(&set, r);
        }
        pthread_mutex_lock(&c->mu);
        free(c->followed.slots);
        c->followed = set;
        c->st.followed = set.count;
        c->st.all_tables = c->pub_all_tables;
        pthread_mutex_unlock(&c->mu);
        send_create_slot(c);
        return;
    }
    case STEP_SLOT:
        send_start(c);
        return;
    default:
        fail(c, "unexpected end of results while %s", step_names[c->step]);
        return;
    }
}

/* ---- streaming ------------------------------------------------------------ */

static void become_caught_up(PgwChanges *c)
{
    pthread_mutex_lock(&c->mu);
    c->st.caught_up = true;
    c->st.epoch++;
    c->st.state = PGW_CHANGES_STREAMING;
    c->st.last_error[0] = '\0';
    uint64_t epoch = c->st.epoch;
    pthread_mutex_unlock(&c->mu);
    if (c->logged_error[0]) {
        log_info("change stream for %s: following again (slot %s)", c->label, c->slot);
        c->logged_error[0] = '\0';
    } else {
        log_info("change stream for %s: following publication %s (slot %s)", c->label,
                 c->publication, c->slot);
    }
    c->retry_ms = c->retry_min_ms;
    if (c->cb.caught_up)
        c->cb.caught_up(c->arg, true, epoch);
}

/* The relation as the stream names it must be the one the publication
 * listed under that OID; anything else means our picture is stale. */
static int on_relation(PgwChanges *c, const PgwLrMsg *m)
{
    const PubRel *pub = oidmap_get(&c->published, m->relid);
    if (!pub || strcmp(pub->schema, m->nspname) != 0 || strcmp(pub->name, m->name) != 0) {
        char why[256];
        snprintf(why, sizeof why, "relation %s.%s (OID %" PRIu32 ") %s", m->nspname, m->name,
                 m->relid, pub ? "was renamed" : "is new to the publication");
        restart(c, why);
        return -1;
    }
    uint64_t shape = name_hash(m->nspname, m->name);
    shape = fnv(shape, &m->replident, 1);
    for (uint16_t i = 0; i < m->ncolumns; i++) {
        PgwLrColumn col;
        changes_lr_column(m, i, &col);
        shape = fnv(shape, col.name, strlen(col.name) + 1);
        shape = fnv(shape, &col.type_oid, sizeof col.type_oid);
        shape = fnv(shape, &col.typmod, sizeof col.typmod);
    }
    StreamRel *r = oidmap_get(&c->rels, m->relid);
    if (!r) {
        /* first description on this connection: nothing to compare with
         * (the owner treats a new epoch as "anything may have changed") */
        r = pgw_calloc(1, sizeof *r);
        r->oid = m->relid;
        r->shape = shape;
        r->schema = pgw_strdup(m->nspname);
        r->name = pgw_strdup(m->name);
        oidmap_put(&c->rels, m->relid, r);
        return 0;
    }
    if (r->shape == shape)
        return 0;
    r->shape = shape;
    pthread_mutex_lock(&c->mu);
    c->st.schema_changes++;
    pthread_mutex_unlock(&c->mu);
    if (c->cb.schema_changed) {
        PgwChangesTable t = {r->oid, r->schema, r->name};
        c->cb.schema_changed(c->arg, &t);
    }
    return 0;
}

static int touch(PgwChanges *c, uint32_t relid, const char *kind)
{
    StreamRel *r = oidmap_get(&c->rels, relid);
    if (!r || !c->in_txn) {
        fail(c, "%s %s", kind,
             !c->in_txn ? "outside a transaction" : "of a relation the stream never described");
        return -1;
    }
    c->txn_changes++;
    if (r->in_txn)
        return 0;
    r->in_txn = true;
    if (c->ntxn_rels == c->cap_txn_rels) {
        c->cap_txn_rels = c->cap_txn_rels ? c->cap_txn_rels * 2 : 8;
        c->txn_rels = pgw_realloc(c->txn_rels, c->cap_txn_rels * sizeof *c->txn_rels);
    }
    c->txn_rels[c->ntxn_rels++] = r;
    return 0;
}

static int on_commit(PgwChanges *c, const PgwLrMsg *m)
{
    if (!c->in_txn) {
        fail(c, "Commit outside a transaction");
        return -1;
    }
    c->in_txn = false;
    c->ack_lsn = m->end_lsn;
    int64_t lag = (now_usec() - (m->commit_time + PGW_PG_EPOCH_USEC)) / 1000;
    uint64_t changes = c->txn_changes;
    c->txn_changes = 0;
    /* Flags cleared first: a callback may not re-enter, but keep the set
     * consistent whatever it does. */
    size_t n = c->ntxn_rels;
    c->ntxn_rels = 0;
    for (size_t i = 0; i < n; i++) {
        StreamRel *r = c->txn_rels[i];
        r->in_txn = false;
        if (c->cb.table_changed) {
            PgwChangesTable t = {r->oid, r->schema, r->name};
            c->cb.table_changed(c->arg, &t, m->end_lsn);
        }
    }
    /* Published after the callbacks: a last_lsn seen in SHOW CACHE means
     * every entry this commit invalidates is already gone. */
    pthread_mutex_lock(&c->mu);
    c->st.transactions++;
    c->st.changes += changes;
    c->st.invalidations += n;
    c->st.last_lsn = m->end_lsn;
    c->st.lag_ms = lag > 0 ? lag : 0;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

/* One pgoutput message. Returns -1 when the stream failed or restarted. */
static int on_pgoutput(PgwChanges *c, const uint8_t *data, size_t len)
{
    PgwLrMsg m;
    char err[160];
    if (changes_parse_pgoutput(data, len, &m, err, sizeof err) < 0) {
        fail(c, "%s", err);
        return -1;
    }
    switch (m.kind) {
    case PGW_LR_BEGIN:
        if (c->in_txn) {
            fail(c, "Begin inside a transaction");
            return -1;
        }
        c->in_txn = true;
        c->ntxn_rels = 0;
        c->txn_changes = 0;
        return 0;
    case PGW_LR_COMMIT:
        return on_commit(c, &m);
    case PGW_LR_RELATION:
        return on_relation(c, &m);
    case PGW_LR_INSERT:
        return touch(c, m.relid, "Insert");
    case PGW_LR_UPDATE:
        return touch(c, m.relid, "Update");
    case PGW_LR_DELETE:
        return touch(c, m.relid, "Delete");
    case PGW_LR_TRUNCATE:
        for (uint32_t i = 0; i < m.nrelids; i++)
            if (touch(c, changes_lr_truncate_relid(&m, i), "Truncate") < 0)
                return -1;
        return 0;
    case PGW_LR_MESSAGE:
        pthread_mutex_lock(&c->mu);
        c->st.messages++;
        pthread_mutex_unlock(&c->mu);
        if (c->cb.message)
            c->cb.message(c->arg, m.name, m.content, m.content_len, (m.flags & 1) != 0);
        return 0;
    case PGW_LR_ORIGIN:
    case PGW_LR_TYPE:
        return 0;
    }
    return 0;
}

static int on_copy_message(PgwChanges *c, const uint8_t *data, size_t len)
{
    PgwReplMsg msg;
    char err[160];
    if (changes_parse_copy(data, len, &msg, err, sizeof err) < 0) {
        fail(c, "%s", err);
        return -1;
    }
    if (msg.kind == PGW_REPL_XLOGDATA)
        return on_pgoutput(c, msg.payload, msg.payload_len);

    /* keepalive: with no transaction in progress, everything up to the
     * server's position is processed */
    if (!c->in_txn && msg.wal_end > c->ack_lsn)
        c->ack_lsn = msg.wal_end;
    if (!c->in_txn) {
        pthread_mutex_lock(&c->mu);
        c->st.lag_ms = 0;
        pthread_mutex_unlock(&c->mu);
    }
    /* A keepalive the server sends unasked is its "decoded all there is"
     * (see the top of this file); one it sends because a reply is overdue
     * could come in the middle of a long backlog, so it does not count. And
     * the stream itself asks for keepalives only once caught up. */
    pthread_mutex_lock(&c->mu);
    bool caught_up = c->st.caught_up;
    pthread_mutex_unlock(&c->mu);
    if (!caught_up && !msg.reply_requested)
        become_caught_up(c);
    if (msg.reply_requested)
        return send_status(c, false);
    return 0;
}

static void read_stream(PgwChanges *c)
{
    for (;;) {
        char *buf = NULL;
        int n = PQgetCopyData(c->conn, &buf, 1);
        if (n > 0) {
            c->last_recv_usec = now_usec();
            if (c->cb.tap)
                c->cb.tap(c->arg, (const uint8_t *)buf, (size_t)n);
            int r = on_copy_message(c, (const uint8_t *)buf, (size_t)n);
            PQfreemem(buf);
            if (r < 0)
                return;
            continue;
        }
        if (n == 0)
            return;
        if (n == -1) { /* the server ended the stream: its reason is in the result */
            PGresult *res = PQgetResult(c->conn);
            if (res && PQresultStatus(res) == PGRES_FATAL_ERROR) {
                fail_result(c, res, "streaming");
                return;
            }
            PQclear(res);
            fail(c, "the server ended the stream");
            return;
        }
        fail_pq(c, "streaming");
        return;
    }
}

static void start_streaming(PgwChanges *c)
{
    begin_step(c, STEP_STREAM);
    c->last_recv_usec = c->last_status_usec = now_usec();
    set_state(c, PGW_CHANGES_CATCHING_UP);
    pthread_mutex_lock(&c->mu);
    c->st.connects++;
    pthread_mutex_unlock(&c->mu);
    read_stream(c); /* the COPY_BOTH answer may have brought messages along */
}

/* ---- events --------------------------------------------------------------- */

static void connect_poll(PgwChanges *c)
{
    switch (PQconnectPoll(c->conn)) {
    case PGRES_POLLING_READING:
        arm_sock(c, EV_READ);
        return;
    case PGRES_POLLING_WRITING:
        arm_sock(c, EV_WRITE);
        return;
    case PGRES_POLLING_OK:
        send_identify(c);
        return;
    default:
        /* like libpq with a host of several addresses: try the next one */
        if (c->addr_i + 1 < c->naddrs) {
            log_debug("change stream for %s: %s: %s", c->label, c->addrs[c->addr_i],
                      PQerrorMessage(c->conn));
            PQfinish(c->conn);
            c->conn = NULL;
            c->addr_i++;
            begin_connect(c);
            return;
        }
        fail_pq(c, "connecting");
        return;
    }
}

static void sock_cb(evutil_socket_t fd, short what, void *arg)
{
    PgwChanges *c = arg;
    if (c->step == STEP_CONNECT) {
        connect_poll(c);
        return;
    }
    if (!PQconsumeInput(c->conn)) {
        fail_pq(c, step_names[c->step]);
        return;
    }
    if (c->step == STEP_STREAM) {
        read_stream(c);
        return;
    }
    /* libpq may hold output too (a command bigger than the socket buffer) */
    if (flush_out(c) < 0)
        return;
    while (!PQisBusy(c->conn)) {
        PGresult *res = PQgetResult(c->conn);
        if (!res) {
            step_done(c);
            return;
        }
        bool copy_both = PQresultStatus(res) == PGRES_COPY_BOTH;
        if (step_result(c, res) < 0)
            return;
        if (copy_both) {
            start_streaming(c);
            return;
        }
    }
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    PgwChanges *c = arg;
    int64_t now = now_usec();
    if (c->step != STEP_STREAM) {
        /* Creating a slot waits for transactions in progress on the server
         * to end (it needs a consistent starting point), which can be long
         * on a healthy server: allow it more time than a network step. */
        int64_t limit = (int64_t)c->timeout_ms * 1000 * (c->step == STEP_SLOT ? 10 : 1);
        if (c->step != STEP_IDLE && now - c->step_usec > limit)
            fail(c, "no answer from the server for %d s", (int)(limit / 1000000));
        return;
    }
    if (now - c->last_recv_usec > (int64_t)c->timeout_ms * 1000) {
        fail(c, "the server sent nothing for %d s, even when asked", c->timeout_ms / 1000);
        return;
    }
    /* Every status interval: tell the server how far we are, and ask for a
     * keepalive when it has been quiet, so a dead server shows as silence. */
    if (now - c->last_status_usec >= (int64_t)c->status_interval_ms * 1000 || c->status_pending) {
        pthread_mutex_lock(&c->mu);
        bool caught_up = c->st.caught_up;
        pthread_mutex_unlock(&c->mu);
        bool quiet = now - c->last_recv_usec >= (int64_t)c->status_interval_ms * 1000;
        (void)send_status(c, caught_up && quiet);
    }
}

static void begin_connect(PgwChanges *c)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(c->conninfo, &err);
    if (!opts) {
        fail(c, "invalid conninfo: %s", err ? err : "out of memory");
        PQfreemem(err);
        return;
    }
    size_t n = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        n++;
    const char **keys = pgw_calloc(n + 4, sizeof *keys);
    const char **vals = pgw_calloc(n + 4, sizeof *vals);
    size_t k = 0;
    bool have_appname = false;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || strcmp(o->keyword, "replication") == 0 ||
            (c->addrs && strcmp(o->keyword, "hostaddr") == 0))
            continue;
        if (strcmp(o->keyword, "fallback_application_name") == 0 ||
            strcmp(o->keyword, "application_name") == 0)
            have_appname = true;
        keys[k] = o->keyword;
        vals[k++] = o->val;
    }
    keys[k] = "replication";
    vals[k++] = "database";
    if (c->addrs) {
        keys[k] = "hostaddr";
        vals[k++] = c->addrs[c->addr_i];
    }
    if (!have_appname) {
        keys[k] = "fallback_application_name";
        vals[k++] = "pgwarden-changes";
    }
    begin_step(c, STEP_CONNECT);
    c->conn = PQconnectStartParams(keys, vals, 0);
    free(keys);
    free(vals);
    PQconninfoFree(opts);
    if (!c->conn || PQstatus(c->conn) == CONNECTION_BAD) {
        fail_pq(c, "connecting");
        return;
    }
    if (PQsetnonblocking(c->conn, 1) != 0) {
        fail_pq(c, "connecting");
        return;
    }
    arm_sock(c, EV_WRITE);
}

static void resolved_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    PgwChanges *c = arg;
    if (result == EVUTIL_EAI_CANCEL) /* disconnect() withdrew the request */
        return;
    c->dns_req = NULL;
    if (result != 0 || !res) {
        if (res)
            evutil_freeaddrinfo(res);
        fail(c, "could not resolve the host name: %s", evutil_gai_strerror(result));
        return;
    }
    for (struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next) {
        char addr[INET6_ADDRSTRLEN] = "";
        const void *a = ai->ai_family == AF_INET6
                            ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                            : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            !evutil_inet_ntop(ai->ai_family, a, addr, sizeof addr))
            continue;
        bool dup = false;
        for (size_t i = 0; i < c->naddrs && !dup; i++)
            dup = strcmp(c->addrs[i], addr) == 0;
        if (dup)
            continue;
        c->addrs = pgw_realloc(c->addrs, (c->naddrs + 1) * sizeof *c->addrs);
        c->addrs[c->naddrs++] = pgw_strdup(addr);
    }
    evutil_freeaddrinfo(res);
    if (c->naddrs == 0) {
        fail(c, "the host name has no IPv4 or IPv6 address");
        return;
    }
    begin_connect(c);
}

/* libpq resolves host names with a blocking getaddrinfo; give it an address
 * instead when the conninfo names one host by name and no hostaddr. */
static const char *host_to_resolve(PQconninfoOption *opts)
{
    const char *host = NULL, *hostaddr = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
    }
    if (!host || !*host || (hostaddr && *hostaddr))
        return NULL;
    if (host[0] == '/' || host[0] == '@' || strchr(host, ','))
        return NULL; /* a socket directory; or several hosts, which libpq must try in turn */
    unsigned char a[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1)
        return NULL;
    return host;
}

static void start_attempt(PgwChanges *c)
{
    set_state(c, PGW_CHANGES_CONNECTING);
    evtimer_del(c->ev_tick);
    struct timeval tv = {c->tick_ms / 1000, (c->tick_ms % 1000) * 1000};
    event_add(c->ev_tick, &tv); /* persistent: step timeouts, then the stream's pace */
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(c->conninfo, &err);
    if (!opts) {
        begin_step(c, STEP_CONNECT);
        fail(c, "invalid conninfo: %s", err ? err : "out of memory");
        PQfreemem(err);
        return;
    }
    const char *host = host_to_resolve(opts);
    if (!host) {
        PQconninfoFree(opts);
        begin_connect(c);
        return;
    }
    begin_step(c, STEP_RESOLVE);
    if (!c->dns)
        c->dns = evdns_base_new(c->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                             EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!c->dns) {
        PQconninfoFree(opts);
        fail(c, "could not set up name resolution (/etc/resolv.conf)");
        return;
    }
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    /* host points into opts: resolve before freeing them. NULL back means
     * the callback already ran, inside the call. */
    struct evdns_getaddrinfo_request *req =
        evdns_getaddrinfo(c->dns, host, NULL, &hints, resolved_cb, c);
    PQconninfoFree(opts);
    if (req)
        c->dns_req = req;
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    start_attempt(arg);
}

/* ---- the interface -------------------------------------------------------- */

PgwChanges *changes_open(struct event_base *base, const PgwChangesOptions *opts,
                         const PgwChangesCallbacks *cb, void *arg)
{
    PgwChanges *c = pgw_calloc(1, sizeof *c);
    c->base = base;
    c->cb = *cb;
    c->arg = arg;
    c->conninfo = pgw_strdup(opts->conninfo);
    c->publication = pgw_strdup(opts->publication);
    c->label = pgw_strdup(opts->label && *opts->label ? opts->label : "database");
    c->status_interval_ms = opts->status_interval_ms > 0 ? opts->status_interval_ms : 10000;
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 60000;
    c->retry_min_ms = opts->retry_min_ms > 0 ? opts->retry_min_ms : 1000;
    c->retry_max_ms = opts->retry_max_ms > 0 ? opts->retry_max_ms : 30000;
    if (c->retry_max_ms < c->retry_min_ms)
        c->retry_max_ms = c->retry_min_ms;
    c->retry_ms = c->retry_min_ms;
    pthread_mutex_init(&c->mu, NULL);
    c->st.state = PGW_CHANGES_CONNECTING;
    /* the pace of the stream: status updates are due every status_interval,
     * so look four times as often, and at least once a second */
    c->tick_ms = c->status_interval_ms / 4;
    if (c->tick_ms > 1000)
        c->tick_ms = 1000;
    if (c->tick_ms < 10)
        c->tick_ms = 10;
    c->ev_tick = event_new(base, -1, EV_PERSIST, tick_cb, c);
    c->ev_retry = evtimer_new(base, retry_cb, c);
    schedule(c, 0);
    return c;
}

void changes_close(PgwChanges *c)
{
    if (!c)
        return;
    lose_caught_up(c);
    disconnect(c);
    set_state(c, PGW_CHANGES_STOPPED);
    event_free(c->ev_tick);
    event_free(c->ev_retry);
    if (c->dns)
        evdns_base_free(c->dns, 1);
    free(c->txn_rels);
    free(c->conninfo);
    free(c->publication);
    free(c->label);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void changes_stats(PgwChanges *c, PgwChangesStats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}

bool changes_follows(PgwChanges *c, const char *schema, const char *name, uint64_t *epoch)
{
    pthread_mutex_lock(&c->mu);
    bool yes = c->st.caught_up && nameset_has(&c->followed, schema, name);
    if (epoch)
        *epoch = c->st.epoch;
    pthread_mutex_unlock(&c->mu);
    return yes;
}

const char *changes_state_name(PgwChangesState state)
{
    switch (state) {
    case PGW_CHANGES_CONNECTING:
        return "connecting";
    case PGW_CHANGES_CATCHING_UP:
        return "catching up";
    case PGW_CHANGES_STREAMING:
        return "streaming";
    case PGW_CHANGES_RETRYING:
        return "retrying";
    case PGW_CHANGES_STOPPED:
        return "stopped";
    }
    return "?";
}

int changes_database_key(const char *conninfo, char *buf, size_t len, char *err, size_t errlen)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        snprintf(err, errlen, "invalid conninfo: %s", perr ? perr : "out of memory");
        PQfreemem(perr);
        return -1;
    }
    PQconninfoOption *defs = PQconndefaults();
    const char *want[] = {"host", "hostaddr", "port", "dbname", "user"};
    const char *val[5] = {NULL, NULL, NULL, NULL, NULL};
    for (size_t i = 0; i < 5; i++) {
        for (PQconninfoOption *o = opts; o->keyword; o++)
            if (strcmp(o->keyword, want[i]) == 0 && o->val && *o->val)
                val[i] = o->val;
        for (PQconninfoOption *o = defs; !val[i] && o && o->keyword; o++)
            if (strcmp(o->keyword, want[i]) == 0 && o->val && *o->val)
                val[i] = o->val;
    }
    /* libpq: no host means its default socket directory; no dbname means
     * the user's name */
    snprintf(buf, len, "host=%s port=%s dbname=%s",
             val[1]   ? val[1]
             : val[0] ? val[0]
                      : "",
             val[2] ? val[2] : "5432",
             val[3]   ? val[3]
             : val[4] ? val[4]
                      : "");
    PQconninfoFree(defs);
    PQconninfoFree(opts);
    return 0;
}
