/*
 * client_cache.h — the result cache in a client's protocol (part of the
 * client module; only client.c includes it). client.c calls these at a few
 * points of its ready-state loop; everything the cache needs to know about
 * the session (its settings, its prepared statements, where its answers
 * begin and end in the relayed stream) is followed here. See
 * client_cache.c for the design.
 */
#ifndef PGW_CLIENT_CACHE_H
#define PGW_CLIENT_CACHE_H

#include "client_int.h"

struct PgwRedis;
struct evbuffer;

/* Whether the cache is on for this client (made on first use); the
 * statement pipeline's request carries what it needs. */
bool client_cache_on(PgwClient *c);
struct PgwRedis *client_cache_redis(PgwClient *c);

/* A Query whole in c->cur is about to go to the pipeline: true when the
 * cache took it (answered it from the raw text, or a lookup is under way:
 * client_cache_busy). */
bool client_cache_query(PgwClient *c);

/* A Parse whole in c->cur is about to go to the pipeline: true when the
 * session's settings are read first (client_cache_busy). */
bool client_cache_parse(PgwClient *c);

typedef enum {
    CLIENT_CACHE_SEND, /* forward it (the cache may capture its answer) */
    CLIENT_CACHE_ANSWERED, /* answered from the cache; the result and its audit record are done */
    CLIENT_CACHE_WAIT, /* a lookup is under way (client_cache_busy) */
} ClientCacheApply;
/* The pipeline allowed c->cur (a Query or a Parse) as r: what now. */
ClientCacheApply client_cache_apply(PgwClient *c, PgwStmtResult *r);
/* r was just sent to the session as c->cur_type. */
void client_cache_sent(PgwClient *c, const PgwStmtResult *r);

/* The message at the front of in (type, whole bytes), before client.c
 * handles it: true when the cache took it (*go_on: whether processing goes
 * on); false: handle it as always (the cache has noted what it does). */
bool client_cache_message(PgwClient *c, struct evbuffer *in, char type, size_t whole, bool *go_on);

/* A decision of the cache's is under way (a lookup, a wait for an identical
 * statement, reading the session's settings, waiting for the session to
 * answer what came before): nothing else is read meanwhile. */
bool client_cache_busy(const PgwClient *c);
/* Go on with it; returns whether processing goes on. */
bool client_cache_step(PgwClient *c);
/* A CancelRequest: true when it stopped a decision of the cache's; *type
 * is the message to refuse ('Q', or 'E' for an extended-protocol one). */
bool client_cache_cancel(PgwClient *c, char *type);
/* The session was lost (its prepared statements and settings with it);
 * skip_to_sync: the client's pipeline ends in the error. */
void client_cache_lost(PgwClient *c, bool skip_to_sync);
/* Nothing of the cache's is held or running (client_idle_timeout). */
bool client_cache_idle(const PgwClient *c);
void client_cache_free(PgwClient *c);

#endif
