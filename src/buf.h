/*
 * buf.h — a growable byte buffer for building protocol messages and strings.
 *
 * Pure memory: no I/O. Allocation failure aborts (pgwarden treats OOM as
 * fatal, like PostgreSQL's palloc), so append functions return nothing.
 */
#ifndef PGW_BUF_H
#define PGW_BUF_H

#include "pgw.h"

typedef struct PgwBuf {
    uint8_t *data;
    size_t len;
    size_t cap;
} PgwBuf;

void buf_init(PgwBuf *b);
void buf_free(PgwBuf *b);
void buf_reset(PgwBuf *b);
void buf_reserve(PgwBuf *b, size_t extra);
void buf_append(PgwBuf *b, const void *data, size_t len);
void buf_append_str(PgwBuf *b, const char *s); /* without the NUL */
void buf_append_cstr(PgwBuf *b, const char *s); /* with the NUL, as the protocol wants */
void buf_append_byte(PgwBuf *b, uint8_t c);
void buf_append_u16(PgwBuf *b, uint16_t v); /* network order */
void buf_append_u32(PgwBuf *b, uint32_t v); /* network order */
void buf_printf(PgwBuf *b, const char *fmt, ...) PGW_PRINTF(2, 3);
/* Steal the bytes as a NUL-terminated malloc'd string; the buffer is reset. */
char *buf_steal_str(PgwBuf *b);

/* A double-quoted string at *sp ("" inside stands for "), malloc'd without
 * its quotes; *sp moves past the closing quote. NULL when *sp is not at a
 * quote or the string is not closed. (userlist fields, quoted identifiers) */
char *buf_take_quoted(const char **sp);

/* Small helpers used everywhere. */
void *pgw_malloc(size_t n);
void *pgw_calloc(size_t n, size_t size);
void *pgw_realloc(void *p, size_t n);
char *pgw_strdup(const char *s);
char *pgw_strndup(const char *s, size_t n);
/* v in decimal into out (NUL-terminated); returns its length. snprintf's
 * "%llu" without its cost on hot paths. */
#define PGW_UINT_DIGITS 21
size_t pgw_format_uint(char out[PGW_UINT_DIGITS], unsigned long long v);
/* src into dst, cut to cap - 1 bytes, always terminated (strlcpy). */
void pgw_copy_str(char *dst, size_t cap, const char *src);

#endif
