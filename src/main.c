/*
 * main.c — the pgwarden command: parse options, load the configuration, and
 * either check it (--check) or run the server.
 *
 * It is also where the top layers are wired to the ones below that must
 * not know them: the client layer gets the admin console as a
 * PgwAdminConsole, the server gets the /metrics endpoint (and the result
 * cache's start, which connects each worker to Redis) as services on its
 * main loop.
 *
 *     pgwarden [-d] [-v] CONFIG      run
 *     pgwarden --check CONFIG        validate and exit 0, or print FILE:LINE: why and exit 1
 *     pgwarden -V                    print the version
 */
#include "admin.h"
#include "cache_service.h"
#include "changes_service.h"
#include "pool.h"
#include "client.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "pgw.h"
#include "server.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static const PgwAdminConsole admin_console = {
    .execute = admin_execute,
    .login_params = admin_login_params,
    .execute_later = admin_execute_later,
};

static int start_services(struct event_base *main_base, const PgwConfig *cfg, char *err,
                          size_t errlen)
{
    /* The result cache's Redis connections come up with the workers. */
    cache_service_start(cfg);
    /* the catalog check tells the pools of DDL in every mode; with
     * invalidation = replication the change streams, on their thread, also
     * decide what the cache may serve */
    if (changes_service_start(cfg, pool_schema_refresh, err, errlen) != 0)
        return -1;
    if (cfg->cache_invalidation == PGW_INVALIDATE_REPLICATION)
        cache_service_set_gate(changes_service_cache_gate);
    return metrics_start(main_base, cfg->listen_addr, cfg->metrics_port, err, errlen);
}

static void stop_services(void)
{
    /* the streams close first: the server drops their temporary slots */
    changes_service_stop();
    metrics_stop();
}

static const PgwServerServices services = {
    .start = start_services,
    .stop = stop_services,
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: pgwarden [OPTIONS] CONFIG\n"
                 "PostgreSQL wire-protocol gateway with tenant isolation.\n\n"
                 "  -c, --check     validate CONFIG and exit (0: valid)\n"
                 "  -d, --daemon    run in the background\n"
                 "  -v, --verbose   log debug messages\n"
                 "  -V, --version   print the version and exit\n"
                 "  -h, --help      show this help\n\n"
                 "Signals: SIGHUP reloads CONFIG, SIGTERM shuts down gracefully, SIGINT at once.\n"
                 "See pgwarden(1) and pgwarden.ini(5).\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"check", no_argument, NULL, 'c'},   {"daemon", no_argument, NULL, 'd'},
        {"verbose", no_argument, NULL, 'v'}, {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},    {NULL, 0, NULL, 0},
    };
    bool check = false, daemonize = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "cdvVh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            check = true;
            break;
        case 'd':
            daemonize = true;
            break;
        case 'v':
            log_set_level(PGW_LOG_DEBUG);
            break;
        case 'V':
            printf("pgwarden %s\n", PGW_VERSION_STRING);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *path = argv[optind];
    char err[1024];
    PgwSnapshot *snap;
    if (snapshot_load(path, &snap, err, sizeof err) != 0) {
        fprintf(stderr, "pgwarden: %s\n", err);
        return 1;
    }
    char why[512];
    if (cache_service_check(snap->cfg, why, sizeof why) != 0) {
        fprintf(stderr, "pgwarden: %s: %s\n", path, why);
        snapshot_free(snap);
        return 1;
    }
    if (check) {
        printf("pgwarden: %s is valid\n", path);
        snapshot_free(snap);
        return 0;
    }
    client_set_admin_console(&admin_console);
    return server_run(path, snap, daemonize, &services);
}
