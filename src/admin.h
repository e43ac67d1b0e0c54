/*
 * admin.h — the admin console: the virtual database "pgwarden", open to the
 * users in admin_users, answering a few commands with ordinary result sets
 * so psql shows them as tables:
 *
 *     SHOW TENANTS | POOLS | CLIENTS | STATS | CACHE [TENANTS | tenant] | LLM | VERSION
 *     RELOAD
 *     CACHE CLEAR [tenant]
 *
 * The console never reaches a backend and never shows a secret: backend
 * conninfo is shown without its password, the LLM api_key not at all.
 */
#ifndef PGW_ADMIN_H
#define PGW_ADMIN_H

#include "buf.h"
#include "config.h" /* PGW_ADMIN_DB */
#include "pgw.h"

/* Run one admin command (a whole Query text; a trailing ';' is fine).
 * Appends the answer (RowDescription/DataRows/CommandComplete, or an
 * ErrorResponse) to out, without ReadyForQuery. */
void admin_execute(const char *sql, PgwBuf *out);

struct PgwWorker;
/* A command that finishes later on worker w (CACHE CLEAR [tenant], which
 * reaches Redis): true when it took sql; done(arg, answer without
 * ReadyForQuery) then runs once on w, possibly before this returns. */
bool admin_execute_later(struct PgwWorker *w, const char *sql,
                         void (*done)(void *arg, const PgwBuf *out), void *arg);

/* ParameterStatus messages an admin session gets at login. */
void admin_login_params(PgwBuf *out);

#endif
