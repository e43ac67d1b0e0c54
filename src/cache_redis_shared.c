/*
 * cache_redis_shared.c — the ASK rate limit, token budget and translation
 * cache in Redis; see cache_redis_shared.h.
 *
 * Keys (P = key_prefix, T = the tenant, encoded): P rate:T (a sorted set of
 * calls, scored by Redis time in ms, expiring with the window), P tokens:T
 * with ":<UTC day number>" appended by the script (expiring after two days),
 * P kv:<space>:<key>. The scripts are sent with EVAL: they run once per
 * question, not per statement, and Redis keeps them compiled by digest.
 */
#include "cache_redis_shared.h"

#include "buf.h"
#include "cache_redis.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEYS[1] calls, KEYS[2] tokens prefix; ARGV rate, period_ms, budget, member */
static const char rate_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local day = math.floor(now / 86400000)\n"
    "local used = tonumber(redis.call('GET', KEYS[2] .. ':' .. day) or '0')\n"
    "local budget = tonumber(ARGV[3])\n"
    "if budget > 0 and used >= budget then return {2, 0, now, used} end\n"
    "local rate = tonumber(ARGV[1])\n"
    "local period = tonumber(ARGV[2])\n"
    "if rate <= 0 or period <= 0 then return {0, 0, now, used} end\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)\n"
    "local n = redis.call('ZCARD', KEYS[1])\n"
    "if n >= rate then\n"
    /* a lowered rate after a reload: only the latest calls matter */
    "  local first = redis.call('ZRANGE', KEYS[1], n - rate, n - rate, 'WITHSCORES')\n"
    "  return {1, tonumber(first[2]) + period - now, now, used}\n"
    "end\n"
    "redis.call('ZADD', KEYS[1], now, ARGV[4])\n"
    "redis.call('PEXPIRE', KEYS[1], period)\n"
    "return {0, 0, now, used}\n";

/* KEYS[1] tokens prefix; ARGV tokens */
static const char tokens_script[] =
    "local t = redis.call('TIME')\n"
    "local day = math.floor((tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) / "
    "86400000)\n"
    "local k = KEYS[1] .. ':' .. day\n"
    "local v = redis.call('INCRBY', k, ARGV[1])\n"
    "redis.call('PEXPIRE', k, 172800000)\n"
    "return v\n";

typedef struct RateCall {
    PgwRedisRateFn fn;
    void *arg;
} RateCall;

static long long int_of(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

static void on_rate(void *arg, PgwRedisStatus st, const redisReply *reply)
{
    RateCall *c = arg;
    PgwRedisRate rate = {0};
    if (st == PGW_REDIS_OK && (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4))
        st = PGW_REDIS_BYPASS;
    if (st == PGW_REDIS_OK) {
        long long v = int_of(reply->element[0]);
        rate.verdict = v == 2   ? PGW_REDIS_RATE_BUDGET
                       : v == 1 ? PGW_REDIS_RATE_LIMITED
                                : PGW_REDIS_RATE_OK;
        rate.wait_ms = int_of(reply->element[1]);
        rate.now_ms = int_of(reply->element[2]);
        rate.tokens_today = int_of(reply->element[3]);
    }
    c->fn(c->arg, st, st == PGW_REDIS_OK ? &rate : NULL);
    free(c);
}

static unsigned long member_serial;

PgwRedisOp *cache_redis_rate_take(PgwRedis *r, const char *tenant, int rate, int period_ms,
                                  long budget, PgwRedisRateFn fn, void *arg)
{
    char *calls = cache_redis_key(r, "rate", tenant);
    char *tokens = cache_redis_key(r, "tokens", tenant);
    char srate[16], speriod[16], sbudget[24], member[96];
    snprintf(srate, sizeof srate, "%d", rate);
    snprintf(speriod, sizeof speriod, "%d", period_ms);
    snprintf(sbudget, sizeof sbudget, "%ld", budget);
    /* unique per call: two calls in the same millisecond are two calls */
    snprintf(member, sizeof member, "%s-%lu", cache_redis_token(r),
             __atomic_add_fetch(&member_serial, 1, __ATOMIC_RELAXED));
    const char *argv[] = {"EVAL", rate_script, "2", calls, tokens, srate, speriod, sbudget, member};
    RateCall *c = pgw_calloc(1, sizeof(*c));
    c->fn = fn;
    c->arg = arg;
    PgwRedisOp *op = cache_redis_raw(r, 9, argv, NULL, on_rate, free, c);
    if (op == NULL)
        free(c);
    free(calls);
    free(tokens);
    return op;
}

static void ignore_reply(void *arg, PgwRedisStatus st, const redisReply *reply)
{
}

void cache_redis_tokens_add(PgwRedis *r, const char *tenant, long tokens)
{
    if (tokens <= 0)
        return;
    char *key = cache_redis_key(r, "tokens", tenant);
    char n[24];
    snprintf(n, sizeof n, "%ld", tokens);
    const char *argv[] = {"EVAL", tokens_script, "1", key, n};
    (void)cache_redis_raw(r, 5, argv, NULL, ignore_reply, NULL, NULL);
    free(key);
}

static char *kv_key(PgwRedis *r, const char *space, const char *key)
{
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, "kv:");
    buf_append_str(&b, space);
    char *kind = buf_steal_str(&b);
    char *k = cache_redis_key(r, kind, key);
    free(kind);
    return k;
}

typedef struct ValueCall {
    PgwRedisValueFn fn;
    void *arg;
} ValueCall;

static void on_value(void *arg, PgwRedisStatus st, const redisReply *reply)
{
    ValueCall *c = arg;
    if (st != PGW_REDIS_OK)
        c->fn(c->arg, PGW_REDIS_BYPASS, NULL, 0);
    else if (reply->type == REDIS_REPLY_STRING)
        c->fn(c->arg, PGW_REDIS_OK, reply->str, reply->len);
    else
        c->fn(c->arg, PGW_REDIS_MISS, NULL, 0);
    free(c);
}

PgwRedisOp *cache_redis_kv_get(PgwRedis *r, const char *space, const char *key, PgwRedisValueFn fn,
                               void *arg)
{
    char *k = kv_key(r, space, key);
    const char *argv[] = {"GET", k};
    ValueCall *c = pgw_calloc(1, sizeof(*c));
    c->fn = fn;
    c->arg = arg;
    PgwRedisOp *op = cache_redis_raw(r, 2, argv, NULL, on_value, free, c);
    if (op == NULL)
        free(c);
    free(k);
    return op;
}

void cache_redis_kv_set(PgwRedis *r, const char *space, const char *key, const char *value,
                        int ttl_ms)
{
    if (ttl_ms <= 0)
        return;
    char *k = kv_key(r, space, key);
    char px[16];
    snprintf(px, sizeof px, "%d", ttl_ms);
    const char *argv[] = {"SET", k, value, "PX", px};
    (void)cache_redis_raw(r, 5, argv, NULL, ignore_reply, NULL, NULL);
    free(k);
}
