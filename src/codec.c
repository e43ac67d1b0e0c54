/*
 * codec.c — the PostgreSQL protocol 3.0 as pure functions over byte arrays.
 *
 * This module owns the knowledge of how protocol messages are laid out: it
 * frames headers, parses the few messages pgwarden must inspect and builds
 * the ones it answers with on its own. It does no I/O, keeps no state and
 * allocates only inside a PgwBuf the caller owns; it must never log, touch a
 * socket or decide policy.
 *
 * Two choices a reader would otherwise rediscover. Parsers read through a
 * small bounds-checked cursor (Reader) and insist that a message is consumed
 * exactly: a missing terminator, a count that runs past the end and stray
 * bytes after the last field are all the same answer, -1, because a gateway
 * that tolerates slack in framing is one a client can use to smuggle bytes.
 * Builders write a placeholder length, append the body and patch the length
 * afterwards, so no builder computes a size by hand.
 */
#include "codec.h"

#include <arpa/inet.h>
#include <string.h>

/* ---- reading ---- */

/* A cursor over one message body. Every read checks the remaining length
 * first; a read that would pass the end fails and leaves the cursor alone. */
typedef struct Reader {
    const uint8_t *p;
    size_t len;
    size_t pos;
} Reader;

static void reader_init(Reader *r, const uint8_t *body, size_t len)
{
    r->p = body;
    r->len = body ? len : 0;
    r->pos = 0;
}

static size_t reader_left(const Reader *r)
{
    return r->len - r->pos;
}

static bool reader_at_end(const Reader *r)
{
    return r->pos == r->len;
}

static int read_u8(Reader *r, uint8_t *v)
{
    if (reader_left(r) < 1)
        return -1;
    *v = r->p[r->pos++];
    return 0;
}

static int read_u16(Reader *r, uint16_t *v)
{
    if (reader_left(r) < 2)
        return -1;
    *v = (uint16_t)((r->p[r->pos] << 8) | r->p[r->pos + 1]);
    r->pos += 2;
    return 0;
}

static int read_u32(Reader *r, uint32_t *v)
{
    if (reader_left(r) < 4)
        return -1;
    const uint8_t *q = r->p + r->pos;
    *v = ((uint32_t)q[0] << 24) | ((uint32_t)q[1] << 16) | ((uint32_t)q[2] << 8) | q[3];
    r->pos += 4;
    return 0;
}

/* A NUL-terminated string that lies wholly inside the body. */
static int read_cstr(Reader *r, const char **s)
{
    size_t left = reader_left(r);
    if (left == 0)
        return -1;
    const uint8_t *start = r->p + r->pos;
    const uint8_t *nul = memchr(start, '\0', left);
    if (!nul)
        return -1;
    *s = (const char *)start;
    r->pos += (size_t)(nul - start) + 1;
    return 0;
}

/* n raw bytes; *bytes points into the body. */
static int read_bytes(Reader *r, size_t n, const uint8_t **bytes)
{
    if (reader_left(r) < n)
        return -1;
    *bytes = r->p + r->pos;
    r->pos += n;
    return 0;
}

int codec_header(const uint8_t hdr[5], size_t max_len, char *type, uint32_t *body_len)
{
    Reader r;
    uint32_t len;

    reader_init(&r, hdr + 1, 4);
    if (read_u32(&r, &len) < 0 || len < 4 || len > max_len)
        return -1;
    *type = (char)hdr[0];
    *body_len = len - 4;
    return 0;
}

/* ---- the startup packet ---- */

static int parse_startup_params(Reader *r, PgwStartup *out)
{
    for (;;) {
        const char *name, *value;

        if (read_cstr(r, &name) < 0)
            return -1;
        if (name[0] == '\0')
            break; /* the final terminator */
        if (read_cstr(r, &value) < 0)
            return -1;
        if (out->nparams == PGW_MAX_STARTUP_PARAMS)
            return -1;
        /* A repeated name (two "user"s) would leave it to chance which one
         * authentication and tenant routing each look at. */
        if (codec_startup_param(out, name))
            return -1;
        out->names[out->nparams] = name;
        out->values[out->nparams] = value;
        out->nparams++;
    }
    return reader_at_end(r) ? 0 : -1;
}

int codec_parse_startup(const uint8_t *body, size_t len, PgwStartup *out)
{
    Reader r;
    uint32_t code;

    memset(out, 0, sizeof(*out));
    if (len + 4 > PGW_MAX_STARTUP_LEN)
        goto fail;
    reader_init(&r, body, len);
    if (read_u32(&r, &code) < 0)
        goto fail;

    switch (code) {
    case PGW_SSL_REQUEST_CODE:
        out->kind = PGW_STARTUP_SSL;
        break;
    case PGW_GSSENC_REQUEST_CODE:
        out->kind = PGW_STARTUP_GSSENC;
        break;
    case PGW_CANCEL_REQUEST_CODE:
        out->kind = PGW_STARTUP_CANCEL;
        if (read_u32(&r, &out->cancel_pid) < 0 || read_u32(&r, &out->cancel_key) < 0)
            goto fail;
        break;
    default:
        /* Major 1234 is reserved for the special requests above; any other
         * code in it is a request we do not know, not a protocol version. */
        if ((code >> 16) == 1234)
            goto fail;
        out->kind = PGW_STARTUP_NORMAL;
        out->protocol = code;
        if (parse_startup_params(&r, out) < 0)
            goto fail;
        break;
    }
    if (!reader_at_end(&r))
        goto fail;
    return 0;

fail:
    memset(out, 0, sizeof(*out));
    return -1;
}

const char *codec_startup_param(const PgwStartup *s, const char *name)
{
    for (size_t i = 0; i < s->nparams; i++) {
        if (strcmp(s->names[i], name) == 0)
            return s->values[i];
    }
    return NULL;
}

/* ---- frontend messages ---- */

/* A body that is exactly one NUL-terminated string. */
static int parse_single_string(const uint8_t *body, size_t len, const char **s)
{
    Reader r;
    const char *v;

    reader_init(&r, body, len);
    if (read_cstr(&r, &v) < 0 || !reader_at_end(&r))
        return -1;
    *s = v;
    return 0;
}

int codec_parse_query(const uint8_t *body, size_t len, const char **sql)
{
    return parse_single_string(body, len, sql);
}

int codec_parse_parse(const uint8_t *body, size_t len, PgwParseMsg *out)
{
    Reader r;
    PgwParseMsg m = {0};

    reader_init(&r, body, len);
    if (read_cstr(&r, &m.name) < 0 || read_cstr(&r, &m.query) < 0)
        return -1;
    if (read_u16(&r, &m.nparams) < 0)
        return -1;
    /* PostgreSQL reads this count as unsigned 16 bits, so all values are
     * legal; what matters is that the types fit in the body. */
    if (read_bytes(&r, (size_t)m.nparams * 4, &m.param_types_raw) < 0)
        return -1;
    if (!reader_at_end(&r))
        return -1;
    if (m.nparams == 0)
        m.param_types_raw = NULL;
    *out = m;
    return 0;
}

int codec_parse_password(const uint8_t *body, size_t len, const char **password)
{
    return parse_single_string(body, len, password);
}

int codec_parse_sasl_initial(const uint8_t *body, size_t len, const char **mechanism,
                             const uint8_t **data, size_t *data_len)
{
    Reader r;
    const char *mech;
    uint32_t raw_len;
    const uint8_t *bytes = NULL;
    size_t n = 0;

    reader_init(&r, body, len);
    if (read_cstr(&r, &mech) < 0 || read_u32(&r, &raw_len) < 0)
        return -1;
    /* -1 means "no initial response"; any other negative length is garbage. */
    if (raw_len != UINT32_MAX) {
        if (raw_len > INT32_MAX)
            return -1;
        n = raw_len;
        if (read_bytes(&r, n, &bytes) < 0)
            return -1;
    }
    if (!reader_at_end(&r))
        return -1;
    *mechanism = mech;
    *data = bytes;
    *data_len = n;
    return 0;
}

int codec_parse_target(const uint8_t *body, size_t len, char *kind, const char **name)
{
    Reader r;
    uint8_t k;
    const char *n;

    reader_init(&r, body, len);
    if (read_u8(&r, &k) < 0 || (k != 'S' && k != 'P'))
        return -1;
    if (read_cstr(&r, &n) < 0 || !reader_at_end(&r))
        return -1;
    *kind = (char)k;
    *name = n;
    return 0;
}

/* ---- backend messages ---- */

int codec_parse_error(const uint8_t *body, size_t len, PgwErrorFields *out)
{
    Reader r;
    PgwErrorFields f = {0};

    reader_init(&r, body, len);
    for (;;) {
        uint8_t code;
        const char *value;

        if (read_u8(&r, &code) < 0)
            return -1;
        if (code == 0)
            break;
        if (read_cstr(&r, &value) < 0)
            return -1;
        /* Fields we do not use (position, where, file, line...) are skipped:
         * the protocol says new codes may appear at any time. */
        switch (code) {
        case 'S':
            f.severity = value;
            break;
        case 'V':
            f.severity_nl = value;
            break;
        case 'C':
            f.sqlstate = value;
            break;
        case 'M':
            f.message = value;
            break;
        case 'D':
            f.detail = value;
            break;
        case 'H':
            f.hint = value;
            break;
        default:
            break;
        }
    }
    if (!reader_at_end(&r))
        return -1;
    *out = f;
    return 0;
}

int codec_parse_ready(const uint8_t *body, size_t len, char *status)
{
    Reader r;
    uint8_t s;

    reader_init(&r, body, len);
    if (read_u8(&r, &s) < 0 || !reader_at_end(&r))
        return -1;
    if (s != 'I' && s != 'T' && s != 'E')
        return -1;
    *status = (char)s;
    return 0;
}

int codec_parse_parameter_status(const uint8_t *body, size_t len, const char **name,
                                 const char **value)
{
    Reader r;
    const char *n, *v;

    reader_init(&r, body, len);
    if (read_cstr(&r, &n) < 0 || read_cstr(&r, &v) < 0 || !reader_at_end(&r))
        return -1;
    *name = n;
    *value = v;
    return 0;
}

int codec_parse_data_row(const uint8_t *body, size_t len, size_t max_cols, size_t *ncols,
                         const uint8_t **values, int32_t *lens)
{
    Reader r;
    uint16_t n;

    reader_init(&r, body, len);
    if (read_u16(&r, &n) < 0 || n > max_cols)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t raw;
        const uint8_t *bytes = NULL;

        if (read_u32(&r, &raw) < 0)
            return -1;
        /* -1 is SQL NULL; any other negative length is garbage. */
        if (raw != UINT32_MAX) {
            if (raw > INT32_MAX || read_bytes(&r, raw, &bytes) < 0)
                return -1;
        }
        values[i] = bytes;
        lens[i] = raw == UINT32_MAX ? -1 : (int32_t)raw;
    }
    if (!reader_at_end(&r))
        return -1;
    *ncols = n;
    return 0;
}

/* ---- building ---- */

/* Starts a typed message and returns the offset of its length field, which
 * message_end fills in once the body is known. */
static size_t message_begin(PgwBuf *b, char type)
{
    buf_append_byte(b, (uint8_t)type);
    size_t at = b->len;
    buf_append_u32(b, 0);
    return at;
}

static void message_end(PgwBuf *b, size_t at)
{
    uint32_t len = htonl((uint32_t)(b->len - at));
    memcpy(b->data + at, &len, 4);
}

static void append_field(PgwBuf *b, char code, const char *value)
{
    if (!value)
        return;
    buf_append_byte(b, (uint8_t)code);
    buf_append_cstr(b, value);
}

static void error_or_notice(PgwBuf *b, char type, const char *severity, const char *sqlstate,
                            const char *message, const char *detail, const char *hint)
{
    size_t at = message_begin(b, type);
    /* The same word for S (localized) and V (never localized): pgwarden's
     * own messages are not translated. */
    append_field(b, 'S', severity);
    append_field(b, 'V', severity);
    append_field(b, 'C', sqlstate);
    append_field(b, 'M', message);
    append_field(b, 'D', detail);
    append_field(b, 'H', hint);
    buf_append_byte(b, 0);
    message_end(b, at);
}

void codec_error(PgwBuf *b, const char *severity, const char *sqlstate, const char *message,
                 const char *detail, const char *hint)
{
    error_or_notice(b, 'E', severity, sqlstate, message, detail, hint);
}

void codec_notice(PgwBuf *b, const char *severity, const char *sqlstate, const char *message,
                  const char *detail, const char *hint)
{
    error_or_notice(b, 'N', severity, sqlstate, message, detail, hint);
}

void codec_auth(PgwBuf *b, uint32_t code, const void *data, size_t len)
{
    size_t at = message_begin(b, 'R');
    buf_append_u32(b, code);
    if (data && len)
        buf_append(b, data, len);
    message_end(b, at);
}

void codec_parameter_status(PgwBuf *b, const char *name, const char *value)
{
    size_t at = message_begin(b, 'S');
    buf_append_cstr(b, name);
    buf_append_cstr(b, value);
    message_end(b, at);
}

void codec_backend_key(PgwBuf *b, uint32_t pid, uint32_t key)
{
    size_t at = message_begin(b, 'K');
    buf_append_u32(b, pid);
    buf_append_u32(b, key);
    message_end(b, at);
}

void codec_ready(PgwBuf *b, char status)
{
    size_t at = message_begin(b, 'Z');
    buf_append_byte(b, (uint8_t)status);
    message_end(b, at);
}

#define TEXT_OID 25u

void codec_row_description(PgwBuf *b, int ncols, const char *const *names,
                           const uint32_t *type_oids)
{
    if (ncols < 0)
        ncols = 0;
    size_t at = message_begin(b, 'T');
    buf_append_u16(b, (uint16_t)ncols);
    for (int i = 0; i < ncols; i++) {
        buf_append_cstr(b, names[i]);
        buf_append_u32(b, 0); /* table oid: not a column of a table */
        buf_append_u16(b, 0); /* attribute number */
        buf_append_u32(b, type_oids ? type_oids[i] : TEXT_OID);
        buf_append_u16(b, (uint16_t)-1); /* typlen: variable */
        buf_append_u32(b, (uint32_t)-1); /* typmod: none */
        buf_append_u16(b, 0); /* format: text */
    }
    message_end(b, at);
}

void codec_data_row(PgwBuf *b, int ncols, const char *const *values)
{
    if (ncols < 0)
        ncols = 0;
    size_t at = message_begin(b, 'D');
    buf_append_u16(b, (uint16_t)ncols);
    for (int i = 0; i < ncols; i++) {
        if (!values[i]) {
            buf_append_u32(b, (uint32_t)-1);
            continue;
        }
        size_t n = strlen(values[i]);
        buf_append_u32(b, (uint32_t)n);
        buf_append(b, values[i], n);
    }
    message_end(b, at);
}

static void single_string_message(PgwBuf *b, char type, const char *s)
{
    size_t at = message_begin(b, type);
    buf_append_cstr(b, s);
    message_end(b, at);
}

static void empty_message(PgwBuf *b, char type)
{
    size_t at = message_begin(b, type);
    message_end(b, at);
}

void codec_command_complete(PgwBuf *b, const char *tag)
{
    single_string_message(b, 'C', tag);
}

void codec_empty_query(PgwBuf *b)
{
    empty_message(b, 'I');
}

void codec_query(PgwBuf *b, const char *sql)
{
    single_string_message(b, 'Q', sql);
}

void codec_sync(PgwBuf *b)
{
    empty_message(b, 'S');
}

void codec_terminate(PgwBuf *b)
{
    empty_message(b, 'X');
}

void codec_build_parse(PgwBuf *b, const char *name, const char *query, uint16_t nparams,
                       const uint8_t *param_types_raw)
{
    size_t at = message_begin(b, 'P');
    buf_append_cstr(b, name ? name : "");
    buf_append_cstr(b, query);
    buf_append_u16(b, nparams);
    if (nparams)
        buf_append(b, param_types_raw, (size_t)nparams * 4);
    message_end(b, at);
}

void codec_negotiate_protocol(PgwBuf *b, uint32_t newest_minor, size_t nunknown,
                              const char *const *unknown)
{
    size_t at = message_begin(b, 'v');
    buf_append_u32(b, newest_minor);
    buf_append_u32(b, (uint32_t)nunknown);
    for (size_t i = 0; i < nunknown; i++)
        buf_append_cstr(b, unknown[i]);
    message_end(b, at);
}
