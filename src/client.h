/*
 * client.h — one client connection: the protocol with the client from its
 * first byte to its last.
 *
 * The client reads its input one protocol message at a time. Messages whose
 * text matters (Query, Parse) are whole-buffered and pass through the
 * statement pipeline (stmt); everything else goes to the backend session
 * through the link (link.h), which also relays the answers back, keeps
 * pgwarden's own answers in protocol order and applies backpressure both
 * ways. Login (startup, TLS, authentication, routing) is client_login.c.
 *
 * The client module is driven by the server (accept, shutdown) and by its
 * own socket, link and pipeline callbacks; it never calls the server and
 * reaches the admin console only through the PgwAdminConsole the program
 * installs, so the layers above it stay above it.
 */
#ifndef PGW_CLIENT_H
#define PGW_CLIENT_H

#include "buf.h"
#include "pgw.h"

#include <event2/util.h>

struct PgwWorker;

typedef struct PgwClient PgwClient;

/* A new connection accepted on w. */
void client_accept(struct PgwWorker *w, evutil_socket_t fd, const struct sockaddr *addr,
                   int addrlen);
/* Shutdown: close now if idle, else when the running statement ends. */
void client_shutdown(PgwClient *c, bool immediate);

/* The admin console (the database named pgwarden, for admin_users): the
 * program supplies it before the workers start. execute answers one Query
 * text (without ReadyForQuery); login_params writes the ParameterStatus
 * messages an admin session gets. */
typedef struct PgwAdminConsole {
    void (*execute)(const char *sql, PgwBuf *out);
    void (*login_params)(PgwBuf *out);
    /* A command answered later (CACHE CLEAR, which reaches Redis): true
     * when it took sql; done(arg, answer) then runs once on w, possibly
     * before it returns. NULL: every command is execute's. */
    bool (*execute_later)(struct PgwWorker *w, const char *sql,
                          void (*done)(void *arg, const PgwBuf *out), void *arg);
} PgwAdminConsole;
void client_set_admin_console(const PgwAdminConsole *console);

#endif
