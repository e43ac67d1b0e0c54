/*
 * cache_front.h — one worker's way into the result cache: the calls the
 * link makes for a statement, the same whether results live in this
 * process (mode = memory) or in Redis (mode = redis).
 *
 * A statement asks twice. First with the raw-text key only (before the
 * policy runs): a hit is replayed at once and costs no parse. On a miss the
 * runtime runs the policy and cache_eligible and asks again with the
 * primary key: the answer is then a hit, "lead" (run it on the backend and
 * capture the answer; the ticket stays open until finish or abandon), or
 * "bypass" (run it, store nothing). Concurrent identical statements wait for
 * one leader: in this process through the store's single flight, across
 * instances through Redis' lock, a waiter being woken by the leader's
 * announcement (pub/sub) or, failing that, by polling; a wait is bounded by
 * wait_ms (statement_timeout) and then bypasses. Redis being slow or gone
 * never fails a statement: it leads without storing.
 *
 * Every callback runs on this front's worker, once per cache_begin (never
 * after cache_ticket_cancel). The front knows nothing of clients, sockets or
 * the server: the runtime gives it the worker's event base and the name the
 * store's post function uses for this worker.
 */
#ifndef PGW_CACHE_FRONT_H
#define PGW_CACHE_FRONT_H

#include "cache.h"
#include "cache_key.h"
#include "cache_redis.h"
#include "pgw.h"

#include <event2/event.h>

typedef struct PgwCacheFront PgwCacheFront;
typedef struct PgwCacheTicket PgwCacheTicket;

/* Whether tenant's results may be served and stored now (false: hold —
 * every lookup misses or bypasses), and (when true) the further relations
 * to file a statement reading rels under: *extra malloc'd, each string too
 * (replication invalidation: changes_service_gate). */
typedef bool (*PgwCacheGateFn)(const char *tenant, size_t nrels, char *const *rels, size_t *nextra,
                               char ***extra);

typedef struct PgwCacheFrontOptions {
    struct event_base *base; /* the worker's */
    PgwCache *store; /* the process's; its post function must reach this worker by self */
    void *self;
    const PgwRedisOptions *redis; /* mode = redis; NULL: memory only */
    PgwCacheGateFn gate; /* NULL: always open, nothing added */
} PgwCacheFrontOptions;

PgwCacheFront *cache_front_new(const PgwCacheFrontOptions *o, char *err, size_t errlen);
/* No ticket may be pending. */
void cache_front_free(PgwCacheFront *f);
/* This worker's Redis connection (shared ASK state uses it too), or NULL. */
PgwRedis *cache_front_redis(PgwCacheFront *f);

typedef struct PgwCacheBegin {
    const char *tenant;
    const PgwCacheKey *raw; /* the raw-text key, or NULL (an ASK's SQL has none) */
    const PgwCacheKey *primary; /* NULL: a probe of raw alone, HIT or MISS */
    /* primary: what cache_eligible said */
    size_t nrelations;
    char *const *relations;
    int ttl_ms;
    int wait_ms; /* the longest wait for an identical statement elsewhere; 0: no limit */
} PgwCacheBegin;

/* how: HIT (e: a reference the callee releases; replay it), MISS (probe
 * only), LEAD (run it; lead stays valid until cache_ticket_finish or
 * _abandon) or BYPASS (run it, nothing is stored). why: for the audit
 * record ("hit", "hit, coalesced", "miss", "bypass: ..."). */
typedef void (*PgwCacheReadyFn)(void *arg, PgwCacheOutcome how, PgwCacheEntry *e,
                                PgwCacheTicket *lead, const char *why);

/* Returns the pending ticket (for cache_ticket_cancel), or NULL when fn has
 * already been called. */
PgwCacheTicket *cache_begin(PgwCacheFront *f, const PgwCacheBegin *b, PgwCacheReadyFn fn,
                            void *arg);
/* The leader's statement ended; cap holds its answer (stored when it is
 * complete and storable). Frees the ticket. */
void cache_ticket_finish(PgwCacheTicket *t, PgwCacheCapture *cap);
/* The leader ends without an answer (cancel, disconnect, backend lost):
 * waiters look again. Frees the ticket. */
void cache_ticket_abandon(PgwCacheTicket *t);
/* Withdraw a pending ticket (or abandon a leading one): fn is not called. */
void cache_ticket_cancel(PgwCacheTicket *t);

/* A write to tenant's relation (replication, issue 10): drop what read it,
 * here and, with Redis, on every instance. */
void cache_front_invalidate(PgwCacheFront *f, const char *tenant, const char *relation);
/* CACHE CLEAR [tenant] (NULL: all): the store now, Redis a SCAN at a time;
 * done(arg, entries dropped here, keys deleted in Redis, redis_ok) on
 * this worker when both are done. */
void cache_front_clear(PgwCacheFront *f, const char *tenant,
                       void (*done)(void *arg, size_t memory, long long redis, bool redis_ok),
                       void *arg);

#endif
