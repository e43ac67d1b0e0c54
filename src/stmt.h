/*
 * stmt.h — the statement pipeline: every statement text a client sends (a
 * Query message or a Parse) passes through stmt_submit, which decides:
 * forward it, forward a rewrite, refuse it, or answer it without a backend.
 *
 * Text in, decision out. The pipeline knows nothing of sockets, clients or
 * backend sessions: the request carries all it needs — the texts and names,
 * the runtime snapshot, the tenant's schema, the session's per-client state
 * pointer, the event loop to run on, and a small callback interface (the
 * owner's) for the two things it may need from the client's side while a
 * statement is pending: pgwarden's own queries on the client's backend
 * session (ASK reads the schema and EXPLAINs generated SQL) and a
 * NoticeResponse sent to the client before the statement's results (ASK
 * progress).
 *
 * The decision may come later than the call (an LLM over HTTP, a long
 * statement decided on a policy thread, a Redis cache): stmt_submit returns
 * a handle and calls done() exactly once, either before it returns or later
 * on the event loop it was given; stmt_abort withdraws a pending statement
 * (client cancel or disconnect) and done() is then never called.
 */
#ifndef PGW_STMT_H
#define PGW_STMT_H

#include "buf.h"
#include "cache_key.h"
#include "kvcache.h"
#include "pgw.h"

struct event_base;
struct PgwRedis;
struct PgwSnapshot;
struct PgwSchema;
struct PgwAudit;

typedef enum { PGW_STMT_SIMPLE, PGW_STMT_PARSE } PgwStmtProtocol;
typedef enum { PGW_STMT_FORWARD, PGW_STMT_REWRITE, PGW_STMT_REFUSE, PGW_STMT_ANSWER } PgwStmtAction;

typedef struct PgwStmtResult {
    PgwStmtAction action;
    char *sql; /* REWRITE */
    char sqlstate[6]; /* REFUSE */
    char *message, *detail, *hint; /* REFUSE */
    PgwBuf answer; /* ANSWER: whole protocol messages up to (not including) ReadyForQuery */
    PgwBuf notices; /* NoticeResponses to send before the statement's results */
    struct PgwAudit *audit; /* the statement's audit record, or NULL; the caller finishes it */
    /* REWRITE, when the request asked for it (cache_verdict): the result
     * cache's verdict on the statement as the policy rewrote it, made where
     * the policy ran and without the runtime's facts (transaction, Bind,
     * row limit: the caller adds those), and the fingerprints of the
     * policy and schema it was decided under, for the keys. */
    bool has_verdict;
    PgwCacheVerdict verdict;
    uint8_t policy_fp[PGW_CACHE_DIGEST_LEN];
    uint8_t schema_fp[PGW_CACHE_DIGEST_LEN];
    bool from_ask; /* the SQL came from a model: the client's text does not determine it */
    /* REWRITE of a Parse whose parameters the backend would have typed
     * itself: the types to declare instead of the client's (every one
     * fixed, so the backend infers none; see stmt.c's parameter check). */
    size_t nparam_types;
    uint32_t *param_types;
    /* REFUSE without a message: the client's pipeline had already failed at
     * the server, which would have skipped this message and everything up
     * to the client's Sync without a word (stmt_param.c). */
    bool silent;
} PgwStmtResult;

/* The answer to one of pgwarden's own queries: rows as text, row-major,
 * NULL for SQL NULL, valid only during the call; or error set, and then
 * no rows and values[0] the server's SQLSTATE (NULL: the error is not the
 * server's, e.g. the session was lost). */
typedef void (*PgwStmtQueryDone)(void *arg, size_t nrows, size_t ncols, char **values,
                                 const char *error);

/* What the owner of a statement (the client's side) lends the pipeline while
 * the statement is pending. Every function is called on the request's event
 * loop, never after done() or stmt_abort. */
typedef struct PgwStmtSessionOps {
    /* Run sql on the client's backend session, after whatever the client
     * already sent there; done is called once, later, on the same loop
     * (with error set if the session dies first). Returns a handle, or NULL
     * when there is no usable session (done is then never called). */
    void *(*query)(void *owner, const char *sql, PgwStmtQueryDone done, void *arg);
    /* Forget a query: its done is never called. */
    void (*forget)(void *owner, void *query);
    /* Send msg (whole NoticeResponse messages) to the client now, in
     * protocol order: before the pending statement's own results. */
    void (*notice)(void *owner, const PgwBuf *msg);
} PgwStmtSessionOps;

typedef struct PgwStmtRequest {
    struct PgwSnapshot *snap; /* borrowed; the pipeline takes its own reference if it needs one */
    struct event_base *base; /* where later work (model calls, done) runs */
    const char *user;
    const char *tenant;
    const char *client_addr;
    PgwStmtProtocol protocol;
    const char *sql;
    /* Parse: the parameter type OIDs the client declared (0: unspecified),
     * host byte order; none for a Query. */
    size_t nparam_types;
    const uint32_t *param_types;
    /* The tenant's backend schema, or NULL when unknown, and the reference
     * that keeps it alive: from stmt_submit on the pipeline owns that
     * reference and drops it exactly once (schema_release(schema_ref)) when
     * nothing of the statement reads the schema any more — before done()
     * when the decision is immediate, and at the latest when the handle is
     * finished or aborted. schema_release may be NULL (nothing to drop). */
    const struct PgwSchema *schema;
    void (*schema_release)(void *schema_ref);
    void *schema_ref;
    /* The session's per-client state slot (ASK's conversation); it stays
     * valid while the statement is pending. The owner frees its content
     * with stmt_session_free when the session ends. */
    void **session_state;
    /* The owner's callbacks; NULL: no session to lend (then an ASK, which
     * needs the backend, is refused). */
    const PgwStmtSessionOps *ops;
    void *owner;
    /* The result cache is on: decide its verdict too (see PgwStmtResult). */
    bool cache_verdict;
    /* mode = redis: this loop's Redis connection, where ASK's rate limit,
     * token budget and translation cache are shared between instances;
     * NULL: in this process only. Borrowed; it outlives the statement. */
    struct PgwRedis *redis;
} PgwStmtRequest;

typedef void (*PgwStmtDone)(void *arg, PgwStmtResult *res);
typedef struct PgwStmtHandle PgwStmtHandle;

/* Returns NULL when done() has already been called, else the handle of the
 * pending statement. The request's strings and arrays are copied where the
 * pipeline keeps them; the caller may free them when this returns. done()
 * takes over what *res holds (copy the struct out; free it later with
 * stmt_result_free). */
PgwStmtHandle *stmt_submit(const PgwStmtRequest *req, PgwStmtDone done, void *arg);
void stmt_abort(PgwStmtHandle *h);
void stmt_result_free(PgwStmtResult *r);
/* Free the per-session state the pipeline keeps in *session_state. */
void stmt_session_free(void *state);

/* ASK's translation cache in this process (question and context -> SQL),
 * for SHOW CACHE and CACHE CLEAR. With mode = redis it also lives in Redis,
 * which this process only reads after a local miss. */
void stmt_ask_cache_clear(void);
void stmt_ask_cache_stats(PgwKvCacheStats *out);

#endif
