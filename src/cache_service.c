/*
 * cache_service.c — the result cache as the running process holds it; see
 * cache_service.h.
 *
 * One store for the process, made under a mutex the first time any worker
 * asks (mode = redis: max_memory 0, the store only gives single flight
 * inside the process; answers live in Redis). One front per worker, made on
 * its own thread and only ever used there, in a fixed array indexed by the
 * worker's index (worker.c caps workers at 255), so finding it costs an
 * index, not a lock. Each front carries a one-second timer that drops up
 * to a thousand expired entries: memory stays honest between lookups, and
 * with several workers the store is swept several times a second, each
 * sweep bounded.
 *
 * The store's post function is worker_post with a small box: a waiter is
 * always woken on the worker that owns it, never on the leader's.
 *
 * Limits follow reloads lazily: every statement passes its snapshot's
 * config to cache_service_configure, which compares one atomic version
 * number and only takes the store's lock when a newer config arrives.
 * Nothing here is freed at exit: the fronts and the store live as long as
 * the process (they stay reachable, so a leak checker does not count them).
 */
#include "cache_service.h"

#include "cache_redis.h"
#include "cache_redis_tls.h"
#include "log.h"
#include "snapshot.h"
#include "tls.h"
#include "worker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORKERS 256
#define EXPIRE_BATCH 1000

typedef struct Front {
    PgwCacheFront *front;
    struct event *expire;
    bool tried; /* made (or failed, logged once) */
} Front;

static struct {
    pthread_mutex_t mu;
    PgwCache *store;
    PgwCacheMode mode;
    unsigned configured; /* config version whose limits are in force (atomic) */
    Front fronts[MAX_WORKERS];
} svc = {.mu = PTHREAD_MUTEX_INITIALIZER};

int cache_service_check(const PgwConfig *cfg, char *err, size_t errlen)
{
    if (cfg->cache_mode != PGW_CACHE_REDIS)
        return 0;
    PgwRedisUrl u;
    char why[256];
    if (cache_redis_parse_url(cfg->cache_redis, &u, why, sizeof why) < 0) {
        snprintf(err, errlen, "[cache] redis: %s", why);
        return -1;
    }
    bool tls = u.tls;
    cache_redis_url_free(&u);
    if (tls) {
        SSL_CTX *ctx =
            cache_redis_tls_ctx(cfg->cache_redis_tls_ca_file, cfg->cache_redis_tls_cert_file,
                                cfg->cache_redis_tls_key_file, why, sizeof why);
        if (ctx == NULL) {
            snprintf(err, errlen, "[cache] redis: %s", why);
            return -1;
        }
        tls_ctx_free(ctx);
    }
    return 0;
}

/* ---- the store ---- */

typedef struct Post {
    void (*fn)(void *arg);
    void *arg;
} Post;

static void post_mail(PgwWorker *w, void *arg)
{
    Post p = *(Post *)arg;
    free(arg);
    p.fn(p.arg);
}

static void post(void *target, void (*fn)(void *arg), void *arg)
{
    Post *p = pgw_malloc(sizeof *p);
    p->fn = fn;
    p->arg = arg;
    worker_post(target, post_mail, p);
}

static size_t store_memory(const PgwConfig *cfg)
{
    return cfg->cache_mode == PGW_CACHE_REDIS ? 0 : cfg->cache_max_memory;
}

static PgwCache *store_get(const PgwConfig *cfg)
{
    PgwCache *s = __atomic_load_n(&svc.store, __ATOMIC_ACQUIRE);
    if (s != NULL)
        return s;
    pthread_mutex_lock(&svc.mu);
    if (svc.store == NULL) {
        PgwCacheOptions o = {
            .max_memory = store_memory(cfg), .max_entry = cfg->cache_max_entry, .post = post};
        svc.mode = cfg->cache_mode;
        __atomic_store_n(&svc.configured, cfg->version, __ATOMIC_RELEASE);
        PgwCache *store = cache_new(&o);
        cache_partition(store, cfg->ntenants);
        __atomic_store_n(&svc.store, store, __ATOMIC_RELEASE);
    }
    s = svc.store;
    pthread_mutex_unlock(&svc.mu);
    return s;
}

void cache_service_configure(const PgwConfig *cfg)
{
    PgwCache *s = __atomic_load_n(&svc.store, __ATOMIC_ACQUIRE);
    if (s == NULL || __atomic_load_n(&svc.configured, __ATOMIC_ACQUIRE) >= cfg->version)
        return;
    pthread_mutex_lock(&svc.mu);
    if (svc.configured < cfg->version) {
        cache_configure(s, store_memory(cfg), cfg->cache_max_entry);
        cache_partition(s, cfg->ntenants);
        __atomic_store_n(&svc.configured, cfg->version, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&svc.mu);
}

PgwCache *cache_service_store(void)
{
    return __atomic_load_n(&svc.store, __ATOMIC_ACQUIRE);
}

PgwCacheMode cache_service_mode(void)
{
    return cache_service_store() ? svc.mode : PGW_CACHE_OFF;
}

/* ---- the fronts ---- */

static void expire_cb(evutil_socket_t fd, short what, void *arg)
{
    cache_expire(arg, EXPIRE_BATCH);
}

PgwCacheFront *cache_service_front(PgwWorker *w, const PgwConfig *cfg)
{
    int i = worker_index(w);
    if (i < 0 || i >= MAX_WORKERS || cfg->cache_mode == PGW_CACHE_OFF)
        return NULL;
    Front *f = &svc.fronts[i];
    if (f->tried)
        return f->front;
    f->tried = true;
    PgwCache *store = store_get(cfg);
    if (svc.mode == PGW_CACHE_OFF)
        return NULL;
    PgwRedisOptions ro = {
        .url = cfg->cache_redis,
        .prefix = cfg->cache_key_prefix,
        .timeout_ms = cfg->cache_redis_timeout_ms,
        .tls_ca_file = cfg->cache_redis_tls_ca_file,
        .tls_cert_file = cfg->cache_redis_tls_cert_file,
        .tls_key_file = cfg->cache_redis_tls_key_file,
    };
    PgwCacheFrontOptions fo = {
        .base = worker_base(w),
        .store = store,
        .self = w,
        .redis = svc.mode == PGW_CACHE_REDIS ? &ro : NULL,
    };
    char err[256];
    f->front = cache_front_new(&fo, err, sizeof err);
    if (f->front == NULL) {
        log_error("result cache: worker %d cannot use Redis, its statements run uncached: %s", i,
                  err);
        return NULL;
    }
    f->expire = event_new(worker_base(w), -1, EV_PERSIST, expire_cb, store);
    struct timeval second = {1, 0};
    event_add(f->expire, &second);
    return f->front;
}

static void front_mail(PgwWorker *w, void *arg)
{
    PgwSnapshot *s = snapshot_acquire();
    cache_service_front(w, s->cfg);
    snapshot_release(s);
}

void cache_service_start(const PgwConfig *cfg)
{
    if (cfg->cache_mode == PGW_CACHE_OFF)
        return;
    for (int i = 0; i < workers_count(); i++)
        worker_post(worker_at(i), front_mail, NULL);
}

void cache_service_clear(PgwWorker *w, const PgwConfig *cfg, const char *tenant,
                         void (*done)(void *arg, size_t memory, long long redis, bool redis_ok),
                         void *arg)
{
    PgwCacheFront *f = cache_service_front(w, cfg);
    if (f != NULL) {
        cache_front_clear(f, tenant, done, arg);
        return;
    }
    /* No front (the cache is off, or this worker has no Redis): the store,
     * if there is one, is cleared as it is. */
    PgwCache *s = cache_service_store();
    size_t n = s ? cache_clear(s, tenant) : 0;
    done(arg, n, 0, cache_service_mode() != PGW_CACHE_REDIS);
}

void cache_service_invalidate(PgwWorker *w, const char *tenant, const char *relation)
{
    int i = worker_index(w);
    PgwCacheFront *f = i >= 0 && i < MAX_WORKERS ? svc.fronts[i].front : NULL;
    if (f != NULL)
        cache_front_invalidate(f, tenant, relation);
    else if (cache_service_store() != NULL)
        cache_invalidate(cache_service_store(), tenant, relation);
}
