/*
 * test_config.c — the configuration parser: values, defaults, every kind of
 * error with its FILE:LINE, value syntaxes, ${ENV}, snapshots, and a docs
 * check that the man page and the annotated conf cover every setting.
 */
/* By path: the build directory's autoconf header is also named config.h. */
#include "../../src/config.h"

#include <check.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUTH "auth_file = users.txt\n"

static PgwConfig *parse_ok(const char *text)
{
    PgwConfig *cfg = NULL;
    char err[512] = "";

    if (config_parse_string("t.ini", text, &cfg, err, sizeof(err)) < 0)
        ck_abort_msg("unexpected error: %s\n--- config:\n%s", err, text);
    return cfg;
}

static const char *setting_value(const PgwConfig *cfg, const char *section, const char *name)
{
    static char buf[512];
    const PgwSetting *set = config_find_setting(section, name);

    ck_assert_msg(set, "no setting [%s] %s", section, name);
    config_format_setting(cfg, set, buf, sizeof(buf));
    return buf;
}

/* ---- settings take the values written ---------------------------------- */

static const struct {
    const char *text, *section, *name, *want;
} values[] = {
    {"[pgwarden]\n" AUTH "listen_addr = *\n", "pgwarden", "listen_addr", "*"},
    {"[pgwarden]\n" AUTH "listen_port = 7000\n", "pgwarden", "listen_port", "7000"},
    {"[pgwarden]\nauth_type = trust\n", "pgwarden", "auth_type", "trust"},
    {"[pgwarden]\n" AUTH "auth_type = MD5\n", "pgwarden", "auth_type", "md5"},
    {"[pgwarden]\n" AUTH "client_tls = disable\n", "pgwarden", "client_tls", "disable"},
    {"[pgwarden]\n" AUTH "admin_users = admin ,  ops\n", "pgwarden", "admin_users", "admin, ops"},
    {"[pgwarden]\n" AUTH "statement_timeout = 2min\n", "pgwarden", "statement_timeout", "2min"},
    {"[pgwarden]\n" AUTH "statement_timeout = 90\n", "pgwarden", "statement_timeout", "90s"},
    {"[pgwarden]\n" AUTH "pool_timeout = 1500ms\n", "pgwarden", "pool_timeout", "1500ms"},
    {"[pgwarden]\n" AUTH "default_access = allow\n", "pgwarden", "default_access", "allow"},
    {"[pgwarden]\n" AUTH "search_path = app, public\n", "pgwarden", "search_path", "app, public"},
    {"[pgwarden]\n" AUTH "allowed_functions = app.f, app.g\n", "pgwarden", "allowed_functions",
     "app.f, app.g"},
    {"[pgwarden]\n" AUTH "[llm]\nprovider = anthropic\n", "llm", "base_url",
     "https://api.anthropic.com/v1"},
    {"[pgwarden]\n" AUTH "[llm]\nprovider = anthropic\nbase_url = http://x/v1\n", "llm", "base_url",
     "http://x/v1"},
    {"[pgwarden]\n" AUTH "[llm]\nrate_limit = 100/h\n", "llm", "rate_limit", "100/h"},
    {"[pgwarden]\n" AUTH "[llm]\nrate_limit = 5/10s\n", "llm", "rate_limit", "5/10s"},
    {"[pgwarden]\n" AUTH "[llm]\nrate_limit = 0\n", "llm", "rate_limit", "0"},
    {"[pgwarden]\n" AUTH "[llm]\ntoken_budget = 5000000000\n", "llm", "token_budget", "5000000000"},
    {"[pgwarden]\n" AUTH "[llm]\nsample_values = on\n", "llm", "sample_values", "yes"},
    {"[pgwarden]\n" AUTH "[llm]\napi_key = sk-1\n", "llm", "api_key", "(hidden)"},
    {"[pgwarden]\n" AUTH "[cache]\nmax_entry = 512kB\n", "cache", "max_entry", "512kB"},
    {"[pgwarden]\n" AUTH "[cache]\nmax_memory = 2GB\n", "cache", "max_memory", "2GB"},
    {"[pgwarden]\n" AUTH "[cache]\nmode = off\n", "cache", "mode", "off"},
    /* comments and quoting */
    {"[pgwarden]\n" AUTH "listen_addr = 0.0.0.0   ; every IPv4 address\n", "pgwarden",
     "listen_addr", "0.0.0.0"},
    {"[pgwarden]\n" AUTH "listen_addr = 0.0.0.0\t# tab then hash\n", "pgwarden", "listen_addr",
     "0.0.0.0"},
    {"[llm]\nmodel = a#b;c\n[pgwarden]\n" AUTH, "llm", "model", "a#b;c"},
    {"[llm]\nmodel = \"my ; model # x\"  ; real comment\n[pgwarden]\n" AUTH, "llm", "model",
     "my ; model # x"},
    {"[llm]\nmodel = \"say \"\"hi\"\"\"\n[pgwarden]\n" AUTH, "llm", "model", "say \"hi\""},
    {"\xef\xbb\xbf; BOM-less comment\r\n[pgwarden]\r\n" AUTH "listen_port=1\r\n", "pgwarden",
     "listen_port", "1"},
    {"  [ PGWARDEN ]  \n" AUTH "  WORKERS   =   4  \n", "pgwarden", "workers", "4"},
    {"[pgwarden]\n" AUTH "unix_socket_dir = /run/pgwarden\n", "pgwarden", "unix_socket_dir",
     "/run/pgwarden"},
};

START_TEST(setting_values)
{
    PgwConfig *cfg = parse_ok(values[_i].text);
    ck_assert_str_eq(setting_value(cfg, values[_i].section, values[_i].name), values[_i].want);
    config_free(cfg);
}
END_TEST

START_TEST(defaults)
{
    PgwConfig *cfg = parse_ok("[pgwarden]\nauth_file = users.txt\n");

    ck_assert_str_eq(cfg->listen_addr, "127.0.0.1");
    ck_assert_int_eq(cfg->listen_port, 6432);
    ck_assert_ptr_null(cfg->unix_socket_dir);
    ck_assert_int_eq(cfg->workers, 0);
    ck_assert_int_eq(cfg->auth_type, PGW_AUTH_SCRAM);
    ck_assert_int_eq(cfg->client_tls, PGW_TLS_ALLOW);
    ck_assert_ptr_null(cfg->tls_cert_file);
    ck_assert_uint_eq(cfg->nadmin_users, 0);
    ck_assert_ptr_null(cfg->log_file);
    ck_assert_ptr_null(cfg->audit_log);
    ck_assert_int_eq(cfg->metrics_port, 0);
    ck_assert_int_eq(cfg->pool_size, 10);
    ck_assert_int_eq(cfg->pool_timeout_ms, 30000);
    ck_assert_int_eq(cfg->statement_timeout_ms, 30000);
    ck_assert_int_eq(cfg->shutdown_timeout_ms, 30000);
    ck_assert_int_eq(cfg->client_idle_timeout_ms, 0);
    ck_assert_int_eq(cfg->default_access, PGW_ACCESS_DENY);
    ck_assert_str_eq(cfg->search_path, "public");
    ck_assert_uint_eq(cfg->nallowed_functions, 0);
    ck_assert_int_eq(cfg->llm_provider, PGW_LLM_OPENAI);
    ck_assert_str_eq(cfg->llm_base_url, "https://api.openai.com/v1");
    ck_assert_str_eq(cfg->llm_model, "gpt-4o-mini");
    ck_assert_ptr_null(cfg->llm_api_key);
    ck_assert_int_eq(cfg->llm_timeout_ms, 30000);
    ck_assert_int_eq(cfg->llm_max_attempts, 3);
    ck_assert_int_eq(cfg->llm_rate_limit, 10);
    ck_assert_int_eq(cfg->llm_rate_period_ms, 60000);
    ck_assert_int_eq(cfg->llm_token_budget, 0);
    ck_assert(!cfg->llm_sample_values);
    ck_assert_int_eq(cfg->cache_mode, PGW_CACHE_MEMORY);
    ck_assert_str_eq(cfg->cache_redis, "redis://127.0.0.1:6379/0");
    ck_assert_int_eq(cfg->cache_ttl_ms, 60000);
    ck_assert_uint_eq(cfg->cache_max_entry, 1024 * 1024);
    ck_assert_uint_eq(cfg->cache_max_memory, 256 * 1024 * 1024);
    ck_assert_uint_eq(cfg->ntenants + cfg->nusers + cfg->ntables, 0);

    /* The table's documented defaults are what a config without the key
     * gets (auth_file aside: it was set above). */
    for (size_t i = 0; i < config_nsettings; i++) {
        const PgwSetting *set = &config_settings[i];
        if (strcmp(set->name, "auth_file") == 0)
            continue;
        ck_assert_msg(strcmp(setting_value(cfg, set->section, set->name), set->default_value) == 0,
                      "%s: default '%s' but reads '%s'", set->name, set->default_value,
                      setting_value(cfg, set->section, set->name));
    }
    config_free(cfg);
}
END_TEST

/* ---- users, tenants, tables --------------------------------------------- */

static const char policy_text[] =
    "[pgwarden]\n"
    "auth_file = users.txt\n"
    "pool_size = 4\n"
    "admin_users = admin\n"
    "[users]\n"
    "alice = acme                    ; user = tenant [, tenant ...]\n"
    "carol = acme, globex\n"
    "\"Dave Smith\" = globex\n"
    "[tenant.acme]\n"
    "backend = host=127.0.0.1 port=5432 dbname=saas user=reader   ; libpq conninfo\n"
    "id = acme-01\n"
    "[tenant.globex]\n"
    "backend = \"host=/tmp dbname=globex password='a ; b'\"\n"
    "pool_size = 2\n"
    "[table.public.customers]\n"
    "row_filter = tenant_id = $tenant\n"
    "mask.ssn = null\n"
    "MASK.Email = partial\n"
    "mask.\"Phone\" = redact\n"
    "mask.card = hash\n"
    "mask.notes = hide\n"
    "[table.products]\n"
    "[table.Public.Internal_Notes]\n"
    "hidden = yes\n"
    "[table.\"Sales\".\"Q1 Data\"]\n"
    "row_filter = \"region = 'a ; b'\"\n";

START_TEST(users_tenants_tables)
{
    PgwConfig *cfg = parse_ok(policy_text);
    const PgwUserMap *u;
    const PgwTenant *t;
    const PgwTablePolicy *tp;

    u = config_user(cfg, "carol");
    ck_assert_ptr_nonnull(u);
    ck_assert_uint_eq(u->ntenants, 2);
    ck_assert_str_eq(u->tenants[0], "acme");
    ck_assert_str_eq(u->tenants[1], "globex");
    ck_assert_ptr_nonnull(config_user(cfg, "Dave Smith"));
    ck_assert_ptr_null(config_user(cfg, "Carol"));
    ck_assert(config_is_admin(cfg, "admin"));
    ck_assert(!config_is_admin(cfg, "alice"));

    t = config_tenant(cfg, "acme");
    ck_assert_str_eq(t->backend, "host=127.0.0.1 port=5432 dbname=saas user=reader");
    ck_assert_str_eq(t->id, "acme-01");
    ck_assert_int_eq(t->pool_size, 4);
    t = config_tenant(cfg, "globex");
    ck_assert_str_eq(t->backend, "host=/tmp dbname=globex password='a ; b'");
    ck_assert_str_eq(t->id, "globex");
    ck_assert_int_eq(t->pool_size, 2);

    tp = config_table(cfg, "public", "customers");
    ck_assert_str_eq(tp->row_filter, "tenant_id = $tenant");
    ck_assert(!tp->hidden);
    ck_assert_uint_eq(tp->nmasks, 5);
    ck_assert_str_eq(tp->masks[0].column, "ssn");
    ck_assert_int_eq(tp->masks[0].kind, PGW_MASK_NULL);
    ck_assert_str_eq(tp->masks[1].column, "email");
    ck_assert_int_eq(tp->masks[1].kind, PGW_MASK_PARTIAL);
    ck_assert_str_eq(tp->masks[2].column, "Phone");
    ck_assert_int_eq(tp->masks[2].kind, PGW_MASK_REDACT);
    ck_assert_int_eq(tp->masks[3].kind, PGW_MASK_HASH);
    ck_assert_int_eq(tp->masks[4].kind, PGW_MASK_HIDE);

    tp = config_table(cfg, "public", "products");
    ck_assert_ptr_nonnull(tp);
    ck_assert_ptr_null(tp->row_filter);
    ck_assert_uint_eq(tp->nmasks, 0);
    ck_assert(config_table(cfg, "public", "internal_notes")->hidden);
    ck_assert_ptr_null(config_table(cfg, "public", "Internal_Notes"));
    tp = config_table(cfg, "Sales", "Q1 Data");
    ck_assert_ptr_nonnull(tp);
    ck_assert_str_eq(tp->row_filter, "region = 'a ; b'");
    ck_assert_ptr_null(config_table(cfg, "sales", "q1 data"));
    config_free(cfg);
}
END_TEST

/* ---- errors ------------------------------------------------------------- */

static const struct {
    const char *text, *want; /* want: the message starts with this */
} errors[] = {
    {"[pgwarden]\n" AUTH "[bogus]\n", "t.ini:3: unknown section [bogus]"},
    {"[pgwarden]\n" AUTH "listen_prot = 1\n",
     "t.ini:3: unknown setting 'listen_prot' in [pgwarden]"},
    {"[pgwarden]\nmodel = x\n",
     "t.ini:2: unknown setting 'model' in [pgwarden] (it belongs in [llm])"},
    {"[pgwarden]\n" AUTH "listen_port = 70000\n",
     "t.ini:3: invalid value for listen_port: '70000'"},
    {"[pgwarden]\n" AUTH "listen_port = 12ab\n", "t.ini:3: invalid value for listen_port"},
    {"[pgwarden]\n" AUTH "pool_size = 0\n", "t.ini:3: invalid value for pool_size"},
    {"[pgwarden]\n" AUTH "statement_timeout = 5 parsecs\n",
     "t.ini:3: invalid value for statement_timeout"},
    {"[pgwarden]\n" AUTH "[cache]\nmax_entry = 1TB\n", "t.ini:4: invalid value for max_entry"},
    {"[pgwarden]\n" AUTH "max_query_size = 512B\n",
     "t.ini:3: invalid value for max_query_size: '512B' (expected a size from 1024 bytes"},
    {"[pgwarden]\n" AUTH "max_query_size = 2GB\n", "t.ini:3: invalid value for max_query_size"},
    {"[pgwarden]\n" AUTH "[llm]\nsample_values = maybe\n",
     "t.ini:4: invalid value for sample_values"},
    {"[pgwarden]\n" AUTH "[llm]\ntimeout = 0\n", "t.ini:4: invalid value for timeout"},
    {"[pgwarden]\n" AUTH "auth_type = password\n",
     "t.ini:3: invalid value for auth_type: 'password' (expected one of trust, md5, scram-sha-256)"},
    {"[pgwarden]\n" AUTH "[llm]\nrate_limit = 10/fortnight\n",
     "t.ini:4: invalid value for rate_limit"},
    {"[pgwarden]\n" AUTH "admin_users = a,,b\n", "t.ini:3: invalid value for admin_users"},
    {"[pgwarden]\n" AUTH "listen_addr =\n",
     "t.ini:3: invalid value for listen_addr: '' (must not be empty)"},
    {"[pgwarden]\n" AUTH "listen_port = 1\nlisten_port = 2\n",
     "t.ini:4: duplicate key 'listen_port' in [pgwarden] (first set at line 3)"},
    {"[pgwarden]\n" AUTH "workers = 1\n[llm]\n[PGWARDEN]\nWorkers = 2\n",
     "t.ini:6: duplicate key 'workers' in [pgwarden] (first set at line 3)"},
    {"[pgwarden]\n" AUTH "[users]\nalice = acme\n",
     "t.ini:4: user 'alice' names unknown tenant 'acme' (no [tenant.acme] section)"},
    {"[pgwarden]\n" AUTH "[users]\nalice = a\nalice = a\n[tenant.a]\nbackend = x\n",
     "t.ini:5: duplicate key 'alice' in [users]"},
    {"[pgwarden]\n" AUTH "[users]\nalice =\n",
     "t.ini:4: user 'alice': expected a comma-separated list"},
    {"[pgwarden]\n" AUTH "[tenant.acme]\nid = x\n", "t.ini:3: [tenant.acme] has no backend"},
    {"[pgwarden]\n" AUTH "[tenant.a]\nbackend = x\n[tenant.a]\nbackend = y\n",
     "t.ini:5: duplicate section [tenant.a] (first at line 3)"},
    {"[pgwarden]\n" AUTH "[tenant.a]\nbackend = x\nbackend = y\n",
     "t.ini:5: duplicate key 'backend'"},
    {"[pgwarden]\n" AUTH "[tenant.a]\nbackend = x\nhost = y\n",
     "t.ini:5: unknown key 'host' in [tenant.a]"},
    {"[pgwarden]\n" AUTH "[tenant.a]\nbackend = x\npool_size = -1\n",
     "t.ini:5: invalid value for pool_size"},
    {"[pgwarden]\n" AUTH "[tenant.]\n", "t.ini:3: bad tenant name"},
    {"[pgwarden]\n" AUTH "[table.a.b.c]\n", "t.ini:3: bad table section [table.a.b.c]"},
    {"[pgwarden]\n" AUTH "[table.]\n", "t.ini:3: bad table section"},
    {"[pgwarden]\n" AUTH "[table.a b]\n", "t.ini:3: bad table section"},
    {"[pgwarden]\n" AUTH "[table.public.t]\n[table.Public.T]\n",
     "t.ini:4: duplicate section [table.public.t] (first at line 3)"},
    {"[pgwarden]\n" AUTH "[table.t]\nmask.ssn = blur\n", "t.ini:4: invalid mask for ssn: 'blur'"},
    {"[pgwarden]\n" AUTH "[table.t]\nmask.ssn = null\nmask.SSN = hash\n",
     "t.ini:5: duplicate key 'mask.ssn' in [table.public.t]"},
    {"[pgwarden]\n" AUTH "[table.t]\nmask. = null\n", "t.ini:4: bad column name"},
    {"[pgwarden]\n" AUTH "[table.t]\nrow_filter =\n", "t.ini:4: row_filter must not be empty"},
    {"[pgwarden]\n" AUTH "[table.t]\nhidden = perhaps\n", "t.ini:4: invalid value for hidden"},
    {"[pgwarden]\n" AUTH "[table.t]\nfilter = x\n",
     "t.ini:4: unknown key 'filter' in [table.public.t]"},
    {"[pgwarden]\n" AUTH "client_tls = require\n",
     "t.ini:3: client_tls = require needs tls_cert_file and tls_key_file"},
    {"[pgwarden]\n" AUTH "tls_cert_file = c.pem\n",
     "t.ini:3: tls_cert_file is set but tls_key_file is not"},
    {"[pgwarden]\n" AUTH "tls_key_file = k.pem\n",
     "t.ini:3: tls_key_file is set but tls_cert_file is not"},
    {"[pgwarden]\nauth_type = md5\n", "t.ini:2: auth_type = md5 needs auth_file"},
    {"[pgwarden]\nlisten_port = 6432\n", "t.ini: auth_type = scram-sha-256 needs auth_file"},
    {"[pgwarden]\n" AUTH "[cache]\nmode = redis\nredis =\n",
     "t.ini:4: cache mode = redis needs redis = URL"},
    {"[pgwarden]\n" AUTH "[llm]\napi_key = ${PGW_TEST_SURELY_UNSET}\n",
     "t.ini:4: environment variable PGW_TEST_SURELY_UNSET is not set"},
    {"[pgwarden]\n" AUTH "[llm]\napi_key = ${OOPS\n", "t.ini:4: unterminated or empty ${...}"},
    {"[pgwarden]\n" AUTH "[llm]\nmodel = \"abc\n", "t.ini:4: unterminated quoted value"},
    {"[pgwarden]\n" AUTH "[llm]\nmodel = \"abc\" def\n",
     "t.ini:4: unexpected text after quoted value"},
    {"listen_port = 1\n", "t.ini:1: 'listen_port' outside any section"},
    {"[pgwarden]\n" AUTH "just some words\n", "t.ini:3: expected 'key = value' or '[section]'"},
    {"[pgwarden]\n" AUTH "= 5\n", "t.ini:3: missing key before '='"},
    {"[pgwarden\n", "t.ini:1: section header without closing ']'"},
    {"[pgwarden] junk\n", "t.ini:1: unexpected text after section header"},
};

START_TEST(config_errors)
{
    PgwConfig *cfg = (PgwConfig *)1;
    char err[512] = "";

    ck_assert_int_eq(config_parse_string("t.ini", errors[_i].text, &cfg, err, sizeof(err)), -1);
    ck_assert_ptr_null(cfg);
    ck_assert_msg(strncmp(err, errors[_i].want, strlen(errors[_i].want)) == 0,
                  "got '%s', want '%s...'", err, errors[_i].want);
}
END_TEST

/* ---- value syntaxes ----------------------------------------------------- */

static const struct {
    const char *text;
    int ms; /* -1: invalid */
} durations[] = {
    {"30", 30000},   {"30s", 30000}, {"500ms", 500},  {"5min", 300000}, {"2h", 7200000},
    {"30 s", 30000}, {"0", 0},       {"", -1},        {"-1s", -1},      {"1.5s", -1},
    {"5m", -1},      {"s", -1},      {"999999h", -1}, {"30S", -1},      {"10 days", -1},
};

START_TEST(duration_syntax)
{
    int ms = -42;
    int rc = config_parse_duration_ms(durations[_i].text, &ms);
    if (durations[_i].ms < 0) {
        ck_assert_msg(rc == -1, "'%s' accepted as %d ms", durations[_i].text, ms);
    } else {
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(ms, durations[_i].ms);
    }
}
END_TEST

static const struct {
    const char *text;
    long long bytes; /* -1: invalid */
} sizes[] = {
    {"1024", 1024},   {"10B", 10},    {"1kB", 1024}, {"1MB", 1048576}, {"2GB", 2147483648LL},
    {"1mb", 1048576}, {"4 kB", 4096}, {"1TB", -1},   {"-1", -1},       {"MB", -1},
    {"1.5MB", -1},
};

START_TEST(size_syntax)
{
    size_t v = 0;
    int rc = config_parse_size(sizes[_i].text, &v);
    if (sizes[_i].bytes < 0) {
        ck_assert_msg(rc == -1, "'%s' accepted", sizes[_i].text);
    } else {
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_eq(v, (size_t)sizes[_i].bytes);
    }
}
END_TEST

static const struct {
    const char *text;
    int value; /* -1: invalid */
} bools[] = {
    {"yes", 1},   {"on", 1}, {"true", 1}, {"1", 1},  {"YES", 1}, {"no", 0},       {"off", 0},
    {"false", 0}, {"0", 0},  {"", -1},    {"y", -1}, {"2", -1},  {"enabled", -1},
};

START_TEST(bool_syntax)
{
    bool v = false;
    int rc = config_parse_bool(bools[_i].text, &v);
    if (bools[_i].value < 0) {
        ck_assert_msg(rc == -1, "'%s' accepted", bools[_i].text);
    } else {
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(v, bools[_i].value);
    }
}
END_TEST

START_TEST(env_expansion)
{
    setenv("PGW_TEST_KEY", "sk-123", 1);
    setenv("PGW_TEST_EMPTY", "", 1);
    PgwConfig *cfg = parse_ok("[pgwarden]\n" AUTH "[llm]\napi_key = ${PGW_TEST_KEY}\n"
                              "model = \"m-${PGW_TEST_KEY}-${PGW_TEST_EMPTY}x\"\n"
                              "[table.t]\nrow_filter = tenant_id = $tenant\n");
    ck_assert_str_eq(cfg->llm_api_key, "sk-123");
    ck_assert_str_eq(cfg->llm_model, "m-sk-123-x");
    /* $tenant is the policy's, not the environment's. */
    ck_assert_str_eq(config_table(cfg, "public", "t")->row_filter, "tenant_id = $tenant");
    config_free(cfg);
}
END_TEST

START_TEST(relative_paths)
{
    PgwConfig *cfg = NULL;
    char err[512];
    const char *text = "[pgwarden]\nauth_file = users.txt\ntls_cert_file = tls/c.pem\n"
                       "tls_key_file = /abs/k.pem\nlog_file = log/pgw.log\naudit_log = a.jsonl\n"
                       "[llm]\nexamples_file = ex.json\n";

    ck_assert_int_eq(
        config_parse_string("/etc/pgwarden/pgwarden.ini", text, &cfg, err, sizeof(err)), 0);
    ck_assert_str_eq(cfg->auth_file, "/etc/pgwarden/users.txt");
    ck_assert_str_eq(cfg->tls_cert_file, "/etc/pgwarden/tls/c.pem");
    ck_assert_str_eq(cfg->tls_key_file, "/abs/k.pem");
    ck_assert_str_eq(cfg->log_file, "/etc/pgwarden/log/pgw.log");
    ck_assert_str_eq(cfg->audit_log, "/etc/pgwarden/a.jsonl");
    ck_assert_str_eq(cfg->llm_examples_file, "/etc/pgwarden/ex.json");
    config_free(cfg);
}
END_TEST

START_TEST(load_file)
{
    char dir[] = "/tmp/pgw-test-config-XXXXXX", path[256], want[300], err[512];
    PgwConfig *cfg = NULL;
    FILE *f;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/p.ini", dir);
    f = fopen(path, "w");
    fputs("[pgwarden]\nauth_file = users.txt\nlisten_port = 7777\nworkers = x\n", f);
    fclose(f);
    ck_assert_int_eq(config_load(path, &cfg, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:4: invalid value for workers", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got '%s'", err);

    f = fopen(path, "w");
    fputs("[pgwarden]\nauth_file = users.txt\nlisten_port = 7777\n", f);
    fclose(f);
    ck_assert_int_eq(config_load(path, &cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(cfg->listen_port, 7777);
    snprintf(want, sizeof(want), "%s/users.txt", dir);
    ck_assert_str_eq(cfg->auth_file, want);
    config_free(cfg);
    unlink(path);
    rmdir(dir);

    ck_assert_int_eq(config_load("/nonexistent/pgwarden.ini", &cfg, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "/nonexistent/pgwarden.ini: cannot open: No such file or directory");
}
END_TEST

/* ---- snapshots ---------------------------------------------------------- */

START_TEST(current_snapshot)
{
    PgwConfig *a = parse_ok("[pgwarden]\n" AUTH "listen_port = 1\n");
    PgwConfig *b = parse_ok("[pgwarden]\n" AUTH "listen_port = 2\n");

    config_set_current(a);
    PgwConfig *held = config_acquire();
    ck_assert_ptr_eq(held, a);
    unsigned v1 = held->version;
    config_set_current(b);
    /* The old snapshot stays readable while a statement holds it. */
    ck_assert_int_eq(held->listen_port, 1);
    PgwConfig *now = config_acquire();
    ck_assert_int_eq(now->listen_port, 2);
    ck_assert_uint_gt(now->version, v1);
    config_release(held);
    config_release(now);
    config_set_current(NULL);
    ck_assert_ptr_null(config_acquire());
}
END_TEST

static void *reader(void *arg)
{
    for (int i = 0; i < 2000; i++) {
        PgwConfig *cfg = config_acquire();
        if (cfg && cfg->listen_port < 1)
            abort();
        config_release(cfg);
    }
    return arg;
}

START_TEST(snapshot_threads)
{
    pthread_t th[4];

    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, reader, NULL);
    for (int i = 0; i < 200; i++)
        config_set_current(parse_ok("[pgwarden]\n" AUTH "listen_port = 5\n"));
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    config_set_current(NULL);
}
END_TEST

START_TEST(restart_needed)
{
    PgwConfig *a = parse_ok("[pgwarden]\n" AUTH "listen_port = 1\n[cache]\nttl = 5s\n");
    PgwConfig *b = parse_ok("[pgwarden]\n" AUTH "listen_port = 2\n[cache]\nttl = 9s\n");
    char names[256];

    ck_assert_uint_eq(config_restart_needed(a, a, names, sizeof(names)), 0);
    ck_assert_uint_eq(config_restart_needed(a, b, names, sizeof(names)), 1);
    ck_assert_str_eq(names, "listen_port");
    config_free(a);
    config_free(b);
}
END_TEST

/* ---- documentation covers every setting --------------------------------- */

static char *slurp(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", TEST_SRCDIR, rel);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = calloc(1, (size_t)n + 1);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return s;
}

/* Does the annotated conf have "name =" (possibly commented out) under
 * [section]? */
static bool conf_documents(const char *text, const char *section, const char *name)
{
    char current[64] = "";
    const char *line = text;

    while (line && *line) {
        const char *p = line;
        while (*p == ' ' || *p == ';' || *p == '#')
            p++;
        if (*p == '[')
            sscanf(p, "[%63[^]]", current);
        else if (strcmp(current, section) == 0 && strncmp(p, name, strlen(name)) == 0) {
            p += strlen(name);
            while (*p == ' ')
                p++;
            if (*p == '=')
                return true;
        }
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    return false;
}

/* Does the man page have an entry ".TP" then "\fBname\fR" under a
 * subsection heading naming [section]? */
static bool man_documents(const char *text, const char *section, const char *name)
{
    char heading[64], entry[128];
    snprintf(heading, sizeof(heading), "[%s]", section);
    snprintf(entry, sizeof(entry), ".TP\n\\fB%s\\fR", name);
    bool in_section = false;
    for (const char *line = text; line && *line;) {
        if (strncmp(line, ".SS", 3) == 0 || strncmp(line, ".SH", 3) == 0) {
            const char *nl = strchr(line, '\n');
            const char *h = strstr(line, heading);
            in_section = h && (!nl || h < nl);
        } else if (in_section && strncmp(line, entry, strlen(entry)) == 0) {
            char after = line[strlen(entry)];
            if (after == ' ' || after == '\n')
                return true;
        }
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    return false;
}

START_TEST(docs_cover_every_setting)
{
    char *conf = slurp("conf/pgwarden.ini");
    char *man = slurp("man/pgwarden.ini.5");

    for (size_t i = 0; i < config_nsettings; i++) {
        const PgwSetting *set = &config_settings[i];
        ck_assert_msg(conf_documents(conf, set->section, set->name),
                      "conf/pgwarden.ini lacks [%s] %s", set->section, set->name);
        ck_assert_msg(man_documents(man, set->section, set->name),
                      "man/pgwarden.ini.5 lacks [%s] %s", set->section, set->name);
    }
    free(conf);
    free(man);
}
END_TEST

START_TEST(shipped_config_is_valid)
{
    char path[1024], err[512];
    PgwConfig *cfg = NULL;

    snprintf(path, sizeof(path), "%s/conf/pgwarden.ini", TEST_SRCDIR);
    setenv("OPENAI_API_KEY", "sk-test", 1);
    ck_assert_msg(config_load(path, &cfg, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_gt(cfg->ntenants, 0);
    ck_assert_uint_gt(cfg->ntables, 0);
    config_free(cfg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");

    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, setting_values, 0, PGW_ARRAY_LEN(values));
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, users_tenants_tables);
    tcase_add_loop_test(tc, config_errors, 0, PGW_ARRAY_LEN(errors));
    tcase_add_loop_test(tc, duration_syntax, 0, PGW_ARRAY_LEN(durations));
    tcase_add_loop_test(tc, size_syntax, 0, PGW_ARRAY_LEN(sizes));
    tcase_add_loop_test(tc, bool_syntax, 0, PGW_ARRAY_LEN(bools));
    tcase_add_test(tc, env_expansion);
    tcase_add_test(tc, relative_paths);
    tcase_add_test(tc, load_file);
    tcase_add_test(tc, current_snapshot);
    tcase_add_test(tc, snapshot_threads);
    tcase_add_test(tc, restart_needed);
    tcase_add_test(tc, docs_cover_every_setting);
    tcase_add_test(tc, shipped_config_is_valid);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
