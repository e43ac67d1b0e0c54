/*
 * config.c — pgwarden's settings: the one table that declares every
 * [pgwarden], [llm] and [cache] key, the value syntaxes, storing a value
 * into a PgwConfig, formatting it back, lookups, and the process-wide
 * current config. Reading the INI file itself is config_ini.c.
 *
 * Design choices: config_settings[] is the single source of truth for the
 * global settings. Defaults are applied by feeding each row's default_value
 * through the same setter the file uses (config_setting_store), so the
 * table cannot drift from behaviour, and the docs test checks the man page
 * and the annotated conf/pgwarden.ini against the same rows. A config is
 * never mutated once loaded: reload loads a new one; users hold references
 * (config_acquire/config_release) so an old one lives until its last
 * statement finishes.
 */
#include "config.h"
#include "config_int.h"

#include "buf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the settings table ----------------------------------------------- */

const char *const config_auth_names[] = {"trust", "md5", "scram-sha-256", NULL};
static const char *const tls_names[] = {"disable", "allow", "require", NULL};
static const char *const access_names[] = {"deny", "allow", NULL};
static const char *const provider_names[] = {"openai", "anthropic", NULL};
static const char *const cache_names[] = {"off", "memory", "redis", NULL};
static const char *const invalidation_names[] = {"ttl", "replication", NULL};
const char *const config_pool_mode_names[] = {"session", "transaction", NULL};

#define OFF(f) offsetof(PgwConfig, f)
#define ROW(sec, name, type, def, rl, help, f, f2, lo, hi, ch)                                     \
    {                                                                                              \
        sec, name, type, def, rl, help, OFF(f), f2, lo, hi, ch                                     \
    }
#define STR(sec, name, def, rl, f, lo, help)                                                       \
    ROW(sec, name, PGW_SET_STRING, def, rl, help, f, 0, lo, 0, NULL)
#define PATH(sec, name, rl, f, help) ROW(sec, name, PGW_SET_PATH, "", rl, help, f, 0, 0, 0, NULL)
#define INT(sec, name, def, rl, f, lo, hi, help)                                                   \
    ROW(sec, name, PGW_SET_INT, def, rl, help, f, 0, lo, hi, NULL)
#define DUR(sec, name, def, rl, f, lo, help)                                                       \
    ROW(sec, name, PGW_SET_DURATION, def, rl, help, f, 0, lo, INT_MAX, NULL)
#define ENUM(sec, name, def, rl, f, ch, help)                                                      \
    ROW(sec, name, PGW_SET_ENUM, def, rl, help, f, 0, 0, 0, ch)
#define LIST(sec, name, rl, f, n, help)                                                            \
    ROW(sec, name, PGW_SET_LIST, "", rl, help, f, OFF(n), 0, 0, NULL)

const PgwSetting config_settings[] = {
    STR("pgwarden", "listen_addr", "127.0.0.1", false, listen_addr, 1,
        "address to listen on; '*' for every address"),
    INT("pgwarden", "listen_port", "6432", false, listen_port, 1, 65535, "TCP port"),
    PATH("pgwarden", "unix_socket_dir", false, unix_socket_dir,
         "directory for the .s.PGSQL.PORT socket; empty: none"),
    INT("pgwarden", "workers", "0", false, workers, 0, 1024, "event-loop threads; 0: one per CPU"),
    ENUM("pgwarden", "auth_type", "scram-sha-256", true, auth_type, config_auth_names,
         "client authentication: trust, md5 or scram-sha-256"),
    PATH("pgwarden", "auth_file", true, auth_file, "user list in PgBouncer's userlist.txt format"),
    ENUM("pgwarden", "client_tls", "allow", true, client_tls, tls_names,
         "TLS from clients: disable, allow or require"),
    PATH("pgwarden", "tls_cert_file", true, tls_cert_file, "server certificate (PEM)"),
    PATH("pgwarden", "tls_key_file", true, tls_key_file, "server private key (PEM)"),
    LIST("pgwarden", "admin_users", true, admin_users, nadmin_users,
         "users allowed into the admin console (database pgwarden)"),
    PATH("pgwarden", "log_file", false, log_file, "log destination; empty: stderr"),
    PATH("pgwarden", "audit_log", true, audit_log,
         "JSON-lines audit log, one record per statement; empty: off"),
    INT("pgwarden", "metrics_port", "0", false, metrics_port, 0, 65535,
        "HTTP port for /metrics and /healthz; 0: off"),
    INT("pgwarden", "pool_size", "10", true, pool_size, 1, 10000,
        "backend sessions per tenant unless the tenant sets its own"),
    DUR("pgwarden", "pool_timeout", "30s", true, pool_timeout_ms, 1,
        "how long a client waits for a backend session"),
    ENUM("pgwarden", "pool_mode", "session", true, pool_mode, config_pool_mode_names,
         "session: a client keeps its backend session; transaction: only while a transaction runs"),
    INT("pgwarden", "max_prepared_statements", "200", true, max_prepared_statements, 1, 100000,
        "transaction mode: protocol-level prepared statements kept per backend session"),
    ROW("pgwarden", "max_prepared_memory", PGW_SET_SIZE, "16MB", true,
        "memory one client's prepared statements may hold in pgwarden", max_prepared_memory, 0,
        1024, 1073741823, NULL),
    INT("pgwarden", "peer_id", "0", false, peer_id, 0, 255,
        "this instance's id in [peers] (cancel forwarding); 0: none"),
    DUR("pgwarden", "statement_timeout", "30s", true, statement_timeout_ms, 0,
        "longest a statement may run; 0: no limit"),
    ROW("pgwarden", "max_query_size", PGW_SET_SIZE, "1MB", true,
        "longest Query or Parse message; longer ones are refused (54000), unread", max_query_size,
        0, 1024, 1073741823, NULL),
    DUR("pgwarden", "shutdown_timeout", "30s", true, shutdown_timeout_ms, 0,
        "on SIGTERM, how long running statements may finish"),
    DUR("pgwarden", "client_idle_timeout", "0", true, client_idle_timeout_ms, 0,
        "disconnect clients idle this long; 0: never"),
    ENUM("pgwarden", "default_access", "deny", true, default_access, access_names,
         "tables without a [table.*] section: deny or allow"),
    STR("pgwarden", "search_path", "public", true, search_path, 1,
        "search_path pinned on backend sessions"),
    LIST("pgwarden", "allowed_functions", true, allowed_functions, nallowed_functions,
         "user-defined functions (schema.name) queries may call"),
    INT("pgwarden", "max_nesting_depth", "10000", true, max_nesting_depth, 100, 1000000,
        "deepest parse tree a statement may have; deeper: 54001"),
    ROW("pgwarden", "rewrite_cache_size", PGW_SET_SIZE, "64MB", true,
        "memory for cached policy rewrites; 0: no cache", rewrite_cache_size, 0, 0, 0, NULL),

    ENUM("llm", "provider", "openai", true, llm_provider, provider_names,
         "API dialect: openai (and compatible servers) or anthropic"),
    STR("llm", "base_url", "https://api.openai.com/v1", true, llm_base_url, 1, "API endpoint"),
    STR("llm", "model", "gpt-4o-mini", true, llm_model, 1, "model name"),
    STR("llm", "api_key", "", true, llm_api_key, 0, "API key; never logged"),
    DUR("llm", "timeout", "30s", true, llm_timeout_ms, 1, "per-request timeout"),
    INT("llm", "max_attempts", "3", true, llm_max_attempts, 1, 10,
        "requests per question, retries and self-correction together"),
    ROW("llm", "rate_limit", PGW_SET_RATE, "10/min", true,
        "questions per tenant per period (10/min, 100/h); 0: none", llm_rate_limit,
        OFF(llm_rate_period_ms), 0, 0, NULL),
    ROW("llm", "token_budget", PGW_SET_LONG, "0", true, "tokens per tenant per day; 0: none",
        llm_token_budget, 0, 0, LONG_MAX, NULL),
    PATH("llm", "examples_file", true, llm_examples_file,
         "question/SQL examples added to every prompt"),
    ROW("llm", "sample_values", PGW_SET_BOOL, "no", true,
        "show the model a few (masked) sample values per column", llm_sample_values, 0, 0, 0, NULL),
    ROW("llm", "schema_budget", PGW_SET_SIZE, "24kB", true,
        "schema text (DDL and sample values) per prompt; the whole schema when it fits",
        llm_schema_budget, 0, 0, 0, NULL),
    INT("llm", "min_tables", "4", true, llm_min_tables, 1, 1000,
        "tables a prompt shows at least when the schema does not fit"),
    INT("llm", "max_tables", "10", true, llm_max_tables, 1, 1000,
        "tables a prompt shows at most when the schema does not fit"),

    ENUM("cache", "mode", "memory", false, cache_mode, cache_names,
         "result cache: off, memory or redis"),
    STR("cache", "redis", "redis://127.0.0.1:6379/0", false, cache_redis, 0,
        "Redis URL for mode = redis"),
    DUR("cache", "ttl", "60s", true, cache_ttl_ms, 0, "how long a cached result is served"),
    ROW("cache", "max_entry", PGW_SET_SIZE, "1MB", true, "largest result that is cached",
        cache_max_entry, 0, 0, 0, NULL),
    ROW("cache", "max_memory", PGW_SET_SIZE, "256MB", true, "memory cache size limit",
        cache_max_memory, 0, 0, 0, NULL),
    ENUM("cache", "invalidation", "ttl", false, cache_invalidation, invalidation_names,
         "how cached results learn of writes: ttl, or replication (the backend's changes)"),
    STR("cache", "publication", "pgwarden_cache", false, cache_publication, 1,
        "the backend's publication followed when invalidation = replication"),
    STR("cache", "key_prefix", "pgwarden:", false, cache_key_prefix, 0,
        "prefix of every Redis key and channel pgwarden uses"),
    DUR("cache", "redis_timeout", "250ms", false, cache_redis_timeout_ms, 1,
        "a Redis reply slower than this bypasses the cache for that statement"),
    PATH("cache", "redis_tls_ca_file", false, cache_redis_tls_ca_file,
         "rediss://: CA certificates to verify Redis with; empty: the system's"),
    PATH("cache", "redis_tls_cert_file", false, cache_redis_tls_cert_file,
         "rediss://: client certificate, for a Redis that asks for one"),
    PATH("cache", "redis_tls_key_file", false, cache_redis_tls_key_file,
         "rediss://: the client certificate's private key"),
};
const size_t config_nsettings = PGW_ARRAY_LEN(config_settings);

const PgwSetting *config_find_setting(const char *section, const char *name)
{
    for (size_t i = 0; i < config_nsettings; i++) {
        const PgwSetting *set = &config_settings[i];
        if (strcasecmp(set->section, section) == 0 && strcasecmp(set->name, name) == 0)
            return set;
    }
    return NULL;
}

/* ---- value syntaxes ---------------------------------------------------- */

/* Digits, optional blanks, unit. Leaves the unit in *unit. */
static int parse_number_unit(const char *s, long long *num, const char **unit)
{
    const char *p = s;
    long long v = 0;

    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (LLONG_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    while (*p == ' ' || *p == '\t')
        p++;
    *num = v;
    *unit = p;
    return 0;
}

int config_parse_duration_ms(const char *s, int *out_ms)
{
    static const struct {
        const char *unit;
        long long ms;
    } units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"min", 60000}, {"h", 3600000}};
    long long v;
    const char *unit;

    if (!s || parse_number_unit(s, &v, &unit) < 0)
        return -1;
    for (size_t i = 0; i < PGW_ARRAY_LEN(units); i++) {
        if (strcmp(unit, units[i].unit) != 0)
            continue;
        if (v > INT_MAX / units[i].ms)
            return -1;
        *out_ms = (int)(v * units[i].ms);
        return 0;
    }
    return -1;
}

int config_parse_size(const char *s, size_t *out)
{
    static const struct {
        const char *unit;
        unsigned long long mult;
    } units[] = {{"", 1}, {"B", 1}, {"kB", 1024}, {"MB", 1024 * 1024}, {"GB", 1024ULL << 20}};
    long long v;
    const char *unit;

    if (!s || parse_number_unit(s, &v, &unit) < 0)
        return -1;
    for (size_t i = 0; i < PGW_ARRAY_LEN(units); i++) {
        /* kb, Mb, mb ... all mean what the user obviously meant. */
        if (strcasecmp(unit, units[i].unit) != 0)
            continue;
        if ((unsigned long long)v > SIZE_MAX / units[i].mult)
            return -1;
        *out = (size_t)v * units[i].mult;
        return 0;
    }
    return -1;
}

int config_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"yes", "on", "true", "1"};
    static const char *const no[] = {"no", "off", "false", "0"};

    for (size_t i = 0; s && i < PGW_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

int config_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    if (!isdigit((unsigned char)*s) && !(*s == '-' && isdigit((unsigned char)s[1])))
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* "10/min", "5/10s", "0". */
static int parse_rate(const char *s, int *count, int *period_ms)
{
    char num[32], per[64];
    const char *slash = strchr(s, '/');
    long n;

    if (strcmp(s, "0") == 0) {
        *count = 0;
        *period_ms = 0;
        return 0;
    }
    if (!slash || (size_t)(slash - s) >= sizeof(num))
        return -1;
    memcpy(num, s, slash - s);
    num[slash - s] = '\0';
    /* "/min" means "/1min". */
    snprintf(per, sizeof(per), "%s%s", isdigit((unsigned char)slash[1]) ? "" : "1", slash + 1);
    if (config_parse_long(num, 1, INT_MAX, &n) < 0 ||
        config_parse_duration_ms(per, period_ms) < 0 || *period_ms <= 0 ||
        strlen(slash + 1) >= sizeof(per) - 1)
        return -1;
    *count = (int)n;
    return 0;
}

/* Comma-separated, blanks around items ignored, empty string: empty list. */
int config_parse_list(const char *s, char ***out, size_t *n_out)
{
    char **items = NULL;
    size_t n = 0;
    const char *p = s;

    while (*p == ' ' || *p == '\t')
        p++;
    while (*p) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *b = p, *e = end;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (b == e)
            goto fail;
        items = pgw_realloc(items, (n + 1) * sizeof(*items));
        items[n++] = pgw_strndup(b, e - b);
        if (!comma)
            break;
        p = comma + 1;
        if (!*p)
            goto fail; /* trailing comma */
    }
    *out = items;
    *n_out = n;
    return 0;
fail:
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
    return -1;
}

static void free_list(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

static char *resolve_path(const char *dir, const char *value)
{
    if (!*value)
        return NULL;
    if (value[0] == '/' || !dir)
        return pgw_strdup(value);
    PgwBuf b;
    buf_init(&b);
    buf_printf(&b, "%s/%s", dir, value);
    return buf_steal_str(&b);
}

#define FIELD(cfg, off, type) ((type *)((char *)(cfg) + (off)))

/* Store value into cfg per the setting's type. On a bad value, writes what
 * was expected to why and returns -1. */
int config_setting_store(PgwConfig *cfg, const PgwSetting *set, const char *value, char *why,
                         size_t whylen)
{
    switch (set->type) {
    case PGW_SET_STRING: {
        char **f = FIELD(cfg, set->offset, char *);
        if (set->min > 0 && !*value) {
            snprintf(why, whylen, "must not be empty");
            return -1;
        }
        free(*f);
        *f = *value ? pgw_strdup(value) : NULL;
        return 0;
    }
    case PGW_SET_PATH: {
        char **f = FIELD(cfg, set->offset, char *);
        free(*f);
        *f = resolve_path(cfg->dir, value);
        return 0;
    }
    case PGW_SET_INT:
    case PGW_SET_LONG: {
        long v;
        if (config_parse_long(value, set->min, set->max, &v) < 0) {
            snprintf(why, whylen, "expected an integer from %ld to %ld", set->min, set->max);
            return -1;
        }
        if (set->type == PGW_SET_INT)
            *FIELD(cfg, set->offset, int) = (int)v;
        else
            *FIELD(cfg, set->offset, long) = v;
        return 0;
    }
    case PGW_SET_BOOL:
        if (config_parse_bool(value, FIELD(cfg, set->offset, bool)) < 0) {
            snprintf(why, whylen, "expected yes or no");
            return -1;
        }
        return 0;
    case PGW_SET_DURATION: {
        int ms;
        if (config_parse_duration_ms(value, &ms) < 0 || ms < set->min) {
            snprintf(why, whylen, "expected a duration like 500ms, 30s, 5min or 1h%s",
                     set->min > 0 ? ", more than 0" : "");
            return -1;
        }
        *FIELD(cfg, set->offset, int) = ms;
        return 0;
    }
    case PGW_SET_SIZE: {
        size_t v;
        if (config_parse_size(value, &v) < 0) {
            snprintf(why, whylen, "expected a size like 512kB, 1MB or 2GB");
            return -1;
        }
        /* A size row with max > 0 is bounded: [min, max] bytes. */
        if (set->max > 0 && (v < (size_t)set->min || v > (size_t)set->max)) {
            snprintf(why, whylen, "expected a size from %ld bytes to %ld bytes", set->min,
                     set->max);
            return -1;
        }
        *FIELD(cfg, set->offset, size_t) = v;
        return 0;
    }
    case PGW_SET_ENUM:
        for (int i = 0; set->choices[i]; i++) {
            if (strcasecmp(value, set->choices[i]) == 0) {
                *FIELD(cfg, set->offset, int) = i;
                return 0;
            }
        }
        {
            PgwBuf b;
            buf_init(&b);
            buf_append_str(&b, "expected one of");
            for (int i = 0; set->choices[i]; i++)
                buf_printf(&b, "%s %s", i ? "," : "", set->choices[i]);
            char *list = buf_steal_str(&b);
            snprintf(why, whylen, "%s", list);
            free(list);
        }
        return -1;
    case PGW_SET_LIST: {
        char **items;
        size_t n;
        if (config_parse_list(value, &items, &n) < 0) {
            snprintf(why, whylen, "expected a comma-separated list without empty items");
            return -1;
        }
        free_list(*FIELD(cfg, set->offset, char **), *FIELD(cfg, set->offset2, size_t));
        *FIELD(cfg, set->offset, char **) = items;
        *FIELD(cfg, set->offset2, size_t) = n;
        return 0;
    }
    case PGW_SET_RATE:
        if (parse_rate(value, FIELD(cfg, set->offset, int), FIELD(cfg, set->offset2, int)) < 0) {
            snprintf(why, whylen, "expected a rate like 10/min, 100/h or 5/10s, or 0");
            return -1;
        }
        return 0;
    }
    snprintf(why, whylen, "unsupported setting type");
    return -1;
}

/* The largest unit that divides the value and leaves at least 2 of it, so
 * 60s stays "60s" but 120s reads "2min". */
static void format_duration(int ms, char *buf, size_t len)
{
    if (ms == 0)
        snprintf(buf, len, "0");
    else if (ms % 3600000 == 0 && ms >= 7200000)
        snprintf(buf, len, "%dh", ms / 3600000);
    else if (ms % 60000 == 0 && ms >= 120000)
        snprintf(buf, len, "%dmin", ms / 60000);
    else if (ms % 1000 == 0)
        snprintf(buf, len, "%ds", ms / 1000);
    else
        snprintf(buf, len, "%dms", ms);
}

void config_format_setting(const PgwConfig *cfg, const PgwSetting *set, char *buf, size_t len)
{
    switch (set->type) {
    case PGW_SET_STRING:
    case PGW_SET_PATH: {
        const char *v = *FIELD(cfg, set->offset, char *);
        if (v && strcmp(set->name, "api_key") == 0)
            v = "(hidden)";
        snprintf(buf, len, "%s", v ? v : "");
        return;
    }
    case PGW_SET_INT:
        snprintf(buf, len, "%d", *FIELD(cfg, set->offset, int));
        return;
    case PGW_SET_LONG:
        snprintf(buf, len, "%ld", *FIELD(cfg, set->offset, long));
        return;
    case PGW_SET_BOOL:
        snprintf(buf, len, "%s", *FIELD(cfg, set->offset, bool) ? "yes" : "no");
        return;
    case PGW_SET_DURATION:
        format_duration(*FIELD(cfg, set->offset, int), buf, len);
        return;
    case PGW_SET_SIZE: {
        size_t v = *FIELD(cfg, set->offset, size_t);
        if (v && v % (1024 * 1024 * 1024) == 0)
            snprintf(buf, len, "%zuGB", v >> 30);
        else if (v && v % (1024 * 1024) == 0)
            snprintf(buf, len, "%zuMB", v >> 20);
        else if (v && v % 1024 == 0)
            snprintf(buf, len, "%zukB", v >> 10);
        else
            snprintf(buf, len, "%zuB", v);
        return;
    }
    case PGW_SET_ENUM:
        snprintf(buf, len, "%s", set->choices[*FIELD(cfg, set->offset, int)]);
        return;
    case PGW_SET_LIST: {
        char **items = *FIELD(cfg, set->offset, char **);
        size_t n = *FIELD(cfg, set->offset2, size_t);
        PgwBuf b;
        buf_init(&b);
        for (size_t i = 0; i < n; i++)
            buf_printf(&b, "%s%s", i ? ", " : "", items[i]);
        char *joined = buf_steal_str(&b);
        snprintf(buf, len, "%s", joined);
        free(joined);
        return;
    }
    case PGW_SET_RATE: {
        static const struct {
            const char *unit;
            int ms;
        } units[] = {{"h", 3600000}, {"min", 60000}, {"s", 1000}, {"ms", 1}};
        int n = *FIELD(cfg, set->offset, int), per = *FIELD(cfg, set->offset2, int);
        if (n == 0) {
            snprintf(buf, len, "0");
            return;
        }
        /* "10/min" rather than "10/1min". */
        for (size_t i = 0; i < PGW_ARRAY_LEN(units); i++) {
            if (per % units[i].ms)
                continue;
            if (per == units[i].ms)
                snprintf(buf, len, "%d/%s", n, units[i].unit);
            else
                snprintf(buf, len, "%d/%d%s", n, per / units[i].ms, units[i].unit);
            return;
        }
        return;
    }
    }
    snprintf(buf, len, "?");
}

size_t config_restart_needed(const PgwConfig *old, const PgwConfig *new_cfg, char *buf, size_t len)
{
    char a[512], b[512];
    size_t n = 0, used = 0;

    if (len)
        buf[0] = '\0';
    for (size_t i = 0; i < config_nsettings; i++) {
        const PgwSetting *set = &config_settings[i];
        if (set->reloadable)
            continue;
        config_format_setting(old, set, a, sizeof(a));
        config_format_setting(new_cfg, set, b, sizeof(b));
        if (strcmp(a, b) == 0)
            continue;
        if (used < len) {
            int w = snprintf(buf + used, len - used, "%s%s", n ? ", " : "", set->name);
            used += w > 0 ? (size_t)w : 0;
        }
        n++;
    }
    return n;
}

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static PgwConfig *current;
static unsigned version_counter;

unsigned config_next_version(void)
{
    pthread_mutex_lock(&current_lock);
    unsigned v = ++version_counter;
    pthread_mutex_unlock(&current_lock);
    return v;
}

void config_free(PgwConfig *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < config_nsettings; i++) {
        const PgwSetting *set = &config_settings[i];
        if (set->type == PGW_SET_STRING || set->type == PGW_SET_PATH)
            free(*FIELD(cfg, set->offset, char *));
        else if (set->type == PGW_SET_LIST)
            free_list(*FIELD(cfg, set->offset, char **), *FIELD(cfg, set->offset2, size_t));
    }
    for (size_t i = 0; i < cfg->nusers; i++) {
        free(cfg->users[i].user);
        free_list(cfg->users[i].tenants, cfg->users[i].ntenants);
    }
    for (size_t i = 0; i < cfg->ntenants; i++) {
        free(cfg->tenants[i].name);
        free(cfg->tenants[i].backend);
        free(cfg->tenants[i].id);
        free(cfg->tenants[i].changes);
    }
    for (size_t i = 0; i < cfg->npeers; i++) {
        free(cfg->peers[i].host);
        free(cfg->peers[i].port);
    }
    free(cfg->peers);
    for (size_t i = 0; i < cfg->ntables; i++) {
        PgwTablePolicy *t = &cfg->tables[i];
        free(t->schema);
        free(t->name);
        free(t->row_filter);
        for (size_t j = 0; j < t->nmasks; j++)
            free(t->masks[j].column);
        free(t->masks);
    }
    free(cfg->users);
    free(cfg->tenants);
    free(cfg->tables);
    free(cfg->path);
    free(cfg->dir);
    free(cfg);
}

/* ---- lookups ------------------------------------------------------------ */

const PgwPeer *config_peer(const PgwConfig *cfg, int id)
{
    for (size_t i = 0; cfg && i < cfg->npeers; i++)
        if (cfg->peers[i].id == id)
            return &cfg->peers[i];
    return NULL;
}

PgwPoolMode config_pool_mode(const PgwConfig *cfg, const PgwTenant *t)
{
    return (PgwPoolMode)(t && t->pool_mode >= 0 ? t->pool_mode : cfg->pool_mode);
}

const PgwUserMap *config_user(const PgwConfig *cfg, const char *user)
{
    for (size_t i = 0; cfg && user && i < cfg->nusers; i++)
        if (strcmp(cfg->users[i].user, user) == 0)
            return &cfg->users[i];
    return NULL;
}

const PgwTenant *config_tenant(const PgwConfig *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->ntenants; i++)
        if (strcmp(cfg->tenants[i].name, name) == 0)
            return &cfg->tenants[i];
    return NULL;
}

const PgwTablePolicy *config_table(const PgwConfig *cfg, const char *schema, const char *name)
{
    for (size_t i = 0; cfg && schema && name && i < cfg->ntables; i++)
        if (strcmp(cfg->tables[i].schema, schema) == 0 && strcmp(cfg->tables[i].name, name) == 0)
            return &cfg->tables[i];
    return NULL;
}

bool config_is_admin(const PgwConfig *cfg, const char *user)
{
    for (size_t i = 0; cfg && user && i < cfg->nadmin_users; i++)
        if (strcmp(cfg->admin_users[i], user) == 0)
            return true;
    return false;
}

/* ---- the current snapshot ---------------------------------------------- */

PgwConfig *config_acquire(void)
{
    pthread_mutex_lock(&current_lock);
    PgwConfig *cfg = current;
    if (cfg)
        cfg->refs++;
    pthread_mutex_unlock(&current_lock);
    return cfg;
}

void config_release(PgwConfig *cfg)
{
    if (!cfg)
        return;
    pthread_mutex_lock(&current_lock);
    bool last = --cfg->refs == 0;
    pthread_mutex_unlock(&current_lock);
    if (last)
        config_free(cfg);
}

void config_set_current(PgwConfig *cfg)
{
    PgwConfig *old;

    pthread_mutex_lock(&current_lock);
    old = current;
    current = cfg;
    if (cfg) {
        cfg->refs++; /* the reference "current" holds */
        cfg->version = ++version_counter;
    }
    pthread_mutex_unlock(&current_lock);
    config_release(old);
}
