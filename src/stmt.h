#ifndef PGW_STMT_H
#define PGW_STMT_H
#endif
