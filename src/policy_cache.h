#ifndef PGW_POLICY_CACHE_H
#define PGW_POLICY_CACHE_H
#endif
