/*
 * test_changes.c — unit tests for the replication protocol and pgoutput
 * parsers (src/changes_proto.c) and the stream's database key
 * (src/changes.c).
 *
 * What a user would notice if the decoder were wrong: a cached answer
 * never invalidated because a change was misread as another table or not
 * at all, or a malformed stream crashing the gateway. So:
 *  - "captured stream": tests/unit/test_changes.stream holds the CopyData
 *    messages of a real stream (written by changes_follow --capture while
 *    test_invalidation_stream.py ran its workload: one of every message
 *    kind and tuple shape). Each is decoded and rendered as one line, and
 *    the lines must be exactly the expected ones below; positions must
 *    grow and each Begin must announce its Commit. PGW_CHANGES_STREAM
 *    names another capture to check (the integration test does that with
 *    a fresh one, so the expectations are checked against today's server).
 *  - "malformed": every captured message cut short at every length, and
 *    with a stray byte appended, is refused; hand-made messages with lying
 *    counts and unknown kinds are refused with a reason; mutated bytes
 *    from a fixed seed are refused or parsed, never read out of bounds
 *    (every input is copied to a heap block of exactly its length, so an
 *    over-read is an invalid read valgrind reports).
 *  - "encoding": standby status updates byte for byte, LSN text both ways.
 *  - "database key": conninfos naming the same database share a key.
 *  - "config": the settings that turn the stream on and point it.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "changes.h"
#include "changes_proto.h"
#include "config.h"

#define BYTES(lit) (const uint8_t *)(lit), (sizeof(lit) - 1)

static uint8_t *exact_copy(const uint8_t *data, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    ck_assert(p != NULL);
    if (len)
        memcpy(p, data, len);
    return p;
}

/* ---- the captured stream ---- */

typedef struct Msg {
    uint8_t *data;
    size_t len;
} Msg;

static Msg *msgs;
static size_t nmsgs;

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void load_stream(void)
{
    if (msgs)
        return;
    char path[4096];
    const char *env = getenv("PGW_CHANGES_STREAM");
    if (env)
        snprintf(path, sizeof path, "%s", env);
    else
        snprintf(path, sizeof path, "%s/tests/unit/test_changes.stream", TEST_SRCDIR);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        ck_assert_msg(n % 2 == 0, "odd hex line in %s", path);
        msgs = realloc(msgs, (nmsgs + 1) * sizeof *msgs);
        Msg *m = &msgs[nmsgs++];
        m->len = (size_t)n / 2;
        m->data = malloc(m->len);
        for (size_t i = 0; i < m->len; i++) {
            int hi = hexval(line[2 * i]), lo = hexval(line[2 * i + 1]);
            ck_assert(hi >= 0 && lo >= 0);
            m->data[i] = (uint8_t)(hi << 4 | lo);
        }
    }
    free(line);
    fclose(f);
    ck_assert_msg(nmsgs > 0, "no messages in %s", path);
}

/* Names the stream gave relation and type OIDs, to render OIDs by name. */
typedef struct Name {
    uint32_t oid;
    char text[128];
} Name;
static Name names[64];
static size_t nnames;

static void remember(uint32_t oid, const char *nsp, const char *name)
{
    for (size_t i = 0; i < nnames; i++)
        if (names[i].oid == oid) {
            snprintf(names[i].text, sizeof names[i].text, "%s.%s", nsp, name);
            return;
        }
    ck_assert(nnames < 64);
    names[nnames].oid = oid;
    snprintf(names[nnames++].text, sizeof names[0].text, "%s.%s", nsp, name);
}

static const char *name_of(uint32_t oid, char *buf, size_t len)
{
    for (size_t i = 0; i < nnames; i++)
        if (names[i].oid == oid)
            return names[i].text;
    snprintf(buf, len, "%u", oid);
    return buf;
}

static void tuple(char *out, size_t len, const PgwLrMsg *m, bool old, char tag)
{
    char kinds[64];
    size_t n = changes_lr_tuple_kinds(m, old, kinds, sizeof kinds);
    ck_assert_uint_eq(strlen(kinds), n);
    size_t used = strlen(out);
    snprintf(out + used, len - used, " %c:%s", tag, kinds);
}

/* One pgoutput message as one line of text. */
static void render(const PgwLrMsg *m, char *out, size_t len)
{
    char a[32], b[32];
    switch (m->kind) {
    case PGW_LR_BEGIN:
    case PGW_LR_COMMIT:
        snprintf(out, len, "%s", changes_lr_kind_name(m->kind));
        return;
    case PGW_LR_ORIGIN:
        snprintf(out, len, "Origin %s", m->name);
        return;
    case PGW_LR_TYPE:
        remember(m->relid, m->nspname, m->name);
        snprintf(out, len, "Type %s.%s", m->nspname, m->name);
        return;
    case PGW_LR_RELATION: {
        remember(m->relid, m->nspname, m->name);
        snprintf(out, len, "Relation %s.%s %c", m->nspname, m->name, m->replident);
        PgwLrColumn cols[32];
        ck_assert(m->ncolumns <= 32);
        changes_lr_columns(m, cols);
        for (uint16_t i = 0; i < m->ncolumns; i++) {
            PgwLrColumn one;
            changes_lr_column(m, i, &one); /* the walker agrees with the array */
            ck_assert_str_eq(one.name, cols[i].name);
            ck_assert_uint_eq(one.type_oid, cols[i].type_oid);
            size_t used = strlen(out);
            snprintf(out + used, len - used, " %s:%s", cols[i].name,
                     name_of(cols[i].type_oid, a, sizeof a));
            used = strlen(out);
            if (cols[i].typmod != -1)
                snprintf(out + used, len - used, ":%d", cols[i].typmod);
            used = strlen(out);
            if (cols[i].key)
                snprintf(out + used, len - used, ":key");
        }
        return;
    }
    case PGW_LR_INSERT:
    case PGW_LR_UPDATE:
    case PGW_LR_DELETE:
        snprintf(out, len, "%s %s", changes_lr_kind_name(m->kind), name_of(m->relid, a, sizeof a));
        if (m->old_tuple)
            tuple(out, len, m, true, m->old_tuple);
        if (m->new_tuple)
            tuple(out, len, m, false, 'N');
        return;
    case PGW_LR_TRUNCATE:
        snprintf(out, len, "Truncate");
        for (uint32_t i = 0; i < m->nrelids; i++) {
            size_t used = strlen(out);
            snprintf(out + used, len - used, "%c%s", i ? ',' : ' ',
                     name_of(changes_lr_truncate_relid(m, i), b, sizeof b));
        }
        size_t used = strlen(out);
        snprintf(out + used, len - used, " options=%u", m->flags);
        return;
    case PGW_LR_MESSAGE:
        snprintf(out, len, "Message %s %s '%.*s'", m->name,
                 (m->flags & 1) ? "transactional" : "immediate", (int)m->content_len,
                 (const char *)m->content);
        return;
    }
    ck_abort_msg("unknown kind");
}

static const char *const expected[] = {
    /* INSERT INTO items VALUES (1, 'widget', 9.99), (2, NULL, 24.50) */
    "Begin",
    "Relation public.items d id:23:key label:25 price:1700:524294",
    "Insert public.items N:ttt",
    "Insert public.items N:tnt",
    "Commit",
    /* UPDATE items SET label = 'gadget' WHERE id = 2: no old tuple */
    "Begin",
    "Update public.items N:ttt",
    "Commit",
    /* UPDATE items SET id = 3 WHERE id = 1: the old key */
    "Begin",
    "Update public.items K:tnn N:ttt",
    "Commit",
    /* INSERT INTO notes (REPLICA IDENTITY FULL, an enum column) */
    "Begin",
    "Type public.mood",
    "Relation public.notes f id:23:key body:25:key mood:public.mood:key",
    "Insert public.notes N:ttt",
    "Commit",
    /* UPDATE notes: the whole old row */
    "Begin",
    "Update public.notes O:ttt N:ttt",
    "Commit",
    "Begin",
    "Delete public.items K:tnn",
    "Commit",
    "Begin",
    "Delete public.notes O:ttt",
    "Commit",
    /* INSERT INTO docs (a TOASTed column) */
    "Begin",
    "Relation public.docs d id:23:key n:23 big:25",
    "Insert public.docs N:ttt",
    "Commit",
    /* UPDATE docs SET n = 1: the TOASTed value is sent as unchanged */
    "Begin",
    "Update public.docs N:ttu",
    "Commit",
    /* one transaction over two tables */
    "Begin",
    "Insert public.items N:ttt",
    "Insert public.notes N:ttt",
    "Update public.items N:ttt",
    "Commit",
    /* TRUNCATE items, notes (both described again first: repeats, skipped) */
    "Begin",
    "Truncate public.items,public.notes options=0",
    "Commit",
    /* ALTER TABLE items ADD COLUMN stock; INSERT: the new shape */
    "Begin",
    "Relation public.items d id:23:key label:25 price:1700:524294 stock:23",
    "Insert public.items N:tttt",
    "Commit",
    /* pg_logical_emit_message(true, ...) and (false, ...) */
    "Begin",
    "Message pgwarden transactional 'transactional hello'",
    "Commit",
    "Message pgwarden immediate 'immediate'",
    /* a write under a replication origin */
    "Begin",
    "Origin pgw_capture_origin",
    "Insert public.items N:tttt",
    "Commit",
};

START_TEST(test_captured_stream)
{
    load_stream();
    nnames = 0;
    size_t next = 0, keepalives = 0, repeats = 0, nseen = 0;
    struct {
        uint32_t oid;
        char line[512];
    } seen[16];
    uint64_t last_end = 0, begin_final = 0;
    int64_t begin_time = 0;
    for (size_t i = 0; i < nmsgs; i++) {
        uint8_t *copy = exact_copy(msgs[i].data, msgs[i].len);
        PgwReplMsg rm;
        char err[200];
        ck_assert_msg(changes_parse_copy(copy, msgs[i].len, &rm, err, sizeof err) == 0,
                      "message %zu: %s", i, err);
        if (rm.kind == PGW_REPL_KEEPALIVE) {
            keepalives++;
            free(copy);
            continue;
        }
        ck_assert_uint_eq(rm.wal_start, rm.wal_end); /* logical: one position per message */
        PgwLrMsg m;
        ck_assert_msg(changes_parse_pgoutput(rm.payload, rm.payload_len, &m, err, sizeof err) == 0,
                      "message %zu: %s", i, err);
        char line[512];
        render(&m, line, sizeof line);
        /* The server describes a relation (and its types) again whenever
         * its cache entry was invalidated — by a TRUNCATE, an autovacuum's
         * statistics — so a description identical to the last one of the
         * same object says nothing: skip it (the stream ignores it too). */
        if (m.kind == PGW_LR_RELATION || m.kind == PGW_LR_TYPE) {
            bool repeat = false;
            for (size_t k = 0; k < nseen && !repeat; k++)
                repeat = seen[k].oid == m.relid && strcmp(seen[k].line, line) == 0;
            if (repeat) {
                repeats++;
                free(copy);
                continue;
            }
            size_t k = 0;
            while (k < nseen && seen[k].oid != m.relid)
                k++;
            ck_assert(k < PGW_ARRAY_LEN(seen));
            if (k == nseen)
                nseen++;
            seen[k].oid = m.relid;
            snprintf(seen[k].line, sizeof seen[k].line, "%s", line);
        }
        ck_assert_msg(next < PGW_ARRAY_LEN(expected), "more messages than expected: %s", line);
        ck_assert_str_eq(line, expected[next]);
        next++;
        if (m.kind == PGW_LR_BEGIN) {
            ck_assert_uint_ne(m.xid, 0);
            begin_final = m.lsn;
            begin_time = m.commit_time;
        } else if (m.kind == PGW_LR_COMMIT) {
            ck_assert_uint_eq(m.lsn, begin_final); /* Begin announced this commit */
            ck_assert_int_eq(m.commit_time, begin_time);
            ck_assert_uint_gt(m.end_lsn, m.lsn);
            ck_assert_uint_gt(m.end_lsn, last_end);
            last_end = m.end_lsn;
        }
        free(copy);
    }
    ck_assert_uint_eq(next, PGW_ARRAY_LEN(expected));
    ck_assert_uint_gt(keepalives, 0);
    ck_assert_uint_ge(repeats, 3); /* at least TRUNCATE's */
}
END_TEST

/* ---- malformed input ---- */

static int parse_any(const uint8_t *data, size_t len, bool pgoutput)
{
    uint8_t *copy = exact_copy(data, len);
    char err[200] = "";
    int r;
    if (pgoutput) {
        PgwLrMsg m;
        r = changes_parse_pgoutput(copy, len, &m, err, sizeof err);
        if (r == 0 && m.kind == PGW_LR_RELATION) { /* the accessors stay inside */
            PgwLrColumn cols[1024];
            if (m.ncolumns <= 1024)
                changes_lr_columns(&m, cols);
        }
        if (r == 0) {
            char kinds[8];
            changes_lr_tuple_kinds(&m, true, kinds, sizeof kinds);
            changes_lr_tuple_kinds(&m, false, kinds, sizeof kinds);
            for (uint32_t i = 0; i < m.nrelids; i++)
                (void)changes_lr_truncate_relid(&m, i);
        }
    } else {
        PgwReplMsg m;
        r = changes_parse_copy(copy, len, &m, err, sizeof err);
    }
    if (r < 0)
        ck_assert_msg(err[0] != '\0', "a refusal without a reason");
    free(copy);
    return r;
}

START_TEST(test_cut_and_padded)
{
    load_stream();
    for (size_t i = 0; i < nmsgs; i++) {
        const uint8_t *d = msgs[i].data;
        size_t len = msgs[i].len;
        bool xlog = d[0] == 'w';
        const uint8_t *body = xlog ? d + 25 : d;
        size_t blen = xlog ? len - 25 : len;
        for (size_t cut = 0; cut < blen; cut++)
            ck_assert_msg(parse_any(body, cut, xlog) < 0, "message %zu cut to %zu accepted", i,
                          cut);
        uint8_t *padded = malloc(blen + 1);
        memcpy(padded, body, blen);
        padded[blen] = 0;
        ck_assert_msg(parse_any(padded, blen + 1, xlog) < 0, "message %zu padded accepted", i);
        free(padded);
        /* XLogData's own header cut short */
        if (xlog)
            for (size_t cut = 0; cut < 25; cut++)
                ck_assert(parse_any(d, cut, false) < 0);
    }
}
END_TEST

static const struct {
    const char *what;
    const uint8_t *data;
    size_t len;
    const char *reason; /* a part of the refusal */
} bad_pgoutput[] = {
    {"a streamed transaction's start (protocol 2)", BYTES("S\0\0\0\1\1"), "protocol version 1"},
    {"an unknown kind", BYTES("Z"), "unexpected pgoutput message type 0x5a"},
    {"truncate counting more relations than it has", BYTES("T\x7f\xff\xff\xff\0\0\0\0\1"),
     "more relation ids than bytes"},
    {"insert without its N", BYTES("I\0\0\0\1X\0\0"), "expected 'N'"},
    {"delete with a new tuple only", BYTES("D\0\0\0\1N\0\0"), "expected 'K' or 'O'"},
    {"update with old tuple but no new", BYTES("U\0\0\0\1K\0\0"), "no new tuple"},
    {"a column of unknown kind", BYTES("I\0\0\0\1N\0\1x"), "unknown column kind"},
    {"a column longer than the message",
     BYTES("I\0\0\0\1N\0\1t\0\0\0\x09"
           "abc"),
     "longer than the message"},
    {"relation name without its NUL", BYTES("R\0\0\0\1public\0items"), "not terminated"},
    {"relation with more columns than bytes", BYTES("R\0\0\0\1public\0t\0d\0\2\1id\0\0\0\0\x17"),
     "column"},
    {"message content longer than the message",
     BYTES("M\1\0\0\0\0\0\0\0\1p\0\0\0\0\x10"
           "ab"),
     "content longer"},
};

START_TEST(test_bad_pgoutput)
{
    for (size_t i = 0; i < PGW_ARRAY_LEN(bad_pgoutput); i++) {
        uint8_t *copy = exact_copy(bad_pgoutput[i].data, bad_pgoutput[i].len);
        PgwLrMsg m;
        char err[200] = "";
        ck_assert_msg(changes_parse_pgoutput(copy, bad_pgoutput[i].len, &m, err, sizeof err) < 0,
                      "%s accepted", bad_pgoutput[i].what);
        ck_assert_msg(strstr(err, bad_pgoutput[i].reason) != NULL, "%s: '%s' lacks '%s'",
                      bad_pgoutput[i].what, err, bad_pgoutput[i].reason);
        free(copy);
    }
    /* and the replication envelope */
    PgwReplMsg rm;
    char err[200];
    ck_assert_int_eq(changes_parse_copy(BYTES("x"), &rm, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "unexpected CopyData message type 0x78"));
    ck_assert_int_eq(changes_parse_copy((const uint8_t *)"", 0, &rm, err, sizeof err), -1);
}
END_TEST

START_TEST(test_mutations_never_overread)
{
    load_stream();
    uint32_t seed = 20240229;
    for (int round = 0; round < 20000; round++) {
        const Msg *src = &msgs[(size_t)round % nmsgs];
        bool xlog = src->data[0] == 'w';
        const uint8_t *body = xlog ? src->data + 25 : src->data;
        size_t len = xlog ? src->len - 25 : src->len;
        uint8_t *m = exact_copy(body, len);
        for (int k = 0; k < 3 && len > 0; k++) {
            seed = seed * 1103515245u + 12345u;
            m[(seed >> 8) % len] = (uint8_t)(seed >> 20);
        }
        seed = seed * 1103515245u + 12345u;
        size_t cut = len ? (seed >> 8) % (len + 1) : 0;
        (void)parse_any(m, cut, xlog);
        (void)parse_any(m, len, xlog);
        free(m);
    }
}
END_TEST

/* ---- encoding ---- */

START_TEST(test_status_update)
{
    uint8_t out[PGW_REPL_STATUS_LEN];
    changes_encode_status(out, 0x0000000116B374D8ull, 0x0000000116B374D8ull, 0x1ull,
                          INT64_C(0x0102030405060708), true);
    static const uint8_t want[PGW_REPL_STATUS_LEN] = {
        'r', /* standby status update */
        0,   0, 0, 1, 0x16, 0xb3, 0x74, 0xd8, /* written */
        0,   0, 0, 1, 0x16, 0xb3, 0x74, 0xd8, /* flushed */
        0,   0, 0, 0, 0,    0,    0,    1, /* applied */
        1,   2, 3, 4, 5,    6,    7,    8, /* client clock */
        1, /* reply requested */
    };
    ck_assert_mem_eq(out, want, sizeof want);
    changes_encode_status(out, 0, 0, 0, 0, false);
    ck_assert_uint_eq(out[33], 0);
}
END_TEST

START_TEST(test_lsn_text)
{
    char buf[32];
    changes_format_lsn(0x16B374D848ull, buf, sizeof buf);
    ck_assert_str_eq(buf, "16/B374D848");
    changes_format_lsn(0, buf, sizeof buf);
    ck_assert_str_eq(buf, "0/0");
    uint64_t v;
    ck_assert_int_eq(changes_parse_lsn("16/B374D848", &v), 0);
    ck_assert_uint_eq(v, 0x16B374D848ull);
    ck_assert_int_eq(changes_parse_lsn("ffffffff/ffffffff", &v), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
    static const char *const bad[] = {"",    "/",     "1/",          "/1",          "1",
                                      "g/1", "1/1/1", "123456789/0", "0/123456789", "1 /1"};
    for (size_t i = 0; i < PGW_ARRAY_LEN(bad); i++)
        ck_assert_msg(changes_parse_lsn(bad[i], &v) < 0, "'%s' accepted", bad[i]);
}
END_TEST

/* ---- database key ---- */

static const struct {
    const char *a, *b;
    bool same;
} keys[] = {
    {"host=10.0.0.5 port=5432 dbname=saas user=reader",
     "dbname=saas host=10.0.0.5 user=other application_name=x", true},
    {"host=10.0.0.5 dbname=saas user=reader", "postgresql://changes@10.0.0.5:5432/saas", true},
    {"host=10.0.0.5 dbname=saas", "host=10.0.0.5 dbname=other", false},
    {"host=10.0.0.5 dbname=saas", "host=10.0.0.6 dbname=saas", false},
    {"host=10.0.0.5 dbname=saas", "host=10.0.0.5 port=5433 dbname=saas", false},
    /* no dbname: libpq uses the user's name */
    {"host=10.0.0.5 user=saas", "host=10.0.0.5 dbname=saas user=reader", true},
    /* hostaddr decides where libpq connects */
    {"host=db.example hostaddr=10.0.0.5 dbname=saas", "host=10.0.0.5 dbname=saas", true},
};

START_TEST(test_database_key)
{
    static const char *const env[] = {"PGHOST",     "PGHOSTADDR", "PGPORT",
                                      "PGDATABASE", "PGUSER",     "PGSERVICE"};
    for (size_t i = 0; i < PGW_ARRAY_LEN(env); i++)
        unsetenv(env[i]);
    for (size_t i = 0; i < PGW_ARRAY_LEN(keys); i++) {
        char ka[256], kb[256], err[256];
        ck_assert_int_eq(changes_database_key(keys[i].a, ka, sizeof ka, err, sizeof err), 0);
        ck_assert_int_eq(changes_database_key(keys[i].b, kb, sizeof kb, err, sizeof err), 0);
        ck_assert_msg((strcmp(ka, kb) == 0) == keys[i].same, "'%s' vs '%s': %s / %s", keys[i].a,
                      keys[i].b, ka, kb);
    }
    char k[256], err[256];
    ck_assert_int_eq(
        changes_database_key("host=h port=6000 dbname=d", k, sizeof k, err, sizeof err), 0);
    ck_assert_str_eq(k, "host=h port=6000 dbname=d");
    /* libpq's environment defaults count */
    setenv("PGPORT", "6001", 1);
    ck_assert_int_eq(changes_database_key("host=h dbname=d", k, sizeof k, err, sizeof err), 0);
    ck_assert_str_eq(k, "host=h port=6001 dbname=d");
    unsetenv("PGPORT");
    ck_assert_int_eq(changes_database_key("host=h dbname", k, sizeof k, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "invalid conninfo"));
}
END_TEST

/* ---- config ---- */

#define TENANTS                                                                                    \
    "[pgwarden]\nauth_type = trust\n"                                                              \
    "[tenant.acme]\nbackend = host=db dbname=saas user=reader\n"                                   \
    "changes = host=db dbname=saas user=changes\n"                                                 \
    "[tenant.globex]\nbackend = host=db dbname=saas user=reader\n"

START_TEST(test_config)
{
    PgwConfig *cfg = NULL;
    char err[512];
    ck_assert_msg(config_parse_string("t.ini", TENANTS, &cfg, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(cfg->cache_invalidation, PGW_INVALIDATE_TTL);
    ck_assert_str_eq(cfg->cache_publication, "pgwarden_cache");
    ck_assert_str_eq(config_tenant(cfg, "acme")->changes, "host=db dbname=saas user=changes");
    ck_assert_ptr_null(config_tenant(cfg, "globex")->changes);
    config_free(cfg);
    /* empty, as DESIGN.md's example writes it: the default */
    ck_assert_msg(config_parse_string("t.ini", TENANTS "changes =\n", &cfg, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_ptr_null(config_tenant(cfg, "globex")->changes);
    config_free(cfg);

    ck_assert_msg(config_parse_string(
                      "t.ini", "[cache]\ninvalidation = replication\npublication = pub\n" TENANTS,
                      &cfg, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(cfg->cache_invalidation, PGW_INVALIDATE_REPLICATION);
    ck_assert_str_eq(cfg->cache_publication, "pub");
    config_free(cfg);

    static const struct {
        const char *text, *error;
    } bad[] = {
        {"[cache]\ninvalidation = stream\n" TENANTS, "t.ini:2:"},
        {"[cache]\npublication =\n" TENANTS, "t.ini:2:"},
        {TENANTS "[tenant.a]\nbackend = host=db\nchanges = host=db dbname\n",
         "t.ini:10: invalid changes conninfo: missing \"=\" after \"dbname\""},
        {TENANTS "[tenant.a]\nbackend = host=db\nchanges = host=x\nchanges = host=y\n",
         "t.ini:11:"},
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(bad); i++) {
        cfg = NULL;
        ck_assert_msg(config_parse_string("t.ini", bad[i].text, &cfg, err, sizeof err) < 0,
                      "accepted: %s", bad[i].text);
        ck_assert_msg(strncmp(err, bad[i].error, strlen(bad[i].error)) == 0, "'%s' for %s", err,
                      bad[i].text);
        ck_assert_msg(strchr(err, '\n') == NULL, "'%s': one line", err);
    }
}
END_TEST

static Suite *changes_suite(void)
{
    Suite *s = suite_create("changes");
    TCase *tc = tcase_create("captured stream");
    tcase_add_test(tc, test_captured_stream);
    suite_add_tcase(s, tc);
    tc = tcase_create("malformed");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cut_and_padded);
    tcase_add_test(tc, test_bad_pgoutput);
    tcase_add_test(tc, test_mutations_never_overread);
    suite_add_tcase(s, tc);
    tc = tcase_create("encoding");
    tcase_add_test(tc, test_status_update);
    tcase_add_test(tc, test_lsn_text);
    suite_add_tcase(s, tc);
    tc = tcase_create("database key");
    tcase_add_test(tc, test_database_key);
    suite_add_tcase(s, tc);
    tc = tcase_create("config");
    tcase_add_test(tc, test_config);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(changes_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
