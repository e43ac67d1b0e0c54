/*
 * audit.h — the audit log: one JSON line per statement (audit_log setting).
 *
 * A record is opened when the statement hook decides, carries the original
 * and rewritten text, the decision and its reason, and is written when the
 * statement's ReadyForQuery passes (rows, duration) or at once for a refusal.
 * Records are formatted and written by one writer thread, off the event
 * loops, in batches (see audit.c), so lines never interleave.
 * The audit log never receives secrets: api keys and passwords never reach
 * a statement text pgwarden logs.
 */
#ifndef PGW_AUDIT_H
#define PGW_AUDIT_H

#include "pgw.h"

typedef struct PgwAudit PgwAudit;

/* (Re)open the audit log; NULL or "" turns it off. */
int audit_open(const char *path) PGW_WUR;
bool audit_enabled(void);
/* At exit: write what is queued and stop the writer. */
void audit_shutdown(void);

/* A new record; NULL when the audit log is off (every function accepts NULL). */
PgwAudit *audit_begin(const char *user, const char *tenant, const char *client_addr,
                      const char *kind, const char *protocol, const char *sql);
void audit_set_decision(PgwAudit *a, const char *decision, const char *rewritten,
                        const char *reason, const char *sqlstate);
void audit_set_str(PgwAudit *a, const char *key, const char *value);
void audit_set_int(PgwAudit *a, const char *key, int64_t value);
/* Write and free. */
void audit_finish(PgwAudit *a, int64_t rows);
void audit_discard(PgwAudit *a);

#endif
