/*
 * buf.c — growable byte buffer and the allocation wrappers. See buf.h.
 */
#include "buf.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(void)
{
    fputs("pgwarden: out of memory\n", stderr);
    abort();
}

void *pgw_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *pgw_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

void *pgw_realloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom();
    return p;
}

char *pgw_strdup(const char *s)
{
    return s ? pgw_strndup(s, strlen(s)) : NULL;
}

char *pgw_strndup(const char *s, size_t n)
{
    char *p = pgw_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void buf_init(PgwBuf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

void buf_free(PgwBuf *b)
{
    free(b->data);
    buf_init(b);
}

void buf_reset(PgwBuf *b)
{
    b->len = 0;
}

void buf_reserve(PgwBuf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra)
        cap *= 2;
    b->data = pgw_realloc(b->data, cap);
    b->cap = cap;
}

void buf_append(PgwBuf *b, const void *data, size_t len)
{
    buf_reserve(b, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
}

void buf_append_str(PgwBuf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_append_cstr(PgwBuf *b, const char *s)
{
    buf_append(b, s, strlen(s) + 1);
}

void buf_append_byte(PgwBuf *b, uint8_t c)
{
    buf_append(b, &c, 1);
}

void buf_append_u16(PgwBuf *b, uint16_t v)
{
    v = htons(v);
    buf_append(b, &v, 2);
}

void buf_append_u32(PgwBuf *b, uint32_t v)
{
    v = htonl(v);
    buf_append(b, &v, 4);
}

/* Formats into the room the buffer has (at least 64 bytes are made), and
 * only when that is too small a second time with room for all of it: most
 * calls are short, and formatting twice every time was most of their cost. */
void buf_printf(PgwBuf *b, const char *fmt, ...)
{
    va_list ap;
    buf_reserve(b, 64);
    size_t room = b->cap - b->len;
    va_start(ap, fmt);
    int n = vsnprintf((char *)b->data + b->len, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= room) {
        buf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

size_t pgw_format_uint(char out[PGW_UINT_DIGITS], unsigned long long v)
{
    char tmp[PGW_UINT_DIGITS];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

void pgw_copy_str(char *dst, size_t cap, const char *src)
{
    if (cap == 0)
        return;
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

char *buf_steal_str(PgwBuf *b)
{
    buf_append_byte(b, 0);
    char *s = (char *)b->data;
    buf_init(b);
    return s;
}

char *buf_take_quoted(const char **sp)
{
    const char *s = *sp;
    if (*s != '"')
        return NULL;
    PgwBuf b;
    buf_init(&b);
    for (s++;; s++) {
        if (!*s) {
            buf_free(&b);
            return NULL;
        }
        if (*s == '"' && s[1] == '"')
            buf_append_byte(&b, (uint8_t)*s++);
        else if (*s == '"')
            break;
        else
            buf_append_byte(&b, (uint8_t)*s);
    }
    *sp = s + 1;
    return buf_steal_str(&b);
}
