/*
 * stmt_int.h — inside the statement pipeline: deciding a statement on a
 * policy thread (stmt_offload.c) and checking a Parse's parameter types
 * (stmt_param.c), for stmt.c. Nothing outside the stmt module includes it.
 */
#ifndef PGW_STMT_INT_H
#define PGW_STMT_INT_H

#include "cache_key.h"
#include "pgw.h"
#include "policy.h"
#include "policy_cache.h"

struct event_base;
struct PgwSnapshot;

/* Whether a statement of len bytes is decided on the caller's thread. */
static inline bool stmt_policy_inline(size_t len)
{
    return len <= PGW_POLICY_INLINE_MAX;
}

/* The result cache's verdict on an allowed statement (cache_eligible
 * without the runtime's facts), on the thread where the policy decided it:
 * the parse needs the same stack. False (nothing in *out) when the policy
 * did not allow it. */
/* shape (may be NULL): the template that decided it (policy_cache.h), whose
 * verdict is computed once and remembered. */
bool stmt_cache_verdict(const PgwPolicyCtx *ctx, const PgwPolicyResult *pr,
                        const PgwPolicyShape *shape, PgwCacheVerdict *out);

typedef struct PgwPolicyTask PgwPolicyTask;
/* The decision, on the event loop the task was started from. rc is
 * policy_rewrite's; the callee frees *pr (policy_result_free). verdict:
 * the cache's, when asked for and the policy allowed it (the callee takes
 * it), else NULL. */
typedef void (*PgwPolicyTaskDone)(void *arg, int rc, PgwPolicyResult *pr, PgwCacheVerdict *verdict);

/* Decide sql under ctx on a policy thread (and the cache's verdict, when
 * verdict is set). ctx's cfg and tenant must belong to snap (the task holds
 * its own reference), its parameter types and sql are copied; ctx->schema
 * must stay alive until done runs, or until stmt_policy_abandon hands its
 * reference over. NULL when no policy thread can be started (done is then
 * never called). */
PgwPolicyTask *stmt_policy_offload(struct event_base *base, struct PgwSnapshot *snap,
                                   const PgwPolicyCtx *ctx, const char *sql, bool verdict,
                                   PgwPolicyTaskDone done, void *arg);
/* The caller no longer wants the decision (on the task's event loop):
 * done is never called, and release(ref) runs once nothing reads the
 * schema any more (at once when the task had not started). */
void stmt_policy_abandon(PgwPolicyTask *t, void (*release)(void *ref), void *ref);

typedef struct PgwStmtResult PgwStmtResult;

/* stmt_param.c: a Parse's parameters the backend would type itself.
 * Whether some parameter may be left to the backend (declared 0 or
 * unknown, or a $n beyond the declared ones). */
bool stmt_params_may_be_open(const char *sql, size_t ntypes, const uint32_t *types);
/* The session's answers, by statement and declared types: get sets res's
 * types (true) when one is kept; put keeps res's (a REWRITE with types). */
typedef struct PgwParamMemo PgwParamMemo;
bool stmt_params_memo_get(const PgwParamMemo *m, const char *sql, size_t ntypes,
                          const uint32_t *types, PgwStmtResult *res);
void stmt_params_memo_put(PgwParamMemo **m, const char *sql, size_t ntypes, const uint32_t *types,
                          const PgwStmtResult *res);
void stmt_params_memo_free(PgwParamMemo *m);
/* Turn the decision into a refusal (the audit record says so). */
void stmt_params_refuse(PgwStmtResult *res, const char *sqlstate, const char *message,
                        const char *hint);
/* The backend's answer to policy_param_probe's question (or its error,
 * values[0] its SQLSTATE): res becomes a refusal, or gets every
 * parameter's type to declare. */
void stmt_params_answer(PgwStmtResult *res, size_t ntypes, const uint32_t *declared_types,
                        size_t nrows, size_t ncols, char **values, const char *error);

#endif
