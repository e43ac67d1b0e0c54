/*
 * kvcache.c — see kvcache.h. A chained hash table plus a doubly linked LRU
 * list; both under one mutex.
 */
#include "kvcache.h"

#include "buf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct Entry {
    char *key, *value;
    int64_t expires_ms;
    uint64_t hash;
    struct Entry *chain;
    struct Entry *prev, *next; /* LRU: head is most recent */
} Entry;

struct PgwKvCache {
    pthread_mutex_t mu;
    size_t nbuckets, count, max;
    Entry **buckets;
    Entry *head, *tail;
    uint64_t hits, misses;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

PgwKvCache *kvcache_new(size_t max_entries)
{
    PgwKvCache *c = pgw_calloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->max = max_entries ? max_entries : 1;
    c->nbuckets = 64;
    while (c->nbuckets < c->max)
        c->nbuckets *= 2;
    c->buckets = pgw_calloc(c->nbuckets, sizeof *c->buckets);
    return c;
}

static void lru_unlink(PgwKvCache *c, Entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(PgwKvCache *c, Entry *e)
{
    e->next = c->head;
    e->prev = NULL;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static void entry_remove(PgwKvCache *c, Entry *e)
{
    Entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    lru_unlink(c, e);
    free(e->key);
    free(e->value);
    free(e);
    c->count--;
}

static Entry *find(PgwKvCache *c, const char *key, uint64_t h)
{
    for (Entry *e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->chain)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

char *kvcache_get(PgwKvCache *c, const char *key, int64_t now_ms)
{
    uint64_t h = hash_str(key);
    char *out = NULL;
    pthread_mutex_lock(&c->mu);
    Entry *e = find(c, key, h);
    if (e && e->expires_ms <= now_ms) {
        entry_remove(c, e);
        e = NULL;
    }
    if (e) {
        lru_unlink(c, e);
        lru_push(c, e);
        out = pgw_strdup(e->value);
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return out;
}

void kvcache_put(PgwKvCache *c, const char *key, const char *value, int64_t expires_ms)
{
    uint64_t h = hash_str(key);
    pthread_mutex_lock(&c->mu);
    Entry *e = find(c, key, h);
    if (e)
        entry_remove(c, e);
    while (c->count >= c->max && c->tail)
        entry_remove(c, c->tail);
    e = pgw_calloc(1, sizeof *e);
    e->key = pgw_strdup(key);
    e->value = pgw_strdup(value);
    e->expires_ms = expires_ms;
    e->hash = h;
    Entry **bucket = &c->buckets[h & (c->nbuckets - 1)];
    e->chain = *bucket;
    *bucket = e;
    lru_push(c, e);
    c->count++;
    pthread_mutex_unlock(&c->mu);
}

void kvcache_clear(PgwKvCache *c)
{
    pthread_mutex_lock(&c->mu);
    while (c->head)
        entry_remove(c, c->head);
    pthread_mutex_unlock(&c->mu);
}

void kvcache_stats(PgwKvCache *c, PgwKvCacheStats *out)
{
    pthread_mutex_lock(&c->mu);
    out->entries = c->count;
    out->hits = c->hits;
    out->misses = c->misses;
    pthread_mutex_unlock(&c->mu);
}

void kvcache_free(PgwKvCache *c)
{
    if (!c)
        return;
    kvcache_clear(c);
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
