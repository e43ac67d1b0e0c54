/*
 * link.h — the relay between one client and the backend session it uses:
 * the one place that knows both sides.
 *
 * The client (client.c) speaks the protocol with its peer and decides what
 * each message is; the link moves bytes and keeps them in protocol order.
 * It owns the client's use of a session: taking one from the tenant's pool
 * (waiting up to pool_timeout), giving it back clean (or discarding it),
 * forwarding the client's messages, relaying the server's responses to the
 * client's output (ErrorResponse and NoticeResponse through the scrubber),
 * flow control both ways (a client that does not read stops the relay; a
 * server that does not read stops the client's input), the end of each
 * statement (statistics, audit records), pgwarden's own queries on the
 * session, and what pgwarden answers itself: a refusal, a notice or a
 * cached answer is held until the responses to everything already sent to
 * the server have been relayed (link_answer), and inside an unsynced
 * extended-protocol pipeline a refusal waits for the client's Sync.
 *
 * Transaction pooling (link_txn.c): with pool_mode = transaction the link
 * holds a session only while a transaction, an autocommit statement or an
 * extended-protocol batch runs, and carries the client's session state
 * across the sessions it lands on: protocol-level prepared statements
 * under shared server-side names (prepared where the client lands, an LRU
 * bound per session), the unnamed statement, the settings it changed.
 *
 * Seams for what will grow here: a hook on every byte relayed to the
 * client and on every relayed ReadyForQuery (PgwLinkHooks: the result
 * cache captures answers there; transaction pooling learns there when a
 * transaction ends), and link_answer, which answers a statement from bytes
 * without needing a session at all (the cache replays hits through it).
 *
 * The link never reads the client's socket and never decides anything about
 * a statement; it reports to its client through PgwLinkOps. All of it runs
 * on the client's worker.
 */
#ifndef PGW_LINK_H
#define PGW_LINK_H

#include "buf.h"
#include "pgw.h"

struct PgwWorker;
struct PgwPool;
struct PgwPoolWait;
struct PgwBackend;
struct PgwAudit;
struct bufferevent;
struct evbuffer;
struct event;

/* The client's side, called on its worker. */
typedef struct PgwLinkOps {
    /* Input processing may go on: the session is idle again, the server
     * took the input that was pending, or answers were flushed. */
    void (*resume)(void *owner);
    /* Everything sent to the session has been answered. */
    void (*idle)(void *owner);
    /* A session the client waited for is linked now. */
    void (*acquired)(void *owner);
    /* No session: the pool refused or pool_timeout passed. */
    void (*acquire_failed)(void *owner, const char *sqlstate, const char *message);
    /* The session died (how: PgwLinkLoss). For a statement, the errors for
     * the statements in flight have been written, and skip_to_sync says an
     * extended-protocol pipeline was open (the client must discard up to
     * Sync, as PostgreSQL does after an error). */
    void (*lost)(void *owner, const char *why, int how, bool skip_to_sync);
    /* The link refused the extended-protocol message of this type the
     * client is on (an unknown statement name, a duplicate one): answer it
     * as an error and skip to Sync. */
    void (*refused)(void *owner, char type, const char *sqlstate, const char *message);
} PgwLinkOps;

typedef enum {
    /* Outside any transaction: the client goes on, on a new session. */
    PGW_LOSS_STATEMENT,
    /* Inside a transaction: it is gone, and the client must be told so
     * (a FATAL, then close): a next statement must never run outside the
     * transaction the client believes it is in. */
    PGW_LOSS_TRANSACTION,
    /* Part of a message had reached the client: its stream cannot be
     * repaired; close without writing anything more. */
    PGW_LOSS_STREAM,
} PgwLinkLoss;

/* Hooks on the relay (see above). Called on the client's worker from inside
 * the relay loop; they must not write to the client or the session. */
typedef struct PgwLinkHooks {
    /* Bytes the session sent that were relayed to the client, in order, as
     * they pass: whole messages and pieces of streamed ones (after
     * scrubbing, exactly as the client gets them). */
    void (*relayed)(void *arg, const uint8_t *data, size_t len);
    /* A relayed ReadyForQuery: what the client sent before it is complete;
     * tx_status is 'I', 'T' or 'E'. */
    void (*ready)(void *arg, char tx_status);
} PgwLinkHooks;

typedef struct PgwLinkAudit PgwLinkAudit;
typedef struct PgwLinkStmt PgwLinkStmt;
typedef struct PgwLinkErr PgwLinkErr;
struct PgwStmtBody;

/* Embedded in the client; all fields are link.c's. */
typedef struct PgwLink {
    struct bufferevent *out; /* the client's bufferevent: where relayed bytes go */
    struct PgwPool *pool; /* NULL until link_init */
    const PgwLinkOps *ops;
    void *owner;
    const PgwLinkHooks *hooks;
    void *hooks_arg;
    struct PgwBackend *be;
    struct PgwPoolWait *wait; /* while waiting for a session */
    struct event *wait_timer;
    uint32_t conn_id; /* the client's registry id: its worker, its published backend pid */
    bool waiting;
    bool answer_pending; /* pending_out waits for the session to drain */
    bool answer_ready; /* ... and is followed by a ReadyForQuery */
    bool throttled; /* the relay is paused for the client's output */
    bool input_paused; /* the server is not taking our writes */
    bool partial; /* the session has part of a client message */
    bool answers_paused; /* the client's input waits for its output to drain */
    /* Transaction pooling (link_txn.c). */
    bool txn; /* pool_mode = transaction for this client (fixed at login) */
    bool dirty; /* the transaction changed session state: read it before release */
    bool pinned; /* SQL PREPARE or a WITH HOLD cursor keep the client on its session */
    void *state_query; /* reading the session's state, before release */
    uint64_t state_clock; /* the session's statement clock when it was sent */
    char *sets; /* the client's settings, as statements (NULL: none) */
    PgwLinkStmt **stmts; /* the client's named statements: hash buckets */
    uint32_t stmt_buckets, nstmts;
    size_t stmt_bytes; /* their bodies, against max_prepared_memory */
    struct PgwStmtBody *unnamed; /* the client's unnamed statement */
    PgwLinkErr *errs_head, *errs_tail; /* refusals queued in the session's response order */
    PgwBuf pending_out;
    char *startup_sets; /* SET statements for the session, applied when it is linked */
    PgwLinkAudit *audit_head, *audit_tail; /* forwarded statements awaiting ReadyForQuery */
} PgwLink;

void link_init(PgwLink *l, uint32_t conn_id, struct bufferevent *out, struct PgwPool *pool,
               const PgwLinkOps *ops, void *owner);
/* pool_mode = transaction for this client (at login, before a session). */
void link_set_transaction_mode(PgwLink *l, bool on);
bool link_transaction_mode(const PgwLink *l);
/* The client has nothing in flight: in transaction mode, give the session
 * back if it is between transactions. */
void link_quiet(PgwLink *l);
/* Prepared statements the client has (SHOW CLIENTS). */
uint32_t link_prepared_count(const PgwLink *l);
/* Transaction mode: a Bind, Describe or Close whose first take bytes are
 * in src (the whole message for Describe and Close; for Bind at least its
 * names) and whose whole length is whole. The statement it names is
 * prepared on the session if needed and the message goes on under the
 * server-side name; *rest is what is still to forward (link_forward).
 * Returns -1 when refused (ops->refused has run; nothing was taken). */
int link_named_message(PgwLink *l, struct evbuffer *src, char type, size_t take, size_t whole,
                       size_t *rest) PGW_WUR;
/* The bytes of a Bind needed before link_named_message can take it. */
size_t link_named_take(char type, size_t whole);
/* The client's output is past its bound: stop reading it (resume follows
 * when it drained), exactly as the relay stops for a slow reader. */
bool link_output_congested(PgwLink *l);
/* The tenant's pool (NULL before link_init). */
struct PgwPool *link_pool(const PgwLink *l);
/* The client goes away: withdraw a wait, give the session back when it is
 * idle and clean (reset, then reused), discard it when it was mid-statement,
 * close the open audit records. A link never initialized is fine. */
void link_close(PgwLink *l);
void link_set_hooks(PgwLink *l, const PgwLinkHooks *hooks, void *arg);

/* The client may drop its bufferevent (an idle client, client.c): the
 * link holds no session, waits for none, owes the client nothing and has
 * no flow control armed on it. link_park then frees what the link keeps
 * only for reuse; until link_unpark gives it a bufferevent back, the
 * link must not be asked to write (nothing can: it has no session). */
bool link_parkable(const PgwLink *l);
void link_park(PgwLink *l);
void link_unpark(PgwLink *l, struct bufferevent *out);

/* Make sure a session is linked. True when it is; false when the client
 * waits (acquired or acquire_failed follows) or when the pool refused at
 * once (acquire_failed has already been called). */
bool link_acquire(PgwLink *l);
bool link_waiting(const PgwLink *l);
bool link_has_session(const PgwLink *l);
/* Responses are still expected from the session. */
bool link_busy(const PgwLink *l);
/* No extended-protocol message went to the session since its last Sync
 * (true without a session). */
bool link_synced(const PgwLink *l);
/* What the session still owes, for the result cache, which must know
 * where the answer to the next statement will begin in the relayed bytes.
 * Responses the client never sees (pgwarden's own queries and Syncs) do
 * not count: nothing announces them. */
typedef enum {
    PGW_LINK_OWES_NOTHING,
    PGW_LINK_OWES_PARSES, /* only (Parse|ParseComplete)s of the open pipeline: answered first */
    PGW_LINK_OWES_READY, /* up to a ReadyForQuery of the client's: the ready hook follows */
    PGW_LINK_OWES_PIPELINE, /* other messages of a pipeline whose Sync has not come */
} PgwLinkOwed;
PgwLinkOwed link_owed(const PgwLink *l);
/* The transaction status to report: the session's, 'I' without one. */
char link_tx_status(const PgwLink *l);
/* An answer of pgwarden's own waits for the session to drain. */
bool link_answer_pending(const PgwLink *l);
/* The server is not taking what the client sends: stop reading the client
 * (resume follows). */
bool link_input_congested(PgwLink *l);
/* After a reload, re-read the tenant's schema on the idle session before
 * the next statement: true when that started (idle follows). */
bool link_refresh_schema(PgwLink *l);
/* SETs for the client's startup parameters (takes sql): run on the
 * session now, or when one is linked. */
void link_set_startup_sets(PgwLink *l, char *sql);

/* Forward n bytes of one client message of this type from src to the
 * session (extended-protocol messages open a pipeline until Sync). A
 * message may go in parts: last says whether these bytes end it (a
 * session holding part of a message is never reused). */
void link_forward(PgwLink *l, struct evbuffer *src, size_t n, char type, bool last);
/* Forward a (rewritten) Query ('Q') or Parse ('P') message; its audit
 * record is finished when the statement's ReadyForQuery passes. */
void link_send_statement(PgwLink *l, char type, const PgwBuf *msg, struct PgwAudit *audit);
/* The client's Sync (n bytes at the front of src). after_error: the client
 * was discarding messages after an error; the refusal held for this Sync,
 * if any, goes before its ReadyForQuery. A Sync of a pipeline none of
 * whose messages reached the session (pgwarden answered them all: the
 * result cache) is answered here, after what is still due. */
void link_sync(PgwLink *l, struct evbuffer *src, size_t n, bool after_error);
/* An ErrorResponse for the message the client is on: a simple-protocol one
 * is answered with ReadyForQuery; an extended-protocol one inside an
 * unsynced pipeline is held for the client's Sync. */
void link_error(PgwLink *l, const PgwBuf *err, bool simple);
/* pgwarden's own answer: msgs (whole messages), then ReadyForQuery when
 * with_ready, after the responses to everything already sent to the
 * session; at once when nothing is outstanding or there is no session. */
void link_answer(PgwLink *l, const PgwBuf *msgs, bool with_ready);

/* pgwarden's own query on the session, after what the client sent (an open
 * pipeline is closed with a Sync first); NULL without a usable session.
 * done is called as backend_internal_query's (with error: values[0] is the
 * server's SQLSTATE or NULL). */
typedef void (*PgwLinkQueryDone)(void *arg, size_t nrows, size_t ncols, char **values,
                                 const char *error);
void *link_query(PgwLink *l, const char *sql, PgwLinkQueryDone done, void *arg);
void link_forget(PgwLink *l, void *query);

/* Cancel what the session runs, if it runs anything. */
void link_cancel(PgwLink *l);
/* The client's output drained below its low-water mark. */
void link_client_drained(PgwLink *l);


#endif
