/*
 * cache_redis.c — the result cache in Redis; see cache_redis.h.
 *
 * Connections. Each PgwRedis has two hiredis asynchronous connections on its
 * worker's event base: one for commands, one subscribed to the events
 * channel (a subscribed connection can do nothing else). A connection is
 * DOWN, CONNECTING or READY; READY means the handshake (AUTH, SELECT, the
 * scripts loaded, or SUBSCRIBE) has been answered. Only a READY command
 * connection accepts operations; otherwise calls return NULL and the caller
 * bypasses the cache, so nothing waits on a Redis that is not there.
 *
 * Timeouts. hiredis 0.14 has no timeouts of its own in the asynchronous API,
 * so every operation carries a libevent timer. A reply later than
 * redis_timeout is an outage: the connection is freed, which makes hiredis
 * call every pending callback with a NULL reply, and each of those
 * operations completes with BYPASS. Reconnection waits 100 ms, doubling to
 * 5 s, with jitter. Names are resolved with evdns (a numeric address or
 * /etc/hosts answers at once), because hiredis would call getaddrinfo.
 *
 * Lifetimes. An operation is freed when hiredis has called back for every
 * command it sent (inflight == 0) and its own callback has run or been
 * withdrawn (finished): hiredis calls back exactly once per command, with a
 * NULL reply on disconnect or free, so nothing leaks and nothing is freed
 * under hiredis' feet.
 *
 * Atomicity. Lookup, lock, store and unlock are Lua scripts (loaded once per
 * connection, run by SHA): lookup follows an alias and checks the entry's
 * generations in one round trip; lock takes SET NX PX and reads the
 * generations together; store writes entry and alias, releases the lock only
 * if it is still ours, and publishes "done". The scripts touch keys they
 * compute (alias targets, generation keys), which standalone Redis and
 * Sentinel allow and Redis Cluster does not: Cluster is not supported.
 */
#include "cache_redis.h"

#include "buf.h"
#include "cache_redis_tls.h"
#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/dns.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- the scripts ------------------------------------------------------------------ */

static const char get_script[] = "local v = redis.call('GET', KEYS[1])\n"
                                 "if not v then return false end\n"
                                 "if string.sub(v, 1, 5) == 'PGWA ' then\n"
                                 "  v = redis.call('GET', string.sub(v, 6))\n"
                                 "  if not v then return false end\n"
                                 "end\n"
                                 "if string.sub(v, 1, 6) ~= 'PGWC1 ' then return false end\n"
                                 "local nl = string.find(v, '\\n', 7, true)\n"
                                 "if not nl then return false end\n"
                                 "local hl = tonumber(string.sub(v, 7, nl - 1))\n"
                                 "if not hl then return false end\n"
                                 "local hdr = string.sub(v, nl + 1, nl + hl)\n"
                                 "for k, g in string.gmatch(hdr, 'g ([^ \\n]+) (%d+)\\n') do\n"
                                 "  if (redis.call('GET', k) or '0') ~= g then return false end\n"
                                 "end\n"
                                 "return v\n";

static const char lock_script[] =
    "local got = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])\n"
    "local out = {got and 1 or 0}\n"
    "for i = 2, #KEYS do out[i] = redis.call('GET', KEYS[i]) or '0' end\n"
    "return out\n";

static const char put_script[] =
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "if KEYS[3] then redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[2]) end\n"
    "if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end\n"
    "redis.call('PUBLISH', ARGV[5], ARGV[6])\n"
    "return 1\n";

static const char unlock_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end\n"
    "redis.call('PUBLISH', ARGV[2], ARGV[3])\n"
    "return 1\n";

enum { SCRIPT_GET, SCRIPT_LOCK, SCRIPT_PUT, SCRIPT_UNLOCK, NSCRIPTS };
static const char *const scripts[NSCRIPTS] = {get_script, lock_script, put_script, unlock_script};

/* ---- process-wide state: counters and the outage log ------------------------------ */

static PgwRedisStats stats;
static pthread_mutex_t outage_mu = PTHREAD_MUTEX_INITIALIZER;
static bool outage, ever_up;
static int64_t outage_since_ms;
static uint64_t outage_bypassed_at_start;

#define COUNT(field) __atomic_add_fetch(&stats.field, 1, __ATOMIC_RELAXED)

void cache_redis_stats(PgwRedisStats *out)
{
    out->outages = __atomic_load_n(&stats.outages, __ATOMIC_RELAXED);
    out->timeouts = __atomic_load_n(&stats.timeouts, __ATOMIC_RELAXED);
    out->errors = __atomic_load_n(&stats.errors, __ATOMIC_RELAXED);
    out->reconnects = __atomic_load_n(&stats.reconnects, __ATOMIC_RELAXED);
    out->bypassed = __atomic_load_n(&stats.bypassed, __ATOMIC_RELAXED);
    out->connected = __atomic_load_n(&stats.connected, __ATOMIC_RELAXED);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One line when an outage begins, one when it ends: never one per
 * statement, whatever the number of workers and statements. */
static void outage_begin(const char *where, const char *why)
{
    pthread_mutex_lock(&outage_mu);
    if (!outage) {
        outage = true;
        outage_since_ms = mono_ms();
        outage_bypassed_at_start = __atomic_load_n(&stats.bypassed, __ATOMIC_RELAXED);
        COUNT(outages);
        log_warning("redis: %s is unavailable (%s); statements bypass the result cache until it "
                    "is back",
                    where, why);
    }
    pthread_mutex_unlock(&outage_mu);
}

static void outage_end(const char *where)
{
    pthread_mutex_lock(&outage_mu);
    if (outage) {
        outage = false;
        uint64_t bypassed =
            __atomic_load_n(&stats.bypassed, __ATOMIC_RELAXED) - outage_bypassed_at_start;
        log_info("redis: %s is available again after %.1f s (%llu cache operations bypassed)",
                 where, (double)(mono_ms() - outage_since_ms) / 1000.0,
                 (unsigned long long)bypassed);
    } else if (!ever_up) {
        log_info("redis: connected to %s", where);
    }
    ever_up = true;
    pthread_mutex_unlock(&outage_mu);
}

/* ---- URLs --------------------------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static char *percent_decode(const char *s, size_t n)
{
    char *out = pgw_malloc(n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n + 1 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

static int parse_db(const char *s, int *db)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno || v < 0 || v > 1000000)
        return -1;
    *db = (int)v;
    return 0;
}

int cache_redis_parse_url(const char *url, PgwRedisUrl *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    const char *p;
    if (url == NULL || *url == '\0') {
        snprintf(err, errlen, "the Redis URL is empty");
        return -1;
    }
    if (strncmp(url, "unix://", 7) == 0) {
        p = url + 7;
        const char *q = strchr(p, '?');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 0 || p[0] != '/') {
            snprintf(err, errlen, "%s: a unix:// URL needs an absolute socket path", url);
            return -1;
        }
        out->unix_path = pgw_strndup(p, n);
        if (q != NULL && (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, &out->db) < 0)) {
            snprintf(err, errlen, "%s: expected unix:///path[?db=N]", url);
            goto fail;
        }
        return 0;
    }
    if (strncmp(url, "redis://", 8) == 0) {
        p = url + 8;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        p = url + 9;
        out->tls = true;
    } else {
        snprintf(err, errlen, "%s: expected redis://, rediss:// or unix://", url);
        return -1;
    }
    const char *at = strrchr(p, '@');
    const char *slash = strchr(at ? at : p, '/');
    if (strchr(p, '?') != NULL) {
        snprintf(err, errlen, "%s: query parameters are not supported", url);
        return -1;
    }
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon != NULL) {
            if (colon > p)
                out->user = percent_decode(p, (size_t)(colon - p));
            out->password = percent_decode(colon + 1, (size_t)(at - colon - 1));
        } else {
            /* redis://secret@host: the password alone, as redis-cli reads it */
            out->password = percent_decode(p, (size_t)(at - p));
        }
        p = at + 1;
    }
    const char *end = slash ? slash : p + strlen(p);
    const char *port = NULL;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (close == NULL) {
            snprintf(err, errlen, "%s: unclosed [ in the host", url);
            goto fail;
        }
        out->host = pgw_strndup(p + 1, (size_t)(close - p - 1));
        if (close + 1 < end && close[1] == ':')
            port = close + 2;
        else if (close + 1 != end) {
            snprintf(err, errlen, "%s: unexpected text after the host", url);
            goto fail;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        out->host = pgw_strndup(p, (size_t)((colon ? colon : end) - p));
        if (colon)
            port = colon + 1;
    }
    if (out->host[0] == '\0') {
        snprintf(err, errlen, "%s: the host is missing", url);
        goto fail;
    }
    if (port != NULL) {
        char num[16];
        size_t n = (size_t)(end - port);
        char *e2;
        if (n == 0 || n >= sizeof num) {
            snprintf(err, errlen, "%s: invalid port", url);
            goto fail;
        }
        memcpy(num, port, n);
        num[n] = '\0';
        long v = strtol(num, &e2, 10);
        if (*e2 != '\0' || v < 1 || v > 65535) {
            snprintf(err, errlen, "%s: invalid port", url);
            goto fail;
        }
        out->port = (int)v;
    }
    if (slash != NULL && slash[1] != '\0' && parse_db(slash + 1, &out->db) < 0) {
        snprintf(err, errlen, "%s: the database must be a number", url);
        goto fail;
    }
    return 0;
fail:
    cache_redis_url_free(out);
    return -1;
}

void cache_redis_url_free(PgwRedisUrl *u)
{
    free(u->host);
    free(u->unix_path);
    free(u->user);
    free(u->password);
    memset(u, 0, sizeof(*u));
}

/* ---- the client --------------------------------------------------------------------- */

typedef enum { CONN_DOWN, CONN_CONNECTING, CONN_READY } ConnState;

typedef struct Conn {
    PgwRedis *r;
    bool sub; /* the subscriber connection */
    ConnState state;
    redisAsyncContext *ac;
    PgwRedisTunnel *tunnel;
    struct event *timer; /* CONNECTING: the deadline; DOWN: the next attempt */
    struct evdns_getaddrinfo_request *dns;
    int backoff_ms;
    int handshake; /* replies still expected before READY */
    bool failed; /* at least one attempt failed: the next one is a reconnect */
    char why[256]; /* what the TLS tunnel said, when it was the one that failed */
} Conn;

typedef enum { OP_GET, OP_LOCK, OP_FIRE, OP_WAIT, OP_CLEAR, OP_INT, OP_RAW } OpKind;

struct PgwRedisOp {
    PgwRedis *r;
    OpKind kind;
    redisAsyncContext *ac; /* where its commands went */
    int inflight;
    bool finished;
    struct event *timer;
    PgwRedisEntryFn entry_fn;
    PgwRedisLockFn lock_fn;
    PgwRedisDoneFn done_fn;
    PgwRedisReplyFn raw_fn;
    void (*raw_release)(void *arg);
    void *arg;
    size_t ngens;
    char *pattern; /* CLEAR */
    char *tenant; /* CLEAR, WAIT */
    long long count;
    char hex[2 * PGW_CACHE_DIGEST_LEN + 1]; /* WAIT */
    PgwRedisOp *wprev, *wnext;
};

struct PgwRedis {
    struct event_base *base;
    struct evdns_base *dns;
    PgwRedisUrl url;
    char *where; /* host:port or the path, for the log */
    char *prefix;
    char *channel;
    int timeout_ms;
    SSL_CTX *ssl;
    char tunnel_dir[64];
    Conn cmd, sub;
    void (*on_event)(void *arg, const PgwRedisEvent *ev);
    void *event_arg;
    char token[48]; /* this worker's lock owner name */
    char sha[NSCRIPTS][41];
    PgwRedisOp *waits;
    bool freeing;
};

static void conn_start(Conn *c);
static void conn_fail(Conn *c, const char *why);
static void op_finish(PgwRedisOp *op, PgwRedisStatus st, PgwCacheEntry *e, const uint64_t *gens,
                      long long n);

/* ---- names --------------------------------------------------------------------------- */

static void append_encoded(PgwBuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '_' || ch == '.' || ch == '-') {
            buf_append_byte(b, ch);
        } else {
            buf_append_byte(b, '%');
            buf_append_byte(b, (uint8_t)hex[ch >> 4]);
            buf_append_byte(b, (uint8_t)hex[ch & 15]);
        }
    }
}

char *cache_redis_key(const PgwRedis *r, const char *kind, const char *part)
{
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, r->prefix);
    buf_append_str(&b, kind);
    buf_append_byte(&b, ':');
    append_encoded(&b, part);
    return buf_steal_str(&b);
}

static char *entry_key(const PgwRedis *r, char kind, const char *tenant, const PgwCacheKey *key)
{
    char hex[2 * PGW_CACHE_DIGEST_LEN + 1];
    cache_key_hex(key, hex);
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, r->prefix);
    buf_append_byte(&b, (uint8_t)kind);
    buf_append_byte(&b, ':');
    append_encoded(&b, tenant);
    buf_append_byte(&b, ':');
    buf_append_str(&b, hex);
    return buf_steal_str(&b);
}

static char *gen_key(const PgwRedis *r, const char *tenant, const char *relation)
{
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, r->prefix);
    buf_append_str(&b, "g:");
    append_encoded(&b, tenant);
    buf_append_byte(&b, ':');
    append_encoded(&b, relation);
    return buf_steal_str(&b);
}

/* ---- operations -------------------------------------------------------------------- */

static void op_free(PgwRedisOp *op)
{
    if (op->kind == OP_WAIT) {
        if (op->wprev)
            op->wprev->wnext = op->wnext;
        else if (op->r->waits == op)
            op->r->waits = op->wnext;
        if (op->wnext)
            op->wnext->wprev = op->wprev;
    }
    if (op->timer)
        event_free(op->timer);
    free(op->pattern);
    free(op->tenant);
    free(op);
}

static void op_maybe_free(PgwRedisOp *op)
{
    if (op->finished && op->inflight == 0)
        op_free(op);
}

static void on_op_timeout(evutil_socket_t fd, short what, void *arg)
{
    PgwRedisOp *op = arg;
    Conn *c = &op->r->cmd;
    if (op->kind == OP_WAIT) {
        op_finish(op, PGW_REDIS_OK, NULL, NULL, 0); /* poll: look again */
        op_maybe_free(op);
        return;
    }
    COUNT(timeouts);
    if (op->ac != NULL && op->ac == c->ac) {
        char why[96];
        snprintf(why, sizeof why, "no reply within %d ms", op->r->timeout_ms);
        /* Frees the context: every pending operation, this one included,
         * completes with BYPASS through its NULL reply. */
        conn_fail(c, why);
        return;
    }
    op_finish(op, PGW_REDIS_BYPASS, NULL, NULL, 0);
    op_maybe_free(op);
}

static PgwRedisOp *op_new(PgwRedis *r, OpKind kind, void *arg)
{
    PgwRedisOp *op = pgw_calloc(1, sizeof(*op));
    op->r = r;
    op->kind = kind;
    op->arg = arg;
    op->finished = kind == OP_FIRE; /* nobody to tell */
    op->timer = evtimer_new(r->base, on_op_timeout, op);
    return op;
}

static void op_finish(PgwRedisOp *op, PgwRedisStatus st, PgwCacheEntry *e, const uint64_t *gens,
                      long long n)
{
    if (op->finished) {
        cache_entry_release(e);
        return;
    }
    op->finished = true;
    event_del(op->timer);
    if (st == PGW_REDIS_BYPASS)
        COUNT(bypassed);
    switch (op->kind) {
    case OP_GET:
        op->entry_fn(op->arg, st, e);
        break;
    case OP_LOCK:
        op->lock_fn(op->arg, st, gens);
        break;
    case OP_WAIT:
    case OP_CLEAR:
    case OP_INT:
        op->done_fn(op->arg, st, n);
        break;
    case OP_RAW:
        op->raw_fn(op->arg, st, NULL); /* a reply goes through on_reply instead */
        break;
    case OP_FIRE:
        break;
    }
}

static bool reply_is_error(const redisReply *reply)
{
    return reply != NULL && reply->type == REDIS_REPLY_ERROR;
}

static void note_error(PgwRedis *r, const redisReply *reply)
{
    COUNT(errors);
    if (reply != NULL && reply->str != NULL && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        /* SCRIPT FLUSH on the server: load them again for next time. */
        for (int i = 0; i < NSCRIPTS && r->cmd.ac; i++)
            redisAsyncCommand(r->cmd.ac, NULL, NULL, "SCRIPT LOAD %s", scripts[i]);
    }
}

static PgwCacheEntry *decode_entry(const char *v, size_t len)
{
    if (len < 8 || memcmp(v, "PGWC1 ", 6) != 0)
        return NULL;
    const char *nl = memchr(v + 6, '\n', len - 6);
    if (nl == NULL)
        return NULL;
    char *end;
    unsigned long hl = strtoul(v + 6, &end, 10);
    if (end != nl || hl > len - (size_t)(nl + 1 - v))
        return NULL;
    const char *hdr = nl + 1;
    int shape, has_head;
    unsigned long long head_len, rows;
    if (sscanf(hdr, "s %d %llu %d %llu\n", &shape, &head_len, &has_head, &rows) != 4 ||
        (shape != PGW_CACHE_SIMPLE && shape != PGW_CACHE_EXTENDED))
        return NULL;
    const uint8_t *payload = (const uint8_t *)hdr + hl;
    size_t plen = len - (size_t)((const char *)payload - v);
    if (head_len > plen)
        return NULL;
    return cache_entry_new((PgwCacheShape)shape, payload, plen, (size_t)head_len, has_head != 0,
                           rows);
}

static void on_reply(redisAsyncContext *ac, void *r_, void *privdata)
{
    redisReply *reply = r_;
    PgwRedisOp *op = privdata;
    op->inflight--;
    if (reply_is_error(reply))
        note_error(op->r, reply);
    if (op->finished) {
        op_maybe_free(op);
        return;
    }
    if (reply == NULL || reply_is_error(reply)) {
        op_finish(op, PGW_REDIS_BYPASS, NULL, NULL, 0);
        op_maybe_free(op);
        return;
    }
    switch (op->kind) {
    case OP_RAW:
        op->finished = true;
        event_del(op->timer);
        op->raw_fn(op->arg, PGW_REDIS_OK, reply);
        break;
    case OP_GET:
        if (reply->type == REDIS_REPLY_STRING) {
            PgwCacheEntry *e = decode_entry(reply->str, reply->len);
            if (e == NULL)
                COUNT(errors); /* garbled: treat as absent; the leader overwrites it */
            op_finish(op, e ? PGW_REDIS_OK : PGW_REDIS_MISS, e, NULL, 0);
        } else {
            op_finish(op, PGW_REDIS_MISS, NULL, NULL, 0);
        }
        break;
    case OP_LOCK: {
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != op->ngens + 1 ||
            reply->element[0]->type != REDIS_REPLY_INTEGER) {
            COUNT(errors);
            op_finish(op, PGW_REDIS_BYPASS, NULL, NULL, 0);
            break;
        }
        uint64_t *gens = pgw_calloc(op->ngens + 1, sizeof(uint64_t));
        for (size_t i = 0; i < op->ngens; i++) {
            const redisReply *g = reply->element[i + 1];
            gens[i] = g->type == REDIS_REPLY_STRING    ? strtoull(g->str, NULL, 10)
                      : g->type == REDIS_REPLY_INTEGER ? (uint64_t)g->integer
                                                       : 0;
        }
        op_finish(op, reply->element[0]->integer == 1 ? PGW_REDIS_OK : PGW_REDIS_MISS, NULL, gens,
                  0);
        free(gens);
        break;
    }
    case OP_INT:
        if (reply->type == REDIS_REPLY_INTEGER)
            op_finish(op, PGW_REDIS_OK, NULL, NULL, reply->integer);
        else
            op_finish(op, PGW_REDIS_BYPASS, NULL, NULL, 0);
        break;
    case OP_CLEAR: {
        if (reply->type == REDIS_REPLY_INTEGER) { /* the PUBLISH that ends it */
            op_finish(op, PGW_REDIS_OK, NULL, NULL, op->count);
            break;
        }
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
            reply->element[0]->type != REDIS_REPLY_STRING ||
            reply->element[1]->type != REDIS_REPLY_ARRAY) {
            op_finish(op, PGW_REDIS_BYPASS, NULL, NULL, 0);
            break;
        }
        const redisReply *keys = reply->element[1];
        Conn *c = &op->r->cmd;
        if (keys->elements > 0 && c->ac == ac) {
            const char **argv = pgw_calloc(keys->elements + 1, sizeof(char *));
            size_t *lens = pgw_calloc(keys->elements + 1, sizeof(size_t));
            argv[0] = "UNLINK";
            lens[0] = 6;
            for (size_t i = 0; i < keys->elements; i++) {
                argv[i + 1] = keys->element[i]->str;
                lens[i + 1] = keys->element[i]->len;
            }
            PgwRedisOp *fire = op_new(op->r, OP_FIRE, NULL);
            if (redisAsyncCommandArgv(ac, on_reply, fire, (int)keys->elements + 1, argv, lens) ==
                REDIS_OK) {
                fire->inflight++;
                fire->ac = ac;
                event_add(fire->timer, &(struct timeval){op->r->timeout_ms / 1000,
                                                         (op->r->timeout_ms % 1000) * 1000});
            } else {
                op_free(fire);
            }
            op->count += (long long)keys->elements;
            free(argv);
            free(lens);
        }
        const char *cursor = reply->element[0]->str;
        int rc;
        if (strcmp(cursor, "0") == 0) {
            PgwBuf m;
            buf_init(&m);
            buf_append_str(&m, "clear ");
            buf_append_str(&m, op->tenant ? op->tenant : "*");
            char *msg = buf_steal_str(&m);
            rc = redisAsyncCommand(ac, on_reply, op, "PUBLISH %s %s", op->r->channel, msg);
            free(msg);
        } else {
            rc = redisAsyncCommand(ac, on_reply, op, "SCAN %s MATCH %s COUNT 500", cursor,
                                   op->pattern);
        }
        if (rc == REDIS_OK) {
            op->inflight++;
            event_add(op->timer, &(struct timeval){op->r->timeout_ms / 1000,
                                                   (op->r->timeout_ms % 1000) * 1000});
        } else {
            op_finish(op, PGW_REDIS_BYPASS, NULL, NULL, 0);
        }
        break;
    }
    case OP_FIRE:
    case OP_WAIT:
        break;
    }
    op_maybe_free(op);
}

/* Send one command for op on the command connection. -1 when not READY. */
static int op_send(PgwRedisOp *op, int argc, const char **argv, const size_t *lens)
{
    Conn *c = &op->r->cmd;
    if (c->state != CONN_READY || c->ac == NULL)
        return -1;
    if (redisAsyncCommandArgv(c->ac, on_reply, op, argc, argv, lens) != REDIS_OK)
        return -1;
    op->inflight++;
    op->ac = c->ac;
    int ms = op->r->timeout_ms;
    event_add(op->timer, &(struct timeval){ms / 1000, (ms % 1000) * 1000});
    return 0;
}

static PgwRedisOp *op_start(PgwRedisOp *op, int argc, const char **argv, const size_t *lens)
{
    if (op_send(op, argc, argv, lens) < 0) {
        COUNT(bypassed);
        op_free(op);
        return NULL;
    }
    return op->kind == OP_FIRE ? NULL : op;
}

static size_t *lengths(int argc, const char **argv, size_t *lens)
{
    for (int i = 0; i < argc; i++)
        if (lens[i] == 0 && argv[i] != NULL)
            lens[i] = strlen(argv[i]);
    return lens;
}

/* ---- the public operations --------------------------------------------------------- */

bool cache_redis_ready(const PgwRedis *r)
{
    return r->cmd.state == CONN_READY;
}

PgwRedisOp *cache_redis_get(PgwRedis *r, const char *tenant, const PgwCacheKey *key,
                            PgwRedisEntryFn fn, void *arg)
{
    if (r->cmd.state != CONN_READY) {
        COUNT(bypassed);
        return NULL;
    }
    char *k = entry_key(r, 'e', tenant, key);
    const char *argv[] = {"EVALSHA", r->sha[SCRIPT_GET], "1", k};
    size_t lens[4] = {0};
    PgwRedisOp *op = op_new(r, OP_GET, arg);
    op->entry_fn = fn;
    op = op_start(op, 4, argv, lengths(4, argv, lens));
    free(k);
    return op;
}

PgwRedisOp *cache_redis_lock(PgwRedis *r, const char *tenant, const PgwCacheKey *key, int lock_ms,
                             size_t nrels, char *const *rels, PgwRedisLockFn fn, void *arg)
{
    if (r->cmd.state != CONN_READY) {
        COUNT(bypassed);
        return NULL;
    }
    int argc = 3 + 1 + (int)nrels + 2;
    const char **argv = pgw_calloc((size_t)argc, sizeof(char *));
    size_t *lens = pgw_calloc((size_t)argc, sizeof(size_t));
    char **owned = pgw_calloc(nrels + 2, sizeof(char *));
    char nkeys[16], px[16];
    snprintf(nkeys, sizeof nkeys, "%zu", nrels + 1);
    snprintf(px, sizeof px, "%d", lock_ms > 0 ? lock_ms : 1);
    int i = 0;
    argv[i++] = "EVALSHA";
    argv[i++] = r->sha[SCRIPT_LOCK];
    argv[i++] = nkeys;
    argv[i++] = owned[0] = entry_key(r, 'l', tenant, key);
    for (size_t j = 0; j < nrels; j++)
        argv[i++] = owned[j + 1] = gen_key(r, tenant, rels[j]);
    argv[i++] = r->token;
    argv[i++] = px;
    PgwRedisOp *op = op_new(r, OP_LOCK, arg);
    op->lock_fn = fn;
    op->ngens = nrels;
    op = op_start(op, argc, argv, lengths(argc, argv, lens));
    for (size_t j = 0; j < nrels + 1; j++)
        free(owned[j]);
    free(owned);
    free(argv);
    free(lens);
    return op;
}

static char *done_message(const char *tenant, const PgwCacheKey *key)
{
    char hex[2 * PGW_CACHE_DIGEST_LEN + 1];
    cache_key_hex(key, hex);
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, "done ");
    append_encoded(&b, tenant);
    buf_append_byte(&b, ' ');
    buf_append_str(&b, hex);
    return buf_steal_str(&b);
}

void cache_redis_put(PgwRedis *r, const char *tenant, const PgwCacheKey *key,
                     const PgwCacheKey *alias, const PgwCacheEntry *e, int ttl_ms, size_t nrels,
                     char *const *rels, const uint64_t *gens)
{
    if (r->cmd.state != CONN_READY || ttl_ms <= 0)
        return;
    const PgwCacheAnswer *a = cache_entry_answer(e);
    PgwBuf hdr, value;
    buf_init(&hdr);
    buf_init(&value);
    buf_printf(&hdr, "s %d %zu %d %llu\n", (int)a->shape, a->head_len, a->has_head ? 1 : 0,
               (unsigned long long)a->rows);
    for (size_t i = 0; i < nrels; i++) {
        char *g = gen_key(r, tenant, rels[i]);
        buf_printf(&hdr, "g %s %llu\n", g, (unsigned long long)gens[i]);
        free(g);
    }
    buf_printf(&value, "PGWC1 %zu\n", hdr.len);
    buf_append(&value, hdr.data, hdr.len);
    buf_append(&value, a->data, a->len);
    char *ek = entry_key(r, 'e', tenant, key);
    char *lk = entry_key(r, 'l', tenant, key);
    char *ak = alias ? entry_key(r, 'e', tenant, alias) : NULL;
    char *alias_value = NULL;
    if (ak) {
        PgwBuf av;
        buf_init(&av);
        buf_append_str(&av, "PGWA ");
        buf_append_str(&av, ek);
        alias_value = buf_steal_str(&av);
    }
    char *msg = done_message(tenant, key);
    char px[16];
    snprintf(px, sizeof px, "%d", ttl_ms);
    const char *argv[] = {"EVALSHA",
                          r->sha[SCRIPT_PUT],
                          ak ? "3" : "2",
                          ek,
                          lk,
                          ak ? ak : r->token,
                          (const char *)value.data,
                          px,
                          r->token,
                          alias_value ? alias_value : "",
                          r->channel,
                          msg};
    size_t lens[12] = {0};
    lens[6] = value.len;
    int argc = 12;
    if (!ak) {
        /* no third key: drop it and keep ARGV in place */
        memmove(&argv[5], &argv[6], 6 * sizeof(char *));
        memmove(&lens[5], &lens[6], 6 * sizeof(size_t));
        argc = 11;
    }
    op_start(op_new(r, OP_FIRE, NULL), argc, argv, lengths(argc, argv, lens));
    buf_free(&hdr);
    buf_free(&value);
    free(ek);
    free(lk);
    free(ak);
    free(alias_value);
    free(msg);
}

void cache_redis_unlock(PgwRedis *r, const char *tenant, const PgwCacheKey *key)
{
    if (r->cmd.state != CONN_READY)
        return;
    char *lk = entry_key(r, 'l', tenant, key);
    char *msg = done_message(tenant, key);
    const char *argv[] = {"EVALSHA", r->sha[SCRIPT_UNLOCK], "1", lk, r->token, r->channel, msg};
    size_t lens[7] = {0};
    op_start(op_new(r, OP_FIRE, NULL), 7, argv, lengths(7, argv, lens));
    free(lk);
    free(msg);
}

void cache_redis_alias(PgwRedis *r, const char *tenant, const PgwCacheKey *alias,
                       const PgwCacheKey *target, int ttl_ms)
{
    if (r->cmd.state != CONN_READY || ttl_ms <= 0)
        return;
    char *ak = entry_key(r, 'e', tenant, alias);
    char *tk = entry_key(r, 'e', tenant, target);
    PgwBuf v;
    buf_init(&v);
    buf_append_str(&v, "PGWA ");
    buf_append_str(&v, tk);
    char *value = buf_steal_str(&v);
    char px[16];
    snprintf(px, sizeof px, "%d", ttl_ms);
    const char *argv[] = {"SET", ak, value, "PX", px};
    size_t lens[5] = {0};
    op_start(op_new(r, OP_FIRE, NULL), 5, argv, lengths(5, argv, lens));
    free(ak);
    free(tk);
    free(value);
}

void cache_redis_invalidate(PgwRedis *r, const char *tenant, const char *relation)
{
    if (r->cmd.state != CONN_READY)
        return;
    char *g = gen_key(r, tenant, relation);
    const char *incr[] = {"INCR", g};
    size_t l1[2] = {0};
    op_start(op_new(r, OP_FIRE, NULL), 2, incr, lengths(2, incr, l1));
    PgwBuf m;
    buf_init(&m);
    buf_append_str(&m, "inval ");
    append_encoded(&m, tenant);
    buf_append_byte(&m, ' ');
    append_encoded(&m, relation);
    char *msg = buf_steal_str(&m);
    const char *pub[] = {"PUBLISH", r->channel, msg};
    size_t l2[3] = {0};
    op_start(op_new(r, OP_FIRE, NULL), 3, pub, lengths(3, pub, l2));
    free(g);
    free(msg);
}

/* SCAN MATCH takes a glob: the prefix's own *?[]\ must match literally. */
static void append_glob_literal(PgwBuf *b, const char *s)
{
    for (; *s; s++) {
        if (strchr("*?[]\\", *s))
            buf_append_byte(b, '\\');
        buf_append_byte(b, (uint8_t)*s);
    }
}

PgwRedisOp *cache_redis_clear(PgwRedis *r, const char *tenant, PgwRedisDoneFn fn, void *arg)
{
    if (r->cmd.state != CONN_READY) {
        COUNT(bypassed);
        return NULL;
    }
    PgwBuf p;
    buf_init(&p);
    append_glob_literal(&p, r->prefix);
    buf_append_str(&p, "e:");
    if (tenant) {
        PgwBuf t;
        buf_init(&t);
        append_encoded(&t, tenant);
        char *enc = buf_steal_str(&t);
        append_glob_literal(&p, enc); /* '%' and the rest are not glob characters */
        free(enc);
        buf_append_str(&p, ":*");
    } else {
        buf_append_byte(&p, '*');
    }
    PgwRedisOp *op = op_new(r, OP_CLEAR, arg);
    op->done_fn = fn;
    op->pattern = buf_steal_str(&p);
    if (tenant) {
        PgwBuf t;
        buf_init(&t);
        append_encoded(&t, tenant);
        op->tenant = buf_steal_str(&t);
    }
    const char *argv[] = {"SCAN", "0", "MATCH", op->pattern, "COUNT", "500"};
    size_t lens[6] = {0};
    return op_start(op, 6, argv, lengths(6, argv, lens));
}

PgwRedisOp *cache_redis_command_int(PgwRedis *r, int argc, const char **argv, const size_t *lens,
                                    PgwRedisDoneFn fn, void *arg)
{
    if (r->cmd.state != CONN_READY) {
        COUNT(bypassed);
        return NULL;
    }
    size_t *own = pgw_calloc((size_t)argc, sizeof(size_t));
    for (int i = 0; i < argc; i++)
        own[i] = lens ? lens[i] : strlen(argv[i]);
    PgwRedisOp *op = op_new(r, OP_INT, arg);
    op->done_fn = fn;
    op = op_start(op, argc, argv, own);
    free(own);
    return op;
}

PgwRedisOp *cache_redis_raw(PgwRedis *r, int argc, const char **argv, const size_t *lens,
                            PgwRedisReplyFn fn, void (*release)(void *arg), void *arg)
{
    if (r->cmd.state != CONN_READY) {
        COUNT(bypassed);
        return NULL;
    }
    size_t *own = pgw_calloc((size_t)argc, sizeof(size_t));
    for (int i = 0; i < argc; i++)
        own[i] = lens ? lens[i] : strlen(argv[i]);
    PgwRedisOp *op = op_new(r, OP_RAW, arg);
    op->raw_fn = fn;
    op->raw_release = release;
    op = op_start(op, argc, argv, own);
    free(own);
    return op;
}

const char *cache_redis_token(const PgwRedis *r)
{
    return r->token;
}

PgwRedisOp *cache_redis_wait(PgwRedis *r, const char *tenant, const PgwCacheKey *key, int poll_ms,
                             PgwRedisDoneFn fn, void *arg)
{
    if (r->cmd.state != CONN_READY || r->sub.state != CONN_READY) {
        COUNT(bypassed);
        return NULL;
    }
    PgwRedisOp *op = op_new(r, OP_WAIT, arg);
    op->done_fn = fn;
    PgwBuf t;
    buf_init(&t);
    append_encoded(&t, tenant);
    op->tenant = buf_steal_str(&t);
    cache_key_hex(key, op->hex);
    op->wnext = r->waits;
    if (r->waits)
        r->waits->wprev = op;
    r->waits = op;
    int ms = poll_ms > 0 ? poll_ms : 1;
    event_add(op->timer, &(struct timeval){ms / 1000, (ms % 1000) * 1000});
    return op;
}

void cache_redis_cancel(PgwRedisOp *op)
{
    if (op == NULL || op->finished)
        return;
    op->finished = true;
    if (op->kind == OP_RAW && op->raw_release)
        op->raw_release(op->arg);
    event_del(op->timer);
    op_maybe_free(op);
}

/* ---- pub/sub ---------------------------------------------------------------------------- */

static char *decode_part(const char *s)
{
    return percent_decode(s, strlen(s));
}

static void dispatch(PgwRedis *r, char *payload)
{
    char *words[3] = {NULL, NULL, NULL};
    int n = 0;
    for (char *save = NULL, *w = strtok_r(payload, " ", &save); w && n < 3;
         w = strtok_r(NULL, " ", &save))
        words[n++] = w;
    if (n < 2)
        return;
    PgwRedisEvent ev = {0};
    char *tenant = strcmp(words[1], "*") == 0 ? NULL : decode_part(words[1]);
    char *relation = NULL;
    ev.tenant = tenant;
    if (strcmp(words[0], "done") == 0 && n == 3) {
        ev.kind = PGW_REDIS_EV_DONE;
        ev.hex = words[2];
        /* Wake this worker's waiters on that key: each looks again. */
        for (PgwRedisOp *op = r->waits, *next; op; op = next) {
            next = op->wnext;
            if (!op->finished && strcmp(op->hex, words[2]) == 0 &&
                strcmp(op->tenant, words[1]) == 0) {
                op_finish(op, PGW_REDIS_OK, NULL, NULL, 0);
                op_maybe_free(op);
            }
        }
    } else if (strcmp(words[0], "inval") == 0 && n == 3) {
        ev.kind = PGW_REDIS_EV_INVALIDATE;
        ev.relation = relation = decode_part(words[2]);
    } else if (strcmp(words[0], "clear") == 0) {
        ev.kind = PGW_REDIS_EV_CLEAR;
    } else {
        free(tenant);
        return;
    }
    if (r->on_event)
        r->on_event(r->event_arg, &ev);
    free(tenant);
    free(relation);
}

static void conn_ready(Conn *c);

static void on_message(redisAsyncContext *ac, void *r_, void *privdata)
{
    redisReply *reply = r_;
    Conn *c = privdata;
    if (reply == NULL || c->ac != ac)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        conn_fail(c, reply->str);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    if (strcasecmp(kind, "subscribe") == 0) {
        if (--c->handshake == 0)
            conn_ready(c);
    } else if (strcasecmp(kind, "message") == 0 && reply->element[2]->type == REDIS_REPLY_STRING) {
        char *payload = pgw_strndup(reply->element[2]->str, reply->element[2]->len);
        dispatch(c->r, payload);
        free(payload);
    }
}

/* ---- connections -------------------------------------------------------------------- */

static int jitter(int ms)
{
    unsigned char b;
    if (RAND_bytes(&b, 1) != 1)
        b = 128;
    return ms - ms / 5 + (int)((long)ms * 2 / 5 * b / 255);
}

static void conn_timer_arm(Conn *c, int ms)
{
    event_add(c->timer, &(struct timeval){ms / 1000, (ms % 1000) * 1000});
}

/* Common to every way a connection ends: state, log, waiters, the next
 * attempt. hiredis owns (and frees) the context by now, or we freed it. */
static void conn_down(Conn *c, const char *why)
{
    PgwRedis *r = c->r;
    bool was_ready = c->state == CONN_READY;
    c->state = CONN_DOWN;
    if (c->dns) {
        evdns_getaddrinfo_cancel(c->dns); /* its callback sees the cancel and does nothing */
        c->dns = NULL;
    }
    if (c->tunnel) {
        cache_redis_tunnel_free(c->tunnel);
        c->tunnel = NULL;
    }
    if (was_ready && !c->sub)
        __atomic_sub_fetch(&stats.connected, 1, __ATOMIC_RELAXED);
    if (c->why[0])
        COUNT(errors); /* the TLS tunnel's failure (a refused certificate...) */
    if (!c->sub && !r->freeing)
        outage_begin(r->where, c->why[0] ? c->why : why);
    else if (c->sub && !r->freeing)
        log_debug("redis: subscriber connection to %s lost (%s)", r->where, why);
    c->failed = true;
    /* Remote waits need both connections: they bypass now. */
    for (PgwRedisOp *op = r->waits, *next; op; op = next) {
        next = op->wnext;
        op_finish(op, PGW_REDIS_BYPASS, NULL, NULL, 0);
        op_maybe_free(op);
    }
    if (r->freeing)
        return;
    event_del(c->timer);
    conn_timer_arm(c, jitter(c->backoff_ms));
    c->backoff_ms = c->backoff_ms * 2 > 5000 ? 5000 : c->backoff_ms * 2;
}

static void conn_fail(Conn *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    if (c->state != CONN_DOWN)
        conn_down(c, why);
    if (ac != NULL)
        redisAsyncFree(ac); /* pending callbacks run now, with NULL replies */
}

static void conn_ready(Conn *c)
{
    c->state = CONN_READY;
    c->backoff_ms = 100;
    c->why[0] = '\0';
    event_del(c->timer);
    if (!c->sub) {
        __atomic_add_fetch(&stats.connected, 1, __ATOMIC_RELAXED);
        outage_end(c->r->where);
    }
}

static void on_handshake(redisAsyncContext *ac, void *r_, void *privdata)
{
    redisReply *reply = r_;
    Conn *c = privdata;
    if (reply == NULL || c->ac != ac)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        COUNT(errors);
        char why[256];
        snprintf(why, sizeof why, "%s", reply->str);
        conn_fail(c, why);
        return;
    }
    if (--c->handshake == 0)
        conn_ready(c);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    Conn *c = ac->data;
    if (status == REDIS_OK || c == NULL || c->ac != ac)
        return;
    /* hiredis frees the context after this returns. */
    c->ac = NULL;
    COUNT(errors);
    conn_down(c, ac->errstr[0] ? ac->errstr : "cannot connect");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    Conn *c = ac->data;
    if (c == NULL || c->ac != ac)
        return;
    c->ac = NULL;
    conn_down(c, ac->err ? ac->errstr : "Redis closed the connection");
}

static void on_tunnel_close(void *arg, const char *why)
{
    Conn *c = arg;
    if (why != NULL)
        snprintf(c->why, sizeof c->why, "%s", why);
}

static void conn_attach(Conn *c, redisAsyncContext *ac)
{
    PgwRedis *r = c->r;
    if (ac == NULL || ac->err) {
        char why[256];
        snprintf(why, sizeof why, "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        COUNT(errors);
        conn_down(c, why);
        return;
    }
    ac->data = c;
    redisLibeventAttach(ac, r->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->handshake = 0;
    /* Pipelined: hiredis sends them as soon as the socket connects. */
    if (r->url.password) {
        if (r->url.user)
            redisAsyncCommand(ac, on_handshake, c, "AUTH %s %s", r->url.user, r->url.password);
        else
            redisAsyncCommand(ac, on_handshake, c, "AUTH %s", r->url.password);
        c->handshake++;
    }
    if (r->url.db != 0) {
        redisAsyncCommand(ac, on_handshake, c, "SELECT %d", r->url.db);
        c->handshake++;
    }
    if (c->sub) {
        redisAsyncCommand(ac, on_message, c, "SUBSCRIBE %s", r->channel);
        c->handshake++;
    } else {
        for (int i = 0; i < NSCRIPTS; i++) {
            redisAsyncCommand(ac, on_handshake, c, "SCRIPT LOAD %s", scripts[i]);
            c->handshake++;
        }
    }
}

static void connect_addr(Conn *c, const struct sockaddr *sa, socklen_t len)
{
    PgwRedis *r = c->r;
    if (r->url.tls) {
        char path[128], err[256];
        c->tunnel = cache_redis_tunnel_open(r->base, r->ssl, sa, len, r->url.host, r->tunnel_dir,
                                            on_tunnel_close, c, path, sizeof path, err, sizeof err);
        if (c->tunnel == NULL) {
            COUNT(errors);
            conn_down(c, err);
            return;
        }
        redisAsyncContext *ac = redisAsyncConnectUnix(path);
        if (cache_redis_tunnel_accept(c->tunnel, err, sizeof err) < 0) {
            if (ac)
                redisAsyncFree(ac);
            COUNT(errors);
            conn_down(c, err);
            return;
        }
        conn_attach(c, ac);
        return;
    }
    char ip[INET6_ADDRSTRLEN];
    int port;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        port = ntohs(s4->sin_port);
    }
    conn_attach(c, redisAsyncConnect(ip, port)); /* numeric: getaddrinfo does not block */
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    Conn *c = arg;
    if (result == EVUTIL_EAI_CANCEL)
        return;
    c->dns = NULL;
    if (result != 0 || res == NULL) {
        char why[256];
        snprintf(why, sizeof why, "cannot resolve %s: %s", c->r->url.host,
                 evutil_gai_strerror(result));
        if (res)
            evutil_freeaddrinfo(res);
        COUNT(errors);
        conn_down(c, why);
        return;
    }
    connect_addr(c, res->ai_addr, (socklen_t)res->ai_addrlen);
    evutil_freeaddrinfo(res);
}

static void conn_start(Conn *c)
{
    PgwRedis *r = c->r;
    if (c->failed)
        COUNT(reconnects);
    c->state = CONN_CONNECTING;
    c->why[0] = '\0';
    /* Connecting includes a name lookup and maybe a TLS handshake. */
    int deadline = r->timeout_ms * 4 > 1000 ? r->timeout_ms * 4 : 1000;
    event_del(c->timer);
    conn_timer_arm(c, deadline);
    if (r->url.unix_path) {
        conn_attach(c, redisAsyncConnectUnix(r->url.unix_path));
        return;
    }
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC,
                                    .ai_socktype = SOCK_STREAM,
                                    .ai_protocol = IPPROTO_TCP,
                                    .ai_flags = EVUTIL_AI_ADDRCONFIG};
    char port[16];
    snprintf(port, sizeof port, "%d", r->url.port);
    if (r->dns == NULL) {
        hints.ai_flags |= EVUTIL_AI_NUMERICHOST;
        struct evutil_addrinfo *res = NULL;
        int rc = evutil_getaddrinfo(r->url.host, port, &hints, &res);
        on_resolved(rc, res, c);
        return;
    }
    /* May answer at once (numeric, /etc/hosts) by calling on_resolved. */
    c->dns = evdns_getaddrinfo(r->dns, r->url.host, port, &hints, on_resolved, c);
}

static void on_conn_timer(evutil_socket_t fd, short what, void *arg)
{
    Conn *c = arg;
    if (c->state == CONN_CONNECTING) {
        char why[64];
        snprintf(why, sizeof why, "no connection within %d ms",
                 c->r->timeout_ms * 4 > 1000 ? c->r->timeout_ms * 4 : 1000);
        COUNT(timeouts);
        conn_fail(c, why);
    } else if (c->state == CONN_DOWN) {
        conn_start(c);
    }
}

PgwRedis *cache_redis_new(struct event_base *base, const PgwRedisOptions *opt, char *err,
                          size_t errlen)
{
    PgwRedis *r = pgw_calloc(1, sizeof(*r));
    r->base = base;
    if (cache_redis_parse_url(opt->url, &r->url, err, errlen) < 0) {
        free(r);
        return NULL;
    }
    PgwBuf w;
    buf_init(&w);
    if (r->url.unix_path)
        buf_append_str(&w, r->url.unix_path);
    else
        buf_printf(&w, "%s%s:%d", r->url.tls ? "rediss://" : "", r->url.host, r->url.port);
    r->where = buf_steal_str(&w);
    r->prefix = pgw_strdup(opt->prefix ? opt->prefix : "pgwarden:");
    PgwBuf ch;
    buf_init(&ch);
    buf_append_str(&ch, r->prefix);
    buf_append_str(&ch, "events");
    r->channel = buf_steal_str(&ch);
    r->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : 250;
    r->on_event = opt->on_event;
    r->event_arg = opt->event_arg;
    unsigned char rnd[8];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        memset(rnd, 0, sizeof rnd);
    snprintf(r->token, sizeof r->token, "%ld-%02x%02x%02x%02x%02x%02x%02x%02x", (long)getpid(),
             rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    for (int i = 0; i < NSCRIPTS; i++) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        EVP_Digest(scripts[i], strlen(scripts[i]), md, &n, EVP_sha1(), NULL);
        for (unsigned j = 0; j < n && j < 20; j++)
            snprintf(&r->sha[i][2 * j], 3, "%02x", md[j]);
    }
    if (r->url.tls) {
        r->ssl = cache_redis_tls_ctx(opt->tls_ca_file, opt->tls_cert_file, opt->tls_key_file, err,
                                     errlen);
        const char *tmp = getenv("TMPDIR");
        snprintf(r->tunnel_dir, sizeof r->tunnel_dir, "%s/pgwarden-redis.XXXXXX",
                 tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
        if (r->ssl == NULL || mkdtemp(r->tunnel_dir) == NULL) {
            if (r->ssl)
                snprintf(err, errlen, "cannot create a directory for the TLS tunnel: %s",
                         strerror(errno));
            r->tunnel_dir[0] = '\0';
            cache_redis_free(r);
            return NULL;
        }
    }
    if (r->url.host) {
        unsigned char ip[16];
        bool numeric =
            inet_pton(AF_INET, r->url.host, ip) == 1 || inet_pton(AF_INET6, r->url.host, ip) == 1;
        if (!numeric)
            r->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                              EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    }
    Conn *conns[] = {&r->cmd, &r->sub};
    for (int i = 0; i < 2; i++) {
        conns[i]->r = r;
        conns[i]->sub = i == 1;
        conns[i]->backoff_ms = 100;
        conns[i]->timer = evtimer_new(base, on_conn_timer, conns[i]);
    }
    conn_start(&r->cmd);
    conn_start(&r->sub);
    return r;
}

void cache_redis_free(PgwRedis *r)
{
    if (r == NULL)
        return;
    r->freeing = true;
    Conn *conns[] = {&r->cmd, &r->sub};
    for (int i = 0; i < 2; i++) {
        Conn *c = conns[i];
        if (c->timer == NULL)
            continue;
        event_del(c->timer);
        conn_fail(c, "shutting down");
        if (c->state != CONN_DOWN)
            conn_down(c, "shutting down");
        event_free(c->timer);
    }
    while (r->waits) {
        PgwRedisOp *op = r->waits;
        op_finish(op, PGW_REDIS_BYPASS, NULL, NULL, 0);
        op_free(op);
    }
    if (r->dns)
        evdns_base_free(r->dns, 0);
    if (r->ssl)
        SSL_CTX_free(r->ssl);
    if (r->tunnel_dir[0])
        rmdir(r->tunnel_dir);
    cache_redis_url_free(&r->url);
    free(r->where);
    free(r->prefix);
    free(r->channel);
    free(r);
}
