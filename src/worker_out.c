/*
 * worker_out.c — end-of-turn writes for socket bufferevents; see
 * worker_out.h.
 *
 * Why: a bufferevent with EV_WRITE enabled arms its write event whenever
 * data is added to an empty output (epoll_ctl), waits for the loop to say
 * the socket is writable (another epoll_wait round), writes, and disarms
 * (epoll_ctl again): four system calls and a wake-up around every write,
 * where a relay of one statement needs one writev each way. Here EV_WRITE
 * stays disabled; adding to the output makes one event active (no system
 * call: it runs later in the same loop turn, after every callback that may
 * add more), which writes what is there at once. Only when the kernel does
 * not take it all (or the write fails) is EV_WRITE enabled, and libevent's
 * own write path takes over until the output is empty again, which also
 * reports a failed write through the event callback as before. After a
 * write of ours the write callback runs when the output is at or below its
 * low-water mark, as libevent runs it after a write of its own, so flow
 * control (watermarks) and "close once everything is written" still work.
 *
 * Order: both paths write from the head of the same buffer, on the
 * owner's thread only, so bytes leave in the order they were added.
 */
#include "worker_out.h"

#include "buf.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>

struct PgwOut {
    struct bufferevent *bev;
    struct event *ev;
    struct evbuffer_cb_entry *cb;
    bool active; /* ev is active: the turn's end writes (no event_active per add) */
};

static void out_flush(evutil_socket_t fd, short what, void *arg)
{
    PgwOut *o = arg;
    o->active = false;
    struct bufferevent *bev = o->bev;
    struct evbuffer *out = bufferevent_get_output(bev);
    if (evbuffer_get_length(out) == 0 || (bufferevent_get_enabled(bev) & EV_WRITE))
        return; /* nothing to write, or libevent's write event has it */
    /* A socket bufferevent keeps its output's front frozen so that only
     * its write path drains it; ours is one, as in libevent's own. */
    evbuffer_unfreeze(out, 1);
    int n = evbuffer_write(out, bufferevent_getfd(bev));
    evbuffer_freeze(out, 1);
    if (n < 0 || evbuffer_get_length(out) > 0) {
        bufferevent_enable(bev, EV_WRITE);
        return;
    }
    /* Last: the write callback may free the connection, and o with it. */
    bufferevent_trigger(bev, EV_WRITE, 0);
}

static void out_changed(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    PgwOut *o = arg;
    if (info->n_added > 0) {
        /* Once per turn: a relay adds to the output several times a
         * statement, and event_active takes the base's lock every time. */
        if (!o->active) {
            o->active = true;
            event_active(o->ev, EV_WRITE, 0);
        }
    } else if (info->n_deleted > 0 && evbuffer_get_length(buf) == 0 &&
               (bufferevent_get_enabled(o->bev) & EV_WRITE)) {
        /* libevent's write path emptied it: back to writing at the turn's
         * end (its write callback still runs, as it checks no flag). */
        bufferevent_disable(o->bev, EV_WRITE);
    }
}

PgwOut *worker_out_new(struct bufferevent *bev)
{
    PgwOut *o = pgw_calloc(1, sizeof *o);
    o->bev = bev;
    o->ev = event_new(bufferevent_get_base(bev), -1, 0, out_flush, o);
    struct evbuffer *out = bufferevent_get_output(bev);
    o->cb = evbuffer_add_cb(out, out_changed, o);
    bufferevent_disable(bev, EV_WRITE);
    if (evbuffer_get_length(out) > 0) {
        o->active = true;
        event_active(o->ev, EV_WRITE, 0);
    }
    return o;
}

void worker_out_free(PgwOut *o)
{
    if (!o)
        return;
    evbuffer_remove_cb_entry(bufferevent_get_output(o->bev), o->cb);
    event_free(o->ev);
    free(o);
}
