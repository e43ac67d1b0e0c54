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
    bufferevent_enable(b->bev, EV_READ | EV_WRITE);
}

void backend_detach(PgwBackend *b)
{
    if (b->bev) {
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
    free(b->rfq);
    free(b->fatal_message);
    free(b);
}

/* ---------- the ReadyForQuery queue ---------- */

void backend_expect_rfq(PgwBackend *b, uint8_t kind)
{
    if (b->rfq_len == b->rfq_cap) {
        uint32_t cap = b->rfq_cap ? b->rfq_cap * 2 : 4;
        uint8_t *q = pgw_malloc(cap);
        for (uint32_t i = 0; i < b->rfq_len; i++)
            q[i] = b->rfq[(b->rfq_head + i) % b->rfq_cap];
        free(b->rfq);
        b->rfq = q;
        b->rfq_head = 0;
        b->rfq_cap = cap;
    }
    b->rfq[(b->rfq_head + b->rfq_len) % b->rfq_cap] = kind;
    b->rfq_len++;
}

/* What the next response belongs to; with nothing expected, a message
 * the server sends on its own (ParameterStatus, NoticeResponse,
 * NotificationResponse) goes to the user, if any. */
static uint8_t rfq_head(const PgwBackend *b)
{
    return b->rfq_len ? b->rfq[b->rfq_head] : (b->user_ops ? RFQ_USER : RFQ_SWALLOW);
}

static void rfq_pop(PgwBackend *b)
{
    if (!b->rfq_len)
        return;
    b->rfq_head = (b->rfq_head + 1) % b->rfq_cap;
    b->rfq_len--;
}

bool backend_busy(const PgwBackend *b)
{
    return b->rfq_len > 0;
}

uint32_t backend_expected(const PgwBackend *b, uint8_t kind)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < b->rfq_len; i++)
        n += b->rfq[(b->rfq_head + i) % b->rfq_cap] == kind;
    return n;
}

bool backend_mid_message(const PgwBackend *b)
{
    return b->stream_left > 0 && !b->stream_swallow;
}

bool backend_reusable(const PgwBackend *b)
{
    return b->state == PGW_BE_READY && !backend_busy(b) && b->stream_left == 0 && !b->unsynced;
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
        const char *err = q->error ? q->error : failed ? "the server connection was lost" : NULL;
        q->done(q->arg, err ? 0 : q->nrows, q->ncols, q->values, err);
    }
    for (size_t i = 0; i < q->nrows * q->ncols; i++)
        free(q->values[i]);
    free(q->values);
    free(q->error);
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
    if (b->bev)
        bufferevent_disable(b->bev, EV_READ | EV_WRITE);
    if (b->user_ops)
        b->user_ops->lost(b->user, b->fatal_message ? b->fatal_message : why);
    else
        b->home_ops->broken(b->home, b);
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

static void backend_relay(PgwBackend *b)
{
    struct evbuffer *in = bufferevent_get_input(b->bev);
    bool idle_now = false;
    while (b->state == PGW_BE_READY && !b->free_pending) {
        const PgwBackendUser *u = b->user_ops;
        if (u && u->congested(b->user)) {
            /* Stop reading the server too: backend_resume goes on once the
             * user has drained. */
            bufferevent_disable(b->bev, EV_READ);
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
                u->stream(b->user, 0, in, n, false);
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
        uint8_t head = rfq_head(b);
        bool relay = head >= RFQ_USER && u;
        bool capturing = head == RFQ_CAPTURE && b->internal;
        if (type == 'Z' || type == 'E' || type == 'C' || type == 'N' ||
            (capturing && type == 'D')) {
            if (avail < 5 + (size_t)blen)
                break;
            uint8_t *msg = pgw_malloc(5 + (size_t)blen + 1);
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
                rfq_pop(b);
                if (b->rfq_len == 0)
                    idle_now = true;
                if (capturing)
                    internal_finish(b, false);
                if (relay)
                    u->ready(b->user, head, b->tx_status, rows, msg, 5 + (size_t)blen);
                free(msg);
                continue;
            } else if (type == 'C') {
                /* CommandComplete's tag ends with the row count, if any. */
                const char *tag = (const char *)msg + 5;
                const char *sp = strrchr(tag, ' ');
                if (sp && sp[1] >= '0' && sp[1] <= '9')
                    b->rows += strtoll(sp + 1, NULL, 10);
            } else {
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
                        if (!b->internal->error)
                            b->internal->error =
                                pgw_strdup(ef.message ? ef.message : "error without message");
                    } else if (!relay && !u) {
                        log_warning("server error while resetting a session: %s",
                                    ef.message ? ef.message : "?");
                    }
                }
            }
            if (relay)
                u->message(b->user, type, msg, 5 + (size_t)blen);
            free(msg);
            continue;
        }
        b->stream_left = blen;
        b->stream_swallow = !relay;
        if (relay) {
            u->stream(b->user, type, in, 5, true);
        } else {
            evbuffer_drain(in, 5);
        }
    }
    if (idle_now && b->state == PGW_BE_READY && !b->free_pending && b->rfq_len == 0) {
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
    bufferevent_enable(b->bev, EV_READ);
    backend_process(b);
}
