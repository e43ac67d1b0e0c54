/*
 * test_scrub.c — what of a backend's ErrorResponse/NoticeResponse reaches a
 * client (src/scrub.h), table-driven: a message body in, the fields a
 * client receives out.
 *
 * Bodies are written as field lists ("C22P02", "Mtext", ...) so a case reads
 * like the error a user would see. The marker "acme-secret" stands for a
 * value that must never reach the client; every case checks it is gone
 * whenever its class or field is one that gets scrubbed.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "scrub.h"

#define MARKER "acme-secret"

/* Build a body from "Xvalue" strings: each becomes X, value, NUL; then the
 * terminating NUL. */
static void build_body(PgwBuf *b, const char *const *fields)
{
    buf_init(b);
    for (size_t i = 0; fields[i] != NULL; i++) {
        buf_append_byte(b, (uint8_t)fields[i][0]);
        buf_append_cstr(b, fields[i] + 1);
    }
    buf_append_byte(b, 0);
}

/* The value of field code in a scrubbed message (type, length, fields), or
 * NULL when absent. */
static const char *field_of(const PgwBuf *msg, char code)
{
    for (size_t i = 5; i < msg->len && msg->data[i] != 0;) {
        const char *value = (const char *)msg->data + i + 1;
        if (msg->data[i] == (uint8_t)code)
            return value;
        i += strlen(value) + 2;
    }
    return NULL;
}

typedef struct ScrubCase {
    const char *name;
    const char *fields[16]; /* NULL-terminated */
    const char *message; /* expected M after scrubbing */
    const char *hint; /* expected H, NULL: must be absent */
} ScrubCase;

static const ScrubCase cases[] = {
    {"class 22 quotes a value",
     {"SERROR", "VERROR", "C22P02", "Minvalid input syntax for type integer: \"" MARKER "\"", NULL},
     "invalid input syntax for type integer: \"***\"",
     NULL},
    {"class 22 division by zero has nothing to hide",
     {"SERROR", "C22012", "Mdivision by zero", NULL},
     "division by zero",
     NULL},
    {"class 23 key value in message and hint",
     {"SERROR", "C23505", "Mduplicate key \"" MARKER "\" and \"x\"", "HKey \"" MARKER "\" exists.",
      NULL},
     "duplicate key \"***\" and \"***\"",
     "Key \"***\" exists."},
    {"unterminated quote is redacted to the end",
     {"SERROR", "C22P02", "Mbad value \"" MARKER, NULL},
     "bad value \"***\"",
     NULL},
    {"class XX internal error",
     {"SERROR", "CXX000", "Mcache lookup failed for \"" MARKER "\"", NULL},
     "cache lookup failed for \"***\"",
     NULL},
    {"missing SQLSTATE is treated as data-quoting",
     {"SERROR", "Mvalue \"" MARKER "\"", NULL},
     "value \"***\"",
     NULL},
    {"class 42 keeps the identifiers the client wrote",
     {"SERROR", "C42703", "Mcolumn \"nme\" does not exist",
      "HPerhaps you meant to reference the column \"c.name\".", "P8", NULL},
     "column \"nme\" does not exist",
     "Perhaps you meant to reference the column \"c.name\"."},
    {"detail, context, positions, internal query and object names are dropped",
     {"SERROR", "C22P02", "Mbad input", "DFailing row contains (" MARKER ").",
      "WSQL function \"f\" statement 1: " MARKER, "P12", "p3", "qSELECT '" MARKER "'", "spublic",
      "tcustomers", "c" MARKER, "nkey_" MARKER, NULL},
     "bad input",
     NULL},
    {"file, line and routine are dropped",
     {"SERROR", "C42601", "Msyntax error at or near \"x\"", "Fscan.l", "L1176", "Rscanner_yyerror",
      NULL},
     "syntax error at or near \"x\"",
     NULL},
};

START_TEST(test_scrub_case)
{
    const ScrubCase *c = &cases[_i];
    PgwBuf body, out;
    build_body(&body, c->fields);
    buf_init(&out);
    ck_assert_msg(scrub_backend_error('E', body.data, body.len, &out) == 0, "%s", c->name);

    /* A well-formed message: type, length that matches, terminator. */
    ck_assert_int_eq(out.data[0], 'E');
    uint32_t len;
    memcpy(&len, out.data + 1, 4);
    ck_assert_uint_eq(ntohl(len), out.len - 1);
    ck_assert_int_eq(out.data[out.len - 1], 0);

    const char *m = field_of(&out, 'M');
    ck_assert_ptr_nonnull(m);
    ck_assert_msg(strcmp(m, c->message) == 0, "%s: M is \"%s\"", c->name, m);
    const char *h = field_of(&out, 'H');
    if (c->hint == NULL)
        ck_assert_msg(h == NULL, "%s: hint kept: %s", c->name, h);
    else
        ck_assert_msg(h != NULL && strcmp(h, c->hint) == 0, "%s: H is \"%s\"", c->name,
                      h != NULL ? h : "(none)");
    static const char dropped[] = "DWPpqstcdnFLR";
    for (const char *f = dropped; *f != '\0'; f++)
        ck_assert_msg(field_of(&out, *f) == NULL, "%s: field %c kept", c->name, *f);
    /* Severity and SQLSTATE survive: clients branch on them. */
    ck_assert_ptr_nonnull(field_of(&out, 'S'));
    bool has_code = false;
    for (size_t i = 0; c->fields[i] != NULL; i++)
        if (c->fields[i][0] == 'C') {
            has_code = true;
            ck_assert_str_eq(field_of(&out, 'C'), c->fields[i] + 1);
        }
    if (!has_code)
        ck_assert_ptr_null(field_of(&out, 'C'));
    /* The marker never survives a scrub. */
    ck_assert_msg(memmem(out.data, out.len, MARKER, strlen(MARKER)) == NULL, "%s: marker leaked",
                  c->name);
    buf_free(&body);
    buf_free(&out);
}
END_TEST

START_TEST(test_exact_bytes)
{
    static const char *const fields[] = {"SERROR",
                                         "VERROR",
                                         "C22P02",
                                         "Minvalid input syntax for type integer: \"" MARKER "\"",
                                         "DRow (" MARKER ")",
                                         "P15",
                                         NULL};
    static const uint8_t want[] = "E\0\0\0\x48"
                                  "SERROR\0VERROR\0C22P02\0"
                                  "Minvalid input syntax for type integer: \"***\"\0";
    PgwBuf body, out;
    build_body(&body, fields);
    buf_init(&out);
    ck_assert_int_eq(scrub_backend_error('E', body.data, body.len, &out), 0);
    /* sizeof(want) counts the message's final NUL terminator. */
    ck_assert_uint_eq(out.len, sizeof(want));
    ck_assert_msg(memcmp(out.data, want, sizeof(want)) == 0, "bytes differ");
    buf_free(&body);
    buf_free(&out);
}
END_TEST

START_TEST(test_notice_type_kept)
{
    static const char *const fields[] = {
        "SNOTICE", "VNOTICE", "C00000", "Mtable \"t\" does not exist, skipping", "Wctx", NULL};
    PgwBuf body, out;
    build_body(&body, fields);
    buf_init(&out);
    ck_assert_int_eq(scrub_backend_error('N', body.data, body.len, &out), 0);
    ck_assert_int_eq(out.data[0], 'N');
    ck_assert_str_eq(field_of(&out, 'S'), "NOTICE");
    ck_assert_ptr_null(field_of(&out, 'W'));
    buf_free(&body);
    buf_free(&out);
}
END_TEST

/* Every proper prefix of a valid body is malformed: -1, nothing appended,
 * no read past the given length (run under valgrind/ASan to see that). */
START_TEST(test_truncations)
{
    static const char *const fields[] = {"SERROR", "C22P02", "Mbad \"" MARKER "\"", "Ddetail",
                                         NULL};
    PgwBuf body, out;
    build_body(&body, fields);
    buf_init(&out);
    buf_append_str(&out, "prefix");
    for (size_t n = 0; n < body.len; n++) {
        /* A private copy of exactly n bytes, so an overread is a real one. */
        uint8_t *cut = malloc(n > 0 ? n : 1);
        memcpy(cut, body.data, n);
        ck_assert_msg(scrub_backend_error('E', cut, n, &out) == -1, "prefix of %zu bytes", n);
        ck_assert_uint_eq(out.len, 6);
        free(cut);
    }
    ck_assert_int_eq(scrub_backend_error('E', body.data, body.len, &out), 0);
    ck_assert_uint_gt(out.len, 6);
    ck_assert(memcmp(out.data, "prefix", 6) == 0);
    buf_free(&body);
    buf_free(&out);
}
END_TEST

START_TEST(test_garbage)
{
    static const struct {
        const char *bytes;
        size_t len;
    } bodies[] = {
        {"", 0}, {"S", 1}, {"SERROR", 6}, {"SERROR\0M", 8}, {"\xff\xfe\xfd", 3},
    };
    PgwBuf out;
    buf_init(&out);
    for (size_t i = 0; i < PGW_ARRAY_LEN(bodies); i++) {
        ck_assert_msg(
            scrub_backend_error('E', (const uint8_t *)bodies[i].bytes, bodies[i].len, &out) == -1,
            "garbage %zu accepted", i);
        ck_assert_uint_eq(out.len, 0);
    }
    /* An empty field list (just the terminator) is well-formed. */
    ck_assert_int_eq(scrub_backend_error('E', (const uint8_t *)"", 1, &out), 0);
    ck_assert_uint_eq(out.len, 6);
    buf_free(&out);
}
END_TEST

static Suite *scrub_suite(void)
{
    Suite *s = suite_create("scrub");
    TCase *tc = tcase_create("scrub");
    tcase_add_loop_test(tc, test_scrub_case, 0, PGW_ARRAY_LEN(cases));
    tcase_add_test(tc, test_exact_bytes);
    tcase_add_test(tc, test_notice_type_kept);
    tcase_add_test(tc, test_truncations);
    tcase_add_test(tc, test_garbage);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(scrub_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
