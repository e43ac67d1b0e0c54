/*
 * policy_catalog.h — the policy's tables of PostgreSQL built-ins and what a
 * tenant may do with each: catalog relations (pg_catalog,
 * information_schema), built-in functions (allowlist, volatility, those that
 * take a relation by name or OID) and run-time settings.
 *
 * The policy (policy.c) asks this module how to treat a catalog relation it
 * found in FROM, and gets back the SQL of a filtered derived table that keeps
 * only rows about relations and columns the tenant may read. Everything here
 * produces SQL text from the configuration; nothing parses, walks trees or
 * knows the backend's schema snapshot.
 */
#ifndef PGW_POLICY_CATALOG_H
#define PGW_POLICY_CATALOG_H

#include "buf.h"
#include "config.h"
#include "pgw.h"

typedef enum {
    PGW_CATALOG_UNKNOWN, /* not in the rule table: refused (or 42P01 if absent) */
    PGW_CATALOG_AS_IS, /* holds nothing tenant-specific: readable unchanged */
    PGW_CATALOG_FILTERED, /* rows about hidden objects are removed */
    PGW_CATALOG_REFUSED, /* statistics and activity: values or other sessions' text */
} PgwCatalogAccess;

PgwCatalogAccess policy_catalog_access(const char *schema, const char *name);

/* Append "(SELECT * FROM schema.name r WHERE <filter>" (no closing
 * parenthesis: the caller adds the fence and alias) for a FILTERED catalog
 * relation. */
void policy_catalog_append_view(PgwBuf *b, const PgwConfig *cfg, const char *schema,
                                const char *name);

/* Append a SELECT returning the OIDs of every relation the tenant may read
 * (catalogs included) and of their indexes. */
void policy_catalog_append_readable_oids(PgwBuf *b, const PgwConfig *cfg);

/* Built-in functions with a relation argument (has_table_privilege,
 * to_regclass, pg_get_viewdef ...). For a call with nargs arguments, sets
 * the index of the relation argument and of the column argument (-1: none).
 * Returns false when name is not such a function or nargs does not fit. */
typedef struct PgwRelationArg {
    int relation; /* index of the relation argument */
    int column; /* index of a column-name argument, -1 if none */
    bool null_when_missing; /* to_regclass: a missing relation gives NULL, not an error */
} PgwRelationArg;

bool policy_catalog_relation_arg(const char *func, size_t nargs, PgwRelationArg *out);

/* Built-in functions (called unqualified or in pg_catalog): allowlisted
 * aggregates/window functions, allowlisted scalar and set-returning
 * functions, and those whose result changes from one run to the next. */
bool policy_builtin_aggregate(const char *name);
bool policy_builtin_scalar(const char *name);
bool policy_builtin_volatile(const char *name);

/* Settings a client may change with SET, RESET or set_config(). */
typedef enum {
    PGW_SETTING_OK,
    PGW_SETTING_PINNED, /* not on the allowlist: pgwarden pins it */
    PGW_SETTING_READ_ONLY, /* a read-only switch turned off */
    PGW_SETTING_TIMEOUT, /* statement_timeout 0 or above the configured bound */
    PGW_SETTING_ENCODING, /* a client encoding that hides ASCII in multibyte characters */
} PgwSettingVerdict;

/* name as the client wrote it (any case); value NULL for RESET/DEFAULT. */
PgwSettingVerdict policy_setting_verdict(const PgwConfig *cfg, const char *name, const char *value);
/* on/true/yes/1 as PostgreSQL reads a boolean setting. */
bool policy_setting_is_on(const char *value);

/* SQL quoting shared by the policy's files: "ident" and 'literal' with
 * embedded quotes doubled. */
void policy_append_ident(PgwBuf *b, const char *s);
void policy_append_literal(PgwBuf *b, const char *s);

#endif
