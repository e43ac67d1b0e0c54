/*
 * fuzz_codec.c — libFuzzer target for every message parser in src/codec.c.
 *
 * Each input is one message as a peer would send it: the first byte picks
 * which parser reads the rest as a message body (the framing header is
 * parsed from the first five bytes, too, so both halves of framing are
 * covered). Beyond "no crash, no out-of-bounds read" (ASan sees every read
 * past the exact-size buffer libFuzzer hands over), the target checks what a
 * caller of the codec relies on:
 *   - every pointer a parser returns lies inside the body, and every string
 *     it returns ends inside it;
 *   - a message that parses also survives a round trip through the matching
 *     builder (Parse, ErrorResponse, ParameterStatus, ReadyForQuery): what
 *     pgwarden rebuilds is what it read, byte for byte where the builder
 *     writes every field.
 * A violated property calls abort(), which libFuzzer reports as a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "codec.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* p .. p+n lies inside body. */
static int inside(const uint8_t *body, size_t len, const void *p, size_t n)
{
    const uint8_t *q = p;
    return q >= body && n <= len && (size_t)(q - body) <= len - n;
}

/* s is a NUL-terminated string wholly inside body. */
static int cstr_inside(const uint8_t *body, size_t len, const char *s)
{
    if (!s)
        return 1;
    if (!inside(body, len, s, 1))
        return 0;
    size_t room = len - (size_t)((const uint8_t *)s - body);
    return memchr(s, '\0', room) != NULL;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

static void fuzz_startup(const uint8_t *body, size_t len)
{
    PgwStartup s;
    if (codec_parse_startup(body, len, &s) < 0)
        return;
    CHECK(s.nparams <= PGW_MAX_STARTUP_PARAMS);
    for (size_t i = 0; i < s.nparams; i++) {
        CHECK(cstr_inside(body, len, s.names[i]) && cstr_inside(body, len, s.values[i]));
        CHECK(codec_startup_param(&s, s.names[i]) == s.values[i]); /* names are unique */
    }
}

static void fuzz_parse(const uint8_t *body, size_t len)
{
    PgwParseMsg m, again;
    PgwBuf b;
    char type;
    uint32_t blen;

    if (codec_parse_parse(body, len, &m) < 0)
        return;
    CHECK(cstr_inside(body, len, m.name) && cstr_inside(body, len, m.query));
    CHECK(m.nparams == 0 || inside(body, len, m.param_types_raw, (size_t)m.nparams * 4));
    buf_init(&b);
    codec_build_parse(&b, m.name, m.query, m.nparams, m.param_types_raw);
    CHECK(b.len >= 5 && codec_header(b.data, PGW_MAX_MESSAGE_LEN, &type, &blen) == 0);
    CHECK(type == 'P' && blen == b.len - 5 && blen == len);
    CHECK(memcmp(b.data + 5, body, len) == 0);
    CHECK(codec_parse_parse(b.data + 5, blen, &again) == 0);
    CHECK(strcmp(again.name, m.name) == 0 && strcmp(again.query, m.query) == 0);
    CHECK(again.nparams == m.nparams);
    buf_free(&b);
}

static void fuzz_error(const uint8_t *body, size_t len)
{
    PgwErrorFields f, again;
    PgwBuf b;
    char type;
    uint32_t blen;

    if (codec_parse_error(body, len, &f) < 0)
        return;
    CHECK(cstr_inside(body, len, f.severity) && cstr_inside(body, len, f.severity_nl));
    CHECK(cstr_inside(body, len, f.sqlstate) && cstr_inside(body, len, f.message));
    CHECK(cstr_inside(body, len, f.detail) && cstr_inside(body, len, f.hint));
    /* pgwarden rebuilds backend errors it scrubs: the fields must survive. */
    buf_init(&b);
    codec_error(&b, f.severity, f.sqlstate, f.message, f.detail, f.hint);
    CHECK(codec_header(b.data, PGW_MAX_MESSAGE_LEN, &type, &blen) == 0 && type == 'E');
    CHECK(codec_parse_error(b.data + 5, blen, &again) == 0);
    CHECK(strcmp(nz(again.severity), nz(f.severity)) == 0);
    CHECK(strcmp(nz(again.sqlstate), nz(f.sqlstate)) == 0);
    CHECK(strcmp(nz(again.message), nz(f.message)) == 0);
    CHECK(strcmp(nz(again.detail), nz(f.detail)) == 0);
    CHECK(strcmp(nz(again.hint), nz(f.hint)) == 0);
    buf_free(&b);
}

static void fuzz_parameter_status(const uint8_t *body, size_t len)
{
    const char *name, *value;
    PgwBuf b;

    if (codec_parse_parameter_status(body, len, &name, &value) < 0)
        return;
    CHECK(cstr_inside(body, len, name) && cstr_inside(body, len, value));
    buf_init(&b);
    codec_parameter_status(&b, name, value);
    CHECK(b.len == len + 5 && memcmp(b.data + 5, body, len) == 0);
    buf_free(&b);
}

static void fuzz_ready(const uint8_t *body, size_t len)
{
    char status;
    PgwBuf b;

    if (codec_parse_ready(body, len, &status) < 0)
        return;
    CHECK(len == 1 && (status == 'I' || status == 'T' || status == 'E'));
    buf_init(&b);
    codec_ready(&b, status);
    CHECK(b.len == 6 && b.data[5] == (uint8_t)status);
    buf_free(&b);
}

static void fuzz_data_row(const uint8_t *body, size_t len)
{
    enum { MAX_COLS = 64 };
    const uint8_t *values[MAX_COLS];
    int32_t lens[MAX_COLS];
    size_t ncols;

    if (codec_parse_data_row(body, len, MAX_COLS, &ncols, values, lens) < 0)
        return;
    CHECK(ncols <= MAX_COLS);
    for (size_t i = 0; i < ncols; i++) {
        CHECK(lens[i] >= -1);
        CHECK(lens[i] <= 0 || inside(body, len, values[i], (size_t)lens[i]));
    }
}

static void fuzz_others(const uint8_t *body, size_t len)
{
    const char *s, *mech;
    const uint8_t *data;
    size_t data_len;
    char kind;

    if (codec_parse_query(body, len, &s) == 0)
        CHECK(cstr_inside(body, len, s) && strlen(s) + 1 == len);
    if (codec_parse_password(body, len, &s) == 0)
        CHECK(cstr_inside(body, len, s));
    if (codec_parse_sasl_initial(body, len, &mech, &data, &data_len) == 0) {
        CHECK(cstr_inside(body, len, mech));
        CHECK(data ? inside(body, len, data, data_len) : data_len == 0);
    }
    if (codec_parse_target(body, len, &kind, &s) == 0)
        CHECK((kind == 'S' || kind == 'P') && cstr_inside(body, len, s));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char type;
    uint32_t body_len;

    if (size < 1)
        return 0;
    if (size >= 5 && codec_header(data, PGW_MAX_MESSAGE_LEN, &type, &body_len) == 0)
        CHECK(type == (char)data[0] && body_len <= PGW_MAX_MESSAGE_LEN - 4);

    /* Copy the body into its own exact-size allocation so that ASan flags a
     * read one byte past it. */
    size_t len = size - 1;
    uint8_t *body = malloc(len ? len : 1);
    if (!body)
        return 0;
    memcpy(body, data + 1, len);
    switch (data[0]) {
    case 's':
        fuzz_startup(body, len);
        break;
    case 'P':
        fuzz_parse(body, len);
        break;
    case 'E':
    case 'N':
        fuzz_error(body, len);
        break;
    case 'S':
        fuzz_parameter_status(body, len);
        break;
    case 'Z':
        fuzz_ready(body, len);
        break;
    case 'D':
        fuzz_data_row(body, len);
        break;
    default:
        fuzz_others(body, len);
        break;
    }
    free(body);
    return 0;
}
