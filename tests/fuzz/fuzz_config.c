/*
 * fuzz_config.c — libFuzzer target for the INI configuration parser
 * (config_parse_string: sections, settings table, users, tenants, table
 * policies with row filters and masks, durations, sizes, booleans).
 *
 * pgwarden re-reads its config on every SIGHUP, so a parser fault is a way
 * to take the gateway down with a typo. Properties: no crash and no leak
 * (LeakSanitizer runs at exit) on any text; a failure leaves *out NULL and
 * says "FILE:LINE: what" or "FILE: what"; a success yields a config whose
 * lookups work for every user and tenant it lists and whose every setting
 * can be formatted (what SHOW CONFIG-like views and --check print).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), err[1024] = "";
    PgwConfig *cfg = NULL;

    CHECK(text);
    memcpy(text, data, size);
    text[size] = '\0';
    if (config_parse_string("/fuzz/pgwarden.ini", text, &cfg, err, sizeof(err)) < 0) {
        CHECK(cfg == NULL);
        CHECK(strncmp(err, "/fuzz/pgwarden.ini", 18) == 0);
    } else {
        CHECK(cfg != NULL);
        for (size_t i = 0; i < cfg->nusers; i++) {
            const PgwUserMap *u = config_user(cfg, cfg->users[i].user);
            CHECK(u != NULL);
            for (size_t t = 0; t < u->ntenants; t++)
                CHECK(config_tenant(cfg, u->tenants[t]) != NULL);
        }
        for (size_t i = 0; i < cfg->ntenants; i++)
            CHECK(config_tenant(cfg, cfg->tenants[i].name) != NULL);
        for (size_t i = 0; i < cfg->ntables; i++)
            (void)config_table(cfg, cfg->tables[i].schema, cfg->tables[i].name);
        (void)config_is_admin(cfg, "alice");
        char restart[256], value[1024];
        for (size_t i = 0; i < config_nsettings; i++)
            config_format_setting(cfg, &config_settings[i], value, sizeof(value));
        (void)config_restart_needed(cfg, cfg, restart, sizeof(restart));
        config_free(cfg);
    }
    free(text);
    return 0;
}
