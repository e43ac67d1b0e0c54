#ifndef PGW_POOL_H
#define PGW_POOL_H
#endif
