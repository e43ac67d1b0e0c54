/*
 * cache.c — the in-process result store; see cache.h.
 *
 * Structure. One mutex guards everything; what it protects is a few pointer
 * updates per lookup (a hash probe, an LRU move, a reference count), never
 * the copying of an answer, which a worker does from its own reference after
 * the lock is released. Records live in one hash table by key digest and on
 * one LRU list; each record is also on its tenant's list (clear by tenant)
 * and, through one link per table it read, on that table's list
 * (invalidation by table touches exactly the entries it must drop). Keys are
 * SHA-256 digests, so their first eight bytes are already a uniform hash.
 *
 * Records are of three kinds: an entry (an answer), an alias (the client's
 * raw text key pointing at the primary key of the policy's rewrite — a hit
 * through it skips parsing), and a remembered "not storable" (an answer
 * larger than max_entry: later misses on that key run at once instead of
 * queueing behind a leader whose answer will not be kept). All of them count
 * towards max_memory with everything they hold, and all are evicted by the
 * same LRU. An alias whose entry is gone is dropped when it is next met.
 *
 * Single flight. A miss with single_flight either leads (no flight for the
 * key yet) or joins the running flight as a waiter. The leader's outcome
 * decides what waiters get: its answer, "retry" (it went away without one,
 * or a table it read changed while it ran — an invalidation or a clear
 * removes the flight from the table at once, so later misses start afresh
 * and its answer, older than the change, is never stored or handed out), or
 * "bypass" (the answer cannot be stored; each runs it itself). Waking never
 * calls a waiter's function on the leader's thread: the store marks the
 * waiter posted under the lock and hands it to the runtime's post function
 * for its own thread. Cancelling happens on that same thread, so "cancel
 * before the post" (removed from the flight, freed at once) and "cancel
 * after" (the posted call sees the flag and only frees) never race.
 *
 * Memory is partitioned by tenant (cache_partition): max_memory is split
 * evenly among the configured tenants, each tenant's records are also on an
 * LRU list of its own, and making room for a record only ever evicts records
 * of the same tenant. A shared LRU would be a channel between tenants (the
 * red team's prime-and-probe: A fills the cache, B's queries evict A's
 * entries, A reads from its own hits and misses how much B queried). With a
 * fixed share, nothing B does changes which of A's entries stay. The global
 * bound stays as a backstop for tenants a reload removed (their records age
 * out through the global LRU order, expiry and clears).
 *
 * Generations for invalidation are implicit: an invalidation drops the
 * entries that read the table and poisons the flights that read it, which is
 * everything a generation counter would have been compared for.
 */
#include "cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { REC_ENTRY, REC_ALIAS, REC_UNSTORABLE } RecKind;

typedef struct Record Record;
typedef struct Table Table;

typedef struct Tenant {
    char *name;
    PgwCacheCounters n;
    Record *records;
    Record *lru_head, *lru_tail; /* this tenant's records, head: most recently used */
    struct Tenant *hnext;
} Tenant;

typedef struct Link {
    Record *rec;
    Table *table;
    struct Link *prev, *next;
} Link;

struct Table {
    Tenant *tenant;
    char *name;
    uint64_t hash;
    size_t refs; /* open flights that read it */
    Link *links; /* entries that read it */
    Table *hnext;
};

struct Record {
    uint8_t digest[PGW_CACHE_DIGEST_LEN];
    RecKind kind;
    uint8_t target[PGW_CACHE_DIGEST_LEN]; /* REC_ALIAS */
    PgwCacheEntry *entry; /* REC_ENTRY */
    Tenant *tenant;
    int64_t expires_ms;
    size_t bytes;
    Record *hnext;
    Record *lru_prev, *lru_next;
    Record *tlru_prev, *tlru_next; /* on its tenant's LRU */
    Record *t_prev, *t_next;
    size_t nlinks;
    Link *links;
};

struct PgwCacheEntry {
    int refs;
    PgwCacheAnswer answer;
    uint8_t *data;
};

struct PgwCacheFlight {
    PgwCache *c;
    uint8_t digest[PGW_CACHE_DIGEST_LEN];
    Tenant *tenant;
    size_t ntables;
    Table **tables;
    bool poisoned; /* no longer in the flight table; its answer is not stored */
    PgwCacheWaiter *waiters;
    PgwCacheFlight *hnext;
};

struct PgwCacheWaiter {
    PgwCache *c;
    PgwCacheFlight *flight; /* while waiting (read under the lock) */
    void *target;
    PgwCacheWaitFn fn;
    void *arg;
    bool posted; /* under the lock: the wake-up is on its way */
    bool cancelled; /* waiter's thread only */
    PgwCacheWake how;
    PgwCacheEntry *entry;
    PgwCacheWaiter *prev, *next;
};

#define TENANT_BUCKETS 256
#define FLIGHT_BUCKETS 256

struct PgwCache {
    pthread_mutex_t mu;
    PgwCacheOptions opt;
    size_t max_memory, max_entry;
    size_t shares; /* tenants max_memory is split among (0: one share) */
    Record **buckets;
    size_t nbuckets, nrecords;
    Record *lru_head, *lru_tail; /* head: most recently used */
    Tenant *tenants[TENANT_BUCKETS];
    Table **tables;
    size_t ntable_buckets, ntables;
    PgwCacheFlight *flights[FLIGHT_BUCKETS];
    PgwCacheCounters total;
};

/* ---- small helpers ------------------------------------------------------------- */

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(PgwCache *c)
{
    return c->opt.now_ms ? c->opt.now_ms() : monotonic_ms();
}

static uint64_t digest_hash(const uint8_t *d)
{
    uint64_t h;
    memcpy(&h, d, sizeof h);
    return h;
}

static uint64_t str_hash(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return (h ^ 0xff) * 1099511628211ull;
}

/* ---- entries ---------------------------------------------------------------------- */

PgwCacheEntry *cache_entry_new(PgwCacheShape shape, const uint8_t *data, size_t len,
                               size_t head_len, bool has_head, uint64_t rows)
{
    if (head_len > len || (!has_head && head_len != 0) || (shape == PGW_CACHE_SIMPLE && has_head))
        return NULL;
    PgwCacheEntry *e = pgw_calloc(1, sizeof(*e));
    e->refs = 1;
    e->data = pgw_malloc(len ? len : 1);
    memcpy(e->data, data, len);
    e->answer = (PgwCacheAnswer){shape, e->data, len, head_len, has_head, rows};
    return e;
}

const PgwCacheAnswer *cache_entry_answer(const PgwCacheEntry *e)
{
    return &e->answer;
}

PgwCacheEntry *cache_entry_retain(PgwCacheEntry *e)
{
    __atomic_add_fetch(&e->refs, 1, __ATOMIC_RELAXED);
    return e;
}

void cache_entry_release(PgwCacheEntry *e)
{
    if (e == NULL || __atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    free(e->data);
    free(e);
}

/* ---- capture ---------------------------------------------------------------------- */

void cache_capture_init(PgwCacheCapture *cap, PgwCacheShape shape, size_t max_entry)
{
    memset(cap, 0, sizeof(*cap));
    cap->shape = shape;
    cap->max_entry = max_entry;
    buf_init(&cap->head);
    buf_init(&cap->body);
    buf_init(&cap->msg);
}

static bool capture_fail(PgwCacheCapture *cap, const char *why)
{
    if (!cap->failed)
        snprintf(cap->why, sizeof cap->why, "%s", why);
    cap->failed = true;
    buf_free(&cap->head);
    buf_free(&cap->body);
    return false;
}

bool cache_capture_message(PgwCacheCapture *cap, const uint8_t *msg, size_t len)
{
    if (cap->failed)
        return false;
    if (len < 5)
        return capture_fail(cap, "a malformed message");
    PgwBuf *to = &cap->body;
    switch (msg[0]) {
    case '1': /* ParseComplete, BindComplete, CloseComplete: the relay makes its own */
    case '2':
    case '3':
    case 't': /* ParameterDescription belongs to the statement, not the portal */
    case 'A': /* NotificationResponse: asynchronous, not part of the answer */
        return true;
    case 'T':
    case 'n':
        if (cap->shape == PGW_CACHE_EXTENDED) {
            if (cap->has_head || cap->body.len > 0)
                return capture_fail(cap, "a second row description");
            to = &cap->head;
            cap->has_head = true;
        } else if (msg[0] == 'n') {
            return capture_fail(cap, "NoData in a simple query");
        }
        break;
    case 'D':
        cap->rows++;
        break;
    case 'C':
    case 'I':
        cap->complete = true;
        break;
    case 'E':
        return capture_fail(cap, "the statement failed");
    case 'N':
        return capture_fail(cap, "the backend sent a notice");
    case 'S':
        return capture_fail(cap, "a setting changed while it ran");
    case 's':
        return capture_fail(cap, "the portal was suspended");
    case 'G':
    case 'H':
    case 'W':
    case 'd':
    case 'c':
        return capture_fail(cap, "COPY is streamed, not cached");
    default:
        return capture_fail(cap, "an unexpected backend message");
    }
    if (cap->head.len + cap->body.len + len > cap->max_entry) {
        capture_fail(cap, "the answer is larger than max_entry");
        cap->too_big = true;
        return false;
    }
    buf_append(to, msg, len);
    return true;
}

void cache_capture_bytes(PgwCacheCapture *cap, const uint8_t *data, size_t len)
{
    while (len > 0 && !cap->ready) {
        if (cap->hdr_have < 5) {
            size_t n = 5 - cap->hdr_have < len ? 5 - cap->hdr_have : len;
            memcpy(cap->hdr + cap->hdr_have, data, n);
            cap->hdr_have += n;
            data += n;
            len -= n;
            if (cap->hdr_have < 5)
                return;
            uint32_t mlen = (uint32_t)cap->hdr[1] << 24 | (uint32_t)cap->hdr[2] << 16 |
                            (uint32_t)cap->hdr[3] << 8 | cap->hdr[4];
            if (mlen < 4) {
                capture_fail(cap, "a malformed message");
                cap->ready = true; /* the stream cannot be followed any more */
                return;
            }
            cap->body_left = mlen - 4;
            buf_reset(&cap->msg);
            /* A message that cannot fit is skipped, never buffered: an
             * answer message makes the answer too big; any other is judged
             * by its type alone (an empty one of its kind). */
            bool skip = false;
            if (!cap->failed && cap->hdr[0] != 'Z' &&
                cap->head.len + cap->body.len + (size_t)mlen + 1 > cap->max_entry) {
                skip = true;
                if (strchr("TnDCI", cap->hdr[0]) != NULL) {
                    capture_fail(cap, "the answer is larger than max_entry");
                    cap->too_big = true;
                } else {
                    uint8_t empty[5] = {cap->hdr[0], 0, 0, 0, 4};
                    cache_capture_message(cap, empty, sizeof empty);
                }
            }
            if (!skip && !cap->failed)
                buf_append(&cap->msg, cap->hdr, 5);
        }
        size_t n = cap->body_left < len ? cap->body_left : len;
        if (cap->msg.len > 0)
            buf_append(&cap->msg, data, n);
        data += n;
        len -= n;
        cap->body_left -= n;
        if (cap->body_left > 0)
            return;
        cap->hdr_have = 0;
        if (cap->hdr[0] == 'Z')
            cap->ready = true;
        else if (!cap->failed && cap->msg.len > 0) /* 0: skipped */
            cache_capture_message(cap, cap->msg.data, cap->msg.len);
        /* An extended-protocol answer is one portal's: what follows its
         * CommandComplete (or its end in an error or a suspension) answers
         * the client's next message, not this one. */
        if (cap->shape == PGW_CACHE_EXTENDED && memchr("CIEs", cap->hdr[0], 4) != NULL)
            cap->ready = true;
        buf_reset(&cap->msg);
    }
}

PgwCacheEntry *cache_capture_finish(PgwCacheCapture *cap)
{
    PgwCacheEntry *e = NULL;
    if (!cap->failed && !cap->complete)
        capture_fail(cap, "the answer is incomplete");
    if (!cap->failed) {
        PgwBuf all;
        buf_init(&all);
        buf_append(&all, cap->head.data, cap->head.len);
        buf_append(&all, cap->body.data, cap->body.len);
        e = cache_entry_new(cap->shape, all.data, all.len, cap->head.len, cap->has_head, cap->rows);
        buf_free(&all);
    }
    buf_free(&cap->head);
    buf_free(&cap->body);
    buf_free(&cap->msg);
    return e;
}

void cache_capture_free(PgwCacheCapture *cap)
{
    buf_free(&cap->head);
    buf_free(&cap->body);
    buf_free(&cap->msg);
}

/* ---- the store --------------------------------------------------------------------- */

PgwCache *cache_new(const PgwCacheOptions *opt)
{
    PgwCache *c = pgw_calloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    c->opt = *opt;
    c->max_memory = opt->max_memory;
    c->max_entry = opt->max_entry;
    c->nbuckets = 1024;
    c->buckets = pgw_calloc(c->nbuckets, sizeof(Record *));
    c->ntable_buckets = 256;
    c->tables = pgw_calloc(c->ntable_buckets, sizeof(Table *));
    return c;
}

static Tenant *tenant_get(PgwCache *c, const char *name, bool create)
{
    uint64_t h = str_hash(1469598103934665603ull, name) % TENANT_BUCKETS;
    for (Tenant *t = c->tenants[h]; t; t = t->hnext)
        if (strcmp(t->name, name) == 0)
            return t;
    if (!create)
        return NULL;
    Tenant *t = pgw_calloc(1, sizeof(*t));
    t->name = pgw_strdup(name);
    t->hnext = c->tenants[h];
    c->tenants[h] = t;
    return t;
}

static Table *table_get(PgwCache *c, Tenant *tenant, const char *name, bool create)
{
    uint64_t h = str_hash(str_hash(1469598103934665603ull, tenant->name), name);
    for (Table *t = c->tables[h % c->ntable_buckets]; t; t = t->hnext)
        if (t->hash == h && t->tenant == tenant && strcmp(t->name, name) == 0)
            return t;
    if (!create)
        return NULL;
    if (c->ntables >= c->ntable_buckets) {
        size_t n = c->ntable_buckets * 2;
        Table **nb = pgw_calloc(n, sizeof(Table *));
        for (size_t i = 0; i < c->ntable_buckets; i++) {
            for (Table *t = c->tables[i], *next; t; t = next) {
                next = t->hnext;
                t->hnext = nb[t->hash % n];
                nb[t->hash % n] = t;
            }
        }
        free(c->tables);
        c->tables = nb;
        c->ntable_buckets = n;
    }
    Table *t = pgw_calloc(1, sizeof(*t));
    t->tenant = tenant;
    t->name = pgw_strdup(name);
    t->hash = h;
    t->hnext = c->tables[h % c->ntable_buckets];
    c->tables[h % c->ntable_buckets] = t;
    c->ntables++;
    c->total.bytes += sizeof(*t) + strlen(name) + 1;
    return t;
}

/* A table no entry and no flight refers to any more is forgotten. */
static void table_maybe_free(PgwCache *c, Table *t)
{
    if (t->refs > 0 || t->links != NULL)
        return;
    Table **pp = &c->tables[t->hash % c->ntable_buckets];
    while (*pp != t)
        pp = &(*pp)->hnext;
    *pp = t->hnext;
    c->ntables--;
    c->total.bytes -= sizeof(*t) + strlen(t->name) + 1;
    free(t->name);
    free(t);
}

static Record **record_slot(PgwCache *c, const uint8_t *digest)
{
    Record **pp = &c->buckets[digest_hash(digest) & (c->nbuckets - 1)];
    while (*pp && memcmp((*pp)->digest, digest, PGW_CACHE_DIGEST_LEN) != 0)
        pp = &(*pp)->hnext;
    return pp;
}

static void lru_unlink(PgwCache *c, Record *r)
{
    Tenant *t = r->tenant;
    if (r->tlru_prev)
        r->tlru_prev->tlru_next = r->tlru_next;
    else
        t->lru_head = r->tlru_next;
    if (r->tlru_next)
        r->tlru_next->tlru_prev = r->tlru_prev;
    else
        t->lru_tail = r->tlru_prev;
    r->tlru_prev = r->tlru_next = NULL;
    if (r->lru_prev)
        r->lru_prev->lru_next = r->lru_next;
    else
        c->lru_head = r->lru_next;
    if (r->lru_next)
        r->lru_next->lru_prev = r->lru_prev;
    else
        c->lru_tail = r->lru_prev;
    r->lru_prev = r->lru_next = NULL;
}

static void lru_push(PgwCache *c, Record *r)
{
    Tenant *t = r->tenant;
    r->tlru_prev = NULL;
    r->tlru_next = t->lru_head;
    if (t->lru_head)
        t->lru_head->tlru_prev = r;
    t->lru_head = r;
    if (!t->lru_tail)
        t->lru_tail = r;
    r->lru_prev = NULL;
    r->lru_next = c->lru_head;
    if (c->lru_head)
        c->lru_head->lru_prev = r;
    c->lru_head = r;
    if (!c->lru_tail)
        c->lru_tail = r;
}

static void lru_touch(PgwCache *c, Record *r)
{
    if (c->lru_head != r || r->tenant->lru_head != r) {
        lru_unlink(c, r);
        lru_push(c, r);
    }
}

typedef enum { DROP_EVICTED, DROP_EXPIRED, DROP_REPLACED, DROP_INVALIDATED } DropWhy;

/* Unlink r from everything and free it. The entry reference is released
 * under the lock; that only frees memory when no worker is replaying it. */
static void record_remove(PgwCache *c, Record *r, DropWhy why)
{
    Record **pp = record_slot(c, r->digest);
    if (*pp == r)
        *pp = r->hnext;
    c->nrecords--;
    lru_unlink(c, r);
    if (r->t_prev)
        r->t_prev->t_next = r->t_next;
    else
        r->tenant->records = r->t_next;
    if (r->t_next)
        r->t_next->t_prev = r->t_prev;
    for (size_t i = 0; i < r->nlinks; i++) {
        Link *l = &r->links[i];
        if (l->prev)
            l->prev->next = l->next;
        else
            l->table->links = l->next;
        if (l->next)
            l->next->prev = l->prev;
        table_maybe_free(c, l->table);
    }
    free(r->links);
    c->total.bytes -= r->bytes;
    r->tenant->n.bytes -= r->bytes;
    if (r->kind == REC_ENTRY) {
        c->total.entries--;
        r->tenant->n.entries--;
        if (why == DROP_EVICTED) {
            c->total.evictions++;
            r->tenant->n.evictions++;
        }
        cache_entry_release(r->entry);
    }
    free(r);
}

static void evict_to(PgwCache *c, size_t limit)
{
    while (c->total.bytes > limit && c->lru_tail != NULL)
        record_remove(c, c->lru_tail, DROP_EVICTED);
}

/* What one tenant's records may hold together. */
static size_t tenant_limit(const PgwCache *c)
{
    return c->shares > 1 ? c->max_memory / c->shares : c->max_memory;
}

static void evict_tenant_to(PgwCache *c, Tenant *t, size_t limit)
{
    while (t->n.bytes > limit && t->lru_tail != NULL)
        record_remove(c, t->lru_tail, DROP_EVICTED);
}

static void evict_all_tenants_to(PgwCache *c, size_t limit)
{
    for (size_t b = 0; b < TENANT_BUCKETS; b++)
        for (Tenant *t = c->tenants[b]; t; t = t->hnext)
            evict_tenant_to(c, t, limit);
}

static void grow_buckets(PgwCache *c)
{
    size_t n = c->nbuckets * 2;
    Record **nb = pgw_calloc(n, sizeof(Record *));
    for (size_t i = 0; i < c->nbuckets; i++) {
        for (Record *r = c->buckets[i], *next; r; r = next) {
            next = r->hnext;
            size_t h = digest_hash(r->digest) & (n - 1);
            r->hnext = nb[h];
            nb[h] = r;
        }
    }
    free(c->buckets);
    c->buckets = nb;
    c->nbuckets = n;
}

/* Insert a record (replacing any under the same key), charge it, link it to
 * its tables, and evict down to max_memory. Returns NULL (and frees what it
 * was given) when the record alone would not fit. */
static Record *record_add(PgwCache *c, Tenant *tenant, const uint8_t *digest, RecKind kind,
                          PgwCacheEntry *e, int64_t expires_ms, size_t ntables, Table **tables)
{
    size_t bytes = sizeof(Record) + sizeof(Record *) + ntables * sizeof(Link);
    if (kind == REC_ENTRY)
        bytes += sizeof(PgwCacheEntry) + e->answer.len;
    Record **pp = record_slot(c, digest);
    if (*pp)
        record_remove(c, *pp, DROP_REPLACED);
    if (bytes > tenant_limit(c)) {
        cache_entry_release(e);
        return NULL;
    }
    Record *r = pgw_calloc(1, sizeof(*r));
    memcpy(r->digest, digest, PGW_CACHE_DIGEST_LEN);
    r->kind = kind;
    r->entry = e;
    r->tenant = tenant;
    r->expires_ms = expires_ms;
    r->bytes = bytes;
    pp = record_slot(c, digest);
    *pp = r;
    c->nrecords++;
    lru_push(c, r);
    r->t_next = tenant->records;
    if (tenant->records)
        tenant->records->t_prev = r;
    tenant->records = r;
    if (ntables > 0) {
        r->links = pgw_calloc(ntables, sizeof(Link));
        r->nlinks = ntables;
        for (size_t i = 0; i < ntables; i++) {
            Link *l = &r->links[i];
            l->rec = r;
            l->table = tables[i];
            l->next = tables[i]->links;
            if (l->next)
                l->next->prev = l;
            tables[i]->links = l;
        }
    }
    c->total.bytes += bytes;
    tenant->n.bytes += bytes;
    if (kind == REC_ENTRY) {
        c->total.entries++;
        tenant->n.entries++;
    }
    if (c->nrecords > c->nbuckets)
        grow_buckets(c);
    /* r is the most recent: it goes last, and only if nothing else of its
     * tenant is left; other tenants' records are never evicted for it
     * (only the backstop, when tenants a reload removed still hold some). */
    evict_tenant_to(c, tenant, tenant_limit(c));
    evict_to(c, c->max_memory);
    return *record_slot(c, digest) == r ? r : NULL;
}

void cache_configure(PgwCache *c, size_t max_memory, size_t max_entry)
{
    pthread_mutex_lock(&c->mu);
    c->max_memory = max_memory;
    c->max_entry = max_entry;
    evict_all_tenants_to(c, tenant_limit(c));
    evict_to(c, max_memory);
    pthread_mutex_unlock(&c->mu);
}

void cache_partition(PgwCache *c, size_t tenants)
{
    pthread_mutex_lock(&c->mu);
    c->shares = tenants;
    evict_all_tenants_to(c, tenant_limit(c));
    pthread_mutex_unlock(&c->mu);
}

/* ---- lookups ----------------------------------------------------------------------- */

static Record *find_live(PgwCache *c, const uint8_t *digest, int64_t now)
{
    Record *r = *record_slot(c, digest);
    if (r != NULL && r->expires_ms <= now) {
        record_remove(c, r, DROP_EXPIRED);
        return NULL;
    }
    return r;
}

static PgwCacheFlight **flight_slot(PgwCache *c, const uint8_t *digest)
{
    PgwCacheFlight **pp = &c->flights[digest_hash(digest) % FLIGHT_BUCKETS];
    while (*pp && memcmp((*pp)->digest, digest, PGW_CACHE_DIGEST_LEN) != 0)
        pp = &(*pp)->hnext;
    return pp;
}

/* Take a flight out of the table: later misses start a new one. */
static void flight_detach(PgwCache *c, PgwCacheFlight *f)
{
    if (f->poisoned)
        return;
    PgwCacheFlight **pp = flight_slot(c, f->digest);
    if (*pp == f)
        *pp = f->hnext;
    f->poisoned = true;
}

PgwCacheOutcome cache_lookup(PgwCache *c, const PgwCacheRequest *rq, PgwCacheEntry **hit,
                             PgwCacheFlight **lead, PgwCacheWaiter **wait)
{
    PgwCacheOutcome out;
    *hit = NULL;
    *lead = NULL;
    *wait = NULL;
    pthread_mutex_lock(&c->mu);
    int64_t now = now_ms(c);
    Tenant *tenant = tenant_get(c, rq->tenant, true);
    Record *r = find_live(c, rq->key.digest, now);
    /* Keys carry their tenant already; a record filed under another
     * tenant's name answers nothing all the same. */
    if (r != NULL && r->tenant != tenant)
        r = NULL;
    if (r != NULL && r->kind == REC_ALIAS) {
        Record *target = find_live(c, r->target, now);
        if (target != NULL && target->kind == REC_ENTRY && target->tenant == tenant) {
            lru_touch(c, r);
            r = target;
        } else {
            record_remove(c, r, DROP_REPLACED);
            r = NULL;
        }
    }
    if (r != NULL && r->kind == REC_ENTRY) {
        lru_touch(c, r);
        *hit = cache_entry_retain(r->entry);
        tenant->n.hits++;
        c->total.hits++;
        out = PGW_CACHE_HIT;
        goto done;
    }
    if (r != NULL && r->kind == REC_UNSTORABLE) {
        lru_touch(c, r);
        tenant->n.bypasses++;
        c->total.bypasses++;
        out = PGW_CACHE_BYPASS;
        goto done;
    }
    if (!rq->single_flight) {
        out = PGW_CACHE_MISS;
        goto done;
    }
    PgwCacheFlight *f = *flight_slot(c, rq->key.digest);
    if (f != NULL) {
        if (rq->fn == NULL) {
            tenant->n.bypasses++;
            c->total.bypasses++;
            out = PGW_CACHE_BYPASS;
            goto done;
        }
        PgwCacheWaiter *w = pgw_calloc(1, sizeof(*w));
        w->c = c;
        w->flight = f;
        w->target = rq->target;
        w->fn = rq->fn;
        w->arg = rq->arg;
        w->next = f->waiters;
        if (f->waiters)
            f->waiters->prev = w;
        f->waiters = w;
        tenant->n.coalesced++;
        c->total.coalesced++;
        *wait = w;
        out = PGW_CACHE_WAIT;
        goto done;
    }
    f = pgw_calloc(1, sizeof(*f));
    f->c = c;
    memcpy(f->digest, rq->key.digest, PGW_CACHE_DIGEST_LEN);
    f->tenant = tenant;
    if (rq->nrelations > 0) {
        f->tables = pgw_calloc(rq->nrelations, sizeof(Table *));
        for (size_t i = 0; i < rq->nrelations; i++) {
            Table *t = table_get(c, tenant, rq->relations[i], true);
            bool dup = false;
            for (size_t j = 0; j < f->ntables; j++)
                dup = dup || f->tables[j] == t;
            if (!dup) {
                t->refs++;
                f->tables[f->ntables++] = t;
            }
        }
    }
    PgwCacheFlight **slot = flight_slot(c, f->digest);
    *slot = f;
    tenant->n.misses++;
    c->total.misses++;
    *lead = f;
    out = PGW_CACHE_LEAD;
done:
    pthread_mutex_unlock(&c->mu);
    return out;
}

static void waiter_fire(void *arg)
{
    PgwCacheWaiter *w = arg;
    if (!w->cancelled)
        w->fn(w->arg, w->how, w->entry); /* the entry reference is the callee's now */
    else
        cache_entry_release(w->entry);
    free(w);
}

/* Under the lock: detach the flight, tell each waiter what it gets, drop the
 * flight's table references. Returns the waiters to post after unlocking. */
static PgwCacheWaiter *flight_close(PgwCache *c, PgwCacheFlight *f, PgwCacheWake how,
                                    PgwCacheEntry *e)
{
    flight_detach(c, f);
    PgwCacheWaiter *list = f->waiters;
    for (PgwCacheWaiter *w = list; w; w = w->next) {
        w->posted = true;
        w->flight = NULL;
        w->how = how;
        w->entry = how == PGW_CACHE_WAKE_HIT ? cache_entry_retain(e) : NULL;
    }
    f->waiters = NULL;
    for (size_t i = 0; i < f->ntables; i++) {
        f->tables[i]->refs--;
        table_maybe_free(c, f->tables[i]);
    }
    return list;
}

static void post_waiters(PgwCache *c, PgwCacheWaiter *list)
{
    while (list) {
        PgwCacheWaiter *w = list;
        list = w->next;
        w->prev = w->next = NULL;
        if (c->opt.post)
            c->opt.post(w->target, waiter_fire, w);
        else
            waiter_fire(w);
    }
}

static void flight_free(PgwCacheFlight *f)
{
    free(f->tables);
    free(f);
}

void cache_flight_finish(PgwCacheFlight *f, PgwCacheEntry *e, int ttl_ms, const PgwCacheKey *alias)
{
    PgwCache *c = f->c;
    pthread_mutex_lock(&c->mu);
    bool stale = f->poisoned;
    if (!stale && ttl_ms > 0 && e->answer.len <= c->max_entry) {
        int64_t expires = now_ms(c) + ttl_ms;
        Record *r = record_add(c, f->tenant, f->digest, REC_ENTRY, cache_entry_retain(e), expires,
                               f->ntables, f->tables);
        if (r != NULL && alias != NULL &&
            memcmp(alias->digest, f->digest, PGW_CACHE_DIGEST_LEN) != 0) {
            Record *a = record_add(c, f->tenant, alias->digest, REC_ALIAS, NULL, expires, 0, NULL);
            if (a != NULL)
                memcpy(a->target, f->digest, PGW_CACHE_DIGEST_LEN);
        }
    }
    PgwCacheWaiter *list = flight_close(c, f, stale ? PGW_CACHE_WAKE_RETRY : PGW_CACHE_WAKE_HIT, e);
    pthread_mutex_unlock(&c->mu);
    post_waiters(c, list);
    cache_entry_release(e);
    flight_free(f);
}

void cache_flight_fail(PgwCacheFlight *f, bool remember, int ttl_ms)
{
    PgwCache *c = f->c;
    pthread_mutex_lock(&c->mu);
    if (remember && !f->poisoned && ttl_ms > 0)
        record_add(c, f->tenant, f->digest, REC_UNSTORABLE, NULL, now_ms(c) + ttl_ms, 0, NULL);
    PgwCacheWaiter *list = flight_close(c, f, PGW_CACHE_WAKE_BYPASS, NULL);
    pthread_mutex_unlock(&c->mu);
    post_waiters(c, list);
    flight_free(f);
}

void cache_flight_abandon(PgwCacheFlight *f)
{
    PgwCache *c = f->c;
    pthread_mutex_lock(&c->mu);
    PgwCacheWaiter *list = flight_close(c, f, PGW_CACHE_WAKE_RETRY, NULL);
    pthread_mutex_unlock(&c->mu);
    post_waiters(c, list);
    flight_free(f);
}

void cache_wait_cancel(PgwCacheWaiter *w)
{
    PgwCache *c = w->c;
    pthread_mutex_lock(&c->mu);
    if (w->posted) {
        /* The wake-up is on its way to this very thread: it sees the flag
         * and only frees. */
        pthread_mutex_unlock(&c->mu);
        w->cancelled = true;
        return;
    }
    PgwCacheFlight *f = w->flight;
    if (w->prev)
        w->prev->next = w->next;
    else
        f->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&c->mu);
    free(w);
}

void cache_put(PgwCache *c, const char *tenant_name, const PgwCacheKey *key, PgwCacheEntry *e,
               int ttl_ms, size_t nrelations, char *const *relations)
{
    if (ttl_ms <= 0)
        return;
    pthread_mutex_lock(&c->mu);
    if (e->answer.len <= c->max_entry) {
        Tenant *tenant = tenant_get(c, tenant_name, true);
        Table **tables = nrelations ? pgw_calloc(nrelations, sizeof(Table *)) : NULL;
        size_t n = 0;
        for (size_t i = 0; i < nrelations; i++) {
            Table *t = table_get(c, tenant, relations[i], true);
            bool dup = false;
            for (size_t j = 0; j < n; j++)
                dup = dup || tables[j] == t;
            if (!dup) {
                t->refs++; /* the record this one replaces may be a table's last */
                tables[n++] = t;
            }
        }
        record_add(c, tenant, key->digest, REC_ENTRY, cache_entry_retain(e), now_ms(c) + ttl_ms, n,
                   tables);
        for (size_t i = 0; i < n; i++) {
            tables[i]->refs--;
            table_maybe_free(c, tables[i]);
        }
        free(tables);
    }
    pthread_mutex_unlock(&c->mu);
}

void cache_alias(PgwCache *c, const char *tenant_name, const PgwCacheKey *alias,
                 const PgwCacheKey *target, int ttl_ms)
{
    if (ttl_ms <= 0 || memcmp(alias->digest, target->digest, PGW_CACHE_DIGEST_LEN) == 0)
        return;
    pthread_mutex_lock(&c->mu);
    Tenant *tenant = tenant_get(c, tenant_name, true);
    Record *a = record_add(c, tenant, alias->digest, REC_ALIAS, NULL, now_ms(c) + ttl_ms, 0, NULL);
    if (a != NULL)
        memcpy(a->target, target->digest, PGW_CACHE_DIGEST_LEN);
    pthread_mutex_unlock(&c->mu);
}

/* ---- invalidation ------------------------------------------------------------------ */

static void poison_flights(PgwCache *c, const Tenant *tenant, const Table *table)
{
    for (size_t b = 0; b < FLIGHT_BUCKETS; b++) {
        for (PgwCacheFlight *f = c->flights[b], *next; f; f = next) {
            next = f->hnext;
            bool hit = tenant == NULL || f->tenant == tenant;
            if (hit && table != NULL) {
                hit = false;
                for (size_t i = 0; i < f->ntables; i++)
                    hit = hit || f->tables[i] == table;
            }
            if (hit)
                flight_detach(c, f);
        }
    }
}

void cache_invalidate(PgwCache *c, const char *tenant_name, const char *relation)
{
    pthread_mutex_lock(&c->mu);
    Tenant *tenant = tenant_get(c, tenant_name, true);
    tenant->n.invalidations++;
    c->total.invalidations++;
    Table *t = table_get(c, tenant, relation, false);
    if (t != NULL) {
        poison_flights(c, tenant, t);
        t->refs++; /* keep it while its last entries go */
        while (t->links != NULL)
            record_remove(c, t->links->rec, DROP_INVALIDATED);
        t->refs--;
        table_maybe_free(c, t);
    }
    pthread_mutex_unlock(&c->mu);
}

size_t cache_clear(PgwCache *c, const char *tenant_name)
{
    size_t n = 0;
    pthread_mutex_lock(&c->mu);
    Tenant *only = tenant_name ? tenant_get(c, tenant_name, false) : NULL;
    if (tenant_name == NULL || only != NULL) {
        poison_flights(c, only, NULL);
        for (size_t b = 0; b < TENANT_BUCKETS; b++) {
            for (Tenant *t = c->tenants[b]; t; t = t->hnext) {
                if (only != NULL && t != only)
                    continue;
                while (t->records != NULL) {
                    n += t->records->kind == REC_ENTRY;
                    record_remove(c, t->records, DROP_INVALIDATED);
                }
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

size_t cache_expire(PgwCache *c, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&c->mu);
    int64_t now = now_ms(c);
    Record *r = c->lru_tail;
    for (size_t seen = 0; r != NULL && seen < max; seen++) {
        Record *prev = r->lru_prev;
        if (r->expires_ms <= now) {
            n += r->kind == REC_ENTRY;
            record_remove(c, r, DROP_EXPIRED);
        }
        r = prev;
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* ---- accounting -------------------------------------------------------------------- */

void cache_note(PgwCache *c, const char *tenant_name, PgwCacheNote what)
{
    pthread_mutex_lock(&c->mu);
    Tenant *t = tenant_get(c, tenant_name, true);
    switch (what) {
    case PGW_CACHE_NOTE_HIT:
        t->n.hits++;
        c->total.hits++;
        break;
    case PGW_CACHE_NOTE_MISS:
        t->n.misses++;
        c->total.misses++;
        break;
    case PGW_CACHE_NOTE_BYPASS:
        t->n.bypasses++;
        c->total.bypasses++;
        break;
    case PGW_CACHE_NOTE_COALESCED:
        t->n.coalesced++;
        c->total.coalesced++;
        break;
    case PGW_CACHE_NOTE_REMOTE_HIT:
        if (t->n.misses > 0 && c->total.misses > 0) {
            t->n.misses--;
            c->total.misses--;
        }
        t->n.hits++;
        c->total.hits++;
        break;
    }
    pthread_mutex_unlock(&c->mu);
}

void cache_totals(PgwCache *c, PgwCacheCounters *out, size_t *max_memory)
{
    pthread_mutex_lock(&c->mu);
    *out = c->total;
    if (max_memory)
        *max_memory = c->max_memory;
    pthread_mutex_unlock(&c->mu);
}

void cache_foreach_tenant(PgwCache *c,
                          void (*fn)(void *arg, const char *tenant, const PgwCacheCounters *n),
                          void *arg)
{
    pthread_mutex_lock(&c->mu);
    for (size_t b = 0; b < TENANT_BUCKETS; b++)
        for (Tenant *t = c->tenants[b]; t; t = t->hnext)
            fn(arg, t->name, &t->n);
    pthread_mutex_unlock(&c->mu);
}

void cache_free(PgwCache *c)
{
    if (c == NULL)
        return;
    while (c->lru_tail != NULL)
        record_remove(c, c->lru_tail, DROP_REPLACED);
    for (size_t b = 0; b < FLIGHT_BUCKETS; b++) {
        for (PgwCacheFlight *f = c->flights[b], *next; f; f = next) {
            next = f->hnext;
            flight_free(f); /* a caller bug; cache.h says none may be open */
        }
    }
    for (size_t b = 0; b < TENANT_BUCKETS; b++) {
        for (Tenant *t = c->tenants[b], *next; t; t = next) {
            next = t->hnext;
            free(t->name);
            free(t);
        }
    }
    for (size_t i = 0; i < c->ntable_buckets; i++) {
        for (Table *t = c->tables[i], *next; t; t = next) {
            next = t->hnext;
            free(t->name);
            free(t);
        }
    }
    free(c->tables);
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
