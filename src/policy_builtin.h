/*
 * policy_builtin.h — the policy's tables of PostgreSQL built-ins: which
 * functions a read-only query may call, what their arguments name (a
 * relation, a type, a role ...), which run-time settings a client may change
 * or see, and SQL quoting. Constant tables and pure functions only.
 */
#ifndef PGW_POLICY_BUILTIN_H
#define PGW_POLICY_BUILTIN_H

#include "buf.h"
#include "config.h"
#include "pgw.h"

/* Built-in functions (called unqualified or in pg_catalog): allowlisted
 * aggregates/window functions, allowlisted scalar and set-returning
 * functions, and those whose result changes from one run to the next. */
bool policy_builtin_aggregate(const char *name);
bool policy_builtin_scalar(const char *name);
bool policy_builtin_volatile(const char *name);

/* What one argument of a built-in names. Every argument that names an
 * object is checked against the tenant's visible set of that class, so a
 * hidden object answers exactly as a missing one. */
typedef enum {
    PGW_ARG_VALUE = 0, /* a plain value: nothing to check */
    PGW_ARG_REL, /* a relation: OID, regclass, or its name as text */
    PGW_ARG_REL_VOLUME, /* a relation whose size or activity is asked: NULL unless unfiltered */
    PGW_ARG_TYPE, /* a type: OID, or its name as text */
    PGW_ARG_FUNC, /* a function: OID, or its signature as text */
    PGW_ARG_NAMESPACE, /* a schema: OID or name */
    PGW_ARG_ROLE, /* a role: OID or name ('public' allowed) */
    PGW_ARG_DATABASE, /* a database: OID or name (only the tenant's exists) */
    PGW_ARG_CONSTRAINT, /* OIDs of objects that belong to a relation */
    PGW_ARG_TRIGGER,
    PGW_ARG_RULE,
    PGW_ARG_STATISTICS,
    PGW_ARG_COLUMN, /* a column of the first relation argument: name or number */
    PGW_ARG_CLASS, /* a catalog, by regclass or name: the class of the PGW_ARG_OBJECT */
    PGW_ARG_OBJECT, /* an OID whose catalog is the PGW_ARG_CLASS argument */
    PGW_ARG_SUBID, /* a column number qualifying a PGW_ARG_OBJECT of pg_class */
    PGW_ARG_SETTING, /* a run-time setting's name */
    PGW_ARG_TYPE_VECTOR, /* type OIDs (oidvector, oid[]): a hidden one reads as a missing one */
    PGW_ARG_OPERATOR, /* an operator: OID, or its name (and signature) as text */
    PGW_ARG_COLLATION, /* a collation: OID or name */
} PgwArgKind;

/* Text accepted in this position (as well as an OID): a name is resolved
 * like the reg* input function would. */
#define PGW_ARG_TEXT 0x80u
#define PGW_ARG_KIND(a) ((PgwArgKind)((a)&0x7fu))

/* What becomes of the whole call. */
typedef enum {
    PGW_CALL_ARGS, /* check the arguments, keep the call */
    PGW_CALL_TO_REG, /* to_regclass & co: the call becomes a lookup in the visible set */
    PGW_CALL_CONST, /* an answer about what the tenant cannot see (pg_database_size,
                     * pg_blocking_pids): the constant in type */
    PGW_CALL_TENANT, /* current_database(): the tenant's database name */
    PGW_CALL_PARTITION, /* pg_partition_root/ancestors/tree: they answer with other
                         * relations, so only for a relation whose whole partition
                         * hierarchy is visible */
    PGW_CALL_VIEWDEF, /* pg_get_viewdef: the text names what the view reads, so NULL
                       * for a view whose rule uses an object the tenant cannot see */
} PgwCallKind;

typedef struct PgwBuiltinObjects {
    const char *name;
    unsigned char nargs;
    unsigned char args[4]; /* PgwArgKind | PGW_ARG_TEXT, per argument */
    unsigned char call; /* PgwCallKind */
    const char *type; /* PGW_CALL_TO_REG: the reg type; PGW_CALL_CONST: the answer (SQL) */
} PgwBuiltinObjects;

/* The entry for a call of name with nargs arguments; NULL when none of its
 * arguments names an object. */
const PgwBuiltinObjects *policy_builtin_objects(const char *name, size_t nargs);
/* The tables searched by binary search are sorted (for tests). */
bool policy_builtin_tables_sorted(void);

/* The reg* types (regclass, regtype, ...): their input functions are
 * name→OID paths that bypass the catalogs. name is the bare type name. */
bool policy_builtin_is_reg_type(const char *name);
/* The same for type OIDs (protocol parameter types), arrays included. */
bool policy_builtin_is_reg_type_oid(uint32_t oid);
/* The catalog a reg* type's values are OIDs of ("pg_operator" for
 * regoperator); NULL when name is no reg* type. */
const char *policy_builtin_reg_catalog(const char *name);

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

/* May a client read this setting (SHOW, current_setting, pg_settings)?
 * Settings that describe the server's files, connections, replication and
 * libraries are not the tenant's business. name in any case. */
bool policy_setting_visible(const char *name);
/* Append the hidden settings as a SQL list of lower-case literals:
 * 'a', 'b', ... (for run-time checks). */
void policy_setting_append_hidden(PgwBuf *b);

/* SQL quoting shared by the policy's files: "ident" and 'literal' with
 * embedded quotes doubled. */
void policy_append_ident(PgwBuf *b, const char *s);
void policy_append_literal(PgwBuf *b, const char *s);

#endif
