/*
 * worker.h — the event-loop threads every runtime layer runs on: each
 * worker's libevent base, its mailbox, and the registry of the connections
 * it owns, with what each connection publishes for the admin views.
 *
 * Threading model: `workers` threads, each running its own event base and
 * owning the connections it accepted (kernel-balanced with SO_REUSEPORT by
 * the server's listeners) and the backend sessions those connections hold.
 * Nothing owned by a worker is touched from another thread; other threads
 * post mail to the owner's mailbox instead (a backend handed over by a
 * pool, a cancel request, shutdown).
 *
 * The registry knows connections only as opaque pointers: it hands out the
 * 31-bit id a client sees as its "process id" in BackendKeyData (worker
 * index in the high bits, slot below) and a serial that tells a reused slot
 * from the connection mail was meant for. Beside each entry it keeps a
 * small published view (PgwConnView) that its owner updates and any thread
 * may read: SHOW CLIENTS reads these, never a connection itself.
 *
 * This module knows nothing of clients, backends or the protocol.
 */
#ifndef PGW_WORKER_H
#define PGW_WORKER_H

#include "pgw.h"

struct event_base;

typedef struct PgwWorker PgwWorker;
typedef void (*PgwMailFn)(PgwWorker *w, void *arg);

/* Create n workers (bases and mailboxes; threads not started yet). Once,
 * before anything else here. */
void workers_create(int n);
/* Start every worker's thread with at least stack_size bytes of stack. */
int workers_start(size_t stack_size) PGW_WUR;
/* Ask every loop to exit, then join the threads. */
void workers_stop(void);
int workers_count(void);
PgwWorker *worker_at(int index);
/* Connections registered on all workers (any thread; for shutdown). */
int workers_connections(void);

struct event_base *worker_base(PgwWorker *w);
int worker_index(const PgwWorker *w);
/* Run fn(w, arg) on w's thread, soon. Safe from any thread. */
void worker_post(PgwWorker *w, PgwMailFn fn, void *arg);

/* ---- the connection registry (all but the views: w's thread only) ---- */

/* Register conn on w: returns its id and sets *serial. */
uint32_t worker_register(PgwWorker *w, void *conn, uint64_t *serial);
void worker_unregister(PgwWorker *w, uint32_t id);
/* The connection with this id on w, or NULL when gone or when the serial
 * does not match (serial 0: any). */
void *worker_find(PgwWorker *w, uint32_t id, uint64_t serial);
/* The worker that owns id, or NULL. Any thread. */
PgwWorker *worker_for_id(uint32_t id);
/* Visit every connection of w. */
void worker_foreach(PgwWorker *w, void (*fn)(void *conn, void *arg), void *arg);

/* ---- published views (written by the owner, read by any thread) ---- */

typedef enum {
    PGW_CONN_STARTUP,
    PGW_CONN_AUTH,
    PGW_CONN_LOGIN,
    PGW_CONN_IDLE,
    PGW_CONN_ACTIVE, /* a statement is being decided (ASK, policy thread, the result cache) */
    PGW_CONN_WAITING, /* waiting for a backend session */
} PgwConnState;

/* A reader's copy of one connection's view. */
typedef struct PgwConnView {
    uint32_t id;
    char user[64], database[64], addr[64]; /* truncated copies; "" when unknown */
    PgwConnState state;
    bool tls;
    int backend_pid; /* 0: none */
    uint32_t prepared; /* protocol-level prepared statements it has (transaction pooling) */
} PgwConnView;

/* Publish what a connection is. The strings are not copied: the owner
 * keeps them valid and unchanged until it publishes others or unregisters
 * (it may free the old ones once this returns). NULL: not known yet. */
void worker_publish_names(PgwWorker *w, uint32_t id, const char *user, const char *database,
                          const char *addr, bool tls);
void worker_publish_state(PgwWorker *w, uint32_t id, PgwConnState state);
void worker_publish_backend(PgwWorker *w, uint32_t id, int backend_pid);
void worker_publish_prepared(PgwWorker *w, uint32_t id, uint32_t n);
/* Copy out every connection's view on every worker, one worker at a time
 * (each copy is consistent), and call fn on the copies outside the lock. */
void workers_foreach_view(void (*fn)(const PgwConnView *v, void *arg), void *arg);

#endif
