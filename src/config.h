/*
 * config.h — pgwarden's configuration: one INI file, parsed into one
 * immutable PgwConfig snapshot.
 *
 * A snapshot is never modified after config_load() returns; reload builds a
 * new one and swaps it in (config_current / config_set_current), and every
 * user holds a reference while it works, so a reload never pulls data from
 * under a running statement. One table (config_settings) declares every
 * [pgwarden], [llm] and [cache] key with its type, default, reloadability
 * and help; the man page and conf/pgwarden.ini are checked against it.
 *
 * Values: durations take ms, s, min, h (bare numbers are seconds); sizes take
 * B, kB, MB, GB (bare numbers are bytes); booleans yes/no/on/off/true/false/1/0;
 * ${NAME} anywhere in a value is replaced by the environment variable NAME.
 * A ';' or '#' starts a comment when it begins the line or follows
 * whitespace. Relative paths are relative to the config file's directory.
 */
#ifndef PGW_CONFIG_H
#define PGW_CONFIG_H

#include "pgw.h"

typedef enum { PGW_AUTH_TRUST, PGW_AUTH_MD5, PGW_AUTH_SCRAM } PgwAuthType;
typedef enum { PGW_TLS_DISABLE, PGW_TLS_ALLOW, PGW_TLS_REQUIRE } PgwTlsMode;
typedef enum { PGW_ACCESS_DENY, PGW_ACCESS_ALLOW } PgwAccess;
typedef enum { PGW_LLM_OPENAI, PGW_LLM_ANTHROPIC } PgwLlmProvider;
typedef enum { PGW_CACHE_OFF, PGW_CACHE_MEMORY, PGW_CACHE_REDIS } PgwCacheMode;
typedef enum { PGW_INVALIDATE_TTL, PGW_INVALIDATE_REPLICATION } PgwCacheInvalidation;
/* Session: a client keeps its backend session from its first statement to
 * its last. Transaction: only while a transaction (or one autocommit
 * statement, or an extended-protocol batch up to Sync) runs. */
typedef enum { PGW_POOL_SESSION, PGW_POOL_TRANSACTION } PgwPoolMode;

typedef enum {
    PGW_MASK_NULL, /* the column reads as NULL of its type */
    PGW_MASK_REDACT, /* text: '***'; other types: NULL */
    PGW_MASK_HASH, /* md5 of the value, as text */
    PGW_MASK_PARTIAL, /* text: last 4 characters kept, the rest 'x' */
    PGW_MASK_HIDE, /* the column does not exist */
} PgwMaskKind;

typedef struct PgwColumnMask {
    char *column;
    PgwMaskKind kind;
} PgwColumnMask;

/* [table.SCHEMA.NAME] */
typedef struct PgwTablePolicy {
    char *schema;
    char *name;
    char *row_filter; /* SQL boolean expression; may use $tenant; NULL: none */
    bool hidden;
    size_t nmasks;
    PgwColumnMask *masks;
    int line; /* where the section starts, for messages */
    /* cache_ttl: > 0, results that read the table live at most this long;
     * 0, not set ([cache] ttl applies); -1, never cached (cache_ttl = 0). */
    int cache_ttl_ms;
} PgwTablePolicy;

/* [tenant.NAME] */
typedef struct PgwTenant {
    char *name;
    char *backend; /* libpq conninfo */
    char *id; /* the value of $tenant; defaults to name */
    int pool_size; /* defaults to [pgwarden] pool_size */
    int pool_mode; /* a PgwPoolMode; defaults to [pgwarden] pool_mode */
    char *changes; /* conninfo for the change stream; NULL: backend's */
    int line; /* where the section starts, for messages */
} PgwTenant;

/* [peers]: id = host:port, the other instances behind the same address. */
typedef struct PgwPeer {
    int id;
    char *host;
    char *port;
    int line;
} PgwPeer;

/* [users]: user = tenant [, tenant ...] */
typedef struct PgwUserMap {
    char *user;
    size_t ntenants;
    char **tenants;
    int line; /* where the entry is, for messages */
} PgwUserMap;

typedef struct PgwConfig {
    char *path; /* as given on the command line */
    char *dir; /* its directory, for relative paths */

    /* [pgwarden] */
    char *listen_addr;
    int listen_port;
    char *unix_socket_dir;
    int workers;
    PgwAuthType auth_type;
    char *auth_file; /* resolved path, or NULL */
    PgwTlsMode client_tls;
    char *tls_cert_file;
    char *tls_key_file;
    size_t nadmin_users;
    char **admin_users;
    char *log_file;
    char *audit_log;
    int metrics_port;
    int pool_size;
    int pool_timeout_ms; /* how long a client waits for a backend session */
    int pool_mode; /* a PgwPoolMode */
    int max_prepared_statements; /* transaction mode: statements kept per backend session */
    size_t max_prepared_memory; /* what one client's prepared statements may hold here */
    int peer_id; /* this instance's id among [peers]; 0: none */
    int statement_timeout_ms;
    size_t max_query_size; /* longest Query or Parse message accepted */
    int shutdown_timeout_ms; /* SIGTERM: how long running statements may finish */
    int client_idle_timeout_ms; /* 0: never */
    PgwAccess default_access;
    char *search_path; /* pinned on backend sessions; default "public" */
    size_t nallowed_functions; /* user-defined functions the policy may let through */
    char **allowed_functions; /* "schema.name" */
    int max_nesting_depth; /* parse-tree levels; deeper statements: 54001 */
    size_t rewrite_cache_size; /* bytes the policy's rewrite cache may hold; 0: off */

    /* [llm] */
    PgwLlmProvider llm_provider;
    char *llm_base_url;
    char *llm_model;
    char *llm_api_key; /* never logged */
    int llm_timeout_ms;
    int llm_max_attempts;
    int llm_rate_limit; /* requests per llm_rate_period_ms per tenant; 0: none */
    int llm_rate_period_ms;
    long llm_token_budget; /* tokens per tenant per day; 0: none */
    char *llm_examples_file;
    bool llm_sample_values;
    size_t llm_schema_budget; /* bytes of schema (DDL + samples) a prompt may carry */
    int llm_min_tables; /* when the schema does not fit: at least this many tables */
    int llm_max_tables; /* ... and at most this many */

    /* [cache] */
    PgwCacheMode cache_mode;
    char *cache_redis;
    int cache_ttl_ms;
    size_t cache_max_entry;
    size_t cache_max_memory;
    PgwCacheInvalidation cache_invalidation;
    char *cache_publication;
    char *cache_key_prefix; /* Redis key and channel prefix */
    int cache_redis_timeout_ms; /* longest a Redis reply may take before the statement bypasses */
    char *cache_redis_tls_ca_file; /* rediss://: CA bundle; NULL: the system's */
    char *cache_redis_tls_cert_file; /* rediss://: client certificate, if Redis asks for one */
    char *cache_redis_tls_key_file;

    size_t nusers;
    PgwUserMap *users;
    size_t ntenants;
    PgwTenant *tenants;
    size_t ntables;
    PgwTablePolicy *tables;
    size_t npeers;
    PgwPeer *peers;

    unsigned version; /* increases with every successful load in this process */
    int refs; /* managed by config_acquire/config_release */
} PgwConfig;

/* Parse and validate a config file. On failure returns -1 and writes
 * "FILE:LINE: what is wrong" (or "FILE: ..." when no line applies) to err. */
int config_load(const char *path, PgwConfig **out, char *err, size_t errlen) PGW_WUR;
/* Same, from a string (for tests); name is used in messages. */
int config_parse_string(const char *name, const char *text, PgwConfig **out, char *err,
                        size_t errlen) PGW_WUR;
void config_free(PgwConfig *cfg);

/* Lookups; NULL when absent. Names compare case-sensitively for users and
 * tenants (as PostgreSQL role and database names do) and case-insensitively
 * for unquoted table names as the config writes them (lower-cased at load). */
const PgwUserMap *config_user(const PgwConfig *cfg, const char *user);
const PgwTenant *config_tenant(const PgwConfig *cfg, const char *name);
const PgwTablePolicy *config_table(const PgwConfig *cfg, const char *schema, const char *name);
bool config_is_admin(const PgwConfig *cfg, const char *user);
const PgwPeer *config_peer(const PgwConfig *cfg, int id);
/* The pool mode of a tenant (its own, else [pgwarden]'s). */
PgwPoolMode config_pool_mode(const PgwConfig *cfg, const PgwTenant *t);
/* The database name that selects the admin console rather than a tenant. */
#define PGW_ADMIN_DB "pgwarden"

/* The process-wide current snapshot, reference-counted and thread-safe.
 * config_acquire returns the current one with a reference taken. */
PgwConfig *config_acquire(void);
void config_release(PgwConfig *cfg);
/* Install a new snapshot (takes ownership); the old one is freed when its
 * last reference goes. */
void config_set_current(PgwConfig *cfg);

/* Parsers for value syntaxes, exposed for unit tests. */
int config_parse_duration_ms(const char *s, int *out_ms) PGW_WUR;
int config_parse_size(const char *s, size_t *out) PGW_WUR;
int config_parse_bool(const char *s, bool *out) PGW_WUR;

/* The settings table. INT is stored as int, LONG as long. PATH is a string resolved against the config's
 * directory; RATE is "N/UNIT" (10/min, 5/10s) or 0 for none. */
typedef enum {
    PGW_SET_STRING,
    PGW_SET_INT,
    PGW_SET_LONG,
    PGW_SET_BOOL,
    PGW_SET_DURATION,
    PGW_SET_SIZE,
    PGW_SET_ENUM,
    PGW_SET_LIST,
    PGW_SET_PATH,
    PGW_SET_RATE,
} PgwSettingType;
typedef struct PgwSetting {
    const char *section; /* "pgwarden", "llm", "cache" */
    const char *name;
    PgwSettingType type;
    const char *default_value; /* as written in the file; "" for empty */
    bool reloadable; /* takes effect on SIGHUP / RELOAD */
    const char *help; /* one line */
    /* Where the value lives in PgwConfig. offset2: a LIST's count (size_t)
     * or a RATE's period (int ms). */
    size_t offset;
    size_t offset2;
    long min, max; /* INT range; SIZE range when max > 0; STRING with min 1: must not be empty */
    const char *const *choices; /* ENUM: names in enum order, NULL-terminated */
} PgwSetting;
extern const PgwSetting config_settings[];
extern const size_t config_nsettings;

const PgwSetting *config_find_setting(const char *section, const char *name);
/* The value as it would be written in the file ("30s", "yes", "a, b");
 * api_key prints as "(hidden)" when set. */
void config_format_setting(const PgwConfig *cfg, const PgwSetting *set, char *buf, size_t len);
/* Settings that differ between two snapshots but only take effect at
 * restart: returns how many, their names comma-separated in buf. */
size_t config_restart_needed(const PgwConfig *old, const PgwConfig *new_cfg, char *buf, size_t len);

#endif
