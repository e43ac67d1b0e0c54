/*
 * kvcache.h — a small in-process string cache: key → value with a TTL and a
 * bound on entries, least recently used evicted first, thread-safe.
 *
 * Used for ASK's translation cache (question → SQL). One mutex per cache:
 * lookups are rare next to statements (one per ASK), so contention is not
 * a concern; the policy's rewrite cache, which is on every statement, has
 * its own structure.
 */
#ifndef PGW_KVCACHE_H
#define PGW_KVCACHE_H

#include "pgw.h"

typedef struct PgwKvCache PgwKvCache;

PgwKvCache *kvcache_new(size_t max_entries);
void kvcache_free(PgwKvCache *c);
/* A malloc'd copy of the value, or NULL when absent or expired. */
char *kvcache_get(PgwKvCache *c, const char *key, int64_t now_ms);
void kvcache_put(PgwKvCache *c, const char *key, const char *value, int64_t expires_ms);
void kvcache_clear(PgwKvCache *c);
typedef struct PgwKvCacheStats {
    size_t entries;
    uint64_t hits, misses;
} PgwKvCacheStats;
void kvcache_stats(PgwKvCache *c, PgwKvCacheStats *out);

#endif
