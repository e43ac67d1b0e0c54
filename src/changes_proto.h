/*
 * changes_proto.h — the streaming replication protocol's CopyBoth messages
 * and the pgoutput logical replication messages (protocol version 1), as
 * pure functions over bytes.
 *
 * What it owns: framing and validation. A parser takes one message and
 * either fills a plain struct or refuses it with a reason; it never reads
 * past the end, never trusts a length or a count before checking that the
 * bytes are there, and refuses trailing bytes (a message that does not
 * consume its length exactly is malformed, as the codec does for the
 * client protocol). It does no I/O, keeps no state and allocates nothing:
 * strings in a parsed message point into the caller's buffer (pgoutput
 * sends them NUL-terminated, and the parser checks the NUL is inside the
 * message), so a result lives as long as that buffer.
 *
 * Tuple data is validated (every column's kind and length) but not
 * decoded: following changes for cache invalidation needs the relation,
 * never the values. Columns of a Relation message and relation ids of a
 * Truncate are read with the accessors below, after the parser has
 * checked the whole message.
 *
 * Only protocol version 1 is understood (no streamed or two-phase
 * transactions: their messages are refused as unexpected), which is what
 * the stream asks the server for.
 */
#ifndef PGW_CHANGES_PROTO_H
#define PGW_CHANGES_PROTO_H

#include "pgw.h"

/* PostgreSQL's epoch (2000-01-01) in Unix microseconds. */
#define PGW_PG_EPOCH_USEC INT64_C(946684800000000)

/* ---- streaming replication: what travels in CopyData ------------------ */

typedef enum {
    PGW_REPL_XLOGDATA = 'w', /* a WAL payload (here: one pgoutput message) */
    PGW_REPL_KEEPALIVE = 'k', /* primary keepalive */
} PgwReplKind;

typedef struct PgwReplMsg {
    PgwReplKind kind;
    uint64_t wal_start; /* XLogData: where the payload starts */
    uint64_t wal_end; /* the server's position (keepalive: its end of WAL sent) */
    int64_t send_time; /* server clock, microseconds since 2000-01-01 */
    bool reply_requested; /* keepalive: answer at once or be timed out */
    const uint8_t *payload; /* XLogData only */
    size_t payload_len;
} PgwReplMsg;

/* Parse one CopyData body from the server. */
int changes_parse_copy(const uint8_t *data, size_t len, PgwReplMsg *out, char *err,
                       size_t errlen) PGW_WUR;

/* A standby status update ('r'): positions written/flushed/applied, the
 * client's clock (microseconds since 2000-01-01) and whether the server
 * should answer with a keepalive at once. Writes exactly
 * PGW_REPL_STATUS_LEN bytes. */
#define PGW_REPL_STATUS_LEN 34
void changes_encode_status(uint8_t out[PGW_REPL_STATUS_LEN], uint64_t written, uint64_t flushed,
                           uint64_t applied, int64_t client_time, bool reply_requested);

/* "16/B374D848" — PostgreSQL's text form of an LSN. buf holds >= 18 bytes. */
void changes_format_lsn(uint64_t lsn, char *buf, size_t len);
/* The reverse, for IDENTIFY_SYSTEM and CREATE_REPLICATION_SLOT results. */
int changes_parse_lsn(const char *s, uint64_t *out) PGW_WUR;

/* ---- pgoutput, protocol version 1 -------------------------------------- */

typedef enum {
    PGW_LR_BEGIN = 'B',
    PGW_LR_COMMIT = 'C',
    PGW_LR_ORIGIN = 'O',
    PGW_LR_RELATION = 'R',
    PGW_LR_TYPE = 'Y',
    PGW_LR_INSERT = 'I',
    PGW_LR_UPDATE = 'U',
    PGW_LR_DELETE = 'D',
    PGW_LR_TRUNCATE = 'T',
    PGW_LR_MESSAGE = 'M',
} PgwLrKind;

/* Truncate options (bit flags). */
#define PGW_LR_TRUNCATE_CASCADE 1
#define PGW_LR_TRUNCATE_RESTART_IDENTITY 2

typedef struct PgwLrColumn {
    bool key; /* part of the replica identity */
    const char *name;
    uint32_t type_oid;
    int32_t typmod;
} PgwLrColumn;

/* One decoded message. Which fields mean something depends on kind; the
 * rest are zero. */
typedef struct PgwLrMsg {
    PgwLrKind kind;
    uint32_t xid; /* Begin */
    uint64_t lsn; /* Begin: final LSN; Commit: commit LSN; Origin: origin's
                     commit LSN; Message: the message's LSN */
    uint64_t end_lsn; /* Commit: end of the transaction */
    int64_t commit_time; /* Begin, Commit: microseconds since 2000-01-01 */
    uint8_t flags; /* Commit: unused flags; Message: 1 = transactional;
                      Truncate: PGW_LR_TRUNCATE_* */
    uint32_t relid; /* Relation, Insert, Update, Delete; Type: type OID */
    /* Relation: namespace ("" means pg_catalog) and name; Type: the type's
     * namespace and name; Origin: name in `name`; Message: prefix in `name`. */
    const char *nspname;
    const char *name;
    char replident; /* Relation: pg_class.relreplident */
    uint16_t ncolumns; /* Relation: how many columns follow */
    char old_tuple; /* Update/Delete: 'K' (key), 'O' (old row) or 0 (none) */
    bool new_tuple; /* Insert/Update: a new row is present */
    uint32_t nrelids; /* Truncate: how many relation ids follow */
    const uint8_t *content; /* Message: its content */
    size_t content_len;
    /* internal: where Relation columns / Truncate relids / tuples start */
    const uint8_t *body;
    size_t body_len;
    const uint8_t *old_data, *new_data;
} PgwLrMsg;

/* Parse one pgoutput message (an XLogData payload). */
int changes_parse_pgoutput(const uint8_t *data, size_t len, PgwLrMsg *out, char *err,
                           size_t errlen) PGW_WUR;

/* Column i (< ncolumns) of a parsed Relation message. Walks from the
 * first column: callers wanting all of them use changes_lr_columns. */
void changes_lr_column(const PgwLrMsg *m, uint16_t i, PgwLrColumn *out);
/* All columns of a parsed Relation message into out[ncolumns]. */
void changes_lr_columns(const PgwLrMsg *m, PgwLrColumn *out);
/* The kind of each column of the old (or new) tuple of a parsed Insert,
 * Update or Delete, one character per column: 'n' NULL (or not part of a
 * key tuple), 'u' unchanged TOASTed value, 't' text, 'b' binary. Writes at
 * most len - 1 of them and a NUL; returns the tuple's column count (0 when
 * the message has no such tuple). */
size_t changes_lr_tuple_kinds(const PgwLrMsg *m, bool old, char *out, size_t len);
/* Relation id i (< nrelids) of a parsed Truncate message. */
uint32_t changes_lr_truncate_relid(const PgwLrMsg *m, uint32_t i);

/* A short name for a message kind ("Insert"), for logs and tests. */
const char *changes_lr_kind_name(PgwLrKind kind);

#endif
