/*
 * peers.h — the other pgwarden instances behind the same address ([peers]):
 * a CancelRequest carries the id of the instance that issued its key
 * (peer_id, the key's top byte), and one that lands elsewhere is forwarded
 * there.
 *
 * The forwarding connects, writes the 16-byte CancelRequest and closes, on
 * a short-lived detached thread (a cancel is rare, and the caller's event
 * loop must never wait for a peer's connect): the same shape as libpq's
 * own PQcancel, which pgwarden uses for backend cancels.
 */
#ifndef PGW_PEERS_H
#define PGW_PEERS_H

#include "pgw.h"

struct PgwConfig;

/* The key a client of this instance gets: random, with peer_id in its top
 * byte when one is configured (24 random bits remain, as PgBouncer's
 * peering trades some of its key for the id). */
uint32_t peers_cancel_key(const struct PgwConfig *cfg, uint32_t random_bits);
/* A CancelRequest for (pid, key) arrived: true when it belongs to another
 * instance of [peers] and was forwarded there (or dropped, for an unknown
 * one); false when it is this instance's to handle. */
bool peers_forward_cancel(const struct PgwConfig *cfg, uint32_t pid, uint32_t key);

#endif
