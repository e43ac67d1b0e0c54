/*
 * server.h — the process: worker threads, listeners, the runtime snapshot,
 * cross-thread mail, signals and shutdown.
 *
 * Threading model: `workers` threads, each running its own libevent base and
 * owning the clients it accepted (kernel-balanced with SO_REUSEPORT) and the
 * backend sessions those clients hold. Nothing about a client is touched
 * from another thread; other threads post a PgwMail to the owner's mailbox
 * instead (backend hand-over from a pool, cancel requests, shutdown). The
 * main thread only handles signals.
 *
 * The runtime snapshot bundles the config, the parsed auth_file and the TLS
 * context; reload builds a whole new one and swaps it, so a half-applied
 * reload can never be observed.
 */
#ifndef PGW_SERVER_H
#define PGW_SERVER_H

#include "config.h"
#include "snapshot.h"
#include "pgw.h"

#include <event2/event.h>
#include <openssl/ssl.h>

struct PgwUserlist;
struct PgwClient;

typedef struct PgwWorker PgwWorker;
typedef void (*PgwMailFn)(PgwWorker *w, void *arg);

struct event_base *worker_base(PgwWorker *w);
int worker_index(PgwWorker *w);
/* Run fn(w, arg) on w's thread, soon. Safe from any thread. */
void worker_post(PgwWorker *w, PgwMailFn fn, void *arg);
PgwWorker *server_worker(int index);
int server_nworkers(void);

/* Clients register with their worker so mail and cancels can find them by
 * id. An id is (worker index, slot, serial); the 31-bit "pid" the client
 * sees in BackendKeyData encodes worker and slot. */
uint32_t worker_register_client(PgwWorker *w, struct PgwClient *c, uint64_t *serial);
void worker_unregister_client(PgwWorker *w, uint32_t pid);
/* The client with this pid on w (w's thread only); NULL when gone or when the
 * serial does not match (serial 0: any). */
struct PgwClient *worker_find_client(PgwWorker *w, uint32_t pid, uint64_t serial);
/* The worker that owns pid, or NULL. */
PgwWorker *server_worker_for_pid(uint32_t pid);

/* Tell the server a client went away (for shutdown accounting). */
void server_client_gone(PgwWorker *w);
bool server_shutting_down(void);

/* Reload the configuration file now (SIGHUP and the admin RELOAD). On
 * failure the running configuration stays and err says why. */
int server_reload(char *err, size_t errlen) PGW_WUR;
/* Visit every client (any thread; the registry is locked meanwhile, so fn
 * must only read what client_describe reads). */
void server_foreach_client(void (*fn)(struct PgwClient *c, void *arg), void *arg);

/* main(): start and run until shutdown; returns the exit status. */
int server_run(const char *config_path, PgwSnapshot *snap, bool daemonize);

#endif
