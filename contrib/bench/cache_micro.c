/*
 * cache_micro.c — what the result cache's pieces cost, one at a time, on
 * this machine: building a key, deciding eligibility (the price of a miss
 * before the backend), a memory hit (one and two threads), memory per
 * entry, and a Redis hit's latency (p50/p99, one client) for a small and a
 * large answer against a redis-server it starts on a free port.
 *
 *     make -C BUILD contrib/bench/cache_micro && BUILD/contrib/bench/cache_micro
 *
 * Figures are printed, never asserted: speed is measured here, not tested.
 * The end-to-end figures (pgbench through pgwarden with the cache, hit
 * against direct execution) need the runtime's integration and belong to
 * contrib/bench/run.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cache.h"
#include "cache_key.h"
#include "cache_redis.h"
#include "config.h"
#include "policy.h"
#include "schema.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A pgbench point query's answer: RowDescription, one DataRow, CommandComplete. */
static PgwCacheEntry *pgbench_answer(size_t extra)
{
    PgwBuf b;
    buf_init(&b);
    buf_append_byte(&b, 'T');
    buf_append_u32(&b, 4 + 2 + 9 + 18);
    buf_append_u16(&b, 1);
    buf_append_cstr(&b, "abalance");
    buf_append_u32(&b, 16397);
    buf_append_u16(&b, 3);
    buf_append_u32(&b, 23);
    buf_append_u16(&b, 4);
    buf_append_u32(&b, 0xffffffffu);
    buf_append_u16(&b, 0);
    buf_append_byte(&b, 'D');
    buf_append_u32(&b, (uint32_t)(4 + 2 + 4 + 4 + extra));
    buf_append_u16(&b, 1);
    buf_append_u32(&b, (uint32_t)(4 + extra));
    buf_append_str(&b, "-123");
    for (size_t i = 0; i < extra; i++)
        buf_append_byte(&b, 'x');
    buf_append_byte(&b, 'C');
    buf_append_u32(&b, 4 + 9);
    buf_append_cstr(&b, "SELECT 1");
    PgwCacheEntry *e = cache_entry_new(PGW_CACHE_SIMPLE, b.data, b.len, 0, false, 1);
    buf_free(&b);
    return e;
}

static PgwCacheKey key_n(unsigned n)
{
    PgwCacheKey k;
    uint8_t seed[8];
    memcpy(seed, &n, sizeof n);
    memcpy(seed + 4, &n, sizeof n);
    for (size_t i = 0; i < sizeof k.digest; i++)
        k.digest[i] = (uint8_t)(seed[i % 8] * 131 + i * 17);
    memcpy(k.digest, &n, sizeof n);
    return k;
}

/* ---- keys and eligibility ---- */

static const char *config_text = "[pgwarden]\nauth_type = trust\ndefault_access = deny\n"
                                 "[users]\nalice = acme\n"
                                 "[tenant.acme]\nbackend = host=127.0.0.1 dbname=bench\n"
                                 "[table.public.pgbench_accounts]\nrow_filter = bid = 1\n"
                                 "[cache]\nttl = 60s\n";

static void bench_keys(void)
{
    PgwConfig *cfg;
    char err[256];
    if (config_parse_string("bench.ini", config_text, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    static const char *const cols[4][3] = {
        {"aid", "integer", "N"},
        {"bid", "integer", "N"},
        {"abalance", "integer", "N"},
        {"filler", "character(84)", "S"},
    };
    /* relation rows; the columns past typcategory stay NULL */
    const char *rows[4 * SCHEMA_INTROSPECTION_NCOLS] = {NULL};
    char attnum[4][4];
    for (int i = 0; i < 4; i++) {
        const char **r = rows + i * SCHEMA_INTROSPECTION_NCOLS;
        snprintf(attnum[i], sizeof attnum[i], "%d", i + 1);
        r[0] = "public";
        r[1] = "pgbench_accounts";
        r[2] = "r";
        r[3] = attnum[i];
        r[4] = cols[i][0];
        r[5] = cols[i][1];
        r[6] = cols[i][2];
    }
    PgwSchema *schema = schema_from_rows(4, SCHEMA_INTROSPECTION_NCOLS, rows);
    const PgwTenant *tenant = config_tenant(cfg, "acme");
    const char *sql = "SELECT abalance FROM pgbench_accounts WHERE aid = 517;";
    PgwCacheSetting settings[] = {
        {"TimeZone", "UTC"},
        {"DateStyle", "ISO, MDY"},
        {"IntervalStyle", "postgres"},
        {"client_encoding", "UTF8"},
        {"standard_conforming_strings", "on"},
        {"integer_datetimes", "on"},
        {"application_name", "pgbench"},
    };
    const int n = 200000;
    uint8_t pfp[PGW_CACHE_DIGEST_LEN], sfp[PGW_CACHE_DIGEST_LEN];
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
        cache_policy_fingerprint(cfg, tenant, pfp);
        cache_schema_fingerprint(schema, sfp);
    }
    double fp_ns = (now_us() - t0) * 1000 / n;
    PgwCacheKeyInput in = {.tenant = "acme",
                           .policy_fp = pfp,
                           .schema_fp = sfp,
                           .shape = PGW_CACHE_SIMPLE,
                           .raw_text = true,
                           .sql = sql,
                           .nsettings = PGW_ARRAY_LEN(settings),
                           .settings = settings};
    PgwCacheKey k;
    t0 = now_us();
    for (int i = 0; i < n; i++)
        if (cache_key_build(&in, &k, NULL, 0) != 0)
            exit(1);
    double key_ns = (now_us() - t0) * 1000 / n;

    PgwPolicyCtx ctx = {.cfg = cfg, .tenant = tenant, .schema = schema};
    PgwPolicyResult pr;
    memset(&pr, 0, sizeof pr);
    if (policy_rewrite(&ctx, sql, &pr) != 0 || pr.decision != PGW_POLICY_ALLOW) {
        fprintf(stderr, "policy refused the bench query\n");
        exit(1);
    }
    PgwCacheStatement st = {.cfg = cfg, .tenant = tenant, .schema = schema, .policy = &pr};
    PgwCacheVerdict v;
    const int m = 5000;
    t0 = now_us();
    for (int i = 0; i < m; i++) {
        cache_eligible(&st, &v);
        cache_verdict_free(&v);
    }
    double elig_us = (now_us() - t0) / m;
    cache_eligible(&st, &v);
    printf("keys\n");
    printf("  policy+schema fingerprints (memoized)     %8.0f ns\n", fp_ns);
    printf("  raw-text key, 7 settings                  %8.0f ns\n", key_ns);
    printf("  eligibility of the rewrite (a miss only)  %8.1f us   (%s)\n", elig_us,
           v.cacheable ? "cacheable" : v.reason);
    cache_verdict_free(&v);
    policy_result_free(&pr);
    schema_free(schema);
    config_free(cfg);
}

/* ---- the memory store ---- */

typedef struct HitArgs {
    PgwCache *c;
    int n, keys;
    double ns;
} HitArgs;

static void *hit_loop(void *arg)
{
    HitArgs *a = arg;
    double t0 = now_us();
    for (int i = 0; i < a->n; i++) {
        PgwCacheRequest rq = {.key = key_n((unsigned)(i % a->keys)), .tenant = "acme"};
        PgwCacheEntry *hit;
        PgwCacheFlight *lead;
        PgwCacheWaiter *wait;
        if (cache_lookup(a->c, &rq, &hit, &lead, &wait) != PGW_CACHE_HIT)
            exit(2);
        cache_entry_release(hit);
    }
    a->ns = (now_us() - t0) * 1000 / a->n;
    return NULL;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static void bench_memory(void)
{
    const int keys = 1000, entries = 100000;
    PgwCacheOptions o = {.max_memory = (size_t)1 << 34, .max_entry = 1 << 20};
    PgwCache *c = cache_new(&o);
    char *rels[] = {"public.pgbench_accounts"};
    PgwCacheEntry *e = pgbench_answer(0);
    size_t answer_len = cache_entry_answer(e)->len;
    cache_entry_release(e);
    long rss0 = rss_kb();
    for (int i = 0; i < entries; i++) {
        PgwCacheKey k = key_n((unsigned)i), raw = key_n((unsigned)(i + 10000000));
        e = pgbench_answer(0);
        cache_put(c, "acme", &k, e, 60000, 1, rels);
        cache_alias(c, "acme", &raw, &k, 60000);
        cache_entry_release(e);
    }
    long rss1 = rss_kb();
    PgwCacheCounters t;
    cache_totals(c, &t, NULL);
    HitArgs one = {c, 2000000, keys, 0};
    hit_loop(&one);
    HitArgs two[2] = {{c, 1000000, keys, 0}, {c, 1000000, keys, 0}};
    pthread_t th[2];
    double t0 = now_us();
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, hit_loop, &two[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    double both = (now_us() - t0) * 1000 / 2000000;
    printf("memory store\n");
    printf("  hit (lookup, reference, release)          %8.0f ns   one thread\n", one.ns);
    printf("  hit, two threads at once                  %8.0f ns   per hit, aggregate\n", both);
    printf("  a pgbench answer (%zu bytes) + raw alias   %8zu bytes counted by max_memory\n",
           answer_len, t.bytes / entries);
    printf("                                            %8ld bytes of RSS (malloc included)\n",
           (rss1 - rss0) * 1024 / entries);
    cache_free(c);
}

/* ---- Redis ---- */

static pid_t redis_pid;
static int redis_port;

static void redis_start(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    redis_port = ntohs(a.sin_port);
    char port[16];
    snprintf(port, sizeof port, "%d", redis_port);
    fflush(stdout); /* or the child's exit writes it again */
    redis_pid = fork();
    if (redis_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        freopen("/dev/null", "w", stdout);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        redisContext *rc = redisConnect("127.0.0.1", redis_port);
        bool ok = rc && !rc->err;
        if (rc)
            redisFree(rc);
        if (ok)
            return;
        struct timespec p = {0, 10 * 1000 * 1000};
        nanosleep(&p, NULL);
    }
    fprintf(stderr, "redis-server did not start\n");
    exit(1);
}

typedef struct Wait {
    bool done;
    PgwRedisStatus st;
    uint64_t gens[2];
} Wait;

static void on_entry(void *arg, PgwRedisStatus st, PgwCacheEntry *e)
{
    Wait *w = arg;
    w->done = true;
    w->st = st;
    cache_entry_release(e);
}

static void on_lock(void *arg, PgwRedisStatus st, const uint64_t *gens)
{
    Wait *w = arg;
    w->done = true;
    w->st = st;
    w->gens[0] = gens ? gens[0] : 0;
}

static void loop_until(struct event_base *base, const bool *done)
{
    while (!*done)
        event_base_loop(base, EVLOOP_ONCE);
}

static void bench_redis_size(struct event_base *base, PgwRedis *r, size_t extra, int n)
{
    char *rels[] = {"public.pgbench_accounts"};
    PgwCacheKey k = key_n((unsigned)extra + 7);
    Wait w = {0};
    if (!cache_redis_lock(r, "acme", &k, 10000, 1, rels, on_lock, &w))
        exit(3);
    loop_until(base, &w.done);
    PgwCacheEntry *e = pgbench_answer(extra);
    size_t len = cache_entry_answer(e)->len;
    cache_redis_put(r, "acme", &k, NULL, e, 600000, 1, rels, w.gens);
    cache_entry_release(e);
    double *lat = calloc((size_t)n, sizeof(double));
    for (int i = 0; i < n; i++) {
        Wait g = {0};
        double t0 = now_us();
        if (!cache_redis_get(r, "acme", &k, on_entry, &g))
            exit(3);
        loop_until(base, &g.done);
        lat[i] = now_us() - t0;
        if (g.st != PGW_REDIS_OK)
            exit(4);
    }
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    printf("  hit, %7zu-byte answer, one client      p50 %6.0f us   p99 %6.0f us\n", len,
           lat[n / 2], lat[n * 99 / 100]);
    free(lat);
}

static bool ready_flag(PgwRedis *r)
{
    return cache_redis_ready(r);
}

static void bench_redis(void)
{
    redis_start();
    struct event_base *base = event_base_new();
    char url[64], err[256];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", redis_port);
    PgwRedisOptions o = {.url = url, .prefix = "bench:", .timeout_ms = 1000};
    PgwRedis *r = cache_redis_new(base, &o, err, sizeof err);
    if (r == NULL) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    while (!ready_flag(r))
        event_base_loop(base, EVLOOP_ONCE);
    printf("redis (local redis-server, lookup script with one generation check)\n");
    bench_redis_size(base, r, 0, 20000);
    bench_redis_size(base, r, 100000, 2000);
    cache_redis_free(r);
    event_base_free(base);
    kill(redis_pid, SIGKILL);
    waitpid(redis_pid, NULL, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    bench_keys();
    bench_memory();
    bench_redis();
    return 0;
}
