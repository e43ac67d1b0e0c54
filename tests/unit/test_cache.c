/*
 * test_cache.c — the in-process result store (src/cache.h): capture of an
 * answer (table-driven: backend messages in, stored bytes or "not stored,
 * because ..." out), LRU within max_memory, max_entry, ttl on a test clock,
 * aliases, invalidation by table and clearing by tenant (running flights
 * included), per-tenant accounting, and single flight across threads with
 * each waiter woken on its own thread.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cache.h"

static int64_t clock_ms;
static int64_t test_clock(void)
{
    return __atomic_load_n(&clock_ms, __ATOMIC_SEQ_CST);
}

static PgwCacheKey key_n(int n)
{
    PgwCacheKey k;
    memset(&k, 0, sizeof k);
    /* spread over buckets like a digest would */
    for (size_t i = 0; i < sizeof k.digest; i++)
        k.digest[i] = (uint8_t)((n * 131 + (int)i * 7) ^ (n >> 8));
    k.digest[0] = (uint8_t)n;
    k.digest[1] = (uint8_t)(n >> 8);
    return k;
}

/* One protocol message: type, length, body. */
static void msg(PgwBuf *b, char type, const char *body)
{
    buf_append_byte(b, (uint8_t)type);
    buf_append_u32(b, (uint32_t)(4 + strlen(body)));
    buf_append_str(b, body);
}

static PgwCacheEntry *answer(size_t body_bytes)
{
    PgwBuf b;
    buf_init(&b);
    char *row = malloc(body_bytes + 1);
    memset(row, 'x', body_bytes);
    row[body_bytes] = '\0';
    msg(&b, 'D', row);
    msg(&b, 'C', "SELECT 1");
    PgwCacheEntry *e = cache_entry_new(PGW_CACHE_SIMPLE, b.data, b.len, 0, false, 1);
    buf_free(&b);
    free(row);
    return e;
}

static PgwCache *store(size_t max_memory)
{
    PgwCacheOptions o = {.max_memory = max_memory, .max_entry = 1 << 20, .now_ms = test_clock};
    clock_ms = 1000;
    return cache_new(&o);
}

/* Lead and finish one flight for key: the usual way an entry gets in. */
static void fill(PgwCache *c, const char *tenant, int n, size_t bytes, int ttl_ms,
                 char *const *rels, size_t nrels)
{
    PgwCacheRequest rq = {.key = key_n(n),
                          .tenant = tenant,
                          .single_flight = true,
                          .relations = rels,
                          .nrelations = nrels};
    PgwCacheEntry *hit;
    PgwCacheFlight *lead;
    PgwCacheWaiter *wait;
    ck_assert_int_eq(cache_lookup(c, &rq, &hit, &lead, &wait), PGW_CACHE_LEAD);
    cache_flight_finish(lead, answer(bytes), ttl_ms, NULL);
}

static PgwCacheOutcome probe(PgwCache *c, const char *tenant, int n)
{
    PgwCacheRequest rq = {.key = key_n(n), .tenant = tenant};
    PgwCacheEntry *hit;
    PgwCacheFlight *lead;
    PgwCacheWaiter *wait;
    PgwCacheOutcome o = cache_lookup(c, &rq, &hit, &lead, &wait);
    cache_entry_release(hit);
    return o;
}

/* ---- capture, table-driven ---- */

typedef struct CaptureCase {
    const char *name;
    PgwCacheShape shape;
    const char *types; /* one message per character */
    size_t max_entry;
    bool stored;
    const char *why; /* substring when not stored */
    const char *stored_types; /* what the entry holds, in order */
    size_t head_messages; /* EXTENDED: messages in the head */
} CaptureCase;

static const CaptureCase capture_cases[] = {
    {"simple query", PGW_CACHE_SIMPLE, "TDDC", 1 << 20, true, NULL, "TDDC", 0},
    {"two statements", PGW_CACHE_SIMPLE, "TDCTDC", 1 << 20, true, NULL, "TDCTDC", 0},
    {"empty query", PGW_CACHE_SIMPLE, "I", 1 << 20, true, NULL, "I", 0},
    {"extended with Describe", PGW_CACHE_EXTENDED, "12TDDC", 1 << 20, true, NULL, "TDDC", 1},
    {"extended without Describe", PGW_CACHE_EXTENDED, "2DC", 1 << 20, true, NULL, "DC", 0},
    {"extended, no rows", PGW_CACHE_EXTENDED, "2nC", 1 << 20, true, NULL, "nC", 1},
    {"a notification is not part of it", PGW_CACHE_SIMPLE, "TDADC", 1 << 20, true, NULL, "TDDC", 0},
    {"an error", PGW_CACHE_SIMPLE, "TDE", 1 << 20, false, "failed", NULL, 0},
    {"a notice", PGW_CACHE_SIMPLE, "NTDC", 1 << 20, false, "notice", NULL, 0},
    {"a setting changed", PGW_CACHE_SIMPLE, "TDSC", 1 << 20, false, "setting", NULL, 0},
    {"a suspended portal", PGW_CACHE_EXTENDED, "2TDs", 1 << 20, false, "suspended", NULL, 0},
    {"COPY", PGW_CACHE_SIMPLE, "Hdc", 1 << 20, false, "COPY", NULL, 0},
    {"incomplete", PGW_CACHE_SIMPLE, "TDD", 1 << 20, false, "incomplete", NULL, 0},
    {"larger than max_entry", PGW_CACHE_SIMPLE, "TDDDDDDC", 40, false, "max_entry", NULL, 0},
    {"a second row description", PGW_CACHE_EXTENDED, "TDTC", 1 << 20, false, "second", NULL, 0},
};

START_TEST(capture)
{
    const CaptureCase *tc = &capture_cases[_i];
    PgwCacheCapture cap;
    cache_capture_init(&cap, tc->shape, tc->max_entry);
    for (const char *t = tc->types; *t; t++) {
        PgwBuf m;
        buf_init(&m);
        msg(&m, *t, "abc");
        cache_capture_message(&cap, m.data, m.len);
        buf_free(&m);
    }
    bool too_big = cap.too_big;
    PgwCacheEntry *e = cache_capture_finish(&cap);
    if (!tc->stored) {
        ck_assert_msg(e == NULL, "%s: stored", tc->name);
        ck_assert_msg(strstr(cap.why, tc->why) != NULL, "%s: why '%s'", tc->name, cap.why);
        ck_assert_int_eq(too_big, strcmp(tc->why, "max_entry") == 0);
        return;
    }
    ck_assert_msg(e != NULL, "%s: not stored: %s", tc->name, cap.why);
    const PgwCacheAnswer *a = cache_entry_answer(e);
    size_t n = strlen(tc->stored_types);
    ck_assert_int_eq(a->len, n * 8);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(a->data[i * 8], tc->stored_types[i]);
    ck_assert_int_eq(a->head_len, tc->head_messages * 8);
    ck_assert_int_eq(a->has_head, tc->head_messages > 0);
    size_t rows = 0;
    for (const char *t = tc->stored_types; *t; t++)
        rows += *t == 'D';
    ck_assert_int_eq(a->rows, rows);
    cache_entry_release(e);
}
END_TEST

/* The same answers fed as a relay passes them: any chunking gives the same
 * entry as whole messages, and the ReadyForQuery ends it. */
START_TEST(capture_bytes_in_any_pieces)
{
    const CaptureCase *tc = &capture_cases[_i];
    PgwBuf stream;
    buf_init(&stream);
    for (const char *t = tc->types; *t; t++)
        msg(&stream, *t, "abc");
    msg(&stream, 'Z', "I");
    msg(&stream, 'D', "after the end");
    PgwCacheCapture whole;
    cache_capture_init(&whole, tc->shape, tc->max_entry);
    for (const char *t = tc->types; *t; t++) {
        PgwBuf m;
        buf_init(&m);
        msg(&m, *t, "abc");
        cache_capture_message(&whole, m.data, m.len);
        buf_free(&m);
    }
    PgwCacheEntry *want = cache_capture_finish(&whole);
    for (size_t piece = 1; piece <= 9; piece++) {
        PgwCacheCapture cap;
        cache_capture_init(&cap, tc->shape, tc->max_entry);
        for (size_t off = 0; off < stream.len; off += piece)
            cache_capture_bytes(&cap, stream.data + off,
                                off + piece <= stream.len ? piece : stream.len - off);
        ck_assert(cap.ready);
        bool too_big = cap.too_big;
        PgwCacheEntry *got = cache_capture_finish(&cap);
        ck_assert_msg((got == NULL) == (want == NULL), "%s in pieces of %zu", tc->name, piece);
        ck_assert_int_eq(too_big, whole.too_big);
        if (got != NULL) {
            const PgwCacheAnswer *a = cache_entry_answer(got), *b = cache_entry_answer(want);
            ck_assert_int_eq(a->len, b->len);
            ck_assert_mem_eq(a->data, b->data, a->len);
            ck_assert_int_eq(a->head_len, b->head_len);
            ck_assert_int_eq(a->rows, b->rows);
        } else {
            ck_assert_str_eq(cap.why, whole.why);
        }
        cache_entry_release(got);
    }
    cache_entry_release(want);
    buf_free(&stream);
}
END_TEST

/* Extended protocol: one portal's answer ends with its CommandComplete;
 * what follows in the same stream (the next portal's, a CloseComplete, the
 * Sync's ReadyForQuery) is not part of it. */
START_TEST(capture_extended_ends_with_its_portal)
{
    static const struct {
        const char *stream;
        const char *stored; /* NULL: not stored */
    } cases[] = {
        {"12TDC2TDDC3Z", "TDC"}, {"2DCZ", "DC"},  {"12nCZ", "nC"},
        {"12IZ", "I"},           {"2TDsZ", NULL}, {"12TDE2TDCZ", NULL},
    };
    for (size_t c = 0; c < PGW_ARRAY_LEN(cases); c++) {
        PgwBuf stream;
        buf_init(&stream);
        for (const char *t = cases[c].stream; *t; t++)
            msg(&stream, *t, "abc");
        for (size_t piece = 1; piece <= 7; piece += 3) {
            PgwCacheCapture cap;
            cache_capture_init(&cap, PGW_CACHE_EXTENDED, 1 << 20);
            for (size_t off = 0; off < stream.len; off += piece)
                cache_capture_bytes(&cap, stream.data + off,
                                    off + piece <= stream.len ? piece : stream.len - off);
            ck_assert(cap.ready);
            PgwCacheEntry *e = cache_capture_finish(&cap);
            if (cases[c].stored == NULL) {
                ck_assert_msg(e == NULL, "%s: stored", cases[c].stream);
                continue;
            }
            ck_assert_msg(e != NULL, "%s: not stored: %s", cases[c].stream, cap.why);
            const PgwCacheAnswer *a = cache_entry_answer(e);
            size_t n = strlen(cases[c].stored);
            ck_assert_int_eq(a->len, n * 8);
            for (size_t i = 0; i < n; i++)
                ck_assert_int_eq(a->data[i * 8], cases[c].stored[i]);
            cache_entry_release(e);
        }
        buf_free(&stream);
    }
}
END_TEST

START_TEST(capture_bytes_never_buffers_what_cannot_fit)
{
    /* a 1 MB DataRow against max_entry 1000: refused at its header */
    PgwCacheCapture cap;
    cache_capture_init(&cap, PGW_CACHE_SIMPLE, 1000);
    PgwBuf m;
    buf_init(&m);
    msg(&m, 'T', "cols");
    cache_capture_bytes(&cap, m.data, m.len);
    uint8_t hdr[5] = {'D', 0, 0x10, 0, 4};
    cache_capture_bytes(&cap, hdr, 5);
    ck_assert(cap.failed && cap.too_big);
    ck_assert_int_lt(cap.msg.len, 16);
    uint8_t *chunk = calloc(1, 0x100000);
    cache_capture_bytes(&cap, chunk, 0x100000);
    ck_assert_int_lt(cap.msg.len + cap.body.len + cap.head.len, 16);
    ck_assert(!cap.ready);
    buf_reset(&m);
    msg(&m, 'C', "SELECT 1");
    msg(&m, 'Z', "I");
    cache_capture_bytes(&cap, m.data, m.len);
    ck_assert(cap.ready);
    ck_assert_ptr_null(cache_capture_finish(&cap));
    ck_assert(strstr(cap.why, "max_entry") != NULL);
    free(chunk);
    buf_free(&m);
}
END_TEST

/* Random bytes, in random pieces: the capture never crashes, never holds
 * more than max_entry, and stores only what it framed. */
START_TEST(capture_bytes_fuzz)
{
    unsigned seed = 777;
    for (int round = 0; round < 3000; round++) {
        size_t len = (size_t)(rand_r(&seed) % 600);
        uint8_t *data = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++)
            data[i] = (uint8_t)rand_r(&seed);
        /* sometimes plausible: small lengths, answer types */
        for (size_t i = 0; round % 2 && i + 5 <= len; i += 5 + data[i + 4] % 8) {
            data[i] = (uint8_t) "TDCZNE12"[data[i] % 8];
            data[i + 1] = data[i + 2] = data[i + 3] = 0;
            data[i + 4] = (uint8_t)(4 + data[i + 4] % 8);
        }
        PgwCacheCapture cap;
        cache_capture_init(&cap, round % 3 ? PGW_CACHE_SIMPLE : PGW_CACHE_EXTENDED, 200);
        for (size_t off = 0; off < len;) {
            size_t n = 1 + (size_t)(rand_r(&seed) % 40);
            if (n > len - off)
                n = len - off;
            cache_capture_bytes(&cap, data + off, n);
            ck_assert_int_le(cap.head.len + cap.body.len, 200);
            off += n;
        }
        PgwCacheEntry *e = cache_capture_finish(&cap);
        if (e)
            ck_assert_int_le(cache_entry_answer(e)->len, 200);
        cache_entry_release(e);
        free(data);
    }
}
END_TEST

/* ---- the store ---- */

START_TEST(hit_after_fill_and_tenants_apart)
{
    PgwCache *c = store(1 << 20);
    fill(c, "acme", 1, 100, 60000, NULL, 0);
    ck_assert_int_eq(probe(c, "acme", 1), PGW_CACHE_HIT);
    ck_assert_int_eq(probe(c, "acme", 2), PGW_CACHE_MISS);
    PgwCacheCounters t;
    cache_totals(c, &t, NULL);
    ck_assert_int_eq(t.entries, 1);
    ck_assert_int_eq(t.hits, 1);
    ck_assert_int_eq(t.misses, 1);
    cache_free(c);
}
END_TEST

START_TEST(lru_within_max_memory)
{
    /* Room for about ten 1000-byte answers, everything counted. */
    PgwCache *c = store(10 * 1300);
    for (int i = 0; i < 10; i++) {
        fill(c, "acme", i, 1000, 60000, NULL, 0);
        if (i == 0)
            continue;
        ck_assert_int_eq(probe(c, "acme", 0), PGW_CACHE_HIT); /* 0 stays the most recent */
    }
    for (int i = 10; i < 40; i++) {
        fill(c, "acme", i, 1000, 60000, NULL, 0);
        ck_assert_int_eq(probe(c, "acme", 0), PGW_CACHE_HIT);
        PgwCacheCounters t;
        size_t max;
        cache_totals(c, &t, &max);
        ck_assert_msg(t.bytes <= max, "%zu bytes over %zu", t.bytes, max);
    }
    ck_assert_int_eq(probe(c, "acme", 1), PGW_CACHE_MISS); /* the least recent went first */
    ck_assert_int_eq(probe(c, "acme", 39), PGW_CACHE_HIT);
    PgwCacheCounters t;
    cache_totals(c, &t, NULL);
    ck_assert_int_gt(t.evictions, 20);
    ck_assert_int_ge(t.entries, 5);
    /* a reload that shrinks the store shrinks it at once */
    cache_configure(c, 3000, 1 << 20);
    cache_totals(c, &t, NULL);
    ck_assert_int_le(t.bytes, 3000);
    cache_free(c);
}
END_TEST

/* The red team's prime-and-probe: with one LRU for all, B's queries evicted
 * A's entries and A read B's activity from its own hits. With shares,
 * nothing B stores changes what stays cached for A. */
START_TEST(one_tenant_never_evicts_another)
{
    PgwCache *c = store(40000);
    cache_partition(c, 2);
    for (int i = 0; i < 10; i++)
        fill(c, "acme", i, 1000, 60000, NULL, 0);
    for (int i = 100; i < 200; i++) /* far more than globex's share */
        fill(c, "globex", i, 1000, 60000, NULL, 0);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(probe(c, "acme", i), PGW_CACHE_HIT);
    ck_assert_int_eq(probe(c, "globex", 199), PGW_CACHE_HIT);
    ck_assert_int_eq(probe(c, "globex", 100), PGW_CACHE_MISS); /* its own went */
    PgwCacheCounters t;
    size_t max;
    cache_totals(c, &t, &max);
    ck_assert_int_le(t.bytes, 40000);
    /* acme past its own share evicts its own least recent */
    for (int i = 10; i < 60; i++)
        fill(c, "acme", i, 1000, 60000, NULL, 0);
    ck_assert_int_eq(probe(c, "acme", 0), PGW_CACHE_MISS);
    ck_assert_int_eq(probe(c, "acme", 59), PGW_CACHE_HIT);
    ck_assert_int_eq(probe(c, "globex", 199), PGW_CACHE_HIT);
    /* an answer bigger than a share is not kept */
    fill(c, "globex", 300, 25000, 60000, NULL, 0);
    ck_assert_int_eq(probe(c, "globex", 300), PGW_CACHE_MISS);
    cache_free(c);
}
END_TEST

START_TEST(an_answer_bigger_than_the_store_is_not_kept)
{
    PgwCache *c = store(2000);
    fill(c, "acme", 1, 100, 60000, NULL, 0);
    fill(c, "acme", 2, 5000, 60000, NULL, 0);
    ck_assert_int_eq(probe(c, "acme", 2), PGW_CACHE_MISS);
    ck_assert_int_eq(probe(c, "acme", 1), PGW_CACHE_HIT); /* and did not push others out */
    cache_free(c);
}
END_TEST

START_TEST(max_entry_and_remembered_misses)
{
    PgwCache *c = store(1 << 20);
    cache_configure(c, 1 << 20, 500);
    fill(c, "acme", 1, 1000, 60000, NULL, 0);
    ck_assert_int_eq(probe(c, "acme", 1), PGW_CACHE_MISS);
    /* the leader found its answer too big: later misses run at once */
    PgwCacheRequest rq = {.key = key_n(2), .tenant = "acme", .single_flight = true};
    PgwCacheEntry *hit;
    PgwCacheFlight *lead;
    PgwCacheWaiter *wait;
    ck_assert_int_eq(cache_lookup(c, &rq, &hit, &lead, &wait), PGW_CACHE_LEAD);
    cache_flight_fail(lead, true, 5000);
    ck_assert_int_eq(cache_lookup(c, &rq, &hit, &lead, &wait), PGW_CACHE_BYPASS);
    clock_ms += 5001;
    ck_assert_int_eq(cache_lookup(c, &rq, &hit, &lead, &wait), PGW_CACHE_LEAD);
    cache_flight_fail(lead, false, 0);
    ck_assert_int_eq(cache_lookup(c, &rq, &hit, &lead, &wait), PGW_CACHE_LEAD);
    cache_flight_abandon(lead);
    cache_free(c);
}
END_TEST

START_TEST(ttl_expires_on_time)
{
    PgwCache *c = store(1 << 20);
    fill(c, "acme", 1, 10, 1500, NULL, 0);
    clock_ms += 1499;
    ck_assert_int_eq(probe(c, "acme", 1), PGW_CACHE_HIT);
    clock_ms += 1;
    ck_assert_int_eq(probe(c, "acme", 1), PGW_CACHE_MISS);
    fill(c, "acme", 2, 10, 100, NULL, 0);
    fill(c, "acme", 3, 10, 10000, NULL, 0);
    clock_ms += 200;
    ck_assert_int_eq(cache_expire(c, 100), 1); /* the periodic sweep frees it unasked */
    PgwCacheCounters t;
    cache_totals(c, &t, NULL);
    ck_assert_int_eq(t.entries, 1);
    cache_free(c);
}
END_TEST

START_TEST(alias_skips_to_the_entry_and_dies_with_it)
{
    PgwCache *c = store(1 << 20);
    char *rels[] = {"public.orders"};
    PgwCacheRequest rq = {.key = key_n(1),
                          .tenant = "acme",
                          .single_flight = true,
                          .relations = rels,
                          .nrelations = 1};
    PgwCacheEntry *hit;
    PgwCacheFlight *lead;
    PgwCacheWaiter *wait;
    ck_assert_int_eq(cache_lookup(c, &rq, &hit, &lead, &wait), PGW_CACHE_LEAD);
    PgwCacheKey raw = key_n(100);
    cache_flight_finish(lead, answer(10), 60000, &raw);
    ck_assert_int_eq(probe(c, "acme", 100), PGW_CACHE_HIT);
    /* another raw text that rewrites to the same statement */
    PgwCacheKey raw2 = key_n(101), primary = key_n(1);
    cache_alias(c, "acme", &raw2, &primary, 60000);
    ck_assert_int_eq(probe(c, "acme", 101), PGW_CACHE_HIT);
    cache_invalidate(c, "acme", "public.orders");
    ck_assert_int_eq(probe(c, "acme", 100), PGW_CACHE_MISS);
    ck_assert_int_eq(probe(c, "acme", 101), PGW_CACHE_MISS);
    cache_free(c);
}
END_TEST

START_TEST(invalidation_drops_exactly_the_readers)
{
    PgwCache *c = store(1 << 20);
    char *orders[] = {"public.orders"};
    char *both[] = {"public.orders", "public.customers"};
    char *customers[] = {"public.customers"};
    fill(c, "acme", 1, 10, 60000, orders, 1);
    fill(c, "acme", 2, 10, 60000, both, 2);
    fill(c, "acme", 3, 10, 60000, customers, 1);
    fill(c, "globex", 4, 10, 60000, orders, 1); /* another database's orders */
    cache_invalidate(c, "acme", "public.orders");
    ck_assert_int_eq(probe(c, "acme", 1), PGW_CACHE_MISS);
    ck_assert_int_eq(probe(c, "acme", 2), PGW_CACHE_MISS);
    ck_assert_int_eq(probe(c, "acme", 3), PGW_CACHE_HIT);
    ck_assert_int_eq(probe(c, "globex", 4), PGW_CACHE_HIT);
    cache_invalidate(c, "acme", "public.nothing_cached"); /* harmless */
    cache_free(c);
}
END_TEST

START_TEST(a_write_during_the_flight_keeps_its_answer_out)
{
    PgwCache *c = store(1 << 20);
    char *orders[] = {"public.orders"};
    PgwCacheRequest rq = {.key = key_n(1),
                          .tenant = "acme",
                          .single_flight = true,
                          .relations = orders,
                          .nrelations = 1};
    PgwCacheEntry *hit;
    PgwCacheFlight *lead, *lead2;
    PgwCacheWaiter *wait;
    ck_assert_int_eq(cache_lookup(c, &rq, &hit, &lead, &wait), PGW_CACHE_LEAD);
    cache_invalidate(c, "acme", "public.orders");
    /* a statement starting after the write does not join the stale flight */
    ck_assert_int_eq(cache_lookup(c, &rq, &hit, &lead2, &wait), PGW_CACHE_LEAD);
    cache_flight_finish(lead, answer(10), 60000, NULL); /* older than the write */
    ck_assert_int_eq(probe(c, "acme", 1), PGW_CACHE_MISS);
    cache_flight_finish(lead2, answer(10), 60000, NULL);
    ck_assert_int_eq(probe(c, "acme", 1), PGW_CACHE_HIT);
    cache_free(c);
}
END_TEST

START_TEST(clear_by_tenant)
{
    PgwCache *c = store(1 << 20);
    for (int i = 0; i < 5; i++)
        fill(c, "acme", i, 10, 60000, NULL, 0);
    for (int i = 5; i < 8; i++)
        fill(c, "globex", i, 10, 60000, NULL, 0);
    PgwCacheRequest rq = {.key = key_n(50), .tenant = "acme", .single_flight = true};
    PgwCacheEntry *hit;
    PgwCacheFlight *lead;
    PgwCacheWaiter *wait;
    ck_assert_int_eq(cache_lookup(c, &rq, &hit, &lead, &wait), PGW_CACHE_LEAD);
    ck_assert_int_eq(cache_clear(c, "acme"), 5);
    cache_flight_finish(lead, answer(10), 60000, NULL); /* began before the clear */
    ck_assert_int_eq(probe(c, "acme", 50), PGW_CACHE_MISS);
    ck_assert_int_eq(probe(c, "acme", 1), PGW_CACHE_MISS);
    ck_assert_int_eq(probe(c, "globex", 6), PGW_CACHE_HIT);
    ck_assert_int_eq(cache_clear(c, "nobody"), 0);
    ck_assert_int_eq(cache_clear(c, NULL), 3);
    PgwCacheCounters t;
    cache_totals(c, &t, NULL);
    ck_assert_int_eq(t.entries, 0);
    cache_free(c);
}
END_TEST

typedef struct TenantRow {
    char name[32];
    PgwCacheCounters n;
} TenantRow;
typedef struct TenantRows {
    TenantRow rows[8];
    size_t n;
} TenantRows;

static void collect(void *arg, const char *tenant, const PgwCacheCounters *n)
{
    TenantRows *t = arg;
    snprintf(t->rows[t->n].name, sizeof t->rows[t->n].name, "%s", tenant);
    t->rows[t->n++].n = *n;
}

static const PgwCacheCounters *row_of(TenantRows *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->rows[i].name, name) == 0)
            return &t->rows[i].n;
    ck_abort_msg("no row for %s", name);
    return NULL;
}

START_TEST(per_tenant_accounting)
{
    PgwCache *c = store(1 << 20);
    fill(c, "acme", 1, 100, 60000, NULL, 0);
    fill(c, "acme", 2, 100, 60000, NULL, 0);
    fill(c, "globex", 3, 100, 60000, NULL, 0);
    probe(c, "acme", 1);
    probe(c, "acme", 1);
    probe(c, "globex", 3);
    cache_note(c, "globex", PGW_CACHE_NOTE_HIT);
    TenantRows t = {0};
    cache_foreach_tenant(c, collect, &t);
    const PgwCacheCounters *a = row_of(&t, "acme"), *g = row_of(&t, "globex");
    ck_assert_int_eq(a->entries, 2);
    ck_assert_int_eq(a->hits, 2);
    ck_assert_int_eq(a->misses, 2);
    ck_assert_int_eq(g->entries, 1);
    ck_assert_int_eq(g->hits, 2);
    ck_assert_int_gt(a->bytes, 2 * 100);
    ck_assert_int_gt(a->bytes, g->bytes);
    PgwCacheCounters total;
    cache_totals(c, &total, NULL);
    ck_assert_int_ge(total.bytes, a->bytes + g->bytes);
    cache_free(c);
}
END_TEST

/* ---- single flight across threads ----
 *
 * Each "worker" thread has a mailbox; the store's post function puts the
 * waiter's wake-up into the mailbox of the worker it names, and the worker
 * runs it, so the test sees on which thread each callback ran. */

#define WORKERS 20

typedef struct Mail {
    void (*fn)(void *);
    void *arg;
    struct Mail *next;
} Mail;

typedef struct Worker {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    Mail *mail;
    PgwCache *c;
    int index;
    PgwCacheOutcome outcome;
    PgwCacheFlight *lead;
    PgwCacheWaiter *wait;
    bool woken;
    PgwCacheWake how;
    bool on_own_thread;
    size_t answer_len;
    bool cancel_first;
} Worker;

static Worker workers[WORKERS];
static pthread_mutex_t ready_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cv = PTHREAD_COND_INITIALIZER;
static int looked_up;

static void post_to(void *target, void (*fn)(void *), void *arg)
{
    Worker *w = target;
    Mail *m = malloc(sizeof *m);
    m->fn = fn;
    m->arg = arg;
    pthread_mutex_lock(&w->mu);
    m->next = w->mail;
    w->mail = m;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void woken(void *arg, PgwCacheWake how, PgwCacheEntry *e)
{
    Worker *w = arg;
    w->woken = true;
    w->how = how;
    w->on_own_thread = pthread_equal(pthread_self(), w->thread);
    if (e != NULL) {
        w->answer_len = cache_entry_answer(e)->len;
        cache_entry_release(e);
    }
}

static void *worker_main(void *arg)
{
    Worker *w = arg;
    PgwCacheRequest rq = {.key = key_n(7),
                          .tenant = "acme",
                          .single_flight = true,
                          .target = w,
                          .fn = woken,
                          .arg = w};
    PgwCacheEntry *hit;
    w->outcome = cache_lookup(w->c, &rq, &hit, &w->lead, &w->wait);
    if (w->outcome == PGW_CACHE_WAIT && w->cancel_first) {
        cache_wait_cancel(w->wait); /* gave up (statement_timeout): never woken */
        w->wait = NULL;
    }
    pthread_mutex_lock(&ready_mu);
    looked_up++;
    pthread_cond_broadcast(&ready_cv);
    pthread_mutex_unlock(&ready_mu);
    if (w->outcome != PGW_CACHE_WAIT || w->wait == NULL)
        return NULL;
    /* the worker's event loop, reduced to its mailbox */
    pthread_mutex_lock(&w->mu);
    while (w->mail == NULL)
        pthread_cond_wait(&w->cv, &w->mu);
    Mail *m = w->mail;
    w->mail = NULL;
    pthread_mutex_unlock(&w->mu);
    while (m) {
        Mail *next = m->next;
        m->fn(m->arg);
        free(m);
        m = next;
    }
    return NULL;
}

static void run_flight(void (*finish)(PgwCacheFlight *), PgwCacheWake expect, size_t expect_len)
{
    PgwCacheOptions o = {.max_memory = 1 << 20, .max_entry = 1 << 20, .post = post_to};
    PgwCache *c = cache_new(&o);
    looked_up = 0;
    for (int i = 0; i < WORKERS; i++) {
        memset(&workers[i], 0, sizeof workers[i]);
        pthread_mutex_init(&workers[i].mu, NULL);
        pthread_cond_init(&workers[i].cv, NULL);
        workers[i].c = c;
        workers[i].index = i;
        workers[i].cancel_first = i % 7 == 3;
        pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
    }
    pthread_mutex_lock(&ready_mu);
    while (looked_up < WORKERS)
        pthread_cond_wait(&ready_cv, &ready_mu);
    pthread_mutex_unlock(&ready_mu);
    int leaders = 0, waiters = 0;
    PgwCacheFlight *lead = NULL;
    for (int i = 0; i < WORKERS; i++) {
        if (workers[i].outcome == PGW_CACHE_LEAD) {
            leaders++;
            lead = workers[i].lead;
        } else {
            ck_assert_int_eq(workers[i].outcome, PGW_CACHE_WAIT);
            waiters++;
        }
    }
    ck_assert_int_eq(leaders, 1); /* twenty simultaneous misses, one execution */
    ck_assert_int_eq(waiters, WORKERS - 1);
    finish(lead);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(workers[i].thread, NULL);
    for (int i = 0; i < WORKERS; i++) {
        Worker *w = &workers[i];
        if (w->outcome != PGW_CACHE_WAIT)
            continue;
        if (w->cancel_first) {
            ck_assert_msg(!w->woken, "a cancelled waiter was woken");
            continue;
        }
        ck_assert_msg(w->woken, "waiter %d never woken", i);
        ck_assert_msg(w->on_own_thread, "waiter %d woken on another thread", i);
        ck_assert_int_eq(w->how, expect);
        ck_assert_int_eq(w->answer_len, expect_len);
    }
    PgwCacheCounters t;
    cache_totals(c, &t, NULL);
    ck_assert_int_eq(t.misses, 1);
    ck_assert_int_eq(t.coalesced, WORKERS - 1);
    for (int i = 0; i < WORKERS; i++) {
        pthread_mutex_destroy(&workers[i].mu);
        pthread_cond_destroy(&workers[i].cv);
    }
    cache_free(c);
}

static size_t finished_len;
static void finish_with_answer(PgwCacheFlight *f)
{
    PgwCacheEntry *e = answer(50);
    finished_len = cache_entry_answer(e)->len;
    cache_flight_finish(f, e, 60000, NULL);
}
static void finish_abandoned(PgwCacheFlight *f)
{
    cache_flight_abandon(f);
}
static void finish_failed(PgwCacheFlight *f)
{
    cache_flight_fail(f, false, 0);
}

START_TEST(single_flight_hands_the_answer_to_every_waiter)
{
    PgwCacheEntry *e = answer(50);
    size_t len = cache_entry_answer(e)->len;
    cache_entry_release(e);
    run_flight(finish_with_answer, PGW_CACHE_WAKE_HIT, len);
}
END_TEST

START_TEST(single_flight_leader_gone_means_retry)
{
    run_flight(finish_abandoned, PGW_CACHE_WAKE_RETRY, 0);
}
END_TEST

START_TEST(single_flight_unstorable_means_bypass)
{
    run_flight(finish_failed, PGW_CACHE_WAKE_BYPASS, 0);
}
END_TEST

/* Cancelling after the wake-up was posted but before it ran: the posted
 * call only frees (same thread, so no race). */
static Mail *held;
static void hold_post(void *target, void (*fn)(void *), void *arg)
{
    Mail *m = malloc(sizeof *m);
    m->fn = fn;
    m->arg = arg;
    m->next = held;
    held = m;
}
static int calls;
static void count_call(void *arg, PgwCacheWake how, PgwCacheEntry *e)
{
    calls++;
    cache_entry_release(e);
}

START_TEST(cancel_after_the_post)
{
    PgwCacheOptions o = {.max_memory = 1 << 20, .max_entry = 1 << 20, .post = hold_post};
    PgwCache *c = cache_new(&o);
    PgwCacheRequest rq = {
        .key = key_n(9), .tenant = "acme", .single_flight = true, .fn = count_call};
    PgwCacheEntry *hit;
    PgwCacheFlight *lead, *l2;
    PgwCacheWaiter *w1, *w2, *none;
    ck_assert_int_eq(cache_lookup(c, &rq, &hit, &lead, &none), PGW_CACHE_LEAD);
    ck_assert_int_eq(cache_lookup(c, &rq, &hit, &l2, &w1), PGW_CACHE_WAIT);
    ck_assert_int_eq(cache_lookup(c, &rq, &hit, &l2, &w2), PGW_CACHE_WAIT);
    calls = 0;
    held = NULL;
    cache_flight_finish(lead, answer(10), 60000, NULL);
    cache_wait_cancel(w1); /* too late to unhook: the posted call must not call back */
    while (held) {
        Mail *m = held;
        held = m->next;
        m->fn(m->arg);
        free(m);
    }
    ck_assert_int_eq(calls, 1);
    cache_free(c);
}
END_TEST

START_TEST(a_waiter_that_cannot_wait_bypasses)
{
    PgwCache *c = store(1 << 20);
    PgwCacheRequest rq = {.key = key_n(3), .tenant = "acme", .single_flight = true};
    PgwCacheEntry *hit;
    PgwCacheFlight *lead, *l2;
    PgwCacheWaiter *w;
    ck_assert_int_eq(cache_lookup(c, &rq, &hit, &lead, &w), PGW_CACHE_LEAD);
    ck_assert_int_eq(cache_lookup(c, &rq, &hit, &l2, &w), PGW_CACHE_BYPASS);
    cache_flight_abandon(lead);
    cache_free(c);
}
END_TEST

START_TEST(entries_outlive_eviction_while_replayed)
{
    PgwCache *c = store(1 << 20);
    fill(c, "acme", 1, 100, 60000, NULL, 0);
    PgwCacheRequest rq = {.key = key_n(1), .tenant = "acme"};
    PgwCacheEntry *hit;
    PgwCacheFlight *lead;
    PgwCacheWaiter *w;
    ck_assert_int_eq(cache_lookup(c, &rq, &hit, &lead, &w), PGW_CACHE_HIT);
    cache_clear(c, NULL);
    /* the worker still replays its reference */
    ck_assert_int_eq(cache_entry_answer(hit)->data[0], 'D');
    cache_entry_release(hit);
    cache_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache");
    TCase *tc = tcase_create("cache");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, capture, 0, (int)PGW_ARRAY_LEN(capture_cases));
    tcase_add_loop_test(tc, capture_bytes_in_any_pieces, 0, (int)PGW_ARRAY_LEN(capture_cases));
    tcase_add_test(tc, capture_extended_ends_with_its_portal);
    tcase_add_test(tc, capture_bytes_never_buffers_what_cannot_fit);
    tcase_add_test(tc, capture_bytes_fuzz);
    tcase_add_test(tc, hit_after_fill_and_tenants_apart);
    tcase_add_test(tc, lru_within_max_memory);
    tcase_add_test(tc, an_answer_bigger_than_the_store_is_not_kept);
    tcase_add_test(tc, one_tenant_never_evicts_another);
    tcase_add_test(tc, max_entry_and_remembered_misses);
    tcase_add_test(tc, ttl_expires_on_time);
    tcase_add_test(tc, alias_skips_to_the_entry_and_dies_with_it);
    tcase_add_test(tc, invalidation_drops_exactly_the_readers);
    tcase_add_test(tc, a_write_during_the_flight_keeps_its_answer_out);
    tcase_add_test(tc, clear_by_tenant);
    tcase_add_test(tc, per_tenant_accounting);
    tcase_add_test(tc, single_flight_hands_the_answer_to_every_waiter);
    tcase_add_test(tc, single_flight_leader_gone_means_retry);
    tcase_add_test(tc, single_flight_unstorable_means_bypass);
    tcase_add_test(tc, cancel_after_the_post);
    tcase_add_test(tc, a_waiter_that_cannot_wait_bypasses);
    tcase_add_test(tc, entries_outlive_eviction_while_replayed);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
