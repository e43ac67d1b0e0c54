/*
 * changes_proto.c — see changes_proto.h. One bounds-checked reader (Rd)
 * that every parser uses: each take_* checks the bytes are there before it
 * reads them and latches the first failure, so a parser reads straight
 * through its message and checks once at the end (including that nothing
 * is left over).
 */
#include "changes_proto.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct Rd {
    const uint8_t *p;
    size_t len, pos;
    const char *what; /* first failure, NULL while fine */
} Rd;

static bool need(Rd *r, size_t n, const char *what)
{
    if (r->what)
        return false;
    if (r->len - r->pos < n) {
        r->what = what;
        return false;
    }
    return true;
}

static uint8_t take_u8(Rd *r, const char *what)
{
    if (!need(r, 1, what))
        return 0;
    return r->p[r->pos++];
}

static uint16_t take_u16(Rd *r, const char *what)
{
    if (!need(r, 2, what))
        return 0;
    uint16_t v = (uint16_t)((uint16_t)r->p[r->pos] << 8 | r->p[r->pos + 1]);
    r->pos += 2;
    return v;
}

static uint32_t take_u32(Rd *r, const char *what)
{
    if (!need(r, 4, what))
        return 0;
    const uint8_t *p = r->p + r->pos;
    r->pos += 4;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t take_u64(Rd *r, const char *what)
{
    uint64_t hi = take_u32(r, what);
    uint64_t lo = take_u32(r, what);
    return hi << 32 | lo;
}

/* A NUL-terminated string inside the message. */
static const char *take_str(Rd *r, const char *what)
{
    if (r->what)
        return NULL;
    const uint8_t *start = r->p + r->pos;
    const uint8_t *nul = memchr(start, '\0', r->len - r->pos);
    if (!nul) {
        r->what = what;
        return NULL;
    }
    r->pos += (size_t)(nul - start) + 1;
    return (const char *)start;
}

static void skip(Rd *r, size_t n, const char *what)
{
    if (need(r, n, what))
        r->pos += n;
}

static int finish(Rd *r, const char *msg, char *err, size_t errlen)
{
    if (!r->what && r->pos != r->len)
        r->what = "trailing bytes";
    if (!r->what)
        return 0;
    snprintf(err, errlen, "malformed %s message: %s", msg, r->what);
    return -1;
}

static int refuse(char *err, size_t errlen, const char *fmt, ...) PGW_PRINTF(3, 4);
static int refuse(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- streaming replication --------------------------------------------- */

int changes_parse_copy(const uint8_t *data, size_t len, PgwReplMsg *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return refuse(err, errlen, "empty CopyData message from the server");
    Rd r = {data, len, 1, NULL};
    switch (data[0]) {
    case 'w':
        out->kind = PGW_REPL_XLOGDATA;
        out->wal_start = take_u64(&r, "no start position");
        out->wal_end = take_u64(&r, "no end position");
        out->send_time = (int64_t)take_u64(&r, "no send time");
        if (r.what)
            return finish(&r, "XLogData", err, errlen);
        out->payload = data + r.pos;
        out->payload_len = len - r.pos;
        return 0;
    case 'k':
        out->kind = PGW_REPL_KEEPALIVE;
        out->wal_end = take_u64(&r, "no end position");
        out->send_time = (int64_t)take_u64(&r, "no send time");
        out->reply_requested = take_u8(&r, "no reply flag") != 0;
        return finish(&r, "keepalive", err, errlen);
    default:
        return refuse(err, errlen, "unexpected CopyData message type 0x%02x from the server",
                      data[0]);
    }
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

void changes_encode_status(uint8_t out[PGW_REPL_STATUS_LEN], uint64_t written, uint64_t flushed,
                           uint64_t applied, int64_t client_time, bool reply_requested)
{
    out[0] = 'r';
    put_u64(out + 1, written);
    put_u64(out + 9, flushed);
    put_u64(out + 17, applied);
    put_u64(out + 25, (uint64_t)client_time);
    out[33] = reply_requested ? 1 : 0;
}

void changes_format_lsn(uint64_t lsn, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRIX32 "/%" PRIX32, (uint32_t)(lsn >> 32), (uint32_t)lsn);
}

int changes_parse_lsn(const char *s, uint64_t *out)
{
    uint64_t hi = 0, lo = 0;
    int digits = 0;
    for (; *s && *s != '/'; s++, digits++) {
        int d = *s >= '0' && *s <= '9'   ? *s - '0'
                : *s >= 'A' && *s <= 'F' ? *s - 'A' + 10
                : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
                                         : -1;
        if (d < 0 || digits >= 8)
            return -1;
        hi = hi << 4 | (uint64_t)d;
    }
    if (*s != '/' || digits == 0)
        return -1;
    digits = 0;
    for (s++; *s; s++, digits++) {
        int d = *s >= '0' && *s <= '9'   ? *s - '0'
                : *s >= 'A' && *s <= 'F' ? *s - 'A' + 10
                : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
                                         : -1;
        if (d < 0 || digits >= 8)
            return -1;
        lo = lo << 4 | (uint64_t)d;
    }
    if (digits == 0)
        return -1;
    *out = hi << 32 | lo;
    return 0;
}

/* ---- pgoutput ------------------------------------------------------------ */

/* TupleData: Int16 columns, then per column 'n' (NULL), 'u' (unchanged
 * TOASTed value) or 't'/'b' (text/binary) with Int32 length and bytes. */
static void skip_tuple(Rd *r)
{
    uint16_t ncols = take_u16(r, "tuple has no column count");
    for (uint16_t i = 0; i < ncols && !r->what; i++) {
        uint8_t kind = take_u8(r, "tuple ends before its columns");
        switch (kind) {
        case 'n':
        case 'u':
            break;
        case 't':
        case 'b': {
            uint32_t n = take_u32(r, "column value has no length");
            skip(r, n, "column value longer than the message");
            break;
        }
        default:
            if (!r->what)
                r->what = "unknown column kind in tuple";
        }
    }
}

const char *changes_lr_kind_name(PgwLrKind kind)
{
    switch (kind) {
    case PGW_LR_BEGIN:
        return "Begin";
    case PGW_LR_COMMIT:
        return "Commit";
    case PGW_LR_ORIGIN:
        return "Origin";
    case PGW_LR_RELATION:
        return "Relation";
    case PGW_LR_TYPE:
        return "Type";
    case PGW_LR_INSERT:
        return "Insert";
    case PGW_LR_UPDATE:
        return "Update";
    case PGW_LR_DELETE:
        return "Delete";
    case PGW_LR_TRUNCATE:
        return "Truncate";
    case PGW_LR_MESSAGE:
        return "Message";
    }
    return "?";
}

int changes_parse_pgoutput(const uint8_t *data, size_t len, PgwLrMsg *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    if (len == 0)
        return refuse(err, errlen, "empty pgoutput message");
    Rd r = {data, len, 1, NULL};
    m->kind = (PgwLrKind)data[0];
    switch (data[0]) {
    case 'B':
        m->lsn = take_u64(&r, "no final LSN");
        m->commit_time = (int64_t)take_u64(&r, "no commit time");
        m->xid = take_u32(&r, "no xid");
        break;
    case 'C':
        m->flags = take_u8(&r, "no flags");
        m->lsn = take_u64(&r, "no commit LSN");
        m->end_lsn = take_u64(&r, "no end LSN");
        m->commit_time = (int64_t)take_u64(&r, "no commit time");
        break;
    case 'O':
        m->lsn = take_u64(&r, "no origin LSN");
        m->name = take_str(&r, "origin name not terminated");
        break;
    case 'R': {
        m->relid = take_u32(&r, "no relation id");
        m->nspname = take_str(&r, "namespace not terminated");
        m->name = take_str(&r, "relation name not terminated");
        m->replident = (char)take_u8(&r, "no replica identity");
        m->ncolumns = take_u16(&r, "no column count");
        m->body = data + r.pos;
        for (uint16_t i = 0; i < m->ncolumns && !r.what; i++) {
            take_u8(&r, "column ends early");
            take_str(&r, "column name not terminated");
            take_u32(&r, "column has no type");
            take_u32(&r, "column has no type modifier");
        }
        m->body_len = r.what ? 0 : (size_t)(data + r.pos - m->body);
        break;
    }
    case 'Y':
        m->relid = take_u32(&r, "no type id");
        m->nspname = take_str(&r, "namespace not terminated");
        m->name = take_str(&r, "type name not terminated");
        break;
    case 'I':
        m->relid = take_u32(&r, "no relation id");
        if (take_u8(&r, "no new tuple") != 'N' && !r.what)
            r.what = "expected 'N' before the new tuple";
        m->new_tuple = true;
        m->new_data = data + r.pos;
        skip_tuple(&r);
        break;
    case 'U': {
        m->relid = take_u32(&r, "no relation id");
        uint8_t c = take_u8(&r, "no tuple");
        if (c == 'K' || c == 'O') {
            m->old_tuple = (char)c;
            m->old_data = data + r.pos;
            skip_tuple(&r);
            c = take_u8(&r, "no new tuple");
        }
        if (c != 'N' && !r.what)
            r.what = "expected 'N' before the new tuple";
        m->new_tuple = true;
        m->new_data = data + r.pos;
        skip_tuple(&r);
        break;
    }
    case 'D': {
        m->relid = take_u32(&r, "no relation id");
        uint8_t c = take_u8(&r, "no old tuple");
        if (c != 'K' && c != 'O' && !r.what)
            r.what = "expected 'K' or 'O' before the old tuple";
        m->old_tuple = (char)c;
        m->old_data = data + r.pos;
        skip_tuple(&r);
        break;
    }
    case 'T':
        m->nrelids = take_u32(&r, "no relation count");
        m->flags = take_u8(&r, "no options");
        m->body = data + r.pos;
        /* checked before multiplying: a huge count cannot wrap the size */
        if (!r.what && m->nrelids > (len - r.pos) / 4)
            r.what = "more relation ids than bytes";
        skip(&r, (size_t)m->nrelids * 4, "relation ids end early");
        m->body_len = r.what ? 0 : (size_t)m->nrelids * 4;
        break;
    case 'M': {
        m->flags = take_u8(&r, "no flags");
        m->lsn = take_u64(&r, "no LSN");
        m->name = take_str(&r, "prefix not terminated");
        uint32_t n = take_u32(&r, "no content length");
        if (need(&r, n, "content longer than the message")) {
            m->content = data + r.pos;
            m->content_len = n;
            r.pos += n;
        }
        break;
    }
    default:
        return refuse(err, errlen,
                      "unexpected pgoutput message type 0x%02x (the stream asks for protocol "
                      "version 1: no streamed or two-phase transactions)",
                      data[0]);
    }
    char what[32];
    snprintf(what, sizeof what, "%s", changes_lr_kind_name(m->kind));
    if (finish(&r, what, err, errlen) < 0) {
        PgwLrKind kind = m->kind;
        memset(m, 0, sizeof *m);
        m->kind = kind;
        return -1;
    }
    return 0;
}

/* The accessors walk bytes the parser already checked: no bounds needed
 * beyond the ones it proved. */
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const uint8_t *column_at(const uint8_t *p, PgwLrColumn *out)
{
    out->key = (*p++ & 1) != 0;
    out->name = (const char *)p;
    p += strlen(out->name) + 1;
    out->type_oid = be32(p);
    out->typmod = (int32_t)be32(p + 4);
    return p + 8;
}

void changes_lr_column(const PgwLrMsg *m, uint16_t i, PgwLrColumn *out)
{
    const uint8_t *p = m->body;
    for (uint16_t k = 0; k <= i; k++)
        p = column_at(p, out);
}

void changes_lr_columns(const PgwLrMsg *m, PgwLrColumn *out)
{
    const uint8_t *p = m->body;
    for (uint16_t k = 0; k < m->ncolumns; k++)
        p = column_at(p, &out[k]);
}

size_t changes_lr_tuple_kinds(const PgwLrMsg *m, bool old, char *out, size_t len)
{
    const uint8_t *p = old ? m->old_data : m->new_data;
    if (len > 0)
        out[0] = '\0';
    if (!p)
        return 0;
    uint16_t ncols = (uint16_t)(p[0] << 8 | p[1]);
    p += 2;
    for (uint16_t i = 0; i < ncols; i++) {
        char kind = (char)*p++;
        if (kind == 't' || kind == 'b')
            p += 4 + be32(p);
        if ((size_t)i + 1 < len) {
            out[i] = kind;
            out[i + 1] = '\0';
        }
    }
    return ncols;
}

uint32_t changes_lr_truncate_relid(const PgwLrMsg *m, uint32_t i)
{
    return be32(m->body + (size_t)i * 4);
}
