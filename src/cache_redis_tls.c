/*
 * cache_redis_tls.c — the local TLS tunnel for rediss://; see
 * cache_redis_tls.h.
 *
 * Why a unix socket and not a socketpair: hiredis 0.14's asynchronous API
 * can only connect by itself (host/port or a path); it cannot adopt a file
 * descriptor. The socket lives in a 0700 directory and is unlinked as soon
 * as the one connection is accepted — a connect to a listening unix socket
 * completes at once, so accept() on it does not wait.
 *
 * Buffering: bytes are moved between the two bufferevents as they arrive;
 * what either side holds is bounded by what hiredis has asked for (one
 * reply at most max_entry plus a little) since the cache sends nothing
 * unsolicited.
 */
#define _GNU_SOURCE /* accept4 */
#include "cache_redis_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"

struct PgwRedisTunnel {
    int listen_fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct bufferevent *plain, *tls;
    void (*on_close)(void *arg, const char *why);
    void *arg;
    bool closed;
};

SSL_CTX *cache_redis_tls_ctx(const char *ca_file, const char *cert_file, const char *key_file,
                             char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = ca_file && *ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                                 : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        snprintf(err, errlen, "cannot read the Redis CA file %s", ca_file ? ca_file : "(system)");
        goto fail;
    }
    if (cert_file && *cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, key_file && *key_file ? key_file : cert_file,
                                        SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(err, errlen, "cannot use the Redis client certificate %s", cert_file);
            goto fail;
        }
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static void tunnel_close(PgwRedisTunnel *t, const char *why)
{
    if (t->closed)
        return;
    t->closed = true;
    /* Closing the plain side is what tells hiredis the connection is gone. */
    if (t->plain)
        bufferevent_free(t->plain);
    if (t->tls)
        bufferevent_free(t->tls);
    t->plain = t->tls = NULL;
    if (t->on_close)
        t->on_close(t->arg, why);
}

static void relay(struct bufferevent *from, void *arg)
{
    PgwRedisTunnel *t = arg;
    struct bufferevent *to = from == t->plain ? t->tls : t->plain;
    if (to == NULL)
        return; /* hiredis has not connected yet: keep it until accept */
    evbuffer_add_buffer(bufferevent_get_output(to), bufferevent_get_input(from));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    PgwRedisTunnel *t = arg;
    if (what & BEV_EVENT_CONNECTED) {
        /* The handshake is done: what hiredis wrote meanwhile goes now. */
        if (bev == t->tls && t->plain)
            relay(t->plain, t);
        return;
    }
    char why[256];
    if (bev == t->tls) {
        unsigned long e = bufferevent_get_openssl_error(bev);
        if (e != 0) {
            char s[200];
            ERR_error_string_n(e, s, sizeof s);
            snprintf(why, sizeof why, "TLS: %s", s);
        } else if (what & BEV_EVENT_ERROR) {
            snprintf(why, sizeof why, "TLS connection failed: %s",
                     evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        } else {
            snprintf(why, sizeof why, "Redis closed the TLS connection");
        }
    } else {
        snprintf(why, sizeof why, "the connection ended");
    }
    tunnel_close(t, why);
}

PgwRedisTunnel *cache_redis_tunnel_open(struct event_base *base, SSL_CTX *ctx,
                                        const struct sockaddr *addr, socklen_t addrlen,
                                        const char *host, const char *dir,
                                        void (*on_close)(void *arg, const char *why), void *arg,
                                        char *path, size_t pathlen, char *err, size_t errlen)
{
    static unsigned serial;
    PgwRedisTunnel *t = pgw_calloc(1, sizeof(*t));
    SSL *ssl = NULL;
    t->listen_fd = -1;
    t->on_close = on_close;
    t->arg = arg;
    int n = snprintf(t->path, sizeof t->path, "%s/t%u.sock", dir,
                     __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED));
    if (n < 0 || (size_t)n >= sizeof t->path || (size_t)n >= pathlen) {
        snprintf(err, errlen, "the tunnel's socket path is too long");
        goto fail;
    }
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, t->path, (size_t)n + 1);
    t->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t->listen_fd < 0 || bind(t->listen_fd, (struct sockaddr *)&sun, sizeof sun) < 0 ||
        listen(t->listen_fd, 1) < 0) {
        snprintf(err, errlen, "cannot open the TLS tunnel's socket: %s", strerror(errno));
        goto fail;
    }
    ssl = SSL_new(ctx);
    if (ssl == NULL) {
        snprintf(err, errlen, "cannot create a TLS session");
        goto fail;
    }
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1
              : X509_VERIFY_PARAM_set1_host(param, host, 0) != 1) {
        snprintf(err, errlen, "cannot check the Redis server's name %s", host);
        goto fail;
    }
    if (!is_ip)
        SSL_set_tlsext_host_name(ssl, host);
    t->tls = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    ssl = NULL; /* the bufferevent owns it */
    if (t->tls == NULL) {
        snprintf(err, errlen, "cannot create the TLS connection");
        goto fail;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(t->tls, 1);
    bufferevent_setcb(t->tls, relay, NULL, on_event, t);
    bufferevent_enable(t->tls, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(t->tls, addr, (int)addrlen) < 0) {
        snprintf(err, errlen, "cannot connect to Redis: %s", strerror(errno));
        goto fail;
    }
    memcpy(path, t->path, (size_t)n + 1);
    return t;
fail:
    if (ssl)
        SSL_free(ssl);
    cache_redis_tunnel_free(t);
    return NULL;
}

int cache_redis_tunnel_accept(PgwRedisTunnel *t, char *err, size_t errlen)
{
    int fd = accept4(t->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    int saved = errno;
    close(t->listen_fd);
    t->listen_fd = -1;
    unlink(t->path);
    if (fd < 0) {
        snprintf(err, errlen, "the TLS tunnel was not connected: %s", strerror(saved));
        return -1;
    }
    if (t->closed) {
        close(fd);
        snprintf(err, errlen, "the TLS connection to Redis failed");
        return -1;
    }
    t->plain = bufferevent_socket_new(bufferevent_get_base(t->tls), fd, BEV_OPT_CLOSE_ON_FREE);
    if (t->plain == NULL) {
        close(fd);
        snprintf(err, errlen, "cannot relay the TLS tunnel");
        return -1;
    }
    bufferevent_setcb(t->plain, relay, NULL, on_event, t);
    bufferevent_enable(t->plain, EV_READ | EV_WRITE);
    relay(t->tls, t); /* anything Redis said before hiredis was there */
    return 0;
}

void cache_redis_tunnel_free(PgwRedisTunnel *t)
{
    if (t == NULL)
        return;
    t->on_close = NULL;
    tunnel_close(t, NULL);
    if (t->listen_fd >= 0) {
        close(t->listen_fd);
        unlink(t->path);
    }
    free(t);
}
