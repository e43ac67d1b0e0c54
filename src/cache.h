/*
 * cache.h — the in-process result store: complete wire answers by key, LRU
 * within max_memory, per-tenant accounting, invalidation by table, and
 * single flight (concurrent misses on one key run once).
 *
 * One store is shared by every worker thread; it knows nothing of sockets,
 * event loops or clients. An entry is immutable once made and reference
 * counted, so a worker replays it after the store's lock is released. A
 * waiter's callback always runs on the waiter's own thread: the store hands
 * it to the runtime's post function (server's worker_post) with the
 * waiter's target, so nothing about a client is ever touched from the
 * leader's thread. See cache.c for the design.
 *
 * Typical use, for one eligible statement (cache_key.h decides eligibility
 * and builds keys):
 *     cache_lookup(raw key, probe)            HIT: replay          MISS: go on
 *     policy, cache_eligible, primary key
 *     cache_lookup(primary key, single flight)
 *         HIT   replay; cache_alias(raw -> primary) so the next one skips parsing
 *         WAIT  the callback comes later: HIT replay, RETRY look up again,
 *               BYPASS run it on the backend
 *         LEAD  run it on the backend, feeding every answer message to a
 *               PgwCacheCapture; then cache_flight_finish (or _fail/_abandon)
 *         BYPASS  run it on the backend, store nothing
 */
#ifndef PGW_CACHE_H
#define PGW_CACHE_H

#include "buf.h"
#include "cache_key.h"
#include "pgw.h"

typedef struct PgwCache PgwCache;
typedef struct PgwCacheEntry PgwCacheEntry;
typedef struct PgwCacheFlight PgwCacheFlight;
typedef struct PgwCacheWaiter PgwCacheWaiter;

/* Run fn(arg) soon on the thread that owns target (server.h worker_post). */
typedef void (*PgwCachePostFn)(void *target, void (*fn)(void *arg), void *arg);
typedef int64_t (*PgwCacheClockFn)(void);

typedef struct PgwCacheOptions {
    size_t max_memory; /* bytes, everything counted; 0 keeps nothing (flights still work) */
    size_t max_entry; /* largest answer stored */
    PgwCachePostFn post; /* NULL: waiters are called on the finishing thread (tests) */
    PgwCacheClockFn now_ms; /* NULL: CLOCK_MONOTONIC in milliseconds */
} PgwCacheOptions;

PgwCache *cache_new(const PgwCacheOptions *opt);
/* No flight may be open and no waiter waiting. */
void cache_free(PgwCache *c);
/* New limits (reload); the store shrinks to them at once. */
void cache_configure(PgwCache *c, size_t max_memory, size_t max_entry);
/* Split max_memory evenly among this many tenants (0 or 1: one share for
 * all): a tenant's records only ever evict its own, so no tenant's use of
 * the cache changes what stays cached for another. Shrinks at once. */
void cache_partition(PgwCache *c, size_t tenants);

/* ---- entries: what a hit replays ---- */

typedef struct PgwCacheAnswer {
    PgwCacheShape shape;
    const uint8_t *data; /* whole protocol messages, headers included */
    size_t len;
    /* EXTENDED: data[0, head_len) is the portal's RowDescription (or NoData),
     * what Describe of the portal answers; data[head_len, len) is what
     * Execute answers. has_head is false when the leader's client never
     * described the portal (such an entry cannot answer a Describe). */
    size_t head_len;
    bool has_head;
    uint64_t rows; /* DataRows, for the audit record */
} PgwCacheAnswer;

const PgwCacheAnswer *cache_entry_answer(const PgwCacheEntry *e);
PgwCacheEntry *cache_entry_retain(PgwCacheEntry *e);
void cache_entry_release(PgwCacheEntry *e);
/* An entry from serialized bytes (Redis), or NULL when they are not one. */
PgwCacheEntry *cache_entry_new(PgwCacheShape shape, const uint8_t *data, size_t len,
                               size_t head_len, bool has_head, uint64_t rows);

/* ---- capture: the leader's answer as it streams to its client ---- */

typedef struct PgwCacheCapture {
    PgwCacheShape shape;
    size_t max_entry;
    PgwBuf head, body;
    bool has_head, complete, failed;
    bool too_big; /* failed because of max_entry: remember the key as not storable */
    bool ready; /* cache_capture_bytes saw the ReadyForQuery that ends the answer */
    uint64_t rows;
    char why[96]; /* failed: why the answer is not stored */
    /* cache_capture_bytes' framing of a message split across calls */
    uint8_t hdr[5];
    size_t hdr_have;
    size_t body_left;
    PgwBuf msg;
} PgwCacheCapture;

void cache_capture_init(PgwCacheCapture *cap, PgwCacheShape shape, size_t max_entry);
/* Feed each backend message of the statement's answer (5-byte header
 * included), in order, up to but not including ReadyForQuery. Returns false
 * once the answer can no longer be stored (an error, a notice, a changed
 * setting, COPY, a suspended portal, more than max_entry bytes); the relay
 * goes on as before, only storing is off, and the bytes held so far are
 * freed at once. ParseComplete/BindComplete/CloseComplete and asynchronous
 * NotificationResponses are not part of an answer and are skipped. */
bool cache_capture_message(PgwCacheCapture *cap, const uint8_t *msg, size_t len);
/* The same for bytes as the relay passes them (link.h's relayed hook):
 * whole messages or any pieces of them, framed here. A ReadyForQuery ends
 * the answer (and, for EXTENDED, the portal's CommandComplete,
 * EmptyQueryResponse, ErrorResponse or PortalSuspended): cap->ready is set
 * and later bytes are ignored. */
void cache_capture_bytes(PgwCacheCapture *cap, const uint8_t *data, size_t len);
/* The entry (NULL, why in cap->why, when not storable); the capture is
 * emptied either way. */
PgwCacheEntry *cache_capture_finish(PgwCacheCapture *cap);
void cache_capture_free(PgwCacheCapture *cap);

/* ---- lookups and single flight ---- */

typedef enum {
    PGW_CACHE_HIT, /* *hit: an entry reference the caller releases */
    PGW_CACHE_MISS, /* probe only: nothing stored under the key */
    PGW_CACHE_LEAD, /* *lead: run it, then finish, fail or abandon the flight */
    PGW_CACHE_WAIT, /* *wait: the callback will come (or cancel it) */
    PGW_CACHE_BYPASS, /* run it, store nothing (the answer is known not to be storable) */
} PgwCacheOutcome;

typedef enum {
    PGW_CACHE_WAKE_HIT, /* e: the leader's answer, a reference the callee releases */
    PGW_CACHE_WAKE_RETRY, /* the leader gave up, or its tables changed meanwhile: look up again */
    PGW_CACHE_WAKE_BYPASS, /* the answer is not storable (an error, too big): run it yourself */
} PgwCacheWake;
typedef void (*PgwCacheWaitFn)(void *arg, PgwCacheWake how, PgwCacheEntry *e);

typedef struct PgwCacheRequest {
    PgwCacheKey key;
    const char *tenant;
    bool single_flight; /* false: a probe, HIT or MISS only (the raw-text fast path) */
    /* single flight: the tables the statement reads (cache_eligible's
     * relations), so an invalidation of one of them while the leader runs
     * keeps its answer out of the store, and who to wake on which thread */
    size_t nrelations;
    char *const *relations;
    void *target;
    PgwCacheWaitFn fn;
    void *arg;
} PgwCacheRequest;

PgwCacheOutcome cache_lookup(PgwCache *c, const PgwCacheRequest *rq, PgwCacheEntry **hit,
                             PgwCacheFlight **lead, PgwCacheWaiter **wait);
/* The leader's answer: stored (with an alias from the raw-text key when
 * alias is given) unless a table it read was invalidated or its tenant
 * cleared while it ran, and handed to every waiter either way — except in
 * that case, where waiters are told to look up again so none of them gets
 * an answer older than the change. Takes the entry reference. */
void cache_flight_finish(PgwCacheFlight *f, PgwCacheEntry *e, int ttl_ms, const PgwCacheKey *alias);
/* No storable answer: waiters run it themselves. remember (the answer was
 * too big): later lookups of the key BYPASS for ttl_ms instead of leading. */
void cache_flight_fail(PgwCacheFlight *f, bool remember, int ttl_ms);
/* The leader went away without an answer (cancel, disconnect, backend
 * lost): waiters look up again and one of them leads. */
void cache_flight_abandon(PgwCacheFlight *f);
/* Stop waiting (statement_timeout, cancel, disconnect). Only on the
 * waiter's own thread; the callback is then never called. */
void cache_wait_cancel(PgwCacheWaiter *w);

/* File an entry without a flight (an answer fetched from Redis, a replay
 * through the primary key that the raw-text key should find next time). */
void cache_put(PgwCache *c, const char *tenant, const PgwCacheKey *key, PgwCacheEntry *e,
               int ttl_ms, size_t nrelations, char *const *relations);
void cache_alias(PgwCache *c, const char *tenant, const PgwCacheKey *alias,
                 const PgwCacheKey *target, int ttl_ms);

/* ---- invalidation and clearing ---- */

/* A write to relation ("schema.name") in tenant's database: every entry
 * that read it goes, and running flights that read it store nothing. */
void cache_invalidate(PgwCache *c, const char *tenant, const char *relation);
/* Drop every entry of tenant (NULL: of all tenants); returns how many.
 * Running flights of those tenants store nothing. */
size_t cache_clear(PgwCache *c, const char *tenant);
/* Drop up to max expired entries (a periodic timer keeps memory honest
 * between lookups). */
size_t cache_expire(PgwCache *c, size_t max);

/* ---- accounting ---- */

typedef struct PgwCacheCounters {
    size_t entries; /* answers stored (aliases and remembered misses not counted) */
    size_t bytes; /* everything counted, as max_memory counts it */
    uint64_t hits, misses, evictions, coalesced, bypasses, invalidations;
} PgwCacheCounters;

typedef enum {
    PGW_CACHE_NOTE_HIT,
    PGW_CACHE_NOTE_MISS,
    PGW_CACHE_NOTE_BYPASS,
    PGW_CACHE_NOTE_COALESCED,
    PGW_CACHE_NOTE_REMOTE_HIT, /* a miss here that Redis answered: counted as a hit instead */
} PgwCacheNote;
/* Count an outcome decided elsewhere (a Redis hit) in tenant's counters. */
void cache_note(PgwCache *c, const char *tenant, PgwCacheNote what);

void cache_totals(PgwCache *c, PgwCacheCounters *out, size_t *max_memory);
/* Calls fn for each tenant the store has seen, under the store's lock:
 * fn must only copy what it is given. */
void cache_foreach_tenant(PgwCache *c,
                          void (*fn)(void *arg, const char *tenant, const PgwCacheCounters *n),
                          void *arg);

#endif
