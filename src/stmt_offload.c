/*
 * stmt_offload.c — statements too long to decide on a worker thread are
 * decided on a policy thread; see stmt_int.h.
 *
 * Why: parsing, walking and rewriting are linear in the statement, but a
 * worker thread runs an event loop shared by many clients, and libpg_query
 * recurses as deep as the statement nests. Statements up to
 * PGW_POLICY_INLINE_MAX bytes are decided inline (a fraction of a
 * millisecond, within the workers' PGW_POLICY_INLINE_STACK); longer ones
 * go to a small pool of threads with PGW_POLICY_STACK_SIZE bytes of stack
 * (policy.h), so one huge or deep statement never holds up, or overflows,
 * the worker of other clients.
 *
 * A task is created on the client's event loop together with the event
 * that brings its answer back there (event_active is safe from any thread:
 * the workers' bases are created with libevent's pthread locking). The
 * policy thread only reads the task's own copies and the snapshot and
 * schema it was given; everything else — the answer, abandoning, freeing —
 * happens on the client's loop. The pool starts with the first long
 * statement and lives as long as the process.
 */
#include "stmt_int.h"

#include "buf.h"
#include "log.h"
#include "snapshot.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POLICY_THREADS_MIN 2
#define POLICY_THREADS_MAX 4

struct PgwPolicyTask {
    char *sql;
    PgwPolicyCtx ctx; /* param_types point to types */
    uint32_t *types;
    PgwSnapshot *snap;
    int rc;
    PgwPolicyResult pr;
    bool want_verdict;
    bool has_verdict;
    PgwCacheVerdict verdict;
    struct event *ev;
    PgwPolicyTaskDone done;
    void *arg;
    bool queued; /* under the pool's mutex */
    bool abandoned; /* on the task's loop */
    void (*release)(void *ref); /* what an abandoned task drops when done */
    void *release_ref;
    PgwPolicyTask *next;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    PgwPolicyTask *head, *tail;
    int nthreads;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0};

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void *policy_main(void *arg)
{
    for (;;) {
        pthread_mutex_lock(&pool.mu);
        while (!pool.head)
            pthread_cond_wait(&pool.cv, &pool.mu);
        PgwPolicyTask *t = pool.head;
        pool.head = t->next;
        if (!pool.head)
            pool.tail = NULL;
        t->queued = false;
        pthread_mutex_unlock(&pool.mu);
        memset(&t->pr, 0, sizeof t->pr);
        t->rc = policy_rewrite(&t->ctx, t->sql, &t->pr);
        if (t->want_verdict && t->rc == 0)
            t->has_verdict = stmt_cache_verdict(&t->ctx, &t->pr, NULL, &t->verdict);
        /* Last touch of t on this thread: the loop may free it at once. */
        event_active(t->ev, EV_TIMEOUT, 0);
    }
    return NULL;
}

static void pool_start(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int n = ncpu < POLICY_THREADS_MIN   ? POLICY_THREADS_MIN
            : ncpu > POLICY_THREADS_MAX ? POLICY_THREADS_MAX
                                        : (int)ncpu;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_attr_setstacksize(&attr, PGW_POLICY_STACK_SIZE) != 0)
        log_warning("policy threads: cannot set a %u-byte stack", PGW_POLICY_STACK_SIZE);
    for (int i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, &attr, policy_main, NULL) != 0) {
            log_warning("policy threads: could start only %d of %d", i, n);
            break;
        }
        pool.nthreads++;
    }
    pthread_attr_destroy(&attr);
}

static void task_free(PgwPolicyTask *t)
{
    if (t->release)
        t->release(t->release_ref);
    if (t->ev)
        event_free(t->ev);
    snapshot_release(t->snap);
    free(t->sql);
    free(t->types);
    free(t);
}

/* Back on the client's loop. */
static void task_done_cb(evutil_socket_t fd, short what, void *arg)
{
    PgwPolicyTask *t = arg;
    if (t->abandoned) {
        policy_result_free(&t->pr);
        if (t->has_verdict)
            cache_verdict_free(&t->verdict);
        task_free(t);
        return;
    }
    PgwPolicyTaskDone done = t->done;
    void *done_arg = t->arg;
    int rc = t->rc;
    PgwPolicyResult pr = t->pr;
    bool hv = t->has_verdict;
    PgwCacheVerdict v = t->verdict;
    task_free(t);
    done(done_arg, rc, &pr, hv ? &v : NULL);
    if (hv)
        cache_verdict_free(&v); /* what the callee did not take */
}

PgwPolicyTask *stmt_policy_offload(struct event_base *base, PgwSnapshot *snap,
                                   const PgwPolicyCtx *ctx, const char *sql, bool verdict,
                                   PgwPolicyTaskDone done, void *arg)
{
    pthread_once(&pool_once, pool_start);
    if (pool.nthreads == 0)
        return NULL;
    PgwPolicyTask *t = pgw_calloc(1, sizeof *t);
    t->sql = pgw_strdup(sql);
    t->ctx = *ctx;
    if (ctx->nparam_types) {
        t->types = pgw_malloc(ctx->nparam_types * sizeof *t->types);
        memcpy(t->types, ctx->param_types, ctx->nparam_types * sizeof *t->types);
    }
    t->ctx.param_types = t->types;
    t->snap = snapshot_retain(snap);
    t->done = done;
    t->arg = arg;
    t->want_verdict = verdict;
    t->ev = event_new(base, -1, 0, task_done_cb, t);
    pthread_mutex_lock(&pool.mu);
    t->queued = true;
    if (pool.tail)
        pool.tail->next = t;
    else
        pool.head = t;
    pool.tail = t;
    pthread_cond_signal(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    return t;
}

void stmt_policy_abandon(PgwPolicyTask *t, void (*release)(void *ref), void *ref)
{
    pthread_mutex_lock(&pool.mu);
    bool queued = t->queued;
    if (queued) {
        PgwPolicyTask **pp = &pool.head, *prev = NULL;
        while (*pp && *pp != t) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        if (*pp) {
            *pp = t->next;
            if (pool.tail == t)
                pool.tail = prev;
        }
    } else {
        /* Running (or done, its event pending): the loop frees it. */
        t->abandoned = true;
        t->release = release;
        t->release_ref = ref;
    }
    pthread_mutex_unlock(&pool.mu);
    if (queued) {
        if (release)
            release(ref);
        task_free(t);
    }
}
