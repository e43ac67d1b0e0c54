/*
 * backend.h — one session with a tenant's PostgreSQL.
 *
 * libpq establishes the session (PQconnectStart/PQconnectPoll driven by the
 * worker's event loop, so connecting never blocks other clients), runs the
 * setup queries and reads what the policy needs; after that pgwarden speaks
 * the protocol on the socket itself through a bufferevent and libpq is kept
 * only for cancel and close. The backend owns the stream state of its side:
 * the queue of ReadyForQuery messages still expected and whether each
 * closes pgwarden's own query (swallowed, or captured as rows) or one of
 * its user's statements, and the bytes of a message still being streamed
 * through.
 *
 * A backend never knows who uses it. It reports through two small callback
 * interfaces: PgwBackendHome, supplied by whoever created it (the pool:
 * connected, failed, reset done, broken while nobody used it, the schema
 * it read), and PgwBackendUser, supplied by whoever it is lent to (the
 * link: each relayed message, each ReadyForQuery of the user's statements,
 * idle, lost, and flow control both ways).
 */
#ifndef PGW_BACKEND_H
#define PGW_BACKEND_H

#include "buf.h"
#include "pgw.h"

#include <libpq-fe.h>

struct PgwWorker;
struct PgwSchema;
struct bufferevent;
struct evbuffer;
typedef struct PgwBackend PgwBackend;

/* The creator's side: called on the backend's worker. */
typedef struct PgwBackendHome {
    void (*connected)(void *home, PgwBackend *b); /* READY; b->want is the creator's */
    void (*connect_failed)(void *home, PgwBackend *b, const char *why); /* then freed by home */
    void (*clean)(void *home, PgwBackend *b); /* idle with no user and nothing expected */
    void (*broken)(void *home, PgwBackend *b); /* died while it had no user */
    /* Whether the session must read the tenant's schema during setup, and
     * the schema it read (during setup or backend_refresh_schema). */
    bool (*schema_needed)(void *home);
    void (*schema_read)(void *home, struct PgwSchema *schema);
    const char *(*name)(void *home); /* for log lines: the tenant */
} PgwBackendHome;

/* The user's side (the session is lent to it): called on the backend's
 * worker, from inside the relay loop. The user must not free the backend
 * from these callbacks except through its home (release/discard), which
 * the backend defers until the loop is done. kind is the kind the user
 * queued the message under that these responses answer (backend_expect). */
typedef struct PgwBackendUser {
    /* Stop relaying for now: the user's output is over its high-water mark
     * (it calls backend_resume when it has drained). */
    bool (*congested)(void *user);
    /* A relayed message pgwarden read whole (ErrorResponse, NoticeResponse,
     * CommandComplete): msg holds the 5-byte header and the body. */
    void (*message)(void *user, uint8_t kind, char type, const uint8_t *msg, size_t len);
    /* n bytes at the front of src belong to a relayed message streamed
     * through (first: they start with its 5-byte header); the user must
     * take them (evbuffer_remove_buffer or drain). */
    void (*stream)(void *user, uint8_t kind, char type, struct evbuffer *src, size_t n, bool first);
    /* A ReadyForQuery that closes the user's Query or Sync, with the kind
     * the user queued it under, the transaction status and the rows
     * CommandComplete reported since the previous one. msg is the whole
     * message; relaying it is the user's choice. */
    void (*ready)(void *user, uint8_t kind, char tx_status, int64_t rows, const uint8_t *msg,
                  size_t len);
    /* A response the user synthesizes (BACKEND_SYNTH_*) is due: every
     * response before it has been relayed. */
    void (*synth)(void *user, char what, uint8_t kind);
    /* Nothing is expected any more (every queued response arrived). */
    void (*idle)(void *user);
    /* The session died while lent; the user gives it back (discard). */
    void (*lost)(void *user, const char *why);
    /* The server took what was written to it (after backend_watch_output). */
    void (*drained)(void *user);
} PgwBackendUser;

/* A statement body prepared on a session under a server-side name: the
 * bytes of a Parse message after its name (query text, parameter types),
 * shared by every client and session that prepared the same bytes
 * (reference-counted, any thread). */
typedef struct PgwStmtBody {
    int refs; /* atomic */
    uint64_t hash;
    uint32_t len;
    char name[24]; /* the server-side name: "pgw_" and the hash in hex */
    uint8_t data[];
} PgwStmtBody;
PgwStmtBody *backend_body_new(const uint8_t *data, size_t len);
PgwStmtBody *backend_body_ref(PgwStmtBody *body);
void backend_body_unref(PgwStmtBody *body);
bool backend_body_same(const PgwStmtBody *a, const PgwStmtBody *b);

/* One statement in a session's cache (transaction pooling). */
typedef struct PgwBackendStmt {
    PgwStmtBody *body;
    uint64_t used; /* the session's use counter when last used: least is evicted */
    uint64_t added; /* ... when it was prepared */
} PgwBackendStmt;

typedef enum {
    PGW_BE_CONNECTING,
    PGW_BE_SETUP, /* libpq still drives: setup and introspection queries */
    PGW_BE_READY, /* raw protocol on the bufferevent */
    PGW_BE_BROKEN,
} PgwBackendState;

struct PgwBackend {
    const PgwBackendHome *home_ops;
    void *home;
    void *want; /* the creator's token for whom it is connecting */
    const PgwBackendUser *user_ops; /* NULL while idle, resetting or connecting */
    void *user;
    struct PgwWorker *worker; /* whose event base it is attached to (idle in the pool too) */
    PGconn *conn;
    PGcancel *cancel;
    PgwBackendState state;
    struct event *ev; /* libpq-phase socket event */
    struct bufferevent *bev; /* relay phase */
    struct PgwOut *out; /* bev's writes at the loop turn's end (plain sockets) */
    struct PgwIn *in; /* bev's reads (plain sockets; NULL: TLS, libevent reads) */
    int pid;
    char tx_status; /* 'I', 'T', 'E' from the last ReadyForQuery */

    /* What the server owes, oldest first: one entry per message sent that
     * PostgreSQL answers (Parse, Bind, Describe, Execute, Close, Sync,
     * Query) and per response the user synthesizes in between, each with
     * the kind it was queued under. A ring; it only grows when a client
     * pipelines. */
    uint16_t *q; /* type | kind << 8 */
    uint32_t q_head, q_len, q_cap;
    /* An ErrorResponse to an extended-protocol message arrived and no Sync
     * is queued yet: the server discards everything up to the next Sync
     * (Query messages included), so nothing sent meanwhile is answered. */
    bool skipping;
    bool idle_due; /* the queue emptied: tell idle once the message in progress ends */
    uint32_t stream_left; /* body bytes of the current message still to pass through */
    bool stream_swallow; /* ... and whether they are dropped */
    uint8_t stream_kind; /* ... and the kind of what they answer */
    bool unsynced; /* extended-protocol messages sent since the last Sync (the user's) */
    /* Transaction pooling: what of its users' state the session carries. */
    PgwBackendStmt *stmts; /* prepared statements under server-side names */
    uint32_t nstmts;
    uint64_t stmt_clock;
    PgwStmtBody *unnamed; /* what the unnamed statement holds; NULL: unknown or none */
    char *applied_sets; /* the SETs applied for the last user (NULL: none since reset) */
    struct PgwInternal *internal; /* pgwarden's own queries awaiting results, oldest first */
    int64_t rows; /* rows reported by CommandComplete since the last ReadyForQuery */
    bool in_process; /* backend_process is on the stack */
    bool free_pending; /* backend_free was called meanwhile */
    bool clean_pending; /* hand back to the home when the loop ends */
    bool fatal_seen; /* the server sent FATAL: it is going away */
    bool stray; /* a message came while nothing was owed and nobody used it */
    char *fatal_message;
    struct PgwBackend *next; /* the home's list (idle sessions) */
    /* The home's, under its lock: in its idle list; taken from there by
     * another worker, on the way to it (a mail in flight). */
    bool pooled, moving;
    int64_t idle_usec; /* when it went idle (CLOCK_MONOTONIC, us) */
    int64_t created_usec;
};

/* Start connecting on worker w. home is told when it is ready or failed;
 * on a failure before this returns, NULL is returned after
 * connect_failed ran. */
PgwBackend *backend_connect(const PgwBackendHome *ops, void *home, void *want, struct PgwWorker *w,
                            const char *conninfo, const char *options);
/* Move an idle session to worker w's event base (creates its bufferevent). */
void backend_attach(PgwBackend *b, struct PgwWorker *w);
/* Drop the bufferevent so the session can sit idle or move thread. */
void backend_detach(PgwBackend *b);
void backend_free(PgwBackend *b);

/* An idle session that is still watched for the server going away: its
 * reads are on, nothing came since it went idle, no FATAL, no EOF. On its
 * worker. */
bool backend_idle_watched(const PgwBackend *b);

/* Lend the session to a user (NULL: take it back). */
void backend_set_user(PgwBackend *b, const PgwBackendUser *ops, void *user);

/* Kinds of expected responses. The backend's own: */
#define RFQ_SWALLOW 0 /* pgwarden's own query: drop its responses */
#define RFQ_CAPTURE 1 /* pgwarden's own query whose rows it wants */
/* Any other kind is the user's: its responses are relayed through the
 * user's callbacks with the kind. */
#define RFQ_USER 2 /* the first kind free for the user */

/* Responses the user synthesizes, queued like messages sent (their type). */
#define BACKEND_SYNTH_PARSE '1' /* ParseComplete */
#define BACKEND_SYNTH_CLOSE '3' /* CloseComplete */
#define BACKEND_SYNTH_ERROR                                                                        \
    '!' /* an ErrorResponse of the user's (skips to Sync like the server's) */

/* A message of this type was written to the server (P, B, D, E, C, S, Q;
 * H marks a pipeline open; others are not answered), or a synthesized
 * response is due after everything queued (BACKEND_SYNTH_*: when nothing
 * is queued, the user's synth() runs at once; while the server skips to
 * Sync, it is dropped, as PostgreSQL would send nothing). */
void backend_expect(PgwBackend *b, char type, uint8_t kind);
/* backend_expect(b, 'Q', kind) */
void backend_expect_rfq(PgwBackend *b, uint8_t kind);
bool backend_busy(const PgwBackend *b); /* responses still expected */
/* What the user is owed, leaving out pgwarden's own queries (RFQ_SWALLOW,
 * RFQ_CAPTURE: their responses never reach the user, and their end wakes
 * nobody): every such response answers a message of one of these types
 * (the result cache: only the Parses of an open pipeline are owed). */
bool backend_owes_only(const PgwBackend *b, const char *types);
/* A ReadyForQuery (for a Query or a Sync) is among them. */
bool backend_owes_ready(const PgwBackend *b);
/* How many ReadyForQuery messages (for Query and Sync) of this kind are owed. */
uint32_t backend_expected(const PgwBackend *b, uint8_t kind);
/* Part of a relayed message has reached the user and the rest has not: the
 * user's stream cannot be repaired if the session dies now. */
bool backend_mid_message(const PgwBackend *b);
/* Nothing expected, nothing unsynced: the session can be given back clean. */
bool backend_reusable(const PgwBackend *b);
/* Give an idle session back to its home without a reset (transaction
 * pooling): at once, or when the relay loop on the stack unwinds. */
void backend_hand_back(PgwBackend *b);
/* The session's prepared statement cache (transaction pooling): find a
 * body (NULL: not prepared here), add one (returns the body evicted to
 * make room, with its reference, for the caller to close on the server,
 * or NULL), forget everything (the server dropped them: DISCARD ALL). */
PgwBackendStmt *backend_stmt_find(PgwBackend *b, const PgwStmtBody *body);
PgwStmtBody *backend_stmt_add(PgwBackend *b, PgwStmtBody *body, uint32_t max);
void backend_stmt_clear(PgwBackend *b);
/* Keep only the statements named in names (comma-separated: what the
 * server said it has when the clock read since); those prepared later
 * stay. Returns how many were dropped. */
uint32_t backend_stmt_retain(PgwBackend *b, const char *names, uint64_t since);
/* What the server's unnamed statement holds now (takes a reference). */
void backend_set_unnamed(PgwBackend *b, PgwStmtBody *body);

/* Write protocol bytes to the server (the user's messages). */
void backend_write(PgwBackend *b, const void *data, size_t len);
/* Move n bytes from the front of src to the server. */
void backend_forward(PgwBackend *b, struct evbuffer *src, size_t n);
/* Bytes written to the server and not yet taken by it. */
size_t backend_output_pending(const PgwBackend *b);
/* Call the user's drained() once the server has taken all but low of
 * what is pending. */
void backend_watch_output(PgwBackend *b, size_t low);

/* Queue pgwarden's own query; its responses are swallowed. */
void backend_send_internal(PgwBackend *b, const char *sql);
/* Queue pgwarden's own query and get its rows (or its error) back through
 * done, on the backend's worker; if the session dies first, done is called
 * with error set. It is never called after backend_internal_forget. values
 * are row-major, NULL for SQL NULL, and live only during the call; with
 * error set (and no rows), values[0] is the server's SQLSTATE, or NULL when
 * the error is not the server's (the session was lost). */
typedef struct PgwInternal PgwInternal;
typedef void (*PgwInternalDone)(void *arg, size_t nrows, size_t ncols, char **values,
                                const char *error);
PgwInternal *backend_internal_query(PgwBackend *b, const char *sql, PgwInternalDone done,
                                    void *arg);
void backend_internal_forget(PgwBackend *b, PgwInternal *q);
/* Reading was paused for a slow user: resume and relay what is buffered. */
void backend_resume(PgwBackend *b);
/* Re-read the tenant's schema on this idle session (after a reload); the
 * home gets it and the user is told idle as usual when it is done. */
void backend_refresh_schema(PgwBackend *b);
/* Ask PostgreSQL to cancel whatever the session runs (non-blocking for the
 * caller: libpq's blocking PQcancel runs on a short-lived thread). */
void backend_cancel(PgwBackend *b);

#endif
