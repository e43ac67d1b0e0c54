/*
 * client.c — one client connection, from the first byte to the last.
 *
 * Life of a client: STARTUP (SSLRequest/GSSENCRequest/CancelRequest or the
 * startup packet) → AUTH (trust, md5 or SCRAM against auth_file) → routing
 * (the user's tenants, dbname picks one) → LOGIN_WAIT only when the tenant's
 * pool has never seen a backend and so cannot yet tell the client its
 * ParameterStatus values → READY.
 *
 * In READY the input is processed one message at a time (client_process):
 * Query and Parse are buffered whole and go through the statement hook; all
 * other messages are streamed to the backend by header only. A backend
 * session is taken from the pool on the first message that needs one and is
 * kept until the client leaves (session pooling), so idle connections cost
 * no backend and little memory.
 *
 * Ordering rule: what pgwarden answers itself (a refusal, a pool timeout, a
 * cached answer) must come after the responses to everything already sent to
 * the backend. client_inject holds it until the backend's expected
 * ReadyForQuery queue is empty; if extended-protocol messages are unsynced, a
 * Sync whose ReadyForQuery is swallowed flushes them first. After a refused
 * extended-protocol message the client's messages are discarded up to Sync,
 * which pgwarden answers, exactly as PostgreSQL does after an error.
 */
#include "client.h"

#include "admin.h"
#include "audit.h"
#include "auth.h"
#include "backend.h"
#include "codec.h"
#include "config.h"
#include "log.h"
#include "policy_catalog.h" /* policy_setting_verdict for startup parameters */
#include "pool.h"
#include "schema.h"
#include "scram.h"
#include "server.h"
#include "stats.h"
#include "stmt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
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

/* Stop reading the backend when this much is waiting for the client; resume
 * at half of it. Bounded memory per client whatever the result size. */
#define CLIENT_OUT_HIGH (256 * 1024)
#define CLIENT_OUT_LOW (64 * 1024)
/* Stop reading a client while this much waits for its server (or in our
 * own input buffer): a client that pipelines without reading costs
 * bounded memory. */
#define BACKEND_OUT_HIGH (1024 * 1024)
#define CLIENT_IN_HIGH (1024 * 1024)
#define LOGIN_TIMEOUT_S 60

typedef enum {
    CS_STARTUP,
    CS_AUTH_MD5,
    CS_AUTH_SASL_INIT,
    CS_AUTH_SASL_CONT,
    CS_LOGIN_WAIT,
    CS_READY,
} ClientState;

/* Parameters a client may set in its startup packet that pgwarden applies
 * to the backend session with SET when it links one. */
static const char *const session_params[] = {
    "application_name",   "client_encoding", "DateStyle", "TimeZone",      "IntervalStyle",
    "extra_float_digits", "datestyle",       "timezone",  "intervalstyle",
};

/* What only the login needs; freed once the client is READY. */
typedef struct ClientLogin {
    PgwSnapshot *snap;
    PgwScram *scram;
    uint8_t md5_salt[4];
    char *dbname;
    size_t nparams;
    char *param_names[PGW_ARRAY_LEN(session_params)];
    char *param_values[PGW_ARRAY_LEN(session_params)];
} ClientLogin;

typedef struct AuditItem {
    PgwAudit *audit;
    struct AuditItem *next;
} AuditItem;

struct PgwClient {
    PgwWorker *w;
    struct bufferevent *bev;
    evutil_socket_t fd; /* -1 once a TLS bufferevent owns it */
    uint32_t pid, key;
    uint64_t serial;
    uint8_t state;
    bool tls;
    bool in_process; /* client_process is on the stack */
    bool waiting_backend;
    bool inject_pending; /* pending_out waits for the backend to drain */
    bool inject_ready; /* ... and is followed by a ReadyForQuery */
    bool ext_skip; /* discard until Sync after an extended-protocol error */
    bool shutting_down;
    bool closing; /* FATAL sent, closing once output is flushed */
    bool throttled; /* backend reading paused for our output */
    bool admin; /* connected to the admin console, not a tenant */
    bool input_paused; /* the server is not taking our writes: stop reading */
    bool read_mark_raised; /* the read high-water mark fits one big message */
    char cur_type; /* 'Q' or 'P' held in cur while the hook decides, else 0 */
    char *user;
    char *tenant;
    char *ident;
    PgwPool *pool;
    PgwBackend *be;
    PgwStmtHandle *stmt;
    PgwStmtResult *result; /* hook decided, not yet applied */
    PgwBuf cur;
    PgwBuf pending_out;
    PgwBuf deferred_err; /* a refusal inside a pipeline, sent before its Sync's ReadyForQuery */
    struct event *resume_ev; /* runs client_process later (see stmt_done) */
    int backend_pid; /* copy for SHOW CLIENTS, which runs on another thread */
    char *startup_sets; /* SET statements for the backend, applied on link */
    ClientLogin *login;
    struct event *timer;
    AuditItem *audit_head, *audit_tail; /* forwarded statements awaiting ReadyForQuery */
    void *hook_state; /* the statement hook's per-session state (stmt_session_free) */
    char addr[64];
};

static void client_process(PgwClient *c);
static void login_timeout_cb(evutil_socket_t fd, short what, void *arg);
static void client_close(PgwClient *c, const char *why);
static void client_read_cb(struct bufferevent *bev, void *arg);
static void client_write_cb(struct bufferevent *bev, void *arg);
static void client_event_cb(struct bufferevent *bev, short what, void *arg);

/* ---------- small helpers ---------- */

const char *client_ident(const PgwClient *c)
{
    return c->ident ? c->ident : c->addr;
}

uint64_t client_serial(const PgwClient *c)
{
    return c->serial;
}

uint32_t client_pid(const PgwClient *c)
{
    return c->pid;
}

PgwWorker *client_worker(const PgwClient *c)
{
    return c->w;
}

struct bufferevent *client_output(PgwClient *c)
{
    return c->bev;
}

static void client_write(PgwClient *c, const PgwBuf *b)
{
    if (b->len)
        bufferevent_write(c->bev, b->data, b->len);
}

static char tx_status(PgwClient *c)
{
    return c->be ? c->be->tx_status : 'I';
}

/* Send a FATAL and close once it is flushed. The one way a client is
 * refused at login or thrown out. */
static void client_fatal(PgwClient *c, const char *sqlstate, const char *message, const char *hint)
{
    if (c->closing)
        return;
    log_info("%s: closing: %s", client_ident(c), message);
    PgwBuf b;
    buf_init(&b);
    codec_error(&b, "FATAL", sqlstate, message, NULL, hint);
    client_write(c, &b);
    buf_free(&b);
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        client_close(c, NULL);
}

static void login_free(ClientLogin *l)
{
    if (!l)
        return;
    if (l->snap)
        snapshot_release(l->snap);
    scram_free(l->scram);
    free(l->dbname);
    for (size_t i = 0; i < l->nparams; i++) {
        free(l->param_names[i]);
        free(l->param_values[i]);
    }
    free(l);
}

/* ---------- accept and close ---------- */

void client_accept(PgwWorker *w, evutil_socket_t fd, const struct sockaddr *addr, int addrlen)
{
    PgwClient *c = pgw_calloc(1, sizeof *c);
    c->w = w;
    c->fd = fd;
    c->state = CS_STARTUP;
    buf_init(&c->cur);
    buf_init(&c->pending_out);
    buf_init(&c->deferred_err);
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)addr;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(c->addr, sizeof c->addr, "%s:%d", ip, ntohs(in->sin_port));
    } else if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)addr;
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(c->addr, sizeof c->addr, "[%s]:%d", ip, ntohs(in6->sin6_port));
    } else {
        snprintf(c->addr, sizeof c->addr, "unix");
    }
    if (addr->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    c->pid = worker_register_client(w, c, &c->serial);
    STATS_ADD(clients_active, 1);
    if (RAND_bytes((unsigned char *)&c->key, sizeof c->key) != 1)
        c->key = (uint32_t)random();
    c->bev = bufferevent_socket_new(worker_base(w), fd, 0);
    bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, CLIENT_IN_HIGH);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    /* Like authentication_timeout: a connection must log in within a minute. */
    c->timer = evtimer_new(worker_base(w), login_timeout_cb, c);
    struct timeval tv = {LOGIN_TIMEOUT_S, 0};
    evtimer_add(c->timer, &tv);
    (void)addrlen;
}

/* The one place a client goes away. Its backend goes back to the pool when
 * it is idle and clean, and is discarded when it was mid-statement. */
static void client_close(PgwClient *c, const char *why)
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
    if (c->waiting_backend && c->pool)
        pool_cancel_wait(c->pool, c->pid, c->serial);
    if (c->be) {
        PgwBackend *b = c->be;
        c->be = NULL;
        b->client = NULL;
        if (b->state == PGW_BE_READY && !backend_busy(b) && b->stream_left == 0 && !b->unsynced)
            pool_release(c->pool, b);
        else
            pool_discard(c->pool, b);
    }
    if (c->timer)
        event_free(c->timer);
    while (c->audit_head) {
        AuditItem *a = c->audit_head;
        c->audit_head = a->next;
        audit_set_str(a->audit, "outcome", "client disconnected");
        audit_finish(a->audit, -1);
        free(a);
    }
    worker_unregister_client(c->w, c->pid);
    STATS_SUB(clients_active, 1);
    bufferevent_free(c->bev);
    if (c->fd >= 0)
        evutil_closesocket(c->fd);
    login_free(c->login);
    stmt_session_free(c->hook_state);
    buf_free(&c->cur);
    buf_free(&c->pending_out);
    buf_free(&c->deferred_err);
    if (c->resume_ev)
        event_free(c->resume_ev);
    free(c->startup_sets);
    free(c->user);
    free(c->tenant);
    free(c->ident);
    PgwWorker *w = c->w;
    free(c);
    server_client_gone(w);
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
    if (c->throttled) {
        c->throttled = false;
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        if (c->be)
            backend_resume(c->be);
    }
}

void client_throttle_backend(PgwClient *c)
{
    if (c->throttled || !c->be || !c->be->bev)
        return;
    c->throttled = true;
    bufferevent_disable(c->be->bev, EV_READ);
    bufferevent_setwatermark(c->bev, EV_WRITE, CLIENT_OUT_LOW, 0);
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
    client_process(arg);
}

/* ---------- login ---------- */

static void send_auth(PgwClient *c, uint32_t code, const void *data, size_t len)
{
    PgwBuf b;
    buf_init(&b);
    codec_auth(&b, code, data, len);
    client_write(c, &b);
    buf_free(&b);
}

/* SET statements for the client's startup parameters, quoted safely. */
static char *build_startup_sets(ClientLogin *l)
{
    if (!l->nparams)
        return NULL;
    PgwBuf b;
    buf_init(&b);
    for (size_t i = 0; i < l->nparams; i++) {
        /* E'' with quotes and backslashes escaped reads the same whatever
         * standard_conforming_strings the server runs with. */
        buf_printf(&b, "SET %s = E'", l->param_names[i]);
        for (const char *p = l->param_values[i]; *p; p++) {
            if (*p == '\'' || *p == '\\')
                buf_append_byte(&b, (uint8_t)*p);
            buf_append_byte(&b, (uint8_t)*p);
        }
        buf_append_str(&b, "';");
    }
    return buf_steal_str(&b);
}

static void finish_login(PgwClient *c)
{
    ClientLogin *l = c->login;
    PgwBuf b;
    buf_init(&b);
    if (!pool_params(c->pool, &b, l->nparams, (const char *const *)l->param_names,
                     (const char *const *)l->param_values)) {
        buf_free(&b);
        client_fatal(c, SQLSTATE_INTERNAL_ERROR, "pgwarden: backend parameters unknown", NULL);
        return;
    }
    codec_backend_key(&b, c->pid, c->key);
    codec_ready(&b, 'I');
    client_write(c, &b);
    buf_free(&b);
    c->startup_sets = build_startup_sets(l);
    if (c->startup_sets && c->be) {
        backend_send_internal(c->be, c->startup_sets);
        free(c->startup_sets);
        c->startup_sets = NULL;
    }
    login_free(l);
    c->login = NULL;
    c->state = CS_READY;
    if (c->timer && !c->waiting_backend) {
        event_free(c->timer);
        c->timer = NULL;
    }
    STATS_ADD(logins, 1);
    log_info("%s: login", client_ident(c));
}

static bool acquire_backend(PgwClient *c);

/* Authentication succeeded: pick the tenant, then say hello. */
static void login_authenticated(PgwClient *c)
{
    ClientLogin *l = c->login;
    PgwConfig *cfg = l->snap->cfg;
    const PgwUserMap *um = config_user(cfg, c->user);
    const char *tenant = NULL;
    for (size_t i = 0; um && i < um->ntenants; i++)
        if (strcmp(um->tenants[i], l->dbname) == 0)
            tenant = um->tenants[i];
    send_auth(c, 0, NULL, 0);
    if (c->admin) {
        PgwBuf b;
        buf_init(&b);
        admin_login_params(&b);
        codec_backend_key(&b, c->pid, c->key);
        codec_ready(&b, 'I');
        client_write(c, &b);
        buf_free(&b);
        free(c->ident);
        size_t n = strlen(c->user) + strlen(c->addr) + 16;
        c->ident = pgw_malloc(n);
        snprintf(c->ident, n, "%s/%s@%s", c->user, PGW_ADMIN_DB, c->addr);
        login_free(c->login);
        c->login = NULL;
        c->state = CS_READY;
        if (c->timer) {
            event_free(c->timer);
            c->timer = NULL;
        }
        STATS_ADD(logins, 1);
        log_info("%s: admin login", client_ident(c));
        return;
    }
    if (!tenant || !config_tenant(cfg, tenant)) {
        STATS_ADD(login_failures, 1);
        char msg[256];
        snprintf(msg, sizeof msg, "database \"%s\" does not exist", l->dbname);
        client_fatal(c, SQLSTATE_INVALID_CATALOG, msg,
                     "The database name selects one of the tenants this user is mapped to.");
        return;
    }
    c->tenant = pgw_strdup(tenant);
    size_t n = strlen(c->user) + strlen(c->tenant) + strlen(c->addr) + 3;
    c->ident = pgw_malloc(n);
    snprintf(c->ident, n, "%s/%s@%s", c->user, c->tenant, c->addr);
    c->pool = pool_get(c->tenant);
    PgwBuf probe;
    buf_init(&probe);
    bool known = pool_params(c->pool, &probe, 0, NULL, NULL);
    buf_free(&probe);
    if (known) {
        finish_login(c);
        return;
    }
    /* First client of this tenant: a backend must tell us its parameters. */
    c->state = CS_LOGIN_WAIT;
    if (acquire_backend(c))
        finish_login(c);
    /* else: client_backend_ready or client_backend_failed finishes it */
}

static void auth_failed(PgwClient *c)
{
    STATS_ADD(login_failures, 1);
    char msg[256];
    snprintf(msg, sizeof msg, "password authentication failed for user \"%s\"", c->user);
    client_fatal(c, SQLSTATE_INVALID_PASSWORD, msg, NULL);
}

static const char *user_secret(PgwClient *c)
{
    PgwSnapshot *s = c->login->snap;
    return s->users ? auth_userlist_get(s->users, c->user) : NULL;
}

static void start_scram(PgwClient *c)
{
    static const char mechs[] = "SCRAM-SHA-256\0";
    c->login->scram = scram_server_new(c->user, user_secret(c), NULL);
    c->state = CS_AUTH_SASL_INIT;
    send_auth(c, 10, mechs, sizeof mechs);
}

static void handle_startup(PgwClient *c, const uint8_t *body, size_t len)
{
    PgwStartup st;
    if (codec_parse_startup(body, len, &st) != 0) {
        client_fatal(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid startup packet", NULL);
        return;
    }
    PgwSnapshot *snap = snapshot_acquire();
    PgwConfig *cfg = snap->cfg;
    switch (st.kind) {
    case PGW_STARTUP_CANCEL: {
        PgwWorker *w = server_worker_for_pid(st.cancel_pid);
        if (w) {
            uint32_t *msg = pgw_malloc(2 * sizeof *msg);
            msg[0] = st.cancel_pid;
            msg[1] = st.cancel_key;
            extern void client_cancel_mail(PgwWorker * w, void *arg);
            worker_post(w, client_cancel_mail, msg);
        }
        snapshot_release(snap);
        client_close(c, NULL);
        return;
    }
    case PGW_STARTUP_SSL: {
        bool can = snap->ssl_ctx && cfg->client_tls != PGW_TLS_DISABLE && !c->tls;
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
            /* Bytes sent before the TLS handshake would be trusted as if
             * encrypted; refuse them (CVE-2021-23214's lesson). */
            snapshot_release(snap);
            client_fatal(c, SQLSTATE_PROTOCOL_VIOLATION,
                         "received unencrypted data after SSL request", NULL);
            return;
        }
        char answer = can ? 'S' : 'N';
        if (send(c->fd, &answer, 1, MSG_NOSIGNAL) != 1) {
            snapshot_release(snap);
            client_close(c, "cannot answer SSLRequest");
            return;
        }
        if (can) {
            SSL *ssl = SSL_new(snap->ssl_ctx);
            bufferevent_free(c->bev);
            c->bev = bufferevent_openssl_socket_new(
                worker_base(c->w), c->fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
            c->fd = -1;
            c->tls = true;
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
            bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
            bufferevent_setwatermark(c->bev, EV_READ, 0, CLIENT_IN_HIGH);
            bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        }
        snapshot_release(snap);
        return;
    }
    case PGW_STARTUP_GSSENC: {
        char answer = 'N';
        snapshot_release(snap);
        if (send(c->fd >= 0 ? c->fd : bufferevent_getfd(c->bev), &answer, 1, MSG_NOSIGNAL) != 1)
            client_close(c, "cannot answer GSSENCRequest");
        return;
    }
    case PGW_STARTUP_NORMAL:
        break;
    }

    ClientLogin *l = pgw_calloc(1, sizeof *l);
    l->snap = snap;
    c->login = l;
    if ((st.protocol >> 16) != 3) {
        client_fatal(c, SQLSTATE_FEATURE_NOT_SUPPORTED, "unsupported frontend protocol", NULL);
        return;
    }
    const char *unknown[PGW_MAX_STARTUP_PARAMS];
    size_t nunknown = 0;
    for (size_t i = 0; i < st.nparams; i++) {
        if (strncmp(st.names[i], "_pq_.", 5) == 0) {
            unknown[nunknown++] = st.names[i];
            continue;
        }
        for (size_t k = 0; k < PGW_ARRAY_LEN(session_params); k++) {
            if (strcmp(st.names[i], session_params[k]) == 0 &&
                policy_setting_verdict(cfg, st.names[i], st.values[i]) != PGW_SETTING_OK) {
                /* The same rule as SET: a startup packet is no way around it. */
                char msg[256];
                snprintf(msg, sizeof msg, "pgwarden: %s = \"%.64s\" is not allowed", st.names[i],
                         st.values[i]);
                client_fatal(c, "22023", msg, NULL);
                return;
            }
            if (strcmp(st.names[i], session_params[k]) == 0 &&
                l->nparams < PGW_ARRAY_LEN(session_params)) {
                l->param_names[l->nparams] = pgw_strdup(st.names[i]);
                l->param_values[l->nparams++] = pgw_strdup(st.values[i]);
            }
        }
    }
    if ((st.protocol & 0xffff) != 0 || nunknown) {
        PgwBuf b;
        buf_init(&b);
        codec_negotiate_protocol(&b, 0, nunknown, unknown);
        client_write(c, &b);
        buf_free(&b);
    }
    const char *user = codec_startup_param(&st, "user");
    if (!user || !*user) {
        client_fatal(c, SQLSTATE_INVALID_AUTHORIZATION,
                     "no PostgreSQL user name specified in startup packet", NULL);
        return;
    }
    c->user = pgw_strdup(user);
    const char *db = codec_startup_param(&st, "database");
    l->dbname = pgw_strdup(db && *db ? db : user);
    size_t n = strlen(c->user) + strlen(c->addr) + 2;
    c->ident = pgw_malloc(n);
    snprintf(c->ident, n, "%s@%s", c->user, c->addr);

    if (cfg->client_tls == PGW_TLS_REQUIRE && !c->tls) {
        client_fatal(c, SQLSTATE_INVALID_AUTHORIZATION,
                     "pgwarden: connections without SSL are refused (client_tls = require)",
                     "Connect with sslmode=require.");
        return;
    }
    if (strcmp(l->dbname, PGW_ADMIN_DB) == 0) {
        if (!config_is_admin(cfg, c->user)) {
            char msg[256];
            snprintf(msg, sizeof msg, "pgwarden: user \"%s\" may not use the admin console",
                     c->user);
            STATS_ADD(login_failures, 1);
            client_fatal(c, SQLSTATE_INVALID_AUTHORIZATION, msg,
                         "Admins are listed in admin_users.");
            return;
        }
        c->admin = true;
    } else if (!config_user(cfg, c->user)) {
        STATS_ADD(login_failures, 1);
        char msg[256];
        snprintf(msg, sizeof msg, "pgwarden: no tenant is configured for user \"%s\"", c->user);
        client_fatal(c, SQLSTATE_INVALID_AUTHORIZATION, msg, NULL);
        return;
    }
    const char *secret = user_secret(c);
    switch (cfg->auth_type) {
    case PGW_AUTH_TRUST:
        login_authenticated(c);
        return;
    case PGW_AUTH_MD5:
        /* Like PostgreSQL: a SCRAM verifier cannot answer md5, so use SCRAM. */
        if (secret && auth_secret_kind(secret) == PGW_SECRET_SCRAM) {
            start_scram(c);
            return;
        }
        auth_md5_salt(l->md5_salt);
        c->state = CS_AUTH_MD5;
        send_auth(c, 5, l->md5_salt, 4);
        return;
    case PGW_AUTH_SCRAM:
        start_scram(c);
        return;
    }
}

static void handle_auth_message(PgwClient *c, const uint8_t *body, size_t len)
{
    ClientLogin *l = c->login;
    char err[256];
    switch (c->state) {
    case CS_AUTH_MD5: {
        const char *pw;
        if (codec_parse_password(body, len, &pw) != 0) {
            client_fatal(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid password packet", NULL);
            return;
        }
        const char *secret = user_secret(c);
        if (!secret || !auth_md5_check(secret, c->user, l->md5_salt, pw)) {
            auth_failed(c);
            return;
        }
        login_authenticated(c);
        return;
    }
    case CS_AUTH_SASL_INIT: {
        const char *mech;
        const uint8_t *data;
        size_t dlen;
        char *out = NULL;
        size_t outlen = 0;
        if (codec_parse_sasl_initial(body, len, &mech, &data, &dlen) != 0 ||
            strcmp(mech, "SCRAM-SHA-256") != 0) {
            client_fatal(c, SQLSTATE_PROTOCOL_VIOLATION,
                         "client selected an invalid SASL authentication mechanism", NULL);
            return;
        }
        if (scram_server_first(l->scram, data, dlen, &out, &outlen, err, sizeof err) != 0) {
            client_fatal(c, SQLSTATE_PROTOCOL_VIOLATION, err, NULL);
            return;
        }
        send_auth(c, 11, out, outlen);
        free(out);
        c->state = CS_AUTH_SASL_CONT;
        return;
    }
    case CS_AUTH_SASL_CONT: {
        char *out = NULL;
        size_t outlen = 0;
        if (scram_server_final(l->scram, body, len, &out, &outlen, err, sizeof err) != 0) {
            free(out);
            if (scram_auth_failed(l->scram))
                auth_failed(c);
            else
                client_fatal(c, SQLSTATE_PROTOCOL_VIOLATION, err, NULL);
            return;
        }
        send_auth(c, 12, out, outlen);
        free(out);
        login_authenticated(c);
        return;
    }
    default:
        client_fatal(c, SQLSTATE_PROTOCOL_VIOLATION, "unexpected message during login", NULL);
    }
}

/* Take one whole typed message of at most max bytes from the input, as a
 * NUL-terminated malloc'd body. False when it has not all arrived, or when
 * its length is invalid (the client is then being closed). */
static bool take_small_message(PgwClient *c, struct evbuffer *in, size_t max, char *type,
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

/* One step of the login. Returns false when more input is needed. */
static bool login_step(PgwClient *c, struct evbuffer *in)
{
    size_t avail = evbuffer_get_length(in);
    if (c->state == CS_LOGIN_WAIT)
        return false;
    if (c->state == CS_STARTUP) {
        uint8_t lenb[4];
        if (avail < 4)
            return false;
        evbuffer_copyout(in, lenb, 4);
        uint32_t len = ntohl(*(uint32_t *)(void *)lenb);
        if (len < 8 || len > PGW_MAX_STARTUP_LEN) {
            client_fatal(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid length of startup packet", NULL);
            return false;
        }
        if (avail < len)
            return false;
        uint8_t *pkt = pgw_malloc(len);
        evbuffer_remove(in, pkt, len);
        handle_startup(c, pkt + 4, len - 4);
        free(pkt);
        return true;
    }
    char type;
    uint32_t blen;
    char *body;
    if (!take_small_message(c, in, PGW_MAX_STARTUP_LEN, &type, &body, &blen))
        return false;
    if (type != 'p') {
        free(body);
        client_fatal(c, SQLSTATE_PROTOCOL_VIOLATION, "expected a password message", NULL);
        return false;
    }
    handle_auth_message(c, (const uint8_t *)body, blen);
    free(body);
    return true;
}

/* ---------- backend hand-over ---------- */

static void link_backend(PgwClient *c, PgwBackend *b)
{
    c->be = b;
    b->client = c;
    __atomic_store_n(&c->backend_pid, b->pid, __ATOMIC_RELAXED);
    if (c->startup_sets) {
        backend_send_internal(b, c->startup_sets);
        free(c->startup_sets);
        c->startup_sets = NULL;
    }
}

static void wait_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    PgwClient *c = arg;
    if (!c->waiting_backend)
        return;
    pool_cancel_wait(c->pool, c->pid, c->serial);
    PgwSnapshot *s = snapshot_acquire();
    char msg[256];
    snprintf(msg, sizeof msg,
             "pgwarden: no backend session for tenant \"%s\" became free within %d ms", c->tenant,
             s->cfg->pool_timeout_ms);
    snapshot_release(s);
    client_backend_failed(c, SQLSTATE_TOO_MANY_CONNECTIONS, msg);
}

/* Make sure the client holds a backend. Returns true when it does now;
 * false when it waits (client_backend_ready/failed will follow). */
static bool acquire_backend(PgwClient *c)
{
    if (c->be)
        return true;
    if (c->waiting_backend)
        return false;
    PgwBackend *b = NULL;
    c->waiting_backend = true;
    if (pool_acquire(c->pool, c, &b) == PGW_ACQUIRE_NOW) {
        c->waiting_backend = false;
        link_backend(c, b);
        return true;
    }
    if (!c->waiting_backend)
        return false; /* failed at once; client_backend_failed has answered */
    PgwSnapshot *s = snapshot_acquire();
    int ms = s->cfg->pool_timeout_ms;
    snapshot_release(s);
    if (c->timer)
        event_free(c->timer); /* the login timer, during LOGIN_WAIT */
    c->timer = evtimer_new(worker_base(c->w), wait_timeout_cb, c);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
    return false;
}

bool client_is_waiting(const PgwClient *c)
{
    return c->waiting_backend;
}

void client_backend_ready(PgwClient *c, PgwBackend *b)
{
    c->waiting_backend = false;
    if (c->timer)
        evtimer_del(c->timer);
    link_backend(c, b);
    if (c->state == CS_LOGIN_WAIT) {
        finish_login(c);
        if (c->closing)
            return;
    }
    client_process(c);
}

/* ---------- injection: pgwarden's own answers, in protocol order ---------- */

static void flush_injection(PgwClient *c)
{
    client_write(c, &c->pending_out);
    buf_reset(&c->pending_out);
    if (c->inject_ready) {
        PgwBuf b;
        buf_init(&b);
        codec_ready(&b, tx_status(c));
        client_write(c, &b);
        buf_free(&b);
    }
    c->inject_pending = false;
    c->inject_ready = false;
}

/* Queue msgs (whole messages) for the client, followed by ReadyForQuery when
 * with_ready; sent at once when the backend has nothing outstanding. */
static void client_inject(PgwClient *c, const PgwBuf *msgs, bool with_ready)
{
    buf_append(&c->pending_out, msgs->data, msgs->len);
    /* A ReadyForQuery already due stays due: what is added meanwhile (a
     * notice) goes before it. */
    c->inject_ready = c->inject_ready || with_ready;
    c->inject_pending = true;
    if (!c->be || c->be->state != PGW_BE_READY || (!backend_busy(c->be) && !c->be->unsynced)) {
        flush_injection(c);
        return;
    }
    if (c->be->unsynced) {
        PgwBuf s;
        buf_init(&s);
        codec_sync(&s);
        bufferevent_write(c->be->bev, s.data, s.len);
        buf_free(&s);
        backend_expect_rfq(c->be, RFQ_DROP_READY);
        c->be->unsynced = false;
    }
}

void client_statement_done(PgwClient *c, int64_t rows)
{
    STATS_ADD(statements, 1);
    if (rows > 0)
        STATS_ADD(rows, (uint64_t)rows);
    while (c->audit_head) {
        AuditItem *a = c->audit_head;
        c->audit_head = a->next;
        audit_finish(a->audit, rows);
        free(a);
    }
    c->audit_tail = NULL;
}

void client_backend_idle(PgwClient *c)
{
    if (c->inject_pending)
        flush_injection(c);
    if (c->shutting_down && !c->stmt && !c->waiting_backend) {
        client_fatal(c, SQLSTATE_ADMIN_SHUTDOWN,
                     "terminating connection because pgwarden is shutting down", NULL);
        return;
    }
    client_process(c);
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
    if (!simple) {
        c->ext_skip = true;
        if (c->be && c->be->state == PGW_BE_READY && c->be->unsynced) {
            /* Earlier messages of this pipeline are at the server: their
             * replies come first, then this error, then the ReadyForQuery
             * of the client's own Sync (RFQ_RELAY_ERROR). */
            buf_append(&c->deferred_err, b.data, b.len);
            buf_free(&b);
            return;
        }
    }
    client_inject(c, &b, simple);
    buf_free(&b);
}

void client_write_deferred_error(PgwClient *c)
{
    client_write(c, &c->deferred_err);
    buf_reset(&c->deferred_err);
}

void client_backend_failed(PgwClient *c, const char *sqlstate, const char *message)
{
    c->waiting_backend = false;
    if (c->timer)
        evtimer_del(c->timer);
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

void client_backend_lost(PgwClient *c, const char *reason)
{
    /* reason may live in the backend, which is freed below */
    char why[256];
    snprintf(why, sizeof why, "%s", reason);
    PgwBackend *b = c->be;
    bool mid_message = b && b->stream_left > 0 && !b->stream_swallow;
    uint32_t relays = 0;
    for (uint32_t i = 0; b && i < b->rfq_len; i++)
        relays += b->rfq[(b->rfq_head + i) % b->rfq_cap] == RFQ_RELAY;
    bool unsynced = b && b->unsynced;
    c->be = NULL;
    __atomic_store_n(&c->backend_pid, 0, __ATOMIC_RELAXED);
    if (b) {
        b->client = NULL;
        pool_discard(c->pool, b);
    }
    if (c->throttled) {
        c->throttled = false;
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    }
    log_warning("%s: backend session lost: %s", client_ident(c), why);
    STATS_ADD(backend_lost, 1);
    if (mid_message) {
        /* Half a message already reached the client: its stream cannot be
         * repaired. */
        client_fatal(c, SQLSTATE_CONNECTION_FAILURE, "pgwarden: the server connection was lost",
                     NULL);
        return;
    }
    if (c->state == CS_LOGIN_WAIT) {
        client_fatal(c, SQLSTATE_CONNECTION_FAILURE, "pgwarden: the server connection was lost",
                     NULL);
        return;
    }
    PgwBuf out;
    buf_init(&out);
    if (relays || unsynced)
        codec_error(
            &out, "ERROR", SQLSTATE_CONNECTION_FAILURE,
            "pgwarden: the server connection was lost during the statement", why,
            "The next statement runs on a new server session; session state (prepared statements, settings, open transaction) is gone.");
    for (uint32_t i = 0; i < relays; i++)
        codec_ready(&out, 'I');
    if (unsynced)
        c->ext_skip = true;
    client_write(c, &out);
    buf_free(&out);
    if (c->inject_pending)
        flush_injection(c);
    client_process(c);
}

/* ---------- the statement hook ---------- */

static void release_schema_ref(void *ref)
{
    PgwSchemaRef *r = ref;
    pool_schema_release(r->pool, r);
}

/* pgwarden's own query on the client's backend session (ASK: schema,
 * EXPLAIN of generated SQL). NULL when the client holds no session. */
static void *stmt_query(void *owner, const char *sql, PgwStmtQueryDone done, void *arg)
{
    PgwClient *c = owner;
    if (!c->be || c->be->state != PGW_BE_READY)
        return NULL;
    if (c->be->unsynced) {
        /* The client's unsynced messages must not be read as our rows. */
        PgwBuf m;
        buf_init(&m);
        codec_sync(&m);
        bufferevent_write(c->be->bev, m.data, m.len);
        buf_free(&m);
        backend_expect_rfq(c->be, RFQ_DROP_READY);
        c->be->unsynced = false;
    }
    return backend_internal_query(c->be, sql, done, arg);
}

static void stmt_forget(void *owner, void *q)
{
    PgwClient *c = owner;
    if (c->be && q)
        backend_internal_forget(c->be, q);
}

/* A notice while the statement is pending: after the responses to what the
 * client sent before it, before the statement's own. */
static void stmt_notice(void *owner, const PgwBuf *msg)
{
    client_inject(owner, msg, false);
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

/* The hook decided. When that happens later (ASK), the caller may be deep
 * in a backend's read loop: processing resumes from the event loop instead,
 * never re-entering the client from there. */
static void stmt_done(void *arg, PgwStmtResult *res)
{
    PgwClient *c = arg;
    c->stmt = NULL;
    c->result = pgw_malloc(sizeof *res);
    *c->result = *res;
    if (c->in_process)
        return;
    if (!c->resume_ev)
        c->resume_ev = event_new(worker_base(c->w), -1, 0, resume_cb, c);
    event_active(c->resume_ev, EV_TIMEOUT, 0);
}

static void submit_statement(PgwClient *c)
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
    PgwSchemaRef *schema = pool_schema_acquire(c->pool);
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
    };
    PgwStmtHandle *h = stmt_submit(&req, stmt_done, c);
    snapshot_release(req.snap);
    free(types);
    if (!c->result)
        c->stmt = h;
}

/* Apply the hook's decision. Returns false when it must wait for a backend. */
static bool apply_result(PgwClient *c)
{
    PgwStmtResult *r = c->result;
    char type = c->cur_type;
    if (r->action == PGW_STMT_REFUSE)
        STATS_ADD(statements_refused, 1);
    if (r->action == PGW_STMT_FORWARD || r->action == PGW_STMT_REWRITE) {
        if (!acquire_backend(c))
            return !c->waiting_backend && !c->closing; /* failed at once: go on */
    }
    if (r->notices.len)
        client_write(c, &r->notices);
    switch (r->action) {
    case PGW_STMT_FORWARD:
        bufferevent_write(c->be->bev, c->cur.data, c->cur.len);
        break;
    case PGW_STMT_REWRITE: {
        PgwBuf m;
        buf_init(&m);
        if (type == 'Q') {
            codec_query(&m, r->sql);
        } else {
            PgwParseMsg pm;
            if (codec_parse_parse(c->cur.data + 5, c->cur.len - 5, &pm) == 0)
                codec_build_parse(&m, pm.name, r->sql, pm.nparams, pm.param_types_raw);
        }
        bufferevent_write(c->be->bev, m.data, m.len);
        buf_free(&m);
        break;
    }
    case PGW_STMT_REFUSE:
        client_error_for(c, type, r->sqlstate, r->message, r->detail, r->hint);
        break;
    case PGW_STMT_ANSWER:
        if (type == 'Q')
            client_inject(c, &r->answer, true);
        else
            client_error_for(c, type, SQLSTATE_FEATURE_NOT_SUPPORTED,
                             "pgwarden: this statement cannot be prepared", NULL, NULL);
        break;
    }
    if (r->action == PGW_STMT_FORWARD || r->action == PGW_STMT_REWRITE) {
        if (type == 'Q')
            backend_expect_rfq(c->be, RFQ_RELAY);
        else
            c->be->unsynced = true;
        if (r->audit) {
            AuditItem *a = pgw_malloc(sizeof *a);
            a->audit = r->audit;
            a->next = NULL;
            if (c->audit_tail)
                c->audit_tail->next = a;
            else
                c->audit_head = a;
            c->audit_tail = a;
            r->audit = NULL;
        }
    } else {
        audit_finish(r->audit, 0);
        r->audit = NULL;
    }
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

static void forward_stream(PgwClient *c, struct evbuffer *in, size_t n)
{
    struct evbuffer *out = bufferevent_get_output(c->be->bev);
    evbuffer_remove_buffer(in, out, n);
}

/* The admin console: simple Query only, answered here. */
static bool admin_step(PgwClient *c, struct evbuffer *in)
{
    char type;
    uint32_t blen;
    char *body;
    if (!take_small_message(c, in, PGW_MAX_STARTUP_LEN * 10, &type, &body, &blen))
        return false;
    PgwBuf out;
    buf_init(&out);
    bool go_on = true;
    switch (type) {
    case 'Q':
        admin_execute(body, &out);
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

/* Returns false when processing must pause. */
static bool ready_step(PgwClient *c, struct evbuffer *in)
{
    if (c->admin)
        return admin_step(c, in);
    if (c->stmt || c->inject_pending || c->waiting_backend)
        return false;
    if (c->result)
        return apply_result(c);
    if (c->be && c->be->bev &&
        evbuffer_get_length(bufferevent_get_output(c->be->bev)) > BACKEND_OUT_HIGH) {
        /* backend_write_cb resumes us when the server has taken most of it. */
        c->input_paused = true;
        bufferevent_setwatermark(c->be->bev, EV_WRITE, BACKEND_OUT_HIGH / 4, 0);
        return false;
    }
    if (c->shutting_down && (!c->be || !backend_busy(c->be))) {
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
    evbuffer_copyout(in, hdr, 5);
    if (codec_header(hdr, PGW_MAX_MESSAGE_LEN, &type, &blen) != 0) {
        client_fatal(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid message length", NULL);
        return false;
    }
    size_t whole = 5 + (size_t)blen;
    /* A message bigger than the read high-water mark must still arrive
     * whole; the mark goes back down when it has been handled. */
    if (whole > CLIENT_IN_HIGH || c->read_mark_raised) {
        c->read_mark_raised = whole > CLIENT_IN_HIGH;
        bufferevent_setwatermark(c->bev, EV_READ, 0, c->read_mark_raised ? whole : CLIENT_IN_HIGH);
    }
    switch (type) {
    case 'Q':
    case 'P':
        if (avail < whole)
            return false;
        if (c->ext_skip) {
            /* After an error, PostgreSQL discards everything up to Sync. */
            evbuffer_drain(in, whole);
            return true;
        }
        /* The policy needs the tenant's schema, which the pool learns from
         * a backend session; and a session-pooled client needs one anyway. */
        if (!acquire_backend(c))
            return !c->waiting_backend && !c->closing;
        if (!backend_busy(c->be) && !c->be->unsynced && pool_schema_needed(c->pool)) {
            /* A reload happened: re-read the schema first. client_backend_idle
             * resumes this loop when it is in. */
            backend_refresh_schema(c->be);
            return false;
        }
        buf_reset(&c->cur);
        buf_reserve(&c->cur, whole + 1);
        evbuffer_remove(in, c->cur.data, whole);
        c->cur.len = whole;
        c->cur_type = type;
        submit_statement(c);
        return !c->closing;
    case 'X':
        client_close(c, NULL);
        return false;
    case 'S':
        if (avail < whole)
            return false;
        if (c->ext_skip && c->deferred_err.len && c->be && c->be->state == PGW_BE_READY) {
            forward_stream(c, in, whole);
            c->ext_skip = false;
            c->be->unsynced = false;
            backend_expect_rfq(c->be, RFQ_RELAY_ERROR);
            return true;
        }
        if (c->ext_skip || !c->be) {
            evbuffer_drain(in, whole);
            c->ext_skip = false;
            PgwBuf b;
            buf_init(&b);
            buf_append(&b, c->deferred_err.data, c->deferred_err.len);
            buf_reset(&c->deferred_err);
            codec_ready(&b, tx_status(c));
            client_write(c, &b);
            buf_free(&b);
            return true;
        }
        forward_stream(c, in, whole);
        c->be->unsynced = false;
        backend_expect_rfq(c->be, RFQ_RELAY);
        return true;
    case 'F':
        if (avail < whole)
            return false;
        evbuffer_drain(in, whole);
        client_error_for(c, 'F', SQLSTATE_INSUFFICIENT_PRIVILEGE,
                         "pgwarden: the function call protocol is not allowed", NULL, NULL);
        return true;
    case 'H':
        if (c->ext_skip || !c->be) {
            if (avail < whole)
                return false;
            evbuffer_drain(in, whole);
            return true;
        }
        /* fall through */
    case 'B':
    case 'E':
    case 'D':
    case 'C':
    case 'd':
    case 'c':
    case 'f':
        if (c->ext_skip) {
            if (avail < whole)
                return false;
            evbuffer_drain(in, whole);
            return true;
        }
        if (!acquire_backend(c))
            return !c->waiting_backend && !c->closing;
        /* Frontend messages other than COPY data are small; forwarding
         * them whole keeps the client side simple. */
        if (avail < whole)
            return false;
        forward_stream(c, in, whole);
        if (type != 'd' && type != 'c' && type != 'f')
            c->be->unsynced = true;
        return true;
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
    c->in_process = true;
    uint64_t serial = c->serial;
    PgwWorker *w = c->w;
    uint32_t pid = c->pid;
    for (;;) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        bool more = c->state == CS_READY ? ready_step(c, in) : login_step(c, in);
        /* The step may have closed (and freed) the client. */
        if (worker_find_client(w, pid, serial) != c)
            return;
        if (!more || c->closing)
            break;
    }
    c->in_process = false;
}

/* ---------- cancel and shutdown ---------- */

void client_cancel(PgwClient *c, uint32_t key)
{
    if (key != c->key)
        return;
    log_info("%s: cancel request", client_ident(c));
    STATS_ADD(cancels, 1);
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
    if (c->be && backend_busy(c->be))
        backend_cancel(c->be);
}

/* Mail from the worker that received a CancelRequest. */
void client_cancel_mail(PgwWorker *w, void *arg);
void client_cancel_mail(PgwWorker *w, void *arg)
{
    uint32_t *m = arg;
    PgwClient *c = worker_find_client(w, m[0], 0);
    if (c && c->state == CS_READY)
        client_cancel(c, m[1]);
    free(m);
}

void client_shutdown(PgwClient *c, bool immediate)
{
    if (c->closing)
        return;
    c->shutting_down = true;
    bool busy = c->stmt || c->waiting_backend || (c->be && backend_busy(c->be));
    if (immediate || !busy || c->state != CS_READY)
        client_fatal(c, SQLSTATE_ADMIN_SHUTDOWN,
                     "terminating connection because pgwarden is shutting down", NULL);
}

void client_describe(const PgwClient *c, PgwClientInfo *out)
{
    static const char *const states[] = {"startup", "auth", "auth", "auth", "login", "idle"};
    out->user = c->user;
    out->tenant = c->admin ? PGW_ADMIN_DB : c->tenant;
    out->addr = c->addr;
    out->state = c->state < PGW_ARRAY_LEN(states) ? states[c->state] : "?";
    if (c->state == CS_READY && c->stmt)
        out->state = "active";
    if (c->waiting_backend)
        out->state = "waiting";
    out->tls = c->tls;
    out->pid = c->pid;
    out->backend_pid = __atomic_load_n(&c->backend_pid, __ATOMIC_RELAXED);
}

void client_resume_input(PgwClient *c)
{
    if (!c->input_paused)
        return;
    c->input_paused = false;
    client_process(c);
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
    if (worker_find_client(w, pid, serial) == c)
        client_close(c, "login timed out");
}
