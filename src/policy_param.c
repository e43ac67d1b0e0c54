/*
 * policy_param.c — the question a Parse's untyped parameters make pgwarden
 * ask the backend before the Parse goes there: which type will each one
 * get? (stmt.c runs the question on the client's session and acts on the
 * answer.)
 *
 * Why: a parameter the client leaves untyped (OID 0, or 705 "unknown",
 * which PostgreSQL treats alike) takes the type its context asks for, and
 * the backend reads the Bind value with that type's input function. The
 * policy never sees Bind values, and it cannot know the context's type
 * (that takes the backend's operator and function resolution): relacl @>
 * $1 makes $1 aclitem[], 'pg_class'::regclass = $1 makes it regclass,
 * aclexplode($1) aclitem[]; their input looks names up, so a hidden name
 * answers unlike a missing one (42P01 / 3F000 / success). So the backend is
 * asked: the statement pgwarden would forward is prepared under a name of
 * its own, with the parameters the client declared (as far as this file
 * can name the types; the rest unknown), and pg_prepared_statements says
 * which type each parameter got, with whether that type's input may look
 * names up (lookup_names: reg*, aclitem, row types,
 * pseudo-types, through domains, arrays and ranges).
 *
 * What makes it sound is not the question but what the caller does with
 * the answer: the Parse is forwarded with every parameter's type declared
 * (the client's, else the answer's), so the backend infers nothing when it
 * analyses it; a declared type is either the client's (policy_object_stmt.c
 * refuses those whose input looks names up) or one the answer showed safe.
 * Should the answer be wrong (DDL in between, a declared type this file
 * could not name), the Parse fails or runs with safe types, never with a
 * lookup type. When the question itself fails (the statement does not
 * analyse, the transaction is aborted, a cancel), stmt.c refuses the Parse
 * with the backend's error, scrubbed: what the Parse would have answered.
 *
 * Only statements whose parameters the backend analyses at Parse need the
 * question: SELECT (VALUES, set operations, WITH), and the query of DECLARE
 * and of EXPLAIN. PREPARE, EXECUTE and COPY are utility statements whose
 * $n are not the Parse's (PREPARE's are its own, checked by the policy:
 * every one declared; EXECUTE's arguments and COPY's query are analysed
 * without the Parse's parameters at all, so a Bind value is never read for
 * them). Anything else with an open parameter is refused.
 */
#include "policy.h"
#include "policy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy_walk.h"

#define TYPE_UNKNOWN 705u

/* Built-in types a client commonly declares, by OID, so the question is
 * asked with them; any other declared type is asked as unknown (the Parse
 * still goes with the client's own OID). */
static const struct {
    uint32_t oid;
    const char *name;
} declared_names[] = {
    {16, "bool"},     {17, "bytea"},       {18, "\"char\""},      {19, "name"},
    {20, "int8"},     {21, "int2"},        {23, "int4"},          {25, "text"},
    {26, "oid"},      {114, "json"},       {142, "xml"},          {700, "float4"},
    {701, "float8"},  {1042, "bpchar"},    {1043, "varchar"},     {1082, "date"},
    {1083, "time"},   {1114, "timestamp"}, {1184, "timestamptz"}, {1186, "interval"},
    {1266, "timetz"}, {1700, "numeric"},   {2950, "uuid"},        {3802, "jsonb"},
    {869, "inet"},    {650, "cidr"},       {1000, "bool[]"},      {1005, "int2[]"},
    {1007, "int4[]"}, {1009, "text[]"},    {1016, "int8[]"},      {1015, "varchar[]"},
    {1028, "oid[]"},  {1021, "float4[]"},  {1022, "float8[]"},    {1231, "numeric[]"},
    {2951, "uuid[]"}, {1182, "date[]"},    {1115, "timestamp[]"}, {1185, "timestamptz[]"},
};

bool policy_param_open(uint32_t oid)
{
    return oid == 0 || oid == TYPE_UNKNOWN;
}

typedef struct Refs {
    bool open; /* some $n is beyond the declared list or declared 0/unknown */
    size_t ntypes;
    const uint32_t *types;
} Refs;

static void find_refs(const ProtobufCMessage *m, void *arg)
{
    Refs *r = arg;
    if (m->descriptor != &pg_query__param_ref__descriptor)
        return;
    int n = ((const PgQuery__ParamRef *)m)->number;
    if (n >= 1 && ((size_t)n > r->ntypes || policy_param_open(r->types[n - 1])))
        r->open = true;
}

static void highest_ref(const ProtobufCMessage *m, void *arg)
{
    int *max = arg;
    if (m->descriptor == &pg_query__param_ref__descriptor &&
        ((const PgQuery__ParamRef *)m)->number > *max)
        *max = ((const PgQuery__ParamRef *)m)->number;
}

int policy_param_highest(const ProtobufCMessage *m)
{
    int max = 0;
    policy_walk_messages(m, highest_ref, &max);
    return max;
}

/* The query of the statement whose parameters the backend analyses at
 * Parse; NULL when they are not the Parse's (see the top). */
static PgQuery__Node *analysed_query(PgQuery__Node *n, bool *other)
{
    *other = false;
    switch (n != NULL ? n->node_case : PG_QUERY__NODE__NODE__NOT_SET) {
    case PG_QUERY__NODE__NODE_SELECT_STMT:
        return n;
    case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
        return analysed_query(n->declare_cursor_stmt->query, other);
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
        return analysed_query(n->explain_stmt->query, other);
    case PG_QUERY__NODE__NODE_PREPARE_STMT:
    case PG_QUERY__NODE__NODE_EXECUTE_STMT:
    case PG_QUERY__NODE__NODE_COPY_STMT:
        return NULL;
    default:
        *other = true;
        return NULL;
    }
}

static char *deparse_one(PgQuery__ParseResult *tree, PgQuery__Node *stmt)
{
    PgQuery__RawStmt raw = PG_QUERY__RAW_STMT__INIT;
    PgQuery__RawStmt *rawp = &raw;
    PgQuery__ParseResult one = PG_QUERY__PARSE_RESULT__INIT;
    raw.stmt = stmt;
    one.version = tree->version;
    one.n_stmts = 1;
    one.stmts = &rawp;
    size_t len = pg_query__parse_result__get_packed_size(&one);
    uint8_t *packed = pgw_malloc(len > 0 ? len : 1);
    pg_query__parse_result__pack(&one, packed);
    PgQueryProtobuf pb = {len, (char *)packed};
    PgQueryDeparseResult dr = pg_query_deparse_protobuf(pb);
    free(packed);
    char *out = dr.error == NULL ? pgw_strdup(dr.query) : NULL;
    pg_query_free_deparse_result(dr);
    return out;
}

/* The lookup types by OID, for the refusal's message. */
static const struct {
    uint32_t oid;
    const char *name;
} lookup_names[] = {
    {24, "regproc"},           {1008, "regproc[]"},     {2202, "regprocedure"},
    {2207, "regprocedure[]"},  {2203, "regoper"},       {2208, "regoper[]"},
    {2204, "regoperator"},     {2209, "regoperator[]"}, {2205, "regclass"},
    {2210, "regclass[]"},      {2206, "regtype"},       {2211, "regtype[]"},
    {3734, "regconfig"},       {3735, "regconfig[]"},   {3769, "regdictionary"},
    {3770, "regdictionary[]"}, {4089, "regnamespace"},  {4090, "regnamespace[]"},
    {4096, "regrole"},         {4097, "regrole[]"},     {4191, "regcollation"},
    {4192, "regcollation[]"},  {1033, "aclitem"},       {1034, "aclitem[]"},
};

const char *policy_param_type_name(uint32_t oid)
{
    for (size_t i = 0; i < PGW_ARRAY_LEN(lookup_names); i++)
        if (lookup_names[i].oid == oid)
            return lookup_names[i].name;
    return NULL;
}

/* The question as text: PREPARE of inner, then each parameter's type. */
static char *probe_sql(const char *inner, size_t ntypes, const uint32_t *types);

int policy_param_probe(const char *sql, size_t ntypes, const uint32_t *types, bool may_parse,
                       char **probe)
{
    *probe = NULL;
    if (!may_parse) {
        /* Too long to parse again on this stack: the whole text is asked
         * about. PREPARE takes only a preparable statement (a SELECT, the
         * only kind the policy lets through of those), so anything else
         * makes the question fail, which refuses the Parse. DECLARE and
         * EXPLAIN, whose query is what the backend analyses, are refused. */
        const char *p = sql;
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
            p++;
        if (strncasecmp(p, "DECLARE", 7) == 0 || strncasecmp(p, "EXPLAIN", 7) == 0)
            return -1;
        *probe = probe_sql(sql, ntypes, types);
        return 0;
    }
    PgQuery__ParseResult *tree = policy_parse_tree(sql);
    if (tree == NULL)
        return -1;
    Refs r = {.open = false, .ntypes = ntypes, .types = types};
    for (size_t i = 0; i < ntypes && !r.open; i++)
        r.open = policy_param_open(types[i]); /* declared unknown, even if unused */
    policy_walk_messages(&tree->base, find_refs, &r);
    int rc = 0;
    if (!r.open)
        goto done;
    bool other = false;
    PgQuery__Node *q = tree->n_stmts == 1 ? analysed_query(tree->stmts[0]->stmt, &other) : NULL;
    if (tree->n_stmts != 1 || other) {
        rc = -1;
        goto done;
    }
    if (q == NULL)
        goto done; /* PREPARE, EXECUTE, COPY: the $n are not the Parse's */
    char *inner = deparse_one(tree, q);
    if (inner == NULL) {
        rc = -1;
        goto done;
    }
    *probe = probe_sql(inner, ntypes, types);
    free(inner);
done:
    pg_query__parse_result__free_unpacked(tree, NULL);
    return rc;
}

static char *probe_sql(const char *inner, size_t ntypes, const uint32_t *types)
{
    /* Only the declared parameters are listed: PREPARE infers the rest,
     * as the Parse would. */
    size_t n = ntypes;
    /* A name of its own each time, under a prefix no client may use
     * (policy.c): a statement left behind (a statement_timeout or a cancel
     * hit the SELECT below, so DEALLOCATE never ran; PREPARE is not undone
     * by the rollback) stays on the session, where in transaction pooling
     * another client may land, but no client can name it, run it or see it
     * in pg_prepared_statements; DISCARD ALL drops it with the session's
     * other statements when the session is reset. */
    static unsigned long serial;
    char name[48];
    snprintf(name, sizeof name, PGW_PARAM_PROBE_PREFIX "%lu",
             __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED));
    PgwBuf b;
    buf_init(&b);
    buf_printf(&b, "PREPARE %s", name);
    for (size_t i = 0; i < n; i++) {
        const char *type = "unknown";
        for (size_t k = 0; k < PGW_ARRAY_LEN(declared_names); k++)
            if (declared_names[k].oid == types[i])
                type = declared_names[k].name;
        buf_printf(&b, "%spg_catalog.%s", i == 0 ? "(" : ", ", type);
    }
    buf_printf(&b, "%s AS %s;\n", n ? ")" : "", inner);
    /* Per parameter: its number, its type, and whether its input may look
     * names up: a lookup type, or a row type or pseudo-type (or a chain
     * too deep to follow) anywhere through domains, arrays and ranges. */
    PgwBuf oids;
    buf_init(&oids);
    for (size_t i = 0; i < PGW_ARRAY_LEN(lookup_names); i++)
        buf_printf(&oids, "%s%u", i ? ", " : "", lookup_names[i].oid);
    char *oidlist = buf_steal_str(&oids);
    buf_printf(
        &b,
        "WITH RECURSIVE p(n, t) AS (SELECT a.n, a.t::pg_catalog.oid FROM "
        "pg_catalog.pg_prepared_statements s, pg_catalog.unnest(s.parameter_types) WITH "
        "ORDINALITY AS a(t, n) WHERE s.name = '%s'), "
        "u(n, t, d) AS (SELECT p.n, p.t, 0 FROM p UNION ALL SELECT u.n, CASE y.typtype "
        "WHEN 'd' THEN y.typbasetype WHEN 'r' THEN (SELECT g.rngsubtype FROM "
        "pg_catalog.pg_range g WHERE g.rngtypid = y.oid) WHEN 'm' THEN (SELECT g.rngtypid "
        "FROM pg_catalog.pg_range g WHERE g.rngmultitypid = y.oid) ELSE y.typelem END, u.d + 1 "
        "FROM u JOIN pg_catalog.pg_type y ON y.oid = u.t WHERE u.d < 8 AND (y.typtype IN "
        "('d', 'r', 'm') OR (y.typelem <> 0 AND y.typsubscript = "
        "'pg_catalog.array_subscript_handler'::pg_catalog.regproc))) "
        "SELECT p.n, p.t, (SELECT pg_catalog.bool_or(u.t IN (%s) OR u.d >= 8 OR y.typtype "
        "IS NULL OR y.typtype NOT IN ('b', 'e', 'd', 'r', 'm')) FROM u LEFT JOIN "
        "pg_catalog.pg_type y ON y.oid = u.t WHERE u.n = p.n) FROM p ORDER BY p.n;\n"
        "DEALLOCATE %s",
        name, oidlist, name);
    free(oidlist);
    return buf_steal_str(&b);
}
