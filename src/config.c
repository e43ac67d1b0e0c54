/*
 * config.c — reads pgwarden.ini into one immutable PgwConfig snapshot and
 * keeps track of the process-wide current snapshot.
 *
 * The file is an INI dialect: [pgwarden], [llm] and [cache] hold the settings
 * declared in config_settings[]; [users] maps user names to tenants;
 * [tenant.NAME] and [table.SCHEMA.NAME] describe backends and per-table
 * policy. Parsing is pure (text in, snapshot or "FILE:LINE: message" out) and
 * never touches the files a setting names: whether auth_file or a TLS key is
 * readable is for the modules that open them. Anything this parser does not
 * understand is an error, never a warning: a typo in a policy file must not
 * silently widen what clients can read.
 *
 * Design choices: config_settings[] is the single source of truth for the
 * global settings. Defaults are applied by feeding each row's default_value
 * through the same setter the file uses, so the table cannot drift from
 * behaviour, and the docs test checks the man page and the annotated
 * conf/pgwarden.ini against the same rows. Reload never mutates a snapshot:
 * the caller loads a new one and installs it with config_set_current(); users
 * hold references (config_acquire/config_release) so an old snapshot lives
 * until its last statement finishes.
 */
#include "config.h"

#include "buf.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the settings table ----------------------------------------------- */

static const char *const auth_names[] = {"trust", "md5", "scram-sha-256", NULL};
static const char *const tls_names[] = {"disable", "allow", "require", NULL};
static const char *const access_names[] = {"deny", "allow", NULL};
static const char *const provider_names[] = {"openai", "anthropic", NULL};
static const char *const cache_names[] = {"off", "memory", "redis", NULL};
static const char *const invalidation_names[] = {"ttl", "replication", NULL};

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
    ENUM("pgwarden", "auth_type", "scram-sha-256", true, auth_type, auth_names,
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
    DUR("pgwarden", "statement_timeout", "30s", true, statement_timeout_ms, 0,
        "longest a statement may run; 0: no limit"),
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

static int parse_long(const char *s, long lo, long hi, long *out)
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
    if (parse_long(num, 1, INT_MAX, &n) < 0 || config_parse_duration_ms(per, period_ms) < 0 ||
        *period_ms <= 0 || strlen(slash + 1) >= sizeof(per) - 1)
        return -1;
    *count = (int)n;
    return 0;
}

/* Comma-separated, blanks around items ignored, empty string: empty list. */
static int parse_list(const char *s, char ***out, size_t *n_out)
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
static int setting_store(PgwConfig *cfg, const PgwSetting *set, const char *value, char *why,
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
        if (parse_long(value, set->min, set->max, &v) < 0) {
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
    case PGW_SET_SIZE:
        if (config_parse_size(value, FIELD(cfg, set->offset, size_t)) < 0) {
            snprintf(why, whylen, "expected a size like 512kB, 1MB or 2GB");
            return -1;
        }
        return 0;
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
        if (parse_list(value, &items, &n) < 0) {
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

/* ---- the parser -------------------------------------------------------- */

typedef enum { SEC_NONE, SEC_SETTINGS, SEC_USERS, SEC_TENANT, SEC_TABLE } SectionKind;

/* Keys seen so far, as "section\x1fkey", to refuse duplicates. */
typedef struct SeenKey {
    char *label;
    int line;
} SeenKey;

typedef struct Parser {
    const char *name;
    PgwConfig *cfg;
    int line;
    SectionKind kind;
    char *section; /* "pgwarden", "users", "tenant.acme", "table.public.t" */
    size_t index; /* tenant or table being filled */
    SeenKey *seen;
    size_t nseen;
    char *err;
    size_t errlen;
} Parser;

static int PGW_PRINTF(3, 4) fail_at(Parser *p, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(p->err, p->errlen, "%s:%d: %s", p->name, line, msg);
    else
        snprintf(p->err, p->errlen, "%s: %s", p->name, msg);
    return -1;
}

static int seen_line(const Parser *p, const char *section, const char *key)
{
    size_t sl = strlen(section);
    for (size_t i = 0; i < p->nseen; i++) {
        const char *l = p->seen[i].label;
        if (strncmp(l, section, sl) == 0 && l[sl] == '\x1f' && strcmp(l + sl + 1, key) == 0)
            return p->seen[i].line;
    }
    return 0;
}

/* Refuse a key set twice in the same section; remember it otherwise. */
static int note_key(Parser *p, const char *key)
{
    int first = seen_line(p, p->section, key);
    if (first)
        return fail_at(p, p->line, "duplicate key '%s' in [%s] (first set at line %d)", key,
                       p->section, first);
    p->seen = pgw_realloc(p->seen, (p->nseen + 1) * sizeof(*p->seen));
    PgwBuf b;
    buf_init(&b);
    buf_printf(&b, "%s\x1f%s", p->section, key);
    p->seen[p->nseen].label = buf_steal_str(&b);
    p->seen[p->nseen].line = p->line;
    p->nseen++;
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Replace ${NAME} with the environment variable NAME. */
static int expand_env(Parser *p, const char *in, char **out)
{
    PgwBuf b;
    buf_init(&b);
    for (const char *s = in; *s;) {
        if (s[0] != '$' || s[1] != '{') {
            buf_append_byte(&b, (uint8_t)*s++);
            continue;
        }
        const char *close = strchr(s + 2, '}');
        size_t n = close ? (size_t)(close - (s + 2)) : 0;
        if (!close || n == 0) {
            buf_free(&b);
            return fail_at(p, p->line, "unterminated or empty ${...} in value");
        }
        char *var = pgw_strndup(s + 2, n);
        const char *val = getenv(var);
        if (!val) {
            fail_at(p, p->line, "environment variable %s is not set", var);
            free(var);
            buf_free(&b);
            return -1;
        }
        free(var);
        buf_append_str(&b, val);
        s = close + 1;
    }
    *out = buf_steal_str(&b);
    return 0;
}

/* The value part of "key = value": comment stripped, blanks trimmed, a
 * "quoted value" unquoted ("" inside stands for "), ${ENV} expanded. */
static int clean_value(Parser *p, char *raw, char **out)
{
    char *s = trim(raw);

    if (*s == '"') {
        char *w = s, *r = s + 1;
        for (;; r++) {
            if (!*r)
                return fail_at(p, p->line, "unterminated quoted value");
            if (*r == '"' && r[1] == '"')
                *w++ = *r++;
            else if (*r == '"')
                break;
            else
                *w++ = *r;
        }
        *w = '\0';
        char *rest = trim(r + 1);
        if (*rest && *rest != ';' && *rest != '#')
            return fail_at(p, p->line, "unexpected text after quoted value: %s", rest);
        return expand_env(p, s, out);
    }
    for (char *c = s; *c; c++) {
        if ((*c == ';' || *c == '#') && (c == s || c[-1] == ' ' || c[-1] == '\t')) {
            *c = '\0';
            break;
        }
    }
    return expand_env(p, trim(s), out);
}

/* One identifier of a table section or mask key: "Quoted" keeps its case,
 * unquoted is lower-cased as PostgreSQL folds it. Advances *sp. */
static char *parse_ident(const char **sp)
{
    const char *s = *sp;
    PgwBuf b;

    if (*s == '"') {
        const char *p = s;
        char *q = buf_take_quoted(&p);
        if (q == NULL || *q == '\0') { /* "" names nothing */
            free(q);
            return NULL;
        }
        *sp = p;
        return q;
    }
    buf_init(&b);
    for (; *s && *s != '.'; s++) {
        unsigned char c = (unsigned char)*s;
        if (!(isalnum(c) || c == '_' || c == '$' || c >= 0x80)) {
            buf_free(&b);
            return NULL;
        }
        buf_append_byte(&b, (uint8_t)tolower(c));
    }
    if (b.len == 0) {
        buf_free(&b);
        return NULL;
    }
    *sp = s;
    return buf_steal_str(&b);
}

static char *unquote_name(const char *s)
{
    if (*s != '"')
        return pgw_strdup(s);
    const char *q = s;
    char *id = parse_ident(&q);
    if (id && *q) {
        free(id);
        return NULL;
    }
    return id;
}

static int open_section(Parser *p, char *name)
{
    PgwConfig *cfg = p->cfg;

    free(p->section);
    p->section = NULL;
    if (strcasecmp(name, "pgwarden") == 0 || strcasecmp(name, "llm") == 0 ||
        strcasecmp(name, "cache") == 0) {
        p->kind = SEC_SETTINGS;
        p->section = pgw_strdup(name);
        for (char *c = p->section; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        return 0;
    }
    if (strcasecmp(name, "users") == 0) {
        p->kind = SEC_USERS;
        p->section = pgw_strdup("users");
        return 0;
    }
    if (strncasecmp(name, "tenant.", 7) == 0) {
        char *tname = unquote_name(trim(name + 7));
        if (!tname || !*tname) {
            free(tname);
            return fail_at(p, p->line, "bad tenant name in [%s]", name);
        }
        const PgwTenant *dup = config_tenant(cfg, tname);
        if (dup) {
            fail_at(p, p->line, "duplicate section [tenant.%s] (first at line %d)", tname,
                    dup->line);
            free(tname);
            return -1;
        }
        cfg->tenants = pgw_realloc(cfg->tenants, (cfg->ntenants + 1) * sizeof(PgwTenant));
        PgwTenant *t = &cfg->tenants[cfg->ntenants];
        memset(t, 0, sizeof(*t));
        t->name = tname;
        t->pool_size = -1; /* [pgwarden] pool_size, once known */
        t->line = p->line;
        p->index = cfg->ntenants++;
        p->kind = SEC_TENANT;
        PgwBuf b;
        buf_init(&b);
        buf_printf(&b, "tenant.%s", tname);
        p->section = buf_steal_str(&b);
        return 0;
    }
    if (strncasecmp(name, "table.", 6) == 0) {
        const char *s = name + 6;
        char *first = parse_ident(&s), *second = NULL;
        if (first && *s == '.') {
            s++;
            second = parse_ident(&s);
            if (!second) {
                free(first);
                first = NULL;
            }
        }
        if (!first || *s) {
            free(first);
            free(second);
            return fail_at(p, p->line,
                           "bad table section [%s]: expected [table.SCHEMA.NAME] or "
                           "[table.NAME]",
                           name);
        }
        char *schema = second ? first : pgw_strdup("public");
        char *tname = second ? second : first;
        const PgwTablePolicy *dup = config_table(cfg, schema, tname);
        if (dup) {
            fail_at(p, p->line, "duplicate section [table.%s.%s] (first at line %d)", schema, tname,
                    dup->line);
            free(schema);
            free(tname);
            return -1;
        }
        cfg->tables = pgw_realloc(cfg->tables, (cfg->ntables + 1) * sizeof(PgwTablePolicy));
        PgwTablePolicy *t = &cfg->tables[cfg->ntables];
        memset(t, 0, sizeof(*t));
        t->schema = schema;
        t->name = tname;
        t->line = p->line;
        p->index = cfg->ntables++;
        p->kind = SEC_TABLE;
        PgwBuf b;
        buf_init(&b);
        buf_printf(&b, "table.%s.%s", schema, tname);
        p->section = buf_steal_str(&b);
        return 0;
    }
    return fail_at(p, p->line, "unknown section [%s]", name);
}

static int setting_line(Parser *p, char *key, const char *value)
{
    const PgwSetting *set = config_find_setting(p->section, key);
    char why[256];

    if (!set) {
        for (size_t i = 0; i < config_nsettings; i++) {
            if (strcasecmp(config_settings[i].name, key) == 0)
                return fail_at(p, p->line, "unknown setting '%s' in [%s] (it belongs in [%s])", key,
                               p->section, config_settings[i].section);
        }
        return fail_at(p, p->line, "unknown setting '%s' in [%s]", key, p->section);
    }
    if (note_key(p, set->name) < 0)
        return -1;
    if (setting_store(p->cfg, set, value, why, sizeof(why)) < 0)
        return fail_at(p, p->line, "invalid value for %s: '%s' (%s)", set->name, value, why);
    return 0;
}

static int users_line(Parser *p, const char *key, const char *value)
{
    PgwConfig *cfg = p->cfg;
    char *user = unquote_name(key);
    PgwUserMap *u;

    if (!user || !*user) {
        free(user);
        return fail_at(p, p->line, "bad user name '%s'", key);
    }
    if (note_key(p, user) < 0)
        goto fail;
    cfg->users = pgw_realloc(cfg->users, (cfg->nusers + 1) * sizeof(PgwUserMap));
    u = &cfg->users[cfg->nusers];
    memset(u, 0, sizeof(*u));
    if (parse_list(value, &u->tenants, &u->ntenants) < 0 || u->ntenants == 0) {
        fail_at(p, p->line, "user '%s': expected a comma-separated list of tenants", user);
        goto fail;
    }
    u->user = user;
    u->line = p->line;
    cfg->nusers++;
    return 0;
fail:
    free(user);
    return -1;
}

static int tenant_line(Parser *p, const char *key, const char *value)
{
    PgwTenant *t = &p->cfg->tenants[p->index];
    long v;

    if (strcasecmp(key, "changes") == 0) {
        if (note_key(p, "changes") < 0)
            return -1;
        if (!*value) /* "changes =" as DESIGN.md writes it: the default, the backend */
            return 0;
        char *err = NULL;
        PQconninfoOption *opts = PQconninfoParse(value, &err);
        if (!opts) {
            if (err)
                err[strcspn(err, "\n")] = '\0';
            fail_at(p, p->line, "invalid changes conninfo: %s", err ? err : "out of memory");
            PQfreemem(err);
            return -1;
        }
        PQconninfoFree(opts);
        t->changes = pgw_strdup(value);
        return 0;
    }
    if (strcasecmp(key, "backend") == 0 || strcasecmp(key, "id") == 0) {
        bool backend = strcasecmp(key, "backend") == 0;
        if (note_key(p, backend ? "backend" : "id") < 0)
            return -1;
        if (!*value)
            return fail_at(p, p->line, "%s must not be empty", key);
        if (backend)
            t->backend = pgw_strdup(value);
        else
            t->id = pgw_strdup(value);
        return 0;
    }
    if (strcasecmp(key, "pool_size") == 0) {
        if (note_key(p, "pool_size") < 0)
            return -1;
        if (parse_long(value, 1, 10000, &v) < 0)
            return fail_at(p, p->line,
                           "invalid value for pool_size: '%s' (expected an "
                           "integer from 1 to 10000)",
                           value);
        t->pool_size = (int)v;
        return 0;
    }
    return fail_at(p, p->line,
                   "unknown key '%s' in [%s] (expected backend, id, pool_size or changes)", key,
                   p->section);
}

static const char *const mask_names[] = {"null", "redact", "hash", "partial", "hide", NULL};

static int table_line(Parser *p, const char *key, const char *value)
{
    PgwTablePolicy *t = &p->cfg->tables[p->index];

    if (strcasecmp(key, "row_filter") == 0) {
        if (note_key(p, "row_filter") < 0)
            return -1;
        /* An empty filter would silently expose every row: refuse it. */
        if (!*value)
            return fail_at(p, p->line, "row_filter must not be empty");
        t->row_filter = pgw_strdup(value);
        return 0;
    }
    if (strcasecmp(key, "hidden") == 0) {
        if (note_key(p, "hidden") < 0)
            return -1;
        if (config_parse_bool(value, &t->hidden) < 0)
            return fail_at(p, p->line, "invalid value for hidden: '%s' (expected yes or no)",
                           value);
        return 0;
    }
    if (strncasecmp(key, "mask.", 5) == 0) {
        const char *s = key + 5;
        char *col = parse_ident(&s);
        char label[300];
        int kind = -1;
        if (!col || *s) {
            free(col);
            return fail_at(p, p->line, "bad column name in '%s'", key);
        }
        snprintf(label, sizeof(label), "mask.%s", col);
        if (note_key(p, label) < 0)
            goto fail;
        for (int i = 0; mask_names[i]; i++)
            if (strcasecmp(value, mask_names[i]) == 0)
                kind = i;
        if (kind < 0) {
            fail_at(p, p->line,
                    "invalid mask for %s: '%s' (expected null, redact, hash, "
                    "partial or hide)",
                    col, value);
            goto fail;
        }
        t->masks = pgw_realloc(t->masks, (t->nmasks + 1) * sizeof(*t->masks));
        t->masks[t->nmasks].column = col;
        t->masks[t->nmasks].kind = (PgwMaskKind)kind;
        t->nmasks++;
        return 0;
    fail:
        free(col);
        return -1;
    }
    return fail_at(p, p->line,
                   "unknown key '%s' in [%s] (expected row_filter, hidden or "
                   "mask.COLUMN)",
                   key, p->section);
}

static int parse_line(Parser *p, char *line)
{
    char *s = trim(line);

    if (!*s || *s == ';' || *s == '#')
        return 0;
    if (*s == '[') {
        /* Find the closing bracket outside quoted identifiers. */
        bool quoted = false;
        char *c = s + 1;
        for (; *c && (quoted || *c != ']'); c++)
            if (*c == '"')
                quoted = !quoted;
        if (!*c)
            return fail_at(p, p->line, "section header without closing ']'");
        *c = '\0';
        char *rest = trim(c + 1);
        if (*rest && *rest != ';' && *rest != '#')
            return fail_at(p, p->line, "unexpected text after section header: %s", rest);
        return open_section(p, trim(s + 1));
    }

    bool quoted = false;
    char *eq = s;
    for (; *eq && (quoted || *eq != '='); eq++)
        if (*eq == '"')
            quoted = !quoted;
    if (!*eq)
        return fail_at(p, p->line, "expected 'key = value' or '[section]'");
    *eq = '\0';
    char *key = trim(s);
    if (!*key)
        return fail_at(p, p->line, "missing key before '='");
    if (p->kind == SEC_NONE)
        return fail_at(p, p->line, "'%s' outside any section (start with [pgwarden])", key);

    char *value;
    if (clean_value(p, eq + 1, &value) < 0)
        return -1;
    int rc = -1;
    switch (p->kind) {
    case SEC_SETTINGS:
        rc = setting_line(p, key, value);
        break;
    case SEC_USERS:
        rc = users_line(p, key, value);
        break;
    case SEC_TENANT:
        rc = tenant_line(p, key, value);
        break;
    case SEC_TABLE:
        rc = table_line(p, key, value);
        break;
    case SEC_NONE:
        break;
    }
    free(value);
    return rc;
}

/* Checks that need the whole file. */
static int validate(Parser *p)
{
    PgwConfig *cfg = p->cfg;

    for (size_t i = 0; i < cfg->ntenants; i++) {
        PgwTenant *t = &cfg->tenants[i];
        if (!t->backend)
            return fail_at(p, t->line, "[tenant.%s] has no backend (a libpq conninfo string)",
                           t->name);
        if (!t->id)
            t->id = pgw_strdup(t->name);
        if (t->pool_size < 0)
            t->pool_size = cfg->pool_size;
    }
    for (size_t i = 0; i < cfg->nusers; i++) {
        const PgwUserMap *u = &cfg->users[i];
        for (size_t j = 0; j < u->ntenants; j++)
            if (!config_tenant(cfg, u->tenants[j]))
                return fail_at(p, u->line,
                               "user '%s' names unknown tenant '%s' (no "
                               "[tenant.%s] section)",
                               u->user, u->tenants[j], u->tenants[j]);
    }

    int tls_line = seen_line(p, "pgwarden", "client_tls");
    int cert_line = seen_line(p, "pgwarden", "tls_cert_file");
    int key_line = seen_line(p, "pgwarden", "tls_key_file");
    if (cfg->tls_cert_file && !cfg->tls_key_file)
        return fail_at(p, cert_line, "tls_cert_file is set but tls_key_file is not");
    if (cfg->tls_key_file && !cfg->tls_cert_file)
        return fail_at(p, key_line, "tls_key_file is set but tls_cert_file is not");
    if (cfg->client_tls == PGW_TLS_REQUIRE && !cfg->tls_cert_file)
        return fail_at(p, tls_line, "client_tls = require needs tls_cert_file and tls_key_file");

    if (cfg->auth_type != PGW_AUTH_TRUST && !cfg->auth_file)
        return fail_at(p, seen_line(p, "pgwarden", "auth_type"),
                       "auth_type = %s needs auth_file (the list of users and passwords)",
                       auth_names[cfg->auth_type]);
    if (cfg->cache_mode == PGW_CACHE_REDIS && !cfg->cache_redis)
        return fail_at(p, seen_line(p, "cache", "mode"), "cache mode = redis needs redis = URL");
    /* Anthropic's API lives elsewhere; follow the provider unless told. */
    if (cfg->llm_provider == PGW_LLM_ANTHROPIC && !seen_line(p, "llm", "base_url")) {
        free(cfg->llm_base_url);
        cfg->llm_base_url = pgw_strdup("https://api.anthropic.com/v1");
    }
    return 0;
}

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static PgwConfig *current;
static unsigned version_counter;

static unsigned next_version(void)
{
    pthread_mutex_lock(&current_lock);
    unsigned v = ++version_counter;
    pthread_mutex_unlock(&current_lock);
    return v;
}

static int parse_text(const char *name, const char *dir, const char *text, PgwConfig **out,
                      char *err, size_t errlen)
{
    Parser p = {.name = name, .err = err, .errlen = errlen};
    int rc = -1;
    PgwConfig *cfg = pgw_calloc(1, sizeof(*cfg));
    char *copy, *line;
    char why[256];

    /* Editors on some systems start UTF-8 files with a byte-order mark. */
    if (strncmp(text, "\xef\xbb\xbf", 3) == 0)
        text += 3;
    copy = line = pgw_strdup(text);

    cfg->path = pgw_strdup(name);
    cfg->dir = pgw_strdup(dir);
    p.cfg = cfg;
    for (size_t i = 0; i < config_nsettings; i++) {
        if (setting_store(cfg, &config_settings[i], config_settings[i].default_value, why,
                          sizeof(why)) < 0) {
            fail_at(&p, 0, "internal error: default of %s: %s", config_settings[i].name, why);
            goto fail;
        }
    }
    while (line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r')
            line[n - 1] = '\0';
        p.line++;
        if (parse_line(&p, line) < 0)
            goto fail;
        line = nl ? nl + 1 : NULL;
    }
    if (validate(&p) < 0)
        goto fail;
    cfg->version = next_version();
    *out = cfg;
    cfg = NULL;
    rc = 0;
fail:
    for (size_t i = 0; i < p.nseen; i++)
        free(p.seen[i].label);
    free(p.seen);
    free(p.section);
    free(copy);
    config_free(cfg);
    return rc;
}

int config_parse_string(const char *name, const char *text, PgwConfig **out, char *err,
                        size_t errlen)
{
    const char *slash = strrchr(name, '/');
    char *dir =
        slash ? pgw_strndup(name, slash == name ? 1 : (size_t)(slash - name)) : pgw_strdup(".");
    *out = NULL;
    int rc = parse_text(name, dir, text, out, err, errlen);
    free(dir);
    return rc;
}

int config_load(const char *path, PgwConfig **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    PgwBuf text;
    char chunk[4096], *dir = NULL;
    size_t n;
    int rc = -1;

    *out = NULL;
    buf_init(&text);
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&text, chunk, n);
    if (ferror(f)) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        goto fail;
    }
    buf_append_byte(&text, '\0');
    if (memchr(text.data, '\0', text.len - 1)) {
        snprintf(err, errlen, "%s: not a text file (contains NUL bytes)", path);
        goto fail;
    }
    /* An absolute directory, so relative paths still resolve after -d
     * changes the working directory and on every later reload. */
    const char *slash = strrchr(path, '/');
    char *given =
        slash ? pgw_strndup(path, slash == path ? 1 : (size_t)(slash - path)) : pgw_strdup(".");
    dir = realpath(given, NULL);
    if (!dir)
        dir = given;
    else
        free(given);
    rc = parse_text(path, dir, (const char *)text.data, out, err, errlen);
fail:
    fclose(f);
    free(dir);
    buf_free(&text);
    return rc;
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
