/*
 * test_codec.c — unit tests for the protocol codec (src/codec.c).
 *
 * What a user would notice if the codec were wrong: a client's startup or
 * query misread, a malformed packet crashing the gateway for everyone, or an
 * answer a driver cannot decode. So the tests are tables of real message
 * bytes with the fields a parser must report, the same messages cut short at
 * every length and with a stray byte appended (all must be refused), random
 * and mutated byte strings from a fixed seed (refused or parsed, but never
 * read out of bounds; run under valgrind to see that), and builders compared
 * byte for byte with messages written out by hand from the protocol docs.
 *
 * Every input a parser sees is copied into a heap block of exactly its
 * length, so an over-read is an invalid read valgrind reports.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

/* A byte string from a literal that may contain NULs. */
#define BYTES(lit) (const uint8_t *)(lit), (sizeof(lit) - 1)

/* ---- running any parser on any bytes ---- */

typedef enum {
    P_STARTUP,
    P_QUERY,
    P_PARSE,
    P_PASSWORD,
    P_SASL_INITIAL,
    P_TARGET,
    P_ERROR,
    P_READY,
    P_PARAMETER_STATUS,
    P_DATA_ROW,
    P_COUNT
} ParserId;

static const char *const parser_names[P_COUNT] = {
    "startup", "query", "parse", "password",         "sasl_initial",
    "target",  "error", "ready", "parameter_status", "data_row",
};

static uint8_t *exact_copy(const uint8_t *data, size_t len)
{
    uint8_t *p = malloc(len);
    ck_assert(len == 0 || p != NULL);
    if (len)
        memcpy(p, data, len);
    return p;
}

/* A string a parser returned must start inside the body and end there. */
static void assert_cstr_inside(const char *s, const uint8_t *body, size_t len)
{
    if (!s)
        return;
    const uint8_t *u = (const uint8_t *)s;
    ck_assert_msg(u >= body && u < body + len, "string points outside the body");
    ck_assert_msg(memchr(u, '\0', (size_t)(body + len - u)) != NULL,
                  "string not terminated inside the body");
}

static void assert_range_inside(const uint8_t *p, size_t n, const uint8_t *body, size_t len)
{
    if (n == 0)
        return;
    ck_assert_msg(p >= body && p + n <= body + len, "byte range outside the body");
}

/* Runs one parser on a private exact-size copy and checks that whatever it
 * reports lies inside the copy. Returns the parser's result. */
static int run_parser(ParserId id, const uint8_t *data, size_t len)
{
    uint8_t *body = exact_copy(data, len);
    int rc = -1;

    switch (id) {
    case P_STARTUP: {
        PgwStartup s;
        rc = codec_parse_startup(body, len, &s);
        if (rc == 0) {
            ck_assert(s.nparams <= PGW_MAX_STARTUP_PARAMS);
            for (size_t i = 0; i < s.nparams; i++) {
                assert_cstr_inside(s.names[i], body, len);
                assert_cstr_inside(s.values[i], body, len);
            }
        }
        break;
    }
    case P_QUERY: {
        const char *sql = NULL;
        rc = codec_parse_query(body, len, &sql);
        if (rc == 0)
            assert_cstr_inside(sql, body, len);
        break;
    }
    case P_PARSE: {
        PgwParseMsg m;
        rc = codec_parse_parse(body, len, &m);
        if (rc == 0) {
            assert_cstr_inside(m.name, body, len);
            assert_cstr_inside(m.query, body, len);
            assert_range_inside(m.param_types_raw, (size_t)m.nparams * 4, body, len);
        }
        break;
    }
    case P_PASSWORD: {
        const char *pw = NULL;
        rc = codec_parse_password(body, len, &pw);
        if (rc == 0)
            assert_cstr_inside(pw, body, len);
        break;
    }
    case P_SASL_INITIAL: {
        const char *mech = NULL;
        const uint8_t *data_out = NULL;
        size_t data_len = 0;
        rc = codec_parse_sasl_initial(body, len, &mech, &data_out, &data_len);
        if (rc == 0) {
            assert_cstr_inside(mech, body, len);
            assert_range_inside(data_out, data_len, body, len);
        }
        break;
    }
    case P_TARGET: {
        char kind = 0;
        const char *name = NULL;
        rc = codec_parse_target(body, len, &kind, &name);
        if (rc == 0) {
            ck_assert(kind == 'S' || kind == 'P');
            assert_cstr_inside(name, body, len);
        }
        break;
    }
    case P_ERROR: {
        PgwErrorFields f;
        rc = codec_parse_error(body, len, &f);
        if (rc == 0) {
            assert_cstr_inside(f.severity, body, len);
            assert_cstr_inside(f.severity_nl, body, len);
            assert_cstr_inside(f.sqlstate, body, len);
            assert_cstr_inside(f.message, body, len);
            assert_cstr_inside(f.detail, body, len);
            assert_cstr_inside(f.hint, body, len);
        }
        break;
    }
    case P_READY: {
        char status = 0;
        rc = codec_parse_ready(body, len, &status);
        if (rc == 0)
            ck_assert(status == 'I' || status == 'T' || status == 'E');
        break;
    }
    case P_PARAMETER_STATUS: {
        const char *name = NULL, *value = NULL;
        rc = codec_parse_parameter_status(body, len, &name, &value);
        if (rc == 0) {
            assert_cstr_inside(name, body, len);
            assert_cstr_inside(value, body, len);
        }
        break;
    }
    case P_DATA_ROW: {
        const uint8_t *values[8];
        int32_t lens[8];
        size_t ncols = 99;
        rc = codec_parse_data_row(body, len, PGW_ARRAY_LEN(values), &ncols, values, lens);
        if (rc == 0) {
            ck_assert(ncols <= PGW_ARRAY_LEN(values));
            for (size_t i = 0; i < ncols; i++) {
                /* NULL exactly when the column is SQL NULL. */
                ck_assert((lens[i] == -1) == (values[i] == NULL));
                if (lens[i] >= 0)
                    assert_range_inside(values[i], (size_t)lens[i], body, len);
            }
        }
        break;
    }
    default:
        ck_abort_msg("unknown parser");
    }
    free(body);
    ck_assert_msg(rc == 0 || rc == -1, "%s returned %d", parser_names[id], rc);
    return rc;
}

/* ---- valid messages of every kind: the corpus for truncation and fuzzing ---- */

typedef struct {
    ParserId parser;
    const char *what;
    const uint8_t *data;
    size_t len;
} ValidMessage;

static const ValidMessage valid_messages[] = {
    {P_STARTUP, "startup 3.0 with params",
     BYTES("\x00\x03\x00\x00user\0alice\0database\0acme\0application_name\0psql\0\0")},
    {P_STARTUP, "startup 3.0 without params", BYTES("\x00\x03\x00\x00\0")},
    {P_STARTUP, "startup 3.2 with protocol option",
     BYTES("\x00\x03\x00\x02user\0bob\0_pq_.compression\0on\0\0")},
    {P_STARTUP, "SSLRequest", BYTES("\x04\xd2\x16\x2f")},
    {P_STARTUP, "GSSENCRequest", BYTES("\x04\xd2\x16\x30")},
    {P_STARTUP, "CancelRequest", BYTES("\x04\xd2\x16\x2e\x00\x00\x12\x34\xde\xad\xbe\xef")},
    {P_QUERY, "query", BYTES("SELECT 1;\0")},
    {P_QUERY, "empty query", BYTES("\0")},
    {P_PARSE, "named, two params",
     BYTES("s1\0SELECT $1::int, $2\0\x00\x02\x00\x00\x00\x17\x00\x00\x00\x19")},
    {P_PARSE, "unnamed, no params", BYTES("\0SELECT 1\0\x00\x00")},
    {P_PASSWORD, "password", BYTES("s3cret\0")},
    {P_SASL_INITIAL, "SCRAM first message",
     BYTES("SCRAM-SHA-256\0\x00\x00\x00\x1fn,,n=,r=rOprNGfwEbeRWgbNEkqO\x0a\x0b\x0c")},
    {P_SASL_INITIAL, "no initial response", BYTES("SCRAM-SHA-256\0\xff\xff\xff\xff")},
    {P_SASL_INITIAL, "empty initial response", BYTES("SCRAM-SHA-256\0\x00\x00\x00\x00")},
    {P_TARGET, "describe statement", BYTES("Sstmt_1\0")},
    {P_TARGET, "close unnamed portal", BYTES("P\0")},
    {P_ERROR, "full error",
     BYTES("SERROR\0VERROR\0C42P01\0Mrelation \"nope\" does not exist\0P15\0"
           "Fparse_relation.c\0L1392\0RparserOpenTable\0\0")},
    {P_ERROR, "notice with detail and hint",
     BYTES("SNOTICE\0VNOTICE\0C00000\0Mhello\0Dsome detail\0Hsome hint\0\0")},
    {P_ERROR, "no fields at all", BYTES("\0")},
    {P_READY, "idle", BYTES("I")},
    {P_READY, "in transaction", BYTES("T")},
    {P_READY, "failed transaction", BYTES("E")},
    {P_PARAMETER_STATUS, "server_version",
     BYTES("server_version\0"
           "15.4\0")},
    {P_PARAMETER_STATUS, "empty value", BYTES("application_name\0\0")},
    {P_DATA_ROW, "text, NULL and empty",
     BYTES("\x00\x03\x00\x00\x00\x02"
           "ab"
           "\xff\xff\xff\xff"
           "\x00\x00\x00\x00")},
    {P_DATA_ROW, "no columns", BYTES("\x00\x00")},
};

START_TEST(valid_corpus_parses)
{
    const ValidMessage *m = &valid_messages[_i];
    ck_assert_msg(run_parser(m->parser, m->data, m->len) == 0, "%s: %s refused",
                  parser_names[m->parser], m->what);
}
END_TEST

/* Every proper prefix of a valid message is malformed: the protocol has no
 * message that is a prefix of another of the same type. */
START_TEST(every_truncation_is_refused)
{
    const ValidMessage *m = &valid_messages[_i];
    for (size_t n = 0; n < m->len; n++) {
        ck_assert_msg(run_parser(m->parser, m->data, n) == -1,
                      "%s: %s cut to %zu of %zu bytes was accepted", parser_names[m->parser],
                      m->what, n, m->len);
    }
}
END_TEST

/* Bytes after the last field are refused, whatever they are. */
START_TEST(trailing_data_is_refused)
{
    const ValidMessage *m = &valid_messages[_i];
    static const uint8_t extras[] = {'\0', 'x', 'S', 0xff};
    uint8_t *longer = malloc(m->len + 4);

    ck_assert(longer != NULL);
    memcpy(longer, m->data, m->len);
    for (size_t e = 0; e < sizeof(extras); e++) {
        longer[m->len] = extras[e];
        ck_assert_msg(run_parser(m->parser, longer, m->len + 1) == -1,
                      "%s: %s with trailing byte 0x%02x was accepted", parser_names[m->parser],
                      m->what, extras[e]);
    }
    /* The whole message twice over. */
    free(longer);
    longer = malloc(m->len * 2);
    ck_assert(longer != NULL);
    memcpy(longer, m->data, m->len);
    memcpy(longer + m->len, m->data, m->len);
    ck_assert_msg(run_parser(m->parser, longer, m->len * 2) == -1, "%s: %s doubled was accepted",
                  parser_names[m->parser], m->what);
    free(longer);
}
END_TEST

/* ---- fuzz-style inputs from a fixed seed ---- */

static uint32_t rng_state;

static uint32_t rng_next(void)
{
    /* xorshift32: reproducible everywhere, good enough to spray bytes. */
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return x;
}

/* Random bytes biased toward the ones that steer parsers (NUL, type
 * letters, 0xff in lengths) so the fuzz reaches past the first field. */
static uint8_t rng_byte(void)
{
    static const uint8_t interesting[] = {0,   0,   0,   'S',  'P', 'I', 'E',
                                          'T', 'C', 'M', 0xff, 1,   2,   4};
    uint32_t r = rng_next();
    if (r % 3 == 0)
        return interesting[(r >> 8) % sizeof(interesting)];
    return (uint8_t)(r >> 16);
}

START_TEST(random_bytes_never_crash)
{
    uint8_t buf[64];
    int accepted = 0;

    rng_state = 0x9e3779b9u;
    for (int round = 0; round < 4000; round++) {
        size_t len = rng_next() % sizeof(buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = rng_byte();
        for (int p = 0; p < P_COUNT; p++)
            accepted += run_parser((ParserId)p, buf, len) == 0;
    }
    /* Random garbage must mostly be refused; a parser that accepts
     * everything would pass the bounds checks above and fail here. */
    ck_assert_int_lt(accepted, 4000 * P_COUNT / 10);
}
END_TEST

/* Without a single NUL there is no string, so every parser that expects one
 * must refuse. Startup may only accept the NUL-free special requests. */
START_TEST(random_bytes_without_nul_are_refused)
{
    uint8_t buf[48];

    rng_state = 12345u;
    for (int round = 0; round < 2000; round++) {
        size_t len = rng_next() % sizeof(buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)(1 + rng_next() % 255);
        static const ParserId with_strings[] = {
            P_QUERY, P_PARSE, P_PASSWORD, P_SASL_INITIAL, P_TARGET, P_ERROR, P_PARAMETER_STATUS};
        for (size_t p = 0; p < PGW_ARRAY_LEN(with_strings); p++) {
            ck_assert_msg(run_parser(with_strings[p], buf, len) == -1,
                          "%s accepted %zu bytes without a NUL", parser_names[with_strings[p]],
                          len);
        }
        PgwStartup s;
        if (codec_parse_startup(buf, len, &s) == 0)
            ck_assert(s.kind != PGW_STARTUP_NORMAL);
    }
}
END_TEST

START_TEST(mutated_messages_never_crash)
{
    rng_state = 0xdeadbeefu;
    for (size_t m = 0; m < PGW_ARRAY_LEN(valid_messages); m++) {
        const ValidMessage *v = &valid_messages[m];
        uint8_t buf[256];
        ck_assert(v->len <= sizeof(buf));
        for (int round = 0; round < 300; round++) {
            memcpy(buf, v->data, v->len);
            int flips = 1 + (int)(rng_next() % 3);
            for (int f = 0; f < flips && v->len; f++)
                buf[rng_next() % v->len] = rng_byte();
            size_t len = v->len;
            if (rng_next() % 4 == 0 && len)
                len = rng_next() % len;
            (void)run_parser(v->parser, buf, len);
        }
    }
}
END_TEST

/* ---- framing ---- */

static const struct {
    const char *what;
    uint8_t hdr[5];
    size_t max;
    int rc;
    char type;
    uint32_t body_len;
} header_cases[] = {
    {"ReadyForQuery", {'Z', 0, 0, 0, 5}, PGW_MAX_MESSAGE_LEN, 0, 'Z', 1},
    {"empty body", {'S', 0, 0, 0, 4}, PGW_MAX_MESSAGE_LEN, 0, 'S', 0},
    {"length 3", {'Q', 0, 0, 0, 3}, PGW_MAX_MESSAGE_LEN, -1, 0, 0},
    {"length 0", {'Q', 0, 0, 0, 0}, PGW_MAX_MESSAGE_LEN, -1, 0, 0},
    {"exactly max", {'Q', 0, 0, 0x27, 0x10}, 10000, 0, 'Q', 9996},
    {"max + 1", {'Q', 0, 0, 0x27, 0x11}, 10000, -1, 0, 0},
    {"1 GB exactly", {'d', 0x40, 0, 0, 0}, PGW_MAX_MESSAGE_LEN, 0, 'd', (1u << 30) - 4},
    {"over 1 GB", {'d', 0x40, 0, 0, 1}, PGW_MAX_MESSAGE_LEN, -1, 0, 0},
    {"negative length", {'Q', 0x80, 0, 0, 0}, PGW_MAX_MESSAGE_LEN, -1, 0, 0},
    {"all ones", {'Q', 0xff, 0xff, 0xff, 0xff}, PGW_MAX_MESSAGE_LEN, -1, 0, 0},
};

START_TEST(header_table)
{
    char type = 0;
    uint32_t body_len = 0;
    int rc = codec_header(header_cases[_i].hdr, header_cases[_i].max, &type, &body_len);
    ck_assert_msg(rc == header_cases[_i].rc, "%s: rc %d", header_cases[_i].what, rc);
    if (rc == 0) {
        ck_assert_int_eq(type, header_cases[_i].type);
        ck_assert_uint_eq(body_len, header_cases[_i].body_len);
    }
}
END_TEST

/* ---- startup ---- */

START_TEST(startup_normal_fields)
{
    PgwStartup s;
    const ValidMessage *m = &valid_messages[0];
    ck_assert_int_eq(codec_parse_startup(m->data, m->len, &s), 0);
    ck_assert_int_eq(s.kind, PGW_STARTUP_NORMAL);
    ck_assert_uint_eq(s.protocol, PGW_PROTOCOL_3_0);
    ck_assert_uint_eq(s.nparams, 3);
    ck_assert_str_eq(codec_startup_param(&s, "user"), "alice");
    ck_assert_str_eq(codec_startup_param(&s, "database"), "acme");
    ck_assert_str_eq(codec_startup_param(&s, "application_name"), "psql");
    ck_assert_ptr_null(codec_startup_param(&s, "options"));
    /* Names are matched exactly, not by prefix. */
    ck_assert_ptr_null(codec_startup_param(&s, "use"));
}
END_TEST

START_TEST(startup_minor_version_and_options)
{
    PgwStartup s;
    const ValidMessage *m = &valid_messages[2];
    ck_assert_int_eq(codec_parse_startup(m->data, m->len, &s), 0);
    ck_assert_int_eq(s.kind, PGW_STARTUP_NORMAL);
    ck_assert_uint_eq(s.protocol, (3u << 16) | 2u);
    ck_assert_str_eq(codec_startup_param(&s, "_pq_.compression"), "on");
}
END_TEST

START_TEST(startup_special_requests)
{
    PgwStartup s;
    ck_assert_int_eq(codec_parse_startup(valid_messages[3].data, valid_messages[3].len, &s), 0);
    ck_assert_int_eq(s.kind, PGW_STARTUP_SSL);
    ck_assert_int_eq(codec_parse_startup(valid_messages[4].data, valid_messages[4].len, &s), 0);
    ck_assert_int_eq(s.kind, PGW_STARTUP_GSSENC);
    ck_assert_int_eq(codec_parse_startup(valid_messages[5].data, valid_messages[5].len, &s), 0);
    ck_assert_int_eq(s.kind, PGW_STARTUP_CANCEL);
    ck_assert_uint_eq(s.cancel_pid, 0x1234);
    ck_assert_uint_eq(s.cancel_key, 0xdeadbeef);
    ck_assert_uint_eq(s.nparams, 0);
}
END_TEST

static const struct {
    const char *what;
    const uint8_t *data;
    size_t len;
} bad_startups[] = {
    {"nothing", BYTES("")},
    {"short code", BYTES("\x00\x03\x00")},
    {"SSLRequest with extra bytes", BYTES("\x04\xd2\x16\x2f\x00\x00\x00\x00")},
    {"CancelRequest without key", BYTES("\x04\xd2\x16\x2e\x00\x00\x12\x34")},
    {"unknown special request", BYTES("\x04\xd2\x16\x31")},
    {"missing final terminator", BYTES("\x00\x03\x00\x00user\0alice\0")},
    {"name without value", BYTES("\x00\x03\x00\x00user\0\0")},
    {"value without terminator", BYTES("\x00\x03\x00\x00user\0alice")},
    {"data after terminator", BYTES("\x00\x03\x00\x00user\0alice\0\0junk\0")},
    {"duplicated user", BYTES("\x00\x03\x00\x00user\0alice\0user\0mallory\0\0")},
};

START_TEST(startup_malformed)
{
    PgwStartup s;
    ck_assert_msg(codec_parse_startup(bad_startups[_i].data, bad_startups[_i].len, &s) == -1,
                  "%s accepted", bad_startups[_i].what);
    ck_assert_uint_eq(s.nparams, 0);
}
END_TEST

/* Builds "\0\3\0\0" + n distinct pairs + "\0". */
static void build_startup_with_params(PgwBuf *b, int n)
{
    buf_append_u32(b, PGW_PROTOCOL_3_0);
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof(name), "p%d", i);
        buf_append_cstr(b, name);
        buf_append_cstr(b, "v");
    }
    buf_append_byte(b, 0);
}

START_TEST(startup_parameter_limit)
{
    PgwBuf b;
    PgwStartup s;

    buf_init(&b);
    build_startup_with_params(&b, PGW_MAX_STARTUP_PARAMS);
    ck_assert_int_eq(codec_parse_startup(b.data, b.len, &s), 0);
    ck_assert_uint_eq(s.nparams, PGW_MAX_STARTUP_PARAMS);
    ck_assert_str_eq(codec_startup_param(&s, "p31"), "v");

    buf_reset(&b);
    build_startup_with_params(&b, PGW_MAX_STARTUP_PARAMS + 1);
    ck_assert_int_eq(codec_parse_startup(b.data, b.len, &s), -1);
    buf_free(&b);
}
END_TEST

/* A packet whose length field (body + 4) is exactly PGW_MAX_STARTUP_LEN is
 * accepted; one byte more is refused. */
START_TEST(startup_length_limit)
{
    PgwBuf b;
    PgwStartup s;
    char big[PGW_MAX_STARTUP_LEN];
    /* 4 (length) + 4 (code) + "options\0" + value + NUL + final NUL */
    size_t value_len = PGW_MAX_STARTUP_LEN - 4 - 4 - 8 - 1 - 1;

    memset(big, 'x', value_len);
    big[value_len] = '\0';
    buf_init(&b);
    buf_append_u32(&b, PGW_PROTOCOL_3_0);
    buf_append_cstr(&b, "options");
    buf_append_cstr(&b, big);
    buf_append_byte(&b, 0);
    ck_assert_uint_eq(b.len + 4, PGW_MAX_STARTUP_LEN);
    ck_assert_int_eq(codec_parse_startup(b.data, b.len, &s), 0);
    ck_assert_uint_eq(strlen(codec_startup_param(&s, "options")), value_len);

    big[value_len] = 'x';
    big[value_len + 1] = '\0';
    buf_reset(&b);
    buf_append_u32(&b, PGW_PROTOCOL_3_0);
    buf_append_cstr(&b, "options");
    buf_append_cstr(&b, big);
    buf_append_byte(&b, 0);
    ck_assert_int_eq(codec_parse_startup(b.data, b.len, &s), -1);
    buf_free(&b);
}
END_TEST

/* ---- frontend messages ---- */

START_TEST(query_fields)
{
    const char *sql = NULL;
    ck_assert_int_eq(codec_parse_query(BYTES("SELECT 1;\0"), &sql), 0);
    ck_assert_str_eq(sql, "SELECT 1;");
    ck_assert_int_eq(codec_parse_query(BYTES("\0"), &sql), 0);
    ck_assert_str_eq(sql, "");
    /* A NUL inside the text would hide the rest from the policy. */
    ck_assert_int_eq(codec_parse_query(BYTES("SELECT 1\0; DELETE FROM t\0"), &sql), -1);
    ck_assert_int_eq(codec_parse_query(NULL, 0, &sql), -1);
}
END_TEST

START_TEST(parse_fields)
{
    PgwParseMsg m;
    const ValidMessage *v = &valid_messages[8];
    ck_assert_int_eq(codec_parse_parse(v->data, v->len, &m), 0);
    ck_assert_str_eq(m.name, "s1");
    ck_assert_str_eq(m.query, "SELECT $1::int, $2");
    ck_assert_uint_eq(m.nparams, 2);
    ck_assert_mem_eq(m.param_types_raw, "\x00\x00\x00\x17\x00\x00\x00\x19", 8);

    v = &valid_messages[9];
    ck_assert_int_eq(codec_parse_parse(v->data, v->len, &m), 0);
    ck_assert_str_eq(m.name, "");
    ck_assert_str_eq(m.query, "SELECT 1");
    ck_assert_uint_eq(m.nparams, 0);

    /* Counts that promise more types than the body holds. */
    ck_assert_int_eq(codec_parse_parse(BYTES("\0SELECT $1\0\x00\x02\x00\x00\x00\x17"), &m), -1);
    ck_assert_int_eq(codec_parse_parse(BYTES("\0SELECT $1\0\xff\xff\x00\x00\x00\x17"), &m), -1);
}
END_TEST

START_TEST(parse_round_trip)
{
    static const uint8_t types[] = {0, 0, 0, 23, 0, 0, 0, 25, 0, 0, 0, 0};
    PgwBuf b;
    PgwParseMsg m;
    char type;
    uint32_t body_len;

    buf_init(&b);
    codec_build_parse(&b, "stmt7", "SELECT * FROM t WHERE a = $1 AND b = $2 OR c = $3", 3, types);
    ck_assert_int_eq(codec_header(b.data, PGW_MAX_MESSAGE_LEN, &type, &body_len), 0);
    ck_assert_int_eq(type, 'P');
    ck_assert_uint_eq(body_len, b.len - 5);
    ck_assert_int_eq(codec_parse_parse(b.data + 5, body_len, &m), 0);
    ck_assert_str_eq(m.name, "stmt7");
    ck_assert_str_eq(m.query, "SELECT * FROM t WHERE a = $1 AND b = $2 OR c = $3");
    ck_assert_uint_eq(m.nparams, 3);
    ck_assert_mem_eq(m.param_types_raw, types, sizeof(types));

    buf_reset(&b);
    codec_build_parse(&b, "", "SELECT 1", 0, NULL);
    ck_assert_mem_eq(b.data, "P\x00\x00\x00\x10\0SELECT 1\0\x00\x00", 17);
    ck_assert_uint_eq(b.len, 17);
    buf_free(&b);
}
END_TEST

START_TEST(password_fields)
{
    const char *pw = NULL;
    ck_assert_int_eq(codec_parse_password(BYTES("s3cret\0"), &pw), 0);
    ck_assert_str_eq(pw, "s3cret");
    ck_assert_int_eq(codec_parse_password(BYTES("s3cret"), &pw), -1);
}
END_TEST

START_TEST(sasl_initial_fields)
{
    const char *mech = NULL;
    const uint8_t *data = NULL;
    size_t n = 99;
    const ValidMessage *v = &valid_messages[11];

    ck_assert_int_eq(codec_parse_sasl_initial(v->data, v->len, &mech, &data, &n), 0);
    ck_assert_str_eq(mech, "SCRAM-SHA-256");
    ck_assert_uint_eq(n, 31);
    ck_assert_mem_eq(data, "n,,n=,r=rOprNGfwEbeRWgbNEkqO\x0a\x0b\x0c", 31);

    ck_assert_int_eq(
        codec_parse_sasl_initial(valid_messages[12].data, valid_messages[12].len, &mech, &data, &n),
        0);
    ck_assert_ptr_null(data);
    ck_assert_uint_eq(n, 0);

    ck_assert_int_eq(
        codec_parse_sasl_initial(BYTES("SCRAM-SHA-256\0\xff\xff\xff\xfe"), &mech, &data, &n), -1);
    ck_assert_int_eq(codec_parse_sasl_initial(BYTES("SCRAM-SHA-256\0\x7f\xff\xff\xff"
                                                    "abc"),
                                              &mech, &data, &n),
                     -1);
    ck_assert_int_eq(codec_parse_sasl_initial(BYTES("SCRAM-SHA-256\0\x00\x00\x00\x04"
                                                    "abc"),
                                              &mech, &data, &n),
                     -1);
}
END_TEST

START_TEST(target_fields)
{
    char kind = 0;
    const char *name = NULL;
    ck_assert_int_eq(codec_parse_target(BYTES("Sstmt_1\0"), &kind, &name), 0);
    ck_assert_int_eq(kind, 'S');
    ck_assert_str_eq(name, "stmt_1");
    ck_assert_int_eq(codec_parse_target(BYTES("P\0"), &kind, &name), 0);
    ck_assert_int_eq(kind, 'P');
    ck_assert_str_eq(name, "");
    ck_assert_int_eq(codec_parse_target(BYTES("Xstmt\0"), &kind, &name), -1);
    ck_assert_int_eq(codec_parse_target(BYTES("s\0"), &kind, &name), -1);
}
END_TEST

/* ---- backend messages ---- */

START_TEST(error_fields)
{
    PgwErrorFields f;
    const ValidMessage *v = &valid_messages[16];

    ck_assert_int_eq(codec_parse_error(v->data, v->len, &f), 0);
    ck_assert_str_eq(f.severity, "ERROR");
    ck_assert_str_eq(f.severity_nl, "ERROR");
    ck_assert_str_eq(f.sqlstate, "42P01");
    ck_assert_str_eq(f.message, "relation \"nope\" does not exist");
    ck_assert_ptr_null(f.detail);
    ck_assert_ptr_null(f.hint);

    v = &valid_messages[17];
    ck_assert_int_eq(codec_parse_error(v->data, v->len, &f), 0);
    ck_assert_str_eq(f.severity, "NOTICE");
    ck_assert_str_eq(f.detail, "some detail");
    ck_assert_str_eq(f.hint, "some hint");

    ck_assert_int_eq(codec_parse_error(BYTES("\0"), &f), 0);
    ck_assert_ptr_null(f.severity);
    ck_assert_ptr_null(f.message);

    ck_assert_int_eq(codec_parse_error(BYTES("SERROR\0M"), &f), -1);
    ck_assert_int_eq(codec_parse_error(BYTES("SERROR\0\0\0"), &f), -1);
}
END_TEST

START_TEST(ready_fields)
{
    static const struct {
        const uint8_t *data;
        size_t len;
        int rc;
        char status;
    } cases[] = {
        {BYTES("I"), 0, 'I'}, {BYTES("T"), 0, 'T'}, {BYTES("E"), 0, 'E'}, {BYTES("X"), -1, 0},
        {BYTES("\0"), -1, 0}, {BYTES("II"), -1, 0}, {BYTES(""), -1, 0},
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(cases); i++) {
        char status = 0;
        ck_assert_int_eq(codec_parse_ready(cases[i].data, cases[i].len, &status), cases[i].rc);
        if (cases[i].rc == 0)
            ck_assert_int_eq(status, cases[i].status);
    }
}
END_TEST

START_TEST(parameter_status_fields)
{
    const char *name = NULL, *value = NULL;
    ck_assert_int_eq(codec_parse_parameter_status(BYTES("server_version\0"
                                                        "15.4\0"),
                                                  &name, &value),
                     0);
    ck_assert_str_eq(name, "server_version");
    ck_assert_str_eq(value, "15.4");
    ck_assert_int_eq(codec_parse_parameter_status(BYTES("server_version\0"), &name, &value), -1);
}
END_TEST

START_TEST(data_row_fields)
{
    const uint8_t *values[4];
    int32_t lens[4];
    size_t ncols = 0;
    const ValidMessage *v = &valid_messages[24];

    ck_assert_int_eq(codec_parse_data_row(v->data, v->len, 4, &ncols, values, lens), 0);
    ck_assert_uint_eq(ncols, 3);
    ck_assert_int_eq(lens[0], 2);
    ck_assert_mem_eq(values[0], "ab", 2);
    ck_assert_int_eq(lens[1], -1);
    ck_assert_ptr_null(values[1]);
    /* An empty string is not NULL. */
    ck_assert_int_eq(lens[2], 0);
    ck_assert_ptr_nonnull(values[2]);

    /* Wider than the caller's arrays: refused. */
    ck_assert_int_eq(codec_parse_data_row(v->data, v->len, 2, &ncols, values, lens), -1);
    /* A length of -2 is not NULL, it is garbage. */
    ck_assert_int_eq(
        codec_parse_data_row(BYTES("\x00\x01\xff\xff\xff\xfe"), 4, &ncols, values, lens), -1);
    /* A length past the end. */
    ck_assert_int_eq(codec_parse_data_row(BYTES("\x00\x01\x00\x00\x00\x05"
                                                "abcd"),
                                          4, &ncols, values, lens),
                     -1);
}
END_TEST

START_TEST(data_row_round_trip)
{
    static const char *const row[] = {"42", NULL, "", "caf\xc3\xa9"};
    const uint8_t *values[4];
    int32_t lens[4];
    size_t ncols = 0;
    char type;
    uint32_t body_len;
    PgwBuf b;

    buf_init(&b);
    codec_data_row(&b, 4, row);
    ck_assert_int_eq(codec_header(b.data, PGW_MAX_MESSAGE_LEN, &type, &body_len), 0);
    ck_assert_int_eq(type, 'D');
    ck_assert_int_eq(codec_parse_data_row(b.data + 5, body_len, 4, &ncols, values, lens), 0);
    ck_assert_uint_eq(ncols, 4);
    for (size_t i = 0; i < 4; i++) {
        if (!row[i]) {
            ck_assert_int_eq(lens[i], -1);
            continue;
        }
        ck_assert_int_eq(lens[i], (int32_t)strlen(row[i]));
        ck_assert_mem_eq(values[i], row[i], strlen(row[i]));
    }
    buf_free(&b);
}
END_TEST

/* ---- builders: exact bytes, written out by hand from the protocol docs ---- */

static void assert_bytes(const PgwBuf *b, const uint8_t *want, size_t want_len, const char *what)
{
    ck_assert_msg(b->len == want_len, "%s: %zu bytes, want %zu", what, b->len, want_len);
    for (size_t i = 0; i < want_len; i++) {
        ck_assert_msg(b->data[i] == want[i], "%s: byte %zu is 0x%02x, want 0x%02x", what, i,
                      b->data[i], want[i]);
    }
}

static void build_error(PgwBuf *b)
{
    codec_error(b, "ERROR", "42501", "denied", NULL, "ask an admin");
}
static void build_notice(PgwBuf *b)
{
    codec_notice(b, "NOTICE", "00000", "ask: SELECT 1", "d", NULL);
}
static void build_ready(PgwBuf *b)
{
    codec_ready(b, 'I');
}
static void build_parameter_status(PgwBuf *b)
{
    codec_parameter_status(b, "client_encoding", "UTF8");
}
static void build_backend_key(PgwBuf *b)
{
    codec_backend_key(b, 0x01020304u, 0xa0b0c0d0u);
}
static void build_auth_ok(PgwBuf *b)
{
    codec_auth(b, 0, NULL, 0);
}
static void build_auth_md5(PgwBuf *b)
{
    codec_auth(b, 5, "\x01\x02\x03\x04", 4);
}
static void build_auth_sasl(PgwBuf *b)
{
    static const char mechs[] = "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0"; /* + the literal's NUL */
    codec_auth(b, 10, mechs, sizeof(mechs));
}
static void build_row_description_text(PgwBuf *b)
{
    static const char *const names[] = {"sql"};
    codec_row_description(b, 1, names, NULL);
}
static void build_row_description_typed(PgwBuf *b)
{
    static const char *const names[] = {"id", "n"};
    static const uint32_t oids[] = {23, 1700};
    codec_row_description(b, 2, names, oids);
}
static void build_data_row(PgwBuf *b)
{
    static const char *const values[] = {"ab", NULL, ""};
    codec_data_row(b, 3, values);
}
static void build_command_complete(PgwBuf *b)
{
    codec_command_complete(b, "SELECT 1");
}
static void build_empty_query(PgwBuf *b)
{
    codec_empty_query(b);
}
static void build_query(PgwBuf *b)
{
    codec_query(b, "SELECT 1");
}
static void build_sync(PgwBuf *b)
{
    codec_sync(b);
}
static void build_terminate(PgwBuf *b)
{
    codec_terminate(b);
}
static void build_negotiate(PgwBuf *b)
{
    static const char *const unknown[] = {"_pq_.foo", "_pq_.b"};
    codec_negotiate_protocol(b, 0, 2, unknown);
}
static void build_two_messages(PgwBuf *b)
{
    codec_command_complete(b, "SELECT 1");
    codec_ready(b, 'T');
}

static const struct {
    const char *what;
    void (*build)(PgwBuf *b);
    const uint8_t *want;
    size_t want_len;
} builder_cases[] = {
    /* 4 + 7 (S) + 7 (V) + 7 (C) + 8 (M) + 14 (H) + 1 = 48 */
    {"ErrorResponse", build_error,
     BYTES("E\x00\x00\x00\x30"
           "SERROR\0VERROR\0C42501\0Mdenied\0Hask an admin\0\0")},
    /* 4 + 8 + 8 + 7 + 15 + 3 + 1 = 46 */
    {"NoticeResponse", build_notice,
     BYTES("N\x00\x00\x00\x2e"
           "SNOTICE\0VNOTICE\0C00000\0Mask: SELECT 1\0Dd\0\0")},
    {"ReadyForQuery", build_ready, BYTES("Z\x00\x00\x00\x05I")},
    /* 4 + 16 + 5 = 25 */
    {"ParameterStatus", build_parameter_status,
     BYTES("S\x00\x00\x00\x19"
           "client_encoding\0UTF8\0")},
    {"BackendKeyData", build_backend_key,
     BYTES("K\x00\x00\x00\x0c\x01\x02\x03\x04\xa0\xb0\xc0\xd0")},
    {"AuthenticationOk", build_auth_ok, BYTES("R\x00\x00\x00\x08\x00\x00\x00\x00")},
    {"AuthenticationMD5Password", build_auth_md5,
     BYTES("R\x00\x00\x00\x0c\x00\x00\x00\x05\x01\x02\x03\x04")},
    /* 4 + 4 + 19 + 14 + 1 = 42 */
    {"AuthenticationSASL", build_auth_sasl,
     BYTES("R\x00\x00\x00\x2a\x00\x00\x00\x0a"
           "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0")},
    /* 4 + 2 + 4 (name) + 18 = 28 */
    {"RowDescription, text", build_row_description_text,
     BYTES("T\x00\x00\x00\x1c\x00\x01"
           "sql\0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x19\xff\xff\xff\xff\xff\xff\x00\x00")},
    /* 4 + 2 + (3 + 18) + (2 + 18) = 47 */
    {"RowDescription, typed", build_row_description_typed,
     BYTES("T\x00\x00\x00\x2f\x00\x02"
           "id\0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x17\xff\xff\xff\xff\xff\xff\x00\x00"
           "n\0\x00\x00\x00\x00\x00\x00\x00\x00\x06\xa4\xff\xff\xff\xff\xff\xff\x00\x00")},
    /* 4 + 2 + (4 + 2) + 4 + 4 = 20 */
    {"DataRow with a NULL", build_data_row,
     BYTES("D\x00\x00\x00\x14\x00\x03"
           "\x00\x00\x00\x02"
           "ab"
           "\xff\xff\xff\xff"
           "\x00\x00\x00\x00")},
    {"CommandComplete", build_command_complete, BYTES("C\x00\x00\x00\x0dSELECT 1\0")},
    {"EmptyQueryResponse", build_empty_query, BYTES("I\x00\x00\x00\x04")},
    {"Query", build_query, BYTES("Q\x00\x00\x00\x0dSELECT 1\0")},
    {"Sync", build_sync, BYTES("S\x00\x00\x00\x04")},
    {"Terminate", build_terminate, BYTES("X\x00\x00\x00\x04")},
    /* 4 + 4 + 4 + 9 + 7 = 28 */
    {"NegotiateProtocolVersion", build_negotiate,
     BYTES("v\x00\x00\x00\x1c\x00\x00\x00\x00\x00\x00\x00\x02_pq_.foo\0_pq_.b\0")},
    {"two messages appended", build_two_messages,
     BYTES("C\x00\x00\x00\x0dSELECT 1\0Z\x00\x00\x00\x05T")},
};

START_TEST(builder_exact_bytes)
{
    PgwBuf b;
    buf_init(&b);
    builder_cases[_i].build(&b);
    assert_bytes(&b, builder_cases[_i].want, builder_cases[_i].want_len, builder_cases[_i].what);

    /* Appending after existing content leaves that content alone and
     * frames the new message the same way. */
    buf_reset(&b);
    buf_append(&b, "xyz", 3);
    builder_cases[_i].build(&b);
    ck_assert_mem_eq(b.data, "xyz", 3);
    ck_assert_uint_eq(b.len, 3 + builder_cases[_i].want_len);
    ck_assert_mem_eq(b.data + 3, builder_cases[_i].want, builder_cases[_i].want_len);
    buf_free(&b);
}
END_TEST

/* What pgwarden builds, its own parser (and so a client) reads back. */
START_TEST(built_error_parses_back)
{
    PgwBuf b;
    PgwErrorFields f;
    char type;
    uint32_t body_len;

    buf_init(&b);
    codec_error(&b, "ERROR", SQLSTATE_INSUFFICIENT_PRIVILEGE, "pgwarden: only SELECT is allowed",
                "DELETE was refused", "use a read-only query");
    ck_assert_int_eq(codec_header(b.data, PGW_MAX_MESSAGE_LEN, &type, &body_len), 0);
    ck_assert_int_eq(type, 'E');
    ck_assert_uint_eq(body_len + 5, b.len);
    ck_assert_int_eq(codec_parse_error(b.data + 5, body_len, &f), 0);
    ck_assert_str_eq(f.severity, "ERROR");
    ck_assert_str_eq(f.severity_nl, "ERROR");
    ck_assert_str_eq(f.sqlstate, "42501");
    ck_assert_str_eq(f.message, "pgwarden: only SELECT is allowed");
    ck_assert_str_eq(f.detail, "DELETE was refused");
    ck_assert_str_eq(f.hint, "use a read-only query");
    buf_free(&b);
}
END_TEST

static Suite *codec_suite(void)
{
    Suite *s = suite_create("codec");
    TCase *tc;

    tc = tcase_create("corpus");
    tcase_add_loop_test(tc, valid_corpus_parses, 0, (int)PGW_ARRAY_LEN(valid_messages));
    tcase_add_loop_test(tc, every_truncation_is_refused, 0, (int)PGW_ARRAY_LEN(valid_messages));
    tcase_add_loop_test(tc, trailing_data_is_refused, 0, (int)PGW_ARRAY_LEN(valid_messages));
    suite_add_tcase(s, tc);

    tc = tcase_create("fuzz");
    tcase_set_timeout(tc, 120); /* valgrind is slow */
    tcase_add_test(tc, random_bytes_never_crash);
    tcase_add_test(tc, random_bytes_without_nul_are_refused);
    tcase_add_test(tc, mutated_messages_never_crash);
    suite_add_tcase(s, tc);

    tc = tcase_create("parsers");
    tcase_add_loop_test(tc, header_table, 0, (int)PGW_ARRAY_LEN(header_cases));
    tcase_add_test(tc, startup_normal_fields);
    tcase_add_test(tc, startup_minor_version_and_options);
    tcase_add_test(tc, startup_special_requests);
    tcase_add_loop_test(tc, startup_malformed, 0, (int)PGW_ARRAY_LEN(bad_startups));
    tcase_add_test(tc, startup_parameter_limit);
    tcase_add_test(tc, startup_length_limit);
    tcase_add_test(tc, query_fields);
    tcase_add_test(tc, parse_fields);
    tcase_add_test(tc, parse_round_trip);
    tcase_add_test(tc, password_fields);
    tcase_add_test(tc, sasl_initial_fields);
    tcase_add_test(tc, target_fields);
    tcase_add_test(tc, error_fields);
    tcase_add_test(tc, ready_fields);
    tcase_add_test(tc, parameter_status_fields);
    tcase_add_test(tc, data_row_fields);
    tcase_add_test(tc, data_row_round_trip);
    suite_add_tcase(s, tc);

    tc = tcase_create("builders");
    tcase_add_loop_test(tc, builder_exact_bytes, 0, (int)PGW_ARRAY_LEN(builder_cases));
    tcase_add_test(tc, built_error_parses_back);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(codec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
