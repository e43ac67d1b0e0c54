/*
 * policy.c — decide whether a statement may run and rewrite it so that it
 * can only see the tenant's rows and masked columns.
 *
 * Flow: libpg_query parses the text into a protobuf tree; we walk it once,
 * refusing every statement that is not a read-only query (or an allowlisted
 * SET/SHOW/transaction/cursor statement), every function outside an
 * allowlist, and every relation the tenant may not read. Each readable base
 * relation reference is replaced by a derived table
 *     (SELECT c1, ..., <mask> AS cn FROM [ONLY] s.t WHERE <row filter>) AS alias
 * so joins, subqueries, whole-row references, ORDER BY and aggregates all see
 * filtered, masked data under the names the client wrote. Replacement trees
 * are produced by parsing generated SQL (one parse for all of a statement's
 * replacements) and spliced in; the result is deparsed, parsed again and
 * compared with the tree we built, so a deparser fault fails closed.
 *
 * Leak-proof evaluation (the one subtle design point). PostgreSQL flattens a
 * simple derived table into the outer query and may then evaluate an outer
 * WHERE/ON qual on a base row *before* the row filter (quals are ordered by
 * cost). A qual that can raise an error on another tenant's row is an
 * oracle (e.g. WHERE 1/(x-42) > 0). Security barriers only exist for
 * views, so we decide per statement: when every qual that could be pushed
 * below a scan is one of an allowlist of typed shapes built from leak-proof
 * comparisons (policy_qual.c has the list and the argument), the derived
 * tables stay flattenable and `WHERE id = 5` still uses an index.
 * Otherwise every derived table of the statement, catalog views included,
 * gets OFFSET 0, which PostgreSQL treats as a fence: no pull-up and no qual
 * push-down, so the row filter runs first.
 *
 * Bounds (issue 7, class 8): the statement is parsed on a stack big enough
 * for its length, and its packed tree is measured without recursion before
 * anything else runs; deeper than max_nesting_depth is 54001
 * (policy_guard.c).
 *
 * EXPLAIN of a statement that reads a filtered or masked relation or a
 * filtered catalog is refused: its estimates come from statistics over
 * every tenant's rows, and ANALYZE shows rows removed by the filter.
 *
 * Catalogs are virtualized the same way (the rules live in
 * policy_catalog.c with the function and settings allowlists); functions
 * that take a relation by name or OID (has_table_privilege, to_regclass,
 * pg_get_viewdef ...) answer for a hidden relation as for a missing one.
 * PREPARE, DECLARE and COPY rewrite their statement exactly as if it ran
 * alone, and are refused the same way.
 *
 * This file holds the statement kinds and the driver (parse, walk each
 * statement, splice, deparse, verify). Relation resolution and replacement
 * live in policy_rel.c, expressions and the leak analysis in policy_expr.c,
 * objects named by casts and function arguments in policy_object.c (the map
 * is in policy_int.h). policy_rewrite() (the cached entry point) lives in
 * policy_cache.c.
 */
#include "policy.h"
#include "policy_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "policy_catalog.h"
#include "policy_walk.h"

int policy_refuse(Rewrite *rw, const char *sqlstate, const char *hint, const char *fmt, ...)
{
    if (rw->refused)
        return -1;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rw->refused = true;
    rw->out->decision = PGW_POLICY_REFUSE;
    snprintf(rw->out->sqlstate, sizeof(rw->out->sqlstate), "%s", sqlstate);
    rw->out->message = pgw_strdup(msg);
    rw->out->reason = pgw_strdup(msg);
    rw->out->hint = hint != NULL ? pgw_strdup(hint) : NULL;
    return -1;
}

/* Replace a protobuf string field; unset fields point at protobuf-c's static
 * empty string, which must not be freed. */
void policy_set_string(char **field, const char *value)
{
    char *copy = pgw_strdup(value); /* value may be *field itself */
    if (*field != NULL && *field != protobuf_c_empty_string)
        free(*field);
    *field = copy;
}

const char *policy_string_value(const PgQuery__Node *n)
{
    return NODE(n, STRING) ? n->string->sval : NULL;
}

/* ------------------------------------------------------------------------ */
/* Statements                                                                 */
/* ------------------------------------------------------------------------ */

static const struct {
    const char *node;
    const char *kind;
} statement_kinds[] = {
    {"create_stmt", "CREATE TABLE"},
    {"index_stmt", "CREATE INDEX"},
    {"view_stmt", "CREATE VIEW"},
    {"createdb_stmt", "CREATE DATABASE"},
    {"dropdb_stmt", "DROP DATABASE"},
    {"rule_stmt", "CREATE RULE"},
    {"create_table_as_stmt", "CREATE TABLE AS"},
    {"do_stmt", "DO"},
    {"variable_set_stmt", "SET"},
    {"rename_stmt", "ALTER ... RENAME"},
    {"copy_stmt", "COPY"},
    {"prepare_stmt", "PREPARE"},
    {"execute_stmt", "EXECUTE"},
    {"deallocate_stmt", "DEALLOCATE"},
    {"grant_stmt", "GRANT"},
    {"grant_role_stmt", "GRANT"},
    {"create_function_stmt", "CREATE FUNCTION"},
    {"vacuum_stmt", "VACUUM"},
    {"explain_stmt", "EXPLAIN"},
    {"lock_stmt", "LOCK"},
    {"notify_stmt", "NOTIFY"},
    {"listen_stmt", "LISTEN"},
    {"unlisten_stmt", "UNLISTEN"},
    {"call_stmt", "CALL"},
    {"discard_stmt", "DISCARD"},
    {"load_stmt", "LOAD"},
    {"check_point_stmt", "CHECKPOINT"},
    {"cluster_stmt", "CLUSTER"},
    {"reindex_stmt", "REINDEX"},
    {"truncate_stmt", "TRUNCATE"},
    {"merge_stmt", "MERGE"},
    {"insert_stmt", "INSERT"},
    {"update_stmt", "UPDATE"},
    {"delete_stmt", "DELETE"},
    {"alter_system_stmt", "ALTER SYSTEM"},
    {"comment_stmt", "COMMENT"},
    {"refresh_mat_view_stmt", "REFRESH MATERIALIZED VIEW"},
};

/* "delete_stmt" -> "DELETE", "alter_table_stmt" -> "ALTER TABLE". */
static void statement_kind(const PgQuery__Node *n, char *out, size_t outlen)
{
    const char *name = policy_walk_node_name(n);
    for (size_t i = 0; i < PGW_ARRAY_LEN(statement_kinds); i++)
        if (strcmp(statement_kinds[i].node, name) == 0) {
            snprintf(out, outlen, "%s", statement_kinds[i].kind);
            return;
        }
    size_t len = strlen(name);
    if (len > 5 && strcmp(name + len - 5, "_stmt") == 0)
        len -= 5;
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < outlen; i++)
        out[o++] = name[i] == '_' ? ' ' : (char)toupper((unsigned char)name[i]);
    out[o] = '\0';
}

static int refuse_kind(Rewrite *rw, const char *kind)
{
    return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                         "pgwarden lets through read-only queries (SELECT, VALUES, TABLE, WITH), "
                         "cursors, COPY ... TO STDOUT, SHOW, allowed SET and transaction control.",
                         "pgwarden: only read-only queries are allowed: %s is refused", kind);
}

/* The names of the parameter probe's statements (policy_param.c) are
 * pgwarden's: a probe that fails half-way (a statement_timeout, a cancel)
 * leaves its PREPARE behind on the session, which in transaction pooling
 * another client of the tenant may get next. No client names one, so none
 * can run, replace or drop another client's statement (pg_prepared_statements
 * leaves them out too, policy_catalog_view.c). */
static int reserved_statement_name(Rewrite *rw, const char *name)
{
    if (name == NULL || strncmp(name, PGW_PARAM_PROBE_PREFIX, strlen(PGW_PARAM_PROBE_PREFIX)) != 0)
        return 0;
    return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, "Name the statement otherwise.",
                         "pgwarden: prepared statement names beginning with \"%s\" are reserved",
                         PGW_PARAM_PROBE_PREFIX);
}

/* Turn COPY t [(cols)] TO STDOUT into COPY (SELECT cols FROM t) TO STDOUT so
 * the relation is rewritten like any other. */
static int copy_relation_to_query(Rewrite *rw, PgQuery__CopyStmt *cs)
{
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, "SELECT ");
    if (cs->n_attlist == 0)
        buf_append_byte(&b, '*');
    for (size_t i = 0; i < cs->n_attlist; i++) {
        const char *col = policy_string_value(cs->attlist[i]);
        if (i > 0)
            buf_append_str(&b, ", ");
        policy_append_ident(&b, col != NULL ? col : "");
    }
    buf_append_str(&b, " FROM ");
    if (cs->relation->schemaname[0] != '\0') {
        policy_append_ident(&b, cs->relation->schemaname);
        buf_append_byte(&b, '.');
    }
    policy_append_ident(&b, cs->relation->relname);
    char *sql = buf_steal_str(&b);
    PgQueryProtobufParseResult pr = pg_query_parse_protobuf(sql);
    free(sql);
    PgQuery__ParseResult *tree = NULL;
    int rc = -1;
    if (pr.error != NULL)
        goto done;
    tree = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
                                          (const uint8_t *)pr.parse_tree.data);
    if (tree == NULL || tree->n_stmts != 1)
        goto done;
    cs->query = tree->stmts[0]->stmt;
    tree->stmts[0]->stmt = NULL;
    pg_query__range_var__free_unpacked(cs->relation, NULL);
    cs->relation = NULL;
    for (size_t i = 0; i < cs->n_attlist; i++)
        pg_query__node__free_unpacked(cs->attlist[i], NULL);
    free(cs->attlist);
    cs->attlist = NULL;
    cs->n_attlist = 0;
    rc = 0;
done:
    if (tree != NULL)
        pg_query__parse_result__free_unpacked(tree, NULL);
    pg_query_free_protobuf_parse_result(pr);
    if (rc < 0)
        return policy_refuse(rw, SQLSTATE_SYNTAX_ERROR, NULL, "pgwarden: cannot rewrite this COPY");
    return 0;
}

/* The value of a SET argument or set_config() constant as text. */
static bool constant_text(const PgQuery__Node *n, char *out, size_t outlen)
{
    if (NODE(n, TYPE_CAST))
        n = n->type_cast->arg;
    if (!NODE(n, A_CONST) || n->a_const->isnull)
        return false;
    const PgQuery__AConst *c = n->a_const;
    switch (c->val_case) {
    case PG_QUERY__A__CONST__VAL_SVAL:
        snprintf(out, outlen, "%s", c->sval->sval);
        return true;
    case PG_QUERY__A__CONST__VAL_IVAL:
        snprintf(out, outlen, "%d", c->ival->ival);
        return true;
    case PG_QUERY__A__CONST__VAL_FVAL:
        snprintf(out, outlen, "%s", c->fval->fval);
        return true;
    case PG_QUERY__A__CONST__VAL_BOOLVAL:
        snprintf(out, outlen, "%s", c->boolval->boolval ? "on" : "off");
        return true;
    default:
        return false;
    }
}

/* May the client set name to value (NULL: RESET / DEFAULT)? */
static int check_setting(Rewrite *rw, const char *name, const char *value)
{
    switch (policy_setting_verdict(rw->ctx->cfg, name, value)) {
    case PGW_SETTING_OK:
        return 0;
    case PGW_SETTING_READ_ONLY:
        return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                             "pgwarden sessions are read-only.",
                             "pgwarden: SET %s to %s is not allowed", name, value);
    case PGW_SETTING_TIMEOUT:
        return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                             "pgwarden: statement_timeout must be between 1 ms and the configured "
                             "%d ms",
                             rw->ctx->cfg->statement_timeout_ms);
    case PGW_SETTING_ENCODING:
        return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                             "Use UTF8 or another ASCII-safe encoding.",
                             "pgwarden: client_encoding %s is not allowed", value);
    default:
        return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                             "pgwarden pins this setting for every session.",
                             "pgwarden: SET %s is not allowed", name);
    }
}

/* Options of SET TRANSACTION, SET SESSION CHARACTERISTICS AS TRANSACTION,
 * BEGIN and START TRANSACTION: isolation levels and DEFERRABLE are fine,
 * READ WRITE is not. */
static int check_transaction_options(Rewrite *rw, PgQuery__Node **opts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!NODE(opts[i], DEF_ELEM))
            return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                                 "pgwarden: this transaction option is not allowed");
        const PgQuery__DefElem *d = opts[i]->def_elem;
        char value[64] = "";
        if (d->arg != NULL && !constant_text(d->arg, value, sizeof(value)))
            return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                                 "pgwarden: this transaction option is not allowed");
        if (strcmp(d->defname, "transaction_read_only") == 0 && !policy_setting_is_on(value))
            return policy_refuse(
                rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, "pgwarden sessions are read-only.",
                "pgwarden: only read-only queries are allowed: READ WRITE is refused");
        if (strcmp(d->defname, "transaction_isolation") != 0 &&
            strcmp(d->defname, "transaction_read_only") != 0 &&
            strcmp(d->defname, "transaction_deferrable") != 0)
            return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                                 "pgwarden: transaction option %s is not allowed", d->defname);
    }
    return 0;
}

static int check_set(Rewrite *rw, PgQuery__VariableSetStmt *vs)
{
    char value[256] = "";
    switch (vs->kind) {
    case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET_ALL:
        /* Pinned settings are startup options: RESET ALL returns to them. */
        return 0;
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_MULTI:
        if (strcmp(vs->name, "TRANSACTION") == 0 ||
            strcmp(vs->name, "SESSION CHARACTERISTICS") == 0)
            return check_transaction_options(rw, vs->args, vs->n_args);
        return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                             "pgwarden: SET %s is not allowed", vs->name);
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_VALUE:
        /* A list (SET datestyle = iso, mdy) is checked item by item. */
        if (vs->n_args == 0)
            return check_setting(rw, vs->name, NULL);
        for (size_t i = 0; i < vs->n_args; i++) {
            if (!constant_text(vs->args[i], value, sizeof(value)))
                return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                                     "pgwarden: SET %s to this value is not allowed", vs->name);
            if (check_setting(rw, vs->name, value) < 0)
                return -1;
        }
        return 0;
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_CURRENT:
        return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                             "pgwarden: SET %s FROM CURRENT is not allowed", vs->name);
    default: /* SET x TO DEFAULT, RESET x */
        return check_setting(rw, vs->name, NULL);
    }
}

/* Does boolean input read text as true? Its accepted spellings: t, true,
 * y, yes, on, 1 and the unique prefixes of true and yes, any case, blanks
 * around. Anything else is taken as false (by the caller: refused). */
static bool reads_true(const char *text)
{
    static const char *const trues[] = {"t", "tr", "tru", "true", "y", "ye", "yes", "on", "1"};
    char v[16];
    size_t n = 0;
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
        text++;
    for (; *text != '\0' && n + 1 < sizeof(v); text++)
        v[n++] = (char)tolower((unsigned char)*text);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\n' || v[n - 1] == '\r'))
        n--;
    v[n] = '\0';
    for (size_t i = 0; i < PGW_ARRAY_LEN(trues); i++)
        if (strcmp(v, trues[i]) == 0)
            return true;
    return false;
}

/* set_config('name', 'value', is_local): the same allowlist as SET, and
 * only with constant arguments, so the decision is made here.
 *
 * In transaction pooling a client's settings must stay its own: the link
 * follows SET and RESET by their command tags and re-applies a client's
 * SETs wherever its next transaction lands, then resets the session. A
 * set_config(..., false) answers with a SELECT's tag, so the link would
 * not see it and the setting would stay on the session for the tenant's
 * next client (its TimeZone in their results, its statement_timeout on
 * their statements). So there only the local form (this transaction) is
 * allowed; the session form is refused with a hint to use SET. */
int policy_check_set_config(Rewrite *rw, const PgQuery__FuncCall *fc)
{
    char name[128], value[256], local[16];
    if (fc->n_args != 3 || !constant_text(fc->args[0], name, sizeof(name)) ||
        !constant_text(fc->args[1], value, sizeof(value)) ||
        !constant_text(fc->args[2], local, sizeof(local)))
        return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE,
                             "Call set_config('name', 'value', is_local) with constants.",
                             "pgwarden: set_config is allowed only with constant arguments");
    if (check_setting(rw, name, value) < 0)
        return -1;
    if (!reads_true(local) &&
        config_pool_mode(rw->ctx->cfg, rw->ctx->tenant) == PGW_POOL_TRANSACTION)
        return policy_refuse(rw, SQLSTATE_FEATURE_NOT_SUPPORTED,
                             "Use SET name = value: pgwarden keeps a client's SETs with it in "
                             "transaction pooling. set_config(name, value, true) sets it for "
                             "this transaction only.",
                             "pgwarden: set_config(..., false) is not supported in transaction "
                             "pooling");
    return 0;
}

static int walk_statement(Rewrite *rw, PgQuery__Node **slot, bool *rows);

/* EXPLAIN [ANALYZE] of an allowed statement: the statement is rewritten
 * exactly as when it runs alone, and refused the same way. It is refused
 * outright when it reads a relation with a row filter or mask, or a
 * filtered catalog: the planner's estimates come from statistics over every
 * tenant's rows (EXPLAIN ... WHERE name < 'x' tells value prefixes) and
 * ANALYZE shows the rows the filter removed. Over shared tables it works.
 * EXPLAIN EXECUTE is refused too: what the prepared statement reads is not
 * known here. VERBOSE is refused: it lists the columns every scan reads,
 * hidden ones included. */
static int walk_explain(Rewrite *rw, PgQuery__ExplainStmt *es)
{
    static const char *const options[] = {"analyze", "costs",  "settings", "buffers",
                                          "wal",     "timing", "summary",  "format"};
    static const char hint[] =
        "EXPLAIN shows estimates computed from every tenant's rows; pgwarden allows it only for "
        "statements that read shared tables. Run the query itself instead.";
    for (size_t i = 0; i < es->n_options; i++) {
        if (!NODE(es->options[i], DEF_ELEM) || !IN_LIST(options, es->options[i]->def_elem->defname))
            return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, NULL,
                                 "pgwarden: this EXPLAIN option is not allowed");
    }
    bool inner;
    bool before = rw->reads_protected;
    rw->reads_protected = false;
    if (walk_statement(rw, &es->query, &inner) < 0)
        return -1;
    if (NODE(es->query, EXECUTE_STMT))
        return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, hint,
                             "pgwarden: EXPLAIN EXECUTE is not allowed");
    if (rw->reads_protected)
        return policy_refuse(rw, SQLSTATE_INSUFFICIENT_PRIVILEGE, hint,
                             "pgwarden: EXPLAIN of a statement that reads tenant-filtered or "
                             "masked data is not allowed");
    rw->reads_protected = before;
    return 0;
}

/* Decide on one statement; returns -1 when refused. *rows says whether it is
 * a query returning rows. */
static int walk_statement(Rewrite *rw, PgQuery__Node **slot, bool *rows)
{
    PgQuery__Node *n = *slot;
    char kind[96];
    *rows = false;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_SELECT_STMT:
        *rows = true;
        return policy_walk_select(rw, n->select_stmt, NULL, NULL, WALK_OUTERMOST, NULL, NULL);
    case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
        if (!NODE(n->declare_cursor_stmt->query, SELECT_STMT))
            return refuse_kind(rw, "DECLARE CURSOR");
        return policy_walk_select(rw, n->declare_cursor_stmt->query->select_stmt, NULL, NULL,
                                  WALK_OUTERMOST, NULL, NULL);
    case PG_QUERY__NODE__NODE_COPY_STMT: {
        PgQuery__CopyStmt *cs = n->copy_stmt;
        if (cs->is_from)
            return refuse_kind(rw, "COPY FROM");
        if (cs->is_program || cs->filename[0] != '\0')
            return refuse_kind(rw, "COPY to a file or program");
        if (cs->relation != NULL && copy_relation_to_query(rw, cs) < 0)
            return -1;
        if (!NODE(cs->query, SELECT_STMT)) {
            if (cs->query != NULL)
                statement_kind(cs->query, kind, sizeof(kind));
            return refuse_kind(rw, cs->query != NULL ? kind : "COPY");
        }
        return policy_walk_select(rw, cs->query->select_stmt, NULL, NULL, WALK_OUTERMOST, NULL,
                                  NULL);
    }
    case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
        return check_set(rw, n->variable_set_stmt);
    case PG_QUERY__NODE__NODE_DEALLOCATE_STMT:
        return reserved_statement_name(rw, n->deallocate_stmt->name);
    case PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT:
    case PG_QUERY__NODE__NODE_FETCH_STMT: /* FETCH and MOVE */
    case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT:
    case PG_QUERY__NODE__NODE_DISCARD_STMT:
        /* DISCARD ALL is what pools and drivers send between clients; it
         * returns pinned settings to their startup values. */
        return 0;
    case PG_QUERY__NODE__NODE_UNLISTEN_STMT:
        /* Harmless without LISTEN, and part of every pool's reset. */
        return 0;
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
        return walk_explain(rw, n->explain_stmt);
    case PG_QUERY__NODE__NODE_PREPARE_STMT: {
        /* The statement is rewritten now, as if it ran alone; EXECUTE then
         * runs the rewrite. */
        bool inner;
        if (reserved_statement_name(rw, n->prepare_stmt->name) < 0)
            return -1;
        return walk_statement(rw, &n->prepare_stmt->query, &inner);
    }
    case PG_QUERY__NODE__NODE_EXECUTE_STMT: {
        if (reserved_statement_name(rw, n->execute_stmt->name) < 0)
            return -1;
        QualLevel lv = {0};
        Walk params = {rw, NULL, &lv, false};
        rw->volatile_seen = true;
        int rc = policy_walk_slots(&params, n->execute_stmt->params, n->execute_stmt->n_params);
        qual_level_free(&lv);
        return rc;
    }
    case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
        if (check_transaction_options(rw, n->transaction_stmt->options,
                                      n->transaction_stmt->n_options) < 0)
            return -1;
        switch (n->transaction_stmt->kind) {
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE:
            return refuse_kind(rw, "PREPARE TRANSACTION");
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT_PREPARED:
            return refuse_kind(rw, "COMMIT PREPARED");
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_PREPARED:
            return refuse_kind(rw, "ROLLBACK PREPARED");
        default:
            return 0;
        }
    default:
        statement_kind(n, kind, sizeof(kind));
        return refuse_kind(rw, kind);
    }
}

/* OFFSET 0 on a derived table's SELECT: the optimization fence. */
static void add_fence(PgQuery__SelectStmt *body)
{
    if (body->limit_offset != NULL || body->limit_count != NULL)
        return; /* already not flattenable */
    PgQuery__Node *n = pgw_malloc(sizeof(*n));
    pg_query__node__init(n);
    n->node_case = PG_QUERY__NODE__NODE_A_CONST;
    n->a_const = pgw_malloc(sizeof(*n->a_const));
    pg_query__a__const__init(n->a_const);
    n->a_const->val_case = PG_QUERY__A__CONST__VAL_IVAL;
    n->a_const->ival = pgw_malloc(sizeof(*n->a_const->ival));
    pg_query__integer__init(n->a_const->ival);
    n->a_const->location = -1;
    body->limit_offset = n;
    body->limit_option = PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_COUNT;
}

/* Parse all of the statement's replacement SQL at once, check the columns
 * the leak analysis relied on, fence if needed, and splice the derived
 * tables in place of the RangeVars. */
static int materialize(Rewrite *rw)
{
    if (rw->nrepl == 0)
        return 0;
    PgwBuf b;
    buf_init(&b);
    buf_append_str(&b, "SELECT 1 FROM ");
    for (size_t i = 0; i < rw->nrepl; i++) {
        if (i > 0)
            buf_append_str(&b, ", ");
        buf_append_str(&b, rw->repl[i].body);
        buf_append_str(&b, rw->repl[i].tail);
    }
    char *sql = buf_steal_str(&b);
    PgQueryProtobufParseResult pr = pg_query_parse_protobuf(sql);
    PgQuery__ParseResult *tree = NULL;
    PgQuery__SelectStmt **bodies = NULL;
    int rc = -1;
    if (pr.error != NULL) {
        policy_refuse(rw, SQLSTATE_INTERNAL_ERROR, NULL,
                      "pgwarden: a row filter or mask of this policy does not parse");
        free(rw->out->reason);
        rw->out->reason = pgw_strdup(pr.error->message);
        goto done;
    }
    tree = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
                                          (const uint8_t *)pr.parse_tree.data);
    if (tree == NULL || tree->n_stmts != 1 || !NODE(tree->stmts[0]->stmt, SELECT_STMT))
        goto done;
    PgQuery__SelectStmt *s = tree->stmts[0]->stmt->select_stmt;
    if (s->n_from_clause != rw->nrepl)
        goto done;
    bodies = pgw_malloc(rw->nrepl * sizeof(*bodies));
    for (size_t i = 0; i < rw->nrepl; i++) {
        PgQuery__Node *sub = s->from_clause[i];
        if (!NODE(sub, RANGE_SUBSELECT) || !NODE(sub->range_subselect->subquery, SELECT_STMT))
            goto done;
        bodies[i] = sub->range_subselect->subquery->select_stmt;
    }
    qual_check_needs(rw, bodies);
    for (size_t i = 0; i < rw->nrepl; i++) {
        PgQuery__Node *sub = s->from_clause[i];
        PgQuery__RangeVar *rv = (*rw->repl[i].slot)->range_var;
        if (rw->leaky)
            add_fence(bodies[i]);
        if (rv->alias != NULL) {
            /* Keep the client's alias, column aliases included. */
            pg_query__alias__free_unpacked(sub->range_subselect->alias, NULL);
            sub->range_subselect->alias = rv->alias;
            rv->alias = NULL;
        }
        pg_query__node__free_unpacked(*rw->repl[i].slot, NULL);
        *rw->repl[i].slot = sub;
        s->from_clause[i] = NULL;
    }
    s->n_from_clause = 0;
    rc = 0;
done:
    free(bodies);
    free(sql);
    if (tree != NULL)
        pg_query__parse_result__free_unpacked(tree, NULL);
    pg_query_free_protobuf_parse_result(pr);
    return rc;
}

static void shorten_column_refs(Rewrite *rw)
{
    for (size_t i = 0; i < rw->ncolfix; i++) {
        PgQuery__ColumnRef *cr = rw->colfix[i];
        size_t drop = cr->n_fields - 2;
        for (size_t j = 0; j < drop; j++)
            pg_query__node__free_unpacked(cr->fields[j], NULL);
        memmove(cr->fields, cr->fields + drop, 2 * sizeof(*cr->fields));
        cr->n_fields = 2;
    }
}

static void rewrite_reset_statement(Rewrite *rw)
{
    for (size_t i = 0; i < rw->nrepl; i++) {
        free(rw->repl[i].body);
        free(rw->repl[i].tail);
    }
    free(rw->repl);
    rw->repl = NULL;
    rw->nrepl = rw->repl_cap = 0;
    free(rw->colfix);
    rw->colfix = NULL;
    rw->ncolfix = rw->colfix_cap = 0;
    free(rw->needs);
    rw->needs = NULL;
    rw->nneeds = rw->needs_cap = 0;
    free(rw->safe_sublinks);
    rw->safe_sublinks = NULL;
    rw->nsafe_sublinks = rw->safe_sublinks_cap = 0;
    /* Without a schema snapshot nothing can be typed: always fenced. */
    rw->leaky = rw->ctx->schema == NULL;
}

static int string_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The relations the statement reads, each once, into the result. */
static void take_relations(Rewrite *rw, PgwPolicyResult *out)
{
    if (rw->nrelations == 0)
        return;
    qsort(rw->relations, rw->nrelations, sizeof(*rw->relations), string_cmp);
    size_t n = 0;
    for (size_t i = 0; i < rw->nrelations; i++) {
        if (n > 0 && strcmp(rw->relations[n - 1], rw->relations[i]) == 0) {
            free(rw->relations[i]);
            continue;
        }
        rw->relations[n++] = rw->relations[i];
    }
    out->relations = rw->relations;
    out->nrelations = n;
    rw->relations = NULL;
    rw->nrelations = rw->relations_cap = 0;
}

/* Deparse, then parse the output again: a deparser fault that changes the
 * meaning shows up as a different tree, and we refuse rather than forward
 * something we did not check. */
static int deparse_verified(Rewrite *rw, PgQuery__ParseResult *tree, char **out)
{
    policy_object_portal_names(tree, true);
    size_t len = pg_query__parse_result__get_packed_size(tree);
    uint8_t *packed = pgw_malloc(len > 0 ? len : 1);
    pg_query__parse_result__pack(tree, packed);
    policy_object_portal_names(tree, false);
    PgQueryProtobuf pb = {len, (char *)packed};
    PgQueryDeparseResult dr = pg_query_deparse_protobuf(pb);
    free(packed);
    PgQueryProtobufParseResult pr = {0};
    PgQuery__ParseResult *again = NULL;
    int rc = -1;

    if (dr.error != NULL) {
        policy_refuse(rw, SQLSTATE_FEATURE_NOT_SUPPORTED, NULL,
                      "pgwarden: this statement cannot be rewritten safely");
        free(rw->out->reason);
        rw->out->reason = pgw_strdup(dr.error->message);
        goto done;
    }
    pr = pg_query_parse_protobuf(dr.query);
    if (pr.error == NULL)
        again = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
                                               (const uint8_t *)pr.parse_tree.data);
    if (again == NULL || !policy_walk_equal(&tree->base, &again->base)) {
        policy_refuse(rw, SQLSTATE_FEATURE_NOT_SUPPORTED, NULL,
                      "pgwarden: this statement cannot be rewritten safely");
        free(rw->out->reason);
        rw->out->reason = pgw_strdup("deparsed rewrite does not parse back to the same tree");
        goto done;
    }
    *out = pgw_strdup(dr.query);
    rc = 0;
done:
    if (again != NULL)
        pg_query__parse_result__free_unpacked(again, NULL);
    if (dr.error == NULL)
        pg_query_free_protobuf_parse_result(pr);
    pg_query_free_deparse_result(dr);
    return rc;
}

#define DEFAULT_MAX_NESTING_DEPTH 10000

/* One rewrite in two steps, each on a stack big enough for it (see
 * policy_guard.c): the parse, whose need grows with the text's length, and
 * everything after, whose need grows with the depth the parse measured. */
typedef struct Job {
    const PgwPolicyCtx *ctx;
    const char *sql;
    PgwPolicyResult *out;
    int max_depth;
    PgQueryProtobufParseResult pr;
    int depth; /* > max_depth: too deep; 0: not measured */
    bool measured;
} Job;

static int parse_job(void *arg)
{
    Job *job = arg;
    job->pr = pg_query_parse_protobuf(job->sql);
    if (job->pr.error == NULL)
        job->measured = policy_guard_depth((const uint8_t *)job->pr.parse_tree.data,
                                           job->pr.parse_tree.len, job->max_depth, &job->depth);
    return 0;
}

static int rewrite_job(void *arg)
{
    Job *job = arg;
    const PgwPolicyCtx *ctx = job->ctx;
    PgwPolicyResult *out = job->out;
    Rewrite rw = {0};
    PgQueryProtobufParseResult pr = job->pr;
    PgQuery__ParseResult *tree = NULL;
    bool rows_all = true;
    int rc = -1;

    rw.ctx = ctx;
    rw.out = out;
    rw.leaky = ctx->schema == NULL;
    if (policy_split_search_path(&rw) < 0) {
        pg_query_free_protobuf_parse_result(pr);
        goto done;
    }
    if (pr.error != NULL) {
        policy_refuse(&rw, SQLSTATE_SYNTAX_ERROR, NULL, "%s", pr.error->message);
        pg_query_free_protobuf_parse_result(pr);
        rc = 0;
        goto done;
    }
    /* Measured before anything recursive (unpack included) touched it. */
    if (!job->measured) {
        pg_query_free_protobuf_parse_result(pr);
        if (job->depth > job->max_depth) {
            policy_refuse(&rw, SQLSTATE_STATEMENT_TOO_COMPLEX,
                          "Simplify the statement, or raise max_nesting_depth in pgwarden.ini.",
                          "pgwarden: statement too deeply nested (more than %d levels)",
                          job->max_depth);
            rc = 0;
        }
        goto done;
    }
    tree = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
                                          (const uint8_t *)pr.parse_tree.data);
    pg_query_free_protobuf_parse_result(pr);
    if (tree == NULL)
        goto done;

    for (size_t i = 0; i < tree->n_stmts; i++) {
        bool rows;
        if (tree->stmts[i]->stmt == NULL)
            continue;
        if (policy_object_prepare(&rw, &tree->stmts[i]->stmt) < 0 ||
            walk_statement(&rw, &tree->stmts[i]->stmt, &rows) < 0 || rw.refused) {
            rc = rw.refused ? 0 : -1;
            goto done;
        }
        rows_all = rows_all && rows;
        if (materialize(&rw) < 0) {
            rc = rw.refused ? 0 : -1;
            goto done;
        }
        shorten_column_refs(&rw);
        rewrite_reset_statement(&rw);
        if (policy_object_finish(&rw, &tree->stmts[i]->stmt) < 0) {
            rc = rw.refused ? 0 : -1;
            goto done;
        }
    }
    /* Row filters, masks, catalog views and OID wrappers get their
     * operators and built-in calls pinned to pg_catalog like the client's. */
    if (policy_qualify_names(&tree->base) < 0)
        goto done;
    if (deparse_verified(&rw, tree, &out->sql) < 0) {
        rc = rw.refused ? 0 : -1;
        goto done;
    }
    out->decision = PGW_POLICY_ALLOW;
    out->read_only_query = tree->n_stmts > 0 && rows_all;
    out->cacheable = out->read_only_query && !rw.volatile_seen;
    out->reason = pgw_strdup(tree->n_stmts > 0 ? "allowed" : "empty");
    take_relations(&rw, out);
    rc = 0;
done:
    rewrite_reset_statement(&rw);
    policy_object_reset(&rw);
    for (size_t i = 0; i < rw.nsearch_path; i++)
        free(rw.search_path[i]);
    free(rw.search_path);
    for (size_t i = 0; i < rw.nrelations; i++)
        free(rw.relations[i]);
    free(rw.relations);
    if (tree != NULL)
        pg_query__parse_result__free_unpacked(tree, NULL);
    if (rc < 0 && !rw.refused)
        policy_refuse(&rw, SQLSTATE_INTERNAL_ERROR, NULL, "pgwarden: internal error in the policy");
    return rc;
}

int policy_rewrite_uncached(const PgwPolicyCtx *ctx, const char *sql, PgwPolicyResult *out)
{
    memset(out, 0, sizeof(*out));
    out->decision = PGW_POLICY_REFUSE;
    if (ctx == NULL || ctx->cfg == NULL || ctx->tenant == NULL || sql == NULL)
        return -1;
    int max_depth =
        ctx->cfg->max_nesting_depth > 0 ? ctx->cfg->max_nesting_depth : DEFAULT_MAX_NESTING_DEPTH;
    Job job = {.ctx = ctx, .sql = sql, .out = out, .max_depth = max_depth};
    int rc = policy_guard_run(policy_guard_parse_stack(strlen(sql)), parse_job, &job);
    if (rc == 0) {
        /* rewrite_job owns job.pr from here; if it cannot run, free it. */
        rc = policy_guard_run(policy_guard_rewrite_stack(job.measured ? job.depth : 0), rewrite_job,
                              &job);
        if (rc < 0 && out->message == NULL)
            pg_query_free_protobuf_parse_result(job.pr);
    }
    if (rc < 0 && out->message == NULL) {
        /* No thread could be had for it: refuse rather than risk the stack. */
        Rewrite rw = {.ctx = ctx, .out = out};
        policy_refuse(&rw, SQLSTATE_STATEMENT_TOO_COMPLEX, NULL,
                      "pgwarden: not enough memory to check this statement");
    }
    return rc;
}

void policy_result_free(PgwPolicyResult *r)
{
    if (r == NULL)
        return;
    free(r->sql);
    free(r->message);
    free(r->hint);
    free(r->reason);
    for (size_t i = 0; i < r->nrelations; i++)
        free(r->relations[i]);
    free(r->relations);
    memset(r, 0, sizeof(*r));
}
