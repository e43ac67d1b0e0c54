/*
 * policy_object_reg.c — the run-time wrappers that read a value the way a
 * client's cast to a reg* type (or to_regclass & co) would, and keep the
 * answer only when the object is in the tenant's visible set of its kind
 * (policy_object.c decides where they go; the sets are policy_catalog.c's).
 *
 * The rule: a hidden object answers exactly as a missing one. An OID (or
 * another reg value) is kept when visible and is NULL otherwise. A name is
 * resolved by the backend's own input function; when the object exists but
 * is not visible, the text is looked up a second time with search_path
 * narrowed to pg_catalog (and a qualified name requoted into one
 * identifier), which fails with the error a missing name gets. For the
 * kinds whose names carry a schema and whose catalog has no set of its own
 * (operators, collations, text search configurations and dictionaries),
 * and as well for relations, types and functions, whose sets would catch
 * the object but not the lookup on the way to it, the schema part is
 * checked first, at run time, against the visible schema set: a name in a
 * schema the tenant cannot see is never looked up there (the lookup would
 * tell an existing schema from a missing one, 42704 against 3F000, or fail
 * on the backend role's USAGE, 42501) but goes straight to the failing
 * second lookup, and to_reg* answers NULL without looking. Literals never get that far:
 * policy_object.c answers a hidden schema in a literal with PostgreSQL's own
 * 3F000 before the statement runs.
 *
 * Timing: a hidden name must not take longer (or shorter) than a missing
 * one. A cast that fails at once for a missing name but succeeds for a
 * hidden one, whose check then builds the visible set, told them apart by
 * the set's cost (a millisecond in a small database, more in a large one).
 * So a name is first looked up by to_<type>, which answers NULL rather
 * than failing; that answer, or 0 for none, is checked against the set
 * either way (the set is built in both cases); a visible answer is then
 * cast for real, and anything else goes to the failing second lookup. A
 * hidden and a missing name now do the same steps: one lookup, the set,
 * the failing lookup. regconfig and regdictionary have no to_<type> and
 * keep the cast-first order (their sets are catalog rules, small). One
 * deviation: an ambiguous function name (two visible overloads) reads as
 * missing (42883) where PostgreSQL says 42725, since to_regproc answers
 * NULL for it.
 *
 * Soundness: every branch that returns a value returns one the visible set
 * holds (or 0, which names nothing); every other branch ends in a lookup
 * that fails for hidden and missing names alike, naming only what the
 * client wrote. X appears once (in a VALUES), so a volatile argument is
 * checked and used as one value. regoperin and regoperatorin echo the
 * input text in their error: since a missing operator now ends in the same
 * second lookup as an invisible one (see "Timing"), both are named
 * requoted ("public.###"(int4,text)), where PostgreSQL would name a missing
 * one as written.
 *
 * The same concern from the other side, at the end of the file: the row
 * types whose input looks names up through a field (a reg* or aclitem
 * column), which no wrapper can check and the policy refuses outright; and
 * untyped string literals the backend may read as aclitem (relacl @>
 * 'role=r/grantor'), read here as aclitem input would read them, and
 * refused (policy_object_stmt.c) when that input could look up a role
 * other than PUBLIC or a predefined one.
 */
#include "policy.h"
#include "policy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_catalog.h"
#include "policy_object_int.h"
#include "schema.h"

/* The reg* types whose names are schema-qualified and whose catalog has
 * no set of its own: operators (a name, then an argument list for
 * regoperator), collations and text search objects (identifiers). */
bool policy_object_reg_operator(const char *regtype)
{
    return strcmp(regtype, "regoper") == 0 || strcmp(regtype, "regoperator") == 0;
}

bool policy_object_reg_by_rule(const char *regtype)
{
    return policy_object_reg_operator(regtype) || strcmp(regtype, "regconfig") == 0 ||
           strcmp(regtype, "regdictionary") == 0 || strcmp(regtype, "regcollation") == 0;
}

/* Every reg type whose names may be schema-qualified: those above, and
 * relations, types and functions, which have sets of their own. Their
 * run-time lookups check the schema part first (see the file's prose). */
static bool reg_qualified(const char *regtype)
{
    return policy_object_reg_by_rule(regtype) || strcmp(regtype, "regclass") == 0 ||
           strcmp(regtype, "regtype") == 0 || strcmp(regtype, "regproc") == 0 ||
           strcmp(regtype, "regprocedure") == 0;
}

/* The schema a name of that reg type is qualified with, as the input
 * function reads it (SQL over text %s; NULL when unqualified). An
 * operator's symbol never holds '.' or '"', so whatever precedes its last
 * '.' is the schema (db.schema allowed); an identifier name is split by
 * parse_ident, which reads quotes as the input functions do. */
static void append_schema_of(PgwBuf *b, const char *regtype, const char *x)
{
    if (policy_object_reg_operator(regtype))
        buf_printf(b,
                   "(SELECT CASE WHEN vq.n !~ '\\.[^.\"]*$' THEN NULL ELSE (SELECT "
                   "vi.a[pg_catalog.array_upper(vi.a, 1)] FROM (SELECT pg_catalog.parse_ident("
                   "pg_catalog.regexp_replace(vq.n, '\\.[^.\"]*$', ''), false) AS a) vi) END FROM "
                   "(SELECT pg_catalog.btrim(pg_catalog.split_part(%s, '(', 1)) AS n) vq)",
                   x);
    else
        buf_printf(b,
                   "(CASE WHEN pg_catalog.strpos(%s, '.') = 0 THEN NULL ELSE (SELECT "
                   "vi.a[pg_catalog.array_upper(vi.a, 1) - 1] FROM (SELECT "
                   "pg_catalog.parse_ident(%s, false) AS a) vi) END)",
                   x, x);
}

/* A condition over text %s: the name is unqualified or its schema is in
 * the visible schema set (run-time, exact). */
static void append_schema_visible(PgwBuf *b, const char *regtype, const char *x)
{
    buf_append_str(b, "COALESCE(");
    append_schema_of(b, regtype, x);
    buf_append_str(b, " IN (SELECT vn.nspname::pg_catalog.text FROM pg_catalog.pg_namespace vn "
                      "WHERE vn.oid IN (SELECT vs.o FROM %{nsp} vs)), true)");
}

/* The reg types with a to_<type> function (PostgreSQL 15): a lookup that
 * answers NULL for a missing name instead of failing. regconfig and
 * regdictionary have none. */
static bool has_to_reg(const char *regtype)
{
    static const char *const with[] = {"regclass", "regtype",     "regproc",     "regprocedure",
                                       "regoper",  "regoperator", "regcollation"};
    for (size_t i = 0; i < PGW_ARRAY_LEN(with); i++)
        if (strcmp(with[i], regtype) == 0)
            return true;
    return false;
}

/* X as the client's cast to regtype would read it, kept when in answer.
 * A number (an OID, or another reg value) names nothing invisible: NULL
 * unless visible. Text is looked up by the backend exactly as the cast
 * would, and a name that exists but is not visible is looked up a second
 * time with search_path narrowed to pg_catalog, which fails exactly as a
 * missing name does (see the file's prose) and names only what the client
 * wrote. For functions, a name qualified with a schema that holds no
 * visible function goes straight to that second lookup, so hidden and
 * missing answer alike there too. X is evaluated once, in the VALUES; the
 * cast only in the branch that needs it. */
int policy_object_wrap_resolve(Rewrite *rw, PgQuery__Node **slot, const char *regtype,
                               const char *exists, const char *answer)
{
    bool func = strcmp(regtype, "regproc") == 0 || strcmp(regtype, "regprocedure") == 0;
    const char *requote;
    if (strcmp(regtype, "regclass") == 0)
        requote = "pg_catalog.quote_ident(pg_catalog.array_to_string(pg_catalog.parse_ident("
                  "pgwarden_v.x::pg_catalog.text), '.'))";
    else if (policy_object_reg_by_rule(regtype) && !policy_object_reg_operator(regtype))
        requote = "pg_catalog.quote_ident(pg_catalog.array_to_string(pg_catalog.parse_ident("
                  "pgwarden_v.x::pg_catalog.text), '.'))";
    else if (policy_object_reg_operator(regtype))
        requote = "CASE WHEN pg_catalog.strpos(pgwarden_v.x::pg_catalog.text, '(') = 0 THEN "
                  "pg_catalog.quote_ident(pg_catalog.btrim(pgwarden_v.x::pg_catalog.text)) ELSE "
                  "pg_catalog.quote_ident(pg_catalog.btrim(pg_catalog.split_part("
                  "pgwarden_v.x::pg_catalog.text, '(', 1))) || '(' || pg_catalog.split_part("
                  "pgwarden_v.x::pg_catalog.text, '(', 2) END";
    else if (strcmp(regtype, "regtype") == 0)
        requote =
            "pg_catalog.quote_ident(CASE WHEN pg_catalog.strpos(pgwarden_v.x::pg_catalog.text, "
            "'\"') = 0 THEN pg_catalog.lower(pg_catalog.btrim(pgwarden_v.x::pg_catalog.text)) "
            "ELSE pgwarden_v.x::pg_catalog.text END)";
    else
        requote =
            "CASE WHEN pg_catalog.strpos(pg_catalog.split_part(pgwarden_v.x::pg_catalog.text, "
            "'(', 1), '.') > 0 THEN pg_catalog.quote_ident(pg_catalog.split_part("
            "pgwarden_v.x::pg_catalog.text, '(', 1)) || '(' || pg_catalog.split_part("
            "pgwarden_v.x::pg_catalog.text, '(', 2) ELSE pgwarden_v.x::pg_catalog.text END";
    /* The second lookup reads the text through set_config, so the narrowing
     * happens first and nothing of it is folded into a constant (and
     * evaluated) at plan time when X is a constant. */
    PgwBuf sentinel, b;
    buf_init(&sentinel);
    buf_printf(&sentinel, "(CASE WHEN pg_catalog.%sin((", regtype);
    static const char text_of_x[] = "pgwarden_v.x::pg_catalog.text";
    for (const char *p = requote; *p != '\0';) {
        if (strncmp(p, text_of_x, sizeof(text_of_x) - 1) == 0) {
            buf_append_str(&sentinel,
                           "(CASE WHEN pg_catalog.set_config('search_path', 'pg_catalog', true) IS "
                           "NULL THEN NULL ELSE pgwarden_v.x::pg_catalog.text END)");
            p += sizeof(text_of_x) - 1;
        } else {
            buf_append_byte(&sentinel, (uint8_t)*p++);
        }
    }
    buf_printf(&sentinel, ")::pg_catalog.cstring) IS NOT NULL THEN NULL::pg_catalog.%s END)",
               regtype);
    char *stl = buf_steal_str(&sentinel);
    buf_init(&b);
    buf_printf(
        &b,
        "(SELECT CASE WHEN pgwarden_v.x IS NULL THEN NULL::pg_catalog.%s "
        "WHEN pg_catalog.pg_typeof(pgwarden_v.x)::pg_catalog.oid NOT IN (25, 1043, 19, 1042, "
        "705, 2275) THEN (SELECT pgwarden_w.o FROM (SELECT pgwarden_v.x::pg_catalog.%s AS o) "
        "pgwarden_w WHERE pgwarden_w.o::pg_catalog.oid = 0::pg_catalog.oid OR "
        "pgwarden_w.o::pg_catalog.oid IN (SELECT s.o FROM %s s)) ",
        regtype, regtype, answer);
    if (func) {
        /* A name qualified with a schema holding no visible function. */
        buf_append_str(&b, "WHEN pg_catalog.strpos(pg_catalog.split_part(pgwarden_v.x::pg_catalog."
                           "text, '(', 1), '.') > 0 AND pg_catalog.lower(pg_catalog.btrim("
                           "pg_catalog.split_part(pgwarden_v.x::pg_catalog.text, '.', 1), ' \"')) "
                           "NOT IN ('pg_catalog', 'information_schema'");
        for (size_t i = 0; i < rw->ctx->cfg->nallowed_functions; i++) {
            const char *f = rw->ctx->cfg->allowed_functions[i];
            const char *dot = strrchr(f, '.');
            char schema[128];
            snprintf(schema, sizeof(schema), "%.*s", dot != NULL ? (int)(dot - f) : 6,
                     dot != NULL ? f : "public");
            buf_append_str(&b, ", ");
            policy_append_literal(&b, schema);
        }
        buf_printf(&b, ") THEN %s ", stl);
    }
    if (reg_qualified(regtype)) {
        /* A name qualified with a schema the tenant cannot see: never looked
         * up there (which would tell an existing schema from a missing one,
         * 42704 against 3F000 -- '$1::regtype' with 'hush.t' and 'nosuch.t'
         * did -- or fail on the backend role's privileges, 42501), but as
         * the whole name in pg_catalog, which fails as a missing object
         * does. A missing schema is not visible either, so both answer the
         * same 42704 (PostgreSQL says 3F000 for the missing one: the one
         * way a run-time value reads differently from PostgreSQL). */
        buf_append_str(&b, "WHEN NOT ");
        append_schema_visible(&b, regtype, "pgwarden_v.x::pg_catalog.text");
        buf_printf(&b, " THEN %s ", stl);
    }
    if (has_to_reg(regtype)) {
        /* The same work for a hidden name as for a missing one (see the
         * file's prose, "Timing"): an OID or '-' is read without a lookup;
         * a name is looked up by to_<type>, which answers NULL instead of
         * failing, its answer (or 0) is checked against the set, which is
         * so built for either, and only a visible answer is cast for real;
         * every other name ends in the failing second lookup. */
        buf_printf(
            &b,
            "WHEN pgwarden_v.x::pg_catalog.text = '-' OR pgwarden_v.x::pg_catalog.text ~ "
            "'^[0-9]+$' THEN (SELECT pgwarden_w.o FROM (SELECT "
            "pgwarden_v.x::pg_catalog.%s AS o) pgwarden_w WHERE pgwarden_w.o::pg_catalog.oid "
            "= 0::pg_catalog.oid OR pgwarden_w.o::pg_catalog.oid IN (SELECT s.o FROM %s s)) ",
            regtype, answer);
        buf_append_str(&b, "ELSE (SELECT CASE WHEN pgwarden_w.k THEN pgwarden_v.x::pg_catalog.");
        buf_append_str(&b, regtype);
        buf_append_byte(&b, ' ');
        if (strcmp(exists, answer) != 0)
            buf_append_str(&b, "WHEN pgwarden_w.e THEN NULL ");
        buf_printf(&b, "ELSE %s END FROM (SELECT pgwarden_u.o IN (SELECT s.o FROM %s s) AS k", stl,
                   answer);
        if (strcmp(exists, answer) != 0)
            buf_printf(&b, ", pgwarden_u.o IN (SELECT s.o FROM %s s) AS e", exists);
        buf_printf(&b,
                   " FROM (SELECT COALESCE(pg_catalog.to_%s(pgwarden_v.x::pg_catalog.text)::"
                   "pg_catalog.oid, 0::pg_catalog.oid) AS o) pgwarden_u) pgwarden_w) END FROM "
                   "(VALUES (pgwarden_arg)) pgwarden_v(x))",
                   regtype);
    } else {
        buf_printf(&b,
                   "ELSE (SELECT CASE WHEN pgwarden_w.o::pg_catalog.oid = 0::pg_catalog.oid OR "
                   "pgwarden_w.o::pg_catalog.oid IN (SELECT s.o FROM %s s) THEN pgwarden_w.o ",
                   answer);
        if (strcmp(exists, answer) != 0)
            buf_printf(&b, "WHEN pgwarden_w.o::pg_catalog.oid IN (SELECT s.o FROM %s s) THEN NULL ",
                       exists);
        buf_printf(
            &b,
            "ELSE %s END FROM (SELECT pgwarden_v.x::pg_catalog.%s AS o) pgwarden_w) END FROM "
            "(VALUES (pgwarden_arg)) pgwarden_v(x))",
            stl, regtype);
    }
    free(stl);
    char *tmpl = buf_steal_str(&b);
    int rc = policy_object_wrap(rw, slot, tmpl, NULL, NULL);
    free(tmpl);
    return rc;
}

/* to_regclass & co: the backend's lookup, kept when visible; NULL for a
 * hidden object exactly as for a missing one. */
int policy_object_wrap_to_reg(Rewrite *rw, PgQuery__Node **slot, const char *regtype,
                              const char *set)
{
    if (reg_qualified(regtype)) {
        /* The schema is checked first: to_regoper('hidden.+') never looks
         * in a schema the tenant cannot see (the lookup would fail on the
         * backend role's USAGE, telling it exists). The guard is inside
         * the call's argument, so no plan-time folding calls it early. */
        PgwBuf b;
        buf_init(&b);
        buf_printf(&b, "(SELECT pgwarden_w.o FROM (SELECT pg_catalog.to_%s(CASE WHEN ", regtype);
        append_schema_visible(&b, regtype, "pgwarden_v.t");
        buf_printf(&b,
                   " THEN pgwarden_v.t END) AS o FROM (VALUES ((pgwarden_arg)::pg_catalog.text)) "
                   "pgwarden_v(t)) pgwarden_w WHERE pgwarden_w.o::pg_catalog.oid IN (SELECT s.o "
                   "FROM %s s))",
                   set);
        char *tmpl = buf_steal_str(&b);
        int rc = policy_object_wrap(rw, slot, tmpl, NULL, NULL);
        free(tmpl);
        return rc;
    }
    char tmpl[1024];
    snprintf(tmpl, sizeof(tmpl),
             "(SELECT pgwarden_w.o FROM (SELECT pg_catalog.to_%s(pgwarden_v.t) AS o FROM (VALUES "
             "((pgwarden_arg)::pg_catalog.text)) pgwarden_v(t)) pgwarden_w WHERE "
             "pgwarden_w.o::pg_catalog.oid IN (SELECT s.o FROM %s s))",
             regtype, set);
    return policy_object_wrap(rw, slot, tmpl, NULL, NULL);
}

/* ------------------------------------------------------------------------ */
/* Row types whose input looks names up                                       */
/* ------------------------------------------------------------------------ */

/* Types whose input function looks names up: the reg* types, which the
 * policy turns into OIDs where it can (policy_object_reg.c), and aclitem
 * ('role=r/grantor' resolves both roles: "role ... does not exist" for one
 * the tenant cannot see, success for one that exists). A value of a row
 * type reads each field with its type's input, so a row type with such a
 * field (pg_type.typinput, pg_aggregate.aggfnoid are regproc; relacl is
 * aclitem[]), or with a field of such a row type, resolves names too:
 * json_populate_record(NULL::pg_type, '{"typinput": "vault.f"}') or
 * '(...)'::pg_aggregate failed for a missing function and succeeded for a
 * hidden one. Row types are found in the schema snapshot by name (either
 * of an unqualified name's schemas counts: failing towards a refusal),
 * nested ones by their column's type name, at most a few levels deep
 * (deeper is refused). policy_object_check_type_name refuses a cast to or
 * a declaration of such a type, and aclitem itself; policy_object_stmt.c
 * refuses them as Parse parameter types. */
#define TYPE_ACLITEM 1033u
#define TYPE_ACLITEM_ARRAY 1034u
#define ROWTYPE_DEPTH 4

static bool input_resolves_names(uint32_t oid)
{
    return policy_builtin_is_reg_type_oid(oid) || oid == TYPE_ACLITEM || oid == TYPE_ACLITEM_ARRAY;
}

static bool rowtype_resolves(const PgwSchema *sch, const char *schema, const char *name, int depth);

/* A column's type is a row type with such a field: by its name, as
 * format_type printed it (schema-qualified or not, quoted, [] for arrays). */
static bool column_rowtype_resolves(const PgwSchema *sch, const PgwSchemaColumn *c, int depth)
{
    char buf[256];
    const char *type = c->type;
    const char *dot = NULL;
    bool quoted = false;
    for (const char *q = type; *q != '\0'; q++) {
        if (*q == '"')
            quoted = !quoted;
        else if (*q == '.' && !quoted)
            dot = q;
    }
    const char *start = dot != NULL ? dot + 1 : type;
    size_t n = 0;
    for (const char *q = start; *q != '\0' && *q != '[' && n + 1 < sizeof(buf); q++)
        if (*q != '"')
            buf[n++] = *q;
    buf[n] = '\0';
    return rowtype_resolves(sch, NULL, buf, depth + 1);
}

static bool rowtype_resolves(const PgwSchema *sch, const char *schema, const char *name, int depth)
{
    if (name == NULL || name[0] == '\0')
        return false;
    if (depth > ROWTYPE_DEPTH)
        return true;
    for (int pass = 0; pass < 2; pass++) {
        const char *rel = pass == 0 ? name : name + 1; /* "_t": t's array type */
        if (pass == 1 && name[0] != '_')
            break;
        for (size_t i = 0; sch != NULL && i < schema_ntables(sch); i++) {
            const PgwSchemaTable *t = schema_table_at(sch, i);
            if (strcmp(t->name, rel) != 0 || (schema != NULL && strcmp(t->schema, schema) != 0))
                continue;
            for (size_t j = 0; j < t->ncolumns; j++) {
                const PgwSchemaColumn *c = &t->columns[j];
                if (input_resolves_names(c->type_oid))
                    return true;
                /* Built-in scalar types are below the first genbki OID;
                 * row types of catalogs and user types are not (but the
                 * bootstrap catalogs', which no catalog column uses). */
                if (c->type_oid >= 10000u && column_rowtype_resolves(sch, c, depth))
                    return true;
            }
        }
    }
    return false;
}

bool policy_object_rowtype_resolves_names(const PgwSchema *sch, const char *schema,
                                          const char *name)
{
    return rowtype_resolves(sch, schema, name, 0);
}

/* ------------------------------------------------------------------------ */
/* String literals the backend may read as ACL items                          */
/* ------------------------------------------------------------------------ */

/* An untyped string literal takes the type its context asks for, and the
 * backend reads it with that type's input function while it analyses the
 * statement, before any rewrite of ours runs: relacl @> 'r=r/g',
 * aclexplode('{...}'), COALESCE(relacl, '{...}'), '...' = ANY(relacl) read
 * it as aclitem (or aclitem[]), whose input looks both role names up:
 * "role ... does not exist" for a missing role, success for a hidden one.
 * The policy does not know the context's type (that would take the
 * backend's operator resolution), so it reads the text instead, the way
 * aclitem's input (acl.c, aclparse) does, and asks whether that input
 * could look a role up: [group|user] NAME, '=', privilege letters, then
 * the grantee's lookup, then '/' NAME and the grantor's. A text that fails
 * before the first lookup (most text does: 'a=b' has an invalid privilege
 * letter, 'k: v' no '=') answers alike for every role and is let through.
 * One that would look a name up is let through only when every name it
 * would look up is a predefined role (pg_*, which no user may create) or
 * PUBLIC (empty); otherwise it is refused, whatever the context turns out
 * to be, so the refusal itself depends on the text alone and tells nothing.
 * Both readings are checked: the text as one item, and as an array of
 * items (the brace syntax, quotes and backslashes as array input reads
 * them); an array the reader cannot follow is refused when it holds a '='.
 * Over-approximations fail towards a refusal: bytes above 127 count as
 * name characters and never as privilege letters. */

#define ACL_NAME_MAX 64

/* acl.c's getid: an identifier, double quotes allowed ("" for a quote),
 * surrounding white space skipped. *toolong when over NAMEDATALEN - 1
 * (the backend fails there, before any lookup). */
static const char *acl_getid(const char *s, char *name, bool *toolong)
{
    size_t len = 0;
    bool quoted = false;
    *toolong = false;
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (!quoted && !(c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                         (c >= 'A' && c <= 'Z') || c == '_' || c == '"'))
            break;
        if (c == '"') {
            if (s[1] != '"') {
                quoted = !quoted;
                continue;
            }
            s++;
        }
        if (len >= ACL_NAME_MAX - 1) {
            *toolong = true;
            break;
        }
        name[len++] = *s;
    }
    name[len] = '\0';
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    return s;
}

/* A name every tenant may see looked up: PUBLIC, or a predefined role. */
static bool acl_name_harmless(const char *name)
{
    return name[0] == '\0' || strncmp(name, "pg_", 3) == 0;
}

/* Would aclitem's input, reading s, look up a name that is not harmless? */
static bool acl_item_resolves(const char *s)
{
    char name[ACL_NAME_MAX];
    bool toolong;
    s = acl_getid(s, name, &toolong);
    if (toolong)
        return false; /* "identifier too long", before any lookup */
    if (*s != '=') {
        if (strcmp(name, "group") != 0 && strcmp(name, "user") != 0)
            return false; /* "unrecognized key word" */
        s = acl_getid(s, name, &toolong);
        if (toolong || name[0] == '\0' || *s != '=')
            return false;
    }
    for (s++; (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '*'; s++)
        if (strchr("arwdDxtXUCTcsAm*", *s) == NULL)
            return false; /* "invalid mode character" */
    if (!acl_name_harmless(name))
        return true; /* the grantee is looked up */
    if (*s != '/')
        return false;
    s = acl_getid(s + 1, name, &toolong);
    return !toolong && !acl_name_harmless(name); /* the grantor */
}

/* The text as array input: every element read as an item. -1 when the
 * text is no array this reader can follow. */
static int acl_array_resolves(const char *s)
{
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    if (*s == '[') { /* dimension decoration: [1:2]={...} */
        s = strchr(s, '=');
        if (s == NULL)
            return -1;
        s++;
        while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
            s++;
    }
    if (*s != '{')
        return 0; /* not an array: the single-item reading covers it */
    PgwBuf elem;
    buf_init(&elem);
    int depth = 0, rc = 0;
    bool quoted = false;
    for (; *s != '\0' && rc == 0; s++) {
        char c = *s;
        if (c == '\\' && s[1] != '\0') {
            buf_append_byte(&elem, (uint8_t) * ++s);
            continue;
        }
        if (quoted) {
            if (c == '"')
                quoted = false;
            else
                buf_append_byte(&elem, (uint8_t)c);
            continue;
        }
        if (c == '"') {
            quoted = true;
        } else if (c == '{') {
            depth++;
        } else if (c == '}' || c == ',') {
            char *text = buf_steal_str(&elem);
            if (acl_item_resolves(text))
                rc = 1;
            free(text);
            buf_init(&elem);
            if (c == '}' && --depth < 0)
                rc = -1;
        } else {
            buf_append_byte(&elem, (uint8_t)c);
        }
    }
    if (rc == 0 && (quoted || depth != 0))
        rc = -1;
    buf_free(&elem);
    return rc;
}

bool policy_object_acl_literal_resolves(const char *text)
{
    if (text == NULL || strchr(text, '=') == NULL)
        return false; /* both readings fail before any lookup */
    return acl_item_resolves(text) || acl_array_resolves(text) != 0;
}
