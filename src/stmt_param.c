/*
 * stmt_param.c — a Parse's parameters that the backend would type itself
 * (the statement pipeline's check; stmt.c runs the question on the
 * client's session through the owner's ops).
 *
 * A Parse's parameter that the client leaves untyped (0, or unknown) is
 * typed by the backend from its context, and its Bind value is then read
 * by that type's input function, which pgwarden never sees: relacl @> $1
 * reads 'role=r/grantor' as aclitem[], looking both roles up, and
 * COALESCE($1, 'pg_class'::regclass) looks 'hush.secret' up, so a hidden
 * name would answer unlike a missing one. The policy cannot know the
 * context's type; the backend can. So before such a Parse goes, the
 * backend is asked which type each parameter would get (policy_param.c:
 * PREPARE under a name of pgwarden's, pg_prepared_statements, DEALLOCATE,
 * one Query on the client's own session after what the client sent there;
 * an open pipeline is closed with a Sync first, as for ASK's queries). A
 * parameter whose type's input may look names up (reg*, aclitem, their
 * arrays, row types, pseudo-types, through domains and ranges) refuses the
 * Parse with 42501 before any Bind value exists, so hidden and missing
 * names answer alike. Otherwise the Parse goes with every type declared:
 * the backend then infers nothing, and what it reads a Bind value as is a
 * type pgwarden checked, or the client's own declared one, which the
 * policy checked (policy_object_stmt.c). If the question fails (the
 * statement does not analyse, the transaction is aborted, a cancel came),
 * the Parse is refused with the backend's error, scrubbed as a relayed one
 * would be: what the Parse itself would have answered. No Parse is ever
 * forwarded with a type left open.
 *
 * Every other way a client's value reaches an input function of the
 * backend's choosing goes through the policy's text: a Query has no
 * parameters; EXECUTE's arguments are literals, and PREPARE must declare
 * every parameter's type; an ASK's SQL passes here like the client's.
 * Text and binary Bind values alike: the types are fixed before the Bind.
 *
 * Costs one round trip per Parse that leaves a parameter open (drivers that
 * declare their types pay nothing). A statement longer than the inline
 * limit is asked about whole, unparsed (parsing it again here would need
 * a policy thread's stack): a long DECLARE or EXPLAIN that leaves a
 * parameter open is refused. */
#include "stmt.h"
#include "stmt_int.h"

#include "audit.h"
#include "codec.h"
#include "policy.h"
#include "scrub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The highest $n in the text (counting string contents too: more, never
 * fewer, than the statement has). */
static unsigned long highest_ref(const char *sql)
{
    unsigned long max = 0;
    for (const char *p = strchr(sql, '$'); p; p = strchr(p + 1, '$')) {
        if (p[1] < '0' || p[1] > '9')
            continue;
        unsigned long n = strtoul(p + 1, NULL, 10);
        if (n > max)
            max = n;
    }
    return max;
}

/* Whether a parameter may be left to the backend: declared 0/unknown, or
 * a $n in the text beyond the declared ones (over-counting string
 * contents only costs a question). */
bool stmt_params_may_be_open(const char *sql, size_t ntypes, const uint32_t *types)
{
    for (size_t i = 0; i < ntypes; i++)
        if (policy_param_open(types[i]))
            return true;
    return highest_ref(sql) > ntypes;
}

/* ---------- the session's answers ----------
 *
 * A driver that sends the unnamed statement again for every execution
 * (node-postgres, psycopg) would pay the question each time: the answers
 * are kept per session, by a hash of the statement and its declared
 * types, direct-mapped and bounded. Even a collision (or a stale answer,
 * after DDL) cannot leave a type open: what is kept are types already
 * checked safe, every one declared, and a kept answer is used only when it
 * declares at least as many parameters as the text could hold. At worst
 * the Parse then fails, or runs with other safe types. */

#define PARAM_MEMO_SLOTS 32

struct PgwParamMemo {
    struct {
        uint64_t hash;
        size_t n;
        uint32_t *types;
    } slot[PARAM_MEMO_SLOTS];
};

static uint64_t memo_key(const char *sql, size_t ntypes, const uint32_t *types)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the text, then the types */
    for (const char *p = sql; *p; p++) {
        h ^= (uint8_t)*p;
        h *= 1099511628211ull;
    }
    for (size_t i = 0; i < ntypes; i++) {
        h ^= types[i] + 0x9e3779b9u;
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

bool stmt_params_memo_get(const PgwParamMemo *m, const char *sql, size_t ntypes,
                          const uint32_t *types, PgwStmtResult *res)
{
    if (!m)
        return false;
    uint64_t h = memo_key(sql, ntypes, types);
    size_t i = h % PARAM_MEMO_SLOTS;
    if (m->slot[i].hash != h || m->slot[i].n < ntypes || m->slot[i].n < highest_ref(sql))
        return false;
    res->nparam_types = m->slot[i].n;
    res->param_types = pgw_malloc((m->slot[i].n ? m->slot[i].n : 1) * sizeof *res->param_types);
    memcpy(res->param_types, m->slot[i].types, m->slot[i].n * sizeof *res->param_types);
    return true;
}

void stmt_params_memo_put(PgwParamMemo **m, const char *sql, size_t ntypes, const uint32_t *types,
                          const PgwStmtResult *res)
{
    if (res->action != PGW_STMT_REWRITE || !res->param_types)
        return;
    if (!*m)
        *m = pgw_calloc(1, sizeof **m);
    uint64_t h = memo_key(sql, ntypes, types);
    size_t i = h % PARAM_MEMO_SLOTS;
    free((*m)->slot[i].types);
    (*m)->slot[i].hash = h;
    (*m)->slot[i].n = res->nparam_types;
    (*m)->slot[i].types =
        pgw_malloc((res->nparam_types ? res->nparam_types : 1) * sizeof(uint32_t));
    memcpy((*m)->slot[i].types, res->param_types, res->nparam_types * sizeof(uint32_t));
}

void stmt_params_memo_free(PgwParamMemo *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < PARAM_MEMO_SLOTS; i++)
        free(m->slot[i].types);
    free(m);
}

void stmt_params_refuse(PgwStmtResult *res, const char *sqlstate, const char *message,
                        const char *hint)
{
    free(res->sql);
    res->sql = NULL;
    if (res->has_verdict) {
        cache_verdict_free(&res->verdict);
        res->has_verdict = false;
    }
    buf_reset(&res->notices);
    res->action = PGW_STMT_REFUSE;
    snprintf(res->sqlstate, sizeof res->sqlstate, "%s", sqlstate);
    free(res->message);
    free(res->hint);
    res->message = pgw_strdup(message);
    res->hint = hint ? pgw_strdup(hint) : NULL;
    audit_set_decision(res->audit, "refuse", NULL, message, sqlstate);
}

/* The question failed: the Parse gets the backend's error, scrubbed as a
 * relayed one would be (the Parse itself would have failed alike, in the
 * same transaction, on the same text). */
static void params_failed(PgwStmtResult *res, const char *sqlstate, const char *error)
{
    if (!sqlstate) {
        stmt_params_refuse(res, SQLSTATE_CONNECTION_FAILURE,
                           "pgwarden: the parameters' types could not be checked", NULL);
        return;
    }
    PgwBuf raw, clean;
    buf_init(&raw);
    buf_init(&clean);
    codec_error(&raw, "ERROR", sqlstate, error, NULL, NULL);
    PgwErrorFields ef;
    memset(&ef, 0, sizeof ef);
    char *body = NULL;
    if (raw.len > 5 && scrub_backend_error('E', raw.data + 5, raw.len - 5, &clean) == 0 &&
        clean.len > 5) {
        body = pgw_malloc(clean.len - 5 + 1);
        memcpy(body, clean.data + 5, clean.len - 5);
        body[clean.len - 5] = '\0';
        if (codec_parse_error((const uint8_t *)body, clean.len - 5, &ef) != 0)
            memset(&ef, 0, sizeof ef);
    }
    char state[6];
    snprintf(state, sizeof state, "%s", ef.sqlstate ? ef.sqlstate : SQLSTATE_INTERNAL_ERROR);
    stmt_params_refuse(res, state, ef.message ? ef.message : "pgwarden: the statement failed",
                       NULL);
    free(body);
    buf_free(&raw);
    buf_free(&clean);
}

void stmt_params_answer(PgwStmtResult *res, size_t ntypes, const uint32_t *declared_types,
                        size_t nrows, size_t ncols, char **values, const char *error)
{
    if (error && strcmp(error, PGW_ERR_PIPELINE_FAILED) == 0) {
        /* An earlier message of the client's pipeline failed: PostgreSQL
         * skips this Parse and the rest up to Sync, answering nothing. */
        params_failed(res, NULL, error);
        res->silent = true;
        return;
    }
    if (error || (nrows > 0 && ncols != 3)) {
        params_failed(res, error ? values[0] : NULL, error ? error : "unexpected answer");
        return;
    }
    size_t n = nrows > ntypes ? nrows : ntypes;
    uint32_t *types = pgw_calloc(n ? n : 1, sizeof *types);
    for (size_t i = 0; i < n; i++) {
        uint32_t declared = i < ntypes ? declared_types[i] : 0;
        if (!policy_param_open(declared)) {
            types[i] = declared;
            continue;
        }
        const char *oid = i < nrows ? values[3 * i + 1] : NULL;
        const char *unsafe = i < nrows ? values[3 * i + 2] : NULL;
        types[i] = oid ? (uint32_t)strtoul(oid, NULL, 10) : 0;
        if (types[i] == 0 || policy_param_open(types[i]) || !unsafe || strcmp(unsafe, "f") != 0) {
            const char *name = policy_param_type_name(types[i]);
            char msg[256];
            if (name)
                snprintf(msg, sizeof msg,
                         "pgwarden: parameter $%zu would be read as %s, whose input looks names "
                         "up",
                         i + 1, name);
            else
                snprintf(msg, sizeof msg,
                         "pgwarden: parameter $%zu would be read as a type (OID %u) whose input "
                         "pgwarden cannot check",
                         i + 1, types[i]);
            free(types);
            stmt_params_refuse(res, SQLSTATE_INSUFFICIENT_PRIVILEGE, msg,
                               "Declare the parameter text and convert it in the query: "
                               "to_regclass($1), to_regrole($1) and the like; read ACLs with "
                               "aclexplode().");
            return;
        }
    }
    res->nparam_types = n;
    res->param_types = types;
}
