/*
 * backend.c — one session with a tenant's PostgreSQL; see backend.h.
 *
 * Two phases. While CONNECTING/SETUP, libpq drives the socket: one event on
 * PQsocket, re-armed for reading or writing as PQconnectPoll (and later
 * PQconsumeInput for introspection queries) asks. Once READY, pgwarden reads
 * and writes the protocol itself through a bufferevent; libpq's PGconn stays
 * only as the owner of the socket (and TLS state) and the source of cancel
 * keys.
 *
 * The relay reads message headers only. Messages pgwarden must look at are
 * small and buffered whole: ReadyForQuery (to track the statement boundary
 * and transaction status), ErrorResponse (FATALs mean the server is going
 * away), NoticeResponse and CommandComplete. Everything else is streamed:
 * the header, then the body as it comes (stream_left), handed to the user
 * straight from the backend's input buffer (the link moves it into the
 * client's output buffer without copying), and reading stops while the
 * user says it is congested.
 *
 * Responses to pgwarden's own queries (RFQ_SWALLOW, RFQ_CAPTURE) never
 * reach the user; everything else does, through PgwBackendUser. Callbacks
 * may give the session back or discard it from inside the relay loop:
 * backend_free then only marks it, and the loop frees it when it unwinds.
 */
#include "backend.h"

#include "codec.h"
#include "log.h"
#include "schema.h"
#include "worker.h"
#include "worker_in.h"
#include "worker_out.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

static void backend_event_cb(struct bufferevent *bev, short what, void *arg);
static void backend_read_cb(struct bufferevent *bev, void *arg);
static void backend_write_cb(struct bufferevent *bev, void *arg);
static void backend_in_data(void *arg);
static void backend_in_end(void *arg, short what);
static void backend_reads(PgwBackend *b, bool on);
static void backend_process(PgwBackend *b);
static void backend_connect_cb(evutil_socket_t fd, short what, void *arg);
static void connect_done(PgwBackend *b);
static void backend_relay(PgwBackend *b);
static void internal_finish(PgwBackend *b, bool failed);

/* pgwarden's own query whose rows it wants (RFQ_CAPTURE in the queue):
 * rows arrive as NUL-terminated strings, row-major. */
struct PgwInternal {
    char *sql;
    PgwInternalDone done; /* NULL once forgotten */
    void *arg;
    size_t nrows, ncols, cap;
    char **values;
    char *error;
    char *sqlstate; /* the server's, with error (NULL: the error is pgwarden's) */
    bool after_failed_pipeline; /* see PGW_ERR_PIPELINE_FAILED */
    struct PgwInternal *next;
};

static int64_t now_usec(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* ---------- connecting ---------- */

static void arm(PgwBackend *b, short what)
{
    if (b->ev)
        event_free(b->ev);
    b->ev = event_new(worker_base(b->worker), PQsocket(b->conn), what, backend_connect_cb, b);
    event_add(b->ev, NULL);
}

static void connect_failed(PgwBackend *b, const char *why)
{
    if (b->ev) {
        event_free(b->ev);
        b->ev = NULL;
    }
    b->state = PGW_BE_BROKEN;
    b->home_ops->connect_failed(b->home, b, why);
}

static void setup_cb(evutil_socket_t fd, short what, void *arg);

/* Read the tenant's schema for the policy while libpq still drives the
 * session: the policy must know every table's columns before the first
 * statement can be rewritten. */
static void setup_done(PgwBackend *b, PGresult *res)
{
    int nrows = PQntuples(res), ncols = PQnfields(res);
    const char **vals = pgw_calloc((size_t)nrows * (size_t)ncols + 1, sizeof *vals);
    for (int r = 0; r < nrows; r++)
        for (int f = 0; f < ncols; f++)
            vals[(size_t)r * (size_t)ncols + (size_t)f] =
                PQgetisnull(res, r, f) ? NULL : PQgetvalue(res, r, f);
    PgwSchema *schema = schema_from_rows((size_t)nrows, (size_t)ncols, vals);
    free(vals);
    if (schema)
        b->home_ops->schema_read(b->home, schema);
}

static void setup_cb(evutil_socket_t fd, short what, void *arg)
{
    PgwBackend *b = arg;
    if (!PQconsumeInput(b->conn))
        goto fail;
    while (!PQisBusy(b->conn)) {
        PGresult *res = PQgetResult(b->conn);
        if (!res) {
            connect_done(b);
            return;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK)
            setup_done(b, res);
        PQclear(res);
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
            goto fail;
    }
    return; /* persistent read event stays armed */
fail : {
    char why[512];
    snprintf(why, sizeof why, "reading the schema failed: %s", PQerrorMessage(b->conn));
    why[strcspn(why, "\n")] = '\0';
    connect_failed(b, why);
}
}

static void start_setup(PgwBackend *b)
{
    if (!b->home_ops->schema_needed(b->home)) {
        connect_done(b);
        return;
    }
    b->state = PGW_BE_SETUP;
    if (!PQsendQuery(b->conn, schema_introspection_sql())) {
        connect_failed(b, PQerrorMessage(b->conn));
        return;
    }
    PQflush(b->conn);
    if (b->ev)
        event_free(b->ev);
    b->ev = event_new(worker_base(b->worker), PQsocket(b->conn), EV_READ | EV_PERSIST, setup_cb, b);
    event_add(b->ev, NULL);
}

static void connect_done(PgwBackend *b)
{
    if (b->ev) {
        event_free(b->ev);
        b->ev = NULL;
    }
    b->pid = PQbackendPID(b->conn);
    b->cancel = PQgetCancel(b->conn);
    b->tx_status = 'I';
    b->state = PGW_BE_READY;
    backend_attach(b, b->worker);
    b->home_ops->connected(b->home, b);
}

static void backend_connect_cb(evutil_socket_t fd, short what, void *arg)
{
    PgwBackend *b = arg;
    switch (PQconnectPoll(b->conn)) {
    case PGRES_POLLING_READING:
        arm(b, EV_READ);
        return;
    case PGRES_POLLING_WRITING:
        arm(b, EV_WRITE);
        return;
    case PGRES_POLLING_OK:
        start_setup(b);
        return;
    default: {
        char why[512];
        snprintf(why, sizeof why, "%s", PQerrorMessage(b->conn));
        why[strcspn(why, "\n")] = '\0';
        connect_failed(b, why);
        return;
    }
    }
}

PgwBackend *backend_connect(const PgwBackendHome *ops, void *home, void *want, PgwWorker *w,
                            const char *conninfo, const char *options)
{
    PgwBackend *b = pgw_calloc(1, sizeof *b);
    b->home_ops = ops;
    b->home = home;
    b->want = want;
    b->worker = w;
    b->state = PGW_BE_CONNECTING;
    b->created_usec = now_usec();

    /* The tenant's conninfo plus pgwarden's own session options, appended
     * to any options the conninfo already carries. */
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (!opts) {
        char why[512];
        snprintf(why, sizeof why, "invalid backend conninfo: %s", err ? err : "out of memory");
        PQfreemem(err);
        b->state = PGW_BE_BROKEN;
        ops->connect_failed(home, b, why);
        return NULL;
    }
    size_t n = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        n++;
    const char **keys = pgw_calloc(n + 3, sizeof *keys);
    const char **vals = pgw_calloc(n + 3, sizeof *vals);
    size_t k = 0;
    char *merged = NULL;
    bool have_appname = false;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "options") == 0) {
            size_t len = strlen(o->val) + strlen(options) + 2;
            merged = pgw_malloc(len);
            snprintf(merged, len, "%s %s", o->val, options);
            continue;
        }
        if (strcmp(o->keyword, "fallback_application_name") == 0)
            have_appname = true;
        keys[k] = o->keyword;
        vals[k++] = o->val;
    }
    keys[k] = "options";
    vals[k++] = merged ? merged : options;
    if (!have_appname) {
        keys[k] = "fallback_application_name";
        vals[k++] = "pgwarden";
    }
    keys[k] = NULL;
    vals[k] = NULL;
    b->conn = PQconnectStartParams(keys, vals, 0);
    free(keys);
    free(vals);
    free(merged);
    PQconninfoFree(opts);
    if (!b->conn || PQstatus(b->conn) == CONNECTION_BAD) {
        char why[512];
        snprintf(why, sizeof why, "%s", b->conn ? PQerrorMessage(b->conn) : "out of memory");
        why[strcspn(why, "\n")] = '\0';
        b->state = PGW_BE_BROKEN;
        ops->connect_failed(home, b, why);
        return NULL;
    }
    PQsetnonblocking(b->conn, 1);
    arm(b, EV_WRITE);
    return b;
}

/* ---------- attach / detach / free ---------- */

void backend_attach(PgwBackend *b, PgwWorker *w)
{
    b->worker = w;
    int fd = PQsocket(b->conn);
    SSL *ssl = PQsslInUse(b->conn) ? PQsslStruct(b->conn, "OpenSSL") : NULL;
    if (ssl)
        b->bev = bufferevent_openssl_socket_new(worker_base(w), fd, ssl, BUFFEREVENT_SSL_OPEN, 0);
    else
        b->bev = bufferevent_socket_new(worker_base(w), fd, 0);
    bufferevent_setcb(b->bev, backend_read_cb, backend_write_cb, backend_event_cb, b);
    /* A TLS session's bytes are not the socket's: libevent writes them.
     * Otherwise worker_out does, and EV_WRITE is never armed here (one
     * epoll_ctl per attach, which transaction pooling does per
     * transaction). */
    if (ssl) {
        bufferevent_enable(b->bev, EV_READ | EV_WRITE);
    } else {
        b->out = worker_out_new(b->bev);
        b->in = worker_in_new(b->bev, backend_in_data, backend_in_end, b);
        worker_in_enable(b->in, true);
    }
}

void backend_detach(PgwBackend *b)
{
    worker_out_free(b->out);
    b->out = NULL;
    worker_in_free(b->in);
    b->in = NULL;
    if (b->bev) {
        /* Off this base's epoll now: bufferevent_free from inside the
         * bufferevent's own callback (the relay hands sessions back from
         * there) defers deleting that event to a finalizer that runs later
         * on this thread, by which time the socket may be another worker's
         * or closed and its number reused (ThreadSanitizer saw both). */
        bufferevent_disable(b->bev, EV_READ | EV_WRITE);
        bufferevent_free(b->bev);
        b->bev = NULL;
    }
    b->worker = NULL;
}

void backend_free(PgwBackend *b)
{
    if (!b)
        return;
    if (b->in_process) {
        /* Freed by backend_process when its loop is done. */
        b->free_pending = true;
        b->user_ops = NULL;
        b->user = NULL;
        return;
    }
    if (b->ev)
        event_free(b->ev);
    backend_detach(b);
    if (b->cancel)
        PQfreeCancel(b->cancel);
    if (b->conn)
        PQfinish(b->conn);
    while (b->internal)
        internal_finish(b, true);
    backend_stmt_clear(b);
    free(b->applied_sets);
    free(b->q);
    free(b->fatal_message);
    free(b);
}

/* ---------- what the server owes: the response queue ---------- */

#define Q_TYPE(e) ((char)((e)&0xff))
#define Q_KIND(e) ((uint8_t)((e) >> 8))

static bool synthetic(char type)
{
    return type == BACKEND_SYNTH_PARSE || type == BACKEND_SYNTH_CLOSE ||
           type == BACKEND_SYNTH_ERROR;
}

static void q_push(PgwBackend *b, char type, uint8_t kind)
{
    if (b->q_len == b->q_cap) {
        uint32_t cap = b->q_cap ? b->q_cap * 2 : 8;
        uint16_t *q = pgw_malloc(cap * sizeof *q);
        for (uint32_t i = 0; i < b->q_len; i++)
            q[i] = b->q[(b->q_head + i) % b->q_cap];
        free(b->q);
        b->q = q;
        b->q_head = 0;
        b->q_cap = cap;
    }
    b->q[(b->q_head + b->q_len) % b->q_cap] = (uint16_t)((uint8_t)type | (uint16_t)kind << 8);
    b->q_len++;
}

static uint16_t q_at(const PgwBackend *b, uint32_t i)
{
    return b->q[(b->q_head + i) % b->q_cap];
}

static void q_pop(PgwBackend *b)
{
    if (!b->q_len)
        return;
    b->q_head = (b->q_head + 1) % b->q_cap;
    if (--b->q_len == 0)
        b->idle_due = true;
}

void backend_expect(PgwBackend *b, char type, uint8_t kind)
{
    switch (type) {
    case 'S':
        b->skipping = false; /* the server reads again from here */
        b->unsynced = false;
        q_push(b, type, kind);
        return;
    case 'Q':
        if (b->skipping)
            return; /* discarded by the server while it looks for Sync */
        backend_set_unnamed(b, NULL); /* a simple Query drops the unnamed statement */
        q_push(b, type, kind);
        return;
    case 'H':
        b->unsynced = true;
        return;
    case 'P':
    case 'B':
    case 'D':
    case 'E':
    case 'C':
        b->unsynced = true;
        if (!b->skipping)
            q_push(b, type, kind);
        return;
    default:
        if (!synthetic(type) || b->skipping)
            return;
        if (b->q_len == 0 && b->stream_left == 0 && b->user_ops) {
            if (type == BACKEND_SYNTH_ERROR && b->unsynced)
                b->skipping = true; /* the server's pipeline goes on, the client's stops */
            b->user_ops->synth(b->user, type, kind);
            return;
        }
        q_push(b, type, kind);
    }
}

void backend_expect_rfq(PgwBackend *b, uint8_t kind)
{
    backend_expect(b, 'Q', kind);
}

bool backend_busy(const PgwBackend *b)
{
    return b->q_len > 0;
}

/* A response the user neither sees nor waits for: pgwarden's own query
 * (transaction pooling's settings, the result cache's settings read). A
 * decision waiting for its ReadyForQuery would wait forever when what
 * follows it is a Parse the server answers only at the client's Sync,
 * which that decision is holding back. */
static bool owed_to_user(uint16_t e)
{
    return Q_KIND(e) != RFQ_SWALLOW && Q_KIND(e) != RFQ_CAPTURE;
}

bool backend_owes_only(const PgwBackend *b, const char *types)
{
    for (uint32_t i = 0; i < b->q_len; i++)
        if (owed_to_user(q_at(b, i)) && strchr(types, Q_TYPE(q_at(b, i))) == NULL)
            return false;
    return true;
}

bool backend_owes_ready(const PgwBackend *b)
{
    for (uint32_t i = 0; i < b->q_len; i++) {
        char t = Q_TYPE(q_at(b, i));
        if (owed_to_user(q_at(b, i)) && (t == 'Q' || t == 'S'))
            return true;
    }
    return false;
}

uint32_t backend_expected(const PgwBackend *b, uint8_t kind)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < b->q_len; i++) {
        uint16_t e = q_at(b, i);
        n += Q_KIND(e) == kind && (Q_TYPE(e) == 'Q' || Q_TYPE(e) == 'S');
    }
    return n;
}

bool backend_mid_message(const PgwBackend *b)
{
    return b->stream_left > 0 && !b->stream_swallow;
}

bool backend_reusable(const PgwBackend *b)
{
    return b->state == PGW_BE_READY && !backend_busy(b) && b->stream_left == 0 && !b->unsynced &&
           !b->skipping;
}

bool backend_idle_watched(const PgwBackend *b)
{
    return b->state == PGW_BE_READY && !b->fatal_seen && !b->stray && b->bev &&
           evbuffer_get_length(bufferevent_get_input(b->bev)) == 0 &&
           worker_in_reading(b->in, b->bev);
}

void backend_hand_back(PgwBackend *b)
{
    b->user_ops = NULL;
    b->user = NULL;
    if (b->in_process)
        b->clean_pending = true;
    else
        b->home_ops->clean(b->home, b);
}

/* ---------- prepared statements kept on the session ---------- */

static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

PgwStmtBody *backend_body_new(const uint8_t *data, size_t len)
{
    PgwStmtBody *body = pgw_malloc(sizeof *body + len);
    body->refs = 1;
    body->len = (uint32_t)len;
    body->hash = fnv1a64(data, len);
    /* "pgw_%016llx", without snprintf: every Parse makes a body */
    static const char hex[] = "0123456789abcdef";
    memcpy(body->name, "pgw_", 4);
    for (int i = 0; i < 16; i++)
        body->name[4 + i] = hex[(body->hash >> (60 - 4 * i)) & 0xf];
    body->name[20] = '\0';
    memcpy(body->data, data, len);
    return body;
}

PgwStmtBody *backend_body_ref(PgwStmtBody *body)
{
    if (body)
        __atomic_add_fetch(&body->refs, 1, __ATOMIC_RELAXED);
    return body;
}

void backend_body_unref(PgwStmtBody *body)
{
    if (body && __atomic_sub_fetch(&body->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(body);
}

bool backend_body_same(const PgwStmtBody *a, const PgwStmtBody *b)
{
    return a == b || (a && b && a->hash == b->hash && a->len == b->len &&
                      memcmp(a->data, b->data, a->len) == 0);
}

/* The name is the hash; the bytes are compared too, so two bodies whose
 * hashes collide are never taken for each other (the newer one evicts the
 * older from the session first: see backend_stmt_add). */
PgwBackendStmt *backend_stmt_find(PgwBackend *b, const PgwStmtBody *body)
{
    for (uint32_t i = 0; i < b->nstmts; i++) {
        PgwBackendStmt *s = &b->stmts[i];
        if (s->body->hash == body->hash && backend_body_same(s->body, body)) {
            s->used = ++b->stmt_clock;
            return s;
        }
    }
    return NULL;
}

PgwStmtBody *backend_stmt_add(PgwBackend *b, PgwStmtBody *body, uint32_t max)
{
    PgwStmtBody *evicted = NULL;
    uint32_t slot = b->nstmts;
    for (uint32_t i = 0; i < b->nstmts; i++)
        if (b->stmts[i].body->hash == body->hash) {
            slot = i; /* same name, other bytes: replaced */
            break;
        }
    if (slot == b->nstmts && b->nstmts >= (max ? max : 1)) {
        slot = 0;
        for (uint32_t i = 1; i < b->nstmts; i++)
            if (b->stmts[i].used < b->stmts[slot].used)
                slot = i;
    }
    if (slot < b->nstmts) {
        evicted = b->stmts[slot].body;
    } else {
        b->stmts = pgw_realloc(b->stmts, (b->nstmts + 1) * sizeof *b->stmts);
        b->nstmts++;
    }
    b->stmts[slot].body = backend_body_ref(body);
    b->stmts[slot].used = b->stmts[slot].added = ++b->stmt_clock;
    return evicted;
}

void backend_set_unnamed(PgwBackend *b, PgwStmtBody *body)
{
    backend_body_ref(body);
    backend_body_unref(b->unnamed);
    b->unnamed = body;
}

uint32_t backend_stmt_retain(PgwBackend *b, const char *names, uint64_t since)
{
    uint32_t kept = 0, before = b->nstmts;
    for (uint32_t i = 0; i < b->nstmts; i++) {
        const char *name = b->stmts[i].body->name;
        size_t n = strlen(name);
        bool present = b->stmts[i].added > since;
        for (const char *p = names ? strstr(names, name) : NULL; p; p = strstr(p + 1, name))
            if ((p == names || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) {
                present = true;
                break;
            }
        if (present)
            b->stmts[kept++] = b->stmts[i];
        else
            backend_body_unref(b->stmts[i].body);
    }
    b->nstmts = kept;
    return before - kept;
}

void backend_stmt_clear(PgwBackend *b)
{
    for (uint32_t i = 0; i < b->nstmts; i++)
        backend_body_unref(b->stmts[i].body);
    free(b->stmts);
    b->stmts = NULL;
    b->nstmts = 0;
    backend_set_unnamed(b, NULL);
}

void backend_set_user(PgwBackend *b, const PgwBackendUser *ops, void *user)
{
    b->user_ops = ops;
    b->user = user;
}

void backend_write(PgwBackend *b, const void *data, size_t len)
{
    bufferevent_write(b->bev, data, len);
}

void backend_forward(PgwBackend *b, struct evbuffer *src, size_t n)
{
    evbuffer_remove_buffer(src, bufferevent_get_output(b->bev), n);
}

size_t backend_output_pending(const PgwBackend *b)
{
    return b->bev ? evbuffer_get_length(bufferevent_get_output(b->bev)) : 0;
}

void backend_watch_output(PgwBackend *b, size_t low)
{
    /* backend_write_cb runs once the output drains below low. */
    bufferevent_setwatermark(b->bev, EV_WRITE, low, 0);
}

void backend_send_internal(PgwBackend *b, const char *sql)
{
    PgwBuf m;
    buf_init(&m);
    codec_query(&m, sql);
    bufferevent_write(b->bev, m.data, m.len);
    buf_free(&m);
    backend_expect_rfq(b, RFQ_SWALLOW);
}

/* ---------- internal queries with results ---------- */

PgwInternal *backend_internal_query(PgwBackend *b, const char *sql, PgwInternalDone done, void *arg)
{
    PgwInternal *q = pgw_calloc(1, sizeof *q);
    q->done = done;
    q->arg = arg;
    PgwInternal **tail = &b->internal;
    while (*tail)
        tail = &(*tail)->next;
    *tail = q;
    PgwBuf m;
    buf_init(&m);
    codec_query(&m, sql);
    bufferevent_write(b->bev, m.data, m.len);
    buf_free(&m);
    backend_expect_rfq(b, RFQ_CAPTURE);
    return q;
}

void backend_internal_forget(PgwBackend *b, PgwInternal *q)
{
    for (PgwInternal *i = b->internal; i; i = i->next)
        if (i == q)
            i->done = NULL;
}

#define INTERNAL_MAX_COLS 64

static void internal_row(PgwBackend *b, const uint8_t *body, size_t len)
{
    PgwInternal *q = b->internal;
    const uint8_t *vals[INTERNAL_MAX_COLS];
    int32_t lens[INTERNAL_MAX_COLS];
    size_t n;
    if (codec_parse_data_row(body, len, INTERNAL_MAX_COLS, &n, vals, lens) != 0 ||
        (q->nrows && n != q->ncols)) {
        if (!q->error)
            q->error = pgw_strdup("malformed row");
        return;
    }
    q->ncols = n;
    if ((q->nrows + 1) * n > q->cap) {
        q->cap = q->cap ? q->cap * 2 : 256;
        while (q->cap < (q->nrows + 1) * n)
            q->cap *= 2;
        q->values = pgw_realloc(q->values, q->cap * sizeof *q->values);
    }
    for (size_t i = 0; i < n; i++)
        q->values[q->nrows * n + i] =
            lens[i] < 0 ? NULL : pgw_strndup((const char *)vals[i], (size_t)lens[i]);
    q->nrows++;
}

/* The head internal query is over (its ReadyForQuery arrived, or the
 * session died): report and free it. */
static void internal_finish(PgwBackend *b, bool failed)
{
    PgwInternal *q = b->internal;
    b->internal = q->next;
    if (q->done) {
        const char *err = q->after_failed_pipeline ? PGW_ERR_PIPELINE_FAILED
                          : q->error               ? q->error
                          : failed                 ? "the server connection was lost"
                                                   : NULL;
        char *state[1] = {q->error && !q->after_failed_pipeline ? q->sqlstate : NULL};
        if (err)
            q->done(q->arg, 0, 0, state, err);
        else
            q->done(q->arg, q->nrows, q->ncols, q->values, NULL);
    }
    for (size_t i = 0; i < q->nrows * q->ncols; i++)
        free(q->values[i]);
    free(q->values);
    free(q->error);
    free(q->sqlstate);
    free(q);
}

static void schema_refreshed(void *arg, size_t nrows, size_t ncols, char **values,
                             const char *error)
{
    PgwBackend *b = arg;
    PgwSchema *schema = error ? NULL : schema_from_rows(nrows, ncols, (const char *const *)values);
    if (schema)
        b->home_ops->schema_read(b->home, schema);
    else
        log_warning("tenant %s: re-reading the schema failed (%s); keeping the old one",
                    b->home_ops->name(b->home), error ? error : "unexpected result");
}

void backend_refresh_schema(PgwBackend *b)
{
    backend_internal_query(b, schema_introspection_sql(), schema_refreshed, b);
}

/* ---------- cancel ---------- */

static void *cancel_thread(void *arg)
{
    PGcancel *pc = arg;
    char err[256];
    if (!PQcancel(pc, err, sizeof err))
        log_warning("cancel request to the server failed: %s", err);
    PQfreeCancel(pc);
    return NULL;
}

void backend_cancel(PgwBackend *b)
{
    /* PQcancel blocks while it connects; PostgreSQL 15's libpq has no
     * asynchronous cancel, so a detached thread sends it. Cancels are rare. */
    PGcancel *pc = PQgetCancel(b->conn);
    if (!pc)
        return;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, cancel_thread, pc) != 0)
        PQfreeCancel(pc);
    pthread_attr_destroy(&attr);
}

/* ---------- relay ---------- */

static void backend_broken(PgwBackend *b, const char *why)
{
    b->state = PGW_BE_BROKEN;
    worker_out_free(b->out); /* nothing more is written to it */
    b->out = NULL;
    if (b->in)
        worker_in_enable(b->in, false);
    if (b->bev)
        bufferevent_disable(b->bev, EV_READ | EV_WRITE);
    if (b->user_ops)
        b->user_ops->lost(b->user, b->fatal_message ? b->fatal_message : why);
    else
        b->home_ops->broken(b->home, b);
}

static void backend_reads(PgwBackend *b, bool on)
{
    worker_in_reads(b->in, b->bev, on);
}

static void backend_in_data(void *arg)
{
    backend_process(arg);
}

static void backend_in_end(void *arg, short what)
{
    PgwBackend *b = arg;
    backend_event_cb(b->bev, what, b);
}

static void backend_event_cb(struct bufferevent *bev, short what, void *arg)
{
    PgwBackend *b = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        backend_broken(b, (what & BEV_EVENT_EOF) ? "server closed the connection"
                                                 : "server connection error");
}

/* Relay what the backend sent. Returns after the input is used up, the
 * user is congested, or the session broke. */
static void backend_process(PgwBackend *b)
{
    /* Callbacks below (the user, an ASK job, the home) may release or
     * discard this session; while the loop runs, backend_free only marks
     * it. */
    b->in_process = true;
    backend_relay(b);
    b->in_process = false;
    if (b->free_pending) {
        backend_free(b);
        return;
    }
    if (b->clean_pending) {
        /* Last: the home may hand the session to another thread. */
        b->clean_pending = false;
        b->home_ops->clean(b->home, b);
    }
}

/* Does a response of this type complete the message at the head? */
static bool completes(char head, char type)
{
    switch (head) {
    case 'P':
        return type == '1';
    case 'B':
        return type == '2';
    case 'D':
        return type == 'T' || type == 'n';
    case 'E':
        return type == 'C' || type == 'I' || type == 's';
    case 'C':
        return type == '3';
    default: /* Query, Sync */
        return type == 'Z';
    }
}

/* An ErrorResponse to the extended-protocol message at the head: the
 * server answers nothing more up to the next Sync. */
static void skip_to_sync(PgwBackend *b)
{
    q_pop(b);
    while (b->q_len && Q_TYPE(q_at(b, 0)) != 'S') {
        if (Q_TYPE(q_at(b, 0)) == 'Q' && Q_KIND(q_at(b, 0)) == RFQ_CAPTURE && b->internal)
            internal_finish(b, true);
        q_pop(b);
    }
    if (!b->q_len)
        b->skipping = true;
    /* The Sync reached is pgwarden's own, sent to close the pipeline for
     * the query behind it (link_query): the server would have skipped that
     * query with the rest of the client's pipeline, so its answer is not
     * one to act on (PGW_ERR_PIPELINE_FAILED). The internal queries before
     * this Sync were finished above, so the head one is that query. */
    if (b->q_len >= 2 && Q_TYPE(q_at(b, 1)) == 'Q' && Q_KIND(q_at(b, 1)) == RFQ_CAPTURE &&
        b->internal)
        b->internal->after_failed_pipeline = true;
}

/* Synthesized responses at the head go out now: everything before them
 * has been relayed. */
static void run_synthetic(PgwBackend *b)
{
    while (b->q_len && b->stream_left == 0 && synthetic(Q_TYPE(q_at(b, 0))) &&
           b->state == PGW_BE_READY && !b->free_pending) {
        uint16_t e = q_at(b, 0);
        q_pop(b);
        if (b->user_ops)
            b->user_ops->synth(b->user, Q_TYPE(e), Q_KIND(e));
    }
}

static void backend_relay(PgwBackend *b)
{
    struct evbuffer *in = bufferevent_get_input(b->bev);
    while (b->state == PGW_BE_READY && !b->free_pending) {
        run_synthetic(b);
        if (b->state != PGW_BE_READY || b->free_pending)
            break;
        const PgwBackendUser *u = b->user_ops;
        if (u && u->congested(b->user)) {
            /* Stop reading the server too: backend_resume goes on once the
             * user has drained. */
            backend_reads(b, false);
            break;
        }
        size_t avail = evbuffer_get_length(in);
        if (b->stream_left) {
            size_t n = avail < b->stream_left ? avail : b->stream_left;
            if (!n)
                break;
            b->stream_left -= (uint32_t)n;
            if (b->stream_swallow || !u)
                evbuffer_drain(in, n);
            else
                u->stream(b->user, b->stream_kind, 0, in, n, false);
            continue;
        }
        uint8_t hdr[5];
        char type;
        uint32_t blen;
        if (avail < 5)
            break;
        evbuffer_copyout(in, hdr, 5);
        if (codec_header(hdr, PGW_MAX_MESSAGE_LEN, &type, &blen) != 0) {
            backend_broken(b, "invalid message from server");
            return;
        }
        /* What the response belongs to; with nothing expected, a message
         * the server sends on its own (ParameterStatus, NoticeResponse,
         * NotificationResponse) goes to the user, if any. */
        if (!b->q_len && !u)
            b->stray = true; /* idle: the server speaks only when going away */
        uint16_t e = b->q_len ? q_at(b, 0) : (uint16_t)(u ? RFQ_USER << 8 : RFQ_SWALLOW << 8);
        char head = b->q_len ? Q_TYPE(e) : 0;
        uint8_t kind = Q_KIND(e);
        bool relay = kind >= RFQ_USER && u;
        bool capturing = kind == RFQ_CAPTURE && head == 'Q' && b->internal;
        bool async = type == 'N' || type == 'S' || type == 'A';
        if (type == 'Z' || type == 'E' || type == 'C' || type == 'N' ||
            (capturing && type == 'D')) {
            if (avail < 5 + (size_t)blen)
                break;
            /* Small ones (ReadyForQuery, CommandComplete: every statement)
             * on the stack; the callbacks below copy what they keep. */
            uint8_t small[256];
            uint8_t *msg =
                5 + (size_t)blen + 1 <= sizeof small ? small : pgw_malloc(5 + (size_t)blen + 1);
            evbuffer_remove(in, msg, 5 + (size_t)blen);
            msg[5 + blen] = 0;
            if (type == 'D') {
                internal_row(b, msg + 5, blen);
            } else if (type == 'Z') {
                char st;
                if (codec_parse_ready(msg + 5, blen, &st) == 0)
                    b->tx_status = st;
                int64_t rows = b->rows;
                b->rows = 0;
                if (head == 'Q' || head == 'S')
                    q_pop(b);
                if (capturing)
                    internal_finish(b, false);
                if (relay && (head == 'Q' || head == 'S'))
                    u->ready(b->user, kind, b->tx_status, rows, msg, 5 + (size_t)blen);
                if (msg != small)
                    free(msg);
                continue;
            } else if (type == 'C') {
                /* CommandComplete's tag ends with the row count, if any. */
                const char *tag = (const char *)msg + 5;
                const char *sp = strrchr(tag, ' ');
                if (sp && sp[1] >= '0' && sp[1] <= '9')
                    b->rows += strtoll(sp + 1, NULL, 10);
            } else if (type == 'E') {
                PgwErrorFields ef;
                if (codec_parse_error(msg + 5, blen, &ef) == 0) {
                    const char *sev = ef.severity_nl ? ef.severity_nl : ef.severity;
                    if (sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0)) {
                        /* Reported to the user as the lost session, not
                         * relayed as the server's own FATAL (which would
                         * make a client think pgwarden is going away). */
                        b->fatal_seen = true;
                        free(b->fatal_message);
                        b->fatal_message = pgw_strdup(ef.message ? ef.message : "FATAL");
                        relay = false;
                    } else if (capturing) {
                        if (!b->internal->error) {
                            b->internal->error =
                                pgw_strdup(ef.message ? ef.message : "error without message");
                            b->internal->sqlstate = ef.sqlstate ? pgw_strdup(ef.sqlstate) : NULL;
                        }
                    } else if (!relay && !u) {
                        log_warning("server error while resetting a session: %s",
                                    ef.message ? ef.message : "?");
                    }
                }
            }
            if (relay)
                u->message(b->user, kind, type, msg, 5 + (size_t)blen);
            if (msg != small)
                free(msg);
            if (type == 'E' && head && head != 'Q' && head != 'S' && !b->fatal_seen)
                skip_to_sync(b);
            else if (!async && head && completes(head, type))
                q_pop(b);
            continue;
        }
        b->stream_left = blen;
        b->stream_swallow = !relay;
        b->stream_kind = kind;
        if (relay) {
            /* The header and what of the body is here, in one move: the
             * bytes are in memory already, and a move costs the same for 5
             * bytes as for more. */
            size_t body = avail - 5 < blen ? avail - 5 : blen;
            b->stream_left -= (uint32_t)body;
            u->stream(b->user, kind, type, in, 5 + body, true);
        } else {
            evbuffer_drain(in, 5);
        }
        if (!async && head && completes(head, type))
            q_pop(b);
    }
    if (b->idle_due && b->q_len == 0 && b->stream_left == 0 && b->state == PGW_BE_READY &&
        !b->free_pending) {
        b->idle_due = false;
        if (b->user_ops)
            b->user_ops->idle(b->user);
        else
            b->clean_pending = true;
    }
}

/* Our output to the server drained below its low-water mark: a user
 * whose input was paused for it may go on. */
static void backend_write_cb(struct bufferevent *bev, void *arg)
{
    PgwBackend *b = arg;
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    if (b->user_ops)
        b->user_ops->drained(b->user);
}

static void backend_read_cb(struct bufferevent *bev, void *arg)
{
    backend_process(arg);
}

void backend_resume(PgwBackend *b)
{
    if (!b->bev || b->state != PGW_BE_READY)
        return;
    backend_reads(b, true);
    backend_process(b);
}
