/*
 * config_ini.c — reads pgwarden.ini into one immutable PgwConfig.
 *
 * The file is an INI dialect: [pgwarden], [llm] and [cache] hold the
 * settings declared in config_settings[] (config.c); [users] maps user
 * names to tenants; [tenant.NAME] and [table.SCHEMA.NAME] describe backends
 * and per-table policy. Parsing is pure (text in, config or
 * "FILE:LINE: message" out) and never touches the files a setting names:
 * whether auth_file or a TLS key is readable is for the modules that open
 * them. Anything this parser does not understand is an error, never a
 * warning: a typo in a policy file must not silently widen what clients can
 * read. Every default goes through the same setter as a value from the
 * file, before the file is read.
 */
#include "config.h"
#include "config_int.h"

#include "buf.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the parser -------------------------------------------------------- */

typedef enum { SEC_NONE, SEC_SETTINGS, SEC_USERS, SEC_TENANT, SEC_TABLE, SEC_PEERS } SectionKind;

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
    if (strcasecmp(name, "peers") == 0) {
        p->kind = SEC_PEERS;
        p->section = pgw_strdup("peers");
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
        t->pool_mode = -1; /* [pgwarden] pool_mode */
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
    if (config_setting_store(p->cfg, set, value, why, sizeof(why)) < 0)
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
    if (config_parse_list(value, &u->tenants, &u->ntenants) < 0 || u->ntenants == 0) {
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
        if (config_parse_long(value, 1, 10000, &v) < 0)
            return fail_at(p, p->line,
                           "invalid value for pool_size: '%s' (expected an "
                           "integer from 1 to 10000)",
                           value);
        t->pool_size = (int)v;
        return 0;
    }
    if (strcasecmp(key, "pool_mode") == 0) {
        if (note_key(p, "pool_mode") < 0)
            return -1;
        for (int i = 0; config_pool_mode_names[i]; i++)
            if (strcasecmp(value, config_pool_mode_names[i]) == 0) {
                t->pool_mode = i;
                return 0;
            }
        return fail_at(p, p->line,
                       "invalid value for pool_mode: '%s' (expected session or transaction)",
                       value);
    }
    return fail_at(p, p->line,
                   "unknown key '%s' in [%s] (expected backend, id, pool_size, pool_mode or "
                   "changes)",
                   key, p->section);
}

/* [peers]: id = host:port (an IPv6 address in brackets: [::1]:6432). */
static int peers_line(Parser *p, const char *key, const char *value)
{
    PgwConfig *cfg = p->cfg;
    long id;
    if (config_parse_long(key, 1, 255, &id) < 0)
        return fail_at(p, p->line, "invalid peer id '%s' (expected an integer from 1 to 255)", key);
    const PgwPeer *dup = config_peer(cfg, (int)id);
    if (dup)
        return fail_at(p, p->line, "duplicate peer %ld (first at line %d)", id, dup->line);
    const char *colon = strrchr(value, ':');
    const char *host = value, *host_end = colon;
    if (*value == '[') {
        const char *close = strchr(value, ']');
        if (!close || close + 1 != colon)
            return fail_at(p, p->line, "invalid peer address '%s' (expected host:port)", value);
        host = value + 1;
        host_end = close;
    }
    long port;
    if (!colon || host_end == host || config_parse_long(colon + 1, 1, 65535, &port) < 0)
        return fail_at(p, p->line, "invalid peer address '%s' (expected host:port)", value);
    cfg->peers = pgw_realloc(cfg->peers, (cfg->npeers + 1) * sizeof(PgwPeer));
    PgwPeer *peer = &cfg->peers[cfg->npeers++];
    peer->id = (int)id;
    peer->host = pgw_strndup(host, (size_t)(host_end - host));
    peer->port = pgw_strdup(colon + 1);
    peer->line = p->line;
    return 0;
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
    if (strcasecmp(key, "cache_ttl") == 0) {
        if (note_key(p, "cache_ttl") < 0)
            return -1;
        int ms;
        if (config_parse_duration_ms(value, &ms) < 0)
            return fail_at(p, p->line,
                           "invalid value for cache_ttl: '%s' (expected a duration such as 300s; "
                           "0: never cached)",
                           value);
        t->cache_ttl_ms = ms > 0 ? ms : -1;
        return 0;
    }
    return fail_at(p, p->line,
                   "unknown key '%s' in [%s] (expected row_filter, hidden, cache_ttl or "
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
    case SEC_PEERS:
        rc = peers_line(p, key, value);
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
                       config_auth_names[cfg->auth_type]);
    if (cfg->cache_mode == PGW_CACHE_REDIS && !cfg->cache_redis)
        return fail_at(p, seen_line(p, "cache", "mode"), "cache mode = redis needs redis = URL");
    /* Anthropic's API lives elsewhere; follow the provider unless told. */
    if (cfg->llm_provider == PGW_LLM_ANTHROPIC && !seen_line(p, "llm", "base_url")) {
        free(cfg->llm_base_url);
        cfg->llm_base_url = pgw_strdup("https://api.anthropic.com/v1");
    }
    return 0;
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
        if (config_setting_store(cfg, &config_settings[i], config_settings[i].default_value, why,
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
    cfg->version = config_next_version();
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
