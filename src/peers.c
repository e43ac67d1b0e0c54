/*
 * peers.c — cancel forwarding between instances; see peers.h.
 *
 * What it must never do: forward a request for this instance's own id (a
 * loop between two instances needs two of them configured with each
 * other's id), or block the caller.
 */
#include "peers.h"

#include "buf.h"
#include "config.h"
#include "log.h"

#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define CANCEL_REQUEST_CODE 80877102u
#define PEER_TIMEOUT_S 5

uint32_t peers_cancel_key(const PgwConfig *cfg, uint32_t random_bits)
{
    if (!cfg || cfg->peer_id <= 0)
        return random_bits;
    return (uint32_t)cfg->peer_id << 24 | (random_bits & 0xffffffu);
}

typedef struct Forward {
    char *host, *port;
    int id;
    uint8_t packet[16];
} Forward;

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void *forward_thread(void *arg)
{
    Forward *f = arg;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(f->host, f->port, &hints, &res);
    bool sent = false;
    for (struct addrinfo *ai = rc == 0 ? res : NULL; ai && !sent; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = {PEER_TIMEOUT_S, 0};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            write(fd, f->packet, sizeof f->packet) == (ssize_t)sizeof f->packet)
            sent = true;
        close(fd);
    }
    if (res)
        freeaddrinfo(res);
    if (!sent)
        log_warning("cannot forward a cancel request to peer %d (%s:%s)", f->id, f->host, f->port);
    free(f->host);
    free(f->port);
    free(f);
    return NULL;
}

bool peers_forward_cancel(const PgwConfig *cfg, uint32_t pid, uint32_t key)
{
    if (!cfg || cfg->peer_id <= 0)
        return false;
    int id = (int)(key >> 24);
    if (id == cfg->peer_id)
        return false;
    const PgwPeer *peer = config_peer(cfg, id);
    if (!peer) {
        log_info("cancel request for unknown peer %d dropped", id);
        return true;
    }
    Forward *f = pgw_calloc(1, sizeof *f);
    f->host = pgw_strdup(peer->host);
    f->port = pgw_strdup(peer->port);
    f->id = id;
    put32(f->packet, 16);
    put32(f->packet + 4, CANCEL_REQUEST_CODE);
    put32(f->packet + 8, pid);
    put32(f->packet + 12, key);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, forward_thread, f) != 0) {
        free(f->host);
        free(f->port);
        free(f);
    }
    pthread_attr_destroy(&attr);
    return true;
}
