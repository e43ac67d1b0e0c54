/*
 * redis_server.c — a redis-server of the test's own for the cache's unit
 * tests (see redis_server.h).
 */
#include "redis_server.h"

#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool server_answers(const Server *s)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
    bool ok = false;
    if (c != NULL && !c->err) {
        redisReply *r = s->password ? redisCommand(c, "AUTH %s", s->password) : NULL;
        freeReplyObject(r);
        r = redisCommand(c, "PING");
        ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
        freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok;
}

void server_start(Server *s)
{
    char port[16], tls_port[16], cert[128], key[128];
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(tls_port, sizeof tls_port, "%d", s->tls_port);
    snprintf(cert, sizeof cert, "%s/server.pem", s->dir);
    snprintf(key, sizeof key, "%s/server.key", s->dir);
    s->pid = fork();
    ck_assert_int_ge(s->pid, 0);
    if (s->pid == 0) {
        /* A failed assertion ends the test process without teardown: the
         * server must not outlive it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", 0);
        dup2(null, 1);
        dup2(null, 2);
        const char *argv[32];
        int n = 0;
        argv[n++] = "redis-server";
        argv[n++] = "--port";
        argv[n++] = port;
        argv[n++] = "--bind";
        argv[n++] = "127.0.0.1";
        argv[n++] = "--dir";
        argv[n++] = s->dir;
        argv[n++] = "--save";
        argv[n++] = "";
        argv[n++] = "--appendonly";
        argv[n++] = "no";
        if (s->password) {
            argv[n++] = "--requirepass";
            argv[n++] = s->password;
        }
        if (s->tls_port) {
            argv[n++] = "--tls-port";
            argv[n++] = tls_port;
            argv[n++] = "--tls-cert-file";
            argv[n++] = cert;
            argv[n++] = "--tls-key-file";
            argv[n++] = key;
            argv[n++] = "--tls-auth-clients";
            argv[n++] = "no";
        }
        argv[n] = NULL;
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    int64_t deadline = now_ms() + 10000;
    while (!server_answers(s)) {
        int status;
        ck_assert_msg(waitpid(s->pid, &status, WNOHANG) == 0, "redis-server exited at start");
        ck_assert_msg(now_ms() < deadline, "redis-server did not start");
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL); /* polling a condition, not synchronising */
    }
}

void server_kill(Server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

static void make_certs(const char *dir)
{
    char cmd[2048];
    /* a CA, a server certificate it signs for 127.0.0.1, and another CA */
    snprintf(cmd, sizeof cmd,
             "cd %s && "
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 "
             "-subj /CN=test-ca >/dev/null 2>&1 && "
             "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
             "-subj /CN=127.0.0.1 >/dev/null 2>&1 && "
             "printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf && "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out server.pem -days 1 -extfile ext.cnf >/dev/null 2>&1 && "
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 1 "
             "-subj /CN=other-ca >/dev/null 2>&1",
             dir);
    ck_assert_int_eq(system(cmd), 0);
}

Server server;
char root_dir[32] = "/tmp/pgw-test-redis.XXXXXX"; /* removed by main, whatever happens */

void server_setup(bool password, bool tls)
{
    static int serial;
    memset(&server, 0, sizeof server);
    snprintf(server.dir, sizeof server.dir, "%s/%d-%d", root_dir, (int)getpid(), ++serial);
    ck_assert_int_eq(mkdir(server.dir, 0700), 0);
    server.port = free_port();
    server.password = password ? "s3cr:et@" : NULL;
    if (tls) {
        make_certs(server.dir);
        server.tls_port = free_port();
    }
    server_start(&server);
}

void server_teardown(void)
{
    server_kill(&server);
}

/* ---- running event loops until something happens ---- */

struct event_base *base_a, *base_b;

void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    *(bool *)arg = true;
}

/* Run both bases until cond(arg) or ms pass; returns cond's last value. */
bool run_until(bool (*cond)(void *), void *arg, int ms)
{
    int64_t end = now_ms() + ms;
    while (!cond(arg)) {
        if (now_ms() > end)
            return false;
        struct event_base *bases[] = {base_a, base_b};
        for (int i = 0; i < 2; i++) {
            if (bases[i] == NULL)
                continue;
            bool fired = false;
            struct event *t = evtimer_new(bases[i], deadline_cb, &fired);
            event_add(t, &(struct timeval){0, 1000}); /* hand over to the other base soon */
            event_base_loop(bases[i], EVLOOP_ONCE);
            event_free(t);
        }
    }
    return true;
}
