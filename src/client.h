#ifndef PGW_CLIENT_H
#define PGW_CLIENT_H
#endif
