/*
 * audit.c — see audit.h. Records are jansson objects; the start time is kept
 * beside them so the duration covers decision and execution.
 */
#include "audit.h"

#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct PgwAudit {
    json_t *obj;
    int64_t start_usec;
};

static int audit_fd = -1;

static int64_t now_usec(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

int audit_open(const char *path)
{
    int fd = -1;
    if (path && *path) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0)
            return -1;
    }
    int old = __atomic_exchange_n(&audit_fd, fd, __ATOMIC_SEQ_CST);
    if (old >= 0)
        close(old);
    return 0;
}

bool audit_enabled(void)
{
    return __atomic_load_n(&audit_fd, __ATOMIC_SEQ_CST) >= 0;
}

PgwAudit *audit_begin(const char *user, const char *tenant, const char *client_addr,
                      const char *kind, const char *protocol, const char *sql)
{
    if (!audit_enabled())
        return NULL;
    PgwAudit *a = pgw_calloc(1, sizeof *a);
    a->start_usec = now_usec();
    time_t t = (time_t)(a->start_usec / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[64];
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(a->start_usec % 1000000));
    a->obj =
        json_pack("{s:s, s:s?, s:s?, s:s?, s:s, s:s, s:s?}", "time", ts, "user", user, "tenant",
                  tenant, "client", client_addr, "kind", kind, "protocol", protocol, "sql", sql);
    if (!a->obj) {
        free(a);
        return NULL;
    }
    return a;
}

void audit_set_str(PgwAudit *a, const char *key, const char *value)
{
    if (a && value)
        json_object_set_new(a->obj, key, json_string(value));
}

void audit_set_int(PgwAudit *a, const char *key, int64_t value)
{
    if (a)
        json_object_set_new(a->obj, key, json_integer(value));
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
    char *line = json_dumps(a->obj, JSON_COMPACT);
    int fd = __atomic_load_n(&audit_fd, __ATOMIC_SEQ_CST);
    if (line && fd >= 0) {
        size_t n = strlen(line);
        line[n] = '\n'; /* replaces the NUL; written by length */
        ssize_t w;
        do {
            w = write(fd, line, n + 1);
        } while (w < 0 && errno == EINTR);
    }
    free(line);
    audit_discard(a);
}

void audit_discard(PgwAudit *a)
{
    if (!a)
        return;
    json_decref(a->obj);
    free(a);
}
