/*
 * client.c — one client connection: its life (accept, close, the socket's
 * callbacks), and everything after login; see client.h. The login itself
 * (startup, TLS, authentication, routing) is client_login.c.
 *
 * In READY the input is processed one message at a time (client_process):
 * Query and Parse are buffered whole and go through the statement pipeline;
 * all other messages are streamed to the backend session through the link
 * by header only. A session is taken from the pool on the first message
 * that needs one and is kept until the client leaves (session pooling), so
 * idle connections cost no backend and little memory; an idle plain-socket
 * client without a session parks, keeping only its struct, its names and
 * one read event (see "parking an idle client" at the end).
 *
 * Ordering rule: what pgwarden answers itself (a refusal, a pool timeout, a
 * cached answer, a notice) must come after the responses to everything
 * already sent to the backend; the link holds it until then (link_answer)
 * and processing pauses meanwhile. After a refused extended-protocol
 * message the client's messages are discarded up to Sync, which pgwarden
 * answers, exactly as PostgreSQL does after an error.
 *
 * What it must never do: forward a Query or Parse the pipeline has not
 * decided, or touch another worker's clients (a CancelRequest for one is
 * mailed to its worker).
 */
#include "client.h"
#include "client_int.h"

#include "audit.h"
#include "client_cache.h"
#include "codec.h"
#include "config.h"
#include "log.h"
#include "peers.h"
#include "pool.h"
#include "schema.h"
#include "snapshot.h"
#include "stats.h"
#include "worker.h"
#include "worker_in.h"
#include "worker_out.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define LOGIN_TIMEOUT_S 60

static void client_process(PgwClient *c);
static void skip_message(PgwClient *c, size_t whole, char type);
static void login_timeout_cb(evutil_socket_t fd, short what, void *arg);
static void arm_idle_timeout(PgwClient *c);
static void client_read_cb(struct bufferevent *bev, void *arg);
static void client_reads(PgwClient *c, bool on);
static void client_write_cb(struct bufferevent *bev, void *arg);
static void client_event_cb(struct bufferevent *bev, short what, void *arg);
static void client_unpark(PgwClient *c);
static struct event *client_wake(PgwClient *c);
static void client_consider_park(PgwClient *c);

/* ---------- the admin console, supplied by the program ---------- */

static void no_admin_execute(const char *sql, PgwBuf *out)
{
    codec_error(out, "ERROR", SQLSTATE_FEATURE_NOT_SUPPORTED,
                "pgwarden: the admin console is not available", NULL, NULL);
}

static void no_admin_params(PgwBuf *out)
{
}

static const PgwAdminConsole no_admin = {no_admin_execute, no_admin_params, NULL};
static const PgwAdminConsole *admin_console = &no_admin;

void client_set_admin_console(const PgwAdminConsole *console)
{
    admin_console = console ? console : &no_admin;
}

const PgwAdminConsole *client_admin(void)
{
    return admin_console;
}

/* ---------- small helpers ---------- */

/* Formatted on each call into this thread's buffer (valid until the next
 * call: one per log line), so that an idle client keeps no copy of it. */
const char *client_ident(const PgwClient *c)
{
    static __thread char text[256];
    if (!c->user)
        return c->addr;
    if (c->tenant || c->admin)
        snprintf(text, sizeof text, "%s/%s@%s", c->user, c->admin ? PGW_ADMIN_DB : c->tenant,
                 c->addr);
    else
        snprintf(text, sizeof text, "%s@%s", c->user, c->addr);
    return text;
}

void client_write(PgwClient *c, const PgwBuf *b)
{
    client_unpark(c);
    if (b->len)
        bufferevent_write(c->bev, b->data, b->len);
}

/* What SHOW CLIENTS shows for this client (published, see worker.h). */
static void publish_state(PgwClient *c)
{
    static const PgwConnState by_state[] = {
        [CS_STARTUP] = PGW_CONN_STARTUP,     [CS_AUTH_MD5] = PGW_CONN_AUTH,
        [CS_AUTH_SASL_INIT] = PGW_CONN_AUTH, [CS_AUTH_SASL_CONT] = PGW_CONN_AUTH,
        [CS_LOGIN_WAIT] = PGW_CONN_LOGIN,    [CS_READY] = PGW_CONN_IDLE,
    };
    PgwConnState st = by_state[c->state];
    if (c->state == CS_READY && (c->stmt || client_cache_busy(c)))
        st = PGW_CONN_ACTIVE;
    if (link_waiting(&c->link))
        st = PGW_CONN_WAITING;
    worker_publish_state(c->w, c->pid, st);
}

void client_abort(PgwClient *c, const char *why)
{
    if (c->closing)
        return;
    log_info("%s: closing: %s", client_ident(c), why);
    client_unpark(c);
    c->closing = true;
    client_reads(c, false);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        client_close(c, NULL);
}

void client_fatal(PgwClient *c, const char *sqlstate, const char *message, const char *hint)
{
    if (c->closing)
        return;
    log_info("%s: closing: %s", client_ident(c), message);
    client_unpark(c);
    PgwBuf b;
    buf_init(&b);
    codec_error(&b, "FATAL", sqlstate, message, NULL, hint);
    client_write(c, &b);
    buf_free(&b);
    c->closing = true;
    client_reads(c, false);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        client_close(c, NULL);
}

/* ---------- accept and close ---------- */

/* Reading the client: worker_in on a plain socket, libevent under TLS. */
static void client_in_data(void *arg)
{
    client_process(arg);
}

static void client_in_end(void *arg, short what)
{
    PgwClient *c = arg;
    client_event_cb(c->bev, what, c);
}

static void client_reads(PgwClient *c, bool on)
{
    worker_in_reads(c->in, c->bev, on);
}

static void client_read_mark(PgwClient *c, size_t high)
{
    if (c->in)
        worker_in_set_high(c->in, high);
    else
        bufferevent_setwatermark(c->bev, EV_READ, 0, high);
}

/* A plain socket's reader, for a new bufferevent on it. */
static void client_new_reader(PgwClient *c)
{
    c->in = worker_in_new(c->bev, client_in_data, client_in_end, c);
}

void client_drop_reader(PgwClient *c)
{
    worker_in_free(c->in);
    c->in = NULL;
}

void client_watch(PgwClient *c)
{
    bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
    client_read_mark(c, CLIENT_IN_HIGH);
    client_reads(c, true);
    bufferevent_enable(c->bev, EV_WRITE);
}

void client_accept(PgwWorker *w, evutil_socket_t fd, const struct sockaddr *addr, int addrlen)
{
    PgwClient *c = pgw_calloc(1, CLIENT_WAKE_OFFSET + event_get_struct_event_size());
    c->w = w;
    c->fd = fd;
    c->state = CS_STARTUP;
    buf_init(&c->cur);
    char text[64];
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)addr;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(text, sizeof text, "%s:%d", ip, ntohs(in->sin_port));
    } else if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)addr;
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(text, sizeof text, "[%s]:%d", ip, ntohs(in6->sin6_port));
    } else {
        snprintf(text, sizeof text, "unix");
    }
    c->addr = pgw_strdup(text);
    if (addr->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    c->pid = worker_register(w, c, &c->serial);
    worker_publish_names(w, c->pid, NULL, NULL, c->addr, false);
    STATS_ADD(clients_active, 1);
    if (RAND_bytes((unsigned char *)&c->key, sizeof c->key) != 1)
        c->key = (uint32_t)random();
    PgwSnapshot *snap = snapshot_acquire();
    c->key = peers_cancel_key(snap->cfg, c->key); /* [peers]: whose client this is */
    snapshot_release(snap);
    c->bev = bufferevent_socket_new(worker_base(w), fd, 0);
    client_new_reader(c);
    client_watch(c);
    /* Like authentication_timeout: a connection must log in within a minute. */
    c->timer = evtimer_new(worker_base(w), login_timeout_cb, c);
    struct timeval tv = {LOGIN_TIMEOUT_S, 0};
    evtimer_add(c->timer, &tv);
    (void)addrlen;
}

/* The one place a client goes away. Its backend goes back to the pool when
 * it is idle and clean, and is discarded when it was mid-statement. */
void client_close(PgwClient *c, const char *why)
{
    if (why)
        log_info("%s: disconnected: %s", client_ident(c), why);
    if (c->stmt) {
        stmt_abort(c->stmt);
        c->stmt = NULL;
    }
    if (c->result) {
        stmt_result_free(c->result);
        free(c->result);
    }
    client_cache_free(c);
    link_close(&c->link);
    if (c->timer)
        event_free(c->timer);
    worker_unregister(c->w, c->pid);
    STATS_SUB(clients_active, 1);
    worker_out_free(c->out);
    if (c->has_wake) {
        if (c->parked)
            STATS_SUB(clients_parked, 1);
        event_del(client_wake(c)); /* off the epoll set (parked) before the socket closes */
    }
    /* Off the epoll before the socket closes: freed from inside its own
     * callback, a bufferevent deletes that event only later (see
     * backend_detach), when the number may be another worker's socket. */
    client_drop_reader(c);
    if (c->bev) {
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        bufferevent_free(c->bev);
    }
    if (c->fd >= 0)
        evutil_closesocket(c->fd);
    client_login_free(c->login);
    stmt_session_free(c->hook_state);
    buf_free(&c->cur);
    if (c->resume_ev)
        event_free(c->resume_ev);
    free(c->user); /* with tenant and addr, once they are joined */
    if (!c->names_joined) {
        free(c->tenant);
        free(c->addr);
    }
    free(c);
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    PgwClient *c = arg;
    if (what & BEV_EVENT_EOF)
        client_close(c, c->state == CS_READY ? NULL : "connection closed during login");
    else if (what & BEV_EVENT_ERROR) {
        char why[128];
        snprintf(why, sizeof why, "connection error: %s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        client_close(c, why);
    }
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
    PgwClient *c = arg;
    if (c->closing) {
        client_close(c, NULL);
        return;
    }
    PgwWorker *w = c->w;
    uint32_t pid = c->pid;
    uint64_t serial = c->serial;
    link_client_drained(&c->link); /* may resume processing, which may close c */
    if (worker_find(w, pid, serial) == c)
        client_consider_park(c);
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
    client_process(arg);
}

bool client_take_small_message(PgwClient *c, struct evbuffer *in, size_t max, char *type,
                               char **body, uint32_t *blen)
{
    uint8_t hdr[5];
    size_t avail = evbuffer_get_length(in);
    if (avail < 5)
        return false;
    evbuffer_copyout(in, hdr, 5);
    if (codec_header(hdr, max, type, blen) != 0) {
        client_fatal(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid message length", NULL);
        return false;
    }
    if (avail < 5 + (size_t)*blen)
        return false;
    *body = pgw_malloc(*blen + 1);
    evbuffer_drain(in, 5);
    evbuffer_remove(in, *body, *blen);
    (*body)[*blen] = 0;
    return true;
}

/* An error answering the message the client is on: for a simple Query it
 * ends with ReadyForQuery, for extended protocol the rest up to Sync is
 * skipped. */
static void client_error_for(PgwClient *c, char type, const char *sqlstate, const char *message,
                             const char *detail, const char *hint)
{
    PgwBuf b;
    buf_init(&b);
    codec_error(&b, "ERROR", sqlstate, message, detail, hint);
    bool simple = type == 'Q' || type == 'F';
    if (!simple)
        c->ext_skip = true;
    link_error(&c->link, &b, simple);
    buf_free(&b);
}

/* ---------- the link's callbacks ---------- */

static void link_resume(void *owner)
{
    client_process(owner);
}

static void link_idle(void *owner)
{
    PgwClient *c = owner;
    if (c->shutting_down && !c->stmt && !link_waiting(&c->link)) {
        client_fatal(c, SQLSTATE_ADMIN_SHUTDOWN,
                     "terminating connection because pgwarden is shutting down", NULL);
        return;
    }
    client_process(c);
}

static void link_acquired(void *owner)
{
    PgwClient *c = owner;
    if (c->state == CS_LOGIN_WAIT) {
        client_login_finish(c);
        if (c->closing)
            return;
    }
    client_process(c);
}

static void link_acquire_failed(void *owner, const char *sqlstate, const char *message)
{
    PgwClient *c = owner;
    if (c->state == CS_LOGIN_WAIT) {
        client_fatal(c, sqlstate, message, NULL);
        return;
    }
    char type = c->cur_type;
    if (c->result) {
        stmt_result_free(c->result);
        free(c->result);
        c->result = NULL;
        c->cur_type = 0;
        buf_reset(&c->cur);
    } else {
        /* The message that wanted a backend still waits in the input. A
         * Query is answered and dropped; anything else is skipped with the
         * rest up to Sync. A Sync itself never waits for a backend. */
        struct evbuffer *in = bufferevent_get_input(c->bev);
        uint8_t hdr[5];
        char t;
        uint32_t blen;
        type = 'B';
        if (evbuffer_copyout(in, hdr, 5) == 5 &&
            codec_header(hdr, PGW_MAX_MESSAGE_LEN, &t, &blen) == 0 && t == 'Q' &&
            evbuffer_get_length(in) >= 5 + (size_t)blen) {
            evbuffer_drain(in, 5 + (size_t)blen);
            type = 'Q';
        }
    }
    client_error_for(c, type, sqlstate, message, NULL, NULL);
    client_process(c);
}

static void link_lost(void *owner, const char *why, int how, bool skip_to_sync)
{
    PgwClient *c = owner;
    log_warning("%s: backend session lost: %s", client_ident(c), why);
    client_cache_lost(c, skip_to_sync);
    if (c->pass_left) {
        /* The rest of the message that was on its way is for nobody now. */
        skip_message(c, c->pass_left, 0);
        c->pass_left = 0;
    }
    if (how == PGW_LOSS_STREAM) {
        /* Half a message reached the client: end the stream there. */
        client_abort(c, "the server connection was lost in the middle of a message");
        return;
    }
    if (how == PGW_LOSS_TRANSACTION) {
        client_fatal(c, SQLSTATE_CONNECTION_FAILURE,
                     "pgwarden: the server connection was lost inside a transaction",
                     "The transaction is gone; reconnect and run it again.");
        return;
    }
    if (c->state == CS_LOGIN_WAIT) {
        client_fatal(c, SQLSTATE_CONNECTION_FAILURE, "pgwarden: the server connection was lost",
                     NULL);
        return;
    }
    if (skip_to_sync)
        c->ext_skip = true;
    client_process(c);
}

static void link_refused(void *owner, char type, const char *sqlstate, const char *message)
{
    client_error_for(owner, type, sqlstate, message, NULL, NULL);
}

const PgwLinkOps client_link_ops = {
    .resume = link_resume,
    .idle = link_idle,
    .acquired = link_acquired,
    .acquire_failed = link_acquire_failed,
    .lost = link_lost,
    .refused = link_refused,
};

/* ---------- the statement pipeline ---------- */

static void release_schema_ref(void *ref)
{
    pool_schema_release(ref);
}

/* pgwarden's own query on the client's backend session (ASK: schema,
 * EXPLAIN of generated SQL). NULL when the client holds no session. */
static void *stmt_query(void *owner, const char *sql, PgwStmtQueryDone done, void *arg)
{
    PgwClient *c = owner;
    return link_query(&c->link, sql, done, arg);
}

static void stmt_forget(void *owner, void *q)
{
    PgwClient *c = owner;
    link_forget(&c->link, q);
}

/* A notice while the statement is pending: after the responses to what the
 * client sent before it, before the statement's own. */
static void stmt_notice(void *owner, const PgwBuf *msg)
{
    PgwClient *c = owner;
    link_answer(&c->link, msg, false);
}

static const PgwStmtSessionOps client_stmt_ops = {
    .query = stmt_query,
    .forget = stmt_forget,
    .notice = stmt_notice,
};

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    client_process(arg);
}

void client_resume(PgwClient *c)
{
    if (c->in_process)
        return;
    if (!c->resume_ev)
        c->resume_ev = event_new(worker_base(c->w), -1, 0, resume_cb, c);
    event_active(c->resume_ev, EV_TIMEOUT, 0);
}

/* The pipeline decided. When that happens later (ASK), the caller may be
 * deep in a backend's read loop: processing resumes from the event loop
 * instead, never re-entering the client from there. */
static void stmt_done(void *arg, PgwStmtResult *res)
{
    PgwClient *c = arg;
    c->stmt = NULL;
    c->result = pgw_malloc(sizeof *res);
    *c->result = *res;
    client_resume(c);
}

void client_submit_statement(PgwClient *c)
{
    const uint8_t *body = c->cur.data + 5;
    size_t len = c->cur.len - 5;
    const char *sql;
    PgwParseMsg pm;
    if (c->cur_type == 'Q') {
        if (codec_parse_query(body, len, &sql) != 0) {
            client_fatal(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid Query message", NULL);
            return;
        }
    } else {
        if (codec_parse_parse(body, len, &pm) != 0) {
            client_fatal(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid Parse message", NULL);
            return;
        }
        sql = pm.query;
    }
    uint32_t *types = NULL;
    size_t ntypes = 0;
    if (c->cur_type == 'P' && pm.nparams) {
        ntypes = pm.nparams;
        types = pgw_malloc(ntypes * sizeof *types);
        for (size_t i = 0; i < ntypes; i++) {
            const uint8_t *p = pm.param_types_raw + 4 * i;
            types[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        }
    }
    PgwSchemaRef *schema = pool_schema_acquire(link_pool(&c->link));
    PgwStmtRequest req = {
        .snap = snapshot_acquire(),
        .base = worker_base(c->w),
        .user = c->user,
        .tenant = c->tenant,
        .client_addr = c->addr,
        .protocol = c->cur_type == 'Q' ? PGW_STMT_SIMPLE : PGW_STMT_PARSE,
        .sql = sql,
        .nparam_types = ntypes,
        .param_types = types,
        .schema = schema ? schema->schema : NULL,
        .schema_release = schema ? release_schema_ref : NULL,
        .schema_ref = schema,
        .session_state = &c->hook_state,
        .ops = &client_stmt_ops,
        .owner = c,
        .cache_verdict = client_cache_on(c),
        .redis = client_cache_redis(c),
    };
    c->idle_ms = req.snap->cfg->client_idle_timeout_ms; /* a reload applies from here on */
    PgwStmtHandle *h = stmt_submit(&req, stmt_done, c);
    snapshot_release(req.snap);
    free(types);
    if (!c->result)
        c->stmt = h;
}

/* Apply the pipeline's decision. Returns false when it must wait (for a
 * backend, or for notices to reach the client in order). */
static bool apply_result(PgwClient *c)
{
    PgwStmtResult *r = c->result;
    char type = c->cur_type;
    bool forward = r->action == PGW_STMT_FORWARD || r->action == PGW_STMT_REWRITE;
    if (forward && !link_acquire(&c->link))
        return !link_waiting(&c->link) && !c->closing; /* failed at once: go on */
    if (r->notices.len) {
        /* Before the statement's own responses, after everything earlier. */
        link_answer(&c->link, &r->notices, false);
        buf_reset(&r->notices);
        if (link_answer_pending(&c->link))
            return false; /* the link's idle() brings us back */
    }
    if (forward && c->cache) {
        /* The result cache may answer it, or capture its answer. */
        switch (client_cache_apply(c, r)) {
        case CLIENT_CACHE_WAIT:
            return false; /* client_cache_step brings us back */
        case CLIENT_CACHE_ANSWERED:
            goto done;
        case CLIENT_CACHE_SEND:
            break;
        }
    }
    if (r->action == PGW_STMT_REFUSE)
        STATS_ADD(statements_refused, 1);
    switch (r->action) {
    case PGW_STMT_FORWARD:
        link_send_statement(&c->link, type, &c->cur, r->audit);
        r->audit = NULL;
        break;
    case PGW_STMT_REWRITE: {
        PgwBuf m;
        buf_init(&m);
        if (type == 'Q') {
            codec_query(&m, r->sql);
        } else {
            PgwParseMsg pm;
            if (codec_parse_parse(c->cur.data + 5, c->cur.len - 5, &pm) == 0 && r->param_types) {
                /* Every parameter typed: the backend infers none (stmt.c). */
                uint8_t *raw = pgw_malloc(4 * r->nparam_types + 1);
                for (size_t i = 0; i < r->nparam_types; i++) {
                    uint32_t t = r->param_types[i];
                    raw[4 * i] = (uint8_t)(t >> 24);
                    raw[4 * i + 1] = (uint8_t)(t >> 16);
                    raw[4 * i + 2] = (uint8_t)(t >> 8);
                    raw[4 * i + 3] = (uint8_t)t;
                }
                codec_build_parse(&m, pm.name, r->sql, (uint16_t)r->nparam_types, raw);
                free(raw);
            } else if (codec_parse_parse(c->cur.data + 5, c->cur.len - 5, &pm) == 0) {
                codec_build_parse(&m, pm.name, r->sql, pm.nparams, pm.param_types_raw);
            }
        }
        link_send_statement(&c->link, type, &m, r->audit);
        r->audit = NULL;
        buf_free(&m);
        break;
    }
    case PGW_STMT_REFUSE:
        if (r->silent && type != 'Q')
            c->ext_skip = true; /* as the server would: nothing said, up to Sync */
        else
            client_error_for(c, type, r->sqlstate, r->message, r->detail, r->hint);
        break;
    case PGW_STMT_ANSWER:
        if (type == 'Q')
            link_answer(&c->link, &r->answer, true);
        else
            client_error_for(c, type, SQLSTATE_FEATURE_NOT_SUPPORTED,
                             "pgwarden: this statement cannot be prepared", NULL, NULL);
        break;
    }
    if (forward && c->cache)
        client_cache_sent(c, r);
    if (!forward) {
        audit_finish(r->audit, 0);
        r->audit = NULL;
    }
done:
    stmt_result_free(r);
    free(r);
    c->result = NULL;
    c->cur_type = 0;
    buf_reset(&c->cur);
    if (c->cur.cap > 65536)
        buf_free(&c->cur);
    return true;
}

/* ---------- READY: the message loop ---------- */

/* Which admin client a later answer is for (it may have gone meanwhile). */
typedef struct AdminLater {
    PgwWorker *w;
    uint32_t pid;
    uint64_t serial;
} AdminLater;

static void admin_later_done(void *arg, const PgwBuf *answer)
{
    AdminLater *al = arg;
    PgwClient *c = worker_find(al->w, al->pid, al->serial);
    free(al);
    if (!c || c->closing)
        return;
    PgwBuf out;
    buf_init(&out);
    buf_append(&out, answer->data, answer->len);
    codec_ready(&out, 'I');
    client_write(c, &out);
    buf_free(&out);
    c->admin_wait = false;
    client_resume(c);
}

/* The admin console: simple Query only, answered here. */
static bool admin_step(PgwClient *c, struct evbuffer *in)
{
    char type;
    uint32_t blen;
    char *body;
    if (c->admin_wait)
        return false; /* admin_later_done resumes */
    if (!client_take_small_message(c, in, PGW_MAX_STARTUP_LEN * 10, &type, &body, &blen))
        return false;
    PgwBuf out;
    buf_init(&out);
    bool go_on = true;
    switch (type) {
    case 'Q':
        if (admin_console->execute_later) {
            AdminLater *al = pgw_malloc(sizeof *al);
            al->w = c->w;
            al->pid = c->pid;
            al->serial = c->serial;
            c->admin_wait = true;
            if (admin_console->execute_later(c->w, body, admin_later_done, al)) {
                free(body);
                buf_free(&out);
                return !c->admin_wait; /* answered already, or later */
            }
            c->admin_wait = false;
            free(al);
        }
        admin_console->execute(body, &out);
        codec_ready(&out, 'I');
        break;
    case 'S':
        c->ext_skip = false;
        codec_ready(&out, 'I');
        break;
    case 'X':
        go_on = false;
        break;
    default:
        if (!c->ext_skip)
            codec_error(&out, "ERROR", SQLSTATE_FEATURE_NOT_SUPPORTED,
                        "pgwarden admin: only simple queries are supported", NULL, NULL);
        c->ext_skip = true;
    }
    client_write(c, &out);
    buf_free(&out);
    free(body);
    if (!go_on)
        client_close(c, NULL);
    return go_on;
}

/* Frontend messages PostgreSQL itself bounds to 10000 bytes (Sync, Flush,
 * Describe, Execute, Close, CopyDone, CopyFail, Terminate): anything longer
 * is a broken or hostile client. Query and Parse are bounded by
 * max_query_size, Bind, CopyData and FunctionCall by the protocol's 1 GB. */
#define SMALL_MESSAGE_LEN 10000u

static size_t message_limit(char type)
{
    switch (type) {
    case 'Q':
    case 'P':
    case 'B':
    case 'd':
    case 'F':
        return PGW_MAX_MESSAGE_LEN;
    default:
        return SMALL_MESSAGE_LEN;
    }
}

/* The Query or Parse that was too long has been discarded: refuse it. */
static void refuse_too_long(PgwClient *c, char type, size_t len)
{
    PgwSnapshot *s = snapshot_acquire();
    size_t max = s->cfg->max_query_size;
    snapshot_release(s);
    char msg[256];
    snprintf(msg, sizeof msg,
             "pgwarden: statement too long: the %s message is %zu bytes, max_query_size is %zu",
             type == 'Q' ? "Query" : "Parse", len, max);
    PgwAudit *a =
        audit_begin(c->user, c->tenant, c->addr, "sql", type == 'Q' ? "simple" : "extended", NULL);
    audit_set_decision(a, "refuse", NULL, "longer than max_query_size", "54000");
    audit_set_int(a, "bytes", (int64_t)len);
    audit_finish(a, 0);
    STATS_ADD(statements_refused, 1);
    client_error_for(c, type, "54000", msg, NULL,
                     "Send a shorter statement (e.g. bind values as parameters), or raise "
                     "max_query_size.");
}

/* Bytes of a message that pass through unheld. Returns false when the
 * input is used up. */
static bool pass_through(PgwClient *c, struct evbuffer *in)
{
    size_t avail = evbuffer_get_length(in);
    if (c->skip_left) {
        size_t n = avail < c->skip_left ? avail : c->skip_left;
        evbuffer_drain(in, n);
        c->skip_left -= (uint32_t)n;
        if (c->skip_left)
            return false;
        char type = c->skip_type;
        c->skip_type = 0;
        if (type == 'F')
            client_error_for(c, 'F', SQLSTATE_INSUFFICIENT_PRIVILEGE,
                             "pgwarden: the function call protocol is not allowed", NULL, NULL);
        else if (type)
            refuse_too_long(c, type, c->skip_len);
        return true;
    }
    size_t n = avail < c->pass_left ? avail : c->pass_left;
    if (!n)
        return false;
    link_forward(&c->link, in, n, c->pass_type, n == c->pass_left);
    c->pass_left -= (uint32_t)n;
    return true;
}

/* Discard the message at the front of the input as it arrives (whole
 * bytes), then refuse it as type (0: silently). */
static void skip_message(PgwClient *c, size_t whole, char type)
{
    c->skip_left = (uint32_t)whole;
    c->skip_len = (uint32_t)whole;
    c->skip_type = type;
}

/* Returns false when processing must pause. */
static bool ready_step(PgwClient *c, struct evbuffer *in)
{
    if (c->admin)
        return admin_step(c, in);
    if (c->stmt || link_answer_pending(&c->link) || link_waiting(&c->link))
        return false;
    if (client_cache_busy(c))
        return client_cache_step(c);
    if (c->result)
        return apply_result(c);
    if (link_input_congested(&c->link))
        return false; /* the link's resume() goes on when the server has taken most */
    if (c->skip_left || c->pass_left)
        return pass_through(c, in);
    if (link_output_congested(&c->link))
        return false; /* a client that does not read: its input waits (resume follows) */
    if (c->shutting_down && !link_busy(&c->link)) {
        client_fatal(c, SQLSTATE_ADMIN_SHUTDOWN,
                     "terminating connection because pgwarden is shutting down", NULL);
        return false;
    }
    size_t avail = evbuffer_get_length(in);
    uint8_t hdr[5];
    char type;
    uint32_t blen;
    if (avail < 5)
        return false;
    c->fresh = false; /* it has sent something: park only after a whole idle delay */
    evbuffer_copyout(in, hdr, 5);
    if (codec_header(hdr, message_limit((char)hdr[0]), &type, &blen) != 0) {
        client_fatal(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid message length", NULL);
        return false;
    }
    size_t whole = 5 + (size_t)blen;
    bool go_on;
    if (type != 'Q' && type != 'P' && client_cache_message(c, in, type, whole, &go_on))
        return go_on; /* a Bind, Describe and Execute the result cache may answer */
    bool held = false; /* must the message arrive whole before it is handled? */
    if (type == 'Q' || type == 'P') {
        if (c->ext_skip) {
            /* After an error, PostgreSQL discards everything up to Sync. */
            skip_message(c, whole, 0);
            return true;
        }
        PgwSnapshot *s = snapshot_acquire();
        size_t max = s->cfg->max_query_size;
        snapshot_release(s);
        if (whole > max) {
            skip_message(c, whole, type);
            return true;
        }
        held = true;
    }
    /* A held message bigger than the read high-water mark must still
     * arrive whole; the mark goes back down when it has been handled. */
    bool raise = held && whole > CLIENT_IN_HIGH;
    if (raise || c->read_mark_raised) {
        c->read_mark_raised = raise;
        client_read_mark(c, raise ? whole : CLIENT_IN_HIGH);
    }
    switch (type) {
    case 'Q':
    case 'P':
        if (avail < whole)
            return false;
        /* The policy needs the tenant's schema, which the pool learns from
         * a backend session; and a session-pooled client needs one anyway. */
        if (!link_acquire(&c->link))
            return !link_waiting(&c->link) && !c->closing;
        if (link_refresh_schema(&c->link))
            return false; /* a reload happened: the link's idle() resumes us */
        buf_reset(&c->cur);
        buf_reserve(&c->cur, whole + 1);
        evbuffer_remove(in, c->cur.data, whole);
        c->cur.len = whole;
        c->cur_type = type;
        if (type == 'Q' ? client_cache_query(c) : client_cache_parse(c))
            return !c->closing; /* looked up by its text, or settings read, first */
        client_submit_statement(c);
        return !c->closing;
    case 'X':
        client_close(c, NULL);
        return false;
    case 'S':
        if (avail < whole)
            return false;
        link_sync(&c->link, in, whole, c->ext_skip);
        c->ext_skip = false;
        return true;
    case 'F':
        skip_message(c, whole, 'F');
        return true;
    case 'H':
        if (c->ext_skip || !link_has_session(&c->link)) {
            skip_message(c, whole, 0);
            return true;
        }
        /* fall through */
    case 'B':
    case 'D':
    case 'C':
        if (type != 'H' && link_transaction_mode(&c->link) && !c->ext_skip) {
            /* They name statements, which the link translates. */
            size_t take = link_named_take(type, whole);
            if (avail < take)
                return false;
            if (!link_acquire(&c->link))
                return !link_waiting(&c->link) && !c->closing;
            size_t rest;
            if (link_named_message(&c->link, in, type, take, whole, &rest) != 0) {
                skip_message(c, whole, 0); /* refused: ops->refused answered it */
                return true;
            }
            if (rest) {
                c->pass_left = (uint32_t)rest;
                c->pass_type = type;
                return pass_through(c, in);
            }
            return true;
        }
        /* fall through */
    case 'E':
    case 'd':
    case 'c':
    case 'f':
        if (c->ext_skip) {
            skip_message(c, whole, 0);
            return true;
        }
        if (!link_acquire(&c->link))
            return !link_waiting(&c->link) && !c->closing;
        /* Streamed to the session as it arrives: a 500 MB Bind costs no
         * more memory than a small one. */
        c->pass_left = (uint32_t)whole;
        c->pass_type = type;
        return pass_through(c, in);
    default: {
        char msg[64];
        snprintf(msg, sizeof msg, "invalid frontend message type %d", (int)(unsigned char)type);
        client_fatal(c, SQLSTATE_PROTOCOL_VIOLATION, msg, NULL);
        return false;
    }
    }
}

static void client_process(PgwClient *c)
{
    if (c->in_process || c->closing)
        return;
    client_unpark(c);
    c->stirred = true;
    c->in_process = true;
    if (!c->out && !c->tls && c->state == CS_READY)
        c->out = worker_out_new(c->bev); /* logged in: the socket stays this bufferevent's */
    uint64_t serial = c->serial;
    PgwWorker *w = c->w;
    uint32_t pid = c->pid;
    for (;;) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        bool more = c->state == CS_READY ? ready_step(c, in) : client_login_step(c, in);
        /* The step may have closed (and freed) the client. */
        if (worker_find(w, pid, serial) != c)
            return;
        if (!more || c->closing)
            break;
    }
    c->in_process = false;
    if (c->state == CS_READY && !c->stmt && !c->result && !c->pass_left && !c->skip_left)
        link_quiet(&c->link); /* transaction pooling: between transactions, no session */
    publish_state(c);
    if (c->state == CS_READY && c->idle_ms > 0)
        arm_idle_timeout(c);
    client_consider_park(c);
}

/* ---------- cancel and shutdown ---------- */

static void client_cancel(PgwClient *c, uint32_t key)
{
    if (key != c->key)
        return;
    log_info("%s: cancel request", client_ident(c));
    STATS_ADD(cancels, 1);
    char type;
    if (client_cache_cancel(c, &type)) {
        /* It was waiting for an identical statement, or for its settings. */
        client_error_for(c, type, SQLSTATE_QUERY_CANCELED,
                         "canceling statement due to user request", NULL, NULL);
        client_process(c);
        return;
    }
    if (c->stmt) {
        stmt_abort(c->stmt);
        c->stmt = NULL;
        char type = c->cur_type;
        c->cur_type = 0;
        buf_reset(&c->cur);
        client_error_for(c, type, SQLSTATE_QUERY_CANCELED,
                         "canceling statement due to user request", NULL, NULL);
        client_process(c);
        return;
    }
    link_cancel(&c->link);
}

/* Mail from the worker that received a CancelRequest. */
static void cancel_mail(PgwWorker *w, void *arg)
{
    uint32_t *m = arg;
    PgwClient *c = worker_find(w, m[0], 0);
    if (c && c->state == CS_READY && !c->parked) /* a parked client runs nothing */
        client_cancel(c, m[1]);
    free(m);
}

void client_cancel_request(uint32_t pid, uint32_t key)
{
    PgwWorker *w = worker_for_id(pid);
    if (!w)
        return;
    uint32_t *msg = pgw_malloc(2 * sizeof *msg);
    msg[0] = pid;
    msg[1] = key;
    worker_post(w, cancel_mail, msg);
}

void client_shutdown(PgwClient *c, bool immediate)
{
    if (c->closing)
        return;
    c->shutting_down = true;
    bool busy = c->stmt || link_waiting(&c->link) || link_busy(&c->link);
    if (immediate || !busy || c->state != CS_READY)
        client_fatal(c, SQLSTATE_ADMIN_SHUTDOWN,
                     "terminating connection because pgwarden is shutting down", NULL);
}

/* client_idle_timeout: a client that has nothing running and has sent
 * nothing for that long is told so and closed (PostgreSQL's
 * idle_session_timeout answers the same way, 57P05). Every pass of
 * client_process re-arms the timer, so any message pushes it back. */
static bool client_idle(PgwClient *c)
{
    if (c->parked)
        return !c->closing; /* it parked idle, and any byte since unparks it */
    return !c->closing && !c->stmt && !c->result && !c->pass_left && !c->skip_left &&
           client_cache_idle(c) && !link_busy(&c->link) && !link_waiting(&c->link) &&
           !link_answer_pending(&c->link) &&
           evbuffer_get_length(bufferevent_get_input(c->bev)) == 0;
}

static void idle_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    PgwClient *c = arg;
    if (!client_idle(c))
        return; /* busy: re-armed when it is idle again */
    client_fatal(c, "57P05", "terminating connection due to idle-session timeout",
                 "client_idle_timeout closes connections that send nothing for that long.");
}

static void arm_idle_timeout(PgwClient *c)
{
    if (!c->timer)
        c->timer = evtimer_new(worker_base(c->w), idle_timeout_cb, c);
    struct timeval tv = {c->idle_ms / 1000, (c->idle_ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

static void login_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    PgwClient *c = arg;
    if (c->state == CS_READY)
        return;
    PgwWorker *w = c->w;
    uint32_t pid = c->pid;
    uint64_t serial = c->serial;
    client_fatal(c, SQLSTATE_CANNOT_CONNECT_NOW, "pgwarden: login timed out", NULL);
    /* A peer that does not read its FATAL must not hold the slot. */
    if (worker_find(w, pid, serial) == c)
        client_close(c, "login timed out");
}

/* ---------- parking an idle client ----------
 *
 * An idle plain-socket client needs nothing but its socket watched. Its
 * bufferevent (with two evbuffers, their callbacks and the chain an
 * evbuffer keeps after a read), the end-of-turn writer and the resume
 * event are most of what a client costs, so a client that stays idle
 * parks: they are freed and one bare read event (wake, in the client's own
 * allocation) watches the socket; on readability the client gets a new
 * bufferevent, which reads on the loop's next turn (the socket is
 * level-triggered: nothing is lost).
 *
 * Idle means more than "no statement": nothing buffered either way (a
 * half message in the input is not idle, and freeing it would lose it),
 * nothing owed to or by the link (link_parkable: no session, whose relay
 * writes at any time, asynchronous messages included; no wait for one; no
 * queued answer; no flow control armed on the bufferevent), no pending
 * resume, not closing or shutting down. A session-pooled client that once
 * linked a session keeps it and so never parks; in transaction mode a
 * client parks between transactions. TLS clients keep their bufferevent:
 * their buffers are the TLS stream's, and its state lives with it. The
 * admin console's few clients never park.
 *
 * When: at once after login while nothing has arrived (the hello written;
 * most pools' idle connections send nothing more for a long time);
 * otherwise once the client has been idle for PARK_DELAY_MS, so that a
 * busy client (in transaction mode idle between every transaction) does
 * not free and rebuild its buffers per statement. The same event is the
 * park timer while the client is awake and the read event while it is
 * parked.
 *
 * Event-loop rules: everything here runs on the client's worker (clients
 * never change workers; only backend sessions do). Parking adds the read
 * event before the bufferevent's own is disabled, and unparking enables
 * the new bufferevent's before the read event goes, so the socket never
 * leaves the epoll set (no epoll_ctl at all) and is never watched by a
 * freed event; the old bufferevent is disabled (off the epoll set) before
 * it is freed, as in client_close, because one freed from inside its own
 * callback is finalized later. Every entry point that may write to the
 * client (client_write, client_fatal, client_abort, client_process)
 * unparks first; a CancelRequest for a parked client has nothing to
 * cancel. */
#define PARK_DELAY_MS 1000

static struct event *client_wake(PgwClient *c)
{
    return (struct event *)((char *)c + CLIENT_WAKE_OFFSET);
}

static void park_timer_cb(evutil_socket_t fd, short what, void *arg);

static bool client_parkable(PgwClient *c)
{
    return c->has_wake && !c->parked && c->state == CS_READY && !c->tls && !c->admin &&
           !c->in_process && !c->shutting_down && !c->cur_type && !c->admin_wait &&
           client_idle(c) && link_parkable(&c->link) &&
           evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
           !(c->resume_ev && event_pending(c->resume_ev, EV_TIMEOUT, NULL));
}

static void unpark_cb(evutil_socket_t fd, short what, void *arg)
{
    /* The new bufferevent reads what woke us on the loop's next turn. */
    client_unpark(arg);
}

static void client_park(PgwClient *c)
{
    struct event_base *base = worker_base(c->w);
    event_del(client_wake(c));
    event_assign(client_wake(c), base, c->fd, EV_READ, unpark_cb, c);
    event_add(client_wake(c), NULL);
    worker_out_free(c->out);
    c->out = NULL;
    if (c->resume_ev) {
        event_free(c->resume_ev);
        c->resume_ev = NULL;
    }
    client_drop_reader(c);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    bufferevent_free(c->bev);
    c->bev = NULL;
    link_park(&c->link);
    buf_free(&c->cur);
    c->parked = true;
    c->fresh = false;
    STATS_ADD(clients_parked, 1);
}

static void client_unpark(PgwClient *c)
{
    if (!c->parked)
        return;
    struct event_base *base = worker_base(c->w);
    c->bev = bufferevent_socket_new(base, c->fd, 0);
    if (!c->bev) {
        fputs("pgwarden: out of memory\n", stderr);
        abort();
    }
    bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
    client_new_reader(c);
    client_read_mark(c, CLIENT_IN_HIGH);
    client_reads(c, true);
    c->out = worker_out_new(c->bev);
    link_unpark(&c->link, c->bev);
    event_del(client_wake(c));
    event_assign(client_wake(c), base, -1, 0, park_timer_cb, c);
    c->parked = false;
    c->stirred = true;
    STATS_SUB(clients_parked, 1);
}

static void arm_park_timer(PgwClient *c)
{
    struct timeval tv = {PARK_DELAY_MS / 1000, (PARK_DELAY_MS % 1000) * 1000};
    c->stirred = false;
    evtimer_add(client_wake(c), &tv);
}

static void park_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    PgwClient *c = arg;
    if (!client_parkable(c))
        return; /* busy: considered again once it is idle */
    if (c->stirred)
        arm_park_timer(c); /* it was busy meanwhile: idle for a whole delay first */
    else
        client_park(c);
}

static void client_consider_park(PgwClient *c)
{
    if (!client_parkable(c))
        return;
    if (c->fresh)
        client_park(c);
    else if (!event_pending(client_wake(c), EV_TIMEOUT, NULL))
        arm_park_timer(c);
}

void client_ready_to_park(PgwClient *c)
{
    if (c->tls || c->admin || c->fd < 0 || c->has_wake)
        return;
    c->has_wake = true;
    event_assign(client_wake(c), worker_base(c->w), -1, 0, park_timer_cb, c);
    c->fresh = true;
}
