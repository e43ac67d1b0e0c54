/*
 * log.c — see log.h. The file descriptor is swapped atomically on reopen so
 * a writer on another thread never writes to a closed descriptor.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_fd = 2;
static PgwLogLevel log_level = PGW_LOG_INFO;
static const char *const level_names[] = {"DEBUG", "LOG", "WARNING", "ERROR", "FATAL"};

int log_open(const char *path)
{
    if (!path || !*path) {
        __atomic_store_n(&log_fd, 2, __ATOMIC_SEQ_CST);
        return 0;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    int old = __atomic_exchange_n(&log_fd, fd, __ATOMIC_SEQ_CST);
    if (old > 2)
        close(old);
    return 0;
}

void log_set_level(PgwLogLevel level)
{
    log_level = level;
}

void pgw_log(PgwLogLevel level, const char *fmt, ...)
{
    if (level < log_level)
        return;
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "%04d-%02d-%02d %02d:%02d:%02d.%03d UTC [%d] %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), (int)getpid(), level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    int fd = __atomic_load_n(&log_fd, __ATOMIC_SEQ_CST);
    ssize_t w;
    do {
        w = write(fd, line, len);
    } while (w < 0 && errno == EINTR);
}
