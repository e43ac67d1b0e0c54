/*
 * backend.h — one session with a tenant's PostgreSQL.
 *
 * libpq establishes the session (PQconnectStart/PQconnectPoll driven by the
 * worker's event loop, so connecting never blocks other clients), runs the
 * setup queries and reads what the policy needs; after that pgwarden speaks
 * the protocol on the socket itself through a bufferevent and libpq is kept
 * only for cancel and close. The backend owns the stream state of its side:
 * the queue of ReadyForQuery messages still expected and whether each is to
 * be relayed to the client or swallowed (pgwarden's own reset and SET
 * queries), and the bytes of a message still being streamed through.
 */
#ifndef PGW_BACKEND_H
#define PGW_BACKEND_H

#include "buf.h"
#include "pgw.h"

#include <libpq-fe.h>

struct PgwPool;
struct PgwWorker;
struct PgwClient;
struct bufferevent;

typedef enum {
    PGW_BE_CONNECTING,
    PGW_BE_SETUP, /* libpq still drives: setup and introspection queries */
    PGW_BE_READY, /* raw protocol on the bufferevent */
    PGW_BE_BROKEN,
} PgwBackendState;

typedef struct PgwBackend {
    struct PgwPool *pool;
    struct PgwWorker *worker; /* whose event base it is attached to; NULL when idle in the pool */
    struct PgwClient *client; /* linked client, NULL while resetting or idle */
    PGconn *conn;
    PGcancel *cancel;
    PgwBackendState state;
    struct event *ev; /* libpq-phase socket event */
    struct bufferevent *bev; /* relay phase */
    int pid;
    char tx_status; /* 'I', 'T', 'E' from the last ReadyForQuery */

    /* Expected ReadyForQuery messages, oldest first: 1 = relay to client,
     * 0 = swallow (pgwarden's own query). A ring of bits would do, but a
     * byte array keeps it obvious; it only grows when a client pipelines. */
    uint8_t *rfq;
    uint32_t rfq_head, rfq_len, rfq_cap;
    uint32_t stream_left; /* body bytes of the current message still to pass through */
    bool stream_swallow; /* ... and whether they are dropped */
    bool unsynced; /* extended-protocol messages sent since the last Sync */
    struct PgwInternal *internal; /* pgwarden's own queries awaiting results, oldest first */
    int64_t rows; /* rows reported by CommandComplete since the last ReadyForQuery */
    bool in_process; /* backend_process is on the stack */
    bool free_pending; /* backend_free was called meanwhile */
    bool clean_pending; /* hand back to the pool when the loop ends */
    bool fatal_seen; /* the server sent FATAL: it is going away */
    char *fatal_message;
    struct PgwBackend *next; /* pool idle list */
    uint32_t want_pid; /* the client this new session is for */
    uint64_t want_serial;
    int64_t created_usec;
} PgwBackend;

/* Start connecting on worker w; the pool is told when it is ready or failed
 * (pool_backend_ready / pool_backend_failed). */
PgwBackend *backend_connect(struct PgwPool *pool, struct PgwWorker *w, const char *conninfo,
                            const char *options, uint32_t want_pid, uint64_t want_serial);
/* Move an idle session to worker w's event base (creates its bufferevent). */
void backend_attach(PgwBackend *b, struct PgwWorker *w);
/* Drop the bufferevent so the session can sit idle or move thread. */
void backend_detach(PgwBackend *b);
void backend_free(PgwBackend *b);

/* What to do with the responses up to an expected ReadyForQuery. */
#define RFQ_SWALLOW 0 /* pgwarden's own query: drop */
#define RFQ_RELAY 1 /* the client's: relay */
#define RFQ_CAPTURE 2 /* pgwarden's own query whose rows it wants */
#define RFQ_RELAY_ERROR 3 /* the client's Sync after a refusal: relay, the refusal first */
#define RFQ_DROP_READY 4 /* pgwarden's Sync closing a client pipeline: relay all but 'Z' */

/* Queue pgwarden's own query; its responses are swallowed. */
void backend_send_internal(PgwBackend *b, const char *sql);
/* Queue pgwarden's own query and get its rows (or its error) back through
 * done, on the backend's worker; if the session dies first, done is called
 * with error set. It is never called after backend_internal_forget. values are row-major, NULL for SQL NULL, and
 * live only during the call. */
typedef struct PgwInternal PgwInternal;
typedef void (*PgwInternalDone)(void *arg, size_t nrows, size_t ncols, char **values,
                                const char *error);
PgwInternal *backend_internal_query(PgwBackend *b, const char *sql, PgwInternalDone done,
                                    void *arg);
void backend_internal_forget(PgwBackend *b, PgwInternal *q);
void backend_expect_rfq(PgwBackend *b, uint8_t kind);
bool backend_busy(const PgwBackend *b); /* ReadyForQuery still expected */
/* Reading was paused for a slow client: resume and relay what is buffered. */
void backend_resume(PgwBackend *b);
/* Re-read the tenant's schema on this idle session (after a reload); the
 * pool gets it and the client is told idle as usual when it is done. */
void backend_refresh_schema(PgwBackend *b);
/* Ask PostgreSQL to cancel whatever the session runs (non-blocking for the
 * caller: libpq's blocking PQcancel runs on a short-lived thread). */
void backend_cancel(PgwBackend *b);

#endif
