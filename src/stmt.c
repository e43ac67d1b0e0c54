/*
 * stmt.c — the statement hook; see stmt.h.
 *
 * Today every decision is immediate. The handle exists so that decisions
 * that take time (an LLM call, a Redis lookup) fit the same contract: the
 * caller never assumes done() ran before stmt_submit returned.
 */
#include "stmt.h"

#include <stdlib.h>
#include <string.h>

struct PgwStmtHandle {
    PgwStmtDone done;
    void *arg;
};

PgwStmtHandle *stmt_submit(const PgwStmtRequest *req, PgwStmtDone done, void *arg)
{
    PgwStmtResult res;
    memset(&res, 0, sizeof res);
    buf_init(&res.answer);
    buf_init(&res.notices);
    res.action = PGW_STMT_FORWARD;
    done(arg, &res);
    return NULL;
}

void stmt_abort(PgwStmtHandle *h)
{
    free(h);
}

void stmt_result_free(PgwStmtResult *r)
{
    free(r->sql);
    free(r->message);
    free(r->detail);
    free(r->hint);
    buf_free(&r->answer);
    buf_free(&r->notices);
    memset(r, 0, sizeof *r);
}
