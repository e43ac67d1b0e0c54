/*
 * log.c — see log.h.
 *
 * The log file lives at one descriptor number for the life of the process
 * (log_slot), and a reopen replaces the open file behind that number with
 * dup3(2) instead of closing it. A writer on another thread loads the
 * number and then calls write(2); if the number could be closed in between
 * (the old scheme: swap, then close the old one), a socket accepted at that
 * moment could take the number and a client would receive a log line, with
 * another tenant's user names and SQL in it. dup3 swaps the file atomically:
 * a write that races a reopen goes whole to the old file or whole to the
 * new one, and the number never belongs to anything else. Going back to
 * stderr points the slot at stderr the same way (the slot is never closed).
 * log_open runs on the main thread (start-up, SIGHUP) or under the admin
 * console's RELOAD; a mutex keeps two reopens from crossing.
 */
#define _GNU_SOURCE /* dup3 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* What writers use: 2 until a file is opened, then log_slot for good. */
static int log_fd = 2;
static int log_slot = -1; /* never closed once set */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static PgwLogLevel log_level = PGW_LOG_INFO;
static const char *const level_names[] = {"DEBUG", "LOG", "WARNING", "ERROR", "FATAL"};

/* Put the file open at fd behind the slot's number (O_CLOEXEC kept). */
static int move_to_slot(int fd)
{
    int r;
    do {
        r = dup3(fd, log_slot, O_CLOEXEC);
    } while (r < 0 && (errno == EINTR || errno == EBUSY));
    return r < 0 ? -1 : 0;
}

int log_open(const char *path)
{
    int rc = -1;
    pthread_mutex_lock(&log_mu);
    if (!path || !*path) {
        /* Back to stderr: the slot (if any) now points there too. */
        if (log_slot < 0 || move_to_slot(2) == 0)
            rc = 0;
        goto out;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        goto out;
    if (log_slot < 0) {
        /* The first file's number becomes the slot; never 0-2, which
         * daemonizing points at /dev/null. */
        if (fd <= 2) {
            int high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
            close(fd);
            if (high < 0)
                goto out;
            fd = high;
        }
        log_slot = fd;
        __atomic_store_n(&log_fd, fd, __ATOMIC_SEQ_CST);
        rc = 0;
        goto out;
    }
    int saved = errno;
    rc = move_to_slot(fd);
    if (rc != 0)
        saved = errno;
    close(fd);
    errno = saved;
out:
    pthread_mutex_unlock(&log_mu);
    return rc;
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
