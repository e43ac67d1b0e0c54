/*
 * client_int.h — what the two halves of the client module share: the
 * connection's state and the few helpers both use. client_login.c runs a
 * connection from its first byte to READY (startup, TLS, authentication,
 * routing); client.c owns the connection's life (accept, close, socket
 * callbacks) and everything after login (the ready-state message loop, the
 * statement pipeline, the admin console). Nothing outside the client
 * module includes this header.
 */
#ifndef PGW_CLIENT_INT_H
#define PGW_CLIENT_INT_H

#include "buf.h"
#include "link.h"
#include "pgw.h"
#include "stmt.h"

#include <event2/util.h>

/* The public header is not included: the module's own .c files include both,
 * and a private header that includes its public one makes an include cycle. */
typedef struct PgwClient PgwClient;
typedef struct PgwAdminConsole PgwAdminConsole;

struct PgwPool;
struct PgwSnapshot;
struct PgwScram;
struct bufferevent;
struct evbuffer;
struct event;

#define CLIENT_IN_HIGH (1024 * 1024)
/* Where wake's memory starts after the struct (event_assign'ed there). */
#define CLIENT_WAKE_OFFSET ((sizeof(struct PgwClient) + 15) & ~(size_t)15)

typedef enum {
    CS_STARTUP,
    CS_AUTH_MD5,
    CS_AUTH_SASL_INIT,
    CS_AUTH_SASL_CONT,
    CS_LOGIN_WAIT, /* the tenant's pool has never seen a backend: waiting for one */
    CS_READY,
} ClientState;

/* Parameters a client may set in its startup packet that pgwarden applies
 * to the backend session with SET when it links one. */
#define CLIENT_SESSION_PARAMS 9

/* What only the login needs; freed once the client is READY. */
typedef struct ClientLogin {
    struct PgwSnapshot *snap;
    struct PgwScram *scram;
    uint8_t md5_salt[4];
    char *dbname;
    size_t nparams;
    char *param_names[CLIENT_SESSION_PARAMS];
    char *param_values[CLIENT_SESSION_PARAMS];
} ClientLogin;

struct PgwClient {
    struct PgwWorker *w;
    struct bufferevent *bev;
    struct PgwOut *out; /* bev's writes at the loop turn's end (READY, plain sockets) */
    struct PgwIn *in; /* bev's reads (plain sockets; NULL: TLS, libevent reads) */
    evutil_socket_t fd; /* -1 once a TLS bufferevent owns it */
    uint32_t pid, key;
    int idle_ms; /* client_idle_timeout as of the last statement; 0: none */
    uint64_t serial;
    uint8_t state;
    bool tls;
    bool in_process; /* client_process is on the stack */
    bool ext_skip; /* discard until Sync after an extended-protocol error */
    bool shutting_down;
    bool closing; /* FATAL sent, closing once output is flushed */
    bool admin; /* connected to the admin console, not a tenant */
    bool admin_wait; /* an admin command answers later (execute_later) */
    bool read_mark_raised; /* the read high-water mark fits one big message */
    bool parked; /* idle: bev and out are freed and wake watches the socket */
    bool stirred; /* client_process ran since the park timer was armed */
    bool fresh; /* logged in, has sent nothing yet: parks as soon as the hello is out */
    char cur_type; /* 'Q' or 'P' held in cur while the pipeline decides, else 0 */
    /* A message passing through without being held: pass_left bytes still
     * to forward to the session, or skip_left still to discard (then
     * refused as skip_type once all are gone, when skip_type is set). */
    char pass_type, skip_type;
    bool cache_off; /* no result cache view (c->cache) is needed */
    uint32_t pass_left, skip_left, skip_len;
    bool names_joined; /* tenant and addr live in user's allocation (client_login.c) */
    /* Plain-socket tenant clients once READY have wake, an event in the
     * client's own allocation (CLIENT_WAKE_OFFSET): the park timer while
     * the client has its bufferevent, the socket's read event while parked
     * (client.c, "parking an idle client"). */
    bool has_wake;
    char *user;
    char *tenant;
    PgwLink link; /* initialized once the tenant is known; it holds the tenant's pool */
    PgwStmtHandle *stmt;
    PgwStmtResult *result; /* decided, not yet applied */
    PgwBuf cur;
    struct event *resume_ev; /* runs client_process later (see stmt_done) */
    ClientLogin *login;
    struct event *timer; /* the login timeout; once READY, the idle timeout */
    void *hook_state; /* the pipeline's per-session state (stmt_session_free) */
    struct ClientCache *cache; /* the result cache's view of this session (client_cache.c) */
    char *addr; /* "host:port", "[v6]:port" or "unix", exactly sized */
    /* Then, in the same allocation, the memory of wake (CLIENT_WAKE_OFFSET):
     * a parked client is this allocation and its strings. Keep the struct
     * free of holes: every byte here is paid by every idle client. */
};

/* client.c */
extern const PgwLinkOps client_link_ops;
/* "user/tenant@addr" for logs; the pointer is valid until the next call
 * on this thread. */
const char *client_ident(const PgwClient *c);
/* A CancelRequest for (pid, key): mailed to the worker that owns pid. */
void client_cancel_request(uint32_t pid, uint32_t key);
const PgwAdminConsole *client_admin(void);
void client_write(PgwClient *c, const PgwBuf *b);
/* Send c->cur (a Query or Parse) through the statement pipeline. */
void client_submit_statement(PgwClient *c);
/* Run client_process soon from the event loop (never re-entering it from
 * a callback deep in a relay). */
void client_resume(PgwClient *c);
/* Install the client's callbacks on c->bev (a new one after SSLRequest). */
/* Stop reading the socket ourselves (before its bufferevent goes). */
void client_drop_reader(PgwClient *c);
void client_watch(PgwClient *c);
/* Send a FATAL and close once it is flushed: the one way a client is
 * refused at login or thrown out. */
void client_fatal(PgwClient *c, const char *sqlstate, const char *message, const char *hint);
/* Close without writing anything more (once what is buffered is flushed):
 * for a stream that cannot be repaired. */
void client_abort(PgwClient *c, const char *why);
/* The one place a client goes away (frees c). */
void client_close(PgwClient *c, const char *why);
/* Take one whole typed message of at most max bytes from the input, as a
 * NUL-terminated malloc'd body. False when it has not all arrived, or when
 * its length is invalid (the client is then being closed). */
bool client_take_small_message(PgwClient *c, struct evbuffer *in, size_t max, char *type,
                               char **body, uint32_t *blen);

/* client_login.c */
/* One step of the login. Returns false when more input is needed. */
bool client_login_step(PgwClient *c, struct evbuffer *in);
/* The session a LOGIN_WAIT client waited for is linked: say hello. */
void client_login_finish(PgwClient *c);
void client_login_free(ClientLogin *l);

/* client.c: the client just became READY (plain socket, a tenant's): it
 * may park once its hello is written. */
void client_ready_to_park(PgwClient *c);

#endif
