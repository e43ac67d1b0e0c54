/*
 * changes_service.h — the change streams as the running process holds
 * them (issue 10): one logical replication stream (changes.h) per distinct
 * backend database, on a thread of its own, whose reports drive the result
 * cache and the policy's picture of the schema.
 *
 * The catalog check (below) runs in every mode, so the policy's schema
 * follows DDL without a RELOAD; the rest needs [cache] invalidation =
 * replication. Then the service starts with the server and follows every reload (a tenant added, removed or moved to
 * another database opens, closes or moves a stream); tenants whose
 * backends are the same database share one stream. What it does with what
 * the streams say:
 *  - a committed write to table T of database D drops, for every tenant on
 *    D, each cached result that read T (memory, and Redis through a
 *    worker's connection, which bumps T's generation for every instance);
 *  - until D's stream has caught up after (re)connecting, results of D's
 *    tenants are neither served nor stored (changes_service_gate says
 *    HOLD); a stream that keeps failing makes D fall back to ttl, logged
 *    once with the reason, until it catches up again;
 *  - a catalog change (a DDL seen as a changed Relation message, or a
 *    change of the catalog generation, polled every two seconds on a plain
 *    connection) makes the tenants' pools read their schema again before
 *    their next statement, and drops the database's results.
 *
 * The gate is how the cache asks, per statement, on any thread; it is
 * cheap (a read lock, a short scan) and never blocks on I/O.
 */
#ifndef PGW_CHANGES_SERVICE_H
#define PGW_CHANGES_SERVICE_H

#include "changes.h"
#include "config.h"
#include "pgw.h"

/* The pseudo-relation every result of a followed database is filed under
 * besides the tables it read (invalidated when the stream stops vouching
 * for them, and on DDL). It has no dot, so no "schema.name" is it. */
#define PGW_CHANGES_REL_STREAM "*stream"

/* Start the service. Once, after the workers exist. With invalidation =
 * replication (and a cache) the streams and the gate run; in every mode the
 * catalog check runs, so schema_changed follows DDL without streams too. schema_changed(tenant) is called (on the
 * service's threads) when the tenant's backend catalog changed: the
 * program points it at the pools (pool_schema_refresh), a layer above
 * this one. Returns -1 with err when the threads cannot be made. */
int changes_service_start(const PgwConfig *cfg, void (*schema_changed)(const char *tenant),
                          char *err, size_t errlen) PGW_WUR;
/* Close every stream (the server drops their temporary slots) and join
 * the threads. At shutdown, before the workers stop. */
void changes_service_stop(void);

typedef enum {
    PGW_CHANGES_GATE_TTL, /* not followed: the cache works by ttl alone */
    PGW_CHANGES_GATE_EXACT, /* followed and caught up: file under the extras */
    PGW_CHANGES_GATE_FALLBACK, /* the stream is failing: ttl, filed under the extras */
    PGW_CHANGES_GATE_HOLD, /* not caught up yet: neither serve nor store */
} PgwChangesGate;

/* For tenant's statement reading rels ("schema.name"; none for a raw-text
 * probe): whether the cache may answer or store it, and (EXACT, FALLBACK)
 * the further relations to file it under: the tables under the views it
 * reads, the partitions and inheritance children and parents of the
 * tables it reads, and always PGW_CHANGES_REL_STREAM. *extra is malloc'd (each string too),
 * NULL when *nextra is 0. Any thread. */
PgwChangesGate changes_service_gate(const char *tenant, size_t nrels, char *const *rels,
                                    size_t *nextra, char ***extra);
const char *changes_gate_name(PgwChangesGate g);
/* The same as the result cache's gate (cache_front.h's PgwCacheGateFn):
 * false for HOLD. */
bool changes_service_cache_gate(const char *tenant, size_t nrels, char *const *rels, size_t *nextra,
                                char ***extra);

/* SHOW CACHE: one call per followed database, under the service's lock
 * (fn copies what it needs). */
typedef struct PgwChangesView {
    const char *database; /* the stream's label: dbname@host:port */
    const char *tenants; /* comma-separated */
    PgwChangesGate gate; /* EXACT, FALLBACK or HOLD */
    PgwChangesStats st;
    uint64_t invalidations; /* cached-result invalidations sent (per table and tenant) */
    uint64_t schema_refreshes; /* catalog changes that made the pools re-read */
} PgwChangesView;
void changes_service_views(void (*fn)(void *arg, const PgwChangesView *v), void *arg);

#endif
