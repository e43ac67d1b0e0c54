/*
 * metrics.h — the HTTP endpoint on metrics_port: /metrics in Prometheus'
 * text format and /healthz. Served by evhttp on the main thread (the
 * program starts it as a server service), reading only what the lower
 * layers publish: atomic counters and the pools' views; it never touches
 * a client, a session or a pool.
 */
#ifndef PGW_METRICS_H
#define PGW_METRICS_H

#include "pgw.h"

#include <event2/event.h>

/* Listen on addr:port; 0 with port 0 (off). */
int metrics_start(struct event_base *base, const char *addr, int port, char *err,
                  size_t errlen) PGW_WUR;
void metrics_stop(void);

#endif
