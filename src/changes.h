/*
 * changes.h — following one backend database's committed writes through
 * logical replication, for the result cache's invalidation.
 *
 * A PgwChanges opens a replication connection with libpq (the conninfo
 * plus replication=database), creates a TEMPORARY logical slot with the
 * pgoutput plugin (the server drops it when the connection ends, however
 * pgwarden ends: nothing is left behind) and streams the publication's
 * changes on the owner's libevent base, never blocking it: connection,
 * commands and the stream are all asynchronous libpq calls driven by
 * events on its socket, and host names are resolved with evdns.
 *
 * What the owner hears, through PgwChangesCallbacks, on the base's thread:
 *  - table_changed: a committed transaction inserted, updated, deleted or
 *    truncated rows of this table. Reported at the transaction's Commit,
 *    once per table per transaction (a million-row COPY is one call).
 *  - schema_changed: the stream described a table differently from before
 *    (columns, types, name): what the policy knows of it must be refreshed.
 *  - caught_up(true, epoch): from now on every commit to a followed table
 *    is reported. caught_up(false, epoch): the stream stopped (failure,
 *    restart, close); commits from now until the next caught_up(true) are
 *    never reported, so anything cached under the old epoch must be
 *    treated as changed once the stream is back. Epochs only grow.
 *
 * Which tables are followed is decided, once per connection, from the
 * publication as the server reports it (pg_publication_tables): a table is
 * followed only if the publication sends every insert, update, delete and
 * truncate of it under its own name — not a table with a row filter (its
 * filtered-out changes are never sent), not an inheritance parent (its
 * children's rows are reported as the children), not a partition whose
 * changes travel as its root, not a view, catalog, unlogged or foreign
 * table, not a table created since. changes_follows() answers for one
 * table; the owner must fall back to ttl for anything not followed. When
 * the stream mentions a relation this picture does not know (a new table,
 * a new partition or inheritance child, a rename), the picture is out of
 * date: the stream restarts (a new epoch) and reads it again.
 *
 * Positions are acknowledged with standby status updates (on the server's
 * request and every status_interval) so the server can recycle WAL. A
 * failure (connection, permission, slot limit, missing publication, a
 * silent server) is logged once with its reason — again only when the
 * reason changes — and retried with exponential backoff.
 */
#ifndef PGW_CHANGES_H
#define PGW_CHANGES_H

#include "pgw.h"

#include <event2/event.h>

typedef struct PgwChanges PgwChanges;

typedef enum {
    PGW_CHANGES_CONNECTING, /* opening the connection, identifying, creating the slot */
    PGW_CHANGES_CATCHING_UP, /* streaming, not caught up yet */
    PGW_CHANGES_STREAMING, /* caught up: every commit is reported */
    PGW_CHANGES_RETRYING, /* failed; waiting for the next attempt */
    PGW_CHANGES_STOPPED,
} PgwChangesState;

typedef struct PgwChangesTable {
    uint32_t oid;
    const char *schema;
    const char *name;
} PgwChangesTable;

typedef struct PgwChangesCallbacks {
    void (*table_changed)(void *arg, const PgwChangesTable *table, uint64_t commit_lsn);
    void (*schema_changed)(void *arg, const PgwChangesTable *table);
    void (*caught_up)(void *arg, bool caught_up, uint64_t epoch);
    /* Optional: a pg_logical_emit_message() the publication carried. */
    void (*message)(void *arg, const char *prefix, const uint8_t *content, size_t len,
                    bool transactional);
    /* Optional: every CopyData message from the server, as received, before
     * it is processed (for tools that capture a stream). */
    void (*tap)(void *arg, const uint8_t *data, size_t len);
} PgwChangesCallbacks;

typedef struct PgwChangesOptions {
    const char *conninfo; /* libpq conninfo or URI; replication=database is added */
    const char *publication;
    const char *label; /* names the stream in log lines, e.g. the database */
    /* 0 for the defaults: 10 s, 60 s, 1 s, 30 s */
    int status_interval_ms; /* standby status updates, at least this often */
    int timeout_ms; /* a server silent this long (even when asked) is gone */
    int retry_min_ms, retry_max_ms; /* backoff between attempts */
} PgwChangesOptions;

/* For SHOW CACHE: a copy, consistent at one moment. */
typedef struct PgwChangesStats {
    PgwChangesState state;
    bool caught_up;
    uint64_t epoch;
    char slot[64]; /* the current (or last) slot's name */
    uint64_t last_lsn; /* the end of the last commit processed */
    uint64_t acked_lsn; /* the last position acknowledged to the server */
    int64_t lag_ms; /* commit time to processing, of the last commit; 0 when idle */
    uint64_t transactions, changes, invalidations, schema_changes, messages;
    uint64_t connects, failures;
    size_t followed; /* tables followed */
    bool all_tables; /* the publication is FOR ALL TABLES */
    char last_error[256]; /* "" when none since the last catch-up */
} PgwChangesStats;

/* Start following. Options are copied; cb and arg must outlive the
 * stream. The first connection attempt starts on the base's next turn. */
PgwChanges *changes_open(struct event_base *base, const PgwChangesOptions *opts,
                         const PgwChangesCallbacks *cb, void *arg);
/* Stop: the connection closes, which drops the server's temporary slot.
 * Calls caught_up(false) if the stream was caught up. Not from inside a
 * callback of the same stream. */
void changes_close(PgwChanges *c);

/* Thread-safe. */
void changes_stats(PgwChanges *c, PgwChangesStats *out);
/* True when the stream is caught up and follows schema.name (unquoted, as
 * the catalogs spell it); *epoch (if not NULL) gets the current epoch. */
bool changes_follows(PgwChanges *c, const char *schema, const char *name, uint64_t *epoch);
const char *changes_state_name(PgwChangesState state);

/* What makes two conninfos the same database: host (or hostaddr), port and
 * dbname after libpq's parsing, with libpq's defaults (environment
 * included) for what is not given. "host=h port=5432 dbname=d" style text
 * in buf. Tenants whose backends give the same key share one stream.
 * Returns -1 with err set for a conninfo libpq cannot parse. */
int changes_database_key(const char *conninfo, char *buf, size_t len, char *err,
                         size_t errlen) PGW_WUR;

#endif
