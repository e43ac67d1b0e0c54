/*
 * test_cache_redis.c — the result cache in Redis (src/cache_redis.h)
 * against a real redis-server started by the test on a free port: URLs
 * (table-driven), entries stored and found through aliases, two "instances"
 * (two PgwRedis with their own event bases) sharing entries, the
 * cross-instance lock with the waiter woken by the leader's announcement,
 * invalidation by generation seen by both, CACHE CLEAR by tenant, a wrong
 * password, Redis killed, stopped (SIGSTOP: a Redis that does not answer)
 * and started again, and rediss:// through the TLS tunnel with a CA of the
 * test's own (and refused with a CA that did not sign the server).
 *
 * Waiting is always "run the event loop until a condition or a deadline";
 * deadlines are generous bounds that only a hang would exceed.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cache_redis.h"
#include "cache_redis_shared.h"
#include "redis_server.h"

static bool is_ready(void *arg)
{
    return cache_redis_ready(arg);
}

static char url_buf[256];
static const char *url_for(const Server *s, bool tls)
{
    if (s->password)
        snprintf(url_buf, sizeof url_buf, "redis://:%s@127.0.0.1:%d/3", "s3cr%3Aet%40", s->port);
    else if (tls)
        snprintf(url_buf, sizeof url_buf, "rediss://127.0.0.1:%d/0", s->tls_port);
    else
        snprintf(url_buf, sizeof url_buf, "redis://127.0.0.1:%d", s->port);
    return url_buf;
}

static PgwRedis *client(struct event_base *base, const char *url, const char *ca,
                        void (*on_event)(void *, const PgwRedisEvent *), void *arg)
{
    PgwRedisOptions o = {.url = url,
                         .prefix = "test:",
                         .timeout_ms = 300,
                         .tls_ca_file = ca,
                         .on_event = on_event,
                         .event_arg = arg};
    char err[256];
    PgwRedis *r = cache_redis_new(base, &o, err, sizeof err);
    ck_assert_msg(r != NULL, "%s", err);
    return r;
}

/* ---- callbacks that record what they got ---- */

typedef struct Got {
    bool done;
    PgwRedisStatus st;
    PgwCacheEntry *e;
    uint64_t gens[4];
    size_t ngens; /* how many gens a lock asked for */
    long long n;
} Got;

static void got_entry(void *arg, PgwRedisStatus st, PgwCacheEntry *e)
{
    Got *g = arg;
    g->done = true;
    g->st = st;
    g->e = e;
}

static void got_lock(void *arg, PgwRedisStatus st, const uint64_t *gens)
{
    Got *g = arg;
    g->done = true;
    g->st = st;
    for (size_t i = 0; gens && i < g->ngens; i++)
        g->gens[i] = gens[i];
}

static void got_done(void *arg, PgwRedisStatus st, long long n)
{
    Got *g = arg;
    g->done = true;
    g->st = st;
    g->n = n;
}

static bool got_done_p(void *arg)
{
    return ((Got *)arg)->done;
}

static PgwCacheKey key_n(int n)
{
    PgwCacheKey k;
    for (size_t i = 0; i < sizeof k.digest; i++)
        k.digest[i] = (uint8_t)(n * 37 + (int)i);
    k.digest[0] = (uint8_t)n;
    k.digest[1] = (uint8_t)(n >> 8);
    return k;
}

/* An extended-protocol answer with a zero byte in it (binary data). */
static PgwCacheEntry *sample_entry(int tag)
{
    uint8_t bytes[] = {'T', 0, 0, 0, 6,  0,   0,   'D', 0,   0,   0,   7,   0,   1, (uint8_t)tag,
                       'C', 0, 0, 0, 13, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1', 0};
    return cache_entry_new(PGW_CACHE_EXTENDED, bytes, sizeof bytes, 7, true, 1);
}

static Got get(PgwRedis *r, const char *tenant, int n)
{
    Got g = {0};
    PgwCacheKey k = key_n(n);
    PgwRedisOp *op = cache_redis_get(r, tenant, &k, got_entry, &g);
    if (op == NULL) {
        g.done = true;
        g.st = PGW_REDIS_BYPASS;
        return g;
    }
    ck_assert_msg(run_until(got_done_p, &g, 5000), "GET never completed");
    return g;
}

static void expect_hit(PgwRedis *r, const char *tenant, int n, int tag)
{
    Got g = get(r, tenant, n);
    ck_assert_msg(g.st == PGW_REDIS_OK, "%s/%d: expected a hit, got %d", tenant, n, g.st);
    const PgwCacheAnswer *a = cache_entry_answer(g.e);
    PgwCacheEntry *want = sample_entry(tag);
    const PgwCacheAnswer *w = cache_entry_answer(want);
    ck_assert_int_eq(a->len, w->len);
    ck_assert_mem_eq(a->data, w->data, w->len); /* byte for byte */
    ck_assert_int_eq(a->head_len, w->head_len);
    ck_assert(a->has_head);
    ck_assert_int_eq(a->shape, PGW_CACHE_EXTENDED);
    cache_entry_release(want);
    cache_entry_release(g.e);
}

static void expect_miss(PgwRedis *r, const char *tenant, int n)
{
    Got g = get(r, tenant, n);
    ck_assert_msg(g.st == PGW_REDIS_MISS, "%s/%d: expected a miss, got %d", tenant, n, g.st);
}

/* Lead key n: take the lock, store the answer. */
static void lead_and_put(PgwRedis *r, const char *tenant, int n, int tag, char *const *rels,
                         size_t nrels, const PgwCacheKey *alias)
{
    Got g = {.ngens = nrels};
    PgwCacheKey k = key_n(n);
    ck_assert_ptr_nonnull(cache_redis_lock(r, tenant, &k, 5000, nrels, rels, got_lock, &g));
    ck_assert(run_until(got_done_p, &g, 5000));
    ck_assert_int_eq(g.st, PGW_REDIS_OK);
    PgwCacheEntry *e = sample_entry(tag);
    cache_redis_put(r, tenant, &k, alias, e, 60000, nrels, rels, g.gens);
    cache_entry_release(e);
}

/* ---- URLs, table-driven ---- */

typedef struct UrlCase {
    const char *url;
    bool ok;
    bool tls;
    const char *host, *user, *password, *path;
    int port, db;
    const char *error; /* substring */
} UrlCase;

static const UrlCase url_cases[] = {
    {"redis://127.0.0.1:6379/0", true, false, "127.0.0.1", NULL, NULL, NULL, 6379, 0, NULL},
    {"redis://cache.internal", true, false, "cache.internal", NULL, NULL, NULL, 6379, 0, NULL},
    {"redis://:pa%40ss@h:7000/2", true, false, "h", NULL, "pa@ss", NULL, 7000, 2, NULL},
    {"redis://secret@h", true, false, "h", NULL, "secret", NULL, 6379, 0, NULL},
    {"redis://app:pw@h:1/15", true, false, "h", "app", "pw", NULL, 1, 15, NULL},
    {"rediss://h:6380", true, true, "h", NULL, NULL, NULL, 6380, 0, NULL},
    {"redis://[::1]:6379/1", true, false, "::1", NULL, NULL, NULL, 6379, 1, NULL},
    {"redis://p@ss@h", true, false, "h", NULL, "p@ss", NULL, 6379, 0, NULL},
    {"unix:///run/redis.sock", true, false, NULL, NULL, NULL, "/run/redis.sock", 6379, 0, NULL},
    {"unix:///run/redis.sock?db=4", true, false, NULL, NULL, NULL, "/run/redis.sock", 6379, 4,
     NULL},
    {"", false, false, NULL, NULL, NULL, NULL, 0, 0, "empty"},
    {"http://h", false, false, NULL, NULL, NULL, NULL, 0, 0, "expected redis://"},
    {"redis://h:0", false, false, NULL, NULL, NULL, NULL, 0, 0, "port"},
    {"redis://h:99999", false, false, NULL, NULL, NULL, NULL, 0, 0, "port"},
    {"redis://h:x", false, false, NULL, NULL, NULL, NULL, 0, 0, "port"},
    {"redis://h/zero", false, false, NULL, NULL, NULL, NULL, 0, 0, "database"},
    {"redis://:pw@/0", false, false, NULL, NULL, NULL, NULL, 0, 0, "host"},
    {"redis://h?timeout=1", false, false, NULL, NULL, NULL, NULL, 0, 0, "query"},
    {"unix://relative.sock", false, false, NULL, NULL, NULL, NULL, 0, 0, "absolute"},
    {"redis://[::1", false, false, NULL, NULL, NULL, NULL, 0, 0, "unclosed"},
};

static void str_eq_or_null(const char *got, const char *want, const char *what, const char *url)
{
    if (want == NULL)
        ck_assert_msg(got == NULL, "%s: %s is '%s'", url, what, got);
    else
        ck_assert_msg(got != NULL && strcmp(got, want) == 0, "%s: %s is '%s', not '%s'", url, what,
                      got ? got : "(null)", want);
}

START_TEST(urls)
{
    const UrlCase *tc = &url_cases[_i];
    PgwRedisUrl u;
    char err[256] = "";
    int rc = cache_redis_parse_url(tc->url, &u, err, sizeof err);
    if (!tc->ok) {
        ck_assert_msg(rc == -1, "%s: accepted", tc->url);
        ck_assert_msg(strstr(err, tc->error) != NULL, "%s: '%s'", tc->url, err);
        return;
    }
    ck_assert_msg(rc == 0, "%s: %s", tc->url, err);
    ck_assert_int_eq(u.tls, tc->tls);
    str_eq_or_null(u.host, tc->host, "host", tc->url);
    str_eq_or_null(u.user, tc->user, "user", tc->url);
    str_eq_or_null(u.password, tc->password, "password", tc->url);
    str_eq_or_null(u.unix_path, tc->path, "path", tc->url);
    if (tc->host)
        ck_assert_int_eq(u.port, tc->port);
    ck_assert_int_eq(u.db, tc->db);
    cache_redis_url_free(&u);
}
END_TEST

/* ---- against the server ---- */

static void bases_new(void)
{
    base_a = event_base_new();
    base_b = event_base_new();
}

static void bases_free(void)
{
    event_base_free(base_a);
    event_base_free(base_b);
    base_a = base_b = NULL;
}

typedef struct Events {
    int invalidations, clears, dones;
    char last_relation[64];
} Events;

static void on_event(void *arg, const PgwRedisEvent *ev)
{
    Events *e = arg;
    if (ev->kind == PGW_REDIS_EV_INVALIDATE) {
        e->invalidations++;
        snprintf(e->last_relation, sizeof e->last_relation, "%s", ev->relation);
    } else if (ev->kind == PGW_REDIS_EV_CLEAR) {
        e->clears++;
    } else {
        e->dones++;
    }
}

static bool invalidation_seen(void *arg)
{
    return ((Events *)arg)->invalidations > 0;
}

START_TEST(two_instances_share_entries)
{
    server_setup(true, false);
    bases_new();
    Events ea = {0}, eb = {0};
    char url[256];
    snprintf(url, sizeof url, "%s", url_for(&server, false));
    PgwRedis *a = client(base_a, url, NULL, on_event, &ea);
    PgwRedis *b = client(base_b, url, NULL, on_event, &eb);
    ck_assert_msg(run_until(is_ready, a, 5000), "instance a never connected");
    ck_assert(run_until(is_ready, b, 5000));

    char *rels[] = {"public.orders", "public.customers"};
    expect_miss(a, "acme", 1);
    PgwCacheKey raw = key_n(1001);
    lead_and_put(a, "acme", 1, 7, rels, 2, &raw);
    expect_hit(a, "acme", 1, 7);
    expect_hit(b, "acme", 1, 7); /* the other instance */
    expect_hit(b, "acme", 1001, 7); /* through the raw-text alias */
    expect_miss(b, "globex", 1); /* same key bytes, another tenant */

    /* an alias filed later for another text of the same statement */
    PgwCacheKey raw2 = key_n(1002), primary = key_n(1);
    cache_redis_alias(b, "acme", &raw2, &primary, 60000);
    expect_hit(b, "acme", 1002, 7); /* b's own connection: after its SET */
    expect_hit(a, "acme", 1002, 7);

    /* invalidation: both instances stop serving it, at once */
    char *other[] = {"public.products"};
    lead_and_put(a, "acme", 2, 8, other, 1, NULL);
    cache_redis_invalidate(b, "acme", "public.customers");
    expect_miss(b, "acme", 1001); /* on b's connection, after its INCR */
    expect_miss(a, "acme", 1); /* and so on every other, from then on */
    expect_hit(a, "acme", 2, 8); /* an untouched table's entry stays */
    ck_assert(run_until(invalidation_seen, &ea, 5000)); /* and everyone hears of it */
    ck_assert_str_eq(ea.last_relation, "public.customers");

    /* the lock read the new generation: an entry made now is served again */
    lead_and_put(a, "acme", 1, 9, rels, 2, NULL);
    expect_hit(b, "acme", 1, 9);

    cache_redis_free(a);
    cache_redis_free(b);
    bases_free();
    server_teardown();
}
END_TEST

START_TEST(cross_instance_single_flight)
{
    server_setup(false, false);
    bases_new();
    char url[256];
    snprintf(url, sizeof url, "%s", url_for(&server, false));
    PgwRedis *a = client(base_a, url, NULL, NULL, NULL);
    PgwRedis *b = client(base_b, url, NULL, NULL, NULL);
    ck_assert(run_until(is_ready, a, 5000));
    ck_assert(run_until(is_ready, b, 5000));
    /* both miss at once; a wins the lock, b learns it is held */
    PgwCacheKey k = key_n(5);
    Got la = {0}, lb = {0};
    ck_assert_ptr_nonnull(cache_redis_lock(a, "acme", &k, 10000, 0, NULL, got_lock, &la));
    ck_assert(run_until(got_done_p, &la, 5000));
    ck_assert_ptr_nonnull(cache_redis_lock(b, "acme", &k, 10000, 0, NULL, got_lock, &lb));
    ck_assert(run_until(got_done_p, &lb, 5000));
    ck_assert_int_eq(la.st, PGW_REDIS_OK);
    ck_assert_int_eq(lb.st, PGW_REDIS_MISS);
    /* b waits (a long poll: only the announcement can wake it in time) */
    Got w = {0};
    int64_t t0 = now_ms();
    ck_assert_ptr_nonnull(cache_redis_wait(b, "acme", &k, 30000, got_done, &w));
    PgwCacheEntry *e = sample_entry(3);
    cache_redis_put(a, "acme", &k, NULL, e, 60000, 0, NULL, la.gens);
    cache_entry_release(e);
    ck_assert(run_until(got_done_p, &w, 10000));
    ck_assert_int_eq(w.st, PGW_REDIS_OK);
    ck_assert_msg(now_ms() - t0 < 10000, "woken by the poll, not the announcement");
    expect_hit(b, "acme", 5, 3);
    /* the lock was released with the put: the next leader can take it */
    Got again = {0};
    ck_assert_ptr_nonnull(cache_redis_lock(b, "acme", &k, 10000, 0, NULL, got_lock, &again));
    ck_assert(run_until(got_done_p, &again, 5000));
    ck_assert_int_eq(again.st, PGW_REDIS_OK);
    /* a leader without an answer unlocks: a waiter wakes to look again */
    Got w2 = {0};
    ck_assert_ptr_nonnull(cache_redis_wait(a, "acme", &k, 30000, got_done, &w2));
    cache_redis_unlock(b, "acme", &k);
    ck_assert(run_until(got_done_p, &w2, 10000));
    Got third = {0};
    ck_assert_ptr_nonnull(cache_redis_lock(a, "acme", &k, 10000, 0, NULL, got_lock, &third));
    ck_assert(run_until(got_done_p, &third, 5000));
    ck_assert_int_eq(third.st, PGW_REDIS_OK);
    /* a wait that nobody ends comes back when its poll time is up */
    Got w3 = {0};
    PgwCacheKey other = key_n(6);
    ck_assert_ptr_nonnull(cache_redis_wait(a, "acme", &other, 50, got_done, &w3));
    ck_assert(run_until(got_done_p, &w3, 5000));
    ck_assert_int_eq(w3.st, PGW_REDIS_OK);
    /* and a cancelled operation never calls back */
    Got never = {0};
    PgwRedisOp *op = cache_redis_get(a, "acme", &k, got_entry, &never);
    cache_redis_cancel(op);
    Got after = get(a, "acme", 5); /* runs the loop past the cancelled reply */
    cache_entry_release(after.e);
    ck_assert(!never.done);
    cache_redis_free(a);
    cache_redis_free(b);
    bases_free();
    server_teardown();
}
END_TEST

START_TEST(clear_by_tenant)
{
    server_setup(false, false);
    bases_new();
    char url[256];
    snprintf(url, sizeof url, "%s", url_for(&server, false));
    Events eb = {0};
    PgwRedis *a = client(base_a, url, NULL, NULL, NULL);
    PgwRedis *b = client(base_b, url, NULL, on_event, &eb);
    ck_assert(run_until(is_ready, a, 5000));
    ck_assert(run_until(is_ready, b, 5000));
    /* more than one SCAN's worth, all in flight at once */
    static Got locks[1200];
    for (int i = 0; i < 1200; i++) {
        PgwCacheKey k = key_n(100 + i);
        memset(&locks[i], 0, sizeof locks[i]);
        ck_assert_ptr_nonnull(cache_redis_lock(a, "acme", &k, 5000, 0, NULL, got_lock, &locks[i]));
    }
    ck_assert(run_until(got_done_p, &locks[1199], 10000)); /* replies come in order */
    PgwCacheEntry *e = sample_entry(1);
    for (int i = 0; i < 1200; i++) {
        PgwCacheKey k = key_n(100 + i);
        ck_assert_int_eq(locks[i].st, PGW_REDIS_OK);
        cache_redis_put(a, "acme", &k, NULL, e, 60000, 0, NULL, locks[i].gens);
    }
    cache_entry_release(e);
    lead_and_put(a, "globex", 1, 2, NULL, 0, NULL);
    lead_and_put(a, "acme:x", 2, 2, NULL, 0, NULL); /* a name that extends "acme" */
    Got g = {0};
    ck_assert_ptr_nonnull(cache_redis_clear(a, "acme", got_done, &g));
    ck_assert(run_until(got_done_p, &g, 20000));
    ck_assert_int_eq(g.st, PGW_REDIS_OK);
    ck_assert_int_eq(g.n, 1200);
    expect_miss(b, "acme", 100);
    expect_miss(b, "acme", 1299);
    expect_hit(b, "globex", 1, 2);
    expect_hit(b, "acme:x", 2, 2);
    Got all = {0};
    ck_assert_ptr_nonnull(cache_redis_clear(b, NULL, got_done, &all));
    ck_assert(run_until(got_done_p, &all, 20000));
    ck_assert_int_eq(all.n, 2);
    expect_miss(a, "globex", 1);
    cache_redis_free(a);
    cache_redis_free(b);
    bases_free();
    server_teardown();
}
END_TEST

START_TEST(a_wrong_password_is_never_ready)
{
    server_setup(true, false);
    bases_new();
    char url[256];
    snprintf(url, sizeof url, "redis://:wrong@127.0.0.1:%d", server.port);
    PgwRedisStats before, after;
    cache_redis_stats(&before);
    PgwRedis *a = client(base_a, url, NULL, NULL, NULL);
    ck_assert(!run_until(is_ready, a, 1000));
    cache_redis_stats(&after);
    ck_assert_int_gt(after.errors, before.errors);
    ck_assert_ptr_null(cache_redis_get(a, "acme", &(PgwCacheKey){{0}}, got_entry, NULL));
    cache_redis_free(a);
    bases_free();
    server_teardown();
}
END_TEST

START_TEST(redis_killed_stopped_and_back)
{
    server_setup(false, false);
    bases_new();
    char url[256];
    snprintf(url, sizeof url, "%s", url_for(&server, false));
    PgwRedis *a = client(base_a, url, NULL, NULL, NULL);
    ck_assert(run_until(is_ready, a, 5000));
    lead_and_put(a, "acme", 1, 1, NULL, 0, NULL);
    expect_hit(a, "acme", 1, 1);
    PgwRedisStats s0, s1, s2;
    cache_redis_stats(&s0);

    /* stopped: it takes the connection but never answers */
    kill(server.pid, SIGSTOP);
    int64_t t0 = now_ms();
    Got g = get(a, "acme", 1);
    ck_assert_int_eq(g.st, PGW_REDIS_BYPASS);
    ck_assert_msg(now_ms() - t0 < 3000, "a silent Redis held a statement for %lld ms",
                  (long long)(now_ms() - t0));
    cache_redis_stats(&s1);
    ck_assert_int_gt(s1.timeouts, s0.timeouts);
    ck_assert_int_eq(s1.outages, s0.outages + 1);
    /* meanwhile every call bypasses at once, and the outage is counted once */
    for (int i = 0; i < 50; i++) {
        Got x = get(a, "acme", 1);
        ck_assert_int_eq(x.st, PGW_REDIS_BYPASS);
    }
    kill(server.pid, SIGCONT);
    ck_assert_msg(run_until(is_ready, a, 15000), "never reconnected after SIGCONT");
    expect_hit(a, "acme", 1, 1);

    /* killed: gone with its data; started again: reconnects */
    server_kill(&server);
    Got k = get(a, "acme", 1);
    ck_assert_int_eq(k.st, PGW_REDIS_BYPASS);
    server_start(&server);
    ck_assert_msg(run_until(is_ready, a, 15000), "never reconnected after a restart");
    expect_miss(a, "acme", 1);
    cache_redis_stats(&s2);
    ck_assert_int_eq(s2.outages, s1.outages + 1);
    ck_assert_int_gt(s2.reconnects, s1.reconnects);
    cache_redis_free(a);
    bases_free();
    server_teardown();
}
END_TEST

START_TEST(rediss_through_the_tunnel)
{
    server_setup(false, true);
    bases_new();
    char url[256], ca[128], other[128];
    snprintf(url, sizeof url, "%s", url_for(&server, true));
    snprintf(ca, sizeof ca, "%s/ca.pem", server.dir);
    snprintf(other, sizeof other, "%s/other.pem", server.dir);
    PgwRedis *a = client(base_a, url, ca, NULL, NULL);
    ck_assert_msg(run_until(is_ready, a, 10000), "TLS connection never became ready");
    char *rels[] = {"public.orders"};
    lead_and_put(a, "acme", 1, 4, rels, 1, NULL);
    expect_hit(a, "acme", 1, 4);
    /* a certificate the configured CA did not sign is refused */
    PgwRedisStats before, after;
    cache_redis_stats(&before);
    PgwRedis *b = client(base_b, url, other, NULL, NULL);
    ck_assert(!run_until(is_ready, b, 1500));
    cache_redis_stats(&after);
    ck_assert_int_gt(after.errors + after.timeouts, before.errors + before.timeouts);
    cache_redis_free(a);
    cache_redis_free(b);
    bases_free();
    server_teardown();
}
END_TEST

START_TEST(generic_integer_commands)
{
    server_setup(false, false);
    bases_new();
    char url[256];
    snprintf(url, sizeof url, "%s", url_for(&server, false));
    PgwRedis *a = client(base_a, url, NULL, NULL, NULL);
    ck_assert(run_until(is_ready, a, 5000));
    char *k = cache_redis_key(a, "rate", "acme tenant");
    ck_assert_str_eq(k, "test:rate:acme%20tenant");
    for (int i = 1; i <= 3; i++) {
        const char *argv[] = {"INCR", k};
        Got g = {0};
        ck_assert_ptr_nonnull(cache_redis_command_int(a, 2, argv, NULL, got_done, &g));
        ck_assert(run_until(got_done_p, &g, 5000));
        ck_assert_int_eq(g.st, PGW_REDIS_OK);
        ck_assert_int_eq(g.n, i);
    }
    const char *bad[] = {"GET", k}; /* a string reply is not an integer */
    Got g = {0};
    ck_assert_ptr_nonnull(cache_redis_command_int(a, 2, bad, NULL, got_done, &g));
    ck_assert(run_until(got_done_p, &g, 5000));
    ck_assert_int_eq(g.st, PGW_REDIS_BYPASS);
    free(k);
    cache_redis_free(a);
    bases_free();
    server_teardown();
}
END_TEST

static bool time_passed(void *arg)
{
    return now_ms() > *(int64_t *)arg;
}

typedef struct RateGot {
    bool done;
    PgwRedisStatus st;
    PgwRedisRate rate;
} RateGot;

static void got_rate(void *arg, PgwRedisStatus st, const PgwRedisRate *rate)
{
    RateGot *g = arg;
    g->done = true;
    g->st = st;
    if (rate)
        g->rate = *rate;
}

static bool rate_done(void *arg)
{
    return ((RateGot *)arg)->done;
}

static RateGot take(PgwRedis *r, const char *tenant, int rate, int period_ms, long budget)
{
    RateGot g = {0};
    ck_assert_ptr_nonnull(cache_redis_rate_take(r, tenant, rate, period_ms, budget, got_rate, &g));
    ck_assert(run_until(rate_done, &g, 5000));
    ck_assert_int_eq(g.st, PGW_REDIS_OK);
    return g;
}

/* One limit per tenant however many instances answer it. */
START_TEST(rate_limit_and_budget_across_instances)
{
    server_setup(false, false);
    bases_new();
    char url[256];
    snprintf(url, sizeof url, "%s", url_for(&server, false));
    PgwRedis *a = client(base_a, url, NULL, NULL, NULL);
    PgwRedis *b = client(base_b, url, NULL, NULL, NULL);
    ck_assert(run_until(is_ready, a, 5000));
    ck_assert(run_until(is_ready, b, 5000));
    /* 5 per minute: three on a, two on b, then both are refused */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(take(i < 3 ? a : b, "acme", 5, 60000, 0).rate.verdict, PGW_REDIS_RATE_OK);
    RateGot no = take(a, "acme", 5, 60000, 0);
    ck_assert_int_eq(no.rate.verdict, PGW_REDIS_RATE_LIMITED);
    ck_assert_int_gt(no.rate.wait_ms, 50000);
    ck_assert_int_le(no.rate.wait_ms, 60000);
    ck_assert_int_eq(take(b, "acme", 5, 60000, 0).rate.verdict, PGW_REDIS_RATE_LIMITED);
    ck_assert_int_eq(take(b, "globex", 5, 60000, 0).rate.verdict, PGW_REDIS_RATE_OK);
    /* a lowered limit after a reload counts the latest calls */
    ck_assert_int_eq(take(a, "acme", 2, 60000, 0).rate.verdict, PGW_REDIS_RATE_LIMITED);
    /* a short window lets calls through again once it has passed */
    ck_assert_int_eq(take(a, "initech", 1, 200, 0).rate.verdict, PGW_REDIS_RATE_OK);
    RateGot wait = take(b, "initech", 1, 200, 0);
    ck_assert_int_eq(wait.rate.verdict, PGW_REDIS_RATE_LIMITED);
    int64_t until = now_ms() + wait.rate.wait_ms + 50;
    ck_assert(run_until(time_passed, &until, 5000));
    ck_assert_int_eq(take(b, "initech", 1, 200, 0).rate.verdict, PGW_REDIS_RATE_OK);
    /* the day's token budget, spent on two instances */
    cache_redis_tokens_add(a, "umbrella", 600);
    cache_redis_tokens_add(b, "umbrella", 500);
    ck_assert_int_eq(take(b, "umbrella", 0, 0, 2000).rate.verdict, PGW_REDIS_RATE_OK);
    ck_assert_int_eq(take(a, "umbrella", 0, 0, 1000).rate.verdict, PGW_REDIS_RATE_BUDGET);
    ck_assert_int_eq(take(a, "umbrella", 0, 0, 1000).rate.tokens_today, 1100);
    cache_redis_free(a);
    cache_redis_free(b);
    bases_free();
    server_teardown();
}
END_TEST

typedef struct ValueGot {
    bool done;
    PgwRedisStatus st;
    char value[64];
} ValueGot;

static void got_value(void *arg, PgwRedisStatus st, const char *v, size_t len)
{
    ValueGot *g = arg;
    g->done = true;
    g->st = st;
    snprintf(g->value, sizeof g->value, "%.*s", (int)len, v ? v : "");
}

static bool value_done(void *arg)
{
    return ((ValueGot *)arg)->done;
}

START_TEST(shared_translation_cache)
{
    server_setup(false, false);
    bases_new();
    char url[256];
    snprintf(url, sizeof url, "%s", url_for(&server, false));
    PgwRedis *a = client(base_a, url, NULL, NULL, NULL);
    ck_assert(run_until(is_ready, a, 5000));
    const char *q = "acme|top customers|gpt-4o-mini";
    ValueGot g = {0};
    ck_assert_ptr_nonnull(cache_redis_kv_get(a, "ask", q, got_value, &g));
    ck_assert(run_until(value_done, &g, 5000));
    ck_assert_int_eq(g.st, PGW_REDIS_MISS);
    cache_redis_kv_set(a, "ask", q, "SELECT name FROM customers", 60000);
    ValueGot h = {0};
    ck_assert_ptr_nonnull(cache_redis_kv_get(a, "ask", q, got_value, &h));
    ck_assert(run_until(value_done, &h, 5000));
    ck_assert_int_eq(h.st, PGW_REDIS_OK);
    ck_assert_str_eq(h.value, "SELECT name FROM customers");
    /* cancelled: never called back, nothing leaks */
    ValueGot never = {0};
    cache_redis_cancel(cache_redis_kv_get(a, "ask", q, got_value, &never));
    ValueGot last = {0};
    ck_assert_ptr_nonnull(cache_redis_kv_get(a, "ask", q, got_value, &last));
    ck_assert(run_until(value_done, &last, 5000));
    ck_assert(!never.done);
    cache_redis_free(a);
    bases_free();
    server_teardown();
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (mkdtemp(root_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    Suite *s = suite_create("cache_redis");
    TCase *tc = tcase_create("cache_redis");
    tcase_set_timeout(tc, 90);
    tcase_add_loop_test(tc, urls, 0, (int)PGW_ARRAY_LEN(url_cases));
    tcase_add_test(tc, two_instances_share_entries);
    tcase_add_test(tc, cross_instance_single_flight);
    tcase_add_test(tc, clear_by_tenant);
    tcase_add_test(tc, a_wrong_password_is_never_ready);
    tcase_add_test(tc, redis_killed_stopped_and_back);
    tcase_add_test(tc, rediss_through_the_tunnel);
    tcase_add_test(tc, generic_integer_commands);
    tcase_add_test(tc, rate_limit_and_budget_across_instances);
    tcase_add_test(tc, shared_translation_cache);
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
