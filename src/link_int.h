/*
 * link_int.h — what the parts of the link module share: link.c (taking
 * and giving back sessions, the relay, protocol order) and link_txn.c
 * (transaction pooling: the client's session state carried across the
 * sessions it lands on). Nothing outside the link module includes it.
 */
#ifndef PGW_LINK_INT_H
#define PGW_LINK_INT_H

#include "backend.h"
#include "buf.h"

/* The public header is not included: the module's own .c files include both,
 * and a private header that includes its public one makes an include cycle. */
typedef struct PgwLink PgwLink;

/* Kinds of what the link queues on its session (backend_expect). */
#define LINK_RFQ_RELAY RFQ_USER /* the client's own: relayed */
#define LINK_RFQ_DROP_READY (RFQ_USER + 1) /* pgwarden's Sync closing a client pipeline */
#define LINK_HIDDEN (RFQ_USER + 2) /* pgwarden's, for the client: only an error is relayed */

/* A refusal waiting for its turn in the session's responses. */
struct PgwLinkErr {
    PgwBuf msg;
    struct PgwLinkErr *next;
};

void link_client_write(PgwLink *l, const void *data, size_t len);
void link_give_back(PgwLink *l);

/* link_txn.c */
void link_txn_attached(PgwLink *l); /* a session is linked: bring the client's settings */
void link_txn_startup_sets(PgwLink *l, char *sql); /* takes sql */
int link_txn_parse(PgwLink *l, const PgwBuf *msg); /* -1: refused (ops->refused ran) */
void link_txn_simple_query(PgwLink *l); /* a Query was sent: the unnamed statement is gone */
void link_txn_command_done(PgwLink *l, const char *tag);
void link_txn_lost(PgwLink *l); /* the session died */
void link_txn_free(PgwLink *l);

#endif
