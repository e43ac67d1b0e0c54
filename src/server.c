/*
 * server.c — the process around the clients: worker threads (started
 * here, defined in worker.c), listeners, signals, reload and shutdown.
 * See worker.h for the threading model.
 *
 * Listeners: every worker binds its own socket to each listen address with
 * SO_REUSEPORT, so the kernel spreads new connections over the workers and
 * no accept ever crosses a thread. The unix socket, if any, is served by
 * worker 0.
 *
 * Shutdown: SIGTERM closes the listeners and asks every client to leave as
 * soon as its running statement is done; after shutdown_timeout the rest are
 * closed. SIGINT closes everything at once. SIGHUP reloads: a new snapshot is
 * built and swapped in, or, when the new config is bad, the old one stays and
 * the reason is logged.
 */
#include "server.h"

#include "audit.h"
#include "buf.h"
#include "client.h"
#include "config.h"
#include "llm.h"
#include "log.h"
#include "policy.h" /* PGW_POLICY_INLINE_STACK */
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_LISTENERS 8

typedef struct Listeners {
    struct evconnlistener *l[MAX_LISTENERS];
    int n;
} Listeners;

static struct {
    Listeners *listeners; /* per worker */
    struct event_base *main_base;
    const char *config_path;
    int shutting_down; /* 0, 1 graceful, 2 immediate */
    struct event *shutdown_timer;
    struct event *check_timer;
    char *unix_path;
} server;

bool server_shutting_down(void)
{
    return __atomic_load_n(&server.shutting_down, __ATOMIC_SEQ_CST) != 0;
}

/* ---------- listeners ---------- */

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
                      int addrlen, void *arg)
{
    PgwWorker *w = arg;
    if (server_shutting_down()) {
        evutil_closesocket(fd);
        return;
    }
    evutil_make_socket_nonblocking(fd);
    evutil_make_socket_closeonexec(fd);
    client_accept(w, fd, addr, addrlen);
}

static void listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    if (!server_shutting_down()) /* shutdown frees the listeners */
        evconnlistener_enable(arg);
}

/* Out of file descriptors: a ready listener would wake the loop at once,
 * again and again. Pause it for a second (and log once per pause). */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    PgwWorker *w = arg;
    int err = EVUTIL_SOCKET_ERROR();
    log_warning("accept failed: %s", evutil_socket_error_to_string(err));
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        evconnlistener_disable(l);
        struct timeval tv = {1, 0};
        event_base_once(worker_base(w), -1, EV_TIMEOUT, listener_resume_cb, l, &tv);
    }
}

static int bind_tcp(const struct addrinfo *ai, char *err, size_t errlen)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        goto fail;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0)
        goto fail;
    return fd;
fail:
    snprintf(err, errlen, "cannot listen: %s", strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

static int start_listeners(PgwConfig *cfg, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->listen_port);
    const char *host = strcmp(cfg->listen_addr, "*") == 0 ? NULL : cfg->listen_addr;
    if (*cfg->listen_addr) {
        int rc = getaddrinfo(host, port, &hints, &res);
        if (rc != 0) {
            snprintf(err, errlen, "listen_addr %s: %s", cfg->listen_addr, gai_strerror(rc));
            return -1;
        }
    }
    for (int i = 0; i < workers_count(); i++) {
        PgwWorker *w = worker_at(i);
        Listeners *ls = &server.listeners[i];
        for (struct addrinfo *ai = res; ai && ls->n < MAX_LISTENERS; ai = ai->ai_next) {
            int fd = bind_tcp(ai, err, errlen);
            if (fd < 0) {
                freeaddrinfo(res);
                return -1;
            }
            struct evconnlistener *l =
                evconnlistener_new(worker_base(w), accept_cb, w, LEV_OPT_CLOSE_ON_FREE, -1, fd);
            evconnlistener_set_error_cb(l, accept_error_cb);
            ls->l[ls->n++] = l;
        }
    }
    if (res)
        freeaddrinfo(res);
    if (cfg->unix_socket_dir && *cfg->unix_socket_dir) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s/.s.PGSQL.%d", cfg->unix_socket_dir,
                 cfg->listen_port);
        unlink(sun.sun_path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0 || listen(fd, 1024) != 0) {
            snprintf(err, errlen, "cannot listen on %s: %s", sun.sun_path, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        chmod(sun.sun_path, 0777);
        server.unix_path = pgw_strdup(sun.sun_path);
        PgwWorker *w = worker_at(0);
        Listeners *ls = &server.listeners[0];
        struct evconnlistener *l =
            evconnlistener_new(worker_base(w), accept_cb, w, LEV_OPT_CLOSE_ON_FREE, -1, fd);
        if (ls->n < MAX_LISTENERS)
            ls->l[ls->n++] = l;
    }
    return 0;
}

static void close_listeners_mail(PgwWorker *w, void *arg)
{
    Listeners *ls = &server.listeners[worker_index(w)];
    for (int i = 0; i < ls->n; i++)
        evconnlistener_free(ls->l[i]);
    ls->n = 0;
}

/* Every registered connection of a worker is a client. */
static void shutdown_client(void *conn, void *arg)
{
    client_shutdown(conn, arg != NULL);
}

static void shutdown_clients_mail(PgwWorker *w, void *arg)
{
    worker_foreach(w, shutdown_client, arg);
}

/* ---------- signals ---------- */

static int total_clients(void)
{
    return workers_connections();
}

/* The main loop ends; server_run stops the workers. */
static void finish(void)
{
    event_base_loopexit(server.main_base, NULL);
}

static void check_cb(evutil_socket_t fd, short what, void *arg)
{
    if (total_clients() == 0)
        finish();
}

static void begin_shutdown(bool immediate)
{
    int was = server.shutting_down;
    if (was == 2 || (was == 1 && !immediate))
        return;
    __atomic_store_n(&server.shutting_down, immediate ? 2 : 1, __ATOMIC_SEQ_CST);
    log_info(immediate ? "shutting down now" : "shutting down: waiting for running statements");
    for (int i = 0; i < workers_count(); i++) {
        if (!was)
            worker_post(worker_at(i), close_listeners_mail, NULL);
        worker_post(worker_at(i), shutdown_clients_mail, immediate ? (void *)1 : NULL);
    }
    if (server.unix_path)
        unlink(server.unix_path);
    if (immediate) {
        finish();
        return;
    }
    PgwSnapshot *s = snapshot_acquire();
    int ms = s->cfg->shutdown_timeout_ms;
    snapshot_release(s);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(server.shutdown_timer, &tv);
    struct timeval every = {0, 50000};
    event_add(server.check_timer, &every);
}

static void shutdown_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    log_warning("shutdown_timeout reached: closing the remaining %d clients", total_clients());
    begin_shutdown(true);
}

int server_reload(char *err, size_t errlen)
{
    PgwSnapshot *s;
    if (snapshot_load(server.config_path, &s, err, errlen) != 0) {
        log_error("reload failed, keeping the running configuration: %s", err);
        return -1;
    }
    if (log_open(s->cfg->log_file) != 0)
        log_warning("cannot reopen log_file %s: %s", s->cfg->log_file, strerror(errno));
    if (audit_open(s->cfg->audit_log) != 0)
        log_warning("cannot reopen audit_log %s: %s", s->cfg->audit_log, strerror(errno));
    snapshot_install(s);
    log_info("configuration reloaded from %s", server.config_path);
    return 0;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    switch (sig) {
    case SIGHUP: {
        char err[1024];
        if (server_reload(err, sizeof err) != 0)
            break; /* logged; the old configuration stays */
        break;
    }
    case SIGTERM:
        begin_shutdown(false);
        break;
    case SIGINT:
        begin_shutdown(true);
        break;
    }
}

/* ---------- run ---------- */

static int daemonize_now(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    if (setsid() < 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        if (fd > 2)
            close(fd);
    }
    return 0;
}

int server_run(const char *config_path, PgwSnapshot *snap, bool daemonize,
               const PgwServerServices *services)
{
    char err[1024];
    PgwConfig *cfg = snap->cfg;
    server.config_path = config_path;
    if (log_open(cfg->log_file) != 0) {
        fprintf(stderr, "pgwarden: cannot open log_file %s: %s\n", cfg->log_file, strerror(errno));
        return 1;
    }
    if (daemonize) {
        if (!cfg->log_file || !*cfg->log_file)
            fprintf(stderr, "pgwarden: -d without log_file: the log goes nowhere\n");
        if (daemonize_now() != 0) {
            fprintf(stderr, "pgwarden: cannot daemonize: %s\n", strerror(errno));
            return 1;
        }
        if (!cfg->log_file || !*cfg->log_file) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0) {
                dup2(fd, 2);
                close(fd);
            }
        }
    }
    if (audit_open(cfg->audit_log) != 0) {
        fprintf(stderr, "pgwarden: cannot open audit_log %s: %s\n", cfg->audit_log,
                strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    if (llm_global_init() != 0) {
        log_error("cannot initialise libcurl");
        return 1;
    }
    snapshot_install(snap);

    int n = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > 255)
        n = 255;
    workers_create(n);
    server.listeners = pgw_calloc((size_t)n, sizeof *server.listeners);
    if (start_listeners(cfg, err, sizeof err) != 0) {
        log_error("%s", err);
        return 1;
    }
    server.main_base = event_base_new();
    struct event *sigs[3];
    int signos[3] = {SIGHUP, SIGTERM, SIGINT};
    for (int i = 0; i < 3; i++) {
        sigs[i] = evsignal_new(server.main_base, signos[i], signal_cb, NULL);
        event_add(sigs[i], NULL);
    }
    if (services && services->start(server.main_base, cfg, err, sizeof err) != 0) {
        log_error("%s", err);
        return 1;
    }
    server.shutdown_timer = evtimer_new(server.main_base, shutdown_timeout_cb, NULL);
    server.check_timer = event_new(server.main_base, -1, EV_PERSIST, check_cb, NULL);
    /* Statements up to PGW_POLICY_INLINE_MAX bytes are decided on the
     * worker itself (longer ones on a policy thread): its stack must hold
     * the deepest such statement. */
    if (workers_start(PGW_POLICY_INLINE_STACK) != 0) {
        log_error("cannot start the worker threads: %s", strerror(errno));
        return 1;
    }
    log_info("pgwarden %s listening on %s:%d with %d workers", PGW_VERSION_STRING, cfg->listen_addr,
             cfg->listen_port, n);

    event_base_dispatch(server.main_base);

    if (services)
        services->stop();
    workers_stop();
    audit_shutdown(); /* every record of the statements that ran is written */
    log_info("pgwarden stopped");
    return 0;
}
