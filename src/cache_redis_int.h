/*
 * cache_redis_int.h — for modules built on cache_redis (the shared ASK
 * state): a command whose reply the caller reads itself, with the same
 * connection, timeout and outage handling as everything else.
 */
#ifndef PGW_CACHE_REDIS_INT_H
#define PGW_CACHE_REDIS_INT_H

#include "cache_redis.h"

#include <hiredis/hiredis.h>

/* st OK: reply (valid during the call, never an error reply); BYPASS:
 * reply NULL (no connection, a timeout, an error reply). */
typedef void (*PgwRedisReplyFn)(void *arg, PgwRedisStatus st, const redisReply *reply);
/* lens NULL: NUL-terminated strings. NULL when not connected. release
 * (may be NULL) is called with arg instead of fn when the operation is
 * cancelled, so a wrapper around a caller's callback can be freed. */
PgwRedisOp *cache_redis_raw(PgwRedis *r, int argc, const char **argv, const size_t *lens,
                            PgwRedisReplyFn fn, void (*release)(void *arg), void *arg);
/* This worker's unique name (lock owner, set members). */
const char *cache_redis_token(const PgwRedis *r);

#endif
