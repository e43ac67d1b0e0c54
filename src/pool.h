/*
 * pool.h — per-tenant pools of backend sessions (session pooling).
 *
 * A client takes a session on its first statement and keeps it for its
 * lifetime; on release the session is reset (ROLLBACK if needed, DISCARD
 * ALL) and handed to the next waiting client or kept idle. pool_size bounds
 * the sessions of a tenant (idle + in use + connecting); clients beyond it
 * wait in FIFO order, each with its own pool_timeout.
 *
 * Pools are shared by all workers, guarded by one mutex each. A session is
 * handed to a client on another worker by mail: it is detached from its
 * event base, posted, and attached on the receiver's base.
 *
 * The pool also remembers what every client needs at login and what the
 * policy needs: the backend's ParameterStatus values and the tenant's schema.
 */
#ifndef PGW_POOL_H
#define PGW_POOL_H

#include "buf.h"
#include "pgw.h"

#include <pthread.h>

struct PgwBackend;
struct PgwClient;
struct PgwWorker;
struct PgwSchema;

#define PGW_MAX_PARAMS 24

typedef struct PgwPoolWaiter {
    struct PgwWorker *worker;
    uint32_t pid;
    uint64_t serial;
    struct PgwPoolWaiter *next;
} PgwPoolWaiter;

typedef struct PgwPool {
    char *tenant;
    pthread_mutex_t mu;
    int total; /* sessions alive or connecting */
    int nidle;
    struct PgwBackend *idle;
    PgwPoolWaiter *waiters, *waiters_tail;
    /* Learnt from the first session; guarded by mu. */
    bool have_params;
    size_t nparams;
    char *param_names[PGW_MAX_PARAMS];
    char *param_values[PGW_MAX_PARAMS];
    struct PgwSchemaRef *schema; /* what the policy knows of the backend */
    unsigned schema_version; /* config version it was read under */
    /* counters for SHOW POOLS */
    uint64_t connects, connect_failures;
    struct PgwPool *next;
} PgwPool;

/* The pool of a tenant, created on first use. */
PgwPool *pool_get(const char *tenant);

/* Outcome of pool_acquire; later outcomes arrive as client_backend_ready /
 * client_backend_failed on the client's worker. */
typedef enum { PGW_ACQUIRE_NOW, PGW_ACQUIRE_LATER } PgwAcquire;
PgwAcquire pool_acquire(PgwPool *p, struct PgwClient *c, struct PgwBackend **out);
/* Withdraw a waiting client (timeout or disconnect). */
void pool_cancel_wait(PgwPool *p, uint32_t pid, uint64_t serial);
/* Return a session after the client is done; reset runs first. */
void pool_release(PgwPool *p, struct PgwBackend *b);
/* A session broke or could not connect: forget it, maybe wake a waiter. */
void pool_discard(PgwPool *p, struct PgwBackend *b);

/* From backend.c, on the owning worker. */
void pool_backend_ready(struct PgwBackend *b);
void pool_backend_failed(struct PgwBackend *b, const char *why);
/* Back from reset: idle and clean. */
void pool_backend_clean(struct PgwBackend *b);

/* Copy the cached ParameterStatus values into the caller's message buffer,
 * replacing values the client set in its startup packet. Returns false when
 * the pool has not learnt them yet. */
bool pool_params(PgwPool *p, PgwBuf *out, size_t nover, const char *const *over_names,
                 const char *const *over_values);

/* The tenant's schema, read by the first session after each (re)load.
 * pool_schema_acquire returns NULL until one has been read; a reference
 * keeps it alive across a refresh. */
typedef struct PgwSchemaRef {
    struct PgwSchema *schema;
    struct PgwPool *pool;
    int refs;
} PgwSchemaRef;
bool pool_schema_needed(PgwPool *p);
void pool_schema_set(PgwPool *p, struct PgwSchema *schema);
PgwSchemaRef *pool_schema_acquire(PgwPool *p);
void pool_schema_release(PgwPool *p, PgwSchemaRef *ref);

/* Stats for the admin console. */
void pool_foreach(void (*fn)(PgwPool *p, void *arg), void *arg);

#endif
