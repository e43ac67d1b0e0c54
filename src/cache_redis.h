/*
 * cache_redis.h — the result cache in Redis, shared by every pgwarden that
 * uses the same server and key_prefix: entries with Redis' own expiry, a
 * cross-instance single-flight lock, per-table generations for
 * invalidation, and pub/sub so instances tell each other.
 *
 * One PgwRedis per worker thread, on that worker's libevent base, through
 * hiredis' asynchronous API: nothing here ever blocks an event loop (names
 * are resolved with evdns; rediss:// runs through a local TLS tunnel, see
 * cache_redis_tls.h). Every call either returns NULL at once — Redis is not
 * connected: the caller bypasses the cache — or calls its callback exactly
 * once, on the worker's thread, within redis_timeout: a slow or vanished
 * Redis turns into PGW_REDIS_BYPASS, never into an error a client sees. A
 * reply later than redis_timeout counts as an outage: the connection is
 * dropped and re-made with backoff; the process logs one line when an outage
 * begins and one when it ends, and counts both.
 *
 * Keys (P = key_prefix, T = the tenant, both percent-encoded where needed):
 *   P e:T:<hex>        an entry (a small text header, then the answer bytes),
 *                      or an alias from a raw-text key naming its entry's key
 *                      (a lookup cannot know which it has, so both live here)
 *   P l:T:<hex>        the single-flight lock, SET NX PX, the owner's token
 *   P g:T:<relation>   the relation's generation, INCR on invalidation
 *   P events           the pub/sub channel
 * An entry records the generations of its relations as they were when its
 * statement began; the lookup script compares them with the current ones in
 * the same round trip, so an entry older than an invalidation is never
 * served, on any instance, even if the invalidation message was lost.
 */
#ifndef PGW_CACHE_REDIS_H
#define PGW_CACHE_REDIS_H

#include "cache.h"
#include "cache_key.h"
#include "pgw.h"

#include <event2/event.h>

typedef struct PgwRedisUrl {
    bool tls; /* rediss:// */
    char *host; /* NULL for unix:// */
    int port;
    char *unix_path; /* unix:///path */
    char *user; /* Redis 6 ACL user, or NULL */
    char *password; /* or NULL */
    int db;
} PgwRedisUrl;

/* redis://[[user][:password]@]host[:port][/db], rediss://... (TLS),
 * unix:///path/to/redis.sock[?db=N]. The password may be percent-encoded.
 * -1 and a message naming what is wrong. */
int cache_redis_parse_url(const char *url, PgwRedisUrl *out, char *err, size_t errlen) PGW_WUR;
void cache_redis_url_free(PgwRedisUrl *u);

typedef enum {
    PGW_REDIS_EV_DONE, /* a leader stored its answer or gave up: waiters on hex look again */
    PGW_REDIS_EV_INVALIDATE, /* tenant's relation changed */
    PGW_REDIS_EV_CLEAR, /* tenant's entries were cleared (tenant NULL: everyone's) */
} PgwRedisEventKind;

typedef struct PgwRedisEvent {
    PgwRedisEventKind kind;
    const char *tenant;
    const char *relation; /* INVALIDATE */
    const char *hex; /* DONE */
} PgwRedisEvent;

typedef struct PgwRedisOptions {
    const char *url;
    const char *prefix;
    int timeout_ms; /* redis_timeout: connecting and every reply */
    const char *tls_ca_file; /* rediss://: CA bundle; NULL: the system's */
    const char *tls_cert_file; /* rediss://: client certificate, when Redis asks for one */
    const char *tls_key_file;
    /* Events from other instances (and this one), on this worker's thread. */
    void (*on_event)(void *arg, const PgwRedisEvent *ev);
    void *event_arg;
} PgwRedisOptions;

typedef struct PgwRedis PgwRedis;
typedef struct PgwRedisOp PgwRedisOp;

/* Start connecting (the first statements bypass until it is up). NULL and
 * err on a bad URL or TLS setup. */
PgwRedis *cache_redis_new(struct event_base *base, const PgwRedisOptions *opt, char *err,
                          size_t errlen);
/* Pending operations complete with BYPASS before it returns. */
void cache_redis_free(PgwRedis *r);
bool cache_redis_ready(const PgwRedis *r);

typedef enum { PGW_REDIS_OK, PGW_REDIS_MISS, PGW_REDIS_BYPASS } PgwRedisStatus;

typedef void (*PgwRedisEntryFn)(void *arg, PgwRedisStatus st, PgwCacheEntry *e);
typedef void (*PgwRedisLockFn)(void *arg, PgwRedisStatus st, const uint64_t *gens);
typedef void (*PgwRedisDoneFn)(void *arg, PgwRedisStatus st, long long n);

/* The entry under key (through an alias too), if its relations have not
 * changed since it was made. OK: e is a reference the callee owns. */
PgwRedisOp *cache_redis_get(PgwRedis *r, const char *tenant, const PgwCacheKey *key,
                            PgwRedisEntryFn fn, void *arg);
/* Try to become the leader for key across instances, and read the current
 * generations of the statement's relations in the same round trip (gens[i]
 * for rels[i]; valid during the callback). OK: the lock is ours for
 * lock_ms; MISS: another instance holds it (wait, then look again). */
PgwRedisOp *cache_redis_lock(PgwRedis *r, const char *tenant, const PgwCacheKey *key, int lock_ms,
                             size_t nrels, char *const *rels, PgwRedisLockFn fn, void *arg);
/* Store the leader's answer with the generations cache_redis_lock read (and
 * an alias, when given), release the lock and announce it. Fire and
 * forget: a failure only costs a miss later. */
void cache_redis_put(PgwRedis *r, const char *tenant, const PgwCacheKey *key,
                     const PgwCacheKey *alias, const PgwCacheEntry *e, int ttl_ms, size_t nrels,
                     char *const *rels, const uint64_t *gens);
/* The leader has no answer to store: release the lock and announce it, so
 * waiters elsewhere look again at once. */
void cache_redis_unlock(PgwRedis *r, const char *tenant, const PgwCacheKey *key);
/* File an alias (raw-text key) for an entry already in Redis. */
void cache_redis_alias(PgwRedis *r, const char *tenant, const PgwCacheKey *alias,
                       const PgwCacheKey *target, int ttl_ms);
/* Wait until a leader elsewhere announces key, or poll_ms passes: then
 * fn(OK) means "look again". BYPASS when Redis goes away meanwhile. */
PgwRedisOp *cache_redis_wait(PgwRedis *r, const char *tenant, const PgwCacheKey *key, int poll_ms,
                             PgwRedisDoneFn fn, void *arg);
/* A write to tenant's relation: bump its generation (no entry that read it
 * is served any more, anywhere) and announce it. */
void cache_redis_invalidate(PgwRedis *r, const char *tenant, const char *relation);
/* Delete tenant's entries and aliases (NULL: every tenant's under this
 * prefix), a SCAN at a time, and announce it; fn(OK, keys deleted). */
PgwRedisOp *cache_redis_clear(PgwRedis *r, const char *tenant, PgwRedisDoneFn fn, void *arg);
/* Withdraw an operation: its callback is never called. */
void cache_redis_cancel(PgwRedisOp *op);

/* A generic command for the other shared state (ASK rate limits, token
 * budgets): argv as Redis takes it (lens NULL: NUL-terminated strings); fn
 * gets the integer reply (BYPASS on anything else). Keys are not prefixed
 * here: use cache_redis_key. */
PgwRedisOp *cache_redis_command_int(PgwRedis *r, int argc, const char **argv, const size_t *lens,
                                    PgwRedisDoneFn fn, void *arg);
/* prefix + "x:" + part, percent-encoded, malloc'd. */
char *cache_redis_key(const PgwRedis *r, const char *kind, const char *part);

/* Process-wide counters for SHOW CACHE and /metrics. */
typedef struct PgwRedisStats {
    uint64_t outages; /* times Redis became unavailable */
    uint64_t timeouts; /* replies later than redis_timeout */
    uint64_t errors; /* error replies, garbled entries, failed connects */
    uint64_t reconnects; /* connection attempts after a failure */
    uint64_t bypassed; /* operations answered "bypass" */
    int connected; /* workers whose command connection is up */
} PgwRedisStats;
void cache_redis_stats(PgwRedisStats *out);

/* For modules built on cache_redis (cache_redis_shared.c, the shared ASK
 * state): a command whose reply the caller reads itself, with the same
 * connection, timeout and outage handling as everything else. The reply is
 * hiredis' (<hiredis/hiredis.h>); only its tag is named here, so this
 * header does not bring hiredis to every includer. st OK: reply (valid
 * during the call, never an error reply); BYPASS: reply NULL (no
 * connection, a timeout, an error reply). */
struct redisReply;
typedef void (*PgwRedisReplyFn)(void *arg, PgwRedisStatus st, const struct redisReply *reply);
/* lens NULL: NUL-terminated strings. NULL when not connected. release
 * (may be NULL) is called with arg instead of fn when the operation is
 * cancelled, so a wrapper around a caller's callback can be freed. */
PgwRedisOp *cache_redis_raw(PgwRedis *r, int argc, const char **argv, const size_t *lens,
                            PgwRedisReplyFn fn, void (*release)(void *arg), void *arg);
/* This worker's unique name (lock owner, set members). */
const char *cache_redis_token(const PgwRedis *r);

#endif
