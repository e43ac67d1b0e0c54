/*
 * cache_service.h — the result cache as the running process holds it: the
 * one in-process store every worker shares, one front per worker thread
 * (with its own Redis connection in mode = redis), the timer that drops
 * expired entries, the limits a reload changes, and what the admin
 * console and /metrics read.
 *
 * Everything is made on first use from the snapshot in force, so the
 * process needs no start-up call: the store when any worker first asks,
 * a worker's front on that worker's thread. [cache] mode, redis and the
 * Redis options need a restart (the settings table says so); ttl,
 * max_entry and max_memory apply from the first statement after a reload
 * (cache_service_configure).
 *
 * It knows workers only as targets for worker_post (the store wakes a
 * waiter on its own thread through it) and nothing of clients.
 */
#ifndef PGW_CACHE_SERVICE_H
#define PGW_CACHE_SERVICE_H

#include "cache.h"
#include "cache_front.h"
#include "config.h"
#include "pgw.h"

struct PgwWorker;

/* Whether [cache] can work as configured (mode = redis: the URL parses, a
 * rediss:// tunnel can be set up): --check and start-up call it, so a
 * mistake is named before any client connects. */
int cache_service_check(const PgwConfig *cfg, char *err, size_t errlen) PGW_WUR;

/* Make every worker's front now (each on its own thread, by mail), so that
 * with mode = redis the connections are up before the first client comes.
 * Once, after the workers exist. */
void cache_service_start(const PgwConfig *cfg);
/* This worker's front, made on first use; on w's thread only. NULL when
 * the cache is off (or Redis could not be set up: logged once). */
PgwCacheFront *cache_service_front(struct PgwWorker *w, const PgwConfig *cfg);
/* Apply cfg's limits if they are newer than those in force (cheap when
 * they are not: one atomic load). */
void cache_service_configure(const PgwConfig *cfg);

/* The gate fronts ask before they serve or store (cache_front.h) when
 * invalidation = replication; until it is set they hold. Any thread. */
void cache_service_set_gate(PgwCacheGateFn fn);

/* For the views: the store (NULL until first used or when off), the mode
 * it runs in, and its totals. */
PgwCache *cache_service_store(void);
PgwCacheMode cache_service_mode(void);

/* CACHE CLEAR [tenant] from worker w (NULL tenant: all), memory and Redis:
 * done(arg, entries dropped here, keys deleted in Redis, redis_ok) on w's
 * thread, at once without Redis. */
void cache_service_clear(struct PgwWorker *w, const PgwConfig *cfg, const char *tenant,
                         void (*done)(void *arg, size_t memory, long long redis, bool redis_ok),
                         void *arg);
/* A write to tenant's relation (issue 10's change stream), from worker w. */
void cache_service_invalidate(struct PgwWorker *w, const char *tenant, const char *relation);
/* The same in Redis only (the caller invalidated the store), from worker
 * w: false when Redis could not be told now (not connected), so the
 * caller tries again. */
bool cache_service_redis_invalidate(struct PgwWorker *w, const char *tenant, const char *relation);

#endif
