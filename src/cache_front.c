/*
 * cache_front.c — one worker's way into the result cache; see
 * cache_front.h.
 *
 * A ticket is one statement's state machine:
 *
 *   probe (raw key only)      memory: hit or miss at once; Redis: GET
 *   primary key:
 *     store single flight --- HIT -----------------------------> hit
 *        |  WAIT: woken on this worker by the store's post
 *        |        (hit / retry from the top / bypass)
 *        '  LEAD locally
 *            memory mode ------------------------------------> lead
 *            Redis: GET ---- hit: hand it to the local waiters --> hit
 *                 | miss
 *                 LOCK (SET NX PX, generations read) -- ours ---> lead
 *                 | held elsewhere
 *                 WAIT for "done" (or poll) ---> GET again ...
 *
 * In Redis mode the store keeps no entries (max_memory 0): it only gives
 * single flight inside the process, so twenty local clients make one Redis
 * round trip, not twenty, and one backend execution across instances.
 * Anything Redis cannot do in time (down, slow, a garbled reply) makes the
 * local leader lead without the lock, which is "as if the cache were off"
 * for that statement, minus nothing: local waiters still share its answer.
 * An answer is written to Redis only by a leader that holds the lock, with
 * the generations the lock read, so an entry is never filed older than an
 * invalidation it did not see.
 *
 * With invalidation = replication a gate (changes_service.h) is asked
 * first, for every statement, before the store or Redis: while the
 * tenant's database's change stream cannot vouch for its results, a probe
 * misses and a statement bypasses (nothing served, nothing stored, no
 * flight); otherwise the relations the gate adds (a view's tables, a
 * parent's partitions, the stream's pseudo-relation) join the statement's
 * own, so the flight is poisoned, and the Redis entry's generations are
 * read, for all of them.
 */
#include "cache_front.h"

#include "buf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct PgwCacheFront {
    struct event_base *base;
    PgwCache *store;
    void *self;
    PgwRedis *redis;
    PgwCacheGateFn gate;
};

typedef enum { T_NEW, T_PROBE, T_LOCAL, T_GET, T_LOCK, T_REMOTE_WAIT, T_LEADING } TicketState;

struct PgwCacheTicket {
    PgwCacheFront *f;
    TicketState state;
    char *tenant;
    PgwCacheKey raw, primary;
    bool has_raw;
    size_t nrels;
    char **rels;
    int ttl_ms, wait_ms;
    int64_t deadline_ms; /* 0: none */
    PgwCacheReadyFn fn;
    void *arg;
    PgwCacheFlight *flight; /* we lead in this process */
    PgwCacheWaiter *waiter; /* we wait in this process */
    PgwRedisOp *op;
    uint64_t *gens; /* read by the lock we hold */
    bool locked;
    struct event *timer;
    bool *delivered; /* cache_begin's "already answered" flag while it runs */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ticket_free(PgwCacheTicket *t)
{
    if (t->timer)
        event_free(t->timer);
    for (size_t i = 0; i < t->nrels; i++)
        free(t->rels[i]);
    free(t->rels);
    free(t->gens);
    free(t->tenant);
    free(t);
}

/* Tell the owner. Frees the ticket unless it now leads. */
static void deliver(PgwCacheTicket *t, PgwCacheOutcome how, PgwCacheEntry *e, const char *why)
{
    if (t->timer)
        event_del(t->timer);
    if (t->delivered)
        *t->delivered = true;
    if (how == PGW_CACHE_LEAD) {
        t->state = T_LEADING;
        t->fn(t->arg, how, NULL, t, why);
        return;
    }
    PgwCacheReadyFn fn = t->fn;
    void *arg = t->arg;
    ticket_free(t);
    fn(arg, how, e, NULL, why);
}

static void lead(PgwCacheTicket *t, const char *why)
{
    deliver(t, PGW_CACHE_LEAD, NULL, why);
}

/* A hit through the primary key: next time the raw text finds it at once. */
static void file_alias(PgwCacheTicket *t)
{
    if (!t->has_raw)
        return;
    if (t->f->redis)
        cache_redis_alias(t->f->redis, t->tenant, &t->raw, &t->primary, t->ttl_ms);
    else
        cache_alias(t->f->store, t->tenant, &t->raw, &t->primary, t->ttl_ms);
}

static void start_primary(PgwCacheTicket *t);
static void redis_get_primary(PgwCacheTicket *t);

/* ---- waiting in this process ---- */

static void on_local_wake(void *arg, PgwCacheWake how, PgwCacheEntry *e)
{
    PgwCacheTicket *t = arg;
    t->waiter = NULL;
    switch (how) {
    case PGW_CACHE_WAKE_HIT:
        file_alias(t);
        deliver(t, PGW_CACHE_HIT, e, "hit, coalesced");
        break;
    case PGW_CACHE_WAKE_RETRY:
        start_primary(t);
        break;
    case PGW_CACHE_WAKE_BYPASS:
        deliver(t, PGW_CACHE_BYPASS, NULL,
                "bypass: the identical statement it waited for has no storable answer");
        break;
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    PgwCacheTicket *t = arg;
    switch (t->state) {
    case T_LOCAL:
        cache_wait_cancel(t->waiter);
        t->waiter = NULL;
        break;
    case T_GET:
    case T_LOCK:
    case T_REMOTE_WAIT:
        cache_redis_cancel(t->op);
        t->op = NULL;
        if (t->state == T_LOCK) /* it may have been granted: give it back */
            cache_redis_unlock(t->f->redis, t->tenant, &t->primary);
        /* Those waiting on us here give up with us. */
        cache_flight_fail(t->flight, false, 0);
        t->flight = NULL;
        break;
    default:
        return;
    }
    deliver(t, PGW_CACHE_BYPASS, NULL,
            "bypass: waited statement_timeout for an identical statement to finish");
}

/* ---- Redis ---- */

static void on_remote_wait(void *arg, PgwRedisStatus st, long long n)
{
    PgwCacheTicket *t = arg;
    t->op = NULL;
    if (st == PGW_REDIS_OK)
        redis_get_primary(t); /* announced, or time to look: look again */
    else
        lead(t, "miss; Redis became unavailable while waiting");
}

static void on_lock(void *arg, PgwRedisStatus st, const uint64_t *gens)
{
    PgwCacheTicket *t = arg;
    t->op = NULL;
    if (st == PGW_REDIS_OK) {
        t->locked = true;
        t->gens = pgw_calloc(t->nrels + 1, sizeof(uint64_t));
        memcpy(t->gens, gens, t->nrels * sizeof(uint64_t));
        lead(t, "miss");
        return;
    }
    if (st == PGW_REDIS_BYPASS) {
        lead(t, "miss; Redis unavailable, the answer is not stored");
        return;
    }
    /* Another instance runs it: wait for its announcement. */
    int poll = 500;
    if (t->deadline_ms > 0) {
        int64_t left = t->deadline_ms - mono_ms();
        if (left < poll)
            poll = left > 1 ? (int)left : 1;
    }
    t->state = T_REMOTE_WAIT;
    t->op = cache_redis_wait(t->f->redis, t->tenant, &t->primary, poll, on_remote_wait, t);
    if (t->op == NULL)
        lead(t, "miss; Redis unavailable, the answer is not stored");
}

static void on_primary_get(void *arg, PgwRedisStatus st, PgwCacheEntry *e)
{
    PgwCacheTicket *t = arg;
    t->op = NULL;
    if (st == PGW_REDIS_OK) {
        /* Local waiters share it; the store keeps nothing in Redis mode. */
        cache_flight_finish(t->flight, cache_entry_retain(e), t->ttl_ms, NULL);
        t->flight = NULL;
        cache_note(t->f->store, t->tenant, PGW_CACHE_NOTE_REMOTE_HIT);
        file_alias(t);
        deliver(t, PGW_CACHE_HIT, e, "hit");
        return;
    }
    if (st == PGW_REDIS_BYPASS) {
        lead(t, "miss; Redis unavailable, the answer is not stored");
        return;
    }
    t->state = T_LOCK;
    int lock_ms = t->wait_ms > 0 ? t->wait_ms : 30000;
    t->op = cache_redis_lock(t->f->redis, t->tenant, &t->primary, lock_ms, t->nrels, t->rels,
                             on_lock, t);
    if (t->op == NULL)
        lead(t, "miss; Redis unavailable, the answer is not stored");
}

static void redis_get_primary(PgwCacheTicket *t)
{
    t->state = T_GET;
    t->op = cache_redis_get(t->f->redis, t->tenant, &t->primary, on_primary_get, t);
    if (t->op == NULL)
        lead(t, "miss; Redis unavailable, the answer is not stored");
}

/* ---- the primary key ---- */

static void start_primary(PgwCacheTicket *t)
{
    PgwCacheRequest rq = {.key = t->primary,
                          .tenant = t->tenant,
                          .single_flight = true,
                          .nrelations = t->nrels,
                          .relations = t->rels,
                          .target = t->f->self,
                          .fn = on_local_wake,
                          .arg = t};
    PgwCacheEntry *hit;
    PgwCacheFlight *flight;
    PgwCacheWaiter *waiter;
    PgwCacheOutcome how = cache_lookup(t->f->store, &rq, &hit, &flight, &waiter);
    /* The deadline matters only to a ticket that is going to wait (here, or
     * for Redis): a hit costs no timer. */
    bool waits = how == PGW_CACHE_WAIT || (how == PGW_CACHE_LEAD && t->f->redis != NULL);
    if (waits && t->wait_ms > 0 && t->deadline_ms == 0) {
        t->deadline_ms = mono_ms() + t->wait_ms;
        if (!t->timer)
            t->timer = evtimer_new(t->f->base, on_deadline, t);
        event_add(t->timer, &(struct timeval){t->wait_ms / 1000, (t->wait_ms % 1000) * 1000});
    }
    switch (how) {
    case PGW_CACHE_HIT:
        file_alias(t);
        deliver(t, PGW_CACHE_HIT, hit, "hit");
        return;
    case PGW_CACHE_WAIT:
        t->state = T_LOCAL;
        t->waiter = waiter;
        return;
    case PGW_CACHE_BYPASS:
        deliver(t, PGW_CACHE_BYPASS, NULL, "bypass: the answer was larger than max_entry");
        return;
    case PGW_CACHE_MISS:
    case PGW_CACHE_LEAD:
        break;
    }
    t->flight = flight;
    if (t->f->redis == NULL)
        lead(t, "miss");
    else
        redis_get_primary(t);
}

/* ---- the probe ---- */

static void on_probe(void *arg, PgwRedisStatus st, PgwCacheEntry *e)
{
    PgwCacheTicket *t = arg;
    t->op = NULL;
    if (st == PGW_REDIS_OK) {
        cache_note(t->f->store, t->tenant, PGW_CACHE_NOTE_HIT);
        deliver(t, PGW_CACHE_HIT, e, "hit");
    } else {
        deliver(t, PGW_CACHE_MISS, NULL, "miss");
    }
}

PgwCacheTicket *cache_begin(PgwCacheFront *f, const PgwCacheBegin *b, PgwCacheReadyFn fn, void *arg)
{
    PgwCacheTicket *t = pgw_calloc(1, sizeof(*t));
    bool delivered = false;
    t->f = f;
    t->state = T_NEW;
    t->tenant = pgw_strdup(b->tenant);
    t->fn = fn;
    t->arg = arg;
    t->ttl_ms = b->ttl_ms;
    t->wait_ms = b->wait_ms;
    t->delivered = &delivered;
    if (b->raw) {
        t->raw = *b->raw;
        t->has_raw = true;
    }
    /* The gate (replication invalidation): a database whose change stream
     * cannot vouch for its results yet serves and stores none; otherwise
     * the statement is filed under what its relations depend on too. */
    size_t nextra = 0;
    char **extra = NULL;
    if (f->gate &&
        !f->gate(t->tenant, b->primary ? b->nrelations : 0, b->relations, &nextra, &extra)) {
        if (b->primary == NULL)
            deliver(t, PGW_CACHE_MISS, NULL, "miss");
        else
            deliver(t, PGW_CACHE_BYPASS, NULL,
                    "bypass: the database's change stream has not caught up");
    } else if (b->primary == NULL) {
        if (!t->has_raw) {
            deliver(t, PGW_CACHE_MISS, NULL, "miss");
        } else if (f->redis == NULL) {
            PgwCacheRequest rq = {.key = t->raw, .tenant = t->tenant};
            PgwCacheEntry *hit;
            PgwCacheFlight *flight;
            PgwCacheWaiter *waiter;
            if (cache_lookup(f->store, &rq, &hit, &flight, &waiter) == PGW_CACHE_HIT)
                deliver(t, PGW_CACHE_HIT, hit, "hit");
            else
                deliver(t, PGW_CACHE_MISS, NULL, "miss");
        } else {
            t->state = T_PROBE;
            t->op = cache_redis_get(f->redis, t->tenant, &t->raw, on_probe, t);
            if (t->op == NULL)
                deliver(t, PGW_CACHE_MISS, NULL, "miss; Redis unavailable");
        }
    } else {
        t->primary = *b->primary;
        if (b->nrelations + nextra > 0) {
            t->rels = pgw_calloc(b->nrelations + nextra, sizeof(char *));
            for (size_t i = 0; i < b->nrelations; i++)
                t->rels[i] = pgw_strdup(b->relations[i]);
            for (size_t i = 0; i < nextra; i++)
                t->rels[b->nrelations + i] = extra[i];
            t->nrels = b->nrelations + nextra;
            nextra = 0;
        }
        start_primary(t);
    }
    for (size_t i = 0; i < nextra; i++)
        free(extra[i]);
    free(extra);
    if (delivered)
        return NULL; /* freed, or leading and already told so */
    t->delivered = NULL;
    return t;
}

void cache_ticket_finish(PgwCacheTicket *t, PgwCacheCapture *cap)
{
    bool too_big = cap->too_big;
    PgwCacheEntry *e = cache_capture_finish(cap);
    PgwCacheFront *f = t->f;
    if (e != NULL) {
        if (f->redis && t->locked)
            cache_redis_put(f->redis, t->tenant, &t->primary, t->has_raw ? &t->raw : NULL, e,
                            t->ttl_ms, t->nrels, t->rels, t->gens);
        cache_flight_finish(t->flight, e, t->ttl_ms, t->has_raw ? &t->raw : NULL);
    } else {
        if (f->redis && t->locked)
            cache_redis_unlock(f->redis, t->tenant, &t->primary);
        cache_flight_fail(t->flight, too_big, t->ttl_ms);
    }
    ticket_free(t);
}

void cache_ticket_abandon(PgwCacheTicket *t)
{
    if (t->f->redis && t->locked)
        cache_redis_unlock(t->f->redis, t->tenant, &t->primary);
    if (t->flight)
        cache_flight_abandon(t->flight);
    ticket_free(t);
}

void cache_ticket_cancel(PgwCacheTicket *t)
{
    if (t == NULL)
        return;
    switch (t->state) {
    case T_LEADING:
        cache_ticket_abandon(t);
        return;
    case T_LOCAL:
        cache_wait_cancel(t->waiter);
        break;
    case T_PROBE:
        cache_redis_cancel(t->op);
        break;
    case T_GET:
    case T_LOCK:
    case T_REMOTE_WAIT:
        cache_redis_cancel(t->op);
        if (t->state == T_LOCK) /* it may have been granted: give it back */
            cache_redis_unlock(t->f->redis, t->tenant, &t->primary);
        cache_flight_abandon(t->flight); /* our local waiters look again */
        break;
    case T_NEW:
        break;
    }
    ticket_free(t);
}

/* ---- invalidation, clearing, events ---- */

static void on_event(void *arg, const PgwRedisEvent *ev)
{
    PgwCacheFront *f = arg;
    /* The store keeps no entries in Redis mode, but its flights must learn
     * of the change so no answer older than it reaches a waiter. */
    if (ev->kind == PGW_REDIS_EV_INVALIDATE && ev->tenant && ev->relation)
        cache_invalidate(f->store, ev->tenant, ev->relation);
    else if (ev->kind == PGW_REDIS_EV_CLEAR)
        cache_clear(f->store, ev->tenant);
}

void cache_front_invalidate(PgwCacheFront *f, const char *tenant, const char *relation)
{
    cache_invalidate(f->store, tenant, relation);
    if (f->redis)
        cache_redis_invalidate(f->redis, tenant, relation);
}

typedef struct Clear {
    void (*done)(void *arg, size_t memory, long long redis, bool redis_ok);
    void *arg;
    size_t memory;
} Clear;

static void on_cleared(void *arg, PgwRedisStatus st, long long n)
{
    Clear *c = arg;
    c->done(c->arg, c->memory, st == PGW_REDIS_OK ? n : 0, st == PGW_REDIS_OK);
    free(c);
}

void cache_front_clear(PgwCacheFront *f, const char *tenant,
                       void (*done)(void *arg, size_t memory, long long redis, bool redis_ok),
                       void *arg)
{
    size_t n = cache_clear(f->store, tenant);
    if (f->redis == NULL) {
        done(arg, n, 0, true);
        return;
    }
    Clear *c = pgw_calloc(1, sizeof(*c));
    c->done = done;
    c->arg = arg;
    c->memory = n;
    if (cache_redis_clear(f->redis, tenant, on_cleared, c) == NULL) {
        free(c);
        done(arg, n, 0, false);
    }
}

/* ---- the front ---- */

PgwCacheFront *cache_front_new(const PgwCacheFrontOptions *o, char *err, size_t errlen)
{
    PgwCacheFront *f = pgw_calloc(1, sizeof(*f));
    f->base = o->base;
    f->store = o->store;
    f->self = o->self;
    f->gate = o->gate;
    if (o->redis) {
        PgwRedisOptions ro = *o->redis;
        ro.on_event = on_event;
        ro.event_arg = f;
        f->redis = cache_redis_new(o->base, &ro, err, errlen);
        if (f->redis == NULL) {
            free(f);
            return NULL;
        }
    }
    return f;
}

void cache_front_free(PgwCacheFront *f)
{
    if (f == NULL)
        return;
    cache_redis_free(f->redis);
    free(f);
}

PgwRedis *cache_front_redis(PgwCacheFront *f)
{
    return f->redis;
}
