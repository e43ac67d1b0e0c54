#ifndef PGW_LOG_H
#define PGW_LOG_H
#endif
