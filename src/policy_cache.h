/*
 * policy_cache.h — the rewrite cache behind policy_rewrite().
 *
 * Its public API (policy_rewrite, policy_cache_stats, policy_cache_clear,
 * policy_measure_us) is declared in policy.h, where the runtime looks for
 * it; this header adds what the cache needs from a result.
 */
#ifndef PGW_POLICY_CACHE_H
#define PGW_POLICY_CACHE_H

#include "policy.h"

/* A deep copy of src (strings duplicated); free dst with policy_result_free. */
void policy_result_copy(PgwPolicyResult *dst, const PgwPolicyResult *src);

/* What a decision answered by a statement template (see policy_cache.c)
 * was made on: the template's cache key (binary, keylen bytes: it names the
 * configuration version, the schema generation, the tenant, the literals'
 * types and the template's text) and the template's rewrite, with $k where
 * the statement's numbers stand. Everything the policy decided (the
 * decision, its relations, read_only_query, cacheable) is the template's,
 * so a property of the rewrite that does not depend on the values of
 * numeric constants can be computed once per key. When the statement was
 * decided on its own text, sql is NULL and key is that text's cache key
 * (version, schema generation, tenant, the Parse's parameter types, the
 * text), or NULL when the text is too long to be cached. */
typedef struct PgwPolicyShape {
    char *key;
    size_t keylen;
    char *sql;
} PgwPolicyShape;

/* policy_rewrite, also saying (shape, may be NULL) which template decided
 * it; free the shape with policy_shape_free. */
int policy_rewrite_shaped(const PgwPolicyCtx *ctx, const char *sql, PgwPolicyResult *out,
                          PgwPolicyShape *shape) PGW_WUR;
void policy_shape_free(PgwPolicyShape *shape);

#endif
