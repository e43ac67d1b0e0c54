#ifndef PGW_SERVER_H
#define PGW_SERVER_H
#endif
