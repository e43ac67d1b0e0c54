/*
 * policy_catalog.c — the tenant's virtual catalog (see policy_catalog.h):
 * the visible sets and the template language the catalog rules are written
 * in; the rule table and the per-catalog views are policy_catalog_view.c's.
 *
 * One visible object set per tenant, written once as SQL built from the
 * configuration and evaluated by the backend at run time, so a table created
 * after the last schema snapshot is judged by the same rules:
 *   relations  the ones the config lets the tenant read, every pg_catalog and
 *              information_schema relation, free-standing composite types,
 *              the indexes of those (unless one uses a hidden column or object), the
 *              sequences they own and their TOAST tables; never temporary
 *              relations. A sequence is listed but its figures are not:
 *              every tenant writing the table advances it, so its value
 *              (pg_sequences.last_value, pg_sequence_last_value) and its
 *              block counters (pg_statio_*_sequences) read as NULL, and
 *              reading it as a relation fails as for a missing one
 *              (policy_rel.c);
 *   base schemas  pg_catalog, information_schema, pg_toast, the pinned
 *              search_path, the schemas of allowed_functions, and every
 *              schema holding a relation the config lets the tenant read
 *              (PGW_SET_NSPBASE); every rule's schema test (%n) uses it;
 *   types      those of the base schemas but the row and array types of
 *              relations that are not visible or have hidden columns; and,
 *              in any schema, the user types a visible, unhidden column or a
 *              visible function's signature uses, one step of what they are
 *              made of (element, domain base, range parts) and their arrays.
 *              A type alone never makes its schema a base schema;
 *   schemas    (pg_namespace, %N) the base schemas and the schemas of types
 *              seen through a column or function: tools join pg_type to
 *              pg_namespace, and the column's type name (format_type's
 *              schema.name) already shows it; its other objects stay hidden
 *              (types there need a use, rules check the base set);
 *   functions  pg_catalog's, information_schema's and allowed_functions;
 *   constraints, triggers, policies, statistics objects, defaults:
 *              those of visible relations that use (pg_depend) no object
 *              the tenant cannot see: no hidden column, no relation,
 *              function, type, schema or collation outside the sets, and
 *              nothing else of a user's (an operator, an operator class).
 *              Their definitions are printed by the backend
 *              (pg_get_constraintdef, pg_get_expr, pg_indexes.indexdef,
 *              information_schema.columns.column_default ...), which names
 *              everything they use, schema-qualified: a default calling
 *              nextval('ticket_seq') or a check calling hush.f(x) would
 *              otherwise name a hidden sequence or schema. Indexes are held
 *              to the same rule (%e, inside the relation set), and so are
 *              rules: a readable view over a hidden table (or column) is
 *              read as the config allows, but its definition
 *              (pg_get_viewdef, pg_views.definition) is NULL;
 *   roles      the session's own and the predefined pg_* roles;
 *   databases  the backend's current one, under the tenant's name;
 *   everything else (operators, operator classes and families, casts,
 *              collations, conversions, text search objects, extensions,
 *              transforms, languages, event triggers ...): the rows its
 *              catalog's rule shows, and each rule asks that the row's
 *              schema (where it has one) be a visible schema and that every
 *              function, type and object it names be visible (%n, %p, %y,
 *              %c). A row that names an invisible function is left out
 *              rather than shown with NULL: the catalogs declare those
 *              columns NOT NULL and tools join on them, and the policy pins
 *              every operator a statement uses to pg_catalog, so nothing the
 *              tenant could use disappears. A relation with no rule is
 *              refused, and one read as is (AS_IS) must describe no object.
 * Soundness: a catalog row can show an object only through its own columns;
 * each rule covers every column that holds a schema, a function or a type
 * (regproc columns print schema-qualified names), so a shown row names only
 * visible objects. OID columns that point at other rows of the same kind
 * (oprcom, oprnegate) show a number only: turning it into a name goes
 * through a reg* cast or a function, which checks it against the same
 * rows. The rule sets are used as the visible sets of their kinds, so the
 * catalog, the reg* types, pg_describe_object and pg_depend agree. Known
 * exceptions (README, known limits): a visible type's typinput ... name
 * its functions (pg_type's rule checks its own OID only), and pg_am is
 * read as is (access methods are superusers'). A type reached through a
 * column is shown one step deep: a domain over a domain over a hidden
 * schema's type hides the innermost one (fails closed).
 * Every virtualized catalog, and every OID or name a client hands to a
 * function or cast (policy_object.c), is checked against these sets, so a
 * hidden object reads exactly as one that does not exist, and a guessed OID
 * fed through VALUES, a CTE or a subquery finds nothing: the check runs on
 * the value at run time, whatever expression produced it.
 *
 * Each set is a CTE (pgwarden_rel, pgwarden_type, ...) that policy_object.c
 * attaches to the statement's outermost WITH; catalog views and OID wrappers
 * reference it by name, so a statement pays for each set once however many
 * catalogs and arguments use it, and the rewrite stays linear in the
 * statement's size. A statement with no WITH to attach to (EXECUTE's
 * parameters) gets the set bodies inline. Clients may not name a CTE with
 * the reserved prefix, so a set cannot be shadowed.
 *
 * A catalog view keeps exactly the relation's columns (from the backend's
 * schema snapshot), so SELECT * and every client's column list read the same
 * shape as PostgreSQL's; only values change: volume figures (reltuples,
 * relpages, relallvisible, every pg_stat and pg_statio counter, sizes) of
 * row-filtered relations are NULL, and so are those of the catalogs
 * themselves (pg_class's row count counts the hidden relations too) and
 * those about the whole shared database; column statistics (pg_stats) are
 * not shown at all (pg_class.relname's histogram would list every name); ACLs keep only the items granted to a visible role or PUBLIC;
 * owner, grantor and grantee names of invisible roles are NULL; the
 * database's name is the tenant's. System columns a statement names
 * (tableoid, ctid, xmin ...) are carried through for catalog tables.
 *
 * Template language of the rules below (arguments are SQL fragments):
 *   %{set}          the set as a FROM item (a CTE name, or its body inline)
 *   %P(ns, rel)     the config lets the tenant read ns.rel (catalogs too)
 *   %X(ns, rel)     the config hides ns.rel explicitly
 *   %Q(ns, rel)     ns.rel has a row filter
 *   %m(ns, rel)     ns.rel has a column mask
 *   %F(ns, fn)      ns.fn is a built-in or an allowed function
 *   %f(ns, spec)    the same for information_schema's specific names (fn_oid)
 *   %V(ns, rel)     a visible relation of that name exists
 *   %N(ns)          a visible schema of that name exists
 *   %Y(ns, typ)     a visible type of that name exists
 *   %R(role)        the role name is visible (or PUBLIC)
 *   %C(ns,rel,col)  the column is hidden;  %M(...) the column is masked
 *   %H(reloid, att) the column is hidden, by relation OID and number
 *   %h(cat, oid)    the object (of catalog cat) depends on a hidden column
 *   %d(cat, oid)    the object uses an object outside the visible sets (for
 *                   sets after PGW_SET_TYPE and catalog rules)
 *   %e(cat, oid)    the same for an index, inside PGW_SET_REL
 *   %K(ns, con)     a visible constraint of that name exists
 *   %O(cls,oid,sub) the object is visible;  %S(cls, oid) the same for
 *                   shared objects (databases, roles, tablespaces)
 *   %G(name)        the setting may be read
 *   %T              the tenant's database name, as a literal
 *   %D(col)         the ACL column with invisible grantees removed
 *   %n(col)         the schema OID is in the base schema set (PGW_SET_NSPBASE)
 *   %p(col)         the function OID (or regproc) is 0 or a visible function
 *   %y(col)         the type OID is 0 or a visible type
 *   %c(cat, col)    the OID is 0 or a row of catalog cat that its own rule
 *                   lets the tenant see
 *   %W(cat)         the set of cat's OIDs its rule lets the tenant see (a
 *                   FROM item, like %{set}): a kind's visible set IS its
 *                   catalog view, so a reg* value, pg_describe_object and
 *                   pg_depend agree with what the catalog shows
 *   %A(rel, natts)  relnatts less the relation's hidden columns
 * Hidden columns, masks and row filters that the config does not have
 * expand to constant false, and the sets that depend on them collapse.
 */
#include "policy_catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Conditions written from the configuration                                  */
/* ------------------------------------------------------------------------ */

typedef enum { PAIRS_HIDDEN, PAIRS_READABLE, PAIRS_FILTERED, PAIRS_MASKED } PairKind;

static bool pair_selected(const PgwTablePolicy *tp, PairKind kind)
{
    switch (kind) {
    case PAIRS_HIDDEN:
        return tp->hidden;
    case PAIRS_READABLE:
        return !tp->hidden;
    case PAIRS_FILTERED:
        return !tp->hidden && tp->row_filter != NULL && tp->row_filter[0] != '\0';
    case PAIRS_MASKED:
        return !tp->hidden && tp->nmasks > 0;
    }
    return false;
}

static bool any_pair(const PgwConfig *cfg, PairKind kind)
{
    for (size_t i = 0; i < cfg->ntables; i++)
        if (pair_selected(&cfg->tables[i], kind))
            return true;
    return false;
}

/* (ns::text, rel::text) IN (VALUES ...) over the configured tables of one
 * kind; "false" when there is none. */
static void append_pairs_cond(const PgwConfig *cfg, PgwBuf *b, const char *ns, const char *rel,
                              PairKind kind)
{
    if (!any_pair(cfg, kind)) {
        buf_append_str(b, "false");
        return;
    }
    bool first = true;
    buf_printf(b, "((%s)::pg_catalog.text, (%s)::pg_catalog.text) IN (VALUES ", ns, rel);
    for (size_t i = 0; i < cfg->ntables; i++) {
        const PgwTablePolicy *tp = &cfg->tables[i];
        if (!pair_selected(tp, kind))
            continue;
        buf_append_str(b, first ? "(" : ", (");
        policy_append_literal(b, tp->schema);
        buf_append_str(b, ", ");
        policy_append_literal(b, tp->name);
        buf_append_byte(b, ')');
        first = false;
    }
    buf_append_byte(b, ')');
}

/* %P: with default_access = deny the readable relations are the configured,
 * non-hidden ones; with allow, everything but the hidden ones. */
static void append_readable_cond(const PgwConfig *cfg, PgwBuf *b, const char *ns, const char *rel)
{
    buf_printf(b, "((%s)::pg_catalog.text IN ('pg_catalog', 'information_schema') OR ", ns);
    if (cfg->default_access == PGW_ACCESS_ALLOW) {
        buf_append_str(b, "NOT ");
        append_pairs_cond(cfg, b, ns, rel, PAIRS_HIDDEN);
    } else {
        append_pairs_cond(cfg, b, ns, rel, PAIRS_READABLE);
    }
    buf_append_byte(b, ')');
}

/* "schema.name" of an allowed function; a bare name means public. */
static void split_function(const char *f, char *schema, size_t slen, const char **name)
{
    const char *dot = strrchr(f, '.');
    if (dot == NULL) {
        snprintf(schema, slen, "public");
        *name = f;
    } else {
        snprintf(schema, slen, "%.*s", (int)(dot - f), f);
        *name = dot + 1;
    }
}

/* %F: built-ins and allowed_functions. */
static void append_callable_cond(const PgwConfig *cfg, PgwBuf *b, const char *ns, const char *fn)
{
    buf_printf(b, "((%s)::pg_catalog.text IN ('pg_catalog', 'information_schema')", ns);
    if (cfg->nallowed_functions > 0) {
        buf_printf(b, " OR ((%s)::pg_catalog.text, (%s)::pg_catalog.text) IN (VALUES ", ns, fn);
        for (size_t i = 0; i < cfg->nallowed_functions; i++) {
            char schema[128];
            const char *name;
            split_function(cfg->allowed_functions[i], schema, sizeof(schema), &name);
            buf_append_str(b, i > 0 ? ", (" : "(");
            policy_append_literal(b, schema);
            buf_append_str(b, ", ");
            policy_append_literal(b, name);
            buf_append_byte(b, ')');
        }
        buf_append_byte(b, ')');
    }
    buf_append_byte(b, ')');
}

static bool any_mask(const PgwConfig *cfg, bool hide_only)
{
    for (size_t i = 0; i < cfg->ntables; i++)
        for (size_t m = 0; m < cfg->tables[i].nmasks; m++)
            if (!hide_only || cfg->tables[i].masks[m].kind == PGW_MASK_HIDE)
                return true;
    return false;
}

/* (schema, table, column) VALUES of hidden (or all masked) columns. */
static void append_mask_values(const PgwConfig *cfg, PgwBuf *b, bool hide_only)
{
    bool first = true;
    buf_append_str(b, "(VALUES ");
    for (size_t i = 0; i < cfg->ntables; i++)
        for (size_t m = 0; m < cfg->tables[i].nmasks; m++) {
            if (hide_only && cfg->tables[i].masks[m].kind != PGW_MASK_HIDE)
                continue;
            buf_append_str(b, first ? "(" : ", (");
            policy_append_literal(b, cfg->tables[i].schema);
            buf_append_str(b, ", ");
            policy_append_literal(b, cfg->tables[i].name);
            buf_append_str(b, ", ");
            policy_append_literal(b, cfg->tables[i].masks[m].column);
            buf_append_byte(b, ')');
            first = false;
        }
    buf_append_byte(b, ')');
}

static void append_column_cond(const PgwConfig *cfg, PgwBuf *b, char args[][256], bool hide_only)
{
    if (!any_mask(cfg, hide_only)) {
        buf_append_str(b, "false");
        return;
    }
    buf_printf(b,
               "((%s)::pg_catalog.text, (%s)::pg_catalog.text, (%s)::pg_catalog.text) IN "
               "(SELECT * FROM ",
               args[0], args[1], args[2]);
    append_mask_values(cfg, b, hide_only);
    buf_append_str(b, " vm)");
}

/* ------------------------------------------------------------------------ */
/* The sets                                                                   */
/* ------------------------------------------------------------------------ */

static const char *const set_names[PGW_NSETS] = {
    [PGW_SET_NSPBASE] = "nspbase", [PGW_SET_RELBASE] = "relbase", [PGW_SET_REL] = "rel",
    [PGW_SET_UNF] = "unf",         [PGW_SET_HCOL] = "hcol",       [PGW_SET_ROWREL] = "rowrel",
    [PGW_SET_TYPE] = "type",       [PGW_SET_PROC] = "proc",       [PGW_SET_NSP] = "nsp",
    [PGW_SET_CON] = "con",         [PGW_SET_TRIG] = "trig",       [PGW_SET_ROLE] = "role",
    [PGW_SET_DB] = "db",
};

/* Bodies; each uses only sets before it (the WITH is emitted in this order). */
static const char *const set_bodies[PGW_NSETS] = {
    [PGW_SET_RELBASE] =
        "SELECT c.oid AS o FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
        "c.relnamespace WHERE n.nspname IN ('pg_catalog', 'information_schema') OR "
        "(c.relpersistence <> 't' AND ((c.relkind IN ('r', 'v', 'm', 'f', 'p', 'S') AND "
        "%P(n.nspname, c.relname)) OR (c.relkind = 'c' AND NOT %X(n.nspname, c.relname) AND "
        "n.oid IN (SELECT s.o FROM %{nspbase} s))))",
    [PGW_SET_NSPBASE] = NULL, /* written by append_set_body: it lists configured schemas */
    [PGW_SET_HCOL] = NULL, /* written by append_set_body: it is the config's list */
    [PGW_SET_REL] =
        "SELECT b.o FROM %{relbase} b UNION ALL SELECT i.indexrelid FROM pg_catalog.pg_index i "
        "WHERE i.indrelid IN (SELECT b.o FROM %{relbase} b) AND NOT %e(pg_class, i.indexrelid) "
        "UNION ALL SELECT d.objid FROM pg_catalog.pg_depend d WHERE d.classid = "
        "'pg_catalog.pg_class'::pg_catalog.regclass AND d.refclassid = "
        "'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i') AND "
        "d.refobjsubid > 0 AND d.refobjid IN (SELECT b.o FROM %{relbase} b) AND NOT "
        "%H(d.refobjid, d.refobjsubid) AND EXISTS (SELECT 1 FROM pg_catalog.pg_class s WHERE "
        "s.oid = d.objid AND s.relkind = 'S') UNION ALL SELECT c.reltoastrelid FROM "
        "pg_catalog.pg_class c WHERE c.reltoastrelid <> 0 AND c.oid IN (SELECT b.o FROM "
        "%{relbase} b) UNION ALL SELECT i.indexrelid FROM pg_catalog.pg_index i JOIN "
        "pg_catalog.pg_class c ON c.reltoastrelid = i.indrelid WHERE c.oid IN (SELECT b.o FROM "
        "%{relbase} b)",
    [PGW_SET_UNF] =
        "SELECT r.o FROM %{rel} r WHERE r.o NOT IN (SELECT c.oid FROM pg_catalog.pg_class c JOIN "
        "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('pg_catalog', "
        "'information_schema', 'pg_toast') OR c.relkind = 'S' OR %Q(n.nspname, c.relname) "
        "UNION ALL SELECT i.indexrelid FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON "
        "c.oid = i.indrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE "
        "%Q(n.nspname, c.relname))",
    [PGW_SET_ROWREL] = "SELECT r.o FROM %{rel} r WHERE r.o NOT IN (SELECT h.rel FROM %{hcol} h)",
    [PGW_SET_TYPE] = NULL, /* written by append_set_body: it depends on hidden columns */
    [PGW_SET_PROC] = "SELECT p.oid AS o FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n "
                     "ON n.oid = p.pronamespace WHERE %F(n.nspname, p.proname)",
    [PGW_SET_NSP] = NULL, /* written by append_set_body: it lists configured schemas */
    [PGW_SET_CON] =
        "SELECT k.oid AS o FROM pg_catalog.pg_constraint k WHERE (k.conrelid = 0 OR k.conrelid IN "
        "(SELECT r.o FROM %{rel} r)) AND (k.confrelid = 0 OR k.confrelid IN (SELECT r.o FROM "
        "%{rel} r)) AND (k.contypid = 0 OR k.contypid IN (SELECT y.o FROM %{type} y)) AND NOT "
        "%d(pg_constraint, k.oid)",
    /* A foreign key from a hidden table puts triggers on the visible table
     * it references (tgconstrrelid, tgconstraint name the hidden side). */
    [PGW_SET_TRIG] = "SELECT g.oid AS o FROM pg_catalog.pg_trigger g WHERE g.tgrelid IN (SELECT "
                     "r.o FROM %{rel} r) AND (g.tgconstrrelid = 0 OR g.tgconstrrelid IN (SELECT "
                     "r.o FROM %{rel} r)) AND (g.tgconstraint = 0 OR g.tgconstraint IN (SELECT "
                     "k.o FROM %{con} k)) AND NOT %d(pg_trigger, g.oid)",
    [PGW_SET_ROLE] = "SELECT a.oid AS o FROM pg_catalog.pg_roles a WHERE a.rolname = CURRENT_USER "
                     "OR a.rolname = SESSION_USER OR (a.oid < 16384 AND a.rolname ~ '^pg_')",
    [PGW_SET_DB] = "SELECT d.oid AS o FROM pg_catalog.pg_database d WHERE d.datname = "
                   "pg_catalog.current_database()",
};

/* Sets that are another one under this config: without hidden columns
 * every visible relation's row type is visible. (PGW_SET_UNF never is:
 * the catalogs' own figures count every tenant's objects.) */
static PgwSet set_alias(const PgwCatalogCtx *cc, PgwSet s)
{
    if (s == PGW_SET_ROWREL && !any_mask(cc->cfg, true))
        return PGW_SET_REL;
    return s;
}

static void expand(PgwCatalogCtx *cc, PgwBuf *b, const char *tmpl);

/* OIDs below FirstNormalObjectId (16384) belong to the objects initdb made:
 * all in pg_catalog and information_schema (the counter never wraps below
 * it), and every rule shows them, as does every set of functions, types
 * and rule-checked objects. The function, type and object tests (%p, %y,
 * %c, the %W branches of %O) answer them without building a set, and the
 * schema test (%n) pg_catalog: the same answer, and a catalog that holds
 * only built-ins (the usual pg_collation, pg_operator, pg_cast ...) costs
 * no set at all. 0 (no object) is below it too. */
#define FIRST_NORMAL_OID "16384::pg_catalog.oid"
#define BUILTIN_NSP "11::pg_catalog.oid" /* pg_catalog */
static void append_rule_set(PgwCatalogCtx *cc, PgwBuf *b, const char *catalog);

static void append_set_body(PgwCatalogCtx *cc, PgwBuf *b, PgwSet s)
{
    if (s == PGW_SET_HCOL) {
        buf_append_str(b,
                       "SELECT a.attrelid AS rel, a.attnum AS att FROM pg_catalog.pg_attribute a "
                       "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN "
                       "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE "
                       "(n.nspname::pg_catalog.text, c.relname::pg_catalog.text, "
                       "a.attname::pg_catalog.text) IN (SELECT * FROM ");
        append_mask_values(cc->cfg, b, true);
        buf_append_str(b, " vm)");
        return;
    }
    if (s == PGW_SET_NSPBASE) {
        /* A schema holding only types is never a base schema. */
        buf_append_str(b, "SELECT n.oid AS o FROM pg_catalog.pg_namespace n WHERE n.nspname IN "
                          "('pg_catalog', 'information_schema', 'pg_toast'");
        for (size_t i = 0; i < cc->nsearch_path; i++) {
            buf_append_str(b, ", ");
            policy_append_literal(b, cc->search_path[i]);
        }
        for (size_t i = 0; i < cc->cfg->nallowed_functions; i++) {
            char schema[128];
            const char *name;
            split_function(cc->cfg->allowed_functions[i], schema, sizeof(schema), &name);
            buf_append_str(b, ", ");
            policy_append_literal(b, schema);
        }
        expand(cc, b,
               ") OR n.oid IN (SELECT c.relnamespace FROM pg_catalog.pg_class c JOIN "
               "pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace WHERE c.relpersistence <> "
               "'t' AND c.relkind IN ('r', 'v', 'm', 'f', 'p', 'S') AND %P(cn.nspname, "
               "c.relname))");
        return;
    }
    if (s == PGW_SET_TYPE) {
        /* Types of base schemas, less the row and array types of relations
         * that are not visible or have hidden columns; then the user types a
         * visible column or a visible function's signature uses (whatever
         * their schema), with one step of what they are made of (element,
         * domain base, range subtype and multirange, the base's element)
         * and their array types. Built-ins (OID < 16384) are all in
         * pg_catalog, so the second branch reads user types only. */
        expand(
            cc, b,
            "SELECT t.oid AS o FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_type e ON "
            "e.oid = t.typelem AND e.typrelid <> 0 WHERE t.typnamespace IN (SELECT s.o FROM "
            "%{nspbase} s) AND (t.typrelid = 0 OR t.typrelid IN (SELECT w.o FROM %{rowrel} w)) "
            "AND (e.oid IS NULL OR e.typrelid IN (SELECT w.o FROM %{rowrel} w)) UNION SELECT "
            "vw.o FROM pg_catalog.pg_type u LEFT JOIN pg_catalog.pg_type ub ON ub.oid = "
            "u.typbasetype LEFT JOIN pg_catalog.pg_range ur ON ur.rngtypid = u.oid CROSS JOIN "
            "LATERAL (VALUES (u.oid), (u.typarray), (u.typelem), (u.typbasetype), "
            "(ub.typelem), (ub.typarray), (ur.rngsubtype), (ur.rngmultitypid)) vw(o) WHERE "
            "u.oid IN (SELECT a.atttypid FROM pg_catalog.pg_attribute a WHERE a.attrelid >= " FIRST_NORMAL_OID
            " AND a.attrelid IN (SELECT r.o FROM %{relbase} r) AND a.attnum > 0 "
            "AND NOT a.attisdropped AND a.atttypid >= " FIRST_NORMAL_OID " AND NOT "
            "%H(a.attrelid, a.attnum) UNION ALL SELECT vt.o FROM pg_catalog.pg_proc p JOIN "
            "pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace CROSS JOIN LATERAL "
            "pg_catalog.unnest(p.prorettype OPERATOR(pg_catalog.||) p.proargtypes::pg_catalog.oid[] "
            "OPERATOR(pg_catalog.||) COALESCE(p.proallargtypes, "
            "'{}'::pg_catalog.oid[])) vt(o) WHERE p.oid >= " FIRST_NORMAL_OID
            " AND %F(pn.nspname, p.proname)) AND vw.o >= " FIRST_NORMAL_OID);
        if (any_mask(cc->cfg, true))
            /* A row type carries every column of its relation. */
            expand(cc, b,
                   " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type vx LEFT JOIN "
                   "pg_catalog.pg_type vxe ON vxe.oid = vx.typelem WHERE vx.oid = vw.o AND "
                   "(vx.typrelid IN (SELECT h.rel FROM %{hcol} h) OR vxe.typrelid IN (SELECT "
                   "h.rel FROM %{hcol} h)))");
        return;
    }
    if (s == PGW_SET_NSP) {
        /* pg_namespace: the base schemas and visible types' (see the top). */
        expand(cc, b,
               "SELECT s.o FROM %{nspbase} s UNION SELECT t.typnamespace FROM "
               "pg_catalog.pg_type t WHERE t.oid >= " FIRST_NORMAL_OID " AND t.oid IN (SELECT "
               "y.o FROM %{type} y)");
        return;
    }
    expand(cc, b, set_bodies[s]);
}

/* Catalogs whose rule is used as a set (%W) often: each is a CTE of its
 * own like the sets above, so a statement pays for it once however many
 * objects check against it (pg_depend's two %O would otherwise repeat every
 * branch's rule). Ordered so each rule uses only sets and rules before it. */
static const char *const rule_sets[] = {
    "pg_language",      "pg_collation", "pg_operator", "pg_opfamily",   "pg_opclass",
    "pg_amop",          "pg_amproc",    "pg_cast",     "pg_conversion", "pg_ts_parser",
    "pg_ts_template",   "pg_ts_config", "pg_ts_dict",  "pg_extension",  "pg_foreign_data_wrapper",
    "pg_event_trigger", "pg_transform",
};
#define NRULE_SETS (sizeof(rule_sets) / sizeof(rule_sets[0]))
#define SET_BIT(s) ((uint64_t)1 << (s))

static int rule_set_index(const char *catalog)
{
    for (size_t i = 0; i < NRULE_SETS; i++)
        if (strcmp(rule_sets[i], catalog) == 0)
            return PGW_NSETS + (int)i;
    return -1;
}

static void append_rule_set_body(PgwCatalogCtx *cc, PgwBuf *b, const char *catalog);

/* The body of set s: a PgwSet or a rule set. */
static void append_any_set_body(PgwCatalogCtx *cc, PgwBuf *b, int s)
{
    if (s < PGW_NSETS)
        append_set_body(cc, b, (PgwSet)s);
    else
        append_rule_set_body(cc, b, rule_sets[s - PGW_NSETS]);
}

static void append_set_ref(PgwCatalogCtx *cc, PgwBuf *b, PgwSet s)
{
    s = set_alias(cc, s);
    cc->used |= SET_BIT(s);
    if (cc->inline_sets) {
        buf_append_byte(b, '(');
        append_set_body(cc, b, s);
        buf_append_byte(b, ')');
    } else {
        buf_printf(b, PGW_CATALOG_RESERVED_PREFIX "%s", set_names[s]);
    }
}

void policy_catalog_append_with(PgwCatalogCtx *cc, PgwBuf *b)
{
    if (cc->used == 0 || cc->inline_sets)
        return;
    /* Close over dependencies: expanding a body marks the sets it uses,
     * which always come before it (rule sets after the PgwSets). */
    int nsets = PGW_NSETS + (int)NRULE_SETS;
    PgwBuf scratch;
    buf_init(&scratch);
    for (int s = nsets - 1; s >= 0; s--)
        if (cc->used & SET_BIT(s)) {
            buf_reset(&scratch);
            append_any_set_body(cc, &scratch, s);
        }
    buf_free(&scratch);
    bool first = true;
    for (int s = 0; s < nsets; s++) {
        if (!(cc->used & SET_BIT(s)))
            continue;
        if (s < PGW_NSETS)
            buf_printf(b, "%s" PGW_CATALOG_RESERVED_PREFIX "%s AS (", first ? "WITH " : ", ",
                       set_names[s]);
        else
            buf_printf(b, "%s" PGW_CATALOG_RESERVED_PREFIX "r_%s AS (", first ? "WITH " : ", ",
                       rule_sets[s - PGW_NSETS]);
        append_any_set_body(cc, b, s);
        buf_append_byte(b, ')');
        first = false;
    }
    buf_append_str(b, " SELECT 1");
}

/* ------------------------------------------------------------------------ */
/* The template expander                                                      */
/* ------------------------------------------------------------------------ */

#define MAX_ARGS 4

/* Split "(a, f(b, c), d)" at top-level commas; returns the text after the
 * closing parenthesis. */
static const char *placeholder_args(const char *p, char args[MAX_ARGS][256], int *nargs)
{
    *nargs = 0;
    if (*p != '(')
        return p;
    p++;
    int depth = 0;
    size_t n = 0;
    while (*p != '\0') {
        if (depth == 0 && (*p == ',' || *p == ')')) {
            if (*nargs < MAX_ARGS) {
                while (n > 0 && args[*nargs][n - 1] == ' ')
                    n--;
                args[*nargs][n] = '\0';
                (*nargs)++;
            }
            n = 0;
            if (*p++ == ')')
                return p;
            while (*p == ' ')
                p++;
            continue;
        }
        if (*p == '(')
            depth++;
        else if (*p == ')')
            depth--;
        if (*nargs < MAX_ARGS && n < 255)
            args[*nargs][n++] = *p;
        p++;
    }
    return p;
}

static PgwSet set_by_name(const char *name, size_t len)
{
    for (int s = 0; s < PGW_NSETS; s++)
        if (strlen(set_names[s]) == len && strncmp(set_names[s], name, len) == 0)
            return (PgwSet)s;
    return PGW_NSETS;
}

/* The generic object predicate: one branch per catalog whose objects
 * belong to a tenant-visible set; the catalogs that have no set of their own
 * are checked by their catalog rule (%W), so an object is described, or
 * listed as a dependency, exactly when its catalog row is shown; anything
 * else (a class with no rule) is not visible. */
static const char object_cond[] =
    "(CASE (%1) "
    "WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN (%2) IN (SELECT vs.o FROM %{rel} vs) "
    "AND NOT %H(%2, %3) "
    "WHEN 'pg_catalog.pg_type'::pg_catalog.regclass THEN (%2) IN (SELECT vs.o FROM %{type} vs) "
    "WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN (%2) IN (SELECT vs.o FROM %{proc} vs) "
    "WHEN 'pg_catalog.pg_namespace'::pg_catalog.regclass THEN (%2) IN (SELECT vs.o FROM %{nsp} "
    "vs) "
    "WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN (%2) IN (SELECT vs.o FROM %{con} "
    "vs) "
    "WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN (%2) IN (SELECT vs.o FROM %{trig} vs) "
    "WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN (%2) IN (SELECT vw.oid FROM "
    "pg_catalog.pg_rewrite vw WHERE vw.ev_class IN (SELECT vs.o FROM %{rel} vs) AND NOT "
    "%d(pg_rewrite, vw.oid)) "
    "WHEN 'pg_catalog.pg_attrdef'::pg_catalog.regclass THEN (%2) IN (SELECT vd.oid FROM "
    "pg_catalog.pg_attrdef vd WHERE vd.adrelid IN (SELECT vs.o FROM %{rel} vs) AND NOT "
    "%H(vd.adrelid, vd.adnum) AND NOT %d(pg_attrdef, vd.oid)) "
    "WHEN 'pg_catalog.pg_policy'::pg_catalog.regclass THEN (%2) IN (SELECT vp.oid FROM "
    "pg_catalog.pg_policy vp WHERE vp.polrelid IN (SELECT vs.o FROM %{rel} vs) AND NOT "
    "%d(pg_policy, vp.oid)) "
    "WHEN 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass THEN (%2) IN (SELECT vx.oid FROM "
    "pg_catalog.pg_statistic_ext vx WHERE vx.stxrelid IN (SELECT vs.o FROM %{rel} vs) AND NOT "
    "%d(pg_statistic_ext, vx.oid)) "
    "WHEN 'pg_catalog.pg_enum'::pg_catalog.regclass THEN (%2) IN (SELECT ve.oid FROM "
    "pg_catalog.pg_enum ve WHERE ve.enumtypid IN (SELECT vs.o FROM %{type} vs)) "
    "WHEN 'pg_catalog.pg_publication_rel'::pg_catalog.regclass THEN (%2) IN (SELECT vr.oid FROM "
    "pg_catalog.pg_publication_rel vr WHERE vr.prrelid IN (SELECT vs.o FROM %{rel} vs)) "
    "WHEN 'pg_catalog.pg_database'::pg_catalog.regclass THEN (%2) IN (SELECT vs.o FROM %{db} vs) "
    "WHEN 'pg_catalog.pg_authid'::pg_catalog.regclass THEN (%2) IN (SELECT vs.o FROM %{role} vs) "
    "WHEN 'pg_catalog.pg_am'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_am) vs)) "
    "WHEN 'pg_catalog.pg_amop'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_amop) vs)) "
    "WHEN 'pg_catalog.pg_amproc'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_amproc) vs)) "
    "WHEN 'pg_catalog.pg_cast'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_cast) vs)) "
    "WHEN 'pg_catalog.pg_collation'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_collation) vs)) "
    "WHEN 'pg_catalog.pg_conversion'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_conversion) vs)) "
    "WHEN 'pg_catalog.pg_language'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_language) vs)) "
    "WHEN 'pg_catalog.pg_opclass'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_opclass) vs)) "
    "WHEN 'pg_catalog.pg_operator'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_operator) vs)) "
    "WHEN 'pg_catalog.pg_opfamily'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_opfamily) vs)) "
    "WHEN 'pg_catalog.pg_ts_config'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_ts_config) vs)) "
    "WHEN 'pg_catalog.pg_ts_dict'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_ts_dict) vs)) "
    "WHEN 'pg_catalog.pg_ts_parser'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_ts_parser) vs)) "
    "WHEN 'pg_catalog.pg_ts_template'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_ts_template) vs)) "
    "WHEN 'pg_catalog.pg_extension'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_extension) vs)) "
    "WHEN 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_foreign_data_wrapper) vs)) "
    "WHEN 'pg_catalog.pg_foreign_server'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_foreign_server) vs)) "
    "WHEN 'pg_catalog.pg_event_trigger'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_event_trigger) vs)) "
    "WHEN 'pg_catalog.pg_publication'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_publication) vs)) "
    "WHEN 'pg_catalog.pg_transform'::pg_catalog.regclass THEN ((%2) < " FIRST_NORMAL_OID
    " OR (%2) IN (SELECT vs.o FROM %W(pg_transform) vs)) "
    "ELSE (%1) = 'pg_catalog.pg_tablespace'::pg_catalog.regclass END)";

static const char shared_cond[] =
    "(CASE (%1) "
    "WHEN 'pg_catalog.pg_database'::pg_catalog.regclass THEN (%2) IN (SELECT vs.o FROM %{db} vs) "
    "WHEN 'pg_catalog.pg_authid'::pg_catalog.regclass THEN (%2) IN (SELECT vs.o FROM %{role} vs) "
    "ELSE (%1) = 'pg_catalog.pg_tablespace'::pg_catalog.regclass END)";

/* Expand a template whose %1..%4 stand for args. */
static void expand_with_args(PgwCatalogCtx *cc, PgwBuf *b, const char *tmpl, char args[][256],
                             int nargs)
{
    PgwBuf t;
    buf_init(&t);
    for (const char *p = tmpl; *p != '\0'; p++) {
        if (*p == '%' && p[1] >= '1' && p[1] <= '0' + MAX_ARGS) {
            int i = p[1] - '1';
            buf_append_str(&t, i < nargs ? args[i] : "NULL");
            p++;
        } else {
            buf_append_byte(&t, (uint8_t)*p);
        }
    }
    char *s = buf_steal_str(&t);
    expand(cc, b, s);
    free(s);
}

static void expand(PgwCatalogCtx *cc, PgwBuf *b, const char *tmpl)
{
    const PgwConfig *cfg = cc->cfg;
    for (const char *p = tmpl; *p != '\0';) {
        if (*p != '%' || p[1] == '\0') {
            buf_append_byte(b, (uint8_t)*p++);
            continue;
        }
        char kind = p[1];
        if (kind == '%') {
            buf_append_byte(b, '%');
            p += 2;
            continue;
        }
        if (kind == '{') {
            const char *end = strchr(p + 2, '}');
            PgwSet s = end != NULL ? set_by_name(p + 2, (size_t)(end - p - 2)) : PGW_NSETS;
            if (s == PGW_NSETS) {
                buf_append_byte(b, (uint8_t)*p++);
                continue;
            }
            append_set_ref(cc, b, s);
            p = end + 1;
            continue;
        }
        if (kind == 'T') {
            policy_append_literal(b, cc->tenant != NULL ? cc->tenant : "");
            buf_append_str(b, "::pg_catalog.name");
            p += 2;
            continue;
        }
        char args[MAX_ARGS][256];
        int n;
        const char *next = placeholder_args(p + 2, args, &n);
        switch (kind) {
        case 'P':
            if (n == 2)
                append_readable_cond(cfg, b, args[0], args[1]);
            break;
        case 'X':
            if (n == 2)
                append_pairs_cond(cfg, b, args[0], args[1], PAIRS_HIDDEN);
            break;
        case 'Q':
            if (n == 2)
                append_pairs_cond(cfg, b, args[0], args[1], PAIRS_FILTERED);
            break;
        case 'm':
            if (n == 2)
                append_pairs_cond(cfg, b, args[0], args[1], PAIRS_MASKED);
            break;
        case 'F':
            if (n == 2)
                append_callable_cond(cfg, b, args[0], args[1]);
            break;
        case 'f':
            if (n == 2)
                expand_with_args(cc, b,
                                 "((%1)::pg_catalog.text IN ('pg_catalog', 'information_schema') "
                                 "OR ((%1)::pg_catalog.name, (%2)::pg_catalog.text) IN (SELECT "
                                 "vn.nspname, vp.proname::pg_catalog.text || '_' || "
                                 "vp.oid::pg_catalog.text FROM pg_catalog.pg_proc vp JOIN "
                                 "pg_catalog.pg_namespace vn ON vn.oid = vp.pronamespace WHERE "
                                 "vp.oid IN (SELECT vs.o FROM %{proc} vs)))",
                                 args, n);
            break;
        case 'V':
            if (n == 2)
                expand_with_args(cc, b,
                                 "((%1)::pg_catalog.name, (%2)::pg_catalog.name) IN (SELECT "
                                 "vn.nspname, vc.relname FROM pg_catalog.pg_class vc JOIN "
                                 "pg_catalog.pg_namespace vn ON vn.oid = vc.relnamespace WHERE "
                                 "vc.oid IN (SELECT vs.o FROM %{rel} vs))",
                                 args, n);
            break;
        case 'Y':
            if (n == 2)
                expand_with_args(cc, b,
                                 "((%1)::pg_catalog.name, (%2)::pg_catalog.name) IN (SELECT "
                                 "vn.nspname, vt.typname FROM pg_catalog.pg_type vt JOIN "
                                 "pg_catalog.pg_namespace vn ON vn.oid = vt.typnamespace WHERE "
                                 "vt.oid IN (SELECT vs.o FROM %{type} vs))",
                                 args, n);
            break;
        case 'N':
            if (n == 1)
                expand_with_args(cc, b,
                                 "(%1) IN (SELECT vn.nspname FROM pg_catalog.pg_namespace vn "
                                 "WHERE vn.oid IN (SELECT vs.o FROM %{nsp} vs))",
                                 args, n);
            break;
        case 'R':
            if (n == 1)
                expand_with_args(cc, b,
                                 "((%1) IN ('PUBLIC', 'public') OR (%1) IN (SELECT va.rolname "
                                 "FROM pg_catalog.pg_roles va WHERE va.oid IN (SELECT vs.o FROM "
                                 "%{role} vs)))",
                                 args, n);
            break;
        case 'C':
        case 'M':
            if (n == 3)
                append_column_cond(cfg, b, args, kind == 'C');
            break;
        case 'H':
            if (n != 2)
                break;
            if (!any_mask(cfg, true))
                buf_append_str(b, "false");
            else
                expand_with_args(cc, b, "((%1), (%2)) IN (SELECT vh.rel, vh.att FROM %{hcol} vh)",
                                 args, n);
            break;
        case 'h':
            if (n != 2)
                break;
            if (!any_mask(cfg, true))
                buf_append_str(b, "false");
            else
                expand_with_args(
                    cc, b,
                    "(%2) IN (SELECT vd.objid FROM pg_catalog.pg_depend vd JOIN %{hcol} vh ON "
                    "vh.rel = vd.refobjid AND vh.att = vd.refobjsubid WHERE vd.classid = "
                    "'pg_catalog.%1'::pg_catalog.regclass AND vd.refclassid = "
                    "'pg_catalog.pg_class'::pg_catalog.regclass)",
                    args, n);
            break;
        case 'd':
            /* The object uses (pg_depend) a user object outside the visible
             * sets: a column hidden or of an invisible relation, an
             * invisible function, type, schema or collation, or anything of
             * another kind (operators, operator classes ... in a user
             * schema): its definition would print that object's name.
             * Collations by pg_collation's rule, inline (a %W set is
             * defined after the sets that use %d). A
             * constraint it depends on is not checked here: a trigger's is
             * checked by PGW_SET_TRIG itself (tgconstraint), a partition's
             * constraint depends on its parent's, whose text is its own;
             * an extension's objects depend on it (membership, not text).
             * Only for sets after PGW_SET_TYPE and for catalog rules. */
            if (n == 2)
                expand_with_args(
                    cc, b,
                    "(%2) IN (SELECT vd.objid FROM pg_catalog.pg_depend vd WHERE vd.classid = "
                    "'pg_catalog.%1'::pg_catalog.regclass AND vd.refobjid >= " FIRST_NORMAL_OID
                    " AND (CASE vd.refclassid WHEN 'pg_catalog.pg_class'::pg_catalog.regclass "
                    "THEN vd.refobjid IN (SELECT vs.o FROM %{rel} vs) AND NOT "
                    "%H(vd.refobjid, vd.refobjsubid) WHEN "
                    "'pg_catalog.pg_proc'::pg_catalog.regclass THEN vd.refobjid IN (SELECT vs.o "
                    "FROM %{proc} vs) WHEN 'pg_catalog.pg_type'::pg_catalog.regclass THEN "
                    "vd.refobjid IN (SELECT vs.o FROM %{type} vs) WHEN "
                    "'pg_catalog.pg_namespace'::pg_catalog.regclass THEN vd.refobjid IN (SELECT "
                    "vs.o FROM %{nsp} vs) WHEN 'pg_catalog.pg_collation'::pg_catalog.regclass "
                    "THEN vd.refobjid IN (SELECT vl.oid FROM pg_catalog.pg_collation vl WHERE "
                    "%n(vl.collnamespace)) WHEN "
                    "'pg_catalog.pg_constraint'::pg_catalog.regclass THEN true WHEN "
                    "'pg_catalog.pg_extension'::pg_catalog.regclass THEN true ELSE false END) "
                    "IS NOT TRUE)",
                    args, n);
            break;
        case 'e':
            /* %d for an index, inside PGW_SET_REL (which cannot use the sets
             * after it): the index uses a user relation outside relbase, a
             * hidden column, a function the config does not allow (the
             * function set's own rule, inline), or any other user object;
             * a partition's index may depend on its parent's (P, S), whose
             * name its definition does not print. */
            if (n == 2)
                expand_with_args(
                    cc, b,
                    "(%2) IN (SELECT vd.objid FROM pg_catalog.pg_depend vd WHERE vd.classid = "
                    "'pg_catalog.%1'::pg_catalog.regclass AND vd.refobjid >= " FIRST_NORMAL_OID
                    " AND (CASE vd.refclassid WHEN 'pg_catalog.pg_class'::pg_catalog.regclass "
                    "THEN vd.deptype IN ('P', 'S') OR vd.refobjid IN (SELECT vs.o FROM "
                    "%{relbase} vs) AND NOT "
                    "%H(vd.refobjid, vd.refobjsubid) WHEN "
                    "'pg_catalog.pg_proc'::pg_catalog.regclass THEN vd.refobjid IN (SELECT "
                    "vp.oid FROM pg_catalog.pg_proc vp JOIN pg_catalog.pg_namespace vpn ON "
                    "vpn.oid = vp.pronamespace WHERE %F(vpn.nspname, vp.proname)) WHEN "
                    "'pg_catalog.pg_constraint'::pg_catalog.regclass THEN true ELSE false END) "
                    "IS NOT TRUE)",
                    args, n);
            break;
        case 'K':
            if (n == 2)
                expand_with_args(
                    cc, b,
                    "(((%1)::pg_catalog.name, (%2)::pg_catalog.name) IN (SELECT vn.nspname, "
                    "vk.conname FROM pg_catalog.pg_constraint vk JOIN pg_catalog.pg_namespace vn "
                    "ON vn.oid = vk.connamespace WHERE vk.oid IN (SELECT vs.o FROM %{con} vs)) OR "
                    "((%2)::pg_catalog.text ~ '^[0-9]+_[0-9]+_[0-9]+_not_null$' AND "
                    "pg_catalog.split_part((%2)::pg_catalog.text, '_', 2)::pg_catalog.oid IN "
                    "(SELECT vs.o FROM %{rel} vs) AND NOT "
                    "%H(pg_catalog.split_part((%2)::pg_catalog.text, '_', 2)::pg_catalog.oid, "
                    "pg_catalog.split_part((%2)::pg_catalog.text, '_', 3)::pg_catalog.int2)))",
                    args, n);
            break;
        case 'n':
            if (n == 1)
                expand_with_args(
                    cc, b, "((%1) = " BUILTIN_NSP " OR (%1) IN (SELECT vs.o FROM %{nspbase} vs))",
                    args, n);
            break;
        case 'p':
            if (n == 1)
                expand_with_args(cc, b,
                                 "((%1)::pg_catalog.oid < " FIRST_NORMAL_OID " OR "
                                 "(%1)::pg_catalog.oid IN (SELECT vs.o FROM %{proc} vs))",
                                 args, n);
            break;
        case 'y':
            if (n == 1)
                expand_with_args(cc, b,
                                 "((%1)::pg_catalog.oid < " FIRST_NORMAL_OID " OR "
                                 "(%1)::pg_catalog.oid IN (SELECT vs.o FROM %{type} vs))",
                                 args, n);
            break;
        case 'c':
            if (n == 2) {
                buf_printf(b,
                           "((%s)::pg_catalog.oid < " FIRST_NORMAL_OID " OR (%s)::pg_catalog.oid "
                           "IN (SELECT vr.o FROM ",
                           args[1], args[1]);
                append_rule_set(cc, b, args[0]);
                buf_append_str(b, " vr))");
            }
            break;
        case 'W':
            if (n == 1)
                append_rule_set(cc, b, args[0]);
            break;
        case 'A':
            if (n != 2)
                break;
            if (!any_mask(cfg, true))
                buf_printf(b, "(%s)", args[1]);
            else
                expand_with_args(cc, b,
                                 "((%2) - (SELECT pg_catalog.count(*) FROM %{hcol} vh WHERE "
                                 "vh.rel = (%1) AND vh.att > 0))",
                                 args, n);
            break;
        case 'O':
            if (n == 3)
                expand_with_args(cc, b, object_cond, args, n);
            break;
        case 'S':
            if (n == 2)
                expand_with_args(cc, b, shared_cond, args, n);
            break;
        case 'G':
            if (n == 1) {
                buf_printf(b, "pg_catalog.lower((%s)::pg_catalog.text) NOT IN (", args[0]);
                policy_setting_append_hidden(b);
                buf_append_byte(b, ')');
            }
            break;
        case 'D':
            if (n == 1)
                expand_with_args(
                    cc, b,
                    "CASE WHEN (%1) IS NULL THEN NULL ELSE COALESCE((SELECT "
                    "pg_catalog.array_agg(va.a) FROM pg_catalog.unnest(%1) va(a) WHERE EXISTS "
                    "(SELECT 1 FROM pg_catalog.aclexplode(ARRAY[va.a]) ve WHERE ve.grantee = 0 OR "
                    "ve.grantee IN (SELECT vs.o FROM %{role} vs))), '{}') END",
                    args, n);
            break;
        default:
            /* Not a placeholder: a literal '%'. */
            buf_append_byte(b, '%');
            p++;
            continue;
        }
        p = next;
    }
}

void policy_catalog_expand(PgwCatalogCtx *cc, PgwBuf *b, const char *tmpl)
{
    expand(cc, b, tmpl);
}

/* %W(cat): the OIDs of cat's rows its rule shows (a FROM item with column
 * o). A catalog readable as is shows every row; a refused or unknown one
 * none. */
static void append_rule_set_body(PgwCatalogCtx *cc, PgwBuf *b, const char *catalog)
{
    const char *filter;
    PgwCatalogAccess access = policy_catalog_rule_filter("pg_catalog", catalog, &filter);
    if (access != PGW_CATALOG_AS_IS && access != PGW_CATALOG_FILTERED) {
        buf_append_str(b, "SELECT NULL::pg_catalog.oid AS o WHERE false");
        return;
    }
    buf_printf(b, "SELECT r.oid AS o FROM pg_catalog.%s r", catalog);
    if (filter != NULL) {
        buf_append_str(b, " WHERE ");
        expand(cc, b, filter);
    }
}

static void append_rule_set(PgwCatalogCtx *cc, PgwBuf *b, const char *catalog)
{
    int s = rule_set_index(catalog);
    if (s >= 0 && !cc->inline_sets) {
        cc->used |= SET_BIT(s);
        buf_printf(b, PGW_CATALOG_RESERVED_PREFIX "r_%s", catalog);
        return;
    }
    buf_append_byte(b, '(');
    append_rule_set_body(cc, b, catalog);
    buf_append_byte(b, ')');
}
