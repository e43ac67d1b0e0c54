/*
 * config_int.h — what the settings table (config.c) and the INI reader
 * (config_ini.c) share. Nothing outside the config module includes it.
 */
#ifndef PGW_CONFIG_INT_H
#define PGW_CONFIG_INT_H

#include "pgw.h"

/* The public header is not included: the module's own .c files include both,
 * and a private header that includes its public one makes an include cycle. */
typedef struct PgwConfig PgwConfig;
typedef struct PgwSetting PgwSetting;

/* Store value into cfg per the setting's type. On a bad value, writes what
 * was expected to why and returns -1. */
int config_setting_store(PgwConfig *cfg, const PgwSetting *set, const char *value, char *why,
                         size_t whylen) PGW_WUR;
/* A decimal integer in [lo, hi]. */
int config_parse_long(const char *s, long lo, long hi, long *out) PGW_WUR;
/* "a, b, c" into a malloc'd array of malloc'd strings (empty items refused). */
int config_parse_list(const char *s, char ***out, size_t *n_out) PGW_WUR;
/* The auth_type names, in enum order. */
extern const char *const config_auth_names[];
extern const char *const config_pool_mode_names[];
/* The next config version number of this process. */
unsigned config_next_version(void);

#endif
