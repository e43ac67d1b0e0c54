/*
 * client.h — one client connection: startup, TLS, authentication, routing
 * to a tenant, and the client side of the relay.
 *
 * The client reads its input one protocol message at a time. Messages whose
 * text matters (Query, Parse) are whole-buffered and pass through the
 * statement hook; everything else streams to the backend without being
 * parsed beyond its header. Output to the client is a bufferevent whose
 * high-water mark throttles reading from the backend (backpressure), so a
 * slow client never makes pgwarden hold a whole result.
 *
 * A refusal or an answer pgwarden makes itself must reach the client in
 * protocol order, after the responses to everything already forwarded: it
 * is held until the backend has drained (see client_inject).
 */
#ifndef PGW_CLIENT_H
#define PGW_CLIENT_H

#include "pgw.h"

#include <event2/util.h>

struct PgwWorker;
struct PgwBackend;
struct bufferevent;

typedef struct PgwClient PgwClient;

/* A new connection accepted on w. */
void client_accept(struct PgwWorker *w, evutil_socket_t fd, const struct sockaddr *addr,
                   int addrlen);

/* From the pool, on the client's worker. */
void client_backend_ready(PgwClient *c, struct PgwBackend *b);
void client_backend_failed(PgwClient *c, const char *sqlstate, const char *message);
bool client_is_waiting(const PgwClient *c);

/* From the backend relay, on the client's worker. */
struct bufferevent *client_output(PgwClient *c); /* where backend bytes go */
void client_backend_idle(PgwClient *c); /* all expected ReadyForQuery arrived */
/* A relayed ReadyForQuery: the statements forwarded before it are done. */
void client_statement_done(PgwClient *c, int64_t rows);
void client_backend_lost(PgwClient *c, const char *why);
void client_throttle_backend(PgwClient *c); /* output over the high-water mark */
void client_write_deferred_error(PgwClient *c); /* a held refusal, before its ReadyForQuery */
void client_resume_input(PgwClient *c); /* the server took our writes */

/* Cancel request for this client (pid/key already matched by the caller). */
void client_cancel(PgwClient *c, uint32_t key);
/* Shutdown: close now if idle, else when the running statement ends. */
void client_shutdown(PgwClient *c, bool immediate);

/* What SHOW CLIENTS shows; safe from another thread under the registry lock. */
typedef struct PgwClientInfo {
    const char *user, *tenant, *addr, *state;
    bool tls;
    uint32_t pid;
    int backend_pid;
} PgwClientInfo;
void client_describe(const PgwClient *c, PgwClientInfo *out);

const char *client_ident(const PgwClient *c); /* "user/tenant@addr" for logs */
uint64_t client_serial(const PgwClient *c);
uint32_t client_pid(const PgwClient *c);
struct PgwWorker *client_worker(const PgwClient *c);

#endif
