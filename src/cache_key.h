/*
 * cache_key.h — what identifies a cached answer, and whether a statement may
 * have one at all. Pure: plain data in, a digest or a reason out; no I/O, no
 * locks beyond two small memo tables, callable from any thread.
 *
 * A key is a SHA-256 digest over a tagged, length-prefixed serialization of
 * everything that decides the answer's bytes: the tenant, the policy in
 * effect for it (a digest of the configuration's content, not a process-local
 * counter, so instances sharing a Redis and restarts agree, and a reload that
 * changes a row filter, a mask or a ttl makes every old entry unreachable),
 * the backend schema it was decided against (again by content), the protocol
 * shape, the statement, its parameter types, values and formats, the result
 * formats, and the session settings that shape the bytes. Two users of one
 * tenant get the same key; two tenants never do, because the tenant and its
 * policy are inside the digest and entries are also filed under their tenant.
 *
 * The statement is either the policy's rewrite (the primary key) or, for the
 * fast path, the client's own text (raw_text): the rewrite is a deterministic
 * function of (text, configuration, tenant, schema, parameter types), all of
 * which the raw key carries, so a raw-text key identifies the same answer and
 * a hit can skip parsing and the policy altogether.
 *
 * Eligibility (cache_eligible) errs towards "not cacheable": an answer that
 * depends on the clock, on randomness, on server state or on a function whose
 * volatility pgwarden cannot know is never stored. What eligibility can get
 * wrong is freshness, bounded by the ttl, and only for the tenant whose own
 * statement it was; isolation between tenants rests on the key, not on this.
 */
#ifndef PGW_CACHE_KEY_H
#define PGW_CACHE_KEY_H

#include "config.h"
#include "pgw.h"
#include "policy.h"
#include "schema.h"

#define PGW_CACHE_DIGEST_LEN 32

typedef struct PgwCacheKey {
    uint8_t digest[PGW_CACHE_DIGEST_LEN];
} PgwCacheKey;

/* How the answer is asked for, which decides which messages make it up.
 * SIMPLE: a Query; the answer is every statement's RowDescription, DataRows
 * and CommandComplete (or EmptyQueryResponse) in order. EXTENDED: a portal
 * from Bind; its RowDescription (what Describe of the portal answers) is kept
 * apart from what Execute answers (DataRows and CommandComplete). */
typedef enum { PGW_CACHE_SIMPLE, PGW_CACHE_EXTENDED } PgwCacheShape;

/* One session setting in effect for the statement (name as the client or
 * the backend spelled it; compared case-insensitively). */
typedef struct PgwCacheSetting {
    const char *name;
    const char *value;
} PgwCacheSetting;

/* A Bind message, parsed in place: pointers into the caller's body. */
typedef struct PgwCacheBind {
    const char *portal;
    const char *statement;
    uint16_t nformats; /* parameter format codes: 0, 1 (for all) or nparams */
    const uint8_t *formats_raw; /* nformats network-order int16 */
    uint16_t nparams;
    const uint8_t *params_raw; /* nparams x (int32 length, -1 = NULL; bytes) */
    size_t params_len;
    uint16_t nresult_formats; /* 0, 1 (for all) or one per column */
    const uint8_t *result_formats_raw;
} PgwCacheBind;

/* Parse a Bind body (after the 5-byte header). -1 when malformed. */
int cache_parse_bind(const uint8_t *body, size_t len, PgwCacheBind *out) PGW_WUR;
/* Parameter i of a parsed Bind: its format (0 text, 1 binary, other:
 * invalid) and value (*len -1 for NULL). -1 when i is out of range. */
int cache_bind_param(const PgwCacheBind *b, size_t i, int *format, const uint8_t **value,
                     int32_t *len) PGW_WUR;

/* The policy in effect for one tenant, by content (see above). Memoized per
 * configuration snapshot. */
void cache_policy_fingerprint(const PgwConfig *cfg, const PgwTenant *tenant,
                              uint8_t out[PGW_CACHE_DIGEST_LEN]);
/* A backend schema snapshot, by content; NULL schema has its own value.
 * Memoized per snapshot. */
void cache_schema_fingerprint(const PgwSchema *schema, uint8_t out[PGW_CACHE_DIGEST_LEN]);

typedef struct PgwCacheKeyInput {
    const char *tenant;
    const uint8_t *policy_fp; /* cache_policy_fingerprint */
    const uint8_t *schema_fp; /* cache_schema_fingerprint */
    PgwCacheShape shape;
    bool raw_text; /* sql is the client's text (fast path), not the policy's rewrite */
    const char *sql;
    size_t nparam_types; /* from Parse; 0 for a Query */
    const uint32_t *param_types;
    const PgwCacheBind *bind; /* EXTENDED: the portal's Bind; NULL for SIMPLE */
    size_t nsettings; /* the session's settings; order does not matter */
    const PgwCacheSetting *settings;
    /* or, when not NULL, cache_settings_fingerprint of them (the same key) */
    const uint8_t *settings_fp;
} PgwCacheKeyInput;

/* The settings that shape answers (cache_setting_shapes_answer), by
 * content: order and the case of names do not matter, the last of two
 * with one name wins. */
void cache_settings_fingerprint(size_t n, const PgwCacheSetting *settings,
                                uint8_t out[PGW_CACHE_DIGEST_LEN]);

/* Build the key. -1 (and why) when the input cannot have one: a Bind whose
 * format counts or codes PostgreSQL itself would reject, a missing Bind. */
int cache_key_build(const PgwCacheKeyInput *in, PgwCacheKey *out, char *why, size_t whylen) PGW_WUR;
/* 64 lower-case hex digits and a NUL. */
void cache_key_hex(const PgwCacheKey *key, char out[2 * PGW_CACHE_DIGEST_LEN + 1]);
/* Whether a setting can change the bytes of an answer (everything not on a
 * short list of timeouts and labels does: unknown names count). */
bool cache_setting_shapes_answer(const char *name);

/* ---- eligibility ---- */

typedef struct PgwCacheStatement {
    const PgwConfig *cfg;
    const PgwTenant *tenant;
    const PgwSchema *schema; /* column types for casts to date/time; NULL: all suspect */
    const PgwPolicyResult *policy; /* policy_rewrite's decision for the statement */
    bool in_transaction; /* the session is inside BEGIN (ReadyForQuery said 'T' or 'E') */
    bool settings_unknown; /* the runtime lost track of the session's settings */
    const PgwCacheBind *bind; /* EXTENDED: parameter values are checked too */
    const uint32_t *param_types; /* from Parse, nparam_types of them (0: unspecified) */
    size_t nparam_types;
    uint32_t max_rows; /* Execute's row limit; 0: all rows */
} PgwCacheStatement;

typedef struct PgwCacheVerdict {
    bool cacheable;
    int ttl_ms; /* cacheable: the entry's lifetime (ttl, or the shortest cache_ttl) */
    char reason[192]; /* not cacheable: "because ..." for the audit log and tests */
    /* Whatever the verdict (once the statement was analysed at all): it
     * cannot change a session setting (only SELECTs, transaction control
     * and SHOW; no set_config(), no user-defined function, which may SET
     * anything), and whether it drops
     * prepared statements (DEALLOCATE, DISCARD). A runtime that tracks the
     * session's settings and statements knows from these when to look
     * again. Both are false/true, the safe side, when not analysed. */
    bool settings_safe;
    bool drops_prepared;
    /* cacheable: every relation the answer depends on, "schema.name" (the
     * policy's list and the rewrite's qualified relations), for the store's
     * per-table invalidation. Free with cache_verdict_free. */
    size_t nrelations;
    char **relations;
} PgwCacheVerdict;

/* Decide whether the statement's answer may be stored and served. Parses the
 * policy's rewrite once (a miss is about to go to the backend anyway); a hit
 * through a key never needs this again. The parse and walk need the stack
 * policy_rewrite needed for the same text (policy.h: PGW_POLICY_INLINE_MAX
 * and the stack sizes): call it where the policy ran. */
void cache_eligible(const PgwCacheStatement *st, PgwCacheVerdict *out);
/* The part of eligibility that depends on a Bind's values alone (text
 * parameters that read the clock), for a statement found eligible without
 * them: true when they keep it cacheable, else false and why. */
bool cache_bind_cacheable(const PgwCacheBind *b, char *why, size_t whylen);
void cache_verdict_free(PgwCacheVerdict *v);

#endif
