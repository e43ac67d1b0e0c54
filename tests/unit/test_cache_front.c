/*
 * test_cache_front.c — one statement's way through the result cache
 * (src/cache_front.h), as the link will drive it: probe by raw text, then
 * the primary key with single flight, lead and capture, finish or abandon.
 * Memory mode on one event loop; Redis mode with two "instances" (two
 * stores, two fronts, two event loops) sharing a real redis-server: entries
 * shared, twenty simultaneous identical statements across both instances
 * executed once, invalidation, CACHE CLEAR, and Redis killed mid-run with
 * every statement still answered (led, never failed).
 */
#include <check.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cache_front.h"
#include "redis_server.h"

/* The store's post function: run fn on the event loop that target names. */
typedef struct Posted {
    void (*fn)(void *);
    void *arg;
} Posted;

static void run_posted(evutil_socket_t fd, short what, void *arg)
{
    Posted *p = arg;
    p->fn(p->arg);
    free(p);
}

static void post(void *target, void (*fn)(void *), void *arg)
{
    Posted *p = malloc(sizeof *p);
    p->fn = fn;
    p->arg = arg;
    event_base_once(target, -1, EV_TIMEOUT, run_posted, p, &(struct timeval){0, 0});
}

static PgwCacheKey key_n(int n)
{
    PgwCacheKey k;
    for (size_t i = 0; i < sizeof k.digest; i++)
        k.digest[i] = (uint8_t)(n * 29 + (int)i * 3);
    k.digest[0] = (uint8_t)n;
    k.digest[1] = (uint8_t)(n >> 8);
    return k;
}

/* A statement as the link would run it. */
typedef struct Stmt {
    PgwCacheOutcome how;
    bool answered;
    PgwCacheTicket *lead;
    PgwCacheTicket *pending;
    size_t hit_len;
    char why[128];
} Stmt;

static void ready(void *arg, PgwCacheOutcome how, PgwCacheEntry *e, PgwCacheTicket *lead,
                  const char *why)
{
    Stmt *s = arg;
    ck_assert_msg(!s->answered, "answered twice");
    s->answered = true;
    s->how = how;
    s->lead = lead;
    snprintf(s->why, sizeof s->why, "%s", why);
    if (e != NULL) {
        s->hit_len = cache_entry_answer(e)->len;
        cache_entry_release(e);
    }
}

static bool answered(void *arg)
{
    return ((Stmt *)arg)->answered;
}

typedef struct Many {
    Stmt *s;
    int n;
} Many;

static bool all_answered(void *arg)
{
    Many *m = arg;
    for (int i = 0; i < m->n; i++)
        if (!m->s[i].answered)
            return false;
    return true;
}

static bool any_answered(void *arg)
{
    Stmt **two = arg;
    return two[0]->answered || two[1]->answered;
}

static bool some_lead(void *arg)
{
    Many *m = arg;
    for (int i = 0; i < m->n; i++)
        if (m->s[i].answered && m->s[i].how == PGW_CACHE_LEAD)
            return true;
    return false;
}

static bool never(void *arg)
{
    return false;
}

static char *orders[] = {"public.orders"};

static void begin(PgwCacheFront *f, Stmt *s, const char *tenant, int raw, int primary, int wait_ms)
{
    memset(s, 0, sizeof *s);
    PgwCacheKey r = key_n(raw), p = key_n(primary);
    PgwCacheBegin b = {.tenant = tenant,
                       .raw = raw ? &r : NULL,
                       .primary = primary ? &p : NULL,
                       .nrelations = 1,
                       .relations = orders,
                       .ttl_ms = 60000,
                       .wait_ms = wait_ms};
    s->pending = cache_begin(f, &b, ready, s);
}

/* The answer a backend would send, relayed through the capture. */
static void answer_and_finish(Stmt *s, size_t row_bytes, size_t max_entry)
{
    ck_assert_int_eq(s->how, PGW_CACHE_LEAD);
    PgwCacheCapture cap;
    cache_capture_init(&cap, PGW_CACHE_SIMPLE, max_entry);
    PgwBuf b;
    buf_init(&b);
    buf_append_byte(&b, 'T');
    buf_append_u32(&b, 6);
    buf_append_u16(&b, 0);
    buf_append_byte(&b, 'D');
    buf_append_u32(&b, (uint32_t)(4 + row_bytes));
    for (size_t i = 0; i < row_bytes; i++)
        buf_append_byte(&b, 'x');
    buf_append_byte(&b, 'C');
    buf_append_u32(&b, 13);
    buf_append_cstr(&b, "SELECT 1");
    buf_append_byte(&b, 'Z');
    buf_append_u32(&b, 5);
    buf_append_byte(&b, 'I');
    cache_capture_bytes(&cap, b.data, b.len);
    buf_free(&b);
    cache_ticket_finish(s->lead, &cap);
    s->lead = NULL;
}

static PgwCache *store_new(size_t max_memory)
{
    PgwCacheOptions o = {.max_memory = max_memory, .max_entry = 1 << 20, .post = post};
    return cache_new(&o);
}

static PgwCacheFront *front_new(struct event_base *base, PgwCache *store, bool redis)
{
    char url[128], err[256];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", server.port);
    PgwRedisOptions ro = {.url = url, .prefix = "front:", .timeout_ms = 300};
    PgwCacheFrontOptions o = {
        .base = base, .store = store, .self = base, .redis = redis ? &ro : NULL};
    PgwCacheFront *f = cache_front_new(&o, err, sizeof err);
    ck_assert_msg(f != NULL, "%s", err);
    return f;
}

/* ---- memory mode ---- */

START_TEST(memory_probe_lead_hit_alias)
{
    base_a = event_base_new();
    PgwCache *store = store_new(1 << 20);
    PgwCacheFront *f = front_new(base_a, store, false);
    Stmt s;
    begin(f, &s, "acme", 1, 0, 0); /* probe: nothing yet */
    ck_assert(s.answered && s.how == PGW_CACHE_MISS);
    begin(f, &s, "acme", 1, 100, 0);
    ck_assert(s.answered && s.how == PGW_CACHE_LEAD);
    ck_assert_ptr_null(s.pending); /* answered before cache_begin returned */
    answer_and_finish(&s, 10, 1 << 20);
    begin(f, &s, "acme", 1, 0, 0); /* the raw text finds it now */
    ck_assert_int_eq(s.how, PGW_CACHE_HIT);
    ck_assert_int_eq(s.hit_len, 7 + 15 + 14); /* T, D, C: no ReadyForQuery */
    begin(f, &s, "acme", 2, 0, 0); /* another text of the same statement */
    ck_assert_int_eq(s.how, PGW_CACHE_MISS);
    begin(f, &s, "acme", 2, 100, 0);
    ck_assert_int_eq(s.how, PGW_CACHE_HIT);
    begin(f, &s, "acme", 2, 0, 0); /* ... and its alias is filed */
    ck_assert_int_eq(s.how, PGW_CACHE_HIT);
    /* keys carry the tenant; the store checks it again: the same key bytes
     * under another tenant's name find nothing */
    begin(f, &s, "globex", 1, 0, 0);
    ck_assert_int_eq(s.how, PGW_CACHE_MISS);
    begin(f, &s, "globex", 1, 100, 0);
    ck_assert_int_eq(s.how, PGW_CACHE_LEAD);
    cache_ticket_abandon(s.lead);
    cache_front_free(f);
    cache_free(store);
    event_base_free(base_a);
    base_a = NULL;
}
END_TEST

START_TEST(memory_single_flight_twenty)
{
    base_a = event_base_new();
    PgwCache *store = store_new(1 << 20);
    PgwCacheFront *f = front_new(base_a, store, false);
    Stmt s[20];
    int leaders = 0, leader = -1;
    for (int i = 0; i < 20; i++) {
        begin(f, &s[i], "acme", 10 + i, 200, 30000);
        if (s[i].answered) {
            ck_assert_int_eq(s[i].how, PGW_CACHE_LEAD);
            leaders++;
            leader = i;
        }
    }
    ck_assert_int_eq(leaders, 1);
    answer_and_finish(&s[leader], 100, 1 << 20);
    Many m = {s, 20};
    ck_assert(run_until(all_answered, &m, 5000));
    for (int i = 0; i < 20; i++) {
        if (i == leader)
            continue;
        ck_assert_int_eq(s[i].how, PGW_CACHE_HIT);
        ck_assert_str_eq(s[i].why, "hit, coalesced");
        ck_assert_int_eq(s[i].hit_len, 7 + 105 + 14);
    }
    /* every waiter's raw text now hits without the policy */
    Stmt p;
    begin(f, &p, "acme", 15, 0, 0);
    ck_assert_int_eq(p.how, PGW_CACHE_HIT);
    PgwCacheCounters t;
    cache_totals(store, &t, NULL);
    ck_assert_int_eq(t.coalesced, 19);
    cache_front_free(f);
    cache_free(store);
    event_base_free(base_a);
    base_a = NULL;
}
END_TEST

START_TEST(memory_leader_gone_next_one_leads)
{
    base_a = event_base_new();
    PgwCache *store = store_new(1 << 20);
    PgwCacheFront *f = front_new(base_a, store, false);
    Stmt a, b, c;
    begin(f, &a, "acme", 1, 300, 30000);
    begin(f, &b, "acme", 2, 300, 30000);
    begin(f, &c, "acme", 3, 300, 30000);
    ck_assert_int_eq(a.how, PGW_CACHE_LEAD);
    ck_assert(!b.answered && !c.answered);
    cache_ticket_abandon(a.lead); /* its client disconnected */
    Stmt *bc[] = {&b, &c};
    ck_assert(run_until(any_answered, bc, 5000));
    Stmt *next = b.answered ? &b : &c, *other = b.answered ? &c : &b;
    ck_assert_int_eq(next->how, PGW_CACHE_LEAD);
    ck_assert(!other->answered);
    answer_and_finish(next, 5, 1 << 20);
    ck_assert(run_until(answered, other, 5000));
    ck_assert_int_eq(other->how, PGW_CACHE_HIT);
    cache_front_free(f);
    cache_free(store);
    event_base_free(base_a);
    base_a = NULL;
}
END_TEST

START_TEST(memory_waits_end_at_statement_timeout)
{
    base_a = event_base_new();
    PgwCache *store = store_new(1 << 20);
    PgwCacheFront *f = front_new(base_a, store, false);
    Stmt a, b, c;
    begin(f, &a, "acme", 1, 400, 200);
    begin(f, &b, "acme", 2, 400, 200);
    begin(f, &c, "acme", 3, 400, 200);
    cache_ticket_cancel(c.pending); /* withdrawn: never called back */
    ck_assert(run_until(answered, &b, 5000));
    ck_assert_int_eq(b.how, PGW_CACHE_BYPASS);
    ck_assert(strstr(b.why, "statement_timeout") != NULL);
    ck_assert(!c.answered);
    answer_and_finish(&a, 5, 1 << 20); /* the slow leader still stores its answer */
    Stmt d;
    begin(f, &d, "acme", 3, 400, 200);
    ck_assert_int_eq(d.how, PGW_CACHE_HIT);
    cache_front_free(f);
    cache_free(store);
    event_base_free(base_a);
    base_a = NULL;
}
END_TEST

START_TEST(memory_too_big_then_bypass)
{
    base_a = event_base_new();
    PgwCache *store = store_new(1 << 20);
    PgwCacheFront *f = front_new(base_a, store, false);
    Stmt a, b;
    begin(f, &a, "acme", 1, 500, 30000);
    begin(f, &b, "acme", 2, 500, 30000);
    answer_and_finish(&a, 5000, 1000); /* larger than max_entry */
    ck_assert(run_until(answered, &b, 5000));
    ck_assert_int_eq(b.how, PGW_CACHE_BYPASS);
    Stmt c;
    begin(f, &c, "acme", 3, 500, 30000); /* known too big: runs at once */
    ck_assert_int_eq(c.how, PGW_CACHE_BYPASS);
    cache_front_free(f);
    cache_free(store);
    event_base_free(base_a);
    base_a = NULL;
}
END_TEST

START_TEST(memory_invalidated_while_running)
{
    base_a = event_base_new();
    PgwCache *store = store_new(1 << 20);
    PgwCacheFront *f = front_new(base_a, store, false);
    Stmt a, b;
    begin(f, &a, "acme", 1, 600, 30000);
    begin(f, &b, "acme", 2, 600, 30000);
    cache_front_invalidate(f, "acme", "public.orders"); /* a write while a runs */
    answer_and_finish(&a, 5, 1 << 20);
    ck_assert(run_until(answered, &b, 5000));
    ck_assert_int_eq(b.how, PGW_CACHE_LEAD); /* looked again: a's answer is too old */
    answer_and_finish(&b, 5, 1 << 20);
    Stmt c;
    begin(f, &c, "acme", 3, 600, 30000);
    ck_assert_int_eq(c.how, PGW_CACHE_HIT);
    cache_front_free(f);
    cache_free(store);
    event_base_free(base_a);
    base_a = NULL;
}
END_TEST

/* ---- Redis mode: two instances ---- */

typedef struct Instance {
    PgwCache *store;
    PgwCacheFront *front;
} Instance;

static Instance inst[2];

static bool both_ready(void *arg)
{
    return cache_redis_ready(cache_front_redis(inst[0].front)) &&
           cache_redis_ready(cache_front_redis(inst[1].front));
}

static void instances_up(void)
{
    server_setup(false, false);
    base_a = event_base_new();
    base_b = event_base_new();
    for (int i = 0; i < 2; i++) {
        inst[i].store = store_new(0); /* Redis mode: the store only coalesces */
        inst[i].front = front_new(i == 0 ? base_a : base_b, inst[i].store, true);
    }
    ck_assert_msg(run_until(both_ready, NULL, 5000), "Redis never became ready");
}

static void instances_down(void)
{
    for (int i = 0; i < 2; i++) {
        cache_front_free(inst[i].front);
        cache_free(inst[i].store);
    }
    /* let posted wake-ups run before the bases go */
    event_base_loop(base_a, EVLOOP_NONBLOCK);
    event_base_loop(base_b, EVLOOP_NONBLOCK);
    event_base_free(base_a);
    event_base_free(base_b);
    base_a = base_b = NULL;
    server_teardown();
}

/* ---- the gate (invalidation = replication) ---- */

static bool gate_hold;
static char *gate_extra[] = {"public.base", "*stream"};

static bool test_gate(const char *tenant, size_t nrels, char *const *rels, size_t *nextra,
                      char ***extra)
{
    *nextra = 0;
    *extra = NULL;
    if (gate_hold)
        return false;
    *extra = malloc(2 * sizeof(char *));
    (*extra)[0] = strdup(gate_extra[0]);
    (*extra)[1] = strdup(gate_extra[1]);
    *nextra = 2;
    return true;
}

static void lead_and_store(PgwCacheFront *f, int raw, int primary)
{
    Stmt s;
    begin(f, &s, "acme", raw, primary, 0);
    ck_assert_int_eq(s.how, PGW_CACHE_LEAD);
    answer_and_finish(&s, 10, 1 << 20);
    begin(f, &s, "acme", raw, 0, 0);
    ck_assert_int_eq(s.how, PGW_CACHE_HIT);
}

START_TEST(memory_gate_holds_and_files_under_extras)
{
    base_a = event_base_new();
    PgwCache *store = store_new(1 << 20);
    PgwCacheFrontOptions o = {.base = base_a, .store = store, .self = base_a, .gate = test_gate};
    char err[256];
    PgwCacheFront *f = cache_front_new(&o, err, sizeof err);
    ck_assert_ptr_nonnull(f);
    /* stored while open ... */
    gate_hold = false;
    lead_and_store(f, 1, 100);
    /* ... never served while the gate holds, and nothing led or stored */
    gate_hold = true;
    Stmt s;
    begin(f, &s, "acme", 1, 0, 0);
    ck_assert_int_eq(s.how, PGW_CACHE_MISS);
    begin(f, &s, "acme", 1, 100, 0);
    ck_assert_int_eq(s.how, PGW_CACHE_BYPASS);
    ck_assert_msg(strstr(s.why, "change stream") != NULL, "%s", s.why);
    gate_hold = false;
    begin(f, &s, "acme", 1, 0, 0);
    ck_assert_int_eq(s.how, PGW_CACHE_HIT);
    /* a write to a table under the view the statement read drops it */
    cache_invalidate(store, "acme", "public.base");
    begin(f, &s, "acme", 1, 0, 0);
    ck_assert_int_eq(s.how, PGW_CACHE_MISS);
    /* so does the stream's own pseudo-relation (it stopped vouching) */
    lead_and_store(f, 1, 100);
    cache_invalidate(store, "acme", "*stream");
    begin(f, &s, "acme", 1, 0, 0);
    ck_assert_int_eq(s.how, PGW_CACHE_MISS);
    /* and a statement running across that edge stores nothing */
    begin(f, &s, "acme", 1, 100, 0);
    ck_assert_int_eq(s.how, PGW_CACHE_LEAD);
    cache_invalidate(store, "acme", "*stream");
    answer_and_finish(&s, 10, 1 << 20);
    begin(f, &s, "acme", 1, 0, 0);
    ck_assert_int_eq(s.how, PGW_CACHE_MISS);
    cache_front_free(f);
    cache_free(store);
    event_base_free(base_a);
    base_a = NULL;
}
END_TEST

START_TEST(redis_two_instances_share)
{
    instances_up();
    Stmt s;
    begin(inst[0].front, &s, "acme", 1, 700, 30000);
    ck_assert(run_until(answered, &s, 5000));
    ck_assert_int_eq(s.how, PGW_CACHE_LEAD);
    answer_and_finish(&s, 20, 1 << 20);
    /* the other instance: the raw text hits in Redis, so does the primary */
    Stmt p, q;
    begin(inst[1].front, &p, "acme", 1, 0, 0);
    ck_assert(run_until(answered, &p, 5000));
    ck_assert_int_eq(p.how, PGW_CACHE_HIT);
    ck_assert_int_eq(p.hit_len, 7 + 25 + 14);
    begin(inst[1].front, &q, "acme", 9, 700, 30000);
    ck_assert(run_until(answered, &q, 5000));
    ck_assert_int_eq(q.how, PGW_CACHE_HIT);
    begin(inst[1].front, &p, "globex", 1, 0, 0); /* another tenant's name on the same bytes */
    ck_assert(run_until(answered, &p, 5000));
    ck_assert_int_eq(p.how, PGW_CACHE_MISS);
    /* a write seen by instance 0: instance 1 stops serving it */
    cache_front_invalidate(inst[0].front, "acme", "public.orders");
    Stmt r;
    begin(inst[0].front, &r, "acme", 1, 0, 0); /* same connection as the INCR: ordered */
    ck_assert(run_until(answered, &r, 5000));
    ck_assert_int_eq(r.how, PGW_CACHE_MISS);
    begin(inst[1].front, &r, "acme", 9, 700, 30000);
    ck_assert(run_until(answered, &r, 5000));
    ck_assert_int_eq(r.how, PGW_CACHE_LEAD);
    answer_and_finish(&r, 3, 1 << 20);
    instances_down();
}
END_TEST

START_TEST(redis_twenty_across_two_instances_run_once)
{
    instances_up();
    Stmt s[20];
    for (int i = 0; i < 20; i++)
        begin(inst[i % 2].front, &s[i], "acme", 100 + i, 800, 30000);
    /* run until a leader emerges, and a while more so every lookup is in */
    Many all = {s, 20};
    ck_assert(run_until(some_lead, &all, 5000));
    run_until(never, NULL, 300);
    int leaders = 0, leader = -1;
    for (int i = 0; i < 20; i++) {
        if (s[i].answered) {
            ck_assert_msg(s[i].how == PGW_CACHE_LEAD, "statement %d: %d (%s)", i, s[i].how,
                          s[i].why);
            leaders++;
            leader = i;
        }
    }
    ck_assert_int_eq(leaders, 1); /* one execution on the backend, two instances */
    answer_and_finish(&s[leader], 50, 1 << 20);
    Many m = {s, 20};
    ck_assert_msg(run_until(all_answered, &m, 5000), "waiters were not woken");
    for (int i = 0; i < 20; i++)
        if (i != leader)
            ck_assert_msg(s[i].how == PGW_CACHE_HIT, "statement %d: %s", i, s[i].why);
    instances_down();
}
END_TEST

START_TEST(redis_killed_mid_run_everything_answered)
{
    instances_up();
    Stmt s[6];
    for (int i = 0; i < 3; i++)
        begin(inst[0].front, &s[i], "acme", 1 + i, 900, 30000);
    ck_assert(run_until(answered, &s[0], 5000));
    server_kill(&server);
    /* the leader finishes into a dead Redis; the waiters still get it */
    answer_and_finish(&s[0], 10, 1 << 20);
    Many m3 = {s, 3};
    ck_assert(run_until(all_answered, &m3, 5000));
    ck_assert_int_eq(s[1].how, PGW_CACHE_HIT);
    /* while it is gone: every statement leads at once, none fails */
    for (int i = 3; i < 6; i++) {
        begin(inst[1].front, &s[i], "acme", 10 + i, 901 + i, 30000);
        ck_assert(run_until(answered, &s[i], 5000));
        ck_assert_msg(s[i].how == PGW_CACHE_LEAD, "%s", s[i].why);
        answer_and_finish(&s[i], 1, 1 << 20);
    }
    Stmt p;
    begin(inst[1].front, &p, "acme", 1, 0, 0);
    ck_assert(run_until(answered, &p, 5000));
    ck_assert_int_eq(p.how, PGW_CACHE_MISS);
    server_start(&server);
    ck_assert_msg(run_until(both_ready, NULL, 15000), "no reconnect");
    instances_down();
}
END_TEST

typedef struct Cleared {
    bool done;
    size_t memory;
    long long redis;
    bool ok;
} Cleared;

static void cleared(void *arg, size_t memory, long long redis, bool ok)
{
    Cleared *c = arg;
    c->done = true;
    c->memory = memory;
    c->redis = redis;
    c->ok = ok;
}

static bool cleared_p(void *arg)
{
    return ((Cleared *)arg)->done;
}

START_TEST(redis_cache_clear)
{
    instances_up();
    for (int i = 0; i < 3; i++) {
        Stmt s;
        begin(inst[0].front, &s, i < 2 ? "acme" : "globex", 1 + i, 1000 + i, 30000);
        ck_assert(run_until(answered, &s, 5000));
        answer_and_finish(&s, 5, 1 << 20);
    }
    Cleared c = {0};
    cache_front_clear(inst[1].front, "acme", cleared, &c);
    ck_assert(run_until(cleared_p, &c, 5000));
    ck_assert(c.ok);
    ck_assert_int_eq(c.redis, 4); /* two entries and their two aliases */
    Stmt s;
    begin(inst[0].front, &s, "acme", 1, 0, 0);
    ck_assert(run_until(answered, &s, 5000));
    ck_assert_int_eq(s.how, PGW_CACHE_MISS);
    begin(inst[0].front, &s, "globex", 3, 0, 0);
    ck_assert(run_until(answered, &s, 5000));
    ck_assert_int_eq(s.how, PGW_CACHE_HIT);
    instances_down();
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (mkdtemp(root_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    Suite *s = suite_create("cache_front");
    TCase *tc = tcase_create("cache_front");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, memory_probe_lead_hit_alias);
    tcase_add_test(tc, memory_single_flight_twenty);
    tcase_add_test(tc, memory_leader_gone_next_one_leads);
    tcase_add_test(tc, memory_waits_end_at_statement_timeout);
    tcase_add_test(tc, memory_too_big_then_bypass);
    tcase_add_test(tc, memory_invalidated_while_running);
    tcase_add_test(tc, memory_gate_holds_and_files_under_extras);
    tcase_add_test(tc, redis_two_instances_share);
    tcase_add_test(tc, redis_twenty_across_two_instances_run_once);
    tcase_add_test(tc, redis_killed_mid_run_everything_answered);
    tcase_add_test(tc, redis_cache_clear);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root_dir);
    return failed == 0 ? 0 : 1;
}
