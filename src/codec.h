/*
 * codec.h — the PostgreSQL v3 wire protocol as pure functions.
 *
 * The codec frames, parses and builds protocol messages over plain byte
 * arrays. It does no I/O, keeps no state and never allocates behind the
 * caller's back except into a PgwBuf the caller owns, so every function is
 * unit-testable without sockets. Parsers never trust a length: every read is
 * bounds-checked and a malformed message yields -1, never a crash.
 *
 * Byte order on the wire is network order. A "body" below is what follows the
 * 5-byte header (type byte + int32 length that counts itself).
 */
#ifndef PGW_CODEC_H
#define PGW_CODEC_H

#include "buf.h"
#include "pgw.h"

#define PGW_PROTOCOL_3_0 196608u /* 3 << 16 */
#define PGW_CANCEL_REQUEST_CODE 80877102u
#define PGW_SSL_REQUEST_CODE 80877103u
#define PGW_GSSENC_REQUEST_CODE 80877104u

/* Largest message we accept from a client before it is authenticated, and
 * after. PostgreSQL itself allows 1 GB for data messages. */
#define PGW_MAX_STARTUP_LEN 10000u
#define PGW_MAX_MESSAGE_LEN (1u << 30)

/* ---- framing ---- */

/* Reads the 5-byte header of a typed message. Returns 0 and sets *type and
 * *body_len (length minus the 4 length bytes), or -1 when the length field is
 * below 4 or above max_len. */
int codec_header(const uint8_t hdr[5], size_t max_len, char *type, uint32_t *body_len) PGW_WUR;

/* ---- the untyped first packet: startup, SSLRequest, GSSENCRequest, CancelRequest ---- */

typedef enum {
    PGW_STARTUP_NORMAL,
    PGW_STARTUP_SSL,
    PGW_STARTUP_GSSENC,
    PGW_STARTUP_CANCEL,
} PgwStartupKind;

#define PGW_MAX_STARTUP_PARAMS 32

typedef struct PgwStartup {
    PgwStartupKind kind;
    uint32_t protocol; /* PGW_STARTUP_NORMAL: requested version */
    uint32_t cancel_pid, cancel_key; /* PGW_STARTUP_CANCEL */
    /* NORMAL: name/value pairs pointing into the caller's body (not copied). */
    size_t nparams;
    const char *names[PGW_MAX_STARTUP_PARAMS];
    const char *values[PGW_MAX_STARTUP_PARAMS];
} PgwStartup;

/* body/len: the packet after its 4-byte length. Returns -1 on malformed input
 * (missing terminators, too many parameters, odd sizes). */
int codec_parse_startup(const uint8_t *body, size_t len, PgwStartup *out) PGW_WUR;
/* The value of a startup parameter, or NULL. */
const char *codec_startup_param(const PgwStartup *s, const char *name);

/* ---- frontend messages pgwarden inspects ---- */

/* 'Q': the query string (points into body). */
int codec_parse_query(const uint8_t *body, size_t len, const char **sql) PGW_WUR;

/* 'P': Parse. Pointers point into the body. param_types are raw network-order
 * int32s (nparams of them) starting at param_types_raw. */
typedef struct PgwParseMsg {
    const char *name;
    const char *query;
    uint16_t nparams;
    const uint8_t *param_types_raw;
} PgwParseMsg;
int codec_parse_parse(const uint8_t *body, size_t len, PgwParseMsg *out) PGW_WUR;
/* Rebuild a whole Parse message (header included) with another query text. */
void codec_build_parse(PgwBuf *b, const char *name, const char *query, uint16_t nparams,
                       const uint8_t *param_types_raw);

/* 'p' as PasswordMessage: the NUL-terminated password (points into body). */
int codec_parse_password(const uint8_t *body, size_t len, const char **password) PGW_WUR;
/* 'p' as SASLInitialResponse: mechanism name and initial data (data may be
 * NULL with data_len 0 when the client sent -1). */
int codec_parse_sasl_initial(const uint8_t *body, size_t len, const char **mechanism,
                             const uint8_t **data, size_t *data_len) PGW_WUR;
/* 'p' as SASLResponse: the whole body is the data. Nothing to parse. */

/* 'D' / 'C' (Describe / Close): kind 'S' or 'P' and the name. */
int codec_parse_target(const uint8_t *body, size_t len, char *kind, const char **name) PGW_WUR;

/* ---- backend messages pgwarden inspects ---- */

/* 'E' / 'N': ErrorResponse / NoticeResponse fields (pointers into body). */
typedef struct PgwErrorFields {
    const char *severity; /* 'S' (localized) */
    const char *severity_nl; /* 'V' */
    const char *sqlstate; /* 'C' */
    const char *message; /* 'M' */
    const char *detail; /* 'D' */
    const char *hint; /* 'H' */
} PgwErrorFields;
int codec_parse_error(const uint8_t *body, size_t len, PgwErrorFields *out) PGW_WUR;

/* 'Z': the transaction status byte ('I', 'T' or 'E'). */
int codec_parse_ready(const uint8_t *body, size_t len, char *status) PGW_WUR;

/* 'S': ParameterStatus name and value. */
int codec_parse_parameter_status(const uint8_t *body, size_t len, const char **name,
                                 const char **value) PGW_WUR;

/* 'D': DataRow. values[i] points into body and is NOT NUL-terminated: use
 * lens[i] (-1 for SQL NULL). At most max_cols columns; -1 when malformed or
 * wider. */
int codec_parse_data_row(const uint8_t *body, size_t len, size_t max_cols, size_t *ncols,
                         const uint8_t **values, int32_t *lens) PGW_WUR;

/* ---- builders: each appends one whole message (header included) ---- */

/* severity: "ERROR", "FATAL", "NOTICE", ... detail/hint may be NULL. For
 * NoticeResponse use codec_notice. */
void codec_error(PgwBuf *b, const char *severity, const char *sqlstate, const char *message,
                 const char *detail, const char *hint);
void codec_notice(PgwBuf *b, const char *severity, const char *sqlstate, const char *message,
                  const char *detail, const char *hint);
/* 'R' Authentication: code 0 ok, 3 cleartext, 5 md5 (data = 4-byte salt),
 * 10 SASL (data = mechanism list, each NUL-terminated, plus a final NUL),
 * 11 SASLContinue, 12 SASLFinal. */
void codec_auth(PgwBuf *b, uint32_t code, const void *data, size_t len);
void codec_parameter_status(PgwBuf *b, const char *name, const char *value);
void codec_backend_key(PgwBuf *b, uint32_t pid, uint32_t key);
void codec_ready(PgwBuf *b, char status);
/* RowDescription where every column is text (type oid 25 unless types given). */
void codec_row_description(PgwBuf *b, int ncols, const char *const *names,
                           const uint32_t *type_oids);
/* DataRow in text format; a NULL value is sent as SQL NULL. */
void codec_data_row(PgwBuf *b, int ncols, const char *const *values);
void codec_command_complete(PgwBuf *b, const char *tag);
void codec_empty_query(PgwBuf *b);
/* Frontend messages pgwarden sends to backends on its own. */
void codec_query(PgwBuf *b, const char *sql);
void codec_sync(PgwBuf *b);
void codec_terminate(PgwBuf *b);
void codec_negotiate_protocol(PgwBuf *b, uint32_t newest_minor, size_t nunknown,
                              const char *const *unknown);

/* Single-byte SSL/GSSENC answers are not messages: send "S" or "N" raw. */

#endif
