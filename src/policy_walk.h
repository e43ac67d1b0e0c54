/*
 * policy_walk.h — generic traversal and comparison of libpg_query's protobuf
 * parse trees, driven by the protobuf-c message descriptors.
 *
 * The policy only cares about a few dozen of PostgreSQL's ~250 node types;
 * everything else must still be visited (a dangerous function can hide in
 * any expression). Walking by descriptor means a node type the policy does
 * not name is still traversed, never skipped: new grammar in a libpg_query
 * upgrade cannot open a hole. Nothing here allocates or knows the policy.
 */
#ifndef PGW_POLICY_WALK_H
#define PGW_POLICY_WALK_H

#include <pg_query/pg_query.pb-c.h>

#include "pgw.h"

/* Called for each PgQuery__Node slot found below a message; the visitor may
 * replace *slot. Return 0 to continue, -1 to stop the walk (the walk then
 * returns -1). Descending into the node is the visitor's job (it calls
 * policy_walk_children on the node again), so it controls scoping. */
typedef int (*PgwNodeVisitor)(PgQuery__Node **slot, void *arg);

/* Visit every Node slot directly reachable from msg: its Node-typed fields,
 * and the Node slots inside its other message-typed fields (Alias, TypeName,
 * WithClause, ...) which are traversed transparently. */
int policy_walk_children(ProtobufCMessage *msg, PgwNodeVisitor fn, void *arg) PGW_WUR;

/* The message inside a Node's oneof, or NULL when unset. */
ProtobufCMessage *policy_walk_inner(PgQuery__Node *node);

/* Visit every message of a tree, whatever its type, depth first (read-only;
 * used to find things anywhere in a statement: ask() calls, table names). */
typedef void (*PgwMessageVisitor)(const ProtobufCMessage *m, void *arg);
void policy_walk_messages(const ProtobufCMessage *m, PgwMessageVisitor fn, void *arg);

/* The oneof field name of a node ("select_stmt", "delete_stmt", ...). */
const char *policy_walk_node_name(const PgQuery__Node *node);

/* Structural equality of two trees ignoring source positions (location,
 * stmt_location, stmt_len). */
bool policy_walk_equal(const ProtobufCMessage *a, const ProtobufCMessage *b);

#endif
