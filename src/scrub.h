/*
 * scrub.h — what of a backend's ErrorResponse or NoticeResponse may reach a
 * client.
 *
 * Defence in depth behind the policy: if a statement ever made PostgreSQL
 * evaluate something on rows the tenant may not see, the error text is the
 * channel a value would leak through ("invalid input syntax for type
 * integer: \"<value>\""). So: DETAIL, CONTEXT/WHERE, the internal query and
 * position, and the schema/table/column/constraint fields are dropped
 * (they describe the rewritten statement, not the client's); in messages
 * of the classes that quote data (22 data exception, 23 integrity, P0
 * PL/pgSQL, XX internal, 2F, 39, 40) every double-quoted segment becomes
 * "***". Identifiers in syntax and name errors (class 42) are kept: the
 * client wrote them. Pure function, no I/O.
 */
#ifndef PGW_SCRUB_H
#define PGW_SCRUB_H

#include "buf.h"
#include "pgw.h"

/* body/len: the fields of an 'E' or 'N' message. Appends the scrubbed whole
 * message (type byte, length, fields) to out. Returns -1 (and appends
 * nothing) when the body is malformed. */
int scrub_backend_error(char type, const uint8_t *body, size_t len, PgwBuf *out) PGW_WUR;

#endif
