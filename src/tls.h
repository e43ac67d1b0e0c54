#ifndef PGW_TLS_H
#define PGW_TLS_H
#endif
