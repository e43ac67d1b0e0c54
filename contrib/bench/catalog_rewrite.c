/*
 * catalog_rewrite.c — what the virtual catalog costs the policy on this
 * machine, against a real backend's schema snapshot:
 *
 *   1. a call with N arguments that each need an OID wrapper
 *      (concat(obj_description(oid, 'pg_class'), ...)) for N from 1,000 to
 *      16,000: rewrite time in total and per argument, and the output's
 *      size, which must grow linearly (issue 7 class 8: this took ~10 s for
 *      8,000 arguments when every wrapper re-parsed and re-spliced the set);
 *   2. for every statement of the given files (the compatibility corpus
 *      format: "-- case:" sections, "-- next" between statements, "--"
 *      directive lines; {{...}} placeholders read as OID 16384), the rewrite
 *      time uncached (median, p90, max over the statements) and the time of a
 *      second rewrite through the rewrite cache.
 *
 *     make -C BUILD contrib/bench/catalog_rewrite
 *     BUILD/contrib/bench/catalog_rewrite CONFIG TENANT [FILE.sql ...]
 *
 * e.g. with the compatibility suite's fixture (catalog_data.py) or any
 * config whose tenant's backend is reachable:
 *     catalog_rewrite pgwarden.ini acme ../shared/clients/pgadmin4.sql \
 *         ../shared/clients/dbeaver.sql tests/integration/sql/compat_extra.sql
 *
 * Figures are printed, never asserted: speed is measured here, not tested
 * (tests/unit/test_catalog.c checks that the output grows linearly).
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "policy.h"
#include "schema.h"

/* CPU time of this thread: the machine may be shared, and the rewrite does
 * no I/O, so its CPU time is its cost. */
static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static PgwSchema *load_schema(const PgwTenant *t)
{
    PGconn *conn = PQconnectdb(t->backend);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "catalog_rewrite: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PGresult *r = PQexec(conn, schema_introspection_sql());
    PgwSchema *s = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        int n = PQntuples(r), m = PQnfields(r);
        const char **vals = calloc((size_t)n * (size_t)m + 1, sizeof(*vals));
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
                vals[i * m + j] = PQgetisnull(r, i, j) ? NULL : PQgetvalue(r, i, j);
        s = schema_from_rows((size_t)n, (size_t)m, vals);
        free(vals);
    } else {
        fprintf(stderr, "catalog_rewrite: %s", PQresultErrorMessage(r));
    }
    PQclear(r);
    PQfinish(conn);
    return s;
}

static void many_arguments(const PgwPolicyCtx *ctx)
{
    printf("OID-wrapped arguments (uncached rewrite, CPU time):\n");
    printf("  %8s %12s %14s %14s\n", "args", "total ms", "us/argument", "output bytes");
    for (size_t n = 1000; n <= 16000; n *= 2) {
        PgwBuf b;
        buf_init(&b);
        buf_append_str(&b, "SELECT pg_catalog.concat(");
        for (size_t i = 0; i < n; i++)
            buf_printf(&b, "%sobj_description(%zu, 'pg_class')", i > 0 ? ", " : "", 16384 + i);
        buf_append_byte(&b, ')');
        char *sql = buf_steal_str(&b);
        PgwPolicyResult r;
        double t0 = now_us();
        int rc = policy_rewrite_uncached(ctx, sql, &r);
        double us = now_us() - t0;
        if (rc == 0 && r.decision == PGW_POLICY_ALLOW)
            printf("  %8zu %12.1f %14.1f %14zu\n", n, us / 1e3, us / (double)n, strlen(r.sql));
        else
            printf("  %8zu refused: %s\n", n, rc == 0 ? r.message : "error");
        if (rc == 0)
            policy_result_free(&r);
        free(sql);
    }
}

/* The statements of a corpus file, placeholders filled in. */
static size_t read_statements(const char *path, char ***out)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return 0;
    }
    size_t n = 0, cap = 0;
    char **v = NULL;
    PgwBuf cur;
    buf_init(&cur);
    char line[65536];
    bool more = true;
    while (more) {
        more = fgets(line, sizeof(line), f) != NULL;
        bool boundary =
            !more || strncmp(line, "-- case:", 8) == 0 || strncmp(line, "-- next", 7) == 0;
        if (boundary) {
            char *sql = buf_steal_str(&cur);
            buf_init(&cur);
            if (strspn(sql, " \t\r\n") < strlen(sql)) {
                if (n == cap) {
                    cap = cap ? 2 * cap : 64;
                    v = realloc(v, cap * sizeof(*v));
                }
                v[n++] = sql;
            } else {
                free(sql);
            }
            continue;
        }
        if (strncmp(line, "--", 2) == 0 || line[0] == '\\')
            continue;
        for (const char *p = line; *p != '\0';) {
            const char *open = strstr(p, "{{");
            const char *close = open != NULL ? strstr(open, "}}") : NULL;
            if (close == NULL) {
                buf_append_str(&cur, p);
                break;
            }
            buf_append(&cur, p, (size_t)(open - p));
            buf_append_str(&cur, "16384");
            p = close + 2;
        }
    }
    buf_free(&cur);
    fclose(f);
    *out = v;
    return n;
}

static void corpus(const PgwPolicyCtx *ctx, const char *path)
{
    char **stmts;
    size_t n = read_statements(path, &stmts);
    if (n == 0)
        return;
    double *uncached = calloc(n, sizeof(double)), *cached = calloc(n, sizeof(double));
    size_t ok = 0, refused = 0;
    for (size_t i = 0; i < n; i++) {
        PgwPolicyResult r;
        double t0 = now_us();
        int rc = policy_rewrite_uncached(ctx, stmts[i], &r);
        double t1 = now_us();
        if (rc == 0 && r.decision == PGW_POLICY_ALLOW)
            ok++;
        else
            refused++;
        if (rc == 0)
            policy_result_free(&r);
        /* First through the cache fills it; the second is the hit. */
        if (policy_rewrite(ctx, stmts[i], &r) == 0)
            policy_result_free(&r);
        double t2 = now_us();
        if (policy_rewrite(ctx, stmts[i], &r) == 0)
            policy_result_free(&r);
        double t3 = now_us();
        uncached[i] = t1 - t0;
        cached[i] = t3 - t2;
        free(stmts[i]);
    }
    free(stmts);
    qsort(uncached, n, sizeof(double), cmp_double);
    qsort(cached, n, sizeof(double), cmp_double);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    printf("  %-28s %5zu %5zu %10.2f %10.2f %10.2f %12.1f\n", base, ok, refused,
           uncached[n / 2] / 1e3, uncached[(n * 9) / 10] / 1e3, uncached[n - 1] / 1e3,
           cached[n / 2]);
    free(uncached);
    free(cached);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: catalog_rewrite CONFIG TENANT [FILE.sql ...]\n");
        return 2;
    }
    PgwConfig *cfg;
    char err[512];
    if (config_load(argv[1], &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "catalog_rewrite: %s\n", err);
        return 1;
    }
    const PgwTenant *tenant = NULL;
    for (size_t i = 0; i < cfg->ntenants; i++)
        if (strcmp(cfg->tenants[i].name, argv[2]) == 0)
            tenant = &cfg->tenants[i];
    if (tenant == NULL) {
        fprintf(stderr, "catalog_rewrite: no tenant %s in %s\n", argv[2], argv[1]);
        return 1;
    }
    PgwSchema *schema = load_schema(tenant);
    if (schema == NULL)
        return 1;
    PgwPolicyCtx ctx = {cfg, tenant, schema, 0, NULL};
    many_arguments(&ctx);
    if (argc > 3) {
        printf("\nCorpus statements (CPU time of a rewrite, ms: median, p90, max; of a\n"
               "rewrite-cache hit, us: median):\n");
        printf("  %-28s %5s %5s %10s %10s %10s %12s\n", "file", "ok", "ref.", "median", "p90",
               "max", "cached us");
    }
    for (int i = 3; i < argc; i++)
        corpus(&ctx, argv[i]);
    schema_free(schema);
    config_free(cfg);
    return 0;
}
