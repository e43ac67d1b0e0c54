/*
 * worker_in.c — reads for plain socket bufferevents; see worker_in.h.
 *
 * Why: libevent's socket bufferevent asks the kernel how much can be read
 * (ioctl FIONREAD) before every read, and then reads at most 4 kB. On the
 * relay's hot path that is one system call more per message each way (two
 * per statement, a tenth of what relaying it costs on a machine where a
 * system call takes a microsecond), and on a large result three system
 * calls (epoll_wait, ioctl, readv) per 4 kB. Here one read per readiness
 * takes what the kernel has, up to IN_MAX (less when the high-water mark is
 * nearer), and adds it to the bufferevent's own input; what is left waits
 * for the next turn, so other connections on the loop get theirs.
 *
 * What the owner sees does not change: its data callback runs after bytes
 * were added, its end callback on end of file or a read error, reading
 * stops while the input holds the high-water mark or more and goes on as
 * it drains below (an evbuffer callback watches the drain, as libevent's
 * watermark does), and enable/disable are bufferevent_enable/disable's.
 * The bufferevent still does everything else (its input buffer, its
 * writes, worker_out), and its own read event is never enabled, so the
 * socket is watched by exactly one read event: ours, an EV_PERSIST event
 * that stays in the epoll set while reading is enabled (no epoll_ctl per
 * message). Callbacks come last in the read callback: the owner may free
 * itself, and the reader, from them.
 */
#include "worker_in.h"

#include "buf.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <unistd.h>

#define IN_MAX (64 * 1024) /* what one turn reads at most */

struct PgwIn {
    struct evbuffer *buf; /* the bufferevent's input */
    struct event *ev;
    struct evbuffer_cb_entry *cb; /* the drain watch: only once a mark is set */
    size_t high; /* 0: none */
    bool enabled; /* the owner wants reads */
    bool armed; /* ev is added */
    PgwInData data;
    PgwInEnd end;
    void *arg;
};

/* Watch the socket exactly when reads are enabled and the input is below
 * the high-water mark. */
static void in_arm(PgwIn *in)
{
    bool want = in->enabled && (in->high == 0 || evbuffer_get_length(in->buf) < in->high);
    if (want && !in->armed)
        event_add(in->ev, NULL);
    else if (!want && in->armed)
        event_del(in->ev);
    in->armed = want;
}

/* The input drained: below the mark again, reading goes on. */
static void in_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    PgwIn *in = arg;
    if (info->n_deleted > 0 && in->enabled && !in->armed)
        in_arm(in);
    (void)buf;
}

/* One read of up to room (at most IN_MAX) bytes into the input: >0 bytes
 * read, 0 end of file, -1 error (errno; EAGAIN when nothing was there).
 * The read goes to a buffer of the thread's and is added from there: read
 * into the input itself it would need room reserved before the size is
 * known, a 64 kB chain allocated for a 60-byte message; added, the chain
 * is as big as what came (the copy is cheap beside the system call). */
static ssize_t in_read(PgwIn *in, evutil_socket_t fd, size_t room)
{
    static __thread uint8_t scratch[IN_MAX];
    if (room > sizeof scratch)
        room = sizeof scratch;
    ssize_t n;
    do
        n = read(fd, scratch, room);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n;
    /* A socket bufferevent keeps its input's end frozen (only its own read
     * may add there) and thaws it around that read: so do we. */
    evbuffer_unfreeze(in->buf, 0);
    int rc = evbuffer_add(in->buf, scratch, (size_t)n);
    evbuffer_freeze(in->buf, 0);
    if (rc != 0)
        abort(); /* out of memory: fatal everywhere in pgwarden */
    return n;
}

static void in_ready(evutil_socket_t fd, short what, void *arg)
{
    PgwIn *in = arg;
    size_t total = 0;
    bool added = false;
    short end = 0;
    while (total < IN_MAX) {
        size_t room = IN_MAX - total;
        if (in->high) {
            size_t have = evbuffer_get_length(in->buf);
            if (have >= in->high)
                break;
            if (in->high - have < room)
                room = in->high - have;
        }
        ssize_t n = in_read(in, fd, room);
        if (n > 0) {
            added = true;
            total += (size_t)n;
            if ((size_t)n < room)
                break; /* the kernel had no more */
            continue;
        }
        if (n == 0)
            end = BEV_EVENT_EOF | BEV_EVENT_READING;
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
            end = BEV_EVENT_ERROR | BEV_EVENT_READING;
        break;
    }
    int saved = errno; /* for the end callback */
    in_arm(in); /* off while at the mark */
    errno = saved;
    (void)what;
    /* Last: either callback may free the reader. Bytes read before an end
     * are handed over alone: the end stays pending on the socket (a read
     * after end of file or an error reads end of file again) and is
     * reported on the next turn, as libevent reports it. */
    if (added)
        in->data(in->arg);
    else if (end)
        in->end(in->arg, end);
}

PgwIn *worker_in_new(struct bufferevent *bev, PgwInData data, PgwInEnd end, void *arg)
{
    PgwIn *in = pgw_calloc(1, sizeof *in);
    in->buf = bufferevent_get_input(bev);
    in->data = data;
    in->end = end;
    in->arg = arg;
    in->ev = event_new(bufferevent_get_base(bev), bufferevent_getfd(bev), EV_READ | EV_PERSIST,
                       in_ready, in);
    if (!in->ev)
        abort(); /* out of memory: fatal everywhere in pgwarden */
    bufferevent_disable(bev, EV_READ);
    return in;
}

void worker_in_free(PgwIn *in)
{
    if (!in)
        return;
    if (in->cb)
        evbuffer_remove_cb_entry(in->buf, in->cb);
    event_free(in->ev); /* off the epoll set now, before the socket closes */
    free(in);
}

void worker_in_enable(PgwIn *in, bool on)
{
    in->enabled = on;
    in_arm(in);
}

void worker_in_set_high(PgwIn *in, size_t high)
{
    /* Without a mark nothing waits for a drain: a buffer with no callback
     * skips libevent's callback walk at every add and drain (backends
     * never set one). */
    if (high && !in->cb) {
        in->cb = evbuffer_add_cb(in->buf, in_drained, in);
        if (!in->cb)
            abort(); /* out of memory: fatal everywhere in pgwarden */
    }
    in->high = high;
    in_arm(in);
}

void worker_in_reads(PgwIn *in, struct bufferevent *bev, bool on)
{
    if (in)
        worker_in_enable(in, on);
    else if (on)
        bufferevent_enable(bev, EV_READ);
    else
        bufferevent_disable(bev, EV_READ);
}

bool worker_in_reading(const PgwIn *in, struct bufferevent *bev)
{
    if (in)
        return in->armed;
    return (bufferevent_get_enabled(bev) & EV_READ) != 0;
}
