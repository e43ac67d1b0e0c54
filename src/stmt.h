/*
 * stmt.h — the statement hook: every statement text a client sends (a Query
 * message or a Parse) passes through stmt_submit, which decides: forward it,
 * forward a rewrite, refuse it, or answer it without a backend.
 *
 * The decision may come later than the call (an LLM over HTTP, a Redis
 * cache): stmt_submit returns a handle and calls done() exactly once, either
 * before it returns or later on the client's worker; stmt_abort withdraws a
 * pending statement (client cancel or disconnect) and done() is then never
 * called.
 */
#ifndef PGW_STMT_H
#define PGW_STMT_H

#include "buf.h"
#include "pgw.h"

struct PgwClient;
struct PgwWorker;
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
} PgwStmtResult;

typedef struct PgwStmtRequest {
    struct PgwClient *client; /* valid until done() or stmt_abort */
    struct PgwWorker *worker;
    struct PgwSnapshot *snap;
    const char *user;
    const char *tenant;
    const char *client_addr;
    PgwStmtProtocol protocol;
    const char *sql;
    const struct PgwSchema *schema; /* the tenant's backend schema, or NULL when unknown */
} PgwStmtRequest;

typedef void (*PgwStmtDone)(void *arg, PgwStmtResult *res);
typedef struct PgwStmtHandle PgwStmtHandle;

PgwStmtHandle *stmt_submit(const PgwStmtRequest *req, PgwStmtDone done, void *arg);
void stmt_abort(PgwStmtHandle *h);
void stmt_result_free(PgwStmtResult *r);
/* Free the per-session state the hook keeps in *client_hook_state(). */
void stmt_session_free(void *state);

#endif
