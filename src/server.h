/*
 * server.h — the process: listeners, signals, reload and shutdown, around
 * the worker threads (worker.h) that run every connection.
 *
 * The server starts the workers and gives each the connections its
 * listeners accept; it reloads the runtime snapshot (snapshot.h) on SIGHUP
 * or RELOAD, and on SIGTERM/SIGINT asks every client to leave and stops
 * the workers when they have. It calls into the client layer (accept,
 * shutdown) and nothing below ever calls back into it; services that read
 * the running process (the /metrics endpoint) are started on its main loop
 * by the program, through PgwServerServices.
 */
#ifndef PGW_SERVER_H
#define PGW_SERVER_H

#include "pgw.h"
#include "snapshot.h"

struct event_base;

/* Reload the configuration file now (SIGHUP and the admin RELOAD). On
 * failure the running configuration stays and err says why. */
int server_reload(char *err, size_t errlen) PGW_WUR;
bool server_shutting_down(void);

/* What runs on the main thread's event loop beside the signals: started
 * once the workers exist, stopped after the loop ends. */
typedef struct PgwServerServices {
    int (*start)(struct event_base *main_base, const PgwConfig *cfg, char *err,
                 size_t errlen) PGW_WUR;
    void (*stop)(void);
} PgwServerServices;

/* main(): start and run until shutdown; returns the exit status. snap is
 * installed as the current snapshot. services may be NULL. */
int server_run(const char *config_path, PgwSnapshot *snap, bool daemonize,
               const PgwServerServices *services);

#endif
