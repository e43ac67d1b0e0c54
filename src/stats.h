/*
 * stats.h — process-wide counters for SHOW STATS and /metrics.
 *
 * Plain atomic counters, incremented where the event happens; nothing here
 * locks or allocates, so counting costs the hot path one atomic add.
 */
#ifndef PGW_STATS_H
#define PGW_STATS_H

#include "pgw.h"

typedef struct PgwStats {
    uint64_t logins;
    uint64_t login_failures;
    uint64_t clients_active;
    uint64_t clients_parked; /* idle clients holding no buffers (client.c) */
    uint64_t statements;
    uint64_t statements_refused;
    uint64_t rows;
    uint64_t cancels;
    uint64_t backend_lost;
} PgwStats;

extern PgwStats pgw_stats;

#define STATS_ADD(field, n) __atomic_add_fetch(&pgw_stats.field, (n), __ATOMIC_RELAXED)
#define STATS_SUB(field, n) __atomic_sub_fetch(&pgw_stats.field, (n), __ATOMIC_RELAXED)
#define STATS_GET(field) __atomic_load_n(&pgw_stats.field, __ATOMIC_RELAXED)

#endif
