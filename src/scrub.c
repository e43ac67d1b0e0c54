/*
 * scrub.c — see scrub.h.
 */
#include "scrub.h"

#include <arpa/inet.h>
#include <string.h>

static bool class_quotes_data(const char *sqlstate)
{
    static const char *const classes[] = {"22", "23", "P0", "XX", "2F",
                                          "39", "40", "38", "0L", "27"};
    if (!sqlstate || strlen(sqlstate) != 5)
        return true; /* unknown: assume the worst */
    for (size_t i = 0; i < PGW_ARRAY_LEN(classes); i++)
        if (strncmp(sqlstate, classes[i], 2) == 0)
            return true;
    return false;
}

static void append_redacted(PgwBuf *out, const char *msg)
{
    for (const char *p = msg; *p; p++) {
        if (*p != '"') {
            buf_append_byte(out, (uint8_t)*p);
            continue;
        }
        const char *end = strchr(p + 1, '"');
        if (!end) {
            buf_append_str(out, "\"***\"");
            return;
        }
        buf_append_str(out, "\"***\"");
        p = end;
    }
}

int scrub_backend_error(char type, const uint8_t *body, size_t len, PgwBuf *out)
{
    /* First pass: validate and find the SQLSTATE. */
    const char *sqlstate = NULL;
    size_t i = 0;
    while (i < len && body[i] != 0) {
        const void *nul = memchr(body + i + 1, 0, len - i - 1);
        if (!nul)
            return -1;
        if (body[i] == 'C')
            sqlstate = (const char *)body + i + 1;
        i = (size_t)((const uint8_t *)nul - body) + 1;
    }
    if (i >= len)
        return -1; /* no terminator */
    bool redact = class_quotes_data(sqlstate);

    size_t start = out->len;
    buf_append_byte(out, (uint8_t)type);
    buf_append_u32(out, 0);
    for (i = 0; body[i] != 0;) {
        char field = (char)body[i];
        const char *value = (const char *)body + i + 1;
        i += strlen(value) + 2;
        switch (field) {
        case 'S':
        case 'V':
        case 'C':
            buf_append_byte(out, (uint8_t)field);
            buf_append_cstr(out, value);
            break;
        case 'M':
        case 'H':
            buf_append_byte(out, (uint8_t)field);
            if (redact)
                append_redacted(out, value);
            else
                buf_append_str(out, value);
            buf_append_byte(out, 0);
            break;
        default:
            /* D, W, P, p, q, s, t, c, d, n, F, L, R: dropped */
            break;
        }
    }
    buf_append_byte(out, 0);
    uint32_t mlen = htonl((uint32_t)(out->len - start - 1));
    memcpy(out->data + start + 1, &mlen, 4);
    return 0;
}
