/*
 * changes_follow — runs one change stream (src/changes.c) on its own event
 * loop and prints what its owner would hear, one line per event, for
 * test_invalidation_stream.py (built by `make check`, or by that test).
 *
 *   changes_follow [options] CONNINFO PUBLICATION
 *     --status-interval MS   --timeout MS   --retry MS   (the stream's options)
 *     --capture FILE         append every CopyData message from the server
 *                            to FILE as one line of hex (unit test data)
 *
 * Output lines (stdout, flushed per line):
 *   caught_up 1 epoch=N | caught_up 0 epoch=N
 *   changed SCHEMA.NAME lsn=X/Y
 *   schema SCHEMA.NAME
 *   message PREFIX CONTENT transactional=0|1
 *   stats state=... caught_up=0|1 epoch=N slot=S last_lsn=X/Y acked_lsn=X/Y lag_ms=N
 *         transactions=N changes=N invalidations=N schema_changes=N messages=N
 *         connects=N failures=N followed=N all_tables=0|1 error=TEXT
 *   follows SCHEMA.NAME yes|no
 *   key TEXT
 *   closed
 * Commands (stdin, one per line): stats | follows SCHEMA NAME | key CONNINFO | close.
 * End of input closes the stream too. The module's log goes to stderr.
 */
#include "changes.h"
#include "changes_proto.h"
#include "log.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct event_base *base;
static PgwChanges *stream;
static FILE *capture;
static char line[8192];
static size_t line_len;

static void on_table(void *arg, const PgwChangesTable *t, uint64_t lsn)
{
    char l[32];
    changes_format_lsn(lsn, l, sizeof l);
    printf("changed %s.%s lsn=%s\n", t->schema, t->name, l);
}

static void on_schema(void *arg, const PgwChangesTable *t)
{
    printf("schema %s.%s\n", t->schema, t->name);
}

static void on_caught_up(void *arg, bool yes, uint64_t epoch)
{
    printf("caught_up %d epoch=%llu\n", yes ? 1 : 0, (unsigned long long)epoch);
}

static void on_message(void *arg, const char *prefix, const uint8_t *content, size_t len,
                       bool transactional)
{
    printf("message %s %.*s transactional=%d\n", prefix, (int)len, (const char *)content,
           transactional ? 1 : 0);
}

static void on_tap(void *arg, const uint8_t *data, size_t len)
{
    if (!capture)
        return;
    for (size_t i = 0; i < len; i++)
        fprintf(capture, "%02x", data[i]);
    fputc('\n', capture);
    fflush(capture);
}

static void print_stats(void)
{
    PgwChangesStats st;
    changes_stats(stream, &st);
    char last[32], acked[32];
    changes_format_lsn(st.last_lsn, last, sizeof last);
    changes_format_lsn(st.acked_lsn, acked, sizeof acked);
    printf("stats state=%s caught_up=%d epoch=%llu slot=%s last_lsn=%s acked_lsn=%s lag_ms=%lld "
           "transactions=%llu changes=%llu invalidations=%llu schema_changes=%llu messages=%llu "
           "connects=%llu failures=%llu followed=%zu all_tables=%d error=%s\n",
           changes_state_name(st.state), st.caught_up ? 1 : 0, (unsigned long long)st.epoch,
           st.slot[0] ? st.slot : "-", last, acked, (long long)st.lag_ms,
           (unsigned long long)st.transactions, (unsigned long long)st.changes,
           (unsigned long long)st.invalidations, (unsigned long long)st.schema_changes,
           (unsigned long long)st.messages, (unsigned long long)st.connects,
           (unsigned long long)st.failures, st.followed, st.all_tables ? 1 : 0,
           st.last_error[0] ? st.last_error : "-");
}

static void stop(void)
{
    changes_close(stream);
    stream = NULL;
    printf("closed\n");
    event_base_loopexit(base, NULL);
}

static void command(char *cmd)
{
    char schema[256], name[256];
    if (strcmp(cmd, "stats") == 0) {
        print_stats();
    } else if (sscanf(cmd, "follows %255s %255s", schema, name) == 2) {
        printf("follows %s.%s %s\n", schema, name,
               changes_follows(stream, schema, name, NULL) ? "yes" : "no");
    } else if (strncmp(cmd, "key ", 4) == 0) {
        char key[512], err[256];
        if (changes_database_key(cmd + 4, key, sizeof key, err, sizeof err) < 0)
            printf("key error %s\n", err);
        else
            printf("key %s\n", key);
    } else if (strcmp(cmd, "close") == 0) {
        stop();
    } else {
        printf("unknown command %s\n", cmd);
    }
}

static void stdin_cb(evutil_socket_t fd, short what, void *arg)
{
    ssize_t n = read(0, line + line_len, sizeof line - 1 - line_len);
    if (n <= 0) {
        if (stream)
            stop();
        return;
    }
    line_len += (size_t)n;
    char *nl;
    while (stream && (nl = memchr(line, '\n', line_len))) {
        *nl = '\0';
        command(line);
        size_t used = (size_t)(nl - line) + 1;
        memmove(line, nl + 1, line_len - used);
        line_len -= used;
    }
    if (line_len == sizeof line - 1)
        line_len = 0; /* an absurd line: drop it */
}

int main(int argc, char **argv)
{
    PgwChangesOptions opts = {0};
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--status-interval") == 0)
            opts.status_interval_ms = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--timeout") == 0)
            opts.timeout_ms = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--retry") == 0)
            opts.retry_min_ms = opts.retry_max_ms = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--capture") == 0) {
            capture = fopen(argv[i + 1], "a");
            if (!capture) {
                perror(argv[i + 1]);
                return 2;
            }
        } else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: changes_follow [options] CONNINFO PUBLICATION\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    log_set_level(PGW_LOG_DEBUG);
    opts.conninfo = argv[i];
    opts.publication = argv[i + 1];
    opts.label = "test";
    PgwChangesCallbacks cb = {on_table, on_schema, on_caught_up, on_message, on_tap};
    base = event_base_new();
    stream = changes_open(base, &opts, &cb, NULL);
    struct event *in = event_new(base, 0, EV_READ | EV_PERSIST, stdin_cb, NULL);
    event_add(in, NULL);
    event_base_dispatch(base);
    event_free(in);
    event_base_free(base);
    if (capture)
        fclose(capture);
    return 0;
}
