/*
 * policy.h — the statement policy: only read-only queries pass, and every
 * relation they read is replaced by the tenant's filtered, masked view of it.
 *
 * policy_rewrite() is pure: SQL text + configuration + tenant + backend
 * schema snapshot in, a decision and the SQL to forward out. It does no I/O
 * and may be called from any thread. Decisions are cached by (config
 * version, schema snapshot, tenant, text); see policy.c for the design.
 */
#ifndef PGW_POLICY_H
#define PGW_POLICY_H

#include "config.h"
#include "pgw.h"
#include "schema.h"

typedef enum { PGW_POLICY_ALLOW, PGW_POLICY_REFUSE } PgwPolicyDecision;

typedef struct PgwPolicyResult {
    PgwPolicyDecision decision;
    char *sql; /* ALLOW: the rewritten SQL to forward (malloc'd) */
    char sqlstate[6]; /* REFUSE */
    char *message; /* REFUSE: client-facing, never names a hidden object */
    char *hint; /* may be NULL */
    char *reason; /* for the audit log (may name policy details) */
    bool cacheable; /* read-only and no volatile functions: a result cache may answer it */
    bool read_only_query; /* returns rows (SELECT/VALUES/TABLE/...), not SET/BEGIN/... */
    /* ALLOW: every relation the statement reads, as "schema.name" (base
     * tables, views, catalogs; each once), for the result cache's per-table
     * ttl and invalidation. */
    size_t nrelations;
    char **relations;
} PgwPolicyResult;

typedef struct PgwPolicyCtx {
    const PgwConfig *cfg;
    const PgwTenant *tenant;
    const PgwSchema *schema;
    /* A Parse message's parameter type OIDs (0: unspecified); none for a
     * Query. They are part of the decision: a typed parameter is converted
     * by the backend before any rewrite of ours can look at it. */
    size_t nparam_types;
    const uint32_t *param_types;
    /* Set by the rewrite cache only: the parameters are numeric literals
     * lifted out of the text (statement templates), typed by param_types,
     * and must be judged exactly as those literals would be. */
    bool params_are_literals;
} PgwPolicyCtx;

/* Where the runtime may call policy_rewrite. Statements up to
 * PGW_POLICY_INLINE_MAX bytes are decided inline on a worker thread with at
 * least PGW_POLICY_INLINE_STACK bytes of stack (a fraction of a millisecond);
 * longer ones go to a policy thread with PGW_POLICY_STACK_SIZE bytes of
 * stack, enough for any statement up to max_query_size, so one huge or deep
 * statement never holds up the other clients of a worker.
 *
 * Measured (x86-64, -O2, libpg_query 15-4, protobuf-c 1.4): libpg_query's
 * parse needs about 346 bytes of stack per nesting level, and a chain like
 * SELECT 1+1+...+1 nests a level every 2 bytes, so up to ~175 bytes per
 * input byte (a 200 kB chain: 34.8 MB). Everything after the parse is
 * bounded by max_nesting_depth (refused before unpacking): the whole
 * rewrite of a statement at the default 10,000 levels, parse included,
 * needed 9.4 MB (4,000 levels: 3.7 MB). So a 16 kB statement needs at most
 * ~9.4 MB (16 MB leaves room for the worker's own frames), and a 1 MB one
 * ~175 MB + 6 MB (256 MB). policy_rewrite checks the stack it is given all
 * the same and moves to a helper thread when it is short (policy_guard.c,
 * whose estimates carry a margin of two), so a larger max_query_size or
 * max_nesting_depth, or a sanitizer build, costs a thread, never a crash. */
#define PGW_POLICY_INLINE_MAX (16 * 1024)
#define PGW_POLICY_INLINE_STACK (16u * 1024 * 1024)
#define PGW_POLICY_STACK_SIZE (256u * 1024 * 1024)

/* Decide on one Query text (several statements allowed: all are refused if
 * one is) or one Parse text ($n parameters are kept). Returns 0 when a
 * decision is in *out (allow or refuse), -1 on internal failure (out of
 * memory, library fault), which the caller treats as a refusal. Free *out
 * with policy_result_free in both cases. Uses the rewrite cache. */
int policy_rewrite(const PgwPolicyCtx *ctx, const char *sql, PgwPolicyResult *out) PGW_WUR;
/* Run fn(arg) with at least need bytes of stack: on the calling thread when
 * it has that much left, else on a helper thread created with it (returns
 * fn's result, -1 when no such thread could be made). For anything that
 * recurses over a parse tree, as the rewrite itself does. */
int policy_guard_run(size_t need, int (*fn)(void *), void *arg) PGW_WUR;
/* The same without the cache (tests, benchmarks). */
int policy_rewrite_uncached(const PgwPolicyCtx *ctx, const char *sql, PgwPolicyResult *out) PGW_WUR;
void policy_result_free(PgwPolicyResult *r);

/* ---- rewrite cache ---- */
typedef struct PgwPolicyCacheStats {
    unsigned long hits;
    unsigned long misses;
    size_t entries;
    size_t capacity; /* the byte bound (rewrite_cache_size) */
    size_t bytes; /* what the entries take */
    unsigned long shape_hits; /* templates made without a scan (policy_cache.c) */
    unsigned long plain_hits; /* texts known, without a scan, to have no template */
} PgwPolicyCacheStats;

void policy_cache_stats(PgwPolicyCacheStats *out);
void policy_cache_clear(void);

/* Average cost of one rewrite of sql in microseconds, uncached and served
 * from the cache, over iterations runs each. */
int policy_measure_us(const PgwPolicyCtx *ctx, const char *sql, int iterations, double *uncached_us,
                      double *cached_us) PGW_WUR;

/* policy_param.c: the parameters the backend would type itself. The
 * prefix of the names its questions PREPARE under (reserved: no client
 * statement may use one, and pg_prepared_statements leaves them out). */
#define PGW_PARAM_PROBE_PREFIX "pgwarden_param_probe_"
/* A parameter type OID the backend infers from context (0, or unknown). */
bool policy_param_open(uint32_t oid);
/* The statement to forward as a Parse with these declared types leaves
 * some parameter for the backend to type: *probe is the SQL that asks the
 * backend which types it would give (rows: number, type OID, whether that
 * type's input may look names up), or NULL when nothing is left to infer.
 * -1: the statement cannot be asked about (refuse it). may_parse: the
 * statement may be parsed on this thread (the policy parsed its rewrite
 * here); else the whole text is asked about, unparsed. */
int policy_param_probe(const char *sql, size_t ntypes, const uint32_t *types, bool may_parse,
                       char **probe) PGW_WUR;
/* A type whose input looks names up, by name (NULL when it is not one). */
const char *policy_param_type_name(uint32_t oid);

#endif
