/*
 * server.c — the process around the clients: the runtime snapshot, worker
 * threads with their mailboxes and client registries, listeners, signals and
 * shutdown. See server.h for the threading model.
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
#include "auth.h"
#include "buf.h"
#include "client.h"
#include "config.h"
#include "llm.h"
#include "log.h"
#include "metrics.h"
#include "tls.h"

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

#define PID_SLOT_BITS 22
#define PID_SLOT_MASK ((1u << PID_SLOT_BITS) - 1)
#define MAX_LISTENERS 8

typedef struct Mail {
    PgwMailFn fn;
    void *arg;
    struct Mail *next;
} Mail;

typedef struct ClientSlot {
    PgwClient *client; /* NULL when free */
    uint64_t serial;
} ClientSlot;

struct PgwWorker {
    int index;
    pthread_t thread;
    struct event_base *base;
    struct event *mail_ev;
    pthread_mutex_t mail_mu;
    Mail *mail_head, *mail_tail;
    struct evconnlistener *listeners[MAX_LISTENERS];
    int nlisteners;
    /* client registry: changed only by this worker's thread, under reg_mu
     * so the admin console can read it */
    pthread_mutex_t reg_mu;
    ClientSlot *slots;
    uint32_t nslots;
    uint32_t *free_slots;
    uint32_t nfree;
    uint64_t next_serial;
    int nclients; /* atomic reads from main for shutdown */
};

static struct {
    PgwWorker *workers;
    int nworkers;
    struct event_base *main_base;
    const char *config_path;
    int shutting_down; /* 0, 1 graceful, 2 immediate */
    struct event *shutdown_timer;
    struct event *check_timer;
    char *unix_path;
} server;

/* ---------- workers, mail and the client registry ---------- */

struct event_base *worker_base(PgwWorker *w)
{
    return w->base;
}

int worker_index(PgwWorker *w)
{
    return w->index;
}

PgwWorker *server_worker(int index)
{
    return &server.workers[index];
}

int server_nworkers(void)
{
    return server.nworkers;
}

void worker_post(PgwWorker *w, PgwMailFn fn, void *arg)
{
    Mail *m = pgw_malloc(sizeof *m);
    m->fn = fn;
    m->arg = arg;
    m->next = NULL;
    pthread_mutex_lock(&w->mail_mu);
    if (w->mail_tail)
        w->mail_tail->next = m;
    else
        w->mail_head = m;
    w->mail_tail = m;
    pthread_mutex_unlock(&w->mail_mu);
    event_active(w->mail_ev, EV_READ, 0);
}

static void mail_cb(evutil_socket_t fd, short what, void *arg)
{
    PgwWorker *w = arg;
    pthread_mutex_lock(&w->mail_mu);
    Mail *m = w->mail_head;
    w->mail_head = w->mail_tail = NULL;
    pthread_mutex_unlock(&w->mail_mu);
    while (m) {
        Mail *next = m->next;
        m->fn(w, m->arg);
        free(m);
        m = next;
    }
}

uint32_t worker_register_client(PgwWorker *w, PgwClient *c, uint64_t *serial)
{
    uint32_t slot;
    pthread_mutex_lock(&w->reg_mu);
    if (w->nfree) {
        slot = w->free_slots[--w->nfree];
    } else {
        if (w->nslots > PID_SLOT_MASK) {
            log_error("too many clients on worker %d", w->index);
            abort();
        }
        slot = w->nslots++;
        w->slots = pgw_realloc(w->slots, w->nslots * sizeof *w->slots);
        w->free_slots = pgw_realloc(w->free_slots, w->nslots * sizeof *w->free_slots);
    }
    w->slots[slot].client = c;
    w->slots[slot].serial = *serial = ++w->next_serial;
    __atomic_add_fetch(&w->nclients, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&w->reg_mu);
    /* pid: worker in the high bits, slot below; never 0, always positive. */
    return ((uint32_t)(w->index + 1) << PID_SLOT_BITS) | slot;
}

void worker_unregister_client(PgwWorker *w, uint32_t pid)
{
    uint32_t slot = pid & PID_SLOT_MASK;
    pthread_mutex_lock(&w->reg_mu);
    if (slot < w->nslots && w->slots[slot].client) {
        w->slots[slot].client = NULL;
        w->free_slots[w->nfree++] = slot;
    }
    pthread_mutex_unlock(&w->reg_mu);
}

void server_foreach_client(void (*fn)(PgwClient *c, void *arg), void *arg)
{
    for (int i = 0; i < server.nworkers; i++) {
        PgwWorker *w = &server.workers[i];
        pthread_mutex_lock(&w->reg_mu);
        for (uint32_t k = 0; k < w->nslots; k++)
            if (w->slots[k].client)
                fn(w->slots[k].client, arg);
        pthread_mutex_unlock(&w->reg_mu);
    }
}

PgwClient *worker_find_client(PgwWorker *w, uint32_t pid, uint64_t serial)
{
    if (server_worker_for_pid(pid) != w)
        return NULL;
    uint32_t slot = pid & PID_SLOT_MASK;
    if (slot >= w->nslots || !w->slots[slot].client)
        return NULL;
    if (serial && w->slots[slot].serial != serial)
        return NULL;
    return w->slots[slot].client;
}

PgwWorker *server_worker_for_pid(uint32_t pid)
{
    int index = (int)(pid >> PID_SLOT_BITS) - 1;
    if (index < 0 || index >= server.nworkers)
        return NULL;
    return &server.workers[index];
}

bool server_shutting_down(void)
{
    return __atomic_load_n(&server.shutting_down, __ATOMIC_SEQ_CST) != 0;
}

void server_client_gone(PgwWorker *w)
{
    __atomic_sub_fetch(&w->nclients, 1, __ATOMIC_SEQ_CST);
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
        event_base_once(w->base, -1, EV_TIMEOUT, listener_resume_cb, l, &tv);
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
    for (int i = 0; i < server.nworkers; i++) {
        PgwWorker *w = &server.workers[i];
        for (struct addrinfo *ai = res; ai && w->nlisteners < MAX_LISTENERS; ai = ai->ai_next) {
            int fd = bind_tcp(ai, err, errlen);
            if (fd < 0) {
                freeaddrinfo(res);
                return -1;
            }
            struct evconnlistener *l =
                evconnlistener_new(w->base, accept_cb, w, LEV_OPT_CLOSE_ON_FREE, -1, fd);
            evconnlistener_set_error_cb(l, accept_error_cb);
            w->listeners[w->nlisteners++] = l;
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
        PgwWorker *w = &server.workers[0];
        struct evconnlistener *l =
            evconnlistener_new(w->base, accept_cb, w, LEV_OPT_CLOSE_ON_FREE, -1, fd);
        w->listeners[w->nlisteners++] = l;
    }
    return 0;
}

static void close_listeners_mail(PgwWorker *w, void *arg)
{
    for (int i = 0; i < w->nlisteners; i++)
        evconnlistener_free(w->listeners[i]);
    w->nlisteners = 0;
}

static void shutdown_clients_mail(PgwWorker *w, void *arg)
{
    bool immediate = arg != NULL;
    for (uint32_t i = 0; i < w->nslots; i++)
        if (w->slots[i].client)
            client_shutdown(w->slots[i].client, immediate);
}

static void stop_mail(PgwWorker *w, void *arg)
{
    event_base_loopexit(w->base, NULL);
}

/* ---------- signals ---------- */

static int total_clients(void)
{
    int n = 0;
    for (int i = 0; i < server.nworkers; i++)
        n += __atomic_load_n(&server.workers[i].nclients, __ATOMIC_SEQ_CST);
    return n;
}

static void finish(void)
{
    for (int i = 0; i < server.nworkers; i++)
        worker_post(&server.workers[i], stop_mail, NULL);
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
    for (int i = 0; i < server.nworkers; i++) {
        if (!was)
            worker_post(&server.workers[i], close_listeners_mail, NULL);
        worker_post(&server.workers[i], shutdown_clients_mail, immediate ? (void *)1 : NULL);
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

static void *worker_main(void *arg)
{
    PgwWorker *w = arg;
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

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

int server_run(const char *config_path, PgwSnapshot *snap, bool daemonize)
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
    server.nworkers = n;
    server.workers = pgw_calloc((size_t)n, sizeof *server.workers);
    for (int i = 0; i < n; i++) {
        PgwWorker *w = &server.workers[i];
        w->index = i;
        /* The changelist folds the add/remove of write interest that every
         * relayed message causes into fewer epoll_ctl calls. */
        struct event_config *ec = event_config_new();
        event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        w->base = event_base_new_with_config(ec);
        event_config_free(ec);
        pthread_mutex_init(&w->mail_mu, NULL);
        pthread_mutex_init(&w->reg_mu, NULL);
        w->mail_ev = event_new(w->base, -1, EV_PERSIST, mail_cb, w);
    }
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
    if (metrics_start(server.main_base, cfg->listen_addr, cfg->metrics_port, err, sizeof err) !=
        0) {
        log_error("%s", err);
        return 1;
    }
    server.shutdown_timer = evtimer_new(server.main_base, shutdown_timeout_cb, NULL);
    server.check_timer = event_new(server.main_base, -1, EV_PERSIST, check_cb, NULL);
    for (int i = 0; i < n; i++)
        pthread_create(&server.workers[i].thread, NULL, worker_main, &server.workers[i]);
    log_info("pgwarden %s listening on %s:%d with %d workers", PGW_VERSION_STRING, cfg->listen_addr,
             cfg->listen_port, n);

    event_base_dispatch(server.main_base);

    metrics_stop();
    for (int i = 0; i < n; i++)
        pthread_join(server.workers[i].thread, NULL);
    log_info("pgwarden stopped");
    return 0;
}
