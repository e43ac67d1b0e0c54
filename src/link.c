/*
 * link.c — the relay between a client and its backend session; see link.h.
 *
 * The link is the session's user (PgwBackendUser): the backend's relay
 * loop hands it every response to the client's statements, and the link
 * moves streamed bytes straight from the session's input buffer into the
 * client's output buffer (evbuffer_remove_buffer: chains move, nothing is
 * copied) unless a hook wants to see them.
 *
 * Protocol order. Every ReadyForQuery the session owes is queued in the
 * backend under a kind: the client's own (LINK_RFQ_RELAY), the client's
 * Sync after a refusal inside its pipeline (LINK_RFQ_RELAY_ERROR: the held
 * refusal goes first), and pgwarden's Sync that closes a client pipeline
 * before one of pgwarden's own queries or answers (LINK_RFQ_DROP_READY: its
 * ReadyForQuery is not the client's and is dropped). An answer of
 * pgwarden's own (link_answer) is written only once nothing is owed; if an
 * extended-protocol pipeline is open, a Sync with DROP_READY makes the
 * server answer everything before it first.
 *
 * The session goes back to the pool only idle, synced and not mid-message;
 * otherwise it is discarded (its state is unknown).
 */
#include "link.h"

#include "audit.h"
#include "backend.h"
#include "codec.h"
#include "log.h"
#include "pool.h"
#include "scrub.h"
#include "snapshot.h"
#include "stats.h"
#include "worker.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stop relaying when this much is waiting for the client; resume at a
 * quarter of it. Bounded memory per client whatever the result size. */
#define CLIENT_OUT_HIGH (256 * 1024)
#define CLIENT_OUT_LOW (64 * 1024)
/* Stop reading a client while this much waits for its server: a client
 * that pipelines without reading costs bounded memory. */
#define BACKEND_OUT_HIGH (1024 * 1024)

#define LINK_RFQ_RELAY RFQ_USER
#define LINK_RFQ_RELAY_ERROR (RFQ_USER + 1)
#define LINK_RFQ_DROP_READY (RFQ_USER + 2)

struct PgwLinkAudit {
    PgwAudit *audit;
    PgwLinkAudit *next;
};

static const PgwBackendUser link_user;
static const PgwPoolWaitOps link_wait_ops;

static void flush_answer(PgwLink *l);
static void statement_done(PgwLink *l, int64_t rows);

/* The client's worker: its registry id says which. */
static PgwWorker *link_worker(const PgwLink *l)
{
    return worker_for_id(l->conn_id);
}

void link_init(PgwLink *l, uint32_t conn_id, struct bufferevent *out, PgwPool *pool,
               const PgwLinkOps *ops, void *owner)
{
    memset(l, 0, sizeof *l);
    l->conn_id = conn_id;
    l->out = out;
    l->pool = pool;
    l->ops = ops;
    l->owner = owner;
    buf_init(&l->pending_out);
    buf_init(&l->deferred_err);
}

void link_set_hooks(PgwLink *l, const PgwLinkHooks *hooks, void *arg)
{
    l->hooks = hooks;
    l->hooks_arg = arg;
}

static void client_write(PgwLink *l, const void *data, size_t len)
{
    if (len)
        bufferevent_write(l->out, data, len);
}

/* ---------- the session: link, unlink, give back ---------- */

static void attach(PgwLink *l, PgwBackend *b)
{
    l->be = b;
    backend_set_user(b, &link_user, l);
    worker_publish_backend(link_worker(l), l->conn_id, b->pid);
    if (l->startup_sets) {
        backend_send_internal(b, l->startup_sets);
        free(l->startup_sets);
        l->startup_sets = NULL;
    }
}

/* Unlink the session: back to the pool when clean, else discarded. */
static void give_back(PgwLink *l)
{
    PgwBackend *b = l->be;
    l->be = NULL;
    worker_publish_backend(link_worker(l), l->conn_id, 0);
    backend_set_user(b, NULL, NULL);
    if (backend_reusable(b) && !l->partial)
        pool_release(l->pool, b);
    else
        pool_discard(l->pool, b);
}

void link_close(PgwLink *l)
{
    if (l->waiting && l->wait)
        pool_cancel_wait(l->wait);
    l->waiting = false;
    l->wait = NULL;
    if (l->wait_timer)
        event_free(l->wait_timer);
    l->wait_timer = NULL;
    if (l->be)
        give_back(l);
    while (l->audit_head) {
        PgwLinkAudit *a = l->audit_head;
        l->audit_head = a->next;
        audit_set_str(a->audit, "outcome", "client disconnected");
        audit_finish(a->audit, -1);
        free(a);
    }
    l->audit_tail = NULL;
    buf_free(&l->pending_out);
    buf_free(&l->deferred_err);
    free(l->startup_sets);
    l->startup_sets = NULL;
}

/* ---------- taking a session from the pool ---------- */

static void wait_over(PgwLink *l)
{
    l->waiting = false;
    l->wait = NULL;
    if (l->wait_timer)
        evtimer_del(l->wait_timer);
}

static void wait_ready(void *owner, PgwBackend *b)
{
    PgwLink *l = owner;
    wait_over(l);
    attach(l, b);
    l->ops->acquired(l->owner);
}

static void wait_failed(void *owner, const char *sqlstate, const char *message)
{
    PgwLink *l = owner;
    wait_over(l);
    l->ops->acquire_failed(l->owner, sqlstate, message);
}

static const PgwPoolWaitOps link_wait_ops = {
    .ready = wait_ready,
    .failed = wait_failed,
};

static void wait_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    PgwLink *l = arg;
    if (!l->waiting)
        return;
    pool_cancel_wait(l->wait);
    wait_over(l);
    PgwSnapshot *s = snapshot_acquire();
    char msg[256];
    snprintf(msg, sizeof msg,
             "pgwarden: no backend session for tenant \"%s\" became free within %d ms",
             pool_tenant(l->pool), s->cfg->pool_timeout_ms);
    snapshot_release(s);
    l->ops->acquire_failed(l->owner, SQLSTATE_TOO_MANY_CONNECTIONS, msg);
}

bool link_acquire(PgwLink *l)
{
    if (l->be)
        return true;
    if (l->waiting)
        return false;
    PgwBackend *b = NULL;
    l->waiting = true;
    if (pool_acquire(l->pool, link_worker(l), &link_wait_ops, l, &b, &l->wait) == PGW_ACQUIRE_NOW) {
        l->waiting = false;
        l->wait = NULL;
        attach(l, b);
        return true;
    }
    if (!l->waiting)
        return false; /* answered at once: acquire_failed has run */
    PgwSnapshot *s = snapshot_acquire();
    int ms = s->cfg->pool_timeout_ms;
    snapshot_release(s);
    if (!l->wait_timer)
        l->wait_timer = evtimer_new(worker_base(link_worker(l)), wait_timeout_cb, l);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(l->wait_timer, &tv);
    return false;
}

PgwPool *link_pool(const PgwLink *l)
{
    return l->pool;
}

bool link_waiting(const PgwLink *l)
{
    return l->waiting;
}

bool link_has_session(const PgwLink *l)
{
    return l->be != NULL;
}

bool link_busy(const PgwLink *l)
{
    return l->be && backend_busy(l->be);
}

bool link_synced(const PgwLink *l)
{
    return !l->be || !l->be->unsynced;
}

char link_tx_status(const PgwLink *l)
{
    return l->be ? l->be->tx_status : 'I';
}

bool link_answer_pending(const PgwLink *l)
{
    return l->answer_pending;
}

bool link_input_congested(PgwLink *l)
{
    if (!l->be || !l->be->bev || backend_output_pending(l->be) <= BACKEND_OUT_HIGH)
        return false;
    /* drained() resumes the client when the server has taken most of it. */
    l->input_paused = true;
    backend_watch_output(l->be, BACKEND_OUT_HIGH / 4);
    return true;
}

bool link_refresh_schema(PgwLink *l)
{
    if (!l->be || backend_busy(l->be) || l->be->unsynced || !pool_schema_needed(l->pool))
        return false;
    backend_refresh_schema(l->be);
    return true;
}

void link_set_startup_sets(PgwLink *l, char *sql)
{
    free(l->startup_sets);
    l->startup_sets = sql;
    if (sql && l->be) {
        backend_send_internal(l->be, sql);
        free(sql);
        l->startup_sets = NULL;
    }
}

/* ---------- the client's messages ---------- */

void link_forward(PgwLink *l, struct evbuffer *src, size_t n, char type, bool last)
{
    backend_forward(l->be, src, n);
    l->partial = !last;
    if (type != 'd' && type != 'c' && type != 'f')
        l->be->unsynced = true;
}

void link_send_statement(PgwLink *l, char type, const PgwBuf *msg, PgwAudit *audit)
{
    backend_write(l->be, msg->data, msg->len);
    if (type == 'Q')
        backend_expect_rfq(l->be, LINK_RFQ_RELAY);
    else
        l->be->unsynced = true;
    if (audit) {
        PgwLinkAudit *a = pgw_malloc(sizeof *a);
        a->audit = audit;
        a->next = NULL;
        if (l->audit_tail)
            l->audit_tail->next = a;
        else
            l->audit_head = a;
        l->audit_tail = a;
    }
}

void link_sync(PgwLink *l, struct evbuffer *src, size_t n, bool after_error)
{
    if (after_error && l->deferred_err.len && l->be && l->be->state == PGW_BE_READY) {
        /* The held refusal goes out just before this Sync's ReadyForQuery. */
        backend_forward(l->be, src, n);
        l->be->unsynced = false;
        backend_expect_rfq(l->be, LINK_RFQ_RELAY_ERROR);
        return;
    }
    if (!after_error && l->be && l->be->state == PGW_BE_READY && !l->be->unsynced) {
        /* Nothing of this pipeline reached the server (the result cache
         * answered it, or pgwarden's own Sync closed it already): its
         * ReadyForQuery is ours to give, in protocol order. */
        evbuffer_drain(src, n);
        PgwBuf none;
        buf_init(&none);
        link_answer(l, &none, true);
        if (l->audit_head && !backend_busy(l->be))
            statement_done(l, 0); /* the pipeline's Parses are done */
        return;
    }
    if (after_error || !l->be) {
        /* Nothing of this pipeline is at the server: answer it here. */
        evbuffer_drain(src, n);
        PgwBuf b;
        buf_init(&b);
        buf_append(&b, l->deferred_err.data, l->deferred_err.len);
        buf_reset(&l->deferred_err);
        codec_ready(&b, link_tx_status(l));
        client_write(l, b.data, b.len);
        buf_free(&b);
        return;
    }
    backend_forward(l->be, src, n);
    l->be->unsynced = false;
    backend_expect_rfq(l->be, LINK_RFQ_RELAY);
}

/* Close the client's open pipeline so the server answers it (the
 * ReadyForQuery this causes is not the client's). */
static void close_pipeline(PgwLink *l)
{
    PgwBuf m;
    buf_init(&m);
    codec_sync(&m);
    backend_write(l->be, m.data, m.len);
    buf_free(&m);
    backend_expect_rfq(l->be, LINK_RFQ_DROP_READY);
    l->be->unsynced = false;
}

void link_error(PgwLink *l, const PgwBuf *err, bool simple)
{
    if (!simple && l->be && l->be->state == PGW_BE_READY && l->be->unsynced) {
        /* Earlier messages of this pipeline are at the server: their
         * replies come first, then this error, then the ReadyForQuery of
         * the client's own Sync (LINK_RFQ_RELAY_ERROR). */
        buf_append(&l->deferred_err, err->data, err->len);
        return;
    }
    link_answer(l, err, simple);
}

/* ---------- pgwarden's own answers, in protocol order ---------- */

static void flush_answer(PgwLink *l)
{
    client_write(l, l->pending_out.data, l->pending_out.len);
    buf_reset(&l->pending_out);
    if (l->pending_out.cap > 65536)
        buf_free(&l->pending_out);
    if (l->answer_ready) {
        PgwBuf b;
        buf_init(&b);
        codec_ready(&b, link_tx_status(l));
        client_write(l, b.data, b.len);
        buf_free(&b);
    }
    l->answer_pending = false;
    l->answer_ready = false;
}

void link_answer(PgwLink *l, const PgwBuf *msgs, bool with_ready)
{
    buf_append(&l->pending_out, msgs->data, msgs->len);
    /* A ReadyForQuery already due stays due: what is added meanwhile (a
     * notice) goes before it. */
    l->answer_ready = l->answer_ready || with_ready;
    l->answer_pending = true;
    PgwBackend *b = l->be;
    if (!b || b->state != PGW_BE_READY || (!backend_busy(b) && !b->unsynced)) {
        flush_answer(l);
        return;
    }
    if (b->unsynced)
        close_pipeline(l);
    /* else idle() flushes it when the session has answered everything */
}

/* ---------- pgwarden's own queries ---------- */

void *link_query(PgwLink *l, const char *sql, PgwLinkQueryDone done, void *arg)
{
    if (!l->be || l->be->state != PGW_BE_READY)
        return NULL;
    if (l->be->unsynced)
        close_pipeline(l); /* the client's unsynced messages must not be read as our rows */
    return backend_internal_query(l->be, sql, done, arg);
}

void link_forget(PgwLink *l, void *query)
{
    if (l->be && query)
        backend_internal_forget(l->be, query);
}

void link_cancel(PgwLink *l)
{
    if (l->be && backend_busy(l->be))
        backend_cancel(l->be);
}

bool link_client_congested(PgwLink *l)
{
    if (evbuffer_get_length(bufferevent_get_output(l->out)) <= CLIENT_OUT_HIGH)
        return false;
    l->out_wait = true;
    bufferevent_setwatermark(l->out, EV_WRITE, CLIENT_OUT_LOW, 0);
    return true;
}

void link_client_drained(PgwLink *l)
{
    if (l->out_wait) {
        l->out_wait = false;
        if (!l->throttled)
            bufferevent_setwatermark(l->out, EV_WRITE, 0, 0);
        l->ops->resume(l->owner);
    }
    if (!l->throttled)
        return;
    l->throttled = false;
    bufferevent_setwatermark(l->out, EV_WRITE, 0, 0);
    if (l->be)
        backend_resume(l->be);
}

/* ---------- the relay (PgwBackendUser) ---------- */

static bool user_congested(void *arg)
{
    PgwLink *l = arg;
    if (evbuffer_get_length(bufferevent_get_output(l->out)) <= CLIENT_OUT_HIGH)
        return false;
    if (!l->throttled) {
        /* The client's write callback (link_client_drained) resumes the
         * relay once its output is down to the low-water mark. */
        l->throttled = true;
        bufferevent_setwatermark(l->out, EV_WRITE, CLIENT_OUT_LOW, 0);
    }
    return true;
}

static void relay_bytes(PgwLink *l, const uint8_t *data, size_t len)
{
    if (l->hooks && l->hooks->relayed)
        l->hooks->relayed(l->hooks_arg, data, len);
    client_write(l, data, len);
}

static void user_message(void *arg, char type, const uint8_t *msg, size_t len)
{
    PgwLink *l = arg;
    if (type == 'E' || type == 'N') {
        /* What of a server error may reach a client: see scrub.h. */
        PgwBuf clean;
        buf_init(&clean);
        if (scrub_backend_error(type, msg + 5, len - 5, &clean) == 0)
            relay_bytes(l, clean.data, clean.len);
        buf_free(&clean);
        return;
    }
    relay_bytes(l, msg, len);
}

static void user_stream(void *arg, char type, struct evbuffer *src, size_t n, bool first)
{
    PgwLink *l = arg;
    if (l->hooks && l->hooks->relayed) {
        /* The hook sees the bytes where they lie: no copy. */
        struct evbuffer_iovec small[8], *v = small;
        int nv = evbuffer_peek(src, (ev_ssize_t)n, NULL, NULL, 0);
        if (nv > (int)PGW_ARRAY_LEN(small))
            v = pgw_malloc((size_t)nv * sizeof *v);
        nv = evbuffer_peek(src, (ev_ssize_t)n, NULL, v, nv);
        size_t left = n;
        for (int i = 0; i < nv && left > 0; i++) {
            size_t k = v[i].iov_len < left ? v[i].iov_len : left;
            l->hooks->relayed(l->hooks_arg, v[i].iov_base, k);
            left -= k;
        }
        if (v != small)
            free(v);
    }
    evbuffer_remove_buffer(src, bufferevent_get_output(l->out), n);
}

/* A relayed ReadyForQuery: the statements forwarded before it are done. */
static void statement_done(PgwLink *l, int64_t rows)
{
    STATS_ADD(statements, 1);
    if (rows > 0)
        STATS_ADD(rows, (uint64_t)rows);
    while (l->audit_head) {
        PgwLinkAudit *a = l->audit_head;
        l->audit_head = a->next;
        audit_finish(a->audit, rows);
        free(a);
    }
    l->audit_tail = NULL;
}

static void user_ready(void *arg, uint8_t kind, char tx_status, int64_t rows, const uint8_t *msg,
                       size_t len)
{
    PgwLink *l = arg;
    if (kind == LINK_RFQ_DROP_READY)
        return; /* pgwarden's own Sync: not the client's ReadyForQuery */
    if (kind == LINK_RFQ_RELAY_ERROR) {
        /* The refusal held for this Sync, before its ReadyForQuery. */
        client_write(l, l->deferred_err.data, l->deferred_err.len);
        buf_reset(&l->deferred_err);
    }
    relay_bytes(l, msg, len);
    if (l->hooks && l->hooks->ready)
        l->hooks->ready(l->hooks_arg, tx_status);
    statement_done(l, rows);
}

static void user_idle(void *arg)
{
    PgwLink *l = arg;
    if (l->answer_pending)
        flush_answer(l);
    l->ops->idle(l->owner);
}

static void user_lost(void *arg, const char *reason)
{
    PgwLink *l = arg;
    /* reason may live in the backend, which is freed below */
    char why[256];
    snprintf(why, sizeof why, "%s", reason);
    PgwBackend *b = l->be;
    bool mid_message = backend_mid_message(b);
    uint32_t relays = backend_expected(b, LINK_RFQ_RELAY);
    bool unsynced = b->unsynced;
    l->be = NULL;
    l->partial = false;
    worker_publish_backend(link_worker(l), l->conn_id, 0);
    backend_set_user(b, NULL, NULL);
    pool_discard(l->pool, b);
    if (l->throttled) {
        l->throttled = false;
        bufferevent_setwatermark(l->out, EV_WRITE, 0, 0);
    }
    STATS_ADD(backend_lost, 1);
    if (mid_message) {
        /* Half a message already reached the client: its stream cannot be
         * repaired. */
        l->ops->lost(l->owner, why, true, false);
        return;
    }
    PgwBuf out;
    buf_init(&out);
    if (relays || unsynced)
        codec_error(
            &out, "ERROR", SQLSTATE_CONNECTION_FAILURE,
            "pgwarden: the server connection was lost during the statement", why,
            "The next statement runs on a new server session; session state (prepared statements, settings, open transaction) is gone.");
    for (uint32_t i = 0; i < relays; i++)
        codec_ready(&out, 'I');
    client_write(l, out.data, out.len);
    buf_free(&out);
    if (l->answer_pending)
        flush_answer(l);
    l->ops->lost(l->owner, why, false, unsynced);
}

static void user_drained(void *arg)
{
    PgwLink *l = arg;
    if (!l->input_paused)
        return;
    l->input_paused = false;
    l->ops->resume(l->owner);
}

static const PgwBackendUser link_user = {
    .congested = user_congested,
    .message = user_message,
    .stream = user_stream,
    .ready = user_ready,
    .idle = user_idle,
    .lost = user_lost,
    .drained = user_drained,
};
