/*
 * snapshot.c — the runtime snapshot; see snapshot.h.
 *
 * One mutex guards which snapshot is current; reference counts are atomic,
 * so retaining or releasing a snapshot never takes a lock. A config's
 * version number is assigned when it is installed, so every component that
 * caches by version (rewrite cache, prompt schemas, the pool's schema)
 * sees a reload as a new version.
 */
#include "snapshot.h"

#include "auth.h"
#include "buf.h"
#include "tls.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_mutex_t current_mu = PTHREAD_MUTEX_INITIALIZER;
static PgwSnapshot *current;

int snapshot_load(const char *path, PgwSnapshot **out, char *err, size_t errlen)
{
    PgwSnapshot *s = pgw_calloc(1, sizeof *s);
    if (config_load(path, &s->cfg, err, errlen) != 0)
        goto fail;
    PgwConfig *cfg = s->cfg;
    if (cfg->auth_type != PGW_AUTH_TRUST || cfg->auth_file) {
        if (!cfg->auth_file) {
            snprintf(err, errlen, "%s: auth_type %s needs auth_file", path,
                     cfg->auth_type == PGW_AUTH_MD5 ? "md5" : "scram-sha-256");
            goto fail;
        }
        if (auth_userlist_load(cfg->auth_file, &s->users, err, errlen) != 0)
            goto fail;
        /* Once here rather than per login: no SCRAM login runs PBKDF2, so
         * none takes visibly longer than another (see auth.c). */
        if (cfg->auth_type == PGW_AUTH_SCRAM && auth_userlist_prepare_scram(s->users) != 0) {
            snprintf(err, errlen, "%s: cannot derive SCRAM verifiers", cfg->auth_file);
            goto fail;
        }
    }
    if (cfg->tls_cert_file && *cfg->tls_cert_file && cfg->client_tls != PGW_TLS_DISABLE) {
        char terr[512];
        s->ssl_ctx = tls_server_ctx_new(cfg->tls_cert_file, cfg->tls_key_file, terr, sizeof terr);
        if (!s->ssl_ctx) {
            snprintf(err, errlen, "%s: %s", path, terr);
            goto fail;
        }
    } else if (cfg->client_tls == PGW_TLS_REQUIRE) {
        snprintf(err, errlen, "%s: client_tls = require needs tls_cert_file and tls_key_file",
                 path);
        goto fail;
    }
    s->refs = 1;
    *out = s;
    return 0;
fail:
    snapshot_free(s);
    return -1;
}

void snapshot_free(PgwSnapshot *s)
{
    if (!s)
        return;
    if (s->cfg)
        config_free(s->cfg);
    if (s->users)
        auth_userlist_free(s->users);
    if (s->ssl_ctx)
        tls_ctx_free(s->ssl_ctx);
    free(s);
}

void snapshot_install(PgwSnapshot *s)
{
    static unsigned version;
    pthread_mutex_lock(&current_mu);
    s->cfg->version = ++version;
    PgwSnapshot *old = current;
    current = s;
    pthread_mutex_unlock(&current_mu);
    if (old)
        snapshot_release(old);
}

PgwSnapshot *snapshot_acquire(void)
{
    pthread_mutex_lock(&current_mu);
    PgwSnapshot *s = current;
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&current_mu);
    return s;
}

PgwSnapshot *snapshot_retain(PgwSnapshot *s)
{
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
    return s;
}

void snapshot_release(PgwSnapshot *s)
{
    if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
        snapshot_free(s);
}
