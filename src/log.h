/*
 * log.h — pgwarden's log: one line per event, to stderr or log_file.
 *
 * Lines are written with a single write(2) so lines from several worker
 * threads never interleave. Every line about a session carries the client's
 * identity ("user/tenant@addr") so one session can be followed through a log.
 */
#ifndef PGW_LOG_H
#define PGW_LOG_H

#include "pgw.h"

typedef enum {
    PGW_LOG_DEBUG,
    PGW_LOG_INFO,
    PGW_LOG_WARNING,
    PGW_LOG_ERROR,
    PGW_LOG_FATAL
} PgwLogLevel;

/* Direct the log to path (append); NULL or "" means stderr. */
int log_open(const char *path) PGW_WUR;
void log_set_level(PgwLogLevel level);
void pgw_log(PgwLogLevel level, const char *fmt, ...) PGW_PRINTF(2, 3);

#define log_debug(...) pgw_log(PGW_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) pgw_log(PGW_LOG_INFO, __VA_ARGS__)
#define log_warning(...) pgw_log(PGW_LOG_WARNING, __VA_ARGS__)
#define log_error(...) pgw_log(PGW_LOG_ERROR, __VA_ARGS__)

#endif
