/*
 * audit.c — see audit.h.
 *
 * The event loops only collect a record's fields (plain strings and
 * integers, in the order they were set) and hand the finished record to
 * one writer thread; formatting it as JSON (jansson) and writing it happen
 * there, so neither ever makes a client wait. The writer takes every
 * record queued within AUDIT_FLUSH_MS of the first and writes them with
 * one write(2), so under load the cost per record is a queue append (no
 * wake-up per statement), and lines never interleave (one writer).
 *
 * The writer owns the descriptor: audit_open hands it a new one, and the
 * writer closes the old one only after writing every record queued before
 * the switch, so a reload can never make a line of the audit log go to a
 * descriptor number that meanwhile belongs to a socket.
 *
 * The queue is bounded (AUDIT_QUEUE_MAX records): if the disk stalls that
 * long, the event loop waits for room rather than dropping audit records or
 * growing without limit.
 */
#include "audit.h"

#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define AUDIT_QUEUE_MAX 65536
#define AUDIT_BATCH_BYTES (256 * 1024)
/* The writer looks for records this often, and is woken early only when
 * this many wait: waking it for every record would cost a context switch
 * per statement. */
#define AUDIT_FLUSH_MS 10
#define AUDIT_WAKE_RECORDS 512

typedef struct Field {
    const char *key; /* a string literal at every call site */
    size_t off; /* where the string starts in the record's text; FIELD_INT: an integer */
    int64_t num;
    char *big; /* a long string, allocated on its own (see FIELD_BIG) */
} Field;
#define FIELD_INT SIZE_MAX

/* A record is one allocation plus one buffer of text: its fields sit in
 * the record (a record has about a dozen; more grow the array) and their
 * strings one after the other in text, so a statement costs the event loop
 * two allocations, not one per field, and the writer two frees (of memory
 * another thread allocated, which glibc makes dearer than its own). A
 * field set again points at its new copy; the old one stays in text,
 * unused, until the record goes. */
#define FIELDS_INLINE 20

struct PgwAudit {
    int64_t start_usec;
    size_t n, cap;
    Field *f; /* inline, or on the heap past FIELDS_INLINE */
    PgwBuf text;
    struct PgwAudit *next;
    Field inline_f[FIELDS_INLINE];
};

/* Strings longer than this get an allocation of their own, of their exact
 * size: a 300 kB statement copied into a growing text buffer (freed by the
 * writer thread) left the event loop's allocator arenas fragmented and
 * growing round after round (test_redteam's bound on prepared memory saw
 * it). */
#define FIELD_BIG 4096

static const char *field_str(const PgwAudit *a, const Field *f)
{
    if (f->big)
        return f->big;
    return f->off == FIELD_INT ? NULL : (const char *)a->text.data + f->off;
}

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake, room;
    bool started, stopping;
    PgwAudit *head, *tail;
    size_t queued;
    int fd; /* the writer's; -1: off */
    int new_fd; /* handed over by audit_open; -2: none */
    bool enabled; /* atomic: audit_open's view, for audit_begin */
    pthread_t thread;
} q = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .wake = PTHREAD_COND_INITIALIZER,
       .room = PTHREAD_COND_INITIALIZER,
       .fd = -1,
       .new_fd = -2};

static int64_t now_usec(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* ---------- the writer ---------- */

static void record_free(PgwAudit *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->f[i].big);
    if (a->f != a->inline_f)
        free(a->f);
    buf_free(&a->text);
    free(a);
}

/* jansson's encoder writing straight into the line being built. */
static int append_dumped(const char *buffer, size_t size, void *data)
{
    buf_append(data, buffer, size);
    return 0;
}

/* The bytes a JSON string holds as they are: printable ASCII but '"' and
 * '\\' (jansson escapes only those and control characters here: no
 * JSON_ENSURE_ASCII, no JSON_ESCAPE_SLASH; and ASCII is valid UTF-8). A
 * table, since the writer tests every byte of every record. */
static bool plain_table[256];
static pthread_once_t plain_once = PTHREAD_ONCE_INIT;

static void plain_init(void)
{
    for (int c = 0x20; c <= 0x7e; c++)
        plain_table[c] = c != '"' && c != '\\';
}

/* Plain (see plain_init): its JSON string is itself in quotes. Most audit
 * values are; anything else goes through jansson, whose per-character
 * encoder was most of the writer's time. */
static bool json_plain_len(const char *s, size_t *len)
{
    pthread_once(&plain_once, plain_init);
    const unsigned char *p = (const unsigned char *)s;
    while (plain_table[*p])
        p++;
    if (*p != '\0')
        return false;
    *len = (size_t)(p - (const unsigned char *)s);
    return true;
}

static bool json_plain(const char *s)
{
    size_t len;
    return json_plain_len(s, &len);
}

/* "text" (plain, len bytes) appended in its quotes, with what follows. */
static void append_quoted(PgwBuf *out, const char *text, size_t len, const char *after,
                          size_t after_len)
{
    buf_reserve(out, len + 2 + after_len);
    uint8_t *o = out->data + out->len;
    o[0] = '"';
    memcpy(o + 1, text, len);
    o[len + 1] = '"';
    memcpy(o + len + 2, after, after_len);
    out->len += len + 2 + after_len;
}

/* Keys are the program's own literals; one that is not plain (none is)
 * still goes through the encoder. */
static void append_key(PgwBuf *out, const char *key)
{
    size_t len;
    if (*key != '\0' && json_plain_len(key, &len)) {
        append_quoted(out, key, len, ":", 1);
        return;
    }
    json_t *k = json_string(key);
    json_dump_callback(k, append_dumped, out, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(k);
    buf_append_byte(out, ':');
}

/* One field: a string (NULL: the integer num). A string jansson refuses
 * (invalid UTF-8) is left out, as json_object_set_new left it out. */
static void append_field(PgwBuf *out, bool *first, const char *key, const char *str, int64_t num)
{
    json_t *v = NULL;
    size_t len = 0;
    bool plain = str && json_plain_len(str, &len);
    if (str && !plain && !(v = json_string(str)))
        return;
    if (!*first)
        buf_append_byte(out, ',');
    *first = false;
    append_key(out, key);
    if (plain) {
        append_quoted(out, str, len, "", 0);
    } else if (v) {
        json_dump_callback(v, append_dumped, out, JSON_ENCODE_ANY | JSON_COMPACT);
        json_decref(v);
    } else {
        char digits[1 + PGW_UINT_DIGITS]; /* what jansson's "%lld" prints */
        size_t n = 0;
        if (num < 0)
            digits[n++] = '-';
        n += pgw_format_uint(digits + n,
                             num < 0 ? 0ull - (unsigned long long)num : (unsigned long long)num);
        buf_append(out, digits, n);
    }
}

/* One JSON object per line, the start time first, then the fields in the
 * order they were first set: what json_dumps of a json_object with
 * JSON_PRESERVE_ORDER | JSON_COMPACT gave, without building the object
 * (its hash table, allocations and the sort by insertion order were most
 * of the writer's time). Strings are still validated and escaped by
 * jansson; integers are printed as jansson prints them. Keys are unique
 * (set_field replaces); a field named "time" would replace the stamp in
 * its place, as it did in the object. */
static void format_record(PgwBuf *out, const PgwAudit *a)
{
    /* The stamp's date and time change once a second: formatted then, and
     * only the microseconds for each record (the writer's thread only). */
    static __thread time_t last_second = -1;
    static __thread char second[64];
    time_t t = (time_t)(a->start_usec / 1000000);
    if (t != last_second) {
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(second, sizeof second, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        last_second = t;
    }
    char ts[80];
    size_t sl = strlen(second);
    memcpy(ts, second, sl);
    int us = (int)(a->start_usec % 1000000);
    for (int i = 5; i >= 0; i--, us /= 10)
        ts[sl + (size_t)i] = (char)('0' + us % 10);
    ts[sl + 6] = 'Z';
    ts[sl + 7] = '\0';
    const Field *time_field = NULL;
    for (size_t i = 0; i < a->n && !time_field; i++)
        if (strcmp(a->f[i].key, "time") == 0)
            time_field = &a->f[i];
    bool first = true;
    buf_append_byte(out, '{');
    const char *time_str = time_field ? field_str(a, time_field) : NULL;
    json_t *check = time_str && !json_plain(time_str) ? json_string(time_str) : NULL;
    bool time_ok = time_field && (!time_str || json_plain(time_str) || check);
    json_decref(check); /* a value json_object_set_new refused left the stamp */
    if (time_ok)
        append_field(out, &first, "time", time_str, time_field->num);
    else
        append_field(out, &first, "time", ts, 0);
    for (size_t i = 0; i < a->n; i++)
        if (&a->f[i] != time_field)
            append_field(out, &first, a->f[i].key, field_str(a, &a->f[i]), a->f[i].num);
    buf_append_str(out, "}\n");
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (fd >= 0 && n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void *writer_main(void *arg)
{
    PgwBuf out;
    buf_init(&out);
    pthread_mutex_lock(&q.mu);
    for (;;) {
        while (!q.head && q.new_fd == -2 && !q.stopping)
            pthread_cond_wait(&q.wake, &q.mu);
        if (q.queued < AUDIT_WAKE_RECORDS && q.new_fd == -2 && !q.stopping) {
            /* Let a batch gather (a reload or shutdown does not wait). */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += AUDIT_FLUSH_MS * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&q.wake, &q.mu, &until);
        }
        PgwAudit *batch = q.head;
        q.head = q.tail = NULL;
        q.queued = 0;
        int new_fd = q.new_fd;
        q.new_fd = -2;
        bool stop = q.stopping;
        int fd = q.fd;
        pthread_cond_broadcast(&q.room);
        pthread_mutex_unlock(&q.mu);
        /* Records queued before a switch go to the descriptor they were
         * written for. */
        while (batch) {
            PgwAudit *a = batch;
            batch = a->next;
            format_record(&out, a);
            record_free(a);
            if (out.len >= AUDIT_BATCH_BYTES || !batch) {
                write_all(fd, out.data, out.len);
                buf_reset(&out);
            }
        }
        pthread_mutex_lock(&q.mu);
        if (new_fd != -2) {
            if (q.fd >= 0)
                close(q.fd);
            q.fd = new_fd;
        }
        if (stop && !q.head)
            break;
    }
    pthread_mutex_unlock(&q.mu);
    buf_free(&out);
    return NULL;
}

int audit_open(const char *path)
{
    int fd = -1;
    if (path && *path) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0)
            return -1;
    }
    pthread_mutex_lock(&q.mu);
    if (!q.started && fd >= 0) {
        if (pthread_create(&q.thread, NULL, writer_main, NULL) != 0) {
            pthread_mutex_unlock(&q.mu);
            close(fd);
            return -1;
        }
        q.started = true;
    }
    if (q.started) {
        if (q.new_fd >= 0)
            close(q.new_fd); /* two reloads before the writer woke */
        q.new_fd = fd;
        pthread_cond_signal(&q.wake);
    }
    __atomic_store_n(&q.enabled, fd >= 0, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&q.mu);
    return 0;
}

void audit_shutdown(void)
{
    pthread_mutex_lock(&q.mu);
    bool started = q.started;
    q.stopping = true;
    pthread_cond_signal(&q.wake);
    pthread_mutex_unlock(&q.mu);
    if (started)
        pthread_join(q.thread, NULL);
    q.started = false;
}

bool audit_enabled(void)
{
    return __atomic_load_n(&q.enabled, __ATOMIC_SEQ_CST);
}

/* ---------- records, on the event loops ---------- */

/* str (NULL: the integer num) is copied into the record's text. */
static void set_field(PgwAudit *a, const char *key, const char *str, int64_t num)
{
    size_t off = FIELD_INT;
    char *big = NULL;
    if (str) {
        size_t len = strlen(str);
        if (len > FIELD_BIG) {
            big = pgw_strdup(str);
        } else {
            off = a->text.len;
            buf_append(&a->text, str, len + 1);
        }
    }
    for (size_t i = 0; i < a->n; i++) {
        const char *k = a->f[i].key;
        if (k == key || (k[0] == key[0] && strcmp(k, key) == 0)) {
            free(a->f[i].big);
            a->f[i].big = big;
            a->f[i].off = off;
            a->f[i].num = num;
            return;
        }
    }
    if (a->n == a->cap) {
        a->cap *= 2;
        if (a->f == a->inline_f) {
            a->f = pgw_malloc(a->cap * sizeof *a->f);
            memcpy(a->f, a->inline_f, a->n * sizeof *a->f);
        } else {
            a->f = pgw_realloc(a->f, a->cap * sizeof *a->f);
        }
    }
    a->f[a->n++] = (Field){key, off, num, big};
}

PgwAudit *audit_begin(const char *user, const char *tenant, const char *client_addr,
                      const char *kind, const char *protocol, const char *sql)
{
    if (!audit_enabled())
        return NULL;
    PgwAudit *a = pgw_malloc(sizeof *a);
    a->n = 0;
    a->cap = FIELDS_INLINE;
    a->f = a->inline_f;
    a->next = NULL;
    buf_init(&a->text);
    /* Room for the usual fields at once: the statement twice (sql,
     * rewritten) and a few hundred bytes of names and reasons; long
     * statements go to their own allocations. */
    size_t sl = strlen(sql ? sql : "");
    buf_reserve(&a->text, (sl > FIELD_BIG ? 0 : 2 * sl) + 512);
    a->start_usec = now_usec();
    audit_set_str(a, "user", user);
    audit_set_str(a, "tenant", tenant);
    audit_set_str(a, "client", client_addr);
    audit_set_str(a, "kind", kind ? kind : "");
    audit_set_str(a, "protocol", protocol ? protocol : "");
    audit_set_str(a, "sql", sql);
    return a;
}

void audit_set_str(PgwAudit *a, const char *key, const char *value)
{
    if (a && value)
        set_field(a, key, value, 0);
}

void audit_set_int(PgwAudit *a, const char *key, int64_t value)
{
    if (a)
        set_field(a, key, NULL, value);
}

void audit_set_decision(PgwAudit *a, const char *decision, const char *rewritten,
                        const char *reason, const char *sqlstate)
{
    audit_set_str(a, "decision", decision);
    audit_set_str(a, "rewritten", rewritten);
    audit_set_str(a, "reason", reason);
    audit_set_str(a, "sqlstate", sqlstate);
}

void audit_finish(PgwAudit *a, int64_t rows)
{
    if (!a)
        return;
    audit_set_int(a, "rows", rows);
    audit_set_int(a, "duration_us", now_usec() - a->start_usec);
    a->next = NULL;
    pthread_mutex_lock(&q.mu);
    if (!q.started || q.stopping) {
        pthread_mutex_unlock(&q.mu);
        record_free(a);
        return;
    }
    while (q.queued >= AUDIT_QUEUE_MAX && !q.stopping)
        pthread_cond_wait(&q.room, &q.mu);
    if (q.tail)
        q.tail->next = a;
    else
        q.head = a;
    q.tail = a;
    size_t queued = ++q.queued;
    if (queued == 1 || queued == AUDIT_WAKE_RECORDS)
        pthread_cond_signal(&q.wake); /* the first starts the writer's short wait */
    pthread_mutex_unlock(&q.mu);
}

void audit_discard(PgwAudit *a)
{
    if (a)
        record_free(a);
}
