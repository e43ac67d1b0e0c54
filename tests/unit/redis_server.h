/*
 * redis_server.h — for the cache's unit tests: a real redis-server started
 * on a free port in a temporary directory (optionally with a password and a
 * TLS port whose certificate a CA of the test's own signed), killed with the
 * test process whatever happens, and event loops run until a condition or
 * a deadline (never a sleep as synchronisation).
 */
#ifndef PGW_TEST_REDIS_SERVER_H
#define PGW_TEST_REDIS_SERVER_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct Server {
    pid_t pid;
    int port;
    int tls_port;
    char dir[64];
    const char *password;
} Server;

extern Server server; /* the current test's */
extern char root_dir[32]; /* mkdtemp'd by main, removed by main */

int free_port(void);
int64_t now_ms(void);
/* A fresh server for one test: password "s3cr:et@" when asked for; with
 * tls, certificates in server.dir (ca.pem signed server.pem; other.pem is
 * a CA that did not). */
void server_setup(bool password, bool tls);
void server_teardown(void);
void server_start(Server *s);
void server_kill(Server *s);

/* Two event loops a test may use (NULL when unused). */
extern struct event_base *base_a, *base_b;
void deadline_cb(evutil_socket_t fd, short what, void *arg);
/* Run both bases until cond(arg) or ms pass; returns cond's last value. */
bool run_until(bool (*cond)(void *), void *arg, int ms);

#endif
