/*
 * client_login.c — a client connection from its first byte to READY:
 * STARTUP (SSLRequest, GSSENCRequest, CancelRequest or the startup packet),
 * TLS, AUTH (trust, md5 or SCRAM against auth_file), routing (the user's
 * tenants; dbname picks one, or the admin console), LOGIN_WAIT only when
 * the tenant's pool has never seen a backend and so cannot yet tell the
 * client its ParameterStatus values, then the hello (ParameterStatus,
 * BackendKeyData, ReadyForQuery).
 *
 * What it must never do: trust bytes that arrived before a TLS handshake
 * as if they were encrypted, or let a startup parameter set what SET may
 * not (the policy's verdict applies to both). Everything here runs before
 * the client may send a statement, so nothing here touches the relay
 * beyond linking the tenant's pool (link_init) and, for the first client
 * of a tenant, waiting for a session.
 */
#include "client_int.h"

#include "auth.h"
#include "client.h"
#include "codec.h"
#include "config.h"
#include "log.h"
#include "policy_catalog.h" /* policy_setting_verdict for startup parameters */
#include "peers.h"
#include "pool.h"
#include "scram.h"
#include "snapshot.h"
#include "stats.h"
#include "worker.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Parameters a client may set in its startup packet that pgwarden applies
 * to the backend session with SET when it links one. */
static const char *const session_params[CLIENT_SESSION_PARAMS] = {
    "application_name",   "client_encoding", "DateStyle", "TimeZone",      "IntervalStyle",
    "extra_float_digits", "datestyle",       "timezone",  "intervalstyle",
};

void client_login_free(ClientLogin *l)
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
    /* Exactly sized: an idle client keeps it until a session is linked. */
    buf_append_byte(&b, 0);
    char *sql = pgw_strdup((const char *)b.data);
    buf_free(&b);
    return sql;
}

static void finish_login(PgwClient *c)
{
    if (c->closing)
        return;
    ClientLogin *l = c->login;
    PgwBuf b;
    buf_init(&b);
    if (!pool_params(link_pool(&c->link), &b, l->nparams, (const char *const *)l->param_names,
                     (const char *const *)l->param_values)) {
        buf_free(&b);
        client_fatal(c, SQLSTATE_INTERNAL_ERROR, "pgwarden: backend parameters unknown", NULL);
        return;
    }
    codec_backend_key(&b, c->pid, c->key);
    codec_ready(&b, 'I');
    client_write(c, &b);
    buf_free(&b);
    link_set_startup_sets(&c->link, build_startup_sets(l));
    c->idle_ms = l->snap->cfg->client_idle_timeout_ms;
    client_login_free(l);
    c->login = NULL;
    c->state = CS_READY;
    if (c->timer) {
        event_free(c->timer);
        c->timer = NULL;
    }
    client_ready_to_park(c);
    STATS_ADD(logins, 1);
    log_info("%s: login", client_ident(c));
}

/* What a logged-in client keeps of its names, in one allocation (an idle
 * client is mostly its struct and this): user, tenant and addr, one after
 * the other from c->user; c->names_joined says so to client_close. The
 * new names are published before the old strings are freed (SHOW CLIENTS
 * copies them under the registry's lock). */
static void join_names(PgwClient *c, const char *tenant)
{
    size_t ul = strlen(c->user), tl = strlen(tenant), al = strlen(c->addr);
    char *user = pgw_malloc(ul + 1 + tl + 1 + al + 1);
    char *ten = user + ul + 1;
    char *addr = ten + tl + 1;
    memcpy(user, c->user, ul + 1);
    memcpy(ten, tenant, tl + 1);
    memcpy(addr, c->addr, al + 1);
    worker_publish_names(c->w, c->pid, user, ten, addr, c->tls);
    free(c->user);
    free(c->addr);
    c->user = user;
    c->tenant = ten;
    c->addr = addr;
    c->names_joined = true;
}

/* Authentication succeeded: route (the admin console, or one of the
 * user's tenants), then say hello. Every routing refusal comes only now:
 * before the password is proven, a client learns nothing about who exists,
 * who has a tenant and who is an admin. */
static void login_authenticated(PgwClient *c)
{
    ClientLogin *l = c->login;
    PgwConfig *cfg = l->snap->cfg;
    send_auth(c, 0, NULL, 0);
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
    }
    const PgwUserMap *um = config_user(cfg, c->user);
    if (!c->admin && !um) {
        STATS_ADD(login_failures, 1);
        char msg[256];
        snprintf(msg, sizeof msg, "pgwarden: no tenant is configured for user \"%s\"", c->user);
        client_fatal(c, SQLSTATE_INVALID_AUTHORIZATION, msg, NULL);
        return;
    }
    const char *tenant = NULL;
    for (size_t i = 0; um && i < um->ntenants; i++)
        if (strcmp(um->tenants[i], l->dbname) == 0)
            tenant = um->tenants[i];
    if (c->admin) {
        PgwBuf b;
        buf_init(&b);
        client_admin()->login_params(&b);
        codec_backend_key(&b, c->pid, c->key);
        codec_ready(&b, 'I');
        client_write(c, &b);
        buf_free(&b);
        worker_publish_names(c->w, c->pid, c->user, PGW_ADMIN_DB, c->addr, c->tls);
        c->idle_ms = cfg->client_idle_timeout_ms;
        client_login_free(c->login);
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
    join_names(c, tenant);
    link_init(&c->link, c->pid, c->bev, pool_get(c->tenant), &client_link_ops, c);
    /* The pool mode is the client's for its whole life: its prepared
     * statements are kept one way or the other. */
    link_set_transaction_mode(&c->link, config_pool_mode(cfg, config_tenant(cfg, tenant)) ==
                                            PGW_POOL_TRANSACTION);
    PgwBuf probe;
    buf_init(&probe);
    bool known = pool_params(link_pool(&c->link), &probe, 0, NULL, NULL);
    buf_free(&probe);
    if (known) {
        finish_login(c);
        return;
    }
    /* First client of this tenant: a backend must tell us its parameters. */
    c->state = CS_LOGIN_WAIT;
    if (link_acquire(&c->link)) {
        finish_login(c);
    } else if (link_waiting(&c->link) && c->timer) {
        /* pool_timeout bounds the wait from here on. */
        event_free(c->timer);
        c->timer = NULL;
    }
    /* else: the link's acquired or acquire_failed finishes it */
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

/* A SCRAM exchange for anyone: an unknown user (or one whose secret cannot
 * answer SCRAM) gets the mock exchange, with the same stable salt every
 * time, and fails at the end like a wrong password. */
static void start_scram(PgwClient *c)
{
    static const char mechs[] = "SCRAM-SHA-256\0";
    PgwSnapshot *s = c->login->snap;
    const char *verifier = s->users ? auth_userlist_scram(s->users, c->user) : NULL;
    c->login->scram = scram_server_new_keyed(
        c->user, verifier, s->users ? auth_userlist_mock_key(s->users) : NULL, NULL);
    if (!c->login->scram) {
        client_fatal(c, SQLSTATE_INTERNAL_ERROR, "pgwarden: cannot start authentication", NULL);
        return;
    }
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
    if (c->tls && (st.kind == PGW_STARTUP_SSL || st.kind == PGW_STARTUP_GSSENC)) {
        /* Inside TLS, a negotiation request is not a negotiation any
         * more: a one-byte answer written to the socket would break the
         * TLS stream, and one written inside it would be read as the start
         * of a message. PostgreSQL, whose startup loop marks both
         * encryptions as done once TLS is up, lets the packet fall through
         * to its protocol-version check and closes with a FATAL
         * ErrorResponse; so do we, inside TLS. */
        snapshot_release(snap);
        client_fatal(c, SQLSTATE_PROTOCOL_VIOLATION,
                     st.kind == PGW_STARTUP_SSL ? "SSLRequest received after TLS was negotiated"
                                                : "GSSENCRequest received after TLS was negotiated",
                     NULL);
        return;
    }
    switch (st.kind) {
    case PGW_STARTUP_CANCEL: {
        /* Another instance's client (its id in the key): forwarded there. */
        if (!peers_forward_cancel(cfg, st.cancel_pid, st.cancel_key))
            client_cancel_request(st.cancel_pid, st.cancel_key);
        snapshot_release(snap);
        client_close(c, NULL);
        return;
    }
    case PGW_STARTUP_SSL: {
        bool can = snap->ssl_ctx && cfg->client_tls != PGW_TLS_DISABLE;
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
            client_drop_reader(c); /* libevent reads TLS */
            bufferevent_free(c->bev);
            c->bev = bufferevent_openssl_socket_new(
                worker_base(c->w), c->fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
            c->fd = -1;
            c->tls = true;
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
            client_watch(c);
            worker_publish_names(c->w, c->pid, NULL, NULL, c->addr, true);
        }
        snapshot_release(snap);
        return;
    }
    case PGW_STARTUP_GSSENC: {
        char answer = 'N';
        snapshot_release(snap);
        if (send(c->fd, &answer, 1, MSG_NOSIGNAL) != 1) /* not TLS: checked above */
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
    worker_publish_names(c->w, c->pid, c->user, NULL, c->addr, c->tls);
    const char *db = codec_startup_param(&st, "database");
    l->dbname = pgw_strdup(db && *db ? db : user);

    if (cfg->client_tls == PGW_TLS_REQUIRE && !c->tls) {
        client_fatal(c, SQLSTATE_INVALID_AUTHORIZATION,
                     "pgwarden: connections without SSL are refused (client_tls = require)",
                     "Connect with sslmode=require.");
        return;
    }
    /* Who exists, who has a tenant, who is an admin: all decided after
     * authentication (login_authenticated), never before. */
    const char *secret = user_secret(c);
    switch (cfg->auth_type) {
    case PGW_AUTH_TRUST:
        login_authenticated(c);
        return;
    case PGW_AUTH_MD5:
        /* Like PostgreSQL: a SCRAM verifier cannot answer md5, so use SCRAM.
         * An unknown user gets an md5 challenge with a random salt, like
         * everyone else, and fails at the end. */
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

/* One step of the login. Returns false when more input is needed. */
bool client_login_step(PgwClient *c, struct evbuffer *in)
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
    if (!client_take_small_message(c, in, PGW_MAX_STARTUP_LEN, &type, &body, &blen))
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


void client_login_finish(PgwClient *c)
{
    finish_login(c);
}
