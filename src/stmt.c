/*
 * stmt.c — the statement hook; see stmt.h.
 *
 * Today the decision is the policy's: parse, refuse or rewrite. It is
 * immediate, but the handle exists so that decisions that take time (an LLM
 * call, a Redis lookup) fit the same contract: the caller never assumes
 * done() ran before stmt_submit returned.
 *
 * Fail closed: without the tenant's schema, or when the policy itself
 * fails, the statement is refused, never forwarded as written.
 */
#include "stmt.h"

#include "audit.h"
#include "config.h"
#include "log.h"
#include "policy.h"
#include "server.h"

#include <stdlib.h>
#include <string.h>

struct PgwStmtHandle {
    PgwStmtDone done;
    void *arg;
};

static void refuse(PgwStmtResult *res, const char *sqlstate, const char *message, const char *hint)
{
    res->action = PGW_STMT_REFUSE;
    snprintf(res->sqlstate, sizeof res->sqlstate, "%s", sqlstate);
    res->message = pgw_strdup(message);
    res->hint = pgw_strdup(hint);
}

PgwStmtHandle *stmt_submit(const PgwStmtRequest *req, PgwStmtDone done, void *arg)
{
    PgwStmtResult res;
    memset(&res, 0, sizeof res);
    buf_init(&res.answer);
    buf_init(&res.notices);
    PgwConfig *cfg = req->snap->cfg;
    PgwAudit *audit = audit_begin(req->user, req->tenant, req->client_addr, "sql",
                                  req->protocol == PGW_STMT_SIMPLE ? "simple" : "extended", req->sql);
    const PgwTenant *tenant = config_tenant(cfg, req->tenant);
    if (!tenant || !req->schema) {
        refuse(&res, SQLSTATE_CANNOT_CONNECT_NOW,
               "pgwarden: the tenant's schema is not known yet, so no statement can be checked",
               "Retry in a moment.");
        audit_set_decision(audit, "refuse", NULL, "schema unknown", res.sqlstate);
    } else {
        PgwPolicyCtx ctx = {.cfg = cfg, .tenant = tenant, .schema = req->schema};
        PgwPolicyResult pr;
        memset(&pr, 0, sizeof pr);
        if (policy_rewrite(&ctx, req->sql, &pr) != 0) {
            refuse(&res, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                   "pgwarden: the statement could not be checked, so it is refused", NULL);
            audit_set_decision(audit, "refuse", NULL, pr.reason ? pr.reason : "policy failure",
                               res.sqlstate);
        } else if (pr.decision == PGW_POLICY_REFUSE) {
            refuse(&res, pr.sqlstate, pr.message, pr.hint);
            audit_set_decision(audit, "refuse", NULL, pr.reason, pr.sqlstate);
        } else {
            res.action = PGW_STMT_REWRITE;
            res.sql = pgw_strdup(pr.sql);
            audit_set_decision(audit, "allow", pr.sql, pr.reason, NULL);
        }
        policy_result_free(&pr);
    }
    res.audit = audit;
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
    audit_discard(r->audit);
    memset(r, 0, sizeof *r);
}
