/*
 * link_txn.c — transaction pooling: what a client's session state is when
 * the client holds a backend session only while a transaction runs, and
 * how it follows the client to whichever session it lands on.
 *
 * When: the link gives its session back (link_quiet) once everything sent
 * has been answered, no extended-protocol batch is open (Sync seen), the
 * last ReadyForQuery said 'I', and the client holds no state that cannot
 * move. The next statement takes a session again (link_acquire), most
 * likely the same one.
 *
 * Protocol-level prepared statements, as PgBouncer 1.21 does them: the
 * client's named statements live here (name → body: the Parse message's
 * bytes after the name, as the policy rewrote them), and each session
 * keeps the bodies it has prepared under a server-side name derived from
 * the body (pgw_<hash>), so clients with the same statement share one
 * server statement, with an LRU bound per session (max_prepared_statements;
 * the least recently used is closed on the server). A Bind or Describe
 * naming a statement the session lacks prepares it first (LINK_HIDDEN: its
 * ParseComplete is not the client's, an error from it is); a Parse of a
 * statement the session already has is answered with a ParseComplete of
 * pgwarden's own in the session's response order; Close of a statement is
 * answered the same way and only forgets the client's name. The unnamed
 * statement follows the client the same way (the session remembers which
 * body its unnamed statement holds; a simple Query drops it, on both
 * sides, as in PostgreSQL). Names the client never prepared are refused
 * here (26000) instead of reaching a server where another client's
 * statement might answer to them.
 *
 * Settings: the client's settings are kept as the statements that set
 * them (its startup parameters, and after a SET or RESET the session's
 * own account of them: pg_settings where source = 'session', read once
 * before the session goes back). A session remembers which settings it
 * carries (applied_sets); a client landing on a session with other ones
 * gets RESET ALL and its own first, so one client's TimeZone never shows
 * in another's results. RESET ALL returns to the startup options, which is
 * where the policy's pinned settings live, so they stay pinned.
 *
 * What cannot move: SQL-level PREPARE and cursors WITH HOLD live in the
 * server session. Rather than refusing them, the client is pinned to its
 * session while it has any (read from pg_prepared_statements and
 * pg_cursors after a transaction that ran PREPARE, DECLARE, DEALLOCATE or
 * CLOSE), so they work exactly as in session mode, and the session is
 * reset before another client gets it.
 */
#include "link_int.h"

#include "backend.h"
#include "codec.h"
#include "link.h"
#include "log.h"
#include "pool.h"
#include "snapshot.h"
#include "worker.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct PgwLinkStmt {
    struct PgwLinkStmt *next;
    uint64_t hash;
    PgwStmtBody *body;
    char name[];
};

/* The session's state, read before it goes back after a transaction that
 * changed it: the settings as statements, and what pins the client. */
static const char state_sql[] =
    "SELECT (SELECT pg_catalog.string_agg(pg_catalog.format("
    "'SELECT pg_catalog.set_config(%L, %L, false)', name, pg_catalog.current_setting(name)), "
    "'; ' ORDER BY name) FROM pg_catalog.pg_settings WHERE source = 'session'), "
    "(SELECT pg_catalog.count(*) FROM pg_catalog.pg_cursors WHERE is_holdable) + "
    "(SELECT pg_catalog.count(*) FROM pg_catalog.pg_prepared_statements WHERE from_sql), "
    "(SELECT pg_catalog.string_agg(name, ',') FROM pg_catalog.pg_prepared_statements "
    "WHERE NOT from_sql)";

void link_set_transaction_mode(PgwLink *l, bool on)
{
    l->txn = on;
}

bool link_transaction_mode(const PgwLink *l)
{
    return l->txn;
}

uint32_t link_prepared_count(const PgwLink *l)
{
    return l->nstmts + (l->unnamed != NULL);
}

/* ---------- the client's statements ---------- */

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static PgwLinkStmt **stmt_slot(PgwLink *l, const char *name, uint64_t h)
{
    if (!l->stmt_buckets)
        return NULL;
    PgwLinkStmt **pp = &l->stmts[h & (l->stmt_buckets - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->name, name) != 0))
        pp = &(*pp)->next;
    return pp;
}

static PgwStmtBody *stmt_find(PgwLink *l, const char *name)
{
    if (!*name)
        return l->unnamed;
    PgwLinkStmt **pp = stmt_slot(l, name, name_hash(name));
    return pp && *pp ? (*pp)->body : NULL;
}

static void stmt_grow(PgwLink *l)
{
    uint32_t nb = l->stmt_buckets ? l->stmt_buckets * 2 : 16;
    PgwLinkStmt **b = pgw_calloc(nb, sizeof *b);
    for (uint32_t i = 0; i < l->stmt_buckets; i++) {
        for (PgwLinkStmt *s = l->stmts[i], *next; s; s = next) {
            next = s->next;
            s->next = b[s->hash & (nb - 1)];
            b[s->hash & (nb - 1)] = s;
        }
    }
    free(l->stmts);
    l->stmts = b;
    l->stmt_buckets = nb;
}

static void publish_prepared(PgwLink *l)
{
    worker_publish_prepared(worker_for_id(l->conn_id), l->conn_id, link_prepared_count(l));
}

static void stmt_add(PgwLink *l, const char *name, PgwStmtBody *body)
{
    if (l->nstmts >= l->stmt_buckets)
        stmt_grow(l);
    size_t n = strlen(name);
    PgwLinkStmt *s = pgw_malloc(sizeof *s + n + 1);
    memcpy(s->name, name, n + 1);
    s->hash = name_hash(name);
    s->body = backend_body_ref(body);
    s->next = l->stmts[s->hash & (l->stmt_buckets - 1)];
    l->stmts[s->hash & (l->stmt_buckets - 1)] = s;
    l->nstmts++;
    l->stmt_bytes += body->len;
    publish_prepared(l);
}

static void stmt_remove(PgwLink *l, const char *name)
{
    if (!*name) {
        backend_body_unref(l->unnamed);
        l->unnamed = NULL;
        return;
    }
    PgwLinkStmt **pp = stmt_slot(l, name, name_hash(name));
    if (!pp || !*pp)
        return;
    PgwLinkStmt *s = *pp;
    *pp = s->next;
    l->stmt_bytes -= s->body->len;
    backend_body_unref(s->body);
    free(s);
    l->nstmts--;
    publish_prepared(l);
}

static void stmts_clear(PgwLink *l)
{
    for (uint32_t i = 0; i < l->stmt_buckets; i++) {
        for (PgwLinkStmt *s = l->stmts[i], *next; s; s = next) {
            next = s->next;
            backend_body_unref(s->body);
            free(s);
        }
    }
    free(l->stmts);
    l->stmts = NULL;
    l->stmt_buckets = l->nstmts = 0;
    l->stmt_bytes = 0;
    backend_body_unref(l->unnamed);
    l->unnamed = NULL;
}

/* ---------- preparing on the session ---------- */

static void write_parse(PgwBackend *b, const char *name, const PgwStmtBody *body, uint8_t kind)
{
    PgwBuf m;
    buf_init(&m);
    size_t n = strlen(name) + 1;
    buf_append_byte(&m, 'P');
    buf_append_u32(&m, (uint32_t)(4 + n + body->len));
    buf_append(&m, name, n);
    buf_append(&m, body->data, body->len);
    backend_write(b, m.data, m.len);
    buf_free(&m);
    backend_expect(b, 'P', kind);
}

static void write_close(PgwBackend *b, const char *name)
{
    PgwBuf m;
    buf_init(&m);
    size_t n = strlen(name) + 1;
    buf_append_byte(&m, 'C');
    buf_append_u32(&m, (uint32_t)(4 + 1 + n));
    buf_append_byte(&m, 'S');
    buf_append(&m, name, n);
    backend_write(b, m.data, m.len);
    buf_free(&m);
    backend_expect(b, 'C', LINK_HIDDEN);
}

static uint32_t max_statements(void)
{
    PgwSnapshot *s = snapshot_acquire();
    int max = s->cfg->max_prepared_statements;
    snapshot_release(s);
    return max > 0 ? (uint32_t)max : 1;
}

/* Make sure the session has body under its server-side name. visible: the
 * client sent the Parse and gets a ParseComplete for it either way. */
static void ensure_prepared(PgwLink *l, PgwStmtBody *body, bool visible)
{
    PgwBackend *b = l->be;
    if (backend_stmt_find(b, body)) {
        if (visible)
            backend_expect(b, BACKEND_SYNTH_PARSE, LINK_RFQ_RELAY);
        return;
    }
    uint32_t before = b->nstmts;
    PgwStmtBody *evicted = backend_stmt_add(b, body, max_statements());
    if (evicted) {
        /* The least recently used (or a hash twin) leaves the server first. */
        write_close(b, evicted->name);
        backend_body_unref(evicted);
    }
    pool_count_prepared(l->pool, (int)b->nstmts - (int)before);
    write_parse(b, body->name, body, visible ? LINK_RFQ_RELAY : LINK_HIDDEN);
}

static void ensure_unnamed(PgwLink *l)
{
    PgwBackend *b = l->be;
    if (backend_body_same(b->unnamed, l->unnamed))
        return;
    write_parse(b, "", l->unnamed, LINK_HIDDEN);
    backend_set_unnamed(b, l->unnamed);
}

int link_txn_parse(PgwLink *l, const PgwBuf *msg)
{
    PgwParseMsg pm;
    if (codec_parse_parse(msg->data + 5, msg->len - 5, &pm) != 0)
        return -1; /* the client checked it already */
    size_t nlen = strlen(pm.name) + 1;
    const uint8_t *bytes = msg->data + 5 + nlen;
    size_t blen = msg->len - 5 - nlen;
    PgwBackend *b = l->be;
    PgwStmtBody *body;
    if (!*pm.name && l->unnamed && l->unnamed->len == blen &&
        memcmp(l->unnamed->data, bytes, blen) == 0)
        body = backend_body_ref(l->unnamed); /* the same again, as drivers send it */
    else
        body = backend_body_new(bytes, blen);
    if (!*pm.name) {
        /* The unnamed statement: sent as it is, remembered on both sides. */
        backend_write(b, msg->data, msg->len);
        backend_expect(b, 'P', LINK_RFQ_RELAY);
        backend_set_unnamed(b, body);
        backend_body_unref(l->unnamed);
        l->unnamed = body;
        return 0;
    }
    if (stmt_find(l, pm.name)) {
        backend_body_unref(body);
        char m[160];
        snprintf(m, sizeof m, "prepared statement \"%.64s\" already exists", pm.name);
        l->ops->refused(l->owner, 'P', "42P05", m);
        return -1;
    }
    /* Every named statement is kept here until the client closes it (it is
     * prepared again wherever the client lands), so what one client may
     * keep is bounded: past max_prepared_memory the Parse is refused, as
     * PostgreSQL refuses what it has no memory for. */
    PgwSnapshot *snap = snapshot_acquire();
    size_t limit = snap->cfg->max_prepared_memory;
    snapshot_release(snap);
    if (l->stmt_bytes + body->len > limit) {
        backend_body_unref(body);
        char m[200];
        snprintf(m, sizeof m,
                 "prepared statement \"%.64s\" would pass this connection's limit of %zu bytes "
                 "of prepared statements (max_prepared_memory)",
                 pm.name, limit);
        l->ops->refused(l->owner, 'P', "53200", m);
        return -1;
    }
    stmt_add(l, pm.name, body);
    ensure_prepared(l, body, true);
    backend_body_unref(body);
    return 0;
}

void link_txn_simple_query(PgwLink *l)
{
    backend_body_unref(l->unnamed); /* PostgreSQL drops it too */
    l->unnamed = NULL;
}

size_t link_named_take(char type, size_t whole)
{
    /* A Bind's names come first; PostgreSQL's names are short, 1 kB of
     * them is far beyond any real client. */
    if (type == 'B' && whole > 5 + 1024)
        return 5 + 1024;
    return whole;
}

static void refuse_unknown(PgwLink *l, char type, const char *name)
{
    char m[160];
    if (*name)
        snprintf(m, sizeof m, "prepared statement \"%.64s\" does not exist", name);
    else
        snprintf(m, sizeof m, "unnamed prepared statement does not exist");
    l->ops->refused(l->owner, type, "26000", m);
}

int link_named_message(PgwLink *l, struct evbuffer *src, char type, size_t take, size_t whole,
                       size_t *rest)
{
    PgwBackend *b = l->be;
    const uint8_t *m = evbuffer_pullup(src, (ssize_t)take);
    const char *body = (const char *)m + 5;
    size_t blen = take - 5;
    *rest = 0;
    const char *portal = "", *name;
    size_t head; /* bytes of the body before what follows the statement name */
    if (type == 'B') {
        const char *e1 = memchr(body, 0, blen);
        const char *e2 = e1 ? memchr(e1 + 1, 0, blen - (size_t)(e1 + 1 - body)) : NULL;
        if (!e2) {
            l->ops->refused(l->owner, type, SQLSTATE_PROTOCOL_VIOLATION,
                            "invalid Bind message: statement name not found");
            return -1;
        }
        portal = body;
        name = e1 + 1;
        head = (size_t)(e2 + 1 - body);
    } else {
        if (blen < 2 || memchr(body + 1, 0, blen - 1) == NULL) {
            l->ops->refused(l->owner, type, SQLSTATE_PROTOCOL_VIOLATION,
                            "invalid Describe or Close message");
            return -1;
        }
        if (body[0] != 'S') {
            /* A portal: portals live inside the transaction, on the session. */
            link_forward(l, src, whole, type, true);
            return 0;
        }
        name = body + 1;
        head = 1 + strlen(name) + 1;
    }
    if (type == 'C') {
        /* The client forgets the name; the server keeps the shared statement. */
        stmt_remove(l, name);
        evbuffer_drain(src, whole);
        backend_expect(b, BACKEND_SYNTH_CLOSE, LINK_RFQ_RELAY);
        return 0;
    }
    PgwStmtBody *st = stmt_find(l, name);
    if (!st) {
        refuse_unknown(l, type, name);
        return -1;
    }
    const char *server_name;
    if (*name) {
        ensure_prepared(l, st, false);
        server_name = st->name;
    } else {
        ensure_unnamed(l);
        server_name = "";
    }
    size_t plen = type == 'B' ? strlen(portal) + 1 : 1; /* the portal, or 'S' */
    size_t slen = strlen(server_name) + 1;
    size_t tail = whole - 5 - head; /* what follows the names */
    /* The new head of the message: on the stack when it fits (names are
     * short), as it does on every Bind of the hot path. */
    uint8_t small[256], *out = small;
    size_t len = 5 + plen + slen;
    if (len > sizeof small)
        out = pgw_malloc(len);
    out[0] = (uint8_t)type;
    uint32_t n32 = (uint32_t)(4 + plen + slen + tail);
    out[1] = (uint8_t)(n32 >> 24);
    out[2] = (uint8_t)(n32 >> 16);
    out[3] = (uint8_t)(n32 >> 8);
    out[4] = (uint8_t)n32;
    memcpy(out + 5, type == 'B' ? portal : "S", plen);
    memcpy(out + 5 + plen, server_name, slen);
    evbuffer_drain(src, 5 + head);
    backend_expect(b, type, LINK_RFQ_RELAY);
    backend_write(b, out, len);
    if (out != small)
        free(out);
    if (tail && take == whole) {
        backend_forward(b, src, tail); /* all here: no need to stream */
        tail = 0;
    }
    l->partial = tail > 0;
    *rest = tail;
    return 0;
}

/* ---------- settings ---------- */

void link_txn_startup_sets(PgwLink *l, char *sql)
{
    free(l->sets);
    l->sets = sql;
    if (l->be)
        link_txn_attached(l);
}

void link_txn_attached(PgwLink *l)
{
    PgwBackend *b = l->be;
    const char *want = l->sets ? l->sets : "";
    const char *have = b->applied_sets ? b->applied_sets : "";
    if (strcmp(want, have) == 0)
        return;
    PgwBuf q;
    buf_init(&q);
    if (*have)
        buf_append_str(&q, "RESET ALL");
    if (*have && *want)
        buf_append_str(&q, "; ");
    buf_append_str(&q, want);
    char *sql = buf_steal_str(&q);
    backend_send_internal(b, sql);
    free(sql);
    free(b->applied_sets);
    b->applied_sets = l->sets ? pgw_strdup(l->sets) : NULL;
}

static bool tag_is(const char *tag, const char *what)
{
    size_t n = strlen(what);
    return strncmp(tag, what, n) == 0 && (tag[n] == '\0' || tag[n] == ' ');
}

void link_txn_command_done(PgwLink *l, const char *tag)
{
    switch (tag[0]) {
    case 'S':
    case 'R':
    case 'D':
    case 'P':
    case 'C':
        break;
    default:
        return; /* SELECT, FETCH, ... : the hot path */
    }
    if (tag_is(tag, "SET") || tag_is(tag, "RESET") || tag_is(tag, "PREPARE") ||
        tag_is(tag, "DECLARE CURSOR") || tag_is(tag, "CLOSE CURSOR") || tag_is(tag, "DISCARD") ||
        tag_is(tag, "DEALLOCATE"))
        l->dirty = true;
    if ((tag_is(tag, "DISCARD ALL") || tag_is(tag, "DEALLOCATE ALL")) && l->be) {
        /* The server dropped every prepared statement: the session's cache
         * says so, and the client has none either, as on PostgreSQL. (A
         * DEALLOCATE of one name: the state read before release tells
         * which the server still has.) */
        pool_count_prepared(l->pool, -(int)l->be->nstmts);
        backend_stmt_clear(l->be);
        stmts_clear(l);
        publish_prepared(l);
    }
}

static void state_read(void *arg, size_t nrows, size_t ncols, char **values, const char *error)
{
    PgwLink *l = arg;
    l->state_query = NULL;
    l->dirty = false;
    if (error || nrows != 1 || ncols != 3) {
        /* Unknown state cannot move: keep the session for this client. */
        log_warning("reading a session's state failed (%s); the client keeps its session",
                    error ? error : "unexpected result");
        l->pinned = true;
        return;
    }
    free(l->sets);
    l->sets = values[0] && *values[0] ? pgw_strdup(values[0]) : NULL;
    if (l->be) {
        free(l->be->applied_sets);
        l->be->applied_sets = l->sets ? pgw_strdup(l->sets) : NULL;
    }
    l->pinned = values[1] && strcmp(values[1], "0") != 0;
    /* What the server still has (a DEALLOCATE of one name, even of a
     * shared one, is seen here). */
    if (l->be)
        pool_count_prepared(l->pool, -(int)backend_stmt_retain(l->be, values[2], l->state_clock));
}

void link_quiet(PgwLink *l)
{
    PgwBackend *b = l->be;
    if (!l->txn || !b || l->waiting || l->answer_pending || l->partial || l->state_query)
        return;
    if (!backend_reusable(b) || b->tx_status != 'I')
        return;
    if (l->dirty) {
        l->state_clock = b->stmt_clock; /* what is prepared after it is not in its answer */
        l->state_query = backend_internal_query(b, state_sql, state_read, l);
        return; /* idle follows, and brings the client back here */
    }
    if (l->pinned)
        return;
    link_give_back(l);
}

static void errs_clear(PgwLink *l)
{
    while (l->errs_head) {
        PgwLinkErr *e = l->errs_head;
        l->errs_head = e->next;
        buf_free(&e->msg);
        free(e);
    }
    l->errs_tail = NULL;
}

void link_txn_lost(PgwLink *l)
{
    l->pinned = false;
    l->dirty = false;
    errs_clear(l); /* their turn will never come */
}

void link_txn_free(PgwLink *l)
{
    stmts_clear(l);
    free(l->sets);
    l->sets = NULL;
    errs_clear(l);
}
