/*
 * stats.c — the counters; see stats.h.
 */
#include "stats.h"

PgwStats pgw_stats;
