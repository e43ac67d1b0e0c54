/*
 * worker_in.h — a plain socket read into its bufferevent's input with one
 * system call per read, in reads of up to 64 kB. Part of module worker (the
 * event loops); see worker_in.c.
 */
#ifndef PGW_WORKER_IN_H
#define PGW_WORKER_IN_H

#include "pgw.h"

struct bufferevent;

typedef struct PgwIn PgwIn;

/* Bytes were added to the input (bufferevent read callback's place). */
typedef void (*PgwInData)(void *arg);
/* The peer closed (BEV_EVENT_EOF) or reading failed (BEV_EVENT_ERROR, errno
 * set), each with BEV_EVENT_READING: the event callback's place. */
typedef void (*PgwInEnd)(void *arg, short what);

/* Take over reading bev's socket: bev must be a plain socket bufferevent
 * (not TLS: its bytes are not the socket's) on the calling thread's event
 * base, whose own EV_READ stays disabled. Reads start disabled. Either
 * callback may free what owns the reader (and the reader with it). Free
 * with worker_in_free before bufferevent_free. */
PgwIn *worker_in_new(struct bufferevent *bev, PgwInData data, PgwInEnd end, void *arg);
void worker_in_free(PgwIn *in);
/* Read the socket (true) or not (false); bufferevent_enable/disable's
 * EV_READ. */
void worker_in_enable(PgwIn *in, bool on);
/* Reads on or off for a connection that has a reader (in) or, on TLS, lets
 * libevent read (in NULL: bev's own EV_READ). */
void worker_in_reads(PgwIn *in, struct bufferevent *bev, bool on);
/* Is the socket watched for reads now (in NULL: bev's own EV_READ)? */
bool worker_in_reading(const PgwIn *in, struct bufferevent *bev);
/* Stop reading while the input holds high bytes or more, and go on when it
 * holds fewer; 0: no bound. bufferevent_setwatermark's EV_READ high mark. */
void worker_in_set_high(PgwIn *in, size_t high);

#endif
