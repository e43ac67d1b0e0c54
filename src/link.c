/*
 * link.c — the relay between a client and its backend session; see link.h.
 *
 * The link is the session's user (PgwBackendUser): the backend's relay
 * loop hands it every response to the client's statements, and the link
 * moves streamed bytes straight from the session's input buffer into the
 * client's output buffer (evbuffer_remove_buffer: chains move, nothing is
 * copied) unless a hook wants to see them.
 *
 * Protocol order. The backend keeps an exact model of what the server owes
 * (backend_expect: one entry per message it answers, PostgreSQL's skip to
 * Sync after an extended-protocol error included), each entry under a
 * kind: the client's own (LINK_RFQ_RELAY), responses pgwarden needs but
 * the client must not see (LINK_HIDDEN: a statement prepared again on the
 * session the client landed on; only an error from it is relayed), and
 * pgwarden's Sync that closes a client pipeline before one of pgwarden's
 * own queries or answers (LINK_RFQ_DROP_READY: its ReadyForQuery is not the
 * client's). What pgwarden answers inside a pipeline (a refusal, a
 * ParseComplete for a statement the session already has) is queued in the
 * same model and written when its turn comes (synth). An answer of
 * pgwarden's own to a whole statement (link_answer) is written only once
 * nothing is owed; if an extended-protocol pipeline is open, a Sync with
 * DROP_READY makes the server answer everything before it first.
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

#include "link_int.h"

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
}

void link_set_hooks(PgwLink *l, const PgwLinkHooks *hooks, void *arg)
{
    l->hooks = hooks;
    l->hooks_arg = arg;
}

bool link_parkable(const PgwLink *l)
{
    /* Nothing here may be waiting for the client's bufferevent: no session
     * (whose relay writes to it, asynchronous messages included), no wait
     * for one, no answer or refusal queued, no flow control armed on it
     * (its watermarks go with it), no audit record open. */
    return !l->be && !l->waiting && !l->wait && !l->answer_pending && !l->throttled &&
           !l->input_paused && !l->partial && !l->answers_paused && !l->state_query &&
           !l->errs_head && l->pending_out.len == 0 && !l->audit_head;
}

void link_park(PgwLink *l)
{
    /* What an idle link keeps only to reuse: the wait timer (no wait: at
     * most armed for one answered already) and the capacity of the answer
     * buffer (empty). */
    if (l->wait_timer) {
        event_free(l->wait_timer);
        l->wait_timer = NULL;
    }
    buf_free(&l->pending_out);
    l->out = NULL;
}

void link_unpark(PgwLink *l, struct bufferevent *out)
{
    l->out = out;
}

void link_client_write(PgwLink *l, const void *data, size_t len)
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
    if (l->txn) {
        link_txn_attached(l);
        return;
    }
    if (l->startup_sets) {
        backend_send_internal(b, l->startup_sets);
        free(l->startup_sets);
        l->startup_sets = NULL;
    }
}

/* Unlink the session: back to the pool when clean (without a reset when a
 * transaction-pooled client leaves nothing of its own on it), else
 * discarded. */
void link_give_back(PgwLink *l)
{
    PgwBackend *b = l->be;
    if (l->state_query) {
        backend_internal_forget(b, l->state_query);
        l->state_query = NULL;
    }
    l->be = NULL;
    worker_publish_backend(link_worker(l), l->conn_id, 0);
    backend_set_user(b, NULL, NULL);
    bool clean = backend_reusable(b) && !l->partial;
    if (clean && l->txn && !l->pinned && !l->dirty && b->tx_status == 'I')
        backend_hand_back(b);
    else if (clean)
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
        link_give_back(l);
    link_txn_free(l);
    while (l->audit_head) {
        PgwLinkAudit *a = l->audit_head;
        l->audit_head = a->next;
        audit_set_str(a->audit, "outcome", "client disconnected");
        audit_finish(a->audit, -1);
        free(a);
    }
    l->audit_tail = NULL;
    buf_free(&l->pending_out);
    free(l->startup_sets);
    l->startup_sets = NULL;
}

/* ---------- taking a session from the pool ---------- */

/* The wait's timer is not disarmed when an answer comes: left armed, it
 * serves the client's next wait (it fires no later than that one's
 * deadline, and its callback arms it again for what is left), which saves
 * two timer-heap operations per transaction in transaction mode. */
static void wait_over(PgwLink *l)
{
    l->waiting = false;
    l->wait = NULL;
}

static int pool_timeout_ms(void)
{
    PgwSnapshot *s = snapshot_acquire();
    int ms = s->cfg->pool_timeout_ms;
    snapshot_release(s);
    return ms;
}

static void arm_wait_timer(PgwLink *l, int64_t usec)
{
    struct timeval tv = {(time_t)(usec / 1000000), (suseconds_t)(usec % 1000000)};
    evtimer_add(l->wait_timer, &tv);
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
        return; /* armed for a wait answered since */
    int ms = pool_timeout_ms();
    int64_t left = (int64_t)ms * 1000 - pool_wait_age_usec(l->wait);
    if (left > 0) {
        arm_wait_timer(l, left); /* armed for an earlier wait: this one has time left */
        return;
    }
    pool_cancel_wait(l->wait);
    wait_over(l);
    char msg[256];
    snprintf(msg, sizeof msg,
             "pgwarden: no backend session for tenant \"%s\" became free within %d ms",
             pool_tenant(l->pool), ms);
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
    int ms = pool_timeout_ms();
    struct event_base *base = worker_base(link_worker(l));
    if (!l->wait_timer)
        l->wait_timer = evtimer_new(base, wait_timeout_cb, l);
    /* Still armed from an earlier wait: kept when it fires by this wait's
     * deadline (a reload may have shortened pool_timeout since). */
    struct timeval at, due;
    if (evtimer_pending(l->wait_timer, &at)) {
        event_base_gettimeofday_cached(base, &due);
        due.tv_sec += ms / 1000;
        due.tv_usec += (ms % 1000) * 1000;
        if (due.tv_usec >= 1000000) {
            due.tv_sec++;
            due.tv_usec -= 1000000;
        }
        if (!evutil_timercmp(&at, &due, >))
            return false;
    }
    arm_wait_timer(l, (int64_t)ms * 1000);
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

PgwLinkOwed link_owed(const PgwLink *l)
{
    const PgwBackend *b = l->be;
    if (!b || b->state != PGW_BE_READY)
        return PGW_LINK_OWES_NOTHING;
    if (b->skipping)
        return PGW_LINK_OWES_PIPELINE; /* the server ignores everything up to Sync */
    if (!backend_busy(b))
        return PGW_LINK_OWES_NOTHING;
    /* Only a ReadyForQuery of the client's own is announced (the ready
     * hook); pgwarden's own (its queries, the Sync closing a pipeline)
     * pass unseen, and a Parse owed behind one is not answered before the
     * client's Sync: waiting for them would wait for the client, who waits
     * for us. They put nothing in the relayed bytes, so with them only
     * Parses are owed as far as the client sees. */
    if (backend_expected(b, LINK_RFQ_RELAY) > 0)
        return PGW_LINK_OWES_READY;
    char only[] = {'P', BACKEND_SYNTH_PARSE, 'Q', 'S', 0};
    return backend_owes_only(b, only) ? PGW_LINK_OWES_PARSES : PGW_LINK_OWES_PIPELINE;
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
    if (l->txn) {
        link_txn_startup_sets(l, sql);
        return;
    }
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
    if (!l->partial)
        backend_expect(l->be, type, LINK_RFQ_RELAY); /* once per message, at its first bytes */
    backend_forward(l->be, src, n);
    l->partial = !last;
}

void link_send_statement(PgwLink *l, char type, const PgwBuf *msg, PgwAudit *audit)
{
    if (type == 'P' && l->txn) {
        if (link_txn_parse(l, msg) != 0) {
            audit_set_str(audit, "outcome", "refused by the link");
            audit_finish(audit, 0);
            return;
        }
    } else {
        backend_write(l->be, msg->data, msg->len);
        backend_expect(l->be, type, LINK_RFQ_RELAY);
        if (type == 'Q' && l->txn)
            link_txn_simple_query(l);
    }
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
    PgwBackend *b = l->be;
    bool at_server = b && b->state == PGW_BE_READY && (backend_busy(b) || b->unsynced);
    if (!after_error && b && b->state == PGW_BE_READY && !b->unsynced) {
        /* Nothing of this pipeline reached the server (the result cache
         * answered it, or pgwarden's own Sync closed it already): its
         * ReadyForQuery is ours to give, after what is still due. */
        evbuffer_drain(src, n);
        PgwBuf none;
        buf_init(&none);
        link_answer(l, &none, true);
        if (l->audit_head && !backend_busy(b))
            statement_done(l, 0); /* the pipeline's Parses are done */
        return;
    }
    if (!b || b->state != PGW_BE_READY || (after_error && !at_server)) {
        /* Nothing of this pipeline is at the server: answer it here, after
         * whatever pgwarden still holds for the client. */
        evbuffer_drain(src, n);
        PgwBuf none;
        buf_init(&none);
        link_answer(l, &none, true);
        return;
    }
    backend_forward(b, src, n);
    backend_expect(b, 'S', LINK_RFQ_RELAY);
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
    backend_expect(l->be, 'S', LINK_RFQ_DROP_READY);
}

void link_error(PgwLink *l, const PgwBuf *err, bool simple)
{
    PgwBackend *b = l->be;
    if (!simple && b && b->state == PGW_BE_READY && (backend_busy(b) || b->unsynced)) {
        /* Earlier messages of this pipeline are at the server: their
         * replies come first, then this error (synth), then the
         * ReadyForQuery of the client's own Sync. While the server skips
         * to Sync after an error of its own, the client gets only that
         * one, as from PostgreSQL. */
        if (b->skipping)
            return;
        PgwLinkErr *e = pgw_malloc(sizeof *e);
        buf_init(&e->msg);
        buf_append(&e->msg, err->data, err->len);
        e->next = NULL;
        if (l->errs_tail)
            l->errs_tail->next = e;
        else
            l->errs_head = e;
        l->errs_tail = e;
        backend_expect(b, BACKEND_SYNTH_ERROR, LINK_RFQ_RELAY);
        return;
    }
    link_answer(l, err, simple);
}

/* ---------- pgwarden's own answers, in protocol order ---------- */

static void flush_answer(PgwLink *l)
{
    link_client_write(l, l->pending_out.data, l->pending_out.len);
    buf_reset(&l->pending_out);
    if (l->pending_out.cap > 65536)
        buf_free(&l->pending_out);
    if (l->answer_ready) {
        PgwBuf b;
        buf_init(&b);
        codec_ready(&b, link_tx_status(l));
        link_client_write(l, b.data, b.len);
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

void link_client_drained(PgwLink *l)
{
    if (l->answers_paused) {
        l->answers_paused = false;
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

bool link_output_congested(PgwLink *l)
{
    if (evbuffer_get_length(bufferevent_get_output(l->out)) <= CLIENT_OUT_HIGH)
        return false;
    if (!l->answers_paused) {
        /* The client's write callback (link_client_drained) resumes its
         * input once the output is down to the low-water mark. */
        l->answers_paused = true;
        bufferevent_setwatermark(l->out, EV_WRITE, CLIENT_OUT_LOW, 0);
    }
    return true;
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
    link_client_write(l, data, len);
}

static void user_message(void *arg, uint8_t kind, char type, const uint8_t *msg, size_t len)
{
    PgwLink *l = arg;
    if (type == 'E' && l->txn)
        l->dirty = true; /* a Parse may have failed or been skipped: see what the server has */
    if (type == 'E' || type == 'N') {
        /* What of a server error may reach a client: see scrub.h. */
        PgwBuf clean;
        buf_init(&clean);
        if (scrub_backend_error(type, msg + 5, len - 5, &clean) == 0)
            relay_bytes(l, clean.data, clean.len);
        buf_free(&clean);
        return;
    }
    if (kind == LINK_HIDDEN)
        return;
    if (type == 'C' && l->txn)
        link_txn_command_done(l, (const char *)msg + 5);
    relay_bytes(l, msg, len);
}

static void user_stream(void *arg, uint8_t kind, char type, struct evbuffer *src, size_t n,
                        bool first)
{
    PgwLink *l = arg;
    if (kind == LINK_HIDDEN) {
        evbuffer_drain(src, n);
        return;
    }
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

/* A response pgwarden gives in the session's place, now that its turn has
 * come. */
static void user_synth(void *arg, char what, uint8_t kind)
{
    PgwLink *l = arg;
    PgwBuf m;
    buf_init(&m);
    if (what == BACKEND_SYNTH_ERROR) {
        PgwLinkErr *e = l->errs_head;
        if (!e)
            return;
        l->errs_head = e->next;
        if (!l->errs_head)
            l->errs_tail = NULL;
        relay_bytes(l, e->msg.data, e->msg.len);
        buf_free(&e->msg);
        free(e);
        return;
    }
    buf_append_byte(&m, (uint8_t)what); /* ParseComplete, CloseComplete: no body */
    buf_append_u32(&m, 4);
    relay_bytes(l, m.data, m.len);
    buf_free(&m);
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
    if (kind != LINK_RFQ_RELAY)
        return; /* pgwarden's own Sync: not the client's ReadyForQuery */
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
    bool unsynced = b->unsynced || b->skipping;
    bool in_tx = b->tx_status != 'I' || l->pinned;
    if (l->state_query) {
        backend_internal_forget(b, l->state_query);
        l->state_query = NULL;
    }
    l->be = NULL;
    l->partial = false;
    worker_publish_backend(link_worker(l), l->conn_id, 0);
    backend_set_user(b, NULL, NULL);
    pool_discard(l->pool, b);
    link_txn_lost(l);
    if (l->throttled) {
        l->throttled = false;
        bufferevent_setwatermark(l->out, EV_WRITE, 0, 0);
    }
    STATS_ADD(backend_lost, 1);
    if (mid_message) {
        /* Half a message already reached the client: its stream cannot be
         * repaired, and anything written now would be read as the rest of
         * that message. */
        l->ops->lost(l->owner, why, PGW_LOSS_STREAM, false);
        return;
    }
    if (in_tx) {
        /* The client's transaction (or the session state it pinned) is
         * gone; it must not go on as if it were not. */
        l->ops->lost(l->owner, why, PGW_LOSS_TRANSACTION, false);
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
    link_client_write(l, out.data, out.len);
    buf_free(&out);
    if (l->answer_pending)
        flush_answer(l);
    l->ops->lost(l->owner, why, PGW_LOSS_STATEMENT, unsynced);
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
    .synth = user_synth,
    .idle = user_idle,
    .lost = user_lost,
    .drained = user_drained,
};
