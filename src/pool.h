/*
 * pool.h — per-tenant pools of backend sessions.
 *
 * A user (the link of a client) takes a session on its first statement and
 * keeps it for its lifetime (session pooling; on release the session is
 * reset: ROLLBACK if needed, DISCARD ALL) or for one transaction
 * (transaction pooling: the session goes back as it is, carrying the
 * shared prepared statements, and the link brings each client's own state
 * where it lands); then it is handed to the next waiter or kept idle.
 * pool_size bounds the sessions of a tenant (idle + in use + connecting);
 * users beyond it wait in FIFO order, each with its own timeout (theirs).
 *
 * Pools are shared by all workers, guarded by one mutex each. An idle
 * session stays attached to the worker that gave it back, watched for its
 * server going away, and goes to a user on that worker first. A session
 * is handed to a waiter (or an idle one to a user) on another worker by
 * mail: it is detached from its event base on its own worker, posted, and
 * attached on the receiver's base. The pool knows
 * nothing of clients: a waiter is a PgwPoolWait ticket carrying the
 * waiter's callbacks (PgwPoolWaitOps) and its worker, and is answered on
 * that worker exactly once — or never, once withdrawn.
 *
 * The pool also remembers what every client needs at login and what the
 * policy needs: the backend's ParameterStatus values and the tenant's
 * schema. The admin views read only pool_views' copies.
 */
#ifndef PGW_POOL_H
#define PGW_POOL_H

#include "buf.h"
#include "pgw.h"

struct PgwBackend;
struct PgwWorker;
struct PgwSchema;

typedef struct PgwPool PgwPool;

/* The pool of a tenant, created on first use (pools live as long as the
 * process). */
PgwPool *pool_get(const char *tenant);
const char *pool_tenant(const PgwPool *p);

/* A waiter's callbacks, called on its worker. Each answer ends the wait:
 * the ticket is gone afterwards. */
typedef struct PgwPoolWaitOps {
    void (*ready)(void *owner, struct PgwBackend *b); /* b is attached to the waiter's worker */
    void (*failed)(void *owner, const char *sqlstate, const char *message);
} PgwPoolWaitOps;
typedef struct PgwPoolWait PgwPoolWait;

typedef enum { PGW_ACQUIRE_NOW, PGW_ACQUIRE_LATER } PgwAcquire;
/* NOW: *out is an idle session, attached to w. LATER: *wait is the
 * ticket, stored before anything can answer it — an answer may come
 * before pool_acquire returns (a conninfo that cannot even start
 * connecting fails at once). */
PgwAcquire pool_acquire(PgwPool *p, struct PgwWorker *w, const PgwPoolWaitOps *ops, void *owner,
                        struct PgwBackend **out, PgwPoolWait **wait);
/* Withdraw a wait that has not been answered (on the waiter's worker):
 * the ticket is never answered and gone afterwards. */
void pool_cancel_wait(PgwPoolWait *wait);
/* How long the wait has lasted, in microseconds (not answered yet: on the
 * waiter's worker). */
int64_t pool_wait_age_usec(const PgwPoolWait *wait);
/* Return a session after its user is done; reset runs first. */
void pool_release(PgwPool *p, struct PgwBackend *b);
/* A session broke: forget it, maybe wake a waiter. */
void pool_discard(PgwPool *p, struct PgwBackend *b);
/* Prepared statements kept on the tenant's sessions changed by delta
 * (transaction pooling; SHOW POOLS). */
void pool_count_prepared(PgwPool *p, int delta);

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
/* The tenant's backend catalog changed (DDL): re-read before the next
 * statement. Any thread. */
void pool_schema_refresh(const char *tenant);
PgwSchemaRef *pool_schema_acquire(PgwPool *p);
void pool_schema_release(PgwSchemaRef *ref);

/* What SHOW POOLS and /metrics show: a copy made under the pool's lock. */
typedef struct PgwPoolView {
    const char *tenant; /* lives as long as the process */
    const char *mode; /* "session" or "transaction" (the tenant's, now) */
    int sessions, idle, waiting;
    int active; /* sessions lent to clients (or being reset) */
    long prepared; /* protocol-level statements kept on its sessions */
    uint64_t connects, connect_failures;
    size_t schema_tables;
} PgwPoolView;
void pool_views(void (*fn)(const PgwPoolView *v, void *arg), void *arg);

#endif
