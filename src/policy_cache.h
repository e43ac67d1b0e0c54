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

#endif
