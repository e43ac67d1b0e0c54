/*
 * snapshot.h — the runtime snapshot: everything one reload replaces at once
 * (the parsed config, the auth_file's users, the TLS context for clients).
 *
 * Reload builds a whole new snapshot and installs it; a half-applied reload
 * can never be observed. Snapshots are reference-counted: a login, a
 * statement or an ASK keeps the one it started with until it is done, so a
 * reload never pulls a setting from under running work. Any thread may
 * acquire and release; only the process (server) loads and installs.
 *
 * This module reads files (config, auth_file, certificate) only in
 * snapshot_load; it knows nothing of clients, backends or threads.
 */
#ifndef PGW_SNAPSHOT_H
#define PGW_SNAPSHOT_H

#include "config.h"
#include "pgw.h"

#include <openssl/ssl.h>

struct PgwUserlist;

typedef struct PgwSnapshot {
    PgwConfig *cfg;
    struct PgwUserlist *users; /* NULL with auth_type trust and no auth_file */
    SSL_CTX *ssl_ctx; /* NULL when no certificate is configured */
    int refs;
} PgwSnapshot;

/* Build a snapshot from a config file (also used by --check); err says
 * "FILE:LINE: why" on failure. The result is not installed. */
int snapshot_load(const char *path, PgwSnapshot **out, char *err, size_t errlen) PGW_WUR;
/* Free a snapshot that was never installed. */
void snapshot_free(PgwSnapshot *s);

/* Make s the current snapshot (takes its reference; gives its config the
 * next version number). The old one goes when its last user releases it. */
void snapshot_install(PgwSnapshot *s);
/* The current snapshot with a reference taken. */
PgwSnapshot *snapshot_acquire(void);
/* Another reference to a snapshot the caller holds. */
PgwSnapshot *snapshot_retain(PgwSnapshot *s);
void snapshot_release(PgwSnapshot *s);

#endif
