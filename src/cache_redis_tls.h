/*
 * cache_redis_tls.h — rediss:// for a hiredis without TLS.
 *
 * Debian 12's hiredis 0.14 has no SSL support, and the cache must not block
 * an event loop or give up TLS. So each rediss:// connection is a tunnel on
 * the worker's own event base: libevent's bufferevent_openssl speaks TLS to
 * Redis (peer verified against the CA, name checked), and hiredis speaks
 * plain RESP to the other end of a unix socket that exists only for the
 * instant of the connect — created in a directory only pgwarden's user can
 * enter, accepted once, and unlinked before any byte flows. The tunnel
 * relays bytes both ways and nothing else: it never parses RESP.
 */
#ifndef PGW_CACHE_REDIS_TLS_H
#define PGW_CACHE_REDIS_TLS_H

#include "pgw.h"

#include <event2/event.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

/* A client context: peer verification against ca_file (NULL: the system's
 * CAs), with a client certificate when cert_file/key_file are given. */
SSL_CTX *cache_redis_tls_ctx(const char *ca_file, const char *cert_file, const char *key_file,
                             char *err, size_t errlen);

typedef struct PgwRedisTunnel PgwRedisTunnel;

/* Start TLS to addr (host: the name to verify and send as SNI) and open the
 * private socket in dir; *path (pathlen >= 108) is where hiredis must
 * connect before cache_redis_tunnel_accept. on_close(arg, why) reports the
 * first failure of either side (a TLS handshake refused, Redis gone); the
 * tunnel then closes both, so hiredis sees its connection end. */
PgwRedisTunnel *cache_redis_tunnel_open(struct event_base *base, SSL_CTX *ctx,
                                        const struct sockaddr *addr, socklen_t addrlen,
                                        const char *host, const char *dir,
                                        void (*on_close)(void *arg, const char *why), void *arg,
                                        char *path, size_t pathlen, char *err, size_t errlen);
/* Take hiredis' connection and remove the socket from the file system. */
int cache_redis_tunnel_accept(PgwRedisTunnel *t, char *err, size_t errlen) PGW_WUR;
void cache_redis_tunnel_free(PgwRedisTunnel *t);

#endif
