/*
 * worker.c — event-loop threads, mailboxes and connection registries; see
 * worker.h.
 *
 * Mail is a mutex-guarded list and one event made active from the posting
 * thread (libevent's pthread support makes event_active safe across
 * threads); the owner drains the whole list in one callback, in order.
 *
 * The registry is an array of slots indexed by the low bits of an id, with
 * a free list. Only the owner thread adds, removes or changes names, always
 * under reg_mu, so a reader holding reg_mu sees every slot either before or
 * after a change and never a freed string. The state and backend pid are
 * single words the owner changes on the hot path (per statement): they are
 * stored and loaded atomically, so publishing them takes no lock.
 */
#include "worker.h"

#include "buf.h"
#include "log.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_SLOT_BITS 22
#define ID_SLOT_MASK ((1u << ID_SLOT_BITS) - 1)

typedef struct Mail {
    PgwMailFn fn;
    void *arg;
    struct Mail *next;
} Mail;

typedef struct Slot {
    void *conn; /* NULL when free */
    uint64_t serial;
    const char *user, *database, *addr; /* published, owner's strings */
    int backend_pid; /* atomic */
    uint8_t state; /* atomic */
    bool tls;
    uint16_t prepared; /* atomic; saturates */
} Slot;

struct PgwWorker {
    int index;
    pthread_t thread;
    bool started;
    struct event_base *base;
    struct event *mail_ev;
    pthread_mutex_t mail_mu;
    Mail *mail_head, *mail_tail;
    pthread_mutex_t reg_mu;
    Slot *slots;
    uint32_t nslots;
    uint32_t *free_slots;
    uint32_t nfree;
    uint64_t next_serial;
    int nconns; /* atomic: read by the main thread during shutdown */
};

static PgwWorker *workers;
static int nworkers;

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

void workers_create(int n)
{
    nworkers = n;
    workers = pgw_calloc((size_t)n, sizeof *workers);
    for (int i = 0; i < n; i++) {
        PgwWorker *w = &workers[i];
        w->index = i;
        /* No epoll changelist: with one, deleting an event only records
         * the change until the loop's next epoll_wait, so a socket handed
         * to another worker (a pooled session) or closed (and its number
         * reused by another worker's accept) would still be touched by
         * this one's epoll_ctl afterwards. Write interest, which the
         * changelist used to fold, no longer comes and goes per message
         * (worker_out.c). */
        w->base = event_base_new();
        pthread_mutex_init(&w->mail_mu, NULL);
        pthread_mutex_init(&w->reg_mu, NULL);
        w->mail_ev = event_new(w->base, -1, EV_PERSIST, mail_cb, w);
    }
}

static void *worker_main(void *arg)
{
    PgwWorker *w = arg;
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

int workers_start(size_t stack_size)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    size_t have = 0;
    pthread_attr_getstacksize(&attr, &have);
    if (stack_size > have && pthread_attr_setstacksize(&attr, stack_size) != 0) {
        pthread_attr_destroy(&attr);
        return -1;
    }
    for (int i = 0; i < nworkers; i++) {
        if (pthread_create(&workers[i].thread, &attr, worker_main, &workers[i]) != 0) {
            pthread_attr_destroy(&attr);
            return -1;
        }
        workers[i].started = true;
    }
    pthread_attr_destroy(&attr);
    return 0;
}

static void stop_mail(PgwWorker *w, void *arg)
{
    event_base_loopexit(w->base, NULL);
}

void workers_stop(void)
{
    for (int i = 0; i < nworkers; i++)
        if (workers[i].started)
            worker_post(&workers[i], stop_mail, NULL);
    for (int i = 0; i < nworkers; i++)
        if (workers[i].started)
            pthread_join(workers[i].thread, NULL);
}

int workers_count(void)
{
    return nworkers;
}

PgwWorker *worker_at(int index)
{
    return &workers[index];
}

int workers_connections(void)
{
    int n = 0;
    for (int i = 0; i < nworkers; i++)
        n += __atomic_load_n(&workers[i].nconns, __ATOMIC_SEQ_CST);
    return n;
}

struct event_base *worker_base(PgwWorker *w)
{
    return w->base;
}

int worker_index(const PgwWorker *w)
{
    return w->index;
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

/* ---------- the registry ---------- */

uint32_t worker_register(PgwWorker *w, void *conn, uint64_t *serial)
{
    uint32_t slot;
    pthread_mutex_lock(&w->reg_mu);
    if (w->nfree) {
        slot = w->free_slots[--w->nfree];
    } else {
        if (w->nslots > ID_SLOT_MASK) {
            log_error("too many clients on worker %d", w->index);
            abort();
        }
        slot = w->nslots++;
        w->slots = pgw_realloc(w->slots, w->nslots * sizeof *w->slots);
        w->free_slots = pgw_realloc(w->free_slots, w->nslots * sizeof *w->free_slots);
    }
    Slot *s = &w->slots[slot];
    memset(s, 0, sizeof *s);
    s->conn = conn;
    s->serial = *serial = ++w->next_serial;
    __atomic_add_fetch(&w->nconns, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&w->reg_mu);
    /* id: worker in the high bits, slot below; never 0, always positive. */
    return ((uint32_t)(w->index + 1) << ID_SLOT_BITS) | slot;
}

void worker_unregister(PgwWorker *w, uint32_t id)
{
    uint32_t slot = id & ID_SLOT_MASK;
    pthread_mutex_lock(&w->reg_mu);
    if (slot < w->nslots && w->slots[slot].conn) {
        memset(&w->slots[slot], 0, sizeof w->slots[slot]);
        w->free_slots[w->nfree++] = slot;
        __atomic_sub_fetch(&w->nconns, 1, __ATOMIC_SEQ_CST);
    }
    pthread_mutex_unlock(&w->reg_mu);
}

PgwWorker *worker_for_id(uint32_t id)
{
    int index = (int)(id >> ID_SLOT_BITS) - 1;
    if (index < 0 || index >= nworkers)
        return NULL;
    return &workers[index];
}

static Slot *slot_of(PgwWorker *w, uint32_t id)
{
    if (worker_for_id(id) != w)
        return NULL;
    uint32_t slot = id & ID_SLOT_MASK;
    if (slot >= w->nslots || !w->slots[slot].conn)
        return NULL;
    return &w->slots[slot];
}

void *worker_find(PgwWorker *w, uint32_t id, uint64_t serial)
{
    Slot *s = slot_of(w, id);
    if (!s || (serial && s->serial != serial))
        return NULL;
    return s->conn;
}

void worker_foreach(PgwWorker *w, void (*fn)(void *conn, void *arg), void *arg)
{
    /* fn may close (and unregister) the connection it is given, which only
     * frees its slot: the array itself never shrinks. */
    for (uint32_t i = 0; i < w->nslots; i++)
        if (w->slots[i].conn)
            fn(w->slots[i].conn, arg);
}

/* ---------- published views ---------- */

void worker_publish_names(PgwWorker *w, uint32_t id, const char *user, const char *database,
                          const char *addr, bool tls)
{
    pthread_mutex_lock(&w->reg_mu);
    Slot *s = slot_of(w, id);
    if (s) {
        s->user = user;
        s->database = database;
        s->addr = addr;
        s->tls = tls;
    }
    pthread_mutex_unlock(&w->reg_mu);
}

void worker_publish_state(PgwWorker *w, uint32_t id, PgwConnState state)
{
    /* The owner is the only writer and the array moves only on its own
     * thread, so finding the slot needs no lock. */
    Slot *s = slot_of(w, id);
    if (s)
        __atomic_store_n(&s->state, (uint8_t)state, __ATOMIC_RELAXED);
}

void worker_publish_backend(PgwWorker *w, uint32_t id, int backend_pid)
{
    Slot *s = slot_of(w, id);
    if (s)
        __atomic_store_n(&s->backend_pid, backend_pid, __ATOMIC_RELAXED);
}

void worker_publish_prepared(PgwWorker *w, uint32_t id, uint32_t n)
{
    Slot *s = slot_of(w, id);
    if (s)
        __atomic_store_n(&s->prepared, (uint16_t)(n > 65535 ? 65535 : n), __ATOMIC_RELAXED);
}

static void copy_name(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

void workers_foreach_view(void (*fn)(const PgwConnView *v, void *arg), void *arg)
{
    for (int i = 0; i < nworkers; i++) {
        PgwWorker *w = &workers[i];
        pthread_mutex_lock(&w->reg_mu);
        size_t n = 0;
        PgwConnView *views = pgw_malloc((w->nslots ? w->nslots : 1) * sizeof *views);
        for (uint32_t k = 0; k < w->nslots; k++) {
            const Slot *s = &w->slots[k];
            if (!s->conn)
                continue;
            PgwConnView *v = &views[n++];
            v->id = ((uint32_t)(w->index + 1) << ID_SLOT_BITS) | k;
            copy_name(v->user, sizeof v->user, s->user);
            copy_name(v->database, sizeof v->database, s->database);
            copy_name(v->addr, sizeof v->addr, s->addr);
            v->tls = s->tls;
            v->state = (PgwConnState)__atomic_load_n(&s->state, __ATOMIC_RELAXED);
            v->backend_pid = __atomic_load_n(&s->backend_pid, __ATOMIC_RELAXED);
            v->prepared = __atomic_load_n(&s->prepared, __ATOMIC_RELAXED);
        }
        pthread_mutex_unlock(&w->reg_mu);
        for (size_t k = 0; k < n; k++)
            fn(&views[k], arg);
        free(views);
    }
}
