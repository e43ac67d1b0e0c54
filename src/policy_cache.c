/*
 * policy_cache.c — the rewrite cache: policy decisions kept by (config
 * version, schema snapshot, tenant, parameter types, statement text), so a
 * client repeating a statement (drivers re-Parse the same text constantly)
 * pays the parse, rewrite, deparse and verification once.
 *
 * Owns one process-wide map behind a mutex, bounded in bytes
 * (rewrite_cache_size): every entry is charged for its key, its rewritten
 * SQL and its messages, the oldest entries go first (FIFO: rewrites are
 * cheap to redo, and FIFO needs no bookkeeping on hits), and an entry that
 * would take more than 1/256 of the bound is never stored, so a few huge
 * statements (390 kB IN lists) cannot pin memory after their client left.
 * policy_rewrite() here is the entry point the runtime calls,
 * policy_rewrite_uncached() (policy.c) the one it falls back to on a miss.
 * The key carries the config version, the schema generation and the Parse
 * message's parameter types (they change the decision), so a reload or a
 * new schema snapshot can never be answered from an old rewrite; nothing is
 * invalidated explicitly. Refusals are cached like approvals. The cache
 * never holds a lock while rewriting.
 */
#include "policy_cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>


/* A map from key to decision bounded in bytes; when full, the oldest
 * entries go. */
#define CACHE_BUCKETS 16384
#define CACHE_ENTRY_SHARE 256 /* the largest entry stored: bound / this */

typedef struct CacheEntry {
    struct CacheEntry *next; /* bucket chain */
    struct CacheEntry *newer; /* insertion order */
    uint64_t hash;
    char *key;
    size_t keylen;
    size_t bytes; /* what the entry is charged */
    PgwPolicyResult result;
    /* For a statement template: where each $k sits in result.sql, as the
     * scanner found it when the entry was made (start, end, k triples), so
     * filling a template in needs no second scan. NULL: not computed. */
    uint32_t *spans;
    size_t nspans;
} CacheEntry;

static struct {
    pthread_mutex_t lock;
    CacheEntry *buckets[CACHE_BUCKETS];
    CacheEntry *oldest, *newest;
    size_t count, bytes, max_bytes;
    unsigned long hits, misses;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? pgw_strdup(s) : NULL;
}

void policy_result_copy(PgwPolicyResult *dst, const PgwPolicyResult *src)
{
    *dst = *src;
    dst->sql = dup_or_null(src->sql);
    dst->message = dup_or_null(src->message);
    dst->hint = dup_or_null(src->hint);
    dst->reason = dup_or_null(src->reason);
    dst->relations = NULL;
    if (src->nrelations > 0) {
        dst->relations = pgw_malloc(src->nrelations * sizeof(char *));
        for (size_t i = 0; i < src->nrelations; i++)
            dst->relations[i] = pgw_strdup(src->relations[i]);
    }
}

static void cache_entry_free(CacheEntry *e)
{
    free(e->spans);
    policy_result_free(&e->result);
    free(e->key);
    free(e);
}

static void cache_unlink(CacheEntry *e)
{
    CacheEntry **pp = &cache.buckets[e->hash % CACHE_BUCKETS];
    while (*pp != NULL && *pp != e)
        pp = &(*pp)->next;
    if (*pp == e)
        *pp = e->next;
}

static char *cache_key(const PgwPolicyCtx *ctx, const char *sql, size_t *len)
{
    PgwBuf b;
    buf_init(&b);
    size_t tlen = strlen(ctx->tenant->name), slen = strlen(sql);
    buf_reserve(&b, 48 + 11 * ctx->nparam_types + tlen + slen);
    char num[PGW_UINT_DIGITS];
    buf_append(&b, num, pgw_format_uint(num, ctx->cfg->version));
    buf_append_byte(&b, '/');
    buf_append(&b, num, pgw_format_uint(num, schema_generation(ctx->schema)));
    buf_append_byte(&b, '/');
    buf_append_byte(&b, ctx->params_are_literals ? 'L' : 'P');
    buf_append(&b, num, pgw_format_uint(num, ctx->nparam_types));
    buf_append_byte(&b, ':');
    for (size_t i = 0; i < ctx->nparam_types && ctx->param_types != NULL; i++) {
        buf_append(&b, num, pgw_format_uint(num, ctx->param_types[i]));
        buf_append_byte(&b, ',');
    }
    buf_append_byte(&b, '/');
    buf_append(&b, ctx->tenant->name, strlen(ctx->tenant->name) + 1);
    buf_append_str(&b, sql);
    *len = b.len;
    return buf_steal_str(&b);
}

static size_t strsize(const char *s)
{
    return s != NULL ? strlen(s) + 1 : 0;
}

static size_t entry_bytes(size_t keylen, const PgwPolicyResult *r)
{
    size_t n = sizeof(CacheEntry) + keylen + 1 + strsize(r->sql) + strsize(r->message) +
               strsize(r->hint) + strsize(r->reason) + r->nrelations * sizeof(char *);
    for (size_t i = 0; i < r->nrelations; i++)
        n += strsize(r->relations[i]);
    return n;
}

/* Drop the oldest entries until bytes more fit under the bound. Called with
 * the lock held. */
static void cache_make_room(size_t bytes)
{
    while (cache.oldest != NULL && cache.bytes + bytes > cache.max_bytes) {
        CacheEntry *old = cache.oldest;
        cache.oldest = old->newer;
        if (cache.oldest == NULL)
            cache.newest = NULL;
        cache_unlink(old);
        cache.bytes -= old->bytes;
        cache.count--;
        cache_entry_free(old);
    }
}

static int param_spans(const char *sql, uint32_t **spans, size_t *nspans);

/* Hand the lookup's key to the caller that wants it (else free it). */
static void give_key(char *key, size_t keylen, char **key_out, size_t *keylen_out)
{
    if (key_out && key) {
        *key_out = key;
        *keylen_out = keylen;
    } else {
        free(key);
    }
}

/* spans (may be NULL): the entry's parameter spans are copied out (or
 * computed, once, when the entry is made); *spans stays NULL when they are
 * not known. */
static int rewrite_cached_spans(const PgwPolicyCtx *ctx, const char *sql, PgwPolicyResult *out,
                                uint32_t **spans, size_t *nspans, char **key_out,
                                size_t *keylen_out)
{
    if (key_out)
        *key_out = NULL;
    if (spans) {
        *spans = NULL;
        *nspans = 0;
    }
    if (ctx == NULL || ctx->cfg == NULL || ctx->tenant == NULL || sql == NULL) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    size_t max_bytes = ctx->cfg->rewrite_cache_size;
    /* A statement whose key alone exceeds an entry's share is never stored:
     * do not even build the key. */
    if (max_bytes == 0 || strlen(sql) > max_bytes / CACHE_ENTRY_SHARE) {
        pthread_mutex_lock(&cache.lock);
        cache.misses++;
        cache.max_bytes = max_bytes;
        cache_make_room(0);
        pthread_mutex_unlock(&cache.lock);
        return policy_rewrite_uncached(ctx, sql, out);
    }
    size_t keylen;
    char *key = cache_key(ctx, sql, &keylen);
    uint64_t h = fnv1a(key, keylen);

    pthread_mutex_lock(&cache.lock);
    for (CacheEntry *e = cache.buckets[h % CACHE_BUCKETS]; e != NULL; e = e->next) {
        if (e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0) {
            policy_result_copy(out, &e->result);
            if (spans && e->spans) {
                *spans = pgw_malloc((e->nspans * 3 + 1) * sizeof **spans);
                if (e->nspans > 0) /* no spans: e->spans may be NULL */
                    memcpy(*spans, e->spans, e->nspans * 3 * sizeof **spans);
                *nspans = e->nspans;
            }
            cache.hits++;
            pthread_mutex_unlock(&cache.lock);
            give_key(key, keylen, key_out, keylen_out);
            return 0;
        }
    }
    cache.misses++;
    pthread_mutex_unlock(&cache.lock);

    int rc = policy_rewrite_uncached(ctx, sql, out);
    size_t bytes = entry_bytes(keylen, out);
    if (rc < 0 || bytes > max_bytes / CACHE_ENTRY_SHARE) {
        give_key(rc < 0 ? NULL : key, keylen, key_out, keylen_out);
        if (rc < 0)
            free(key);
        return rc;
    }
    if (key_out) {
        *key_out = pgw_malloc(keylen + 1);
        memcpy(*key_out, key, keylen + 1);
        *keylen_out = keylen;
    }
    CacheEntry *e = pgw_calloc(1, sizeof(*e));
    e->hash = h;
    e->key = key;
    e->keylen = keylen;
    e->bytes = bytes;
    policy_result_copy(&e->result, out);
    if (spans && out->sql != NULL && param_spans(out->sql, &e->spans, &e->nspans) == 0) {
        *spans = pgw_malloc((e->nspans * 3 + 1) * sizeof **spans);
        if (e->nspans > 0) /* no spans: e->spans may be NULL */
            memcpy(*spans, e->spans, e->nspans * 3 * sizeof **spans);
        *nspans = e->nspans;
        bytes += e->nspans * 3 * sizeof *e->spans; /* charged like the rest */
        e->bytes = bytes;
    }

    pthread_mutex_lock(&cache.lock);
    /* Another thread may have stored the same statement meanwhile. */
    for (CacheEntry *d = cache.buckets[h % CACHE_BUCKETS]; d != NULL; d = d->next)
        if (d->hash == h && d->keylen == keylen && memcmp(d->key, key, keylen) == 0) {
            pthread_mutex_unlock(&cache.lock);
            cache_entry_free(e);
            return 0;
        }
    cache.max_bytes = max_bytes;
    cache_make_room(bytes);
    if (cache.newest != NULL)
        cache.newest->newer = e;
    else
        cache.oldest = e;
    cache.newest = e;
    cache.count++;
    cache.bytes += bytes;
    e->next = cache.buckets[h % CACHE_BUCKETS];
    cache.buckets[h % CACHE_BUCKETS] = e;
    pthread_mutex_unlock(&cache.lock);
    return 0;
}

static int rewrite_cached(const PgwPolicyCtx *ctx, const char *sql, PgwPolicyResult *out)
{
    return rewrite_cached_spans(ctx, sql, out, NULL, NULL, NULL, NULL);
}

static void shape_hits(unsigned long *hits, unsigned long *plain_hits);

void policy_cache_stats(PgwPolicyCacheStats *out)
{
    pthread_mutex_lock(&cache.lock);
    out->hits = cache.hits;
    out->misses = cache.misses;
    out->entries = cache.count;
    out->capacity = cache.max_bytes;
    out->bytes = cache.bytes;
    pthread_mutex_unlock(&cache.lock);
    shape_hits(&out->shape_hits, &out->plain_hits);
}

static void shapes_clear(void);

void policy_cache_clear(void)
{
    pthread_mutex_lock(&cache.lock);
    for (CacheEntry *e = cache.oldest, *next; e != NULL; e = next) {
        next = e->newer;
        cache_entry_free(e);
    }
    memset(cache.buckets, 0, sizeof(cache.buckets));
    cache.oldest = cache.newest = NULL;
    cache.count = cache.bytes = 0;
    cache.hits = cache.misses = 0;
    pthread_mutex_unlock(&cache.lock);
    shapes_clear();
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int policy_measure_us(const PgwPolicyCtx *ctx, const char *sql, int iterations, double *uncached_us,
                      double *cached_us)
{
    PgwPolicyResult r;
    if (iterations <= 0)
        return -1;
    double t0 = now_us();
    for (int i = 0; i < iterations; i++) {
        int rc = policy_rewrite_uncached(ctx, sql, &r);
        policy_result_free(&r);
        if (rc < 0)
            return -1;
    }
    double t1 = now_us();
    if (policy_rewrite(ctx, sql, &r) < 0)
        return -1;
    policy_result_free(&r);
    double t2 = now_us();
    for (int i = 0; i < iterations; i++) {
        if (policy_rewrite(ctx, sql, &r) < 0)
            return -1;
        policy_result_free(&r);
    }
    double t3 = now_us();
    *uncached_us = (t1 - t0) / iterations;
    *cached_us = (t3 - t2) / iterations;
    return 0;
}

/* ---- statement templates ----
 *
 * Applications and pgbench send the same query with different numbers
 * ("... WHERE aid = 4711"); each text would miss the cache and pay a full
 * rewrite. So numeric constants are lifted out by scanner token into
 * $1..$n, the template is rewritten (and cached), and the numbers are put
 * back by token into the rewritten text. This is used only when the
 * template is allowed as a row-returning query; everything else (and every
 * refusal) is decided on the original text, so a number the policy must see
 * (SET values, FETCH counts) is never hidden from it: those statements do
 * not even parse as templates. A statement that already has parameters is
 * left alone. One scan per statement: where the parameters sit in the
 * rewritten template is found by the scanner once, when its cache entry is
 * made, and kept beside it (param_spans), so a hit only splices. */

typedef struct Template {
    char *text;
    size_t n;
    char **literals;
    uint32_t *types; /* the literal's type, so the policy judges $k as it */
} Template;

static void template_free(Template *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->literals[i]);
    free(t->literals);
    free(t->types);
    free(t->text);
    memset(t, 0, sizeof *t);
}

/* The type PostgreSQL gives a numeric literal: int4, int8 when larger,
 * numeric beyond or with a fraction or exponent. */
static uint32_t literal_type(const char *s, size_t len, bool integer)
{
    if (!integer)
        return 1700;
    unsigned long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 1700; /* 0x1F, 1_000: leave them to numeric, the widest */
        if (v > (~0ull - 9) / 10)
            return 1700;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v <= 2147483647ull)
        return 23;
    return v <= 9223372036854775807ull ? 20 : 1700;
}

static PgQuery__ScanResult *scan(const char *sql)
{
    PgQueryScanResult r = pg_query_scan(sql);
    PgQuery__ScanResult *tokens = NULL;
    if (r.error == NULL)
        tokens = pg_query__scan_result__unpack(NULL, r.pbuf.len, (const uint8_t *)r.pbuf.data);
    pg_query_free_scan_result(r);
    return tokens;
}

/* ---- the shape memo: a template without a scan ----
 *
 * A scan (libpg_query's lexer, its protobuf packed and unpacked) was most
 * of what a repeated statement cost the policy. But a client repeating a
 * statement with other numbers repeats its shape: the same text between
 * the numbers. So a template whose numbers were all plain digit runs is
 * remembered as its segments (the text between them); a statement made of
 * exactly those segments with a run of digits between each two is that
 * template with those numbers, and needs no scan.
 *
 * Why that is sound, i.e. why scanning the new text would give the same
 * template. The scanner reads left to right with a state fixed by what it
 * has read; up to a number both texts are the same bytes, so it reaches
 * the number in the same state, and since the remembered text had a number
 * token there, that state is the initial one. Every scanner rule that can
 * start with a digit starts with {digit}+ or {digit}* (integer, decimal,
 * real, their "fail" and "junk" forms, and nothing else begins with a
 * digit), so which rule matches, and how far, depends on the digit run
 * only through its being non-empty, and otherwise on the bytes after it,
 * which are again the same; in the remembered text the match was exactly
 * the digit run, so here it is exactly the new digit run (matched greedily:
 * a segment never starts with a digit, or the scanner would have made that
 * digit part of the number). After the number the scanner is back in the
 * initial state, and the argument repeats up to the end. So the new text
 * has the same tokens, numbers at the same places, no parameter, and its
 * template is the remembered one. The one thing the digits do change is
 * how the scanner labels the number: one that does not fit int4 is an
 * FCONST (process_integer_literal), and literal_type is given the label the
 * scanner would have given. Numbers with a point or an exponent are not
 * remembered (their shapes are rarer, and the argument would need their
 * own grammar).
 *
 * The memo is a small direct-mapped table behind its own mutex, keyed by a
 * hash of the text with every digit run folded to one byte; a lookup only
 * believes an entry whose segments match byte for byte. It holds text only,
 * no decision: what the template means is still decided (and cached) by
 * rewrite_cached_spans under the config, schema and tenant of the moment. */

#define SHAPE_SLOTS 512
#define SHAPE_MAX_TEXT 4096 /* longer statements are scanned every time */

typedef struct Shape {
    uint64_t hash;
    char *text; /* the template, "$k" where each number was */
    size_t n; /* numbers */
    uint32_t *segs; /* n + 1 (start, end) pairs into text */
} Shape;

/* Texts that have no template (a parameter of their own, as every
 * untyped Parse of "... WHERE aid = $1" has, no number at all, or a text
 * the scanner refuses), byte for byte: whether a text has a template is a
 * function of its bytes alone (template_scan reads nothing else, and a
 * shape_match is only ever what a scan of the same text would give), so a
 * text seen to have none has none again and needs no scan to say so. Even
 * a wrong "none" would only cost speed: without a template the statement is
 * decided on its own text, which is what a template stands in for. */
#define PLAIN_SLOTS 256

typedef struct Plain {
    uint64_t hash;
    char *text;
    size_t len;
} Plain;

static struct {
    pthread_mutex_t lock;
    Shape slots[SHAPE_SLOTS];
    Plain plain[PLAIN_SLOTS];
    unsigned long hits, plain_hits;
} shapes = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static uint64_t shape_hash(const char *sql, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)sql[i];
        if (is_digit(sql[i])) {
            while (i + 1 < len && is_digit(sql[i + 1]))
                i++;
            c = 1; /* a digit run, however long */
        }
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

static void shape_clear(Shape *sh)
{
    free(sh->text);
    free(sh->segs);
    memset(sh, 0, sizeof *sh);
}

/* The label the scanner gives a run of digits: ICONST when it fits int4. */
static bool digits_fit_int4(const char *s, size_t len)
{
    unsigned long long v = 0;
    for (size_t i = 0; i < len; i++) {
        v = v * 10 + (unsigned)(s[i] - '0');
        if (v > 2147483647ull)
            return false;
    }
    return true;
}

/* The template of sql (whose shape_hash is h) from the memo: 0, with *t
 * made; 1 when sql is known to have no template; -1 when the memo does not
 * know. */
static int shape_match(const char *sql, size_t len, uint64_t h, Template *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_lock(&shapes.lock);
    Plain *pl = &shapes.plain[h % PLAIN_SLOTS];
    if (pl->text != NULL && pl->hash == h && pl->len == len && memcmp(pl->text, sql, len) == 0) {
        shapes.plain_hits++;
        pthread_mutex_unlock(&shapes.lock);
        return 1;
    }
    Shape *sh = &shapes.slots[h % SHAPE_SLOTS];
    if (sh->text == NULL || sh->hash != h) {
        pthread_mutex_unlock(&shapes.lock);
        return -1;
    }
    size_t pos = 0;
    size_t starts[64], ends[64]; /* where each number is in sql */
    bool ok = sh->n <= PGW_ARRAY_LEN(starts);
    for (size_t i = 0; ok && i <= sh->n; i++) {
        size_t a = sh->segs[2 * i], b = sh->segs[2 * i + 1];
        if (pos + (b - a) > len || memcmp(sql + pos, sh->text + a, b - a) != 0) {
            ok = false;
            break;
        }
        pos += b - a;
        if (i == sh->n)
            break;
        starts[i] = pos;
        while (pos < len && is_digit(sql[pos]))
            pos++;
        ends[i] = pos;
        ok = ends[i] > starts[i];
    }
    ok = ok && pos == len;
    if (!ok) {
        pthread_mutex_unlock(&shapes.lock);
        return -1;
    }
    t->text = pgw_strdup(sh->text);
    t->n = sh->n;
    shapes.hits++;
    pthread_mutex_unlock(&shapes.lock);
    t->literals = pgw_malloc(t->n * sizeof *t->literals);
    t->types = pgw_malloc(t->n * sizeof *t->types);
    for (size_t i = 0; i < t->n; i++) {
        size_t n = ends[i] - starts[i];
        t->types[i] = literal_type(sql + starts[i], n, digits_fit_int4(sql + starts[i], n));
        t->literals[i] = pgw_strndup(sql + starts[i], n);
    }
    return 0;
}

/* Remember that sql (shape_hash h) has no template. */
static void plain_remember(const char *sql, size_t len, uint64_t h)
{
    char *text = pgw_malloc(len + 1);
    memcpy(text, sql, len + 1);
    pthread_mutex_lock(&shapes.lock);
    Plain *pl = &shapes.plain[h % PLAIN_SLOTS];
    char *old = pl->text;
    pl->hash = h;
    pl->text = text;
    pl->len = len;
    pthread_mutex_unlock(&shapes.lock);
    free(old);
}

/* Remember the template t the scanner made of sql (shape_hash h), when
 * every number in it is a plain run of digits (see above). */
static void shape_remember(const char *sql, size_t len, uint64_t h, const Template *t)
{
    if (len > SHAPE_MAX_TEXT || t->n == 0 || t->n > 64)
        return;
    for (size_t i = 0; i < t->n; i++)
        for (const char *d = t->literals[i]; *d; d++)
            if (!is_digit(*d))
                return;
    /* The segments are the template's text between its "$k"s, which
     * template_of wrote in order for k = 1..n. */
    uint32_t *segs = pgw_malloc((t->n + 1) * 2 * sizeof *segs);
    size_t pos = 0, tlen = strlen(t->text);
    for (size_t k = 1; k <= t->n; k++) {
        char mark[24];
        int m = snprintf(mark, sizeof mark, "$%zu", k);
        const char *at = strstr(t->text + pos, mark);
        /* the first "$k" after pos is the one written: the segment before
         * it is the client's text, which had no parameter (template_of
         * refuses one), and a '$' in a string or identifier is followed by
         * the same digits only where the client wrote "$k" — then this
         * shape is not remembered */
        if (at == NULL || memchr(t->text + pos, '$', (size_t)(at - (t->text + pos))) != NULL) {
            free(segs);
            return;
        }
        if (at > t->text + pos && is_digit(at[-1])) { /* cannot be: be sure */
            free(segs);
            return;
        }
        segs[2 * (k - 1)] = (uint32_t)pos;
        segs[2 * (k - 1) + 1] = (uint32_t)(at - t->text);
        pos = (size_t)(at - t->text) + (size_t)m;
        if (pos < tlen && is_digit(t->text[pos])) {
            free(segs);
            return;
        }
    }
    if (memchr(t->text + pos, '$', tlen - pos) != NULL) {
        free(segs);
        return;
    }
    segs[2 * t->n] = (uint32_t)pos;
    segs[2 * t->n + 1] = (uint32_t)tlen;
    pthread_mutex_lock(&shapes.lock);
    Shape *sh = &shapes.slots[h % SHAPE_SLOTS];
    shape_clear(sh);
    sh->hash = h;
    sh->text = pgw_strdup(t->text);
    sh->n = t->n;
    sh->segs = segs;
    pthread_mutex_unlock(&shapes.lock);
}

static void shapes_clear(void)
{
    pthread_mutex_lock(&shapes.lock);
    for (size_t i = 0; i < SHAPE_SLOTS; i++)
        shape_clear(&shapes.slots[i]);
    for (size_t i = 0; i < PLAIN_SLOTS; i++) {
        free(shapes.plain[i].text);
        memset(&shapes.plain[i], 0, sizeof shapes.plain[i]);
    }
    shapes.hits = shapes.plain_hits = 0;
    pthread_mutex_unlock(&shapes.lock);
}

static void shape_hits(unsigned long *hits, unsigned long *plain_hits)
{
    pthread_mutex_lock(&shapes.lock);
    *hits = shapes.hits;
    *plain_hits = shapes.plain_hits;
    pthread_mutex_unlock(&shapes.lock);
}

static int template_scan(const char *sql, Template *t);

static int template_of(const char *sql, Template *t)
{
    size_t len = strlen(sql);
    if (len > SHAPE_MAX_TEXT)
        return template_scan(sql, t);
    uint64_t h = shape_hash(sql, len);
    int m = shape_match(sql, len, h, t);
    if (m >= 0)
        return m == 0 ? 0 : -1;
    if (template_scan(sql, t) != 0) {
        plain_remember(sql, len, h);
        return -1;
    }
    shape_remember(sql, len, h, t);
    return 0;
}

/* The template of sql by the scanner's tokens. */
static int template_scan(const char *sql, Template *t)
{
    memset(t, 0, sizeof *t);
    PgQuery__ScanResult *tokens = scan(sql);
    if (tokens == NULL)
        return -1;
    PgwBuf b;
    buf_init(&b);
    size_t pos = 0, len = strlen(sql);
    int rc = 0;
    for (size_t i = 0; i < tokens->n_tokens && rc == 0; i++) {
        PgQuery__ScanToken *tok = tokens->tokens[i];
        if (tok->token == PG_QUERY__TOKEN__PARAM) {
            rc = -1;
        } else if (tok->token == PG_QUERY__TOKEN__ICONST || tok->token == PG_QUERY__TOKEN__FCONST) {
            size_t start = (size_t)tok->start, end = (size_t)tok->end;
            if (start < pos || end > len || end <= start) {
                rc = -1;
                break;
            }
            buf_append(&b, sql + pos, start - pos);
            if ((t->n & (t->n - 1)) == 0) { /* grow at powers of two */
                size_t cap = t->n > 0 ? t->n * 2 : 1;
                t->literals = pgw_realloc(t->literals, cap * sizeof *t->literals);
                t->types = pgw_realloc(t->types, cap * sizeof *t->types);
            }
            t->types[t->n] =
                literal_type(sql + start, end - start, tok->token == PG_QUERY__TOKEN__ICONST);
            t->literals[t->n++] = pgw_strndup(sql + start, end - start);
            buf_printf(&b, "$%zu", t->n);
            pos = end;
        }
    }
    pg_query__scan_result__free_unpacked(tokens, NULL);
    buf_append(&b, sql + pos, len - pos);
    t->text = buf_steal_str(&b);
    if (rc != 0 || t->n == 0) {
        template_free(t);
        return -1;
    }
    return 0;
}

/* Where each parameter ($k) sits in a rewritten template, by scanner
 * token: (start, end, k) triples. -1 when one is malformed or out of the
 * 32-bit range (the template is then not used). */
static int param_spans(const char *sql, uint32_t **spans, size_t *nspans)
{
    *spans = NULL;
    *nspans = 0;
    PgQuery__ScanResult *tokens = scan(sql);
    if (tokens == NULL)
        return -1;
    size_t len = strlen(sql), n = 0, pos = 0;
    uint32_t *sp = NULL;
    int rc = 0;
    for (size_t i = 0; i < tokens->n_tokens && rc == 0; i++) {
        PgQuery__ScanToken *tok = tokens->tokens[i];
        if (tok->token != PG_QUERY__TOKEN__PARAM)
            continue;
        size_t start = (size_t)tok->start, end = (size_t)tok->end;
        char *endp;
        unsigned long k = strtoul(sql + start + 1, &endp, 10);
        if (start < pos || end > len || (size_t)(endp - sql) != end || k == 0 || k > UINT32_MAX ||
            end > UINT32_MAX) {
            rc = -1;
            break;
        }
        sp = pgw_realloc(sp, (n + 1) * 3 * sizeof *sp);
        sp[3 * n] = (uint32_t)start;
        sp[3 * n + 1] = (uint32_t)end;
        sp[3 * n + 2] = (uint32_t)k;
        n++;
        pos = end;
    }
    pg_query__scan_result__free_unpacked(tokens, NULL);
    if (rc != 0) {
        free(sp);
        return -1;
    }
    *spans = sp;
    *nspans = n;
    return 0;
}

/* The rewritten template with each $k replaced by literal k, at the spans
 * the scanner found in exactly this text (param_spans); NULL when a
 * parameter is out of range (the template was not ours after all). */
static char *template_fill(const char *rewritten, const uint32_t *spans, size_t nspans,
                           const Template *t)
{
    PgwBuf b;
    buf_init(&b);
    size_t pos = 0, len = strlen(rewritten);
    for (size_t i = 0; i < nspans; i++) {
        size_t start = spans[3 * i], end = spans[3 * i + 1], k = spans[3 * i + 2];
        if (start < pos || end > len || k == 0 || k > t->n) {
            buf_free(&b);
            return NULL;
        }
        buf_append(&b, rewritten + pos, start - pos);
        buf_append_str(&b, t->literals[k - 1]);
        pos = end;
    }
    buf_append(&b, rewritten + pos, len - pos);
    return buf_steal_str(&b);
}

void policy_shape_free(PgwPolicyShape *shape)
{
    free(shape->key);
    free(shape->sql);
    memset(shape, 0, sizeof *shape);
}

int policy_rewrite(const PgwPolicyCtx *ctx, const char *sql, PgwPolicyResult *out)
{
    return policy_rewrite_shaped(ctx, sql, out, NULL);
}

int policy_rewrite_shaped(const PgwPolicyCtx *ctx, const char *sql, PgwPolicyResult *out,
                          PgwPolicyShape *shape)
{
    Template t;
    if (shape)
        memset(shape, 0, sizeof *shape);
    /* Templates only for statements without parameters of their own, and
     * small enough to be cached at all. */
    if (sql != NULL && ctx != NULL && ctx->nparam_types == 0 && ctx->cfg != NULL &&
        strlen(sql) <= ctx->cfg->rewrite_cache_size / CACHE_ENTRY_SHARE &&
        template_of(sql, &t) == 0) {
        PgwPolicyResult tr;
        memset(&tr, 0, sizeof tr);
        PgwPolicyCtx tctx = *ctx;
        tctx.nparam_types = t.n;
        tctx.param_types = t.types;
        tctx.params_are_literals = true;
        uint32_t *spans = NULL;
        size_t nspans = 0;
        char *key = NULL;
        size_t keylen = 0;
        if (rewrite_cached_spans(&tctx, t.text, &tr, &spans, &nspans, shape ? &key : NULL,
                                 &keylen) == 0 &&
            tr.decision == PGW_POLICY_ALLOW && tr.read_only_query && tr.sql != NULL &&
            (spans != NULL || param_spans(tr.sql, &spans, &nspans) == 0)) {
            char *filled = template_fill(tr.sql, spans, nspans, &t);
            free(spans);
            spans = NULL;
            if (filled != NULL) {
                if (shape && key) {
                    /* What the decision was made on: the template's key
                     * (version, schema, tenant, literal types, text) and
                     * its rewrite, before the numbers went back in. */
                    shape->key = key;
                    shape->keylen = keylen;
                    key = NULL;
                    shape->sql = tr.sql;
                } else {
                    free(tr.sql);
                }
                tr.sql = filled;
                *out = tr;
                template_free(&t);
                return 0;
            }
        }
        free(key);
        free(spans);
        policy_result_free(&tr);
        template_free(&t);
    }
    if (!shape)
        return rewrite_cached(ctx, sql, out);
    /* Decided on its own text: the shape is that text's key, no template. */
    return rewrite_cached_spans(ctx, sql, out, NULL, NULL, &shape->key, &shape->keylen);
}
