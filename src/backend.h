#ifndef PGW_BACKEND_H
#define PGW_BACKEND_H
#endif
