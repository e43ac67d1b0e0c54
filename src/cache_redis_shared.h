/*
 * cache_redis_shared.h — state beyond results that several pgwarden
 * instances share through Redis (mode = redis): the ASK rate limit and
 * token budget per tenant, and small string caches (the ASK translation
 * cache), so one limit holds per tenant however many instances answer it.
 *
 * Same semantics as the in-process ask_limiter (ask.h): the rate limit is a
 * sliding window of calls (a sorted set per tenant), the budget counts
 * tokens per UTC day; both are decided in one script run on Redis' own
 * clock, so instances whose clocks differ still agree. Redis unavailable:
 * the callback says BYPASS and the caller falls back to its in-process
 * limiter (a limit per instance is better than none, and no statement
 * fails because Redis did).
 */
#ifndef PGW_CACHE_REDIS_SHARED_H
#define PGW_CACHE_REDIS_SHARED_H

#include "cache_redis.h"
#include "pgw.h"

typedef enum {
    PGW_REDIS_RATE_OK, /* allowed, and counted */
    PGW_REDIS_RATE_LIMITED, /* rate calls in the last period_ms already */
    PGW_REDIS_RATE_BUDGET, /* the day's tokens are spent */
} PgwRedisRateVerdict;

typedef struct PgwRedisRate {
    PgwRedisRateVerdict verdict;
    int64_t wait_ms; /* LIMITED: until a call leaves the window */
    int64_t now_ms; /* Redis' clock, for "renews at 00:00 UTC" messages */
    long long tokens_today;
} PgwRedisRate;

typedef void (*PgwRedisRateFn)(void *arg, PgwRedisStatus st, const PgwRedisRate *rate);

/* May tenant call the model now? rate per period_ms (0: no limit), budget
 * tokens per UTC day (0: no limit). Counts the call when allowed. */
PgwRedisOp *cache_redis_rate_take(PgwRedis *r, const char *tenant, int rate, int period_ms,
                                  long budget, PgwRedisRateFn fn, void *arg);
/* Count tokens against tenant's budget for today (fire and forget). */
void cache_redis_tokens_add(PgwRedis *r, const char *tenant, long tokens);

/* A small shared string cache: space names it ("ask"), key is any text.
 * fn(OK, value, len) on a hit, (MISS, NULL, 0) when absent, BYPASS when
 * Redis cannot answer. */
typedef void (*PgwRedisValueFn)(void *arg, PgwRedisStatus st, const char *value, size_t len);
PgwRedisOp *cache_redis_kv_get(PgwRedis *r, const char *space, const char *key, PgwRedisValueFn fn,
                               void *arg);
void cache_redis_kv_set(PgwRedis *r, const char *space, const char *key, const char *value,
                        int ttl_ms);

#endif
