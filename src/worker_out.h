/*
 * worker_out.h — what a connection writes goes out at the end of the event
 * loop turn that wrote it, in one writev, with no epoll_ctl in the common
 * case. Part of module worker (the event loops); see worker_out.c.
 */
#ifndef PGW_WORKER_OUT_H
#define PGW_WORKER_OUT_H

#include "pgw.h"

struct bufferevent;

typedef struct PgwOut PgwOut;

/* Take over writing bev's output: bev must be a plain socket bufferevent
 * (not TLS: its bytes are not the socket's) on the calling thread's event
 * base. Its EV_WRITE is disabled here and enabled only while the kernel
 * cannot take everything; its write callback and watermarks work as
 * before. Free with worker_out_free before bufferevent_free. */
PgwOut *worker_out_new(struct bufferevent *bev);
void worker_out_free(PgwOut *o);

#endif
