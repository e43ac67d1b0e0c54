/*
 * cache_key.c — result-cache keys and eligibility; see cache_key.h.
 *
 * Keys. Every component goes into one SHA-256 as (tag byte, 32-bit length,
 * bytes), so no two different inputs serialize alike whatever their
 * contents: a tenant named "a" with statement "bc" never meets tenant "ab"
 * with "c". Inputs that PostgreSQL treats as equal are normalized first, so
 * they share an entry: zero parameter format codes and one code 0 both mean
 * "all text"; settings are sorted by lower-cased name. Inputs that are only
 * almost equal stay apart (n result format codes all 0 is not "all text",
 * because PostgreSQL checks n against the column count and may refuse it).
 *
 * Settings: the runtime passes every setting it knows to be in effect (the
 * backend's ParameterStatus values, the client's startup options, what the
 * session SET); the key takes all of them but a short list that cannot
 * change an answer's bytes (timeouts, application_name, client_min_messages
 * — notices are never stored). An unknown name is taken: failing towards a
 * separate entry costs a miss, never a wrong answer.
 *
 * Eligibility walks the policy's rewrite (what the backend will run, with the
 * row filters and masks in it, so a filter calling now() is seen too) with
 * the generic tree walk, and refuses:
 *  - anything but SELECT/VALUES/TABLE at the top (SET, SHOW, cursors, COPY,
 *    BEGIN..., EXPLAIN), SELECT INTO, FOR UPDATE/SHARE, and a write anywhere
 *    (a data-modifying WITH is a SELECT at the top);
 *  - functions not known to be deterministic given their arguments and the
 *    settings in the key: the clock (now, clock_timestamp, age with one
 *    argument ...), randomness, server state (pg_backend_pid, sizes,
 *    statistics), and every user-defined function (allowed_functions or any
 *    schema but pg_catalog), whose volatility pgwarden cannot know; the
 *    classes are named by prefix (pg_stat_*, txid_*, random*...) so a
 *    function the policy allowlists later is covered by its family;
 *  - CURRENT_DATE and the other SQL value functions of the clock;
 *  - the datetime input words now, today, tomorrow and yesterday in any
 *    string literal or text parameter ('today'::date is the clock too), and
 *    a cast to a date/time type of anything that may be text at run time (a
 *    text column holding 'now' is the clock again): only constants, non-text
 *    columns (by the schema snapshot), date/time functions and other such
 *    casts may be cast;
 *  - catalog views of live server state (pg_stat*, pg_locks, pg_settings...);
 *  - tables whose cache_ttl is 0, and any ttl of 0.
 * The policy's own `cacheable` flag is required as well: two independent
 * analyses must both agree.
 */
#define _GNU_SOURCE /* pthread_getattr_np */
#include "cache_key.h"

#include "buf.h"
#include "policy.h"
#include "policy_walk.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <pg_query.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- Bind ---------------------------------------------------------------- */

static int take_cstr(const uint8_t *body, size_t len, size_t *pos, const char **out)
{
    const uint8_t *nul = memchr(body + *pos, 0, len - *pos);
    if (nul == NULL)
        return -1;
    *out = (const char *)body + *pos;
    *pos = (size_t)(nul - body) + 1;
    return 0;
}

static int take_u16(const uint8_t *body, size_t len, size_t *pos, uint16_t *out)
{
    if (len - *pos < 2)
        return -1;
    *out = (uint16_t)(body[*pos] << 8 | body[*pos + 1]);
    *pos += 2;
    return 0;
}

static uint32_t read_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int cache_parse_bind(const uint8_t *body, size_t len, PgwCacheBind *out)
{
    size_t pos = 0;
    memset(out, 0, sizeof(*out));
    if (take_cstr(body, len, &pos, &out->portal) < 0 ||
        take_cstr(body, len, &pos, &out->statement) < 0 ||
        take_u16(body, len, &pos, &out->nformats) < 0)
        return -1;
    if ((len - pos) / 2 < out->nformats)
        return -1;
    out->formats_raw = body + pos;
    pos += 2u * out->nformats;
    if (take_u16(body, len, &pos, &out->nparams) < 0)
        return -1;
    out->params_raw = body + pos;
    size_t start = pos;
    for (uint16_t i = 0; i < out->nparams; i++) {
        if (len - pos < 4)
            return -1;
        int32_t n = (int32_t)read_u32(body + pos);
        pos += 4;
        if (n < -1 || (n > 0 && (size_t)n > len - pos))
            return -1;
        if (n > 0)
            pos += (size_t)n;
    }
    out->params_len = pos - start;
    if (take_u16(body, len, &pos, &out->nresult_formats) < 0)
        return -1;
    if ((len - pos) / 2 < out->nresult_formats)
        return -1;
    out->result_formats_raw = body + pos;
    pos += 2u * out->nresult_formats;
    return pos == len ? 0 : -1;
}

int cache_bind_param(const PgwCacheBind *b, size_t i, int *format, const uint8_t **value,
                     int32_t *len)
{
    if (i >= b->nparams)
        return -1;
    if (b->nformats == 0)
        *format = 0;
    else if (b->nformats == 1)
        *format = (int16_t)(b->formats_raw[0] << 8 | b->formats_raw[1]);
    else if (i < b->nformats)
        *format = (int16_t)(b->formats_raw[2 * i] << 8 | b->formats_raw[2 * i + 1]);
    else
        *format = -1; /* PostgreSQL refuses a count that is neither 0, 1 nor nparams */
    const uint8_t *p = b->params_raw;
    for (size_t k = 0;; k++) {
        int32_t n = (int32_t)read_u32(p);
        if (k == i) {
            *value = p + 4;
            *len = n;
            return 0;
        }
        p += 4 + (n > 0 ? (size_t)n : 0);
    }
}

/* ---- digests ---------------------------------------------------------------- */

/* The serialization is gathered into one buffer and hashed in one call:
 * a key has a few dozen small fields, and each digest update costs more
 * than the bytes it hashes. One digest context per thread, SHA-256 fetched
 * once (OpenSSL 3's implicit fetch and allocation per call would cost more
 * than the hashing). A key is built for every statement. */
typedef struct Hasher {
    PgwBuf b;
    uint8_t small[1024];
    bool on_heap;
} Hasher;

static __thread EVP_MD_CTX *thread_ctx;
static const EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static pthread_key_t ctx_key; /* frees a thread's context when the thread ends */

static void free_ctx(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (pthread_key_create(&ctx_key, free_ctx) != 0)
        abort(); /* at most once per process, at the first key */
}

static void hasher_put(Hasher *h, const void *data, size_t len)
{
    if (!h->on_heap && h->b.len + len > sizeof h->small) {
        PgwBuf heap;
        buf_init(&heap);
        buf_append(&heap, h->small, h->b.len);
        h->b = heap;
        h->on_heap = true;
    }
    if (h->on_heap) {
        buf_append(&h->b, data, len);
    } else {
        memcpy(h->small + h->b.len, data, len);
        h->b.len += len;
    }
}

static void hasher_init(Hasher *h, const char *domain)
{
    h->b.data = NULL;
    h->b.len = h->b.cap = 0;
    h->on_heap = false;
    hasher_put(h, domain, strlen(domain) + 1);
}

static void hash_field(Hasher *h, uint8_t tag, const void *data, size_t len)
{
    uint8_t hdr[5] = {tag, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                      (uint8_t)len};
    hasher_put(h, hdr, sizeof hdr);
    if (len > 0)
        hasher_put(h, data, len);
}

static void hash_str(Hasher *h, uint8_t tag, const char *s)
{
    /* NULL and "" differ: NULL is tag with length 0xffffffff and no bytes. */
    if (s == NULL) {
        uint8_t hdr[5] = {tag, 0xff, 0xff, 0xff, 0xff};
        hasher_put(h, hdr, sizeof hdr);
        return;
    }
    hash_field(h, tag, s, strlen(s));
}

static void hash_int(Hasher *h, uint8_t tag, long long v)
{
    char num[1 + PGW_UINT_DIGITS]; /* what "%lld" writes */
    size_t n = 0;
    if (v < 0)
        num[n++] = '-';
    n += pgw_format_uint(num + n, v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v);
    hash_field(h, tag, num, n);
}

static void hasher_final(Hasher *h, uint8_t out[PGW_CACHE_DIGEST_LEN])
{
    pthread_once(&sha256_once, fetch_sha256);
    if (thread_ctx == NULL) {
        thread_ctx = EVP_MD_CTX_new();
        pthread_setspecific(ctx_key, thread_ctx);
    }
    const uint8_t *data = h->on_heap ? h->b.data : h->small;
    unsigned n = 0;
    if (thread_ctx == NULL || sha256_md == NULL ||
        EVP_DigestInit_ex(thread_ctx, sha256_md, NULL) != 1 ||
        EVP_DigestUpdate(thread_ctx, data, h->b.len) != 1 ||
        EVP_DigestFinal_ex(thread_ctx, out, &n) != 1)
        abort(); /* out of memory: pgwarden treats it as fatal everywhere */
    if (h->on_heap)
        buf_free(&h->b);
    h->on_heap = false;
    h->b.len = 0;
}

/* Small memo tables: fingerprints are asked for on every statement, change
 * only on reload or a schema refresh, and cost a few microseconds each. */
#define MEMO_SLOTS 64
typedef struct Memo {
    unsigned long id;
    char *name;
    uint8_t fp[PGW_CACHE_DIGEST_LEN];
    bool used;
} Memo;
static pthread_mutex_t memo_mu = PTHREAD_MUTEX_INITIALIZER;
static Memo policy_memo[MEMO_SLOTS], schema_memo[MEMO_SLOTS];
static unsigned policy_next, schema_next;

static bool memo_get(Memo *tab, unsigned long id, const char *name, uint8_t *out)
{
    bool found = false;
    pthread_mutex_lock(&memo_mu);
    for (size_t i = 0; i < MEMO_SLOTS && !found; i++) {
        if (tab[i].used && tab[i].id == id &&
            (name == NULL ? tab[i].name == NULL
                          : tab[i].name != NULL && strcmp(tab[i].name, name) == 0)) {
            memcpy(out, tab[i].fp, PGW_CACHE_DIGEST_LEN);
            found = true;
        }
    }
    pthread_mutex_unlock(&memo_mu);
    return found;
}

static void memo_put(Memo *tab, unsigned *next, unsigned long id, const char *name,
                     const uint8_t *fp)
{
    pthread_mutex_lock(&memo_mu);
    Memo *m = &tab[*next % MEMO_SLOTS];
    (*next)++;
    free(m->name);
    m->id = id;
    m->name = name ? pgw_strdup(name) : NULL;
    memcpy(m->fp, fp, PGW_CACHE_DIGEST_LEN);
    m->used = true;
    pthread_mutex_unlock(&memo_mu);
}

void cache_policy_fingerprint(const PgwConfig *cfg, const PgwTenant *tenant,
                              uint8_t out[PGW_CACHE_DIGEST_LEN])
{
    const char *name = tenant ? tenant->name : "";
    if (memo_get(policy_memo, cfg->version, name, out))
        return;
    Hasher h;
    hasher_init(&h, "pgwarden cache policy 1");
    /* The rewriter's own behaviour: another pgwarden version may rewrite the
     * same text differently, which the raw-text key would not see. */
    hash_str(&h, 'V', PGW_VERSION_STRING);
    if (tenant) {
        hash_str(&h, 'n', tenant->name);
        hash_str(&h, 'i', tenant->id);
        hash_str(&h, 'b', tenant->backend); /* another database is other data */
    }
    hash_int(&h, 'a', cfg->default_access);
    hash_str(&h, 's', cfg->search_path);
    /* The hash mask's values depend on its key (a random one per process
     * when mask_key is empty): only then does the key part the entries, so
     * instances sharing Redis still share every answer no hash mask shaped. */
    bool hashes = false;
    for (size_t i = 0; i < cfg->ntables && !hashes; i++)
        for (size_t j = 0; j < cfg->tables[i].nmasks; j++)
            hashes = hashes || cfg->tables[i].masks[j].kind == PGW_MASK_HASH;
    if (hashes)
        hash_str(&h, 'K', config_mask_key(cfg));
    for (size_t i = 0; i < cfg->nallowed_functions; i++)
        hash_str(&h, 'f', cfg->allowed_functions[i]);
    hash_int(&h, 'T', cfg->cache_ttl_ms);
    hash_int(&h, 'M', (long long)cfg->cache_max_entry);
    /* Every table section, not only the ones a statement reads: what the
     * catalogs show depends on all of them. */
    for (size_t i = 0; i < cfg->ntables; i++) {
        const PgwTablePolicy *t = &cfg->tables[i];
        hash_str(&h, 't', t->schema);
        hash_str(&h, 'u', t->name);
        hash_str(&h, 'r', t->row_filter);
        hash_int(&h, 'h', t->hidden);
        hash_int(&h, 'c', t->cache_ttl_ms);
        for (size_t j = 0; j < t->nmasks; j++) {
            hash_str(&h, 'm', t->masks[j].column);
            hash_int(&h, 'k', t->masks[j].kind);
        }
    }
    hasher_final(&h, out);
    memo_put(policy_memo, &policy_next, cfg->version, name, out);
}

void cache_schema_fingerprint(const PgwSchema *schema, uint8_t out[PGW_CACHE_DIGEST_LEN])
{
    unsigned long gen = schema ? schema_generation(schema) : 0;
    if (schema && memo_get(schema_memo, gen, NULL, out))
        return;
    Hasher h;
    hasher_init(&h, "pgwarden cache schema 1");
    size_t n = schema ? schema_ntables(schema) : 0;
    hash_int(&h, 'N', schema ? (long long)n : -1);
    for (size_t i = 0; i < n; i++) {
        const PgwSchemaTable *t = schema_table_at(schema, i);
        hash_str(&h, 's', t->schema);
        hash_str(&h, 'r', t->name);
        hash_int(&h, 'k', t->relkind);
        for (size_t j = 0; j < t->ncolumns; j++) {
            hash_str(&h, 'c', t->columns[j].name);
            hash_str(&h, 't', t->columns[j].type);
            hash_int(&h, 'a', t->columns[j].attnum);
        }
    }
    hasher_final(&h, out);
    if (schema)
        memo_put(schema_memo, &schema_next, gen, NULL, out);
}

/* ---- keys --------------------------------------------------------------------- */

/* Settings that cannot change the bytes of an answer. Anything else,
 * including names this list has never heard of, is part of the key. */
static const char *const answer_neutral_settings[] = {
    "application_name",
    "client_min_messages", /* notices are never stored */
    "default_transaction_deferrable",
    "default_transaction_isolation",
    "default_transaction_read_only",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "jit",
    "lock_timeout",
    "statement_timeout",
    "transaction_deferrable",
    "transaction_isolation",
    "transaction_read_only",
    "in_hot_standby",
};

bool cache_setting_shapes_answer(const char *name)
{
    /* Called for every setting of every statement: compare lengths first. */
    size_t n = strlen(name);
    for (size_t i = 0; i < PGW_ARRAY_LEN(answer_neutral_settings); i++)
        if (strlen(answer_neutral_settings[i]) == n &&
            strcasecmp(answer_neutral_settings[i], name) == 0)
            return false;
    return true;
}

static int setting_cmp(const void *a, const void *b)
{
    const PgwCacheSetting *x = a, *y = b;
    return strcasecmp(x->name, y->name);
}

static void lower_copy(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

static void hash_settings(Hasher *h, size_t n, const PgwCacheSetting *in)
{
    PgwCacheSetting small[32];
    PgwCacheSetting *s = n <= PGW_ARRAY_LEN(small) ? small : pgw_malloc(n * sizeof(*s));
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (in[i].name != NULL && cache_setting_shapes_answer(in[i].name))
            s[m++] = in[i];
    /* Stable by position for equal names: the later one (set last) wins. */
    for (size_t i = 1; i < m; i++) {
        PgwCacheSetting v = s[i];
        size_t j = i;
        while (j > 0 && setting_cmp(&s[j - 1], &v) > 0) {
            s[j] = s[j - 1];
            j--;
        }
        s[j] = v;
    }
    for (size_t i = 0; i < m; i++) {
        if (i + 1 < m && strcasecmp(s[i].name, s[i + 1].name) == 0)
            continue;
        char name[128];
        lower_copy(name, sizeof name, s[i].name);
        hash_str(h, 'g', name);
        hash_str(h, 'v', s[i].value);
    }
    if (s != small)
        free(s);
}

static int bad_key(char *why, size_t whylen, const char *fmt, ...) PGW_PRINTF(3, 4);
static int bad_key(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && whylen)
        vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -1;
}

static int hash_bind(Hasher *h, const PgwCacheBind *b, char *why, size_t whylen)
{
    if (b->nformats > 1 && b->nformats != b->nparams)
        return bad_key(why, whylen, "the Bind has %u parameter formats for %u parameters",
                       b->nformats, b->nparams);
    hash_int(h, 'p', b->nparams);
    for (size_t i = 0; i < b->nparams; i++) {
        int format;
        const uint8_t *v;
        int32_t n;
        if (cache_bind_param(b, i, &format, &v, &n) < 0 || (format != 0 && format != 1))
            return bad_key(why, whylen, "parameter $%zu has an invalid format", i + 1);
        hash_int(h, 'F', format);
        if (n < 0)
            hash_str(h, 'x', NULL);
        else
            hash_field(h, 'x', v, (size_t)n);
    }
    /* 0 codes and one code 0 both mean "all text"; otherwise as sent. */
    bool all_text =
        b->nresult_formats == 0 ||
        (b->nresult_formats == 1 && b->result_formats_raw[0] == 0 && b->result_formats_raw[1] == 0);
    if (all_text) {
        hash_str(h, 'R', "text");
    } else {
        for (size_t i = 0; i < b->nresult_formats; i++) {
            int code =
                (int16_t)(b->result_formats_raw[2 * i] << 8 | b->result_formats_raw[2 * i + 1]);
            if (code != 0 && code != 1)
                return bad_key(why, whylen, "result column %zu has an invalid format", i + 1);
            hash_int(h, 'R', code);
        }
    }
    return 0;
}

int cache_key_build(const PgwCacheKeyInput *in, PgwCacheKey *out, char *why, size_t whylen)
{
    if (in->tenant == NULL || in->sql == NULL || in->policy_fp == NULL || in->schema_fp == NULL)
        return bad_key(why, whylen, "the key lacks its tenant, statement or policy");
    if (in->shape == PGW_CACHE_EXTENDED && in->bind == NULL)
        return bad_key(why, whylen, "an extended-protocol key needs its Bind");
    Hasher h;
    hasher_init(&h, "pgwarden cache key 2");
    hash_str(&h, 'T', in->tenant);
    hash_field(&h, 'P', in->policy_fp, PGW_CACHE_DIGEST_LEN);
    hash_field(&h, 'S', in->schema_fp, PGW_CACHE_DIGEST_LEN);
    hash_str(&h, 'H', in->shape == PGW_CACHE_SIMPLE ? "simple" : "extended");
    hash_str(&h, in->raw_text ? 'q' : 'Q', in->sql);
    hash_int(&h, 'n', (long long)in->nparam_types);
    for (size_t i = 0; i < in->nparam_types; i++)
        hash_int(&h, 'y', in->param_types[i]);
    if (in->bind != NULL && hash_bind(&h, in->bind, why, whylen) < 0) {
        uint8_t discard[PGW_CACHE_DIGEST_LEN];
        hasher_final(&h, discard);
        return -1;
    }
    /* The settings by their own digest: the same key whether the caller
     * passes the list or the digest it keeps (client_cache.c recomputes it
     * only when the session's settings change). */
    uint8_t settings_fp[PGW_CACHE_DIGEST_LEN];
    if (in->settings_fp == NULL)
        cache_settings_fingerprint(in->nsettings, in->settings, settings_fp);
    hash_field(&h, 'G', in->settings_fp ? in->settings_fp : settings_fp, PGW_CACHE_DIGEST_LEN);
    hasher_final(&h, out->digest);
    return 0;
}

void cache_settings_fingerprint(size_t n, const PgwCacheSetting *settings,
                                uint8_t out[PGW_CACHE_DIGEST_LEN])
{
    Hasher h;
    hasher_init(&h, "pgwarden cache settings 1");
    hash_settings(&h, n, settings);
    hasher_final(&h, out);
}

void cache_key_hex(const PgwCacheKey *key, char out[2 * PGW_CACHE_DIGEST_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < PGW_CACHE_DIGEST_LEN; i++) {
        out[2 * i] = hex[key->digest[i] >> 4];
        out[2 * i + 1] = hex[key->digest[i] & 15];
    }
    out[2 * PGW_CACHE_DIGEST_LEN] = '\0';
}

/* ---- eligibility ---------------------------------------------------------------- */

typedef struct Analysis {
    const PgwCacheStatement *st;
    bool refused;
    char reason[192];
    /* The relations the statement reads: the policy's list and every
     * schema-qualified relation of its rewrite (the rewrite qualifies each
     * base relation it replaces; CTE names cannot be qualified), so the
     * per-table rules hold even where one of the two lists misses one. */
    size_t nrels;
    char **rels;
    bool analysed; /* the tree was walked: the two flags below mean something */
    bool touches_settings; /* set_config() or a user-defined function */
    bool drops_prepared; /* DEALLOCATE or DISCARD at the top */
    bool neutral_kinds; /* every statement is a SELECT, BEGIN/COMMIT/ROLLBACK or SHOW */
} Analysis;

static void add_relation(Analysis *a, const char *schema, const char *name)
{
    PgwBuf b;
    buf_init(&b);
    if (schema != NULL) {
        buf_append_str(&b, schema);
        buf_append_byte(&b, '.');
    }
    buf_append_str(&b, name);
    char *rel = buf_steal_str(&b);
    for (size_t i = 0; i < a->nrels; i++) {
        if (strcmp(a->rels[i], rel) == 0) {
            free(rel);
            return;
        }
    }
    a->rels = pgw_realloc(a->rels, (a->nrels + 1) * sizeof(char *));
    a->rels[a->nrels++] = rel;
}

static void refuse(Analysis *a, const char *fmt, ...) PGW_PRINTF(2, 3);
static void refuse(Analysis *a, const char *fmt, ...)
{
    if (a->refused)
        return; /* the first reason is the one reported */
    a->refused = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->reason, sizeof a->reason, fmt, ap);
    va_end(ap);
}

/* Whether text holds one of the datetime input words that read the clock,
 * as a word of its own: PostgreSQL's datetime parser splits its input into
 * alphabetic runs and looks each one up, so 'snowco' is safe and
 * 'today 10:00' or 'NOW' are not. */
static bool has_clock_word(const char *s, size_t len)
{
    static const char *const words[] = {"now", "today", "tomorrow", "yesterday"};
    size_t i = 0;
    while (i < len) {
        while (i < len && !isalpha((unsigned char)s[i]))
            i++;
        size_t start = i;
        while (i < len && isalpha((unsigned char)s[i]))
            i++;
        size_t n = i - start;
        for (size_t w = 0; w < PGW_ARRAY_LEN(words); w++)
            if (n == strlen(words[w]) && strncasecmp(s + start, words[w], n) == 0)
                return true;
    }
    return false;
}

/* Functions whose result is not fixed by their arguments and the settings
 * in the key, by exact name and by family. */
static const char *const clock_or_state_functions[] = {
    "age", /* with one argument; checked separately */
    "current_setting",
    "currval",
    "gen_random_uuid",
    "lastval",
    "nextval",
    "now",
    "pg_blocking_pids",
    "pg_cancel_backend",
    "pg_conf_load_time",
    "pg_database_size",
    "pg_indexes_size",
    "pg_is_in_recovery",
    "pg_jit_available",
    "pg_listening_channels",
    "pg_my_temp_schema",
    "pg_notification_queue_usage",
    "pg_notify",
    "pg_relation_filenode",
    "pg_relation_filepath",
    "pg_relation_size",
    "pg_safe_snapshot_blocking_pids",
    "pg_table_size",
    "pg_tablespace_size",
    "pg_terminate_backend",
    "pg_total_relation_size",
    "pg_trigger_depth",
    "set_config",
    "setseed",
    "setval",
    "statement_timestamp",
    "timeofday",
    "transaction_timestamp",
};
static const char *const clock_or_state_prefixes[] = {
    /* the clock and randomness */
    "clock_",
    "random",
    "uuid_generate",
    /* server and session state */
    "inet_client_",
    "inet_server_",
    "pg_backend_",
    "pg_current_",
    "pg_last_",
    "pg_postmaster_",
    "pg_snapshot_",
    "pg_stat_",
    "pg_xact_",
    "pg_wal",
    "txid_",
    "pg_is_in_",
    /* side effects (the policy refuses them; so does the cache) */
    "dblink",
    "lo_",
    "pg_advisory",
    "pg_try_advisory",
    "pg_sleep",
    "pg_log",
    "pg_ls_",
    "pg_read_",
    "pg_replication_",
    "pg_export_",
    "pg_reload_",
    "pg_rotate_",
    "pg_switch_",
    "pg_create_",
    "pg_drop_",
    "pg_promote",
    "pg_logical_",
    /* functions that run SQL given as text, whose volatility is the text's */
    "query_to_",
    "cursor_to_",
    "ts_stat",
};
/* Types whose input functions read the clock ('now', 'today'...). */
static const char *const datetime_types[] = {
    "date", "time", "timetz", "timestamp", "timestamptz", "abstime", "smalldatetime",
};
/* Functions returning a date/time computed from their arguments (and TimeZone). */
static const char *const datetime_functions[] = {
    "date",           "date_bin",         "date_trunc",   "make_date", "make_time",
    "make_timestamp", "make_timestamptz", "time",         "timestamp", "timestamptz",
    "timezone",       "to_date",          "to_timestamp",
};
/* Types a value may be text of at run time. */
static const char *const text_types[] = {
    "text", "varchar", "bpchar", "char", "name", "unknown", "citext", "json", "jsonb", "xml",
};

static bool in_names(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static bool clock_or_state(const char *name)
{
    if (in_names(clock_or_state_functions, PGW_ARRAY_LEN(clock_or_state_functions), name))
        return true;
    for (size_t i = 0; i < PGW_ARRAY_LEN(clock_or_state_prefixes); i++)
        if (strncmp(name, clock_or_state_prefixes[i], strlen(clock_or_state_prefixes[i])) == 0)
            return true;
    return false;
}

static const char *node_string(const PgQuery__Node *n)
{
    return n != NULL && n->node_case == PG_QUERY__NODE__NODE_STRING ? n->string->sval : NULL;
}

static const char *type_name_last(const PgQuery__TypeName *t)
{
    return t != NULL && t->n_names > 0 ? node_string(t->names[t->n_names - 1]) : NULL;
}

/* The column named name is of a non-text type in every relation the
 * statement reads that has such a column, and at least one has it. */
static bool column_never_text(const Analysis *a, const char *name)
{
    bool found = false;
    if (a->st->schema == NULL)
        return false;
    for (size_t i = 0; i < a->nrels; i++) {
        const char *rel = a->rels[i];
        const char *dot = strchr(rel, '.');
        if (dot == NULL)
            continue;
        char nsp[256];
        snprintf(nsp, sizeof nsp, "%.*s", (int)(dot - rel), rel);
        const PgwSchemaTable *t = schema_table(a->st->schema, nsp, dot + 1);
        for (size_t j = 0; t != NULL && j < t->ncolumns; j++) {
            if (strcmp(t->columns[j].name, name) != 0)
                continue;
            if (t->columns[j].is_text)
                return false;
            found = true;
        }
    }
    return found;
}

/* Whether arg, cast to a date/time type, cannot be text read at run time
 * (which could say 'now'). Constants and parameters are checked for the
 * clock words on their own. */
static bool fixed_time_source(const Analysis *a, const PgQuery__Node *arg, int depth)
{
    if (arg == NULL || depth > 32)
        return false;
    switch (arg->node_case) {
    case PG_QUERY__NODE__NODE_A_CONST:
    case PG_QUERY__NODE__NODE_PARAM_REF:
        return true;
    case PG_QUERY__NODE__NODE_TYPE_CAST: {
        const char *t = type_name_last(arg->type_cast->type_name);
        if (t == NULL)
            return false;
        /* x::text::date is as fixed as x; a date/time cast is checked where
         * it stands; other types cannot turn into text. */
        if (in_names(text_types, PGW_ARRAY_LEN(text_types), t))
            return fixed_time_source(a, arg->type_cast->arg, depth + 1);
        return true;
    }
    case PG_QUERY__NODE__NODE_COLUMN_REF: {
        const PgQuery__ColumnRef *c = arg->column_ref;
        const char *name = c->n_fields > 0 ? node_string(c->fields[c->n_fields - 1]) : NULL;
        return name != NULL && column_never_text(a, name);
    }
    case PG_QUERY__NODE__NODE_FUNC_CALL: {
        const PgQuery__FuncCall *f = arg->func_call;
        const char *name = f->n_funcname > 0 ? node_string(f->funcname[f->n_funcname - 1]) : NULL;
        if (name == NULL)
            return false;
        if (in_names(datetime_functions, PGW_ARRAY_LEN(datetime_functions), name))
            return true;
        if ((strcmp(name, "min") == 0 || strcmp(name, "max") == 0) && f->n_args == 1)
            return fixed_time_source(a, f->args[0], depth + 1);
        return false;
    }
    case PG_QUERY__NODE__NODE_COALESCE_EXPR: {
        const PgQuery__CoalesceExpr *c = arg->coalesce_expr;
        for (size_t i = 0; i < c->n_args; i++)
            if (!fixed_time_source(a, c->args[i], depth + 1))
                return false;
        return c->n_args > 0;
    }
    case PG_QUERY__NODE__NODE_A_EXPR: {
        /* ts + interval, ts - ts: fixed when both sides are. */
        const PgQuery__AExpr *e = arg->a_expr;
        return e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_OP && e->lexpr != NULL &&
               fixed_time_source(a, e->lexpr, depth + 1) &&
               fixed_time_source(a, e->rexpr, depth + 1);
    }
    default:
        return false;
    }
}

static void check_datetime_cast(Analysis *a, const char *type, const PgQuery__Node *arg)
{
    if (!fixed_time_source(a, arg, 0))
        refuse(a, "it casts a value that may be text to %s ('now' and 'today' read the clock)",
               type);
}

static bool user_function(const PgwConfig *cfg, const char *schema, const char *name)
{
    if (schema != NULL && strcmp(schema, "pg_catalog") != 0)
        return !(strcmp(schema, "information_schema") == 0 && name[0] == '_');
    for (size_t i = 0; cfg != NULL && i < cfg->nallowed_functions; i++) {
        const char *f = cfg->allowed_functions[i];
        const char *dot = strrchr(f, '.');
        const char *fname = dot ? dot + 1 : f;
        if (strcmp(fname, name) == 0 && (dot == NULL || strncmp(f, "pg_catalog.", 11) != 0))
            return true;
    }
    return false;
}

static void check_func_call(Analysis *a, const PgQuery__FuncCall *f)
{
    const char *schema = NULL, *name = NULL;
    if (f->n_funcname == 1) {
        name = node_string(f->funcname[0]);
    } else if (f->n_funcname == 2) {
        schema = node_string(f->funcname[0]);
        name = node_string(f->funcname[1]);
    }
    if (name == NULL) {
        refuse(a, "it calls a function pgwarden cannot name");
        return;
    }
    if (user_function(a->st->cfg, schema, name)) {
        refuse(a,
               "it calls %s%s%s(), a user-defined function whose volatility pgwarden does not know",
               schema ? schema : "", schema ? "." : "", name);
        return;
    }
    if (strcmp(name, "age") == 0) {
        if (f->n_args == 1)
            refuse(a, "it calls age() with one argument, which counts from today");
        return;
    }
    if (clock_or_state(name)) {
        refuse(a, "it calls %s(), whose result changes from one run to the next", name);
        return;
    }
    if (f->n_args == 1 && in_names(datetime_types, PGW_ARRAY_LEN(datetime_types), name))
        check_datetime_cast(a, name, f->args[0]);
}

/* Whether a call may change a session setting: set_config(), or a
 * user-defined function (its body or its SET clause may). */
static void note_settings_call(Analysis *a, const PgQuery__FuncCall *f)
{
    const char *schema = NULL, *name = NULL;
    if (f->n_funcname == 1) {
        name = node_string(f->funcname[0]);
    } else if (f->n_funcname == 2) {
        schema = node_string(f->funcname[0]);
        name = node_string(f->funcname[1]);
    }
    if (name == NULL || strcmp(name, "set_config") == 0 || user_function(a->st->cfg, schema, name))
        a->touches_settings = true;
}

static void visit(const ProtobufCMessage *m, void *arg)
{
    Analysis *a = arg;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (d == &pg_query__func_call__descriptor)
        note_settings_call(a, (const PgQuery__FuncCall *)m);
    if (a->refused)
        return;
    if (d == &pg_query__func_call__descriptor) {
        check_func_call(a, (const PgQuery__FuncCall *)m);
    } else if (d == &pg_query__sqlvalue_function__descriptor) {
        const PgQuery__SQLValueFunction *v = (const PgQuery__SQLValueFunction *)m;
        if (v->op >= PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_DATE &&
            v->op <= PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIMESTAMP_N)
            refuse(a, "it reads the clock (CURRENT_DATE, CURRENT_TIMESTAMP, LOCALTIME...)");
    } else if (d == &pg_query__a__const__descriptor) {
        const PgQuery__AConst *c = (const PgQuery__AConst *)m;
        if (c->val_case == PG_QUERY__A__CONST__VAL_SVAL && c->sval != NULL &&
            c->sval->sval != NULL && has_clock_word(c->sval->sval, strlen(c->sval->sval)))
            refuse(a, "a string constant holds 'now', 'today', 'tomorrow' or 'yesterday'");
    } else if (d == &pg_query__type_cast__descriptor) {
        const PgQuery__TypeCast *tc = (const PgQuery__TypeCast *)m;
        const char *t = type_name_last(tc->type_name);
        if (t != NULL && in_names(datetime_types, PGW_ARRAY_LEN(datetime_types), t))
            check_datetime_cast(a, t, tc->arg);
    } else if (d == &pg_query__select_stmt__descriptor) {
        const PgQuery__SelectStmt *s = (const PgQuery__SelectStmt *)m;
        if (s->into_clause != NULL)
            refuse(a, "SELECT INTO creates a table");
        else if (s->n_locking_clause > 0)
            refuse(a, "it locks rows (FOR UPDATE/SHARE)");
    } else if (d == &pg_query__insert_stmt__descriptor || d == &pg_query__update_stmt__descriptor ||
               d == &pg_query__delete_stmt__descriptor || d == &pg_query__merge_stmt__descriptor) {
        /* WITH d AS (DELETE ... RETURNING *) SELECT ...: a SELECT at the top */
        refuse(a, "it writes (a data-modifying WITH)");
    } else if (d == &pg_query__range_table_sample__descriptor) {
        refuse(a, "TABLESAMPLE picks different rows every time");
    }
}

static bool live_state_relation(const char *rel);

static void collect_relations(const ProtobufCMessage *m, void *arg)
{
    Analysis *a = arg;
    if (m->descriptor != &pg_query__range_var__descriptor)
        return;
    const PgQuery__RangeVar *rv = (const PgQuery__RangeVar *)m;
    if (rv->relname == NULL)
        return;
    if (rv->schemaname != NULL && rv->schemaname[0] != '\0') {
        add_relation(a, rv->schemaname, rv->relname);
        return;
    }
    /* Unqualified: pg_catalog comes first in every search_path, so a name
     * of the server's live state is that (a CTE of the same name is only
     * refused for nothing). */
    char rel[256];
    snprintf(rel, sizeof rel, "pg_catalog.%s", rv->relname);
    if (live_state_relation(rel))
        refuse(a, "it reads %s, the server's live state", rel);
}

static const char *statement_kind_reason(const PgQuery__Node *n)
{
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
        return "it controls a transaction";
    case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
    case PG_QUERY__NODE__NODE_FETCH_STMT:
    case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT:
        return "it uses a cursor";
    case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
    case PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT:
        return "it reads or changes a setting";
    case PG_QUERY__NODE__NODE_COPY_STMT:
        return "COPY is streamed, not cached";
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
        return "EXPLAIN describes a plan, not data";
    case PG_QUERY__NODE__NODE_PREPARE_STMT:
    case PG_QUERY__NODE__NODE_EXECUTE_STMT:
    case PG_QUERY__NODE__NODE_DEALLOCATE_STMT:
        return "it is an SQL-level prepared statement command";
    default:
        return "it is not a query";
    }
}

/* Catalog relations whose rows are the server's live state, not data. */
static bool live_state_relation(const char *rel)
{
    static const char *const prefixes[] = {
        "pg_catalog.pg_stat",           "pg_catalog.pg_locks",      "pg_catalog.pg_settings",
        "pg_catalog.pg_prepared_",      "pg_catalog.pg_cursors",    "pg_catalog.pg_backend_",
        "pg_catalog.pg_replication_",   "pg_catalog.pg_shmem_",     "pg_catalog.pg_file_settings",
        "pg_catalog.pg_hba_file_rules", "pg_catalog.pg_ident_file",
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(prefixes); i++)
        if (strncmp(rel, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

static void analyze_sql(Analysis *a, const char *sql)
{
    PgQueryProtobufParseResult pr = pg_query_parse_protobuf(sql);
    if (pr.error != NULL) {
        pg_query_free_protobuf_parse_result(pr);
        refuse(a, "pgwarden cannot parse the statement");
        return;
    }
    PgQuery__ParseResult *tree = pg_query__parse_result__unpack(
        NULL, pr.parse_tree.len, (const uint8_t *)pr.parse_tree.data);
    pg_query_free_protobuf_parse_result(pr);
    if (tree == NULL) {
        refuse(a, "pgwarden cannot read the parse tree");
        return;
    }
    if (tree->n_stmts == 0)
        refuse(a, "the statement is empty");
    a->analysed = true;
    a->neutral_kinds = true;
    for (size_t i = 0; i < tree->n_stmts; i++) {
        const PgQuery__Node *s = tree->stmts[i]->stmt;
        if (s != NULL && (s->node_case == PG_QUERY__NODE__NODE_DEALLOCATE_STMT ||
                          s->node_case == PG_QUERY__NODE__NODE_DISCARD_STMT))
            a->drops_prepared = true;
        if (s == NULL || s->node_case != PG_QUERY__NODE__NODE_SELECT_STMT) {
            /* BEGIN, COMMIT, ROLLBACK and SHOW change no setting by
             * themselves (a ROLLBACK undoes SETs, which were seen when they
             * ran); anything else may. */
            if (s == NULL || (s->node_case != PG_QUERY__NODE__NODE_TRANSACTION_STMT &&
                              s->node_case != PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT))
                a->neutral_kinds = false;
            refuse(a, "%s", s == NULL ? "the statement is empty" : statement_kind_reason(s));
        }
    }
    if (!a->refused) {
        /* Relations first, so the cast rule can look columns up. */
        policy_walk_messages(&tree->base, collect_relations, a);
    }
    if (a->neutral_kinds) /* the settings flags are wanted even when refused */
        policy_walk_messages(&tree->base, visit, a);
    pg_query__parse_result__free_unpacked(tree, NULL);
}

/* The analysis recurses once per nesting level of the rewrite (the parse,
 * protobuf-c's unpack, the walks), and the rewrite may be longer and a few
 * levels deeper than the statement the policy checked. Like the policy, it
 * runs on the caller's stack when enough of it is left (nearly always: a
 * worker has PGW_POLICY_INLINE_STACK) and on a helper thread with enough
 * otherwise, never risking the process on an estimate. The estimate is the
 * policy's worst case, per byte: about 175 bytes for the parse and, at a
 * level per two bytes, 500 for the unpack and walks; tripled under
 * AddressSanitizer, whose frames are larger. */
#if defined(__SANITIZE_ADDRESS__)
#define ANALYSIS_STACK_FACTOR 3
#else
#define ANALYSIS_STACK_FACTOR 1
#endif

static size_t analysis_stack(size_t len)
{
    return ((size_t)2 * 1024 * 1024 + 700 * len) * ANALYSIS_STACK_FACTOR;
}

typedef struct AnalyzeJob {
    Analysis *a;
    const char *sql;
} AnalyzeJob;

static int analyze_job(void *arg)
{
    AnalyzeJob *j = arg;
    analyze_sql(j->a, j->sql);
    return 0;
}

/* The eligibility analysis recurses over the rewrite's tree: it runs where
 * the stack holds it, on a helper thread for a rewrite too long for the
 * caller's (policy_guard_run, as the policy's own rewrite does). */
static void analyze_on_enough_stack(Analysis *a, const char *sql)
{
    AnalyzeJob j = {a, sql};
    if (policy_guard_run(analysis_stack(strlen(sql)), analyze_job, &j) != 0)
        refuse(a, "pgwarden has no stack to analyse a statement this large");
}

static void check_params(Analysis *a, const PgwCacheBind *b)
{
    for (size_t i = 0; b != NULL && i < b->nparams && !a->refused; i++) {
        int format;
        const uint8_t *v;
        int32_t n;
        if (cache_bind_param(b, i, &format, &v, &n) < 0) {
            refuse(a, "its Bind message is malformed");
            return;
        }
        if (format == 0 && n > 0 && has_clock_word((const char *)v, (size_t)n))
            refuse(a, "parameter $%zu holds 'now', 'today', 'tomorrow' or 'yesterday'", i + 1);
    }
}

void cache_eligible(const PgwCacheStatement *st, PgwCacheVerdict *out)
{
    Analysis a = {.st = st};
    const PgwConfig *cfg = st->cfg;
    const PgwPolicyResult *pr = st->policy;
    int ttl = -1; /* the shortest of the relations' ttls; [cache] ttl when none */

    memset(out, 0, sizeof(*out));
    if (cfg == NULL || cfg->cache_mode == PGW_CACHE_OFF)
        refuse(&a, "the result cache is off");
    else if (pr == NULL || pr->decision != PGW_POLICY_ALLOW || pr->sql == NULL)
        refuse(&a, "the policy did not allow it");
    else if (st->in_transaction)
        refuse(&a, "it runs inside an explicit transaction");
    else if (st->settings_unknown)
        refuse(&a, "the session's settings are not known");
    else if (st->max_rows != 0)
        refuse(&a, "Execute asks for %u rows at a time (a portal read in parts)", st->max_rows);
    else if (cfg->cache_max_entry == 0)
        refuse(&a, "max_entry is 0");
    if (a.refused)
        goto done;

    for (size_t i = 0; i < pr->nrelations; i++)
        add_relation(&a, NULL, pr->relations[i]);
    analyze_on_enough_stack(&a, pr->sql);
    check_params(&a, st->bind);
    if (!a.refused && !pr->read_only_query)
        refuse(&a, "it is not a query");
    if (!a.refused && !pr->cacheable)
        refuse(&a, "the policy found a volatile function in it");
    for (size_t i = 0; i < a.nrels && !a.refused; i++) {
        const char *rel = a.rels[i];
        if (live_state_relation(rel)) {
            refuse(&a, "it reads %s, the server's live state", rel);
            break;
        }
        const char *dot = strchr(rel, '.');
        char nsp[256];
        snprintf(nsp, sizeof nsp, "%.*s", dot ? (int)(dot - rel) : 0, rel);
        const PgwTablePolicy *t = dot ? config_table(cfg, nsp, dot + 1) : NULL;
        /* A table's cache_ttl overrides [cache] ttl for what reads it, up or
         * down; the shortest among the tables read wins. */
        int table_ttl = t != NULL && t->cache_ttl_ms != 0 ? t->cache_ttl_ms : cfg->cache_ttl_ms;
        if (t != NULL && t->cache_ttl_ms < 0)
            refuse(&a, "table %s has cache_ttl = 0", rel);
        else if (ttl < 0 || table_ttl < ttl)
            ttl = table_ttl;
    }
    if (ttl < 0)
        ttl = cfg->cache_ttl_ms;
    if (!a.refused && ttl <= 0)
        refuse(&a, "ttl is 0");
done:
    out->settings_safe = a.analysed && a.neutral_kinds && !a.touches_settings;
    out->drops_prepared = !a.analysed || a.drops_prepared;
    out->cacheable = !a.refused;
    out->ttl_ms = a.refused ? 0 : ttl;
    if (a.refused) {
        snprintf(out->reason, sizeof out->reason, "%s", a.reason);
        for (size_t i = 0; i < a.nrels; i++)
            free(a.rels[i]);
        free(a.rels);
    } else {
        out->nrelations = a.nrels;
        out->relations = a.rels;
    }
}

bool cache_bind_cacheable(const PgwCacheBind *b, char *why, size_t whylen)
{
    Analysis a = {.st = NULL};
    check_params(&a, b);
    if (a.refused && why && whylen)
        snprintf(why, whylen, "%s", a.reason);
    return !a.refused;
}

void cache_verdict_free(PgwCacheVerdict *v)
{
    for (size_t i = 0; i < v->nrelations; i++)
        free(v->relations[i]);
    free(v->relations);
    v->relations = NULL;
    v->nrelations = 0;
}
