/*
 * pgw.h — definitions every pgwarden module shares: the result convention and
 * a few attributes. Nothing here allocates or does I/O.
 *
 * Convention: a function that can fail returns int, 0 on success and -1 on
 * failure, is marked PGW_WUR, and (where a caller needs to know why) fills an
 * error buffer the caller owns.
 */
#ifndef PGW_H
#define PGW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PGW_WUR __attribute__((warn_unused_result))
#define PGW_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define PGW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define PGW_VERSION_STRING PACKAGE_VERSION

/* PostgreSQL SQLSTATEs pgwarden itself raises. */
#define SQLSTATE_PROTOCOL_VIOLATION "08P01"
#define SQLSTATE_CONNECTION_FAILURE "08006"
#define SQLSTATE_CANNOT_CONNECT "08001"
#define SQLSTATE_INVALID_AUTHORIZATION "28000"
#define SQLSTATE_INVALID_PASSWORD "28P01"
#define SQLSTATE_INVALID_CATALOG "3D000"
#define SQLSTATE_INSUFFICIENT_PRIVILEGE "42501"
#define SQLSTATE_UNDEFINED_TABLE "42P01"
#define SQLSTATE_UNDEFINED_FUNCTION "42883"
#define SQLSTATE_UNDEFINED_COLUMN "42703"
#define SQLSTATE_UNDEFINED_OBJECT "42704"
#define SQLSTATE_SYNTAX_ERROR "42601"
#define SQLSTATE_FEATURE_NOT_SUPPORTED "0A000"

/* The error one of pgwarden's own queries reports when it came after a
 * Sync pgwarden sent to close a client's pipeline, and that pipeline had
 * failed before it: the server would have skipped everything up to the
 * client's Sync, and the query's answer (it ran, the Sync ended the
 * skipping) must not be acted on (backend.c, stmt_param.c). */
#define PGW_ERR_PIPELINE_FAILED "pgwarden: an earlier message of this pipeline failed"
#define SQLSTATE_TOO_MANY_CONNECTIONS "53300"
#define SQLSTATE_QUERY_CANCELED "57014"
#define SQLSTATE_ADMIN_SHUTDOWN "57P01"
#define SQLSTATE_CANNOT_CONNECT_NOW "57P03"
#define SQLSTATE_INTERNAL_ERROR "XX000"

#endif
